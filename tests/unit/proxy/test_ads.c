/* The xDS client's pieces that need no server: the reconnect backoff, the resource set
 * (decoding with field paths, put/remove/copy), and compiling a bootstrap with xDS resources
 * (EDS and RDS resolution, warming, initial_fetch_timeout, errors that name the resource). */
#include "test.h"

#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"
#include "proxy/ads.h"
#include "proxy/ads_set.h"
#include "proxy/config.h"
#include "proxy/stats.h"
#include "xds/cfgdoc.h"
#include "xds/registry.h"

#include <stdlib.h>
#include <unistd.h>

/* A resource of type t given as YAML, encoded as the wire would carry it, then decoded. */
static struct wf_cfgdoc *res(enum wf_xds_type t, const char *yaml, char **name, char *err, size_t n)
{
	struct wf_cfgdoc *y = wf_cfgdoc_new("yaml");
	if (wf_yaml_load_string(y, wf_proto_find(wf_xds_type_url[t]), yaml, strlen(yaml), err, n) < 0) {
		wf_cfgdoc_free(y);
		return NULL;
	}
	ProtobufCMessage *m = wf_cfgdoc_root(y);
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len + 1);
	protobuf_c_message_pack(m, buf);
	struct wf_cfgdoc *doc = wf_xds_decode(t, buf, len, name, err, n);
	free(buf);
	wf_cfgdoc_free(y);
	return doc;
}

static void put(struct wf_xds_set *s, enum wf_xds_type t, const char *yaml)
{
	char err[512], *name = NULL;
	struct wf_cfgdoc *doc = res(t, yaml, &name, err, sizeof(err));
	if (!doc) {
		printf("  bad test resource: %s\n", err);
		abort();
	}
	wf_xds_set_put(s, t, name, "1", doc, 0);
	free(name);
}

static const char BOOT[] =
    "dynamic_resources:\n"
    "  ads_config: {api_type: GRPC, transport_api_version: V3, grpc_services: [{envoy_grpc: {cluster_name: xds}}]}\n"
    "  lds_config: {ads: {}, initial_fetch_timeout: 2s}\n"
    "  cds_config: {ads: {}}\n"
    "static_resources:\n"
    "  clusters:\n"
    "  - name: xds\n"
    "    typed_extension_protocol_options:\n"
    "      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n"
    "        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n"
    "        explicit_http_config: {http2_protocol_options: {}}\n"
    "    load_assignment: {cluster_name: xds, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 9}}}}]}]}\n";

static const char LISTENER[] =
    "name: web\n"
    "address: {socket_address: {address: 127.0.0.1, port_value: 1}}\n"
    "filter_chains:\n"
    "- filters:\n"
    "  - name: hcm\n"
    "    typed_config:\n"
    "      \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\n"
    "      stat_prefix: web\n"
    "      rds: {route_config_name: r1, config_source: {ads: {}}}\n"
    "      http_filters: [{name: envoy.filters.http.router}]\n";

static struct wf_snapshot *boot(void)
{
	char path[64], err[512];
	snprintf(path, sizeof(path), "/tmp/wf-test-ads-%d.yaml", getpid());
	FILE *f = fopen(path, "w");
	fputs(BOOT, f);
	fclose(f);
	wf_stats_thread_init();
	struct wf_snapshot *s = wf_config_load(path, 1, err, sizeof(err));
	unlink(path);
	if (!s)
		printf("  %s\n", err);
	return s;
}

TEST(backoff_is_jittered_exponential_and_capped)
{
	CHECK_EQ(wf_ads_backoff_ms(1, 12345), 500);
	uint64_t lo = UINT64_MAX, hi = 0;
	for (uint64_t r = 0; r < 2000; r++) {
		uint64_t ms = wf_ads_backoff_ms(3, r * 7919);
		lo = ms < lo ? ms : lo;
		hi = ms > hi ? ms : hi;
	}
	CHECK(lo >= 500 && lo < 600);
	CHECK(hi <= 2000 && hi > 1900);
	for (uint32_t n = 1; n < 80; n++)
		CHECK(wf_ads_backoff_ms(n, UINT64_MAX) <= 30000);
	CHECK_EQ(wf_ads_backoff_ms(40, 29500), 30000);
}

