/* weft proxy-config PROXY listeners|routes|clusters|endpoints|all [-o short|json]: what a proxy
 * holds, read from its admin's /config_dump (and /clusters for the endpoints' health), in
 * istioctl proxy-config's tables. The dump is decoded by the one YAML/JSON mapper into Envoy's
 * admin messages (envoy.admin.v3.ConfigDump and its typed dumps), so the listeners, routes
 * and clusters read here are the same messages the proxy compiled.
 *
 * PROXY is the proxy's admin address (HOST:PORT), or its name in `weft proxy-status` (a node
 * id, or a prefix naming one proxy): the control plane (--control) says which address its ADS
 * stream comes from, and its admin is looked for there on --admin-port (15000, Istio's). */
#include "cli/cli.h"

#include "envoy/admin/v3/config_dump.pb-c.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"
#include "xds/cfgdoc.h"
#include "xds/json.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Envoy__Config__Listener__V3__Listener Listener;
typedef Envoy__Config__Route__V3__RouteConfiguration RouteConfiguration;
typedef Envoy__Config__Route__V3__Route Route;
typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;
typedef Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy TcpProxy;

/* rds and route_config share a oneof: read them by its case */
static const char *hcm_rds(const Hcm *h)
{
	return h->route_specifier_case == ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS
	           ? h->rds->route_config_name
	           : NULL;
}

static const RouteConfiguration *hcm_inline(const Hcm *h)
{
	return h->route_specifier_case == ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG
	           ? h->route_config
	           : NULL;
}

#define DUMP(x) "type.googleapis.com/envoy.admin.v3." x

static struct wf_cfgdoc *doc;

/* The typed message inside an Any of the dump, or NULL. */
static const ProtobufCMessage *any(const ProtobufCMessage *a)
{
	char err[256];
	return a ? wf_cfgdoc_any(doc, a, err, sizeof(err)) : NULL;
}

/* The dump of that @type among the configs, or NULL. */
static const ProtobufCMessage *section(const Envoy__Admin__V3__ConfigDump *d, const char *type_url)
{
	for (size_t i = 0; i < d->n_configs; i++)
		if (!strcmp(d->configs[i]->type_url, type_url))
			return any(&d->configs[i]->base);
	return NULL;
}

/* ---- listeners -------------------------------------------------------------------------------- */

static void listener_rows(const Listener *l, const char *state)
{
	char addr[128] = "-", port[16] = "-";
	if (l->address && l->address->address_case == ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS) {
		snprintf(addr, sizeof(addr), "%s", l->address->socket_address->address);
		snprintf(port, sizeof(port), "%u", l->address->socket_address->port_value);
	}
	if (l->api_listener) {
		const Hcm *h = (const Hcm *)any(&l->api_listener->api_listener->base);
		printf("%-40s %-15s %-6s %-5s %-8s %s\n", l->name, addr, port, "API", state,
		       h && hcm_rds(h) ? hcm_rds(h) : "-");
		return;
	}
	for (size_t c = 0; c < l->n_filter_chains; c++) {
		const Envoy__Config__Listener__V3__FilterChain *fc = l->filter_chains[c];
		char match[128] = "ALL";
		if (fc->filter_chain_match && fc->filter_chain_match->n_server_names)
			snprintf(match, sizeof(match), "SNI: %s%s", fc->filter_chain_match->server_names[0],
			         fc->filter_chain_match->n_server_names > 1 ? ",..." : "");
		const char *type = "-", *dest = "-";
		char buf[256];
		for (size_t f = 0; f < fc->n_filters; f++) {
			const ProtobufCMessage *m = any(&fc->filters[f]->typed_config->base);
			if (!m)
				continue;
			if (m->descriptor == &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor) {
				const Hcm *h = (const Hcm *)m;
				type = "HTTP";
				snprintf(buf, sizeof(buf), "Route: %s%s", hcm_rds(h) ? hcm_rds(h) : hcm_inline(h) ? hcm_inline(h)->name : "-",
				         hcm_inline(h) ? " (inline)" : "");
				dest = buf;
			} else if (m->descriptor == &envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor) {
				const TcpProxy *t = (const TcpProxy *)m;
				type = "TCP";
				if (t->cluster_specifier_case == ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS &&
				    t->weighted_clusters->n_clusters)
					snprintf(buf, sizeof(buf), "Clusters: %s (+%zu)", t->weighted_clusters->clusters[0]->name,
					         t->weighted_clusters->n_clusters - 1);
				else
					snprintf(buf, sizeof(buf), "Cluster: %s",
					         t->cluster_specifier_case == ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER
					             ? t->cluster
					             : "-");
				dest = buf;
			}
		}
		printf("%-40s %-15s %-6s %-5s %-8s %s  [%s]\n", l->name, addr, port, type, state, dest, match);
	}
}

