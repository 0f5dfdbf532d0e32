/* Compile a transport_socket (a listener filter chain's, or a cluster's) into a wf_tls_cfg:
 * envoy.transport_sockets.tls with a DownstreamTlsContext (server) or UpstreamTlsContext
 * (client), or envoy.transport_sockets.raw_buffer (plain: no config). Certificates, keys and
 * CAs are read and checked here, at load, so that a bad file refuses the config (the last good
 * one keeps serving) with its path and OpenSSL's reason. */
#include "proxy/compile.h"

#include "envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "core/str.h"
#include "net/tls.h"
#include "proxy/stats.h"
#include "proxy/tls.h"
#include "xds/cfgdoc.h"
#include "core/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/ssl_api.h"

typedef Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext DownstreamTlsContext;
typedef Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext UpstreamTlsContext;
typedef Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext CommonTlsContext;
typedef Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters TlsParameters;
typedef Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate TlsCertificate;
typedef Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext ValidationContext;
typedef Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher SanMatcher;
typedef Envoy__Config__Core__V3__DataSource DataSource;

#define TLS_NAME "envoy.transport_sockets.tls"
#define RAW_NAME "envoy.transport_sockets.raw_buffer"
#define DOWN_TYPE "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
#define UP_TYPE "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
#define RAW_TYPE "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"

void wf_tls_cfg_free(struct wf_tls_cfg *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	for (uint32_t i = 0; i < t->n_san; i++) {
		free(t->san[i].sm.s);
		if (t->san[i].sm.re)
			pcre2_code_free(t->san[i].sm.re);
	}
	free(t->san);
	free(t->pin_cert);
	free(t->pin_spki);
	free(t->alpn);
	free(t->sni);
	free(t);
}

/* A data source's bytes, and how to name it in an error: its file, or "inline". */
static int source(struct wf_compile *c, const DataSource *ds, char **out, uint32_t *len, char *what, size_t wlen)
{
	if (wf_compile_datasource(c, &ds->base, out, len) < 0)
		return -1;
	if (ds->specifier_case == ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME) {
		snprintf(what, wlen, "'%s'", ds->filename);
		/* remembered, so that the proxy reloads when the file changes */
		struct wf_snapshot *s = c->snap;
		s->tls_files = realloc(s->tls_files, (s->n_tls_files + 1) * sizeof(*s->tls_files));
		s->tls_files[s->n_tls_files++] = strdup(ds->filename);
	} else
		snprintf(what, wlen, "inline data");
	return 0;
}

/* Strings joined with ':' (OpenSSL's list syntax); NULL when any holds a ':' or '['. */
static char *join(char **v, size_t n)
{
	size_t len = 1;
	for (size_t i = 0; i < n; i++) {
		if (strpbrk(v[i], ":[]"))
			return NULL;
		len += strlen(v[i]) + 1;
	}
	char *s = calloc(1, len);
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(s, ":");
		strcat(s, v[i]);
	}
	return s;
}

static int list_setting(struct wf_compile *c, const TlsParameters *p, const char *field, char **v, size_t n,
                        int (*set)(SSL_CTX *, const char *, char *, size_t), SSL_CTX *ctx)
{
	if (!n)
		return 0;
	char *s = join(v, n);
	if (!s)
		return wf_cfg_err(c->doc, c->err, c->errlen, p, field,
		                  "one name per entry (equal-preference groups [a|b] are BoringSSL's, not supported)");
	char e[256];
	int r = set(ctx, s, e, sizeof(e));
	if (r < 0)
		wf_cfg_err(c->doc, c->err, c->errlen, p, field, "%s: %s", s, e);
	free(s);
	return r;
}

static int set_sigalgs(SSL_CTX *ctx, const char *list, char *err, size_t errlen)
{
	if (!SSL_CTX_set1_sigalgs_list(ctx, list)) {
		snprintf(err, errlen, "unknown signature algorithm");
		return -1;
	}
	return 0;
}

