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

/* a[0..n) equals the lower-case lower[0..n), ignoring a's ASCII case. Inline: header-name
 * checks on the request path use it, and most fail at the first byte. */
static inline int wf_ieq_lower(const char *a, const char *lower, size_t n)
{
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
