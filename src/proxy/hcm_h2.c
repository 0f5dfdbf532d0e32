/* The HTTP/2 codec of the connection manager: one downstream connection carrying many
 * streams (RFC 9113), each of them an ordinary stream of hcm.c — routed, filtered, retried and
 * proxied exactly like an HTTP/1.1 request.
 *
 * The connection speaks HTTP/2 when ALPN settled on "h2" (TLS), when the client opens with the
 * HTTP/2 preface (prior knowledge, h2c), or always with codec_type HTTP2. http/h2.c does the
 * framing and the abuse limits; this file maps its events to streams:
 *   request head -> a stream (its own copy of the head; cookies joined as for HTTP/1.1)
 *   DATA -> the stream's rq buffer, sent upstream at the upstream's pace; the client's window
 *           opens again only as bytes leave (wf_h2_consume), so a slow upstream holds the client
 *           back instead of growing rq
 *   the response -> HEADERS (+ DATA) frames; a stream's queued DATA over the watermark pauses
 *           its upstream until the client's window lets it drain
 *   RST_STREAM from the client -> the stream is aborted (downstream reset, DC)
 * Frames leave in one write per loop iteration (hcm_h2_flush), under the socket's own
 * back-pressure: nothing more is serialized while the client does not read, and what the codec
 * then has to queue (PING/SETTINGS acks) is bounded by the flood limits. A client at fault gets
 * GOAWAY, then our FIN; what it still sends is dropped for a while, and it is reset only if it
 * does not read. */
#include "proxy/hcm_int.h"

#include "core/log.h"
#include "core/str.h"
#include "http/grpc.h"
#include "proxy/stats.h"
#include "proxy/tls.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WATERMARK (64 * 1024)
#define READ_MAX (64 * 1024)

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static int serialize(struct hconn *c);
static void failed(struct hconn *c);
static void head_timeout(struct hconn *c);

static struct wf_loop *LOOP(struct hconn *c) { return &c->w->loop; }
static struct wf_pool *POOL(struct hconn *c) { return &c->w->pool; }

int hcm_h2_sniff(const struct hconn *c)
{
	if (wf_sio_is_tls(&c->s) && wf_tls_alpn_is(&c->s, "h2"))
		return 1;
	uint32_t n = wf_buf_len(&c->s.rb), k = n < 24 ? n : 24;
	if (k && memcmp(wf_buf_data(&c->s.rb), PREFACE, k)) /* nothing read yet: no buffer */
		return 0;
	return n < 24 ? -1 : 1;
}

/* ---- timers: idle connection, PING keepalive, a request head that stalls -------------------- */

static void arm(struct hconn *c)
{
	const struct wf_hcm_cfg *cfg = c->l->hcm;
	uint64_t now = wf_loop_now(LOOP(c)), at = UINT64_MAX;
	if (!c->n_streams && !c->head_sid && cfg->idle_timeout_ms)
		at = c->head_started + cfg->idle_timeout_ms; /* head_started: when the last stream ended */
	if (c->head_sid && !c->head_late && cfg->request_headers_timeout_ms)
		at = c->head_sid_at + cfg->request_headers_timeout_ms;
	if (c->ping_sent && c->ping_sent + cfg->h2.ping_timeout_ms < at)
		at = c->ping_sent + cfg->h2.ping_timeout_ms;
	else if (!c->ping_sent && cfg->h2.ping_interval_ms && c->ping_at < at)
		at = c->ping_at;
	if (at == UINT64_MAX)
		wf_timer_cancel(LOOP(c), &c->t);
	else
		wf_timer_set(LOOP(c), &c->t, at > now ? at - now : 1);
}

static void go_away(struct hconn *c)
{
	if (c->goaway)
		return;
	c->goaway = 1;
	wf_h2_goaway(c->h2, 0);
	if (!c->n_streams)
		c->closing = 1;
}

