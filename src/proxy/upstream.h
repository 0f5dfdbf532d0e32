/* Upstream connections and the per-worker keep-alive pools they live in.
 *
 * A connection is owned by the stream using it (BUSY) or by its pool (IDLE). The owner gets
 * events through a small ops table; an idle connection that becomes readable or hangs up is
 * closed by the pool (an upstream has no business talking on an idle HTTP/1 connection). */
#ifndef WF_PROXY_UPSTREAM_H
#define WF_PROXY_UPSTREAM_H

#include "proxy/config.h"
#include "proxy/sio.h"

struct wf_worker;
struct wf_uconn;

struct wf_uconn_ops {
	void (*connected)(struct wf_uconn *u, void *owner);
	/* readable, or hung up (u->s.eof is set by the owner's read) */
	void (*readable)(struct wf_uconn *u, void *owner);
	/* output drained after having been queued */
	void (*drained)(struct wf_uconn *u, void *owner);
	/* the connection failed: -ETIMEDOUT on connect timeout, other -errno otherwise;
	 * `connecting` tells a connect failure (UF) from a later one (UC). */
	void (*failed)(struct wf_uconn *u, void *owner, int err, int connecting);
};

/* CONNECTING (TCP) -> HANDSHAKE (TLS clusters) -> BUSY <-> IDLE; `connected` is called when
 * BUSY is first reached, so the owner's bytes always go out over an established transport. */
enum wf_uconn_state { WF_U_CONNECTING, WF_U_BUSY, WF_U_IDLE, WF_U_HANDSHAKE };

struct wf_uconn {
	struct wf_sio s;
	struct wf_worker *w;
	struct wf_timer t;                 /* connect timeout, then idle timeout */
	struct wf_defer defer;
	struct wf_addr addr;
	uint64_t tls_key;                  /* the cluster's TLS config (wf_tls_cfg.key); 0: plain */
	const struct wf_tls_cfg *tls;      /* while connecting: the config to handshake with */
	const char *cluster_name;          /* while connecting: for the handshake failure log */
	struct wf_cb *cb;                  /* counts in cb->cx while open; held (wf_cb_ref) to its end */
	struct wf_uconn *next;             /* in the pool's idle list */
	const struct wf_uconn_ops *ops;
	void *owner;
	uint8_t state;                     /* enum wf_uconn_state */
	uint8_t dead;
	uint32_t requests;                 /* requests sent on this connection */
	uint32_t max_requests;             /* close instead of pooling after this many (0: no limit) */
	uint64_t idle_ms;                  /* pooled idle timeout */
	/* held (wf_stats_ref) to its end, with cb: it may outlive its host's and cluster's config */
	uint32_t st_host_cx_active, st_host_connect_fail;
	uint32_t st_cx_active, st_cx_destroy, st_cx_connect_fail, st_cx_connect_timeout, st_destroy_remote;
	char addr_str[64];
};

/* A request waiting for an upstream connection because the cluster is at max_connections:
 * woken (from a timer, on a clean stack) when a connection to its host returns to this
 * worker's pool, or when any connection of its cluster closes on this worker. */
struct wf_uwaiter {
	struct wf_uwaiter *prev, *next;
	struct wf_cb *cb;
	struct wf_addr addr;
	struct wf_timer t;
	void (*ready)(struct wf_uwaiter *wt);
	uint8_t queued;
};

void wf_upstream_wait(struct wf_worker *w, struct wf_uwaiter *wt);
void wf_upstream_unwait(struct wf_worker *w, struct wf_uwaiter *wt);

/* An idle pooled connection to host h, or a new one being connected; *reused tells which.
 * NULL with *err set: -EAGAIN when the cluster is at max_connections (wait with
 * wf_upstream_wait), or -errno when a socket cannot be created. */
struct wf_uconn *wf_upstream_get(struct wf_worker *w, struct wf_cluster *c, const struct wf_host *h,
                                 const struct wf_uconn_ops *ops, void *owner, int *reused, int *err);
/* Always a new connection to h (a raw TCP tunnel must not take a pooled HTTP connection);
 * NULL with *err set as above. */
struct wf_uconn *wf_upstream_connect(struct wf_worker *w, struct wf_cluster *c, const struct wf_host *h,
                                     const struct wf_uconn_ops *ops, void *owner, int *err);
/* The owner is done: back to the pool when `reusable`, else closed. */
void wf_upstream_release(struct wf_uconn *u, int reusable);
/* Set the epoll interest the owner needs (EPOLLIN or 0) besides pending output. */
void wf_upstream_want(struct wf_uconn *u, uint32_t ev);

#endif
