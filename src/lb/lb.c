#include "lb/lb.h"
#include "core/hash.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* xorshift64* (the multiply hides the state's weak low bits), mapped onto [0, n) with a
 * multiply-shift rather than a modulo, so consecutive small draws are independent. */
static uint64_t rand_below(uint64_t *s, uint64_t n)
{
	uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return (uint64_t)(((unsigned __int128)(x * 0x2545F4914F6CDD1Dull) * n) >> 64);
}

/* ---- building ------------------------------------------------------------------------------ */

struct point {
	uint64_t hash;
	uint32_t host;
};

static int cmp_point(const void *a, const void *b)
{
	const struct point *x = a, *y = b;
	return x->hash < y->hash ? -1 : x->hash > y->hash ? 1 : (int)x->host - (int)y->host;
}

/* The ring: host i gets R * weight_i / min_weight points, point j being the xxHash64 of
 * "KEY_j". R is minimum_ring_size itself, so the ring holds at least that many points, and R
 * does not depend on how many hosts there are: when a host comes or goes, every other host
 * keeps exactly its points, and only the keys of the host that changed move. (Envoy instead
 * scales the ring to fit the minimum, which shifts every host's points on a membership
 * change.) Only when R * hosts would pass maximum_ring_size is R lowered to fit. */
static int build_ring(struct wf_lb *lb, const char *const *keys, const struct wf_lb_params *p, char *err,
                      size_t errlen)
{
	uint64_t min_ring = p && p->min_ring ? p->min_ring : 1024;
	uint64_t max_ring = p && p->max_ring ? p->max_ring : 8 * 1024 * 1024;
	if (min_ring > max_ring) {
		snprintf(err, errlen, "minimum_ring_size %llu is above maximum_ring_size %llu",
		         (unsigned long long)min_ring, (unsigned long long)max_ring);
		return -EINVAL;
	}
	uint32_t min_w = UINT32_MAX;
	for (uint32_t i = 0; i < lb->n; i++)
		if (lb->weight[i] < min_w)
			min_w = lb->weight[i];
	double units = 0; /* the ring size for R = 1 */
	for (uint32_t i = 0; i < lb->n; i++)
		units += (double)lb->weight[i] / min_w;
	uint64_t r = min_ring;
	if ((double)r * units > (double)max_ring)
		r = (uint64_t)((double)max_ring / units) ? (uint64_t)((double)max_ring / units) : 1;
	uint64_t cap = 0;
	for (uint32_t i = 0; i < lb->n; i++)
		cap += (uint64_t)((double)r * lb->weight[i] / min_w + 0.5);
	if (cap > max_ring)
		cap = max_ring;
	struct point *pts = malloc((cap ? cap : 1) * sizeof(*pts));
	if (!pts)
		return -ENOMEM;
	uint64_t k = 0;
	char buf[320];
	for (uint32_t i = 0; i < lb->n && k < cap; i++) {
		uint64_t count = (uint64_t)((double)r * lb->weight[i] / min_w + 0.5);
		for (uint64_t j = 0; j < count && k < cap; j++) {
			int len = snprintf(buf, sizeof(buf), "%s_%llu", keys[i], (unsigned long long)j);
			pts[k].hash = wf_xxh64(buf, (size_t)len, 0);
			pts[k].host = i;
			k++;
		}
	}
	qsort(pts, k, sizeof(*pts), cmp_point);
	lb->ring = malloc((k ? k : 1) * sizeof(*lb->ring));
	lb->ring_host = malloc((k ? k : 1) * sizeof(*lb->ring_host));
	if (!lb->ring || !lb->ring_host) {
		free(pts);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < k; i++) {
		lb->ring[i] = pts[i].hash;
		lb->ring_host[i] = pts[i].host;
	}
	lb->ring_n = (uint32_t)k;
	free(pts);
	return 0;
}

static int is_prime(uint64_t n)
{
	if (n < 2)
		return 0;
	for (uint64_t d = 2; d * d <= n; d++)
		if (n % d == 0)
			return 0;
	return 1;
}

/* Maglev (Eisenbud et al., NSDI 2016): each host walks its own permutation of the table
 * (offset + j * skip mod M, both from its key) and claims the first free slot on its turn.
 * Weights: a host takes a turn each time its accumulated share reaches one slot. */
static int build_maglev(struct wf_lb *lb, const char *const *keys, const struct wf_lb_params *p, char *err,
                        size_t errlen)
{
	uint64_t m = p && p->table_size ? p->table_size : 65537;
	if (!is_prime(m) || m > (1u << 24)) {
		snprintf(err, errlen, "table_size %llu must be a prime number up to 16777216", (unsigned long long)m);
		return -EINVAL;
	}
	uint32_t n = lb->n;
	lb->table = malloc(m * sizeof(*lb->table));
	uint64_t *offset = malloc(n * sizeof(uint64_t)), *skip = malloc(n * sizeof(uint64_t)),
	         *next = calloc(n, sizeof(uint64_t));
	double *credit = calloc(n, sizeof(double));
	if (!lb->table || !offset || !skip || !next || !credit) {
		free(offset), free(skip), free(next), free(credit);
		return -ENOMEM;
	}
	uint32_t max_w = 0;
	for (uint32_t i = 0; i < n; i++) {
		size_t len = strlen(keys[i]);
		offset[i] = wf_xxh64(keys[i], len, 0) % m;
		skip[i] = wf_xxh64(keys[i], len, 1) % (m - 1) + 1;
		if (lb->weight[i] > max_w)
			max_w = lb->weight[i];
	}
	for (uint64_t s = 0; s < m; s++)
		lb->table[s] = UINT32_MAX;
	uint64_t filled = 0;
	while (filled < m) {
		for (uint32_t i = 0; i < n && filled < m; i++) {
			credit[i] += (double)lb->weight[i] / max_w;
			if (credit[i] < 1.0)
				continue;
			credit[i] -= 1.0;
			uint64_t c;
			do
				c = (offset[i] + next[i]++ * skip[i]) % m;
			while (lb->table[c] != UINT32_MAX);
			lb->table[c] = i;
			filled++;
		}
	}
	lb->table_n = (uint32_t)m;
	free(offset), free(skip), free(next), free(credit);
	return 0;
}

