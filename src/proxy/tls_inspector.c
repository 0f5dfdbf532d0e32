/* envoy.filters.listener.tls_inspector, and the choice of a filter chain.
 *
 * A connection to a listener with several filter chains waits here until its first bytes
 * tell whether it is TLS and, if so, its SNI and ALPN: they are read with MSG_PEEK, so the
 * chosen chain (TLS termination, or passthrough with splice) still gets every byte. Waiting
 * is bounded: at most one record (WF_CLIENT_HELLO_MAX bytes) and listener_filters_timeout.
 * The socket is registered edge-triggered meanwhile: peeked bytes stay readable, and
 * level-triggered epoll would report them again and again while more are awaited. */
#include "core/log.h"
#include "net/client_hello.h"
#include "proxy/stats.h"
#include "proxy/worker.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct insp {
	struct wf_io io;
	struct wf_timer t;
	struct wf_defer defer;
	struct wf_worker *w;
	struct wf_snapshot *snap;
	const struct wf_listener *l;
};

static void insp_free(struct wf_defer *d)
{
	free((char *)d - offsetof(struct insp, defer));
}

/* Leave: the fd goes to `chain` (or is closed when NULL); the snapshot hold is dropped and
 * the struct freed after this batch of events. */
static void finish(struct insp *in, const struct wf_listener *chain)
{
	struct wf_worker *w = in->w;
	int fd = in->io.fd;
	wf_io_del(&w->loop, &in->io);
	wf_timer_cancel(&w->loop, &in->t);
	in->io.fd = -1;
	if (chain) {
		wf_worker_dispatch(w, in->snap, chain, fd);
	} else {
		if (fd >= 0)
			close(fd);
	}
	wf_worker_release(w, in->snap);
	in->defer.cb = insp_free;
	wf_loop_defer(&w->loop, &in->defer);
}

static void choose(struct insp *in, const struct wf_client_hello *h)
{
	const struct wf_listener *chain =
		h ? wf_chain_select(in->l, h->sni_len ? h->sni : NULL, h->alpn, h->alpn_len, 1)
		  : wf_chain_select(in->l, NULL, NULL, 0, 0);
	if (!chain) {
		wf_stat_inc(in->l->st_no_chain_match);
		wf_debug("listener %s: no filter chain for %s%s", in->l->name, h && h->sni_len ? "SNI " : "a connection",
		         h && h->sni_len ? h->sni : "");
	}
	finish(in, chain);
}

static void on_io(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	struct insp *in = io->data;
	if (io->fd < 0)
		return;
	static __thread uint8_t buf[WF_CLIENT_HELLO_MAX];
	ssize_t n = recv(io->fd, buf, sizeof(buf), MSG_PEEK);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		finish(in, NULL);
		return;
	}
	if (n == 0) {
		finish(in, NULL); /* closed before saying anything */
		return;
	}
	struct wf_client_hello h;
	int r = wf_client_hello_parse(buf, (size_t)n, &h);
	if (r == 0 && (size_t)n < sizeof(buf)) {
		if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			finish(in, NULL); /* a truncated hello, and nothing more will come */
		return;
	}
	choose(in, r == -1 ? NULL : &h);
}

static void on_timeout(struct wf_loop *loop, struct wf_timer *t)
{
	struct insp *in = t->data;
	wf_stat_inc(in->l->st_pre_cx_timeout);
	if (in->l->continue_on_timeout)
		choose(in, NULL);
	else
		finish(in, NULL);
}

void wf_inspect_accept(struct wf_worker *w, struct wf_snapshot *snap, const struct wf_listener *l, int fd)
{
	if (!l->inspect) {
		const struct wf_listener *chain = wf_chain_select(l, NULL, NULL, 0, 0);
		if (!chain) {
			wf_stat_inc(l->st_no_chain_match);
			close(fd);
			return;
		}
		wf_worker_dispatch(w, snap, chain, fd);
		return;
	}
	struct insp *in = calloc(1, sizeof(*in));
	if (!in) {
		close(fd);
		return;
	}
	in->w = w;
	in->snap = snap;
	wf_worker_hold(w, snap);
	in->l = l;
	in->io.fd = fd;
	in->io.cb = on_io;
	in->io.data = in;
	in->t.cb = on_timeout;
	in->t.data = in;
	if (wf_io_set(&w->loop, &in->io, EPOLLIN | EPOLLRDHUP | EPOLLET) < 0) {
		finish(in, NULL);
		return;
	}
	if (l->inspect_timeout_ms)
		wf_timer_set(&w->loop, &in->t, l->inspect_timeout_ms);
}
