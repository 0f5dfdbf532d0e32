/* The translator: Istio objects (the YAML files under tests/unit/control/data) and a proxy's Node in, Envoy
 * resources out — their names and key fields, and (the strong check) that the proxy's own
 * compiler accepts everything produced for a sidecar: the resources are put in a Bootstrap
 * (clusters and listeners static, RDS inlined as route_config, EDS as load_assignment),
 * printed as JSON and loaded by wf_config_load. */
#include "test.h"

#include "control/mesh.h"
#include "control/translate.h"
#include "control/translate_source.h"
#include "control/xds_cache.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"
#include "envoy/config/cluster/v3/circuit_breaker.pb-c.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/cluster/v3/outlier_detection.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/config/route/v3/route_components.pb-c.h"
#include "envoy/extensions/filters/http/fault/v3/fault.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "filter/filters.h"
#include "proxy/config.h"
#include "proxy/stats.h"
#include "xds/cfgdoc.h"
#include "xds/json.h"
#include "xds/registry.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Config__Endpoint__V3__ClusterLoadAssignment Cla;
typedef Envoy__Config__Listener__V3__Listener Listener;
typedef Envoy__Config__Route__V3__RouteConfiguration RouteConfiguration;
typedef Envoy__Config__Route__V3__VirtualHost VirtualHost;
typedef Envoy__Config__Route__V3__Route Route;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;

#define DATA "tests/unit/control/data/"

/* ---- fixtures ------------------------------------------------------------------------------- */

struct res {
	char *type, *name;
	ProtobufCMessage *msg;
};

struct out {
	struct res *v;
	size_t n;
	char warnings[1024];  /* the translator's warnings, one a line */
	int order_ok;    /* types came in CDS, EDS, LDS, RDS order */
	int last_rank;
};

static int rank(const char *type)
{
	return !strcmp(type, WF_TYPE_CLUSTER) ? 0 : !strcmp(type, WF_TYPE_ENDPOINT) ? 1 : !strcmp(type, WF_TYPE_LISTENER) ? 2 : 3;
}

static void collect(void *ctx, const char *type, const char *name, ProtobufCMessage *msg)
{
	struct out *o = ctx;
	o->v = realloc(o->v, (o->n + 1) * sizeof(*o->v));
	o->v[o->n++] = (struct res){strdup(type), strdup(name), msg};
	if (rank(type) < o->last_rank)
		o->order_ok = 0;
	o->last_rank = rank(type);
}

static void warned(void *ctx, const char *msg)
{
	struct out *o = ctx;
	size_t k = strlen(o->warnings);
	snprintf(o->warnings + k, sizeof(o->warnings) - k, "%s\n", msg);
}

static void out_free(struct out *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->v[i].type);
		free(o->v[i].name);
		wf_proto_free(o->v[i].msg);
	}
	free(o->v);
	memset(o, 0, sizeof(*o));
}

static const void *find(const struct out *o, const char *type, const char *name)
{
	for (size_t i = 0; i < o->n; i++)
		if (!strcmp(o->v[i].type, type) && !strcmp(o->v[i].name, name))
			return o->v[i].msg;
	return NULL;
}

static size_t count(const struct out *o, const char *type)
{
	size_t n = 0;
	for (size_t i = 0; i < o->n; i++)
		n += !strcmp(o->v[i].type, type);
	return n;
}

static const char *const bookinfo[] = {DATA "bookinfo.yaml", DATA "routing.yaml", NULL};
static const char *const policies[] = {DATA "policies.yaml", NULL};
static const char *const with_gateway[] = {DATA "bookinfo.yaml", DATA "routing.yaml", DATA "gateway.yaml", NULL};
static const char *const *files = bookinfo;   /* what store() loads */

/* The store of `files`; NULL when one is refused (its first error in err, when given: what
 * no proxy could be given is refused at load, as the control plane's store refuses it). */
static struct wf_store *store_err(char *err, size_t errlen)
{
	struct wf_store *s = wf_store_new();
	struct wf_errs e = {0};
	int bad = 0;
	for (const char *const *f = files; *f && !bad; f++)
		bad = wf_store_load_file(s, *f, &e) < 0;
	if (bad) {
		if (err && e.n)
			snprintf(err, errlen, "%s", e.v[0]);
		for (size_t i = 0; i < e.n; i++)
			printf("  %s\n", e.v[i]);
		wf_errs_free(&e);
		wf_store_free(s);
		return NULL;
	}
	wf_errs_free(&e);
	return s;
}

static struct wf_store *store(void) { return store_err(NULL, 0); }

/* A Node from YAML (metadata as a map). */
static Envoy__Config__Core__V3__Node *node(const char *yaml)
{
	char err[256];
	Envoy__Config__Core__V3__Node *n = wf_node_from_yaml(NULL, yaml, err, sizeof(err));
	if (!n)
		printf("  node: %s\n", err);
	return n;
}

#define PRODUCTPAGE                                                                  \
	"id: sidecar~127.0.0.31~productpage-v1-abc.default~default.svc.cluster.local\n"  \
	"metadata:\n"                                                                    \
	"  NAMESPACE: default\n"                                                         \
	"  WORKLOAD_NAME: productpage-v1\n"                                              \
	"  LABELS: {app: productpage, version: v1}\n"                                    \
	"  SERVICE_ACCOUNT: bookinfo-productpage\n"                                      \
	"  INSTANCE_IPS: 127.0.0.31,fd00::31\n"                                          \
	"  INTERCEPTION_MODE: NONE\n"

/* Translate for the node given as YAML; the registry gets productpage's sidecar first. */
static int run_boot(const char *node_yaml, struct out *o, ProtobufCMessage **boot, char *err, size_t errlen)
{
	memset(o, 0, sizeof(*o));
	o->order_ok = 1;
	struct wf_store *s = store_err(err, errlen);
	if (!s)
		return -1;
	struct wf_registry *reg = wf_registry_new();
	Envoy__Config__Core__V3__Node *pp = node(PRODUCTPAGE), *n = node(node_yaml);
	int rc = -1;
	if (pp && n && wf_registry_add_node(reg, pp, err, errlen) == 1) {
		struct wf_mesh *m = wf_mesh_build(s, reg);
		wf_store_free(s); /* the mesh holds what it needs */
		s = NULL;
		struct wf_proxy_info p;
		rc = wf_proxy_from_node(n, &p, err, errlen);
		if (rc == 0) {
			rc = wf_translate(m, &p, collect, o, err, errlen, warned);
			if (rc >= 0 && boot && wf_translate_bootstrap(m, &p, 0, 1, boot, err, errlen, NULL, NULL) < 0)
				rc = -1;
			wf_proxy_info_clear(&p);
		}
		wf_mesh_free(m);
	}
	wf_proto_free(&pp->base);
	wf_proto_free(&n->base);
	wf_registry_free(reg);
	wf_store_free(s);
	if (rc < 0)
		printf("  translate: %s\n", err);
	return rc;
}

static int run(const char *node_yaml, struct out *o, char *err, size_t errlen)
{
	return run_boot(node_yaml, o, NULL, err, errlen);
}

static const Hcm *listener_hcm(const Listener *l)
{
	if (!l || l->n_filter_chains != 1 || l->filter_chains[0]->n_filters != 1)
		return NULL;
	const Google__Protobuf__Any *a = l->filter_chains[0]->filters[0]->typed_config;
	static Hcm *last;
	if (last)
		wf_proto_free(&last->base);
	last = (Hcm *)protobuf_c_message_unpack(
	    &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor, NULL,
	    a->value.len, a->value.data);
	return last;
}

static const VirtualHost *vhost(const RouteConfiguration *rc, const char *name)
{
	for (size_t i = 0; rc && i < rc->n_virtual_hosts; i++)
		if (!strcmp(rc->virtual_hosts[i]->name, name))
			return rc->virtual_hosts[i];
	return NULL;
}

static int has_domain(const VirtualHost *vh, const char *d)
{
	for (size_t i = 0; i < vh->n_domains; i++)
		if (!strcmp(vh->domains[i], d))
			return 1;
	return 0;
}

