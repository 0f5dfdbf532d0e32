/* Unit tests for src/xds/yaml.c: the YAML -> protobuf mapper behind every config file, driven
 * through the real generated Envoy types. Errors are compared whole, so that a change in
 * file:line:column, field path or wording shows up here. */
#include "test.h"
#include "xds/cfgdoc.h"
#include "xds/json.h"
#include "xds/registry.h"

#include "envoy/admin/v3/config_dump.pb-c.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/core/v3/protocol.pb-c.h"
#include "envoy/config/route/v3/route.pb-c.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

typedef Envoy__Config__Bootstrap__V3__Bootstrap Bootstrap;
typedef Envoy__Config__Cluster__V3__Cluster Cluster;
typedef Envoy__Config__Route__V3__RouteConfiguration RouteConfiguration;
typedef Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy TcpProxy;

#define BOOTSTRAP (&envoy__config__bootstrap__v3__bootstrap__descriptor)
#define CLUSTER (&envoy__config__cluster__v3__cluster__descriptor)
#define ROUTES (&envoy__config__route__v3__route_configuration__descriptor)

/* The document of the last load; freed by the next one (and still reachable at exit). */
static struct wf_cfgdoc *doc;
static char err[1024];

static int load(const ProtobufCMessageDescriptor *d, const char *text)
{
	wf_cfgdoc_free(doc);
	doc = wf_cfgdoc_new("t.yaml");
	strcpy(err, "(untouched)");
	int rc = wf_yaml_load_string(doc, d, text, strlen(text), err, sizeof err);
	if (rc == 0)
		err[0] = '\0';
	return rc;
}

/* Loads text as a Cluster and returns it, or NULL (printing why). */
static Cluster *cluster(const char *text)
{
	if (load(CLUSTER, text) != 0) {
		printf("  unexpected error: %s\n", err);
		return NULL;
	}
	return (Cluster *)wf_cfgdoc_root(doc);
}

/* A message in a char array is exactly lit (CHECK_STR wants a pointer it can test). */
#define CHECK_MSG(buf, lit)                                                                \
	do {                                                                                   \
		const char *msg_ = (buf);                                                          \
		CHECK_STR(msg_, strlen(msg_), lit);                                                \
	} while (0)

/* The load failed with exactly this message. */
#define CHECK_REFUSED(d, text, msg)                                                        \
	do {                                                                                   \
		CHECK_EQ(load(d, text), -EINVAL);                                                  \
		CHECK(wf_cfgdoc_root(doc) == NULL);                                                \
		CHECK_MSG(err, msg);                                                               \
	} while (0)

#define DURATION_HINT "(write seconds with an 's' suffix, e.g. \"5s\" or \"0.25s\")"

/* ---- timestamps ---------------------------------------------------------------------------- */

TEST(timestamps_rfc3339)
{
	const ProtobufCMessageDescriptor *d = &envoy__admin__v3__bootstrap_config_dump__descriptor;
	static const struct { const char *text; int64_t sec; int32_t ns; } ok[] = {
	    {"2026-11-26T22:10:35Z", 1795731035, 0},
	    {"2026-11-26T22:10:35.5Z", 1795731035, 500000000},
	    {"2026-11-26T22:10:35.000000001Z", 1795731035, 1},
	    {"2026-11-26T23:10:35+01:00", 1795731035, 0},
	    {"1970-01-01T00:00:00Z", 0, 0},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text), "last_updated: \"%s\"\n", ok[i].text);
		CHECK_EQ(load(d, text), 0);
		const Envoy__Admin__V3__BootstrapConfigDump *b = (const void *)wf_cfgdoc_root(doc);
		CHECK(b && b->last_updated);
		CHECK_EQ(b->last_updated->seconds, ok[i].sec);
		CHECK_EQ(b->last_updated->nanos, ok[i].ns);
	}
	CHECK_REFUSED(d, "last_updated: 2026-11-26 22:10:35\n",
	              "t.yaml:1:15: last_updated: '2026-11-26 22:10:35' is not a timestamp (RFC 3339, e.g. "
	              "\"2026-11-26T22:10:35Z\")");
	CHECK_REFUSED(d, "last_updated: \"2026-13-01T00:00:00Z\"\n",
	              "t.yaml:1:15: last_updated: '2026-13-01T00:00:00Z' is not a timestamp (RFC 3339, e.g. "
	              "\"2026-11-26T22:10:35Z\")");
	CHECK_REFUSED(d, "last_updated: \"2026-11-26T22:10:35.Z\"\n",
	              "t.yaml:1:15: last_updated: '2026-11-26T22:10:35.Z' is not a timestamp (RFC 3339, e.g. "
	              "\"2026-11-26T22:10:35Z\")");
}

/* ---- durations --------------------------------------------------------------------------- */

TEST(duration_text_forms)
{
	static const struct {
		const char *yaml;
		int64_t s;
		int32_t ns;
	} cases[] = {
		{"connect_timeout: 5s\n", 5, 0},
		{"connect_timeout: 0.25s\n", 0, 250000000},
		{"connect_timeout: 1.000000001s\n", 1, 1},
		{"connect_timeout: \"0.5s\"\n", 0, 500000000},
		{"connect_timeout: 0s\n", 0, 0},
		{"connect_timeout: 3600.5s\n", 3600, 500000000},
		/* digits past nanoseconds are dropped, not rounded */
		{"connect_timeout: 1.1234567899s\n", 1, 123456789},
		/* proto3 allows negative durations; both parts carry the sign */
		{"connect_timeout: -1s\n", -1, 0},
		{"connect_timeout: -1.5s\n", -1, -500000000},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		Cluster *c = cluster(cases[i].yaml);
		CHECK(c != NULL);
		CHECK(c->connect_timeout != NULL);
		CHECK_EQ(c->connect_timeout->seconds, cases[i].s);
		CHECK_EQ(c->connect_timeout->nanos, cases[i].ns);
	}
}

TEST(duration_as_seconds_and_nanos)
{
	Cluster *c = cluster("connect_timeout: {seconds: 3, nanos: 5}\n");
	CHECK(c != NULL);
	CHECK_EQ(c->connect_timeout->seconds, 3);
	CHECK_EQ(c->connect_timeout->nanos, 5);
	c = cluster("connect_timeout:\n  seconds: 7\n");
	CHECK(c != NULL);
	CHECK_EQ(c->connect_timeout->seconds, 7);
	CHECK_EQ(c->connect_timeout->nanos, 0);
	CHECK_REFUSED(CLUSTER, "connect_timeout: {seconds: 1, millis: 5}\n",
	              "t.yaml:1:31: connect_timeout: unknown or unsupported field 'millis' in "
	              "google.protobuf.Duration");
	CHECK_REFUSED(CLUSTER, "connect_timeout: [1]\n",
	              "t.yaml:1:18: connect_timeout: expected a map (google.protobuf.Duration), got a list");
}

