/* ADS: subscriptions, versions, nonces, ACK/NACK, per stream and type. */
#include "control/ads.h"

#include "core/log.h"
#include "core/loop.h"
#include "core/strtab.h"
#include "http/grpc.h"
#include "xds/json.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "core/hash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A name with the version the client holds (delta), or just a name (subscriptions). Names
 * are the server's shared copies (wf_strtab): every proxy subscribes to much the same ones. */
struct nv {
	const char *name;
	uint64_t version;
};

struct nvset {
	struct nv *v;
	uint32_t n, cap;
	struct wf_strtab *tab;      /* where the names come from */
};

struct tstate {
	uint8_t requested;          /* the client asked for this type */
	uint8_t wildcard;
	uint8_t status;             /* enum wf_ads_status */
	uint8_t sent_any;
	struct nvset subs;          /* explicitly subscribed names */
	struct nvset known;         /* delta: what the client holds, with versions */
	uint64_t sent_version;      /* SotW: the version of the set last sent */
	char sent[24], acked[24];   /* versions, as sent / as ACKed */
	char nonce[24];             /* of the last response */
	char *nack;                 /* the client's error_detail.message */
};

/* A SotW response's shared part: everything but the nonce (version_info, resources, type_url),
 * serialized once for the streams that get the same resources of a type in a version (a
 * push sends most streams the same ones). Counted: the cache's reference, and one per response
 * still queued with it. */
struct body {
	uint32_t refs;
	int type;
	uint64_t ver;
	uint32_t n;
	/* the resources it holds, compared but not referenced: a match also needs the same set
	 * version (a hash of the contents), so an address reused by other content does not pass */
	struct wf_xds_packed **r;
	uint8_t *bytes;
	size_t len;
	struct body *next;
};
#define BODY_MIN (16 * 1024)                /* smaller responses are packed per stream */
#define BODIES_MAX 32                       /* bodies kept for reuse */

struct wf_ads_stream {
	struct wf_ads *a;
	struct wf_ads_stream *next, *prev;
	struct wf_ads_io io;
	int delta;
	char peer[64];
	Envoy__Config__Core__V3__Node *node;   /* from the first request; owned */
	struct wf_xds_snap *snap;               /* what the stream's proxy should have */
	uint64_t nonce_seq;
	uint8_t held;                           /* a push waits for writable */
	uint8_t due;                            /* in the push queue */
	uint8_t flying;                         /* in the list of outputs being drained */
	struct wf_ads_stream *due_next, *due_prev, *fly_next;
	struct tstate t[WF_XDS_NTYPES];
};

struct wf_ads {
	struct wf_xds_cache *cache;
	struct wf_ads_hooks hooks;
	struct wf_ads_stream *streams;
	uint32_t n_streams;
	/* A push goes through the streams in order (FIFO), a slice at a time, and waits while
	 * what was sent and not yet taken by the clients is over the budget: the streams pushed
	 * to whose output may still be queued are `flying`. */
	struct wf_ads_stream *due_head, *due_tail, *flying;
	size_t budget;
	struct wf_strtab *names;            /* the cache's: names streams subscribed to, shared */
	struct body *bodies;                /* newest first, at most BODIES_MAX */
};

static const char *const STATUS[] = {"NOT SENT", "STALE", "SYNCED", "NACK"};
const char *wf_ads_status_name(int st) { return st >= 0 && st <= WF_ADS_NACK ? STATUS[st] : "?"; }

/* ---- name sets (sorted) ---------------------------------------------------------------------- */

