/* Semantic validation of Istio objects (see validate.h). The rules follow Istio's own
 * validation (pkg/config/validation in Istio) as far as each applies; where Istio changed a
 * rule over time, the current one is kept (destination weights: each >= 0 and, with more than
 * one destination, a total above 0 - Istio stopped requiring a sum of 100 in 1.15).
 *
 * Regexes are compiled with PCRE2: Istio documents RE2 syntax, which is close to a subset of
 * PCRE's for what routes use; a pattern RE2 refuses for features PCRE has (backreferences,
 * look-around) is accepted here. */
#include "control/validate.h"
#include "control/translate.h"
#include "core/pcre2_api.h"

#include "istio/networking/v1alpha3/destination_rule.pb-c.h"
#include "istio/networking/v1alpha3/gateway.pb-c.h"
#include "istio/networking/v1alpha3/service_entry.pb-c.h"
#include "istio/networking/v1alpha3/sidecar.pb-c.h"
#include "istio/networking/v1alpha3/virtual_service.pb-c.h"
#include "istio/networking/v1alpha3/workload_entry.pb-c.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Deprecated Istio fields (Delay.percent, mirrorPercent) are still accepted, so still checked. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#define I(x) Istio__Networking__V1alpha3__##x
#define C(x) ISTIO__NETWORKING__V1ALPHA3__##x
typedef Google__Protobuf__Duration Duration;

struct vctx {
	const struct wf_istio_obj *o;
	struct wf_errs *errs;
	int n;
};

/* An error about `field` of message `msg` (or the message itself when field is NULL); idx >= 0
 * names element idx of a repeated field, `elem` its slot (for the element's own position). */
static void verr(struct vctx *c, const void *msg, const char *field, long idx, const void *elem,
                 const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void verr(struct vctx *c, const void *msg, const char *field, long idx, const void *elem,
                 const char *fmt, ...)
{
	const struct wf_cfgdoc *doc = c->o->doc;
	uint32_t line = c->o->line, col = c->o->col;
	const ProtobufCFieldDescriptor *fd =
	    field ? protobuf_c_message_descriptor_get_field_by_name(((const ProtobufCMessage *)msg)->descriptor, field)
	          : NULL;
	if (!(elem && wf_cfgdoc_pos(doc, elem, 0, &line, &col)) &&
	    !(fd && wf_cfgdoc_pos(doc, msg, fd->id, &line, &col)))
		wf_cfgdoc_pos(doc, msg, 0, &line, &col);
	char path[1024], text[768], shown[128];
	const char *mp = wf_cfgdoc_path(doc, msg);
	if (field)
		field = wf_cfgdoc_field_name(doc, msg, field, shown, sizeof(shown));
	int k = snprintf(path, sizeof(path), "%s%s%s", mp, field && *mp ? "." : "", field ? field : "");
	if (idx >= 0 && k > 0 && (size_t)k < sizeof(path))
		snprintf(path + k, sizeof(path) - (size_t)k, "[%ld]", idx);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	wf_errs_add(c->errs, "%s:%u:%u: %s%s%s", wf_cfgdoc_source(doc), line, col, path, *path ? ": " : "", text);
	c->n++;
}

/* ---- names, addresses ----------------------------------------------------------------- */

int wf_istio_dns1123_label(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (!n || n > max || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return 0;
	return 1;
}

/* one label of a host name: letters (either case), digits, '-' inside, at most 63 bytes */
static int host_label(const char *s, size_t n)
{
	if (!n || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '-'))
			return 0;
	return 1;
}

static int dotted(const char *s, int lower_only)
{
	size_t n = strlen(s);
	if (!n || n > 253)
		return 0;
	for (const char *p = s;;) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (!host_label(p, l))
			return 0;
		for (size_t i = 0; lower_only && i < l; i++)
			if (isupper((unsigned char)p[i]))
				return 0;
		if (!dot)
			return 1;
		p = dot + 1;
	}
}

int wf_istio_dns1123_subdomain(const char *s) { return dotted(s, 1); }

int wf_istio_wildcard_host(const char *s)
{
	if (!strcmp(s, "*"))
		return 1;
	if (s[0] == '*') {
		if (s[1] != '.')
			return 0;
		s += 2;
	}
	return dotted(s, 0);
}

int wf_istio_ip(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* "10.0.0.0/8", "fd00::/64" or a bare address */
static int cidr(const char *s)
{
	char ip[64];
	const char *slash = strchr(s, '/');
	if (!slash)
		return wf_istio_ip(s);
	size_t l = (size_t)(slash - s);
	if (l >= sizeof(ip))
		return 0;
	memcpy(ip, s, l);
	ip[l] = 0;
	char *end;
	long bits = strtol(slash + 1, &end, 10);
	if (!slash[1] || *end || bits < 0)
		return 0;
	return wf_istio_ip(ip) && bits <= (strchr(ip, ':') ? 128 : 32);
}

/* HTTP header name (RFC 9110 token), or a pseudo-header (":authority") */
static int header_name(const char *s)
{
	if (*s == ':')
		s++;
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || strchr("!#$%&'*+-.^_`|~", *s)))
			return 0;
	return 1;
}

static int in_list_ci(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcasecmp(s, *list))
			return 1;
	return 0;
}

/* Istio's port protocols (case-insensitive, as Istio parses them) */
static const char *const protocols[] = {
	"HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "HTTP_PROXY", "MONGO", "MYSQL", "REDIS", "TCP", "TLS", "UDP",
	"THRIFT", NULL,
};

/* ---- shared pieces -------------------------------------------------------------------- */

static int64_t ms_of(const Duration *d, int *sub_ms)
{
	*sub_ms = d->nanos % 1000000 != 0;
	return d->seconds * 1000 + d->nanos / 1000000;
}

/* Istio's duration rule: at least 1ms, and whole milliseconds. */
static void duration(struct vctx *c, const void *msg, const char *field, const Duration *d)
{
	if (!d)
		return;
	int sub;
	int64_t ms = ms_of(d, &sub);
	if (d->seconds < 0 || d->nanos < 0 || (ms < 1))
		verr(c, msg, field, -1, NULL, "must be at least 1ms");
	else if (sub)
		verr(c, msg, field, -1, NULL, "only whole milliseconds are supported");
}

