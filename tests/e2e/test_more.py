"""More HCM, router, tcp_proxy and admin behaviour, checked against what Envoy does (one test,
marked, checks a rule of Weft's own):

request_timeout (408 for a slow body, stopped once the request is complete, GET untouched);
idle_timeout over a half-sent head; Expect: 100-continue with a chunked body; pseudo-header and
repeated-header matching; x-forwarded-for joining and the trusted client address; strip_*_host_port;
https_redirect ports; via; the router's suppress_envoy_headers; validate_clusters: false (503 NC);
tcp_proxy max_connect_attempts; per_connection_buffer_limit_bytes; the admin access log;
/stats?filter=REGEX; /healthcheck/fail and /ready; validation of port 0 and prefix_rewrite with
safe_regex; HTTP/1.0 (accept_http_10, default_host_for_http_10); how a cluster is charged for
local 5xx and how upstream_rq_pending_total counts.
"""

import json
import re
import select
import socket
import time
import urllib.parse

import configs as C
from harness import (Client, HttpUpstream, RawConn, TcpEcho, Weft, check, closed_port, eq, free_port,
                     http_req, pattern_bytes, raw, read_lines, request, run_weft, status_of, tmp_path,
                     wait_for, write_file)


# ---------------------------------------------------------------------------------------------
# helpers

def _flags_log():
    path = tmp_path("access.log")
    return path, [C.file_log(path, json_format=C.FLAGS_JSON)]


def _entries(path):
    return [json.loads(l) for l in read_lines(path)]


def _entry_for(path, req_path):
    es = [e for e in _entries(path) if e.get("path") == req_path]
    check(es, "no access log entry for %s in %s", req_path, _entries(path))
    return es[-1]


def _flags(entry):
    return str(entry.get("flags", "")).split(",")


def _validate(text, name="weft.yaml"):
    path = write_file(tmp_path(name), text)
    return path, run_weft(["validate", path])


def _error(path, p):
    """The FILE:LINE:COL: field.path: message error of `weft validate`: (field_path, message)."""
    eq(p.returncode, 1, "exit status of validate on an invalid file (stderr: %r)" % p.stderr[-500:])
    m = re.search(r"(?:^|\s)%s:(\d+):(\d+): ([^:\s]+): (.*)$" % re.escape(path), p.stderr, re.M)
    check(m, "expected an error 'FILE:LINE:COL: field.path: message' naming %s on stderr, got:\n%s", path, p.stderr)
    return m.group(3), m.group(4)


def _header_lines(req, name):
    """Every value of a header exactly as the lines arrived (no comma splitting)."""
    return [v for k, v in req.headers if k.lower() == name.lower()]


def _wait_stat(w, name, value, timeout=3.0):
    try:
        wait_for(lambda: w.stat(name, None) == value, timeout, what="%s == %r" % (name, value))
    except AssertionError:
        raise AssertionError("%s: expected %r, got %r" % (name, value, w.stat(name, None)))


def _trickle(port, first, pieces, gap, read_timeout=4.0):
    """Send `first`, then each of `pieces` `gap` seconds apart (stopping early if the proxy
    answers or closes), then read until the proxy closes or read_timeout passes.
    Returns (bytes, closed, seconds from the first send to the close or last byte)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    out, closed = bytearray(), False
    t0 = time.monotonic()
    t_end = None
    try:
        s.sendall(first)
        for p in pieces:
            if select.select([s], [], [], gap)[0]:
                break                                   # an answer (or EOF) came: stop sending
            s.sendall(p)
        deadline = time.monotonic() + read_timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            t_end = time.monotonic()
            if not b:
                closed = True
                break
            out += b
    finally:
        s.close()
    return bytes(out), closed, (t_end or time.monotonic()) - t0


def _router(**fields):
    tc = dict({"@type": C.ROUTER}, **fields)
    return [{"name": "envoy.filters.http.router", "typed_config": tc}]


# ---------------------------------------------------------------------------------------------
# 1. request_timeout

def test_request_timeout_slow_body_is_408():
    """A body trickling in (a byte every 0.3s, each gap well under the timeout) is still cut
    at request_timeout: the timer covers the whole request, progress does not restart it."""
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, request_timeout="1s")
        with Weft(cfg) as w:
            head = b"POST /slow-body HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\n\r\nx"
            data, closed, dt = _trickle(port, head, [b"x"] * 3, gap=0.3)     # last byte at ~0.9s
            eq(status_of(data), 408, "request_timeout while the body is still arriving")
            check(closed, "connection closed after the 408")
            check(0.9 <= dt <= 1.6, "the 408 should come 1s after the head (the trickle must not "
                  "restart the timer), it came after %.2fs", dt)
            eq(data.split(b"\r\n\r\n", 1)[1], b"request timeout", "Envoy's local reply body for request_timeout")
            _wait_stat(w, "http.ingress.downstream_rq_timeout", 1)
            eq(w.stat("http.ingress.downstream_rq_4xx"), 1, "the 408 is counted as a 4xx")
            wait_for(lambda: up.requests and up.requests[-1].body_len == 4, 2,
                     what="the 4 body bytes sent to reach the upstream before the timeout")
            check(not up.requests[-1].complete, "the upstream never got a complete request")


def test_request_timeout_stops_when_request_complete():
    """The body arrives in time; the upstream then takes longer than request_timeout (but less
    than the route timeout): the timer stopped when the request was complete, so 200."""
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, request_timeout="1s", route_action={"timeout": "5s"})
        with Weft(cfg) as w:
            with RawConn(port, timeout=8) as c:
                t0 = time.monotonic()
                c.send(http_req("POST", "/delay/1800", body=b"complete-body"))
                r = c.read_response()
                dt = time.monotonic() - t0
                eq(r.status, 200, "slow upstream after a complete request")
                eq(r.json()["body"], "complete-body", "body at the upstream")
                check(dt >= 1.7, "the upstream delay was 1.8s, the response came after %.2fs", dt)
                # the timer is not left armed for the connection: a later request is fine too
                time.sleep(1.2)
                c.send(http_req("POST", "/after", body=b"again"))
                eq(c.read_response().status, 200, "next request on the same connection, 1.2s later")
            eq(w.stat("http.ingress.downstream_rq_timeout"), 0, "no request timed out")


def test_request_timeout_does_not_affect_get():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, request_timeout="1s", route_action={"timeout": "5s"})
        with Weft(cfg) as w:
            t0 = time.monotonic()
            r = request(port, "/delay/1800", timeout=8)
            dt = time.monotonic() - t0
            eq(r.status, 200, "a GET is complete with its head: request_timeout does not apply")
            check(dt >= 1.7, "the response came after %.2fs, before the upstream's 1.8s delay", dt)
            eq(w.stat("http.ingress.downstream_rq_timeout"), 0, "downstream_rq_timeout")


def test_route_timeout_not_counted_as_downstream_rq_timeout():
    """Envoy counts a route (upstream) timeout in cluster.X.upstream_rq_timeout only;
    http.X.downstream_rq_timeout is request_timeout's counter."""
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, route_action={"timeout": "0.5s"})
        with Weft(cfg) as w:
            eq(request(port, "/delay/2000", timeout=8).status, 504, "route timeout")
            _wait_stat(w, "cluster.backend.upstream_rq_timeout", 1)
            eq(w.stat("http.ingress.downstream_rq_timeout"), 0,
               "http.ingress.downstream_rq_timeout after a route timeout (request_timeout is not set)")


