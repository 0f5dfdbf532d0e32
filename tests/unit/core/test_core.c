/* Unit tests for src/core: the event loop's timer heap, deferred work and fd interest
 * (loop.c), the block pool and buffers (buf.c), and the string helpers (str.c). */
#include "test.h"

#include "net/sock.h"
#include "core/buf.h"
#include "core/loop.h"
#include "core/str.h"
#include "core/tbucket.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* ---- timers ------------------------------------------------------------------------------ */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n)
{
	return wf_t_rand(&rng, n);
}

/* The heap is a min-heap on `when` and every timer knows its own slot. */
static int heap_ok(const struct wf_loop *l)
{
	for (uint32_t i = 0; i < l->n_timers; i++) {
		if (l->heap[i]->slot != i + 1)
			return 0;
		if (i && l->heap[(i - 1) / 2]->when > l->heap[i]->when)
			return 0;
	}
	return 1;
}

#define NT 600

struct tt {
	struct wf_timer t;
	int fired;
	int cancelled;
	uint64_t when_armed;  /* the deadline it should fire at */
};

static struct tt tts[NT];
static struct tt *order[NT];
static int n_fired;
static int fired_early;   /* a timer ran before its deadline */
static int fired_armed;   /* a timer still armed when its callback ran */

static void on_tt(struct wf_loop *l, struct wf_timer *t)
{
	struct tt *x = t->data;
	x->fired++;
	if (x->when_armed > wf_loop_now(l))
		fired_early = 1;
	if (wf_timer_armed(t))
		fired_armed = 1;
	if (n_fired < NT)
		order[n_fired++] = x;
}

static void on_stop(struct wf_loop *l, struct wf_timer *t) { wf_loop_stop(l); }

TEST(timers_fire_in_deadline_order)
{
	struct wf_loop loop;
	CHECK_EQ(wf_loop_init(&loop), 0);
	memset(tts, 0, sizeof tts);
	n_fired = fired_early = fired_armed = 0;

	for (int i = 0; i < NT; i++) {
		tts[i].t.cb = on_tt;
		tts[i].t.data = &tts[i];
		wf_timer_set(&loop, &tts[i].t, 1 + rnd(40));
		tts[i].when_armed = tts[i].t.when;
		CHECK(wf_timer_armed(&tts[i].t));
	}
	CHECK_EQ(loop.n_timers, NT);
	CHECK(heap_ok(&loop));
	/* cancel some, re-arm some (earlier or later than before), cancel some twice */
	for (int i = 0; i < NT; i++) {
		switch (rnd(6)) {
		case 0:
			wf_timer_cancel(&loop, &tts[i].t);
			tts[i].cancelled = 1;
			break;
		case 1:
			wf_timer_set(&loop, &tts[i].t, 1 + rnd(40));
			tts[i].when_armed = tts[i].t.when;
			break;
		case 2:
			wf_timer_set(&loop, &tts[i].t, 0); /* ms == 0 disarms */
			wf_timer_cancel(&loop, &tts[i].t);
			tts[i].cancelled = 1;
			break;
		}
		CHECK(heap_ok(&loop));
		CHECK_EQ(wf_timer_armed(&tts[i].t), !tts[i].cancelled);
	}
	/* some cancelled ones armed again: they fire after all */
	for (int i = 0; i < NT; i += 17) {
		if (!tts[i].cancelled)
			continue;
		wf_timer_set(&loop, &tts[i].t, 1 + rnd(40));
		tts[i].when_armed = tts[i].t.when;
		tts[i].cancelled = 0;
		CHECK(heap_ok(&loop));
	}
	int expected = 0;
	for (int i = 0; i < NT; i++)
		expected += !tts[i].cancelled;
	CHECK_EQ(loop.n_timers, expected);

	struct wf_timer stop = {.cb = on_stop};
	wf_timer_set(&loop, &stop, 60);
	wf_loop_run(&loop);

	CHECK_EQ(n_fired, expected);
	CHECK(!fired_early);
	CHECK(!fired_armed);
	for (int i = 1; i < n_fired; i++)
		CHECK(order[i - 1]->when_armed <= order[i]->when_armed);
	for (int i = 0; i < NT; i++) {
		CHECK_EQ(tts[i].fired, tts[i].cancelled ? 0 : 1);
		CHECK(!wf_timer_armed(&tts[i].t));
	}
	CHECK_EQ(loop.n_timers, 0);
	wf_loop_fini(&loop);
}

