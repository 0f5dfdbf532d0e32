"""envoy.filters.http.health_check (issue 3): this proxy answers health checks aimed at it, and
POST /healthcheck/fail makes it fail them (503 + x-envoy-immediate-health-check-fail), so a
checking proxy takes it out of rotation at once — draining by health check."""

import json
import re

import configs as C
from harness import HttpUpstream, Weft, check, eq, free_port, read_lines, request, run_weft, tmp_path, wait_for, write_file

HC = "type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck"
HEALTHZ = [{"name": ":path", "string_match": {"exact": "/healthz"}}]


def _cfg(up, pass_through=False, port=None, log=None, hc=None):
    port = port or free_port()
    hc = hc or {"@type": HC, "pass_through_mode": pass_through, "headers": HEALTHZ}
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
        C.route(C.prefix("/"), cluster="backend")])],
        access_log=[C.file_log(log, json_format={"path": "%REQ(:PATH)%", "code": "%RESPONSE_CODE%",
                                                 "flags": "%RESPONSE_FLAGS%"})] if log else None,
        http_filters=C.http_filters(("envoy.filters.http.health_check", hc)))],
        clusters=[C.cluster("backend", [up.port])])
    return cfg, port


def test_answered_locally_then_failed_for_draining():
    log = tmp_path("hc.log")
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up, log=log)
        with Weft(cfg) as w:
            r = request(port, "/healthz")
            eq((r.status, r.header("x-envoy-immediate-health-check-fail")), (200, None), "healthy")
            eq(len(up.requests), 0, "answered by the proxy")
            eq(w.admin_post("/healthcheck/fail").status, 200, "fail")
            r = request(port, "/healthz")
            eq((r.status, r.header("x-envoy-immediate-health-check-fail")), (503, "true"), "failing")
            eq(request(port, "/app").status, 200, "other requests are still served while draining")
            eq(w.admin_post("/healthcheck/ok").status, 200, "ok")
            eq(request(port, "/healthz").status, 200, "healthy again")
            wait_for(lambda: len(read_lines(log)) == 4, 3, what="access log")
            eq(json.loads(read_lines(log)[1]), {"path": "/healthz", "code": 503, "flags": "LH"}, "LH flag")


def test_pass_through_mode_forwards_until_failing():
    with HttpUpstream("up") as up:
        up.responses["/healthz"] = (200, [], b"from upstream")
        cfg, port = _cfg(up, pass_through=True)
        with Weft(cfg) as w:
            eq(request(port, "/healthz").body, b"from upstream", "forwarded")
            w.admin_post("/healthcheck/fail")
            r = request(port, "/healthz")
            eq((r.status, r.header("x-envoy-immediate-health-check-fail")), (503, "true"), "failed by the proxy")
            eq(len(up.requests), 1, "the failing check did not reach the upstream")


def test_a_checking_proxy_takes_a_failing_one_out():
    """Proxy B fronts upstream b; proxy A balances over B and a direct upstream c, with HTTP
    health checks on /healthz. B's /healthcheck/fail moves A's traffic to c at once."""
    with HttpUpstream("b") as b, HttpUpstream("c") as c:
        c.responses["/healthz"] = (200, [], b"ok")
        b_cfg, b_port = _cfg(b)
        with Weft(b_cfg) as wb:
            a_port = free_port()
            hc = {"timeout": "1s", "interval": "0.1s", "unhealthy_threshold": 3, "healthy_threshold": 1,
                  "http_health_check": {"path": "/healthz"}}
            a_cfg = C.bootstrap(listeners=[C.http_listener(a_port, [C.vhost("all", ["*"], [
                C.route(C.prefix("/"), cluster="mesh")])])],
                clusters=[C.cluster("mesh", [b_port, c.port], health_checks=[hc])])
            with Weft(a_cfg, concurrency=1):
                served = [request(a_port, "/app").header("x-upstream") for _ in range(6)]
                eq(sorted(set(served)), ["b", "c"], "both in rotation")
                wb.admin_post("/healthcheck/fail")
                # unhealthy_threshold is 3, but the immediate-fail header takes B out on the first check
                wait_for(lambda: all(request(a_port, "/app").header("x-upstream") == "c" for _ in range(4)), 3,
                         what="traffic off the failing proxy")
                wb.admin_post("/healthcheck/ok")
                wait_for(lambda: "b" in [request(a_port, "/app").header("x-upstream") for _ in range(4)], 3,
                         what="back in rotation")


def test_health_check_filter_config_refused():
    with HttpUpstream("up") as up:
        cfg, _ = _cfg(up, hc={"@type": HC, "headers": HEALTHZ})
        p = run_weft(["validate", write_file(tmp_path("hc.yaml"), cfg)])
        eq(p.returncode, 1, "missing pass_through_mode")
        check(re.search(r"hc\.yaml:\d+:\d+: .*pass_through_mode is required", p.stderr), "error: %s", p.stderr)