static int listeners(const Envoy__Admin__V3__ConfigDump *d)
{
	const Envoy__Admin__V3__ListenersConfigDump *ld = (const void *)section(d, DUMP("ListenersConfigDump"));
	if (!ld)
		return -1;
	printf("%-40s %-15s %-6s %-5s %-8s %s\n", "NAME", "ADDRESS", "PORT", "TYPE", "STATE", "DESTINATION  [MATCH]");
	for (size_t i = 0; i < ld->n_static_listeners; i++) {
		const Listener *l = (const Listener *)any(&ld->static_listeners[i]->listener->base);
		if (l)
			listener_rows(l, "STATIC");
	}
	for (size_t i = 0; i < ld->n_dynamic_listeners; i++) {
		const Envoy__Admin__V3__ListenersConfigDump__DynamicListener *dl = ld->dynamic_listeners[i];
		const Listener *act = dl->active_state ? (const Listener *)any(&dl->active_state->listener->base) : NULL;
		const Listener *warm = dl->warming_state ? (const Listener *)any(&dl->warming_state->listener->base) : NULL;
		if (act)
			listener_rows(act, "ACTIVE");
		if (warm)
			listener_rows(warm, "WARMING");
		if (!act && !warm && dl->error_state)
			printf("%-40s %-15s %-6s %-5s %-8s %s\n", dl->name, "-", "-", "-", "REFUSED", dl->error_state->details);
	}
	return 0;
}

/* ---- routes ----------------------------------------------------------------------------------- */

static void route_rows(const RouteConfiguration *rc)
{
	for (size_t v = 0; v < rc->n_virtual_hosts; v++) {
		const Envoy__Config__Route__V3__VirtualHost *vh = rc->virtual_hosts[v];
		char domains[160] = "";
		for (size_t k = 0; k < vh->n_domains && strlen(domains) < sizeof(domains) - 8; k++)
			snprintf(domains + strlen(domains), sizeof(domains) - strlen(domains), "%s%s", k ? "," : "",
			         vh->domains[k]);
		if (strlen(domains) >= 40)
			strcpy(domains + 36, "...");
		for (size_t r = 0; r < vh->n_routes; r++) {
			const Route *rt = vh->routes[r];
			char match[160] = "-", dest[256] = "-";
			const Envoy__Config__Route__V3__RouteMatch *m = rt->match;
			if (m && m->path_specifier_case == ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX)
				snprintf(match, sizeof(match), "%s*", m->prefix);
			else if (m && m->path_specifier_case == ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH)
				snprintf(match, sizeof(match), "%s", m->path);
			else if (m && m->path_specifier_case == ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX)
				snprintf(match, sizeof(match), "~%s", m->safe_regex->regex);
			if (m && m->n_headers)
				snprintf(match + strlen(match), sizeof(match) - strlen(match), " +%zu header%s", m->n_headers,
				         m->n_headers > 1 ? "s" : "");
			if (rt->action_case == ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE) {
				const Envoy__Config__Route__V3__RouteAction *a = rt->route;
				if (a->cluster_specifier_case == ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS) {
					dest[0] = 0;
					for (size_t k = 0; k < a->weighted_clusters->n_clusters; k++) {
						const Envoy__Config__Route__V3__WeightedCluster__ClusterWeight *cw =
						    a->weighted_clusters->clusters[k];
						snprintf(dest + strlen(dest), sizeof(dest) - strlen(dest), "%s%s %u%%", k ? ", " : "",
						         cw->name, cw->weight ? cw->weight->value : 0);
					}
				} else {
					snprintf(dest, sizeof(dest), "%s",
					         a->cluster_specifier_case == ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER ? a->cluster : "-");
				}
			} else if (rt->action_case == ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_REDIRECT) {
				snprintf(dest, sizeof(dest), "redirect");
			} else if (rt->action_case == ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_DIRECT_RESPONSE) {
				snprintf(dest, sizeof(dest), "direct response %u", rt->direct_response->status);
			}
			printf("%-16s %-32s %-40s %-24s %s\n", rc->name, vh->name, domains, match, dest);
		}
	}
}