/* What ran, one letter each (trace is a pointer so that CHECK_STR can test it for NULL). */
static char tracebuf[64];
static const char *trace = tracebuf;
static size_t ntrace;

static void mark(char c)
{
	if (ntrace < sizeof tracebuf - 1)
		tracebuf[ntrace++] = c;
	tracebuf[ntrace] = '\0';
}

static void on_mark(struct wf_loop *l, struct wf_timer *t) { mark(*(const char *)t->data); }

TEST(rearming_an_armed_timer_moves_it)
{
	struct wf_loop loop;
	CHECK_EQ(wf_loop_init(&loop), 0);
	ntrace = 0;
	struct wf_timer a = {.cb = on_mark, .data = "a"}, b = {.cb = on_mark, .data = "b"},
	                c = {.cb = on_mark, .data = "c"}, stop = {.cb = on_stop};
	wf_timer_set(&loop, &a, 30);
	wf_timer_set(&loop, &b, 20);
	wf_timer_set(&loop, &c, 10);
	CHECK(loop.heap[0] == &c);
	wf_timer_set(&loop, &a, 5);  /* earlier: to the top */
	CHECK(loop.heap[0] == &a);
	wf_timer_set(&loop, &c, 40); /* later: past b */
	CHECK(heap_ok(&loop));
	CHECK_EQ(loop.n_timers, 3);  /* moved, not added twice */
	uint64_t w = b.when;
	wf_timer_set(&loop, &b, 20); /* the same deadline: stays */
	CHECK_EQ(b.when, w);
	CHECK(heap_ok(&loop));
	wf_timer_set(&loop, &stop, 60);
	wf_loop_run(&loop);
	CHECK_STR(trace, ntrace, "abc");
	wf_loop_fini(&loop);
}

/* Two timers due together, each of which cancels the other when it runs. */
struct rival {
	struct wf_timer t;
	struct rival *other;
	char name;
};

static void on_rival(struct wf_loop *l, struct wf_timer *t)
{
	struct rival *r = t->data;
	mark(r->name);
	wf_timer_cancel(l, &r->other->t);
}

static int periodic_left;

static void on_periodic(struct wf_loop *l, struct wf_timer *t)
{
	mark('p');
	if (--periodic_left > 0)
		wf_timer_set(l, t, 2); /* re-armed from its own callback */
}

TEST(timer_callbacks_may_cancel_and_rearm)
{
	struct wf_loop loop;
	CHECK_EQ(wf_loop_init(&loop), 0);
	ntrace = 0;
	struct rival x = {.name = 'x'}, y = {.name = 'y'};
	x.t.cb = y.t.cb = on_rival;
	x.t.data = &x;
	y.t.data = &y;
	x.other = &y;
	y.other = &x;
	struct wf_timer p = {.cb = on_periodic}, stop = {.cb = on_stop};
	wf_timer_set(&loop, &x.t, 3);
	wf_timer_set(&loop, &y.t, 3);
	periodic_left = 3;
	wf_timer_set(&loop, &p, 1);
	wf_timer_set(&loop, &stop, 40);
	wf_loop_run(&loop);
	int xs = 0, ys = 0, ps = 0;
	for (size_t i = 0; i < ntrace; i++) {
		xs += trace[i] == 'x';
		ys += trace[i] == 'y';
		ps += trace[i] == 'p';
	}
	CHECK_EQ(ps, 3);
	CHECK_EQ(xs + ys, 1); /* the one that ran first cancelled the other */
	CHECK(!wf_timer_armed(&x.t) && !wf_timer_armed(&y.t) && !wf_timer_armed(&p));
	CHECK_EQ(loop.n_timers, 0);
	wf_loop_fini(&loop);
}

/* ---- deferred work and fds ------------------------------------------------------------------ */

static struct wf_defer d1, d2, d3;
static int deferred_during_io;

static void on_d3(struct wf_defer *d) { mark('3'); }
static void on_d1(struct wf_defer *d) { mark('1'); }

static struct wf_loop *cur_loop;

static void on_d2(struct wf_defer *d)
{
	mark('2');
	/* work deferred by deferred work still runs in this batch */
	d3.cb = on_d3;
	wf_loop_defer(cur_loop, &d3);
}

