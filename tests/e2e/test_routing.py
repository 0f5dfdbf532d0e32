"""Routing: virtual host domains, route matches, actions, header edits, load balancing.

What an Envoy user expects (route_components.proto): vhost domain search order exact >
longest *.suffix > longest prefix.* > "*", host matched with its port unless configured
otherwise, case-insensitively; routes checked in order, first match wins; path matches ignore
the query string; safe_regex must match the whole path; header edits apply route, then vhost,
then route-config level (so the least specific level wins an overwrite).
"""

import math

import configs as C
from harness import (Client, HttpUpstream, RawConn, Weft, check, eq, free_port, request)


def _bodies(port, cases, headers=None):
    """cases: [(host, path, expected_body_or_status)] -> list of mismatches."""
    bad = []
    for host, p, want in cases:
        r = request(port, p, host=host, headers=headers)
        got = r.text if r.status == 200 else r.status
        if got != want:
            bad.append("%s%s: expected %r, got %r" % (host, p, want, got))
    return bad


def _vh_direct(name, domains):
    return C.vhost(name, domains, [C.route(C.prefix("/"), direct=(200, name))])


# ---------------------------------------------------------------------------------------------
# virtual host domains

def test_domains_exact_suffix_prefix_wildcard():
    port = free_port()
    vhs = [_vh_direct("exact", ["www.example.com"]),
           _vh_direct("suffix", ["*.example.com"]),
           _vh_direct("longer-suffix", ["*.api.example.com"]),
           _vh_direct("prefix", ["www.*"]),
           _vh_direct("prefix-dash", ["foo-*"]),
           _vh_direct("default", ["*"])]
    cfg = C.bootstrap(listeners=[C.http_listener(port, vhs)])
    with Weft(cfg):
        bad = _bodies(port, [
            ("www.example.com", "/", "exact"),
            ("a.example.com", "/", "suffix"),
            ("api.example.com", "/", "suffix"),
            ("x.api.example.com", "/", "longer-suffix"),      # longest suffix wins
            ("www.example.org", "/", "prefix"),
            ("foo-bar.net", "/", "prefix-dash"),
            ("example.com", "/", "default"),                  # *.example.com needs a label
            ("nothing.test", "/", "default"),
        ])
        check(not bad, "domain matching:\n  %s", "\n  ".join(bad))


def test_domains_case_insensitive():
    port = free_port()
    cfg = C.bootstrap(listeners=[C.http_listener(port, [_vh_direct("exact", ["www.example.com"]),
                                                        _vh_direct("suffix", ["*.Example.COM"]),
                                                        _vh_direct("default", ["*"])])])
    with Weft(cfg):
        bad = _bodies(port, [("WWW.Example.Com", "/", "exact"), ("Api.EXAMPLE.com", "/", "suffix")])
        check(not bad, "domains are matched case-insensitively:\n  %s", "\n  ".join(bad))


def test_domains_with_port():
    port = free_port()
    cfg = C.bootstrap(listeners=[C.http_listener(port, [_vh_direct("ported", ["ported.test:8080"]),
                                                        _vh_direct("plain", ["plain.test"]),
                                                        _vh_direct("default", ["*"])])])
    with Weft(cfg):
        bad = _bodies(port, [
            ("ported.test:8080", "/", "ported"),
            ("ported.test:9090", "/", "default"),
            ("ported.test", "/", "default"),
            ("plain.test", "/", "plain"),
            # Envoy matches the Host with its port unless strip_*_host_port is set
            ("plain.test:8080", "/", "default"),
        ])
        check(not bad, "domains with ports:\n  %s", "\n  ".join(bad))


def test_no_matching_vhost_is_404():
    port = free_port()
    cfg = C.bootstrap(listeners=[C.http_listener(port, [_vh_direct("only", ["only.test"])])])
    with Weft(cfg):
        eq(request(port, "/", host="only.test").text, "only", "matching host")
        eq(request(port, "/", host="other.test").status, 404, "no virtual host matches")


# ---------------------------------------------------------------------------------------------
# route matches

