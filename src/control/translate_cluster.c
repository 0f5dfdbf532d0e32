/* CDS and EDS: a cluster per visible service port and per DestinationRule subset, with the
 * rule's traffic policy (top level, then the port's portLevelSettings, then the subset's
 * policy and its port level, each section replacing the one before as Istio merges them);
 * the endpoints of each EDS cluster as a ClusterLoadAssignment grouped by locality; and the
 * inbound clusters of the proxy's own workload. */
#include "control/translate_int.h"

/* Istio's deprecated fields (consecutiveErrors, minimumRingSize, fault percent, allowOrigin)
 * are still honored, as istiod does. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#include "control/mesh_int.h"
#include "envoy/config/cluster/v3/circuit_breaker.pb-c.h"
#include "envoy/config/cluster/v3/outlier_detection.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb-c.h"

#include <stdio.h>

typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Config__Endpoint__V3__ClusterLoadAssignment Cla;
typedef Istio__Networking__V1alpha3__TrafficPolicy TrafficPolicy;
typedef Istio__Networking__V1alpha3__LoadBalancerSettings LbSettings;
typedef Istio__Networking__V1alpha3__ConnectionPoolSettings PoolSettings;
typedef Istio__Networking__V1alpha3__OutlierDetection IstioOutlier;
typedef Istio__Networking__V1alpha3__ClientTLSSettings ClientTls;
typedef Istio__Networking__V1alpha3__Subset Subset;

/* The effective traffic policy of one cluster. */
struct policy {
	const LbSettings *lb;
	const PoolSettings *pool;
	const IstioOutlier *outlier;
	const ClientTls *tls;
	const char *where;          /* "DestinationRule NS/NAME" for errors */
	const struct wf_cfgdoc *doc;
};

static void merge(struct policy *p, const TrafficPolicy *tp, uint32_t port)
{
	if (!tp)
		return;
#define TAKE(dst, src) if (src) p->dst = src
	TAKE(lb, tp->load_balancer);
	TAKE(pool, tp->connection_pool);
	TAKE(outlier, tp->outlier_detection);
	TAKE(tls, tp->tls);
	for (size_t i = 0; i < tp->n_port_level_settings; i++) {
		const Istio__Networking__V1alpha3__TrafficPolicy__PortTrafficPolicy *pl = tp->port_level_settings[i];
		if (!pl->port || pl->port->number != port)
			continue;
		TAKE(lb, pl->load_balancer);
		TAKE(pool, pl->connection_pool);
		TAKE(outlier, pl->outlier_detection);
		TAKE(tls, pl->tls);
	}
#undef TAKE
}

static struct policy policy_for(const struct wf_mesh_dr *dr, const Subset *ss, uint32_t port)
{
	struct policy p = {0};
	if (dr) {
		merge(&p, dr->dr->traffic_policy, port);
		if (ss)
			merge(&p, ss->traffic_policy, port);
	}
	return p;
}

const LbSettings *wf_tx_lb_for(const struct wf_tx *t, const char *host, const char *subset, uint32_t port)
{
	const struct wf_mesh_dr *dr = wf_mesh_dr_for(t->m, host, t->p->ns);
	const Subset *ss = NULL;
	for (size_t i = 0; dr && subset && *subset && i < dr->dr->n_subsets; i++)
		if (!strcmp(dr->dr->subsets[i]->name, subset))
			ss = dr->dr->subsets[i];
	return policy_for(dr, ss, port).lb;
}

/* ---- policy sections ---------------------------------------------------------------------- */

