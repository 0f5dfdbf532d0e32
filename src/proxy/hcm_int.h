/* Internals of the HTTP connection manager shared by its files: hcm.c (connections, streams,
 * routing and the upstream side, and the HTTP/1 codec) and hcm_h2.c (the HTTP/2 codec). A
 * stream never knows which codec its connection speaks: it hands its response to the
 * connection's codec ops, and takes its request body from rq (HTTP/2) or the connection's read
 * buffer (HTTP/1). */
#ifndef WF_PROXY_HCM_INT_H
#define WF_PROXY_HCM_INT_H

#include "proxy/alog.h"
#include "proxy/filter.h"
#include "proxy/hcm.h"
#include "proxy/hlist.h"
#include "proxy/sio.h"
#include "proxy/tunnel.h"
#include "proxy/up2.h"
#include "proxy/upstream.h"
#include "http/h2.h"

#define WATERMARK (64 * 1024)
#define REPLAY_MAX (64 * 1024) /* request bodies up to this are kept for retries */

/* request body: none, content-length, chunked, or raw bytes until the client ends its stream
 * (an HTTP/2 CONNECT or WebSocket tunnel) */
enum { RB_NONE, RB_CL, RB_CHUNKED, RB_RAW };
enum { RS_WAIT, RS_CL, RS_CHUNKED, RS_CLOSE, RS_DONE };

struct hconn;

/* A growable byte string (heads being built, bodies kept for a replay). */
struct out {
	char *p;
	size_t n, cap;
};

#define INLINE_HDRS 101   /* the default header count limit, plus a generated x-request-id */
#define INLINE_HEAD 1024

