/* envoy.filters.http.health_check: this proxy's answer to health checks aimed at it (a load
 * balancer's, or another proxy's active checks). A request whose headers match `headers` (say
 * `:path` /healthz) is a health check. Without pass-through, the proxy answers 200 itself;
 * with pass_through_mode, the check goes on to the upstream. Either way, once the proxy fails
 * its health (admin POST /healthcheck/fail) or drains, the check is answered 503 with
 * x-envoy-immediate-health-check-fail: true (flag LH), so checkers take it out at once. */
#include "filter/filters.h"

#include "envoy/extensions/filters/http/health_check/v3/health_check.pb-c.h"
#include "proxy/router.h"
#include "proxy/stream_info.h"
#include "xds/cfgdoc.h"

#include <stdlib.h>

typedef Envoy__Extensions__Filters__Http__HealthCheck__V3__HealthCheck HealthCheck;

#define TYPE "envoy.extensions.filters.http.health_check.v3.HealthCheck"

struct hc {
	uint8_t pass_through;
	struct wf_hdr_match *hm; uint32_t n_hm;
};

static void destroy(void *p)
{
	struct hc *h = p;
	for (uint32_t i = 0; i < h->n_hm; i++)
		wf_hdr_match_free(&h->hm[i]);
	free(h->hm);
	free(h);
}

static void *create(struct wf_compile *c, const char *stat_prefix, const ProtobufCMessage *m)
{
	const HealthCheck *p = (const HealthCheck *)m;
	if (!p->pass_through_mode) {
		wf_cfg_err(c->doc, c->err, c->errlen, p, "pass_through_mode", "pass_through_mode is required");
		return NULL;
	}
	if (p->cache_time) {
		wf_cfg_err(c->doc, c->err, c->errlen, p, "cache_time", "cache_time is not supported yet");
		return NULL;
	}
	if (p->n_cluster_min_healthy_percentages) {
		wf_cfg_err(c->doc, c->err, c->errlen, p, "cluster_min_healthy_percentages", "not supported yet");
		return NULL;
	}
	struct hc *h = calloc(1, sizeof(*h));
	h->pass_through = p->pass_through_mode->value;
	h->hm = calloc(p->n_headers ? p->n_headers : 1, sizeof(*h->hm));
	for (size_t i = 0; i < p->n_headers; i++) {
		if (wf_compile_hdr_match(c, &p->headers[i]->base, &h->hm[i]) < 0) {
			destroy(h);
			return NULL;
		}
		h->n_hm++;
	}
	return h;
}

static int on_request(struct wf_fstream *fs, const void *cfg, const void *route_cfg)
{
	const struct hc *h = cfg;
	for (uint32_t i = 0; i < h->n_hm; i++)
		if (!wf_hdr_match(&h->hm[i], fs->req))
			return WF_FILTER_CONTINUE;
	if (wf_fs_server_failing(fs)) {
		wf_fs_add_response_header(fs, "x-envoy-immediate-health-check-fail", "true", 4);
		wf_fs_reply(fs, 503, WF_RF_LH, NULL, -1);
		return WF_FILTER_STOP;
	}
	if (h->pass_through)
		return WF_FILTER_CONTINUE;
	wf_fs_reply(fs, 200, 0, NULL, -1);
	return WF_FILTER_STOP;
}

const struct wf_http_filter_ops wf_filter_health_check = {
	.name = "envoy.filters.http.health_check",
	.type = TYPE,
	.needs_config = 1,
	.create = create,
	.destroy = destroy,
	.on_request = on_request,
};
