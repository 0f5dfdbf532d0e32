/* Analysis across objects, in the style of `istioctl analyze`: findings with Istio's message
 * codes (IST0101 ReferencedResourceNotFound, ...) about references that lead nowhere and
 * objects that clash. Validation (validate.h) looks at one object; this looks at the set. */
#ifndef WF_CONTROL_ANALYZE_H
#define WF_CONTROL_ANALYZE_H

#include "control/store.h"

enum wf_level { WF_LEVEL_INFO, WF_LEVEL_WARNING, WF_LEVEL_ERROR };

struct wf_finding {
	enum wf_level level;
	const char *code;                /* "IST0101" */
	const char *name;                /* "ReferencedResourceNotFound" */
	const struct wf_istio_obj *obj;  /* the object the finding is about (owned by the store) */
	uint32_t line, col;              /* the field at fault, or the object */
	char *msg;
};

struct wf_findings {
	struct wf_finding *v;
	size_t n, cap;
};

/* Analyze every object of the store; findings are appended in object order. Returns the number
 * of findings at level Error. */
int wf_analyze(const struct wf_store *s, struct wf_findings *out);
void wf_findings_free(struct wf_findings *f);

/* One line: `Error [IST0101] (VirtualService default/reviews vs.yaml:12:9) Referenced host not
 * found: "ratings"`. */
void wf_finding_format(const struct wf_finding *f, char *buf, size_t len);

/* The fully qualified name of `host` seen from namespace ns: a short name (no dot) becomes
 * NAME.NS.svc.cluster.local, anything else is kept. Written into buf, which is returned. */
const char *wf_istio_fqdn(const char *host, const char *ns, char *buf, size_t len);
/* Does host pattern `pattern` ("*.example.com", "*", or a name) cover host `h`? */
int wf_istio_host_match(const char *pattern, const char *h);

#endif
