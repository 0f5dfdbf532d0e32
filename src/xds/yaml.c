/* YAML -> protobuf message, driven by protobuf-c descriptors: the one mapper behind every
 * configuration file. It follows the proto3 JSON mapping that Envoy's YAML uses:
 *   - field names in snake_case (lowerCamelCase accepted too);
 *   - google.protobuf.Any as a map with "@type" plus the fields of that type;
 *   - Duration as "1.5s" (or {seconds, nanos}); wrappers as their bare value;
 *   - Struct/Value/ListValue as any YAML; map<> fields as YAML maps; enums by name or number.
 * Every field not declared in our .proto subset is refused, with file:line:column, the field
 * path, and the nearest declared name when it looks like a typo. */
#include "xds/cfgdoc.h"
#include "xds/registry.h"
#include "core/str.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yaml.h>

struct mapper {
	struct wf_cfgdoc *doc;
	yaml_document_t *y;
	char *err;
	size_t errlen;
	char path[1024];
	int any_payload; /* the next map_message is the payload of an Any: "@type" is allowed */
	int depth;       /* nesting, bounded: a self-referencing alias or a deep document stops here */
	uint64_t visits; /* nodes visited, bounded: aliases can multiply a small file */
};

#define MAX_DEPTH 100
#define MAX_VISITS 2000000

