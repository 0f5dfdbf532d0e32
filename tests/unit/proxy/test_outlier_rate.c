/* Success-rate and failure-percentage outliers over one interval's counts (Envoy's rules). */
#include "test.h"

#include "proxy/outlier_rate.h"

static uint8_t out[8];

TEST(success_rate_ejects_the_low_host)
{
	/* rates 100, 100, 100, 100, 50: mean 90, stdev 20, limit 90 - 1.9 x 20 = 52 */
	struct wf_ol_sample s[5] = {{100, 0}, {100, 0}, {100, 0}, {100, 0}, {100, 50}};
	CHECK_EQ(wf_ol_success_rate_outliers(s, 5, 5, 100, 1900, out, NULL), 1);
	CHECK_EQ(out[4], 1);
	CHECK_EQ(out[0], 0);
	double rate[5];
	wf_ol_success_rate_outliers(s, 5, 5, 100, 1900, out, rate);
	CHECK(rate[0] == 100.0 && rate[4] == 50.0);
	wf_ol_success_rate_outliers(s, 5, 6, 100, 1900, out, rate); /* too few hosts: none computed */
	CHECK(rate[0] == -1 && rate[4] == -1);
	/* a larger factor (2.5): limit 40, nobody */
	CHECK_EQ(wf_ol_success_rate_outliers(s, 5, 5, 100, 2500, out, NULL), 0);
	/* all equal: stdev 0, nobody */
	struct wf_ol_sample same[5] = {{10, 5}, {10, 5}, {10, 5}, {10, 5}, {10, 5}};
	CHECK_EQ(wf_ol_success_rate_outliers(same, 5, 5, 10, 1900, out, NULL), 0);
}

TEST(success_rate_needs_volume_and_hosts)
{
	struct wf_ol_sample s[5] = {{100, 0}, {100, 0}, {100, 0}, {99, 0}, {100, 50}};
	/* one host under the request volume: 4 qualify, minimum 5 */
	CHECK_EQ(wf_ol_success_rate_outliers(s, 5, 5, 100, 1900, out, NULL), 0);
	/* 4 hosts: 100, 100, 100, 50: mean 87.5, stdev 21.7; factor 1.0 puts the limit at 65.8 */
	CHECK_EQ(wf_ol_success_rate_outliers(s, 5, 4, 100, 1000, out, NULL), 1);
	CHECK_EQ(out[4], 1);
	/* an ejected host is not part of the statistics */
	struct wf_ol_sample e[5] = {{100, 0}, {100, 0}, {100, 0}, {100, 0, 1}, {100, 50}};
	CHECK_EQ(wf_ol_success_rate_outliers(e, 5, 5, 100, 1900, out, NULL), 0);
}

TEST(failure_percentage_threshold)
{
	struct wf_ol_sample s[5] = {{50, 0}, {50, 1}, {50, 0}, {50, 0}, {50, 25}};
	CHECK_EQ(wf_ol_failure_percentage_outliers(s, 5, 5, 50, 85, out), 0);
	CHECK_EQ(wf_ol_failure_percentage_outliers(s, 5, 5, 50, 50, out), 1); /* 50% >= 50% */
	CHECK_EQ(out[4], 1);
	CHECK_EQ(wf_ol_failure_percentage_outliers(s, 5, 6, 50, 50, out), 0); /* too few hosts */
	CHECK_EQ(wf_ol_failure_percentage_outliers(s, 5, 5, 51, 50, out), 0); /* too little volume */
}

TEST_MAIN("outlier_rate", T(success_rate_ejects_the_low_host), T(success_rate_needs_volume_and_hosts),
          T(failure_percentage_threshold))
