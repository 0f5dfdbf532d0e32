/* Compile a connection manager's `http_filters` through the filter table (proxy/filter.h),
 * the per-route filter configs (typed_per_filter_config, and the legacy route/virtual host
 * `cors` field, which is the CORS filter's per-route config under another message), and
 * route.v3.RateLimit descriptor actions. */
#include "proxy/compile.h"

#include "core/str.h"

#include "envoy/config/route/v3/route_components.pb-c.h"
#include "envoy/extensions/filters/http/router/v3/router.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "proxy/filter.h"
#include "xds/cfgdoc.h"

#include <stdlib.h>
#include <string.h>

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter HttpFilter;
typedef Envoy__Config__Route__V3__RateLimit RateLimit;
typedef Envoy__Config__Route__V3__RateLimit__Action Action;

#define ROUTER_NAME "envoy.filters.http.router"
#define ROUTER_TYPE "envoy.extensions.filters.http.router.v3.Router"

/* ---- registry ---------------------------------------------------------------------------- */

static const struct wf_http_filter_ops *kinds[32];
static unsigned n_kinds;

void wf_http_filter_register(const struct wf_http_filter_ops *ops)
{
	for (unsigned i = 0; i < n_kinds; i++)
		if (kinds[i] == ops)
			return;
	if (n_kinds < sizeof(kinds) / sizeof(kinds[0]))
		kinds[n_kinds++] = ops;
}

const struct wf_http_filter_ops *wf_http_filter_by_name(const char *name)
{
	for (unsigned i = 0; name && i < n_kinds; i++)
		if (!strcmp(kinds[i]->name, name))
			return kinds[i];
	return NULL;
}

const struct wf_http_filter_ops *wf_http_filter_by_type(const char *type)
{
	for (unsigned i = 0; type && i < n_kinds; i++)
		if (!strcmp(kinds[i]->type, type))
			return kinds[i];
	return NULL;
}

static int accepts_route_type(const struct wf_http_filter_ops *ops, const char *type)
{
	for (const char *const *t = ops->route_types; t && *t; t++)
		if (!strcmp(*t, type))
			return 1;
	return 0;
}

/* ---- http_filters ------------------------------------------------------------------------ */

int wf_compile_http_filters(struct wf_compile *c, const void *hcm, struct wf_hcm_cfg *h)
{
	const Hcm *m = hcm;
	if (!m->n_http_filters)
		return wf_cfg_err(c->doc, c->err, c->errlen, m, "http_filters", "http_filters must end with " ROUTER_NAME);
	if (m->n_http_filters > WF_FILTERS_MAX)
		return wf_cfg_err(c->doc, c->err, c->errlen, m, "http_filters", "at most %d HTTP filters", WF_FILTERS_MAX);
	h->filters = calloc(m->n_http_filters, sizeof(*h->filters));
	for (size_t i = 0; i < m->n_http_filters; i++) {
		const HttpFilter *f = m->http_filters[i];
		const ProtobufCMessage *in = NULL;
		const char *type = NULL;
		if (f->config_type_case) {
			in = wf_cfgdoc_any(c->doc, &f->typed_config->base, c->err, c->errlen);
			if (!in)
				return -1;
			type = in->descriptor->name;
		}
		int last = i + 1 == m->n_http_filters;
		if ((type && !strcmp(type, ROUTER_TYPE)) || (!type && f->name && !strcmp(f->name, ROUTER_NAME))) {
			if (!last)
				return wf_cfg_err(c->doc, c->err, c->errlen, f, "name", "the router must be the last HTTP filter");
			const Envoy__Extensions__Filters__Http__Router__V3__Router *rt = (const void *)in;
			if (rt) {
				h->suppress_envoy_headers = rt->suppress_envoy_headers;
				if (rt->start_child_span)
					return wf_cfg_err(c->doc, c->err, c->errlen, rt, "start_child_span", "tracing is not supported yet");
			}
			return 0;
		}
		const struct wf_http_filter_ops *ops = type ? wf_http_filter_by_type(type) : wf_http_filter_by_name(f->name);
		if (!ops) {
			if (f->is_optional)
				continue;
			return wf_cfg_err(c->doc, c->err, c->errlen, f, type ? "typed_config" : "name",
			                  "HTTP filter '%s' is not supported", type ? type : f->name);
		}
		if (last)
			return wf_cfg_err(c->doc, c->err, c->errlen, f, "name", "http_filters must end with " ROUTER_NAME);
		if (!in && ops->needs_config)
			return wf_cfg_err(c->doc, c->err, c->errlen, f, "name", "%s needs a typed_config (%s)", ops->name, ops->type);
		struct wf_filter_inst *fi = &h->filters[h->n_filters];
		fi->ops = ops;
		fi->name = strdup(f->name && *f->name ? f->name : ops->name);
		h->n_filters++;
		fi->cfg = ops->create(c, h->stat_prefix, in);
		if (!fi->cfg)
			return -1;
	}
	return 0;
}

