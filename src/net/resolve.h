/* Name resolution with the system resolver (getaddrinfo: /etc/hosts, nsswitch, DNS), either
 * blocking, or on one helper thread so that a slow resolver never stalls an event loop.
 *
 * The helper thread takes jobs from a queue, one at a time, and hands finished jobs back to
 * the loop that started it through an eventfd registered on that loop: the `done` callback
 * always runs on the loop's thread. */
#ifndef WF_NET_RESOLVE_H
#define WF_NET_RESOLVE_H

#include <stdint.h>

#include "net/sock.h"

struct wf_loop;

/* Which addresses of a name are kept: Envoy's Cluster.DnsLookupFamily, same numbers. */
enum wf_dns_family {
	WF_DNS_AUTO = 0,          /* IPv6 addresses if the name has any, else IPv4 */
	WF_DNS_V4_ONLY = 1,
	WF_DNS_V6_ONLY = 2,
	WF_DNS_V4_PREFERRED = 3,  /* IPv4 addresses if the name has any, else IPv6 */
	WF_DNS_ALL = 4,           /* both */
};

/* Keep, in place and in order, the addresses of a[0..n) that `family` chooses. Returns how
 * many are kept. */
uint32_t wf_resolve_pick(struct wf_addr *a, uint32_t n, int family);

/* Resolve `name` now (blocking): the addresses `family` chooses, in the resolver's order,
 * without duplicates, port 0. 0 with *out malloc'd (the caller frees it) and *n >= 1, or an
 * EAI_* code (non-zero; wf_resolve_strerror says what it means) with *out NULL. */
int wf_resolve(const char *name, int family, struct wf_addr **out, uint32_t *n);
const char *wf_resolve_strerror(int rc);

struct wf_resolve_job {
	char *name;                       /* in: owned by the job (wf_resolve_job_free frees it) */
	int family;                       /* in: enum wf_dns_family */
	void *data;                       /* the submitter's; never touched by the helper thread */
	int rc;                           /* out: as wf_resolve */
	struct wf_addr *addrs; uint32_t n; /* out: as wf_resolve, owned by the job */
	struct wf_resolve_job *next;
};

/* A job for `name` (copied). */
struct wf_resolve_job *wf_resolve_job_new(const char *name, int family, void *data);
void wf_resolve_job_free(struct wf_resolve_job *j);

/* Start the helper thread; finished jobs go to done() on `loop`'s thread, which owns them
 * from then on. 0 or -errno. */
int wf_resolver_start(struct wf_loop *loop, void (*done)(struct wf_resolve_job *j));
/* Queue a job (loop thread). The resolver owns it until done() gets it back. */
void wf_resolver_submit(struct wf_resolve_job *j);
/* The function the helper thread resolves with (default wf_resolve): tests substitute a slow
 * or hanging one. Before wf_resolver_start. */
void wf_resolver_use(int (*resolve)(const char *name, int family, struct wf_addr **out, uint32_t *n));
/* Stop the helper thread and free the jobs it still holds (their done() is never called).
 * A thread stuck in getaddrinfo is left to finish on its own (detached): exit does not wait
 * for a hanging resolver. */
void wf_resolver_stop(void);

#endif
