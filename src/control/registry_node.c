/* A connecting proxy's Node read as istiod reads it, and the registry of the workloads that
 * sidecars register by connecting (Istio's WorkloadEntry auto-registration). */
#include "control/mesh.h"

#include "control/mesh_int.h"
#include "google/protobuf/struct.pb-c.h"
#include "xds/cfgdoc.h"
#include "xds/registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Google__Protobuf__Struct Struct;
typedef Google__Protobuf__Value Value;

static const Value *meta(const Envoy__Config__Core__V3__Node *node, const char *key)
{
	const Struct *s = node->metadata;
	for (size_t i = 0; s && i < s->n_fields; i++)
		if (!strcmp(s->fields[i]->key, key))
			return s->fields[i]->value;
	return NULL;
}

static const char *meta_str(const Envoy__Config__Core__V3__Node *node, const char *key)
{
	const Value *v = meta(node, key);
	return v && v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE ? v->string_value : NULL;
}

static char *dup0(const char *s)
{
	return strdup(s ? s : "");
}

void wf_proxy_info_clear(struct wf_proxy_info *p)
{
	free(p->id);
	free(p->ip);
	free(p->name);
	free(p->ns);
	for (size_t i = 0; i < p->n_labels; i++) {
		free(p->labels[i].key);
		free(p->labels[i].value);
	}
	free(p->labels);
	free(p->service_account);
	free(p->locality);
	memset(p, 0, sizeof(*p));
}

int wf_proxy_from_node(const Envoy__Config__Core__V3__Node *node, struct wf_proxy_info *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	if (!node || !node->id || !*node->id) {
		snprintf(err, errlen, "node.id is empty: a proxy needs an id (sidecar~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local)");
		return -EINVAL;
	}
	p->id = strdup(node->id);
	/* TYPE~IP~POD.NAMESPACE~DOMAIN */
	char *parts[4] = {0};
	int n = 0;
	char *copy = strdup(node->id), *save = NULL;
	for (char *t = strtok_r(copy, "~", &save); t && n < 4; t = strtok_r(NULL, "~", &save))
		parts[n++] = t;
	int tilde_form = n == 4 && (!strcmp(parts[0], "sidecar") || !strcmp(parts[0], "router"));
	const char *gen = meta_str(node, "GENERATOR");
	const char *ns = meta_str(node, "NAMESPACE"), *ips = meta_str(node, "INSTANCE_IPS");
	if ((gen && !strcmp(gen, "grpc")) || (!tilde_form && !ns && !ips))
		p->kind = WF_PROXY_GRPC;
	else
		p->kind = tilde_form && !strcmp(parts[0], "router") ? WF_PROXY_ROUTER : WF_PROXY_SIDECAR;
	char *pod = NULL, *pod_ns = NULL;
	if (tilde_form) {
		pod = parts[2];
		char *dot = strchr(pod, '.');
		if (dot) {
			*dot = 0;
			pod_ns = dot + 1;
		}
	}
	p->ns = strdup(ns && *ns ? ns : pod_ns && *pod_ns ? pod_ns : "default");
	const char *wn = meta_str(node, "WORKLOAD_NAME");
	p->name = strdup(wn && *wn ? wn : pod ? pod : node->id);
	if (ips && *ips) {
		size_t k = strcspn(ips, ",");
		p->ip = strndup(ips, k);
	} else {
		p->ip = strdup(tilde_form ? parts[1] : "");
	}
	free(copy);
	p->service_account = dup0(meta_str(node, "SERVICE_ACCOUNT"));
	const char *im = meta_str(node, "INTERCEPTION_MODE");
	p->interception_none = im && !strcmp(im, "NONE");
	if (node->locality) {
		const Envoy__Config__Core__V3__Locality *l = node->locality;
		size_t len = strlen(l->region) + strlen(l->zone) + strlen(l->sub_zone) + 3;
		p->locality = malloc(len);
		snprintf(p->locality, len, "%s%s%s%s%s", l->region, *l->zone || *l->sub_zone ? "/" : "", l->zone,
		         *l->sub_zone ? "/" : "", l->sub_zone);
	} else {
		p->locality = strdup("");
	}
	const Value *lv = meta(node, "LABELS");
	/* an empty value (null, or nothing set) is no labels */
	if (lv && lv->kind_case != GOOGLE__PROTOBUF__VALUE__KIND__NOT_SET && lv->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE) {
		if (lv->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE) {
			snprintf(err, errlen, "node %s: metadata LABELS must be a map of strings", node->id);
			wf_proxy_info_clear(p);
			return -EINVAL;
		}
		const Struct *s = lv->struct_value;
		p->labels = calloc(s->n_fields + 1, sizeof(*p->labels));
		for (size_t i = 0; i < s->n_fields; i++) {
			const Value *v = s->fields[i]->value;
			if (!v || v->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE) {
				snprintf(err, errlen, "node %s: metadata LABELS.%s must be a string", node->id, s->fields[i]->key);
				wf_proxy_info_clear(p);
				return -EINVAL;
			}
			p->labels[p->n_labels++] = (struct wf_kv){strdup(s->fields[i]->key), strdup(v->string_value)};
		}
	}
	return 0;
}

