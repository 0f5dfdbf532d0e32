#define WF_SSL_API_IMPL
#include "net/ssl_api.h"

#include "core/dl.h"

struct wf_ssl_api wf_ssl;
static int loaded;

int wf_ssl_load(char *err, size_t errlen)
{
	if (loaded)
		return 0;
	static const struct wf_dl_sym syms[] = {
#define WF_SSL_SYM(f) {#f, (void **)&wf_ssl.f},
	    WF_SSL_FUNCS(WF_SSL_SYM)
#undef WF_SSL_SYM
	};
	if (wf_dl_bind("libssl.so.3", "TLS needs OpenSSL 3", syms, sizeof(syms) / sizeof(syms[0]), err, errlen) < 0)
		return -1;
	loaded = 1;
	return 0;
}
