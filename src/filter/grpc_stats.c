/* envoy.filters.http.grpc_stats: counts gRPC calls by their gRPC status, in the namespace of
 * the cluster the call went to:
 *   cluster.<cluster>.grpc.<service>.<method>.{total,success,failure,<status>}
 *                                          a call to a method of individual_method_stats_allowlist
 *   cluster.<cluster>.grpc.{total,success,failure,<status>}              any other call
 * <status> is the grpc-status number (0..16) from the trailers, a trailers-only response, or
 * Weft's own gRPC-shaped reply; a call that ended without one (reset) counts as a failure.
 * Stats of a (cluster, method) are registered the first time a call charges them, so only
 * what is used shows up. Message counts (request/response_message_count) need the bodies'
 * framing and are not counted; stats_for_all_methods (unbounded names) is refused. */
#include "filter/filters.h"

#include "envoy/extensions/filters/http/grpc_stats/v3/config.pb-c.h"
#include "proxy/stats.h"
#include "xds/cfgdoc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Envoy__Extensions__Filters__Http__GrpcStats__V3__FilterConfig FilterConfig;

#define TYPE "envoy.extensions.filters.http.grpc_stats.v3.FilterConfig"
#define N_STATUS 17

struct method {
	char *path;                        /* "/service/method", as in :path */
	char *prefix;                      /* "grpc.<service>.<method>." */
	uint32_t path_len;
};

/* The stats of one (cluster, method); a status's counter exists once a call ended with it
 * (index + 1; 0: not yet). */
struct slot {
	uint32_t total, success, failure, status1[N_STATUS];
	const char *prefix, *cluster;
};

struct gs {
	struct method *m; uint32_t n_m;
	uint32_t n_clusters;
	struct slot **slots;               /* [n_clusters * (1 + n_m)], made on first use */
};

/* Its stats go with the config (when no other config counts them). */
static void slot_free(struct slot *s)
{
	if (!s)
		return;
	uint32_t idx[3 + N_STATUS] = {s->total, s->success, s->failure}, n = 3;
	for (int i = 0; i < N_STATUS; i++)
		if (s->status1[i])
			idx[n++] = s->status1[i] - 1;
	wf_stats_release(idx, n);
	free(s);
}

static void destroy(void *p)
{
	struct gs *g = p;
	for (uint32_t i = 0; i < g->n_m; i++) {
		free(g->m[i].path);
		free(g->m[i].prefix);
	}
	for (uint32_t i = 0; i < g->n_clusters * (1 + g->n_m); i++)
		slot_free(g->slots[i]);
	free(g->slots);
	free(g->m);
	free(g);
}

static void *create(struct wf_compile *c, const char *stat_prefix, const ProtobufCMessage *m)
{
	const FilterConfig *p = (const FilterConfig *)m;
	if (p && p->emit_filter_state) {
		wf_cfg_err(c->doc, c->err, c->errlen, p, "emit_filter_state", "not supported yet");
		return NULL;
	}
	if (p && p->enable_upstream_stats) {
		wf_cfg_err(c->doc, c->err, c->errlen, p, "enable_upstream_stats", "not supported yet");
		return NULL;
	}
	if (p && p->per_method_stat_specifier_case ==
	             ENVOY__EXTENSIONS__FILTERS__HTTP__GRPC_STATS__V3__FILTER_CONFIG__PER_METHOD_STAT_SPECIFIER_STATS_FOR_ALL_METHODS &&
	    p->stats_for_all_methods && p->stats_for_all_methods->value) {
		wf_cfg_err(c->doc, c->err, c->errlen, p, "stats_for_all_methods",
		           "per-method stats for every method (unbounded stat names) are not supported: "
		           "list the methods in individual_method_stats_allowlist");
		return NULL;
	}
	struct gs *g = calloc(1, sizeof(*g));
	const Envoy__Config__Core__V3__GrpcMethodList *l =
	    p && p->per_method_stat_specifier_case ==
	             ENVOY__EXTENSIONS__FILTERS__HTTP__GRPC_STATS__V3__FILTER_CONFIG__PER_METHOD_STAT_SPECIFIER_INDIVIDUAL_METHOD_STATS_ALLOWLIST
	        ? p->individual_method_stats_allowlist
	        : NULL;
	for (size_t i = 0; l && i < l->n_services; i++)
		g->n_m += (uint32_t)l->services[i]->n_method_names;
	g->m = calloc(g->n_m + 1, sizeof(*g->m));
	uint32_t k = 0;
	for (size_t i = 0; l && i < l->n_services; i++) {
		const Envoy__Config__Core__V3__GrpcMethodList__Service *s = l->services[i];
		if (!s->name || !*s->name) {
			wf_cfg_err(c->doc, c->err, c->errlen, s, "name", "a service name is required");
			destroy(g);
			return NULL;
		}
		for (size_t j = 0; j < s->n_method_names; j++, k++) {
			const char *mn = s->method_names[j];
			size_t n = strlen(s->name) + strlen(mn) + 2;
			g->m[k].path = malloc(n + 1);
			g->m[k].path_len = (uint32_t)snprintf(g->m[k].path, n + 1, "/%s/%s", s->name, mn);
			g->m[k].prefix = malloc(n + 8);
			snprintf(g->m[k].prefix, n + 8, "grpc.%s.%s.", s->name, mn);
			if (p->replace_dots_in_grpc_service_name)
				for (char *d = g->m[k].prefix + 5; *d && d < g->m[k].prefix + 5 + strlen(s->name); d++)
					if (*d == '.')
						*d = '_';
		}
	}
	g->n_clusters = c->snap->n_clusters;
	g->slots = calloc((size_t)g->n_clusters * (1 + g->n_m) + 1, sizeof(*g->slots));
	return g;
}

