/* Priority levels, panic and locality weights: Envoy's arithmetic for how much of a cluster's
 * traffic each priority level and each locality gets, as pure functions over host counts.
 *
 * A level's health is min(100, overprovisioning_factor x healthy / total) percent (factor 140
 * by default: a level with 72% of its hosts healthy still takes all of its share). Traffic
 * goes to P0 as far as its health allows, the rest spills to P1, P2... in order; the levels'
 * health is normalized so the loads add up to 100 when the sum is under 100.
 *
 * Panic: while the normalized total health is below 100, a level whose own healthy
 * percentage is below healthy_panic_threshold is "in panic": its hosts are picked ignoring
 * health. When every level is in panic, the load follows the host counts instead.
 * A threshold of 0 disables panic (no healthy host: no host). */
#ifndef WF_LB_PRIORITY_H
#define WF_LB_PRIORITY_H

#include <stdint.h>

#define WF_PRIO_MAX 64             /* priority levels: 0 .. WF_PRIO_MAX - 1 */

struct wf_prio_load {
	uint32_t n;                    /* levels */
	uint8_t load[WF_PRIO_MAX];     /* percent of the traffic per level; they add up to 100 */
	uint8_t panic[WF_PRIO_MAX];    /* 1: pick among all of the level's hosts */
};

/* Compute the loads for n levels with healthy[i] of total[i] hosts each. overprov: the
 * overprovisioning factor in percent (140); panic_pct: healthy_panic_threshold (0..100). */
void wf_prio_load_compute(struct wf_prio_load *out, const uint32_t *healthy, const uint32_t *total, uint32_t n,
                          uint32_t overprov, double panic_pct);

/* The level a request goes to, for a uniform 64-bit value x (random, or the request hash so
 * that a hashed request keeps its level). */
uint32_t wf_prio_choose(const struct wf_prio_load *l, uint64_t x);

/* A locality's share within its level (locality weighted lb): its weight scaled by its
 * availability, min(1, overprov/100 x healthy / total). 0 for an empty locality. */
double wf_locality_effective_weight(uint32_t weight, uint32_t healthy, uint32_t total, uint32_t overprov);

#endif
