/* envoy.filters.network.tcp_proxy: relay bytes between the downstream and an upstream with
 * splice(2) through a pipe per direction, so the payload never enters user space.
 *
 *   downstream fd --splice--> pipe[0] --splice--> upstream fd      (direction 0: "rx")
 *   upstream fd   --splice--> pipe[1] --splice--> downstream fd    (direction 1: "tx")
 *
 * Half-close is passed on: when one side's reads end and its pipe is empty, the other side
 * gets shutdown(SHUT_WR); the session ends when both directions are done.
 *
 * A filter chain with TLS terminates it here: the downstream is then a wf_sio with the TLS
 * transport, whose plaintext cannot be spliced, so both directions go through its buffers
 * (pump_tls) and the upstream gets plain bytes. */
#include "core/log.h"
#include "proxy/alog.h"
#include "proxy/router.h"
#include "proxy/sio.h"
#include "proxy/stats.h"
#include "proxy/tls.h"
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

struct tsess;
static void connect_failed(struct tsess *s);

struct side {
	struct wf_io io;
	struct tsess *s;
	int which;                     /* 0 downstream, 1 upstream */
};

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
	struct side down, up;
	struct wf_sio ds;                  /* TLS downstream (its fd instead of down.io's) */
	uint8_t tls;
	struct dir d[2];
	struct wf_timer t;
	uint8_t connecting, dead;
	uint32_t attempts;                 /* connect attempts made (max_connect_attempts) */
	uint64_t last_ms;
	struct wf_stream_info si;
	char remote[64], local[64];
};

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
	s->si.bytes_received = s->d[0].total;
	s->si.bytes_sent = s->d[1].total;
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
	if (s->cluster && s->up.io.fd >= 0) {
		wf_stat_dec(s->cluster->st.cx_active);
		wf_stat_inc(s->cluster->st.cx_destroy);
	}
	wf_timer_cancel(&w->loop, &s->t);
	struct side *sides[2] = {&s->down, &s->up};
	for (int i = 0; i < 2; i++)
		if (sides[i]->io.fd >= 0) {
			wf_io_del(&w->loop, &sides[i]->io);
			close(sides[i]->io.fd);
		}
	if (s->tls)
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
	wf_io_want(&s->w->loop, &s->down.io, down);
	wf_io_want(&s->w->loop, &s->up.io, up);
}

/* The TLS path: decrypted downstream bytes from ds.rb to the upstream, upstream bytes into
 * ds (encrypted as they leave). At most TLS_BUF bytes wait in each direction. <0 fatal. */
static int pump_tls(struct tsess *s)
{
	struct wf_sio *ds = &s->ds;
	struct wf_loop *loop = &s->w->loop;
	struct wf_pool *pool = &s->w->pool;
	struct dir *d = &s->d[0];
	for (;;) {
		if (wf_buf_len(&ds->rb)) {
			ssize_t n = write(s->up.io.fd, wf_buf_data(&ds->rb), wf_buf_len(&ds->rb));
			if (n < 0) {
				if (errno == EAGAIN)
					break;
				if (errno == EINTR)
					continue;
				return -errno;
			}
			wf_buf_consume(&ds->rb, pool, (uint32_t)n);
			d->total += (uint64_t)n;
			wf_stat_add(s->cfg->st_rx_bytes, n);
			s->last_ms = wf_loop_now(loop);
			continue;
		}
		if (d->eof) {
			if (!d->shut) {
				d->shut = 1;
				shutdown(s->up.io.fd, SHUT_WR);
			}
			break;
		}
		int r = wf_sio_read(pool, ds, TLS_BUF);
		if (r == 0)
			break;
		if (r == -1)
			d->eof = 1;
		else if (r < 0)
			return r;
	}
	d = &s->d[1];
	for (;;) {
		if (wf_sio_queued(ds) >= TLS_BUF)
			break;
		if (d->eof) {
			if (!d->shut && !wf_sio_queued(ds)) {
				d->shut = 1;
				wf_sio_shutdown(ds);
			}
			break;
		}
		char buf[16384];
		ssize_t n = read(s->up.io.fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			if (errno == EINTR)
				continue;
			if (errno != ECONNRESET)
				return -errno;
			n = 0;
		}
		if (n == 0) {
			d->eof = 1;
			continue;
		}
		d->total += (uint64_t)n;
		wf_stat_add(s->cfg->st_tx_bytes, n);
		s->last_ms = wf_loop_now(loop);
		if (wf_sio_write(loop, pool, ds, buf, (size_t)n) < 0)
			return -EPIPE;
	}
	return 0;
}

static void update_interest_tls(struct tsess *s)
{
	struct wf_sio *ds = &s->ds;
	ds->want = !s->d[0].eof && !wf_buf_len(&ds->rb) ? EPOLLIN : 0;
	wf_sio_update(&s->w->loop, ds);
	uint32_t up = (!s->d[1].eof && wf_sio_queued(ds) < TLS_BUF ? EPOLLIN : 0) | (wf_buf_len(&ds->rb) ? EPOLLOUT : 0);
	wf_io_want(&s->w->loop, &s->up.io, up);
}

