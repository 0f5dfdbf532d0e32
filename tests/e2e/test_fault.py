"""envoy.filters.http.fault (issue 3): fixed delays and aborts (HTTP and gRPC status) with a
percentage, header-controlled faults only when the config allows them, header / cluster
conditions, per-route configs, max_active_faults, flags and stats."""

import json
import re
import socket
import threading
import time

import configs as C
from harness import (LOCAL, HttpUpstream, Weft, check, eq, free_port, read_lines, request, run_weft, tmp_path,
                     wait_for, write_file)


def _cfg(up, fault=None, routes=None, log=None, name_only=False):
    port = free_port()
    tc = None if name_only else dict({"@type": C.FAULT}, **(fault or {}))
    routes = routes or [C.route(C.prefix("/"), cluster="backend")]
    cfg = C.bootstrap(listeners=[C.http_listener(
        port, [C.vhost("all", ["*"], routes)],
        access_log=[C.file_log(log, json_format={"code": "%RESPONSE_CODE%", "flags": "%RESPONSE_FLAGS%"})]
        if log else None,
        http_filters=C.http_filters(("envoy.filters.http.fault", tc)))],
        clusters=[C.cluster("backend", [up.port]), C.cluster("other", [up.port])])
    return cfg, port


def _pct(n, denominator=None):
    p = {"numerator": n}
    if denominator:
        p["denominator"] = denominator
    return p


def test_abort_answers_without_reaching_the_upstream():
    log = tmp_path("fault.log")
    with HttpUpstream() as up:
        cfg, port = _cfg(up, {"abort": {"http_status": 503, "percentage": _pct(100)}}, log=log)
        with Weft(cfg) as w:
            r = request(port, "/a")
            eq((r.status, r.body), (503, b"fault filter abort"), "aborted")
            eq(len(up.requests), 0, "nothing reached the upstream")
            wait_for(lambda: read_lines(log), 3, what="access log")
            eq(json.loads(read_lines(log)[0]), {"code": 503, "flags": "FI"}, "access log")
            eq(w.stat("http.ingress.fault.aborts_injected"), 1, "aborts_injected")


def test_delay_holds_the_request_then_forwards_it():
    log = tmp_path("delay.log")
    with HttpUpstream() as up:
        cfg, port = _cfg(up, {"delay": {"fixed_delay": "0.4s", "percentage": _pct(100)}}, log=log)
        with Weft(cfg) as w:
            t = time.monotonic()
            r = request(port, "/d", method="POST", body=b"x" * 1000)
            took = time.monotonic() - t
            eq(r.status, 200, "forwarded after the delay")
            check(took >= 0.39, "delayed by 400 ms, took %.3f", took)
            eq(up.requests[0].body_len, 1000, "the body went up after the delay")
            wait_for(lambda: read_lines(log), 3, what="access log")
            eq(json.loads(read_lines(log)[0]), {"code": 200, "flags": "DI"}, "access log")
            eq(w.stat("http.ingress.fault.delays_injected"), 1, "delays_injected")
            wait_for(lambda: w.stat("http.ingress.fault.active_faults") == 0, 3, what="active_faults back to 0")


def test_delay_then_abort():
    with HttpUpstream() as up:
        cfg, port = _cfg(up, {"delay": {"fixed_delay": "0.2s", "percentage": _pct(100)},
                              "abort": {"http_status": 500, "percentage": _pct(100)}})
        with Weft(cfg):
            t = time.monotonic()
            r = request(port, "/")
            eq(r.status, 500, "aborted")
            check(time.monotonic() - t >= 0.19, "after the delay")
            eq(len(up.requests), 0, "nothing reached the upstream")


def test_abort_percentage():
    """50% over 200 requests: the count is binomial (sd ~7); 60..140 is far outside 4 sd."""
    with HttpUpstream() as up:
        cfg, port = _cfg(up, {"abort": {"http_status": 503, "percentage": _pct(5000, "TEN_THOUSAND")}})
        with Weft(cfg):
            codes = [request(port, "/p").status for _ in range(200)]
            aborted = codes.count(503)
            check(60 <= aborted <= 140, "about half aborted, got %d", aborted)
            eq(aborted + codes.count(200), 200, "the others reached the upstream")