TEST(decode_names_the_resource_and_marks_paths)
{
	char err[512], *name = NULL;
	struct wf_cfgdoc *d = res(WF_XDS_LDS, LISTENER, &name, err, sizeof(err));
	CHECK(d);
	CHECK(!strcmp(name, "web"));
	CHECK(!strcmp(wf_cfgdoc_source(d), "xds:Listener/web"));
	const Envoy__Config__Listener__V3__Listener *l = (const void *)wf_cfgdoc_root(d);
	CHECK(!strcmp(wf_cfgdoc_path(d, l->filter_chains[0]->filters[0]), "filter_chains[0].filters[0]"));
	/* Any payloads are unpacked and marked with the path of their Any */
	const ProtobufCMessage *hcm = wf_cfgdoc_any(d, &l->filter_chains[0]->filters[0]->typed_config->base, err, sizeof(err));
	CHECK(hcm);
	CHECK(!strcmp(wf_cfgdoc_path(d, hcm), "filter_chains[0].filters[0].typed_config"));
	wf_cfg_err(d, err, sizeof(err), hcm, "stat_prefix", "x");
	CHECK(!strcmp(err, "xds:Listener/web: filter_chains[0].filters[0].typed_config.stat_prefix: x"));
	free(name);
	wf_cfgdoc_free(d);
	/* bytes that are not a Listener, and a resource without a name */
	CHECK(!wf_xds_decode(WF_XDS_LDS, (const uint8_t *)"\xff\xff\xff", 3, &name, err, sizeof(err)));
	CHECK(strstr(err, "does not decode as envoy.config.listener.v3.Listener"));
	CHECK(!res(WF_XDS_CDS, "connect_timeout: 1s\n", &name, err, sizeof(err)));
	CHECK(strstr(err, "xds:Cluster: a resource without a name"));
	CHECK(!res(WF_XDS_EDS, "endpoints: []\n", &name, err, sizeof(err)));
	CHECK(strstr(err, "without a cluster_name"));
	CHECK_EQ(wf_xds_type_of("type.googleapis.com/envoy.config.route.v3.RouteConfiguration"), WF_XDS_RDS);
	CHECK_EQ(wf_xds_type_of("type.googleapis.com/envoy.config.route.v3.Route"), -1);
}

TEST(set_put_remove_copy)
{
	struct wf_xds_set *a = wf_xds_set_new();
	put(a, WF_XDS_CDS, "name: one\n");
	put(a, WF_XDS_CDS, "name: two\n");
	put(a, WF_XDS_CDS, "name: three\n");
	struct wf_xds_set *b = wf_xds_set_copy(a);
	CHECK(wf_xds_set_find(b, WF_XDS_CDS, "two")->doc == wf_xds_set_find(a, WF_XDS_CDS, "two")->doc);
	CHECK_EQ(wf_xds_set_remove(b, WF_XDS_CDS, "two"), 1);
	CHECK_EQ(wf_xds_set_remove(b, WF_XDS_CDS, "two"), 0);
	CHECK_EQ(b->n[WF_XDS_CDS], 2);
	CHECK(!strcmp(b->res[WF_XDS_CDS][0].name, "one") && !strcmp(b->res[WF_XDS_CDS][1].name, "three"));
	CHECK_EQ(a->n[WF_XDS_CDS], 3); /* the copy is its own */
	put(b, WF_XDS_CDS, "name: one\nconnect_timeout: 2s\n");
	CHECK_EQ(b->n[WF_XDS_CDS], 2);
	CHECK(wf_xds_set_find(b, WF_XDS_CDS, "one")->doc != wf_xds_set_find(a, WF_XDS_CDS, "one")->doc);
	wf_xds_set_unref(a);
	CHECK(wf_xds_set_find(b, WF_XDS_CDS, "three")); /* its documents outlive the first set */
	wf_xds_set_unref(b);
}

