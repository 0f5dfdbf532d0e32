/* HPACK (RFC 7541): header compression for the HTTP/2 codec. A decoder and an encoder, each
 * with its dynamic table; one of each per connection. Byte-in/byte-out, no I/O, no
 * allocation per field once the tables have grown.
 *
 * Decoding is strict (a malformed block is a connection error, COMPRESSION_ERROR) and bounded:
 * a block whose fields add up to more than the caller's limit stops being reported but is
 * still decoded to its end, so that the dynamic table stays in step with the peer's.
 *
 * Encoding favours speed: fields found whole in the static or dynamic table are sent as an
 * index; others as literals, with incremental indexing unless the caller says the value
 * changes with every message; a string is Huffman-coded only when that makes it shorter. */
#ifndef WF_HTTP_HPACK_H
#define WF_HTTP_HPACK_H

#include <stddef.h>
#include <stdint.h>

#include "http/h1.h"

enum {
	WF_HPACK_ERROR = -1,     /* malformed block: the connection's COMPRESSION_ERROR */
	WF_HPACK_TOO_LARGE = -2, /* the field list went over max_list: the stream is refused */
};

/* Per-field encoding flags. */
enum {
	WF_HPACK_NO_INDEX = 1, /* a value that changes with every message: not added to the table */
	WF_HPACK_NEVER = 2,    /* a sensitive value: "never indexed" literal (§6.2.3) */
	WF_HPACK_UNIQUE = 4,   /* with NO_INDEX: a random identifier no message repeats, sent plain:
	                        * Huffman would spend ~14 instructions a byte to save a quarter of
	                        * hex digits, and no cache can hold it */
};

struct wf_hpack_table; /* private: a dynamic table */

struct wf_hpack_dec {
	struct wf_hpack_table *t;
	uint32_t settings_max; /* our SETTINGS_HEADER_TABLE_SIZE: the most the peer may use */
};

/* What a decoded field's representation says besides its bytes (bits of `how`). */
enum {
	WF_HPACK_NEVER_INDEXED = 1, /* the peer sent a never-indexed literal (to be forwarded as such) */
	WF_HPACK_STATIC_NAME = 2,   /* the name is the static table's (Appendix A) */
	WF_HPACK_STATIC_VALUE = 4,  /* and the value too (an indexed static field) */
};

/* Called for each decoded field, in order; name and value are valid during the call only.
 * Return 0 to go on, <0 to stop reporting (decoding still goes on, and wf_hpack_decode returns
 * it). */
typedef int (*wf_hpack_emit)(void *ctx, const char *name, uint32_t nl, const char *value, uint32_t vl,
                             unsigned how);

void wf_hpack_dec_init(struct wf_hpack_dec *d, uint32_t settings_max);
void wf_hpack_dec_free(struct wf_hpack_dec *d);
/* Lets go of what this thread's decoders share (a cache of Huffman-coded strings). */
void wf_hpack_thread_exit(void);
/* Decode one complete header block (HEADERS + CONTINUATION payloads, joined, without padding or
 * priority). max_list bounds the field list (name + value + 32 per field, RFC 9113 §6.5.2):
 * over it, WF_HPACK_TOO_LARGE. 0, WF_HPACK_ERROR, WF_HPACK_TOO_LARGE, or what emit returned. */
int wf_hpack_decode(struct wf_hpack_dec *d, const uint8_t *p, size_t n, uint32_t max_list, wf_hpack_emit emit,
                    void *ctx);

struct wf_hpack_enc {
	struct wf_hpack_table *t;
	uint32_t own_max;    /* the most this encoder wants to use */
	uint32_t peer_max;   /* the peer decoder's SETTINGS_HEADER_TABLE_SIZE (4096 until it says) */
	uint32_t min_seen;   /* smallest peer_max since the last block: signalled first (§4.2) */
	uint8_t update;      /* a Dynamic Table Size Update is due at the next block */
};

/* own_max: the table size this encoder uses at most (4096, the RFC's initial size, is usual). */
void wf_hpack_enc_init(struct wf_hpack_enc *e, uint32_t own_max);
void wf_hpack_enc_free(struct wf_hpack_enc *e);
/* The peer's SETTINGS_HEADER_TABLE_SIZE: the encoder's table becomes min(own_max, size), and
 * the next block begins with the size update(s) §4.2 asks for. */
void wf_hpack_enc_peer_max(struct wf_hpack_enc *e, uint32_t size);
/* Bytes wf_hpack_encode may write at most for these fields (and a size update). */
size_t wf_hpack_encode_bound(const struct wf_hdr *h, uint32_t n);
/* Encode the fields (names already lower case) into out, which has room for the bound.
 * flags: one WF_HPACK_* set per field, or NULL. The bytes written. */
size_t wf_hpack_encode(struct wf_hpack_enc *e, const struct wf_hdr *h, uint32_t n, const uint8_t *flags,
                       uint8_t *out);

#endif
