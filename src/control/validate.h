/* Semantic checks on Istio objects, beyond what the schema (the YAML mapper) refuses: the
 * rules `istioctl validate` applies, as far as each applies to Weft. One code path for
 * `weft validate` and for the control plane's store (wf_store_load_file runs it). */
#ifndef WF_CONTROL_VALIDATE_H
#define WF_CONTROL_VALIDATE_H

#include "control/store.h"

/* Check one object; every error is added to errs as "FILE:LINE:COL: PATH: message", the path
 * starting at "spec" ("spec.http[0].route[1].weight"). Returns the number of errors added. */
int wf_istio_validate(const struct wf_istio_obj *o, struct wf_errs *errs);

/* RFC 1123 label (lower-case letters, digits, '-', not at either end), at most max bytes. */
int wf_istio_dns1123_label(const char *s, size_t max);
/* RFC 1123 subdomain: dot-separated labels, at most 253 bytes. */
int wf_istio_dns1123_subdomain(const char *s);
/* A host name as Istio takes it in hosts fields: a DNS name, optionally "*." + name, or "*"
 * alone; upper case is accepted. */
int wf_istio_wildcard_host(const char *s);
/* An IPv4 or IPv6 address (no prefix). */
int wf_istio_ip(const char *s);

#endif
