/* A configuration document: the messages decoded from one source (a YAML file now, an xDS
 * response later), with where each message and field came from, so that any later check
 * can name file:line:column and the field path of what it refuses.
 *
 * The document also owns the messages unpacked from Any fields (typed_config), so that the
 * compile step can look inside an Any as often as it likes without owning the result. */
#ifndef WF_XDS_CFGDOC_H
#define WF_XDS_CFGDOC_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

struct wf_cfgdoc;

struct wf_cfgdoc *wf_cfgdoc_new(const char *source_name);
/* Another owner of the document (a snapshot recompiled from it): returns doc. Any thread. */
struct wf_cfgdoc *wf_cfgdoc_ref(struct wf_cfgdoc *doc);
/* Drops one reference; the last one frees the document, its root message, and every message
 * unpacked through it. Unpacking (wf_cfgdoc_any) stays on one thread (the main thread). */
void wf_cfgdoc_free(struct wf_cfgdoc *doc);
const char *wf_cfgdoc_source(const struct wf_cfgdoc *doc);
ProtobufCMessage *wf_cfgdoc_root(const struct wf_cfgdoc *doc);
void wf_cfgdoc_set_root(struct wf_cfgdoc *doc, ProtobufCMessage *root);

/* Record that message `msg` (field_id 0) or its field `field_id` started at line:col
 * (1-based) and, for a message, that its field path is `path` (copied); for a field, `path`
 * is the name as the source spelt it (lowerCamelCase), which errors then use, or NULL. */
void wf_cfgdoc_mark(struct wf_cfgdoc *doc, const void *msg, uint32_t field_id, uint32_t line,
                    uint32_t col, const char *path);

/* Errors about this document name fields it does not set by their JSON names (lowerCamelCase),
 * as Kubernetes-shaped documents spell them; fields it sets are named as spelt. */
void wf_cfgdoc_use_json_names(struct wf_cfgdoc *doc);
/* How errors name field `field` of message `msg`: as the source spelt it, else its declared
 * or JSON name (see above). The result is `field`, a string of the document, or buf. */
const char *wf_cfgdoc_field_name(const struct wf_cfgdoc *doc, const void *msg, const char *field, char *buf,
                                 size_t cap);

/* Format an error about message `msg` (and its field `field`, or NULL for the whole message)
 * into err: "FILE:LINE:COL: PATH.FIELD: <printf text>". Returns -EINVAL so a caller can
 * `return wf_cfg_err(...)`. */
/* The field path of a message of the document ("static_resources.listeners[0]..."), or "":
 * as marked, else found below the root (and remembered; the main thread, as unpacking). */
const char *wf_cfgdoc_path(const struct wf_cfgdoc *doc, const void *msg);
int wf_cfg_err(const struct wf_cfgdoc *doc, char *err, size_t errlen, const void *msg,
               const char *field, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* The message inside an Any (its type resolved from the type URL), owned by the document;
 * the mapper registers what it decoded from YAML, anything else is unpacked on first use.
 * NULL (with err filled) when the type is unknown or the bytes do not decode. */
ProtobufCMessage *wf_cfgdoc_any(struct wf_cfgdoc *doc, const ProtobufCMessage *any,
                                char *err, size_t errlen);
/* Register `inner` (owned by the document from now on) as the decoded content of `any`. */
void wf_cfgdoc_set_any(struct wf_cfgdoc *doc, const ProtobufCMessage *any, ProtobufCMessage *inner);

/* The YAML front end: decode a file (or a string) into a message of type `d`. On success the
 * document's root is set and 0 returned; otherwise -EINVAL with err saying where and why. */
int wf_yaml_load_file(struct wf_cfgdoc *doc, const ProtobufCMessageDescriptor *d, char *err,
                      size_t errlen);
int wf_yaml_load_string(struct wf_cfgdoc *doc, const ProtobufCMessageDescriptor *d,
                        const char *text, size_t len, char *err, size_t errlen);

/* Where message `msg` (field_id 0), its field `field_id`, or a scalar element of a repeated
 * field (its slot's address, field_id 0) started: 1 with *line and *col set, 0 if unknown. */
int wf_cfgdoc_pos(const struct wf_cfgdoc *doc, const void *key, uint32_t field_id, uint32_t *line,
                  uint32_t *col);

/* The YAML front end for files whose documents the caller walks itself (Kubernetes-shaped
 * objects, where only `spec` is a message): decode `node` of the libyaml document `y` into a
 * new message of type `d`, set as the document's root; field paths in errors and marks start
 * with `path` (e.g. "spec"). 0, or -EINVAL with err saying where and why. */
struct yaml_document_s;
struct yaml_node_s;
int wf_yaml_load_node(struct wf_cfgdoc *doc, const ProtobufCMessageDescriptor *d,
                      struct yaml_document_s *y, struct yaml_node_s *node, const char *path,
                      char *err, size_t errlen);

#endif
