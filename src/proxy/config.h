/* The compiled configuration: what the workers read. Built once per config version from the
 * Envoy v3 messages (proxy/compile*.c), immutable afterwards, shared by all workers through a
 * refcounted snapshot (proxy/snapshot.h). Nothing here is parsed on the request path: regexes
 * are compiled, durations are milliseconds, clusters are pointers.
 *
 *   wf_snapshot ─┬─ listeners[] ─ wf_listener ─ network filter: wf_hcm_cfg | wf_tcp_cfg
 *                │                               wf_hcm_cfg ─ wf_route_table ─ vhosts ─ routes
 *                └─ clusters[]  ─ wf_cluster ─ hosts[]          routes ─> wf_cluster (pointer)
 */
#ifndef WF_PROXY_CONFIG_H
#define WF_PROXY_CONFIG_H

#include <stdint.h>

#include "core/pcre2_api.h"
#include "http/h2.h"
#include "lb/lb.h"
#include "lb/priority.h"
#include "net/sock.h"
#include "proxy/stats.h"

struct wf_alog;
struct wf_cfgdoc;
struct wf_xds_set;

/* ---- header edits and matchers ---------------------------------------------------------- */

enum wf_append { WF_APPEND_OR_ADD = 0, WF_ADD_IF_ABSENT, WF_OVERWRITE_OR_ADD, WF_OVERWRITE_IF_EXISTS };

struct wf_hdr_add {
	char *key;   uint32_t key_len;     /* lower-cased */
	char *value; uint32_t value_len;
	uint8_t action;                    /* enum wf_append */
	uint8_t keep_empty;
};

struct wf_hdr_edits {
	struct wf_hdr_add *add;  uint32_t n_add;
	char **remove;           uint32_t n_remove;   /* lower-cased names */
	uint32_t *remove_len;
};

enum wf_sm_kind { WF_SM_EXACT, WF_SM_PREFIX, WF_SM_SUFFIX, WF_SM_CONTAINS, WF_SM_REGEX };

struct wf_strmatch {
	uint8_t kind;                      /* enum wf_sm_kind */
	uint8_t ignore_case;
	char *s; uint32_t n;
	pcre2_code *re;                    /* WF_SM_REGEX: full-match */
};

/* Does the string match? (regex: the whole string, as Envoy's safe_regex) */
int wf_strmatch(const struct wf_strmatch *m, const char *s, size_t n);
/* Compile a regex for full matches (JIT when available); NULL with err filled. */
pcre2_code *wf_regex_compile(const char *re, int anchored, char *err, size_t errlen);
int wf_regex_match(const pcre2_code *re, const char *s, size_t n);
/* Free the calling thread's match data. */
void wf_regex_thread_exit(void);

struct wf_hdr_match {
	char *name; uint32_t name_len;     /* lower-cased */
	uint8_t present_only;              /* present_match */
	uint8_t present_value;             /* present_match: true (must be present) or false */
	uint8_t invert;
	struct wf_strmatch sm;
};

struct wf_query_match {
	char *name; uint32_t name_len;
	uint8_t present_only;
	struct wf_strmatch sm;
};

/* ---- routes ------------------------------------------------------------------------------ */

struct wf_cluster;
struct wf_filter_route_cfg;
struct wf_filter_inst;

/* route.v3.RateLimit: descriptors built from a request, for the rate limit filters. */
enum wf_rl_kind { WF_RL_DEST_CLUSTER, WF_RL_HEADER, WF_RL_REMOTE, WF_RL_GENERIC, WF_RL_HEADER_MATCH };
struct wf_rl_action {
	uint8_t kind;                      /* enum wf_rl_kind */
	uint8_t skip_if_absent, expect_match;
	char *header; uint32_t header_len; /* request_headers: lower-cased name */
	char *key, *value;                 /* descriptor key / value */
	struct wf_hdr_match *hm; uint32_t n_hm;
};
struct wf_rate_limit {
	uint32_t stage;
	struct wf_rl_action *a; uint32_t n;
};

/* Does a uniform random number fall in a share of ppm parts per million? */
static inline int wf_ppm_hit(uint64_t rnd, uint32_t ppm)
{
	return ppm >= 1000000 || (ppm && (uint32_t)(rnd % 1000000) < ppm);
}

/* route request_mirror_policies: a copy of each request to `cluster`, for ppm per million. */
struct wf_mirror {
	struct wf_cluster *cluster;
	uint32_t ppm;
};