static int fail(struct mapper *m, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct mapper *m, const yaml_node_t *n, const char *fmt, ...)
{
	int k = snprintf(m->err, m->errlen, "%s:%zu:%zu: %s%s", wf_cfgdoc_source(m->doc),
	                 n->start_mark.line + 1, n->start_mark.column + 1, m->path,
	                 m->path[0] ? ": " : "");
	if (k >= 0 && (size_t)k < m->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(m->err + k, m->errlen - (size_t)k, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static const char *kind_name(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE: return "a scalar";
	case YAML_SEQUENCE_NODE: return "a list";
	case YAML_MAPPING_NODE: return "a map";
	default: return "nothing";
	}
}

static const char *scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static int is_null(const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	const char *s = scalar(n);
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* Push/pop a path component: ".name" or "[i]". Returns the old length to restore. */
static size_t path_push(struct mapper *m, const char *name, long idx)
{
	size_t old = strlen(m->path);
	if (name)
		snprintf(m->path + old, sizeof(m->path) - old, "%s%s", old ? "." : "", name);
	else
		snprintf(m->path + old, sizeof(m->path) - old, "[%ld]", idx);
	return old;
}

static void *field_ptr(void *msg, const ProtobufCFieldDescriptor *f) { return (char *)msg + f->offset; }

static int map_message(struct mapper *m, const yaml_node_t *n, ProtobufCMessage *msg);

static int map_message_(struct mapper *m, const yaml_node_t *n, ProtobufCMessage *msg);
static int map_fields(struct mapper *m, const yaml_node_t *n, ProtobufCMessage *msg, int any_payload);
static int map_value_(struct mapper *m, const yaml_node_t *n, ProtobufCMessage *msg);
static int map_list_value_(struct mapper *m, const yaml_node_t *n, ProtobufCMessage *msg);

/* Every descent goes through here: depth and size limits, whatever the document does. */
static int guarded(struct mapper *m, const yaml_node_t *n, ProtobufCMessage *msg,
                   int (*fn)(struct mapper *, const yaml_node_t *, ProtobufCMessage *))
{
	if (m->depth >= MAX_DEPTH)
		return fail(m, n, "nested more than %d levels deep (a self-referencing alias?)", MAX_DEPTH);
	if (++m->visits > MAX_VISITS)
		return fail(m, n, "the document expands to more than %d nodes (aliases?)", MAX_VISITS);
	m->depth++;
	int r = fn(m, n, msg);
	m->depth--;
	return r;
}

static int map_message(struct mapper *m, const yaml_node_t *n, ProtobufCMessage *msg)
{
	return guarded(m, n, msg, map_message_);
}

static int map_value(struct mapper *m, const yaml_node_t *n, ProtobufCMessage *msg)
{
	return guarded(m, n, msg, map_value_);
}

static int map_list_value(struct mapper *m, const yaml_node_t *n, ProtobufCMessage *msg)
{
	return guarded(m, n, msg, map_list_value_);
}

/* ---- scalars ---------------------------------------------------------------------------- */

static int parse_int(struct mapper *m, const yaml_node_t *n, int64_t lo, uint64_t hi, int64_t *out_s,
                     uint64_t *out_u)
{
	if (n->type != YAML_SCALAR_NODE)
		return fail(m, n, "expected a number, got %s", kind_name(n));
	const char *s = scalar(n);
	char *end;
	errno = 0;
	if (s[0] == '-') {
		long long v = strtoll(s, &end, 10);
		if (errno || *end || end == s || v < lo)
			return fail(m, n, "'%s' is not a valid number here", s);
		*out_s = v;
		*out_u = 0;
	} else {
		unsigned long long v = strtoull(s, &end, 10);
		if (errno || *end || end == s || !isdigit((unsigned char)s[0]) || v > hi)
			return fail(m, n, "'%s' is not a valid number here (0..%" PRIu64 ")", s, hi);
		*out_u = v;
		*out_s = (int64_t)v;
	}
	return 0;
}

static int parse_bool(struct mapper *m, const yaml_node_t *n, protobuf_c_boolean *out)
{
	if (n->type == YAML_SCALAR_NODE) {
		const char *s = scalar(n);
		if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
			*out = 1;
			return 0;
		}
		if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
			*out = 0;
			return 0;
		}
	}
	return fail(m, n, "expected true or false");
}

static int parse_double(struct mapper *m, const yaml_node_t *n, double *out)
{
	if (n->type != YAML_SCALAR_NODE)
		return fail(m, n, "expected a number, got %s", kind_name(n));
	char *end;
	errno = 0;
	*out = strtod(scalar(n), &end);
	if (errno || *end || end == scalar(n))
		return fail(m, n, "'%s' is not a number", scalar(n));
	return 0;
}

static int parse_enum(struct mapper *m, const yaml_node_t *n, const ProtobufCEnumDescriptor *e,
                      int *out)
{
	if (n->type != YAML_SCALAR_NODE)
		return fail(m, n, "expected one of %s's names, got %s", e->name, kind_name(n));
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(e, scalar(n));
	if (!v) {
		char *end;
		errno = 0;
		long k = strtol(scalar(n), &end, 10);
		if (!*end && end != scalar(n) && !errno && k >= INT32_MIN && k <= INT32_MAX)
			v = protobuf_c_enum_descriptor_get_value(e, (int)k);
	}
	if (!v) {
		char names[512] = "";
		size_t k = 0;
		for (unsigned i = 0; i < e->n_values && k < sizeof(names) - 64; i++)
			k += (size_t)snprintf(names + k, sizeof(names) - k, "%s%s", i ? ", " : "", e->values[i].name);
		return fail(m, n, "'%s' is not a valid value (one of: %s)", scalar(n), names);
	}
	*out = v->value;
	return 0;
}

/* "1.5s", "100ms" is not proto3 JSON; Envoy accepts only seconds with an "s" suffix. */
static int parse_duration_text(const char *s, int64_t *sec, int32_t *nanos)
{
	size_t n = strlen(s);
	if (n < 2 || s[n - 1] != 's')
		return -1;
	int neg = s[0] == '-';
	const char *p = s + neg;
	int64_t whole = 0;
	int32_t frac = 0;
	int digits = 0, fd = 0;
	for (; *p >= '0' && *p <= '9'; p++, digits++) {
		if (whole > 315576000000LL)
			return -1;
		whole = whole * 10 + (*p - '0');
	}
	if (*p == '.') {
		p++;
		for (; *p >= '0' && *p <= '9'; p++, fd++)
			if (fd < 9)
				frac = frac * 10 + (*p - '0');
		if (!fd)
			return -1;
		for (int i = fd; i < 9; i++)
			frac *= 10;
	}
	if (!digits && !fd)
		return -1;
	if (p != s + n - 1)
		return -1;
	*sec = neg ? -whole : whole;
	*nanos = neg ? -frac : frac;
	return 0;
}

/* ---- well-known types ------------------------------------------------------------------- */

static int is_wkt(const ProtobufCMessageDescriptor *d, const char *name)
{
	return !strcmp(d->name, name);
}

static const ProtobufCFieldDescriptor *fld(const ProtobufCMessageDescriptor *d, const char *name)
{
	return protobuf_c_message_descriptor_get_field_by_name(d, name);
}

static int map_value(struct mapper *m, const yaml_node_t *n, ProtobufCMessage *msg);

static int map_struct(struct mapper *m, const yaml_node_t *n, ProtobufCMessage *msg);

static int map_list_value_(struct mapper *m, const yaml_node_t *n, ProtobufCMessage *msg)
{
	if (n->type != YAML_SEQUENCE_NODE)
		return fail(m, n, "expected a list, got %s", kind_name(n));
	const ProtobufCFieldDescriptor *f = fld(msg->descriptor, "values");
	size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	ProtobufCMessage **arr = calloc(cnt ? cnt : 1, sizeof(*arr));
	*(size_t *)((char *)msg + f->quantifier_offset) = 0;
	*(ProtobufCMessage ***)field_ptr(msg, f) = arr;
	for (size_t i = 0; i < cnt; i++) {
		const yaml_node_t *it = yaml_document_get_node(m->y, n->data.sequence.items.start[i]);
		arr[i] = wf_proto_new(f->descriptor);
		*(size_t *)((char *)msg + f->quantifier_offset) = i + 1;
		size_t old = path_push(m, NULL, (long)i);
		int r = map_value(m, it, arr[i]);
		m->path[old] = 0;
		if (r < 0)
			return r;
	}
	return 0;
}

static void set_oneof_case(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
	*(uint32_t *)((char *)msg + f->quantifier_offset) = f->id;
}

/* google.protobuf.Value from any YAML node. */
static int map_value_(struct mapper *m, const yaml_node_t *n, ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	const ProtobufCFieldDescriptor *f;
	if (n->type == YAML_MAPPING_NODE) {
		f = fld(d, "struct_value");
		ProtobufCMessage *s = wf_proto_new(f->descriptor);
		*(ProtobufCMessage **)field_ptr(msg, f) = s;
		set_oneof_case(msg, f);
		return map_struct(m, n, s);
	}
	if (n->type == YAML_SEQUENCE_NODE) {
		f = fld(d, "list_value");
		ProtobufCMessage *s = wf_proto_new(f->descriptor);
		*(ProtobufCMessage **)field_ptr(msg, f) = s;
		set_oneof_case(msg, f);
		return map_list_value(m, n, s);
	}
	const char *s = scalar(n);
	int plain = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	if (plain && is_null(n)) {
		f = fld(d, "null_value");
		set_oneof_case(msg, f);
		return 0;
	}
	protobuf_c_boolean b;
	if (plain && (!strcmp(s, "true") || !strcmp(s, "false"))) {
		parse_bool(m, n, &b);
		f = fld(d, "bool_value");
		*(protobuf_c_boolean *)field_ptr(msg, f) = b;
		set_oneof_case(msg, f);
		return 0;
	}
	char *end;
	double v = plain ? strtod(s, &end) : 0;
	if (plain && *s && !*end && isfinite(v)) {
		f = fld(d, "number_value");
		*(double *)field_ptr(msg, f) = v;
		set_oneof_case(msg, f);
		return 0;
	}
	f = fld(d, "string_value");
	*(char **)field_ptr(msg, f) = strdup(s);
	set_oneof_case(msg, f);
	return 0;
}

/* ---- fields ------------------------------------------------------------------------------ */

static int map_scalar_into(struct mapper *m, const yaml_node_t *n, const ProtobufCFieldDescriptor *f,
                           void *dst)
{
	int64_t sv;
	uint64_t uv;
	int r;
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if ((r = parse_int(m, n, INT32_MIN, INT32_MAX, &sv, &uv)) < 0)
			return r;
		*(int32_t *)dst = (int32_t)sv;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if ((r = parse_int(m, n, INT64_MIN, INT64_MAX, &sv, &uv)) < 0)
			return r;
		*(int64_t *)dst = sv;
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if ((r = parse_int(m, n, 0, UINT32_MAX, &sv, &uv)) < 0)
			return r;
		*(uint32_t *)dst = (uint32_t)uv;
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if ((r = parse_int(m, n, 0, UINT64_MAX, &sv, &uv)) < 0)
			return r;
		*(uint64_t *)dst = uv;
		return 0;
	case PROTOBUF_C_TYPE_FLOAT: {
		double d;
		if ((r = parse_double(m, n, &d)) < 0)
			return r;
		*(float *)dst = (float)d;
		return 0;
	}
	case PROTOBUF_C_TYPE_DOUBLE:
		return parse_double(m, n, (double *)dst);
	case PROTOBUF_C_TYPE_BOOL:
		return parse_bool(m, n, (protobuf_c_boolean *)dst);
	case PROTOBUF_C_TYPE_ENUM:
		return parse_enum(m, n, f->descriptor, (int *)dst);
	case PROTOBUF_C_TYPE_STRING:
		if (n->type != YAML_SCALAR_NODE)
			return fail(m, n, "expected a string, got %s", kind_name(n));
		*(char **)dst = strdup(scalar(n));
		return 0;
	case PROTOBUF_C_TYPE_BYTES: {
		/* proto3 JSON: bytes are base64 (standard or URL-safe alphabet, padding optional) */
		if (n->type != YAML_SCALAR_NODE)
			return fail(m, n, "expected a base64 string, got %s", kind_name(n));
		ProtobufCBinaryData *bd = dst;
		bd->data = malloc(n->data.scalar.length / 4 * 3 + 4);
		long k = wf_base64_decode(scalar(n), n->data.scalar.length, bd->data);
		if (k < 0) {
			free(bd->data);
			bd->data = NULL;
			return fail(m, n, "'%s' is not valid base64 (bytes fields are base64, as in Envoy's JSON/YAML)",
			            scalar(n));
		}
		bd->len = (size_t)k;
		return 0;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		ProtobufCMessage *sub = wf_proto_new(f->descriptor);
		if (!sub)
			return fail(m, n, "out of memory");
		*(ProtobufCMessage **)dst = sub;
		return map_message(m, n, sub);
	}
	}
	return fail(m, n, "unsupported field type");
}

