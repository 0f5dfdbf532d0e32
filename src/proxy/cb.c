/* Circuit breaker state, one per cluster name for the life of the process (see config.h). */
#include "proxy/config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	char *name;
	struct wf_cb cb;
	struct entry *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *entries;

struct wf_cb *wf_cb_for(const char *name)
{
	pthread_mutex_lock(&lock);
	struct entry *e;
	for (e = entries; e; e = e->next)
		if (!strcmp(e->name, name))
			break;
	if (!e) {
		e = calloc(1, sizeof(*e));
		e->name = strdup(name);
		e->next = entries;
		entries = e;
	}
	pthread_mutex_unlock(&lock);
	return &e->cb;
}
