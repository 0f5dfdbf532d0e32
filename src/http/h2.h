/* HTTP/2 codec: one connection's frames (our own, h2.c; HPACK in hpack.c), as a byte-in/byte-out state machine
 * for either side (server: downstream connections; client: upstream ones). It knows nothing
 * of sockets or of the proxy: the owner feeds it the bytes it read (wf_h2_recv), takes the
 * bytes to write (wf_h2_send_pending / wf_h2_sent), and hears about streams through an ops
 * table.
 *
 * Flow control is end to end: a stream's received DATA is acknowledged to the peer (window
 * update) only when the owner says it has passed the bytes on (wf_h2_consume), so a slow
 * reader on the other side holds the peer back instead of growing buffers here. Outgoing DATA
 * is queued per stream (wf_h2_send_data) and leaves as the peer's windows allow; the owner
 * watches wf_h2_stream_queued to stop reading its source when a stream's queue is long.
 *
 * Abuse limits (Envoy's http2_protocol_options, with its defaults) close the connection with
 * GOAWAY when the peer floods: premature stream resets (rapid reset, CVE-2023-44487),
 * CONTINUATION floods, header lists over the limit (HPACK bombs), PING/SETTINGS floods (queued
 * control frames the peer does not read), consecutive empty frames, PRIORITY and
 * WINDOW_UPDATE floods. wf_h2_error says which. */
#ifndef WF_HTTP_H2_H
#define WF_HTTP_H2_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "http/h1.h"

struct wf_h2;

struct wf_h2_limits {
	uint32_t max_concurrent_streams;          /* advertised (server) / peer default; 2147483647 */
	uint32_t initial_stream_window;           /* 268435456 (Envoy's default) */
	uint32_t initial_connection_window;       /* 268435456 */
	uint32_t hpack_table_size;                /* 4096 */
	uint32_t max_header_list;                 /* decoded header list bytes (name + value + 32 each): 60 KiB */
	uint32_t max_headers;                     /* headers per block: 100 */
	uint32_t max_outbound_frames;             /* 10000 */
	uint32_t max_outbound_control_frames;     /* 1000 */
	uint32_t max_consecutive_empty_frames;    /* 1 */
	uint32_t max_priority_frames_per_stream;  /* 100 */
	uint32_t max_window_updates_per_data_sent;/* 10 */
	uint32_t max_continuations;               /* CONTINUATION frames per header block: 8 */
	uint8_t connect_protocol;                 /* server: SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441) */
};

/* Envoy's defaults. */
void wf_h2_limits_default(struct wf_h2_limits *l);

struct wf_h2_ops {
	/* A header block: the request (server) or response / 1xx (client) head, or trailers
	 * (`trailers` set). Pseudo-headers come first, as received. 0, or <0 to reset the stream. */
	int (*headers)(void *ctx, int32_t stream, const struct wf_hdr *h, uint32_t n, int end_stream, int trailers);
	/* DATA payload; acknowledge it with wf_h2_consume once passed on. 0, or <0 to reset. */
	int (*data)(void *ctx, int32_t stream, const uint8_t *p, size_t n, int end_stream);
	/* The stream is over: ended both ways, or reset by either side (error_code: the
	 * RST_STREAM code, 0 for a clean close). The stream id is not used again. */
	void (*closed)(void *ctx, int32_t stream, uint32_t error_code);
	/* GOAWAY from the peer: streams above last_stream will not be processed. */
	void (*goaway)(void *ctx, int32_t last_stream, uint32_t error_code);
	/* A stream's queued output fell to 0 (all passed to the peer's window), for back-pressure. */
	void (*drained)(void *ctx, int32_t stream);
	/* A header block went over max_header_list or max_headers: its stream is reset
	 * (RST_STREAM INTERNAL_ERROR) and never reported. Optional. */
	void (*header_overflow)(void *ctx, int32_t stream);
};

enum wf_h2_error {
	WF_H2_OK,
	WF_H2_PROTOCOL,            /* the peer broke the protocol */
	WF_H2_RAPID_RESET,
	WF_H2_CONTINUATION_FLOOD,
	WF_H2_HEADER_LIST_TOO_LARGE,
	WF_H2_CONTROL_FLOOD,       /* too many PING/SETTINGS acks queued */
	WF_H2_OUTBOUND_FLOOD,      /* too many frames queued for a peer that does not read */
	WF_H2_EMPTY_FRAMES,
	WF_H2_PRIORITY_FLOOD,
	WF_H2_WINDOW_UPDATE_FLOOD,
};

