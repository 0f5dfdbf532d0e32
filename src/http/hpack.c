/* HPACK (RFC 7541): the static table, the dynamic table, and the block decoder and encoder.
 *
 * The dynamic table keeps its strings in one byte ring and its entries in a ring of slots:
 *
 *   entries  [slot id & e_mask]: off, nl, vl (+ hash links)   ids count insertions; the live
 *                                                             ones are ins - n .. ins - 1,
 *                                                             HPACK index 62 is ins - 1
 *   strings  buf[cap]: ...| name value | name value |...      an entry's name and value are
 *                         ^ off & (cap - 1)                   contiguous: an entry that would
 *                                                             cross the end starts over at 0
 *
 * Offsets are logical (they only grow; buf[off & (cap - 1)]), so the bytes in use are
 * tail - off of the oldest entry, skipped ends included. Both rings grow (by copying the live
 * entries) only when an entry does not fit, so the memory follows what the peer actually
 * stores, up to about twice the table size; after that an insertion is a copy and no
 * allocation.
 *
 * The encoder looks a field up, cheapest first: the static table (by length, first and last
 * byte of the name, no hash); the entry last added with the same static name (by_static: a
 * Content-Type or Server that does not change is found without hashing); then two chained
 * hash indexes, on (name, value) and on name (for names the static table lacks): each bucket
 * holds the newest id with that hash, each entry the next older id. Evicted entries are never
 * unlinked: a walk stops at the first id that is no longer live (all older ones are gone
 * too), and after at most n steps. Literals it sends again and again (a name no table holds,
 * a Date within its second) come from a small cache of their coding. */
#include "http/hpack.h"

#include "core/str.h"
#include "http/hpack_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define ENTRY_OVERHEAD 32 /* §4.1 */
#define STATIC_N 61
#define BUCKETS 128 /* per encoder hash index */
#define LITS 8       /* coded literals the encoder keeps */
#define LIT_MIN 8    /* ... of this many bytes */
#define LIT_MAX 48   /* ... to this many */

/* A string the encoder sent as a literal, and its coding (length prefix included). */
struct wf_hpack_lit {
	uint32_t hash;
	uint8_t n, len; /* n 0: an empty slot */
	uint8_t raw[LIT_MAX];
	uint8_t coded[LIT_MAX + 1];
};

struct wf_hpack_entry {
	uint32_t off; /* logical offset of the name; the value follows it */
	uint32_t nl, vl;
	/* encoder only: */
	uint32_t hn, hnv;          /* hashes of the name and of (name, value) */
	uint32_t next_n, next_nv;  /* the next older id in the same bucket */
};

struct wf_hpack_table {
	struct wf_hpack_entry *e;
	uint32_t e_mask; /* slots - 1 (a power of two minus one), or 0 before the first entry */
	uint32_t ins;    /* id of the next entry */
	uint32_t n;      /* live entries */
	uint32_t size;   /* their size, nl + vl + 32 each */
	uint32_t max;    /* the current maximum size */
	uint8_t *buf;
	uint32_t cap;    /* bytes in buf: 0 or a power of two */
	uint32_t tail;   /* logical offset where the next entry goes */
	uint32_t *bucket_n, *bucket_nv; /* encoder only: BUCKETS ids each */
	struct wf_hpack_lit *lits;      /* encoder only: LITS, by hash */
	uint32_t *by_static;            /* encoder only: by static name index, the newest id with it */
	uint8_t *scratch;               /* decoder only: Huffman-decoded strings of one field */
	size_t scratch_cap;
};

/* ---- the static table (Appendix A) ---- */

struct static_entry {
	const char *name, *value;
	uint8_t nl, vl;
	uint8_t group; /* entries from this one on with the same name */
};

