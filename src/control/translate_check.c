/* wf_translate_check: one Istio object translated alone, so that what no proxy could be given
 * is refused where the object is loaded (with its file and position), not when every proxy's
 * resources are built. The object goes through the same code as in wf_translate, with a
 * stand-in proxy of its namespace for which every match applies. */
#include "control/translate_int.h"

#include "control/mesh_int.h"

#include <errno.h>
#include <stdio.h>

static void discard(void *ctx, const char *type, const char *name, ProtobufCMessage *msg)
{
	wf_proto_free(msg);
}

int wf_translate_check(const struct wf_istio_obj *o, char *err, size_t errlen)
{
	struct wf_mesh empty = {0};
	struct wf_proxy_info p = {.kind = WF_PROXY_SIDECAR, .id = "check", .ip = "", .name = "check", .ns = o->ns,
	                          .service_account = "", .locality = ""};
	struct wf_tx t = {.m = &empty, .p = &p, .emit = discard, .err = err, .errlen = errlen, .parts = WF_TX_ALL,
	                  .check = 1};
	switch (o->kind) {
	case WF_KIND_DESTINATION_RULE: {
		const Istio__Networking__V1alpha3__DestinationRule *d = (const void *)o->spec;
		struct wf_mesh_dr dr = {o->name, o->ns, o->doc, wf_mesh_fqdn(d->host, o->ns), d, 0};
		int rc = wf_tx_check_dr(&t, &dr);
		free(dr.host);
		return rc;
	}
	case WF_KIND_VIRTUAL_SERVICE: {
		struct wf_mesh_vs v = {.name = o->name, .ns = o->ns, .doc = o->doc, .vs = (const void *)o->spec, .mesh = 1};
		return wf_tx_check_vs(&t, &v);
	}
	case WF_KIND_GATEWAY: {
		struct wf_mesh_gateway g = {o->name, o->ns, o->doc, (const void *)o->spec};
		p.kind = WF_PROXY_ROUTER;
		return wf_tx_check_gateway(&t, &g);
	}
	case WF_KIND_SIDECAR: {
		/* its ingress listeners and clusters, as for a proxy it selects */
		struct wf_mesh_sidecar sc = {o->name, o->ns, o->doc, (const void *)o->spec};
		t.sidecar = &sc;
		t.parts = WF_TX_INBOUND;
		int rc = wf_tx_clusters(&t);
		return rc < 0 ? rc : wf_tx_listeners(&t);
	}
	default:
		return 0;
	}
}