static int lb(struct wf_tx *t, const struct policy *p, Cluster *c)
{
	/* Istio's default since 1.14: LEAST_REQUEST; gRPC clients get ROUND_ROBIN, which every
	 * gRPC xDS client implements (an lb_policy a client does not implement is NACKed) */
	c->lb_policy = t->p->kind == WF_PROXY_GRPC ? ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN
	                                           : ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST;
	const LbSettings *l = p->lb;
	if (!l)
		return 0;
	if (l->locality_lb_setting || l->warmup_duration_secs)
		return wf_tx_err_at(t, p->doc, l, l->locality_lb_setting ? "locality_lb_setting" : "warmup_duration_secs",
		                    "%s: trafficPolicy.loadBalancer.%s is not supported yet", p->where,
		                 l->locality_lb_setting ? "localityLbSetting" : "warmupDurationSecs");
	if (l->lb_policy_case == ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__LB_POLICY_SIMPLE) {
		switch (l->simple) {
		case ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__SIMPLE_LB__ROUND_ROBIN:
			c->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN;
			break;
		case ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__SIMPLE_LB__RANDOM:
			c->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RANDOM;
			break;
		case ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__SIMPLE_LB__PASSTHROUGH:
			return wf_tx_err_at(t, p->doc, l, "simple", "%s: trafficPolicy.loadBalancer.simple PASSTHROUGH is not supported (no original "
			                 "destination clusters)", p->where);
		default: /* UNSPECIFIED, LEAST_CONN, LEAST_REQUEST */
			break;
		}
		return 0;
	}
	if (l->lb_policy_case != ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__LB_POLICY_CONSISTENT_HASH)
		return 0;
	const Istio__Networking__V1alpha3__LoadBalancerSettings__ConsistentHashLB *ch = l->consistent_hash;
	if (ch->hash_algorithm_case == ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__CONSISTENT_HASH_LB__HASH_ALGORITHM_MAGLEV) {
		c->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__MAGLEV;
		if (ch->maglev->table_size) {
			c->lb_config_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_MAGLEV_LB_CONFIG;
			c->maglev_lb_config = XNEW(Envoy__Config__Cluster__V3__Cluster__MaglevLbConfig,
			                           envoy__config__cluster__v3__cluster__maglev_lb_config__descriptor);
			c->maglev_lb_config->table_size = XNEW(Google__Protobuf__UInt64Value, google__protobuf__uint64_value__descriptor);
			c->maglev_lb_config->table_size->value = ch->maglev->table_size;
		}
		return 0;
	}
	c->lb_policy = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RING_HASH;
	uint64_t min = ch->hash_algorithm_case == ISTIO__NETWORKING__V1ALPHA3__LOAD_BALANCER_SETTINGS__CONSISTENT_HASH_LB__HASH_ALGORITHM_RING_HASH
	                   ? ch->ring_hash->minimum_ring_size
	                   : ch->minimum_ring_size;
	if (min) {
		c->lb_config_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_RING_HASH_LB_CONFIG;
		c->ring_hash_lb_config = XNEW(Envoy__Config__Cluster__V3__Cluster__RingHashLbConfig,
		                              envoy__config__cluster__v3__cluster__ring_hash_lb_config__descriptor);
		c->ring_hash_lb_config->minimum_ring_size = XNEW(Google__Protobuf__UInt64Value, google__protobuf__uint64_value__descriptor);
		c->ring_hash_lb_config->minimum_ring_size->value = min;
	}
	return 0;
}

#define UPSTREAM_HTTP_OPTIONS "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