static int tls_params(struct wf_compile *c, const TlsParameters *p, struct wf_tls_cfg *t)
{
	/* TlsProtocol: TLS_AUTO 0, TLSv1_0 1, TLSv1_1 2, TLSv1_2 3, TLSv1_3 4 */
	static const int version[] = {0, TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION};
	int min = p->tls_minimum_protocol_version, max = p->tls_maximum_protocol_version;
	if (min < 0 || min > 4 || max < 0 || max > 4)
		return wf_cfg_err(c->doc, c->err, c->errlen, p, NULL, "unknown TLS protocol version");
	int vmin = min ? version[min] : TLS1_2_VERSION, vmax = max ? version[max] : TLS1_3_VERSION;
	if (vmin > vmax)
		return wf_cfg_err(c->doc, c->err, c->errlen, p, "tls_maximum_protocol_version",
		                  "the maximum version is below the minimum version");
	char e[256];
	if (wf_tls_set_versions(t->ctx, vmin, vmax, e, sizeof(e)) < 0)
		return wf_cfg_err(c->doc, c->err, c->errlen, p, NULL, "%s", e);
	if (list_setting(c, p, "cipher_suites", p->cipher_suites, p->n_cipher_suites, wf_tls_set_ciphers, t->ctx) < 0 ||
	    list_setting(c, p, "ecdh_curves", p->ecdh_curves, p->n_ecdh_curves, wf_tls_set_curves, t->ctx) < 0 ||
	    list_setting(c, p, "signature_algorithms", p->signature_algorithms, p->n_signature_algorithms, set_sigalgs,
	                 t->ctx) < 0)
		return -1;
	return 0;
}

static int certificate(struct wf_compile *c, const TlsCertificate *m, struct wf_tls_cfg *t)
{
	if (!m->certificate_chain)
		return wf_cfg_err(c->doc, c->err, c->errlen, m, "certificate_chain", "certificate_chain is required");
	if (!m->private_key)
		return wf_cfg_err(c->doc, c->err, c->errlen, m, "private_key", "private_key is required");
	char *chain = NULL, *key = NULL, what[600], kwhat[600], e[1024];
	uint32_t chain_len, key_len;
	int r = -1;
	if (source(c, m->certificate_chain, &chain, &chain_len, what, sizeof(what)) < 0 ||
	    source(c, m->private_key, &key, &key_len, kwhat, sizeof(kwhat)) < 0)
		goto out;
	char both[1300];
	snprintf(both, sizeof(both), "certificate_chain %s, private_key %s", what, kwhat);
	if (wf_tls_add_cert(t->ctx, chain, chain_len, key, key_len, both, e, sizeof(e)) < 0) {
		wf_cfg_err(c->doc, c->err, c->errlen, m, "certificate_chain", "%s", e);
		goto out;
	}
	r = 0;
out:
	if (key)
		memset(key, 0, key_len);
	free(key);
	free(chain);
	return r;
}

static int san_matchers(struct wf_compile *c, const ValidationContext *v, struct wf_tls_cfg *t)
{
	if (!v->n_match_typed_subject_alt_names)
		return 0;
	t->san = calloc(v->n_match_typed_subject_alt_names, sizeof(*t->san));
	for (size_t i = 0; i < v->n_match_typed_subject_alt_names; i++) {
		const SanMatcher *m = v->match_typed_subject_alt_names[i];
		/* SanType: EMAIL 1, DNS 2, URI 3, IP_ADDRESS 4 */
		static const int type[] = {-1, GEN_EMAIL, GEN_DNS, GEN_URI, GEN_IPADD};
		if (m->san_type < 1 || m->san_type > 4)
			return wf_cfg_err(c->doc, c->err, c->errlen, m, "san_type",
			                  "san_type must be DNS, URI, EMAIL or IP_ADDRESS");
		if (!m->matcher)
			return wf_cfg_err(c->doc, c->err, c->errlen, m, "matcher", "matcher is required");
		struct wf_san_match *s = &t->san[t->n_san++];
		s->type = type[m->san_type];
		if (wf_compile_strmatch(c, &m->matcher->base, &s->sm) < 0)
			return -1;
	}
	return 0;
}

/* verify_certificate_hash (hex, colons allowed) and verify_certificate_spki (base64): SHA-256
 * values, 32 bytes each. */