static void run(struct tsess *s)
{
	if (s->tls) {
		int r = pump_tls(s);
		if (r < 0) {
			sess_close(s, r == -EPIPE || r == -ECONNRESET || r == -EPROTO ? 0 : WF_RF_UC);
			return;
		}
		if (s->d[0].shut && s->d[1].shut) {
			sess_close(s, 0);
			return;
		}
		update_interest_tls(s);
		return;
	}
	int r = pump(s, 0, s->down.io.fd, s->up.io.fd);
	if (r == 0)
		r = pump(s, 1, s->up.io.fd, s->down.io.fd);
	if (r < 0) {
		sess_close(s, r == -EPIPE || r == -ECONNRESET ? 0 : WF_RF_UC);
		return;
	}
	if (s->d[0].shut && s->d[1].shut) {
		sess_close(s, 0);
		return;
	}
	update_interest(s);
}

/* Pick a host and start connecting to it; on failure, connect_failed decides whether
 * another attempt is allowed (max_connect_attempts). */
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
	int ufd = wf_sock_connect(&s->host->addr);
	if (ufd < 0) {
		connect_failed(s);
		return;
	}
	s->up.io.fd = ufd;
	s->up.io.registered = 0;
	if (s->cluster->keepalive)
		wf_sock_keepalive(ufd, s->cluster->keepalive_time, s->cluster->keepalive_interval,
		                  s->cluster->keepalive_probes);
	wf_stat_inc(s->cluster->st.cx_total);
	wf_stat_inc(s->cluster->st.cx_active);
	s->connecting = 1;
	wf_io_set(&w->loop, &s->up.io, EPOLLOUT);
	wf_timer_set(&w->loop, &s->t, s->cluster->connect_timeout_ms ? s->cluster->connect_timeout_ms : 5000);
}

static void connect_failed(struct tsess *s)
{
	wf_stat_inc(s->cluster->st.cx_connect_fail);
	if (s->up.io.fd >= 0) {
		wf_io_del(&s->w->loop, &s->up.io);
		close(s->up.io.fd);
		s->up.io.fd = -1;
		wf_stat_dec(s->cluster->st.cx_active);
		wf_stat_inc(s->cluster->st.cx_destroy);
	}
	if (s->attempts < s->cfg->max_connect_attempts) {
		connect_next(s);
		return;
	}
	sess_close(s, WF_RF_UF);
}

static void on_io(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	struct side *sd = io->data;
	struct tsess *s = sd->s;
	if (s->dead)
		return;
	if (s->tls && sd->which == 0 && (ev & EPOLLOUT) && wf_sio_flush(loop, &s->w->pool, &s->ds) < 0) {
		sess_close(s, WF_RF_DC);
		return;
	}
	if (s->connecting && s->tls && sd->which == 0) {
		/* the handshake (and the first bytes) while the upstream connects */
		int r = wf_sio_read(&s->w->pool, &s->ds, TLS_BUF);
		if (r == -1 || r < -1) {
			sess_close(s, WF_RF_DC);
			return;
		}
		s->ds.want = wf_buf_len(&s->ds.rb) < TLS_BUF ? EPOLLIN : 0;
		wf_sio_update(loop, &s->ds);
		return;
	}
	if (s->connecting) {
		if (sd->which == 0) {
			/* downstream hung up before the upstream answered */
			if (ev & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
				char c;
				if (recv(io->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0 || (ev & (EPOLLHUP | EPOLLERR)))
					sess_close(s, WF_RF_DC);
			}
			return;
		}
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr || (ev & (EPOLLERR | EPOLLHUP))) {
			connect_failed(s);
			return;
		}
		s->connecting = 0;
		s->last_ms = wf_loop_now(loop);
		wf_timer_set(loop, &s->t, s->cfg->idle_timeout_ms ? s->cfg->idle_timeout_ms : 0);
	}
	run(s);
}

static void on_timer(struct wf_loop *loop, struct wf_timer *t)
{
	struct tsess *s = t->data;
	if (s->connecting) {
		wf_stat_inc(s->cluster->st.cx_connect_timeout);
		connect_failed(s);
		return;
	}
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
	s->down.io.fd = fd;
	s->down.io.cb = on_io;
	s->down.io.data = &s->down;
	s->down.s = s;
	s->up.io.fd = -1;
	s->up.io.cb = on_io;
	s->up.io.data = &s->up;
	s->up.s = s;
	s->up.which = 1;
	s->d[0].pr = s->d[0].pw = s->d[1].pr = s->d[1].pw = -1;
	s->t.cb = on_timer;
	s->t.data = s;
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
	if (s->l->tls) {
		/* the fd moves into the TLS sio; the handshake starts now */
		s->tls = 1;
		s->ds.io = s->down.io;
		s->down.io.fd = -1;
		if (wf_tls_attach(&s->ds, s->l->tls) < 0) {
			sess_close(s, WF_RF_LR);
			return;
		}
		s->ds.want = EPOLLIN;
		wf_sio_update(&w->loop, &s->ds);
	} else {
		wf_io_set(&w->loop, &s->down.io, 0); /* read once the upstream is there */
	}
	connect_next(s);
}
