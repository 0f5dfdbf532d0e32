#include "core/str.h"

#include <stdlib.h>
#include <string.h>

int wf_str_ieq(const char *a, size_t an, const char *b, size_t bn)
{
	if (an != bn)
		return 0;
	for (size_t i = 0; i < an; i++)
		if (wf_lower(a[i]) != wf_lower(b[i]))
			return 0;
	return 1;
}

void wf_lower_copy(char *dst, const char *src, size_t n)
{
	/* whole words, the last one overlapping the one before (every load before its store, so
	 * that dst may be src) */
	if (n >= 8) {
		uint64_t last = wf_lower8(wf_load64(src + n - 8));
		for (size_t i = 0; i + 8 < n; i += 8) {
			uint64_t x = wf_lower8(wf_load64(src + i));
			memcpy(dst + i, &x, 8);
		}
		memcpy(dst + n - 8, &last, 8);
		return;
	}
	if (n >= 4) {
		uint64_t x = wf_lower8(wf_load32(src) | wf_load32(src + n - 4) << 32);
		uint32_t lo = (uint32_t)x, hi = (uint32_t)(x >> 32);
		memcpy(dst + n - 4, &hi, 4);
		memcpy(dst, &lo, 4);
		return;
	}
	for (size_t i = 0; i < n; i++)
		dst[i] = wf_lower(src[i]);
}

size_t wf_fmt_u64(char *buf, uint64_t v)
{
	size_t n = 1;
	for (uint64_t t = v; t >= 10; t /= 10)
		n++;
	for (size_t i = n; i-- > 0; v /= 10) /* written in place, last digit first */
		buf[i] = (char)('0' + v % 10);
	return n;
}

unsigned wf_edit_distance(const char *a, const char *b, unsigned cap)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 63 || lb > 63)
		return cap;
	unsigned row[64];
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned diag = row[0], best;
		row[0] = (unsigned)i;
		best = row[0];
		for (size_t j = 1; j <= lb; j++) {
			unsigned up = row[j];
			unsigned v = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < v)
				v = up + 1;
			if (row[j - 1] + 1 < v)
				v = row[j - 1] + 1;
			row[j] = v;
			diag = up;
			if (v < best)
				best = v;
		}
		if (best >= cap)
			return cap;
	}
	return row[lb] < cap ? row[lb] : cap;
}

int64_t wf_parse_u64(const char *p, size_t n, uint64_t max)
{
	if (n == 0 || n > 19)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	return v > max || v > (uint64_t)INT64_MAX ? -1 : (int64_t)v;
}

int64_t wf_hex_decode(const char *p, size_t n, uint8_t *out)
{
	if (n % 2)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		int hi = wf_hex_digit(p[i]), lo = wf_hex_digit(p[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return (int64_t)(n / 2);
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+' || c == '-') return 62;
	if (c == '/' || c == '_') return 63;
	return -1;
}

size_t wf_base64_encode(const unsigned char *in, size_t n, char *out)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? b64[v & 63] : '=';
	}
	out[o] = 0;
	return o;
}

long wf_base64_decode(const char *in, size_t len, unsigned char *out)
{
	while (len && in[len - 1] == '=')
		len--;
	if (len % 4 == 1)
		return -1;
	long k = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < len; i++) {
		int v = b64val((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[k++] = (unsigned char)(acc >> bits);
		}
	}
	return k;
}

char *wf_strdup_lower(const char *s, uint32_t *len)
{
	size_t n = strlen(s);
	char *d = malloc(n + 1);
	wf_lower_copy(d, s, n + 1);
	if (len)
		*len = (uint32_t)n;
	return d;
}
