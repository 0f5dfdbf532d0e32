/* Protobuf message -> JSON, driven by protobuf-c descriptors, following the proto3 JSON
 * mapping the way Envoy prints it in /config_dump: proto field names (snake_case), fields at
 * their default omitted, 64-bit integers as strings, enums by name, bytes in base64, and the
 * well-known types (Any, Duration, Struct/Value/ListValue, wrappers) in their JSON forms.
 *
 * The output buffer, struct wf_jbuf:
 *   - a zeroed struct is a valid empty buffer;
 *   - p is malloc'd, owned by the caller, and freed with free(b->p);
 *   - when p is not NULL, p[len] == '\0' and len < cap, so p can be used as a C string.
 * On error a writer returns a negative errno and leaves whatever it had appended so far in b
 * (still NUL-terminated); the caller decides whether to discard it. */
#ifndef WF_XDS_JSON_H
#define WF_XDS_JSON_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

struct wf_jbuf {
	char *p;
	size_t len, cap;
};

/* Append the C string s verbatim. 0, or -ENOMEM. */
int wf_jbuf_puts(struct wf_jbuf *b, const char *s);
/* Append printf-formatted text. 0, or -ENOMEM (-EINVAL on a bad format). */
int wf_jbuf_printf(struct wf_jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s[0..n) as a quoted JSON string: '"' and '\' escaped, control characters as \n, \t,
 * \r, \b, \f or \u00XX, every other byte (UTF-8 included) passed through. 0, or -ENOMEM. */
int wf_jbuf_put_jstr(struct wf_jbuf *b, const char *s, size_t n);

/* Append msg as JSON. indent >= 0 pretty-prints with that many spaces per level, starting at
 * level 0 and without a trailing newline; -1 prints compactly (no whitespace at all). An Any is
 * printed as {"@type": url, ...fields of the payload}, its payload resolved through
 * wf_proto_find; an Any of an unknown type as {"@type": url, "value": "<base64>"}.
 * 0, -ENOMEM, or -ELOOP when messages nest deeper than WF_JSON_MAX_DEPTH. */
#define WF_JSON_MAX_DEPTH 100
int wf_json_message(struct wf_jbuf *b, const ProtobufCMessage *msg, int indent);

#endif
