/* A cluster's hosts and how they are balanced: load_assignment (endpoints with their priority,
 * locality, weight and health_status; policy.overprovisioning_factor), lb_policy and
 * common_lb_config (healthy_panic_threshold, locality_weighted_lb_config), compiled into the
 * priority levels and localities of config.h. */
#include "proxy/compile.h"

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "net/resolve.h"
#include "proxy/dns.h"
#include "xds/cfgdoc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Config__Endpoint__V3__LocalityLbEndpoints LocalityLbEndpoints;
typedef Envoy__Config__Endpoint__V3__LbEndpoint LbEndpoint;

static struct wf_host *new_host(struct wf_cluster *cl, size_t *cap)
{
	if (cl->n_hosts == *cap)
		cl->hosts = realloc(cl->hosts, (*cap = *cap * 2 + 4) * sizeof(*cl->hosts));
	struct wf_host *h = &cl->hosts[cl->n_hosts];
	memset(h, 0, sizeof(*h));
	return h;
}

/* A STRICT_DNS or LOGICAL_DNS endpoint: its name's latest addresses (proxy/dns.c) become hosts
 * like `proto` (weight, health, level, locality) with the endpoint's port: every address for
 * STRICT_DNS (duplicates merged), the first one for LOGICAL_DNS. */
static int dns_endpoint(struct wf_compile *c, const Envoy__Config__Core__V3__SocketAddress *sa, struct wf_cluster *cl,
                        size_t *cap, const struct wf_host *proto)
{
	if (sa->port_specifier_case != ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE || sa->port_value > 65535)
		return wf_cfg_err(c->doc, c->err, c->errlen, sa, "port_value", "a port_value (0..65535) is required");
	const struct wf_addr *addrs;
	uint32_t n;
	int rc = wf_dns_addrs(cl->name, sa->address, cl->dns_family, &addrs, &n);
	if (rc)
		return wf_cfg_err(c->doc, c->err, c->errlen, sa, "address", "cannot resolve '%s': %s", sa->address,
		                  wf_resolve_strerror(rc));
	const char *hostname = NULL;
	for (uint32_t i = 0; i < cl->n_dns_names && !hostname; i++)
		if (!strcmp(cl->dns_names[i], sa->address))
			hostname = cl->dns_names[i];
	if (!hostname) {
		cl->dns_names = realloc(cl->dns_names, (cl->n_dns_names + 1) * sizeof(*cl->dns_names));
		hostname = cl->dns_names[cl->n_dns_names++] = strdup(sa->address);
	}
	if (cl->type == WF_CLUSTER_LOGICAL_DNS)
		n = 1;
	for (uint32_t i = 0; i < n; i++) {
		struct wf_host *h = new_host(cl, cap);
		*h = *proto;
		h->addr = addrs[i];
		wf_addr_set_port(&h->addr, sa->port_value);
		int dup = 0;
		for (uint32_t k = 0; k < cl->n_hosts; k++)
			dup |= wf_addr_eq(&cl->hosts[k].addr, &h->addr);
		if (dup)
			continue;
		wf_addr_str(&h->addr, h->addr_str, sizeof(h->addr_str));
		h->hostname = hostname;
		cl->n_hosts++;
	}
	return 0;
}

/* One LocalityLbEndpoints: its hosts, appended to cl->hosts with the given level and locality. */
static int locality_hosts(struct wf_compile *c, const Cluster *m, const LocalityLbEndpoints *lle, struct wf_cluster *cl,
                          size_t *cap, uint32_t level, uint32_t loc)
{
	for (size_t k = 0; k < lle->n_lb_endpoints; k++) {
		const LbEndpoint *le = lle->lb_endpoints[k];
		if (le->host_identifier_case != ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT)
			return wf_cfg_err(c->doc, c->err, c->errlen, le, NULL, "an lb_endpoint needs an endpoint");
		struct wf_host proto = {.weight = le->load_balancing_weight ? le->load_balancing_weight->value : 1,
		                        .priority = (uint8_t)level, .locality = loc};
		if (!proto.weight)
			return wf_cfg_err(c->doc, c->err, c->errlen, le, "load_balancing_weight", "weight must be at least 1");
		/* DEGRADED hosts count as healthy (Envoy would use them only after the healthy ones) */
		proto.healthy = le->health_status != ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__UNHEALTHY &&
		                le->health_status != ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__DRAINING &&
		                le->health_status != ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__TIMEOUT;
		const Envoy__Config__Core__V3__Address *a = le->endpoint->address;
		if (cl->type != WF_CLUSTER_STATIC) {
			if (!a || a->address_case != ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS)
				return wf_cfg_err(c->doc, c->err, c->errlen, le->endpoint, "address", "a socket_address is required");
			if (dns_endpoint(c, a->socket_address, cl, cap, &proto) < 0)
				return -1;
			continue;
		}
		struct wf_host *h = new_host(cl, cap);
		*h = proto;
		if (wf_compile_socket_address(c, a, le->endpoint, "address", &h->addr) < 0)
			return -1;
		wf_addr_str(&h->addr, h->addr_str, sizeof(h->addr_str));
		cl->n_hosts++;
	}
	return 0;
}

