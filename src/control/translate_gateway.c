/* Gateways: a router proxy (Node id `router~...`) serves the servers of every Gateway whose
 * selector its labels match. Per server port one listener `BIND_PORT` (bind default 0.0.0.0):
 *
 *   HTTP   one HCM with rds "http.PORT" for every HTTP server of that port; the route
 *          configuration has a virtual host per host of the VirtualServices bound to the
 *          Gateway that the servers' hosts admit (httpsRedirect: every route a redirect to https)
 *   HTTPS  one filter chain per server (tls SIMPLE or MUTUAL, certificates from files), matched
 *          by SNI on the server's hosts, with rds "https.PORT.PORTNAME.GATEWAY.NAMESPACE"
 *   TCP    a tcp_proxy by the first tcp route of the bound VirtualServices that applies
 *   TLS    (PASSTHROUGH) a tcp_proxy filter chain per tls route, matched by its SNI hosts; the
 *          TLS is not terminated
 *
 * Routes come from the same translation as a sidecar's (translate_route.c), with t->gateway
 * set so that bindings and match.gateways name this Gateway. */
#include "control/translate_int.h"

#include "control/mesh_int.h"

#include <stdio.h>

typedef Envoy__Config__Listener__V3__Listener Listener;
typedef Envoy__Config__Route__V3__RouteConfiguration RouteConfiguration;
typedef Istio__Networking__V1alpha3__Server Server;

static int selects(const struct wf_mesh_gateway *g, const struct wf_proxy_info *p)
{
	for (size_t i = 0; i < g->gw->n_selector; i++) {
		struct wf_kv kv = {g->gw->selector[i]->key, g->gw->selector[i]->value};
		if (!wf_labels_match(&kv, 1, p->labels, p->n_labels))
			return 0;
	}
	return 1;
}

/* A server host "NS/HOST" admits VirtualService host h of namespace vs_ns. */
static int admits(const char *server_host, const char *gw_ns, const char *vs_ns, const char *h)
{
	const char *slash = strchr(server_host, '/');
	const char *host = slash ? slash + 1 : server_host;
	if (slash) {
		size_t nl = (size_t)(slash - server_host);
		int any = nl == 1 && server_host[0] == '*';
		int dot = nl == 1 && server_host[0] == '.';
		if (!any && !(dot && !strcmp(vs_ns, gw_ns)) && !(strlen(vs_ns) == nl && !strncmp(vs_ns, server_host, nl)))
			return 0;
	}
	return wf_host_match(host, h) || wf_host_match(h, host);
}

/* Does one of server s's hosts (of Gateway g) admit host h of a VirtualService in vs_ns? */
static int server_admits(const struct wf_mesh_gateway *g, const Server *s, const char *vs_ns, const char *h)
{
	for (size_t i = 0; i < s->n_hosts; i++)
		if (admits(s->hosts[i], g->ns, vs_ns, h))
			return 1;
	return 0;
}

static RouteConfiguration *find_rc(struct wf_tx_out *o, const char *name)
{
	for (size_t i = 0; i < o->n_rc; i++)
		if (!strcmp(o->rc[i]->name, name))
			return o->rc[i];
	return NULL;
}

static Listener *find_listener(struct wf_tx_out *o, const char *name)
{
	for (size_t i = 0; i < o->n_l; i++)
		if (!strcmp(o->l[i]->name, name))
			return o->l[i];
	return NULL;
}

