/* HTTP filters: the seam between the connection manager and the filters of src/filter/.
 *
 * A filter is one file that fills a struct wf_http_filter_ops and registers it by its Envoy
 * name (e.g. "envoy.filters.http.fault") and config message. The connection manager never
 * names a filter: it compiles `http_filters` through this table, runs each request through the
 * chain in the configured order (the router, built in, comes last), and lets a filter read the
 * request, answer it locally, hold it (one timer per stream is provided), or add response
 * headers. Per-route settings come from typed_per_filter_config on the route, its virtual
 * host or its route configuration (the most specific wins), compiled by the same ops. */
#ifndef WF_PROXY_FILTER_H
#define WF_PROXY_FILTER_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

#include "core/loop.h"
#include "http/h1.h"
#include "proxy/config.h"

struct wf_compile;
struct wf_worker;
struct wf_stream_info;

enum { WF_FILTER_CONTINUE, WF_FILTER_STOP };

#define WF_FILTERS_MAX 16   /* HTTP filters per connection manager, router included */

/* The stream as filters see it (embedded in the connection manager's stream). */
struct wf_fstream {
	struct wf_worker *w;
	const struct wf_h1_req *req;       /* method, path, host, headers (as received), grpc */
	const struct wf_route *route;      /* NULL when no route matched */
	const struct wf_vhost *vh;
	const char *client;                /* the downstream address (XFF-trusted or peer), ip:port */
	struct wf_stream_info *si;
	const struct wf_cluster *cluster;  /* the cluster the request went to (once routed) */
	int16_t grpc_status1;              /* the call's gRPC status + 1, once known (0: not known) */
	struct wf_timer t;                 /* for the filter holding the stream (fs->t.data = fs) */
	uint64_t word[WF_FILTERS_MAX];     /* one word of per-stream state per filter, zeroed */
	uint32_t index;                    /* the filter being run */
	/* response headers added by filters: "name\0value\0" pairs */
	char *resp_add; uint32_t resp_add_len, resp_add_cap;
};

/* Registered filter kinds. */
struct wf_http_filter_ops {
	const char *name;                  /* Envoy's extension name */
	const char *type;                  /* full name of its config message (typed_config) */
	/* messages accepted as per-route config (typed_per_filter_config), NULL-terminated */
	const char *const *route_types;
	uint8_t needs_config;              /* a typed_config is required */
	/* Compile the filter's config (m may be NULL: name only) / a per-route config. NULL with
	 * c->err located at the offending field when refused. stat_prefix: the connection
	 * manager's ("http.<stat_prefix>." scope for Envoy-named filter stats). */
	void *(*create)(struct wf_compile *c, const char *stat_prefix, const ProtobufCMessage *m);
	void *(*create_route)(struct wf_compile *c, const char *stat_prefix, const ProtobufCMessage *m);
	void (*destroy)(void *cfg);
	void (*destroy_route)(void *cfg);
	/* The request head arrived (route resolved). route_cfg: the most specific per-route
	 * config, or NULL. CONTINUE, or STOP when the filter answered (wf_fs_reply) or holds the
	 * stream (and later calls wf_fs_resume). */
	int (*on_request)(struct wf_fstream *fs, const void *cfg, const void *route_cfg);
	/* The stream ended (after on_request ran): release what fs->word[fs->index] holds. */
	void (*on_end)(struct wf_fstream *fs, const void *cfg);
};

void wf_http_filter_register(const struct wf_http_filter_ops *ops);
const struct wf_http_filter_ops *wf_http_filter_by_name(const char *name);
const struct wf_http_filter_ops *wf_http_filter_by_type(const char *type);

/* One configured filter of a connection manager. */
struct wf_filter_inst {
	const struct wf_http_filter_ops *ops;
	char *name;                        /* http_filters[].name: the typed_per_filter_config key */
	void *cfg;
};

/* A per-route config for the filter at `index` of the connection manager's chain. */
struct wf_filter_route_cfg {
	uint32_t index;
	const struct wf_http_filter_ops *ops;
	void *cfg;
};

/* ---- what a filter may do with a stream (implemented by the connection manager) ----------- */

/* The first request header called `name` (lower case), or NULL. */
const struct wf_hdr *wf_fs_header(const struct wf_fstream *fs, const char *name);
/* The cluster the route sends to (first of weighted clusters), or NULL. */
const char *wf_fs_cluster(const struct wf_fstream *fs);
/* Answer locally and end the stream; the filter then returns WF_FILTER_STOP. A gRPC client
 * gets it gRPC-shaped (200 + grpc-status + grpc-message), with grpc_status when >= 0, else
 * the status the HTTP status maps to. */
void wf_fs_reply(struct wf_fstream *fs, int status, uint32_t flag, const char *body, int grpc_status);
/* Go on with the next filter after a STOP that held the stream. */
void wf_fs_resume(struct wf_fstream *fs);
/* Add a header to the response (upstream's or local) this stream sends. */
void wf_fs_add_response_header(struct wf_fstream *fs, const char *name, const char *value, size_t vl);
struct wf_loop *wf_fs_loop(struct wf_fstream *fs);
/* Is this proxy failing its health (admin /healthcheck/fail) or draining? */
int wf_fs_server_failing(const struct wf_fstream *fs);
uint64_t wf_fs_rand(struct wf_fstream *fs);

/* ---- rate limit descriptors (route / virtual host `rate_limits`) -------------------------- */

struct wf_rl_entry {
	const char *key, *value; uint32_t key_len, value_len;
};
#define WF_RL_ENTRIES_MAX 8
struct wf_rl_descriptor {
	struct wf_rl_entry e[WF_RL_ENTRIES_MAX];
	uint32_t n;
	char buf[512];                     /* values built for this request */
	uint32_t used;
};
/* Call `fn` with each descriptor the route's (and, when the route includes them, its virtual
 * host's) rate_limits of this stage produce for the stream. */
void wf_fs_rl_descriptors(struct wf_fstream *fs, uint32_t stage,
                          void (*fn)(struct wf_fstream *fs, const struct wf_rl_descriptor *d, void *arg),
                          void *arg);

/* Chance helpers: a FractionalPercent as parts per million. */
static inline int wf_fs_chance(struct wf_fstream *fs, uint32_t ppm)
{
	return wf_ppm_hit(ppm && ppm < 1000000 ? wf_fs_rand(fs) : 0, ppm);
}

#endif