TEST(duration_bad_text)
{
	CHECK_REFUSED(CLUSTER, "connect_timeout: 5\n",
	              "t.yaml:1:18: connect_timeout: '5' is not a duration " DURATION_HINT);
	CHECK_REFUSED(CLUSTER, "connect_timeout: 5ms\n",
	              "t.yaml:1:18: connect_timeout: '5ms' is not a duration " DURATION_HINT);
	static const char *const bad[] = {
		"connect_timeout: s\n",    "connect_timeout: -s\n",     "connect_timeout: 1.s\n",
		"connect_timeout: 1e3s\n", "connect_timeout: \"5 s\"\n", "connect_timeout: 5S\n",
		"connect_timeout: 1m\n",   "connect_timeout: +1s\n",    "connect_timeout: 1.5.5s\n",
		"connect_timeout: \"\"\n", "connect_timeout: 99999999999999999999s\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (load(CLUSTER, bad[i]) != -EINVAL) {
			printf("  accepted: %s", bad[i]);
			CHECK(0);
		}
		CHECK(strstr(err, "is not a duration") != NULL);
	}
}

/* ---- wrappers ---------------------------------------------------------------------------- */

TEST(wrappers_as_bare_values)
{
	Cluster *c = cluster("per_connection_buffer_limit_bytes: 32768\n");
	CHECK(c != NULL);
	CHECK(c->per_connection_buffer_limit_bytes != NULL);
	CHECK_EQ(c->per_connection_buffer_limit_bytes->value, 32768);
	/* the wrapper's own {value: ...} form works too */
	c = cluster("per_connection_buffer_limit_bytes: {value: 7}\n");
	CHECK(c != NULL);
	CHECK_EQ(c->per_connection_buffer_limit_bytes->value, 7);
	/* 0 is set, not absent: that is what a wrapper is for */
	c = cluster("per_connection_buffer_limit_bytes: 0\n");
	CHECK(c != NULL);
	CHECK(c->per_connection_buffer_limit_bytes != NULL);
	CHECK_EQ(c->per_connection_buffer_limit_bytes->value, 0);
	c = cluster("name: x\n");
	CHECK(c != NULL);
	CHECK(c->per_connection_buffer_limit_bytes == NULL);

	CHECK_EQ(load(ROUTES, "validate_clusters: false\n"), 0);
	RouteConfiguration *rc = (RouteConfiguration *)wf_cfgdoc_root(doc);
	CHECK(rc->validate_clusters != NULL);
	CHECK_EQ(rc->validate_clusters->value, 0);
	CHECK_EQ(load(ROUTES, "validate_clusters: True\n"), 0);
	rc = (RouteConfiguration *)wf_cfgdoc_root(doc);
	CHECK_EQ(rc->validate_clusters->value, 1);

	CHECK_REFUSED(ROUTES, "validate_clusters: yes\n",
	              "t.yaml:1:20: validate_clusters: expected true or false");
	CHECK_REFUSED(CLUSTER, "per_connection_buffer_limit_bytes: big\n",
	              "t.yaml:1:36: per_connection_buffer_limit_bytes: 'big' is not a valid number "
	              "here (0..4294967295)");
}

/* ---- enums ------------------------------------------------------------------------------- */

#define LB_NAMES "ROUND_ROBIN, LEAST_REQUEST, RING_HASH, RANDOM, MAGLEV, CLUSTER_PROVIDED, " \
                 "LOAD_BALANCING_POLICY_CONFIG"

TEST(enums_by_name_and_number)
{
	Cluster *c = cluster("lb_policy: MAGLEV\ndns_lookup_family: V4_ONLY\n");
	CHECK(c != NULL);
	CHECK_EQ(c->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__MAGLEV);
	CHECK_EQ(c->dns_lookup_family, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DNS_LOOKUP_FAMILY__V4_ONLY);
	c = cluster("lb_policy: 2\n");
	CHECK(c != NULL);
	CHECK_EQ(c->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RING_HASH);
	c = cluster("lb_policy: \"RANDOM\"\n");
	CHECK(c != NULL);
	CHECK_EQ(c->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RANDOM);
	/* an enum inside a oneof sets the case */
	c = cluster("type: STRICT_DNS\n");
	CHECK(c != NULL);
	CHECK_EQ(c->cluster_discovery_type_case,
	         ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE);
	CHECK_EQ(c->type, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STRICT_DNS);
	c = cluster("name: x\n");
	CHECK(c != NULL);
	CHECK_EQ(c->cluster_discovery_type_case,
	         ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE__NOT_SET);
}

TEST(enum_bad_values_list_the_names)
{
	CHECK_REFUSED(CLUSTER, "lb_policy: ROUND_ROBINN\n",
	              "t.yaml:1:12: lb_policy: 'ROUND_ROBINN' is not a valid value (one of: " LB_NAMES ")");
	/* names are case-sensitive, as in Envoy */
	CHECK_REFUSED(CLUSTER, "lb_policy: maglev\n",
	              "t.yaml:1:12: lb_policy: 'maglev' is not a valid value (one of: " LB_NAMES ")");
	/* 4 is reserved (ORIGINAL_DST_LB): not a value of this enum */
	CHECK_REFUSED(CLUSTER, "lb_policy: 4\n",
	              "t.yaml:1:12: lb_policy: '4' is not a valid value (one of: " LB_NAMES ")");
	CHECK_REFUSED(CLUSTER, "lb_policy: -1\n",
	              "t.yaml:1:12: lb_policy: '-1' is not a valid value (one of: " LB_NAMES ")");
	CHECK_REFUSED(CLUSTER, "lb_policy: {a: 1}\n",
	              "t.yaml:1:12: lb_policy: expected one of envoy.config.cluster.v3.Cluster.LbPolicy's "
	              "names, got a map");
}

/* ---- oneofs ------------------------------------------------------------------------------ */

TEST(oneof_members_are_alternatives)
{
	CHECK_REFUSED(BOOTSTRAP,
	              "admin:\n"
	              "  address:\n"
	              "    socket_address: {address: 1.2.3.4, port_value: 1}\n"
	              "    pipe: {path: /tmp/s}\n",
	              "t.yaml:4:5: admin.address.pipe: 'socket_address' and 'pipe' are alternatives: set only one");
	CHECK_REFUSED(ROUTES,
	              "virtual_hosts:\n"
	              "- routes:\n"
	              "  - match: {prefix: /, path: /x}\n",
	              "t.yaml:3:24: virtual_hosts[0].routes[0].match.path: 'prefix' and 'path' are "
	              "alternatives: set only one");
	/* one member alone is fine, and sets the case */
	CHECK_EQ(load(BOOTSTRAP, "admin: {address: {pipe: {path: /tmp/s, mode: 384}}}\n"), 0);
	Bootstrap *b = (Bootstrap *)wf_cfgdoc_root(doc);
	CHECK_EQ(b->admin->address->address_case, ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_PIPE);
	CHECK_STR(b->admin->address->pipe->path, strlen(b->admin->address->pipe->path), "/tmp/s");
	CHECK_EQ(b->admin->address->pipe->mode, 384);
}

