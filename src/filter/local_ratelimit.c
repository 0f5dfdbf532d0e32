/* envoy.filters.http.local_ratelimit: token buckets in this proxy (no rate limit service).
 * A LocalRateLimit in http_filters limits the whole listener; one in a route's or virtual
 * host's typed_per_filter_config replaces it there with a bucket of its own. Descriptors built
 * from the route's `rate_limits` actions (header values, client address, generic keys, ...)
 * select per-descriptor buckets; a request that matches none uses the default bucket. Over
 * the limit: 429 (or `status`), flag RL, counted; x-ratelimit-* headers on request.
 * A bucket is shared by all workers (core/tbucket.h). */
#include "filter/filters.h"

#include "envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.pb-c.h"
#include "core/tbucket.h"
#include "proxy/compile.h"
#include "proxy/stats.h"
#include "proxy/stream_info.h"
#include "xds/cfgdoc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Envoy__Extensions__Filters__Http__LocalRatelimit__V3__LocalRateLimit LocalRateLimit;
typedef Envoy__Type__V3__TokenBucket TokenBucket;

#define TYPE "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"

struct desc {
	struct wf_rl_entry *e; uint32_t n; /* key/value pairs, owned */
	struct wf_tbucket *b;
};

struct lrl {
	uint32_t status;
	struct wf_tbucket *dflt;               /* token_bucket, or NULL */
	struct desc *d; uint32_t n_d;
	uint32_t enabled_ppm, enforced_ppm;
	uint32_t stage;
	uint8_t xrl;                       /* enable_x_ratelimit_headers */
	struct wf_hdr_edits resp;          /* response_headers_to_add (limited responses) */
	uint32_t st_enabled, st_enforced, st_limited, st_ok;
};

/* Buckets outlive config snapshots: a reload, or a rebuild because a DNS answer changed,
 * must not hand every client a full bucket again. A bucket is found again by where its
 * TokenBucket sits in the config and by its settings (changed settings: a new, full bucket).
 * Never freed, like the circuit breaker state; one per distinct configured bucket. */
struct kept {
	char *key;
	struct wf_tbucket b;
	struct kept *next;
};
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kept *kept;

static struct wf_tbucket *bucket_for(const char *where, uint32_t max, uint32_t per_fill, uint64_t fill_ms)
{
	char key[1024];
	snprintf(key, sizeof(key), "%s|%u|%u|%llu", where, max, per_fill, (unsigned long long)fill_ms);
	pthread_mutex_lock(&kept_lock);
	struct kept *k;
	for (k = kept; k && strcmp(k->key, key); k = k->next)
		;
	if (!k) {
		k = calloc(1, sizeof(*k));
		k->key = strdup(key);
		wf_tbucket_init(&k->b, max, per_fill, fill_ms, wf_now_ms());
		k->next = kept;
		kept = k;
	}
	pthread_mutex_unlock(&kept_lock);
	return &k->b;
}

static int bucket_init(struct wf_compile *c, const TokenBucket *tb, struct wf_tbucket **b)
{
	if (!tb->max_tokens)
		return wf_cfg_err(c->doc, c->err, c->errlen, tb, "max_tokens", "max_tokens must be at least 1");
	uint64_t fill_ms = wf_duration_ms(tb->fill_interval);
	if (!tb->fill_interval || fill_ms < 50)
		return wf_cfg_err(c->doc, c->err, c->errlen, tb, "fill_interval", "fill_interval is required, at least 50ms");
	uint32_t per_fill = tb->tokens_per_fill ? tb->tokens_per_fill->value : 1;
	if (!per_fill)
		return wf_cfg_err(c->doc, c->err, c->errlen, tb, "tokens_per_fill", "tokens_per_fill must be at least 1");
	*b = bucket_for(wf_cfgdoc_path(c->doc, tb), tb->max_tokens, per_fill, fill_ms);
	return 0;
}

