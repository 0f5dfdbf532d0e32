/* Unit tests for src/control/ads.c and xds_cache.c: the ADS state machine driven with
 * serialized requests, no network. The generator serves a table of resources; every
 * resource's bytes are a Listener message (name, stat_prefix = a content tag), whatever its
 * type: ADS treats resources as opaque bytes, and the test only needs names and changes. */
#include "test.h"
#include "control/ads.h"
#include "control/xds_cache.h"

#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"

#include "core/log.h"
#include "xds/json.h"
#include "core/hash.h"

#include <stdlib.h>

/* ---- the content: a table, and a generator over it ---------------------------------------------- */

static struct {
	int type;
	char name[32], tag[32];
} R[32];
static unsigned n_res;
static int generated;

static void res_set(int type, const char *name, const char *tag)
{
	for (unsigned i = 0; i < n_res; i++)
		if (R[i].type == type && !strcmp(R[i].name, name)) {
			snprintf(R[i].tag, sizeof(R[i].tag), "%s", tag);
			return;
		}
	R[n_res].type = type;
	snprintf(R[n_res].name, sizeof(R[0].name), "%s", name);
	snprintf(R[n_res].tag, sizeof(R[0].tag), "%s", tag);
	n_res++;
}

static void res_del(int type, const char *name)
{
	for (unsigned i = 0; i < n_res; i++)
		if (R[i].type == type && !strcmp(R[i].name, name)) {
			R[i] = R[--n_res];
			return;
		}
}

static int bulky;               /* resources of 20 KB: the tag, then padding */

static int gen(void *ctx, const Envoy__Config__Core__V3__Node *node, struct wf_xds_cache *c, struct wf_xds_snap *s)
{
	static char big[20000];
	generated++;
	for (unsigned i = 0; i < n_res; i++) {
		Envoy__Config__Listener__V3__Listener l = ENVOY__CONFIG__LISTENER__V3__LISTENER__INIT;
		l.name = R[i].name;
		l.stat_prefix = R[i].tag;
		if (bulky) {
			memset(big, '.', sizeof(big) - 1);
			memcpy(big, R[i].tag, strlen(R[i].tag));
			l.stat_prefix = big;
		}
		if (wf_xds_snap_add(c, s, R[i].type, R[i].name, &l.base) < 0)
			return -1;
	}
	return 0;
}

static int fail_for_cluster_b;   /* the generator fails for proxies of cluster "b" */

static int gen_or_fail(void *ctx, const Envoy__Config__Core__V3__Node *node, struct wf_xds_cache *c,
                       struct wf_xds_snap *s)
{
	if (fail_for_cluster_b && !strcmp(node->cluster, "b"))
		return -1;
	return gen(ctx, node, c, s);
}

/* proxies of one cluster share their content */
static void key_cluster(void *ctx, const Envoy__Config__Core__V3__Node *node, char *out, size_t n)
{
	snprintf(out, n, "%s", node->cluster);
}

static struct wf_xds_generator GEN = {.name = "test", .generate = gen_or_fail};

/* what the hooks heard: "+ID" when a proxy's node arrived, "-ID" when its stream ended */
static char heard[256];
static int generated_when_heard = -1;
static void hook(const char *sign, const Envoy__Config__Core__V3__Node *node)
{
	size_t n = strlen(heard);
	snprintf(heard + n, sizeof(heard) - n, "%s%s%s", n ? " " : "", sign, node->id);
}
static void on_connected(void *ctx, const Envoy__Config__Core__V3__Node *node)
{
	generated_when_heard = generated;
	hook("+", node);
}
static void on_gone(void *ctx, const Envoy__Config__Core__V3__Node *node) { hook("-", node); }
static const struct wf_ads_hooks HOOKS = {.connected = on_connected, .gone = on_gone};

/* ---- a fake transport: responses are decoded and kept ---------------------------------------- */

#define MAXR 16
struct resp {
	int delta;
	char type_url[128], version[32], nonce[32];
	char names[8][32];           /* resources' names (decoded from their bytes) */
	char tags[8][32];
	unsigned n;
	char removed[8][32];
	unsigned n_removed;
	const void *body;            /* sent with a shared body: which (NULL: packed whole) */
};

struct client {
	struct resp r[MAXR];
	unsigned n;
	size_t queued;
	int backlog;                 /* what is sent stays queued (a client that does not read) */
	struct wf_ads_stream *st;
	int delta;
};

static int io_take(struct client *c, const uint8_t *p, size_t n);

static int io_send(void *ctx, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *p = malloc(n ? n : 1);
	if (!p)
		return -1;
	protobuf_c_message_pack(m, p);
	if (((struct client *)ctx)->backlog)
		((struct client *)ctx)->queued += n;
	int rc = io_take(ctx, p, n);
	free(p);
	return rc;
}

/* A response sent as a head and a shared body: what goes on the wire is their concatenation;
 * the body is given back at once (as once sent). */
static int lent_responses;
static int io_send_lent(void *ctx, const ProtobufCMessage *head, const void *body, size_t len, void (*done)(void *),
                        void *arg)
{
	size_t h = protobuf_c_message_get_packed_size(head);
	uint8_t *p = malloc(h + len + 1);
	if (!p)
		return -1;
	protobuf_c_message_pack(head, p);
	memcpy(p + h, body, len);
	if (((struct client *)ctx)->backlog)
		((struct client *)ctx)->queued += h + len;
	int rc = io_take(ctx, p, h + len);
	free(p);
	if (rc == 0)
		((struct client *)ctx)->r[((struct client *)ctx)->n - 1].body = arg;
	lent_responses++;
	done(arg);
	return rc;
}

