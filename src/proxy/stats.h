/* Stats: counters, gauges and latency histograms, Envoy-named, kept per thread.
 *
 * Every thread (main and each worker) owns one flat array of int64 slots; a stat is an index
 * into it, the same index in every thread. A worker updates only its own array with plain
 * loads and stores (relaxed atomics, so the admin thread's reads are well defined), and the
 * admin endpoint sums the arrays when scraped. Nothing is locked and nothing is shared for
 * writing on the request path.
 *
 * Stats are registered by name on the main thread (at config compile time); registering a
 * name again returns the same index, so stats survive a config reload as Envoy's do. Each
 * registration counts: a holder that gives its stat back (wf_stat_release) as often as it
 * registered it lets it go, and its slots serve another stat. A config's stats go with the last
 * config that registers them (wf_stats_record): a cluster or listener that leaves the config
 * takes its stats along. */
#ifndef WF_PROXY_STATS_H
#define WF_PROXY_STATS_H

#include <stddef.h>
#include <stdint.h>

#define WF_STATS_SLOTS (1u << 21)
/* Histogram buckets (upper bounds in ms, Envoy's defaults); then +Inf, count and sum. */
#define WF_HIST_BUCKETS 20
#define WF_HIST_SLOTS (WF_HIST_BUCKETS + 3)

/* WF_STAT_CODES: one counter per HTTP status 100..599 under one name ("upstream_rq" ->
 * cluster.web.upstream_rq_200, envoy_cluster_upstream_rq{envoy_response_code="200"}), listed
 * only once non-zero. WF_STAT_HIDDEN: a counter/gauge kept for the admin pages (per-host
 * figures in /clusters), not listed in /stats. */
enum wf_stat_type { WF_STAT_COUNTER, WF_STAT_GAUGE, WF_STAT_HIST, WF_STAT_CODES, WF_STAT_HIDDEN };
#define WF_STAT_CODE_SLOTS 500

extern __thread int64_t *wf_stats_tls;

/* Scope of a stat, which decides its Prometheus name and label:
 *   ("cluster", "web", "upstream_rq_total") -> cluster.web.upstream_rq_total
 *   -> envoy_cluster_upstream_rq_total{envoy_cluster_name="web"} */
uint32_t wf_stat_register(enum wf_stat_type type, const char *scope, const char *scope_name,
                          const char *name);
/* Give back one registration of each stat at idx[0..n) (one lock for them all); at the last,
 * a stat is no longer listed and its slots are free (zeroed before they serve again). Nobody
 * may count on its index after that. The sink (0) and unknown indexes are passed over. */
void wf_stats_release(const uint32_t *idx, size_t n);
static inline void wf_stat_release(uint32_t idx) { wf_stats_release(&idx, 1); }
/* Another registration of each stat at idx[0..n) (a holder that outlives the one that
 * registered them). */
void wf_stats_ref(const uint32_t *idx, size_t n);
/* What a config registered, to give back when the config goes: while a thread records
 * (wf_stats_record), each of its registrations is also noted in rec, which then holds that
 * reference until wf_stats_rec_release. */
struct wf_stats_rec {
	uint32_t *idx;
	size_t n, cap;
};
/* Note the calling thread's registrations in rec from now on (NULL: stop noting). */
void wf_stats_record(struct wf_stats_rec *rec);
/* Give back every registration rec holds (in batches, so that the lock is never held long). */
void wf_stats_rec_release(struct wf_stats_rec *rec);
/* Give the calling thread its slot array (call once per thread before it counts). */
void wf_stats_thread_init(void);

static inline void wf_stat_add(uint32_t idx, int64_t v)
{
	int64_t *p = &wf_stats_tls[idx];
	__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}
static inline void wf_stat_inc(uint32_t idx) { wf_stat_add(idx, 1); }
static inline void wf_stat_dec(uint32_t idx) { wf_stat_add(idx, -1); }
static inline void wf_stat_code(uint32_t idx, int code)
{
	if (code >= 100 && code < 100 + (int)WF_STAT_CODE_SLOTS)
		wf_stat_inc(idx + (uint32_t)(code - 100));
}
/* The status class counters (..._2xx, _3xx, _4xx, _5xx) for a response code. */
static inline void wf_stat_classes(uint32_t c2, uint32_t c3, uint32_t c4, uint32_t c5, int code)
{
	if (code >= 200 && code < 300) wf_stat_inc(c2);
	else if (code >= 300 && code < 400) wf_stat_inc(c3);
	else if (code >= 400 && code < 500) wf_stat_inc(c4);
	else if (code >= 500) wf_stat_inc(c5);
}
/* Set the calling thread's slot (for gauges owned by the main thread, e.g. membership). */
static inline void wf_stat_set(uint32_t idx, int64_t v) { __atomic_store_n(&wf_stats_tls[idx], v, __ATOMIC_RELAXED); }
void wf_stat_hist(uint32_t idx, uint64_t ms);

struct wf_jbuf;
/* Render all stats: Envoy's /stats text ("name: value"), /stats?format=json, or Prometheus. */
/* filter (all three): a regex (Envoy's ?filter=) searched in each stat's dotted name, or NULL.
 * -1 (with a message in out) when the regex does not compile. */
int wf_stats_render_text(struct wf_jbuf *out, const char *filter);
int wf_stats_render_json(struct wf_jbuf *out, const char *filter);
int wf_stats_render_prometheus(struct wf_jbuf *out, const char *filter);
/* Sum of a stat over all threads (for tests and /clusters). */
int64_t wf_stat_value(uint32_t idx);

#endif