/* Add to rc the virtual hosts server s admits (each host once per route configuration). */
static int add_vhosts(struct wf_tx *t, const struct wf_mesh_gateway *g, const Server *s, RouteConfiguration *rc)
{
	uint32_t port = s->port->number;
	for (size_t i = 0; i < t->m->n_vss; i++) {
		const struct wf_mesh_vs *v = &t->m->vss[i];
		if (!wf_tx_vs_bound(t, v) || !wf_exported(v->vs->export_to, v->vs->n_export_to, v->ns, t->p->ns))
			continue;
		for (size_t k = 0; k < v->n_hosts; k++) {
			int ok = server_admits(g, s, v->ns, v->hosts[k]);
			char *name = wf_xfmt("%s:%u", v->hosts[k], port);
			for (size_t j = 0; ok && j < rc->n_virtual_hosts; j++)
				ok = strcmp(rc->virtual_hosts[j]->name, name) != 0;
			free(name);
			if (!ok)
				continue;
			Envoy__Config__Route__V3__VirtualHost *vh = wf_tx_gateway_vhost(t, v->hosts[k], port);
			if (!vh)
				return -1;
			if (s->tls && s->tls->https_redirect) {
				/* as Envoy's require_tls: every request is sent to https */
				for (size_t r = 0; r < vh->n_routes; r++)
					wf_proto_free(&vh->routes[r]->base);
				vh->n_routes = 0;
				Envoy__Config__Route__V3__Route *r = XNEW(Envoy__Config__Route__V3__Route, envoy__config__route__v3__route__descriptor);
				r->name = wf_xstr("https_redirect");
				r->match = XNEW(Envoy__Config__Route__V3__RouteMatch, envoy__config__route__v3__route_match__descriptor);
				r->match->path_specifier_case = ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX;
				r->match->prefix = wf_xstr("/");
				r->action_case = ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_REDIRECT;
				r->redirect = XNEW(Envoy__Config__Route__V3__RedirectAction, envoy__config__route__v3__redirect_action__descriptor);
				r->redirect->scheme_rewrite_specifier_case =
				    ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__SCHEME_REWRITE_SPECIFIER_HTTPS_REDIRECT;
				r->redirect->https_redirect = 1;
				XPUSH(vh->routes, vh->n_routes, r);
			}
			XPUSH(rc->virtual_hosts, rc->n_virtual_hosts, vh);
		}
	}
	return 0;
}

/* The server's DownstreamTlsContext as a transport socket; NULL with t->err. */
static Envoy__Config__Core__V3__TransportSocket *server_tls(struct wf_tx *t, const struct wf_mesh_gateway *g, size_t si,
                                                            const Istio__Networking__V1alpha3__ServerTLSSettings *s)
{
	int mutual = s->mode == ISTIO__NETWORKING__V1ALPHA3__SERVER_TLSSETTINGS__TLSMODE__MUTUAL;
	if (s->mode != ISTIO__NETWORKING__V1ALPHA3__SERVER_TLSSETTINGS__TLSMODE__SIMPLE && !mutual) {
		wf_tx_err_at(t, g->doc, s, "mode", "Gateway %s/%s: servers[%zu].tls.mode %s is not supported yet (SIMPLE and MUTUAL are)", g->ns, g->name, si,
		          protobuf_c_enum_descriptor_get_value(&istio__networking__v1alpha3__server_tlssettings__tlsmode__descriptor,
		                                               s->mode)->name);
		return NULL;
	}
	if (*s->credential_name || !*s->server_certificate || !*s->private_key) {
		wf_tx_err_at(t, g->doc, s, NULL, "Gateway %s/%s: servers[%zu].tls: give serverCertificate and privateKey as file paths "
		          "(credentialName needs SDS, which Weft does not have)", g->ns, g->name, si);
		return NULL;
	}
	if (mutual && !*s->ca_certificates) {
		wf_tx_err_at(t, g->doc, s, "mode", "Gateway %s/%s: servers[%zu].tls: mode MUTUAL needs caCertificates", g->ns, g->name, si);
		return NULL;
	}
	if (*s->ca_crl || s->n_verify_certificate_spki || s->n_verify_certificate_hash) {
		wf_tx_err_at(t, g->doc, s, NULL, "Gateway %s/%s: servers[%zu].tls: caCrl and certificate pins are not supported yet", g->ns, g->name, si);
		return NULL;
	}
	Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *d =
	    XNEW(Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext,
	         envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__descriptor);
	Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *c =
	    XNEW(Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext,
	         envoy__extensions__transport_sockets__tls__v3__common_tls_context__descriptor);
	d->common_tls_context = c;
	wf_xtls_files(c, s->server_certificate, s->private_key, mutual ? s->ca_certificates : NULL, s->subject_alt_names,
	              s->n_subject_alt_names);
	XPUSH(c->alpn_protocols, c->n_alpn_protocols, wf_xstr("h2"));
	XPUSH(c->alpn_protocols, c->n_alpn_protocols, wf_xstr("http/1.1"));
	if (s->min_protocol_version || s->max_protocol_version || s->n_cipher_suites) {
		/* Istio's TLSProtocol and Envoy's TlsProtocol number the versions alike */
		c->tls_params = XNEW(Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters,
		                     envoy__extensions__transport_sockets__tls__v3__tls_parameters__descriptor);
		c->tls_params->tls_minimum_protocol_version = (int)s->min_protocol_version;
		c->tls_params->tls_maximum_protocol_version = (int)s->max_protocol_version;
		for (size_t i = 0; i < s->n_cipher_suites; i++)
			XPUSH(c->tls_params->cipher_suites, c->tls_params->n_cipher_suites, wf_xstr(s->cipher_suites[i]));
	}
	if (mutual)
		d->require_client_certificate = wf_xbool(1);
	return wf_xtls_socket(&d->base);
}

