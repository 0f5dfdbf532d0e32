"""HTTP/1.1 proxying: connections, bodies, special methods and headers, local replies.

Envoy behaviour encoded here: keep-alive and pipelining downstream; pooled keep-alive
upstream; bodies streamed both ways; Expect: 100-continue answered by the proxy; hop-by-hop
headers (connection, keep-alive, proxy-connection) not forwarded; x-forwarded-for appended only
with use_remote_address; x-forwarded-proto set; x-request-id generated when absent; local
replies 404 (NR), 503 (UH: no healthy upstream, UF: connect failure), 504 (UT) with the flag in
the access log; an upstream that breaks HTTP gets a 502/503 with UPE, its bytes never forwarded.
"""

import json
import os
import hashlib
import subprocess
import time

import configs as C
from harness import (UUID_RE, Blackhole, Client, HttpUpstream, RawConn, RssSampler, Weft, check,
                     closed_port, curl_request, eq, free_port, http_req, pattern_bytes, raw, read_lines,
                     request, rss_limit_kib, run_weft, tmp_path, wait_for, write_file)


def _flags_log():
    path = tmp_path("access.log")
    return path, [C.file_log(path, json_format=C.FLAGS_JSON)]


def _log_entries(path):
    return [json.loads(l) for l in read_lines(path)]


def _entry_for(path, req_path):
    es = [e for e in _log_entries(path) if e.get("path") == req_path]
    check(es, "no access log entry for %s in %s", req_path, _log_entries(path))
    return es[-1]


def _has_flag(entry, flag):
    return flag in str(entry.get("flags", "")).split(",")


# ---------------------------------------------------------------------------------------------
# connections

def test_keepalive_downstream_reuse():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg) as w:
            with RawConn(port) as c:
                for i in range(5):
                    r = c.get("/k/%d" % i)
                    eq(r.status, 200, "request %d on the same connection" % i)
                    eq(r.json()["path"], "/k/%d" % i, "echoed path")
                check(not c.is_closed(0.2), "connection should stay open after keep-alive requests")
            eq(w.stat("http.ingress.downstream_cx_total"), 1, "downstream connections")
            eq(w.stat("http.ingress.downstream_rq_total"), 5, "downstream requests")


def test_pipelining_in_order():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg), RawConn(port) as c:
            c.send(http_req("GET", "/delay/300") + http_req("GET", "/p2") + http_req("GET", "/p3"))
            paths = [c.read_response().json()["path"] for _ in range(3)]
            eq(paths, ["/delay/300", "/p2", "/p3"], "pipelined responses in request order")
            eq(c.get("/after").status, 200, "connection usable after pipelining")


def test_upstream_connection_reuse():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg):
            with Client(port) as cl:
                for i in range(10):
                    eq(cl.get("/r/%d" % i).status, 200, "request %d" % i)
            for i in range(10):                              # a new downstream connection each time
                eq(request(port, "/n/%d" % i).status, 200, "request %d" % i)
            check(up.connections <= 2, "20 sequential requests should reuse upstream connections; "
                  "the upstream saw %d connections", up.connections)
            check(max(r.seq for r in up.requests) >= 10, "some upstream connection should carry >= 10 requests")


def test_connection_close_honored():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg), RawConn(port) as c:
            c.send(http_req("GET", "/cc", headers=[("Connection", "close")]))
            r = c.read_response()
            eq(r.status, 200, "status")
            eq((r.header("connection") or "").lower(), "close", "response Connection header")
            check(c.is_closed(2.0), "proxy must close the connection after Connection: close")
            check("close" not in (up.last.header("connection") or "").lower(),
                  "Connection: close is hop-by-hop and must not reach the upstream")
            eq(request(port, "/again").status, 200, "next request")
            eq(up.connections, 1, "upstream connection survives a downstream Connection: close")


def test_upstream_connection_close_response():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg), Client(port) as cl:
            eq(cl.get("/close").status, 200, "response carrying Connection: close from upstream")
            eq(cl.get("/after").status, 200, "next request gets a new upstream connection")
            eq(cl.connects, 1, "downstream connection is not closed because the upstream one was")
            eq(up.connections, 2, "upstream connections")


