/* envoy.filters.network.tcp_proxy: relay bytes between the downstream and an upstream.
 *
 * Plain on both sides: splice(2) through a pipe per direction, so the payload never enters
 * user space.
 *
 *   downstream fd --splice--> pipe[0] --splice--> upstream fd      (direction 0: "rx")
 *   upstream fd   --splice--> pipe[1] --splice--> downstream fd    (direction 1: "tx")
 *
 * TLS on either side (a filter chain that terminates it, a cluster that originates it): the
 * bytes are decrypted or encrypted in user space, so they go through the two wf_sio's buffers
 * with the byte tunnel (proxy/tunnel.c, the relay WebSocket upgrades use), at most TLS_BUF
 * bytes waiting per direction.
 *
 * Either way half-close is passed on (TLS: close_notify is an EOF, an EOF is sent as
 * close_notify), and the session ends when both directions are done.
 *
 * The upstream connection is a wf_uconn (proxy/upstream.c) never taken from or given back to
 * the HTTP pools: it brings the connect timeout, the TLS handshake (a failed one is a connect
 * failure, UF, retried under max_connect_attempts), max_connections and the cluster's
 * connection stats. */
#include "core/log.h"
#include "proxy/alog.h"
#include "proxy/router.h"
#include "proxy/sio.h"
#include "proxy/stats.h"
#include "proxy/tls.h"
#include "proxy/tunnel.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define PIPE_CHUNK (64 * 1024)
#define TLS_BUF (64 * 1024)          /* bytes held per direction on the TLS path */

struct dir {
	int pr, pw;                    /* pipe read / write ends */
	size_t pending;                /* bytes in the pipe */
	uint64_t total;
	uint8_t eof;                   /* source finished */
	uint8_t shut;                  /* destination got SHUT_WR */
};

struct tsess {
	struct wf_conn_link link;
	struct wf_defer defer;
	struct wf_worker *w;
	struct wf_snapshot *snap;
	const struct wf_listener *l;
	const struct wf_tcp_cfg *cfg;
	struct wf_cluster *cluster;
	const struct wf_host *host;
	struct wf_sio ds;                  /* downstream (TLS when the chain terminates it) */
	struct wf_uconn *u;                /* upstream: connecting, then relaying */
	uint8_t tunnel;                    /* TLS on a side: relay through the sio buffers */
	struct wf_tunnel tun;
	struct dir d[2];                   /* splice */
	struct wf_timer t;                 /* idle timeout */
	uint8_t connecting, dead;
	uint32_t attempts;                 /* connect attempts made (max_connect_attempts) */
	uint64_t last_ms;
	struct wf_stream_info si;
	char remote[64], local[64];
};

static void connect_next(struct tsess *s);

static void sess_free(struct wf_defer *d)
{
	free((char *)d - offsetof(struct tsess, defer));
}

static void sess_close(struct tsess *s, uint32_t flags)
{
	if (s->dead)
		return;
	s->dead = 1;
	struct wf_worker *w = s->w;
	s->si.response_flags |= flags;
	s->si.end_us = wf_now_us();
	s->si.bytes_received = s->tunnel ? s->tun.bytes[0] : s->d[0].total;
	s->si.bytes_sent = s->tunnel ? s->tun.bytes[1] : s->d[1].total;
	s->si.downstream_remote = s->remote;
	s->si.downstream_local = s->local;
	if (s->host) {
		s->si.upstream_host = s->host->addr_str;
		wf_cluster_rq_end(w, s->cluster, s->host);
	}
	if (s->cluster)
		s->si.upstream_cluster = s->cluster->name;
	for (uint32_t i = 0; i < s->cfg->n_logs; i++)
		if (wf_alog_emit(s->cfg->logs[i], w->id, &s->si))
			wf_worker_log_dirty(w, s->cfg->logs[i]);
	wf_stat_dec(s->cfg->st_cx_active);
	wf_stat_dec(s->l->st_cx_active);
	wf_stat_inc(s->l->st_cx_destroy);
	wf_timer_cancel(&w->loop, &s->t);
	if (s->u)
		wf_upstream_release(s->u, 0);
	wf_sio_close(&w->loop, &w->pool, &s->ds);
	for (int i = 0; i < 2; i++) {
		if (s->d[i].pr >= 0)
			close(s->d[i].pr);
		if (s->d[i].pw >= 0)
			close(s->d[i].pw);
	}
	wf_conn_link_del(w, &s->link);
	wf_worker_release(w, s->snap);
	s->defer.cb = sess_free;
	wf_loop_defer(&w->loop, &s->defer);
}