def test_prefix_path_first_match_wins():
    cfg, port = C.directs([(C.path("/p"), "path-p"),
                           (C.prefix("/p"), "prefix-p"),
                           (C.prefix("/a"), "prefix-a"),
                           (C.path("/a/b"), "never"),          # shadowed by prefix /a
                           (C.prefix("/"), "root")])
    with Weft(cfg):
        bad = _bodies(port, [
            ("h", "/p", "path-p"),
            ("h", "/p?x=1", "path-p"),                          # query is not part of the path
            ("h", "/p/", "prefix-p"),
            ("h", "/pq", "prefix-p"),
            ("h", "/a/b", "prefix-a"),
            ("h", "/q", "root"),
            ("h", "/", "root"),
        ])
        check(not bad, "prefix/path matching:\n  %s", "\n  ".join(bad))


def test_no_route_is_404():
    cfg, port = C.directs([(C.prefix("/only"), "only")])
    with Weft(cfg):
        eq(request(port, "/only/x").status, 200, "/only/x")
        eq(request(port, "/other").status, 404, "/other has no route")


def test_case_insensitive_match():
    cfg, port = C.directs([(C.prefix("/CaSe", case_sensitive=False), "ci-prefix"),
                           (C.path("/Exact", case_sensitive=False), "ci-path"),
                           (C.prefix("/Upper"), "cs-prefix"),
                           (C.prefix("/"), "root")])
    with Weft(cfg):
        bad = _bodies(port, [
            ("h", "/case/x", "ci-prefix"),
            ("h", "/CASE", "ci-prefix"),
            ("h", "/EXACT", "ci-path"),
            ("h", "/exact", "ci-path"),
            ("h", "/exact/more", "root"),
            ("h", "/Upper/x", "cs-prefix"),
            ("h", "/upper/x", "root"),                          # case_sensitive defaults to true
        ])
        check(not bad, "case_sensitive:\n  %s", "\n  ".join(bad))


def test_safe_regex_full_match():
    cfg, port = C.directs([(C.regex("/users/[0-9]+"), "user"),
                           (C.regex("/v[0-9]+/.*"), "versioned"),
                           (C.prefix("/"), "root")])
    with Weft(cfg):
        bad = _bodies(port, [
            ("h", "/users/123", "user"),
            ("h", "/users/123?tab=x", "user"),                  # query excluded
            ("h", "/users/123/x", "root"),                      # must match the whole path
            ("h", "/users/abc", "root"),
            ("h", "/v2/anything", "versioned"),
            ("h", "/api/v2/anything", "root"),                  # full match, not search
        ])
        check(not bad, "safe_regex:\n  %s", "\n  ".join(bad))


def _maps_pcre2(w):
    with open("/proc/%d/maps" % w.proc.pid) as f:
        return "libpcre2-8" in f.read()


def test_pcre2_mapped_only_once_a_config_has_a_regex():
    # a proxy without regexes does not map PCRE2 (idle RSS); the first regex loads it
    cfg, port = C.directs([(C.prefix("/"), "root")])
    with Weft(cfg) as w:
        eq(request(port, "/x").status, 200, "/x")
        check(not _maps_pcre2(w), "PCRE2 is mapped though no route has a regex")
    cfg, port = C.directs([(C.regex("/r/[0-9]+"), "re"), (C.prefix("/"), "root")])
    with Weft(cfg) as w:
        eq(request(port, "/r/12").body, b"re", "/r/12 by the regex")
        check(_maps_pcre2(w), "PCRE2 is not mapped though a route has a regex")


