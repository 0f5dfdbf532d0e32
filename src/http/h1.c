/* Strict HTTP/1.x head parser and chunked decoder (RFC 9110, RFC 9112).
 *
 * A proxy and the server behind it must agree on where each message ends and on what it
 * says; where they can disagree, an attacker hides a second request inside the first
 * (request smuggling) or routes by one host while the server serves another. So every
 * construct that two implementations may read differently is refused, never repaired:
 *
 *  - Content-Length together with Transfer-Encoding (hops differ on which one wins);
 *  - a second Content-Length field, even an equal one, a list ("5, 5"), and any value that
 *    is not plain digits up to 2^62 (signs, inner spaces, empty);
 *  - Transfer-Encoding other than one field that is exactly "chunked" (a coding we do not
 *    decode leaves the length unknown; a second field or a list is how "chunked" is hidden);
 *  - Transfer-Encoding in an HTTP/1.0 message (RFC 9112 §6.1: faulty framing);
 *  - whitespace between a field name and its colon, obs-fold continuation lines, and a bare
 *    CR or bare LF where CRLF is due (each is a separator to some parsers and not to others);
 *  - NUL and other control characters in names, values and the target; non-ASCII bytes and
 *    '#' in the target (a fragment is never sent, RFC 9112 §3.2);
 *  - a missing (HTTP/1.1) or repeated Host, a Host that is not uri-host[:port] (userinfo
 *    included), an absolute-form authority that differs from Host (which one routes?);
 *  - any version but "HTTP/1.0" and "HTTP/1.1", and a request line that is not exactly
 *    method SP target SP version CRLF;
 *  - chunk sizes with a sign, "0x", whitespace, more than 16 digits or a value over 2^62;
 *    chunk extensions that are not ;token[=token/quoted-string]; anything but CRLF after
 *    chunk data; trailer fields that break the header-field rules above.
 *
 * Speed: the head parser keeps no state and is re-run over the grown buffer; it walks the
 * bytes once with table lookups, so a typical request head costs a few hundred cycles.
 */
#include "http/h1.h"

#include "http/grpc.h"

#include <limits.h>
#include <string.h>

/* Character classes, one bit each (RFC 9110 §5.6.2 tchar, §5.5 field-vchar, RFC 3986). */
enum {
	C_TCHAR = 0x01,  /* token character: field names, methods, extension names */
	C_VALUE = 0x02,  /* field value byte: HTAB, SP, VCHAR, obs-text */
	C_TARGET = 0x04, /* request-target byte: VCHAR except '#' */
	C_HOST = 0x08,   /* reg-name byte: unreserved, sub-delims ('%' escapes are checked apart) */
	C_HEX = 0x10,    /* hex digit */
	C_QDTEXT = 0x20, /* quoted-string text: HTAB, SP, VCHAR except '"' and '\\', obs-text */
};

static const uint8_t cls[256] = {
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x22, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x00 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x10 */
	0x22, 0x2f, 0x06, 0x23, 0x2f, 0x27, 0x2f, 0x2f, 0x2e, 0x2e, 0x2f, 0x2f, 0x2e, 0x2f, 0x2f, 0x26, /* 0x20 */
	0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x26, 0x2e, 0x26, 0x2e, 0x26, 0x26, /* 0x30 */
	0x26, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, /* 0x40 */
	0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x26, 0x06, 0x26, 0x27, 0x2f, /* 0x50 */
	0x27, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, /* 0x60 */
	0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x26, 0x27, 0x26, 0x2f, 0x00, /* 0x70 */
	0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, /* 0x80 */
	0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, /* 0x90 */
	0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, /* 0xa0 */
	0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, /* 0xb0 */
	0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, /* 0xc0 */
	0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, /* 0xd0 */
	0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, /* 0xe0 */
	0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, /* 0xf0 */
};

#define IS(c, k) (cls[(uint8_t)(c)] & (k))

#define MAX_LEADING_CRLF 4            /* empty lines skipped before a request line */
#define MAX_LENGTH ((int64_t)1 << 62) /* largest Content-Length or chunk size accepted */
#define MAX_CHUNK_DIGITS 16
#define MAX_CHUNK_LINE 4096           /* chunk size plus extensions */
#define DEFAULT_MAX_TRAILER (60 * 1024)

/* Internal results; the public functions turn them into HTTP statuses. */
enum { R_BAD = -1, R_TOO_BIG = -2 };

static inline unsigned lc(unsigned c)
{
	return c - 'A' < 26u ? c | 0x20 : c;
}

