/* The HTTP filters of src/filter/, each one file filling a struct wf_http_filter_ops, and
 * what they share. wf_filters_init registers them all with the proxy (the proxy never names
 * a filter); the command line calls it once at start. */
#ifndef WF_FILTER_FILTERS_H
#define WF_FILTER_FILTERS_H

#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/type/v3/percent.pb-c.h"
#include "proxy/filter.h"

void wf_filters_init(void);

extern const struct wf_http_filter_ops wf_filter_fault;
extern const struct wf_http_filter_ops wf_filter_local_ratelimit;
extern const struct wf_http_filter_ops wf_filter_cors;

/* A FractionalPercent: numerator over 100, 10 000 or 1 000 000. */
struct wf_ppm {
	uint32_t numerator;
	uint32_t scale;                    /* to parts per million: 10000, 100 or 1 */
};

static inline struct wf_ppm wf_ppm_of(const Envoy__Type__V3__FractionalPercent *p)
{
	struct wf_ppm r = {0, 10000};
	if (!p)
		return r;
	r.numerator = p->numerator;
	r.scale = p->denominator == ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__MILLION ? 1
	          : p->denominator == ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__TEN_THOUSAND ? 100
	                                                                                           : 10000;
	return r;
}

static inline uint32_t wf_ppm_value(struct wf_ppm p)
{
	uint64_t v = (uint64_t)p.numerator * p.scale;
	return v > 1000000 ? 1000000 : (uint32_t)v;
}

/* A RuntimeFractionalPercent's default_value (runtime keys are not used); `dflt` when unset. */
static inline uint32_t wf_runtime_ppm(const Envoy__Config__Core__V3__RuntimeFractionalPercent *r, uint32_t dflt)
{
	return r && r->default_value ? wf_ppm_value(wf_ppm_of(r->default_value)) : dflt;
}

#endif
