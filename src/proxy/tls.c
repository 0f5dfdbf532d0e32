/* The TLS transport: OpenSSL on the sio's fd (a socket BIO), with the sio's own buffers.
 *
 * Reads decrypt into s->rb. Writes are appended to s->wb and leave through SSL_write (partial
 * writes, moving buffer allowed), so what OpenSSL did not take stays queued exactly like the
 * plain transport's leftovers. Two things epoll cannot see are handled here:
 *   - OpenSSL may need to write while the owner reads (handshake, session tickets): the
 *     WANT_WRITE is remembered and adds EPOLLOUT until a flush retries it;
 *   - decrypted bytes left inside OpenSSL when s->rb was full (SSL_pending) raise no
 *     event: while the owner wants to read, a deferred call replays EPOLLIN for them. */
#include "proxy/tls.h"

#include "core/log.h"
#include "net/tls.h"
#include "proxy/stats.h"
#include "proxy/worker.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/ssl_api.h"

struct tconn {
	SSL *ssl;
	const struct wf_tls_cfg *cfg;
	struct wf_sio *s;
	struct wf_loop *loop;
	struct wf_defer again;        /* replays EPOLLIN for bytes OpenSSL holds */
	uint8_t again_armed;
	uint8_t closed;               /* the sio let go while `again` was armed: free there */
	uint8_t want_out;             /* OpenSSL must write before it can go on */
	uint8_t done;                 /* handshake complete (counted) */
	uint8_t failed_san;           /* the verify callback refused the peer's SANs */
	uint8_t failed_pin;           /* ... or its hash and SPKI pins */
	uint8_t shut;                 /* close_notify sent */
	char why[160];                /* why the handshake failed */
};

static void handshake_done(struct tconn *t)
{
	if (t->done || !SSL_is_init_finished(t->ssl))
		return;
	t->done = 1;
	const struct wf_tls_cfg *cfg = t->cfg;
	wf_stat_inc(cfg->st_handshake);
	if (SSL_session_reused(t->ssl))
		wf_stat_inc(cfg->st_session_reused);
	if (cfg->server) {
		X509 *peer = SSL_get0_peer_certificate(t->ssl);
		if (!peer)
			wf_stat_inc(cfg->st_no_certificate);
	}
}

/* A fatal SSL error: count why the handshake failed, and say it at debug level. */
static int handshake_failed(struct tconn *t)
{
	const struct wf_tls_cfg *cfg = t->cfg;
	char why[256];
	wf_tls_errstr(why, sizeof(why));
	long vr = SSL_get_verify_result(t->ssl);
	if (t->failed_san)
		snprintf(t->why, sizeof(t->why), "peer certificate SAN mismatch");
	else if (t->failed_pin)
		snprintf(t->why, sizeof(t->why), "peer certificate hash/SPKI mismatch");
	else if (vr != X509_V_OK)
		snprintf(t->why, sizeof(t->why), "certificate verify failed: %s", X509_verify_cert_error_string(vr));
	else
		snprintf(t->why, sizeof(t->why), "%.150s", why);
	if (t->done) {
		wf_debug("tls: connection error: %s", why);
	} else if (t->failed_san) {
		wf_stat_inc(cfg->st_fail_verify_san);
	} else if (t->failed_pin) {
		wf_stat_inc(cfg->st_fail_verify_cert_hash);
	} else if (vr != X509_V_OK) {
		wf_stat_inc(cfg->st_fail_verify_error);
	} else if (cfg->server && cfg->require_cert && !SSL_get0_peer_certificate(t->ssl) &&
	           strstr(why, "certificate")) {
		wf_stat_inc(cfg->st_no_certificate);
	} else {
		wf_stat_inc(cfg->st_connection_error);
	}
	if (!t->done)
		wf_debug("tls: handshake failed: %s", why);
	t->s->err = 1;
	return -EPROTO;
}