/* WF_PATH_CONNECT: connect_matcher, which matches CONNECT requests only (no other kind does). */
enum wf_path_kind { WF_PATH_PREFIX, WF_PATH_EXACT, WF_PATH_REGEX, WF_PATH_SEP_PREFIX, WF_PATH_CONNECT };

/* An upgrade_configs entry (connection manager or route): an upgrade type ("websocket",
 * "CONNECT", ...; compared case-insensitively) and whether it is allowed. */
struct wf_upgrade {
	char *type;
	uint8_t enabled;
	uint8_t connect_terminate;         /* route, CONNECT with connect_config: Weft answers 200 and
	                                      relays the payload to the cluster as raw TCP (without
	                                      it the CONNECT is forwarded to the cluster) */
};

/* route hash_policy: what a request's hash (RING_HASH, MAGLEV) is made of */
enum wf_hash_kind { WF_HASH_HEADER, WF_HASH_COOKIE, WF_HASH_SOURCE_IP, WF_HASH_QUERY };

struct wf_hash_policy {
	uint8_t kind;                      /* enum wf_hash_kind */
	uint8_t terminal;                  /* stop at this one when it produced a value */
	char *name; uint32_t name_len;     /* header (lower-cased), cookie or query parameter */
	pcre2_code *re; char *re_sub;      /* header regex_rewrite */
	uint64_t cookie_ttl_s;             /* cookie: generate one when absent, with this Max-Age */
	uint8_t cookie_generate;
	char *cookie_path;
};
enum wf_action { WF_ACT_ROUTE, WF_ACT_REDIRECT, WF_ACT_DIRECT };

struct wf_weighted {
	struct wf_cluster *cluster;
	uint32_t weight;
	struct wf_hdr_edits req, resp;
};

/* retry_policy (route, or its virtual host's): when an attempt may be tried again. */
enum {
	WF_RETRY_5XX = 1u << 0,             /* any 5xx, a reset, a connection failure, a per-try timeout */
	WF_RETRY_GATEWAY = 1u << 1,         /* 502, 503, 504, a connection failure, a per-try timeout */
	WF_RETRY_RESET = 1u << 2,           /* no response: the connection was reset or closed */
	WF_RETRY_CONNECT_FAILURE = 1u << 3,
	WF_RETRY_RETRIABLE_4XX = 1u << 4,   /* 409 */
	WF_RETRY_STATUS_CODES = 1u << 5,    /* retriable_status_codes */
	WF_RETRY_HEADERS = 1u << 6,         /* retriable_headers match the response */
	WF_RETRY_REFUSED_STREAM = 1u << 7,  /* HTTP/2 REFUSED_STREAM (no such thing on HTTP/1) */
};

struct wf_hdr_match;

struct wf_retry {
	uint32_t on;                        /* WF_RETRY_* */
	uint32_t num_retries;               /* default 1 */
	uint64_t per_try_timeout_ms;        /* 0: none */
	uint64_t base_ms, max_ms;           /* back-off: default 25 ms, 10 x base */
	uint8_t previous_hosts;             /* envoy.retry_host_predicates.previous_hosts */
	uint32_t host_reselect;             /* host_selection_retry_max_attempts (default 1) */
	uint32_t *codes; uint32_t n_codes;
	struct wf_hdr_match *headers; uint32_t n_headers;
	uint32_t grpc_codes;                /* 1 << gRPC status, from retry_on's gRPC names */
};

