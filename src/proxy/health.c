/* Active health checking on the main thread (see health.h).
 *
 *   session (one per cluster name + host address)
 *     IDLE ──timer──> CONNECTING ──writable──> SENDING ──sent──> RECEIVING ──answer──> IDLE
 *       ^                 │ the timer is the check's timeout while a check is in flight │
 *       └──── next check after wf_hc_next_ms ── finish(result) <── refused, EOF, timeout ┘
 *
 * A check speaks through a wf_sio: over TLS when the cluster has a transport_socket (as
 * Envoy's checks do by default), the handshake then being part of SENDING (a TCP check
 * without payloads passes once the handshake is done). Only the main thread touches
 * sessions; the workers see only the hosts' shared records. */
#include "proxy/health.h"

#include "core/log.h"
#include "core/loop.h"
#include "http/h1.h"
#include "proxy/sio.h"
#include "proxy/stats.h"
#include "proxy/tls.h"
#include "proxy/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- the state machine ------------------------------------------------------------------- */

void wf_hc_state_init(struct wf_hc_state *s) { *s = (struct wf_hc_state){.failed = 1, .first = 1}; }

int wf_hc_state_record(struct wf_hc_state *s, const struct wf_hc_cfg *c, enum wf_hc_result r)
{
	int first = s->first, changed = 0;
	s->first = 0;
	if (r == WF_HC_SUCCESS) {
		s->n_fail = 0;
		/* right after a host appears, one success is enough (Envoy) */
		if (s->failed && (++s->n_ok >= c->healthy_threshold || first)) {
			s->failed = 0;
			changed = 1;
		}
		return changed;
	}
	s->n_ok = 0;
	if (!s->failed && (r == WF_HC_ACTIVE || ++s->n_fail >= c->unhealthy_threshold)) {
		s->failed = 1;
		changed = 1;
	}
	return changed;
}

static int in_ranges(const struct wf_hc_range *r, uint32_t n, int status)
{
	for (uint32_t i = 0; i < n; i++)
		if (status >= r[i].start && status < r[i].end)
			return 1;
	return 0;
}

enum wf_hc_result wf_hc_http_status(const struct wf_hc_cfg *c, int status)
{
	if (in_ranges(c->expected, c->n_expected, status))
		return WF_HC_SUCCESS;
	return in_ranges(c->retriable, c->n_retriable, status) ? WF_HC_RETRIABLE : WF_HC_ACTIVE;
}

int wf_hc_tcp_match(const struct wf_hc_cfg *c, const char *buf, size_t n)
{
	const char *p = buf, *end = buf + n;
	for (uint32_t i = 0; i < c->n_receive; i++) {
		const struct wf_hc_block *b = &c->receive[i];
		const char *f = memmem(p, (size_t)(end - p), b->p, b->n);
		if (!f)
			return 0;
		p = f + b->n;
	}
	return 1;
}

uint64_t wf_hc_next_ms(const struct wf_hc_cfg *c, const struct wf_hc_state *s, int changed, uint64_t rnd)
{
	uint64_t ms = s->failed ? (changed ? c->unhealthy_edge_ms : c->unhealthy_ms) :
	                          (changed ? c->healthy_edge_ms : c->interval_ms);
	uint64_t pct = c->jitter_percent ? ms * c->jitter_percent / 100 : 0;
	if (pct)
		ms += rnd % pct;
	if (c->jitter_ms)
		ms += (rnd >> 32) % c->jitter_ms;
	return ms ? ms : 1;
}

/* ---- sessions ---------------------------------------------------------------------------- */

enum phase { IDLE, CONNECTING, SENDING, RECEIVING };

#define RECV_MAX 65536

struct session {
	struct wf_sio sio;            /* fd -1 while idle */
	struct wf_timer timer;        /* the next check while idle, the timeout while in flight */
	struct wf_defer defer;
	char *key;                    /* "cluster|address" */
	struct wf_addr addr;
	char addr_str[64];
	struct wf_cluster *cl;        /* in H.snap */
	struct wf_ol_host *shared;
	struct wf_hc_state st;
	uint8_t phase;                /* enum phase */
	uint8_t seen;                 /* wf_health_sync: still in the config */
	struct session *next;
};

static struct {
	struct wf_loop *loop;
	struct wf_snapshot *snap;     /* the config the sessions run (a reference of our own) */
	struct session *sessions;
	struct wf_pool pool;          /* the sessions' buffers */
	uint8_t pool_ready;
	uint64_t rng;
} H;

static uint64_t rnd(void)
{
	if (!H.rng) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		H.rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ 0x9E3779B97F4A7C15ull;
	}
	H.rng ^= H.rng >> 12;
	H.rng ^= H.rng << 25;
	H.rng ^= H.rng >> 27;
	return H.rng * 0x2545F4914F6CDD1Dull;
}

/* Publish the cluster's count of failing hosts (what wf_cluster_pick looks at first) and its
 * healthy gauges. */
