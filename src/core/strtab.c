/* Counted shared strings: chained hash table, doubled when the load passes 1. */
#include "core/strtab.h"
#include "core/hash.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct str {
	struct str *next;
	uint64_t hash;
	uint32_t refs;
	char s[];
};

struct wf_strtab {
	struct str **b;
	uint32_t mask, n;
};

struct wf_strtab *wf_strtab_new(void)
{
	struct wf_strtab *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->mask = 63;
	t->b = calloc(t->mask + 1, sizeof(*t->b));
	if (!t->b) {
		free(t);
		return NULL;
	}
	return t;
}

void wf_strtab_free(struct wf_strtab *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i <= t->mask; i++)
		while (t->b[i]) {
			struct str *e = t->b[i];
			t->b[i] = e->next;
			free(e);
		}
	free(t->b);
	free(t);
}

uint32_t wf_strtab_count(const struct wf_strtab *t) { return t->n; }

static void grow(struct wf_strtab *t)
{
	uint32_t mask = t->mask * 2 + 1;
	struct str **b = calloc((size_t)mask + 1, sizeof(*b));
	if (!b)
		return; /* longer chains, still correct */
	for (uint32_t i = 0; i <= t->mask; i++)
		while (t->b[i]) {
			struct str *e = t->b[i];
			t->b[i] = e->next;
			e->next = b[e->hash & mask];
			b[e->hash & mask] = e;
		}
	free(t->b);
	t->b = b;
	t->mask = mask;
}

const char *wf_strtab_get(struct wf_strtab *t, const char *s)
{
	size_t len = strlen(s);
	uint64_t h = wf_xxh3(s, len);
	for (struct str *e = t->b[h & t->mask]; e; e = e->next)
		if (e->hash == h && !strcmp(e->s, s)) {
			e->refs++;
			return e->s;
		}
	struct str *e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return NULL;
	e->hash = h;
	e->refs = 1;
	memcpy(e->s, s, len + 1);
	e->next = t->b[h & t->mask];
	t->b[h & t->mask] = e;
	if (++t->n > t->mask)
		grow(t);
	return e->s;
}

void wf_strtab_put(struct wf_strtab *t, const char *s)
{
	if (!s)
		return;
	struct str *e = (struct str *)(s - offsetof(struct str, s));
	if (--e->refs)
		return;
	struct str **pp = &t->b[e->hash & t->mask];
	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	t->n--;
	free(e);
}
