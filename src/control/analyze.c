/* Cross-object analysis (see analyze.h).
 *
 * Which hosts exist. Weft has no Kubernetes API to ask: services come from ServiceEntry
 * objects and, at run time, from sidecars that register their workload. Files alone show only
 * the first, so a host is known when a ServiceEntry declares it (wildcards honoured); a route
 * to any other host - a short name such as "ratings" included, read as
 * ratings.NAMESPACE.svc.cluster.local as Istio reads it - is reported as not found. A mesh
 * whose services register themselves declares them with a ServiceEntry
 * (location: MESH_INTERNAL) to analyze cleanly. */
#include "control/analyze.h"

#include "istio/networking/v1alpha3/destination_rule.pb-c.h"
#include "istio/networking/v1alpha3/gateway.pb-c.h"
#include "istio/networking/v1alpha3/service_entry.pb-c.h"
#include "istio/networking/v1alpha3/virtual_service.pb-c.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define I(x) Istio__Networking__V1alpha3__##x

#define HOST_LEN 320

const char *wf_istio_fqdn(const char *host, const char *ns, char *buf, size_t len)
{
	if (strchr(host, '.') || !strcmp(host, "*"))
		snprintf(buf, len, "%s", host);
	else
		snprintf(buf, len, "%s.%s.svc.cluster.local", host, ns);
	return buf;
}

int wf_istio_host_match(const char *pattern, const char *h)
{
	if (!strcmp(pattern, "*"))
		return 1;
	if (pattern[0] == '*' && pattern[1] == '.') {
		size_t pl = strlen(pattern + 1), hl = strlen(h);
		return hl > pl && !strcasecmp(h + hl - pl, pattern + 1);
	}
	return !strcasecmp(pattern, h);
}

static const char *const level_names[] = {"Info", "Warning", "Error"};

static void add(struct wf_findings *out, enum wf_level level, const char *code, const char *name,
                const struct wf_istio_obj *o, const void *key, uint32_t field_id, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* A finding about object o, placed at the mark of (key, field_id) when there is one. */
static void add(struct wf_findings *out, enum wf_level level, const char *code, const char *name,
                const struct wf_istio_obj *o, const void *key, uint32_t field_id, const char *fmt, ...)
{
	if (out->n == out->cap) {
		out->cap = out->cap ? out->cap * 2 : 16;
		out->v = realloc(out->v, out->cap * sizeof(*out->v));
		if (!out->v)
			abort();
	}
	struct wf_finding *f = &out->v[out->n++];
	*f = (struct wf_finding){.level = level, .code = code, .name = name, .obj = o, .line = o->line, .col = o->col};
	if (key)
		wf_cfgdoc_pos(o->doc, key, field_id, &f->line, &f->col);
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&f->msg, fmt, ap) < 0)
		abort();
	va_end(ap);
}

void wf_findings_free(struct wf_findings *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->v[i].msg);
	free(f->v);
	memset(f, 0, sizeof(*f));
}

void wf_finding_format(const struct wf_finding *f, char *buf, size_t len)
{
	snprintf(buf, len, "%s [%s] (%s %s/%s %s:%u:%u) %s", level_names[f->level], f->code,
	         wf_istio_kind_name(f->obj->kind), f->obj->ns, f->obj->name, wf_cfgdoc_source(f->obj->doc), f->line,
	         f->col, f->msg);
}

/* ---- lookups ------------------------------------------------------------------------------ */

static int host_known(const struct wf_store *s, const char *fq)
{
	struct wf_store_iter it = {0};
	char buf[HOST_LEN];
	for (const struct wf_istio_obj *o; (o = wf_store_next(s, &it));) {
		if (o->kind != WF_KIND_SERVICE_ENTRY)
			continue;
		const I(ServiceEntry) *se = (const I(ServiceEntry) *)o->spec;
		for (size_t i = 0; i < se->n_hosts; i++)
			if (wf_istio_host_match(wf_istio_fqdn(se->hosts[i], o->ns, buf, sizeof(buf)), fq))
				return 1;
	}
	return 0;
}

static int subset_known(const struct wf_store *s, const char *fq, const char *subset)
{
	struct wf_store_iter it = {0};
	char buf[HOST_LEN];
	for (const struct wf_istio_obj *o; (o = wf_store_next(s, &it));) {
		if (o->kind != WF_KIND_DESTINATION_RULE)
			continue;
		const I(DestinationRule) *dr = (const I(DestinationRule) *)o->spec;
		if (!wf_istio_host_match(wf_istio_fqdn(dr->host, o->ns, buf, sizeof(buf)), fq))
			continue;
		for (size_t i = 0; i < dr->n_subsets; i++)
			if (!strcmp(dr->subsets[i]->name, subset))
				return 1;
	}
	return 0;
}

