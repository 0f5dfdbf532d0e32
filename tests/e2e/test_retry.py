"""Route retry_policy (issue 3): conditions, limits, back-off, per-try timeouts, the
previous_hosts predicate, body replay, x-envoy-attempt-count, stats and flags."""

import json
import time

import configs as C
from harness import (HttpUpstream, Weft, check, closed_port, eq, free_port, raw, read_lines, request,
                     run_weft, tmp_path, wait_for, write_file)


def _cfg(endpoints, retry_policy, vhost_extra=None, log=None, route_extra=None):
    port = free_port()
    action = {"retry_policy": retry_policy}
    action.update(route_extra or {})
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
        C.route(C.prefix("/"), cluster="backend", action=action)], **(vhost_extra or {}))],
        access_log=[C.file_log(log, json_format={"path": "%REQ(:PATH)%", "code": "%RESPONSE_CODE%",
                                                 "flags": "%RESPONSE_FLAGS%"})] if log else None)],
        clusters=[C.cluster("backend", endpoints)])
    return cfg, port


def _stats(w, *names):
    s = w.stats()
    return {n: s.get("cluster.backend." + n) for n in names}


def test_retry_5xx_moves_to_another_host():
    bad, good = HttpUpstream("bad"), HttpUpstream("good")
    bad.responses["/r"] = (503, [("content-type", "text/plain")], b"busy")
    try:
        cfg, port = _cfg([bad.port, good.port], {
            "retry_on": "5xx", "num_retries": 2,
            "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts"}]})
        with Weft(cfg, concurrency=1) as w:
            for i in range(4):
                r = request(port, "/r")
                eq((r.status, r.header("x-upstream")), (200, "good"), "request %d answered by the good host" % i)
            # round robin alternates bad, good: every first attempt lands on the bad host and its
            # retry (previous_hosts excludes the bad one) on the good host
            wait_for(lambda: _stats(w, "upstream_rq_retry")["upstream_rq_retry"] == 4, 3, what="retries")
            eq(_stats(w, "upstream_rq_retry_success", "upstream_rq_503"),
               {"upstream_rq_retry_success": 4, "upstream_rq_503": None}, "retry stats")
            eq(len(bad.requests), 4, "the bad host saw the first attempts")
    finally:
        bad.close()
        good.close()


def test_retry_limit_then_the_last_response():
    up = HttpUpstream("up")
    up.responses["/r"] = (503, [("content-type", "text/plain")], b"still busy")
    log = tmp_path("retry.log")
    try:
        cfg, port = _cfg([up.port], {"retry_on": "5xx", "num_retries": 2,
                                     "retry_back_off": {"base_interval": "0.01s"}}, log=log)
        with Weft(cfg, concurrency=1) as w:
            r = request(port, "/r")
            eq((r.status, r.body), (503, b"still busy"), "the last attempt's response is passed on")
            eq(len(up.requests), 3, "one attempt and two retries")
            wait_for(lambda: _stats(w, "upstream_rq_retry_limit_exceeded")["upstream_rq_retry_limit_exceeded"] == 1,
                     3, what="upstream_rq_retry_limit_exceeded")
            eq(_stats(w, "upstream_rq_retry")["upstream_rq_retry"], 2, "upstream_rq_retry")
        entry = json.loads(read_lines(log)[-1])
        check("URX" in str(entry["flags"]).split(","), "URX in the access log flags: %s", entry)
    finally:
        up.close()


def test_no_retry_for_a_status_the_policy_does_not_name():
    up = HttpUpstream("up")
    up.responses["/r"] = (404, [("content-type", "text/plain")], b"nope")
    try:
        cfg, port = _cfg([up.port], {"retry_on": "5xx", "num_retries": 3})
        with Weft(cfg):
            eq(request(port, "/r").status, 404, "404 is not retried on 5xx")
            eq(len(up.requests), 1, "a single attempt")
    finally:
        up.close()


def test_retriable_status_codes():
    up = HttpUpstream("up")
    calls = []

    def teapot_then_ok(req):
        calls.append(1)
        return (418, [], b"teapot") if len(calls) == 1 else (200, [], b"ok")
    up.responses["/r"] = teapot_then_ok
    try:
        cfg, port = _cfg([up.port], {"retry_on": "retriable-status-codes", "retriable_status_codes": [418]})
        with Weft(cfg):
            r = request(port, "/r")
            eq((r.status, r.body), (200, b"ok"), "418 retried")
    finally:
        up.close()


