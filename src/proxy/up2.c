/* HTTP/2 upstream connections (see up2.h). */
#include "proxy/up2.h"

#include "core/log.h"
#include "http/h2.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define WATERMARK (64 * 1024)
#define READ_MAX (64 * 1024)
#define MAX_DRAINED 32

struct wf_up2 {
	struct wf_up2 *next;               /* the worker's connections */
	struct wf_worker *w;
	struct wf_uconn *u;                /* NULL once the transport is gone */
	struct wf_h2 *h2;
	struct wf_addr addr;
	uint64_t tls_key;
	struct wf_up2_stream *streams;
	uint32_t n_streams;
	uint32_t requests, max_requests;
	uint64_t idle_ms;
	struct wf_timer t;                 /* idle */
	struct wf_defer defer;
	struct wf_defer flush_d;           /* the owners' sends leave once per loop iteration */
	uint8_t connected, goaway, dead, in_h2;
	uint8_t flush_pending, free_pending;
	int32_t drained[MAX_DRAINED];      /* streams whose queued DATA left (during a flush) */
	uint32_t n_drained;
	uint8_t drained_all;               /* more than MAX_DRAINED: tell every stream */
};

static void flush(struct wf_up2 *p);

static void unlink_stream(struct wf_up2 *p, struct wf_up2_stream *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		p->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	s->conn = NULL;
	p->n_streams--;
	if (p->h2)
		wf_h2_set_owner(p->h2, s->id, NULL);
	if (!p->n_streams && !p->dead)
		wf_timer_set(&p->w->loop, &p->t, p->idle_ms ? p->idle_ms : 3600000);
}

static void conn_free(struct wf_defer *d)
{
	struct wf_up2 *p = (struct wf_up2 *)((char *)d - offsetof(struct wf_up2, defer));
	if (p->flush_pending) {
		p->free_pending = 1; /* its flush, queued earlier, runs later and frees it */
		return;
	}
	free(p);
}

static void flush_cb(struct wf_defer *d)
{
	struct wf_up2 *p = (struct wf_up2 *)((char *)d - offsetof(struct wf_up2, flush_d));
	p->flush_pending = 0;
	if (p->dead) {
		if (p->free_pending)
			free(p);
		return;
	}
	flush(p);
}

/* Flush at the end of this loop iteration: the requests of a batch of events leave together,
 * and a request's END_STREAM rides on its last DATA frame. */
static void schedule(struct wf_up2 *p)
{
	if (p->dead || p->flush_pending)
		return;
	p->flush_pending = 1;
	wf_loop_defer(&p->w->loop, &p->flush_d);
}

/* The connection is over: its remaining streams are reset (code) and it is freed. */
static void conn_end(struct wf_up2 *p, int code, int connecting)
{
	if (p->dead)
		return;
	p->dead = 1;
	for (struct wf_up2 **q = &p->w->up2; *q; q = &(*q)->next)
		if (*q == p) {
			*q = p->next;
			break;
		}
	wf_timer_cancel(&p->w->loop, &p->t);
	while (p->streams) {
		struct wf_up2_stream *s = p->streams;
		unlink_stream(p, s);
		s->ops->reset(s->owner, code, connecting);
	}
	if (p->u)
		wf_upstream_release(p->u, 0);
	p->u = NULL;
	wf_h2_free(p->h2);
	p->h2 = NULL;
	p->defer.cb = conn_free;
	wf_loop_defer(&p->w->loop, &p->defer);
}

static void on_idle(struct wf_loop *loop, struct wf_timer *t)
{
	struct wf_up2 *p = t->data;
	if (!p->n_streams)
		conn_end(p, -ECONNABORTED, 0);
}

/* ---- the session's events ------------------------------------------------------------------- */

static struct wf_up2_stream *stream(struct wf_up2 *p, int32_t id)
{
	return wf_h2_owner(p->h2, id);
}

static int on_headers(void *ctx, int32_t id, const struct wf_hdr *h, uint32_t n, int end_stream, int trailers)
{
	struct wf_up2_stream *s = stream(ctx, id);
	if (s)
		s->ops->headers(s->owner, h, n, end_stream, trailers);
	return 0;
}

