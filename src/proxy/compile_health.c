/* Decode a cluster's health_checks (envoy.config.core.v3.HealthCheck) into a wf_hc_cfg:
 * Envoy's required fields and defaults, the HTTP request built once, TCP payloads decoded. */
#include "proxy/compile.h"

#include "core/str.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "proxy/hlist.h"
#include "proxy/stats.h"
#include "xds/cfgdoc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Envoy__Config__Core__V3__HealthCheck HealthCheck;
typedef Envoy__Config__Core__V3__HealthCheck__Payload Payload;
typedef Envoy__Type__V3__Int64Range Int64Range;

#define ERR(msg, field, ...) wf_cfg_err(c->doc, c->err, c->errlen, msg, field, __VA_ARGS__)

/* A Payload's bytes: `text` is hex ("000000FF"), `binary` raw. */
static int payload(struct wf_compile *c, const Payload *p, char **out, uint32_t *len)
{
	if (p->payload_case == ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__PAYLOAD__PAYLOAD_BINARY) {
		*out = malloc(p->binary.len + 1);
		memcpy(*out, p->binary.data, p->binary.len);
		*len = (uint32_t)p->binary.len;
		return 0;
	}
	if (p->payload_case != ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__PAYLOAD__PAYLOAD_TEXT || !*p->text)
		return ERR(p, NULL, "a payload needs text (hex) or binary");
	size_t n = strlen(p->text);
	*out = malloc(n / 2 + 1);
	int64_t r = wf_hex_decode(p->text, n, (uint8_t *)*out);
	if (r < 0) {
		free(*out);
		*out = NULL;
		return ERR(p, "text", "'%s' is not hex (an even number of 0-9a-f digits, e.g. \"000000FF\")", p->text);
	}
	*len = (uint32_t)r;
	return 0;
}

static int ranges(struct wf_compile *c, const void *m, const char *field, size_t n, Int64Range **in,
                  struct wf_hc_range **out, uint32_t *n_out)
{
	*out = calloc(n + 1, sizeof(**out));
	for (size_t i = 0; i < n; i++) {
		if (in[i]->start < 100 || in[i]->end > 600 || in[i]->start >= in[i]->end)
			return ERR(in[i], NULL, "%s: [%lld, %lld) is not a range of statuses within [100, 600)", field,
			           (long long)in[i]->start, (long long)in[i]->end);
		(*out)[i] = (struct wf_hc_range){in[i]->start, in[i]->end};
		*n_out = (uint32_t)i + 1;
	}
	return 0;
}

static int header_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 127)
			return 0;
	return 1;
}

/* The whole request head: GET path, host, user-agent: Envoy/HC (as Envoy sends), the edits. */
static int http_request(struct wf_compile *c, const Envoy__Config__Core__V3__HealthCheck__HttpHealthCheck *h,
                        const char *cluster, struct wf_hc_cfg *hc)
{
	if (!h->path || !*h->path)
		return ERR(h, "path", "http_health_check needs a path");
	if (!header_safe(h->path))
		return ERR(h, "path", "the path contains spaces or control characters");
	const char *host = h->host && *h->host ? h->host : cluster;
	if (!header_safe(host))
		return ERR(h, "host", "the host contains spaces or control characters");
	struct wf_hdr_edits e = {0};
	int r = wf_compile_hdr_edits(c, h, h->n_request_headers_to_add, h->request_headers_to_add,
	                             h->n_request_headers_to_remove, h->request_headers_to_remove, 1, &e);
	if (r == 0) {
		struct wf_hlist l = {.h = malloc(8 * sizeof(struct wf_hdr)), .dead = malloc(8), .cap = 8};
		wf_hlist_add(&l, "user-agent", 10, "Envoy/HC", 8);
		wf_hlist_edits(&l, &e);
		size_t cap = strlen(h->path) + strlen(host) + 64;
		for (uint32_t i = 0; i < l.n; i++)
			cap += l.h[i].name_len + l.h[i].value_len + 4;
		hc->send = malloc(cap);
		int n = snprintf(hc->send, cap, "GET %s HTTP/1.1\r\nhost: %s\r\n", h->path, host);
		for (uint32_t i = 0; i < l.n; i++)
			if (!l.dead[i])
				n += snprintf(hc->send + n, cap - (size_t)n, "%.*s: %.*s\r\n", (int)l.h[i].name_len, l.h[i].name,
				              (int)l.h[i].value_len, l.h[i].value);
		n += snprintf(hc->send + n, cap - (size_t)n, "connection: close\r\n\r\n");
		hc->send_len = (uint32_t)n;
		free(l.h);
		free(l.dead);
	}
	wf_hdr_edits_free(&e);
	if (r < 0)
		return -1;
	if (ranges(c, h, "expected_statuses", h->n_expected_statuses, h->expected_statuses, &hc->expected,
	           &hc->n_expected) < 0 ||
	    ranges(c, h, "retriable_statuses", h->n_retriable_statuses, h->retriable_statuses, &hc->retriable,
	           &hc->n_retriable) < 0)
		return -1;
	if (!hc->n_expected) {
		hc->expected[0] = (struct wf_hc_range){200, 201};
		hc->n_expected = 1;
	}
	return 0;
}

