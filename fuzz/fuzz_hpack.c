/* libFuzzer target for HPACK (src/http/hpack.c, src/http/hpack_huff.c).
 *
 * The input is a connection's worth of header blocks for one decoder:
 *   byte 0        max_list (a small one, so that WF_HPACK_TOO_LARGE happens)
 *   then, per block: a control byte, a length byte, and that many bytes of block;
 *                 a control byte with the top bit set first changes our
 *                 SETTINGS_HEADER_TABLE_SIZE to one of a few sizes (its low 3 bits)
 * and the contract of hpack.h is checked:
 *  - decode returns 0, WF_HPACK_ERROR or WF_HPACK_TOO_LARGE (emit never fails here), and
 *    the fields it reported add up to max_list at most when it says TOO_LARGE;
 *  - after an error the connection is over: no further block is decoded;
 *  - round trip: the fields of each block that decodes whole are encoded by our encoder
 *    (the never-indexed ones as such) and decoded by a second decoder, which gives the same
 *    list; that encoder/decoder pair lives as long as the input, with the same table size
 *    changes, so that its dynamic tables are exercised too. */
#include "http/hpack.h"
#include "ensure.h"

#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 512

static const uint32_t sizes[8] = {0, 1, 32, 64, 256, 1000, 4096, 65536};

struct fields {
	struct wf_hdr h[MAX_FIELDS]; /* names and values in store (set by finish()) */
	size_t off[MAX_FIELDS];
	uint8_t flags[MAX_FIELDS];
	uint32_t n;
	uint64_t list; /* name + value + 32 over the reported fields */
	char *store;   /* the names and values, one after the other */
	size_t used, cap;
};

static int collect(void *ctx, const char *name, uint32_t nl, const char *value, uint32_t vl, unsigned how)
{
	struct fields *f = ctx;
	ENSURE(!(how & WF_HPACK_STATIC_VALUE) || (how & WF_HPACK_STATIC_NAME)); /* a static value has its name */
	f->list += (uint64_t)nl + vl + 32;
	if (f->n == MAX_FIELDS)
		return 0; /* the rest is only counted */
	while (!f->store || f->used + nl + vl > f->cap) {
		f->cap = f->cap ? 2 * f->cap : 4096;
		f->store = realloc(f->store, f->cap);
		ENSURE(f->store != NULL);
	}
	memcpy(f->store + f->used, name, nl);
	memcpy(f->store + f->used + nl, value, vl);
	f->off[f->n] = f->used;
	f->used += nl + vl;
	f->h[f->n] = (struct wf_hdr){NULL, NULL, nl, vl};
	f->flags[f->n] = how & WF_HPACK_NEVER_INDEXED ? WF_HPACK_NEVER : 0;
	f->n++;
	return 0;
}

static void reset(struct fields *f)
{
	f->n = 0;
	f->list = 0;
	f->used = 0;
}

static void finish(struct fields *f)
{
	for (uint32_t i = 0; i < f->n; i++) {
		f->h[i].name = f->store + f->off[i];
		f->h[i].value = f->h[i].name + f->h[i].name_len;
	}
}

static int same_lists(const struct fields *a, const struct fields *b)
{
	if (a->n != b->n)
		return 0;
	for (uint32_t i = 0; i < a->n; i++) {
		const struct wf_hdr *x = &a->h[i], *y = &b->h[i];
		if (x->name_len != y->name_len || x->value_len != y->value_len || a->flags[i] != b->flags[i] ||
		    memcmp(x->name, y->name, x->name_len) != 0 || memcmp(x->value, y->value, x->value_len) != 0)
			return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint32_t max_list = 64u * (data[0] + 1);
	struct wf_hpack_dec d, d2;
	struct wf_hpack_enc e2;
	struct fields got = {0}, again = {0};

	wf_hpack_dec_init(&d, 4096);
	wf_hpack_dec_init(&d2, 4096);
	wf_hpack_enc_init(&e2, 4096);
	for (size_t i = 1; i + 2 <= size;) {
		uint8_t ctl = data[i], len = data[i + 1];
		i += 2;
		if (len > size - i)
			len = (uint8_t)(size - i);
		if (ctl & 0x80) {
			uint32_t s = sizes[ctl & 7];
			d.settings_max = s;
			d2.settings_max = s;
			wf_hpack_enc_peer_max(&e2, s);
		}
		/* an exact-size copy, so that AddressSanitizer sees a read past the block */
		uint8_t *block = malloc(len ? len : 1);
		ENSURE(block != NULL);
		memcpy(block, data + i, len);
		i += len;

		reset(&got);
		int rc = wf_hpack_decode(&d, block, len, max_list, collect, &got);
		free(block);
		ENSURE(rc == 0 || rc == WF_HPACK_ERROR || rc == WF_HPACK_TOO_LARGE);
		if (rc == WF_HPACK_ERROR)
			break;
		ENSURE(got.list <= max_list);
		if (rc == WF_HPACK_TOO_LARGE || got.n == MAX_FIELDS)
			continue;

		finish(&got);
		size_t bound = wf_hpack_encode_bound(got.h, got.n);
		uint8_t *out = malloc(bound);
		ENSURE(out != NULL);
		size_t n = wf_hpack_encode(&e2, got.h, got.n, got.flags, out);
		ENSURE(n <= bound);
		reset(&again);
		ENSURE(wf_hpack_decode(&d2, out, n, UINT32_MAX, collect, &again) == 0);
		finish(&again);
		ENSURE(same_lists(&got, &again));
		free(out);
	}
	wf_hpack_dec_free(&d);
	wf_hpack_dec_free(&d2);
	wf_hpack_enc_free(&e2);
	free(got.store);
	free(again.store);
	return 0;
}
