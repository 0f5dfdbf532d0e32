#include "xds/cfgdoc.h"

#include "xds/registry.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One entry per marked (message, field) pair, and one per decoded Any. */
struct mark {
	const void *key;
	uint32_t field_id;
	uint32_t line, col;
	char *path;                /* a message's field path; a field's name as spelt, when not as declared */
	ProtobufCMessage *inner;   /* Any only: the decoded payload, owned */
};

struct wf_cfgdoc {
	int refs;                  /* atomic: snapshots compiled from it */
	char *source;
	ProtobufCMessage *root;
	struct mark *marks;
	uint32_t n, cap;           /* open addressing, cap a power of two */
	int json_names;            /* errors name unset fields in lowerCamelCase */
};

struct wf_cfgdoc *wf_cfgdoc_new(const char *source)
{
	struct wf_cfgdoc *doc = calloc(1, sizeof(*doc));
	if (!doc)
		return NULL;
	doc->refs = 1;
	doc->source = strdup(source ? source : "<config>");
	return doc;
}

struct wf_cfgdoc *wf_cfgdoc_ref(struct wf_cfgdoc *doc)
{
	__atomic_add_fetch(&doc->refs, 1, __ATOMIC_RELAXED);
	return doc;
}

const char *wf_cfgdoc_source(const struct wf_cfgdoc *doc) { return doc->source; }
ProtobufCMessage *wf_cfgdoc_root(const struct wf_cfgdoc *doc) { return doc->root; }
void wf_cfgdoc_set_root(struct wf_cfgdoc *doc, ProtobufCMessage *root) { doc->root = root; }

void wf_cfgdoc_free(struct wf_cfgdoc *doc)
{
	if (!doc || __atomic_sub_fetch(&doc->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (uint32_t i = 0; i < doc->cap; i++) {
		free(doc->marks[i].path);
		wf_proto_free(doc->marks[i].inner);
	}
	free(doc->marks);
	wf_proto_free(doc->root);
	free(doc->source);
	free(doc);
}

static uint32_t slot_of(const void *key, uint32_t field_id, uint32_t cap)
{
	uint64_t h = (uint64_t)(uintptr_t)key * 0x9E3779B97F4A7C15ull ^ (uint64_t)field_id * 0xC2B2AE3D27D4EB4Full;
	return (uint32_t)(h >> 32) & (cap - 1);
}

static struct mark *lookup(const struct wf_cfgdoc *doc, const void *key, uint32_t field_id)
{
	if (!doc->cap)
		return NULL;
	for (uint32_t i = slot_of(key, field_id, doc->cap);; i = (i + 1) & (doc->cap - 1)) {
		struct mark *m = &doc->marks[i];
		if (!m->key)
			return NULL;
		if (m->key == key && m->field_id == field_id)
			return m;
	}
}

static struct mark *insert(struct wf_cfgdoc *doc, const void *key, uint32_t field_id)
{
	struct mark *m = lookup(doc, key, field_id);
	if (m)
		return m;
	if ((doc->n + 1) * 2 > doc->cap) {
		uint32_t cap = doc->cap ? doc->cap * 2 : 16;
		struct mark *nm = calloc(cap, sizeof(*nm));
		if (!nm)
			abort();
		for (uint32_t i = 0; i < doc->cap; i++) {
			struct mark *o = &doc->marks[i];
			if (!o->key)
				continue;
			uint32_t j = slot_of(o->key, o->field_id, cap);
			while (nm[j].key)
				j = (j + 1) & (cap - 1);
			nm[j] = *o;
		}
		free(doc->marks);
		doc->marks = nm;
		doc->cap = cap;
	}
	uint32_t j = slot_of(key, field_id, doc->cap);
	while (doc->marks[j].key)
		j = (j + 1) & (doc->cap - 1);
	m = &doc->marks[j];
	m->key = key;
	m->field_id = field_id;
	doc->n++;
	return m;
}

void wf_cfgdoc_mark(struct wf_cfgdoc *doc, const void *msg, uint32_t field_id, uint32_t line,
                    uint32_t col, const char *path)
{
	struct mark *m = insert(doc, msg, field_id);
	m->line = line;
	m->col = col;
	if (path && !m->path)
		m->path = strdup(path);
}

int wf_cfgdoc_pos(const struct wf_cfgdoc *doc, const void *key, uint32_t field_id, uint32_t *line,
                  uint32_t *col)
{
	const struct mark *m = key ? lookup(doc, key, field_id) : NULL;
	if (!m || !m->line)
		return 0;
	*line = m->line;
	*col = m->col;
	return 1;
}

/* Is msg m, or below it? Then buf[0..cap) holds its field path, continued from buf[0..len): proto
 * field names, "[i]" for an element, an Any's payload at the Any's own path (payloads that were
 * unpacked through the document). */
static int find_path(const struct wf_cfgdoc *doc, const ProtobufCMessage *m, const void *msg, char *buf, size_t cap,
                     size_t len, int depth)
{
	if (m == msg)
		return 1;
	const ProtobufCMessageDescriptor *d = m->descriptor;
	if (depth > 64)
		return 0;
	if (!strcmp(d->name, "google.protobuf.Any")) {
		const struct mark *a = lookup(doc, m, UINT32_MAX);
		return a && a->inner && find_path(doc, a->inner, msg, buf, cap, len, depth + 1);
	}
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE || !wf_proto_field_is_set(m, f))
			continue;
		const char *base = (const char *)m + f->offset;
		int rep = f->label == PROTOBUF_C_LABEL_REPEATED;
		size_t n = rep ? *(const size_t *)((const char *)m + f->quantifier_offset) : 1;
		ProtobufCMessage *const *arr = rep ? *(ProtobufCMessage *const *const *)base : (ProtobufCMessage *const *)base;
		for (size_t k = 0; k < n; k++) {
			if (!arr[k])
				continue;
			int w = rep ? snprintf(buf + len, cap - len, "%s%s[%zu]", len ? "." : "", f->name, k)
			            : snprintf(buf + len, cap - len, "%s%s", len ? "." : "", f->name);
			size_t l2 = w < 0 || len + (size_t)w >= cap ? cap - 1 : len + (size_t)w;
			if (find_path(doc, arr[k], msg, buf, cap, l2, depth + 1))
				return 1;
			buf[len] = 0;
		}
	}
	return 0;
}