static int is_map_entry(const ProtobufCFieldDescriptor *f)
{
	if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label != PROTOBUF_C_LABEL_REPEATED)
		return 0;
	const ProtobufCMessageDescriptor *d = f->descriptor;
	size_t l = strlen(d->short_name);
	return d->n_fields == 2 && l > 5 && !strcmp(d->short_name + l - 5, "Entry") &&
	       d->fields[0].id == 1 && d->fields[1].id == 2 && !strcmp(d->fields[0].name, "key");
}

static size_t field_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
	default: return 4;
	}
}

static int map_field(struct mapper *m, const yaml_node_t *kn, const yaml_node_t *vn,
                     ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
	const char *spelt = scalar(kn); /* errors name the field as the user wrote it */
	wf_cfgdoc_mark(m->doc, msg, f->id, (uint32_t)kn->start_mark.line + 1,
	               (uint32_t)kn->start_mark.column + 1, strcmp(spelt, f->name) ? spelt : NULL);
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		size_t *cnt = (size_t *)((char *)msg + f->quantifier_offset);
		void **arr = field_ptr(msg, f);
		size_t esz = field_size(f);
		if (is_map_entry(f)) {
			if (vn->type != YAML_MAPPING_NODE)
				return fail(m, vn, "expected a map, got %s", kind_name(vn));
			size_t k = (size_t)(vn->data.mapping.pairs.top - vn->data.mapping.pairs.start);
			*arr = calloc(k ? k : 1, esz);
			for (size_t i = 0; i < k; i++) {
				yaml_node_pair_t *p = &vn->data.mapping.pairs.start[i];
				const yaml_node_t *ek = yaml_document_get_node(m->y, p->key);
				const yaml_node_t *ev = yaml_document_get_node(m->y, p->value);
				if (ek->type != YAML_SCALAR_NODE)
					return fail(m, ek, "map keys must be strings");
				for (size_t j = 0; j < i; j++) {
					const yaml_node_t *pk = yaml_document_get_node(m->y, vn->data.mapping.pairs.start[j].key);
					if (pk->type == YAML_SCALAR_NODE && !strcmp(scalar(pk), scalar(ek)))
						return fail(m, ek, "key '%s' appears twice", scalar(ek));
				}
				ProtobufCMessage *e = wf_proto_new(f->descriptor);
				((ProtobufCMessage **)*arr)[i] = e;
				*cnt = i + 1;
				const ProtobufCMessageDescriptor *ed = f->descriptor;
				size_t old = path_push(m, scalar(ek), 0);
				/* the entry itself, so that a later check can point at one key */
				wf_cfgdoc_mark(m->doc, e, 0, (uint32_t)ek->start_mark.line + 1,
				               (uint32_t)ek->start_mark.column + 1, m->path);
				int r = map_scalar_into(m, ek, &ed->fields[0], field_ptr(e, &ed->fields[0]));
				if (r == 0)
					r = map_scalar_into(m, ev, &ed->fields[1], field_ptr(e, &ed->fields[1]));
				m->path[old] = 0;
				if (r < 0)
					return r;
			}
			return 0;
		}
		if (vn->type != YAML_SEQUENCE_NODE)
			return fail(m, vn, "expected a list, got %s", kind_name(vn));
		size_t k = (size_t)(vn->data.sequence.items.top - vn->data.sequence.items.start);
		*arr = calloc(k ? k : 1, esz);
		for (size_t i = 0; i < k; i++) {
			const yaml_node_t *it = yaml_document_get_node(m->y, vn->data.sequence.items.start[i]);
			size_t old = path_push(m, NULL, (long)i);
			/* a scalar element is marked by its slot, so that a later check can point at it */
			if (f->type != PROTOBUF_C_TYPE_MESSAGE)
				wf_cfgdoc_mark(m->doc, (char *)*arr + i * esz, 0, (uint32_t)it->start_mark.line + 1,
				               (uint32_t)it->start_mark.column + 1, NULL);
			int r = map_scalar_into(m, it, f, (char *)*arr + i * esz);
			if (f->type != PROTOBUF_C_TYPE_MESSAGE || ((void **)*arr)[i])
				*cnt = i + 1;
			m->path[old] = 0;
			if (r < 0)
				return r;
		}
		return 0;
	}
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		uint32_t *c = (uint32_t *)((char *)msg + f->quantifier_offset);
		if (*c && *c != f->id) {
			const ProtobufCFieldDescriptor *other =
			    protobuf_c_message_descriptor_get_field(msg->descriptor, (unsigned)*c);
			return fail(m, kn, "'%s' and '%s' are alternatives: set only one",
			            other ? other->name : "?", f->name);
		}
		*c = f->id;
	} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset) {
		*(protobuf_c_boolean *)((char *)msg + f->quantifier_offset) = 1;
	}
	return map_scalar_into(m, vn, f, field_ptr(msg, f));
}