static int on_data(void *ctx, int32_t id, const uint8_t *d, size_t n, int end_stream)
{
	struct wf_up2 *p = ctx;
	struct wf_up2_stream *s = stream(p, id);
	if (!s) {
		if (n)
			wf_h2_consume(p->h2, id, n);
		return 0;
	}
	s->ops->data(s->owner, d, n, end_stream);
	return 0;
}

static void on_closed(void *ctx, int32_t id, uint32_t code)
{
	struct wf_up2 *p = ctx;
	struct wf_up2_stream *s = stream(p, id);
	if (!s)
		return;
	unlink_stream(p, s);
	s->ops->reset(s->owner, (int)code, 0);
}

static void on_goaway(void *ctx, int32_t last, uint32_t code)
{
	struct wf_up2 *p = ctx;
	p->goaway = 1; /* no new streams here; the codec refuses the ones above `last` */
}

static void on_drained(void *ctx, int32_t id)
{
	struct wf_up2 *p = ctx;
	if (p->n_drained < MAX_DRAINED)
		p->drained[p->n_drained++] = id;
	else
		p->drained_all = 1;
}

static const struct wf_h2_ops h2_ops = {
	.headers = on_headers,
	.data = on_data,
	.closed = on_closed,
	.goaway = on_goaway,
	.drained = on_drained,
};

/* ---- the transport's events ------------------------------------------------------------------ */

static void on_connected(struct wf_uconn *u, void *owner)
{
	struct wf_up2 *p = owner;
	p->connected = 1;
	flush(p);
	for (struct wf_up2_stream *s = p->streams, *next; s && !p->dead; s = next) {
		next = s->next;
		s->ops->connected(s->owner);
	}
	if (!p->dead)
		flush(p);
}

static void on_readable(struct wf_uconn *u, void *owner)
{
	struct wf_up2 *p = owner;
	int r = wf_sio_read(&p->w->pool, &u->s, READ_MAX);
	uint32_t n = wf_buf_len(&u->s.rb);
	if (n) {
		p->in_h2 = 1;
		int rc = wf_h2_recv(p->h2, (const uint8_t *)wf_buf_data(&u->s.rb), n);
		p->in_h2 = 0;
		if (p->dead)
			return;
		wf_buf_consume(&u->s.rb, &p->w->pool, n);
		if (rc < 0) {
			wf_debug("upstream %s: HTTP/2: %s", u->addr_str, wf_h2_error_str(wf_h2_error(p->h2)));
			flush(p); /* the GOAWAY */
			conn_end(p, -EPROTO, 0);
			return;
		}
	}
	if (r < 0) {
		conn_end(p, r == -1 ? -ECONNRESET : r, 0);
		return;
	}
	flush(p);
}

static void on_drained_io(struct wf_uconn *u, void *owner)
{
	flush(owner);
}

static void on_failed(struct wf_uconn *u, void *owner, int err, int connecting)
{
	struct wf_up2 *p = owner;
	p->u = NULL; /* upstream.c freed it */
	conn_end(p, err, connecting);
}

static const struct wf_uconn_ops u_ops = {
	.connected = on_connected,
	.readable = on_readable,
	.drained = on_drained_io,
	.failed = on_failed,
};

/* Write what the session has (nothing before the transport is up, nor from inside the
 * session's callbacks: the caller flushes after), then tell the streams whose DATA left. */
static void flush(struct wf_up2 *p)
{
	if (p->dead || p->in_h2 || !p->connected || !p->u)
		return;
	struct wf_uconn *u = p->u;
	if (wf_sio_take_h2(&p->w->loop, &p->w->pool, &u->s, p->h2, WATERMARK) < 0) {
		conn_end(p, -ECONNRESET, 0);
		return;
	}
	while ((p->n_drained || p->drained_all) && !p->dead) {
		if (p->drained_all) {
			p->drained_all = 0;
			p->n_drained = 0;
			for (struct wf_up2_stream *s = p->streams, *next; s && !p->dead; s = next) {
				next = s->next;
				s->ops->writable(s->owner);
			}
			continue;
		}
		int32_t id = p->drained[--p->n_drained];
		struct wf_up2_stream *s = stream(p, id);
		if (s)
			s->ops->writable(s->owner);
	}
	if (!p->dead && (wf_h2_done(p->h2) || (p->goaway && !p->n_streams)))
		conn_end(p, -ECONNRESET, 0);
}

/* ---- the owner's side ----------------------------------------------------------------------- */

