/* Unit tests for the strict HTTP/1.x parser and chunked decoder (src/http/h1.c). */
#include "http/h1.h"
#include "test.h"

#include <stdlib.h>

static struct wf_hdr hdrs[128];
static const struct wf_h1_limits lim = {.max_head_bytes = 60 * 1024, .max_headers = 100};

static int parse_req_lim(const char *s, size_t n, const struct wf_h1_limits *l,
                         struct wf_h1_req *r)
{
	r->headers = hdrs;
	return wf_h1_parse_request(s, n, l, r);
}

static int parse_resp_lim(const char *s, size_t n, const struct wf_h1_limits *l,
                          struct wf_h1_resp *r)
{
	r->headers = hdrs;
	return wf_h1_parse_response(s, n, l, r);
}

/* String literals, so that embedded NULs count. */
#define REQ(lit, r) parse_req_lim(lit, sizeof(lit) - 1, &lim, r)
#define RESP(lit, r) parse_resp_lim(lit, sizeof(lit) - 1, &lim, r)
#define LEN(lit) ((int)(sizeof(lit) - 1))

/* An output array as a plain pointer, which CHECK_STR may test for NULL without a warning. */
static const char *OUT(const char *a)
{
	return a;
}

/* A refused request: the status, and a reason that says something. */
#define CHECK_REFUSED(lit, status)                                                         \
	do {                                                                                   \
		struct wf_h1_req r_;                                                               \
		CHECK_EQ(REQ(lit, &r_), status);                                                   \
		CHECK(r_.err != NULL && r_.err[0] != '\0');                                        \
	} while (0)

#define CHECK_RESP_REFUSED(lit)                                                            \
	do {                                                                                   \
		struct wf_h1_resp r_;                                                              \
		CHECK_EQ(RESP(lit, &r_), -502);                                                    \
		CHECK(r_.err != NULL && r_.err[0] != '\0');                                        \
	} while (0)

/* ---- requests: accepted ---- */

TEST(get_basic)
{
	static const char s[] = "GET /index.html?q=1 HTTP/1.1\r\n"
	                        "Host: example.com\r\n"
	                        "User-Agent:   curl/8.0 \t\r\n"
	                        "Accept: */*\r\n"
	                        "\r\n";
	struct wf_h1_req r;
	CHECK_EQ(REQ(s, &r), LEN(s));
	CHECK_STR(r.method, r.method_len, "GET");
	CHECK_STR(r.target, r.target_len, "/index.html?q=1");
	CHECK_STR(r.path, r.path_len, "/index.html?q=1");
	CHECK_STR(r.host, r.host_len, "example.com");
	CHECK_EQ(r.minor, 1);
	CHECK_EQ(r.form, WF_H1_ORIGIN);
	CHECK_EQ(r.content_length, -1);
	CHECK_EQ(r.chunked, 0);
	CHECK_EQ(r.n_headers, 3);
	CHECK_STR(r.headers[1].name, r.headers[1].name_len, "User-Agent");
	CHECK_STR(r.headers[1].value, r.headers[1].value_len, "curl/8.0");
	CHECK_STR(r.headers[2].value, r.headers[2].value_len, "*/*");
	CHECK(r.err == NULL);
	/* zero-copy: pointers are into the buffer */
	CHECK(r.method == s && r.host > s && r.host < s + sizeof(s));
}

TEST(get_http10_without_host)
{
	struct wf_h1_req r;
	CHECK_EQ(REQ("GET / HTTP/1.0\r\n\r\n", &r), 18);
	CHECK_EQ(r.minor, 0);
	CHECK(r.host == NULL);
	CHECK_EQ(r.n_headers, 0);
}

TEST(empty_value_and_empty_host)
{
	struct wf_h1_req r;
	static const char s[] = "GET / HTTP/1.1\r\nHost:\r\nX-Empty: \t \r\n\r\n";
	CHECK_EQ(REQ(s, &r), LEN(s));
	CHECK_EQ(r.host_len, 0);
	CHECK_EQ(r.headers[1].value_len, 0);
}

TEST(values_keep_tab_and_obs_text)
{
	struct wf_h1_req r;
	static const char s[] = "GET / HTTP/1.1\r\nHost: a\r\nX-A: one\ttwo \xc3\xa9\r\n\r\n";
	CHECK_EQ(REQ(s, &r), LEN(s));
	CHECK_STR(r.headers[1].value, r.headers[1].value_len, "one\ttwo \xc3\xa9");
}

TEST(post_content_length)
{
	static const char s[] = "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
	struct wf_h1_req r;
	int n = REQ(s, &r);
	CHECK_EQ(n, LEN(s) - 5);
	CHECK_EQ(r.content_length, 5);
	CHECK(memcmp(s + n, "hello", 5) == 0);
}

