/* Unit tests for src/http/grpc.c. */
#include "test.h"

#include "http/grpc.h"

#define S(lit) lit, sizeof(lit) - 1

TEST(content_type)
{
	CHECK(wf_grpc_content_type(S("application/grpc")));
	CHECK(wf_grpc_content_type(S("application/grpc+proto")));
	CHECK(wf_grpc_content_type(S("Application/GRPC;charset=utf-8")));
	CHECK(!wf_grpc_content_type(S("application/grpc-web")));
	CHECK(!wf_grpc_content_type(S("application/grp")));
	CHECK(!wf_grpc_content_type(S("application/json")));
}

TEST(timeout)
{
	CHECK_EQ(wf_grpc_timeout_ms(S("1H")), 3600000);
	CHECK_EQ(wf_grpc_timeout_ms(S("2M")), 120000);
	CHECK_EQ(wf_grpc_timeout_ms(S("3S")), 3000);
	CHECK_EQ(wf_grpc_timeout_ms(S("250m")), 250);
	CHECK_EQ(wf_grpc_timeout_ms(S("1500u")), 2);   /* rounded up */
	CHECK_EQ(wf_grpc_timeout_ms(S("1n")), 1);
	CHECK_EQ(wf_grpc_timeout_ms(S("99999999S")), 99999999000LL);
	CHECK_EQ(wf_grpc_timeout_ms(S("123456789S")), -1); /* 9 digits */
	CHECK_EQ(wf_grpc_timeout_ms(S("S")), -1);
	CHECK_EQ(wf_grpc_timeout_ms(S("10x")), -1);
	CHECK_EQ(wf_grpc_timeout_ms(S("-1S")), -1);
}

TEST(status)
{
	CHECK_EQ(wf_grpc_status_parse(S("0")), 0);
	CHECK_EQ(wf_grpc_status_parse(S("14")), 14);
	CHECK_EQ(wf_grpc_status_parse(S("")), -1);
	CHECK_EQ(wf_grpc_status_parse(S("1a")), -1);
	CHECK_EQ(wf_grpc_status_from_http(404), WF_GRPC_UNIMPLEMENTED);
	CHECK_EQ(wf_grpc_status_from_http(503), WF_GRPC_UNAVAILABLE);
	CHECK_EQ(wf_grpc_status_from_http(504), WF_GRPC_UNAVAILABLE);
	CHECK_EQ(wf_grpc_status_from_http(429), WF_GRPC_UNAVAILABLE);
	CHECK_EQ(wf_grpc_status_from_http(401), WF_GRPC_UNAUTHENTICATED);
	CHECK_EQ(wf_grpc_status_from_http(403), WF_GRPC_PERMISSION_DENIED);
	CHECK_EQ(wf_grpc_status_from_http(400), WF_GRPC_INTERNAL);
	CHECK_EQ(wf_grpc_status_from_http(500), WF_GRPC_UNKNOWN);
	CHECK(!strcmp(wf_grpc_status_name(14), "UNAVAILABLE"));
	CHECK(!strcmp(wf_grpc_status_name(99), "UNKNOWN"));
	CHECK_EQ(wf_grpc_retry_code(S("deadline-exceeded")), 4);
	CHECK_EQ(wf_grpc_retry_code(S("resource-exhausted")), 8);
	CHECK_EQ(wf_grpc_retry_code(S("5xx")), -1);
}

TEST(message_encoding)
{
	char buf[32], *out = buf;
	size_t n = wf_grpc_message_encode(S("no healthy upstream"), out, sizeof(buf));
	CHECK_STR(out, n, "no healthy upstream");
	n = wf_grpc_message_encode(S("50% \xc3\xa9\n"), out, sizeof(buf));
	CHECK_STR(out, n, "50%25 %C3%A9%0A");
	n = wf_grpc_message_encode(S("%%%%%%%%%%"), out, 8); /* room for two escapes and the NUL */
	CHECK_STR(out, n, "%25%25");
}

TEST_MAIN("grpc", T(content_type), T(timeout), T(status), T(message_encoding))
