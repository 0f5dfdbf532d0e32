"""Cluster circuit_breakers (issue 3): max_connections with max_pending_requests, max_requests,
max_retries and retry budgets; overflow answers 503 with flag UO at once and is counted."""

import json
import threading
import time

import configs as C
from harness import HttpUpstream, Weft, check, eq, free_port, read_lines, request, tmp_path, wait_for


def _cfg(up, thresholds, retry_policy=None, log=None):
    port = free_port()
    action = {"retry_policy": retry_policy} if retry_policy else {}
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
        C.route(C.prefix("/"), cluster="backend", action=action)])],
        access_log=[C.file_log(log, json_format={"path": "%REQ(:PATH)%", "code": "%RESPONSE_CODE%",
                                                 "flags": "%RESPONSE_FLAGS%"})] if log else None)],
        clusters=[C.cluster("backend", [up.port], circuit_breakers={"thresholds": [thresholds]})])
    return cfg, port


def _slow(up, path, seconds):
    def stall(req):
        time.sleep(seconds)
        return (200, [("content-type", "text/plain")], b"done")
    up.responses[path] = stall


def _concurrent(port, paths, gap=0.1):
    got = {}
    lock = threading.Lock()

    def one(p):
        t0 = time.monotonic()
        r = request(port, p, timeout=10)
        with lock:
            got[p] = (r.status, r.header("x-upstream"), time.monotonic() - t0)
    ts = []
    for p in paths:
        t = threading.Thread(target=one, args=(p,))
        t.start()
        ts.append(t)
        time.sleep(gap)
    for t in ts:
        t.join(15)
    return got


def _stat(w, name):
    return w.stats().get("cluster.backend." + name)


def test_max_connections_queues_then_overflows_pending():
    up = HttpUpstream("up")
    for p in ("/a", "/b", "/c"):
        _slow(up, p, 0.6)
    log = tmp_path("cb.log")
    try:
        cfg, port = _cfg(up, {"max_connections": 1, "max_pending_requests": 1}, log=log)
        with Weft(cfg, concurrency=1) as w:
            got = _concurrent(port, ["/a", "/b", "/c"])
            eq(got["/a"][0], 200, "the first request has the connection")
            eq(got["/b"][0], 200, "the second waits for it (pending), then succeeds")
            check(got["/b"][2] > 0.6, "the second waited for the first (%.2fs)", got["/b"][2])
            eq(got["/c"][0], 503, "the third overflows max_pending_requests")
            check(got["/c"][2] < 0.5, "an overflow is answered at once (%.2fs)", got["/c"][2])
            eq(up.connections, 1, "never more than one upstream connection")
            wait_for(lambda: _stat(w, "upstream_rq_pending_overflow") == 1, 3, what="upstream_rq_pending_overflow")
            check(_stat(w, "upstream_cx_overflow") >= 1, "upstream_cx_overflow counted")
        flags = {json.loads(l)["path"]: json.loads(l)["flags"] for l in read_lines(log)}
        eq(flags.get("/c"), "UO", "flag UO on the overflowed request")
    finally:
        up.close()


def test_max_requests_overflow():
    up = HttpUpstream("up")
    _slow(up, "/a", 0.6)
    try:
        cfg, port = _cfg(up, {"max_requests": 1})
        with Weft(cfg, concurrency=1) as w:
            got = _concurrent(port, ["/a", "/b"])
            eq((got["/a"][0], got["/b"][0]), (200, 503), "the second request overflows max_requests")
            eq(len([r for r in up.requests if r.path == "/b"]), 0, "the overflowed request never reached the upstream")
            wait_for(lambda: _stat(w, "upstream_rq_pending_overflow") == 1, 3, what="overflow counted")
            eq(request(port, "/b").status, 200, "with nothing in flight, requests go through again")
    finally:
        up.close()


def test_max_retries_overflow():
    up = HttpUpstream("up")
    up.responses["/r"] = (503, [], b"busy")
    try:
        cfg, port = _cfg(up, {"max_retries": 0}, retry_policy={"retry_on": "5xx", "num_retries": 3})
        with Weft(cfg) as w:
            eq(request(port, "/r").status, 503, "no retry allowed: the 503 is passed on")
            eq(len(up.requests), 1, "a single attempt")
            wait_for(lambda: _stat(w, "upstream_rq_retry_overflow") == 1, 3, what="upstream_rq_retry_overflow")
    finally:
        up.close()


def test_retry_budget_min_concurrency():
    up = HttpUpstream("up")
    up.responses["/r"] = (503, [], b"busy")
    try:
        cfg, port = _cfg(up, {"retry_budget": {"budget_percent": {"value": 0}, "min_retry_concurrency": 1}},
                         retry_policy={"retry_on": "5xx", "num_retries": 2,
                                       "retry_back_off": {"base_interval": "0.01s"}})
        with Weft(cfg) as w:
            eq(request(port, "/r").status, 503, "retries exhausted")
            eq(len(up.requests), 3, "one retry at a time is within the budget's minimum")
            eq(_stat(w, "upstream_rq_retry"), 2, "upstream_rq_retry")
    finally:
        up.close()
