/* The admin server (Envoy's paths), on the main thread's loop. One request per connection:
 * admin traffic is rare and small, so simplicity wins over keep-alive. */
#include "proxy/admin.h"

#include "core/log.h"
#include "core/str.h"
#include "http/h1.h"
#include "proxy/ads.h"
#include "proxy/ads_set.h"
#include "proxy/alog.h"
#include "proxy/stats.h"
#include "proxy/worker.h"
#include "xds/cfgdoc.h"
#include "xds/json.h"
#include "xds/registry.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct aconn {
	struct wf_io io;
	uint64_t start_us, start_wall_us;
	char remote[64], local[64];
	struct wf_timer t;
	struct wf_defer defer;
	struct wf_admin *a;
	char buf[16384];
	const struct wf_h1_req *req;  /* while the request is being answered */
	size_t n;
	char *out;
	size_t out_len, out_off;
	int dead;
};

int wf_health_failing;

static void aconn_free(struct wf_defer *d)
{
	struct aconn *c = (struct aconn *)((char *)d - offsetof(struct aconn, defer));
	free(c->out);
	free(c);
}

static void aconn_close(struct aconn *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	wf_timer_cancel(c->a->loop, &c->t);
	wf_io_del(c->a->loop, &c->io);
	close(c->io.fd);
	c->defer.cb = aconn_free;
	wf_loop_defer(c->a->loop, &c->defer);
}

static void log_request(struct aconn *c, const struct wf_h1_req *q, int code, size_t n);

static void respond(struct aconn *c, int code, const char *ctype, const char *body, size_t n)
{
	if (c->req)
		log_request(c, c->req, code, n);
	char head[256];
	const char *txt = code == 200 ? "OK" : code == 404 ? "Not Found" : code == 405 ? "Method Not Allowed" :
	                  code == 503 ? "Service Unavailable" : "Bad Request";
	int hl = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
	                  "cache-control: no-cache, max-age=0\r\nx-content-type-options: nosniff\r\n"
	                  "connection: close\r\n\r\n", code, txt, ctype, n);
	c->out = malloc((size_t)hl + n);
	memcpy(c->out, head, (size_t)hl);
	memcpy(c->out + hl, body, n);
	c->out_len = (size_t)hl + n;
	c->out_off = 0;
	wf_io_set(c->a->loop, &c->io, EPOLLOUT);
}

static void respond_j(struct aconn *c, int code, const char *ctype, struct wf_jbuf *b)
{
	respond(c, code, ctype, b->p ? b->p : "", b->len);
	free(b->p);
}

/* The percent-decoded value of query parameter `name` ("" when absent). */
static void query_param(const char *qs, size_t qn, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name), k = 0;
	const char *f = NULL;
	for (size_t i = 0; i + nl + 1 <= qn; i++)
		if ((i == 0 || qs[i - 1] == '&') && !memcmp(qs + i, name, nl) && qs[i + nl] == '=') {
			f = qs + i + nl + 1;
			break;
		}
	while (f && f < qs + qn && *f != '&' && k + 1 < outlen) {
		int hi, lo;
		if (*f == '%' && f + 2 < qs + qn + 1 && (hi = wf_hex_digit(f[1])) >= 0 && (lo = wf_hex_digit(f[2])) >= 0) {
			out[k++] = (char)(hi * 16 + lo);
			f += 3;
		} else {
			out[k++] = *f == '+' ? ' ' : *f;
			f++;
		}
	}
	out[k] = 0;
}

static int has_query(const char *q, size_t qn, const char *kv)
{
	size_t l = strlen(kv);
	for (size_t i = 0; i + l <= qn; i++)
		if ((i == 0 || q[i - 1] == '&') && !memcmp(q + i, kv, l) && (i + l == qn || q[i + l] == '&'))
			return 1;
	return 0;
}

