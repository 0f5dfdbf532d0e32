/* The object store: multi-document files, Kubernetes envelopes, duplicates, reloading one
 * file (a file that became invalid keeps its last valid objects), directories, inotify. */
#include "control/store.h"
#include "test.h"

#include "istio/networking/v1alpha3/virtual_service.pb-c.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static const char *path_of(const char *name)
{
	static char p[4][128];
	static int k;
	k = (k + 1) % 4;
	snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
	return p[k];
}

static const char *put(const char *name, const char *text)
{
	const char *p = path_of(name);
	FILE *f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
	return p;
}

static int has(const struct wf_errs *e, const char *needle)
{
	for (size_t i = 0; i < e->n; i++)
		if (strstr(e->v[i], needle))
			return 1;
	return 0;
}

#define VS(name, host) \
	"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: " name "\nspec:\n  hosts: [" host "]\n" \
	"  http:\n  - route:\n    - destination: {host: " host "}\n"

TEST(multi_document_file)
{
	const char *p = put("multi.yaml",
	    "# three objects, three versions of the API\n"
	    "apiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\nmetadata:\n  name: a\n  namespace: shop\n"
	    "  labels: {app: a}\nspec:\n  hosts: [a]\n  http:\n  - route:\n    - destination: {host: a}\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata: {name: a}\nspec: {host: a}\n"
	    "---\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: g\n"
	    "  uid: 5d8a\n  resourceVersion: \"7\"\n  generation: 2\n  creationTimestamp: \"2024-01-01T00:00:00Z\"\n"
	    "  managedFields: [{manager: kubectl}]\n"
	    "spec:\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n"
	    "status: {observedGeneration: 2}\n");
	struct wf_errs e = {0};
	size_t n;
	struct wf_istio_obj **v = wf_istio_parse_file(p, &n, &e);
	CHECK_EQ(e.n, 0);
	CHECK_EQ(n, 3);
	CHECK_EQ(v[0]->kind, WF_KIND_VIRTUAL_SERVICE);
	CHECK(!strcmp(v[0]->ns, "shop") && !strcmp(v[0]->name, "a"));
	CHECK_EQ(v[0]->n_labels, 1);
	CHECK(!strcmp(v[0]->labels[0].key, "app"));
	CHECK_EQ(v[0]->line, 2);
	const Istio__Networking__V1alpha3__VirtualService *vs = (const void *)v[0]->spec;
	CHECK_EQ(vs->n_http, 1);
	CHECK(!strcmp(vs->http[0]->route[0]->destination->host, "a"));
	CHECK_EQ(v[1]->kind, WF_KIND_DESTINATION_RULE);
	CHECK(!strcmp(v[1]->ns, "default"));
	CHECK_EQ(v[2]->kind, WF_KIND_GATEWAY);
	wf_istio_objs_free(v, n);
}

TEST(kubectl_list)
{
	const char *p = put("list.yaml",
	    "apiVersion: v1\nkind: List\nitems:\n"
	    "- apiVersion: networking.istio.io/v1\n  kind: DestinationRule\n  metadata: {name: a}\n  spec: {host: a}\n"
	    "- apiVersion: networking.istio.io/v1\n  kind: DestinationRule\n  metadata: {name: b}\n  spec: {host: b}\n"
	    "metadata: {resourceVersion: \"\"}\n");
	struct wf_errs e = {0};
	size_t n;
	struct wf_istio_obj **v = wf_istio_parse_file(p, &n, &e);
	CHECK_EQ(e.n, 0);
	CHECK_EQ(n, 2);
	CHECK(!strcmp(v[1]->name, "b"));
	wf_istio_objs_free(v, n);
}