void wf_http_filters_free(struct wf_hcm_cfg *h)
{
	for (uint32_t i = 0; i < h->n_filters; i++) {
		if (h->filters[i].cfg)
			h->filters[i].ops->destroy(h->filters[i].cfg);
		free(h->filters[i].name);
	}
	free(h->filters);
	h->filters = NULL;
	h->n_filters = 0;
}

/* ---- typed_per_filter_config ------------------------------------------------------------- */

/* Route and VirtualHost map entries have this layout. */
typedef Envoy__Config__Route__V3__Route__TypedPerFilterConfigEntry Entry;

static int add_route_cfg(struct wf_compile *c, const ProtobufCMessage *owner, const char *field, int index,
                         const ProtobufCMessage *in, struct wf_filter_route_cfg **out, uint32_t *n)
{
	const struct wf_http_filter_ops *ops = c->chain[index].ops;
	if (!accepts_route_type(ops, in->descriptor->name))
		return wf_cfg_err(c->doc, c->err, c->errlen, owner, field, "%s does not take %s as a per-route config",
		                  c->chain[index].name, in->descriptor->name);
	for (uint32_t k = 0; k < *n; k++)
		if ((*out)[k].index == (uint32_t)index)
			return wf_cfg_err(c->doc, c->err, c->errlen, owner, field, "two per-route configs for %s",
			                  c->chain[index].name);
	void *cfg = ops->create_route(c, c->stat_prefix, in);
	if (!cfg)
		return -1;
	*out = realloc(*out, (*n + 1) * sizeof(**out));
	(*out)[*n] = (struct wf_filter_route_cfg){(uint32_t)index, ops, cfg};
	(*n)++;
	return 0;
}

int wf_compile_per_filter(struct wf_compile *c, const void *owner, size_t n_entries, void *const *entries,
                          const ProtobufCMessage *legacy_cors, struct wf_filter_route_cfg **out, uint32_t *n)
{
	for (size_t i = 0; i < n_entries; i++) {
		const Entry *e = entries[i];
		if (!e->value)
			continue;
		const ProtobufCMessage *in = wf_cfgdoc_any(c->doc, &e->value->base, c->err, c->errlen);
		if (!in)
			return -1;
		int index = -1;
		for (uint32_t k = 0; k < c->n_chain; k++)
			if (!strcmp(c->chain[k].name, e->key))
				index = (int)k;
		if (index < 0) {
			/* a filter this connection manager does not run: the config must still be one we
			 * know (Envoy validates it by its type), and is unused */
			const struct wf_http_filter_ops *ops = NULL;
			for (unsigned k = 0; k < n_kinds && !ops; k++)
				if (accepts_route_type(kinds[k], in->descriptor->name))
					ops = kinds[k];
			if (!ops)
				return wf_cfg_err(c->doc, c->err, c->errlen, e, "value", "no HTTP filter takes %s",
				                  in->descriptor->name);
			continue;
		}
		if (add_route_cfg(c, &e->base, "value", index, in, out, n) < 0)
			return -1;
	}
	if (legacy_cors) {
		for (uint32_t k = 0; k < c->n_chain; k++)
			if (accepts_route_type(c->chain[k].ops, legacy_cors->descriptor->name)) {
				/* typed_per_filter_config wins over the deprecated field */
				int have = 0;
				for (uint32_t j = 0; j < *n; j++)
					have |= (*out)[j].index == k;
				if (!have && add_route_cfg(c, legacy_cors, NULL, (int)k, legacy_cors, out, n) < 0)
					return -1;
			}
	}
	return 0;
}

void wf_filter_route_cfgs_free(struct wf_filter_route_cfg *f, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (f[i].cfg)
			f[i].ops->destroy_route(f[i].cfg);
	free(f);
}

/* ---- rate_limits ------------------------------------------------------------------------- */