static int tls_read(struct wf_pool *pool, struct wf_sio *s, uint32_t max)
{
	struct tconn *t = s->xctx;
	int total = 0;
	for (;;) {
		if (wf_buf_len(&s->rb) >= max)
			return total;
		int room = wf_buf_reserve(&s->rb, pool, 4096, max);
		if (room <= 0)
			return room == -ENOBUFS || total ? total : room;
		ERR_clear_error();
		int n = SSL_read(t->ssl, s->rb.p + s->rb.w, room);
		if (n > 0) {
			s->rb.w += (uint32_t)n;
			total += n;
			handshake_done(t);
			continue;
		}
		int e = SSL_get_error(t->ssl, n);
		int sys = errno;
		handshake_done(t);
		if (!wf_buf_len(&s->rb))
			wf_buf_release(&s->rb, pool);
		switch (e) {
		case SSL_ERROR_WANT_READ:
			return total;
		case SSL_ERROR_WANT_WRITE:
			t->want_out = 1;
			return total;
		case SSL_ERROR_ZERO_RETURN:
			break;
		case SSL_ERROR_SYSCALL:
			if (n < 0 && (sys == EAGAIN || sys == EINTR))
				return total;
			if (!t->done) {
				wf_stat_inc(t->cfg->st_connection_error);
				snprintf(t->why, sizeof(t->why), "connection closed during the handshake");
			}
			break;
		default:
			if (total)
				return total; /* the error comes again at the next call */
			return handshake_failed(t);
		}
		/* the peer closed (close_notify, EOF or reset) */
		if (total)
			return total;
		s->eof = 1;
		return -1;
	}
}

static int tls_flush(struct wf_loop *loop, struct wf_pool *pool, struct wf_sio *s)
{
	struct tconn *t = s->xctx;
	if (s->err)
		return -EPIPE;
	t->want_out = 0;
	if (!t->done) {
		ERR_clear_error();
		int r = SSL_do_handshake(t->ssl);
		if (r <= 0) {
			int e = SSL_get_error(t->ssl, r);
			if (e == SSL_ERROR_WANT_WRITE)
				t->want_out = 1;
			else if (e == SSL_ERROR_SYSCALL && errno != EAGAIN && errno != EINTR) {
				wf_stat_inc(t->cfg->st_connection_error);
				snprintf(t->why, sizeof(t->why), "connection closed during the handshake");
				s->err = 1;
				return -EPIPE;
			} else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_SYSCALL)
				return handshake_failed(t);
		}
		handshake_done(t);
	}
	while (t->done && wf_buf_len(&s->wb)) {
		ERR_clear_error();
		int n = SSL_write(t->ssl, wf_buf_data(&s->wb), (int)wf_buf_len(&s->wb));
		if (n > 0) {
			wf_buf_consume(&s->wb, pool, (uint32_t)n);
			continue;
		}
		int e = SSL_get_error(t->ssl, n);
		if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
			break;
		if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EINTR))
			break;
		s->err = 1;
		return e == SSL_ERROR_SSL ? handshake_failed(t) : -EPIPE;
	}
	wf_sio_update(loop, s);
	return wf_buf_len(&s->wb) ? 0 : 1;
}

static int tls_writev(struct wf_loop *loop, struct wf_pool *pool, struct wf_sio *s, const struct iovec *iov, int n)
{
	if (s->err)
		return -EPIPE;
	for (int i = 0; i < n; i++)
		if (wf_buf_append(&s->wb, pool, iov[i].iov_base, iov[i].iov_len) < 0)
			return -ENOMEM;
	if (s->cork && wf_buf_len(&s->wb) <= WF_SIO_CORK_MAX)
		return 0;
	int r = tls_flush(loop, pool, s);
	return r < 0 ? r : 0;
}

static void again(struct wf_defer *d)
{
	struct tconn *t = (struct tconn *)((char *)d - offsetof(struct tconn, again));
	t->again_armed = 0;
	if (t->closed) {
		free(t);
		return;
	}
	struct wf_sio *s = t->s;
	if (SSL_pending(t->ssl) > 0 && (s->io.events & EPOLLIN))
		s->io.cb(t->loop, &s->io, EPOLLIN);
}

static uint32_t tls_interest(struct wf_loop *loop, struct wf_sio *s, uint32_t ev)
{
	struct tconn *t = s->xctx;
	t->loop = loop;
	if (t->want_out || (!t->done && wf_buf_len(&s->wb)))
		ev |= EPOLLOUT;
	if (!t->done && !(ev & EPOLLIN))
		ev |= EPOLLIN; /* the handshake goes on whatever the owner waits for */
	if ((ev & EPOLLIN) && !t->again_armed && SSL_pending(t->ssl) > 0) {
		t->again_armed = 1;
		t->again.cb = again;
		wf_loop_defer(loop, &t->again);
	}
	return ev;
}