static void on_event(struct wf_loop *l, struct wf_io *io, uint32_t ev)
{
	uint64_t v;
	if (read(io->fd, &v, sizeof v) != sizeof v)
		return;
	mark('i');
	d1.cb = on_d1;
	d2.cb = on_d2;
	wf_loop_defer(l, &d1);
	wf_loop_defer(l, &d2);
	deferred_during_io = strchr(trace, '1') != NULL || strchr(trace, '2') != NULL;
}

static void on_idle(struct wf_loop *l, void *arg)
{
	mark('z');
	wf_loop_stop(l);
}

TEST(deferred_work_runs_after_the_batch)
{
	struct wf_loop loop;
	CHECK_EQ(wf_loop_init(&loop), 0);
	cur_loop = &loop;
	ntrace = 0;
	tracebuf[0] = '\0';
	deferred_during_io = 0;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	CHECK(efd >= 0);
	struct wf_io io = {.fd = efd, .cb = on_event};
	CHECK_EQ(wf_io_set(&loop, &io, EPOLLIN), 0);
	uint64_t one = 1;
	CHECK_EQ(write(efd, &one, sizeof one), sizeof one);
	/* a timer already due when the loop wakes: it runs in the same batch, before the
	 * deferred work */
	struct wf_timer t = {.cb = on_mark, .data = "t"};
	wf_timer_set(&loop, &t, 1);
	struct timespec ms5 = {0, 5 * 1000 * 1000};
	nanosleep(&ms5, NULL);
	CHECK_EQ(wf_loop_on_idle(&loop, on_idle, NULL), 0);
	wf_loop_run(&loop);
	CHECK(!deferred_during_io);
	/* the event, the due timer, then all deferred work (in no promised order, but what
	 * deferred work defers comes after it), then the idle callbacks */
	CHECK_EQ(ntrace, 6);
	CHECK(memcmp(trace, "it", 2) == 0 && trace[5] == 'z');
	const char *p1 = memchr(trace + 2, '1', 3), *p2 = memchr(trace + 2, '2', 3),
	           *p3 = memchr(trace + 2, '3', 3);
	CHECK(p1 && p2 && p3 && p2 < p3);
	CHECK(loop.deferred == NULL);
	wf_io_del(&loop, &io);
	close(efd);
	wf_loop_fini(&loop);
}

TEST(idle_callbacks_are_bounded)
{
	struct wf_loop loop;
	CHECK_EQ(wf_loop_init(&loop), 0);
	for (int i = 0; i < WF_LOOP_MAX_IDLE; i++)
		CHECK_EQ(wf_loop_on_idle(&loop, on_idle, NULL), 0);
	CHECK_EQ(wf_loop_on_idle(&loop, on_idle, NULL), -ENOSPC);
	wf_loop_fini(&loop);
}

static int io_calls;
static uint32_t io_last;

static void on_io(struct wf_loop *l, struct wf_io *io, uint32_t ev)
{
	io_calls++;
	io_last = ev;
	if (ev & EPOLLIN) {
		char c;
		if (read(io->fd, &c, 1) != 1)
			io_last |= 0x80000000u;
	}
	wf_loop_stop(l);
}

/* Run the loop until an fd callback stops it, or for `ms` at most. */
static void run_for(struct wf_loop *l, uint64_t ms)
{
	struct wf_timer stop = {.cb = on_stop};
	wf_timer_set(l, &stop, ms);
	wf_loop_run(l);
	wf_timer_cancel(l, &stop);
}

