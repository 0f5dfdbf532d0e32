/* Compile envoy.config.route.v3 messages (RouteConfiguration, VirtualHost, Route, matchers,
 * header edits) into the runtime route table. */
#include "proxy/compile.h"

#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/config/route/v3/route_components.pb-c.h"
#include "core/str.h"
#include "http/grpc.h"
#include "xds/cfgdoc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef Envoy__Config__Route__V3__RouteConfiguration RouteConfiguration;
typedef Envoy__Config__Route__V3__VirtualHost VirtualHost;
typedef Envoy__Config__Route__V3__Route Route;
typedef Envoy__Config__Route__V3__RouteMatch RouteMatch;
typedef Envoy__Config__Route__V3__RouteAction RouteAction;
typedef Envoy__Config__Route__V3__RedirectAction RedirectAction;
typedef Envoy__Config__Route__V3__HeaderMatcher HeaderMatcher;
typedef Envoy__Config__Route__V3__QueryParameterMatcher QueryParameterMatcher;
typedef Envoy__Type__Matcher__V3__StringMatcher StringMatcher;
typedef Envoy__Type__Matcher__V3__RegexMatcher RegexMatcher;
typedef Envoy__Config__Core__V3__HeaderValueOption HeaderValueOption;

/* RE2's "\1" in a substitution is PCRE2's "$1"; a literal '$' must be "$$". */
static char *re2_subst(const char *s)
{
	size_t n = strlen(s);
	char *d = malloc(2 * n + 1), *o = d;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9') {
			*o++ = '$';
			*o++ = s[++i];
		} else if (s[i] == '\\' && i + 1 < n && s[i + 1] == '\\') {
			*o++ = '\\';
			i++;
		} else if (s[i] == '$') {
			*o++ = '$';
			*o++ = '$';
		} else {
			*o++ = s[i];
		}
	}
	*o = 0;
	return d;
}

static int regex(struct wf_compile *c, const RegexMatcher *rm, pcre2_code **out, int anchored)
{
	char e[256];
	if (!rm->regex || !*rm->regex)
		return wf_cfg_err(c->doc, c->err, c->errlen, rm, "regex", "empty regex");
	*out = wf_regex_compile(rm->regex, anchored, e, sizeof(e));
	if (!*out)
		return wf_cfg_err(c->doc, c->err, c->errlen, rm, "regex", "invalid regex '%s': %s", rm->regex, e);
	return 0;
}

int wf_compile_strmatch(struct wf_compile *c, const ProtobufCMessage *msg, struct wf_strmatch *m)
{
	const StringMatcher *sm = (const StringMatcher *)msg;
	m->ignore_case = sm->ignore_case;
	const char *s = NULL;
	switch (sm->match_pattern_case) {
	case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT:
		m->kind = WF_SM_EXACT; s = sm->exact; break;
	case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX:
		m->kind = WF_SM_PREFIX; s = sm->prefix; break;
	case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX:
		m->kind = WF_SM_SUFFIX; s = sm->suffix; break;
	case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_CONTAINS:
		m->kind = WF_SM_CONTAINS; s = sm->contains; break;
	case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX:
		m->kind = WF_SM_REGEX;
		if (sm->ignore_case)
			return wf_cfg_err(c->doc, c->err, c->errlen, sm, "ignore_case",
			                  "ignore_case has no effect on safe_regex (use (?i) in the regex)");
		return regex(c, sm->safe_regex, &m->re, 1);
	default:
		return wf_cfg_err(c->doc, c->err, c->errlen, sm, NULL,
		                  "a string matcher needs one of exact, prefix, suffix, contains, safe_regex");
	}
	if ((m->kind == WF_SM_PREFIX || m->kind == WF_SM_SUFFIX || m->kind == WF_SM_CONTAINS) && !*s)
		return wf_cfg_err(c->doc, c->err, c->errlen, sm, NULL, "the match string must not be empty");
	m->s = m->ignore_case ? wf_strdup_lower(s, &m->n) : strdup(s);
	m->n = (uint32_t)strlen(s);
	return 0;
}

static int str_sm(struct wf_strmatch *m, uint8_t kind, const char *s)
{
	m->kind = kind;
	m->s = strdup(s);
	m->n = (uint32_t)strlen(s);
	return 0;
}

static int header_matcher(struct wf_compile *c, const HeaderMatcher *h, struct wf_hdr_match *m);

int wf_compile_hdr_match(struct wf_compile *c, const ProtobufCMessage *msg, struct wf_hdr_match *m)
{
	return header_matcher(c, (const HeaderMatcher *)msg, m);
}

static int header_matcher(struct wf_compile *c, const HeaderMatcher *h, struct wf_hdr_match *m)
{
	if (!h->name || !*h->name)
		return wf_cfg_err(c->doc, c->err, c->errlen, h, "name", "a header matcher needs a name");
	m->name = wf_strdup_lower(h->name, &m->name_len);
	m->invert = h->invert_match;
	switch (h->header_match_specifier_case) {
	case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER__NOT_SET:
		/* No specifier: Envoy matches on presence. */
		m->present_only = 1;
		m->present_value = 1;
		return 0;
	case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH:
		m->present_only = 1;
		m->present_value = h->present_match;
		return 0;
	case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH:
		return wf_compile_strmatch(c, &h->string_match->base, &m->sm);
	case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_EXACT_MATCH:
		return str_sm(&m->sm, WF_SM_EXACT, h->exact_match);
	case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PREFIX_MATCH:
		return str_sm(&m->sm, WF_SM_PREFIX, h->prefix_match);
	case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SUFFIX_MATCH:
		return str_sm(&m->sm, WF_SM_SUFFIX, h->suffix_match);
	case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_CONTAINS_MATCH:
		return str_sm(&m->sm, WF_SM_CONTAINS, h->contains_match);
	case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SAFE_REGEX_MATCH:
		m->sm.kind = WF_SM_REGEX;
		return regex(c, h->safe_regex_match, &m->sm.re, 1);
	default:
		return wf_cfg_err(c->doc, c->err, c->errlen, h, NULL, "unsupported header matcher");
	}
}