def test_connect_failure_is_retried():
    good = HttpUpstream("good")
    try:
        cfg, port = _cfg([closed_port(), good.port], {"retry_on": "connect-failure", "num_retries": 1})
        with Weft(cfg, concurrency=1):
            for i in range(4):
                eq(request(port, "/c").status, 200, "request %d after a refused connection" % i)
    finally:
        good.close()


def test_reset_is_retried():
    flaky, good = HttpUpstream("flaky"), HttpUpstream("good")
    flaky.responses["/reset"] = lambda req: b""   # close without answering
    try:
        cfg, port = _cfg([flaky.port, good.port], {"retry_on": "reset", "num_retries": 1})
        with Weft(cfg, concurrency=1):
            for i in range(2):
                r = request(port, "/reset")
                eq((r.status, r.header("x-upstream")), (200, "good"), "request %d" % i)
    finally:
        flaky.close()
        good.close()


def test_per_try_timeout():
    slow, fast = HttpUpstream("slow"), HttpUpstream("fast")

    def stall(req):
        time.sleep(2)
        return (200, [], b"late")
    slow.responses["/t"] = stall
    try:
        cfg, port = _cfg([slow.port, fast.port], {"retry_on": "5xx", "num_retries": 1, "per_try_timeout": "0.3s"})
        with Weft(cfg, concurrency=1) as w:
            t0 = time.monotonic()
            r = request(port, "/t")
            dt = time.monotonic() - t0
            eq((r.status, r.header("x-upstream")), (200, "fast"), "answered by the other host")
            check(dt < 1.5, "the per-try timeout cut the slow attempt (took %.2fs)", dt)
            eq(_stats(w, "upstream_rq_per_try_timeout")["upstream_rq_per_try_timeout"], 1, "per-try timeouts")
    finally:
        slow.close()
        fast.close()


def test_request_body_is_replayed():
    bad, good = HttpUpstream("bad"), HttpUpstream("good")
    bad.responses["/sink"] = (503, [], b"busy")
    body = bytes(range(256)) * 100   # 25.6 KB
    try:
        cfg, port = _cfg([bad.port, good.port], {"retry_on": "5xx", "num_retries": 1})
        with Weft(cfg, concurrency=1):
            r = request(port, "/sink", method="POST", body=body)
            eq(r.status, 200, "status after the retry")
            eq(good.last.body, body, "the retried attempt carried the whole body")
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 5000]), body[i:i + 5000])
                              for i in range(0, len(body), 5000)) + b"0\r\n\r\n"
            raw_resp = raw(port, b"POST /sink HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                                 b"Connection: close\r\n\r\n" + chunks, timeout=5)
            eq(raw_resp.status, 200, "chunked body status after the retry")
            eq(good.last.body, body, "the retried attempt carried the whole chunked body")
    finally:
        bad.close()
        good.close()


def test_attempt_count_header():
    up = HttpUpstream("up")
    seen = []

    def fail_once(req):
        seen.append(req.header("x-envoy-attempt-count"))
        return (503, [], b"") if len(seen) == 1 else (200, [], b"ok")
    up.responses["/a"] = fail_once
    try:
        cfg, port = _cfg([up.port], {"retry_on": "5xx"}, vhost_extra={"include_request_attempt_count": True})
        with Weft(cfg):
            eq(request(port, "/a").status, 200, "status")
            eq(seen, ["1", "2"], "x-envoy-attempt-count on each attempt")
    finally:
        up.close()


def test_virtual_host_retry_policy_applies_to_routes():
    up = HttpUpstream("up")
    n = []
    up.responses["/v"] = lambda req: (n.append(1), (503, [], b"") if len(n) == 1 else (200, [], b"ok"))[1]
    try:
        port = free_port()
        cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
            C.route(C.prefix("/"), cluster="backend")], retry_policy={"retry_on": "5xx"})])],
            clusters=[C.cluster("backend", [up.port])])
        with Weft(cfg):
            eq(request(port, "/v").status, 200, "retried under the virtual host's policy")
    finally:
        up.close()


def test_bad_retry_policy_is_refused():
    cfg, _ = _cfg([free_port()], {"retry_on": "5xx,sometimes"})
    p = run_weft(["validate", write_file(tmp_path("r.yaml"), cfg)])
    eq(p.returncode, 1, "unknown retry condition refused")
    check("unknown or unsupported retry condition 'sometimes'" in p.stderr and ".retry_policy.retry_on" in p.stderr,
          "error: %s", p.stderr)