static void destroy(void *p)
{
	struct lrl *l = p;
	for (uint32_t i = 0; i < l->n_d; i++) {
		for (uint32_t k = 0; k < l->d[i].n; k++) {
			free((char *)l->d[i].e[k].key);
			free((char *)l->d[i].e[k].value);
		}
		free(l->d[i].e);
	}
	free(l->d);
	wf_hdr_edits_free(&l->resp);
	free(l);
}

static void *create(struct wf_compile *c, const char *stat_prefix, const ProtobufCMessage *m)
{
	const LocalRateLimit *r = (const LocalRateLimit *)m;
	if (!r->stat_prefix || !*r->stat_prefix) {
		wf_cfg_err(c->doc, c->err, c->errlen, r, "stat_prefix", "stat_prefix is required");
		return NULL;
	}
	if (r->local_rate_limit_per_downstream_connection) {
		wf_cfg_err(c->doc, c->err, c->errlen, r, "local_rate_limit_per_downstream_connection", "not supported yet");
		return NULL;
	}
	if (r->n_request_headers_to_add_when_not_enforced) {
		wf_cfg_err(c->doc, c->err, c->errlen, r, "request_headers_to_add_when_not_enforced", "not supported yet");
		return NULL;
	}
	struct lrl *l = calloc(1, sizeof(*l));
	char scope[256];
	snprintf(scope, sizeof(scope), "%s.http_local_rate_limit", r->stat_prefix);
	l->st_enabled = wf_stat_register(WF_STAT_COUNTER, scope, NULL, "enabled");
	l->st_enforced = wf_stat_register(WF_STAT_COUNTER, scope, NULL, "enforced");
	l->st_limited = wf_stat_register(WF_STAT_COUNTER, scope, NULL, "rate_limited");
	l->st_ok = wf_stat_register(WF_STAT_COUNTER, scope, NULL, "ok");
	l->status = 429;
	if (r->status) {
		if (r->status->code < 200 || r->status->code > 599) {
			wf_cfg_err(c->doc, c->err, c->errlen, r->status, "code", "status must be 200..599");
			goto fail;
		}
		l->status = (uint32_t)r->status->code;
	}
	if (r->token_bucket && bucket_init(c, r->token_bucket, &l->dflt) < 0)
		goto fail;
	l->enabled_ppm = wf_runtime_ppm(r->filter_enabled, 0);
	l->enforced_ppm = wf_runtime_ppm(r->filter_enforced, 0);
	l->stage = r->stage;
	l->xrl = r->enable_x_ratelimit_headers == ENVOY__EXTENSIONS__COMMON__RATELIMIT__V3__XRATE_LIMIT_HEADERS_RFCVERSION__DRAFT_VERSION_03;
	if (wf_compile_hdr_edits(c, r, r->n_response_headers_to_add, r->response_headers_to_add, 0, NULL, 0, &l->resp) < 0)
		goto fail;
	if (r->n_descriptors) {
		l->d = calloc(r->n_descriptors, sizeof(*l->d));
		for (size_t i = 0; i < r->n_descriptors; i++) {
			const Envoy__Extensions__Common__Ratelimit__V3__LocalRateLimitDescriptor *d = r->descriptors[i];
			struct desc *o = &l->d[l->n_d++];
			if (!d->n_entries) {
				wf_cfg_err(c->doc, c->err, c->errlen, d, "entries", "a descriptor needs entries");
				goto fail;
			}
			if (!d->token_bucket) {
				wf_cfg_err(c->doc, c->err, c->errlen, d, "token_bucket", "a descriptor needs a token_bucket");
				goto fail;
			}
			o->e = calloc(d->n_entries, sizeof(*o->e));
			for (size_t k = 0; k < d->n_entries; k++) {
				const char *key = d->entries[k]->key ? d->entries[k]->key : "";
				const char *val = d->entries[k]->value ? d->entries[k]->value : "";
				o->e[k] = (struct wf_rl_entry){strdup(key), strdup(val), (uint32_t)strlen(key), (uint32_t)strlen(val)};
				o->n++;
			}
			if (bucket_init(c, d->token_bucket, &o->b) < 0)
				goto fail;
		}
	}
	return l;
fail:
	destroy(l);
	return NULL;
}

