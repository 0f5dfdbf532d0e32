/* The TLS transport of a wf_sio (envoy.transport_sockets.tls): an ops table that sio hands
 * every read and write to. The handshake runs inside those calls on the worker's event loop
 * and never blocks: SSL_ERROR_WANT_READ / WANT_WRITE become epoll interest. */
#ifndef WF_PROXY_TLS_H
#define WF_PROXY_TLS_H

#include "proxy/config.h"
#include "proxy/sio.h"

struct x509_store_ctx_st;

/* Make `s` (its fd set) a TLS connection: the server side of a listener's context, or the
 * client side of a cluster's (with its SNI). 0, or -ENOMEM. The transport is freed by
 * wf_sio_close. */
int wf_tls_attach(struct wf_sio *s, const struct wf_tls_cfg *cfg);
static inline int wf_sio_is_tls(const struct wf_sio *s) { return s->xprt != NULL; }
/* Whether the handshake is complete. */
int wf_tls_established(const struct wf_sio *s);
/* Whether the handshake settled on this ALPN protocol ("h2"). */
int wf_tls_alpn_is(const struct wf_sio *s, const char *proto);
/* Why the handshake failed, for logs (after an sio call returned <0, before wf_sio_close). */
const char *wf_tls_failure(const struct wf_sio *s);
/* OpenSSL's certificate verification for contexts built from the wf_tls_cfg `cfg`: the chain
 * (when a trusted CA is configured), then match_typed_subject_alt_names, then the hash and
 * SPKI pins, on the peer's certificate. 1 accepted, 0 refused. */
int wf_tls_verify_peer(struct x509_store_ctx_st *x, void *cfg);

#endif