static void recount(const struct wf_cluster *cl)
{
	int64_t failed = 0;
	for (uint32_t i = 0; cl->hc && i < cl->n_hosts; i++)
		failed += __atomic_load_n(&cl->ol_hosts[i]->hc_failed, __ATOMIC_RELAXED) != 0;
	__atomic_store_n(&cl->cb->hc_failed, failed, __ATOMIC_RELAXED);
	wf_cluster_membership(cl);
}

static void on_io(struct wf_loop *loop, struct wf_io *io, uint32_t ev);

static void sio_reset(struct session *s)
{
	s->sio = (struct wf_sio){.io = {.fd = -1, .cb = on_io, .data = s}};
}

static void end_check(struct session *s)
{
	wf_sio_close(H.loop, &H.pool, &s->sio);
	sio_reset(s);
	s->phase = IDLE;
}

static void finish(struct session *s, enum wf_hc_result r)
{
	const struct wf_hc_cfg *c = s->cl->hc;
	end_check(s);
	if (r == WF_HC_SUCCESS) {
		wf_stat_inc(c->st_success);
	} else {
		wf_stat_inc(c->st_failure);
		if (r == WF_HC_NETWORK)
			wf_stat_inc(c->st_network_failure);
	}
	int changed = wf_hc_state_record(&s->st, c, r);
	if (changed) {
		__atomic_store_n(&s->shared->hc_failed, (int64_t)s->st.failed, __ATOMIC_RELAXED);
		recount(s->cl);
		wf_info("health check: cluster '%s' host %s is %s", s->cl->name, s->addr_str,
		        s->st.failed ? "failing (failed_active_hc)" : "healthy");
	}
	wf_timer_set(H.loop, &s->timer, wf_hc_next_ms(c, &s->st, changed, rnd()));
}

/* What has been received so far: a verdict, or -1 to wait for more. */
static int verdict(struct session *s)
{
	const struct wf_hc_cfg *c = s->cl->hc;
	const char *p = wf_buf_data(&s->sio.rb);
	uint32_t n = wf_buf_len(&s->sio.rb);
	if (c->kind == WF_HC_TCP)
		return wf_hc_tcp_match(c, p, n) ? WF_HC_SUCCESS : -1;
	struct wf_hdr hdrs[100];
	struct wf_h1_resp resp = {.headers = hdrs};
	struct wf_h1_limits lim = {.max_head_bytes = RECV_MAX, .max_headers = 100};
	int r = wf_h1_parse_response(p, n, &lim, &resp);
	if (r == 0)
		return -1;
	if (r < 0)
		return WF_HC_NETWORK; /* not HTTP: a protocol error, as Envoy counts it */
	if (wf_hdr_find(hdrs, resp.n_headers, "x-envoy-immediate-health-check-fail", 35))
		return WF_HC_ACTIVE;
	return wf_hc_http_status(c, resp.status);
}

/* Connected: TLS when the cluster has it, and the payload (the HTTP request, the TCP send
 * block) queued. <0 when the connection failed. */
static int connected(struct session *s, struct wf_io *io, uint32_t ev)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err || (ev & (EPOLLERR | EPOLLHUP)))
		return -1;
	const struct wf_hc_cfg *c = s->cl->hc;
	if (s->cl->tls && wf_tls_attach(&s->sio, s->cl->tls) < 0)
		return -1;
	s->phase = SENDING;
	return c->send_len ? wf_sio_write(H.loop, &H.pool, &s->sio, c->send, c->send_len) : 0;
}

static void on_io(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	struct session *s = io->data;
	/* an event fetched before the check ended in this batch (a reload aborted it, or removed
	 * the session, whose cluster may be freed already): checks start only from timers, which
	 * run after the batch, so the fd cannot be a newer one */
	if (s->phase == IDLE)
		return;
	const struct wf_hc_cfg *c = s->cl->hc;
	if (s->phase == CONNECTING && connected(s, io, ev) < 0) {
		finish(s, WF_HC_NETWORK);
		return;
	}
	int r = wf_sio_flush(loop, &H.pool, &s->sio); /* TLS: the handshake goes on here */
	if (r < 0) {
		if (wf_sio_is_tls(&s->sio))
			wf_debug("health check: cluster '%s' host %s: TLS: %s", s->cl->name, s->addr_str,
			         wf_tls_failure(&s->sio));
		finish(s, WF_HC_NETWORK);
		return;
	}
	if (s->phase == SENDING) {
		if (r == 0 || (wf_sio_is_tls(&s->sio) && !wf_tls_established(&s->sio))) {
			wf_sio_update(loop, &s->sio); /* more to send, or the handshake to finish */
			return;
		}
		if (c->kind == WF_HC_TCP && !c->n_receive) {
			finish(s, WF_HC_SUCCESS); /* connect (and send) only */
			return;
		}
		s->phase = RECEIVING;
		s->sio.want = EPOLLIN;
	}
	int n = wf_sio_read(&H.pool, &s->sio, RECV_MAX);
	if (n == 0 && wf_buf_len(&s->sio.rb) < RECV_MAX) {
		wf_sio_update(loop, &s->sio);
		return;
	}
	int v = n > 0 ? verdict(s) : -1;
	if (v >= 0)
		finish(s, (enum wf_hc_result)v);
	else if (n < 0 || wf_buf_len(&s->sio.rb) >= RECV_MAX)
		finish(s, WF_HC_NETWORK); /* closed or reset before an answer, or none in 64 KiB */
	else
		wf_sio_update(loop, &s->sio);
}