static void percent(struct vctx *c, const void *msg, const char *field, const I(Percent) *p)
{
	if (p && (p->value < 0 || p->value > 100))
		verr(c, msg, field, -1, NULL, "percentage %g is outside 0..100", p->value);
}

static void regex(struct vctx *c, const void *msg, const char *field, const char *re)
{
	int ec;
	PCRE2_SIZE off;
	char why[160];
	if (wf_pcre2_load(why, sizeof(why)) < 0) {
		verr(c, msg, field, -1, NULL, "regex '%s' cannot be checked: %s", re, why);
		return;
	}
	pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &off, NULL);
	if (code) {
		pcre2_code_free(code);
		return;
	}
	pcre2_get_error_message(ec, (PCRE2_UCHAR *)why, sizeof(why));
	verr(c, msg, field, -1, NULL, "regex '%s' does not compile: %s (at offset %zu)", re, why, (size_t)off);
}

static void string_match(struct vctx *c, const I(StringMatch) *m)
{
	if (m && m->match_type_case == C(STRING_MATCH__MATCH_TYPE_REGEX))
		regex(c, m, "regex", m->regex);
}

/* A destination host: a DNS name (short or fully qualified), no wildcard. */
static void destination(struct vctx *c, const I(Destination) *d, const void *parent, const char *field)
{
	if (!d) {
		verr(c, parent, field, -1, NULL, "a destination is required");
		return;
	}
	if (!*d->host)
		verr(c, d, "host", -1, NULL, "a destination host is required");
	else if (strchr(d->host, '*') || !wf_istio_wildcard_host(d->host))
		verr(c, d, "host", -1, NULL, "'%s' is not a valid destination host (a DNS name, no wildcard)", d->host);
	if (*d->subset && !wf_istio_dns1123_label(d->subset, 63))
		verr(c, d, "subset", -1, NULL, "'%s' is not a valid subset name (lower-case letters, digits, '-')",
		     d->subset);
	if (d->port && (d->port->number < 1 || d->port->number > 65535))
		verr(c, d->port, "number", -1, NULL, "port %u is outside 1..65535", d->port->number);
}

static void header_ops(struct vctx *c, const I(Headers__HeaderOperations) *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n_set; i++)
		if (!header_name(h->set[i]->key))
			verr(c, h->set[i], NULL, -1, NULL, "'%s' is not a valid header name", h->set[i]->key);
	for (size_t i = 0; i < h->n_add; i++)
		if (!header_name(h->add[i]->key))
			verr(c, h->add[i], NULL, -1, NULL, "'%s' is not a valid header name", h->add[i]->key);
	for (size_t i = 0; i < h->n_remove; i++)
		if (!header_name(h->remove[i]))
			verr(c, h, "remove", (long)i, &h->remove[i], "'%s' is not a valid header name", h->remove[i]);
}

static void headers(struct vctx *c, const I(Headers) *h)
{
	if (h) {
		header_ops(c, h->request);
		header_ops(c, h->response);
	}
}

/* Weights: each >= 0; with several destinations, a total above 0 (traffic splits by
 * weight/total). Called once per destination (msg: the destination entry), then once with
 * msg NULL to conclude about the list (`parent`.`field`). */
struct weights {
	size_t n;
	int64_t total;
};

static void weight_of(struct vctx *c, struct weights *w, const void *msg, int32_t weight)
{
	w->n++;
	if (weight < 0)
		verr(c, msg, "weight", -1, NULL, "weight %d is negative", weight);
	else
		w->total += weight;
}

static void weights_done(struct vctx *c, const struct weights *w, const void *parent, const char *field)
{
	if (w->n > 1 && w->total == 0)
		verr(c, parent, field, -1, NULL, "the destinations' weights add up to 0: give at least one a positive weight");
}

/* exportTo: "." (this namespace), "*" (all) or namespace names */
static void export_to(struct vctx *c, const void *msg, size_t n, char *const *v)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], ".") && strcmp(v[i], "*") && !wf_istio_dns1123_label(v[i], 63))
			verr(c, msg, "export_to", (long)i, &v[i], "'%s' is not '.', '*' or a namespace", v[i]);
}

/* ---- VirtualService ------------------------------------------------------------------- */

/* Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on conditions */
static const char *const retry_conditions[] = {
	"5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "envoy-ratelimited",
	"retriable-4xx", "refused-stream", "retriable-status-codes", "retriable-headers",
	"http3-post-connect-failure", "cancelled", "deadline-exceeded", "internal", "resource-exhausted",
	"unavailable", NULL,
};

static const char *const grpc_codes[] = {
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
	"PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
	"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED", NULL,
};

static const char *const methods[] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", NULL,
};

static void retry_on(struct vctx *c, const I(HTTPRetry) *r)
{
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", r->retry_on);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ')
			t++;
		size_t l = strlen(t);
		while (l && t[l - 1] == ' ')
			t[--l] = 0;
		char *end;
		long code = strtol(t, &end, 10);
		if (l && !*end && code >= 100 && code <= 599)
			continue; /* a status code: retried as a retriable status code */
		int known = 0;
		for (const char *const *k = retry_conditions; *k && !known; k++)
			known = !strcmp(t, *k);
		if (!known)
			verr(c, r, "retry_on", -1, NULL, "'%s' is not a retry condition (Envoy's: 5xx, gateway-error, "
			     "reset, connect-failure, retriable-4xx, refused-stream, ...; gRPC's: cancelled, "
			     "deadline-exceeded, internal, resource-exhausted, unavailable; or an HTTP status code)", t);
	}
}

