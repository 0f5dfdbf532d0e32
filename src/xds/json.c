/* Protobuf message -> JSON (proto3 JSON mapping, as Envoy's /config_dump prints it), walking
 * protobuf-c descriptors so that one printer serves every generated message.
 *
 * How protobuf-c lays a message out, which is all this file relies on:
 *   - a singular field lives at fields[i].offset; proto3 fields (label NONE) have no presence
 *     and count as set when not zero/empty; proto2-style optional scalars and bytes have a
 *     protobuf_c_boolean has_ flag at quantifier_offset; strings and messages are pointers;
 *   - a oneof member (flag ONEOF) is set when the uint32 case at quantifier_offset is its id;
 *   - a repeated field keeps its count (size_t) at quantifier_offset and a pointer to a plain
 *     C array at offset;
 *   - map<K, V> is a repeated message field whose nested type "<FieldName>Entry" has key = 1
 *     and value = 2.
 * The well-known types are recognised by full name and read through their field names, so this
 * file needs none of their generated headers. */
#include "xds/json.h"
#include "xds/registry.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TRY(expr)                                                                  \
	do {                                                                           \
		int rc_ = (expr);                                                          \
		if (rc_ < 0)                                                               \
			return rc_;                                                            \
	} while (0)

/* ---- the output buffer ---- */

/* Room for `more` bytes after len plus the terminating NUL. */
static int jbuf_reserve(struct wf_jbuf *b, size_t more)
{
	if (b->cap > b->len && more < b->cap - b->len)
		return 0;
	if (more >= SIZE_MAX / 4 - b->len)
		return -ENOMEM;
	size_t need = b->len + more + 1, cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int jbuf_put(struct wf_jbuf *b, const char *s, size_t n)
{
	TRY(jbuf_reserve(b, n));
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int wf_jbuf_puts(struct wf_jbuf *b, const char *s)
{
	return jbuf_put(b, s, strlen(s));
}

int wf_jbuf_printf(struct wf_jbuf *b, const char *fmt, ...)
{
	va_list ap, again;
	va_start(ap, fmt);
	va_copy(again, ap);
	size_t room = b->cap - b->len; /* 0 only for a still-empty buffer */
	int n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);
	va_end(ap);
	int rc = n < 0 ? -EINVAL : 0;
	if (rc == 0 && (size_t)n >= room) {
		rc = jbuf_reserve(b, (size_t)n);
		if (rc == 0)
			vsnprintf(b->p + b->len, b->cap - b->len, fmt, again);
	}
	va_end(again);
	if (rc < 0) {
		if (b->p) /* a truncated first attempt may have written past len */
			b->p[b->len] = '\0';
		return rc;
	}
	b->len += (size_t)n;
	return 0;
}

int wf_jbuf_put_jstr(struct wf_jbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t from = 0; /* start of the run of bytes that need no escaping */

	TRY(jbuf_put(b, "\"", 1));
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
		const char *esc;
		size_t elen = 2;
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		default:
			if (c >= 0x20)
				continue;
			esc = u;
			elen = sizeof u;
		}
		TRY(jbuf_put(b, s + from, i - from));
		TRY(jbuf_put(b, esc, elen));
		from = i + 1;
	}
	TRY(jbuf_put(b, s + from, n - from));
	return jbuf_put(b, "\"", 1);
}

/* bytes as a quoted standard base64 string with padding, as proto3 JSON wants. */
static int put_base64(struct wf_jbuf *b, const uint8_t *d, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	if (n > SIZE_MAX / 2)
		return -ENOMEM;
	TRY(jbuf_reserve(b, (n + 2) / 3 * 4 + 2));
	char *o = b->p + b->len;
	size_t i = 0;
	*o++ = '"';
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
		*o++ = tab[v >> 18];
		*o++ = tab[v >> 12 & 63];
		*o++ = tab[v >> 6 & 63];
		*o++ = tab[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
		*o++ = tab[v >> 18];
		*o++ = tab[v >> 12 & 63];
		*o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
		*o++ = '=';
	}
	*o++ = '"';
	b->len = (size_t)(o - b->p);
	b->p[b->len] = '\0';
	return 0;
}

