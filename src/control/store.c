/* The object store: Kubernetes-shaped YAML documents -> Istio objects (see store.h).
 *
 * The envelope (apiVersion, kind, metadata) is read here; `spec` goes through the generic
 * mapper (wf_yaml_load_node) with the kind's descriptor, so unknown fields, wrong types, bad
 * enums and durations are refused with file:line:col and a path that starts at "spec". */
#include "control/store.h"
#include "control/validate.h"
#include "core/str.h"

#include "istio/networking/v1alpha3/destination_rule.pb-c.h"
#include "istio/networking/v1alpha3/gateway.pb-c.h"
#include "istio/networking/v1alpha3/service_entry.pb-c.h"
#include "istio/networking/v1alpha3/sidecar.pb-c.h"
#include "istio/networking/v1alpha3/virtual_service.pb-c.h"
#include "istio/networking/v1alpha3/workload_entry.pb-c.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>
#include <yaml.h>

/* Field paths ("items[2].metadata.labels") are short; one cut at the buffer's end is harmless. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

static const struct {
	const char *name;
	const ProtobufCMessageDescriptor *d;
} kinds[WF_KIND_COUNT] = {
	[WF_KIND_VIRTUAL_SERVICE] = {"VirtualService", &istio__networking__v1alpha3__virtual_service__descriptor},
	[WF_KIND_DESTINATION_RULE] = {"DestinationRule", &istio__networking__v1alpha3__destination_rule__descriptor},
	[WF_KIND_SERVICE_ENTRY] = {"ServiceEntry", &istio__networking__v1alpha3__service_entry__descriptor},
	[WF_KIND_WORKLOAD_ENTRY] = {"WorkloadEntry", &istio__networking__v1alpha3__workload_entry__descriptor},
	[WF_KIND_GATEWAY] = {"Gateway", &istio__networking__v1alpha3__gateway__descriptor},
	[WF_KIND_SIDECAR] = {"Sidecar", &istio__networking__v1alpha3__sidecar__descriptor},
};

/* Istio kinds Weft knows of but does not implement yet: refused by name, not as unknown. */
static const char *const later_kinds[] = {
	"AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication", "Telemetry",
	"EnvoyFilter", "WorkloadGroup", "ProxyConfig", "WasmPlugin", "ServiceEntryStatus", NULL,
};

/* The same schema under every version Istio serves it. */
static const char *const versions[] = {
	"networking.istio.io/v1alpha3", "networking.istio.io/v1beta1", "networking.istio.io/v1", NULL,
};

/* metadata fields: the ones Weft reads, then the read-only ones a `kubectl get -o yaml`
 * adds (accepted and ignored). */
static const char *const meta_ignored[] = {
	"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
	"deletionTimestamp", "deletionGracePeriodSeconds", "finalizers", "ownerReferences",
	"generateName", "selfLink", NULL,
};

const char *wf_istio_kind_name(enum wf_istio_kind k)
{
	return (unsigned)k < WF_KIND_COUNT ? kinds[k].name : "?";
}

/* ---- error lists ---------------------------------------------------------------------- */

void wf_errs_add(struct wf_errs *e, const char *fmt, ...)
{
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 8;
		char **v = realloc(e->v, cap * sizeof(*v));
		if (!v)
			abort();
		e->v = v;
		e->cap = cap;
	}
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&e->v[e->n], fmt, ap) < 0)
		abort();
	va_end(ap);
	e->n++;
}

void wf_errs_free(struct wf_errs *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
	memset(e, 0, sizeof(*e));
}

/* ---- objects -------------------------------------------------------------------------- */

static void kv_free(struct wf_kv *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
}

void wf_istio_obj_free(struct wf_istio_obj *o)
{
	if (!o)
		return;
	free(o->api_version);
	free(o->name);
	free(o->ns);
	kv_free(o->labels, o->n_labels);
	kv_free(o->annotations, o->n_annotations);
	wf_cfgdoc_free(o->doc);
	free(o);
}

void wf_istio_objs_free(struct wf_istio_obj **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		wf_istio_obj_free(v[i]);
	free(v);
}

/* ---- parsing -------------------------------------------------------------------------- */

struct parse {
	const char *path;
	yaml_document_t *y;
	struct wf_errs *errs;
	struct wf_istio_obj **objs;
	size_t n, cap;
};

