#include "xds/registry.h"

#include <stdlib.h>
#include <string.h>

extern const ProtobufCMessageDescriptor *const wf_proto_registry[];

const ProtobufCMessageDescriptor *wf_proto_find(const char *name)
{
	const char *slash = strrchr(name, '/');
	if (slash)
		name = slash + 1;
	for (size_t i = 0; wf_proto_registry[i]; i++)
		if (strcmp(wf_proto_registry[i]->name, name) == 0)
			return wf_proto_registry[i];
	return NULL;
}

ProtobufCMessage *wf_proto_new(const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m = calloc(1, d->sizeof_message);
	if (m)
		d->message_init(m);
	return m;
}

void wf_proto_free(ProtobufCMessage *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}
