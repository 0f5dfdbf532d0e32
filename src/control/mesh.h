/* The mesh model the translator reads: services (from ServiceEntry), their endpoints
 * (inline endpoints, WorkloadEntry objects and proxies that registered themselves, selected by
 * labels), and the routing objects (VirtualService, DestinationRule, Sidecar, Gateway) indexed
 * by what the per-proxy generation looks them up by. Built once per configuration or registry
 * change (wf_mesh_build), then read by any number of wf_translate calls; immutable.
 *
 *   store objects ─┐
 *                  ├─ wf_mesh_build ─> services sorted by host (binary search), each with its
 *   registry ──────┘                   ports and endpoints; VirtualServices by host; one
 *                                      DestinationRule per host; Sidecars by namespace
 *
 * The mesh keeps a reference to each store object's document (wf_cfgdoc_ref), so the Istio
 * messages it points into stay valid after the store reloads or drops their file. */
#ifndef WF_CONTROL_MESH_H
#define WF_CONTROL_MESH_H

#include <stddef.h>
#include <stdint.h>

#include "control/store.h"
#include "envoy/config/core/v3/base.pb-c.h"
#include "istio/networking/v1alpha3/destination_rule.pb-c.h"
#include "istio/networking/v1alpha3/gateway.pb-c.h"
#include "istio/networking/v1alpha3/service_entry.pb-c.h"
#include "istio/networking/v1alpha3/sidecar.pb-c.h"
#include "istio/networking/v1alpha3/virtual_service.pb-c.h"
#include "istio/networking/v1alpha3/workload_entry.pb-c.h"

/* How a port's traffic is handled: Istio's protocol selection (the protocol field, else the
 * port name's prefix before '-'). */
enum wf_mesh_proto { WF_MP_TCP, WF_MP_HTTP, WF_MP_HTTP2, WF_MP_GRPC, WF_MP_TLS };

/* "HTTP", "http-web", ... -> WF_MP_*; protocol wins over the name. */
enum wf_mesh_proto wf_mesh_protocol(const char *protocol, const char *name);
static inline int wf_mesh_proto_is_http(enum wf_mesh_proto p)
{
	return p == WF_MP_HTTP || p == WF_MP_HTTP2 || p == WF_MP_GRPC;
}

struct wf_named_port {
	char *name;
	uint32_t number;
};

/* A workload: a WorkloadEntry, an inline ServiceEntry endpoint, or a registered proxy. */
struct wf_workload {
	char *name, *ns;            /* "" for inline endpoints */
	char *address;              /* IP (or a DNS name for DNS services) */
	struct wf_kv *labels;
	size_t n_labels;
	struct wf_named_port *ports; /* port name -> number */
	size_t n_ports;
	char *locality;             /* "region/zone/subzone" or "" */
	char *network, *service_account;
	uint32_t weight;            /* 0: unset */
	char *node_id;              /* a registered proxy's, else NULL */
};

struct wf_mesh_port {
	uint32_t number, target_port;
	const char *name, *protocol;
	enum wf_mesh_proto proto;
};

struct wf_service {
	const char *host;
	const char *ns;             /* the ServiceEntry's namespace */
	const char *se_name;
	struct wf_mesh_port *ports;
	size_t n_ports;
	int resolution;             /* ISTIO__NETWORKING__V1ALPHA3__SERVICE_ENTRY__RESOLUTION__* */
	int location;
	char **export_to;           /* as written; none: everywhere */
	size_t n_export_to;
	char **addresses;           /* the ServiceEntry's addresses (VIPs), as written */
	size_t n_addresses;
	const struct wf_workload **eps; /* endpoints, in order: inline, WorkloadEntry, registered */
	size_t n_eps;
	size_t seq;                 /* store order of its ServiceEntry */
};

