/* The system resolver wrapper: which addresses each dns_lookup_family keeps, blocking
 * resolution of literals, and the helper thread handing jobs back on the loop. */
#include "test.h"

#include "core/loop.h"
#include "net/resolve.h"

#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static struct wf_addr v4a, v4b, v6a;

static void setup(void)
{
	wf_addr_from_ip(&v4a, "10.0.0.1", 0);
	wf_addr_from_ip(&v4b, "10.0.0.2", 0);
	wf_addr_from_ip(&v6a, "fd00::1", 0);
}

static uint32_t pick(int family, const struct wf_addr *in, uint32_t n, struct wf_addr *out)
{
	for (uint32_t i = 0; i < n; i++)
		out[i] = in[i];
	return wf_resolve_pick(out, n, family);
}

TEST(pick_families)
{
	setup();
	struct wf_addr mixed[3] = {v4a, v6a, v4b}, out[3];
	CHECK_EQ(pick(WF_DNS_V4_ONLY, mixed, 3, out), 2);
	CHECK(wf_addr_eq(&out[0], &v4a) && wf_addr_eq(&out[1], &v4b));
	CHECK_EQ(pick(WF_DNS_V6_ONLY, mixed, 3, out), 1);
	CHECK(wf_addr_eq(&out[0], &v6a));
	CHECK_EQ(pick(WF_DNS_AUTO, mixed, 3, out), 1);          /* IPv6 when there is any */
	CHECK(wf_addr_eq(&out[0], &v6a));
	CHECK_EQ(pick(WF_DNS_V4_PREFERRED, mixed, 3, out), 2);  /* IPv4 when there is any */
	CHECK_EQ(pick(WF_DNS_ALL, mixed, 3, out), 3);
	CHECK(wf_addr_eq(&out[1], &v6a));                       /* order kept */
	struct wf_addr only4[2] = {v4b, v4a};
	CHECK_EQ(pick(WF_DNS_AUTO, only4, 2, out), 2);          /* AUTO falls back to IPv4 */
	CHECK(wf_addr_eq(&out[0], &v4b));
	struct wf_addr only6[1] = {v6a};
	CHECK_EQ(pick(WF_DNS_V4_PREFERRED, only6, 1, out), 1);  /* and V4_PREFERRED to IPv6 */
	CHECK_EQ(pick(WF_DNS_V4_ONLY, only6, 1, out), 0);
}

TEST(resolve_literals)
{
	setup();
	struct wf_addr *a;
	uint32_t n;
	CHECK_EQ(wf_resolve("10.0.0.1", WF_DNS_AUTO, &a, &n), 0);
	CHECK_EQ(n, 1);
	CHECK(wf_addr_eq(&a[0], &v4a));
	free(a);
	CHECK(wf_resolve("10.0.0.1", WF_DNS_V6_ONLY, &a, &n) != 0);
	CHECK(a == NULL && n == 0);
	CHECK(wf_resolve("", WF_DNS_AUTO, &a, &n) != 0);
	CHECK(wf_resolve_strerror(EAI_NONAME)[0] != 0);
}

static struct wf_loop loop;
static int n_done;
static struct wf_resolve_job *got[2];

static void done(struct wf_resolve_job *j)
{
	got[n_done++] = j;
	if (n_done == 2)
		wf_loop_stop(&loop);
}

static void on_deadline(struct wf_loop *l, struct wf_timer *t) { wf_loop_stop(l); }

TEST(helper_thread)
{
	setup();
	CHECK_EQ(wf_loop_init(&loop), 0);
	CHECK_EQ(wf_resolver_start(&loop, done), 0);
	int tag1 = 1, tag2 = 2;
	wf_resolver_submit(wf_resolve_job_new("10.0.0.2", WF_DNS_V4_ONLY, &tag1));
	wf_resolver_submit(wf_resolve_job_new("10.0.0.1", WF_DNS_V6_ONLY, &tag2));
	struct wf_timer deadline = {.cb = on_deadline};
	wf_timer_set(&loop, &deadline, 5000);
	wf_loop_run(&loop);
	wf_timer_cancel(&loop, &deadline);
	wf_resolver_stop();
	CHECK_EQ(n_done, 2);
	CHECK(got[0]->data == &tag1 && got[1]->data == &tag2);  /* in the order submitted */
	CHECK_EQ(got[0]->rc, 0);
	CHECK(got[0]->n == 1 && wf_addr_eq(&got[0]->addrs[0], &v4b));
	CHECK(got[1]->rc != 0 && got[1]->n == 0);
	wf_resolve_job_free(got[0]);
	wf_resolve_job_free(got[1]);
	wf_loop_fini(&loop);
}

/* A resolver that hangs until released: the loop keeps running its timers meanwhile, and
 * stopping does not wait for it. */
static pthread_mutex_t hang_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hang_cond = PTHREAD_COND_INITIALIZER;
static int hang_released, hang_entered, hang_returned;

static int hanging_resolve(const char *name, int family, struct wf_addr **out, uint32_t *n)
{
	pthread_mutex_lock(&hang_lock);
	hang_entered = 1;
	while (!hang_released)
		pthread_cond_wait(&hang_cond, &hang_lock);
	pthread_mutex_unlock(&hang_lock);
	*out = NULL;
	*n = 0;
	__atomic_store_n(&hang_returned, 1, __ATOMIC_RELEASE);
	return EAI_AGAIN;
}

static int ticks;

static void on_tick(struct wf_loop *l, struct wf_timer *t)
{
	if (++ticks == 5)
		wf_loop_stop(l);
	else
		wf_timer_set(l, t, 10);
}

TEST(hanging_resolver_blocks_nothing)
{
	n_done = 0;
	CHECK_EQ(wf_loop_init(&loop), 0);
	wf_resolver_use(hanging_resolve);
	CHECK_EQ(wf_resolver_start(&loop, done), 0);
	wf_resolver_submit(wf_resolve_job_new("hangs.test", WF_DNS_AUTO, NULL));
	struct wf_timer tick = {.cb = on_tick};
	wf_timer_set(&loop, &tick, 10);
	uint64_t t0 = wf_now_ms();
	wf_loop_run(&loop);
	CHECK_EQ(ticks, 5);                     /* the loop ran its timers */
	CHECK(wf_now_ms() - t0 < 2000);
	CHECK_EQ(n_done, 0);
	pthread_mutex_lock(&hang_lock);
	int entered = hang_entered;
	pthread_mutex_unlock(&hang_lock);
	CHECK(entered);                         /* while the resolver hung */
	t0 = wf_now_ms();
	wf_resolver_stop();                     /* leaves the hung thread behind */
	CHECK(wf_now_ms() - t0 < 500);
	pthread_mutex_lock(&hang_lock);
	hang_released = 1;
	pthread_cond_broadcast(&hang_cond);
	pthread_mutex_unlock(&hang_lock);
	for (int i = 0; i < 200 && !__atomic_load_n(&hang_returned, __ATOMIC_ACQUIRE); i++)
		usleep(5000);
	usleep(20000); /* the thread frees its job and exits */
	CHECK_EQ(n_done, 0);                    /* done() is never called after stop */
	wf_loop_fini(&loop);
}

TEST_MAIN("resolve", T(pick_families), T(resolve_literals), T(helper_thread), T(hanging_resolver_blocks_nothing))