def test_header_matchers():
    routes = [
        (C.prefix("/", headers=[C.hdr("x-env", exact="prod")]), "exact"),
        (C.prefix("/", headers=[C.hdr("x-pre", prefix="ab")]), "prefix"),
        (C.prefix("/", headers=[C.hdr("x-suf", suffix="yz")]), "suffix"),
        (C.prefix("/", headers=[C.hdr("x-con", contains="mid")]), "contains"),
        (C.prefix("/", headers=[C.hdr("x-re", regex="[0-9]{3}")]), "regex"),
        (C.prefix("/", headers=[C.hdr("x-present", present=True)]), "present"),
        (C.prefix("/", headers=[C.hdr("x-a", exact="1"), C.hdr("x-b", exact="2")]), "and"),
        (C.prefix("/inv", headers=[C.hdr("x-inv", exact="no", invert=True)]), "inverted"),
        (C.prefix("/"), "fallback"),
    ]
    cfg, port = C.directs(routes)
    cases = [
        ({"x-env": "prod"}, "/", "exact"),
        ({"X-Env": "prod"}, "/", "exact"),                      # header names are case-insensitive
        ({"x-env": "production"}, "/", "fallback"),
        ({"x-env": "Prod"}, "/", "fallback"),                   # values are case-sensitive
        ({"x-pre": "abc"}, "/", "prefix"),
        ({"x-pre": "xabc"}, "/", "fallback"),
        ({"x-suf": "xyz"}, "/", "suffix"),
        ({"x-suf": "yzx"}, "/", "fallback"),
        ({"x-con": "amidb"}, "/", "contains"),
        ({"x-con": "m-i-d"}, "/", "fallback"),
        ({"x-re": "123"}, "/", "regex"),
        ({"x-re": "1234"}, "/", "fallback"),                    # regex must match the whole value
        ({"x-present": ""}, "/", "present"),
        ({"x-present": "anything"}, "/", "present"),
        ({"x-a": "1", "x-b": "2"}, "/", "and"),
        ({"x-a": "1"}, "/", "fallback"),
        ({"x-inv": "yes"}, "/inv", "inverted"),
        ({"x-inv": "no"}, "/inv", "fallback"),
    ]
    with Weft(cfg):
        bad = []
        for hs, p, want in cases:
            r = request(port, p, headers=hs)
            if r.text != want:
                bad.append("%r %s: expected %r, got %s %r" % (hs, p, want, r.status, r.text))
        check(not bad, "header matchers:\n  %s", "\n  ".join(bad))


def test_query_parameter_matchers():
    cfg, port = C.directs([
        (C.prefix("/", query_parameters=[C.qp("debug", exact="1")]), "debug"),
        (C.prefix("/", query_parameters=[C.qp("v", prefix="ab")]), "v-prefix"),
        (C.prefix("/", query_parameters=[C.qp("trace", present=True)]), "trace"),
        (C.prefix("/"), "fallback"),
    ])
    with Weft(cfg):
        bad = _bodies(port, [
            ("h", "/?debug=1", "debug"),
            ("h", "/x?a=b&debug=1", "debug"),
            ("h", "/?debug=0", "fallback"),
            ("h", "/?debug=10", "fallback"),
            ("h", "/?v=abc", "v-prefix"),
            ("h", "/?v=xab", "fallback"),
            ("h", "/?trace=x", "trace"),
            ("h", "/?trace", "trace"),
            ("h", "/?tracer=x", "fallback"),
            ("h", "/", "fallback"),
        ])
        check(not bad, "query_parameters:\n  %s", "\n  ".join(bad))


# ---------------------------------------------------------------------------------------------
# load balancing

def test_weighted_clusters_split():
    with HttpUpstream("a") as a, HttpUpstream("b") as b:
        port = free_port()
        rt = C.route(C.prefix("/"), action=C.weighted(("ca", 70), ("cb", 30)))
        cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [rt])])],
                          clusters=[C.cluster("ca", [a.port]), C.cluster("cb", [b.port])])
        n, p = 1000, 0.7
        with Weft(cfg), Client(port) as cl:
            counts = {"a": 0, "b": 0}
            for i in range(n):
                r = cl.get("/w/%d" % i)
                eq(r.status, 200, "request %d" % i)
                counts[r.header("x-upstream")] += 1
        k = counts["a"]
        tol = 4.5 * math.sqrt(n * p * (1 - p))
        check(abs(k - n * p) <= tol, "70/30 split over %d requests: a=%d b=%d (allowed %d±%.0f)",
              n, k, counts["b"], n * p, tol)
        eq(len(a.requests) + len(b.requests), n, "requests at the upstreams")