/* A response as the client reads it. */
static int io_take(struct client *c, const uint8_t *p, size_t n)
{
	if (c->n == MAXR)
		return -1;
	struct resp *r = &c->r[c->n++];
	memset(r, 0, sizeof(*r));
	r->delta = c->delta;
	if (!c->delta) {
		Envoy__Service__Discovery__V3__DiscoveryResponse *m =
			envoy__service__discovery__v3__discovery_response__unpack(NULL, n, p);
		if (!m)
			return -1;
		snprintf(r->type_url, sizeof(r->type_url), "%s", m->type_url);
		snprintf(r->version, sizeof(r->version), "%s", m->version_info);
		snprintf(r->nonce, sizeof(r->nonce), "%s", m->nonce);
		for (size_t i = 0; i < m->n_resources && i < 8; i++) {
			Envoy__Config__Listener__V3__Listener *l = envoy__config__listener__v3__listener__unpack(
				NULL, m->resources[i]->value.len, m->resources[i]->value.data);
			snprintf(r->names[r->n], 32, "%s", l->name);
			snprintf(r->tags[r->n++], 32, "%s", l->stat_prefix);
			envoy__config__listener__v3__listener__free_unpacked(l, NULL);
		}
		envoy__service__discovery__v3__discovery_response__free_unpacked(m, NULL);
		return 0;
	}
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *m =
		envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, n, p);
	if (!m)
		return -1;
	snprintf(r->type_url, sizeof(r->type_url), "%s", m->type_url);
	snprintf(r->version, sizeof(r->version), "%s", m->system_version_info);
	snprintf(r->nonce, sizeof(r->nonce), "%s", m->nonce);
	for (size_t i = 0; i < m->n_resources && i < 8; i++) {
		Envoy__Config__Listener__V3__Listener *l = envoy__config__listener__v3__listener__unpack(
			NULL, m->resources[i]->resource->value.len, m->resources[i]->resource->value.data);
		snprintf(r->names[r->n], 32, "%s", m->resources[i]->name);
		snprintf(r->tags[r->n++], 32, "%s", l->stat_prefix);
		envoy__config__listener__v3__listener__free_unpacked(l, NULL);
	}
	for (size_t i = 0; i < m->n_removed_resources && i < 8; i++)
		snprintf(r->removed[r->n_removed++], 32, "%s", m->removed_resources[i]);
	envoy__service__discovery__v3__delta_discovery_response__free_unpacked(m, NULL);
	return 0;
}

static size_t io_queued(void *ctx) { return ((struct client *)ctx)->queued; }

static struct wf_xds_cache *cache;
static struct wf_ads *ads;

static void setup(void)
{
	wf_log_level = WF_LOG_OFF;
	n_res = 0;
	generated = 0;
	res_set(WF_XDS_CDS, "c1", "a");
	res_set(WF_XDS_CDS, "c2", "a");
	res_set(WF_XDS_EDS, "c1", "a");
	res_set(WF_XDS_EDS, "c2", "a");
	res_set(WF_XDS_LDS, "l1", "a");
	res_set(WF_XDS_RDS, "r1", "a");
	res_set(WF_XDS_RDS, "r2", "a");
	cache = wf_xds_cache_new(&GEN, 1);
	ads = wf_ads_new(cache, &HOOKS);
}

static void teardown(struct client *a, struct client *b)
{
	if (a)
		wf_ads_stream_free(a->st);
	if (b)
		wf_ads_stream_free(b->st);
	wf_ads_free(ads);
	wf_xds_cache_free(cache);
}

static void open_client(struct client *c, int delta)
{
	memset(c, 0, sizeof(*c));
	c->delta = delta;
	struct wf_ads_io io = {.send = io_send, .send_lent = io_send_lent, .queued = io_queued, .ctx = c};
	c->st = wf_ads_stream_new(ads, delta, "127.0.0.1:1", &io);
}

static void change(void)
{
	wf_xds_cache_invalidate(cache);
	wf_ads_push(ads);
	CHECK_EQ(wf_ads_pump(ads, UINT64_MAX), 0);
}

/* A SotW request: names NULL-terminated; nack: error_detail's message (NULL: none). The
 * gRPC status the stream would end with (0: none). */
static int sotw(struct client *c, int type, const char *const *names, const char *nonce, const char *version,
                const char *nack, const char *node_id)
{
	Envoy__Service__Discovery__V3__DiscoveryRequest q = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
	Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	char idbuf[64], *at;
	snprintf(idbuf, sizeof(idbuf), "%s", node_id ? node_id : "proxy-1");
	node.id = idbuf;
	node.cluster = "app";
	if ((at = strchr(idbuf, '@'))) { /* "id@cluster" */
		*at = 0;
		node.cluster = at + 1;
	}
	q.node = &node;
	q.type_url = (char *)wf_xds_type_url[type];
	size_t n = 0;
	while (names && names[n])
		n++;
	q.n_resource_names = n;
	q.resource_names = (char **)names;
	q.response_nonce = (char *)(nonce ? nonce : "");
	q.version_info = (char *)(version ? version : "");
	if (nack) {
		st.code = 3;
		st.message = (char *)nack;
		q.error_detail = &st;
	}
	uint8_t buf[4096];
	size_t len = envoy__service__discovery__v3__discovery_request__pack(&q, buf);
	char err[256];
	return wf_ads_stream_recv(c->st, buf, len, err, sizeof(err));
}

static int delta(struct client *c, int type, const char *const *sub, const char *const *unsub, const char *nonce,
                 const char *nack, const char *init_name, const char *init_version)
{
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest q = ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
	Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry e =
		ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INITIAL_RESOURCE_VERSIONS_ENTRY__INIT;
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry *ep = &e;
	node.id = "proxy-d";
	q.node = &node;
	q.type_url = (char *)wf_xds_type_url[type];
	size_t n = 0;
	while (sub && sub[n])
		n++;
	q.n_resource_names_subscribe = n;
	q.resource_names_subscribe = (char **)sub;
	n = 0;
	while (unsub && unsub[n])
		n++;
	q.n_resource_names_unsubscribe = n;
	q.resource_names_unsubscribe = (char **)unsub;
	q.response_nonce = (char *)(nonce ? nonce : "");
	if (nack) {
		st.message = (char *)nack;
		q.error_detail = &st;
	}
	if (init_name) {
		e.key = (char *)init_name;
		e.value = (char *)init_version;
		q.n_initial_resource_versions = 1;
		q.initial_resource_versions = &ep;
	}
	uint8_t buf[4096];
	size_t len = envoy__service__discovery__v3__delta_discovery_request__pack(&q, buf);
	char err[256];
	return wf_ads_stream_recv(c->st, buf, len, err, sizeof(err));
}

