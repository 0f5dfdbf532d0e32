#include "proxy/outlier.h"

#include "core/intern.h"
#include "proxy/outlier_rate.h"
#include "proxy/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void ol_init(void *rec) { ((struct wf_ol_host *)rec)->success_rate = -1; }

static struct wf_intern hosts = WF_INTERN_INIT(sizeof(struct wf_ol_host), ol_init);

struct wf_ol_host *wf_ol_host_for(const char *cluster, const char *addr)
{
	char key[512];
	snprintf(key, sizeof(key), "%s|%s", cluster, addr);
	return wf_intern(&hosts, key);
}

void wf_ol_host_release(struct wf_ol_host *h) { wf_intern_release(&hosts, h); }

static int64_t ld(const int64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

int wf_outlier_ejected(struct wf_cluster *c, uint32_t i, uint64_t now)
{
	struct wf_ol_host *h = c->ol_hosts[i];
	int64_t until = ld(&h->ejected_until);
	if (!until)
		return 0;
	if ((uint64_t)until > now)
		return 1;
	/* time is over: the first to notice brings the host back */
	if (__atomic_compare_exchange_n(&h->ejected_until, &until, 0, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
		__atomic_sub_fetch(&c->cb->ejected, 1, __ATOMIC_RELAXED);
		wf_stat_dec(c->ol.st_active);
		__atomic_store_n(&h->c5xx, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&h->cgw, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&h->clocal, 0, __ATOMIC_RELAXED);
	}
	return 0;
}

static void eject(struct wf_cluster *c, struct wf_ol_host *h, uint32_t enforcing, uint32_t st_det, uint32_t st_enf,
                  uint64_t now)
{
	const struct wf_outlier_cfg *o = &c->ol;
	wf_stat_inc(st_det);
	if (ld(&h->ejected_until))
		return;
	if (enforcing < 100 && (uint32_t)(now * 2654435761u % 100) >= enforcing)
		return;
	/* max_ejection_percent, but at least one host, as Envoy */
	int64_t allowed = (int64_t)c->n_hosts * o->max_percent / 100;
	if (allowed < 1)
		allowed = 1;
	if (__atomic_add_fetch(&c->cb->ejected, 1, __ATOMIC_RELAXED) > allowed) {
		__atomic_sub_fetch(&c->cb->ejected, 1, __ATOMIC_RELAXED);
		wf_stat_inc(o->st_overflow);
		return;
	}
	int64_t times = __atomic_add_fetch(&h->times, 1, __ATOMIC_RELAXED);
	uint64_t ms = o->base_ms * (uint64_t)times;
	uint64_t cap = o->max_ms > o->base_ms ? o->max_ms : o->base_ms;
	if (ms > cap)
		ms = cap;
	__atomic_store_n(&h->ejected_until, (int64_t)(now + ms), __ATOMIC_RELAXED);
	wf_stat_inc(o->st_enforced_total);
	wf_stat_inc(st_enf);
	wf_stat_inc(o->st_active);
}

/* One interval's sweep: take every host's counts (starting the next interval from zero) and,
 * when `evaluate`, eject the success-rate and failure-percentage outliers among them. */
static void sweep(struct wf_cluster *c, uint64_t now, int evaluate)
{
	const struct wf_outlier_cfg *o = &c->ol;
	uint32_t n = c->n_hosts;
	/* once per interval per cluster, never per request: allocating here is fine */
	struct wf_ol_sample *s = calloc(n + 1, sizeof(*s));
	uint8_t *out = calloc(n + 1, 1);
	double *rate = calloc(n + 1, sizeof(*rate));
	if (!s || !out || !rate)
		goto done;
	for (uint32_t i = 0; i < n; i++) {
		struct wf_ol_host *h = c->ol_hosts[i];
		s[i].total = (uint64_t)__atomic_exchange_n(&h->rq_total, 0, __ATOMIC_RELAXED);
		s[i].fail = (uint64_t)__atomic_exchange_n(&h->rq_fail, 0, __ATOMIC_RELAXED);
		s[i].skip = (uint64_t)ld(&h->ejected_until) > now;
	}
	uint32_t found = wf_ol_success_rate_outliers(s, n, o->sr_min_hosts, o->sr_volume, o->sr_stdev_factor, out, rate);
	for (uint32_t i = 0; i < n; i++) /* for /clusters */
		__atomic_store_n(&c->ol_hosts[i]->success_rate, evaluate && rate[i] >= 0 ? (int64_t)(rate[i] * 1000) : -1,
		                 __ATOMIC_RELAXED);
	if (!evaluate)
		goto done;
	for (uint32_t i = 0; found && i < n; i++)
		if (out[i])
			eject(c, c->ol_hosts[i], o->esr, o->st_det_sr, o->st_enf_sr, now);
	if (wf_ol_failure_percentage_outliers(s, n, o->fp_min_hosts, o->fp_volume, o->fp_threshold, out))
		for (uint32_t i = 0; i < n; i++)
			if (out[i])
				eject(c, c->ol_hosts[i], o->efp, o->st_det_fp, o->st_enf_fp, now);
done:
	free(s);
	free(out);
	free(rate);
}

/* Count a request for the interval statistics, and sweep when the interval is over.
 *
 * The sweep runs here, on the worker whose report first finds it due, rather than on a main
 * thread timer: everything it needs is already shared (the per-host atomics, the per-cluster
 * breaker state), and the compare-and-swap on sweep_at lets exactly one worker take each
 * interval, with no timer to keep in step with config reloads. The price is that a cluster
 * without traffic is not swept, which changes nothing: without requests nothing qualifies.
 * A sweep more than one interval late covers more than one interval, so it only restarts
 * the counts. */
static void count_interval(struct wf_cluster *c, struct wf_ol_host *h, int failed, uint64_t now)
{
	__atomic_add_fetch(&h->rq_total, 1, __ATOMIC_RELAXED);
	if (failed)
		__atomic_add_fetch(&h->rq_fail, 1, __ATOMIC_RELAXED);
	int64_t due = ld(&c->cb->sweep_at);
	if ((int64_t)now < due)
		return;
	if (!__atomic_compare_exchange_n(&c->cb->sweep_at, &due, (int64_t)(now + c->ol.interval_ms), 0, __ATOMIC_RELAXED,
	                                 __ATOMIC_RELAXED))
		return;
	sweep(c, now, due && (int64_t)now - due < (int64_t)c->ol.interval_ms);
}

void wf_outlier_report(struct wf_cluster *c, const struct wf_host *host, enum wf_outcome out, uint64_t now)
{
	const struct wf_outlier_cfg *o = &c->ol;
	if (!o->enabled)
		return;
	struct wf_ol_host *h = c->ol_hosts[host - c->hosts];
	/* with split_external_local_origin_errors, local failures have a success rate of their
	 * own (enforcing_local_origin_success_rate, not supported): they do not count here */
	if (o->per_interval && !(out == WF_OUT_LOCAL && o->split_local))
		count_interval(c, h, out != WF_OUT_SUCCESS, now);
	if (out == WF_OUT_SUCCESS) {
		if (ld(&h->c5xx))
			__atomic_store_n(&h->c5xx, 0, __ATOMIC_RELAXED);
		if (ld(&h->cgw))
			__atomic_store_n(&h->cgw, 0, __ATOMIC_RELAXED);
		if (ld(&h->clocal))
			__atomic_store_n(&h->clocal, 0, __ATOMIC_RELAXED);
		return;
	}
	if (out == WF_OUT_LOCAL && o->split_local) {
		if (o->clocal && __atomic_add_fetch(&h->clocal, 1, __ATOMIC_RELAXED) >= o->clocal)
			eject(c, h, o->elocal, o->st_det_local, o->st_enf_local, now);
		return;
	}
	/* without the split, a local failure counts as a 5xx and a gateway failure (Envoy maps it
	 * to a 503) */
	int gw = out == WF_OUT_GATEWAY || out == WF_OUT_LOCAL;
	if (o->c5xx && __atomic_add_fetch(&h->c5xx, 1, __ATOMIC_RELAXED) >= o->c5xx)
		eject(c, h, o->e5xx, o->st_det_5xx, o->st_enf_5xx, now);
	if (gw && o->cgw && __atomic_add_fetch(&h->cgw, 1, __ATOMIC_RELAXED) >= o->cgw)
		eject(c, h, o->egw, o->st_det_gw, o->st_enf_gw, now);
}