/* {"@type": URL, ...the message's fields} — how Envoy shows resources in /config_dump. */
static void typed_message(struct wf_jbuf *b, const ProtobufCMessage *m)
{
	struct wf_jbuf t = {0};
	wf_json_message(&t, m, -1);
	wf_jbuf_printf(b, "{\"@type\":\"%s%s\"", WF_TYPE_URL_PREFIX, m->descriptor->name);
	if (t.p && t.len > 2)
		wf_jbuf_printf(b, ",%s", t.p + 1);
	else
		wf_jbuf_puts(b, "}");
	free(t.p);
}

static void utc(uint64_t wall_s, char *ts, size_t n)
{
	time_t t = (time_t)wall_s;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(ts, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ,"error_state":{...} (Envoy's UpdateFailureState) when the last update of type t was refused
 * because of resource `name`. */
static void error_state(struct wf_jbuf *b, enum wf_xds_type t, const char *name)
{
	const struct wf_ads_rejection *r = wf_ads_rejected(t);
	if (!r || strcmp(r->name, name))
		return;
	char ts[64];
	utc(r->wall_s, ts, sizeof(ts));
	wf_jbuf_puts(b, ",\"error_state\":{\"details\":");
	wf_jbuf_put_jstr(b, r->details, strlen(r->details));
	wf_jbuf_puts(b, ",\"version_info\":");
	wf_jbuf_put_jstr(b, r->version, strlen(r->version));
	wf_jbuf_printf(b, ",\"last_update_attempt\":\"%s\"}", ts);
}

/* {"version_info":..., "<key>": resource, "last_updated":...} of one xDS resource. */
static void resource_state(struct wf_jbuf *b, enum wf_xds_type t, const struct wf_xds_res *r)
{
	static const char *const key[WF_XDS_NTYPES] = {"cluster", "endpoint_config", "listener", "route_config"};
	char ts[64];
	utc(r->updated_wall_s, ts, sizeof(ts));
	wf_jbuf_puts(b, "\"version_info\":");
	wf_jbuf_put_jstr(b, r->version, strlen(r->version));
	wf_jbuf_printf(b, ",\"%s\":", key[t]);
	typed_message(b, wf_cfgdoc_root(r->doc));
	wf_jbuf_printf(b, ",\"last_updated\":\"%s\"", ts);
}

/* The xDS resources of type t in Envoy's layout, after the type's version_info:
 *   listeners  "dynamic_listeners": [{name, active_state, warming_state, error_state}]
 *   clusters   "dynamic_active_clusters" and "dynamic_warming_clusters": [{version_info,
 *              cluster, last_updated, error_state}]
 *   routes, endpoints  "dynamic_route_configs" / "dynamic_endpoint_configs"
 * Active is the version the served snapshot compiled; warming, a newer one it could not use
 * yet (its routes or endpoints have not come). */
static void dynamic_dump(struct wf_jbuf *b, const struct wf_snapshot *s, enum wf_xds_type t)
{
	const struct wf_xds_set *x = wf_ads_resources();
	if (!x)
		return;
	if (x->version[t] && (t == WF_XDS_CDS || t == WF_XDS_LDS)) { /* routes and endpoints: per config */
		wf_jbuf_puts(b, ",\"version_info\":");
		wf_jbuf_put_jstr(b, x->version[t], strlen(x->version[t]));
	}
	const struct wf_xds_set *served = s ? s->served : NULL;
	static const char *const lists[WF_XDS_NTYPES] = {"dynamic_active_clusters", "dynamic_endpoint_configs",
	                                                 "dynamic_listeners", "dynamic_route_configs"};
	for (int warming = 0; warming < 2; warming++) {
		if (warming && t != WF_XDS_CDS)
			break;
		wf_jbuf_printf(b, ",\"%s\":[", warming ? "dynamic_warming_clusters" : lists[t]);
		int first = 1;
		for (uint32_t i = 0; i < x->n[t]; i++) {
			const struct wf_xds_res *r = &x->res[t][i];
			const struct wf_xds_res *act = wf_xds_set_find(served, t, r->name);
			const struct wf_xds_res *warm = act && act->doc == r->doc ? NULL : r;
			if (!warm)
				act = r; /* the same resource: its latest version_info */
			if (t == WF_XDS_RDS || t == WF_XDS_EDS)
				act = r, warm = NULL; /* used as they come */
			if (t == WF_XDS_CDS && !(warming ? warm : act))
				continue;
			wf_jbuf_puts(b, first ? "{" : ",{");
			first = 0;
			if (t == WF_XDS_LDS) {
				wf_jbuf_puts(b, "\"name\":");
				wf_jbuf_put_jstr(b, r->name, strlen(r->name));
				if (act) {
					wf_jbuf_puts(b, ",\"active_state\":{");
					resource_state(b, t, act);
					wf_jbuf_puts(b, "}");
				}
				if (warm) {
					wf_jbuf_puts(b, ",\"warming_state\":{");
					resource_state(b, t, warm);
					wf_jbuf_puts(b, "}");
				}
			} else {
				resource_state(b, t, warming ? warm : act);
			}
			if (t == WF_XDS_LDS || (t == WF_XDS_CDS && !warming))
				error_state(b, t, r->name);
			wf_jbuf_puts(b, "}");
		}
		/* a new listener that was refused: its name and why */
		const struct wf_ads_rejection *rj = t == WF_XDS_LDS ? wf_ads_rejected(t) : NULL;
		if (rj && *rj->name && !wf_xds_set_find(x, t, rj->name)) {
			wf_jbuf_puts(b, first ? "{\"name\":" : ",{\"name\":");
			wf_jbuf_put_jstr(b, rj->name, strlen(rj->name));
			error_state(b, t, rj->name);
			wf_jbuf_puts(b, "}");
		}
		wf_jbuf_puts(b, "]");
	}
}

static void config_dump(struct wf_admin *a, struct wf_jbuf *b)
{
	struct wf_snapshot *s = wf_snapshot_acquire();
	const Envoy__Config__Bootstrap__V3__Bootstrap *bs = s ? (const void *)wf_cfgdoc_root(s->doc) : NULL;
	const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = bs ? bs->static_resources : NULL;
	char ts[64];
	time_t t = s ? (time_t)s->loaded_wall_s : 0;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	wf_jbuf_puts(b, "{\"configs\":[{\"@type\":\"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump\",\"bootstrap\":");
	if (bs)
		wf_json_message(b, &bs->base, -1);
	else
		wf_jbuf_puts(b, "{}");
	wf_jbuf_printf(b, ",\"last_updated\":\"%s\"}", ts);
	wf_jbuf_puts(b, ",{\"@type\":\"type.googleapis.com/envoy.admin.v3.ClustersConfigDump\",\"static_clusters\":[");
	for (size_t i = 0; sr && i < sr->n_clusters; i++) {
		wf_jbuf_puts(b, i ? ",{\"cluster\":" : "{\"cluster\":");
		typed_message(b, &sr->clusters[i]->base);
		wf_jbuf_printf(b, ",\"last_updated\":\"%s\"}", ts);
	}
	wf_jbuf_puts(b, "]");
	dynamic_dump(b, s, WF_XDS_CDS);
	wf_jbuf_puts(b, "},{\"@type\":\"type.googleapis.com/envoy.admin.v3.ListenersConfigDump\",\"static_listeners\":[");
	for (size_t i = 0; sr && i < sr->n_listeners; i++) {
		wf_jbuf_puts(b, i ? ",{\"listener\":" : "{\"listener\":");
		typed_message(b, &sr->listeners[i]->base);
		wf_jbuf_printf(b, ",\"last_updated\":\"%s\"}", ts);
	}
	wf_jbuf_puts(b, "]");
	dynamic_dump(b, s, WF_XDS_LDS);
	wf_jbuf_puts(b, "},{\"@type\":\"type.googleapis.com/envoy.admin.v3.RoutesConfigDump\",\"static_route_configs\":[");
	int first = 1;
	for (size_t i = 0; sr && i < sr->n_listeners; i++) {
		const Envoy__Config__Listener__V3__Listener *l = sr->listeners[i];
		for (size_t k = 0; k < l->n_filter_chains; k++)
			for (size_t f = 0; f < l->filter_chains[k]->n_filters; f++) {
				const Envoy__Config__Listener__V3__Filter *fl = l->filter_chains[k]->filters[f];
				char err[256];
				if (!fl->config_type_case)
					continue;
				const ProtobufCMessage *in = wf_cfgdoc_any(s->doc, &fl->typed_config->base, err, sizeof(err));
				if (!in || in->descriptor != &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor)
					continue;
				const Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *h = (const void *)in;
				if (!h->route_config)
					continue;
				wf_jbuf_puts(b, first ? "{\"route_config\":" : ",{\"route_config\":");
				typed_message(b, &h->route_config->base);
				wf_jbuf_printf(b, ",\"last_updated\":\"%s\"}", ts);
				first = 0;
			}
	}
	wf_jbuf_puts(b, "]");
	dynamic_dump(b, s, WF_XDS_RDS);
	wf_jbuf_puts(b, "}");
	if (wf_ads_resources()) {
		wf_jbuf_puts(b, ",{\"@type\":\"type.googleapis.com/envoy.admin.v3.EndpointsConfigDump\"");
		dynamic_dump(b, s, WF_XDS_EDS);
		wf_jbuf_puts(b, "}");
	}
	wf_jbuf_printf(b, "]}\n");
	wf_snapshot_release(s);
}

/* {"socket_address":{"address":IP,"port_value":PORT}} from "ip:port" or "[ip6]:port". */
static void json_socket_address(struct wf_jbuf *b, const char *addr_str)
{
	char ip[64];
	unsigned port = wf_addr_str_split(addr_str, ip, sizeof(ip));
	wf_jbuf_puts(b, "{\"socket_address\":{\"address\":");
	wf_jbuf_put_jstr(b, ip, strlen(ip));
	wf_jbuf_printf(b, ",\"port_value\":%u}}", port);
}

static int hc_failed(const struct wf_cluster *c, uint32_t k)
{
	return c->hc && __atomic_load_n(&c->ol_hosts[k]->hc_failed, __ATOMIC_RELAXED) != 0;
}

/* Envoy's health_flags: "healthy", or each failure flag in Envoy's order. */
static const char *health_flags(const struct wf_cluster *c, uint32_t k, char *out)
{
	int ejected = c->ol_hosts && __atomic_load_n(&c->ol_hosts[k]->ejected_until, __ATOMIC_RELAXED) != 0;
	int failed = hc_failed(c, k);
	if (c->hosts[k].healthy && !ejected && !failed)
		return "healthy";
	sprintf(out, "%s%s%s", failed ? "/failed_active_hc" : "", ejected ? "/failed_outlier_check" : "",
	        c->hosts[k].healthy ? "" : "/failed_eds_health");
	return out;
}

/* Host k's success rate over the last outlier detection interval (percent), or -1. */
static double host_success_rate(const struct wf_cluster *c, uint32_t k)
{
	int64_t v = c->ol_hosts ? __atomic_load_n(&c->ol_hosts[k]->success_rate, __ATOMIC_RELAXED) : -1;
	return v < 0 ? -1 : (double)v / 1000.0;
}

/* Envoy's /clusters: text lines CLUSTER::HOST::STAT::VALUE, or ?format=json. */
static void clusters(struct wf_jbuf *b, int json)
{
	struct wf_snapshot *s = wf_snapshot_acquire();
	if (json)
		wf_jbuf_puts(b, "{\"cluster_statuses\":[");
	for (uint32_t i = 0; s && i < s->n_clusters; i++) {
		const struct wf_cluster *c = s->clusters[i];
		if (json) {
			wf_jbuf_printf(b, "%s{\"name\":", i ? "," : "");
			wf_jbuf_put_jstr(b, c->name, strlen(c->name));
			wf_jbuf_puts(b, ",\"host_statuses\":[");
		} else {
			wf_jbuf_printf(b, "%s::added_via_api::false\n", c->name);
		}
		for (uint32_t k = 0; k < c->n_hosts; k++) {
			const struct wf_host *h = &c->hosts[k];
			char flags[96];
			struct { const char *name; uint32_t idx; int gauge; } st[] = {
			    {"cx_active", h->st_cx_active, 1}, {"cx_connect_fail", h->st_cx_connect_fail, 0},
			    {"cx_total", h->st_cx_total, 0}, {"rq_active", h->st_rq_active, 1},
			    {"rq_error", h->st_rq_error, 0}, {"rq_success", h->st_rq_success, 0},
			    {"rq_timeout", h->st_rq_timeout, 0}, {"rq_total", h->st_rq_total, 0}};
			if (json) {
				wf_jbuf_puts(b, k ? ",{\"address\":" : "{\"address\":");
				json_socket_address(b, h->addr_str);
				wf_jbuf_puts(b, ",\"stats\":[");
				for (size_t j = 0; j < sizeof(st) / sizeof(st[0]); j++)
					wf_jbuf_printf(b, "%s{\"name\":\"%s\",\"type\":\"%s\",\"value\":\"%lld\"}", j ? "," : "",
					               st[j].name, st[j].gauge ? "GAUGE" : "COUNTER", (long long)wf_stat_value(st[j].idx));
				wf_jbuf_printf(b, "],\"health_status\":{%s\"eds_health_status\":\"%s\"},\"weight\":%u",
				               hc_failed(c, k) ? "\"failed_active_health_check\":true," : "",
				               h->healthy ? "HEALTHY" : "UNHEALTHY", h->weight);
				if (h->priority) /* proto3 JSON leaves out a 0 */
					wf_jbuf_printf(b, ",\"priority\":%u", h->priority);
				if (host_success_rate(c, k) >= 0)
					wf_jbuf_printf(b, ",\"success_rate\":{\"value\":%g}", host_success_rate(c, k));
				if (h->hostname) {
					wf_jbuf_puts(b, ",\"hostname\":");
					wf_jbuf_put_jstr(b, h->hostname, strlen(h->hostname));
				}
				wf_jbuf_puts(b, "}");
				continue;
			}
			for (size_t j = 0; j < sizeof(st) / sizeof(st[0]); j++)
				wf_jbuf_printf(b, "%s::%s::%s::%lld\n", c->name, h->addr_str, st[j].name, (long long)wf_stat_value(st[j].idx));
			wf_jbuf_printf(b, "%s::%s::hostname::%s\n", c->name, h->addr_str, h->hostname ? h->hostname : "");
			wf_jbuf_printf(b, "%s::%s::health_flags::%s\n", c->name, h->addr_str, health_flags(c, k, flags));
			wf_jbuf_printf(b, "%s::%s::weight::%u\n", c->name, h->addr_str, h->weight);
			const struct wf_locality *loc = &c->levels[h->priority].loc[h->locality];
#define OR_EMPTY(x) ((x) ? (x) : "")
			wf_jbuf_printf(b, "%s::%s::region::%s\n%s::%s::zone::%s\n%s::%s::sub_zone::%s\n%s::%s::canary::false\n"
			               "%s::%s::priority::%u\n", c->name, h->addr_str, OR_EMPTY(loc->region),
			               c->name, h->addr_str, OR_EMPTY(loc->zone), c->name, h->addr_str, OR_EMPTY(loc->sub_zone),
			               c->name, h->addr_str, c->name, h->addr_str, h->priority);
#undef OR_EMPTY
			double sr = host_success_rate(c, k);
			if (sr < 0)
				wf_jbuf_printf(b, "%s::%s::success_rate::-1\n", c->name, h->addr_str);
			else
				wf_jbuf_printf(b, "%s::%s::success_rate::%g\n", c->name, h->addr_str, sr);
		}
		if (json)
			wf_jbuf_puts(b, "]}");
	}
	if (json)
		wf_jbuf_puts(b, "]}\n");
	wf_snapshot_release(s);
}

static void listeners(struct wf_jbuf *b, int json)
{
	struct wf_snapshot *s = wf_snapshot_acquire();
	if (json)
		wf_jbuf_puts(b, "{\"listener_statuses\":[");
	for (uint32_t i = 0; s && i < s->n_listeners; i++) {
		const struct wf_listener *l = &s->listeners[i];
		if (json) {
			wf_jbuf_printf(b, "%s{\"name\":", i ? "," : "");
			wf_jbuf_put_jstr(b, l->name, strlen(l->name));
			wf_jbuf_puts(b, ",\"local_address\":");
			json_socket_address(b, l->addr_str);
			wf_jbuf_puts(b, "}");
		} else {
			wf_jbuf_printf(b, "%s::%s\n", l->name, l->addr_str);
		}
	}
	if (json)
		wf_jbuf_puts(b, "]}\n");
	wf_snapshot_release(s);
}

/* admin.access_log: one line per admin request, written at once (admin traffic is rare). */
static void log_request(struct aconn *c, const struct wf_h1_req *q, int code, size_t n)
{
	struct wf_snapshot *s = wf_snapshot_acquire();
	if (!s)
		return;
	struct wf_stream_info si = {
	    .start_wall_us = c->start_wall_us, .start_us = c->start_us, .end_us = wf_now_us(),
	    .upstream_service_us = -1, .req_headers = q->headers, .n_req_headers = q->n_headers,
	    .method = q->method, .method_len = q->method_len, .path = q->path, .path_len = q->path_len,
	    .authority = q->host, .authority_len = q->host_len, .protocol = q->minor ? "HTTP/1.1" : "HTTP/1.0",
	    .response_code = code, .bytes_sent = n, .downstream_remote = c->remote, .downstream_local = c->local};
	for (uint32_t i = 0; i < s->n_admin_logs; i++) {
		wf_alog_emit(s->admin_logs[i], s->n_workers, &si);
		wf_alog_flush(s->admin_logs[i], s->n_workers);
	}
	wf_snapshot_release(s);
}

static void handle(struct aconn *c, const struct wf_h1_req *q)
{
	struct wf_admin *a = c->a;
	const char *qm = memchr(q->path, '?', q->path_len);
	size_t pn = qm ? (size_t)(qm - q->path) : q->path_len;
	const char *qs = qm ? qm + 1 : "";
	size_t qn = qm ? q->path_len - pn - 1 : 0;
	int post = q->method_len == 4 && !memcmp(q->method, "POST", 4);
	struct wf_jbuf b = {0};
#define IS(p) (pn == sizeof(p) - 1 && !memcmp(q->path, p, pn))
	if (IS("/ready")) {
		int live = !a->draining && !a->health_failed && !a->initializing;
		const char *state = live ? "LIVE\n" : a->initializing && !a->draining ? "INITIALIZING\n" : "DRAINING\n";
		respond(c, live ? 200 : 503, "text/plain; charset=UTF-8", state, strlen(state));
	} else if (IS("/stats") || IS("/stats/prometheus")) {
		char filter[256];
		query_param(qs, qn, "filter", filter, sizeof(filter));
		int r;
		const char *ctype = "text/plain; charset=UTF-8";
		if (IS("/stats/prometheus") || has_query(qs, qn, "format=prometheus")) {
			r = wf_stats_render_prometheus(&b, filter);
			if (r == 0)
				ctype = "text/plain; version=0.0.4; charset=UTF-8";
		} else if (has_query(qs, qn, "format=json")) {
			r = wf_stats_render_json(&b, filter);
			if (r == 0)
				ctype = "application/json";
		} else {
			r = wf_stats_render_text(&b, filter);
		}
		respond_j(c, r == 0 ? 200 : 400, ctype, &b);
	} else if (IS("/config_dump")) {
		config_dump(a, &b);
		respond_j(c, 200, "application/json", &b);
	} else if (IS("/clusters")) {
		int json = has_query(qs, qn, "format=json");
		clusters(&b, json);
		respond_j(c, 200, json ? "application/json" : "text/plain; charset=UTF-8", &b);
	} else if (IS("/listeners")) {
		listeners(&b, has_query(qs, qn, "format=json"));
		respond_j(c, 200, has_query(qs, qn, "format=json") ? "application/json" : "text/plain; charset=UTF-8", &b);
	} else if (IS("/drain_listeners") || IS("/quitquitquit") || IS("/healthcheck/fail") || IS("/healthcheck/ok")) {
		if (!post) {
			respond(c, 405, "text/plain; charset=UTF-8", "This endpoint requires POST\n", 28);
			return;
		}
		if (IS("/drain_listeners"))
			a->on_drain(a);
		else if (IS("/quitquitquit"))
			a->on_quit(a);
		else
			__atomic_store_n(&wf_health_failing, a->health_failed = IS("/healthcheck/fail"), __ATOMIC_RELAXED);
		respond(c, 200, "text/plain; charset=UTF-8", "OK\n", 3);
	} else if (IS("/")) {
		static const char idx[] = "admin commands are:\n  /clusters\n  /config_dump\n  /drain_listeners (POST)\n"
		    "  /healthcheck/fail (POST)\n  /healthcheck/ok (POST)\n  /listeners\n  /quitquitquit (POST)\n"
		    "  /ready\n  /stats\n  /stats/prometheus\n";
		respond(c, 200, "text/plain; charset=UTF-8", idx, sizeof(idx) - 1);
	} else {
		respond(c, 404, "text/plain; charset=UTF-8", "invalid path\n", 13);
	}
#undef IS
}

static void on_conn(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	struct aconn *c = io->data;
	if (c->dead)
		return;
	if (c->out) {
		while (c->out_off < c->out_len) {
			ssize_t n = write(io->fd, c->out + c->out_off, c->out_len - c->out_off);
			if (n < 0) {
				if (errno == EAGAIN)
					return;
				break;
			}
			c->out_off += (size_t)n;
		}
		aconn_close(c);
		return;
	}
	ssize_t n = read(io->fd, c->buf + c->n, sizeof(c->buf) - c->n);
	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return;
		aconn_close(c);
		return;
	}
	c->n += (size_t)n;
	struct wf_hdr hdrs[64];
	struct wf_h1_req q;
	q.headers = hdrs;
	struct wf_h1_limits lim = {.max_head_bytes = sizeof(c->buf), .max_headers = 64};
	int r = wf_h1_parse_request(c->buf, c->n, &lim, &q);
	if (r == 0)
		return;
	if (r < 0) {
		respond(c, 400, "text/plain", "bad request\n", 12);
		return;
	}
	c->req = &q;
	handle(c, &q);
	c->req = NULL;
}

static void on_timeout(struct wf_loop *loop, struct wf_timer *t) { aconn_close(t->data); }

static void on_accept(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	struct wf_admin *a = io->data;
	for (;;) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct aconn *c = calloc(1, sizeof(*c));
		c->a = a;
		c->io.fd = fd;
		c->io.cb = on_conn;
		c->io.data = c;
		c->t.cb = on_timeout;
		c->t.data = c;
		c->start_us = wf_now_us();
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		c->start_wall_us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
		struct wf_addr pa;
		if (wf_sock_peer(fd, &pa) == 0)
			wf_addr_str(&pa, c->remote, sizeof(c->remote));
		if (wf_sock_local(fd, &pa) == 0)
			wf_addr_str(&pa, c->local, sizeof(c->local));
		wf_io_set(loop, &c->io, EPOLLIN);
		wf_timer_set(loop, &c->t, 10000);
	}
}

void wf_admin_stop(struct wf_admin *a)
{
	wf_io_del(a->loop, &a->io);
	close(a->io.fd);
	a->io.fd = -1;
}

int wf_admin_start(struct wf_admin *a, struct wf_loop *loop, const struct wf_addr *addr)
{
	a->loop = loop;
	int fd = wf_sock_listen(addr, 0, 128, 0);
	if (fd < 0)
		return fd;
	a->io.fd = fd;
	a->io.cb = on_accept;
	a->io.data = a;
	return wf_io_set(loop, &a->io, EPOLLIN);
}
