/* HPACK's Huffman code (RFC 7541 Appendix B): the code table, a length count, an encoder
 * that works 32 bits at a time, and a decoder that reads 12 bits at a time.
 *
 * The code is canonical: codes of one length are consecutive numbers, in the order of their
 * symbols, and each length's first code follows the last of the length before, shifted. So
 * the leading len bits v of the input are a code of that length exactly when v is below
 * limit[len] (the first code of the length + how many it has), at the shortest such len; and
 * the symbol is found by its rank. The decoder does that only for codes over 12 bits: for
 * the others, a table indexed by the next 12 bits gives up to two symbols and their lengths.
 * What is left when the input ends must be at most 7 bits, all ones (the padding, §5.2). */
#include "http/hpack_int.h"

#include <pthread.h>
#include <string.h>

/* {code, bits} of symbols 0..256, in the order of Appendix B. */
const struct wf_hpack_huff_sym wf_hpack_huff_code[257] = {
	{0x1ff8, 13}, {0x7fffd8, 23}, {0xfffffe2, 28}, {0xfffffe3, 28}, /* 0 */
	{0xfffffe4, 28}, {0xfffffe5, 28}, {0xfffffe6, 28}, {0xfffffe7, 28}, /* 4 */
	{0xfffffe8, 28}, {0xffffea, 24}, {0x3ffffffc, 30}, {0xfffffe9, 28}, /* 8 */
	{0xfffffea, 28}, {0x3ffffffd, 30}, {0xfffffeb, 28}, {0xfffffec, 28}, /* 12 */
	{0xfffffed, 28}, {0xfffffee, 28}, {0xfffffef, 28}, {0xffffff0, 28}, /* 16 */
	{0xffffff1, 28}, {0xffffff2, 28}, {0x3ffffffe, 30}, {0xffffff3, 28}, /* 20 */
	{0xffffff4, 28}, {0xffffff5, 28}, {0xffffff6, 28}, {0xffffff7, 28}, /* 24 */
	{0xffffff8, 28}, {0xffffff9, 28}, {0xffffffa, 28}, {0xffffffb, 28}, /* 28 */
	{0x14, 6}, {0x3f8, 10}, {0x3f9, 10}, {0xffa, 12}, /* 32 */
	{0x1ff9, 13}, {0x15, 6}, {0xf8, 8}, {0x7fa, 11}, /* 36 */
	{0x3fa, 10}, {0x3fb, 10}, {0xf9, 8}, {0x7fb, 11}, /* 40 */
	{0xfa, 8}, {0x16, 6}, {0x17, 6}, {0x18, 6}, /* 44 */
	{0x0, 5}, {0x1, 5}, {0x2, 5}, {0x19, 6}, /* 48 */
	{0x1a, 6}, {0x1b, 6}, {0x1c, 6}, {0x1d, 6}, /* 52 */
	{0x1e, 6}, {0x1f, 6}, {0x5c, 7}, {0xfb, 8}, /* 56 */
	{0x7ffc, 15}, {0x20, 6}, {0xffb, 12}, {0x3fc, 10}, /* 60 */
	{0x1ffa, 13}, {0x21, 6}, {0x5d, 7}, {0x5e, 7}, /* 64 */
	{0x5f, 7}, {0x60, 7}, {0x61, 7}, {0x62, 7}, /* 68 */
	{0x63, 7}, {0x64, 7}, {0x65, 7}, {0x66, 7}, /* 72 */
	{0x67, 7}, {0x68, 7}, {0x69, 7}, {0x6a, 7}, /* 76 */
	{0x6b, 7}, {0x6c, 7}, {0x6d, 7}, {0x6e, 7}, /* 80 */
	{0x6f, 7}, {0x70, 7}, {0x71, 7}, {0x72, 7}, /* 84 */
	{0xfc, 8}, {0x73, 7}, {0xfd, 8}, {0x1ffb, 13}, /* 88 */
	{0x7fff0, 19}, {0x1ffc, 13}, {0x3ffc, 14}, {0x22, 6}, /* 92 */
	{0x7ffd, 15}, {0x3, 5}, {0x23, 6}, {0x4, 5}, /* 96 */
	{0x24, 6}, {0x5, 5}, {0x25, 6}, {0x26, 6}, /* 100 */
	{0x27, 6}, {0x6, 5}, {0x74, 7}, {0x75, 7}, /* 104 */
	{0x28, 6}, {0x29, 6}, {0x2a, 6}, {0x7, 5}, /* 108 */
	{0x2b, 6}, {0x76, 7}, {0x2c, 6}, {0x8, 5}, /* 112 */
	{0x9, 5}, {0x2d, 6}, {0x77, 7}, {0x78, 7}, /* 116 */
	{0x79, 7}, {0x7a, 7}, {0x7b, 7}, {0x7ffe, 15}, /* 120 */
	{0x7fc, 11}, {0x3ffd, 14}, {0x1ffd, 13}, {0xffffffc, 28}, /* 124 */
	{0xfffe6, 20}, {0x3fffd2, 22}, {0xfffe7, 20}, {0xfffe8, 20}, /* 128 */
	{0x3fffd3, 22}, {0x3fffd4, 22}, {0x3fffd5, 22}, {0x7fffd9, 23}, /* 132 */
	{0x3fffd6, 22}, {0x7fffda, 23}, {0x7fffdb, 23}, {0x7fffdc, 23}, /* 136 */
	{0x7fffdd, 23}, {0x7fffde, 23}, {0xffffeb, 24}, {0x7fffdf, 23}, /* 140 */
	{0xffffec, 24}, {0xffffed, 24}, {0x3fffd7, 22}, {0x7fffe0, 23}, /* 144 */
	{0xffffee, 24}, {0x7fffe1, 23}, {0x7fffe2, 23}, {0x7fffe3, 23}, /* 148 */
	{0x7fffe4, 23}, {0x1fffdc, 21}, {0x3fffd8, 22}, {0x7fffe5, 23}, /* 152 */
	{0x3fffd9, 22}, {0x7fffe6, 23}, {0x7fffe7, 23}, {0xffffef, 24}, /* 156 */
	{0x3fffda, 22}, {0x1fffdd, 21}, {0xfffe9, 20}, {0x3fffdb, 22}, /* 160 */
	{0x3fffdc, 22}, {0x7fffe8, 23}, {0x7fffe9, 23}, {0x1fffde, 21}, /* 164 */
	{0x7fffea, 23}, {0x3fffdd, 22}, {0x3fffde, 22}, {0xfffff0, 24}, /* 168 */
	{0x1fffdf, 21}, {0x3fffdf, 22}, {0x7fffeb, 23}, {0x7fffec, 23}, /* 172 */
	{0x1fffe0, 21}, {0x1fffe1, 21}, {0x3fffe0, 22}, {0x1fffe2, 21}, /* 176 */
	{0x7fffed, 23}, {0x3fffe1, 22}, {0x7fffee, 23}, {0x7fffef, 23}, /* 180 */
	{0xfffea, 20}, {0x3fffe2, 22}, {0x3fffe3, 22}, {0x3fffe4, 22}, /* 184 */
	{0x7ffff0, 23}, {0x3fffe5, 22}, {0x3fffe6, 22}, {0x7ffff1, 23}, /* 188 */
	{0x3ffffe0, 26}, {0x3ffffe1, 26}, {0xfffeb, 20}, {0x7fff1, 19}, /* 192 */
	{0x3fffe7, 22}, {0x7ffff2, 23}, {0x3fffe8, 22}, {0x1ffffec, 25}, /* 196 */
	{0x3ffffe2, 26}, {0x3ffffe3, 26}, {0x3ffffe4, 26}, {0x7ffffde, 27}, /* 200 */
	{0x7ffffdf, 27}, {0x3ffffe5, 26}, {0xfffff1, 24}, {0x1ffffed, 25}, /* 204 */
	{0x7fff2, 19}, {0x1fffe3, 21}, {0x3ffffe6, 26}, {0x7ffffe0, 27}, /* 208 */
	{0x7ffffe1, 27}, {0x3ffffe7, 26}, {0x7ffffe2, 27}, {0xfffff2, 24}, /* 212 */
	{0x1fffe4, 21}, {0x1fffe5, 21}, {0x3ffffe8, 26}, {0x3ffffe9, 26}, /* 216 */
	{0xffffffd, 28}, {0x7ffffe3, 27}, {0x7ffffe4, 27}, {0x7ffffe5, 27}, /* 220 */
	{0xfffec, 20}, {0xfffff3, 24}, {0xfffed, 20}, {0x1fffe6, 21}, /* 224 */
	{0x3fffe9, 22}, {0x1fffe7, 21}, {0x1fffe8, 21}, {0x7ffff3, 23}, /* 228 */
	{0x3fffea, 22}, {0x3fffeb, 22}, {0x1ffffee, 25}, {0x1ffffef, 25}, /* 232 */
	{0xfffff4, 24}, {0xfffff5, 24}, {0x3ffffea, 26}, {0x7ffff4, 23}, /* 236 */
	{0x3ffffeb, 26}, {0x7ffffe6, 27}, {0x3ffffec, 26}, {0x3ffffed, 26}, /* 240 */
	{0x7ffffe7, 27}, {0x7ffffe8, 27}, {0x7ffffe9, 27}, {0x7ffffea, 27}, /* 244 */
	{0x7ffffeb, 27}, {0xffffffe, 28}, {0x7ffffec, 27}, {0x7ffffed, 27}, /* 248 */
	{0x7ffffee, 27}, {0x7ffffef, 27}, {0x7fffff0, 27}, {0x3ffffee, 26}, /* 252 */
	{0x3fffffff, 30}, /* 256 */
};

