/* Envoy resources from a YAML file, as a generator. */
#include "control/envoy_source.h"

#include "xds/cfgdoc.h"
#include "xds/registry.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "core/hash.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

struct item {
	int type;
	const char *name;               /* inside msg */
	const ProtobufCMessage *msg;    /* owned by the document */
};

struct wf_envoy_source {
	char *path, *dir, *base;
	struct wf_cfgdoc *doc;          /* the last good file */
	struct item *items;
	unsigned n_items;
	unsigned count[WF_XDS_NTYPES];
	uint64_t file_hash;             /* of the last good file's bytes: an unchanged save is no change */
	int ifd;
	struct wf_xds_generator gen;
};

/* The resource's name: `name`, or `cluster_name` for a ClusterLoadAssignment. */
static const char *res_name(const ProtobufCMessage *m, const char **field)
{
	const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "name");
	*field = "name";
	if (!f) {
		f = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "cluster_name");
		*field = "cluster_name";
	}
	if (!f || f->type != PROTOBUF_C_TYPE_STRING)
		return NULL;
	return *(const char *const *)((const char *)m + f->offset);
}

static int file_hash(const char *path, uint64_t *h)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	char buf[8192];
	size_t n;
	uint64_t v = 0;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		v = wf_xxh64(buf, n, v);
	fclose(f);
	*h = v;
	return 0;
}

/* Decode the file into a new document and its items. */
static int load(struct wf_envoy_source *s, struct wf_cfgdoc **docp, struct item **itemsp, unsigned *np,
                char *err, size_t errlen)
{
	struct wf_cfgdoc *doc = wf_cfgdoc_new(s->path);
	if (!doc)
		return -ENOMEM;
	int rc = wf_yaml_load_file(doc, &envoy__service__discovery__v3__discovery_response__descriptor, err, errlen);
	if (rc < 0) {
		wf_cfgdoc_free(doc);
		return rc;
	}
	const Envoy__Service__Discovery__V3__DiscoveryResponse *r = (const void *)wf_cfgdoc_root(doc);
	struct item *items = calloc(r->n_resources + 1, sizeof(*items));
	if (!items) {
		wf_cfgdoc_free(doc);
		return -ENOMEM;
	}
	if (r->type_url[0] || r->nonce[0] || r->canary)
		wf_cfg_err(doc, err, errlen, r, r->type_url[0] ? "type_url" : r->nonce[0] ? "nonce" : "canary",
		           "not used in a resources file (each resource's @type says its type)");
	else
		err[0] = 0;
	for (size_t i = 0; i < r->n_resources && !err[0]; i++) {
		const ProtobufCMessage *any = &r->resources[i]->base;
		ProtobufCMessage *m = wf_cfgdoc_any(doc, any, err, errlen);
		if (!m)
			break;
		int type = wf_xds_type_of(r->resources[i]->type_url);
		if (type < 0) {
			wf_cfg_err(doc, err, errlen, any, "@type",
			           "%s is not served over ADS (Listener, Cluster, RouteConfiguration or ClusterLoadAssignment)",
			           r->resources[i]->type_url);
			break;
		}
		const char *field, *name = res_name(m, &field);
		if (!name || !name[0]) {
			wf_cfg_err(doc, err, errlen, m, field, "a served resource needs a name");
			break;
		}
		for (size_t j = 0; j < i; j++)
			if (items[j].type == type && !strcmp(items[j].name, name)) {
				wf_cfg_err(doc, err, errlen, m, field, "%s \"%s\" is defined twice", wf_xds_type_abbr[type], name);
				break;
			}
		items[i] = (struct item){type, name, m};
	}
	if (err[0]) {
		free(items);
		wf_cfgdoc_free(doc);
		return -EINVAL;
	}
	*docp = doc;
	*itemsp = items;
	*np = (unsigned)r->n_resources;
	return 0;
}

static int generate(void *ctx, const Envoy__Config__Core__V3__Node *node, struct wf_xds_cache *c, struct wf_xds_snap *snap)
{
	struct wf_envoy_source *s = ctx;
	for (unsigned i = 0; i < s->n_items; i++) {
		int rc = wf_xds_snap_add(c, snap, s->items[i].type, s->items[i].name, s->items[i].msg);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void take(struct wf_envoy_source *s, struct wf_cfgdoc *doc, struct item *items, unsigned n)
{
	if (s->doc)
		wf_cfgdoc_free(s->doc);
	free(s->items);
	s->doc = doc;
	s->items = items;
	s->n_items = n;
	memset(s->count, 0, sizeof(s->count));
	for (unsigned i = 0; i < n; i++)
		s->count[items[i].type]++;
}

struct wf_envoy_source *wf_envoy_source_new(const char *path, char *err, size_t errlen)
{
	struct wf_envoy_source *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->path = strdup(path);
	char *d = strdup(path), *b = strdup(path);
	s->dir = d ? strdup(dirname(d)) : NULL;
	s->base = b ? strdup(basename(b)) : NULL;
	free(d);
	free(b);
	s->ifd = -1;
	s->gen = (struct wf_xds_generator){.name = "envoy-resources", .generate = generate, .ctx = s};
	struct wf_cfgdoc *doc;
	struct item *items;
	unsigned n;
	if (!s->path || !s->dir || !s->base) {
		snprintf(err, errlen, "out of memory");
		wf_envoy_source_free(s);
		return NULL;
	}
	int rc = file_hash(path, &s->file_hash);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		wf_envoy_source_free(s);
		return NULL;
	}
	if (load(s, &doc, &items, &n, err, errlen) < 0) {
		wf_envoy_source_free(s);
		return NULL;
	}
	take(s, doc, items, n);
	s->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->ifd >= 0 &&
	    inotify_add_watch(s->ifd, s->dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_MODIFY | IN_DELETE) < 0) {
		close(s->ifd);
		s->ifd = -1;
	}
	return s;
}

void wf_envoy_source_free(struct wf_envoy_source *s)
{
	if (!s)
		return;
	if (s->doc)
		wf_cfgdoc_free(s->doc);
	if (s->ifd >= 0)
		close(s->ifd);
	free(s->items);
	free(s->path);
	free(s->dir);
	free(s->base);
	free(s);
}

const struct wf_xds_generator *wf_envoy_source_generator(struct wf_envoy_source *s) { return &s->gen; }
unsigned wf_envoy_source_count(const struct wf_envoy_source *s, int type) { return s->count[type]; }
int wf_envoy_source_fd(const struct wf_envoy_source *s) { return s->ifd; }

int wf_envoy_source_reload(struct wf_envoy_source *s, char *err, size_t errlen)
{
	uint64_t h;
	int rc = file_hash(s->path, &h);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", s->path, strerror(-rc));
		return rc;
	}
	if (h == s->file_hash)
		return 0;
	struct wf_cfgdoc *doc;
	struct item *items;
	unsigned n;
	rc = load(s, &doc, &items, &n, err, errlen);
	if (rc < 0)
		return rc;
	s->file_hash = h;
	take(s, doc, items, n);
	return 1;
}

int wf_envoy_source_events(struct wf_envoy_source *s)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int hit = 0;
	ssize_t n;
	while ((n = read(s->ifd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *e = (const void *)p;
			/* the file itself, or Kubernetes' atomic writer (a ConfigMap volume): the file is
			 * a link through "..data", which is replaced by a rename */
			if (e->len && (!strcmp(e->name, s->base) || !strncmp(e->name, "..", 2)))
				hit = 1;
			p += sizeof(*e) + e->len;
		}
	}
	return hit;
}
