/* The translator: the mesh (control/mesh.h) and one proxy's identity in, the Envoy v3
 * resources that proxy needs out, named and shaped as istiod names and shapes them:
 *
 *   CDS  outbound|PORT||HOST, outbound|PORT|SUBSET|HOST (EDS, or STRICT_DNS/LOGICAL_DNS),
 *        inbound|PORT|| for the proxy's own workload
 *   EDS  one ClusterLoadAssignment per EDS cluster, endpoints filtered by subset labels
 *   RDS  one RouteConfiguration per outbound HTTP port, named "PORT" ("HOST:PORT" for gRPC
 *        clients), one virtual host per service host
 *   LDS  outbound listeners per port (HCM with rds, or tcp_proxy), inbound listeners on the
 *        instance address; for proxyless gRPC clients an api_listener "HOST:PORT"
 *
 * doc/istio-translation.md lists what each Istio field becomes. No networking, no global
 * state: any number of proxies may be translated from one mesh. */
#ifndef WF_CONTROL_TRANSLATE_H
#define WF_CONTROL_TRANSLATE_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "control/mesh.h"

#define WF_TYPE_CLUSTER "type.googleapis.com/envoy.config.cluster.v3.Cluster"
#define WF_TYPE_ENDPOINT "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
#define WF_TYPE_LISTENER "type.googleapis.com/envoy.config.listener.v3.Listener"
#define WF_TYPE_ROUTE "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"

/* Receives each resource: the type URL, its name, and the message, which the callee owns
 * from now on (free it with wf_proto_free). Resources come clusters first, then endpoints,
 * listeners, routes (make-before-break order). */
typedef void (*wf_translate_emit)(void *ctx, const char *type_url, const char *name, ProtobufCMessage *msg);

/* Generate everything proxy p needs from mesh m. Returns the number of resources emitted, or
 * -EINVAL with err naming the Istio object and field that cannot be translated (nothing more
 * is emitted after the error; what was emitted is the caller's to free). Warnings about what
 * was left out (a TCP port two services share, ...) go to warn when it is not NULL. */
int wf_translate(const struct wf_mesh *m, const struct wf_proxy_info *p, wf_translate_emit emit, void *ctx,
                 char *err, size_t errlen, void (*warn)(void *ctx, const char *msg));

/* Would this object translate? A DestinationRule's policies (every port level and subset), a
 * VirtualService's HTTP routes (every match), a Gateway's servers, a Sidecar's ingress are
 * translated alone, as for any proxy, and what wf_translate would refuse is refused here:
 * 0, or -EINVAL with err "FILE:LINE:COL: Kind NS/NAME: ...". For a store to refuse, file by
 * file, what no proxy could be given (keeping the file's last good objects), instead of every
 * proxy's translation failing on it. */
struct wf_istio_obj;
int wf_translate_check(const struct wf_istio_obj *o, char *err, size_t errlen);

/* The resources of sidecar p as one static Bootstrap (*out, free with wf_proto_free): EDS
 * clusters become STATIC with their endpoints inline, rds becomes route_config; with an admin
 * listener on 127.0.0.1:admin_port unless 0; strict: validate_clusters on, so a route to a
 * cluster that does not exist is refused when compiled. 0, or -EINVAL with err (a gRPC
 * client, or what wf_translate refuses). Warnings go to warn(warn_ctx, msg) when not NULL. */
int wf_translate_bootstrap(const struct wf_mesh *m, const struct wf_proxy_info *p, uint32_t admin_port, int strict,
                           ProtobufCMessage **out, char *err, size_t errlen, void (*warn)(void *ctx, const char *msg),
                           void *warn_ctx);

/* The two halves of a proxy's resources. The outbound half (outbound clusters, their
 * endpoints, outbound listeners, route configurations; a gRPC client's everything; a router's
 * gateway listeners) depends on the proxy's kind, namespace, the Sidecar that applies and its
 * labels when some VirtualService matches on sourceLabels or it is a router: proxies with equal outbound keys get the same outbound half, so a
 * server can build it once for all of them. The inbound half (inbound clusters and listeners)
 * is the proxy's own. wf_translate is both, with one rule more: an outbound listener that would
 * take an inbound listener's address is left out; translated apart, the halves do not know of
 * each other (give workloads their own address, or bind egress elsewhere). */
enum { WF_TX_OUTBOUND = 1, WF_TX_INBOUND = 2, WF_TX_ALL = 3 };
int wf_translate_parts(const struct wf_mesh *m, const struct wf_proxy_info *p, unsigned parts, wf_translate_emit emit,
                       void *ctx, char *err, size_t errlen, void (*warn)(void *ctx, const char *msg));

/* A key such that proxies with equal keys get the same `parts` from wf_translate_parts (for
 * the ADS server's cache). NUL-terminated in out (truncated to n). */
void wf_translate_key(const struct wf_mesh *m, const struct wf_proxy_info *p, unsigned parts, char *out, size_t n);

#endif