/* ---- repeated and map fields ------------------------------------------------------------- */

TEST(repeated_fields)
{
	CHECK_EQ(load(ROUTES,
	              "virtual_hosts:\n"
	              "- name: a\n"
	              "  domains: [a.example, \"*.b.example\"]\n"
	              "  routes:\n"
	              "  - match: {prefix: /x}\n"
	              "    route: {cluster: cx}\n"
	              "  - match: {path: /y}\n"
	              "    direct_response: {status: 204}\n"
	              "- name: b\n"
	              "  domains: []\n"
	              "response_headers_to_remove:\n"
	              "- x-one\n"
	              "- x-two\n"),
	         0);
	RouteConfiguration *rc = (RouteConfiguration *)wf_cfgdoc_root(doc);
	CHECK_EQ(rc->n_virtual_hosts, 2);
	Envoy__Config__Route__V3__VirtualHost *vh = rc->virtual_hosts[0];
	CHECK_EQ(vh->n_domains, 2);
	CHECK_STR(vh->domains[1], strlen(vh->domains[1]), "*.b.example");
	CHECK_EQ(vh->n_routes, 2);
	CHECK_EQ(vh->routes[0]->action_case, ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE);
	CHECK_STR(vh->routes[0]->route->cluster, strlen(vh->routes[0]->route->cluster), "cx");
	CHECK_EQ(vh->routes[1]->action_case, ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_DIRECT_RESPONSE);
	CHECK_EQ(vh->routes[1]->direct_response->status, 204);
	CHECK_EQ(rc->virtual_hosts[1]->n_domains, 0);
	CHECK_EQ(rc->n_response_headers_to_remove, 2);
	CHECK_STR(rc->response_headers_to_remove[1], strlen(rc->response_headers_to_remove[1]), "x-two");

	CHECK_REFUSED(ROUTES, "response_headers_to_remove: x-one\n",
	              "t.yaml:1:29: response_headers_to_remove: expected a list, got a scalar");
	/* the error inside a list names the element */
	CHECK_REFUSED(ROUTES, "virtual_hosts:\n- name: a\n- name: [b]\n",
	              "t.yaml:3:9: virtual_hosts[1].name: expected a string, got a list");
}

TEST(struct_fields_take_any_yaml)
{
	CHECK_EQ(load(BOOTSTRAP,
	              "node:\n"
	              "  id: n1\n"
	              "  metadata:\n"
	              "    num: 1.5\n"
	              "    str: hello\n"
	              "    quoted: \"true\"\n"
	              "    yes: true\n"
	              "    none: ~\n"
	              "    list: [1, a, {k: v}]\n"
	              "    sub: {x: -2}\n"),
	         0);
	Bootstrap *b = (Bootstrap *)wf_cfgdoc_root(doc);
	Google__Protobuf__Struct *md = b->node->metadata;
	CHECK(md != NULL);
	CHECK_EQ(md->n_fields, 7);
	const char *keys[] = {"num", "str", "quoted", "yes", "none", "list", "sub"};
	const int kinds[] = {
		GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE, GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE,
		GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE, GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE,
		GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE,   GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE,
		GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE,
	};
	for (size_t i = 0; i < 7; i++) {
		CHECK(strcmp(md->fields[i]->key, keys[i]) == 0);
		CHECK_EQ(md->fields[i]->value->kind_case, kinds[i]);
	}
	CHECK(md->fields[0]->value->number_value == 1.5);
	CHECK(strcmp(md->fields[2]->value->string_value, "true") == 0);
	CHECK_EQ(md->fields[3]->value->bool_value, 1);
	Google__Protobuf__ListValue *l = md->fields[5]->value->list_value;
	CHECK_EQ(l->n_values, 3);
	CHECK_EQ(l->values[2]->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE);
	CHECK(md->fields[6]->value->struct_value->fields[0]->value->number_value == -2);

	/* the printer agrees with what was decoded */
	struct wf_jbuf j = {0};
	CHECK_EQ(wf_json_message(&j, (ProtobufCMessage *)md, -1), 0);
	int same = strcmp(j.p, "{\"num\":1.5,\"str\":\"hello\",\"quoted\":\"true\",\"yes\":true,"
	                       "\"none\":null,\"list\":[1,\"a\",{\"k\":\"v\"}],\"sub\":{\"x\":-2}}") == 0;
	if (!same)
		printf("  json: %s\n", j.p);
	free(j.p);
	CHECK(same);

	CHECK_REFUSED(BOOTSTRAP, "node: {metadata: [1]}\n",
	              "t.yaml:1:18: node.metadata: expected a map, got a list");
	CHECK_REFUSED(BOOTSTRAP, "node: {metadata: {[a]: 1}}\n",
	              "t.yaml:1:19: node.metadata: map keys must be strings");
}