void hcm_h2_timer(struct hconn *c)
{
	const struct wf_hcm_cfg *cfg = c->l->hcm;
	uint64_t now = wf_loop_now(LOOP(c));
	if (c->h2_failed) {
		wf_sock_abort_on_close(c->s.io.fd); /* the GOAWAY did not leave in time */
		hcm_conn_close(c);
		return;
	}
	if (c->ping_sent && now - c->ping_sent >= cfg->h2.ping_timeout_ms) {
		wf_debug("%s: HTTP/2 keepalive: no answer to PING", c->remote);
		hcm_conn_close(c);
		return;
	}
	if (c->head_sid && !c->head_late && cfg->request_headers_timeout_ms &&
	    now - c->head_sid_at >= cfg->request_headers_timeout_ms) {
		head_timeout(c);
		if (c->dead)
			return;
	} else if (!c->n_streams && !c->head_sid && cfg->idle_timeout_ms && now - c->head_started >= cfg->idle_timeout_ms) {
		wf_stat_inc(cfg->st.cx_idle_timeout);
		go_away(c);
	} else if (!c->ping_sent && cfg->h2.ping_interval_ms && now >= c->ping_at) {
		wf_h2_ping(c->h2);
		c->ping_sent = now;
		c->ping_at = now + cfg->h2.ping_interval_ms;
	}
	hcm_h2_flush(c);
	if (!c->dead)
		arm(c);
}

/* ---- the request side: frames -> streams ---------------------------------------------------- */

static uint32_t stream_count(struct hconn *c, struct hstream *st, int add)
{
	if (add) {
		st->h2_next = c->streams;
		st->h2_prev = NULL;
		if (c->streams)
			c->streams->h2_prev = st;
		c->streams = st;
		return ++c->n_streams;
	}
	if (st->h2_prev)
		st->h2_prev->h2_next = st->h2_next;
	else
		c->streams = st->h2_next;
	if (st->h2_next)
		st->h2_next->h2_prev = st->h2_prev;
	return --c->n_streams;
}

/* One of our streams for the client's stream id. */
static struct hstream *stream_open(struct hconn *c, int32_t id)
{
	struct hstream *st = hcm_stream_new(c);
	st->sid = id;
	wf_h2_set_owner(c->h2, id, st);
	stream_count(c, st, 1);
	return st;
}

/* request_headers_timeout, as Envoy applies it to HTTP/2: a request head whose HEADERS frame
 * began that long ago and is still not complete (CONTINUATION frames missing) gets 408 on its
 * stream. Until the client completes the head nothing else can come on the connection (a header
 * block is contiguous); the head, when it comes, is ignored (h2.c). */
static void head_timeout(struct hconn *c)
{
	c->head_late = 1;
	struct hstream *st = stream_open(c, c->head_sid);
	st->req.minor = 1;
	hcm_stream_head_timeout(st);
}

static int pseudo(const struct wf_hdr *h, const char *name)
{
	return h->name_len == strlen(name) && !memcmp(h->name, name, h->name_len);
}

/* Copy a request head into the stream (st->head) and fill st->req and st->hdrs from it.
 * Cookie fields, which HTTP/2 lets a client split, are joined into one (RFC 9113 §8.2.3). */
static void take_head(struct hstream *st, const struct wf_hdr *h, uint32_t n)
{
	size_t total = 0, cookies = 0;
	for (uint32_t i = 0; i < n; i++) {
		total += h[i].name_len + h[i].value_len;
		if (pseudo(&h[i], "cookie"))
			cookies += h[i].value_len + 2;
	}
	total += cookies + 8;
	st->head = total <= INLINE_HEAD ? st->head_inline : malloc(total);
	char *o = st->head;
#define COPY(p, len) (memcpy(o, (p), (len)), o += (len), o - (len))
	struct wf_h1_req *q = &st->req;
	memset(q, 0, sizeof(*q));
	q->minor = 1;
	q->content_length = -1;
	q->headers = st->hdrs;
	const struct wf_hdr *host = NULL;
	char *cookie = NULL;
	uint32_t cookie_len = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct wf_hdr *f = &h[i];
		if (f->name_len && f->name[0] == ':') {
			const char *v = COPY(f->value, f->value_len);
			if (pseudo(f, ":method"))
				q->method = v, q->method_len = f->value_len;
			else if (pseudo(f, ":path"))
				q->path = q->target = v, q->path_len = q->target_len = f->value_len;
			else if (pseudo(f, ":authority"))
				q->host = v, q->host_len = f->value_len;
			else if (pseudo(f, ":protocol"))
				st->upgrade = v, st->upgrade_len = f->value_len; /* extended CONNECT */
			continue;
		}
		if (pseudo(f, "cookie")) {
			if (!cookie)
				cookie = o, o += cookies;
			if (cookie_len)
				memcpy(cookie + cookie_len, "; ", 2), cookie_len += 2;
			memcpy(cookie + cookie_len, f->value, f->value_len);
			cookie_len += f->value_len;
			continue;
		}
		struct wf_hdr *d = &st->hdrs[q->n_headers++];
		d->name = COPY(f->name, f->name_len);
		d->name_len = f->name_len;
		d->value = COPY(f->value, f->value_len);
		d->value_len = f->value_len;
		if (pseudo(f, "host"))
			host = d;
		else if (pseudo(f, "content-length"))
			q->content_length = wf_parse_u64(f->value, f->value_len, INT64_MAX);
		else if (pseudo(f, "content-type"))
			q->grpc = wf_grpc_content_type(f->value, f->value_len);
		else if (pseudo(f, "expect"))
			q->expect_continue = wf_str_ieq(f->value, f->value_len, "100-continue", 12);
	}
