/* The ClientHello reader against real hellos made by OpenSSL's client, and against what is
 * not TLS, truncated or lying about its lengths. */
#include "test.h"

#include "net/client_hello.h"

#include <openssl/ssl.h>

/* A ClientHello as OpenSSL's client sends it, with this SNI (or none) and ALPN (wire). */
static size_t make_hello(uint8_t *out, size_t cap, const char *sni, const unsigned char *alpn, unsigned alpn_len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(ctx);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	SSL_set_bio(ssl, rb, wb);
	if (sni)
		SSL_set_tlsext_host_name(ssl, sni);
	if (alpn)
		SSL_set_alpn_protos(ssl, alpn, alpn_len);
	SSL_connect(ssl); /* writes the hello, then wants to read */
	int n = BIO_read(wb, out, (int)cap);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return n > 0 ? (size_t)n : 0;
}

TEST(sni_and_alpn)
{
	uint8_t buf[4096];
	static const unsigned char alpn[] = "\x02h2\x08http/1.1";
	size_t n = make_hello(buf, sizeof(buf), "API.Example.com", alpn, sizeof(alpn) - 1);
	CHECK(n > 100);
	struct wf_client_hello h;
	CHECK_EQ(wf_client_hello_parse(buf, n, &h), 1);
	CHECK_STR(h.sni, h.sni_len, "api.example.com");
	CHECK_STR((const char *)h.alpn, h.alpn_len, "\x02h2\x08http/1.1");
}

TEST(no_sni)
{
	uint8_t buf[4096];
	size_t n = make_hello(buf, sizeof(buf), NULL, NULL, 0);
	struct wf_client_hello h;
	CHECK_EQ(wf_client_hello_parse(buf, n, &h), 1);
	CHECK_EQ(h.sni_len, 0);
	CHECK_EQ(h.alpn_len, 0);
}

TEST(every_prefix_wants_more)
{
	uint8_t buf[4096];
	size_t n = make_hello(buf, sizeof(buf), "a.example.com", NULL, 0);
	struct wf_client_hello h;
	for (size_t k = 0; k < n; k++)
		CHECK_EQ(wf_client_hello_parse(buf, k, &h), 0);
}

TEST(not_tls)
{
	struct wf_client_hello h;
	CHECK_EQ(wf_client_hello_parse((const uint8_t *)"GET / HTTP/1.1\r\n", 16, &h), -1);
	CHECK_EQ(wf_client_hello_parse((const uint8_t *)"\x16\x02", 2, &h), -1);
	/* a handshake record that is not a ClientHello (a ServerHello) */
	CHECK_EQ(wf_client_hello_parse((const uint8_t *)"\x16\x03\x03\x00\x04\x02\x00\x00\x00", 9, &h), -1);
}

TEST(lying_lengths_stay_in_bounds)
{
	uint8_t buf[4096];
	size_t n = make_hello(buf, sizeof(buf), "x.example.com", (const unsigned char *)"\x02h2", 3);
	struct wf_client_hello h;
	/* corrupt each byte after the record header in turn: never a crash (ASan), never more
	 * than 1 / -1 for a complete record */
	for (size_t i = 5; i < n; i++) {
		uint8_t save = buf[i];
		buf[i] = 0xff;
		int r = wf_client_hello_parse(buf, n, &h);
		CHECK(r == 1 || r == -1);
		CHECK(h.sni_len < sizeof(h.sni));
		buf[i] = save;
	}
}

TEST_MAIN("client_hello", T(sni_and_alpn), T(no_sni), T(every_prefix_wants_more), T(not_tls),
          T(lying_lengths_stay_in_bounds))
