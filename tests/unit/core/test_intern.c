/* Unit tests for src/core/intern.c: records by name that outlive configs. */
#include "test.h"
#include "core/intern.h"

#include <pthread.h>
#include <stdio.h>

struct rec {
	int inits;
	long value;
};

static void rec_init(void *r) { ((struct rec *)r)->inits++; }

TEST(same_key_same_record_created_once)
{
	static struct wf_intern t = WF_INTERN_INIT(sizeof(struct rec), rec_init);
	struct rec *a = wf_intern(&t, "cluster-a"), *b = wf_intern(&t, "cluster-b");
	CHECK(a && b && a != b);
	CHECK_EQ(a->inits, 1);
	a->value = 42;
	struct rec *again = wf_intern(&t, "cluster-a");
	CHECK(again == a);
	CHECK_EQ(again->inits, 1); /* not initialised twice */
	CHECK_EQ(again->value, 42);
	CHECK(wf_intern(&t, "") != NULL && wf_intern(&t, "") == wf_intern(&t, ""));
}

TEST(many_keys_keep_their_records_across_growth)
{
	static struct wf_intern t = WF_INTERN_INIT(sizeof(struct rec), NULL);
	static struct rec *first[20000];
	char key[32];
	for (int i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "outbound|%d||h", i);
		first[i] = wf_intern(&t, key);
		CHECK(first[i] != NULL);
		first[i]->value = i;
	}
	CHECK_EQ(t.n, 20000);
	CHECK(t.n_buckets >= 16384); /* grown from 64 */
	for (int i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "outbound|%d||h", i);
		struct rec *r = wf_intern(&t, key);
		CHECK(r == first[i]); /* addresses stable through every growth */
		CHECK_EQ(r->value, i);
	}
}

static struct wf_intern shared = WF_INTERN_INIT(sizeof(struct rec), NULL);

static void *worker(void *arg)
{
	char key[32];
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "k%d", i % 500);
		struct rec *r = wf_intern(&shared, key);
		__atomic_add_fetch(&r->value, 1, __ATOMIC_RELAXED);
	}
	return arg;
}

TEST(threads_share_one_record_per_key)
{
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, worker, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(shared.n, 500);
	long total = 0;
	char key[32];
	for (int i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		total += ((struct rec *)wf_intern(&shared, key))->value;
	}
	CHECK_EQ(total, 8000);
}

TEST(a_record_goes_with_its_last_reference)
{
	static struct wf_intern t = WF_INTERN_INIT(sizeof(struct rec), rec_init);
	struct rec *a = wf_intern(&t, "host-a");
	a->value = 7;
	CHECK(wf_intern(&t, "host-a") == a);  /* two references */
	CHECK(wf_intern(&t, "host-a") == a);  /* three */
	wf_intern_release(&t, a);
	wf_intern_release(&t, a);
	CHECK_EQ(t.n, 1);
	CHECK(wf_intern(&t, "host-a") == a && a->value == 7); /* still the same record */
	wf_intern_release(&t, a);
	wf_intern_release(&t, a);
	CHECK_EQ(t.n, 0);
	wf_intern_release(&t, NULL); /* nothing */
	/* the key again: a new record, initialised again */
	struct rec *b = wf_intern(&t, "host-a");
	CHECK(b && b->value == 0 && b->inits == 1);
	wf_intern_ref(&t, b); /* a holder of the record takes another reference */
	wf_intern_release(&t, b);
	CHECK_EQ(t.n, 1);
	CHECK(wf_intern(&t, "host-a") == b); /* the one it took kept it */
	wf_intern_release(&t, b);
	/* many come and go; the ones kept stay found */
	static struct rec *r[3000];
	char key[32];
	for (int round = 0; round < 5; round++)
		for (int i = 0; i < 3000; i++) {
			snprintf(key, sizeof(key), "h%d.%d", i % 2 ? round : 0, i);
			struct rec *x = wf_intern(&t, key);
			if (round && i % 2 == 0)
				CHECK(x == r[i]);
			if (round)
				wf_intern_release(&t, r[i]);
			r[i] = x;
		}
	CHECK_EQ(t.n, 3001); /* 3,000 live and host-a */
	for (int i = 0; i < 3000; i++)
		wf_intern_release(&t, r[i]);
	wf_intern_release(&t, b);
	CHECK_EQ(t.n, 0);
}

TEST_MAIN("core.intern", T(same_key_same_record_created_once), T(many_keys_keep_their_records_across_growth),
          T(threads_share_one_record_per_key), T(a_record_goes_with_its_last_reference))