static void fault(struct vctx *c, const I(HTTPFaultInjection) *f)
{
	if (!f)
		return;
	if (!f->delay && !f->abort)
		verr(c, f, NULL, -1, NULL, "a fault needs a delay or an abort");
	if (f->delay) {
		const I(HTTPFaultInjection__Delay) *d = f->delay;
		percent(c, d, "percentage", d->percentage);
		if (d->percent < 0 || d->percent > 100)
			verr(c, d, "percent", -1, NULL, "percentage %d is outside 0..100", d->percent);
		if (d->http_delay_type_case == C(HTTPFAULT_INJECTION__DELAY__HTTP_DELAY_TYPE_FIXED_DELAY))
			duration(c, d, "fixed_delay", d->fixed_delay);
		else if (d->http_delay_type_case == C(HTTPFAULT_INJECTION__DELAY__HTTP_DELAY_TYPE_EXPONENTIAL_DELAY))
			verr(c, d, "exponential_delay", -1, NULL, "exponentialDelay is not supported (Istio refuses it too): use fixedDelay");
		else
			verr(c, d, NULL, -1, NULL, "a delay needs fixedDelay");
	}
	if (f->abort) {
		const I(HTTPFaultInjection__Abort) *a = f->abort;
		percent(c, a, "percentage", a->percentage);
		switch (a->error_type_case) {
		case C(HTTPFAULT_INJECTION__ABORT__ERROR_TYPE_HTTP_STATUS):
			if (a->http_status < 200 || a->http_status > 599)
				verr(c, a, "http_status", -1, NULL, "%d is not an HTTP status for an abort (200..599)", a->http_status);
			break;
		case C(HTTPFAULT_INJECTION__ABORT__ERROR_TYPE_GRPC_STATUS):
			if (!in_list_ci(a->grpc_status, grpc_codes))
				verr(c, a, "grpc_status", -1, NULL, "'%s' is not a gRPC status name (UNAVAILABLE, INTERNAL, ...)",
				     a->grpc_status);
			break;
		case C(HTTPFAULT_INJECTION__ABORT__ERROR_TYPE_HTTP2_ERROR):
			verr(c, a, "http2_error", -1, NULL, "http2Error is not supported (Istio refuses it too): use httpStatus");
			break;
		default:
			verr(c, a, NULL, -1, NULL, "an abort needs httpStatus or grpcStatus");
		}
	}
}

static void http_match(struct vctx *c, const I(HTTPMatchRequest) *m)
{
	string_match(c, m->uri);
	string_match(c, m->scheme);
	string_match(c, m->method);
	string_match(c, m->authority);
	for (size_t i = 0; i < m->n_headers; i++) {
		if (!header_name(m->headers[i]->key))
			verr(c, m->headers[i], NULL, -1, NULL, "'%s' is not a valid header name", m->headers[i]->key);
		string_match(c, m->headers[i]->value);
	}
	for (size_t i = 0; i < m->n_without_headers; i++) {
		if (!header_name(m->without_headers[i]->key))
			verr(c, m->without_headers[i], NULL, -1, NULL, "'%s' is not a valid header name",
			     m->without_headers[i]->key);
		string_match(c, m->without_headers[i]->value);
	}
	for (size_t i = 0; i < m->n_query_params; i++)
		string_match(c, m->query_params[i]->value);
	if (m->port > 65535)
		verr(c, m, "port", -1, NULL, "port %u is outside 1..65535", m->port);
}

static void http_route(struct vctx *c, const I(HTTPRoute) *r)
{
	int route = r->n_route > 0, redirect = r->redirect != NULL, direct = r->direct_response != NULL;
	if (r->delegate) {
		if (route || redirect || direct)
			verr(c, r, "delegate", -1, NULL, "delegate cannot be combined with route, redirect or directResponse");
	} else if (!route && !redirect && !direct) {
		verr(c, r, NULL, -1, NULL, "an HTTP route needs route, redirect or directResponse");
	}
	if (route && redirect)
		verr(c, r, "redirect", -1, NULL, "an HTTP route cannot have both route and redirect");
	if (route && direct)
		verr(c, r, "direct_response", -1, NULL, "an HTTP route cannot have both route and directResponse");
	if (redirect && direct)
		verr(c, r, "direct_response", -1, NULL, "an HTTP route cannot have both redirect and directResponse");
	if (r->rewrite && (redirect || direct))
		verr(c, r, "rewrite", -1, NULL, "rewrite cannot be used with %s", redirect ? "redirect" : "directResponse");
	for (size_t i = 0; i < r->n_match; i++)
		http_match(c, r->match[i]);
	struct weights w = {0};
	for (size_t i = 0; i < r->n_route; i++) {
		destination(c, r->route[i]->destination, r->route[i], "destination");
		headers(c, r->route[i]->headers);
		weight_of(c, &w, r->route[i], r->route[i]->weight);
	}
	weights_done(c, &w, r, "route");
	duration(c, r, "timeout", r->timeout);
	if (r->retries) {
		if (r->retries->attempts < 0)
			verr(c, r->retries, "attempts", -1, NULL, "attempts %d is negative", r->retries->attempts);
		duration(c, r->retries, "per_try_timeout", r->retries->per_try_timeout);
		duration(c, r->retries, "backoff", r->retries->backoff);
		retry_on(c, r->retries);
	}
	fault(c, r->fault);
	if (r->mirror)
		destination(c, r->mirror, r, "mirror");
	percent(c, r, "mirror_percentage", r->mirror_percentage);
	if (r->mirror_percent && r->mirror_percent->value > 100)
		verr(c, r, "mirror_percent", -1, NULL, "percentage %u is outside 0..100", r->mirror_percent->value);
	if (r->mirror && r->n_mirrors)
		verr(c, r, "mirrors", -1, NULL, "set mirror or mirrors, not both");
	for (size_t i = 0; i < r->n_mirrors; i++) {
		destination(c, r->mirrors[i]->destination, r->mirrors[i], "destination");
		percent(c, r->mirrors[i], "percentage", r->mirrors[i]->percentage);
	}
	if (redirect) {
		const I(HTTPRedirect) *d = r->redirect;
		if (!*d->uri && !*d->authority && !*d->scheme && d->redirect_port_case == C(HTTPREDIRECT__REDIRECT_PORT__NOT_SET))
			verr(c, d, NULL, -1, NULL, "a redirect needs uri, authority, scheme or port");
		if (d->redirect_code && (d->redirect_code < 300 || d->redirect_code > 399))
			verr(c, d, "redirect_code", -1, NULL, "%u is not a redirect status (3xx)", d->redirect_code);
		if (d->redirect_port_case == C(HTTPREDIRECT__REDIRECT_PORT_PORT) && (d->port < 1 || d->port > 65535))
			verr(c, d, "port", -1, NULL, "port %u is outside 1..65535", d->port);
	}
	if (direct && (r->direct_response->status < 200 || r->direct_response->status > 599))
		verr(c, r->direct_response, "status", -1, NULL, "%u is not an HTTP status for a direct response (200..599)",
		     r->direct_response->status);
	if (r->rewrite && r->rewrite->uri_regex_rewrite) {
		if (*r->rewrite->uri)
			verr(c, r->rewrite, "uri_regex_rewrite", -1, NULL, "set uri or uriRegexRewrite, not both");
		regex(c, r->rewrite->uri_regex_rewrite, "match", r->rewrite->uri_regex_rewrite->match);
	}
	if (r->cors_policy) {
		const I(CorsPolicy) *p = r->cors_policy;
		for (size_t i = 0; i < p->n_allow_origins; i++)
			string_match(c, p->allow_origins[i]);
		for (size_t i = 0; i < p->n_allow_methods; i++)
			if (!in_list_ci(p->allow_methods[i], methods) || strcmp(p->allow_methods[i], "*") == 0)
				verr(c, p, "allow_methods", (long)i, &p->allow_methods[i], "'%s' is not an HTTP method",
				     p->allow_methods[i]);
		for (size_t i = 0; i < p->n_allow_headers; i++)
			if (strcmp(p->allow_headers[i], "*") && !header_name(p->allow_headers[i]))
				verr(c, p, "allow_headers", (long)i, &p->allow_headers[i], "'%s' is not a valid header name",
				     p->allow_headers[i]);
		for (size_t i = 0; i < p->n_expose_headers; i++)
			if (strcmp(p->expose_headers[i], "*") && !header_name(p->expose_headers[i]))
				verr(c, p, "expose_headers", (long)i, &p->expose_headers[i], "'%s' is not a valid header name",
				     p->expose_headers[i]);
		duration(c, p, "max_age", p->max_age);
	}
	headers(c, r->headers);
}

