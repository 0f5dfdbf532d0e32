/* Small string helpers shared by config decoding and the HTTP layers. */
#ifndef WF_CORE_STR_H
#define WF_CORE_STR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The value of a hex digit (either case), or -1. */
static inline int wf_hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A borrowed slice of bytes (not NUL-terminated). */
struct wf_str {
	const char *p;
	size_t n;
};

#define WF_STR(lit) ((struct wf_str){lit, sizeof(lit) - 1})

static inline char wf_lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

/* Each byte of x that is in 'A'..'Z' gets 0x20 added: per byte, (b & 0x7f) + (0x80 - 'A') sets
 * the high bit when b >= 'A', and (b & 0x7f) + (0x7f - 'Z') when b > 'Z' (no carry crosses
 * bytes: each sum stays under 0x100); the upper-case bytes are those with the first and not
 * the second, and not themselves >= 0x80. */
static inline uint64_t wf_lower8(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ull, high = ones * 0x80;
	uint64_t b = x & ~high;
	uint64_t ge_a = b + ones * (0x80 - 'A');
	uint64_t gt_z = b + ones * (0x7f - 'Z');
	uint64_t upper = ge_a & ~gt_z & ~x & high;
	return x | (upper >> 2);
}

static inline uint64_t wf_load64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static inline uint64_t wf_load32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* a[0..n) equals the lower-case lower[0..n), ignoring a's ASCII case. Inline: header-name
 * checks on the request path use it. Eight bytes a step (the last step, and four to seven
 * bytes, as two overlapping loads: lowering is per byte, so a byte compared twice is fine). */
static inline int wf_ieq_lower(const char *a, const char *lower, size_t n)
{
	if (n >= 8) {
		for (size_t i = 0; i + 8 < n; i += 8)
			if (wf_lower8(wf_load64(a + i)) != wf_load64(lower + i))
				return 0;
		return wf_lower8(wf_load64(a + n - 8)) == wf_load64(lower + n - 8);
	}
	if (n >= 4)
		return wf_lower8(wf_load32(a) | wf_load32(a + n - 4) << 32) ==
		       (wf_load32(lower) | wf_load32(lower + n - 4) << 32);
	for (size_t i = 0; i < n; i++) {
		unsigned c = (unsigned char)a[i];
		if ((c - 'A' < 26u ? c | 0x20 : c) != (unsigned char)lower[i])
			return 0;
	}
	return 1;
}

/* ASCII case-insensitive equality of two slices. */
int wf_str_ieq(const char *a, size_t an, const char *b, size_t bn);
/* dst[0..n) = src[0..n) with ASCII upper case lowered (eight bytes at a time). */
void wf_lower_copy(char *dst, const char *src, size_t n);
/* v in decimal into buf (room for 20 digits, not NUL-terminated): the digit count. */
size_t wf_fmt_u64(char *buf, uint64_t v);
/* Edit distance (Levenshtein), capped at `cap` (returns cap when larger): for "did you mean". */
unsigned wf_edit_distance(const char *a, const char *b, unsigned cap);
/* Parse a decimal unsigned integer that fills the whole slice; -1 when not plain digits or
 * over max. */
int64_t wf_parse_u64(const char *p, size_t n, uint64_t max);

/* Decode n hex digits (n even) into out[n / 2]: the byte count, or -1 when not hex. */
int64_t wf_hex_decode(const char *p, size_t n, uint8_t *out);

/* Decode base64 (standard or URL-safe alphabet, padding optional) into out (room for
 * len / 4 * 3 + 3): the byte count, or -1 when malformed. */
long wf_base64_decode(const char *in, size_t len, unsigned char *out);
/* Encode n bytes as standard, padded base64 into out (room for (n + 2) / 3 * 4 + 1, NUL
 * terminated); the length written. */
size_t wf_base64_encode(const unsigned char *in, size_t n, char *out);

/* A malloc'd lower-cased copy of s; *len (when not NULL) gets its length. */
char *wf_strdup_lower(const char *s, uint32_t *len);

#endif
