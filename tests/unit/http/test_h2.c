/* Unit tests for src/http/h2.c: a client and a server codec talking in memory (requests,
 * responses, bodies, trailers, flow control and back-pressure, GOAWAY), and the abuse limits
 * driven by hand-built frames: rapid reset, CONTINUATION flood, HPACK bomb, PING flood, empty
 * frames, too many concurrent streams. */
#include "test.h"

#include "http/h2.h"
#include "http/h2_fields.h"

#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

/* ---- a recording endpoint -------------------------------------------------------------------- */

struct ev {
	int headers, trailers, ends, closed, goaways;
	uint32_t last_close_code;
	int32_t last_stream;
	char status[8], path[64], method[16], custom[64], trailer[64];
	size_t body;
	int consume;                       /* acknowledge received DATA at once */
	int reset_at_end;                  /* reset each stream when its DATA ends (as a pool detaching) */
	char *capture;                     /* DATA received, in order (when set) */
	size_t captured, capture_max;
};

static struct wf_pool pool;

static void copy_hdr(const struct wf_hdr *h, uint32_t n, const char *name, char *out, size_t cap)
{
	for (uint32_t i = 0; i < n; i++)
		if (h[i].name_len == strlen(name) && !memcmp(h[i].name, name, h[i].name_len)) {
			size_t k = h[i].value_len < cap - 1 ? h[i].value_len : cap - 1;
			memcpy(out, h[i].value, k);
			out[k] = 0;
		}
}


static int on_headers(void *ctx, int32_t id, const struct wf_hdr *h, uint32_t n, int end, int trailers)
{
	struct ev *e = ctx;
	e->last_stream = id;
	if (trailers) {
		e->trailers++;
		copy_hdr(h, n, "grpc-status", e->trailer, sizeof(e->trailer));
	} else {
		e->headers++;
		copy_hdr(h, n, ":status", e->status, sizeof(e->status));
		copy_hdr(h, n, ":path", e->path, sizeof(e->path));
		copy_hdr(h, n, ":method", e->method, sizeof(e->method));
		copy_hdr(h, n, "x-custom", e->custom, sizeof(e->custom));
	}
	e->ends += end;
	return 0;
}

static struct wf_h2 *cur_consumer;

static int on_data(void *ctx, int32_t id, const uint8_t *p, size_t n, int end)
{
	struct ev *e = ctx;
	if (e->capture && n && e->captured + n <= e->capture_max) {
		memcpy(e->capture + e->captured, p, n);
		e->captured += n;
	}
	e->body += n;
	e->ends += end;
	if (e->consume && n && cur_consumer)
		wf_h2_consume(cur_consumer, id, n);
	if (end && e->reset_at_end && cur_consumer)
		wf_h2_reset(cur_consumer, id, 8 /* CANCEL */);
	return 0;
}

static void on_closed(void *ctx, int32_t id, uint32_t code)
{
	struct ev *e = ctx;
	e->closed++;
	e->last_close_code = code;
}

static void on_goaway(void *ctx, int32_t last, uint32_t code)
{
	struct ev *e = ctx;
	e->goaways++;
	e->last_close_code = code;
}

static const struct wf_h2_ops ops = {on_headers, on_data, on_closed, on_goaway, NULL};

/* Move bytes both ways until neither side has anything to send. */
static void pump(struct wf_h2 *c, struct ev *ce, struct wf_h2 *s, struct ev *se)
{
	for (int round = 0; round < 1000; round++) {
		const uint8_t *p;
		size_t n1 = wf_h2_send_pending(c, &p);
		if (n1) {
			cur_consumer = s;
			wf_h2_recv(s, p, n1);
			wf_h2_sent(c, n1);
		}
		size_t n2 = wf_h2_send_pending(s, &p);
		if (n2) {
			cur_consumer = c;
			wf_h2_recv(c, p, n2);
			wf_h2_sent(s, n2);
		}
		if (!n1 && !n2)
			return;
	}
	(void)ce;
	(void)se;
}

#define H(n, v) {n, v, sizeof(n) - 1, sizeof(v) - 1}

static const struct wf_hdr GET[] = {H(":method", "GET"), H(":scheme", "http"), H(":authority", "example.test"),
                                    H(":path", "/hello"), H("x-custom", "yes")};
