/* A tiny unit-test harness. Each test binary defines TESTS(...) cases; the binary prints one
 * line per case ("ok NAME" / "FAIL NAME: where") and a last line "N passed, N failed",
 * and exits non-zero when a case failed. tests/run.sh adds the counts up. */
#ifndef WF_TEST_H
#define WF_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int wf_t_failed_now;

#define CHECK(cond)                                                                        \
	do {                                                                                   \
		if (!(cond)) {                                                                     \
			printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);              \
			wf_t_failed_now = 1;                                                           \
			return;                                                                        \
		}                                                                                  \
	} while (0)

#define CHECK_EQ(a, b)                                                                     \
	do {                                                                                   \
		long long wf_a_ = (long long)(a), wf_b_ = (long long)(b);                          \
		if (wf_a_ != wf_b_) {                                                              \
			printf("  %s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a,   \
			       wf_a_, #b, wf_b_);                                                      \
			wf_t_failed_now = 1;                                                           \
			return;                                                                        \
		}                                                                                  \
	} while (0)

#define CHECK_STR(a, alen, lit)                                                            \
	do {                                                                                   \
		if ((size_t)(alen) != sizeof(lit) - 1 || memcmp((a), lit, sizeof(lit) - 1) != 0) { \
			printf("  %s:%d: %s is \"%.*s\", expected \"%s\"\n", __FILE__, __LINE__, #a,  \
			       (int)(alen), (a) ? (const char *)(a) : "", lit);                        \
			wf_t_failed_now = 1;                                                           \
			return;                                                                        \
		}                                                                                  \
	} while (0)

/* A deterministic generator (xorshift64), so that a failure can be replayed: 0 .. n-1. */
static inline uint32_t wf_t_rand(uint64_t *state, uint32_t n)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return (uint32_t)(*state % n);
}

struct wf_t_case {
	const char *name;
	void (*fn)(void);
};

#define TEST(name) static void name(void)
#define T(name) { #name, name }

static inline int wf_t_run(const struct wf_t_case *cases, size_t n, const char *suite)
{
	int passed = 0, failed = 0;
	for (size_t i = 0; i < n; i++) {
		wf_t_failed_now = 0;
		cases[i].fn();
		if (wf_t_failed_now) {
			printf("FAIL %s.%s\n", suite, cases[i].name);
			failed++;
		} else {
			printf("ok %s.%s\n", suite, cases[i].name);
			passed++;
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#define TEST_MAIN(suite, ...)                                                              \
	int main(void)                                                                         \
	{                                                                                      \
		static const struct wf_t_case cases[] = {__VA_ARGS__};                             \
		return wf_t_run(cases, sizeof(cases) / sizeof(cases[0]), suite);                   \
	}

#endif