TEST(content_length_zero_and_leading_zeros)
{
	struct wf_h1_req r;
	CHECK(REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &r) > 0);
	CHECK_EQ(r.content_length, 0);
	CHECK(REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n", &r) > 0);
	CHECK_EQ(r.content_length, 7);
	CHECK(REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4611686018427387904\r\n\r\n", &r) > 0);
	CHECK_EQ(r.content_length, (int64_t)1 << 62);
}

TEST(post_chunked)
{
	static const char s[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
	struct wf_h1_req r;
	CHECK_EQ(REQ(s, &r), LEN(s));
	CHECK_EQ(r.chunked, 1);
	CHECK_EQ(r.content_length, -1);
}

TEST(chunked_case_insensitive)
{
	struct wf_h1_req r;
	CHECK(REQ("POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding:  ChUnKeD \r\n\r\n", &r) > 0);
	CHECK_EQ(r.chunked, 1);
}

TEST(pipelined_two_requests)
{
	static const char s[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
	                        "GET /b HTTP/1.1\r\nHost: b\r\n\r\n";
	struct wf_h1_req r;
	int n = REQ(s, &r);
	CHECK_EQ(n, LEN(s) / 2);
	CHECK_STR(r.path, r.path_len, "/a");
	int m = parse_req_lim(s + n, sizeof(s) - 1 - (size_t)n, &lim, &r);
	CHECK_EQ(m, LEN(s) / 2);
	CHECK_STR(r.path, r.path_len, "/b");
	CHECK_STR(r.host, r.host_len, "b");
}

TEST(every_prefix_is_incomplete)
{
	static const char s[] = "\r\nPOST http://example.com:8080/x?y HTTP/1.1\r\n"
	                        "Host: EXAMPLE.com:8080\r\n"
	                        "Connection: keep-alive, Upgrade\r\n"
	                        "Expect: 100-continue\r\n"
	                        "Content-Length: 12\r\n"
	                        "X-Tab:\tv\t\r\n"
	                        "\r\n";
	struct wf_h1_req r;
	for (size_t i = 0; i < sizeof(s) - 1; i++) {
		/* a heap copy of exactly i bytes, so ASan catches a read past len */
		char *b = malloc(i + 1);
		memcpy(b, s, i);
		int rc = parse_req_lim(b, i, &lim, &r);
		free(b);
		CHECK_EQ(rc, 0);
	}
	CHECK_EQ(REQ(s, &r), LEN(s));
	CHECK_EQ(r.form, WF_H1_ABSOLUTE);
	CHECK_EQ(r.content_length, 12);
	CHECK_EQ(r.conn_keep_alive, 1);
	CHECK_EQ(r.conn_upgrade, 1);
	CHECK_EQ(r.expect_continue, 1);
}

TEST(leading_empty_lines)
{
	struct wf_h1_req r;
	static const char s[] = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
	CHECK_EQ(REQ(s, &r), LEN(s));
	CHECK_STR(r.method, r.method_len, "GET");
	CHECK_EQ(REQ("\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", &r) > 0, 1);
	CHECK_REFUSED("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", -400);
}

TEST(connection_tokens)
{
	struct wf_h1_req r;
	CHECK(REQ("GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive ,, UPGRADE\r\n"
	          "connection: foo, close\r\n\r\n", &r) > 0);
	CHECK_EQ(r.conn_keep_alive, 1);
	CHECK_EQ(r.conn_upgrade, 1);
	CHECK_EQ(r.conn_close, 1);
	CHECK(REQ("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", &r) > 0);
	CHECK_EQ(r.conn_close, 0);
}

TEST(connection_bad_token)
{
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\nConnection: close close\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\nConnection: \"close\"\r\n\r\n", -400);
}

TEST(expect_continue)
{
	struct wf_h1_req r;
	CHECK(REQ("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
	          &r) > 0);
	CHECK_EQ(r.expect_continue, 1);
	CHECK(REQ("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", &r) > 0);
	CHECK_EQ(r.expect_continue, 0);
	/* RFC 9110 §10.1.1: ignored from an HTTP/1.0 client */
	CHECK(REQ("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", &r) > 0);
	CHECK_EQ(r.expect_continue, 0);
}

TEST(grpc_content_type)
{
	struct wf_h1_req r;
	CHECK(REQ("POST /pkg.Svc/M HTTP/1.1\r\nHost: a\r\nContent-Type: application/grpc+proto\r\n\r\n", &r) > 0);
	CHECK_EQ(r.grpc, 1);
	CHECK(REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Type: application/grpc-web\r\n\r\n", &r) > 0);
	CHECK_EQ(r.grpc, 0);
	CHECK(REQ("POST / HTTP/1.1\r\nHost: a\r\n\r\n", &r) > 0);
	CHECK_EQ(r.grpc, 0);
}

TEST(absolute_form)
{
	static const char s[] = "GET hTTp://Example.com:8080/a/b?c=d HTTP/1.1\r\nHost: example.COM:8080\r\n\r\n";
	struct wf_h1_req r;
	CHECK_EQ(REQ(s, &r), LEN(s));
	CHECK_EQ(r.form, WF_H1_ABSOLUTE);
	CHECK_STR(r.host, r.host_len, "Example.com:8080");
	CHECK(r.host > r.target && r.host < r.target + r.target_len);
	CHECK_STR(r.path, r.path_len, "/a/b?c=d");
}

TEST(absolute_form_without_path)
{
	struct wf_h1_req r;
	CHECK(REQ("GET https://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", &r) > 0);
	CHECK_STR(r.path, r.path_len, "/");
	CHECK_STR(r.host, r.host_len, "example.com");
	/* HTTP/1.0 needs no Host: the authority is the host */
	CHECK(REQ("GET http://[::1]:8080/x HTTP/1.0\r\n\r\n", &r) > 0);
	CHECK_STR(r.host, r.host_len, "[::1]:8080");
}

TEST(absolute_form_host_differs)
{
	CHECK_REFUSED("GET http://a.com/ HTTP/1.1\r\nHost: b.com\r\n\r\n", -400);
	CHECK_REFUSED("GET http://a.com/ HTTP/1.1\r\nHost: a.com:80\r\n\r\n", -400);
	CHECK_REFUSED("GET http://a.com/ HTTP/1.1\r\nHost:\r\n\r\n", -400);
	CHECK_REFUSED("GET http://a.com/ HTTP/1.1\r\n\r\n", -400);
}

TEST(absolute_form_malformed)
{
	CHECK_REFUSED("GET ftp://a.com/ HTTP/1.1\r\nHost: a.com\r\n\r\n", -400);
	CHECK_REFUSED("GET http:/a.com/ HTTP/1.1\r\nHost: a.com\r\n\r\n", -400);
	CHECK_REFUSED("GET http:///x HTTP/1.1\r\nHost: \r\n\r\n", -400);
	CHECK_REFUSED("GET http://u:p@a.com/ HTTP/1.1\r\nHost: a.com\r\n\r\n", -400);
	CHECK_REFUSED("GET http://a.com?x HTTP/1.1\r\nHost: a.com\r\n\r\n", -400);
	CHECK_REFUSED("GET a.com/x HTTP/1.1\r\nHost: a.com\r\n\r\n", -400);
}

TEST(connect_authority_form)
{
	struct wf_h1_req r;
	CHECK(REQ("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", &r) > 0);
	CHECK_EQ(r.form, WF_H1_AUTHORITY);
	CHECK_STR(r.host, r.host_len, "example.com:443");
	CHECK_EQ(r.path_len, 0);
	CHECK_REFUSED("CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", -400);
	CHECK_REFUSED("CONNECT / HTTP/1.1\r\nHost: example.com\r\n\r\n", -400);
	CHECK_REFUSED("CONNECT u@example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n", -400);
}

TEST(options_asterisk)
{
	struct wf_h1_req r;
	CHECK(REQ("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", &r) > 0);
	CHECK_EQ(r.form, WF_H1_ASTERISK);
	CHECK_STR(r.path, r.path_len, "*");
	CHECK_STR(r.host, r.host_len, "a");
	CHECK_REFUSED("GET * HTTP/1.1\r\nHost: a\r\n\r\n", -400);
}

/* ---- requests: framing refusals ---- */

TEST(refuse_cl_and_te)
{
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
	              "Transfer-Encoding: chunked\r\n\r\n", -400);
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	              "Content-Length: 5\r\n\r\n", -400);
}

TEST(refuse_cl_duplicate_equal)
{
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
	              -400);
}