const char *wf_cfgdoc_path(const struct wf_cfgdoc *doc, const void *msg)
{
	const struct mark *m = msg ? lookup(doc, msg, 0) : NULL;
	if (m)
		return m->path ? m->path : "";
	/* Not marked (a document decoded from protobuf, as xDS resources are): found in the tree,
	 * and remembered. Marking every message of every resource up front cost more than the
	 * resources themselves; paths are wanted for errors and a few identities. */
	char buf[1024] = "";
	if (!msg || !doc->root || !find_path(doc, doc->root, msg, buf, sizeof(buf), 0, 0))
		return "";
	struct mark *nm = insert((struct wf_cfgdoc *)doc, msg, 0);
	nm->path = strdup(buf);
	return nm->path ? nm->path : "";
}

void wf_cfgdoc_use_json_names(struct wf_cfgdoc *doc) { doc->json_names = 1; }

/* "max_ejection_percent" -> "maxEjectionPercent" (proto3's JSON name). */
static const char *json_name(const char *name, char *out, size_t cap)
{
	size_t k = 0;
	for (int up = 0; *name && k + 1 < cap; name++) {
		if (*name == '_') {
			up = 1;
			continue;
		}
		out[k++] = up && *name >= 'a' && *name <= 'z' ? (char)(*name - 32) : *name;
		up = 0;
	}
	out[k] = 0;
	return out;
}

const char *wf_cfgdoc_field_name(const struct wf_cfgdoc *doc, const void *msg, const char *field, char *buf,
                                 size_t cap)
{
	const ProtobufCFieldDescriptor *fd =
	    msg ? protobuf_c_message_descriptor_get_field_by_name(((const ProtobufCMessage *)msg)->descriptor, field)
	        : NULL;
	const struct mark *fm = fd ? lookup(doc, msg, fd->id) : NULL;
	if (fm && fm->path)
		return fm->path;
	return doc->json_names ? json_name(field, buf, cap) : field;
}

int wf_cfg_err(const struct wf_cfgdoc *doc, char *err, size_t errlen, const void *msg,
               const char *field, const char *fmt, ...)
{
	if (!err || !errlen)
		return -EINVAL;
	const struct mark *mm = msg ? lookup(doc, msg, 0) : NULL;
	const struct mark *fm = NULL;
	if (msg && field) {
		const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field_by_name(
		    ((const ProtobufCMessage *)msg)->descriptor, field);
		if (fd)
			fm = lookup(doc, msg, fd->id);
	}
	const struct mark *pos = fm ? fm : mm;
	size_t n = 0;
	if (pos && pos->line)
		n = (size_t)snprintf(err, errlen, "%s:%u:%u: ", doc->source, pos->line, pos->col);
	else
		n = (size_t)snprintf(err, errlen, "%s: ", doc->source);
	if (n < errlen) {
		const char *path = msg ? wf_cfgdoc_path(doc, msg) : "";
		char shown[128];
		if (field)
			field = wf_cfgdoc_field_name(doc, msg, field, shown, sizeof(shown));
		if (*path || field)
			n += (size_t)snprintf(err + n, errlen - n, "%s%s%s: ", path,
			                      *path && field ? "." : "", field ? field : "");
	}
	if (n < errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

void wf_cfgdoc_set_any(struct wf_cfgdoc *doc, const ProtobufCMessage *any, ProtobufCMessage *inner)
{
	struct mark *m = insert(doc, any, UINT32_MAX);
	wf_proto_free(m->inner);
	m->inner = inner;
}

ProtobufCMessage *wf_cfgdoc_any(struct wf_cfgdoc *doc, const ProtobufCMessage *anym, char *err,
                                size_t errlen)
{
	struct mark *m = lookup(doc, anym, UINT32_MAX);
	if (m && m->inner)
		return m->inner;
	/* google.protobuf.Any: field 1 type_url (string), field 2 value (bytes). */
	const ProtobufCMessageDescriptor *ad = anym->descriptor;
	const ProtobufCFieldDescriptor *fu = protobuf_c_message_descriptor_get_field(ad, 1);
	const ProtobufCFieldDescriptor *fv = protobuf_c_message_descriptor_get_field(ad, 2);
	const char *url = *(char *const *)((const char *)anym + fu->offset);
	const ProtobufCBinaryData *val = (const void *)((const char *)anym + fv->offset);
	const ProtobufCMessageDescriptor *d = url && *url ? wf_proto_find(url) : NULL;
	if (!d) {
		wf_cfg_err(doc, err, errlen, anym, "type_url", "unknown or unsupported type '%s'",
		           url ? url : "");
		return NULL;
	}
	ProtobufCMessage *inner = protobuf_c_message_unpack(d, NULL, val->len, val->data);
	if (!inner) {
		wf_cfg_err(doc, err, errlen, anym, "value", "payload does not decode as %s", d->name);
		return NULL;
	}
	wf_cfgdoc_set_any(doc, anym, inner);
	return inner;
}