#undef COPY
	if (cookie)
		st->hdrs[q->n_headers++] = (struct wf_hdr){"cookie", cookie, 6, cookie_len};
	if (!q->host && host)
		q->host = host->value, q->host_len = host->value_len;
	if (!q->path && q->method_len == 7 && !memcmp(q->method, "CONNECT", 7)) {
		q->form = WF_H1_AUTHORITY;
		q->target = q->host;
		q->target_len = q->host_len;
		q->path = "";
		st->upgrade = "CONNECT";
		st->upgrade_len = 7;
	} else if (q->path_len == 1 && q->path[0] == '*') {
		q->form = WF_H1_ASTERISK;
	}
}

static int on_headers(void *ctx, int32_t id, const struct wf_hdr *h, uint32_t n, int end_stream, int trailers)
{
	struct hconn *c = ctx;
	struct hstream *st = wf_h2_owner(c->h2, id);
	if (trailers) {
		/* request trailers end the body; an HTTP/1.1 upstream does not get them */
		if (st && end_stream) {
			st->in_end = 1;
			hcm_up_send_body(st);
		}
		return 0;
	}
	if (st || c->goaway)
		return -1;
	const struct wf_hcm_cfg *cfg = c->l->hcm;
	hcm_conn_refresh(c);
	st = stream_open(c, id);
	take_head(st, h, n);
	if (c->w->draining || (cfg->max_requests_per_connection && c->requests >= cfg->max_requests_per_connection))
		go_away(c); /* this stream is served; the client opens the next ones elsewhere */
	st->in_end = (uint8_t)end_stream;
	if (st->upgrade && !end_stream) {
		st->rb = RB_RAW; /* a tunnel: DATA until the client ends its stream */
	} else if (end_stream || st->req.content_length == 0) {
		st->rb = RB_NONE;
		st->req_done = 1;
	} else if (st->req.content_length > 0) {
		st->rb = RB_CL;
		st->req_left = (uint64_t)st->req.content_length;
	} else {
		st->rb = RB_CHUNKED; /* to an HTTP/1.1 upstream, a body of unknown length is chunked */
	}
	hcm_stream_begin(st);
	return 0;
}

static int on_data(void *ctx, int32_t id, const uint8_t *p, size_t n, int end_stream)
{
	struct hconn *c = ctx;
	struct hstream *st = wf_h2_owner(c->h2, id);
	if (!st || st->rb == RB_NONE || st->req_done) {
		if (n)
			wf_h2_consume(c->h2, id, n); /* nobody wants it: let the client finish */
		return 0;
	}
	st->active = wf_loop_now(LOOP(c));
	if (n && wf_buf_append(&st->rq, POOL(c), p, n) < 0)
		return -1;
	if (end_stream)
		st->in_end = 1;
	hcm_up_send_body(st);
	return 0;
}

static void on_closed(void *ctx, int32_t id, uint32_t code)
{
	struct hconn *c = ctx;
	struct hstream *st = wf_h2_owner(c->h2, id);
	if (!st)
		return;
	st->h2_closed = 1;
	hcm_stream_abort(st);
}

static void on_goaway(void *ctx, int32_t last, uint32_t code)
{
	struct hconn *c = ctx;
	c->goaway = 1; /* the client opens no more streams; the open ones finish */
	if (!c->n_streams)
		c->closing = 1;
}