/* connectionPool, and HTTP/2 upstreams for HTTP2/GRPC ports (or h2UpgradePolicy UPGRADE). */
static int pool(struct wf_tx *t, const struct policy *p, const struct wf_mesh_port *port, Cluster *c)
{
	const PoolSettings *cp = p->pool;
	const Istio__Networking__V1alpha3__ConnectionPoolSettings__TCPSettings *tcp = cp ? cp->tcp : NULL;
	const Istio__Networking__V1alpha3__ConnectionPoolSettings__HTTPSettings *http = cp ? cp->http : NULL;
	/* Istio's default connect timeout (MeshConfig connectTimeout) */
	c->connect_timeout = tcp && tcp->connect_timeout ? wf_xdur(tcp->connect_timeout) : wf_xdur_ms(10000);
	if (tcp && (tcp->max_connection_duration || tcp->idle_timeout))
		return wf_tx_err_at(t, p->doc, tcp, tcp->max_connection_duration ? "max_connection_duration" : "idle_timeout",
		                    "%s: trafficPolicy.connectionPool.tcp.%s is not supported yet", p->where,
		                 tcp->max_connection_duration ? "maxConnectionDuration" : "idleTimeout");
	if (http && (http->use_client_protocol || http->max_concurrent_streams))
		return wf_tx_err_at(t, p->doc, http, http->use_client_protocol ? "use_client_protocol" : "max_concurrent_streams",
		                    "%s: trafficPolicy.connectionPool.http.%s is not supported yet", p->where,
		                 http->use_client_protocol ? "useClientProtocol" : "maxConcurrentStreams");
	/* circuit breakers: Istio leaves unset limits at 2^32-1 */
	Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds *th =
	    XNEW(Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds, envoy__config__cluster__v3__circuit_breakers__thresholds__descriptor);
	th->max_connections = wf_xu32(tcp && tcp->max_connections > 0 ? (uint32_t)tcp->max_connections : 4294967295u);
	th->max_pending_requests = wf_xu32(http && http->http1_max_pending_requests > 0 ? (uint32_t)http->http1_max_pending_requests : 4294967295u);
	th->max_requests = wf_xu32(http && http->http2_max_requests > 0 ? (uint32_t)http->http2_max_requests : 4294967295u);
	th->max_retries = wf_xu32(http && http->max_retries > 0 ? (uint32_t)http->max_retries : 4294967295u);
	c->circuit_breakers = XNEW(Envoy__Config__Cluster__V3__CircuitBreakers, envoy__config__cluster__v3__circuit_breakers__descriptor);
	XPUSH(c->circuit_breakers->thresholds, c->circuit_breakers->n_thresholds, th);
	if (tcp && tcp->tcp_keepalive) {
		const Istio__Networking__V1alpha3__ConnectionPoolSettings__TCPSettings__TcpKeepalive *k = tcp->tcp_keepalive;
		c->upstream_connection_options = XNEW(Envoy__Config__Cluster__V3__UpstreamConnectionOptions,
		                                      envoy__config__cluster__v3__upstream_connection_options__descriptor);
		Envoy__Config__Core__V3__TcpKeepalive *ka = XNEW(Envoy__Config__Core__V3__TcpKeepalive, envoy__config__core__v3__tcp_keepalive__descriptor);
		if (k->probes)
			ka->keepalive_probes = wf_xu32(k->probes);
		if (k->time)
			ka->keepalive_time = wf_xu32((uint32_t)k->time->seconds);
		if (k->interval)
			ka->keepalive_interval = wf_xu32((uint32_t)k->interval->seconds);
		c->upstream_connection_options->tcp_keepalive = ka;
	}
	int h2 = port->proto == WF_MP_HTTP2 || port->proto == WF_MP_GRPC;
	if (http && http->h2_upgrade_policy == ISTIO__NETWORKING__V1ALPHA3__CONNECTION_POOL_SETTINGS__HTTPSETTINGS__H2_UPGRADE_POLICY__UPGRADE &&
	    wf_mesh_proto_is_http(port->proto))
		h2 = 1;
	int common = http && (http->max_requests_per_connection > 0 || http->idle_timeout);
	if (!h2 && !common)
		return 0;
	Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions *o =
	    XNEW(Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions, envoy__extensions__upstreams__http__v3__http_protocol_options__descriptor);
	if (common) {
		o->common_http_protocol_options = XNEW(Envoy__Config__Core__V3__HttpProtocolOptions, envoy__config__core__v3__http_protocol_options__descriptor);
		if (http->max_requests_per_connection > 0)
			o->common_http_protocol_options->max_requests_per_connection = wf_xu32((uint32_t)http->max_requests_per_connection);
		if (http->idle_timeout)
			o->common_http_protocol_options->idle_timeout = wf_xdur(http->idle_timeout);
	}
	if (h2) {
		o->upstream_protocol_options_case =
		    ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_EXPLICIT_HTTP_CONFIG;
		o->explicit_http_config = XNEW(Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions__ExplicitHttpConfig,
		                               envoy__extensions__upstreams__http__v3__http_protocol_options__explicit_http_config__descriptor);
		o->explicit_http_config->protocol_config_case =
		    ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP2_PROTOCOL_OPTIONS;
		o->explicit_http_config->http2_protocol_options =
		    XNEW(Envoy__Config__Core__V3__Http2ProtocolOptions, envoy__config__core__v3__http2_protocol_options__descriptor);
	}
	Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry *e =
	    XNEW(Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry,
	         envoy__config__cluster__v3__cluster__typed_extension_protocol_options_entry__descriptor);
	e->key = wf_xstr(UPSTREAM_HTTP_OPTIONS);
	e->value = wf_xany(&o->base);
	XPUSH(c->typed_extension_protocol_options, c->n_typed_extension_protocol_options, e);
	return 0;
}