# ---------------------------------------------------------------------------------------------
# 2. idle_timeout over a half-sent head (no request_headers_timeout)

def test_half_sent_head_gets_stream_idle_timeout():
    """As in Envoy, a request exists from its first byte: without request_headers_timeout, a
    half-sent head is not covered by the connection idle_timeout but by stream_idle_timeout,
    which answers 408 and closes. Header lines trickling in do not reset it."""
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, stream_idle_timeout="1s",
                             common_http_protocol_options={"idle_timeout": "30s"})
        with Weft(cfg) as w:
            r = raw(port, b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: ", timeout=6)
            check(r.closed, "a head that never ends should be closed (got %r after %.2fs)", bytes(r)[:100], r.elapsed)
            check(0.8 <= r.elapsed <= 3.0, "closed after %.2fs with stream_idle_timeout 1s", r.elapsed)
            eq(r.status, 408, "status for a stalled head")
            eq(len(up.requests), 0, "nothing forwarded")
            data, closed, dt = _trickle(port, b"GET / HTTP/1.1\r\n", [b"X-T%d: v\r\n" % i for i in range(3)], gap=0.3)
            check(closed and 0.9 <= dt <= 1.6, "trickled head: closed=%s after %.2fs (stream_idle_timeout 1s)", closed, dt)
            check(data.startswith(b"HTTP/1.1 408 "), "408 for the trickled head, got %r", data[:40])
            eq(len(up.requests), 0, "nothing forwarded")
            time.sleep(0.1)
            got = {k: w.stat("http.ingress." + k) for k in ("downstream_rq_idle_timeout", "downstream_cx_idle_timeout",
                                                             "downstream_rq_timeout")}
            eq(got, {"downstream_rq_idle_timeout": 2, "downstream_cx_idle_timeout": 0, "downstream_rq_timeout": 0},
               "counters after two stalled heads")


def test_request_headers_timeout_counts_header_timeout():
    """request_headers_timeout cuts a slow head and counts downstream_rq_header_timeout."""
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, request_headers_timeout="0.5s")
        with Weft(cfg) as w:
            r = raw(port, b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: ", timeout=6)
            check(r.closed and r.elapsed <= 2.0, "closed after %.2fs with request_headers_timeout 0.5s", r.elapsed)
            eq(len(up.requests), 0, "nothing forwarded")
            time.sleep(0.1)
            eq(w.stat("http.ingress.downstream_rq_header_timeout"), 1, "downstream_rq_header_timeout")


# ---------------------------------------------------------------------------------------------
# 3. Expect: 100-continue with a chunked body

def test_expect_100_continue_chunked():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)                   # proxy_100_continue not set
        with Weft(cfg), RawConn(port, timeout=3) as c:
            c.send(b"POST /exp-chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                   b"Expect: 100-continue\r\n\r\n")
            interim = c.read_response(skip_1xx=False)
            eq((interim.status, interim.version), (100, "HTTP/1.1"),
               "100 Continue before any body byte was sent")
            c.send(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            r = c.read_response()
            eq(r.status, 200, "final status")
            eq(r.interim, [], "no second 100 Continue after ours")
            got = up.last
            eq(got.body, b"hello world", "chunked body at the upstream")
            eq(got.header("transfer-encoding"), "chunked", "upstream framing")
            check(not got.has("expect"), "the proxy answered the expectation itself; "
                  "Expect must not reach the upstream (got %r)", got.header("expect"))
            eq(c.get("/next").status, 200, "connection usable afterwards")


# ---------------------------------------------------------------------------------------------
# 4. header matching: pseudo-headers, repeated headers

def test_header_match_method_and_authority_with_port():
    cfg, port = C.directs([(C.prefix("/", headers=[C.hdr(":method", exact="PUT")]), "put"),
                           (C.prefix("/", headers=[C.hdr(":authority", exact="auth.test:8080")]), "auth-port"),
                           (C.prefix("/", headers=[C.hdr(":authority", suffix=".example")]), "suffix"),
                           (C.prefix("/"), "fallback")])
    with Weft(cfg):
        eq(request(port, "/", method="PUT", body=b"x").text, "put", ":method PUT")
        eq(request(port, "/", method="POST", body=b"x").text, "fallback", ":method POST does not match PUT")
        eq(request(port, "/", host="auth.test:8080").text, "auth-port", ":authority includes the port")
        eq(request(port, "/", host="auth.test").text, "fallback", ":authority without the port")
        eq(request(port, "/", host="www.example").text, "suffix", ":authority suffix match")


def test_header_match_repeated_header_joined():
    cfg, port = C.directs([(C.prefix("/", headers=[C.hdr("x-multi", exact="a,b")]), "joined"),
                           (C.prefix("/", headers=[C.hdr("x-multi", exact="a")]), "first-only"),
                           (C.prefix("/"), "fallback")])
    with Weft(cfg):
        eq(request(port, "/", headers=[("x-multi", "a"), ("x-multi", "b")]).text, "joined",
           "two x-multi lines are matched as 'a,b'")
        eq(request(port, "/", headers=[("x-multi", "a")]).text, "first-only", "one line 'a'")
        eq(request(port, "/", headers=[("x-multi", "a,b")]).text, "joined", "one line 'a,b'")
        eq(request(port, "/", headers=[("x-multi", "b"), ("x-multi", "a")]).text, "fallback",
           "'b,a' is neither")


# ---------------------------------------------------------------------------------------------
# 5. x-forwarded-for

def test_xff_repeated_and_long_values_joined():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, use_remote_address=True)
        with Weft(cfg):
            eq(request(port, "/xff2", headers=[("X-Forwarded-For", "1.1.1.1"),
                                                ("X-Forwarded-For", "2.2.2.2")]).status, 200, "status")
            eq(_header_lines(up.last, "x-forwarded-for"), ["1.1.1.1,2.2.2.2,127.0.0.1"],
               "two XFF lines joined into one, the peer appended")
            long_xff = ", ".join("10.%d.%d.%d" % (i, i * 3 % 256, i * 7 % 256) for i in range(40))
            check(len(long_xff) > 300, "test value should be over 300 bytes")
            eq(request(port, "/xff-long", headers=[("X-Forwarded-For", long_xff)]).status, 200, "status")
            eq(_header_lines(up.last, "x-forwarded-for"), [long_xff + ",127.0.0.1"],
               "a long XFF is kept intact with the peer appended")
            eq(request(port, "/xff-mix", headers=[("X-Forwarded-For", long_xff),
                                                   ("X-Forwarded-For", "3.3.3.3")]).status, 200, "status")
            eq(_header_lines(up.last, "x-forwarded-for"), [long_xff + ",3.3.3.3,127.0.0.1"],
               "long and short lines joined")


def test_xff_trusted_hops_client_address_in_access_log():
    log = tmp_path("access.log")
    fmt = "%REQ(:PATH)% %DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%\n"
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, use_remote_address=False, xff_num_trusted_hops=1,
                             access_log=[C.file_log(log, text=fmt)])
        with Weft(cfg):
            eq(request(port, "/two", headers={"X-Forwarded-For": "1.1.1.1,2.2.2.2"}).status, 200, "status")
            eq(_header_lines(up.last, "x-forwarded-for"), ["1.1.1.1,2.2.2.2"],
               "XFF passed unchanged without use_remote_address")
            eq(request(port, "/spaced", headers={"X-Forwarded-For": "1.1.1.1, 2.2.2.2"}).status, 200, "status")
            eq(request(port, "/one", headers={"X-Forwarded-For": "2.2.2.2"}).status, 200, "status")
            with RawConn(port) as c:
                peer_port = c.sock.getsockname()[1]
                eq(c.get("/none").status, 200, "status")
    lines = {l.split(" ", 1)[0]: l.split(" ", 1)[1] for l in read_lines(log)}
    eq(lines.get("/two"), "1.1.1.1:0 1.1.1.1", "trusted client address: second entry from the right")
    eq(lines.get("/spaced"), "1.1.1.1:0 1.1.1.1", "spaces around the comma")
    eq(lines.get("/none"), "127.0.0.1:%d 127.0.0.1" % peer_port, "no XFF: the peer address")
    check(lines.get("/one", "").startswith("127.0.0.1:"),
          "fewer than xff_num_trusted_hops+1 entries: the peer address, got %r", lines.get("/one"))


