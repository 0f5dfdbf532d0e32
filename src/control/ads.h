/* The Aggregated Discovery Service's state machine, without the network: one wf_ads_stream
 * per gRPC call of StreamAggregatedResources (state of the world) or DeltaAggregatedResources
 * (incremental). The transport hands it each request's bytes and a way to send responses.
 *
 * Per stream and type: what the client subscribed to (LDS/CDS: wildcard when the first
 * request names nothing, or names "*"; RDS/EDS: the names it lists), the nonce of the last
 * response, and ACK/NACK. A response goes out only when what the client subscribed to
 * changed: its version is the xxHash of the serialized resources (per resource; for a SotW
 * response, a hash over the names and versions of the set). A NACKed version is remembered
 * and not sent again; the next change is. A push walks the types in make-before-break order
 * (CDS, EDS, LDS, RDS).
 *
 * Status per stream and type (what `weft proxy-status` shows): NOT SENT, STALE (sent, not
 * acknowledged yet), SYNCED (the latest acknowledged), NACK (with the client's message). */
#ifndef WF_CONTROL_ADS_H
#define WF_CONTROL_ADS_H

#include <stddef.h>
#include <stdint.h>

#include "control/xds_cache.h"

struct wf_ads;
struct wf_ads_stream;
struct wf_jbuf;

enum wf_ads_status { WF_ADS_NOT_SENT, WF_ADS_STALE, WF_ADS_SYNCED, WF_ADS_NACK };
const char *wf_ads_status_name(int st);   /* "NOT SENT", "STALE", "SYNCED", "NACK" */

/* How a stream reaches its client. send: one response (a DiscoveryResponse or a
 * DeltaDiscoveryResponse), serialized by the transport where it queues it: 0 or <0.
 * queued: bytes not yet taken by the client; over WF_ADS_WATERMARK a push waits for
 * wf_ads_stream_writable. */
struct wf_ads_io {
	int (*send)(void *ctx, const ProtobufCMessage *m);
	/* (may be NULL) One response whose serialized form is head then body: bytes shared by
	 * the streams that get the same resources, not copied per stream. done(arg) once the
	 * transport no longer needs them; not called when this fails. 0 or <0. */
	int (*send_lent)(void *ctx, const ProtobufCMessage *head, const void *body, size_t len, void (*done)(void *arg),
	                 void *arg);
	size_t (*queued)(void *ctx);
	void *ctx;
};
#define WF_ADS_WATERMARK (256 * 1024)

/* What the server tells its owner of proxies (each may be NULL): a stream's node arrived
 * (called before the stream's first snapshot is taken, so that the owner can register the
 * proxy and invalidate the cache first), and a stream that had one ended. */
struct wf_ads_hooks {
	void (*connected)(void *ctx, const Envoy__Config__Core__V3__Node *node);
	void (*gone)(void *ctx, const Envoy__Config__Core__V3__Node *node);
	void *ctx;
};

/* hooks: copied; NULL for none. */
struct wf_ads *wf_ads_new(struct wf_xds_cache *cache, const struct wf_ads_hooks *hooks);
/* Free the server (streams must be freed first). */
void wf_ads_free(struct wf_ads *a);

struct wf_ads_stream *wf_ads_stream_new(struct wf_ads *a, int delta, const char *peer, const struct wf_ads_io *io);
/* One request (a serialized DiscoveryRequest, or DeltaDiscoveryRequest on a delta stream).
 * 0, or a gRPC status (>0) with err saying why: the stream must end with it. */
int wf_ads_stream_recv(struct wf_ads_stream *s, const uint8_t *p, size_t n, char *err, size_t errlen);
/* The client can take more: a push held back goes on. */
void wf_ads_stream_writable(struct wf_ads_stream *s);
void wf_ads_stream_free(struct wf_ads_stream *s);
/* Status of a stream's type (for tests). */
int wf_ads_stream_status(const struct wf_ads_stream *s, int type);
const char *wf_ads_stream_nack(const struct wf_ads_stream *s, int type);

/* The cache's content changed (after wf_xds_cache_invalidate): every stream is due to get
 * what changed of what it subscribed to. The work is done by wf_ads_pump, stream after stream
 * in the order they became due, in slices: a push to thousands of streams neither stalls the
 * loop until the last one is served nor queues every stream's copy of a large resource at
 * once (the memory that takes is bounded by the budget: bytes sent and not yet taken by the
 * clients, over all streams). */
void wf_ads_push(struct wf_ads *a);
#define WF_ADS_PUSH_BUDGET (32u * 1024 * 1024)
void wf_ads_set_budget(struct wf_ads *a, size_t bytes);
/* Serve due streams for at most slice_us: 0 when none is left; WF_ADS_PUMP_MORE when the
 * slice ended (call again on the next loop iteration); WF_ADS_PUMP_DRAIN when the budget is
 * spent (call again once the clients had time to read: a few ms). */
enum { WF_ADS_PUMP_MORE = 1, WF_ADS_PUMP_DRAIN = 2 };
int wf_ads_pump(struct wf_ads *a, uint64_t slice_us);
uint32_t wf_ads_streams(const struct wf_ads *a);

/* The connected proxies and each type's status, as a JSON array (the admin's /debug/syncz):
 * [{"proxy": ID, "cluster": C, "peer": ADDR, "api": "sotw"|"delta",
 *   "CDS": {"status": "SYNCED", "sent": V, "acked": V, "nack": MSG}, ...}]. 0 or -ENOMEM. */
int wf_ads_syncz(const struct wf_ads *a, struct wf_jbuf *b);

#endif
