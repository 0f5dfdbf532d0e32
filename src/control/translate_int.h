/* Internal to the translator (control/translate*.c): message building helpers and the state
 * of one proxy's translation. Every message is malloc'd (wf_proto_new) with malloc'd strings
 * and arrays, so that protobuf_c_message_free_unpacked (wf_proto_free) frees it whole. */
#ifndef WF_CONTROL_TRANSLATE_INT_H
#define WF_CONTROL_TRANSLATE_INT_H

#include <stdlib.h>
#include <string.h>

#include "control/mesh_int.h"
#include "control/translate.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/core/v3/config_source.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/config/route/v3/route_components.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "envoy/type/matcher/v3/string.pb-c.h"
#include "envoy/type/matcher/v3/regex.pb-c.h"
#include "xds/registry.h"

/* A new message of type T (its generated name) from descriptor d. */
#define XNEW(T, d) ((T *)wf_proto_new(&(d)))
/* XPUSH (control/mesh_int.h) appends to a repeated field arr / n. */
char *wf_xstr(const char *s);                              /* strdup, "" for NULL */
char *wf_xfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
Google__Protobuf__UInt32Value *wf_xu32(uint32_t v);
Google__Protobuf__BoolValue *wf_xbool(int v);
Google__Protobuf__Duration *wf_xdur(const Google__Protobuf__Duration *d); /* a copy */
Google__Protobuf__Duration *wf_xdur_ms(uint64_t ms);
/* An Any holding m (serialized; m is freed). */
Google__Protobuf__Any *wf_xany(ProtobufCMessage *m);
/* TLS from files into ctx: a certificate when cert is not empty (with key), a validation
 * context when ca is not empty (with the SANs as exact DNS matchers). */
void wf_xtls_files(Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ctx, const char *cert,
                   const char *key, const char *ca, char **sans, size_t n_sans);
/* envoy.transport_sockets.tls holding tls_context (an Upstream/DownstreamTlsContext, taken). */
Envoy__Config__Core__V3__TransportSocket *wf_xtls_socket(ProtobufCMessage *tls_context);
/* {ads: {}} */
Envoy__Config__Core__V3__ConfigSource *wf_xads(void);
Envoy__Config__Core__V3__Address *wf_xaddr(const char *ip, uint32_t port);

/* The translation of one proxy. */
struct wf_tx {
	const struct wf_mesh *m;
	const struct wf_proxy_info *p;
	wf_translate_emit emit;
	void *ctx;
	char *err;
	size_t errlen;
	void (*warn)(void *ctx, const char *msg);
	int count;
	/* the services this proxy sees (exportTo, Sidecar egress hosts), in host order */
	const struct wf_service **svcs;
	size_t n_svcs;
	/* the services whose endpoints include this proxy (its own workload in each), in the
	 * mesh's order: a sidecar's inbound half */
	struct wf_tx_own {
		const struct wf_service *s;
		const struct wf_workload *w;
	} *own;
	size_t n_own;
	const struct wf_mesh_sidecar *sidecar;  /* the Sidecar that applies, or NULL */
	unsigned parts;                         /* WF_TX_OUTBOUND | WF_TX_INBOUND */
	const char *gateway;                    /* "NS/NAME" of the Gateway being served, NULL: mesh */
	int check;                              /* wf_translate_check: every match applies */
};

/* Listeners and route configurations being produced: emitted LDS first, then RDS. */
struct wf_tx_out {
	Envoy__Config__Listener__V3__Listener **l;
	size_t n_l;
	Envoy__Config__Route__V3__RouteConfiguration **rc;
	size_t n_rc;
};