/* A finite double as the shortest %g that reads back as the same value (0.1 -> "0.1", not
 * "0.10000000000000001"), like protobuf's own printer; NaN and infinities as the strings the
 * proto3 mapping prescribes. A float is judged at float precision, so 0.1f is "0.1" too. */
static int put_double(struct wf_jbuf *b, double v, int is_float)
{
	char tmp[40];

	if (isnan(v))
		return wf_jbuf_puts(b, "\"NaN\"");
	if (isinf(v))
		return wf_jbuf_puts(b, v < 0 ? "\"-Infinity\"" : "\"Infinity\"");
	for (int prec = is_float ? FLT_DIG : DBL_DIG;; prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, v);
		if (prec >= (is_float ? 9 : 17))
			break;
		if (is_float ? strtof(tmp, NULL) == (float)v : strtod(tmp, NULL) == v)
			break;
	}
	return wf_jbuf_puts(b, tmp);
}

/* ---- the writer ---- */

struct jw {
	struct wf_jbuf *b;
	int indent; /* spaces per level; -1 = compact */
	int depth;  /* messages open right now, bounded by WF_JSON_MAX_DEPTH */
};

/* A line break and the indentation of `level`; nothing when compact. */
static int jw_newline(struct jw *w, int level)
{
	if (w->indent < 0)
		return 0;
	size_t n = (size_t)w->indent * (size_t)level + 1;
	TRY(jbuf_reserve(w->b, n));
	w->b->p[w->b->len] = '\n';
	memset(w->b->p + w->b->len + 1, ' ', n - 1);
	w->b->len += n;
	w->b->p[w->b->len] = '\0';
	return 0;
}

/* Start the next member of an array or object whose members sit at `level`; *count is the
 * number of members written so far. */
static int jw_item(struct jw *w, int level, size_t *count)
{
	if ((*count)++ > 0)
		TRY(jbuf_put(w->b, ",", 1));
	return jw_newline(w, level);
}

static int jw_key(struct jw *w, int level, size_t *count, const char *k, size_t n)
{
	TRY(jw_item(w, level, count));
	TRY(wf_jbuf_put_jstr(w->b, k, n));
	return w->indent < 0 ? jbuf_put(w->b, ":", 1) : jbuf_put(w->b, ": ", 2);
}

/* Close a container that was opened at `level`; an empty one stays on one line ("{}"). */
static int jw_close(struct jw *w, int level, size_t count, char c)
{
	if (count > 0)
		TRY(jw_newline(w, level));
	return jbuf_put(w->b, &c, 1);
}

/* ---- messages ---- */

enum wkt {
	WKT_NONE,
	WKT_OTHER, /* other google.protobuf.* (Empty): a plain message, but "value" in an Any */
	WKT_ANY,
	WKT_DURATION,
	WKT_TIMESTAMP,
	WKT_WRAPPER,
	WKT_STRUCT,
	WKT_VALUE,
	WKT_LIST,
};

static enum wkt wkt_of(const ProtobufCMessageDescriptor *d)
{
	static const char pkg[] = "google.protobuf.";
	static const struct {
		const char *name;
		enum wkt kind;
	} known[] = {
		{"Any", WKT_ANY},
		{"Duration", WKT_DURATION},
		{"Timestamp", WKT_TIMESTAMP},
		{"Struct", WKT_STRUCT},
		{"Value", WKT_VALUE},
		{"ListValue", WKT_LIST},
		{"BoolValue", WKT_WRAPPER},
		{"Int32Value", WKT_WRAPPER},
		{"UInt32Value", WKT_WRAPPER},
		{"Int64Value", WKT_WRAPPER},
		{"UInt64Value", WKT_WRAPPER},
		{"FloatValue", WKT_WRAPPER},
		{"DoubleValue", WKT_WRAPPER},
		{"StringValue", WKT_WRAPPER},
		{"BytesValue", WKT_WRAPPER},
	};

	if (strncmp(d->name, pkg, sizeof pkg - 1) != 0)
		return WKT_NONE;
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strcmp(d->name + sizeof pkg - 1, known[i].name) == 0)
			return known[i].kind;
	return WKT_OTHER;
}