static const struct resp *last(const struct client *c) { return c->n ? &c->r[c->n - 1] : NULL; }

/* ---- state of the world ------------------------------------------------------------------------ */

TEST(sotw_wildcard_cds_lds)
{
	struct client c;
	setup();
	open_client(&c, 0);
	CHECK_EQ(wf_ads_stream_status(c.st, WF_XDS_CDS), WF_ADS_NOT_SENT);
	CHECK_EQ(sotw(&c, WF_XDS_CDS, NULL, NULL, NULL, NULL, NULL), 0);
	CHECK_EQ(c.n, 1);
	CHECK(!strcmp(last(&c)->type_url, "type.googleapis.com/envoy.config.cluster.v3.Cluster"));
	CHECK_EQ(last(&c)->n, 2);
	CHECK(!strcmp(last(&c)->names[0], "c1") && !strcmp(last(&c)->names[1], "c2"));
	CHECK_EQ(wf_ads_stream_status(c.st, WF_XDS_CDS), WF_ADS_STALE);
	CHECK_EQ(sotw(&c, WF_XDS_LDS, NULL, NULL, NULL, NULL, NULL), 0);
	CHECK_EQ(c.n, 2);
	CHECK_EQ(last(&c)->n, 1);
	CHECK(!strcmp(last(&c)->names[0], "l1"));
	/* a new cluster: the whole set again, with a new version */
	char v1[32];
	snprintf(v1, sizeof(v1), "%s", c.r[0].version);
	res_set(WF_XDS_CDS, "c3", "a");
	change();
	CHECK_EQ(c.n, 3);
	CHECK_EQ(last(&c)->n, 3);
	CHECK(strcmp(last(&c)->version, v1));
	teardown(&c, NULL);
}

TEST(sotw_explicit_names_rds_eds)
{
	struct client c;
	setup();
	open_client(&c, 0);
	static const char *const r1[] = {"r1", NULL}, *const both[] = {"r1", "r2", "nope", NULL};
	CHECK_EQ(sotw(&c, WF_XDS_RDS, r1, NULL, NULL, NULL, NULL), 0);
	CHECK_EQ(c.n, 1);
	CHECK_EQ(last(&c)->n, 1);
	CHECK(!strcmp(last(&c)->names[0], "r1"));
	/* ACK, subscribing to more at the same time: the response has the subscribed names that exist */
	CHECK_EQ(sotw(&c, WF_XDS_RDS, both, last(&c)->nonce, last(&c)->version, NULL, NULL), 0);
	CHECK_EQ(c.n, 2);
	CHECK_EQ(last(&c)->n, 2);
	CHECK(!strcmp(last(&c)->names[0], "r1") && !strcmp(last(&c)->names[1], "r2"));
	/* an empty RDS list is no subscription (not a wildcard): an empty response */
	CHECK_EQ(sotw(&c, WF_XDS_RDS, NULL, last(&c)->nonce, last(&c)->version, NULL, NULL), 0);
	CHECK_EQ(c.n, 3);
	CHECK_EQ(last(&c)->n, 0);
	/* a change to a resource the client does not subscribe to sends nothing */
	res_set(WF_XDS_RDS, "r2", "b");
	change();
	CHECK_EQ(c.n, 3);
	teardown(&c, NULL);
}

TEST(sotw_ack_and_unchanged_content_not_resent)
{
	struct client c;
	setup();
	open_client(&c, 0);
	static const char *const e1[] = {"c1", NULL};
	CHECK_EQ(sotw(&c, WF_XDS_CDS, NULL, NULL, NULL, NULL, NULL), 0);
	CHECK_EQ(sotw(&c, WF_XDS_CDS, NULL, c.r[0].nonce, c.r[0].version, NULL, NULL), 0);
	CHECK_EQ(wf_ads_stream_status(c.st, WF_XDS_CDS), WF_ADS_SYNCED);
	CHECK_EQ(sotw(&c, WF_XDS_EDS, e1, NULL, NULL, NULL, NULL), 0);
	CHECK_EQ(c.n, 2);
	CHECK_EQ(sotw(&c, WF_XDS_EDS, e1, c.r[1].nonce, c.r[1].version, NULL, NULL), 0);
	CHECK_EQ(c.n, 2); /* an ACK gets no response */
	/* a push whose content did not change sends nothing (the generator ran again) */
	int g = generated;
	change();
	CHECK_EQ(generated, g + 1);
	CHECK_EQ(c.n, 2);
	/* the same bytes under another tag and back: no change either */
	res_set(WF_XDS_EDS, "c2", "b");
	change();
	CHECK_EQ(c.n, 2); /* c2's endpoints are not subscribed */
	res_set(WF_XDS_EDS, "c1", "b");
	change();
	CHECK_EQ(c.n, 3);
	CHECK(!strcmp(last(&c)->type_url, wf_xds_type_url[WF_XDS_EDS]));
	CHECK(!strcmp(last(&c)->tags[0], "b"));
	CHECK_EQ(wf_ads_stream_status(c.st, WF_XDS_EDS), WF_ADS_STALE);
	CHECK_EQ(wf_ads_stream_status(c.st, WF_XDS_CDS), WF_ADS_SYNCED);
	teardown(&c, NULL);
}

