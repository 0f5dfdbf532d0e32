/* DNS clusters: the target cache and its refresh timers (see dns.h).
 *
 *   target (cluster|family|name) ──timer──> job on the resolver thread ──> on_done (main loop)
 *     success, same hosts:     update_no_rebuild, next refresh in dns_refresh_rate
 *     success, hosts changed:  cache updated, membership_change, changed() -> rebuild + publish
 *     failure:                 update_failure, last addresses kept, retry after the failure
 *                              refresh rate (doubling from base_interval up to max_interval) */
#include "proxy/dns.h"

#include "core/log.h"
#include "core/loop.h"
#include "proxy/config.h"
#include "proxy/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct target {
	char *key;                    /* "cluster|family|name" */
	char *cluster, *name;
	int family;
	uint8_t logical;              /* LOGICAL_DNS: only the first address is a host */
	uint8_t seen;                 /* wf_dns_sync: still configured */
	uint8_t counted;              /* the first (blocking) resolution is in the stats */
	struct wf_addr *addrs; uint32_t n;
	struct wf_timer timer;
	struct wf_resolve_job *job;   /* in flight on the resolver thread */
	uint64_t refresh_ms, fail_base_ms, fail_max_ms;
	uint32_t failures;            /* in a row */
	uint32_t st_attempt, st_success, st_failure, st_no_rebuild, st_membership_change;
	struct target *next;
};

static struct {
	struct wf_loop *loop;
	void (*changed)(void);
	struct target *targets;
} D;

static void key_of(char *out, size_t n, const char *cluster, int family, const char *name)
{
	snprintf(out, n, "%s|%d|%s", cluster, family, name);
}

static struct target *find(const char *key)
{
	for (struct target *t = D.targets; t; t = t->next)
		if (!strcmp(t->key, key))
			return t;
	return NULL;
}

int wf_dns_addrs(const char *cluster, const char *name, int family, const struct wf_addr **addrs, uint32_t *n)
{
	char key[600];
	key_of(key, sizeof(key), cluster, family, name);
	struct target *t = find(key);
	if (!t) {
		struct wf_addr *a;
		uint32_t k;
		int rc = wf_resolve(name, family, &a, &k);
		if (rc)
			return rc;
		t = calloc(1, sizeof(*t));
		t->key = strdup(key);
		t->cluster = strdup(cluster);
		t->name = strdup(name);
		t->family = family;
		t->addrs = a;
		t->n = k;
		t->timer.data = t;
		t->next = D.targets;
		D.targets = t;
	}
	*addrs = t->addrs;
	*n = t->n;
	return 0;
}

static void addrs_str(const struct wf_addr *a, uint32_t n, char *out, size_t len)
{
	size_t k = 0;
	out[0] = 0;
	for (uint32_t i = 0; i < n && k + 80 < len; i++) {
		char s[64];
		wf_addr_str(&a[i], s, sizeof(s));
		s[strlen(s) - 2] = 0; /* ":0": names resolve without a port */
		k += (size_t)snprintf(out + k, len - k, "%s%s", i ? ", " : "", s);
	}
}

static int contains(const struct wf_addr *a, uint32_t n, const struct wf_addr *x)
{
	for (uint32_t i = 0; i < n; i++)
		if (wf_addr_eq(&a[i], x))
			return 1;
	return 0;
}

/* Would the cluster's hosts differ? STRICT_DNS: the set of addresses (not their order, as
 * Envoy); LOGICAL_DNS: the first address. */
static int hosts_differ(const struct target *t, const struct wf_addr *a, uint32_t n)
{
	if (t->logical)
		return !wf_addr_eq(&t->addrs[0], &a[0]);
	if (n != t->n)
		return 1;
	for (uint32_t i = 0; i < n; i++)
		if (!contains(t->addrs, t->n, &a[i]))
			return 1;
	return 0;
}

static uint64_t failure_delay(const struct target *t)
{
	if (!t->fail_base_ms)
		return t->refresh_ms;
	uint64_t ms = t->fail_base_ms;
	for (uint32_t i = 1; i < t->failures && ms < t->fail_max_ms; i++)
		ms *= 2;
	return ms < t->fail_max_ms ? ms : t->fail_max_ms;
}

