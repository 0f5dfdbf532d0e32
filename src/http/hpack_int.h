/* HPACK internals shared by hpack.c and hpack_huff.c, and with the unit tests (which check
 * the Huffman code against nghttp2 and look into the dynamic tables). Not for other callers. */
#ifndef WF_HTTP_HPACK_INT_H
#define WF_HTTP_HPACK_INT_H

#include <stddef.h>
#include <stdint.h>

struct wf_hpack_table;

/* The table's size (§4.1) and number of entries. */
uint32_t wf_hpack_table_size(const struct wf_hpack_table *t, uint32_t *entries);
/* Dynamic entry i (1 is the newest, HPACK index 62): 0 and its name and value, or -1. */
int wf_hpack_table_get(const struct wf_hpack_table *t, uint32_t i, const char **name, uint32_t *nl,
                       const char **value, uint32_t *vl);

/* ---- the Huffman code of string literals (§5.2, Appendix B) ---- */

struct wf_hpack_huff_sym {
	uint32_t code; /* right-aligned */
	uint32_t bits; /* 5..30 */
};

/* Appendix B: symbols 0..255, and 256 for EOS. */
extern const struct wf_hpack_huff_sym wf_hpack_huff_code[257];

/* Builds the decoding tables; idempotent and thread-safe. The decoder must have called it. */
void wf_hpack_huff_init(void);
/* Bytes the Huffman coding of s[0..n) takes (the last one padded with ones). */
size_t wf_hpack_huff_len(const uint8_t *s, size_t n);
/* Writes the Huffman coding of s[0..n) at out (wf_hpack_huff_len bytes); returns its end. */
uint8_t *wf_hpack_huff_encode(uint8_t *out, const uint8_t *s, size_t n);
/* Writes the Huffman coding of s[0..n) at out if it is shorter than n bytes, and returns its
 * length; else -1 (out[0..n) may have been written). One pass: no length count first. */
long wf_hpack_huff_encode_shorter(uint8_t *out, const uint8_t *s, size_t n);
/* Decodes s[0..n) into out, which has room for n * 8 / 5 + 1 bytes. The bytes written, or -1
 * for a malformed string: EOS coded, or padding longer than 7 bits or not all ones (§5.2). */
long wf_hpack_huff_decode(uint8_t *out, const uint8_t *s, size_t n);

#endif