TEST(sotw_nack_remembered_not_resent)
{
	struct client c;
	setup();
	open_client(&c, 0);
	CHECK_EQ(sotw(&c, WF_XDS_LDS, NULL, NULL, NULL, NULL, NULL), 0);
	CHECK_EQ(sotw(&c, WF_XDS_LDS, NULL, c.r[0].nonce, c.r[0].version, NULL, NULL), 0);
	res_set(WF_XDS_LDS, "l1", "bad");
	change();
	CHECK_EQ(c.n, 2);
	/* NACK: version_info is the last one applied, error_detail says why */
	CHECK_EQ(sotw(&c, WF_XDS_LDS, NULL, c.r[1].nonce, c.r[0].version, "listener l1: bad port", NULL), 0);
	CHECK_EQ(c.n, 2); /* not sent again */
	CHECK_EQ(wf_ads_stream_status(c.st, WF_XDS_LDS), WF_ADS_NACK);
	CHECK(!strcmp(wf_ads_stream_nack(c.st, WF_XDS_LDS), "listener l1: bad port"));
	change(); /* nothing changed: the NACKed version is not pushed again */
	CHECK_EQ(c.n, 2);
	res_set(WF_XDS_LDS, "l1", "good");
	change();
	CHECK_EQ(c.n, 3);
	CHECK(!strcmp(last(&c)->tags[0], "good"));
	CHECK_EQ(wf_ads_stream_status(c.st, WF_XDS_LDS), WF_ADS_STALE);
	CHECK_EQ(sotw(&c, WF_XDS_LDS, NULL, c.r[2].nonce, c.r[2].version, NULL, NULL), 0);
	CHECK_EQ(wf_ads_stream_status(c.st, WF_XDS_LDS), WF_ADS_SYNCED);
	CHECK(wf_ads_stream_nack(c.st, WF_XDS_LDS) == NULL);
	teardown(&c, NULL);
}

/* SotW EDS and RDS responses after the first hold only what changed (LDS and CDS: the whole
 * set, always); a NACK or a changed subscription gets the whole set again. */
TEST(sotw_eds_rds_send_what_changed)
{
	struct client c;
	setup();
	open_client(&c, 0);
	static const char *const both[] = {"c1", "c2", NULL}, *const one[] = {"c1", NULL};
	CHECK_EQ(sotw(&c, WF_XDS_CDS, NULL, NULL, NULL, NULL, NULL), 0);
	CHECK_EQ(sotw(&c, WF_XDS_CDS, NULL, c.r[0].nonce, c.r[0].version, NULL, NULL), 0);
	CHECK_EQ(sotw(&c, WF_XDS_EDS, both, NULL, NULL, NULL, NULL), 0);
	CHECK_EQ(c.n, 2);
	CHECK_EQ(last(&c)->n, 2);
	CHECK_EQ(sotw(&c, WF_XDS_EDS, both, last(&c)->nonce, last(&c)->version, NULL, NULL), 0);
	/* one assignment changes: the response holds it alone */
	res_set(WF_XDS_EDS, "c2", "b");
	change();
	CHECK_EQ(c.n, 3);
	CHECK_EQ(last(&c)->n, 1);
	CHECK(!strcmp(last(&c)->names[0], "c2") && !strcmp(last(&c)->tags[0], "b"));
	/* a cluster changes: CDS is the state of the world, both clusters */
	res_set(WF_XDS_CDS, "c1", "b");
	change();
	CHECK_EQ(c.n, 4);
	CHECK(!strcmp(last(&c)->type_url, wf_xds_type_url[WF_XDS_CDS]));
	CHECK_EQ(last(&c)->n, 2);
	/* the EDS update is NACKed: the next one holds both again */
	CHECK_EQ(sotw(&c, WF_XDS_EDS, both, c.r[2].nonce, c.r[1].version, "bad endpoints", NULL), 0);
	res_set(WF_XDS_EDS, "c1", "c");
	change();
	CHECK_EQ(c.n, 5);
	CHECK_EQ(last(&c)->n, 2);
	CHECK_EQ(sotw(&c, WF_XDS_EDS, both, last(&c)->nonce, last(&c)->version, NULL, NULL), 0);
	/* a changed subscription is answered with the whole subscribed set */
	CHECK_EQ(sotw(&c, WF_XDS_EDS, one, last(&c)->nonce, last(&c)->version, NULL, NULL), 0);
	CHECK_EQ(c.n, 6);
	CHECK_EQ(last(&c)->n, 1);
	CHECK_EQ(sotw(&c, WF_XDS_EDS, both, last(&c)->nonce, last(&c)->version, NULL, NULL), 0);
	CHECK_EQ(c.n, 7);
	CHECK_EQ(last(&c)->n, 2);
	teardown(&c, NULL);
}

TEST(sotw_stale_nonce_ignored)
{
	struct client c;
	setup();
	open_client(&c, 0);
	CHECK_EQ(sotw(&c, WF_XDS_CDS, NULL, NULL, NULL, NULL, NULL), 0);
	res_set(WF_XDS_CDS, "c1", "b");
	change();
	CHECK_EQ(c.n, 2);
	/* the NACK of the first response arrives after the second was sent: ignored */
	CHECK_EQ(sotw(&c, WF_XDS_CDS, NULL, c.r[0].nonce, "", "old", NULL), 0);
	CHECK_EQ(wf_ads_stream_status(c.st, WF_XDS_CDS), WF_ADS_STALE);
	CHECK_EQ(sotw(&c, WF_XDS_CDS, NULL, c.r[1].nonce, c.r[1].version, NULL, NULL), 0);
	CHECK_EQ(wf_ads_stream_status(c.st, WF_XDS_CDS), WF_ADS_SYNCED);
	teardown(&c, NULL);
}

