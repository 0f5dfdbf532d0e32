/* What the control plane serves, per proxy: for a proxy (its Node: id, cluster, metadata),
 * the resources of each xDS type by name. A generator (a callback set) produces them; the
 * cache serializes each resource once, hashes the bytes (xxHash64: the resource's version)
 * and shares identical resources between proxies.
 *
 * Generations: every change to the generator's input is one wf_xds_cache_invalidate; a
 * snapshot is generated at most once per generation and per generator key (proxies whose key
 * is equal get the same snapshot), on first demand. Snapshots and resources are refcounted
 * and immutable once built. One thread (the control plane's loop). */
#ifndef WF_CONTROL_XDS_CACHE_H
#define WF_CONTROL_XDS_CACHE_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "envoy/config/core/v3/base.pb-c.h"
#include "xds/types.h"

struct wf_xds_packed {
	uint32_t refs;
	int type;
	const char *name;               /* the cache's shared copy (wf_xds_cache_names) */
	uint8_t *bytes; size_t len;     /* the serialized message */
	uint64_t hash;                  /* xxHash64 of the bytes */
	uint64_t id;                    /* of the name and the bytes: a set's version mixes them */
	char version[17];               /* hash in hex: the resource's version */
	struct wf_xds_packed *hnext;       /* the cache's table of distinct resources */
	struct wf_xds_cache *cache;
};

/* The resources of one type, sorted by name (names unique). */
struct wf_xds_packed_set {
	struct wf_xds_packed **r;
	uint32_t n, cap;
};

struct wf_xds_snap {
	uint32_t refs;
	uint64_t gen;
	struct wf_xds_packed_set t[WF_XDS_NTYPES];
};

struct wf_xds_cache;

struct wf_xds_generator {
	const char *name;
	/* The key of a proxy's content (NUL-terminated in out): proxies with equal keys get the
	 * same resources. NULL: one key for every proxy. */
	void (*key)(void *ctx, const Envoy__Config__Core__V3__Node *node, char *out, size_t n);
	/* Add a proxy's resources to s with wf_xds_snap_add. 0, or <0 (nothing is served to the
	 * proxy in this generation: it keeps what it has). */
	int (*generate)(void *ctx, const Envoy__Config__Core__V3__Node *node, struct wf_xds_cache *c,
	                struct wf_xds_snap *s);
	void *ctx;
};

/* A cache over n generators (1..WF_XDS_MAX_PARTS), each one part of every proxy's content with
 * its own key: the outbound half of a sidecar's resources is the same for every proxy of a
 * namespace, the inbound half is its own, so each half is generated once per distinct key
 * and a proxy gets the union (names are unique across parts; the first part's wins). The
 * generators are copied. */
#define WF_XDS_MAX_PARTS 4
struct wf_xds_cache *wf_xds_cache_new(const struct wf_xds_generator *gens, uint32_t n);
void wf_xds_cache_free(struct wf_xds_cache *c);
/* The input changed: the next wf_xds_cache_get generates again. */
void wf_xds_cache_invalidate(struct wf_xds_cache *c);
uint64_t wf_xds_cache_gen(const struct wf_xds_cache *c);
/* The resources for node at the current generation (a reference: wf_xds_snap_unref), or
 * NULL when a generator failed. */
struct wf_xds_snap *wf_xds_cache_get(struct wf_xds_cache *c, const Envoy__Config__Core__V3__Node *node);
/* The cache's table of names (core/strtab): resources' names are its strings, so a holder of
 * names from it (ADS subscriptions) finds equal names equal as pointers. */
struct wf_strtab *wf_xds_cache_names(struct wf_xds_cache *c);
/* Distinct resources alive (for tests and status). */
uint32_t wf_xds_cache_resources(const struct wf_xds_cache *c);

/* Serialize m and add it to s under type and name (a later add of the same name replaces it).
 * 0, -EINVAL (type), -ENOMEM. */
int wf_xds_snap_add(struct wf_xds_cache *c, struct wf_xds_snap *s, int type, const char *name,
                    const ProtobufCMessage *m);
void wf_xds_snap_unref(struct wf_xds_snap *s);
/* A resource of the set by name, or NULL. */
struct wf_xds_packed *wf_xds_packed_find(const struct wf_xds_packed_set *s, const char *name);

#endif