static void tls_shutdown(struct wf_sio *s)
{
	struct tconn *t = s->xctx;
	if (t->done && !s->err && !t->shut) {
		ERR_clear_error();
		SSL_shutdown(t->ssl);
		t->shut = 1;
	}
}

static void tls_close(struct wf_sio *s)
{
	struct tconn *t = s->xctx;
	if (t->done && !s->err && !t->shut) {
		ERR_clear_error();
		SSL_shutdown(t->ssl); /* close_notify, if the socket takes it; never waits */
	}
	SSL_free(t->ssl);
	t->ssl = NULL;
	if (t->again_armed)
		t->closed = 1;
	else
		free(t);
}

static const struct wf_xprt_ops tls_ops = {
	.read = tls_read,
	.writev = tls_writev,
	.flush = tls_flush,
	.interest = tls_interest,
	.shutdown = tls_shutdown,
	.close = tls_close,
};

int wf_tls_attach(struct wf_sio *s, const struct wf_tls_cfg *cfg)
{
	struct tconn *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->ssl = SSL_new(cfg->ctx);
	if (!t->ssl) {
		free(t);
		return -ENOMEM;
	}
	SSL_set_fd(t->ssl, s->io.fd);
	SSL_set_app_data(t->ssl, t);
	if (cfg->server) {
		SSL_set_accept_state(t->ssl);
	} else {
		SSL_set_connect_state(t->ssl);
		if (cfg->sni)
			SSL_set_tlsext_host_name(t->ssl, cfg->sni);
		if (wf_self)
			wf_tls_client_session_use(t->ssl, wf_self->id);
	}
	t->cfg = cfg;
	t->s = s;
	s->xprt = &tls_ops;
	s->xctx = t;
	return 0;
}

int wf_tls_established(const struct wf_sio *s)
{
	const struct tconn *t = s->xctx;
	return t && t->done;
}

int wf_tls_alpn_is(const struct wf_sio *s, const char *proto)
{
	const struct tconn *t = s->xctx;
	const unsigned char *p = NULL;
	unsigned n = 0;
	if (!t || !t->done)
		return 0;
	SSL_get0_alpn_selected(t->ssl, &p, &n);
	return p && n == strlen(proto) && !memcmp(p, proto, n);
}

const char *wf_tls_failure(const struct wf_sio *s)
{
	const struct tconn *t = s->xctx;
	return t && t->why[0] ? t->why : "connection closed during the handshake";
}

struct san_check {
	const struct wf_tls_cfg *cfg;
};

static int san_one(void *arg, int type, const char *v, size_t n)
{
	const struct san_check *c = arg;
	for (uint32_t i = 0; i < c->cfg->n_san; i++)
		if (c->cfg->san[i].type == type && wf_strmatch(&c->cfg->san[i].sm, v, n))
			return 1;
	return 0;
}

static int pinned(const struct wf_tls_cfg *cfg, X509 *cert)
{
	unsigned char der[32], spki[32];
	if (wf_tls_cert_digests(cert, der, spki) < 0)
		return 0;
	for (uint32_t i = 0; i < cfg->n_pin_cert; i++)
		if (!memcmp(cfg->pin_cert[i], der, 32))
			return 1;
	for (uint32_t i = 0; i < cfg->n_pin_spki; i++)
		if (!memcmp(cfg->pin_spki[i], spki, 32))
			return 1;
	return 0;
}

int wf_tls_verify_peer(X509_STORE_CTX *x, void *arg)
{
	const struct wf_tls_cfg *cfg = arg;
	if (cfg->verify_chain && X509_verify_cert(x) <= 0)
		return 0;
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tconn *t = ssl ? SSL_get_app_data(ssl) : NULL;
	X509 *leaf = X509_STORE_CTX_get0_cert(x);
	if (!t || !leaf)
		return 0;
	if (cfg->n_san) {
		struct san_check c = {cfg};
		if (wf_tls_each_san(leaf, san_one, &c) >= 0) {
			t->failed_san = 1;
			X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
			return 0;
		}
	}
	if ((cfg->n_pin_cert || cfg->n_pin_spki) && !pinned(cfg, leaf)) {
		t->failed_pin = 1;
		X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	return 1;
}
