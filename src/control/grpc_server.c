/* The gRPC server: listeners, connections (sio + the HTTP/2 codec's server side) and calls.
 *
 *   connection ──< call (one per HTTP/2 stream whose :path names a method)
 *
 * A connection's frames leave in one write per loop iteration (a deferred flush), at most
 * SOCK_WATERMARK bytes queued in the socket: past it the codec keeps the frames and the
 * calls see their queue grow (wf_grpc_call_queued). Calls end through call_end, whose last
 * step (the handler's `closed`, then free) is deferred to the end of the loop iteration, so
 * that no handler is freed under a caller that is still using it. */
#include "control/grpc_server.h"

#include "core/buf.h"
#include "core/log.h"
#include "http/grpc.h"
#include "http/h2.h"
#include "proxy/sio.h"
#include "proxy/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SOCK_WATERMARK (64 * 1024)
#define READ_MAX (64 * 1024)
#define IN_KEEP 4096                /* a call's input buffer kept between messages, at most */
#define MAX_LISTENERS 4
/* A connection that opens no call this long after it was accepted (its TLS handshake and
 * HTTP/2 preface included) is closed: peers that connect and stall hold nothing for long. */
#define FIRST_CALL_MS 10000
/* ... and one left without a call this long after its last one ended. */
#define IDLE_MS (5 * 60 * 1000)

struct gconn;

struct wf_grpc_call {
	struct gconn *c;
	int32_t sid;
	const struct wf_grpc_method *m;
	void *cctx;
	char *in;                   /* received bytes not yet parsed into messages */
	size_t in_len, in_cap;
	size_t unacked;             /* received while paused: acknowledged (window) on resume */
	struct wf_grpc_call *next, *prev;
	struct wf_defer d;
	char peer[64];
	unsigned head_sent : 1, ended : 1, half_closed : 1, paused : 1, want_writable : 1, delivering : 1;
};

struct glistener {
	struct wf_io io;
	const struct wf_tls_cfg *tls;
	struct wf_grpc_server *srv;
};

struct gconn {
	struct wf_sio s;
	struct wf_grpc_server *srv;
	struct wf_h2 *h2;
	struct wf_grpc_call *calls;
	struct gconn *next, *prev;
	struct wf_defer flush_d, free_d;
	struct wf_timer t;          /* FIRST_CALL_MS, then IDLE_MS while it has no call */
	char remote[64];
	unsigned in_h2 : 1, dead : 1, flush_pending : 1, free_pending : 1, had_call : 1;
};

struct wf_grpc_server {
	struct wf_loop *loop;
	const struct wf_grpc_method *methods;
	uint32_t n_methods;
	struct wf_pool pool;
	struct wf_h2_limits lim;
	struct glistener lis[MAX_LISTENERS];
	uint32_t n_lis;
	struct gconn *conns;
};

static void conn_close(struct gconn *c);
static void conn_flush(struct gconn *c);
static void call_process(struct wf_grpc_call *k);

/* The connection's timer: none while it has calls. */
static void conn_arm(struct gconn *c)
{
	if (c->dead)
		return;
	if (c->calls)
		wf_timer_cancel(c->srv->loop, &c->t);
	else
		wf_timer_set(c->srv->loop, &c->t, c->had_call ? IDLE_MS : FIRST_CALL_MS);
}

static void conn_timeout(struct wf_loop *loop, struct wf_timer *t)
{
	struct gconn *c = t->data;
	wf_debug("grpc: %s: %s: closing the connection", c->remote, c->had_call ? "idle" : "no call opened in time");
	conn_close(c);
}

/* ---- calls ---------------------------------------------------------------------------------- */

static void call_free_cb(struct wf_defer *d)
{
	struct wf_grpc_call *k = (struct wf_grpc_call *)((char *)d - offsetof(struct wf_grpc_call, d));
	if (k->m && k->m->closed)
		k->m->closed(k->cctx);
	free(k->in);
	free(k);
}

/* The call is over for us: detach it from its connection and stream, then (deferred) tell
 * the handler and free it. */
