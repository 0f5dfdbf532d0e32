"""Cluster health_checks (issue 3): active HTTP and TCP health checks run by the main thread.
Failing hosts get no traffic and show /failed_active_hc in /clusters; they come back after
healthy_threshold successes; timeouts, refused connections and wrong TCP answers fail; checks
never block requests; reloads keep the state of hosts that stay; bad configs are refused with
file:line:column."""

import re
import threading
import time

import configs as C
from harness import (HttpUpstream, TcpServer, Weft, check, closed_port, eq, free_port, port_open, request, run_weft,
                     tmp_path, wait_for, write_file)

FAST = {"timeout": "1s", "interval": "0.1s", "unhealthy_threshold": 2, "healthy_threshold": 2}


def _hc(**kw):
    d = dict(FAST)
    d.update(kw)
    if "http_health_check" not in d and "tcp_health_check" not in d:
        d["http_health_check"] = {"path": "/healthz"}
    return d


def _cfg(clusters, port=None, admin_port=None):
    port = port or free_port()
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
        C.route(C.prefix("/"), cluster=clusters[0]["name"])])])], clusters=clusters, admin_port=admin_port)
    return cfg, port


NO_PANIC = {"healthy_panic_threshold": {"value": 0}}


def _backend(ports, hc, name="backend", panic=False):
    """Health checks on; the panic threshold off unless `panic` (with it, Envoy sends traffic to
    every host once fewer than half are healthy — see test_panic_when_most_hosts_fail)."""
    extra = {} if panic else {"common_lb_config": NO_PANIC}
    return C.cluster(name, ports, health_checks=[hc], **extra)


def _flags(w, cluster="backend"):
    """{port: health_flags} from /clusters."""
    out = {}
    for line in w.admin("/clusters").text.splitlines():
        m = re.match(r"%s::127\.0\.0\.1:(\d+)::health_flags::(.*)$" % re.escape(cluster), line)
        if m:
            out[int(m.group(1))] = m.group(2)
    return out


def _wait_flags(w, want, cluster="backend", timeout=5.0):
    return wait_for(lambda: _flags(w, cluster) == want, timeout,
                    what="health flags %r (now %r)" % (want, _flags(w, cluster)))


def _hc_count(up, path="/healthz"):
    with up.lock:
        return sum(1 for r in up.requests if r.path == path)


def _served(port, n):
    return [request(port, "/app").header("x-upstream") for _ in range(n)]


def _stat(w, name, cluster="backend"):
    return w.stats().get("cluster.%s.%s" % (cluster, name))


def test_unexpected_status_fails_then_healthy_threshold_brings_back():
    bad, good = HttpUpstream("bad"), HttpUpstream("good")
    state = {"code": 503}
    bad.responses["/healthz"] = lambda req: (state["code"], [], b"")
    try:
        cfg, port = _cfg([_backend([bad.port, good.port], _hc(healthy_threshold=3))])
        with Weft(cfg, concurrency=1) as w:
            # hosts start failing until their first check passes: wait for checks that failed
            wait_for(lambda: _stat(w, "health_check.failure") >= 2, 5, what="two failed checks")
            _wait_flags(w, {bad.port: "/failed_active_hc", good.port: "healthy"})
            eq(_served(port, 10), ["good"] * 10, "a host failing its health check gets no traffic")
            r = bad.requests[0]
            eq((r.method, r.path, r.header("host"), r.header("user-agent")), ("GET", "/healthz", "backend", "Envoy/HC"),
               "the health check request (host defaults to the cluster name)")
            # a 503 outside retriable_statuses fails at once: the host never passed
            eq(_stat(w, "membership_healthy"), 1, "membership_healthy")
            eq(_stat(w, "health_check.healthy"), 1, "health_check.healthy")
            check(_stat(w, "health_check.failure") >= 1 and _stat(w, "health_check.success") >= 1, "success/failure")
            check(_stat(w, "health_check.attempt") >= _stat(w, "health_check.failure") + _stat(w, "health_check.success"),
                  "attempt counts every check")
            eq(_stat(w, "health_check.network_failure"), 0, "a 503 is not a network failure")
            eq(_stat(w, "health_check.passive_failure"), 0, "passive_failure")
            state["code"] = 200
            before = _hc_count(bad)
            _wait_flags(w, {bad.port: "healthy", good.port: "healthy"})
            check(_hc_count(bad) - before >= 3, "healthy again only after healthy_threshold (3) successes, "
                  "saw %d checks", _hc_count(bad) - before)
            eq(set(_served(port, 6)), {"bad", "good"}, "the host takes traffic again")
            eq(_stat(w, "membership_healthy"), 2, "membership_healthy")
    finally:
        bad.close()
        good.close()