/* A connection over transport u (connecting, or established when adopted). */
static struct wf_up2 *conn_new(struct wf_worker *w, struct wf_cluster *c, const struct wf_host *h, struct wf_uconn *u)
{
	struct wf_up2 *p = calloc(1, sizeof(*p));
	p->h2 = wf_h2_new(0, &c->h2.lim, &h2_ops, p, &w->pool);
	if (!p->h2) {
		free(p);
		wf_upstream_release(u, 0);
		return NULL;
	}
	u->ops = &u_ops;
	u->owner = p;
	p->u = u;
	p->w = w;
	p->addr = h->addr;
	p->tls_key = c->tls ? c->tls->key : 0;
	p->max_requests = c->max_requests_per_connection;
	p->idle_ms = c->upstream_idle_ms;
	p->t.cb = on_idle;
	p->t.data = p;
	p->flush_d.cb = flush_cb;
	p->next = w->up2;
	w->up2 = p;
	return p;
}

void wf_up2_adopt(struct wf_worker *w, struct wf_cluster *c, const struct wf_host *h, struct wf_uconn *u)
{
	struct wf_up2 *p = conn_new(w, c, h, u);
	if (!p)
		return;
	p->connected = 1;
	wf_upstream_want(u, EPOLLIN | EPOLLRDHUP);
	wf_timer_set(&w->loop, &p->t, p->idle_ms ? p->idle_ms : 3600000); /* until a stream comes */
	schedule(p);
}

int wf_up2_open(struct wf_worker *w, struct wf_cluster *c, const struct wf_host *h, const struct wf_hdr *head,
                uint32_t n, int end_stream, struct wf_up2_stream *s, int *reused)
{
	uint64_t key = c->tls ? c->tls->key : 0;
	struct wf_up2 *p, *any = NULL;
	for (p = w->up2; p; p = p->next) {
		if (p->dead || p->goaway || p->tls_key != key || !wf_addr_eq(&p->addr, &h->addr) ||
		    (p->max_requests && p->requests >= p->max_requests))
			continue;
		any = p;
		if (p->n_streams < wf_h2_peer_max_streams(p->h2))
			break;
	}
	if (!p) {
		int err = 0;
		struct wf_uconn *u = wf_upstream_connect(w, c, h, &u_ops, NULL, &err);
		if (!u && err == -EAGAIN && any) {
			p = any; /* at max_connections: the codec holds the stream until one ends */
		} else if (!u) {
			return err;
		} else if (!(p = conn_new(w, c, h, u))) {
			return -ENOMEM;
		}
	}
	*reused = p->connected; /* else the stream hears `connected` with the others */
	int32_t id = wf_h2_submit_request(p->h2, head, n, end_stream);
	if (id < 0)
		return -EIO;
	wf_timer_cancel(&w->loop, &p->t);
	p->requests++;
	s->conn = p;
	s->id = id;
	s->prev = NULL;
	s->next = p->streams;
	if (p->streams)
		p->streams->prev = s;
	p->streams = s;
	p->n_streams++;
	wf_h2_set_owner(p->h2, id, s);
	schedule(p);
	return 0;
}

int wf_up2_send(struct wf_up2_stream *s, const void *d, size_t n, int end_stream)
{
	if (!s->conn)
		return -1;
	return wf_h2_send_data(s->conn->h2, s->id, d, n, end_stream);
}

size_t wf_up2_queued(const struct wf_up2_stream *s)
{
	return s->conn ? wf_h2_stream_queued(s->conn->h2, s->id) : 0;
}

void wf_up2_consume(struct wf_up2_stream *s, size_t n)
{
	if (s->conn && n)
		wf_h2_consume(s->conn->h2, s->id, n);
}

void wf_up2_flush(struct wf_up2_stream *s)
{
	if (s->conn)
		schedule(s->conn);
}

void wf_up2_detach(struct wf_up2_stream *s, int reset)
{
	struct wf_up2 *p = s->conn;
	if (!p)
		return;
	int32_t id = s->id;
	unlink_stream(p, s);
	if (reset)
		wf_h2_reset(p->h2, id, 8 /* CANCEL */);
	schedule(p);
}

void wf_up2_close_idle(struct wf_worker *w)
{
	for (struct wf_up2 *p = w->up2, *next; p; p = next) {
		next = p->next;
		if (!p->n_streams)
			conn_end(p, -ECONNABORTED, 0);
	}
}
