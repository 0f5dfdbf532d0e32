/* Workers: one thread per core, each with its own event loop, listening sockets
 * (SO_REUSEPORT), connections, upstream pools, buffer pool and stats. Workers share nothing
 * writable; the main thread talks to them only through the published snapshot pointer and
 * an eventfd doorbell.
 *
 * Snapshots: the main thread publishes a new wf_snapshot with wf_snapshot_publish(). A worker
 * notices it (doorbell, or at the next stream start), takes one atomic reference for itself,
 * and counts its own users of each snapshot locally (wf_worker_hold/release), so that a stream
 * start costs no atomic operation. The worker drops its atomic reference to an old snapshot
 * when its local count reaches zero; the last one to drop frees it. */
#ifndef WF_PROXY_WORKER_H
#define WF_PROXY_WORKER_H

#include <pthread.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/loop.h"
#include "proxy/config.h"

struct wf_worker;
struct wf_uconn;
struct wf_uwaiter;

/* A listening socket of one worker, for one listener address. */
struct wf_lsock {
	struct wf_io io;
	struct wf_worker *w;
	struct wf_addr addr;
	uint32_t idx;                 /* index of its listener in w->snap */
	struct wf_lsock *next;
	struct wf_defer defer;
	struct wf_timer pause;        /* re-enables accepting after running out of descriptors */
};

struct wf_hold {
	struct wf_snapshot *snap;
	uint32_t users;
};

#define WF_MAX_HOLDS 16

/* Connections that a worker must be able to find: to drain them, and to close idle ones. */
struct wf_conn_link {
	struct wf_conn_link *prev, *next;
	int kind;                     /* enum wf_netfilter of the connection */
};

struct wf_pool_entry;

struct wf_worker {
	unsigned id;
	pthread_t thread;
	struct wf_loop loop;
	struct wf_pool pool;
	struct wf_io bell;            /* eventfd: new snapshot, drain, stop */
	struct wf_snapshot *snap;     /* the newest snapshot this worker adopted */
	struct wf_hold holds[WF_MAX_HOLDS];
	struct wf_lsock *lsocks;
	struct wf_conn_link conns;    /* downstream connections (list head) */
	uint32_t n_conns;
	struct wf_pool_entry *upools; /* upstream pools by host address */
	struct wf_up2 *up2;           /* HTTP/2 upstream connections (proxy/up2.c) */
	struct wf_uwaiter *waiters;   /* requests waiting for an upstream connection (FIFO) */
	uint32_t n_upools, cap_upools;
	struct wf_alog **dirty_logs;  /* access logs with buffered lines, flushed when idle */
	uint32_t n_dirty, cap_dirty;
	int draining;
	int stopping;
	uint64_t adopted;             /* version of w->snap (atomic; read by the main thread) */
	uint64_t seq;                 /* for request ids */
	uint64_t rng;                 /* xorshift state */
};

extern __thread struct wf_worker *wf_self;

/* Main thread: publish a snapshot (takes over the caller's reference) and ring the workers. */
void wf_snapshot_publish(struct wf_snapshot *s);
/* The current published snapshot with a reference taken (main thread, admin). */
struct wf_snapshot *wf_snapshot_acquire(void);
void wf_snapshot_release(struct wf_snapshot *s);
/* Was a snapshot freed since the last call? (The main thread frees them all.) */
int wf_snapshots_freed(void);
/* Main thread, periodically: drop retired snapshots that no worker can still be adopting, and
 * free those whose last reference a worker gave back (workers never free one themselves). */
void wf_snapshot_reap(void);

/* Start n workers serving the published snapshot. 0 or -errno (e.g. a port already in use). */
int wf_workers_start(unsigned n, char *err, size_t errlen);
/* Ask every worker to drain: close listeners, finish in-flight streams, close idle connections. */
void wf_workers_drain(void);
/* Connections still open across all workers. */
uint32_t wf_workers_conns(void);
/* Stop and join every worker (after draining or at once). */
void wf_workers_stop(void);
/* Reopen listeners to match the published snapshot; from the main thread, before ringing. */
void wf_workers_ring(void);

/* Worker-local snapshot reference counting (worker thread only). */
void wf_worker_hold(struct wf_worker *w, struct wf_snapshot *s);
void wf_worker_release(struct wf_worker *w, struct wf_snapshot *s);
/* Adopt the published snapshot if it changed (cheap when it did not). */
void wf_worker_refresh(struct wf_worker *w);
/* Remember that an access log has lines buffered for this worker. */
void wf_worker_log_dirty(struct wf_worker *w, struct wf_alog *a);

static inline void wf_conn_link_add(struct wf_worker *w, struct wf_conn_link *l)
{
	l->next = w->conns.next;
	l->prev = &w->conns;
	w->conns.next->prev = l;
	w->conns.next = l;
	w->n_conns++;
}

static inline void wf_conn_link_del(struct wf_worker *w, struct wf_conn_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->next = l->prev = l;
	w->n_conns--;
}

/* xorshift64*: 64 random bits from the worker's own generator. */
static inline uint64_t wf_rand(struct wf_worker *w)
{
	uint64_t x = w->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	w->rng = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* Network filters: what a worker runs on an accepted connection, for listener (or filter
 * chain) l of snapshot snap. They take their own hold on snap; the fd is theirs. */
void wf_hcm_accept(struct wf_worker *w, struct wf_snapshot *snap, const struct wf_listener *l, int fd);
void wf_tcp_accept(struct wf_worker *w, struct wf_snapshot *snap, const struct wf_listener *l, int fd);
/* A connection to a listener with several filter chains: inspect (tls_inspector) if the
 * listener says so, pick the chain, hand the fd to its network filter. */
void wf_inspect_accept(struct wf_worker *w, struct wf_snapshot *snap, const struct wf_listener *l, int fd);
/* Hand fd to chain (HCM or TCP) of snapshot snap. */
void wf_worker_dispatch(struct wf_worker *w, struct wf_snapshot *snap, const struct wf_listener *chain, int fd);
/* Drain every connection of the worker (close idle ones; busy ones close after their stream). */
void wf_hcm_drain_all(struct wf_worker *w);
/* Free what the connection manager caches per thread (at worker exit). */
void wf_hcm_thread_exit(void);
void wf_upstream_close_idle(struct wf_worker *w);

#endif
