#include "net/tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "net/ssl_api.h"

const char *wf_tls_errstr(char *buf, size_t len)
{
	size_t o = 0;
	unsigned long e;
	buf[0] = 0;
	while ((e = ERR_get_error())) {
		const char *r = ERR_reason_error_string(e);
		char tmp[128];
		if (!r) {
			ERR_error_string_n(e, tmp, sizeof(tmp));
			r = tmp;
		}
		if (o < len)
			o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? "; " : "", r);
	}
	if (!buf[0])
		snprintf(buf, len, "unknown OpenSSL error");
	return buf;
}

static int fail(char *err, size_t errlen, const char *what, const char *doing)
{
	char r[256];
	wf_tls_errstr(r, sizeof(r));
	snprintf(err, errlen, "%s%s%s: %s", what ? what : "", what ? ": " : "", doing, r);
	return -1;
}

SSL_CTX *wf_tls_ctx_new(int server, char *err, size_t errlen)
{
	if (wf_ssl_load(err, errlen) < 0) /* the first TLS context loads OpenSSL */
		return NULL;
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!ctx) {
		fail(err, errlen, NULL, "cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* sio keeps unsent bytes in its own buffer, which may move between calls */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                          SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

/* ---- server certificates ------------------------------------------------------------------
 * A context keeps every certificate of its DownstreamTlsContext (ex_data, freed with it), and
 * the first of each key type is also the context's own: what a handshake gets when nothing
 * else is chosen. With several certificates, a certificate callback (run once the ClientHello
 * is read, before OpenSSL picks a certificate by the client's signature algorithms) replaces
 * the connection's certificates with the first of each key type whose names match the SNI:
 * Envoy's default selector. */

struct certent {
	X509 *leaf;
	EVP_PKEY *pk;
	OPENSSL_STACK *chain;           /* the intermediates */
	int type;                       /* 0 RSA, 1 ECDSA */
	char **names;                   /* DNS SANs (or the CN without SANs), lower-cased */
	int n_names;
};

struct certset {
	int n;
	uint8_t require_sni, full_scan;
	int def[2];                     /* the context's own, per key type: index or -1 */
	struct certent *e;
};

static int certs_idx = -1;

static void certset_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct certset *cs = ptr;
	if (!cs)
		return;
	for (int i = 0; i < cs->n; i++) {
		struct certent *e = &cs->e[i];
		X509_free(e->leaf);
		EVP_PKEY_free(e->pk);
		OPENSSL_sk_pop_free(e->chain, (OPENSSL_sk_freefunc)X509_free);
		for (int k = 0; k < e->n_names; k++)
			free(e->names[k]);
		free(e->names);
	}
	free(cs->e);
	free(cs);
}

static void add_name(struct certent *e, const unsigned char *s, int n)
{
	if (n <= 0 || memchr(s, 0, (size_t)n))
		return;
	char *v = malloc((size_t)n + 1);
	for (int i = 0; i < n; i++)
		v[i] = (char)tolower(s[i]);
	v[n] = 0;
	e->names = realloc(e->names, (size_t)(e->n_names + 1) * sizeof(*e->names));
	e->names[e->n_names++] = v;
}

static int name_one(void *arg, int type, const char *s, size_t n)
{
	if (type == GEN_DNS)
		add_name(arg, (const unsigned char *)s, (int)n);
	return 0;
}

/* The names a certificate serves (RFC 6125): its DNS SANs, or its CN when it has no SANs. */
static void cert_names(struct certent *e)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(e->leaf, NID_subject_alt_name, NULL, NULL);
	if (sans) {
		GENERAL_NAMES_free(sans);
		wf_tls_each_san(e->leaf, name_one, e);
		return;
	}
	X509_NAME *subj = X509_get_subject_name(e->leaf);
	int i = subj ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1) : -1;
	X509_NAME_ENTRY *cn = i >= 0 ? X509_NAME_get_entry(subj, i) : NULL;
	if (cn) {
		ASN1_STRING *d = X509_NAME_ENTRY_get_data(cn);
		add_name(e, ASN1_STRING_get0_data(d), ASN1_STRING_length(d));
	}
}

