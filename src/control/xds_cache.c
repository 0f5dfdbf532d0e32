/* The resource cache: snapshots per generator key, resources interned by content. */
#include "control/xds_cache.h"

#include "core/strtab.h"
#include "core/hash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 4096


/* A snapshot generated in the current generation for one part and key. */
struct entry {
	uint32_t part;
	uint64_t hash;                       /* of part and key */
	char *key;
	struct wf_xds_snap *snap;
	struct entry *next;                  /* all of this generation's, to drop them */
	struct entry *bnext;                 /* the bucket's */
};

struct wf_xds_cache {
	struct wf_xds_generator gen[WF_XDS_MAX_PARTS];
	uint32_t n_gen;
	uint64_t generation;
	struct entry *entries;               /* this generation's snapshots */
	struct entry *ebucket[BUCKETS];      /* ... by hash of part and key (one per proxy: no walk) */
	struct wf_xds_packed *table[BUCKETS];   /* every live resource, by hash */
	uint32_t n_res;
	struct wf_strtab *names;
};

struct wf_xds_cache *wf_xds_cache_new(const struct wf_xds_generator *gens, uint32_t n)
{
	if (!n || n > WF_XDS_MAX_PARTS)
		return NULL;
	struct wf_xds_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	memcpy(c->gen, gens, n * sizeof(*gens));
	c->n_gen = n;
	c->generation = 1;
	if (!(c->names = wf_strtab_new())) {
		free(c);
		return NULL;
	}
	return c;
}

static void drop_entries(struct wf_xds_cache *c)
{
	while (c->entries) {
		struct entry *e = c->entries;
		c->entries = e->next;
		wf_xds_snap_unref(e->snap);
		free(e->key);
		free(e);
	}
	memset(c->ebucket, 0, sizeof(c->ebucket));
}

void wf_xds_cache_free(struct wf_xds_cache *c)
{
	if (!c)
		return;
	drop_entries(c);
	wf_strtab_free(c->names);
	free(c);
}

struct wf_strtab *wf_xds_cache_names(struct wf_xds_cache *c) { return c->names; }

void wf_xds_cache_invalidate(struct wf_xds_cache *c)
{
	drop_entries(c);
	c->generation++;
}

uint64_t wf_xds_cache_gen(const struct wf_xds_cache *c) { return c->generation; }
uint32_t wf_xds_cache_resources(const struct wf_xds_cache *c) { return c->n_res; }

/* Part `part`'s snapshot for node, generated once per key and generation. */
static struct wf_xds_snap *part_get(struct wf_xds_cache *c, uint32_t part, const Envoy__Config__Core__V3__Node *node)
{
	const struct wf_xds_generator *g = &c->gen[part];
	char key[512] = "";
	if (g->key)
		g->key(g->ctx, node, key, sizeof(key));
	uint64_t h = wf_xxh64(key, strlen(key), part);
	for (struct entry *e = c->ebucket[h % BUCKETS]; e; e = e->bnext)
		if (e->hash == h && e->part == part && !strcmp(e->key, key)) {
			e->snap->refs++;
			return e->snap;
		}
	struct wf_xds_snap *s = calloc(1, sizeof(*s));
	struct entry *e = calloc(1, sizeof(*e));
	if (!s || !e || !(e->key = strdup(key))) {
		free(s);
		free(e);
		return NULL;
	}
	s->refs = 1;
	s->gen = c->generation;
	if (g->generate(g->ctx, node, c, s) < 0) {
		wf_xds_snap_unref(s);
		free(e->key);
		free(e);
		return NULL;
	}
	e->part = part;
	e->hash = h;
	e->snap = s;
	e->next = c->entries;
	c->entries = e;
	e->bnext = c->ebucket[h % BUCKETS];
	c->ebucket[h % BUCKETS] = e;
	s->refs++;
	return s;
}

/* The union of the parts' sets of one type (each sorted by name) into out. */
static int merge_type(struct wf_xds_packed_set *out, struct wf_xds_snap *const *parts, uint32_t n, int type)
{
	uint32_t total = 0, at[WF_XDS_MAX_PARTS] = {0};
	for (uint32_t p = 0; p < n; p++)
		total += parts[p]->t[type].n;
	if (!total)
		return 0;
	if (!(out->r = malloc(total * sizeof(*out->r))))
		return -ENOMEM;
	out->cap = total;
	for (;;) {
		int best = -1;
		for (uint32_t p = 0; p < n; p++)
			if (at[p] < parts[p]->t[type].n &&
			    (best < 0 || strcmp(parts[p]->t[type].r[at[p]]->name, parts[best]->t[type].r[at[best]]->name) < 0))
				best = (int)p;
		if (best < 0)
			return 0;
		struct wf_xds_packed *r = parts[best]->t[type].r[at[best]++];
		if (out->n && out->r[out->n - 1]->name == r->name)
			continue; /* the same name from a later part: the first one's stays */
		r->refs++;
		out->r[out->n++] = r;
	}
}

