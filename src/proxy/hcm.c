/* envoy.filters.network.http_connection_manager: streams, routing, and the proxying of each
 * stream upstream (an HTTP/1.1 connection from the pool, or a stream on an HTTP/2 connection of
 * proxy/up2.c), whatever the downstream speaks; and the HTTP/1.1 codec of the downstream
 * connection (its streams one at a time; pipelined requests wait in the read buffer). The
 * HTTP/2 codec is hcm_h2.c: a stream hands its response to its connection's codec ops.
 *
 * A stream's life:
 *   head parsed -> copied out of the read buffer (so the buffer can move) -> route
 *     -> local reply (404/redirect/direct) or upstream: pick host, get connection,
 *        send the rewritten head, stream the body (Content-Length or chunked, re-framed)
 *   response head parsed -> rewritten -> sent downstream; body streamed (re-framed as needed)
 *   response complete -> access log + stats -> upstream connection back to the pool
 *     -> next pipelined request, or close when the connection must not be kept.
 * Back-pressure: neither side reads while the other side's output queue is over its
 * watermark (64 KiB, or less when per_connection_buffer_limit_bytes of the listener or the
 * cluster says so), so a slow reader never makes a buffer grow.
 *
 * Upgrades (WebSocket and the like, upgrade_configs): the request goes upstream with its
 * Upgrade and Connection headers; a 101 turns both connections into a byte tunnel
 * (proxy/tunnel.c) until both sides have closed; any other answer is relayed and the
 * connection closes (bytes after an upgrade request's head are upgrade payload, never a next
 * request). A CONNECT goes upstream the same way (a 2xx opens the tunnel), or, on a route with
 * connect_config, is answered 200 by Weft once a fresh TCP connection to the cluster is up,
 * and tunnelled the same way. */
#include "proxy/hcm_int.h"

#include "core/hash.h"
#include "core/log.h"
#include "core/str.h"
#include "proxy/alog.h"
#include "http/grpc.h"
#include "proxy/hlist.h"
#include "proxy/outlier.h"
#include "proxy/router.h"
#include "proxy/shadow.h"
#include "proxy/stats.h"
#include "proxy/tls.h"
#include "proxy/tunnel.h"
#include "proxy/upstream.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Stream objects are recycled per worker: a request costs no allocation in the common case. */
static __thread struct hstream *free_streams;
static __thread unsigned n_free_streams;

static struct hstream *stream_alloc(void)
{
	struct hstream *st = free_streams;
	if (st) {
		free_streams = st->next_free;
		n_free_streams--;
	} else {
		st = malloc(sizeof(*st));
	}
	/* the inline header and head buffers at the end are written before they are read */
	memset(st, 0, offsetof(struct hstream, hdrs_inline));
	return st;
}

static void stream_recycle(struct hstream *st)
{
	if (st->hdrs != st->hdrs_inline)
		free(st->hdrs);
	if (st->head != st->head_inline)
		free(st->head);
#ifdef __SANITIZE_ADDRESS__
	free(st); /* under ASan every stream is a fresh allocation, so a stale pointer is caught */
	return;
#endif
	if (n_free_streams >= 128) {
		free(st);
		return;
	}
	st->next_free = free_streams;
	free_streams = st;
	n_free_streams++;
}


static void stream_end(struct hstream *st);
static void conn_process(struct hconn *c);
static void stream_touch(struct hstream *st);
static void host_done(struct hstream *st);
static void conn_process_(struct hconn *c);
static void conn_update(struct hconn *c);
static void conn_close(struct hconn *c);
static void up_send_body(struct hstream *st);
static void route_continue(struct hstream *st);
static void route_dispatch(struct hstream *st);
static void filters_run(struct hstream *st, uint32_t from);
static void filters_end(struct hstream *st);
static void upgrade_request(struct hstream *st);
static void tunnel_run(struct hstream *st);
static void connect_established(struct hstream *st);
static int upgrade_allowed(struct hstream *st);
static int upgrade_accepted(struct hstream *st, const struct wf_h1_resp *resp, uint32_t n);
enum { RETRY_CONNECT, RETRY_RESET, RETRY_REFUSED, RETRY_TIMEOUT, RETRY_STATUS };
struct wf_h1_resp;
static int try_retry(struct hstream *st, int reason, int code, const struct wf_h1_resp *resp);
static void replay_keep(struct hstream *st, const char *p, size_t n);
static int send_attempt(struct hstream *st, int h2);
static int start_h2(struct hstream *st, const struct wf_host *h, int *reused);

static const struct wf_uconn_ops up_ops;

/* ---- small helpers ----------------------------------------------------------------------- */

static struct wf_loop *LOOP(struct hconn *c) { return &c->w->loop; }
static struct wf_pool *POOL(struct hconn *c) { return &c->w->pool; }
/* A stream's clock: the loop's wake-up time (one clock read per batch of events). */
#define NOW_US(st) wf_loop_now_us(LOOP((st)->c))

static const char *status_text(int code)
{
	switch (code) {
	case 100: return "Continue";
	case 102: return "Processing";
	case 103: return "Early Hints";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 408: return "Request Timeout";
	case 413: return "Payload Too Large";
	case 426: return "Upgrade Required";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return code < 300 ? "OK" : code < 400 ? "Redirect" : code < 500 ? "Client Error" : "Server Error";
	}
}

static void http_date(char *out, size_t n)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* A growable output string for heads. One per worker is kept for reuse (out_take/out_give),
 * so serialising a head allocates nothing once the worker has warmed up; a nested user (a
 * redirect building its Location while a reply is serialised) simply gets a fresh one. */
static __thread struct out tls_out;

static struct out out_take(void)
{
	struct out o = tls_out;
	tls_out = (struct out){0};
	o.n = 0;
	return o;
}

static void out_give(struct out *o)
{
	if (!tls_out.p && o->cap <= 64 * 1024)
		tls_out = *o;
	else
		free(o->p);
	*o = (struct out){0};
}

static __attribute__((noinline)) void out_grow(struct out *o, size_t n)
{
	o->cap = (o->n + n + 1) * 2 + 256;
	o->p = realloc(o->p, o->cap);
}

static inline void out_put(struct out *o, const char *s, size_t n)
{
	if (o->n + n + 1 > o->cap)
		out_grow(o, n);
	memcpy(o->p + o->n, s, n);
	o->n += n;
}
#define OUT_LIT(o, lit) out_put(o, lit, sizeof(lit) - 1)

static void out_hdr(struct out *o, const char *k, size_t kn, const char *v, size_t vn)
{
	if (o->n + kn + vn + 5 > o->cap)
		out_grow(o, kn + vn + 4);
	char *p = o->p + o->n;
	memcpy(p, k, kn);
	p += kn;
	*p++ = ':';
	*p++ = ' ';
	memcpy(p, v, vn);
	p += vn;
	*p++ = '\r';
	*p++ = '\n';
	o->n = (size_t)(p - o->p);
}

/* Decimal and hex without printf: these run for every request. buf has room for 20 digits.
 * Return the length written (no NUL). */