def test_absolute_form_request():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg):
            r = raw(port, b"GET http://abs.test/x?y=1 HTTP/1.1\r\nHost: abs.test\r\nConnection: close\r\n\r\n")
            eq(r.status, 200, "absolute-form request with a matching Host")
            eq(up.last.target, "/x?y=1", "upstream gets origin-form")
            eq(up.last.header("host"), "abs.test", "upstream Host")


# ---------------------------------------------------------------------------------------------
# bodies

def test_content_length_body():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        body = pattern_bytes(100000)
        with Weft(cfg):
            r = request(port, "/cl", method="POST", body=body)
            eq(r.status, 200, "status")
            eq(up.last.body, body, "body at the upstream")
            eq(up.last.header("content-length"), "100000", "Content-Length at the upstream")


def test_chunked_request_body():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        parts = [b"hello ", b"chunked ", pattern_bytes(5000), b"!"]
        data = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
        with Weft(cfg), RawConn(port) as c:
            c.send(http_req("POST", "/chunked-up", headers=[("Transfer-Encoding", "chunked")]) + data)
            r = c.read_response()
            eq(r.status, 200, "status")
            eq(up.last.body, b"".join(parts), "decoded body at the upstream")
            eq(c.get("/next").status, 200, "connection usable after a chunked body")


def test_chunked_extensions_and_trailers_accepted():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        data = b"5;name=value\r\nhello\r\n6;x\r\n world\r\n0\r\nx-trailer: t\r\n\r\n"
        with Weft(cfg), RawConn(port) as c:
            c.send(http_req("POST", "/ext", headers=[("Transfer-Encoding", "chunked")]) + data)
            r = c.read_response()
            eq(r.status, 200, "chunk extensions and trailers are valid HTTP/1.1")
            eq(up.last.body, b"hello world", "body")
            eq(c.get("/next").status, 200, "connection usable afterwards")


def test_chunked_request_streamed():
    """The upstream sees the request before the client has finished sending its body."""
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg), RawConn(port) as c:
            c.send(http_req("POST", "/stream-up", headers=[("Transfer-Encoding", "chunked")]) + b"5\r\nfirst\r\n")
            wait_for(lambda: up.requests and up.requests[-1].body_len >= 5, 3.0,
                     what="the upstream to receive the first chunk before the body is complete")
            c.send(b"6\r\nsecond\r\n0\r\n\r\n")
            eq(c.read_response().status, 200, "status")
            eq(up.last.body, b"firstsecond", "body")


def test_large_upload_streamed_not_buffered():
    size = 64 << 20
    limit_kib = rss_limit_kib(32)
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        f = tmp_path("upload.bin")
        blob = pattern_bytes(1 << 20)
        with open(f, "wb") as fh:
            for _ in range(size >> 20):
                fh.write(blob)
        with Weft(cfg) as w:
            sampler = RssSampler(w.pid)
            code, body, err = curl_request("http://127.0.0.1:%d/sink" % port, "--data-binary", "@" + f,
                                           "-H", "Content-Type: application/octet-stream", timeout=60)
            growth = sampler.stop()
            eq(code, 200, "upload status (curl: %s)" % err.strip())
            got = json.loads(body)
            with open(f, "rb") as fh:
                want = hashlib.sha256(fh.read()).hexdigest()
            eq((got["len"], got["sha256"]), (size, want), "bytes the upstream received")
            check(growth <= limit_kib, "RSS grew by %d KiB during a 64 MiB upload (limit %d KiB): "
                  "the body should be streamed, not buffered", growth, limit_kib)
        os.unlink(f)


def test_large_download_streamed():
    size = 32 << 20
    limit_kib = rss_limit_kib(32)
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg) as w:
            sampler = RssSampler(w.pid)
            code, body, err = curl_request("http://127.0.0.1:%d/bytes/%d" % (port, size), timeout=60)
            growth = sampler.stop()
            eq(code, 200, "status (curl: %s)" % err.strip())
            eq(len(body), size, "downloaded bytes")
            check(body == pattern_bytes(size), "downloaded bytes differ from what the upstream sent")
            check(growth <= limit_kib, "RSS grew by %d KiB during a 32 MiB download (limit %d KiB)",
                  growth, limit_kib)


