/* Analysis across objects: host names as Istio reads them, and the findings on a small set. */
#include "control/analyze.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TEST(fqdn)
{
	char b[128];
	CHECK(!strcmp(wf_istio_fqdn("ratings", "shop", b, sizeof(b)), "ratings.shop.svc.cluster.local"));
	CHECK(!strcmp(wf_istio_fqdn("ratings.prod", "shop", b, sizeof(b)), "ratings.prod"));
	CHECK(!strcmp(wf_istio_fqdn("*", "shop", b, sizeof(b)), "*"));
}

TEST(host_match)
{
	CHECK(wf_istio_host_match("*", "a.b"));
	CHECK(wf_istio_host_match("*.example.com", "api.example.com"));
	CHECK(wf_istio_host_match("*.example.com", "a.b.example.com"));
	CHECK(!wf_istio_host_match("*.example.com", "example.com"));
	CHECK(wf_istio_host_match("API.example.com", "api.example.com"));
	CHECK(!wf_istio_host_match("api.example.com", "web.example.com"));
}

static int count(const struct wf_findings *f, const char *code, const char *needle)
{
	int n = 0;
	for (size_t i = 0; i < f->n; i++)
		n += !strcmp(f->v[i].code, code) && strstr(f->v[i].msg, needle) != NULL;
	return n;
}

TEST(findings)
{
	char path[] = "/tmp/weft-analyze-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	const char *text =
	    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ext}\n"
	    "spec: {hosts: ['*.example.com', reviews.shop.svc.cluster.local], ports: [{number: 80, name: http, protocol: HTTP}], resolution: NONE}\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r, namespace: shop}\n"
	    "spec: {host: reviews, subsets: [{name: v1}]}\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: shop}\n"
	    "spec: {servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [a.example.com]}]}\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ok, namespace: shop}\n"
	    "spec: {hosts: [a.example.com], gateways: [gw], http: [{route: [{destination: {host: reviews, subset: v1}}, "
	    "{destination: {host: api.example.com}, weight: 1}]}]}\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bad, namespace: other}\n"
	    "spec: {hosts: [b.example.com], gateways: [shop/gw, nope], http: [{route: [{destination: {host: reviews, subset: v1}}]}]}\n";
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		CHECK(0);
	close(fd);
	struct wf_store *s = wf_store_new();
	struct wf_errs e = {0};
	CHECK_EQ(wf_store_load_file(s, path, &e), 1);
	struct wf_findings f = {0};
	int errors = wf_analyze(s, &f);
	/* "reviews" from namespace other is reviews.other.svc.cluster.local: unknown, and no subset */
	CHECK_EQ(count(&f, "IST0101", "Referenced host not found: \"reviews\""), 1);
	CHECK_EQ(count(&f, "IST0101", "Referenced host+subset in destinationrule not found: \"reviews+v1\""), 1);
	CHECK_EQ(count(&f, "IST0101", "Referenced gateway not found: \"nope\""), 1);
	CHECK_EQ(count(&f, "IST0132", "one or more host [b.example.com]"), 1);
	CHECK_EQ(count(&f, "IST0109", ""), 0);
	CHECK_EQ(count(&f, "WFT0001", ""), 0);
	CHECK_EQ(errors, 3);
	CHECK_EQ(f.n, 4);
	char line[512];
	wf_finding_format(&f.v[0], line, sizeof(line));
	CHECK(!strncmp(line, "Error [IST0101] (VirtualService other/bad ", 42));
	wf_findings_free(&f);
	wf_store_free(s);
	unlink(path);
}

TEST_MAIN("analyze", T(fqdn), T(host_match), T(findings))
