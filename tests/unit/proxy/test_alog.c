/* Access logs: the format language (text and JSON), response flags, and a file sink compiled
 * from YAML, written and read back. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "google/protobuf/struct.pb-c.h"
#include "envoy/config/accesslog/v3/accesslog.pb-c.h"
#include "proxy/alog.h"
#include "test.h"
#include "xds/cfgdoc.h"

#define HDR(n, v) {n, v, sizeof(n) - 1, sizeof(v) - 1}

static const struct wf_hdr req_hdrs[] = {
    HDR("Host", "example.com"),
    HDR("User-Agent", "curl/8.5.0"),
    HDR("X-Forwarded-For", "10.1.2.3"),
    HDR("x-request-id", "4b1f5c2e-6f1a-4d3b-9c8e-0a1b2c3d4e5f"),
};
static const struct wf_hdr resp_hdrs[] = {
    HDR("Content-Type", "text/plain"),
    HDR("x-envoy-upstream-service-time", "12"),
};

/* 2026-11-26T10:00:00.123456Z */
#define WALL 1795687200123456ull

static struct wf_stream_info full_si(void)
{
	struct wf_stream_info si = {
	    .start_wall_us = WALL,
	    .start_us = 5000000,
	    .end_us = 5042999, /* 42.999 ms: DURATION truncates to 42 */
	    .upstream_service_us = 12000,
	    .req_headers = req_hdrs,
	    .n_req_headers = 4,
	    .resp_headers = resp_hdrs,
	    .n_resp_headers = 2,
	    .method = "GET",
	    .method_len = 3,
	    .path = "/api/v1/items?x=1",
	    .path_len = 17,
	    .authority = "example.com",
	    .authority_len = 11,
	    .protocol = "HTTP/1.1",
	    .response_code = 200,
	    .response_flags = 0,
	    .bytes_received = 154,
	    .bytes_sent = 2048,
	    .upstream_host = "10.0.0.7:8080",
	    .upstream_cluster = "backend",
	    .route_name = "items",
	    .downstream_remote = "192.168.1.20:51234",
	    .downstream_local = "[::1]:10000",
	    .request_id = "4b1f5c2e-6f1a-4d3b-9c8e-0a1b2c3d4e5f",
	    .request_id_len = 36,
	};
	return si;
}

/* Render si with a text format into a static buffer; returns its length (or -1 on error). */
static char out_store[8192];
/* As a plain pointer, which CHECK_STR may test for NULL without a warning. */
static char *const out_buf = out_store;
static long render_with(struct wf_alog_fmt *f, const struct wf_stream_info *si)
{
	char *out = NULL;
	size_t len = 0, cap = 0;
	if (!f || wf_alog_render(f, si, &out, &len, &cap) < 0 || len >= sizeof(out_store)) {
		free(out);
		return -1;
	}
	if (len)
		memcpy(out_buf, out, len);
	out_buf[len] = 0;
	free(out);
	return (long)len;
}

static long render_text(const char *fmt, const struct wf_stream_info *si)
{
	char err[256];
	struct wf_alog_fmt *f = wf_alog_fmt_text(fmt, err, sizeof(err));
	if (!f)
		printf("  compile failed: %s\n", err);
	long n = render_with(f, si);
	wf_alog_fmt_free(f);
	return n;
}

TEST(default_format_full)
{
	struct wf_stream_info si = full_si();
	long n = render_text(WF_ALOG_DEFAULT_FORMAT, &si);
	CHECK_STR(out_buf, n,
	          "[2026-11-26T10:00:00.123Z] \"GET /api/v1/items?x=1 HTTP/1.1\" 200 - 154 2048 42 12 "
	          "\"10.1.2.3\" \"curl/8.5.0\" \"4b1f5c2e-6f1a-4d3b-9c8e-0a1b2c3d4e5f\" \"example.com\" "
	          "\"10.0.0.7:8080\"\n");
}

TEST(default_format_tcp)
{
	struct wf_stream_info si = {
	    .start_wall_us = WALL,
	    .start_us = 1000,
	    .end_us = 3001000,
	    .upstream_service_us = -1,
	    .bytes_received = 10,
	    .bytes_sent = 20,
	    .response_flags = WF_RF_UF,
	    .upstream_host = "10.0.0.7:5432",
	    .downstream_remote = "192.168.1.20:51234",
	};
	long n = render_text(WF_ALOG_DEFAULT_FORMAT, &si);
	CHECK_STR(out_buf, n,
	          "[2026-11-26T10:00:00.123Z] \"- - -\" 0 UF 10 20 3000 - \"-\" \"-\" \"-\" \"-\" "
	          "\"10.0.0.7:5432\"\n");
}