static void call_end(struct wf_grpc_call *k)
{
	if (k->ended)
		return;
	k->ended = 1;
	struct gconn *c = k->c;
	if (k->prev)
		k->prev->next = k->next;
	else
		c->calls = k->next;
	if (k->next)
		k->next->prev = k->prev;
	if (c->h2) {
		wf_h2_set_owner(c->h2, k->sid, NULL);
		/* what was received and never parsed still counts against the connection's window */
		wf_h2_consume(c->h2, k->sid, k->unacked);
		k->unacked = 0;
	}
	k->d.cb = call_free_cb;
	wf_loop_defer(c->srv->loop, &k->d);
	conn_arm(c);
}

static int send_head(struct wf_grpc_call *k)
{
	if (k->head_sent)
		return 0;
	k->head_sent = 1;
	struct wf_hdr h[] = {
		{":status", "200", 7, 3},
		{"content-type", "application/grpc", 12, 16},
	};
	return wf_h2_submit_headers(k->c->h2, k->sid, h, 2, 0);
}

/* Trailers (or a trailers-only response when nothing was sent) on stream sid. */
static void send_status(struct gconn *c, int32_t sid, int head_sent, int status, const char *msg)
{
	char st[12], em[512];
	int sl = snprintf(st, sizeof(st), "%d", status);
	size_t ml = msg ? wf_grpc_message_encode(msg, strlen(msg), em, sizeof(em)) : 0;
	struct wf_hdr h[5];
	uint32_t n = 0;
	if (!head_sent) {
		h[n++] = (struct wf_hdr){":status", "200", 7, 3};
		h[n++] = (struct wf_hdr){"content-type", "application/grpc", 12, 16};
	}
	h[n++] = (struct wf_hdr){"grpc-status", st, 11, (uint32_t)sl};
	if (ml)
		h[n++] = (struct wf_hdr){"grpc-message", em, 12, (uint32_t)ml};
	wf_h2_submit_headers(c->h2, sid, h, n, 1);
}

/* A message: m packed into the stream's queue after the 5-byte prefix, then `len` more bytes
 * that the caller queues next (lent). */
static int send_msg(struct wf_grpc_call *k, const ProtobufCMessage *m, size_t len)
{
	size_t h = protobuf_c_message_get_packed_size(m), n = h + len;
	if (k->ended || n > UINT32_MAX - 5 || n < len)
		return -EPIPE;
	if (send_head(k) < 0)
		return -EPIPE;
	uint8_t *p = wf_h2_send_reserve(k->c->h2, k->sid, 5 + h);
	if (!p)
		return -ENOMEM;
	wf_grpc_prefix_put(p, (uint32_t)n);
	protobuf_c_message_pack(m, p + 5);
	if (wf_h2_send_commit(k->c->h2, k->sid, 5 + h, 0) < 0)
		return -EPIPE;
	conn_flush(k->c);
	return 0;
}

int wf_grpc_call_send(struct wf_grpc_call *k, const ProtobufCMessage *m) { return send_msg(k, m, 0); }