# ---------------------------------------------------------------------------------------------
# 6. strip_any_host_port / strip_matching_host_port

def _strip_cfg(up, **hcm_extra):
    port = free_port()
    vhs = [C.vhost("strip", ["strip.test", "[::1]"], [C.route(C.prefix("/"), cluster="backend")],
                   request_headers_to_add=[C.add_header("x-vhost", "strip")]),
           C.vhost("any", ["*"], [C.route(C.prefix("/"), cluster="backend")],
                   request_headers_to_add=[C.add_header("x-vhost", "any")])]
    cfg = C.bootstrap(listeners=[C.http_listener(port, vhs, **hcm_extra)],
                      clusters=[C.cluster("backend", [up.port])])
    return cfg, port


def test_strip_any_host_port():
    with HttpUpstream("up") as up:
        cfg, port = _strip_cfg(up, strip_any_host_port=True)
        with Weft(cfg):
            for host, want in (("strip.test:9999", "strip.test"), ("strip.test:%d" % port, "strip.test"),
                               ("strip.test", "strip.test"), ("[::1]:8080", "[::1]")):
                eq(request(port, "/s", host=host).status, 200, "status for Host %s" % host)
                eq((up.last.header("host"), up.last.header("x-vhost")), (want, "strip"),
                   "Host at the upstream and the vhost matched for Host %s" % host)