static void on_done(struct wf_resolve_job *j)
{
	struct target *t = j->data;
	if (!t) { /* forgotten (a reload removed it) while it was in flight */
		wf_resolve_job_free(j);
		return;
	}
	t->job = NULL;
	if (j->rc) {
		wf_stat_inc(t->st_failure);
		if (!t->failures++)
			wf_warn("cluster '%s': cannot resolve '%s': %s; keeping the last hosts", t->cluster, t->name,
			        wf_resolve_strerror(j->rc));
		wf_timer_set(D.loop, &t->timer, failure_delay(t));
		wf_resolve_job_free(j);
		return;
	}
	wf_stat_inc(t->st_success);
	if (t->failures)
		wf_info("cluster '%s': '%s' resolves again", t->cluster, t->name);
	t->failures = 0;
	if (hosts_differ(t, j->addrs, j->n)) {
		char was[512], now[512];
		addrs_str(t->addrs, t->logical ? 1 : t->n, was, sizeof(was));
		addrs_str(j->addrs, t->logical ? 1 : j->n, now, sizeof(now));
		wf_info("cluster '%s': '%s' now resolves to %s (was %s): hosts change", t->cluster, t->name, now, was);
		free(t->addrs);
		t->addrs = j->addrs;
		t->n = j->n;
		j->addrs = NULL;
		wf_stat_inc(t->st_membership_change);
		D.changed();
	} else {
		wf_stat_inc(t->st_no_rebuild);
		if (t->logical) { /* the same first address; keep the latest list */
			free(t->addrs);
			t->addrs = j->addrs;
			t->n = j->n;
			j->addrs = NULL;
		}
	}
	wf_timer_set(D.loop, &t->timer, t->refresh_ms);
	wf_resolve_job_free(j);
}

static void on_timer(struct wf_loop *loop, struct wf_timer *tm)
{
	struct target *t = tm->data;
	if (t->job)
		return;
	wf_stat_inc(t->st_attempt);
	t->job = wf_resolve_job_new(t->name, t->family, t);
	wf_resolver_submit(t->job);
}

int wf_dns_start(struct wf_loop *loop, void (*changed)(void))
{
	D.loop = loop;
	D.changed = changed;
	return wf_resolver_start(loop, on_done);
}

#define TARGET_STATS(t) (t)->st_attempt, (t)->st_success, (t)->st_failure, (t)->st_no_rebuild, (t)->st_membership_change
#define N_TARGET_STATS 5

static void forget(struct target *t)
{
	if (D.loop)
		wf_timer_cancel(D.loop, &t->timer);
	if (t->job)
		t->job->data = NULL; /* on_done frees it when it comes back */
	wf_stats_release((const uint32_t[N_TARGET_STATS]){TARGET_STATS(t)}, N_TARGET_STATS);
	free(t->key);
	free(t->cluster);
	free(t->name);
	free(t->addrs);
	free(t);
}

/* Adopt a target's settings from cluster c (first sync, or c's config changed). */
static void configure(struct target *t, const struct wf_cluster *c)
{
	int rearm = t->refresh_ms != c->dns_refresh_ms || !wf_timer_armed(&t->timer);
	t->seen = 1;
	t->logical = c->type == WF_CLUSTER_LOGICAL_DNS;
	t->refresh_ms = c->dns_refresh_ms;
	t->fail_base_ms = c->dns_fail_base_ms;
	t->fail_max_ms = c->dns_fail_max_ms;
	const char *n = c->stat_name;
	const uint32_t before[N_TARGET_STATS] = {TARGET_STATS(t)}; /* given back once registered again */
	t->st_attempt = wf_stat_register(WF_STAT_COUNTER, "cluster", n, "update_attempt");
	t->st_success = wf_stat_register(WF_STAT_COUNTER, "cluster", n, "update_success");
	t->st_failure = wf_stat_register(WF_STAT_COUNTER, "cluster", n, "update_failure");
	t->st_no_rebuild = wf_stat_register(WF_STAT_COUNTER, "cluster", n, "update_no_rebuild");
	t->st_membership_change = wf_stat_register(WF_STAT_COUNTER, "cluster", n, "membership_change");
	wf_stats_release(before, N_TARGET_STATS);
	if (!t->counted) { /* the blocking first resolution, at load */
		t->counted = 1;
		wf_stat_inc(t->st_attempt);
		wf_stat_inc(t->st_success);
	}
	t->timer.cb = on_timer;
	if (rearm && !t->job && D.loop)
		wf_timer_set(D.loop, &t->timer, t->refresh_ms);
}

void wf_dns_sync(const struct wf_snapshot *s)
{
	for (struct target *t = D.targets; t; t = t->next)
		t->seen = 0;
	for (uint32_t i = 0; i < s->n_clusters; i++) {
		const struct wf_cluster *c = s->clusters[i];
		for (uint32_t k = 0; k < c->n_dns_names; k++) {
			char key[600];
			key_of(key, sizeof(key), c->name, c->dns_family, c->dns_names[k]);
			struct target *t = find(key);
			if (t && !t->seen)
				configure(t, c);
		}
	}
	for (struct target **p = &D.targets; *p;) {
		struct target *t = *p;
		if (t->seen) {
			p = &t->next;
			continue;
		}
		*p = t->next;
		forget(t);
	}
}

void wf_dns_stop(void)
{
	while (D.targets) {
		struct target *t = D.targets;
		D.targets = t->next;
		forget(t);
	}
	wf_resolver_stop();
}
