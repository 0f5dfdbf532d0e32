/* The table of every message type Weft knows (generated from src/xds/proto), and Any
 * packing/unpacking by type URL. */
#ifndef WF_XDS_REGISTRY_H
#define WF_XDS_REGISTRY_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#define WF_TYPE_URL_PREFIX "type.googleapis.com/"

/* The descriptor of a message by full name ("envoy.config.listener.v3.Listener") or type URL
 * ("type.googleapis.com/envoy.config.listener.v3.Listener", any "host/" prefix); NULL if none. */
const ProtobufCMessageDescriptor *wf_proto_find(const char *name_or_url);

/* Allocate a message of type d with its defaults set; NULL on allocation failure.
 * Free it with wf_proto_free. */
ProtobufCMessage *wf_proto_new(const ProtobufCMessageDescriptor *d);
/* Free a message built by wf_proto_new/the YAML mapper/wf_proto_unpack, with everything it owns. */
void wf_proto_free(ProtobufCMessage *m);

/* Is field f of msg set? A oneof member when its case names it; a repeated field when it has
 * elements; a message when present; a proto3 scalar when not zero/empty. */
int wf_proto_field_is_set(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f);

#endif
