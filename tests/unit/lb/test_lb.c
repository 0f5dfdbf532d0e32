/* Load-balancing policies: distribution, least request, and consistency of the hash policies. */
#include "test.h"

#include "core/hash.h"
#include "lb/lb.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define MAXH 16

static char keybuf[MAXH][32];
static const char *keys[MAXH];

static void mkkeys(uint32_t n, uint32_t skip)
{
	/* hosts 10.0.0.1:80..; `skip` (1-based, 0 none) leaves one host out */
	uint32_t k = 0;
	for (uint32_t i = 0; i < n + (skip ? 1 : 0); i++) {
		if (skip && i + 1 == skip)
			continue;
		snprintf(keybuf[k], sizeof(keybuf[k]), "10.0.0.%u:80", i + 1);
		keys[k] = keybuf[k];
		k++;
	}
}

static int pick(const struct wf_lb *lb, uint64_t hash, const uint8_t *usable)
{
	static uint64_t rng = 1;
	static int64_t rr[MAXH];
	struct wf_lb_ctx ctx = {.rng = &rng, .rr = rr, .usable = usable, .hash = hash, .has_hash = 1};
	return wf_lb_pick(lb, &ctx);
}

static const uint8_t all_usable[MAXH] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
static const uint32_t ones[MAXH] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

TEST(round_robin_weighted_smooth)
{
	struct wf_lb lb;
	uint32_t w[2] = {3, 1};
	mkkeys(2, 0);
	CHECK_EQ(wf_lb_build(&lb, WF_LB_ROUND_ROBIN, w, keys, 2, NULL, NULL, 0), 0);
	uint64_t rng = 1;
	int64_t rr[2] = {0, 0};
	struct wf_lb_ctx ctx = {.rng = &rng, .rr = rr, .usable = all_usable};
	char seq[9] = {0};
	for (int i = 0; i < 8; i++)
		seq[i] = (char)('a' + wf_lb_pick(&lb, &ctx));
	const char *got = seq;
	CHECK_STR(got, 8, "aabaaaba");
	wf_lb_free(&lb);
}

TEST(random_is_uniform_and_skips_unusable)
{
	struct wf_lb lb;
	mkkeys(4, 0);
	CHECK_EQ(wf_lb_build(&lb, WF_LB_RANDOM, ones, keys, 4, NULL, NULL, 0), 0);
	uint8_t usable[4] = {1, 1, 0, 1};
	uint64_t rng = 12345;
	struct wf_lb_ctx ctx = {.rng = &rng, .usable = usable};
	int count[4] = {0};
	const int n = 30000;
	for (int i = 0; i < n; i++)
		count[wf_lb_pick(&lb, &ctx)]++;
	CHECK_EQ(count[2], 0);
	/* each of 3 hosts: p = 1/3; 4.5 standard deviations of the binomial */
	double sd = sqrt(n * (1.0 / 3) * (2.0 / 3));
	for (int i = 0; i < 4; i++)
		if (i != 2)
			CHECK(fabs(count[i] - n / 3.0) < 4.5 * sd);
	usable[0] = usable[1] = usable[3] = 0;
	CHECK_EQ(wf_lb_pick(&lb, &ctx), -1);
	wf_lb_free(&lb);
}

TEST(least_request_prefers_idle_hosts)
{
	struct wf_lb lb;
	mkkeys(4, 0);
	struct wf_lb_params p = {.choice_count = 4};
	CHECK_EQ(wf_lb_build(&lb, WF_LB_LEAST_REQUEST, ones, keys, 4, &p, NULL, 0), 0);
	int64_t active[4] = {5, 0, 9, 7};
	uint64_t rng = 99;
	struct wf_lb_ctx ctx = {.rng = &rng, .usable = all_usable, .active = active};
	int hits = 0;
	for (int i = 0; i < 1000; i++)
		hits += wf_lb_pick(&lb, &ctx) == 1;
	/* host 1 wins whenever it is among the 4 random candidates: 1 - (3/4)^4 = 68% */
	CHECK(hits > 600 && hits < 760);
	wf_lb_free(&lb);
	/* two choices: the busiest host is never chosen over an idle one when both are drawn */
	CHECK_EQ(wf_lb_build(&lb, WF_LB_LEAST_REQUEST, ones, keys, 4, NULL, NULL, 0), 0);
	int busiest = 0;
	for (int i = 0; i < 1000; i++)
		busiest += wf_lb_pick(&lb, &ctx) == 2;
	CHECK(busiest < 1000 / 16 + 30); /* only when both draws are host 2: 1/16 */
	wf_lb_free(&lb);
}