#define S(n, v) {n, v, sizeof(n) - 1, sizeof(v) - 1, 0}
static struct static_entry static_table[STATIC_N + 1] = {
	{0},
	S(":authority", ""), S(":method", "GET"), S(":method", "POST"), S(":path", "/"),
	S(":path", "/index.html"), S(":scheme", "http"), S(":scheme", "https"), S(":status", "200"),
	S(":status", "204"), S(":status", "206"), S(":status", "304"), S(":status", "400"),
	S(":status", "404"), S(":status", "500"), S("accept-charset", ""),
	S("accept-encoding", "gzip, deflate"), S("accept-language", ""), S("accept-ranges", ""),
	S("accept", ""), S("access-control-allow-origin", ""), S("age", ""), S("allow", ""),
	S("authorization", ""), S("cache-control", ""), S("content-disposition", ""),
	S("content-encoding", ""), S("content-language", ""), S("content-length", ""),
	S("content-location", ""), S("content-range", ""), S("content-type", ""), S("cookie", ""),
	S("date", ""), S("etag", ""), S("expect", ""), S("expires", ""), S("from", ""), S("host", ""),
	S("if-match", ""), S("if-modified-since", ""), S("if-none-match", ""), S("if-range", ""),
	S("if-unmodified-since", ""), S("last-modified", ""), S("link", ""), S("location", ""),
	S("max-forwards", ""), S("proxy-authenticate", ""), S("proxy-authorization", ""),
	S("range", ""), S("referer", ""), S("refresh", ""), S("retry-after", ""), S("server", ""),
	S("set-cookie", ""), S("strict-transport-security", ""), S("transfer-encoding", ""),
	S("user-agent", ""), S("vary", ""), S("via", ""), S("www-authenticate", ""),
};
#undef S

/* Static names by a key on (length, first and last byte), which tells all 52 apart; open
 * addressing: the first static index with that name, or 0. */
#define STATIC_SLOTS 256
#define STATIC_LONGEST 27 /* access-control-allow-origin */
static uint8_t static_by_name[STATIC_SLOTS];
static pthread_once_t static_once = PTHREAD_ONCE_INIT;

static inline unsigned static_key(const char *name, uint32_t nl)
{
	return (nl * 131 + (uint8_t)name[0] * 7 + (uint8_t)name[nl - 1]) % STATIC_SLOTS;
}

/* a[0..n) == b[0..n), and a copy: inline, as the strings are mostly short (a libc call
 * costs more than the work for a header name). */
static inline int same(const void *a, const void *b, size_t n)
{
	const uint8_t *p = a, *q = b;
	if (n >= 8) {
		for (size_t i = 0; i + 8 < n; i += 8) {
			if (wf_load64(p + i) != wf_load64(q + i))
				return 0;
		}
		return wf_load64(p + n - 8) == wf_load64(q + n - 8);
	}
	if (n >= 4)
		return wf_load32(p) == wf_load32(q) && wf_load32(p + n - 4) == wf_load32(q + n - 4);
	/* 1 to 3 bytes: the first, the middle and the last are all of them */
	return n == 0 || (p[0] == q[0] && p[n >> 1] == q[n >> 1] && p[n - 1] == q[n - 1]);
}

static inline void copy(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
	if (n >= 8) {
		uint64_t last = wf_load64(s + n - 8);
		for (size_t i = 0; i + 8 < n; i += 8) {
			uint64_t v = wf_load64(s + i);
			memcpy(d + i, &v, 8);
		}
		memcpy(d + n - 8, &last, 8);
		return;
	}
	for (size_t i = 0; i < n; i++)
		d[i] = s[i];
}

