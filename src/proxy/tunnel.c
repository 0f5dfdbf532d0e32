#include "proxy/tunnel.h"

#include <errno.h>
#include <sys/socket.h>

/* Side i has nothing left to do: it sent all it will send and was told all it will be told.
 * It leaves epoll, which would otherwise keep reporting its hang-up. */
static int side_done(const struct wf_tunnel *t, int i)
{
	return t->eof[i] && t->shut[i];
}

/* Direction i: from s[i] to s[1-i]. <0 on a failed read or write, or a reset. */
static int pump(struct wf_tunnel *t, int i, struct wf_loop *loop, struct wf_pool *pool)
{
	struct wf_sio *src = t->s[i], *dst = t->s[1 - i];
	for (;;) {
		uint32_t n = wf_buf_len(&src->rb);
		if (n) {
			if (wf_sio_queued(dst) >= t->wm)
				return 0; /* resumed when dst drains */
			int r = wf_sio_write(loop, pool, dst, wf_buf_data(&src->rb), n);
			if (r < 0)
				return r;
			t->bytes[i] += n;
			wf_buf_consume(&src->rb, pool, n);
			continue;
		}
		if (t->eof[i] || wf_sio_queued(dst) >= t->wm)
			break;
		errno = 0;
		int r = wf_sio_read(pool, src, t->wm);
		if (r > 0)
			continue;
		if (r == 0)
			break;
		if (r == -1 && errno != ECONNRESET) {
			t->eof[i] = 1; /* an orderly close of its sending side */
			break;
		}
		return r == -1 ? -ECONNRESET : r;
	}
	if (t->eof[i] && !t->shut[1 - i] && !wf_sio_queued(dst)) {
		t->shut[1 - i] = 1;
		wf_sio_shutdown(dst); /* TLS: close_notify first */
	}
	return 0;
}

int wf_tunnel_run(struct wf_tunnel *t, struct wf_loop *loop, struct wf_pool *pool)
{
	for (int i = 0; i < 2; i++) {
		int r = side_done(t, 1 - i) ? 0 : wf_sio_flush(loop, pool, t->s[1 - i]);
		if (r < 0)
			return r;
		r = pump(t, i, loop, pool);
		if (r < 0)
			return r;
	}
	if (t->shut[0] && t->shut[1])
		return 1;
	for (int i = 0; i < 2; i++) {
		if (side_done(t, i)) {
			wf_io_del(loop, &t->s[i]->io);
			continue;
		}
		int rd = !t->eof[i] && wf_sio_queued(t->s[1 - i]) < t->wm;
		t->s[i]->want = rd ? EPOLLIN | EPOLLRDHUP : 0;
		wf_sio_update(loop, t->s[i]);
	}
	return 0;
}