/* Certificates whose names hold `name` exactly ("*.x.com" is a name too, for wildcards):
 * the first of each key type into pick[]. 1 when any matched. */
static int pick_by_name(const struct certset *cs, const char *name, int pick[2])
{
	int found = 0;
	for (int i = 0; i < cs->n; i++) {
		const struct certent *e = &cs->e[i];
		if (pick[e->type] >= 0)
			continue;
		for (int k = 0; k < e->n_names; k++)
			if (!strcmp(e->names[k], name)) {
				pick[e->type] = i;
				found = 1;
				break;
			}
	}
	return found;
}

static int choose_cert(SSL *ssl, void *arg)
{
	if (!SSL_is_server(ssl))
		return 1;
	const struct certset *cs = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), certs_idx);
	if (!cs)
		return 1;
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (!sni || !*sni)
		return !cs->require_sni; /* no SNI: the context's own, by key type (Envoy's full scan) */
	char name[256];
	size_t n = strlen(sni);
	if (n >= sizeof(name) - 1)
		return !cs->require_sni;
	for (size_t i = 0; i <= n; i++)
		name[i] = (char)tolower((unsigned char)sni[i]);
	int pick[2] = {-1, -1};
	if (!pick_by_name(cs, name, pick)) {
		/* a wildcard covers one label: *.example.com for www.example.com, not a.b.example.com */
		const char *dot = strchr(name + 1, '.');
		if (dot && dot[1]) {
			char wild[258];
			snprintf(wild, sizeof(wild), "*%s", dot);
			pick_by_name(cs, wild, pick);
		}
	}
	if (pick[0] < 0 && pick[1] < 0) {
		if (cs->require_sni)
			return 0;
		if (cs->full_scan)
			return 1;
		pick[cs->e[0].type] = 0; /* Envoy: the first certificate, whatever its key type */
	}
	if (pick[0] == cs->def[0] && pick[1] == cs->def[1])
		return 1;
	SSL_certs_clear(ssl);
	for (int t = 0; t < 2; t++) {
		const struct certent *e = pick[t] >= 0 ? &cs->e[pick[t]] : NULL;
		if (e && SSL_use_cert_and_key(ssl, e->leaf, e->pk, (STACK_OF(X509) *)e->chain, 1) != 1)
			return 0;
	}
	return 1;
}

static struct certset *certset(SSL_CTX *ctx)
{
	if (certs_idx < 0) /* main thread, config time */
		certs_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, certset_free);
	struct certset *cs = SSL_CTX_get_ex_data(ctx, certs_idx);
	if (!cs) {
		cs = calloc(1, sizeof(*cs));
		cs->def[0] = cs->def[1] = -1;
		SSL_CTX_set_ex_data(ctx, certs_idx, cs);
		SSL_CTX_set_cert_cb(ctx, choose_cert, NULL);
	}
	return cs;
}

void wf_tls_set_sni_policy(SSL_CTX *ctx, int require_sni, int full_scan)
{
	struct certset *cs = certset(ctx);
	cs->require_sni = (uint8_t)require_sni;
	cs->full_scan = (uint8_t)full_scan;
}

