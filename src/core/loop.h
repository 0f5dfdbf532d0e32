/* The event loop: one per thread (the main thread, and each worker). epoll in level-triggered
 * mode, so an fd that is back-pressured simply has its interest dropped until there is room;
 * a binary heap of timers keyed by deadline (monotonic milliseconds).
 *
 * Ownership: the loop owns nothing it is handed; a wf_io or wf_timer lives inside the object
 * it belongs to (connection, listener...), which must remove it before freeing itself. */
#ifndef WF_CORE_LOOP_H
#define WF_CORE_LOOP_H

#include <stdint.h>
#include <sys/epoll.h>

struct wf_loop;
struct wf_io;
struct wf_timer;

typedef void (*wf_io_cb)(struct wf_loop *loop, struct wf_io *io, uint32_t events);
typedef void (*wf_timer_cb)(struct wf_loop *loop, struct wf_timer *t);
typedef void (*wf_idle_cb)(struct wf_loop *loop, void *arg);

struct wf_io {
	int fd;
	uint32_t events;     /* current interest (EPOLLIN, EPOLLOUT...); may be 0 while registered */
	uint8_t registered;
	wf_io_cb cb;
	void *data;
};

struct wf_timer {
	uint64_t when;       /* deadline, wf_loop_now() clock */
	uint32_t slot;       /* heap index + 1; 0 when not armed */
	wf_timer_cb cb;
	void *data;
};

#define WF_LOOP_MAX_IDLE 8

/* Work run once, after the current batch of events: how an object whose wf_io may still be
 * named by an event fetched in this batch is freed safely. */
struct wf_defer {
	struct wf_defer *next;
	void (*cb)(struct wf_defer *d);
};

struct wf_loop {
	int epfd;
	int stop;
	uint64_t now;               /* cached at each wake-up, ms */
	uint64_t now_us;            /* the same instant, µs */
	uint64_t wall_us;           /* the wall clock at that wake-up, read on first use; 0: not yet */
	struct wf_timer **heap;
	uint32_t n_timers, cap_timers;
	struct { wf_idle_cb cb; void *arg; } idle[WF_LOOP_MAX_IDLE];
	uint32_t n_idle;
	struct wf_defer *deferred;
};

int wf_loop_init(struct wf_loop *loop);
void wf_loop_fini(struct wf_loop *loop);
/* Run until wf_loop_stop() is called. */
void wf_loop_run(struct wf_loop *loop);
void wf_loop_stop(struct wf_loop *loop);
/* Milliseconds on the monotonic clock, as cached at the last wake-up. */
static inline uint64_t wf_loop_now(const struct wf_loop *loop) { return loop->now; }
/* The same instant in µs: what a request's timings (stream info, upstream service time) are
 * taken from, so that a batch of events costs one clock read, not several per request. */
static inline uint64_t wf_loop_now_us(const struct wf_loop *loop) { return loop->now_us; }
/* The wall clock (µs since the epoch) at the last wake-up. */
uint64_t wf_loop_wall_us(struct wf_loop *loop);
uint64_t wf_now_ms(void);
uint64_t wf_now_us(void);
/* A callback run after every batch of events, before the loop sleeps again: where buffered
 * output (access logs) is flushed, so it costs one write per batch, not one per request. */
int wf_loop_on_idle(struct wf_loop *loop, wf_idle_cb cb, void *arg);

/* Run d->cb once the current batch of events has been dispatched. */
static inline void wf_loop_defer(struct wf_loop *loop, struct wf_defer *d)
{
	d->next = loop->deferred;
	loop->deferred = d;
}

/* Set the interest of io->fd to `events`, registering it first if needed. An interest of 0
 * keeps the fd registered without EPOLLIN/EPOLLRDHUP, so a half-closed peer is not reported
 * again and again while the owner is not ready to read; the kernel still reports EPOLLHUP and
 * EPOLLERR, which owners must handle (close) in their callback. Returns 0 or -errno. */
int wf_io_set(struct wf_loop *loop, struct wf_io *io, uint32_t events);
/* Remove io->fd from the loop (before closing it). */
void wf_io_del(struct wf_loop *loop, struct wf_io *io);
static inline int wf_io_want(struct wf_loop *loop, struct wf_io *io, uint32_t events)
{
	return io->registered && io->events == events ? 0 : wf_io_set(loop, io, events);
}

/* Arm (or re-arm) a timer `ms` from now; ms == 0 disarms it. */
void wf_timer_set(struct wf_loop *loop, struct wf_timer *t, uint64_t ms);
void wf_timer_cancel(struct wf_loop *loop, struct wf_timer *t);
static inline int wf_timer_armed(const struct wf_timer *t) { return t->slot != 0; }

#endif
