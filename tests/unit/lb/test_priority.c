/* Priority loads with the overprovisioning factor, panic, and locality effective weights:
 * the figures of Envoy's priority-level and panic-threshold documentation. */
#include "test.h"

#include "lb/priority.h"

#include <math.h>

static struct wf_prio_load L;

static void compute(const uint32_t *healthy, const uint32_t *total, uint32_t n, double panic)
{
	wf_prio_load_compute(&L, healthy, total, n, 140, panic);
}

TEST(all_healthy_p0_takes_everything)
{
	uint32_t h[] = {2, 2}, t[] = {2, 2};
	compute(h, t, 2, 50);
	CHECK_EQ(L.load[0], 100);
	CHECK_EQ(L.load[1], 0);
	CHECK_EQ(L.panic[0] + L.panic[1], 0);
}

TEST(overprovisioning_spills_to_p1)
{
	uint32_t h[] = {1, 2}, t[] = {2, 2}; /* P0 50% healthy: 1.4 x 50 = 70 */
	compute(h, t, 2, 50);
	CHECK_EQ(L.load[0], 70);
	CHECK_EQ(L.load[1], 30);
	uint32_t h2[] = {4, 2}, t2[] = {5, 2}; /* 80% x 1.4 = 112: still all of it */
	compute(h2, t2, 2, 50);
	CHECK_EQ(L.load[0], 100);
	uint32_t h3[] = {0, 2}, t3[] = {2, 2};
	compute(h3, t3, 2, 50);
	CHECK_EQ(L.load[0], 0);
	CHECK_EQ(L.load[1], 100);
	CHECK_EQ(L.panic[1], 0);
	/* three levels: 20% x 1.4 = 28, 20% x 1.4 = 28, the rest to P2 */
	uint32_t h4[] = {1, 1, 5}, t4[] = {5, 5, 5};
	compute(h4, t4, 3, 50);
	CHECK_EQ(L.load[0], 28);
	CHECK_EQ(L.load[1], 28);
	CHECK_EQ(L.load[2], 44);
}

TEST(normalized_when_total_health_is_short)
{
	/* P0 20% x 1.4 = 28, P1 20% x 1.4 = 28: total 56, normalized to 50 / 50 */
	uint32_t h[] = {1, 1}, t[] = {5, 5};
	compute(h, t, 2, 0);
	CHECK_EQ(L.load[0], 50);
	CHECK_EQ(L.load[1], 50);
	CHECK_EQ(L.panic[0] + L.panic[1], 0); /* threshold 0: no panic */
}

TEST(panic_per_level_and_total)
{
	uint32_t h[] = {1}, t[] = {4}; /* 25% healthy < 50%: panic */
	compute(h, t, 1, 50);
	CHECK_EQ(L.load[0], 100);
	CHECK_EQ(L.panic[0], 1);
	compute(h, t, 1, 20); /* 25% >= 20%: no panic */
	CHECK_EQ(L.panic[0], 0);
	/* both levels below the threshold: load by host count (3 : 1) */
	uint32_t h2[] = {1, 0}, t2[] = {6, 2};
	compute(h2, t2, 2, 50);
	CHECK_EQ(L.panic[0] + L.panic[1], 2);
	CHECK_EQ(L.load[0], 75);
	CHECK_EQ(L.load[1], 25);
	/* nothing healthy, panic disabled: P0 takes it all (and finds nobody) */
	uint32_t h3[] = {0, 0}, t3[] = {2, 2};
	compute(h3, t3, 2, 0);
	CHECK_EQ(L.load[0], 100);
	CHECK_EQ(L.panic[0] + L.panic[1], 0);
	/* total health 100 disregards panic even when P0 alone is below the threshold */
	uint32_t h4[] = {1, 4}, t4[] = {4, 4};
	compute(h4, t4, 2, 50);
	CHECK_EQ(L.panic[0], 0);
	CHECK_EQ(L.load[0], 35);
	CHECK_EQ(L.load[1], 65);
}

TEST(choose_follows_the_loads)
{
	uint32_t h[] = {1, 2}, t[] = {2, 2};
	compute(h, t, 2, 50);
	uint32_t n[2] = {0, 0};
	for (uint64_t x = 0; x < 1000; x++)
		n[wf_prio_choose(&L, x)]++;
	CHECK_EQ(n[0], 700);
	CHECK_EQ(n[1], 300);
}

TEST(locality_effective_weight)
{
	CHECK(fabs(wf_locality_effective_weight(10, 4, 4, 140) - 10.0) < 1e-9);
	CHECK(fabs(wf_locality_effective_weight(10, 3, 4, 140) - 10.0) < 1e-9);     /* 75% x 1.4 > 1 */
	CHECK(fabs(wf_locality_effective_weight(10, 1, 2, 140) - 7.0) < 1e-9);      /* 50% x 1.4 */
	CHECK(fabs(wf_locality_effective_weight(10, 0, 2, 140) - 0.0) < 1e-9);
	CHECK(fabs(wf_locality_effective_weight(10, 0, 0, 140) - 0.0) < 1e-9);
}

TEST_MAIN("priority", T(all_healthy_p0_takes_everything), T(overprovisioning_spills_to_p1),
          T(normalized_when_total_health_is_short), T(panic_per_level_and_total), T(choose_follows_the_loads),
          T(locality_effective_weight))
