/* A gRPC client stream on its own HTTP/2 connection (see grpc_stream.h).
 *
 * Everything the codec reports is only recorded while it runs (in_h2): the stream ends, and
 * the owner hears `closed`, after wf_h2_recv returned, so that no callback frees the codec
 * under itself. */
#include "proxy/grpc_stream.h"

#include "core/buf.h"
#include "core/log.h"
#include "http/grpc.h"
#include "http/h2.h"
#include "proxy/config.h"
#include "proxy/sio.h"
#include "proxy/tls.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_MAX (256 * 1024)
#define MSG_MAX (64u * 1024 * 1024)   /* a whole config push can be large */

struct wf_grpc_stream {
	struct wf_loop *loop;
	struct wf_pool pool;
	struct wf_sio sio;
	struct wf_h2 *h2;
	const struct wf_tls_cfg *tls;
	uint64_t ping_interval_ms, ping_timeout_ms;
	uint64_t last_rx;                  /* when the peer last sent anything (ms) */
	struct wf_timer timer;             /* connect_timeout, then the keepalive PINGs */
	const struct wf_grpc_stream_ops *ops;
	void *ctx;
	char *authority, *path;
	int32_t id;
	uint8_t connecting, ready, in_h2, over, closed_by_owner, told_ready;
	int status;                        /* grpc-status, once known; -1 before */
	char why[256];
	/* the message being received: its prefix, length, bytes seen, and whether it is gathered
	 * whole (into msg) */
	uint8_t pre[5], pre_n, whole;
	size_t cur_len, cur_off;
	uint8_t *msg; size_t msg_cap;
	struct wf_defer defer;
};