static uint32_t endpoint_count(const Cla *c)
{
	uint32_t n = 0;
	for (size_t i = 0; c && i < c->n_endpoints; i++)
		n += (uint32_t)c->endpoints[i]->n_lb_endpoints;
	return n;
}

static const void *unpack(const Google__Protobuf__Any *a, const ProtobufCMessageDescriptor *d)
{
	static ProtobufCMessage *last;
	if (last)
		wf_proto_free(last);
	return last = protobuf_c_message_unpack(d, NULL, a->value.len, a->value.data);
}

#define INGRESS                                                                  \
	"id: router~127.0.0.90~ingress-1.default~default.svc.cluster.local\n"     \
	"metadata: {NAMESPACE: default, LABELS: {istio: ingressgateway}}\n"

#define RV "reviews.default.svc.cluster.local"

/* ---- tests ---------------------------------------------------------------------------------- */

TEST(node_identity)
{
	Envoy__Config__Core__V3__Node *n = node(PRODUCTPAGE);
	CHECK(n);
	struct wf_proxy_info p;
	char err[256];
	CHECK_EQ(wf_proxy_from_node(n, &p, err, sizeof(err)), 0);
	CHECK_EQ(p.kind, WF_PROXY_SIDECAR);
	CHECK(!strcmp(p.ip, "127.0.0.31"));
	CHECK(!strcmp(p.ns, "default"));
	CHECK(!strcmp(p.name, "productpage-v1"));
	CHECK(!strcmp(p.service_account, "bookinfo-productpage"));
	CHECK_EQ(p.n_labels, 2);
	CHECK(p.interception_none);
	wf_proxy_info_clear(&p);
	wf_proto_free(&n->base);
	/* a gateway, a proxyless client, and bad LABELS */
	n = node("id: router~10.0.0.9~ingress-1.istio-system~istio-system.svc.cluster.local\n");
	CHECK_EQ(wf_proxy_from_node(n, &p, err, sizeof(err)), 0);
	CHECK_EQ(p.kind, WF_PROXY_ROUTER);
	CHECK(!strcmp(p.ns, "istio-system"));
	wf_proxy_info_clear(&p);
	wf_proto_free(&n->base);
	n = node("id: grpc-client-7\n");
	CHECK_EQ(wf_proxy_from_node(n, &p, err, sizeof(err)), 0);
	CHECK_EQ(p.kind, WF_PROXY_GRPC);
	wf_proxy_info_clear(&p);
	wf_proto_free(&n->base);
	n = node("id: sidecar~1.2.3.4~a.b~b.svc.cluster.local\nmetadata: {LABELS: null}\n");
	CHECK_EQ(wf_proxy_from_node(n, &p, err, sizeof(err)), 0); /* no labels */
	CHECK_EQ(p.n_labels, 0);
	wf_proxy_info_clear(&p);
	wf_proto_free(&n->base);
	n = node("id: sidecar~1.2.3.4~a.b~b.svc.cluster.local\nmetadata: {LABELS: oops}\n");
	CHECK(wf_proxy_from_node(n, &p, err, sizeof(err)) < 0);
	CHECK(strstr(err, "LABELS"));
	wf_proto_free(&n->base);
}

TEST(registry)
{
	struct wf_registry *r = wf_registry_new();
	Envoy__Config__Core__V3__Node *n = node(PRODUCTPAGE);
	char err[256];
	CHECK_EQ(wf_registry_add_node(r, n, err, sizeof(err)), 1);
	CHECK_EQ(wf_registry_add_node(r, n, err, sizeof(err)), 0); /* unchanged */
	CHECK_EQ(wf_registry_count(r), 1);
	struct wf_store *s = store();
	CHECK(s);
	struct wf_mesh *m = wf_mesh_build(s, r);
	const struct wf_service *pp = wf_mesh_service(m, "productpage.default.svc.cluster.local");
	CHECK(pp && pp->n_eps == 1 && !strcmp(pp->eps[0]->address, "127.0.0.31"));
	wf_mesh_free(m);
	CHECK_EQ(wf_registry_remove(r, n->id), 1);
	CHECK_EQ(wf_registry_remove(r, n->id), 0);
	m = wf_mesh_build(s, r);
	pp = wf_mesh_service(m, "productpage.default.svc.cluster.local");
	CHECK(pp && pp->n_eps == 0);
	wf_mesh_free(m);
	wf_store_free(s);
	wf_proto_free(&n->base);
	wf_registry_free(r);
}

TEST(clusters_and_policy)
{
	struct out o;
	char err[512];
	CHECK(run(PRODUCTPAGE, &o, err, sizeof(err)) > 0);
	CHECK(o.order_ok);
	const Cluster *c = find(&o, WF_TYPE_CLUSTER, "outbound|9080||" RV);
	CHECK(c);
	CHECK_EQ(c->type, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS);
	CHECK(c->eds_cluster_config && !strcmp(c->eds_cluster_config->service_name, "outbound|9080||" RV));
	CHECK(c->eds_cluster_config->eds_config->config_source_specifier_case ==
	      ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS);
	/* the DestinationRule's policy */
	CHECK_EQ(c->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN);
	CHECK_EQ(c->connect_timeout->seconds, 1);
	CHECK_EQ(c->circuit_breakers->thresholds[0]->max_connections->value, 100);
	CHECK_EQ(c->circuit_breakers->thresholds[0]->max_pending_requests->value, 64);
	CHECK_EQ(c->circuit_breakers->thresholds[0]->max_retries->value, 3);
	CHECK_EQ(c->outlier_detection->consecutive_5xx->value, 5);
	CHECK_EQ(c->outlier_detection->interval->seconds, 10);
	CHECK_EQ(c->outlier_detection->base_ejection_time->seconds, 30);
	CHECK_EQ(c->outlier_detection->max_ejection_percent->value, 50);
	CHECK_EQ(c->n_typed_extension_protocol_options, 1); /* maxRequestsPerConnection */
	/* subsets; v3's own policy replaces the load balancer only */
	CHECK(find(&o, WF_TYPE_CLUSTER, "outbound|9080|v1|" RV));
	CHECK(find(&o, WF_TYPE_CLUSTER, "outbound|9080|v2|" RV));
	const Cluster *v3 = find(&o, WF_TYPE_CLUSTER, "outbound|9080|v3|" RV);
	CHECK(v3);
	CHECK_EQ(v3->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RING_HASH);
	CHECK_EQ(v3->circuit_breakers->thresholds[0]->max_connections->value, 100);
	/* no DestinationRule: Istio's defaults */
	const Cluster *r = find(&o, WF_TYPE_CLUSTER, "outbound|9080||ratings.default.svc.cluster.local");
	CHECK(r);
	CHECK_EQ(r->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST);
	CHECK_EQ(r->connect_timeout->seconds, 10);
	CHECK(!r->outlier_detection);
	/* DNS resolution: STRICT_DNS with its endpoints inline, no EDS */
	const Cluster *ext = find(&o, WF_TYPE_CLUSTER, "outbound|8443||ext.example.com");
	CHECK(ext);
	CHECK_EQ(ext->type, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STRICT_DNS);
	CHECK(ext->load_assignment && endpoint_count(ext->load_assignment) == 1);
	CHECK(!find(&o, WF_TYPE_ENDPOINT, "outbound|8443||ext.example.com"));
	/* gRPC ports get HTTP/2 upstreams */
	const Cluster *g = find(&o, WF_TYPE_CLUSTER, "outbound|50051||greeter.default.svc.cluster.local");
	CHECK(g && g->n_typed_extension_protocol_options == 1);
	/* the proxy's own inbound cluster, to the app on 127.0.0.1 */
	const Cluster *in = find(&o, WF_TYPE_CLUSTER, "inbound|9080||");
	CHECK(in);
	CHECK(!strcmp(in->load_assignment->endpoints[0]->lb_endpoints[0]->endpoint->address->socket_address->address, "127.0.0.1"));
	out_free(&o);
}