/* A gRPC request: remember which stats it charges (1 + method index; the word stays 0 for
 * requests that are not gRPC). */
static int on_request(struct wf_fstream *fs, const void *cfg, const void *route_cfg)
{
	const struct gs *g = cfg;
	if (!fs->req->grpc)
		return WF_FILTER_CONTINUE;
	uint64_t w = 1;
	const char *path = fs->req->path;
	uint32_t pl = fs->req->path_len;
	for (uint32_t i = 0; i < g->n_m; i++)
		if (g->m[i].path_len == pl && !memcmp(g->m[i].path, path, pl)) {
			w = 2 + i;
			break;
		}
	fs->word[fs->index] = w;
	return WF_FILTER_CONTINUE;
}

static uint32_t reg(const struct slot *s, const char *what)
{
	char name[512];
	snprintf(name, sizeof(name), "%s%s", s->prefix, what);
	return wf_stat_register(WF_STAT_COUNTER, "cluster", s->cluster, name);
}

static struct slot *slot_of(struct gs *g, const struct wf_cluster *cl, uint32_t mi)
{
	if (cl->index >= g->n_clusters)
		return NULL;
	struct slot **sp = &g->slots[(size_t)cl->index * (1 + g->n_m) + mi];
	struct slot *s = __atomic_load_n(sp, __ATOMIC_ACQUIRE);
	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	s->prefix = mi ? g->m[mi - 1].prefix : "grpc.";
	s->cluster = cl->stat_name;
	s->total = reg(s, "total");
	s->success = reg(s, "success");
	s->failure = reg(s, "failure");
	struct slot *none = NULL;
	if (!__atomic_compare_exchange_n(sp, &none, s, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		slot_free(s); /* another worker made it first (same stat indexes) */
		s = none;
	}
	return s;
}

static void on_end(struct wf_fstream *fs, const void *cfg)
{
	uint64_t w = fs->word[fs->index];
	if (!w || !fs->cluster)
		return;
	struct slot *s = slot_of((struct gs *)cfg, fs->cluster, (uint32_t)(w - 1));
	if (!s)
		return;
	int status = fs->grpc_status1 - 1;
	wf_stat_inc(s->total);
	wf_stat_inc(status == 0 ? s->success : s->failure);
	if (status < 0 || status >= N_STATUS)
		return;
	uint32_t i1 = __atomic_load_n(&s->status1[status], __ATOMIC_RELAXED);
	if (!i1) {
		char code[8];
		snprintf(code, sizeof(code), "%d", status);
		uint32_t mine = reg(s, code) + 1; /* the same index whichever worker registers it */
		if (__atomic_compare_exchange_n(&s->status1[status], &i1, mine, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			i1 = mine;
		else
			wf_stat_release(mine - 1); /* another worker's registration holds it */
	}
	wf_stat_inc(i1 - 1);
}

const struct wf_http_filter_ops wf_filter_grpc_stats = {
	.name = "envoy.filters.http.grpc_stats",
	.type = TYPE,
	.create = create,
	.destroy = destroy,
	.on_request = on_request,
	.on_end = on_end,
};