#define PEEK 12 /* bits the fast table is indexed by */

/* The canonical code by length (1..30): the first code, the limit (first + count), and where
 * its symbols start in huff_sorted (symbols by code length, then value). */
static uint32_t huff_first[31], huff_limit[31], huff_offset[31];
static uint16_t huff_sorted[257];
/* By the next 12 bits: the first symbol (bits 0-7) and a second (8-15) when both fit, the
 * first's length (16-19), both lengths (20-23), and how many symbols (24-25); 0 when the
 * first code is longer than 12 bits. */
static uint32_t huff_fast[1 << PEEK];
static pthread_once_t huff_once = PTHREAD_ONCE_INIT;

/* The symbol whose code begins buf (left-aligned, with at least 30 bits or zero filling), and
 * its length in *len. */
static unsigned huff_slow(uint64_t buf, unsigned *len)
{
	unsigned l = 5;
	while ((buf >> (64 - l)) >= huff_limit[l])
		l++;
	*len = l;
	return huff_sorted[huff_offset[l] + (uint32_t)(buf >> (64 - l)) - huff_first[l]];
}

static void huff_build(void)
{
	unsigned count[31] = {0}, n = 0;
	for (unsigned sym = 0; sym < 257; sym++)
		count[wf_hpack_huff_code[sym].bits]++;
	uint32_t code = 0;
	for (unsigned l = 1; l <= 30; l++) {
		huff_first[l] = code;
		huff_limit[l] = code + count[l];
		huff_offset[l] = n;
		for (unsigned sym = 0; sym < 257; sym++) {
			if (wf_hpack_huff_code[sym].bits == l)
				huff_sorted[n++] = (uint16_t)sym;
		}
		code = (code + count[l]) << 1;
	}
	for (uint32_t x = 0; x < (1u << PEEK); x++) {
		uint64_t buf = (uint64_t)x << (64 - PEEK);
		unsigned l1, l2, s1 = huff_slow(buf, &l1), s2 = 0, n_syms = 1;
		if (l1 > PEEK)
			continue;
		s2 = huff_slow(buf << l1, &l2);
		if (l1 + l2 <= PEEK)
			n_syms = 2;
		else
			l2 = 0, s2 = 0;
		huff_fast[x] = s1 | s2 << 8 | l1 << 16 | (l1 + l2) << 20 | n_syms << 24;
	}
}