/* Case-insensitive equality of a[0..n) with b[0..n). */
static int ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (lc((uint8_t)a[i]) != lc((uint8_t)b[i]))
			return 0;
	return 1;
}

static inline int ieq_lit(const char *a, size_t n, const char *lower, size_t lower_len)
{
	return n == lower_len && wf_ieq_lower(a, lower, n);
}
#define IEQ(a, n, lit) ieq_lit((a), (n), lit, sizeof(lit) - 1)

/* First byte of p[0..end) not in class k (or end). Unrolled: this loop is where a head
 * parse spends its time. */
static inline const char *skip_class(const char *p, const char *end, uint8_t k)
{
	while (end - p >= 8) {
		if (!IS(p[0], k)) return p;
		if (!IS(p[1], k)) return p + 1;
		if (!IS(p[2], k)) return p + 2;
		if (!IS(p[3], k)) return p + 3;
		if (!IS(p[4], k)) return p + 4;
		if (!IS(p[5], k)) return p + 5;
		if (!IS(p[6], k)) return p + 6;
		if (!IS(p[7], k)) return p + 7;
		p += 8;
	}
	while (p < end && IS(*p, k))
		p++;
	return p;
}

/* The long runs of a head are field values and the target; on x86-64 (SSE2 is part of the
 * base ISA) they are scanned 16 bytes at a time, the rest and the tails by table. */
#if defined(__SSE2__)
#include <emmintrin.h>

/* First byte of p[0..end) that cannot be in a field value: a CTL other than HTAB, or DEL. */
static inline const char *skip_value(const char *p, const char *end)
{
	const __m128i c1f = _mm_set1_epi8(0x1f), tab = _mm_set1_epi8(0x09);
	const __m128i del = _mm_set1_epi8(0x7f);

	while (end - p >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
		__m128i bad = _mm_cmpeq_epi8(_mm_max_epu8(x, c1f), c1f); /* x <= 0x1f */
		bad = _mm_andnot_si128(_mm_cmpeq_epi8(x, tab), bad);
		bad = _mm_or_si128(bad, _mm_cmpeq_epi8(x, del));
		unsigned m = (unsigned)_mm_movemask_epi8(bad);
		if (m)
			return p + __builtin_ctz(m);
		p += 16;
	}
	return skip_class(p, end, C_VALUE);
}

/* First byte of p[0..end) that cannot be in a request-target: not VCHAR, or '#'. */
static inline const char *skip_target(const char *p, const char *end)
{
	const __m128i sp = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);
	const __m128i hash = _mm_set1_epi8('#');

	while (end - p >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
		__m128i bad = _mm_cmpeq_epi8(_mm_max_epu8(x, sp), sp);          /* x <= 0x20 */
		bad = _mm_or_si128(bad, _mm_cmpeq_epi8(_mm_min_epu8(x, del), del)); /* x >= 0x7f */
		bad = _mm_or_si128(bad, _mm_cmpeq_epi8(x, hash));
		unsigned m = (unsigned)_mm_movemask_epi8(bad);
		if (m)
			return p + __builtin_ctz(m);
		p += 16;
	}
	return skip_class(p, end, C_TARGET);
}
#else
#define skip_value(p, end) skip_class((p), (end), C_VALUE)
#define skip_target(p, end) skip_class((p), (end), C_TARGET)
#endif

/* uri-host [":" port] (RFC 3986 §3.2.2) without userinfo: a bracketed IPv6 literal, or a
 * reg-name / IPv4 of unreserved, sub-delims and well-formed pct-encoded bytes. The port,
 * when there is a colon, is 1 to 5 digits up to 65535; need_port makes it mandatory. */
static int host_valid(const char *s, size_t n, int need_port)
{
	size_t i = 0;

	if (n == 0)
		return 0;
	if (s[0] == '[') {
		for (i = 1; i < n && s[i] != ']'; i++)
			if (!IS(s[i], C_HEX) && s[i] != ':' && s[i] != '.')
				return 0;
		if (i == n || i == 1)
			return 0;
		i++;
	} else {
		for (;;) {
			i = (size_t)(skip_class(s + i, s + n, C_HOST) - s);
			if (i == n || s[i] != '%')
				break;
			if (i + 2 >= n || !IS(s[i + 1], C_HEX) || !IS(s[i + 2], C_HEX))
				return 0;
			i += 3;
		}
		if (i == 0)
			return 0;
	}
	if (i == n)
		return !need_port;
	if (s[i] != ':' || ++i == n || n - i > 5)
		return 0;
	unsigned port = 0;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		port = port * 10 + (unsigned)(s[i] - '0');
	}
	return port <= 65535;
}