TEST(endpoints_by_labels)
{
	struct out o;
	char err[512];
	CHECK(run(PRODUCTPAGE, &o, err, sizeof(err)) > 0);
	const Cla *all = find(&o, WF_TYPE_ENDPOINT, "outbound|9080||" RV);
	CHECK(all);
	CHECK_EQ(endpoint_count(all), 3);
	CHECK_EQ(all->n_endpoints, 2); /* zone-a (v1, v3) and zone-b (v2) */
	CHECK(!strcmp(all->endpoints[0]->locality->region, "us-east"));
	CHECK(!strcmp(all->endpoints[0]->locality->zone, "zone-a"));
	CHECK_EQ(all->endpoints[0]->load_balancing_weight->value, 3); /* v1's weight 2 + v3's 1 */
	const Cla *v1 = find(&o, WF_TYPE_ENDPOINT, "outbound|9080|v1|" RV);
	CHECK(v1 && endpoint_count(v1) == 1);
	const Envoy__Config__Endpoint__V3__LbEndpoint *le = v1->endpoints[0]->lb_endpoints[0];
	CHECK(!strcmp(le->endpoint->address->socket_address->address, "127.0.0.11"));
	CHECK_EQ(le->endpoint->address->socket_address->port_value, 9080);
	CHECK_EQ(le->load_balancing_weight->value, 2);
	/* v3's WorkloadEntry maps the port name "http" to 9081 */
	const Cla *v3 = find(&o, WF_TYPE_ENDPOINT, "outbound|9080|v3|" RV);
	CHECK(v3 && endpoint_count(v3) == 1);
	CHECK_EQ(v3->endpoints[0]->lb_endpoints[0]->endpoint->address->socket_address->port_value, 9081);
	/* the registered sidecar is productpage's endpoint */
	const Cla *pp = find(&o, WF_TYPE_ENDPOINT, "outbound|9080||productpage.default.svc.cluster.local");
	CHECK(pp && endpoint_count(pp) == 1);
	out_free(&o);
}

TEST(routes)
{
	struct out o;
	char err[512];
	CHECK(run(PRODUCTPAGE, &o, err, sizeof(err)) > 0);
	const RouteConfiguration *rc = find(&o, WF_TYPE_ROUTE, "9080");
	CHECK(rc);
	const VirtualHost *vh = vhost(rc, RV ":9080");
	CHECK(vh);
	CHECK(has_domain(vh, RV));
	CHECK(has_domain(vh, RV ":9080"));
	CHECK(has_domain(vh, "reviews"));
	CHECK(has_domain(vh, "reviews:9080"));
	CHECK(has_domain(vh, "reviews.default.svc"));
	CHECK_EQ(vh->n_routes, 2);
	/* header match -> v2, with the fault filter's per-route config */
	const Route *r = vh->routes[0];
	CHECK(!strcmp(r->name, "jason"));
	CHECK_EQ(r->match->n_headers, 1);
	CHECK(!strcmp(r->match->headers[0]->name, "end-user"));
	CHECK(!strcmp(r->match->headers[0]->string_match->exact, "jason"));
	CHECK(!strcmp(r->route->cluster, "outbound|9080|v2|" RV));
	CHECK_EQ(r->n_typed_per_filter_config, 1);
	CHECK(!strcmp(r->typed_per_filter_config[0]->key, "envoy.filters.http.fault"));
	const Google__Protobuf__Any *a = r->typed_per_filter_config[0]->value;
	Envoy__Extensions__Filters__Http__Fault__V3__HTTPFault *f = (void *)protobuf_c_message_unpack(
	    &envoy__extensions__filters__http__fault__v3__httpfault__descriptor, NULL, a->value.len, a->value.data);
	CHECK(f && f->abort && f->abort->http_status == 503);
	CHECK_EQ(f->abort->percentage->numerator, 100000); /* 10% in millionths */
	CHECK_EQ(f->delay->fixed_delay->seconds, 2);
	wf_proto_free(&f->base);
	/* no retries given: Istio's default policy */
	CHECK_EQ(r->route->retry_policy->num_retries->value, 2);
	/* the 80/20 split, with timeout, retries and the mirror */
	r = vh->routes[1];
	CHECK_EQ(r->route->cluster_specifier_case, ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS);
	const Envoy__Config__Route__V3__WeightedCluster *wc = r->route->weighted_clusters;
	CHECK_EQ(wc->n_clusters, 2);
	CHECK(!strcmp(wc->clusters[0]->name, "outbound|9080|v1|" RV));
	CHECK_EQ(wc->clusters[0]->weight->value, 80);
	CHECK(!strcmp(wc->clusters[1]->name, "outbound|9080|v3|" RV));
	CHECK_EQ(wc->clusters[1]->weight->value, 20);
	CHECK_EQ(wc->clusters[1]->n_response_headers_to_add, 1);
	CHECK_EQ(r->route->timeout->seconds, 10);
	CHECK_EQ(r->route->retry_policy->num_retries->value, 3);
	CHECK_EQ(r->route->retry_policy->per_try_timeout->seconds, 2);
	CHECK(!strcmp(r->route->retry_policy->retry_on, "5xx,gateway-error,connect-failure,retriable-status-codes"));
	CHECK_EQ(r->route->retry_policy->n_retriable_status_codes, 1);
	CHECK_EQ(r->route->retry_policy->retriable_status_codes[0], 503);
	CHECK_EQ(r->route->n_request_mirror_policies, 1);
	CHECK(!strcmp(r->route->request_mirror_policies[0]->cluster, "outbound|9080|v2|" RV));
	CHECK_EQ(r->route->request_mirror_policies[0]->runtime_fraction->default_value->numerator, 500000);
	/* the v1 destination's DestinationRule has no consistent hash; hash policies follow v1 */
	CHECK_EQ(r->route->n_hash_policy, 0);
	/* a host without VirtualService: Istio's default route */
	vh = vhost(rc, "productpage.default.svc.cluster.local:9080");
	CHECK(vh && vh->n_routes == 1);
	CHECK(!strcmp(vh->routes[0]->name, "default"));
	CHECK(!strcmp(vh->routes[0]->match->prefix, "/"));
	CHECK(!strcmp(vh->routes[0]->route->cluster, "outbound|9080||productpage.default.svc.cluster.local"));
	CHECK_EQ(vh->routes[0]->route->timeout->seconds, 0);
	/* ratings: redirect, direct response, matches, rewrite, headers, CORS */
	vh = vhost(rc, "ratings.default.svc.cluster.local:9080");
	CHECK(vh && vh->n_routes == 4);
	CHECK_EQ(vh->routes[0]->action_case, ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_REDIRECT);
	CHECK(!strcmp(vh->routes[0]->redirect->path_redirect, "/ratings"));
	CHECK_EQ(vh->routes[0]->redirect->response_code, ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__REDIRECT_RESPONSE_CODE__FOUND);
	CHECK_EQ(vh->routes[1]->action_case, ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_DIRECT_RESPONSE);
	CHECK_EQ(vh->routes[1]->direct_response->status, 418);
	r = vh->routes[2];
	CHECK(r->match->case_sensitive && !r->match->case_sensitive->value);
	CHECK(!strcmp(r->match->prefix, "/RATINGS"));
	CHECK_EQ(r->match->n_headers, 1);
	CHECK(!strcmp(r->match->headers[0]->name, ":method"));
	CHECK_EQ(r->match->n_query_parameters, 1);
	CHECK(!strcmp(r->route->host_rewrite_literal, "ratings.internal"));
	CHECK_EQ(r->n_request_headers_to_add, 1);
	CHECK_EQ(r->n_request_headers_to_remove, 1);
	CHECK(!strcmp(r->typed_per_filter_config[0]->key, "envoy.filters.http.cors"));
	r = vh->routes[3];
	CHECK(r->match->safe_regex && !strcmp(r->match->safe_regex->regex, "/r/[0-9]+"));
	CHECK(r->match->headers[0]->invert_match);
	out_free(&o);
}