static int action(struct wf_compile *c, const Action *a, struct wf_rl_action *out)
{
	switch (a->action_specifier_case) {
	case ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_DESTINATION_CLUSTER:
		out->kind = WF_RL_DEST_CLUSTER;
		out->key = strdup("destination_cluster");
		return 0;
	case ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_REQUEST_HEADERS: {
		const Envoy__Config__Route__V3__RateLimit__Action__RequestHeaders *r = a->request_headers;
		if (!r->header_name || !*r->header_name || !r->descriptor_key || !*r->descriptor_key)
			return wf_cfg_err(c->doc, c->err, c->errlen, r, !r->header_name || !*r->header_name ? "header_name" : "descriptor_key",
			                  "request_headers needs header_name and descriptor_key");
		out->kind = WF_RL_HEADER;
		out->header = wf_strdup_lower(r->header_name, &out->header_len);
		out->key = strdup(r->descriptor_key);
		out->skip_if_absent = r->skip_if_absent;
		return 0;
	}
	case ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_REMOTE_ADDRESS:
		out->kind = WF_RL_REMOTE;
		out->key = strdup("remote_address");
		return 0;
	case ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_GENERIC_KEY: {
		const Envoy__Config__Route__V3__RateLimit__Action__GenericKey *g = a->generic_key;
		if (!g->descriptor_value || !*g->descriptor_value)
			return wf_cfg_err(c->doc, c->err, c->errlen, g, "descriptor_value", "generic_key needs a descriptor_value");
		out->kind = WF_RL_GENERIC;
		out->key = strdup(g->descriptor_key && *g->descriptor_key ? g->descriptor_key : "generic_key");
		out->value = strdup(g->descriptor_value);
		return 0;
	}
	case ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_HEADER_VALUE_MATCH: {
		const Envoy__Config__Route__V3__RateLimit__Action__HeaderValueMatch *h = a->header_value_match;
		if (!h->descriptor_value || !*h->descriptor_value)
			return wf_cfg_err(c->doc, c->err, c->errlen, h, "descriptor_value", "header_value_match needs a descriptor_value");
		if (!h->n_headers)
			return wf_cfg_err(c->doc, c->err, c->errlen, h, "headers", "header_value_match needs headers");
		out->kind = WF_RL_HEADER_MATCH;
		out->key = strdup(h->descriptor_key && *h->descriptor_key ? h->descriptor_key : "header_match");
		out->value = strdup(h->descriptor_value);
		out->expect_match = h->expect_match ? h->expect_match->value : 1;
		out->hm = calloc(h->n_headers, sizeof(*out->hm));
		for (size_t i = 0; i < h->n_headers; i++) {
			if (wf_compile_hdr_match(c, &h->headers[i]->base, &out->hm[i]) < 0)
				return -1;
			out->n_hm++;
		}
		return 0;
	}
	case ENVOY__CONFIG__ROUTE__V3__RATE_LIMIT__ACTION__ACTION_SPECIFIER_SOURCE_CLUSTER:
		return wf_cfg_err(c->doc, c->err, c->errlen, a, "source_cluster",
		                  "source_cluster is not supported yet (the proxy has no local cluster name)");
	default:
		return wf_cfg_err(c->doc, c->err, c->errlen, a, NULL, "a rate limit action needs one action");
	}
}

int wf_compile_rate_limits(struct wf_compile *c, size_t n, void *const *msgs, struct wf_rate_limit **out,
                           uint32_t *n_out)
{
	if (!n)
		return 0;
	*out = calloc(n, sizeof(**out));
	for (size_t i = 0; i < n; i++) {
		const RateLimit *r = msgs[i];
		struct wf_rate_limit *rl = &(*out)[i];
		(*n_out)++;
		rl->stage = r->stage ? r->stage->value : 0;
		if (rl->stage > 10)
			return wf_cfg_err(c->doc, c->err, c->errlen, r, "stage", "stage must be 0..10");
		if (!r->n_actions)
			return wf_cfg_err(c->doc, c->err, c->errlen, r, "actions", "a rate limit needs actions");
		if (r->n_actions > WF_RL_ENTRIES_MAX)
			return wf_cfg_err(c->doc, c->err, c->errlen, r, "actions", "at most %d actions", WF_RL_ENTRIES_MAX);
		rl->a = calloc(r->n_actions, sizeof(*rl->a));
		for (size_t k = 0; k < r->n_actions; k++) {
			rl->n++;
			if (action(c, r->actions[k], &rl->a[k]) < 0)
				return -1;
		}
	}
	return 0;
}

void wf_rate_limits_free(struct wf_rate_limit *rl, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		for (uint32_t k = 0; k < rl[i].n; k++) {
			struct wf_rl_action *a = &rl[i].a[k];
			free(a->header);
			free(a->key);
			free(a->value);
			for (uint32_t j = 0; j < a->n_hm; j++)
				wf_hdr_match_free(&a->hm[j]);
			free(a->hm);
		}
		free(rl[i].a);
	}
	free(rl);
}
