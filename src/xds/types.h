/* The four xDS resource types, shared by the proxy's xDS client and the control plane's server:
 * their order (make-before-break: clusters and their endpoints before the listeners and routes
 * that use them), type URLs and names. */
#ifndef WF_XDS_TYPES_H
#define WF_XDS_TYPES_H

enum wf_xds_type { WF_XDS_CDS, WF_XDS_EDS, WF_XDS_LDS, WF_XDS_RDS, WF_XDS_NTYPES };

/* "type.googleapis.com/envoy.config.cluster.v3.Cluster", ... */
extern const char *const wf_xds_type_url[WF_XDS_NTYPES];
/* "Cluster", "ClusterLoadAssignment", "Listener", "RouteConfiguration" */
extern const char *const wf_xds_type_name[WF_XDS_NTYPES];
/* "CDS", "EDS", "LDS", "RDS" */
extern const char *const wf_xds_type_abbr[WF_XDS_NTYPES];

/* The type of a type URL, or -1. */
int wf_xds_type_of(const char *type_url);

#endif
