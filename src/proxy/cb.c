/* Circuit breaker state, one per cluster name while something holds it (see config.h). */
#include "proxy/config.h"

#include "core/intern.h"

static struct wf_intern cbs = WF_INTERN_INIT(sizeof(struct wf_cb), NULL);

struct wf_cb *wf_cb_for(const char *name) { return wf_intern(&cbs, name); }
void wf_cb_ref(struct wf_cb *cb) { wf_intern_ref(&cbs, cb); }
void wf_cb_release(struct wf_cb *cb) { wf_intern_release(&cbs, cb); }