def test_retriable_status_counts_to_unhealthy_threshold():
    up, good = HttpUpstream("flaky"), HttpUpstream("good")
    state = {"code": 200}
    up.responses["/healthz"] = lambda req: (state["code"], [], b"")
    try:
        hc = _hc(unhealthy_threshold=4, http_health_check={
            "path": "/healthz", "expected_statuses": [{"start": 200, "end": 300}],
            "retriable_statuses": [{"start": 503, "end": 504}]})
        cfg, port = _cfg([_backend([up.port, good.port], hc)])
        with Weft(cfg, concurrency=1) as w:
            _wait_flags(w, {up.port: "healthy", good.port: "healthy"})
            state["code"] = 503
            before = _hc_count(up)
            _wait_flags(w, {up.port: "/failed_active_hc", good.port: "healthy"})
            check(_hc_count(up) - before >= 4, "failing only after unhealthy_threshold (4) retriable failures, "
                  "saw %d checks", _hc_count(up) - before)
            eq(_served(port, 6), ["good"] * 6, "no traffic to the failing host")
    finally:
        up.close()
        good.close()


def test_immediate_health_check_fail_header():
    up, good = HttpUpstream("draining"), HttpUpstream("good")
    state = {"fail": False}
    up.responses["/healthz"] = lambda req: (
        200, [("x-envoy-immediate-health-check-fail", "true")] if state["fail"] else [], b"")
    try:
        cfg, _ = _cfg([_backend([up.port, good.port], _hc(unhealthy_threshold=50))])
        with Weft(cfg, concurrency=1) as w:
            _wait_flags(w, {up.port: "healthy", good.port: "healthy"})
            state["fail"] = True
            before = _hc_count(up)
            _wait_flags(w, {up.port: "/failed_active_hc", good.port: "healthy"})
            check(_hc_count(up) - before < 10, "failed at once, not after 50 checks")
    finally:
        up.close()
        good.close()


