/* Unit tests for src/core/strtab.c: counted shared strings. */
#include "test.h"
#include "core/strtab.h"

#include <stdio.h>

TEST(equal_strings_share_one_copy_until_the_last_put)
{
	struct wf_strtab *t = wf_strtab_new();
	CHECK(t != NULL);
	char buf[32];
	snprintf(buf, sizeof(buf), "outbound|8080||a");
	const char *a = wf_strtab_get(t, buf), *b = wf_strtab_get(t, "outbound|8080||a");
	CHECK(a && a == b);
	CHECK(a != buf);                    /* the table's own copy */
	CHECK(!strcmp(a, "outbound|8080||a"));
	const char *c = wf_strtab_get(t, "outbound|8080||b");
	CHECK(c && c != a);
	CHECK_EQ(wf_strtab_count(t), 2);
	wf_strtab_put(t, a);
	CHECK_EQ(wf_strtab_count(t), 2);    /* b still holds it */
	CHECK(!strcmp(b, "outbound|8080||a"));
	wf_strtab_put(t, b);
	CHECK_EQ(wf_strtab_count(t), 1);    /* gone with its last reference */
	const char *e = wf_strtab_get(t, "");
	CHECK(e && !*e && wf_strtab_get(t, "") == e);
	wf_strtab_put(t, e);
	wf_strtab_put(t, e);
	wf_strtab_put(t, NULL);             /* nothing */
	wf_strtab_put(t, c);
	CHECK_EQ(wf_strtab_count(t), 0);
	wf_strtab_free(t);
}

TEST(many_strings_found_across_growth)
{
	struct wf_strtab *t = wf_strtab_new();
	static const char *first[5000];
	char key[80];
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "outbound|8080||svc-%d.default.svc.cluster.local", i);
		first[i] = wf_strtab_get(t, key);
		CHECK(first[i] != NULL);
	}
	CHECK_EQ(wf_strtab_count(t), 5000);
	int same = 1;
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "outbound|8080||svc-%d.default.svc.cluster.local", i);
		const char *s = wf_strtab_get(t, key);
		same &= s == first[i] && !strcmp(s, key);
		wf_strtab_put(t, s);
	}
	CHECK(same);
	for (int i = 0; i < 5000; i += 2)
		wf_strtab_put(t, first[i]);
	CHECK_EQ(wf_strtab_count(t), 2500);
	wf_strtab_free(t); /* with strings still held: freed too (ASan: no leak) */
}

TEST_MAIN("core.strtab", T(equal_strings_share_one_copy_until_the_last_put), T(many_strings_found_across_growth))
