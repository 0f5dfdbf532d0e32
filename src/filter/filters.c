#include "filter/filters.h"

void wf_filters_init(void)
{
	wf_http_filter_register(&wf_filter_fault);
	wf_http_filter_register(&wf_filter_local_ratelimit);
	wf_http_filter_register(&wf_filter_cors);
	wf_http_filter_register(&wf_filter_health_check);
	wf_http_filter_register(&wf_filter_grpc_stats);
}