void wf_hpack_huff_init(void)
{
	pthread_once(&huff_once, huff_build);
}

size_t wf_hpack_huff_len(const uint8_t *s, size_t n)
{
	size_t bits = 0;
	for (size_t i = 0; i < n; i++)
		bits += wf_hpack_huff_code[s[i]].bits;
	return (bits + 7) / 8;
}

static inline void store32be(uint8_t *p, uint32_t v)
{
	v = __builtin_bswap32(v);
	memcpy(p, &v, 4);
}

/* Codes s[0..n) at out while the coding stays shorter than limit bytes: its length, or -1 as
 * soon as it cannot. Nothing is written at out + limit or after. */
static long huff_encode(uint8_t *out, const uint8_t *s, size_t n, size_t limit)
{
	size_t w = 0;     /* bytes written */
	uint64_t acc = 0; /* the low `bits` bits are pending output */
	unsigned bits = 0;

	for (size_t i = 0; i < n; i++) {
		const struct wf_hpack_huff_sym *c = &wf_hpack_huff_code[s[i]];
		acc = acc << c->bits | c->code;
		bits += c->bits;
		if (bits >= 32) {
			if (limit - w <= 4)
				return -1;
			bits -= 32;
			store32be(out + w, (uint32_t)(acc >> bits));
			w += 4;
		}
	}
	if (bits & 7) { /* pad with the most significant bits of EOS: ones */
		unsigned pad = 8 - (bits & 7);
		acc = acc << pad | ((1u << pad) - 1);
		bits += pad;
	}
	if (limit - w <= bits / 8)
		return -1;
	while (bits > 0) {
		bits -= 8;
		out[w++] = (uint8_t)(acc >> bits);
	}
	return (long)w;
}

