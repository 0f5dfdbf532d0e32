/* The first generator: Envoy resources from a file (`weft control --envoy-resources FILE`),
 * shaped like a DiscoveryResponse — `resources:` a list of Any (Listener, Cluster,
 * RouteConfiguration, ClusterLoadAssignment) — decoded by the YAML mapper and served to every
 * proxy. The file is watched (inotify on its directory, so editors that replace the file are
 * seen too); a reload that fails keeps the last good resources. */
#ifndef WF_CONTROL_ENVOY_SOURCE_H
#define WF_CONTROL_ENVOY_SOURCE_H

#include <stddef.h>

#include "control/xds_cache.h"

struct wf_envoy_source;

/* Load path (its errors: "FILE:LINE:COL: field path: why" in err). NULL on error. */
struct wf_envoy_source *wf_envoy_source_new(const char *path, char *err, size_t errlen);
void wf_envoy_source_free(struct wf_envoy_source *s);
/* The generator serving the source's resources (valid as long as s). */
const struct wf_xds_generator *wf_envoy_source_generator(struct wf_envoy_source *s);
/* Read the file again: 1 when it was taken (content changed), 0 when unchanged, <0 when
 * refused (err says where and why; the last good resources stay). */
int wf_envoy_source_reload(struct wf_envoy_source *s, char *err, size_t errlen);
/* Count of resources per type served now (for the log). */
unsigned wf_envoy_source_count(const struct wf_envoy_source *s, int type);
/* The inotify fd to watch for EPOLLIN, or -1 (no inotify: no reloads). */
int wf_envoy_source_fd(const struct wf_envoy_source *s);
/* Read the pending inotify events: 1 when one concerns the file. */
int wf_envoy_source_events(struct wf_envoy_source *s);

#endif
