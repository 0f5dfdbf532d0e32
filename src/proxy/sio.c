#include "proxy/sio.h"

#include "http/h2.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

void wf_sio_update(struct wf_loop *loop, struct wf_sio *s)
{
	if (s->io.fd < 0)
		return;
	/* while corked, queued bytes leave at uncork: no need to wait for writability */
	uint32_t ev = s->want | (wf_buf_len(&s->wb) && !s->cork ? EPOLLOUT : 0);
	if (s->xprt)
		ev = s->xprt->interest(loop, s, ev);
	wf_io_want(loop, &s->io, ev);
}

int wf_sio_flush(struct wf_loop *loop, struct wf_pool *pool, struct wf_sio *s)
{
	if (s->xprt)
		return s->xprt->flush(loop, pool, s);
	while (wf_buf_len(&s->wb)) {
		ssize_t n = send(s->io.fd, wf_buf_data(&s->wb), wf_buf_len(&s->wb), MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			if (errno == EINTR)
				continue;
			s->err = 1;
			return -errno;
		}
		wf_buf_consume(&s->wb, pool, (uint32_t)n);
	}
	wf_sio_update(loop, s);
	return wf_buf_len(&s->wb) ? 0 : 1;
}

int wf_sio_writev(struct wf_loop *loop, struct wf_pool *pool, struct wf_sio *s, const struct iovec *iov, int n)
{
	if (s->xprt)
		return s->xprt->writev(loop, pool, s, iov, n);
	if (s->err)
		return -EPIPE;
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	/* Corked: small pieces are gathered and leave in one write at uncork. */
	if (s->cork && wf_buf_len(&s->wb) + total <= WF_SIO_CORK_MAX) {
		for (int i = 0; i < n; i++)
			if (wf_buf_append(&s->wb, pool, iov[i].iov_base, iov[i].iov_len) < 0)
				return -ENOMEM;
		return 0;
	}
	size_t done = 0;
	uint32_t queued = wf_buf_len(&s->wb);
	if (s->io.registered && !(s->io.events & EPOLLOUT)) {
		/* The socket is believed writable: what is queued, then the new bytes, in one call. */
		struct iovec v[WF_SIO_MAX_IOV + 1];
		int k = 0;
		if (queued)
			v[k++] = (struct iovec){wf_buf_data(&s->wb), queued};
		for (int i = 0; i < n && k <= WF_SIO_MAX_IOV; i++)
			v[k++] = iov[i];
		/* send/sendmsg, not writev/read: the socket calls skip the VFS layer */
		ssize_t w = k == 1 ? send(s->io.fd, v[0].iov_base, v[0].iov_len, MSG_NOSIGNAL)
		                   : sendmsg(s->io.fd, &(struct msghdr){.msg_iov = v, .msg_iovlen = (size_t)k}, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			s->err = 1;
			return -errno;
		}
		if (w > 0) {
			size_t from_q = (size_t)w < queued ? (size_t)w : queued;
			if (from_q)
				wf_buf_consume(&s->wb, pool, (uint32_t)from_q);
			done = (size_t)w - from_q;
		}
	}
	if (done == total) {
		if (queued)
			wf_sio_update(loop, s);
		return 0;
	}
	/* Queue what the kernel did not take. */
	size_t skip = done;
	for (int i = 0; i < n; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		if (wf_buf_append(&s->wb, pool, (const char *)iov[i].iov_base + skip, iov[i].iov_len - skip) < 0)
			return -ENOMEM;
		skip = 0;
	}
	wf_sio_update(loop, s);
	return 0;
}

int wf_sio_uncork(struct wf_loop *loop, struct wf_pool *pool, struct wf_sio *s)
{
	s->cork = 0;
	if (!wf_buf_len(&s->wb) || !s->io.registered || (s->io.events & EPOLLOUT))
		return s->err ? -EPIPE : 0;
	int r = wf_sio_flush(loop, pool, s);
	return r < 0 ? r : 0;
}

int wf_sio_take_h2(struct wf_loop *loop, struct wf_pool *pool, struct wf_sio *s, struct wf_h2 *h2, uint32_t limit)
{
	const uint8_t *p;
	size_t n;
	if (!s->xprt && !s->cork && wf_buf_len(&s->wb) && (s->io.events & EPOLLOUT))
		return 0; /* the kernel is full: the frames wait in the codec, not copied to s */
	while (wf_sio_queued(s) < limit && (n = wf_h2_send_pending(h2, &p)) > 0) {
		if (!s->xprt && !s->cork && !s->err && !wf_buf_len(&s->wb) && s->io.registered &&
		    !(s->io.events & EPOLLOUT)) {
			/* Straight from the codec's buffer. What the kernel does not take, the socket
			 * keeps with that buffer itself (handed over, not copied), and it waits to be
			 * writable: a full socket takes no more. */
			ssize_t w = send(s->io.fd, p, n, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && errno != EAGAIN) {
				s->err = 1;
				return -ECONNRESET;
			}
			if (w > 0)
				wf_h2_sent(h2, (size_t)w);
			if (w == (ssize_t)n)
				continue;
			if (wf_h2_hand_out(h2, &s->wb, pool) < 0) { /* (another pool: copied) */
				n = wf_h2_send_pending(h2, &p);
				if (wf_buf_append(&s->wb, pool, p, n) < 0)
					return -ECONNRESET;
				wf_h2_sent(h2, n);
			}
			wf_sio_update(loop, s);
			break;
		}
		if (wf_sio_write(loop, pool, s, p, n) < 0)
			return -ECONNRESET;
		wf_h2_sent(h2, n);
	}
	return 0;
}

int wf_sio_read(struct wf_pool *pool, struct wf_sio *s, uint32_t max)
{
	if (s->xprt)
		return s->xprt->read(pool, s, max);
	if (wf_buf_len(&s->rb) >= max)
		return 0;
	int room = wf_buf_reserve(&s->rb, pool, 4096, max);
	if (room <= 0)
		return room == -ENOBUFS ? 0 : room;
	uint32_t want = (uint32_t)room;
	if (want > max - wf_buf_len(&s->rb) && max - wf_buf_len(&s->rb) >= 4096)
		want = max - wf_buf_len(&s->rb);
	ssize_t n = recv(s->io.fd, s->rb.p + s->rb.w, want, 0);
	if (n > 0) {
		s->rb.w += (uint32_t)n;
		return (int)n;
	}
	if (!wf_buf_len(&s->rb))
		wf_buf_release(&s->rb, pool);
	if (n == 0) {
		s->eof = 1;
		return -1;
	}
	if (errno == EAGAIN || errno == EINTR)
		return 0;
	return errno == ECONNRESET ? -1 : -errno;
}

void wf_sio_shutdown(struct wf_sio *s)
{
	if (s->xprt)
		s->xprt->shutdown(s);
	if (s->io.fd >= 0)
		shutdown(s->io.fd, SHUT_WR);
}

void wf_sio_close(struct wf_loop *loop, struct wf_pool *pool, struct wf_sio *s)
{
	if (s->xprt) {
		s->xprt->close(s);
		s->xprt = NULL;
		s->xctx = NULL;
	}
	if (s->io.fd >= 0) {
		wf_io_del(loop, &s->io);
		close(s->io.fd);
		s->io.fd = -1;
	}
	wf_buf_release(&s->rb, pool);
	wf_buf_release(&s->wb, pool);
}