/* A VirtualService's gateway reference as "ns/name" ("mesh" stays "mesh"). */
static const char *gateway_key(const char *ref, const char *ns, char *buf, size_t len)
{
	if (!strcmp(ref, "mesh") || strchr(ref, '/'))
		snprintf(buf, len, "%s", ref);
	else
		snprintf(buf, len, "%s/%s", ns, ref);
	return buf;
}

static const struct wf_istio_obj *find_gateway(const struct wf_store *s, const char *key)
{
	char ns[256];
	const char *slash = strchr(key, '/');
	if (!slash || (size_t)(slash - key) >= sizeof(ns))
		return NULL;
	memcpy(ns, key, (size_t)(slash - key));
	ns[slash - key] = 0;
	return wf_store_find(s, WF_KIND_GATEWAY, ns, slash + 1);
}

/* ---- the analyzers ---------------------------------------------------------------------- */

static void check_destination(const struct wf_store *s, struct wf_findings *out, const struct wf_istio_obj *o,
                              const I(Destination) *d)
{
	if (!d || !*d->host)
		return;
	char fq[HOST_LEN];
	wf_istio_fqdn(d->host, o->ns, fq, sizeof(fq));
	const ProtobufCFieldDescriptor *hf = protobuf_c_message_descriptor_get_field_by_name(d->base.descriptor, "host");
	const ProtobufCFieldDescriptor *sf = protobuf_c_message_descriptor_get_field_by_name(d->base.descriptor, "subset");
	if (!host_known(s, fq))
		add(out, WF_LEVEL_ERROR, "IST0101", "ReferencedResourceNotFound", o, d, hf->id,
		    "Referenced host not found: \"%s\"", d->host);
	if (*d->subset && !subset_known(s, fq, d->subset))
		add(out, WF_LEVEL_ERROR, "IST0101", "ReferencedResourceNotFound", o, d, sf->id,
		    "Referenced host+subset in destinationrule not found: \"%s+%s\"", d->host, d->subset);
}

static void check_vs_destinations(const struct wf_store *s, struct wf_findings *out, const struct wf_istio_obj *o)
{
	const I(VirtualService) *vs = (const I(VirtualService) *)o->spec;
	for (size_t i = 0; i < vs->n_http; i++) {
		const I(HTTPRoute) *r = vs->http[i];
		for (size_t j = 0; j < r->n_route; j++)
			check_destination(s, out, o, r->route[j]->destination);
		check_destination(s, out, o, r->mirror);
		for (size_t j = 0; j < r->n_mirrors; j++)
			check_destination(s, out, o, r->mirrors[j]->destination);
	}
	for (size_t i = 0; i < vs->n_tcp; i++)
		for (size_t j = 0; j < vs->tcp[i]->n_route; j++)
			check_destination(s, out, o, vs->tcp[i]->route[j]->destination);
	for (size_t i = 0; i < vs->n_tls; i++)
		for (size_t j = 0; j < vs->tls[i]->n_route; j++)
			check_destination(s, out, o, vs->tls[i]->route[j]->destination);
}

/* Gateways named by the VirtualService exist; its hosts are served by them (IST0132). */
static void check_vs_gateways(const struct wf_store *s, struct wf_findings *out, const struct wf_istio_obj *o)
{
	const I(VirtualService) *vs = (const I(VirtualService) *)o->spec;
	char key[HOST_LEN];
	for (size_t i = 0; i < vs->n_gateways; i++) {
		gateway_key(vs->gateways[i], o->ns, key, sizeof(key));
		if (!strcmp(key, "mesh"))
			continue;
		const struct wf_istio_obj *g = find_gateway(s, key);
		if (!g) {
			add(out, WF_LEVEL_ERROR, "IST0101", "ReferencedResourceNotFound", o, &vs->gateways[i], 0,
			    "Referenced gateway not found: \"%s\"", vs->gateways[i]);
			continue;
		}
		const I(Gateway) *gw = (const I(Gateway) *)g->spec;
		char missing[1024] = "";
		size_t ml = 0;
		for (size_t h = 0; h < vs->n_hosts; h++) {
			int served = 0;
			for (size_t k = 0; k < gw->n_servers && !served; k++)
				for (size_t m = 0; m < gw->servers[k]->n_hosts && !served; m++) {
					const char *gh = gw->servers[k]->hosts[m], *slash = strchr(gh, '/');
					gh = slash ? slash + 1 : gh;
					/* either may be the wider one: "*" on the gateway, or "*.example.com" on both */
					served = wf_istio_host_match(gh, vs->hosts[h]) || wf_istio_host_match(vs->hosts[h], gh);
				}
			if (!served && ml < sizeof(missing))
				ml += (size_t)snprintf(missing + ml, sizeof(missing) - ml, "%s%s", ml ? " " : "", vs->hosts[h]);
		}
		if (ml)
			add(out, WF_LEVEL_WARNING, "IST0132", "VirtualServiceHostNotFoundInGateway", o, &vs->gateways[i], 0,
			    "one or more host [%s] defined in VirtualService %s/%s not found in Gateway %s.", missing, o->ns,
			    o->name, key);
	}
}