def test_strip_matching_host_port():
    with HttpUpstream("up") as up:
        cfg, port = _strip_cfg(up, strip_matching_host_port=True)
        with Weft(cfg):
            eq(request(port, "/m", host="strip.test:%d" % port).status, 200, "status")
            eq((up.last.header("host"), up.last.header("x-vhost")), ("strip.test", "strip"),
               "the listener's port is stripped")
            eq(request(port, "/m", host="strip.test:9999").status, 200, "status")
            eq((up.last.header("host"), up.last.header("x-vhost")), ("strip.test:9999", "any"),
               "another port is kept (and strip.test does not match it)")


def test_no_host_port_stripping_by_default():
    with HttpUpstream("up") as up:
        cfg, port = _strip_cfg(up)
        with Weft(cfg):
            eq(request(port, "/d", host="strip.test:%d" % port).status, 200, "status")
            eq((up.last.header("host"), up.last.header("x-vhost")), ("strip.test:%d" % port, "any"),
               "without strip_*_host_port the port stays")


# ---------------------------------------------------------------------------------------------
# 7. https_redirect and the port

def test_https_redirect_port_80_dropped_other_kept():
    port = free_port()
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
        C.route(C.prefix("/"), redirect={"https_redirect": True})])])])
    with Weft(cfg):
        for host, want in (("r.test:80", "https://r.test/p?q=1"), ("r.test:8080", "https://r.test:8080/p?q=1"),
                           ("r.test", "https://r.test/p?q=1")):
            r = request(port, "/p?q=1", host=host)
            eq((r.status, r.header("location")), (301, want), "https_redirect for Host %s" % host)


def test_https_redirect_keeps_443_on_http():
    """Envoy strips only the default port of the request's own scheme (X-Forwarded-Proto): on a
    plain-HTTP request, :80 goes and :443 stays."""
    port = free_port()
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
        C.route(C.prefix("/"), redirect={"https_redirect": True})])])])
    with Weft(cfg):
        r = request(port, "/p", host="r.test:443")
        eq((r.status, r.header("location")), (301, "https://r.test:443/p"), "https_redirect for Host r.test:443")


# ---------------------------------------------------------------------------------------------
# 8. via

def test_via_on_request_and_response():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, via="1.1 weft-e2e")
        with Weft(cfg):
            r = request(port, "/via")
            eq(r.status, 200, "status")
            eq(_header_lines(up.last, "via"), ["1.1 weft-e2e"], "Via on the upstream request")
            eq(r.header_all("via"), ["1.1 weft-e2e"], "Via on the downstream response")


def test_via_absent_by_default():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg):
            r = request(port, "/via")
            check(not up.last.has("via") and not r.has("via"), "no Via without the via field")


def test_via_on_local_reply():
    """Envoy adds the via value to every response it encodes, local replies included."""
    cfg, port = C.directs([(C.prefix("/"), "direct")], via="1.1 weft-e2e")
    with Weft(cfg):
        r = request(port, "/")
        eq((r.status, r.header_all("via")), (200, ["1.1 weft-e2e"]), "Via on a direct response")


# ---------------------------------------------------------------------------------------------
# 9. suppress_envoy_headers

def test_suppress_envoy_headers():
    with HttpUpstream("up") as up:
        p_plain, p_quiet = free_port(), free_port()
        routes = [C.vhost("all", ["*"], [C.route(C.prefix("/old/"), cluster="backend",
                                                 action={"prefix_rewrite": "/new/", "timeout": "3s"})])]
        cfg = C.bootstrap(listeners=[
            C.http_listener(p_plain, routes, name="plain", stat_prefix="plain"),
            C.http_listener(p_quiet, routes, name="quiet", stat_prefix="quiet",
                            http_filters=_router(suppress_envoy_headers=True))],
            clusters=[C.cluster("backend", [up.port])])
        names = ("x-envoy-expected-rq-timeout-ms", "x-envoy-original-path")
        with Weft(cfg):
            r = request(p_plain, "/old/a")
            eq((r.status, up.last.path), (200, "/new/a"), "status and rewritten path (plain)")
            eq({h: up.last.header(h) for h in names},
               {"x-envoy-expected-rq-timeout-ms": "3000", "x-envoy-original-path": "/old/a"},
               "envoy request headers without suppress_envoy_headers")
            check(r.has("x-envoy-upstream-service-time"), "x-envoy-upstream-service-time without suppression")
            r = request(p_quiet, "/old/b")
            eq((r.status, up.last.path), (200, "/new/b"), "status and rewritten path (suppressed)")
            eq({h: up.last.header(h) for h in names}, {h: None for h in names},
               "envoy request headers with suppress_envoy_headers")
            eq(r.header("x-envoy-upstream-service-time"), None,
               "x-envoy-upstream-service-time with suppress_envoy_headers")


# ---------------------------------------------------------------------------------------------
# 10. validate_clusters: false

