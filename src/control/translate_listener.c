/* LDS (and the RDS the listeners name). Weft's proxy has no transparent capture (no iptables,
 * no SO_ORIGINAL_DST, no bind_to_port: false), so every listener binds for real, as Istio's
 * captureMode NONE does:
 *
 *   outbound  one listener per service port, on the Sidecar egress listener's `bind` for that
 *             port (else its port-less egress listener's, else 127.0.0.1), named BIND_PORT:
 *             HTTP ports an HCM with rds "PORT", TCP ports a tcp_proxy to the first service
 *             (by host) with that port (or its VirtualService's tcp route)
 *   inbound   the Sidecar's ingress listeners (bind, port, defaultEndpoint), else one listener
 *             per port of each service the workload serves, on its instance IP, named IP_PORT,
 *             to inbound|PORT|| (127.0.0.1 on the endpoint port)
 *   gRPC      proxyless clients get an api_listener "HOST:PORT" per service port, whose HCM
 *             names the RouteConfiguration "HOST:PORT" */
#include "control/translate_int.h"

#include "control/mesh_int.h"
#include "envoy/extensions/filters/http/cors/v3/cors.pb-c.h"
#include "envoy/extensions/filters/http/fault/v3/fault.pb-c.h"
#include "envoy/extensions/filters/http/router/v3/router.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"

#include <stdio.h>

typedef Envoy__Config__Listener__V3__Listener Listener;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter HttpFilter;
typedef Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy TcpProxy;
typedef Envoy__Config__Route__V3__RouteConfiguration RouteConfiguration;


static void add_filter(Hcm *h, const char *name, ProtobufCMessage *cfg)
{
	HttpFilter *f = XNEW(HttpFilter, envoy__extensions__filters__network__http_connection_manager__v3__http_filter__descriptor);
	f->name = wf_xstr(name);
	f->config_type_case = ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_TYPED_CONFIG;
	f->typed_config = wf_xany(cfg);
	XPUSH(h->http_filters, h->n_http_filters, f);
}

/* An HCM; routes by rds when rds_name is set, else inline. filters: WF_HCM_ROUTER (the router
 * only), WF_HCM_FAULT (fault, router: what gRPC clients implement of Istio's), WF_HCM_SIDECAR
 * (fault, cors, router: Istio's sidecar filters that Weft has). */
static Hcm *hcm(const char *stat_prefix, const char *rds_name, RouteConfiguration *inline_rc, int filters)
{
	Hcm *h = XNEW(Hcm, envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor);
	h->stat_prefix = wf_xstr(stat_prefix);
	if (rds_name) {
		h->route_specifier_case = ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS;
		h->rds = XNEW(Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__Rds,
		              envoy__extensions__filters__network__http_connection_manager__v3__rds__descriptor);
		h->rds->route_config_name = wf_xstr(rds_name);
		h->rds->config_source = wf_xads();
	} else {
		h->route_specifier_case = ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG;
		h->route_config = inline_rc;
	}
	if (filters >= WF_HCM_FAULT)
		add_filter(h, "envoy.filters.http.fault",
		           wf_proto_new(&envoy__extensions__filters__http__fault__v3__httpfault__descriptor));
	if (filters >= WF_HCM_SIDECAR)
		add_filter(h, "envoy.filters.http.cors", wf_proto_new(&envoy__extensions__filters__http__cors__v3__cors__descriptor));
	add_filter(h, "envoy.filters.http.router", wf_proto_new(&envoy__extensions__filters__http__router__v3__router__descriptor));
	return h;
}

ProtobufCMessage *wf_tx_hcm(const char *stat_prefix, const char *rds_name, int filters)
{
	return &hcm(stat_prefix, rds_name, NULL, filters)->base;
}

Envoy__Config__Listener__V3__Filter *wf_tx_network_filter(const char *name, ProtobufCMessage *cfg)
{
	Envoy__Config__Listener__V3__Filter *f = XNEW(Envoy__Config__Listener__V3__Filter, envoy__config__listener__v3__filter__descriptor);
	f->name = wf_xstr(name);
	f->config_type_case = ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG;
	f->typed_config = wf_xany(cfg);
	return f;
}