static int pins(struct wf_compile *c, const ValidationContext *v, struct wf_tls_cfg *t)
{
	if (v->n_verify_certificate_hash)
		t->pin_cert = calloc(v->n_verify_certificate_hash, 32);
	for (size_t i = 0; i < v->n_verify_certificate_hash; i++) {
		const char *h = v->verify_certificate_hash[i];
		char hex[65];
		size_t n = 0;
		for (; *h && n < sizeof(hex) - 1; h++)
			if (*h != ':')
				hex[n++] = *h;
		if (*h || n != 64 || wf_hex_decode(hex, 64, t->pin_cert[i]) != 32)
			return wf_cfg_err(c->doc, c->err, c->errlen, v, "verify_certificate_hash",
			                  "'%s' is not a SHA-256 in hex (64 digits, colons allowed)", v->verify_certificate_hash[i]);
		t->n_pin_cert++;
	}
	if (v->n_verify_certificate_spki)
		t->pin_spki = calloc(v->n_verify_certificate_spki, 32);
	for (size_t i = 0; i < v->n_verify_certificate_spki; i++) {
		const char *b = v->verify_certificate_spki[i];
		unsigned char raw[48];
		size_t n = strlen(b);
		if (n > 44 || wf_base64_decode(b, n, raw) != 32)
			return wf_cfg_err(c->doc, c->err, c->errlen, v, "verify_certificate_spki",
			                  "'%s' is not a SHA-256 in base64 (44 characters)", b);
		memcpy(t->pin_spki[t->n_pin_spki++], raw, 32);
	}
	return 0;
}

static int validation(struct wf_compile *c, const ValidationContext *v, struct wf_tls_cfg *t)
{
	if (pins(c, v, t) < 0)
		return -1;
	t->verify = t->n_pin_cert || t->n_pin_spki;
	if (!v->trusted_ca && !t->verify)
		return wf_cfg_err(c->doc, c->err, c->errlen, v, "trusted_ca",
		                  "trusted_ca (the peer is verified against it) or verify_certificate_hash / "
		                  "verify_certificate_spki is required");
	if (v->max_verify_depth)
		SSL_CTX_set_verify_depth(t->ctx, (int)v->max_verify_depth->value);
	if (!v->trusted_ca)
		return san_matchers(c, v, t);
	char *pem = NULL, what[600], e[1024];
	uint32_t len;
	if (source(c, v->trusted_ca, &pem, &len, what, sizeof(what)) < 0)
		return -1;
	char w[700];
	snprintf(w, sizeof(w), "trusted_ca %s", what);
	int r = wf_tls_set_ca(t->ctx, pem, len, w, e, sizeof(e));
	free(pem);
	if (r < 0)
		return wf_cfg_err(c->doc, c->err, c->errlen, v, "trusted_ca", "%s", e);
	t->verify = t->verify_chain = 1;
	return san_matchers(c, v, t);
}

static int alpn(struct wf_compile *c, const CommonTlsContext *m, struct wf_tls_cfg *t)
{
	size_t len = 0;
	for (size_t i = 0; i < m->n_alpn_protocols; i++) {
		size_t n = strlen(m->alpn_protocols[i]);
		if (!n || n > 255)
			return wf_cfg_err(c->doc, c->err, c->errlen, m, "alpn_protocols", "a protocol name is 1..255 bytes");
		len += n + 1;
	}
	if (!len)
		return 0;
	t->alpn = malloc(len);
	for (size_t i = 0; i < m->n_alpn_protocols; i++) {
		size_t n = strlen(m->alpn_protocols[i]);
		t->alpn[t->alpn_len++] = (unsigned char)n;
		memcpy(t->alpn + t->alpn_len, m->alpn_protocols[i], n);
		t->alpn_len += (uint32_t)n;
	}
	if (t->server)
		wf_tls_set_alpn_server(t->ctx, t->alpn, t->alpn_len);
	else
		SSL_CTX_set_alpn_protos(t->ctx, t->alpn, t->alpn_len);
	return 0;
}

