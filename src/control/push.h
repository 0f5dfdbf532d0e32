/* Push: a change to what the control plane serves is debounced — pushed 100 ms after the last
 * change, but never more than 1 s after the first one of a burst — then compiled once and
 * sent to every connected stream (what changed for it, in make-before-break order), a slice
 * of streams per loop iteration (wf_ads_pump) so that the loop keeps writing what was sent
 * and reading ACKs meanwhile. */
#ifndef WF_CONTROL_PUSH_H
#define WF_CONTROL_PUSH_H

#include <stdint.h>

#include "control/ads.h"
#include "core/loop.h"

struct wf_push {
	struct wf_loop *loop;
	struct wf_timer t;
	uint64_t first;            /* when the burst's first change came (0: none pending) */
	uint64_t debounce_ms, max_ms;
	/* Compile the new input (e.g. re-read a file): >0 the content changed, 0 unchanged, <0
	 * refused (the last good content stays). */
	int (*compile)(void *ctx);
	void *ctx;
	struct wf_xds_cache *cache;
	struct wf_ads *ads;
	struct wf_timer pump;      /* the push in progress goes on */
	uint64_t started_us;       /* when it started (0: none in progress) */
	uint64_t pushes;           /* pushes done */
};
#define WF_PUSH_SLICE_US 10000     /* streams served per loop iteration: for this long */
#define WF_PUSH_DRAIN_MS 2         /* over the budget: look again this much later */

void wf_push_init(struct wf_push *p, struct wf_loop *loop, struct wf_xds_cache *cache, struct wf_ads *ads,
                  int (*compile)(void *ctx), void *ctx);
/* Something changed: schedule a push (debounced). */
void wf_push_change(struct wf_push *p);
/* Push now: the cache's input changed (invalidate, then every stream). A stream that was
 * still due from the previous push is served once, with the newest content. */
void wf_push_now(struct wf_push *p);
void wf_push_fini(struct wf_push *p);

#endif