def test_endpoint_weights_round_robin_exact():
    with HttpUpstream("heavy") as h, HttpUpstream("light") as l:
        cfg, port = C.simple([(h.port, 3), (l.port, 1)])
        with Weft(cfg, concurrency=1), Client(port) as cl:
            seen = [cl.get("/").header("x-upstream") for _ in range(400)]
        counts = {x: seen.count(x) for x in ("heavy", "light")}
        eq(counts, {"heavy": 300, "light": 100}, "3:1 weighted round robin over 400 requests (one worker)")
        # smooth: never more than 3 picks of the heavy host in a row
        runs = max(len(r) for r in "".join("h" if s == "heavy" else "l" for s in seen).split("l"))
        check(runs <= 3, "weighted round robin should interleave; saw %d heavy picks in a row", runs)


def test_round_robin_unweighted_even():
    ups = [HttpUpstream("u%d" % i) for i in range(3)]
    try:
        cfg, port = C.simple([u.port for u in ups])
        with Weft(cfg, concurrency=1), Client(port) as cl:
            seen = [cl.get("/").header("x-upstream") for _ in range(300)]
        eq({u.name: seen.count(u.name) for u in ups}, {"u0": 100, "u1": 100, "u2": 100}, "round robin")
    finally:
        for u in ups:
            u.close()


# ---------------------------------------------------------------------------------------------
# rewrites

def _one_route(up, rt, port=None, **hcm_extra):
    port = port or free_port()
    return C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], rt)], **hcm_extra)],
                       clusters=[C.cluster("backend", [up.port])]), port


def test_prefix_rewrite():
    with HttpUpstream("up") as up:
        cfg, port = _one_route(up, [
            C.route(C.prefix("/api/"), cluster="backend", action={"prefix_rewrite": "/v2/"}),
            C.route(C.prefix("/strip"), cluster="backend", action={"prefix_rewrite": "/"}),
            C.route(C.prefix("/"), cluster="backend")])
        with Weft(cfg):
            eq(request(port, "/api/users?x=1").status, 200, "status")
            eq(up.last.target, "/v2/users?x=1", "upstream request target after prefix_rewrite")
            request(port, "/strip/thing")
            eq(up.last.target, "//thing", "prefix /strip rewritten to / (Envoy keeps the rest verbatim)")
            request(port, "/other")
            eq(up.last.target, "/other", "untouched route")


def test_regex_rewrite():
    with HttpUpstream("up") as up:
        rw = {"regex_rewrite": {"pattern": {"regex": "^/service/([^/]+)(/.*)$"},
                                "substitution": "\\2/instance/\\1"}}
        cfg, port = _one_route(up, [C.route(C.prefix("/service/"), cluster="backend", action=rw),
                                    C.route(C.prefix("/"), cluster="backend")])
        with Weft(cfg):
            eq(request(port, "/service/foo/v1/api").status, 200, "status")
            eq(up.last.target, "/v1/api/instance/foo", "regex_rewrite result")
            request(port, "/service/bar/x?q=1")
            eq(up.last.target, "/x/instance/bar?q=1", "regex_rewrite keeps the query string")


def test_host_rewrite_literal_and_host_passthrough():
    with HttpUpstream("up") as up:
        cfg, port = _one_route(up, [
            C.route(C.prefix("/rw"), cluster="backend", action={"host_rewrite_literal": "rewritten.internal"}),
            C.route(C.prefix("/"), cluster="backend")])
        with Weft(cfg):
            request(port, "/rw", host="client.test")
            eq(up.last.header("host"), "rewritten.internal", "Host at upstream after host_rewrite_literal")
            request(port, "/plain", host="client.test:8443")
            eq(up.last.header("host"), "client.test:8443", "Host at upstream without rewrite")


# ---------------------------------------------------------------------------------------------
# redirects and direct responses