/* snake_case from lowerCamelCase ("statPrefix" -> "stat_prefix"). */
static void to_snake(const char *in, char *out, size_t n)
{
	size_t k = 0;
	for (; *in && k + 2 < n; in++) {
		if (*in >= 'A' && *in <= 'Z') {
			out[k++] = '_';
			out[k++] = (char)(*in + 32);
		} else {
			out[k++] = *in;
		}
	}
	out[k] = 0;
}

/* Is `name` the lowerCamelCase (JSON) name of proto field `proto`? protoc's rule: drop each
 * '_' and upper-case the letter after it ("consecutive_5xx_errors" -> "consecutive5xxErrors"),
 * which to_snake cannot invert when a digit follows the '_'. */
static int is_json_name(const char *proto, const char *name)
{
	int up = 0;
	for (; *proto; proto++) {
		if (*proto == '_') {
			up = 1;
			continue;
		}
		char c = up && *proto >= 'a' && *proto <= 'z' ? (char)(*proto - 32) : *proto;
		up = 0;
		if (c != *name++)
			return 0;
	}
	return !*name;
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d, const char *name)
{
	const ProtobufCFieldDescriptor *f = fld(d, name);
	if (!f) {
		char snake[256];
		to_snake(name, snake, sizeof(snake));
		f = fld(d, snake);
	}
	for (unsigned i = 0; !f && i < d->n_fields; i++)
		if (is_json_name(d->fields[i].name, name))
			f = &d->fields[i];
	return f;
}

