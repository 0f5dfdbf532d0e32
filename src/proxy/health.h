/* Active health checking: Envoy's cluster `health_checks` (HTTP and TCP checkers).
 *
 * The checks run on the main thread's event loop, off the request path: one session per
 * cluster and host address, one check in flight per session, non-blocking sockets, a new
 * connection per check. A session's verdict is published to the workers through the host's
 * shared record (wf_ol_host.hc_failed, keyed by cluster name + address, kept while held) and the
 * cluster's count of failing hosts (wf_cb.hc_failed), so load balancing skips failing hosts
 * at the cost of one relaxed load per pick while every host passes.
 *
 * Envoy's semantics: a host starts failing and is marked healthy by its first successful
 * check; later it needs healthy_threshold successes in a row. unhealthy_threshold failures in
 * a row mark it failing; an HTTP status outside expected_statuses (and retriable_statuses), or
 * a response with x-envoy-immediate-health-check-fail, marks it failing at once. A reload
 * keeps the sessions (and their state) of hosts that stay, stops the others and starts new
 * ones. */
#ifndef WF_PROXY_HEALTH_H
#define WF_PROXY_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/config.h"

struct wf_loop;
struct wf_snapshot;

/* ---- the state machine (pure; unit-tested) ----------------------------------------------- */

enum wf_hc_result {
	WF_HC_SUCCESS,
	WF_HC_NETWORK,      /* no usable answer: refused, reset, closed, timed out: counts to the threshold */
	WF_HC_RETRIABLE,    /* an HTTP status in retriable_statuses: counts to the threshold */
	WF_HC_ACTIVE,       /* an unexpected HTTP status or immediate-fail: failing at once */
};

struct wf_hc_state {
	uint32_t n_ok, n_fail;   /* consecutive successes / counted failures */
	uint8_t failed;          /* failing active health checks */
	uint8_t first;           /* no check has completed yet */
};

/* A new host: failing until its first check passes. */
void wf_hc_state_init(struct wf_hc_state *s);
/* Record one check's result. 1 when the host changed between healthy and failing, else 0. */
int wf_hc_state_record(struct wf_hc_state *s, const struct wf_hc_cfg *c, enum wf_hc_result r);
/* What an HTTP response status means (expected_statuses, then retriable_statuses). */
enum wf_hc_result wf_hc_http_status(const struct wf_hc_cfg *c, int status);
/* TCP: are all receive blocks in buf[0..n), in order (not necessarily contiguous)? */
int wf_hc_tcp_match(const struct wf_hc_cfg *c, const char *buf, size_t n);
/* Milliseconds until the next check after one that left state s (changed: it just flipped),
 * jitter included; rnd is a random 64-bit value. */
uint64_t wf_hc_next_ms(const struct wf_hc_cfg *c, const struct wf_hc_state *s, int changed, uint64_t rnd);

/* ---- the checkers (main thread) ---------------------------------------------------------- */

/* Make the running checkers match snapshot s (taking a reference to it): keep the sessions
 * of hosts that stay (an in-flight check restarts under the new config), stop removed ones,
 * start new ones, failing until their first check (at once, or within initial_jitter).
 * Call right before publishing s, so that no worker sees a new host unflagged. */
void wf_health_sync(struct wf_loop *loop, struct wf_snapshot *s);
/* 1 while some host has not completed its first check: at start, the listeners wait for that
 * round, as Envoy's initialization waits for the clusters' first health checks. */
int wf_health_initializing(void);
/* Stop every check and let go of the snapshot (at exit). */
void wf_health_stop(void);

#endif