TEST(every_document_error_reported)
{
	const char *p = put("errs.yaml",
	    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\nspec:\n  hosts: [a]\n"
	    "  http:\n  - route:\n    - destination: {host: a}\n    - destination: {host: b}\n      weight: ten\n"
	    "---\n"
	    "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec: {}\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v2\nkind: Gateway\nmetadata: {name: g}\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1\nkind: Frobnicator\nmetadata: {name: g}\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {nmae: g}\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ok}\nspec: {host: ok}\n");
	struct wf_errs e = {0};
	size_t n;
	struct wf_istio_obj **v = wf_istio_parse_file(p, &n, &e);
	CHECK_EQ(e.n, 5);
	CHECK(strstr(e.v[0], "errs.yaml:10:15: spec.http[0].route[1].weight: ") != NULL);
	CHECK(strstr(e.v[1], "errs.yaml:13:7: kind AuthorizationPolicy (security.istio.io/v1) is not supported yet"));
	CHECK(strstr(e.v[2], "errs.yaml:17:13: apiVersion 'networking.istio.io/v2' does not serve Gateway"));
	CHECK(strstr(e.v[3], "errs.yaml:22:7: unknown kind 'Frobnicator'"));
	CHECK(strstr(e.v[4], "errs.yaml:27:12: metadata: unknown field 'nmae' in metadata"));
	CHECK_EQ(n, 1); /* the valid one is still read */
	CHECK(!strcmp(v[0]->name, "ok"));
	wf_istio_objs_free(v, n);
	wf_errs_free(&e);
}

TEST(envelope_errors)
{
	struct wf_errs e = {0};
	size_t n;
	wf_istio_parse_file(put("e1.yaml", "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {namespace: x}\n"), &n, &e);
	CHECK(has(&e, "e1.yaml:3:11: metadata: metadata.name is required"));
	wf_istio_parse_file(put("e2.yaml", "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: Bad_Name}\n"), &n, &e);
	CHECK(has(&e, "e2.yaml:3:18: metadata.name: 'Bad_Name' is not a valid Kubernetes name"));
	wf_istio_parse_file(put("e3.yaml", "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetdata: {name: a}\n"), &n, &e);
	CHECK(has(&e, "e3.yaml:3:1: unknown field 'metdata' (did you mean 'metadata'?)"));
	wf_istio_parse_file(put("e4.yaml", "kind: Sidecar\nmetadata: {name: a}\n"), &n, &e);
	CHECK(has(&e, "e4.yaml:1:1: 'apiVersion' is required"));
	wf_istio_parse_file(put("e6.yaml", "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  labels: {a: b}\n"
	                                   "  labels: {c: d}\n  name: x\n"), &n, &e);
	CHECK(has(&e, "e6.yaml:5:3: metadata: field 'labels' is set twice"));
	wf_istio_parse_file(put("e7.yaml", "apiVersion: networking.istio.io/v1\nkind: Sidecar\nkind: Gateway\nmetadata: {name: a}\n"), &n, &e);
	CHECK(has(&e, "e7.yaml:3:1: field 'kind' is set twice"));
	wf_istio_parse_file(put("e5.yaml", "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: a}\nspec: [\n"), &n, &e);
	CHECK(has(&e, "e5.yaml:5:1: YAML syntax error"));
	CHECK_EQ(n, 0);
	wf_errs_free(&e);
}

TEST(is_k8s_file)
{
	CHECK(wf_istio_is_k8s_file(put("k.yaml", "# c\napiVersion: networking.istio.io/v1\nkind: Gateway\n")));
	CHECK(!wf_istio_is_k8s_file(put("b.yaml", "static_resources: {}\n")));
	CHECK(!wf_istio_is_k8s_file(path_of("nonexistent.yaml")));
}