TEST(eds_and_rds_resolution_and_warming)
{
	struct wf_snapshot *base = boot();
	CHECK(base);
	CHECK(base->ads && !strcmp(base->ads->cluster, "xds") && base->ads->lds && base->ads->cds && !base->ads->delta);
	CHECK_EQ(base->ads->lds_timeout_ms, 2000);
	CHECK_EQ(base->ads->cds_timeout_ms, 15000);
	CHECK_EQ(base->ads->node_first_only, 0);
	char err[1024];
	struct wf_xds_set *x = wf_xds_set_new();
	put(x, WF_XDS_CDS, "name: a\ntype: EDS\neds_cluster_config: {service_name: svc-a, eds_config: {ads: {}}}\n");
	put(x, WF_XDS_LDS, LISTENER);
	/* neither the endpoints nor the routes came: the cluster and the listener warm */
	struct wf_snapshot *s = wf_config_with_xds(base, x, err, sizeof(err));
	CHECK(s);
	CHECK(!wf_snapshot_cluster(s, "a"));
	CHECK_EQ(s->n_listeners, 0);
	CHECK_EQ(s->n_warming, 2);
	wf_snapshot_free(s);
	put(x, WF_XDS_EDS,
	    "cluster_name: svc-a\nendpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.3, port_value: 80}}}}]}]\n");
	put(x, WF_XDS_RDS, "name: r1\nvirtual_hosts: [{name: all, domains: ['*'], routes: [{match: {prefix: /}, route: {cluster: later}}]}]\n");
	s = wf_config_with_xds(base, x, err, sizeof(err));
	CHECK(s);
	struct wf_cluster *a = wf_snapshot_cluster(s, "a");
	CHECK(a && a->eds && a->n_hosts == 1 && !strcmp(a->hosts[0].addr_str, "127.0.0.3:80"));
	CHECK_EQ(s->n_listeners, 1); /* RDS does not validate clusters unless asked: 'later' may come */
	CHECK_EQ(s->n_warming, 0);
	wf_snapshot_free(s);
	/* validate_clusters: true refuses it, naming the route configuration and the field */
	put(x, WF_XDS_RDS,
	    "name: r1\nvalidate_clusters: true\nvirtual_hosts: [{name: all, domains: ['*'], routes: [{match: {prefix: /}, route: {cluster: nope}}]}]\n");
	CHECK(!wf_config_with_xds(base, x, err, sizeof(err)));
	CHECK(!strcmp(err, "xds:RouteConfiguration/r1: virtual_hosts[0].routes[0].route.cluster: unknown cluster 'nope'"));
	/* a bad endpoint names the assignment */
	put(x, WF_XDS_EDS,
	    "cluster_name: svc-a\nendpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: not-an-ip, port_value: 80}}}}]}]\n");
	CHECK(!wf_config_with_xds(base, x, err, sizeof(err)));
	CHECK(strstr(err, "xds:ClusterLoadAssignment/svc-a: endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address"));
	wf_xds_set_unref(x);
	/* after initial_fetch_timeout, what did not come counts as empty */
	x = wf_xds_set_new();
	put(x, WF_XDS_CDS, "name: a\ntype: EDS\n");
	put(x, WF_XDS_CDS, "name: b\ntype: EDS\n");
	put(x, WF_XDS_LDS, LISTENER);
	wf_xds_set_time_out(x, WF_XDS_EDS, "a");
	wf_xds_set_time_out(x, WF_XDS_RDS, "r1");
	wf_xds_set_time_out(x, WF_XDS_RDS, "r1");
	CHECK_EQ(x->n_timed_out[WF_XDS_RDS], 1);
	s = wf_config_with_xds(base, x, err, sizeof(err));
	CHECK(s);
	a = wf_snapshot_cluster(s, "a");
	CHECK(a && a->n_hosts == 0);
	CHECK(!wf_snapshot_cluster(s, "b")); /* its own endpoints did not time out: still warming */
	CHECK_EQ(s->n_listeners, 1);
	wf_snapshot_free(s);
	wf_xds_set_unref(x);
	wf_snapshot_free(base);
}

/* A listener updated to a route configuration that has not come keeps its previous version —
 * with the routes it had, even once nothing else names them — through any number of
 * recompiles (an endpoint change meanwhile, a DNS change), until the new routes come. */
