/* The HTTP filters of src/filter/, each one file filling a struct wf_http_filter_ops, and
 * what they share. wf_filters_init registers them all with the proxy (the proxy never names
 * a filter); the command line calls it once at start. */
#ifndef WF_FILTER_FILTERS_H
#define WF_FILTER_FILTERS_H

#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/type/v3/percent.pb-c.h"
#include "proxy/compile.h"
#include "proxy/filter.h"

void wf_filters_init(void);

extern const struct wf_http_filter_ops wf_filter_fault;
extern const struct wf_http_filter_ops wf_filter_local_ratelimit;
extern const struct wf_http_filter_ops wf_filter_cors;
extern const struct wf_http_filter_ops wf_filter_health_check;
extern const struct wf_http_filter_ops wf_filter_grpc_stats;

/* A FractionalPercent: numerator, and the factor to parts per million. */
struct wf_pct {
	uint32_t numerator;
	uint32_t scale;
};

static inline struct wf_pct wf_pct_of(const Envoy__Type__V3__FractionalPercent *p)
{
	struct wf_pct r = {0, 10000};
	if (p)
		r = (struct wf_pct){p->numerator, wf_fraction_scale(p)};
	return r;
}

#endif