/* What the field lines say, common to requests and responses. */
struct head {
	struct wf_hdr *hdrs;
	uint32_t max_hdrs, n_hdrs;
	int64_t content_length;
	const char *host;
	uint32_t host_len;
	uint8_t minor;
	unsigned is_req : 1;
	unsigned has_host : 1;
	unsigned has_te : 1;
	unsigned chunked : 1;
	unsigned conn_close : 1;
	unsigned conn_keep_alive : 1;
	unsigned conn_upgrade : 1;
	unsigned expect_continue : 1;
	unsigned grpc : 1;
	const char *err;
};

static int bad(struct head *h, const char *why)
{
	h->err = why;
	return R_BAD;
}

static int on_content_length(struct head *h, const char *v, uint32_t n)
{
	if (h->content_length >= 0)
		return bad(h, "several Content-Length fields");
	if (h->has_te)
		return bad(h, "Content-Length with Transfer-Encoding");
	if (n == 0)
		return bad(h, "empty Content-Length");
	int64_t cl = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return bad(h, "Content-Length is not a plain number");
		int d = v[i] - '0';
		if (cl > (MAX_LENGTH - d) / 10)
			return bad(h, "Content-Length too large");
		cl = cl * 10 + d;
	}
	h->content_length = cl;
	return 0;
}

static int on_transfer_encoding(struct head *h, const char *v, uint32_t n)
{
	if (h->has_te)
		return bad(h, "several Transfer-Encoding fields");
	h->has_te = 1;
	if (h->content_length >= 0)
		return bad(h, "Content-Length with Transfer-Encoding");
	if (h->minor == 0)
		return bad(h, "Transfer-Encoding in an HTTP/1.0 message");
	if (!IEQ(v, n, "chunked"))
		return bad(h, "Transfer-Encoding other than chunked");
	h->chunked = 1;
	return 0;
}

/* Connection: 1#token, empty list elements allowed (RFC 9110 §5.6.1). */
static int on_connection(struct head *h, const char *v, uint32_t n)
{
	const char *p = v, *end = v + n;

	while (p < end) {
		if (*p == ',' || *p == ' ' || *p == '\t') {
			p++;
			continue;
		}
		const char *t = p;
		p = skip_class(p, end, C_TCHAR);
		if (p == t)
			return bad(h, "invalid Connection option");
		size_t tn = (size_t)(p - t);
		if (IEQ(t, tn, "close"))
			h->conn_close = 1;
		else if (IEQ(t, tn, "keep-alive"))
			h->conn_keep_alive = 1;
		else if (IEQ(t, tn, "upgrade"))
			h->conn_upgrade = 1;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p < end && *p != ',')
			return bad(h, "invalid Connection option");
	}
	return 0;
}

static int on_host(struct head *h, const char *v, uint32_t n)
{
	if (h->has_host)
		return bad(h, "several Host fields");
	h->has_host = 1;
	/* An empty Host is what RFC 9110 §7.2 asks for when the target has no authority. */
	if (n != 0 && !host_valid(v, n, 0))
		return bad(h, "invalid Host");
	h->host = v;
	h->host_len = n;
	return 0;
}

/* The fields that change framing, routing or connection handling; dispatch on length
 * first so that most fields cost one switch. */
static int field_semantics(struct head *h, const struct wf_hdr *f)
{
	switch (f->name_len) {
	case 4:
		if (h->is_req && IEQ(f->name, 4, "host"))
			return on_host(h, f->value, f->value_len);
		break;
	case 6:
		/* RFC 9110 §10.1.1: a 100-continue from an HTTP/1.0 client is ignored. */
		if (h->is_req && h->minor == 1 && IEQ(f->name, 6, "expect") &&
		    IEQ(f->value, f->value_len, "100-continue"))
			h->expect_continue = 1;
		break;
	case 10:
		if (IEQ(f->name, 10, "connection"))
			return on_connection(h, f->value, f->value_len);
		break;
	case 12:
		if (h->is_req && IEQ(f->name, 12, "content-type"))
			h->grpc = wf_grpc_content_type(f->value, f->value_len);
		break;
	case 14:
		if (IEQ(f->name, 14, "content-length"))
			return on_content_length(h, f->value, f->value_len);
		break;
	case 17:
		if (IEQ(f->name, 17, "transfer-encoding"))
			return on_transfer_encoding(h, f->value, f->value_len);
		break;
	}
	return 0;
}