TEST(map_of_any_entries)
{
	Cluster *c = cluster(
	    "name: c\n"
	    "typed_extension_protocol_options:\n"
	    "  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n"
	    "    \"@type\": type.googleapis.com/envoy.config.core.v3.HttpProtocolOptions\n"
	    "    idle_timeout: 30s\n"
	    "  other:\n"
	    "    \"@type\": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate\n");
	CHECK(c != NULL);
	CHECK_EQ(c->n_typed_extension_protocol_options, 2);
	Envoy__Config__Cluster__V3__Cluster__TypedExtensionProtocolOptionsEntry *e =
	    c->typed_extension_protocol_options[0];
	CHECK_STR(e->key, strlen(e->key), "envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
	CHECK_STR(e->value->type_url, strlen(e->value->type_url),
	          "type.googleapis.com/envoy.config.core.v3.HttpProtocolOptions");
	char aerr[256];
	ProtobufCMessage *inner = wf_cfgdoc_any(doc, (ProtobufCMessage *)e->value, aerr, sizeof aerr);
	CHECK(inner != NULL);
	CHECK(inner->descriptor == &envoy__config__core__v3__http_protocol_options__descriptor);
	CHECK_EQ(((Envoy__Config__Core__V3__HttpProtocolOptions *)inner)->idle_timeout->seconds, 30);
	CHECK_STR(c->typed_extension_protocol_options[1]->key,
	          strlen(c->typed_extension_protocol_options[1]->key), "other");

	CHECK_REFUSED(CLUSTER,
	              "typed_extension_protocol_options:\n"
	              "  x: {\"@type\": type.googleapis.com/envoy.config.core.v3.HttpProtocolOptions, "
	              "idle_timeout: 1}\n",
	              "t.yaml:2:92: typed_extension_protocol_options.x.idle_timeout: '1' is not a "
	              "duration " DURATION_HINT);
	CHECK_REFUSED(CLUSTER, "typed_extension_protocol_options: [a]\n",
	              "t.yaml:1:35: typed_extension_protocol_options: expected a map, got a list");
	CHECK_REFUSED(CLUSTER, "typed_extension_protocol_options: {x: 1}\n",
	              "t.yaml:1:39: typed_extension_protocol_options.x: expected a map with \"@type\", "
	              "got a scalar");
}

/* ---- bytes ------------------------------------------------------------------------------- */

#define BODY(b) "virtual_hosts: [{routes: [{direct_response: {status: 200, body: {inline_bytes: " b "}}}]}]\n"

/* The body bytes of the first route, after loading BODY(...). */
static const ProtobufCBinaryData *body_bytes(void)
{
	RouteConfiguration *rc = (RouteConfiguration *)wf_cfgdoc_root(doc);
	return &rc->virtual_hosts[0]->routes[0]->direct_response->body->inline_bytes;
}

TEST(bytes_are_base64)
{
	static const struct {
		const char *b64, *raw;
	} ok[] = {
		{"aGVsbG8=", "hello"},   {"aGVsbG8", "hello"},  /* padding optional */
		{"aGk=", "hi"},          {"aGk", "hi"},         {"YQ==", "a"}, {"\"\"", ""},
		{"\"+/+/\"", "\xfb\xff\xbf"}, {"\"-_-_\"", "\xfb\xff\xbf"}, /* both alphabets */
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		char y[256];
		snprintf(y, sizeof y, BODY("%s"), ok[i].b64);
		if (load(ROUTES, y) != 0) {
			printf("  %s: %s\n", ok[i].b64, err);
			CHECK(0);
		}
		const ProtobufCBinaryData *bd = body_bytes();
		CHECK_EQ(bd->len, strlen(ok[i].raw));
		CHECK(memcmp(bd->data, ok[i].raw, bd->len) == 0);
	}
	CHECK_REFUSED(ROUTES, BODY("hello"),
	              "t.yaml:1:80: virtual_hosts[0].routes[0].direct_response.body.inline_bytes: 'hello' "
	              "is not valid base64 (bytes fields are base64, as in Envoy's JSON/YAML)");
	static const char *const bad[] = {"a", "\"a=b=\"", "\"ab cd\"", "\"a*bc\"", "\"aGVsbG8=x\""};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char y[256];
		snprintf(y, sizeof y, BODY("%s"), bad[i]);
		if (load(ROUTES, y) != -EINVAL) {
			printf("  accepted %s\n", bad[i]);
			CHECK(0);
		}
		CHECK(strstr(err, "is not valid base64") != NULL);
	}
	CHECK_REFUSED(ROUTES, BODY("[aGk=]"),
	              "t.yaml:1:80: virtual_hosts[0].routes[0].direct_response.body.inline_bytes: expected "
	              "a base64 string, got a list");
}

/* ---- field names, nulls, duplicates, unknowns ------------------------------------------- */

TEST(lower_camel_case_keys)
{
	Cluster *c = cluster("connectTimeout: 2s\nlbPolicy: RANDOM\nperConnectionBufferLimitBytes: 9\n"
	                     "loadAssignment: {clusterName: la}\n");
	CHECK(c != NULL);
	CHECK_EQ(c->connect_timeout->seconds, 2);
	CHECK_EQ(c->lb_policy, ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RANDOM);
	CHECK_EQ(c->per_connection_buffer_limit_bytes->value, 9);
	CHECK_STR(c->load_assignment->cluster_name, strlen(c->load_assignment->cluster_name), "la");
	/* errors name the field as the file spells it */
	CHECK_REFUSED(CLUSTER, "connectTimeout: 5\n",
	              "t.yaml:1:17: connectTimeout: '5' is not a duration " DURATION_HINT);
	CHECK_REFUSED(CLUSTER, "loadAssignment: {clusterName: la, endpoints: 3}\n",
	              "t.yaml:1:46: loadAssignment.endpoints: expected a list, got a scalar");
	/* only lowerCamelCase maps: other spellings are unknown (but close enough to suggest) */
	CHECK_REFUSED(CLUSTER, "ConnectTimeout: 5s\n",
	              "t.yaml:1:1: unknown field 'ConnectTimeout' in envoy.config.cluster.v3.Cluster "
	              "(did you mean 'connect_timeout'?)");
}

TEST(null_values_leave_fields_unset)
{
	Cluster *c = cluster("name: ~\nconnect_timeout: null\nload_assignment:\nlb_policy: ~\n"
	                     "per_connection_buffer_limit_bytes: NULL\ntype: Null\n");
	CHECK(c != NULL);
	CHECK(c->name != NULL && c->name[0] == '\0');
	CHECK(c->connect_timeout == NULL);
	CHECK(c->load_assignment == NULL);
	CHECK(c->per_connection_buffer_limit_bytes == NULL);
	CHECK_EQ(c->lb_policy, 0);
	CHECK_EQ(c->cluster_discovery_type_case,
	         ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE__NOT_SET);
	/* a quoted "~" is a string, not a null */
	c = cluster("name: \"~\"\n");
	CHECK(c != NULL);
	CHECK_STR(c->name, strlen(c->name), "~");
	/* null members of a oneof do not count as set */
	CHECK_EQ(load(BOOTSTRAP, "admin: {address: {socket_address: ~, pipe: {path: p}}}\n"), 0);
}

TEST(duplicate_keys_refused)
{
	CHECK_REFUSED(CLUSTER, "name: a\nlb_policy: RANDOM\nname: b\n",
	              "t.yaml:3:1: field 'name' is set twice");
	CHECK_REFUSED(BOOTSTRAP,
	              "static_resources:\n"
	              "  clusters:\n"
	              "  - name: a\n"
	              "    connect_timeout: 1s\n"
	              "    connect_timeout: 2s\n",
	              "t.yaml:5:5: static_resources.clusters[0]: field 'connect_timeout' is set twice");
	/* even when the first one is null */
	CHECK_REFUSED(CLUSTER, "connect_timeout: ~\nconnect_timeout: 1s\n",
	              "t.yaml:2:1: field 'connect_timeout' is set twice");
}