void wf_tls_cfg_alpn_default(struct wf_tls_cfg *t, const unsigned char *wire, uint32_t len)
{
	if (t->alpn_len)
		return; /* alpn_protocols set by the user win */
	t->alpn = malloc(len);
	memcpy(t->alpn, wire, len);
	t->alpn_len = len;
	SSL_CTX_set_alpn_protos(t->ctx, t->alpn, t->alpn_len);
}

static int common(struct wf_compile *c, const void *owner, const CommonTlsContext *m, struct wf_tls_cfg *t)
{
	char e[256];
	if (!(t->ctx = wf_tls_ctx_new(t->server, e, sizeof(e))))
		return wf_cfg_err(c->doc, c->err, c->errlen, owner, NULL, "%s", e);
	if (!m) {
		if (t->server)
			return wf_cfg_err(c->doc, c->err, c->errlen, owner, "common_tls_context",
			                  "common_tls_context with tls_certificates is required");
		return 0;
	}
	if (m->tls_params && tls_params(c, m->tls_params, t) < 0)
		return -1;
	if (t->server && !m->n_tls_certificates)
		return wf_cfg_err(c->doc, c->err, c->errlen, m, "tls_certificates", "a server needs a certificate");
	if (!t->server && m->n_tls_certificates > 1)
		return wf_cfg_err(c->doc, c->err, c->errlen, m, "tls_certificates",
		                  "a client presents one certificate");
	for (size_t i = 0; i < m->n_tls_certificates; i++)
		if (certificate(c, m->tls_certificates[i], t) < 0)
			return -1;
	if (m->validation_context && validation(c, m->validation_context, t) < 0)
		return -1;
	return alpn(c, m, t);
}

static void stats(struct wf_tls_cfg *t, const char *scope, const char *label)
{
	t->st_handshake = wf_stat_register(WF_STAT_COUNTER, scope, label, "ssl.handshake");
	t->st_connection_error = wf_stat_register(WF_STAT_COUNTER, scope, label, "ssl.connection_error");
	t->st_no_certificate = wf_stat_register(WF_STAT_COUNTER, scope, label, "ssl.no_certificate");
	t->st_fail_verify_san = wf_stat_register(WF_STAT_COUNTER, scope, label, "ssl.fail_verify_san");
	t->st_fail_verify_error = wf_stat_register(WF_STAT_COUNTER, scope, label, "ssl.fail_verify_error");
	t->st_fail_verify_cert_hash = wf_stat_register(WF_STAT_COUNTER, scope, label, "ssl.fail_verify_cert_hash");
	t->st_session_reused = wf_stat_register(WF_STAT_COUNTER, scope, label, "ssl.session_reused");
}

