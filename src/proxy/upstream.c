#include "proxy/upstream.h"

#include "core/log.h"
#include "proxy/stats.h"
#include "proxy/tls.h"
#include "proxy/worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>


/* A pool per (address, TLS config): a TLS connection is reused only by a cluster with the
 * same UpstreamTlsContext (SNI, certificates, verification), and never for plain requests. */
struct wf_pool_entry {
	struct wf_addr addr;
	uint64_t tls_key;
	struct wf_uconn *idle;
	uint32_t n_idle;
};

static struct wf_pool_entry *pool_entry(struct wf_worker *w, const struct wf_addr *a, uint64_t tls_key)
{
	for (uint32_t i = 0; i < w->n_upools; i++)
		if (wf_addr_eq(&w->upools[i].addr, a) && w->upools[i].tls_key == tls_key)
			return &w->upools[i];
	if (w->n_upools == w->cap_upools) {
		/* Connections find their pool by address, never by pointer, so the array may move. */
		w->cap_upools = w->cap_upools ? w->cap_upools * 2 : 16;
		w->upools = realloc(w->upools, w->cap_upools * sizeof(*w->upools));
	}
	struct wf_pool_entry *e = &w->upools[w->n_upools++];
	memset(e, 0, sizeof(*e));
	e->addr = *a;
	e->tls_key = tls_key;
	return e;
}

/* ---- waiting for a connection ------------------------------------------------------------ */

static void waiter_fire(struct wf_loop *loop, struct wf_timer *t)
{
	struct wf_uwaiter *wt = t->data;
	wt->ready(wt);
}

void wf_upstream_wait(struct wf_worker *w, struct wf_uwaiter *wt)
{
	wt->t.cb = waiter_fire;
	wt->t.data = wt;
	wt->next = NULL;
	if (!w->waiters) {
		w->waiters = wt;
		wt->prev = wt; /* the head's prev is the tail */
	} else {
		struct wf_uwaiter *tail = w->waiters->prev;
		tail->next = wt;
		wt->prev = tail;
		w->waiters->prev = wt;
	}
	wt->queued = 1;
}

void wf_upstream_unwait(struct wf_worker *w, struct wf_uwaiter *wt)
{
	wf_timer_cancel(&w->loop, &wt->t);
	if (!wt->queued)
		return;
	wt->queued = 0;
	if (wt == w->waiters) {
		w->waiters = wt->next;
		if (w->waiters)
			w->waiters->prev = wt->prev;
	} else {
		wt->prev->next = wt->next;
		if (wt->next)
			wt->next->prev = wt->prev;
		else
			w->waiters->prev = wt->prev;
	}
	wt->next = wt->prev = NULL;
}

/* A connection of cluster `cb` became available (addr: this host's, pooled) or a slot opened
 * (addr NULL): wake the first waiter it can serve. */
static void wake(struct wf_worker *w, struct wf_cb *cb, const struct wf_addr *addr)
{
	for (struct wf_uwaiter *wt = w->waiters; wt; wt = wt->next)
		if (wt->cb == cb && (!addr || wf_addr_eq(&wt->addr, addr))) {
			wf_upstream_unwait(w, wt);
			wf_timer_set(&w->loop, &wt->t, 1);
			return;
		}
}

/* The stats and circuit breaker a connection counts on to its end: it may idle in the pool
 * after its host, or its whole cluster, left the config. */
#define N_HELD 7
#define held_stats(u)                                                                                  \
	((const uint32_t[N_HELD]){(u)->st_cx_active, (u)->st_cx_destroy, (u)->st_cx_connect_fail,      \
	                          (u)->st_cx_connect_timeout, (u)->st_destroy_remote, (u)->st_host_cx_active, \
	                          (u)->st_host_connect_fail})

static void free_uconn(struct wf_defer *d)
{
	struct wf_uconn *u = (struct wf_uconn *)((char *)d - offsetof(struct wf_uconn, defer));
	wf_stats_release(held_stats(u), N_HELD);
	if (u->cb)
		wf_cb_release(u->cb);
	free(u);
}

static void unlink_idle(struct wf_uconn *u)
{
	struct wf_pool_entry *pe = pool_entry(u->w, &u->addr, u->tls_key);
	for (struct wf_uconn **pp = &pe->idle; *pp; pp = &(*pp)->next)
		if (*pp == u) {
			*pp = u->next;
			pe->n_idle--;
			return;
		}
}