TEST(truncate_and_fallback)
{
	struct wf_stream_info si = full_si();
	long n = render_text("%REQ(USER-AGENT):4%|%REQ(user-agent)%|%RESP(X-MISSING):3%|%REQ(:PATH):4%",
	                     &si);
	CHECK_STR(out_buf, n, "curl|curl/8.5.0|-|/api");
	/* X?Y: the first header when present, else the second. */
	n = render_text("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %REQ(X-NOPE?USER-AGENT):6% %REQ(A?B)%", &si);
	CHECK_STR(out_buf, n, "/api/v1/items?x=1 curl/8 -");
	struct wf_hdr h[] = {HDR("x-envoy-original-path", "/orig"), HDR("user-agent", "ua")};
	si.req_headers = h;
	si.n_req_headers = 2;
	n = render_text("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %REQ(:authority?host)%", &si);
	CHECK_STR(out_buf, n, "/orig example.com");
	si.authority = NULL;
	n = render_text("%REQ(:authority?:METHOD)% %RESP(:STATUS)%", &si);
	CHECK_STR(out_buf, n, "GET 200");
}

TEST(percent_literal_and_plain_text)
{
	struct wf_stream_info si = full_si();
	long n = render_text("100%% done %%%PROTOCOL%%%", &si);
	CHECK_STR(out_buf, n, "100% done %HTTP/1.1%");
	n = render_text("", &si);
	CHECK_EQ(n, 0);
	n = render_text("no operators", &si);
	CHECK_STR(out_buf, n, "no operators");
}

TEST(other_operators)
{
	struct wf_stream_info si = full_si();
	long n = render_text("%UPSTREAM_CLUSTER% %ROUTE_NAME% %DOWNSTREAM_REMOTE_ADDRESS% "
	                     "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_ADDRESS% "
	                     "%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT% %UPSTREAM_HOST% "
	                     "%UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %STREAM_ID% %RESPONSE_CODE_DETAILS% "
	                     "%REQUEST_DURATION% %RESPONSE_DURATION% %TRAILER(grpc-status)%",
	                     &si);
	CHECK_STR(out_buf, n,
	          "backend items 192.168.1.20:51234 192.168.1.20 [::1]:10000 ::1 10.0.0.7:8080 "
	          "10.0.0.7 4b1f5c2e-6f1a-4d3b-9c8e-0a1b2c3d4e5f - - - -");
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	n = render_text("%HOSTNAME%", &si);
	CHECK(n > 0);
	CHECK(strcmp(out_buf, host) == 0);
	/* No end time yet: DURATION is unknown. */
	si.end_us = 0;
	n = render_text("%DURATION% %RESPONSE_CODE%", &si);
	CHECK_STR(out_buf, n, "- 200");
}

static int compile_fails(const char *fmt, const char *want)
{
	char err[256] = "";
	struct wf_alog_fmt *f = wf_alog_fmt_text(fmt, err, sizeof(err));
	if (f) {
		wf_alog_fmt_free(f);
		printf("  '%s' compiled\n", fmt);
		return 0;
	}
	if (!strstr(err, want)) {
		printf("  '%s': error \"%s\" lacks \"%s\"\n", fmt, err, want);
		return 0;
	}
	return 1;
}

TEST(compile_errors)
{
	CHECK(compile_fails("[%START_TIME%] %FOO% x", "unknown command 'FOO' at offset 15"));
	CHECK(compile_fails("%STAR_TIME%", "did you mean 'START_TIME'?"));
	CHECK(compile_fails("50% off", "'%' at offset 2 does not start a command"));
	CHECK(compile_fails("%PROTOCOL", "not closed with '%'"));
	CHECK(compile_fails("%REQ(USER-AGENT%", "missing ')'"));
	CHECK(compile_fails("%REQ%", "needs a header name"));
	CHECK(compile_fails("%REQ()%", "needs a header name"));
	CHECK(compile_fails("%PROTOCOL(x)%", "takes no argument"));
	CHECK(compile_fails("%REQ(A?B?C)%", "X?Y"));
	CHECK(compile_fails("%REQ(A?)%", "X?Y"));
	CHECK(compile_fails("%REQ(A):%", "length > 0"));
	CHECK(compile_fails("%REQ(A):0%", "length > 0"));
	CHECK(compile_fails("%REQ(A):12x%", "not closed"));
}

