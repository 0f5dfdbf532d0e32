/* Build the mesh model from the store and the registry (control/mesh.h). */
#include "control/mesh.h"

#include "control/mesh_int.h"
#include "xds/cfgdoc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Istio__Networking__V1alpha3__ServiceEntry ServiceEntry;
typedef Istio__Networking__V1alpha3__WorkloadEntry WorkloadEntry;

enum wf_mesh_proto wf_mesh_protocol(const char *protocol, const char *name)
{
	static const struct { const char *s; enum wf_mesh_proto p; } names[] = {
	    {"http", WF_MP_HTTP}, {"http2", WF_MP_HTTP2}, {"grpc", WF_MP_GRPC}, {"grpc-web", WF_MP_HTTP},
	    {"tls", WF_MP_TLS}, {"https", WF_MP_TLS}, {"tcp", WF_MP_TCP}, {"mongo", WF_MP_TCP},
	    {"mysql", WF_MP_TCP}, {"redis", WF_MP_TCP}};
	char buf[32];
	const char *src = protocol && *protocol ? protocol : name ? name : "";
	size_t n = 0;
	/* a name counts by its prefix before '-' ("http-web"), the protocol as a whole */
	while (src[n] && n + 1 < sizeof(buf) && (src == protocol || src[n] != '-')) {
		buf[n] = (char)(src[n] >= 'A' && src[n] <= 'Z' ? src[n] + 32 : src[n]);
		n++;
	}
	buf[n] = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(buf, names[i].s))
			return names[i].p;
	return WF_MP_TCP;
}

char *wf_mesh_fqdn(const char *host, const char *ns)
{
	if (strchr(host, '.') || strchr(host, '*'))
		return strdup(host);
	size_t n = strlen(host) + strlen(ns) + 32;
	char *s = malloc(n);
	snprintf(s, n, "%s.%s.svc.cluster.local", host, ns);
	return s;
}

int wf_labels_match(const struct wf_kv *sel, size_t n_sel, const struct wf_kv *labels, size_t n_labels)
{
	for (size_t i = 0; i < n_sel; i++) {
		size_t k = 0;
		while (k < n_labels && (strcmp(sel[i].key, labels[k].key) || strcmp(sel[i].value, labels[k].value)))
			k++;
		if (k == n_labels)
			return 0;
	}
	return 1;
}

int wf_selector_selects(const Istio__Networking__V1alpha3__WorkloadSelector *sel, const char *ns,
                        const struct wf_workload *w)
{
	if (strcmp(w->ns, ns))
		return 0;
	for (size_t i = 0; i < sel->n_labels; i++) {
		struct wf_kv kv = {sel->labels[i]->key, sel->labels[i]->value};
		if (!wf_labels_match(&kv, 1, w->labels, w->n_labels))
			return 0;
	}
	return 1;
}

int wf_exported(char *const *export_to, size_t n, const char *owner_ns, const char *ns)
{
	if (!n)
		return 1;
	for (size_t i = 0; i < n; i++) {
		const char *e = export_to[i];
		if (!strcmp(e, "*") || (!strcmp(e, ".") && !strcmp(owner_ns, ns)) || !strcmp(e, ns))
			return 1;
	}
	return 0;
}

int wf_service_visible(const struct wf_service *s, const char *ns)
{
	return wf_exported(s->export_to, s->n_export_to, s->ns, ns);
}

uint32_t wf_workload_port(const struct wf_workload *w, const struct wf_mesh_port *p)
{
	for (size_t i = 0; i < w->n_ports; i++)
		if (p->name && !strcmp(w->ports[i].name, p->name))
			return w->ports[i].number;
	return p->target_port ? p->target_port : p->number;
}

/* ---- ownership ----------------------------------------------------------------------------- */

const char *wf_mesh_own(struct wf_mesh *m, char *s)
{
	if (m->n_strs == m->cap_strs)
		m->strs = realloc(m->strs, (m->cap_strs = m->cap_strs * 2 + 16) * sizeof(*m->strs));
	return m->strs[m->n_strs++] = s;
}