def test_chunked_response_passthrough():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg), RawConn(port) as c:
            r = c.get("/chunked/100000")
            eq(r.status, 200, "status")
            eq(r.body, pattern_bytes(100000), "chunked response body")
            eq(c.get("/next").status, 200, "connection usable after a chunked response")


def test_response_streamed():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg), RawConn(port) as c:
            t0 = time.monotonic()
            c.send(http_req("GET", "/stream/3/600"))
            c._read_until(b"chunk 0\n")
            first = time.monotonic() - t0
            check(first < 0.5, "first chunk arrived after %.2fs; the response should be streamed", first)
            rest = c._read_until(b"0\r\n\r\n")
            check(b"chunk 2\n" in rest, "all chunks arrive")


def test_head_has_no_body():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg), RawConn(port) as c:
            c.send(http_req("HEAD", "/bytes/1000"))
            r = c.read_response(method="HEAD")
            eq(r.status, 200, "HEAD status")
            eq(r.header("content-length"), "1000", "HEAD keeps the Content-Length of the GET")
            r2 = c.get("/after-head")                       # would be garbled by stray body bytes
            eq((r2.status, r2.json()["path"]), (200, "/after-head"), "request after HEAD")
            eq(up.requests[0].method, "HEAD", "method at the upstream")


def test_expect_100_continue_raw():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg), RawConn(port) as c:
            c.send(b"POST /expect HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n")
            interim = c.read_response(skip_1xx=False)
            eq(interim.status, 100, "the proxy answers Expect: 100-continue before the body is sent")
            c.send(b"0123456789")
            r = c.read_response()
            eq(r.status, 200, "final status")
            eq(up.last.body, b"0123456789", "body at the upstream")


def test_expect_100_continue_curl():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        f = write_file(tmp_path("body.bin"), pattern_bytes(2 << 20))
        with Weft(cfg):
            code, body, err = curl_request("http://127.0.0.1:%d/sink" % port, "--data-binary", "@" + f,
                                           "-H", "Expect: 100-continue", "--expect100-timeout", "5")
            eq(code, 200, "status (curl: %s)" % err.strip())
            eq(json.loads(body)["len"], 2 << 20, "body length at the upstream")


def test_1xx_from_upstream():
    """An upstream's 103 Early Hints reaches the client before the final response only with
    proxy_100_continue (Envoy's rule for 1xx); the connection goes on either way."""
    with HttpUpstream("up") as up:
        for proxy in (False, True):
            cfg, port = C.simple(up.port, proxy_100_continue=proxy)
            with Weft(cfg):
                r = raw(port, http_req("GET", "/1xx", headers=[("Connection", "close")]), timeout=3)
                hints = b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 "
                check(bytes(r).startswith(hints) if proxy else bytes(r).startswith(b"HTTP/1.1 200 "),
                      "proxy_100_continue %s: %r", proxy, bytes(r)[:120])
                with RawConn(port) as c:
                    r = c.get("/1xx")
                    eq(r.status, 200, "final response after an upstream 103")
                    eq(r.json()["path"], "/1xx", "body")
                    eq(c.get("/next").status, 200, "connection usable afterwards")


# ---------------------------------------------------------------------------------------------
# forwarding headers

def test_hop_by_hop_headers_not_forwarded():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg):
            request(port, "/hop", headers=[("Connection", "keep-alive"), ("Keep-Alive", "timeout=5"),
                                           ("Proxy-Connection", "keep-alive"), ("x-custom", "1")])
            got = up.last
            for h in ("keep-alive", "proxy-connection"):
                check(not got.has(h), "hop-by-hop header %s reached the upstream", h)
            check((got.header("connection") or "keep-alive").lower() in ("keep-alive", ""),
                  "downstream Connection header leaked: %r", got.header("connection"))
            eq(got.header("x-custom"), "1", "end-to-end header")
            # a header that Connection names is hop-by-hop too (RFC 9110 §7.6.1), whatever the case
            request(port, "/hop2", headers=[("Connection", "Keep-Alive, X-Drop"), ("X-Drop", "1"),
                                            ("x-custom", "2")])
            got = up.last
            check(not got.has("x-drop"), "a header named by Connection reached the upstream")
            eq(got.header("x-custom"), "2", "end-to-end header")
            # "Keep-Alive" alone names only itself: everything else crosses
            request(port, "/hop3", headers=[("Connection", "Keep-Alive"), ("X-Drop", "3")])
            eq(up.last.header("x-drop"), "3", "a header Connection does not name")