struct wf_route {
	char *name;
	/* match */
	uint8_t path_kind;                 /* enum wf_path_kind */
	uint8_t case_sensitive;
	char *path; uint32_t path_len;
	pcre2_code *path_re;
	struct wf_hdr_match *headers;   uint32_t n_headers;
	struct wf_query_match *query;   uint32_t n_query;
	uint8_t grpc_only;                 /* match.grpc: gRPC requests only */
	/* action */
	uint8_t action;                    /* enum wf_action */
	struct wf_cluster *cluster;        /* single cluster, or NULL with weighted */
	struct wf_weighted *weighted; uint32_t n_weighted; uint64_t total_weight;
	uint64_t timeout_ms;               /* 0: none */
	uint64_t idle_timeout_ms;          /* 0: the connection manager's stream_idle_timeout */
	char *prefix_rewrite; uint32_t prefix_rewrite_len; uint8_t has_prefix_rewrite;
	pcre2_code *rewrite_re; char *rewrite_sub;
	char *host_rewrite; uint32_t host_rewrite_len;
	struct wf_hash_policy *hash; uint32_t n_hash;
	struct wf_retry *retry;            /* NULL: no retries */
	uint8_t retry_owned;               /* the route's own (else its virtual host's) */
	/* redirect */
	char *redir_scheme, *redir_host, *redir_path, *redir_prefix;
	uint32_t redir_port;
	pcre2_code *redir_re; char *redir_re_sub;
	uint16_t redir_code;
	uint8_t strip_query;
	/* direct response */
	uint16_t direct_status;
	char *direct_body; uint32_t direct_body_len; uint8_t has_direct_body;
	struct wf_hdr_edits req, resp;
	struct wf_filter_route_cfg *fcfg; uint32_t n_fcfg; /* typed_per_filter_config */
	struct wf_rate_limit *rl; uint32_t n_rl;
	uint8_t include_vh_rl;             /* include_vh_rate_limits (or the route has none) */
	struct wf_mirror *mirrors; uint32_t n_mirrors; /* request_mirror_policies */
	struct wf_upgrade *upgrades; uint32_t n_upgrades; /* RouteAction.upgrade_configs */
};

struct wf_vhost {
	char *name;
	struct wf_retry *retry;            /* virtual host retry_policy, inherited by routes */
	uint8_t include_attempt_count;     /* include_request_attempt_count */
	struct wf_route *routes; uint32_t n_routes;
	struct wf_hdr_edits req, resp;
	struct wf_filter_route_cfg *fcfg; uint32_t n_fcfg; /* typed_per_filter_config */
	struct wf_rate_limit *rl; uint32_t n_rl;
};

/* Virtual host lookup, in Envoy's order: exact domain, longest "*.suffix"/"*suffix",
 * longest "prefix*", then "*". */
struct wf_domain {
	char *s; uint32_t n;               /* lower-cased; without the '*' */
	struct wf_vhost *vh;
};

struct wf_route_table {
	char *name;
	struct wf_vhost *vhosts; uint32_t n_vhosts;
	struct wf_domain *exact;  uint32_t n_exact;
	struct wf_domain *suffix; uint32_t n_suffix;  /* longest first */
	struct wf_domain *prefix; uint32_t n_prefix;  /* longest first */
	struct wf_vhost *any;
	struct wf_hdr_edits req, resp;
};

/* ---- clusters ---------------------------------------------------------------------------- */

enum wf_cluster_type { WF_CLUSTER_STATIC, WF_CLUSTER_STRICT_DNS, WF_CLUSTER_LOGICAL_DNS };

struct wf_host {
	struct wf_addr addr;
	char addr_str[64];
	uint32_t weight;
	uint8_t healthy;                   /* from health_status (active checks: wf_ol_host.hc_failed) */
	uint8_t priority;                  /* its LocalityLbEndpoints' priority: index in c->levels */
	uint32_t locality;                 /* index in its level's loc[] */
	const char *hostname;              /* DNS clusters: the name it was resolved from (the
	                                      cluster's dns_names own it); NULL otherwise */
	/* per-host stats for /clusters (hidden, registered by cluster and address) */
	uint32_t st_cx_active, st_cx_total, st_cx_connect_fail, st_rq_total, st_rq_active,
	    st_rq_success, st_rq_error, st_rq_timeout;
	uint8_t alpn_h2;                   /* auto_config: the host chose h2 with ALPN (atomic) */
};

/* Per-worker load-balancer state, one cache line per worker so workers never share one. */
struct wf_lb_state {
	int64_t *current;                  /* smooth weighted round robin: current weights */
	int64_t *active;                   /* active requests per host, as this worker sees them */
	uint8_t *usable;                   /* scratch: which hosts are usable for this pick [n_hosts] */
	char pad[64 - 3 * sizeof(void *)];
} __attribute__((aligned(64)));

/* Hosts are sorted by priority, then by locality (LocalityLbEndpoints order), so that a level
 * and each of its localities is a contiguous range of c->hosts, with a load balancer of its
 * own over that range (Envoy builds one per priority, e.g. one hash ring each):
 *
 *   hosts:  [ P0 loc0 | P0 loc1 | P1 loc0 ]
 *   levels: [ 0: first 0, n 5           | 1: first 5, n 2 ]
 *   loc[]:    [0: first 0, n 3][1: first 3, n 2]   [0: first 5, n 2]
 */