Listener *wf_tx_listener(const char *ip, uint32_t port, ProtobufCMessage *filter_cfg, const char *filter_name)
{
	Listener *l = XNEW(Listener, envoy__config__listener__v3__listener__descriptor);
	l->name = wf_xfmt("%s_%u", ip, port);
	l->address = wf_xaddr(ip, port);
	Envoy__Config__Listener__V3__FilterChain *fc =
	    XNEW(Envoy__Config__Listener__V3__FilterChain, envoy__config__listener__v3__filter_chain__descriptor);
	XPUSH(fc->filters, fc->n_filters, wf_tx_network_filter(filter_name, filter_cfg));
	XPUSH(l->filter_chains, l->n_filter_chains, fc);
	return l;
}

TcpProxy *wf_tx_tcp_proxy(const char *cluster)
{
	TcpProxy *tp = XNEW(TcpProxy, envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor);
	tp->stat_prefix = wf_xstr(cluster);
	tp->cluster_specifier_case = ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER;
	tp->cluster = wf_xstr(cluster);
	return tp;
}

#define HCM_NAME WF_HCM_NAME


static void out_free(struct wf_tx_out *o)
{
	for (size_t i = 0; i < o->n_l; i++)
		wf_proto_free(&o->l[i]->base);
	for (size_t i = 0; i < o->n_rc; i++)
		wf_proto_free(&o->rc[i]->base);
	free(o->l);
	free(o->rc);
}

static int has_listener_at(const struct wf_tx_out *o, const char *ip, uint32_t port)
{
	for (size_t i = 0; i < o->n_l; i++) {
		const Envoy__Config__Core__V3__SocketAddress *sa = o->l[i]->address ? o->l[i]->address->socket_address : NULL;
		if (sa && sa->port_value == port && !strcmp(sa->address, ip))
			return 1;
	}
	return 0;
}

/* ---- inbound -------------------------------------------------------------------------------- */

static Listener *inbound_listener(const char *ip, uint32_t port, enum wf_mesh_proto proto, uint32_t ep_port)
{
	char *cluster = wf_cluster_name("inbound", ep_port, NULL, NULL);
	char stat[96];
	snprintf(stat, sizeof(stat), "inbound_%s_%u", ip, port);
	Listener *l;
	if (wf_mesh_proto_is_http(proto)) {
		RouteConfiguration *rc = XNEW(RouteConfiguration, envoy__config__route__v3__route_configuration__descriptor);
		rc->name = wf_xstr(cluster);
		rc->validate_clusters = wf_xbool(0);
		Envoy__Config__Route__V3__VirtualHost *vh =
		    XNEW(Envoy__Config__Route__V3__VirtualHost, envoy__config__route__v3__virtual_host__descriptor);
		vh->name = wf_xfmt("inbound|http|%u", port);
		XPUSH(vh->domains, vh->n_domains, wf_xstr("*"));
		Envoy__Config__Route__V3__Route *r = wf_tx_default_route(cluster);
		wf_proto_free(&r->route->retry_policy->base); /* inbound: no retries, as Istio */
		r->route->retry_policy = NULL;
		XPUSH(vh->routes, vh->n_routes, r);
		XPUSH(rc->virtual_hosts, rc->n_virtual_hosts, vh);
		l = wf_tx_listener(ip, port, &hcm(stat, NULL, rc, WF_HCM_ROUTER)->base, HCM_NAME);
	} else {
		l = wf_tx_listener(ip, port, &wf_tx_tcp_proxy(cluster)->base, WF_TCP_PROXY_NAME);
	}
	free(cluster);
	return l;
}

static int inbound(struct wf_tx *t, struct wf_tx_out *o)
{
	const struct wf_proxy_info *p = t->p;
	if (t->sidecar && t->sidecar->sc->n_ingress) {
		for (size_t i = 0; i < t->sidecar->sc->n_ingress; i++) {
			const Istio__Networking__V1alpha3__IstioIngressListener *in = t->sidecar->sc->ingress[i];
			char ip[64];
			uint32_t ep;
			if (wf_tx_default_endpoint(t, in->default_endpoint, ip, sizeof(ip), &ep) < 0)
				return -1;
			if (in->tls)
				return wf_tx_err_at(t, t->sidecar->doc, in, "tls", "Sidecar %s/%s: ingress[%zu].tls is not supported yet", t->sidecar->ns,
				                 t->sidecar->name, i);
			const char *bind = *in->bind ? in->bind : *p->ip ? p->ip : "0.0.0.0";
			if (has_listener_at(o, bind, in->port->number))
				return wf_tx_err_at(t, t->sidecar->doc, in, "port", "Sidecar %s/%s: two ingress listeners on %s:%u", t->sidecar->ns, t->sidecar->name,
				                 bind, in->port->number);
			XPUSH(o->l, o->n_l,
			      inbound_listener(bind, in->port->number, wf_mesh_protocol(in->port->protocol, in->port->name),
			                       in->port->number));
		}
		return 0;
	}
	for (size_t i = 0; i < t->n_own; i++) {
		const struct wf_service *s = t->own[i].s;
		const struct wf_workload *w = t->own[i].w;
		for (size_t k = 0; k < s->n_ports; k++) {
			const struct wf_mesh_port *sp = &s->ports[k];
			if (has_listener_at(o, p->ip, sp->number))
				continue; /* two services on one port: the first (by host) */
			XPUSH(o->l, o->n_l, inbound_listener(p->ip, sp->number, sp->proto, wf_workload_port(w, sp)));
		}
	}
	return 0;
}