static const void *at(const ProtobufCMessage *m, unsigned off)
{
	return (const char *)m + off;
}

/* The singular field of m called `name`, if it has type t; NULL otherwise. Lets the
 * well-known types be read without their generated structs, and a look-alike message that
 * does not match falls back to the plain printer instead of being misread. */
static const ProtobufCFieldDescriptor *field_of(const ProtobufCMessage *m, const char *name,
                                                ProtobufCType t)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
	return f && f->type == t && f->label != PROTOBUF_C_LABEL_REPEATED ? f : NULL;
}

/* Whether a map<K, V> field: protoc names the entry type after the field ("foo_bar" ->
 * "FooBarEntry") and gives it exactly key = 1 and value = 2. Checking the name keeps a
 * user-declared message that merely ends in "Entry" an array. */
static int is_map(const ProtobufCFieldDescriptor *f)
{
	if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label != PROTOBUF_C_LABEL_REPEATED)
		return 0;
	const ProtobufCMessageDescriptor *d = f->descriptor;
	if (d->n_fields != 2 || d->fields[0].id != 1 || d->fields[1].id != 2 ||
	    strcmp(d->fields[0].name, "key") != 0 || strcmp(d->fields[1].name, "value") != 0)
		return 0;
	const char *want = d->short_name;
	int cap_next = 1;
	for (const char *c = f->name; *c; c++) {
		if (*c == '_') {
			cap_next = 1;
			continue;
		}
		char e = cap_next && *c >= 'a' && *c <= 'z' ? (char)(*c - 'a' + 'A') : *c;
		cap_next = 0;
		if (*want++ != e)
			return 0;
	}
	return strcmp(want, "Entry") == 0;
}

static int is_zero(ProtobufCType t, const void *p)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return *(const uint32_t *)p == 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return *(const uint64_t *)p == 0;
	case PROTOBUF_C_TYPE_FLOAT:
		return *(const float *)p == 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *)p == 0;
	case PROTOBUF_C_TYPE_BOOL:
		return !*(const protobuf_c_boolean *)p;
	case PROTOBUF_C_TYPE_ENUM:
		return *(const int *)p == 0;
	case PROTOBUF_C_TYPE_STRING:
		return !*(const char *const *)p || !**(const char *const *)p;
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)p)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return !*(const void *const *)p;
	}
	return 1;
}

/* Whether a singular field gets printed: set, for fields that track presence; not at its
 * default, for proto3 fields that do not. */
static int is_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	const void *p = at(m, f->offset);

	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)at(m, f->quantifier_offset) == f->id;
	if (f->type == PROTOBUF_C_TYPE_MESSAGE)
		return *(const void *const *)p != NULL;
	switch (f->label) {
	case PROTOBUF_C_LABEL_REQUIRED:
		return f->type != PROTOBUF_C_TYPE_STRING || *(const char *const *)p;
	case PROTOBUF_C_LABEL_OPTIONAL:
		/* proto2 strings have no has_: unset is NULL or the default's own storage */
		if (f->type == PROTOBUF_C_TYPE_STRING) {
			const char *s = *(const char *const *)p;
			return s && (const void *)s != f->default_value;
		}
		return f->quantifier_offset &&
		       *(const protobuf_c_boolean *)at(m, f->quantifier_offset);
	default:
		return !is_zero(f->type, p);
	}
}

static size_t elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return sizeof(uint64_t);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default: /* the 32-bit integers and float */
		return sizeof(uint32_t);
	}
}

static int put_msg(struct jw *w, const ProtobufCMessageDescriptor *d, const ProtobufCMessage *m,
                   int level);
static int put_fields(struct jw *w, const ProtobufCMessage *m, int level, size_t *count);

static int put_enum(struct wf_jbuf *b, const ProtobufCEnumDescriptor *ed, int v)
{
	if (strcmp(ed->name, "google.protobuf.NullValue") == 0)
		return wf_jbuf_puts(b, "null");
	const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, v);
	if (!ev) /* a number this build does not know: keep it rather than lose it */
		return wf_jbuf_printf(b, "%d", v);
	return wf_jbuf_put_jstr(b, ev->name, strlen(ev->name));
}

