/* A header list being built for output: entries point into a message copy or into the
 * config (the list owns only its arrays); `dead` marks removed ones. The owner allocates h
 * and dead with room for `cap` entries (cap > 0); adding past it grows them. */
#ifndef WF_PROXY_HLIST_H
#define WF_PROXY_HLIST_H

#include "http/h1.h"
#include "proxy/config.h"

#include <stdlib.h>

struct wf_hlist {
	struct wf_hdr *h;
	uint8_t *dead;
	uint32_t n, cap;
};

/* Static inline: the connection manager builds every request and response head with these. */

static inline void wf_hlist_add(struct wf_hlist *l, const char *k, uint32_t kn, const char *v, uint32_t vn)
{
	if (l->n == l->cap) {
		l->cap *= 2;
		l->h = realloc(l->h, l->cap * sizeof(*l->h));
		l->dead = realloc(l->dead, l->cap);
	}
	l->h[l->n] = (struct wf_hdr){k, v, kn, vn};
	l->dead[l->n] = 0;
	l->n++;
}

/* Mark every entry named k dead; 1 if there was one. */
static inline int wf_hlist_remove(struct wf_hlist *l, const char *k, uint32_t kn)
{
	int found = 0;
	for (uint32_t i = 0; i < l->n; i++)
		if (!l->dead[i] && wf_hdr_name_is(&l->h[i], k, kn)) {
			l->dead[i] = 1;
			found = 1;
		}
	return found;
}

static inline int wf_hlist_has(const struct wf_hlist *l, const char *k, uint32_t kn)
{
	for (uint32_t i = 0; i < l->n; i++)
		if (!l->dead[i] && wf_hdr_name_is(&l->h[i], k, kn))
			return 1;
	return 0;
}

/* Replace every entry named k with one k: v (at the end). */
static inline void wf_hlist_set(struct wf_hlist *l, const char *k, uint32_t kn, const char *v, uint32_t vn)
{
	wf_hlist_remove(l, k, kn);
	wf_hlist_add(l, k, kn, v, vn);
}

/* Apply removals, then additions with their append actions. */
static inline void wf_hlist_apply(struct wf_hlist *l, const struct wf_hdr_edits *e)
{
	for (uint32_t i = 0; i < e->n_remove; i++)
		wf_hlist_remove(l, e->remove[i], e->remove_len[i]);
	for (uint32_t i = 0; i < e->n_add; i++) {
		const struct wf_hdr_add *a = &e->add[i];
		if (!a->value_len && !a->keep_empty)
			continue;
		switch (a->action) {
		case WF_APPEND_OR_ADD:
			wf_hlist_add(l, a->key, a->key_len, a->value, a->value_len);
			break;
		case WF_ADD_IF_ABSENT:
			if (!wf_hlist_has(l, a->key, a->key_len))
				wf_hlist_add(l, a->key, a->key_len, a->value, a->value_len);
			break;
		case WF_OVERWRITE_OR_ADD:
			wf_hlist_set(l, a->key, a->key_len, a->value, a->value_len);
			break;
		case WF_OVERWRITE_IF_EXISTS:
			if (wf_hlist_has(l, a->key, a->key_len))
				wf_hlist_set(l, a->key, a->key_len, a->value, a->value_len);
			break;
		}
	}
}

/* The edits of one level (e may be NULL; most levels have none: no call then). */
static inline void wf_hlist_edits(struct wf_hlist *l, const struct wf_hdr_edits *e)
{
	if (e && (e->n_remove || e->n_add))
		wf_hlist_apply(l, e);
}

#endif
