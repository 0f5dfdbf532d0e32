#include "core/dl.h"

#include <dlfcn.h>
#include <stdio.h>

int wf_dl_bind(const char *lib, const char *need, const struct wf_dl_sym *syms, size_t n, char *err, size_t errlen)
{
	/* RTLD_GLOBAL: libssl pulls in libcrypto, whose functions dlsym then finds through it */
	void *h = dlopen(lib, RTLD_NOW | RTLD_GLOBAL);
	if (!h) {
		snprintf(err, errlen, "%s (%s): %s", need, lib, dlerror());
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (!(*syms[i].slot = dlsym(h, syms[i].name))) {
			snprintf(err, errlen, "%s: %s not found in %s", need, syms[i].name, lib);
			return -1;
		}
	}
	return 0;
}
