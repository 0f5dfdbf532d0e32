/* Compile an Envoy v3 Bootstrap (static_resources, admin) into a wf_snapshot: clusters first
 * (routes point at them), then listeners with their network filters. */
#include "proxy/compile.h"

#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/endpoint/v3/endpoint.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/config/core/v3/config_source.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb-c.h"
#include "envoy/config/cluster/v3/circuit_breaker.pb-c.h"
#include "envoy/config/cluster/v3/outlier_detection.pb-c.h"
#include "proxy/ads_set.h"
#include "proxy/dns.h"
#include "proxy/outlier.h"
#include "core/log.h"
#include "proxy/alog.h"
#include "proxy/stats.h"
#include "xds/cfgdoc.h"
#include "xds/registry.h"
#include "core/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef Envoy__Config__Bootstrap__V3__Bootstrap Bootstrap;
typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Config__Listener__V3__Listener Listener;
typedef Envoy__Config__Core__V3__Address Address;
typedef Envoy__Config__Core__V3__ConfigSource ConfigSource;
typedef Envoy__Config__Endpoint__V3__ClusterLoadAssignment Assignment;
typedef Envoy__Config__Route__V3__RouteConfiguration RouteConfiguration;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;
typedef Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy TcpProxy;

#define HCM_TYPE "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
#define TCP_TYPE "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"

struct wf_cluster *wf_compile_find_cluster(struct wf_compile *c, const void *msg, const char *field,
                                           const char *name)
{
	struct wf_cluster *cl = name ? wf_snapshot_cluster(c->snap, name) : NULL;
	if (!cl)
		wf_cfg_err(c->doc, c->err, c->errlen, msg, field, "unknown cluster '%s'", name ? name : "");
	return cl;
}

int wf_compile_datasource(struct wf_compile *c, const ProtobufCMessage *msg, char **out, uint32_t *len)
{
	const Envoy__Config__Core__V3__DataSource *ds = (const void *)msg;
	switch (ds->specifier_case) {
	case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING:
		*out = strdup(ds->inline_string);
		*len = (uint32_t)strlen(ds->inline_string);
		return 0;
	case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES:
		*out = malloc(ds->inline_bytes.len + 1);
		memcpy(*out, ds->inline_bytes.data, ds->inline_bytes.len);
		(*out)[ds->inline_bytes.len] = 0;
		*len = (uint32_t)ds->inline_bytes.len;
		return 0;
	case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME: {
		FILE *f = fopen(ds->filename, "rb");
		if (!f)
			return wf_cfg_err(c->doc, c->err, c->errlen, ds, "filename", "cannot read '%s': %s",
			                  ds->filename, strerror(errno));
		char *buf = NULL;
		size_t n = 0, cap = 0;
		for (;;) {
			if (n + 4096 > cap)
				buf = realloc(buf, cap = cap ? cap * 2 : 8192);
			size_t k = fread(buf + n, 1, cap - n - 1, f);
			n += k;
			if (!k)
				break;
			if (n > 4 * 1024 * 1024) {
				fclose(f);
				free(buf);
				return wf_cfg_err(c->doc, c->err, c->errlen, ds, "filename", "'%s' is over 4 MiB", ds->filename);
			}
		}
		fclose(f);
		buf[n] = 0;
		*out = buf;
		*len = (uint32_t)n;
		return 0;
	}
	case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_ENVIRONMENT_VARIABLE: {
		const char *v = getenv(ds->environment_variable);
		if (!v)
			return wf_cfg_err(c->doc, c->err, c->errlen, ds, "environment_variable",
			                  "environment variable '%s' is not set", ds->environment_variable);
		*out = strdup(v);
		*len = (uint32_t)strlen(v);
		return 0;
	}
	default:
		return wf_cfg_err(c->doc, c->err, c->errlen, ds, NULL, "a data source needs inline_string, inline_bytes, filename or environment_variable");
	}
}

static int socket_address_(struct wf_compile *c, const Address *a, const void *owner, const char *field,
                           struct wf_addr *out, int owner_is_listener)
{
	if (!a || a->address_case != ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS)
		return wf_cfg_err(c->doc, c->err, c->errlen, a ? (const void *)a : owner, a ? NULL : field,
		                  "a socket_address is required");
	const Envoy__Config__Core__V3__SocketAddress *sa = a->socket_address;
	if (sa->protocol != ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PROTOCOL__TCP)
		return wf_cfg_err(c->doc, c->err, c->errlen, sa, "protocol", "only TCP is supported");
	if (sa->port_specifier_case != ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE)
		return wf_cfg_err(c->doc, c->err, c->errlen, sa, NULL, "port_value is required");
	if (sa->port_value == 0 && owner_is_listener)
		return wf_cfg_err(c->doc, c->err, c->errlen, sa, "port_value", "a listener needs a fixed port (port 0 is not supported)");
	if (sa->port_value > 65535)
		return wf_cfg_err(c->doc, c->err, c->errlen, sa, "port_value", "port %u is out of range", sa->port_value);
	if (wf_addr_from_ip(out, sa->address, sa->port_value) < 0)
		return wf_cfg_err(c->doc, c->err, c->errlen, sa, "address",
		                  "'%s' is not an IP address (use a STRICT_DNS cluster for names)", sa->address);
	return 0;
}

int wf_compile_socket_address(struct wf_compile *c, const Address *a, const void *owner, const char *field,
                              struct wf_addr *out)
{
	return socket_address_(c, a, owner, field, out, 0);
}

/* ---- clusters ---------------------------------------------------------------------------- */

static void cluster_stats(struct wf_cluster *cl)
{
	struct wf_cluster_stats *s = &cl->st;
	const char *n = cl->stat_name;
#define C(f, name) s->f = wf_stat_register(WF_STAT_COUNTER, "cluster", n, name)
#define G(f, name) s->f = wf_stat_register(WF_STAT_GAUGE, "cluster", n, name)
	C(rq_total, "upstream_rq_total");
	C(rq_2xx, "upstream_rq_2xx");
	C(rq_3xx, "upstream_rq_3xx");
	C(rq_4xx, "upstream_rq_4xx");
	C(rq_5xx, "upstream_rq_5xx");
	s->rq_time = wf_stat_register(WF_STAT_HIST, "cluster", n, "upstream_rq_time");
	C(cx_total, "upstream_cx_total");
	G(cx_active, "upstream_cx_active");
	C(cx_connect_fail, "upstream_cx_connect_fail");
	C(cx_connect_timeout, "upstream_cx_connect_timeout");
	C(cx_destroy, "upstream_cx_destroy");
	C(rq_timeout, "upstream_rq_timeout");
	C(rq_pending_total, "upstream_rq_pending_total");
	G(rq_active, "upstream_rq_active");
	C(none_healthy, "upstream_cx_none_healthy");
	C(rq_completed, "upstream_rq_completed");
	C(cx_destroy_remote, "upstream_cx_destroy_remote");
	C(cx_protocol_error, "upstream_cx_protocol_error");
	C(rq_rx_reset, "upstream_rq_rx_reset");
	C(rq_tx_reset, "upstream_rq_tx_reset");
	s->rq_code = wf_stat_register(WF_STAT_CODES, "cluster", n, "upstream_rq");
	C(rq_retry, "upstream_rq_retry");
	C(rq_retry_success, "upstream_rq_retry_success");
	C(rq_retry_limit_exceeded, "upstream_rq_retry_limit_exceeded");
	C(rq_per_try_timeout, "upstream_rq_per_try_timeout");
	C(cx_overflow, "upstream_cx_overflow");
	C(rq_pending_overflow, "upstream_rq_pending_overflow");
	C(rq_retry_overflow, "upstream_rq_retry_overflow");
	G(membership_total, "membership_total");
	G(membership_healthy, "membership_healthy");
	C(lb_healthy_panic, "lb_healthy_panic");
#undef C
#undef G
	for (uint32_t i = 0; i < cl->n_hosts; i++) {
		struct wf_host *h = &cl->hosts[i];
		char hn[160];
#define H(f, name) snprintf(hn, sizeof(hn), "host.%s.%s", h->addr_str, name), h->f = wf_stat_register(WF_STAT_HIDDEN, "cluster", n, hn)
		H(st_cx_active, "cx_active");
		H(st_cx_total, "cx_total");
		H(st_cx_connect_fail, "cx_connect_fail");
		H(st_rq_total, "rq_total");
		H(st_rq_active, "rq_active");
		H(st_rq_success, "rq_success");
		H(st_rq_error, "rq_error");
		H(st_rq_timeout, "rq_timeout");
#undef H
	}
}

void wf_cluster_membership(const struct wf_cluster *c)
{
	uint32_t healthy = 0, hc_healthy = 0;
	for (uint32_t h = 0; h < c->n_hosts; h++) {
		int hc_ok = !c->hc || !__atomic_load_n(&c->ol_hosts[h]->hc_failed, __ATOMIC_RELAXED);
		healthy += c->hosts[h].healthy && hc_ok;
		hc_healthy += hc_ok;
	}
	wf_stat_set(c->st.membership_total, c->n_hosts);
	wf_stat_set(c->st.membership_healthy, healthy);
	if (c->hc)
		wf_stat_set(c->hc->st_healthy, hc_healthy);
}

void wf_snapshot_activate(struct wf_snapshot *s)
{
	for (uint32_t i = 0; i < s->n_clusters; i++)
		wf_cluster_membership(s->clusters[i]);
}

/* dns_refresh_rate (default 5 s, at least 1 ms), dns_failure_refresh_rate (base_interval
 * required, max_interval default 10 x base) and dns_lookup_family. STATIC clusters ignore them,
 * as Envoy does. */
