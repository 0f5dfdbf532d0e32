#include "core/intern.h"
#include "core/hash.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct wf_intern_entry {
	struct wf_intern_entry *next;
	uint64_t hash;
	char *key;
	uint64_t refs;
	max_align_t rec[]; /* the record, suitably aligned */
};

static struct wf_intern_entry *entry_of(void *rec)
{
	return (struct wf_intern_entry *)((char *)rec - offsetof(struct wf_intern_entry, rec));
}

/* Double the buckets (from 64) when the records outnumber them. 0 or -1. */
static int grow(struct wf_intern *t)
{
	uint32_t nb = t->n_buckets ? t->n_buckets * 2 : 64;
	struct wf_intern_entry **b = calloc(nb, sizeof(*b));
	if (!b)
		return -1;
	for (uint32_t i = 0; i < t->n_buckets; i++)
		for (struct wf_intern_entry *e = t->buckets[i], *next; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	free(t->buckets);
	t->buckets = b;
	t->n_buckets = nb;
	return 0;
}

void *wf_intern(struct wf_intern *t, const char *key)
{
	size_t kl = strlen(key);
	uint64_t h = wf_xxh3(key, kl);
	pthread_mutex_lock(&t->lock);
	struct wf_intern_entry *e = NULL;
	if (t->n_buckets)
		for (e = t->buckets[h & (t->n_buckets - 1)]; e; e = e->next)
			if (e->hash == h && !strcmp(e->key, key))
				break;
	if (!e && (t->n < t->n_buckets || grow(t) == 0) && (e = calloc(1, sizeof(*e) + t->size))) {
		if (!(e->key = strdup(key))) {
			free(e);
			e = NULL;
		} else {
			e->hash = h;
			if (t->init)
				t->init(e->rec);
			e->next = t->buckets[h & (t->n_buckets - 1)];
			t->buckets[h & (t->n_buckets - 1)] = e;
			t->n++;
		}
	}
	if (e)
		e->refs++;
	pthread_mutex_unlock(&t->lock);
	return e ? (void *)e->rec : NULL;
}

void wf_intern_ref(struct wf_intern *t, void *rec)
{
	pthread_mutex_lock(&t->lock);
	entry_of(rec)->refs++;
	pthread_mutex_unlock(&t->lock);
}

void wf_intern_release(struct wf_intern *t, void *rec)
{
	if (!rec)
		return;
	struct wf_intern_entry *e = entry_of(rec);
	pthread_mutex_lock(&t->lock);
	if (--e->refs) {
		pthread_mutex_unlock(&t->lock);
		return;
	}
	for (struct wf_intern_entry **pp = &t->buckets[e->hash & (t->n_buckets - 1)]; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	t->n--;
	pthread_mutex_unlock(&t->lock);
	free(e->key);
	free(e);
}