TEST(unknown_fields_suggest_a_name)
{
	CHECK_REFUSED(BOOTSTRAP,
	              "static_resources:\n"
	              "  clusters:\n"
	              "  - name: a\n"
	              "    conect_timeout: 1s\n",
	              "t.yaml:4:5: static_resources.clusters[0]: unknown field 'conect_timeout' in "
	              "envoy.config.cluster.v3.Cluster (did you mean 'connect_timeout'?)");
	CHECK_REFUSED(CLUSTER, "lb_polcy: RANDOM\n",
	              "t.yaml:1:1: unknown field 'lb_polcy' in envoy.config.cluster.v3.Cluster (did "
	              "you mean 'lb_policy'?)");
	CHECK_REFUSED(CLUSTER, "zzz: 1\n",
	              "t.yaml:1:1: unknown or unsupported field 'zzz' in envoy.config.cluster.v3.Cluster");
	CHECK_REFUSED(CLUSTER, "[a]: 1\n",
	              "t.yaml:1:1: field names must be strings");
}

/* ---- kinds and numbers ------------------------------------------------------------------- */

TEST(wrong_kinds)
{
	CHECK_REFUSED(CLUSTER, "load_assignment: [1]\n",
	              "t.yaml:1:18: load_assignment: expected a map "
	              "(envoy.config.endpoint.v3.ClusterLoadAssignment), got a list");
	CHECK_REFUSED(CLUSTER, "load_assignment: abc\n",
	              "t.yaml:1:18: load_assignment: expected a map "
	              "(envoy.config.endpoint.v3.ClusterLoadAssignment), got a scalar");
	CHECK_REFUSED(CLUSTER, "name: {a: 1}\n", "t.yaml:1:7: name: expected a string, got a map");
	CHECK_REFUSED(CLUSTER, "name: [a]\n", "t.yaml:1:7: name: expected a string, got a list");
	CHECK_REFUSED(CLUSTER, "per_connection_buffer_limit_bytes: {value: [1]}\n",
	              "t.yaml:1:44: per_connection_buffer_limit_bytes.value: expected a number, got a list");
	CHECK_REFUSED(CLUSTER, "- name: a\n",
	              "t.yaml:1:1: expected a map (envoy.config.cluster.v3.Cluster), got a list");
	CHECK_REFUSED(CLUSTER, "just text\n",
	              "t.yaml:1:1: expected a map (envoy.config.cluster.v3.Cluster), got a scalar");
}

#define SOCK(port) "admin: {address: {socket_address: {address: a, port_value: " port "}}}\n"

static long long port_of(void)
{
	Bootstrap *b = (Bootstrap *)wf_cfgdoc_root(doc);
	return b->admin->address->socket_address->port_value;
}

TEST(integer_ranges)
{
	/* the mapper checks the proto type's range; a port's own range is the compiler's job */
	CHECK_EQ(load(BOOTSTRAP, SOCK("70000")), 0);
	CHECK_EQ(port_of(), 70000);
	CHECK_EQ(load(BOOTSTRAP, SOCK("4294967295")), 0);
	CHECK_EQ(port_of(), 4294967295LL);
	CHECK_EQ(load(BOOTSTRAP, SOCK("\"80\"")), 0);
	CHECK_EQ(port_of(), 80);
	CHECK_EQ(load(BOOTSTRAP, SOCK("007")), 0);
	CHECK_EQ(port_of(), 7);
	CHECK_REFUSED(BOOTSTRAP, SOCK("-1"),
	              "t.yaml:1:60: admin.address.socket_address.port_value: '-1' is not a valid number here");
	CHECK_REFUSED(BOOTSTRAP, SOCK("4294967296"),
	              "t.yaml:1:60: admin.address.socket_address.port_value: '4294967296' is not a valid "
	              "number here (0..4294967295)");
	static const char *const bad[] = {"+5", "0x10", "1.5", "1e3", "\" 5\"", "5x", "\"\"",
	                                  "99999999999999999999999"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char y[256];
		snprintf(y, sizeof y, SOCK("%s"), bad[i]);
		if (load(BOOTSTRAP, y) != -EINVAL) {
			printf("  accepted port %s\n", bad[i]);
			CHECK(0);
		}
		CHECK(strstr(err, "is not a valid number here") != NULL);
	}
	/* signed 64 and 32 bits: Duration.seconds and .nanos, then the Duration's own range */
	Cluster *c = cluster("connect_timeout: {seconds: -315576000000, nanos: -999999999}\n");
	CHECK(c != NULL);
	CHECK(c->connect_timeout->seconds == -315576000000LL);
	CHECK_EQ(c->connect_timeout->nanos, -999999999);
	CHECK_REFUSED(CLUSTER, "connect_timeout: {seconds: -9223372036854775808, nanos: -2147483648}\n",
	              "t.yaml:1:18: connect_timeout: not a valid duration (seconds within +-315576000000, nanos "
	              "within +-999999999 and of the same sign)");
	CHECK_REFUSED(CLUSTER, "connect_timeout: {seconds: 1, nanos: -5}\n",
	              "t.yaml:1:18: connect_timeout: not a valid duration (seconds within +-315576000000, nanos "
	              "within +-999999999 and of the same sign)");
	CHECK_REFUSED(CLUSTER, "connect_timeout: 999999999999s\n",
	              "t.yaml:1:18: connect_timeout: '999999999999s' is out of range (at most 315576000000s)");
	CHECK_REFUSED(CLUSTER, "connect_timeout: {nanos: 2147483648}\n",
	              "t.yaml:1:26: connect_timeout.nanos: '2147483648' is not a valid number here "
	              "(0..2147483647)");
	CHECK_REFUSED(CLUSTER, "connect_timeout: {nanos: -2147483649}\n",
	              "t.yaml:1:26: connect_timeout.nanos: '-2147483649' is not a valid number here");
	CHECK_REFUSED(CLUSTER, "connect_timeout: {seconds: 9223372036854775808}\n",
	              "t.yaml:1:28: connect_timeout.seconds: '9223372036854775808' is not a valid number "
	              "here (0..9223372036854775807)");
}

/* ---- Any ----------------------------------------------------------------------------------- */

#define FILTER_HEAD                                                                        \
	"static_resources:\n"                                                                  \
	"  listeners:\n"                                                                       \
	"  - name: l\n"                                                                        \
	"    filter_chains:\n"                                                                 \
	"    - filters:\n"                                                                     \
	"      - name: tcp\n"                                                                  \
	"        typed_config:\n"
#define TCP_TYPE "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
#define FILTER_PATH "static_resources.listeners[0].filter_chains[0].filters[0].typed_config"