/* Does one of server s's hosts admit one of v's hosts? */
static int admits_vs(const struct wf_mesh_gateway *g, const Server *s, const struct wf_mesh_vs *v)
{
	for (size_t k = 0; k < v->n_hosts; k++)
		if (server_admits(g, s, v->ns, v->hosts[k]))
			return 1;
	return 0;
}

/* A filter chain proxying to route's destinations (stat_prefix: the cluster, or the listener's
 * name when weighted). */
static Envoy__Config__Listener__V3__FilterChain *tcp_chain(struct wf_tx *t, const struct wf_mesh_vs *v,
                                                           Istio__Networking__V1alpha3__RouteDestination **route,
                                                           size_t n_route, uint32_t port, const char *lname)
{
	Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp = wf_tx_tcp_proxy(lname);
	wf_tx_tcp_destinations(t, tp, route, n_route, v->ns, port);
	if (tp->cluster_specifier_case == ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER) {
		free(tp->stat_prefix);
		tp->stat_prefix = wf_xstr(tp->cluster);
	}
	Envoy__Config__Listener__V3__FilterChain *fc =
	    XNEW(Envoy__Config__Listener__V3__FilterChain, envoy__config__listener__v3__filter_chain__descriptor);
	XPUSH(fc->filters, fc->n_filters, wf_tx_network_filter(WF_TCP_PROXY_NAME, &tp->base));
	return fc;
}

/* Does an earlier filter chain of listener l (NULL: none yet), or the match m being built,
 * have the SNI name? The first tls route naming a host has it, as the first route that
 * matches has a request. */
static int sni_taken(const Listener *l, const Envoy__Config__Listener__V3__FilterChainMatch *m, const char *name)
{
	for (size_t i = 0; i < m->n_server_names; i++)
		if (!strcmp(m->server_names[i], name))
			return 1;
	for (size_t c = 0; l && c < l->n_filter_chains; c++)
		if (l->filter_chains[c]->filter_chain_match && sni_taken(NULL, l->filter_chains[c]->filter_chain_match, name))
			return 1;
	return 0;
}

/* A TCP server, or a TLS server in PASSTHROUGH mode: the listener BIND_PORT proxies the
 * connections by the tcp routes (TCP: the first that applies) or tls routes (TLS: a filter
 * chain per route, matched by the SNI hosts the server admits and no earlier route names) of
 * the VirtualServices bound to the Gateway. With no route, no listener (as Istio). */
static int tcp_server(struct wf_tx *t, const struct wf_mesh_gateway *g, size_t si, int tls, struct wf_tx_out *o)
{
	const Server *s = g->gw->servers[si];
	uint32_t port = s->port->number;
	const char *bind = *s->bind ? s->bind : "0.0.0.0";
	char lname[96];
	snprintf(lname, sizeof(lname), "%s_%u", bind, port);
	Listener *l = find_listener(o, lname);
	if (l && (!l->n_filter_chains || !l->filter_chains[0]->n_filters ||
	          strcmp(l->filter_chains[0]->filters[0]->name, WF_TCP_PROXY_NAME)))
		return wf_tx_err_at(t, g->doc, s->port, NULL, "Gateway %s/%s: servers[%zu]: port %u mixes HTTP and TCP servers",
		                    g->ns, g->name, si, port);
	for (size_t i = 0; i < t->m->n_vss; i++) {
		const struct wf_mesh_vs *v = &t->m->vss[i];
		if (!wf_tx_vs_bound(t, v) || !wf_exported(v->vs->export_to, v->vs->n_export_to, v->ns, t->p->ns) ||
		    !admits_vs(g, s, v))
			continue;
		size_t n = tls ? v->vs->n_tls : v->vs->n_tcp;
		for (size_t r = 0; r < n; r++) {
			Envoy__Config__Listener__V3__FilterChainMatch *m = NULL;
			int applies = 0;
			if (!tls) {
				const Istio__Networking__V1alpha3__TCPRoute *tr = v->vs->tcp[r];
				applies = !tr->n_match;
				for (size_t k = 0; k < tr->n_match && !applies; k++)
					applies = wf_tx_match_here(t, v->ns, &WF_TX_WHERE(tr->match[k]), port);
				if (!applies || (l && l->n_filter_chains))
					continue; /* the first TCP route that applies has the port */
			} else {
				const Istio__Networking__V1alpha3__TLSRoute *tr = v->vs->tls[r];
				m = XNEW(Envoy__Config__Listener__V3__FilterChainMatch,
				         envoy__config__listener__v3__filter_chain_match__descriptor);
				for (size_t k = 0; k < tr->n_match; k++) {
					const Istio__Networking__V1alpha3__TLSMatchAttributes *a = tr->match[k];
					if (!wf_tx_match_here(t, v->ns, &WF_TX_WHERE(a), port))
						continue;
					for (size_t h = 0; h < a->n_sni_hosts; h++)
						if (server_admits(g, s, v->ns, a->sni_hosts[h]) && !sni_taken(l, m, a->sni_hosts[h]))
							XPUSH(m->server_names, m->n_server_names, wf_xstr(a->sni_hosts[h]));
				}
				applies = m->n_server_names > 0;
				if (!applies) {
					wf_proto_free(&m->base);
					continue;
				}
			}
			if (!l) {
				l = XNEW(Listener, envoy__config__listener__v3__listener__descriptor);
				l->name = wf_xstr(lname);
				l->address = wf_xaddr(bind, port);
				XPUSH(o->l, o->n_l, l);
			}
			Envoy__Config__Listener__V3__FilterChain *fc =
			    tcp_chain(t, v, tls ? v->vs->tls[r]->route : v->vs->tcp[r]->route,
			              tls ? v->vs->tls[r]->n_route : v->vs->tcp[r]->n_route, port, lname);
			fc->filter_chain_match = m;
			XPUSH(l->filter_chains, l->n_filter_chains, fc);
		}
	}
	return 0;
}