def test_redirects():
    port = free_port()
    routes = [
        C.route(C.prefix("/secure"), redirect={"https_redirect": True}),
        C.route(C.prefix("/moved"), redirect={"host_redirect": "new.test"}),
        C.route(C.path("/old-1"), redirect={"path_redirect": "/new-1", "response_code": "FOUND"}),
        C.route(C.path("/old-2"), redirect={"path_redirect": "/new-2", "strip_query": True}),
        C.route(C.path("/old-3"), redirect={"path_redirect": "/new-3?foo=1", "strip_query": True}),
        C.route(C.prefix("/pfx/"), redirect={"prefix_rewrite": "/other/", "response_code": "TEMPORARY_REDIRECT"}),
        C.route(C.prefix("/see"), redirect={"path_redirect": "/seen", "response_code": "SEE_OTHER"}),
        C.route(C.prefix("/perm"), redirect={"host_redirect": "perm.test", "response_code": "PERMANENT_REDIRECT"}),
    ]
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], routes)])])
    cases = [
        ("/secure/x?q=1", 301, "https://redir.test/secure/x?q=1"),
        ("/moved/a?q=1", 301, "http://new.test/moved/a?q=1"),
        ("/old-1?bar=1", 302, "http://redir.test/new-1?bar=1"),
        ("/old-2?bar=1", 301, "http://redir.test/new-2"),
        ("/old-3?bar=1", 301, "http://redir.test/new-3?foo=1"),
        ("/pfx/x/y", 307, "http://redir.test/other/x/y"),
        ("/see", 303, "http://redir.test/seen"),
        ("/perm/z", 308, "http://perm.test/perm/z"),
    ]
    with Weft(cfg):
        bad = []
        for p, code, loc in cases:
            r = request(port, p, host="redir.test")
            if (r.status, r.header("location")) != (code, loc):
                bad.append("%s: expected %d %s, got %d %s" % (p, code, loc, r.status, r.header("location")))
        check(not bad, "redirects:\n  %s", "\n  ".join(bad))


def test_direct_response():
    port = free_port()
    routes = [C.route(C.path("/hello"), direct=(200, "hello direct\n")),
              C.route(C.path("/denied"), direct=(403, "denied")),
              C.route(C.path("/empty"), direct=(204, None)),
              C.route(C.path("/unavail"), direct=(503, None))]
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], routes)])])
    with Weft(cfg):
        r = request(port, "/hello")
        eq((r.status, r.body), (200, b"hello direct\n"), "direct_response 200")
        eq(r.header("content-length"), "13", "content-length of the direct body")
        r = request(port, "/denied")
        eq((r.status, r.body), (403, b"denied"), "direct_response 403")
        r = request(port, "/empty")
        eq((r.status, r.body), (204, b""), "direct_response 204")
        eq(request(port, "/unavail").status, 503, "direct_response 503 without a body")
        # keep-alive survives direct responses
        with RawConn(port) as c:
            for _ in range(3):
                eq(c.get("/hello").body, b"hello direct\n", "direct response on a kept-alive connection")


# ---------------------------------------------------------------------------------------------
# header edits

def _levels_cfg(up, port):
    rt = C.route(C.prefix("/"), cluster="backend",
                 request_headers_to_add=[C.add_header("x-route", "r"),
                                         C.add_header("x-multi", "route", "APPEND_IF_EXISTS_OR_ADD"),
                                         C.add_header("x-level", "route", "OVERWRITE_IF_EXISTS_OR_ADD")],
                 request_headers_to_remove=["x-remove-route"],
                 response_headers_to_add=[C.add_header("x-resp-route", "r"),
                                          C.add_header("x-resp-level", "route", "OVERWRITE_IF_EXISTS_OR_ADD")],
                 response_headers_to_remove=["x-up-remove-route"])
    vh = C.vhost("all", ["*"], [rt],
                 request_headers_to_add=[C.add_header("x-vhost", "v"),
                                         C.add_header("x-multi", "vhost", "APPEND_IF_EXISTS_OR_ADD"),
                                         C.add_header("x-level", "vhost", "OVERWRITE_IF_EXISTS_OR_ADD")],
                 request_headers_to_remove=["x-remove-vhost"],
                 response_headers_to_add=[C.add_header("x-resp-vhost", "v"),
                                          C.add_header("x-resp-level", "vhost", "OVERWRITE_IF_EXISTS_OR_ADD")],
                 response_headers_to_remove=["x-up-remove-vhost"])
    rc = C.route_config([vh],
                        request_headers_to_add=[C.add_header("x-global", "g"),
                                                C.add_header("x-multi", "global", "APPEND_IF_EXISTS_OR_ADD"),
                                                C.add_header("x-level", "global", "OVERWRITE_IF_EXISTS_OR_ADD")],
                        request_headers_to_remove=["x-remove-global"],
                        response_headers_to_add=[C.add_header("x-resp-global", "g"),
                                                 C.add_header("x-resp-level", "global", "OVERWRITE_IF_EXISTS_OR_ADD")],
                        response_headers_to_remove=["x-up-remove-global"])
    return C.bootstrap(listeners=[C.http_listener(port, rc)], clusters=[C.cluster("backend", [up.port])])