static int unknown_field(struct mapper *m, const yaml_node_t *kn, const ProtobufCMessageDescriptor *d,
                         const char *name)
{
	const char *best = NULL;
	unsigned bestd = 4;
	unsigned cap = (unsigned)strlen(name) / 3 + 1;
	if (cap > 3)
		cap = 3;
	for (unsigned i = 0; i < d->n_fields; i++) {
		unsigned dist = wf_edit_distance(name, d->fields[i].name, bestd);
		if (dist < bestd && dist <= cap) {
			bestd = dist;
			best = d->fields[i].name;
		}
	}
	if (best)
		return fail(m, kn, "unknown field '%s' in %s (did you mean '%s'?)", name, d->name, best);
	return fail(m, kn, "unknown or unsupported field '%s' in %s", name, d->name);
}

static int map_duration(struct mapper *m, const yaml_node_t *n, ProtobufCMessage *msg)
{
	int64_t sec;
	int32_t nanos;
	if (n->type == YAML_SCALAR_NODE) {
		if (parse_duration_text(scalar(n), &sec, &nanos) < 0)
			return fail(m, n, "'%s' is not a duration (write seconds with an 's' suffix, e.g. \"5s\" or \"0.25s\")",
			            scalar(n));
		if (sec > 315576000000LL || sec < -315576000000LL)
			return fail(m, n, "'%s' is out of range (at most 315576000000s)", scalar(n));
		*(int64_t *)field_ptr(msg, fld(msg->descriptor, "seconds")) = sec;
		*(int32_t *)field_ptr(msg, fld(msg->descriptor, "nanos")) = nanos;
		return 0;
	}
	return -ENOENT; /* a map: the generic path handles {seconds, nanos} */
}

