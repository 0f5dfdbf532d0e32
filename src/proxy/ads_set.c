/* The xDS resource set (see ads_set.h). */
#include "proxy/ads_set.h"

#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/listener/v3/listener.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "xds/cfgdoc.h"
#include "xds/registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct wf_xds_set *wf_xds_set_new(void)
{
	struct wf_xds_set *s = calloc(1, sizeof(*s));
	s->refs = 1;
	return s;
}

struct wf_xds_set *wf_xds_set_copy(const struct wf_xds_set *from)
{
	struct wf_xds_set *s = wf_xds_set_new();
	for (int t = 0; t < WF_XDS_NTYPES; t++) {
		s->n[t] = from->n[t];
		s->res[t] = calloc(from->n[t] + 1, sizeof(*s->res[t]));
		for (uint32_t i = 0; i < from->n[t]; i++) {
			const struct wf_xds_res *r = &from->res[t][i];
			s->res[t][i] = (struct wf_xds_res){strdup(r->name), strdup(r->version), wf_cfgdoc_ref(r->doc), r->hash,
			                                   r->updated_wall_s};
		}
		s->version[t] = from->version[t] ? strdup(from->version[t]) : NULL;
		s->updated_wall_s[t] = from->updated_wall_s[t];
		for (uint32_t i = 0; i < from->n_timed_out[t]; i++)
			wf_xds_set_time_out(s, t, from->timed_out[t][i]);
	}
	return s;
}

struct wf_xds_set *wf_xds_set_ref(struct wf_xds_set *s)
{
	if (s)
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	return s;
}

static void res_free(struct wf_xds_res *r)
{
	free(r->name);
	free(r->version);
	wf_cfgdoc_free(r->doc);
}

void wf_xds_set_unref(struct wf_xds_set *s)
{
	if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (int t = 0; t < WF_XDS_NTYPES; t++) {
		for (uint32_t i = 0; i < s->n[t]; i++)
			res_free(&s->res[t][i]);
		free(s->res[t]);
		free(s->version[t]);
		for (uint32_t i = 0; i < s->n_timed_out[t]; i++)
			free(s->timed_out[t][i]);
		free(s->timed_out[t]);
	}
	free(s);
}

const struct wf_xds_res *wf_xds_set_find(const struct wf_xds_set *s, enum wf_xds_type t, const char *name)
{
	for (uint32_t i = 0; s && name && i < s->n[t]; i++)
		if (!strcmp(s->res[t][i].name, name))
			return &s->res[t][i];
	return NULL;
}

void wf_xds_set_put(struct wf_xds_set *s, enum wf_xds_type t, const char *name, const char *version,
                    struct wf_cfgdoc *doc, uint64_t hash)
{
	struct wf_xds_res *r = (struct wf_xds_res *)wf_xds_set_find(s, t, name);
	if (r) {
		res_free(r);
	} else {
		s->res[t] = realloc(s->res[t], (s->n[t] + 1) * sizeof(*s->res[t]));
		r = &s->res[t][s->n[t]++];
	}
	*r = (struct wf_xds_res){strdup(name), strdup(version ? version : ""), doc, hash, (uint64_t)time(NULL)};
}

int wf_xds_set_remove(struct wf_xds_set *s, enum wf_xds_type t, const char *name)
{
	struct wf_xds_res *r = (struct wf_xds_res *)wf_xds_set_find(s, t, name);
	if (!r)
		return 0;
	res_free(r);
	uint32_t i = (uint32_t)(r - s->res[t]);
	memmove(r, r + 1, (s->n[t] - i - 1) * sizeof(*r)); /* keep the order resources came in */
	s->n[t]--;
	return 1;
}

void wf_xds_set_time_out(struct wf_xds_set *s, enum wf_xds_type t, const char *name)
{
	if (wf_xds_set_timed_out(s, t, name))
		return;
	s->timed_out[t] = realloc(s->timed_out[t], (s->n_timed_out[t] + 1) * sizeof(char *));
	s->timed_out[t][s->n_timed_out[t]++] = strdup(name);
}

int wf_xds_set_timed_out(const struct wf_xds_set *s, enum wf_xds_type t, const char *name)
{
	for (uint32_t i = 0; s && i < s->n_timed_out[t]; i++)
		if (!strcmp(s->timed_out[t][i], name))
			return 1;
	return 0;
}

/* ---- decoding ------------------------------------------------------------------------------ */