def test_request_headers_add_remove_all_levels():
    with HttpUpstream("up") as up:
        port = free_port()
        with Weft(_levels_cfg(up, port)):
            r = request(port, "/", headers=[("x-multi", "client"), ("x-remove-route", "1"),
                                            ("x-remove-vhost", "1"), ("x-remove-global", "1"),
                                            ("x-keep", "kept")])
            eq(r.status, 200, "status")
            got = up.last
            eq([got.header(h) for h in ("x-route", "x-vhost", "x-global")], ["r", "v", "g"],
               "headers added at route, vhost and route-config level")
            eq(got.header_all("x-multi"), ["client", "route", "vhost", "global"],
               "APPEND_IF_EXISTS_OR_ADD at every level (applied route, vhost, then global)")
            eq(got.header_all("x-level"), ["global"],
               "OVERWRITE at all three levels: the route config level is applied last and wins")
            for h in ("x-remove-route", "x-remove-vhost", "x-remove-global"):
                check(not got.has(h), "%s should have been removed before the upstream", h)
            eq(got.header("x-keep"), "kept", "unrelated client header passes")


def test_response_headers_add_remove_all_levels():
    with HttpUpstream("up") as up:
        port = free_port()
        with Weft(_levels_cfg(up, port)):
            r = request(port, "/response-headers?x-up-remove-route=1&x-up-remove-vhost=1"
                              "&x-up-remove-global=1&x-up-keep=2")
            eq(r.status, 200, "status")
            eq([r.header(h) for h in ("x-resp-route", "x-resp-vhost", "x-resp-global")], ["r", "v", "g"],
               "response headers added at every level")
            eq(r.header_all("x-resp-level"), ["global"], "response OVERWRITE at all levels: global wins")
            for h in ("x-up-remove-route", "x-up-remove-vhost", "x-up-remove-global"):
                check(not r.has(h), "response header %s should have been removed", h)
            eq(r.header("x-up-keep"), "2", "other upstream response header passes")


def test_header_append_actions():
    with HttpUpstream("up") as up:
        rt = C.route(C.prefix("/"), cluster="backend", request_headers_to_add=[
            C.add_header("x-aie", "added", "APPEND_IF_EXISTS_OR_ADD"),
            C.add_header("x-aia", "added", "ADD_IF_ABSENT"),
            C.add_header("x-oia", "added", "OVERWRITE_IF_EXISTS_OR_ADD"),
            C.add_header("x-oie", "added", "OVERWRITE_IF_EXISTS"),
            C.add_header("x-default", "added")])               # default: APPEND_IF_EXISTS_OR_ADD
        cfg, port = _one_route(up, [rt])
        with Weft(cfg):
            request(port, "/", headers=[(h, "orig") for h in ("x-aie", "x-aia", "x-oia", "x-oie", "x-default")])
            got = up.last
            eq({h: got.header_all(h) for h in ("x-aie", "x-aia", "x-oia", "x-oie", "x-default")},
               {"x-aie": ["orig", "added"], "x-aia": ["orig"], "x-oia": ["added"], "x-oie": ["added"],
                "x-default": ["orig", "added"]}, "append_action with the header present")
            request(port, "/")
            got = up.last
            eq({h: got.header_all(h) for h in ("x-aie", "x-aia", "x-oia", "x-oie", "x-default")},
               {"x-aie": ["added"], "x-aia": ["added"], "x-oia": ["added"], "x-oie": [],
                "x-default": ["added"]}, "append_action with the header absent")


