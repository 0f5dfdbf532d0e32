/* envoy.filters.http.fault: inject a fixed delay and/or abort a share of requests (HTTP
 * status or gRPC status), optionally only for some headers, downstream nodes or an upstream
 * cluster; the client may ask for faults with x-envoy-fault-* headers when the config allows
 * it (header_delay / header_abort). A per-route HTTPFault replaces the filter's. */
#include "filter/filters.h"

#include "envoy/extensions/filters/http/fault/v3/fault.pb-c.h"
#include "core/str.h"
#include "proxy/compile.h"
#include "proxy/router.h"
#include "proxy/stats.h"
#include "proxy/stream_info.h"
#include "xds/cfgdoc.h"

#include <stdlib.h>
#include <string.h>

typedef Envoy__Extensions__Filters__Http__Fault__V3__HTTPFault HTTPFault;
typedef Envoy__Extensions__Filters__Http__Fault__V3__FaultAbort FaultAbort;
typedef Envoy__Extensions__Filters__Common__Fault__V3__FaultDelay FaultDelay;

#define TYPE "envoy.extensions.filters.http.fault.v3.HTTPFault"

struct fault {
	uint8_t delay, header_delay;       /* a delay is configured; its length comes from a header */
	uint64_t delay_ms;
	struct wf_pct delay_pct;
	uint8_t abort, header_abort;
	uint32_t http_status;
	int grpc_status;                   /* -1: an HTTP abort */
	struct wf_pct abort_pct;
	char *cluster;                     /* upstream_cluster */
	struct wf_hdr_match *hm; uint32_t n_hm;
	char **nodes; uint32_t n_nodes;    /* downstream_nodes */
	uint32_t max_active;               /* 0: unlimited */
	int64_t active;                    /* faults of this config in progress, all workers (atomic) */
	uint32_t st_delays, st_aborts, st_active, st_overflow;
};

static void destroy(void *p)
{
	struct fault *f = p;
	free(f->cluster);
	for (uint32_t i = 0; i < f->n_hm; i++)
		wf_hdr_match_free(&f->hm[i]);
	free(f->hm);
	for (uint32_t i = 0; i < f->n_nodes; i++)
		free(f->nodes[i]);
	free(f->nodes);
	free(f);
}

