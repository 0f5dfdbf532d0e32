/* Run-time matching for compiled matchers: string matchers and regexes (PCRE2, JIT-compiled
 * at config time). Match data is per thread, so matching allocates nothing. */
#include "proxy/config.h"

#include "core/str.h"

#include <stdio.h>
#include <string.h>

static __thread pcre2_match_data *tls_md;

pcre2_code *wf_regex_compile(const char *re, int anchored, char *err, size_t errlen)
{
	int code;
	PCRE2_SIZE off;
	uint32_t opts = PCRE2_UTF | (anchored ? PCRE2_ANCHORED | PCRE2_ENDANCHORED : 0);
	if (wf_pcre2_load(err, errlen) < 0)
		return NULL;
	pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, opts, &code, &off, NULL);
	if (!c) {
		char msg[160];
		pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof(msg));
		snprintf(err, errlen, "%s at offset %zu", msg, (size_t)off);
		return NULL;
	}
	pcre2_jit_compile(c, PCRE2_JIT_COMPLETE); /* best effort: the interpreter works too */
	return c;
}

static pcre2_match_data *md(void)
{
	if (!tls_md)
		tls_md = pcre2_match_data_create(32, NULL);
	return tls_md;
}

void wf_regex_thread_exit(void)
{
	pcre2_match_data_free(tls_md);
	tls_md = NULL;
}

int wf_regex_match(const pcre2_code *re, const char *s, size_t n)
{
	return pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md(), NULL) >= 0;
}

static int has_prefix_ci(const char *s, size_t n, const char *p, size_t pn)
{
	return n >= pn && wf_str_ieq(s, pn, p, pn);
}

int wf_strmatch(const struct wf_strmatch *m, const char *s, size_t n)
{
	switch (m->kind) {
	case WF_SM_EXACT:
		return m->ignore_case ? wf_str_ieq(s, n, m->s, m->n) : (n == m->n && !memcmp(s, m->s, n));
	case WF_SM_PREFIX:
		return m->ignore_case ? has_prefix_ci(s, n, m->s, m->n) : (n >= m->n && !memcmp(s, m->s, m->n));
	case WF_SM_SUFFIX:
		if (n < m->n)
			return 0;
		return m->ignore_case ? wf_str_ieq(s + n - m->n, m->n, m->s, m->n) : !memcmp(s + n - m->n, m->s, m->n);
	case WF_SM_CONTAINS:
		for (size_t i = 0; i + m->n <= n; i++)
			if (m->ignore_case ? wf_str_ieq(s + i, m->n, m->s, m->n) : !memcmp(s + i, m->s, m->n))
				return 1;
		return 0;
	case WF_SM_REGEX:
		return wf_regex_match(m->re, s, n);
	}
	return 0;
}