/* Parses field lines from *pp through the empty line that ends the head.
 * Returns 1 with *pp just past that empty line, 0 when `end` comes first, R_BAD or
 * R_TOO_BIG (more than h->max_hdrs fields). Errors are reported as soon as the bytes
 * seen prove them, so a prefix of a valid head is never refused. */
static int parse_fields(const char **pp, const char *end, struct head *h)
{
	const char *p = *pp;

	for (;;) {
		if (p == end)
			return 0;
		uint8_t c = (uint8_t)*p;
		if (c == '\r') {
			if (p + 1 == end)
				return 0;
			if (p[1] != '\n')
				return bad(h, "bare CR in header section");
			*pp = p + 2;
			return 1;
		}
		if (!IS(c, C_TCHAR)) {
			if (c == ' ' || c == '\t')
				return bad(h, "obs-fold (line starting with whitespace)");
			if (c == '\n')
				return bad(h, "bare LF in header section");
			if (c == ':')
				return bad(h, "empty header name");
			return bad(h, "invalid character in header name");
		}
		if (h->n_hdrs == h->max_hdrs) {
			h->err = "too many header fields";
			return R_TOO_BIG;
		}

		const char *name = p;
		p = skip_class(p + 1, end, C_TCHAR);
		if (p == end)
			return 0;
		if (*p != ':') {
			if (*p == ' ' || *p == '\t')
				return bad(h, "whitespace between header name and colon");
			return bad(h, "invalid character in header name");
		}
		uint32_t name_len = (uint32_t)(p - name);

		p++;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		const char *val = p;
		p = skip_value(p, end);
		if (p == end)
			return 0;
		if (*p != '\r')
			return bad(h, *p == '\n' ? "bare LF in header section"
			                         : "control character in header value");
		if (p + 1 == end)
			return 0;
		if (p[1] != '\n')
			return bad(h, "bare CR in header section");
		const char *vend = p;
		while (vend > val && (vend[-1] == ' ' || vend[-1] == '\t'))
			vend--;
		p += 2;

		struct wf_hdr *f = &h->hdrs[h->n_hdrs++];
		f->name = name;
		f->name_len = name_len;
		f->value = val;
		f->value_len = (uint32_t)(vend - val);
		int r = field_semantics(h, f);
		if (r < 0)
			return r;
	}
}

/* Expects the literal lit[0..n) at *pp. 1: matched and skipped; 0: input ended inside it;
 * -1: a byte differs. */
static int expect_lit(const char **pp, const char *end, const char *lit, size_t n)
{
	const char *p = *pp;
	for (size_t i = 0; i < n; i++, p++) {
		if (p == end)
			return 0;
		if (*p != lit[i])
			return -1;
	}
	*pp = p;
	return 1;
}

/* "HTTP/1.0" or "HTTP/1.1", exactly. Same 1/0/-1 convention as expect_lit. */
static int parse_version(const char **pp, const char *end, uint8_t *minor)
{
	int r = expect_lit(pp, end, "HTTP/1.", 7);
	if (r <= 0)
		return r;
	if (*pp == end)
		return 0;
	if (**pp != '0' && **pp != '1')
		return -1;
	*minor = (uint8_t)(**pp - '0');
	(*pp)++;
	return 1;
}

/* CRLF ending the start line at *pp: 1 skipped, 0 input ended, R_BAD with `bare_lf` or
 * `other` as the reason when something else is there. */
static int parse_crlf(const char **pp, const char *end, struct head *h, const char *bare_lf,
                      const char *other)
{
	const char *p = *pp;
	if (p == end)
		return 0;
	if (*p != '\r')
		return bad(h, *p == '\n' ? bare_lf : other);
	if (p + 1 == end)
		return 0;
	if (p[1] != '\n')
		return bad(h, "bare CR in start line");
	*pp = p + 2;
	return 1;
}

static int is_method(const struct wf_h1_req *req, const char *m, size_t n)
{
	return req->method_len == n && memcmp(req->method, m, n) == 0;
}

/* Works out the form of the request-target (RFC 9112 §3.2) and, for the forms that carry
 * one, the authority and the path. */