TEST(listeners)
{
	struct out o;
	char err[512];
	CHECK(run(PRODUCTPAGE, &o, err, sizeof(err)) > 0);
	/* outbound HTTP: bound to 127.0.0.1 (no capture), HCM with rds "9080" */
	const Listener *l = find(&o, WF_TYPE_LISTENER, "127.0.0.1_9080");
	CHECK(l);
	CHECK(!strcmp(l->address->socket_address->address, "127.0.0.1"));
	const Hcm *h = listener_hcm(l);
	CHECK(h && h->rds);
	CHECK(!strcmp(h->rds->route_config_name, "9080"));
	CHECK(h->rds->config_source->ads);
	CHECK_EQ(h->n_http_filters, 3);
	CHECK(!strcmp(h->http_filters[0]->name, "envoy.filters.http.fault"));
	CHECK(!strcmp(h->http_filters[1]->name, "envoy.filters.http.cors"));
	CHECK(!strcmp(h->http_filters[2]->name, "envoy.filters.http.router"));
	/* outbound TCP: tcp_proxy to the cluster */
	l = find(&o, WF_TYPE_LISTENER, "127.0.0.1_3306");
	CHECK(l);
	CHECK(!strcmp(l->filter_chains[0]->filters[0]->name, "envoy.filters.network.tcp_proxy"));
	/* TLS: one chain per service by SNI, a tls route's weights */
	l = find(&o, WF_TYPE_LISTENER, "127.0.0.1_8443");
	CHECK(l && l->n_filter_chains == 2 && !l->default_filter_chain);
	CHECK(!strcmp(l->filter_chains[0]->filter_chain_match->server_names[0], "ext.example.com"));
	CHECK(!strcmp(l->filter_chains[1]->filter_chain_match->server_names[0], "payments.example.com"));
	const Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp = unpack(
	    l->filter_chains[0]->filters[0]->typed_config, &envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor);
	CHECK(tp && !strcmp(tp->cluster, "outbound|8443||ext.example.com"));
	tp = unpack(l->filter_chains[1]->filters[0]->typed_config, &envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor);
	CHECK(tp && tp->weighted_clusters && tp->weighted_clusters->n_clusters == 2);
	CHECK(!strcmp(tp->weighted_clusters->clusters[0]->name, "outbound|8443|a|payments.example.com"));
	CHECK_EQ(tp->weighted_clusters->clusters[0]->weight, 90);
	/* inbound, on the instance address, to the app */
	l = find(&o, WF_TYPE_LISTENER, "127.0.0.31_9080");
	CHECK(l);
	h = listener_hcm(l);
	CHECK(h && h->route_config);
	CHECK(!strcmp(h->route_config->virtual_hosts[0]->routes[0]->route->cluster, "inbound|9080||"));
	out_free(&o);
}

TEST(sidecar_scoping)
{
	struct out o;
	char err[512];
	CHECK(run("id: sidecar~127.0.0.61~client.scoped~scoped.svc.cluster.local\n"
	          "metadata: {NAMESPACE: scoped, LABELS: {app: client}}\n",
	          &o, err, sizeof(err)) > 0);
	CHECK(find(&o, WF_TYPE_CLUSTER, "outbound|9080||ratings.default.svc.cluster.local"));
	CHECK(!find(&o, WF_TYPE_CLUSTER, "outbound|9080||" RV));
	CHECK_EQ(count(&o, WF_TYPE_CLUSTER), 1);
	const RouteConfiguration *rc = find(&o, WF_TYPE_ROUTE, "9080");
	CHECK(rc && rc->n_virtual_hosts == 1);
	const VirtualHost *vh = rc->virtual_hosts[0];
	/* another namespace: no bare short name */
	CHECK(!has_domain(vh, "ratings"));
	CHECK(has_domain(vh, "ratings.default"));
	CHECK(!find(&o, WF_TYPE_LISTENER, "127.0.0.1_3306"));
	out_free(&o);
}

TEST(proxyless_grpc)
{
	struct out o;
	char err[512];
	CHECK(run("id: grpc-client-1\n", &o, err, sizeof(err)) > 0);
	CHECK(o.order_ok);
	const char *name = "greeter.default.svc.cluster.local:50051";
	const Listener *l = find(&o, WF_TYPE_LISTENER, name);
	CHECK(l && l->api_listener && !l->address);
	const Google__Protobuf__Any *a = l->api_listener->api_listener;
	CHECK(!strcmp(a->type_url, "type.googleapis.com/"
	                          "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"));
	Hcm *h = (Hcm *)protobuf_c_message_unpack(
	    &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor, NULL,
	    a->value.len, a->value.data);
	CHECK(h && h->rds && !strcmp(h->rds->route_config_name, name));
	CHECK_EQ(h->n_http_filters, 2); /* fault (gRPC implements it), router */
	CHECK(!strcmp(h->http_filters[0]->name, "envoy.filters.http.fault"));
	CHECK(!strcmp(h->http_filters[1]->typed_config->type_url,
	              "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"));
	wf_proto_free(&h->base);
	const RouteConfiguration *rc = find(&o, WF_TYPE_ROUTE, name);
	CHECK(rc && rc->n_virtual_hosts == 1);
	const VirtualHost *vh = rc->virtual_hosts[0];
	CHECK(has_domain(vh, name));
	/* the short names a client may dial, each with the FQDN's route configuration and a domain */
	static const char *const alias[] = {"greeter:50051", "greeter.default:50051", "greeter.default.svc:50051"};
	for (size_t i = 0; i < 3; i++) {
		l = find(&o, WF_TYPE_LISTENER, alias[i]);
		CHECK(l && l->api_listener);
		a = l->api_listener->api_listener;
		h = (Hcm *)protobuf_c_message_unpack(
		    &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor, NULL,
		    a->value.len, a->value.data);
		CHECK(h && !strcmp(h->rds->route_config_name, name));
		wf_proto_free(&h->base);
		CHECK(has_domain(vh, alias[i]));
	}
	CHECK_EQ(vh->n_routes, 2);
	CHECK(!strcmp(vh->routes[0]->match->headers[0]->name, "x-version"));
	CHECK_EQ(vh->routes[1]->route->weighted_clusters->n_clusters, 2);
	CHECK_EQ(vh->routes[1]->route->weighted_clusters->clusters[0]->weight->value, 70);
	const Cluster *c = find(&o, WF_TYPE_CLUSTER, "outbound|50051|v2|greeter.default.svc.cluster.local");
	CHECK(c && c->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS);
	CHECK_EQ(c->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN);
	const Cla *e = find(&o, WF_TYPE_ENDPOINT, "outbound|50051|v2|greeter.default.svc.cluster.local");
	CHECK(e && endpoint_count(e) == 1);
	CHECK(!strcmp(e->endpoints[0]->lb_endpoints[0]->endpoint->address->socket_address->address, "127.0.0.52"));
	/* no listeners with addresses, no inbound */
	CHECK(!find(&o, WF_TYPE_LISTENER, "127.0.0.1_9080"));
	CHECK(!find(&o, WF_TYPE_CLUSTER, "inbound|9080||"));
	out_free(&o);
}

