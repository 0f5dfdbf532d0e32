/* The resources received over xDS, as the compiler reads them: per type, each resource by
 * name with its version and its own document (source "xds:TYPE/NAME", root the resource
 * message, every message marked with its field path so that a refusal names the resource and
 * the field). A set is immutable once handed to a snapshot and shared by reference: each
 * update makes a new set (wf_xds_set_copy, then put/remove) that shares the unchanged
 * resources' documents. */
#ifndef WF_PROXY_ADS_SET_H
#define WF_PROXY_ADS_SET_H

#include <stddef.h>
#include <stdint.h>

#include "xds/types.h"

struct wf_cfgdoc;

struct wf_xds_res {
	char *name;
	char *version;                     /* delta: the resource's; SotW: the response's version_info */
	struct wf_cfgdoc *doc;             /* a reference of this set's */
	uint64_t hash;                     /* of the encoded resource: an unchanged one is not re-applied */
	uint64_t updated_wall_s;
};

struct wf_xds_set {
	int refs;                          /* atomic */
	struct wf_xds_res *res[WF_XDS_NTYPES];
	uint32_t n[WF_XDS_NTYPES];
	char *version[WF_XDS_NTYPES];      /* the last accepted version_info per type */
	uint64_t updated_wall_s[WF_XDS_NTYPES];
	/* Names whose initial_fetch_timeout passed before they came: a listener whose route
	 * configuration (RDS) or a cluster whose endpoints (EDS) is one of them is used anyway,
	 * empty, until it comes. "*" for LDS and CDS: the first response did not come in time. */
	char **timed_out[WF_XDS_NTYPES];
	uint32_t n_timed_out[WF_XDS_NTYPES];
};

struct wf_xds_set *wf_xds_set_new(void);
/* A new set with the same resources (documents shared). */
struct wf_xds_set *wf_xds_set_copy(const struct wf_xds_set *from);
struct wf_xds_set *wf_xds_set_ref(struct wf_xds_set *s);
void wf_xds_set_unref(struct wf_xds_set *s);
const struct wf_xds_res *wf_xds_set_find(const struct wf_xds_set *s, enum wf_xds_type t, const char *name);
/* Add or replace a resource; takes over the caller's reference to doc. */
void wf_xds_set_put(struct wf_xds_set *s, enum wf_xds_type t, const char *name, const char *version,
                    struct wf_cfgdoc *doc, uint64_t hash);
/* Remove a resource: 1 when it was there. */
int wf_xds_set_remove(struct wf_xds_set *s, enum wf_xds_type t, const char *name);
/* Record that `name` of type t timed out, or ask whether it did (s may be NULL: no). */
void wf_xds_set_time_out(struct wf_xds_set *s, enum wf_xds_type t, const char *name);
int wf_xds_set_timed_out(const struct wf_xds_set *s, enum wf_xds_type t, const char *name);

/* The RDS or EDS names used by the bootstrap `boot` (its static listeners and clusters; may be
 * NULL) and by the listeners and clusters of `set`, each with the stat scope it counts under:
 * the connection manager's stat_prefix (RDS), the cluster's name (EDS). A name used twice is
 * listed twice. Returns the count; free *out with wf_xds_uses_free. Main thread. */
struct wf_xds_use {
	char *name;
	char *scope;
};
uint32_t wf_xds_uses(struct wf_cfgdoc *boot, const struct wf_xds_set *set, enum wf_xds_type t,
                     struct wf_xds_use **out);
void wf_xds_uses_free(struct wf_xds_use *u, uint32_t n);

/* Decode one resource of type t (the payload of its Any) into a document named
 * "xds:TYPE/NAME", its messages marked with their field paths (Any payloads unpacked and
 * marked too). *name is the resource's name (malloc'd). NULL with err set when the bytes do
 * not decode or the resource has no name. */
struct wf_cfgdoc *wf_xds_decode(enum wf_xds_type t, const uint8_t *p, size_t n, char **name, char *err,
                                size_t errlen);

#endif
