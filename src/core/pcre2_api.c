#define WF_PCRE2_API_IMPL
#include "core/pcre2_api.h"

#include "core/dl.h"

#include <pthread.h>
#include <stdio.h>

struct wf_pcre2_api wf_pcre2;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char why[200]; /* empty once loaded */

static void load(void)
{
	static const struct wf_dl_sym syms[] = {
#define WF_PCRE2_SYM(f) {#f, (void **)&wf_pcre2.f},
	    WF_PCRE2_FUNCS(WF_PCRE2_SYM)
#undef WF_PCRE2_SYM
	};
	wf_dl_bind("libpcre2-8.so.0", "regexes need PCRE2", syms, sizeof(syms) / sizeof(syms[0]), why, sizeof(why));
}

int wf_pcre2_load(char *err, size_t errlen)
{
	pthread_once(&once, load);
	if (!why[0])
		return 0;
	snprintf(err, errlen, "%s", why);
	return -1;
}