static int query_matcher(struct wf_compile *c, const QueryParameterMatcher *q, struct wf_query_match *m)
{
	if (!q->name || !*q->name)
		return wf_cfg_err(c->doc, c->err, c->errlen, q, "name", "a query parameter matcher needs a name");
	m->name = strdup(q->name);
	m->name_len = (uint32_t)strlen(q->name);
	if (q->query_parameter_match_specifier_case ==
	    ENVOY__CONFIG__ROUTE__V3__QUERY_PARAMETER_MATCHER__QUERY_PARAMETER_MATCH_SPECIFIER_STRING_MATCH)
		return wf_compile_strmatch(c, &q->string_match->base, &m->sm);
	m->present_only = 1; /* present_match, or nothing: presence */
	return 0;
}

int wf_compile_hdr_edits(struct wf_compile *c, const void *msg, size_t n_add, HeaderValueOption **add,
                         size_t n_remove, char **remove, int is_request, struct wf_hdr_edits *e)
{
	e->add = calloc(n_add ? n_add : 1, sizeof(*e->add));
	e->n_add = (uint32_t)n_add;
	for (size_t i = 0; i < n_add; i++) {
		const HeaderValueOption *o = add[i];
		struct wf_hdr_add *a = &e->add[i];
		if (!o->header || !o->header->key || !*o->header->key)
			return wf_cfg_err(c->doc, c->err, c->errlen, o, "header", "a header to add needs a key");
		const char *k = o->header->key;
		if (k[0] == ':' || !strcasecmp(k, "host") || !strcasecmp(k, "transfer-encoding") ||
		    !strcasecmp(k, "content-length") || !strcasecmp(k, "connection"))
			return wf_cfg_err(c->doc, c->err, c->errlen, o->header, "key",
			                  "header '%s' cannot be added (it is set by the proxy)", k);
		for (const char *p = k; *p; p++)
			if (*p <= ' ' || *p == ':' || *p >= 127)
				return wf_cfg_err(c->doc, c->err, c->errlen, o->header, "key",
				                  "'%s' is not a valid header name", k);
		const char *v = o->header->value ? o->header->value : "";
		for (const char *p = v; *p; p++)
			if ((*p < ' ' && *p != '\t') || *p == 127)
				return wf_cfg_err(c->doc, c->err, c->errlen, o->header, "value",
				                  "header value contains a control character");
		if (strchr(v, '%'))
			return wf_cfg_err(c->doc, c->err, c->errlen, o->header, "value",
			                  "header value formatters (%%...%%) are not supported yet; write a literal value");
		a->key = wf_strdup_lower(k, &a->key_len);
		a->value = strdup(v);
		a->value_len = (uint32_t)strlen(v);
		a->keep_empty = o->keep_empty_value;
		if (o->append) {
			if (o->append_action)
				return wf_cfg_err(c->doc, c->err, c->errlen, o, "append",
				                  "set either append (deprecated) or append_action, not both");
			a->action = o->append->value ? WF_APPEND_OR_ADD : WF_OVERWRITE_OR_ADD;
		} else {
			a->action = (uint8_t)o->append_action;
		}
	}
	e->remove = calloc(n_remove ? n_remove : 1, sizeof(char *));
	e->remove_len = calloc(n_remove ? n_remove : 1, sizeof(uint32_t));
	e->n_remove = (uint32_t)n_remove;
	for (size_t i = 0; i < n_remove; i++) {
		if (remove[i][0] == ':' || !strcasecmp(remove[i], "host"))
			return wf_cfg_err(c->doc, c->err, c->errlen, msg,
			                  is_request ? "request_headers_to_remove" : "response_headers_to_remove",
			                  "'%s' cannot be removed", remove[i]);
		e->remove[i] = wf_strdup_lower(remove[i], &e->remove_len[i]);
	}
	return 0;
}