TEST(start_time_formats)
{
	struct wf_stream_info si = full_si();
	long n = render_text("%START_TIME(%Y/%m/%d %H:%M:%S)%|%START_TIME(%s.%3f)%|"
	                     "%START_TIME(%E3S %E6S %E9S %E*S)%|%START_TIME(%f %6f %1f)%|"
	                     "%START_TIME()%|%START_TIME(%%s %a)%",
	                     &si);
	CHECK_STR(out_buf, n,
	          "2026/11/26 10:00:00|1795687200.123|00.123 00.123456 00.123456000 00.123456|"
	          "123456000 123456 1|2026-11-26T10:00:00.123Z|%s Thu");
	si.start_wall_us = WALL - 123456 + 500000; /* .5 s: %E*S drops trailing zeros */
	n = render_text("%START_TIME(%E*S)% %START_TIME(%E3S)%", &si);
	CHECK_STR(out_buf, n, "00.5 00.500");
	si.start_wall_us = WALL - 123456;
	n = render_text("%START_TIME(%E*S)% %START_TIME%", &si);
	CHECK_STR(out_buf, n, "00 2026-11-26T10:00:00.000Z");
}

TEST(response_flags)
{
	char store[128], *b = store;
	size_t n = wf_resp_flags_str(0, b, sizeof(store));
	CHECK_STR(b, n, "-");
	n = wf_resp_flags_str(WF_RF_UH, b, sizeof(store));
	CHECK_STR(b, n, "UH");
	n = wf_resp_flags_str(WF_RF_URX | WF_RF_UF, b, sizeof(store));
	CHECK_STR(b, n, "UF,URX");
	n = wf_resp_flags_str(WF_RF_LH | WF_RF_NR | WF_RF_UAEX | WF_RF_DT, b, sizeof(store));
	CHECK_STR(b, n, "LH,NR,UAEX,DT");
	n = wf_resp_flags_str(0xffffffffu, b, sizeof(store));
	CHECK_STR(b, n,
	          "LH,UH,UT,LR,UR,UF,UC,UO,NR,DI,FI,RL,UAEX,RLSE,DC,URX,SI,IH,DPE,UMSDR,UPE,NC,DT");
	n = wf_resp_flags_str(WF_RF_UF | WF_RF_URX, b, 5); /* truncated, still terminated */
	CHECK_STR(b, n, "UF,U");
	CHECK_EQ(b[4], 0);
	struct wf_stream_info si = full_si();
	si.response_flags = WF_RF_UT | WF_RF_URX;
	long l = render_text("%RESPONSE_FLAGS%", &si);
	CHECK_STR(out_buf, l, "UT,URX");
}

/* A JSON format from YAML (a google.protobuf.Struct). */
static struct wf_alog_fmt *json_from_yaml(const char *yaml, char *err, size_t errlen)
{
	struct wf_cfgdoc *doc = wf_cfgdoc_new("json.yaml");
	struct wf_alog_fmt *f = NULL;
	if (wf_yaml_load_string(doc, &google__protobuf__struct__descriptor, yaml, strlen(yaml), err,
	                        errlen) == 0)
		f = wf_alog_fmt_json(wf_cfgdoc_root(doc), err, errlen);
	wf_cfgdoc_free(doc);
	return f;
}