def test_zero_percent_and_headers_ignored_unless_allowed():
    with HttpUpstream() as up:
        cfg, port = _cfg(up, {"abort": {"http_status": 503, "percentage": _pct(0)}})
        with Weft(cfg):
            eq(request(port, "/").status, 200, "0% never aborts")
            r = request(port, "/", headers={"x-envoy-fault-abort-request": "418"})
            eq(r.status, 200, "the abort header is ignored without header_abort")


def test_header_controlled_abort_and_delay():
    with HttpUpstream() as up:
        cfg, port = _cfg(up, {"abort": {"header_abort": {}, "percentage": _pct(100)},
                              "delay": {"header_delay": {}, "percentage": _pct(100)}})
        with Weft(cfg):
            eq(request(port, "/").status, 200, "no header, no fault")
            eq(request(port, "/", headers={"x-envoy-fault-abort-request": "418"}).status, 418, "abort by header")
            eq(request(port, "/", headers={"x-envoy-fault-abort-request": "418",
                                           "x-envoy-fault-abort-request-percentage": "0"}).status,
               200, "the percentage header lowers the share")
            eq(request(port, "/", headers={"x-envoy-fault-abort-request": "99"}).status, 200,
               "a status outside 200..599 is ignored")
            t = time.monotonic()
            eq(request(port, "/", headers={"x-envoy-fault-delay-request": "300"}).status, 200, "delayed by header")
            check(time.monotonic() - t >= 0.29, "delayed 300 ms")


def test_grpc_abort_is_grpc_shaped():
    with HttpUpstream() as up:
        cfg, port = _cfg(up, {"abort": {"grpc_status": 14, "percentage": _pct(100)}})
        with Weft(cfg):
            r = request(port, "/pkg.Svc/Method", method="POST", body=b"\0\0\0\0\0",
                        headers={"content-type": "application/grpc", "te": "trailers"})
            eq(r.status, 200, "gRPC aborts are HTTP 200")
            eq((r.header("grpc-status"), r.header("content-type")), ("14", "application/grpc"), "grpc-status")
            eq(r.header("grpc-message"), "fault filter abort", "grpc-message")
            r = request(port, "/plain")
            eq(r.status, 503, "a client that does not speak gRPC gets 503")


def test_conditions_headers_and_upstream_cluster():
    with HttpUpstream() as up:
        routes = [C.route(C.prefix("/other"), cluster="other"), C.route(C.prefix("/"), cluster="backend")]
        cfg, port = _cfg(up, {"abort": {"http_status": 503, "percentage": _pct(100)},
                              "upstream_cluster": "backend",
                              "headers": [{"name": "x-canary", "string_match": {"exact": "1"}}]}, routes=routes)
        with Weft(cfg):
            eq(request(port, "/", headers={"x-canary": "1"}).status, 503, "matching header and cluster")
            eq(request(port, "/").status, 200, "without the header")
            eq(request(port, "/other", headers={"x-canary": "1"}).status, 200, "another cluster")


def test_downstream_nodes():
    with HttpUpstream() as up:
        cfg, port = _cfg(up, {"abort": {"http_status": 503, "percentage": _pct(100)},
                              "downstream_nodes": ["node-a"]})
        with Weft(cfg):
            eq(request(port, "/", headers={"x-envoy-downstream-service-node": "node-a"}).status, 503, "listed node")
            eq(request(port, "/", headers={"x-envoy-downstream-service-node": "node-b"}).status, 200, "other node")
            eq(request(port, "/").status, 200, "no node header")


def test_per_route_config_replaces_the_filters():
    with HttpUpstream() as up:
        routes = [C.route(C.prefix("/faulty"), cluster="backend", typed_per_filter_config={
            "envoy.filters.http.fault": {"@type": C.FAULT, "abort": {"http_status": 502, "percentage": _pct(100)}}}),
            C.route(C.prefix("/"), cluster="backend")]
        cfg, port = _cfg(up, routes=routes, name_only=True)
        with Weft(cfg):
            eq(request(port, "/faulty").status, 502, "the route's fault")
            eq(request(port, "/fine").status, 200, "no fault elsewhere")


