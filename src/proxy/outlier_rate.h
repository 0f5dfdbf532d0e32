/* The arithmetic of Envoy's interval-based outlier detection, over one interval's counts per
 * host (pure functions: proxy/outlier.c feeds them and ejects what they find).
 *
 *   success rate        hosts with at least `volume` requests qualify; with at least
 *                       `min_hosts` of them, a host whose success rate is below
 *                       mean - stdev_factor / 1000 x stdev (population standard deviation of
 *                       the qualifying hosts' rates) is an outlier.
 *   failure percentage  hosts with at least `volume` requests qualify; with at least
 *                       `min_hosts` of them, a host whose failure percentage is at or above
 *                       `threshold` is an outlier. */
#ifndef WF_PROXY_OUTLIER_RATE_H
#define WF_PROXY_OUTLIER_RATE_H

#include <stdint.h>

struct wf_ol_sample {
	uint64_t total, fail;          /* requests and failures in the interval */
	uint8_t skip;                  /* already ejected: not part of the statistics */
};

/* Mark success-rate outliers in out[n] (1: outlier); returns how many. rate[n] (unless NULL)
 * gets each host's success rate in percent, or -1 where none was computed (the host did not
 * qualify, or too few did). */
uint32_t wf_ol_success_rate_outliers(const struct wf_ol_sample *s, uint32_t n, uint32_t min_hosts, uint32_t volume,
                                     uint32_t stdev_factor, uint8_t *out, double *rate);
/* Mark failure-percentage outliers in out[n]; returns how many. */
uint32_t wf_ol_failure_percentage_outliers(const struct wf_ol_sample *s, uint32_t n, uint32_t min_hosts,
                                           uint32_t volume, uint32_t threshold, uint8_t *out);

#endif
