#define WF_PCRE2_API_IMPL
#include "core/pcre2_api.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

struct wf_pcre2_api wf_pcre2;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char why[200]; /* empty once loaded */

static void load(void)
{
	void *h = dlopen("libpcre2-8.so.0", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(why, sizeof(why), "regexes need PCRE2 (libpcre2-8.so.0): %s", dlerror());
		return;
	}
#define WF_PCRE2_FIND(f)                                                                       \
	if (!(*(void **)&wf_pcre2.f = dlsym(h, #f))) {                                             \
		snprintf(why, sizeof(why), "regexes need PCRE2: %s not found in libpcre2-8.so.0", #f); \
		return;                                                                            \
	}
	WF_PCRE2_FUNCS(WF_PCRE2_FIND)
#undef WF_PCRE2_FIND
}

int wf_pcre2_load(char *err, size_t errlen)
{
	pthread_once(&once, load);
	if (!why[0])
		return 0;
	snprintf(err, errlen, "%s", why);
	return -1;
}