static int dns_settings(struct wf_compile *c, const Cluster *m, struct wf_cluster *cl)
{
	cl->dns_family = (uint8_t)m->dns_lookup_family;
	cl->dns_refresh_ms = 5000;
	if (m->dns_refresh_rate) {
		const Google__Protobuf__Duration *d = m->dns_refresh_rate;
		if (d->seconds < 0 || (d->seconds == 0 && d->nanos < 1000000))
			return wf_cfg_err(c->doc, c->err, c->errlen, m, "dns_refresh_rate", "must be at least 1ms");
		cl->dns_refresh_ms = wf_duration_ms(d);
	}
	const Envoy__Config__Cluster__V3__Cluster__RefreshRate *f = m->dns_failure_refresh_rate;
	if (f) {
		const Google__Protobuf__Duration *b = f->base_interval;
		if (!b || b->seconds < 0 || (b->seconds == 0 && b->nanos < 1000000))
			return wf_cfg_err(c->doc, c->err, c->errlen, f, "base_interval", "base_interval is required, at least 1ms");
		cl->dns_fail_base_ms = wf_duration_ms(b);
		cl->dns_fail_max_ms = f->max_interval ? wf_duration_ms(f->max_interval) : 10 * cl->dns_fail_base_ms;
		if (cl->dns_fail_max_ms < cl->dns_fail_base_ms)
			return wf_cfg_err(c->doc, c->err, c->errlen, f, "max_interval", "must be at least base_interval");
	}
	return 0;
}

static void cluster_free(struct wf_cluster *cl, unsigned n_workers);

static void dns_names_free(struct wf_cluster *cl)
{
	for (uint32_t i = 0; i < cl->n_dns_names; i++)
		free(cl->dns_names[i]);
	free(cl->dns_names);
}

/* circuit_breakers: Envoy's defaults (1024 connections, pending and requests, 3 retries) unless
 * the DEFAULT priority's thresholds say otherwise. Routes have no priority yet, so HIGH
 * thresholds are checked but do not apply to any request. */
static int circuit_breakers(struct wf_compile *c, const Cluster *m, struct wf_cluster *cl)
{
	cl->cb = wf_cb_for(cl->stat_name);
	cl->max_connections = cl->max_pending = cl->max_requests = 1024;
	cl->max_retries = 3;
	cl->budget_percent = -1;
	const Envoy__Config__Cluster__V3__CircuitBreakers *cbm = m->circuit_breakers;
	for (size_t i = 0; cbm && i < cbm->n_thresholds; i++) {
		const Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds *t = cbm->thresholds[i];
		if (t->track_remaining)
			return wf_cfg_err(c->doc, c->err, c->errlen, t, "track_remaining", "not supported yet");
		if (t->priority != ENVOY__CONFIG__CORE__V3__ROUTING_PRIORITY__DEFAULT)
			continue;
		if (t->max_connections)
			cl->max_connections = t->max_connections->value;
		if (t->max_pending_requests)
			cl->max_pending = t->max_pending_requests->value;
		if (t->max_requests)
			cl->max_requests = t->max_requests->value;
		if (t->max_retries)
			cl->max_retries = t->max_retries->value;
		if (t->retry_budget) {
			cl->budget_percent = t->retry_budget->budget_percent ? t->retry_budget->budget_percent->value : 20.0;
			cl->budget_min = t->retry_budget->min_retry_concurrency ? t->retry_budget->min_retry_concurrency->value : 3;
			if (cl->budget_percent < 0 || cl->budget_percent > 100)
				return wf_cfg_err(c->doc, c->err, c->errlen, t->retry_budget, "budget_percent", "must be 0..100");
		}
	}
	return 0;
}

/* The hosts' shared health records (outlier detection, active health checks), held until the
 * cluster is freed. */
static void host_states(struct wf_cluster *cl)
{
	if (cl->ol_hosts)
		return;
	cl->ol_hosts = calloc(cl->n_hosts + 1, sizeof(*cl->ol_hosts));
	if (!cl->ol_hosts)
		abort();
	for (uint32_t i = 0; i < cl->n_hosts; i++)
		if (!(cl->ol_hosts[i] = wf_ol_host_for(cl->stat_name, cl->hosts[i].addr_str)))
			abort(); /* out of memory while compiling */
}

/* outlier_detection with Envoy's defaults: consecutive 5xx / gateway / local failures 5,
 * enforcing 100 / 0 / 100 %, base_ejection_time 30s, max_ejection_percent 10, max 300s;
 * every interval (10s), success rate (5 hosts of 100 requests, stdev factor 1.9, enforcing
 * 100%) and failure percentage (5 hosts of 50 requests, 85%, enforcing 0%). */
static int outlier_detection(struct wf_compile *c, const Envoy__Config__Cluster__V3__OutlierDetection *m,
                             struct wf_cluster *cl)
{
	struct wf_outlier_cfg *o = &cl->ol;
#define U32(f, d) (m->f ? m->f->value : (d))
	o->enabled = 1;
	o->c5xx = U32(consecutive_5xx, 5);
	o->cgw = U32(consecutive_gateway_failure, 5);
	o->clocal = U32(consecutive_local_origin_failure, 5);
	o->e5xx = U32(enforcing_consecutive_5xx, 100);
	o->egw = U32(enforcing_consecutive_gateway_failure, 0);
	o->elocal = U32(enforcing_consecutive_local_origin_failure, 100);
	o->max_percent = U32(max_ejection_percent, 10);
	o->sr_min_hosts = U32(success_rate_minimum_hosts, 5);
	o->sr_volume = U32(success_rate_request_volume, 100);
	o->sr_stdev_factor = U32(success_rate_stdev_factor, 1900);
	o->esr = U32(enforcing_success_rate, 100);
	o->fp_threshold = U32(failure_percentage_threshold, 85);
	o->fp_min_hosts = U32(failure_percentage_minimum_hosts, 5);
	o->fp_volume = U32(failure_percentage_request_volume, 50);
	o->efp = U32(enforcing_failure_percentage, 0);
#undef U32
	o->split_local = m->split_external_local_origin_errors;
	o->base_ms = m->base_ejection_time ? wf_duration_ms(m->base_ejection_time) : 30000;
	o->max_ms = m->max_ejection_time ? wf_duration_ms(m->max_ejection_time) : 300000;
	if (o->e5xx > 100 || o->egw > 100 || o->elocal > 100 || o->max_percent > 100 || o->esr > 100 || o->efp > 100 ||
	    o->fp_threshold > 100)
		return wf_cfg_err(c->doc, c->err, c->errlen, m, NULL, "percentages must be 0..100");
	if (!o->base_ms)
		return wf_cfg_err(c->doc, c->err, c->errlen, m, "base_ejection_time", "must be above 0");
	o->interval_ms = m->interval ? wf_duration_ms(m->interval) : 10000;
	if (!o->interval_ms)
		return wf_cfg_err(c->doc, c->err, c->errlen, m, "interval", "must be above 0");
	/* Fewer hosts than either minimum_hosts: neither can ever find an outlier, so requests are
	 * not even counted. (Ejections expire lazily at the next pick after their time, not at
	 * the interval sweeps.) */
	o->per_interval = cl->n_hosts >= (o->sr_min_hosts < o->fp_min_hosts ? o->sr_min_hosts : o->fp_min_hosts);
	host_states(cl);
	const char *n = cl->stat_name;
#define C(f, name) o->f = wf_stat_register(WF_STAT_COUNTER, "cluster", n, "outlier_detection." name)
	C(st_enforced_total, "ejections_enforced_total");
	C(st_overflow, "ejections_overflow");
	C(st_det_5xx, "ejections_detected_consecutive_5xx");
	C(st_enf_5xx, "ejections_enforced_consecutive_5xx");
	C(st_det_gw, "ejections_detected_consecutive_gateway_failure");
	C(st_enf_gw, "ejections_enforced_consecutive_gateway_failure");
	C(st_det_local, "ejections_detected_consecutive_local_origin_failure");
	C(st_enf_local, "ejections_enforced_consecutive_local_origin_failure");
	C(st_det_sr, "ejections_detected_success_rate");
	C(st_enf_sr, "ejections_enforced_success_rate");
	C(st_det_fp, "ejections_detected_failure_percentage");
	C(st_enf_fp, "ejections_enforced_failure_percentage");
#undef C
	o->st_active = wf_stat_register(WF_STAT_GAUGE, "cluster", n, "outlier_detection.ejections_active");
	return 0;
}

#define UPSTREAM_HTTP_OPTIONS "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

static int h2_u32(struct wf_compile *c, const void *o, const char *field, const Google__Protobuf__UInt32Value *v,
                  uint32_t lo, uint32_t hi, uint32_t *dst)
{
	if (!v)
		return 0;
	if (v->value < lo || v->value > hi) {
		char why[64];
		snprintf(why, sizeof(why), "must be %u..%u", lo, hi);
		return wf_cfg_err(c->doc, c->err, c->errlen, o, field, "%s", why);
	}
	*dst = v->value;
	return 0;
}

/* http2_protocol_options, with Envoy's defaults and ranges, except the flow-control windows:
 * 64 KiB per stream and 1 MiB per connection unless set (Envoy's edge recommendation; its
 * 256 MiB default would let one client park that much request body in the proxy). */