TEST(io_interest_set_and_removed)
{
	struct wf_loop loop;
	CHECK_EQ(wf_loop_init(&loop), 0);
	int p[2];
	CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	struct wf_io io = {.fd = p[0], .cb = on_io};
	io_calls = 0;

	CHECK_EQ(wf_io_set(&loop, &io, EPOLLIN), 0);
	CHECK(io.registered);
	CHECK_EQ(io.events, EPOLLIN);
	CHECK_EQ(write(p[1], "a", 1), 1);
	run_for(&loop, 1000);
	CHECK_EQ(io_calls, 1);
	CHECK_EQ(io_last, EPOLLIN);

	/* interest 0: registered, but pending bytes are not reported */
	CHECK_EQ(wf_io_set(&loop, &io, 0), 0);
	CHECK(io.registered);
	CHECK_EQ(write(p[1], "b", 1), 1);
	run_for(&loop, 20);
	CHECK_EQ(io_calls, 1);
	/* wf_io_want changes nothing when the interest is already that */
	CHECK_EQ(wf_io_want(&loop, &io, 0), 0);
	CHECK_EQ(wf_io_want(&loop, &io, EPOLLIN), 0);
	run_for(&loop, 1000);
	CHECK_EQ(io_calls, 2);
	CHECK_EQ(io_last, EPOLLIN);

	/* removed: nothing reported; removing twice is harmless; adding again works */
	wf_io_del(&loop, &io);
	CHECK(!io.registered);
	CHECK_EQ(io.events, 0);
	wf_io_del(&loop, &io);
	CHECK_EQ(write(p[1], "c", 1), 1);
	run_for(&loop, 20);
	CHECK_EQ(io_calls, 2);
	CHECK_EQ(wf_io_set(&loop, &io, EPOLLIN), 0);
	run_for(&loop, 1000);
	CHECK_EQ(io_calls, 3);

	/* the write end: writable at once */
	struct wf_io wio = {.fd = p[1], .cb = on_io};
	wf_io_del(&loop, &io);
	CHECK_EQ(wf_io_set(&loop, &wio, EPOLLOUT), 0);
	run_for(&loop, 1000);
	CHECK_EQ(io_calls, 4);
	CHECK_EQ(io_last, EPOLLOUT);
	wf_io_del(&loop, &wio);

	/* errors come back as -errno and leave the io unregistered */
	struct wf_io bad = {.fd = 987654, .cb = on_io};
	CHECK_EQ(wf_io_set(&loop, &bad, EPOLLIN), -EBADF);
	CHECK(!bad.registered);
	close(p[0]);
	close(p[1]);
	wf_loop_fini(&loop);
}

/* ---- buffers ----------------------------------------------------------------------------- */

TEST(consumed_empty_buffer_holds_no_block)
{
	struct wf_pool pool;
	wf_pool_init(&pool, 4);
	struct wf_buf b = {0};
	CHECK_EQ(wf_buf_reserve(&b, &pool, 10, WF_BLOCK), WF_BLOCK);
	CHECK(b.p != NULL);
	CHECK_EQ(b.cap, WF_BLOCK);
	CHECK_EQ(pool.n_out, 1);
	memcpy(b.p + b.w, "hello world", 11);
	b.w += 11;
	wf_buf_consume(&b, &pool, 6);
	CHECK(b.p != NULL);
	CHECK_STR(wf_buf_data(&b), wf_buf_len(&b), "world");
	wf_buf_consume(&b, &pool, 5);
	CHECK(b.p == NULL);
	CHECK_EQ(b.r, 0);
	CHECK_EQ(b.w, 0);
	CHECK_EQ(b.cap, 0);
	CHECK_EQ(wf_buf_len(&b), 0);
	CHECK_EQ(pool.n_out, 0);
	CHECK_EQ(pool.n_free, 1);
	/* release of an empty buffer is a no-op */
	wf_buf_release(&b, &pool);
	CHECK_EQ(pool.n_free, 1);
	wf_pool_fini(&pool);
	CHECK_EQ(pool.n_free, 0);
	CHECK(pool.free == NULL);
}

TEST(blocks_are_reused_from_the_pool)
{
	struct wf_pool pool;
	wf_pool_init(&pool, 2);
	struct wf_buf a = {0}, b = {0}, c = {0};
	CHECK_EQ(wf_buf_append(&a, &pool, "x", 1), 0);
	char *pa = a.p;
	wf_buf_release(&a, &pool);
	CHECK_EQ(pool.n_free, 1);
	CHECK_EQ(wf_buf_append(&b, &pool, "y", 1), 0);
	CHECK(b.p == pa); /* the block just given back */
	CHECK_EQ(pool.n_free, 0);
	CHECK_EQ(wf_buf_append(&a, &pool, "x", 1), 0);
	CHECK_EQ(wf_buf_append(&c, &pool, "z", 1), 0);
	CHECK_EQ(pool.n_out, 3);
	/* max_free bounds what is kept */
	wf_buf_release(&a, &pool);
	wf_buf_release(&b, &pool);
	wf_buf_release(&c, &pool);
	CHECK_EQ(pool.n_out, 0);
	CHECK_EQ(pool.n_free, 2);
	wf_pool_fini(&pool);
}

