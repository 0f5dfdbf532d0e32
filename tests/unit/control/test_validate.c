/* Semantic validation: each rule with a failing case (the error, with its field path) and a
 * passing one. Specs are written in flow style, one object per case. */
#include "control/validate.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct vcase {
	const char *kind, *spec;
	const char *want; /* a substring of the one error expected; NULL: valid */
};

#define HTTP1 "{hosts: [a], http: [{route: [{destination: {host: a}}]}]}"

static const struct vcase cases[] = {
	/* VirtualService */
	{"VirtualService", HTTP1, NULL},
	{"VirtualService", "{hosts: [], http: [{route: [{destination: {host: a}}]}]}", "spec.hosts: at least one host is required"},
	{"VirtualService", "{hosts: ['*'], http: [{route: [{destination: {host: a}}]}]}", "spec.hosts[0]: '*' is not allowed for the mesh gateway"},
	{"VirtualService", "{hosts: ['*'], gateways: [gw], http: [{route: [{destination: {host: a}}]}]}", NULL},
	{"VirtualService", "{hosts: ['a..b'], http: [{route: [{destination: {host: a}}]}]}", "spec.hosts[0]: 'a..b' is not a valid host"},
	{"VirtualService", "{hosts: [a]}", "spec: http, tcp or tls routes are required"},
	{"VirtualService", "{hosts: [a], gateways: ['Bad/x'], http: [{route: [{destination: {host: a}}]}]}", "spec.gateways[0]: 'Bad/x' is not a gateway name"},
	{"VirtualService", "{hosts: [a], gateways: [istio-system/gw, mesh], http: [{route: [{destination: {host: a}}]}]}", NULL},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}}], redirect: {uri: /x}}]}", "spec.http[0].redirect: an HTTP route cannot have both route and redirect"},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}}], directResponse: {status: 200}}]}", "spec.http[0].directResponse: an HTTP route cannot have both route and directResponse"},
	{"VirtualService", "{hosts: [a], http: [{match: [{uri: {exact: /}}]}]}", "spec.http[0]: an HTTP route needs route, redirect or directResponse"},
	{"VirtualService", "{hosts: [a], http: [{redirect: {uri: /x, redirectCode: 308}}]}", NULL},
	{"VirtualService", "{hosts: [a], http: [{redirect: {uri: /x, redirectCode: 200}}]}", "spec.http[0].redirect.redirectCode: 200 is not a redirect status"},
	{"VirtualService", "{hosts: [a], http: [{redirect: {}}]}", "spec.http[0].redirect: a redirect needs uri, authority, scheme or port"},
	{"VirtualService", "{hosts: [a], http: [{directResponse: {status: 99}}]}", "spec.http[0].directResponse.status: 99 is not an HTTP status"},
	{"VirtualService", "{hosts: [a], http: [{directResponse: {status: 503, body: {string: down}}}]}", NULL},
	{"VirtualService", "{hosts: [a], http: [{redirect: {uri: /x}, rewrite: {uri: /y}}]}", "spec.http[0].rewrite: rewrite cannot be used with redirect"},
	{"VirtualService", "{hosts: [a], http: [{directResponse: {status: 200}, rewrite: {uri: /y}}]}", "spec.http[0].rewrite: rewrite cannot be used with directResponse"},
	{"VirtualService", "{hosts: [a], exportTo: ['.', 'Other'], http: [{route: [{destination: {host: a}}]}]}", "spec.exportTo[1]: 'Other' is not '.', '*' or a namespace"},
	{"DestinationRule", "{host: a, exportTo: ['*', shop]}", NULL},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}, weight: -5}]}]}", "spec.http[0].route[0].weight: weight -5 is negative"},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}}, {destination: {host: b}}]}]}", "spec.http[0].route: the destinations' weights add up to 0"},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a, subset: v1}, weight: 80}, {destination: {host: a, subset: v2}, weight: 20}]}]}", NULL},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}, weight: 3}, {destination: {host: b}, weight: 1}]}]}", NULL},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a, subset: V1}}]}]}", "spec.http[0].route[0].destination.subset: 'V1' is not a valid subset name"},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: '*.a'}}]}]}", "spec.http[0].route[0].destination.host: '*.a' is not a valid destination host"},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a, port: {number: 70000}}}]}]}", "destination.port.number: port 70000 is outside 1..65535"},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}}], timeout: 0.0005s}]}", "spec.http[0].timeout: must be at least 1ms"},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}}], timeout: 1.0005s}]}", "spec.http[0].timeout: only whole milliseconds are supported"},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}}], timeout: 0.001s}]}", NULL},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}}], retries: {attempts: -1}}]}", "spec.http[0].retries.attempts: attempts -1 is negative"},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}}], retries: {attempts: 2, perTryTimeout: 0s}}]}", "spec.http[0].retries.perTryTimeout: must be at least 1ms"},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}}], retries: {attempts: 2, retryOn: '5xx,sometimes'}}]}", "spec.http[0].retries.retryOn: 'sometimes' is not a retry condition"},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}}], retries: {attempts: 2, perTryTimeout: 2s, retryOn: '5xx, 503,unavailable,reset'}}]}", NULL},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}}], fault: {abort: {httpStatus: 503, percentage: {value: 101}}}}]}", "spec.http[0].fault.abort.percentage: percentage 101 is outside 0..100"},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}}], fault: {abort: {httpStatus: 99}}}]}", "spec.http[0].fault.abort.httpStatus: 99 is not an HTTP status"},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}}], fault: {abort: {grpcStatus: NOPE}}}]}", "spec.http[0].fault.abort.grpcStatus: 'NOPE' is not a gRPC status"},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}}], fault: {abort: {percentage: {value: 5}}}}]}", "spec.http[0].fault.abort: an abort needs httpStatus or grpcStatus"},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}}], fault: {delay: {percentage: {value: 5}}}}]}", "spec.http[0].fault.delay: a delay needs fixedDelay"},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}}], fault: {delay: {fixedDelay: 7s, percentage: {value: 50}}, abort: {grpcStatus: UNAVAILABLE, percentage: {value: 1.5}}}}]}", "VirtualService default/t: http[0].fault.abort: only httpStatus is supported"},
	{"VirtualService", "{hosts: [a], http: [{match: [{uri: {regex: '(ab'}}], route: [{destination: {host: a}}]}]}", "spec.http[0].match[0].uri.regex: regex '(ab' does not compile: missing closing parenthesis"},
	{"VirtualService", "{hosts: [a], http: [{match: [{headers: {x-v: {regex: '[z-a]'}}}], route: [{destination: {host: a}}]}]}", "spec.http[0].match[0].headers.x-v.regex: regex '[z-a]' does not compile"},
	{"VirtualService", "{hosts: [a], http: [{match: [{uri: {regex: '^/api/v[0-9]+/.*'}, headers: {end-user: {exact: jason}}, queryParams: {q: {regex: '\\d+'}}}], route: [{destination: {host: a}}]}]}", NULL},
	{"VirtualService", "{hosts: [a], http: [{match: [{headers: {'bad header': {exact: x}}}], route: [{destination: {host: a}}]}]}", "spec.http[0].match[0].headers.bad header: 'bad header' is not a valid header name"},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}, headers: {request: {set: {'x y': '1'}}}}]}]}", "spec.http[0].route[0].headers.request.set.x y: 'x y' is not a valid header name"},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}}], mirror: {host: b}, mirrorPercentage: {value: 150}}]}", "spec.http[0].mirrorPercentage: percentage 150 is outside 0..100"},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}}], mirrors: [{destination: {host: b}, percentage: {value: 5}}]}]}", NULL},
	{"VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}}], corsPolicy: {allowMethods: [GET, FETCH]}}]}", "spec.http[0].corsPolicy.allowMethods[1]: 'FETCH' is not an HTTP method"},
	{"VirtualService", "{hosts: [a], tcp: [{match: [{port: 27017}]}]}", "spec.tcp[0].route: at least one route destination is required"},
	{"VirtualService", "{hosts: [a], tcp: [{match: [{destinationSubnets: [10.0.0.0/33]}], route: [{destination: {host: a}}]}]}", "spec.tcp[0].match[0].destinationSubnets[0]: '10.0.0.0/33' is not an IP address or CIDR range"},
	{"VirtualService", "{hosts: [a], tcp: [{match: [{port: 27017, destinationSubnets: [10.0.0.0/8]}], route: [{destination: {host: a, port: {number: 5555}}}]}]}", NULL},
	{"VirtualService", "{hosts: [a], tls: [{match: [{port: 443}], route: [{destination: {host: a}}]}]}", "spec.tls[0].match[0].sniHosts: at least one SNI host is required"},
	{"VirtualService", "{hosts: ['*.a.com'], gateways: [gw], tls: [{match: [{port: 443, sniHosts: [login.a.com]}], route: [{destination: {host: a}}]}]}", NULL},
	/* DestinationRule */
	{"DestinationRule", "{host: a, subsets: [{name: v1, labels: {version: v1}}]}", NULL},
	{"DestinationRule", "{subsets: [{name: v1}]}", "spec.host: a host is required"},
	{"DestinationRule", "{host: a, subsets: [{name: v1}, {name: v1}]}", "spec.subsets[1].name: subset 'v1' is defined twice (subsets[0])"},
	{"DestinationRule", "{host: a, subsets: [{name: v_1}]}", "spec.subsets[0].name: 'v_1' is not a valid subset name"},
	{"DestinationRule", "{host: a, trafficPolicy: {loadBalancer: {consistentHash: {minimumRingSize: 1024}}}}", "spec.trafficPolicy.loadBalancer.consistentHash: consistentHash needs one key"},
	{"DestinationRule", "{host: a, trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user, useSourceIp: true}}}}", "'http_header_name' and 'use_source_ip' are alternatives: set only one"},
	{"DestinationRule", "{host: a, trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN, consistentHash: {useSourceIp: true}}}}", "'simple' and 'consistent_hash' are alternatives"},
	{"DestinationRule", "{host: a, trafficPolicy: {loadBalancer: {consistentHash: {httpCookie: {name: u, ttl: 0s}, ringHash: {minimumRingSize: 1024}}}}}", NULL},
	{"DestinationRule", "{host: a, trafficPolicy: {loadBalancer: {consistentHash: {httpQueryParameterName: u, maglev: {tableSize: 100}}}}}", "consistentHash.maglev.tableSize: table size 100 is not a prime number"},
	{"DestinationRule", "{host: a, trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 65537}}}}}", NULL},
	{"DestinationRule", "{host: a, trafficPolicy: {loadBalancer: {localityLbSetting: {distribute: [{from: 'us/*', to: {'us/a/*': 60, 'us/b/*': 30}}]}}}}", "localityLbSetting.distribute[0].to: the weights add up to 90, not 100"},
	{"DestinationRule", "{host: a, trafficPolicy: {outlierDetection: {maxEjectionPercent: 101}}}", "spec.trafficPolicy.outlierDetection.maxEjectionPercent: 101 is outside 0..100"},
	{"DestinationRule", "{host: a, trafficPolicy: {outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50}}}", NULL},
	{"DestinationRule", "{host: a, trafficPolicy: {connectionPool: {tcp: {maxConnections: -1}}}}", "spec.trafficPolicy.connectionPool.tcp.maxConnections: -1 is negative"},
	{"DestinationRule", "{host: a, trafficPolicy: {tls: {mode: MUTUAL, privateKey: /k.pem}}}", "spec.trafficPolicy.tls.clientCertificate: MUTUAL TLS needs clientCertificate"},
	{"DestinationRule", "{host: a, trafficPolicy: {tls: {mode: MUTUAL, credentialName: a-cert}}}", "trafficPolicy.tls.credentialName is not supported (no SDS)"},
	{"DestinationRule", "{host: a, trafficPolicy: {tls: {mode: ISTIO_MUTUAL, caCertificates: /ca.pem}}}", "spec.trafficPolicy.tls.mode: certificates or credentialName cannot be set with mode ISTIO_MUTUAL"},
	{"DestinationRule", "{host: a, trafficPolicy: {portLevelSettings: [{port: {number: 80}}, {port: {number: 80}}]}}", "spec.trafficPolicy.portLevelSettings[1].port: port 80 has settings already"},
	/* ServiceEntry */
	{"ServiceEntry", "{hosts: [api.example.com], ports: [{number: 443, name: https, protocol: TLS}], resolution: DNS}", NULL},
	{"ServiceEntry", "{ports: [{number: 443, name: https, protocol: TLS}], resolution: DNS}", "spec.hosts: at least one host is required"},
	{"ServiceEntry", "{hosts: ['*'], resolution: NONE}", "spec.hosts[0]: '*' is not a valid host"},
	{"ServiceEntry", "{hosts: [a.com], ports: [{number: 80, name: http, protocol: HTTP}, {number: 80, name: web, protocol: HTTP}], resolution: NONE}", "spec.ports[1].number: port 80 is declared twice (ports[0])"},
	{"ServiceEntry", "{hosts: [a.com], ports: [{number: 80, name: http, protocol: HTTP}, {number: 81, name: http, protocol: HTTP}], resolution: NONE}", "spec.ports[1].name: port name 'http' is declared twice"},
	{"ServiceEntry", "{hosts: [a.com], ports: [{number: 80, name: http, protocol: FOO}], resolution: NONE}", "spec.ports[0].protocol: 'FOO' is not a protocol Istio knows"},
	{"ServiceEntry", "{hosts: [a.com], ports: [{number: 80, protocol: http}], resolution: NONE}", "spec.ports[0].name: a port name is required"},
	{"ServiceEntry", "{hosts: [a.com], ports: [{number: 80, name: http, protocol: HTTP}], resolution: STATIC}", "spec.endpoints: resolution STATIC needs endpoints"},
	{"ServiceEntry", "{hosts: [a.com], ports: [{number: 80, name: http, protocol: HTTP}], resolution: STATIC, endpoints: [{address: a.example.com}]}", "spec.endpoints[0].address: 'a.example.com' is not an IP address (resolution STATIC)"},
	{"ServiceEntry", "{hosts: [a.com], ports: [{number: 80, name: http, protocol: HTTP}], resolution: STATIC, endpoints: [{address: 10.0.0.1, ports: {http: 8080}}, {address: 'fd00::1'}]}", NULL},
	{"ServiceEntry", "{hosts: [a.com], ports: [{number: 80, name: http, protocol: HTTP}], resolution: STATIC, endpoints: [{address: 10.0.0.1, ports: {grpc: 8080}}]}", "spec.endpoints[0].ports.grpc: port 'grpc' is not one of the ServiceEntry's ports"},
	{"ServiceEntry", "{hosts: [a.com], ports: [{number: 80, name: http, protocol: HTTP}], resolution: NONE, endpoints: [{address: 10.0.0.1}]}", "spec.endpoints: resolution NONE takes no endpoints"},
	{"ServiceEntry", "{hosts: ['*.a.com'], ports: [{number: 80, name: http, protocol: HTTP}], resolution: DNS}", "spec.hosts[0]: resolution DNS without endpoints resolves the hosts themselves"},
	{"ServiceEntry", "{hosts: ['*.a.com'], ports: [{number: 80, name: http, protocol: HTTP}], resolution: DNS, endpoints: [{address: proxy.a.com}, {address: 10.1.1.1}]}", NULL},
	{"ServiceEntry", "{hosts: [a.com], addresses: [10.0.0.300], resolution: NONE}", "spec.addresses[0]: '10.0.0.300' is not an IP address or CIDR range"},
	/* WorkloadEntry */
	{"WorkloadEntry", "{address: 10.0.0.5, ports: {http: 8080}, labels: {app: a}, weight: 2}", NULL},
	{"WorkloadEntry", "{labels: {app: a}}", "spec.address: an address is required"},
	{"WorkloadEntry", "{address: 'a b'}", "spec.address: 'a b' is not an IP address, a DNS name or unix://PATH"},
	{"WorkloadEntry", "{address: 10.0.0.5, ports: {http: 0}}", "spec.ports.http: port 0 is outside 1..65535"},
	/* Gateway */
	{"Gateway", "{servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['ns/*.example.com', 'a.com']}]}", NULL},
	{"Gateway", "{servers: []}", "spec.servers: at least one server is required"},
	{"Gateway", "{servers: [{port: {number: 80, name: http, protocol: HTTP}}]}", "spec.servers[0].hosts: at least one host is required"},
	{"Gateway", "{servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['Bad_NS/a.com']}]}", "spec.servers[0].hosts[0]: 'Bad_NS/a.com' is not HOST or NAMESPACE/HOST"},
	{"Gateway", "{servers: [{port: {number: 80, name: http, protocol: SMTP}, hosts: [a.com]}]}", "spec.servers[0].port.protocol: 'SMTP' is not a protocol Istio knows"},
	{"Gateway", "{servers: [{hosts: [a.com]}]}", "spec.servers[0].port: a port is required"},
	{"Gateway", "{servers: [{port: {number: 443, name: https, protocol: HTTPS}, hosts: [a.com]}]}", "spec.servers[0].tls: a HTTPS server needs tls settings"},
	{"Gateway", "{servers: [{port: {number: 443, name: https, protocol: HTTPS}, hosts: [a.com], tls: {mode: SIMPLE}}]}", "spec.servers[0].tls.mode: SIMPLE TLS needs credentialName, or serverCertificate and privateKey"},
	{"Gateway", "{servers: [{port: {number: 443, name: https, protocol: HTTPS}, hosts: [a.com], tls: {mode: SIMPLE, credentialName: a-cert}}]}", "servers[0].tls: give serverCertificate and privateKey as file paths"},
	{"Gateway", "{servers: [{port: {number: 443, name: https, protocol: HTTPS}, hosts: [a.com], tls: {mode: SIMPLE, serverCertificate: /c.pem, privateKey: /k.pem}}]}", NULL},
	{"Gateway", "{servers: [{port: {number: 443, name: https, protocol: HTTPS}, hosts: [a.com], tls: {mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem}}]}", "spec.servers[0].tls.caCertificates: MUTUAL TLS needs caCertificates"},
	{"Gateway", "{servers: [{port: {number: 443, name: tls, protocol: TLS}, hosts: [a.com], tls: {mode: AUTO_PASSTHROUGH}}]}", "servers[0]: protocol TLS with this tls mode is not supported yet"},
	{"Gateway", "{servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [a.com], tls: {mode: SIMPLE}}]}", "spec.servers[0].tls: tls settings on a plain-text HTTP port"},
	{"Gateway", "{servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [a.com], tls: {httpsRedirect: true}}]}", NULL},
	/* Sidecar */
	{"Sidecar", "{egress: [{hosts: ['./*', 'istio-system/*', '~/*', '*/reviews.default.svc.cluster.local']}], outboundTrafficPolicy: {mode: REGISTRY_ONLY}}", NULL},
	{"Sidecar", "{egress: [{hosts: [reviews]}]}", "spec.egress[0].hosts[0]: 'reviews' is not NAMESPACE/HOST"},
	{"Sidecar", "{egress: [{}]}", "spec.egress[0].hosts: at least one host (NAMESPACE/HOST) is required"},
	{"Sidecar", "{egress: [{hosts: ['./*']}, {port: {number: 9080, protocol: HTTP, name: http}, hosts: ['./*']}]}", "spec.egress[0]: the egress listener without a port must be the last one"},
	{"Sidecar", "{egress: [{port: {number: 9080, protocol: HTTP, name: http}, hosts: ['./*']}, {hosts: ['./*']}]}", NULL},
	{"Sidecar", "{outboundTrafficPolicy: {mode: REGISTRY_ONLY, egressProxy: {host: egress.example.com}}}", "spec.outboundTrafficPolicy.egressProxy: egressProxy needs mode ALLOW_ANY"},
	{"Sidecar", "{outboundTrafficPolicy: {mode: ALLOW_ANY, egressProxy: {host: egress.example.com, port: {number: 3128}}}}", NULL},
	{"Sidecar", "{ingress: [{port: {number: 9080, protocol: HTTP, name: http}, defaultEndpoint: 'localhost:8080'}]}", "spec.ingress[0].defaultEndpoint: 'localhost:8080' is not IP:PORT"},
	{"Sidecar", "{ingress: [{port: {number: 9080, protocol: HTTP, name: http}, defaultEndpoint: '127.0.0.1:8080'}]}", NULL},
};

