/* Byte buffers and the per-worker block pool they come from.
 *
 * A wf_buf is a window [r, w) of valid bytes inside a block of `cap` bytes; bytes before r
 * have been consumed, bytes after w are free. An empty buffer holds no block at all (p == NULL):
 * connections give their blocks back to the pool as soon as they have nothing buffered, which
 * is what keeps an idle keep-alive connection down to its own small struct.
 *
 * Blocks are WF_BLOCK bytes and come from a wf_pool owned by one thread (no locking).
 * A buffer that must hold more than one block (a large request head) grows with malloc:
 * rare, and bounded by the caller's limit. */
#ifndef WF_CORE_BUF_H
#define WF_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WF_BLOCK (16 * 1024)

struct wf_pool {
	void *free;          /* singly linked through the first word of each free block */
	uint32_t n_free;
	uint32_t max_free;   /* blocks kept for reuse; beyond it they go back to the allocator */
	uint64_t n_out;      /* blocks handed out and not returned */
};

struct wf_buf {
	char *p;
	uint32_t r, w, cap;
};

void wf_pool_init(struct wf_pool *pool, uint32_t max_free);
void wf_pool_fini(struct wf_pool *pool);

static inline uint32_t wf_buf_len(const struct wf_buf *b) { return b->w - b->r; }
static inline char *wf_buf_data(const struct wf_buf *b) { return b->p + b->r; }
static inline uint32_t wf_buf_room(const struct wf_buf *b) { return b->cap - b->w; }

/* Make room for more bytes: up to `want` of them, but never for more than `max` bytes of
 * content in all (taking a block, compacting, or growing). Returns the room now available
 * for writing (> 0, at most max - content), -ENOBUFS when the content already is `max`,
 * -ENOMEM when no memory. */
int wf_buf_reserve(struct wf_buf *b, struct wf_pool *pool, uint32_t want, uint32_t max);
/* Drop n bytes from the front; gives the block back when the buffer becomes empty. */
void wf_buf_consume(struct wf_buf *b, struct wf_pool *pool, uint32_t n);
/* Append bytes (reserving as needed, no upper bound beyond memory). 0 or -ENOMEM. */
int wf_buf_append(struct wf_buf *b, struct wf_pool *pool, const void *data, size_t n);
/* Give the block back whatever it holds. */
void wf_buf_release(struct wf_buf *b, struct wf_pool *pool);

#endif