/* Move what can be moved in direction i (src -> dst). <0 on a fatal error. */
static int pump(struct tsess *s, int i, int src, int dst)
{
	struct dir *d = &s->d[i];
	for (;;) {
		if (d->pending) {
			ssize_t n = splice(d->pr, NULL, dst, NULL, d->pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0) {
				if (errno == EAGAIN)
					return 0;
				if (errno == EINTR)
					continue;
				return -errno;
			}
			d->pending -= (size_t)n;
			d->total += (uint64_t)n;
			wf_stat_add(i == 0 ? s->cfg->st_rx_bytes : s->cfg->st_tx_bytes, n);
			s->last_ms = wf_loop_now(&s->w->loop);
			continue;
		}
		if (d->eof) {
			if (!d->shut) {
				d->shut = 1;
				shutdown(dst, SHUT_WR);
			}
			return 0;
		}
		ssize_t n = splice(src, NULL, d->pw, NULL, PIPE_CHUNK, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0) {
			if (errno == EAGAIN)
				return 0;
			if (errno == EINTR)
				continue;
			if (errno == ECONNRESET) {
				d->eof = 1;
				continue;
			}
			return -errno;
		}
		if (n == 0) {
			d->eof = 1;
			continue;
		}
		d->pending += (size_t)n;
		s->last_ms = wf_loop_now(&s->w->loop);
	}
}

static void update_interest(struct tsess *s)
{
	/* fd as source of one direction (read when its pipe is empty) and destination of the
	 * other (write interest while that pipe holds bytes) */
	uint32_t down = (!s->d[0].eof && !s->d[0].pending ? EPOLLIN : 0) | (s->d[1].pending ? EPOLLOUT : 0);
	uint32_t up = (!s->d[1].eof && !s->d[1].pending ? EPOLLIN : 0) | (s->d[0].pending ? EPOLLOUT : 0);
	wf_io_want(&s->w->loop, &s->ds.io, down);
	wf_upstream_want(s->u, up);
}

/* The TLS path: one step of the tunnel, its bytes counted as the splice path counts them. */
static int run_tunnel(struct tsess *s)
{
	uint64_t rx = s->tun.bytes[0], tx = s->tun.bytes[1];
	int r = wf_tunnel_run(&s->tun, &s->w->loop, &s->w->pool);
	if (s->tun.bytes[0] != rx || s->tun.bytes[1] != tx) {
		wf_stat_add(s->cfg->st_rx_bytes, (int64_t)(s->tun.bytes[0] - rx));
		wf_stat_add(s->cfg->st_tx_bytes, (int64_t)(s->tun.bytes[1] - tx));
		s->last_ms = wf_loop_now(&s->w->loop);
	}
	return r;
}

static void run(struct tsess *s)
{
	if (s->dead || s->connecting)
		return;
	int r;
	if (s->tunnel) {
		r = run_tunnel(s);
	} else {
		r = pump(s, 0, s->ds.io.fd, s->u->s.io.fd);
		if (r == 0)
			r = pump(s, 1, s->u->s.io.fd, s->ds.io.fd);
		if (r == 0 && s->d[0].shut && s->d[1].shut)
			r = 1;
		if (r == 0)
			update_interest(s);
	}
	if (r < 0)
		sess_close(s, r == -EPIPE || r == -ECONNRESET || r == -EPROTO ? 0 : WF_RF_UC);
	else if (r > 0)
		sess_close(s, 0);
}

/* ---- the upstream connection ------------------------------------------------------------- */

static void up_connected(struct wf_uconn *u, void *owner)
{
	struct tsess *s = owner;
	s->connecting = 0;
	s->last_ms = wf_loop_now(&s->w->loop);
	wf_timer_set(&s->w->loop, &s->t, s->cfg->idle_timeout_ms);
	if (s->tunnel) {
		s->tun.s[0] = &s->ds;
		s->tun.s[1] = &u->s;
		s->tun.wm = TLS_BUF;
	}
	run(s);
}

static void up_event(struct wf_uconn *u, void *owner)
{
	run(owner);
}

/* Connecting (TCP or TLS) failed: another attempt when max_connect_attempts allows.
 * Afterwards (a write failed): the session ends. u is gone either way. */
static void up_failed(struct wf_uconn *u, void *owner, int err, int connecting)
{
	struct tsess *s = owner;
	s->u = NULL;
	if (!connecting) {
		sess_close(s, err == -EPIPE || err == -ECONNRESET ? 0 : WF_RF_UC);
		return;
	}
	if (s->attempts < s->cfg->max_connect_attempts) {
		connect_next(s);
		return;
	}
	sess_close(s, WF_RF_UF);
}

static const struct wf_uconn_ops up_ops = {
	.connected = up_connected,
	.readable = up_event,
	.drained = up_event,
	.failed = up_failed,
};