static void l4_routes(struct vctx *c, const void *r, size_t n, I(RouteDestination) *const *route)
{
	if (!n) {
		verr(c, r, "route", -1, NULL, "at least one route destination is required");
		return;
	}
	struct weights w = {0};
	for (size_t i = 0; i < n; i++) {
		destination(c, route[i]->destination, route[i], "destination");
		weight_of(c, &w, route[i], route[i]->weight);
	}
	weights_done(c, &w, r, "route");
}

static void subnets(struct vctx *c, const void *m, size_t n, char *const *v)
{
	for (size_t i = 0; i < n; i++)
		if (!cidr(v[i]))
			verr(c, m, "destination_subnets", (long)i, &v[i], "'%s' is not an IP address or CIDR range", v[i]);
}

/* "mesh", "name" or "namespace/name" */
static int gateway_ref(const char *g)
{
	if (!strcmp(g, "mesh"))
		return 1;
	const char *slash = strchr(g, '/');
	if (slash) {
		char ns[64];
		size_t l = (size_t)(slash - g);
		if (l >= sizeof(ns))
			return 0;
		memcpy(ns, g, l);
		ns[l] = 0;
		return wf_istio_dns1123_label(ns, 63) && wf_istio_dns1123_subdomain(slash + 1);
	}
	return wf_istio_dns1123_subdomain(g);
}

static void virtual_service(struct vctx *c, const I(VirtualService) *vs)
{
	int mesh = vs->n_gateways == 0;
	for (size_t i = 0; i < vs->n_gateways; i++) {
		if (!strcmp(vs->gateways[i], "mesh"))
			mesh = 1;
		if (!gateway_ref(vs->gateways[i]))
			verr(c, vs, "gateways", (long)i, &vs->gateways[i], "'%s' is not a gateway name (mesh, NAME or NAMESPACE/NAME)",
			     vs->gateways[i]);
	}
	if (!vs->n_hosts)
		verr(c, vs, "hosts", -1, NULL, "at least one host is required (delegate VirtualServices, without hosts, "
		     "are not supported yet)");
	for (size_t i = 0; i < vs->n_hosts; i++) {
		const char *h = vs->hosts[i];
		if (!strcmp(h, "*") && mesh)
			verr(c, vs, "hosts", (long)i, &vs->hosts[i], "'*' is not allowed for the mesh gateway (a VirtualService "
			     "for sidecars names its hosts)");
		else if (!wf_istio_wildcard_host(h) && !wf_istio_ip(h))
			verr(c, vs, "hosts", (long)i, &vs->hosts[i], "'%s' is not a valid host (a DNS name, \"*.\" + a name, or an IP address)", h);
	}
	export_to(c, vs, vs->n_export_to, vs->export_to);
	if (!vs->n_http && !vs->n_tcp && !vs->n_tls)
		verr(c, vs, NULL, -1, NULL, "http, tcp or tls routes are required");
	for (size_t i = 0; i < vs->n_http; i++)
		http_route(c, vs->http[i]);
	for (size_t i = 0; i < vs->n_tcp; i++) {
		const I(TCPRoute) *t = vs->tcp[i];
		for (size_t j = 0; j < t->n_match; j++) {
			subnets(c, t->match[j], t->match[j]->n_destination_subnets, t->match[j]->destination_subnets);
			if (*t->match[j]->source_subnet && !cidr(t->match[j]->source_subnet))
				verr(c, t->match[j], "source_subnet", -1, NULL, "'%s' is not an IP address or CIDR range",
				     t->match[j]->source_subnet);
			if (t->match[j]->port > 65535)
				verr(c, t->match[j], "port", -1, NULL, "port %u is outside 1..65535", t->match[j]->port);
		}
		l4_routes(c, t, t->n_route, t->route);
	}
	for (size_t i = 0; i < vs->n_tls; i++) {
		const I(TLSRoute) *t = vs->tls[i];
		if (!t->n_match)
			verr(c, t, "match", -1, NULL, "a TLS route needs at least one match (with sniHosts)");
		for (size_t j = 0; j < t->n_match; j++) {
			const I(TLSMatchAttributes) *m = t->match[j];
			if (!m->n_sni_hosts)
				verr(c, m, "sni_hosts", -1, NULL, "at least one SNI host is required");
			for (size_t k = 0; k < m->n_sni_hosts; k++)
				if (!wf_istio_wildcard_host(m->sni_hosts[k]))
					verr(c, m, "sni_hosts", (long)k, &m->sni_hosts[k], "'%s' is not a valid SNI host", m->sni_hosts[k]);
			subnets(c, m, m->n_destination_subnets, m->destination_subnets);
			if (m->port > 65535)
				verr(c, m, "port", -1, NULL, "port %u is outside 1..65535", m->port);
		}
		l4_routes(c, t, t->n_route, t->route);
	}
}

