#include "proxy/worker.h"

#include "core/log.h"
#include "proxy/alog.h"
#include "proxy/stats.h"
#include "proxy/up2.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

__thread struct wf_worker *wf_self;

static struct wf_snapshot *published; /* atomic */
static struct wf_worker *workers;
static unsigned n_workers;

/* ---- snapshots --------------------------------------------------------------------------- */

static int freed; /* atomic: a snapshot was freed since wf_snapshots_freed() last looked */

/* Snapshots whose last reference a worker dropped (a connection of an old config closing),
 * for the main thread to free at its next wf_snapshot_reap: a big config's teardown (its
 * clusters, its stats given back) takes tens of ms, which a worker's requests would wait
 * for. A stack pushed by the workers and taken whole by the main thread (no ABA). */
static struct wf_snapshot *to_free; /* atomic */

static void snapshot_free(struct wf_snapshot *s)
{
	wf_snapshot_free(s);
	__atomic_store_n(&freed, 1, __ATOMIC_RELEASE);
}

void wf_snapshot_release(struct wf_snapshot *s)
{
	if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	if (!wf_self) {
		snapshot_free(s);
		return;
	}
	struct wf_snapshot *head = __atomic_load_n(&to_free, __ATOMIC_RELAXED);
	do
		s->next_free = head;
	while (!__atomic_compare_exchange_n(&to_free, &head, s, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

int wf_snapshots_freed(void) { return __atomic_exchange_n(&freed, 0, __ATOMIC_ACQ_REL); }

struct wf_snapshot *wf_snapshot_acquire(void)
{
	/* Only the main thread replaces `published`, and it is the caller here: no race. */
	struct wf_snapshot *s = __atomic_load_n(&published, __ATOMIC_ACQUIRE);
	if (s)
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	return s;
}

/* A replaced snapshot is "retired": the published pointer's reference to it is dropped only
 * once every worker has adopted a newer version, because a worker may have read the old
 * pointer just before the exchange and be about to take its reference. */
#define MAX_RETIRED 64
static struct wf_snapshot *retired[MAX_RETIRED];
static unsigned n_retired;

void wf_snapshot_publish(struct wf_snapshot *s)
{
	struct wf_snapshot *old = __atomic_exchange_n(&published, s, __ATOMIC_ACQ_REL);
	wf_workers_ring();
	if (!old)
		return;
	if (!n_workers || n_retired == MAX_RETIRED) {
		/* No worker can be reading it (or, past 64 pending reloads, wait for them now). */
		while (n_workers && n_retired == MAX_RETIRED) {
			wf_snapshot_reap();
			if (n_retired == MAX_RETIRED)
				usleep(1000);
		}
		if (!n_workers) {
			wf_snapshot_release(old);
			return;
		}
	}
	retired[n_retired++] = old;
}

void wf_snapshot_reap(void)
{
	for (struct wf_snapshot *s = __atomic_exchange_n(&to_free, NULL, __ATOMIC_ACQUIRE), *next; s; s = next) {
		next = s->next_free;
		snapshot_free(s);
	}
	uint64_t min = UINT64_MAX;
	for (unsigned i = 0; i < n_workers; i++) {
		uint64_t v = __atomic_load_n(&workers[i].adopted, __ATOMIC_ACQUIRE);
		if (v < min)
			min = v;
	}
	unsigned k = 0;
	for (unsigned i = 0; i < n_retired; i++) {
		if (retired[i]->version < min)
			wf_snapshot_release(retired[i]);
		else
			retired[k++] = retired[i];
	}
	n_retired = k;
}

/* ---- worker-local holds ----------------------------------------------------------------- */

void wf_worker_hold(struct wf_worker *w, struct wf_snapshot *s)
{
	for (unsigned i = 0; i < WF_MAX_HOLDS; i++)
		if (w->holds[i].snap == s) {
			w->holds[i].users++;
			return;
		}
	for (unsigned i = 0; i < WF_MAX_HOLDS; i++)
		if (!w->holds[i].snap) {
			__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
			w->holds[i].snap = s;
			w->holds[i].users = 1;
			return;
		}
	/* More than WF_MAX_HOLDS live config versions on one worker: take a plain reference. */
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
}

static void flush_logs(struct wf_worker *w)
{
	for (uint32_t i = 0; i < w->n_dirty; i++)
		wf_alog_flush(w->dirty_logs[i], w->id);
	w->n_dirty = 0;
}

void wf_worker_release(struct wf_worker *w, struct wf_snapshot *s)
{
	for (unsigned i = 0; i < WF_MAX_HOLDS; i++)
		if (w->holds[i].snap == s) {
			if (--w->holds[i].users)
				return;
			w->holds[i].snap = NULL;
			flush_logs(w); /* buffered lines may belong to this snapshot's logs */
			wf_snapshot_release(s);
			return;
		}
	flush_logs(w);
	wf_snapshot_release(s);
}

void wf_worker_log_dirty(struct wf_worker *w, struct wf_alog *a)
{
	if (w->n_dirty == w->cap_dirty) {
		w->cap_dirty = w->cap_dirty ? w->cap_dirty * 2 : 8;
		w->dirty_logs = realloc(w->dirty_logs, w->cap_dirty * sizeof(*w->dirty_logs));
	}
	w->dirty_logs[w->n_dirty++] = a;
}

/* ---- listeners --------------------------------------------------------------------------- */

static void on_accept(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	struct wf_lsock *ls = io->data;
	struct wf_worker *w = ls->w;
	if (io->fd < 0)
		return; /* closed earlier in this batch */
	wf_worker_refresh(w);
	if (io->fd < 0)
		return; /* the new config dropped this listener */
	for (int i = 0; i < 64; i++) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors: the connection stays queued, and level-triggered epoll
				 * would report it again at once. Pause this listener for a moment. */
				wf_warn("accept on %s: %s; pausing the listener for 100 ms",
				        w->snap->listeners[ls->idx].addr_str, strerror(errno));
				wf_io_set(loop, io, 0);
				wf_timer_set(loop, &ls->pause, 100);
			} else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
				wf_warn("accept on %s: %s", w->snap->listeners[ls->idx].addr_str, strerror(errno));
			}
			return;
		}
		const struct wf_listener *l = &w->snap->listeners[ls->idx];
		if (l->kind == WF_NF_MATCH)
			wf_inspect_accept(w, w->snap, l, fd);
		else
			wf_worker_dispatch(w, w->snap, l, fd);
	}
}