def test_validate_clusters_false_missing_cluster_503_NC():
    with HttpUpstream("up") as up:
        port = free_port()
        log, al = _flags_log()
        rc = C.route_config([C.vhost("all", ["*"], [C.route(C.prefix("/gone"), cluster="missing"),
                                                    C.route(C.prefix("/"), cluster="backend")])],
                            validate_clusters=False)
        cfg = C.bootstrap(listeners=[C.http_listener(port, rc, access_log=al)],
                          clusters=[C.cluster("backend", [up.port])])
        path, p = _validate(cfg)
        eq(p.returncode, 0, "validate accepts a missing cluster with validate_clusters: false (stderr %r)" % p.stderr)
        with Weft(cfg):
            eq(request(port, "/gone").status, 503, "route to a missing cluster")
            eq(request(port, "/here").status, 200, "route to an existing cluster")
            eq([r.path for r in up.requests], ["/here"], "nothing sent upstream for the missing cluster")
        e = _entry_for(log, "/gone")
        eq(e["code"], 503, "logged status")
        check("NC" in _flags(e), "access log flags should include NC: %s", e)
        check("NC" not in _flags(_entry_for(log, "/here")), "no NC on the good route")


# ---------------------------------------------------------------------------------------------
# 11. tcp_proxy max_connect_attempts

def _tcp_sessions(port, n):
    """n sequential sessions: send a line, read the echo. Returns [True/False] per session."""
    out = []
    for i in range(n):
        msg = b"ping-%d\n" % i
        s = socket.create_connection(("127.0.0.1", port), timeout=3)
        try:
            s.sendall(msg)
            got = b""
            s.settimeout(3)
            while len(got) < len(msg):
                try:
                    b = s.recv(4096)
                except (ConnectionResetError, socket.timeout):
                    break
                if not b:
                    break
                got += b
            out.append(got == msg)
        finally:
            s.close()
    return out


def _tcp_cfg(cluster_ports, **tcp_extra):
    port = free_port()
    cfg = C.bootstrap(listeners=[C.tcp_listener(port, "echo", **tcp_extra)],
                      clusters=[C.cluster("echo", cluster_ports, connect_timeout="1s")])
    return cfg, port


def test_tcp_max_connect_attempts_2_every_session_succeeds():
    with TcpEcho() as echo:
        cfg, port = _tcp_cfg([closed_port(), echo.port], max_connect_attempts=2)
        with Weft(cfg) as w:
            res = _tcp_sessions(port, 6)
            eq(res, [True] * 6, "every session reaches the echo server on its second attempt")
            _wait_stat(w, "cluster.echo.upstream_cx_connect_fail", 6)
            eq(echo.connections, 6, "echo server connections")


def test_tcp_max_connect_attempts_1_half_fail():
    with TcpEcho() as echo:
        cfg, port = _tcp_cfg([closed_port(), echo.port])            # default: 1 attempt
        with Weft(cfg) as w:
            res = _tcp_sessions(port, 6)
            eq(res.count(True), 3, "round robin over [closed, echo] with one attempt: %r" % res)
            _wait_stat(w, "cluster.echo.upstream_cx_connect_fail", 3)


# ---------------------------------------------------------------------------------------------
# 12. per_connection_buffer_limit_bytes

def test_buffer_limit_below_4096_refused():
    l = C.http_listener(free_port(), [C.vhost("all", ["*"], [C.route(C.prefix("/"), direct=(200, "x"))])])
    l["per_connection_buffer_limit_bytes"] = 1024
    path, p = _validate(C.bootstrap(listeners=[l]))
    fpath, msg = _error(path, p)
    eq(fpath, "static_resources.listeners[0].per_connection_buffer_limit_bytes", "field named in the error")
    check("4096" in msg, "message should give the minimum: %r", msg)
    l["per_connection_buffer_limit_bytes"] = 4096
    path, p = _validate(C.bootstrap(listeners=[l]))
    eq(p.returncode, 0, "4096 is accepted (stderr %r)" % p.stderr)


def test_buffer_limit_16k_proxies_10mib():
    size = 10 << 20
    with HttpUpstream("up") as up:
        port = free_port()
        l = C.http_listener(port, [C.vhost("all", ["*"], [C.route(C.prefix("/"), cluster="backend")])])
        l["per_connection_buffer_limit_bytes"] = 16384
        cfg = C.bootstrap(listeners=[l], clusters=[C.cluster("backend", [up.port],
                                                             per_connection_buffer_limit_bytes=16384)])
        with Weft(cfg), RawConn(port, timeout=20) as c:
            r = c.get("/bytes/%d" % size)
            eq((r.status, len(r.body)), (200, size), "status and length of a 10 MiB response")
            check(r.body == pattern_bytes(size), "10 MiB response bytes differ from what the upstream sent")
            r = c.get("/chunked/%d" % size)
            eq((r.status, len(r.body)), (200, size), "status and length of a 10 MiB chunked response")
            check(r.body == pattern_bytes(size), "10 MiB chunked response bytes differ")
            body = pattern_bytes(size)
            c.send(http_req("POST", "/sink", body=body))
            r = c.read_response()
            eq(r.status, 200, "10 MiB upload")
            eq(r.json()["len"], size, "upload length at the upstream")


# ---------------------------------------------------------------------------------------------
# 13. admin access_log

