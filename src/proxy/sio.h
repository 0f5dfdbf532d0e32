/* A non-blocking socket with an input and an output buffer (both from the worker's pool,
 * both released when empty). Writes go straight to the socket when nothing is queued, so the
 * output buffer is only used for what the kernel would not take.
 *
 * Transport: plain bytes (xprt == NULL, the code below, kept branch-free for speed) or a
 * transport ops table (TLS, proxy/tls.c) that every call is handed to, so that the HTTP code
 * and the TCP proxy read and write the same way whatever the socket carries. */
#ifndef WF_PROXY_SIO_H
#define WF_PROXY_SIO_H

#include <sys/uio.h>

#include "core/buf.h"
#include "core/loop.h"

struct wf_sio;

/* A transport other than plain bytes. Same contracts as the wf_sio_* functions below;
 * `interest` adds what the transport itself needs to the owner's epoll interest. */
struct wf_xprt_ops {
	int (*read)(struct wf_pool *pool, struct wf_sio *s, uint32_t max);
	int (*writev)(struct wf_loop *loop, struct wf_pool *pool, struct wf_sio *s, const struct iovec *iov, int n);
	int (*flush)(struct wf_loop *loop, struct wf_pool *pool, struct wf_sio *s);
	uint32_t (*interest)(struct wf_loop *loop, struct wf_sio *s, uint32_t events);
	void (*shutdown)(struct wf_sio *s);  /* the transport's end of output (TLS close_notify) */
	void (*close)(struct wf_sio *s);   /* before the fd is closed; frees xctx */
};

struct wf_sio {
	struct wf_io io;
	const struct wf_xprt_ops *xprt;  /* NULL: plain */
	void *xctx;                      /* the transport's per-connection state */
	struct wf_buf rb, wb;
	uint32_t want;            /* interest the owner wants besides EPOLLOUT for queued output */
	unsigned eof : 1;         /* the peer closed its side */
	unsigned cork : 1;        /* gather small writes until wf_sio_uncork */
	unsigned err : 1;         /* a write failed: the connection is dead */
};

#define WF_SIO_CORK_MAX (16 * 1024)
#define WF_SIO_MAX_IOV 8

/* Send iov[0..n) (n <= WF_SIO_MAX_IOV): write now what the socket takes, queue the rest;
 * while corked, small writes are only queued. 0, or -errno when the connection failed. */
int wf_sio_writev(struct wf_loop *loop, struct wf_pool *pool, struct wf_sio *s, const struct iovec *iov, int n);
static inline int wf_sio_write(struct wf_loop *loop, struct wf_pool *pool, struct wf_sio *s, const void *p, size_t len)
{
	struct iovec v = {(void *)p, len};
	return wf_sio_writev(loop, pool, s, &v, 1);
}
/* Stop gathering and write what was gathered. 0 or -errno. */
int wf_sio_uncork(struct wf_loop *loop, struct wf_pool *pool, struct wf_sio *s);
/* Write queued output. 1 when nothing is left queued, 0 when some is, -errno on failure. */
int wf_sio_flush(struct wf_loop *loop, struct wf_pool *pool, struct wf_sio *s);
/* Move the HTTP/2 codec's pending frames to the socket while fewer than `limit` bytes are
 * queued in s's write buffer (the rest stays serialized in the codec, as back-pressure): written
 * straight from the codec's buffer when nothing is queued, what the kernel leaves taken over
 * with that buffer. After it, either the codec has nothing pending or s has bytes queued.
 * 0, or <0 when the socket failed (the caller closes the connection). */
struct wf_h2;
int wf_sio_take_h2(struct wf_loop *loop, struct wf_pool *pool, struct wf_sio *s, struct wf_h2 *h2, uint32_t limit);
/* Read what is available into rb (at most up to `max` buffered bytes).
 * >0 bytes read; 0 would block or no room; -1 EOF (s->eof set); <-1: -errno. */
int wf_sio_read(struct wf_pool *pool, struct wf_sio *s, uint32_t max);
/* Update epoll interest: s->want plus EPOLLOUT while output is queued. */
void wf_sio_update(struct wf_loop *loop, struct wf_sio *s);
static inline uint32_t wf_sio_queued(const struct wf_sio *s) { return wf_buf_len(&s->wb); }
/* End the output (after what is queued has left): the transport's goodbye, then SHUT_WR. */
void wf_sio_shutdown(struct wf_sio *s);
/* Release buffers and close the fd. */
void wf_sio_close(struct wf_loop *loop, struct wf_pool *pool, struct wf_sio *s);

#endif