def test_x_forwarded_for_use_remote_address():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, use_remote_address=True)
        with Weft(cfg):
            request(port, "/xff")
            eq(up.last.header_all("x-forwarded-for"), ["127.0.0.1"], "XFF set from the peer address")
            request(port, "/xff", headers={"X-Forwarded-For": "1.2.3.4"})
            eq(up.last.header_all("x-forwarded-for"), ["1.2.3.4", "127.0.0.1"], "peer appended to XFF")


def test_x_forwarded_for_untouched_without_use_remote_address():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg):
            request(port, "/xff")
            eq(up.last.header_all("x-forwarded-for"), [], "no XFF appended without use_remote_address")
            request(port, "/xff", headers={"X-Forwarded-For": "1.2.3.4"})
            eq(up.last.header_all("x-forwarded-for"), ["1.2.3.4"], "client XFF passed unchanged")


def test_x_forwarded_proto():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg):
            request(port, "/xfp")
            eq(up.last.header("x-forwarded-proto"), "http", "x-forwarded-proto on a plaintext listener")


def test_fields_weft_sets_go_out_once():
    """What the client or the upstream sent under a name Weft sets is replaced (the route's
    x-envoy-expected-rq-timeout-ms, server by default, x-envoy-upstream-service-time,
    x-forwarded-proto with use_remote_address), or kept where Weft adds the field only when
    it is absent (x-forwarded-proto without use_remote_address, server with APPEND_IF_ABSENT);
    either way the field goes out once."""
    path = "/response-headers?server=up-srv&x-envoy-upstream-service-time=999"
    sent = {"X-Forwarded-Proto": "https", "X-Envoy-Expected-Rq-Timeout-Ms": "1"}
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg):
            r = request(port, path, headers=sent)
            eq(up.last.header_all("x-forwarded-proto"), ["https"], "x-forwarded-proto kept")
            eq(up.last.header_all("x-envoy-expected-rq-timeout-ms"), ["15000"], "the route's timeout, once")
            eq(r.header_all("server"), ["envoy"], "server overwritten")
            ust = r.header_all("x-envoy-upstream-service-time")
            check(len(ust) == 1 and ust[0] != "999", "Weft's own service time, once: %r", ust)
        cfg, port = C.simple(up.port, use_remote_address=True, server_header_transformation="APPEND_IF_ABSENT")
        with Weft(cfg):
            r = request(port, path, headers=sent)
            eq(up.last.header_all("x-forwarded-proto"), ["http"], "x-forwarded-proto replaced")
            eq(r.header_all("server"), ["up-srv"], "the upstream's server kept")
            r = request(port, "/x")
            eq(r.header_all("server"), ["envoy"], "server added where the upstream sent none")


def test_x_request_id_generated_and_kept():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg):
            request(port, "/rid")
            a = up.last.header("x-request-id")
            check(a and UUID_RE.match(a), "generated x-request-id should be a UUID, got %r", a)
            request(port, "/rid")
            b = up.last.header("x-request-id")
            check(b and b != a, "each request gets its own id (%r, %r)", a, b)
            request(port, "/rid", headers={"x-request-id": "my-id-123"})
            eq(up.last.header_all("x-request-id"), ["my-id-123"], "client x-request-id kept")


# ---------------------------------------------------------------------------------------------
# local replies and response flags

