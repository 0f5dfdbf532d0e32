#include "net/tls.h"

#include <arpa/inet.h>
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
	/* override=0: a second certificate of the same key type is refused, not silently replacing */
	if (SSL_CTX_use_cert_and_key(ctx, leaf, pk, (STACK_OF(X509) *)rest, 0) != 1) {
		fail(err, errlen, what, "cannot use this certificate (one per key type, RSA and ECDSA, is supported)");
		goto out;
	}
	rc = 0;
out:
	BIO_free(b);
	X509_free(leaf);
	EVP_PKEY_free(pk);
	OPENSSL_sk_pop_free(rest, (OPENSSL_sk_freefunc)X509_free);
	return rc;
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