/* The outbound half is shared by proxies with equal keys; the halves add up to the whole. */
TEST(halves_and_keys)
{
	struct wf_store *s = store();
	CHECK(s);
	struct wf_registry *reg = wf_registry_new();
	Envoy__Config__Core__V3__Node *a = node(PRODUCTPAGE);
	Envoy__Config__Core__V3__Node *b = node("id: sidecar~127.0.0.71~other.default~default.svc.cluster.local\n"
	                                        "metadata: {NAMESPACE: default, LABELS: {app: other}}\n");
	Envoy__Config__Core__V3__Node *c = node("id: sidecar~127.0.0.61~client.scoped~scoped.svc.cluster.local\n"
	                                        "metadata: {NAMESPACE: scoped}\n");
	char err[512];
	CHECK_EQ(wf_registry_add_node(reg, a, err, sizeof(err)), 1);
	struct wf_mesh *m = wf_mesh_build(s, reg);
	struct wf_proxy_info pa, pb, pc;
	CHECK(!wf_proxy_from_node(a, &pa, err, sizeof(err)) && !wf_proxy_from_node(b, &pb, err, sizeof(err)) &&
	      !wf_proxy_from_node(c, &pc, err, sizeof(err)));
	char ka[512], kb[512], kc[512];
	wf_translate_key(m, &pa, WF_TX_OUTBOUND, ka, sizeof(ka));
	wf_translate_key(m, &pb, WF_TX_OUTBOUND, kb, sizeof(kb));
	wf_translate_key(m, &pc, WF_TX_OUTBOUND, kc, sizeof(kc));
	CHECK(!strcmp(ka, kb));         /* same namespace, no Sidecar, no sourceLabels */
	CHECK(strcmp(ka, kc));          /* another namespace, with a Sidecar */
	wf_translate_key(m, &pa, WF_TX_INBOUND, ka, sizeof(ka));
	wf_translate_key(m, &pb, WF_TX_INBOUND, kb, sizeof(kb));
	CHECK(strcmp(ka, kb));
	/* routers: their labels choose their Gateways */
	Envoy__Config__Core__V3__Node *r1 = node(INGRESS), *r2 = node("id: router~127.0.0.92~eg.default~default.svc.cluster.local\n"
	                                                              "metadata: {NAMESPACE: default, LABELS: {istio: egress}}\n");
	struct wf_proxy_info p1, p2;
	CHECK(!wf_proxy_from_node(r1, &p1, err, sizeof(err)) && !wf_proxy_from_node(r2, &p2, err, sizeof(err)));
	wf_translate_key(m, &p1, WF_TX_OUTBOUND, ka, sizeof(ka));
	wf_translate_key(m, &p2, WF_TX_OUTBOUND, kb, sizeof(kb));
	CHECK(strcmp(ka, kb));
	wf_proxy_info_clear(&p1);
	wf_proxy_info_clear(&p2);
	wf_proto_free(&r1->base);
	wf_proto_free(&r2->base);
	struct out whole = {.order_ok = 1}, out = {.order_ok = 1}, in = {.order_ok = 1};
	CHECK(wf_translate(m, &pa, collect, &whole, err, sizeof(err), NULL) > 0);
	CHECK(wf_translate_parts(m, &pa, WF_TX_OUTBOUND, collect, &out, err, sizeof(err), NULL) > 0);
	CHECK(wf_translate_parts(m, &pa, WF_TX_INBOUND, collect, &in, err, sizeof(err), NULL) > 0);
	CHECK_EQ(out.n + in.n, whole.n);
	CHECK(find(&in, WF_TYPE_CLUSTER, "inbound|9080||") && find(&in, WF_TYPE_LISTENER, "127.0.0.31_9080"));
	CHECK(!find(&in, WF_TYPE_CLUSTER, "outbound|9080||" RV));
	CHECK(find(&out, WF_TYPE_ROUTE, "9080") && !find(&out, WF_TYPE_CLUSTER, "inbound|9080||"));
	out_free(&whole);
	out_free(&out);
	out_free(&in);
	wf_proxy_info_clear(&pa);
	wf_proxy_info_clear(&pb);
	wf_proxy_info_clear(&pc);
	wf_mesh_free(m);
	wf_store_free(s);
	wf_registry_free(reg);
	wf_proto_free(&a->base);
	wf_proto_free(&b->base);
	wf_proto_free(&c->base);
}

/* The one cluster of the tcp_proxy on listener name's filter chain i (-1: its default chain). */
static const char *tcp_cluster(const struct out *o, const char *name, int i)
{
	const Listener *l = find(o, WF_TYPE_LISTENER, name);
	if (!l || (i >= 0 ? (size_t)i >= l->n_filter_chains : !l->default_filter_chain))
		return NULL;
	const Envoy__Config__Listener__V3__FilterChain *fc = i >= 0 ? l->filter_chains[i] : l->default_filter_chain;
	const Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp =
	    unpack(fc->filters[0]->typed_config, &envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor);
	return tp && tp->cluster_specifier_case == ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER
	           ? tp->cluster
	           : NULL;
}

TEST(tls_and_port_level_settings)
{
	files = policies;
	struct out o;
	char err[512];
	int rc = run("id: sidecar~127.0.2.9~client.shop~shop.svc.cluster.local\nmetadata: {NAMESPACE: shop}\n", &o, err,
	             sizeof(err));
	files = bookinfo;
	CHECK(rc > 0);
	const Cluster *plain = find(&o, WF_TYPE_CLUSTER, "outbound|8080||api.shop.svc.cluster.local");
	const Cluster *tls = find(&o, WF_TYPE_CLUSTER, "outbound|8443||api.shop.svc.cluster.local");
	CHECK(plain && tls);
	CHECK_EQ(plain->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RANDOM);
	CHECK(!plain->transport_socket);
	CHECK_EQ(tls->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN);
	CHECK(tls->transport_socket && !strcmp(tls->transport_socket->name, "envoy.transport_sockets.tls"));
	const Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *u =
	    unpack(tls->transport_socket->typed_config, &envoy__extensions__transport_sockets__tls__v3__upstream_tls_context__descriptor);
	CHECK(u && !strcmp(u->sni, "api.internal"));
	CHECK_EQ(u->common_tls_context->n_tls_certificates, 1);
	CHECK(!strcmp(u->common_tls_context->tls_certificates[0]->certificate_chain->filename, "/etc/certs/client.pem"));
	CHECK(!strcmp(u->common_tls_context->tls_certificates[0]->private_key->filename, "/etc/certs/client.key"));
	const Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *v =
	    u->common_tls_context->validation_context;
	CHECK(v && !strcmp(v->trusted_ca->filename, "/etc/certs/ca.pem"));
	CHECK(v->n_match_typed_subject_alt_names == 1 && !strcmp(v->match_typed_subject_alt_names[0]->matcher->exact, "api.shop"));
	/* a TCP route's weights on the TCP listener */
	const Listener *l = find(&o, WF_TYPE_LISTENER, "127.0.0.1_5432");
	CHECK(l);
	const Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *tp = unpack(
	    l->filter_chains[0]->filters[0]->typed_config, &envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor);
	CHECK(tp && tp->cluster_specifier_case ==
	                ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS);
	CHECK_EQ(tp->weighted_clusters->n_clusters, 2);
	CHECK(!strcmp(tp->weighted_clusters->clusters[0]->name, "outbound|5432|primary|db.shop.svc.cluster.local"));
	CHECK_EQ(tp->weighted_clusters->clusters[0]->weight, 75);
	CHECK_EQ(tp->weighted_clusters->clusters[1]->weight, 25);
	/* the TLS route for the workers only does not apply here */
	CHECK(tcp_cluster(&o, "127.0.0.1_8443", 0) && !strcmp(tcp_cluster(&o, "127.0.0.1_8443", 0), "outbound|8443||api.shop.svc.cluster.local"));
	/* the ServiceEntry's addresses are domains too */
	const VirtualHost *vip = vhost(find(&o, WF_TYPE_ROUTE, "8080"), "api.shop.svc.cluster.local:8080");
	CHECK(vip && has_domain(vip, "10.96.0.10") && has_domain(vip, "10.96.0.10:8080"));
	/* in shop, the shop's VirtualService applies */
	const VirtualHost *shop = vhost(find(&o, WF_TYPE_ROUTE, "8080"), "api.shop.svc.cluster.local:8080");
	CHECK(shop && !strcmp(shop->routes[0]->name, "shop-only") && shop->routes[0]->route->timeout->seconds == 3);
	/* exportTo "." keeps another namespace's service out */
	CHECK(!find(&o, WF_TYPE_CLUSTER, "outbound|8080||private.other.svc.cluster.local"));
	out_free(&o);
	files = policies;
	rc = run("id: sidecar~127.0.2.8~peer.other~other.svc.cluster.local\nmetadata: {NAMESPACE: other}\n", &o, err,
	         sizeof(err));
	files = bookinfo;
	CHECK(rc > 0);
	CHECK(find(&o, WF_TYPE_CLUSTER, "outbound|8080||private.other.svc.cluster.local"));
	/* the shop's DestinationRule and VirtualService for api are exported to shop only */
	plain = find(&o, WF_TYPE_CLUSTER, "outbound|8080||api.shop.svc.cluster.local");
	CHECK(plain && plain->lb_policy == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST);
	const VirtualHost *vh = vhost(find(&o, WF_TYPE_ROUTE, "8080"), "api.shop.svc.cluster.local:8080");
	CHECK(vh && !strcmp(vh->routes[0]->name, "default"));
	/* the TCP route whose match names namespace other applies in other */
	CHECK(tcp_cluster(&o, "127.0.0.1_5432", 0) && !strcmp(tcp_cluster(&o, "127.0.0.1_5432", 0), "outbound|5432|primary|db.shop.svc.cluster.local"));
	out_free(&o);
}