static void finish(struct wf_grpc_stream *s, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void stream_free(struct wf_defer *d)
{
	struct wf_grpc_stream *s = (struct wf_grpc_stream *)((char *)d - offsetof(struct wf_grpc_stream, defer));
	free(s->msg);
	free(s->authority);
	free(s->path);
	wf_pool_fini(&s->pool);
	free(s);
}

/* Tear the connection down now; free the struct after this batch of events. */
static void teardown(struct wf_grpc_stream *s)
{
	wf_timer_cancel(s->loop, &s->timer);
	wf_h2_free(s->h2);
	s->h2 = NULL;
	if (s->sio.io.fd >= 0)
		wf_sio_close(s->loop, &s->pool, &s->sio);
	s->sio.io.fd = -1;
	s->defer.cb = stream_free;
	wf_loop_defer(s->loop, &s->defer);
}

/* The call is over: tell the owner (once) and tear down. */
static void finish(struct wf_grpc_stream *s, int status, const char *fmt, ...)
{
	if (s->over)
		return;
	s->over = 1;
	char why[sizeof(s->why)]; /* the arguments may be s->why itself */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	memcpy(s->why, why, sizeof(why));
	teardown(s);
	if (!s->closed_by_owner)
		s->ops->closed(s->ctx, status, s->why);
}

/* ---- the codec's events ------------------------------------------------------------------ */

/* grpc-message is percent-encoded: decode it into out (cap bytes, NUL-terminated), control
 * characters shown as '?'. */
static void percent_decode(const char *in, size_t n, char *out, size_t cap)
{
	size_t k = 0;
	for (size_t i = 0; i < n && k + 1 < cap; i++) {
		char c = in[i];
		if (c == '%' && i + 2 < n && isxdigit((unsigned char)in[i + 1]) && isxdigit((unsigned char)in[i + 2])) {
			char hex[3] = {in[i + 1], in[i + 2], 0};
			c = (char)strtol(hex, NULL, 16);
			i += 2;
		}
		out[k++] = (unsigned char)c < 0x20 ? '?' : c;
	}
	out[k] = 0;
}

static int on_headers(void *ctx, int32_t id, const struct wf_hdr *h, uint32_t n, int end_stream, int trailers)
{
	struct wf_grpc_stream *s = ctx;
	if (id != s->id)
		return 0;
	const struct wf_hdr *st = wf_hdr_find(h, n, ":status", 7);
	if (st && !trailers) {
		int code = atoi(st->value);
		if (code >= 100 && code < 200)
			return 0;
		if (code != 200) {
			s->status = wf_grpc_status_from_http(code);
			snprintf(s->why, sizeof(s->why), "HTTP status %d", code);
			return -1;
		}
	}
	const struct wf_hdr *gs = wf_hdr_find(h, n, "grpc-status", 11);
	/* trailers (or a trailers-only response) end the call, whatever our side still has */
	if (gs && end_stream)
		s->id = -1;
	if (gs) {
		s->status = wf_grpc_status_parse(gs->value, gs->value_len);
		if (s->status < 0)
			s->status = WF_GRPC_UNKNOWN;
		const struct wf_hdr *gm = wf_hdr_find(h, n, "grpc-message", 12);
		char msg[160] = "";
		if (gm)
			percent_decode(gm->value, gm->value_len, msg, sizeof(msg));
		snprintf(s->why, sizeof(s->why), "grpc-status %d (%s)%s%s", s->status, wf_grpc_status_name(s->status),
		         *msg ? ": " : "", msg);
	}
	return 0;
}

/* The owner ended the call from one of its callbacks: no `closed` for it. */
static int owner_ended(struct wf_grpc_stream *s)
{
	s->closed_by_owner = 1;
	return -1;
}

/* The bytes [p, p+k) of the current message, at offset s->cur_off: to the owner's `piece`
 * as they come, or gathered into s->msg and given whole to `message` (without `piece`, or
 * when `piece` asked for it at the message's first bytes). 0, or <0 to end the call (when
 * the owner ended it from a callback, closed_by_owner is set: no `closed`). */
static int message_bytes(struct wf_grpc_stream *s, const uint8_t *p, size_t k)
{
	if (!s->cur_off)
		s->whole = 1;
	if (!s->cur_off && s->ops->piece) {
		int r = s->ops->piece(s->ctx, p, k, 0, s->cur_len);
		if (r < 0 || s->closed_by_owner)
			return owner_ended(s);
		s->whole = r == 1;
	} else if (!s->whole) {
		if (s->ops->piece(s->ctx, p, k, s->cur_off, s->cur_len) < 0 || s->closed_by_owner)
			return owner_ended(s);
	}
	s->cur_off += k;
	if (!s->whole)
		return 0;
	if (s->cur_len > s->msg_cap) { /* the prefix said how much: one allocation */
		uint8_t *m = realloc(s->msg, s->cur_len);
		if (!m) {
			s->status = WF_GRPC_RESOURCE_EXHAUSTED;
			snprintf(s->why, sizeof(s->why), "out of memory for a message of %zu bytes", s->cur_len);
			return -1;
		}
		s->msg = m;
		s->msg_cap = s->cur_len;
	}
	if (k)
		memcpy(s->msg + s->cur_off - k, p, k);
	if (s->cur_off == s->cur_len && (s->ops->message(s->ctx, s->msg, s->cur_len) < 0 || s->closed_by_owner))
		return owner_ended(s);
	return 0;
}

/* Split the received bytes into messages (5-byte prefix: compressed flag, big-endian length). */
static int on_data(void *ctx, int32_t id, const uint8_t *p, size_t n, int end_stream)
{
	struct wf_grpc_stream *s = ctx;
	if (s->h2 && n)
		wf_h2_consume(s->h2, id, n);
	if (id != s->id || s->closed_by_owner)
		return 0;
	while (n) {
		if (s->pre_n < 5) { /* the 5-byte prefix, which may come in pieces */
			size_t k = 5u - s->pre_n < n ? 5u - s->pre_n : n;
			memcpy(s->pre + s->pre_n, p, k);
			s->pre_n += (uint8_t)k;
			p += k, n -= k;
			if (s->pre_n < 5)
				break;
			size_t len = wf_grpc_prefix_len(s->pre);
			if (s->pre[0] != 0 || len > MSG_MAX) {
				s->status = WF_GRPC_INTERNAL;
				snprintf(s->why, sizeof(s->why), s->pre[0] ? "a compressed message (no grpc-encoding was asked for)"
				                                           : "a message over %u bytes", MSG_MAX);
				return -1;
			}
			s->cur_len = len;
			s->cur_off = 0;
			if (!len && message_bytes(s, p, 0) < 0)
				return -1;
		}
		size_t k = s->cur_len - s->cur_off < n ? s->cur_len - s->cur_off : n;
		if (k && message_bytes(s, p, k) < 0)
			return -1;
		p += k, n -= k;
		if (s->cur_off == s->cur_len)
			s->pre_n = 0;
	}
	return 0;
}

static void on_closed(void *ctx, int32_t id, uint32_t code)
{
	struct wf_grpc_stream *s = ctx;
	if (id != s->id || id < 0)
		return;
	s->id = -1; /* finished after wf_h2_recv returns */
	if (s->status < 0) {
		s->status = code ? WF_GRPC_UNAVAILABLE : WF_GRPC_INTERNAL;
		snprintf(s->why, sizeof(s->why), code ? "stream reset (HTTP/2 error %u)" : "stream ended without a grpc-status",
		         code);
	}
}

static void on_goaway(void *ctx, int32_t last, uint32_t code)
{
	struct wf_grpc_stream *s = ctx;
	if (s->status < 0 && last < s->id) {
		s->status = WF_GRPC_UNAVAILABLE;
		snprintf(s->why, sizeof(s->why), "GOAWAY (HTTP/2 error %u)", code);
	}
}

static void on_drained(void *ctx, int32_t id) {}

static const struct wf_h2_ops h2_ops = {
	.headers = on_headers,
	.data = on_data,
	.closed = on_closed,
	.goaway = on_goaway,
	.drained = on_drained,
};

/* ---- the socket -------------------------------------------------------------------------- */

/* Hand the codec's output to the socket. 0, or <0 when the connection failed. */
static int flush(struct wf_grpc_stream *s)
{
	if (wf_sio_take_h2(s->loop, &s->pool, &s->sio, s->h2, UINT32_MAX) < 0)
		return -ECONNRESET;
	int r = wf_sio_flush(s->loop, &s->pool, &s->sio);
	if (r < 0)
		return r;
	s->sio.want = EPOLLIN | EPOLLRDHUP;
	wf_sio_update(s->loop, &s->sio);
	return 0;
}

static void on_io(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	struct wf_grpc_stream *s = io->data;
	if (s->over)
		return;
	if (s->connecting) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err || (ev & (EPOLLERR | EPOLLHUP))) {
			finish(s, WF_GRPC_UNAVAILABLE, "cannot connect: %s", strerror(err ? err : ECONNREFUSED));
			return;
		}
		s->connecting = 0;
		s->last_rx = wf_loop_now(loop);
		wf_timer_set(loop, &s->timer, s->ping_interval_ms); /* 0: no keepalive */
		if (s->tls && wf_tls_attach(&s->sio, s->tls) < 0) {
			finish(s, WF_GRPC_UNAVAILABLE, "TLS: out of memory");
			return;
		}
	}
	int r = wf_sio_read(&s->pool, &s->sio, READ_MAX);
	uint32_t n = wf_buf_len(&s->sio.rb);
	if (n) {
		s->last_rx = wf_loop_now(loop);
		s->in_h2 = 1;
		int rc = wf_h2_recv(s->h2, (const uint8_t *)wf_buf_data(&s->sio.rb), n);
		s->in_h2 = 0;
		wf_buf_consume(&s->sio.rb, &s->pool, n);
		if (s->closed_by_owner) {
			finish(s, WF_GRPC_CANCELLED, "ended by its owner");
			return;
		}
		if (rc < 0) {
			flush(s); /* the GOAWAY or RST_STREAM */
			if (s->status < 0) {
				s->status = WF_GRPC_INTERNAL;
				snprintf(s->why, sizeof(s->why), "HTTP/2: %s", wf_h2_error_str(wf_h2_error(s->h2)));
			}
			finish(s, s->status, "%s", s->why);
			return;
		}
		if (s->id < 0) {
			flush(s);
			finish(s, s->status, "%s", s->why);
			return;
		}
	}
	if (r < 0) {
		if (s->tls && wf_sio_is_tls(&s->sio) && !wf_tls_established(&s->sio))
			finish(s, WF_GRPC_UNAVAILABLE, "TLS handshake: %s", wf_tls_failure(&s->sio));
		else
			finish(s, WF_GRPC_UNAVAILABLE, "connection %s", r == -1 ? "closed by the server" : strerror(-r));
		return;
	}
	if (flush(s) < 0) {
		finish(s, WF_GRPC_UNAVAILABLE, "%s%s", s->tls ? "TLS: " : "connection failed",
		       s->tls ? wf_tls_failure(&s->sio) : "");
		return;
	}
	if (!s->told_ready && (!s->tls || wf_tls_established(&s->sio))) {
		s->told_ready = 1;
		s->ops->ready(s->ctx);
	}
}