#define EDITS(c, m, isreq, dst, pfx)                                                        \
	wf_compile_hdr_edits(c, m, (m)->n_##pfx##_headers_to_add, (m)->pfx##_headers_to_add,      \
	                     (m)->n_##pfx##_headers_to_remove, (m)->pfx##_headers_to_remove, isreq, dst)

static int header_matcher(struct wf_compile *c, const HeaderMatcher *h, struct wf_hdr_match *m);

/* retry_on: Envoy's comma-separated conditions. */
static int retry_on(struct wf_compile *c, const Envoy__Config__Route__V3__RetryPolicy *p, uint32_t *on,
                    uint32_t *grpc_codes)
{
	static const struct { const char *name; uint32_t bit; } names[] = {
	    {"5xx", WF_RETRY_5XX}, {"gateway-error", WF_RETRY_GATEWAY}, {"reset", WF_RETRY_RESET},
	    {"connect-failure", WF_RETRY_CONNECT_FAILURE}, {"retriable-4xx", WF_RETRY_RETRIABLE_4XX},
	    {"retriable-status-codes", WF_RETRY_STATUS_CODES}, {"retriable-headers", WF_RETRY_HEADERS},
	    {"refused-stream", WF_RETRY_REFUSED_STREAM}};
	const char *s = p->retry_on ? p->retry_on : "";
	*on = 0;
	while (*s) {
		while (*s == ',' || *s == ' ')
			s++;
		const char *e = s;
		while (*e && *e != ',' && *e != ' ')
			e++;
		if (e == s)
			break;
		size_t i, n = sizeof(names) / sizeof(names[0]);
		for (i = 0; i < n; i++)
			if (strlen(names[i].name) == (size_t)(e - s) && !memcmp(names[i].name, s, (size_t)(e - s)))
				break;
		int g = i == n ? wf_grpc_retry_code(s, (size_t)(e - s)) : -1;
		if (i == n && g < 0)
			return wf_cfg_err(c->doc, c->err, c->errlen, p, "retry_on",
			                  "unknown or unsupported retry condition '%.*s' (5xx, gateway-error, reset, "
			                  "connect-failure, retriable-4xx, retriable-status-codes, retriable-headers, "
			                  "refused-stream, cancelled, deadline-exceeded, internal, resource-exhausted, "
			                  "unavailable)", (int)(e - s), s);
		if (g >= 0)
			*grpc_codes |= 1u << g;
		else
			*on |= names[i].bit;
		s = e;
	}
	return 0;
}

static struct wf_retry *retry_policy(struct wf_compile *c, const Envoy__Config__Route__V3__RetryPolicy *p)
{
	struct wf_retry *r = calloc(1, sizeof(*r));
	if (retry_on(c, p, &r->on, &r->grpc_codes) < 0)
		goto fail;
	r->num_retries = p->num_retries ? p->num_retries->value : 1;
	r->per_try_timeout_ms = wf_duration_ms(p->per_try_timeout);
	r->base_ms = 25;
	if (p->retry_back_off) {
		if (!p->retry_back_off->base_interval || !wf_duration_ms(p->retry_back_off->base_interval)) {
			wf_cfg_err(c->doc, c->err, c->errlen, p->retry_back_off, "base_interval", "base_interval is required (> 0)");
			goto fail;
		}
		r->base_ms = wf_duration_ms(p->retry_back_off->base_interval);
	}
	r->max_ms = p->retry_back_off && p->retry_back_off->max_interval ? wf_duration_ms(p->retry_back_off->max_interval)
	                                                                 : 10 * r->base_ms;
	if (r->max_ms < r->base_ms) {
		wf_cfg_err(c->doc, c->err, c->errlen, p->retry_back_off, "max_interval", "max_interval is below base_interval");
		goto fail;
	}
	for (size_t i = 0; i < p->n_retry_host_predicate; i++) {
		const Envoy__Config__Route__V3__RetryPolicy__RetryHostPredicate *hp = p->retry_host_predicate[i];
		const char *type = NULL;
		if (hp->config_type_case) {
			ProtobufCMessage *in = wf_cfgdoc_any(c->doc, &hp->typed_config->base, c->err, c->errlen);
			if (!in)
				goto fail;
			type = in->descriptor->name;
		}
		if ((type && strcmp(type, "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate")) ||
		    (!type && strcmp(hp->name ? hp->name : "", "envoy.retry_host_predicates.previous_hosts"))) {
			wf_cfg_err(c->doc, c->err, c->errlen, hp, type ? "typed_config" : "name",
			           "only envoy.retry_host_predicates.previous_hosts is supported");
			goto fail;
		}
		r->previous_hosts = 1;
	}
	r->host_reselect = p->host_selection_retry_max_attempts > 0 ? (uint32_t)p->host_selection_retry_max_attempts : 1;
	r->codes = calloc(p->n_retriable_status_codes + 1, sizeof(uint32_t));
	r->n_codes = (uint32_t)p->n_retriable_status_codes;
	if (p->n_retriable_status_codes) /* none: the array is NULL */
		memcpy(r->codes, p->retriable_status_codes, p->n_retriable_status_codes * sizeof(uint32_t));
	r->headers = calloc(p->n_retriable_headers + 1, sizeof(*r->headers));
	r->n_headers = (uint32_t)p->n_retriable_headers;
	for (size_t i = 0; i < p->n_retriable_headers; i++)
		if (header_matcher(c, p->retriable_headers[i], &r->headers[i]) < 0)
			goto fail;
	if (p->n_retriable_request_headers) {
		wf_cfg_err(c->doc, c->err, c->errlen, p, "retriable_request_headers", "not supported yet");
		goto fail;
	}
	if (p->per_try_idle_timeout) {
		wf_cfg_err(c->doc, c->err, c->errlen, p, "per_try_idle_timeout", "not supported yet");
		goto fail;
	}
	return r;
fail:
	wf_retry_free(r);
	return NULL;
}

void wf_retry_free(struct wf_retry *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; i < r->n_headers; i++) {
		free(r->headers[i].name);
		free(r->headers[i].sm.s);
		if (r->headers[i].sm.re)
			pcre2_code_free(r->headers[i].sm.re);
	}
	free(r->headers);
	free(r->codes);
	free(r);
}