static void destroy(struct wf_uconn *u)
{
	if (u->dead)
		return;
	u->dead = 1;
	if (u->state == WF_U_IDLE)
		unlink_idle(u);
	wf_timer_cancel(&u->w->loop, &u->t);
	wf_sio_close(&u->w->loop, &u->w->pool, &u->s);
	if (u->cb) {
		wf_cb_put(&u->cb->cx);
		wake(u->w, u->cb, NULL);
	}
	wf_stat_dec(u->st_cx_active);
	wf_stat_dec(u->st_host_cx_active);
	wf_stat_inc(u->st_cx_destroy);
	u->defer.cb = free_uconn;
	wf_loop_defer(&u->w->loop, &u->defer);
}

/* The connection is gone: free it, then tell its owner (who must not touch it again). */
static void fail(struct wf_uconn *u, int err, int connecting)
{
	const struct wf_uconn_ops *ops = u->ops;
	void *owner = u->owner;
	destroy(u);
	ops->failed(u, owner, err, connecting);
}

/* Connected (TCP, then TLS if any): the owner may talk. */
static void established(struct wf_loop *loop, struct wf_uconn *u)
{
	wf_timer_cancel(loop, &u->t);
	u->state = WF_U_BUSY;
	u->tls = NULL;
	u->cluster_name = NULL;
	u->s.want = EPOLLIN | EPOLLRDHUP; /* the pool's mask too: no epoll_ctl when it changes hands */
	int r = wf_sio_flush(loop, &u->w->pool, &u->s);
	if (r < 0) {
		fail(u, r, 0);
		return;
	}
	u->ops->connected(u, u->owner);
}

/* One step of the TLS handshake (inside the connect timeout). A failure is a connect
 * failure (UF), logged with OpenSSL's reason. */
static void handshake(struct wf_loop *loop, struct wf_uconn *u)
{
	int r = wf_sio_flush(loop, &u->w->pool, &u->s);
	if (r < 0) {
		wf_warn("cluster '%s': TLS handshake with %s failed: %s", u->cluster_name, u->addr_str,
		        wf_tls_failure(&u->s));
		wf_stat_inc(u->st_cx_connect_fail);
		wf_stat_inc(u->st_host_connect_fail);
		fail(u, -EPROTO, 1);
		return;
	}
	if (wf_tls_established(&u->s)) {
		established(loop, u);
		return;
	}
	wf_sio_update(loop, &u->s);
}

static void on_timer(struct wf_loop *loop, struct wf_timer *t)
{
	struct wf_uconn *u = t->data;
	if (u->state == WF_U_CONNECTING || u->state == WF_U_HANDSHAKE) {
		wf_stat_inc(u->st_cx_connect_timeout);
		wf_stat_inc(u->st_cx_connect_fail);
		wf_stat_inc(u->st_host_connect_fail);
		fail(u, -ETIMEDOUT, 1);
		return;
	}
	if (u->state == WF_U_IDLE)
		destroy(u);
}

static void on_io(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	struct wf_uconn *u = io->data;
	if (u->dead)
		return;
	if (u->state == WF_U_IDLE) {
		/* Data or hang-up on an idle connection: it cannot be reused. */
		if (ev & EPOLLIN)
			wf_stat_inc(u->st_destroy_remote);
		destroy(u);
		return;
	}
	if (u->state == WF_U_CONNECTING) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr || (ev & (EPOLLERR | EPOLLHUP))) {
			wf_stat_inc(u->st_cx_connect_fail);
			wf_stat_inc(u->st_host_connect_fail);
			fail(u, -(soerr ? soerr : ECONNREFUSED), 1);
			return;
		}
		if (!u->tls) {
			established(loop, u);
			return;
		}
		if (wf_tls_attach(&u->s, u->tls) < 0) {
			fail(u, -ENOMEM, 1);
			return;
		}
		u->state = WF_U_HANDSHAKE;
		u->s.want = 0; /* the transport asks for what the handshake needs */
		handshake(loop, u);
		return;
	}
	if (u->state == WF_U_HANDSHAKE) {
		handshake(loop, u);
		return;
	}
	if (ev & EPOLLOUT) {
		int r = wf_sio_flush(loop, &u->w->pool, &u->s);
		if (r < 0) {
			fail(u, r, 0);
			return;
		}
		if (r > 0)
			u->ops->drained(u, u->owner);
		if (u->dead || u->state != WF_U_BUSY)
			return;
	}
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
		u->ops->readable(u, u->owner);
}