/* ---- outbound ------------------------------------------------------------------------------- */

/* Where the outbound listener of port binds, or NULL when the Sidecar's egress listeners leave
 * that port out. */
static const char *egress_bind(const struct wf_tx *t, uint32_t port)
{
	if (!t->sidecar || !t->sidecar->sc->n_egress)
		return "127.0.0.1";
	const char *any = NULL;
	for (size_t i = 0; i < t->sidecar->sc->n_egress; i++) {
		const Istio__Networking__V1alpha3__IstioEgressListener *e = t->sidecar->sc->egress[i];
		const char *bind = *e->bind ? e->bind : "127.0.0.1";
		if (e->port && e->port->number == port)
			return bind;
		if (!e->port && !any)
			any = bind;
	}
	return any;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

void wf_tx_tcp_destinations(struct wf_tx *t, TcpProxy *tp, Istio__Networking__V1alpha3__RouteDestination **route,
                            size_t n_route, const char *ns, uint32_t port)
{
	Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster *wc =
	    XNEW(Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster,
	         envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__weighted_cluster__descriptor);
	for (size_t d = 0; d < n_route; d++) {
		const Istio__Networking__V1alpha3__RouteDestination *rd = route[d];
		if (!rd->destination)
			continue;
		char *host = wf_mesh_fqdn(rd->destination->host, ns);
		uint32_t dport = rd->destination->port && rd->destination->port->number ? rd->destination->port->number : 0;
		if (!dport) { /* the service's only port, else the listener's (as for HTTP routes) */
			const struct wf_service *svc = wf_mesh_service(t->m, host);
			dport = svc && svc->n_ports == 1 ? svc->ports[0].number : port;
		}
		Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster__ClusterWeight *cw =
		    XNEW(Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster__ClusterWeight,
		         envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__weighted_cluster__cluster_weight__descriptor);
		cw->name = wf_cluster_name("outbound", dport, rd->destination->subset, host);
		cw->weight = n_route == 1 ? 1 : rd->weight > 0 ? (uint32_t)rd->weight : 0;
		free(host);
		if (!cw->weight) {
			wf_proto_free(&cw->base);
			continue;
		}
		XPUSH(wc->clusters, wc->n_clusters, cw);
	}
	if (wc->n_clusters == 1) {
		free(tp->cluster);
		tp->cluster = wf_xstr(wc->clusters[0]->name);
		wf_proto_free(&wc->base);
	} else if (wc->n_clusters) {
		free(tp->cluster);
		tp->cluster = NULL;
		tp->cluster_specifier_case = ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS;
		tp->weighted_clusters = wc;
	} else {
		wf_proto_free(&wc->base);
	}
}

/* A TCP or TLS service port's tcp_proxy: the first route of a VirtualService for the host
 * that applies (a match's port, gateways, sourceLabels and sourceNamespace; for tls, sniHosts
 * naming the host too), else the service's cluster. */
static TcpProxy *tcp_for(struct wf_tx *t, const struct wf_service *s, uint32_t port, int tls)
{
	char *cluster = wf_cluster_name("outbound", port, NULL, s->host);
	TcpProxy *tp = wf_tx_tcp_proxy(cluster);
	free(cluster);
	for (size_t i = 0; i < t->m->n_vss; i++) {
		const struct wf_mesh_vs *v = &t->m->vss[i];
		int hit = 0;
		for (size_t k = 0; k < v->n_hosts && !hit; k++)
			hit = wf_host_match(v->hosts[k], s->host);
		if (!wf_tx_vs_bound(t, v) || !hit || !wf_exported(v->vs->export_to, v->vs->n_export_to, v->ns, t->p->ns))
			continue;
		size_t n = tls ? v->vs->n_tls : v->vs->n_tcp;
		for (size_t r = 0; r < n; r++) {
			size_t n_match = tls ? v->vs->tls[r]->n_match : v->vs->tcp[r]->n_match;
			int applies = !n_match && !tls;
			for (size_t m = 0; m < n_match && !applies; m++) {
				if (!tls) {
					applies = wf_tx_match_here(t, v->ns, &WF_TX_WHERE(v->vs->tcp[r]->match[m]), port);
					continue;
				}
				const Istio__Networking__V1alpha3__TLSMatchAttributes *tm = v->vs->tls[r]->match[m];
				if (!wf_tx_match_here(t, v->ns, &WF_TX_WHERE(tm), port))
					continue;
				for (size_t h = 0; h < tm->n_sni_hosts && !applies; h++) {
					char *sni = wf_mesh_fqdn(tm->sni_hosts[h], v->ns);
					applies = wf_host_match(sni, s->host);
					free(sni);
				}
			}
			if (!applies)
				continue;
			if (tls)
				wf_tx_tcp_destinations(t, tp, v->vs->tls[r]->route, v->vs->tls[r]->n_route, v->ns, port);
			else
				wf_tx_tcp_destinations(t, tp, v->vs->tcp[r]->route, v->vs->tcp[r]->n_route, v->ns, port);
			return tp;
		}
	}
	return tp;
}

/* A TLS port: one filter chain per TLS service, matched by SNI on its host, and the port's
 * first plain TCP service (if any) as the default chain. */
static Listener *tls_listener(struct wf_tx *t, const char *bind, uint32_t port, const struct wf_service **tls, size_t n_tls,
                              const struct wf_service *tcp_svc)
{
	Listener *l = XNEW(Listener, envoy__config__listener__v3__listener__descriptor);
	l->name = wf_xfmt("%s_%u", bind, port);
	l->address = wf_xaddr(bind, port);
	for (size_t i = 0; i < n_tls; i++) {
		Envoy__Config__Listener__V3__FilterChain *fc =
		    XNEW(Envoy__Config__Listener__V3__FilterChain, envoy__config__listener__v3__filter_chain__descriptor);
		fc->filter_chain_match = XNEW(Envoy__Config__Listener__V3__FilterChainMatch,
		                              envoy__config__listener__v3__filter_chain_match__descriptor);
		XPUSH(fc->filter_chain_match->server_names, fc->filter_chain_match->n_server_names, wf_xstr(tls[i]->host));
		XPUSH(fc->filters, fc->n_filters, wf_tx_network_filter(WF_TCP_PROXY_NAME, &tcp_for(t, tls[i], port, 1)->base));
		XPUSH(l->filter_chains, l->n_filter_chains, fc);
	}
	if (tcp_svc) {
		l->default_filter_chain =
		    XNEW(Envoy__Config__Listener__V3__FilterChain, envoy__config__listener__v3__filter_chain__descriptor);
		XPUSH(l->default_filter_chain->filters, l->default_filter_chain->n_filters,
		      wf_tx_network_filter(WF_TCP_PROXY_NAME, &tcp_for(t, tcp_svc, port, 0)->base));
	}
	return l;
}

static int outbound(struct wf_tx *t, struct wf_tx_out *o)
{
	uint32_t *ports = NULL;
	size_t n = 0;
	for (size_t i = 0; i < t->n_svcs; i++)
		for (size_t k = 0; k < t->svcs[i]->n_ports; k++) {
			uint32_t p = t->svcs[i]->ports[k].number;
			size_t j = 0;
			while (j < n && ports[j] != p)
				j++;
			if (j == n)
				XPUSH(ports, n, p);
		}
	if (n)
		qsort(ports, n, sizeof(*ports), cmp_u32);
	for (size_t i = 0; i < n; i++) {
		uint32_t port = ports[i];
		const char *bind = egress_bind(t, port);
		if (!bind)
			continue;
		if (has_listener_at(o, bind, port)) {
			wf_tx_warn(t, "proxy %s: no outbound listener %s:%u (an inbound listener has that address)", t->p->id, bind, port);
			continue;
		}
		const struct wf_service *tcp_svc = NULL, **tls = NULL;
		size_t n_tls = 0;
		int http = 0;
		for (size_t s = 0; s < t->n_svcs; s++)
			for (size_t k = 0; k < t->svcs[s]->n_ports; k++) {
				const struct wf_mesh_port *sp = &t->svcs[s]->ports[k];
				if (sp->number != port)
					continue;
				if (wf_mesh_proto_is_http(sp->proto))
					http = 1;
				else if (sp->proto == WF_MP_TLS)
					XPUSH(tls, n_tls, t->svcs[s]);
				else if (!tcp_svc)
					tcp_svc = t->svcs[s];
				else
					wf_tx_warn(t, "proxy %s: port %u: %s has no listener (%s took the TCP port)", t->p->id, port,
					           t->svcs[s]->host, tcp_svc->host);
			}
		char stat[96];
		snprintf(stat, sizeof(stat), "outbound_%s_%u", bind, port);
		if (http) {
			if (tcp_svc || n_tls)
				wf_tx_warn(t, "proxy %s: port %u is HTTP: TCP service %s on it is not reachable", t->p->id, port,
				           tcp_svc ? tcp_svc->host : tls[0]->host);
			char name[16];
			snprintf(name, sizeof(name), "%u", port);
			RouteConfiguration *rc = wf_tx_route_config(t, port, NULL, name);
			if (!rc) {
				free(tls);
				free(ports);
				return -1;
			}
			XPUSH(o->rc, o->n_rc, rc);
			XPUSH(o->l, o->n_l, wf_tx_listener(bind, port, &hcm(stat, name, NULL, WF_HCM_SIDECAR)->base, HCM_NAME));
		} else if (n_tls) {
			XPUSH(o->l, o->n_l, tls_listener(t, bind, port, tls, n_tls, tcp_svc));
		} else if (tcp_svc) {
			XPUSH(o->l, o->n_l, wf_tx_listener(bind, port, &tcp_for(t, tcp_svc, port, 0)->base, WF_TCP_PROXY_NAME));
		}
		free(tls);
	}
	free(ports);
	return 0;
}

/* ---- proxyless gRPC ------------------------------------------------------------------------- */

static int grpc(struct wf_tx *t, struct wf_tx_out *o)
{
	for (size_t i = 0; i < t->n_svcs; i++) {
		const struct wf_service *s = t->svcs[i];
		for (size_t k = 0; k < s->n_ports; k++) {
			const struct wf_mesh_port *sp = &s->ports[k];
			if (!wf_mesh_proto_is_http(sp->proto))
				continue;
			char *rds = wf_xfmt("%s:%u", s->host, sp->number);
			RouteConfiguration *rc = wf_tx_route_config(t, sp->number, s->host, rds);
			if (!rc) {
				free(rds);
				return -1;
			}
			XPUSH(o->rc, o->n_rc, rc);
			/* one listener per name the client may dial, all naming the one route configuration */
			char *names[4];
			size_t n = wf_host_forms(s->host, t->p->ns, names);
			for (size_t j = 0; j < n; j++) {
				Listener *l = XNEW(Listener, envoy__config__listener__v3__listener__descriptor);
				l->name = wf_xfmt("%s:%u", names[j], sp->number);
				free(names[j]);
				l->api_listener = XNEW(Envoy__Config__Listener__V3__ApiListener, envoy__config__listener__v3__api_listener__descriptor);
				l->api_listener->api_listener = wf_xany(&hcm(l->name, rds, NULL, WF_HCM_FAULT)->base);
				XPUSH(o->l, o->n_l, l);
			}
			free(rds);
		}
	}
	return 0;
}

int wf_tx_listeners(struct wf_tx *t)
{
	struct wf_tx_out o = {0};
	int rc = 0;
	if (t->p->kind == WF_PROXY_GRPC)
		rc = t->parts & WF_TX_OUTBOUND ? grpc(t, &o) : 0;
	else if (t->p->kind == WF_PROXY_ROUTER)
		rc = t->parts & WF_TX_OUTBOUND ? wf_tx_gateways(t, &o) : 0;
	else if (t->parts & WF_TX_INBOUND)
		rc = inbound(t, &o);
	if (rc == 0 && t->p->kind == WF_PROXY_SIDECAR && (t->parts & WF_TX_OUTBOUND))
		rc = outbound(t, &o);
	if (rc < 0) {
		out_free(&o);
		return rc;
	}
	for (size_t i = 0; i < o.n_l; i++)
		wf_tx_emit(t, WF_TYPE_LISTENER, o.l[i]->name, &o.l[i]->base);
	for (size_t i = 0; i < o.n_rc; i++)
		wf_tx_emit(t, WF_TYPE_ROUTE, o.rc[i]->name, &o.rc[i]->base);
	free(o.l);
	free(o.rc);
	return 0;
}