TEST(refuse_cl_differing)
{
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n",
	              -400);
}

TEST(refuse_cl_list)
{
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", -400);
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5\r\n\r\n", -400);
}

TEST(refuse_cl_sign)
{
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", -400);
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", -400);
}

TEST(refuse_cl_inner_space)
{
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", -400);
}

TEST(refuse_cl_empty)
{
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", -400);
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  \r\n\r\n", -400);
}

TEST(refuse_cl_not_digits)
{
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", -400);
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\n", -400);
}

TEST(refuse_cl_overflow)
{
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4611686018427387905\r\n\r\n",
	              -400);
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
	              -400);
}

TEST(refuse_te_gzip_chunked)
{
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", -400);
}

TEST(refuse_te_chunked_gzip)
{
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", -400);
}

TEST(refuse_te_two_fields)
{
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	              "Transfer-Encoding: chunked\r\n\r\n", -400);
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
	              "Transfer-Encoding: chunked\r\n\r\n", -400);
}

TEST(refuse_te_other)
{
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", -400);
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", -400);
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", -400);
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", -400);
	CHECK_REFUSED("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", -400);
}

TEST(refuse_te_http10)
{
	CHECK_REFUSED("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -400);
}

/* ---- requests: syntax refusals ---- */

TEST(refuse_space_before_colon)
{
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", -400);
}

TEST(refuse_obs_fold)
{
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", -400);
	/* whitespace right after the request line */
	CHECK_REFUSED("GET / HTTP/1.1\r\n Host: a\r\n\r\n", -400);
}

TEST(refuse_bare_lf_request_line)
{
	CHECK_REFUSED("GET / HTTP/1.1\nHost: a\r\n\r\n", -400);
}

TEST(refuse_bare_lf_header_line)
{
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", -400);
}

TEST(refuse_bare_lf_end_of_head)
{
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\n\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\n\n", -400);
}

TEST(refuse_bare_cr)
{
	CHECK_REFUSED("GET / HTTP/1.1\rHost: a\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\nX: b\rc\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\n\rX", -400);
}

TEST(refuse_nul_in_value)
{
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\nX: b\0c\r\n\r\n", -400);
}

TEST(refuse_ctl_in_value)
{
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\nX: b\x01" "c\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\nX: b\x7f" "c\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\nX: b\x1b" "c\r\n\r\n", -400);
}

TEST(refuse_ctl_in_name)
{
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\nX\0Y: b\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\nX\x01Y: b\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\n\x7fX: b\r\n\r\n", -400);
}

TEST(refuse_empty_name)
{
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", -400);
}

TEST(refuse_non_token_name)
{
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\nX(Y): b\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\nX\"Y: b\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: b\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", -400);
}