struct wf_cfgdoc *wf_xds_decode(enum wf_xds_type t, const uint8_t *p, size_t n, char **name, char *err,
                                size_t errlen)
{
	const ProtobufCMessageDescriptor *d = wf_proto_find(wf_xds_type_url[t]);
	ProtobufCMessage *m = d ? protobuf_c_message_unpack(d, NULL, n, p) : NULL;
	if (!m) {
		snprintf(err, errlen, "xds:%s: a resource does not decode as %s", wf_xds_type_name[t],
		         d ? d->name : wf_xds_type_url[t]);
		return NULL;
	}
	const ProtobufCFieldDescriptor *nf =
	    protobuf_c_message_descriptor_get_field_by_name(d, t == WF_XDS_EDS ? "cluster_name" : "name");
	const char *nm = nf ? *(char *const *)((const char *)m + nf->offset) : NULL;
	if (!nm || !*nm) {
		snprintf(err, errlen, "xds:%s: a resource without a %s", wf_xds_type_name[t], nf ? nf->name : "name");
		protobuf_c_message_free_unpacked(m, NULL);
		return NULL;
	}
	char src[512];
	snprintf(src, sizeof(src), "xds:%s/%s", wf_xds_type_name[t], nm);
	struct wf_cfgdoc *doc = wf_cfgdoc_new(src);
	wf_cfgdoc_set_root(doc, m); /* its messages' paths are found when asked (wf_cfgdoc_path) */
	*name = strdup(nm);
	return doc;
}

/* ---- what the listeners and clusters use ----------------------------------------------------- */

struct uses {
	struct wf_xds_use *u;
	uint32_t n;
};

static void use(struct uses *us, const char *name, const char *scope)
{
	us->u = realloc(us->u, (us->n + 1) * sizeof(*us->u));
	us->u[us->n++] = (struct wf_xds_use){strdup(name), strdup(scope ? scope : "")};
}

typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager Hcm;

static void chain_rds(struct wf_cfgdoc *doc, const Envoy__Config__Listener__V3__FilterChain *fc, struct uses *us)
{
	for (size_t f = 0; fc && f < fc->n_filters; f++) {
		const Envoy__Config__Listener__V3__Filter *fl = fc->filters[f];
		char err[256];
		if (fl->config_type_case != ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG)
			continue;
		const ProtobufCMessage *in = wf_cfgdoc_any(doc, &fl->typed_config->base, err, sizeof(err));
		if (!in || in->descriptor != &envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor)
			continue;
		const Hcm *h = (const void *)in;
		if (h->route_specifier_case == ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS &&
		    h->rds->route_config_name && *h->rds->route_config_name)
			use(us, h->rds->route_config_name, h->stat_prefix);
	}
}

static void listener_rds(struct wf_cfgdoc *doc, const Envoy__Config__Listener__V3__Listener *l, struct uses *us)
{
	for (size_t k = 0; k < l->n_filter_chains; k++)
		chain_rds(doc, l->filter_chains[k], us);
	chain_rds(doc, l->default_filter_chain, us);
}

static void cluster_eds(const Envoy__Config__Cluster__V3__Cluster *c, struct uses *us)
{
	if (!c->cluster_discovery_type_case || c->type != ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS)
		return;
	const Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig *e = c->eds_cluster_config;
	use(us, e && e->service_name && *e->service_name ? e->service_name : c->name,
	    c->alt_stat_name && *c->alt_stat_name ? c->alt_stat_name : c->name);
}

uint32_t wf_xds_uses(struct wf_cfgdoc *boot, const struct wf_xds_set *set, enum wf_xds_type t,
                     struct wf_xds_use **out)
{
	const Envoy__Config__Bootstrap__V3__Bootstrap *b = boot ? (const void *)wf_cfgdoc_root(boot) : NULL;
	const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = b ? b->static_resources : NULL;
	struct uses us = {0};
	if (t == WF_XDS_RDS) {
		for (size_t i = 0; sr && i < sr->n_listeners; i++)
			listener_rds(boot, sr->listeners[i], &us);
		for (uint32_t i = 0; set && i < set->n[WF_XDS_LDS]; i++)
			listener_rds(set->res[WF_XDS_LDS][i].doc, (const void *)wf_cfgdoc_root(set->res[WF_XDS_LDS][i].doc), &us);
	} else if (t == WF_XDS_EDS) {
		for (size_t i = 0; sr && i < sr->n_clusters; i++)
			cluster_eds(sr->clusters[i], &us);
		for (uint32_t i = 0; set && i < set->n[WF_XDS_CDS]; i++)
			cluster_eds((const void *)wf_cfgdoc_root(set->res[WF_XDS_CDS][i].doc), &us);
	}
	*out = us.u;
	return us.n;
}

void wf_xds_uses_free(struct wf_xds_use *u, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		free(u[i].name);
		free(u[i].scope);
	}
	free(u);
}