/* ---- DestinationRule ------------------------------------------------------------------ */

static int is_prime(uint64_t n)
{
	if (n < 2)
		return 0;
	for (uint64_t d = 2; d * d <= n; d++)
		if (n % d == 0)
			return 0;
	return 1;
}

static void load_balancer(struct vctx *c, const I(LoadBalancerSettings) *lb)
{
	if (!lb)
		return;
	if (lb->lb_policy_case == C(LOAD_BALANCER_SETTINGS__LB_POLICY_CONSISTENT_HASH)) {
		const I(LoadBalancerSettings__ConsistentHashLB) *h = lb->consistent_hash;
		if (h->hash_key_case == C(LOAD_BALANCER_SETTINGS__CONSISTENT_HASH_LB__HASH_KEY__NOT_SET))
			verr(c, h, NULL, -1, NULL, "consistentHash needs one key: httpHeaderName, httpCookie, useSourceIp "
			     "or httpQueryParameterName");
		if (h->hash_key_case == C(LOAD_BALANCER_SETTINGS__CONSISTENT_HASH_LB__HASH_KEY_HTTP_HEADER_NAME) &&
		    !header_name(h->http_header_name))
			verr(c, h, "http_header_name", -1, NULL, "'%s' is not a valid header name", h->http_header_name);
		if (h->hash_key_case == C(LOAD_BALANCER_SETTINGS__CONSISTENT_HASH_LB__HASH_KEY_HTTP_COOKIE)) {
			if (!*h->http_cookie->name)
				verr(c, h->http_cookie, "name", -1, NULL, "a cookie name is required");
			if (h->http_cookie->ttl && (h->http_cookie->ttl->seconds < 0 || h->http_cookie->ttl->nanos < 0))
				verr(c, h->http_cookie, "ttl", -1, NULL, "ttl cannot be negative");
		}
		if (h->hash_key_case == C(LOAD_BALANCER_SETTINGS__CONSISTENT_HASH_LB__HASH_KEY_HTTP_QUERY_PARAMETER_NAME) &&
		    !*h->http_query_parameter_name)
			verr(c, h, "http_query_parameter_name", -1, NULL, "a query parameter name is required");
		if (h->minimum_ring_size && h->hash_algorithm_case != C(LOAD_BALANCER_SETTINGS__CONSISTENT_HASH_LB__HASH_ALGORITHM__NOT_SET))
			verr(c, h, "minimum_ring_size", -1, NULL, "minimumRingSize (deprecated) cannot be combined with ringHash or maglev");
		if (h->hash_algorithm_case == C(LOAD_BALANCER_SETTINGS__CONSISTENT_HASH_LB__HASH_ALGORITHM_MAGLEV) &&
		    h->maglev->table_size && !is_prime(h->maglev->table_size))
			verr(c, h->maglev, "table_size", -1, NULL, "table size %llu is not a prime number",
			     (unsigned long long)h->maglev->table_size);
	}
	const I(LocalityLoadBalancerSetting) *l = lb->locality_lb_setting;
	if (l) {
		if (l->n_distribute && l->n_failover)
			verr(c, l, "failover", -1, NULL, "set distribute or failover, not both");
		for (size_t i = 0; i < l->n_distribute; i++) {
			uint64_t sum = 0;
			for (size_t j = 0; j < l->distribute[i]->n_to; j++)
				sum += l->distribute[i]->to[j]->value;
			if (sum != 100)
				verr(c, l->distribute[i], "to", -1, NULL, "the weights add up to %llu, not 100", (unsigned long long)sum);
		}
		for (size_t i = 0; i < l->n_failover; i++)
			if (!strcmp(l->failover[i]->from, l->failover[i]->to))
				verr(c, l->failover[i], "to", -1, NULL, "failover from a region to the same region");
	}
}

static void nonneg(struct vctx *c, const void *m, const char *field, int32_t v)
{
	if (v < 0)
		verr(c, m, field, -1, NULL, "%d is negative", v);
}

static void client_tls(struct vctx *c, const I(ClientTLSSettings) *t)
{
	if (!t)
		return;
	int files = *t->client_certificate || *t->private_key || *t->ca_certificates;
	switch (t->mode) {
	case C(CLIENT_TLSSETTINGS__TLSMODE__DISABLE):
	case C(CLIENT_TLSSETTINGS__TLSMODE__ISTIO_MUTUAL):
		if (files || *t->credential_name)
			verr(c, t, "mode", -1, NULL, "certificates or credentialName cannot be set with mode %s",
			     t->mode ? "ISTIO_MUTUAL" : "DISABLE");
		break;
	case C(CLIENT_TLSSETTINGS__TLSMODE__MUTUAL):
		if (*t->credential_name) {
			if (files)
				verr(c, t, "credential_name", -1, NULL, "with credentialName, leave clientCertificate, privateKey and caCertificates unset");
		} else {
			if (!*t->client_certificate)
				verr(c, t, "client_certificate", -1, NULL, "MUTUAL TLS needs clientCertificate (or credentialName)");
			if (!*t->private_key)
				verr(c, t, "private_key", -1, NULL, "MUTUAL TLS needs privateKey (or credentialName)");
		}
		break;
	default:
		if (*t->credential_name && files)
			verr(c, t, "credential_name", -1, NULL, "with credentialName, leave clientCertificate, privateKey and caCertificates unset");
	}
}