/* The route configurations inline in the dump's listeners (static ones have no RDS dump entry
 * of their own in Weft's). */
static void inline_routes(const Envoy__Admin__V3__ConfigDump *d)
{
	const Envoy__Admin__V3__ListenersConfigDump *ld = (const void *)section(d, DUMP("ListenersConfigDump"));
	for (size_t i = 0; ld && i < ld->n_dynamic_listeners; i++) {
		const Envoy__Admin__V3__ListenersConfigDump__DynamicListener *dl = ld->dynamic_listeners[i];
		const Listener *l = dl->active_state ? (const Listener *)any(&dl->active_state->listener->base) : NULL;
		for (size_t c = 0; l && c < l->n_filter_chains; c++)
			for (size_t f = 0; f < l->filter_chains[c]->n_filters; f++) {
				const ProtobufCMessage *m = any(&l->filter_chains[c]->filters[f]->typed_config->base);
				if (m && m->descriptor == &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor &&
				    hcm_inline((const Hcm *)m))
					route_rows(hcm_inline((const Hcm *)m));
			}
	}
}

static int routes(const Envoy__Admin__V3__ConfigDump *d)
{
	const Envoy__Admin__V3__RoutesConfigDump *rd = (const void *)section(d, DUMP("RoutesConfigDump"));
	if (!rd)
		return -1;
	printf("%-16s %-32s %-40s %-24s %s\n", "NAME", "VHOST NAME", "DOMAINS", "MATCH", "DESTINATION");
	for (size_t i = 0; i < rd->n_static_route_configs; i++) {
		const RouteConfiguration *rc = (const void *)any(&rd->static_route_configs[i]->route_config->base);
		if (rc)
			route_rows(rc);
	}
	inline_routes(d);
	for (size_t i = 0; i < rd->n_dynamic_route_configs; i++) {
		const RouteConfiguration *rc = (const void *)any(&rd->dynamic_route_configs[i]->route_config->base);
		if (rc)
			route_rows(rc);
	}
	return 0;
}

/* ---- clusters --------------------------------------------------------------------------------- */

static const char *type_name(const Cluster *c)
{
	static const char *const names[] = {"STATIC", "STRICT_DNS", "LOGICAL_DNS", "EDS", "ORIGINAL_DST"};
	return c->type < sizeof(names) / sizeof(names[0]) ? names[c->type] : "?";
}

static void cluster_row(const Cluster *c, const char *state)
{
	/* Istio's names: DIRECTION|PORT|SUBSET|FQDN */
	char copy[512], *part[4] = {0};
	snprintf(copy, sizeof(copy), "%s", c->name);
	int n = 0;
	for (char *p = copy, *bar; n < 4; n++, p = bar + 1) {
		part[n] = p;
		if (!(bar = strchr(p, '|'))) {
			n++;
			break;
		}
		*bar = 0;
	}
	if (n == 4 && (!strcmp(part[0], "outbound") || !strcmp(part[0], "inbound")))
		printf("%-48s %-6s %-10s %-9s %-12s %s\n", *part[3] ? part[3] : "-", part[1], *part[2] ? part[2] : "-",
		       part[0], type_name(c), state);
	else
		printf("%-48s %-6s %-10s %-9s %-12s %s\n", c->name, "-", "-", "-", type_name(c), state);
}

