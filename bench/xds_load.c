/* xds-load: N ADS clients against one control plane, for `make bench`'s control case.
 *
 * One process, one event loop; each client is its own StreamAggregatedResources call (SotW) on
 * a connection of its own (src/proxy/grpc_stream), with a Node like a sidecar's
 * (sidecar~127.x.y.z~load-N.default~default.svc.cluster.local, metadata NAMESPACE,
 * WORKLOAD_NAME, LABELS, INSTANCE_IPS), so that the control plane registers each. A client asks
 * for CDS and LDS (wildcard), then EDS for the EDS clusters it got and RDS for the route
 * configurations its listeners name, and ACKs every response (version + nonce), as a proxy does.
 * Clients connect in batches (--batch every --batch-ms) so as not to overflow accept queues.
 *
 * Then, for each --change CMD (with the --type it changes, EDS, RDS, CDS or LDS, given before
 * it), once the streams have been quiet for --quiet-ms: the command runs (sh -c), and each
 * client's convergence is the time from just before the command to its next response of that
 * type; a client with none within --timeout-s has not converged.
 *
 * With --control-pid PID, the control plane's CPU (utime+stime from /proc/PID/stat) is taken for
 * the initial push and for each change, and its VmRSS/VmHWM after each phase.
 *
 * Output: one JSON line on stdout. Streams that fail are counted (and the first reasons logged
 * on stderr), never hidden; the exit status is 1 when any stream failed or a phase timed out. */
#include "core/loop.h"
#include "http/h2.h"
#include "net/sock.h"
#include "proxy/config.h"
#include "proxy/grpc_stream.h"
#include "xds/types.h"

#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/struct.pb-c.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#define XXH_INLINE_ALL /* compiled in, as in src/core/hash.c */
#include <xxhash.h>

typedef Envoy__Service__Discovery__V3__DiscoveryRequest Request;
typedef Envoy__Service__Discovery__V3__DiscoveryResponse Response;
typedef Google__Protobuf__Struct Struct;
typedef Google__Protobuf__Value Value;
typedef Google__Protobuf__Struct__FieldsEntry Entry;

#define ADS_PATH "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define MAX_CHANGES 8

/* A sorted list of resource names (the EDS or RDS subscription). */
struct names {
	char **v;
	size_t n;
};

/* What one response's resources name for the next type (EDS names from CDS, RDS names from
 * LDS), remembered by the content's hash: every client of a namespace gets the same content, so
 * each distinct content is decoded once. */
#define CACHE_SLOTS 16
struct cached {
	uint64_t hash;
	int used;
	struct names names;
};
static struct cached cache[2][CACHE_SLOTS]; /* [0]: CDS -> EDS names, [1]: LDS -> RDS names */
static unsigned cache_next[2];

enum { Z_KEY, Z_LEN, Z_VARINT, Z_BYTES };
struct scan {
	int state, bad;
	uint64_t v;
	int shift;
	uint64_t field, left;
	char f[6][128];                    /* fields 1, 4, 5 (captured up to 127 bytes) */
	size_t flen[6];
	char any_url[128];                 /* the first resource's type_url, when seen */
};

struct client {
	int idx;
	struct wf_grpc_stream *st;
	uint8_t up, failed, node_sent;
	uint8_t got[WF_XDS_NTYPES];
	char *version[WF_XDS_NTYPES], *nonce[WF_XDS_NTYPES];
	struct names sub[WF_XDS_NTYPES];   /* EDS and RDS: what was asked for */
	uint64_t opened_us, full_us;       /* full_us: all four types received (0: not yet) */
	uint64_t last_rx_us[WF_XDS_NTYPES];
	char ip[48], name[32], id[144];
	struct scan z;                     /* the response being read */
};