def test_header_append_false_legacy():
    with HttpUpstream("up") as up:
        rt = C.route(C.prefix("/"), cluster="backend", request_headers_to_add=[
            C.add_header("x-legacy", "added", append=False),
            C.add_header("x-legacy-append", "added", append=True)])
        cfg, port = _one_route(up, [rt])
        with Weft(cfg):
            request(port, "/", headers=[("x-legacy", "orig"), ("x-legacy-append", "orig")])
            eq(up.last.header_all("x-legacy"), ["added"], "deprecated append: false overwrites")
            eq(up.last.header_all("x-legacy-append"), ["orig", "added"], "deprecated append: true appends")


def test_response_headers_on_direct_response():
    port = free_port()
    rt = C.route(C.prefix("/"), direct=(200, "d"),
                 response_headers_to_add=[C.add_header("x-direct", "yes")])
    vh = C.vhost("all", ["*"], [rt], response_headers_to_add=[C.add_header("x-vh", "yes")])
    cfg = C.bootstrap(listeners=[C.http_listener(port, [vh])])
    with Weft(cfg):
        r = request(port, "/")
        eq((r.status, r.header("x-direct"), r.header("x-vh")), (200, "yes", "yes"),
           "response_headers_to_add applies to direct responses")


def test_strict_dns_cluster():
    with HttpUpstream("dns") as up:
        port = free_port()
        cl = C.cluster("backend", [C.lb_endpoint(up.port, host="localhost")], type="STRICT_DNS",
                       dns_lookup_family="V4_ONLY")
        cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
            C.route(C.prefix("/"), cluster="backend")])])], clusters=[cl])
        with Weft(cfg):
            r = request(port, "/dns")
            eq((r.status, r.header("x-upstream")), (200, "dns"), "STRICT_DNS cluster resolving localhost")


def test_header_match_pseudo_headers():
    cfg, port = C.directs([(C.prefix("/", headers=[C.hdr(":method", exact="POST")]), "post"),
                           (C.prefix("/", headers=[C.hdr(":authority", exact="auth.test")]), "authority"),
                           (C.prefix("/"), "fallback")])
    with Weft(cfg):
        eq(request(port, "/", method="POST", body=b"x").text, "post", ":method matcher")
        eq(request(port, "/", host="auth.test").text, "authority", ":authority matcher")
        eq(request(port, "/", host="other.test").text, "fallback", "no match")


def test_rewrite_sets_x_envoy_original_path():
    with HttpUpstream("up") as up:
        cfg, port = _one_route(up, [C.route(C.prefix("/api/"), cluster="backend", action={"prefix_rewrite": "/v2/"}),
                                    C.route(C.prefix("/"), cluster="backend")])
        with Weft(cfg):
            request(port, "/api/x?q=1")
            eq((up.last.target, up.last.header("x-envoy-original-path")), ("/v2/x?q=1", "/api/x?q=1"),
               "rewritten target and x-envoy-original-path at the upstream")
            request(port, "/plain")
            check(not up.last.has("x-envoy-original-path"), "no x-envoy-original-path without a rewrite")


def test_expected_rq_timeout_header():
    with HttpUpstream("up") as up:
        cfg, port = _one_route(up, [C.route(C.prefix("/t"), cluster="backend", action={"timeout": "0.5s"}),
                                    C.route(C.prefix("/"), cluster="backend")])
        with Weft(cfg):
            request(port, "/t")
            eq(up.last.header("x-envoy-expected-rq-timeout-ms"), "500", "route timeout 0.5s")
            request(port, "/other")
            eq(up.last.header("x-envoy-expected-rq-timeout-ms"), "15000", "Envoy's default route timeout is 15s")
