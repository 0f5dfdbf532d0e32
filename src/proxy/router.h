/* Route selection on the compiled route table, and host selection in a cluster. */
#ifndef WF_PROXY_ROUTER_H
#define WF_PROXY_ROUTER_H

#include "http/h1.h"
#include "proxy/config.h"

struct wf_worker;

/* The virtual host for a Host/:authority value (Envoy's order; port handling per the
 * connection manager's strip_*_host_port settings). NULL when none matches. */
const struct wf_vhost *wf_route_vhost(const struct wf_route_table *t, const char *host, size_t n,
                                      int strip_any_port);
/* The first route of vh whose match accepts this request (path with query, headers, and the
 * pseudo-headers :method, :authority, :path, :scheme for header matchers). NULL when none. */
const struct wf_route *wf_route_match(const struct wf_vhost *vh, const struct wf_h1_req *req);
/* Does one header matcher accept this request (its headers and pseudo-headers)? */
int wf_hdr_match(const struct wf_hdr_match *m, const struct wf_h1_req *q);
/* Pick a weighted cluster entry (random per request, by weight). */
const struct wf_weighted *wf_route_weighted(struct wf_worker *w, const struct wf_weighted *wc,
                                            uint32_t n, uint64_t total);
/* Pick a usable host with the cluster's lb_policy (`hash`: the request hash for the hash
 * policies, when has_hash). NULL when none is usable. */
const struct wf_host *wf_cluster_pick(struct wf_worker *w, struct wf_cluster *c, uint64_t hash, int has_hash);
/* Count a request on / off host h of c (LEAST_REQUEST's active counts, per worker). */
void wf_cluster_rq_start(struct wf_worker *w, struct wf_cluster *c, const struct wf_host *h);
void wf_cluster_rq_end(struct wf_worker *w, struct wf_cluster *c, const struct wf_host *h);

#endif
