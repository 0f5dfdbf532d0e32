/* Request mirroring: fire-and-forget copies of requests to a mirror cluster. */
#ifndef WF_PROXY_SHADOW_H
#define WF_PROXY_SHADOW_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/config.h"
#include "proxy/worker.h"

/* Send `data` (a complete HTTP/1.1 request that asks for connection: close; malloc'd, owned
 * from now on) to a host of cluster c, and forget it. The worker keeps `snap` until the
 * exchange ends (the upstream closes, fails, or timeout_ms passes). */
void wf_shadow_send(struct wf_worker *w, struct wf_snapshot *snap, struct wf_cluster *c, char *data, size_t n,
                    uint64_t timeout_ms);
/* Drop the calling worker's mirrors still in flight (at thread exit). */
void wf_shadow_thread_exit(void);

#endif