static const struct wf_hdr POST[] = {H(":method", "POST"), H(":scheme", "http"), H(":authority", "example.test"),
                                     H(":path", "/upload")};
static const struct wf_hdr OK200[] = {H(":status", "200"), H("content-type", "text/plain")};
static const struct wf_hdr TRAILERS[] = {H("grpc-status", "0")};

static void pair(struct wf_h2 **c, struct ev *ce, struct wf_h2 **s, struct ev *se, const struct wf_h2_limits *sl)
{
	struct wf_h2_limits l;
	wf_h2_limits_default(&l);
	*c = wf_h2_new(0, &l, &ops, ce, &pool);
	*s = wf_h2_new(1, sl ? sl : &l, &ops, se, &pool);
}

TEST(request_and_response)
{
	struct ev ce = {.consume = 1}, se = {.consume = 1};
	struct wf_h2 *c, *s;
	pair(&c, &ce, &s, &se, NULL);
	int32_t id = wf_h2_submit_request(c, GET, 5, 1);
	CHECK(id == 1);
	pump(c, &ce, s, &se);
	CHECK_EQ(se.headers, 1);
	CHECK(!strcmp(se.method, "GET") && !strcmp(se.path, "/hello") && !strcmp(se.custom, "yes"));
	CHECK_EQ(se.ends, 1);
	CHECK_EQ(wf_h2_submit_headers(s, id, OK200, 2, 0), 0);
	CHECK_EQ(wf_h2_send_data(s, id, "hello", 5, 1), 0);
	pump(c, &ce, s, &se);
	CHECK_EQ(ce.headers, 1);
	CHECK(!strcmp(ce.status, "200"));
	CHECK_EQ(ce.body, 5);
	CHECK_EQ(ce.ends, 1);
	CHECK_EQ(ce.closed, 1);
	CHECK_EQ(se.closed, 1);
	CHECK_EQ(ce.last_close_code, 0);
	CHECK_EQ(wf_h2_streams(s), 0);
	wf_h2_free(c);
	wf_h2_free(s);
}

TEST(bodies_both_ways_and_trailers)
{
	struct ev ce = {.consume = 1}, se = {.consume = 1};
	struct wf_h2 *c, *s;
	pair(&c, &ce, &s, &se, NULL);
	int32_t id = wf_h2_submit_request(c, POST, 4, 0);
	static char big[300000];
	memset(big, 'x', sizeof(big));
	CHECK_EQ(wf_h2_send_data(c, id, big, 100000, 0), 0);
	pump(c, &ce, s, &se);
	CHECK_EQ(wf_h2_send_data(c, id, big, 200000, 1), 0);
	pump(c, &ce, s, &se);
	CHECK_EQ(se.body, 300000);
	CHECK_EQ(se.ends, 1);
	CHECK_EQ(wf_h2_submit_headers(s, id, OK200, 2, 0), 0);
	CHECK_EQ(wf_h2_send_data(s, id, big, 70000, 0), 0);
	CHECK_EQ(wf_h2_submit_headers(s, id, TRAILERS, 1, 1), 0); /* after queued DATA */
	pump(c, &ce, s, &se);
	CHECK_EQ(ce.body, 70000);
	CHECK_EQ(ce.trailers, 1);
	CHECK(!strcmp(ce.trailer, "0"));
	CHECK_EQ(ce.ends, 1);
	CHECK_EQ(ce.closed, 1);
	wf_h2_free(c);
	wf_h2_free(s);
}

static int given_back;
static void give_back(void *arg) { given_back += *(int *)arg; }