void wf_worker_dispatch(struct wf_worker *w, struct wf_snapshot *snap, const struct wf_listener *chain, int fd)
{
	if (chain->kind == WF_NF_HCM)
		wf_hcm_accept(w, snap, chain, fd);
	else
		wf_tcp_accept(w, snap, chain, fd);
}

static void on_pause_end(struct wf_loop *loop, struct wf_timer *t)
{
	struct wf_lsock *ls = t->data;
	if (ls->io.fd >= 0)
		wf_io_set(loop, &ls->io, EPOLLIN);
}

static void lsock_free(struct wf_defer *d)
{
	free((char *)d - offsetof(struct wf_lsock, defer));
}

/* Closed now, freed after the current batch: an accept event for it may still be pending. */
static void lsock_close(struct wf_worker *w, struct wf_lsock *ls)
{
	wf_io_del(&w->loop, &ls->io);
	wf_timer_cancel(&w->loop, &ls->pause);
	close(ls->io.fd);
	ls->io.fd = -1;
	ls->defer.cb = lsock_free;
	wf_loop_defer(&w->loop, &ls->defer);
}

/* Make this worker's listening sockets match its snapshot: keep sockets whose address is
 * still configured (so no connection in the accept queue is lost), open new ones, close the
 * rest. Returns 0 or -errno of the first socket that could not be opened. */
static int reconcile(struct wf_worker *w, char *err, size_t errlen)
{
	struct wf_snapshot *s = w->snap;
	struct wf_lsock *keep = NULL, *ls, *next;
	int rc = 0;
	for (ls = w->lsocks; ls; ls = next) {
		next = ls->next;
		uint32_t i;
		for (i = 0; i < s->n_listeners; i++)
			if (wf_addr_eq(&s->listeners[i].addr, &ls->addr))
				break;
		if (i == s->n_listeners || w->draining) {
			lsock_close(w, ls);
			continue;
		}
		ls->idx = i;
		ls->next = keep;
		keep = ls;
	}
	w->lsocks = keep;
	if (w->draining)
		return 0;
	for (uint32_t i = 0; i < s->n_listeners; i++) {
		for (ls = w->lsocks; ls; ls = ls->next)
			if (ls->idx == i)
				break;
		if (ls)
			continue;
		int fd = wf_sock_listen(&s->listeners[i].addr, 1, 4096, s->listeners[i].ipv4_compat);
		if (fd < 0) {
			if (err)
				snprintf(err, errlen, "listener '%s': cannot listen on %s: %s", s->listeners[i].name,
				         s->listeners[i].addr_str, strerror(-fd));
			else
				wf_error("listener '%s': cannot listen on %s: %s", s->listeners[i].name,
				         s->listeners[i].addr_str, strerror(-fd));
			rc = rc ? rc : fd;
			continue;
		}
		ls = calloc(1, sizeof(*ls));
		ls->w = w;
		ls->addr = s->listeners[i].addr;
		ls->idx = i;
		ls->io.fd = fd;
		ls->io.cb = on_accept;
		ls->io.data = ls;
		ls->pause.cb = on_pause_end;
		ls->pause.data = ls;
		wf_io_set(&w->loop, &ls->io, EPOLLIN);
		ls->next = w->lsocks;
		w->lsocks = ls;
	}
	return rc;
}

