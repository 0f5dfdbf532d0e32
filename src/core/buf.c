#include "core/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void wf_pool_init(struct wf_pool *pool, uint32_t max_free)
{
	memset(pool, 0, sizeof(*pool));
	pool->max_free = max_free;
}

void wf_pool_fini(struct wf_pool *pool)
{
	while (pool->free) {
		void *b = pool->free;
		pool->free = *(void **)b;
		free(b);
	}
	pool->n_free = 0;
}

static char *block_get(struct wf_pool *pool)
{
	char *b = pool->free;
	if (b) {
		pool->free = *(void **)b;
		pool->n_free--;
	} else {
		b = malloc(WF_BLOCK);
		if (!b)
			return NULL;
	}
	pool->n_out++;
	return b;
}

static void block_put(struct wf_pool *pool, char *b)
{
	pool->n_out--;
	if (pool->n_free >= pool->max_free) {
		free(b);
		return;
	}
	*(void **)b = pool->free;
	pool->free = b;
	pool->n_free++;
}

void wf_buf_release(struct wf_buf *b, struct wf_pool *pool)
{
	if (b->p) {
		if (b->cap == WF_BLOCK)
			block_put(pool, b->p);
		else
			free(b->p);
	}
	b->p = NULL;
	b->r = b->w = b->cap = 0;
}

int wf_buf_reserve(struct wf_buf *b, struct wf_pool *pool, uint32_t want, uint32_t max)
{
	uint32_t len = b->w - b->r;
	if (len >= max)
		return -ENOBUFS;
	if (want > max - len)
		want = max - len;
	if (!b->p) {
		b->p = block_get(pool);
		if (!b->p)
			return -ENOMEM;
		b->cap = WF_BLOCK;
		b->r = b->w = 0;
	}
	if (b->cap - b->w < want && b->r) {
		/* slide the content to the front first */
		memmove(b->p, b->p + b->r, len);
		b->r = 0;
		b->w = len;
	}
	if (b->cap - b->w < want) {
		/* double, or to the size asked for when that is more (one large append: no slack) */
		uint64_t cap = (uint64_t)b->cap * 2;
		if (cap < (uint64_t)len + want)
			cap = (uint64_t)len + want;
		if (cap > UINT32_MAX)
			return -ENOMEM;
		char *n = malloc(cap);
		if (!n)
			return -ENOMEM;
		memcpy(n, b->p + b->r, len);
		if (b->cap == WF_BLOCK)
			block_put(pool, b->p);
		else
			free(b->p);
		b->p = n;
		b->cap = (uint32_t)cap;
		b->r = 0;
		b->w = len;
	}
	uint32_t room = b->cap - b->w;
	return (int)(room < max - len ? room : max - len);
}

void wf_buf_consume(struct wf_buf *b, struct wf_pool *pool, uint32_t n)
{
	b->r += n;
	if (b->r >= b->w)
		wf_buf_release(b, pool);
}

int wf_buf_append(struct wf_buf *b, struct wf_pool *pool, const void *data, size_t n)
{
	while (n) {
		/* room for all of it at once: growing a block at a time would copy a large append
		 * several times over */
		uint32_t want = n < UINT32_MAX - WF_BLOCK ? (uint32_t)n : UINT32_MAX - WF_BLOCK;
		int room = wf_buf_reserve(b, pool, want, UINT32_MAX - WF_BLOCK);
		if (room < 0)
			return room;
		size_t k = n < (size_t)room ? n : (size_t)room;
		memcpy(b->p + b->w, data, k);
		b->w += (uint32_t)k;
		data = (const char *)data + k;
		n -= k;
	}
	return 0;
}