static Google__Protobuf__Any *first_typed_config(void)
{
	Bootstrap *b = (Bootstrap *)wf_cfgdoc_root(doc);
	return b->static_resources->listeners[0]->filter_chains[0]->filters[0]->typed_config;
}

TEST(any_known_type_is_decoded_and_registered)
{
	CHECK_EQ(load(BOOTSTRAP, FILTER_HEAD
	              "          \"@type\": " TCP_TYPE "\n"
	              "          stat_prefix: tp\n"
	              "          cluster: up\n"
	              "          idle_timeout: 60s\n"),
	         0);
	Google__Protobuf__Any *any = first_typed_config();
	CHECK(any != NULL);
	CHECK_STR(any->type_url, strlen(any->type_url), TCP_TYPE);
	CHECK(any->value.len > 0);

	char aerr[256];
	TcpProxy *tp = (TcpProxy *)wf_cfgdoc_any(doc, &any->base, aerr, sizeof aerr);
	CHECK(tp != NULL);
	CHECK(tp->base.descriptor == &envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor);
	CHECK_STR(tp->stat_prefix, strlen(tp->stat_prefix), "tp");
	CHECK_STR(tp->cluster, strlen(tp->cluster), "up");
	CHECK_EQ(tp->idle_timeout->seconds, 60);
	/* registered: the same message every time, owned by the document */
	CHECK(wf_cfgdoc_any(doc, &any->base, aerr, sizeof aerr) == &tp->base);

	/* and the packed bytes decode to the same thing */
	TcpProxy *again = (TcpProxy *)protobuf_c_message_unpack(
	    &envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor, NULL,
	    any->value.len, any->value.data);
	CHECK(again != NULL);
	int same = strcmp(again->stat_prefix, "tp") == 0 && strcmp(again->cluster, "up") == 0 &&
	           again->idle_timeout && again->idle_timeout->seconds == 60;
	wf_proto_free(&again->base);
	CHECK(same);

	/* errors about the payload name its fields under typed_config */
	char e2[256];
	wf_cfg_err(doc, e2, sizeof e2, tp, "cluster", "no such cluster '%s'", tp->cluster);
	CHECK_MSG(e2, "t.yaml:10:11: " FILTER_PATH ".cluster: no such cluster 'up'");
}

TEST(any_with_an_empty_payload)
{
	CHECK_EQ(load(BOOTSTRAP, FILTER_HEAD "          \"@type\": " TCP_TYPE "\n"), 0);
	Google__Protobuf__Any *any = first_typed_config();
	CHECK_STR(any->type_url, strlen(any->type_url), TCP_TYPE);
	char aerr[256];
	CHECK(wf_cfgdoc_any(doc, &any->base, aerr, sizeof aerr) != NULL);
}

TEST(any_errors)
{
	CHECK_REFUSED(BOOTSTRAP, FILTER_HEAD "          \"@type\": type.googleapis.com/foo.v3.Bar\n",
	              "t.yaml:8:20: " FILTER_PATH ": unknown or unsupported type "
	              "'type.googleapis.com/foo.v3.Bar'");
	CHECK_REFUSED(BOOTSTRAP, FILTER_HEAD "          stat_prefix: tp\n",
	              "t.yaml:8:11: " FILTER_PATH ": missing \"@type\" (e.g. \"@type\": "
	              "type.googleapis.com/envoy...)");
	CHECK_REFUSED(BOOTSTRAP, FILTER_HEAD "          \"@type\": [" TCP_TYPE "]\n",
	              "t.yaml:8:11: " FILTER_PATH ": missing \"@type\" (e.g. \"@type\": "
	              "type.googleapis.com/envoy...)");
	CHECK_REFUSED(BOOTSTRAP,
	              FILTER_HEAD "          \"@type\": envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\n",
	              "t.yaml:8:20: " FILTER_PATH ": \"@type\" must start with type.googleapis.com/");
	CHECK_REFUSED(BOOTSTRAP, FILTER_HEAD "          " TCP_TYPE "\n",
	              "t.yaml:8:11: " FILTER_PATH ": expected a map with \"@type\", got a scalar");
	/* "@type" belongs to Any only */
	CHECK_REFUSED(BOOTSTRAP,
	              "static_resources:\n"
	              "  clusters:\n"
	              "  - \"@type\": type.googleapis.com/envoy.config.cluster.v3.Cluster\n"
	              "    name: a\n",
	              "t.yaml:3:5: static_resources.clusters[0]: unknown field '@type' in "
	              "envoy.config.cluster.v3.Cluster (did you mean 'type'?)");
}

TEST(nested_any_error_paths)
{
	/* a field inside typed_config */
	CHECK_REFUSED(BOOTSTRAP, FILTER_HEAD
	              "          \"@type\": " TCP_TYPE "\n"
	              "          stat_prefix: tp\n"
	              "          idle_timeout: 60\n",
	              "t.yaml:10:25: " FILTER_PATH ".idle_timeout: '60' is not a duration " DURATION_HINT);
	CHECK_REFUSED(BOOTSTRAP, FILTER_HEAD
	              "          \"@type\": " TCP_TYPE "\n"
	              "          stat_prefx: tp\n",
	              "t.yaml:9:11: " FILTER_PATH ": unknown field 'stat_prefx' in "
	              "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy (did you mean 'stat_prefix'?)");
	CHECK_REFUSED(BOOTSTRAP, FILTER_HEAD
	              "          \"@type\": " TCP_TYPE "\n"
	              "          weighted_clusters:\n"
	              "            clusters:\n"
	              "            - {name: a, weight: -3}\n",
	              "t.yaml:11:33: " FILTER_PATH ".weighted_clusters.clusters[0].weight: '-3' is not a "
	              "valid number here");
	/* an Any inside an Any's payload: the HCM's access log inside a listener filter */
	CHECK_REFUSED(BOOTSTRAP, FILTER_HEAD
	              "          \"@type\": type.googleapis.com/envoy.extensions.filters.network."
	              "http_connection_manager.v3.HttpConnectionManager\n"
	              "          http_filters:\n"
	              "          - name: r\n"
	              "            typed_config:\n"
	              "              \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n"
	              "              dynamic_stats: maybe\n",
	              "t.yaml:13:30: " FILTER_PATH ".http_filters[0].typed_config.dynamic_stats: "
	              "expected true or false");
}