def test_admin_access_log():
    log = tmp_path("admin.log")
    ap = free_port()
    cfg = C.bootstrap(admin_port=ap, extra={"admin": {"address": C.address(ap), "access_log": [C.file_log(log)]}})
    with Weft(cfg) as w:
        eq(w.admin("/stats").status, 200, "GET /stats")
        eq(w.admin("/no-such-admin-path").status, 404, "unknown admin path")
        def line_for(path):
            ls = [l for l in read_lines(log) if '"GET %s HTTP/1.1"' % path in l]
            return ls[-1] if ls else None
        l = wait_for(lambda: line_for("/stats"), 3, what="an admin access log line for /stats")
        check(re.search(r'"GET /stats HTTP/1\.1" 200 ', l), "admin log line should carry the path and 200: %r", l)
        l = wait_for(lambda: line_for("/no-such-admin-path"), 3, what="a line for the unknown path")
        check(re.search(r'"GET /no-such-admin-path HTTP/1\.1" 404 ', l), "404 logged: %r", l)


# ---------------------------------------------------------------------------------------------
# 14. /stats?filter=REGEX

def _stats_cfg(up):
    cfg, port = C.simple(up.port)
    return cfg, port


def test_stats_filter_regex():
    with HttpUpstream("up") as up:
        cfg, port = _stats_cfg(up)
        with Weft(cfg) as w:
            for _ in range(3):
                eq(request(port, "/").status, 200, "request")
            q = urllib.parse.quote(r"^cluster\.backend\.upstream_rq_total$", safe="")
            r = w.admin("/stats?filter=" + q)
            eq(r.status, 200, "GET /stats?filter=...")
            eq(r.text.strip().splitlines(), ["cluster.backend.upstream_rq_total: 3"], "exactly that stat")
            r = w.admin("/stats?filter=upstream_rq_total")
            lines = r.text.strip().splitlines()
            check(lines and all("upstream_rq_total" in l.split(":")[0] for l in lines),
                  "an unanchored filter is a search: every name contains it: %r", lines)
            check("cluster.backend.upstream_rq_total: 3" in lines, "filtered list: %r", lines)
            r = w.admin("/stats?filter=" + urllib.parse.quote("(unclosed", safe=""))
            eq(r.status, 400, "invalid regex")


def test_stats_filter_matches_per_code_stats():
    """Per-status-code counters are stats of their own: a filter on their full name finds them."""
    with HttpUpstream("up") as up:
        cfg, port = _stats_cfg(up)
        with Weft(cfg) as w:
            for _ in range(2):
                eq(request(port, "/").status, 200, "request")
            eq(w.stat("cluster.backend.upstream_rq_200"), 2, "unfiltered per-code stat")
            q = urllib.parse.quote(r"^cluster\.backend\.upstream_rq_200$", safe="")
            r = w.admin("/stats?filter=" + q)
            eq((r.status, r.text.strip().splitlines()), (200, ["cluster.backend.upstream_rq_200: 2"]),
               "filter on a per-code stat's full name")


# ---------------------------------------------------------------------------------------------
# 15. /healthcheck/fail and /ready

def test_healthcheck_fail_and_ok():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg) as w:
            eq((w.admin("/ready").status, w.admin("/ready").text.strip()), (200, "LIVE"), "/ready before")
            eq(w.admin("/healthcheck/fail").status, 405, "GET /healthcheck/fail needs POST")
            eq(w.admin("/ready").status, 200, "a GET changes nothing")
            eq(w.admin_post("/healthcheck/fail").status, 200, "POST /healthcheck/fail")
            r = w.admin("/ready")
            eq((r.status, r.text.strip()), (503, "DRAINING"), "/ready while health check failed")
            eq(request(port, "/still").status, 200, "traffic is still proxied")
            eq(w.admin_post("/healthcheck/ok").status, 200, "POST /healthcheck/ok")
            r = w.admin("/ready")
            eq((r.status, r.text.strip()), (200, "LIVE"), "/ready after /healthcheck/ok")


# ---------------------------------------------------------------------------------------------
# 16. validation: port 0, prefix_rewrite with safe_regex

def test_validate_listener_port_0_refused():
    cfg = C.bootstrap(listeners=[C.http_listener(0, [C.vhost("all", ["*"], [C.route(C.prefix("/"), direct=(200, "x"))])])])
    path, p = _validate(cfg)
    fpath, msg = _error(path, p)
    eq(fpath, "static_resources.listeners[0].address.socket_address.port_value", "field named")
    # a cluster endpoint on port 0 is a different matter: only listeners need a fixed port
    check("listener" in msg, "message: %r", msg)


def test_validate_prefix_rewrite_with_safe_regex_refused():
    cfg = C.bootstrap(listeners=[C.http_listener(free_port(), [C.vhost("all", ["*"], [
        C.route(C.regex("/a/.*"), cluster="backend", action={"prefix_rewrite": "/b/"})])])],
        clusters=[C.cluster("backend", [free_port()])])
    path, p = _validate(cfg)
    fpath, msg = _error(path, p)
    eq(fpath, "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config."
              "virtual_hosts[0].routes[0].route.prefix_rewrite", "field named")
    # the same in a redirect
    cfg = C.bootstrap(listeners=[C.http_listener(free_port(), [C.vhost("all", ["*"], [
        C.route(C.regex("/a/.*"), redirect={"prefix_rewrite": "/b/"})])])])
    path, p = _validate(cfg)
    fpath, msg = _error(path, p)
    check(fpath.endswith("routes[0].redirect.prefix_rewrite"), "field named for a redirect: %s", fpath)
    # and prefix_rewrite with a prefix match is fine
    cfg = C.bootstrap(listeners=[C.http_listener(free_port(), [C.vhost("all", ["*"], [
        C.route(C.prefix("/a/"), cluster="backend", action={"prefix_rewrite": "/b/"})])])],
        clusters=[C.cluster("backend", [free_port()])])
    path, p = _validate(cfg)
    eq(p.returncode, 0, "prefix_rewrite with a prefix match (stderr %r)" % p.stderr)


