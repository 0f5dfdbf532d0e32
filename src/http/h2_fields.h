/* HTTP/2 message rules for a decoded header block (RFC 9113 §8.1-8.3, RFC 8441 §4): what makes
 * a request, a response or a trailer section malformed. A malformed message is a stream error
 * (PROTOCOL_ERROR): the codec resets the stream and never reports it. */
#ifndef WF_HTTP_H2_FIELDS_H
#define WF_HTTP_H2_FIELDS_H

#include <stdint.h>

#include "http/h1.h"

enum wf_h2_block {
	WF_H2B_REQUEST,  /* a request head (server side) */
	WF_H2B_RESPONSE, /* a response head, final or 1xx (client side) */
	WF_H2B_TRAILERS, /* a trailer section */
};

struct wf_h2_msg {
	int64_t content_length; /* -1 when absent */
	int status;             /* responses: :status */
	uint8_t connect;        /* requests: CONNECT (plain or extended) */
};

/* Check the fields of one block. how: for each field, what HPACK said of it
 * (WF_HPACK_STATIC_NAME/VALUE: the static table's strings need no byte check), or NULL.
 * connect_protocol: SETTINGS_ENABLE_CONNECT_PROTOCOL was sent (extended CONNECT allowed). 0, or
 * -1 when malformed. */
int wf_h2_check_fields(const struct wf_hdr *h, const uint8_t *how, uint32_t n, enum wf_h2_block kind,
                       int connect_protocol, struct wf_h2_msg *m);

#endif