static char dir[64];

/* Decode and validate one case; the errors (schema or semantic) land in e. */
static void run(const struct vcase *c, struct wf_errs *e)
{
	char path[128], text[4096];
	snprintf(path, sizeof(path), "%s/case.yaml", dir);
	snprintf(text, sizeof(text), "apiVersion: networking.istio.io/v1\nkind: %s\nmetadata: {name: t}\nspec: %s\n",
	         c->kind, c->spec);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	size_t n;
	struct wf_istio_obj **v = wf_istio_parse_file(path, &n, e);
	for (size_t i = 0; i < n; i++)
		wf_istio_validate(v[i], e);
	wf_istio_objs_free(v, n);
}

TEST(rules)
{
	int bad = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct wf_errs e = {0};
		run(&cases[i], &e);
		int ok = cases[i].want ? e.n == 1 && strstr(e.v[0], cases[i].want) : e.n == 0;
		if (!ok) {
			printf("  case %zu (%s %s): expected %s%s%s, got %zu error(s)%s%s\n", i, cases[i].kind, cases[i].spec,
			       cases[i].want ? "\"" : "no error", cases[i].want ? cases[i].want : "", cases[i].want ? "\"" : "",
			       e.n, e.n ? ": " : "", e.n ? e.v[0] : "");
			bad++;
		}
		wf_errs_free(&e);
	}
	CHECK_EQ(bad, 0);
}