#define WF_LOC_MAX 64                 /* localities per level with locality weighted lb */

struct wf_locality {
	uint32_t first, n;                 /* hosts [first, first + n) of the cluster */
	uint32_t weight;                   /* LocalityLbEndpoints.load_balancing_weight (0 if unset) */
	uint32_t n_healthy;                /* by health_status */
	char *region, *zone, *sub_zone;
	struct wf_lb lb;                   /* locality weighted lb only */
};

struct wf_prio_level {
	uint32_t first, n;
	uint32_t n_healthy;                /* by health_status */
	struct wf_lb lb;
	struct wf_locality *loc; uint32_t n_loc;
};

struct wf_cluster_stats {
	uint32_t rq_total, rq_2xx, rq_3xx, rq_4xx, rq_5xx, rq_time;
	uint32_t cx_total, cx_active, cx_connect_fail, cx_connect_timeout, cx_destroy;
	uint32_t rq_timeout, rq_pending_total, rq_active, none_healthy, rq_completed;
	uint32_t cx_destroy_remote, cx_protocol_error, rq_rx_reset, rq_tx_reset;
	uint32_t rq_code;                  /* WF_STAT_CODES: upstream_rq_<code> */
	uint32_t rq_retry, rq_retry_success, rq_retry_limit_exceeded, rq_per_try_timeout;
	uint32_t cx_overflow, rq_pending_overflow, rq_retry_overflow;
	uint32_t membership_total, membership_healthy;
	uint32_t lb_healthy_panic;
};

/* Circuit breaking: what a cluster has open across all workers. One per cluster name, shared
 * by every config that names the cluster and held by the upstream connections it opened (which
 * count in `cx` and may outlive those configs); it goes with the last of them. */
struct wf_cb {
	int64_t cx, pending, rq, retries;  /* atomics */
	int64_t ejected;                   /* hosts ejected by outlier detection (atomic) */
	int64_t hc_failed;                 /* hosts failing active health checks (atomic; the main
	                                      thread's health checker counts them) */
	int64_t sweep_at;                  /* outlier detection: next interval sweep due, ms (atomic) */
};

/* Shared health state of one host (cluster name + address), kept while a config holds it:
 * outlier detection (workers) and active health checking (main thread). A host that leaves
 * every config goes; if it comes back, it starts over. */
struct wf_ol_host {
	int64_t c5xx, cgw, clocal;         /* consecutive failures (atomics) */
	int64_t ejected_until;             /* ms on the monotonic clock; 0: not ejected (atomic) */
	int64_t times;                     /* ejections so far (atomic) */
	int64_t hc_failed;                 /* 1 while failing active health checks (atomic) */
	int64_t rq_total, rq_fail;         /* requests and failures this interval (atomics) */
	int64_t success_rate;              /* last interval's, in 1/1000 %; -1: none computed (atomic) */
};

/* The record of a host, with a reference taken (to give back with wf_ol_host_release). */
struct wf_ol_host *wf_ol_host_for(const char *cluster, const char *addr);
void wf_ol_host_release(struct wf_ol_host *h);

struct wf_outlier_cfg {
	uint8_t enabled, split_local;
	uint32_t c5xx, cgw, clocal;        /* thresholds (0: off) */
	uint32_t e5xx, egw, elocal;        /* enforcing percentages */
	uint64_t base_ms, max_ms;
	uint32_t max_percent;
	uint64_t interval_ms;              /* success rate / failure percentage sweeps (default 10 s) */
	uint8_t per_interval;              /* enough hosts for either: count requests per interval */
	uint32_t sr_min_hosts, sr_volume, sr_stdev_factor, esr;   /* success rate */
	uint32_t fp_threshold, fp_min_hosts, fp_volume, efp;      /* failure percentage */
	uint32_t st_enforced_total, st_active, st_overflow, st_det_5xx, st_enf_5xx, st_det_gw, st_enf_gw,
	    st_det_local, st_enf_local, st_det_sr, st_enf_sr, st_det_fp, st_enf_fp;
};

/* health_checks[0]: an active health checker (proxy/health.c runs it on the main thread). */
enum wf_hc_kind { WF_HC_HTTP, WF_HC_TCP };