static int server(struct wf_tx *t, const struct wf_mesh_gateway *g, size_t si, struct wf_tx_out *o)
{
	const Server *s = g->gw->servers[si];
	if (!s->port)
		return wf_tx_err_at(t, g->doc, s, NULL, "Gateway %s/%s: servers[%zu] has no port", g->ns, g->name, si);
	uint32_t port = s->port->number;
	enum wf_mesh_proto proto = wf_mesh_protocol(s->port->protocol, s->port->name);
	int terminate = proto == WF_MP_TLS && s->tls &&
	                (s->tls->mode == ISTIO__NETWORKING__V1ALPHA3__SERVER_TLSSETTINGS__TLSMODE__SIMPLE ||
	                 s->tls->mode == ISTIO__NETWORKING__V1ALPHA3__SERVER_TLSSETTINGS__TLSMODE__MUTUAL);
	int passthrough = proto == WF_MP_TLS && s->tls &&
	                  s->tls->mode == ISTIO__NETWORKING__V1ALPHA3__SERVER_TLSSETTINGS__TLSMODE__PASSTHROUGH;
	if (proto == WF_MP_TCP || passthrough)
		return tcp_server(t, g, si, passthrough, o);
	if (!wf_mesh_proto_is_http(proto) && !terminate)
		return wf_tx_err_at(t, g->doc, s->port, "protocol", "Gateway %s/%s: servers[%zu]: protocol %s%s is not supported yet (HTTP, HTTP2, GRPC, TCP, "
		                 "HTTPS with tls SIMPLE or MUTUAL, and TLS with PASSTHROUGH are)", g->ns, g->name, si, s->port->protocol,
		                 proto == WF_MP_TLS ? " with this tls mode" : "");
	const char *bind = *s->bind ? s->bind : "0.0.0.0";
	char lname[96], stat[112];
	snprintf(lname, sizeof(lname), "%s_%u", bind, port);
	snprintf(stat, sizeof(stat), "outbound_%s", lname);
	Listener *l = find_listener(o, lname);
	if (!terminate) {
		char *rds = wf_xfmt("http.%u", port);
		RouteConfiguration *rc = find_rc(o, rds);
		if (l && !rc) {
			free(rds);
			return wf_tx_err_at(t, g->doc, s->port, NULL, "Gateway %s/%s: servers[%zu]: port %u mixes HTTP servers with HTTPS or TCP ones", g->ns, g->name, si, port);
		}
		if (!rc) {
			rc = XNEW(RouteConfiguration, envoy__config__route__v3__route_configuration__descriptor);
			rc->name = wf_xstr(rds);
			rc->validate_clusters = wf_xbool(0);
			XPUSH(o->rc, o->n_rc, rc);
			XPUSH(o->l, o->n_l, wf_tx_listener(bind, port, wf_tx_hcm(stat, rds, WF_HCM_SIDECAR), WF_HCM_NAME));
		}
		free(rds);
		return add_vhosts(t, g, s, rc);
	}
	char plain[32];
	snprintf(plain, sizeof(plain), "http.%u", port);
	if (l && find_rc(o, plain))
		return wf_tx_err_at(t, g->doc, s->port, NULL, "Gateway %s/%s: servers[%zu]: port %u mixes HTTP and HTTPS servers", g->ns, g->name, si, port);
	char *rds = wf_xfmt("https.%u.%s.%s.%s", port, *s->port->name ? s->port->name : "https", g->name, g->ns);
	if (find_rc(o, rds)) {
		wf_tx_err_at(t, g->doc, s->port, "name", "Gateway %s/%s: servers[%zu]: two HTTPS servers with port name '%s' on port %u", g->ns, g->name, si,
		          s->port->name, port);
		free(rds);
		return -1;
	}
	Envoy__Config__Core__V3__TransportSocket *ts = server_tls(t, g, si, s->tls);
	if (!ts) {
		free(rds);
		return -1;
	}
	RouteConfiguration *rc = XNEW(RouteConfiguration, envoy__config__route__v3__route_configuration__descriptor);
	rc->name = wf_xstr(rds);
	rc->validate_clusters = wf_xbool(0);
	XPUSH(o->rc, o->n_rc, rc);
	Envoy__Config__Listener__V3__FilterChain *fc;
	if (!l) {
		l = wf_tx_listener(bind, port, wf_tx_hcm(stat, rds, WF_HCM_SIDECAR), WF_HCM_NAME);
		XPUSH(o->l, o->n_l, l);
		fc = l->filter_chains[0];
	} else {
		fc = XNEW(Envoy__Config__Listener__V3__FilterChain, envoy__config__listener__v3__filter_chain__descriptor);
		XPUSH(fc->filters, fc->n_filters, wf_tx_network_filter(WF_HCM_NAME, wf_tx_hcm(stat, rds, WF_HCM_SIDECAR)));
		XPUSH(l->filter_chains, l->n_filter_chains, fc);
	}
	free(rds);
	fc->transport_socket = ts;
	/* SNI: the server's hosts, unless one of them is '*' */
	Envoy__Config__Listener__V3__FilterChainMatch *m =
	    XNEW(Envoy__Config__Listener__V3__FilterChainMatch, envoy__config__listener__v3__filter_chain_match__descriptor);
	for (size_t h = 0; h < s->n_hosts; h++) {
		const char *slash = strchr(s->hosts[h], '/');
		const char *host = slash ? slash + 1 : s->hosts[h];
		if (!strcmp(host, "*")) {
			for (size_t k = 0; k < m->n_server_names; k++)
				free(m->server_names[k]);
			m->n_server_names = 0;
			break;
		}
		XPUSH(m->server_names, m->n_server_names, wf_xstr(host));
	}
	if (m->n_server_names || l->n_filter_chains > 1)
		fc->filter_chain_match = m;
	else
		wf_proto_free(&m->base);
	return add_vhosts(t, g, s, rc);
}