def _tcp_server(answer, name):
    """Answers `answer[0]` to a "ping" (a list, so the test can change it), and an HTTP request
    with a 200 naming itself."""
    def handler(s, _srv):
        data = b""
        while b"ping" not in data and b"\r\n\r\n" not in data:
            b = s.recv(100)
            if not b:
                return
            data += b
        if b"ping" in data:
            s.sendall(answer[0])
            s.recv(100)
        else:
            s.sendall(b"HTTP/1.1 200 OK\r\nx-upstream: %s\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                      % name.encode())
    return TcpServer(handler, name=name)


def test_tcp_send_receive_and_refused():
    good_answer, wrong_answer = [b"xx-po-ng-pong"], [b"pong"]
    good, wrong = _tcp_server(good_answer, "good"), _tcp_server(wrong_answer, "wrong")
    refused = closed_port()
    try:
        hc = _hc(timeout="0.3s", tcp_health_check={"send": {"text": "70696E67"},            # "ping"
                                                   "receive": [{"text": "706f"}, {"text": "6e67"}]})  # "po", "ng"
        connect_only = _hc(tcp_health_check={})
        binary = _hc(tcp_health_check={"send": {"binary": "cGluZw=="}, "receive": [{"binary": "cG9uZw=="}]})
        clusters = [_backend([good.port, wrong.port, refused], hc),
                    _backend([good.port, refused], connect_only, name="plain"),
                    _backend([good.port], binary, name="bin")]
        cfg, port = _cfg(clusters)
        with Weft(cfg, concurrency=1) as w:
            _wait_flags(w, {good.port: "healthy", wrong.port: "healthy", refused: "/failed_active_hc"})
            _wait_flags(w, {good.port: "healthy", refused: "/failed_active_hc"}, cluster="plain")
            _wait_flags(w, {good.port: "healthy"}, cluster="bin")
            wait_for(lambda: _stat(w, "health_check.network_failure", "plain") >= 2, 5,
                     what="refused connections counted as network failures")
            wrong_answer[0] = b"nope"
            _wait_flags(w, {good.port: "healthy", wrong.port: "/failed_active_hc", refused: "/failed_active_hc"})
            eq(_served(port, 4), ["good"] * 4, "traffic only to the host that answers right")
    finally:
        good.close()
        wrong.close()


def test_timeout_marks_unhealthy_and_requests_keep_flowing():
    slow, good = HttpUpstream("slow"), HttpUpstream("good")
    stall = threading.Event()
    stalled = threading.Event()
    release = threading.Event()

    def health(req):
        if stall.is_set():
            stalled.set()
            release.wait(5)
        return (200, [], b"")
    slow.responses["/healthz"] = health
    try:
        cfg, port = _cfg([_backend([slow.port, good.port], _hc(timeout="0.3s"))])
        with Weft(cfg, concurrency=1) as w:
            _wait_flags(w, {slow.port: "healthy", good.port: "healthy"})
            stall.set()
            wait_for(stalled.is_set, 5, what="a health check stalling")
            # the check hangs on the main thread's loop; the worker keeps serving at full speed
            t0 = time.monotonic()
            for _ in range(20):
                eq(request(port, "/app", timeout=2).status, 200, "requests during a stalled check")
            check(time.monotonic() - t0 < 2.0, "20 requests took %.2fs while a check stalled", time.monotonic() - t0)
            _wait_flags(w, {slow.port: "/failed_active_hc", good.port: "healthy"})
            check(_stat(w, "health_check.network_failure") >= 2, "timeouts count as network failures "
                  "(unhealthy_threshold 2)")
            eq(_served(port, 6), ["good"] * 6, "no traffic to the timing-out host")
    finally:
        release.set()
        slow.close()
        good.close()


def test_all_hosts_failing_gives_503_uh():
    bad = HttpUpstream("bad")
    bad.responses["/healthz"] = (500, [], b"")
    try:
        cfg, port = _cfg([_backend([bad.port], _hc())])
        with Weft(cfg, concurrency=1) as w:
            _wait_flags(w, {bad.port: "/failed_active_hc"})
            r = request(port, "/app")
            eq((r.status, r.body), (503, b"no healthy upstream"), "no usable host")
            eq(_hc_count(bad, "/app"), 0, "the failing host got no request")
    finally:
        bad.close()


def test_reload_keeps_state_and_stops_removed_hosts():
    keep, gone, new = HttpUpstream("keep"), HttpUpstream("gone"), HttpUpstream("new")
    state = {"keep": 200}
    keep.responses["/healthz"] = lambda req: (state["keep"], [], b"")
    hc = _hc(unhealthy_threshold=1000, http_health_check={"path": "/healthz",
                                                          "retriable_statuses": [{"start": 503, "end": 504}]})
    try:
        port = free_port()
        cfg, _ = _cfg([_backend([keep.port, gone.port], hc)], port=port)
        with Weft(cfg, concurrency=1) as w:
            _wait_flags(w, {keep.port: "healthy", gone.port: "healthy"})
            # from now on `keep` fails (retriable, far from the threshold): healthy only while its
            # state is kept; a fresh start would leave it failing
            state["keep"] = 503
            cfg2, _ = _cfg([_backend([keep.port, new.port], hc)], port=port, admin_port=w.admin_port)
            w.reload(cfg2)
            wait_for(lambda: new.port in _flags(w), 5, what="the reload")
            _wait_flags(w, {keep.port: "healthy", new.port: "healthy"})
            time.sleep(0.3)
            eq(_flags(w)[keep.port], "healthy", "the kept host's state survived the reload")
            n = _hc_count(gone)
            time.sleep(0.4)
            check(_hc_count(gone) <= n + 1, "the removed host is no longer checked")
            eq(set(_served(port, 6)), {"keep", "new"}, "traffic after the reload")
    finally:
        keep.close()
        gone.close()
        new.close()


def _refused(hc_or_cluster, needle, cluster=None):
    cl = cluster or C.cluster("backend", [free_port()], health_checks=[hc_or_cluster])
    cfg, _ = _cfg([cl])
    path = write_file(tmp_path("hc.yaml"), str(cfg))
    p = run_weft(["validate", path])
    eq(p.returncode, 1, "validate refuses (stderr %r)" % p.stderr)
    check(re.search(r"hc\.yaml:\d+:\d+: ", p.stderr), "file:line:column in %r", p.stderr)
    check(needle in p.stderr, "%r in %r", needle, p.stderr)


def test_config_errors_are_located():
    _refused({"timeout": "1s", "interval": "1s", "unhealthy_threshold": 1, "healthy_threshold": 1},
             "needs a health_checker")
    _refused(_hc(tcp_health_check={"send": {"text": "70696E6"}}), "is not hex")
    _refused(_hc(tcp_health_check={"send": {"text": "zz"}}), "is not hex")
    _refused(dict(FAST, grpc_health_check={}), "grpc_health_check is not supported yet")
    _refused(dict(FAST, custom_health_check={"name": "x"}), "custom_health_check is not supported yet")
    _refused(_hc(event_log_path="/tmp/x"), "event_log_path is not supported yet")
    _refused(_hc(tls_options={"alpn_protocols": ["h2"]}), "tls_options is not supported yet")
    _refused({"interval": "1s", "unhealthy_threshold": 1, "healthy_threshold": 1,
              "http_health_check": {"path": "/"}}, "needs timeout")
    _refused({"timeout": "1s", "interval": "1s", "healthy_threshold": 1, "http_health_check": {"path": "/"}},
             "needs unhealthy_threshold")
    _refused(_hc(http_health_check={"host": "x"}), "needs a path")
    _refused(_hc(http_health_check={"path": "/", "expected_statuses": [{"start": 200, "end": 200}]}),
             "not a range of statuses")
    _refused(_hc(reuse_connection=True), "reuse_connection")
    two = C.cluster("backend", [free_port()], health_checks=[_hc(), _hc()])
    _refused(None, "only one health check per cluster", cluster=two)


def test_valid_config_accepted():
    hc = _hc(interval_jitter="0.05s", interval_jitter_percent=10, initial_jitter="0.1s", no_traffic_interval="5s",
             unhealthy_interval="0.2s", unhealthy_edge_interval="0.1s", healthy_edge_interval="0.1s",
             reuse_connection=False, http_health_check={
                 "path": "/healthz", "host": "health.local",
                 "request_headers_to_add": [{"header": {"key": "x-hc", "value": "1"}}],
                 "request_headers_to_remove": ["user-agent"]})
    up = HttpUpstream("up")
    try:
        cfg, _ = _cfg([_backend([up.port], hc)])
        path = write_file(tmp_path("ok.yaml"), str(cfg))
        p = run_weft(["validate", path])
        eq(p.returncode, 0, "validate accepts (stderr %r)" % p.stderr)
        with Weft(cfg, concurrency=1) as w:
            _wait_flags(w, {up.port: "healthy"})
            r = [q for q in up.requests if q.path == "/healthz"][0]
            eq((r.header("host"), r.header("x-hc"), r.header("user-agent")), ("health.local", "1", None),
               "host, request_headers_to_add and _remove")
    finally:
        up.close()


def test_listeners_wait_for_the_first_round():
    slow, good = HttpUpstream("slow"), HttpUpstream("good")
    release = threading.Event()

    def health(req):
        release.wait(5)
        return (200, [], b"")
    slow.responses["/healthz"] = health
    try:
        cfg, port = _cfg([_backend([slow.port, good.port], _hc(timeout="5s"))])
        w = Weft(cfg, concurrency=1, wait_ready=False)
        with w:
            r = wait_for(lambda: w.admin("/ready", timeout=1), 5, what="the admin server")
            eq((r.status, r.body), (503, b"INITIALIZING\n"), "/ready while the first check is in flight")
            check(not port_open(port), "the listener is not open before the first round of checks")
            release.set()
            w.wait_until_ready()
            eq(set(_served(port, 4)), {"slow", "good"}, "both hosts passed their first check: no 503 UH at start")
    finally:
        release.set()
        slow.close()
        good.close()


def test_panic_when_most_hosts_fail():
    """Envoy's default panic threshold (50%): with 2 of 3 hosts failing their checks, the level
    panics and all three take traffic again (counted in lb_healthy_panic)."""
    with HttpUpstream("good") as good, HttpUpstream("bad1") as bad1, HttpUpstream("bad2") as bad2:
        for b in (bad1, bad2):
            b.responses["/healthz"] = (503, [], b"down")
        cfg, port = _cfg([_backend([good.port, bad1.port, bad2.port], _hc(), panic=True)])
        with Weft(cfg, concurrency=1) as w:
            _wait_flags(w, {good.port: "healthy", bad1.port: "/failed_active_hc", bad2.port: "/failed_active_hc"})
            eq(sorted(set(_served(port, 9))), ["bad1", "bad2", "good"], "panic: every host takes traffic")
            check(w.stat("cluster.backend.lb_healthy_panic") >= 9, "lb_healthy_panic counted")


def test_large_cluster_skips_failing_hosts():
    good = HttpUpstream("good")
    dead = closed_port()
    try:
        # 300 hosts (one address 299 times: one session, one shared record)
        cfg, port = _cfg([_backend([dead] * 299 + [good.port], _hc())])
        with Weft(cfg, concurrency=1) as w:
            _wait_flags(w, {dead: "/failed_active_hc", good.port: "healthy"})
            eq(_served(port, 8), ["good"] * 8, "the failing hosts of a 300-host cluster get no traffic")
    finally:
        good.close()
