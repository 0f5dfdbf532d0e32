/* Unit tests for src/xds/json.c: the message -> JSON printer behind /config_dump. Messages are
 * built by hand from the google.protobuf well-known types only, so that the test does not
 * depend on which Envoy messages the build generates. */
#include "test.h"
#include "xds/json.h"

#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* The last rendering and its length (out is a pointer so CHECK_STR can test it for NULL). */
static char outbuf[8192];
static const char *out = outbuf;
static size_t outlen;

static int render(const void *msg, int indent)
{
	struct wf_jbuf b = {0};
	int rc = wf_json_message(&b, msg, indent);
	outlen = b.len < sizeof outbuf - 1 ? b.len : sizeof outbuf - 1;
	memcpy(outbuf, b.p ? b.p : "", outlen);
	outbuf[outlen] = '\0';
	free(b.p);
	return rc;
}

static Google__Protobuf__Value num(double d)
{
	Google__Protobuf__Value v = GOOGLE__PROTOBUF__VALUE__INIT;
	v.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
	v.number_value = d;
	return v;
}

static int render_duration(int64_t s, int32_t ns)
{
	Google__Protobuf__Duration d = GOOGLE__PROTOBUF__DURATION__INIT;
	d.seconds = s;
	d.nanos = ns;
	return render(&d, -1);
}

