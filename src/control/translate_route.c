/* RDS: a RouteConfiguration per outbound HTTP port ("9080"), one virtual host per service
 * host with that port ("HOST:PORT", the domains Istio gives it), its routes from the
 * VirtualServices bound to the mesh for that host, or Istio's default route. */
#include "control/translate_int.h"

/* Istio's deprecated fields (consecutiveErrors, minimumRingSize, fault percent, allowOrigin)
 * are still honored, as istiod does. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#include "control/mesh_int.h"
#include "envoy/extensions/filters/common/fault/v3/fault.pb-c.h"
#include "envoy/extensions/filters/http/cors/v3/cors.pb-c.h"
#include "envoy/extensions/filters/http/fault/v3/fault.pb-c.h"
#include "envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.pb-c.h"

#include <ctype.h>
#include <stdio.h>
#include <strings.h>

typedef Envoy__Config__Route__V3__RouteConfiguration RouteConfiguration;
typedef Envoy__Config__Route__V3__VirtualHost VirtualHost;
typedef Envoy__Config__Route__V3__Route Route;
typedef Envoy__Config__Route__V3__RouteAction RouteAction;
typedef Envoy__Config__Route__V3__RetryPolicy RetryPolicy;
typedef Envoy__Config__Route__V3__HeaderMatcher HeaderMatcher;
typedef Envoy__Config__Core__V3__HeaderValueOption HeaderValueOption;
typedef Envoy__Type__Matcher__V3__StringMatcher StringMatcher;
typedef Istio__Networking__V1alpha3__HTTPRoute HTTPRoute;
typedef Istio__Networking__V1alpha3__HTTPMatchRequest HTTPMatch;
typedef Istio__Networking__V1alpha3__StringMatch IstioStringMatch;
typedef Istio__Networking__V1alpha3__Headers__HeaderOperations HeaderOps;


/* What errors name: "VirtualService NS/NAME http[I]". */
struct vsctx {
	const struct wf_mesh_vs *v;
	size_t i;
};
#define VSERR(t, c, msg, field, fmt, ...)                                                                           \
	wf_tx_err_at(t, (c)->v->doc, msg, field, "VirtualService %s/%s: http[%zu]" fmt, (c)->v->ns, (c)->v->name, (c)->i, \
	             ##__VA_ARGS__)

/* ---- small builders ------------------------------------------------------------------------- */

static Envoy__Type__Matcher__V3__RegexMatcher *regex(const char *re)
{
	Envoy__Type__Matcher__V3__RegexMatcher *r =
	    XNEW(Envoy__Type__Matcher__V3__RegexMatcher, envoy__type__matcher__v3__regex_matcher__descriptor);
	r->regex = wf_xstr(re);
	return r;
}

/* An Istio StringMatch as an Envoy StringMatcher; NULL when it sets nothing. */
static StringMatcher *string_matcher(const IstioStringMatch *s, int ignore_case)
{
	if (!s || s->match_type_case == ISTIO__NETWORKING__V1ALPHA3__STRING_MATCH__MATCH_TYPE__NOT_SET)
		return NULL;
	StringMatcher *m = XNEW(StringMatcher, envoy__type__matcher__v3__string_matcher__descriptor);
	switch (s->match_type_case) {
	case ISTIO__NETWORKING__V1ALPHA3__STRING_MATCH__MATCH_TYPE_EXACT:
		m->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
		m->exact = wf_xstr(s->exact);
		m->ignore_case = ignore_case;
		break;
	case ISTIO__NETWORKING__V1ALPHA3__STRING_MATCH__MATCH_TYPE_PREFIX:
		m->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX;
		m->prefix = wf_xstr(s->prefix);
		m->ignore_case = ignore_case;
		break;
	default:
		m->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX;
		m->safe_regex = regex(s->regex);
		break;
	}
	return m;
}

static HeaderMatcher *header_matcher(const char *name, const IstioStringMatch *s, int invert)
{
	HeaderMatcher *h = XNEW(HeaderMatcher, envoy__config__route__v3__header_matcher__descriptor);
	h->name = wf_xstr(name);
	h->invert_match = invert;
	StringMatcher *sm = string_matcher(s, 0);
	if (sm) {
		h->header_match_specifier_case = ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH;
		h->string_match = sm;
	} else {
		h->header_match_specifier_case = ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH;
		h->present_match = 1;
	}
	return h;
}

static Envoy__Type__V3__FractionalPercent *percent(double value)
{
	Envoy__Type__V3__FractionalPercent *p = XNEW(Envoy__Type__V3__FractionalPercent, envoy__type__v3__fractional_percent__descriptor);
	if (value < 0)
		value = 0;
	if (value > 100)
		value = 100;
	p->numerator = (uint32_t)(value * 10000 + 0.5);
	p->denominator = ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__MILLION;
	return p;
}

static int header_ops(struct wf_tx *t, const struct vsctx *c, const HeaderOps *o, size_t *n_add,
                      HeaderValueOption ***add, size_t *n_rm, char ***rm)
{
	if (!o)
		return 0;
	for (int pass = 0; pass < 2; pass++) {
		size_t n = pass ? o->n_add : o->n_set;
		for (size_t i = 0; i < n; i++) {
			const char *k = pass ? o->add[i]->key : o->set[i]->key, *v = pass ? o->add[i]->value : o->set[i]->value;
			if (strchr(v, '%'))
				return VSERR(t, c, o, pass ? "add" : "set", ".headers: value of '%s': header value formatters (%%...%%) are not supported yet", k);
			if (k[0] == ':' || !strcasecmp(k, "host"))
				return VSERR(t, c, o, pass ? "add" : "set", ".headers: '%s' cannot be set here (use rewrite.authority for the host)", k);
			HeaderValueOption *h = XNEW(HeaderValueOption, envoy__config__core__v3__header_value_option__descriptor);
			h->header = XNEW(Envoy__Config__Core__V3__HeaderValue, envoy__config__core__v3__header_value__descriptor);
			h->header->key = wf_xstr(k);
			h->header->value = wf_xstr(v);
			h->append_action = pass ? ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__APPEND_IF_EXISTS_OR_ADD
			                        : ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__OVERWRITE_IF_EXISTS_OR_ADD;
			XPUSH(*add, *n_add, h);
		}
	}
	for (size_t i = 0; i < o->n_remove; i++)
		XPUSH(*rm, *n_rm, wf_xstr(o->remove[i]));
	return 0;
}

#define HEADERS(t, c, h, m, kind)                                                                          \
	header_ops(t, c, (h) ? (h)->kind : NULL, &(m)->n_##kind##_headers_to_add, &(m)->kind##_headers_to_add, \
	           &(m)->n_##kind##_headers_to_remove, &(m)->kind##_headers_to_remove)

static void per_filter(size_t *n, Envoy__Config__Route__V3__Route__TypedPerFilterConfigEntry ***v, const char *filter,
                       ProtobufCMessage *cfg)
{
	Envoy__Config__Route__V3__Route__TypedPerFilterConfigEntry *e =
	    XNEW(Envoy__Config__Route__V3__Route__TypedPerFilterConfigEntry,
	         envoy__config__route__v3__route__typed_per_filter_config_entry__descriptor);
	e->key = wf_xstr(filter);
	e->value = wf_xany(cfg);
	XPUSH(*v, *n, e);
}

/* ---- retries -------------------------------------------------------------------------------- */

static RetryPolicy *retry_base(uint32_t attempts)
{
	RetryPolicy *r = XNEW(RetryPolicy, envoy__config__route__v3__retry_policy__descriptor);
	r->retry_on = wf_xstr("connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes");
	r->num_retries = wf_xu32(attempts);
	Envoy__Config__Route__V3__RetryPolicy__RetryHostPredicate *hp = XNEW(
	    Envoy__Config__Route__V3__RetryPolicy__RetryHostPredicate, envoy__config__route__v3__retry_policy__retry_host_predicate__descriptor);
	hp->name = wf_xstr("envoy.retry_host_predicates.previous_hosts");
	hp->config_type_case = ENVOY__CONFIG__ROUTE__V3__RETRY_POLICY__RETRY_HOST_PREDICATE__CONFIG_TYPE_TYPED_CONFIG;
	hp->typed_config = wf_xany(wf_proto_new(&envoy__extensions__retry__host__previous_hosts__v3__previous_hosts_predicate__descriptor));
	XPUSH(r->retry_host_predicate, r->n_retry_host_predicate, hp);
	r->host_selection_retry_max_attempts = 5;
	r->retriable_status_codes = malloc(sizeof(uint32_t));
	r->retriable_status_codes[0] = 503;
	r->n_retriable_status_codes = 1;
	return r;
}

/* The retry conditions the proxy implements (proxy/compile_route.c). */
static const char *const retry_conds[] = {
    "5xx", "gateway-error", "reset", "connect-failure", "retriable-4xx", "retriable-status-codes", "retriable-headers",
    "refused-stream", "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable", NULL};

/* Istio's conversion: no retries → the default policy (2 attempts); attempts 0 → none;
 * retryOn's numbers become retriable_status_codes. */
static int retries(struct wf_tx *t, const struct vsctx *c, const Istio__Networking__V1alpha3__HTTPRetry *h, RetryPolicy **out)
{
	*out = NULL;
	if (!h) {
		*out = retry_base(2);
		return 0;
	}
	if (h->attempts <= 0)
		return 0;
	if (h->retry_remote_localities)
		return VSERR(t, c, h, "retry_remote_localities", ".retries.retryRemoteLocalities is not supported yet");
	RetryPolicy *r = retry_base((uint32_t)h->attempts);
	if (h->per_try_timeout)
		r->per_try_timeout = wf_xdur(h->per_try_timeout);
	if (h->retry_ignore_previous_hosts && !h->retry_ignore_previous_hosts->value) {
		for (size_t i = 0; i < r->n_retry_host_predicate; i++)
			wf_proto_free(&r->retry_host_predicate[i]->base);
		r->n_retry_host_predicate = 0;
	}
	if (h->backoff) {
		r->retry_back_off = XNEW(Envoy__Config__Route__V3__RetryPolicy__RetryBackOff,
		                         envoy__config__route__v3__retry_policy__retry_back_off__descriptor);
		r->retry_back_off->base_interval = wf_xdur(h->backoff);
	}
	if (h->retry_on && *h->retry_on) {
		char *copy = strdup(h->retry_on), *save = NULL, *on = NULL;
		size_t n_codes = 0;
		uint32_t *codes = NULL;
		int err = 0;
		for (char *tok = strtok_r(copy, ",", &save); tok && !err; tok = strtok_r(NULL, ",", &save)) {
			while (*tok == ' ')
				tok++;
			if (!*tok)
				continue;
			if (strspn(tok, "0123456789") == strlen(tok)) { /* a status code ("503"), not "5xx" */
				XPUSH(codes, n_codes, (uint32_t)atoi(tok));
				continue;
			}
			int known = 0;
			for (const char *const *k = retry_conds; *k && !known; k++)
				known = !strcmp(*k, tok);
			if (!known) {
				err = VSERR(t, c, h, "retry_on", ".retries.retryOn: '%s' is not supported by Weft's proxy", tok);
				break;
			}
			char *next = on ? wf_xfmt("%s,%s", on, tok) : strdup(tok);
			free(on);
			on = next;
		}
		free(copy);
		if (err) {
			free(on);
			free(codes);
			wf_proto_free(&r->base);
			return err;
		}
		if (n_codes) {
			char *next = on ? wf_xfmt("%s,retriable-status-codes", on) : strdup("retriable-status-codes");
			free(on);
			on = next;
			free(r->retriable_status_codes);
			r->retriable_status_codes = codes;
			r->n_retriable_status_codes = n_codes;
		} else {
			free(r->retriable_status_codes);
			r->retriable_status_codes = NULL;
			r->n_retriable_status_codes = 0;
		}
		free(r->retry_on);
		r->retry_on = on ? on : wf_xstr("");
	}
	*out = r;
	return 0;
}

/* ---- fault, CORS, mirrors ------------------------------------------------------------------- */

static int fault(struct wf_tx *t, const struct vsctx *c, const Istio__Networking__V1alpha3__HTTPFaultInjection *f,
                 Route *r)
{
	Envoy__Extensions__Filters__Http__Fault__V3__HTTPFault *hf =
	    XNEW(Envoy__Extensions__Filters__Http__Fault__V3__HTTPFault, envoy__extensions__filters__http__fault__v3__httpfault__descriptor);
	if (f->delay) {
		const Istio__Networking__V1alpha3__HTTPFaultInjection__Delay *d = f->delay;
		if (d->http_delay_type_case != ISTIO__NETWORKING__V1ALPHA3__HTTPFAULT_INJECTION__DELAY__HTTP_DELAY_TYPE_FIXED_DELAY) {
			wf_proto_free(&hf->base);
			return VSERR(t, c, d, NULL, ".fault.delay: only fixedDelay is supported (exponentialDelay is not)");
		}
		hf->delay = XNEW(Envoy__Extensions__Filters__Common__Fault__V3__FaultDelay,
		                 envoy__extensions__filters__common__fault__v3__fault_delay__descriptor);
		hf->delay->fault_delay_secifier_case =
		    ENVOY__EXTENSIONS__FILTERS__COMMON__FAULT__V3__FAULT_DELAY__FAULT_DELAY_SECIFIER_FIXED_DELAY;
		hf->delay->fixed_delay = wf_xdur(d->fixed_delay);
		hf->delay->percentage = percent(d->percentage ? d->percentage->value : d->percent > 0 ? d->percent : 100);
	}
	if (f->abort) {
		const Istio__Networking__V1alpha3__HTTPFaultInjection__Abort *a = f->abort;
		if (a->error_type_case != ISTIO__NETWORKING__V1ALPHA3__HTTPFAULT_INJECTION__ABORT__ERROR_TYPE_HTTP_STATUS) {
			wf_proto_free(&hf->base);
			return VSERR(t, c, a, NULL, ".fault.abort: only httpStatus is supported (grpcStatus and http2Error are not yet)");
		}
		hf->abort = XNEW(Envoy__Extensions__Filters__Http__Fault__V3__FaultAbort,
		                 envoy__extensions__filters__http__fault__v3__fault_abort__descriptor);
		hf->abort->error_type_case = ENVOY__EXTENSIONS__FILTERS__HTTP__FAULT__V3__FAULT_ABORT__ERROR_TYPE_HTTP_STATUS;
		hf->abort->http_status = (uint32_t)a->http_status;
		hf->abort->percentage = percent(a->percentage ? a->percentage->value : 100);
	}
	per_filter(&r->n_typed_per_filter_config, &r->typed_per_filter_config, "envoy.filters.http.fault", &hf->base);
	return 0;
}

static char *join(char **v, size_t n)
{
	size_t len = 1;
	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	char *s = calloc(1, len);
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(s, ",");
		strcat(s, v[i]);
	}
	return s;
}

static int cors(struct wf_tx *t, const struct vsctx *c, const Istio__Networking__V1alpha3__CorsPolicy *p, Route *r)
{
	if (p->unmatched_preflights != ISTIO__NETWORKING__V1ALPHA3__CORS_POLICY__UNMATCHED_PREFLIGHTS__UNSPECIFIED)
		return VSERR(t, c, p, "unmatched_preflights", ".corsPolicy.unmatchedPreflights is not supported yet");
	Envoy__Extensions__Filters__Http__Cors__V3__CorsPolicy *cp =
	    XNEW(Envoy__Extensions__Filters__Http__Cors__V3__CorsPolicy, envoy__extensions__filters__http__cors__v3__cors_policy__descriptor);
	for (size_t i = 0; i < p->n_allow_origins; i++) {
		StringMatcher *m = string_matcher(p->allow_origins[i], 0);
		if (m)
			XPUSH(cp->allow_origin_string_match, cp->n_allow_origin_string_match, m);
	}
	for (size_t i = 0; i < p->n_allow_origin; i++) {
		StringMatcher *m = XNEW(StringMatcher, envoy__type__matcher__v3__string_matcher__descriptor);
		m->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
		m->exact = wf_xstr(p->allow_origin[i]);
		XPUSH(cp->allow_origin_string_match, cp->n_allow_origin_string_match, m);
	}
	cp->allow_methods = join(p->allow_methods, p->n_allow_methods);
	cp->allow_headers = join(p->allow_headers, p->n_allow_headers);
	cp->expose_headers = join(p->expose_headers, p->n_expose_headers);
	if (p->max_age)
		cp->max_age = wf_xfmt("%lld", (long long)p->max_age->seconds);
	if (p->allow_credentials)
		cp->allow_credentials = wf_xbool(p->allow_credentials->value);
	per_filter(&r->n_typed_per_filter_config, &r->typed_per_filter_config, "envoy.filters.http.cors", &cp->base);
	return 0;
}

/* ---- destinations --------------------------------------------------------------------------- */

/* The cluster of a Destination: its host completed in the VirtualService's namespace; its port,
 * else the service's only port, else the listener's. */
static char *dest_cluster(struct wf_tx *t, const struct vsctx *c, const Istio__Networking__V1alpha3__Destination *d,
                          uint32_t listener_port, char **host_out, uint32_t *port_out)
{
	char *host = wf_mesh_fqdn(d->host, c->v->ns);
	uint32_t port = d->port && d->port->number ? d->port->number : 0;
	if (!port) {
		const struct wf_service *s = wf_mesh_service(t->m, host);
		port = s && s->n_ports == 1 ? s->ports[0].number : listener_port;
	}
	char *name = wf_cluster_name("outbound", port, d->subset, host);
	if (host_out)
		*host_out = host;
	else
		free(host);
	if (port_out)
		*port_out = port;
	return name;
}

static void hash_policy(struct wf_tx *t, const char *host, const char *subset, uint32_t port, RouteAction *ra)
{
	const Istio__Networking__V1alpha3__LoadBalancerSettings *lb = wf_tx_lb_for(t, host, subset, port);
	if (!lb || lb->lb_policy_case != ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__LB_POLICY_CONSISTENT_HASH)
		return;
	const Istio__Networking__V1alpha3__LoadBalancerSettings__ConsistentHashLB *ch = lb->consistent_hash;
	Envoy__Config__Route__V3__RouteAction__HashPolicy *hp =
	    XNEW(Envoy__Config__Route__V3__RouteAction__HashPolicy, envoy__config__route__v3__route_action__hash_policy__descriptor);
	switch (ch->hash_key_case) {
	case ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__CONSISTENT_HASH_LB__HASH_KEY_HTTP_HEADER_NAME:
		hp->policy_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_HEADER;
		hp->header = XNEW(Envoy__Config__Route__V3__RouteAction__HashPolicy__Header,
		                  envoy__config__route__v3__route_action__hash_policy__header__descriptor);
		hp->header->header_name = wf_xstr(ch->http_header_name);
		break;
	case ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__CONSISTENT_HASH_LB__HASH_KEY_HTTP_COOKIE:
		hp->policy_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_COOKIE;
		hp->cookie = XNEW(Envoy__Config__Route__V3__RouteAction__HashPolicy__Cookie,
		                  envoy__config__route__v3__route_action__hash_policy__cookie__descriptor);
		hp->cookie->name = wf_xstr(ch->http_cookie->name);
		hp->cookie->path = wf_xstr(ch->http_cookie->path);
		if (ch->http_cookie->ttl)
			hp->cookie->ttl = wf_xdur(ch->http_cookie->ttl);
		break;
	case ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__CONSISTENT_HASH_LB__HASH_KEY_USE_SOURCE_IP:
		hp->policy_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_CONNECTION_PROPERTIES;
		hp->connection_properties = XNEW(Envoy__Config__Route__V3__RouteAction__HashPolicy__ConnectionProperties,
		                                 envoy__config__route__v3__route_action__hash_policy__connection_properties__descriptor);
		hp->connection_properties->source_ip = 1;
		break;
	case ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__CONSISTENT_HASH_LB__HASH_KEY_HTTP_QUERY_PARAMETER_NAME:
		hp->policy_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_QUERY_PARAMETER;
		hp->query_parameter = XNEW(Envoy__Config__Route__V3__RouteAction__HashPolicy__QueryParameter,
		                           envoy__config__route__v3__route_action__hash_policy__query_parameter__descriptor);
		hp->query_parameter->name = wf_xstr(ch->http_query_parameter_name);
		break;
	default:
		wf_proto_free(&hp->base);
		return;
	}
	XPUSH(ra->hash_policy, ra->n_hash_policy, hp);
}

static void mirror(struct wf_tx *t, const struct vsctx *c, const Istio__Networking__V1alpha3__Destination *d,
                   const Istio__Networking__V1alpha3__Percent *pct, uint32_t port, RouteAction *ra)
{
	Envoy__Config__Route__V3__RouteAction__RequestMirrorPolicy *mp = XNEW(
	    Envoy__Config__Route__V3__RouteAction__RequestMirrorPolicy, envoy__config__route__v3__route_action__request_mirror_policy__descriptor);
	mp->cluster = dest_cluster(t, c, d, port, NULL, NULL);
	mp->runtime_fraction = XNEW(Envoy__Config__Core__V3__RuntimeFractionalPercent,
	                            envoy__config__core__v3__runtime_fractional_percent__descriptor);
	mp->runtime_fraction->default_value = percent(pct ? pct->value : 100);
	XPUSH(ra->request_mirror_policies, ra->n_request_mirror_policies, mp);
}

/* ---- one route ------------------------------------------------------------------------------ */

static int route_action(struct wf_tx *t, const struct vsctx *c, const HTTPRoute *h, const HTTPMatch *m, uint32_t port,
                        Route *r)
{
	RouteAction *ra = XNEW(RouteAction, envoy__config__route__v3__route_action__descriptor);
	r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
	r->route = ra;
	/* Istio: no timeout unless the VirtualService gives one */
	ra->timeout = h->timeout ? wf_xdur(h->timeout) : wf_xdur_ms(0);
	size_t n = 0;
	for (size_t i = 0; i < h->n_route; i++)
		n += h->route[i]->destination && (h->n_route == 1 || h->route[i]->weight > 0);
	if (!n)
		return VSERR(t, c, h, "route", ".route: no destination");
	char *first_host = NULL;
	uint32_t first_port = 0;
	const char *first_subset = NULL;
	if (n == 1) {
		for (size_t i = 0; i < h->n_route; i++) {
			const Istio__Networking__V1alpha3__HTTPRouteDestination *rd = h->route[i];
			if (!rd->destination || (h->n_route > 1 && rd->weight <= 0))
				continue;
			ra->cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
			ra->cluster = dest_cluster(t, c, rd->destination, port, &first_host, &first_port);
			first_subset = rd->destination->subset;
			/* one destination: its headers are the route's */
			if (HEADERS(t, c, rd->headers, r, request) < 0 || HEADERS(t, c, rd->headers, r, response) < 0) {
				free(first_host);
				return -1;
			}
		}
	} else {
		Envoy__Config__Route__V3__WeightedCluster *wc =
		    XNEW(Envoy__Config__Route__V3__WeightedCluster, envoy__config__route__v3__weighted_cluster__descriptor);
		ra->cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS;
		ra->weighted_clusters = wc;
		for (size_t i = 0; i < h->n_route; i++) {
			const Istio__Networking__V1alpha3__HTTPRouteDestination *rd = h->route[i];
			if (!rd->destination || rd->weight <= 0)
				continue;
			Envoy__Config__Route__V3__WeightedCluster__ClusterWeight *cw = XNEW(
			    Envoy__Config__Route__V3__WeightedCluster__ClusterWeight, envoy__config__route__v3__weighted_cluster__cluster_weight__descriptor);
			cw->name = dest_cluster(t, c, rd->destination, port, first_host ? NULL : &first_host, &first_port);
			if (!first_subset)
				first_subset = rd->destination->subset;
			cw->weight = wf_xu32((uint32_t)rd->weight);
			XPUSH(wc->clusters, wc->n_clusters, cw);
			if (HEADERS(t, c, rd->headers, cw, request) < 0 || HEADERS(t, c, rd->headers, cw, response) < 0) {
				free(first_host);
				return -1;
			}
		}
	}
	hash_policy(t, first_host, first_subset, first_port, ra);
	free(first_host);
	if (retries(t, c, h->retries, &ra->retry_policy) < 0)
		return -1;
	if (h->mirror)
		mirror(t, c, h->mirror, h->mirror_percentage, port, ra);
	for (size_t i = 0; i < h->n_mirrors; i++)
		if (h->mirrors[i]->destination)
			mirror(t, c, h->mirrors[i]->destination, h->mirrors[i]->percentage, port, ra);
	if (h->rewrite) {
		const Istio__Networking__V1alpha3__HTTPRewrite *rw = h->rewrite;
		if (*rw->uri) {
			if (m && m->uri && m->uri->match_type_case == ISTIO__NETWORKING__V1ALPHA3__STRING_MATCH__MATCH_TYPE_REGEX)
				return VSERR(t, c, rw, "uri", ".rewrite.uri: a regex uri match cannot take a prefix rewrite (use uriRegexRewrite)");
			ra->prefix_rewrite = wf_xstr(rw->uri);
		}
		if (rw->uri_regex_rewrite) {
			ra->regex_rewrite = XNEW(Envoy__Type__Matcher__V3__RegexMatchAndSubstitute,
			                         envoy__type__matcher__v3__regex_match_and_substitute__descriptor);
			ra->regex_rewrite->pattern = regex(rw->uri_regex_rewrite->match);
			ra->regex_rewrite->substitution = wf_xstr(rw->uri_regex_rewrite->rewrite);
		}
		if (*rw->authority) {
			ra->host_rewrite_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_HOST_REWRITE_LITERAL;
			ra->host_rewrite_literal = wf_xstr(rw->authority);
		}
	}
	return 0;
}

static int redirect(struct wf_tx *t, const struct vsctx *c, const Istio__Networking__V1alpha3__HTTPRedirect *rd, Route *r)
{
	Envoy__Config__Route__V3__RedirectAction *a =
	    XNEW(Envoy__Config__Route__V3__RedirectAction, envoy__config__route__v3__redirect_action__descriptor);
	r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_REDIRECT;
	r->redirect = a;
	if (*rd->uri) {
		a->path_rewrite_specifier_case = ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_PATH_REDIRECT;
		a->path_redirect = wf_xstr(rd->uri);
	}
	a->host_redirect = wf_xstr(rd->authority);
	if (*rd->scheme) {
		a->scheme_rewrite_specifier_case = ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__SCHEME_REWRITE_SPECIFIER_SCHEME_REDIRECT;
		a->scheme_redirect = wf_xstr(rd->scheme);
	}
	if (rd->redirect_port_case == ISTIO__NETWORKING__V1ALPHA3__HTTPREDIRECT__REDIRECT_PORT_PORT)
		a->port_redirect = rd->port;
	else if (rd->redirect_port_case == ISTIO__NETWORKING__V1ALPHA3__HTTPREDIRECT__REDIRECT_PORT_DERIVE_PORT &&
	         rd->derive_port == ISTIO__NETWORKING__V1ALPHA3__HTTPREDIRECT__REDIRECT_PORT_SELECTION__FROM_REQUEST_PORT)
		return VSERR(t, c, rd, "derive_port", ".redirect.derivePort FROM_REQUEST_PORT is not supported yet");
	switch (rd->redirect_code) {
	case 0: case 301: a->response_code = ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__MOVED_PERMANENTLY; break;
	case 302: a->response_code = ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__FOUND; break;
	case 303: a->response_code = ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__SEE_OTHER; break;
	case 307: a->response_code = ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__TEMPORARY_REDIRECT; break;
	case 308: a->response_code = ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__PERMANENT_REDIRECT; break;
	default: return VSERR(t, c, rd, "redirect_code", ".redirect.redirectCode %u: 301, 302, 303, 307 or 308", rd->redirect_code);
	}
	return 0;
}

static int direct(struct wf_tx *t, const struct vsctx *c, const Istio__Networking__V1alpha3__HTTPDirectResponse *d, Route *r)
{
	Envoy__Config__Route__V3__DirectResponseAction *a =
	    XNEW(Envoy__Config__Route__V3__DirectResponseAction, envoy__config__route__v3__direct_response_action__descriptor);
	r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_DIRECT_RESPONSE;
	r->direct_response = a;
	a->status = d->status;
	if (d->body) {
		a->body = XNEW(Envoy__Config__Core__V3__DataSource, envoy__config__core__v3__data_source__descriptor);
		if (d->body->specifier_case == ISTIO__NETWORKING__V1ALPHA3__HTTPBODY__SPECIFIER_BYTES) {
			a->body->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES;
			a->body->inline_bytes.len = d->body->bytes.len;
			a->body->inline_bytes.data = malloc(d->body->bytes.len + 1);
			memcpy(a->body->inline_bytes.data, d->body->bytes.data, d->body->bytes.len);
		} else {
			a->body->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING;
			a->body->inline_string = wf_xstr(d->body->string);
		}
	}
	return 0;
}

int wf_gateway_ref_is(const char *ref, const char *vs_ns, const char *gw)
{
	if (strchr(ref, '/'))
		return !strcmp(ref, gw);
	size_t nl = strlen(vs_ns);
	return !strncmp(gw, vs_ns, nl) && gw[nl] == '/' && !strcmp(gw + nl + 1, ref);
}

int wf_tx_vs_bound(const struct wf_tx *t, const struct wf_mesh_vs *v)
{
	if (!t->gateway)
		return v->mesh;
	for (size_t i = 0; i < v->vs->n_gateways; i++)
		if (wf_gateway_ref_is(v->vs->gateways[i], v->ns, t->gateway))
			return 1;
	return 0;
}

int wf_tx_match_here(const struct wf_tx *t, const char *vs_ns, const struct wf_tx_where *w, uint32_t port)
{
	if (w->port && w->port != port)
		return 0;
	int named = !w->n_gateways;
	for (size_t i = 0; i < w->n_gateways && !named; i++)
		named = t->gateway ? wf_gateway_ref_is(w->gateways[i], vs_ns, t->gateway) : !strcmp(w->gateways[i], "mesh");
	if (!named)
		return 0;
	/* sourceLabels: map entries of the match's own message type, read by their descriptor */
	for (size_t i = 0; i < w->n_source_labels; i++) {
		const ProtobufCMessage *e = w->source_labels[i];
		const ProtobufCFieldDescriptor *f = e->descriptor->fields;
		struct wf_kv kv = {*(char *const *)((const char *)e + f[0].offset), *(char *const *)((const char *)e + f[1].offset)};
		if (!wf_labels_match(&kv, 1, t->p->labels, t->p->n_labels))
			return 0;
	}
	return !w->source_namespace || !*w->source_namespace || !strcmp(w->source_namespace, t->p->ns);
}

/* Does match m apply to this proxy and port? A check translates every match. */
static int match_applies(struct wf_tx *t, const struct vsctx *c, const HTTPMatch *m, uint32_t port)
{
	return t->check || wf_tx_match_here(t, c->v->ns, &WF_TX_WHERE(m), port);
}

static Envoy__Config__Route__V3__RouteMatch *route_match(const HTTPMatch *m)
{
	Envoy__Config__Route__V3__RouteMatch *rm = XNEW(Envoy__Config__Route__V3__RouteMatch, envoy__config__route__v3__route_match__descriptor);
	const IstioStringMatch *uri = m ? m->uri : NULL;
	switch (uri ? uri->match_type_case : 0) {
	case ISTIO__NETWORKING__V1ALPHA3__STRING_MATCH__MATCH_TYPE_EXACT:
		rm->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH;
		rm->path = wf_xstr(uri->exact);
		break;
	case ISTIO__NETWORKING__V1ALPHA3__STRING_MATCH__MATCH_TYPE_PREFIX:
		rm->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
		rm->prefix = wf_xstr(uri->prefix);
		break;
	case ISTIO__NETWORKING__V1ALPHA3__STRING_MATCH__MATCH_TYPE_REGEX:
		rm->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX;
		rm->safe_regex = regex(uri->regex);
		break;
	default:
		rm->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
		rm->prefix = wf_xstr("/");
		break;
	}
	if (!m)
		return rm;
	if (m->ignore_uri_case)
		rm->case_sensitive = wf_xbool(0);
	for (size_t i = 0; i < m->n_headers; i++)
		XPUSH(rm->headers, rm->n_headers, header_matcher(m->headers[i]->key, m->headers[i]->value, 0));
	for (size_t i = 0; i < m->n_without_headers; i++)
		XPUSH(rm->headers, rm->n_headers, header_matcher(m->without_headers[i]->key, m->without_headers[i]->value, 1));
	if (m->method)
		XPUSH(rm->headers, rm->n_headers, header_matcher(":method", m->method, 0));
	if (m->authority)
		XPUSH(rm->headers, rm->n_headers, header_matcher(":authority", m->authority, 0));
	if (m->scheme)
		XPUSH(rm->headers, rm->n_headers, header_matcher(":scheme", m->scheme, 0));
	for (size_t i = 0; i < m->n_query_params; i++) {
		Envoy__Config__Route__V3__QueryParameterMatcher *q =
		    XNEW(Envoy__Config__Route__V3__QueryParameterMatcher, envoy__config__route__v3__query_parameter_matcher__descriptor);
		q->name = wf_xstr(m->query_params[i]->key);
		StringMatcher *sm = string_matcher(m->query_params[i]->value, 0);
		if (sm) {
			q->query_parameter_match_specifier_case =
			    ENVOY__CONFIG__ROUTE__V3__QUERY_PARAMETER_MATCHER__QUERY_PARAMETER_MATCH_SPECIFIER_STRING_MATCH;
			q->string_match = sm;
		} else {
			q->query_parameter_match_specifier_case =
			    ENVOY__CONFIG__ROUTE__V3__QUERY_PARAMETER_MATCHER__QUERY_PARAMETER_MATCH_SPECIFIER_PRESENT_MATCH;
			q->present_match = 1;
		}
		XPUSH(rm->query_parameters, rm->n_query_parameters, q);
	}
	return rm;
}

/* The routes of one HTTPRoute: one per match that applies (one for no match). */
static int http_route(struct wf_tx *t, const struct vsctx *c, const HTTPRoute *h, uint32_t port, VirtualHost *vh)
{
	if (h->delegate)
		return VSERR(t, c, h, "delegate", ".delegate is not supported yet");
	size_t n = h->n_match ? h->n_match : 1;
	for (size_t i = 0; i < n; i++) {
		const HTTPMatch *m = h->n_match ? h->match[i] : NULL;
		if (m && !match_applies(t, c, m, port))
			continue;
		Route *r = XNEW(Route, envoy__config__route__v3__route__descriptor);
		XPUSH(vh->routes, vh->n_routes, r);
		r->name = m && *m->name ? wf_xfmt("%s%s%s", h->name, *h->name ? "." : "", m->name) : wf_xstr(h->name);
		r->match = route_match(m);
		int rc;
		if (h->redirect)
			rc = redirect(t, c, h->redirect, r);
		else if (h->direct_response)
			rc = direct(t, c, h->direct_response, r);
		else
			rc = route_action(t, c, h, m, port, r);
		if (rc < 0 || HEADERS(t, c, h->headers, r, request) < 0 || HEADERS(t, c, h->headers, r, response) < 0)
			return -1;
		if (h->fault && fault(t, c, h->fault, r) < 0)
			return -1;
		/* gRPC clients have no CORS filter, and NACK a per-route config for a filter they lack */
		if (h->cors_policy && t->p->kind == WF_PROXY_GRPC)
			wf_tx_warn(t, "VirtualService %s/%s: http[%zu].corsPolicy is left out for gRPC client %s", c->v->ns, c->v->name,
			           c->i, t->p->id);
		else if (h->cors_policy && cors(t, c, h->cors_policy, r) < 0)
			return -1;
	}
	return 0;
}

static RetryPolicy *default_retry(void)
{
	return retry_base(2);
}

Route *wf_tx_default_route(const char *cluster)
{
	Route *r = XNEW(Route, envoy__config__route__v3__route__descriptor);
	r->name = wf_xstr("default");
	r->match = route_match(NULL);
	RouteAction *ra = XNEW(RouteAction, envoy__config__route__v3__route_action__descriptor);
	r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE;
	r->route = ra;
	ra->cluster_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER;
	ra->cluster = wf_xstr(cluster);
	ra->timeout = wf_xdur_ms(0);
	ra->retry_policy = default_retry();
	return r;
}

/* ---- virtual hosts -------------------------------------------------------------------------- */

size_t wf_host_forms(const char *host, const char *ns, char **out)
{
	size_t n = 0;
	out[n++] = strdup(host);
	const char *suffix = ".svc.cluster.local";
	size_t hl = strlen(host), sl = strlen(suffix);
	if (hl <= sl || strcmp(host + hl - sl, suffix))
		return n;
	char *base = strndup(host, hl - sl), *dot = strchr(base, '.'); /* NAME.NS */
	if (dot && !strchr(dot + 1, '.')) {
		out[n++] = wf_xfmt("%s.svc", base);
		out[n++] = strdup(base);
		if (!strcmp(dot + 1, ns))
			out[n++] = strndup(base, (size_t)(dot - base));
	}
	free(base);
	return n;
}

/* Istio's domains for a service seen from namespace ns: its host's forms and its addresses,
 * each also with ":PORT". */
static void domains(VirtualHost *vh, const struct wf_service *s, uint32_t port, const char *ns)
{
	char *forms[4];
	size_t n = wf_host_forms(s->host, ns, forms);
	for (size_t i = 0; i < n + s->n_addresses; i++) {
		char *d = i < n ? forms[i] : wf_xstr(s->addresses[i - n]);
		if (strchr(d, '/')) { /* a CIDR range names no host */
			free(d);
			continue;
		}
		XPUSH(vh->domains, vh->n_domains, d);
		XPUSH(vh->domains, vh->n_domains, wf_xfmt("%s:%u", d, port));
	}
}

static VirtualHost *virtual_host(struct wf_tx *t, const struct wf_service *s, uint32_t port)
{
	VirtualHost *vh = XNEW(VirtualHost, envoy__config__route__v3__virtual_host__descriptor);
	vh->name = wf_xfmt("%s:%u", s->host, port);
	domains(vh, s, port, t->p->ns);
	/* exact hosts first, then wildcards: the VirtualServices for this host, in store order */
	size_t first, n_exact, *done = NULL, n_done = 0;
	wf_mesh_vs_exact(t->m, s->host, &first, &n_exact);
	for (size_t i = 0; i < n_exact + t->m->n_vs_wild; i++) {
		const struct wf_mesh_vsref *ref = i < n_exact ? &t->m->vs_exact[first + i] : &t->m->vs_wild[i - n_exact];
		const struct wf_mesh_vs *v = &t->m->vss[ref->vs];
		if (!wf_tx_vs_bound(t, v) || (i >= n_exact && !wf_host_match(ref->host, s->host)) ||
		    !wf_exported(v->vs->export_to, v->vs->n_export_to, v->ns, t->p->ns))
			continue;
		int again = 0; /* a VirtualService naming the host twice counts once */
		for (size_t k = 0; k < n_done && !again; k++)
			again = done[k] == ref->vs;
		if (again)
			continue;
		XPUSH(done, n_done, ref->vs);
		for (size_t k = 0; k < v->vs->n_http; k++) {
			struct vsctx c = {v, k};
			if (http_route(t, &c, v->vs->http[k], port, vh) < 0) {
				free(done);
				wf_proto_free(&vh->base);
				return NULL;
			}
		}
	}
	free(done);
	if (!vh->n_routes) {
		char *cl = wf_cluster_name("outbound", port, NULL, s->host);
		XPUSH(vh->routes, vh->n_routes, wf_tx_default_route(cl));
		free(cl);
	}
	return vh;
}

int wf_tx_check_vs(struct wf_tx *t, const struct wf_mesh_vs *v)
{
	VirtualHost *vh = XNEW(VirtualHost, envoy__config__route__v3__virtual_host__descriptor);
	int rc = 0;
	for (size_t k = 0; k < v->vs->n_http && rc == 0; k++) {
		struct vsctx c = {v, k};
		rc = http_route(t, &c, v->vs->http[k], 80, vh);
	}
	wf_proto_free(&vh->base);
	return rc;
}

VirtualHost *wf_tx_gateway_vhost(struct wf_tx *t, const char *host, uint32_t port)
{
	VirtualHost *vh = XNEW(VirtualHost, envoy__config__route__v3__virtual_host__descriptor);
	vh->name = wf_xfmt("%s:%u", host, port);
	XPUSH(vh->domains, vh->n_domains, wf_xstr(host));
	if (strcmp(host, "*"))
		XPUSH(vh->domains, vh->n_domains, wf_xfmt("%s:%u", host, port));
	for (size_t i = 0; i < t->m->n_vss; i++) {
		const struct wf_mesh_vs *v = &t->m->vss[i];
		int names = 0;
		for (size_t k = 0; k < v->n_hosts && !names; k++)
			names = !strcmp(v->hosts[k], host);
		if (!names || !wf_tx_vs_bound(t, v) || !wf_exported(v->vs->export_to, v->vs->n_export_to, v->ns, t->p->ns))
			continue;
		for (size_t k = 0; k < v->vs->n_http; k++) {
			struct vsctx c = {v, k};
			if (http_route(t, &c, v->vs->http[k], port, vh) < 0) {
				wf_proto_free(&vh->base);
				return NULL;
			}
		}
	}
	return vh;
}

RouteConfiguration *wf_tx_route_config(struct wf_tx *t, uint32_t port, const char *host, const char *name)
{
	RouteConfiguration *rc = XNEW(RouteConfiguration, envoy__config__route__v3__route_configuration__descriptor);
	rc->name = wf_xstr(name);
	rc->validate_clusters = wf_xbool(0);
	for (size_t i = 0; i < t->n_svcs; i++) {
		const struct wf_service *s = t->svcs[i];
		if (host && strcmp(s->host, host))
			continue;
		int has = 0;
		for (size_t p = 0; p < s->n_ports && !has; p++)
			has = s->ports[p].number == port && wf_mesh_proto_is_http(s->ports[p].proto);
		if (!has)
			continue;
		VirtualHost *vh = virtual_host(t, s, port);
		if (!vh) {
			wf_proto_free(&rc->base);
			return NULL;
		}
		XPUSH(rc->virtual_hosts, rc->n_virtual_hosts, vh);
	}
	return rc;
}