static int hash_policies(struct wf_compile *c, const RouteAction *ra, struct wf_route *r)
{
	r->hash = calloc(ra->n_hash_policy, sizeof(*r->hash));
	r->n_hash = (uint32_t)ra->n_hash_policy;
	for (size_t i = 0; i < ra->n_hash_policy; i++) {
		const Envoy__Config__Route__V3__RouteAction__HashPolicy *hp = ra->hash_policy[i];
		struct wf_hash_policy *h = &r->hash[i];
		h->terminal = hp->terminal;
		switch (hp->policy_specifier_case) {
		case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_HEADER:
			h->kind = WF_HASH_HEADER;
			if (!hp->header->header_name || !*hp->header->header_name)
				return wf_cfg_err(c->doc, c->err, c->errlen, hp->header, "header_name", "a header name is required");
			h->name = wf_strdup_lower(hp->header->header_name, &h->name_len);
			if (hp->header->regex_rewrite) {
				if (!hp->header->regex_rewrite->pattern)
					return wf_cfg_err(c->doc, c->err, c->errlen, hp->header->regex_rewrite, "pattern", "missing pattern");
				if (regex(c, hp->header->regex_rewrite->pattern, &h->re, 0) < 0)
					return -1;
				h->re_sub = re2_subst(hp->header->regex_rewrite->substitution ? hp->header->regex_rewrite->substitution : "");
			}
			break;
		case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_COOKIE:
			h->kind = WF_HASH_COOKIE;
			if (!hp->cookie->name || !*hp->cookie->name)
				return wf_cfg_err(c->doc, c->err, c->errlen, hp->cookie, "name", "a cookie name is required");
			h->name = strdup(hp->cookie->name);
			h->name_len = (uint32_t)strlen(h->name);
			if (hp->cookie->ttl) {
				h->cookie_generate = 1;
				h->cookie_ttl_s = (uint64_t)(hp->cookie->ttl->seconds > 0 ? hp->cookie->ttl->seconds : 0);
			}
			h->cookie_path = hp->cookie->path && *hp->cookie->path ? strdup(hp->cookie->path) : NULL;
			break;
		case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_CONNECTION_PROPERTIES:
			if (!hp->connection_properties->source_ip)
				return wf_cfg_err(c->doc, c->err, c->errlen, hp->connection_properties, "source_ip",
				                  "connection_properties needs source_ip: true");
			h->kind = WF_HASH_SOURCE_IP;
			break;
		case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_QUERY_PARAMETER:
			h->kind = WF_HASH_QUERY;
			if (!hp->query_parameter->name || !*hp->query_parameter->name)
				return wf_cfg_err(c->doc, c->err, c->errlen, hp->query_parameter, "name", "a parameter name is required");
			h->name = strdup(hp->query_parameter->name);
			h->name_len = (uint32_t)strlen(h->name);
			break;
		default:
			return wf_cfg_err(c->doc, c->err, c->errlen, hp, NULL,
			                  "a hash policy needs header, cookie, connection_properties or query_parameter");
		}
	}
	return 0;
}

static int mirror_policies(struct wf_compile *c, const RouteAction *ra, struct wf_route *r)
{
	r->mirrors = calloc(ra->n_request_mirror_policies, sizeof(*r->mirrors));
	for (size_t i = 0; i < ra->n_request_mirror_policies; i++) {
		const Envoy__Config__Route__V3__RouteAction__RequestMirrorPolicy *p = ra->request_mirror_policies[i];
		struct wf_cluster *cl = c->lenient_clusters ? wf_snapshot_cluster(c->snap, p->cluster)
		                                            : wf_compile_find_cluster(c, p, "cluster", p->cluster);
		if (!cl) {
			if (!c->lenient_clusters)
				return -1;
			continue; /* validate_clusters: false — a mirror to nowhere is skipped */
		}
		/* Envoy: no runtime_fraction mirrors every request */
		uint32_t ppm = wf_runtime_ppm(p->runtime_fraction, 1000000);
		r->mirrors[r->n_mirrors++] = (struct wf_mirror){cl, ppm};
	}
	return 0;
}

int wf_compile_upgrade(struct wf_compile *c, const void *msg, const char *type, int enabled,
                       struct wf_upgrade *list, uint32_t *n)
{
	if (!type || !*type)
		return wf_cfg_err(c->doc, c->err, c->errlen, msg, "upgrade_type", "upgrade_type is required");
	for (uint32_t k = 0; k < *n; k++)
		if (!strcasecmp(list[k].type, type))
			return wf_cfg_err(c->doc, c->err, c->errlen, msg, "upgrade_type", "upgrade type '%s' is configured twice",
			                  type);
	list[*n] = (struct wf_upgrade){.type = strdup(type), .enabled = (uint8_t)(enabled != 0)};
	(*n)++;
	return 0;
}

/* RouteAction.upgrade_configs: per-route overrides of the connection manager's upgrade types;
 * for CONNECT, connect_config makes Weft terminate the CONNECT itself (without it, the CONNECT
 * is forwarded to the cluster, an HTTP proxy). */