TEST(reserve_compacts_before_growing)
{
	struct wf_pool pool;
	wf_pool_init(&pool, 4);
	struct wf_buf b = {0};
	CHECK_EQ(wf_buf_reserve(&b, &pool, WF_BLOCK, WF_BLOCK), WF_BLOCK);
	for (uint32_t i = 0; i < WF_BLOCK; i++)
		b.p[i] = (char)(i * 7);
	b.w = WF_BLOCK;
	CHECK_EQ(wf_buf_room(&b), 0);
	wf_buf_consume(&b, &pool, 1000);
	char *p = b.p;
	/* the room is at the front: moved there, same block */
	CHECK_EQ(wf_buf_reserve(&b, &pool, 500, WF_BLOCK), 1000);
	CHECK(b.p == p);
	CHECK_EQ(b.r, 0);
	CHECK_EQ(wf_buf_len(&b), WF_BLOCK - 1000);
	for (uint32_t i = 0; i < wf_buf_len(&b); i++)
		CHECK_EQ((unsigned char)b.p[i], (unsigned char)(char)((i + 1000) * 7));
	/* full again, and max reached: no room, nothing lost */
	b.w = WF_BLOCK;
	CHECK_EQ(wf_buf_reserve(&b, &pool, 1, WF_BLOCK), -ENOBUFS);
	CHECK_EQ(wf_buf_len(&b), WF_BLOCK);
	CHECK(b.p == p);
	wf_buf_release(&b, &pool);
	wf_pool_fini(&pool);
}

TEST(growing_beyond_a_block_up_to_max)
{
	struct wf_pool pool;
	wf_pool_init(&pool, 4);
	struct wf_buf b = {0};
	const uint32_t max = 4 * WF_BLOCK;
	uint32_t total = 0;
	int room, grew = 0;
	/* fill whatever room there is until max refuses more */
	while ((room = wf_buf_reserve(&b, &pool, 1, max)) > 0) {
		CHECK((uint32_t)room == wf_buf_room(&b));
		for (int i = 0; i < room; i++)
			b.p[b.w + (uint32_t)i] = (char)((total + (uint32_t)i) % 251);
		b.w += (uint32_t)room;
		total += (uint32_t)room;
		if (b.cap > WF_BLOCK && !grew) {
			grew = 1;
			/* the block it started from went back to the pool */
			CHECK_EQ(pool.n_out, 0);
			CHECK_EQ(pool.n_free, 1);
		}
		CHECK(total <= max);
	}
	CHECK_EQ(room, -ENOBUFS);
	CHECK(grew);
	CHECK_EQ(total, max);
	CHECK_EQ(b.cap, max);
	CHECK_EQ(wf_buf_len(&b), max);
	for (uint32_t i = 0; i < max; i++)
		if ((unsigned char)b.p[i] != i % 251)
			CHECK_EQ((unsigned char)b.p[i], i % 251);
	/* consuming down to nothing frees the large buffer (not into the pool) */
	wf_buf_consume(&b, &pool, max);
	CHECK(b.p == NULL);
	CHECK_EQ(pool.n_free, 1);
	CHECK_EQ(pool.n_out, 0);
	wf_pool_fini(&pool);
}

TEST(append_spans_blocks)
{
	struct wf_pool pool;
	wf_pool_init(&pool, 4);
	struct wf_buf b = {0};
	size_t n = 3 * WF_BLOCK + 5;
	char *src = malloc(n);
	CHECK(src != NULL);
	for (size_t i = 0; i < n; i++)
		src[i] = (char)(i * 31 + 1);
	int rc = wf_buf_append(&b, &pool, src, 100);
	if (rc == 0)
		rc = wf_buf_append(&b, &pool, src + 100, n - 100);
	int same = rc == 0 && wf_buf_len(&b) == n && memcmp(wf_buf_data(&b), src, n) == 0;
	free(src);
	CHECK_EQ(rc, 0);
	CHECK(same);
	/* a large append grows the buffer once, to the size asked for (not block by block, with
	 * a copy at each doubling) */
	CHECK_EQ(b.cap, n);
	CHECK_EQ(wf_buf_append(&b, &pool, "", 0), 0);
	wf_buf_release(&b, &pool);
	CHECK(b.p == NULL);
	CHECK_EQ(pool.n_out, 0);
	wf_pool_fini(&pool);
}