/* Pick a host and start connecting to it. */
static void connect_next(struct tsess *s)
{
	struct wf_worker *w = s->w;
	s->attempts++;
	if (s->host)
		wf_cluster_rq_end(w, s->cluster, s->host); /* the previous attempt */
	s->host = wf_cluster_pick(w, s->cluster, 0, 0);
	if (!s->host) {
		wf_stat_inc(s->cluster->st.none_healthy);
		sess_close(s, WF_RF_UH);
		return;
	}
	wf_cluster_rq_start(w, s->cluster, s->host);
	int err = 0;
	s->u = wf_upstream_connect(w, s->cluster, s->host, &up_ops, s, &err);
	if (s->u)
		return;
	if (err == -EAGAIN) {
		sess_close(s, WF_RF_UO); /* max_connections */
		return;
	}
	wf_stat_inc(s->cluster->st.cx_connect_fail);
	up_failed(NULL, s, err, 1);
}

/* ---- the downstream ---------------------------------------------------------------------- */

static void on_down(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	struct tsess *s = io->data;
	if (s->dead)
		return;
	if (!s->connecting) {
		run(s);
		return;
	}
	if (wf_sio_is_tls(&s->ds)) {
		/* the handshake (and the first bytes) while the upstream connects */
		if (((ev & EPOLLOUT) && wf_sio_flush(loop, &s->w->pool, &s->ds) < 0) ||
		    wf_sio_read(&s->w->pool, &s->ds, TLS_BUF) < 0) {
			sess_close(s, WF_RF_DC);
			return;
		}
		s->ds.want = wf_buf_len(&s->ds.rb) < TLS_BUF ? EPOLLIN : 0;
		wf_sio_update(loop, &s->ds);
		return;
	}
	/* plain: not read yet; did it hang up before the upstream answered? */
	if (ev & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
		char c;
		if (recv(io->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0 || (ev & (EPOLLHUP | EPOLLERR)))
			sess_close(s, WF_RF_DC);
	}
}

static void on_timer(struct wf_loop *loop, struct wf_timer *t)
{
	struct tsess *s = t->data;
	uint64_t idle = wf_loop_now(loop) - s->last_ms;
	if (idle >= s->cfg->idle_timeout_ms) {
		wf_stat_inc(s->cfg->st_idle_timeout);
		sess_close(s, 0);
		return;
	}
	wf_timer_set(loop, t, s->cfg->idle_timeout_ms - idle);
}

void wf_tcp_accept(struct wf_worker *w, struct wf_snapshot *snap, const struct wf_listener *l, int fd)
{
	struct tsess *s = calloc(1, sizeof(*s));
	struct timeval tv;
	gettimeofday(&tv, NULL);
	s->w = w;
	s->snap = snap;
	wf_worker_hold(w, s->snap);
	s->l = l;
	s->cfg = s->l->tcp;
	s->si.start_us = wf_now_us();
	s->si.start_wall_us = (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
	s->si.upstream_service_us = -1;
	s->ds.io.fd = fd;
	s->ds.io.cb = on_down;
	s->ds.io.data = s;
	s->d[0].pr = s->d[0].pw = s->d[1].pr = s->d[1].pw = -1;
	s->t.cb = on_timer;
	s->t.data = s;
	s->connecting = 1;
	struct wf_addr a;
	if (wf_sock_peer(fd, &a) == 0)
		wf_addr_str(&a, s->remote, sizeof(s->remote));
	if (wf_sock_local(fd, &a) == 0)
		wf_addr_str(&a, s->local, sizeof(s->local));
	s->link.kind = WF_NF_TCP;
	wf_conn_link_add(w, &s->link);
	wf_stat_inc(s->cfg->st_cx_total);
	wf_stat_inc(s->cfg->st_cx_active);
	wf_stat_inc(s->l->st_cx_total);
	wf_stat_inc(s->l->st_cx_active);
	const struct wf_tcp_cfg *cfg = s->cfg;
	s->cluster = cfg->cluster;
	if (cfg->n_weighted)
		s->cluster = wf_route_weighted(w, cfg->weighted, cfg->n_weighted, cfg->total_weight)->cluster;
	s->tunnel = s->l->tls || s->cluster->tls;
	if (!s->tunnel) {
		int p0[2], p1[2];
		if (pipe2(p0, O_NONBLOCK | O_CLOEXEC) < 0) {
			sess_close(s, WF_RF_LR);
			return;
		}
		s->d[0].pr = p0[0], s->d[0].pw = p0[1];
		if (pipe2(p1, O_NONBLOCK | O_CLOEXEC) < 0) {
			sess_close(s, WF_RF_LR);
			return;
		}
		s->d[1].pr = p1[0], s->d[1].pw = p1[1];
	}
	if (s->l->tls) {
		/* the handshake starts now, while the upstream connects */
		if (wf_tls_attach(&s->ds, s->l->tls) < 0) {
			sess_close(s, WF_RF_LR);
			return;
		}
		s->ds.want = EPOLLIN;
		wf_sio_update(&w->loop, &s->ds);
	} else {
		wf_io_set(&w->loop, &s->ds.io, 0); /* read once the upstream is there */
	}
	connect_next(s);
}