/* The request's descriptors that a configured descriptor matches (same entries, in order). */
struct matched {
	const struct lrl *l;
	struct wf_tbucket *b[8];
	uint32_t n;
};

static void on_descriptor(struct wf_fstream *fs, const struct wf_rl_descriptor *d, void *arg)
{
	struct matched *m = arg;
	for (uint32_t i = 0; i < m->l->n_d && m->n < 8; i++) {
		const struct desc *cd = &m->l->d[i];
		if (cd->n != d->n)
			continue;
		uint32_t k;
		for (k = 0; k < d->n; k++)
			if (cd->e[k].key_len != d->e[k].key_len || memcmp(cd->e[k].key, d->e[k].key, d->e[k].key_len) ||
			    cd->e[k].value_len != d->e[k].value_len || memcmp(cd->e[k].value, d->e[k].value, d->e[k].value_len))
				break;
		if (k == d->n)
			m->b[m->n++] = cd->b;
	}
}

static void x_ratelimit(struct wf_fstream *fs, const struct wf_tbucket *b, uint32_t left, uint64_t reset_ms)
{
	char v[24];
	int n = snprintf(v, sizeof(v), "%u", b->max);
	wf_fs_add_response_header(fs, "x-ratelimit-limit", v, (size_t)n);
	n = snprintf(v, sizeof(v), "%u", left);
	wf_fs_add_response_header(fs, "x-ratelimit-remaining", v, (size_t)n);
	n = snprintf(v, sizeof(v), "%llu", (unsigned long long)((reset_ms + 999) / 1000));
	wf_fs_add_response_header(fs, "x-ratelimit-reset", v, (size_t)n);
}

static int on_request(struct wf_fstream *fs, const void *cfg, const void *route_cfg)
{
	const struct lrl *l = route_cfg ? route_cfg : cfg;
	if (!l->dflt && !l->n_d)
		return WF_FILTER_CONTINUE;
	if (!wf_fs_chance(fs, l->enabled_ppm))
		return WF_FILTER_CONTINUE;
	wf_stat_inc(l->st_enabled);
	struct matched m = {.l = l};
	if (l->n_d)
		wf_fs_rl_descriptors(fs, l->stage, on_descriptor, &m);
	if (!m.n && l->dflt)
		m.b[m.n++] = l->dflt;
	if (!m.n) {
		wf_stat_inc(l->st_ok);
		return WF_FILTER_CONTINUE;
	}
	/* every matching bucket must have a token; the headers tell of the first */
	uint64_t now = wf_loop_now(wf_fs_loop(fs)), reset_ms = 0, r;
	uint32_t left = 0, lf;
	int ok = 1;
	for (uint32_t i = 0; i < m.n; i++) {
		ok &= wf_tbucket_take(m.b[i], now, &lf, &r);
		if (!i)
			left = lf, reset_ms = r;
	}
	if (l->xrl)
		x_ratelimit(fs, m.b[0], left, reset_ms);
	if (ok) {
		wf_stat_inc(l->st_ok);
		return WF_FILTER_CONTINUE;
	}
	wf_stat_inc(l->st_limited);
	if (!wf_fs_chance(fs, l->enforced_ppm))
		return WF_FILTER_CONTINUE;
	wf_stat_inc(l->st_enforced);
	for (uint32_t i = 0; i < l->resp.n_add; i++)
		wf_fs_add_response_header(fs, l->resp.add[i].key, l->resp.add[i].value, l->resp.add[i].value_len);
	wf_fs_reply(fs, (int)l->status, WF_RF_RL, "local_rate_limited", -1);
	return WF_FILTER_STOP;
}

static const char *const route_types[] = {TYPE, NULL};

const struct wf_http_filter_ops wf_filter_local_ratelimit = {
	.name = "envoy.filters.http.local_ratelimit",
	.type = TYPE,
	.route_types = route_types,
	.needs_config = 1,
	.create = create,
	.create_route = create,
	.destroy = destroy,
	.destroy_route = destroy,
	.on_request = on_request,
};
