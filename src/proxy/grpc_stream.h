/* One gRPC client stream (a bidirectional streaming call) on a connection of its own, over
 * our HTTP/2 codec, to a host of a cluster, with the cluster's connection settings: h2c, or
 * TLS with its transport_socket; its connect_timeout, http2_protocol_options (limits, and
 * connection_keepalive: PINGs, the connection given up when the peer stays silent) and
 * upstream_connection_options.tcp_keepalive. Runs on the loop it is opened on (the main thread
 * for the xDS client) and knows nothing of what the messages mean.
 *
 * Lifetime: wf_grpc_stream_open returns the stream connecting. The owner hears `ready` once
 * the request head went out, each received message (`message`, the 5-byte prefix stripped),
 * and `closed` exactly once when the call is over (the server's grpc-status, a reset, a
 * refused connection...). After `closed` returns the stream is gone: the owner drops its
 * pointer. wf_grpc_stream_close ends it from the owner's side, with no callback. */
#ifndef WF_PROXY_GRPC_STREAM_H
#define WF_PROXY_GRPC_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "net/sock.h"

struct wf_cluster;
struct wf_grpc_stream;

struct wf_grpc_stream_ops {
	void (*ready)(void *ctx);
	/* One whole message (valid during the call). 0, or <0 to end the call (no `closed`). */
	int (*message)(void *ctx, const uint8_t *p, size_t n);
	/* status: the grpc-status, or WF_GRPC_UNAVAILABLE when the connection failed;
	 * why: a line for logs. */
	void (*closed)(void *ctx, int status, const char *why);
	/* (may be NULL) A message's bytes as they come, without gathering them: p[0..n) are its
	 * bytes from offset `off` of `len`. At a message's first bytes (off 0), 1 asks for that
	 * message whole through `message` instead (no more pieces of it); 0 goes on; <0 ends the
	 * call (no `closed`). */
	int (*piece)(void *ctx, const uint8_t *p, size_t n, size_t off, size_t len);
};

/* Connect to addr, a host of cluster cl (kept alive by the caller until the stream is gone),
 * and call `path` (":authority" authority). NULL when no socket. */
struct wf_grpc_stream *wf_grpc_stream_open(struct wf_loop *loop, const struct wf_cluster *cl,
                                           const struct wf_addr *addr, const char *authority,
                                           const char *path, const struct wf_grpc_stream_ops *ops,
                                           void *ctx);
/* Queue one message (copied, prefixed). 0, or <0 when the stream cannot send any more. */
int wf_grpc_stream_send(struct wf_grpc_stream *s, const void *msg, size_t n);
/* Cancel the call and free the stream (no `closed`). */
void wf_grpc_stream_close(struct wf_grpc_stream *s);

#endif