TEST(refuse_target_bytes)
{
	CHECK_REFUSED("GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("GET /a\x01" "b HTTP/1.1\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("GET /a\x7f" "b HTTP/1.1\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", -400);
}

TEST(refuse_non_ascii_target)
{
	CHECK_REFUSED("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n", -400);
}

TEST(refuse_missing_host)
{
	CHECK_REFUSED("GET / HTTP/1.1\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nX-Host: a\r\n\r\n", -400);
}

TEST(refuse_two_hosts)
{
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", -400);
}

TEST(refuse_bad_host)
{
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\tb\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a:\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: :80\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1\r\nHost: a\xc3\xa9\r\n\r\n", -400);
}

TEST(good_hosts)
{
	struct wf_h1_req r;
	CHECK(REQ("GET / HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n\r\n", &r) > 0);
	CHECK(REQ("GET / HTTP/1.1\r\nHost: 10.0.0.1:80\r\n\r\n", &r) > 0);
	CHECK(REQ("GET / HTTP/1.1\r\nHost: my-svc.ns.svc.cluster.local\r\n\r\n", &r) > 0);
	CHECK(REQ("GET / HTTP/1.1\r\nHost: a%2Db:65535\r\n\r\n", &r) > 0);
}

TEST(refuse_bad_versions)
{
	CHECK_REFUSED("GET / HTTP/1.2\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/2.0\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/0.9\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("GET / http/1.1\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.10\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", -400);
}

TEST(refuse_malformed_request_line)
{
	CHECK_REFUSED("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("GET /\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("GET\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", -400);
}

TEST(refuse_method_non_token)
{
	CHECK_REFUSED("GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("G\xc3\xa9T / HTTP/1.1\r\nHost: a\r\n\r\n", -400);
	CHECK_REFUSED("GET\0 / HTTP/1.1\r\nHost: a\r\n\r\n", -400);
}

TEST(refusal_seen_before_head_is_complete)
{
	struct wf_h1_req r;
	/* the bad byte is known before the end of the head: no need to wait for it */
	CHECK_EQ(REQ("GET / HTTP/1.1\r\nHost: a\r\nX\0", &r), -400);
	CHECK_EQ(REQ("GET / HTTP/1.1\nHo", &r), -400);
	CHECK_EQ(REQ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\nX",
	             &r), -400);
}

/* ---- limits ---- */

/* A request with n "X-Hnnn: v" fields (plus Host) in buf; returns its length. */
static size_t many_headers(char *buf, size_t cap, int n)
{
	size_t len = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len, "X-H%03d: v\r\n", i);
	len += (size_t)snprintf(buf + len, cap - len, "\r\n");
	return len;
}

TEST(limit_header_count)
{
	static char buf[8192];
	struct wf_h1_req r;
	size_t n = many_headers(buf, sizeof buf, 99); /* + Host = 100 */
	CHECK_EQ(parse_req_lim(buf, n, &lim, &r), (int)n);
	CHECK_EQ(r.n_headers, 100);
	n = many_headers(buf, sizeof buf, 100);       /* + Host = 101 */
	CHECK_EQ(parse_req_lim(buf, n, &lim, &r), -431);
	CHECK(r.err != NULL);
	/* detected before the head is complete */
	CHECK_EQ(parse_req_lim(buf, n - 10, &lim, &r), -431);
}

TEST(limit_head_bytes)
{
	static const char s[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	struct wf_h1_req r;
	struct wf_h1_limits l = {.max_head_bytes = LEN(s), .max_headers = 100};
	CHECK_EQ(parse_req_lim(s, sizeof(s) - 1, &l, &r), LEN(s));
	l.max_head_bytes = LEN(s) - 1;
	CHECK_EQ(parse_req_lim(s, sizeof(s) - 1, &l, &r), -431);
	/* incomplete: 0 while within the limit, -431 once the bytes already here exceed it */
	static const char part[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Long: aaaaaaaaaaaaaaaaaaaa";
	l.max_head_bytes = LEN(part);
	CHECK_EQ(parse_req_lim(part, sizeof(part) - 1, &l, &r), 0);
	l.max_head_bytes = LEN(part) - 1;
	CHECK_EQ(parse_req_lim(part, sizeof(part) - 1, &l, &r), -431);
	/* a complete head within the limit is fine even with body bytes beyond it */
	static const char body[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789";
	l.max_head_bytes = LEN(body) - 10;
	CHECK_EQ(parse_req_lim(body, sizeof(body) - 1, &l, &r), LEN(body) - 10);
}

/* ---- responses ---- */

TEST(resp_200_content_length)
{
	static const char s[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc";
	struct wf_h1_resp r;
	CHECK_EQ(RESP(s, &r), LEN(s) - 3);
	CHECK_EQ(r.status, 200);
	CHECK_STR(r.reason, r.reason_len, "OK");
	CHECK_EQ(r.minor, 1);
	CHECK_EQ(r.content_length, 3);
	CHECK_EQ(r.conn_close, 1);
	CHECK_EQ(r.n_headers, 2);
}

TEST(resp_chunked)
{
	struct wf_h1_resp r;
	CHECK(RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &r) > 0);
	CHECK_EQ(r.chunked, 1);
	CHECK_EQ(r.content_length, -1);
}

TEST(resp_no_body_statuses)
{
	struct wf_h1_resp r;
	CHECK(RESP("HTTP/1.1 204 No Content\r\n\r\n", &r) > 0);
	CHECK_EQ(r.status, 204);
	CHECK_EQ(wf_h1_resp_has_body(r.status, 0, 0), 0);
	CHECK(RESP("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", &r) > 0);
	CHECK_EQ(r.status, 304);
	CHECK(RESP("HTTP/1.1 100 Continue\r\n\r\n", &r) > 0);
	CHECK_EQ(r.status, 100);
	CHECK(RESP("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	           &r) > 0);
	CHECK_EQ(r.status, 101);
	CHECK_EQ(r.conn_upgrade, 1);
}

TEST(resp_close_delimited)
{
	struct wf_h1_resp r;
	CHECK(RESP("HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody until close", &r) > 0);
	CHECK_EQ(r.minor, 0);
	CHECK_EQ(r.content_length, -1);
	CHECK_EQ(r.chunked, 0);
}

TEST(resp_empty_reason)
{
	struct wf_h1_resp r;
	CHECK_EQ(RESP("HTTP/1.1 200 \r\n\r\n", &r), 17);
	CHECK_EQ(r.reason_len, 0);
	CHECK_EQ(RESP("HTTP/1.1 200\r\n\r\n", &r), 16);
	CHECK_EQ(r.reason_len, 0);
	CHECK(RESP("HTTP/1.1 404 Not \tFound \xc3\xa9\r\n\r\n", &r) > 0);
	CHECK_STR(r.reason, r.reason_len, "Not \tFound \xc3\xa9");
}

TEST(resp_every_prefix_is_incomplete)
{
	static const char s[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX: y\r\n\r\n";
	struct wf_h1_resp r;
	for (size_t i = 0; i < sizeof(s) - 1; i++) {
		char *b = malloc(i + 1);
		memcpy(b, s, i);
		int rc = parse_resp_lim(b, i, &lim, &r);
		free(b);
		CHECK_EQ(rc, 0);
	}
}

TEST(resp_malformed_status_line)
{
	CHECK_RESP_REFUSED("HTTP/1.1 20 OK\r\n\r\n");
	CHECK_RESP_REFUSED("HTTP/1.1 2000 OK\r\n\r\n");
	CHECK_RESP_REFUSED("HTTP/1.1 099 Low\r\n\r\n");
	CHECK_RESP_REFUSED("HTTP/1.1 2x0 OK\r\n\r\n");
	CHECK_RESP_REFUSED("HTTP/1.1  200 OK\r\n\r\n");
	CHECK_RESP_REFUSED("HTTP/1.2 200 OK\r\n\r\n");
	CHECK_RESP_REFUSED("HTTP/2 200 OK\r\n\r\n");
	CHECK_RESP_REFUSED("http/1.1 200 OK\r\n\r\n");
	CHECK_RESP_REFUSED("\r\nHTTP/1.1 200 OK\r\n\r\n");
	CHECK_RESP_REFUSED("HTTP/1.1 200 O\x01K\r\n\r\n");
	CHECK_RESP_REFUSED("HTTP/1.1 200 OK\n\r\n");
}

TEST(resp_framing_refusals)
{
	CHECK_RESP_REFUSED("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
	CHECK_RESP_REFUSED("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n");
	CHECK_RESP_REFUSED("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n");
	CHECK_RESP_REFUSED("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
	CHECK_RESP_REFUSED("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
}

TEST(resp_field_refusals)
{
	CHECK_RESP_REFUSED("HTTP/1.1 200 OK\r\nX: a\nY: b\r\n\r\n");
	CHECK_RESP_REFUSED("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n");
	CHECK_RESP_REFUSED("HTTP/1.1 200 OK\r\nX : a\r\n\r\n");
	CHECK_RESP_REFUSED("HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n");
	CHECK_RESP_REFUSED("HTTP/1.1 200 OK\r\n: a\r\n\r\n");
}

TEST(resp_limits)
{
	static char buf[8192];
	struct wf_h1_resp r;
	size_t len = (size_t)snprintf(buf, sizeof buf, "HTTP/1.1 200 OK\r\n");
	for (int i = 0; i < 101; i++)
		len += (size_t)snprintf(buf + len, sizeof buf - len, "X-H%03d: v\r\n", i);
	len += (size_t)snprintf(buf + len, sizeof buf - len, "\r\n");
	CHECK_EQ(parse_resp_lim(buf, len, &lim, &r), -502);
	struct wf_h1_limits l = {.max_head_bytes = 20, .max_headers = 100};
	static const char s[] = "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n";
	CHECK_EQ(parse_resp_lim(s, sizeof(s) - 1, &l, &r), -502);
	l.max_head_bytes = LEN(s);
	CHECK_EQ(parse_resp_lim(s, sizeof(s) - 1, &l, &r), LEN(s));
}

TEST(resp_has_body_table)
{
	static const struct { int status, head, connect, body; } t[] = {
		{100, 0, 0, 0}, {101, 0, 0, 0}, {199, 0, 0, 0}, {200, 0, 0, 1},
		{200, 1, 0, 0}, {200, 0, 1, 0}, {204, 0, 0, 0}, {206, 0, 0, 1},
		{299, 0, 1, 0}, {304, 0, 0, 0}, {301, 0, 0, 1}, {404, 0, 0, 1},
		{404, 1, 0, 0}, {407, 0, 1, 1}, {500, 0, 0, 1}, {502, 0, 1, 1},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		CHECK_EQ(wf_h1_resp_has_body(t[i].status, t[i].head, t[i].connect), t[i].body);
}

TEST(hdr_name_is)
{
	struct wf_hdr h = {.name = "Content-LENGTH", .name_len = 14};
	CHECK(WF_HDR_IS(&h, "content-length"));
	CHECK(!WF_HDR_IS(&h, "content-type"));
	CHECK(!WF_HDR_IS(&h, "content-lengthx"));
	CHECK(!WF_HDR_IS(&h, "content-lengt"));
}

/* ---- chunked decoder ---- */

/* Decodes in[0..n) arriving first as in[0..split) then the rest (split 0: at once), or,
 * with step, in pieces of `step` bytes. The decoder is handed only what has arrived and
 * not yet been consumed. Collects body bytes in out; *used is what the decoder consumed.
 * Returns the last decoder status; -999 if an invariant broke. */
static int dechunk(const char *in, size_t n, size_t split, size_t step, uint32_t max_trailer,
                   char *out, size_t *out_len, size_t *used)
{
	struct wf_h1_chunked c = {.max_trailer = max_trailer};
	size_t off = 0, avail = split ? split : (step ? 0 : n), ol = 0;
	int r = 0;

	for (;;) {
		if (off == avail) {
			if (avail == n)
				break;
			avail = step ? (avail + step < n ? avail + step : n) : n;
		}
		/* a heap copy of exactly the bytes on offer, so ASan sees any over-read */
		size_t give = avail - off;
		char *b = malloc(give ? give : 1);
		memcpy(b, in + off, give);
		const char *d;
		size_t dl, u;
		r = wf_h1_chunked_decode(&c, b, give, &u, &d, &dl);
		if (u > give || (r == 0 && u != give) || (r == 1 && (dl == 0 || d < b || d + dl > b + u)))
			r = -999;
		if (r == 1) {
			memcpy(out + ol, d, dl);
			ol += dl;
		}
		free(b);
		if (r < 0)
			break;
		off += u;
		if (r == 2)
			break;
	}
	*out_len = ol;
	*used = off;
	return r;
}

/* One-shot, byte by byte and every two-piece split must agree. */
static int dechunk_all_ways(const char *in, size_t n, char *out, size_t *out_len, size_t *used)
{
	char ref[4096], got[4096];
	size_t rl, ru, gl, gu;
	int r = dechunk(in, n, 0, 0, 0, ref, &rl, &ru);
	for (size_t split = 1; split < n; split++) {
		if (dechunk(in, n, split, 0, 0, got, &gl, &gu) != r)
			return -998;
		if (r == 2 && (gl != rl || gu != ru || memcmp(got, ref, rl) != 0))
			return -997;
	}
	if (dechunk(in, n, 0, 1, 0, got, &gl, &gu) != r)
		return -996;
	if (r == 2 && (gl != rl || gu != ru || memcmp(got, ref, rl) != 0))
		return -995;
	memcpy(out, ref, rl);
	*out_len = rl;
	*used = ru;
	return r;
}

#define DECHUNK(lit, out, ol, used) dechunk_all_ways(lit, sizeof(lit) - 1, out, ol, used)

TEST(chunked_basic)
{
	static const char s[] = "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\nGET /next";
	char out[64];
	size_t ol, used;
	CHECK_EQ(DECHUNK(s, out, &ol, &used), 2);
	CHECK_STR(OUT(out), ol, "hello, world");
	CHECK_EQ(used, sizeof(s) - 1 - 9);
}

TEST(chunked_one_shot_spans)
{
	static const char s[] = "3\r\nabc\r\n0\r\n\r\n";
	struct wf_h1_chunked c = {0};
	const char *d;
	size_t dl, u;
	CHECK_EQ(wf_h1_chunked_decode(&c, s, sizeof(s) - 1, &u, &d, &dl), 1);
	CHECK(d == s + 3);
	CHECK_EQ(dl, 3);
	CHECK_EQ(u, 6);
	CHECK_EQ(wf_h1_chunked_decode(&c, s + 6, sizeof(s) - 1 - 6, &u, &d, &dl), 2);
	CHECK_EQ(u, sizeof(s) - 1 - 6);
	/* after the end, nothing more is consumed */
	CHECK_EQ(wf_h1_chunked_decode(&c, "xyz", 3, &u, &d, &dl), 2);
	CHECK_EQ(u, 0);
}

TEST(chunked_partial_data)
{
	struct wf_h1_chunked c = {0};
	const char *d;
	size_t dl, u;
	CHECK_EQ(wf_h1_chunked_decode(&c, "a\r\n0123", 7, &u, &d, &dl), 1);
	CHECK_EQ(dl, 4);
	CHECK_EQ(c.left, 6);
	CHECK_EQ(wf_h1_chunked_decode(&c, "456789\r", 7, &u, &d, &dl), 1);
	CHECK_EQ(dl, 6);
	CHECK_EQ(u, 6);
	CHECK_EQ(wf_h1_chunked_decode(&c, "\r", 1, &u, &d, &dl), 0);
	CHECK_EQ(u, 1);
	CHECK_EQ(wf_h1_chunked_decode(&c, "", 0, &u, &d, &dl), 0);
	CHECK_EQ(wf_h1_chunked_decode(&c, "\n0\r\n\r\n", 6, &u, &d, &dl), 2);
	CHECK_EQ(u, 6);
}

TEST(chunked_hex_sizes)
{
	char out[64];
	size_t ol, used;
	CHECK_EQ(DECHUNK("A\r\n0123456789\r\n0\r\n\r\n", out, &ol, &used), 2);
	CHECK_EQ(ol, 10);
	CHECK_EQ(DECHUNK("b\r\n0123456789a\r\n000\r\n\r\n", out, &ol, &used), 2);
	CHECK_EQ(ol, 11);
	CHECK_EQ(DECHUNK("0000000000000003\r\nabc\r\n0\r\n\r\n", out, &ol, &used), 2);
	CHECK_EQ(ol, 3);
}

TEST(chunked_extensions)
{
	char out[64];
	size_t ol, used;
	CHECK_EQ(DECHUNK("3;a\r\nabc\r\n0;last=yes\r\n\r\n", out, &ol, &used), 2);
	CHECK_STR(OUT(out), ol, "abc");
	CHECK_EQ(DECHUNK("3;a=b;c=\"q \\\" ;x\"\r\nabc\r\n0\r\n\r\n", out, &ol, &used), 2);
	CHECK_STR(OUT(out), ol, "abc");
	CHECK_EQ(DECHUNK("3;a=\"\"\r\nabc\r\n0\r\n\r\n", out, &ol, &used), 2);
}

TEST(chunked_trailers)
{
	char out[64];
	size_t ol, used;
	static const char s[] = "3\r\nabc\r\n0\r\nX-Sum: 1\r\nGrpc-Status:\t0 \r\n\r\nNEXT";
	CHECK_EQ(DECHUNK(s, out, &ol, &used), 2);
	CHECK_STR(OUT(out), ol, "abc");
	CHECK_EQ(used, sizeof(s) - 1 - 4);
}

TEST(chunked_byte_by_byte_equals_one_shot)
{
	static const char s[] = "1\r\na\r\n10\r\n0123456789abcdef\r\n2;x=\"y\"\r\nzz\r\n"
	                        "0\r\nT: v\r\n\r\n";
	char one[64], byte[64];
	size_t l1, u1, l2, u2;
	CHECK_EQ(dechunk(s, sizeof(s) - 1, 0, 0, 0, one, &l1, &u1), 2);
	CHECK_EQ(dechunk(s, sizeof(s) - 1, 0, 1, 0, byte, &l2, &u2), 2);
	CHECK_EQ(l1, 19);
	CHECK_EQ(l1, l2);
	CHECK_EQ(u1, u2);
	CHECK(memcmp(one, byte, l1) == 0);
	CHECK_STR(OUT(one), l1, "a0123456789abcdefzz");
}

TEST(chunked_incomplete_needs_more)
{
	char out[64];
	size_t ol, used;
	CHECK_EQ(DECHUNK("5\r\nhel", out, &ol, &used), 1);
	CHECK_EQ(DECHUNK("5\r\nhello\r\n0\r\n", out, &ol, &used), 0);
	CHECK_EQ(DECHUNK("5\r\nhello\r\n0\r\nX: y\r\n", out, &ol, &used), 0);
	CHECK_EQ(DECHUNK("5;ext=\"abc", out, &ol, &used), 0);
}

#define CHECK_CHUNK_REFUSED(lit)                                                           \
	do {                                                                                   \
		char o_[64];                                                                       \
		size_t ol_, u_;                                                                    \
		CHECK_EQ(DECHUNK(lit, o_, &ol_, &u_), -400);                                       \
	} while (0)

TEST(chunk_size_refusals)
{
	CHECK_CHUNK_REFUSED("0x5\r\nhello\r\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("+5\r\nhello\r\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("-5\r\nhello\r\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED(" 5\r\nhello\r\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("5 \r\nhello\r\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("5\t\r\nhello\r\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("5 ;a\r\nhello\r\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("\r\nhello\r\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("g\r\n");
	CHECK_CHUNK_REFUSED("5\nhello\r\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("5\rhello\r\n0\r\n\r\n");
}

TEST(chunk_size_too_big)
{
	CHECK_CHUNK_REFUSED("00000000000000005\r\nhello\r\n0\r\n\r\n"); /* 17 digits */
	CHECK_CHUNK_REFUSED("FFFFFFFFFFFFFFFF\r\n");                      /* over 2^62 */
	CHECK_CHUNK_REFUSED("4000000000000001\r\n");
	CHECK_CHUNK_REFUSED("1FFFFFFFFFFFFFFFFFFFF\r\n");
	/* 2^62 exactly is accepted; the data just never comes */
	char o[8];
	size_t ol, u;
	CHECK_EQ(DECHUNK("4000000000000000\r\nab", o, &ol, &u), 1);
}

TEST(chunk_data_crlf_refusals)
{
	CHECK_CHUNK_REFUSED("5\r\nhelloX\r\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("5\r\nhelloX\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("5\r\nhello\rX0\r\n\r\n");
	CHECK_CHUNK_REFUSED("5\r\nhello\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("5\r\nhello\r\n0\r\n\n");
	CHECK_CHUNK_REFUSED("5\r\nhello\r\n0\r\n\rX");
}

TEST(chunk_extension_refusals)
{
	CHECK_CHUNK_REFUSED("5;\r\nhello\r\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("5;=x\r\nhello\r\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("5;a=\r\nhello\r\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("5;a b\r\nhello\r\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("5; a\r\nhello\r\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("5;a =b\r\nhello\r\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("5;a=\"x\"y\r\nhello\r\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("5;a=\"x\ny\"\r\nhello\r\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("5;a=\"x\\\1\"\r\nhello\r\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("5;a\nhello\r\n0\r\n\r\n");
	CHECK_CHUNK_REFUSED("5;a=b=c\r\nhello\r\n0\r\n\r\n");
}

TEST(chunk_extension_too_long)
{
	static char buf[8192];
	size_t n = (size_t)snprintf(buf, sizeof buf, "5;x=");
	memset(buf + n, 'a', 5000);
	n += 5000;
	n += (size_t)snprintf(buf + n, sizeof buf - n, "\r\nhello\r\n0\r\n\r\n");
	char out[64];
	size_t ol, u;
	CHECK_EQ(dechunk(buf, n, 0, 0, 0, out, &ol, &u), -400);
	CHECK_EQ(dechunk(buf, n, 0, 7, 0, out, &ol, &u), -400);
}

TEST(chunk_trailer_refusals)
{
	CHECK_CHUNK_REFUSED("0\r\nX: a\nY: b\r\n\r\n");
	CHECK_CHUNK_REFUSED("0\r\nX: a\r\n b\r\n\r\n");
	CHECK_CHUNK_REFUSED("0\r\nX : a\r\n\r\n");
	CHECK_CHUNK_REFUSED("0\r\nX: a\0b\r\n\r\n");
	CHECK_CHUNK_REFUSED("0\r\nX: a\x7f\r\n\r\n");
	CHECK_CHUNK_REFUSED("0\r\n: a\r\n\r\n");
	CHECK_CHUNK_REFUSED("0\r\nX(: a\r\n\r\n");
	CHECK_CHUNK_REFUSED("0\r\nX: a\rb\r\n\r\n");
	CHECK_CHUNK_REFUSED("0\r\nNoColon\r\n\r\n");
}

TEST(chunk_trailer_too_large)
{
	static const char s[] = "0\r\nX-Long: 0123456789012345678901234567890123456789\r\n\r\n";
	char out[8];
	size_t ol, u;
	CHECK_EQ(dechunk(s, sizeof(s) - 1, 0, 0, 32, out, &ol, &u), -400);
	CHECK_EQ(dechunk(s, sizeof(s) - 1, 0, 1, 32, out, &ol, &u), -400);
	CHECK_EQ(dechunk(s, sizeof(s) - 1, 0, 0, 64, out, &ol, &u), 2);
	/* the default (60 KiB) bound */
	static char big[70 * 1024];
	size_t n = (size_t)snprintf(big, sizeof big, "0\r\n");
	while (n + 20 < sizeof big)
		n += (size_t)snprintf(big + n, sizeof big - n, "X-Pad: 0123456789\r\n");
	CHECK_EQ(dechunk(big, n, 0, 0, 0, out, &ol, &u), -400);
}

TEST(chunk_error_is_sticky)
{
	struct wf_h1_chunked c = {0};
	const char *d;
	size_t dl, u;
	CHECK_EQ(wf_h1_chunked_decode(&c, "x", 1, &u, &d, &dl), -400);
	CHECK(c.err != NULL);
	CHECK_EQ(wf_h1_chunked_decode(&c, "5\r\nhello\r\n", 10, &u, &d, &dl), -400);
}

TEST_MAIN("h1",
          T(get_basic), T(get_http10_without_host), T(empty_value_and_empty_host),
          T(values_keep_tab_and_obs_text), T(post_content_length),
          T(content_length_zero_and_leading_zeros), T(post_chunked), T(chunked_case_insensitive),
          T(pipelined_two_requests), T(every_prefix_is_incomplete), T(leading_empty_lines),
          T(connection_tokens), T(connection_bad_token), T(expect_continue), T(grpc_content_type), T(absolute_form),
          T(absolute_form_without_path), T(absolute_form_host_differs),
          T(absolute_form_malformed), T(connect_authority_form), T(options_asterisk),
          T(refuse_cl_and_te), T(refuse_cl_duplicate_equal), T(refuse_cl_differing),
          T(refuse_cl_list), T(refuse_cl_sign), T(refuse_cl_inner_space), T(refuse_cl_empty),
          T(refuse_cl_not_digits), T(refuse_cl_overflow), T(refuse_te_gzip_chunked),
          T(refuse_te_chunked_gzip), T(refuse_te_two_fields), T(refuse_te_other),
          T(refuse_te_http10), T(refuse_space_before_colon), T(refuse_obs_fold),
          T(refuse_bare_lf_request_line), T(refuse_bare_lf_header_line),
          T(refuse_bare_lf_end_of_head), T(refuse_bare_cr), T(refuse_nul_in_value),
          T(refuse_ctl_in_value), T(refuse_ctl_in_name), T(refuse_empty_name),
          T(refuse_non_token_name), T(refuse_target_bytes), T(refuse_non_ascii_target),
          T(refuse_missing_host), T(refuse_two_hosts), T(refuse_bad_host), T(good_hosts),
          T(refuse_bad_versions), T(refuse_malformed_request_line), T(refuse_method_non_token),
          T(refusal_seen_before_head_is_complete), T(limit_header_count), T(limit_head_bytes),
          T(resp_200_content_length), T(resp_chunked), T(resp_no_body_statuses),
          T(resp_close_delimited), T(resp_empty_reason), T(resp_every_prefix_is_incomplete),
          T(resp_malformed_status_line), T(resp_framing_refusals), T(resp_field_refusals),
          T(resp_limits), T(resp_has_body_table), T(hdr_name_is), T(chunked_basic),
          T(chunked_one_shot_spans), T(chunked_partial_data), T(chunked_hex_sizes),
          T(chunked_extensions), T(chunked_trailers), T(chunked_byte_by_byte_equals_one_shot),
          T(chunked_incomplete_needs_more), T(chunk_size_refusals), T(chunk_size_too_big),
          T(chunk_data_crlf_refusals), T(chunk_extension_refusals), T(chunk_extension_too_long),
          T(chunk_trailer_refusals), T(chunk_trailer_too_large), T(chunk_error_is_sticky))