/* One proxy's identity, from its Node (wf_proxy_from_node). */
enum wf_proxy_kind { WF_PROXY_SIDECAR, WF_PROXY_ROUTER, WF_PROXY_GRPC };
struct wf_proxy_info {
	enum wf_proxy_kind kind;
	char *id;
	char *ip;                   /* the first INSTANCE_IPS entry, or the id's IP; "" if none */
	char *name, *ns;            /* WORKLOAD_NAME (or the id's pod name), NAMESPACE */
	struct wf_kv *labels;
	size_t n_labels;
	char *service_account;
	char *locality;
	int interception_none;      /* INTERCEPTION_MODE: NONE (Weft never captures: informative) */
};

/* Read a Node the way istiod does: id `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local`
 * (TYPE sidecar or router) and metadata NAMESPACE, WORKLOAD_NAME, LABELS (a map),
 * SERVICE_ACCOUNT, INSTANCE_IPS (comma-separated), INTERCEPTION_MODE. A node whose metadata has
 * GENERATOR "grpc", or whose id has no `~` form and no NAMESPACE/INSTANCE_IPS metadata, is a
 * proxyless gRPC client. 0, or -EINVAL with err saying why (empty id, bad LABELS). */
int wf_proxy_from_node(const Envoy__Config__Core__V3__Node *node, struct wf_proxy_info *p, char *err,
                       size_t errlen);
void wf_proxy_info_clear(struct wf_proxy_info *p);
/* A Node written in YAML (id, cluster, metadata as a map, locality), from text when it is not
 * NULL, else from the file path. NULL with err ("FILE:LINE:COL: ...") when it does not decode.
 * Free with wf_proto_free. */
Envoy__Config__Core__V3__Node *wf_node_from_yaml(const char *path, const char *text, char *err, size_t errlen);

/* The workloads that connected proxies registered (Istio's WorkloadEntry auto-registration):
 * the ADS server adds a sidecar when it connects and removes it after its grace period. */
struct wf_registry;
struct wf_registry *wf_registry_new(void);
void wf_registry_free(struct wf_registry *r);
/* Register (or replace) the workload of a sidecar proxy, keyed by its node id. 1 added or
 * changed, 0 unchanged or not a sidecar with an address (routers and gRPC clients serve no
 * traffic), -EINVAL with err. */
int wf_registry_add_node(struct wf_registry *r, const Envoy__Config__Core__V3__Node *node, char *err, size_t errlen);
/* 1 removed, 0 unknown id. */
int wf_registry_remove(struct wf_registry *r, const char *node_id);
size_t wf_registry_count(const struct wf_registry *r);
/* Bumped by every change. */
uint64_t wf_registry_generation(const struct wf_registry *r);
/* The workload registered by node_id, or NULL. */
const struct wf_workload *wf_registry_find(const struct wf_registry *r, const char *node_id);

struct wf_mesh_vs {
	const char *name, *ns;
	const struct wf_cfgdoc *doc;    /* where it was read (for errors) */
	const Istio__Networking__V1alpha3__VirtualService *vs;
	char **hosts;               /* hosts as FQDNs (short names completed in the VS's namespace) */
	size_t n_hosts;
	int mesh;                   /* bound to the mesh gateway (no gateways, or "mesh" listed) */
};

struct wf_mesh_dr {
	const char *name, *ns;
	const struct wf_cfgdoc *doc;
	char *host;                 /* FQDN */
	const Istio__Networking__V1alpha3__DestinationRule *dr;
	size_t seq;                 /* store order */
};

struct wf_mesh_sidecar {
	const char *name, *ns;
	const struct wf_cfgdoc *doc;
	const Istio__Networking__V1alpha3__Sidecar *sc;
};

struct wf_mesh_gateway {
	const char *name, *ns;
	const struct wf_cfgdoc *doc;
	const Istio__Networking__V1alpha3__Gateway *gw;
};

/* A VirtualService by one of its hosts. */
struct wf_mesh_vsref {
	const char *host;
	size_t vs;                  /* index in wf_mesh.vss */
};