TEST(sotw_star_and_leaving_wildcard)
{
	struct client c;
	setup();
	open_client(&c, 0);
	static const char *const l1[] = {"l1", NULL}, *const star[] = {"*", NULL};
	res_set(WF_XDS_LDS, "l2", "a");
	CHECK_EQ(sotw(&c, WF_XDS_LDS, l1, NULL, NULL, NULL, NULL), 0);
	CHECK_EQ(last(&c)->n, 1);
	/* explicit names first: a later empty list is no longer a wildcard */
	CHECK_EQ(sotw(&c, WF_XDS_LDS, NULL, last(&c)->nonce, last(&c)->version, NULL, NULL), 0);
	CHECK_EQ(last(&c)->n, 0);
	CHECK_EQ(sotw(&c, WF_XDS_LDS, star, last(&c)->nonce, last(&c)->version, NULL, NULL), 0);
	CHECK_EQ(last(&c)->n, 2);
	teardown(&c, NULL);
}

TEST(push_order_make_before_break)
{
	struct client c;
	setup();
	open_client(&c, 0);
	static const char *const r1[] = {"r1", NULL}, *const c1[] = {"c1", NULL};
	/* subscribed in the "wrong" order on purpose */
	CHECK_EQ(sotw(&c, WF_XDS_RDS, r1, NULL, NULL, NULL, NULL), 0);
	CHECK_EQ(sotw(&c, WF_XDS_LDS, NULL, NULL, NULL, NULL, NULL), 0);
	CHECK_EQ(sotw(&c, WF_XDS_EDS, c1, NULL, NULL, NULL, NULL), 0);
	CHECK_EQ(sotw(&c, WF_XDS_CDS, NULL, NULL, NULL, NULL, NULL), 0);
	CHECK_EQ(c.n, 4);
	res_set(WF_XDS_RDS, "r1", "b");
	res_set(WF_XDS_LDS, "l1", "b");
	res_set(WF_XDS_EDS, "c1", "b");
	res_set(WF_XDS_CDS, "c1", "b");
	change();
	CHECK_EQ(c.n, 8);
	CHECK(!strcmp(c.r[4].type_url, wf_xds_type_url[WF_XDS_CDS]));
	CHECK(!strcmp(c.r[5].type_url, wf_xds_type_url[WF_XDS_EDS]));
	CHECK(!strcmp(c.r[6].type_url, wf_xds_type_url[WF_XDS_LDS]));
	CHECK(!strcmp(c.r[7].type_url, wf_xds_type_url[WF_XDS_RDS]));
	teardown(&c, NULL);
}

TEST(push_waits_for_a_slow_client)
{
	struct client c;
	setup();
	open_client(&c, 0);
	CHECK_EQ(sotw(&c, WF_XDS_CDS, NULL, NULL, NULL, NULL, NULL), 0);
	CHECK_EQ(sotw(&c, WF_XDS_LDS, NULL, NULL, NULL, NULL, NULL), 0);
	c.queued = WF_ADS_WATERMARK;
	res_set(WF_XDS_CDS, "c1", "b");
	change();
	res_set(WF_XDS_CDS, "c1", "c");
	res_set(WF_XDS_LDS, "l1", "c");
	change();
	CHECK_EQ(c.n, 2); /* held back */
	c.queued = 0;
	wf_ads_stream_writable(c.st);
	CHECK_EQ(c.n, 4); /* the latest content only, once per type */
	CHECK(!strcmp(c.r[2].tags[0], "c"));
	CHECK(!strcmp(c.r[3].tags[0], "c"));
	teardown(&c, NULL);
}

/* Three proxies of their own that asked for CDS; their sends stay queued (backlog). */
static void three_listening(struct client c[3])
{
	const char *ids[3] = {"p0", "p1", "p2"};
	for (int i = 0; i < 3; i++) {
		open_client(&c[i], 0);
		CHECK_EQ(sotw(&c[i], WF_XDS_CDS, NULL, NULL, NULL, NULL, ids[i]), 0);
		CHECK_EQ(c[i].n, 1);
		c[i].queued = 0;
		c[i].backlog = 1;
	}
}

static unsigned responses(const struct client c[3]) { return c[0].n + c[1].n + c[2].n; }

TEST(push_waits_while_the_budget_is_spent)
{
	struct client c[3];
	setup();
	three_listening(c);
	wf_ads_set_budget(ads, 1); /* one response in flight at a time */
	res_set(WF_XDS_CDS, "c1", "b");
	wf_xds_cache_invalidate(cache);
	wf_ads_push(ads);
	CHECK_EQ(responses(c), 3); /* a push only makes streams due */
	CHECK_EQ(wf_ads_pump(ads, UINT64_MAX), WF_ADS_PUMP_DRAIN);
	CHECK_EQ(responses(c), 4);
	CHECK_EQ(wf_ads_pump(ads, UINT64_MAX), WF_ADS_PUMP_DRAIN); /* nothing was read: still */
	CHECK_EQ(responses(c), 4);
	for (int i = 0; i < 3; i++)
		c[i].queued = 0; /* the client read it */
	CHECK_EQ(wf_ads_pump(ads, UINT64_MAX), WF_ADS_PUMP_DRAIN);
	CHECK_EQ(responses(c), 5);
	for (int i = 0; i < 3; i++)
		c[i].queued = 0;
	CHECK_EQ(wf_ads_pump(ads, UINT64_MAX), 0);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(c[i].n, 2);
		CHECK(!strcmp(last(&c[i])->tags[0], "b"));
	}
	CHECK_EQ(wf_ads_pump(ads, UINT64_MAX), 0); /* nothing due */
	wf_ads_stream_free(c[2].st);
	teardown(&c[0], &c[1]);
}

