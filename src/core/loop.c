#include "core/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t wf_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t wf_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void loop_wake(struct wf_loop *loop)
{
	loop->now_us = wf_now_us();
	loop->now = loop->now_us / 1000;
	loop->wall_us = 0;
}

uint64_t wf_loop_wall_us(struct wf_loop *loop)
{
	if (!loop->wall_us) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		loop->wall_us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	}
	return loop->wall_us;
}

int wf_loop_init(struct wf_loop *loop)
{
	memset(loop, 0, sizeof(*loop));
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0)
		return -errno;
	loop_wake(loop);
	return 0;
}

void wf_loop_fini(struct wf_loop *loop)
{
	if (loop->epfd >= 0)
		close(loop->epfd);
	free(loop->heap);
	loop->heap = NULL;
	loop->epfd = -1;
}

void wf_loop_stop(struct wf_loop *loop) { loop->stop = 1; }

int wf_loop_on_idle(struct wf_loop *loop, wf_idle_cb cb, void *arg)
{
	if (loop->n_idle == WF_LOOP_MAX_IDLE)
		return -ENOSPC;
	loop->idle[loop->n_idle].cb = cb;
	loop->idle[loop->n_idle].arg = arg;
	loop->n_idle++;
	return 0;
}

int wf_io_set(struct wf_loop *loop, struct wf_io *io, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = io};
	if (epoll_ctl(loop->epfd, io->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, io->fd, &ev) < 0)
		return -errno;
	io->registered = 1;
	io->events = events;
	return 0;
}

void wf_io_del(struct wf_loop *loop, struct wf_io *io)
{
	if (io->registered)
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->registered = 0;
	io->events = 0;
}

/* Min-heap on `when`; t->slot is the 1-based position so that removal is O(log n). */
static void heap_place(struct wf_loop *loop, uint32_t i, struct wf_timer *t)
{
	loop->heap[i] = t;
	t->slot = i + 1;
}

static void heap_up(struct wf_loop *loop, uint32_t i)
{
	struct wf_timer *t = loop->heap[i];
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (loop->heap[p]->when <= t->when)
			break;
		heap_place(loop, i, loop->heap[p]);
		i = p;
	}
	heap_place(loop, i, t);
}

static void heap_down(struct wf_loop *loop, uint32_t i)
{
	struct wf_timer *t = loop->heap[i];
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= loop->n_timers)
			break;
		if (c + 1 < loop->n_timers && loop->heap[c + 1]->when < loop->heap[c]->when)
			c++;
		if (loop->heap[c]->when >= t->when)
			break;
		heap_place(loop, i, loop->heap[c]);
		i = c;
	}
	heap_place(loop, i, t);
}

void wf_timer_cancel(struct wf_loop *loop, struct wf_timer *t)
{
	if (!t->slot)
		return;
	uint32_t i = t->slot - 1;
	t->slot = 0;
	struct wf_timer *last = loop->heap[--loop->n_timers];
	if (i == loop->n_timers)
		return;
	loop->heap[i] = last;
	last->slot = i + 1;
	heap_up(loop, i);
	heap_down(loop, last->slot - 1);
}

void wf_timer_set(struct wf_loop *loop, struct wf_timer *t, uint64_t ms)
{
	if (ms == 0) {
		wf_timer_cancel(loop, t);
		return;
	}
	uint64_t when = loop->now + ms;
	if (t->slot) {
		uint64_t old = t->when;
		t->when = when;
		if (when < old)
			heap_up(loop, t->slot - 1);
		else if (when > old)
			heap_down(loop, t->slot - 1);
		return;
	}
	if (loop->n_timers == loop->cap_timers) {
		uint32_t cap = loop->cap_timers ? loop->cap_timers * 2 : 256;
		struct wf_timer **h = realloc(loop->heap, cap * sizeof(*h));
		if (!h)
			abort(); /* out of memory at this size is not recoverable */
		loop->heap = h;
		loop->cap_timers = cap;
	}
	t->when = when;
	loop->heap[loop->n_timers] = t;
	t->slot = ++loop->n_timers;
	heap_up(loop, loop->n_timers - 1);
}

static void run_timers(struct wf_loop *loop)
{
	while (loop->n_timers && loop->heap[0]->when <= loop->now) {
		struct wf_timer *t = loop->heap[0];
		wf_timer_cancel(loop, t);
		t->cb(loop, t);
	}
}

void wf_loop_run(struct wf_loop *loop)
{
	struct epoll_event evs[128];
	loop->stop = 0;
	while (!loop->stop) {
		int timeout = -1;
		if (loop->n_timers) {
			uint64_t w = loop->heap[0]->when;
			timeout = w <= loop->now ? 0 : (int)(w - loop->now > 60000 ? 60000 : w - loop->now);
		}
		int n = epoll_wait(loop->epfd, evs, 128, timeout);
		loop_wake(loop);
		for (int i = 0; i < n; i++) {
			struct wf_io *io = evs[i].data.ptr;
			io->cb(loop, io, evs[i].events);
		}
		run_timers(loop);
		while (loop->deferred) {
			struct wf_defer *d = loop->deferred;
			loop->deferred = d->next;
			d->cb(d);
		}
		for (uint32_t i = 0; i < loop->n_idle; i++)
			loop->idle[i].cb(loop, loop->idle[i].arg);
	}
}