TEST(sidecar_ingress_and_egress_bind)
{
	files = policies;
	struct out o;
	char err[512];
	int rc = run("id: sidecar~127.0.2.1~worker-1.shop~shop.svc.cluster.local\n"
	             "metadata: {NAMESPACE: shop, LABELS: {app: worker}}\n",
	             &o, err, sizeof(err));
	files = bookinfo;
	CHECK(rc > 0);
	/* ingress: the instance address and the ingress port, to the defaultEndpoint */
	const Listener *l = find(&o, WF_TYPE_LISTENER, "127.0.2.1_7000");
	CHECK(l);
	const Cluster *c = find(&o, WF_TYPE_CLUSTER, "inbound|7000||");
	CHECK(c);
	const Envoy__Config__Core__V3__SocketAddress *sa = c->load_assignment->endpoints[0]->lb_endpoints[0]->endpoint->address->socket_address;
	CHECK(!strcmp(sa->address, "127.0.0.1") && sa->port_value == 9000);
	/* what the Sidecar asks that Weft cannot do is said */
	CHECK(strstr(o.warnings, "Sidecar shop/worker: outboundTrafficPolicy ALLOW_ANY is not supported"));
	/* egress: port 8080 on its bind, the others on the port-less listener's default */
	CHECK(find(&o, WF_TYPE_LISTENER, "127.0.0.5_8080"));
	CHECK(!find(&o, WF_TYPE_LISTENER, "127.0.0.1_8080"));
	CHECK(find(&o, WF_TYPE_LISTENER, "127.0.0.1_8443"));
	CHECK(find(&o, WF_TYPE_LISTENER, "127.0.0.1_5432"));
	/* TCP and TLS routes whose match names the workers' labels apply to this worker */
	CHECK(tcp_cluster(&o, "127.0.0.1_5432", 0) && !strcmp(tcp_cluster(&o, "127.0.0.1_5432", 0), "outbound|5432|replica|db.shop.svc.cluster.local"));
	CHECK(tcp_cluster(&o, "127.0.0.1_8443", 0) && !strcmp(tcp_cluster(&o, "127.0.0.1_8443", 0), "outbound|5432||db.shop.svc.cluster.local"));
	out_free(&o);
}

/* text in a temporary file (the same path each call); the caller unlinks it */
static const char *write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/wf-test-translate-%d.yaml", getpid());
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

TEST(gateway)
{
	files = with_gateway;
	struct out o;
	char err[512];
	int rc = run(INGRESS, &o, err, sizeof(err));
	files = bookinfo;
	CHECK(rc > 0);
	CHECK(o.order_ok);
	/* the mesh's clusters, no inbound, no sidecar listeners */
	CHECK(find(&o, WF_TYPE_CLUSTER, "outbound|9080|v1|" RV));
	CHECK(!find(&o, WF_TYPE_CLUSTER, "inbound|9080||"));
	CHECK(!find(&o, WF_TYPE_LISTENER, "127.0.0.1_9080"));
	CHECK_EQ(count(&o, WF_TYPE_LISTENER), 2);
	/* HTTP: one listener, rds http.8080, a virtual host per admitted VirtualService host */
	const Listener *l = find(&o, WF_TYPE_LISTENER, "0.0.0.0_8080");
	CHECK(l);
	const Hcm *h = listener_hcm(l);
	CHECK(h && !strcmp(h->rds->route_config_name, "http.8080"));
	const RouteConfiguration *rc8080 = find(&o, WF_TYPE_ROUTE, "http.8080");
	CHECK(rc8080 && rc8080->n_virtual_hosts == 2);
	const VirtualHost *vh = vhost(rc8080, "bookinfo.example.com:8080");
	CHECK(vh && has_domain(vh, "bookinfo.example.com"));
	CHECK_EQ(vh->n_routes, 2);
	CHECK(!strcmp(vh->routes[0]->route->cluster, "outbound|9080|v1|" RV));
	CHECK(!strcmp(vh->routes[1]->route->cluster, "outbound|9080||productpage.default.svc.cluster.local"));
	CHECK(!vhost(rc8080, "secure.example.com:8080")); /* the HTTPS server's host only */
	vh = vhost(rc8080, "legacy.example.com:8080");
	CHECK(vh && vh->n_routes == 1 && vh->routes[0]->redirect && vh->routes[0]->redirect->https_redirect);
	/* HTTPS: a chain matched by SNI, terminated with the files, its own route configuration */
	l = find(&o, WF_TYPE_LISTENER, "0.0.0.0_8443");
	CHECK(l && l->n_filter_chains == 1);
	const Envoy__Config__Listener__V3__FilterChain *fc = l->filter_chains[0];
	CHECK(fc->filter_chain_match && fc->filter_chain_match->n_server_names == 1);
	CHECK(!strcmp(fc->filter_chain_match->server_names[0], "secure.example.com"));
	CHECK(fc->transport_socket && !strcmp(fc->transport_socket->name, "envoy.transport_sockets.tls"));
	const Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *d = unpack(
	    fc->transport_socket->typed_config, &envoy__extensions__transport_sockets__tls__v3__downstream_tls_context__descriptor);
	CHECK(d && !strcmp(d->common_tls_context->tls_certificates[0]->certificate_chain->filename, "examples/tls/server.crt"));
	h = listener_hcm(l);
	CHECK(h && !strcmp(h->rds->route_config_name, "https.8443.https.bookinfo-gateway.default"));
	const RouteConfiguration *rcs = find(&o, WF_TYPE_ROUTE, "https.8443.https.bookinfo-gateway.default");
	CHECK(rcs && rcs->n_virtual_hosts == 1 && vhost(rcs, "secure.example.com:8443"));
	/* sidecars do not get the gateway's routes */
	out_free(&o);
	files = with_gateway;
	rc = run(PRODUCTPAGE, &o, err, sizeof(err));
	files = bookinfo;
	CHECK(rc > 0);
	const RouteConfiguration *mesh = find(&o, WF_TYPE_ROUTE, "9080");
	CHECK(mesh && !vhost(mesh, "bookinfo.example.com:9080"));
	vh = vhost(mesh, "productpage.default.svc.cluster.local:9080");
	CHECK(vh && !strcmp(vh->routes[0]->name, "default"));
	out_free(&o);
	/* a router no Gateway selects gets clusters only */
	files = with_gateway;
	rc = run("id: router~127.0.0.91~egress.default~default.svc.cluster.local\n", &o, err, sizeof(err));
	files = bookinfo;
	CHECK(rc > 0);
	CHECK_EQ(count(&o, WF_TYPE_LISTENER), 0);
	out_free(&o);
}