static void *create(struct wf_compile *c, const char *stat_prefix, const ProtobufCMessage *m)
{
	struct fault *f = calloc(1, sizeof(*f));
	f->grpc_status = -1;
	f->st_delays = wf_stat_register(WF_STAT_COUNTER, "http", stat_prefix, "fault.delays_injected");
	f->st_aborts = wf_stat_register(WF_STAT_COUNTER, "http", stat_prefix, "fault.aborts_injected");
	f->st_overflow = wf_stat_register(WF_STAT_COUNTER, "http", stat_prefix, "fault.faults_overflow");
	f->st_active = wf_stat_register(WF_STAT_GAUGE, "http", stat_prefix, "fault.active_faults");
	const HTTPFault *h = (const HTTPFault *)m;
	if (!h)
		return f; /* configured by name only: per-route configs decide */
	if (h->delay) {
		const FaultDelay *d = h->delay;
		f->delay = 1;
		if (d->fault_delay_secifier_case == ENVOY__EXTENSIONS__FILTERS__COMMON__FAULT__V3__FAULT_DELAY__FAULT_DELAY_SECIFIER_FIXED_DELAY)
			f->delay_ms = wf_duration_ms(d->fixed_delay);
		else if (d->fault_delay_secifier_case == ENVOY__EXTENSIONS__FILTERS__COMMON__FAULT__V3__FAULT_DELAY__FAULT_DELAY_SECIFIER_HEADER_DELAY)
			f->header_delay = 1;
		else
			goto refuse_delay;
		f->delay_pct = wf_pct_of(d->percentage);
	}
	if (h->abort) {
		const FaultAbort *a = h->abort;
		f->abort = 1;
		switch (a->error_type_case) {
		case ENVOY__EXTENSIONS__FILTERS__HTTP__FAULT__V3__FAULT_ABORT__ERROR_TYPE_HTTP_STATUS:
			if (a->http_status < 200 || a->http_status > 599) {
				wf_cfg_err(c->doc, c->err, c->errlen, a, "http_status", "http_status must be 200..599");
				goto fail;
			}
			f->http_status = a->http_status;
			break;
		case ENVOY__EXTENSIONS__FILTERS__HTTP__FAULT__V3__FAULT_ABORT__ERROR_TYPE_GRPC_STATUS:
			if (a->grpc_status > 16) {
				wf_cfg_err(c->doc, c->err, c->errlen, a, "grpc_status", "grpc_status must be 0..16");
				goto fail;
			}
			f->grpc_status = (int)a->grpc_status;
			f->http_status = 503; /* what a client that does not speak gRPC gets */
			break;
		case ENVOY__EXTENSIONS__FILTERS__HTTP__FAULT__V3__FAULT_ABORT__ERROR_TYPE_HEADER_ABORT:
			f->header_abort = 1;
			break;
		default:
			wf_cfg_err(c->doc, c->err, c->errlen, a, NULL, "an abort needs http_status, grpc_status or header_abort");
			goto fail;
		}
		f->abort_pct = wf_pct_of(a->percentage);
	}
	if (h->upstream_cluster && *h->upstream_cluster)
		f->cluster = strdup(h->upstream_cluster);
	if (h->n_headers) {
		f->hm = calloc(h->n_headers, sizeof(*f->hm));
		for (size_t i = 0; i < h->n_headers; i++) {
			if (wf_compile_hdr_match(c, &h->headers[i]->base, &f->hm[i]) < 0)
				goto fail;
			f->n_hm++;
		}
	}
	if (h->n_downstream_nodes) {
		f->nodes = calloc(h->n_downstream_nodes, sizeof(*f->nodes));
		for (size_t i = 0; i < h->n_downstream_nodes; i++)
			f->nodes[f->n_nodes++] = strdup(h->downstream_nodes[i]);
	}
	if (h->max_active_faults)
		f->max_active = h->max_active_faults->value;
	return f;
refuse_delay:
	wf_cfg_err(c->doc, c->err, c->errlen, h->delay, NULL, "a delay needs fixed_delay or header_delay");
fail:
	destroy(f);
	return NULL;
}

/* Does the fault apply to this request at all (cluster, nodes, headers)? */
static int applies(const struct fault *f, struct wf_fstream *fs)
{
	if (!f->delay && !f->abort)
		return 0;
	if (f->cluster) {
		const char *c = wf_fs_cluster(fs);
		if (!c || strcmp(c, f->cluster))
			return 0;
	}
	if (f->n_nodes) {
		const struct wf_hdr *h = wf_fs_header(fs, "x-envoy-downstream-service-node");
		uint32_t i;
		for (i = 0; h && i < f->n_nodes; i++)
			if (strlen(f->nodes[i]) == h->value_len && !memcmp(f->nodes[i], h->value, h->value_len))
				break;
		if (!h || i == f->n_nodes)
			return 0;
	}
	for (uint32_t i = 0; i < f->n_hm; i++)
		if (!wf_hdr_match(&f->hm[i], fs->req))
			return 0;
	return 1;
}

/* A header's unsigned value, or -1 when absent or not a number. */
static int64_t header_u64(struct wf_fstream *fs, const char *name)
{
	const struct wf_hdr *h = wf_fs_header(fs, name);
	return h ? wf_parse_u64(h->value, h->value_len, 1ull << 40) : -1;
}

/* The share of requests a fault applies to: the configured one, or (header-controlled) the
 * request's x-envoy-fault-*-percentage, never above the configured numerator. */