static struct {
	struct wf_loop loop;
	struct wf_cluster cl;
	struct wf_addr addr;
	char authority[64];
	struct client *c;
	int n, opened, batch, batch_ms, timeout_s, quiet_ms;
	int up, failed, full;
	uint64_t last_rx_us;               /* any response, any client */
	uint64_t start_us;
	struct wf_timer tick;
	int phase;                         /* 0: connecting/initial push, 1..: change k-1 */
	uint64_t phase_start_us;
	int n_changes;
	struct { char *cmd; int type; uint64_t t0_us; int ran; } change[MAX_CHANGES];
	int control_pid;
	int timed_out;
	char reasons[4][200];
	int n_reasons;
	/* results */
	double push_p50, push_p99, push_max, push_wall;
	double cpu_initial;
	long hwm_initial, rss_initial;
	struct { double p50, p99, max, cpu; int missed; long rss, hwm; } res[MAX_CHANGES];
} L = {.n = 2000, .batch = 50, .batch_ms = 20, .timeout_s = 60, .quiet_ms = 1500};

/* ---- /proc ------------------------------------------------------------------------------- */

static double proc_cpu(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	/* after ") ": state(3) ... utime(14) stime(15) */
	unsigned long ut = 0, st = 0;
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long proc_status_kb(int pid, const char *key)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long v = -1;
	size_t kl = strlen(key);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* ---- requests ---------------------------------------------------------------------------- */

static Value *str_value(const char *s)
{
	Value *v = malloc(sizeof(*v));
	google__protobuf__value__init(v);
	v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
	v->string_value = (char *)s;
	return v;
}

static Entry *entry(const char *k, Value *v)
{
	Entry *e = malloc(sizeof(*e));
	google__protobuf__struct__fields_entry__init(e);
	e->key = (char *)k;
	e->value = v;
	return e;
}

static void send_request(struct client *c, int t)
{
	Request rq = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
	Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
	Struct md = GOOGLE__PROTOBUF__STRUCT__INIT, labels = GOOGLE__PROTOBUF__STRUCT__INIT;
	Entry *le[1] = {0}, *me[4] = {0};
	if (!c->node_sent) {
		c->node_sent = 1;
		node.id = c->id;
		node.cluster = c->name;
		le[0] = entry("app", str_value(c->name));
		labels.n_fields = 1;
		labels.fields = le;
		Value *lv = malloc(sizeof(*lv));
		google__protobuf__value__init(lv);
		lv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
		lv->struct_value = &labels;
		me[0] = entry("NAMESPACE", str_value("default"));
		me[1] = entry("WORKLOAD_NAME", str_value(c->name));
		me[2] = entry("LABELS", lv);
		me[3] = entry("INSTANCE_IPS", str_value(c->ip));
		md.n_fields = 4;
		md.fields = me;
		node.metadata = &md;
		rq.node = &node;
	}
	rq.type_url = (char *)wf_xds_type_url[t];
	if (c->version[t])
		rq.version_info = c->version[t];
	if (c->nonce[t])
		rq.response_nonce = c->nonce[t];
	rq.n_resource_names = c->sub[t].n;
	rq.resource_names = c->sub[t].v;
	size_t len = envoy__service__discovery__v3__discovery_request__get_packed_size(&rq);
	uint8_t *buf = malloc(len ? len : 1);
	envoy__service__discovery__v3__discovery_request__pack(&rq, buf);
	if (c->st && wf_grpc_stream_send(c->st, buf, len) < 0 && L.n_reasons < 4)
		snprintf(L.reasons[L.n_reasons++], sizeof(L.reasons[0]), "client %d: cannot send a request", c->idx);
	free(buf);
	for (int i = 0; i < 4; i++)
		if (me[i]) {
			free(me[i]->value);
			free(me[i]);
		}
	if (le[0]) {
		free(le[0]->value);
		free(le[0]);
	}
}

/* ---- names ------------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_add(struct names *s, const char *v)
{
	if (!v || !*v)
		return;
	s->v = realloc(s->v, (s->n + 1) * sizeof(*s->v));
	s->v[s->n++] = strdup(v);
}

/* Sort and drop duplicates. */
static void names_norm(struct names *s)
{
	if (!s->n)
		return;
	qsort(s->v, s->n, sizeof(*s->v), cmp_str);
	size_t k = 1;
	for (size_t i = 1; i < s->n; i++) {
		if (strcmp(s->v[i], s->v[k - 1]))
			s->v[k++] = s->v[i];
		else
			free(s->v[i]);
	}
	s->n = k;
}

static int names_eq(const struct names *a, const struct names *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return 0;
	return 1;
}

static void names_free(struct names *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static void names_copy(struct names *dst, const struct names *src)
{
	names_free(dst);
	dst->v = calloc(src->n + 1, sizeof(*dst->v));
	for (size_t i = 0; i < src->n; i++)
		dst->v[i] = strdup(src->v[i]);
	dst->n = src->n;
}

static void hcm_rds(const Google__Protobuf__Any *a, struct names *out)
{
	if (!a || !strstr(a->type_url, "HttpConnectionManager"))
		return;
	Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *h =
	    envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__unpack(
	        NULL, a->value.len, a->value.data);
	if (!h)
		return;
	if (h->route_specifier_case == ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS &&
	    h->rds)
		names_add(out, h->rds->route_config_name);
	envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__free_unpacked(h, NULL);
}

static void chain_rds(const Envoy__Config__Listener__V3__FilterChain *fc, struct names *out)
{
	for (size_t i = 0; fc && i < fc->n_filters; i++)
		if (fc->filters[i]->config_type_case == ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG)
			hcm_rds(fc->filters[i]->typed_config, out);
}

/* The names a CDS (EDS names) or LDS (RDS names) response asks for next. <0: a resource does
 * not decode. */
static int names_of(const Response *r, int t, struct names *out)
{
	for (size_t i = 0; i < r->n_resources; i++) {
		const ProtobufCBinaryData *d = &r->resources[i]->value;
		if (t == WF_XDS_CDS) {
			Envoy__Config__Cluster__V3__Cluster *cl =
			    envoy__config__cluster__v3__cluster__unpack(NULL, d->len, d->data);
			if (!cl)
				return -1;
			if (cl->cluster_discovery_type_case == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE &&
			    cl->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS)
				names_add(out, cl->eds_cluster_config && *cl->eds_cluster_config->service_name
				                   ? cl->eds_cluster_config->service_name
				                   : cl->name);
			envoy__config__cluster__v3__cluster__free_unpacked(cl, NULL);
		} else {
			Envoy__Config__Listener__V3__Listener *l =
			    envoy__config__listener__v3__listener__unpack(NULL, d->len, d->data);
			if (!l)
				return -1;
			for (size_t k = 0; k < l->n_filter_chains; k++)
				chain_rds(l->filter_chains[k], out);
			chain_rds(l->default_filter_chain, out);
			if (l->api_listener)
				hcm_rds(l->api_listener->api_listener, out);
			envoy__config__listener__v3__listener__free_unpacked(l, NULL);
		}
	}
	names_norm(out);
	return 0;
}

static const struct names *names_cached(const Response *r, int t)
{
	int k = t == WF_XDS_CDS ? 0 : 1;
	XXH64_state_t *h = XXH64_createState();
	XXH64_reset(h, (uint64_t)t);
	for (size_t i = 0; i < r->n_resources; i++) {
		XXH64_update(h, r->resources[i]->value.data, r->resources[i]->value.len);
		XXH64_update(h, "\0", 1);
	}
	uint64_t hash = XXH64_digest(h);
	XXH64_freeState(h);
	for (int i = 0; i < CACHE_SLOTS; i++)
		if (cache[k][i].used && cache[k][i].hash == hash)
			return &cache[k][i].names;
	struct cached *e = &cache[k][cache_next[k]++ % CACHE_SLOTS];
	names_free(&e->names);
	e->used = 0;
	if (names_of(r, t, &e->names) < 0)
		return NULL;
	e->used = 1;
	e->hash = hash;
	return &e->names;
}

/* ---- the clients ------------------------------------------------------------------------- */

static void fail(struct client *c, const char *why)
{
	if (c->failed)
		return;
	c->failed = 1;
	L.failed++;
	if (L.n_reasons < 4)
		snprintf(L.reasons[L.n_reasons++], sizeof(L.reasons[0]), "client %d: %s", c->idx, why);
}

static void on_ready(void *ctx)
{
	struct client *c = ctx;
	c->up = 1;
	L.up++;
	send_request(c, WF_XDS_CDS);
	send_request(c, WF_XDS_LDS);
}

/* A DiscoveryResponse's version_info (1), type_url (4) and nonce (5), read off the wire as its
 * bytes come, without gathering it or decoding its resources: this one process reads what two
 * thousand proxies would each read on a CPU of their own. Only CDS and LDS responses are
 * gathered whole and decoded (their resources name what to ask for next); the type is known
 * from the first bytes: the top-level type_url, or the first resource's (an Any's type_url
 * comes first in it). */
static int varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (*i >= n)
			return -1;
		uint8_t b = p[(*i)++];
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

static void scan_bytes(struct scan *z, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n && !z->bad;) {
		if (z->state == Z_BYTES) {
			size_t k = z->left < n - i ? (size_t)z->left : n - i;
			if (z->field == 1 || z->field == 4 || z->field == 5) {
				size_t room = sizeof(z->f[0]) - 1 - z->flen[z->field];
				size_t c = k < room ? k : room;
				memcpy(z->f[z->field] + z->flen[z->field], p + i, c);
				z->flen[z->field] += c;
			}
			i += k;
			z->left -= k;
			if (!z->left)
				z->state = Z_KEY;
			continue;
		}
		uint8_t b = p[i++];
		z->v |= (uint64_t)(b & 0x7f) << z->shift;
		z->shift += 7;
		if (b & 0x80) {
			z->bad |= z->shift > 63;
			continue;
		}
		uint64_t v = z->v;
		z->v = 0;
		z->shift = 0;
		switch (z->state) {
		case Z_KEY:
			z->field = v >> 3;
			switch (v & 7) {
			case 0: z->state = Z_VARINT; break;
			case 2: z->state = Z_LEN; break;
			case 1: z->field = 0, z->left = 8, z->state = Z_BYTES; break;
			case 5: z->field = 0, z->left = 4, z->state = Z_BYTES; break;
			default: z->bad = 1;
			}
			break;
		case Z_LEN:
			z->left = v;
			z->state = v ? Z_BYTES : Z_KEY;
			if (z->field == 2 && !z->any_url[0] && i + 2 <= n && p[i] == 0x0a) {
				/* a resource (an Any) begins: its type_url, if this piece holds it */
				size_t j = i + 1;
				uint64_t ul;
				if (varint(p, n, &j, &ul) == 0 && ul < sizeof(z->any_url) && ul <= n - j)
					snprintf(z->any_url, sizeof(z->any_url), "%.*s", (int)ul, (const char *)p + j);
			}
			break;
		default: z->state = Z_KEY; break;
		}
	}
}


/* The response's type from what was scanned so far, or -1. */
static int scan_type(const struct scan *z)
{
	if (z->flen[4])
		return wf_xds_type_of(z->f[4]);
	return z->any_url[0] ? wf_xds_type_of(z->any_url) : -1;
}

/* A whole response was read (whole: its bytes when gathered, for CDS and LDS). */
static int got_response(struct client *c, const struct scan *z, const uint8_t *whole, size_t n)
{
	uint64_t now = wf_now_us();
	L.last_rx_us = now;
	if (z->bad || z->state != Z_KEY) {
		fail(c, "a DiscoveryResponse that does not decode");
		return -1;
	}
	int t = z->flen[4] ? wf_xds_type_of(z->f[4]) : -1;
	if (t < 0) {
		fail(c, "a response of an unknown type");
		return -1;
	}
	c->last_rx_us[t] = now;
	c->got[t] = 1;
	free(c->version[t]);
	free(c->nonce[t]);
	c->version[t] = strdup(z->f[1]);
	c->nonce[t] = strdup(z->f[5]);
	send_request(c, t); /* the ACK */
	if (t == WF_XDS_CDS || t == WF_XDS_LDS) {
		int next = t == WF_XDS_CDS ? WF_XDS_EDS : WF_XDS_RDS;
		Response *r = whole ? envoy__service__discovery__v3__discovery_response__unpack(NULL, n, whole) : NULL;
		const struct names *want = r ? names_cached(r, t) : NULL;
		if (r)
			envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
		if (!want) {
			fail(c, "a resource that does not decode");
			return -1;
		}
		if (!names_eq(want, &c->sub[next])) {
			names_copy(&c->sub[next], want);
			if (c->sub[next].n)
				send_request(c, next);
			else
				c->got[next] = 1; /* nothing to ask for */
		} else if (!want->n) {
			c->got[next] = 1;
		}
	}
	if (!c->full_us && c->got[0] && c->got[1] && c->got[2] && c->got[3]) {
		c->full_us = now;
		L.full++;
	}
	return 0;
}

static int on_message(void *ctx, const uint8_t *p, size_t n)
{
	struct scan z = {0};
	scan_bytes(&z, p, n);
	return got_response(ctx, &z, p, n);
}

static int on_piece(void *ctx, const uint8_t *p, size_t n, size_t off, size_t len)
{
	struct client *c = ctx;
	if (!off) {
		memset(&c->z, 0, sizeof(c->z));
		scan_bytes(&c->z, p, n);
		int t = scan_type(&c->z);
		if (t < 0 || t == WF_XDS_CDS || t == WF_XDS_LDS)
			return 1; /* gathered whole: decoded (or the type is not known yet) */
	} else {
		scan_bytes(&c->z, p, n);
	}
	return off + n == len ? got_response(c, &c->z, NULL, 0) : 0;
}

static void on_closed(void *ctx, int status, const char *why)
{
	struct client *c = ctx;
	c->st = NULL;
	char b[180];
	snprintf(b, sizeof(b), "stream closed: %s", why);
	fail(c, b);
}

static const struct wf_grpc_stream_ops ops = {.ready = on_ready, .message = on_message, .closed = on_closed, .piece = on_piece};

static void open_client(struct client *c)
{
	c->opened_us = wf_now_us();
	c->st = wf_grpc_stream_open(&L.loop, &L.cl, &L.addr, L.authority, ADS_PATH, &ops, c);
	if (!c->st)
		fail(c, strerror(errno));
}

/* ---- phases ------------------------------------------------------------------------------ */

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(const double *v, int n, double p)
{
	if (!n)
		return -1;
	int i = (int)(p * n + 0.999999) - 1;
	return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static void finish_initial(void)
{
	double *v = malloc(sizeof(double) * (L.n + 1));
	int k = 0;
	uint64_t last = 0;
	for (int i = 0; i < L.n; i++)
		if (L.c[i].full_us) {
			v[k++] = (double)(L.c[i].full_us - L.c[i].opened_us) / 1000.0;
			if (L.c[i].full_us > last)
				last = L.c[i].full_us;
		}
	qsort(v, k, sizeof(double), cmp_dbl);
	L.push_p50 = pct(v, k, 0.50);
	L.push_p99 = pct(v, k, 0.99);
	L.push_max = k ? v[k - 1] : -1;
	L.push_wall = last ? (double)(last - L.start_us) / 1000.0 : -1;
	free(v);
}

static void finish_change(int i)
{
	double *v = malloc(sizeof(double) * (L.n + 1));
	int k = 0, missed = 0, t = L.change[i].type;
	for (int j = 0; j < L.n; j++) {
		const struct client *c = &L.c[j];
		if (c->failed)
			continue;
		if (c->last_rx_us[t] > L.change[i].t0_us)
			v[k++] = (double)(c->last_rx_us[t] - L.change[i].t0_us) / 1000.0;
		else
			missed++;
	}
	qsort(v, k, sizeof(double), cmp_dbl);
	L.res[i].p50 = pct(v, k, 0.50);
	L.res[i].p99 = missed ? -1 : pct(v, k, 0.99);
	L.res[i].max = missed ? -1 : k ? v[k - 1] : -1;
	L.res[i].missed = missed;
	free(v);
}

static int converged(int i)
{
	for (int j = 0; j < L.n; j++)
		if (!L.c[j].failed && L.c[j].last_rx_us[L.change[i].type] <= L.change[i].t0_us)
			return 0;
	return 1;
}

static double cpu_mark;

static void on_tick(struct wf_loop *loop, struct wf_timer *t)
{
	uint64_t now = wf_now_us();
	wf_timer_set(loop, t, L.phase == 0 && L.opened < L.n ? (uint64_t)L.batch_ms : 10);
	if (L.phase == 0) {
		for (int b = 0; b < L.batch && L.opened < L.n; b++)
			open_client(&L.c[L.opened++]);
		/* initial push: every client has its four types (or failed), then quiet */
		int done = L.opened == L.n && L.full + L.failed >= L.n;
		int quiet = now - L.last_rx_us >= (uint64_t)L.quiet_ms * 1000;
		if (!done && now - L.start_us > (uint64_t)L.timeout_s * 1000000) {
			L.timed_out = 1;
			fprintf(stderr, "xds-load: initial push: %d of %d clients complete after %d s\n", L.full, L.n, L.timeout_s);
			done = 1;
		}
		if (!done || !quiet)
			return;
		finish_initial();
		if (L.control_pid) {
			double cpu = proc_cpu(L.control_pid);
			L.cpu_initial = cpu - cpu_mark;
			cpu_mark = cpu;
			L.hwm_initial = proc_status_kb(L.control_pid, "VmHWM");
			L.rss_initial = proc_status_kb(L.control_pid, "VmRSS");
		}
		L.phase = 1;
		L.phase_start_us = 0;
		if (L.timed_out)
			wf_loop_stop(loop);
		return;
	}
	int i = L.phase - 1;
	if (i >= L.n_changes) {
		wf_loop_stop(loop);
		return;
	}
	if (!L.change[i].ran) {
		if (now - L.last_rx_us < (uint64_t)L.quiet_ms * 1000)
			return;
		if (L.control_pid)
			cpu_mark = proc_cpu(L.control_pid);
		L.change[i].ran = 1;
		L.change[i].t0_us = wf_now_us();
		fprintf(stderr, "xds-load: change %d (%s): %s\n", i + 1, wf_xds_type_abbr[L.change[i].type], L.change[i].cmd);
		int rc = system(L.change[i].cmd);
		if (rc != 0)
			fprintf(stderr, "xds-load: change %d: the command exited with status %d\n", i + 1, rc);
		return;
	}
	int conv = converged(i);
	if (!conv && now - L.change[i].t0_us < (uint64_t)L.timeout_s * 1000000)
		return;
	/* converged (or timed out): wait for quiet, so that the CPU covers the whole push */
	if (now - L.last_rx_us < (uint64_t)L.quiet_ms * 1000 && now - L.change[i].t0_us < (uint64_t)L.timeout_s * 1000000)
		return;
	finish_change(i);
	if (L.control_pid) {
		L.res[i].cpu = proc_cpu(L.control_pid) - cpu_mark;
		L.res[i].rss = proc_status_kb(L.control_pid, "VmRSS");
		L.res[i].hwm = proc_status_kb(L.control_pid, "VmHWM");
	}
	L.phase++;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: xds-load --server HOST:PORT [--clients N] [--batch N] [--batch-ms MS] [--quiet-ms MS]\n"
	        "                [--timeout-s S] [--control-pid PID] [--type EDS|RDS|CDS|LDS --change CMD]...\n");
}

static int parse_type(const char *s)
{
	for (int t = 0; t < WF_XDS_NTYPES; t++)
		if (!strcasecmp(s, wf_xds_type_abbr[t]))
			return t;
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"server", 1, 0, 's'}, {"clients", 1, 0, 'n'}, {"batch", 1, 0, 'b'}, {"batch-ms", 1, 0, 'B'},
	    {"quiet-ms", 1, 0, 'q'}, {"timeout-s", 1, 0, 't'}, {"control-pid", 1, 0, 'p'}, {"type", 1, 0, 'T'},
	    {"change", 1, 0, 'c'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
	const char *server = NULL;
	int type = WF_XDS_EDS, o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 's': server = optarg; break;
		case 'n': L.n = atoi(optarg); break;
		case 'b': L.batch = atoi(optarg); break;
		case 'B': L.batch_ms = atoi(optarg); break;
		case 'q': L.quiet_ms = atoi(optarg); break;
		case 't': L.timeout_s = atoi(optarg); break;
		case 'p': L.control_pid = atoi(optarg); break;
		case 'T':
			if ((type = parse_type(optarg)) < 0) {
				fprintf(stderr, "xds-load: --type %s: one of CDS EDS LDS RDS\n", optarg);
				return 2;
			}
			break;
		case 'c':
			if (L.n_changes == MAX_CHANGES) {
				fprintf(stderr, "xds-load: at most %d --change\n", MAX_CHANGES);
				return 2;
			}
			L.change[L.n_changes].cmd = optarg;
			L.change[L.n_changes++].type = type;
			break;
		default: usage(); return o == 'h' ? 0 : 2;
		}
	}
	char ip[64];
	unsigned port = server ? wf_addr_str_split(server, ip, sizeof(ip)) : 0;
	if (!server || !port || wf_addr_from_ip(&L.addr, ip, port) < 0 || L.n <= 0 || L.batch <= 0) {
		usage();
		return 2;
	}
	snprintf(L.authority, sizeof(L.authority), "%s", server);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)L.n + 64) {
		fprintf(stderr, "xds-load: RLIMIT_NOFILE is %lu: too low for %d clients\n", (unsigned long)rl.rlim_cur, L.n);
		return 2;
	}
	L.cl.connect_timeout_ms = 10000;
	wf_h2_limits_default(&L.cl.h2.lim);
	wf_loop_init(&L.loop);
	L.c = calloc(L.n, sizeof(*L.c));
	for (int i = 0; i < L.n; i++) {
		struct client *c = &L.c[i];
		c->idx = i;
		snprintf(c->ip, sizeof(c->ip), "127.%d.%d.%d", 1 + i / 62500, i / 250 % 250, i % 250 + 1);
		snprintf(c->name, sizeof(c->name), "load-%d", i);
		snprintf(c->id, sizeof(c->id), "sidecar~%s~%s.default~default.svc.cluster.local", c->ip, c->name);
	}
	if (L.control_pid)
		cpu_mark = proc_cpu(L.control_pid);
	L.start_us = L.last_rx_us = wf_now_us();
	L.tick = (struct wf_timer){.cb = on_tick};
	wf_timer_set(&L.loop, &L.tick, 1);
	wf_loop_run(&L.loop);

	printf("{\"clients\":%d,\"connected\":%d,\"complete\":%d,\"failed\":%d,"
	       "\"first_push_ms\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f,\"all\":%.1f}",
	       L.n, L.up, L.full, L.failed, L.push_p50, L.push_p99, L.push_max, L.push_wall);
	if (L.control_pid)
		printf(",\"control\":{\"cpu_initial_s\":%.2f,\"rss_kb\":%ld,\"hwm_kb\":%ld}", L.cpu_initial, L.rss_initial,
		       L.hwm_initial);
	printf(",\"changes\":[");
	for (int i = 0; i < L.n_changes; i++) {
		if (i)
			printf(",");
		printf("{\"type\":\"%s\",\"ran\":%d,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f,\"not_converged\":%d",
		       wf_xds_type_abbr[L.change[i].type], L.change[i].ran, L.res[i].p50, L.res[i].p99, L.res[i].max,
		       L.change[i].ran ? L.res[i].missed : L.n - L.failed);
		if (L.control_pid)
			printf(",\"cpu_s\":%.2f,\"rss_kb\":%ld,\"hwm_kb\":%ld", L.res[i].cpu, L.res[i].rss, L.res[i].hwm);
		printf("}");
	}
	printf("]}\n");
	for (int i = 0; i < L.n_reasons; i++)
		fprintf(stderr, "xds-load: %s\n", L.reasons[i]);
	fflush(stdout);
	/* the streams end with the process */
	return L.failed || L.timed_out ? 1 : 0;
}