/* One value of field f stored at p (the field itself or an element of its array), whatever
 * its presence. */
static int put_value(struct jw *w, const ProtobufCFieldDescriptor *f, const void *p, int level)
{
	struct wf_jbuf *b = w->b;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return wf_jbuf_printf(b, "%" PRId32, *(const int32_t *)p);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return wf_jbuf_printf(b, "%" PRIu32, *(const uint32_t *)p);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		/* strings, because JSON readers commonly hold numbers in doubles */
		return wf_jbuf_printf(b, "\"%" PRId64 "\"", *(const int64_t *)p);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return wf_jbuf_printf(b, "\"%" PRIu64 "\"", *(const uint64_t *)p);
	case PROTOBUF_C_TYPE_FLOAT:
		return put_double(b, *(const float *)p, 1);
	case PROTOBUF_C_TYPE_DOUBLE:
		return put_double(b, *(const double *)p, 0);
	case PROTOBUF_C_TYPE_BOOL:
		return wf_jbuf_puts(b, *(const protobuf_c_boolean *)p ? "true" : "false");
	case PROTOBUF_C_TYPE_ENUM:
		return put_enum(b, f->descriptor, *(const int *)p);
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(const char *const *)p;
		return s ? wf_jbuf_put_jstr(b, s, strlen(s)) : wf_jbuf_puts(b, "\"\"");
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *bd = p;
		return put_base64(b, bd->data, bd->len);
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		return put_msg(w, f->descriptor, *(const ProtobufCMessage *const *)p, level);
	}
	return -EINVAL;
}

static int put_array(struct jw *w, const ProtobufCFieldDescriptor *f, const void *arr, size_t n,
                     int level)
{
	size_t sz = elem_size(f->type), count = 0;

	TRY(jbuf_put(w->b, "[", 1));
	for (size_t i = 0; i < n; i++) {
		TRY(jw_item(w, level + 1, &count));
		TRY(put_value(w, f, (const char *)arr + i * sz, level + 1));
	}
	return jw_close(w, level, count, ']');
}

/* A map field as an object; keys that are not strings become their decimal or true/false
 * text, as JSON object keys must be strings. */
static int put_map(struct jw *w, const ProtobufCFieldDescriptor *f,
                   const ProtobufCMessage *const *ents, size_t n, int level)
{
	const ProtobufCMessageDescriptor *ed = f->descriptor;
	const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
	size_t count = 0;

	TRY(jbuf_put(w->b, "{", 1));
	for (size_t i = 0; i < n; i++) {
		const ProtobufCMessage *e = ents[i];
		char tmp[32];
		const char *k = tmp;
		if (!e)
			continue;
		const void *kp = at(e, kf->offset);
		switch (kf->type) {
		case PROTOBUF_C_TYPE_STRING:
			k = *(const char *const *)kp ? *(const char *const *)kp : "";
			break;
		case PROTOBUF_C_TYPE_BOOL:
			k = *(const protobuf_c_boolean *)kp ? "true" : "false";
			break;
		case PROTOBUF_C_TYPE_INT64:
		case PROTOBUF_C_TYPE_SINT64:
		case PROTOBUF_C_TYPE_SFIXED64:
			snprintf(tmp, sizeof tmp, "%" PRId64, *(const int64_t *)kp);
			break;
		case PROTOBUF_C_TYPE_UINT64:
		case PROTOBUF_C_TYPE_FIXED64:
			snprintf(tmp, sizeof tmp, "%" PRIu64, *(const uint64_t *)kp);
			break;
		case PROTOBUF_C_TYPE_UINT32:
		case PROTOBUF_C_TYPE_FIXED32:
			snprintf(tmp, sizeof tmp, "%" PRIu32, *(const uint32_t *)kp);
			break;
		default: /* int32, sint32, sfixed32: the only other key types proto allows */
			snprintf(tmp, sizeof tmp, "%" PRId32, *(const int32_t *)kp);
		}
		TRY(jw_key(w, level + 1, &count, k, strlen(k)));
		TRY(put_value(w, vf, at(e, vf->offset), level + 1));
	}
	return jw_close(w, level, count, '}');
}