static int route_upgrades(struct wf_compile *c, const RouteAction *ra, struct wf_route *r)
{
	r->upgrades = calloc(ra->n_upgrade_configs, sizeof(*r->upgrades));
	for (size_t i = 0; i < ra->n_upgrade_configs; i++) {
		const Envoy__Config__Route__V3__RouteAction__UpgradeConfig *u = ra->upgrade_configs[i];
		if (wf_compile_upgrade(c, u, u->upgrade_type, u->enabled ? u->enabled->value : 1, r->upgrades,
		                       &r->n_upgrades) < 0)
			return -1;
		int is_connect = !strcasecmp(u->upgrade_type, "CONNECT");
		if (u->connect_config && !is_connect)
			return wf_cfg_err(c->doc, c->err, c->errlen, u, "connect_config",
			                  "connect_config is only for upgrade_type CONNECT");
		r->upgrades[r->n_upgrades - 1].connect_terminate = u->connect_config != NULL;
	}
	return 0;
}

static int route_action(struct wf_compile *c, const RouteAction *ra, struct wf_route *r)
{
	r->timeout_ms = 15000;
	if (ra->timeout)
		r->timeout_ms = wf_duration_ms(ra->timeout);
	if (ra->idle_timeout)
		r->idle_timeout_ms = wf_duration_ms(ra->idle_timeout);
	switch (ra->cluster_specifier_case) {
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER:
		r->cluster = c->lenient_clusters ? wf_snapshot_cluster(c->snap, ra->cluster)
		                                 : wf_compile_find_cluster(c, ra, "cluster", ra->cluster);
		if (!r->cluster && !c->lenient_clusters)
			return -1;
		break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS: {
		const Envoy__Config__Route__V3__WeightedCluster *wc = ra->weighted_clusters;
		if (!wc->n_clusters)
			return wf_cfg_err(c->doc, c->err, c->errlen, wc, "clusters", "weighted_clusters needs clusters");
		r->weighted = calloc(wc->n_clusters, sizeof(*r->weighted));
		r->n_weighted = (uint32_t)wc->n_clusters;
		for (size_t i = 0; i < wc->n_clusters; i++) {
			const Envoy__Config__Route__V3__WeightedCluster__ClusterWeight *cw = wc->clusters[i];
			struct wf_weighted *w = &r->weighted[i];
			w->cluster = c->lenient_clusters ? wf_snapshot_cluster(c->snap, cw->name)
			                                 : wf_compile_find_cluster(c, cw, "name", cw->name);
			if (!w->cluster && !c->lenient_clusters)
				return -1;
			w->weight = cw->weight ? cw->weight->value : 0;
			r->total_weight += w->weight;
			if (EDITS(c, cw, 1, &w->req, request) < 0 || EDITS(c, cw, 0, &w->resp, response) < 0)
				return -1;
		}
		if (!r->total_weight)
			return wf_cfg_err(c->doc, c->err, c->errlen, wc, "clusters", "the weights add up to 0");
		if (wc->total_weight && wc->total_weight->value != r->total_weight)
			return wf_cfg_err(c->doc, c->err, c->errlen, wc, "total_weight",
			                  "total_weight is %u but the weights add up to %llu", wc->total_weight->value,
			                  (unsigned long long)r->total_weight);
		break;
	}
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER_HEADER:
		return wf_cfg_err(c->doc, c->err, c->errlen, ra, "cluster_header", "cluster_header is not supported yet");
	default:
		return wf_cfg_err(c->doc, c->err, c->errlen, ra, NULL,
		                  "a route action needs cluster or weighted_clusters");
	}
	if (ra->n_hash_policy && hash_policies(c, ra, r) < 0)
		return -1;
	if (ra->n_request_mirror_policies && mirror_policies(c, ra, r) < 0)
		return -1;
	if (ra->n_upgrade_configs && route_upgrades(c, ra, r) < 0)
		return -1;
	if (ra->retry_policy) {
		if (!(r->retry = retry_policy(c, ra->retry_policy)))
			return -1;
		r->retry_owned = 1;
	}
	if (ra->prefix_rewrite && *ra->prefix_rewrite && r->path_kind == WF_PATH_REGEX)
		return wf_cfg_err(c->doc, c->err, c->errlen, ra, "prefix_rewrite",
		                  "prefix_rewrite needs a prefix or path match (use regex_rewrite with safe_regex)");
	if (ra->prefix_rewrite && *ra->prefix_rewrite) {
		r->has_prefix_rewrite = 1;
		r->prefix_rewrite = strdup(ra->prefix_rewrite);
		r->prefix_rewrite_len = (uint32_t)strlen(ra->prefix_rewrite);
	}
	if (ra->regex_rewrite) {
		if (r->has_prefix_rewrite)
			return wf_cfg_err(c->doc, c->err, c->errlen, ra, "regex_rewrite",
			                  "set prefix_rewrite or regex_rewrite, not both");
		if (!ra->regex_rewrite->pattern)
			return wf_cfg_err(c->doc, c->err, c->errlen, ra->regex_rewrite, "pattern", "missing pattern");
		if (regex(c, ra->regex_rewrite->pattern, &r->rewrite_re, 0) < 0)
			return -1;
		r->rewrite_sub = re2_subst(ra->regex_rewrite->substitution ? ra->regex_rewrite->substitution : "");
	}
	if (ra->host_rewrite_specifier_case == ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_HOST_REWRITE_LITERAL) {
		r->host_rewrite = strdup(ra->host_rewrite_literal);
		r->host_rewrite_len = (uint32_t)strlen(ra->host_rewrite_literal);
	} else if (ra->host_rewrite_specifier_case == ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_AUTO_HOST_REWRITE) {
		return wf_cfg_err(c->doc, c->err, c->errlen, ra, "auto_host_rewrite", "auto_host_rewrite is not supported yet");
	}
	return 0;
}