int wf_compile_h2_options(struct wf_compile *c, const Envoy__Config__Core__V3__Http2ProtocolOptions *o, struct wf_h2_cfg *h)
{
	struct wf_h2_limits *l = &h->lim;
	wf_h2_limits_default(l);
	l->initial_stream_window = 65536;
	l->initial_connection_window = 1024 * 1024;
	h->ping_interval_ms = 0;
	h->ping_timeout_ms = 5000;
	if (!o)
		return 0;
#define H2U32(field, lo, hi, dst) \
	if (h2_u32(c, o, #field, o->field, lo, hi, &(dst)) < 0) \
		return -1
	H2U32(hpack_table_size, 0, 4294967295u, l->hpack_table_size);
	H2U32(max_concurrent_streams, 1, 2147483647, l->max_concurrent_streams);
	H2U32(initial_stream_window_size, 65535, 2147483647, l->initial_stream_window);
	H2U32(initial_connection_window_size, 65535, 2147483647, l->initial_connection_window);
	H2U32(max_outbound_frames, 1, 4294967295u, l->max_outbound_frames);
	H2U32(max_outbound_control_frames, 1, 4294967295u, l->max_outbound_control_frames);
	H2U32(max_consecutive_inbound_frames_with_empty_payload, 0, 4294967295u, l->max_consecutive_empty_frames);
	H2U32(max_inbound_priority_frames_per_stream, 0, 4294967295u, l->max_priority_frames_per_stream);
	H2U32(max_inbound_window_update_frames_per_data_frame_sent, 1, 4294967295u, l->max_window_updates_per_data_sent);
#undef H2U32
	l->connect_protocol = o->allow_connect; /* CONNECT, and extended CONNECT (WebSocket, RFC 8441) */
	if (o->connection_keepalive) {
		const Envoy__Config__Core__V3__KeepaliveSettings *k = o->connection_keepalive;
		if (k->connection_idle_interval)
			return wf_cfg_err(c->doc, c->err, c->errlen, k, "connection_idle_interval", "not supported yet");
		h->ping_interval_ms = wf_duration_ms(k->interval);
		if (k->timeout)
			h->ping_timeout_ms = wf_duration_ms(k->timeout);
		if (!h->ping_interval_ms || !h->ping_timeout_ms)
			return wf_cfg_err(c->doc, c->err, c->errlen, k, k->timeout && !h->ping_timeout_ms ? "timeout" : "interval",
			                  "must be at least 1ms");
	}
	return 0;
}

static int http1_options_unset(struct wf_compile *c, const Envoy__Config__Core__V3__Http1ProtocolOptions *o)
{
	if (o && (o->allow_absolute_url || o->accept_http_10 || (o->default_host_for_http_10 && *o->default_host_for_http_10) ||
	          o->enable_trailers))
		return wf_cfg_err(c->doc, c->err, c->errlen, o, NULL, "HTTP/1 codec options are not supported for upstreams");
	return 0;
}

/* typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
 * (upstream HTTP/1 only for now) and upstream_connection_options.tcp_keepalive. */
static int upstream_options(struct wf_compile *c, const Cluster *m, struct wf_cluster *cl)
{
	for (size_t i = 0; i < m->n_typed_extension_protocol_options; i++) {
		const Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry *e =
		    m->typed_extension_protocol_options[i];
		if (strcmp(e->key, UPSTREAM_HTTP_OPTIONS) || !e->value)
			return wf_cfg_err(c->doc, c->err, c->errlen, e, "key", "unknown protocol options '%s' (%s)", e->key,
			                  UPSTREAM_HTTP_OPTIONS);
		ProtobufCMessage *in = wf_cfgdoc_any(c->doc, &e->value->base, c->err, c->errlen);
		if (!in)
			return -1;
		if (strcmp(in->descriptor->name, UPSTREAM_HTTP_OPTIONS))
			return wf_cfg_err(c->doc, c->err, c->errlen, e->value, "type_url", "expected %s, got %s",
			                  UPSTREAM_HTTP_OPTIONS, in->descriptor->name);
		const Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions *o = (const void *)in;
		const Envoy__Config__Core__V3__HttpProtocolOptions *common = o->common_http_protocol_options;
		if (common) {
			if (common->idle_timeout)
				cl->upstream_idle_ms = wf_duration_ms(common->idle_timeout);
			if (common->max_requests_per_connection)
				cl->max_requests_per_connection = common->max_requests_per_connection->value;
			if (common->max_headers_count) {
				cl->max_response_headers = common->max_headers_count->value;
				if (!cl->max_response_headers || cl->max_response_headers > 256)
					return wf_cfg_err(c->doc, c->err, c->errlen, common, "max_headers_count",
					                  "must be 1..256 for upstream responses");
			}
		}
		switch (o->upstream_protocol_options_case) {
		case ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_EXPLICIT_HTTP_CONFIG:
			if (o->explicit_http_config->protocol_config_case ==
			    ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP2_PROTOCOL_OPTIONS) {
				cl->protocol = WF_UP_HTTP2;
				if (wf_compile_h2_options(c, o->explicit_http_config->http2_protocol_options, &cl->h2) < 0)
					return -1;
				break;
			}
			if (o->explicit_http_config->protocol_config_case !=
			    ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__PROTOCOL_CONFIG_HTTP_PROTOCOL_OPTIONS)
				return wf_cfg_err(c->doc, c->err, c->errlen, o->explicit_http_config, "http3_protocol_options",
				                  "HTTP/3 upstreams are not supported");
			if (http1_options_unset(c, o->explicit_http_config->http_protocol_options) < 0)
				return -1;
			break;
		case ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_USE_DOWNSTREAM_PROTOCOL_CONFIG:
			cl->protocol = WF_UP_DOWNSTREAM;
			if (wf_compile_h2_options(c, o->use_downstream_protocol_config->http2_protocol_options, &cl->h2) < 0)
				return -1;
			if (http1_options_unset(c, o->use_downstream_protocol_config->http_protocol_options) < 0)
				return -1;
			break;
		case ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_AUTO_CONFIG:
			/* ALPN needs TLS; without it, auto is HTTP/1.1 */
			cl->protocol = WF_UP_AUTO;
			if (wf_compile_h2_options(c, o->auto_config->http2_protocol_options, &cl->h2) < 0)
				return -1;
			if (http1_options_unset(c, o->auto_config->http_protocol_options) < 0)
				return -1;
			break;
		default:
			break;
		}
	}
	if (m->upstream_connection_options && m->upstream_connection_options->tcp_keepalive) {
		const Envoy__Config__Core__V3__TcpKeepalive *k = m->upstream_connection_options->tcp_keepalive;
		cl->keepalive = 1;
		cl->keepalive_probes = k->keepalive_probes ? k->keepalive_probes->value : 0;
		cl->keepalive_time = k->keepalive_time ? k->keepalive_time->value : 0;
		cl->keepalive_interval = k->keepalive_interval ? k->keepalive_interval->value : 0;
	}
	return 0;
}

/* ring_hash_lb_config / maglev_lb_config / least_request_lb_config, each only with its policy. */
static int lb_params(struct wf_compile *c, const Cluster *m, struct wf_lb_params *p)
{
	static const struct { int lb_case; int policy; const char *field, *policy_name; } fit[] = {
	    {ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_RING_HASH_LB_CONFIG,
	     ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RING_HASH, "ring_hash_lb_config", "RING_HASH"},
	    {ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_MAGLEV_LB_CONFIG,
	     ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__MAGLEV, "maglev_lb_config", "MAGLEV"},
	    {ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_LEAST_REQUEST_LB_CONFIG,
	     ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST, "least_request_lb_config", "LEAST_REQUEST"},
	};
	for (size_t i = 0; i < sizeof(fit) / sizeof(fit[0]); i++)
		if ((int)m->lb_config_case == fit[i].lb_case && (int)m->lb_policy != fit[i].policy)
			return wf_cfg_err(c->doc, c->err, c->errlen, m, fit[i].field, "%s applies to lb_policy %s only",
			                  fit[i].field, fit[i].policy_name);
	if (m->lb_config_case == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_RING_HASH_LB_CONFIG) {
		const Envoy__Config__Cluster__V3__Cluster__RingHashLbConfig *r = m->ring_hash_lb_config;
		if (r->hash_function != ENVOY__CONFIG__CLUSTER__V3__CLUSTER__RING_HASH_LB_CONFIG__HASH_FUNCTION__XX_HASH)
			return wf_cfg_err(c->doc, c->err, c->errlen, r, "hash_function", "only XX_HASH is supported");
		p->min_ring = r->minimum_ring_size ? r->minimum_ring_size->value : 0;
		p->max_ring = r->maximum_ring_size ? r->maximum_ring_size->value : 0;
		if ((r->minimum_ring_size && !p->min_ring) || p->max_ring > 8 * 1024 * 1024)
			return wf_cfg_err(c->doc, c->err, c->errlen, r, r->minimum_ring_size && !p->min_ring ? "minimum_ring_size" : "maximum_ring_size",
			                  "ring sizes must be 1..8388608");
	}
	if (m->lb_config_case == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_MAGLEV_LB_CONFIG && m->maglev_lb_config->table_size)
		p->table_size = m->maglev_lb_config->table_size->value;
	if (m->lb_config_case == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_LEAST_REQUEST_LB_CONFIG &&
	    m->least_request_lb_config->choice_count) {
		p->choice_count = m->least_request_lb_config->choice_count->value;
		if (p->choice_count < 2)
			return wf_cfg_err(c->doc, c->err, c->errlen, m->least_request_lb_config, "choice_count", "must be at least 2");
	}
	return 0;
}

/* An xDS resource (its own document) must not set a field declared but not implemented, any
 * more than a bootstrap file may: 0, or -1 with the error. */
static int refuse_pending_in(struct wf_compile *c, struct wf_cfgdoc *doc)
{
	struct wf_cfgdoc *own = c->doc;
	c->doc = doc;
	int r = wf_compile_refuse_pending(c, wf_cfgdoc_root(doc));
	c->doc = own;
	return r;
}

/* A config source that xDS resources (RDS, EDS) may name: the ADS stream, or unset. */
static int ads_source(struct wf_compile *c, const ConfigSource *cs, const void *owner, const char *field,
                      const char *what)
{
	if (!c->snap->ads)
		return wf_cfg_err(c->doc, c->err, c->errlen, owner, field,
		                  "%s needs an xDS server, and the bootstrap has no dynamic_resources.ads_config", what);
	if (cs && cs->resource_api_version == ENVOY__CONFIG__CORE__V3__API_VERSION__V2)
		return wf_cfg_err(c->doc, c->err, c->errlen, cs, "resource_api_version", "resource_api_version must be V3");
	if (cs && cs->config_source_specifier_case != ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS)
		return wf_cfg_err(c->doc, c->err, c->errlen, cs, NULL,
		                  "only the ADS stream is supported as a config source (ads: {}): not %s",
		                  cs->config_source_specifier_case == ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_PATH ? "path"
		                  : cs->config_source_specifier_case == ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_SELF ? "self"
		                  : cs->config_source_specifier_case ? "api_config_source" : "an empty one");
	return 0;
}

static const Assignment no_endpoints = ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT;

/* An EDS cluster's endpoints: the ClusterLoadAssignment named by eds_cluster_config's
 * service_name (else the cluster's name), with its document in *doc. While it has not come the
 * cluster is warming (c->warming set, -1); after initial_fetch_timeout it has no endpoints. */
static int eds_assignment(struct wf_compile *c, const Cluster *m, const Assignment **out, struct wf_cfgdoc **doc)
{
	const Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig *e = m->eds_cluster_config;
	if (ads_source(c, e ? e->eds_config : NULL, m, "type", "type EDS") < 0)
		return -1;
	const char *svc = e && e->service_name && *e->service_name ? e->service_name : m->name;
	const struct wf_xds_res *r = wf_xds_set_find(c->xds, WF_XDS_EDS, svc);
	if (!r && c->from_prev)
		r = wf_xds_set_find(c->prev, WF_XDS_EDS, svc);
	if (r) {
		*out = (const Assignment *)wf_cfgdoc_root(r->doc);
		*doc = r->doc;
		wf_xds_set_put(c->snap->served, WF_XDS_EDS, r->name, r->version, wf_cfgdoc_ref(r->doc), r->hash);
		return refuse_pending_in(c, r->doc);
	}
	if (wf_xds_set_timed_out(c->xds, WF_XDS_EDS, svc)) {
		*out = &no_endpoints;
		return 0;
	}
	c->warming = 1;
	return wf_cfg_err(c->doc, c->err, c->errlen, m, NULL, "waiting for the endpoints of '%s' (EDS)", svc);
}

static struct wf_cluster *cluster(struct wf_compile *c, const Cluster *m)
{
	if (!m->name || !*m->name) {
		wf_cfg_err(c->doc, c->err, c->errlen, m, "name", "a cluster needs a name");
		return NULL;
	}
	if (wf_snapshot_cluster(c->snap, m->name)) {
		wf_cfg_err(c->doc, c->err, c->errlen, m, "name", "cluster '%s' is defined twice", m->name);
		return NULL;
	}
	struct wf_cluster *cl = calloc(1, sizeof(*cl));
	cl->name = strdup(m->name);
	cl->stat_name = strdup(m->alt_stat_name && *m->alt_stat_name ? m->alt_stat_name : m->name);
	cl->connect_timeout_ms = m->connect_timeout ? wf_duration_ms(m->connect_timeout) : 5000;
	cl->per_connection_buffer_limit = m->per_connection_buffer_limit_bytes ?
	    m->per_connection_buffer_limit_bytes->value : 1024 * 1024;
	if (cl->per_connection_buffer_limit < 4096) {
		wf_cfg_err(c->doc, c->err, c->errlen, m, "per_connection_buffer_limit_bytes", "must be at least 4096");
		goto fail;
	}
	int type = m->cluster_discovery_type_case ? m->type : ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC;
	/* EDS: the hosts come from the ClusterLoadAssignment, as a static cluster's from its own */
	Cluster eds_m;
	const Cluster *lb_m = m;
	struct wf_cfgdoc *lb_doc = c->doc;
	if (type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS) {
		eds_m = *m;
		const Assignment *la = NULL;
		if (eds_assignment(c, m, &la, &lb_doc) < 0)
			goto fail;
		eds_m.load_assignment = (Assignment *)la;
		lb_m = &eds_m;
		cl->eds = 1;
	}
	if (type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC ||
	    type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS)
		cl->type = WF_CLUSTER_STATIC;
	else if (type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STRICT_DNS)
		cl->type = WF_CLUSTER_STRICT_DNS;
	else if (type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__LOGICAL_DNS)
		cl->type = WF_CLUSTER_LOGICAL_DNS;
	else {
		wf_cfg_err(c->doc, c->err, c->errlen, m, "type",
		           "cluster type %s is not supported yet (STATIC, STRICT_DNS, LOGICAL_DNS, EDS)",
		           protobuf_c_enum_descriptor_get_value(&envoy__config__cluster__v3__cluster__discovery_type__descriptor, type)->name);
		goto fail;
	}
	if (dns_settings(c, m, cl) < 0)
		goto fail;
	struct wf_lb_params lbp = {0};
	if (lb_params(c, m, &lbp) < 0)
		goto fail;
	switch (m->lb_policy) {
	case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN: cl->lb_kind = WF_LB_ROUND_ROBIN; break;
	case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST: cl->lb_kind = WF_LB_LEAST_REQUEST; break;
	case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RANDOM: cl->lb_kind = WF_LB_RANDOM; break;
	case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RING_HASH: cl->lb_kind = WF_LB_RING_HASH; break;
	case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__MAGLEV: cl->lb_kind = WF_LB_MAGLEV; break;
	default:
		wf_cfg_err(c->doc, c->err, c->errlen, m, "lb_policy",
		           "lb_policy %s is not supported (ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV)",
		           protobuf_c_enum_descriptor_get_value(&envoy__config__cluster__v3__cluster__lb_policy__descriptor, m->lb_policy)->name);
		goto fail;
	}
	cl->upstream_idle_ms = 3600000;
	wf_compile_h2_options(c, NULL, &cl->h2);
	/* the outlier state is per host: after the hosts */
	if (upstream_options(c, m, cl) < 0 || circuit_breakers(c, m, cl) < 0)
		goto fail;
	/* an EDS cluster's endpoint errors name the ClusterLoadAssignment they are in */
	struct wf_cfgdoc *own_doc = c->doc;
	c->doc = lb_doc;
	int lr = wf_compile_cluster_lb(c, lb_m, cl, &lbp);
	c->doc = own_doc;
	if (lr < 0 || (m->outlier_detection && outlier_detection(c, m->outlier_detection, cl) < 0))
		goto fail;
	if (wf_compile_transport_socket(c, m->transport_socket, 0, "cluster", cl->stat_name, &cl->tls) < 0)
		goto fail;
	if (cl->tls && cl->protocol == WF_UP_HTTP2)
		wf_tls_cfg_alpn_default(cl->tls, (const unsigned char *)"\x02h2", 3); /* HTTP/2 over TLS needs ALPN h2 */
	if (cl->tls && cl->protocol == WF_UP_AUTO)
		wf_tls_cfg_alpn_default(cl->tls, (const unsigned char *)"\x02h2\x08http/1.1", 12);
	if (wf_compile_health(c, m, cl) < 0)
		goto fail;
	if (cl->hc)
		host_states(cl);
	cluster_stats(cl);
	return cl;
fail:
	cluster_free(cl, c->snap->n_workers);
	return NULL;
}

static void cluster_free(struct wf_cluster *cl, unsigned n_workers)
{
	if (!cl)
		return;
	wf_cluster_lb_free(cl, n_workers);
	wf_cb_release(cl->cb);
	for (uint32_t i = 0; cl->ol_hosts && i < cl->n_hosts; i++)
		wf_ol_host_release(cl->ol_hosts[i]);
	free(cl->ol_hosts);
	wf_hc_cfg_free(cl->hc);
	wf_tls_cfg_free(cl->tls);
	dns_names_free(cl);
	free(cl->hosts);
	free(cl->name);
	free(cl->stat_name);
	free(cl);
}

/* ---- listeners --------------------------------------------------------------------------- */

static int access_logs(struct wf_compile *c, size_t n, Envoy__Config__Accesslog__V3__AccessLog **in,
                       struct wf_alog ***out, uint32_t *n_out)
{
	*out = calloc(n ? n : 1, sizeof(**out));
	for (size_t i = 0; i < n; i++) {
		(*out)[i] = wf_alog_compile(c->doc, &in[i]->base, c->log_slots ? c->log_slots : c->snap->n_workers,
		                            c->err, c->errlen);
		if (!(*out)[i])
			return -1;
		*n_out = (uint32_t)i + 1;
	}
	return 0;
}

static void hcm_stats(struct wf_hcm_cfg *h)
{
	struct wf_hcm_stats *s = &h->st;
	const char *n = h->stat_prefix;
#define C(f, name) s->f = wf_stat_register(WF_STAT_COUNTER, "http", n, name)
#define G(f, name) s->f = wf_stat_register(WF_STAT_GAUGE, "http", n, name)
	C(rq_total, "downstream_rq_total");
	C(rq_2xx, "downstream_rq_2xx");
	C(rq_3xx, "downstream_rq_3xx");
	C(rq_4xx, "downstream_rq_4xx");
	C(rq_5xx, "downstream_rq_5xx");
	s->rq_time = wf_stat_register(WF_STAT_HIST, "http", n, "downstream_rq_time");
	C(cx_total, "downstream_cx_total");
	G(cx_active, "downstream_cx_active");
	C(cx_http1_total, "downstream_cx_http1_total");
	C(cx_destroy, "downstream_cx_destroy");
	C(cx_protocol_error, "downstream_cx_protocol_error");
	G(rq_active, "downstream_rq_active");
	C(no_route, "no_route");
	C(rq_timeout, "downstream_rq_timeout");
	C(rx_reset, "downstream_rq_rx_reset");
	C(tx_reset, "downstream_rq_tx_reset");
	C(cx_idle_timeout, "downstream_cx_idle_timeout");
	C(rq_idle_timeout, "downstream_rq_idle_timeout");
	C(rq_header_timeout, "downstream_rq_header_timeout");
	C(no_cluster, "no_cluster");
	C(cx_upgrades_total, "downstream_cx_upgrades_total");
	G(cx_upgrades_active, "downstream_cx_upgrades_active");
	C(rq_ws_on_non_ws_route, "downstream_rq_ws_on_non_ws_route");
	C(cx_http2_total, "downstream_cx_http2_total");
	G(cx_http1_active, "downstream_cx_http1_active");
	G(cx_http2_active, "downstream_cx_http2_active");
	s->h2_abuse = wf_stat_register(WF_STAT_COUNTER, "http", n, "downstream_cx_http2_abuse");
	s->cx_length_ms = wf_stat_register(WF_STAT_HIST, "http", n, "downstream_cx_length_ms");
	/* Envoy's downstream HTTP/2 codec stats are rooted at "http2.", shared by every listener */
	s->h2_header_overflow = wf_stat_register(WF_STAT_COUNTER, "http2", NULL, "header_overflow");
#undef C
#undef G
}

/* upgrade_configs: the upgrade types this connection manager lets through (enabled defaults to
 * true). Custom filter chains per upgrade type (`filters`) are refused by unsupported.c. */
static int upgrade_configs(struct wf_compile *c, const Hcm *m, struct wf_hcm_cfg *h)
{
	h->upgrades = calloc(m->n_upgrade_configs, sizeof(*h->upgrades));
	for (size_t i = 0; i < m->n_upgrade_configs; i++) {
		const Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager__UpgradeConfig *u =
		    m->upgrade_configs[i];
		if (wf_compile_upgrade(c, u, u->upgrade_type, u->enabled ? u->enabled->value : 1, h->upgrades,
		                       &h->n_upgrades) < 0)
			return -1;
	}
	return 0;
}

static const RouteConfiguration no_routes = ENVOY__CONFIG__ROUTE__V3__ROUTE_CONFIGURATION__INIT;

/* A connection manager's rds: the RouteConfiguration of that name from the xDS client, with
 * its document. While it has not come the listener is warming (c->warming set, -1); after
 * initial_fetch_timeout it routes nothing (404) until it comes. */
static int rds(struct wf_compile *c, const Hcm *m, const RouteConfiguration **out, struct wf_cfgdoc **doc)
{
	const Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__Rds *r = m->rds;
	if (ads_source(c, r->config_source, r, "route_config_name", "rds") < 0)
		return -1;
	if (!r->route_config_name || !*r->route_config_name)
		return wf_cfg_err(c->doc, c->err, c->errlen, r, "route_config_name", "route_config_name is required");
	const struct wf_xds_res *res = wf_xds_set_find(c->xds, WF_XDS_RDS, r->route_config_name);
	if (!res && c->from_prev)
		res = wf_xds_set_find(c->prev, WF_XDS_RDS, r->route_config_name);
	if (res) {
		*out = (const RouteConfiguration *)wf_cfgdoc_root(res->doc);
		*doc = res->doc;
		wf_xds_set_put(c->snap->served, WF_XDS_RDS, res->name, res->version, wf_cfgdoc_ref(res->doc), res->hash);
		return refuse_pending_in(c, res->doc);
	}
	if (wf_xds_set_timed_out(c->xds, WF_XDS_RDS, r->route_config_name)) {
		*out = &no_routes;
		return 0;
	}
	c->warming = 1;
	return wf_cfg_err(c->doc, c->err, c->errlen, r, "route_config_name",
	                  "waiting for route configuration '%s' (RDS)", r->route_config_name);
}

static struct wf_hcm_cfg *hcm(struct wf_compile *c, const Hcm *m)
{
	struct wf_hcm_cfg *h = calloc(1, sizeof(*h));
	if (!m->stat_prefix || !*m->stat_prefix) {
		wf_cfg_err(c->doc, c->err, c->errlen, m, "stat_prefix", "stat_prefix is required");
		goto fail;
	}
	h->stat_prefix = strdup(m->stat_prefix);
	if (m->codec_type == ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__HTTP3) {
		wf_cfg_err(c->doc, c->err, c->errlen, m, "codec_type", "HTTP3 is not supported (AUTO, HTTP1 and HTTP2 are)");
		goto fail;
	}
	h->codec = m->codec_type == ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__HTTP2
	               ? WF_CODEC_HTTP2
	           : m->codec_type == ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__CODEC_TYPE__HTTP1
	               ? WF_CODEC_HTTP1
	               : WF_CODEC_AUTO;
	const RouteConfiguration *rc = m->route_config;
	struct wf_cfgdoc *rc_doc = c->doc;
	if (m->route_specifier_case == ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS) {
		if (rds(c, m, &rc, &rc_doc) < 0)
			goto fail;
	} else if (m->route_specifier_case != ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG) {
		wf_cfg_err(c->doc, c->err, c->errlen, m, NULL, "route_config or rds is required");
		goto fail;
	}
	if (wf_compile_http_filters(c, m, h) < 0)
		goto fail;
	c->chain = h->filters;
	c->n_chain = h->n_filters;
	c->stat_prefix = h->stat_prefix;
	struct wf_cfgdoc *own_doc = c->doc;
	c->doc = rc_doc; /* a route configuration from RDS is its own document */
	c->rds = rc_doc != own_doc;
	h->routes = wf_compile_routes(c, &rc->base);
	c->doc = own_doc;
	c->rds = 0;
	c->chain = NULL;
	c->n_chain = 0;
	if (!h->routes)
		goto fail;
	if (access_logs(c, m->n_access_log, m->access_log, &h->logs, &h->n_logs) < 0)
		goto fail;
	h->stream_idle_timeout_ms = m->stream_idle_timeout ? wf_duration_ms(m->stream_idle_timeout) : 300000;
	h->request_timeout_ms = wf_duration_ms(m->request_timeout);
	h->request_headers_timeout_ms = wf_duration_ms(m->request_headers_timeout);
	h->drain_timeout_ms = m->drain_timeout ? wf_duration_ms(m->drain_timeout) : 5000;
	h->idle_timeout_ms = 3600000;
	h->max_headers_count = 100;
	if (m->common_http_protocol_options) {
		const Envoy__Config__Core__V3__HttpProtocolOptions *o = m->common_http_protocol_options;
		if (o->idle_timeout)
			h->idle_timeout_ms = wf_duration_ms(o->idle_timeout);
		if (o->max_headers_count)
			h->max_headers_count = o->max_headers_count->value;
		if (o->max_requests_per_connection)
			h->max_requests_per_connection = o->max_requests_per_connection->value;
	}
	h->max_request_headers_kb = m->max_request_headers_kb ? m->max_request_headers_kb->value : 60;
	if (h->max_request_headers_kb < 1 || h->max_request_headers_kb > 8192) {
		wf_cfg_err(c->doc, c->err, c->errlen, m, "max_request_headers_kb", "must be 1..8192");
		goto fail;
	}
	if (wf_compile_h2_options(c, m->http2_protocol_options, &h->h2) < 0)
		goto fail;
	h->h2.lim.max_header_list = h->max_request_headers_kb * 1024;
	h->h2.lim.max_headers = h->max_headers_count;
	h->use_remote_address = m->use_remote_address ? m->use_remote_address->value : 0;
	h->xff_num_trusted_hops = m->xff_num_trusted_hops;
	h->skip_xff_append = m->skip_xff_append;
	h->generate_request_id = m->generate_request_id ? m->generate_request_id->value : 1;
	h->preserve_external_request_id = m->preserve_external_request_id;
	h->strip_any_host_port = m->strip_port_mode_case ? m->strip_any_host_port : 0;
	h->strip_matching_host_port = m->strip_matching_host_port;
	h->proxy_100_continue = m->proxy_100_continue;
	h->server_header_mode = (uint8_t)m->server_header_transformation;
	h->server_name = strdup(m->server_name && *m->server_name ? m->server_name : "envoy");
	h->via = m->via && *m->via ? strdup(m->via) : NULL;
	h->allow_absolute_url = 1;
	if (m->http_protocol_options) {
		const Envoy__Config__Core__V3__Http1ProtocolOptions *o = m->http_protocol_options;
		h->accept_http_10 = o->accept_http_10;
		h->enable_trailers = o->enable_trailers;
		if (o->allow_absolute_url)
			h->allow_absolute_url = o->allow_absolute_url->value;
		if (o->default_host_for_http_10 && *o->default_host_for_http_10) {
			if (!o->accept_http_10) {
				wf_cfg_err(c->doc, c->err, c->errlen, o, "default_host_for_http_10", "needs accept_http_10: true");
				goto fail;
			}
			h->default_host_10 = strdup(o->default_host_for_http_10);
		}
	}
	if (m->n_upgrade_configs && upgrade_configs(c, m, h) < 0)
		goto fail;
	hcm_stats(h);
	return h;
fail:
	wf_hcm_free(h);
	return NULL;
}

static struct wf_tcp_cfg *tcp(struct wf_compile *c, const TcpProxy *m)
{
	struct wf_tcp_cfg *t = calloc(1, sizeof(*t));
	if (!m->stat_prefix || !*m->stat_prefix) {
		wf_cfg_err(c->doc, c->err, c->errlen, m, "stat_prefix", "stat_prefix is required");
		goto fail;
	}
	t->stat_prefix = strdup(m->stat_prefix);
	if (m->cluster_specifier_case == ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_CLUSTER) {
		t->cluster = wf_compile_find_cluster(c, m, "cluster", m->cluster);
		if (!t->cluster)
			goto fail;
	} else if (m->cluster_specifier_case == ENVOY__EXTENSIONS__FILTERS__NETWORK__TCP_PROXY__V3__TCP_PROXY__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS) {
		const Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy__WeightedCluster *wc = m->weighted_clusters;
		t->weighted = calloc(wc->n_clusters + 1, sizeof(*t->weighted));
		for (size_t i = 0; i < wc->n_clusters; i++) {
			t->weighted[i].cluster = wf_compile_find_cluster(c, wc->clusters[i], "name", wc->clusters[i]->name);
			if (!t->weighted[i].cluster)
				goto fail;
			t->weighted[i].weight = wc->clusters[i]->weight;
			t->total_weight += wc->clusters[i]->weight;
			t->n_weighted++;
		}
		if (!t->total_weight) {
			wf_cfg_err(c->doc, c->err, c->errlen, wc, "clusters", "the weights add up to 0");
			goto fail;
		}
	} else {
		wf_cfg_err(c->doc, c->err, c->errlen, m, NULL, "tcp_proxy needs cluster or weighted_clusters");
		goto fail;
	}
	t->idle_timeout_ms = m->idle_timeout ? wf_duration_ms(m->idle_timeout) : 3600000;
	t->max_connect_attempts = m->max_connect_attempts ? m->max_connect_attempts->value : 1;
	if (!t->max_connect_attempts) {
		wf_cfg_err(c->doc, c->err, c->errlen, m, "max_connect_attempts", "must be at least 1");
		goto fail;
	}
	if (access_logs(c, m->n_access_log, m->access_log, &t->logs, &t->n_logs) < 0)
		goto fail;
	t->st_cx_total = wf_stat_register(WF_STAT_COUNTER, "tcp", t->stat_prefix, "downstream_cx_total");
	t->st_cx_active = wf_stat_register(WF_STAT_GAUGE, "tcp", t->stat_prefix, "downstream_cx_active");
	t->st_rx_bytes = wf_stat_register(WF_STAT_COUNTER, "tcp", t->stat_prefix, "downstream_cx_rx_bytes_total");
	t->st_tx_bytes = wf_stat_register(WF_STAT_COUNTER, "tcp", t->stat_prefix, "downstream_cx_tx_bytes_total");
	t->st_idle_timeout = wf_stat_register(WF_STAT_COUNTER, "tcp", t->stat_prefix, "idle_timeout");
	return t;
fail:
	wf_tcp_free(t);
	return NULL;
}

#define INSPECTOR_NAME "envoy.filters.listener.tls_inspector"
#define INSPECTOR_TYPE "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
#define MAX_CHAINS 256

typedef Envoy__Config__Listener__V3__FilterChain FilterChain;
typedef Envoy__Config__Listener__V3__FilterChainMatch FilterChainMatch;

/* A filter chain's network filter and transport socket, into ch (kind, hcm or tcp, tls). */
static int chain_filters(struct wf_compile *c, const FilterChain *fc, struct wf_listener *ch, const char *label)
{
	if (fc->n_filters != 1)
		return wf_cfg_err(c->doc, c->err, c->errlen, fc, "filters",
		                  "a filter chain needs exactly one network filter: http_connection_manager or tcp_proxy");
	const Envoy__Config__Listener__V3__Filter *f = fc->filters[0];
	if (f->config_type_case != ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG)
		return wf_cfg_err(c->doc, c->err, c->errlen, f, "typed_config", "typed_config is required");
	ProtobufCMessage *in = wf_cfgdoc_any(c->doc, &f->typed_config->base, c->err, c->errlen);
	if (!in)
		return -1;
	if (wf_compile_transport_socket(c, fc->transport_socket, 1, "listener", label, &ch->tls) < 0)
		return -1;
	if (!strcmp(in->descriptor->name, HCM_TYPE)) {
		ch->kind = WF_NF_HCM;
		if (!(ch->hcm = hcm(c, (const Hcm *)in)))
			return -1;
	} else if (!strcmp(in->descriptor->name, TCP_TYPE)) {
		ch->kind = WF_NF_TCP;
		if (!(ch->tcp = tcp(c, (const TcpProxy *)in)))
			return -1;
	} else {
		return wf_cfg_err(c->doc, c->err, c->errlen, f, "typed_config",
		                  "network filter %s is not supported here (http_connection_manager, tcp_proxy)",
		                  in->descriptor->name);
	}
	return 0;
}

static char **lower_strs(char **v, size_t n)
{
	char **out = calloc(n ? n : 1, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		out[i] = strdup(v[i]);
		for (char *p = out[i]; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p + 32);
	}
	return out;
}

/* One chain of a matching listener: the parent's identity, its own filters and match. Says
 * whether its match needs the TLS inspector (*needs_inspector). */
static int chain(struct wf_compile *c, const FilterChain *fc, const struct wf_listener *l, struct wf_listener *ch,
                 const char *label, int *needs_inspector)
{
	ch->is_chain = 1;
	ch->name = l->name;
	ch->addr = l->addr;
	memcpy(ch->addr_str, l->addr_str, sizeof(ch->addr_str));
	ch->buffer_limit = l->buffer_limit;
	ch->ipv4_compat = l->ipv4_compat;
	ch->st_cx_total = l->st_cx_total;
	ch->st_cx_active = l->st_cx_active;
	ch->st_cx_destroy = l->st_cx_destroy;
	if (fc->name && *fc->name)
		ch->chain_name = strdup(fc->name);
	const FilterChainMatch *m = fc->filter_chain_match;
	if (m) {
		for (size_t i = 0; i < m->n_server_names; i++) {
			const char *sn = m->server_names[i];
			if (!*sn || (strchr(sn, '*') && (sn[0] != '*' || sn[1] != '.' || strchr(sn + 1, '*'))))
				return wf_cfg_err(c->doc, c->err, c->errlen, m, "server_names",
				                  "'%s': a name, or a wildcard of the form *.example.com", sn);
		}
		ch->server_names = lower_strs(m->server_names, m->n_server_names);
		ch->n_server_names = (uint32_t)m->n_server_names;
		ch->alpn = lower_strs(m->application_protocols, m->n_application_protocols);
		ch->n_alpn = (uint32_t)m->n_application_protocols;
		const char *tp = m->transport_protocol ? m->transport_protocol : "";
		if (!strcmp(tp, "tls"))
			ch->transport = WF_TP_TLS;
		else if (!strcmp(tp, "raw_buffer"))
			ch->transport = WF_TP_RAW;
		else if (*tp)
			return wf_cfg_err(c->doc, c->err, c->errlen, m, "transport_protocol",
			                  "'%s': tls or raw_buffer", tp);
		if (ch->n_server_names || ch->n_alpn || ch->transport == WF_TP_TLS)
			*needs_inspector = 1;
	}
	return chain_filters(c, fc, ch, label);
}

static int subset(char **a, uint32_t na, char **b, uint32_t nb)
{
	for (uint32_t i = 0; i < na; i++) {
		uint32_t k = 0;
		while (k < nb && strcmp(a[i], b[k]))
			k++;
		if (k == nb)
			return 0;
	}
	return 1;
}

static int same_set(char **a, uint32_t na, char **b, uint32_t nb)
{
	return subset(a, na, b, nb) && subset(b, nb, a, na);
}

/* As Envoy: two chains with the same match would make the second unreachable. */
static int distinct_matches(struct wf_compile *c, const Listener *m, const struct wf_listener *l)
{
	for (uint32_t i = 0; i < l->n_chains; i++)
		for (uint32_t k = 0; k < i; k++) {
			const struct wf_listener *a = &l->chains[k], *b = &l->chains[i];
			if (a->transport == b->transport && same_set(a->server_names, a->n_server_names, b->server_names,
			                                             b->n_server_names) &&
			    same_set(a->alpn, a->n_alpn, b->alpn, b->n_alpn))
				return wf_cfg_err(c->doc, c->err, c->errlen, m->filter_chains[i], "filter_chain_match",
				                  "filter chains %u and %u have the same filter_chain_match", k, i);
		}
	return 0;
}

static int listener_filters(struct wf_compile *c, const Listener *m, struct wf_listener *l)
{
	for (size_t i = 0; i < m->n_listener_filters; i++) {
		const Envoy__Config__Listener__V3__ListenerFilter *f = m->listener_filters[i];
		const char *type = NULL;
		if (f->config_type_case == ENVOY__CONFIG__LISTENER__V3__LISTENER_FILTER__CONFIG_TYPE_TYPED_CONFIG) {
			ProtobufCMessage *in = wf_cfgdoc_any(c->doc, &f->typed_config->base, c->err, c->errlen);
			if (!in)
				return -1;
			type = in->descriptor->name;
		}
		if (type ? strcmp(type, INSPECTOR_TYPE) : strcmp(f->name ? f->name : "", INSPECTOR_NAME))
			return wf_cfg_err(c->doc, c->err, c->errlen, f, type ? "typed_config" : "name",
			                  "listener filter %s is not supported yet (" INSPECTOR_NAME " is)",
			                  type ? type : f->name ? f->name : "");
		l->inspect = 1;
	}
	l->inspect_timeout_ms = m->listener_filters_timeout ? wf_duration_ms(m->listener_filters_timeout) : 15000;
	l->continue_on_timeout = m->continue_on_listener_filters_timeout;
	return 0;
}

static int listener(struct wf_compile *c, const Listener *m, struct wf_listener *l)
{
	if (!m->name || !*m->name)
		return wf_cfg_err(c->doc, c->err, c->errlen, m, "name", "a listener needs a name");
	l->name = strdup(m->name);
	for (uint32_t i = 0; i + 1 < c->snap->n_listeners + 1 && &c->snap->listeners[i] != l; i++)
		if (!strcmp(c->snap->listeners[i].name, m->name))
			return wf_cfg_err(c->doc, c->err, c->errlen, m, "name", "listener '%s' is defined twice", m->name);
	if (socket_address_(c, m->address, m, "address", &l->addr, 1) < 0)
		return -1;
	wf_addr_str(&l->addr, l->addr_str, sizeof(l->addr_str));
	l->buffer_limit = m->per_connection_buffer_limit_bytes ? m->per_connection_buffer_limit_bytes->value : 1024 * 1024;
	if (l->buffer_limit < 4096)
		return wf_cfg_err(c->doc, c->err, c->errlen, m, "per_connection_buffer_limit_bytes", "must be at least 4096");
	l->ipv4_compat = m->address->socket_address->ipv4_compat;
	if (listener_filters(c, m, l) < 0)
		return -1;
	char label[80];
	snprintf(label, sizeof(label), "%s", m->stat_prefix && *m->stat_prefix ? m->stat_prefix : l->addr_str);
	for (char *p = label; *p; p++)
		if (*p == ':' || *p == '[' || *p == ']')
			*p = '_';
	l->st_cx_total = wf_stat_register(WF_STAT_COUNTER, "listener", label, "downstream_cx_total");
	l->st_cx_active = wf_stat_register(WF_STAT_GAUGE, "listener", label, "downstream_cx_active");
	l->st_cx_destroy = wf_stat_register(WF_STAT_COUNTER, "listener", label, "downstream_cx_destroy");
	if (!m->n_filter_chains && !m->default_filter_chain)
		return wf_cfg_err(c->doc, c->err, c->errlen, m, "filter_chains", "a listener needs a filter chain");
	if (m->n_filter_chains > MAX_CHAINS)
		return wf_cfg_err(c->doc, c->err, c->errlen, m, "filter_chains", "at most %d filter chains", MAX_CHAINS);
	/* One chain that matches everything, no inspector: the listener is the chain. */
	if (m->n_filter_chains == 1 && !m->filter_chains[0]->filter_chain_match && !m->default_filter_chain && !l->inspect)
		return chain_filters(c, m->filter_chains[0], l, label);
	l->kind = WF_NF_MATCH;
	l->st_no_chain_match = wf_stat_register(WF_STAT_COUNTER, "listener", label, "no_filter_chain_match");
	l->st_pre_cx_timeout = wf_stat_register(WF_STAT_COUNTER, "listener", label, "downstream_pre_cx_timeout");
	l->chains = calloc(m->n_filter_chains ? m->n_filter_chains : 1, sizeof(*l->chains));
	int needs_inspector = 0;
	for (size_t i = 0; i < m->n_filter_chains; i++) {
		l->n_chains++;
		if (chain(c, m->filter_chains[i], l, &l->chains[i], label, &needs_inspector) < 0)
			return -1;
	}
	if (m->default_filter_chain) {
		l->default_chain = calloc(1, sizeof(*l->default_chain));
		if (m->default_filter_chain->filter_chain_match)
			return wf_cfg_err(c->doc, c->err, c->errlen, m->default_filter_chain, "filter_chain_match",
			                  "the default filter chain has no filter_chain_match");
		if (chain(c, m->default_filter_chain, l, l->default_chain, label, &needs_inspector) < 0)
			return -1;
	}
	if (distinct_matches(c, m, l) < 0)
		return -1;
	/* As Envoy, a listener whose chains match on SNI, ALPN or TLS gets the inspector itself. */
	if (needs_inspector)
		l->inspect = 1;
	return 0;
}

/* ---- the whole bootstrap ----------------------------------------------------------------- */

/* dynamic_resources: ADS to a static cluster (the management server), LDS and CDS over it. */
static int dynamic_resources(struct wf_compile *c, const Bootstrap *b)
{
	const Envoy__Config__Bootstrap__V3__DynamicResources *d = b->dynamic_resources;
	const Envoy__Config__Core__V3__ApiConfigSource *a = d->ads_config;
	if (!a)
		return wf_cfg_err(c->doc, c->err, c->errlen, d, "ads_config",
		                  "ads_config is required (Weft takes xDS over one ADS stream)");
	struct wf_ads_cfg *ac = c->snap->ads;
	switch (a->api_type) {
	case ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__GRPC:
	case ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__AGGREGATED_GRPC: break;
	case ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__DELTA_GRPC:
	case ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__AGGREGATED_DELTA_GRPC: ac->delta = 1; break;
	default:
		return wf_cfg_err(c->doc, c->err, c->errlen, a, "api_type",
		                  "api_type %s is not supported (GRPC, AGGREGATED_GRPC, DELTA_GRPC, AGGREGATED_DELTA_GRPC)",
		                  protobuf_c_enum_descriptor_get_value(
		                      &envoy__config__core__v3__api_config_source__api_type__descriptor, a->api_type)->name);
	}
	if (a->transport_api_version != ENVOY__CONFIG__CORE__V3__API_VERSION__V3)
		return wf_cfg_err(c->doc, c->err, c->errlen, a, "transport_api_version",
		                  "transport_api_version must be V3 (the only xDS version there is now)");
	if (a->n_cluster_names)
		return wf_cfg_err(c->doc, c->err, c->errlen, a, "cluster_names",
		                  "cluster_names is for REST config sources: name the cluster in grpc_services[0].envoy_grpc");
	if (a->refresh_delay)
		return wf_cfg_err(c->doc, c->err, c->errlen, a, "refresh_delay", "refresh_delay is for REST config sources");
	if (a->n_grpc_services != 1)
		return wf_cfg_err(c->doc, c->err, c->errlen, a, "grpc_services",
		                  "exactly one grpc_services entry is needed (envoy_grpc: {cluster_name: ...})");
	const Envoy__Config__Core__V3__GrpcService *g = a->grpc_services[0];
	if (g->target_specifier_case != ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC ||
	    !g->envoy_grpc->cluster_name || !*g->envoy_grpc->cluster_name)
		return wf_cfg_err(c->doc, c->err, c->errlen, g, "envoy_grpc", "envoy_grpc.cluster_name is required");
	const struct wf_cluster *xc = wf_compile_find_cluster(c, g->envoy_grpc, "cluster_name", g->envoy_grpc->cluster_name);
	if (!xc)
		return -1;
	if (xc->protocol != WF_UP_HTTP2)
		return wf_cfg_err(c->doc, c->err, c->errlen, g->envoy_grpc, "cluster_name",
		                  "cluster '%s' must speak HTTP/2 for gRPC: give it typed_extension_protocol_options "
		                  "with explicit_http_config.http2_protocol_options",
		                  xc->name);
	ac->cluster = strdup(xc->name);
	ac->authority = strdup(g->envoy_grpc->authority && *g->envoy_grpc->authority ? g->envoy_grpc->authority : xc->name);
	ac->node_first_only = a->set_node_on_first_message_only;
	ac->lds_timeout_ms = ac->cds_timeout_ms = 15000;
	const ConfigSource *srcs[2] = {d->lds_config, d->cds_config};
	const char *names[2] = {"lds_config", "cds_config"};
	for (int i = 0; i < 2; i++) {
		if (!srcs[i])
			continue;
		if (ads_source(c, srcs[i], d, names[i], names[i]) < 0)
			return -1;
		uint64_t ms = srcs[i]->initial_fetch_timeout ? wf_duration_ms(srcs[i]->initial_fetch_timeout) : 15000;
		*(i ? &ac->cds_timeout_ms : &ac->lds_timeout_ms) = ms;
		*(i ? &ac->cds : &ac->lds) = 1;
	}
	if (b->node) {
		ac->node_len = protobuf_c_message_get_packed_size(&b->node->base);
		ac->node = malloc(ac->node_len + 1);
		protobuf_c_message_pack(&b->node->base, ac->node);
	}
	return 0;
}

/* The index slot of a cluster name: where it is, or the empty one where it would go. The index
 * is sized for every cluster the config can have (at most half full). */
static uint32_t *cluster_slot(const struct wf_snapshot *s, const char *name)
{
	uint32_t m = s->cluster_index_cap - 1;
	for (uint32_t i = (uint32_t)wf_xxh64(name, strlen(name), 0) & m;; i = (i + 1) & m)
		if (!s->cluster_index[i] || !strcmp(s->clusters[s->cluster_index[i] - 1]->name, name))
			return &s->cluster_index[i];
}

/* One cluster into the next slot: 0, or -1. An EDS cluster whose endpoints have not come is
 * left out (warming). */
static int add_cluster(struct wf_compile *c, const Cluster *m)
{
	struct wf_snapshot *s = c->snap;
	struct wf_cluster *cl = cluster(c, m);
	if (!cl && c->warming) {
		c->warming = 0;
		s->n_warming++;
		return 0;
	}
	if (!cl)
		return -1;
	cl->index = s->n_clusters;
	s->clusters[s->n_clusters++] = cl;
	*cluster_slot(s, cl->name) = s->n_clusters;
	return 0;
}

static void listener_free(struct wf_listener *l);

/* One listener into the next slot: 0, or -1. A listener whose route configuration has not
 * come is left out (warming). */
static int add_listener(struct wf_compile *c, const Listener *m)
{
	struct wf_snapshot *s = c->snap;
	struct wf_listener *l = &s->listeners[s->n_listeners++];
	if (listener(c, m, l) < 0) {
		if (!c->warming)
			return -1;
		c->warming = 0;
		listener_free(l);
		memset(l, 0, sizeof(*l));
		s->n_listeners--;
		s->n_warming++;
		return 0;
	}
	for (uint32_t k = 0; k + 1 < s->n_listeners; k++)
		if (wf_addr_eq(&s->listeners[k].addr, &l->addr))
			return wf_cfg_err(c->doc, c->err, c->errlen, m, "address", "listeners '%s' and '%s' have the same address",
			                  s->listeners[k].name, l->name);
	return 0;
}

/* An xDS cluster or listener, compiled with its own document (errors name it). While an update
 * of it warms (its endpoints or routes have not come), the version being served stays, as
 * Envoy keeps an active listener until its replacement is warm. */
static int add_xds(struct wf_compile *c, enum wf_xds_type t, const struct wf_xds_res *r)
{
	uint32_t warming = c->snap->n_warming;
	if (refuse_pending_in(c, r->doc) < 0)
		return -1;
	c->doc = r->doc;
	int rc = t == WF_XDS_CDS ? add_cluster(c, (const Cluster *)wf_cfgdoc_root(r->doc))
	                         : add_listener(c, (const Listener *)wf_cfgdoc_root(r->doc));
	int warm = c->snap->n_warming > warming;
	const struct wf_xds_res *old = rc == 0 && warm ? wf_xds_set_find(c->prev, t, r->name) : NULL;
	const struct wf_xds_res *used = rc == 0 && !warm ? r : NULL;
	if (old && old->doc != r->doc) {
		uint32_t before = c->snap->n_warming;
		c->doc = old->doc;
		c->from_prev = 1; /* and the routes or endpoints it had, even if nothing else uses them now */
		rc = t == WF_XDS_CDS ? add_cluster(c, (const Cluster *)wf_cfgdoc_root(old->doc))
		                     : add_listener(c, (const Listener *)wf_cfgdoc_root(old->doc));
		c->from_prev = 0;
		used = rc == 0 && c->snap->n_warming == before ? old : NULL;
	}
	if (used)
		wf_xds_set_put(c->snap->served, t, used->name, used->version, wf_cfgdoc_ref(used->doc), used->hash);
	return rc;
}

static int bootstrap(struct wf_compile *c, const Bootstrap *b)
{
	struct wf_snapshot *s = c->snap;
	const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = b->static_resources;
	const struct wf_xds_set *x = c->xds;
	size_t n_cl = (sr ? sr->n_clusters : 0) + (x ? x->n[WF_XDS_CDS] : 0);
	size_t n_li = (sr ? sr->n_listeners : 0) + (x ? x->n[WF_XDS_LDS] : 0);
	s->clusters = calloc(n_cl + 1, sizeof(*s->clusters));
	for (s->cluster_index_cap = 16; s->cluster_index_cap < 2 * (n_cl + 1);)
		s->cluster_index_cap *= 2;
	s->cluster_index = calloc(s->cluster_index_cap, sizeof(*s->cluster_index));
	s->listeners = calloc(n_li + 1, sizeof(*s->listeners));
	if (b->dynamic_resources) /* filled in below; static EDS clusters check that it is there */
		s->ads = calloc(1, sizeof(*s->ads));
	for (size_t i = 0; sr && i < sr->n_clusters; i++)
		if (add_cluster(c, sr->clusters[i]) < 0)
			return -1;
	if (b->dynamic_resources && dynamic_resources(c, b) < 0)
		return -1;
	/* each xDS resource is compiled with its own document, so that errors name it */
	struct wf_cfgdoc *own = c->doc;
	int r = 0;
	for (uint32_t i = 0; x && r == 0 && i < x->n[WF_XDS_CDS]; i++)
		r = add_xds(c, WF_XDS_CDS, &x->res[WF_XDS_CDS][i]);
	for (size_t i = 0; sr && r == 0 && i < sr->n_listeners; i++)
		r = add_listener(c, sr->listeners[i]);
	for (uint32_t i = 0; x && r == 0 && i < x->n[WF_XDS_LDS]; i++)
		r = add_xds(c, WF_XDS_LDS, &x->res[WF_XDS_LDS][i]);
	c->doc = own;
	if (r < 0)
		return -1;
	if (b->admin) {
		const Envoy__Config__Bootstrap__V3__Admin *a = b->admin;
		if (a->address) {
			if (wf_compile_socket_address(c, a->address, a, "address", &s->admin_addr) < 0)
				return -1;
			s->has_admin = 1;
		}
		if (a->access_log_path && *a->access_log_path)
			return wf_cfg_err(c->doc, c->err, c->errlen, a, "access_log_path",
			                  "access_log_path is deprecated and not supported: use access_log");
		if (a->profile_path && *a->profile_path)
			return wf_cfg_err(c->doc, c->err, c->errlen, a, "profile_path", "profiling is not supported");
		/* the admin server runs on the main thread: its log buffer is the one after the workers' */
		c->log_slots = s->n_workers + 1;
		int r = access_logs(c, a->n_access_log, a->access_log, &s->admin_logs, &s->n_admin_logs);
		c->log_slots = 0;
		if (r < 0)
			return -1;
	}
	return 0;
}

/* Compile a decoded document (taking over the caller's reference to it). */
static struct wf_snapshot *compile_doc(struct wf_cfgdoc *doc, const char *file, unsigned n_workers,
                                       struct wf_xds_set *xds, const struct wf_xds_set *prev, char *err,
                                       size_t errlen)
{
	struct wf_snapshot *s = calloc(1, sizeof(*s));
	s->refs = 1;
	s->n_workers = n_workers;
	s->doc = doc;
	s->source = strdup(file);
	s->loaded_wall_s = (uint64_t)time(NULL);
	s->xds = wf_xds_set_ref(xds);
	s->served = wf_xds_set_new();
	struct wf_compile c = {.doc = doc, .snap = s, .err = err, .errlen = errlen, .xds = xds, .prev = prev};
	wf_stats_record(&s->stats);
	int r = wf_compile_refuse_pending(&c, wf_cfgdoc_root(doc)) < 0 ||
	        bootstrap(&c, (const Bootstrap *)wf_cfgdoc_root(doc)) < 0;
	wf_stats_record(NULL);
	if (r) {
		wf_snapshot_free(s);
		return NULL;
	}
	return s;
}

struct wf_snapshot *wf_config_load(const char *file, unsigned n_workers, char *err, size_t errlen)
{
	struct wf_cfgdoc *doc = wf_cfgdoc_new(file);
	if (wf_yaml_load_file(doc, &envoy__config__bootstrap__v3__bootstrap__descriptor, err, errlen) < 0) {
		wf_cfgdoc_free(doc);
		return NULL;
	}
	return compile_doc(doc, file, n_workers, NULL, NULL, err, errlen);
}

struct wf_snapshot *wf_config_rebuild(const struct wf_snapshot *from, char *err, size_t errlen)
{
	return compile_doc(wf_cfgdoc_ref(from->doc), from->source, from->n_workers, from->xds, from->served, err, errlen);
}

struct wf_snapshot *wf_config_with_xds(const struct wf_snapshot *base, struct wf_xds_set *xds, char *err,
                                       size_t errlen)
{
	return compile_doc(wf_cfgdoc_ref(base->doc), base->source, base->n_workers, xds, base->served, err, errlen);
}

struct wf_cluster *wf_snapshot_cluster(const struct wf_snapshot *s, const char *name)
{
	if (!s->cluster_index_cap)
		return NULL;
	uint32_t k = *cluster_slot(s, name);
	return k ? s->clusters[k - 1] : NULL;
	return NULL;
}

static void free_logs(struct wf_alog **logs, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		wf_alog_free(logs[i]);
	free(logs);
}

void wf_hcm_free(struct wf_hcm_cfg *h)
{
	if (!h)
		return;
	wf_route_table_free(h->routes);
	wf_http_filters_free(h);
	free_logs(h->logs, h->n_logs);
	free(h->stat_prefix);
	free(h->server_name);
	free(h->via);
	free(h->default_host_10);
	for (uint32_t i = 0; i < h->n_upgrades; i++)
		free(h->upgrades[i].type);
	free(h->upgrades);
	free(h);
}

void wf_tcp_free(struct wf_tcp_cfg *t)
{
	if (!t)
		return;
	free(t->weighted);
	free_logs(t->logs, t->n_logs);
	free(t->stat_prefix);
	free(t);
}

static void strs_free(char **v, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* What a listener or one of its chains owns (a chain shares its parent's name). */
static void listener_parts_free(struct wf_listener *l)
{
	wf_hcm_free(l->hcm);
	wf_tcp_free(l->tcp);
	wf_tls_cfg_free(l->tls);
	strs_free(l->server_names, l->n_server_names);
	strs_free(l->alpn, l->n_alpn);
	free(l->chain_name);
}

static void listener_free(struct wf_listener *l)
{
	for (uint32_t k = 0; k < l->n_chains; k++)
		listener_parts_free(&l->chains[k]);
	free(l->chains);
	if (l->default_chain)
		listener_parts_free(l->default_chain);
	free(l->default_chain);
	listener_parts_free(l);
	free(l->name);
}

void wf_snapshot_free(struct wf_snapshot *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->n_listeners; i++)
		listener_free(&s->listeners[i]);
	free(s->listeners);
	if (s->ads) {
		free(s->ads->cluster);
		free(s->ads->authority);
		free(s->ads->node);
		free(s->ads);
	}
	wf_xds_set_unref(s->xds);
	wf_xds_set_unref(s->served);
	for (uint32_t i = 0; i < s->n_clusters; i++)
		cluster_free(s->clusters[i], s->n_workers);
	free(s->clusters);
	free(s->cluster_index);
	free_logs(s->admin_logs, s->n_admin_logs);
	wf_cfgdoc_free(s->doc);
	free(s->source);
	strs_free(s->tls_files, s->n_tls_files);
	wf_stats_rec_release(&s->stats);
	free(s);
}