struct wf_xds_snap *wf_xds_cache_get(struct wf_xds_cache *c, const Envoy__Config__Core__V3__Node *node)
{
	struct wf_xds_snap *parts[WF_XDS_MAX_PARTS];
	for (uint32_t p = 0; p < c->n_gen; p++)
		if (!(parts[p] = part_get(c, p, node))) {
			while (p--)
				wf_xds_snap_unref(parts[p]);
			return NULL;
		}
	if (c->n_gen == 1)
		return parts[0];
	struct wf_xds_snap *s = calloc(1, sizeof(*s));
	int rc = s ? 0 : -ENOMEM;
	if (s) {
		s->refs = 1;
		s->gen = c->generation;
		for (int t = 0; t < WF_XDS_NTYPES && !rc; t++)
			rc = merge_type(&s->t[t], parts, c->n_gen, t);
	}
	for (uint32_t p = 0; p < c->n_gen; p++)
		wf_xds_snap_unref(parts[p]);
	if (rc < 0) {
		wf_xds_snap_unref(s);
		return NULL;
	}
	return s;
}

static void res_unref(struct wf_xds_packed *r)
{
	if (--r->refs)
		return;
	struct wf_xds_cache *c = r->cache;
	struct wf_xds_packed **pp = &c->table[r->hash % BUCKETS];
	while (*pp != r)
		pp = &(*pp)->hnext;
	*pp = r->hnext;
	c->n_res--;
	wf_strtab_put(c->names, r->name);
	free(r->bytes);
	free(r);
}

/* The interned resource of these bytes (taken over when new), with a reference. */
static struct wf_xds_packed *intern(struct wf_xds_cache *c, int type, const char *name, uint8_t *bytes, size_t len)
{
	uint64_t h = wf_xxh64(bytes, len, 0);
	for (struct wf_xds_packed *r = c->table[h % BUCKETS]; r; r = r->hnext)
		if (r->hash == h && r->type == type && r->len == len && !strcmp(r->name, name) && !memcmp(r->bytes, bytes, len)) {
			free(bytes);
			r->refs++;
			return r;
		}
	struct wf_xds_packed *r = calloc(1, sizeof(*r));
	if (!r || !(r->name = wf_strtab_get(c->names, name))) {
		free(r);
		free(bytes);
		return NULL;
	}
	r->refs = 1;
	r->type = type;
	r->bytes = bytes;
	r->len = len;
	r->hash = h;
	r->id = wf_xxh64(r->name, strlen(r->name), h);
	snprintf(r->version, sizeof(r->version), "%016llx", (unsigned long long)h);
	r->cache = c;
	r->hnext = c->table[h % BUCKETS];
	c->table[h % BUCKETS] = r;
	c->n_res++;
	return r;
}

static uint32_t set_lower(const struct wf_xds_packed_set *s, const char *name)
{
	uint32_t lo = 0, hi = s->n;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (strcmp(s->r[mid]->name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct wf_xds_packed *wf_xds_packed_find(const struct wf_xds_packed_set *s, const char *name)
{
	uint32_t i = set_lower(s, name);
	return i < s->n && !strcmp(s->r[i]->name, name) ? s->r[i] : NULL;
}

int wf_xds_snap_add(struct wf_xds_cache *c, struct wf_xds_snap *s, int type, const char *name, const ProtobufCMessage *m)
{
	if (type < 0 || type >= WF_XDS_NTYPES)
		return -EINVAL;
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *bytes = malloc(len ? len : 1);
	if (!bytes)
		return -ENOMEM;
	protobuf_c_message_pack(m, bytes);
	struct wf_xds_packed *r = intern(c, type, name, bytes, len);
	if (!r)
		return -ENOMEM;
	struct wf_xds_packed_set *set = &s->t[type];
	uint32_t i = set_lower(set, name);
	if (i < set->n && !strcmp(set->r[i]->name, name)) {
		res_unref(set->r[i]);
		set->r[i] = r;
		return 0;
	}
	if (set->n == set->cap) {
		uint32_t cap = set->cap ? set->cap * 2 : 8;
		struct wf_xds_packed **q = realloc(set->r, cap * sizeof(*q));
		if (!q) {
			res_unref(r);
			return -ENOMEM;
		}
		set->r = q;
		set->cap = cap;
	}
	memmove(set->r + i + 1, set->r + i, (set->n - i) * sizeof(*set->r));
	set->r[i] = r;
	set->n++;
	return 0;
}

void wf_xds_snap_unref(struct wf_xds_snap *s)
{
	if (!s || --s->refs)
		return;
	for (int t = 0; t < WF_XDS_NTYPES; t++) {
		for (uint32_t i = 0; i < s->t[t].n; i++)
			res_unref(s->t[t].r[i]);
		free(s->t[t].r);
	}
	free(s);
}