static size_t fmt_hex(char *buf, uint64_t v)
{
	static const char digits[] = "0123456789abcdef";
	char tmp[16];
	size_t n = 0;
	do {
		tmp[n++] = digits[v & 15];
		v >>= 4;
	} while (v);
	for (size_t i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}

/* "%x\r\n": a chunk-size line; returns its length (buf: 20 bytes). */
static int chunk_line(char *buf, uint64_t size)
{
	size_t n = fmt_hex(buf, size);
	buf[n] = '\r';
	buf[n + 1] = '\n';
	return (int)n + 2;
}

static void out_u64(struct out *o, uint64_t v)
{
	char b[20];
	out_put(o, b, wf_fmt_u64(b, v));
}

static void out_content_length(struct out *o, uint64_t v)
{
	OUT_LIT(o, "content-length: ");
	out_u64(o, v);
	OUT_LIT(o, "\r\n");
}

/* Body bytes to a peer, framed as a chunk when the message is re-framed as chunked. */
static int send_body(struct hconn *c, struct wf_sio *to, const char *p, size_t n, int chunked)
{
	if (!chunked)
		return wf_sio_write(LOOP(c), POOL(c), to, p, n);
	char hdr[24];
	int hl = chunk_line(hdr, n);
	struct iovec iov[3] = {{hdr, (size_t)hl}, {(void *)p, n}, {"\r\n", 2}};
	return wf_sio_writev(LOOP(c), POOL(c), to, iov, 3);
}

static void out_fmt(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_fmt(struct out *o, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		out_put(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* ---- header lists with edits ------------------------------------------------------------- */

/* Like `out`, one header list per worker is reused (hl_init takes it, hl_free gives it back). */
static __thread struct wf_hlist tls_hl;

static void hl_init(struct wf_hlist *l, uint32_t cap)
{
	*l = tls_hl;
	tls_hl = (struct wf_hlist){0};
	l->n = 0;
	if (l->cap < cap + 8) {
		free(l->h);
		free(l->dead);
		l->cap = cap + 8;
		l->h = malloc(l->cap * sizeof(*l->h));
		l->dead = malloc(l->cap);
	}
}

static void hl_free(struct wf_hlist *l)
{
	if (!tls_hl.h && l->cap <= 1024) {
		tls_hl = *l;
	} else {
		free(l->h);
		free(l->dead);
	}
	*l = (struct wf_hlist){0};
}

/* Hop-by-hop headers never cross the proxy (RFC 9110 §7.6.1), nor does anything the
 * Connection header names. */
static int hop_by_hop(const struct wf_hdr *h, const struct wf_hdr *conn)
{
	switch (h->name_len) { /* every header of every message comes here: lengths first */
	case 2: if (WF_HDR_IS(h, "te")) return 1; break;
	case 7: if (WF_HDR_IS(h, "upgrade") || WF_HDR_IS(h, "trailer")) return 1; break;
	case 10: if (WF_HDR_IS(h, "connection") || WF_HDR_IS(h, "keep-alive")) return 1; break;
	case 16: if (WF_HDR_IS(h, "proxy-connection")) return 1; break;
	case 17: if (WF_HDR_IS(h, "transfer-encoding")) return 1; break;
	case 18: if (WF_HDR_IS(h, "proxy-authenticate")) return 1; break;
	}
	if (conn) {
		const char *p = conn->value, *e = p + conn->value_len;
		while (p < e) {
			while (p < e && (*p == ' ' || *p == '\t' || *p == ','))
				p++;
			const char *s = p;
			while (p < e && *p != ',' && *p != ' ' && *p != '\t')
				p++;
			if (p > s && wf_str_ieq(h->name, h->name_len, s, (size_t)(p - s)))
				return 1;
		}
	}
	return 0;
}

/* The Connection header of h[0..n), or NULL when it names nothing that hop_by_hop does not
 * drop already: "keep-alive", what most HTTP/1.1 peers send, names only itself. */
static const struct wf_hdr *connection_names(const struct wf_hdr *h, uint32_t n)
{
	const struct wf_hdr *c = wf_hdr_find(h, n, "connection", 10);
	return c && c->value_len == 10 && wf_ieq_lower(c->value, "keep-alive", 10) ? NULL : c;
}

/* Fields Weft sets itself in a head it forwards (bits): copying the received head drops those
 * it will set and notes those it adds only when absent, so that each is then appended once,
 * as wf_hlist_set would, without a walk of the list per name. */
enum {
	SET_HOST = 1 << 0, SET_XFF = 1 << 1, SET_XFP = 1 << 2, SET_ATTEMPTS = 1 << 3, SET_ORIGINAL_PATH = 1 << 4,
	SET_REQUEST_ID = 1 << 5, SET_RQ_TIMEOUT = 1 << 6, SET_SERVICE_TIME = 1 << 7, SET_SERVER = 1 << 8,
};

static unsigned weft_sets(const struct wf_hdr *h)
{
	switch (h->name_len) {
	case 4: return WF_HDR_IS(h, "host") ? SET_HOST : 0;
	case 6: return WF_HDR_IS(h, "server") ? SET_SERVER : 0;
	case 12: return WF_HDR_IS(h, "x-request-id") ? SET_REQUEST_ID : 0;
	case 15: return WF_HDR_IS(h, "x-forwarded-for") ? SET_XFF : 0;
	case 17: return WF_HDR_IS(h, "x-forwarded-proto") ? SET_XFP : 0;
	case 21:
		return WF_HDR_IS(h, "x-envoy-attempt-count")   ? SET_ATTEMPTS
		       : WF_HDR_IS(h, "x-envoy-original-path") ? SET_ORIGINAL_PATH
		                                               : 0;
	case 29: return WF_HDR_IS(h, "x-envoy-upstream-service-time") ? SET_SERVICE_TIME : 0;
	case 30: return WF_HDR_IS(h, "x-envoy-expected-rq-timeout-ms") ? SET_RQ_TIMEOUT : 0;
	}
	return 0;
}

/* A 1xx interim response from the upstream (either protocol). As in Envoy, the client gets it
 * only with proxy_100_continue, and only 100 Continue (once, and when the client asked for it),
 * 102 Processing and 103 Early Hints; its hop-by-hop headers stay behind. */
static void relay_interim(struct hstream *st, int status, const struct wf_hdr *h, uint32_t n)
{
	int relay = st->cfg->proxy_100_continue && (status == 102 || status == 103 ||
	            (status == 100 && !st->sent_100 && st->req.expect_continue));
	if (status == 100)
		st->sent_100 = 1;
	if (!relay)
		return;
	const struct wf_hdr *conn = connection_names(h, n);
	struct wf_hdr v[64];
	uint32_t k = 0;
	for (uint32_t i = 0; i < n && k < 64; i++)
		if (!hop_by_hop(&h[i], conn))
			v[k++] = h[i];
	st->c->codec->interim(st, status, v, k);
}

/* An upgrade's Upgrade and Connection headers cross the proxy as they came (as in Envoy). */
static int upgrade_header(const struct wf_hdr *h)
{
	return WF_HDR_IS(h, "upgrade") || WF_HDR_IS(h, "connection");
}

/* ---- stream lifecycle ------------------------------------------------------------------- */

static void log_stream(struct hstream *st)
{
	const struct wf_hcm_cfg *cfg = st->cfg;
	struct wf_stream_info *si = &st->si;
	si->end_us = NOW_US(st);
	si->method = st->req.method;
	si->method_len = st->req.method_len;
	si->path = st->req.path;
	si->path_len = st->req.path_len;
	si->authority = st->req.host;
	si->authority_len = st->req.host_len;
	si->protocol = !st->req.method ? NULL : st->c->h2 ? "HTTP/2" : st->req.minor ? "HTTP/1.1" : "HTTP/1.0";
	if (st->ext_tunnel)
		wf_stat_dec(cfg->st.cx_upgrades_active);
	if (st->tunnel) {
		si->bytes_received += st->tun.bytes[0];
		si->bytes_sent += st->tun.bytes[1];
		wf_stat_dec(cfg->st.cx_upgrades_active);
	}
	si->req_headers = st->hdrs;
	si->n_req_headers = st->req.n_headers;
	si->resp_headers = st->out_hdrs;
	si->n_resp_headers = st->n_out_hdrs;
	if (!si->downstream_remote)
		si->downstream_remote = st->c->remote;
	si->downstream_direct_remote = st->c->remote;
	si->downstream_local = st->c->local;
	if (st->host)
		si->upstream_host = st->host->addr_str;
	if (st->cluster)
		si->upstream_cluster = st->cluster->name;
	if (st->route)
		si->route_name = st->route->name;
	if (st->request_id[0]) {
		si->request_id = st->request_id;
		si->request_id_len = (uint32_t)strlen(st->request_id);
	}
	for (uint32_t i = 0; i < cfg->n_logs; i++)
		if (wf_alog_emit(cfg->logs[i], st->c->w->id, si))
			wf_worker_log_dirty(st->c->w, cfg->logs[i]);
	/* stats */
	const struct wf_hcm_stats *hs = &cfg->st;
	int code = si->response_code;
	uint64_t ms = (si->end_us - si->start_us) / 1000;
	wf_stat_hist(hs->rq_time, ms);
	wf_stat_classes(hs->rq_2xx, hs->rq_3xx, hs->rq_4xx, hs->rq_5xx, code);
	wf_stat_dec(hs->rq_active);
	if (st->cluster)
		wf_stat_dec(st->cluster->st.rq_active);
	if (st->cluster && st->host) {
		const struct wf_cluster_stats *cs = &st->cluster->st;
		wf_stat_inc(cs->rq_completed);
		host_done(st);
		if (code >= 500 || !st->resp_started || (si->response_flags & (WF_RF_UT | WF_RF_UF | WF_RF_UC | WF_RF_UPE)))
			wf_stat_inc(st->host->st_rq_error);
		else
			wf_stat_inc(st->host->st_rq_success);
		/* Envoy charges the cluster with the responses it got, and with the 5xx it answered
		 * for an upstream failure (connection failure, reset, timeout, protocol error). */
		if (st->resp_started && (st->n_resp_hdrs || (si->response_flags & (WF_RF_UT | WF_RF_UF | WF_RF_UC | WF_RF_UPE)))) {
			wf_stat_classes(cs->rq_2xx, cs->rq_3xx, cs->rq_4xx, cs->rq_5xx, code);
			wf_stat_code(cs->rq_code, code);
			wf_stat_hist(cs->rq_time, st->t_sent_us ? (si->end_us - st->t_sent_us) / 1000 : ms);
		}
	}
}

/* The stream stops counting as an active request of st->host (an attempt ended). */
static void host_done(struct hstream *st)
{
	wf_stat_dec(st->host->st_rq_active);
	wf_cluster_rq_end(st->c->w, st->cluster, st->host);
}

/* The filters that ran release what they hold for the stream. */
static void filters_end(struct hstream *st)
{
	for (uint32_t i = 0; i < st->f_ran; i++) {
		const struct wf_filter_inst *f = &st->cfg->filters[i];
		st->fs.index = i;
		if (f->ops->on_end)
			f->ops->on_end(&st->fs, f->cfg);
	}
	st->f_ran = 0;
	wf_timer_cancel(LOOP(st->c), &st->fs.t);
	free(st->fs.resp_add);
	st->fs.resp_add = NULL;
}

/* Headers the filters add to the response. */
static void filters_resp_headers(struct hstream *st, struct wf_hlist *hl)
{
	const char *p = st->fs.resp_add, *end = p + st->fs.resp_add_len;
	while (p && p < end) {
		size_t kn = strlen(p);
		const char *v = p + kn + 1;
		size_t vn = strlen(v);
		wf_hlist_add(hl, p, (uint32_t)kn, v, (uint32_t)vn);
		p = v + vn + 1;
	}
}

static void stream_free(struct hstream *st)
{
	if (st->cluster) {
		struct wf_cb *cb = st->cluster->cb;
		if (st->parked) {
			wf_upstream_unwait(st->c->w, &st->waiter);
			wf_cb_put(&cb->pending);
		}
		if (st->rq_taken)
			wf_cb_put(&cb->rq);
		if (st->retry_taken)
			wf_cb_put(&cb->retries);
		st->parked = st->rq_taken = st->retry_taken = 0;
	}
	filters_end(st);
	wf_timer_cancel(LOOP(st->c), &st->t);
	wf_timer_cancel(LOOP(st->c), &st->idle);
	wf_timer_cancel(LOOP(st->c), &st->rq_t);
	free(st->resp_hdrs);
	free(st->trailers);
	free(st->out_hdrs);
	free(st->xff);
	free(st->set_cookie);
	free(st->replay.p);
	wf_buf_release(&st->rq, POOL(st->c));
	wf_timer_cancel(LOOP(st->c), &st->try_t);
	wf_worker_release(st->c->w, st->snap);
	stream_recycle(st);
}

void hcm_stream_free(struct hstream *st)
{
	stream_free(st);
}

/* Detach the upstream connection: back to the pool if the exchange ended cleanly. */
static void stream_drop_upstream(struct hstream *st, int reusable)
{
	if (st->us.conn) {
		wf_up2_detach(&st->us, !(reusable && st->rs == RS_DONE && st->req_sent));
		st->up_unacked = 0;
		return;
	}
	if (!st->u)
		return;
	struct wf_uconn *u = st->u;
	st->u = NULL;
	wf_upstream_release(u, reusable);
}

/* The stream is over (response fully queued downstream, or aborted). */
static void stream_end(struct hstream *st)
{
	struct hconn *c = st->c;
	if (st->ended)
		return;
	st->ended = 1;
	stream_drop_upstream(st, st->up_keep && st->rs == RS_DONE && st->req_sent);
	log_stream(st);
	c->codec->done(st);
}

/* Send a complete local reply (when no response byte went out yet) and end the stream. */
static void local_reply_n(struct hstream *st, int code, uint32_t flag, const char *body, size_t bl,
                          const struct wf_hdr *extra, uint32_t n_extra);

static void local_reply(struct hstream *st, int code, uint32_t flag, const char *body,
                        const struct wf_hdr *extra, uint32_t n_extra)
{
	local_reply_n(st, code, flag, body, body ? strlen(body) : 0, extra, n_extra);
}

/* The same with a body of known length (a direct_response body may hold any bytes). */
static void local_reply_n(struct hstream *st, int code, uint32_t flag, const char *body, size_t bl,
                          const struct wf_hdr *extra, uint32_t n_extra)
{
	struct hconn *c = st->c;
	st->si.response_flags |= flag;
	char gstatus[12], gmsg[512];
	struct wf_hdr grpc[3];
	if (code >= 400 && st->req.method && st->req.grpc && !st->resp_started) {
		/* a gRPC client hears of errors in gRPC terms: 200, grpc-status and grpc-message,
		 * no body (a trailers-only response), as Envoy answers */
		int gs = st->grpc_status1 ? st->grpc_status1 - 1 : wf_grpc_status_from_http(code);
		st->fs.grpc_status1 = (int16_t)(gs + 1);
		int gl = snprintf(gstatus, sizeof(gstatus), "%d", gs);
		size_t ml = wf_grpc_message_encode(body ? body : status_text(code), body ? bl : strlen(status_text(code)),
		                                   gmsg, sizeof(gmsg));
		grpc[0] = (struct wf_hdr){"content-type", "application/grpc", 12, 16};
		grpc[1] = (struct wf_hdr){"grpc-status", gstatus, 11, (uint32_t)gl};
		grpc[2] = (struct wf_hdr){"grpc-message", gmsg, 12, (uint32_t)ml};
		code = 200;
		body = NULL;
		bl = 0;
		extra = grpc;
		n_extra = 3;
	}
	if (st->resp_started) {
		/* Mid-response: all we can do is cut the connection. */
		if (st->cfg)
			wf_stat_inc(st->cfg->st.tx_reset);
		st->keep_alive = 0;
		st->up_keep = 0;
		st->rs = RS_DONE;
		stream_end(st);
		return;
	}
	stream_drop_upstream(st, 0);
	wf_timer_cancel(LOOP(c), &st->t);
	if (!body)
		bl = 0;
	char date[64];
	http_date(date, sizeof(date));
	struct wf_hlist hl;
	hl_init(&hl, n_extra + 8);
	for (uint32_t i = 0; i < n_extra; i++)
		wf_hlist_add(&hl, extra[i].name, extra[i].name_len, extra[i].value, extra[i].value_len);
	if (bl)
		wf_hlist_add(&hl, "content-type", 12, "text/plain", 10);
	if (st->cfg && st->cfg->via)
		wf_hlist_add(&hl, "via", 3, st->cfg->via, (uint32_t)strlen(st->cfg->via));
	/* A request whose body we did not read cannot be followed by another on this connection. */
	if (!st->req_done && st->rb != RB_NONE)
		st->keep_alive = 0;
	filters_resp_headers(st, &hl);
	/* route / vhost / route-config response header edits apply to local replies too */
	if (st->route)
		wf_hlist_edits(&hl, &st->route->resp);
	if (st->vh)
		wf_hlist_edits(&hl, &st->vh->resp);
	if (st->cfg && st->cfg->routes && (st->route || st->vh))
		wf_hlist_edits(&hl, &st->cfg->routes->resp);
	wf_hlist_add(&hl, "date", 4, date, (uint32_t)strlen(date));
	const char *server = st->cfg ? st->cfg->server_name : "envoy";
	if (!st->cfg || st->cfg->server_header_mode != 2)
		wf_hlist_add(&hl, "server", 6, server, (uint32_t)strlen(server));
	st->resp_started = 1;
	st->si.response_code = code;
	st->si.bytes_sent = st->is_head ? 0 : bl;
	/* keep the reply headers for the access log (RESP(...)) */
	st->n_resp_hdrs = 0;
	const char *reason = status_text(code);
	int end = !bl || st->is_head;
	unsigned corked = c->s.cork; /* head and body leave in one write */
	c->s.cork = 1;
	int rc = c->codec->head(st, code, reason, (uint32_t)strlen(reason), &hl, (int64_t)bl, end);
	hl_free(&hl);
	if (rc == 0 && !end)
		rc = c->codec->body(st, body, bl);
	if (rc < 0)
		st->keep_alive = 0;
	else
		c->codec->end(st);
	if (!corked && wf_sio_uncork(LOOP(c), POOL(c), &c->s) < 0)
		st->keep_alive = 0;
	st->rs = RS_DONE;
	stream_end(st);
}


/* ---- upstream side ----------------------------------------------------------------------- */

static void up_fail(struct hstream *st, int code, uint32_t flag, const char *why)
{
	char body[160];
	snprintf(body, sizeof(body), "upstream connect error or disconnect/reset before headers. reset reason: %s", why);
	if (st->cluster && (flag == WF_RF_UC || flag == WF_RF_UPE))
		wf_stat_inc(st->cluster->st.rq_rx_reset);
	local_reply(st, code, flag, body, NULL, 0);
}

static int start_upstream(struct hstream *st);

/* Outlier detection hears how each exchange with a host went. */
static void report(struct hstream *st, enum wf_outcome o)
{
	if (st->cluster && st->host)
		wf_outlier_report(st->cluster, st->host, o, wf_loop_now(LOOP(st->c)));
}

static void on_up_failed(struct wf_uconn *u, void *owner, int err, int connecting)
{
	struct hstream *st = owner;
	st->u = NULL;
	report(st, WF_OUT_LOCAL);
	if (try_retry(st, connecting ? RETRY_CONNECT : RETRY_RESET, 0, NULL))
		return;
	if (connecting) {
		up_fail(st, 503, WF_RF_UF, err == -ETIMEDOUT ? "connection timeout" : "connection failure");
		return;
	}
	up_fail(st, 503, WF_RF_UC, "connection termination");
}

/* The peer's IP without port ("10.0.0.1", "::1"). */
static void peer_ip(const char *addr, char *out, size_t n)
{
	wf_addr_str_split(addr, out, n);
}

static void xff_build(struct hstream *st)
{
	size_t len = 64;
	for (uint32_t i = 0; i < st->req.n_headers; i++)
		if (WF_HDR_IS(&st->hdrs[i], "x-forwarded-for"))
			len += st->hdrs[i].value_len + 1;
	char *x = malloc(len), *o = x;
	for (uint32_t i = 0; i < st->req.n_headers; i++)
		if (WF_HDR_IS(&st->hdrs[i], "x-forwarded-for") && st->hdrs[i].value_len) {
			memcpy(o, st->hdrs[i].value, st->hdrs[i].value_len);
			o += st->hdrs[i].value_len;
			*o++ = ',';
		}
	peer_ip(st->c->remote, o, 64);
	free(st->xff);
	st->xff = x;
}

/* Envoy's "trusted client address" when the proxy is not the edge (use_remote_address false):
 * the x-forwarded-for entry xff_num_trusted_hops places from the right; the peer otherwise. */
static void client_address(struct hstream *st)
{
	const struct wf_hcm_cfg *cfg = st->cfg;
	st->si.downstream_remote = st->c->remote;
	if (cfg->use_remote_address)
		return;
	const struct wf_hdr *h = NULL;
	for (uint32_t i = 0; i < st->req.n_headers; i++)
		if (WF_HDR_IS(&st->hdrs[i], "x-forwarded-for"))
			h = &st->hdrs[i]; /* the last one holds the nearest hops */
	if (!h)
		return;
	/* walk entries from the right */
	const char *end = h->value + h->value_len;
	uint32_t skip = cfg->xff_num_trusted_hops;
	while (end > h->value) {
		const char *b = end;
		while (b > h->value && b[-1] != ',')
			b--;
		const char *s = b, *e = end;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (!skip) {
			char ip[64];
			size_t n = (size_t)(e - s) < sizeof(ip) - 1 ? (size_t)(e - s) : sizeof(ip) - 1;
			memcpy(ip, s, n);
			ip[n] = 0;
			struct wf_addr a;
			if (wf_addr_from_ip(&a, ip, 0) == 0) {
				wf_addr_str(&a, st->client, sizeof(st->client));
				st->si.downstream_remote = st->client;
			}
			return;
		}
		skip--;
		end = b > h->value ? b - 1 : b;
	}
}

/* The "-shadow" authority of a mirrored request: host-shadow[:port]. */
static void shadow_host(struct wf_hlist *hl, const char *host, uint32_t n, char *buf, size_t cap)
{
	const char *colon = memrchr(host, ':', n);
	if (colon && memchr(host, ']', n) > (const void *)colon)
		colon = NULL; /* an IPv6 literal without a port */
	uint32_t hn = colon ? (uint32_t)(colon - host) : n;
	int len = snprintf(buf, cap, "%.*s-shadow%.*s", (int)hn, host, (int)(n - hn), host + hn);
	if (len > 0 && (size_t)len < cap)
		wf_hlist_add(hl, "host", 4, buf, (uint32_t)len);
}

/* The request head as it goes upstream, whatever the protocol: the path after rewrites and
 * the header list after every edit (buffers its entries point to live here too). */
struct reqhead {
	struct wf_hlist hl;
	const char *path;
	size_t plen;
	char *rewritten;
	char shadow[512], attempts[24], tmo[24];
};

static void reqhead_build(struct hstream *st, struct reqhead *rh, int shadow)
{
	const struct wf_hcm_cfg *cfg = st->cfg;
	const struct wf_route *r = st->route;
	const struct wf_h1_req *q = &st->req;
	/* path, after rewrites */
	rh->path = q->path;
	rh->plen = q->path_len;
	rh->rewritten = NULL;
	if (q->form == WF_H1_AUTHORITY) {
		rh->path = q->target; /* a CONNECT forwarded as it came (no rewrites: it has no path) */
		rh->plen = q->target_len;
	} else if (r->has_prefix_rewrite && r->path_kind != WF_PATH_REGEX) {
		size_t keep = r->path_len <= rh->plen ? r->path_len : rh->plen;
		size_t n = r->prefix_rewrite_len + rh->plen - keep;
		rh->rewritten = malloc(n + 1);
		memcpy(rh->rewritten, r->prefix_rewrite, r->prefix_rewrite_len);
		memcpy(rh->rewritten + r->prefix_rewrite_len, rh->path + keep, rh->plen - keep);
		rh->path = rh->rewritten;
		rh->plen = n;
	} else if (r->rewrite_re) {
		/* regex_rewrite applies to the path without the query, which is kept */
		const char *qm = memchr(rh->path, '?', rh->plen);
		size_t pn = qm ? (size_t)(qm - rh->path) : rh->plen;
		PCRE2_UCHAR buf[8192];
		PCRE2_SIZE bl = sizeof(buf);
		int rc = pcre2_substitute(r->rewrite_re, (PCRE2_SPTR)rh->path, pn, 0, PCRE2_SUBSTITUTE_GLOBAL, NULL,
		                          NULL, (PCRE2_SPTR)r->rewrite_sub, PCRE2_ZERO_TERMINATED, buf, &bl);
		if (rc >= 0) {
			rh->rewritten = malloc(bl + (rh->plen - pn) + 1);
			memcpy(rh->rewritten, buf, bl);
			memcpy(rh->rewritten + bl, rh->path + pn, rh->plen - pn);
			rh->path = rh->rewritten;
			rh->plen = bl + (rh->plen - pn);
		}
	}
	/* what Weft sets below replaces what came */
	int xff = cfg->use_remote_address && !cfg->skip_xff_append;
	unsigned replace = SET_HOST | (xff ? SET_XFF : 0) | (cfg->use_remote_address ? SET_XFP : 0) |
	                   (st->vh->include_attempt_count ? SET_ATTEMPTS : 0) |
	                   (rh->rewritten && !cfg->suppress_envoy_headers ? SET_ORIGINAL_PATH : 0) |
	                   (st->request_id[0] ? SET_REQUEST_ID : 0) |
	                   (st->timeout_ms && !cfg->suppress_envoy_headers ? SET_RQ_TIMEOUT : 0);
	unsigned kept = 0;
	struct wf_hlist *hl = &rh->hl;
	hl_init(hl, q->n_headers + 8);
	const struct wf_hdr *conn = connection_names(st->hdrs, q->n_headers);
	for (uint32_t i = 0; i < q->n_headers; i++) {
		const struct wf_hdr *h = &st->hdrs[i];
		if ((hop_by_hop(h, conn) && !(st->upgrade && upgrade_header(h))) || WF_HDR_IS(h, "content-length") ||
		    (WF_HDR_IS(h, "expect") && q->expect_continue && !cfg->proxy_100_continue))
			continue;
		unsigned k = weft_sets(h);
		if (k & replace)
			continue;
		kept |= k;
		wf_hlist_add(hl, h->name, h->name_len, h->value, h->value_len);
	}
	/* Host: rewritten or as received (absolute-form authority becomes the Host). */
	const char *host = r->host_rewrite ? r->host_rewrite : q->host;
	uint32_t host_len = r->host_rewrite ? r->host_rewrite_len : q->host_len;
	if (shadow && host)
		shadow_host(hl, host, host_len, rh->shadow, sizeof(rh->shadow));
	else if (host)
		wf_hlist_add(hl, "host", 4, host, host_len);
	/* x-forwarded-for: every value received, joined, and the peer appended at the edge */
	if (xff) {
		xff_build(st);
		wf_hlist_add(hl, "x-forwarded-for", 15, st->xff, (uint32_t)strlen(st->xff));
	}
	/* the scheme the downstream connection really used */
	const char *proto = wf_sio_is_tls(&st->c->s) ? "https" : "http";
	if ((replace | ~kept) & SET_XFP)
		wf_hlist_add(hl, "x-forwarded-proto", 17, proto, (uint32_t)strlen(proto));
	if (replace & SET_ATTEMPTS) {
		rh->attempts[wf_fmt_u64(rh->attempts, st->attempt)] = 0;
		wf_hlist_add(hl, "x-envoy-attempt-count", 21, rh->attempts, (uint32_t)strlen(rh->attempts));
	}
	if (replace & SET_ORIGINAL_PATH)
		wf_hlist_add(hl, "x-envoy-original-path", 21, q->path, q->path_len);
	if (replace & SET_REQUEST_ID)
		wf_hlist_add(hl, "x-request-id", 12, st->request_id, (uint32_t)strlen(st->request_id));
	if (replace & SET_RQ_TIMEOUT) {
		rh->tmo[wf_fmt_u64(rh->tmo, st->timeout_ms)] = 0;
		wf_hlist_add(hl, "x-envoy-expected-rq-timeout-ms", 30, rh->tmo, (uint32_t)strlen(rh->tmo));
	}
	if (cfg->via)
		wf_hlist_add(hl, "via", 3, cfg->via, (uint32_t)strlen(cfg->via));
	/* Edits from the most specific level outward; the outer level is applied last and wins. */
	if (st->wc)
		wf_hlist_edits(hl, &st->wc->req);
	wf_hlist_edits(hl, &r->req);
	wf_hlist_edits(hl, &st->vh->req);
	wf_hlist_edits(hl, &cfg->routes->req);
}

static void reqhead_free(struct reqhead *rh)
{
	hl_free(&rh->hl);
	free(rh->rewritten);
}

/* A random Sec-WebSocket-Key: 16 bytes in base64 (24 characters, out has room for 25). */
static void websocket_key(struct hstream *st, char *out)
{
	uint64_t r[2] = {wf_rand(st->c->w), wf_rand(st->c->w)};
	wf_base64_encode((const unsigned char *)r, 16, out);
}

/* Serialize the request head as sent to an HTTP/1.1 upstream into o; a mirror's (shadow) goes
 * to host-shadow, with the body kept for it (a content-length), and asks the upstream to close
 * after answering. */
static void build_request_head(struct hstream *st, struct out *out, int shadow)
{
	const struct wf_h1_req *q = &st->req;
	struct out o = *out;
	struct reqhead rh;
	reqhead_build(st, &rh, shadow);
	/* an HTTP/2 extended CONNECT (RFC 8441) goes to an HTTP/1.1 upstream as the upgrade it
	 * stands for: GET with Upgrade, Connection and (WebSocket) a Sec-WebSocket-Key */
	int ext = st->c->h2 && st->upgrade && q->form != WF_H1_AUTHORITY;
	if (ext)
		OUT_LIT(&o, "GET");
	else
		out_put(&o, q->method, q->method_len);
	OUT_LIT(&o, " ");
	out_put(&o, rh.path, rh.plen);
	OUT_LIT(&o, " HTTP/1.1\r\n");
	for (uint32_t i = 0; i < rh.hl.n; i++)
		if (!rh.hl.dead[i])
			out_hdr(&o, rh.hl.h[i].name, rh.hl.h[i].name_len, rh.hl.h[i].value, rh.hl.h[i].value_len);
	if (ext) {
		OUT_LIT(&o, "connection: upgrade\r\nupgrade: ");
		out_put(&o, st->upgrade, st->upgrade_len);
		OUT_LIT(&o, "\r\n");
		if (wf_str_ieq(st->upgrade, st->upgrade_len, "websocket", 9) &&
		    !wf_hlist_has(&rh.hl, "sec-websocket-key", 17)) {
			char key[32];
			websocket_key(st, key);
			out_hdr(&o, "sec-websocket-key", 17, key, 24);
		}
	}
	reqhead_free(&rh);
	if (shadow && st->rb != RB_NONE)
		out_content_length(&o, st->replay.n);
	else if (st->rb == RB_CL)
		out_content_length(&o, (uint64_t)q->content_length);
	else if (st->rb == RB_CHUNKED)
		OUT_LIT(&o, "transfer-encoding: chunked\r\n");
	if (shadow)
		OUT_LIT(&o, "connection: close\r\n");
	OUT_LIT(&o, "\r\n");
	*out = o;
}

/* Send copies of the request to the route's mirror clusters, once, when the request is all
 * in (its body, up to REPLAY_MAX, is kept for this: a larger one is not mirrored). */
static void mirror(struct hstream *st)
{
	const struct wf_route *r = st->route;
	if (st->mirrored || !r->n_mirrors || !st->req_done)
		return;
	st->mirrored = 1;
	if (st->rb != RB_NONE && !st->replay_ok)
		return;
	struct out head = {0};
	for (uint32_t i = 0; i < r->n_mirrors; i++) {
		uint32_t ppm = r->mirrors[i].ppm;
		if (!wf_ppm_hit(ppm && ppm < 1000000 ? wf_rand(st->c->w) : 0, ppm))
			continue;
		if (!head.p) {
			build_request_head(st, &head, 1);
			if (st->replay.n) /* no body kept: replay.p is NULL */
				out_put(&head, st->replay.p, st->replay.n);
		}
		char *copy = malloc(head.n);
		memcpy(copy, head.p, head.n);
		wf_shadow_send(st->c->w, st->snap, r->mirrors[i].cluster, copy, head.n, r->timeout_ms);
	}
	free(head.p);
}

/* Serialize and send the request head upstream. */
static int send_request_head(struct hstream *st)
{
	struct hconn *c = st->c;
	struct out o = out_take();
	build_request_head(st, &o, 0);
	int rc = wf_sio_write(&c->w->loop, &c->w->pool, &st->u->s, o.p, o.n);
	out_give(&o);
	st->u->requests++;
	st->t_sent_us = NOW_US(st);
	if (st->rb == RB_NONE) {
		st->req_sent = 1;
		mirror(st);
	}
	return rc;
}

/* Once the request is fully sent: the route timeout (once, across all attempts) and the
 * per-try timeout (each attempt). */
static void arm_route_timer(struct hstream *st)
{
	if (st->ext_tunnel)
		return; /* an open tunnel has only the stream idle timeout */
	if (st->route && st->route->action == WF_ACT_ROUTE && st->timeout_ms && !wf_timer_armed(&st->t))
		wf_timer_set(LOOP(st->c), &st->t, st->timeout_ms);
	if (st->retry && st->retry->per_try_timeout_ms && !st->backing_off)
		wf_timer_set(LOOP(st->c), &st->try_t, st->retry->per_try_timeout_ms);
}

/* Validate the chunked framing of everything buffered so far, without consuming it, so that a
 * malformed body that arrived together with good bytes is refused before any of them is
 * forwarded. <0 malformed; 1 the first chunk-size line has been seen (the body may start
 * flowing); 0 not even that yet. */
static int chunked_precheck(struct hstream *st)
{
	struct wf_h1_chunked scratch = st->req_ch;
	const char *p = wf_buf_data(&st->c->s.rb);
	size_t n = wf_buf_len(&st->c->s.rb), used;
	int seen = st->req_ch.state != 0 || st->si.bytes_received > 0;
	while (n) {
		const char *d;
		size_t dl;
		int r = wf_h1_chunked_decode(&scratch, p, n, &used, &d, &dl);
		if (r < 0)
			return r;
		if (r == 1 || r == 2 || scratch.left)
			seen = 1;
		if (r == 2 || (r == 0 && used == 0))
			break;
		p += used;
		n -= used;
	}
	return seen || scratch.left ? 1 : 0;
}

static void body_refused(struct hstream *st)
{
	st->keep_alive = 0;
	st->up_keep = 0;
	stream_drop_upstream(st, 0);
	local_reply(st, 400, WF_RF_DPE, "Bad Request", NULL, 0);
}

/* The request is all in and sent: the route timer starts, mirrors go. */
static void request_sent(struct hstream *st)
{
	st->req_sent = 1;
	wf_timer_cancel(LOOP(st->c), &st->rq_t); /* request_timeout: the whole request is in */
	arm_route_timer(st);
	mirror(st);
}

/* ---- the request body, to either kind of upstream ------------------------------------------ */

/* Body bytes to the upstream: framed as a chunk for an HTTP/1.1 upstream when the request
 * goes chunked, as DATA to an HTTP/2 one. `keep`: kept for a replay (retries, mirrors). */
static int up_body(struct hstream *st, const char *p, size_t n, int keep)
{
	struct hconn *c = st->c;
	if (keep)
		replay_keep(st, p, n);
	if (st->us.conn)
		return wf_up2_send(&st->us, p, n, 0);
	if (st->rb != RB_CHUNKED)
		return wf_sio_write(LOOP(c), POOL(c), &st->u->s, p, n);
	char hdr[24];
	struct iovec v[3] = {{hdr, (size_t)chunk_line(hdr, n)}, {(void *)p, n}, {"\r\n", 2}};
	return wf_sio_writev(LOOP(c), POOL(c), &st->u->s, v, 3);
}

/* The end of the request body. */
static int up_body_end(struct hstream *st)
{
	if (st->us.conn)
		return wf_up2_send(&st->us, NULL, 0, 1);
	if (st->rb == RB_RAW) {
		/* the client ended its side of a tunnel: so does the upstream's, once drained */
		st->up_shut = 1;
		if (!wf_sio_queued(&st->u->s)) {
			wf_sio_shutdown(&st->u->s);
			st->up_shut = 2;
		}
		return 0;
	}
	if (st->rb == RB_CHUNKED)
		return wf_sio_write(LOOP(st->c), POOL(st->c), &st->u->s, "0\r\n\r\n", 5);
	return 0;
}

/* Request bytes not yet taken by the upstream (back-pressure toward the client). */
static uint32_t up_queued(const struct hstream *st)
{
	return st->us.conn ? (uint32_t)wf_up2_queued(&st->us) : st->u ? wf_sio_queued(&st->u->s) : 0;
}

static int up_ready(const struct hstream *st)
{
	return st->us.conn ? 1 : st->u && st->u->state == WF_U_BUSY;
}

/* HTTP/2 downstream: move the request body received on the stream (DATA payload) upstream,
 * and let the client send as much more (flow control follows the upstream's pace). */
static void up_send_h2(struct hstream *st)
{
	struct hconn *c = st->c;
	while (wf_buf_len(&st->rq) && up_queued(st) < st->up_wm) {
		uint32_t n = wf_buf_len(&st->rq);
		if (up_body(st, wf_buf_data(&st->rq), n, 1) < 0)
			return; /* the upstream failure path takes over */
		st->si.bytes_received += n;
		wf_buf_consume(&st->rq, POOL(c), n);
		wf_h2_consume(c->h2, st->sid, n);
	}
	if (wf_buf_len(&st->rq) || !st->in_end)
		return;
	if (up_body_end(st) < 0)
		return;
	st->req_done = 1;
	request_sent(st);
}

/* Move request body bytes from the downstream to the upstream. */
static void up_send_body(struct hstream *st)
{
	struct hconn *c = st->c;
	if (!up_ready(st) || st->req_sent)
		return;
	if (c->h2 && st->rb != RB_NONE) {
		up_send_h2(st);
		if (st->us.conn)
			wf_up2_flush(&st->us);
		return;
	}
	if (st->rb == RB_CHUNKED && wf_buf_len(&c->s.rb) && chunked_precheck(st) < 0) {
		body_refused(st);
		return;
	}
	if (st->rb == RB_NONE) {
		st->req_sent = 1;
		return;
	}
	while (wf_buf_len(&c->s.rb) && up_queued(st) < st->up_wm && !st->req_done) {
		const char *p = wf_buf_data(&c->s.rb);
		uint32_t n = wf_buf_len(&c->s.rb);
		if (st->rb == RB_CL) {
			uint32_t k = st->req_left < n ? (uint32_t)st->req_left : n;
			if (up_body(st, p, k, 1) < 0)
				return; /* the upstream failure path takes over */
			st->req_left -= k;
			st->si.bytes_received += k;
			wf_buf_consume(&c->s.rb, POOL(c), k);
			if (!st->req_left) {
				st->req_done = 1;
				if (up_body_end(st) < 0)
					return;
			}
			continue;
		}
		size_t used;
		const char *d;
		size_t dl;
		int r = wf_h1_chunked_decode(&st->req_ch, p, n, &used, &d, &dl);
		if (r < 0) {
			body_refused(st);
			return;
		}
		if (r == 1 && dl) {
			if (up_body(st, d, dl, 1) < 0)
				return;
			st->si.bytes_received += dl;
		}
		wf_buf_consume(&c->s.rb, POOL(c), (uint32_t)used);
		if (r == 2) {
			if (up_body_end(st) < 0)
				return;
			st->req_done = 1;
		}
		if (r == 0 && used == 0)
			break;
	}
	if (st->us.conn)
		wf_up2_flush(&st->us);
	if (st->req_done)
		request_sent(st);
}

void hcm_up_send_body(struct hstream *st)
{
	up_send_body(st);
}

static void count_bound(struct hstream *st)
{
	wf_stat_inc(st->cluster->st.rq_total);
	wf_stat_inc(st->host->st_rq_total);
}

static void on_up_connected(struct wf_uconn *u, void *owner)
{
	struct hstream *st = owner;
	if (st->head_deferred) {
		/* auto_config: the server chose with ALPN */
		st->head_deferred = 0;
		if (wf_tls_alpn_is(&u->s, "h2")) {
			__atomic_store_n(&((struct wf_host *)st->host)->alpn_h2, 1, __ATOMIC_RELAXED);
			st->u = NULL;
			wf_up2_adopt(st->c->w, st->cluster, st->host, u);
			if (start_h2(st, st->host, &st->u_reused) < 0) {
				up_fail(st, 503, WF_RF_UF, "connection failure");
				return;
			}
			count_bound(st);
			send_attempt(st, 1);
			return;
		}
		count_bound(st);
		if (send_attempt(st, 0) < 0)
			return;
		up_send_body(st);
		if (!st->ended)
			conn_process(st->c);
		return;
	}
	count_bound(st);
	if (st->connect_terminate) {
		connect_established(st);
		return;
	}
	up_send_body(st);
	if (!st->ended)
		conn_process(st->c);
}

static void on_up_drained(struct wf_uconn *u, void *owner)
{
	struct hstream *st = owner;
	if (st->tunnel) {
		tunnel_run(st);
		return;
	}
	if (st->up_shut == 1 && !wf_sio_queued(&u->s)) {
		wf_sio_shutdown(&u->s);
		st->up_shut = 2;
	}
	/* room upstream again: resume reading the request body downstream */
	up_send_body(st);
	if (!st->ended)
		conn_process(st->c);
}

/* A gRPC call's status, from a response head (trailers-only, or mapped from a non-200 HTTP
 * status) or its trailers (http_status 0). */
static void grpc_status_seen(struct hstream *st, const struct wf_hdr *h, uint32_t n, int http_status)
{
	const struct wf_hdr *g = wf_hdr_find(h, n, "grpc-status", 11);
	int gs = g ? wf_grpc_status_parse(g->value, g->value_len) : -1;
	if (gs < 0 && http_status && http_status != 200)
		gs = wf_grpc_status_from_http(http_status);
	if (gs >= 0)
		st->fs.grpc_status1 = (int16_t)(gs + 1);
}

/* The response head arrived (from either kind of upstream): rewrite it and send it
 * downstream. end_stream: the upstream said no body follows (HTTP/2). */
static int send_response_head(struct hstream *st, const struct wf_h1_resp *resp, int end_stream)
{
	struct hconn *c = st->c;
	const struct wf_hcm_cfg *cfg = st->cfg;
	/* The parsed head points into the upstream's buffer, valid during this call. Access logs
	 * need the headers later: only then is the head copied. */
	const struct wf_hdr *rh = resp->headers;
	if (cfg->n_logs)
		rh = st->resp_hdrs = wf_hdrs_dup(resp->headers, resp->n_headers);
	if (!rh)
		return -1; /* out of memory: the caller answers */
	st->n_resp_hdrs = resp->n_headers;
	if (st->req.grpc)
		grpc_status_seen(st, resp->headers, resp->n_headers, resp->status);

	int has_body = wf_h1_resp_has_body(resp->status, st->is_head, st->req.form == WF_H1_AUTHORITY);
	/* what Weft sets below replaces what came */
	unsigned replace = (cfg->suppress_envoy_headers ? 0 : SET_SERVICE_TIME) |
	                   (cfg->server_header_mode == 0 ? SET_SERVER : 0), kept = 0;
	struct wf_hlist hl;
	hl_init(&hl, resp->n_headers + 8);
	const struct wf_hdr *conn = connection_names(rh, st->n_resp_hdrs);
	for (uint32_t i = 0; i < st->n_resp_hdrs; i++) {
		const struct wf_hdr *h = &rh[i];
		if ((hop_by_hop(h, conn) && !(st->tunnel && upgrade_header(h))) || WF_HDR_IS(h, "content-length"))
			continue;
		unsigned k = weft_sets(h);
		if (k & replace)
			continue;
		kept |= k;
		wf_hlist_add(&hl, h->name, h->name_len, h->value, h->value_len);
	}
	char *ust = st->ust;
	uint64_t now_us = NOW_US(st);
	size_t ul = wf_fmt_u64(ust, (now_us - st->t_sent_us) / 1000);
	ust[ul] = 0;
	if (replace & SET_SERVICE_TIME)
		wf_hlist_add(&hl, "x-envoy-upstream-service-time", 29, ust, (uint32_t)ul);
	st->si.upstream_service_us = (int64_t)(now_us - st->t_sent_us);
	if ((replace & SET_SERVER) || (cfg->server_header_mode == 1 && !(kept & SET_SERVER)))
		wf_hlist_add(&hl, "server", 6, cfg->server_name, (uint32_t)strlen(cfg->server_name));
	if (cfg->via)
		wf_hlist_add(&hl, "via", 3, cfg->via, (uint32_t)strlen(cfg->via));
	if (st->set_cookie)
		wf_hlist_add(&hl, "set-cookie", 10, st->set_cookie, (uint32_t)strlen(st->set_cookie));
	filters_resp_headers(st, &hl);
	if (st->wc)
		wf_hlist_edits(&hl, &st->wc->resp);
	wf_hlist_edits(&hl, &st->route->resp);
	wf_hlist_edits(&hl, &st->vh->resp);
	wf_hlist_edits(&hl, &cfg->routes->resp);
	/* keep the head as sent for the access log: live entries only */
	if (cfg->n_logs) {
		st->out_hdrs = malloc((hl.n + 1) * sizeof(*st->out_hdrs));
		st->n_out_hdrs = 0;
		for (uint32_t i = 0; i < hl.n; i++)
			if (!hl.dead[i])
				st->out_hdrs[st->n_out_hdrs++] = hl.h[i];
	}
	/* framing downstream */
	int64_t cl = -1;
	if (st->ext_tunnel) {
		st->rs = RS_CLOSE; /* the tunnel's bytes, until the upstream closes */
		st->up_keep = 0;
	} else if (!has_body) {
		if (resp->content_length >= 0 && st->is_head)
			cl = resp->content_length;
		st->rs = RS_DONE;
	} else if (resp->chunked) {
		st->rs = RS_CHUNKED;
		memset(&st->resp_ch, 0, sizeof(st->resp_ch));
	} else if (resp->content_length >= 0) {
		cl = resp->content_length;
		st->resp_left = (uint64_t)resp->content_length;
		st->rs = st->resp_left ? RS_CL : RS_DONE;
	} else {
		st->rs = RS_CLOSE;
		st->up_keep = 0;
	}
	if (resp->conn_close || resp->minor == 0)
		st->up_keep = resp->minor == 0 ? resp->conn_keep_alive && !resp->conn_close : 0;
	st->si.response_code = resp->status;
	st->resp_started = 1;
	wf_timer_cancel(LOOP(c), &st->rq_t); /* request_timeout ends when the response begins */
	if (end_stream && st->rs != RS_DONE) {
		st->rs = RS_DONE;
		if (cl < 0)
			cl = 0;
	}
	const char *reason = resp->reason ? resp->reason : status_text(resp->status);
	int rc = c->codec->head(st, resp->status, reason, resp->reason ? resp->reason_len : (uint32_t)strlen(reason), &hl,
	                        cl, st->rs == RS_DONE && !st->tunnel);
	hl_free(&hl);
	return rc;
}

/* ---- the HTTP/1 codec ---------------------------------------------------------------------- */

static int h1_head(struct hstream *st, int status, const char *reason, uint32_t rl, struct wf_hlist *hl, int64_t cl,
                   int end)
{
	struct hconn *c = st->c;
	int v10 = st->req.method && st->req.minor == 0;
	struct out o = out_take();
	if (v10)
		OUT_LIT(&o, "HTTP/1.0 ");
	else
		OUT_LIT(&o, "HTTP/1.1 ");
	out_u64(&o, (uint64_t)status);
	OUT_LIT(&o, " ");
	out_put(&o, reason, rl);
	OUT_LIT(&o, "\r\n");
	for (uint32_t i = 0; i < hl->n; i++)
		if (!hl->dead[i])
			out_hdr(&o, hl->h[i].name, hl->h[i].name_len, hl->h[i].value, hl->h[i].value_len);
	if (cl >= 0)
		out_content_length(&o, (uint64_t)cl);
	else if (!end && !st->tunnel) {
		/* a body of unknown length: chunked, or delimited by the close for HTTP/1.0 */
		if (!v10)
			st->down_chunked = 1, OUT_LIT(&o, "transfer-encoding: chunked\r\n");
		else
			st->down_close = 1, st->keep_alive = 0;
	}
	if (st->tunnel)
		; /* the 101 keeps the upstream's Connection: upgrade */
	else if (!st->keep_alive)
		OUT_LIT(&o, "connection: close\r\n");
	else if (v10)
		OUT_LIT(&o, "connection: keep-alive\r\n");
	OUT_LIT(&o, "\r\n");
	int rc = wf_sio_write(LOOP(c), POOL(c), &c->s, o.p, o.n);
	out_give(&o);
	return rc;
}

static void h1_interim(struct hstream *st, int status, const struct wf_hdr *h, uint32_t n)
{
	if (st->req.minor < 1)
		return; /* no 1xx to an HTTP/1.0 client (RFC 9110 §15.2) */
	struct out o = out_take();
	OUT_LIT(&o, "HTTP/1.1 ");
	out_u64(&o, (uint64_t)status);
	OUT_LIT(&o, " ");
	const char *reason = status_text(status);
	out_put(&o, reason, strlen(reason));
	OUT_LIT(&o, "\r\n");
	for (uint32_t i = 0; i < n; i++)
		out_hdr(&o, h[i].name, h[i].name_len, h[i].value, h[i].value_len);
	OUT_LIT(&o, "\r\n");
	wf_sio_write(LOOP(st->c), POOL(st->c), &st->c->s, o.p, o.n);
	out_give(&o);
}

static int h1_body(struct hstream *st, const char *p, size_t n)
{
	return send_body(st->c, &st->c->s, p, n, st->down_chunked);
}

/* Trailers (st->trailers, from an HTTP/2 upstream) ride in the last chunk only with
 * http_protocol_options.enable_trailers, as in Envoy, whose default drops them. A response with
 * a content-length has no place for them. */
static void h1_end(struct hstream *st)
{
	if (!st->down_chunked)
		return;
	if (!st->n_trailers || !st->cfg->enable_trailers) {
		wf_sio_write(LOOP(st->c), POOL(st->c), &st->c->s, "0\r\n\r\n", 5);
		return;
	}
	struct out o = out_take();
	OUT_LIT(&o, "0\r\n");
	for (uint32_t i = 0; i < st->n_trailers; i++)
		out_hdr(&o, st->trailers[i].name, st->trailers[i].name_len, st->trailers[i].value, st->trailers[i].value_len);
	OUT_LIT(&o, "\r\n");
	wf_sio_write(LOOP(st->c), POOL(st->c), &st->c->s, o.p, o.n);
	out_give(&o);
}

static uint32_t h1_queued(const struct hstream *st)
{
	return wf_sio_queued(&st->c->s);
}

static void h1_done(struct hstream *st)
{
	struct hconn *c = st->c;
	c->st = NULL;
	if (!st->keep_alive || !st->req_done)
		c->closing = 1;
	stream_free(st);
	if (c->closing) {
		if (wf_sio_queued(&c->s) == 0)
			conn_close(c);
		else
			conn_update(c); /* stop reading; closed once the output is flushed */
		return;
	}
	/* Idle until the next request (or a pipelined one already buffered). */
	c->head_started = 0;
	wf_timer_set(LOOP(c), &c->t, c->l->hcm->idle_timeout_ms);
	conn_process(c);
}

static const struct hcm_codec h1_codec = {
	.head = h1_head,
	.interim = h1_interim,
	.body = h1_body,
	.end = h1_end,
	.queued = h1_queued,
	.done = h1_done,
};

static void response_done(struct hstream *st)
{
	struct hconn *c = st->c;
	c->codec->end(st);
	st->rs = RS_DONE;
	wf_timer_cancel(LOOP(c), &st->t);
	stream_end(st);
}

/* ---- tunnels (upgrades) -------------------------------------------------------------------- */

/* Relay what can be relayed; end the stream when the tunnel is over or failed. */
static void tunnel_run(struct hstream *st)
{
	struct hconn *c = st->c;
	uint64_t before = st->tun.bytes[0] + st->tun.bytes[1];
	int r = wf_tunnel_run(&st->tun, LOOP(c), POOL(c));
	if (st->tun.bytes[0] + st->tun.bytes[1] != before)
		stream_touch(st);
	if (r == 0)
		return;
	/* Both sides closed (r > 0), or one failed: the stream ends, both connections close. */
	st->keep_alive = 0;
	st->up_keep = 0;
	st->rs = RS_DONE;
	stream_end(st);
}

/* The response (101, or Weft's 200 to a CONNECT) is queued downstream: from now on the two
 * connections are a tunnel. The route timeout no longer applies (as in Envoy); the stream idle
 * timeout does. The upstream connection never goes back to the pool. */
static void tunnel_start(struct hstream *st)
{
	struct hconn *c = st->c;
	wf_timer_cancel(LOOP(c), &st->t);
	wf_timer_cancel(LOOP(c), &st->try_t);
	st->up_keep = 0;
	st->tunnel = 1;
	st->tun.s[0] = &c->s;
	st->tun.s[1] = &st->u->s;
	st->tun.wm = st->down_wm < st->up_wm ? st->down_wm : st->up_wm;
	wf_stat_inc(st->cfg->st.cx_upgrades_total);
	wf_stat_inc(st->cfg->st.cx_upgrades_active);
	stream_touch(st);
}

/* An HTTP/2 client's tunnel (RFC 8441 WebSocket, or CONNECT) is open upstream: its answer
 * goes to the client as a 200 (Upgrade, Connection and Sec-WebSocket-Accept belong to
 * HTTP/1.1), and from now on the stream's DATA and the upstream's bytes are the tunnel, until
 * either side ends. The route timeout no longer applies; the stream idle timeout does.
 * 1: go on reading the upstream (its bytes after the head are the tunnel's). */
static int h2_tunnel_accepted(struct hstream *st, const struct wf_h1_resp *resp, uint32_t n)
{
	struct hconn *c = st->c;
	struct wf_h1_resp r = *resp;
	struct wf_hdr kept[256];
	r.n_headers = 0;
	r.headers = kept;
	for (uint32_t i = 0; i < resp->n_headers && r.n_headers < 256; i++)
		if (!WF_HDR_IS(&resp->headers[i], "sec-websocket-accept"))
			kept[r.n_headers++] = resp->headers[i];
	r.status = 200;
	r.reason = NULL;
	wf_timer_cancel(LOOP(c), &st->t);
	wf_timer_cancel(LOOP(c), &st->try_t);
	st->ext_tunnel = 1;
	wf_stat_inc(st->cfg->st.cx_upgrades_total);
	wf_stat_inc(st->cfg->st.cx_upgrades_active);
	if (send_response_head(st, &r, 0) < 0) {
		local_reply(st, 503, WF_RF_DC, NULL, NULL, 0);
		return 0;
	}
	wf_buf_consume(&st->u->s.rb, &c->w->pool, n);
	stream_touch(st);
	up_send_body(st); /* what the client sent already */
	return !st->ended;
}

/* The upstream switched protocols (a 101, or a 2xx to a CONNECT): pass its answer on and start
 * relaying (what came after it, and what the client sent after its request, go first). */
static int upgrade_accepted(struct hstream *st, const struct wf_h1_resp *resp, uint32_t n)
{
	struct hconn *c = st->c;
	report(st, WF_OUT_SUCCESS);
	if (c->h2)
		return h2_tunnel_accepted(st, resp, n);
	st->tunnel = 1; /* send_response_head keeps Upgrade and Connection */
	if (send_response_head(st, resp, 0) < 0) {
		st->tunnel = 0;
		st->keep_alive = 0;
		local_reply(st, 503, WF_RF_DC, NULL, NULL, 0);
		return 0;
	}
	wf_buf_consume(&st->u->s.rb, &c->w->pool, n);
	tunnel_start(st);
	return 0;
}

/* CONNECT with connect_config: the TCP connection to the upstream is up; answer 200. */
static void connect_established(struct hstream *st)
{
	struct hconn *c = st->c;
	char date[64];
	http_date(date, sizeof(date));
	struct wf_hlist hl;
	hl_init(&hl, 2);
	wf_hlist_add(&hl, "date", 4, date, (uint32_t)strlen(date));
	if (st->cfg->server_header_mode != 2)
		wf_hlist_add(&hl, "server", 6, st->cfg->server_name, (uint32_t)strlen(st->cfg->server_name));
	st->resp_started = 1;
	st->si.response_code = 200;
	st->si.upstream_service_us = (int64_t)(NOW_US(st) - st->t_sent_us);
	if (c->h2) {
		/* HTTP/2: the stream's DATA and the upstream's bytes are the tunnel */
		wf_timer_cancel(LOOP(c), &st->t);
		st->ext_tunnel = 1;
		st->rs = RS_CLOSE;
		st->up_keep = 0;
		wf_stat_inc(st->cfg->st.cx_upgrades_total);
		wf_stat_inc(st->cfg->st.cx_upgrades_active);
	} else {
		st->tunnel = 1; /* no framing: the connection is a tunnel from here */
	}
	int rc = c->codec->head(st, 200, "OK", 2, &hl, -1, 0);
	hl_free(&hl);
	if (rc < 0) {
		st->tunnel = 0;
		st->keep_alive = 0;
		local_reply(st, 503, WF_RF_DC, NULL, NULL, 0);
		return;
	}
	if (c->h2) {
		stream_touch(st);
		up_send_body(st);
		if (!st->ended)
			hcm_h2_flush(c);
		return;
	}
	tunnel_start(st);
	tunnel_run(st);
}

/* Upstream bytes: response head, then body, re-framed for the downstream. Returns 1 when it
 * stopped because the downstream queue is full (the stream goes on), 0 otherwise. */
static int up_readable(struct wf_uconn *u, void *owner)
{
	struct hstream *st = owner;
	struct hconn *c = st->c;
	uint32_t maxh = st->cluster && st->cluster->max_response_headers ? st->cluster->max_response_headers : 256;
	if (maxh > 256)
		maxh = 256; /* the parse array below */
	struct wf_h1_limits lim = {.max_head_bytes = 96 * 1024, .max_headers = maxh};
	int need = 1; /* the buffered bytes cannot make progress: read first */
	for (;;) {
		if (st->ended)
			return 0;
		if (c->codec->queued(st) >= st->down_wm) {
			wf_upstream_want(u, 0); /* resumed when the downstream drains */
			st->up_paused = 1;
			return 1;
		}
		/* Read only when what is buffered is used up (or an incomplete head): a response
		 * completed by the bytes at hand costs no extra read(2) that would say EAGAIN. */
		int r = 0;
		if (need || !wf_buf_len(&u->s.rb))
			r = wf_sio_read(&c->w->pool, &u->s, st->rs == RS_WAIT ? lim.max_head_bytes + 1 : st->up_wm);
		need = 0;
		if (r > 0)
			stream_touch(st);
		if (r < -1) {
			if (st->rs == RS_WAIT)
				up_fail(st, 503, WF_RF_UC, "connection termination");
			else
				local_reply(st, 503, WF_RF_UC, NULL, NULL, 0);
			return 0;
		}
		uint32_t avail = wf_buf_len(&u->s.rb);
		if (st->rs == RS_WAIT) {
			if (!avail && r == -1) {
				/* Closed before answering. On a reused connection that got nothing, this is
				 * the keep-alive race: retry once on a fresh connection if nothing else was
				 * sent but the head (the body, if any, is not kept for a replay). */
				if (st->u_reused && !st->retried && st->rb == RB_NONE) {
					st->retried = 1;
					host_done(st); /* start_upstream counts the new try */
					stream_drop_upstream(st, 0);
					start_upstream(st);
					return 0;
				}
				report(st, WF_OUT_LOCAL);
				if (try_retry(st, RETRY_RESET, 0, NULL))
					return 0;
				up_fail(st, 503, WF_RF_UC, "connection termination");
				return 0;
			}
			if (!avail)
				return 0;
			struct wf_hdr hdrs[256];
			struct wf_h1_resp resp;
			resp.headers = hdrs;
			int n = wf_h1_parse_response(wf_buf_data(&u->s.rb), avail, &lim, &resp);
			if (n == 0) {
				if (r == -1) {
					up_fail(st, 503, WF_RF_UC, "connection termination");
					return 0;
				}
				if (r == 0)
					return 0;
				need = 1;
				continue;
			}
			if (n < 0) {
				if (st->cluster)
					wf_stat_inc(st->cluster->st.cx_protocol_error);
				st->up_keep = 0;
				up_fail(st, 502, WF_RF_UPE, "protocol error");
				return 0;
			}
			if (resp.status < 200) {
				if (resp.status == 101 && st->upgrade && st->req.form != WF_H1_AUTHORITY) {
					if (upgrade_accepted(st, &resp, (uint32_t)n))
						continue;
					return 0;
				}
				if (resp.status == 101) {
					st->up_keep = 0;
					up_fail(st, 502, WF_RF_UPE, "protocol error");
					return 0;
				}
				relay_interim(st, resp.status, resp.headers, resp.n_headers);
				wf_buf_consume(&u->s.rb, &c->w->pool, (uint32_t)n);
				continue;
			}
			if (st->upgrade && st->req.form == WF_H1_AUTHORITY && resp.status < 300) {
				/* a CONNECT forwarded to an upstream proxy that opened its tunnel */
				if (upgrade_accepted(st, &resp, (uint32_t)n))
					continue;
				return 0;
			}
			report(st, resp.status >= 502 && resp.status <= 504 ? WF_OUT_GATEWAY
			           : resp.status >= 500                     ? WF_OUT_5XX
			                                                    : WF_OUT_SUCCESS);
			if (try_retry(st, RETRY_STATUS, resp.status, &resp))
				return 0;
			wf_timer_cancel(LOOP(c), &st->try_t);
			if (st->attempt > 1)
				wf_stat_inc(st->cluster->st.rq_retry_success);
			st->up_keep = 1;
			if (send_response_head(st, &resp, 0) < 0) {
				st->keep_alive = 0;
				local_reply(st, 503, WF_RF_DC, NULL, NULL, 0);
				return 0;
			}
			wf_buf_consume(&u->s.rb, &c->w->pool, (uint32_t)n);
			/* stream idle timeout from now on, instead of the route timeout */
			if (!st->req_sent)
				wf_timer_cancel(LOOP(c), &st->t);
			if (st->rs == RS_DONE) {
				if (wf_buf_len(&u->s.rb))
					st->up_keep = 0;
				response_done(st);
				return 0;
			}
			continue;
		}
		/* body */
		if (!avail) {
			if (r == -1) {
				if (st->rs == RS_CLOSE) {
					st->up_keep = 0;
					response_done(st);
				} else {
					/* upstream closed mid-body: the client must see a cut, not a clean end */
					st->keep_alive = 0;
					st->up_keep = 0;
					local_reply(st, 503, WF_RF_UC, NULL, NULL, 0);
				}
				return 0;
			}
			return 0;
		}
		const char *p = wf_buf_data(&u->s.rb);
		if (st->rs == RS_CL || st->rs == RS_CLOSE) {
			uint32_t k = avail;
			if (st->rs == RS_CL && st->resp_left < k)
				k = (uint32_t)st->resp_left;
			c->codec->body(st, p, k);
			st->si.bytes_sent += k;
			wf_buf_consume(&u->s.rb, &c->w->pool, k);
			if (st->rs == RS_CL) {
				st->resp_left -= k;
				if (!st->resp_left) {
					if (wf_buf_len(&u->s.rb))
						st->up_keep = 0; /* bytes beyond the response: not reusable */
					response_done(st);
					return 0;
				}
			}
			continue;
		}
		/* chunked */
		size_t used;
		const char *d;
		size_t dl;
		int cr = wf_h1_chunked_decode(&st->resp_ch, p, avail, &used, &d, &dl);
		if (cr < 0) {
			if (st->cluster)
				wf_stat_inc(st->cluster->st.cx_protocol_error);
			st->up_keep = 0;
			st->keep_alive = 0;
			local_reply(st, 502, WF_RF_UPE, NULL, NULL, 0);
			return 0;
		}
		if (cr == 1 && dl) {
			c->codec->body(st, d, dl);
			st->si.bytes_sent += dl;
		}
		wf_buf_consume(&u->s.rb, &c->w->pool, (uint32_t)used);
		if (cr == 2) {
			if (wf_buf_len(&u->s.rb))
				st->up_keep = 0;
			response_done(st);
			return 0;
		}
	}
}

/* The downstream is corked while upstream bytes are handled, so that a response head and the
 * body bytes that came with it leave in one write; this ends it (an HTTP/2 connection's
 * frames leave at the end of the loop iteration). 0, or -1 when the connection closed. */
static int down_uncork(struct hconn *c)
{
	if (c->dead)
		return -1;
	if (c->h2)
		hcm_h2_flush(c);
	if (wf_sio_uncork(LOOP(c), POOL(c), &c->s) < 0 || (c->closing && !c->h2 && !wf_sio_queued(&c->s))) {
		conn_close(c);
		return -1;
	}
	return 0;
}

static void on_up_readable(struct wf_uconn *u, void *owner)
{
	struct hstream *st = owner;
	struct hconn *c = st->c; /* outlives the stream within this event batch (deferred free) */
	if (st->tunnel) {
		tunnel_run(st);
		return;
	}
	for (;;) {
		c->s.cork = 1;
		int paused = up_readable(u, owner);
		if (down_uncork(c) < 0)
			return;
		if (c->st && c->st->tunnel) {
			/* just upgraded: relay what both sides already hold */
			tunnel_run(c->st);
			return;
		}
		/* Paused for the downstream, which then took it all at uncork: carry on with what
		 * the upstream buffer holds (no epoll event would come for it). Otherwise the
		 * downstream's EPOLLOUT resumes us. */
		if (!paused || c->codec->queued(st) >= st->down_wm)
			return;
		st->up_paused = 0;
		wf_upstream_want(u, EPOLLIN | EPOLLRDHUP);
	}
}

/* Room downstream again: let the upstream talk, starting with what it already sent and we
 * hold. */
void hcm_up_resume(struct hstream *st)
{
	struct wf_uconn *u = st->u;
	st->up_paused = 0;
	if (st->us.conn) {
		/* HTTP/2 upstream: acknowledge what the client has taken, so more may come */
		wf_up2_consume(&st->us, st->up_unacked);
		st->up_unacked = 0;
		wf_up2_flush(&st->us);
		return;
	}
	if (!u)
		return;
	if (st->tunnel) {
		tunnel_run(st);
		return;
	}
	wf_upstream_want(u, EPOLLIN | EPOLLRDHUP);
	if (wf_buf_len(&u->s.rb))
		on_up_readable(u, st);
}

static const struct wf_uconn_ops up_ops = {
	.connected = on_up_connected,
	.readable = on_up_readable,
	.drained = on_up_drained,
	.failed = on_up_failed,
};

/* The value of cookie `name` in the request's Cookie headers. */
static const char *cookie_value(const struct hstream *st, const char *name, uint32_t nl, uint32_t *vl)
{
	for (uint32_t i = 0; i < st->req.n_headers; i++) {
		const struct wf_hdr *h = &st->hdrs[i];
		if (!WF_HDR_IS(h, "cookie"))
			continue;
		const char *p = h->value, *e = p + h->value_len;
		while (p < e) {
			while (p < e && (*p == ' ' || *p == ';'))
				p++;
			const char *eq = memchr(p, '=', (size_t)(e - p));
			const char *semi = memchr(p, ';', (size_t)(e - p));
			const char *end = semi ? semi : e;
			if (eq && eq < end && (uint32_t)(eq - p) == nl && !memcmp(p, name, nl)) {
				const char *v = eq + 1;
				size_t n = (size_t)(end - v);
				if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
					v++, n -= 2;
				*vl = (uint32_t)n;
				return v;
			}
			p = end;
		}
	}
	return NULL;
}

/* The request hash from the route's hash_policy (Envoy's combination: rotate left by one, xor
 * the next policy's hash; a terminal policy that produced a value ends the list). 1 when a
 * hash was produced. A cookie policy with a ttl invents the cookie when it is absent and
 * sets it on the response. */
static int request_hash(struct hstream *st, uint64_t *out)
{
	const struct wf_route *r = st->route;
	uint64_t hash = 0;
	int have = 0;
	for (uint32_t i = 0; i < r->n_hash; i++) {
		const struct wf_hash_policy *p = &r->hash[i];
		const char *v = NULL;
		uint32_t vl = 0;
		char ip[64];
		PCRE2_UCHAR rw[1024];
		if (p->kind == WF_HASH_HEADER) {
			const struct wf_hdr *h = wf_hdr_find(st->hdrs, st->req.n_headers, p->name, p->name_len);
			if (h) {
				v = h->value, vl = h->value_len;
				PCRE2_SIZE rl = sizeof(rw);
				if (p->re && pcre2_substitute(p->re, (PCRE2_SPTR)v, vl, 0, PCRE2_SUBSTITUTE_GLOBAL, NULL, NULL,
				                              (PCRE2_SPTR)p->re_sub, PCRE2_ZERO_TERMINATED, rw, &rl) >= 0)
					v = (const char *)rw, vl = (uint32_t)rl;
			}
		} else if (p->kind == WF_HASH_COOKIE) {
			v = cookie_value(st, p->name, p->name_len, &vl);
			if (!v && p->cookie_generate && !st->set_cookie) {
				/* Envoy: a value derived from the client's address, set for the next requests */
				char hex[17];
				uint64_t x = wf_xxh64(st->c->remote, strlen(st->c->remote), 0);
				hex[fmt_hex(hex, x)] = 0;
				struct out o = {0};
				out_put(&o, p->name, p->name_len);
				OUT_LIT(&o, "=\"");
				out_put(&o, hex, strlen(hex));
				OUT_LIT(&o, "\"");
				if (p->cookie_ttl_s) {
					OUT_LIT(&o, "; Max-Age=");
					out_u64(&o, p->cookie_ttl_s);
				}
				if (p->cookie_path) {
					OUT_LIT(&o, "; Path=");
					out_put(&o, p->cookie_path, strlen(p->cookie_path));
				}
				OUT_LIT(&o, "; HttpOnly");
				out_put(&o, "", 1);
				st->set_cookie = o.p;
				v = st->set_cookie + p->name_len + 2, vl = (uint32_t)strlen(hex);
			}
		} else if (p->kind == WF_HASH_SOURCE_IP) {
			peer_ip(st->si.downstream_remote ? st->si.downstream_remote : st->c->remote, ip, sizeof(ip));
			v = ip, vl = (uint32_t)strlen(ip);
		} else {
			const char *qm = memchr(st->req.path, '?', st->req.path_len);
			const char *q = qm ? qm + 1 : NULL, *e = st->req.path + st->req.path_len;
			while (q && q < e) {
				const char *amp = memchr(q, '&', (size_t)(e - q));
				const char *end = amp ? amp : e;
				const char *eq = memchr(q, '=', (size_t)(end - q));
				const char *ke = eq ? eq : end;
				if ((uint32_t)(ke - q) == p->name_len && !memcmp(q, p->name, p->name_len)) {
					v = eq ? eq + 1 : end, vl = (uint32_t)(end - v);
					break;
				}
				q = amp ? amp + 1 : NULL;
			}
		}
		if (!v)
			continue;
		uint64_t hv = wf_xxh64(v, vl, 0);
		hash = ((hash << 1) | (hash >> 63)) ^ hv;
		have = 1;
		if (p->terminal)
			break;
	}
	*out = hash;
	return have;
}

/* ---- retries ---------------------------------------------------------------------------- */

static int retriable_status(const struct wf_retry *r, int code, const struct wf_h1_resp *resp)
{
	if ((r->on & WF_RETRY_5XX) && code >= 500)
		return 1;
	if ((r->on & WF_RETRY_GATEWAY) && (code == 502 || code == 503 || code == 504))
		return 1;
	if ((r->on & WF_RETRY_RETRIABLE_4XX) && code == 409)
		return 1;
	if (r->on & WF_RETRY_STATUS_CODES)
		for (uint32_t i = 0; i < r->n_codes; i++)
			if (r->codes[i] == (uint32_t)code)
				return 1;
	if (r->grpc_codes && resp) {
		/* a trailers-only gRPC answer: its grpc-status is in the head (Envoy retries only these) */
		const struct wf_hdr *g = wf_hdr_find(resp->headers, resp->n_headers, "grpc-status", 11);
		int gs = g ? wf_grpc_status_parse(g->value, g->value_len) : -1;
		if (gs >= 0 && gs < 32 && (r->grpc_codes & (1u << gs)))
			return 1;
	}
	if ((r->on & WF_RETRY_HEADERS) && resp) {
		/* the response's headers, seen through the request matcher (no pseudo-headers) */
		struct wf_h1_req view = {.headers = resp->headers, .n_headers = resp->n_headers, .path = "", .method = ""};
		for (uint32_t i = 0; i < r->n_headers; i++)
			if (wf_hdr_match(&r->headers[i], &view))
				return 1;
	}
	return 0;
}

static void retry_fire(struct wf_loop *loop, struct wf_timer *t);

/* After a failed attempt: schedule another one if the policy, the count, the request (its body
 * must have been kept) and the response (none sent downstream yet) allow it. 1 when a retry
 * is scheduled (the failed upstream connection is closed), 0 when the caller should fail. */
static int try_retry(struct hstream *st, int reason, int code, const struct wf_h1_resp *resp)
{
	const struct wf_retry *r = st->retry;
	if (!r || st->resp_started || st->ended)
		return 0;
	int ok;
	switch (reason) {
	case RETRY_CONNECT:
		ok = r->on & (WF_RETRY_5XX | WF_RETRY_GATEWAY | WF_RETRY_RESET | WF_RETRY_CONNECT_FAILURE);
		break;
	case RETRY_RESET:
		ok = r->on & (WF_RETRY_5XX | WF_RETRY_GATEWAY | WF_RETRY_RESET);
		break;
	case RETRY_REFUSED:
		ok = r->on & (WF_RETRY_5XX | WF_RETRY_GATEWAY | WF_RETRY_RESET | WF_RETRY_REFUSED_STREAM);
		break;
	case RETRY_TIMEOUT:
		ok = r->on & (WF_RETRY_5XX | WF_RETRY_GATEWAY);
		break;
	default:
		ok = retriable_status(r, code, resp);
	}
	if (!ok)
		return 0;
	if (st->attempt > r->num_retries) {
		st->si.response_flags |= WF_RF_URX;
		wf_stat_inc(st->cluster->st.rq_retry_limit_exceeded);
		return 0;
	}
	if (st->rb != RB_NONE && !st->replay_ok)
		return 0; /* the body is gone: it cannot be sent again */
	/* circuit breaker: retries in flight across the cluster (max_retries, or the budget) */
	const struct wf_cluster *cl = st->cluster;
	if (st->retry_taken) {
		wf_cb_put(&cl->cb->retries); /* the previous retry is over */
		st->retry_taken = 0;
	}
	uint32_t limit = cl->max_retries;
	if (cl->budget_percent >= 0) {
		double active = (double)(wf_cb_load(&cl->cb->rq) + wf_cb_load(&cl->cb->pending));
		limit = (uint32_t)(active * cl->budget_percent / 100.0);
		if (limit < cl->budget_min)
			limit = cl->budget_min;
	}
	if (!wf_cb_take(&cl->cb->retries, limit)) {
		wf_stat_inc(cl->st.rq_retry_overflow);
		st->si.response_flags |= WF_RF_UO;
		return 0;
	}
	st->retry_taken = 1;
	wf_stat_inc(st->cluster->st.rq_retry);
	if (st->host) {
		host_done(st);
		if (reason != RETRY_STATUS)
			wf_stat_inc(st->host->st_rq_error);
	}
	stream_drop_upstream(st, 0);
	/* full jitter over an exponentially growing window: [0, min(base * 2^(n-1), max)] ms */
	uint64_t window = r->base_ms << (st->attempt - 1 < 20 ? st->attempt - 1 : 20);
	if (window > r->max_ms)
		window = r->max_ms;
	uint64_t delay = window ? wf_rand(st->c->w) % (window + 1) : 0;
	st->backing_off = 1;
	wf_timer_set(LOOP(st->c), &st->try_t, delay ? delay : 1);
	return 1;
}

static int start_upstream(struct hstream *st);

static void retry_fire(struct wf_loop *loop, struct wf_timer *t)
{
	struct hstream *st = t->data;
	if (st->backing_off) {
		st->backing_off = 0;
		start_upstream(st);
		return;
	}
	/* per_try_timeout: this attempt took too long */
	if (st->cluster)
		wf_stat_inc(st->cluster->st.rq_per_try_timeout);
	report(st, WF_OUT_LOCAL);
	st->up_keep = 0;
	if (try_retry(st, RETRY_TIMEOUT, 0, NULL))
		return;
	local_reply(st, 504, WF_RF_UT, "upstream request timeout", NULL, 0);
}

/* Keep what is sent upstream of the body, for a replay, while it stays small. */
static void replay_keep(struct hstream *st, const char *p, size_t n)
{
	if (!st->replay_ok)
		return;
	out_put(&st->replay, p, n);
	if (st->replay.n > REPLAY_MAX) {
		st->replay_ok = 0;
		free(st->replay.p);
		st->replay = (struct out){0};
	}
}

/* Pick a host; with the previous_hosts predicate, try a few times for one not used yet. */
static const struct wf_host *pick_host(struct hstream *st, uint64_t hash, int has_hash)
{
	const struct wf_host *h = wf_cluster_pick(st->c->w, st->cluster, hash, has_hash);
	if (!st->retry || !st->retry->previous_hosts || !st->n_tried)
		return h;
	for (uint32_t k = 0; h && k < st->retry->host_reselect + 8; k++) {
		uint32_t i;
		for (i = 0; i < st->n_tried && st->tried[i] != h; i++)
			;
		if (i == st->n_tried)
			return h;
		h = wf_cluster_pick(st->c->w, st->cluster, hash ^ (k + 1) * 0x9E3779B97F4A7C15ull, has_hash);
	}
	return h;
}

/* ---- HTTP/2 upstreams ------------------------------------------------------------------------ */

/* Does this attempt go to its host over HTTP/2? (Upgrades and CONNECT stay HTTP/1.1.) */
static int up_is_h2(const struct hstream *st)
{
	const struct wf_cluster *cl = st->cluster;
	if (st->upgrade || st->connect_terminate)
		return 0;
	return cl->protocol == WF_UP_HTTP2 || (cl->protocol == WF_UP_DOWNSTREAM && st->c->h2) ||
	       (cl->protocol == WF_UP_AUTO && st->host && __atomic_load_n(&st->host->alpn_h2, __ATOMIC_RELAXED));
}

/* auto_config over TLS, to a host whose protocol is not known yet: the head waits for ALPN. */
static int alpn_pending(const struct hstream *st)
{
	return st->cluster->protocol == WF_UP_AUTO && st->cluster->tls;
}

/* The request head as HTTP/2 fields: pseudo-headers first, Host as :authority, the body's
 * length when known, and `te: trailers` when the client asked for trailers (gRPC needs it). */
static uint32_t request_fields(struct hstream *st, struct reqhead *rh, struct wf_hdr *v, char *len)
{
	const struct wf_h1_req *q = &st->req;
	uint32_t k = 0;
	v[k++] = (struct wf_hdr){":method", q->method, 7, q->method_len};
	v[k++] = (struct wf_hdr){":scheme", st->cluster->tls ? "https" : "http", 7, st->cluster->tls ? 5 : 4};
	v[k++] = (struct wf_hdr){":authority", "", 10, 0};
	v[k++] = (struct wf_hdr){":path", rh->path, 5, (uint32_t)rh->plen};
	for (uint32_t i = 0; i < rh->hl.n; i++) {
		if (rh->hl.dead[i])
			continue;
		if (WF_HDR_IS(&rh->hl.h[i], "host")) {
			v[2].value = rh->hl.h[i].value;
			v[2].value_len = rh->hl.h[i].value_len;
			continue;
		}
		v[k++] = rh->hl.h[i];
	}
	if (st->rb == RB_CL) {
		uint32_t n = (uint32_t)wf_fmt_u64(len, (uint64_t)q->content_length);
		v[k++] = (struct wf_hdr){"content-length", len, 14, n};
	}
	const struct wf_hdr *te = wf_hdr_find(st->hdrs, q->n_headers, "te", 2);
	/* HTTP/2 allows only "trailers" (every gRPC call sends it): that one without a search */
	if (te && te->value_len >= 8 &&
	    (te->value_len == 8 ? !memcmp(te->value, "trailers", 8) : memmem(te->value, te->value_len, "trailers", 8) != NULL))
		v[k++] = (struct wf_hdr){"te", "trailers", 2, 8};
	return k;
}

static void up2_connected(void *owner)
{
	struct hstream *st = owner;
	count_bound(st);
	up_send_body(st);
	if (!st->ended)
		conn_process(st->c);
}

static void up2_headers(void *owner, const struct wf_hdr *h, uint32_t n, int end_stream, int trailers)
{
	struct hstream *st = owner;
	struct hconn *c = st->c;
	if (trailers) {
		if (!st->resp_started || st->rs == RS_DONE)
			return;
		free(st->trailers);
		st->trailers = wf_hdrs_dup(h, n);
		st->n_trailers = st->trailers ? n : 0; /* out of memory: the trailers are lost */
		if (st->req.grpc)
			grpc_status_seen(st, h, n, 0);
		if (end_stream) {
			c->s.cork = 1;
			response_done(st);
			down_uncork(c);
		}
		return;
	}
	if (st->resp_started)
		return;
	/* :status, then the fields (HTTP/2 has no reason phrase, nor connection framing) */
	struct wf_h1_resp resp = {.status = 0, .minor = 1, .content_length = -1};
	uint32_t i = 0;
	for (; i < n && h[i].name_len && h[i].name[0] == ':'; i++)
		if (h[i].name_len == 7 && !memcmp(h[i].name, ":status", 7)) {
			int64_t v = wf_parse_u64(h[i].value, h[i].value_len, 999);
			resp.status = v >= 100 ? (int)v : 0;
		}
	resp.headers = (struct wf_hdr *)h + i;
	resp.n_headers = n - i;
	const struct wf_hdr *cl = wf_hdr_find(resp.headers, resp.n_headers, "content-length", 14);
	if (cl)
		resp.content_length = wf_parse_u64(cl->value, cl->value_len, INT64_MAX);
	if (!resp.status) {
		wf_stat_inc(st->cluster->st.cx_protocol_error);
		up_fail(st, 502, WF_RF_UPE, "protocol error");
		return;
	}
	if (resp.status < 200) {
		relay_interim(st, resp.status, resp.headers, resp.n_headers);
		return;
	}
	stream_touch(st);
	report(st, resp.status >= 502 && resp.status <= 504 ? WF_OUT_GATEWAY
	           : resp.status >= 500                     ? WF_OUT_5XX
	                                                    : WF_OUT_SUCCESS);
	if (try_retry(st, RETRY_STATUS, resp.status, &resp))
		return;
	wf_timer_cancel(LOOP(c), &st->try_t);
	if (st->attempt > 1)
		wf_stat_inc(st->cluster->st.rq_retry_success);
	st->up_keep = 1; /* a stream that ends both ways leaves without a reset (as HTTP/1.1 keep-alive) */
	c->s.cork = 1;
	if (send_response_head(st, &resp, end_stream) < 0) {
		st->keep_alive = 0;
		local_reply(st, 503, WF_RF_DC, NULL, NULL, 0);
	} else {
		if (!st->req_sent)
			wf_timer_cancel(LOOP(c), &st->t); /* the stream idle timeout from now on */
		if (st->rs == RS_DONE)
			response_done(st);
		else
			st->rs = RS_CLOSE; /* the body ends with the stream (END_STREAM) */
	}
	down_uncork(c);
}

static void up2_data(void *owner, const uint8_t *p, size_t n, int end_stream)
{
	struct hstream *st = owner;
	struct hconn *c = st->c;
	if (!st->resp_started || st->rs == RS_DONE) {
		wf_up2_consume(&st->us, n);
		return;
	}
	c->s.cork = 1;
	if (n) {
		stream_touch(st);
		c->codec->body(st, (const char *)p, n);
		st->si.bytes_sent += n;
		/* acknowledged upstream now, or when the client has taken enough (hcm_up_resume) */
		st->up_unacked += (uint32_t)n;
		if (c->codec->queued(st) < st->down_wm) {
			wf_up2_consume(&st->us, st->up_unacked);
			st->up_unacked = 0;
		} else {
			st->up_paused = 1;
		}
	}
	if (end_stream)
		response_done(st);
	down_uncork(c);
}

static void up2_writable(void *owner)
{
	struct hstream *st = owner;
	up_send_body(st);
	if (!st->ended)
		conn_process(st->c);
}

/* The upstream stream is gone before we let go of it. */
static void up2_reset(void *owner, int code, int connecting)
{
	struct hstream *st = owner;
	if (st->ended)
		return;
	st->up_unacked = 0;
	if (connecting) {
		on_up_failed(NULL, st, code, 1);
		return;
	}
	if (st->resp_started && st->rs == RS_DONE)
		return;
	if (code == 7 && !st->resp_started && st->refused < 10 && (st->rb == RB_NONE || (st->replay_ok && st->req_done))) {
		/* REFUSED_STREAM: the server did not process it (above its GOAWAY, or over its
		 * stream limit): safe to send again, as an HTTP/1.1 request lost to the keep-alive
		 * race is (bounded: a server that refuses everything gets its 503) */
		st->refused++;
		host_done(st);
		start_upstream(st);
		return;
	}
	report(st, WF_OUT_LOCAL);
	if (!st->resp_started && try_retry(st, code == 7 ? RETRY_REFUSED : RETRY_RESET, 0, NULL))
		return;
	if (st->cluster)
		wf_stat_inc(st->cluster->st.rq_rx_reset);
	st->keep_alive = st->keep_alive && !st->resp_started;
	up_fail(st, 503, code > 0 ? WF_RF_UR : WF_RF_UC, code > 0 ? "remote reset" : "connection termination");
}

static const struct wf_up2_ops up2_ops = {
	.connected = up2_connected,
	.headers = up2_headers,
	.data = up2_data,
	.writable = up2_writable,
	.reset = up2_reset,
};

/* Open the attempt's stream on an HTTP/2 connection to h. 0, or -EAGAIN (max_connections),
 * or another -errno. */
static int start_h2(struct hstream *st, const struct wf_host *h, int *reused)
{
	struct reqhead rh;
	reqhead_build(st, &rh, 0);
	char len[24];
	struct wf_hdr small[64], *v = rh.hl.n + 6 <= 64 ? small : malloc((rh.hl.n + 6) * sizeof(*v));
	uint32_t k = request_fields(st, &rh, v, len);
	int end = st->rb == RB_NONE;
	st->us.ops = &up2_ops;
	st->us.owner = st;
	int r = wf_up2_open(st->c->w, st->cluster, h, v, k, end, &st->us, reused);
	if (v != small)
		free(v);
	reqhead_free(&rh);
	return r;
}

/* A parked stream's turn: a connection to its host is idle, or a connection slot opened. */
static void on_connection_free(struct wf_uwaiter *wt)
{
	struct hstream *st = (struct hstream *)((char *)wt - offsetof(struct hstream, waiter));
	st->parked = 0;
	wf_cb_put(&st->cluster->cb->pending);
	start_upstream(st);
}

static int start_upstream(struct hstream *st)
{
	struct hconn *c = st->c;
	struct wf_cluster *cl = st->cluster;
	uint64_t hash = 0;
	int has_hash = st->route->n_hash && (cl->lb_kind == WF_LB_RING_HASH || cl->lb_kind == WF_LB_MAGLEV) &&
	               request_hash(st, &hash);
	const struct wf_host *h = pick_host(st, hash, has_hash);
	st->attempt++;
	if (!h) {
		wf_stat_inc(cl->st.none_healthy);
		local_reply(st, 503, WF_RF_UH, "no healthy upstream", NULL, 0);
		return -1;
	}
	st->host = h;
	if (st->n_tried < sizeof(st->tried) / sizeof(st->tried[0]))
		st->tried[st->n_tried++] = h;
	wf_stat_inc(h->st_rq_active);
	wf_cluster_rq_start(c->w, cl, h);
	int err = 0, h2 = up_is_h2(st);
	if (h2)
		err = start_h2(st, h, &st->u_reused);
	else if (st->connect_terminate)
		st->u = wf_upstream_connect(c->w, cl, h, &up_ops, st, &err);
	else
		st->u = wf_upstream_get(c->w, cl, h, &up_ops, st, &st->u_reused, &err);
	if (err == -EAGAIN) {
		/* max_connections: wait for one, unless max_pending_requests already wait */
		host_done(st);
		st->n_tried--;
		st->attempt--;
		st->host = NULL;
		if (!wf_cb_take(&cl->cb->pending, cl->max_pending)) {
			wf_stat_inc(cl->st.rq_pending_overflow);
			local_reply(st, 503, WF_RF_UO,
			            "upstream connect error or disconnect/reset before headers. reset reason: overflow", NULL, 0);
			return -1;
		}
		wf_stat_inc(cl->st.rq_pending_total);
		st->parked = 1;
		st->waiter.cb = cl->cb;
		st->waiter.addr = h->addr;
		st->waiter.ready = on_connection_free;
		wf_upstream_wait(c->w, &st->waiter);
		/* the route timeout bounds the wait, as it bounds the whole exchange */
		if (st->req_done && st->timeout_ms && !wf_timer_armed(&st->t))
			wf_timer_set(LOOP(c), &st->t, st->timeout_ms);
		return 0;
	}
	if (err || (!h2 && !st->u)) {
		up_fail(st, 503, WF_RF_UF, "connection failure");
		return -1;
	}
	/* Envoy's accounting: a request waits ("pending") only for a new connection, and counts
	 * in upstream_rq_total once it is bound to a connected one. */
	if (st->u_reused)
		count_bound(st);
	else
		wf_stat_inc(cl->st.rq_pending_total);
	if (st->connect_terminate) {
		/* nothing to send: Weft answers the CONNECT itself once connected (an HTTP/2
		 * client's DATA then flows as the tunnel's) */
		st->t_sent_us = NOW_US(st);
		st->req_sent = !c->h2;
		arm_route_timer(st);
		return 0;
	}
	if (!h2 && !st->u_reused && alpn_pending(st)) {
		st->head_deferred = 1; /* ALPN decides the protocol: send once connected */
		return 0;
	}
	return send_attempt(st, h2);
}

/* The attempt has its connection (or its HTTP/2 stream): send the head, and what is kept of
 * the body on a retry. 0, or -1 when the stream failed. */
static int send_attempt(struct hstream *st, int h2)
{
	if (h2) {
		st->t_sent_us = NOW_US(st);
		if (st->rb == RB_NONE) {
			st->req_sent = 1;
			mirror(st);
		}
	} else if (send_request_head(st) < 0) {
		stream_drop_upstream(st, 0);
		up_fail(st, 503, WF_RF_UC, "connection termination");
		return -1;
	}
	if (st->attempt > 1 && st->replay.n) {
		/* a retry: what was sent of the body goes again; the rest follows from the client */
		if (up_body(st, st->replay.p, st->replay.n, 0) < 0 || (st->req_done && up_body_end(st) < 0))
			return -1;
		if (st->req_done)
			st->req_sent = 1;
	}
	if (st->req_sent || st->rb == RB_RAW)
		arm_route_timer(st); /* a tunnel's: until it opens */
	else if (h2)
		up_send_body(st); /* HTTP/2 queues DATA before the connection is up */
	if (h2 && st->us.conn)
		wf_up2_flush(&st->us);
	return 0;
}

static void on_stream_timer(struct wf_loop *loop, struct wf_timer *t)
{
	struct hstream *st = t->data;
	if (st->cluster)
		wf_stat_inc(st->cluster->st.rq_timeout);
	if (st->host)
		wf_stat_inc(st->host->st_rq_timeout);
	st->up_keep = 0;
	if (st->resp_started && st->client_deadline && st->req.grpc && st->c->h2 && !st->down_done) {
		/* a gRPC client's own deadline passed mid-response: the call ends with the status it
		 * stands for (trailers grpc-status 4), as the client's library says too, not with a
		 * reset it would read as INTERNAL; the upstream stream is still cancelled */
		static const struct wf_hdr deadline[] = {
		    {"grpc-status", "4", 11, 1}, {"grpc-message", "upstream request timeout", 12, 24}};
		free(st->trailers);
		st->trailers = wf_hdrs_dup(deadline, 2);
		st->n_trailers = st->trailers ? 2 : 0;
		grpc_status_seen(st, deadline, 2, 0); /* the call's status, for grpc_stats and the logs */
		st->si.response_flags |= WF_RF_UT;
		st->keep_alive = 0;
		response_done(st);
		return;
	}
	if (st->resp_started) {
		wf_stat_inc(st->cfg->st.tx_reset);
		st->si.response_flags |= WF_RF_UT;
		st->keep_alive = 0;
		st->rs = RS_DONE;
		stream_end(st);
		return;
	}
	/* the client's own deadline (grpc-timeout) passed: DEADLINE_EXCEEDED, as its gRPC library
	 * says too; a route timeout is a 504 (UNAVAILABLE in gRPC's mapping, as Envoy answers) */
	if (st->client_deadline)
		st->grpc_status1 = 4 + 1;
	local_reply(st, 504, WF_RF_UT, "upstream request timeout", NULL, 0);
}

/* request_timeout: the whole request must have arrived (and been sent upstream) this long after
 * its head, for a request with a body; the response beginning stops it too. Per stream, whatever
 * the codec: an HTTP/2 stream that misses it gets the 408 alone, its connection goes on. */
static void on_request_timer(struct wf_loop *loop, struct wf_timer *t)
{
	struct hstream *st = t->data;
	wf_stat_inc(st->cfg->st.rq_timeout);
	st->keep_alive = 0;
	local_reply(st, 408, WF_RF_DT, "request timeout", NULL, 0);
}

static void arm_request_timer(struct hstream *st)
{
	if (!st->cfg->request_timeout_ms || st->req_done)
		return;
	st->rq_t.cb = on_request_timer;
	st->rq_t.data = st;
	wf_timer_set(LOOP(st->c), &st->rq_t, st->cfg->request_timeout_ms);
}

/* stream_idle_timeout (or the route's idle_timeout): no byte moved either way for that long. */
static void on_stream_idle(struct wf_loop *loop, struct wf_timer *t)
{
	struct hstream *st = t->data;
	uint64_t quiet = wf_loop_now(loop) - st->active;
	if (quiet < st->idle_ms) {
		wf_timer_set(loop, t, st->idle_ms - quiet);
		return;
	}
	wf_stat_inc(st->cfg->st.rq_idle_timeout);
	st->up_keep = 0;
	if (st->resp_started) {
		wf_stat_inc(st->cfg->st.tx_reset);
		st->si.response_flags |= WF_RF_SI;
		st->keep_alive = 0;
		st->rs = RS_DONE;
		stream_end(st);
		return;
	}
	st->keep_alive = 0;
	local_reply(st, 408, WF_RF_SI, "stream timeout", NULL, 0);
}

static void stream_touch(struct hstream *st)
{
	if (st)
		st->active = wf_loop_now(LOOP(st->c));
}

/* ---- routing ------------------------------------------------------------------------------ */

static void redirect(struct hstream *st)
{
	const struct wf_route *r = st->route;
	const struct wf_h1_req *q = &st->req;
	struct out o = out_take();
	out_put(&o, r->redir_scheme ? r->redir_scheme : "http", strlen(r->redir_scheme ? r->redir_scheme : "http"));
	OUT_LIT(&o, "://");
	const char *host = q->host ? q->host : "";
	size_t hn = q->host ? q->host_len : 0;
	const char *colon = memchr(host, ':', hn);
	size_t host_only = colon ? (size_t)(colon - host) : hn;
	if (r->redir_host)
		out_put(&o, r->redir_host, strlen(r->redir_host));
	else
		out_put(&o, host, host_only);
	if (r->redir_port)
		out_fmt(&o, ":%u", r->redir_port);
	else if (!r->redir_host && colon) {
		/* keep the port, unless the scheme changes and it is the default of the request's
		 * scheme (always http here: :80) */
		int dflt = hn - host_only == 3 && !memcmp(colon, ":80", 3);
		if (!r->redir_scheme || !strcmp(r->redir_scheme, "http") || !dflt)
			out_put(&o, colon, hn - host_only);
	}
	const char *qm = memchr(q->path, '?', q->path_len);
	size_t pn = qm ? (size_t)(qm - q->path) : q->path_len;
	if (r->redir_path) {
		const char *rq = strchr(r->redir_path, '?');
		out_put(&o, r->redir_path, strlen(r->redir_path));
		if (rq)
			qm = NULL; /* the new path brings its own query */
	} else if (r->redir_prefix) {
		size_t keep = r->path_len <= pn ? r->path_len : pn;
		out_put(&o, r->redir_prefix, strlen(r->redir_prefix));
		out_put(&o, q->path + keep, pn - keep);
	} else if (r->redir_re) {
		PCRE2_UCHAR buf[8192];
		PCRE2_SIZE bl = sizeof(buf);
		if (pcre2_substitute(r->redir_re, (PCRE2_SPTR)q->path, pn, 0, PCRE2_SUBSTITUTE_GLOBAL, NULL, NULL,
		                     (PCRE2_SPTR)r->redir_re_sub, PCRE2_ZERO_TERMINATED, buf, &bl) >= 0)
			out_put(&o, (const char *)buf, bl);
		else
			out_put(&o, q->path, pn);
	} else {
		out_put(&o, q->path, pn);
	}
	if (qm && !r->strip_query)
		out_put(&o, qm, q->path_len - pn);
	struct wf_hdr loc = {"location", o.p, 8, (uint32_t)o.n};
	local_reply(st, r->redir_code, 0, NULL, &loc, 1);
	out_give(&o);
}

/* Two lower-case hex digits for each byte value. */
static const char hex_byte[256][2] = {
#define HD(d) ((d) < 10 ? '0' + (d) : 'a' + (d) - 10)
#define H2(x) {HD((x) >> 4), HD((x) & 15)}
#define H16(x) H2(x), H2(x + 1), H2(x + 2), H2(x + 3), H2(x + 4), H2(x + 5), H2(x + 6), H2(x + 7), \
               H2(x + 8), H2(x + 9), H2(x + 10), H2(x + 11), H2(x + 12), H2(x + 13), H2(x + 14), H2(x + 15)
    H16(0x00), H16(0x10), H16(0x20), H16(0x30), H16(0x40), H16(0x50), H16(0x60), H16(0x70),
    H16(0x80), H16(0x90), H16(0xa0), H16(0xb0), H16(0xc0), H16(0xd0), H16(0xe0), H16(0xf0),
#undef H16
#undef H2
#undef HD
};

static void gen_request_id(struct hstream *st)
{
	struct wf_worker *w = st->c->w;
	uint64_t a = wf_rand(w), b = wf_rand(w);
	/* UUID version 4, variant 10 */
	a = (a & 0xFFFFFFFFFFFF0FFFull) | 0x4000;
	b = (b & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;
	/* 8-4-4-4-12 hex digits from the 128 bits a:b, two digits a byte */
	char hex[32];
	for (int i = 0; i < 8; i++) {
		memcpy(hex + 2 * i, hex_byte[a >> (56 - 8 * i) & 0xff], 2);
		memcpy(hex + 16 + 2 * i, hex_byte[b >> (56 - 8 * i) & 0xff], 2);
	}
	char *o = st->request_id;
	memcpy(o, hex, 8);
	o[8] = '-';
	memcpy(o + 9, hex + 8, 4);
	o[13] = '-';
	memcpy(o + 14, hex + 12, 4);
	o[18] = '-';
	memcpy(o + 19, hex + 16, 4);
	o[23] = '-';
	memcpy(o + 24, hex + 20, 12);
	o[36] = 0;
}

/* strip_any_host_port / strip_matching_host_port: the port leaves the Host for routing and
 * for the upstream alike, as in Envoy. */
static void strip_port(struct hstream *st)
{
	const struct wf_hcm_cfg *cfg = st->cfg;
	const char *h = st->req.host;
	uint32_t n = st->req.host_len;
	if (!h || !n || (!cfg->strip_any_host_port && !cfg->strip_matching_host_port))
		return;
	const char *colon = NULL;
	if (h[0] == '[') {
		const char *e = memchr(h, ']', n);
		if (e && e + 1 < h + n && e[1] == ':')
			colon = e + 1;
	} else {
		colon = memchr(h, ':', n);
	}
	if (!colon)
		return;
	if (!cfg->strip_any_host_port) {
		const char *ls = strrchr(st->c->l->addr_str, ':');
		size_t pl = (size_t)(h + n - colon);
		if (!ls || strlen(ls) != pl || memcmp(ls, colon, pl))
			return;
	}
	st->req.host_len = (uint32_t)(colon - h);
}

/* Is the upgrade the request asks for allowed? The route's upgrade_configs decide when they
 * name the type; otherwise the connection manager's. Also notes a CONNECT to terminate. */
static int upgrade_allowed(struct hstream *st)
{
	const struct wf_route *r = st->route;
	for (uint32_t i = 0; r && i < r->n_upgrades; i++)
		if (wf_str_ieq(r->upgrades[i].type, strlen(r->upgrades[i].type), st->upgrade, st->upgrade_len)) {
			st->connect_terminate = r->upgrades[i].connect_terminate;
			return r->upgrades[i].enabled;
		}
	const struct wf_hcm_cfg *cfg = st->cfg;
	for (uint32_t i = 0; i < cfg->n_upgrades; i++)
		if (wf_str_ieq(cfg->upgrades[i].type, strlen(cfg->upgrades[i].type), st->upgrade, st->upgrade_len))
			return cfg->upgrades[i].enabled;
	return 0;
}

static void route_stream(struct hstream *st)
{
	const struct wf_hcm_cfg *cfg = st->cfg;
	const struct wf_h1_req *q = &st->req;
	client_address(st);
	/* x-request-id: kept, or generated (and regenerated for external requests at the edge) */
	const struct wf_hdr *rid = wf_hdr_find(st->hdrs, q->n_headers, "x-request-id", 12);
	if (rid && rid->value_len < sizeof(st->request_id) &&
	    (!cfg->use_remote_address || cfg->preserve_external_request_id)) {
		memcpy(st->request_id, rid->value, rid->value_len);
		st->request_id[rid->value_len] = 0;
	} else if (cfg->generate_request_id) {
		gen_request_id(st);
		/* the request as forwarded (and as logged) carries the id */
		struct wf_hdr *h = (struct wf_hdr *)rid;
		if (!h)
			h = &st->hdrs[st->req.n_headers++]; /* hdrs has one spare entry */
		*h = (struct wf_hdr){"x-request-id", st->request_id, 12, (uint32_t)strlen(st->request_id)};
	}
	strip_port(st);
	st->vh = q->host ? wf_route_vhost(cfg->routes, q->host, q->host_len, 0) : cfg->routes->any;
	if (st->vh)
		st->route = wf_route_match(st->vh, q);
	st->idle_ms = st->route && st->route->idle_timeout_ms ? st->route->idle_timeout_ms : cfg->stream_idle_timeout_ms;
	if (st->idle_ms) {
		stream_touch(st);
		wf_timer_set(LOOP(st->c), &st->idle, st->idle_ms);
	}
	if (st->upgrade && st->route && !upgrade_allowed(st)) {
		/* Envoy: an upgrade the route (or, without a say from the route, the connection
		 * manager) does not allow gets 403, and the connection closes so that no upgrade
		 * payload can be taken for a request. */
		wf_stat_inc(cfg->st.rq_ws_on_non_ws_route);
		st->keep_alive = 0;
		local_reply(st, 403, 0, NULL, NULL, 0);
		return;
	}
	if (!cfg->n_filters) {
		route_dispatch(st);
		return;
	}
	struct wf_fstream *fs = &st->fs;
	fs->w = st->c->w;
	fs->req = &st->req;
	fs->route = st->route;
	fs->vh = st->vh;
	fs->client = st->si.downstream_remote;
	fs->si = &st->si;
	fs->t.data = fs;
	filters_run(st, 0);
}

/* The most specific per-route config of filter i: the route's, else its virtual host's. */
static const void *filter_route_cfg(const struct hstream *st, uint32_t i)
{
	if (st->route)
		for (uint32_t k = 0; k < st->route->n_fcfg; k++)
			if (st->route->fcfg[k].index == i)
				return st->route->fcfg[k].cfg;
	if (st->vh)
		for (uint32_t k = 0; k < st->vh->n_fcfg; k++)
			if (st->vh->fcfg[k].index == i)
				return st->vh->fcfg[k].cfg;
	return NULL;
}

/* Run the filters from `from` on; the router acts when all went on. A filter that stops has
 * answered (the stream may be gone) or holds the stream until wf_fs_resume. */
static void filters_run(struct hstream *st, uint32_t from)
{
	const struct wf_hcm_cfg *cfg = st->cfg;
	for (uint32_t i = from; i < cfg->n_filters; i++) {
		const struct wf_filter_inst *f = &cfg->filters[i];
		st->fs.index = i;
		st->f_ran = i + 1;
		if (f->ops->on_request(&st->fs, f->cfg, filter_route_cfg(st, i)) == WF_FILTER_STOP)
			return;
	}
	route_dispatch(st);
}

#define FS_STREAM(fs) ((struct hstream *)((char *)(fs) - offsetof(struct hstream, fs)))

void wf_fs_resume(struct wf_fstream *fs)
{
	struct hstream *st = FS_STREAM(fs);
	struct hconn *c = st->c;
	filters_run(st, fs->index + 1);
	if (!c->dead)
		conn_process(c);
}

void wf_fs_reply(struct wf_fstream *fs, int status, uint32_t flag, const char *body, int grpc_status)
{
	struct hstream *st = FS_STREAM(fs);
	if (grpc_status >= 0)
		st->grpc_status1 = (int16_t)(grpc_status + 1); /* used when the client speaks gRPC */
	local_reply(st, status, flag, body, NULL, 0);
}

/* The filters went on: the route's action. */
static void route_dispatch(struct hstream *st)
{
	const struct wf_hcm_cfg *cfg = st->cfg;
	if (!st->route) {
		wf_stat_inc(cfg->st.no_route);
		local_reply(st, 404, WF_RF_NR, NULL, NULL, 0);
		return;
	}
	const struct wf_route *r = st->route;
	if (r->action == WF_ACT_DIRECT) {
		local_reply_n(st, r->direct_status, 0, r->has_direct_body ? r->direct_body : NULL, r->direct_body_len, NULL, 0);
		return;
	}
	if (r->action == WF_ACT_REDIRECT) {
		redirect(st);
		return;
	}
	if (r->n_weighted) {
		st->wc = wf_route_weighted(st->c->w, r->weighted, r->n_weighted, r->total_weight);
		st->cluster = st->wc->cluster;
	} else {
		st->cluster = r->cluster;
	}
	if (!st->cluster) {
		/* validate_clusters: false and the route names a cluster this config lacks */
		wf_stat_inc(cfg->st.no_cluster);
		local_reply(st, 503, WF_RF_NC, NULL, NULL, 0);
		return;
	}
	if (!wf_cb_take(&st->cluster->cb->rq, st->cluster->max_requests)) {
		/* circuit breaker: the cluster already has max_requests in flight */
		wf_stat_inc(st->cluster->st.rq_pending_overflow);
		st->cluster = NULL;
		local_reply(st, 503, WF_RF_UO, "upstream connect error or disconnect/reset before headers. reset reason: overflow",
		            NULL, 0);
		return;
	}
	st->rq_taken = 1;
	st->fs.cluster = st->cluster;
	wf_stat_inc(st->cluster->st.rq_active);
	/* a gRPC client's deadline (grpc-timeout) shortens the route timeout, never lengthens it */
	st->timeout_ms = r->timeout_ms;
	const struct wf_hdr *gt = st->req.grpc ? wf_hdr_find(st->hdrs, st->req.n_headers, "grpc-timeout", 12) : NULL;
	int64_t g = gt ? wf_grpc_timeout_ms(gt->value, gt->value_len) : -1;
	if (g >= 0 && (!st->timeout_ms || (uint64_t)g < st->timeout_ms)) {
		st->timeout_ms = g ? (uint64_t)g : 1;
		st->client_deadline = 1;
	}
	st->retry = r->retry;
	st->replay_ok = st->retry != NULL || r->n_mirrors; /* bodies are kept for retries and mirrors */
	if (st->upgrade) {
		/* a tunnel is neither retried nor mirrored */
		st->retry = NULL;
		st->replay_ok = 0;
		st->mirrored = 1;
	}
	st->try_t.cb = retry_fire;
	st->try_t.data = st;
	if (st->cluster->per_connection_buffer_limit < WATERMARK)
		st->up_wm = st->cluster->per_connection_buffer_limit;
	if (st->req.expect_continue && !cfg->proxy_100_continue && st->rb != RB_NONE) {
		/* Envoy's default: answer the expectation ourselves, right away, and do not pass it on */
		st->sent_100 = 1;
		st->c->codec->interim(st, 100, NULL, 0);
	}
	route_continue(st);
}

/* Start the upstream exchange once a chunked body's first size line has been validated (see
 * chunked_precheck); until then the stream waits for more bytes (the line is bounded). */
static void route_continue(struct hstream *st)
{
	if (st->rb == RB_CHUNKED && !st->c->h2) {
		int r = chunked_precheck(st);
		if (r < 0) {
			body_refused(st);
			return;
		}
		if (r == 0) {
			st->wait_body = 1;
			return;
		}
	}
	st->wait_body = 0;
	start_upstream(st);
}

/* ---- downstream --------------------------------------------------------------------------- */

/* Refuse the request being received (a malformed head: 400/431; a head that stalled: 408),
 * with a reply and an access log line, then close. */
static void bad_request_flag(struct hconn *c, int status, const char *why, uint32_t flag);
static void stream_init(struct hstream *st, struct hconn *c);

static void bad_request(struct hconn *c, int status, const char *why)
{
	bad_request_flag(c, status, why, status == 408 ? WF_RF_SI : WF_RF_DPE);
}

static void bad_request_flag(struct hconn *c, int status, const char *why, uint32_t flag)
{
	/* A stream object just for the reply and the access log line. */
	struct hstream *st = c->st;
	if (status != 408)
		wf_stat_inc(c->l->hcm->st.cx_protocol_error);
	if (!st) {
		st = stream_alloc();
		stream_init(st, c);
		st->req.method = NULL;
		c->st = st;
		wf_stat_inc(st->cfg->st.rq_total);
		wf_stat_inc(st->cfg->st.rq_active);
	}
	wf_debug("%s: refusing request: %s", c->remote, why);
	st->keep_alive = 0;
	st->req_done = 0;
	st->rb = RB_CL;
	local_reply(st, status, flag,
	            status == 431 ? "Request Header Fields Too Large" : status == 408 ? why : "Bad Request", NULL, 0);
}

/* What every stream starts with, whatever its codec. */
static void stream_init(struct hstream *st, struct hconn *c)
{
	st->c = c;
	st->snap = c->snap;
	wf_worker_hold(c->w, st->snap);
	st->cfg = c->l->hcm;
	st->t.cb = on_stream_timer;
	st->t.data = st;
	st->idle.cb = on_stream_idle;
	st->idle.data = st;
	st->si.start_us = NOW_US(st);
	st->si.start_wall_us = wf_loop_wall_us(LOOP(c));
	st->si.upstream_service_us = -1;
	st->down_wm = c->l->buffer_limit < WATERMARK ? c->l->buffer_limit : WATERMARK;
	st->up_wm = st->down_wm;
}

/* HTTP/2: a stream object for a request head being received; the codec fills st->head,
 * st->hdrs (cfg->max_headers_count + 1 entries) and st->req, then calls hcm_stream_begin. */
struct hstream *hcm_stream_new(struct hconn *c)
{
	const struct wf_hcm_cfg *cfg = c->l->hcm;
	struct hstream *st = stream_alloc();
	st->hdrs = cfg->max_headers_count + 1 <= INLINE_HDRS ? st->hdrs_inline
	           : malloc((cfg->max_headers_count + 1) * sizeof(*st->hdrs));
	stream_init(st, c);
	c->requests++;
	return st;
}

/* HTTP/2: the request head is in (and its body framing known): count it and route it. */
void hcm_stream_begin(struct hstream *st)
{
	const struct wf_hcm_cfg *cfg = st->cfg;
	st->is_head = st->req.method_len == 4 && !memcmp(st->req.method, "HEAD", 4);
	st->keep_alive = 1;
	wf_stat_inc(cfg->st.rq_total);
	wf_stat_inc(cfg->st.rq_active);
	if (st->upgrade && !cfg->h2.lim.connect_protocol) {
		/* CONNECT (and extended CONNECT) over HTTP/2 need allow_connect, as in Envoy */
		local_reply(st, 403, 0, NULL, NULL, 0);
		return;
	}
	if (!st->upgrade)
		arm_request_timer(st);
	route_stream(st);
}

void hcm_stream_head_timeout(struct hstream *st)
{
	const struct wf_hcm_cfg *cfg = st->cfg;
	wf_debug("%s: HTTP/2 stream %d: request head incomplete after request_headers_timeout", st->c->remote, st->sid);
	wf_stat_inc(cfg->st.rq_header_timeout);
	wf_stat_inc(cfg->st.rq_total);
	wf_stat_inc(cfg->st.rq_active);
	local_reply(st, 408, 0, "request header timeout", NULL, 0);
}

/* The client reset the stream (HTTP/2), or its connection went, while the stream was active. */
void hcm_stream_abort(struct hstream *st)
{
	if (st->ended)
		return;
	if (!st->resp_started || st->rs != RS_DONE)
		st->si.response_flags |= WF_RF_DC;
	st->up_keep = 0;
	if (st->cluster)
		wf_stat_inc(st->cluster->st.rq_tx_reset);
	wf_stat_inc(st->cfg->st.rx_reset);
	st->ended = 1;
	stream_drop_upstream(st, 0);
	log_stream(st);
	st->c->codec->done(st);
}

/* Parse the next request head from the read buffer and start its stream. 1 if a stream
 * started, 0 when more input is needed, -1 when the connection is being closed. */
static int start_stream(struct hconn *c)
{
	const struct wf_hcm_cfg *cfg = c->l->hcm;
	uint32_t avail = wf_buf_len(&c->s.rb);
	if (!avail)
		return 0;
	if (!c->head_started) {
		c->head_started = wf_loop_now(LOOP(c));
		/* the connection is no longer idle: the head has its own timeout, or the stream idle one */
		uint64_t t = cfg->request_headers_timeout_ms ? cfg->request_headers_timeout_ms : cfg->stream_idle_timeout_ms;
		if (t)
			wf_timer_set(LOOP(c), &c->t, t);
		else
			wf_timer_cancel(LOOP(c), &c->t);
	}
	struct wf_h1_limits lim = {.max_head_bytes = cfg->max_request_headers_kb * 1024,
	                           .max_headers = cfg->max_headers_count};
	/* Parse into a stream object straight away (recycled, so a failed or incomplete parse
	 * costs nothing but the parse). */
	struct hstream *st = stream_alloc();
	struct wf_hdr *hdrs = cfg->max_headers_count + 1 <= INLINE_HDRS ? st->hdrs_inline
	                      : malloc((cfg->max_headers_count + 1) * sizeof(*hdrs));
	st->hdrs = hdrs;
	struct wf_h1_req req;
	req.headers = hdrs;
	int n = wf_h1_parse_request(wf_buf_data(&c->s.rb), avail, &lim, &req);
	if (n <= 0) {
		stream_recycle(st);
		if (n < 0) {
			bad_request(c, -n, req.err ? req.err : "malformed");
			return -1;
		}
		return 0;
	}
	/* A stream, with its own copy of the head. */
	stream_init(st, c);
	st->si.start_us = NOW_US(st) - (wf_loop_now(LOOP(c)) - c->head_started) * 1000;
	const char *base = wf_buf_data(&c->s.rb);
	st->head = n <= INLINE_HEAD ? st->head_inline : malloc((size_t)n);
	memcpy(st->head, base, (size_t)n);
#define REBASE(p) ((p) ? st->head + ((p) - base) : NULL)
	st->req = req;
	st->req.method = REBASE(req.method);
	st->req.target = REBASE(req.target);
	st->req.path = (req.path >= base && req.path < base + n) ? REBASE(req.path) : req.path;
	st->req.host = REBASE(req.host);
	for (uint32_t i = 0; i < req.n_headers; i++) {
		hdrs[i].name = REBASE(hdrs[i].name);
		hdrs[i].value = REBASE(hdrs[i].value);
	}
#undef REBASE
	st->req.headers = hdrs;
	wf_buf_consume(&c->s.rb, POOL(c), (uint32_t)n);
	c->st = st;
	c->head_started = 0;
	wf_timer_cancel(LOOP(c), &c->t);
	st->is_head = st->req.method_len == 4 && !memcmp(st->req.method, "HEAD", 4);
	st->keep_alive = req.minor >= 1 ? !req.conn_close : req.conn_keep_alive && !req.conn_close;
	if (++c->requests == 1)
		wf_stat_inc(cfg->st.cx_http1_total), wf_stat_inc(cfg->st.cx_http1_active);
	if (c->w->draining || (cfg->max_requests_per_connection && c->requests >= cfg->max_requests_per_connection))
		st->keep_alive = 0; /* the response says connection: close */
	if (req.chunked) {
		st->rb = RB_CHUNKED;
	} else if (req.content_length > 0) {
		st->rb = RB_CL;
		st->req_left = (uint64_t)req.content_length;
	} else {
		st->rb = RB_NONE;
		st->req_done = 1;
	}
	wf_stat_inc(cfg->st.rq_total);
	wf_stat_inc(cfg->st.rq_active);
	arm_request_timer(st);
	if (req.minor == 0 && !cfg->accept_http_10) {
		st->keep_alive = 0;
		local_reply(st, 426, WF_RF_DPE, "Upgrade Required", NULL, 0);
		return c->dead ? -1 : 1;
	}
	if (req.form == WF_H1_ABSOLUTE && !cfg->allow_absolute_url) {
		st->keep_alive = 0;
		local_reply(st, 400, WF_RF_DPE, "absolute URL not allowed", NULL, 0);
		return c->dead ? -1 : 1;
	}
	if (!st->req.host && cfg->default_host_10) {
		st->req.host = cfg->default_host_10;
		st->req.host_len = (uint32_t)strlen(cfg->default_host_10);
	}
	if (req.form == WF_H1_ASTERISK) {
		/* OPTIONS * has nothing to route */
		local_reply(st, 404, WF_RF_NR, NULL, NULL, 0);
		return c->dead ? -1 : 1;
	}
	if (req.conn_upgrade || req.form == WF_H1_AUTHORITY)
		upgrade_request(st);
	route_stream(st);
	return c->dead ? -1 : 1;
}

/* An upgrade request (Connection: upgrade and an Upgrade header; Upgrade: h2c is not one, its
 * headers are dropped as Envoy does) or a CONNECT. As in Envoy, what follows the head is upgrade
 * payload, not a body nor a next request: it waits in the read buffer for the tunnel, and the
 * connection does not outlive the stream. A CONNECT is routed by its target. */
static void upgrade_request(struct hstream *st)
{
	if (st->req.form == WF_H1_AUTHORITY) {
		st->upgrade = "CONNECT";
		st->upgrade_len = 7;
		st->req.host = st->req.target;
		st->req.host_len = st->req.target_len;
	} else {
		const struct wf_hdr *h = wf_hdr_find(st->hdrs, st->req.n_headers, "upgrade", 7);
		if (!h || !h->value_len || wf_str_ieq(h->value, h->value_len, "h2c", 3))
			return;
		st->upgrade = h->value;
		st->upgrade_len = h->value_len;
	}
	st->keep_alive = 0;
	st->rb = RB_NONE;
	st->req_done = 1;
	st->req_left = 0;
	wf_timer_cancel(LOOP(st->c), &st->rq_t); /* no request_timeout: there is no body */
}

static void conn_free(struct wf_defer *d)
{
	struct hconn *c = (struct hconn *)((char *)d - offsetof(struct hconn, defer));
	if (c->flush_pending) {
		c->free_pending = 1; /* its flush, queued earlier, runs later and frees it */
		return;
	}
	free(c);
}

static void conn_close(struct hconn *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	struct wf_worker *w = c->w;
	if (c->st) {
		c->st->keep_alive = 0;
		hcm_stream_abort(c->st);
	}
	if (c->h2)
		hcm_h2_free(c);
	wf_timer_cancel(&w->loop, &c->t);
	wf_sio_close(&w->loop, &w->pool, &c->s);
	const struct wf_hcm_cfg *cfg = c->l->hcm;
	wf_stat_dec(cfg->st.cx_active);
	if (c->codec == &hcm_h2_codec)
		wf_stat_dec(cfg->st.cx_http2_active);
	else if (c->requests)
		wf_stat_dec(cfg->st.cx_http1_active);
	wf_stat_inc(cfg->st.cx_destroy);
	wf_stat_hist(cfg->st.cx_length_ms, wf_loop_now(&w->loop) - c->opened_ms);
	wf_stat_dec(c->l->st_cx_active);
	wf_stat_inc(c->l->st_cx_destroy);
	wf_conn_link_del(w, &c->link);
	wf_worker_release(w, c->snap);
	c->defer.cb = conn_free;
	wf_loop_defer(&w->loop, &c->defer);
}

/* Read from the downstream only while there is somewhere for the bytes to go: a new head,
 * the upstream (below its watermark), or a bounded queue of pipelined requests. */
static uint32_t read_limit(const struct hconn *c)
{
	const struct hstream *st = c->st;
	if (c->closing)
		return 0;
	if (!st)
		return c->l->hcm->max_request_headers_kb * 1024 + 1;
	if (!st->req_done)
		return up_queued(st) >= st->up_wm ? 0 : st->down_wm;
	return 16 * 1024;
}

void hcm_conn_close(struct hconn *c)
{
	conn_close(c);
}

void hcm_conn_update(struct hconn *c)
{
	conn_update(c);
}

static void conn_update(struct hconn *c)
{
	if (c->dead)
		return;
	if (c->h2) {
		/* HTTP/2: always read (as Envoy): flow control bounds what a client may send, and
		 * the flood limits what one that does not read can make the session queue */
		c->s.want = !c->closing || c->h2_failed ? EPOLLIN | EPOLLRDHUP : 0;
		wf_sio_update(LOOP(c), &c->s);
		return;
	}
	uint32_t lim = read_limit(c);
	c->s.want = lim && wf_buf_len(&c->s.rb) < lim ? EPOLLIN | EPOLLRDHUP : 0;
	wf_sio_update(LOOP(c), &c->s);
}

/* Drive the connection: parse/start streams, feed request bodies. */
static void conn_process(struct hconn *c)
{
	if (c->h2) {
		hcm_h2_process(c);
		return;
	}
	conn_process_(c);
	conn_update(c);
}

/* A keep-alive connection moves to the newest config between streams, if its listener (same
 * address, still an HTTP connection manager) is in it; otherwise it stays on its old one.
 * Stats are registered by name, so the gauges move with the connection. */
static void adopt_snapshot(struct hconn *c)
{
	struct wf_snapshot *s = c->w->snap;
	for (uint32_t i = 0; i < s->n_listeners; i++) {
		const struct wf_listener *l = &s->listeners[i];
		if (l->kind != WF_NF_HCM || !wf_addr_eq(&l->addr, &c->l->addr))
			continue;
		struct wf_snapshot *old = c->snap;
		c->snap = s;
		wf_worker_hold(c->w, s);
		c->l = l;
		wf_worker_release(c->w, old);
		return;
	}
}

void hcm_conn_refresh(struct hconn *c)
{
	wf_worker_refresh(c->w);
	if (c->snap != c->w->snap)
		adopt_snapshot(c);
}

static void conn_process_(struct hconn *c)
{
	while (!c->dead && !c->closing) {
		if (!c->st) {
			/* new stream: adopt the newest config first */
			hcm_conn_refresh(c);
			if (!c->requests && c->l->hcm->codec != WF_CODEC_HTTP1) {
				/* HTTP/2: ALPN said so on TLS, or the client's preface (prior knowledge) */
				int h2 = c->l->hcm->codec == WF_CODEC_HTTP2 ? 1 : hcm_h2_sniff(c);
				if (h2 < 0)
					return;
				if (h2) {
					hcm_h2_start(c);
					return;
				}
			}
			int r = start_stream(c);
			if (r <= 0)
				return;
			continue;
		}
		struct hstream *st = c->st;
		if (st->wait_body) {
			route_continue(st);
			if (c->dead || c->st != st || st->wait_body)
				return;
			continue;
		}
		if (!st->req_done) {
			uint32_t before = wf_buf_len(&c->s.rb);
			up_send_body(st);
			if (c->dead || c->st != st)
				continue;
			if (wf_buf_len(&c->s.rb) == before || !wf_buf_len(&c->s.rb))
				return;
			continue;
		}
		return;
	}
}

static void on_conn_timer(struct wf_loop *loop, struct wf_timer *t)
{
	struct hconn *c = t->data;
	const struct wf_hcm_cfg *cfg = c->l->hcm;
	if (c->h2) {
		hcm_h2_timer(c);
		return;
	}
	if (c->head_started && cfg->request_headers_timeout_ms) {
		/* request_headers_timeout: a slow sender gets Envoy's 408 and the connection closes */
		wf_stat_inc(cfg->st.rq_header_timeout);
		bad_request_flag(c, 408, "request header timeout", 0);
		return;
	}
	if (c->head_started) {
		/* As in Envoy, a request exists from its first byte: stream_idle_timeout applies. */
		wf_stat_inc(cfg->st.rq_idle_timeout);
		bad_request(c, 408, "stream timeout");
		return;
	}
	wf_stat_inc(cfg->st.cx_idle_timeout);
	conn_close(c);
}

static void on_conn_io(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	struct hconn *c = io->data;
	if (c->dead)
		return;
	if (c->h2) {
		hcm_h2_io(c, ev);
		return;
	}
	if (c->st && c->st->tunnel) {
		tunnel_run(c->st);
		return;
	}
	if (ev & EPOLLOUT) {
		int r = wf_sio_flush(loop, POOL(c), &c->s);
		if (r < 0) {
			conn_close(c);
			return;
		}
		stream_touch(c->st);
		if (r > 0) {
			if (c->closing) {
				conn_close(c);
				return;
			}
			/* room downstream: let the upstream talk again, starting with what it already
			 * sent and we hold */
			if (c->st && (c->st->u || c->st->us.conn)) {
				hcm_up_resume(c->st);
				if (c->dead)
					return;
			}
		}
	}
	if (c->closing) {
		if (ev & (EPOLLHUP | EPOLLERR))
			conn_close(c);
		return;
	}
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		uint32_t max = read_limit(c);
		int r = max ? wf_sio_read(POOL(c), &c->s, max) : 0;
		if (r > 0)
			stream_touch(c->st);
		if (r < 0) {
			/* EOF or error: before a request it is a clean close; during one, DC */
			conn_close(c);
			return;
		}
		conn_process(c);
	}
}

void wf_hcm_accept(struct wf_worker *w, struct wf_snapshot *snap, const struct wf_listener *l, int fd)
{
	struct hconn *c = calloc(1, sizeof(*c));
	c->w = w;
	c->snap = snap;
	wf_worker_hold(w, c->snap);
	c->l = l;
	c->s.io.fd = fd;
	c->s.io.cb = on_conn_io;
	c->s.io.data = c;
	c->t.cb = on_conn_timer;
	c->t.data = c;
	c->opened_ms = wf_loop_now(&w->loop);
	wf_sock_nodelay(fd);
	struct wf_addr a;
	if (wf_sock_peer(fd, &a) == 0)
		wf_addr_str(&a, c->remote, sizeof(c->remote));
	if (wf_sock_local(fd, &a) == 0)
		wf_addr_str(&a, c->local, sizeof(c->local));
	c->link.kind = WF_NF_HCM;
	wf_conn_link_add(w, &c->link);
	c->codec = &h1_codec;
	const struct wf_hcm_cfg *cfg = c->l->hcm;

	wf_stat_inc(cfg->st.cx_total);
	wf_stat_inc(cfg->st.cx_active);
	wf_stat_inc(c->l->st_cx_total);
	wf_stat_inc(c->l->st_cx_active);
	/* TLS: the handshake runs within the first reads; the idle timeout bounds it */
	if (c->l->tls && wf_tls_attach(&c->s, c->l->tls) < 0) {
		conn_close(c);
		return;
	}
	conn_update(c);
	wf_timer_set(&w->loop, &c->t, cfg->idle_timeout_ms);
}

void wf_hcm_thread_exit(void)
{
	wf_shadow_thread_exit();
	wf_h2_thread_exit();
	while (free_streams) {
		struct hstream *st = free_streams;
		free_streams = st->next_free;
		free(st);
	}
	n_free_streams = 0;
	free(tls_out.p);
	tls_out = (struct out){0};
	free(tls_hl.h);
	free(tls_hl.dead);
	tls_hl = (struct wf_hlist){0};
}

void wf_hcm_drain_all(struct wf_worker *w)
{
	struct wf_conn_link *l = w->conns.next;
	while (l != &w->conns) {
		struct wf_conn_link *next = l->next;
		struct hconn *c = (struct hconn *)((char *)l - offsetof(struct hconn, link));
		if (l->kind == WF_NF_HCM && c->h2) {
			hcm_h2_drain(c);
		} else if (l->kind == WF_NF_HCM) {
			if (!c->st && !wf_buf_len(&c->s.rb))
				conn_close(c);
			else if (c->st)
				c->st->keep_alive = 0;
		}
		l = next;
	}
}