TEST(duplicates)
{
	struct wf_store *s = wf_store_new();
	struct wf_errs e = {0};
	/* twice in one file: the file is refused, naming both places */
	const char *p = put("dup.yaml", VS("a", "a") "---\n" VS("a", "b"));
	CHECK_EQ(wf_store_load_file(s, p, &e), -22);
	CHECK(has(&e, "dup.yaml:11:1: VirtualService default/a is defined twice (first at "));
	CHECK(has(&e, "dup.yaml:1:1)"));
	CHECK_EQ(wf_store_count(s), 0);
	wf_errs_free(&e);
	/* the same name in another namespace is another object */
	CHECK_EQ(wf_store_load_file(s, put("one.yaml", VS("a", "a")), &e), 1);
	CHECK_EQ(wf_store_load_file(s, put("ns.yaml",
	    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a, namespace: other}\n"
	    "spec:\n  hosts: [a]\n  http:\n  - route:\n    - destination: {host: a}\n"), &e), 1);
	/* across files: the second file is refused, the first keeps the object */
	CHECK_EQ(wf_store_load_file(s, put("two.yaml", VS("a", "z")), &e), -22);
	CHECK(has(&e, "two.yaml:1:1: VirtualService default/a is defined twice (first at "));
	CHECK(has(&e, "one.yaml:1:1)"));
	CHECK_EQ(wf_store_count(s), 2);
	/* reloading the file that holds it is no duplicate */
	wf_errs_free(&e);
	CHECK_EQ(wf_store_load_file(s, put("one.yaml", VS("a", "aa")), &e), 1);
	CHECK_EQ(e.n, 0);
	const struct wf_istio_obj *o = wf_store_find(s, WF_KIND_VIRTUAL_SERVICE, "default", "a");
	CHECK(o && !strcmp(((const Istio__Networking__V1alpha3__VirtualService *)o->spec)->hosts[0], "aa"));
	wf_store_free(s);
}

TEST(reload_keeps_last_good)
{
	struct wf_store *s = wf_store_new();
	struct wf_errs e = {0};
	const char *p = put("r.yaml", VS("r", "v1") "---\n" VS("q", "q"));
	CHECK_EQ(wf_store_load_file(s, p, &e), 1);
	CHECK_EQ(wf_store_count(s), 2);
	uint64_t gen = wf_store_generation(s);
	/* the file becomes invalid (a typo): nothing changes, the error says where */
	put("r.yaml", VS("r", "v2") "  tiemout: 5s\n");
	CHECK_EQ(wf_store_load_file(s, p, &e), -22);
	CHECK(has(&e, "r.yaml:10:3: spec: unknown or unsupported field 'tiemout'"));
	CHECK_EQ(wf_store_generation(s), gen);
	CHECK_EQ(wf_store_count(s), 2);
	const struct wf_istio_obj *o = wf_store_find(s, WF_KIND_VIRTUAL_SERVICE, "default", "r");
	CHECK(o && !strcmp(((const Istio__Networking__V1alpha3__VirtualService *)o->spec)->hosts[0], "v1"));
	/* semantically invalid (validation) is refused the same way */
	put("r.yaml", VS("r", "v2") "  - route: []\n");
	CHECK_EQ(wf_store_load_file(s, p, &e), -22);
	CHECK(has(&e, "spec.http[1]: an HTTP route needs route, redirect or directResponse"));
	CHECK_EQ(wf_store_count(s), 2);
	/* the store lists the errors of the file's last refused load (not the earlier one's) */
	struct wf_errs now = {0};
	wf_store_errors(s, &now);
	CHECK_EQ(now.n, 1);
	CHECK(has(&now, "spec.http[1]: an HTTP route needs route, redirect or directResponse"));
	wf_errs_free(&now);
	/* fixed: replaced, and q (no longer in the file) is gone */
	put("r.yaml", VS("r", "v3"));
	CHECK_EQ(wf_store_load_file(s, p, &e), 1);
	wf_store_errors(s, &now);
	CHECK_EQ(now.n, 0); /* loaded: no error left */
	CHECK(wf_store_generation(s) > gen);
	CHECK_EQ(wf_store_count(s), 1);
	o = wf_store_find(s, WF_KIND_VIRTUAL_SERVICE, "default", "r");
	CHECK(o && !strcmp(((const Istio__Networking__V1alpha3__VirtualService *)o->spec)->hosts[0], "v3"));
	CHECK(!wf_store_find(s, WF_KIND_VIRTUAL_SERVICE, "default", "q"));
	/* broken again, then deleted: dropped, and its errors with it */
	put("r.yaml", VS("r", "v4") "  tiemout: 5s\n");
	CHECK_EQ(wf_store_load_file(s, p, &e), -22);
	wf_store_errors(s, &now);
	CHECK_EQ(now.n, 1);
	wf_errs_free(&now);
	unlink(p);
	CHECK_EQ(wf_store_load_file(s, p, &e), 0);
	CHECK_EQ(wf_store_count(s), 0);
	wf_store_errors(s, &now);
	CHECK_EQ(now.n, 0);
	wf_errs_free(&e);
	wf_store_free(s);
}

