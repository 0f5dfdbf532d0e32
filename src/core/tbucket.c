#include "core/tbucket.h"

void wf_tbucket_init(struct wf_tbucket *b, uint32_t max, uint32_t per_fill, uint64_t fill_ms, uint64_t t0)
{
	b->max = max;
	b->per_fill = per_fill;
	b->fill_ms = fill_ms;
	b->t0 = t0;
	b->state = (uint64_t)max << 32;
}

int wf_tbucket_take(struct wf_tbucket *b, uint64_t now, uint32_t *left, uint64_t *reset_ms)
{
	uint64_t since = now > b->t0 ? now - b->t0 : 0;
	uint32_t fills = (uint32_t)(since / b->fill_ms);
	*reset_ms = b->fill_ms - since % b->fill_ms;
	uint64_t old = __atomic_load_n(&b->state, __ATOMIC_RELAXED);
	for (;;) {
		uint64_t tokens = old >> 32;
		uint32_t at = (uint32_t)old;
		int32_t due = (int32_t)(fills - at); /* <= 0 for a caller whose clock lags */
		if (due > 0) {
			tokens += (uint64_t)due * b->per_fill;
			if (tokens > b->max)
				tokens = b->max;
			at = fills;
		}
		int ok = tokens > 0;
		tokens -= (uint64_t)ok;
		if (__atomic_compare_exchange_n(&b->state, &old, tokens << 32 | at, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
			*left = (uint32_t)tokens;
			return ok;
		}
	}
}
