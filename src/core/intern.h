/* Records kept by name, shared by every config that names them — state that must outlive any
 * one config (a cluster's circuit breaker counts, a host's outlier record) — found by their key
 * in constant time, created zeroed (then `init`) on first use. The record's address never
 * changes. Each wf_intern counts as a reference; when as many have been given back
 * (wf_intern_release), the record goes. A holder that never gives its reference back keeps the
 * record for the life of the process. Any thread (a mutex: lookups happen when a config
 * compiles or is freed, not per request). */
#ifndef WF_CORE_INTERN_H
#define WF_CORE_INTERN_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct wf_intern_entry;

struct wf_intern {
	pthread_mutex_t lock;
	size_t size;                        /* of a record */
	void (*init)(void *rec);            /* may be NULL */
	struct wf_intern_entry **buckets;
	uint32_t n_buckets, n;
};

#define WF_INTERN_INIT(record_size, init_fn) {PTHREAD_MUTEX_INITIALIZER, (record_size), (init_fn), NULL, 0, 0}

/* The record of key (NUL-terminated), created on first use, with a reference taken; NULL only
 * when out of memory. */
void *wf_intern(struct wf_intern *t, const char *key);
/* Another reference to a record the caller holds. */
void wf_intern_ref(struct wf_intern *t, void *rec);
/* Give back a reference; the last one frees the record. */
void wf_intern_release(struct wf_intern *t, void *rec);

#endif
