/* A token bucket shared by threads without a lock: max tokens, `per_fill` more every `fill_ms`
 * (up to max), refilled lazily from the caller's clock. Its state is one 64-bit word
 * (tokens << 32 | refills since t0) updated with compare-and-swap, so taking a token costs
 * one CAS and no timer runs while nobody asks. */
#ifndef WF_CORE_TBUCKET_H
#define WF_CORE_TBUCKET_H

#include <stdint.h>

struct wf_tbucket {
	uint32_t max, per_fill;
	uint64_t fill_ms, t0;
	uint64_t state;
};

/* A full bucket; t0: now on the clock later calls use (ms). */
void wf_tbucket_init(struct wf_tbucket *b, uint32_t max, uint32_t per_fill, uint64_t fill_ms, uint64_t t0);
/* Take a token at `now` (ms): 1 when there was one, else 0. *left: tokens left after;
 * *reset_ms: time to the next refill. A caller whose clock lags behind another's takes
 * tokens without refilling. */
int wf_tbucket_take(struct wf_tbucket *b, uint64_t now, uint32_t *left, uint64_t *reset_ms);

#endif
