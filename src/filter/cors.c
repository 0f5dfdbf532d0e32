/* envoy.filters.http.cors: Cross-Origin Resource Sharing by route policy. The policy is the
 * route's or virtual host's typed_per_filter_config (extensions.filters.http.cors.v3.CorsPolicy)
 * or their deprecated `cors` field (route.v3.CorsPolicy). A preflight (OPTIONS with Origin and
 * Access-Control-Request-Method) from an allowed origin is answered here with 200 and the
 * access-control-allow-* headers; an actual request from an allowed origin goes on and its
 * response gets access-control-allow-origin (and -credentials, -expose-headers). Requests from
 * other origins go on untouched. */
#include "filter/filters.h"

#include "envoy/config/route/v3/route_components.pb-c.h"
#include "envoy/extensions/filters/http/cors/v3/cors.pb-c.h"
#include "proxy/compile.h"
#include "proxy/stats.h"
#include "xds/cfgdoc.h"

#include <stdlib.h>
#include <string.h>

#define TYPE "envoy.extensions.filters.http.cors.v3.Cors"
#define POLICY "envoy.extensions.filters.http.cors.v3.CorsPolicy"
#define LEGACY "envoy.config.route.v3.CorsPolicy"

struct cors {
	struct wf_strmatch *origins; uint32_t n_origins;
	char *methods, *headers, *expose, *max_age;
	uint8_t credentials, private_network;
	uint32_t enabled_ppm;
	uint32_t st_valid, st_invalid;
};

static void stats(const char *stat_prefix, uint32_t *valid, uint32_t *invalid)
{
	*valid = wf_stat_register(WF_STAT_COUNTER, "http", stat_prefix, "cors.origin_valid");
	*invalid = wf_stat_register(WF_STAT_COUNTER, "http", stat_prefix, "cors.origin_invalid");
}

/* The filter's own config (Cors) is empty: the policies are per route. */
static void *create(struct wf_compile *c, const char *stat_prefix, const ProtobufCMessage *m)
{
	static int none;
	return &none;
}

static void destroy(void *p)
{
}

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

static void destroy_policy(void *p)
{
	struct cors *o = p;
	for (uint32_t i = 0; i < o->n_origins; i++) {
		free(o->origins[i].s);
		if (o->origins[i].re)
			pcre2_code_free(o->origins[i].re);
	}
	free(o->origins);
	free(o->methods);
	free(o->headers);
	free(o->expose);
	free(o->max_age);
	free(o);
}

/* Both policy messages have the same field names: one body for both. */
#define FILL(p, enabled)                                                                                  \
	do {                                                                                                  \
		o->methods = dup_or_null((p)->allow_methods);                                                     \
		o->headers = dup_or_null((p)->allow_headers);                                                     \
		o->expose = dup_or_null((p)->expose_headers);                                                     \
		o->max_age = dup_or_null((p)->max_age);                                                           \
		o->credentials = (p)->allow_credentials && (p)->allow_credentials->value;                         \
		o->private_network = (p)->allow_private_network_access && (p)->allow_private_network_access->value; \
		o->enabled_ppm = wf_runtime_ppm(enabled, 1000000);                                                \
		n = (p)->n_allow_origin_string_match;                                                             \
		sm = (p)->allow_origin_string_match;                                                              \
	} while (0)

static void *create_policy(struct wf_compile *c, const char *stat_prefix, const ProtobufCMessage *m)
{
	struct cors *o = calloc(1, sizeof(*o));
	stats(stat_prefix, &o->st_valid, &o->st_invalid);
	size_t n;
	Envoy__Type__Matcher__V3__StringMatcher **sm;
	if (!strcmp(m->descriptor->name, LEGACY)) {
		const Envoy__Config__Route__V3__CorsPolicy *p = (const void *)m;
		FILL(p, p->enabled_specifier_case ? p->filter_enabled : NULL);
	} else {
		const Envoy__Extensions__Filters__Http__Cors__V3__CorsPolicy *p = (const void *)m;
		FILL(p, p->filter_enabled);
	}
	if (o->max_age) {
		for (const char *q = o->max_age; *q; q++)
			if (*q < '0' || *q > '9') {
				wf_cfg_err(c->doc, c->err, c->errlen, m, "max_age", "max_age must be a number of seconds");
				destroy_policy(o);
				return NULL;
			}
	}
	o->origins = calloc(n ? n : 1, sizeof(*o->origins));
	for (size_t i = 0; i < n; i++) {
		if (wf_compile_strmatch(c, &sm[i]->base, &o->origins[i]) < 0) {
			destroy_policy(o);
			return NULL;
		}
		o->n_origins++;
	}
	return o;
}

static void add(struct wf_fstream *fs, const char *name, const char *v)
{
	if (v)
		wf_fs_add_response_header(fs, name, v, strlen(v));
}

static int on_request(struct wf_fstream *fs, const void *cfg, const void *route_cfg)
{
	const struct cors *p = route_cfg;
	if (!p)
		return WF_FILTER_CONTINUE;
	const struct wf_hdr *origin = wf_fs_header(fs, "origin");
	if (!origin || !origin->value_len || !wf_fs_chance(fs, p->enabled_ppm))
		return WF_FILTER_CONTINUE;
	uint32_t i;
	for (i = 0; i < p->n_origins; i++)
		if (wf_strmatch(&p->origins[i], origin->value, origin->value_len))
			break;
	if (i == p->n_origins) {
		wf_stat_inc(p->st_invalid);
		return WF_FILTER_CONTINUE;
	}
	wf_stat_inc(p->st_valid);
	wf_fs_add_response_header(fs, "access-control-allow-origin", origin->value, origin->value_len);
	if (p->credentials)
		add(fs, "access-control-allow-credentials", "true");
	const struct wf_h1_req *q = fs->req;
	const struct wf_hdr *want = wf_fs_header(fs, "access-control-request-method");
	int preflight = q->method_len == 7 && !memcmp(q->method, "OPTIONS", 7) && want && want->value_len;
	if (!preflight) {
		add(fs, "access-control-expose-headers", p->expose);
		return WF_FILTER_CONTINUE;
	}
	add(fs, "access-control-allow-methods", p->methods);
	add(fs, "access-control-allow-headers", p->headers);
	add(fs, "access-control-max-age", p->max_age);
	const struct wf_hdr *pna = wf_fs_header(fs, "access-control-request-private-network");
	if (p->private_network && pna && pna->value_len == 4 && !strncasecmp(pna->value, "true", 4))
		add(fs, "access-control-allow-private-network", "true");
	wf_fs_reply(fs, 200, 0, NULL, -1);
	return WF_FILTER_STOP;
}

static const char *const route_types[] = {POLICY, LEGACY, NULL};

const struct wf_http_filter_ops wf_filter_cors = {
	.name = "envoy.filters.http.cors",
	.type = TYPE,
	.route_types = route_types,
	.create = create,
	.create_route = create_policy,
	.destroy = destroy,
	.destroy_route = destroy_policy,
	.on_request = on_request,
};