static int outlier(struct wf_tx *t, const struct policy *p, Cluster *c)
{
	const IstioOutlier *o = p->outlier;
	if (!o)
		return 0;
	Envoy__Config__Cluster__V3__OutlierDetection *od =
	    XNEW(Envoy__Config__Cluster__V3__OutlierDetection, envoy__config__cluster__v3__outlier_detection__descriptor);
	/* As Istio: consecutive5xxErrors (or the deprecated consecutiveErrors) and
	 * consecutiveGatewayErrors set both the count and its enforcement (0 disables);
	 * success-rate ejection is off. */
	uint32_t c5 = o->consecutive_5xx_errors ? o->consecutive_5xx_errors->value
	              : o->consecutive_errors > 0 ? (uint32_t)o->consecutive_errors : 0;
	if (o->consecutive_5xx_errors || o->consecutive_errors > 0) {
		od->consecutive_5xx = wf_xu32(c5);
		od->enforcing_consecutive_5xx = wf_xu32(c5 ? 100 : 0);
	}
	if (o->consecutive_gateway_errors) {
		od->consecutive_gateway_failure = wf_xu32(o->consecutive_gateway_errors->value);
		od->enforcing_consecutive_gateway_failure = wf_xu32(o->consecutive_gateway_errors->value ? 100 : 0);
	}
	od->split_external_local_origin_errors = o->split_external_local_origin_errors;
	if (o->consecutive_local_origin_failures)
		od->consecutive_local_origin_failure = wf_xu32(o->consecutive_local_origin_failures->value);
	if (o->interval)
		od->interval = wf_xdur(o->interval);
	if (o->base_ejection_time)
		od->base_ejection_time = wf_xdur(o->base_ejection_time);
	if (o->max_ejection_percent > 0)
		od->max_ejection_percent = wf_xu32((uint32_t)(o->max_ejection_percent > 100 ? 100 : o->max_ejection_percent));
	od->enforcing_success_rate = wf_xu32(0);
	c->outlier_detection = od;
	if (o->min_health_percent > 0) {
		c->common_lb_config = XNEW(Envoy__Config__Cluster__V3__Cluster__CommonLbConfig,
		                           envoy__config__cluster__v3__cluster__common_lb_config__descriptor);
		c->common_lb_config->healthy_panic_threshold = XNEW(Envoy__Type__V3__Percent, envoy__type__v3__percent__descriptor);
		c->common_lb_config->healthy_panic_threshold->value = o->min_health_percent;
	}
	return 0;
}

static int tls(struct wf_tx *t, const struct policy *p, const char *host, Cluster *c)
{
	const ClientTls *s = p->tls;
	if (!s || s->mode == ISTIO__NETWORKING__V1ALPHA3__CLIENT_TLSSETTINGS__TLSMODE__DISABLE)
		return 0;
	if (s->mode == ISTIO__NETWORKING__V1ALPHA3__CLIENT_TLSSETTINGS__TLSMODE__ISTIO_MUTUAL)
		return wf_tx_err_at(t, p->doc, s, "mode", "%s: trafficPolicy.tls.mode ISTIO_MUTUAL needs the mesh CA (workload certificates), "
		                 "which Weft's control plane does not issue yet: use SIMPLE or MUTUAL with file paths", p->where);
	if (s->credential_name && *s->credential_name)
		return wf_tx_err_at(t, p->doc, s, "credential_name", "%s: trafficPolicy.tls.credentialName is not supported (no SDS): give clientCertificate, "
		                 "privateKey and caCertificates as file paths", p->where);
	if (s->ca_crl && *s->ca_crl)
		return wf_tx_err_at(t, p->doc, s, "ca_crl", "%s: trafficPolicy.tls.caCrl is not supported yet", p->where);
	int mutual = s->mode == ISTIO__NETWORKING__V1ALPHA3__CLIENT_TLSSETTINGS__TLSMODE__MUTUAL;
	if (mutual && (!*s->client_certificate || !*s->private_key))
		return wf_tx_err_at(t, p->doc, s, "mode", "%s: trafficPolicy.tls: mode MUTUAL needs clientCertificate and privateKey", p->where);
	Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *u =
	    XNEW(Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext,
	         envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__descriptor);
	u->sni = wf_xstr(*s->sni ? s->sni : host);
	Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ctx =
	    XNEW(Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext,
	         envoy__extensions__transport_sockets__tls__v3__common_tls_context__descriptor);
	u->common_tls_context = ctx;
	int skip = s->insecure_skip_verify && s->insecure_skip_verify->value;
	wf_xtls_files(ctx, mutual ? s->client_certificate : NULL, s->private_key, skip ? NULL : s->ca_certificates,
	              s->subject_alt_names, s->n_subject_alt_names);
	c->transport_socket = wf_xtls_socket(&u->base);
	return 0;
}

