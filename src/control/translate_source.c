/* Istio configuration and registered proxies as the xDS cache's generators (two parts). */
#include "control/translate_source.h"

#include "control/mesh.h"
#include "control/translate.h"
#include "core/log.h"
#include "xds/registry.h"
#include "xds/types.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wf_translate_source {
	char *dir;
	struct wf_store *store;
	struct wf_registry *reg;
	int watch_fd;
	struct wf_mesh *mesh;           /* built for the generations below */
	uint64_t store_gen, reg_gen;
	struct wf_xds_generator gens[2];
	/* streams per registered proxy, and when one with none left goes (0: it has streams) */
	struct conn {
		char *id;
		uint32_t streams;
		uint64_t expires_ms;
	} *conns;
	size_t n_conns;
};

static struct conn *conn_of(struct wf_translate_source *s, const char *id, int add)
{
	for (size_t i = 0; i < s->n_conns; i++)
		if (!strcmp(s->conns[i].id, id))
			return &s->conns[i];
	if (!add)
		return NULL;
	s->conns = realloc(s->conns, (s->n_conns + 1) * sizeof(*s->conns));
	s->conns[s->n_conns] = (struct conn){strdup(id), 0, 0};
	return &s->conns[s->n_conns++];
}

static void conn_drop(struct wf_translate_source *s, struct conn *c)
{
	free(c->id);
	*c = s->conns[--s->n_conns];
}

static const struct wf_mesh *mesh(struct wf_translate_source *s)
{
	if (!s->mesh || s->store_gen != wf_store_generation(s->store) || s->reg_gen != wf_registry_generation(s->reg)) {
		wf_mesh_free(s->mesh);
		s->mesh = wf_mesh_build(s->store, s->reg);
		s->store_gen = wf_store_generation(s->store);
		s->reg_gen = wf_registry_generation(s->reg);
	}
	return s->mesh;
}

struct gen_ctx {
	struct wf_xds_cache *c;
	struct wf_xds_snap *snap;
	int rc;
};

static void add(void *ctx, const char *type_url, const char *name, ProtobufCMessage *msg)
{
	struct gen_ctx *g = ctx;
	int rc = wf_xds_snap_add(g->c, g->snap, wf_xds_type_of(type_url), name, msg);
	if (rc < 0 && !g->rc)
		g->rc = rc;
	wf_proto_free(msg);
}

static void warn(void *ctx, const char *msg)
{
	wf_log(WF_LOG_WARN, "%s", msg);
}

static void key(struct wf_translate_source *s, unsigned parts, const Envoy__Config__Core__V3__Node *node, char *out,
                size_t n)
{
	struct wf_proxy_info p;
	char err[256];
	if (wf_proxy_from_node(node, &p, err, sizeof(err)) < 0) {
		snprintf(out, n, "invalid|%s", node && node->id ? node->id : "");
		return;
	}
	wf_translate_key(mesh(s), &p, parts, out, n);
	wf_proxy_info_clear(&p);
}

static int generate(struct wf_translate_source *s, unsigned parts, const Envoy__Config__Core__V3__Node *node,
                    struct wf_xds_cache *c, struct wf_xds_snap *snap)
{
	struct wf_proxy_info p;
	char err[1024];
	if (wf_proxy_from_node(node, &p, err, sizeof(err)) < 0) {
		wf_log(WF_LOG_WARN, "%s", err);
		return -EINVAL;
	}
	struct gen_ctx g = {c, snap, 0};
	int rc = wf_translate_parts(mesh(s), &p, parts, add, &g, err, sizeof(err), warn);
	if (rc < 0)
		wf_log(WF_LOG_ERROR, "proxy %s: %s", p.id, err);
	wf_proxy_info_clear(&p);
	return rc < 0 ? rc : g.rc;
}

static void out_key(void *ctx, const Envoy__Config__Core__V3__Node *node, char *out, size_t n)
{
	key(ctx, WF_TX_OUTBOUND, node, out, n);
}

static int out_generate(void *ctx, const Envoy__Config__Core__V3__Node *node, struct wf_xds_cache *c,
                        struct wf_xds_snap *snap)
{
	return generate(ctx, WF_TX_OUTBOUND, node, c, snap);
}

static void in_key(void *ctx, const Envoy__Config__Core__V3__Node *node, char *out, size_t n)
{
	key(ctx, WF_TX_INBOUND, node, out, n);
}

static int in_generate(void *ctx, const Envoy__Config__Core__V3__Node *node, struct wf_xds_cache *c,
                       struct wf_xds_snap *snap)
{
	return generate(ctx, WF_TX_INBOUND, node, c, snap);
}

struct wf_translate_source *wf_translate_source_new(const char *dir, struct wf_errs *errs)
{
	struct wf_translate_source *s = calloc(1, sizeof(*s));
	s->dir = strdup(dir);
	s->store = wf_store_new();
	s->reg = wf_registry_new();
	if (wf_store_load_dir(s->store, dir, errs) < 0) {
		wf_translate_source_free(s);
		return NULL;
	}
	s->watch_fd = wf_store_watch(s->store, dir);
	s->gens[0] = (struct wf_xds_generator){"istio-outbound", out_key, out_generate, s};
	s->gens[1] = (struct wf_xds_generator){"istio-inbound", in_key, in_generate, s};
	return s;
}

