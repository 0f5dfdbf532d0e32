/* Active health checking: the threshold state machine, status ranges, TCP receive matching,
 * intervals with jitter, and hex payload decoding. */
#include "test.h"

#include "core/str.h"
#include "proxy/health.h"

static struct wf_hc_range expected[] = {{200, 300}}, retriable[] = {{503, 504}};

static struct wf_hc_cfg cfg(uint32_t unhealthy, uint32_t healthy)
{
	return (struct wf_hc_cfg){.unhealthy_threshold = unhealthy, .healthy_threshold = healthy, .interval_ms = 1000,
	                          .unhealthy_ms = 3000, .unhealthy_edge_ms = 500, .healthy_edge_ms = 700,
	                          .expected = expected, .n_expected = 1, .retriable = retriable, .n_retriable = 1};
}

TEST(first_success_marks_healthy_at_once)
{
	struct wf_hc_cfg c = cfg(2, 3);
	struct wf_hc_state s;
	wf_hc_state_init(&s);
	CHECK_EQ(s.failed, 1);
	CHECK_EQ(wf_hc_state_record(&s, &c, WF_HC_SUCCESS), 1);
	CHECK_EQ(s.failed, 0);
}

TEST(first_failure_then_healthy_threshold)
{
	struct wf_hc_cfg c = cfg(2, 3);
	struct wf_hc_state s;
	wf_hc_state_init(&s);
	CHECK_EQ(wf_hc_state_record(&s, &c, WF_HC_NETWORK), 0);
	CHECK_EQ(s.failed, 1);
	CHECK_EQ(wf_hc_state_record(&s, &c, WF_HC_SUCCESS), 0);
	CHECK_EQ(wf_hc_state_record(&s, &c, WF_HC_SUCCESS), 0);
	CHECK_EQ(wf_hc_state_record(&s, &c, WF_HC_SUCCESS), 1);
	CHECK_EQ(s.failed, 0);
}

TEST(network_failures_count_to_unhealthy_threshold)
{
	struct wf_hc_cfg c = cfg(3, 1);
	struct wf_hc_state s;
	wf_hc_state_init(&s);
	wf_hc_state_record(&s, &c, WF_HC_SUCCESS);
	CHECK_EQ(wf_hc_state_record(&s, &c, WF_HC_NETWORK), 0);
	CHECK_EQ(wf_hc_state_record(&s, &c, WF_HC_RETRIABLE), 0);
	CHECK_EQ(wf_hc_state_record(&s, &c, WF_HC_SUCCESS), 0); /* resets the count */
	CHECK_EQ(wf_hc_state_record(&s, &c, WF_HC_NETWORK), 0);
	CHECK_EQ(wf_hc_state_record(&s, &c, WF_HC_NETWORK), 0);
	CHECK_EQ(s.failed, 0);
	CHECK_EQ(wf_hc_state_record(&s, &c, WF_HC_NETWORK), 1);
	CHECK_EQ(s.failed, 1);
	CHECK_EQ(wf_hc_state_record(&s, &c, WF_HC_NETWORK), 0);
}

TEST(active_failure_is_immediate)
{
	struct wf_hc_cfg c = cfg(5, 2);
	struct wf_hc_state s;
	wf_hc_state_init(&s);
	wf_hc_state_record(&s, &c, WF_HC_SUCCESS);
	CHECK_EQ(wf_hc_state_record(&s, &c, WF_HC_ACTIVE), 1);
	CHECK_EQ(s.failed, 1);
	/* a failure between successes starts the healthy count over */
	CHECK_EQ(wf_hc_state_record(&s, &c, WF_HC_SUCCESS), 0);
	CHECK_EQ(wf_hc_state_record(&s, &c, WF_HC_NETWORK), 0);
	CHECK_EQ(wf_hc_state_record(&s, &c, WF_HC_SUCCESS), 0);
	CHECK_EQ(wf_hc_state_record(&s, &c, WF_HC_SUCCESS), 1);
}

TEST(status_ranges)
{
	struct wf_hc_cfg c = cfg(1, 1);
	CHECK_EQ(wf_hc_http_status(&c, 200), WF_HC_SUCCESS);
	CHECK_EQ(wf_hc_http_status(&c, 299), WF_HC_SUCCESS);
	CHECK_EQ(wf_hc_http_status(&c, 300), WF_HC_ACTIVE);   /* end is exclusive */
	CHECK_EQ(wf_hc_http_status(&c, 199), WF_HC_ACTIVE);
	CHECK_EQ(wf_hc_http_status(&c, 503), WF_HC_RETRIABLE);
	CHECK_EQ(wf_hc_http_status(&c, 504), WF_HC_ACTIVE);
	c.n_retriable = 0;
	CHECK_EQ(wf_hc_http_status(&c, 503), WF_HC_ACTIVE);
}

TEST(tcp_blocks_in_order_not_contiguous)
{
	struct wf_hc_block b[] = {{"po", 2}, {"ng", 2}};
	struct wf_hc_cfg c = {.receive = b, .n_receive = 2};
	CHECK(wf_hc_tcp_match(&c, "pong", 4));
	CHECK(wf_hc_tcp_match(&c, "xxpo--ngyy", 10));
	CHECK(!wf_hc_tcp_match(&c, "ngpo", 4));
	CHECK(!wf_hc_tcp_match(&c, "pon", 3));
	CHECK(!wf_hc_tcp_match(&c, "nope", 4));
	c.n_receive = 0;
	CHECK(wf_hc_tcp_match(&c, "", 0));
}

TEST(intervals_and_jitter)
{
	struct wf_hc_cfg c = cfg(1, 1);
	struct wf_hc_state s = {.failed = 0};
	CHECK_EQ(wf_hc_next_ms(&c, &s, 0, 12345), 1000);
	CHECK_EQ(wf_hc_next_ms(&c, &s, 1, 12345), 700);   /* healthy_edge_interval */
	s.failed = 1;
	CHECK_EQ(wf_hc_next_ms(&c, &s, 1, 12345), 500);   /* unhealthy_edge_interval */
	CHECK_EQ(wf_hc_next_ms(&c, &s, 0, 12345), 3000);  /* unhealthy_interval */
	s.failed = 0;
	c.jitter_ms = 100;
	c.jitter_percent = 10;
	for (uint64_t r = 1; r < 1000000; r = r * 7919 + 13) {
		uint64_t ms = wf_hc_next_ms(&c, &s, 0, r * 0x9E3779B97F4A7C15ull);
		CHECK(ms >= 1000 && ms < 1000 + 100 + 100);
	}
}

TEST(hex_payloads)
{
	uint8_t out[8];
	CHECK_EQ(wf_hex_decode("000000FF", 8, out), 4);
	CHECK_EQ(out[3], 0xff);
	CHECK_EQ(out[0], 0);
	CHECK_EQ(wf_hex_decode("70696e67", 8, out), 4);
	CHECK(!memcmp(out, "ping", 4));
	CHECK_EQ(wf_hex_decode("abc", 3, out), -1);
	CHECK_EQ(wf_hex_decode("zz", 2, out), -1);
	CHECK_EQ(wf_hex_decode("", 0, out), 0);
}

TEST_MAIN("health", T(first_success_marks_healthy_at_once), T(first_failure_then_healthy_threshold),
          T(network_failures_count_to_unhealthy_threshold), T(active_failure_is_immediate), T(status_ranges),
          T(tcp_blocks_in_order_not_contiguous), T(intervals_and_jitter), T(hex_payloads))