/* Two VirtualServices for one host on one gateway: which one a proxy follows is undefined. */
static void check_conflicts(const struct wf_store *s, struct wf_findings *out, const struct wf_istio_obj *o)
{
	const I(VirtualService) *vs = (const I(VirtualService) *)o->spec;
	char gk[HOST_LEN], fq[HOST_LEN], ogk[HOST_LEN], ofq[HOST_LEN];
	size_t ng = vs->n_gateways ? vs->n_gateways : 1;
	for (size_t gi = 0; gi < ng; gi++) {
		gateway_key(vs->n_gateways ? vs->gateways[gi] : "mesh", o->ns, gk, sizeof(gk));
		for (size_t hi = 0; hi < vs->n_hosts; hi++) {
			wf_istio_fqdn(vs->hosts[hi], o->ns, fq, sizeof(fq));
			char names[1024];
			size_t nl = (size_t)snprintf(names, sizeof(names), "%s/%s", o->ns, o->name);
			int others = 0;
			struct wf_store_iter it = {0};
			for (const struct wf_istio_obj *p; (p = wf_store_next(s, &it));) {
				if (p == o || p->kind != WF_KIND_VIRTUAL_SERVICE)
					continue;
				const I(VirtualService) *pv = (const I(VirtualService) *)p->spec;
				int same = 0;
				size_t png = pv->n_gateways ? pv->n_gateways : 1;
				for (size_t a = 0; a < png && !same; a++) {
					if (strcmp(gateway_key(pv->n_gateways ? pv->gateways[a] : "mesh", p->ns, ogk, sizeof(ogk)), gk))
						continue;
					for (size_t b = 0; b < pv->n_hosts && !same; b++)
						same = !strcasecmp(wf_istio_fqdn(pv->hosts[b], p->ns, ofq, sizeof(ofq)), fq);
				}
				if (same && nl < sizeof(names)) {
					nl += (size_t)snprintf(names + nl, sizeof(names) - nl, ",%s/%s", p->ns, p->name);
					others++;
				}
			}
			if (others)
				add(out, WF_LEVEL_ERROR, "IST0109", "ConflictingMeshGatewayVirtualServiceHosts", o, &vs->hosts[hi], 0,
				    "The VirtualServices %s associated with %s%s define the same host \"%s\", so which one applies "
				    "is undefined. Merge them into one VirtualService.", names,
				    strcmp(gk, "mesh") ? "gateway " : "", strcmp(gk, "mesh") ? gk : "mesh gateway", fq);
		}
	}
}

static void check_gateway_used(const struct wf_store *s, struct wf_findings *out, const struct wf_istio_obj *g)
{
	char key[HOST_LEN], want[HOST_LEN];
	snprintf(want, sizeof(want), "%s/%s", g->ns, g->name);
	struct wf_store_iter it = {0};
	for (const struct wf_istio_obj *o; (o = wf_store_next(s, &it));) {
		if (o->kind != WF_KIND_VIRTUAL_SERVICE)
			continue;
		const I(VirtualService) *vs = (const I(VirtualService) *)o->spec;
		for (size_t i = 0; i < vs->n_gateways; i++)
			if (!strcmp(gateway_key(vs->gateways[i], o->ns, key, sizeof(key)), want))
				return;
	}
	add(out, WF_LEVEL_WARNING, "WFT0001", "GatewayWithoutVirtualService", g, NULL, 0,
	    "No VirtualService is bound to Gateway %s: its servers have no routes.", want);
}

int wf_analyze(const struct wf_store *s, struct wf_findings *out)
{
	struct wf_store_iter it = {0};
	for (const struct wf_istio_obj *o; (o = wf_store_next(s, &it));) {
		if (o->kind == WF_KIND_VIRTUAL_SERVICE) {
			check_vs_destinations(s, out, o);
			check_vs_gateways(s, out, o);
			check_conflicts(s, out, o);
		} else if (o->kind == WF_KIND_GATEWAY) {
			check_gateway_used(s, out, o);
		}
	}
	int errors = 0;
	for (size_t i = 0; i < out->n; i++)
		errors += out->v[i].level == WF_LEVEL_ERROR;
	return errors;
}
