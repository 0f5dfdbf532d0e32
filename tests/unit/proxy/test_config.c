/* Config compile (bootstrap YAML -> snapshot), its located errors, and route/host selection. */
#include "test.h"

#include "proxy/config.h"
#include "proxy/router.h"
#include "proxy/stats.h"
#include "proxy/worker.h"
#include "xds/json.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/wf-test-config-%d.yaml", getpid());
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static struct wf_snapshot *load(const char *text, char *err, size_t n)
{
	wf_stats_thread_init();
	err[0] = 0;
	struct wf_snapshot *s = wf_config_load(write_tmp(text), 2, err, n);
	unlink(write_tmp(""));
	return s;
}

#define HCM_HEAD                                                                                     \
	"static_resources:\n"                                                                           \
	"  listeners:\n"                                                                                \
	"  - name: l\n"                                                                                 \
	"    address: {socket_address: {address: 127.0.0.1, port_value: 1}}\n"                          \
	"    filter_chains:\n"                                                                          \
	"    - filters:\n"                                                                              \
	"      - name: hcm\n"                                                                           \
	"        typed_config:\n"                                                                       \
	"          \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\n" \
	"          stat_prefix: t\n"                                                                    \
	"          http_filters: [{name: envoy.filters.http.router}]\n"                                 \
	"          route_config:\n"                                                                     \
	"            virtual_hosts:\n"

#define CLUSTERS                                                                                     \
	"  clusters:\n"                                                                                 \
	"  - name: a\n"                                                                                 \
	"    load_assignment:\n"                                                                        \
	"      endpoints:\n"                                                                            \
	"      - lb_endpoints:\n"                                                                       \
	"        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 2}}}\n"       \
	"          load_balancing_weight: 3\n"                                                          \
	"        - endpoint: {address: {socket_address: {address: 127.0.0.2, port_value: 2}}}\n"       \
	"  - name: b\n"

TEST(valid_config)
{
	char err[512];
	struct wf_snapshot *s = load(HCM_HEAD
	    "            - name: v\n"
	    "              domains: [\"*\"]\n"
	    "              routes: [{match: {prefix: /}, route: {cluster: a}}]\n" CLUSTERS, err, sizeof(err));
	if (!s)
		printf("  %s\n", err);
	CHECK(s != NULL);
	CHECK_EQ(s->n_listeners, 1);
	CHECK_EQ(s->n_clusters, 2);
	CHECK_EQ(s->listeners[0].kind, WF_NF_HCM);
	CHECK_EQ(s->clusters[0]->n_hosts, 2);
	CHECK_EQ(s->clusters[0]->hosts[0].weight, 3);
	CHECK_EQ(s->listeners[0].hcm->routes->vhosts[0].routes[0].timeout_ms, 15000);
	CHECK_EQ(s->listeners[0].hcm->max_request_headers_kb, 60);
	wf_snapshot_free(s);
}

TEST(unknown_field_is_located_with_suggestion)
{
	char err[512];
	struct wf_snapshot *s = load("static_resources:\n  clusters:\n  - name: a\n    conect_timeout: 1s\n", err, sizeof(err));
	CHECK(s == NULL);
	CHECK(strstr(err, ":4:5: static_resources.clusters[0]: unknown field 'conect_timeout'") != NULL);
	CHECK(strstr(err, "did you mean 'connect_timeout'?") != NULL);
}

TEST(unknown_cluster_is_located)
{
	char err[512];
	struct wf_snapshot *s = load(HCM_HEAD
	    "            - name: v\n"
	    "              domains: [\"*\"]\n"
	    "              routes: [{match: {prefix: /}, route: {cluster: nope}}]\n" CLUSTERS, err, sizeof(err));
	CHECK(s == NULL);
	CHECK(strstr(err, ":16:53: ") != NULL); /* the 'cluster' key inside route: {...} */
	CHECK(strstr(err, "route.cluster: unknown cluster 'nope'") != NULL);
}

TEST(bad_regex)
{
	char err[512];
	struct wf_snapshot *s = load(HCM_HEAD
	    "            - name: v\n"
	    "              domains: [\"*\"]\n"
	    "              routes: [{match: {safe_regex: {regex: \"/a(\"}}, route: {cluster: a}}]\n" CLUSTERS,
	    err, sizeof(err));
	CHECK(s == NULL);
	CHECK(strstr(err, "invalid regex '/a('") != NULL);
}

