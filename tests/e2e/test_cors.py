"""envoy.filters.http.cors (issue 3): route / virtual host policies (typed_per_filter_config and
the deprecated `cors` field), preflights answered locally, response headers for allowed
origins, other origins untouched, filter_enabled, stats."""

import configs as C
from harness import HttpUpstream, Weft, check, eq, free_port, request, run_weft, tmp_path, write_file

POLICY = {"@type": C.CORS_POLICY,
          "allow_origin_string_match": [{"exact": "https://app.example"}, {"suffix": ".trusted.example"}],
          "allow_methods": "GET, POST, PUT", "allow_headers": "content-type, x-token",
          "expose_headers": "x-request-id", "max_age": "600", "allow_credentials": True}


def _cfg(up, routes, vhost_extra=None):
    port = free_port()
    cfg = C.bootstrap(listeners=[C.http_listener(
        port, [C.vhost("all", ["*"], routes, **(vhost_extra or {}))],
        http_filters=C.http_filters(("envoy.filters.http.cors", {"@type": C.CORS})))],
        clusters=[C.cluster("backend", [up.port])])
    return cfg, port


def _preflight(port, origin, path="/api"):
    return request(port, path, method="OPTIONS", headers={"origin": origin, "access-control-request-method": "PUT",
                                                          "access-control-request-headers": "x-token"})


def test_preflight_answered_locally():
    with HttpUpstream() as up:
        cfg, port = _cfg(up, [C.route(C.prefix("/"), cluster="backend",
                                      typed_per_filter_config={"envoy.filters.http.cors": POLICY})])
        with Weft(cfg) as w:
            r = _preflight(port, "https://app.example")
            eq(r.status, 200, "preflight status")
            eq({k: r.header(k) for k in ("access-control-allow-origin", "access-control-allow-methods",
                                         "access-control-allow-headers", "access-control-max-age",
                                         "access-control-allow-credentials")},
               {"access-control-allow-origin": "https://app.example", "access-control-allow-methods": "GET, POST, PUT",
                "access-control-allow-headers": "content-type, x-token", "access-control-max-age": "600",
                "access-control-allow-credentials": "true"}, "preflight headers")
            eq(len(up.requests), 0, "the upstream never saw the preflight")
            r = _preflight(port, "https://a.trusted.example")
            eq(r.header("access-control-allow-origin"), "https://a.trusted.example", "suffix match")
            eq(w.stat("http.ingress.cors.origin_valid"), 2, "origin_valid")


def test_disallowed_origin_goes_on_untouched():
    with HttpUpstream() as up:
        cfg, port = _cfg(up, [C.route(C.prefix("/"), cluster="backend",
                                      typed_per_filter_config={"envoy.filters.http.cors": POLICY})])
        with Weft(cfg) as w:
            r = _preflight(port, "https://evil.example")
            eq(r.header("access-control-allow-origin"), None, "no allow-origin for another origin")
            eq([q.method for q in up.requests], ["OPTIONS"], "the preflight went to the upstream")
            r = request(port, "/api", headers={"origin": "https://evil.example"})
            eq((r.status, r.header("access-control-allow-origin")), (200, None), "actual request untouched")
            eq(w.stat("http.ingress.cors.origin_invalid"), 2, "origin_invalid")


def test_actual_request_gets_cors_headers():
    with HttpUpstream() as up:
        cfg, port = _cfg(up, [C.route(C.prefix("/"), cluster="backend",
                                      typed_per_filter_config={"envoy.filters.http.cors": POLICY})])
        with Weft(cfg):
            r = request(port, "/api", method="POST", body=b"{}", headers={"origin": "https://app.example"})
            eq(r.status, 200, "forwarded")
            eq((r.header("access-control-allow-origin"), r.header("access-control-allow-credentials"),
                r.header("access-control-expose-headers")),
               ("https://app.example", "true", "x-request-id"), "response headers")
            eq(r.header("access-control-allow-methods"), None, "allow-methods only on preflights")
            r = request(port, "/api")
            eq(r.header("access-control-allow-origin"), None, "no Origin, not a CORS request")
            r = request(port, "/api", method="OPTIONS", headers={"origin": "https://app.example"})
            eq((r.status, len(up.requests)), (200, 3), "OPTIONS without Access-Control-Request-Method is forwarded")


def test_legacy_field_and_route_overrides_virtual_host():
    with HttpUpstream() as up:
        vh_policy = {"allow_origin_string_match": [{"exact": "https://vhost.example"}], "allow_methods": "GET"}
        routes = [C.route(C.prefix("/route"), cluster="backend",
                          typed_per_filter_config={"envoy.filters.http.cors": POLICY}),
                  C.route(C.prefix("/legacy"), cluster="backend",
                          action={"cors": {"allow_origin_string_match": [{"exact": "https://legacy.example"}]}}),
                  C.route(C.prefix("/"), cluster="backend")]
        cfg, port = _cfg(up, routes, vhost_extra={"cors": vh_policy})
        with Weft(cfg):
            eq(_preflight(port, "https://vhost.example", "/other").header("access-control-allow-methods"), "GET",
               "the virtual host's (deprecated field) policy")
            eq(_preflight(port, "https://vhost.example", "/route").header("access-control-allow-origin"), None,
               "the route's policy replaces the virtual host's")
            eq(_preflight(port, "https://app.example", "/route").status, 200, "the route's policy")
            r = _preflight(port, "https://legacy.example", "/legacy")
            eq((r.status, r.header("access-control-allow-origin")), (200, "https://legacy.example"),
               "the route action's deprecated cors field")


def test_filter_enabled_zero_turns_it_off():
    with HttpUpstream() as up:
        off = dict(POLICY, filter_enabled={"default_value": {"numerator": 0}})
        cfg, port = _cfg(up, [C.route(C.prefix("/"), cluster="backend",
                                      typed_per_filter_config={"envoy.filters.http.cors": off})])
        with Weft(cfg):
            r = _preflight(port, "https://app.example")
            eq(r.header("access-control-allow-origin"), None, "disabled")
            eq(len(up.requests), 1, "forwarded")


def test_bad_cors_config_refused():
    with HttpUpstream() as up:
        bad = dict(POLICY, max_age="ten minutes")
        cfg, _ = _cfg(up, [C.route(C.prefix("/"), cluster="backend",
                                   typed_per_filter_config={"envoy.filters.http.cors": bad})])
        p = run_weft(["validate", write_file(tmp_path("cors.yaml"), cfg)])
        eq(p.returncode, 1, "refused")
        check("max_age must be a number of seconds" in p.stderr and "cors.yaml:" in p.stderr, "error: %s", p.stderr)
        wrong = {"envoy.filters.http.cors": {"@type": C.FAULT}}
        cfg, _ = _cfg(up, [C.route(C.prefix("/"), cluster="backend", typed_per_filter_config=wrong)])
        p = run_weft(["validate", write_file(tmp_path("cors2.yaml"), cfg)])
        eq(p.returncode, 1, "a per-route config of the wrong type")
        check("does not take envoy.extensions.filters.http.fault.v3.HTTPFault" in p.stderr, "error: %s", p.stderr)
