/* The translator's driver: which services a proxy sees (exportTo, the Sidecar's egress
 * hosts), then CDS/EDS, LDS and RDS in make-before-break order; and the message helpers. */
#include "control/translate_int.h"

#include "control/mesh_int.h"
#include "xds/cfgdoc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

/* ---- message helpers ------------------------------------------------------------------------ */

char *wf_xstr(const char *s)
{
	return strdup(s ? s : "");
}

char *wf_xfmt(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

Google__Protobuf__UInt32Value *wf_xu32(uint32_t v)
{
	Google__Protobuf__UInt32Value *w = XNEW(Google__Protobuf__UInt32Value, google__protobuf__uint32_value__descriptor);
	w->value = v;
	return w;
}

Google__Protobuf__BoolValue *wf_xbool(int v)
{
	Google__Protobuf__BoolValue *w = XNEW(Google__Protobuf__BoolValue, google__protobuf__bool_value__descriptor);
	w->value = v != 0;
	return w;
}

Google__Protobuf__Duration *wf_xdur(const Google__Protobuf__Duration *d)
{
	Google__Protobuf__Duration *r = XNEW(Google__Protobuf__Duration, google__protobuf__duration__descriptor);
	r->seconds = d->seconds;
	r->nanos = d->nanos;
	return r;
}

Google__Protobuf__Duration *wf_xdur_ms(uint64_t ms)
{
	Google__Protobuf__Duration *r = XNEW(Google__Protobuf__Duration, google__protobuf__duration__descriptor);
	r->seconds = (int64_t)(ms / 1000);
	r->nanos = (int32_t)(ms % 1000) * 1000000;
	return r;
}

Google__Protobuf__Any *wf_xany(ProtobufCMessage *m)
{
	Google__Protobuf__Any *a = XNEW(Google__Protobuf__Any, google__protobuf__any__descriptor);
	a->type_url = wf_xfmt(WF_TYPE_URL_PREFIX "%s", m->descriptor->name);
	a->value.len = protobuf_c_message_get_packed_size(m);
	a->value.data = malloc(a->value.len ? a->value.len : 1);
	protobuf_c_message_pack(m, a->value.data);
	wf_proto_free(m);
	return a;
}

Envoy__Config__Core__V3__ConfigSource *wf_xads(void)
{
	Envoy__Config__Core__V3__ConfigSource *cs =
	    XNEW(Envoy__Config__Core__V3__ConfigSource, envoy__config__core__v3__config_source__descriptor);
	cs->config_source_specifier_case = ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS;
	cs->ads = XNEW(Envoy__Config__Core__V3__AggregatedConfigSource,
	               envoy__config__core__v3__aggregated_config_source__descriptor);
	cs->resource_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
	return cs;
}

Envoy__Config__Core__V3__Address *wf_xaddr(const char *ip, uint32_t port)
{
	Envoy__Config__Core__V3__Address *a = XNEW(Envoy__Config__Core__V3__Address, envoy__config__core__v3__address__descriptor);
	a->address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
	a->socket_address = XNEW(Envoy__Config__Core__V3__SocketAddress, envoy__config__core__v3__socket_address__descriptor);
	a->socket_address->address = wf_xstr(ip);
	a->socket_address->port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
	a->socket_address->port_value = port;
	return a;
}

static Envoy__Config__Core__V3__DataSource *file_source(const char *path)
{
	Envoy__Config__Core__V3__DataSource *d = XNEW(Envoy__Config__Core__V3__DataSource, envoy__config__core__v3__data_source__descriptor);
	d->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME;
	d->filename = wf_xstr(path);
	return d;
}

void wf_xtls_files(Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *ctx, const char *cert,
                   const char *key, const char *ca, char **sans, size_t n_sans)
{
	if (cert && *cert) {
		Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate *tc =
		    XNEW(Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate,
		         envoy__extensions__transport_sockets__tls__v3__tls_certificate__descriptor);
		tc->certificate_chain = file_source(cert);
		tc->private_key = file_source(key);
		XPUSH(ctx->tls_certificates, ctx->n_tls_certificates, tc);
	}
	if (!ca || !*ca)
		return;
	Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *v =
	    XNEW(Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext,
	         envoy__extensions__transport_sockets__tls__v3__certificate_validation_context__descriptor);
	v->trusted_ca = file_source(ca);
	for (size_t i = 0; i < n_sans; i++) {
		Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher *san =
		    XNEW(Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher,
		         envoy__extensions__transport_sockets__tls__v3__subject_alt_name_matcher__descriptor);
		san->san_type = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__DNS;
		san->matcher = XNEW(Envoy__Type__Matcher__V3__StringMatcher, envoy__type__matcher__v3__string_matcher__descriptor);
		san->matcher->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
		san->matcher->exact = wf_xstr(sans[i]);
		XPUSH(v->match_typed_subject_alt_names, v->n_match_typed_subject_alt_names, san);
	}
	ctx->validation_context_type_case =
	    ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT;
	ctx->validation_context = v;
}

Envoy__Config__Core__V3__TransportSocket *wf_xtls_socket(ProtobufCMessage *tls_context)
{
	Envoy__Config__Core__V3__TransportSocket *ts =
	    XNEW(Envoy__Config__Core__V3__TransportSocket, envoy__config__core__v3__transport_socket__descriptor);
	ts->name = wf_xstr("envoy.transport_sockets.tls");
	ts->config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG;
	ts->typed_config = wf_xany(tls_context);
	return ts;
}

char *wf_cluster_name(const char *dir, uint32_t port, const char *subset, const char *host)
{
	return wf_xfmt("%s|%u|%s|%s", dir, port, subset ? subset : "", host ? host : "");
}

void wf_tx_emit(struct wf_tx *t, const char *type_url, const char *name, ProtobufCMessage *msg)
{
	t->count++;
	t->emit(t->ctx, type_url, name, msg);
}

int wf_tx_err(struct wf_tx *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->err, t->errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int wf_tx_err_at(struct wf_tx *t, const struct wf_cfgdoc *doc, const void *msg, const char *field, const char *fmt, ...)
{
	size_t k = 0;
	uint32_t line = 0, col = 0;
	const ProtobufCFieldDescriptor *f =
	    field && msg ? protobuf_c_message_descriptor_get_field_by_name(((const ProtobufCMessage *)msg)->descriptor, field) : NULL;
	if (doc && msg && ((f && wf_cfgdoc_pos(doc, msg, f->id, &line, &col)) || wf_cfgdoc_pos(doc, msg, 0, &line, &col))) {
		int n = snprintf(t->err, t->errlen, "%s:%u:%u: ", wf_cfgdoc_source(doc), line, col);
		k = n > 0 && (size_t)n < t->errlen ? (size_t)n : 0;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->err + k, t->errlen - k, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

void wf_tx_warn(struct wf_tx *t, const char *fmt, ...)
{
	if (!t->warn)
		return;
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	t->warn(t->ctx, buf);
}

/* ---- scoping -------------------------------------------------------------------------------- */

/* The Sidecar for the proxy, as Istio picks it: one in the proxy's namespace whose
 * workloadSelector matches its labels, else the one in its namespace without a selector. */
static const struct wf_mesh_sidecar *sidecar_for(const struct wf_mesh *m, const struct wf_proxy_info *p)
{
	const struct wf_mesh_sidecar *ns_wide = NULL;
	for (size_t i = 0; i < m->n_sidecars; i++) {
		const struct wf_mesh_sidecar *s = &m->sidecars[i];
		if (strcmp(s->ns, p->ns))
			continue;
		const Istio__Networking__V1alpha3__WorkloadSelector *sel = s->sc->workload_selector;
		if (!sel || !sel->n_labels) {
			if (!ns_wide)
				ns_wide = s;
			continue;
		}
		int all = 1;
		for (size_t k = 0; k < sel->n_labels && all; k++) {
			struct wf_kv kv = {sel->labels[k]->key, sel->labels[k]->value};
			all = wf_labels_match(&kv, 1, p->labels, p->n_labels);
		}
		if (all)
			return s;
	}
	return ns_wide;
}

/* What a Sidecar asks for that Weft's proxy cannot do yet: said, not silently dropped (the
 * rest of the Sidecar applies). */
static void sidecar_warnings(struct wf_tx *t)
{
	const Istio__Networking__V1alpha3__Sidecar *sc = t->sidecar->sc;
	const Istio__Networking__V1alpha3__OutboundTrafficPolicy *otp = sc->outbound_traffic_policy;
	if (otp && (otp->mode == ISTIO__NETWORKING__V1ALPHA3__OUTBOUND_TRAFFIC_POLICY__MODE__ALLOW_ANY || otp->egress_proxy))
		wf_tx_warn(t, "Sidecar %s/%s: outboundTrafficPolicy %s is not supported (no original-destination passthrough): "
		           "unknown destinations get 404, as with REGISTRY_ONLY", t->sidecar->ns, t->sidecar->name,
		           otp->egress_proxy ? "egressProxy" : "ALLOW_ANY");
	for (size_t i = 0; i < sc->n_egress + sc->n_ingress; i++) {
		int egress = i < sc->n_egress;
		int mode = egress ? sc->egress[i]->capture_mode : sc->ingress[i - sc->n_egress]->capture_mode;
		if (mode == ISTIO__NETWORKING__V1ALPHA3__CAPTURE_MODE__IPTABLES)
			wf_tx_warn(t, "Sidecar %s/%s: %s[%zu].captureMode IPTABLES: Weft has no traffic capture yet, the listener "
			           "binds its address as with NONE", t->sidecar->ns, t->sidecar->name, egress ? "egress" : "ingress",
			           egress ? i : i - sc->n_egress);
	}
}

/* An egress `hosts` entry "NS/HOST": NS is a namespace, "." (the Sidecar's), "*" or "~"
 * (none); HOST a host, "*" or "*.suffix". */
static int egress_host_match(const char *entry, const char *sc_ns, const struct wf_service *s)
{
	const char *slash = strchr(entry, '/');
	if (!slash)
		return wf_host_match(entry, s->host);
	size_t nl = (size_t)(slash - entry);
	const char *host = slash + 1;
	if (nl == 1 && entry[0] == '~')
		return 0;
	int ns_ok = (nl == 1 && entry[0] == '*') || (nl == 1 && entry[0] == '.' && !strcmp(s->ns, sc_ns)) ||
	            (strlen(s->ns) == nl && !strncmp(s->ns, entry, nl));
	return ns_ok && wf_host_match(host, s->host);
}

static int sidecar_allows(const struct wf_mesh_sidecar *sc, const struct wf_service *s)
{
	if (!sc || !sc->sc->n_egress)
		return 1;
	for (size_t i = 0; i < sc->sc->n_egress; i++) {
		const Istio__Networking__V1alpha3__IstioEgressListener *e = sc->sc->egress[i];
		for (size_t k = 0; k < e->n_hosts; k++)
			if (egress_host_match(e->hosts[k], sc->ns, s))
				return 1;
	}
	return 0;
}

/* A registered workload is the proxy's own by its node id; a WorkloadEntry (or inline
 * endpoint) when it has the proxy's address and labels that the proxy's labels include, so
 * that workloads sharing an address (one host, several ports) are told apart. Per service,
 * the first of its endpoints that is the proxy's; found through the mesh's index by node id
 * and by address (once per proxy), not by looking at every service. */
static int own_workloads(struct wf_tx *t)
{
	const struct wf_proxy_info *p = t->p;
	if (p->kind != WF_PROXY_SIDECAR || !(t->parts & WF_TX_INBOUND))
		return 0;
	const char *keys[2] = {p->id, p->ip};
	size_t firsts[2], ns[2], cap = 0;
	for (int k = 0; k < 2; k++) {
		ns[k] = *keys[k] ? wf_mesh_eps_of(t->m, keys[k], &firsts[k]) : 0;
		cap += ns[k];
	}
	if (!cap)
		return 0;
	struct wf_tx_own *own = calloc(cap, sizeof(*own));
	size_t *eps = calloc(cap, sizeof(*eps));
	if (!own || !eps) {
		free(own);
		free(eps);
		return wf_tx_err(t, "out of memory");
	}
	size_t n = 0;
	for (int k = 0; k < 2; k++)
		for (size_t i = firsts[k]; i < firsts[k] + ns[k]; i++) {
			const struct wf_mesh_epref *r = &t->m->ep_index[i];
			const struct wf_service *s = &t->m->svcs[r->svc];
			const struct wf_workload *w = s->eps[r->ep];
			if (w->node_id ? strcmp(w->node_id, p->id)
			               : !*p->ip || !w->n_labels || strcmp(w->address, p->ip) ||
			                     !wf_labels_match(w->labels, w->n_labels, p->labels, p->n_labels))
				continue;
			size_t j = 0;
			while (j < n && own[j].s != s)
				j++;
			if (j == n) {
				own[n].s = s;
				eps[n++] = SIZE_MAX;
			}
			if (r->ep < eps[j]) {
				own[j].w = w;
				eps[j] = r->ep;
			}
		}
	free(eps);
	/* in the mesh's order of services */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && own[j].s < own[j - 1].s; j--) {
			struct wf_tx_own x = own[j];
			own[j] = own[j - 1];
			own[j - 1] = x;
		}
	t->own = own;
	t->n_own = n;
	return 0;
}

int wf_translate(const struct wf_mesh *m, const struct wf_proxy_info *p, wf_translate_emit emit, void *ctx, char *err,
                 size_t errlen, void (*warn)(void *ctx, const char *msg))
{
	return wf_translate_parts(m, p, WF_TX_ALL, emit, ctx, err, errlen, warn);
}

int wf_translate_parts(const struct wf_mesh *m, const struct wf_proxy_info *p, unsigned parts, wf_translate_emit emit,
                       void *ctx, char *err, size_t errlen, void (*warn)(void *ctx, const char *msg))
{
	struct wf_tx t = {.m = m, .p = p, .emit = emit, .ctx = ctx, .err = err, .errlen = errlen, .warn = warn,
	                  .parts = parts};
	t.sidecar = p->kind == WF_PROXY_SIDECAR ? sidecar_for(m, p) : NULL;
	if (t.sidecar)
		sidecar_warnings(&t);
	t.svcs = calloc(m->n_svcs + 1, sizeof(*t.svcs));
	for (size_t i = 0; i < m->n_svcs; i++) {
		const struct wf_service *s = &m->svcs[i];
		if (wf_service_visible(s, p->ns) && sidecar_allows(t.sidecar, s))
			t.svcs[t.n_svcs++] = s;
	}
	int rc = own_workloads(&t);
	if (rc >= 0)
		rc = wf_tx_clusters(&t);
	if (rc >= 0)
		rc = wf_tx_listeners(&t);
	free(t.svcs);
	free(t.own);
	return rc < 0 ? rc : t.count;
}

void wf_translate_key(const struct wf_mesh *m, const struct wf_proxy_info *p, unsigned parts, char *out, size_t n)
{
	if (!n)
		return;
	int k = snprintf(out, n, "%d|%u|%s", p->kind, parts, p->ns);
	if (k < 0 || (size_t)k >= n)
		return;
	if (parts & WF_TX_INBOUND) {
		/* inbound: the proxy itself */
		snprintf(out + k, n - (size_t)k, "|%s|%s", p->id, p->ip);
		return;
	}
	const struct wf_mesh_sidecar *sc = p->kind == WF_PROXY_SIDECAR ? sidecar_for(m, p) : NULL;
	k += snprintf(out + k, n - (size_t)k, "|%s", sc ? sc->name : "");
	/* labels matter with sourceLabels matches, and for a router (Gateway selectors) */
	int labels = m->source_labels || p->kind == WF_PROXY_ROUTER;
	for (size_t i = 0; labels && i < p->n_labels && (size_t)k < n; i++)
		k += snprintf(out + k, n - (size_t)k, "|%s=%s", p->labels[i].key, p->labels[i].value);
}