/* A request head over max_request_headers_kb or max_headers_count: the codec resets its stream
 * before it becomes one of ours (Envoy resets it too, and counts http2.header_overflow). */
static void on_header_overflow(void *ctx, int32_t id)
{
	struct hconn *c = ctx;
	const struct wf_hcm_cfg *cfg = c->l->hcm;
	wf_debug("%s: HTTP/2 stream %d: request headers over max_request_headers_kb (%u) or max_headers_count (%u): "
	         "stream reset", c->remote, id, cfg->max_request_headers_kb, cfg->max_headers_count);
	wf_stat_inc(cfg->st.h2_header_overflow);
}

static const struct wf_h2_ops ops = {
	.headers = on_headers,
	.data = on_data,
	.closed = on_closed,
	.goaway = on_goaway,
	.header_overflow = on_header_overflow,
};

/* ---- the response side: the codec ops ------------------------------------------------------ */

/* ":status" with a status code written into code[4]. */
static struct wf_hdr status_field(char *code, int status)
{
	code[0] = (char)('0' + status / 100 % 10);
	code[1] = (char)('0' + status / 10 % 10);
	code[2] = (char)('0' + status % 10);
	code[3] = 0;
	return (struct wf_hdr){":status", code, 7, 3};
}

static int h2_head(struct hstream *st, int status, const char *reason, uint32_t rl, struct wf_hlist *hl, int64_t cl,
                   int end)
{
	struct hconn *c = st->c;
	if (st->h2_closed || c->dead)
		return -1;
	struct wf_hdr small[48], *v = hl->n + 2 <= 48 ? small : malloc((hl->n + 2) * sizeof(*v));
	char code[4], len[24];
	uint32_t k = 0;
	v[k++] = status_field(code, status);
	for (uint32_t i = 0; i < hl->n; i++)
		if (!hl->dead[i])
			v[k++] = hl->h[i];
	if (cl >= 0) {
		v[k++] = (struct wf_hdr){"content-length", len, 14, (uint32_t)wf_fmt_u64(len, (uint64_t)cl)};
	}
	int r = wf_h2_submit_headers(c->h2, st->sid, v, k, end);
	if (v != small)
		free(v);
	if (end)
		st->down_done = 1;
	return r;
}

/* A 1xx: a HEADERS frame with its :status, without END_STREAM (RFC 9113 §8.1). */
static void h2_interim(struct hstream *st, int status, const struct wf_hdr *h, uint32_t n)
{
	if (st->h2_closed || st->c->dead || st->resp_started)
		return;
	struct wf_hdr small[32], *v = n + 1 <= 32 ? small : malloc((n + 1) * sizeof(*v));
	char code[4];
	v[0] = status_field(code, status);
	if (n) /* a bare status: h may be NULL */
		memcpy(v + 1, h, n * sizeof(*h));
	wf_h2_submit_headers(st->c->h2, st->sid, v, n + 1, 0);
	if (v != small)
		free(v);
	hcm_h2_flush(st->c);
}

static int h2_body(struct hstream *st, const char *p, size_t n)
{
	if (st->h2_closed || st->down_done)
		return -1;
	return wf_h2_send_data(st->c->h2, st->sid, p, n, 0);
}

static void h2_end(struct hstream *st)
{
	if (st->h2_closed || st->down_done)
		return;
	st->down_done = 1;
	if (st->n_trailers)
		wf_h2_submit_headers(st->c->h2, st->sid, st->trailers, st->n_trailers, 1);
	else
		wf_h2_send_data(st->c->h2, st->sid, NULL, 0, 1);
}

static uint32_t h2_queued(const struct hstream *st)
{
	return (uint32_t)wf_h2_stream_queued(st->c->h2, st->sid) + wf_sio_queued(&st->c->s);
}