static int redirect_action(struct wf_compile *c, const RedirectAction *ra, struct wf_route *r)
{
	static const uint16_t codes[] = {301, 302, 303, 307, 308};
	if ((unsigned)ra->response_code >= sizeof(codes) / sizeof(codes[0]))
		return wf_cfg_err(c->doc, c->err, c->errlen, ra, "response_code", "unknown response code");
	r->redir_code = codes[ra->response_code];
	if (ra->scheme_rewrite_specifier_case == ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__SCHEME_REWRITE_SPECIFIER_HTTPS_REDIRECT && ra->https_redirect)
		r->redir_scheme = strdup("https");
	else if (ra->scheme_rewrite_specifier_case == ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__SCHEME_REWRITE_SPECIFIER_SCHEME_REDIRECT)
		r->redir_scheme = wf_strdup_lower(ra->scheme_redirect, NULL);
	if (ra->host_redirect && *ra->host_redirect)
		r->redir_host = strdup(ra->host_redirect);
	r->redir_port = ra->port_redirect;
	if (r->redir_port > 65535)
		return wf_cfg_err(c->doc, c->err, c->errlen, ra, "port_redirect", "port out of range");
	r->strip_query = ra->strip_query;
	switch (ra->path_rewrite_specifier_case) {
	case ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_PATH_REDIRECT:
		r->redir_path = strdup(ra->path_redirect);
		break;
	case ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_PREFIX_REWRITE:
		if (r->path_kind == WF_PATH_REGEX)
			return wf_cfg_err(c->doc, c->err, c->errlen, ra, "prefix_rewrite",
			                  "prefix_rewrite needs a prefix or path match (use regex_rewrite with safe_regex)");
		r->redir_prefix = strdup(ra->prefix_rewrite);
		break;
	case ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_REGEX_REWRITE:
		if (!ra->regex_rewrite->pattern)
			return wf_cfg_err(c->doc, c->err, c->errlen, ra->regex_rewrite, "pattern", "missing pattern");
		if (regex(c, ra->regex_rewrite->pattern, &r->redir_re, 0) < 0)
			return -1;
		r->redir_re_sub = re2_subst(ra->regex_rewrite->substitution ? ra->regex_rewrite->substitution : "");
		break;
	default:
		break;
	}
	return 0;
}

static int route(struct wf_compile *c, const Route *rm, struct wf_route *r)
{
	const RouteMatch *m = rm->match;
	if (!m)
		return wf_cfg_err(c->doc, c->err, c->errlen, rm, "match", "a route needs a match");
	r->name = rm->name && *rm->name ? strdup(rm->name) : NULL;
	r->case_sensitive = m->case_sensitive ? m->case_sensitive->value : 1;
	const char *p = NULL;
	switch (m->path_specifier_case) {
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX:
		r->path_kind = WF_PATH_PREFIX; p = m->prefix; break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH:
		r->path_kind = WF_PATH_EXACT; p = m->path; break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH_SEPARATED_PREFIX:
		r->path_kind = WF_PATH_SEP_PREFIX; p = m->path_separated_prefix;
		if (!*p || p[0] != '/' || (strlen(p) > 1 && p[strlen(p) - 1] == '/') || strpbrk(p, "?#"))
			return wf_cfg_err(c->doc, c->err, c->errlen, m, "path_separated_prefix",
			                  "must start with '/', must not end with '/' and must not contain '?' or '#'");
		break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX:
		r->path_kind = WF_PATH_REGEX;
		if (regex(c, m->safe_regex, &r->path_re, 1) < 0)
			return -1;
		break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_CONNECT_MATCHER:
		r->path_kind = WF_PATH_CONNECT;
		break;
	default:
		return wf_cfg_err(c->doc, c->err, c->errlen, m, NULL,
		                  "a route match needs one of prefix, path, safe_regex, path_separated_prefix, connect_matcher");
	}
	if (p) {
		r->path = r->case_sensitive ? strdup(p) : wf_strdup_lower(p, NULL);
		r->path_len = (uint32_t)strlen(p);
	}
	r->headers = calloc(m->n_headers ? m->n_headers : 1, sizeof(*r->headers));
	r->n_headers = (uint32_t)m->n_headers;
	for (size_t i = 0; i < m->n_headers; i++)
		if (header_matcher(c, m->headers[i], &r->headers[i]) < 0)
			return -1;
	r->grpc_only = m->grpc != NULL;
	r->query = calloc(m->n_query_parameters ? m->n_query_parameters : 1, sizeof(*r->query));
	r->n_query = (uint32_t)m->n_query_parameters;
	for (size_t i = 0; i < m->n_query_parameters; i++)
		if (query_matcher(c, m->query_parameters[i], &r->query[i]) < 0)
			return -1;
	switch (rm->action_case) {
	case ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE:
		r->action = WF_ACT_ROUTE;
		if (route_action(c, rm->route, r) < 0)
			return -1;
		break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_REDIRECT:
		r->action = WF_ACT_REDIRECT;
		if (redirect_action(c, rm->redirect, r) < 0)
			return -1;
		break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_DIRECT_RESPONSE: {
		const Envoy__Config__Route__V3__DirectResponseAction *d = rm->direct_response;
		r->action = WF_ACT_DIRECT;
		if (d->status < 200 || d->status > 599)
			return wf_cfg_err(c->doc, c->err, c->errlen, d, "status", "status must be 200..599");
		r->direct_status = (uint16_t)d->status;
		if (d->body) {
			r->has_direct_body = 1;
			if (wf_compile_datasource(c, &d->body->base, &r->direct_body, &r->direct_body_len) < 0)
				return -1;
		}
		break;
	}
	default:
		return wf_cfg_err(c->doc, c->err, c->errlen, rm, NULL,
		                  "a route needs an action: route, redirect or direct_response");
	}
	if (EDITS(c, rm, 1, &r->req, request) < 0 || EDITS(c, rm, 0, &r->resp, response) < 0)
		return -1;
	const RouteAction *ra = rm->action_case == ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE ? rm->route : NULL;
	if (wf_compile_per_filter(c, rm, rm->n_typed_per_filter_config, (void *const *)rm->typed_per_filter_config,
	                          ra && ra->cors ? &ra->cors->base : NULL, &r->fcfg, &r->n_fcfg) < 0)
		return -1;
	if (ra) {
		if (wf_compile_rate_limits(c, ra->n_rate_limits, (void *const *)ra->rate_limits, &r->rl, &r->n_rl) < 0)
			return -1;
		/* Envoy: the virtual host's rate limits count when the route asks, or has none */
		r->include_vh_rl = ra->include_vh_rate_limits ? ra->include_vh_rate_limits->value : !ra->n_rate_limits;
	}
	return 0;
}

