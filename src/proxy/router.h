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
/* Pick a weighted cluster entry (random per request, by weight). */
const struct wf_weighted *wf_route_weighted(struct wf_worker *w, const struct wf_weighted *wc,
                                            uint32_t n, uint64_t total);
/* Pick a healthy host (smooth weighted round robin, per worker). NULL when none is healthy. */
const struct wf_host *wf_lb_pick(struct wf_worker *w, struct wf_cluster *c);

#endif
