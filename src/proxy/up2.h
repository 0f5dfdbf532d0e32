/* HTTP/2 upstream connections: each carries many streams (up to the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS; a new connection opens when the ones to a host are full),
 * and lives in its worker's list until it has been idle for the cluster's idle timeout, or the
 * server sends GOAWAY (streams it did not take are refused, so their owners may retry).
 *
 * The transport is an ordinary upstream connection (proxy/upstream.c: connect, TLS,
 * max_connections, stats) that never goes back to the HTTP/1 pool. A stream's owner hears
 * about its stream through an ops table; it sends with wf_up2_send and acknowledges response
 * DATA with wf_up2_consume once passed on (flow control end to end). */
#ifndef WF_PROXY_UP2_H
#define WF_PROXY_UP2_H

#include "http/h1.h"
#include "proxy/config.h"

struct wf_worker;
struct wf_up2;
struct wf_uconn;

struct wf_up2_ops {
	/* the connection is established (the request may have been queued before) */
	void (*connected)(void *owner);
	/* response head (or a 1xx), or trailers */
	void (*headers)(void *owner, const struct wf_hdr *h, uint32_t n, int end_stream, int trailers);
	void (*data)(void *owner, const uint8_t *p, size_t n, int end_stream);
	/* the stream's queued request DATA went out: room for more */
	void (*writable)(void *owner);
	/* the stream ended before the owner let go: reset by the server (its error code), or
	 * refused (REFUSED_STREAM, 7), or the connection failed (code < 0: -errno; `connecting`
	 * when it never got established). The stream is gone: do not detach it. */
	void (*reset)(void *owner, int code, int connecting);
};

/* The owner's handle on its stream. */
struct wf_up2_stream {
	struct wf_up2 *conn;
	int32_t id;
	struct wf_up2_stream *prev, *next;   /* the connection's streams */
	const struct wf_up2_ops *ops;
	void *owner;
};

/* Open a stream to host h with this request head (":method", ":scheme", ":authority", ":path"
 * first) on a connection with room, or a new one. *reused: the connection is established (else
 * `connected` follows). 0, or -EAGAIN when the
 * cluster is at max_connections and no connection to h can take it, or -errno. */
int wf_up2_open(struct wf_worker *w, struct wf_cluster *c, const struct wf_host *h, const struct wf_hdr *head,
                uint32_t n, int end_stream, struct wf_up2_stream *s, int *reused);
/* An established connection (auto_config: the server chose h2 with ALPN) becomes an HTTP/2
 * connection of this worker's, for streams to h. */
void wf_up2_adopt(struct wf_worker *w, struct wf_cluster *c, const struct wf_host *h, struct wf_uconn *u);
/* Request DATA (copied); end_stream ends the request. 0 or <0. */
int wf_up2_send(struct wf_up2_stream *s, const void *p, size_t n, int end_stream);
/* Request bytes queued on the stream, not yet sent. */
size_t wf_up2_queued(const struct wf_up2_stream *s);
/* n bytes of response DATA were passed on. */
void wf_up2_consume(struct wf_up2_stream *s, size_t n);
/* The owner is done with the stream: reset it (CANCEL) unless it ended cleanly both ways. */
void wf_up2_detach(struct wf_up2_stream *s, int reset);
/* Have what the connection has to send written (at the end of this loop iteration). */
void wf_up2_flush(struct wf_up2_stream *s);
/* Close this worker's idle connections (drain), and free them all at thread exit. */
void wf_up2_close_idle(struct wf_worker *w);

#endif
