/* A proxy's translated resources as one static Envoy Bootstrap: clusters and listeners in
 * static_resources, each EDS cluster turned STATIC with its ClusterLoadAssignment as
 * load_assignment, each HCM's rds replaced by the RouteConfiguration it names (route_config).
 * What `weft translate --bootstrap` prints and `weft proxy -c` runs; the unit tests compile it
 * with the proxy's compiler to prove every emitted resource is one the proxy accepts. */
#include "control/translate_int.h"

#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"

#include <errno.h>
#include <stdio.h>

typedef Envoy__Config__Bootstrap__V3__Bootstrap Bootstrap;
typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Config__Endpoint__V3__ClusterLoadAssignment Cla;
typedef Envoy__Config__Listener__V3__Listener Listener;
typedef Envoy__Config__Route__V3__RouteConfiguration RouteConfiguration;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;

struct collected {
	struct item {
		const char *type;           /* one of the WF_TYPE_* literals */
		ProtobufCMessage *msg;      /* NULL once taken */
	} *v;
	size_t n;
	void (*warn)(void *ctx, const char *msg);
	void *warn_ctx;
};

static void forward_warning(void *ctx, const char *msg)
{
	struct collected *c = ctx;
	if (c->warn)
		c->warn(c->warn_ctx, msg);
}

static void collect(void *ctx, const char *type, const char *name, ProtobufCMessage *msg)
{
	struct collected *c = ctx;
	XPUSH(c->v, c->n, ((struct item){type, msg}));
}

/* Take the resource of that type and name out of the list (NULL when absent). */
static ProtobufCMessage *take(struct collected *c, const char *type, const char *name)
{
	for (size_t i = 0; i < c->n; i++) {
		if (!c->v[i].msg || strcmp(c->v[i].type, type))
			continue;
		const char *n = !strcmp(type, WF_TYPE_ENDPOINT) ? ((Cla *)c->v[i].msg)->cluster_name
		                                                 : ((RouteConfiguration *)c->v[i].msg)->name;
		if (!strcmp(n, name)) {
			ProtobufCMessage *m = c->v[i].msg;
			c->v[i].msg = NULL;
			return m;
		}
	}
	return NULL;
}

/* Inline the RouteConfiguration an HCM's rds names (the Any is rewritten). */
static int inline_routes(Listener *l, struct collected *c, int strict, char *err, size_t errlen)
{
	for (size_t k = 0; k < l->n_filter_chains; k++) {
		Envoy__Config__Listener__V3__FilterChain *fc = l->filter_chains[k];
		for (size_t f = 0; f < fc->n_filters; f++) {
			Google__Protobuf__Any *a = fc->filters[f]->typed_config;
			if (!a || strcmp(a->type_url, WF_TYPE_URL_PREFIX
			                 "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"))
				continue;
			Hcm *h = (Hcm *)protobuf_c_message_unpack(
			    &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor, NULL,
			    a->value.len, a->value.data);
			if (!h)
				return -ENOMEM;
			if (h->route_specifier_case ==
			    ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS) {
				RouteConfiguration *rc = (void *)take(c, WF_TYPE_ROUTE, h->rds->route_config_name);
				if (!rc) {
					snprintf(err, errlen, "listener %s: no route configuration '%s'", l->name, h->rds->route_config_name);
					wf_proto_free(&h->base);
					return -EINVAL;
				}
				wf_proto_free(&h->rds->base);
				h->route_specifier_case =
				    ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG;
				h->route_config = rc;
			}
			if (strict && h->route_config->validate_clusters)
				h->route_config->validate_clusters->value = 1;
			fc->filters[f]->typed_config = wf_xany(&h->base);
			wf_proto_free(&a->base);
		}
	}
	return 0;
}

int wf_translate_bootstrap(const struct wf_mesh *m, const struct wf_proxy_info *p, uint32_t admin_port, int strict,
                           ProtobufCMessage **out, char *err, size_t errlen, void (*warn)(void *ctx, const char *msg),
                           void *warn_ctx)
{
	*out = NULL;
	if (p->kind == WF_PROXY_GRPC) {
		snprintf(err, errlen, "node %s is a proxyless gRPC client: its api_listeners have no bootstrap form", p->id);
		return -EINVAL;
	}
	struct collected c = {.warn = warn, .warn_ctx = warn_ctx};
	int rc = wf_translate(m, p, collect, &c, err, errlen, forward_warning);
	Bootstrap *b = NULL;
	if (rc >= 0) {
		b = XNEW(Bootstrap, envoy__config__bootstrap__v3__bootstrap__descriptor);
		b->static_resources = XNEW(Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources,
		                           envoy__config__bootstrap__v3__bootstrap__static_resources__descriptor);
		if (admin_port) {
			b->admin = XNEW(Envoy__Config__Bootstrap__V3__Admin, envoy__config__bootstrap__v3__admin__descriptor);
			b->admin->address = wf_xaddr("127.0.0.1", admin_port);
		}
		Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = b->static_resources;
		for (size_t i = 0; i < c.n && rc >= 0; i++) {
			if (!c.v[i].msg)
				continue;
			if (!strcmp(c.v[i].type, WF_TYPE_CLUSTER)) {
				Cluster *cl = (Cluster *)c.v[i].msg;
				c.v[i].msg = NULL;
				XPUSH(sr->clusters, sr->n_clusters, cl);
				if (cl->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS) {
					cl->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC;
					wf_proto_free(&cl->eds_cluster_config->base);
					cl->eds_cluster_config = NULL;
					cl->load_assignment = (Cla *)take(&c, WF_TYPE_ENDPOINT, cl->name);
				}
			} else if (!strcmp(c.v[i].type, WF_TYPE_LISTENER)) {
				Listener *l = (Listener *)c.v[i].msg;
				c.v[i].msg = NULL;
				XPUSH(sr->listeners, sr->n_listeners, l);
				rc = inline_routes(l, &c, strict, err, errlen);
			}
		}
	}
	for (size_t i = 0; i < c.n; i++)
		if (c.v[i].msg)
			wf_proto_free(c.v[i].msg);
	free(c.v);
	if (rc < 0) {
		if (b)
			wf_proto_free(&b->base);
		return rc;
	}
	*out = &b->base;
	return 0;
}
