/* Circuit breaker state, one per cluster name for the life of the process (see config.h). */
#include "proxy/config.h"

#include "core/intern.h"

static struct wf_intern cbs = WF_INTERN_INIT(sizeof(struct wf_cb), NULL);

struct wf_cb *wf_cb_for(const char *name) { return wf_intern(&cbs, name); }