int wf_lb_build(struct wf_lb *lb, enum wf_lb_kind kind, const uint32_t *weights, const char *const *keys,
                uint32_t n, const struct wf_lb_params *p, char *err, size_t errlen)
{
	memset(lb, 0, sizeof(*lb));
	lb->kind = (uint8_t)kind;
	lb->n = n;
	lb->weight = malloc((n ? n : 1) * sizeof(*lb->weight));
	if (!lb->weight)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		lb->weight[i] = weights[i] ? weights[i] : 1;
		lb->weighted |= lb->weight[i] != lb->weight[0];
	}
	lb->choice_count = p && p->choice_count ? p->choice_count : 2;
	if (!n)
		return 0;
	if (kind == WF_LB_RING_HASH)
		return build_ring(lb, keys, p, err, errlen);
	if (kind == WF_LB_MAGLEV)
		return build_maglev(lb, keys, p, err, errlen);
	return 0;
}

void wf_lb_free(struct wf_lb *lb)
{
	free(lb->weight);
	free(lb->ring);
	free(lb->ring_host);
	free(lb->table);
	memset(lb, 0, sizeof(*lb));
}

/* ---- picking ------------------------------------------------------------------------------- */

static int pick_rr(const struct wf_lb *lb, struct wf_lb_ctx *ctx)
{
	int64_t total = 0, best_v = 0;
	int best = -1;
	for (uint32_t i = 0; i < lb->n; i++) {
		if (!ctx->usable[i])
			continue;
		ctx->rr[i] += lb->weight[i];
		total += lb->weight[i];
		if (best < 0 || ctx->rr[i] > best_v) {
			best = (int)i;
			best_v = ctx->rr[i];
		}
	}
	if (best >= 0)
		ctx->rr[best] -= total;
	return best;
}

/* A usable host chosen at random, in proportion to weight when `by_weight`. */
static int pick_random(const struct wf_lb *lb, struct wf_lb_ctx *ctx, int by_weight)
{
	uint64_t total = 0;
	for (uint32_t i = 0; i < lb->n; i++)
		if (ctx->usable[i])
			total += by_weight ? lb->weight[i] : 1;
	if (!total)
		return -1;
	uint64_t x = rand_below(ctx->rng, total);
	for (uint32_t i = 0; i < lb->n; i++) {
		if (!ctx->usable[i])
			continue;
		uint64_t w = by_weight ? lb->weight[i] : 1;
		if (x < w)
			return (int)i;
		x -= w;
	}
	return -1;
}

static int pick_least(const struct wf_lb *lb, struct wf_lb_ctx *ctx)
{
	int best = -1;
	double best_score = 0;
	for (uint32_t k = 0; k < lb->choice_count; k++) {
		int i = pick_random(lb, ctx, lb->weighted);
		if (i < 0)
			return -1;
		int64_t active = ctx->active ? ctx->active[i] : 0;
		/* fewer active requests wins; with weights, weight / (active + 1) (Envoy's formula) */
		double score = lb->weighted ? (double)lb->weight[i] / (double)(active + 1) : -(double)active;
		if (best < 0 || score > best_score) {
			best = i;
			best_score = score;
		}
	}
	return best;
}

static int pick_ring(const struct wf_lb *lb, struct wf_lb_ctx *ctx)
{
	uint32_t lo = 0, hi = lb->ring_n;
	while (lo < hi) { /* first point >= hash */
		uint32_t mid = lo + (hi - lo) / 2;
		if (lb->ring[mid] < ctx->hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* walk clockwise past hosts that cannot take traffic */
	for (uint32_t k = 0; k < lb->ring_n; k++) {
		uint32_t h = lb->ring_host[(lo + k) % lb->ring_n];
		if (ctx->usable[h])
			return (int)h;
	}
	return -1;
}

static int pick_maglev(const struct wf_lb *lb, struct wf_lb_ctx *ctx)
{
	uint64_t slot = ctx->hash % lb->table_n;
	uint32_t h = lb->table[slot];
	if (ctx->usable[h])
		return (int)h;
	/* an unusable host's keys spread over the others: probe with a second hash */
	uint64_t h2 = wf_xxh64(&ctx->hash, sizeof(ctx->hash), 7);
	for (uint32_t k = 1; k <= 64; k++) {
		h = lb->table[(h2 + k * 0x9E3779B97F4A7C15ull) % lb->table_n];
		if (ctx->usable[h])
			return (int)h;
	}
	return pick_random(lb, ctx, 0);
}

int wf_lb_pick(const struct wf_lb *lb, struct wf_lb_ctx *ctx)
{
	if (!lb->n)
		return -1;
	switch (lb->kind) {
	case WF_LB_ROUND_ROBIN:
		return pick_rr(lb, ctx);
	case WF_LB_LEAST_REQUEST:
		return pick_least(lb, ctx);
	case WF_LB_RANDOM:
		return pick_random(lb, ctx, 0);
	case WF_LB_RING_HASH:
		return ctx->has_hash ? pick_ring(lb, ctx) : pick_random(lb, ctx, 0);
	case WF_LB_MAGLEV:
		return ctx->has_hash ? pick_maglev(lb, ctx) : pick_random(lb, ctx, 0);
	}
	return -1;
}
