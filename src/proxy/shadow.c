/* Request mirroring (route request_mirror_policies): a copy of a request, sent to another
 * cluster and forgotten. The copy owns its bytes and holds the config snapshot, so it lives on
 * after the stream that made it; its response is read only for the status (the mirror
 * cluster's stats) and thrown away. It asks the upstream to close after answering, so no
 * response framing is needed: the exchange ends at EOF, an error or the timeout. */
#include "proxy/shadow.h"

#include "core/log.h"
#include "proxy/router.h"
#include "proxy/stats.h"
#include "proxy/upstream.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <string.h>

struct shadow {
	struct shadow *prev, *next;        /* this worker's shadows in flight */
	struct wf_worker *w;
	struct wf_snapshot *snap;
	struct wf_cluster *c;
	const struct wf_host *h;
	struct wf_uconn *u;
	struct wf_timer t;
	char *data; size_t n;
	uint8_t counted;                   /* the response status was seen */
};

static __thread struct shadow *inflight;

static void finish(struct shadow *s)
{
	if (s->u)
		wf_upstream_release(s->u, 0);
	wf_timer_cancel(&s->w->loop, &s->t);
	wf_stat_dec(s->c->st.rq_active);
	wf_cluster_rq_end(s->w, s->c, s->h);
	if (s->prev)
		s->prev->next = s->next;
	else
		inflight = s->next;
	if (s->next)
		s->next->prev = s->prev;
	wf_worker_release(s->w, s->snap);
	free(s->data);
	free(s);
}

static void on_connected(struct wf_uconn *u, void *owner)
{
	struct shadow *s = owner;
	wf_stat_inc(s->c->st.rq_total);
	if (wf_sio_write(&s->w->loop, &s->w->pool, &u->s, s->data, s->n) < 0)
		return; /* the failure callback follows */
	free(s->data);
	s->data = NULL;
	wf_upstream_want(u, EPOLLIN);
}

static void on_readable(struct wf_uconn *u, void *owner)
{
	struct shadow *s = owner;
	int r;
	while ((r = wf_sio_read(&s->w->pool, &u->s, 16 * 1024)) > 0) {
		const char *p = wf_buf_data(&u->s.rb);
		uint32_t n = wf_buf_len(&u->s.rb);
		if (!s->counted) {
			if (n < 12)
				continue; /* the status line is not all here yet */
			int code = !memcmp(p, "HTTP/1.", 7) ? (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0') : 0;
			if (code >= 100 && code <= 599) {
				wf_stat_classes(s->c->st.rq_2xx, s->c->st.rq_3xx, s->c->st.rq_4xx, s->c->st.rq_5xx, code);
				wf_stat_code(s->c->st.rq_code, code);
			}
			s->counted = 1;
		}
		wf_buf_consume(&u->s.rb, &s->w->pool, n); /* the rest of the response is not needed */
	}
	if (r < 0)
		finish(s); /* EOF (the upstream closed after its answer, as asked) or an error */
}

static void on_drained(struct wf_uconn *u, void *owner)
{
}

static void on_failed(struct wf_uconn *u, void *owner, int err, int connecting)
{
	struct shadow *s = owner;
	s->u = NULL; /* the pool closes it */
	finish(s);
}

static const struct wf_uconn_ops ops = {on_connected, on_readable, on_drained, on_failed};

static void on_timeout(struct wf_loop *loop, struct wf_timer *t)
{
	struct shadow *s = t->data;
	wf_stat_inc(s->c->st.rq_timeout);
	finish(s);
}

void wf_shadow_send(struct wf_worker *w, struct wf_snapshot *snap, struct wf_cluster *c, char *data, size_t n,
                    uint64_t timeout_ms)
{
	const struct wf_host *h = wf_cluster_pick(w, c, 0, 0);
	if (!h) {
		wf_stat_inc(c->st.none_healthy);
		free(data);
		return;
	}
	struct shadow *s = calloc(1, sizeof(*s));
	s->w = w;
	s->snap = snap;
	wf_worker_hold(w, snap);
	s->c = c;
	s->h = h;
	s->data = data;
	s->n = n;
	s->t.cb = on_timeout;
	s->t.data = s;
	s->next = inflight;
	if (inflight)
		inflight->prev = s;
	inflight = s;
	wf_stat_inc(c->st.rq_active);
	wf_cluster_rq_start(w, c, h);
	int reused = 0, err = 0;
	s->u = wf_upstream_get(w, c, h, &ops, s, &reused, &err);
	if (!s->u) {
		if (err == -EAGAIN)
			wf_stat_inc(c->st.cx_overflow); /* max_connections: a mirror does not wait */
		finish(s);
		return;
	}
	wf_timer_set(&w->loop, &s->t, timeout_ms ? timeout_ms : 15000);
	if (reused)
		on_connected(s->u, s);
}

void wf_shadow_thread_exit(void)
{
	while (inflight)
		finish(inflight);
}
