/* Shared copies of strings, counted: holders of equal strings share one copy (two thousand
 * proxies subscribed to the same thousand resource names hold a thousand strings, not two
 * million). A string is found by its content in constant time and freed with its last
 * reference. One thread, no locking.
 *
 *     const char *s = wf_strtab_get(t, name);   // a reference (NULL: out of memory)
 *     ...
 *     wf_strtab_put(t, s);                      // given back */
#ifndef WF_CORE_STRTAB_H
#define WF_CORE_STRTAB_H

#include <stdint.h>

struct wf_strtab;

struct wf_strtab *wf_strtab_new(void);
/* Free the table (the strings still referenced go with it). */
void wf_strtab_free(struct wf_strtab *t);
/* A reference to the table's copy of s (made on first use), or NULL when out of memory. */
const char *wf_strtab_get(struct wf_strtab *t, const char *s);
/* Give back a reference that wf_strtab_get gave. */
void wf_strtab_put(struct wf_strtab *t, const char *s);
/* Distinct strings held. */
uint32_t wf_strtab_count(const struct wf_strtab *t);

#endif