/* Connecting: connect_timeout passed. Connected: a keepalive tick — a PING when the peer was
 * quiet for an interval, the end when it stayed quiet for the timeout after one. */
static void on_timer(struct wf_loop *loop, struct wf_timer *t)
{
	struct wf_grpc_stream *s = t->data;
	if (s->connecting) {
		finish(s, WF_GRPC_UNAVAILABLE, "connect timeout");
		return;
	}
	uint64_t quiet = wf_loop_now(loop) - s->last_rx;
	if (quiet >= s->ping_interval_ms + s->ping_timeout_ms) {
		finish(s, WF_GRPC_UNAVAILABLE, "no answer to keepalive PINGs for %llu ms", (unsigned long long)quiet);
		return;
	}
	if (quiet >= s->ping_interval_ms) {
		wf_h2_ping(s->h2);
		if (flush(s) < 0) {
			finish(s, WF_GRPC_UNAVAILABLE, "connection failed");
			return;
		}
		wf_timer_set(loop, t, s->ping_timeout_ms);
		return;
	}
	wf_timer_set(loop, t, s->ping_interval_ms - quiet);
}

struct wf_grpc_stream *wf_grpc_stream_open(struct wf_loop *loop, const struct wf_cluster *cl,
                                           const struct wf_addr *addr, const char *authority,
                                           const char *path, const struct wf_grpc_stream_ops *ops, void *ctx)
{
	const struct wf_tls_cfg *tls = cl->tls;
	int fd = wf_sock_connect(addr);
	if (fd < 0)
		return NULL;
	if (cl->keepalive)
		wf_sock_keepalive(fd, cl->keepalive_time, cl->keepalive_interval, cl->keepalive_probes);
	struct wf_grpc_stream *s = calloc(1, sizeof(*s));
	s->timer = (struct wf_timer){.cb = on_timer, .data = s};
	s->ping_interval_ms = cl->h2.ping_interval_ms;
	s->ping_timeout_ms = cl->h2.ping_timeout_ms;
	s->loop = loop;
	wf_pool_init(&s->pool, 4);
	s->sio = (struct wf_sio){.io = {.fd = fd, .cb = on_io, .data = s}};
	s->tls = tls;
	s->ops = ops;
	s->ctx = ctx;
	s->status = -1;
	s->authority = strdup(authority);
	s->path = strdup(path);
	struct wf_h2_limits lim = cl->h2.lim;
	s->h2 = wf_h2_new(0, &lim, &h2_ops, s, &s->pool);
	const char *scheme = tls ? "https" : "http";
#define H(n, v) {n, v, sizeof(n) - 1, (uint32_t)strlen(v)}
	struct wf_hdr head[] = {
	    H(":method", "POST"), H(":scheme", scheme), H(":authority", s->authority), H(":path", s->path),
	    H("content-type", "application/grpc"), H("te", "trailers"), H("user-agent", "weft"),
	};
#undef H
	s->id = s->h2 ? wf_h2_submit_request(s->h2, head, sizeof(head) / sizeof(head[0]), 0) : -1;
	if (s->id < 0) {
		wf_h2_free(s->h2);
		close(fd);
		wf_pool_fini(&s->pool);
		free(s->authority);
		free(s->path);
		free(s);
		return NULL;
	}
	s->connecting = 1;
	wf_io_set(loop, &s->sio.io, EPOLLOUT);
	wf_timer_set(loop, &s->timer, cl->connect_timeout_ms ? cl->connect_timeout_ms : 5000);
	return s;
}

int wf_grpc_stream_send(struct wf_grpc_stream *s, const void *msg, size_t n)
{
	if (s->over || s->id < 0 || n > MSG_MAX)
		return -EPIPE;
	uint8_t *b = wf_h2_send_reserve(s->h2, s->id, n + 5); /* framed in the stream's queue */
	if (!b)
		return -EPIPE; /* the stream ended, or no memory */
	wf_grpc_prefix_put(b, (uint32_t)n);
	memcpy(b + 5, msg, n);
	int r = wf_h2_send_commit(s->h2, s->id, n + 5, 0);
	if (r < 0)
		return r;
	if (!s->in_h2 && !s->connecting && flush(s) < 0)
		return -EPIPE; /* reported by the next event */
	return 0;
}

void wf_grpc_stream_close(struct wf_grpc_stream *s)
{
	if (!s)
		return;
	s->closed_by_owner = 1;
	if (s->in_h2)
		return; /* on_io finishes it when the codec returns */
	if (!s->over) {
		s->over = 1;
		if (s->h2 && s->id > 0) {
			wf_h2_reset(s->h2, s->id, 8 /* CANCEL */);
			if (!s->connecting)
				flush(s);
		}
		teardown(s);
	}
}
