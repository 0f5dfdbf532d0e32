/* OpenSSL contexts: what the TLS transport (proxy/tls.c) and the config compiler need from
 * OpenSSL, with errors for people (the file and OpenSSL's reason). Contexts are built on the
 * main thread and then shared read-only by the workers (OpenSSL's SSL_CTX is thread-safe for
 * SSL_new). Every function returning int: 0 on success, <0 with err filled. */
#ifndef WF_NET_TLS_H
#define WF_NET_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "net/ssl_api.h"

/* A new context for a server (server=1) or a client, TLS 1.2..1.3 by default, no
 * renegotiation, partial writes allowed. NULL with err filled. */
SSL_CTX *wf_tls_ctx_new(int server, char *err, size_t errlen);
/* Add a certificate chain + private key (PEM), RSA or ECDSA; `what` names them in errors.
 * A server may have several: a handshake gets, of the certificates whose DNS SANs (or CN,
 * without SANs) match the client's SNI exactly, else by a one-label wildcard, the first of
 * each key type; OpenSSL then serves the one the client's signature algorithms accept.
 * Without SNI: the first of each key type; with an SNI no certificate matches: the first
 * certificate (Envoy's default selector). */
int wf_tls_add_cert(SSL_CTX *ctx, const char *chain, size_t chain_len, const char *key, size_t key_len,
                    const char *what, char *err, size_t errlen);
/* Server: require_sni fails handshakes without an SNI, or with one no certificate matches;
 * full_scan: an SNI no certificate matches gets the first of each key type, as without SNI. */
void wf_tls_set_sni_policy(SSL_CTX *ctx, int require_sni, int full_scan);
/* SHA-256 of the certificate's DER and of its SubjectPublicKeyInfo's DER (Envoy's
 * verify_certificate_hash and verify_certificate_spki). 0, or -1. */
int wf_tls_cert_digests(X509 *cert, unsigned char der[32], unsigned char spki[32]);
/* Trust the CA certificates in `pem` for verifying the peer. */
int wf_tls_set_ca(SSL_CTX *ctx, const char *pem, size_t len, const char *what, char *err, size_t errlen);
/* Protocol range, as TLS1_2_VERSION..TLS1_3_VERSION (0: OpenSSL's lowest / highest). */
int wf_tls_set_versions(SSL_CTX *ctx, int min, int max, char *err, size_t errlen);
/* TLS <= 1.2 cipher suites, ':'-separated OpenSSL names. */
int wf_tls_set_ciphers(SSL_CTX *ctx, const char *list, char *err, size_t errlen);
/* Key exchange groups, ':'-separated ("X25519:P-256"). */
int wf_tls_set_curves(SSL_CTX *ctx, const char *list, char *err, size_t errlen);
/* Server: choose the first of the client's ALPN protocols that `wire` (length-prefixed,
 * owned by the caller and alive as long as ctx) lists; no overlap is no ALPN (as Envoy). */
void wf_tls_set_alpn_server(SSL_CTX *ctx, const unsigned char *wire, unsigned len);
/* The 80 bytes of an Envoy session ticket key (name 16, HMAC 32, AES 32). */
int wf_tls_set_ticket_key(SSL_CTX *ctx, const unsigned char *key, size_t len, char *err, size_t errlen);
/* Client session resumption: the context keeps the newest session (TLS 1.2 session or
 * TLS 1.3 ticket) per slot (one slot per worker: no locking), for the next connection of
 * that slot to offer. Config time, before any SSL of ctx exists. 0, or -1 (no memory). */
int wf_tls_client_sessions(SSL_CTX *ctx, unsigned n_slots);
/* Bind ssl to a slot: it offers the slot's session, and the sessions it gets go there. */
void wf_tls_client_session_use(SSL *ssl, unsigned slot);

/* Drain OpenSSL's error queue of this thread into buf ("reason; reason"); returns buf. */
const char *wf_tls_errstr(char *buf, size_t len);

/* Subject alternative names of a certificate, one at a time: type is GEN_DNS, GEN_URI,
 * GEN_EMAIL or GEN_IPADD (text form). Returns how many names were visited; stops early when
 * fn returns nonzero (and returns -1 then). */
int wf_tls_each_san(X509 *cert, int (*fn)(void *arg, int type, const char *s, size_t n), void *arg);

#endif