TEST(lent_data_keeps_its_place_and_is_given_back_once_framed)
{
	static char got[200000], want[200000], big[150000];
	struct ev ce = {.consume = 1, .capture = got, .capture_max = sizeof(got)}, se = {.consume = 1};
	struct wf_h2 *c, *s;
	pair(&c, &ce, &s, &se, NULL);
	int32_t id = wf_h2_submit_request(c, GET, 5, 1);
	pump(c, &ce, s, &se);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	given_back = 0;
	int one = 1, ten = 10;
	CHECK_EQ(wf_h2_submit_headers(s, id, OK200, 2, 0), 0);
	CHECK_EQ(wf_h2_send_data(s, id, "head-", 5, 0), 0);
	CHECK_EQ(wf_h2_send_lent(s, id, big, sizeof(big), give_back, &one), 0);
	CHECK_EQ(wf_h2_send_data(s, id, "-mid-", 5, 0), 0);
	CHECK_EQ(wf_h2_send_lent(s, id, "tail", 4, give_back, &ten), 0);
	CHECK_EQ(wf_h2_stream_queued(s, id), 5 + sizeof(big) + 5 + 4); /* lent bytes count as queued */
	CHECK_EQ(wf_h2_send_data(s, id, "!", 1, 1), 0);
	CHECK_EQ(given_back, 0); /* still the caller's until framed */
	pump(c, &ce, s, &se);
	size_t n = 0;
	memcpy(want + n, "head-", 5), n += 5;
	memcpy(want + n, big, sizeof(big)), n += sizeof(big);
	memcpy(want + n, "-mid-tail!", 10), n += 10;
	CHECK_EQ(ce.captured, n);
	CHECK(!memcmp(got, want, n));
	CHECK_EQ(ce.ends, 1);
	CHECK_EQ(given_back, 11); /* each once */
	CHECK_EQ(wf_h2_send_lent(s, id, "x", 1, give_back, &one), -1); /* the stream is over */
	CHECK_EQ(given_back, 11);
	wf_h2_free(c);
	wf_h2_free(s);
}

TEST(lent_data_is_given_back_when_the_stream_or_connection_goes)
{
	struct ev ce = {.consume = 0}, se = {.consume = 1};
	struct wf_h2_limits l;
	wf_h2_limits_default(&l);
	l.initial_stream_window = 65535; /* the client takes 64 KB per stream until it consumes */
	struct wf_h2 *c = wf_h2_new(0, &l, &ops, &ce, &pool), *s = wf_h2_new(1, &l, &ops, &se, &pool);
	int32_t a = wf_h2_submit_request(c, GET, 5, 1), b = wf_h2_submit_request(c, GET, 5, 1);
	pump(c, &ce, s, &se);
	static char big[200000]; /* more than the client's window: some stays unframed */
	given_back = 0;
	int one = 1, ten = 10;
	CHECK_EQ(wf_h2_submit_headers(s, a, OK200, 2, 0), 0);
	CHECK_EQ(wf_h2_send_lent(s, a, big, sizeof(big), give_back, &one), 0);
	CHECK_EQ(wf_h2_submit_headers(s, b, OK200, 2, 0), 0);
	CHECK_EQ(wf_h2_send_lent(s, b, big, sizeof(big), give_back, &ten), 0);
	pump(c, &ce, s, &se);
	CHECK_EQ(given_back, 0); /* held by the windows */
	wf_h2_reset(s, a, 8 /* CANCEL */);
	pump(c, &ce, s, &se);
	CHECK_EQ(given_back, 1);
	wf_h2_free(s);           /* b's connection goes */
	CHECK_EQ(given_back, 11);
	wf_h2_free(c);
}

/* A client does not open more streams than the server's SETTINGS_MAX_CONCURRENT_STREAMS: the
 * others wait, in order, and open as streams end (the server never refuses one). */
TEST(client_streams_wait_for_the_servers_limit)
{
	struct ev ce = {.consume = 1}, se = {.consume = 1};
	struct wf_h2_limits sl;
	wf_h2_limits_default(&sl);
	sl.max_concurrent_streams = 2;
	struct wf_h2 *c, *s;
	pair(&c, &ce, &s, &se, &sl);
	pump(c, &ce, s, &se); /* the server's SETTINGS (limit 2) reach the client */
	CHECK_EQ(wf_h2_peer_max_streams(c), 2);
	int32_t ids[5];
	for (int i = 0; i < 5; i++)
		ids[i] = wf_h2_submit_request(c, GET, 5, 1);
	CHECK(ids[4] == 9);
	pump(c, &ce, s, &se);
	CHECK_EQ(se.headers, 2); /* streams 1 and 3 */
	CHECK_EQ(se.last_stream, 3);
	for (int round = 0; round < 3; round++) {
		int before = se.headers;
		for (int i = 0; i < 5; i++)
			if (wf_h2_owner(s, ids[i]) == NULL && wf_h2_submit_headers(s, ids[i], OK200, 2, 1) == 0)
				wf_h2_set_owner(s, ids[i], &se); /* answered */
		pump(c, &ce, s, &se);
		CHECK(se.headers > before || se.headers == 5);
	}
	CHECK_EQ(se.headers, 5);
	CHECK_EQ(ce.headers, 5);
	CHECK_EQ(ce.closed, 5);
	CHECK_EQ(se.goaways + ce.goaways, 0);
	CHECK_EQ(wf_h2_error(s), WF_H2_OK);
	wf_h2_free(c);
	wf_h2_free(s);
}