/* The members of m that are set, appended to an object already open at `level`. */
static int put_object(struct jw *w, const ProtobufCMessage *m, int level);

/* Secrets (Envoy's `sensitive` fields: private keys, key passwords, session ticket keys) are
 * never printed when inline; a file name or an environment variable's name is. */
static int sensitive(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
	static const char *const tls = "envoy.extensions.transport_sockets.tls.v3.";
	size_t n = strlen(tls);
	if (strncmp(d->name, tls, n))
		return 0;
	return (!strcmp(d->name + n, "TlsCertificate") && (!strcmp(f->name, "private_key") || !strcmp(f->name, "password"))) ||
	       (!strcmp(d->name + n, "TlsSessionTicketKeys") && !strcmp(f->name, "keys"));
}

/* A DataSource in a sensitive field: as is when it names a file or variable, else redacted. */
static int put_secret(struct jw *w, const ProtobufCMessage *ds, int level)
{
	static const char redacted[] = "{\"inline_string\":\"[redacted]\"}";
	const ProtobufCFieldDescriptor *fn = field_of(ds, "filename", PROTOBUF_C_TYPE_STRING);
	const ProtobufCFieldDescriptor *env = field_of(ds, "environment_variable", PROTOBUF_C_TYPE_STRING);
	if ((fn && is_present(ds, fn)) || (env && is_present(ds, env)))
		return put_object(w, ds, level);
	return jbuf_put(w->b, redacted, sizeof(redacted) - 1);
}

static int put_fields(struct jw *w, const ProtobufCMessage *m, int level, size_t *count)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const void *p = at(m, f->offset);
		if (f->type == PROTOBUF_C_TYPE_MESSAGE && sensitive(d, f)) {
			size_t n = f->label == PROTOBUF_C_LABEL_REPEATED ? *(const size_t *)at(m, f->quantifier_offset) : 1;
			const ProtobufCMessage *const *arr = f->label == PROTOBUF_C_LABEL_REPEATED
			                                         ? *(const ProtobufCMessage *const *const *)p
			                                         : (const ProtobufCMessage *const *)p;
			if (!n || !arr || !arr[0])
				continue;
			TRY(jw_key(w, level + 1, count, f->name, strlen(f->name)));
			if (f->label == PROTOBUF_C_LABEL_REPEATED)
				TRY(jbuf_put(w->b, "[", 1));
			for (size_t k = 0; k < n; k++) {
				if (k)
					TRY(jbuf_put(w->b, ",", 1));
				TRY(put_secret(w, arr[k], level + 1));
			}
			if (f->label == PROTOBUF_C_LABEL_REPEATED)
				TRY(jbuf_put(w->b, "]", 1));
			continue;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)at(m, f->quantifier_offset);
			const void *arr = *(const void *const *)p;
			if (!n || !arr)
				continue;
			TRY(jw_key(w, level + 1, count, f->name, strlen(f->name)));
			TRY(is_map(f) ? put_map(w, f, arr, n, level + 1)
			              : put_array(w, f, arr, n, level + 1));
			continue;
		}
		if (!is_present(m, f))
			continue;
		TRY(jw_key(w, level + 1, count, f->name, strlen(f->name)));
		TRY(put_value(w, f, p, level + 1));
	}
	return 0;
}

static int put_object(struct jw *w, const ProtobufCMessage *m, int level)
{
	size_t count = 0;

	TRY(jbuf_put(w->b, "{", 1));
	TRY(put_fields(w, m, level, &count));
	return jw_close(w, level, count, '}');
}

/* "5s", "0.250s", "-1.000001s": whole seconds, then 3, 6 or 9 fractional digits, the fewest
 * that show the nanos exactly, as Envoy prints it. An out-of-range Duration (nanos beyond a
 * second, or signed unlike seconds) is normalised first rather than printed malformed. */