static int cmp_domain_len(const void *a, const void *b)
{
	const struct wf_domain *x = a, *y = b;
	return (int)y->n - (int)x->n;
}

struct wf_route_table *wf_compile_routes(struct wf_compile *c, const ProtobufCMessage *msg)
{
	const RouteConfiguration *rc = (const RouteConfiguration *)msg;
	struct wf_route_table *t = calloc(1, sizeof(*t));
	t->name = strdup(rc->name ? rc->name : "");
	/* Envoy's default: clusters are validated in a route_config given inline, not in one
	 * loaded through RDS (a route may name a cluster CDS has not delivered yet) */
	c->lenient_clusters = rc->validate_clusters ? !rc->validate_clusters->value : c->rds;
	if (rc->n_internal_only_headers) {
		wf_cfg_err(c->doc, c->err, c->errlen, rc, "internal_only_headers", "not supported yet");
		goto fail;
	}
	if (EDITS(c, rc, 1, &t->req, request) < 0 || EDITS(c, rc, 0, &t->resp, response) < 0)
		goto fail;
	t->vhosts = calloc(rc->n_virtual_hosts ? rc->n_virtual_hosts : 1, sizeof(*t->vhosts));
	t->n_vhosts = (uint32_t)rc->n_virtual_hosts;
	size_t n_dom = 0;
	for (size_t i = 0; i < rc->n_virtual_hosts; i++)
		n_dom += rc->virtual_hosts[i]->n_domains;
	t->exact = calloc(n_dom + 1, sizeof(struct wf_domain));
	t->suffix = calloc(n_dom + 1, sizeof(struct wf_domain));
	t->prefix = calloc(n_dom + 1, sizeof(struct wf_domain));
	for (size_t i = 0; i < rc->n_virtual_hosts; i++) {
		const VirtualHost *v = rc->virtual_hosts[i];
		struct wf_vhost *vh = &t->vhosts[i];
		vh->name = strdup(v->name ? v->name : "");
		if (!v->n_domains) {
			wf_cfg_err(c->doc, c->err, c->errlen, v, "domains", "a virtual host needs at least one domain");
			goto fail;
		}
		for (size_t d = 0; d < v->n_domains; d++) {
			const char *s = v->domains[d];
			size_t n = strlen(s);
			if (!strcmp(s, "*")) {
				if (t->any) {
					wf_cfg_err(c->doc, c->err, c->errlen, v, "domains",
					           "only one virtual host may have the domain '*'");
					goto fail;
				}
				t->any = vh;
				continue;
			}
			const char *star = strchr(s, '*');
			if (!n || (star && ((star != s && star != s + n - 1) || strchr(star + 1, '*')))) {
				wf_cfg_err(c->doc, c->err, c->errlen, v, "domains",
				           "'%s': a wildcard may only be the first or last character", s);
				goto fail;
			}
			struct wf_domain *list;
			uint32_t *cnt;
			if (s[0] == '*') {
				list = t->suffix, cnt = &t->n_suffix, s++, n--;
			} else if (s[n - 1] == '*') {
				list = t->prefix, cnt = &t->n_prefix, n--;
			} else {
				list = t->exact, cnt = &t->n_exact;
			}
			struct wf_domain *dom = &list[*cnt];
			dom->s = strndup(s, n);
			for (size_t k = 0; k < n; k++)
				dom->s[k] = wf_lower(dom->s[k]);
			dom->n = (uint32_t)n;
			dom->vh = vh;
			(*cnt)++;
			/* Envoy refuses a domain listed twice across the route configuration. */
			for (uint32_t k = 0; k + 1 < *cnt; k++)
				if (list[k].n == dom->n && !memcmp(list[k].s, dom->s, dom->n)) {
					wf_cfg_err(c->doc, c->err, c->errlen, v, "domains",
					           "domain '%s' is used by two virtual hosts", v->domains[d]);
					goto fail;
				}
		}
		vh->include_attempt_count = v->include_request_attempt_count;
		if (v->retry_policy && !(vh->retry = retry_policy(c, v->retry_policy)))
			goto fail;
		vh->routes = calloc(v->n_routes ? v->n_routes : 1, sizeof(*vh->routes));
		vh->n_routes = (uint32_t)v->n_routes;
		for (size_t k = 0; k < v->n_routes; k++) {
			if (route(c, v->routes[k], &vh->routes[k]) < 0)
				goto fail;
			if (!vh->routes[k].retry && vh->routes[k].action == WF_ACT_ROUTE)
				vh->routes[k].retry = vh->retry; /* a route's own policy replaces the host's */
		}
		if (EDITS(c, v, 1, &vh->req, request) < 0 || EDITS(c, v, 0, &vh->resp, response) < 0)
			goto fail;
		if (wf_compile_per_filter(c, v, v->n_typed_per_filter_config, (void *const *)v->typed_per_filter_config,
		                          v->cors ? &v->cors->base : NULL, &vh->fcfg, &vh->n_fcfg) < 0 ||
		    wf_compile_rate_limits(c, v->n_rate_limits, (void *const *)v->rate_limits, &vh->rl, &vh->n_rl) < 0)
			goto fail;
	}
	c->lenient_clusters = 0;
	qsort(t->suffix, t->n_suffix, sizeof(*t->suffix), cmp_domain_len);
	qsort(t->prefix, t->n_prefix, sizeof(*t->prefix), cmp_domain_len);
	return t;
fail:
	wf_route_table_free(t);
	return NULL;
}

