/* libFuzzer target for the YAML -> protobuf mapper (src/xds/yaml.c) and, on what it accepts,
 * the JSON printer (src/xds/json.c).
 *
 * The input is a whole config file, decoded as an envoy.config.bootstrap.v3.Bootstrap, and
 * the answers are checked against the contracts in cfgdoc.h and json.h:
 *  - a load returns 0 with a root set, or a negative errno with no root and a message in err
 *    that is NUL-terminated, names the source first and fits the buffer (also a tiny one);
 *  - an accepted message is consistent: it packs, the bytes unpack, and the unpacked copy
 *    packs to the same bytes (a wrong count, oneof case or dangling pointer shows up here);
 *  - every Any the mapper built resolves through wf_cfgdoc_any;
 *  - the printer returns 0 or -ELOOP (nesting deeper than WF_JSON_MAX_DEPTH), with a
 *    NUL-terminated buffer of the length it says, compact or indented;
 *  - everything is freed (LeakSanitizer checks it). */
#include "xds/cfgdoc.h"
#include "ensure.h"
#include "xds/json.h"
#include "xds/registry.h"

#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SOURCE "fuzz.yaml"

static const ProtobufCMessageDescriptor *const root_type =
    &envoy__config__bootstrap__v3__bootstrap__descriptor;

/* An error message: terminated inside the buffer, starting with the source name. */
static void check_err(const char *err, size_t errlen)
{
	ENSURE(memchr(err, '\0', errlen) != NULL);
	size_t n = strlen(err);
	ENSURE(n > 0);
	size_t k = strlen(SOURCE) < errlen - 1 ? strlen(SOURCE) : errlen - 1;
	ENSURE(memcmp(err, SOURCE, k) == 0);
}

static int load(const char *text, size_t len, char *err, size_t errlen, struct wf_cfgdoc **out)
{
	struct wf_cfgdoc *doc = wf_cfgdoc_new(SOURCE);
	ENSURE(doc != NULL);
	memset(err, 0x55, errlen);
	int rc = wf_yaml_load_string(doc, root_type, text, len, err, errlen);
	ENSURE(rc <= 0);
	if (rc == 0) {
		ENSURE(wf_cfgdoc_root(doc) != NULL);
		ENSURE(wf_cfgdoc_root(doc)->descriptor == root_type);
	} else {
		ENSURE(wf_cfgdoc_root(doc) == NULL);
		check_err(err, errlen);
	}
	*out = doc;
	return rc;
}

/* Every Any reachable from m resolves to a message of the type its URL names. */
static void check_anys(struct wf_cfgdoc *doc, const ProtobufCMessage *m, int depth)
{
	if (depth > 200)
		return;
	const ProtobufCMessageDescriptor *d = m->descriptor;
	if (strcmp(d->name, "google.protobuf.Any") == 0) {
		char err[256];
		ProtobufCMessage *inner = wf_cfgdoc_any(doc, m, err, sizeof err);
		ENSURE(inner != NULL);
		const char *url = ((const Google__Protobuf__Any *)m)->type_url;
		ENSURE(url && inner->descriptor == wf_proto_find(url));
		check_anys(doc, inner, depth + 1);
		return;
	}
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		const char *base = (const char *)m;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)(base + f->offset);
			for (size_t k = 0; k < n; k++) {
				ENSURE(arr[k] != NULL);
				check_anys(doc, arr[k], depth + 1);
			}
			continue;
		}
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(base + f->offset);
		if (sub)
			check_anys(doc, sub, depth + 1);
	}
}

static void check_packs(const ProtobufCMessage *root)
{
	size_t n = protobuf_c_message_get_packed_size(root);
	uint8_t *a = malloc(n ? n : 1);
	ENSURE(a != NULL);
	ENSURE(protobuf_c_message_pack(root, a) == n);
	ProtobufCMessage *copy = protobuf_c_message_unpack(root_type, NULL, n, a);
	ENSURE(copy != NULL);
	size_t n2 = protobuf_c_message_get_packed_size(copy);
	ENSURE(n2 == n);
	uint8_t *b = malloc(n2 ? n2 : 1);
	ENSURE(b != NULL);
	ENSURE(protobuf_c_message_pack(copy, b) == n2);
	ENSURE(memcmp(a, b, n) == 0);
	free(b);
	wf_proto_free(copy);
	free(a);
}

static void check_json(const ProtobufCMessage *root, int indent)
{
	struct wf_jbuf j = {0};
	int rc = wf_json_message(&j, root, indent);
	ENSURE(rc == 0 || rc == -ELOOP);
	if (j.p) {
		ENSURE(j.len < j.cap);
		ENSURE(j.p[j.len] == '\0');
		ENSURE(strlen(j.p) <= j.len);
	}
	if (rc == 0) {
		ENSURE(j.p != NULL && j.len >= 2);
		ENSURE(j.p[0] == '{' && j.p[j.len - 1] == '}');
		if (indent < 0)
			ENSURE(memchr(j.p, '\n', j.len) == NULL);
	}
	free(j.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy: libyaml reads it by length, so no terminator is needed */
	char *text = malloc(size ? size : 1);
	ENSURE(text != NULL);
	memcpy(text, data, size);

	char err[512];
	struct wf_cfgdoc *doc;
	int rc = load(text, size, err, sizeof err, &doc);
	if (rc == 0) {
		const ProtobufCMessage *root = wf_cfgdoc_root(doc);
		check_anys(doc, root, 0);
		check_packs(root);
		check_json(root, -1);
		check_json(root, 2);
	} else {
		/* the same refusal fits a tiny buffer too */
		char small[8];
		struct wf_cfgdoc *doc2;
		ENSURE(load(text, size, small, sizeof small, &doc2) == rc);
		ENSURE(strncmp(small, err, sizeof small - 1) == 0);
		wf_cfgdoc_free(doc2);
	}
	wf_cfgdoc_free(doc);
	free(text);
	return 0;
}
