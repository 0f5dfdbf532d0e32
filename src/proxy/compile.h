/* Internal interface of the config compiler (proxy/compile*.c): messages -> wf_snapshot.
 * Every function reports a refusal through wf_cfg_err (file:line:col and field path in
 * c->err) and returns <0 / NULL. */
#ifndef WF_PROXY_COMPILE_H
#define WF_PROXY_COMPILE_H

#include <protobuf-c/protobuf-c.h>

#include "google/protobuf/duration.pb-c.h"
#include "envoy/config/core/v3/address.pb-c.h"
#include "envoy/config/core/v3/base.pb-c.h"
#include "proxy/config.h"

struct wf_compile {
	struct wf_cfgdoc *doc;
	struct wf_snapshot *snap;
	char *err;
	size_t errlen;
	int lenient_clusters;     /* route_config.validate_clusters: false — unknown names give 503 NC */
	unsigned log_slots;       /* per-thread buffers for access logs being compiled (0: n_workers) */
};

static inline uint64_t wf_duration_ms(const Google__Protobuf__Duration *d)
{
	if (!d || d->seconds < 0)
		return 0;
	return (uint64_t)d->seconds * 1000 + (uint64_t)(d->nanos + 999999) / 1000000;
}

/* The cluster named `name`, or NULL with an error located at msg.field. */
struct wf_cluster *wf_compile_find_cluster(struct wf_compile *c, const void *msg, const char *field,
                                           const char *name);
struct wf_route_table *wf_compile_routes(struct wf_compile *c, const ProtobufCMessage *route_config);
void wf_route_table_free(struct wf_route_table *t);
void wf_retry_free(struct wf_retry *r);
int wf_compile_strmatch(struct wf_compile *c, const ProtobufCMessage *string_matcher, struct wf_strmatch *m);
int wf_compile_hdr_edits(struct wf_compile *c, const void *msg, size_t n_add,
                         Envoy__Config__Core__V3__HeaderValueOption **add, size_t n_remove,
                         char **remove, int is_request, struct wf_hdr_edits *e);
void wf_hcm_free(struct wf_hcm_cfg *h);
void wf_tcp_free(struct wf_tcp_cfg *t);
/* Refuse a document that sets a field declared in the .proto subset but not implemented yet
 * (proxy/unsupported.c). 0 or <0 with c->err located at the field. */
int wf_compile_refuse_pending(struct wf_compile *c, const ProtobufCMessage *root);
/* A socket_address (IP and port) into out, or <0 with the error at owner.field. */
int wf_compile_socket_address(struct wf_compile *c, const Envoy__Config__Core__V3__Address *a, const void *owner,
                              const char *field, struct wf_addr *out);
/* A cluster's hosts, priority levels, localities and load balancers (proxy/compile_lb.c);
 * m is its envoy.config.cluster.v3.Cluster. Freed by wf_cluster_lb_free. */
struct Envoy__Config__Cluster__V3__Cluster;
int wf_compile_cluster_lb(struct wf_compile *c, const struct Envoy__Config__Cluster__V3__Cluster *m,
                          struct wf_cluster *cl, const struct wf_lb_params *p);
void wf_cluster_lb_free(struct wf_cluster *cl, unsigned n_workers);
/* A DataSource's bytes (inline or from a file), malloc'd. */
int wf_compile_datasource(struct wf_compile *c, const ProtobufCMessage *ds, char **out, uint32_t *len);

#endif
