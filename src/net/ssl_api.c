#define WF_SSL_API_IMPL
#include "net/ssl_api.h"

#include <dlfcn.h>
#include <stdio.h>

struct wf_ssl_api wf_ssl;
static int loaded;

int wf_ssl_load(char *err, size_t errlen)
{
	if (loaded)
		return 0;
	/* libssl pulls in libcrypto; RTLD_GLOBAL lets dlsym find libcrypto's functions too */
	void *h = dlopen("libssl.so.3", RTLD_NOW | RTLD_GLOBAL);
	if (!h) {
		snprintf(err, errlen, "TLS needs OpenSSL 3 (libssl.so.3): %s", dlerror());
		return -1;
	}
#define WF_SSL_FIND(f)                                                                         \
	if (!(*(void **)&wf_ssl.f = dlsym(h, #f))) {                                               \
		snprintf(err, errlen, "TLS needs OpenSSL 3: %s not found in libssl.so.3", #f);      \
		return -1;                                                                         \
	}
	WF_SSL_FUNCS(WF_SSL_FIND)
#undef WF_SSL_FIND
	loaded = 1;
	return 0;
}