/* Keys that stay on the same host when host `gone` (1-based) of n is removed. */
static double stay_fraction(enum wf_lb_kind kind, uint32_t n, uint32_t gone, const struct wf_lb_params *p)
{
	struct wf_lb a, b;
	mkkeys(n, 0);
	if (wf_lb_build(&a, kind, ones, keys, n, p, NULL, 0))
		return -1;
	char before[MAXH][32];
	for (uint32_t i = 0; i < n; i++)
		snprintf(before[i], 32, "%s", keys[i]);
	mkkeys(n - 1, gone);
	if (wf_lb_build(&b, kind, ones, keys, n - 1, p, NULL, 0))
		return -1;
	int stayed = 0, total = 0;
	for (uint64_t k = 0; k < 20000; k++) {
		uint64_t h = wf_xxh64(&k, sizeof(k), 0);
		int x = pick(&a, h, all_usable), y = pick(&b, h, all_usable);
		if (x + 1 == (int)gone)
			continue; /* its keys must move */
		total++;
		stayed += !strcmp(before[x], keys[y]);
	}
	wf_lb_free(&a);
	wf_lb_free(&b);
	return (double)stayed / total;
}

TEST(ring_hash_is_consistent)
{
	/* the bar: >= ~(1 - 1/N) of all keys stay; of the keys that were not on the removed
	 * host, (nearly) all must stay */
	CHECK(stay_fraction(WF_LB_RING_HASH, 10, 4, NULL) > 0.97);
}

TEST(maglev_is_consistent)
{
	CHECK(stay_fraction(WF_LB_MAGLEV, 10, 4, NULL) > 0.90);
}

static void spread(enum wf_lb_kind kind)
{
	struct wf_lb lb;
	uint32_t w[4] = {1, 1, 1, 3};
	mkkeys(4, 0);
	CHECK_EQ(wf_lb_build(&lb, kind, w, keys, 4, NULL, NULL, 0), 0);
	int count[4] = {0};
	const int n = 60000;
	for (uint64_t k = 0; k < (uint64_t)n; k++)
		count[pick(&lb, wf_xxh64(&k, sizeof(k), 0), all_usable)]++;
	/* shares 1/6, 1/6, 1/6, 1/2 within 10% (the ring and table quantize the weights) */
	CHECK(fabs(count[3] / (double)n - 0.5) < 0.05);
	for (int i = 0; i < 3; i++)
		CHECK(fabs(count[i] / (double)n - 1.0 / 6) < 0.03);
	/* an unusable host's keys move, the others' keys do not */
	uint8_t usable[4] = {1, 0, 1, 1};
	for (uint64_t k = 0; k < 5000; k++) {
		uint64_t h = wf_xxh64(&k, sizeof(k), 0);
		int before = pick(&lb, h, all_usable), after = pick(&lb, h, usable);
		CHECK(after != 1);
		if (before != 1)
			CHECK_EQ(after, before);
	}
	wf_lb_free(&lb);
}

TEST(ring_hash_weights_and_unusable) { spread(WF_LB_RING_HASH); }
TEST(maglev_weights_and_unusable) { spread(WF_LB_MAGLEV); }

TEST(bad_parameters)
{
	struct wf_lb lb;
	char err[128];
	mkkeys(2, 0);
	struct wf_lb_params p = {.table_size = 65536};
	CHECK(wf_lb_build(&lb, WF_LB_MAGLEV, ones, keys, 2, &p, err, sizeof(err)) < 0);
	CHECK(strstr(err, "prime") != NULL);
	wf_lb_free(&lb);
	struct wf_lb_params q = {.min_ring = 4096, .max_ring = 1024};
	CHECK(wf_lb_build(&lb, WF_LB_RING_HASH, ones, keys, 2, &q, err, sizeof(err)) < 0);
	CHECK(strstr(err, "minimum_ring_size") != NULL);
	wf_lb_free(&lb);
}

TEST_MAIN("lb", T(round_robin_weighted_smooth), T(random_is_uniform_and_skips_unusable),
          T(least_request_prefers_idle_hosts), T(ring_hash_is_consistent), T(maglev_is_consistent),
          T(ring_hash_weights_and_unusable), T(maglev_weights_and_unusable), T(bad_parameters))