static const char *sc(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static void perr(struct parse *p, const yaml_node_t *n, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void perr(struct parse *p, const yaml_node_t *n, const char *where, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	wf_errs_add(p->errs, "%s:%zu:%zu: %s%s%s", p->path, n->start_mark.line + 1,
	            n->start_mark.column + 1, where ? where : "", where && *where ? ": " : "", msg);
}

static yaml_node_t *node(struct parse *p, int id) { return yaml_document_get_node(p->y, id); }

static int in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return 1;
	return 0;
}

static int string_map(struct parse *p, const yaml_node_t *n, const char *where, struct wf_kv **out,
                      size_t *nout)
{
	if (n->type != YAML_MAPPING_NODE) {
		perr(p, n, where, "expected a map of strings");
		return -1;
	}
	size_t k = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	*out = calloc(k ? k : 1, sizeof(**out));
	for (size_t i = 0; i < k; i++) {
		yaml_node_pair_t *pr = &n->data.mapping.pairs.start[i];
		const char *key = sc(node(p, pr->key)), *val = sc(node(p, pr->value));
		if (!key || !val) {
			perr(p, node(p, key ? pr->value : pr->key), where, "expected a map of strings");
			return -1;
		}
		(*out)[i].key = strdup(key);
		(*out)[i].value = strdup(val);
		*nout = i + 1;
	}
	return 0;
}

/* A key that appears twice in one YAML map (libyaml keeps both): 1 after reporting it. */
static int repeated_key(struct parse *p, const yaml_node_t *map, const yaml_node_pair_t *pr, const char *where)
{
	const char *k = sc(node(p, pr->key));
	for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; k && q < pr; q++) {
		const char *qk = sc(node(p, q->key));
		if (qk && !strcmp(qk, k)) {
			perr(p, node(p, pr->key), where, "field '%s' is set twice", k);
			return 1;
		}
	}
	return 0;
}

static int read_metadata(struct parse *p, const yaml_node_t *n, const char *where,
                         struct wf_istio_obj *o)
{
	char at[256];
	if (n->type != YAML_MAPPING_NODE) {
		perr(p, n, where, "expected a map (name, namespace, labels, annotations)");
		return -1;
	}
	for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
		const yaml_node_t *kn = node(p, pr->key), *vn = node(p, pr->value);
		const char *k = sc(kn);
		snprintf(at, sizeof(at), "%s.%s", where, k ? k : "?");
		if (!k) {
			perr(p, kn, where, "field names must be strings");
			return -1;
		}
		if (repeated_key(p, n, pr, where))
			return -1;
		if (!strcmp(k, "name") || !strcmp(k, "namespace")) {
			const char *v = sc(vn);
			if (!v || !*v) {
				perr(p, vn, at, "expected a non-empty string");
				return -1;
			}
			int ns = !strcmp(k, "namespace");
			if (ns ? !wf_istio_dns1123_label(v, 63) : !wf_istio_dns1123_subdomain(v)) {
				perr(p, vn, at, "'%s' is not a valid Kubernetes %s (lower-case letters, digits, '-'%s)", v, k,
				     ns ? ", at most 63" : " and '.'");
				return -1;
			}
			char **dst = ns ? &o->ns : &o->name;
			free(*dst);
			*dst = strdup(v);
		} else if (!strcmp(k, "labels")) {
			if (string_map(p, vn, at, &o->labels, &o->n_labels) < 0)
				return -1;
		} else if (!strcmp(k, "annotations")) {
			if (string_map(p, vn, at, &o->annotations, &o->n_annotations) < 0)
				return -1;
		} else if (!in_list(k, meta_ignored)) {
			perr(p, kn, where, "unknown field '%s' in metadata (Weft reads name, namespace, labels, annotations)", k);
			return -1;
		}
	}
	if (!o->name) {
		perr(p, n, where, "metadata.name is required");
		return -1;
	}
	return 0;
}

static void push(struct parse *p, struct wf_istio_obj *o)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 8;
		p->objs = realloc(p->objs, p->cap * sizeof(*p->objs));
		if (!p->objs)
			abort();
	}
	p->objs[p->n++] = o;
}

static void read_object(struct parse *p, yaml_node_t *n, const char *where, int depth);

