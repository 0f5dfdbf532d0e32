/* PCRE2 (8-bit), loaded when a config first compiles a regex rather than at start: most
 * proxies have no regex, and a linked libpcre2 costs every one of them ~80 KiB resident. The
 * code calls PCRE2 by its usual names; this header turns each into a call through a table
 * that wf_pcre2_load fills with dlsym. Include it instead of <pcre2.h>.
 *
 * Every other call takes a code or match data that only exists once the library is loaded;
 * the two frees accept NULL, as PCRE2's own do, before as after. */
#ifndef WF_CORE_PCRE2_API_H
#define WF_CORE_PCRE2_API_H

#include <stddef.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define WF_PCRE2_FUNCS(X) \
	X(pcre2_code_free_8) \
	X(pcre2_compile_8) \
	X(pcre2_get_error_message_8) \
	X(pcre2_jit_compile_8) \
	X(pcre2_match_8) \
	X(pcre2_match_data_create_8) \
	X(pcre2_match_data_free_8) \
	X(pcre2_substitute_8)

struct wf_pcre2_api {
#define WF_PCRE2_MEMBER(f) __typeof__(f) *f;
	WF_PCRE2_FUNCS(WF_PCRE2_MEMBER)
#undef WF_PCRE2_MEMBER
};
extern struct wf_pcre2_api wf_pcre2;

/* Loads libpcre2-8 once (thread-safe); 0, or -1 with the reason in err. */
int wf_pcre2_load(char *err, size_t errlen);

#ifndef WF_PCRE2_API_IMPL
#define pcre2_code_free_8(c) ((c) ? wf_pcre2.pcre2_code_free_8(c) : (void)0)
#define pcre2_compile_8 wf_pcre2.pcre2_compile_8
#define pcre2_get_error_message_8 wf_pcre2.pcre2_get_error_message_8
#define pcre2_jit_compile_8 wf_pcre2.pcre2_jit_compile_8
#define pcre2_match_8 wf_pcre2.pcre2_match_8
#define pcre2_match_data_create_8 wf_pcre2.pcre2_match_data_create_8
#define pcre2_match_data_free_8(m) ((m) ? wf_pcre2.pcre2_match_data_free_8(m) : (void)0)
#define pcre2_substitute_8 wf_pcre2.pcre2_substitute_8
#endif

#endif