/* Positions: the error points at the field (or list element) at fault. */
TEST(positions)
{
	struct wf_errs e = {0};
	struct vcase c = {"VirtualService", "\n  hosts:\n  - good.com\n  - bad_host\n  http:\n  - route:\n"
	                  "    - destination: {host: a}\n      weight: 50\n    - destination: {host: b}\n      weight: -1\n", NULL};
	run(&c, &e);
	CHECK_EQ(e.n, 2);
	CHECK(strstr(e.v[0], "case.yaml:7:5: spec.hosts[1]: 'bad_host' is not a valid host"));
	CHECK(strstr(e.v[1], "case.yaml:13:7: spec.http[0].route[1].weight: weight -1 is negative"));
	wf_errs_free(&e);
}

TEST(names)
{
	CHECK(wf_istio_dns1123_label("v1-a", 63));
	CHECK(!wf_istio_dns1123_label("-v1", 63));
	CHECK(!wf_istio_dns1123_label("V1", 63));
	CHECK(wf_istio_dns1123_subdomain("a.b-c.d"));
	CHECK(!wf_istio_dns1123_subdomain("a..b"));
	CHECK(wf_istio_wildcard_host("*.Example.com"));
	CHECK(wf_istio_wildcard_host("*"));
	CHECK(!wf_istio_wildcard_host("a.*.com"));
	CHECK(wf_istio_ip("::1") && wf_istio_ip("10.1.2.3") && !wf_istio_ip("10.1.2"));
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/weft-validate-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	static const struct wf_t_case tc[] = {T(rules), T(positions), T(names)};
	int r = wf_t_run(tc, sizeof(tc) / sizeof(tc[0]), "validate");
	char p[128];
	snprintf(p, sizeof(p), "%s/case.yaml", dir);
	unlink(p);
	rmdir(dir);
	return r;
}
