/* Internal to the mesh model and the translator (control/mesh*.c, registry_node.c,
 * translate*.c). */
#ifndef WF_CONTROL_MESH_INT_H
#define WF_CONTROL_MESH_INT_H

#include <stdlib.h>

#include "control/mesh.h"

/* Append x to the array arr of n elements (realloc'd one more each time). */
#define XPUSH(arr, n, x)                                                   \
	do {                                                                   \
		(arr) = realloc((arr), ((n) + 1) * sizeof(*(arr)));                \
		(arr)[(n)++] = (x);                                                \
	} while (0)

/* Keep s (malloc'd) until the mesh is freed; returns s. */
const char *wf_mesh_own(struct wf_mesh *m, char *s);
/* The i-th registered workload (0 <= i < wf_registry_count). */
const struct wf_workload *wf_registry_at(const struct wf_registry *r, size_t i);
struct wf_workload *wf_workload_dup(const struct wf_workload *w);
void wf_workload_free(struct wf_workload *w);
/* Does host match pattern: the same host, "*", or "*.suffix" matching a longer host? */
int wf_host_match(const char *pattern, const char *host);

#endif