# ---------------------------------------------------------------------------------------------
# 17. HTTP/1.0

def test_http10_accepted():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, http_protocol_options={"accept_http_10": True})
        with Weft(cfg):
            r = raw(port, b"GET /old HTTP/1.0\r\nHost: h10.test\r\n\r\n", timeout=3)
            eq(r.status, 200, "HTTP/1.0 request with accept_http_10")
            check(r.closed, "an HTTP/1.0 request without keep-alive ends with the connection")
            eq(json.loads(bytes(r).split(b"\r\n\r\n", 1)[1])["path"], "/old", "echoed path")
            eq((up.last.path, up.last.header("host")), ("/old", "h10.test"), "request at the upstream")
            # a chunked upstream response reaches a 1.0 client close-delimited, without chunk framing
            r = raw(port, b"GET /chunked/5000 HTTP/1.0\r\nHost: h10.test\r\n\r\n", timeout=3)
            head, body = bytes(r).split(b"\r\n\r\n", 1)
            eq(r.status, 200, "status")
            check(b"transfer-encoding" not in head.lower(), "no chunked framing toward HTTP/1.0: %r", head)
            eq(body, pattern_bytes(5000), "close-delimited body")
            # keep-alive on request
            with RawConn(port) as c:
                c.send(b"GET /ka1 HTTP/1.0\r\nHost: h10.test\r\nConnection: keep-alive\r\n\r\n")
                r1 = c.read_response()
                eq((r1.status, (r1.header("connection") or "").lower()), (200, "keep-alive"),
                   "HTTP/1.0 keep-alive is answered with Connection: keep-alive")
                c.send(b"GET /ka2 HTTP/1.0\r\nHost: h10.test\r\nConnection: keep-alive\r\n\r\n")
                eq(c.read_response().json()["path"], "/ka2", "second request on the kept-alive connection")


def test_http10_default_host():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, http_protocol_options={"accept_http_10": True,
                                                             "default_host_for_http_10": "default.test"})
        with Weft(cfg):
            r = raw(port, b"GET /nohost HTTP/1.0\r\n\r\n", timeout=3)
            eq(r.status, 200, "HTTP/1.0 request without Host")
            eq(up.last.header("host"), "default.test", "the upstream sees default_host_for_http_10")
            r = raw(port, b"GET /withhost HTTP/1.0\r\nHost: given.test\r\n\r\n", timeout=3)
            eq(r.status, 200, "status")
            eq(up.last.header("host"), "given.test", "a Host the client sent is kept")


def test_http10_response_version():
    """Envoy answers an HTTP/1.0 request (accept_http_10) with an HTTP/1.0 status line."""
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, http_protocol_options={"accept_http_10": True})
        with Weft(cfg):
            r = raw(port, b"GET /v HTTP/1.0\r\nHost: h10.test\r\n\r\n", timeout=3)
            eq(bytes(r)[:13], b"HTTP/1.0 200 ", "status line toward an HTTP/1.0 client")


# ---------------------------------------------------------------------------------------------
# 18. cluster charging

def test_closed_port_charges_cluster_503():
    port = free_port()
    cfg, port = C.simple(closed_port(), port=port)
    with Weft(cfg) as w:
        eq(request(port, "/uf").status, 503, "upstream connection refused")
        want = {"cluster.backend.upstream_rq_503": 1, "cluster.backend.upstream_rq_5xx": 1,
                "cluster.backend.upstream_cx_connect_fail": 1, "cluster.backend.upstream_rq_pending_total": 1,
                "http.ingress.downstream_rq_5xx": 1}

        def diff():
            s = w.stats()
            return {k: (v, s.get(k)) for k, v in want.items() if s.get(k) != v}
        try:
            wait_for(lambda: not diff(), 3, what="counters")
        except AssertionError:
            raise AssertionError("counters (expected, got): %s" % diff())


def test_closed_port_not_in_upstream_rq_total():
    """Envoy counts upstream_rq_total when a request is attached to an upstream connection; a
    request whose connection was refused never is."""
    cfg, port = C.simple(closed_port())
    with Weft(cfg) as w:
        eq(request(port, "/uf").status, 503, "upstream connection refused")
        _wait_stat(w, "cluster.backend.upstream_cx_connect_fail", 1)
        eq(w.stat("cluster.backend.upstream_rq_total"), 0, "cluster.backend.upstream_rq_total")


def test_upstream_rq_pending_total_counts_new_connections():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg) as w:
            with Client(port) as cl:
                for i in range(4):
                    eq(cl.get("/p/%d" % i).status, 200, "request %d" % i)
            eq(up.connections, 1, "the upstream connection is reused")
            want = {"cluster.backend.upstream_cx_total": 1, "cluster.backend.upstream_rq_total": 4,
                    "cluster.backend.upstream_rq_pending_total": 1}
            got = {k: w.stat(k) for k in want}
            eq(got, want, "requests on a reused connection did not wait for one")


# ---------------------------------------------------------------------------------------------
# fixes after review: direct peer address, HTTP/1.0 keep-alive local replies, 1xx and 1.0 clients,
# responses cut mid-way counted as tx resets