static inline uint64_t mix(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* A fast hash for short strings (a multiply-fold over overlapping loads, as in wyhash): a
 * few instructions for a header name, no call. Not meant to resist chosen collisions: a
 * collision only lengthens a bucket walk, which is bounded by the table's entry count. */
static uint64_t hash(const void *data, size_t n, uint64_t seed)
{
	const uint8_t *p = data;
	uint64_t a, b;

	seed ^= 0xa0761d6478bd642full;
	if (n <= 16) {
		if (n >= 4) {
			size_t k = (n >> 3) << 2;
			a = wf_load32(p) << 32 | wf_load32(p + k);
			b = wf_load32(p + n - 4) << 32 | wf_load32(p + n - 4 - k);
		} else if (n > 0) {
			a = (uint64_t)p[0] << 16 | (uint64_t)p[n >> 1] << 8 | p[n - 1];
			b = 0;
		} else {
			a = b = 0;
		}
	} else {
		size_t i = n;
		for (; i > 16; i -= 16, p += 16)
			seed = mix(wf_load64(p) ^ 0xe7037ed1a0b428dbull, wf_load64(p + 8) ^ seed);
		a = wf_load64(p + i - 16);
		b = wf_load64(p + i - 8);
	}
	return mix(0xe7037ed1a0b428dbull ^ n, mix(a ^ 0xe7037ed1a0b428dbull, b ^ seed));
}

static void static_build(void)
{
	for (unsigned i = STATIC_N; i >= 1; i--) {
		struct static_entry *s = &static_table[i];
		s->group = i < STATIC_N && static_table[i + 1].nl == s->nl &&
		                   memcmp(static_table[i + 1].name, s->name, s->nl) == 0
		               ? static_table[i + 1].group + 1
		               : 1;
	}
	for (unsigned i = 1; i <= STATIC_N; i += static_table[i].group) {
		unsigned k = static_key(static_table[i].name, static_table[i].nl);
		while (static_by_name[k])
			k = (k + 1) % STATIC_SLOTS;
		static_by_name[k] = (uint8_t)i;
	}
}

static void hpack_init(void)
{
	pthread_once(&static_once, static_build);
	wf_hpack_huff_init();
}

/* The first static index whose name is name[0..nl), or 0. */
static inline unsigned static_find(const char *name, uint32_t nl)
{
	if (nl == 0 || nl > STATIC_LONGEST)
		return 0;
	for (unsigned k = static_key(name, nl);; k = (k + 1) % STATIC_SLOTS) {
		unsigned i = static_by_name[k];
		if (i == 0)
			return 0;
		if (static_table[i].nl == nl && same(static_table[i].name, name, nl))
			return i;
	}
}

/* ---- the dynamic table ---- */

static struct wf_hpack_table *table_new(uint32_t max, int indexed)
{
	struct wf_hpack_table *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->max = max;
	t->ins = 1;
	if (indexed) {
		t->bucket_n = calloc(2 * BUCKETS, sizeof *t->bucket_n);
		t->lits = calloc(LITS, sizeof *t->lits);
		t->by_static = calloc(STATIC_N + 1, sizeof *t->by_static);
		if (!t->bucket_n || !t->lits || !t->by_static) {
			free(t->bucket_n);
			free(t->lits);
			free(t->by_static);
			free(t);
			return NULL;
		}
		t->bucket_nv = t->bucket_n + BUCKETS;
	}
	return t;
}

static void table_free(struct wf_hpack_table *t)
{
	if (!t)
		return;
	free(t->e);
	free(t->buf);
	free(t->bucket_n);
	free(t->lits);
	free(t->by_static);
	free(t->scratch);
	free(t);
}

static inline struct wf_hpack_entry *entry(const struct wf_hpack_table *t, uint32_t id)
{
	return &t->e[id & t->e_mask];
}

static inline const char *entry_name(const struct wf_hpack_table *t, const struct wf_hpack_entry *x)
{
	return (const char *)t->buf + (x->off & (t->cap - 1));
}

/* Is id one of the live entries? (ids of evicted entries are older than ins - n) */
static inline int live(const struct wf_hpack_table *t, uint32_t id)
{
	return t->ins - id - 1 < t->n;
}

static void evict_to(struct wf_hpack_table *t, uint32_t size)
{
	while (t->size > size) {
		struct wf_hpack_entry *x = entry(t, t->ins - t->n);
		t->size -= x->nl + x->vl + ENTRY_OVERHEAD;
		t->n--;
	}
}

static void table_resize(struct wf_hpack_table *t, uint32_t max)
{
	t->max = max;
	evict_to(t, max);
}

/* Where an entry of len bytes would go (a logical offset), or 0 with *fits false. */
static uint32_t place(const struct wf_hpack_table *t, uint32_t len, int *fits)
{
	uint32_t at = t->tail, pos = at & (t->cap - 1);
	if (t->cap && pos + len > t->cap)
		at += t->cap - pos;
	uint32_t oldest = t->n ? entry(t, t->ins - t->n)->off : at;
	*fits = t->cap && at + len - oldest <= t->cap;
	return at;
}

/* Makes room for one more entry of len bytes (the table already evicted for it): copies the
 * live entries into larger rings. The old string ring is returned in *old, to be freed once
 * the new entry is copied (its name may still point there). 0, or -1 out of memory. */
static int table_grow(struct wf_hpack_table *t, uint32_t len, uint8_t **old)
{
	*old = NULL;
	if (t->n + 1 > t->e_mask) { /* room for ids ins - n .. ins, and one to spare */
		uint32_t slots = t->e_mask ? 2 * (t->e_mask + 1) : 16;
		struct wf_hpack_entry *e = malloc(slots * sizeof *e);
		if (!e)
			return -1;
		for (uint32_t id = t->ins - t->n; id != t->ins; id++)
			e[id & (slots - 1)] = *entry(t, id);
		free(t->e);
		t->e = e;
		t->e_mask = slots - 1;
	}
	int fits;
	place(t, len, &fits);
	if (fits)
		return 0;

	uint64_t live_bytes = len;
	for (uint32_t id = t->ins - t->n; id != t->ins; id++)
		live_bytes += entry(t, id)->nl + entry(t, id)->vl;
	uint64_t cap = t->cap ? 2 * (uint64_t)t->cap : 256;
	while (cap < 2 * live_bytes)
		cap *= 2;
	if (cap > (1u << 31))
		return -1;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return -1;
	uint32_t off = 0;
	for (uint32_t id = t->ins - t->n; id != t->ins; id++) {
		struct wf_hpack_entry *x = entry(t, id);
		memcpy(buf + off, entry_name(t, x), x->nl + x->vl);
		x->off = off;
		off += x->nl + x->vl;
	}
	*old = t->buf;
	t->buf = buf;
	t->cap = (uint32_t)cap;
	t->tail = off;
	return 0;
}

/* Adds (name, value) as the newest entry, evicting as §4.4 says. name may point into the
 * table itself (an indexed name). 1 added, 0 not (larger than the table: now empty), -1 out
 * of memory (the table may have evicted). */
static int table_add(struct wf_hpack_table *t, const char *name, uint32_t nl, const char *value,
                     uint32_t vl, struct wf_hpack_entry **added)
{
	uint64_t size = (uint64_t)nl + vl + ENTRY_OVERHEAD;
	if (size > t->max) {
		evict_to(t, 0);
		return 0;
	}
	evict_to(t, t->max - (uint32_t)size);

	uint8_t *old = NULL;
	int fits;
	place(t, nl + vl, &fits);
	if ((!fits || t->n + 1 > t->e_mask) && table_grow(t, nl + vl, &old) < 0)
		return -1;
	uint32_t at = place(t, nl + vl, &fits);
	uint8_t *dst = t->buf + (at & (t->cap - 1));
	memmove(dst, name, nl); /* the name may be an evicted entry's, where dst is */
	memcpy(dst + nl, value, vl);
	free(old);

	struct wf_hpack_entry *x = entry(t, t->ins);
	*x = (struct wf_hpack_entry){.off = at, .nl = nl, .vl = vl};
	t->tail = at + nl + vl;
	t->ins++;
	t->n++;
	t->size += (uint32_t)size;
	*added = x;
	return 1;
}

uint32_t wf_hpack_table_size(const struct wf_hpack_table *t, uint32_t *entries)
{
	*entries = t->n;
	return t->size;
}

/* ---- integers and strings (§5) ---- */

/* The continuation octets of an integer whose prefix was all ones (§5.1): at most 2^32 - 1,
 * in at most 5 octets, none of them a redundant zero at the end. 0, or -1. */
static int get_int_tail(const uint8_t **pp, const uint8_t *end, uint32_t *v)
{
	const uint8_t *p = *pp;
	uint64_t acc = *v;
	unsigned shift = 0;
	uint8_t b;

	do {
		if (p == end || shift > 28)
			return -1;
		b = *p++;
		if (b == 0 && shift > 0)
			return -1;
		acc += (uint64_t)(b & 0x7f) << shift;
		shift += 7;
	} while (b & 0x80);
	if (acc > UINT32_MAX)
		return -1;
	*pp = p;
	*v = (uint32_t)acc;
	return 0;
}

/* Reads an integer with an N-bit prefix at *pp (which is before end). 0, or -1. */
static inline int get_int(const uint8_t **pp, const uint8_t *end, unsigned prefix, uint32_t *v)
{
	uint32_t mask = (1u << prefix) - 1;
	*v = **pp & mask;
	(*pp)++;
	return *v == mask ? get_int_tail(pp, end, v) : 0;
}

static inline uint8_t *put_int(uint8_t *o, uint8_t first, unsigned prefix, uint32_t v)
{
	uint32_t mask = (1u << prefix) - 1;
	if (v < mask) {
		*o++ = (uint8_t)(first | v);
		return o;
	}
	*o++ = (uint8_t)(first | mask);
	for (v -= mask; v >= 128; v >>= 7)
		*o++ = (uint8_t)(0x80 | (v & 0x7f));
	*o++ = (uint8_t)v;
	return o;
}

/* A string literal, Huffman-coded when that is shorter. A short one (under 127 bytes, so both
 * lengths fit the 7-bit prefix) is coded in place in one pass, and copied plain if that fails;
 * a longer one has its coded length counted first, as the prefix may take more octets. */
static uint8_t *put_string(uint8_t *o, const char *s, uint32_t n)
{
	const uint8_t *u = (const uint8_t *)s;
	if (n < 127) {
		/* two bytes or less never code shorter: codes are 5 bits at least */
		long hl = n > 2 ? wf_hpack_huff_encode_shorter(o + 1, u, n) : -1;
		if (hl >= 0) {
			*o = (uint8_t)(0x80 | hl);
			return o + 1 + hl;
		}
		*o = (uint8_t)n;
		copy(o + 1, s, n);
		return o + 1 + n;
	}
	size_t hl = wf_hpack_huff_len(u, n);
	if (hl < n) {
		o = put_int(o, 0x80, 7, (uint32_t)hl);
		return wf_hpack_huff_encode(o, u, n);
	}
	o = put_int(o, 0, 7, n);
	memcpy(o, s, n);
	return o + n;
}

/* ---- decoder ---- */

void wf_hpack_dec_init(struct wf_hpack_dec *d, uint32_t settings_max)
{
	hpack_init();
	d->settings_max = settings_max;
	d->t = table_new(settings_max, 0);
}

void wf_hpack_dec_free(struct wf_hpack_dec *d)
{
	table_free(d->t);
	d->t = NULL;
}

struct field {
	const char *name, *value;
	uint32_t nl, vl;
};

/* Huffman-coded strings the decoder met lately, and their decoding: the same values come in
 * message after message (a peer that does not index its Date, Server, ETag...), and decoding
 * is a pure function, so one small cache per thread serves every connection. Two ways a set:
 * two values a response carries every time must not take turns at one slot (nginx's gRPC
 * answer did, a trailer name and an ETag). */
#define DLITS 32 /* entries: DLITS / 2 sets of two */
#define DLIT_MAX 48 /* coded bytes; decoded, at most 8/5 of that */
struct dlit {
	uint64_t hash;
	uint8_t n, len; /* n 0: an empty slot */
	uint8_t coded[DLIT_MAX];
	uint8_t raw[DLIT_MAX * 8 / 5];
};
static __thread struct dlit *dlits;

void wf_hpack_thread_exit(void)
{
	free(dlits);
	dlits = NULL;
}

static inline int dlit_is(const struct dlit *c, const uint8_t *p, uint32_t n, uint64_t h)
{
	return c->n == n && c->hash == h && same(c->coded, p, n);
}

/* Decodes the n Huffman-coded bytes at p into out: the decoded length, or -1. */
static long huff_decode_cached(uint8_t *out, const uint8_t *p, uint32_t n)
{
	if (n < LIT_MIN || n > DLIT_MAX)
		return wf_hpack_huff_decode(out, p, n);
	if (!dlits && !(dlits = calloc(DLITS, sizeof *dlits)))
		return wf_hpack_huff_decode(out, p, n);
	uint64_t h = hash(p, n, 0);
	struct dlit *set = &dlits[h % (DLITS / 2) * 2], *c = set;
	if (dlit_is(c, p, n, h) || dlit_is(++c, p, n, h)) {
		copy(out, c->raw, c->len);
		return c->len;
	}
	long dl = wf_hpack_huff_decode(out, p, n);
	if (dl >= 0) { /* the newest in way 0, the one it displaces in way 1 */
		set[1] = set[0];
		c = set;
		c->hash = h;
		c->n = (uint8_t)n;
		c->len = (uint8_t)dl;
		memcpy(c->coded, p, n);
		memcpy(c->raw, out, (size_t)dl);
	}
	return dl;
}

/* Reads a string literal at *pp into *s, *len: raw bytes point into the block, Huffman ones
 * are decoded into the scratch buffer at *used. 0, or -1. */
static inline int get_string(struct wf_hpack_table *t, const uint8_t **pp, const uint8_t *end, size_t *used,
                      const char **s, uint32_t *len)
{
	const uint8_t *p = *pp;
	int huff = *p & 0x80;
	uint32_t n;

	if (get_int(&p, end, 7, &n) < 0 || n > (size_t)(end - p))
		return -1;
	if (!huff) {
		*s = (const char *)p;
		*len = n;
	} else {
		long dl = huff_decode_cached(t->scratch + *used, p, n);
		if (dl < 0)
			return -1;
		*s = (const char *)t->scratch + *used;
		*len = (uint32_t)dl;
		*used += (size_t)dl;
	}
	*pp = p + n;
	return 0;
}

/* The field at HPACK index i (1-based, static then dynamic). 0, or -1 for an index out of
 * range. */
static inline int get_indexed(const struct wf_hpack_table *t, uint32_t i, struct field *f)
{
	if (i >= 1 && i <= STATIC_N) {
		const struct static_entry *s = &static_table[i];
		*f = (struct field){s->name, s->value, s->nl, s->vl};
		return 0;
	}
	i -= STATIC_N; /* 0 (index 0) wraps to over n */
	if (i - 1 >= t->n)
		return -1;
	const struct wf_hpack_entry *x = entry(t, t->ins - i);
	f->name = entry_name(t, x);
	f->value = f->name + x->nl;
	f->nl = x->nl;
	f->vl = x->vl;
	return 0;
}

int wf_hpack_table_get(const struct wf_hpack_table *t, uint32_t i, const char **name, uint32_t *nl,
                       const char **value, uint32_t *vl)
{
	struct field f;
	if (i == 0 || get_indexed(t, STATIC_N + i, &f) < 0)
		return -1;
	*name = f.name;
	*nl = f.nl;
	*value = f.value;
	*vl = f.vl;
	return 0;
}

int wf_hpack_decode(struct wf_hpack_dec *d, const uint8_t *p, size_t n, uint32_t max_list, wf_hpack_emit emit,
                    void *ctx)
{
	struct wf_hpack_table *t = d->t;
	const uint8_t *end = p + n;
	uint64_t list = 0;
	int rc = 0, reporting = 1, fields = 0;

	if (!t)
		return WF_HPACK_ERROR;
	/* a Huffman string decodes to at most 8/5 of its length (+ 1 byte the decoder may store
	 * past its end): room for a name and a value */
	size_t need = n + n / 2 + n / 8 + 8;
	if (t->scratch_cap < need) {
		uint8_t *s = realloc(t->scratch, need);
		if (!s)
			return WF_HPACK_ERROR;
		t->scratch = s;
		t->scratch_cap = need;
	}
	/* a lowered SETTINGS_HEADER_TABLE_SIZE must be acknowledged by a size update (§4.2) */
	int update_due = t->max > d->settings_max;

	while (p < end) {
		uint8_t b = *p;
		uint32_t idx;
		struct field f;
		int index = 0;
		unsigned how = 0;
		size_t used = 0;

		if ((b & 0xe0) == 0x20) { /* Dynamic Table Size Update (§6.3) */
			if (fields || get_int(&p, end, 5, &idx) < 0 || idx > d->settings_max)
				return WF_HPACK_ERROR;
			table_resize(t, idx);
			update_due = 0;
			continue;
		}
		if (update_due)
			return WF_HPACK_ERROR;
		fields++;
		if (b & 0x80) { /* Indexed Header Field (§6.1) */
			if (get_int(&p, end, 7, &idx) < 0 || get_indexed(t, idx, &f) < 0)
				return WF_HPACK_ERROR;
			how = idx <= STATIC_N ? WF_HPACK_STATIC_NAME | WF_HPACK_STATIC_VALUE : 0;
		} else {
			/* Literal Header Field (§6.2): with incremental indexing (01), without (0000),
			 * never indexed (0001) */
			index = b & 0x40;
			how = (b & 0xf0) == 0x10 ? WF_HPACK_NEVER_INDEXED : 0;
			if (get_int(&p, end, index ? 6 : 4, &idx) < 0)
				return WF_HPACK_ERROR;
			if (idx) {
				if (get_indexed(t, idx, &f) < 0)
					return WF_HPACK_ERROR;
				how |= idx <= STATIC_N ? WF_HPACK_STATIC_NAME : 0;
			} else if (p == end || get_string(t, &p, end, &used, &f.name, &f.nl) < 0) {
				return WF_HPACK_ERROR;
			}
			if (p == end || get_string(t, &p, end, &used, &f.value, &f.vl) < 0)
				return WF_HPACK_ERROR;
		}

		if (reporting) {
			list += (uint64_t)f.nl + f.vl + ENTRY_OVERHEAD;
			int r = list > max_list ? WF_HPACK_TOO_LARGE : emit(ctx, f.name, f.nl, f.value, f.vl, how);
			if (r < 0) {
				rc = r;
				reporting = 0;
			}
		}
		struct wf_hpack_entry *added;
		if (index && table_add(t, f.name, f.nl, f.value, f.vl, &added) < 0)
			return WF_HPACK_ERROR;
	}
	return update_due ? WF_HPACK_ERROR : rc;
}

/* ---- encoder ---- */

static inline uint32_t min32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

void wf_hpack_enc_init(struct wf_hpack_enc *e, uint32_t own_max)
{
	hpack_init();
	e->own_max = own_max;
	e->peer_max = 4096;
	e->min_seen = min32(own_max, 4096);
	/* the peer's decoder starts at 4096: tell it when we use less */
	e->update = own_max < 4096;
	e->t = table_new(e->min_seen, 1);
}

void wf_hpack_enc_free(struct wf_hpack_enc *e)
{
	table_free(e->t);
	e->t = NULL;
}

void wf_hpack_enc_peer_max(struct wf_hpack_enc *e, uint32_t size)
{
	uint32_t cur = min32(e->own_max, e->peer_max), next = min32(e->own_max, size);
	e->peer_max = size;
	if (next == cur)
		return;
	if (e->t)
		table_resize(e->t, next);
	e->min_seen = min32(e->min_seen, next);
	e->update = 1;
}

size_t wf_hpack_encode_bound(const struct wf_hdr *h, uint32_t n)
{
	size_t bound = 2 * 6; /* two size updates */
	for (uint32_t i = 0; i < n; i++)
		bound += (size_t)h[i].name_len + h[i].value_len + 1 + 6 + 6;
	return bound;
}

/* The HPACK index of the newest dynamic entry named name (hash hn), or 0. */
static uint32_t dyn_find_name(const struct wf_hpack_table *t, const struct wf_hdr *h, uint32_t hn)
{
	uint32_t id = t->bucket_n[hn % BUCKETS];
	for (uint32_t steps = t->n; steps > 0 && live(t, id); steps--) {
		const struct wf_hpack_entry *x = entry(t, id);
		if (x->hn == hn && x->nl == h->name_len && same(entry_name(t, x), h->name, h->name_len))
			return STATIC_N + t->ins - id;
		id = x->next_n;
	}
	return 0;
}

/* The HPACK index of the newest dynamic entry equal to *h (hash hnv), or 0. */
static uint32_t dyn_find(const struct wf_hpack_table *t, const struct wf_hdr *h, uint32_t hnv)
{
	uint32_t id = t->bucket_nv[hnv % BUCKETS];
	for (uint32_t steps = t->n; steps > 0 && live(t, id); steps--) {
		const struct wf_hpack_entry *x = entry(t, id);
		if (x->hnv == hnv && x->nl == h->name_len && x->vl == h->value_len) {
			const char *name = entry_name(t, x);
			if (same(name, h->name, x->nl) && same(name + x->nl, h->value, x->vl))
				return STATIC_N + t->ins - id;
		}
		id = x->next_nv;
	}
	return 0;
}

/* Codes a string that missed the literal cache, and keeps it in slot c. Out of line, so that
 * a hit costs no more than the comparison and the copy. */
static __attribute__((noinline)) uint8_t *lit_fill(struct wf_hpack_lit *c, uint8_t *o, const char *s, uint32_t n,
                                                   uint32_t h)
{
	uint8_t *end = put_string(o, s, n);
	c->hash = h;
	c->n = (uint8_t)n;
	c->len = (uint8_t)(end - o);
	memcpy(c->raw, s, n);
	memcpy(c->coded, o, c->len);
	return end;
}

/* A string sent as a literal again and again (a name no table holds, a Date value within its
 * second) is coded once, then copied from a small direct-mapped cache: h is its hash. */
static inline uint8_t *put_string_cached(struct wf_hpack_table *t, uint8_t *o, const char *s, uint32_t n,
                                         uint64_t h)
{
	struct wf_hpack_lit *c = &t->lits[h % LITS];
	if (c->n != n || c->hash != (uint32_t)h || !same(c->raw, s, n))
		return lit_fill(c, o, s, n, (uint32_t)h);
	copy(o, c->coded, c->len);
	return o + c->len;
}

static inline int cacheable(const struct wf_hpack_table *t, uint32_t n)
{
	return t && n >= LIT_MIN && n <= LIT_MAX;
}

/* How put_literal sends the value. */
enum value_coding {
	V_CODED,  /* Huffman-coded when shorter */
	V_CACHED, /* the same, through the literal cache: values not indexed, and not sensitive */
	V_PLAIN,  /* as it is (WF_HPACK_UNIQUE) */
};

/* A literal: the representation's first-octet pattern and prefix, the name as an index when
 * name_idx is not 0 (else the name, hash hn), then the value. */
static uint8_t *put_literal(struct wf_hpack_table *t, uint8_t *o, uint8_t first, unsigned prefix, uint32_t name_idx,
                            const struct wf_hdr *h, uint64_t hn, enum value_coding vc)
{
	o = put_int(o, first, prefix, name_idx);
	if (!name_idx)
		o = cacheable(t, h->name_len) ? put_string_cached(t, o, h->name, h->name_len, hn)
		                              : put_string(o, h->name, h->name_len);
	/* a value that changes (a Date) is best kept in the same slot as before: by its length and
	 * first byte, not by a hash of it */
	if (vc == V_CACHED && cacheable(t, h->value_len))
		return put_string_cached(t, o, h->value, h->value_len, h->value_len * 31 + (uint8_t)h->value[0]);
	if (vc == V_PLAIN) {
		o = put_int(o, 0, 7, h->value_len);
		copy(o, h->value, h->value_len);
		return o + h->value_len;
	}
	return put_string(o, h->value, h->value_len);
}

static uint8_t *encode_field(struct wf_hpack_enc *e, const struct wf_hdr *h, uint8_t flags, uint8_t *o)
{
	struct wf_hpack_table *t = e->t;
	uint32_t si = static_find(h->name, h->name_len);

	if (si && !(flags & WF_HPACK_NEVER)) {
		for (uint32_t i = si; i < si + static_table[si].group; i++) {
			if (static_table[i].vl == h->value_len && same(static_table[i].value, h->value, h->value_len))
				return put_int(o, 0x80, 7, i);
		}
	}
	/* the name hash is needed only to look for the name in the dynamic table */
	if (flags & (WF_HPACK_NEVER | WF_HPACK_NO_INDEX) || !t) {
		uint64_t hash_n = si || !t ? 0 : hash(h->name, h->name_len, 0);
		uint32_t name_idx = si ? si : t ? dyn_find_name(t, h, (uint32_t)hash_n) : 0;
		if (flags & WF_HPACK_NEVER)
			return put_literal(t, o, 0x10, 4, name_idx, h, hash_n, V_CODED);
		return put_literal(t, o, 0x00, 4, name_idx, h, hash_n, flags & WF_HPACK_UNIQUE ? V_PLAIN : V_CACHED);
	}

	/* a field with a static name is most often the one sent last with that name: no hash */
	if (si && live(t, t->by_static[si])) {
		uint32_t id = t->by_static[si];
		const struct wf_hpack_entry *x = entry(t, id);
		const char *name = entry_name(t, x);
		if (x->nl == h->name_len && x->vl == h->value_len && same(name + x->nl, h->value, x->vl) &&
		    same(name, h->name, x->nl))
			return put_int(o, 0x80, 7, STATIC_N + t->ins - id);
	}
	/* a static name needs no hash of its own: it seeds the value's, and its entries stay out of
	 * the name chains, which are only searched for names the static table does not have */
	uint64_t hash_n = si ? si : hash(h->name, h->name_len, 0);
	uint32_t hn = (uint32_t)hash_n, hnv = (uint32_t)hash(h->value, h->value_len, hash_n);
	uint32_t di = dyn_find(t, h, hnv);
	if (di)
		return put_int(o, 0x80, 7, di);
	uint32_t name_idx = si ? si : dyn_find_name(t, h, hn);

	/* an entry larger than the table would empty it (§4.4): send that one without indexing */
	struct wf_hpack_entry *x;
	if ((uint64_t)h->name_len + h->value_len + ENTRY_OVERHEAD > t->max ||
	    table_add(t, h->name, h->name_len, h->value, h->value_len, &x) <= 0)
		return put_literal(t, o, 0x00, 4, name_idx, h, hash_n, V_CODED);
	x->hn = hn;
	x->hnv = hnv;
	uint32_t id = t->ins - 1;
	if (si) {
		t->by_static[si] = id;
	} else {
		x->next_n = t->bucket_n[hn % BUCKETS];
		t->bucket_n[hn % BUCKETS] = id;
	}
	x->next_nv = t->bucket_nv[hnv % BUCKETS];
	t->bucket_nv[hnv % BUCKETS] = id;
	return put_literal(t, o, 0x40, 6, name_idx, h, hash_n, V_CODED);
}

size_t wf_hpack_encode(struct wf_hpack_enc *e, const struct wf_hdr *h, uint32_t n, const uint8_t *flags,
                       uint8_t *out)
{
	uint8_t *o = out;

	if (e->update) { /* §4.2: the smallest size since the last block, then the current one */
		uint32_t cur = min32(e->own_max, e->peer_max);
		if (e->min_seen < cur)
			o = put_int(o, 0x20, 5, e->min_seen);
		o = put_int(o, 0x20, 5, cur);
		e->min_seen = cur;
		e->update = 0;
	}
	for (uint32_t i = 0; i < n; i++)
		o = encode_field(e, &h[i], flags ? flags[i] : 0, o);
	return (size_t)(o - out);
}