void wf_tx_emit(struct wf_tx *t, const char *type_url, const char *name, ProtobufCMessage *msg);
int wf_tx_err(struct wf_tx *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same, the text preceded by "FILE:LINE:COL: " where message msg of doc (its field `field`
 * when given and known) was read. */
int wf_tx_err_at(struct wf_tx *t, const struct wf_cfgdoc *doc, const void *msg, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void wf_tx_warn(struct wf_tx *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "outbound|PORT|SUBSET|HOST" (malloc'd). */
char *wf_cluster_name(const char *dir, uint32_t port, const char *subset, const char *host);

/* CDS and EDS (translate_cluster.c): outbound clusters of the visible services, inbound
 * clusters of the proxy's own workload. */
int wf_tx_clusters(struct wf_tx *t);
/* RDS (translate_route.c): the route configuration of an outbound HTTP port, or of one
 * service port for a gRPC client (host != NULL). NULL with t->err on error. */
Envoy__Config__Route__V3__RouteConfiguration *wf_tx_route_config(struct wf_tx *t, uint32_t port, const char *host,
                                                                  const char *name);
/* The names a service host goes by from namespace ns (room for 4 in out, each malloc'd):
 * the host, and for NAME.NS.svc.cluster.local also NAME.NS.svc, NAME.NS and, from NS itself,
 * NAME. Returns how many. */
size_t wf_host_forms(const char *host, const char *ns, char **out);
/* A default route to cluster (Istio's "default" route), and the default retry policy. */
Envoy__Config__Route__V3__Route *wf_tx_default_route(const char *cluster);
/* The load balancer settings that apply to host/subset/port (DestinationRule merging). */
const Istio__Networking__V1alpha3__LoadBalancerSettings *wf_tx_lb_for(const struct wf_tx *t, const char *host,
                                                                        const char *subset, uint32_t port);
/* A Sidecar ingress defaultEndpoint "IP:PORT" into ip and *port; <0 with t->err. */
int wf_tx_default_endpoint(struct wf_tx *t, const char *ep, char *ip, size_t iplen, uint32_t *port);
/* LDS (translate_listener.c). */
int wf_tx_listeners(struct wf_tx *t);
/* An HttpConnectionManager (stat_prefix, rds named rds_name, the HTTP filters of `filters`) as
 * the message to put in a typed_config. */
enum { WF_HCM_ROUTER, WF_HCM_FAULT, WF_HCM_SIDECAR };
ProtobufCMessage *wf_tx_hcm(const char *stat_prefix, const char *rds_name, int filters);
/* A network filter of that name and config (taken). */
Envoy__Config__Listener__V3__Filter *wf_tx_network_filter(const char *name, ProtobufCMessage *cfg);
/* A listener "IP_PORT" on ip:port with one filter chain of one network filter (cfg taken). */
Envoy__Config__Listener__V3__Listener *wf_tx_listener(const char *ip, uint32_t port, ProtobufCMessage *cfg,
                                                      const char *filter_name);
#define WF_HCM_NAME "envoy.filters.network.http_connection_manager"
#define WF_TCP_PROXY_NAME "envoy.filters.network.tcp_proxy"
/* A tcp_proxy to cluster (stat_prefix: the cluster). */
Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *wf_tx_tcp_proxy(const char *cluster);
/* tp's destination: route's destinations (of a VirtualService in namespace ns), weighted when
 * several; a destination without a port goes to its service's only port, else to `port`. */
void wf_tx_tcp_destinations(struct wf_tx *t, Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp,
                            Istio__Networking__V1alpha3__RouteDestination **route, size_t n_route, const char *ns,
                            uint32_t port);
/* Translate one object alone, for wf_translate_check (translate_check.c): 0 or <0 with t->err. */
int wf_tx_check_dr(struct wf_tx *t, const struct wf_mesh_dr *dr);
int wf_tx_check_vs(struct wf_tx *t, const struct wf_mesh_vs *v);
int wf_tx_check_gateway(struct wf_tx *t, const struct wf_mesh_gateway *g);
/* Gateways (translate_gateway.c): a router proxy's listeners and routes. */
int wf_tx_gateways(struct wf_tx *t, struct wf_tx_out *o);
/* A router's virtual host for host on port, with the routes of the VirtualServices bound to
 * t->gateway that name host; NULL with t->err on error. */
Envoy__Config__Route__V3__VirtualHost *wf_tx_gateway_vhost(struct wf_tx *t, const char *host, uint32_t port);
/* Is VirtualService v bound to what t serves (t->gateway, or the mesh)? */
int wf_tx_vs_bound(const struct wf_tx *t, const struct wf_mesh_vs *v);
/* Does a gateways list entry (as written in a VirtualService of namespace vs_ns) name gw
 * ("NS/NAME")? */
int wf_gateway_ref_is(const char *ref, const char *vs_ns, const char *gw);
/* What a VirtualService match (HTTPMatchRequest, L4MatchAttributes, TLSMatchAttributes) says
 * of the proxies and port it applies to; WF_TX_WHERE(m) takes it from any of the three. */
struct wf_tx_where {
	uint32_t port;
	size_t n_gateways;
	char *const *gateways;
	size_t n_source_labels;
	ProtobufCMessage *const *source_labels; /* the match type's map entries (key, value) */
	const char *source_namespace;
};
#define WF_TX_WHERE(m)                                                                                                 \
	((struct wf_tx_where){(m)->port, (m)->n_gateways, (m)->gateways, (m)->n_source_labels,                         \
	                      (ProtobufCMessage *const *)(m)->source_labels, (m)->source_namespace})
/* Does a match of a VirtualService in vs_ns apply to this proxy and port: its port, its
 * gateways (a sidecar: "mesh"; a gateway: t->gateway; none listed: any), the proxy's labels
 * holding its sourceLabels, and the proxy's namespace being its sourceNamespace? */
int wf_tx_match_here(const struct wf_tx *t, const char *vs_ns, const struct wf_tx_where *w, uint32_t port);

#endif
