/* The xDS client's protocol state machine (see ads.h).
 *
 * Per resource type a subscription: the names asked for (wildcard for LDS and CDS), the last
 * nonce received, and whether it was asked for on this stream. Order, as Envoy's: CDS first;
 * EDS for the EDS clusters CDS brought; LDS once those clusters are warm (their endpoints
 * came, or initial_fetch_timeout passed); RDS for the route configurations the listeners name.
 *
 * Every response becomes a candidate resource set (the accepted one, with the response's
 * resources put or removed) that the owner compiles: accepted, it replaces the current set
 * and is ACKed (version_info and nonce of the response); refused, it is dropped and NACKed
 * (the previous version_info, the nonce, error_detail {code: 3, message: the error}).
 * A response whose resources are byte-for-byte those already held is ACKed without a
 * recompile. */
#include "proxy/ads.h"

#include "core/log.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "http/grpc.h"
#include "proxy/ads_set.h"
#include "proxy/config.h"
#include "proxy/grpc_stream.h"
#include "proxy/stats.h"
#include "proxy/worker.h"
#include "xds/cfgdoc.h"
#include "xds/registry.h"
#include "core/hash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef Envoy__Service__Discovery__V3__DiscoveryRequest Request;
typedef Envoy__Service__Discovery__V3__DiscoveryResponse Response;
typedef Envoy__Service__Discovery__V3__DeltaDiscoveryRequest DeltaRequest;
typedef Envoy__Service__Discovery__V3__DeltaDiscoveryResponse DeltaResponse;
typedef Envoy__Config__Core__V3__Node Node;

#define BACKOFF_BASE_MS 500
#define BACKOFF_CAP_MS 30000

/* A resource asked for and not received yet: when its initial_fetch_timeout ends. */
struct wait {
	char *name;                        /* "*" for the first LDS or CDS response */
	uint64_t deadline;
};

struct sub {
	char **names; uint32_t n;          /* RDS, EDS: the names asked for; LDS, CDS: wildcard */
	struct wait *waits; uint32_t n_waits;
	char *nonce;                       /* of the last response */
	uint8_t wanted;                    /* to be asked for on this stream */
	uint8_t asked;                     /* asked for on this stream */
	uint8_t answered;                  /* a response was accepted (ever) */
};

static struct {
	struct wf_loop *loop;
	const struct wf_ads_ops *ops;
	void *ctx;
	char *cluster, *authority;
	uint8_t delta, lds, cds, node_first_only, on;
	uint64_t lds_timeout_ms, cds_timeout_ms;
	Node *node;
	struct wf_xds_set *set;            /* accepted resources */
	struct sub sub[WF_XDS_NTYPES];
	struct wf_grpc_stream *st;
	struct wf_snapshot *st_snap;       /* keeps the xDS cluster alive for the stream */
	uint8_t ready, node_sent;
	uint32_t failures;                 /* consecutive attempts without a response */
	uint32_t host_rr;
	struct wf_timer retry;
	struct wf_timer warm;              /* initial_fetch_timeout of EDS (then LDS) and RDS */
	uint8_t initialized;               /* the first config came (or timed out): /ready */
	struct wf_ads_rejection rej[WF_XDS_NTYPES];
	uint32_t st_connected;
	struct wf_stats_rec held;          /* the per-resource update counters of what is configured */
} A;

/* Jitter: proxies that lost the same server at the same moment retry at different times. */
static uint64_t rnd(void)
{
	uint64_t now = wf_now_us();
	return wf_xxh64(&now, sizeof(now), (uint64_t)getpid() ^ A.failures);
}

uint64_t wf_ads_backoff_ms(uint32_t n, uint64_t r)
{
	uint64_t hi = BACKOFF_BASE_MS;
	for (uint32_t i = 1; i < n && hi < BACKOFF_CAP_MS; i++)
		hi *= 2;
	if (hi > BACKOFF_CAP_MS)
		hi = BACKOFF_CAP_MS;
	return BACKOFF_BASE_MS + (hi > BACKOFF_BASE_MS ? r % (hi - BACKOFF_BASE_MS + 1) : 0);
}

const struct wf_xds_set *wf_ads_resources(void) { return A.set; }