/* ---- endpoints ------------------------------------------------------------------------------ */

/* The ClusterLoadAssignment of `name`: the service's endpoints whose labels match the subset's
 * (all of them without a subset), one LocalityLbEndpoints per locality in first-seen order. */
static Cla *assignment(const struct wf_service *s, const struct wf_mesh_port *port, const Subset *ss, const char *name)
{
	Cla *cla = XNEW(Cla, envoy__config__endpoint__v3__cluster_load_assignment__descriptor);
	cla->cluster_name = wf_xstr(name);
	struct wf_kv *sel = NULL;
	size_t n_sel = 0;
	if (ss) {
		sel = calloc(ss->n_labels + 1, sizeof(*sel));
		for (size_t i = 0; i < ss->n_labels; i++)
			sel[n_sel++] = (struct wf_kv){ss->labels[i]->key, ss->labels[i]->value};
	}
	for (size_t i = 0; i < s->n_eps; i++) {
		const struct wf_workload *w = s->eps[i];
		if (!wf_labels_match(sel, n_sel, w->labels, w->n_labels))
			continue;
		Envoy__Config__Endpoint__V3__LocalityLbEndpoints *lle = NULL;
		for (size_t k = 0; k < cla->n_endpoints && !lle; k++) {
			const Envoy__Config__Core__V3__Locality *l = cla->endpoints[k]->locality;
			char buf[256];
			snprintf(buf, sizeof(buf), "%s%s%s%s%s", l->region, *l->zone || *l->sub_zone ? "/" : "", l->zone,
			         *l->sub_zone ? "/" : "", l->sub_zone);
			if (!strcmp(buf, w->locality))
				lle = cla->endpoints[k];
		}
		if (!lle) {
			lle = XNEW(Envoy__Config__Endpoint__V3__LocalityLbEndpoints, envoy__config__endpoint__v3__locality_lb_endpoints__descriptor);
			lle->locality = XNEW(Envoy__Config__Core__V3__Locality, envoy__config__core__v3__locality__descriptor);
			/* "region/zone/subzone" */
			char *copy = strdup(w->locality), *z = strchr(copy, '/'), *sz = NULL;
			if (z) {
				*z++ = 0;
				if ((sz = strchr(z, '/')))
					*sz++ = 0;
			}
			lle->locality->region = wf_xstr(copy);
			lle->locality->zone = wf_xstr(z);
			lle->locality->sub_zone = wf_xstr(sz);
			free(copy);
			XPUSH(cla->endpoints, cla->n_endpoints, lle);
		}
		Envoy__Config__Endpoint__V3__LbEndpoint *le =
		    XNEW(Envoy__Config__Endpoint__V3__LbEndpoint, envoy__config__endpoint__v3__lb_endpoint__descriptor);
		le->host_identifier_case = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
		le->endpoint = XNEW(Envoy__Config__Endpoint__V3__Endpoint, envoy__config__endpoint__v3__endpoint__descriptor);
		le->endpoint->address = wf_xaddr(w->address, wf_workload_port(w, port));
		if (w->weight)
			le->load_balancing_weight = wf_xu32(w->weight);
		XPUSH(lle->lb_endpoints, lle->n_lb_endpoints, le);
	}
	free(sel);
	/* the locality's weight: the sum of its endpoints' (Istio sets it, Envoy uses it with
	 * locality-weighted balancing) */
	for (size_t k = 0; k < cla->n_endpoints; k++) {
		uint32_t sum = 0;
		for (size_t i = 0; i < cla->endpoints[k]->n_lb_endpoints; i++) {
			const Envoy__Config__Endpoint__V3__LbEndpoint *le = cla->endpoints[k]->lb_endpoints[i];
			sum += le->load_balancing_weight ? le->load_balancing_weight->value : 1;
		}
		cla->endpoints[k]->load_balancing_weight = wf_xu32(sum);
	}
	return cla;
}