static char *dup_or_null(const char *s) { return s && *s ? strdup(s) : NULL; }

/* load_assignment: hosts in priority order (then LocalityLbEndpoints order), levels 0..max
 * priority (a level nobody names stays empty, as in Envoy), one locality per
 * LocalityLbEndpoints. */
static int endpoints(struct wf_compile *c, const Cluster *m, struct wf_cluster *cl)
{
	const Envoy__Config__Endpoint__V3__ClusterLoadAssignment *la = m->load_assignment;
	size_t n = la ? la->n_endpoints : 0;
	if (cl->type == WF_CLUSTER_LOGICAL_DNS && (n != 1 || la->endpoints[0]->n_lb_endpoints != 1))
		return wf_cfg_err(c->doc, c->err, c->errlen, la ? (const void *)la : (const void *)m,
		                  la ? "endpoints" : "load_assignment",
		                  "a LOGICAL_DNS cluster needs exactly one locality with exactly one lb_endpoint");
	uint32_t max_prio = 0;
	for (size_t i = 0; i < n; i++) {
		if (la->endpoints[i]->priority >= WF_PRIO_MAX)
			return wf_cfg_err(c->doc, c->err, c->errlen, la->endpoints[i], "priority", "priority must be 0..%d",
			                  WF_PRIO_MAX - 1);
		if (la->endpoints[i]->priority > max_prio)
			max_prio = la->endpoints[i]->priority;
	}
	cl->n_levels = max_prio + 1;
	cl->levels = calloc(cl->n_levels, sizeof(*cl->levels));
	size_t cap = 0;
	for (uint32_t p = 0; p < cl->n_levels; p++) {
		struct wf_prio_level *lv = &cl->levels[p];
		lv->first = cl->n_hosts;
		for (size_t i = 0; i < n; i++)
			lv->n_loc += la->endpoints[i]->priority == p;
		lv->loc = calloc(lv->n_loc + 1, sizeof(*lv->loc));
		if (cl->locality_weighted && lv->n_loc > WF_LOC_MAX)
			return wf_cfg_err(c->doc, c->err, c->errlen, la, "endpoints",
			                  "at most %d localities per priority with locality_weighted_lb_config", WF_LOC_MAX);
		uint32_t k = 0;
		for (size_t i = 0; i < n; i++) {
			const LocalityLbEndpoints *lle = la->endpoints[i];
			if (lle->priority != p)
				continue;
			struct wf_locality *loc = &lv->loc[k];
			loc->first = cl->n_hosts;
			loc->weight = lle->load_balancing_weight ? lle->load_balancing_weight->value : 0;
			if (lle->locality) {
				loc->region = dup_or_null(lle->locality->region);
				loc->zone = dup_or_null(lle->locality->zone);
				loc->sub_zone = dup_or_null(lle->locality->sub_zone);
			}
			if (locality_hosts(c, m, lle, cl, &cap, p, k) < 0)
				return -1;
			loc->n = cl->n_hosts - loc->first;
			for (uint32_t h = loc->first; h < cl->n_hosts; h++)
				loc->n_healthy += cl->hosts[h].healthy;
			lv->n_healthy += loc->n_healthy;
			k++;
		}
		lv->n = cl->n_hosts - lv->first;
	}
	if (cl->n_hosts && cl->n_hosts < cap) { /* grown by doubling: give back what is not used */
		struct wf_host *h = realloc(cl->hosts, cl->n_hosts * sizeof(*h));
		if (h)
			cl->hosts = h;
	}
	if (la && la->policy && la->policy->overprovisioning_factor) {
		cl->overprov = la->policy->overprovisioning_factor->value;
		if (!cl->overprov)
			return wf_cfg_err(c->doc, c->err, c->errlen, la->policy, "overprovisioning_factor", "must be above 0");
	}
	return 0;
}

