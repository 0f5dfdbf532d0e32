/* DNS clusters (STRICT_DNS, LOGICAL_DNS): the addresses each endpoint name resolves to, kept
 * current by re-resolving it every dns_refresh_rate, as Envoy does.
 *
 * A "target" is one name of one cluster (cluster name + lookup family + name). Its latest
 * successful resolution is cached here; the compiler builds the cluster's hosts from that
 * cache (wf_dns_addrs). Re-resolution runs on the resolver thread (net/resolve.h), never on
 * a worker and never blocking the main loop. When a target's addresses change, `changed()`
 * asks the main thread to recompile the current config (the same messages, the new cache)
 * and publish it like a reload: workers adopt it between streams, streams in flight keep the
 * snapshot (and hosts) they started with, and per-host state keyed by cluster name + address
 * (outlier detection, health checks, circuit breakers, stats) carries over. A failed
 * resolution keeps the last addresses and retries sooner (dns_failure_refresh_rate).
 *
 * Main thread only. */
#ifndef WF_PROXY_DNS_H
#define WF_PROXY_DNS_H

#include <stdint.h>

#include "net/resolve.h"

struct wf_loop;
struct wf_snapshot;

/* The addresses of `name` for cluster `cluster` (compile time): the cached ones when the
 * target is known, else resolved now, blocking (the first resolution: at start, as Envoy
 * warms clusters before opening listeners, or when a reload brings a new name). 0 with
 * *addrs (owned by the cache, unchanged until the main loop runs again) and *n >= 1, or an
 * EAI_* code (wf_resolve_strerror). */
int wf_dns_addrs(const char *cluster, const char *name, int family, const struct wf_addr **addrs, uint32_t *n);

/* Start re-resolving on `loop`: changed() runs on the loop when a target's addresses
 * changed (coalesce and rebuild there). 0 or -errno. */
int wf_dns_start(struct wf_loop *loop, void (*changed)(void));
/* Make the refresh timers match snapshot s (right before publishing it): targets of its DNS
 * clusters keep their timers and state, new ones are re-resolved dns_refresh_rate from now,
 * targets no longer configured are forgotten. */
void wf_dns_sync(const struct wf_snapshot *s);
/* Forget every target and stop the resolver thread (at exit). */
void wf_dns_stop(void);

#endif
