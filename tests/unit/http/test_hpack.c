/* Unit tests for HPACK (src/http/hpack.c, src/http/hpack_huff.c): the examples of RFC 7541
 * Appendix C, malformed blocks, table size updates and eviction, the field-list limit, and
 * differential tests against nghttp2's HPACK deflater and inflater. */
#include "http/hpack.h"
#include "http/hpack_int.h"
#include "test.h"

#include <nghttp2/nghttp2.h>
#include <stdlib.h>

/* ---- helpers ---- */

#define MAX_FIELDS 64

struct field {
	char name[512], value[512];
	uint32_t nl, vl;
	int never;
	unsigned how;
};

struct list {
	struct field f[MAX_FIELDS];
	uint32_t n;
	int stop_after; /* emit returns -7 after this many fields (0: never) */
};

static int collect(void *ctx, const char *name, uint32_t nl, const char *value, uint32_t vl, unsigned how)
{
	struct list *l = ctx;
	if (l->n == MAX_FIELDS || nl > sizeof l->f[0].name || vl > sizeof l->f[0].value)
		return -99;
	struct field *f = &l->f[l->n++];
	memcpy(f->name, name, nl);
	memcpy(f->value, value, vl);
	f->nl = nl;
	f->vl = vl;
	f->never = (how & WF_HPACK_NEVER_INDEXED) != 0;
	f->how = how;
	return l->stop_after && l->n == (uint32_t)l->stop_after ? -7 : 0;
}

/* Hex to bytes, skipping spaces. */
static size_t unhex(const char *s, uint8_t *out)
{
	size_t n = 0;
	for (; *s; s++) {
		if (*s == ' ')
			continue;
		unsigned v;
		sscanf(s, "%2x", &v);
		out[n++] = (uint8_t)v;
		s++;
	}
	return n;
}

static int decode_hex(struct wf_hpack_dec *d, const char *hex, struct list *l)
{
	static uint8_t buf[4096];
	size_t n = unhex(hex, buf);
	memset(l, 0, sizeof *l);
	return wf_hpack_decode(d, buf, n, 1 << 20, collect, l);
}

static int field_is(const struct field *f, const char *name, const char *value)
{
	return f->nl == strlen(name) && memcmp(f->name, name, f->nl) == 0 && f->vl == strlen(value) &&
	       memcmp(f->value, value, f->vl) == 0;
}

static int entry_is(const struct wf_hpack_table *t, uint32_t i, const char *name, const char *value)
{
	const char *n, *v;
	uint32_t nl, vl;
	return wf_hpack_table_get(t, i, &n, &nl, &v, &vl) == 0 && nl == strlen(name) && memcmp(n, name, nl) == 0 &&
	       vl == strlen(value) && memcmp(v, value, vl) == 0;
}

#define HDR(n, v) {n, v, sizeof(n) - 1, sizeof(v) - 1}

static size_t encode(struct wf_hpack_enc *e, const struct wf_hdr *h, uint32_t n, const uint8_t *flags, uint8_t *out)
{
	size_t len = wf_hpack_encode(e, h, n, flags, out);
	return len <= wf_hpack_encode_bound(h, n) ? len : (size_t)-1;
}

static int bytes_are(const uint8_t *b, size_t n, const char *hex)
{
	uint8_t want[4096];
	size_t wn = unhex(hex, want);
	return n == wn && memcmp(b, want, n) == 0;
}

/* ---- Appendix C ---- */

TEST(c2_literal_representations)
{
	struct wf_hpack_dec d;
	struct list l;
	uint32_t entries;

	wf_hpack_dec_init(&d, 4096);
	/* C.2.1 literal with indexing */
	CHECK_EQ(decode_hex(&d, "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572", &l), 0);
	CHECK(l.n == 1 && field_is(&l.f[0], "custom-key", "custom-header") && !l.f[0].never && l.f[0].how == 0);
	CHECK_EQ(wf_hpack_table_size(d.t, &entries), 55);
	CHECK(entry_is(d.t, 1, "custom-key", "custom-header"));
	/* that entry, indexed (dynamic index 62): nothing static about it */
	CHECK_EQ(decode_hex(&d, "be", &l), 0);
	CHECK(l.n == 1 && field_is(&l.f[0], "custom-key", "custom-header") && l.f[0].how == 0);
	wf_hpack_dec_free(&d);

	/* C.2.2 literal without indexing */
	wf_hpack_dec_init(&d, 4096);
	CHECK_EQ(decode_hex(&d, "040c 2f73 616d 706c 652f 7061 7468", &l), 0);
	CHECK(l.n == 1 && field_is(&l.f[0], ":path", "/sample/path") && !l.f[0].never);
	CHECK_EQ(l.f[0].how, WF_HPACK_STATIC_NAME); /* the name by static index 4 */
	CHECK_EQ(wf_hpack_table_size(d.t, &entries), 0);
	/* C.2.3 literal never indexed */
	CHECK_EQ(decode_hex(&d, "1008 7061 7373 776f 7264 0673 6563 7265 74", &l), 0);
	CHECK(l.n == 1 && field_is(&l.f[0], "password", "secret") && l.f[0].never);
	CHECK_EQ(l.f[0].how, WF_HPACK_NEVER_INDEXED);
	CHECK_EQ(wf_hpack_table_size(d.t, &entries), 0);
	/* C.2.4 indexed */
	CHECK_EQ(decode_hex(&d, "82", &l), 0);
	CHECK(l.n == 1 && field_is(&l.f[0], ":method", "GET"));
	CHECK_EQ(l.f[0].how, WF_HPACK_STATIC_NAME | WF_HPACK_STATIC_VALUE);
	CHECK_EQ(wf_hpack_table_size(d.t, &entries), 0);
	wf_hpack_dec_free(&d);
}