TEST(warming_update_keeps_the_previous_version)
{
	char err[1024];
	struct wf_snapshot *base = boot();
	CHECK(base);
	struct wf_xds_set *x1 = wf_xds_set_new();
	put(x1, WF_XDS_CDS, "name: a\n");
	put(x1, WF_XDS_LDS, LISTENER);
	put(x1, WF_XDS_RDS, "name: r1\nvirtual_hosts: [{name: all, domains: ['*'], routes: [{match: {prefix: /one}, route: {cluster: a}}]}]\n");
	struct wf_snapshot *s1 = wf_config_with_xds(base, x1, err, sizeof(err));
	CHECK(s1);
	CHECK_EQ(s1->n_listeners, 1);
	/* web now names r3, which has not come; r1 is no longer in the set */
	struct wf_xds_set *x2 = wf_xds_set_new();
	put(x2, WF_XDS_CDS, "name: a\n");
	char *l3 = strdup(LISTENER);
	memcpy(strstr(l3, "route_config_name: r1"), "route_config_name: r3", 21);
	put(x2, WF_XDS_LDS, l3);
	struct wf_snapshot *s2 = wf_config_with_xds(s1, x2, err, sizeof(err));
	CHECK(s2);
	CHECK_EQ(s2->n_listeners, 1);
	CHECK_EQ(s2->n_warming, 1);
	CHECK(!strcmp(s2->listeners[0].hcm->routes->name, "r1"));
	struct wf_snapshot *s3 = wf_config_with_xds(s2, x2, err, sizeof(err)); /* again, from s2 */
	CHECK(s3);
	CHECK_EQ(s3->n_listeners, 1);
	CHECK(!strcmp(s3->listeners[0].hcm->routes->name, "r1"));
	struct wf_snapshot *s4 = wf_config_rebuild(s3, err, sizeof(err));
	CHECK(s4 && s4->n_listeners == 1 && !strcmp(s4->listeners[0].hcm->routes->name, "r1"));
	put(x2, WF_XDS_RDS, "name: r3\nvirtual_hosts: [{name: all, domains: ['*'], routes: [{match: {prefix: /}, route: {cluster: a}}]}]\n");
	struct wf_snapshot *s5 = wf_config_with_xds(s4, x2, err, sizeof(err));
	CHECK(s5 && s5->n_listeners == 1 && s5->n_warming == 0 && !strcmp(s5->listeners[0].hcm->routes->name, "r3"));
	free(l3);
	wf_snapshot_free(s5);
	wf_snapshot_free(s4);
	wf_snapshot_free(s3);
	wf_snapshot_free(s2);
	wf_snapshot_free(s1);
	wf_xds_set_unref(x1);
	wf_xds_set_unref(x2);
	wf_snapshot_free(base);
}

TEST(refusals)
{
	char err[1024];
	struct wf_snapshot *base = boot();
	CHECK(base);
	struct wf_xds_set *x = wf_xds_set_new();
	/* an EDS cluster whose eds_config is not the ADS stream */
	put(x, WF_XDS_CDS, "name: a\ntype: EDS\neds_cluster_config: {eds_config: {path: /tmp/eds.yaml}}\n");
	CHECK(!wf_config_with_xds(base, x, err, sizeof(err)));
	CHECK(!strcmp(err, "xds:Cluster/a: eds_cluster_config.eds_config: only the ADS stream is supported as a config "
	                   "source (ads: {}): not path"));
	wf_xds_set_unref(x);
	/* what the data plane does not implement yet is refused in xDS resources as in files */
	x = wf_xds_set_new();
	put(x, WF_XDS_LDS, "name: grpc\napi_listener: {}\n");
	CHECK(!wf_config_with_xds(base, x, err, sizeof(err)));
	CHECK(!strncmp(err, "xds:Listener/grpc: api_listener: api_listener is not supported", 62));
	wf_xds_set_unref(x);
	x = wf_xds_set_new();
	put(x, WF_XDS_CDS, "name: a\nhealth_checks: [{timeout: 1s, interval: 1s, grpc_health_check: {}}]\n");
	CHECK(!wf_config_with_xds(base, x, err, sizeof(err)));
	CHECK(strstr(err, "xds:Cluster/a: health_checks[0].grpc_health_check: grpc_health_check is not supported yet"));
	wf_xds_set_unref(x);
	/* a dynamic cluster named like a static one */
	x = wf_xds_set_new();
	put(x, WF_XDS_CDS, "name: xds\n");
	CHECK(!wf_config_with_xds(base, x, err, sizeof(err)));
	CHECK(!strcmp(err, "xds:Cluster/xds: name: cluster 'xds' is defined twice"));
	wf_xds_set_unref(x);
	wf_snapshot_free(base);
}

TEST_MAIN("ads", T(backoff_is_jittered_exponential_and_capped), T(decode_names_the_resource_and_marks_paths),
          T(set_put_remove_copy), T(eds_and_rds_resolution_and_warming),
          T(warming_update_keeps_the_previous_version), T(refusals))