struct hstream {
	struct hstream *next_free;         /* in the worker's cache of stream objects */
	struct hconn *c;
	struct wf_snapshot *snap;
	const struct wf_hcm_cfg *cfg;
	char *head;                        /* copy of the request head; req points into it */
	struct wf_h1_req req;
	struct wf_hdr *hdrs;               /* cfg->max_headers_count entries */
	const struct wf_route *route;
	const struct wf_vhost *vh;
	const struct wf_weighted *wc;
	struct wf_cluster *cluster;
	const struct wf_host *host;
	struct wf_uconn *u;
	int u_reused;
	uint8_t rb;                        /* request body kind */
	uint8_t req_done;                  /* request fully received from downstream */
	uint8_t req_sent;                  /* request fully written upstream */
	uint8_t rs;                        /* response state */
	uint8_t down_chunked;              /* response re-framed as chunked downstream */
	uint8_t down_close;                /* close-delimited downstream response */
	uint8_t resp_started;              /* response head sent downstream */
	uint8_t is_head;
	uint8_t keep_alive;                /* downstream connection may be reused after this stream */
	uint8_t up_keep;                   /* upstream connection may be reused */
	uint8_t sent_100;
	uint8_t retried;
	uint8_t ended;
	uint8_t wait_body;                 /* routed, waiting for the first chunk-size line */
	uint8_t tunnel;                    /* upgraded: st->tun relays bytes both ways */
	uint8_t connect_terminate;         /* CONNECT answered by Weft, payload to a raw TCP upstream */
	const char *upgrade;               /* the upgrade asked for ("websocket", "CONNECT"), or NULL */
	uint32_t upgrade_len;
	struct wf_tunnel tun;
	uint32_t down_wm, up_wm;           /* output watermarks toward the client / the upstream */
	uint64_t req_left;
	struct wf_h1_chunked req_ch, resp_ch;
	uint64_t resp_left;
	struct wf_hdr *resp_hdrs;          /* copy of the upstream response head (for access logs) */
	uint32_t n_resp_hdrs;
	struct wf_hdr *out_hdrs;           /* the response head as sent downstream (for the log) */
	uint32_t n_out_hdrs;
	char ust[24];                      /* x-envoy-upstream-service-time value */
	char *xff;                         /* x-forwarded-for as sent upstream */
	char *set_cookie;                  /* a hash-policy cookie to set on the response */
	/* retries (route retry_policy) */
	const struct wf_retry *retry;
	uint32_t attempt;                  /* attempts started, 1-based */
	struct wf_timer try_t;             /* per-try timeout, then the back-off before the next try */
	uint8_t backing_off;
	uint8_t replay_ok;                 /* the body sent so far is kept (up to REPLAY_MAX) */
	uint8_t mirrored;                  /* request_mirror_policies done */
	struct out replay;                 /* request body bytes as sent upstream, for a replay */
	const struct wf_host *tried[8];    /* hosts of earlier attempts (previous_hosts predicate) */
	uint32_t n_tried;
	/* circuit breakers: what this stream holds of its cluster's limits */
	struct wf_uwaiter waiter;          /* parked for a connection (max_connections) */
	uint8_t parked, rq_taken, retry_taken;
	char client[64];                   /* trusted client address inferred from XFF */
	struct wf_timer t;                 /* route timeout */
	struct wf_timer rq_t;              /* request_timeout: until the request is all sent upstream */
	struct wf_timer idle;              /* stream idle timeout (lazy: checks `active`) */
	uint64_t active;                   /* ms of the last byte moved for this stream */
	uint64_t idle_ms;
	uint64_t t_sent_us;
	struct wf_stream_info si;
	struct wf_fstream fs;              /* what the HTTP filters see */
	uint32_t f_ran;                    /* filters whose on_request ran */
	int16_t grpc_status1;              /* a local reply's gRPC status + 1; 0: from its HTTP status */
	uint64_t timeout_ms;               /* the route timeout, or a shorter grpc-timeout; 0: none */
	char request_id[129];
	/* HTTP/2 downstream (c->h2): the stream id, the request body received and not yet sent
	 * upstream, and where the stream stands */
	int32_t sid;
	struct wf_buf rq;
	uint8_t in_end;                    /* END_STREAM received: rq holds the rest of the body */
	uint8_t down_done;                 /* END_STREAM sent (or queued) downstream */
	uint8_t h2_closed;                 /* the h2 stream is gone (closed or reset) */
	uint8_t up_paused;                 /* upstream reading paused for the downstream */
	uint8_t ext_tunnel;                /* HTTP/2 CONNECT or WebSocket: DATA <-> upstream bytes */
	uint8_t up_shut;                   /* 1: shut the upstream's output once drained; 2: done */
	uint8_t refused;                   /* HTTP/2 upstream: streams refused, sent again */
	uint8_t client_deadline;           /* the route timeout is the client's grpc-timeout */
	uint8_t head_deferred;             /* auto_config: the head waits for the connection's ALPN */
	struct hstream *h2_prev, *h2_next; /* the connection's streams */
	/* HTTP/2 upstream: the stream on the upstream connection (us.conn NULL otherwise), and
	 * response DATA passed downstream but not yet acknowledged upstream (back-pressure) */
	struct wf_up2_stream us;
	uint32_t up_unacked;
	struct wf_hdr *trailers;           /* response trailers from an HTTP/2 upstream (copied) */
	uint32_t n_trailers;
	/* Most requests fit these; larger ones fall back to malloc. */
	struct wf_hdr hdrs_inline[INLINE_HDRS];
	char head_inline[INLINE_HEAD];
};