static const struct wf_hdr req1[] = {HDR(":method", "GET"), HDR(":scheme", "http"), HDR(":path", "/"),
                                     HDR(":authority", "www.example.com")};
static const struct wf_hdr req2[] = {HDR(":method", "GET"), HDR(":scheme", "http"), HDR(":path", "/"),
                                     HDR(":authority", "www.example.com"), HDR("cache-control", "no-cache")};
static const struct wf_hdr req3[] = {HDR(":method", "GET"), HDR(":scheme", "https"), HDR(":path", "/index.html"),
                                     HDR(":authority", "www.example.com"), HDR("custom-key", "custom-value")};

static int list_is(const struct list *l, const struct wf_hdr *h, uint32_t n)
{
	if (l->n != n)
		return 0;
	for (uint32_t i = 0; i < n; i++) {
		if (l->f[i].nl != h[i].name_len || memcmp(l->f[i].name, h[i].name, h[i].name_len) != 0 ||
		    l->f[i].vl != h[i].value_len || memcmp(l->f[i].value, h[i].value, h[i].value_len) != 0)
			return 0;
	}
	return 1;
}

/* One block of an Appendix C sequence: the fields it holds, and the dynamic table after it
 * (its size, and its entries from the newest). */
struct c_step {
	const struct wf_hdr *fields;
	uint32_t n, size;
	const char *table[4][2];
};

static void check_sequence(uint32_t table_max, const char *const hex[3], const struct c_step step[3])
{
	struct wf_hpack_dec d;
	struct list l;
	uint32_t entries, k;

	wf_hpack_dec_init(&d, table_max);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(decode_hex(&d, hex[i], &l), 0);
		CHECK(list_is(&l, step[i].fields, step[i].n));
		CHECK_EQ(wf_hpack_table_size(d.t, &entries), step[i].size);
		for (k = 0; k < 4 && step[i].table[k][0]; k++)
			CHECK(entry_is(d.t, k + 1, step[i].table[k][0], step[i].table[k][1]));
		CHECK_EQ(entries, k);
	}
	wf_hpack_dec_free(&d);
}

/* C.3 (plain) and C.4 (Huffman): three requests on one connection. */
static const struct c_step requests[3] = {
	{req1, 4, 57, {{":authority", "www.example.com"}}},
	{req2, 5, 110, {{"cache-control", "no-cache"}, {":authority", "www.example.com"}}},
	{req3, 5, 164, {{"custom-key", "custom-value"}, {"cache-control", "no-cache"}, {":authority", "www.example.com"}}},
};

static const char *const c3[3] = {
	"8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
	"8286 84be 5808 6e6f 2d63 6163 6865",
	"8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
};
static const char *const c4[3] = {
	"8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
	"8286 84be 5886 a8eb 1064 9cbf",
	"8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
};

