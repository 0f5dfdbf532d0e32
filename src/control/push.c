/* The debounced push. */
#include "control/push.h"

#include "core/log.h"

static void fire(struct wf_loop *loop, struct wf_timer *t)
{
	struct wf_push *p = t->data;
	p->first = 0;
	if (p->compile && p->compile(p->ctx) <= 0)
		return;
	wf_push_now(p);
}

static void pump(struct wf_loop *loop, struct wf_timer *t)
{
	struct wf_push *p = t->data;
	int rc = wf_ads_pump(p->ads, WF_PUSH_SLICE_US);
	if (rc) {
		wf_timer_set(loop, &p->pump, rc == WF_ADS_PUMP_DRAIN ? WF_PUSH_DRAIN_MS : 1);
		return;
	}
	if (p->started_us)
		wf_info("push %llu: %u streams in %.1f ms", (unsigned long long)p->pushes, wf_ads_streams(p->ads),
		        (double)(wf_now_us() - p->started_us) / 1000.0);
	p->started_us = 0;
}

void wf_push_init(struct wf_push *p, struct wf_loop *loop, struct wf_xds_cache *cache, struct wf_ads *ads,
                  int (*compile)(void *ctx), void *ctx)
{
	*p = (struct wf_push){.loop = loop, .debounce_ms = 100, .max_ms = 1000, .compile = compile, .ctx = ctx,
	                      .cache = cache, .ads = ads};
	p->t.cb = fire;
	p->t.data = p;
	p->pump.cb = pump;
	p->pump.data = p;
}

void wf_push_change(struct wf_push *p)
{
	uint64_t now = wf_loop_now(p->loop);
	if (!p->first)
		p->first = now;
	uint64_t at = now + p->debounce_ms, limit = p->first + p->max_ms;
	if (at > limit)
		at = limit;
	wf_timer_set(p->loop, &p->t, at > now ? at - now : 1);
}

void wf_push_now(struct wf_push *p)
{
	if (!p->started_us)
		p->started_us = wf_now_us();
	wf_xds_cache_invalidate(p->cache);
	wf_ads_push(p->ads);
	p->pushes++;
	pump(p->loop, &p->pump);
}

void wf_push_fini(struct wf_push *p)
{
	wf_timer_cancel(p->loop, &p->t);
	wf_timer_cancel(p->loop, &p->pump);
}