TEST(pseudo_header_match)
{
	char err[512];
	struct wf_snapshot *s = load(HCM_HEAD
	    "            - name: v\n"
	    "              domains: [\"*\"]\n"
	    "              routes:\n"
	    "              - {name: post, match: {prefix: /, headers: [{name: \":method\", string_match: {exact: POST}}]}, route: {cluster: a}}\n"
	    "              - {name: other, match: {prefix: /}, route: {cluster: a}}\n" CLUSTERS, err, sizeof(err));
	CHECK(s != NULL);
	const struct wf_vhost *vh = &s->listeners[0].hcm->routes->vhosts[0];
	struct wf_h1_req q = {.method = "POST", .method_len = 4, .path = "/", .path_len = 1};
	CHECK(!strcmp(wf_route_match(vh, &q)->name, "post"));
	q.method = "GET", q.method_len = 3;
	CHECK(!strcmp(wf_route_match(vh, &q)->name, "other"));
	wf_snapshot_free(s);
}

TEST(oneof_twice)
{
	char err[512];
	struct wf_snapshot *s = load(HCM_HEAD
	    "            - name: v\n"
	    "              domains: [\"*\"]\n"
	    "              routes: [{match: {prefix: /, path: /x}, route: {cluster: a}}]\n" CLUSTERS,
	    err, sizeof(err));
	CHECK(s == NULL);
	CHECK(strstr(err, "'prefix' and 'path' are alternatives") != NULL);
}

TEST(duplicate_domain)
{
	char err[512];
	struct wf_snapshot *s = load(HCM_HEAD
	    "            - {name: v, domains: [a.com], routes: []}\n"
	    "            - {name: w, domains: [A.com], routes: []}\n" CLUSTERS, err, sizeof(err));
	CHECK(s == NULL);
	CHECK(strstr(err, "domain 'A.com' is used by two virtual hosts") != NULL);
}

TEST(unsupported_lb_policy_is_refused)
{
	char err[512];
	struct wf_snapshot *s = load("static_resources:\n  clusters:\n  - name: a\n    lb_policy: LOAD_BALANCING_POLICY_CONFIG\n", err, sizeof(err));
	CHECK(s == NULL);
	CHECK(strstr(err, ":4:5: static_resources.clusters[0].lb_policy: lb_policy LOAD_BALANCING_POLICY_CONFIG is not supported") != NULL);
}

TEST(vhost_order)
{
	char err[512];
	struct wf_snapshot *s = load(HCM_HEAD
	    "            - {name: exact, domains: [api.example.com, \"api.example.com:8080\"], routes: []}\n"
	    "            - {name: suffix, domains: [\"*.example.com\"], routes: []}\n"
	    "            - {name: longsuffix, domains: [\"*.api.example.com\"], routes: []}\n"
	    "            - {name: prefix, domains: [\"api.*\"], routes: []}\n"
	    "            - {name: any, domains: [\"*\"], routes: []}\n" CLUSTERS, err, sizeof(err));
	CHECK(s != NULL);
	const struct wf_route_table *t = s->listeners[0].hcm->routes;
#define VH(h, strip) wf_route_vhost(t, h, strlen(h), strip)->name
	CHECK(!strcmp(VH("api.example.com", 0), "exact"));
	CHECK(!strcmp(VH("API.Example.COM", 0), "exact"));
	CHECK(!strcmp(VH("api.example.com:8080", 0), "exact"));
	CHECK(!strcmp(VH("api.example.com:9090", 0), "prefix"));
	CHECK(!strcmp(VH("api.example.com:9090", 1), "exact"));
	CHECK(!strcmp(VH("x.api.example.com", 0), "longsuffix"));
	CHECK(!strcmp(VH("www.example.com", 0), "suffix"));
	CHECK(!strcmp(VH("api.other.org", 0), "prefix"));
	CHECK(!strcmp(VH("example.com", 0), "any"));
#undef VH
	wf_snapshot_free(s);
}

static const char *route_name(const struct wf_vhost *vh, const char *path, struct wf_hdr *h, uint32_t n)
{
	struct wf_h1_req q = {.method = "GET", .method_len = 3, .path = path, .path_len = (uint32_t)strlen(path),
	                      .host = "h", .host_len = 1, .headers = h, .n_headers = n};
	const struct wf_route *r = wf_route_match(vh, &q);
	return r ? r->name : "none";
}