static void traffic_policy_parts(struct vctx *c, const I(LoadBalancerSettings) *lb, const I(ConnectionPoolSettings) *cp,
                                 const I(OutlierDetection) *od, const I(ClientTLSSettings) *tls)
{
	load_balancer(c, lb);
	if (cp && cp->tcp) {
		nonneg(c, cp->tcp, "max_connections", cp->tcp->max_connections);
		duration(c, cp->tcp, "connect_timeout", cp->tcp->connect_timeout);
		duration(c, cp->tcp, "idle_timeout", cp->tcp->idle_timeout);
		duration(c, cp->tcp, "max_connection_duration", cp->tcp->max_connection_duration);
	}
	if (cp && cp->http) {
		const I(ConnectionPoolSettings__HTTPSettings) *h = cp->http;
		nonneg(c, h, "http1_max_pending_requests", h->http1_max_pending_requests);
		nonneg(c, h, "http2_max_requests", h->http2_max_requests);
		nonneg(c, h, "max_requests_per_connection", h->max_requests_per_connection);
		nonneg(c, h, "max_retries", h->max_retries);
		nonneg(c, h, "max_concurrent_streams", h->max_concurrent_streams);
		duration(c, h, "idle_timeout", h->idle_timeout);
	}
	if (od) {
		nonneg(c, od, "consecutive_errors", od->consecutive_errors);
		duration(c, od, "interval", od->interval);
		duration(c, od, "base_ejection_time", od->base_ejection_time);
		if (od->max_ejection_percent < 0 || od->max_ejection_percent > 100)
			verr(c, od, "max_ejection_percent", -1, NULL, "%d is outside 0..100", od->max_ejection_percent);
		if (od->min_health_percent < 0 || od->min_health_percent > 100)
			verr(c, od, "min_health_percent", -1, NULL, "%d is outside 0..100", od->min_health_percent);
	}
	client_tls(c, tls);
}

static void traffic_policy(struct vctx *c, const I(TrafficPolicy) *tp)
{
	if (!tp)
		return;
	traffic_policy_parts(c, tp->load_balancer, tp->connection_pool, tp->outlier_detection, tp->tls);
	for (size_t i = 0; i < tp->n_port_level_settings; i++) {
		const I(TrafficPolicy__PortTrafficPolicy) *p = tp->port_level_settings[i];
		if (!p->port || p->port->number < 1 || p->port->number > 65535)
			verr(c, p, "port", -1, NULL, "a port number within 1..65535 is required");
		for (size_t j = 0; p->port && j < i; j++)
			if (tp->port_level_settings[j]->port && tp->port_level_settings[j]->port->number == p->port->number)
				verr(c, p, "port", -1, NULL, "port %u has settings already (portLevelSettings[%zu])", p->port->number, j);
		traffic_policy_parts(c, p->load_balancer, p->connection_pool, p->outlier_detection, p->tls);
	}
}

static void destination_rule(struct vctx *c, const I(DestinationRule) *dr)
{
	if (!*dr->host)
		verr(c, dr, "host", -1, NULL, "a host is required");
	else if (!wf_istio_wildcard_host(dr->host))
		verr(c, dr, "host", -1, NULL, "'%s' is not a valid host", dr->host);
	export_to(c, dr, dr->n_export_to, dr->export_to);
	traffic_policy(c, dr->traffic_policy);
	for (size_t i = 0; i < dr->n_subsets; i++) {
		const I(Subset) *s = dr->subsets[i];
		if (!*s->name)
			verr(c, s, "name", -1, NULL, "a subset name is required");
		else if (!wf_istio_dns1123_label(s->name, 63))
			verr(c, s, "name", -1, NULL, "'%s' is not a valid subset name (lower-case letters, digits, '-')", s->name);
		for (size_t j = 0; *s->name && j < i; j++)
			if (!strcmp(dr->subsets[j]->name, s->name))
				verr(c, s, "name", -1, NULL, "subset '%s' is defined twice (subsets[%zu])", s->name, j);
		traffic_policy(c, s->traffic_policy);
	}
}

/* ---- ServiceEntry, WorkloadEntry ------------------------------------------------------ */

static void workload_ports(struct vctx *c, const I(WorkloadEntry) *w, const I(ServiceEntry) *se)
{
	for (size_t i = 0; i < w->n_ports; i++) {
		const I(WorkloadEntry__PortsEntry) *p = w->ports[i];
		if (p->value < 1 || p->value > 65535)
			verr(c, p, NULL, -1, NULL, "port %u is outside 1..65535", p->value);
		int declared = !se;
		for (size_t j = 0; se && j < se->n_ports; j++)
			declared |= !strcmp(se->ports[j]->name, p->key);
		if (!declared)
			verr(c, p, NULL, -1, NULL, "port '%s' is not one of the ServiceEntry's ports", p->key);
	}
}

static void workload_entry(struct vctx *c, const I(WorkloadEntry) *w)
{
	if (!*w->address && !*w->network)
		verr(c, w, "address", -1, NULL, "an address is required");
	else if (*w->address && !wf_istio_ip(w->address) && strncmp(w->address, "unix://", 7) &&
	         !wf_istio_dns1123_subdomain(w->address))
		verr(c, w, "address", -1, NULL, "'%s' is not an IP address, a DNS name or unix://PATH", w->address);
	workload_ports(c, w, NULL);
}