Envoy__Config__Core__V3__Node *wf_node_from_yaml(const char *path, const char *text, char *err, size_t errlen)
{
	struct wf_cfgdoc *doc = wf_cfgdoc_new(path ? path : "node");
	int rc = text ? wf_yaml_load_string(doc, &envoy__config__core__v3__node__descriptor, text, strlen(text), err, errlen)
	              : wf_yaml_load_file(doc, &envoy__config__core__v3__node__descriptor, err, errlen);
	if (rc < 0) {
		wf_cfgdoc_free(doc);
		return NULL;
	}
	/* a copy of its own, so that the document (and its positions) can go */
	ProtobufCMessage *m = wf_cfgdoc_root(doc);
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len + 1);
	protobuf_c_message_pack(m, buf);
	wf_cfgdoc_free(doc);
	void *n = protobuf_c_message_unpack(&envoy__config__core__v3__node__descriptor, NULL, len, buf);
	free(buf);
	if (!n)
		snprintf(err, errlen, "%s: out of memory", path ? path : "node");
	return n;
}

/* ---- the registry -------------------------------------------------------------------------- */

struct wf_registry {
	struct wf_workload **w;     /* sorted by node id */
	size_t n;
	uint64_t gen;
};

struct wf_registry *wf_registry_new(void)
{
	return calloc(1, sizeof(struct wf_registry));
}

void wf_registry_free(struct wf_registry *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		wf_workload_free(r->w[i]);
	free(r->w);
	free(r);
}

size_t wf_registry_count(const struct wf_registry *r)
{
	return r->n;
}

uint64_t wf_registry_generation(const struct wf_registry *r)
{
	return r->gen;
}

const struct wf_workload *wf_registry_at(const struct wf_registry *r, size_t i)
{
	return r->w[i];
}

/* Index of id, or where it would go (*found 0). */
static size_t find(const struct wf_registry *r, const char *id, int *found)
{
	size_t lo = 0, hi = r->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(id, r->w[mid]->node_id);
		if (!c) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*found = 0;
	return lo;
}

static int same_wl(const struct wf_workload *a, const struct wf_workload *b)
{
	if (strcmp(a->name, b->name) || strcmp(a->ns, b->ns) || strcmp(a->address, b->address) ||
	    strcmp(a->locality, b->locality) || strcmp(a->service_account, b->service_account) || a->n_labels != b->n_labels)
		return 0;
	for (size_t i = 0; i < a->n_labels; i++)
		if (strcmp(a->labels[i].key, b->labels[i].key) || strcmp(a->labels[i].value, b->labels[i].value))
			return 0;
	return 1;
}

int wf_registry_add_node(struct wf_registry *r, const Envoy__Config__Core__V3__Node *node, char *err, size_t errlen)
{
	struct wf_proxy_info p;
	int rc = wf_proxy_from_node(node, &p, err, errlen);
	if (rc < 0)
		return rc;
	if (p.kind != WF_PROXY_SIDECAR || !*p.ip) {
		wf_proxy_info_clear(&p);
		return 0;
	}
	struct wf_workload *w = calloc(1, sizeof(*w));
	w->name = p.name;
	w->ns = p.ns;
	w->address = p.ip;
	w->labels = p.labels ? p.labels : calloc(1, sizeof(*w->labels));
	w->n_labels = p.n_labels;
	w->ports = calloc(1, sizeof(*w->ports));
	w->locality = p.locality;
	w->network = strdup("");
	w->service_account = p.service_account;
	w->node_id = p.id;
	int found;
	size_t i = find(r, w->node_id, &found);
	if (found) {
		if (same_wl(r->w[i], w)) {
			wf_workload_free(w);
			return 0;
		}
		wf_workload_free(r->w[i]);
		r->w[i] = w;
	} else {
		r->w = realloc(r->w, (r->n + 1) * sizeof(*r->w));
		memmove(&r->w[i + 1], &r->w[i], (r->n - i) * sizeof(*r->w));
		r->w[i] = w;
		r->n++;
	}
	r->gen++;
	return 1;
}

const struct wf_workload *wf_registry_find(const struct wf_registry *r, const char *node_id)
{
	int found = 0;
	size_t i = find(r, node_id, &found);
	return found ? r->w[i] : NULL;
}

int wf_registry_remove(struct wf_registry *r, const char *node_id)
{
	int found;
	size_t i = find(r, node_id, &found);
	if (!found)
		return 0;
	wf_workload_free(r->w[i]);
	memmove(&r->w[i], &r->w[i + 1], (r->n - i - 1) * sizeof(*r->w));
	r->n--;
	r->gen++;
	return 1;
}