def test_404_no_route_flag_NR():
    with HttpUpstream("up") as up:
        port = free_port()
        log, al = _flags_log()
        cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
            C.route(C.prefix("/api"), cluster="backend")])], access_log=al)],
            clusters=[C.cluster("backend", [up.port])])
        with Weft(cfg):
            eq(request(port, "/nope").status, 404, "no route")
            eq(len(up.requests), 0, "nothing sent upstream")
        check(_has_flag(_entry_for(log, "/nope"), "NR"), "access log flags should include NR: %s",
              _entry_for(log, "/nope"))


def test_503_connection_refused_flag_UF():
    port = free_port()
    log, al = _flags_log()
    cfg, port = C.simple(closed_port(), port=port, access_log=al)
    with Weft(cfg):
        r = request(port, "/uf")
        eq(r.status, 503, "upstream connection refused")
        check(b"upstream connect error" in r.body, "Envoy's local reply body, got %r", r.body)
    e = _entry_for(log, "/uf")
    check(_has_flag(e, "UF"), "access log flags should include UF: %s", e)
    eq(e["code"], 503, "logged status")


def test_503_no_endpoints_flag_UH():
    port = free_port()
    log, al = _flags_log()
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
        C.route(C.prefix("/"), cluster="empty")])], access_log=al)],
        clusters=[C.cluster("empty", [])])
    with Weft(cfg):
        r = request(port, "/uh")
        eq((r.status, r.body), (503, b"no healthy upstream"), "cluster without endpoints")
    check(_has_flag(_entry_for(log, "/uh"), "UH"), "flags should include UH: %s", _entry_for(log, "/uh"))


def test_504_route_timeout_flag_UT():
    with HttpUpstream("up") as up:
        log, al = _flags_log()
        cfg, port = C.simple(up.port, access_log=al, route_action={"timeout": "0.5s"})
        with Weft(cfg):
            t0 = time.monotonic()
            r = request(port, "/delay/3000", timeout=10)
            dt = time.monotonic() - t0
            eq((r.status, r.body), (504, b"upstream request timeout"), "route timeout")
            check(0.4 <= dt <= 2.5, "504 after %.2fs with a 0.5s route timeout", dt)
            eq(request(port, "/ok").status, 200, "proxy keeps serving")
        check(_has_flag(_entry_for(log, "/delay/3000"), "UT"), "flags should include UT: %s",
              _entry_for(log, "/delay/3000"))


def test_504_blackhole_upstream():
    with Blackhole() as bh:
        cfg, port = C.simple(bh.port, route_action={"timeout": "0.5s"})
        with Weft(cfg):
            eq(request(port, "/bh", timeout=10).status, 504, "upstream that never answers")


def test_stream_idle_timeout():
    with HttpUpstream("up") as up:
        log, al = _flags_log()
        cfg, port = C.simple(up.port, access_log=al, stream_idle_timeout="0.5s")
        with Weft(cfg):
            t0 = time.monotonic()
            r = request(port, "/delay/3000", timeout=10)
            dt = time.monotonic() - t0
            eq(r.status, 408, "Envoy answers 408 when stream_idle_timeout fires before the response")
            check(dt <= 2.5, "took %.2fs with a 0.5s stream_idle_timeout", dt)
        check(_has_flag(_entry_for(log, "/delay/3000"), "SI"), "flags should include SI: %s",
              _entry_for(log, "/delay/3000"))


def test_downstream_idle_timeout():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, common_http_protocol_options={"idle_timeout": "0.5s"})
        with Weft(cfg), RawConn(port) as c:
            eq(c.get("/").status, 200, "first request")
            t0 = time.monotonic()
            check(c.is_closed(3.0), "idle keep-alive connection should be closed after idle_timeout")
            dt = time.monotonic() - t0
            check(dt >= 0.3, "closed after %.2fs, before the 0.5s idle_timeout", dt)


def test_upstream_bad_status_line_UPE():
    with HttpUpstream("up") as up:
        log, al = _flags_log()
        cfg, port = C.simple(up.port, access_log=al)
        with Weft(cfg):
            r = request(port, "/bad/status")
            check(r.status in (502, 503), "malformed upstream status line: expected 502/503, got %d", r.status)
            check(b"ok" != r.body, "the upstream's broken response must not be passed on")
            eq(request(port, "/fine").status, 200, "proxy keeps serving")
        check(_has_flag(_entry_for(log, "/bad/status"), "UPE"), "flags should include UPE: %s",
              _entry_for(log, "/bad/status"))