static const struct wf_hdr resp1[] = {HDR(":status", "302"), HDR("cache-control", "private"),
                                      HDR("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                                      HDR("location", "https://www.example.com")};
static const struct wf_hdr resp2[] = {HDR(":status", "307"), HDR("cache-control", "private"),
                                      HDR("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                                      HDR("location", "https://www.example.com")};
static const struct wf_hdr resp3[] = {
	HDR(":status", "200"), HDR("cache-control", "private"), HDR("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
	HDR("location", "https://www.example.com"), HDR("content-encoding", "gzip"),
	HDR("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1")};

/* C.5 (plain) and C.6 (Huffman): three responses with a 256-byte table, so with eviction. */
static const struct c_step responses[3] = {
	{resp1, 4, 222,
	 {{"location", "https://www.example.com"}, {"date", "Mon, 21 Oct 2013 20:13:21 GMT"},
	  {"cache-control", "private"}, {":status", "302"}}},
	{resp2, 4, 222,
	 {{":status", "307"}, {"location", "https://www.example.com"}, {"date", "Mon, 21 Oct 2013 20:13:21 GMT"},
	  {"cache-control", "private"}}},
	{resp3, 6, 215,
	 {{"set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"}, {"content-encoding", "gzip"},
	  {"date", "Mon, 21 Oct 2013 20:13:22 GMT"}}},
};

static const char *const c5[3] = {
	"4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 "
	"3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
	"4803 3330 37c1 c0bf",
	"88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 "
	"7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 "
	"6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
};
#define C6_1                                                                                       \
	"4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad " \
	"1718 63c7 8f0b 97c8 e9ae 82ae 43d3"
#define C6_3                                                                                       \
	"88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 " \
	"e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07"
static const char *const c6[3] = {C6_1, "4883 640e ffc1 c0bf", C6_3};

TEST(c3_to_c6_decode)
{
	check_sequence(4096, c3, requests);
	check_sequence(4096, c4, requests);
	check_sequence(256, c5, responses);
	check_sequence(256, c6, responses);
}

/* Our encoder on the fields of a sequence gives the bytes want[]. */
static void check_encoder(uint32_t own_max, const struct c_step step[3], const char *const want[3])
{
	struct wf_hpack_enc e;
	uint8_t out[512];
	uint32_t entries;

	wf_hpack_enc_init(&e, own_max);
	for (int i = 0; i < 3; i++) {
		size_t n = encode(&e, step[i].fields, step[i].n, NULL, out);
		CHECK(bytes_are(out, n, want[i]));
		CHECK_EQ(wf_hpack_table_size(e.t, &entries), step[i].size);
	}
	wf_hpack_enc_free(&e);
}

/* The bytes of C.4 exactly (we Huffman-code what is shorter, as C.4 does); and of C.6 with
 * own_max 256, after the size update the first block begins with (3fe101), except that "307"
 * goes as plain text, its Huffman coding being no shorter (3 bytes). */
TEST(c4_c6_encode)
{
	static const char *const c6_ours[3] = {"3fe101 " C6_1, "4803 333037 c1c0bf", C6_3};
	check_encoder(4096, requests, c4);
	check_encoder(256, responses, c6_ours);
}

/* ---- malformed blocks ---- */

TEST(malformed)
{
	static const char *const bad[] = {
		"80",                   /* index 0 */
		"be",                   /* dynamic index on an empty table */
		"ff00",                 /* index 127: out of range */
		"40 00",                /* literal: empty name, no value */
		"ff",                   /* integer cut short */
		"ff 80",                /* integer cut short */
		"ff 80 00",             /* integer with a redundant zero octet */
		"ff ff ff ff ff 0f",    /* integer over 2^32 - 1 */
		"ff 80 80 80 80 80 01", /* integer too long */
		"40 05 61",             /* string longer than the block */
		"40",                   /* literal without its name */
		"40 01 61",             /* literal without its value */
		"00 01 61 84 ff ff ff ff",  /* Huffman: EOS */
		"00 01 61 82 1f ff",        /* Huffman: 15 bits of padding */
		"00 01 61 81 18",           /* Huffman: padding not all ones */
		"00 01 61 81 00",           /* Huffman: padding not all ones */
		"00 81 ff 01 61",           /* Huffman name: 8 one bits of padding */
		"82 20",                /* size update after a field */
		"3f e2 1f",             /* size update to 4097, over the setting (4096) */
		"0f 2f 01 61",          /* literal with an indexed name out of range */
		"1f 2f 01 61",          /* never indexed, same */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct wf_hpack_dec d;
		struct list l;
		wf_hpack_dec_init(&d, 4096);
		int rc = decode_hex(&d, bad[i], &l);
		if (rc != WF_HPACK_ERROR)
			printf("  block %s: %d\n", bad[i], rc);
		CHECK_EQ(rc, WF_HPACK_ERROR);
		wf_hpack_dec_free(&d);
	}
}

TEST(integers_at_the_edges)
{
	struct wf_hpack_dec d;
	struct list l;

	wf_hpack_dec_init(&d, 4096);
	/* 127 with a 7-bit prefix: 7f 00 (the one zero octet is needed); index 127 is out of range */
	CHECK_EQ(decode_hex(&d, "ff 00", &l), WF_HPACK_ERROR);
	wf_hpack_dec_free(&d);
	wf_hpack_dec_init(&d, 4096);
	/* index 62 written in a long form (0x7f + 0x80 0x..): rejected as out of range, not as
	 * malformed integer; a literal with a 1-byte name and 200-byte value, length 7f 49 */
	char hex[1024] = "00 01 61 7f 49 ";
	for (int i = 0; i < 200; i++)
		strcat(hex, "62");
	CHECK_EQ(decode_hex(&d, hex, &l), 0);
	CHECK(l.n == 1 && l.f[0].vl == 200);
	/* a size update to exactly the setting, then 0 */
	CHECK_EQ(decode_hex(&d, "3f e1 1f 20 82", &l), 0);
	CHECK(l.n == 1 && field_is(&l.f[0], ":method", "GET"));
	wf_hpack_dec_free(&d);
}

/* ---- size updates and eviction ---- */

TEST(decoder_size_updates)
{
	struct wf_hpack_dec d;
	struct list l;
	uint32_t entries;

	wf_hpack_dec_init(&d, 4096);
	CHECK_EQ(decode_hex(&d, c3[0], &l), 0);
	CHECK_EQ(decode_hex(&d, c3[1], &l), 0);
	CHECK_EQ(wf_hpack_table_size(d.t, &entries), 110);
	/* down to 60: the oldest goes, the newest (cache-control no-cache, 53) stays */
	CHECK_EQ(decode_hex(&d, "3f 1d be", &l), 0);
	CHECK(l.n == 1 && field_is(&l.f[0], "cache-control", "no-cache"));
	CHECK_EQ(wf_hpack_table_size(d.t, &entries), 53);
	CHECK_EQ(entries, 1);
	/* two updates at the start are fine; 0 empties the table */
	CHECK_EQ(decode_hex(&d, "20 3f e1 1f 82", &l), 0);
	CHECK_EQ(wf_hpack_table_size(d.t, &entries), 0);
	CHECK_EQ(decode_hex(&d, "be", &l), WF_HPACK_ERROR);
	wf_hpack_dec_free(&d);

	/* our setting went down to 100: the next block must begin with an update to <= 100 */
	wf_hpack_dec_init(&d, 4096);
	d.settings_max = 100;
	CHECK_EQ(decode_hex(&d, "82", &l), WF_HPACK_ERROR);
	CHECK_EQ(decode_hex(&d, "3f 46 82", &l), WF_HPACK_ERROR); /* 101 */
	CHECK_EQ(decode_hex(&d, "3f 45 82", &l), 0);              /* 100 */
	CHECK_EQ(decode_hex(&d, "82", &l), 0);
	wf_hpack_dec_free(&d);
}

TEST(eviction_keeps_newest)
{
	struct wf_hpack_dec d;
	struct list l;
	uint32_t entries;
	char hex[512];

	/* each entry "k" + 30-byte value is 63 bytes: a 200-byte table holds 3 */
	wf_hpack_dec_init(&d, 200);
	for (int i = 0; i < 10; i++) {
		snprintf(hex, sizeof hex, "40 01 6b 1e ");
		for (int j = 0; j < 30; j++)
			snprintf(hex + strlen(hex), sizeof hex - strlen(hex), "%02x", 'a' + (i + j) % 26);
		CHECK_EQ(decode_hex(&d, hex, &l), 0);
		CHECK_EQ(wf_hpack_table_size(d.t, &entries), 63 * (i < 3 ? i + 1 : 3));
	}
	/* the newest is the 10th value: starts with 'a' + 9 */
	const char *n, *v;
	uint32_t nl, vl;
	CHECK_EQ(wf_hpack_table_get(d.t, 1, &n, &nl, &v, &vl), 0);
	CHECK(vl == 30 && v[0] == 'j');
	CHECK_EQ(wf_hpack_table_get(d.t, 3, &n, &nl, &v, &vl), 0);
	CHECK(v[0] == 'h');
	/* a field larger than the whole table empties it */
	snprintf(hex, sizeof hex, "40 01 6b 7f 32 ");
	for (int j = 0; j < 127 + 50; j++)
		strcat(hex, "61");
	CHECK_EQ(decode_hex(&d, hex, &l), 0);
	CHECK_EQ(wf_hpack_table_size(d.t, &entries), 0);
	CHECK_EQ(entries, 0);
	wf_hpack_dec_free(&d);
}

/* A literal whose name is the entry that its own insertion evicts (§4.4). */
TEST(name_of_evicted_entry)
{
	struct wf_hpack_dec d;
	struct list l;
	uint32_t entries;

	wf_hpack_dec_init(&d, 60); /* room for one entry */
	CHECK_EQ(decode_hex(&d, "40 0a 6375 7374 6f6d 2d6b 6579 02 6869", &l), 0); /* custom-key: hi (44) */
	CHECK_EQ(decode_hex(&d, "7e 03 796f 75", &l), 0);                         /* name 62, "you" */
	CHECK(l.n == 1 && field_is(&l.f[0], "custom-key", "you"));
	CHECK_EQ(wf_hpack_table_size(d.t, &entries), 45);
	CHECK(entry_is(d.t, 1, "custom-key", "you"));
	wf_hpack_dec_free(&d);
}

TEST(encoder_size_updates)
{
	struct wf_hpack_enc e;
	uint8_t out[256];
	size_t n;
	static const struct wf_hdr h[] = {HDR(":method", "GET")};

	wf_hpack_enc_init(&e, 4096);
	n = encode(&e, h, 1, NULL, out);
	CHECK(bytes_are(out, n, "82")); /* no update: the table is the initial 4096 */
	/* lowered then raised: the minimum, then the final size */
	wf_hpack_enc_peer_max(&e, 100);
	wf_hpack_enc_peer_max(&e, 4096);
	n = encode(&e, h, 1, NULL, out);
	CHECK(bytes_are(out, n, "3f45 3fe11f 82"));
	n = encode(&e, h, 1, NULL, out);
	CHECK(bytes_are(out, n, "82"));
	/* raised over own_max: nothing changes */
	wf_hpack_enc_peer_max(&e, 65536);
	n = encode(&e, h, 1, NULL, out);
	CHECK(bytes_are(out, n, "82"));
	/* lowered: one update */
	wf_hpack_enc_peer_max(&e, 0);
	n = encode(&e, h, 1, NULL, out);
	CHECK(bytes_are(out, n, "20 82"));
	wf_hpack_enc_free(&e);
}

/* Flags, and fields too large for the table. */
TEST(encoder_representations)
{
	struct wf_hpack_enc e;
	uint8_t out[1024];
	size_t n;
	uint32_t entries;
	static const struct wf_hdr h[] = {HDR("date", "x"), HDR("authorization", "y"), HDR("x-a", "z"),
	                                  HDR(":status", "200"), HDR(":status", "201")};
	static const uint8_t flags[] = {WF_HPACK_NO_INDEX, WF_HPACK_NEVER, 0, WF_HPACK_NO_INDEX, 0};

	wf_hpack_enc_init(&e, 4096);
	n = encode(&e, h, 5, flags, out);
	/* 0f12 (name 33) 01 78 | 1f08 (name 23) 01 79 | 40 03 782d61 01 7a | 88 | 48 82 1003 (Huffman) */
	CHECK(bytes_are(out, n, "0f12 0178 1f08 0179 4003 782d61 017a 88 48 82 1003"));
	CHECK_EQ(wf_hpack_table_size(e.t, &entries), 36 + 42);
	/* again: x-a and :status 201 are now indexed */
	n = encode(&e, h + 2, 3, NULL, out);
	CHECK(bytes_are(out, n, "bf 88 be"));
	/* a unique identifier: a plain literal (no H bit), not indexed, not cached: the same again */
	static const struct wf_hdr id[] = {HDR("x-request-id", "0123abcd")};
	static const uint8_t unique[] = {WF_HPACK_NO_INDEX | WF_HPACK_UNIQUE};
	for (int k = 0; k < 2; k++) {
		n = encode(&e, id, 1, unique, out);
		/* 00, the name Huffman-coded (H bit), then 08 and the value's own bytes */
		CHECK(n > 9 && out[0] == 0x00 && (out[1] & 0x80) && bytes_are(out + n - 9, 9, "08 3031323361626364"));
		struct wf_hpack_dec d;
		struct list l;
		wf_hpack_dec_init(&d, 4096);
		memset(&l, 0, sizeof l);
		CHECK_EQ(wf_hpack_decode(&d, out, n, 1 << 20, collect, &l), 0);
		CHECK(list_is(&l, id, 1));
		wf_hpack_dec_free(&d);
	}
	CHECK_EQ(wf_hpack_table_size(e.t, &entries), 36 + 42);
	wf_hpack_enc_free(&e);

	/* a field larger than the table goes without indexing, and the table keeps what it has */
	wf_hpack_enc_init(&e, 64);
	static const struct wf_hdr big[] = {HDR("a", "b"), HDR("x-big", "0123456789012345678901234567890123")};
	n = encode(&e, big, 2, NULL, out);
	CHECK(n > 0);
	CHECK_EQ(wf_hpack_table_size(e.t, &entries), 34);
	CHECK(entry_is(e.t, 1, "a", "b"));
	struct wf_hpack_dec d;
	struct list l;
	wf_hpack_dec_init(&d, 64);
	d.settings_max = 64;
	memset(&l, 0, sizeof l);
	CHECK_EQ(wf_hpack_decode(&d, out, n, 1 << 20, collect, &l), 0);
	CHECK(list_is(&l, big, 2));
	wf_hpack_dec_free(&d);
	wf_hpack_enc_free(&e);
}

/* ---- the field-list limit and emit's own stop ---- */

TEST(too_large_keeps_table_in_step)
{
	struct wf_hpack_enc e;
	struct wf_hpack_dec d;
	struct list l;
	uint8_t out[2048];
	static const struct wf_hdr first[] = {HDR("x-one", "1111111111"), HDR("x-two", "2222222222"),
	                                      HDR("x-three", "3333333333")};
	static const struct wf_hdr second[] = {HDR("x-three", "3333333333"), HDR("x-two", "2222222222"),
	                                       HDR("x-one", "1111111111")};

	wf_hpack_enc_init(&e, 4096);
	wf_hpack_dec_init(&d, 4096);
	size_t n = encode(&e, first, 3, NULL, out);
	memset(&l, 0, sizeof l);
	CHECK_EQ(wf_hpack_decode(&d, out, n, 50, collect, &l), WF_HPACK_TOO_LARGE);
	CHECK_EQ(l.n, 1); /* 5 + 10 + 32 = 47 fits; the second goes over */
	n = encode(&e, second, 3, NULL, out);
	CHECK(bytes_are(out, n, "be bf c0"));
	memset(&l, 0, sizeof l);
	CHECK_EQ(wf_hpack_decode(&d, out, n, 1000, collect, &l), 0);
	CHECK(list_is(&l, second, 3));

	/* emit's own error stops the reports the same way */
	n = encode(&e, first, 3, NULL, out);
	memset(&l, 0, sizeof l);
	l.stop_after = 1;
	CHECK_EQ(wf_hpack_decode(&d, out, n, 1000, collect, &l), -7);
	CHECK_EQ(l.n, 1);
	/* malformed after too large: the block is an error */
	CHECK_EQ(decode_hex(&d, "be be 80", &l), WF_HPACK_ERROR);
	wf_hpack_dec_free(&d);
	wf_hpack_enc_free(&e);
}

/* ---- nghttp2 ---- */

/* Inflates a block with nghttp2 into l. 0, or -1. */
static int ng_inflate(nghttp2_hd_inflater *inf, const uint8_t *in, size_t n, struct list *l)
{
	memset(l, 0, sizeof *l);
	for (;;) {
		nghttp2_nv nv;
		int fl = 0;
		ssize_t rv = nghttp2_hd_inflate_hd2(inf, &nv, &fl, in, n, 1);
		if (rv < 0)
			return -1;
		in += rv;
		n -= (size_t)rv;
		if (fl & NGHTTP2_HD_INFLATE_EMIT)
			collect(l, (const char *)nv.name, (uint32_t)nv.namelen, (const char *)nv.value, (uint32_t)nv.valuelen,
			        (nv.flags & NGHTTP2_NV_FLAG_NO_INDEX) != 0);
		if (fl & NGHTTP2_HD_INFLATE_FINAL)
			break;
		if (rv == 0 && n == 0)
			break;
	}
	nghttp2_hd_inflate_end_headers(inf);
	return 0;
}

static int lists_equal(const struct list *a, const struct list *b)
{
	if (a->n != b->n)
		return 0;
	for (uint32_t i = 0; i < a->n; i++) {
		const struct field *x = &a->f[i], *y = &b->f[i];
		if (x->nl != y->nl || x->vl != y->vl || x->never != y->never || memcmp(x->name, y->name, x->nl) != 0 ||
		    memcmp(x->value, y->value, x->vl) != 0)
			return 0;
	}
	return 1;
}

/* Every code of Appendix B, both ways: a one-byte string coded by us decodes in nghttp2, and
 * a string nghttp2 Huffman-codes ("aaaaaaaaaaaaaaaa" + the byte) comes out byte for byte as
 * ours, and decodes in ours. */
TEST(huffman_codes_vs_nghttp2)
{
	nghttp2_hd_inflater *inf;
	nghttp2_hd_deflater *def;
	struct wf_hpack_enc e;
	struct wf_hpack_dec d;
	CHECK_EQ(nghttp2_hd_inflate_new(&inf), 0);
	CHECK_EQ(nghttp2_hd_deflate_new(&def, 4096), 0);
	wf_hpack_enc_init(&e, 4096);
	wf_hpack_dec_init(&d, 4096);

	for (unsigned sym = 0; sym < 256; sym++) {
		uint8_t blk[64] = {0x00, 0x01, 'x'}, s = (uint8_t)sym;
		uint8_t *end = wf_hpack_huff_encode(blk + 4, &s, 1);
		blk[3] = (uint8_t)(0x80 | (end - blk - 4));
		CHECK_EQ((size_t)(end - blk - 4), wf_hpack_huff_len(&s, 1));
		struct list l;
		CHECK_EQ(ng_inflate(inf, blk, (size_t)(end - blk), &l), 0);
		CHECK(l.n == 1 && l.f[0].vl == 1 && (uint8_t)l.f[0].value[0] == sym);
		memset(&l, 0, sizeof l);
		CHECK_EQ(wf_hpack_decode(&d, blk, (size_t)(end - blk), 1000, collect, &l), 0);
		CHECK(l.n == 1 && l.f[0].vl == 1 && (uint8_t)l.f[0].value[0] == sym);

		char v[17];
		memset(v, 'a', 16);
		v[16] = (char)sym;
		nghttp2_nv nv = {(uint8_t *)"x-h", (uint8_t *)v, 3, 17, NGHTTP2_NV_FLAG_NO_INDEX};
		uint8_t ng[64], ours[64];
		ssize_t nn = nghttp2_hd_deflate_hd(def, ng, sizeof ng, &nv, 1);
		CHECK(nn > 0);
		struct wf_hdr h = {"x-h", v, 3, 17};
		uint8_t fl = WF_HPACK_NEVER;
		size_t on = encode(&e, &h, 1, &fl, ours);
		CHECK_EQ(on, (size_t)nn);
		CHECK(memcmp(ng, ours, on) == 0);
		CHECK(ng[5] & 0x80); /* 10 03 "x-h", then the value: Huffman-coded */
		memset(&l, 0, sizeof l);
		CHECK_EQ(wf_hpack_decode(&d, ng, (size_t)nn, 1000, collect, &l), 0);
		CHECK(l.n == 1 && l.f[0].vl == 17 && memcmp(l.f[0].value, v, 17) == 0 && l.f[0].never);
	}
	/* EOS is never a symbol: its code, padded, is refused */
	uint8_t eos[4] = {0xff, 0xff, 0xff, 0xff}, out[8];
	CHECK_EQ(wf_hpack_huff_decode(out, eos, 4), -1);
	nghttp2_hd_inflate_del(inf);
	nghttp2_hd_deflate_del(def);
	wf_hpack_enc_free(&e);
	wf_hpack_dec_free(&d);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
	return wf_t_rand(&rng_state, n);
}

static const char *const common_names[] = {":status", "content-type", "server", "date", "x-request-id",
                                           "cache-control", "set-cookie", "content-length", "x-custom",
                                           ":path", "accept-encoding", "user-agent"};
static const char *const common_values[] = {"200", "text/plain", "envoy", "gzip, deflate", "no-cache", "", "1",
                                            "/index.html", "application/grpc"};

/* A random header list: names and values often repeated (so that the dynamic table is used),
 * sometimes random bytes (values: any byte; names: lower-case tokens), random flags. */
static uint32_t random_list(struct wf_hdr *h, uint8_t *flags, char (*store)[2][300])
{
	uint32_t n = 1 + rnd(12);
	for (uint32_t i = 0; i < n; i++) {
		char *name = store[i][0], *value = store[i][1];
		uint32_t nl, vl;
		if (rnd(4)) {
			const char *s = common_names[rnd(sizeof common_names / sizeof common_names[0])];
			nl = (uint32_t)strlen(s);
			memcpy(name, s, nl);
		} else {
			nl = 1 + rnd(rnd(8) ? 20 : 290);
			for (uint32_t k = 0; k < nl; k++)
				name[k] = "abcdefghijklmnopqrstuvwxyz0123456789-_"[rnd(38)];
		}
		if (rnd(3)) {
			const char *s = common_values[rnd(sizeof common_values / sizeof common_values[0])];
			vl = (uint32_t)strlen(s);
			memcpy(value, s, vl);
		} else {
			vl = rnd(rnd(8) ? 40 : 300);
			int binary = rnd(2);
			for (uint32_t k = 0; k < vl; k++)
				value[k] = binary ? (char)rnd(256) : "0123456789abcdef, /;="[rnd(20)];
		}
		h[i] = (struct wf_hdr){name, value, nl, vl};
		uint32_t r = rnd(10);
		flags[i] = r == 0 ? WF_HPACK_NEVER : r < 3 ? WF_HPACK_NO_INDEX : 0;
	}
	return n;
}

static void to_list(const struct wf_hdr *h, const uint8_t *flags, uint32_t n, struct list *l, int never_flag)
{
	memset(l, 0, sizeof *l);
	for (uint32_t i = 0; i < n; i++)
		collect(l, h[i].name, h[i].name_len, h[i].value, h[i].value_len, (flags[i] & never_flag) != 0);
}

static const uint32_t table_sizes[] = {0, 64, 256, 1000, 4096, 8192};

/* Our encoder, nghttp2's inflater. */
TEST(differential_encode)
{
	nghttp2_hd_inflater *inf;
	struct wf_hpack_enc e;
	static char store[MAX_FIELDS][2][300];
	static uint8_t out[16384];

	CHECK_EQ(nghttp2_hd_inflate_new(&inf), 0);
	wf_hpack_enc_init(&e, 4096);
	rng_state = 12345;
	for (int round = 0; round < 3000; round++) {
		struct wf_hdr h[MAX_FIELDS];
		uint8_t flags[MAX_FIELDS];
		if (rnd(50) == 0) {
			uint32_t s = table_sizes[rnd(6)];
			wf_hpack_enc_peer_max(&e, s);
			CHECK_EQ(nghttp2_hd_inflate_change_table_size(inf, s), 0);
		}
		uint32_t n = random_list(h, flags, store);
		size_t len = encode(&e, h, n, flags, out);
		CHECK(len != (size_t)-1);
		struct list want, got;
		to_list(h, flags, n, &want, WF_HPACK_NEVER);
		CHECK_EQ(ng_inflate(inf, out, len, &got), 0);
		if (!lists_equal(&want, &got))
			printf("  round %d\n", round);
		CHECK(lists_equal(&want, &got));
	}
	nghttp2_hd_inflate_del(inf);
	wf_hpack_enc_free(&e);
}

/* nghttp2's deflater, our decoder. */
TEST(differential_decode)
{
	nghttp2_hd_deflater *def;
	struct wf_hpack_dec d;
	static char store[MAX_FIELDS][2][300];
	static uint8_t out[16384];

	CHECK_EQ(nghttp2_hd_deflate_new(&def, 8192), 0);
	wf_hpack_dec_init(&d, 4096);
	rng_state = 54321;
	for (int round = 0; round < 3000; round++) {
		struct wf_hdr h[MAX_FIELDS];
		uint8_t flags[MAX_FIELDS];
		nghttp2_nv nv[MAX_FIELDS];
		if (rnd(50) == 0) {
			uint32_t s = table_sizes[rnd(6)];
			d.settings_max = s;
			CHECK_EQ(nghttp2_hd_deflate_change_table_size(def, s), 0);
		}
		uint32_t n = random_list(h, flags, store);
		for (uint32_t i = 0; i < n; i++)
			nv[i] = (nghttp2_nv){(uint8_t *)h[i].name, (uint8_t *)h[i].value, h[i].name_len, h[i].value_len,
			                     flags[i] ? NGHTTP2_NV_FLAG_NO_INDEX : 0};
		ssize_t len = nghttp2_hd_deflate_hd(def, out, sizeof out, nv, n);
		CHECK(len >= 0);
		struct list want, got;
		to_list(h, flags, n, &want, WF_HPACK_NEVER | WF_HPACK_NO_INDEX);
		memset(&got, 0, sizeof got);
		int rc = wf_hpack_decode(&d, out, (size_t)len, 1 << 20, collect, &got);
		if (rc != 0 || !lists_equal(&want, &got))
			printf("  round %d: %d\n", round, rc);
		CHECK_EQ(rc, 0);
		CHECK(lists_equal(&want, &got));
	}
	nghttp2_hd_deflate_del(def);
	wf_hpack_dec_free(&d);
}

/* Ours both ways, with a tight table, so that eviction and ring wrap-around happen often. */
/* Huffman-coded values the decoders of a thread meet again are taken from a cache: many
 * distinct values of the same few lengths (so that they share its slots), through two
 * decoders in turn, each decoded as it was sent; a value whose coding differs in its last byte
 * only (bad padding) after a good one of the same length is still refused. */
TEST(huffman_values_met_again)
{
	static char vals[120][64];
	static uint8_t out[4096];
	struct wf_hpack_enc e;
	struct wf_hpack_dec d[2];
	wf_hpack_enc_init(&e, 0); /* no table: every field a literal */
	wf_hpack_dec_init(&d[0], 4096);
	wf_hpack_dec_init(&d[1], 4096);
	for (int i = 0; i < 120; i++) /* lowercase text codes shorter: Huffman is chosen */
		snprintf(vals[i], sizeof vals[i], "%.*s-%03d", 8 + i % 3 * 17, "thequickbrownfoxjumpsoverthelazydogandsomemore", i);
	rng_state = 4242;
	for (int round = 0; round < 3000; round++) {
		int k = (int)rnd(120);
		struct wf_hdr h[1] = {{"x-value", vals[k], 7, (uint32_t)strlen(vals[k])}};
		uint8_t fl[1] = {WF_HPACK_NO_INDEX};
		size_t len = encode(&e, h, 1, fl, out);
		CHECK(len < 9 + strlen(vals[k])); /* Huffman, so the cache is in play */
		struct list got;
		memset(&got, 0, sizeof got);
		CHECK_EQ(wf_hpack_decode(&d[round & 1], out, len, 1 << 20, collect, &got), 0);
		CHECK_EQ(got.n, 1);
		CHECK(field_is(&got.f[0], "x-value", vals[k]));
		if (round % 100 == 0) {
			/* the same coding with its last byte's padding bits cleared: not EOS-prefix ones */
			uint8_t bad[4096];
			memcpy(bad, out, len);
			bad[len - 1] &= 0x80;
			memset(&got, 0, sizeof got);
			int rc = wf_hpack_decode(&d[round & 1], bad, len, 1 << 20, collect, &got);
			CHECK(rc == WF_HPACK_ERROR || (got.n == 1 && !field_is(&got.f[0], "x-value", vals[k])));
		}
	}
	wf_hpack_enc_free(&e);
	wf_hpack_dec_free(&d[0]);
	wf_hpack_dec_free(&d[1]);
}

TEST(round_trip_small_tables)
{
	struct wf_hpack_enc e;
	struct wf_hpack_dec d;
	static char store[MAX_FIELDS][2][300];
	static uint8_t out[16384];

	for (unsigned t = 0; t < sizeof table_sizes / sizeof table_sizes[0]; t++) {
		wf_hpack_enc_init(&e, table_sizes[t]);
		wf_hpack_dec_init(&d, 4096);
		rng_state = 777 + t;
		for (int round = 0; round < 1000; round++) {
			struct wf_hdr h[MAX_FIELDS];
			uint8_t flags[MAX_FIELDS];
			uint32_t n = random_list(h, flags, store);
			size_t len = encode(&e, h, n, flags, out);
			CHECK(len != (size_t)-1);
			struct list want, got;
			to_list(h, flags, n, &want, WF_HPACK_NEVER);
			memset(&got, 0, sizeof got);
			CHECK_EQ(wf_hpack_decode(&d, out, len, 1 << 20, collect, &got), 0);
			CHECK(lists_equal(&want, &got));
			uint32_t ea, eb;
			CHECK_EQ(wf_hpack_table_size(e.t, &ea), wf_hpack_table_size(d.t, &eb));
			CHECK_EQ(ea, eb);
		}
		wf_hpack_enc_free(&e);
		wf_hpack_dec_free(&d);
	}
}

TEST_MAIN("hpack", T(c2_literal_representations), T(c3_to_c6_decode), T(c4_c6_encode),
          T(malformed), T(integers_at_the_edges), T(decoder_size_updates), T(eviction_keeps_newest),
          T(name_of_evicted_entry), T(encoder_size_updates), T(encoder_representations),
          T(too_large_keeps_table_in_step), T(huffman_codes_vs_nghttp2), T(differential_encode),
          T(differential_decode), T(round_trip_small_tables),
          T(huffman_values_met_again))