static int sent_frames(struct wf_h2 *s, int type, int code);

/* A stream ended both ways is closed: resetting it then (an owner letting go of a finished
 * stream) sends nothing, and the peer sees a clean close. */
TEST(reset_after_both_ends_sends_nothing)
{
	struct ev ce = {.consume = 1, .reset_at_end = 1}, se = {.consume = 1};
	struct wf_h2 *c, *s;
	pair(&c, &ce, &s, &se, NULL);
	int32_t id = wf_h2_submit_request(c, GET, 5, 1);
	pump(c, &ce, s, &se);
	CHECK_EQ(wf_h2_submit_headers(s, id, OK200, 2, 0), 0);
	CHECK_EQ(wf_h2_send_data(s, id, "hello", 5, 1), 0);
	const uint8_t *p;
	size_t n = wf_h2_send_pending(s, &p); /* the response reaches the client, which resets at its end */
	cur_consumer = c;
	wf_h2_recv(c, p, n);
	wf_h2_sent(s, n);
	CHECK_EQ(ce.ends, 1);
	CHECK_EQ(sent_frames(c, NGHTTP2_RST_STREAM, -1), 0); /* nothing for the server */
	CHECK_EQ(ce.closed, 1);
	CHECK_EQ(ce.last_close_code, 8); /* the owner hears its own reset, as it asked */
	wf_h2_free(c);
	wf_h2_free(s);
}

TEST(informational_then_final_response)
{
	struct ev ce = {.consume = 1}, se = {.consume = 1};
	struct wf_h2 *c, *s;
	pair(&c, &ce, &s, &se, NULL);
	int32_t id = wf_h2_submit_request(c, GET, 5, 1);
	pump(c, &ce, s, &se);
	static const struct wf_hdr early[] = {H(":status", "103"), H("link", "</a.css>; rel=preload")};
	CHECK_EQ(wf_h2_submit_headers(s, id, early, 2, 0), 0);
	CHECK_EQ(wf_h2_submit_headers(s, id, OK200, 2, 1), 0); /* the final head, no body */
	pump(c, &ce, s, &se);
	CHECK_EQ(ce.headers, 2);                         /* 103, then 200: neither is a trailer */
	CHECK_EQ(ce.trailers, 0);
	CHECK(!strcmp(ce.status, "200"));
	CHECK_EQ(ce.ends, 1);
	CHECK_EQ(ce.closed, 1);
	wf_h2_free(c);
	wf_h2_free(s);
}

TEST(flow_control_holds_the_peer_until_consumed)
{
	struct ev ce = {.consume = 1}, se = {.consume = 0};
	struct wf_h2 *c, *s;
	struct wf_h2_limits sl;
	wf_h2_limits_default(&sl);
	sl.initial_stream_window = 65535;
	sl.initial_connection_window = 65535;
	pair(&c, &ce, &s, &se, &sl);
	int32_t id = wf_h2_submit_request(c, POST, 4, 0);
	static char big[1 << 20];
	CHECK_EQ(wf_h2_send_data(c, id, big, sizeof(big), 1), 0);
	pump(c, &ce, s, &se);
	CHECK(se.body <= 65535);                         /* the server's window */
	CHECK(wf_h2_stream_queued(c, id) >= sizeof(big) - 65535);
	size_t got = se.body;
	wf_h2_consume(s, id, got);                       /* passed on: the client may send more */
	pump(c, &ce, s, &se);
	CHECK(se.body > got);
	for (int i = 0; i < 100 && se.ends == 0; i++) {
		wf_h2_consume(s, id, se.body - got);
		got = se.body;
		pump(c, &ce, s, &se);
	}
	CHECK_EQ(se.body, sizeof(big));
	CHECK_EQ(se.ends, 1);
	wf_h2_free(c);
	wf_h2_free(s);
}