def test_upstream_garbage_UPE():
    with HttpUpstream("up") as up:
        log, al = _flags_log()
        cfg, port = C.simple(up.port, access_log=al)
        with Weft(cfg):
            r = request(port, "/bad/garbage")
            check(r.status in (502, 503), "non-HTTP upstream response: expected 502/503, got %d", r.status)
        check(_has_flag(_entry_for(log, "/bad/garbage"), "UPE"), "flags should include UPE: %s",
              _entry_for(log, "/bad/garbage"))


def test_upstream_cl_and_te_response_UPE():
    with HttpUpstream("up") as up:
        log, al = _flags_log()
        cfg, port = C.simple(up.port, access_log=al)
        with Weft(cfg):
            r = request(port, "/bad/clte")
            check(r.status in (502, 503), "upstream response with CL and TE: expected 502/503, got %d", r.status)
            check(b"hello" not in r.body, "the smuggling-shaped response must not be passed on")
        check(_has_flag(_entry_for(log, "/bad/clte"), "UPE"), "flags should include UPE: %s",
              _entry_for(log, "/bad/clte"))


def test_upstream_reset_mid_response():
    """An upstream that dies mid-body: the client must see the connection end, not a short
    body followed by reuse of the connection."""
    def half(req):
        return b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly-part"
    with HttpUpstream("up", responses={"/half": half}) as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg):
            with RawConn(port) as c:
                c.send(http_req("GET", "/half"))
                t0 = time.monotonic()
                try:
                    r = c.read_response()
                except ConnectionError:
                    r = None                                # closed mid-body: what we want
                check(time.monotonic() - t0 < 4.5, "downstream should end promptly when the upstream dies")
                if r is not None:
                    check(r.status in (502, 503), "a truncated upstream response was passed on as complete: "
                          "%d with %d body bytes", r.status, len(r.body))
            eq(request(port, "/ok").status, 200, "proxy keeps serving")


def test_upstream_closes_before_response_flag_UC():
    with HttpUpstream("up", responses={"/drop": lambda req: b""}) as up:
        log, al = _flags_log()
        cfg, port = C.simple(up.port, access_log=al)
        with Weft(cfg):
            r = request(port, "/drop")
            eq(r.status, 503, "upstream closed the connection without a response")
            eq(request(port, "/ok").status, 200, "proxy keeps serving")
        e = _entry_for(log, "/drop")
        check(_has_flag(e, "UC"), "flags should include UC (upstream connection termination): %s", e)


def test_request_timeout_incomplete_body():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, request_timeout="1s")
        with Weft(cfg) as w:
            t0 = time.monotonic()
            r = raw(port, b"POST /rt HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n12345", timeout=5)
            dt = time.monotonic() - t0
            eq(r.status, 408, "request_timeout fires before the body is complete (Envoy: 408)")
            check(r.closed, "connection closed after the 408")
            check(0.8 <= dt <= 3.0, "408 after %.2fs with request_timeout 1s", dt)
            wait_for(lambda: w.stat("http.ingress.downstream_rq_timeout") == 1, 2,
                     what="http.ingress.downstream_rq_timeout == 1")


def test_http10_rejected_by_default():
    """Envoy rejects HTTP/1.0 with 426 Upgrade Required unless accept_http_10 is set."""
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg):
            r = raw(port, b"GET /old HTTP/1.0\r\nHost: h\r\n\r\n")
            eq(r.status, 426, "HTTP/1.0 request")
            eq(len(up.requests), 0, "nothing forwarded")


def test_xff_num_trusted_hops():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port, use_remote_address=True, xff_num_trusted_hops=1)
        with Weft(cfg):
            eq(request(port, "/xff", headers={"X-Forwarded-For": "1.2.3.4"}).status, 200, "status")
            eq(up.last.header_all("x-forwarded-for"), ["1.2.3.4", "127.0.0.1"],
               "peer still appended to XFF with xff_num_trusted_hops")


