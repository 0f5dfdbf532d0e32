/* Internal interface of the config compiler (proxy/compile*.c): messages -> wf_snapshot.
 * Every function reports a refusal through wf_cfg_err (file:line:col and field path in
 * c->err) and returns <0 / NULL. */
#ifndef WF_PROXY_COMPILE_H
#define WF_PROXY_COMPILE_H

#include <protobuf-c/protobuf-c.h>

#include "google/protobuf/duration.pb-c.h"
#include "envoy/config/core/v3/address.pb-c.h"
#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/config/core/v3/protocol.pb-c.h"
#include "envoy/type/v3/percent.pb-c.h"
#include "proxy/config.h"

struct wf_xds_set;

struct wf_compile {
	struct wf_cfgdoc *doc;
	struct wf_snapshot *snap;
	char *err;
	size_t errlen;
	int lenient_clusters;     /* route_config.validate_clusters: false — unknown names give 503 NC */
	unsigned log_slots;       /* per-thread buffers for access logs being compiled (0: n_workers) */
	/* the HTTP filters of the connection manager whose routes are being compiled */
	const struct wf_filter_inst *chain; uint32_t n_chain;
	const char *stat_prefix;
	const struct wf_xds_set *xds;     /* resources from the xDS client, or NULL */
	const struct wf_xds_set *prev;    /* the versions the config being replaced compiled (its
	                                     `served`): a listener or cluster whose update is warming
	                                     keeps its previous version */
	int from_prev;            /* compiling such a previous version: its RDS/EDS come from prev too */
	int rds;                  /* the route configuration being compiled came through RDS */
	int warming;              /* set with a failure: a resource it needs has not come yet */
};

static inline uint64_t wf_duration_ms(const Google__Protobuf__Duration *d)
{
	if (!d || d->seconds < 0)
		return 0;
	return (uint64_t)d->seconds * 1000 + (uint64_t)(d->nanos + 999999) / 1000000;
}

/* A FractionalPercent's denominator as a factor to parts per million (10000, 100 or 1). */
static inline uint32_t wf_fraction_scale(const Envoy__Type__V3__FractionalPercent *p)
{
	return p->denominator == ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__MILLION        ? 1
	       : p->denominator == ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__TEN_THOUSAND ? 100
	                                                                                               : 10000;
}

/* numerator / denominator in parts per million (capped at 1 000 000). */
static inline uint32_t wf_ppm(uint32_t numerator, uint32_t scale)
{
	uint64_t v = (uint64_t)numerator * scale;
	return v > 1000000 ? 1000000 : (uint32_t)v;
}

/* A RuntimeFractionalPercent's default_value in parts per million (runtime keys are not
 * used); `dflt` when unset. */
static inline uint32_t wf_runtime_ppm(const Envoy__Config__Core__V3__RuntimeFractionalPercent *r, uint32_t dflt)
{
	return r && r->default_value ? wf_ppm(r->default_value->numerator, wf_fraction_scale(r->default_value)) : dflt;
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
void wf_hdr_edits_free(struct wf_hdr_edits *e);
void wf_hcm_free(struct wf_hcm_cfg *h);
/* Header matchers (route.v3.HeaderMatcher), for routes and filters. */
int wf_compile_hdr_match(struct wf_compile *c, const ProtobufCMessage *header_matcher, struct wf_hdr_match *m);
void wf_hdr_match_free(struct wf_hdr_match *m);
/* http_filters (proxy/compile_filter.c): h->filters, in order, the router excluded. */
int wf_compile_http_filters(struct wf_compile *c, const void *hcm, struct wf_hcm_cfg *h);
void wf_http_filters_free(struct wf_hcm_cfg *h);
/* typed_per_filter_config entries (Route/VirtualHost map entries) and the legacy `cors`
 * field, for the filters in c->chain. */
int wf_compile_per_filter(struct wf_compile *c, const void *owner, size_t n_entries, void *const *entries,
                          const ProtobufCMessage *legacy_cors, struct wf_filter_route_cfg **out, uint32_t *n);
void wf_filter_route_cfgs_free(struct wf_filter_route_cfg *f, uint32_t n);
/* route.v3.RateLimit list -> descriptor actions. */
int wf_compile_rate_limits(struct wf_compile *c, size_t n, void *const *msgs, struct wf_rate_limit **out,
                           uint32_t *n_out);
void wf_rate_limits_free(struct wf_rate_limit *rl, uint32_t n);
void wf_tcp_free(struct wf_tcp_cfg *t);
/* A transport_socket: *out is the TLS config, or NULL for plain (absent, raw_buffer). Stats
 * are <scope>.<label>.ssl.*. server: a listener's (DownstreamTlsContext), else a cluster's. */
int wf_compile_transport_socket(struct wf_compile *c, const Envoy__Config__Core__V3__TransportSocket *ts, int server,
                                const char *scope, const char *label, struct wf_tls_cfg **out);
void wf_tls_cfg_free(struct wf_tls_cfg *t);
/* Refuse a document that sets a field declared in the .proto subset but not implemented yet
 * (proxy/unsupported.c). 0 or <0 with c->err located at the field. */
int wf_compile_refuse_pending(struct wf_compile *c, const ProtobufCMessage *root);
/* A Cluster message's health_checks into cl->hc (proxy/compile_health.c); after the hosts. */
int wf_compile_health(struct wf_compile *c, const void *cluster_msg, struct wf_cluster *cl);
void wf_hc_cfg_free(struct wf_hc_cfg *hc);
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

/* Add an upgrade_configs entry of message `msg` to list[*n] (room for it is there): its
 * upgrade_type must be set and not already in the list (compared without case). 0, or -1 with
 * the error written. */
int wf_compile_upgrade(struct wf_compile *c, const void *msg, const char *type, int enabled,
                       struct wf_upgrade *list, uint32_t *n);

/* http2_protocol_options into *h (Envoy's defaults when o is NULL). 0, or -1 with the error. */
int wf_compile_h2_options(struct wf_compile *c, const Envoy__Config__Core__V3__Http2ProtocolOptions *o,
                          struct wf_h2_cfg *h);
/* A client context's ALPN when the config set none (wire format). */
void wf_tls_cfg_alpn_default(struct wf_tls_cfg *t, const unsigned char *wire, uint32_t len);

#endif