void wf_translate_source_free(struct wf_translate_source *s)
{
	if (!s)
		return;
	wf_mesh_free(s->mesh);
	wf_registry_free(s->reg);
	wf_store_free(s->store);
	for (size_t i = 0; i < s->n_conns; i++)
		free(s->conns[i].id);
	free(s->conns);
	free(s->dir);
	free(s);
}

const struct wf_xds_generator *wf_translate_source_generators(struct wf_translate_source *s, uint32_t *n)
{
	*n = 2;
	return s->gens;
}

int wf_translate_source_fd(const struct wf_translate_source *s)
{
	return s->watch_fd >= 0 ? s->watch_fd : -1;
}

int wf_translate_source_events(struct wf_translate_source *s, struct wf_errs *errs)
{
	uint64_t before = wf_store_generation(s->store);
	int rc = wf_store_watch_handle(s->store, errs);
	if (rc < 0)
		return rc;
	return wf_store_generation(s->store) != before;
}

/* Whether a ServiceEntry's workloadSelector selects w (the only way a registered workload
 * reaches the mesh: wf_mesh_build). */
static int selected(const struct wf_translate_source *s, const struct wf_workload *w)
{
	if (!w)
		return 0;
	struct wf_store_iter it = {0};
	for (const struct wf_istio_obj *o = wf_store_next(s->store, &it); o; o = wf_store_next(s->store, &it)) {
		if (o->kind != WF_KIND_SERVICE_ENTRY)
			continue;
		const Istio__Networking__V1alpha3__ServiceEntry *se = (const void *)o->spec;
		if (se->workload_selector && wf_selector_selects(se->workload_selector, o->ns, w))
			return 1;
	}
	return 0;
}

/* A registry change that touched only workloads no ServiceEntry selects leaves the mesh as it
 * was: keep it (when it was current) instead of rebuilding it, and every proxy's resources,
 * for each sidecar that connects. 1 when the change matters. */
static int reg_changed(struct wf_translate_source *s, uint64_t gen_before, int was_selected, int is_selected)
{
	if (was_selected || is_selected)
		return 1;
	if (s->mesh && s->reg_gen == gen_before && s->store_gen == wf_store_generation(s->store))
		s->reg_gen = wf_registry_generation(s->reg);
	return 0;
}

int wf_translate_source_connected(struct wf_translate_source *s, const Envoy__Config__Core__V3__Node *node)
{
	char err[512];
	uint64_t gen = wf_registry_generation(s->reg);
	int was = node && node->id ? selected(s, wf_registry_find(s->reg, node->id)) : 0;
	int rc = wf_registry_add_node(s->reg, node, err, sizeof(err));
	if (rc < 0)
		wf_log(WF_LOG_WARN, "%s", err);
	if (rc > 0)
		rc = reg_changed(s, gen, was, selected(s, wf_registry_find(s->reg, node->id)));
	if (node && node->id && *node->id) {
		struct conn *c = conn_of(s, node->id, 1);
		c->streams++;
		c->expires_ms = 0;
	}
	return rc > 0;
}

void wf_translate_source_disconnected(struct wf_translate_source *s, const char *node_id, uint64_t now_ms,
                                      uint64_t grace_ms)
{
	struct conn *c = conn_of(s, node_id, 0);
	if (c && c->streams && !--c->streams)
		c->expires_ms = now_ms + grace_ms + 1;
}

int wf_translate_source_expire(struct wf_translate_source *s, uint64_t now_ms)
{
	int changed = 0;
	for (size_t i = 0; i < s->n_conns;) {
		struct conn *c = &s->conns[i];
		if (c->streams || !c->expires_ms || c->expires_ms > now_ms) {
			i++;
			continue;
		}
		uint64_t gen = wf_registry_generation(s->reg);
		int was = selected(s, wf_registry_find(s->reg, c->id));
		if (wf_registry_remove(s->reg, c->id) > 0)
			changed |= reg_changed(s, gen, was, 0);
		conn_drop(s, c);
	}
	return changed;
}

int wf_translate_source_gone(struct wf_translate_source *s, const char *node_id)
{
	struct conn *c = conn_of(s, node_id, 0);
	if (c)
		conn_drop(s, c);
	uint64_t gen = wf_registry_generation(s->reg);
	int was = selected(s, wf_registry_find(s->reg, node_id));
	return wf_registry_remove(s->reg, node_id) > 0 && reg_changed(s, gen, was, 0);
}

const struct wf_store *wf_translate_source_store(const struct wf_translate_source *s)
{
	return s->store;
}

size_t wf_translate_source_objects(const struct wf_translate_source *s)
{
	return wf_store_count(s->store);
}

size_t wf_translate_source_workloads(const struct wf_translate_source *s)
{
	return wf_registry_count(s->reg);
}