TEST(push_serves_one_stream_per_slice_at_least)
{
	struct client c[3];
	setup();
	three_listening(c);
	res_set(WF_XDS_CDS, "c1", "b");
	wf_xds_cache_invalidate(cache);
	wf_ads_push(ads);
	CHECK_EQ(wf_ads_pump(ads, 0), WF_ADS_PUMP_MORE);
	CHECK_EQ(responses(c), 4);
	/* a stream that goes while due is not served, and the others still are */
	struct client *gone = NULL;
	for (int i = 0; i < 3; i++)
		if (c[i].n == 1)
			gone = &c[i];
	CHECK(gone != NULL);
	wf_ads_stream_free(gone->st);
	gone->st = NULL;
	CHECK_EQ(wf_ads_pump(ads, 0), 0);
	CHECK_EQ(responses(c), 5);
	for (int i = 0; i < 3; i++)
		if (c[i].st)
			wf_ads_stream_free(c[i].st);
	teardown(NULL, NULL);
}

TEST(a_stream_still_due_is_served_once_with_the_newest)
{
	struct client c[3];
	setup();
	three_listening(c);
	wf_ads_set_budget(ads, 1);
	res_set(WF_XDS_CDS, "c1", "b");
	wf_xds_cache_invalidate(cache);
	wf_ads_push(ads);
	CHECK_EQ(wf_ads_pump(ads, UINT64_MAX), WF_ADS_PUMP_DRAIN);
	res_set(WF_XDS_CDS, "c1", "c");
	wf_xds_cache_invalidate(cache);
	wf_ads_push(ads);
	wf_ads_set_budget(ads, WF_ADS_PUSH_BUDGET);
	CHECK_EQ(wf_ads_pump(ads, UINT64_MAX), 0);
	/* the one served first got b then c; the two that were due got c only */
	CHECK_EQ(responses(c), 3 + 1 + 3);
	for (int i = 0; i < 3; i++)
		CHECK(!strcmp(last(&c[i])->tags[0], "c"));
	wf_ads_stream_free(c[2].st);
	teardown(&c[0], &c[1]);
}

TEST(large_responses_share_one_body_between_streams)
{
	struct client c[3];
	setup();
	bulky = 1;
	lent_responses = 0;
	three_listening(c); /* CDS: c1 and c2, 20 KB each */
	CHECK_EQ(lent_responses, 3);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(c[i].r[0].n, 2); /* the nonce, then the shared part, decode as one message */
		CHECK(!strcmp(c[i].r[0].names[0], "c1") && !strcmp(c[i].r[0].names[1], "c2"));
		CHECK(!strcmp(c[i].r[0].type_url, wf_xds_type_url[WF_XDS_CDS]));
		CHECK(c[i].r[0].nonce[0] != 0);
		CHECK(c[i].r[0].body == c[0].r[0].body); /* one body for the three */
	}
	res_set(WF_XDS_CDS, "c1", "b");
	change();
	CHECK_EQ(lent_responses, 6);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(c[i].n, 2);
		CHECK(!strncmp(c[i].r[1].tags[0], "b....", 5));
		CHECK(!strcmp(c[i].r[1].version, c[0].r[1].version));
		CHECK(strcmp(c[i].r[1].version, c[i].r[0].version));
		CHECK(c[i].r[1].body == c[0].r[1].body);
	}
	bulky = 0;
	wf_ads_stream_free(c[2].st);
	teardown(&c[0], &c[1]);
}

TEST(first_request_needs_a_node)
{
	struct client c;
	setup();
	open_client(&c, 0);
	CHECK_EQ(sotw(&c, WF_XDS_CDS, NULL, NULL, NULL, NULL, ""), 3 /* INVALID_ARGUMENT */);
	teardown(&c, NULL);
}

TEST(hooks_hear_proxies_come_and_go)
{
	struct client a;
	heard[0] = 0;
	setup();
	open_client(&a, 0);
	CHECK_EQ(sotw(&a, WF_XDS_CDS, NULL, NULL, NULL, NULL, ""), 3); /* no node: never heard of */
	wf_ads_stream_free(a.st);
	open_client(&a, 0);
	CHECK_EQ(sotw(&a, WF_XDS_CDS, NULL, NULL, NULL, NULL, "p-a"), 0);
	CHECK_EQ(sotw(&a, WF_XDS_LDS, NULL, NULL, NULL, NULL, "p-a"), 0); /* once per stream */
	CHECK(!strcmp(heard, "+p-a"));
	CHECK_EQ(generated_when_heard, 0); /* heard before the stream's first snapshot */
	teardown(&a, NULL);
	CHECK(!strcmp(heard, "+p-a -p-a"));
}

TEST(cache_shares_resources_between_proxies)
{
	struct client a, b;
	setup();
	open_client(&a, 0);
	open_client(&b, 0);
	CHECK_EQ(sotw(&a, WF_XDS_CDS, NULL, NULL, NULL, NULL, "p-a"), 0);
	CHECK_EQ(sotw(&b, WF_XDS_CDS, NULL, NULL, NULL, NULL, "p-b"), 0);
	CHECK_EQ(generated, 1); /* one key for every proxy: generated once */
	CHECK_EQ(wf_xds_cache_resources(cache), n_res);
	CHECK(!strcmp(a.r[0].version, b.r[0].version));
	change();
	CHECK_EQ(generated, 2);
	CHECK_EQ(wf_xds_cache_resources(cache), n_res);
	teardown(&a, &b);
}