struct wf_hc_range { int64_t start, end; };         /* statuses [start, end) */
struct wf_hc_block { char *p; uint32_t n; };

struct wf_hc_cfg {
	uint8_t kind;                      /* enum wf_hc_kind */
	uint64_t timeout_ms, interval_ms;  /* both above 0 */
	uint64_t jitter_ms, initial_jitter_ms;
	uint32_t jitter_percent;
	uint64_t unhealthy_ms, unhealthy_edge_ms, healthy_edge_ms; /* defaulted as Envoy does */
	uint32_t unhealthy_threshold, healthy_threshold;           /* at least 1 */
	char *send; uint32_t send_len;     /* HTTP: the whole request head; TCP: the payload (may be empty) */
	struct wf_hc_block *receive; uint32_t n_receive;          /* TCP: blocks expected in order */
	struct wf_hc_range *expected; uint32_t n_expected;        /* HTTP: default [200, 201) */
	struct wf_hc_range *retriable; uint32_t n_retriable;      /* HTTP: failures that count to the threshold */
	uint32_t st_attempt, st_success, st_failure, st_passive_failure, st_network_failure,
	    st_verify_cluster, st_healthy;
};

/* Take one unit of `*n` if it is below `max`: 1, or 0 when the breaker is open. */
static inline int wf_cb_take(int64_t *n, uint32_t max)
{
	if (__atomic_add_fetch(n, 1, __ATOMIC_RELAXED) <= (int64_t)max)
		return 1;
	__atomic_sub_fetch(n, 1, __ATOMIC_RELAXED);
	return 0;
}
static inline void wf_cb_put(int64_t *n) { __atomic_sub_fetch(n, 1, __ATOMIC_RELAXED); }
static inline int64_t wf_cb_load(const int64_t *n) { return __atomic_load_n(n, __ATOMIC_RELAXED); }

/* The circuit breaker state of cluster `name`, with a reference taken (main thread; created
 * on first use). It goes with the last reference: the clusters of the configs that name it, and
 * the upstream connections they opened (wf_cb_ref). */
struct wf_cb *wf_cb_for(const char *name);
void wf_cb_ref(struct wf_cb *cb);
void wf_cb_release(struct wf_cb *cb);

enum { WF_CODEC_AUTO, WF_CODEC_HTTP1, WF_CODEC_HTTP2 };

/* http2_protocol_options (connection manager or cluster). */
struct wf_h2_cfg {
	struct wf_h2_limits lim;
	uint64_t ping_interval_ms;         /* connection_keepalive.interval; 0: no PINGs */
	uint64_t ping_timeout_ms;          /* connection_keepalive.timeout (default 5 s) */
};

/* The protocol a cluster speaks to its hosts: HTTP/1.1, HTTP/2 (explicit_http_config), the
 * downstream's (use_downstream_protocol_config), or the one each host picks with ALPN
 * (auto_config over TLS; HTTP/1.1 without TLS). */
enum wf_up_protocol { WF_UP_HTTP1, WF_UP_HTTP2, WF_UP_DOWNSTREAM, WF_UP_AUTO };