int wf_tls_add_cert(SSL_CTX *ctx, const char *chain, size_t chain_len, const char *key, size_t key_len,
                    const char *what, char *err, size_t errlen)
{
	ERR_clear_error();
	BIO *b = BIO_new_mem_buf(chain, (int)chain_len);
	X509 *leaf = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL);
	OPENSSL_STACK *rest = OPENSSL_sk_new_null(); /* the typed sk_ helpers would bypass ssl_api.h */
	EVP_PKEY *pk = NULL;
	int rc = -1;
	if (!leaf) {
		fail(err, errlen, what, "no PEM certificate in certificate_chain");
		goto out;
	}
	X509 *x;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
		OPENSSL_sk_push(rest, x);
	ERR_clear_error(); /* the end of the PEM data reads as an error */
	BIO_free(b);
	b = BIO_new_mem_buf(key, (int)key_len);
	pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	if (!pk) {
		fail(err, errlen, what, "no usable PEM private key in private_key");
		goto out;
	}
	if (!X509_check_private_key(leaf, pk)) {
		fail(err, errlen, what, "the private key does not match the certificate");
		goto out;
	}
	int id = EVP_PKEY_get_base_id(pk);
	if (id != EVP_PKEY_RSA && id != EVP_PKEY_EC) {
		snprintf(err, errlen, "%s: only RSA and ECDSA keys are supported", what);
		goto out;
	}
	struct certset *cs = certset(ctx);
	int type = id == EVP_PKEY_EC;
	/* the first of its key type is the context's own */
	if (cs->def[type] < 0 && SSL_CTX_use_cert_and_key(ctx, leaf, pk, (STACK_OF(X509) *)rest, 0) != 1) {
		fail(err, errlen, what, "cannot use this certificate");
		goto out;
	}
	if (cs->def[type] < 0)
		cs->def[type] = cs->n;
	cs->e = realloc(cs->e, (size_t)(cs->n + 1) * sizeof(*cs->e));
	struct certent *e = &cs->e[cs->n++];
	*e = (struct certent){.leaf = leaf, .pk = pk, .chain = rest, .type = type};
	cert_names(e);
	BIO_free(b);
	return 0; /* the entry owns leaf, pk and rest */
out:
	BIO_free(b);
	X509_free(leaf);
	EVP_PKEY_free(pk);
	OPENSSL_sk_pop_free(rest, (OPENSSL_sk_freefunc)X509_free);
	return rc;
}

int wf_tls_cert_digests(X509 *cert, unsigned char der[32], unsigned char spki[32])
{
	unsigned n = 0;
	if (X509_digest(cert, EVP_sha256(), der, &n) != 1 || n != 32)
		return -1;
	X509_PUBKEY *pub = X509_get_X509_PUBKEY(cert);
	int len = pub ? i2d_X509_PUBKEY(pub, NULL) : -1;
	if (len <= 0)
		return -1;
	unsigned char *buf = malloc((size_t)len), *p = buf;
	int r = i2d_X509_PUBKEY(pub, &p) == len && EVP_Digest(buf, (size_t)len, spki, &n, EVP_sha256(), NULL) == 1;
	free(buf);
	return r && n == 32 ? 0 : -1;
}

int wf_tls_set_ca(SSL_CTX *ctx, const char *pem, size_t len, const char *what, char *err, size_t errlen)
{
	ERR_clear_error();
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509_STORE *st = SSL_CTX_get_cert_store(ctx);
	int n = 0;
	X509 *x;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		X509_STORE_add_cert(st, x);
		X509_free(x);
		n++;
	}
	BIO_free(b);
	if (!n)
		return fail(err, errlen, what, "no PEM certificate in trusted_ca");
	ERR_clear_error();
	return 0;
}

int wf_tls_set_versions(SSL_CTX *ctx, int min, int max, char *err, size_t errlen)
{
	if ((min && !SSL_CTX_set_min_proto_version(ctx, min)) || (max && !SSL_CTX_set_max_proto_version(ctx, max)))
		return fail(err, errlen, NULL, "unsupported TLS version");
	return 0;
}

int wf_tls_set_ciphers(SSL_CTX *ctx, const char *list, char *err, size_t errlen)
{
	ERR_clear_error();
	if (!SSL_CTX_set_cipher_list(ctx, list))
		return fail(err, errlen, NULL, "no usable cipher suite");
	return 0;
}

int wf_tls_set_curves(SSL_CTX *ctx, const char *list, char *err, size_t errlen)
{
	ERR_clear_error();
	if (!SSL_CTX_set1_groups_list(ctx, list))
		return fail(err, errlen, NULL, "unknown curve");
	return 0;
}

struct alpn {
	const unsigned char *wire;
	unsigned len;
};

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg)
{
	const struct alpn *a = arg;
	unsigned char *sel;
	if (SSL_select_next_proto(&sel, outlen, a->wire, a->len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static int alpn_idx = -1;

static void alpn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	OPENSSL_free(ptr);
}

void wf_tls_set_alpn_server(SSL_CTX *ctx, const unsigned char *wire, unsigned len)
{
	if (alpn_idx < 0) /* main thread, config time */
		alpn_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, alpn_free);
	struct alpn *a = OPENSSL_zalloc(sizeof(*a));
	a->wire = wire;
	a->len = len;
	SSL_CTX_set_ex_data(ctx, alpn_idx, a);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, a);
}