TEST(json_format)
{
	static const char yaml[] =
	    "start: \"%START_TIME%\"\n"
	    "method: \"%REQ(:METHOD)%\"\n"
	    "code: \"%RESPONSE_CODE%\"\n"
	    "bytes_in: \"%BYTES_RECEIVED%\"\n"
	    "bytes_out: \"%BYTES_SENT%\"\n"
	    "duration: \"%DURATION%\"\n"
	    "route: \"%ROUTE_NAME%\"\n"
	    "ua: \"%REQ(USER-AGENT)%\"\n"
	    "line: \"%REQ(:METHOD)% %ROUTE_NAME% took %DURATION%ms\"\n"
	    "upstream:\n"
	    "  host: \"%UPSTREAM_HOST%\"\n"
	    "  cluster: \"%UPSTREAM_CLUSTER%\"\n"
	    "version: 2\n"
	    "ratio: 0.5\n"
	    "sampled: true\n"
	    "nothing: null\n"
	    "tags: [\"%PROTOCOL%\", \"fixed\"]\n"
	    "literal: \"50%% off\"\n";
	char err[256] = "";
	struct wf_alog_fmt *f = json_from_yaml(yaml, err, sizeof(err));
	if (!f)
		printf("  %s\n", err);
	CHECK(f != NULL);
	struct wf_stream_info si = full_si();
	struct wf_hdr h[] = {HDR("user-agent", "say \"hi\"\\\t\x01 caf\xc3\xa9 \xff")};
	si.req_headers = h;
	si.n_req_headers = 1;
	si.route_name = NULL;
	si.upstream_cluster = NULL;
	long n = render_with(f, &si);
	wf_alog_fmt_free(f);
	CHECK_STR(out_buf, n,
	          "{\"start\":\"2026-11-26T10:00:00.123Z\",\"method\":\"GET\",\"code\":200,"
	          "\"bytes_in\":154,\"bytes_out\":2048,\"duration\":42,\"route\":null,"
	          "\"ua\":\"say \\\"hi\\\"\\\\\\t\\u0001 caf\xc3\xa9 \xef\xbf\xbd\","
	          "\"line\":\"GET - took 42ms\","
	          "\"upstream\":{\"host\":\"10.0.0.7:8080\",\"cluster\":null},"
	          "\"version\":2,\"ratio\":0.5,\"sampled\":true,\"nothing\":null,"
	          "\"tags\":[\"HTTP/1.1\",\"fixed\"],\"literal\":\"50% off\"}\n");
}

TEST(json_errors_and_omit_empty)
{
	char err[256] = "";
	struct wf_alog_fmt *f = json_from_yaml("a: ok\nb:\n  c: \"%NOPE%\"\n", err, sizeof(err));
	CHECK(f == NULL);
	CHECK(strstr(err, "key 'b.c': unknown command 'NOPE' at offset 0") != NULL);

	f = json_from_yaml("code: \"%RESPONSE_CODE%\"\nroute: \"%ROUTE_NAME%\"\n"
	                   "s: \"[%ROUTE_NAME%]\"\nk: \"%PROTOCOL%\"\n",
	                   err, sizeof(err));
	CHECK(f != NULL);
	wf_alog_fmt_set_omit_empty(f, 1);
	struct wf_stream_info si = full_si();
	si.route_name = NULL;
	long n = render_with(f, &si);
	wf_alog_fmt_free(f);
	CHECK_STR(out_buf, n, "{\"code\":200,\"s\":\"[]\",\"k\":\"HTTP/1.1\"}\n");

	f = wf_alog_fmt_text("[%ROUTE_NAME%]", err, sizeof(err));
	CHECK(f != NULL);
	wf_alog_fmt_set_omit_empty(f, 1);
	n = render_with(f, &si);
	wf_alog_fmt_free(f);
	CHECK_STR(out_buf, n, "[]");
}

/* ---- sinks compiled from YAML ---- */

static char tmp_path[128];

static struct wf_alog *compile_yaml(const char *yaml, unsigned workers, char *err, size_t errlen,
                                    struct wf_cfgdoc **docp)
{
	struct wf_cfgdoc *doc = wf_cfgdoc_new("alog.yaml");
	*docp = doc;
	if (wf_yaml_load_string(doc, &envoy__config__accesslog__v3__access_log__descriptor, yaml,
	                        strlen(yaml), err, errlen) < 0)
		return NULL;
	return wf_alog_compile(doc, wf_cfgdoc_root(doc), workers, err, errlen);
}

static long read_back(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	long n = read(fd, buf, cap - 1);
	close(fd);
	if (n >= 0)
		buf[n] = 0;
	return n;
}