TEST(jbuf_grows_and_stays_terminated)
{
	struct wf_jbuf b = {0};
	char big[1000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	CHECK_EQ(wf_jbuf_puts(&b, "ab"), 0);
	CHECK_EQ(wf_jbuf_printf(&b, "%d-%s", 42, big), 0);
	CHECK_EQ(wf_jbuf_printf(&b, "%s", ""), 0);
	CHECK_EQ(b.len, 2 + 3 + 999);
	CHECK(b.cap > b.len);
	CHECK_EQ(b.p[b.len], '\0');
	CHECK(memcmp(b.p, "ab42-xxx", 8) == 0);
	CHECK_EQ(strlen(b.p), b.len);
	free(b.p);
}

TEST(string_escaping)
{
	struct wf_jbuf b = {0};
	static const char in[] =
		"a\"b\\c\n\r\t\b\f\x01\x1f\x7f caf\xc3\xa9 \xe2\x82\xac\0z";
	CHECK_EQ(wf_jbuf_put_jstr(&b, in, sizeof in - 1), 0);
	CHECK_STR(b.p, b.len,
	          "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f"
	          "\x7f caf\xc3\xa9 \xe2\x82\xac\\u0000z\"");
	free(b.p);

	/* through a message: StringValue prints its bare, escaped value */
	Google__Protobuf__StringValue sv = GOOGLE__PROTOBUF__STRING_VALUE__INIT;
	sv.value = "say \"hi\"\n";
	CHECK_EQ(render(&sv, 2), 0);
	CHECK_STR(out, outlen, "\"say \\\"hi\\\"\\n\"");
}

TEST(duration_formats)
{
	CHECK_EQ(render_duration(5, 0), 0);
	CHECK_STR(out, outlen, "\"5s\"");
	render_duration(0, 0);
	CHECK_STR(out, outlen, "\"0s\"");
	render_duration(0, 250000000);
	CHECK_STR(out, outlen, "\"0.250s\"");
	render_duration(1, 500000000);
	CHECK_STR(out, outlen, "\"1.500s\"");
	render_duration(2, 1000);
	CHECK_STR(out, outlen, "\"2.000001s\"");
	render_duration(0, 1);
	CHECK_STR(out, outlen, "\"0.000000001s\"");
	render_duration(0, 1234567);
	CHECK_STR(out, outlen, "\"0.001234567s\"");
	render_duration(-1, -500000000);
	CHECK_STR(out, outlen, "\"-1.500s\"");
	render_duration(0, -250000000);
	CHECK_STR(out, outlen, "\"-0.250s\"");
	render_duration(315576000000LL, 999999999);
	CHECK_STR(out, outlen, "\"315576000000.999999999s\"");
	/* out of range: normalised, not printed malformed */
	render_duration(1, 1500000000);
	CHECK_STR(out, outlen, "\"2.500s\"");
	render_duration(2, -500000000);
	CHECK_STR(out, outlen, "\"1.500s\"");
	render_duration(-2, 500000000);
	CHECK_STR(out, outlen, "\"-1.500s\"");
}

TEST(timestamp_formats)
{
	Google__Protobuf__Timestamp t = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	t.seconds = 1795731035;
	CHECK_EQ(render(&t, -1), 0);
	CHECK_STR(out, outlen, "\"2026-11-26T22:10:35Z\"");
	t.nanos = 500000000;
	render(&t, -1);
	CHECK_STR(out, outlen, "\"2026-11-26T22:10:35.500Z\"");
	t.nanos = 1000;
	render(&t, -1);
	CHECK_STR(out, outlen, "\"2026-11-26T22:10:35.000001Z\"");
	t.nanos = 1;
	render(&t, -1);
	CHECK_STR(out, outlen, "\"2026-11-26T22:10:35.000000001Z\"");
}

TEST(wrappers_are_bare_values)
{
	Google__Protobuf__BoolValue bv = GOOGLE__PROTOBUF__BOOL_VALUE__INIT;
	CHECK_EQ(render(&bv, 2), 0); /* a default still prints: the wrapper says it was set */
	CHECK_STR(out, outlen, "false");
	bv.value = 1;
	render(&bv, -1);
	CHECK_STR(out, outlen, "true");

	Google__Protobuf__UInt32Value u32 = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
	u32.value = 4294967295u;
	render(&u32, -1);
	CHECK_STR(out, outlen, "4294967295");

	Google__Protobuf__UInt64Value u64 = GOOGLE__PROTOBUF__UINT64_VALUE__INIT;
	u64.value = 18446744073709551615ull;
	render(&u64, -1);
	CHECK_STR(out, outlen, "\"18446744073709551615\"");

	Google__Protobuf__Int64Value i64 = GOOGLE__PROTOBUF__INT64_VALUE__INIT;
	i64.value = -9223372036854775807LL - 1;
	render(&i64, -1);
	CHECK_STR(out, outlen, "\"-9223372036854775808\"");

	Google__Protobuf__DoubleValue dv = GOOGLE__PROTOBUF__DOUBLE_VALUE__INIT;
	render(&dv, -1);
	CHECK_STR(out, outlen, "0");
	dv.value = 0.1;
	render(&dv, -1);
	CHECK_STR(out, outlen, "0.1");
	dv.value = 1.5e300;
	render(&dv, -1);
	CHECK_STR(out, outlen, "1.5e+300");
	dv.value = NAN;
	render(&dv, -1);
	CHECK_STR(out, outlen, "\"NaN\"");
	dv.value = -INFINITY;
	render(&dv, -1);
	CHECK_STR(out, outlen, "\"-Infinity\"");
	dv.value = INFINITY;
	render(&dv, -1);
	CHECK_STR(out, outlen, "\"Infinity\"");
}

TEST(numbers_round_trip_shortest)
{
	Google__Protobuf__Value v = num(123456789012.0);
	render(&v, -1);
	CHECK_STR(out, outlen, "123456789012");
	v = num(-2.5);
	render(&v, -1);
	CHECK_STR(out, outlen, "-2.5");
	v = num(0.1 + 0.2); /* needs all 17 digits to read back */
	render(&v, -1);
	CHECK_STR(out, outlen, "0.30000000000000004");
	v = num(1e21);
	render(&v, -1);
	CHECK_STR(out, outlen, "1e+21");
	CHECK(strtod(out, NULL) == 1e21);
}

/* {"a": 1, "b": {"c": [true, null, "x\"y"]}, "e": {}} built by hand. Each test builds its own
 * copy on the stack; the macro keeps them identical. */
#define NESTED_STRUCT(top)                                                                  \
	Google__Protobuf__Value t_ = GOOGLE__PROTOBUF__VALUE__INIT, n_ = t_, s_ = t_, lv_ = t_, \
		sv_ = t_, ev_ = t_, one_ = num(1);                                                 \
	t_.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;                               \
	t_.bool_value = 1;                                                                     \
	n_.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;                               \
	s_.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;                             \
	s_.string_value = "x\"y";                                                              \
	Google__Protobuf__Value *items_[] = {&t_, &n_, &s_};                                   \
	Google__Protobuf__ListValue l_ = GOOGLE__PROTOBUF__LIST_VALUE__INIT;                   \
	l_.n_values = 3;                                                                       \
	l_.values = items_;                                                                    \
	lv_.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;                              \
	lv_.list_value = &l_;                                                                  \
	Google__Protobuf__Struct__FieldsEntry ec_ = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT, \
		ea_ = ec_, eb_ = ec_, ee_ = ec_;                                                   \
	ec_.key = "c";                                                                         \
	ec_.value = &lv_;                                                                      \
	Google__Protobuf__Struct__FieldsEntry *inner_e_[] = {&ec_};                            \
	Google__Protobuf__Struct inner_ = GOOGLE__PROTOBUF__STRUCT__INIT, empty_ = inner_,      \
		top = inner_;                                                                      \
	inner_.n_fields = 1;                                                                   \
	inner_.fields = inner_e_;                                                              \
	sv_.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;                            \
	sv_.struct_value = &inner_;                                                            \
	ev_.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;                            \
	ev_.struct_value = &empty_;                                                            \
	ea_.key = "a";                                                                         \
	ea_.value = &one_;                                                                     \
	eb_.key = "b";                                                                         \
	eb_.value = &sv_;                                                                      \
	ee_.key = "e";                                                                         \
	ee_.value = &ev_;                                                                      \
	Google__Protobuf__Struct__FieldsEntry *top_e_[] = {&ea_, &eb_, &ee_};                  \
	top.n_fields = 3;                                                                      \
	top.fields = top_e_

TEST(struct_nesting_compact)
{
	NESTED_STRUCT(st);
	CHECK_EQ(render(&st, -1), 0);
	CHECK_STR(out, outlen, "{\"a\":1,\"b\":{\"c\":[true,null,\"x\\\"y\"]},\"e\":{}}");
}

TEST(struct_nesting_indented)
{
	NESTED_STRUCT(st);
	CHECK_EQ(render(&st, 2), 0);
	CHECK_STR(out, outlen,
	          "{\n"
	          "  \"a\": 1,\n"
	          "  \"b\": {\n"
	          "    \"c\": [\n"
	          "      true,\n"
	          "      null,\n"
	          "      \"x\\\"y\"\n"
	          "    ]\n"
	          "  },\n"
	          "  \"e\": {}\n"
	          "}");
	/* indent 0 breaks lines without indenting */
	CHECK_EQ(render(st.fields[0]->value, 0), 0);
	CHECK_STR(out, outlen, "1");
	CHECK_EQ(render(&l_, 0), 0);
	CHECK_STR(out, outlen, "[\ntrue,\nnull,\n\"x\\\"y\"\n]");
}

TEST(struct_edges)
{
	Google__Protobuf__Struct empty = GOOGLE__PROTOBUF__STRUCT__INIT;
	CHECK_EQ(render(&empty, 2), 0);
	CHECK_STR(out, outlen, "{}");

	Google__Protobuf__ListValue l = GOOGLE__PROTOBUF__LIST_VALUE__INIT;
	render(&l, 2);
	CHECK_STR(out, outlen, "[]");

	Google__Protobuf__Value unset = GOOGLE__PROTOBUF__VALUE__INIT;
	render(&unset, -1);
	CHECK_STR(out, outlen, "null");

	/* a Value set to an empty string or false still prints: the oneof says it was set */
	Google__Protobuf__Value s = GOOGLE__PROTOBUF__VALUE__INIT, f = s;
	s.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
	s.string_value = "";
	render(&s, -1);
	CHECK_STR(out, outlen, "\"\"");
	f.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
	render(&f, -1);
	CHECK_STR(out, outlen, "false");

	/* a map entry without a value */
	Google__Protobuf__Struct__FieldsEntry e = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
	Google__Protobuf__Struct__FieldsEntry *ents[] = {&e};
	Google__Protobuf__Struct st = GOOGLE__PROTOBUF__STRUCT__INIT;
	e.key = "k\tey";
	st.n_fields = 1;
	st.fields = ents;
	render(&st, -1);
	CHECK_STR(out, outlen, "{\"k\\tey\":null}");
}

TEST(deep_nesting_is_refused)
{
	enum { N = 200 };
	static Google__Protobuf__Value vals[N];
	static Google__Protobuf__ListValue lists[N];
	static Google__Protobuf__Value *ptrs[N];
	for (int i = 0; i < N; i++) {
		google__protobuf__value__init(&vals[i]);
		google__protobuf__list_value__init(&lists[i]);
		vals[i].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
		vals[i].list_value = &lists[i];
		if (i + 1 < N) {
			ptrs[i] = &vals[i + 1];
			lists[i].n_values = 1;
			lists[i].values = &ptrs[i];
		}
	}
	CHECK_EQ(render(&vals[0], -1), -ELOOP);
	/* 40 Values and 40 ListValues: within the limit */
	CHECK_EQ(render(&vals[N - 40], -1), 0);
	CHECK_EQ(outlen, 39 * 2 + 2);
}

#define NOPE "type.googleapis.com/weft.test.NoSuchType"
#define DUR_URL "type.googleapis.com/google.protobuf.Duration"

TEST(any_of_unknown_type_keeps_bytes)
{
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	uint8_t raw[] = {1, 2, 3, 0xfb, 0xff};
	any.type_url = "type.googleapis.com/weft.test.NoSuchType";
	any.value.data = raw;
	any.value.len = 3;
	CHECK_EQ(render(&any, -1), 0);
	CHECK_STR(out, outlen, "{\"@type\":\"" NOPE "\",\"value\":\"AQID\"}");
	any.value.len = 5;
	render(&any, -1);
	CHECK_STR(out, outlen, "{\"@type\":\"" NOPE "\",\"value\":\"AQID+/8=\"}");
	any.value.len = 4;
	render(&any, 2);
	CHECK_STR(out, outlen,
	          "{\n  \"@type\": \"" NOPE "\",\n  \"value\": \"AQID+w==\"\n}");
	any.value.len = 0;
	render(&any, -1);
	CHECK_STR(out, outlen, "{\"@type\":\"" NOPE "\",\"value\":\"\"}");

	/* a known type whose bytes do not decode: kept as bytes too */
	uint8_t bad[] = {0x08};
	any.type_url = "type.googleapis.com/google.protobuf.Duration";
	any.value.data = bad;
	any.value.len = 1;
	render(&any, -1);
	CHECK_STR(out, outlen, "{\"@type\":\"" DUR_URL "\",\"value\":\"CA==\"}");

	Google__Protobuf__Any empty = GOOGLE__PROTOBUF__ANY__INIT;
	render(&empty, 2);
	CHECK_STR(out, outlen, "{}");
}

TEST(any_of_known_types_is_decoded)
{
	Google__Protobuf__Duration d = GOOGLE__PROTOBUF__DURATION__INIT;
	uint8_t dbuf[32], abuf[128];
	d.seconds = 1;
	d.nanos = 500000000;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = "type.googleapis.com/google.protobuf.Duration";
	any.value.data = dbuf;
	any.value.len = google__protobuf__duration__pack(&d, dbuf);
	CHECK_EQ(render(&any, -1), 0);
	CHECK_STR(out, outlen, "{\"@type\":\"" DUR_URL "\",\"value\":\"1.500s\"}");

	/* an Any inside an Any, pretty-printed */
	Google__Protobuf__Any outer = GOOGLE__PROTOBUF__ANY__INIT;
	outer.type_url = "type.googleapis.com/google.protobuf.Any";
	outer.value.data = abuf;
	outer.value.len = google__protobuf__any__pack(&any, abuf);
	CHECK_EQ(render(&outer, 2), 0);
	CHECK_STR(out, outlen,
	          "{\n"
	          "  \"@type\": \"type.googleapis.com/google.protobuf.Any\",\n"
	          "  \"value\": {\n"
	          "    \"@type\": \"type.googleapis.com/google.protobuf.Duration\",\n"
	          "    \"value\": \"1.500s\"\n"
	          "  }\n"
	          "}");

	/* a Struct payload */
	NESTED_STRUCT(st);
	uint8_t sbuf[256];
	CHECK(google__protobuf__struct__get_packed_size(&st) <= sizeof sbuf);
	any.type_url = "type.googleapis.com/google.protobuf.Struct";
	any.value.data = sbuf;
	any.value.len = google__protobuf__struct__pack(&st, sbuf);
	CHECK_EQ(render(&any, -1), 0);
	CHECK_STR(out, outlen,
	          "{\"@type\":\"type.googleapis.com/google.protobuf.Struct\","
	          "\"value\":{\"a\":1,\"b\":{\"c\":[true,null,\"x\\\"y\"]},\"e\":{}}}");
}

TEST_MAIN("xds.json",
          T(jbuf_grows_and_stays_terminated),
          T(string_escaping),
          T(duration_formats),
          T(timestamp_formats),
          T(wrappers_are_bare_values),
          T(numbers_round_trip_shortest),
          T(struct_nesting_compact),
          T(struct_nesting_indented),
          T(struct_edges),
          T(deep_nesting_is_refused),
          T(any_of_unknown_type_keeps_bytes),
          T(any_of_known_types_is_decoded))
