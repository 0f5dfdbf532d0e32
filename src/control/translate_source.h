/* The second generator: Istio configuration (a directory of YAML, control/store.h) and the
 * proxies that registered by connecting (control/mesh.h), translated per proxy
 * (control/translate.h) for the xDS cache — as two parts, so that the cache builds the
 * outbound half once per outbound key (namespace, Sidecar, labels when sourceLabels are used)
 * and the inbound half per proxy:
 *
 *     uint32_t n;
 *     const struct wf_xds_generator *g = wf_translate_source_generators(src, &n);
 *     cache = wf_xds_cache_new(g, n);
 *
 * The mesh model is rebuilt on first use after the store or the registry changed. One thread
 * (the control plane's loop). */
#ifndef WF_CONTROL_TRANSLATE_SOURCE_H
#define WF_CONTROL_TRANSLATE_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "control/store.h"
#include "control/xds_cache.h"

struct wf_translate_source;

/* Load every *.yaml / *.yml of dir and watch it (inotify). Files with errors are refused as
 * the store refuses them, each error added to errs ("FILE:LINE:COL: ..."); objects the
 * translator could give no proxy (wf_translate_check) are reported there too (they stay: a
 * proxy whose resources need one keeps what it has). NULL (errs says why) only when the
 * directory cannot be read. */
struct wf_translate_source *wf_translate_source_new(const char *dir, struct wf_errs *errs);
void wf_translate_source_free(struct wf_translate_source *s);
/* The generators (outbound half, inbound half): *n set to 2. Valid as long as s. */
const struct wf_xds_generator *wf_translate_source_generators(struct wf_translate_source *s, uint32_t *n);
/* The inotify fd to poll (or -1), and its events: 1 when the store changed (invalidate the
 * cache), 0 when not, <0 on error; refusals are added to errs. */
int wf_translate_source_fd(const struct wf_translate_source *s);
int wf_translate_source_events(struct wf_translate_source *s, struct wf_errs *errs);
/* A proxy's stream started: its node registers its workload (a reconnect within the grace
 * period keeps it). 1 when the registry changed (invalidate the cache), 0 when not. */
int wf_translate_source_connected(struct wf_translate_source *s, const Envoy__Config__Core__V3__Node *node);
/* A proxy's stream ended at now_ms: when it has no other stream, its workload goes
 * grace_ms later (wf_translate_source_expire), unless it connects again. */
void wf_translate_source_disconnected(struct wf_translate_source *s, const char *node_id, uint64_t now_ms,
                                      uint64_t grace_ms);
/* Unregister the workloads whose grace period ended by now_ms: 1 when the registry changed. */
int wf_translate_source_expire(struct wf_translate_source *s, uint64_t now_ms);
/* Unregister a workload now: 1 when the registry changed. */
int wf_translate_source_gone(struct wf_translate_source *s, const char *node_id);
/* The store (for status pages: the files refused, ...). */
const struct wf_store *wf_translate_source_store(const struct wf_translate_source *s);
/* Objects served now, and registered workloads. */
size_t wf_translate_source_objects(const struct wf_translate_source *s);
size_t wf_translate_source_workloads(const struct wf_translate_source *s);

#endif
