#include "http/h2_fields.h"

#include "core/str.h"
#include "http/hpack.h"

#include <string.h>

/* tchar (RFC 9110 §5.6.2) in lower case: a field name's bytes (RFC 9113 §8.2.1). */
static const uint8_t name_ok[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1, ['-'] = 1,
    ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

/* Each byte of w is a lower-case letter or '-', what nearly every name is made of: the range
 * test on each byte (set high bits first, so that no borrow crosses bytes) and the exact
 * zero-byte test for '-'. */
static inline int letters_or_dashes(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	uint64_t letters = ((w | highs) - 0x61 * ones) & ~((w | highs) - 0x7b * ones) & ~w & highs;
	uint64_t d = w ^ ('-' * ones);
	uint64_t dashes = ~(((d & ~highs) + ~highs) | d) & highs;
	return (letters | dashes) == highs;
}

/* No byte of w is a control (under 0x20) or DEL: the "has a byte less than" and "has a zero
 * byte" word tricks, exact as to whether there is one. HTAB, which values may hold, is a
 * control: a word with one fails here. */
static inline int no_ctl_or_del(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	uint64_t del = w ^ (0x7f * ones);
	return !(((w - 0x20 * ones) & ~w & highs) | ((del - ones) & ~del & highs));
}

/* Every word of p[0..n) passes ok: eight bytes a step, the last step and four to seven bytes
 * as overlapping loads. 0 for shorter strings: the caller looks at those byte by byte, as at
 * any string that fails here. Every field of every message comes here. */
static inline int words_pass(const uint8_t *p, uint32_t n, int (*ok)(uint64_t))
{
	if (n < 4)
		return 0;
	if (n < 8)
		return ok(wf_load32(p) | wf_load32(p + n - 4) << 32);
	if (!ok(wf_load64(p + n - 8)))
		return 0;
	for (uint32_t i = 0; i + 8 < n; i += 8)
		if (!ok(wf_load64(p + i)))
			return 0;
	return 1;
}

static int name_valid(const char *p, uint32_t n)
{
	const uint8_t *u = (const uint8_t *)p;
	if (!n)
		return 0;
	if (words_pass(u, n, letters_or_dashes))
		return 1;
	for (uint32_t i = 0; i < n; i++) /* digits and the other tchars, or a byte refused */
		if (!name_ok[u[i]])
			return 0;
	return 1;
}

/* A field value's bytes: HTAB, SP, visible ASCII and obs-text (not NUL, CR, LF, other
 * controls or DEL). */
static const uint8_t value_ok[256] = {['\t'] = 1, [0x20 ... 0x7e] = 1, [0x80 ... 0xff] = 1};

/* A field value: its bytes, and no whitespace at either end. */
static int value_valid(const char *p, uint32_t n)
{
	const uint8_t *u = (const uint8_t *)p;
	if (!words_pass(u, n, no_ctl_or_del))
		for (uint32_t i = 0; i < n; i++) /* short, or an HTAB or a byte refused in it */
			if (!value_ok[u[i]])
				return 0;
	return !n || (p[0] != ' ' && p[0] != '\t' && p[n - 1] != ' ' && p[n - 1] != '\t');
}

#define IS(h, lit) wf_hdr_name_is((h), lit, sizeof(lit) - 1)

/* Connection-specific fields have no place in HTTP/2 (§8.2.2); TE only as "trailers". */
static int connection_specific(const struct wf_hdr *h)
{
	switch (h->name_len) {
	case 2: return IS(h, "te") && !(h->value_len == 8 && !memcmp(h->value, "trailers", 8));
	case 7: return IS(h, "upgrade");
	case 10: return IS(h, "connection") || IS(h, "keep-alive");
	case 16: return IS(h, "proxy-connection");
	case 17: return IS(h, "transfer-encoding");
	}
	return 0;
}

static int content_length(const struct wf_hdr *h, struct wf_h2_msg *m)
{
	int64_t v = wf_parse_u64(h->value, h->value_len, (uint64_t)INT64_MAX);
	if (v < 0 || (m->content_length >= 0 && m->content_length != v))
		return -1;
	m->content_length = v;
	return 0;
}

int wf_h2_check_fields(const struct wf_hdr *h, const uint8_t *how, uint32_t n, enum wf_h2_block kind,
                       int connect_protocol, struct wf_h2_msg *m)
{
	enum { METHOD = 1, SCHEME = 2, PATH = 4, AUTHORITY = 8, PROTOCOL = 16, STATUS = 32 };
	unsigned seen = 0;
	const struct wf_hdr *method = NULL, *path = NULL;
	m->content_length = -1;
	m->status = 0;
	m->connect = 0;
	uint32_t i = 0;
	/* pseudo-header fields first, each once, only those of this kind of block */
	for (; i < n && h[i].name_len && h[i].name[0] == ':'; i++) {
		const struct wf_hdr *f = &h[i];
		unsigned bit = 0;
		if (kind == WF_H2B_REQUEST) {
			if (IS(f, ":method"))
				bit = METHOD, method = f;
			else if (IS(f, ":scheme"))
				bit = SCHEME;
			else if (IS(f, ":path"))
				bit = PATH, path = f;
			else if (IS(f, ":authority"))
				bit = AUTHORITY;
			else if (IS(f, ":protocol") && connect_protocol)
				bit = PROTOCOL;
		} else if (kind == WF_H2B_RESPONSE && IS(f, ":status")) {
			bit = STATUS;
		}
		if (!bit || (seen & bit) || (!(how && how[i] & WF_HPACK_STATIC_VALUE) && !value_valid(f->value, f->value_len)))
			return -1;
		seen |= bit;
	}
	for (; i < n; i++) {
		const struct wf_hdr *f = &h[i];
		unsigned known = how ? how[i] : 0;
		/* a pseudo-header after a regular field fails name_valid (':'), and a static name is one */
		if (known & WF_HPACK_STATIC_NAME ? f->name[0] == ':' : !name_valid(f->name, f->name_len))
			return -1;
		if ((!(known & WF_HPACK_STATIC_VALUE) && !value_valid(f->value, f->value_len)) || connection_specific(f))
			return -1;
		if (f->name_len == 14 && IS(f, "content-length") && content_length(f, m) < 0)
			return -1;
	}
	if (kind == WF_H2B_TRAILERS)
		return seen ? -1 : 0;
	if (kind == WF_H2B_RESPONSE) {
		if (!(seen & STATUS) || h[0].value_len != 3)
			return -1;
		int s = 0;
		for (int k = 0; k < 3; k++) {
			char c = h[0].value[k];
			if (c < '0' || c > '9')
				return -1;
			s = s * 10 + (c - '0');
		}
		if (s < 100)
			return -1;
		m->status = s;
		return 0;
	}
	if (!(seen & METHOD) || !method->value_len)
		return -1;
	if (method->value_len == 7 && !memcmp(method->value, "CONNECT", 7)) {
		m->connect = 1;
		if (seen & PROTOCOL) /* extended CONNECT (RFC 8441 §4) */
			return (seen & (SCHEME | PATH | AUTHORITY)) == (SCHEME | PATH | AUTHORITY) && path->value_len ? 0 : -1;
		return (seen & (SCHEME | PATH)) || !(seen & AUTHORITY) ? -1 : 0; /* §8.5 */
	}
	if ((seen & PROTOCOL) || (seen & (SCHEME | PATH)) != (SCHEME | PATH) || !path->value_len)
		return -1;
	/* origin-form, or "*" for OPTIONS (§8.3.1) */
	if (path->value[0] != '/' &&
	    !(path->value_len == 1 && path->value[0] == '*' && method->value_len == 7 && !memcmp(method->value, "OPTIONS", 7)))
		return -1;
	return 0;
}