/* ---- strings ----------------------------------------------------------------------------- */

TEST(edit_distance)
{
	CHECK_EQ(wf_edit_distance("kitten", "sitting", 10), 3);
	CHECK_EQ(wf_edit_distance("", "", 10), 0);
	CHECK_EQ(wf_edit_distance("", "abc", 10), 3);
	CHECK_EQ(wf_edit_distance("abc", "", 10), 3);
	CHECK_EQ(wf_edit_distance("same", "same", 10), 0);
	CHECK_EQ(wf_edit_distance("timeout", "timout", 10), 1);
	CHECK_EQ(wf_edit_distance("ab", "ba", 10), 2); /* no transpositions */
	CHECK_EQ(wf_edit_distance("Abc", "abc", 10), 1); /* case counts */
	/* capped */
	CHECK_EQ(wf_edit_distance("kitten", "sitting", 2), 2);
	CHECK_EQ(wf_edit_distance("abcdef", "uvwxyz", 3), 3);
	CHECK_EQ(wf_edit_distance("kitten", "sitting", 3), 3);
	/* symmetric */
	const char *w[] = {"connect_timeout", "conect_timeout", "lb_policy", "lb_polcy", "name", ""};
	for (size_t i = 0; i < 6; i++)
		for (size_t j = 0; j < 6; j++)
			CHECK_EQ(wf_edit_distance(w[i], w[j], 100), wf_edit_distance(w[j], w[i], 100));
	/* longer than 63: the cap */
	char longs[80];
	memset(longs, 'a', 79);
	longs[79] = '\0';
	CHECK_EQ(wf_edit_distance(longs, longs, 5), 5);
	CHECK_EQ(wf_edit_distance(longs + 16, longs + 17, 5), 1); /* 63 and 62 */
}

TEST(parse_u64)
{
	CHECK_EQ(wf_parse_u64("0", 1, 10), 0);
	CHECK_EQ(wf_parse_u64("12345", 5, 99999), 12345);
	CHECK_EQ(wf_parse_u64("123456", 3, 999), 123); /* only the slice */
	CHECK_EQ(wf_parse_u64("007", 3, 10), 7);
	CHECK_EQ(wf_parse_u64("100", 3, 99), -1);
	CHECK_EQ(wf_parse_u64("99", 2, 99), 99);
	CHECK_EQ(wf_parse_u64("", 0, 10), -1);
	CHECK_EQ(wf_parse_u64("-1", 2, 10), -1);
	CHECK_EQ(wf_parse_u64("+1", 2, 10), -1);
	CHECK_EQ(wf_parse_u64(" 1", 2, 10), -1);
	CHECK_EQ(wf_parse_u64("1 ", 2, 10), -1);
	CHECK_EQ(wf_parse_u64("1a", 2, 10), -1);
	CHECK_EQ(wf_parse_u64("9223372036854775807", 19, INT64_MAX), INT64_MAX);
	CHECK_EQ(wf_parse_u64("1000000000000000000", 19, INT64_MAX), 1000000000000000000LL);
	/* more than 19 digits never fits */
	CHECK_EQ(wf_parse_u64("00000000000000000001", 20, INT64_MAX), -1);
	CHECK_EQ(wf_parse_u64("18446744073709551615", 20, UINT64_MAX), -1);
}

/* The word-at-a-time lowering agrees with the byte one for every byte value, at every
 * position of a word and in the byte tail. */