TEST(goaway_reaches_the_peer)
{
	struct ev ce = {.consume = 1}, se = {.consume = 1};
	struct wf_h2 *c, *s;
	pair(&c, &ce, &s, &se, NULL);
	wf_h2_submit_request(c, GET, 5, 1);
	pump(c, &ce, s, &se);
	wf_h2_goaway(s, 0);
	pump(c, &ce, s, &se);
	CHECK_EQ(ce.goaways, 1);
	CHECK_EQ(ce.last_close_code, 0);
	wf_h2_free(c);
	wf_h2_free(s);
}

/* ---- hand-built frames for the abuse cases ---------------------------------------------------- */

struct raw {
	uint8_t b[1 << 20];
	size_t n;
};

static void frame(struct raw *r, uint8_t type, uint8_t flags, uint32_t stream, const void *payload, size_t len)
{
	uint8_t *p = r->b + r->n;
	p[0] = (uint8_t)(len >> 16), p[1] = (uint8_t)(len >> 8), p[2] = (uint8_t)len;
	p[3] = type, p[4] = flags;
	p[5] = (uint8_t)(stream >> 24), p[6] = (uint8_t)(stream >> 16), p[7] = (uint8_t)(stream >> 8), p[8] = (uint8_t)stream;
	if (len)
		memcpy(p + 9, payload, len);
	r->n += 9 + len;
}