def test_max_active_faults():
    with HttpUpstream() as up:
        cfg, port = _cfg(up, {"delay": {"fixed_delay": "1s", "percentage": _pct(100)}, "max_active_faults": 1})
        with Weft(cfg) as w:
            slow = []
            t = threading.Thread(target=lambda: slow.append(request(port, "/slow", timeout=5)))
            t.start()
            wait_for(lambda: w.stat("http.ingress.fault.active_faults") == 1, 3, what="one fault active")
            t0 = time.monotonic()
            eq(request(port, "/fast").status, 200, "second request")
            check(time.monotonic() - t0 < 0.8, "the second request is not delayed")
            eq(w.stat("http.ingress.fault.faults_overflow"), 1, "faults_overflow")
            t.join(5)
            eq(slow[0].status, 200, "the first one went through after its delay")


def test_client_gone_during_delay():
    with HttpUpstream() as up:
        cfg, port = _cfg(up, {"delay": {"fixed_delay": "0.5s", "percentage": _pct(100)}})
        with Weft(cfg) as w:
            s = socket.create_connection((LOCAL, port))
            s.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            wait_for(lambda: w.stat("http.ingress.fault.active_faults") == 1, 3, what="delay active")
            s.close()
            wait_for(lambda: w.stat("http.ingress.fault.active_faults") == 0, 3, what="released when the client left")
            time.sleep(0.6)
            eq(len(up.requests), 0, "a request whose client left is not forwarded")
            eq(request(port, "/").status, 200, "the proxy serves on")


def test_bad_fault_config_refused():
    with HttpUpstream() as up:
        cfg, _ = _cfg(up, {"abort": {"http_status": 700, "percentage": _pct(100)}})
        p = run_weft(["validate", write_file(tmp_path("f.yaml"), cfg)])
        eq(p.returncode, 1, "refused")
        check("abort.http_status" in p.stderr and "200..599" in p.stderr, "error names the field: %s", p.stderr)
        check(re.search(r"f\.yaml:\d+:\d+: ", p.stderr), "error has file:line:column: %s", p.stderr)
        cfg, _ = _cfg(up, {"delay": {"percentage": _pct(100)}})
        p = run_weft(["validate", write_file(tmp_path("f2.yaml"), cfg)])
        eq(p.returncode, 1, "a delay without its length is refused")
        check("fixed_delay or header_delay" in p.stderr, "error: %s", p.stderr)


def _validate_filters(filters):
    port = free_port()
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [C.route(C.prefix("/"), direct=(200, "ok"))])],
                                                 http_filters=filters)])
    return run_weft(["validate", write_file(tmp_path("filters.yaml"), cfg)])


def test_filter_order_and_unknown_filters_refused():
    fault = {"name": "envoy.filters.http.fault", "typed_config": {"@type": C.FAULT}}
    router = C.http_filters()[0]
    p = _validate_filters([router, fault])
    eq(p.returncode, 1, "a filter after the router")
    check("the router must be the last HTTP filter" in p.stderr, "error: %s", p.stderr)
    p = _validate_filters([fault])
    eq(p.returncode, 1, "no router")
    check("must end with envoy.filters.http.router" in p.stderr, "error: %s", p.stderr)
    p = _validate_filters([{"name": "envoy.filters.http.nope"}, router])
    eq(p.returncode, 1, "unknown filter")
    check("'envoy.filters.http.nope' is not supported" in p.stderr, "error: %s", p.stderr)
    p = _validate_filters([{"name": "envoy.filters.http.nope", "is_optional": True}, router])
    eq(p.returncode, 0, "an unknown optional filter is skipped: %s" % p.stderr)
    p = _validate_filters([fault, router])
    eq(p.returncode, 0, "fault then router: %s" % p.stderr)
