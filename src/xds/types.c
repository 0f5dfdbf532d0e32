#include "xds/types.h"

#include <string.h>

const char *const wf_xds_type_url[WF_XDS_NTYPES] = {
	"type.googleapis.com/envoy.config.cluster.v3.Cluster",
	"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
	"type.googleapis.com/envoy.config.listener.v3.Listener",
	"type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
};
const char *const wf_xds_type_name[WF_XDS_NTYPES] = {"Cluster", "ClusterLoadAssignment", "Listener",
                                                     "RouteConfiguration"};
const char *const wf_xds_type_abbr[WF_XDS_NTYPES] = {"CDS", "EDS", "LDS", "RDS"};

int wf_xds_type_of(const char *type_url)
{
	for (int t = 0; t < WF_XDS_NTYPES; t++)
		if (!strcmp(type_url, wf_xds_type_url[t]))
			return t;
	return -1;
}