TEST(route_matching)
{
	char err[512];
	struct wf_snapshot *s = load(HCM_HEAD
	    "            - name: v\n"
	    "              domains: [\"*\"]\n"
	    "              routes:\n"
	    "              - {name: exact, match: {path: /exact}, route: {cluster: a}}\n"
	    "              - {name: nocase, match: {prefix: /NoCase, case_sensitive: false}, route: {cluster: a}}\n"
	    "              - {name: regex, match: {safe_regex: {regex: \"/r/[0-9]+\"}}, route: {cluster: a}}\n"
	    "              - name: hdr\n"
	    "                match: {prefix: /h, headers: [{name: x-v, string_match: {prefix: \"2\"}}]}\n"
	    "                route: {cluster: a}\n"
	    "              - name: inv\n"
	    "                match: {prefix: /h, headers: [{name: x-v, string_match: {exact: \"1\"}, invert_match: true}]}\n"
	    "                route: {cluster: a}\n"
	    "              - name: query\n"
	    "                match: {prefix: /q, query_parameters: [{name: debug, string_match: {exact: \"1\"}}]}\n"
	    "                route: {cluster: a}\n"
	    "              - name: sep\n"
	    "                match: {path_separated_prefix: /api}\n"
	    "                route: {cluster: a}\n" CLUSTERS, err, sizeof(err));
	CHECK(s != NULL);
	const struct wf_vhost *vh = &s->listeners[0].hcm->routes->vhosts[0];
	struct wf_hdr h2[] = {{"X-V", "22", 3, 2}};
	struct wf_hdr h1[] = {{"x-v", "1", 3, 1}};
	struct wf_hdr h3[] = {{"x-v", "3", 3, 1}};
#define RN(p, h, n) route_name(vh, p, h, n)
	CHECK(!strcmp(RN("/exact", NULL, 0), "exact"));
	CHECK(!strcmp(RN("/exact?x=1", NULL, 0), "exact"));
	CHECK(!strcmp(RN("/exactly", NULL, 0), "none"));
	CHECK(!strcmp(RN("/nocase/x", NULL, 0), "nocase"));
	CHECK(!strcmp(RN("/r/123", NULL, 0), "regex"));
	CHECK(!strcmp(RN("/r/12a", NULL, 0), "none"));
	CHECK(!strcmp(RN("/h", h2, 1), "hdr"));
	CHECK(!strcmp(RN("/h", h3, 1), "inv"));
	CHECK(!strcmp(RN("/h", h1, 1), "none"));
	CHECK(!strcmp(RN("/h", NULL, 0), "none"));
	CHECK(!strcmp(RN("/q?a=2&debug=1", NULL, 0), "query"));
	CHECK(!strcmp(RN("/q?debug=2", NULL, 0), "none"));
	CHECK(!strcmp(RN("/api", NULL, 0), "sep"));
	CHECK(!strcmp(RN("/api/v1", NULL, 0), "sep"));
	CHECK(!strcmp(RN("/apiv1", NULL, 0), "none"));
	struct wf_hdr two[] = {{"x-v", "1", 3, 1}, {"x-v", "2", 3, 1}};
	CHECK(!strcmp(RN("/h", two, 2), "inv")); /* joined "1,2": not exactly "1" */
#undef RN
	wf_snapshot_free(s);
}

TEST(smooth_weighted_round_robin)
{
	char err[512];
	struct wf_snapshot *s = load(HCM_HEAD
	    "            - {name: v, domains: [\"*\"], routes: []}\n" CLUSTERS, err, sizeof(err));
	CHECK(s != NULL);
	struct wf_worker w = {.id = 1};
	struct wf_cluster *c = s->clusters[0];
	char seq[9] = {0};
	for (int i = 0; i < 8; i++)
		seq[i] = wf_cluster_pick(&w, c, 0, 0) == &c->hosts[0] ? 'a' : 'b';
	/* weights 3:1, spread out rather than in bursts */
	CHECK(!strcmp(seq, "aabaaaba") || !strcmp(seq, "abaaabaa"));
	c->usable[0] = 0;
	CHECK(wf_cluster_pick(&w, c, 0, 0) == &c->hosts[1]);
	c->usable[1] = 0;
	CHECK(wf_cluster_pick(&w, c, 0, 0) == NULL);
	wf_snapshot_free(s);
}