static void read_list(struct parse *p, const yaml_node_t *items, const char *where, int depth)
{
	char at[64];
	if (items->type != YAML_SEQUENCE_NODE) {
		perr(p, items, where, "expected a list of objects");
		return;
	}
	for (yaml_node_item_t *it = items->data.sequence.items.start; it < items->data.sequence.items.top; it++) {
		snprintf(at, sizeof(at), "%s[%zu]", where, (size_t)(it - items->data.sequence.items.start));
		read_object(p, node(p, *it), at, depth + 1);
	}
}

/* One object: the document's root, or an item of a List (`where` is then "items[3]"). */
static void read_object(struct parse *p, yaml_node_t *n, const char *where, int depth)
{
	char at[256];
	if (n->type != YAML_MAPPING_NODE) {
		perr(p, n, where, "expected a Kubernetes object (a map with apiVersion, kind, metadata, spec)");
		return;
	}
	yaml_node_t *api = NULL, *kind = NULL, *meta = NULL, *spec = NULL, *items = NULL;
	for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *kn = node(p, pr->key), *vn = node(p, pr->value);
		const char *k = sc(kn);
		if (!k) {
			perr(p, kn, where, "field names must be strings");
			return;
		}
		if (repeated_key(p, n, pr, where))
			return;
		yaml_node_t **slot = !strcmp(k, "apiVersion") ? &api : !strcmp(k, "kind") ? &kind
		                   : !strcmp(k, "metadata") ? &meta : !strcmp(k, "spec") ? &spec
		                   : !strcmp(k, "items") ? &items : NULL;
		if (!slot && strcmp(k, "status")) { /* status: written by a cluster, ignored */
			unsigned d1 = wf_edit_distance(k, "metadata", 3), d2 = wf_edit_distance(k, "apiVersion", 3);
			const char *hint = d1 <= 2 ? "metadata" : d2 <= 2 ? "apiVersion" : wf_edit_distance(k, "spec", 2) <= 1 ? "spec" : NULL;
			if (hint)
				perr(p, kn, where, "unknown field '%s' (did you mean '%s'?)", k, hint);
			else
				perr(p, kn, where, "unknown field '%s' (an object has apiVersion, kind, metadata, spec)", k);
			return;
		}
		if (slot)
			*slot = vn;
	}
	const char *kname = sc(kind), *aname = sc(api);
	if (!kind || !kname || !*kname) {
		perr(p, kind ? kind : n, where, "'kind' is required (VirtualService, DestinationRule, ...)");
		return;
	}
	if (!api || !aname || !*aname) {
		perr(p, api ? api : n, where, "'apiVersion' is required (e.g. networking.istio.io/v1)");
		return;
	}
	if (!strcmp(kname, "List") && !strcmp(aname, "v1")) {
		if (depth > 0) {
			perr(p, kind, where, "a List inside a List");
			return;
		}
		if (items) {
			snprintf(at, sizeof(at), "%s%sitems", where, *where ? "." : "");
			read_list(p, items, at, depth);
		}
		return;
	}
	if (items) {
		perr(p, items, where, "'items' belongs to a List (kind: List, apiVersion: v1)");
		return;
	}
	int k = -1;
	for (int i = 0; i < WF_KIND_COUNT; i++)
		if (!strcmp(kname, kinds[i].name))
			k = i;
	if (k < 0) {
		if (in_list(kname, later_kinds))
			perr(p, kind, where, "kind %s (%s) is not supported yet", kname, aname);
		else
			perr(p, kind, where, "unknown kind '%s' (Weft reads VirtualService, DestinationRule, ServiceEntry, "
			                     "WorkloadEntry, Gateway, Sidecar)", kname);
		return;
	}
	if (!in_list(aname, versions)) {
		perr(p, api, where, "apiVersion '%s' does not serve %s (use networking.istio.io/v1, v1beta1 or v1alpha3)",
		     aname, kname);
		return;
	}
	if (!meta) {
		perr(p, n, where, "'metadata' with a name is required");
		return;
	}
	struct wf_istio_obj *o = calloc(1, sizeof(*o));
	o->kind = (enum wf_istio_kind)k;
	o->api_version = strdup(aname);
	o->line = (uint32_t)n->start_mark.line + 1;
	o->col = (uint32_t)n->start_mark.column + 1;
	snprintf(at, sizeof(at), "%s%smetadata", where, *where ? "." : "");
	if (read_metadata(p, meta, at, o) < 0) {
		wf_istio_obj_free(o);
		return;
	}
	if (!o->ns)
		o->ns = strdup("default");
	o->doc = wf_cfgdoc_new(p->path);
	if (o->doc)
		wf_cfgdoc_use_json_names(o->doc);
	snprintf(at, sizeof(at), "%s%sspec", where, *where ? "." : "");
	char err[1024];
	int r;
	if (spec && !(spec->type == YAML_SCALAR_NODE && spec->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	              (!*sc(spec) || !strcmp(sc(spec), "null") || !strcmp(sc(spec), "~")))) {
		r = wf_yaml_load_node(o->doc, kinds[k].d, (struct yaml_document_s *)p->y, (struct yaml_node_s *)spec,
		                      at, err, sizeof(err));
	} else {
		/* no spec (or `spec:` with nothing): an empty one, validation says what it lacks */
		yaml_node_t fake = {.type = YAML_MAPPING_NODE, .start_mark = spec ? spec->start_mark : n->start_mark};
		r = wf_yaml_load_node(o->doc, kinds[k].d, (struct yaml_document_s *)p->y, (struct yaml_node_s *)&fake,
		                      at, err, sizeof(err));
	}
	if (r < 0) {
		wf_errs_add(p->errs, "%s", err);
		wf_istio_obj_free(o);
		return;
	}
	o->spec = wf_cfgdoc_root(o->doc);
	push(p, o);
}

