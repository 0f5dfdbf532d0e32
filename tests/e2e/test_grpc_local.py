"""Local replies to gRPC clients are gRPC-shaped (issue 4), as Envoy answers them: HTTP 200,
content-type application/grpc, grpc-status mapped from the HTTP status (no route ->
UNIMPLEMENTED, no healthy upstream / timeout / overflow -> UNAVAILABLE), grpc-message, no body.
Clients that do not speak gRPC keep the plain HTTP answers."""

import json
import time

import configs as C
from harness import HttpUpstream, Weft, check, closed_port, eq, free_port, read_lines, request, tmp_path, wait_for

GRPC = {"content-type": "application/grpc", "te": "trailers"}


def _grpc(port, path="/pkg.Svc/Call"):
    return request(port, path, method="POST", body=b"\0\0\0\0\0", headers=GRPC)


def test_no_route_is_unimplemented():
    port = free_port()
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
        C.route(C.prefix("/known"), direct=(200, "ok"))])])])
    with Weft(cfg):
        r = _grpc(port)
        eq((r.status, r.header("content-type"), r.header("grpc-status")), (200, "application/grpc", "12"), "NR")
        eq((r.header("grpc-message"), r.body), ("Not Found", b""), "message, no body")
        eq(request(port, "/pkg.Svc/Call").status, 404, "a plain client still gets 404")


def test_upstream_failures_are_unavailable():
    log = tmp_path("grpc.log")
    with HttpUpstream("slow") as slow:
        def stall(req):
            time.sleep(2)
            return (200, [], b"late")
        slow.responses["/slow.Svc/Call"] = stall
        port = free_port()
        cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
            C.route(C.prefix("/dead"), cluster="dead"),
            C.route(C.prefix("/"), cluster="slow", action={"timeout": "0.3s"})])],
            access_log=[C.file_log(log, json_format={"code": "%RESPONSE_CODE%", "flags": "%RESPONSE_FLAGS%"})])],
            clusters=[C.cluster("slow", [slow.port]), C.cluster("dead", [closed_port()])])
        with Weft(cfg):
            r = _grpc(port, "/dead.Svc/Call")
            eq((r.status, r.header("grpc-status")), (200, "14"), "connection failure -> UNAVAILABLE")
            eq(r.header("grpc-message"),
               "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
               "grpc-message")
            r = _grpc(port, "/slow.Svc/Call")
            eq((r.status, r.header("grpc-status"), r.header("grpc-message")), (200, "14", "upstream request timeout"),
               "timeout -> UNAVAILABLE")
            eq(request(port, "/dead.Svc/Call").status, 503, "a plain client gets 503")
            wait_for(lambda: len(read_lines(log)) == 3, 3, what="access log")
            eq([json.loads(x) for x in read_lines(log)[:2]],
               [{"code": 200, "flags": "UF"}, {"code": 200, "flags": "UT"}], "logged as sent, with the flags")


def test_grpc_message_is_percent_encoded():
    port = free_port()
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
        C.route(C.prefix("/"), direct=(503, "100% busy\n"))])])])
    with Weft(cfg):
        r = _grpc(port)
        eq((r.header("grpc-status"), r.header("grpc-message")), ("14", "100%25 busy%0A"), "encoded")


def test_grpc_route_match():
    port = free_port()
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
        C.route(C.prefix("/", grpc={}), direct=(200, "grpc route")),
        C.route(C.prefix("/"), direct=(200, "plain route"))])])])
    with Weft(cfg):
        eq(request(port, "/svc", method="POST", headers={"content-type": "application/grpc+proto"}).body,
           b"grpc route", "gRPC requests take the grpc route")
        eq(request(port, "/svc", method="POST", headers={"content-type": "application/json"}).body,
           b"plain route", "others do not")


def test_retry_on_grpc_status_in_a_trailers_only_answer():
    with HttpUpstream("a") as a, HttpUpstream("b") as b:
        a.responses["/pkg.Svc/Call"] = (200, [("content-type", "application/grpc"), ("grpc-status", "14")], b"")
        b.responses["/pkg.Svc/Call"] = (200, [("content-type", "application/grpc"), ("grpc-status", "0")], b"")
        port = free_port()
        cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
            C.route(C.prefix("/"), cluster="svc", action={"retry_policy": {
                "retry_on": "unavailable,cancelled", "num_retries": 2,
                "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts"}]}})])])],
            clusters=[C.cluster("svc", [a.port, b.port])])
        with Weft(cfg, concurrency=1) as w:
            for _ in range(4):
                r = _grpc(port)
                eq((r.status, r.header("grpc-status"), r.header("x-upstream")), (200, "0", "b"),
                   "UNAVAILABLE from a is retried on b")
            # round robin alternates a, b: every first attempt lands on a, its retry on b
            eq(w.stat("cluster.svc.upstream_rq_retry"), 4, "each attempt that reached a was retried")
        a.responses["/pkg.Svc/Call"] = (200, [("content-type", "application/grpc"), ("grpc-status", "13")], b"")
        with Weft(cfg, concurrency=1):
            codes = {_grpc(port).header("grpc-status") for _ in range(4)}
            eq(codes, {"0", "13"}, "INTERNAL is not in retry_on: passed through")


def test_grpc_timeout_shortens_the_route_timeout():
    with HttpUpstream("slow") as slow:
        def stall(req):
            time.sleep(1.5)
            return (200, [("content-type", "application/grpc"), ("grpc-status", "0")], b"")
        slow.responses["/pkg.Svc/Call"] = stall
        port = free_port()
        cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
            C.route(C.prefix("/"), cluster="slow", action={"timeout": "1s"})])])],
            clusters=[C.cluster("slow", [slow.port])])
        with Weft(cfg):
            t = time.monotonic()
            r = request(port, "/pkg.Svc/Call", method="POST", body=b"\0\0\0\0\0",
                        headers=dict(GRPC, **{"grpc-timeout": "200m"}))
            took = time.monotonic() - t
            eq((r.status, r.header("grpc-status"), r.header("grpc-message")), (200, "4", "upstream request timeout"),
               "cut at the client's deadline: DEADLINE_EXCEEDED")
            check(0.15 < took < 0.9, "after about 200 ms, not the route's 1 s: %.3f" % took)
            eq(slow.requests[0].header("x-envoy-expected-rq-timeout-ms"), "200", "the upstream hears of it")
            t = time.monotonic()
            r = request(port, "/pkg.Svc/Call", method="POST", body=b"\0\0\0\0\0",
                        headers=dict(GRPC, **{"grpc-timeout": "10S"}))
            took = time.monotonic() - t
            eq(r.header("grpc-status"), "14", "timed out by the route: UNAVAILABLE")
            check(0.9 < took < 1.45, "a longer deadline does not lengthen the route timeout: %.3f" % took)