void wf_worker_refresh(struct wf_worker *w)
{
	struct wf_snapshot *s = __atomic_load_n(&published, __ATOMIC_ACQUIRE);
	if (s == w->snap)
		return;
	/* Safe even if `s` was replaced meanwhile: it stays alive until this worker's `adopted`
	 * passes its version (wf_snapshot_reap). */
	wf_worker_hold(w, s);
	struct wf_snapshot *old = w->snap;
	w->snap = s;
	__atomic_store_n(&w->adopted, s->version, __ATOMIC_RELEASE);
	reconcile(w, NULL, 0);
	if (old)
		wf_worker_release(w, old);
}

/* ---- the worker thread ------------------------------------------------------------------- */

static void on_bell(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	struct wf_worker *w = io->data;
	uint64_t v;
	if (read(io->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		wf_warn("worker %u: doorbell: %s", w->id, strerror(errno));
	if (w->stopping) {
		wf_loop_stop(loop);
		return;
	}
	wf_worker_refresh(w);
	if (w->draining) {
		reconcile(w, NULL, 0);
		wf_hcm_drain_all(w);
		wf_upstream_close_idle(w);
		wf_up2_close_idle(w);
	}
}

static void on_idle(struct wf_loop *loop, void *arg)
{
	flush_logs(arg);
}

static void *worker_main(void *arg)
{
	struct wf_worker *w = arg;
	wf_self = w;
	wf_stats_thread_init();
	wf_loop_run(&w->loop);
	flush_logs(w);
	wf_hcm_thread_exit();
	wf_regex_thread_exit();
	return NULL;
}

int wf_workers_start(unsigned n, char *err, size_t errlen)
{
	workers = calloc(n, sizeof(*workers));
	n_workers = n;
	for (unsigned i = 0; i < n; i++) {
		struct wf_worker *w = &workers[i];
		w->id = i;
		w->conns.next = w->conns.prev = &w->conns;
		if (getrandom(&w->rng, sizeof(w->rng), 0) != sizeof(w->rng) || !w->rng)
			w->rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)time(NULL) << 16) ^ ((uint64_t)getpid() << 32) ^ (i + 1);
		if (wf_loop_init(&w->loop) < 0)
			return -errno;
		wf_pool_init(&w->pool, 256);
		w->bell.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		w->bell.cb = on_bell;
		w->bell.data = w;
		wf_io_set(&w->loop, &w->bell, EPOLLIN);
		wf_loop_on_idle(&w->loop, on_idle, w);
		w->snap = __atomic_load_n(&published, __ATOMIC_ACQUIRE);
		wf_worker_hold(w, w->snap);
		w->adopted = w->snap->version;
		int r = reconcile(w, err, errlen);
		if (r < 0)
			return r;
	}
	for (unsigned i = 0; i < n; i++)
		if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]))
			return -errno;
	return 0;
}

static void ring(struct wf_worker *w)
{
	uint64_t one = 1;
	if (write(w->bell.fd, &one, sizeof(one)) < 0)
		wf_warn("worker %u: doorbell: %s", w->id, strerror(errno));
}

void wf_workers_ring(void)
{
	for (unsigned i = 0; i < n_workers; i++)
		ring(&workers[i]);
}

void wf_workers_drain(void)
{
	for (unsigned i = 0; i < n_workers; i++) {
		__atomic_store_n(&workers[i].draining, 1, __ATOMIC_RELEASE);
		ring(&workers[i]);
	}
}

uint32_t wf_workers_conns(void)
{
	uint32_t n = 0;
	for (unsigned i = 0; i < n_workers; i++)
		n += __atomic_load_n(&workers[i].n_conns, __ATOMIC_RELAXED);
	return n;
}

void wf_workers_stop(void)
{
	for (unsigned i = 0; i < n_workers; i++) {
		__atomic_store_n(&workers[i].stopping, 1, __ATOMIC_RELEASE);
		ring(&workers[i]);
	}
	for (unsigned i = 0; i < n_workers; i++)
		pthread_join(workers[i].thread, NULL);
}