TEST(priorities_sorted_into_levels)
{
	char err[512];
	struct wf_snapshot *s = load(HCM_HEAD
	    "            - {name: v, domains: [\"*\"], routes: []}\n"
	    "  clusters:\n"
	    "  - name: p\n"
	    "    common_lb_config: {healthy_panic_threshold: {value: 0}, locality_weighted_lb_config: {}}\n"
	    "    load_assignment:\n"
	    "      policy: {overprovisioning_factor: 200}\n"
	    "      endpoints:\n"
	    "      - priority: 2\n"
	    "        locality: {zone: z2}\n"
	    "        lb_endpoints:\n"
	    "        - endpoint: {address: {socket_address: {address: 127.0.0.3, port_value: 2}}}\n"
	    "      - locality: {zone: z0}\n"
	    "        load_balancing_weight: 5\n"
	    "        lb_endpoints:\n"
	    "        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 2}}}\n"
	    "          health_status: UNHEALTHY\n"
	    "        - endpoint: {address: {socket_address: {address: 127.0.0.2, port_value: 2}}}\n",
	    err, sizeof(err));
	CHECK(s != NULL);
	struct wf_cluster *c = s->clusters[0];
	CHECK_EQ(c->n_levels, 3);             /* priority 1 is an empty level */
	CHECK_EQ(c->levels[0].first, 0);
	CHECK_EQ(c->levels[0].n, 2);
	CHECK_EQ(c->levels[0].n_healthy, 1);
	CHECK_EQ(c->levels[1].n, 0);
	CHECK_EQ(c->levels[2].first, 2);
	CHECK_EQ(c->levels[2].n, 1);
	CHECK_STR(c->levels[2].loc[0].zone, strlen(c->levels[2].loc[0].zone), "z2");
	CHECK_EQ(c->levels[0].loc[0].weight, 5);
	CHECK_EQ(c->hosts[2].priority, 2);
	CHECK_STR(c->hosts[0].addr_str, strlen(c->hosts[0].addr_str), "127.0.0.1:2");
	CHECK_EQ(c->overprov, 200);
	CHECK(c->panic_pct == 0 && c->locality_weighted);
	CHECK_EQ(c->load.load[0], 100);        /* 200 x 50% = 100: P0 keeps everything */
	struct wf_worker w = {.id = 0, .rng = 42};
	for (int i = 0; i < 20; i++)
		CHECK(wf_cluster_pick(&w, c, 0, 0) == &c->hosts[1]);
	wf_snapshot_free(s);
}

/* A snapshot whose last reference a worker gives back is freed by the main thread at its next
 * reap, not on the worker: its stats are still listed after the worker's release, and gone
 * after the reap. */
static int listed(const char *name)
{
	struct wf_jbuf b = {0};
	int found = wf_stats_render_text(&b, name) == 0 && b.p && strstr(b.p, name);
	free(b.p);
	return found;
}

static void *release_as_a_worker(void *s)
{
	static char a_worker;
	wf_self = (struct wf_worker *)&a_worker; /* only its being set matters here */
	wf_snapshot_release(s);
	return NULL;
}

TEST(a_worker_leaves_the_free_to_the_main_thread)
{
	char err[512];
	struct wf_snapshot *s = load("static_resources:\n  clusters:\n  - name: handed_over\n    connect_timeout: 1s\n", err,
	                             sizeof(err));
	CHECK(s != NULL);
	CHECK(listed("cluster.handed_over.upstream_rq_total"));
	wf_snapshots_freed(); /* start from "none freed" */
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, release_as_a_worker, s), 0);
	pthread_join(th, NULL);
	CHECK(listed("cluster.handed_over.upstream_rq_total")); /* not freed on the worker */
	CHECK(!wf_snapshots_freed());
	wf_snapshot_reap();
	CHECK(!listed("cluster.handed_over.upstream_rq_total"));
	CHECK(wf_snapshots_freed());
	/* from the main thread, the last release frees at once */
	s = load("static_resources:\n  clusters:\n  - name: on_main\n    connect_timeout: 1s\n", err, sizeof(err));
	CHECK(s != NULL);
	wf_snapshot_release(s);
	CHECK(!listed("cluster.on_main.upstream_rq_total"));
}

TEST_MAIN("config", T(valid_config), T(unknown_field_is_located_with_suggestion), T(unknown_cluster_is_located),
          T(bad_regex), T(pseudo_header_match), T(oneof_twice), T(duplicate_domain), T(unsupported_lb_policy_is_refused), T(vhost_order),
          T(route_matching), T(smooth_weighted_round_robin), T(priorities_sorted_into_levels),
          T(a_worker_leaves_the_free_to_the_main_thread))