struct wf_cluster {
	char *name;
	uint32_t index;                    /* in its snapshot's clusters */
	char *stat_name;                   /* alt_stat_name, or name */
	struct wf_tls_cfg *tls;            /* transport_socket: TLS origination; NULL: plain */
	uint8_t type;                      /* enum wf_cluster_type */
	uint8_t eds;                       /* type EDS: the hosts came from a ClusterLoadAssignment */
	uint64_t connect_timeout_ms;
	struct wf_host *hosts; uint32_t n_hosts;
	uint64_t total_weight;
	struct wf_lb_state *lb;            /* [n_workers] */
	uint8_t lb_kind;                   /* lb_policy: enum wf_lb_kind */
	struct wf_prio_level *levels; uint32_t n_levels;  /* priorities 0 .. n_levels - 1 */
	uint32_t overprov;                 /* overprovisioning_factor, percent (default 140) */
	double panic_pct;                  /* healthy_panic_threshold (default 50; 0: no panic) */
	uint8_t locality_weighted;         /* common_lb_config.locality_weighted_lb_config */
	struct wf_prio_load load;          /* by health_status alone (no host out at run time) */
	uint8_t *usable;                   /* [n_hosts]: healthy by health_status */
	uint8_t *all;                      /* [n_hosts]: all 1, for a level in panic */
	uint64_t upstream_idle_ms;         /* pooled connection idle timeout (default 1 h) */
	uint32_t max_requests_per_connection; /* 0: unlimited */
	uint32_t max_response_headers;     /* 0: 256 */
	uint8_t keepalive;                 /* upstream_connection_options.tcp_keepalive */
	uint32_t keepalive_probes, keepalive_time, keepalive_interval; /* 0: the system's */
	struct wf_cb *cb;                  /* circuit_breakers (DEFAULT priority thresholds below) */
	uint32_t max_connections, max_pending, max_requests, max_retries;
	double budget_percent;             /* retry_budget: < 0 when none */
	struct wf_outlier_cfg ol;          /* outlier_detection */
	struct wf_ol_host **ol_hosts;      /* [n_hosts]: with outlier detection or health checks */
	struct wf_hc_cfg *hc;              /* health_checks; NULL when none */
	uint32_t budget_min;               /* retry_budget.min_retry_concurrency */
	struct wf_cluster_stats st;
	uint32_t per_connection_buffer_limit;
	uint8_t protocol;                  /* enum wf_up_protocol (typed_extension_protocol_options) */
	struct wf_h2_cfg h2;               /* its http2_protocol_options */
	/* STRICT_DNS, LOGICAL_DNS: the names proxy/dns.c keeps resolving, and how often */
	char **dns_names; uint32_t n_dns_names;
	uint8_t dns_family;                /* enum wf_dns_family (dns_lookup_family) */
	uint64_t dns_refresh_ms;           /* dns_refresh_rate, default 5 s */
	uint64_t dns_fail_base_ms, dns_fail_max_ms; /* dns_failure_refresh_rate; 0: dns_refresh_ms */
};

/* ---- listeners --------------------------------------------------------------------------- */

struct wf_hcm_stats {
	uint32_t rq_total, rq_2xx, rq_3xx, rq_4xx, rq_5xx, rq_time;
	uint32_t cx_total, cx_active, cx_http1_total, cx_destroy, cx_protocol_error;
	uint32_t rq_active, no_route, rq_timeout, rx_reset, tx_reset, cx_idle_timeout;
	uint32_t rq_idle_timeout, cx_length_ms, rq_header_timeout, no_cluster;
	uint32_t cx_upgrades_total, cx_upgrades_active, rq_ws_on_non_ws_route;
	uint32_t cx_http2_total, h2_abuse, cx_http1_active, cx_http2_active;
	uint32_t h2_header_overflow;       /* http2.header_overflow (Envoy's downstream codec stat, at the root) */
};


struct wf_hcm_cfg {
	char *stat_prefix;
	struct wf_route_table *routes;
	struct wf_alog **logs; uint32_t n_logs;
	uint64_t stream_idle_timeout_ms;   /* default 5 min; 0 disables */
	uint64_t request_timeout_ms;       /* default 0 (none) */
	uint64_t request_headers_timeout_ms;
	uint64_t idle_timeout_ms;          /* connection idle; default 1 h */
	uint64_t drain_timeout_ms;
	uint32_t max_request_headers_kb;   /* default 60 */
	uint32_t max_headers_count;        /* default 100 */
	uint32_t max_requests_per_connection; /* 0: unlimited */
	uint8_t use_remote_address;
	uint8_t skip_xff_append;
	uint32_t xff_num_trusted_hops;
	uint8_t generate_request_id;       /* default true */
	uint8_t preserve_external_request_id;
	uint8_t strip_any_host_port;
	uint8_t strip_matching_host_port;
	uint8_t proxy_100_continue;
	uint8_t suppress_envoy_headers;    /* router: no x-envoy-* headers added */
	uint8_t accept_http_10;            /* else HTTP/1.0 gets 426, as in Envoy */
	uint8_t allow_absolute_url;        /* default true */
	char *default_host_10;             /* Host for HTTP/1.0 requests without one */
	uint8_t enable_trailers;           /* response trailers to HTTP/1.1 clients, in a chunked body */
	uint8_t server_header_mode;        /* 0 overwrite, 1 append if absent, 2 pass through */
	char *server_name;                 /* default "envoy", as Envoy (clients and tests expect it) */
	char *via;
	struct wf_filter_inst *filters; uint32_t n_filters; /* http_filters before the router */
	struct wf_upgrade *upgrades; uint32_t n_upgrades; /* upgrade_configs */
	uint8_t codec;                     /* codec_type: WF_CODEC_* */
	struct wf_h2_cfg h2;               /* http2_protocol_options */
	struct wf_hcm_stats st;
};