struct wf_mesh {
	struct wf_service *svcs;    /* sorted by host */
	size_t n_svcs;
	struct wf_mesh_vs *vss;     /* in store order */
	size_t n_vss;
	struct wf_mesh_vsref *vs_exact; /* exact hosts, sorted by host then store order */
	size_t n_vs_exact;
	struct wf_mesh_vsref *vs_wild;  /* "*..." hosts, in store order */
	size_t n_vs_wild;
	struct wf_mesh_dr *drs;     /* sorted by host; the first one per host counts */
	size_t n_drs;
	struct wf_mesh_sidecar *sidecars;
	size_t n_sidecars;
	struct wf_mesh_gateway *gws;
	size_t n_gws;
	struct wf_workload **wls;   /* every workload the mesh owns */
	size_t n_wls, cap_wls;
	struct wf_cfgdoc **docs;    /* references held */
	size_t n_docs;
	char **strs;                /* strings the mesh owns */
	size_t n_strs, cap_strs;
	int source_labels;          /* some VirtualService match has sourceLabels */
	/* every service endpoint by what finds a proxy's own workload among them (its node id
	 * for a registered workload, else its address), sorted by key: wf_mesh_eps_of */
	struct wf_mesh_epref {
		const char *key;
		size_t svc, ep;         /* m->svcs[svc].eps[ep] */
	} *ep_index;
	size_t n_ep_index;
};

/* The endpoints whose key (node id of a registered workload, address of any other) is key:
 * *first, and their count. */
size_t wf_mesh_eps_of(const struct wf_mesh *m, const char *key, size_t *first);

/* Build the mesh from the store's objects and the registered workloads (either may be NULL).
 * Problems that make an object unusable (a ServiceEntry with no hosts) are skipped here:
 * validation refuses them before they reach the store. NULL only on allocation failure. */
struct wf_mesh *wf_mesh_build(const struct wf_store *s, const struct wf_registry *r);
void wf_mesh_free(struct wf_mesh *m);

/* The service of that FQDN, or NULL (binary search). */
const struct wf_service *wf_mesh_service(const struct wf_mesh *m, const char *host);
/* The VirtualServices naming host exactly: *n of them from *first on in m->vs_exact. */
void wf_mesh_vs_exact(const struct wf_mesh *m, const char *host, size_t *first, size_t *n);
/* The DestinationRule for that FQDN that namespace ns sees (exportTo): the first with that
 * exact host, else the one with the longest matching `*.suffix`; or NULL. */
const struct wf_mesh_dr *wf_mesh_dr_for(const struct wf_mesh *m, const char *host, const char *ns);
/* A short name completed as Istio does in namespace ns: "reviews" ->
 * "reviews.NS.svc.cluster.local"; names with a dot and wildcards are kept. malloc'd. */
char *wf_mesh_fqdn(const char *host, const char *ns);
/* Do labels match the selector (every selector key present with its value)? */
int wf_labels_match(const struct wf_kv *sel, size_t n_sel, const struct wf_kv *labels, size_t n_labels);
/* Does a ServiceEntry's workloadSelector (of namespace ns) select w: w in ns, with every
 * label the selector names? */
int wf_selector_selects(const Istio__Networking__V1alpha3__WorkloadSelector *sel, const char *ns,
                        const struct wf_workload *w);
/* Does an exportTo list (of an object of namespace owner_ns) let namespace ns see it? None
 * listed, "*", "." (owner_ns) or ns itself. */
int wf_exported(char *const *export_to, size_t n, const char *owner_ns, const char *ns);
/* May a proxy in namespace ns see the service (exportTo)? */
int wf_service_visible(const struct wf_service *s, const char *ns);
/* The endpoint port of workload w for service port p: w's port of that name, else the
 * target port, else the port. */
uint32_t wf_workload_port(const struct wf_workload *w, const struct wf_mesh_port *p);

#endif