TEST(refusals)
{
	/* what cannot be translated is refused by name, not half-translated: at load (validation
	 * runs wf_translate_check), so its file keeps its last good objects */
	/* each error starts FILE:LINE:COL of the field at fault */
	static const struct { const char *yaml, *want, *where; } cases[] = {
	    {"apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: default}\n"
	     "spec:\n  selector: {istio: ingressgateway}\n  servers:\n"
	     "  - port: {number: 443, name: tls, protocol: TLS}\n    hosts: ['*']\n    tls: {mode: AUTO_PASSTHROUGH}\n",
	     "Gateway default/gw: servers[0]: protocol TLS with this tls mode is not supported yet", ":7:36: "},
	    {"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r, namespace: default}\n"
	     "spec:\n  host: reviews\n  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n",
	     "DestinationRule default/r: trafficPolicy.tls.mode ISTIO_MUTUAL", ":6:25: "},
	    {"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v, namespace: default}\n"
	     "spec:\n  hosts: [ratings]\n  gateways: [mesh, gw]\n  http:\n  - route: [{destination: {host: ratings}}]\n"
	     "    retries: {attempts: 2, retryOn: reset-before-request}\n",
	     "VirtualService default/v: http[0].retries.retryOn: 'reset-before-request'", ":9:28: "},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *path = write_tmp(cases[i].yaml);
		const char *const list[] = {DATA "bookinfo.yaml", path, NULL};
		files = list;
		struct out o;
		char err[512];
		int rc = run(i == 0 ? INGRESS : PRODUCTPAGE, &o, err, sizeof(err));
		files = bookinfo;
		unlink(path);
		out_free(&o);
		CHECK(rc < 0);
		if (!strstr(err, cases[i].want))
			printf("  case %zu: %s\n", i, err);
		CHECK(strstr(err, cases[i].want));
		CHECK(!strncmp(err, path, strlen(path)) && !strncmp(err + strlen(path), cases[i].where, strlen(cases[i].where)));
	}
}

/* An object that no proxy could be given is refused alone, with where it is. */
TEST(check_objects)
{
	static const struct { const char *yaml, *want; } cases[] = {
	    {"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r, namespace: default}\n"
	     "spec:\n  host: reviews\n  subsets:\n  - name: v1\n    labels: {version: v1}\n"
	     "    trafficPolicy:\n      portLevelSettings:\n      - port: {number: 8443}\n"
	     "        tls: {mode: ISTIO_MUTUAL}\n",
	     ":12:15: DestinationRule default/r subset v1: trafficPolicy.tls.mode ISTIO_MUTUAL"},
	    {"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v, namespace: default}\n"
	     "spec:\n  hosts: [ratings]\n  http:\n  - match: [{port: 9999, sourceLabels: {app: nobody}}]\n"
	     "    route: [{destination: {host: ratings}}]\n    fault: {abort: {grpcStatus: UNAVAILABLE}}\n",
	     "VirtualService default/v: http[0].fault.abort: only httpStatus"},
	    {"apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: default}\n"
	     "spec:\n  selector: {app: gw}\n  servers:\n  - port: {number: 443, name: https, protocol: HTTPS}\n"
	     "    hosts: ['*']\n    tls: {mode: SIMPLE, credentialName: my-secret}\n",
	     "Gateway default/gw: servers[0].tls: give serverCertificate and privateKey"},
	    {"apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: s, namespace: default}\n"
	     "spec:\n  ingress:\n  - port: {number: 80, name: http, protocol: HTTP}\n"
	     "    defaultEndpoint: unix:///var/run/app.sock\n",
	     "Sidecar default/s: ingress defaultEndpoint 'unix:///var/run/app.sock': unix sockets are not supported"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *path = write_tmp(cases[i].yaml);
		struct wf_errs e = {0};
		size_t n = 0;
		struct wf_istio_obj **objs = wf_istio_parse_file(path, &n, &e);
		unlink(path);
		CHECK_EQ(e.n, 0);
		CHECK_EQ(n, 1);
		char err[512] = "";
		int rc = wf_translate_check(objs[0], err, sizeof(err));
		wf_istio_objs_free(objs, n);
		if (!strstr(err, cases[i].want))
			printf("  case %zu: %s\n", i, err);
		CHECK(rc < 0 && strstr(err, cases[i].want) && !strncmp(err, path, strlen(path)));
	}
	/* what the mesh's own objects hold translates */
	struct wf_errs e = {0};
	const char *const all[] = {DATA "bookinfo.yaml", DATA "routing.yaml", DATA "gateway.yaml", DATA "policies.yaml"};
	for (size_t i = 0; i < 4; i++) {
		size_t n = 0;
		struct wf_istio_obj **objs = wf_istio_parse_file(all[i], &n, &e);
		for (size_t k = 0; k < n; k++) {
			char err[512];
			if (wf_translate_check(objs[k], err, sizeof(err)) < 0)
				printf("  %s\n", err);
			CHECK(wf_translate_check(objs[k], err, sizeof(err)) == 0);
		}
		wf_istio_objs_free(objs, n);
	}
	CHECK_EQ(e.n, 0);
}

/* The generators over a directory: the xDS cache composes each proxy from the shared outbound
 * half and its own inbound half; a connecting sidecar becomes an endpoint. */
/* A source over a directory holding bookinfo.yaml and routing.yaml (removed once read). */
static struct wf_translate_source *bookinfo_source(struct wf_errs *e)
{
	char dir[64];
	snprintf(dir, sizeof(dir), "/tmp/wf-test-source-%d", getpid());
	mkdir(dir, 0700);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "cp " DATA "bookinfo.yaml " DATA "routing.yaml %s/", dir);
	struct wf_translate_source *src = system(cmd) == 0 ? wf_translate_source_new(dir, e) : NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return NULL;
	return src;
}

TEST(source_in_the_cache)
{
	struct wf_errs e = {0};
	struct wf_translate_source *src = bookinfo_source(&e);
	CHECK(src);
	CHECK_EQ(e.n, 0);
	CHECK(wf_translate_source_objects(src) > 10);
	uint32_t n;
	const struct wf_xds_generator *g = wf_translate_source_generators(src, &n);
	CHECK_EQ(n, 2);
	struct wf_xds_cache *c = wf_xds_cache_new(g, n);
	Envoy__Config__Core__V3__Node *pp = node(PRODUCTPAGE);
	Envoy__Config__Core__V3__Node *other = node("id: sidecar~127.0.0.71~other.default~default.svc.cluster.local\n"
	                                            "metadata: {NAMESPACE: default, LABELS: {app: other}}\n");
	CHECK_EQ(wf_translate_source_connected(src, pp), 1);
	CHECK_EQ(wf_translate_source_connected(src, pp), 0);
	wf_xds_cache_invalidate(c);
	struct wf_xds_snap *a = wf_xds_cache_get(c, pp), *b = wf_xds_cache_get(c, other);
	CHECK(a && b);
	/* the outbound half is shared, the inbound half is the proxy's */
	struct wf_xds_packed *ra = wf_xds_packed_find(&a->t[WF_XDS_RDS], "9080"), *rb = wf_xds_packed_find(&b->t[WF_XDS_RDS], "9080");
	CHECK(ra && ra == rb);
	CHECK(wf_xds_packed_find(&a->t[WF_XDS_CDS], "inbound|9080||"));
	CHECK(!wf_xds_packed_find(&b->t[WF_XDS_CDS], "inbound|9080||"));
	CHECK(wf_xds_packed_find(&a->t[WF_XDS_LDS], "127.0.0.31_9080"));
	CHECK(wf_xds_packed_find(&a->t[WF_XDS_EDS], "outbound|9080|v1|" RV));
	/* productpage's endpoint is the connected sidecar; gone, it is no more */
	struct wf_xds_packed *e1 = wf_xds_packed_find(&b->t[WF_XDS_EDS], "outbound|9080||productpage.default.svc.cluster.local");
	CHECK(e1);
	Cla *cla = (Cla *)protobuf_c_message_unpack(&envoy__config__endpoint__v3__cluster_load_assignment__descriptor, NULL,
	                                           e1->len, e1->bytes);
	CHECK(cla && endpoint_count(cla) == 1);
	wf_proto_free(&cla->base);
	wf_xds_snap_unref(a);
	wf_xds_snap_unref(b);
	/* its streams end (it connected twice): the workload stays for the grace period, and a
	 * reconnect keeps it */
	wf_translate_source_disconnected(src, pp->id, 500, 5000);
	wf_translate_source_disconnected(src, pp->id, 1000, 5000);
	CHECK_EQ(wf_translate_source_expire(src, 5000), 0);
	CHECK_EQ(wf_translate_source_workloads(src), 1);
	CHECK_EQ(wf_translate_source_connected(src, pp), 0);
	CHECK_EQ(wf_translate_source_expire(src, 7000), 0);
	wf_translate_source_disconnected(src, pp->id, 8000, 5000);
	CHECK_EQ(wf_translate_source_expire(src, 13001), 1);
	CHECK_EQ(wf_translate_source_workloads(src), 0);
	CHECK_EQ(wf_translate_source_gone(src, pp->id), 0);
	wf_xds_cache_invalidate(c);
	b = wf_xds_cache_get(c, other);
	CHECK(b);
	e1 = wf_xds_packed_find(&b->t[WF_XDS_EDS], "outbound|9080||productpage.default.svc.cluster.local");
	cla = (Cla *)protobuf_c_message_unpack(&envoy__config__endpoint__v3__cluster_load_assignment__descriptor, NULL,
	                                      e1->len, e1->bytes);
	CHECK(cla && endpoint_count(cla) == 0);
	wf_proto_free(&cla->base);
	wf_xds_snap_unref(b);
	wf_xds_cache_free(c);
	wf_translate_source_free(src);
	wf_proto_free(&pp->base);
	wf_proto_free(&other->base);
	wf_errs_free(&e);
}