struct wf_istio_obj **wf_istio_parse_file(const char *path, size_t *n, struct wf_errs *errs)
{
	*n = 0;
	FILE *f = fopen(path, "rb");
	if (!f) {
		wf_errs_add(errs, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	struct parse p = {.path = path, .errs = errs};
	for (;;) {
		yaml_document_t y;
		if (!yaml_parser_load(&parser, &y)) {
			wf_errs_add(errs, "%s:%zu:%zu: YAML syntax error: %s%s%s", path, parser.problem_mark.line + 1,
			            parser.problem_mark.column + 1, parser.problem ? parser.problem : "unreadable",
			            parser.context ? " " : "", parser.context ? parser.context : "");
			break;
		}
		yaml_node_t *root = yaml_document_get_root_node(&y);
		if (!root) { /* the end of the stream */
			yaml_document_delete(&y);
			break;
		}
		p.y = &y;
		/* an empty document (a lone `---`, or only comments) holds nothing */
		if (!(root->type == YAML_SCALAR_NODE && !*sc(root)))
			read_object(&p, root, "", 0);
		yaml_document_delete(&y);
	}
	yaml_parser_delete(&parser);
	fclose(f);
	*n = p.n;
	return p.objs;
}

int wf_istio_is_k8s_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	int yes = 0;
	yaml_document_t y;
	if (yaml_parser_load(&parser, &y)) {
		yaml_node_t *root = yaml_document_get_root_node(&y);
		if (root && root->type == YAML_MAPPING_NODE) {
			for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
				const char *k = sc(yaml_document_get_node(&y, pr->key));
				if (k && (!strcmp(k, "apiVersion") || !strcmp(k, "kind")))
					yes = 1;
			}
		}
		yaml_document_delete(&y);
	}
	yaml_parser_delete(&parser);
	fclose(f);
	return yes;
}

/* ---- the store ------------------------------------------------------------------------ */

struct file {
	char *path;
	struct wf_istio_obj **objs;
	size_t n;
};

/* A file whose last load was refused: its errors, until it loads or goes. */
struct refused {
	char *path;
	struct wf_errs errs;
};

struct wf_store {
	struct file *files;
	size_t n_files, cap_files;
	struct refused *refused;
	size_t n_refused;
	uint64_t generation;
	int watch_fd;
	char *watch_dir;
};

struct wf_store *wf_store_new(void)
{
	struct wf_store *s = calloc(1, sizeof(*s));
	if (s)
		s->watch_fd = -1;
	return s;
}

void wf_store_free(struct wf_store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_files; i++) {
		free(s->files[i].path);
		wf_istio_objs_free(s->files[i].objs, s->files[i].n);
	}
	free(s->files);
	for (size_t i = 0; i < s->n_refused; i++) {
		free(s->refused[i].path);
		wf_errs_free(&s->refused[i].errs);
	}
	free(s->refused);
	if (s->watch_fd >= 0)
		close(s->watch_fd);
	free(s->watch_dir);
	free(s);
}

