/* libFuzzer target for the HTTP/1 parser (src/http/h1.c).
 *
 * The same input is read as a request head, a response head and a chunked body, and the
 * answers are checked against the contract in h1.h:
 *  - a head parse returns 0, the head length (<= len) or one of its documented statuses,
 *    with a reason exactly when it refuses;
 *  - every pointer handed back lies inside the head (or is one of the static paths);
 *  - no more headers than the limit;
 *  - the parse is stateless and prefix-consistent: a complete head parses the same on its
 *    own, each shorter prefix of it is incomplete, and a refused prefix stays refused;
 *  - the chunked decoder gives spans inside its input, consumes all of it when it asks for
 *    more, and decodes the same body whether the input comes at once, in two pieces, or
 *    byte by byte.
 * Prefixes are parsed from exact-size heap copies so that AddressSanitizer sees any read
 * past `len`. */
#include "http/h1.h"
#include "ensure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HDRS 100

static const struct wf_h1_limits limits[] = {
	{.max_head_bytes = 60 * 1024, .max_headers = MAX_HDRS},
	{.max_head_bytes = 200, .max_headers = 4},
};

static int inside(const char *p, size_t n, const char *lo, size_t len)
{
	return p != NULL && p >= lo && n <= len && p - lo <= (ptrdiff_t)(len - n);
}

static char *copy(const uint8_t *data, size_t n)
{
	char *b = malloc(n ? n : 1);
	ENSURE(b != NULL);
	memcpy(b, data, n);
	return b;
}

static void check_headers(const struct wf_hdr *h, uint32_t n, const char *buf, size_t len,
                          const struct wf_h1_limits *lim)
{
	ENSURE(n <= lim->max_headers);
	for (uint32_t i = 0; i < n; i++) {
		ENSURE(h[i].name_len > 0);
		ENSURE(inside(h[i].name, h[i].name_len, buf, len));
		ENSURE(inside(h[i].value, h[i].value_len, buf, len));
		ENSURE(h[i].value_len == 0 || (h[i].value[0] != ' ' && h[i].value[0] != '\t'));
		(void)WF_HDR_IS(&h[i], "content-length");
	}
}

static int parse_req(const char *buf, size_t len, const struct wf_h1_limits *lim,
                     struct wf_h1_req *r, struct wf_hdr *hdrs)
{
	r->headers = hdrs;
	int rc = wf_h1_parse_request(buf, len, lim, r);
	ENSURE(rc == 0 || rc == -400 || rc == -431 || (rc > 0 && (size_t)rc <= len));
	ENSURE((rc < 0) == (r->err != NULL));
	ENSURE(rc <= 0 || rc <= (int)lim->max_head_bytes);
	return rc;
}

static void check_request(const uint8_t *data, size_t len, const struct wf_h1_limits *lim)
{
	static struct wf_hdr hdrs[MAX_HDRS];
	const char *buf = (const char *)data;
	struct wf_h1_req r;

	int rc = parse_req(buf, len, lim, &r, hdrs);
	if (rc > 0) {
		size_t n = (size_t)rc;
		ENSURE(inside(r.method, r.method_len, buf, n) && r.method_len > 0);
		ENSURE(inside(r.target, r.target_len, buf, n) && r.target_len > 0);
		ENSURE(r.minor <= 1);
		ENSURE(r.form <= WF_H1_ASTERISK);
		ENSURE(inside(r.path, r.path_len, buf, n) ||
		       (r.path_len == 1 && strcmp(r.path, "/") == 0) ||
		       (r.path_len == 0 && r.form == WF_H1_AUTHORITY));
		ENSURE(r.host == NULL ? r.minor == 0 : inside(r.host, r.host_len, buf, n));
		ENSURE(!(r.chunked && r.content_length >= 0));
		ENSURE(r.content_length >= -1);
		check_headers(r.headers, r.n_headers, buf, n, lim);
		ENSURE(buf[n - 2] == '\r' && buf[n - 1] == '\n');

		/* the head alone parses the same; each shorter prefix is incomplete */
		char *b = copy(data, n);
		struct wf_h1_req r2;
		static struct wf_hdr h2[MAX_HDRS];
		ENSURE(parse_req(b, n, lim, &r2, h2) == rc);
		ENSURE(r2.n_headers == r.n_headers && r2.content_length == r.content_length);
		ENSURE(r2.chunked == r.chunked && r2.form == r.form);
		for (size_t k = 0; k < n; k += 1 + k / 8)
			ENSURE(parse_req(b, k, lim, &r2, h2) == 0);
		ENSURE(parse_req(b, n - 1, lim, &r2, h2) == 0);
		free(b);
	} else if (len > 0) {
		/* errors are monotonic: a refused prefix means a refused whole */
		size_t k = len / 2;
		char *b = copy(data, k);
		struct wf_h1_req r2;
		static struct wf_hdr h2[MAX_HDRS];
		int rk = parse_req(b, k, lim, &r2, h2);
		ENSURE(rk <= 0);
		if (rk < 0)
			ENSURE(rc < 0);
		free(b);
	}
}