static int classify_target(struct wf_h1_req *req, struct head *h)
{
	const char *t = req->target;
	size_t n = req->target_len;

	if (is_method(req, "CONNECT", 7)) {
		if (!host_valid(t, n, 1))
			return bad(h, "CONNECT target is not host:port");
		req->form = WF_H1_AUTHORITY;
		req->host = t;
		req->host_len = (uint32_t)n;
		req->path = "";
		req->path_len = 0;
		return 0;
	}
	if (t[0] == '/') {
		req->form = WF_H1_ORIGIN;
		req->path = t;
		req->path_len = (uint32_t)n;
		return 0;
	}
	if (n == 1 && t[0] == '*') {
		if (!is_method(req, "OPTIONS", 7))
			return bad(h, "asterisk-form target on a method other than OPTIONS");
		req->form = WF_H1_ASTERISK;
		req->path = t;
		req->path_len = 1;
		return 0;
	}

	size_t i;
	if (n > 7 && IEQ(t, 7, "http://"))
		i = 7;
	else if (n > 8 && IEQ(t, 8, "https://"))
		i = 8;
	else
		return bad(h, "malformed request target");
	const char *a = t + i;
	while (i < n && t[i] != '/' && t[i] != '?')
		i++;
	size_t an = (size_t)(t + i - a);
	if (!host_valid(a, an, 0))
		return bad(h, "invalid authority in request target");
	/* "http://h?q" means path "/?q", which cannot be handed out without a copy. */
	if (i < n && t[i] == '?')
		return bad(h, "absolute-form target with a query but no path");
	req->form = WF_H1_ABSOLUTE;
	req->host = a;
	req->host_len = (uint32_t)an;
	if (i == n) {
		req->path = "/";
		req->path_len = 1;
	} else {
		req->path = t + i;
		req->path_len = (uint32_t)(n - i);
	}
	return 0;
}

static size_t head_cap(const struct wf_h1_limits *lim)
{
	return lim->max_head_bytes > INT_MAX ? INT_MAX : lim->max_head_bytes;
}

/* In the head parsers: input ended before the head did, so wait for more, unless the bytes
 * already here prove the head is over the limit; and a step that may need more input. */
#define INCOMPLETE()                                                                       \
	return len > cap ? (h->err = h->is_req ? "request head too large" : "response head too large", R_TOO_BIG) : 0
#define STEP(x)                                                                            \
	do {                                                                                   \
		if ((r = (x)) < 0)                                                                 \
			return r;                                                                      \
		if (r == 0)                                                                        \
			INCOMPLETE();                                                                  \
	} while (0)

static int parse_request(const char *buf, size_t len, const struct wf_h1_limits *lim,
                         struct wf_h1_req *req, struct head *h)
{
	size_t cap = head_cap(lim);
	const char *p = buf, *end = buf + (len < cap ? len : cap);
	int r;

	/* RFC 9112 §2.2: ignore at least one empty line before the request line. */
	for (int n = 0; p < end && (*p == '\r' || *p == '\n'); n++) {
		if (*p == '\n')
			return bad(h, "bare LF before request line");
		if (n == MAX_LEADING_CRLF)
			return bad(h, "too many empty lines before request line");
		if (p + 1 == end)
			INCOMPLETE();
		if (p[1] != '\n')
			return bad(h, "bare CR before request line");
		p += 2;
	}

	const char *m = p;
	p = skip_class(p, end, C_TCHAR);
	if (p == end)
		INCOMPLETE();
	if (*p != ' ' || p == m)
		return bad(h, p == m ? "malformed request line" : "invalid character in method");
	req->method = m;
	req->method_len = (uint32_t)(p - m);

	const char *t = ++p;
	p = skip_target(p, end);
	if (p == end)
		INCOMPLETE();
	if (*p != ' ') {
		uint8_t c = (uint8_t)*p;
		if (c == '\r' || c == '\n')
			return bad(h, "malformed request line");
		if (c >= 0x80)
			return bad(h, "non-ASCII byte in request target");
		if (c == '#')
			return bad(h, "fragment in request target");
		return bad(h, "control character in request target");
	}
	if (p == t)
		return bad(h, "malformed request line");
	req->target = t;
	req->target_len = (uint32_t)(p - t);
	p++;

	r = parse_version(&p, end, &req->minor);
	if (r < 0)
		return bad(h, "unsupported HTTP version");
	if (r == 0)
		INCOMPLETE();
	STEP(parse_crlf(&p, end, h, "bare LF in request line", "malformed request line"));
	h->minor = req->minor;

	if ((r = classify_target(req, h)) < 0)
		return r;

	STEP(parse_fields(&p, end, h));