uint64_t wf_store_generation(const struct wf_store *s) { return s->generation; }

size_t wf_store_count(const struct wf_store *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n_files; i++)
		n += s->files[i].n;
	return n;
}

const struct wf_istio_obj *wf_store_next(const struct wf_store *s, struct wf_store_iter *it)
{
	while (it->file < s->n_files) {
		const struct file *f = &s->files[it->file];
		if (it->obj < f->n)
			return f->objs[it->obj++];
		it->file++;
		it->obj = 0;
	}
	return NULL;
}

static int same_obj(const struct wf_istio_obj *a, enum wf_istio_kind kind, const char *ns, const char *name)
{
	return a->kind == kind && !strcmp(a->ns, ns) && !strcmp(a->name, name);
}

/* The object with that identity outside file `skip` (an index, or SIZE_MAX). */
static const struct wf_istio_obj *find_except(const struct wf_store *s, enum wf_istio_kind kind,
                                              const char *ns, const char *name, size_t skip)
{
	for (size_t i = 0; i < s->n_files; i++) {
		if (i == skip)
			continue;
		for (size_t j = 0; j < s->files[i].n; j++)
			if (same_obj(s->files[i].objs[j], kind, ns, name))
				return s->files[i].objs[j];
	}
	return NULL;
}

const struct wf_istio_obj *wf_store_find(const struct wf_store *s, enum wf_istio_kind kind, const char *ns,
                                         const char *name)
{
	return find_except(s, kind, ns, name, SIZE_MAX);
}

static size_t file_index(const struct wf_store *s, const char *path)
{
	for (size_t i = 0; i < s->n_files; i++)
		if (!strcmp(s->files[i].path, path))
			return i;
	return SIZE_MAX;
}

/* Forget the errors of a file's last refused load (it loaded, or it is gone). */
static void refusal_clear(struct wf_store *s, const char *path)
{
	for (size_t i = 0; i < s->n_refused; i++)
		if (!strcmp(s->refused[i].path, path)) {
			free(s->refused[i].path);
			wf_errs_free(&s->refused[i].errs);
			s->refused[i] = s->refused[--s->n_refused];
			return;
		}
}

/* Keep errs[from..] as the errors of path's refused load. */
static void refusal_set(struct wf_store *s, const char *path, const struct wf_errs *errs, size_t from)
{
	refusal_clear(s, path);
	struct refused *v = realloc(s->refused, (s->n_refused + 1) * sizeof(*v));
	if (!v)
		abort();
	s->refused = v;
	struct refused *r = &s->refused[s->n_refused++];
	*r = (struct refused){.path = strdup(path)};
	for (size_t i = from; i < errs->n; i++)
		wf_errs_add(&r->errs, "%s", errs->v[i]);
}

void wf_store_errors(const struct wf_store *s, struct wf_errs *out)
{
	for (size_t i = 0; i < s->n_refused; i++)
		for (size_t k = 0; k < s->refused[i].errs.n; k++)
			wf_errs_add(out, "%s", s->refused[i].errs.v[k]);
}

int wf_store_remove_file(struct wf_store *s, const char *path)
{
	refusal_clear(s, path);
	size_t i = file_index(s, path);
	if (i == SIZE_MAX)
		return 0;
	free(s->files[i].path);
	wf_istio_objs_free(s->files[i].objs, s->files[i].n);
	memmove(&s->files[i], &s->files[i + 1], (s->n_files - i - 1) * sizeof(*s->files));
	s->n_files--;
	s->generation++;
	return 1;
}

static void dup_err(struct wf_errs *errs, const struct wf_istio_obj *o, const struct wf_istio_obj *first)
{
	wf_errs_add(errs, "%s:%u:%u: %s %s/%s is defined twice (first at %s:%u:%u)", wf_cfgdoc_source(o->doc),
	            o->line, o->col, wf_istio_kind_name(o->kind), o->ns, o->name, wf_cfgdoc_source(first->doc),
	            first->line, first->col);
}