struct wf_tcp_cfg {
	char *stat_prefix;
	struct wf_cluster *cluster;
	struct wf_weighted *weighted; uint32_t n_weighted; uint64_t total_weight;
	uint64_t idle_timeout_ms;          /* default 1 h; 0 disables */
	uint32_t max_connect_attempts;
	struct wf_alog **logs; uint32_t n_logs;
	uint32_t st_cx_total, st_cx_active, st_rx_bytes, st_tx_bytes, st_idle_timeout;
};

/* ---- TLS (transport_socket envoy.transport_sockets.tls) --------------------------------- */

struct ssl_ctx_st;

/* match_typed_subject_alt_names: a SAN of this type (GEN_DNS, GEN_URI, GEN_EMAIL, GEN_IPADD)
 * whose value matches. */
struct wf_san_match {
	int type;
	struct wf_strmatch sm;
};

/* A DownstreamTlsContext (server) or UpstreamTlsContext (client), compiled: the OpenSSL
 * context holds certificates, CA, versions, ciphers, curves, ALPN and session settings;
 * the rest is what the transport checks itself. Stats are Envoy's <scope>.ssl.*. */
struct wf_tls_cfg {
	struct ssl_ctx_st *ctx;
	uint8_t server;
	uint8_t verify;                    /* the peer is verified (a trusted CA, or pins) */
	uint8_t verify_chain;              /* trusted_ca: the peer's chain must lead to it */
	uint8_t require_cert;              /* server: require_client_certificate */
	struct wf_san_match *san; uint32_t n_san;
	/* verify_certificate_hash / verify_certificate_spki: SHA-256 values; any one matching
	 * (in either list) accepts the peer's certificate */
	uint8_t (*pin_cert)[32]; uint32_t n_pin_cert;
	uint8_t (*pin_spki)[32]; uint32_t n_pin_spki;
	unsigned char *alpn; uint32_t alpn_len;  /* wire format (length-prefixed) */
	char *sni;                         /* client: UpstreamTlsContext.sni */
	uint64_t key;                      /* client: hash of the context's config; pooled
	                                    * connections are reused only for the same key */
	uint32_t st_handshake, st_connection_error, st_no_certificate, st_fail_verify_san,
	         st_fail_verify_error, st_fail_verify_cert_hash, st_session_reused;
};

/* WF_NF_MATCH: a listener with several filter chains (or the TLS inspector): each
 * connection first gets its chain, itself a wf_listener of kind HCM or TCP. */
enum wf_netfilter { WF_NF_HCM, WF_NF_TCP, WF_NF_MATCH };

enum wf_transport_match { WF_TP_ANY, WF_TP_RAW, WF_TP_TLS };

struct wf_listener {
	char *name;
	struct wf_addr addr;
	char addr_str[64];
	uint8_t kind;                      /* enum wf_netfilter */
	struct wf_hcm_cfg *hcm;
	struct wf_tcp_cfg *tcp;
	struct wf_tls_cfg *tls;            /* the filter chain's transport_socket; NULL: plain */
	uint32_t buffer_limit;             /* per_connection_buffer_limit_bytes, default 1 MiB */
	uint8_t ipv4_compat;               /* an IPv6 listener also takes IPv4 (v4-mapped) */
	uint32_t st_cx_total, st_cx_active, st_cx_destroy;
	/* kind WF_NF_MATCH: the filter chains (each shares name, address, limits and stats
	 * with this listener), the default chain, and the TLS inspector */
	struct wf_listener *chains; uint32_t n_chains;
	struct wf_listener *default_chain;
	uint8_t inspect;                   /* peek the ClientHello (tls_inspector) before matching */
	uint8_t continue_on_timeout;       /* continue_on_listener_filters_timeout */
	uint64_t inspect_timeout_ms;       /* listener_filters_timeout (default 15 s; 0: none) */
	uint32_t st_no_chain_match, st_pre_cx_timeout;
	/* a chain's filter_chain_match (empty lists match anything) */
	uint8_t is_chain;
	char *chain_name;
	char **server_names; uint32_t n_server_names;  /* lower-cased; "*.x.com" kept as is */
	uint8_t transport;                 /* enum wf_transport_match */
	char **alpn; uint32_t n_alpn;
};