	if (req->minor == 1 && !h->has_host)
		return bad(h, "missing Host");
	if (req->form == WF_H1_ABSOLUTE && h->has_host &&
	    !(h->host_len == req->host_len && ieq(h->host, req->host, h->host_len)))
		return bad(h, "Host differs from the authority of the target");
	if ((req->form == WF_H1_ORIGIN || req->form == WF_H1_ASTERISK) && h->has_host) {
		req->host = h->host;
		req->host_len = h->host_len;
	}
	return (int)(p - buf);
}

int wf_h1_parse_request(const char *buf, size_t len, const struct wf_h1_limits *lim,
                        struct wf_h1_req *req)
{
	struct wf_hdr *hdrs = req->headers;
	struct head h = {
		.hdrs = hdrs,
		.max_hdrs = lim->max_headers,
		.content_length = -1,
		.is_req = 1,
	};

	*req = (struct wf_h1_req){.headers = hdrs, .content_length = -1};

	int r = parse_request(buf, len, lim, req, &h);
	req->n_headers = h.n_hdrs;
	req->err = h.err;
	if (r <= 0)
		return r == R_TOO_BIG ? -431 : r == R_BAD ? -400 : 0;
	req->content_length = h.content_length;
	req->chunked = h.chunked;
	req->conn_close = h.conn_close;
	req->conn_keep_alive = h.conn_keep_alive;
	req->conn_upgrade = h.conn_upgrade;
	req->expect_continue = h.expect_continue;
	req->grpc = h.grpc;
	return r;
}

static int parse_response(const char *buf, size_t len, const struct wf_h1_limits *lim,
                          struct wf_h1_resp *resp, struct head *h)
{
	size_t cap = head_cap(lim);
	const char *p = buf, *end = buf + (len < cap ? len : cap);
	int r;


	r = parse_version(&p, end, &resp->minor);
	if (r < 0)
		return bad(h, "unsupported HTTP version");
	if (r == 0)
		INCOMPLETE();
	h->minor = resp->minor;
	r = expect_lit(&p, end, " ", 1);
	if (r < 0)
		return bad(h, "malformed status line");
	if (r == 0)
		INCOMPLETE();

	int status = 0;
	for (int i = 0; i < 3; i++, p++) {
		if (p == end)
			INCOMPLETE();
		if (*p < '0' || *p > '9' || (i == 0 && *p == '0'))
			return bad(h, "malformed status code");
		status = status * 10 + (*p - '0');
	}
	resp->status = status;

	/* RFC 9112 §4 wants SP before an empty reason; "HTTP/1.1 200\r\n" is common enough
	 * and unambiguous, so both are taken. */
	if (p == end)
		INCOMPLETE();
	if (*p == ' ') {
		const char *reason = ++p;
		p = skip_value(p, end);
		resp->reason = reason;
		resp->reason_len = (uint32_t)(p - reason);
	} else {
		resp->reason = p;
		resp->reason_len = 0;
	}
	STEP(parse_crlf(&p, end, h, "bare LF in status line", "malformed status line"));

	STEP(parse_fields(&p, end, h));
	return (int)(p - buf);
}

int wf_h1_parse_response(const char *buf, size_t len, const struct wf_h1_limits *lim,
                         struct wf_h1_resp *resp)
{
	struct wf_hdr *hdrs = resp->headers;
	struct head h = {
		.hdrs = hdrs,
		.max_hdrs = lim->max_headers,
		.content_length = -1,
	};

	*resp = (struct wf_h1_resp){.headers = hdrs, .content_length = -1};

	int r = parse_response(buf, len, lim, resp, &h);
	resp->n_headers = h.n_hdrs;
	resp->err = h.err;
	if (r <= 0)
		return r < 0 ? -502 : 0;
	resp->content_length = h.content_length;
	resp->chunked = h.chunked;
	resp->conn_close = h.conn_close;
	resp->conn_keep_alive = h.conn_keep_alive;
	resp->conn_upgrade = h.conn_upgrade;
	return r;
}

int wf_h1_resp_has_body(int status, int is_head, int is_connect)
{
	if (is_head || (status >= 100 && status < 200) || status == 204 || status == 304)
		return 0;
	if (is_connect && status >= 200 && status < 300)
		return 0;
	return 1;
}

const struct wf_hdr *wf_hdr_find(const struct wf_hdr *h, uint32_t n, const char *lower, size_t lower_len)
{
	for (uint32_t i = 0; i < n; i++)
		if (wf_hdr_name_is(&h[i], lower, lower_len))
			return &h[i];
	return NULL;
}

