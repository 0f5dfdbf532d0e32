/* The object store: Istio configuration as Kubernetes-shaped YAML documents (apiVersion, kind,
 * metadata, spec), read from files and directories, each spec decoded into its protobuf
 * message (src/xds/proto/istio) by the one YAML mapper, then checked (control/validate.h).
 *
 * The unit of change is a file. Loading a file either replaces every object that file held
 * (when all of its documents decode and validate, and none clashes with another file's
 * object) or changes nothing: a file that became invalid keeps serving its last valid
 * objects. This is what the control plane's directory watch relies on.
 *
 * Objects are immutable once loaded and owned by the store; a reload frees the file's old
 * objects, so a caller that keeps pointers across a reload must take what it needs first
 * (the translator compiles a snapshot from them, it does not keep them). One thread. */
#ifndef WF_CONTROL_STORE_H
#define WF_CONTROL_STORE_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "xds/cfgdoc.h"

enum wf_istio_kind {
	WF_KIND_VIRTUAL_SERVICE,
	WF_KIND_DESTINATION_RULE,
	WF_KIND_SERVICE_ENTRY,
	WF_KIND_WORKLOAD_ENTRY,
	WF_KIND_GATEWAY,
	WF_KIND_SIDECAR,
	WF_KIND_COUNT
};

/* "VirtualService", ... */
const char *wf_istio_kind_name(enum wf_istio_kind k);

struct wf_kv {
	char *key, *value;
};

/* One Istio object. `spec` is the root of `doc` (a VirtualService message for
 * WF_KIND_VIRTUAL_SERVICE, ...); `doc` knows where each field of the spec came from. */
struct wf_istio_obj {
	enum wf_istio_kind kind;
	char *api_version;
	char *name;
	char *ns;                   /* metadata.namespace, "default" when absent */
	struct wf_kv *labels;
	size_t n_labels;
	struct wf_kv *annotations;
	size_t n_annotations;
	const ProtobufCMessage *spec;
	struct wf_cfgdoc *doc;      /* owns spec; its source is the file name */
	uint32_t line, col;         /* where the object's document starts */
};

/* A list of error messages, each "FILE:LINE:COL: PATH: message" (PATH may be absent). */
struct wf_errs {
	char **v;
	size_t n, cap;
};
void wf_errs_add(struct wf_errs *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void wf_errs_free(struct wf_errs *e);

/* Read every object of one file (several documents separated by `---`; a `kind: List` with
 * `items`, as `kubectl get -o yaml` prints, counts as its items). Every error found is added to
 * errs (a document's decoding stops at its first error; the other documents are still read).
 * Returns the objects decoded (those with errors left out), *n set; NULL with *n 0 when none.
 * No semantic checks here. Free with wf_istio_objs_free. */
struct wf_istio_obj **wf_istio_parse_file(const char *path, size_t *n, struct wf_errs *errs);
void wf_istio_obj_free(struct wf_istio_obj *o);
void wf_istio_objs_free(struct wf_istio_obj **v, size_t n);

/* Does the file look like Kubernetes-shaped config (its first document a map with an
 * `apiVersion` or `kind` key)? 1 yes, 0 no (an Envoy bootstrap, or unreadable). */
int wf_istio_is_k8s_file(const char *path);

struct wf_store;

struct wf_store *wf_store_new(void);
void wf_store_free(struct wf_store *s);

/* (Re)load one file: parse, validate every object, check kind/namespace/name is unique across
 * the store. All clean: the file's previous objects are replaced, returns 1. Any error: every
 * error is added to errs, the store is unchanged (the file's last valid objects stay),
 * returns -EINVAL. A file that no longer exists is dropped from the store (returns 0). */
int wf_store_load_file(struct wf_store *s, const char *path, struct wf_errs *errs);
/* Append to out the errors of every file whose last load was refused (it keeps its last
 * valid objects meanwhile), until that file loads or is removed. */
void wf_store_errors(const struct wf_store *s, struct wf_errs *out);
/* Forget a file's objects. 1 if the store held the file, 0 if not. */
int wf_store_remove_file(struct wf_store *s, const char *path);
/* Load every *.yaml / *.yml file of dir (not recursive, in name order), each as by
 * wf_store_load_file. Returns the number of files refused (0: all clean), or -errno when the
 * directory cannot be read (errs says why). */
int wf_store_load_dir(struct wf_store *s, const char *dir, struct wf_errs *errs);

/* Watch dir with inotify: returns a non-blocking fd to poll for readability, or -errno.
 * wf_store_watch_handle then reads the pending events and reloads (or drops) each *.yaml/
 * *.yml file that changed; errors are added to errs. Returns how many files changed the
 * store (>= 0), or -errno. */
int wf_store_watch(struct wf_store *s, const char *dir);
int wf_store_watch_handle(struct wf_store *s, struct wf_errs *errs);

/* Bumped on every change to the store's content. */
uint64_t wf_store_generation(const struct wf_store *s);
size_t wf_store_count(const struct wf_store *s);

/* Iteration over every object, files in load order, documents in file order:
 *   struct wf_store_iter it = {0}; for (o = wf_store_next(s, &it); o; o = wf_store_next(s, &it)) */
struct wf_store_iter {
	size_t file, obj;
};
const struct wf_istio_obj *wf_store_next(const struct wf_store *s, struct wf_store_iter *it);
/* The object of that kind, namespace and name, or NULL. */
const struct wf_istio_obj *wf_store_find(const struct wf_store *s, enum wf_istio_kind kind,
                                         const char *ns, const char *name);

#endif
