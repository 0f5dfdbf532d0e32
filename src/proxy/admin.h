/* The admin server: /ready, /stats(/prometheus), /config_dump, /clusters, /listeners,
 * POST /drain_listeners, /quitquitquit, /healthcheck/fail|ok. Main thread only. */
#ifndef WF_PROXY_ADMIN_H
#define WF_PROXY_ADMIN_H

#include "core/loop.h"
#include "net/sock.h"

struct wf_admin {
	struct wf_io io;
	struct wf_loop *loop;
	int draining;                            /* /ready answers 503 */
	int health_failed;
	int initializing;                        /* /ready answers 503 INITIALIZING */
	void (*on_drain)(struct wf_admin *a);
	void (*on_quit)(struct wf_admin *a);
};

/* Listen on addr and serve on loop. 0 or -errno. */
int wf_admin_start(struct wf_admin *a, struct wf_loop *loop, const struct wf_addr *addr);
/* Stop listening (requests being answered finish on their own). */
void wf_admin_stop(struct wf_admin *a);

/* Set while the proxy fails its health (POST /healthcheck/fail), for the health check filter
 * on the workers (atomic). */
extern int wf_health_failing;

#endif