static void service_entry(struct vctx *c, const I(ServiceEntry) *se)
{
	if (!se->n_hosts)
		verr(c, se, "hosts", -1, NULL, "at least one host is required");
	for (size_t i = 0; i < se->n_hosts; i++)
		if (!strcmp(se->hosts[i], "*") || !wf_istio_wildcard_host(se->hosts[i]))
			verr(c, se, "hosts", (long)i, &se->hosts[i], "'%s' is not a valid host", se->hosts[i]);
	for (size_t i = 0; i < se->n_addresses; i++)
		if (!cidr(se->addresses[i]))
			verr(c, se, "addresses", (long)i, &se->addresses[i], "'%s' is not an IP address or CIDR range",
			     se->addresses[i]);
	for (size_t i = 0; i < se->n_ports; i++) {
		const I(ServicePort) *p = se->ports[i];
		if (p->number < 1 || p->number > 65535)
			verr(c, p, "number", -1, NULL, "port %u is outside 1..65535", p->number);
		if (p->target_port > 65535)
			verr(c, p, "target_port", -1, NULL, "port %u is outside 1..65535", p->target_port);
		if (!*p->name)
			verr(c, p, "name", -1, NULL, "a port name is required");
		else if (!wf_istio_dns1123_label(p->name, 63))
			verr(c, p, "name", -1, NULL, "'%s' is not a valid port name (lower-case letters, digits, '-')", p->name);
		if (!in_list_ci(p->protocol, protocols))
			verr(c, p, "protocol", -1, NULL, "'%s' is not a protocol Istio knows (HTTP, HTTPS, GRPC, HTTP2, TCP, TLS, ...)",
			     p->protocol);
		for (size_t j = 0; j < i; j++) {
			if (se->ports[j]->number == p->number)
				verr(c, p, "number", -1, NULL, "port %u is declared twice (ports[%zu])", p->number, j);
			if (*p->name && !strcmp(se->ports[j]->name, p->name))
				verr(c, p, "name", -1, NULL, "port name '%s' is declared twice (ports[%zu])", p->name, j);
		}
	}
	if (se->workload_selector && se->n_endpoints)
		verr(c, se, "workload_selector", -1, NULL, "set endpoints or workloadSelector, not both");
	switch (se->resolution) {
	case C(SERVICE_ENTRY__RESOLUTION__NONE):
		if (se->n_endpoints)
			verr(c, se, "endpoints", -1, NULL, "resolution NONE takes no endpoints (use STATIC or DNS)");
		break;
	case C(SERVICE_ENTRY__RESOLUTION__STATIC):
		if (!se->n_endpoints && !se->workload_selector)
			verr(c, se, "endpoints", -1, NULL, "resolution STATIC needs endpoints (or a workloadSelector)");
		for (size_t i = 0; i < se->n_endpoints; i++)
			if (!wf_istio_ip(se->endpoints[i]->address) && strncmp(se->endpoints[i]->address, "unix://", 7))
				verr(c, se->endpoints[i], "address", -1, NULL, "'%s' is not an IP address (resolution STATIC)",
				     se->endpoints[i]->address);
		break;
	default: /* DNS, DNS_ROUND_ROBIN */
		if (!se->n_endpoints)
			for (size_t i = 0; i < se->n_hosts; i++)
				if (strchr(se->hosts[i], '*'))
					verr(c, se, "hosts", (long)i, &se->hosts[i], "resolution DNS without endpoints resolves the "
					     "hosts themselves: '%s' cannot be a wildcard", se->hosts[i]);
		for (size_t i = 0; i < se->n_endpoints; i++)
			if (!wf_istio_ip(se->endpoints[i]->address) && !wf_istio_dns1123_subdomain(se->endpoints[i]->address))
				verr(c, se->endpoints[i], "address", -1, NULL, "'%s' is neither a DNS name nor an IP address",
				     se->endpoints[i]->address);
		if (se->resolution == C(SERVICE_ENTRY__RESOLUTION__DNS_ROUND_ROBIN) && se->n_endpoints > 1)
			verr(c, se, "endpoints", -1, NULL, "resolution DNS_ROUND_ROBIN takes at most one endpoint");
	}
	for (size_t i = 0; i < se->n_endpoints; i++)
		workload_ports(c, se->endpoints[i], se);
	export_to(c, se, se->n_export_to, se->export_to);
}

/* ---- Gateway, Sidecar ----------------------------------------------------------------- */

/* "ns/host" (ns: a namespace, "*", "." or, for a Sidecar, "~"); a Gateway also takes a bare host */
static int ns_host(const char *s, int gateway)
{
	const char *slash = strchr(s, '/');
	if (!slash)
		return gateway && wf_istio_wildcard_host(s);
	char ns[64];
	size_t l = (size_t)(slash - s);
	if (l >= sizeof(ns))
		return 0;
	memcpy(ns, s, l);
	ns[l] = 0;
	if (strcmp(ns, "*") && strcmp(ns, ".") && (gateway || strcmp(ns, "~")) && !wf_istio_dns1123_label(ns, 63))
		return 0;
	return wf_istio_wildcard_host(slash + 1);
}

static void port_fields(struct vctx *c, const void *m, uint32_t number, const char *protocol, int need_number)
{
	if ((need_number || number) && (number < 1 || number > 65535))
		verr(c, m, "number", -1, NULL, "a port number within 1..65535 is required");
	if ((need_number || *protocol) && !in_list_ci(protocol, protocols))
		verr(c, m, "protocol", -1, NULL, "'%s' is not a protocol Istio knows (HTTP, HTTPS, GRPC, HTTP2, TCP, TLS, ...)",
		     protocol);
}

static void server_tls(struct vctx *c, const I(Server) *s)
{
	const I(ServerTLSSettings) *t = s->tls;
	const char *proto = s->port ? s->port->protocol : "";
	int tls_proto = !strcasecmp(proto, "HTTPS") || !strcasecmp(proto, "TLS");
	if (!t) {
		if (tls_proto)
			verr(c, s, "tls", -1, NULL, "a %s server needs tls settings", proto);
		return;
	}
	if (!tls_proto) {
		if (!t->https_redirect)
			verr(c, s, "tls", -1, NULL, "tls settings on a plain-text %s port (only httpsRedirect belongs there)", proto);
		return;
	}
	switch (t->mode) {
	case C(SERVER_TLSSETTINGS__TLSMODE__SIMPLE):
		if (!*t->credential_name && (!*t->server_certificate || !*t->private_key))
			verr(c, t, "mode", -1, NULL, "SIMPLE TLS needs credentialName, or serverCertificate and privateKey");
		break;
	case C(SERVER_TLSSETTINGS__TLSMODE__MUTUAL):
	case C(SERVER_TLSSETTINGS__TLSMODE__OPTIONAL_MUTUAL):
		if (!*t->credential_name) {
			if (!*t->server_certificate || !*t->private_key)
				verr(c, t, "mode", -1, NULL, "MUTUAL TLS needs credentialName, or serverCertificate and privateKey");
			if (!*t->ca_certificates)
				verr(c, t, "ca_certificates", -1, NULL, "MUTUAL TLS needs caCertificates (the client CA bundle) or credentialName");
		}
		break;
	default:
		break;
	}
	if (t->min_protocol_version && t->max_protocol_version && t->min_protocol_version > t->max_protocol_version)
		verr(c, t, "min_protocol_version", -1, NULL, "minProtocolVersion is above maxProtocolVersion");
}