TEST(any_unpacked_on_demand)
{
	/* an Any the mapper did not build (as from xDS) is unpacked on first use */
	Google__Protobuf__Duration d = GOOGLE__PROTOBUF__DURATION__INIT;
	d.seconds = 42;
	uint8_t buf[32];
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = "type.googleapis.com/google.protobuf.Duration";
	any.value.len = protobuf_c_message_pack(&d.base, buf);
	any.value.data = buf;
	wf_cfgdoc_free(doc);
	doc = wf_cfgdoc_new("x.yaml");
	char aerr[256];
	Google__Protobuf__Duration *got =
	    (Google__Protobuf__Duration *)wf_cfgdoc_any(doc, &any.base, aerr, sizeof aerr);
	CHECK(got != NULL);
	CHECK_EQ(got->seconds, 42);
	CHECK(wf_cfgdoc_any(doc, &any.base, aerr, sizeof aerr) == &got->base);

	Google__Protobuf__Any unk = GOOGLE__PROTOBUF__ANY__INIT;
	unk.type_url = "type.googleapis.com/foo.Bar";
	CHECK(wf_cfgdoc_any(doc, &unk.base, aerr, sizeof aerr) == NULL);
	CHECK_MSG(aerr, "x.yaml: type_url: unknown or unsupported type 'type.googleapis.com/foo.Bar'");

	Google__Protobuf__Any bad = GOOGLE__PROTOBUF__ANY__INIT;
	uint8_t junk[] = {0x0a, 0x10, 'x'}; /* field 1, length 16, 1 byte */
	bad.type_url = "type.googleapis.com/google.protobuf.Duration";
	bad.value.len = sizeof junk;
	bad.value.data = junk;
	CHECK(wf_cfgdoc_any(doc, &bad.base, aerr, sizeof aerr) == NULL);
	CHECK_MSG(aerr, "x.yaml: value: payload does not decode as google.protobuf.Duration");
}

/* ---- positions, syntax, aliases, empty documents ------------------------------------------ */

TEST(positions_are_exact)
{
	CHECK_EQ(load(BOOTSTRAP,
	              "# a comment\n"
	              "static_resources:\n"
	              "  clusters:\n"
	              "  - name: a\n"
	              "    load_assignment:\n"
	              "      endpoints:\n"
	              "      - lb_endpoints:\n"
	              "        - endpoint: {address: {socket_address: {address: h, port_value: 80}}}\n"),
	         0);
	Bootstrap *b = (Bootstrap *)wf_cfgdoc_root(doc);
	Cluster *c = b->static_resources->clusters[0];
	char e[256];
	/* a message: where its map starts, with its path */
	wf_cfg_err(doc, e, sizeof e, c, NULL, "m");
	CHECK_MSG(e, "t.yaml:4:5: static_resources.clusters[0]: m");
	/* a field: where its key starts */
	wf_cfg_err(doc, e, sizeof e, c, "load_assignment", "f");
	CHECK_MSG(e, "t.yaml:5:5: static_resources.clusters[0].load_assignment: f");
	Envoy__Config__Core__V3__SocketAddress *sa =
	    c->load_assignment->endpoints[0]->lb_endpoints[0]->endpoint->address->socket_address;
	wf_cfg_err(doc, e, sizeof e, sa, "port_value", "p%d", 1);
	CHECK_MSG(e, "t.yaml:8:61: static_resources.clusters[0].load_assignment.endpoints[0]."
	                        "lb_endpoints[0].endpoint.address.socket_address.port_value: p1");
	/* a flow map starts at its brace */
	wf_cfg_err(doc, e, sizeof e, sa, NULL, "s");
	CHECK_MSG(e, "t.yaml:8:48: static_resources.clusters[0].load_assignment.endpoints[0]."
	                        "lb_endpoints[0].endpoint.address.socket_address: s");
	/* a field that was not written: the message's position */
	wf_cfg_err(doc, e, sizeof e, c, "connect_timeout", "t");
	CHECK_MSG(e, "t.yaml:4:5: static_resources.clusters[0].connect_timeout: t");
	/* the root: no path */
	wf_cfg_err(doc, e, sizeof e, b, NULL, "r");
	CHECK_MSG(e, "t.yaml:2:1: r");
	/* a message the document does not know: no position */
	Cluster loose = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__INIT;
	CHECK_EQ(wf_cfg_err(doc, e, sizeof e, &loose, "name", "x"), -EINVAL);
	CHECK_MSG(e, "t.yaml: name: x");
	/* truncation keeps a terminated string */
	char small[8];
	wf_cfg_err(doc, small, sizeof small, c, "name", "long text");
	CHECK_MSG(small, "t.yaml:");
}

TEST(yaml_syntax_errors_have_line_and_column)
{
	CHECK_REFUSED(CLUSTER, "name: [a, b\n",
	              "t.yaml:2:1: YAML syntax error: did not find expected ',' or ']' while parsing a "
	              "flow sequence");
	CHECK_REFUSED(CLUSTER, "name: a\n  lb_policy: RANDOM\n",
	              "t.yaml:2:12: YAML syntax error: mapping values are not allowed in this context");
	CHECK_REFUSED(CLUSTER, "load_assignment:\n\tcluster_name: a\n",
	              "t.yaml:2:1: YAML syntax error: found character that cannot start any token while "
	              "scanning for the next token");
	CHECK_REFUSED(CLUSTER, "name: \"abc\n",
	              "t.yaml:2:1: YAML syntax error: found unexpected end of stream while scanning a "
	              "quoted scalar");
	CHECK_REFUSED(CLUSTER, "name: *nowhere\n",
	              "t.yaml:1:7: YAML syntax error: found undefined alias");
}

TEST(anchors_and_aliases)
{
	CHECK_EQ(load(BOOTSTRAP,
	              "static_resources:\n"
	              "  clusters:\n"
	              "  - &base\n"
	              "    name: a\n"
	              "    connect_timeout: &t 2.5s\n"
	              "    load_assignment: {cluster_name: a}\n"
	              "  - *base\n"
	              "  - name: b\n"
	              "    connect_timeout: *t\n"),
	         0);
	Bootstrap *b = (Bootstrap *)wf_cfgdoc_root(doc);
	CHECK_EQ(b->static_resources->n_clusters, 3);
	Cluster **cs = b->static_resources->clusters;
	CHECK(cs[0] != cs[1]);
	CHECK(cs[0]->load_assignment != cs[1]->load_assignment);
	CHECK_STR(cs[1]->name, strlen(cs[1]->name), "a");
	CHECK_EQ(cs[1]->connect_timeout->nanos, 500000000);
	CHECK_STR(cs[2]->name, strlen(cs[2]->name), "b");
	CHECK_EQ(cs[2]->connect_timeout->seconds, 2);
	CHECK_EQ(cs[2]->connect_timeout->nanos, 500000000);
	/* an error in aliased content is reported where the anchor's node is */
	CHECK_REFUSED(BOOTSTRAP,
	              "static_resources:\n"
	              "  clusters:\n"
	              "  - name: a\n"
	              "    lb_policy: &p NOPE\n"
	              "  - name: b\n"
	              "    lb_policy: *p\n",
	              "t.yaml:4:16: static_resources.clusters[0].lb_policy: 'NOPE' is not a valid value "
	              "(one of: " LB_NAMES ")");
}