static int parse_resp(const char *buf, size_t len, const struct wf_h1_limits *lim,
                      struct wf_h1_resp *r, struct wf_hdr *hdrs)
{
	r->headers = hdrs;
	int rc = wf_h1_parse_response(buf, len, lim, r);
	ENSURE(rc == 0 || rc == -502 || (rc > 0 && (size_t)rc <= len));
	ENSURE((rc < 0) == (r->err != NULL));
	return rc;
}

static void check_response(const uint8_t *data, size_t len, const struct wf_h1_limits *lim)
{
	static struct wf_hdr hdrs[MAX_HDRS];
	const char *buf = (const char *)data;
	struct wf_h1_resp r;

	int rc = parse_resp(buf, len, lim, &r, hdrs);
	if (rc > 0) {
		size_t n = (size_t)rc;
		ENSURE(r.status >= 100 && r.status <= 999);
		ENSURE(r.minor <= 1);
		ENSURE(r.reason != NULL && (r.reason_len == 0 || inside(r.reason, r.reason_len, buf, n)));
		ENSURE(!(r.chunked && r.content_length >= 0));
		check_headers(r.headers, r.n_headers, buf, n, lim);
		(void)wf_h1_resp_has_body(r.status, data[0] & 1, data[0] & 2);

		char *b = copy(data, n);
		struct wf_h1_resp r2;
		static struct wf_hdr h2[MAX_HDRS];
		ENSURE(parse_resp(b, n, lim, &r2, h2) == rc);
		ENSURE(r2.status == r.status && r2.n_headers == r.n_headers);
		for (size_t k = 0; k < n; k += 1 + k / 8)
			ENSURE(parse_resp(b, k, lim, &r2, h2) == 0);
		free(b);
	}
}

struct decoded {
	int rc;          /* last decoder status */
	size_t consumed; /* total input consumed */
	size_t body_len;
	char *body;
};

/* Feeds in[0..len) as it would arrive: first `first` bytes, then `step` bytes at a time
 * (step 0: all the rest). Each call gets an exact-size copy of what is there and unused. */
static void decode(const uint8_t *in, size_t len, size_t first, size_t step, uint32_t max_trailer,
                   struct decoded *out)
{
	struct wf_h1_chunked c = {.max_trailer = max_trailer};
	size_t off = 0, avail = first < len ? first : len;

	out->rc = 0;
	out->body_len = 0;
	for (;;) {
		if (off == avail) {
			if (avail == len)
				break;
			avail = step && avail + step < len ? avail + step : len;
		}
		size_t give = avail - off;
		char *b = copy(in + off, give);
		const char *d;
		size_t dl, used;
		int rc = wf_h1_chunked_decode(&c, b, give, &used, &d, &dl);
		ENSURE(rc == 0 || rc == 1 || rc == 2 || rc == -400);
		ENSURE(used <= give);
		ENSURE(rc != 0 || used == give);
		ENSURE((rc < 0) == (c.err != NULL));
		if (rc == 1) {
			ENSURE(dl > 0 && inside(d, dl, b, used) && d + dl == b + used);
			memcpy(out->body + out->body_len, d, dl);
			out->body_len += dl;
		} else {
			ENSURE(d == NULL && dl == 0);
		}
		free(b);
		out->rc = rc;
		off += used;
		if (rc < 0 || rc == 2)
			break;
	}
	out->consumed = off;
}

static void check_chunked(const uint8_t *data, size_t len)
{
	struct decoded a, b, c;
	/* a small trailer bound, sometimes, so that the limit is reached */
	uint32_t max_trailer = len > 0 && (data[len - 1] & 1) ? 16 : 0;

	a.body = malloc(len + 1);
	b.body = malloc(len + 1);
	c.body = malloc(len + 1);
	ENSURE(a.body && b.body && c.body);

	decode(data, len, len, 0, max_trailer, &a);
	ENSURE(a.consumed <= len && a.body_len <= len);
	size_t split = len ? (data[0] * 257u + len) % len : 0;
	decode(data, len, split, 0, max_trailer, &b);
	decode(data, len, 0, 1, max_trailer, &c);

	const struct decoded *o[] = {&b, &c};
	for (int i = 0; i < 2; i++) {
		ENSURE((o[i]->rc < 0) == (a.rc < 0));
		if (a.rc < 0)
			continue;
		ENSURE((o[i]->rc == 2) == (a.rc == 2));
		ENSURE(o[i]->consumed == a.consumed);
		ENSURE(o[i]->body_len == a.body_len);
		ENSURE(memcmp(o[i]->body, a.body, a.body_len) == 0);
	}
	free(a.body);
	free(b.body);
	free(c.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
		check_request(data, size, &limits[i]);
		check_response(data, size, &limits[i]);
	}
	check_chunked(data, size);
	return 0;
}