void wf_hdr_edits_free(struct wf_hdr_edits *e)
{
	for (uint32_t i = 0; i < e->n_add; i++) {
		free(e->add[i].key);
		free(e->add[i].value);
	}
	free(e->add);
	for (uint32_t i = 0; i < e->n_remove; i++)
		free(e->remove[i]);
	free(e->remove);
	free(e->remove_len);
}

static void sm_free(struct wf_strmatch *m)
{
	free(m->s);
	if (m->re)
		pcre2_code_free(m->re);
}

void wf_hdr_match_free(struct wf_hdr_match *m)
{
	free(m->name);
	sm_free(&m->sm);
}

static void route_free(struct wf_route *r)
{
	free(r->name);
	free(r->path);
	if (r->path_re)
		pcre2_code_free(r->path_re);
	for (uint32_t i = 0; i < r->n_headers; i++)
		wf_hdr_match_free(&r->headers[i]);
	free(r->headers);
	wf_filter_route_cfgs_free(r->fcfg, r->n_fcfg);
	wf_rate_limits_free(r->rl, r->n_rl);
	free(r->mirrors);
	for (uint32_t i = 0; i < r->n_upgrades; i++)
		free(r->upgrades[i].type);
	free(r->upgrades);
	for (uint32_t i = 0; i < r->n_query; i++) {
		free(r->query[i].name);
		sm_free(&r->query[i].sm);
	}
	free(r->query);
	for (uint32_t i = 0; i < r->n_weighted; i++) {
		wf_hdr_edits_free(&r->weighted[i].req);
		wf_hdr_edits_free(&r->weighted[i].resp);
	}
	free(r->weighted);
	free(r->prefix_rewrite);
	if (r->rewrite_re)
		pcre2_code_free(r->rewrite_re);
	free(r->rewrite_sub);
	free(r->host_rewrite);
	for (uint32_t i = 0; i < r->n_hash; i++) {
		free(r->hash[i].name);
		free(r->hash[i].re_sub);
		free(r->hash[i].cookie_path);
		if (r->hash[i].re)
			pcre2_code_free(r->hash[i].re);
	}
	free(r->hash);
	if (r->retry_owned)
		wf_retry_free(r->retry);
	free(r->redir_scheme);
	free(r->redir_host);
	free(r->redir_path);
	free(r->redir_prefix);
	if (r->redir_re)
		pcre2_code_free(r->redir_re);
	free(r->redir_re_sub);
	free(r->direct_body);
	wf_hdr_edits_free(&r->req);
	wf_hdr_edits_free(&r->resp);
}

void wf_route_table_free(struct wf_route_table *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < t->n_vhosts; i++) {
		struct wf_vhost *vh = &t->vhosts[i];
		for (uint32_t k = 0; k < vh->n_routes; k++)
			route_free(&vh->routes[k]);
		free(vh->routes);
		free(vh->name);
		wf_retry_free(vh->retry);
		wf_hdr_edits_free(&vh->req);
		wf_hdr_edits_free(&vh->resp);
		wf_filter_route_cfgs_free(vh->fcfg, vh->n_fcfg);
		wf_rate_limits_free(vh->rl, vh->n_rl);
	}
	free(t->vhosts);
	for (uint32_t i = 0; i < t->n_exact; i++) free(t->exact[i].s);
	for (uint32_t i = 0; i < t->n_suffix; i++) free(t->suffix[i].s);
	for (uint32_t i = 0; i < t->n_prefix; i++) free(t->prefix[i].s);
	free(t->exact);
	free(t->suffix);
	free(t->prefix);
	wf_hdr_edits_free(&t->req);
	wf_hdr_edits_free(&t->resp);
	free(t->name);
	free(t);
}