TEST(file_sink_default_format)
{
	snprintf(tmp_path, sizeof(tmp_path), "/tmp/weft_test_alog_%d.log", (int)getpid());
	unlink(tmp_path);
	char yaml[512], err[512] = "";
	snprintf(yaml, sizeof(yaml),
	         "name: envoy.access_loggers.file\n"
	         "typed_config:\n"
	         "  \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n"
	         "  path: %s\n",
	         tmp_path);
	struct wf_cfgdoc *doc;
	struct wf_alog *a = compile_yaml(yaml, 2, err, sizeof(err), &doc);
	if (!a)
		printf("  %s\n", err);
	CHECK(a != NULL);
	struct wf_stream_info si = full_si();
	CHECK_EQ(wf_alog_emit(a, 1, &si), 1); /* empty -> non-empty */
	si.response_code = 503;
	si.response_flags = WF_RF_UH;
	CHECK_EQ(wf_alog_emit(a, 1, &si), 0); /* already pending */
	char store[4096], *buf = store;
	CHECK_EQ(read_back(tmp_path, buf, sizeof(store)), 0); /* nothing written before the flush */
	wf_alog_flush(a, 1);
	wf_alog_flush(a, 0); /* nothing buffered: no-op */
	long n = read_back(tmp_path, buf, sizeof(store));
	CHECK_STR(buf, n,
	          "[2026-11-26T10:00:00.123Z] \"GET /api/v1/items?x=1 HTTP/1.1\" 200 - 154 2048 42 12 "
	          "\"10.1.2.3\" \"curl/8.5.0\" \"4b1f5c2e-6f1a-4d3b-9c8e-0a1b2c3d4e5f\" \"example.com\" "
	          "\"10.0.0.7:8080\"\n"
	          "[2026-11-26T10:00:00.123Z] \"GET /api/v1/items?x=1 HTTP/1.1\" 503 UH 154 2048 42 12 "
	          "\"10.1.2.3\" \"curl/8.5.0\" \"4b1f5c2e-6f1a-4d3b-9c8e-0a1b2c3d4e5f\" \"example.com\" "
	          "\"10.0.0.7:8080\"\n");
	long two = n;
	CHECK_EQ(wf_alog_emit(a, 1, &si), 1); /* empty again after the flush */
	struct wf_alog_stats st;
	wf_alog_stats(a, &st);
	CHECK_EQ(st.write_failed + st.dropped_bytes + st.render_failed, 0);
	wf_alog_free(a); /* writes what is still buffered */
	wf_cfgdoc_free(doc);
	n = read_back(tmp_path, buf, sizeof(store));
	/* The third line, the same as the second, was written too. */
	long first = (long)(strchr(buf, '\n') + 1 - buf), second = two - first;
	CHECK_EQ(n, two + second);
	CHECK(memcmp(buf + two, buf + first, (size_t)second) == 0);
	unlink(tmp_path);
}

TEST(file_sink_json_and_big_flush)
{
	snprintf(tmp_path, sizeof(tmp_path), "/tmp/weft_test_alog_json_%d.log", (int)getpid());
	unlink(tmp_path);
	char yaml[1024], err[512] = "";
	snprintf(yaml, sizeof(yaml),
	         "name: envoy.access_loggers.file\n"
	         "typed_config:\n"
	         "  \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n"
	         "  path: %s\n"
	         "  log_format:\n"
	         "    json_format:\n"
	         "      code: \"%%RESPONSE_CODE%%\"\n"
	         "      path: \"%%REQ(:PATH)%%\"\n",
	         tmp_path);
	struct wf_cfgdoc *doc;
	struct wf_alog *a = compile_yaml(yaml, 1, err, sizeof(err), &doc);
	if (!a)
		printf("  %s\n", err);
	CHECK(a != NULL);
	struct wf_stream_info si = full_si();
	static const char line[] = "{\"code\":200,\"path\":\"/api/v1/items?x=1\"}\n";
	size_t ll = sizeof(line) - 1;
	/* Past 64 KiB the buffer is written at once, without waiting for a flush. */
	size_t emitted = 0;
	struct stat sb;
	for (; emitted < 10000; emitted++) {
		wf_alog_emit(a, 0, &si);
		if (stat(tmp_path, &sb) == 0 && sb.st_size > 0)
			break;
	}
	emitted++;
	CHECK(stat(tmp_path, &sb) == 0);
	CHECK_EQ(sb.st_size, (long long)(emitted * ll));
	CHECK(emitted * ll > 64 * 1024 && (emitted - 1) * ll <= 64 * 1024);
	char store[256], *buf = store;
	long n = read_back(tmp_path, buf, ll + 1);
	CHECK_STR(buf, n, "{\"code\":200,\"path\":\"/api/v1/items?x=1\"}\n");
	wf_alog_free(a);
	wf_cfgdoc_free(doc);
	unlink(tmp_path);
}