TEST(lower_copy_every_byte)
{
	char src[256 + 7], dst[256 + 7];
	for (int shift = 0; shift < 8; shift++) {
		for (int i = 0; i < 256; i++)
			src[(i + shift) % 256] = (char)i;
		memset(dst, 0x55, sizeof(dst));
		wf_lower_copy(dst, src, 256);
		for (int i = 0; i < 256; i++)
			CHECK_EQ(dst[i], wf_lower(src[i]));
		CHECK_EQ((unsigned char)dst[256], 0x55); /* nothing written past n */
	}
	wf_lower_copy(dst, "X-Envoy-Upstream-Service-Time", 29);
	CHECK(!memcmp(dst, "x-envoy-upstream-service-time", 29));
	/* wf_fmt_u64: no NUL, the digit count returned */
	CHECK_EQ(wf_fmt_u64(dst, 0), 1);
	CHECK_EQ(dst[0], '0');
	CHECK_EQ(wf_fmt_u64(dst, 18446744073709551615ull), 20);
	CHECK(!memcmp(dst, "18446744073709551615", 20));
	for (uint64_t p10 = 1; p10 <= 1000000000000000000ull; p10 *= 10) { /* each digit count's edges */
		uint64_t vs[] = {p10 - 1, p10, p10 + 1, p10 * 9 + (p10 - 1)};
		for (int k = 0; k < 4; k++) {
			char want[24];
			int wn = snprintf(want, sizeof(want), "%llu", (unsigned long long)vs[k]);
			dst[wn] = 0x55;
			CHECK_EQ(wf_fmt_u64(dst, vs[k]), (size_t)wn);
			CHECK(!memcmp(dst, want, (size_t)wn) && (unsigned char)dst[wn] == 0x55);
		}
	}
	CHECK(wf_ieq_lower("Content-Type", "content-type", 12));
	CHECK(!wf_ieq_lower("Content-Typf", "content-type", 12));
}

/* Short lengths take other paths (two overlapping words, or bytes): every length to 24, each
 * byte value at each position, against the byte-at-a-time rule; and a compare that differs at
 * any one position, in case or not, is told apart. */
TEST(lower_and_compare_every_length)
{
	char src[32], dst[32 + 1], ref[32];
	for (size_t n = 0; n <= 24; n++) {
		for (int v = 0; v < 256; v++) {
			for (size_t at = 0; at < n; at++) {
				for (size_t k = 0; k < n; k++)
					src[k] = (char)('A' + (k * 7 + at) % 26);
				src[at] = (char)v;
				memset(dst, 0x55, sizeof(dst));
				wf_lower_copy(dst, src, n);
				for (size_t k = 0; k < n; k++)
					ref[k] = wf_lower(src[k]);
				CHECK(!memcmp(dst, ref, n));
				CHECK_EQ((unsigned char)dst[n], 0x55);
				CHECK(wf_ieq_lower(src, ref, n));
				/* one byte off: the lowered byte changed, or an upper-case letter in ref */
				char other[32];
				memcpy(other, ref, n);
				other[at] = (char)(ref[at] ^ 0x01);
				CHECK(!wf_ieq_lower(src, other, n));
				if (ref[at] >= 'a' && ref[at] <= 'z') {
					other[at] = (char)(ref[at] - 32);
					CHECK(!wf_ieq_lower(src, other, n));
				}
			}
		}
		CHECK(wf_ieq_lower("", "", 0));
	}
	/* in place */
	char in[] = "X-Forwarded-Proto";
	wf_lower_copy(in, in, 17);
	CHECK(!memcmp(in, "x-forwarded-proto", 17));
}

TEST(str_ieq)
{
	CHECK(wf_str_ieq("Content-Length", 14, "content-length", 14));
	CHECK(wf_str_ieq("", 0, "", 0));
	CHECK(wf_str_ieq("ABC", 3, "abcdef", 3));
	CHECK(!wf_str_ieq("abc", 3, "abd", 3));
	CHECK(!wf_str_ieq("abc", 3, "abcd", 4));
	/* ASCII only: '@' and '`' are not the case pair of anything */
	CHECK(!wf_str_ieq("@", 1, "`", 1));
	CHECK(!wf_str_ieq("[", 1, "{", 1));
	CHECK(!wf_str_ieq("\xc3\x89", 2, "\xc3\xa9", 2));
	/* embedded NULs compare as bytes */
	CHECK(wf_str_ieq("a\0B", 3, "A\0b", 3));
	CHECK(!wf_str_ieq("a\0b", 3, "a\0c", 3));
	CHECK(wf_str_ieq(WF_STR("Host").p, WF_STR("Host").n, "HOST", 4));
	CHECK_EQ(wf_lower('Z'), 'z');
	CHECK_EQ(wf_lower('z'), 'z');
	CHECK_EQ(wf_lower('0'), '0');
}

TEST(addr_str_split)
{
	char ip[64];
	CHECK_EQ(wf_addr_str_split("1.2.3.4:80", ip, sizeof ip), 80);
	CHECK(!strcmp(ip, "1.2.3.4"));
	CHECK_EQ(wf_addr_str_split("[::1]:8080", ip, sizeof ip), 8080);
	CHECK(!strcmp(ip, "::1"));
	CHECK_EQ(wf_addr_str_split("10.0.0.1", ip, sizeof ip), 0);
	CHECK(!strcmp(ip, "10.0.0.1"));
	CHECK_EQ(wf_addr_str_split("fe80::1", ip, sizeof ip), 0);
	CHECK(!strcmp(ip, "fe80::1"));
}