struct wf_hdr *wf_hdrs_dup(const struct wf_hdr *h, uint32_t n)
{
	size_t bytes = n * sizeof(struct wf_hdr);
	for (uint32_t i = 0; i < n; i++)
		bytes += h[i].name_len + h[i].value_len;
	struct wf_hdr *f = malloc(bytes ? bytes : 1);
	if (!f)
		return NULL;
	char *o = (char *)(f + n);
	for (uint32_t i = 0; i < n; i++) {
		memcpy(o, h[i].name, h[i].name_len);
		memcpy(o + h[i].name_len, h[i].value, h[i].value_len);
		f[i] = (struct wf_hdr){o, o + h[i].name_len, h[i].name_len, h[i].value_len};
		o += h[i].name_len + h[i].value_len;
	}
	return f;
}

/* Chunked decoder states. A zeroed struct is in CK_SIZE. */
enum {
	CK_SIZE = 0,       /* first hex digit of a chunk size */
	CK_SIZE_MORE,      /* further hex digits; line_len counts them */
	CK_EXT_NAME0,      /* after ';': first byte of an extension name */
	CK_EXT_NAME,
	CK_EXT_VAL0,       /* after '=': token or quoted-string */
	CK_EXT_TOKEN,
	CK_EXT_QUOTED,
	CK_EXT_QUOTED_ESC, /* after a backslash inside the quoted-string */
	CK_EXT_END,        /* after the closing quote */
	CK_SIZE_LF,        /* CR of the size line seen */
	CK_DATA,           /* `left` bytes of chunk data to come */
	CK_DATA_CR,
	CK_DATA_LF,
	CK_TRAILER,        /* start of a trailer field line or of the final empty line */
	CK_TR_NAME,
	CK_TR_VALUE,
	CK_TR_LF,
	CK_END_LF,         /* CR of the final empty line seen */
	CK_DONE,
	CK_FAILED,
};

static inline unsigned hexval(uint8_t ch)
{
	return ch <= '9' ? (unsigned)(ch - '0') : lc(ch) - 'a' + 10;
}

static int ck_fail(struct wf_h1_chunked *c, const char *why)
{
	c->state = CK_FAILED;
	c->err = why;
	return -400;
}