/* RFC 3339, as proto3's JSON mapping writes a Timestamp: "2026-11-26T22:10:35Z", with an
 * optional fraction of up to 9 digits and a Z or +HH:MM offset. */
static int parse_timestamp(const char *s, int64_t *sec, int32_t *nanos)
{
	struct tm tm = {0};
	int used = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
	           &tm.tm_sec, &used) != 6 || used != 19 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	s += used;
	int32_t ns = 0;
	if (*s == '.') {
		int digits = 0;
		for (s++; *s >= '0' && *s <= '9'; s++, digits++)
			if (digits < 9)
				ns = ns * 10 + (*s - '0');
		if (!digits || digits > 9)
			return -1;
		for (; digits < 9; digits++)
			ns *= 10;
	}
	int64_t offset = 0;
	if ((*s == '+' || *s == '-') && strlen(s) == 6 && s[3] == ':') {
		int hh, mm;
		if (sscanf(s + 1, "%2d:%2d", &hh, &mm) != 2 || hh > 23 || mm > 59)
			return -1;
		offset = (s[0] == '+' ? 1 : -1) * (int64_t)(hh * 3600 + mm * 60);
	} else if (strcmp(s, "Z") != 0) {
		return -1;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*sec = (int64_t)timegm(&tm) - offset;
	*nanos = ns;
	return 0;
}

static int map_timestamp(struct mapper *m, const yaml_node_t *n, ProtobufCMessage *msg)
{
	int64_t sec;
	int32_t nanos;
	if (n->type != YAML_SCALAR_NODE || parse_timestamp(scalar(n), &sec, &nanos) < 0)
		return fail(m, n, "'%s' is not a timestamp (RFC 3339, e.g. \"2026-11-26T22:10:35Z\")",
		            n->type == YAML_SCALAR_NODE ? scalar(n) : kind_name(n));
	*(int64_t *)field_ptr(msg, fld(msg->descriptor, "seconds")) = sec;
	*(int32_t *)field_ptr(msg, fld(msg->descriptor, "nanos")) = nanos;
	return 0;
}

static int map_struct(struct mapper *m, const yaml_node_t *n, ProtobufCMessage *msg)
{
	if (n->type != YAML_MAPPING_NODE)
		return fail(m, n, "expected a map, got %s", kind_name(n));
	const ProtobufCFieldDescriptor *f = fld(msg->descriptor, "fields");
	return map_field(m, n, n, msg, f);
}