/* ---- token bucket ------------------------------------------------------------------------ */

TEST(tbucket_takes_and_refills)
{
	struct wf_tbucket b;
	uint32_t left;
	uint64_t reset;
	wf_tbucket_init(&b, 3, 2, 1000, 5000);
	CHECK_EQ(wf_tbucket_take(&b, 5000, &left, &reset), 1);
	CHECK_EQ(left, 2);
	CHECK_EQ(reset, 1000);
	CHECK_EQ(wf_tbucket_take(&b, 5100, &left, &reset), 1);
	CHECK_EQ(reset, 900);
	CHECK_EQ(wf_tbucket_take(&b, 5200, &left, &reset), 1);
	CHECK_EQ(left, 0);
	CHECK_EQ(wf_tbucket_take(&b, 5999, &left, &reset), 0); /* empty until the first refill */
	CHECK_EQ(left, 0);
	CHECK_EQ(reset, 1);
	/* one refill: per_fill (2) tokens */
	CHECK_EQ(wf_tbucket_take(&b, 6000, &left, &reset), 1);
	CHECK_EQ(left, 1);
	CHECK_EQ(wf_tbucket_take(&b, 6001, &left, &reset), 1);
	CHECK_EQ(wf_tbucket_take(&b, 6002, &left, &reset), 0);
	/* many refills at once are capped at max */
	CHECK_EQ(wf_tbucket_take(&b, 60000, &left, &reset), 1);
	CHECK_EQ(left, 2);
}

TEST(tbucket_lagging_clock_does_not_refill)
{
	struct wf_tbucket b;
	uint32_t left;
	uint64_t reset;
	wf_tbucket_init(&b, 1, 1, 100, 1000);
	CHECK_EQ(wf_tbucket_take(&b, 1250, &left, &reset), 1); /* refills counted up to 2 */
	CHECK_EQ(wf_tbucket_take(&b, 1150, &left, &reset), 0); /* an older clock: no refill, no wrap */
	CHECK_EQ(wf_tbucket_take(&b, 900, &left, &reset), 0);  /* before t0 */
	CHECK_EQ(wf_tbucket_take(&b, 1300, &left, &reset), 1);
}

TEST(base64_round_trip)
{
	char out[32];
	unsigned char back[32];
	CHECK_EQ(wf_base64_encode((const unsigned char *)"", 0, out), 0);
	CHECK_EQ(wf_base64_encode((const unsigned char *)"f", 1, out), 4);
	CHECK(!strcmp(out, "Zg=="));
	CHECK_EQ(wf_base64_encode((const unsigned char *)"fo", 2, out), 4);
	CHECK(!strcmp(out, "Zm8="));
	CHECK_EQ(wf_base64_encode((const unsigned char *)"foobar", 6, out), 8);
	CHECK(!strcmp(out, "Zm9vYmFy"));
	/* RFC 6455's sample nonce */
	CHECK_EQ(wf_base64_encode((const unsigned char *)"the sample nonce", 16, out), 24);
	CHECK(!strcmp(out, "dGhlIHNhbXBsZSBub25jZQ=="));
	CHECK_EQ(wf_base64_decode(out, 24, back), 16);
	CHECK(!memcmp(back, "the sample nonce", 16));
}

TEST_MAIN("core", T(addr_str_split), T(base64_round_trip), T(tbucket_takes_and_refills), T(tbucket_lagging_clock_does_not_refill),
          T(timers_fire_in_deadline_order), T(rearming_an_armed_timer_moves_it),
          T(timer_callbacks_may_cancel_and_rearm), T(deferred_work_runs_after_the_batch),
          T(idle_callbacks_are_bounded), T(io_interest_set_and_removed),
          T(consumed_empty_buffer_holds_no_block), T(blocks_are_reused_from_the_pool),
          T(reserve_compacts_before_growing), T(growing_beyond_a_block_up_to_max),
          T(append_spans_blocks), T(edit_distance), T(parse_u64), T(str_ieq), T(lower_copy_every_byte),
          T(lower_and_compare_every_length))