int wf_grpc_call_send_lent(struct wf_grpc_call *k, const ProtobufCMessage *head, const void *body, size_t len,
                           void (*done)(void *arg), void *arg)
{
	int rc = send_msg(k, head, len);
	if (rc < 0)
		return rc;
	if (!len) {
		done(arg);
		return 0;
	}
	if (wf_h2_send_lent(k->c->h2, k->sid, body, len, done, arg) < 0) {
		/* the prefix announced len more bytes: the stream cannot go on */
		wf_grpc_call_finish(k, WF_GRPC_INTERNAL, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

size_t wf_grpc_call_queued(const struct wf_grpc_call *k)
{
	if (k->ended)
		return 0;
	size_t q = wf_h2_stream_queued(k->c->h2, k->sid) + wf_sio_queued(&k->c->s);
	if (q >= WF_GRPC_WATERMARK)
		((struct wf_grpc_call *)k)->want_writable = 1;
	return q;
}

void wf_grpc_call_finish(struct wf_grpc_call *k, int status, const char *msg)
{
	if (k->ended)
		return;
	if (status != WF_GRPC_OK)
		wf_debug("grpc: %s: %s ends with %s%s%s", k->peer, k->m ? k->m->path : "?", wf_grpc_status_name(status),
		         msg ? ": " : "", msg ? msg : "");
	send_status(k->c, k->sid, k->head_sent, status, msg);
	k->head_sent = 1;
	struct gconn *c = k->c;
	call_end(k);
	conn_flush(c);
}

const char *wf_grpc_call_peer(const struct wf_grpc_call *k) { return k->peer; }

/* Parse and deliver the whole messages buffered, while the call's output has room. */
static void call_process(struct wf_grpc_call *k)
{
	if (k->delivering)
		return;
	k->delivering = 1;
	size_t off = 0;
	while (!k->ended && k->in_len - off >= 5) {
		if (wf_grpc_call_queued(k) >= WF_GRPC_WATERMARK) {
			k->paused = 1;
			break;
		}
		const uint8_t *p = (const uint8_t *)k->in + off;
		uint32_t len = wf_grpc_prefix_len(p);
		if (p[0] & 1) {
			wf_grpc_call_finish(k, WF_GRPC_UNIMPLEMENTED, "compressed messages are not supported");
			break;
		}
		if (len > WF_GRPC_MAX_MESSAGE) {
			char m[96];
			snprintf(m, sizeof(m), "message of %u bytes over the limit (%u)", len, WF_GRPC_MAX_MESSAGE);
			wf_grpc_call_finish(k, WF_GRPC_RESOURCE_EXHAUSTED, m);
			break;
		}
		if (k->in_len - off - 5 < len)
			break;
		off += 5 + (size_t)len;
		if (k->m->message(k->cctx, p + 5, len) < 0 && !k->ended)
			wf_grpc_call_finish(k, WF_GRPC_INTERNAL, NULL);
	}
	if (off) {
		memmove(k->in, k->in + off, k->in_len - off);
		k->in_len -= off;
	}
	/* a large request (a subscription to a thousand names) leaves no large buffer behind on
	 * a call that lives for hours */
	if (!k->in_len && k->in_cap > IN_KEEP) {
		free(k->in);
		k->in = NULL;
		k->in_cap = 0;
	}
	if (!k->ended && !k->paused && k->unacked) {
		wf_h2_consume(k->c->h2, k->sid, k->unacked);
		k->unacked = 0;
	}
	if (!k->ended && k->half_closed && !k->paused) {
		if (k->in_len)
			wf_grpc_call_finish(k, WF_GRPC_INTERNAL, "the request ended inside a message");
		else if (k->m->half_close)
			k->m->half_close(k->cctx);
		else
			wf_grpc_call_finish(k, WF_GRPC_OK, NULL);
	}
	k->delivering = 0;
}

/* ---- the codec's events ------------------------------------------------------------------- */

static const struct wf_grpc_method *find_method(struct wf_grpc_server *s, const char *p, size_t n)
{
	for (uint32_t i = 0; i < s->n_methods; i++)
		if (strlen(s->methods[i].path) == n && !memcmp(s->methods[i].path, p, n))
			return &s->methods[i];
	return NULL;
}

static int start_call(struct gconn *c, int32_t sid, const struct wf_hdr *h, uint32_t n, int end_stream);

static int on_headers(void *ctx, int32_t sid, const struct wf_hdr *h, uint32_t n, int end_stream, int trailers)
{
	struct gconn *c = ctx;
	struct wf_grpc_call *k = wf_h2_owner(c->h2, sid);
	if (trailers) {
		if (k) {
			k->half_closed = 1;
			call_process(k);
		}
		return 0;
	}
	c->had_call = 1;
	int rc = start_call(c, sid, h, n, end_stream);
	conn_arm(c);
	return rc;
}

/* A request head: a call of a registered method, or the answer that refuses it. */
static int start_call(struct gconn *c, int32_t sid, const struct wf_hdr *h, uint32_t n, int end_stream)
{
	struct wf_grpc_call *k;
	const char *path = NULL, *method = NULL, *ctype = NULL, *enc = NULL;
	uint32_t pl = 0, ml = 0, cl = 0, el = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (h[i].name_len == 5 && !memcmp(h[i].name, ":path", 5))
			path = h[i].value, pl = h[i].value_len;
		else if (h[i].name_len == 7 && !memcmp(h[i].name, ":method", 7))
			method = h[i].value, ml = h[i].value_len;
		else if (h[i].name_len == 12 && !memcmp(h[i].name, "content-type", 12))
			ctype = h[i].value, cl = h[i].value_len;
		else if (h[i].name_len == 13 && !memcmp(h[i].name, "grpc-encoding", 13))
			enc = h[i].value, el = h[i].value_len;
	}
	if (!method || ml != 4 || memcmp(method, "POST", 4) || !ctype || !wf_grpc_content_type(ctype, cl)) {
		struct wf_hdr r[] = {{":status", "415", 7, 3}};
		if (method && ml == 4 && !memcmp(method, "POST", 4))
			wf_h2_submit_headers(c->h2, sid, r, 1, 1);
		else
			wf_h2_submit_headers(c->h2, sid, (struct wf_hdr[]){{":status", "405", 7, 3}}, 1, 1);
		return 0;
	}
	const struct wf_grpc_method *m = path ? find_method(c->srv, path, pl) : NULL;
	if (!m) {
		char msg[300];
		snprintf(msg, sizeof(msg), "unknown method %.*s", (int)(pl > 256 ? 256 : pl), path ? path : "");
		send_status(c, sid, 0, WF_GRPC_UNIMPLEMENTED, msg);
		return 0;
	}
	if (enc && !(el == 8 && !memcmp(enc, "identity", 8))) {
		send_status(c, sid, 0, WF_GRPC_UNIMPLEMENTED, "grpc-encoding other than identity is not supported");
		return 0;
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		return -1;
	k->c = c;
	k->sid = sid;
	k->m = m;
	memcpy(k->peer, c->remote, sizeof(k->peer));
	k->next = c->calls;
	if (c->calls)
		c->calls->prev = k;
	c->calls = k;
	wf_h2_set_owner(c->h2, sid, k);
	k->cctx = m->open(m->ctx, k);
	if (!k->cctx) {
		k->m = NULL; /* no handler to tell */
		wf_grpc_call_finish(k, WF_GRPC_INTERNAL, "the call could not start");
		return 0;
	}
	if (end_stream && !k->ended) {
		k->half_closed = 1;
		call_process(k);
	}
	return 0;
}

static int on_data(void *ctx, int32_t sid, const uint8_t *p, size_t n, int end_stream)
{
	struct gconn *c = ctx;
	struct wf_grpc_call *k = wf_h2_owner(c->h2, sid);
	if (!k) {
		wf_h2_consume(c->h2, sid, n);
		return 0;
	}
	if (k->in_len + n > k->in_cap) {
		size_t cap = k->in_cap ? k->in_cap : IN_KEEP;
		while (cap < k->in_len + n)
			cap *= 2;
		char *q = realloc(k->in, cap);
		if (!q)
			return -1;
		k->in = q;
		k->in_cap = cap;
	}
	if (n) /* an empty DATA frame: p may be NULL */
		memcpy(k->in + k->in_len, p, n);
	k->in_len += n;
	k->unacked += n;
	if (end_stream)
		k->half_closed = 1;
	if (!k->paused)
		call_process(k);
	return 0;
}

static void on_closed(void *ctx, int32_t sid, uint32_t error_code)
{
	struct gconn *c = ctx;
	struct wf_grpc_call *k = wf_h2_owner(c->h2, sid);
	if (k) {
		if (error_code)
			wf_debug("grpc: %s: %s cancelled by the client (RST_STREAM %u)", k->peer, k->m->path, error_code);
		call_end(k);
	}
}

static void on_goaway(void *ctx, int32_t last, uint32_t error_code) {}

static void on_drained(void *ctx, int32_t sid)
{
	struct gconn *c = ctx;
	struct wf_grpc_call *k = wf_h2_owner(c->h2, sid);
	if (k)
		k->want_writable = 1; /* looked at after the flush */
}

static const struct wf_h2_ops h2_ops = {
	.headers = on_headers,
	.data = on_data,
	.closed = on_closed,
	.goaway = on_goaway,
	.drained = on_drained,
};

/* ---- connections ----------------------------------------------------------------------------- */

static void conn_free_cb(struct wf_defer *d)
{
	struct gconn *c = (struct gconn *)((char *)d - offsetof(struct gconn, free_d));
	if (c->flush_pending) {
		c->free_pending = 1; /* the flush defer still names c: it frees */
		return;
	}
	free(c);
}

static void conn_close(struct gconn *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	wf_timer_cancel(c->srv->loop, &c->t);
	while (c->calls)
		call_end(c->calls);
	if (c->h2) {
		wf_h2_free(c->h2);
		c->h2 = NULL;
	}
	wf_sio_close(c->srv->loop, &c->srv->pool, &c->s);
	if (c->prev)
		c->prev->next = c->next;
	else
		c->srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->free_d.cb = conn_free_cb;
	wf_loop_defer(c->srv->loop, &c->free_d);
}

/* Serialize frames into the socket (up to SOCK_WATERMARK queued), then let calls whose
 * output drained go on. */
static void flush_now(struct gconn *c)
{
	struct wf_loop *loop = c->srv->loop;
	for (int round = 0; round < 8 && !c->dead; round++) {
		if (wf_sio_take_h2(loop, &c->srv->pool, &c->s, c->h2, SOCK_WATERMARK) < 0) {
			conn_close(c);
			return;
		}
		if (wf_h2_error(c->h2) != WF_H2_OK || wf_h2_done(c->h2)) {
			if (wf_h2_error(c->h2) != WF_H2_OK)
				wf_info("grpc: %s: HTTP/2: %s", c->remote, wf_h2_error_str(wf_h2_error(c->h2)));
			if (!wf_sio_queued(&c->s)) {
				conn_close(c);
				return;
			}
		}
		int again = 0;
		for (struct wf_grpc_call *k = c->calls, *nx; k && !c->dead; k = nx) {
			nx = k->next;
			if (!k->want_writable && !k->paused)
				continue;
			size_t q = wf_h2_stream_queued(c->h2, k->sid) + wf_sio_queued(&c->s);
			if (q >= WF_GRPC_WATERMARK)
				continue;
			k->want_writable = 0;
			if (k->paused) {
				k->paused = 0;
				call_process(k);
			}
			if (!k->ended && k->m->writable)
				k->m->writable(k->cctx);
			again = 1;
		}
		if (!again || wf_sio_queued(&c->s) >= SOCK_WATERMARK)
			break;
	}
	if (!c->dead) {
		c->s.want = EPOLLIN | EPOLLRDHUP;
		wf_sio_update(loop, &c->s);
	}
}

static void flush_cb(struct wf_defer *d)
{
	struct gconn *c = (struct gconn *)((char *)d - offsetof(struct gconn, flush_d));
	c->flush_pending = 0;
	if (c->dead) {
		if (c->free_pending)
			free(c);
		return;
	}
	flush_now(c);
}

static void conn_flush(struct gconn *c)
{
	if (c->dead || c->flush_pending)
		return;
	c->flush_pending = 1;
	c->flush_d.cb = flush_cb;
	wf_loop_defer(c->srv->loop, &c->flush_d);
}

static void conn_io(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	struct gconn *c = io->data;
	if (c->dead)
		return;
	if (ev & EPOLLOUT) {
		if (wf_sio_flush(loop, &c->srv->pool, &c->s) < 0) {
			conn_close(c);
			return;
		}
	}
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		int r = wf_sio_read(&c->srv->pool, &c->s, READ_MAX);
		uint32_t n = wf_buf_len(&c->s.rb);
		if (n) {
			c->in_h2 = 1;
			int hr = wf_h2_recv(c->h2, (const uint8_t *)wf_buf_data(&c->s.rb), n);
			c->in_h2 = 0;
			if (c->dead)
				return;
			wf_buf_consume(&c->s.rb, &c->srv->pool, n);
			if (hr < 0)
				wf_debug("grpc: %s: HTTP/2: %s", c->remote, wf_h2_error_str(wf_h2_error(c->h2)));
		}
		if (r < 0) {
			if (r != -1 || !c->s.eof)
				wf_debug("grpc: %s: connection lost", c->remote);
			conn_close(c); /* open calls end (their handlers hear `closed`) */
			return;
		}
	}
	flush_now(c);
}

static void accept_cb(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	struct glistener *l = io->data;
	struct wf_grpc_server *s = l->srv;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				wf_warn("grpc: accept: %s", strerror(errno));
			return;
		}
		struct gconn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		wf_sock_nodelay(fd);
		/* xDS streams live for hours and are mostly idle: find peers that vanished */
		wf_sock_keepalive(fd, 60, 10, 3);
		c->srv = s;
		c->s.io.fd = fd;
		c->s.io.cb = conn_io;
		c->s.io.data = c;
		struct wf_addr peer;
		if (wf_sock_peer(fd, &peer) == 0)
			wf_addr_str(&peer, c->remote, sizeof(c->remote));
		c->h2 = wf_h2_new(1, &s->lim, &h2_ops, c, &s->pool);
		if (!c->h2 || (l->tls && wf_tls_attach(&c->s, l->tls) < 0)) {
			if (c->h2)
				wf_h2_free(c->h2);
			close(fd);
			free(c);
			continue;
		}
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		c->s.want = EPOLLIN | EPOLLRDHUP;
		wf_sio_update(loop, &c->s);
		c->t.cb = conn_timeout;
		c->t.data = c;
		conn_arm(c);
		conn_flush(c); /* our SETTINGS */
	}
}