static int put_duration(struct jw *w, const ProtobufCMessage *m, int level)
{
	const ProtobufCFieldDescriptor *sf = field_of(m, "seconds", PROTOBUF_C_TYPE_INT64);
	const ProtobufCFieldDescriptor *nf = field_of(m, "nanos", PROTOBUF_C_TYPE_INT32);
	if (!sf || !nf)
		return put_object(w, m, level);
	int64_t s = *(const int64_t *)at(m, sf->offset), carried;
	int32_t ns = *(const int32_t *)at(m, nf->offset);

	if (!__builtin_add_overflow(s, ns / 1000000000, &carried))
		s = carried;
	ns %= 1000000000;
	if (s > 0 && ns < 0) {
		s--;
		ns += 1000000000;
	} else if (s < 0 && ns > 0) {
		s++;
		ns -= 1000000000;
	}
	uint64_t us = s < 0 ? -(uint64_t)s : (uint64_t)s;
	uint32_t un = ns < 0 ? (uint32_t)-ns : (uint32_t)ns;
	TRY(wf_jbuf_printf(w->b, "\"%s%" PRIu64, s < 0 || ns < 0 ? "-" : "", us));
	if (un != 0 && un % 1000000 == 0)
		TRY(wf_jbuf_printf(w->b, ".%03" PRIu32, un / 1000000));
	else if (un != 0 && un % 1000 == 0)
		TRY(wf_jbuf_printf(w->b, ".%06" PRIu32, un / 1000));
	else if (un != 0)
		TRY(wf_jbuf_printf(w->b, ".%09" PRIu32, un));
	return wf_jbuf_puts(w->b, "s\"");
}

/* "2026-11-26T22:10:35Z" (with .fff, .ffffff or .fffffffff when there are nanos), RFC 3339 in
 * UTC as proto3's JSON mapping writes it. */
static int put_timestamp(struct jw *w, const ProtobufCMessage *m, int level)
{
	const ProtobufCFieldDescriptor *sf = field_of(m, "seconds", PROTOBUF_C_TYPE_INT64);
	const ProtobufCFieldDescriptor *nf = field_of(m, "nanos", PROTOBUF_C_TYPE_INT32);
	if (!sf || !nf)
		return put_object(w, m, level);
	time_t t = (time_t)*(const int64_t *)at(m, sf->offset);
	int32_t ns = *(const int32_t *)at(m, nf->offset);
	struct tm tm;
	char buf[64];
	if (!gmtime_r(&t, &tm) || ns < 0 || ns > 999999999)
		return put_object(w, m, level);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	TRY(wf_jbuf_printf(w->b, "\"%s", buf));
	if (ns && ns % 1000000 == 0)
		TRY(wf_jbuf_printf(w->b, ".%03" PRId32, ns / 1000000));
	else if (ns && ns % 1000 == 0)
		TRY(wf_jbuf_printf(w->b, ".%06" PRId32, ns / 1000));
	else if (ns)
		TRY(wf_jbuf_printf(w->b, ".%09" PRId32, ns));
	return wf_jbuf_puts(w->b, "Z\"");
}

/* Struct is its map as an object; an empty one still prints "{}". */
static int put_struct(struct jw *w, const ProtobufCMessage *m, int level)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "fields");
	if (!f || !is_map(f))
		return put_object(w, m, level);
	size_t n = *(const size_t *)at(m, f->quantifier_offset);
	return put_map(w, f, *(const ProtobufCMessage *const *const *)at(m, f->offset), n, level);
}

/* ListValue is its values as an array; an empty one still prints "[]". */
static int put_list(struct jw *w, const ProtobufCMessage *m, int level)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "values");
	if (!f || f->label != PROTOBUF_C_LABEL_REPEATED)
		return put_object(w, m, level);
	size_t n = *(const size_t *)at(m, f->quantifier_offset);
	return put_array(w, f, *(const void *const *)at(m, f->offset), n, level);
}

/* Value is whichever member of its oneof is set; none set is taken as null. */
static int put_struct_value(struct jw *w, const ProtobufCMessage *m, int level)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	for (unsigned i = 0; i < d->n_fields; i++)
		if (is_present(m, &d->fields[i]))
			return put_value(w, &d->fields[i], at(m, d->fields[i].offset), level);
	return wf_jbuf_puts(w->b, "null");
}