TEST(empty_documents_are_refused)
{
	CHECK_REFUSED(BOOTSTRAP, "", "t.yaml: the file is empty");
	CHECK_REFUSED(BOOTSTRAP, "# nothing here\n\n", "t.yaml: the file is empty");
	CHECK_REFUSED(BOOTSTRAP, "---\n",
	              "t.yaml:2:1: expected a map (envoy.config.bootstrap.v3.Bootstrap), got a scalar");
	/* an empty map is a valid (if useless) message */
	CHECK_EQ(load(BOOTSTRAP, "{}\n"), 0);
	Bootstrap *b = (Bootstrap *)wf_cfgdoc_root(doc);
	CHECK(b->static_resources == NULL && b->admin == NULL && b->node == NULL);
}

TEST(load_file)
{
	char path[64];
	snprintf(path, sizeof path, "/tmp/wf-test-yaml-%d.yaml", (int)getpid());
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	fputs("name: from-file\nlb_policy: bogus\n", f);
	fclose(f);
	wf_cfgdoc_free(doc);
	doc = wf_cfgdoc_new(path);
	char e[512];
	int rc = wf_yaml_load_file(doc, CLUSTER, e, sizeof e);
	unlink(path);
	CHECK_EQ(rc, -EINVAL);
	CHECK(strncmp(e, path, strlen(path)) == 0);
	CHECK(strstr(e, ":2:12: lb_policy: 'bogus' is not a valid value") != NULL);

	wf_cfgdoc_free(doc);
	doc = wf_cfgdoc_new("/nonexistent/dir/x.yaml");
	CHECK_EQ(wf_yaml_load_file(doc, CLUSTER, e, sizeof e), -ENOENT);
	CHECK_MSG(e, "/nonexistent/dir/x.yaml: cannot open: No such file or directory");
}

TEST(demo_config_loads_and_prints)
{
	wf_cfgdoc_free(doc);
	doc = wf_cfgdoc_new("examples/demo.yaml");
	char e[512] = "";
	if (wf_yaml_load_file(doc, BOOTSTRAP, e, sizeof e) == -ENOENT) {
		wf_cfgdoc_free(doc);
		doc = wf_cfgdoc_new("../../../examples/demo.yaml");
		e[0] = '\0';
		if (wf_yaml_load_file(doc, BOOTSTRAP, e, sizeof e) == -ENOENT) {
			printf("  examples/demo.yaml not found: run from the repository root\n");
			CHECK(0);
		}
	}
	if (e[0])
		printf("  %s\n", e);
	Bootstrap *b = (Bootstrap *)wf_cfgdoc_root(doc);
	CHECK(b != NULL);
	CHECK_EQ(b->static_resources->n_listeners, 2);
	CHECK_EQ(b->static_resources->n_clusters, 2);
	struct wf_jbuf j = {0};
	CHECK_EQ(wf_json_message(&j, &b->base, 2), 0);
	int ok = strstr(j.p, "\"@type\": \"type.googleapis.com/envoy.extensions.filters.network."
	                     "tcp_proxy.v3.TcpProxy\"") != NULL &&
	         strstr(j.p, "\"idle_timeout\": \"60s\"") != NULL;
	free(j.p);
	CHECK(ok);
}

/* Refused, with `part` somewhere in the message. */
#define REFUSED_WITH(d, text, part)                                                         \
	do {                                                                                   \
		CHECK_EQ(load(d, text), -EINVAL);                                                  \
		if (!strstr(err, part))                                                            \
			printf("  error: %s\n", err);                                                   \
		CHECK(strstr(err, part) != NULL);                                                  \
	} while (0)

/* ---- hostile documents (found by fuzzing and review) ---------------------------------------- */

TEST(hostile_documents_are_refused)
{
	REFUSED_WITH(BOOTSTRAP, "node:\n  metadata: &a {x: *a}\n",
	              "nested more than 100 levels deep (a self-referencing alias?)");
	/* a billion nodes from a few hundred bytes of aliases */
	char y[4096];
	size_t k = (size_t)snprintf(y, sizeof y, "node:\n  metadata:\n    l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int i = 1; i < 9; i++)
		k += (size_t)snprintf(y + k, sizeof y - k, "    l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n",
		                      i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
	CHECK_EQ(load(BOOTSTRAP, y), -EINVAL);
	CHECK(strstr(err, "the document expands to more than") != NULL);
	REFUSED_WITH(BOOTSTRAP, "static_resources: {}\nstaticResources: {}\n",
	              "t.yaml:2:1: field 'static_resources' is set twice");
	REFUSED_WITH(BOOTSTRAP, "node: {metadata: {a: 1, a: 2}}\n", "key 'a' appears twice");
	REFUSED_WITH(CLUSTER, "lb_policy: 4294967297\n", "is not a valid value");
	REFUSED_WITH(CLUSTER, "name: a\n---\nname: b\n", "t.yaml:3:1: a second YAML document: a config file holds one");
	REFUSED_WITH(CLUSTER, "name: a\n---\nname: [b\n", "YAML syntax error");
}

TEST(any_of_a_wellknown_type_is_refused)
{
	REFUSED_WITH(BOOTSTRAP,
	              "static_resources:\n  listeners:\n  - filter_chains:\n    - filters:\n"
	              "      - typed_config: {\"@type\": type.googleapis.com/google.protobuf.Any}\n",
	              "an Any holding google.protobuf.Any is not supported");
}

TEST_MAIN("xds.yaml", T(timestamps_rfc3339), T(hostile_documents_are_refused), T(any_of_a_wellknown_type_is_refused),
          T(duration_text_forms), T(duration_as_seconds_and_nanos), T(duration_bad_text),
          T(wrappers_as_bare_values), T(enums_by_name_and_number),
          T(enum_bad_values_list_the_names), T(oneof_members_are_alternatives),
          T(repeated_fields), T(struct_fields_take_any_yaml), T(map_of_any_entries), T(bytes_are_base64),
          T(lower_camel_case_keys), T(null_values_leave_fields_unset), T(duplicate_keys_refused),
          T(unknown_fields_suggest_a_name), T(wrong_kinds), T(integer_ranges),
          T(any_known_type_is_decoded_and_registered), T(any_with_an_empty_payload),
          T(any_errors), T(nested_any_error_paths), T(any_unpacked_on_demand),
          T(positions_are_exact), T(yaml_syntax_errors_have_line_and_column),
          T(anchors_and_aliases), T(empty_documents_are_refused), T(load_file),
          T(demo_config_loads_and_prints))
