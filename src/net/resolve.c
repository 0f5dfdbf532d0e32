/* The system resolver, blocking or on a helper thread (see resolve.h).
 *
 *   loop thread                      helper thread
 *   submit ──> queue (mutex) ──────> getaddrinfo ──> done list (mutex) ──> eventfd
 *   on_bell <─────────────────────────────────────────────────────────────────┘
 *     └─> done(job) for each finished job, in the order they finished */
#include "net/resolve.h"

#include "core/log.h"
#include "core/loop.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* ---- blocking ---------------------------------------------------------------------------- */

static int has_family(const struct wf_addr *a, uint32_t n, int af)
{
	for (uint32_t i = 0; i < n; i++)
		if (a[i].ss.ss_family == af)
			return 1;
	return 0;
}

uint32_t wf_resolve_pick(struct wf_addr *a, uint32_t n, int family)
{
	int want = 0; /* 0: both */
	switch (family) {
	case WF_DNS_V4_ONLY: want = AF_INET; break;
	case WF_DNS_V6_ONLY: want = AF_INET6; break;
	case WF_DNS_AUTO: want = has_family(a, n, AF_INET6) ? AF_INET6 : AF_INET; break;
	case WF_DNS_V4_PREFERRED: want = has_family(a, n, AF_INET) ? AF_INET : AF_INET6; break;
	default: break;
	}
	uint32_t k = 0;
	for (uint32_t i = 0; i < n; i++)
		if (!want || a[i].ss.ss_family == want)
			a[k++] = a[i];
	return k;
}

int wf_resolve(const char *name, int family, struct wf_addr **out, uint32_t *n)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
	if (family == WF_DNS_V4_ONLY)
		hints.ai_family = AF_INET;
	else if (family == WF_DNS_V6_ONLY)
		hints.ai_family = AF_INET6;
	struct addrinfo *res = NULL;
	*out = NULL;
	*n = 0;
	int rc = getaddrinfo(name, NULL, &hints, &res);
	if (rc)
		return rc;
	uint32_t cap = 0;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
		cap++;
	struct wf_addr *a = calloc(cap + 1, sizeof(*a));
	uint32_t k = 0;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof(a[k].ss))
			continue;
		memcpy(&a[k].ss, ai->ai_addr, ai->ai_addrlen);
		a[k].len = ai->ai_addrlen;
		int dup = 0;
		for (uint32_t i = 0; i < k && !dup; i++)
			dup = wf_addr_eq(&a[i], &a[k]);
		k += !dup;
	}
	freeaddrinfo(res);
	k = wf_resolve_pick(a, k, family);
	if (!k) {
		free(a);
		return EAI_NONAME;
	}
	*out = a;
	*n = k;
	return 0;
}

const char *wf_resolve_strerror(int rc) { return gai_strerror(rc); }

struct wf_resolve_job *wf_resolve_job_new(const char *name, int family, void *data)
{
	struct wf_resolve_job *j = calloc(1, sizeof(*j));
	j->name = strdup(name);
	j->family = family;
	j->data = data;
	return j;
}

void wf_resolve_job_free(struct wf_resolve_job *j)
{
	if (!j)
		return;
	free(j->name);
	free(j->addrs);
	free(j);
}

/* ---- the helper thread ------------------------------------------------------------------- */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	int started, stop, busy;
	struct wf_resolve_job *head, *tail;   /* queued, FIFO */
	struct wf_resolve_job *done_list;     /* finished, newest first */
	struct wf_io bell;                    /* eventfd on the loop */
	struct wf_loop *loop;
	void (*done)(struct wf_resolve_job *j);
	int (*resolve)(const char *name, int family, struct wf_addr **out, uint32_t *n);
} R = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .resolve = wf_resolve};

void wf_resolver_use(int (*resolve)(const char *name, int family, struct wf_addr **out, uint32_t *n))
{
	R.resolve = resolve;
}

static void *run(void *arg)
{
	pthread_mutex_lock(&R.lock);
	for (;;) {
		while (!R.stop && !R.head)
			pthread_cond_wait(&R.wake, &R.lock);
		if (R.stop)
			break;
		struct wf_resolve_job *j = R.head;
		R.head = j->next;
		if (!R.head)
			R.tail = NULL;
		R.busy = 1;
		pthread_mutex_unlock(&R.lock);
		j->rc = R.resolve(j->name, j->family, &j->addrs, &j->n);
		pthread_mutex_lock(&R.lock);
		R.busy = 0;
		if (R.stop) { /* nobody is waiting for it any more */
			wf_resolve_job_free(j);
			break;
		}
		j->next = R.done_list;
		R.done_list = j;
		/* under the lock: wf_resolver_stop closes the eventfd only after setting R.stop */
		uint64_t one = 1;
		if (write(R.bell.fd, &one, sizeof(one)) < 0)
			wf_warn("resolver: eventfd: %s", strerror(errno));
	}
	pthread_mutex_unlock(&R.lock);
	return NULL;
}

static void on_bell(struct wf_loop *loop, struct wf_io *io, uint32_t ev)
{
	uint64_t v;
	if (read(io->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		wf_warn("resolver: eventfd: %s", strerror(errno));
	pthread_mutex_lock(&R.lock);
	struct wf_resolve_job *list = R.done_list, *fifo = NULL;
	R.done_list = NULL;
	pthread_mutex_unlock(&R.lock);
	while (list) {
		struct wf_resolve_job *next = list->next;
		list->next = fifo;
		fifo = list;
		list = next;
	}
	while (fifo) {
		struct wf_resolve_job *next = fifo->next;
		fifo->next = NULL;
		R.done(fifo);
		fifo = next;
	}
}

int wf_resolver_start(struct wf_loop *loop, void (*done)(struct wf_resolve_job *j))
{
	if (R.started)
		return 0;
	R.bell.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (R.bell.fd < 0)
		return -errno;
	R.bell.cb = on_bell;
	R.loop = loop;
	R.done = done;
	R.stop = 0;
	/* the thread inherits a mask that blocks every signal: they are the main thread's */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(&R.thread, NULL, run, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		close(R.bell.fd);
		return -r;
	}
	wf_io_set(loop, &R.bell, EPOLLIN);
	R.started = 1;
	return 0;
}

void wf_resolver_submit(struct wf_resolve_job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&R.lock);
	if (R.tail)
		R.tail->next = j;
	else
		R.head = j;
	R.tail = j;
	pthread_cond_signal(&R.wake);
	pthread_mutex_unlock(&R.lock);
}

static void free_list(struct wf_resolve_job *j)
{
	while (j) {
		struct wf_resolve_job *next = j->next;
		wf_resolve_job_free(j);
		j = next;
	}
}

void wf_resolver_stop(void)
{
	if (!R.started)
		return;
	pthread_mutex_lock(&R.lock);
	R.stop = 1;
	int busy = R.busy;
	struct wf_resolve_job *queued = R.head, *finished = R.done_list;
	R.head = R.tail = R.done_list = NULL;
	pthread_cond_signal(&R.wake);
	pthread_mutex_unlock(&R.lock);
	if (busy)
		pthread_detach(R.thread);
	else
		pthread_join(R.thread, NULL);
	free_list(queued);
	free_list(finished);
	wf_io_del(R.loop, &R.bell);
	close(R.bell.fd);
	R.started = 0;
}
