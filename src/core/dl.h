/* Libraries loaded when first needed rather than linked (OpenSSL, PCRE2): their functions are
 * called through a table of pointers, which wf_dl_bind fills. */
#ifndef WF_CORE_DL_H
#define WF_CORE_DL_H

#include <stddef.h>

struct wf_dl_sym {
	const char *name;
	void **slot; /* the table's pointer for that function */
};

/* dlopen(lib), then dlsym every one of syms[0..n) into its slot. need names what needs the
 * library, for the message ("TLS needs OpenSSL 3"). 0, or -1 with the reason in err. */
int wf_dl_bind(const char *lib, const char *need, const struct wf_dl_sym *syms, size_t n, char *err, size_t errlen);

#endif