static void preface(struct raw *r)
{
	memcpy(r->b, NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
	r->n = NGHTTP2_CLIENT_MAGIC_LEN;
	frame(r, NGHTTP2_SETTINGS, 0, 0, NULL, 0);
}

/* An HPACK-encoded request head. */
static size_t block(nghttp2_hd_deflater *d, uint8_t *out, size_t cap, const struct wf_hdr *h, size_t n)
{
	nghttp2_nv nv[8];
	for (size_t i = 0; i < n; i++)
		nv[i] = (nghttp2_nv){(uint8_t *)h[i].name, (uint8_t *)h[i].value, h[i].name_len, h[i].value_len, 0};
	return (size_t)nghttp2_hd_deflate_hd(d, out, cap, nv, n);
}

static struct wf_h2 *server(struct ev *se, const struct wf_h2_limits *l)
{
	struct wf_h2_limits d;
	wf_h2_limits_default(&d);
	return wf_h2_new(1, l ? l : &d, &ops, se, &pool);
}

/* A server codec, and a hand-made client: an HPACK encoder and a buffer that already holds
 * the connection preface and an empty SETTINGS. */
struct rawpeer {
	struct ev se;
	struct wf_h2 *s;
	nghttp2_hd_deflater *d;
	struct raw r;
};

static struct rawpeer *raw_peer(const struct wf_h2_limits *l)
{
	static struct rawpeer p;
	memset(&p, 0, sizeof(p));
	p.s = server(&p.se, l);
	nghttp2_hd_deflate_new(&p.d, 4096);
	preface(&p.r);
	return &p;
}

static void raw_peer_free(struct rawpeer *p)
{
	nghttp2_hd_deflate_del(p->d);
	wf_h2_free(p->s);
}

/* Frame types in what the codec wants to send. */
static int sent_frames(struct wf_h2 *s, int type, int code)
{
	const uint8_t *p;
	size_t out = wf_h2_send_pending(s, &p);
	int k = 0;
	for (size_t off = 0; off + 9 <= out;) {
		size_t len = (size_t)p[off] << 16 | (size_t)p[off + 1] << 8 | p[off + 2];
		const uint8_t *pl = p + off + 9;
		int c = p[off + 3] == NGHTTP2_RST_STREAM && len >= 4 ? pl[3] : p[off + 3] == NGHTTP2_GOAWAY && len >= 8 ? pl[7] : -1;
		if (p[off + 3] == type && (code < 0 || c == code))
			k++;
		off += 9 + len;
	}
	wf_h2_sent(s, out);
	return k;
}

TEST(rapid_reset_closes_the_connection)
{
	struct rawpeer *rp = raw_peer(NULL);
	struct wf_h2 *s = rp->s;
	struct ev *se = &rp->se;
	nghttp2_hd_deflater *d = rp->d;
	struct raw *r = &rp->r;
	uint8_t hb[256], rst[4] = {0, 0, 0, NGHTTP2_CANCEL};
	int rc = 0;
	for (uint32_t i = 0; i < 300 && rc == 0; i++) {
		size_t n = block(d, hb, sizeof(hb), GET, 4);
		frame(r, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 2 * i + 1, hb, n);
		frame(r, NGHTTP2_RST_STREAM, 0, 2 * i + 1, rst, 4);
		rc = wf_h2_recv(s, r->b, r->n);
		r->n = 0;
		if (rc == 0)
			sent_frames(s, -1, -1); /* a reading peer: only the resets count */
	}
	CHECK_EQ(rc, -1);
	CHECK_EQ(wf_h2_error(s), WF_H2_RAPID_RESET);
	CHECK(se->closed >= 100 && se->closed <= 101);     /* stopped as soon as the rule held */
	CHECK_EQ(sent_frames(s, NGHTTP2_GOAWAY, NGHTTP2_ENHANCE_YOUR_CALM), 1);
	raw_peer_free(rp);
}

TEST(streams_answered_then_reset_are_not_an_attack)
{
	struct ev ce = {.consume = 1}, se = {.consume = 1};
	struct wf_h2 *c, *s;
	pair(&c, &ce, &s, &se, NULL);
	for (int i = 0; i < 300; i++) {
		int32_t id = wf_h2_submit_request(c, GET, 5, 1);
		pump(c, &ce, s, &se);
		wf_h2_submit_headers(s, id, OK200, 2, 1);
		pump(c, &ce, s, &se);
	}
	CHECK_EQ(wf_h2_error(s), WF_H2_OK);
	CHECK_EQ(se.closed, 300);
	wf_h2_free(c);
	wf_h2_free(s);
}

TEST(continuation_flood_closes_the_connection)
{
	struct rawpeer *rp = raw_peer(NULL);
	struct wf_h2 *s = rp->s;
	struct ev *se = &rp->se;
	nghttp2_hd_deflater *d = rp->d;
	struct raw *r = &rp->r;
	uint8_t hb[256];
	size_t n = block(d, hb, sizeof(hb), GET, 4);
	frame(r, NGHTTP2_HEADERS, 0, 1, hb, 1); /* no END_HEADERS: CONTINUATIONs follow */
	for (int i = 0; i < 50; i++)
		frame(r, NGHTTP2_CONTINUATION, 0, 1, hb + 1, i == 0 ? n - 1 : 0);
	CHECK_EQ(wf_h2_recv(s, r->b, r->n), -1);
	CHECK(wf_h2_error(s) == WF_H2_CONTINUATION_FLOOD || wf_h2_error(s) == WF_H2_EMPTY_FRAMES);
	CHECK_EQ(se->headers, 0);
	CHECK_EQ(sent_frames(s, NGHTTP2_GOAWAY, -1), 1); /* a GOAWAY is queued for the peer */
	raw_peer_free(rp);
}

TEST(hpack_bomb_resets_the_stream)
{
	struct ev ce = {.consume = 1}, se = {.consume = 1};
	struct wf_h2 *c, *s;
	pair(&c, &ce, &s, &se, NULL);
	static char huge[70000];
	memset(huge, 'a', sizeof(huge));
	struct wf_hdr h[5] = {H(":method", "GET"), H(":scheme", "http"), H(":authority", "x"), H(":path", "/"),
	                      {"x-big", huge, 5, sizeof(huge)}};
	wf_h2_submit_request(c, h, 5, 1);
	pump(c, &ce, s, &se);
	CHECK_EQ(se.headers, 0);                         /* never delivered */
	CHECK_EQ(ce.closed, 1);
	CHECK(ce.last_close_code != 0);                  /* reset */
	CHECK_EQ(wf_h2_error(s), WF_H2_OK);              /* one such stream is not fatal */
	int32_t id = wf_h2_submit_request(c, GET, 5, 1);
	pump(c, &ce, s, &se);
	CHECK_EQ(se.headers, 1);                         /* the connection serves on */
	CHECK(id == 3);
	wf_h2_free(c);
	wf_h2_free(s);
}

TEST(ping_flood_from_a_peer_that_does_not_read)
{
	struct rawpeer *rp = raw_peer(NULL);
	struct wf_h2 *s = rp->s;
	struct raw *r = &rp->r;
	uint8_t ping[8] = {0};
	for (int i = 0; i < 3000; i++)
		frame(r, NGHTTP2_PING, 0, 0, ping, 8);
	/* the peer sends PINGs and never reads our ACKs */
	CHECK_EQ(wf_h2_recv(s, r->b, r->n), -1);
	CHECK_EQ(wf_h2_error(s), WF_H2_CONTROL_FLOOD);
	raw_peer_free(rp);
}

TEST(empty_data_frames_close_the_connection)
{
	struct rawpeer *rp = raw_peer(NULL);
	struct wf_h2 *s = rp->s;
	nghttp2_hd_deflater *d = rp->d;
	struct raw *r = &rp->r;
	uint8_t hb[256];
	size_t n = block(d, hb, sizeof(hb), POST, 4);
	frame(r, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, hb, n);
	for (int i = 0; i < 10; i++)
		frame(r, NGHTTP2_DATA, 0, 1, NULL, 0);
	CHECK_EQ(wf_h2_recv(s, r->b, r->n), -1);
	CHECK_EQ(wf_h2_error(s), WF_H2_EMPTY_FRAMES);
	raw_peer_free(rp);
}

/* Malformed requests (RFC 9113 §8.1.1) reset their own stream with PROTOCOL_ERROR and never
 * reach the owner; the connection goes on. */
/* The field checker on one trailer field whose name (is_name) or value is a filler with byte b
 * at position at: every length 1-24 (the checker takes words, overlapping ones and single
 * bytes), every byte value at every position, against want(b, at, n). 0, or -1 (and which one
 * printed) at the first difference. */
static int every_byte_at_every_position(int is_name, int (*want)(int b, uint32_t at, uint32_t n))
{
	char s[24];
	struct wf_h2_msg m;
	for (uint32_t n = 1; n <= sizeof(s); n++) {
		for (uint32_t at = 0; at < n; at++) {
			for (int b = 0; b < 256; b++) {
				memset(s, at % 2 ? 'z' : '-', n); /* the two kinds a name's fast path takes */
				s[at] = (char)b;
				struct wf_hdr f = is_name ? (struct wf_hdr){s, "v", n, 1} : (struct wf_hdr){"x-v", s, 3, n};
				if ((wf_h2_check_fields(&f, NULL, 1, WF_H2B_TRAILERS, 0, &m) == 0) != want(b, at, n)) {
					printf("  %s of length %u, byte 0x%02x at %u\n", is_name ? "name" : "value", n, b, at);
					return -1;
				}
			}
		}
	}
	return 0;
}

/* Values (RFC 9113 §8.2.1): HTAB, SP, visible ASCII and obs-text, no SP or HTAB at either end. */
static int value_ok(int b, uint32_t at, uint32_t n)
{
	if ((at == 0 || at == n - 1) && (b == ' ' || b == '\t'))
		return 0;
	return b == '\t' || (b >= 0x20 && b != 0x7f);
}

/* Names: tokens (RFC 9110 §5.6.2) in lower case. */
static int name_ok(int b, uint32_t at, uint32_t n)
{
	return (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || (b && strchr("!#$%&'*+-.^_`|~", b));
}

TEST(field_values_every_byte_at_every_position)
{
	CHECK_EQ(every_byte_at_every_position(0, value_ok), 0);
	struct wf_h2_msg m;
	struct wf_hdr empty = {"x-v", "", 3, 0};
	CHECK_EQ(wf_h2_check_fields(&empty, NULL, 1, WF_H2B_TRAILERS, 0, &m), 0);
}

TEST(field_names_every_byte_at_every_position)
{
	CHECK_EQ(every_byte_at_every_position(1, name_ok), 0);
}

TEST(malformed_requests_reset_their_stream)
{
	struct rawpeer *rp = raw_peer(NULL);
	struct wf_h2 *s = rp->s;
	struct raw *r = &rp->r;
	uint8_t hb[256];
	static const struct wf_hdr upper[] = {H(":method", "GET"), H(":scheme", "http"), H(":path", "/"), H("X-Upper", "1")};
	static const struct wf_hdr conn[] = {H(":method", "GET"), H(":scheme", "http"), H(":path", "/"), H("connection", "close")};
	static const struct wf_hdr te[] = {H(":method", "GET"), H(":scheme", "http"), H(":path", "/"), H("te", "gzip")};
	static const struct wf_hdr nopath[] = {H(":method", "GET"), H(":scheme", "http"), H(":authority", "a")};
	static const struct wf_hdr del[] = {H(":method", "GET"), H(":scheme", "http"), H(":path", "/"), H("x-v", "abcd\x7f")};
	static const struct wf_hdr cl[] = {H(":method", "POST"), H(":scheme", "http"), H(":path", "/"), H("content-length", "5")};
	/* a pseudo-header after a regular field, and a connection-specific field, each by a static
	 * table name (HPACK's static names skip the byte check, not these) */
	static const struct wf_hdr late[] = {H(":method", "GET"), H(":scheme", "http"), H(":path", "/"), H("x-a", "1"), H(":authority", "late")};
	static const struct wf_hdr tenc[] = {H(":method", "GET"), H(":scheme", "http"), H(":path", "/"), H("transfer-encoding", "chunked")};
	const struct wf_hdr *bad[] = {upper, conn, te, nopath, del, late, tenc};
	size_t nbad[] = {4, 4, 4, 3, 4, 5, 4};
	for (uint32_t i = 0; i < 7; i++) {
		size_t n = block(rp->d, hb, sizeof(hb), bad[i], nbad[i]);
		frame(r, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 2 * i + 1, hb, n);
	}
	size_t n = block(rp->d, hb, sizeof(hb), cl, 4); /* declares 5 bytes, sends 3 */
	frame(r, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 15, hb, n);
	frame(r, NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, 15, "abc", 3);
	n = block(rp->d, hb, sizeof(hb), GET, 5); /* and a good one after them */
	frame(r, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 17, hb, n);
	sent_frames(s, -1, -1); /* the server's SETTINGS */
	CHECK_EQ(wf_h2_recv(s, r->b, r->n), 0);
	CHECK_EQ(rp->se.headers, 2);   /* the POST's head (its body is short), and the good GET */
	CHECK_EQ(rp->se.last_stream, 17);
	CHECK_EQ(sent_frames(s, NGHTTP2_RST_STREAM, NGHTTP2_PROTOCOL_ERROR), 8);
	CHECK_EQ(wf_h2_error(s), WF_H2_OK);
	raw_peer_free(rp);
}

TEST(streams_over_the_limit_close_the_connection)
{
	struct wf_h2_limits l;
	wf_h2_limits_default(&l);
	l.max_concurrent_streams = 2;
	struct rawpeer *rp = raw_peer(&l);
	struct wf_h2 *s = rp->s;
	struct ev *se = &rp->se;
	nghttp2_hd_deflater *d = rp->d;
	struct raw *r = &rp->r;
	se->consume = 1;
	frame(r, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0, NULL, 0); /* the server's limit (2) is known */
	uint8_t hb[256];
	for (uint32_t i = 0; i < 3; i++) {
		size_t n = block(d, hb, sizeof(hb), GET, 4);
		frame(r, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 2 * i + 1, hb, n);
	}
	sent_frames(s, -1, -1); /* the server's SETTINGS went out first */
	wf_h2_recv(s, r->b, r->n);
	CHECK_EQ(se->headers, 2);                         /* the third is never delivered */
	/* a peer that ignores an acknowledged limit breaks the protocol: GOAWAY, and done */
	CHECK_EQ(sent_frames(s, NGHTTP2_GOAWAY, NGHTTP2_PROTOCOL_ERROR), 1);
	CHECK(wf_h2_done(s));
	raw_peer_free(rp);
}

int main(void)
{
	wf_pool_init(&pool, 64);
	static const struct wf_t_case cases[] = {
	    T(request_and_response), T(bodies_both_ways_and_trailers),
	    T(lent_data_keeps_its_place_and_is_given_back_once_framed), T(lent_data_is_given_back_when_the_stream_or_connection_goes), T(flow_control_holds_the_peer_until_consumed),
	    T(client_streams_wait_for_the_servers_limit), T(reset_after_both_ends_sends_nothing),
	    T(informational_then_final_response), T(goaway_reaches_the_peer), T(rapid_reset_closes_the_connection),
	    T(streams_answered_then_reset_are_not_an_attack), T(continuation_flood_closes_the_connection),
	    T(hpack_bomb_resets_the_stream), T(ping_flood_from_a_peer_that_does_not_read),
	    T(empty_data_frames_close_the_connection), T(malformed_requests_reset_their_stream), T(streams_over_the_limit_close_the_connection),
	    T(field_values_every_byte_at_every_position), T(field_names_every_byte_at_every_position)};
	int r = wf_t_run(cases, sizeof(cases) / sizeof(cases[0]), "h2");
	wf_pool_fini(&pool);
	return r;
}