int wf_tx_check_gateway(struct wf_tx *t, const struct wf_mesh_gateway *g)
{
	struct wf_tx_out o = {0};
	char *name = wf_xfmt("%s/%s", g->ns, g->name);
	t->gateway = name;
	int rc = 0;
	for (size_t s = 0; s < g->gw->n_servers && rc == 0; s++)
		rc = server(t, g, s, &o);
	t->gateway = NULL;
	free(name);
	for (size_t i = 0; i < o.n_l; i++)
		wf_proto_free(&o.l[i]->base);
	for (size_t i = 0; i < o.n_rc; i++)
		wf_proto_free(&o.rc[i]->base);
	free(o.l);
	free(o.rc);
	return rc;
}

int wf_tx_gateways(struct wf_tx *t, struct wf_tx_out *o)
{
	for (size_t i = 0; i < t->m->n_gws; i++) {
		const struct wf_mesh_gateway *g = &t->m->gws[i];
		if (!selects(g, t->p))
			continue;
		char *name = wf_xfmt("%s/%s", g->ns, g->name);
		t->gateway = name;
		int rc = 0;
		for (size_t s = 0; s < g->gw->n_servers && rc == 0; s++)
			rc = server(t, g, s, o);
		t->gateway = NULL;
		free(name);
		if (rc < 0)
			return rc;
	}
	return 0;
}