/* An assignment of one endpoint, address:port. */
static Cla *one_endpoint(const char *name, const char *address, uint32_t port)
{
	Cla *cla = XNEW(Cla, envoy__config__endpoint__v3__cluster_load_assignment__descriptor);
	cla->cluster_name = wf_xstr(name);
	Envoy__Config__Endpoint__V3__LocalityLbEndpoints *lle =
	    XNEW(Envoy__Config__Endpoint__V3__LocalityLbEndpoints, envoy__config__endpoint__v3__locality_lb_endpoints__descriptor);
	Envoy__Config__Endpoint__V3__LbEndpoint *le = XNEW(Envoy__Config__Endpoint__V3__LbEndpoint, envoy__config__endpoint__v3__lb_endpoint__descriptor);
	le->host_identifier_case = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
	le->endpoint = XNEW(Envoy__Config__Endpoint__V3__Endpoint, envoy__config__endpoint__v3__endpoint__descriptor);
	le->endpoint->address = wf_xaddr(address, port);
	XPUSH(lle->lb_endpoints, lle->n_lb_endpoints, le);
	XPUSH(cla->endpoints, cla->n_endpoints, lle);
	return cla;
}

/* ---- clusters ------------------------------------------------------------------------------- */

/* One outbound cluster (and, for EDS, its assignment through *cla). */
static Cluster *outbound(struct wf_tx *t, const struct wf_service *s, const struct wf_mesh_port *port,
                         const struct wf_mesh_dr *dr, const Subset *ss, Cla **cla)
{
	char where[300];
	snprintf(where, sizeof(where), "DestinationRule %s/%s%s%s", dr ? dr->ns : "", dr ? dr->name : "",
	         ss ? " subset " : "", ss ? ss->name : "");
	struct policy pol = policy_for(dr, ss, port->number);
	pol.where = where;
	pol.doc = dr ? dr->doc : NULL;
	Cluster *c = XNEW(Cluster, envoy__config__cluster__v3__cluster__descriptor);
	c->name = wf_cluster_name("outbound", port->number, ss ? ss->name : NULL, s->host);
	c->cluster_discovery_type_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
	*cla = NULL;
	if (s->resolution == ISTIO__NETWORKING__V1ALPHA3__SERVICE_ENTRY__RESOLUTION__DNS ||
	    s->resolution == ISTIO__NETWORKING__V1ALPHA3__SERVICE_ENTRY__RESOLUTION__DNS_ROUND_ROBIN) {
		c->type = s->resolution == ISTIO__NETWORKING__V1ALPHA3__SERVICE_ENTRY__RESOLUTION__DNS
		              ? ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STRICT_DNS
		              : ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__LOGICAL_DNS;
		c->dns_lookup_family = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DNS_LOOKUP_FAMILY__V4_ONLY;
		/* a DNS service without endpoints: its own name */
		c->load_assignment = s->n_eps ? assignment(s, port, ss, c->name)
		                             : one_endpoint(c->name, s->host, port->target_port ? port->target_port : port->number);
		if (c->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__LOGICAL_DNS && s->n_eps > 1) {
			/* LOGICAL_DNS takes one endpoint: the first, as Istio does */
			Cla *one = c->load_assignment;
			for (size_t k = 1; k < one->n_endpoints; k++)
				wf_proto_free(&one->endpoints[k]->base);
			one->n_endpoints = one->n_endpoints ? 1 : 0;
			for (size_t k = 1; one->n_endpoints && k < one->endpoints[0]->n_lb_endpoints; k++)
				wf_proto_free(&one->endpoints[0]->lb_endpoints[k]->base);
			if (one->n_endpoints)
				one->endpoints[0]->n_lb_endpoints = 1;
		}
	} else {
		c->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS;
		c->eds_cluster_config = XNEW(Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig,
		                             envoy__config__cluster__v3__cluster__eds_cluster_config__descriptor);
		c->eds_cluster_config->eds_config = wf_xads();
		c->eds_cluster_config->service_name = wf_xstr(c->name);
		*cla = assignment(s, port, ss, c->name);
	}
	if (lb(t, &pol, c) < 0 || pool(t, &pol, port, c) < 0 || outlier(t, &pol, c) < 0 || tls(t, &pol, s->host, c) < 0) {
		wf_proto_free(&c->base);
		if (*cla)
			wf_proto_free(&(*cla)->base);
		*cla = NULL;
		return NULL;
	}
	return c;
}