/* "FILE:LINE:COL: ..." -> LINE * 2^20 + COL, for ordering a file's errors top to bottom */
static uint64_t err_pos(const char *e)
{
	const char *p = strchr(e, ':');
	if (!p)
		return 0;
	char *end;
	unsigned long line = strtoul(p + 1, &end, 10), col = 0;
	if (*end == ':')
		col = strtoul(end + 1, NULL, 10);
	return ((uint64_t)line << 20) + col;
}

static int by_pos(const void *a, const void *b)
{
	uint64_t x = err_pos(*(char *const *)a), y = err_pos(*(char *const *)b);
	return x < y ? -1 : x > y;
}

/* Decoding errors come per document, validation errors after: put them in file order. */
static void sort_errs(struct wf_errs *errs, size_t from)
{
	qsort(errs->v + from, errs->n - from, sizeof(*errs->v), by_pos);
}

int wf_store_load_file(struct wf_store *s, const char *path, struct wf_errs *errs)
{
	if (access(path, F_OK) < 0 && errno == ENOENT) {
		wf_store_remove_file(s, path);
		return 0;
	}
	size_t before = errs->n, n;
	struct wf_istio_obj **objs = wf_istio_parse_file(path, &n, errs);
	size_t self = file_index(s, path);
	for (size_t i = 0; i < n; i++) {
		wf_istio_validate(objs[i], errs);
		const struct wf_istio_obj *o = objs[i], *other = NULL;
		for (size_t j = 0; j < i && !other; j++)
			if (same_obj(objs[j], o->kind, o->ns, o->name))
				other = objs[j];
		if (!other)
			other = find_except(s, o->kind, o->ns, o->name, self);
		if (other)
			dup_err(errs, o, other);
	}
	if (errs->n > before) {
		sort_errs(errs, before);
		wf_istio_objs_free(objs, n);
		refusal_set(s, path, errs, before);
		return -EINVAL;
	}
	refusal_clear(s, path);
	if (self == SIZE_MAX) {
		if (s->n_files == s->cap_files) {
			s->cap_files = s->cap_files ? s->cap_files * 2 : 8;
			s->files = realloc(s->files, s->cap_files * sizeof(*s->files));
			if (!s->files)
				abort();
		}
		self = s->n_files++;
		s->files[self] = (struct file){.path = strdup(path)};
	} else {
		wf_istio_objs_free(s->files[self].objs, s->files[self].n);
	}
	s->files[self].objs = objs;
	s->files[self].n = n;
	s->generation++;
	return 1;
}

static int yaml_name(const char *name)
{
	size_t l = strlen(name);
	return name[0] != '.' && ((l > 5 && !strcmp(name + l - 5, ".yaml")) || (l > 4 && !strcmp(name + l - 4, ".yml")));
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

static int only_yaml(const struct dirent *e) { return yaml_name(e->d_name); }

int wf_store_load_dir(struct wf_store *s, const char *dir, struct wf_errs *errs)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, only_yaml, by_name);
	if (n < 0) {
		int e = errno;
		wf_errs_add(errs, "%s: cannot read the directory: %s", dir, strerror(e));
		return -e;
	}
	int bad = 0;
	for (int i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
		if (wf_store_load_file(s, path, errs) < 0)
			bad++;
		free(ents[i]);
	}
	free(ents);
	return bad;
}

int wf_store_watch(struct wf_store *s, const char *dir)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* editors save by rename or by rewrite: both end in one of these */
	if (inotify_add_watch(fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	if (s->watch_fd >= 0)
		close(s->watch_fd);
	s->watch_fd = fd;
	free(s->watch_dir);
	s->watch_dir = strdup(dir);
	return fd;
}

int wf_store_watch_handle(struct wf_store *s, struct wf_errs *errs)
{
	if (s->watch_fd < 0)
		return -EBADF;
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	int changed = 0;
	for (;;) {
		ssize_t r = read(s->watch_fd, buf, sizeof(buf));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		for (char *q = buf; q < buf + r;) {
			const struct inotify_event *ev = (const struct inotify_event *)q;
			q += sizeof(*ev) + ev->len;
			if (!ev->len || !yaml_name(ev->name))
				continue;
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", s->watch_dir, ev->name);
			uint64_t gen = s->generation;
			wf_store_load_file(s, path, errs);
			if (s->generation != gen)
				changed++;
		}
	}
	return changed;
}