TEST(cache_key_scopes_content_and_failures_send_nothing)
{
	struct client a, b, c;
	GEN.key = key_cluster;
	fail_for_cluster_b = 1;
	setup();
	open_client(&a, 0);
	open_client(&b, 0);
	open_client(&c, 0);
	CHECK_EQ(sotw(&a, WF_XDS_CDS, NULL, NULL, NULL, NULL, "p1@a"), 0);
	CHECK_EQ(sotw(&b, WF_XDS_CDS, NULL, NULL, NULL, NULL, "p2@a"), 0);
	CHECK_EQ(generated, 1); /* one key: generated once */
	CHECK_EQ(sotw(&c, WF_XDS_CDS, NULL, NULL, NULL, NULL, "p3@b"), 0);
	/* the generator failed for cluster b: nothing is sent (an empty set would remove all) */
	CHECK_EQ(c.n, 0);
	CHECK_EQ(wf_ads_stream_status(c.st, WF_XDS_CDS), WF_ADS_NOT_SENT);
	fail_for_cluster_b = 0;
	change();
	CHECK_EQ(generated, 3); /* a and b, once each */
	CHECK_EQ(c.n, 1);
	CHECK_EQ(c.r[0].n, 2);
	CHECK_EQ(a.n, 1); /* unchanged for a */
	wf_ads_stream_free(c.st);
	teardown(&a, &b);
	GEN.key = NULL;
}

TEST(syncz_lists_streams)
{
	struct client c;
	setup();
	open_client(&c, 0);
	CHECK_EQ(sotw(&c, WF_XDS_LDS, NULL, NULL, NULL, NULL, "sidecar-\"q\""), 0);
	CHECK_EQ(sotw(&c, WF_XDS_LDS, NULL, c.r[0].nonce, "", "no \"way\"", NULL), 0);
	struct wf_jbuf b = {0};
	CHECK_EQ(wf_ads_syncz(ads, &b), 0);
	CHECK(strstr(b.p, "\"proxy\": \"sidecar-\\\"q\\\"\""));
	CHECK(strstr(b.p, "\"LDS\": {\"status\": \"NACK\""));
	CHECK(strstr(b.p, "\"nack\": \"no \\\"way\\\"\""));
	CHECK(strstr(b.p, "\"CDS\": {\"status\": \"NOT SENT\""));
	free(b.p);
	teardown(&c, NULL);
}

/* ---- delta --------------------------------------------------------------------------------------- */

TEST(delta_wildcard_changes_and_removals)
{
	struct client c;
	setup();
	open_client(&c, 1);
	CHECK_EQ(delta(&c, WF_XDS_CDS, NULL, NULL, NULL, NULL, NULL, NULL), 0);
	CHECK_EQ(c.n, 1);
	CHECK_EQ(last(&c)->n, 2);
	CHECK_EQ(delta(&c, WF_XDS_CDS, NULL, NULL, last(&c)->nonce, NULL, NULL, NULL), 0);
	CHECK_EQ(wf_ads_stream_status(c.st, WF_XDS_CDS), WF_ADS_SYNCED);
	CHECK_EQ(c.n, 1);
	/* one changes: only it is sent */
	res_set(WF_XDS_CDS, "c2", "b");
	change();
	CHECK_EQ(c.n, 2);
	CHECK_EQ(last(&c)->n, 1);
	CHECK(!strcmp(last(&c)->names[0], "c2"));
	CHECK_EQ(last(&c)->n_removed, 0);
	/* one goes: removed_resources */
	res_del(WF_XDS_CDS, "c1");
	change();
	CHECK_EQ(c.n, 3);
	CHECK_EQ(last(&c)->n, 0);
	CHECK_EQ(last(&c)->n_removed, 1);
	CHECK(!strcmp(last(&c)->removed[0], "c1"));
	change();
	CHECK_EQ(c.n, 3);
	teardown(&c, NULL);
}

TEST(delta_explicit_subscribe_unsubscribe)
{
	struct client c;
	setup();
	open_client(&c, 1);
	static const char *const r1[] = {"r1", NULL}, *const r2[] = {"r2", NULL};
	CHECK_EQ(delta(&c, WF_XDS_RDS, r1, NULL, NULL, NULL, NULL, NULL), 0);
	CHECK_EQ(c.n, 1);
	CHECK_EQ(last(&c)->n, 1);
	CHECK(!strcmp(last(&c)->names[0], "r1"));
	CHECK_EQ(delta(&c, WF_XDS_RDS, r2, r1, last(&c)->nonce, NULL, NULL, NULL), 0);
	CHECK_EQ(c.n, 2);
	CHECK_EQ(last(&c)->n, 1);
	CHECK(!strcmp(last(&c)->names[0], "r2"));
	CHECK_EQ(last(&c)->n_removed, 0); /* the client dropped r1 itself */
	res_set(WF_XDS_RDS, "r1", "b");
	change();
	CHECK_EQ(c.n, 2); /* not subscribed any more */
	res_del(WF_XDS_RDS, "r2");
	change();
	CHECK_EQ(c.n, 3);
	CHECK_EQ(last(&c)->n_removed, 1);
	CHECK(!strcmp(last(&c)->removed[0], "r2"));
	teardown(&c, NULL);
}

TEST(delta_initial_versions_and_nack)
{
	struct client c, d;
	setup();
	open_client(&c, 1);
	CHECK_EQ(delta(&c, WF_XDS_LDS, NULL, NULL, NULL, NULL, NULL, NULL), 0);
	char v[32];
	snprintf(v, sizeof(v), "%s", c.r[0].version);
	/* a reconnecting client that holds l1 at its current version is not sent it again */
	open_client(&d, 1);
	Envoy__Config__Listener__V3__Listener l = ENVOY__CONFIG__LISTENER__V3__LISTENER__INIT;
	l.name = "l1";
	l.stat_prefix = "a";
	uint8_t buf[256];
	size_t len = envoy__config__listener__v3__listener__pack(&l, buf);
	char hv[32];
	snprintf(hv, sizeof(hv), "%016llx", (unsigned long long)wf_xxh64(buf, len, 0));
	CHECK_EQ(delta(&d, WF_XDS_LDS, NULL, NULL, NULL, NULL, "l1", hv), 0);
	CHECK_EQ(d.n, 1);
	CHECK_EQ(d.r[0].n, 0);
	/* a NACK is remembered, not answered by sending the same again */
	res_set(WF_XDS_LDS, "l1", "bad");
	change();
	CHECK_EQ(d.n, 2);
	CHECK_EQ(delta(&d, WF_XDS_LDS, NULL, NULL, d.r[1].nonce, "rejected", NULL, NULL), 0);
	CHECK_EQ(d.n, 2);
	CHECK_EQ(wf_ads_stream_status(d.st, WF_XDS_LDS), WF_ADS_NACK);
	change();
	CHECK_EQ(d.n, 2);
	teardown(&c, &d);
}