/* The chain of a WF_NF_MATCH listener for a connection (Envoy's order: server_names, then
 * transport_protocol, then application_protocols, the most specific match at each step),
 * or its default chain, or NULL. sni: lower-cased (or NULL); alpn: wire format. */
const struct wf_listener *wf_chain_select(const struct wf_listener *l, const char *sni, const uint8_t *alpn,
                                          uint32_t alpn_len, int is_tls);

/* ---- snapshot ---------------------------------------------------------------------------- */

struct wf_snapshot {
	int refs;                          /* atomic: holders (workers, main, admin) */
	uint64_t version;                  /* increases with each accepted config */
	unsigned n_workers;
	struct wf_listener *listeners; uint32_t n_listeners;
	struct wf_cluster **clusters; uint32_t n_clusters;
	uint32_t *cluster_index; uint32_t cluster_index_cap;  /* by name: clusters[i - 1], 0 empty */
	struct wf_addr admin_addr; int has_admin;
	struct wf_alog **admin_logs; uint32_t n_admin_logs;
	struct wf_cfgdoc *doc;             /* the messages it was compiled from (config_dump) */
	char *source;                      /* config file path */
	char **tls_files; uint32_t n_tls_files; /* certificate, key and CA files (watched: a change reloads) */
	uint64_t loaded_wall_s;
	struct wf_ads_cfg *ads;            /* dynamic_resources: where the xDS client connects */
	struct wf_xds_set *xds;            /* the xDS resources compiled in (proxy/ads_set.h), or NULL */
	struct wf_xds_set *served;         /* of those (or of the previous config's, for a listener or
	                                      cluster whose update is warming), the versions compiled */
	uint32_t n_warming;                /* xDS listeners and clusters left out until RDS/EDS comes */
	struct wf_stats_rec stats;         /* the stats its compile registered, given back with it */
	struct wf_snapshot *next_free;     /* released by a worker: for the main thread to free */
};

/* The bootstrap's dynamic_resources, checked: ADS (SotW or delta) to a static cluster. */
struct wf_ads_cfg {
	char *cluster;                     /* ads_config.grpc_services[0].envoy_grpc.cluster_name */
	char *authority;                   /* envoy_grpc.authority, else the cluster name */
	uint8_t delta;                     /* DELTA_GRPC / AGGREGATED_DELTA_GRPC */
	uint8_t lds, cds;                  /* lds_config / cds_config given ({ads: {}}) */
	uint8_t node_first_only;           /* set_node_on_first_message_only */
	uint64_t lds_timeout_ms, cds_timeout_ms;  /* initial_fetch_timeout (default 15 s; 0: none) */
	uint8_t *node; size_t node_len;    /* the bootstrap's node, encoded */
};

/* Decode a bootstrap file into a snapshot for n_workers workers. NULL with err set
 * ("file:line:col: path: what") when the file is refused. Main thread only. */
struct wf_snapshot *wf_config_load(const char *file, unsigned n_workers, char *err, size_t errlen);
/* Compile the config `from` was compiled from again (the same messages; the names of DNS
 * clusters as they resolve now), without reading the file: how a DNS change is applied.
 * NULL with err set. Main thread only. */
struct wf_snapshot *wf_config_rebuild(const struct wf_snapshot *from, char *err, size_t errlen);
/* Compile the bootstrap `base` was compiled from with the xDS resources `xds` (referenced by
 * the new snapshot). NULL with err set ("xds:TYPE/NAME: path: what" for a resource). */
struct wf_snapshot *wf_config_with_xds(const struct wf_snapshot *base, struct wf_xds_set *xds, char *err,
                                       size_t errlen);
/* Make a freshly loaded snapshot's config-derived gauges (cluster membership) current.
 * Main thread, right before publishing it. */
void wf_snapshot_activate(struct wf_snapshot *s);
/* Set a cluster's membership gauges (and health_check.healthy): hosts healthy by their
 * health_status and not failing active health checks. Main thread. */
void wf_cluster_membership(const struct wf_cluster *c);
/* Free a snapshot and everything it owns (when its last reference is dropped). */
void wf_snapshot_free(struct wf_snapshot *s);
struct wf_cluster *wf_snapshot_cluster(const struct wf_snapshot *s, const char *name);

#endif