static void gateway(struct vctx *c, const I(Gateway) *g)
{
	if (!g->n_servers)
		verr(c, g, "servers", -1, NULL, "at least one server is required");
	for (size_t i = 0; i < g->n_servers; i++) {
		const I(Server) *s = g->servers[i];
		if (!s->port)
			verr(c, s, "port", -1, NULL, "a port is required");
		else
			port_fields(c, s->port, s->port->number, s->port->protocol, 1);
		if (!s->n_hosts)
			verr(c, s, "hosts", -1, NULL, "at least one host is required");
		for (size_t j = 0; j < s->n_hosts; j++)
			if (!ns_host(s->hosts[j], 1))
				verr(c, s, "hosts", (long)j, &s->hosts[j], "'%s' is not HOST or NAMESPACE/HOST", s->hosts[j]);
		if (*s->bind && !wf_istio_ip(s->bind) && strncmp(s->bind, "unix://", 7))
			verr(c, s, "bind", -1, NULL, "'%s' is not an IP address or unix://PATH", s->bind);
		server_tls(c, s);
	}
}

static void sidecar(struct vctx *c, const I(Sidecar) *sc)
{
	for (size_t i = 0; i < sc->n_egress; i++) {
		const I(IstioEgressListener) *e = sc->egress[i];
		if (!e->n_hosts)
			verr(c, e, "hosts", -1, NULL, "at least one host (NAMESPACE/HOST) is required");
		for (size_t j = 0; j < e->n_hosts; j++)
			if (!ns_host(e->hosts[j], 0))
				verr(c, e, "hosts", (long)j, &e->hosts[j], "'%s' is not NAMESPACE/HOST (e.g. \"./*\", "
				     "\"istio-system/*\", \"*/reviews.default.svc.cluster.local\")", e->hosts[j]);
		if (e->port)
			port_fields(c, e->port, e->port->number, e->port->protocol, 1);
		else if (i + 1 < sc->n_egress)
			verr(c, e, NULL, -1, NULL, "the egress listener without a port must be the last one");
		if (*e->bind && !wf_istio_ip(e->bind) && strncmp(e->bind, "unix://", 7))
			verr(c, e, "bind", -1, NULL, "'%s' is not an IP address or unix://PATH", e->bind);
	}
	for (size_t i = 0; i < sc->n_ingress; i++) {
		const I(IstioIngressListener) *in = sc->ingress[i];
		if (!in->port)
			verr(c, in, "port", -1, NULL, "a port is required");
		else
			port_fields(c, in->port, in->port->number, in->port->protocol, 1);
		for (size_t j = 0; in->port && j < i; j++)
			if (sc->ingress[j]->port && sc->ingress[j]->port->number == in->port->number)
				verr(c, in->port, "number", -1, NULL, "port %u has an ingress listener already (ingress[%zu])",
				     in->port->number, j);
		const char *de = in->default_endpoint;
		if (*de && strncmp(de, "unix://", 7)) {
			const char *colon = strrchr(de, ':');
			char host[64];
			size_t l = colon ? (size_t)(colon - de) : 0;
			long port = colon ? strtol(colon + 1, NULL, 10) : 0;
			if (l < sizeof(host)) {
				memcpy(host, de, l);
				host[l] = 0;
			}
			if (!colon || l >= sizeof(host) || !wf_istio_ip(host) || port < 1 || port > 65535)
				verr(c, in, "default_endpoint", -1, NULL, "'%s' is not IP:PORT (127.0.0.1:8080, 0.0.0.0:8080) or "
				     "unix://PATH", de);
		}
	}
	const I(OutboundTrafficPolicy) *p = sc->outbound_traffic_policy;
	if (p && p->egress_proxy) {
		if (p->mode != C(OUTBOUND_TRAFFIC_POLICY__MODE__ALLOW_ANY))
			verr(c, p, "egress_proxy", -1, NULL, "egressProxy needs mode ALLOW_ANY");
		destination(c, p->egress_proxy, p, "egress_proxy");
	}
}

int wf_istio_validate(const struct wf_istio_obj *o, struct wf_errs *errs)
{
	struct vctx c = {.o = o, .errs = errs};
	switch (o->kind) {
	case WF_KIND_VIRTUAL_SERVICE: virtual_service(&c, (const I(VirtualService) *)o->spec); break;
	case WF_KIND_DESTINATION_RULE: destination_rule(&c, (const I(DestinationRule) *)o->spec); break;
	case WF_KIND_SERVICE_ENTRY: service_entry(&c, (const I(ServiceEntry) *)o->spec); break;
	case WF_KIND_WORKLOAD_ENTRY: workload_entry(&c, (const I(WorkloadEntry) *)o->spec); break;
	case WF_KIND_GATEWAY: gateway(&c, (const I(Gateway) *)o->spec); break;
	case WF_KIND_SIDECAR: sidecar(&c, (const I(Sidecar) *)o->spec); break;
	default: break;
	}
	/* valid as Istio has it, but what Weft cannot give any proxy yet (ISTIO_MUTUAL without the
	 * mesh CA, ...) is refused here too: the file keeps its last good objects, instead of every
	 * proxy that sees the host failing its translation */
	char err[1024];
	if (!c.n && wf_translate_check(o, err, sizeof(err)) < 0) {
		wf_errs_add(errs, "%s", err);
		c.n++;
	}
	return c.n;
}