/* Two parts: a shared half keyed by cluster, and a per-proxy half keyed by node id. */
static int shared_runs, own_runs;

static int gen_shared(void *ctx, const Envoy__Config__Core__V3__Node *node, struct wf_xds_cache *c,
                      struct wf_xds_snap *s)
{
	shared_runs++;
	Envoy__Config__Listener__V3__Listener l = ENVOY__CONFIG__LISTENER__V3__LISTENER__INIT;
	l.name = "outbound";
	l.stat_prefix = node->cluster;
	if (wf_xds_snap_add(c, s, WF_XDS_CDS, "b-shared", &l.base) < 0 ||
	    wf_xds_snap_add(c, s, WF_XDS_CDS, "same", &l.base) < 0)
		return -1;
	return 0;
}

static int gen_own(void *ctx, const Envoy__Config__Core__V3__Node *node, struct wf_xds_cache *c, struct wf_xds_snap *s)
{
	own_runs++;
	Envoy__Config__Listener__V3__Listener l = ENVOY__CONFIG__LISTENER__V3__LISTENER__INIT;
	l.name = "inbound";
	l.stat_prefix = node->id;
	if (wf_xds_snap_add(c, s, WF_XDS_CDS, "a-own", &l.base) < 0 || wf_xds_snap_add(c, s, WF_XDS_CDS, "c-own", &l.base) < 0 ||
	    wf_xds_snap_add(c, s, WF_XDS_CDS, "same", &l.base) < 0 || wf_xds_snap_add(c, s, WF_XDS_LDS, node->id, &l.base) < 0)
		return -1;
	return 0;
}

static void key_id(void *ctx, const Envoy__Config__Core__V3__Node *node, char *out, size_t n)
{
	snprintf(out, n, "%s", node->id);
}

TEST(cache_parts_are_generated_once_per_key_and_merged)
{
	struct wf_xds_generator parts[2] = {
		{.name = "shared", .key = key_cluster, .generate = gen_shared},
		{.name = "own", .key = key_id, .generate = gen_own},
	};
	struct wf_xds_cache *c = wf_xds_cache_new(parts, 2);
	Envoy__Config__Core__V3__Node n1 = ENVOY__CONFIG__CORE__V3__NODE__INIT, n2 = n1;
	n1.id = "p1";
	n2.id = "p2";
	n1.cluster = n2.cluster = "ns";
	shared_runs = own_runs = 0;
	struct wf_xds_snap *s1 = wf_xds_cache_get(c, &n1), *s2 = wf_xds_cache_get(c, &n2);
	CHECK(s1 && s2);
	CHECK_EQ(shared_runs, 1); /* one namespace: the shared half once */
	CHECK_EQ(own_runs, 2);
	/* the union, sorted by name; a name in both parts is the first part's */
	CHECK_EQ(s1->t[WF_XDS_CDS].n, 4);
	const char *want[] = {"a-own", "b-shared", "c-own", "same"};
	for (unsigned i = 0; i < 4; i++)
		CHECK(!strcmp(s1->t[WF_XDS_CDS].r[i]->name, want[i]));
	CHECK(s1->t[WF_XDS_CDS].r[3] == wf_xds_packed_find(&s2->t[WF_XDS_CDS], "same")); /* shared: one copy */
	CHECK(s1->t[WF_XDS_CDS].r[0] != s2->t[WF_XDS_CDS].r[0]);                         /* each proxy's own */
	CHECK_EQ(s1->t[WF_XDS_LDS].n, 1);
	CHECK(!strcmp(s2->t[WF_XDS_LDS].r[0]->name, "p2"));
	/* the same generation again: nothing is generated */
	struct wf_xds_snap *again = wf_xds_cache_get(c, &n1);
	CHECK_EQ(shared_runs, 1);
	CHECK_EQ(own_runs, 2);
	wf_xds_snap_unref(again);
	/* a new generation generates again */
	wf_xds_cache_invalidate(c);
	again = wf_xds_cache_get(c, &n1);
	CHECK_EQ(shared_runs, 2);
	CHECK_EQ(own_runs, 3);
	wf_xds_snap_unref(again);
	wf_xds_snap_unref(s1);
	wf_xds_snap_unref(s2);
	wf_xds_cache_free(c);
}

TEST_MAIN("control.ads",
          T(sotw_wildcard_cds_lds),
          T(sotw_explicit_names_rds_eds),
          T(sotw_ack_and_unchanged_content_not_resent),
          T(sotw_nack_remembered_not_resent),
          T(sotw_eds_rds_send_what_changed),
          T(sotw_stale_nonce_ignored),
          T(sotw_star_and_leaving_wildcard),
          T(push_order_make_before_break),
          T(push_waits_for_a_slow_client),
          T(push_waits_while_the_budget_is_spent),
          T(push_serves_one_stream_per_slice_at_least),
          T(a_stream_still_due_is_served_once_with_the_newest),
          T(large_responses_share_one_body_between_streams),
          T(first_request_needs_a_node),
          T(hooks_hear_proxies_come_and_go),
          T(cache_shares_resources_between_proxies),
          T(cache_key_scopes_content_and_failures_send_nothing),
          T(cache_parts_are_generated_once_per_key_and_merged),
          T(syncz_lists_streams),
          T(delta_wildcard_changes_and_removals),
          T(delta_explicit_subscribe_unsubscribe),
          T(delta_initial_versions_and_nack))