def test_pipelined_posts_with_bodies():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        chunked = b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
        with Weft(cfg), RawConn(port) as c:
            c.send(http_req("POST", "/b1", body=b"first-body") +
                   http_req("POST", "/b2", headers=[("Transfer-Encoding", "chunked")]) + chunked +
                   http_req("POST", "/b3", body=b"") + http_req("GET", "/b4"))
            got = [c.read_response().json() for _ in range(4)]
            eq([(g["path"], g["body"]) for g in got],
               [("/b1", "first-body"), ("/b2", "abcdefg"), ("/b3", ""), ("/b4", "")],
               "pipelined requests with bodies, in order, each body intact")


def test_large_response_header_passes():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        big = "v" * (30 * 1024)
        with Weft(cfg):
            r = request(port, "/response-headers?x-big=" + big)
            eq((r.status, r.header("x-big")), (200, big), "30 KiB upstream response header")


# ---------------------------------------------------------------------------------------------
# upstream connection options (cluster typed_extension_protocol_options, upstream_connection_options)

def _upstream_opts_cfg(up, common=None, protocol=None, keepalive=None):
    opts = {"@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"}
    if common:
        opts["common_http_protocol_options"] = common
    opts.update(protocol or {"explicit_http_config": {"http_protocol_options": {}}})
    extra = {"typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": opts}}
    if keepalive:
        extra["upstream_connection_options"] = {"tcp_keepalive": keepalive}
    return C.simple(up.port, cluster_extra=extra)


def test_upstream_max_requests_per_connection():
    with HttpUpstream("up") as up:
        cfg, port = _upstream_opts_cfg(up, common={"max_requests_per_connection": 2})
        with Weft(cfg, concurrency=1), Client(port) as cl:
            for i in range(4):
                eq(cl.get("/m/%d" % i).status, 200, "request %d" % i)
            eq(up.connections, 2, "a new upstream connection after every 2 requests")


def test_upstream_idle_timeout():
    with HttpUpstream("up") as up:
        cfg, port = _upstream_opts_cfg(up, common={"idle_timeout": "0.3s"})
        with Weft(cfg, concurrency=1), Client(port) as cl:
            eq(cl.get("/i/1").status, 200, "first request")
            wait_for(lambda: up.open_connections == 0, 3, what="the idle upstream connection to be closed")
            eq(cl.get("/i/2").status, 200, "second request")
            eq(up.connections, 2, "the second request needed a new connection")


def test_upstream_tcp_keepalive():
    with HttpUpstream("up") as up:
        cfg, port = _upstream_opts_cfg(up, keepalive={"keepalive_time": 77, "keepalive_interval": 5,
                                                      "keepalive_probes": 3})
        with Weft(cfg, concurrency=1), Client(port) as cl:
            eq(cl.get("/k").status, 200, "request")
            out = subprocess.run(["ss", "-tno", "state", "established", "dst", "127.0.0.1:%d" % up.port],
                                 capture_output=True, text=True).stdout
            check("keepalive" in out, "the pooled upstream connection has a keepalive timer:\n%s", out)


def test_upgrade_h2c_is_declined_and_served_as_http1():
    """`Upgrade: h2c` (curl --http2 on http://) is not an upgrade Weft takes: the request is
    served over HTTP/1.1 (no 101), its Upgrade/HTTP2-Settings headers are not passed on, and
    the connection keeps working."""
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg):
            status, body, err = curl_request("http://127.0.0.1:%d/h2c" % port, "--http2", "-v")
            eq(status, 200, "served")
            check("< HTTP/1.1 200" in err and "101 Switching" not in err,
                  "answered over HTTP/1.1 without switching: %s", err[-600:])
            got = dict((k.lower(), v) for k, v in up.requests[0].headers)
            check("upgrade" not in got and "http2-settings" not in got, "upgrade headers stripped: %r", got)
            with RawConn(port) as c:
                c.send(b"GET /a HTTP/1.1\r\nhost: x\r\nconnection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\n"
                       b"http2-settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
                eq(c.read_response().status, 200, "first")
                eq(c.get("/b").status, 200, "the connection stays HTTP/1.1")