/* A sidecar that no ServiceEntry selects changes no proxy's resources: its connect (and its
 * going) is no change to push, and the mesh is not rebuilt for it; one that is selected, before
 * or after, is a change. (2,000 sidecars connecting used to rebuild the mesh and every proxy's
 * outbound half 2,000 times: bench/run.sh's control case.) */
TEST(source_unselected_sidecar_is_no_change)
{
	struct wf_errs e = {0};
	struct wf_translate_source *src = bookinfo_source(&e);
	CHECK(src);
	uint32_t n;
	const struct wf_xds_generator *g = wf_translate_source_generators(src, &n);
	struct wf_xds_cache *c = wf_xds_cache_new(g, n);
	Envoy__Config__Core__V3__Node *pp = node(PRODUCTPAGE);
	Envoy__Config__Core__V3__Node *other = node("id: sidecar~127.0.0.71~other.default~default.svc.cluster.local\n"
	                                            "metadata: {NAMESPACE: default, LABELS: {app: other}}\n");
	Envoy__Config__Core__V3__Node *other_pp =
	    node("id: sidecar~127.0.0.71~other.default~default.svc.cluster.local\n"
	         "metadata: {NAMESPACE: default, LABELS: {app: productpage}}\n");
	CHECK_EQ(wf_translate_source_connected(src, pp), 1);
	struct wf_xds_snap *a = wf_xds_cache_get(c, pp);
	CHECK(a);
	/* registered, but no change */
	CHECK_EQ(wf_translate_source_connected(src, other), 0);
	CHECK_EQ(wf_translate_source_workloads(src), 2);
	wf_xds_cache_invalidate(c);
	struct wf_xds_snap *b = wf_xds_cache_get(c, pp);
	CHECK(b);
	const char *ppc = "outbound|9080||productpage.default.svc.cluster.local";
	struct wf_xds_packed *ea = wf_xds_packed_find(&a->t[WF_XDS_EDS], ppc), *eb = wf_xds_packed_find(&b->t[WF_XDS_EDS], ppc);
	CHECK(ea && eb && ea->hash == eb->hash);
	wf_xds_snap_unref(b);
	/* relabelled so that productpage selects it: a change, and a second endpoint */
	CHECK_EQ(wf_translate_source_connected(src, other_pp), 1);
	wf_xds_cache_invalidate(c);
	b = wf_xds_cache_get(c, pp);
	eb = b ? wf_xds_packed_find(&b->t[WF_XDS_EDS], ppc) : NULL;
	CHECK(eb && ea->hash != eb->hash);
	Cla *cla = eb ? (Cla *)protobuf_c_message_unpack(&envoy__config__endpoint__v3__cluster_load_assignment__descriptor,
	                                                  NULL, eb->len, eb->bytes)
	              : NULL;
	CHECK(cla && endpoint_count(cla) == 2);
	if (cla)
		wf_proto_free(&cla->base);
	wf_xds_snap_unref(b);
	/* back to a label nothing selects: a change (it was selected) */
	CHECK_EQ(wf_translate_source_connected(src, other), 1);
	/* gone: no change for the unselected one, a change for productpage's */
	CHECK_EQ(wf_translate_source_gone(src, other->id), 0);
	CHECK_EQ(wf_translate_source_workloads(src), 1);
	CHECK_EQ(wf_translate_source_gone(src, pp->id), 1);
	CHECK_EQ(wf_translate_source_workloads(src), 0);
	wf_xds_snap_unref(a);
	wf_xds_cache_free(c);
	wf_translate_source_free(src);
	wf_proto_free(&pp->base);
	wf_proto_free(&other->base);
	wf_proto_free(&other_pp->base);
	wf_errs_free(&e);
}

/* ---- the strong check: the proxy compiles what the translator produced -------------------- */

/* The proxy's bootstrap (wf_translate_bootstrap: EDS and RDS inlined, validate_clusters on, so
 * every cluster a route names must exist) printed as JSON, loaded and compiled as `weft proxy`
 * would; every listener and cluster of the translation must be in the snapshot. */
static int compiles(const struct out *o, ProtobufCMessage *boot, char *err, size_t n)
{
	struct wf_jbuf j = {0};
	wf_json_message(&j, boot, 2);
	char path[64];
	snprintf(path, sizeof(path), "/tmp/wf-test-translate-%d.json", getpid());
	FILE *f = fopen(path, "w");
	fputs(j.p, f);
	fclose(f);
	free(j.p);
	wf_stats_thread_init();
	wf_filters_init();
	struct wf_snapshot *s = wf_config_load(path, 1, err, n);
	size_t want_l = count(o, WF_TYPE_LISTENER), want_c = count(o, WF_TYPE_CLUSTER);
	if (s && (s->n_listeners != want_l || s->n_clusters != want_c)) {
		snprintf(err, n, "compiled %u listeners and %u clusters, expected %zu and %zu", s->n_listeners, s->n_clusters,
		         want_l, want_c);
		wf_snapshot_free(s);
		s = NULL;
	}
	if (s) {
		if (!getenv("WF_TEST_KEEP"))
			unlink(path);
		wf_snapshot_free(s);
	} else {
		printf("  (bootstrap kept in %s)\n", path);
	}
	return s != NULL;
}

TEST(proxy_compiles_sidecar_resources)
{
	static const char *const nodes[] = {
	    PRODUCTPAGE, "id: sidecar~127.0.0.61~client.scoped~scoped.svc.cluster.local\nmetadata: {NAMESPACE: scoped}\n",
	    "id: sidecar~127.0.0.11~reviews-v1.default~default.svc.cluster.local\n", INGRESS};
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		struct out o;
		char err[1024];
		ProtobufCMessage *boot = NULL;
		files = i == 3 ? with_gateway : bookinfo;
		int rc = run_boot(nodes[i], &o, &boot, err, sizeof(err));
		files = bookinfo;
		CHECK(rc > 0);
		int ok = compiles(&o, boot, err, sizeof(err));
		if (!ok)
			printf("  compile: %s\n", err);
		out_free(&o);
		wf_proto_free(boot);
		CHECK(ok);
	}
}

TEST_MAIN("translate", T(node_identity), T(registry), T(clusters_and_policy), T(endpoints_by_labels), T(routes),
          T(listeners), T(sidecar_scoping), T(proxyless_grpc), T(halves_and_keys), T(tls_and_port_level_settings),
          T(sidecar_ingress_and_egress_bind), T(gateway), T(refusals), T(check_objects), T(source_in_the_cache),
          T(source_unselected_sidecar_is_no_change), T(proxy_compiles_sidecar_resources))
