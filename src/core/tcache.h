/* Per-thread caches of small blocks, for allocation-heavy libraries (nghttp2 allocated
 * frames, header copies and stream state for every request; its session is gone, the caches
 * stay for what allocates per request). glibc keeps only seven freed
 * blocks of a size per thread, fewer than a burst of streams frees at once, so the rest go
 * back to its arenas and come out again slowly; here each size class keeps up to a few
 * hundred. Blocks may be freed on any thread; they join that thread's cache. */
#ifndef WF_CORE_TCACHE_H
#define WF_CORE_TCACHE_H

#include <stddef.h>

void *wf_tc_malloc(size_t n);
void *wf_tc_calloc(size_t nmemb, size_t size);
void *wf_tc_realloc(void *p, size_t n);
void wf_tc_free(void *p);
/* Give the calling thread's cached blocks back to the system allocator. */
void wf_tc_thread_exit(void);

#endif
