#include "proxy/outlier_rate.h"

#include <math.h>
#include <string.h>

static int qualifies(const struct wf_ol_sample *s, uint32_t volume) { return !s->skip && s->total && s->total >= volume; }

static double success_pct(const struct wf_ol_sample *s)
{
	uint64_t fail = s->fail < s->total ? s->fail : s->total;
	return 100.0 * (double)(s->total - fail) / (double)s->total;
}

uint32_t wf_ol_success_rate_outliers(const struct wf_ol_sample *s, uint32_t n, uint32_t min_hosts, uint32_t volume,
                                     uint32_t stdev_factor, uint8_t *out, double *rate)
{
	memset(out, 0, n);
	uint32_t q = 0;
	double sum = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (rate)
			rate[i] = -1;
		if (qualifies(&s[i], volume)) {
			q++;
			sum += success_pct(&s[i]);
		}
	}
	if (!q || q < min_hosts)
		return 0;
	for (uint32_t i = 0; rate && i < n; i++)
		if (qualifies(&s[i], volume))
			rate[i] = success_pct(&s[i]);
	double mean = sum / q, var = 0;
	for (uint32_t i = 0; i < n; i++)
		if (qualifies(&s[i], volume))
			var += (success_pct(&s[i]) - mean) * (success_pct(&s[i]) - mean);
	double limit = mean - (double)stdev_factor / 1000.0 * sqrt(var / q);
	uint32_t found = 0;
	for (uint32_t i = 0; i < n; i++)
		if (qualifies(&s[i], volume) && success_pct(&s[i]) < limit)
			found += out[i] = 1;
	return found;
}

uint32_t wf_ol_failure_percentage_outliers(const struct wf_ol_sample *s, uint32_t n, uint32_t min_hosts,
                                           uint32_t volume, uint32_t threshold, uint8_t *out)
{
	memset(out, 0, n);
	uint32_t q = 0;
	for (uint32_t i = 0; i < n; i++)
		q += qualifies(&s[i], volume);
	if (!q || q < min_hosts)
		return 0;
	uint32_t found = 0;
	for (uint32_t i = 0; i < n; i++)
		if (qualifies(&s[i], volume) && 100.0 - success_pct(&s[i]) >= (double)threshold)
			found += out[i] = 1;
	return found;
}