static int map_any(struct mapper *m, const yaml_node_t *n, ProtobufCMessage *msg)
{
	if (n->type != YAML_MAPPING_NODE)
		return fail(m, n, "expected a map with \"@type\", got %s", kind_name(n));
	const yaml_node_t *type = NULL;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = yaml_document_get_node(m->y, p->key);
		if (k->type == YAML_SCALAR_NODE && !strcmp(scalar(k), "@type"))
			type = yaml_document_get_node(m->y, p->value);
	}
	if (!type || type->type != YAML_SCALAR_NODE)
		return fail(m, n, "missing \"@type\" (e.g. \"@type\": type.googleapis.com/envoy...)");
	const char *url = scalar(type);
	if (strncmp(url, WF_TYPE_URL_PREFIX, strlen(WF_TYPE_URL_PREFIX)) != 0)
		return fail(m, type, "\"@type\" must start with %s", WF_TYPE_URL_PREFIX);
	const ProtobufCMessageDescriptor *d = wf_proto_find(url);
	if (!d)
		return fail(m, type, "unknown or unsupported type '%s'", url);
	if (!strncmp(d->name, "google.protobuf.", 16))
		return fail(m, type, "an Any holding %s is not supported (configs never need one)", d->name);
	ProtobufCMessage *inner = wf_proto_new(d);
	wf_cfgdoc_set_any(m->doc, msg, inner);
	m->any_payload = 1;
	int r = map_message(m, n, inner);
	if (r < 0)
		return r;
	*(char **)field_ptr(msg, fld(msg->descriptor, "type_url")) = strdup(url);
	ProtobufCBinaryData *val = field_ptr(msg, fld(msg->descriptor, "value"));
	val->len = protobuf_c_message_get_packed_size(inner);
	val->data = malloc(val->len ? val->len : 1);
	protobuf_c_message_pack(inner, val->data);
	return 0;
}

static int map_message_(struct mapper *m, const yaml_node_t *n, ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	wf_cfgdoc_mark(m->doc, msg, 0, (uint32_t)n->start_mark.line + 1,
	               (uint32_t)n->start_mark.column + 1, m->path);
	int any_payload = m->any_payload;
	m->any_payload = 0;
	if (is_wkt(d, "google.protobuf.Any"))
		return map_any(m, n, msg);
	if (is_wkt(d, "google.protobuf.Struct"))
		return map_struct(m, n, msg);
	if (is_wkt(d, "google.protobuf.Value"))
		return map_value(m, n, msg);
	if (is_wkt(d, "google.protobuf.ListValue"))
		return map_list_value(m, n, msg);
	if (is_wkt(d, "google.protobuf.Timestamp"))
		return map_timestamp(m, n, msg);
	if (is_wkt(d, "google.protobuf.Duration")) {
		int r = map_duration(m, n, msg);
		if (r != -ENOENT)
			return r;
		r = map_fields(m, n, msg, any_payload);
		if (r < 0)
			return r;
		int64_t sec = *(int64_t *)field_ptr(msg, fld(d, "seconds"));
		int32_t ns = *(int32_t *)field_ptr(msg, fld(d, "nanos"));
		if (sec > 315576000000LL || sec < -315576000000LL || ns <= -1000000000 || ns >= 1000000000 ||
		    (sec > 0 && ns < 0) || (sec < 0 && ns > 0))
			return fail(m, n, "not a valid duration (seconds within +-315576000000, nanos within +-999999999 "
			                  "and of the same sign)");
		return 0;
	}
	/* Wrappers (BoolValue, UInt32Value, ...): the bare value stands for {value: ...}. */
	if (!strncmp(d->name, "google.protobuf.", 16) && d->n_fields == 1 &&
	    !strcmp(d->fields[0].name, "value") && n->type == YAML_SCALAR_NODE)
		return map_scalar_into(m, n, &d->fields[0], field_ptr(msg, &d->fields[0]));
	return map_fields(m, n, msg, any_payload);
}

/* The fields of a message from a YAML map. */
static int map_fields(struct mapper *m, const yaml_node_t *n, ProtobufCMessage *msg, int any_payload)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	if (n->type != YAML_MAPPING_NODE)
		return fail(m, n, "expected a map (%s), got %s", d->name, kind_name(n));
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		const yaml_node_t *kn = yaml_document_get_node(m->y, p->key);
		const yaml_node_t *vn = yaml_document_get_node(m->y, p->value);
		if (kn->type != YAML_SCALAR_NODE)
			return fail(m, kn, "field names must be strings");
		const char *name = scalar(kn);
		if (any_payload && !strcmp(name, "@type"))
			continue; /* read by map_any */
		const ProtobufCFieldDescriptor *f = find_field(d, name);
		/* the same field twice, whatever the spelling (snake_case or lowerCamelCase) */
		for (yaml_node_pair_t *q = n->data.mapping.pairs.start; f && q < p; q++) {
			const yaml_node_t *qk = yaml_document_get_node(m->y, q->key);
			if (qk->type == YAML_SCALAR_NODE && find_field(d, scalar(qk)) == f)
				return fail(m, kn, "field '%s' is set twice", f->name);
		}
		if (!f)
			return unknown_field(m, kn, d, name);
		if (is_null(vn))
			continue;
		size_t old = path_push(m, name, 0) /* as the user spelt it */;
		int r = map_field(m, kn, vn, msg, f);
		m->path[old] = 0;
		if (r < 0)
			return r;
	}
	return 0;
}