struct wf_h2 *wf_h2_new(int server, const struct wf_h2_limits *lim, const struct wf_h2_ops *ops, void *ctx,
                        struct wf_pool *pool);
void wf_h2_free(struct wf_h2 *h);
/* Free the calling thread's caches (at thread exit). */
void wf_h2_thread_exit(void);

/* Feed bytes read from the peer. 0, or -1 when the connection must close (wf_h2_error says
 * why; a GOAWAY is queued: send what wf_h2_send_pending gives, then close). */
int wf_h2_recv(struct wf_h2 *h, const uint8_t *p, size_t n);
/* Bytes to write to the peer (serializes queued frames): *p valid until wf_h2_sent. 0 when
 * nothing is queued. */
size_t wf_h2_send_pending(struct wf_h2 *h, const uint8_t **p);
/* n bytes of what wf_h2_send_pending gave were written. */
void wf_h2_sent(struct wf_h2 *h, size_t n);
/* All of what wf_h2_send_pending gives, handed over with the buffer that holds it (no copy):
 * dst (empty, a buffer of the codec's pool) becomes that buffer. 0, or -1 when dst is not
 * empty or of another pool (then copy and wf_h2_sent). */
int wf_h2_hand_out(struct wf_h2 *h, struct wf_buf *dst, struct wf_pool *pool);
/* Server: the stream whose request head is being received (its HEADERS frame began, the frame
 * with END_HEADERS has not come), or 0. Nothing else can come on the connection meanwhile. */
int32_t wf_h2_head_pending(const struct wf_h2 *h);
/* Is the connection finished (GOAWAY exchanged and no stream open, or a fatal error)? */
int wf_h2_done(const struct wf_h2 *h);
enum wf_h2_error wf_h2_error(const struct wf_h2 *h);
const char *wf_h2_error_str(enum wf_h2_error e);

/* Client: open a stream with this request head (":method", ":scheme", ":authority", ":path"
 * first). Its id, or <0. */
int32_t wf_h2_submit_request(struct wf_h2 *h, const struct wf_hdr *hdrs, uint32_t n, int end_stream);
/* A response head (server), or trailers when the head went out (end_stream must be set). */
int wf_h2_submit_headers(struct wf_h2 *h, int32_t stream, const struct wf_hdr *hdrs, uint32_t n, int end_stream);
/* Queue DATA on a stream (copied); end_stream ends it. 0 or <0. */
int wf_h2_send_data(struct wf_h2 *h, int32_t stream, const void *p, size_t n, int end_stream);
/* The same without a copy: room for n bytes at the end of the stream's queue (NULL: no such
 * stream, or no memory), valid until the next call on h; wf_h2_send_commit queues the n
 * bytes written there. */
void *wf_h2_send_reserve(struct wf_h2 *h, int32_t stream, size_t n);
int wf_h2_send_commit(struct wf_h2 *h, int32_t stream, size_t n, int end_stream);
/* Queue n bytes (n > 0) on the stream without copying them: they stay the caller's, unchanged,
 * until done(arg) — called once they are framed, or when the stream or the connection goes.
 * DATA queued before and after them keeps its order. 0, or <0 (done is not called). */
int wf_h2_send_lent(struct wf_h2 *h, int32_t stream, const void *p, size_t n, void (*done)(void *arg), void *arg);
/* The owner's object for a stream (NULL until set, and once the stream is gone). */
void wf_h2_set_owner(struct wf_h2 *h, int32_t stream, void *owner);
void *wf_h2_owner(struct wf_h2 *h, int32_t stream);
/* Bytes queued on a stream and not yet framed. */
size_t wf_h2_stream_queued(struct wf_h2 *h, int32_t stream);
/* n bytes of the stream's received DATA were passed on: let the peer send as much more. */
void wf_h2_consume(struct wf_h2 *h, int32_t stream, size_t n);
/* Reset a stream with an error code (RST_STREAM). */
void wf_h2_reset(struct wf_h2 *h, int32_t stream, uint32_t error_code);
/* Graceful shutdown: GOAWAY with the last stream processed; open streams finish. */
void wf_h2_goaway(struct wf_h2 *h, uint32_t error_code);
/* A PING (keepalive); the peer's ACK is not reported. */
void wf_h2_ping(struct wf_h2 *h);
/* The peer's SETTINGS_MAX_CONCURRENT_STREAMS (100 until its SETTINGS arrive). */
uint32_t wf_h2_peer_max_streams(const struct wf_h2 *h);
/* Open streams. */
uint32_t wf_h2_streams(const struct wf_h2 *h);

#endif