def test_direct_remote_address_is_the_peer():
    """%DOWNSTREAM_DIRECT_REMOTE_ADDRESS% is the socket peer even when x-forwarded-for is trusted."""
    log = tmp_path("direct.log")
    fmt = "%REQ(:PATH)% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%\n"
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, use_remote_address=False, xff_num_trusted_hops=0,
                             access_log=[C.file_log(log, text=fmt)])
        with Weft(cfg):
            eq(request(port, "/d", headers={"X-Forwarded-For": "9.9.9.9"}).status, 200, "status")
    eq(read_lines(log), ["/d 9.9.9.9 127.0.0.1"], "remote (trusted XFF) and direct (peer) addresses")


def test_http10_keepalive_local_reply():
    """A local reply to an HTTP/1.0 keep-alive request says keep-alive, and the connection serves
    the next request."""
    port = free_port()
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
        C.route(C.prefix("/"), direct_response={"status": 200, "body": {"inline_string": "hi"}})])],
        http_protocol_options={"accept_http_10": True})])
    with Weft(cfg), RawConn(port, timeout=3) as c:
        for i in range(2):
            c.send(b"GET /x HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n")
            r = c.read_response()
            eq((r.status, r.version, r.header("connection"), r.body), (200, "HTTP/1.0", "keep-alive", b"hi"),
               "local reply %d to an HTTP/1.0 keep-alive request" % i)


def test_no_interim_response_to_http10_client():
    """RFC 9110 15.2: no 1xx to an HTTP/1.0 client; the final response still arrives."""
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, http_protocol_options={"accept_http_10": True})
        with Weft(cfg):
            r = raw(port, b"GET /1xx HTTP/1.0\r\nHost: h\r\n\r\n", timeout=3)
            body = bytes(r)
            check(b" 103 " not in body.split(b"\r\n")[0], "status line must not be a 1xx: %r", body[:60])
            check(body.startswith(b"HTTP/1.0 200 "), "final response first, got %r", body[:60])


def test_response_cut_by_route_timeout_counts_tx_reset():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, route_action={"timeout": "0.5s"})
        with Weft(cfg) as w:
            r = raw(port, b"GET /stream/10/300 HTTP/1.1\r\nHost: h\r\n\r\n", timeout=4)
            check(r.closed, "the connection is cut when the route timeout fires mid-response")
            _wait_stat(w, "http.ingress.downstream_rq_tx_reset", 1)


def test_stats_filter_applies_to_json_and_prometheus():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg) as w:
            eq(request(port, "/f").status, 200, "request")
            _wait_stat(w, "cluster.backend.upstream_rq_200", 1)
            q = "filter=" + urllib.parse.quote(r"^cluster\.backend\.upstream_rq_(total|200)$")
            r = w.admin("/stats?format=json&" + q)
            eq(r.status, 200, "JSON with a filter")
            names = sorted(s["name"] for s in json.loads(r.body)["stats"])
            eq(names, ["cluster.backend.upstream_rq_200", "cluster.backend.upstream_rq_total"], "filtered JSON stats")
            r = w.admin("/stats/prometheus?" + q)
            eq(r.status, 200, "Prometheus with a filter")
            samples = [l for l in r.text.splitlines() if l and not l.startswith("#")]
            eq(sorted(l.split(" ")[0] for l in samples),
               sorted(['envoy_cluster_upstream_rq{envoy_cluster_name="backend",envoy_response_code="200"}',
                       'envoy_cluster_upstream_rq_total{envoy_cluster_name="backend"}']), "filtered Prometheus samples")
            eq(w.admin("/stats/prometheus?filter=(").status, 400, "bad regex")


def test_inline_bytes_are_base64():
    port = free_port()
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
        C.route(C.prefix("/"), direct_response={"status": 200, "body": {"inline_bytes": "aGVsbG8gd29ybGQ="}})])])])
    with Weft(cfg):
        eq(request(port, "/").body, b"hello world", "inline_bytes decoded from base64")
    _, p = _validate(cfg.replace("aGVsbG8gd29ybGQ=", "not*base64"))
    eq(p.returncode, 1, "invalid base64 refused")
    check("is not valid base64" in p.stderr and "direct_response.body.inline_bytes" in p.stderr,
          "error names the field: %s", p.stderr)


def test_max_requests_per_connection_downstream():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, common_http_protocol_options={"max_requests_per_connection": 2})
        with Weft(cfg), RawConn(port, timeout=3) as c:
            r1 = c.get("/1")
            eq((r1.status, r1.header("connection")), (200, None), "first request keeps the connection")
            r2 = c.get("/2")
            eq((r2.status, r2.header("connection")), (200, "close"), "the second (the maximum) closes it")
            check(c.is_closed(2.0), "the proxy closes the connection after the maximum")


def test_pending_features_are_refused_with_their_position():
    """Fields declared for features that are not implemented yet are refused, never ignored."""
    with HttpUpstream("up") as up:
        cfg, _ = C.simple(up.port, cluster_extra={"health_checks": [{
            "timeout": "1s", "interval": "1s", "unhealthy_threshold": 1, "healthy_threshold": 1,
            "grpc_health_check": {}}]})
        _, p = _validate(cfg)
        eq(p.returncode, 1, "grpc_health_check refused")
        check("static_resources.clusters[0].health_checks[0].grpc_health_check: grpc_health_check is not "
              "supported yet" in p.stderr, "error names the field: %s", p.stderr)
        cfg, _ = C.simple(up.port, common_http_protocol_options={"max_stream_duration": "1s"})
        _, p = _validate(cfg)
        eq(p.returncode, 1, "max_stream_duration refused")
        check("common_http_protocol_options.max_stream_duration: max_stream_duration is not supported yet"
              in p.stderr, "error: %s", p.stderr)