static int load(struct wf_cfgdoc *doc, const ProtobufCMessageDescriptor *d, yaml_parser_t *parser,
                char *err, size_t errlen)
{
	yaml_document_t y;
	if (!yaml_parser_load(parser, &y)) {
		snprintf(err, errlen, "%s:%zu:%zu: YAML syntax error: %s%s%s", wf_cfgdoc_source(doc),
		         parser->problem_mark.line + 1, parser->problem_mark.column + 1,
		         parser->problem ? parser->problem : "unreadable",
		         parser->context ? " " : "", parser->context ? parser->context : "");
		return -EINVAL;
	}
	struct mapper m = {.doc = doc, .y = &y, .err = err, .errlen = errlen};
	yaml_node_t *root = yaml_document_get_root_node(&y);
	ProtobufCMessage *msg = wf_proto_new(d);
	int r;
	if (!root) {
		snprintf(err, errlen, "%s: the file is empty", wf_cfgdoc_source(doc));
		r = -EINVAL;
	} else {
		r = map_message(&m, root, msg);
	}
	yaml_document_delete(&y);
	if (r == 0) {
		/* one document per file: a second one (after ---) would be silently ignored */
		yaml_document_t y2;
		if (!yaml_parser_load(parser, &y2)) {
			snprintf(err, errlen, "%s:%zu:%zu: YAML syntax error: %s", wf_cfgdoc_source(doc),
			         parser->problem_mark.line + 1, parser->problem_mark.column + 1,
			         parser->problem ? parser->problem : "unreadable");
			r = -EINVAL;
		} else {
			yaml_node_t *more = yaml_document_get_root_node(&y2);
			if (more) {
				snprintf(err, errlen, "%s:%zu:%zu: a second YAML document: a config file holds one",
				         wf_cfgdoc_source(doc), more->start_mark.line + 1, more->start_mark.column + 1);
				r = -EINVAL;
			}
			yaml_document_delete(&y2);
		}
	}
	if (r < 0) {
		wf_proto_free(msg);
		return r;
	}
	wf_cfgdoc_set_root(doc, msg);
	return 0;
}

int wf_yaml_load_string(struct wf_cfgdoc *doc, const ProtobufCMessageDescriptor *d, const char *text,
                        size_t len, char *err, size_t errlen)
{
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	int r = load(doc, d, &parser, err, errlen);
	yaml_parser_delete(&parser);
	return r;
}

int wf_yaml_load_file(struct wf_cfgdoc *doc, const ProtobufCMessageDescriptor *d, char *err,
                      size_t errlen)
{
	FILE *f = fopen(wf_cfgdoc_source(doc), "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", wf_cfgdoc_source(doc), strerror(errno));
		return -errno;
	}
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	int r = load(doc, d, &parser, err, errlen);
	yaml_parser_delete(&parser);
	fclose(f);
	return r;
}

int wf_yaml_load_node(struct wf_cfgdoc *doc, const ProtobufCMessageDescriptor *d,
                      struct yaml_document_s *y, struct yaml_node_s *node, const char *path,
                      char *err, size_t errlen)
{
	struct mapper m = {.doc = doc, .y = y, .err = err, .errlen = errlen};
	snprintf(m.path, sizeof(m.path), "%s", path ? path : "");
	ProtobufCMessage *msg = wf_proto_new(d);
	int r = map_message(&m, node, msg);
	if (r < 0) {
		wf_proto_free(msg);
		return r;
	}
	wf_cfgdoc_set_root(doc, msg);
	return 0;
}