TEST(directory)
{
	char sub[128];
	snprintf(sub, sizeof(sub), "%s/d", dir);
	mkdir(sub, 0700);
	put("d/b.yml", VS("b", "b"));
	put("d/a.yaml", VS("a", "a"));
	put("d/notes.txt", "not config");
	put("d/c.yaml", VS("c", "c") "  bogus: 1\n");
	struct wf_store *s = wf_store_new();
	struct wf_errs e = {0};
	CHECK_EQ(wf_store_load_dir(s, sub, &e), 1);
	CHECK_EQ(e.n, 1);
	CHECK(strstr(e.v[0], "d/c.yaml:10:3: spec: unknown or unsupported field 'bogus'"));
	CHECK_EQ(wf_store_count(s), 2);
	struct wf_store_iter it = {0};
	const struct wf_istio_obj *o1 = wf_store_next(s, &it), *o2 = wf_store_next(s, &it);
	CHECK(o1 && o2 && !wf_store_next(s, &it));
	CHECK(!strcmp(o1->name, "a") && !strcmp(o2->name, "b")); /* name order */
	wf_errs_free(&e);
	CHECK(wf_store_load_dir(s, path_of("missing"), &e) < 0);
	CHECK(has(&e, "cannot read the directory"));
	wf_errs_free(&e);
	wf_store_free(s);
}

TEST(watch)
{
	char sub[128];
	snprintf(sub, sizeof(sub), "%s/w", dir);
	mkdir(sub, 0700);
	struct wf_store *s = wf_store_new();
	struct wf_errs e = {0};
	int fd = wf_store_watch(s, sub);
	CHECK(fd >= 0);
	put("w/x.yaml", VS("x", "x"));
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	CHECK_EQ(poll(&pfd, 1, 2000), 1);
	CHECK_EQ(wf_store_watch_handle(s, &e), 1);
	CHECK(wf_store_find(s, WF_KIND_VIRTUAL_SERVICE, "default", "x"));
	/* broken by an edit: reported, last good kept */
	put("w/x.yaml", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec: {hosts: 3}\n");
	CHECK_EQ(poll(&pfd, 1, 2000), 1);
	CHECK_EQ(wf_store_watch_handle(s, &e), 0);
	CHECK(has(&e, "w/x.yaml:4:15: spec.hosts: expected a list"));
	CHECK(wf_store_find(s, WF_KIND_VIRTUAL_SERVICE, "default", "x"));
	/* removed: gone */
	unlink(path_of("w/x.yaml"));
	CHECK_EQ(poll(&pfd, 1, 2000), 1);
	CHECK_EQ(wf_store_watch_handle(s, &e), 1);
	CHECK_EQ(wf_store_count(s), 0);
	wf_errs_free(&e);
	wf_store_free(s);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/weft-store-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	static const struct wf_t_case cases[] = {
		T(multi_document_file), T(kubectl_list), T(every_document_error_reported), T(envelope_errors),
		T(is_k8s_file), T(duplicates), T(reload_keeps_last_good), T(directory), T(watch),
	};
	int r = wf_t_run(cases, sizeof(cases) / sizeof(cases[0]), "store");
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return r;
}