static int chosen(struct wf_fstream *fs, struct wf_pct pct, int from_header, const char *pct_header)
{
	if (from_header) {
		int64_t h = header_u64(fs, pct_header);
		if (h >= 0 && (uint64_t)h < pct.numerator)
			pct.numerator = (uint32_t)h;
	}
	return wf_fs_chance(fs, wf_ppm(pct.numerator, pct.scale));
}

static int take_active(const struct fault *f, struct wf_fstream *fs)
{
	if (fs->word[fs->index])
		return 1;
	if (f->max_active && __atomic_load_n(&f->active, __ATOMIC_RELAXED) >= (int64_t)f->max_active) {
		wf_stat_inc(f->st_overflow);
		return 0;
	}
	__atomic_add_fetch(&((struct fault *)f)->active, 1, __ATOMIC_RELAXED);
	wf_stat_inc(f->st_active);
	fs->word[fs->index] = (uint64_t)(uintptr_t)f;
	return 1;
}

/* Abort now if this request draws an abort: 1 when answered. */
static int maybe_abort(const struct fault *f, struct wf_fstream *fs)
{
	if (!f->abort)
		return 0;
	int status = (int)f->http_status, grpc = f->grpc_status;
	if (f->header_abort) {
		int64_t h = header_u64(fs, "x-envoy-fault-abort-request");
		int64_t g = header_u64(fs, "x-envoy-fault-abort-grpc-request");
		if (h >= 200 && h < 600)
			status = (int)h;
		else if (g >= 0 && g <= 16)
			grpc = (int)g, status = 503;
		else
			return 0;
	}
	if (!chosen(fs, f->abort_pct, f->header_abort, "x-envoy-fault-abort-request-percentage") || !take_active(f, fs))
		return 0;
	wf_stat_inc(f->st_aborts);
	wf_fs_reply(fs, status, WF_RF_FI, "fault filter abort", grpc);
	return 1;
}

static void delay_over(struct wf_loop *loop, struct wf_timer *t)
{
	struct wf_fstream *fs = t->data;
	const struct fault *f = (const struct fault *)(uintptr_t)fs->word[fs->index];
	if (!maybe_abort(f, fs))
		wf_fs_resume(fs);
}

static int on_request(struct wf_fstream *fs, const void *cfg, const void *route_cfg)
{
	const struct fault *f = route_cfg ? route_cfg : cfg;
	if (!applies(f, fs))
		return WF_FILTER_CONTINUE;
	if (f->delay) {
		int64_t ms = (int64_t)f->delay_ms;
		if (f->header_delay)
			ms = header_u64(fs, "x-envoy-fault-delay-request");
		if (ms > 0 && chosen(fs, f->delay_pct, f->header_delay, "x-envoy-fault-delay-request-percentage") &&
		    take_active(f, fs)) {
			wf_stat_inc(f->st_delays);
			fs->si->response_flags |= WF_RF_DI;
			fs->t.cb = delay_over;
			wf_timer_set(wf_fs_loop(fs), &fs->t, (uint64_t)ms);
			return WF_FILTER_STOP;
		}
	}
	return maybe_abort(f, fs) ? WF_FILTER_STOP : WF_FILTER_CONTINUE;
}

static void on_end(struct wf_fstream *fs, const void *cfg)
{
	const struct fault *f = (const struct fault *)(uintptr_t)fs->word[fs->index];
	if (!f)
		return;
	__atomic_sub_fetch(&((struct fault *)f)->active, 1, __ATOMIC_RELAXED);
	wf_stat_dec(f->st_active);
	fs->word[fs->index] = 0;
}

static const char *const route_types[] = {TYPE, NULL};

const struct wf_http_filter_ops wf_filter_fault = {
	.name = "envoy.filters.http.fault",
	.type = TYPE,
	.route_types = route_types,
	.create = create,
	.create_route = create,
	.destroy = destroy,
	.destroy_route = destroy,
	.on_request = on_request,
	.on_end = on_end,
};