struct hconn {
	struct wf_conn_link link;
	struct wf_defer defer;
	struct wf_worker *w;
	struct wf_sio s;
	struct wf_snapshot *snap;          /* held while the connection lives */
	const struct wf_listener *l;
	struct hstream *st;
	struct wf_timer t;                 /* idle / request headers timeout */
	uint64_t head_started;             /* ms when the first byte of the current head came */
	uint64_t opened_ms;
	uint8_t closing;                   /* close once the output is flushed */
	uint32_t requests;                 /* streams started on this connection */
	uint8_t dead;
	char remote[64], local[64];
	const struct hcm_codec *codec;     /* HTTP/1 (hcm.c) or HTTP/2 (hcm_h2.c) */
	struct wf_h2 *h2;                  /* the HTTP/2 session, when the codec is HTTP/2 */
	struct hstream *streams;           /* HTTP/2: the open streams */
	uint32_t n_streams;
	uint8_t goaway;                    /* HTTP/2: GOAWAY sent, no new streams */
	uint8_t in_h2;                     /* HTTP/2: inside the session's callbacks */
	uint8_t flushing, flush_again;     /* HTTP/2: in flush_now */
	uint8_t flush_pending;             /* HTTP/2: flush_d is queued on the loop */
	uint8_t free_pending;              /* closed while flush_d was queued: it frees the conn */
	struct wf_defer flush_d;
	uint8_t h2_failed;                 /* HTTP/2: the client's fault, counted */
	uint8_t half_closed;               /* HTTP/2: its GOAWAY sent and our side shut */
	uint32_t dropped;                  /* HTTP/2: bytes read and dropped after the GOAWAY */
	uint64_t ping_sent;                /* HTTP/2 keepalive: ms the unanswered PING left, or 0 */
	uint64_t ping_at;                  /* HTTP/2 keepalive: ms the next PING is due */
	int32_t head_sid;                  /* HTTP/2: the stream whose request head is arriving, or 0 */
	uint64_t head_sid_at;              /* ... ms its HEADERS frame began (request_headers_timeout) */
	uint8_t head_late;                 /* ... and it was answered 408 */
};

/* The downstream codec of a connection. */
struct hcm_codec {
	/* The response head: status and reason, the header list as edited (live entries), the
	 * content length to declare (<0: none) and whether no body follows. 0, or <0 when the
	 * downstream is gone. */
	int (*head)(struct hstream *st, int status, const char *reason, uint32_t rl, struct wf_hlist *hl, int64_t cl,
	            int end);
	/* A 1xx interim response: its status and header fields (hop-by-hop ones removed). */
	void (*interim)(struct hstream *st, int status, const struct wf_hdr *h, uint32_t n);
	/* Response body bytes. 0 or <0. */
	int (*body)(struct hstream *st, const char *p, size_t n);
	/* The response is complete. */
	void (*end)(struct hstream *st);
	/* Response bytes waiting for the client (back-pressure). */
	uint32_t (*queued)(const struct hstream *st);
	/* The stream is over and freed by the caller next: what the connection does then. */
	void (*done)(struct hstream *st);
};

extern const struct hcm_codec hcm_h2_codec;

/* hcm.c, for the HTTP/2 codec */
struct hstream *hcm_stream_new(struct hconn *c);
void hcm_stream_begin(struct hstream *st);     /* the request head is in: route it */
void hcm_stream_abort(struct hstream *st);     /* the client reset the stream */
void hcm_stream_head_timeout(struct hstream *st); /* its head missed request_headers_timeout: 408 */
void hcm_stream_free(struct hstream *st);
void hcm_conn_refresh(struct hconn *c);        /* move to the newest config (between streams) */
void hcm_up_send_body(struct hstream *st);
void hcm_up_resume(struct hstream *st);        /* room downstream: let the upstream talk */
void hcm_conn_close(struct hconn *c);
void hcm_conn_update(struct hconn *c);

/* hcm_h2.c */
int hcm_h2_sniff(const struct hconn *c);       /* 1 HTTP/2 preface, 0 not, -1 need more bytes */
int hcm_h2_start(struct hconn *c);
void hcm_h2_io(struct hconn *c, uint32_t ev);
void hcm_h2_process(struct hconn *c);
void hcm_h2_flush(struct hconn *c);
void hcm_h2_free(struct hconn *c);
void hcm_h2_drain(struct hconn *c);
void hcm_h2_timer(struct hconn *c);

#endif
