#include "lb/priority.h"

#include <string.h>

/* Load by host count, for when every level is in panic: health means nothing any more, so
 * each level gets its share of all hosts; the rounding remainder goes to the first level with
 * hosts. */
static void load_by_hosts(struct wf_prio_load *out, const uint32_t *total, uint32_t n)
{
	uint64_t all = 0;
	for (uint32_t i = 0; i < n; i++)
		all += total[i];
	if (!all) {
		out->load[0] = 100;
		return;
	}
	uint32_t left = 100;
	int first = -1;
	for (uint32_t i = 0; i < n; i++) {
		out->load[i] = (uint8_t)(100 * (uint64_t)total[i] / all);
		left -= out->load[i];
		if (first < 0 && total[i])
			first = (int)i;
	}
	out->load[first < 0 ? 0 : first] += (uint8_t)left;
}

void wf_prio_load_compute(struct wf_prio_load *out, const uint32_t *healthy, const uint32_t *total, uint32_t n,
                          uint32_t overprov, double panic_pct)
{
	memset(out, 0, sizeof(*out));
	if (n > WF_PRIO_MAX)
		n = WF_PRIO_MAX;
	out->n = n ? n : 1;
	uint32_t health[WF_PRIO_MAX];
	uint32_t sum = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t h = total[i] ? (uint64_t)overprov * healthy[i] / total[i] : 0;
		health[i] = h > 100 ? 100 : (uint32_t)h;
		sum += health[i];
	}
	uint32_t norm = sum > 100 ? 100 : sum;
	if (!norm) {
		if (panic_pct <= 0) { /* nothing healthy and no panic: P0 takes it all, and finds nobody */
			out->load[0] = 100;
			return;
		}
		for (uint32_t i = 0; i < n; i++)
			out->panic[i] = 1;
		load_by_hosts(out, total, n);
		return;
	}
	/* spill in priority order; what rounding leaves goes to the first level with health */
	uint32_t left = 100;
	int first = -1;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t l = health[i] * 100 / norm;
		out->load[i] = (uint8_t)(l < left ? l : left);
		left -= out->load[i];
		if (first < 0 && health[i])
			first = (int)i;
	}
	out->load[first < 0 ? 0 : first] += (uint8_t)left;
	if (norm == 100)
		return;
	uint32_t panicked = 0;
	for (uint32_t i = 0; i < n; i++) {
		double pct = total[i] ? 100.0 * healthy[i] / total[i] : 0;
		out->panic[i] = pct < panic_pct;
		panicked += out->panic[i];
	}
	if (panicked == n)
		load_by_hosts(out, total, n);
}

uint32_t wf_prio_choose(const struct wf_prio_load *l, uint64_t x)
{
	uint32_t r = (uint32_t)(x % 100), acc = 0;
	for (uint32_t i = 0; i < l->n; i++) {
		acc += l->load[i];
		if (r < acc)
			return i;
	}
	return 0;
}

double wf_locality_effective_weight(uint32_t weight, uint32_t healthy, uint32_t total, uint32_t overprov)
{
	if (!total)
		return 0;
	double avail = (double)overprov / 100.0 * healthy / total;
	return weight * (avail > 1.0 ? 1.0 : avail);
}