static int clusters(const Envoy__Admin__V3__ConfigDump *d)
{
	const Envoy__Admin__V3__ClustersConfigDump *cd = (const void *)section(d, DUMP("ClustersConfigDump"));
	if (!cd)
		return -1;
	printf("%-48s %-6s %-10s %-9s %-12s %s\n", "SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "STATE");
	for (size_t i = 0; i < cd->n_static_clusters; i++) {
		const Cluster *c = (const void *)any(&cd->static_clusters[i]->cluster->base);
		if (c)
			cluster_row(c, "STATIC");
	}
	for (size_t i = 0; i < cd->n_dynamic_active_clusters; i++) {
		const Cluster *c = (const void *)any(&cd->dynamic_active_clusters[i]->cluster->base);
		if (c)
			cluster_row(c, "ACTIVE");
	}
	for (size_t i = 0; i < cd->n_dynamic_warming_clusters; i++) {
		const Cluster *c = (const void *)any(&cd->dynamic_warming_clusters[i]->cluster->base);
		if (c)
			cluster_row(c, "WARMING");
	}
	return 0;
}

/* ---- endpoints: the proxy's /clusters, lines CLUSTER::HOST::health_flags::FLAGS ---------------- */

static int endpoints(const char *target, char *err, size_t errlen)
{
	char *body;
	if (wf_cli_http_get(target, "/clusters", &body, err, errlen) < 0)
		return -1;
	printf("%-24s %-10s %-14s %s\n", "ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER");
	for (char *line = strtok(body, "\n"); line; line = strtok(NULL, "\n")) {
		char *k = strstr(line, "::health_flags::");
		if (!k)
			continue;
		*k = 0;
		const char *flags = k + strlen("::health_flags::");
		char *host = strstr(line, "::");
		if (!host)
			continue;
		*host = 0;
		host += 2;
		printf("%-24s %-10s %-14s %s\n", host,
		       strstr(flags, "failed_active_hc") || strstr(flags, "failed_eds_health") ? "UNHEALTHY" : "HEALTHY",
		       strstr(flags, "failed_outlier_check") ? "FAILED" : "OK", line);
	}
	free(body);
	return 0;
}

/* ---- finding the proxy ------------------------------------------------------------------------ */

/* PROXY as HOST:PORT, or a proxy name of the control plane's /debug/syncz: its peer's host and
 * admin_port. 0, or -1 with err. */
static int admin_target(const char *proxy, const char *control, unsigned admin_port, char *out, size_t n, char *err,
                        size_t errlen)
{
	const char *colon = strrchr(proxy, ':');
	if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1) && !strchr(proxy, '~')) {
		snprintf(out, n, "%s", proxy);
		return 0;
	}
	char *body;
	if (wf_cli_http_get(control, "/debug/syncz", &body, err, errlen) < 0)
		return -1;
	struct wf_cli_json root;
	int rc = -1, found = 0;
	if (wf_cli_json_parse(body, &root) == 0 && root.type == 'a') {
		for (size_t i = 0; i < root.n; i++) {
			const char *id = wf_cli_json_str(&root.kids[i], "proxy");
			if (strncmp(id, proxy, strlen(proxy)))
				continue;
			if (found++) {
				snprintf(err, errlen, "'%s' names more than one proxy (give more of its name)", proxy);
				found = -1;
				break;
			}
			char ip[128];
			snprintf(ip, sizeof(ip), "%s", wf_cli_json_str(&root.kids[i], "peer"));
			char *c = strrchr(ip, ':');
			if (c)
				*c = 0;
			snprintf(out, n, "%s:%u", ip, admin_port);
		}
		if (found == 1)
			rc = 0;
		else if (!found)
			snprintf(err, errlen, "no proxy named '%s' is connected to the control plane at %s", proxy, control);
	} else {
		snprintf(err, errlen, "%s/debug/syncz: not the JSON expected", control);
	}
	wf_cli_json_free(&root);
	free(body);
	return rc;
}