/* A wrapper is its bare value, printed even when it is the default: the wrapper being there
 * is what says the value was set. */
static int put_wrapper(struct jw *w, const ProtobufCMessage *m, int level)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (d->n_fields != 1 || strcmp(d->fields[0].name, "value") != 0 ||
	    d->fields[0].label == PROTOBUF_C_LABEL_REPEATED)
		return put_object(w, m, level);
	return put_value(w, &d->fields[0], at(m, d->fields[0].offset), level);
}

/* {"@type": url, ...fields of the payload}; a well-known payload, whose JSON need not be an
 * object, goes under "value"; a payload of an unknown type (or one that does not decode) is
 * kept as base64 under "value" so that nothing is silently dropped. */
static int put_any(struct jw *w, const ProtobufCMessage *m, int level)
{
	const ProtobufCFieldDescriptor *uf = field_of(m, "type_url", PROTOBUF_C_TYPE_STRING);
	const ProtobufCFieldDescriptor *vf = field_of(m, "value", PROTOBUF_C_TYPE_BYTES);
	if (!uf || !vf)
		return put_object(w, m, level);
	const char *url = *(const char *const *)at(m, uf->offset);
	const ProtobufCBinaryData *v = at(m, vf->offset);
	if (!url)
		url = "";
	if (!*url && !v->len)
		return jbuf_put(w->b, "{}", 2);

	const ProtobufCMessageDescriptor *d = *url ? wf_proto_find(url) : NULL;
	ProtobufCMessage *inner = d ? protobuf_c_message_unpack(d, NULL, v->len, v->data) : NULL;
	size_t count = 0;
	int rc = jbuf_put(w->b, "{", 1);
	if (rc == 0)
		rc = jw_key(w, level + 1, &count, "@type", 5);
	if (rc == 0)
		rc = wf_jbuf_put_jstr(w->b, url, strlen(url));
	if (rc == 0 && (!inner || wkt_of(d) != WKT_NONE))
		rc = jw_key(w, level + 1, &count, "value", 5);
	if (rc == 0 && !inner)
		rc = put_base64(w->b, v->data, v->len);
	else if (rc == 0 && wkt_of(d) != WKT_NONE)
		rc = put_msg(w, d, inner, level + 1);
	else if (rc == 0)
		rc = put_fields(w, inner, level, &count);
	if (inner)
		protobuf_c_message_free_unpacked(inner, NULL);
	return rc < 0 ? rc : jw_close(w, level, count, '}');
}

/* Message m of type d (m may be NULL, e.g. an unset map value) as the value at `level`. */
static int put_msg(struct jw *w, const ProtobufCMessageDescriptor *d, const ProtobufCMessage *m,
                   int level)
{
	if (m)
		d = m->descriptor;
	enum wkt kind = wkt_of(d);
	if (!m) /* only inside a map, a list or a oneof, where something must print */
		return wf_jbuf_puts(w->b, kind == WKT_VALUE  ? "null"
		                          : kind == WKT_LIST ? "[]"
		                                             : "{}");
	if (w->depth >= WF_JSON_MAX_DEPTH)
		return -ELOOP;

	int rc;
	w->depth++;
	switch (kind) {
	case WKT_ANY: rc = put_any(w, m, level); break;
	case WKT_DURATION: rc = put_duration(w, m, level); break;
	case WKT_TIMESTAMP: rc = put_timestamp(w, m, level); break;
	case WKT_WRAPPER: rc = put_wrapper(w, m, level); break;
	case WKT_STRUCT: rc = put_struct(w, m, level); break;
	case WKT_VALUE: rc = put_struct_value(w, m, level); break;
	case WKT_LIST: rc = put_list(w, m, level); break;
	default: rc = put_object(w, m, level);
	}
	w->depth--;
	return rc;
}

int wf_json_message(struct wf_jbuf *b, const ProtobufCMessage *msg, int indent)
{
	struct jw w = {b, indent < 0 ? -1 : indent, 0};

	if (!msg)
		return wf_jbuf_puts(b, "null");
	return put_msg(&w, msg->descriptor, msg, 0);
}