static int downstream(struct wf_compile *c, const DownstreamTlsContext *m, struct wf_tls_cfg *t, const char *label)
{
	if (common(c, m, m->common_tls_context, t) < 0)
		return -1;
	t->require_cert = m->require_client_certificate && m->require_client_certificate->value;
	if (t->require_cert && !t->verify)
		return wf_cfg_err(c->doc, c->err, c->errlen, m, "require_client_certificate",
		                  "needs common_tls_context.validation_context (trusted_ca, or certificate pins) to "
		                  "verify the client's certificate");
	if (t->verify)
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER | (t->require_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
	wf_tls_set_sni_policy(t->ctx, m->require_sni && m->require_sni->value,
	                      m->full_scan_certs_on_sni_mismatch && m->full_scan_certs_on_sni_mismatch->value);
	if (m->prefer_client_ciphers)
		SSL_CTX_clear_options(t->ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* sessions resume only on the listener that created them */
	unsigned char sid[SSL_MAX_SID_CTX_LENGTH];
	size_t n = strlen(label) < sizeof(sid) ? strlen(label) : sizeof(sid);
	memcpy(sid, label, n);
	SSL_CTX_set_session_id_context(t->ctx, sid, (unsigned)n);
	char e[256];
	switch (m->session_ticket_keys_type_case) {
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__DOWNSTREAM_TLS_CONTEXT__SESSION_TICKET_KEYS_TYPE_DISABLE_STATELESS_SESSION_RESUMPTION:
		if (m->disable_stateless_session_resumption)
			SSL_CTX_set_options(t->ctx, SSL_OP_NO_TICKET);
		break;
	case ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__DOWNSTREAM_TLS_CONTEXT__SESSION_TICKET_KEYS_TYPE_SESSION_TICKET_KEYS: {
		const Envoy__Extensions__TransportSockets__Tls__V3__TlsSessionTicketKeys *k = m->session_ticket_keys;
		if (k->n_keys != 1)
			return wf_cfg_err(c->doc, c->err, c->errlen, k, "keys", "exactly one key is supported yet");
		char *key = NULL, what[600];
		uint32_t len;
		if (source(c, k->keys[0], &key, &len, what, sizeof(what)) < 0)
			return -1;
		int r = wf_tls_set_ticket_key(t->ctx, (const unsigned char *)key, len, e, sizeof(e));
		memset(key, 0, len);
		free(key);
		if (r < 0)
			return wf_cfg_err(c->doc, c->err, c->errlen, k, "keys", "%s: %s", what, e);
		break;
	}
	default:
		break;
	}
	if (m->session_timeout)
		SSL_CTX_set_timeout(t->ctx, (long)(wf_duration_ms(m->session_timeout) / 1000));
	if (m->disable_stateful_session_resumption)
		SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
	return 0;
}

int wf_compile_transport_socket(struct wf_compile *c, const Envoy__Config__Core__V3__TransportSocket *ts, int server,
                                const char *scope, const char *label, struct wf_tls_cfg **out)
{
	*out = NULL;
	if (!ts)
		return 0;
	const char *name = ts->name ? ts->name : "";
	if (ts->config_type_case != ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG) {
		if (!strcmp(name, RAW_NAME))
			return 0;
		return wf_cfg_err(c->doc, c->err, c->errlen, ts, "typed_config",
		                  !strcmp(name, TLS_NAME) ? "typed_config is required (a %s)"
		                                          : "unknown transport socket; supported: " TLS_NAME " (%s), " RAW_NAME,
		                  server ? DOWN_TYPE : UP_TYPE);
	}
	ProtobufCMessage *in = wf_cfgdoc_any(c->doc, &ts->typed_config->base, c->err, c->errlen);
	if (!in)
		return -1;
	if (!strcmp(in->descriptor->name, RAW_TYPE))
		return 0;
	const char *want = server ? DOWN_TYPE : UP_TYPE;
	if (strcmp(in->descriptor->name, want))
		return wf_cfg_err(c->doc, c->err, c->errlen, ts, "typed_config", "expected a %s here, got %s", want,
		                  in->descriptor->name);
	struct wf_tls_cfg *t = calloc(1, sizeof(*t));
	t->server = (uint8_t)server;
	int r;
	if (server) {
		r = downstream(c, (const DownstreamTlsContext *)in, t, label);
	} else {
		const UpstreamTlsContext *u = (const UpstreamTlsContext *)in;
		r = common(c, u, u->common_tls_context, t);
		if (r == 0 && u->sni && *u->sni)
			t->sni = strdup(u->sni);
		if (r == 0)
			SSL_CTX_set_verify(t->ctx, t->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
		/* max_session_keys: 0 disables resumption; otherwise each worker keeps its newest */
		int resume = !u->max_session_keys || u->max_session_keys->value;
		if (r == 0 && resume && wf_tls_client_sessions(t->ctx, c->snap->n_workers ? c->snap->n_workers : 1) < 0)
			r = wf_cfg_err(c->doc, c->err, c->errlen, ts, NULL, "out of memory");
		/* the same context (same text) after a reload may reuse pooled connections */
		t->key = wf_xxh64(ts->typed_config->value.data, ts->typed_config->value.len, 0) | 1;
	}
	if (r < 0) {
		wf_tls_cfg_free(t);
		return -1;
	}
	if (t->verify)
		SSL_CTX_set_cert_verify_callback(t->ctx, wf_tls_verify_peer, t);
	stats(t, scope, label);
	*out = t;
	return 0;
}
