/* Passive health: Envoy's outlier detection on consecutive failures (consecutive_5xx,
 * consecutive_gateway_failure, consecutive_local_origin_failure) and, every interval, on
 * success rate and failure percentage (proxy/outlier_rate.h). Workers report each
 * exchange's outcome; a host whose consecutive failures reach a threshold, or an interval
 * sweep finds an outlier, is ejected for base_ejection_time x (times ejected), capped by
 * max_ejection_time, and skipped by load balancing until then. The state is per cluster name and host address, shared by the workers
 * (atomics) and kept across reloads; ejected hosts come back lazily, at the next pick after
 * their time. */
#ifndef WF_PROXY_OUTLIER_H
#define WF_PROXY_OUTLIER_H

#include <stdint.h>

#include "proxy/config.h"

enum wf_outcome {
	WF_OUT_SUCCESS,       /* a response below 500 */
	WF_OUT_5XX,           /* a 5xx response (not 502..504) */
	WF_OUT_GATEWAY,       /* 502, 503, 504 */
	WF_OUT_LOCAL,         /* connection failure, timeout, reset: no response at all */
};

/* Record the outcome of an exchange with host h of cluster c (worker thread, `now` in ms). */
void wf_outlier_report(struct wf_cluster *c, const struct wf_host *h, enum wf_outcome o, uint64_t now);
/* Is host i of c ejected now? Brings back hosts whose ejection is over. */
int wf_outlier_ejected(struct wf_cluster *c, uint32_t i, uint64_t now);

#endif
