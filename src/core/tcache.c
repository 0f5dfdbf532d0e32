#include "core/tcache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Each block carries a 16-byte header (keeping the payload 16-byte aligned) with its size
 * class; blocks over the largest class are plain allocations marked BIG. */
static const uint32_t class_size[] = {16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 2048, 4096};
#define N_CLASSES (sizeof(class_size) / sizeof(class_size[0]))
#define BIG UINT32_MAX
#define KEEP_BYTES (128 * 1024) /* per class: at most this much (and 256 blocks) is kept */

struct block {
	union {
		struct { uint32_t cls; uint32_t len; } h; /* len: a BIG block's payload size */
		struct block *next;                       /* while cached */
		max_align_t align;
	};
};

static __thread struct block *free_list[N_CLASSES];
static __thread uint32_t n_free[N_CLASSES];

/* class_by16[(n + 15) / 16]: the class of a block of n bytes; filled on first use. */
static uint8_t class_by16[4096 / 16 + 1];

static unsigned class_of(size_t n)
{
	if (n > 4096)
		return BIG;
	unsigned c = class_by16[(n + 15) / 16];
	if (!c) {
		while (class_size[c] < n)
			c++;
		class_by16[(n + 15) / 16] = (uint8_t)(c + 1); /* stored +1: 0 means not yet known */
		return c;
	}
	return c - 1;
}

#ifndef __SANITIZE_ADDRESS__ /* (only used when blocks are kept) */
static uint32_t keep_max(unsigned c)
{
	uint32_t k = KEEP_BYTES / class_size[c];
	return k > 256 ? 256 : k;
}
#endif

void *wf_tc_malloc(size_t n)
{
	unsigned c = class_of(n);
	struct block *b;
	if (c != BIG && (b = free_list[c])) {
		free_list[c] = b->next;
		n_free[c]--;
	} else {
		b = malloc(sizeof(*b) + (c == BIG ? n : class_size[c]));
		if (!b)
			return NULL;
	}
	b->h.cls = c;
	b->h.len = c == BIG ? (uint32_t)n : class_size[c];
	return b + 1;
}

void wf_tc_free(void *p)
{
	if (!p)
		return;
	struct block *b = (struct block *)p - 1;
	unsigned c = b->h.cls;
#ifndef __SANITIZE_ADDRESS__ /* under ASan every block goes back, so a stale pointer is caught */
	if (c != BIG && n_free[c] < keep_max(c)) {
		b->next = free_list[c];
		free_list[c] = b;
		n_free[c]++;
		return;
	}
#endif
	(void)c;
	free(b);
}

void *wf_tc_calloc(size_t nmemb, size_t size)
{
	if (size && nmemb > SIZE_MAX / size)
		return NULL;
	void *p = wf_tc_malloc(nmemb * size);
	if (p)
		memset(p, 0, nmemb * size);
	return p;
}

void *wf_tc_realloc(void *p, size_t n)
{
	if (!p)
		return wf_tc_malloc(n);
	struct block *b = (struct block *)p - 1;
	size_t have = b->h.len;
	if (n <= have && b->h.cls != BIG)
		return p;
	void *q = wf_tc_malloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, have < n ? have : n);
	wf_tc_free(p);
	return q;
}

void wf_tc_thread_exit(void)
{
	for (unsigned c = 0; c < N_CLASSES; c++) {
		while (free_list[c]) {
			struct block *b = free_list[c];
			free_list[c] = b->next;
			free(b);
		}
		n_free[c] = 0;
	}
}