/* ---- the server ----------------------------------------------------------------------------- */

struct wf_grpc_server *wf_grpc_server_new(struct wf_loop *loop, const struct wf_grpc_method *methods, uint32_t n)
{
	struct wf_grpc_server *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->loop = loop;
	s->methods = methods;
	s->n_methods = n;
	wf_pool_init(&s->pool, 64);
	wf_h2_limits_default(&s->lim);
	/* A stream's window bounds what a client can make us buffer while its call is paused. */
	s->lim.initial_stream_window = 1024 * 1024;
	s->lim.initial_connection_window = 16 * 1024 * 1024;
	s->lim.max_concurrent_streams = 1000;
	return s;
}

int wf_grpc_server_listen(struct wf_grpc_server *s, const struct wf_addr *addr, const struct wf_tls_cfg *tls)
{
	if (s->n_lis == MAX_LISTENERS)
		return -ENOSPC;
	int fd = wf_sock_listen(addr, 0, 1024, 0);
	if (fd < 0)
		return fd;
	struct glistener *l = &s->lis[s->n_lis++];
	l->io.fd = fd;
	l->io.cb = accept_cb;
	l->io.data = l;
	l->tls = tls;
	l->srv = s;
	return wf_io_set(s->loop, &l->io, EPOLLIN);
}

void wf_grpc_server_free(struct wf_grpc_server *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->n_lis; i++) {
		wf_io_del(s->loop, &s->lis[i].io);
		close(s->lis[i].io.fd);
	}
	while (s->conns)
		conn_close(s->conns);
	/* connections and calls are freed by their deferred steps: run them now */
	while (s->loop->deferred) {
		struct wf_defer *d = s->loop->deferred;
		s->loop->deferred = d->next;
		d->cb(d);
	}
	wf_pool_fini(&s->pool);
	free(s);
}