static int tcp_payloads(struct wf_compile *c, const Envoy__Config__Core__V3__HealthCheck__TcpHealthCheck *t,
                        struct wf_hc_cfg *hc)
{
	if (t->send && payload(c, t->send, &hc->send, &hc->send_len) < 0)
		return -1;
	hc->receive = calloc(t->n_receive + 1, sizeof(*hc->receive));
	for (size_t i = 0; i < t->n_receive; i++) {
		if (payload(c, t->receive[i], &hc->receive[i].p, &hc->receive[i].n) < 0)
			return -1;
		hc->n_receive = (uint32_t)i + 1;
	}
	return 0;
}

static int required_duration(struct wf_compile *c, const HealthCheck *m, const Google__Protobuf__Duration *d,
                             const char *field, uint64_t *out)
{
	*out = wf_duration_ms(d);
	if (!*out)
		return ERR(m, field, "a health check needs %s (above 0, e.g. \"1s\")", field);
	return 0;
}

static void hc_stats(struct wf_hc_cfg *hc, const char *n)
{
#define C(f, name) hc->f = wf_stat_register(WF_STAT_COUNTER, "cluster", n, "health_check." name)
	C(st_attempt, "attempt");
	C(st_success, "success");
	C(st_failure, "failure");
	C(st_passive_failure, "passive_failure");
	C(st_network_failure, "network_failure");
	C(st_verify_cluster, "verify_cluster");
#undef C
	hc->st_healthy = wf_stat_register(WF_STAT_GAUGE, "cluster", n, "health_check.healthy");
}

int wf_compile_health(struct wf_compile *c, const void *cluster_msg, struct wf_cluster *cl)
{
	const Envoy__Config__Cluster__V3__Cluster *cm = cluster_msg;
	if (!cm->n_health_checks)
		return 0;
	if (cm->n_health_checks > 1)
		return ERR(cm->health_checks[1], NULL, "only one health check per cluster is supported (as in Envoy)");
	const HealthCheck *m = cm->health_checks[0];
	struct wf_hc_cfg *hc = cl->hc = calloc(1, sizeof(*hc));
	if (required_duration(c, m, m->timeout, "timeout", &hc->timeout_ms) < 0 ||
	    required_duration(c, m, m->interval, "interval", &hc->interval_ms) < 0)
		return -1;
	if (!m->unhealthy_threshold || !m->healthy_threshold)
		return ERR(m, m->unhealthy_threshold ? "healthy_threshold" : "unhealthy_threshold",
		           "a health check needs %s (Envoy requires it)",
		           m->unhealthy_threshold ? "healthy_threshold" : "unhealthy_threshold");
	/* a threshold of 0 behaves as 1 in Envoy (the first result crosses it) */
	hc->unhealthy_threshold = m->unhealthy_threshold->value ? m->unhealthy_threshold->value : 1;
	hc->healthy_threshold = m->healthy_threshold->value ? m->healthy_threshold->value : 1;
	if (m->reuse_connection && m->reuse_connection->value)
		return ERR(m, "reuse_connection", "connection reuse is not supported yet: each check opens a new "
		           "connection (set reuse_connection: false)");
	hc->jitter_ms = wf_duration_ms(m->interval_jitter);
	hc->initial_jitter_ms = wf_duration_ms(m->initial_jitter);
	hc->jitter_percent = m->interval_jitter_percent;
	/* no_traffic_interval and no_traffic_healthy_interval are accepted and not used: checks
	 * always run at `interval` (see doc/health-checks.md) */
	hc->unhealthy_ms = m->unhealthy_interval ? wf_duration_ms(m->unhealthy_interval) : hc->interval_ms;
	hc->unhealthy_edge_ms = m->unhealthy_edge_interval ? wf_duration_ms(m->unhealthy_edge_interval) : hc->unhealthy_ms;
	hc->healthy_edge_ms = m->healthy_edge_interval ? wf_duration_ms(m->healthy_edge_interval) : hc->interval_ms;
	if (!hc->unhealthy_ms || !hc->unhealthy_edge_ms || !hc->healthy_edge_ms)
		return ERR(m, !hc->unhealthy_ms ? "unhealthy_interval" : !hc->unhealthy_edge_ms ? "unhealthy_edge_interval" :
		           "healthy_edge_interval", "must be above 0");
	switch (m->health_checker_case) {
	case ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__HEALTH_CHECKER_HTTP_HEALTH_CHECK:
		hc->kind = WF_HC_HTTP;
		if (http_request(c, m->http_health_check, cl->name, hc) < 0)
			return -1;
		break;
	case ENVOY__CONFIG__CORE__V3__HEALTH_CHECK__HEALTH_CHECKER_TCP_HEALTH_CHECK:
		hc->kind = WF_HC_TCP;
		if (tcp_payloads(c, m->tcp_health_check, hc) < 0)
			return -1;
		break;
	default:
		return ERR(m, NULL, "a health check needs a health_checker: http_health_check or tcp_health_check");
	}
	hc_stats(hc, cl->stat_name);
	return 0;
}

void wf_hc_cfg_free(struct wf_hc_cfg *hc)
{
	if (!hc)
		return;
	free(hc->send);
	for (uint32_t i = 0; i < hc->n_receive; i++)
		free(hc->receive[i].p);
	free(hc->receive);
	free(hc->expected);
	free(hc->retriable);
	free(hc);
}