static int emit_outbound(struct wf_tx *t, const struct wf_service *s, const struct wf_mesh_port *port,
                         const struct wf_mesh_dr *dr, const Subset *ss, Cla ***clas, size_t *n_clas)
{
	Cla *cla;
	Cluster *c = outbound(t, s, port, dr, ss, &cla);
	if (!c)
		return -1;
	wf_tx_emit(t, WF_TYPE_CLUSTER, c->name, &c->base);
	if (cla)
		XPUSH(*clas, *n_clas, cla);
	return 0;
}

static Cluster *static_cluster(const char *name, const char *ip, uint32_t port)
{
	Cluster *c = XNEW(Cluster, envoy__config__cluster__v3__cluster__descriptor);
	c->name = wf_xstr(name);
	c->cluster_discovery_type_case = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE;
	c->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC;
	c->connect_timeout = wf_xdur_ms(10000);
	c->load_assignment = one_endpoint(name, ip, port);
	return c;
}

/* "127.0.0.1:8080" (Sidecar ingress defaultEndpoint) -> ip, port. */
int wf_tx_default_endpoint(struct wf_tx *t, const char *ep, char *ip, size_t iplen, uint32_t *port)
{
	const char *colon = ep ? strrchr(ep, ':') : NULL;
	if (ep && !strncmp(ep, "unix://", 7))
		return wf_tx_err_at(t, t->sidecar->doc, t->sidecar->sc, "ingress", "Sidecar %s/%s: ingress defaultEndpoint '%s': unix sockets are not supported", t->sidecar->ns,
		                 t->sidecar->name, ep);
	if (!colon || colon == ep || (size_t)(colon - ep) >= iplen || !atoi(colon + 1))
		return wf_tx_err_at(t, t->sidecar->doc, t->sidecar->sc, "ingress", "Sidecar %s/%s: ingress defaultEndpoint '%s' is not IP:PORT", t->sidecar->ns, t->sidecar->name,
		                 ep ? ep : "");
	memcpy(ip, ep, (size_t)(colon - ep));
	ip[colon - ep] = 0;
	*port = (uint32_t)atoi(colon + 1);
	return 0;
}

/* inbound|PORT||: the Sidecar's ingress ports to their defaultEndpoint, else each port of each
 * service the workload serves to 127.0.0.1 on its endpoint port. */
static int inbound(struct wf_tx *t)
{
	char **seen = NULL;
	size_t n_seen = 0;
	if (t->sidecar && t->sidecar->sc->n_ingress) {
		for (size_t i = 0; i < t->sidecar->sc->n_ingress; i++) {
			const Istio__Networking__V1alpha3__IstioIngressListener *in = t->sidecar->sc->ingress[i];
			char ip[64];
			uint32_t port;
			if (!in->port)
				return wf_tx_err_at(t, t->sidecar->doc, in, NULL, "Sidecar %s/%s: ingress[%zu] needs a port", t->sidecar->ns, t->sidecar->name, i);
			if (wf_tx_default_endpoint(t, in->default_endpoint, ip, sizeof(ip), &port) < 0)
				return -1;
			char *name = wf_cluster_name("inbound", in->port->number, NULL, NULL);
			Cluster *c = static_cluster(name, ip, port);
			free(name);
			wf_tx_emit(t, WF_TYPE_CLUSTER, c->name, &c->base);
		}
		return 0;
	}
	for (size_t i = 0; i < t->n_own; i++) {
		const struct wf_service *s = t->own[i].s;
		const struct wf_workload *w = t->own[i].w;
		for (size_t p = 0; p < s->n_ports; p++) {
			uint32_t ep = wf_workload_port(w, &s->ports[p]);
			char *name = wf_cluster_name("inbound", ep, NULL, NULL);
			int dup = 0;
			for (size_t k = 0; k < n_seen && !dup; k++)
				dup = !strcmp(seen[k], name);
			if (dup) {
				free(name);
				continue;
			}
			XPUSH(seen, n_seen, name);
			Cluster *c = static_cluster(name, "127.0.0.1", ep);
			wf_tx_emit(t, WF_TYPE_CLUSTER, c->name, &c->base);
		}
	}
	for (size_t k = 0; k < n_seen; k++)
		free(seen[k]);
	free(seen);
	return 0;
}

