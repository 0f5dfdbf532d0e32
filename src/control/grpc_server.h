/* A gRPC server over our HTTP/2 codec (http/h2.c, server side), on one event loop: h2c, or
 * TLS with ALPN "h2". Calls are routed by :path to registered methods; every call is a
 * bidirectional stream of length-prefixed messages (the 5-byte gRPC prefix, both ways, with a
 * size limit), ended by trailers carrying grpc-status and grpc-message. Unknown paths get
 * UNIMPLEMENTED; compressed messages (grpc-encoding other than identity) are refused.
 *
 * Back-pressure both ways:
 *   - out: a call's queued output (codec queue + socket) is wf_grpc_call_queued; a handler
 *     that finds it over WF_GRPC_WATERMARK stops producing and waits for `writable`;
 *   - in: while a call's output is over the watermark, its received DATA is not acknowledged
 *     (no WINDOW_UPDATE) nor parsed, so a client that does not read cannot make us buffer
 *     more than one stream window of its requests.
 * A call ends by wf_grpc_call_finish, by the client's RST_STREAM (cancel), or when the
 * connection goes; `closed` is called once in every case and the call is not used after. */
#ifndef WF_CONTROL_GRPC_SERVER_H
#define WF_CONTROL_GRPC_SERVER_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "net/sock.h"

struct wf_grpc_server;
struct wf_grpc_call;
struct wf_tls_cfg;

#define WF_GRPC_WATERMARK (256 * 1024)
#define WF_GRPC_MAX_MESSAGE (4 * 1024 * 1024)  /* gRPC's default receive limit */

struct wf_grpc_method {
	const char *path;      /* "/package.Service/Method" */
	/* A call began: the handler's per-call object, or NULL to fail it (INTERNAL). */
	void *(*open)(void *ctx, struct wf_grpc_call *call);
	/* One whole message (valid during the call). 0, or <0 after wf_grpc_call_finish. */
	int (*message)(void *cctx, const uint8_t *p, size_t n);
	/* The client ended its side (END_STREAM). Optional. */
	void (*half_close)(void *cctx);
	/* Output fell under the watermark again. Optional. */
	void (*writable)(void *cctx);
	/* The call is over (finished, cancelled, or its connection lost): free cctx. */
	void (*closed)(void *cctx);
	void *ctx;
};

/* A server on loop with these methods (the array and its strings outlive the server). */
struct wf_grpc_server *wf_grpc_server_new(struct wf_loop *loop, const struct wf_grpc_method *methods, uint32_t n);
/* Listen on addr; tls (owned by the caller, alive as long as the server): TLS with ALPN h2,
 * NULL: h2c. 0 or -errno. */
int wf_grpc_server_listen(struct wf_grpc_server *s, const struct wf_addr *addr, const struct wf_tls_cfg *tls);
/* Close listeners and every connection (calls are closed). */
void wf_grpc_server_free(struct wf_grpc_server *s);

/* Send one message on the call, serialized straight into the stream's queue (framed; no
 * intermediate copy). 0, or <0 when the call is finished or memory ran out. */
int wf_grpc_call_send(struct wf_grpc_call *c, const ProtobufCMessage *m);
/* The same for a message whose serialized form is head (packed here; its fields must not be
 * in body) followed by body: bytes shared between calls, not copied. done(arg) is called once
 * the call no longer needs them (sent, or the call gone); not when this fails. 0 or <0. */
int wf_grpc_call_send_lent(struct wf_grpc_call *c, const ProtobufCMessage *head, const void *body, size_t len,
                           void (*done)(void *arg), void *arg);
/* Bytes of this call waiting to reach the client. */
size_t wf_grpc_call_queued(const struct wf_grpc_call *c);
/* End the call with a status (grpc-message: msg, may be NULL). `closed` follows (deferred). */
void wf_grpc_call_finish(struct wf_grpc_call *c, int status, const char *msg);
/* "127.0.0.1:43210" of the client. */
const char *wf_grpc_call_peer(const struct wf_grpc_call *c);

#endif