#define USAGE "usage: weft proxy-config PROXY listeners|routes|clusters|endpoints|all [-o short|json]\n" \
              "                         [--control HOST:PORT] [--admin-port N]\n" \
              "  PROXY: the proxy's admin address HOST:PORT, or its name in `weft proxy-status`\n"

int wf_cmd_proxy_config(int argc, char **argv)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'},
		{"control", required_argument, NULL, 'c'},
		{"admin-port", required_argument, NULL, 'a'},
		{NULL, 0, NULL, 0},
	};
	const char *output = "short", *control = "127.0.0.1:15014";
	unsigned admin_port = 15000;
	int o;
	while ((o = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (o) {
		case 'o': output = optarg; break;
		case 'c': control = optarg; break;
		case 'a': admin_port = (unsigned)atoi(optarg); break;
		default: fprintf(stderr, USAGE); return 2;
		}
	}
	static const char *const kinds[] = {"listeners", "routes", "clusters", "endpoints", "all"};
	int kind = -1;
	if (argc - optind == 2)
		for (int k = 0; k < 5; k++)
			if (!strcmp(argv[optind + 1], kinds[k]))
				kind = k;
	if (kind < 0 || (strcmp(output, "short") && strcmp(output, "json")) || !admin_port || admin_port > 65535) {
		fprintf(stderr, USAGE);
		return 2;
	}
	char target[160], err[512], *body;
	if (admin_target(argv[optind], control, admin_port, target, sizeof(target), err, sizeof(err)) < 0) {
		fprintf(stderr, "weft: proxy-config: %s\n", err);
		return 1;
	}
	if (wf_cli_http_get(target, "/config_dump", &body, err, sizeof(err)) < 0) {
		fprintf(stderr, "weft: proxy-config: %s (is a proxy's admin there?)\n", err);
		return 1;
	}
	char src[200];
	snprintf(src, sizeof(src), "%s/config_dump", target);
	doc = wf_cfgdoc_new(src);
	if (wf_yaml_load_string(doc, &envoy__admin__v3__config_dump__descriptor, body, strlen(body), err, sizeof(err)) < 0) {
		fprintf(stderr, "weft: proxy-config: %s\n", err);
		free(body);
		wf_cfgdoc_free(doc);
		return 1;
	}
	free(body);
	const Envoy__Admin__V3__ConfigDump *d = (const void *)wf_cfgdoc_root(doc);
	int rc = 0;
	if (!strcmp(output, "json")) {
		static const char *const types[] = {DUMP("ListenersConfigDump"), DUMP("RoutesConfigDump"),
		                                    DUMP("ClustersConfigDump"), DUMP("EndpointsConfigDump")};
		struct wf_jbuf b = {0};
		const ProtobufCMessage *m = kind == 4 ? &d->base : section(d, types[kind]);
		if (m && wf_json_message(&b, m, 2) == 0)
			printf("%s\n", b.p);
		else
			rc = -1;
		free(b.p);
	} else {
		int (*const tables[])(const Envoy__Admin__V3__ConfigDump *) = {listeners, routes, clusters};
		for (int k = 0; k < 4 && !rc; k++) {
			if (kind != 4 && kind != k)
				continue;
			if (kind == 4 && k)
				printf("\n");
			rc = k == 3 ? endpoints(target, err, sizeof(err)) : tables[k](d);
		}
	}
	wf_cfgdoc_free(doc);
	if (rc < 0) {
		fprintf(stderr, "weft: proxy-config: %s: %s\n", target, *err ? err : "the dump has no such section");
		return 1;
	}
	return 0;
}