const struct wf_ads_rejection *wf_ads_rejected(int t)
{
	return t >= 0 && t < WF_XDS_NTYPES && A.rej[t].details ? &A.rej[t] : NULL;
}

static void rejection_clear(enum wf_xds_type t)
{
	free(A.rej[t].name);
	free(A.rej[t].version);
	free(A.rej[t].details);
	memset(&A.rej[t], 0, sizeof(A.rej[t]));
}

/* Remember a NACK; the resource is the one the error names ("xds:TYPE/NAME: ..."). */
static void rejection_set(enum wf_xds_type t, const char *version, const char *err)
{
	rejection_clear(t);
	char prefix[64];
	int pl = snprintf(prefix, sizeof(prefix), "xds:%s/", wf_xds_type_name[t]);
	const char *end = !strncmp(err, prefix, (size_t)pl) ? strstr(err + pl, ": ") : NULL;
	A.rej[t].name = end ? strndup(err + pl, (size_t)(end - err - pl)) : strdup("");
	A.rej[t].version = strdup(version ? version : "");
	A.rej[t].details = strdup(err);
	A.rej[t].wall_s = (uint64_t)time(NULL);
}

/* ---- names the resources ask for ----------------------------------------------------------- */

static int has_name(char **v, uint32_t n, const char *s)
{
	for (uint32_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return 1;
	return 0;
}

static void add_name(char ***v, uint32_t *n, const char *s)
{
	if (has_name(*v, *n, s))
		return;
	*v = realloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = strdup(s);
}

static void free_names(char **v, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* The RDS or EDS names that the bootstrap's static resources and the xDS ones use. */
static void wanted_names(enum wf_xds_type t, char ***v, uint32_t *n)
{
	struct wf_snapshot *s = wf_snapshot_acquire();
	struct wf_xds_use *u;
	uint32_t nu = wf_xds_uses(s ? s->doc : NULL, A.set, t, &u);
	*v = NULL;
	*n = 0;
	for (uint32_t i = 0; i < nu; i++)
		add_name(v, n, u[i].name);
	wf_xds_uses_free(u, nu);
	wf_snapshot_release(s);
}

/* ---- requests ------------------------------------------------------------------------------ */

static void send_msg(const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len + 1);
	protobuf_c_message_pack(m, buf);
	if (wf_grpc_stream_send(A.st, buf, len) < 0)
		wf_debug("xDS: a request could not be queued (the stream is ending)");
	free(buf);
}

static Node *node_for_request(void)
{
	if (A.node_first_only && A.node_sent)
		return NULL;
	A.node_sent = 1;
	return A.node;
}

/* A SotW request for type t: the subscription's names, the accepted version and the last
 * nonce; with error_detail when NACKing. */
static void send_sotw(enum wf_xds_type t, const char *version, const char *error)
{
	struct sub *u = &A.sub[t];
	Request rq = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	rq.node = node_for_request();
	rq.type_url = (char *)wf_xds_type_url[t];
	rq.version_info = (char *)(version ? version : "");
	rq.response_nonce = u->nonce ? u->nonce : "";
	if (t == WF_XDS_RDS || t == WF_XDS_EDS) {
		rq.resource_names = u->names;
		rq.n_resource_names = u->n;
	}
	if (error) {
		st.code = WF_GRPC_INVALID_ARGUMENT;
		st.message = (char *)error;
		rq.error_detail = &st;
	}
	send_msg(&rq.base);
}

/* A delta request: subscribe/unsubscribe lists (the first one of a stream also carries the
 * versions held: initial_resource_versions), or an ACK/NACK of the last response. */
static void send_delta(enum wf_xds_type t, char **sub, uint32_t n_sub, char **unsub, uint32_t n_unsub, int first,
                       const char *error)
{
	struct sub *u = &A.sub[t];
	DeltaRequest rq = ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	rq.node = node_for_request();
	rq.type_url = (char *)wf_xds_type_url[t];
	rq.resource_names_subscribe = sub;
	rq.n_resource_names_subscribe = n_sub;
	rq.resource_names_unsubscribe = unsub;
	rq.n_resource_names_unsubscribe = n_unsub;
	rq.response_nonce = !first && u->nonce ? u->nonce : "";
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry *ents = NULL, **eptr = NULL;
	uint32_t n = first ? A.set->n[t] : 0;
	if (n) {
		ents = calloc(n, sizeof(*ents));
		eptr = calloc(n, sizeof(*eptr));
		for (uint32_t i = 0; i < n; i++) {
			envoy__service__discovery__v3__delta_discovery_request__initial_resource_versions_entry__init(&ents[i]);
			ents[i].key = A.set->res[t][i].name;
			ents[i].value = A.set->res[t][i].version;
			eptr[i] = &ents[i];
		}
		rq.initial_resource_versions = eptr;
		rq.n_initial_resource_versions = n;
	}
	if (error) {
		st.code = WF_GRPC_INVALID_ARGUMENT;
		st.message = (char *)error;
		rq.error_detail = &st;
	}
	send_msg(&rq.base);
	free(ents);
	free(eptr);
}

/* Start the initial_fetch_timeout of a resource being asked for (once; connected or not, as
 * Envoy's): cds_config's for clusters and endpoints, lds_config's for listeners and routes. */
static void wait_for(enum wf_xds_type t, const char *name)
{
	struct sub *u = &A.sub[t];
	int wildcard = t == WF_XDS_CDS || t == WF_XDS_LDS;
	uint64_t timeout = t == WF_XDS_CDS || t == WF_XDS_EDS ? A.cds_timeout_ms : A.lds_timeout_ms;
	if (!timeout) /* initial_fetch_timeout: 0s: wait for ever */
		return;
	if ((wildcard ? u->answered : wf_xds_set_find(A.set, t, name) != NULL) || wf_xds_set_timed_out(A.set, t, name))
		return;
	for (uint32_t i = 0; i < u->n_waits; i++)
		if (!strcmp(u->waits[i].name, name))
			return;
	u->waits = realloc(u->waits, (u->n_waits + 1) * sizeof(*u->waits));
	u->waits[u->n_waits++] = (struct wait){strdup(name), wf_loop_now(A.loop) + timeout};
}

/* Ask for type t (its first request on this stream, once connected). */
static void subscribe(enum wf_xds_type t)
{
	struct sub *u = &A.sub[t];
	u->wanted = 1;
	if (t == WF_XDS_CDS || t == WF_XDS_LDS)
		wait_for(t, "*");
	for (uint32_t i = 0; i < u->n; i++)
		wait_for(t, u->names[i]);
	if (!A.ready)
		return;
	if (!A.delta) {
		send_sotw(t, A.set->version[t], NULL);
	} else if (!u->asked) {
		send_delta(t, u->names, u->n, NULL, 0, 1, NULL);
	}
	u->asked = 1;
}

/* Recompute the RDS or EDS names; when they changed, ask again (SotW: the whole list;
 * delta: what was added and what was dropped). */
static void resubscribe(enum wf_xds_type t)
{
	struct sub *u = &A.sub[t];
	char **v;
	uint32_t n;
	wanted_names(t, &v, &n);
	char **add = NULL, **drop = NULL;
	uint32_t n_add = 0, n_drop = 0;
	for (uint32_t i = 0; i < n; i++)
		if (!has_name(u->names, u->n, v[i]))
			add_name(&add, &n_add, v[i]);
	for (uint32_t i = 0; i < u->n; i++)
		if (!has_name(v, n, u->names[i]))
			add_name(&drop, &n_drop, u->names[i]);
	int changed = n_add || n_drop;
	free_names(u->names, u->n);
	u->names = v;
	u->n = n;
	for (uint32_t i = 0; u->wanted && i < n_add; i++)
		wait_for(t, add[i]);
	if (changed && u->asked) {
		if (A.delta)
			send_delta(t, add, n_add, drop, n_drop, 0, NULL);
		else
			send_sotw(t, A.set->version[t], NULL);
	} else if (changed && n) {
		subscribe(t);
	}
	/* what nothing uses any more is forgotten, as Envoy does (the compiled config does not
	 * change: nothing named it) */
	struct wf_xds_set *next = NULL;
	for (uint32_t i = 0; i < n_drop; i++)
		if (wf_xds_set_find(A.set, t, drop[i])) {
			if (!next)
				next = wf_xds_set_copy(A.set);
			wf_xds_set_remove(next, t, drop[i]);
		}
	if (next) {
		wf_xds_set_unref(A.set);
		A.set = next;
	}
	free_names(add, n_add);
	free_names(drop, n_drop);
}

/* Every name asked for of type t came or timed out. */
static int all_came(enum wf_xds_type t)
{
	const struct sub *u = &A.sub[t];
	for (uint32_t i = 0; i < u->n; i++)
		if (!wf_xds_set_find(A.set, t, u->names[i]) && !wf_xds_set_timed_out(A.set, t, u->names[i]))
			return 0;
	return 1;
}

static int clusters_warm(void);

int wf_ads_initialized(void)
{
	if (!A.on || A.initialized)
		return 1;
	if (!clusters_warm() || (A.lds && !A.sub[WF_XDS_LDS].answered && !wf_xds_set_timed_out(A.set, WF_XDS_LDS, "*")) ||
	    !all_came(WF_XDS_RDS))
		return 0;
	A.initialized = 1;
	wf_info("xDS: initial configuration %s", A.sub[WF_XDS_LDS].answered ? "received" : "timed out, going on without it");
	return 1;
}

/* LDS waits for the clusters to be warm: every EDS name answered, or its timeout passed. */
static int clusters_warm(void)
{
	if (A.cds && !A.sub[WF_XDS_CDS].answered && !wf_xds_set_timed_out(A.set, WF_XDS_CDS, "*"))
		return 0;
	return all_came(WF_XDS_EDS);
}

static void maybe_lds(void)
{
	if (A.lds && !A.sub[WF_XDS_LDS].wanted && clusters_warm())
		subscribe(WF_XDS_LDS);
}

/* ---- applying a response ------------------------------------------------------------------- */

/* A response being applied. */
struct update {
	enum wf_xds_type t;
	struct wf_xds_set *next;           /* the candidate set */
	int changed, bad;                  /* bad: it did not decode */
	char **names; uint32_t n;          /* the resources it carries */
	char err[2048];
};

/* The per-resource counter `what` of a use: http.<stat_prefix>.rds.<name>.<what> for a
 * connection manager that uses a route configuration, cluster.<name>.<what> for a cluster
 * that uses an assignment. A registration: the caller gives it back. */
static uint32_t use_stat(enum wf_xds_type t, const struct wf_xds_use *use, const char *what)
{
	if (t != WF_XDS_RDS)
		return wf_stat_register(WF_STAT_COUNTER, "cluster", use->scope, what);
	char stat[512];
	snprintf(stat, sizeof(stat), "rds.%s.%s", use->name, what);
	/* the name becomes part of a Prometheus metric name: only [A-Za-z0-9_] survive there */
	for (char *p = stat + 4; *p && p < stat + 4 + strlen(use->name); p++)
		if (!(*p == '_' || *p == '-' || *p == '.' || (*p >= '0' && *p <= '9') || ((*p | 32) >= 'a' && (*p | 32) <= 'z')))
			*p = '_';
	return wf_stat_register(WF_STAT_COUNTER, "http", use->scope, stat);
}

static const char *const UPDATE_STATS[] = {"update_attempt", "update_success", "update_rejected"};

/* Hold the per-resource counters of every use the config and the accepted resources have now,
 * and give back those of uses that went: a cluster or a connection manager that leaves takes
 * its counters along, as its other stats go with its config. */
static void hold_update_stats(void)
{
	struct wf_stats_rec now = {0};
	struct wf_snapshot *s = wf_snapshot_acquire();
	wf_stats_record(&now);
	static const enum wf_xds_type per_resource[] = {WF_XDS_EDS, WF_XDS_RDS};
	for (int j = 0; j < 2; j++) {
		enum wf_xds_type t = per_resource[j];
		struct wf_xds_use *us;
		uint32_t n = wf_xds_uses(s ? s->doc : NULL, A.set, t, &us);
		for (uint32_t i = 0; i < n; i++)
			for (size_t k = 0; k < sizeof(UPDATE_STATS) / sizeof(UPDATE_STATS[0]); k++)
				use_stat(t, &us[i], UPDATE_STATS[k]);
		wf_xds_uses_free(us, n);
	}
	wf_stats_record(NULL);
	wf_snapshot_release(s);
	wf_stats_rec_release(&A.held);
	A.held = now;
}

/* Count an update (what: "update_attempt", "update_success", "update_rejected") as Envoy does:
 * cluster_manager.cds.* and listener_manager.lds.* for the wildcard types; per resource
 * http.<stat_prefix>.rds.<name>.* for each connection manager that uses a route configuration,
 * cluster.<name>.* for each cluster that uses an assignment (held by hold_update_stats). */
static void count(const struct update *u, const char *what)
{
	if (u->t == WF_XDS_CDS || u->t == WF_XDS_LDS) {
		char stat[64];
		snprintf(stat, sizeof(stat), "%s.%s", u->t == WF_XDS_CDS ? "cds" : "lds", what);
		wf_stat_inc(wf_stat_register(WF_STAT_COUNTER, u->t == WF_XDS_CDS ? "cluster_manager" : "listener_manager",
		                             NULL, stat));
		return;
	}
	struct wf_snapshot *s = wf_snapshot_acquire();
	struct wf_xds_use *us;
	uint32_t n = wf_xds_uses(s ? s->doc : NULL, A.set, u->t, &us);
	for (uint32_t i = 0; i < n; i++) {
		if (!has_name(u->names, u->n, us[i].name))
			continue;
		uint32_t idx = use_stat(u->t, &us[i], what);
		wf_stat_inc(idx);
		wf_stat_release(idx);
	}
	wf_xds_uses_free(us, n);
	wf_snapshot_release(s);
}

/* Offer the candidate set to the owner. 0 when accepted (it becomes the current set), -1 with
 * u->err when refused (it is dropped). Nothing changed but versions: nothing to compile. */
static int offer(struct update *u)
{
	enum wf_xds_type t = u->t;
	struct wf_xds_set *next = u->next;
	u->next = NULL;
	if (u->changed && A.ops->apply(A.ctx, next, u->err, sizeof(u->err)) < 0) {
		wf_xds_set_unref(next);
		return -1;
	}
	wf_xds_set_unref(A.set);
	A.set = next;
	A.sub[t].answered = 1;
	return 0;
}

/* What an accepted response leads to: new RDS/EDS names, LDS once clusters are warm. */
static void after_accept(enum wf_xds_type t)
{
	if (t == WF_XDS_CDS)
		resubscribe(WF_XDS_EDS);
	if (t == WF_XDS_LDS)
		resubscribe(WF_XDS_RDS);
	maybe_lds();
}

/* Put one received resource (`any`, of type t) into `next`; one that is byte for byte the
 * resource held only has its version updated, and an RDS or EDS resource that was not asked
 * for is ignored (as Envoy does). envelope: the name a delta Resource gives it, or NULL.
 * 1 when it changed, 0 when not, -1 with err; *name is its name (malloc'd) unless -1. */
static int take(struct wf_xds_set *next, enum wf_xds_type t, const Google__Protobuf__Any *any, const char *version,
                const char *envelope, char **name, char *err, size_t errlen)
{
	if (!any || wf_xds_type_of(any->type_url) != (int)t) {
		snprintf(err, errlen, "a resource of type '%s' in a %s response", any && any->type_url ? any->type_url : "",
		         wf_xds_type_name[t]);
		return -1;
	}
	uint64_t h = wf_xxh64(any->value.data, any->value.len, 0);
	struct wf_cfgdoc *doc = wf_xds_decode(t, any->value.data, any->value.len, name, err, errlen);
	if (!doc)
		return -1;
	if (envelope && *envelope && strcmp(envelope, *name)) {
		snprintf(err, errlen, "xds:%s/%s: the resource is named '%s' in its envelope", wf_xds_type_name[t], *name,
		         envelope);
		wf_cfgdoc_free(doc);
		free(*name);
		return -1;
	}
	if ((t == WF_XDS_RDS || t == WF_XDS_EDS) && !has_name(A.sub[t].names, A.sub[t].n, *name)) {
		wf_debug("xDS: %s '%s' was not asked for: ignored", wf_xds_type_name[t], *name);
		wf_cfgdoc_free(doc);
		return 0;
	}
	struct wf_xds_res *old = (struct wf_xds_res *)wf_xds_set_find(next, t, *name);
	if (old && old->hash == h) {
		free(old->version);
		old->version = strdup(version ? version : "");
		wf_cfgdoc_free(doc);
		return 0;
	}
	wf_xds_set_put(next, t, *name, version, doc, h);
	return 1;
}

/* A response of type_url came: its type (or -1: ignored), its nonce kept for the reply. */
static int response_type(const char *type_url, const char *nonce)
{
	int t = wf_xds_type_of(type_url);
	if (t < 0) {
		wf_warn("xDS: a response of type '%s', which was not asked for: ignored", type_url);
		return -1;
	}
	free(A.sub[t].nonce);
	A.sub[t].nonce = strdup(nonce ? nonce : "");
	return t;
}

/* ACK the update (accepted) or NACK it (it did not decode, or the owner refused it); version:
 * the response's. Frees what the update holds. */
static void reply(struct update *u, const char *version)
{
	enum wf_xds_type t = u->t;
	hold_update_stats(); /* the uses so far: a cluster that came with the last CDS is one */
	count(u, "update_attempt");
	if (!u->bad) {
		free(u->next->version[t]);
		u->next->version[t] = strdup(version ? version : "");
		u->next->updated_wall_s[t] = (uint64_t)time(NULL);
	}
	int ok = !u->bad && offer(u) == 0;
	wf_xds_set_unref(u->next);
	count(u, ok ? "update_success" : "update_rejected");
	hold_update_stats(); /* and those the update took away go */
	free_names(u->names, u->n);
	if (!ok) {
		wf_error("xDS: %s version '%s' rejected (NACK), the previous config keeps serving: %s", wf_xds_type_name[t],
		         version ? version : "", u->err);
		rejection_set(t, version, u->err);
		if (A.delta)
			send_delta(t, NULL, 0, NULL, 0, 0, u->err);
		else
			send_sotw(t, A.set->version[t], u->err);
		return;
	}
	wf_info("xDS: %s version '%s' accepted (%u resources)%s", wf_xds_type_name[t], A.set->version[t], A.set->n[t],
	        u->changed ? "" : ", unchanged");
	rejection_clear(t);
	if (A.delta)
		send_delta(t, NULL, 0, NULL, 0, 0, NULL);
	else
		send_sotw(t, A.set->version[t], NULL);
	after_accept(t);
}

static void on_sotw(const Response *r)
{
	int t = response_type(r->type_url, r->nonce);
	if (t < 0)
		return;
	struct update u = {.t = t, .next = wf_xds_set_copy(A.set)};
	for (size_t i = 0; i < r->n_resources && !u.bad; i++) {
		char *name;
		int k = take(u.next, t, r->resources[i], r->version_info, NULL, &name, u.err, sizeof(u.err));
		if (k < 0) {
			u.bad = 1;
			break;
		}
		u.changed |= k;
		if (has_name(u.names, u.n, name)) {
			snprintf(u.err, sizeof(u.err), "xds:%s/%s: the resource is in the response twice", wf_xds_type_name[t],
			         name);
			u.bad = 1;
		}
		add_name(&u.names, &u.n, name);
		free(name);
	}
	/* LDS and CDS are the state of the world: what the response lacks is gone */
	if (!u.bad && (t == WF_XDS_LDS || t == WF_XDS_CDS))
		for (uint32_t i = u.next->n[t]; i-- > 0;)
			if (!has_name(u.names, u.n, u.next->res[t][i].name)) {
				wf_xds_set_remove(u.next, t, u.next->res[t][i].name);
				u.changed = 1;
			}
	reply(&u, r->version_info);
}

static void on_delta(const DeltaResponse *r)
{
	int t = response_type(r->type_url, r->nonce);
	if (t < 0)
		return;
	struct update u = {.t = t, .next = wf_xds_set_copy(A.set)};
	for (size_t i = 0; i < r->n_resources && !u.bad; i++) {
		const Envoy__Service__Discovery__V3__Resource *res = r->resources[i];
		char *name;
		int k = take(u.next, t, res->resource, res->version, res->name, &name, u.err, sizeof(u.err));
		if (k < 0) {
			u.bad = 1;
			break;
		}
		u.changed |= k;
		add_name(&u.names, &u.n, name);
		free(name);
	}
	for (size_t i = 0; !u.bad && i < r->n_removed_resources; i++)
		u.changed |= wf_xds_set_remove(u.next, t, r->removed_resources[i]);
	reply(&u, r->system_version_info);
}

/* ---- the stream ---------------------------------------------------------------------------- */

static void connect_stream(void);

static void on_retry(struct wf_loop *loop, struct wf_timer *t) { connect_stream(); }

/* initial_fetch_timeout: a resource still missing when its time is up counts as empty (and
 * LDS is asked for even if no clusters came), so that what waits for it goes on. Runs every
 * 100 ms while the client runs. */
static void on_warm(struct wf_loop *loop, struct wf_timer *tm)
{
	uint64_t now = wf_loop_now(loop);
	struct wf_xds_set *next = NULL;
	for (int t = 0; t < WF_XDS_NTYPES; t++) {
		struct sub *u = &A.sub[t];
		for (uint32_t i = u->n_waits; i-- > 0;) {
			struct wait *w = &u->waits[i];
			int wildcard = t == WF_XDS_CDS || t == WF_XDS_LDS;
			int came = wildcard ? u->answered : wf_xds_set_find(A.set, t, w->name) != NULL;
			if (!came && now < w->deadline)
				continue;
			if (!came) {
				if (!next)
					next = wf_xds_set_copy(A.set);
				wf_xds_set_time_out(next, t, w->name);
				wf_warn("xDS: %s%s%s not received within initial_fetch_timeout: %s", wf_xds_type_name[t],
				        wildcard ? "s" : " ", wildcard ? "" : w->name,
				        t == WF_XDS_EDS ? "its clusters start with no endpoints"
				        : t == WF_XDS_RDS ? "its listeners start with no routes"
				        : t == WF_XDS_CDS ? "asking for listeners anyway" : "going on without them");
			}
			free(w->name);
			*w = u->waits[--u->n_waits];
		}
	}
	if (next) {
		/* kept even if it does not compile (the config served stays): what timed out did */
		char err[2048];
		if (A.ops->apply(A.ctx, next, err, sizeof(err)) < 0)
			wf_error("xDS: after initial_fetch_timeout: %s", err);
		wf_xds_set_unref(A.set);
		A.set = next;
		maybe_lds();
	}
	wf_timer_set(loop, tm, 100);
}

static void on_ready(void *ctx)
{
	A.ready = 1;
	A.node_sent = 0;
	wf_stat_set(A.st_connected, 1);
	wf_info("xDS: connected to cluster '%s' (%s)", A.cluster, A.delta ? "delta ADS" : "ADS");
	/* what was asked for before is asked for again, with what is held; nonces belong to the
	 * stream that sent them (a server would take an old one for a stale request) */
	for (int t = 0; t < WF_XDS_NTYPES; t++) {
		A.sub[t].asked = 0;
		free(A.sub[t].nonce);
		A.sub[t].nonce = NULL;
	}
	if (A.cds)
		subscribe(WF_XDS_CDS);
	if (A.sub[WF_XDS_EDS].n)
		subscribe(WF_XDS_EDS);
	if (A.sub[WF_XDS_LDS].wanted)
		subscribe(WF_XDS_LDS);
	else
		maybe_lds();
	if (A.sub[WF_XDS_RDS].n)
		subscribe(WF_XDS_RDS);
}

static int on_message(void *ctx, const uint8_t *p, size_t n)
{
	A.failures = 0; /* the server answers: the next failure starts the backoff over */
	if (A.delta) {
		DeltaResponse *r = (DeltaResponse *)protobuf_c_message_unpack(
		    &envoy__service__discovery__v3__delta_discovery_response__descriptor, NULL, n, p);
		if (!r) {
			wf_error("xDS: a DeltaDiscoveryResponse that does not decode: ignored");
			return 0;
		}
		on_delta(r);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	} else {
		Response *r = (Response *)protobuf_c_message_unpack(&envoy__service__discovery__v3__discovery_response__descriptor,
		                                                    NULL, n, p);
		if (!r) {
			wf_error("xDS: a DiscoveryResponse that does not decode: ignored");
			return 0;
		}
		on_sotw(r);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	return 0;
}

static void schedule_retry(const char *why)
{
	A.failures++;
	uint64_t ms = wf_ads_backoff_ms(A.failures, rnd());
	wf_warn("xDS: stream to cluster '%s': %s; the last config keeps serving; retrying in %llu ms", A.cluster, why,
	        (unsigned long long)ms);
	wf_timer_set(A.loop, &A.retry, ms);
}

static void stream_gone(void)
{
	A.st = NULL;
	A.ready = 0;
	wf_stat_set(A.st_connected, 0);
	wf_snapshot_release(A.st_snap);
	A.st_snap = NULL;
}

static void on_closed(void *ctx, int status, const char *why)
{
	stream_gone();
	if (A.on)
		schedule_retry(why);
}

static const struct wf_grpc_stream_ops stream_ops = {
	.ready = on_ready,
	.message = on_message,
	.closed = on_closed,
};

static void connect_stream(void)
{
	if (!A.on || A.st)
		return;
	struct wf_snapshot *s = wf_snapshot_acquire();
	struct wf_cluster *cl = s ? wf_snapshot_cluster(s, A.cluster) : NULL;
	if (!cl || !cl->n_hosts) {
		wf_snapshot_release(s);
		schedule_retry(cl ? "has no hosts" : "is not in the config");
		return;
	}
	const struct wf_host *h = &cl->hosts[A.host_rr++ % cl->n_hosts];
	const char *path = A.delta ? "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
	                           : "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
	A.st = wf_grpc_stream_open(A.loop, cl, &h->addr, A.authority, path, &stream_ops, NULL);
	if (!A.st) {
		wf_snapshot_release(s);
		schedule_retry("cannot open a socket");
		return;
	}
	A.st_snap = s;
	wf_debug("xDS: connecting to %s (cluster '%s')", h->addr_str, A.cluster);
}

int wf_ads_start(struct wf_loop *loop, const struct wf_ads_cfg *cfg, const struct wf_ads_ops *ops, void *ctx)
{
	A.loop = loop;
	A.ops = ops;
	A.ctx = ctx;
	A.cluster = strdup(cfg->cluster);
	A.authority = strdup(cfg->authority);
	A.delta = cfg->delta;
	A.lds = cfg->lds;
	A.cds = cfg->cds;
	A.node_first_only = cfg->node_first_only;
	A.lds_timeout_ms = cfg->lds_timeout_ms;
	A.cds_timeout_ms = cfg->cds_timeout_ms;
	A.node = cfg->node ? (Node *)protobuf_c_message_unpack(&envoy__config__core__v3__node__descriptor, NULL,
	                                                        cfg->node_len, cfg->node)
	                   : NULL;
	if (!A.node) {
		A.node = malloc(sizeof(*A.node));
		envoy__config__core__v3__node__init(A.node);
	}
	if (!A.node->user_agent_name || !*A.node->user_agent_name) {
		if (A.node->user_agent_name != protobuf_c_empty_string)
			free(A.node->user_agent_name);
		A.node->user_agent_name = strdup("weft");
	}
	A.set = wf_xds_set_new();
	A.retry.cb = on_retry;
	A.warm.cb = on_warm;
	A.st_connected = wf_stat_register(WF_STAT_GAUGE, "control_plane", NULL, "connected_state");
	A.on = 1;
	/* static listeners may name route configurations, static clusters EDS */
	if (A.cds)
		subscribe(WF_XDS_CDS);
	resubscribe(WF_XDS_EDS);
	resubscribe(WF_XDS_RDS);
	maybe_lds();
	wf_timer_set(loop, &A.warm, 100);
	connect_stream();
	return 0;
}

void wf_ads_stop(void)
{
	if (!A.on)
		return;
	A.on = 0;
	wf_timer_cancel(A.loop, &A.retry);
	wf_timer_cancel(A.loop, &A.warm);
	if (A.st)
		wf_grpc_stream_close(A.st);
	stream_gone();
	for (int t = 0; t < WF_XDS_NTYPES; t++) {
		free_names(A.sub[t].names, A.sub[t].n);
		free(A.sub[t].nonce);
		for (uint32_t i = 0; i < A.sub[t].n_waits; i++)
			free(A.sub[t].waits[i].name);
		free(A.sub[t].waits);
		rejection_clear(t);
	}
	memset(A.sub, 0, sizeof(A.sub));
	wf_xds_set_unref(A.set);
	A.set = NULL;
	wf_stats_rec_release(&A.held);
	protobuf_c_message_free_unpacked(&A.node->base, NULL);
	A.node = NULL;
	free(A.cluster);
	free(A.authority);
}