static struct wf_workload *own_wl(struct wf_mesh *m, struct wf_workload *w)
{
	if (m->n_wls == m->cap_wls)
		m->wls = realloc(m->wls, (m->cap_wls = m->cap_wls * 2 + 16) * sizeof(*m->wls));
	return m->wls[m->n_wls++] = w;
}

static void hold_doc(struct wf_mesh *m, struct wf_cfgdoc *d)
{
	m->docs = realloc(m->docs, (m->n_docs + 1) * sizeof(*m->docs));
	m->docs[m->n_docs++] = wf_cfgdoc_ref(d);
}

static char *dup0(const char *s)
{
	return strdup(s ? s : "");
}

void wf_workload_free(struct wf_workload *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n_labels; i++) {
		free(w->labels[i].key);
		free(w->labels[i].value);
	}
	free(w->labels);
	for (size_t i = 0; i < w->n_ports; i++)
		free(w->ports[i].name);
	free(w->ports);
	free(w->name);
	free(w->ns);
	free(w->address);
	free(w->locality);
	free(w->network);
	free(w->service_account);
	free(w->node_id);
	free(w);
}

struct wf_workload *wf_workload_dup(const struct wf_workload *s)
{
	struct wf_workload *w = calloc(1, sizeof(*w));
	w->name = dup0(s->name);
	w->ns = dup0(s->ns);
	w->address = dup0(s->address);
	w->locality = dup0(s->locality);
	w->network = dup0(s->network);
	w->service_account = dup0(s->service_account);
	w->node_id = s->node_id ? strdup(s->node_id) : NULL;
	w->weight = s->weight;
	w->labels = calloc(s->n_labels + 1, sizeof(*w->labels));
	for (size_t i = 0; i < s->n_labels; i++)
		w->labels[i] = (struct wf_kv){strdup(s->labels[i].key), strdup(s->labels[i].value)};
	w->n_labels = s->n_labels;
	w->ports = calloc(s->n_ports + 1, sizeof(*w->ports));
	for (size_t i = 0; i < s->n_ports; i++)
		w->ports[i] = (struct wf_named_port){strdup(s->ports[i].name), s->ports[i].number};
	w->n_ports = s->n_ports;
	return w;
}

/* A WorkloadEntry message (an object's spec or an inline ServiceEntry endpoint). */
static struct wf_workload *from_we(const WorkloadEntry *we, const char *name, const char *ns)
{
	struct wf_workload *w = calloc(1, sizeof(*w));
	w->name = dup0(name);
	w->ns = dup0(ns);
	w->address = dup0(we->address);
	w->locality = dup0(we->locality);
	w->network = dup0(we->network);
	w->service_account = dup0(we->service_account);
	w->weight = we->weight;
	w->labels = calloc(we->n_labels + 1, sizeof(*w->labels));
	for (size_t i = 0; i < we->n_labels; i++)
		w->labels[i] = (struct wf_kv){strdup(we->labels[i]->key), strdup(we->labels[i]->value)};
	w->n_labels = we->n_labels;
	w->ports = calloc(we->n_ports + 1, sizeof(*w->ports));
	for (size_t i = 0; i < we->n_ports; i++)
		w->ports[i] = (struct wf_named_port){strdup(we->ports[i]->key), we->ports[i]->value};
	w->n_ports = we->n_ports;
	return w;
}

/* ---- build --------------------------------------------------------------------------------- */

static void add_ep(struct wf_service *s, const struct wf_workload *w)
{
	s->eps = realloc(s->eps, (s->n_eps + 1) * sizeof(*s->eps));
	s->eps[s->n_eps++] = w;
}