/* The stream is over: a response cut short resets the h2 stream. */
static void h2_done(struct hstream *st)
{
	struct hconn *c = st->c;
	uint32_t left = stream_count(c, st, 0);
	if (!st->h2_closed) {
		wf_h2_set_owner(c->h2, st->sid, NULL);
		if (!st->down_done)
			wf_h2_reset(c->h2, st->sid, 2 /* INTERNAL_ERROR */);
		else if (wf_buf_len(&st->rq))
			wf_h2_consume(c->h2, st->sid, wf_buf_len(&st->rq));
	}
	hcm_stream_free(st);
	if (c->dead)
		return;
	if (!left) {
		c->head_started = wf_loop_now(LOOP(c)); /* idle from now */
		if (c->goaway)
			c->closing = 1;
		if (!c->h2_failed)
			arm(c);
	}
	hcm_h2_flush(c);
}

const struct hcm_codec hcm_h2_codec = {
	.head = h2_head,
	.interim = h2_interim,
	.body = h2_body,
	.end = h2_end,
	.queued = h2_queued,
	.done = h2_done,
};

/* ---- the connection --------------------------------------------------------------------------- */

/* Serialize what the session has to send into the socket's output (nothing more while the
 * client leaves WATERMARK bytes unread), then let paused upstreams go on where their streams'
 * queues drained. Not inside the session's own callbacks (the caller flushes after). */
static int serialize(struct hconn *c)
{
	if (c->in_h2 || c->dead)
		return -1;
	if (wf_sio_take_h2(LOOP(c), POOL(c), &c->s, c->h2, WATERMARK) < 0) {
		hcm_conn_close(c);
		return -1;
	}
	if (wf_h2_error(c->h2) != WF_H2_OK) {
		failed(c);
		if (c->dead)
			return -1;
	}
	if (wf_h2_done(c->h2) && !c->n_streams)
		c->closing = 1;
	if (c->closing && !wf_sio_queued(&c->s) && !c->s.cork && !c->flushing) {
		if (c->h2_failed) {
			if (!c->half_closed) {
				wf_sio_shutdown(&c->s); /* the GOAWAY is out: FIN, then drop what comes */
				c->half_closed = 1;
			}
			return 0;
		}
		hcm_conn_close(c);
		return -1;
	}
	return 0;
}

/* Write what the session has now, then let paused upstreams go on. */
static void flush_now(struct hconn *c)
{
	if (c->in_h2 || c->dead)
		return;
	if (c->flushing) {
		c->flush_again = 1;
		return;
	}
	c->flushing = 1;
	do {
		c->flush_again = 0;
		if (serialize(c) < 0)
			break;
		for (struct hstream *st = c->streams; st && !c->dead;) {
			if (st->up_paused && h2_queued(st) < st->down_wm) {
				hcm_up_resume(st); /* may end streams: start over */
				st = c->streams;
				continue;
			}
			st = st->h2_next;
		}
	} while (c->flush_again && !c->dead);
	c->flushing = 0;
	if (!c->dead)
		serialize(c);
}

/* The flush a batch of events asked for, once at the end of the loop iteration: the frames of
 * every stream answered meanwhile leave in one write (END_STREAM riding on the last DATA). */
static void flush_cb(struct wf_defer *d)
{
	struct hconn *c = (struct hconn *)((char *)d - offsetof(struct hconn, flush_d));
	c->flush_pending = 0;
	if (c->dead) {
		if (c->free_pending)
			free(c); /* conn_free came first and left it to us */
		return;
	}
	flush_now(c);
	if (!c->dead)
		hcm_conn_update(c);
}

void hcm_h2_flush(struct hconn *c)
{
	if (c->dead || c->flush_pending)
		return;
	c->flush_pending = 1;
	wf_loop_defer(LOOP(c), &c->flush_d);
}

/* The session found the client at fault (a flood, or a connection error): count it once; the
 * GOAWAY leaves, then the connection closes. */
static void failed(struct hconn *c)
{
	if (c->h2_failed)
		return;
	c->h2_failed = 1;
	enum wf_h2_error e = wf_h2_error(c->h2);
	wf_debug("%s: HTTP/2: %s", c->remote, wf_h2_error_str(e));
	wf_stat_inc(e == WF_H2_PROTOCOL ? c->l->hcm->st.cx_protocol_error : c->l->hcm->st.h2_abuse);
	c->goaway = 1;
	c->closing = 1;
	/* A client that does not read will not get the GOAWAY either: reset the connection now
	 * when its output is backed up, else give the GOAWAY a second to leave (Envoy's
	 * delayed_close_timeout) before resetting. */
	if (wf_sio_queued(&c->s) >= WATERMARK) {
		wf_sock_abort_on_close(c->s.io.fd);
		hcm_conn_close(c);
	} else {
		wf_timer_set(LOOP(c), &c->t, 1000);
	}
}