TEST(compile_variants)
{
	char err[512] = "";
	struct wf_cfgdoc *doc;
	/* stdout with a text format; stderr with the default; file to /dev/stdout; text_format_source */
	static const char *ok[] = {
	    "name: envoy.access_loggers.stdout\ntyped_config:\n"
	    "  \"@type\": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog\n"
	    "  log_format:\n    text_format: \"%PROTOCOL%\\n\"\n    omit_empty_values: true\n",
	    "name: envoy.access_loggers.stderr\ntyped_config:\n"
	    "  \"@type\": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog\n",
	    "typed_config:\n"
	    "  \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n"
	    "  path: /dev/stdout\n  format: \"%START_TIME% %REQ(:PATH)%\\n\"\n",
	    "typed_config:\n"
	    "  \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n"
	    "  path: /dev/stderr\n  json_format: {a: \"%PROTOCOL%\"}\n",
	    "typed_config:\n"
	    "  \"@type\": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog\n"
	    "  log_format:\n    text_format_source:\n      inline_string: \"%BYTES_SENT%\\n\"\n",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct wf_alog *a = compile_yaml(ok[i], 4, err, sizeof(err), &doc);
		if (!a)
			printf("  case %zu: %s\n", i, err);
		CHECK(a != NULL);
		wf_alog_free(a);
		wf_cfgdoc_free(doc);
	}
}

static int yaml_fails(const char *yaml, const char *want)
{
	char err[512] = "";
	struct wf_cfgdoc *doc;
	struct wf_alog *a = compile_yaml(yaml, 1, err, sizeof(err), &doc);
	int ok = !a && strstr(err, want) != NULL;
	if (!ok)
		printf("  error \"%s\" lacks \"%s\"\n", a ? "(compiled)" : err, want);
	wf_alog_free(a);
	wf_cfgdoc_free(doc);
	return ok;
}

TEST(compile_errors_located)
{
	CHECK(yaml_fails("name: x\ntyped_config:\n"
	                 "  \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n"
	                 "  path: /tmp/x.log\n"
	                 "  log_format:\n"
	                 "    text_format: \"%START_TIME% %BOGUS%\"\n",
	                 "alog.yaml:6:5: typed_config.log_format.text_format: unknown command 'BOGUS' at offset 13"));
	CHECK(yaml_fails("typed_config:\n"
	                 "  \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n"
	                 "  path: /nonexistent-dir/x.log\n",
	                 "alog.yaml:3:3: typed_config.path: cannot open '/nonexistent-dir/x.log'"));
	CHECK(yaml_fails("typed_config:\n"
	                 "  \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n",
	                 "needs a path"));
	CHECK(yaml_fails("name: envoy.access_loggers.file\n",
	                 "has no typed_config"));
	CHECK(yaml_fails("typed_config:\n"
	                 "  \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n",
	                 "alog.yaml:2:3: typed_config: access log type envoy.extensions.filters.http.router.v3.Router is not supported"));
	CHECK(yaml_fails("typed_config:\n"
	                 "  \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n"
	                 "  path: /dev/stdout\n"
	                 "  json_format:\n"
	                 "    a: {b: \"%REQ%\"}\n",
	                 "json_format: key 'a.b': command 'REQ' at offset 0 needs a header name"));
	CHECK(yaml_fails("typed_config:\n"
	                 "  \"@type\": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog\n"
	                 "  log_format:\n"
	                 "    text_format_source:\n"
	                 "      filename: /nonexistent-dir/fmt.txt\n",
	                 "filename: cannot read '/nonexistent-dir/fmt.txt'"));
}

TEST_MAIN("alog", T(default_format_full), T(default_format_tcp), T(truncate_and_fallback),
          T(percent_literal_and_plain_text), T(other_operators), T(compile_errors),
          T(start_time_formats), T(response_flags), T(json_format), T(json_errors_and_omit_empty),
          T(file_sink_default_format), T(file_sink_json_and_big_flush), T(compile_variants),
          T(compile_errors_located))