int wf_h1_chunked_decode(struct wf_h1_chunked *c, const char *in, size_t len, size_t *consumed,
                         const char **data, size_t *data_len)
{
	const char *p = in, *end = in + len;
	uint32_t max_trailer = c->max_trailer ? c->max_trailer : DEFAULT_MAX_TRAILER;
	int r;

	*data = NULL;
	*data_len = 0;
	if (c->state == CK_DONE) {
		*consumed = 0;
		return 2;
	}
	if (c->state == CK_FAILED) {
		*consumed = 0;
		return -400;
	}

	while (p < end) {
		if (c->state == CK_DATA) {
			size_t n = (size_t)(end - p);
			if (n > c->left)
				n = (size_t)c->left;
			*data = p;
			*data_len = n;
			c->left -= n;
			p += n;
			if (c->left == 0)
				c->state = CK_DATA_CR;
			*consumed = (size_t)(p - in);
			return 1;
		}

		uint8_t ch = (uint8_t)*p++;
		if (c->state >= CK_EXT_NAME0 && c->state <= CK_EXT_END &&
		    ++c->line_len > MAX_CHUNK_LINE) {
			r = ck_fail(c, "chunk extensions too long");
			goto out;
		}
		if (c->state >= CK_TRAILER && ++c->trailer_len > max_trailer) {
			r = ck_fail(c, "trailer section too large");
			goto out;
		}

		switch (c->state) {
		case CK_SIZE:
			if (!IS(ch, C_HEX)) {
				r = ck_fail(c, "chunk size is not a hex number");
				goto out;
			}
			c->left = hexval(ch);
			c->line_len = 1;
			c->state = CK_SIZE_MORE;
			break;
		case CK_SIZE_MORE:
			if (IS(ch, C_HEX)) {
				uint64_t d = hexval(ch);
				if (c->line_len == MAX_CHUNK_DIGITS) {
					r = ck_fail(c, "chunk size has more than 16 digits");
					goto out;
				}
				if (c->left > ((uint64_t)MAX_LENGTH - d) / 16) {
					r = ck_fail(c, "chunk size too large");
					goto out;
				}
				c->left = c->left * 16 + d;
				c->line_len++;
			} else if (ch == ';') {
				c->state = CK_EXT_NAME0;
			} else if (ch == '\r') {
				c->state = CK_SIZE_LF;
			} else {
				r = ck_fail(c, ch == ' ' || ch == '\t' ? "whitespace in chunk size line"
				               : ch == '\n'            ? "bare LF in chunk size line"
				                                       : "chunk size is not a hex number");
				goto out;
			}
			break;
		case CK_EXT_NAME0:
			if (!IS(ch, C_TCHAR)) {
				r = ck_fail(c, "malformed chunk extension");
				goto out;
			}
			c->state = CK_EXT_NAME;
			break;
		case CK_EXT_NAME:
		case CK_EXT_TOKEN:
			if (IS(ch, C_TCHAR))
				break;
			if (ch == '=' && c->state == CK_EXT_NAME)
				c->state = CK_EXT_VAL0;
			else if (ch == ';')
				c->state = CK_EXT_NAME0;
			else if (ch == '\r')
				c->state = CK_SIZE_LF;
			else {
				r = ck_fail(c, "malformed chunk extension");
				goto out;
			}
			break;
		case CK_EXT_VAL0:
			if (IS(ch, C_TCHAR))
				c->state = CK_EXT_TOKEN;
			else if (ch == '"')
				c->state = CK_EXT_QUOTED;
			else {
				r = ck_fail(c, "malformed chunk extension");
				goto out;
			}
			break;
		case CK_EXT_QUOTED:
			if (ch == '"')
				c->state = CK_EXT_END;
			else if (ch == '\\')
				c->state = CK_EXT_QUOTED_ESC;
			else if (!IS(ch, C_QDTEXT)) {
				r = ck_fail(c, "malformed chunk extension");
				goto out;
			}
			break;
		case CK_EXT_QUOTED_ESC:
			if (!IS(ch, C_VALUE)) {
				r = ck_fail(c, "malformed chunk extension");
				goto out;
			}
			c->state = CK_EXT_QUOTED;
			break;
		case CK_EXT_END:
			if (ch == ';')
				c->state = CK_EXT_NAME0;
			else if (ch == '\r')
				c->state = CK_SIZE_LF;
			else {
				r = ck_fail(c, "malformed chunk extension");
				goto out;
			}
			break;
		case CK_SIZE_LF:
			if (ch != '\n') {
				r = ck_fail(c, "bare CR in chunk size line");
				goto out;
			}
			c->line_len = 0;
			if (c->left == 0) {
				c->trailer_len = 0;
				c->state = CK_TRAILER;
			} else {
				c->state = CK_DATA;
			}
			break;
		case CK_DATA_CR:
			if (ch != '\r') {
				r = ck_fail(c, "chunk data not followed by CRLF");
				goto out;
			}
			c->state = CK_DATA_LF;
			break;
		case CK_DATA_LF:
			if (ch != '\n') {
				r = ck_fail(c, "chunk data not followed by CRLF");
				goto out;
			}
			c->state = CK_SIZE;
			break;
		case CK_TRAILER:
			if (ch == '\r')
				c->state = CK_END_LF;
			else if (IS(ch, C_TCHAR))
				c->state = CK_TR_NAME;
			else {
				r = ck_fail(c, ch == ' ' || ch == '\t' ? "obs-fold in trailer section"
				               : ch == '\n'            ? "bare LF in trailer section"
				               : ch == ':'             ? "empty trailer field name"
				                                       : "invalid character in trailer field name");
				goto out;
			}
			break;
		case CK_TR_NAME:
			if (ch == ':')
				c->state = CK_TR_VALUE;
			else if (!IS(ch, C_TCHAR)) {
				r = ck_fail(c, ch == ' ' || ch == '\t'
				                   ? "whitespace between trailer field name and colon"
				                   : "invalid character in trailer field name");
				goto out;
			}
			break;
		case CK_TR_VALUE:
			if (ch == '\r')
				c->state = CK_TR_LF;
			else if (!IS(ch, C_VALUE)) {
				r = ck_fail(c, ch == '\n' ? "bare LF in trailer section"
				                          : "control character in trailer field value");
				goto out;
			}
			break;
		case CK_TR_LF:
			if (ch != '\n') {
				r = ck_fail(c, "bare CR in trailer section");
				goto out;
			}
			c->state = CK_TRAILER;
			break;
		case CK_END_LF:
			if (ch != '\n') {
				r = ck_fail(c, "bare CR in trailer section");
				goto out;
			}
			c->state = CK_DONE;
			*consumed = (size_t)(p - in);
			return 2;
		default:
			r = ck_fail(c, "chunked decoder in an unknown state");
			goto out;
		}
	}
	*consumed = len;
	return 0;
out:
	*consumed = (size_t)(p - in);
	return r;
}