/* Feed what was read to the session. */
static void feed(struct hconn *c)
{
	uint32_t n = wf_buf_len(&c->s.rb);
	if (!n)
		return;
	c->ping_sent = 0; /* any frame from the client shows the connection alive (as Envoy) */
	c->in_h2 = 1;
	int r = wf_h2_recv(c->h2, (const uint8_t *)wf_buf_data(&c->s.rb), n);
	c->in_h2 = 0;
	if (c->dead)
		return;
	wf_buf_consume(&c->s.rb, POOL(c), n);
	if (r < 0) {
		failed(c);
		return;
	}
	int32_t head = wf_h2_head_pending(c->h2);
	if (head != c->head_sid) {
		/* a request head began or ended: request_headers_timeout (and no idle timeout meanwhile) */
		c->head_sid = head;
		c->head_sid_at = wf_loop_now(LOOP(c));
		c->head_late = 0;
		arm(c);
	}
}

static void drive(struct hconn *c)
{
	c->s.cork = 1;
	feed(c);
	if (c->dead)
		return;
	flush_now(c);
	if (c->dead)
		return;
	c->s.cork = 0;
	if (wf_sio_uncork(LOOP(c), POOL(c), &c->s) < 0 || (c->closing && !c->h2_failed && !wf_sio_queued(&c->s))) {
		hcm_conn_close(c);
		return;
	}
	hcm_conn_update(c);
}

int hcm_h2_start(struct hconn *c)
{
	const struct wf_hcm_cfg *cfg = c->l->hcm;
	c->h2 = wf_h2_new(1, &cfg->h2.lim, &ops, c, POOL(c));
	if (!c->h2) {
		hcm_conn_close(c);
		return -1;
	}
	c->codec = &hcm_h2_codec;
	c->flush_d.cb = flush_cb;
	wf_stat_inc(cfg->st.cx_http2_total);
	wf_stat_inc(cfg->st.cx_http2_active);
	c->head_started = wf_loop_now(LOOP(c));
	c->ping_at = c->head_started + cfg->h2.ping_interval_ms;
	arm(c);
	drive(c);
	return 0;
}

void hcm_h2_process(struct hconn *c)
{
	if (c->dead)
		return;
	hcm_h2_flush(c);
	if (!c->dead)
		hcm_conn_update(c);
}

void hcm_h2_io(struct hconn *c, uint32_t ev)
{
	if (ev & EPOLLOUT) {
		if (wf_sio_flush(LOOP(c), POOL(c), &c->s) < 0) {
			hcm_conn_close(c);
			return;
		}
	}
	if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && c->h2_failed) {
		/* after the GOAWAY: what the client still sends is read and dropped (closing with it
		 * unread would reset the connection before the client read the GOAWAY) until it
		 * closes, or the second given to it passes, or it keeps flooding (256 KiB) */
		int r = wf_sio_read(POOL(c), &c->s, READ_MAX);
		c->dropped += wf_buf_len(&c->s.rb);
		wf_buf_consume(&c->s.rb, POOL(c), wf_buf_len(&c->s.rb));
		if (r < 0 || c->dropped > 256 * 1024) {
			if (r >= 0)
				wf_sock_abort_on_close(c->s.io.fd);
			hcm_conn_close(c);
			return;
		}
	} else if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && !c->closing) {
		int r = wf_sio_read(POOL(c), &c->s, READ_MAX);
		if (r < 0 && !wf_buf_len(&c->s.rb)) {
			hcm_conn_close(c); /* the client went: its open streams are reset (DC) */
			return;
		}
	}
	drive(c);
}

void hcm_h2_drain(struct hconn *c)
{
	go_away(c);
	hcm_h2_process(c);
}

void hcm_h2_free(struct hconn *c)
{
	while (c->streams) {
		struct hstream *st = c->streams;
		st->h2_closed = 1;
		hcm_stream_abort(st);
		if (c->streams == st) /* already ended: just let go */
			stream_count(c, st, 0);
	}
	wf_h2_free(c->h2);
	c->h2 = NULL;
}