static uint32_t nv_lower(const struct nvset *s, const char *name)
{
	uint32_t lo = 0, hi = s->n;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (strcmp(s->v[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct nv *nv_find(const struct nvset *s, const char *name)
{
	uint32_t i = nv_lower(s, name);
	return i < s->n && !strcmp(s->v[i].name, name) ? &s->v[i] : NULL;
}

static int nv_put(struct nvset *s, const char *name, uint64_t version)
{
	uint32_t i = nv_lower(s, name);
	if (i < s->n && !strcmp(s->v[i].name, name)) {
		s->v[i].version = version;
		return 0;
	}
	if (s->n == s->cap) {
		uint32_t cap = s->cap ? s->cap * 2 : 8;
		struct nv *q = realloc(s->v, cap * sizeof(*q));
		if (!q)
			return -ENOMEM;
		s->v = q;
		s->cap = cap;
	}
	const char *dup = wf_strtab_get(s->tab, name);
	if (!dup)
		return -ENOMEM;
	memmove(s->v + i + 1, s->v + i, (s->n - i) * sizeof(*s->v));
	s->v[i] = (struct nv){dup, version};
	s->n++;
	return 0;
}

static void nv_del(struct nvset *s, const char *name)
{
	uint32_t i = nv_lower(s, name);
	if (i < s->n && !strcmp(s->v[i].name, name)) {
		wf_strtab_put(s->tab, s->v[i].name);
		memmove(s->v + i, s->v + i + 1, (s->n - i - 1) * sizeof(*s->v));
		s->n--;
	}
}

static void nv_clear(struct nvset *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		wf_strtab_put(s->tab, s->v[i].name);
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

/* No more room than the names take (a set built once, kept for the stream's life). */
static void nv_fit(struct nvset *s)
{
	if (s->cap - s->n < 16)
		return;
	struct nv *q = realloc(s->v, (s->n ? s->n : 1) * sizeof(*q));
	if (q) {
		s->v = q;
		s->cap = s->n ? s->n : 1;
	}
}

/* ---- the server ----------------------------------------------------------------------------- */

struct wf_ads *wf_ads_new(struct wf_xds_cache *cache, const struct wf_ads_hooks *hooks)
{
	struct wf_ads *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->cache = cache;
	if (hooks)
		a->hooks = *hooks;
	a->budget = WF_ADS_PUSH_BUDGET;
	a->names = wf_xds_cache_names(cache);
	return a;
}

void wf_ads_set_budget(struct wf_ads *a, size_t bytes) { a->budget = bytes; }

static void body_unref(void *arg)
{
	struct body *b = arg;
	if (--b->refs)
		return;
	free(b->r);
	free(b->bytes);
	free(b);
}

/* The cache forgets bodies from *pp on (those still queued go when sent). */
static void bodies_drop_from(struct body **pp)
{
	while (*pp) {
		struct body *b = *pp;
		*pp = b->next;
		body_unref(b);
	}
}

static void bodies_drop(struct wf_ads *a) { bodies_drop_from(&a->bodies); }

void wf_ads_free(struct wf_ads *a)
{
	if (!a)
		return;
	bodies_drop(a);
	free(a);
}
uint32_t wf_ads_streams(const struct wf_ads *a) { return a->n_streams; }

static void due_unlink(struct wf_ads *a, struct wf_ads_stream *s)
{
	if (!s->due)
		return;
	s->due = 0;
	if (s->due_prev)
		s->due_prev->due_next = s->due_next;
	else
		a->due_head = s->due_next;
	if (s->due_next)
		s->due_next->due_prev = s->due_prev;
	else
		a->due_tail = s->due_prev;
	s->due_next = s->due_prev = NULL;
}

struct wf_ads_stream *wf_ads_stream_new(struct wf_ads *a, int delta, const char *peer, const struct wf_ads_io *io)
{
	struct wf_ads_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->a = a;
	s->io = *io;
	s->delta = delta;
	snprintf(s->peer, sizeof(s->peer), "%s", peer ? peer : "");
	for (int t = 0; t < WF_XDS_NTYPES; t++)
		s->t[t].subs.tab = s->t[t].known.tab = a->names;
	s->next = a->streams;
	if (a->streams)
		a->streams->prev = s;
	a->streams = s;
	a->n_streams++;
	return s;
}

void wf_ads_stream_free(struct wf_ads_stream *s)
{
	if (!s)
		return;
	struct wf_ads *a = s->a;
	if (s->prev)
		s->prev->next = s->next;
	else
		a->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	a->n_streams--;
	due_unlink(a, s);
	if (s->flying)
		for (struct wf_ads_stream **pp = &a->flying; *pp; pp = &(*pp)->fly_next)
			if (*pp == s) {
				*pp = s->fly_next;
				break;
			}
	if (s->node) {
		wf_debug("ads: proxy %s (%s) disconnected", s->node->id, s->peer);
		if (a->hooks.gone)
			a->hooks.gone(a->hooks.ctx, s->node);
	}
	for (int t = 0; t < WF_XDS_NTYPES; t++) {
		nv_clear(&s->t[t].subs);
		nv_clear(&s->t[t].known);
		free(s->t[t].nack);
	}
	wf_xds_snap_unref(s->snap);
	if (s->node)
		protobuf_c_message_free_unpacked(&s->node->base, NULL);
	free(s);
}

int wf_ads_stream_status(const struct wf_ads_stream *s, int type) { return s->t[type].status; }
const char *wf_ads_stream_nack(const struct wf_ads_stream *s, int type) { return s->t[type].nack; }

/* ---- what a stream should have of a type ------------------------------------------------------ */

/* The subscribed resources of type `type` in the stream's snapshot (sorted by name), into
 * *out (malloc'd); their count, or -ENOMEM. */
static int view(struct wf_ads_stream *s, int type, struct wf_xds_packed ***out)
{
	struct tstate *t = &s->t[type];
	const struct wf_xds_packed_set *set = s->snap ? &s->snap->t[type] : NULL;
	*out = NULL;
	if (!set || (!t->wildcard && !t->subs.n))
		return 0;
	struct wf_xds_packed **v = malloc((t->wildcard ? set->n : t->subs.n) * sizeof(*v) + 1);
	if (!v)
		return -ENOMEM;
	uint32_t n = 0;
	if (t->wildcard) {
		memcpy(v, set->r, set->n * sizeof(*v));
		n = set->n;
	} else {
		/* both sorted by name: one walk, not a search per name (names from the cache's table:
		 * equal ones are the same pointer) */
		for (uint32_t i = 0, j = 0; i < t->subs.n && j < set->n;) {
			const char *a = t->subs.v[i].name, *b = set->r[j]->name;
			int c = a == b ? 0 : strcmp(a, b);
			if (c == 0)
				v[n++] = set->r[j++];
			if (c <= 0)
				i++;
			else
				j++;
		}
	}
	*out = v;
	return (int)n;
}

/* The version of a set of resources: their ids (of name and content) mixed in order. */
static uint64_t set_version(struct wf_xds_packed **v, int n)
{
	uint64_t h = 0x5eed;
	for (int i = 0; i < n; i++) {
		h = (h ^ v[i]->id) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	return h;
}

static void sent(struct wf_ads_stream *s, struct tstate *t, const char *version)
{
	t->sent_any = 1;
	t->status = WF_ADS_STALE;
	snprintf(t->sent, sizeof(t->sent), "%s", version);
}

/* SotW, EDS and RDS: what the client was sent of each subscribed name is kept in the
 * subscription itself (subs.v[].version: the resource's hash, 0 for nothing); forget it all. */
static void subs_unsent(struct tstate *t)
{
	for (uint32_t i = 0; i < t->subs.n; i++)
		t->subs.v[i].version = 0;
}

/* The shared body of a response holding resources r[0..n) of type in version ver (r_msg: the
 * response without its nonce), from the cache or made and kept there. NULL: no memory (the
 * caller packs it whole). */
static struct body *body_of(struct wf_ads *a, int type, uint64_t ver, struct wf_xds_packed **r, uint32_t n,
                            const Envoy__Service__Discovery__V3__DiscoveryResponse *r_msg)
{
	uint32_t k = 0;
	for (struct body **pp = &a->bodies; *pp; pp = &(*pp)->next, k++) {
		struct body *b = *pp;
		if (b->type == type && b->ver == ver && b->n == n && !memcmp(b->r, r, n * sizeof(*r)))
			return b;
		if (k + 1 == BODIES_MAX && b->next) { /* the oldest go */
			bodies_drop_from(&b->next);
			break;
		}
	}
	struct body *b = calloc(1, sizeof(*b));
	size_t len = envoy__service__discovery__v3__discovery_response__get_packed_size(r_msg);
	if (!b || !(b->r = malloc((n ? n : 1) * sizeof(*r))) || !(b->bytes = malloc(len ? len : 1))) {
		if (b)
			free(b->r);
		free(b);
		return NULL;
	}
	memcpy(b->r, r, n * sizeof(*r));
	envoy__service__discovery__v3__discovery_response__pack(r_msg, b->bytes);
	*b = (struct body){1, type, ver, n, b->r, b->bytes, len, a->bodies};
	a->bodies = b;
	return b;
}

/* SotW: send the type's subscribed set if it differs from what was last sent. 0, or <0 when
 * the transport failed. */
static int sotw_send(struct wf_ads_stream *s, int type)
{
	struct tstate *t = &s->t[type];
	struct wf_xds_packed **v;
	int n = view(s, type, &v);
	if (n < 0)
		return n;
	uint64_t ver = set_version(v, n);
	if (t->sent_any && ver == t->sent_version) {
		free(v);
		return 0;
	}
	Google__Protobuf__Any *anys = calloc((size_t)n + 1, sizeof(*anys));
	Google__Protobuf__Any **ap = calloc((size_t)n + 1, sizeof(*ap));
	struct wf_xds_packed **incl = calloc((size_t)n + 1, sizeof(*incl)); /* what it holds */
	if (!anys || !ap || !incl) {
		free(anys);
		free(ap);
		free(incl);
		free(v);
		return -ENOMEM;
	}
	/* EDS and RDS responses need not hold the whole set (only LDS and CDS are the state of
	 * the world: what their response lacks is gone): after the first, each holds what changed
	 * since the client was sent it. One endpoint change is then one ClusterLoadAssignment per
	 * proxy, not all of them. */
	int partial = (type == WF_XDS_EDS || type == WF_XDS_RDS) && !t->wildcard, m = 0;
	size_t bytes = 0;
	for (int i = 0, j = 0; i < n; i++) {
		if (partial) {
			/* subs and v (a part of subs): both sorted by name, names from one table */
			while ((uint32_t)j < t->subs.n && t->subs.v[j].name != v[i]->name)
				j++;
			if ((uint32_t)j < t->subs.n && t->subs.v[j].version == v[i]->hash)
				continue;
		}
		google__protobuf__any__init(&anys[m]);
		anys[m].type_url = (char *)wf_xds_type_url[type];
		anys[m].value.data = v[i]->bytes;
		anys[m].value.len = v[i]->len;
		ap[m] = &anys[m];
		incl[m] = v[i];
		bytes += v[i]->len;
		m++;
	}
	char version[24];
	snprintf(version, sizeof(version), "%016llx", (unsigned long long)ver);
	snprintf(t->nonce, sizeof(t->nonce), "%llu", (unsigned long long)++s->nonce_seq);
	Envoy__Service__Discovery__V3__DiscoveryResponse r = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_RESPONSE__INIT;
	r.version_info = version;
	r.type_url = (char *)wf_xds_type_url[type];
	r.n_resources = (size_t)m;
	r.resources = ap;
	struct body *b = s->io.send_lent && bytes >= BODY_MIN ? body_of(s->a, type, ver, incl, (uint32_t)m, &r) : NULL;
	int rc;
	if (b) {
		/* the nonce first, then the shared rest: a message's fields may come in any order */
		Envoy__Service__Discovery__V3__DiscoveryResponse head = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_RESPONSE__INIT;
		head.nonce = t->nonce;
		b->refs++;
		rc = s->io.send_lent(s->io.ctx, &head.base, b->bytes, b->len, body_unref, b);
		if (rc < 0)
			body_unref(b);
	} else {
		r.nonce = t->nonce;
		rc = s->io.send(s->io.ctx, &r.base);
	}
	free(anys);
	free(ap);
	free(incl);
	if (rc >= 0 && partial) /* the client now holds these (and of the others, nothing) */
		for (uint32_t i = 0, j = 0; i < t->subs.n; i++) {
			int held = (int)j < n && t->subs.v[i].name == v[j]->name;
			t->subs.v[i].version = held ? v[j++]->hash : 0;
		}
	free(v);
	if (rc < 0)
		return rc;
	t->sent_version = ver;
	sent(s, t, version);
	wf_debug("ads: %s %s: sent %s version %s (%d resources, nonce %s)", s->node->id, s->peer,
	         wf_xds_type_abbr[type], version, n, t->nonce);
	return 0;
}

/* Delta: send what changed of the subscribed resources, and what went. `always`: respond
 * even when nothing changed (the first request of a type). */
static int delta_send(struct wf_ads_stream *s, int type, int always)
{
	struct tstate *t = &s->t[type];
	struct wf_xds_packed **v;
	int n = view(s, type, &v);
	if (n < 0)
		return n;
	Envoy__Service__Discovery__V3__Resource *res = calloc((size_t)n + 1, sizeof(*res));
	Envoy__Service__Discovery__V3__Resource **rp = calloc((size_t)n + 1, sizeof(*rp));
	Google__Protobuf__Any *anys = calloc((size_t)n + 1, sizeof(*anys));
	char **removed = calloc((size_t)t->known.n + 1, sizeof(*removed));
	uint32_t nc = 0, nr = 0;
	int rc = -ENOMEM;
	if (!res || !rp || !anys || !removed)
		goto out;
	for (int i = 0; i < n; i++) {
		struct nv *k = nv_find(&t->known, v[i]->name);
		if (k && k->version == v[i]->hash)
			continue;
		envoy__service__discovery__v3__resource__init(&res[nc]);
		google__protobuf__any__init(&anys[nc]);
		anys[nc].type_url = (char *)wf_xds_type_url[type];
		anys[nc].value.data = v[i]->bytes;
		anys[nc].value.len = v[i]->len;
		res[nc].name = (char *)v[i]->name; /* (only read) */
		res[nc].version = v[i]->version;
		res[nc].resource = &anys[nc];
		rp[nc] = &res[nc];
		nc++;
	}
	/* what the client holds and is no longer in its view */
	for (uint32_t i = 0, j = 0; i < t->known.n; i++) {
		const char *name = t->known.v[i].name;
		while (j < (uint32_t)n && strcmp(v[j]->name, name) < 0)
			j++;
		if (j < (uint32_t)n && !strcmp(v[j]->name, name))
			continue;
		removed[nr++] = (char *)t->known.v[i].name; /* (protobuf-c wants char *: only read) */
	}
	rc = 0;
	if (!nc && !nr && !always)
		goto out;
	char version[24];
	snprintf(version, sizeof(version), "%016llx", (unsigned long long)set_version(v, n));
	snprintf(t->nonce, sizeof(t->nonce), "%llu", (unsigned long long)++s->nonce_seq);
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse r = ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_RESPONSE__INIT;
	r.system_version_info = version;
	r.type_url = (char *)wf_xds_type_url[type];
	r.nonce = t->nonce;
	r.n_resources = nc;
	r.resources = rp;
	r.n_removed_resources = nr;
	r.removed_resources = removed;
	rc = s->io.send(s->io.ctx, &r.base);
	if (rc < 0)
		goto out;
	wf_debug("ads: %s %s: sent delta %s: %u changed, %u removed (nonce %s)", s->node->id, s->peer,
	         wf_xds_type_abbr[type], nc, nr, t->nonce);
	/* the client now holds these versions (the removed names last: they point into known) */
	for (int i = 0; i < n && rc == 0; i++)
		rc = nv_put(&t->known, v[i]->name, v[i]->hash);
	for (uint32_t i = nr; i-- > 0;)
		nv_del(&t->known, removed[i]);
	sent(s, t, version);
out:
	free(res);
	free(rp);
	free(anys);
	free(removed);
	free(v);
	return rc;
}

/* Send what changed for every requested type, in make-before-break order, unless the client
 * is not reading (then wait for writable). */
static int stream_sync(struct wf_ads_stream *s)
{
	if (!s->snap)
		return 0; /* the generator has nothing for it yet: an empty set would remove all it has */
	for (int type = 0; type < WF_XDS_NTYPES; type++) {
		if (!s->t[type].requested)
			continue;
		if (s->io.queued && s->io.queued(s->io.ctx) >= WF_ADS_WATERMARK) {
			s->held = 1;
			return 0;
		}
		int rc = s->delta ? delta_send(s, type, 0) : sotw_send(s, type);
		if (rc < 0)
			return rc;
	}
	s->held = 0;
	return 0;
}

void wf_ads_stream_writable(struct wf_ads_stream *s)
{
	if (s->held)
		stream_sync(s);
}

void wf_ads_push(struct wf_ads *a)
{
	bodies_drop(a); /* of the old content */
	for (struct wf_ads_stream *s = a->streams; s; s = s->next) {
		if (!s->node || s->due)
			continue;
		s->due = 1;
		s->due_next = NULL;
		s->due_prev = a->due_tail;
		if (a->due_tail)
			a->due_tail->due_next = s;
		else
			a->due_head = s;
		a->due_tail = s;
	}
}

/* What the streams pushed to have not handed to their clients yet; the ones whose output
 * left are forgotten. */
static size_t flying_bytes(struct wf_ads *a)
{
	size_t sum = 0;
	for (struct wf_ads_stream **pp = &a->flying; *pp;) {
		struct wf_ads_stream *s = *pp;
		size_t q = s->io.queued ? s->io.queued(s->io.ctx) : 0;
		if (!q) {
			*pp = s->fly_next;
			s->flying = 0;
			continue;
		}
		sum += q;
		pp = &s->fly_next;
	}
	return sum;
}

int wf_ads_pump(struct wf_ads *a, uint64_t slice_us)
{
	uint64_t t0 = wf_now_us();
	size_t out = flying_bytes(a);
	int served = 0;
	while (a->due_head) {
		if (out >= a->budget)
			return WF_ADS_PUMP_DRAIN;
		if (served && wf_now_us() - t0 >= slice_us)
			return WF_ADS_PUMP_MORE; /* (at least one stream per call: always progress) */
		served = 1;
		struct wf_ads_stream *s = a->due_head;
		due_unlink(a, s);
		struct wf_xds_snap *snap = wf_xds_cache_get(a->cache, s->node);
		if (!snap)
			continue; /* the generator failed for it: it keeps what it has */
		wf_xds_snap_unref(s->snap);
		s->snap = snap;
		stream_sync(s);
		size_t q = s->io.queued ? s->io.queued(s->io.ctx) : 0;
		if (q && !s->flying) {
			s->flying = 1;
			s->fly_next = a->flying;
			a->flying = s;
		}
		out += q;
	}
	return 0;
}

/* ---- requests ------------------------------------------------------------------------------- */

/* The first request's node, and the stream's first snapshot. */
static int take_node(struct wf_ads_stream *s, Envoy__Config__Core__V3__Node **node, char *err, size_t errlen)
{
	if (s->node)
		return 0;
	if (!*node || !(*node)->id[0]) {
		snprintf(err, errlen, "the first request of a stream must carry node.id");
		return WF_GRPC_INVALID_ARGUMENT;
	}
	s->node = *node;
	*node = NULL; /* the request gives it up */
	if (s->a->hooks.connected)
		s->a->hooks.connected(s->a->hooks.ctx, s->node);
	s->snap = wf_xds_cache_get(s->a->cache, s->node);
	wf_info("ads: proxy %s (cluster %s) connected from %s (%s)", s->node->id, s->node->cluster, s->peer,
	        s->delta ? "delta" : "state of the world");
	return 0;
}

/* ACK or NACK of the type's last response. */
static void ack(struct wf_ads_stream *s, struct tstate *t, int type, const char *version, const Google__Rpc__Status *e)
{
	if (e) {
		t->status = WF_ADS_NACK;
		free(t->nack);
		t->nack = strdup(e->message ? e->message : "");
		wf_warn("ads: proxy %s (%s) rejected %s version %s: %s", s->node->id, s->peer, wf_xds_type_abbr[type],
		        t->sent, t->nack ? t->nack : "");
		return;
	}
	t->status = WF_ADS_SYNCED;
	free(t->nack);
	t->nack = NULL;
	snprintf(t->acked, sizeof(t->acked), "%s", version);
}

/* What every request does first: the stream's node (from its first request), then the type.
 * 0 with *type set (-1: a type this server does not serve, ignored as Envoy's servers do), or
 * a gRPC status with err filled. */
static int begin(struct wf_ads_stream *s, Envoy__Config__Core__V3__Node **node, const char *url, int *type,
                 char *err, size_t errlen)
{
	int rc = take_node(s, node, err, errlen);
	if (rc)
		return rc;
	*type = wf_xds_type_of(url);
	if (*type < 0)
		wf_debug("ads: %s: type_url \"%.200s\" is not one this server serves", s->peer, url);
	return 0;
}

static int sotw_recv(struct wf_ads_stream *s, const uint8_t *p, size_t n, char *err, size_t errlen)
{
	Envoy__Service__Discovery__V3__DiscoveryRequest *q =
		envoy__service__discovery__v3__discovery_request__unpack(NULL, n, p);
	if (!q) {
		snprintf(err, errlen, "the DiscoveryRequest does not decode");
		return WF_GRPC_INVALID_ARGUMENT;
	}
	int type, rc = begin(s, &q->node, q->type_url, &type, err, errlen);
	if (rc || type < 0)
		goto out;
	struct tstate *t = &s->t[type];
	if (q->response_nonce[0]) {
		if (strcmp(q->response_nonce, t->nonce))
			goto out; /* an answer to an older response: a newer one is on its way */
		ack(s, t, type, q->version_info, q->error_detail);
		if (q->error_detail)
			subs_unsent(t); /* NACKed: the next response holds the whole set again */
	}
	/* SotW requests carry the whole subscription every time; a changed one is answered with
	 * the whole set (EDS, RDS: not only what changed) */
	int same = q->n_resource_names == t->subs.n; /* (rebuilt, it has nothing sent) */
	size_t k = 0; /* names sent in the order they are kept in are compared in one walk */
	while (same && k < q->n_resource_names && !strcmp(q->resource_names[k], t->subs.v[k].name))
		k++;
	for (size_t i = k; same && i < q->n_resource_names; i++)
		same = nv_find(&t->subs, q->resource_names[i]) != NULL;
	if (!q->response_nonce[0])
		subs_unsent(t);
	int star = 0;
	for (size_t i = 0; i < q->n_resource_names; i++)
		star |= !strcmp(q->resource_names[i], "*");
	int legacy = (type == WF_XDS_LDS || type == WF_XDS_CDS) && !q->n_resource_names &&
	             (!t->requested || t->wildcard);
	t->wildcard = star || legacy;
	if (!same)
		nv_clear(&t->subs);
	for (size_t i = 0; !same && i < q->n_resource_names; i++)
		if (strcmp(q->resource_names[i], "*") && nv_put(&t->subs, q->resource_names[i], 0) < 0) {
			rc = WF_GRPC_RESOURCE_EXHAUSTED;
			snprintf(err, errlen, "out of memory");
			goto out;
		}
	if (!same)
		nv_fit(&t->subs);
	t->requested = 1;
	if (s->snap && !s->held && sotw_send(s, type) < 0) {
		rc = WF_GRPC_UNAVAILABLE;
		snprintf(err, errlen, "the response could not be sent");
	}
out:
	envoy__service__discovery__v3__discovery_request__free_unpacked(q, NULL);
	return rc;
}

static int delta_recv(struct wf_ads_stream *s, const uint8_t *p, size_t n, char *err, size_t errlen)
{
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *q =
		envoy__service__discovery__v3__delta_discovery_request__unpack(NULL, n, p);
	if (!q) {
		snprintf(err, errlen, "the DeltaDiscoveryRequest does not decode");
		return WF_GRPC_INVALID_ARGUMENT;
	}
	int type, rc = begin(s, &q->node, q->type_url, &type, err, errlen);
	if (rc || type < 0)
		goto out;
	struct tstate *t = &s->t[type];
	int first = !t->requested;
	if (q->response_nonce[0] && !strcmp(q->response_nonce, t->nonce))
		ack(s, t, type, t->sent, q->error_detail);
	int fail = 0;
	if (first) {
		/* what the client already holds (after a reconnect): not sent again if unchanged */
		for (size_t i = 0; i < q->n_initial_resource_versions; i++) {
			const char *ver = q->initial_resource_versions[i]->value;
			char *end;
			unsigned long long h = strtoull(ver ? ver : "", &end, 16);
			if (!ver || !*ver || *end)
				h = 0; /* not one of ours: differs from any content hash but by chance */
			fail |= nv_put(&t->known, q->initial_resource_versions[i]->key, h) < 0;
		}
		if (!q->n_resource_names_subscribe && (type == WF_XDS_LDS || type == WF_XDS_CDS))
			t->wildcard = 1;
	}
	for (size_t i = 0; i < q->n_resource_names_subscribe; i++) {
		const char *name = q->resource_names_subscribe[i];
		if (!strcmp(name, "*"))
			t->wildcard = 1;
		else
			fail |= nv_put(&t->subs, name, 0) < 0;
	}
	for (size_t i = 0; i < q->n_resource_names_unsubscribe; i++) {
		const char *name = q->resource_names_unsubscribe[i];
		if (!strcmp(name, "*")) {
			t->wildcard = 0;
		} else {
			nv_del(&t->subs, name);
			nv_del(&t->known, name); /* the client forgets it: nothing to remove */
		}
	}
	if (!t->wildcard) {
		/* resources the client holds that it is not subscribed to any more (the wildcard
		 * went): forgotten with it */
		for (uint32_t i = t->known.n; i-- > 0;)
			if (!nv_find(&t->subs, t->known.v[i].name))
				nv_del(&t->known, t->known.v[i].name);
	}
	if (fail) {
		rc = WF_GRPC_RESOURCE_EXHAUSTED;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	t->requested = 1;
	if (s->snap && !s->held && delta_send(s, type, first) < 0) {
		rc = WF_GRPC_UNAVAILABLE;
		snprintf(err, errlen, "the response could not be sent");
	}
out:
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(q, NULL);
	return rc;
}

int wf_ads_stream_recv(struct wf_ads_stream *s, const uint8_t *p, size_t n, char *err, size_t errlen)
{
	return s->delta ? delta_recv(s, p, n, err, errlen) : sotw_recv(s, p, n, err, errlen);
}

/* ---- status ---------------------------------------------------------------------------------- */

int wf_ads_syncz(const struct wf_ads *a, struct wf_jbuf *b)
{
	int rc = wf_jbuf_puts(b, "[");
	int first = 1;
	for (const struct wf_ads_stream *s = a->streams; s && !rc; s = s->next) {
		if (!s->node)
			continue;
		rc |= wf_jbuf_puts(b, first ? "\n {\"proxy\": " : ",\n {\"proxy\": ");
		first = 0;
		rc |= wf_jbuf_put_jstr(b, s->node->id, strlen(s->node->id));
		rc |= wf_jbuf_puts(b, ", \"cluster\": ");
		rc |= wf_jbuf_put_jstr(b, s->node->cluster, strlen(s->node->cluster));
		rc |= wf_jbuf_printf(b, ", \"peer\": \"%s\", \"api\": \"%s\"", s->peer, s->delta ? "delta" : "sotw");
		for (int type = 0; type < WF_XDS_NTYPES; type++) {
			const struct tstate *t = &s->t[type];
			rc |= wf_jbuf_printf(b, ",\n  \"%s\": {\"status\": \"%s\", \"sent\": \"%s\", \"acked\": \"%s\"",
			                     wf_xds_type_abbr[type], wf_ads_status_name(t->status), t->sent, t->acked);
			if (t->nack) {
				rc |= wf_jbuf_puts(b, ", \"nack\": ");
				rc |= wf_jbuf_put_jstr(b, t->nack, strlen(t->nack));
			}
			rc |= wf_jbuf_puts(b, "}");
		}
		rc |= wf_jbuf_puts(b, "}");
	}
	rc |= wf_jbuf_puts(b, "\n]\n");
	return rc ? -ENOMEM : 0;
}