/* by host, then store order */
static int cmp_svc(const void *a, const void *b)
{
	const struct wf_service *x = a, *y = b;
	int c = strcmp(x->host, y->host);
	return c ? c : x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_vsref(const void *a, const void *b)
{
	const struct wf_mesh_vsref *x = a, *y = b;
	int c = strcmp(x->host, y->host);
	return c ? c : x->vs < y->vs ? -1 : x->vs > y->vs;
}

/* the endpoint index: by key, then service and endpoint order (the first one counts) */
static int cmp_epref(const void *a, const void *b)
{
	const struct wf_mesh_epref *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	if (c)
		return c;
	return x->svc != y->svc ? (x->svc < y->svc ? -1 : 1) : (x->ep > y->ep) - (x->ep < y->ep);
}

/* by host, then store order (the first DestinationRule for a host counts) */
static int cmp_dr(const void *a, const void *b)
{
	const struct wf_mesh_dr *x = a, *y = b;
	int c = strcmp(x->host, y->host);
	return c ? c : x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* One service per host of a ServiceEntry (duplicates are dropped after sorting). */
static void add_service_entry(struct wf_mesh *m, const struct wf_istio_obj *o, struct wf_workload **wes, size_t n_wes,
                              const struct wf_registry *reg, size_t *cap)
{
	const ServiceEntry *se = (const ServiceEntry *)o->spec;
	for (size_t h = 0; h < se->n_hosts; h++) {
		if (m->n_svcs == *cap)
			m->svcs = realloc(m->svcs, (*cap = *cap * 2 + 16) * sizeof(*m->svcs));
		struct wf_service *s = &m->svcs[m->n_svcs++];
		memset(s, 0, sizeof(*s));
		s->host = se->hosts[h];
		s->seq = m->n_svcs;
		s->ns = wf_mesh_own(m, strdup(o->ns));
		s->se_name = wf_mesh_own(m, strdup(o->name));
		s->resolution = se->resolution;
		s->location = se->location;
		s->export_to = se->export_to;
		s->n_export_to = se->n_export_to;
		s->addresses = se->addresses;
		s->n_addresses = se->n_addresses;
		s->ports = calloc(se->n_ports + 1, sizeof(*s->ports));
		s->n_ports = se->n_ports;
		for (size_t p = 0; p < se->n_ports; p++) {
			const Istio__Networking__V1alpha3__ServicePort *sp = se->ports[p];
			s->ports[p] = (struct wf_mesh_port){sp->number, sp->target_port, sp->name, sp->protocol,
			                                    wf_mesh_protocol(sp->protocol, sp->name)};
		}
		for (size_t e = 0; e < se->n_endpoints; e++)
			add_ep(s, own_wl(m, from_we(se->endpoints[e], "", o->ns)));
		if (se->workload_selector) {
			const Istio__Networking__V1alpha3__WorkloadSelector *sel = se->workload_selector;
			for (size_t w = 0; w < n_wes; w++)
				if (wf_selector_selects(sel, o->ns, wes[w]))
					add_ep(s, wes[w]);
			for (size_t w = 0; reg && w < wf_registry_count(reg); w++) {
				const struct wf_workload *rw = wf_registry_at(reg, w);
				if (wf_selector_selects(sel, o->ns, rw))
					add_ep(s, own_wl(m, wf_workload_dup(rw)));
			}
		}
	}
}

struct wf_mesh *wf_mesh_build(const struct wf_store *st, const struct wf_registry *reg)
{
	struct wf_mesh *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	struct wf_store_iter it = {0};
	const struct wf_istio_obj *o;
	/* WorkloadEntry objects first: ServiceEntries select them */
	struct wf_workload **wes = NULL;
	size_t n_wes = 0;
	for (o = st ? wf_store_next(st, &it) : NULL; o; o = wf_store_next(st, &it)) {
		if (o->kind != WF_KIND_WORKLOAD_ENTRY)
			continue;
		wes = realloc(wes, (n_wes + 1) * sizeof(*wes));
		wes[n_wes++] = own_wl(m, from_we((const WorkloadEntry *)o->spec, o->name, o->ns));
	}
	size_t cap = 0;
	memset(&it, 0, sizeof(it));
	for (o = st ? wf_store_next(st, &it) : NULL; o; o = wf_store_next(st, &it)) {
		switch (o->kind) {
		case WF_KIND_SERVICE_ENTRY:
			add_service_entry(m, o, wes, n_wes, reg, &cap);
			break;
		case WF_KIND_VIRTUAL_SERVICE: {
			const Istio__Networking__V1alpha3__VirtualService *vs = (const void *)o->spec;
			m->vss = realloc(m->vss, (m->n_vss + 1) * sizeof(*m->vss));
			struct wf_mesh_vs *v = &m->vss[m->n_vss++];
			v->name = wf_mesh_own(m, strdup(o->name));
			v->ns = wf_mesh_own(m, strdup(o->ns));
			v->doc = o->doc;
			v->vs = vs;
			v->hosts = calloc(vs->n_hosts + 1, sizeof(*v->hosts));
			v->n_hosts = vs->n_hosts;
			for (size_t i = 0; i < vs->n_hosts; i++)
				v->hosts[i] = wf_mesh_fqdn(vs->hosts[i], o->ns);
			for (size_t i = 0; i < vs->n_http; i++)
				for (size_t k = 0; k < vs->http[i]->n_match; k++)
					m->source_labels |= vs->http[i]->match[k]->n_source_labels > 0;
			v->mesh = !vs->n_gateways;
			for (size_t i = 0; i < vs->n_gateways; i++)
				v->mesh |= !strcmp(vs->gateways[i], "mesh");
			break;
		}
		case WF_KIND_DESTINATION_RULE: {
			const Istio__Networking__V1alpha3__DestinationRule *dr = (const void *)o->spec;
			m->drs = realloc(m->drs, (m->n_drs + 1) * sizeof(*m->drs));
			m->drs[m->n_drs] = (struct wf_mesh_dr){wf_mesh_own(m, strdup(o->name)), wf_mesh_own(m, strdup(o->ns)), o->doc,
			                                       wf_mesh_fqdn(dr->host, o->ns), dr, m->n_drs};
			m->n_drs++;
			break;
		}
		case WF_KIND_SIDECAR:
			m->sidecars = realloc(m->sidecars, (m->n_sidecars + 1) * sizeof(*m->sidecars));
			m->sidecars[m->n_sidecars++] = (struct wf_mesh_sidecar){
			    wf_mesh_own(m, strdup(o->name)), wf_mesh_own(m, strdup(o->ns)), o->doc, (const void *)o->spec};
			break;
		case WF_KIND_GATEWAY:
			m->gws = realloc(m->gws, (m->n_gws + 1) * sizeof(*m->gws));
			m->gws[m->n_gws++] = (struct wf_mesh_gateway){wf_mesh_own(m, strdup(o->name)),
			                                              wf_mesh_own(m, strdup(o->ns)), o->doc, (const void *)o->spec};
			break;
		default:
			continue;
		}
		hold_doc(m, o->doc);
	}
	free(wes);
	/* the first ServiceEntry (in store order) naming a host wins, as validation and analysis
	 * report the clash */
	if (m->n_svcs)
		qsort(m->svcs, m->n_svcs, sizeof(*m->svcs), cmp_svc);
	size_t k = 0;
	for (size_t i = 0; i < m->n_svcs; i++) {
		if (k && !strcmp(m->svcs[k - 1].host, m->svcs[i].host)) {
			free(m->svcs[i].ports);
			free(m->svcs[i].eps);
			continue;
		}
		m->svcs[k++] = m->svcs[i];
	}
	m->n_svcs = k;
	for (size_t i = 0; i < m->n_vss; i++)
		for (size_t h = 0; h < m->vss[i].n_hosts; h++) {
			struct wf_mesh_vsref r = {m->vss[i].hosts[h], i};
			if (r.host[0] == '*')
				XPUSH(m->vs_wild, m->n_vs_wild, r);
			else
				XPUSH(m->vs_exact, m->n_vs_exact, r);
		}
	if (m->n_vs_exact)
		qsort(m->vs_exact, m->n_vs_exact, sizeof(*m->vs_exact), cmp_vsref);
	if (m->n_drs)
		qsort(m->drs, m->n_drs, sizeof(*m->drs), cmp_dr);
	for (size_t i = 0; i < m->n_svcs; i++)
		for (size_t e = 0; e < m->svcs[i].n_eps; e++) {
			const struct wf_workload *w = m->svcs[i].eps[e];
			struct wf_mesh_epref r = {w->node_id ? w->node_id : w->address, i, e};
			if (r.key && *r.key)
				XPUSH(m->ep_index, m->n_ep_index, r);
		}
	if (m->n_ep_index)
		qsort(m->ep_index, m->n_ep_index, sizeof(*m->ep_index), cmp_epref);
	return m;
}

static int cmp_epkey(const void *key, const void *e)
{
	return strcmp(key, ((const struct wf_mesh_epref *)e)->key);
}

size_t wf_mesh_eps_of(const struct wf_mesh *m, const char *key, size_t *first)
{
	const struct wf_mesh_epref *hit =
	    m->n_ep_index ? bsearch(key, m->ep_index, m->n_ep_index, sizeof(*m->ep_index), cmp_epkey) : NULL;
	*first = 0;
	if (!hit)
		return 0;
	size_t lo = (size_t)(hit - m->ep_index), hi = lo + 1; /* the run of equal keys around it */
	while (lo > 0 && !strcmp(m->ep_index[lo - 1].key, key))
		lo--;
	while (hi < m->n_ep_index && !strcmp(m->ep_index[hi].key, key))
		hi++;
	*first = lo;
	return hi - lo;
}

void wf_mesh_free(struct wf_mesh *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_svcs; i++) {
		free(m->svcs[i].ports);
		free(m->svcs[i].eps);
	}
	free(m->svcs);
	for (size_t i = 0; i < m->n_vss; i++) {
		for (size_t k = 0; k < m->vss[i].n_hosts; k++)
			free(m->vss[i].hosts[k]);
		free(m->vss[i].hosts);
	}
	free(m->vss);
	free(m->vs_exact);
	free(m->vs_wild);
	free(m->ep_index);
	for (size_t i = 0; i < m->n_drs; i++)
		free(m->drs[i].host);
	free(m->drs);
	free(m->sidecars);
	free(m->gws);
	for (size_t i = 0; i < m->n_wls; i++)
		wf_workload_free(m->wls[i]);
	free(m->wls);
	for (size_t i = 0; i < m->n_docs; i++)
		wf_cfgdoc_free(m->docs[i]);
	free(m->docs);
	for (size_t i = 0; i < m->n_strs; i++)
		free(m->strs[i]);
	free(m->strs);
	free(m);
}

const struct wf_service *wf_mesh_service(const struct wf_mesh *m, const char *host)
{
	size_t lo = 0, hi = m->n_svcs;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(host, m->svcs[mid].host);
		if (!c)
			return &m->svcs[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

void wf_mesh_vs_exact(const struct wf_mesh *m, const char *host, size_t *first, size_t *n)
{
	size_t lo = 0, hi = m->n_vs_exact;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (strcmp(m->vs_exact[mid].host, host) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*first = lo;
	while (hi < m->n_vs_exact && !strcmp(m->vs_exact[hi].host, host))
		hi++;
	*n = hi - lo;
}

/* Does host match pattern (a host, or "*.suffix" / "*")? */
int wf_host_match(const char *pattern, const char *host)
{
	if (!strcmp(pattern, "*"))
		return 1;
	if (pattern[0] == '*') {
		size_t pn = strlen(pattern + 1), hn = strlen(host);
		return hn > pn && !strcmp(host + hn - pn, pattern + 1);
	}
	return !strcmp(pattern, host);
}

static int dr_visible(const struct wf_mesh_dr *d, const char *ns)
{
	return wf_exported(d->dr->export_to, d->dr->n_export_to, d->ns, ns);
}

const struct wf_mesh_dr *wf_mesh_dr_for(const struct wf_mesh *m, const char *host, const char *ns)
{
	size_t lo = 0, hi = m->n_drs;
	while (lo < hi) { /* the first of equal hosts */
		size_t mid = (lo + hi) / 2;
		if (strcmp(m->drs[mid].host, host) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < m->n_drs && !strcmp(m->drs[lo].host, host); lo++)
		if (dr_visible(&m->drs[lo], ns))
			return &m->drs[lo];
	/* '*' sorts before letters: wildcard hosts are at the start */
	const struct wf_mesh_dr *best = NULL;
	size_t best_len = 0;
	for (size_t i = 0; i < m->n_drs && m->drs[i].host[0] == '*'; i++) {
		const struct wf_mesh_dr *d = &m->drs[i];
		if (wf_host_match(d->host, host) && strlen(d->host) > best_len && dr_visible(d, ns)) {
			best = d;
			best_len = strlen(d->host);
		}
	}
	return best;
}