int wf_tx_check_dr(struct wf_tx *t, const struct wf_mesh_dr *dr)
{
	/* a service of that host with each port the rule names, and one more (HTTP2, so that the
	 * HTTP/2 options are built too) */
	const TrafficPolicy *tps[64];
	size_t n_tps = 0;
	tps[n_tps++] = dr->dr->traffic_policy;
	for (size_t i = 0; i < dr->dr->n_subsets && n_tps < 64; i++)
		tps[n_tps++] = dr->dr->subsets[i]->traffic_policy;
	struct wf_mesh_port ports[65] = {{.number = 1, .name = "grpc", .protocol = "GRPC", .proto = WF_MP_GRPC}};
	size_t n_ports = 1;
	for (size_t i = 0; i < n_tps; i++)
		for (size_t k = 0; tps[i] && k < tps[i]->n_port_level_settings && n_ports < 65; k++)
			if (tps[i]->port_level_settings[k]->port)
				ports[n_ports++] = (struct wf_mesh_port){.number = tps[i]->port_level_settings[k]->port->number,
				                                         .name = "http", .protocol = "HTTP", .proto = WF_MP_HTTP};
	struct wf_service s = {.host = dr->host, .ns = dr->ns, .se_name = "", .ports = ports, .n_ports = n_ports,
	                       .resolution = ISTIO__NETWORKING__V1ALPHA3__SERVICE_ENTRY__RESOLUTION__STATIC};
	for (size_t p = 0; p < n_ports; p++)
		for (size_t k = 0; k <= dr->dr->n_subsets; k++) {
			Cla *cla;
			Cluster *c = outbound(t, &s, &ports[p], dr, k ? dr->dr->subsets[k - 1] : NULL, &cla);
			if (!c)
				return -1;
			wf_proto_free(&c->base);
			if (cla)
				wf_proto_free(&cla->base);
		}
	return 0;
}

int wf_tx_clusters(struct wf_tx *t)
{
	Cla **clas = NULL;
	size_t n_clas = 0;
	int rc = 0;
	for (size_t i = 0; (t->parts & WF_TX_OUTBOUND) && i < t->n_svcs && rc == 0; i++) {
		const struct wf_service *s = t->svcs[i];
		if (s->resolution == ISTIO__NETWORKING__V1ALPHA3__SERVICE_ENTRY__RESOLUTION__NONE && !s->n_eps) {
			wf_tx_warn(t, "ServiceEntry %s/%s: %s has resolution NONE and no endpoints: no cluster (Weft has no "
			           "original-destination passthrough)", s->ns, s->se_name, s->host);
			continue;
		}
		const struct wf_mesh_dr *dr = wf_mesh_dr_for(t->m, s->host, t->p->ns);
		for (size_t p = 0; p < s->n_ports && rc == 0; p++) {
			rc = emit_outbound(t, s, &s->ports[p], dr, NULL, &clas, &n_clas);
			for (size_t k = 0; dr && k < dr->dr->n_subsets && rc == 0; k++)
				rc = emit_outbound(t, s, &s->ports[p], dr, dr->dr->subsets[k], &clas, &n_clas);
		}
	}
	if (rc == 0 && t->p->kind == WF_PROXY_SIDECAR && (t->parts & WF_TX_INBOUND))
		rc = inbound(t);
	/* EDS after CDS: make-before-break */
	for (size_t i = 0; i < n_clas; i++) {
		if (rc == 0)
			wf_tx_emit(t, WF_TYPE_ENDPOINT, clas[i]->cluster_name, &clas[i]->base);
		else
			wf_proto_free(&clas[i]->base);
	}
	free(clas);
	return rc;
}
