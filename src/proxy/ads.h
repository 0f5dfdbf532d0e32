/* The xDS client: one ADS stream (SotW or delta) to the management server the bootstrap's
 * dynamic_resources name, on the main thread. It subscribes to clusters (CDS, wildcard) and
 * their endpoints (EDS), then listeners (LDS, wildcard) and their route configurations
 * (RDS), keeps every accepted resource by name (proxy/ads_set.h), and hands each change to
 * the owner to compile and publish: accepted, it is ACKed; refused, it is NACKed with the
 * compile error and the previous resources stay. When the stream breaks it reconnects with
 * jittered exponential backoff (Envoy's: 500 ms base, 30 s cap) and resubscribes with what it
 * holds; the proxy meanwhile serves its last config. */
#ifndef WF_PROXY_ADS_H
#define WF_PROXY_ADS_H

#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"

struct wf_ads_cfg;
struct wf_xds_set;

struct wf_ads_ops {
	/* Compile the bootstrap with `set` and publish it. 0, or -1 with err filled (the update
	 * is refused: NACK). The set is the caller's; take a reference to keep it. */
	int (*apply)(void *ctx, struct wf_xds_set *set, char *err, size_t errlen);
};

/* Start the client (cfg is copied). 0, or <0. */
int wf_ads_start(struct wf_loop *loop, const struct wf_ads_cfg *cfg, const struct wf_ads_ops *ops, void *ctx);
void wf_ads_stop(void);
/* The resources accepted so far (NULL before the client starts); no reference taken. */
const struct wf_xds_set *wf_ads_resources(void);
/* The last refused (NACKed) update of a type, while no later one was accepted: the resource the
 * error names ("" when none), the response's version, the error, when (wall clock s). NULL
 * when there is none. For /config_dump's error_state. */
struct wf_ads_rejection {
	char *name, *version, *details;
	uint64_t wall_s;
};
const struct wf_ads_rejection *wf_ads_rejected(int type);
/* Whether the first configuration came: CDS, the endpoints of its EDS clusters, LDS and the
 * route configurations of its listeners were received or timed out (initial_fetch_timeout).
 * Until then /ready answers INITIALIZING (the static listeners serve meanwhile). */
int wf_ads_initialized(void);

/* The jittered exponential backoff of the n-th consecutive failed attempt (n >= 1): a
 * uniform draw in [base, min(base * 2^(n-1), cap)] ms, from the random value rnd. */
uint64_t wf_ads_backoff_ms(uint32_t n, uint64_t rnd);

#endif