static void start_check(struct session *s)
{
	const struct wf_hc_cfg *c = s->cl->hc;
	wf_stat_inc(c->st_attempt);
	int fd = wf_sock_connect(&s->addr);
	if (fd < 0) {
		finish(s, WF_HC_NETWORK);
		return;
	}
	s->sio.io.fd = fd;
	s->phase = CONNECTING;
	wf_io_set(H.loop, &s->sio.io, EPOLLOUT);
	wf_timer_set(H.loop, &s->timer, c->timeout_ms);
}

static void on_timer(struct wf_loop *loop, struct wf_timer *t)
{
	struct session *s = t->data;
	if (s->phase == IDLE)
		start_check(s);
	else
		finish(s, WF_HC_NETWORK); /* timeout */
}

static void session_free(struct wf_defer *d)
{
	struct session *s = (struct session *)((char *)d - offsetof(struct session, defer));
	free(s->key);
	free(s);
}

/* Stop a session; it is freed after the current batch of events (its fd may be in it). */
static void session_end(struct session *s)
{
	end_check(s);
	wf_timer_cancel(H.loop, &s->timer);
	s->defer.cb = session_free;
	wf_loop_defer(H.loop, &s->defer);
}

static struct session *session_find(const char *key)
{
	for (struct session *s = H.sessions; s; s = s->next)
		if (!strcmp(s->key, key))
			return s;
	return NULL;
}

static void first_check_at(struct session *s, const struct wf_hc_cfg *c)
{
	wf_timer_set(H.loop, &s->timer, 1 + (c->initial_jitter_ms ? rnd() % c->initial_jitter_ms : 0));
}

void wf_health_sync(struct wf_loop *loop, struct wf_snapshot *snap)
{
	H.loop = loop;
	if (!H.pool_ready) {
		wf_pool_init(&H.pool, 16);
		H.pool_ready = 1;
	}
	for (struct session *s = H.sessions; s; s = s->next)
		s->seen = 0;
	for (uint32_t i = 0; i < snap->n_clusters; i++) {
		struct wf_cluster *cl = snap->clusters[i];
		for (uint32_t h = 0; cl->hc && h < cl->n_hosts; h++) {
			char key[512];
			snprintf(key, sizeof(key), "%s|%s", cl->name, cl->hosts[h].addr_str);
			struct session *s = session_find(key);
			if (s && s->seen)
				continue; /* the same address twice in one cluster: one session */
			if (s) {
				/* kept, with its state; an in-flight check restarts under the new config */
				if (s->phase != IDLE) {
					end_check(s);
					first_check_at(s, cl->hc);
				}
			} else {
				s = calloc(1, sizeof(*s));
				s->key = strdup(key);
				s->addr = cl->hosts[h].addr;
				snprintf(s->addr_str, sizeof(s->addr_str), "%s", cl->hosts[h].addr_str);
				sio_reset(s);
				s->timer = (struct wf_timer){.cb = on_timer, .data = s};
				wf_hc_state_init(&s->st);
				s->next = H.sessions;
				H.sessions = s;
				first_check_at(s, cl->hc);
			}
			s->seen = 1;
			s->cl = cl;
			s->shared = cl->ol_hosts[h];
			__atomic_store_n(&s->shared->hc_failed, (int64_t)s->st.failed, __ATOMIC_RELAXED);
		}
	}
	for (struct session **p = &H.sessions; *p;) {
		struct session *s = *p;
		if (s->seen) {
			p = &s->next;
			continue;
		}
		/* the host (or its cluster, or the cluster's health check) is gone: if it comes back,
		 * it starts over as a new host */
		__atomic_store_n(&s->shared->hc_failed, 0, __ATOMIC_RELAXED);
		*p = s->next;
		session_end(s);
	}
	for (uint32_t i = 0; i < snap->n_clusters; i++)
		recount(snap->clusters[i]);
	/* our own reference: the sessions point into this snapshot */
	__atomic_add_fetch(&snap->refs, 1, __ATOMIC_RELAXED);
	wf_snapshot_release(H.snap);
	H.snap = snap;
}

int wf_health_initializing(void)
{
	for (struct session *s = H.sessions; s; s = s->next)
		if (s->st.first)
			return 1;
	return 0;
}

void wf_health_stop(void)
{
	while (H.sessions) {
		struct session *s = H.sessions;
		H.sessions = s->next;
		end_check(s);
		wf_timer_cancel(H.loop, &s->timer);
		session_free(&s->defer);
	}
	wf_snapshot_release(H.snap);
	H.snap = NULL;
	if (H.pool_ready) {
		wf_pool_fini(&H.pool);
		H.pool_ready = 0;
	}
}