struct wf_uconn *wf_upstream_get(struct wf_worker *w, struct wf_cluster *c, const struct wf_host *h,
                                 const struct wf_uconn_ops *ops, void *owner, int *reused, int *err)
{
	struct wf_pool_entry *pe = pool_entry(w, &h->addr, c->tls ? c->tls->key : 0);
	if (pe->idle) {
		struct wf_uconn *u = pe->idle;
		pe->idle = u->next;
		pe->n_idle--;
		u->next = NULL;
		u->state = WF_U_BUSY;
		u->ops = ops;
		u->owner = owner;
		wf_timer_cancel(&w->loop, &u->t);
		u->s.want = EPOLLIN | EPOLLRDHUP; /* the pool's mask too: no epoll_ctl when it changes hands */
		wf_sio_update(&w->loop, &u->s);
		*reused = 1;
		return u;
	}
	*reused = 0;
	return wf_upstream_connect(w, c, h, ops, owner, err);
}

struct wf_uconn *wf_upstream_connect(struct wf_worker *w, struct wf_cluster *c, const struct wf_host *h,
                                     const struct wf_uconn_ops *ops, void *owner, int *err)
{
	if (!wf_cb_take(&c->cb->cx, c->max_connections)) {
		wf_stat_inc(c->st.cx_overflow);
		*err = -EAGAIN;
		return NULL;
	}
	int fd = wf_sock_connect(&h->addr);
	if (fd < 0) {
		wf_cb_put(&c->cb->cx);
		*err = fd;
		return NULL;
	}
	struct wf_uconn *u = calloc(1, sizeof(*u));
	u->w = w;
	u->s.io.fd = fd;
	u->s.io.cb = on_io;
	u->s.io.data = u;
	u->t.cb = on_timer;
	u->t.data = u;
	u->ops = ops;
	u->owner = owner;
	u->state = WF_U_CONNECTING;
	memcpy(u->addr_str, h->addr_str, sizeof(u->addr_str));
	u->addr = h->addr;
	u->tls = c->tls;
	u->tls_key = c->tls ? c->tls->key : 0;
	u->cluster_name = c->name;
	u->cb = c->cb;
	if (u->cb)
		wf_cb_ref(u->cb);
	u->max_requests = c->max_requests_per_connection;
	u->idle_ms = c->upstream_idle_ms;
	if (c->keepalive)
		wf_sock_keepalive(fd, c->keepalive_time, c->keepalive_interval, c->keepalive_probes);
	u->st_cx_active = c->st.cx_active;
	u->st_host_cx_active = h->st_cx_active;
	u->st_host_connect_fail = h->st_cx_connect_fail;
	u->st_cx_destroy = c->st.cx_destroy;
	u->st_cx_connect_fail = c->st.cx_connect_fail;
	u->st_cx_connect_timeout = c->st.cx_connect_timeout;
	u->st_destroy_remote = c->st.cx_destroy_remote;
	wf_stats_ref(held_stats(u), N_HELD);
	wf_stat_inc(h->st_cx_total);
	wf_stat_inc(h->st_cx_active);
	wf_stat_inc(c->st.cx_total);
	wf_stat_inc(u->st_cx_active);
	wf_io_set(&w->loop, &u->s.io, EPOLLOUT);
	wf_timer_set(&w->loop, &u->t, c->connect_timeout_ms ? c->connect_timeout_ms : 5000);
	return u;
}

void wf_upstream_want(struct wf_uconn *u, uint32_t ev)
{
	if (u->dead || u->state == WF_U_CONNECTING || u->state == WF_U_HANDSHAKE)
		return;
	u->s.want = ev;
	wf_sio_update(&u->w->loop, &u->s);
}

void wf_upstream_release(struct wf_uconn *u, int reusable)
{
	struct wf_worker *w = u->w;
	if (u->dead)
		return;
	if (!reusable || u->state != WF_U_BUSY || wf_sio_queued(&u->s) || wf_buf_len(&u->s.rb) ||
	    u->s.eof || w->draining || (u->max_requests && u->requests >= u->max_requests)) {
		destroy(u);
		return;
	}
	struct wf_pool_entry *pe = pool_entry(w, &u->addr, u->tls_key);
	u->state = WF_U_IDLE;
	u->ops = NULL;
	u->owner = NULL;
	u->next = pe->idle;
	pe->idle = u;
	pe->n_idle++;
	u->s.want = EPOLLIN | EPOLLRDHUP;
	wf_sio_update(&w->loop, &u->s);
	wf_timer_set(&w->loop, &u->t, u->idle_ms ? u->idle_ms : 3600000);
	wake(w, u->cb, &u->addr);
}

void wf_upstream_close_idle(struct wf_worker *w)
{
	for (uint32_t i = 0; i < w->n_upools; i++)
		while (w->upools[i].idle)
			destroy(w->upools[i].idle);
}