uint8_t *wf_hpack_huff_encode(uint8_t *out, const uint8_t *s, size_t n)
{
	return out + huff_encode(out, s, n, SIZE_MAX);
}

long wf_hpack_huff_encode_shorter(uint8_t *out, const uint8_t *s, size_t n)
{
	return huff_encode(out, s, n, n);
}

static inline uint32_t load32be(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return __builtin_bswap32(v);
}

long wf_hpack_huff_decode(uint8_t *out, const uint8_t *s, size_t n)
{
	const uint8_t *p = s, *end = s + n;
	uint8_t *o = out;
	uint64_t buf = 0; /* the next `bits` bits of input, left-aligned */
	unsigned bits = 0;

	for (;;) {
		/* while input is left, at least 30 bits (the longest code) are in buf */
		if (bits <= 32) {
			if (end - p >= 4) {
				buf |= (uint64_t)load32be(p) << (32 - bits);
				p += 4;
				bits += 32;
			} else {
				for (; p < end && bits <= 56; bits += 8)
					buf |= (uint64_t)*p++ << (56 - bits);
			}
		}
		if (bits == 0)
			break;
		uint32_t e = huff_fast[buf >> (64 - PEEK)];
		if (e) {
			unsigned both = e >> 20 & 15, first = e >> 16 & 15;
			o[0] = (uint8_t)e;
			if (both <= bits) { /* a second symbol is stored even if there is none: o has room */
				o[1] = (uint8_t)(e >> 8);
				o += e >> 24;
				buf <<= both;
				bits -= both;
			} else if (first <= bits) {
				o++;
				buf <<= first;
				bits -= first;
			} else {
				break;
			}
			continue;
		}
		unsigned len, sym = huff_slow(buf, &len);
		if (len > bits)
			break;
		if (sym == 256)
			return -1; /* EOS */
		*o++ = (uint8_t)sym;
		buf <<= len;
		bits -= len;
	}
	/* the input is all read; what is left of it is padding */
	if (bits > 7 || (bits > 0 && buf >> (64 - bits) != (1u << bits) - 1))
		return -1;
	return (long)(o - out);
}