/* A balancer over hosts [first, first + n). */
static int build_lb(struct wf_compile *c, const Cluster *m, struct wf_cluster *cl, struct wf_lb *lb, uint32_t first,
                    uint32_t n, const struct wf_lb_params *p)
{
	uint32_t *weights = calloc(n + 1, sizeof(uint32_t));
	const char **keys = calloc(n + 1, sizeof(char *));
	for (uint32_t i = 0; i < n; i++) {
		weights[i] = cl->hosts[first + i].weight;
		keys[i] = cl->hosts[first + i].addr_str;
	}
	char lerr[256] = "";
	int r = wf_lb_build(lb, cl->lb_kind, weights, keys, n, p, lerr, sizeof(lerr));
	free(weights);
	free(keys);
	if (r < 0)
		return wf_cfg_err(c->doc, c->err, c->errlen, m, "lb_policy", "%s", lerr);
	return 0;
}

/* common_lb_config: healthy_panic_threshold (default 50%) and locality_weighted_lb_config.
 * (zone_aware_lb_config is refused by proxy/unsupported.c.) */
static int common_lb_config(struct wf_compile *c, const Cluster *m, struct wf_cluster *cl)
{
	cl->panic_pct = 50;
	const Envoy__Config__Cluster__V3__Cluster__CommonLbConfig *cc = m->common_lb_config;
	if (!cc)
		return 0;
	if (cc->healthy_panic_threshold) {
		cl->panic_pct = cc->healthy_panic_threshold->value;
		if (cl->panic_pct < 0 || cl->panic_pct > 100)
			return wf_cfg_err(c->doc, c->err, c->errlen, cc->healthy_panic_threshold, "value", "must be 0..100");
	}
	cl->locality_weighted = cc->locality_config_specifier_case ==
	    ENVOY__CONFIG__CLUSTER__V3__CLUSTER__COMMON_LB_CONFIG__LOCALITY_CONFIG_SPECIFIER_LOCALITY_WEIGHTED_LB_CONFIG;
	return 0;
}

int wf_compile_cluster_lb(struct wf_compile *c, const Cluster *m, struct wf_cluster *cl, const struct wf_lb_params *p)
{
	cl->overprov = 140;
	if (common_lb_config(c, m, cl) < 0 || endpoints(c, m, cl) < 0)
		return -1;
	for (uint32_t i = 0; i < cl->n_hosts; i++)
		cl->total_weight += cl->hosts[i].weight;
	cl->lb = aligned_alloc(64, sizeof(struct wf_lb_state) * c->snap->n_workers);
	memset(cl->lb, 0, sizeof(struct wf_lb_state) * c->snap->n_workers);
	for (unsigned w = 0; w < c->snap->n_workers; w++) {
		cl->lb[w].current = calloc(cl->n_hosts + 1, sizeof(int64_t));
		cl->lb[w].active = calloc(cl->n_hosts + 1, sizeof(int64_t));
		cl->lb[w].usable = calloc(cl->n_hosts + 1, 1);
	}
	cl->usable = calloc(cl->n_hosts + 1, 1);
	cl->all = malloc(cl->n_hosts + 1);
	memset(cl->all, 1, cl->n_hosts + 1);
	for (uint32_t i = 0; i < cl->n_hosts; i++)
		cl->usable[i] = cl->hosts[i].healthy;
	uint32_t healthy[WF_PRIO_MAX], total[WF_PRIO_MAX];
	for (uint32_t l = 0; l < cl->n_levels; l++) {
		struct wf_prio_level *lv = &cl->levels[l];
		healthy[l] = lv->n_healthy;
		total[l] = lv->n;
		if (build_lb(c, m, cl, &lv->lb, lv->first, lv->n, p) < 0)
			return -1;
		for (uint32_t k = 0; cl->locality_weighted && k < lv->n_loc; k++)
			if (build_lb(c, m, cl, &lv->loc[k].lb, lv->loc[k].first, lv->loc[k].n, p) < 0)
				return -1;
	}
	wf_prio_load_compute(&cl->load, healthy, total, cl->n_levels, cl->overprov, cl->panic_pct);
	return 0;
}

void wf_cluster_lb_free(struct wf_cluster *cl, unsigned n_workers)
{
	for (unsigned w = 0; cl->lb && w < n_workers; w++) {
		free(cl->lb[w].current);
		free(cl->lb[w].active);
		free(cl->lb[w].usable);
	}
	free(cl->lb);
	for (uint32_t l = 0; cl->levels && l < cl->n_levels; l++) {
		struct wf_prio_level *lv = &cl->levels[l];
		wf_lb_free(&lv->lb);
		for (uint32_t k = 0; k < lv->n_loc; k++) {
			wf_lb_free(&lv->loc[k].lb);
			free(lv->loc[k].region);
			free(lv->loc[k].zone);
			free(lv->loc[k].sub_zone);
		}
		free(lv->loc);
	}
	free(cl->levels);
	free(cl->usable);
	free(cl->all);
}