int wf_tls_set_ticket_key(SSL_CTX *ctx, const unsigned char *key, size_t len, char *err, size_t errlen)
{
	if (len != 80) {
		snprintf(err, errlen, "a session ticket key must be 80 bytes, not %zu", len);
		return -1;
	}
	if (SSL_CTX_set_tlsext_ticket_keys(ctx, (void *)key, 80) != 1)
		return fail(err, errlen, NULL, "cannot set the session ticket key");
	return 0;
}

int wf_tls_each_san(X509 *cert, int (*fn)(void *arg, int type, const char *s, size_t n), void *arg)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	if (!names)
		return 0;
	int n = OPENSSL_sk_num((const OPENSSL_STACK *)names), visited = 0, rc = 0;
	for (int i = 0; i < n && !rc; i++) {
		const GENERAL_NAME *g = OPENSSL_sk_value((const OPENSSL_STACK *)names, i);
		char ip[INET6_ADDRSTRLEN];
		const char *s = NULL;
		size_t len = 0;
		switch (g->type) {
		case GEN_DNS:
		case GEN_URI:
		case GEN_EMAIL:
			s = (const char *)ASN1_STRING_get0_data(g->d.ia5);
			len = (size_t)ASN1_STRING_length(g->d.ia5);
			break;
		case GEN_IPADD: {
			int l = ASN1_STRING_length(g->d.ip);
			const unsigned char *p = ASN1_STRING_get0_data(g->d.ip);
			if ((l == 4 && inet_ntop(AF_INET, p, ip, sizeof(ip))) || (l == 16 && inet_ntop(AF_INET6, p, ip, sizeof(ip)))) {
				s = ip;
				len = strlen(ip);
			}
			break;
		}
		}
		if (!s)
			continue;
		visited++;
		if (fn(arg, g->type, s, len))
			rc = -1;
	}
	GENERAL_NAMES_free(names);
	return rc ? rc : visited;
}

/* ---- client sessions ----------------------------------------------------------------------
 * The slots hang off the SSL_CTX (ex_data), so they live exactly as long as the context and
 * any connection using it, whatever config version made it. */

struct sessions {
	unsigned n;
	SSL_SESSION *s[];
};

static int sess_idx = -1, slot_idx = -1;

static void sessions_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct sessions *ss = ptr;
	if (!ss)
		return;
	for (unsigned i = 0; i < ss->n; i++)
		SSL_SESSION_free(ss->s[i]);
	OPENSSL_free(ss);
}

/* OpenSSL hands over a new session (after the handshake, or a TLS 1.3 ticket later). */
static int new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct sessions *ss = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), sess_idx);
	uintptr_t slot = (uintptr_t)SSL_get_ex_data(ssl, slot_idx);
	if (!ss || !slot || slot > ss->n || !SSL_SESSION_is_resumable(sess))
		return 0;
	SSL_SESSION_free(ss->s[slot - 1]);
	ss->s[slot - 1] = sess;
	return 1; /* the reference is ours now */
}

int wf_tls_client_sessions(SSL_CTX *ctx, unsigned n_slots)
{
	if (sess_idx < 0) { /* main thread, config time */
		sess_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, sessions_free);
		slot_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	}
	struct sessions *ss = OPENSSL_zalloc(sizeof(*ss) + n_slots * sizeof(ss->s[0]));
	if (!ss)
		return -1;
	ss->n = n_slots;
	SSL_CTX_set_ex_data(ctx, sess_idx, ss);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session);
	return 0;
}

void wf_tls_client_session_use(SSL *ssl, unsigned slot)
{
	struct sessions *ss = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), sess_idx);
	if (!ss || slot >= ss->n)
		return;
	SSL_set_ex_data(ssl, slot_idx, (void *)(uintptr_t)(slot + 1));
	if (ss->s[slot])
		SSL_set_session(ssl, ss->s[slot]);
}
