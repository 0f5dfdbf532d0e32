/* The control plane's status endpoint: a small HTTP/1.1 server (one request per connection)
 * with GET /ready and GET /debug/syncz (the connected proxies and their per-type status, as
 * JSON: see wf_ads_syncz). */
#ifndef WF_CONTROL_STATUS_H
#define WF_CONTROL_STATUS_H

#include "control/ads.h"
#include "core/loop.h"
#include "net/sock.h"

struct wf_status_srv;

/* Listen on addr. NULL with errno-style *rc on failure. */
struct wf_status_srv *wf_status_start(struct wf_loop *loop, const struct wf_addr *addr, struct wf_ads *ads, int *rc);
void wf_status_stop(struct wf_status_srv *s);
/* Serve GET path with the JSON fill(ctx, b) writes (0, or <0: a 500). 0, or -ENOSPC. */
struct wf_jbuf;
int wf_status_page(struct wf_status_srv *s, const char *path, int (*fill)(const void *ctx, struct wf_jbuf *b),
                   const void *ctx);

#endif
