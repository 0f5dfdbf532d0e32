"""HTTP/2 on the downstream side of the HTTP connection manager, as Envoy does it: codec_type
(AUTO by the client preface or ALPN, HTTP2, HTTP1), h2 clients in front of HTTP/1.1 upstreams,
http2_protocol_options (SETTINGS, windows, abuse limits) and the header limits, stats, access
log, GOAWAY on drain, flow control both ways, and the known attacks (rapid reset, CONTINUATION
flood, HPACK bomb, PING/SETTINGS floods from a peer that does not read, empty frames, PRIORITY
and WINDOW_UPDATE floods, streams over the limit), each with a bystander on another connection
that must not notice.

Normal flows use real clients: curl (--http2-prior-knowledge, --http2 over TLS), nghttp and
h2load (Debian's nghttp2-client). What no real client sends goes through h2raw.H2Conn."""

import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time

import configs as C
import h2raw as H
from h2raw import H2Conn
from harness import (HttpUpstream, RssSampler, TcpServer, Weft, check, curl, eq, free_port, http_req,
                     pattern_bytes, raw, read_lines, request, rss_limit_kib, run_weft, status_of, tmp_path,
                     wait_for, write_file)

# Headers that are about one connection: never forwarded from h2 to an HTTP/1.1 upstream, never
# sent in an HTTP/2 response (RFC 9113 §8.2.2).
CONNECTION_SPECIFIC = ("connection", "keep-alive", "proxy-connection", "upgrade", "http2-settings",
                       "transfer-encoding")

ENVOY_MAX_CONCURRENT_STREAMS = 2147483647
ABUSE_RSS_MIB = 16                       # RSS growth allowed while an attack runs
BACKPRESSURE_RSS_MIB = 8                 # ... while a reader or an upstream stalls a transfer


def _cfg(up_port, h2=None, codec="AUTO", **hcm_extra):
    """(Bootstrap, port): one HTTP listener, codec_type `codec`, every path to cluster backend.
    h2: the connection manager's http2_protocol_options."""
    if h2 is not None:
        hcm_extra["http2_protocol_options"] = h2
    return C.simple(up_port, codec_type=codec, **hcm_extra)


class CurlOut:
    def __init__(self, code, version, body, head, err):
        self.code, self.version, self.body, self.head, self.err = code, version, body, head, err


def curl_h2(url, *args, mode="--http2-prior-knowledge", timeout=15.0):
    """curl MODE URL: status, HTTP version as curl prints it ("2", "1.1"), body, the response
    head (-D) and stderr. code is 0 when curl got no response."""
    out, hdr = tmp_path("curl.body"), tmp_path("curl.head")
    p = curl("-sS", mode, "--max-time", "10", "-o", out, "-D", hdr, "-w", "%{http_code} %{http_version}",
             *args, url, timeout=timeout)
    fields = p.stdout.decode().split() + ["0", "0"]
    body = head = b""
    if os.path.exists(out):
        with open(out, "rb") as f:
            body = f.read()
    if os.path.exists(hdr):
        with open(hdr, "rb") as f:
            head = f.read()
    return CurlOut(int(fields[0]), fields[1], body, head.decode("latin-1"), p.stderr.decode("utf-8", "replace"))


def _check_h1_request(req, authority, what):
    """What the HTTP/1.1 upstream got for an h2 request: HTTP/1.1, Host = the :authority, no
    pseudo-header, nothing connection-specific (transfer-encoding is checked by the caller)."""
    eq(req.version, "HTTP/1.1", "%s: version of the request at the upstream" % what)
    names = [k.lower() for k, _ in req.headers]
    eq(names.count("host"), 1, "%s: Host lines at the upstream (%r)" % (what, req.headers))
    eq(req.header("host"), authority, "%s: Host at the upstream (the :authority)" % what)
    check(not [n for n in names if n.startswith(":")], "%s: pseudo-headers reached the upstream: %r",
          what, req.headers)
    bad = [n for n in names if n in CONNECTION_SPECIFIC[:-1]]
    check(not bad, "%s: connection-specific headers at the upstream: %r", what, bad)


def _check_h2_response_headers(st, what):
    names = [k for k, _ in st.headers]
    check(all(n == n.lower() for n in names), "%s: HTTP/2 header names must be lower case: %r", what, names)
    bad = [n for n in names if n in CONNECTION_SPECIFIC]
    check(not bad, "%s: connection-specific headers in an HTTP/2 response: %r", what, bad)


def _refused(st, conn):
    """A stream the proxy did not serve: reset, answered 4xx (431), or cut by a GOAWAY."""
    if st.reset is not None:
        return True
    if st.status is not None and 400 <= st.status < 500:
        return True
    return st.status is None and bool(conn.goaways)


def _settle(c, cond, timeout=2.0):
    """Read frames until cond() holds or timeout seconds pass. Returns cond()."""
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        try:
            if c.read_frame(deadline - time.monotonic()) is None:
                break
        except socket.timeout:
            break
    return cond()


def _expect_goaway_then_close(c, what, timeout=5.0):
    """The proxy sends GOAWAY and closes the connection within timeout seconds. Returns the last
    GOAWAY frame."""
    _, closed = c.read_until_close(timeout)
    check(closed, "%s: the attacker's connection is still open %.0fs later (%s)", what, timeout, c.summary())
    check(c.goaways, "%s: the connection was closed without a GOAWAY (%s)", what, c.summary())
    return c.goaways[-1]


# ---------------------------------------------------------------------------------------------
# h2 clients in front of an HTTP/1.1 upstream

def test_h2_client_selftest():
    """The raw client's HPACK decodes RFC 7541 Appendix C (Huffman and dynamic table included)
    and its encoder round-trips: the attacks below send what the tests mean them to send."""
    H.selftest()


def test_h2_prior_knowledge_with_curl():
    """curl --http2-prior-knowledge on a plain listener (codec_type AUTO) is answered over HTTP/2;
    the upstream gets an HTTP/1.1 request whose Host is the :authority, with the client's own
    headers and no pseudo-header or connection-specific header."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port)
        with Weft(cfg):
            r = curl_h2("http://127.0.0.1:%d/hello?x=1" % port, "-H", "x-custom: yes")
            eq((r.code, r.version), (200, "2"), "status and HTTP version (curl: %s)" % r.err.strip())
            check(r.head.startswith("HTTP/2 200"), "response head: %r", r.head[:200])
            eq(json.loads(r.body)["path"], "/hello", "body relayed from the upstream")
            req = up.requests[-1]
            eq((req.method, req.target), ("GET", "/hello?x=1"), "request line at the upstream")
            _check_h1_request(req, "127.0.0.1:%d" % port, "GET")
            eq(req.header("x-custom"), "yes", "the client's header at the upstream")
            eq(req.header("transfer-encoding"), None, "transfer-encoding on a GET without a body")
            eq(req.header("x-forwarded-proto"), "http", "x-forwarded-proto for h2c")


def test_h2_nghttp_client():
    """nghttp fetches two paths over one connection with a custom header, and uploads 300 kB
    (-d, sent with content-length) that the upstream receives intact and with that length."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port)
        with Weft(cfg) as w:
            base = "http://127.0.0.1:%d" % port
            p = subprocess.run(["nghttp", "-nv", "-H", "x-custom: yes", base + "/a", base + "/b"],
                               capture_output=True, timeout=15)
            out = p.stdout.decode("utf-8", "replace")
            eq(p.returncode, 0, "nghttp exit status (stderr %r)" % p.stderr[-300:])
            eq(len(re.findall(r"recv \(stream_id=\d+\) :status: 200", out)), 2, "200s nghttp received")
            eq(sorted(r.path for r in up.requests), ["/a", "/b"], "paths at the upstream")
            for r in up.requests:
                _check_h1_request(r, "127.0.0.1:%d" % port, r.path)
                eq(r.header("x-custom"), "yes", "custom header at the upstream")
            eq(w.stat("http.ingress.downstream_cx_http2_total"), 1, "both streams on one connection")
            body = os.urandom(300000)
            f = write_file(tmp_path("upload.bin"), body)
            p = subprocess.run(["nghttp", "-d", f, base + "/sink"], capture_output=True, timeout=15)
            eq(p.returncode, 0, "nghttp upload exit status (stderr %r)" % p.stderr[-300:])
            eq(json.loads(p.stdout), {"len": len(body), "sha256": hashlib.sha256(body).hexdigest()},
               "upload as the upstream received it")
            eq(up.last.header("content-length"), str(len(body)), "content-length at the upstream")
            eq(up.last.header("transfer-encoding"), None, "no chunking when the length is known")


def test_h2_request_body_with_and_without_content_length():
    """A request body from an h2 client reaches the HTTP/1.1 upstream whole: with the client's
    content-length when it sent one, else chunked. Bodies span several DATA frames and more than
    the 64 KiB default window."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port)
        with Weft(cfg), H2Conn(port) as c:
            c.handshake()
            body = os.urandom(200000)
            st = c.response(c.request("POST", "/sink", body=body))
            eq(st.status, 200, "status of a POST with content-length (%r)" % st)
            eq(json.loads(bytes(st.body)), {"len": len(body), "sha256": hashlib.sha256(body).hexdigest()},
               "body with content-length at the upstream")
            req = up.last
            _check_h1_request(req, "test.local", "POST with content-length")
            eq(req.header("content-length"), str(len(body)), "content-length at the upstream")
            eq(req.header("transfer-encoding"), None, "transfer-encoding with a known length")

            parts = [os.urandom(n) for n in (1, 5000, 70000, 3)]
            sid = c.request("POST", "/sink", end_stream=False)
            for i, part in enumerate(parts):
                c.send_data(sid, part, end_stream=i == len(parts) - 1)
            st = c.response(sid)
            whole = b"".join(parts)
            eq(st.status, 200, "status of a POST without content-length (%r)" % st)
            eq(json.loads(bytes(st.body)), {"len": len(whole), "sha256": hashlib.sha256(whole).hexdigest()},
               "body without content-length at the upstream")
            req = up.last
            _check_h1_request(req, "test.local", "POST without content-length")
            eq(req.header("content-length"), None, "no content-length was sent, none is made up")
            eq((req.header("transfer-encoding") or "").lower(), "chunked", "transfer-encoding at the upstream")


def test_h2_interim_responses():
    """1xx to HTTP/2 clients, as Envoy: with proxy_100_continue, the upstream's 100 Continue
    (the client's `expect: 100-continue` is passed on) and 103 Early Hints reach the client as
    HEADERS frames without END_STREAM before the final response; without it, Weft answers the
    expectation with its own 100 (the upstream never sees `expect`) and swallows the 103."""
    with HttpUpstream("up") as up:
        for proxy in (True, False):
            what = "proxy_100_continue %s" % proxy
            cfg, port = _cfg(up.port, proxy_100_continue=proxy)
            with Weft(cfg), H2Conn(port) as c:
                c.handshake()
                sid = c.request("POST", "/sink", headers=[("expect", "100-continue"), ("content-length", "5")],
                                end_stream=False)
                st = c.stream(sid)
                check(_settle(c, lambda: st.interim, 3), "%s: no 100 before the body was sent (%r)", what, st)
                eq(st.interim, [[(":status", "100")]], "%s: the interim response" % what)
                eq(st.headers, None, "%s: the final response waits for the body" % what)
                c.send_data(sid, b"hello", end_stream=True)
                st = c.response(sid)
                eq((st.status, json.loads(bytes(st.body))["len"]), (200, 5), "%s: final response" % what)
                eq(up.last.header("expect"), "100-continue" if proxy else None, "%s: expect at the upstream" % what)

                st = c.get("/1xx")
                eq(st.status, 200, "%s: final response after a 103" % what)
                eq(st.interim, [[(":status", "103"), ("link", "</style.css>; rel=preload")]] if proxy else [],
                   "%s: the 103 relayed" % what)


def _stalled_gets_408(w, c, sid, bystander, body, stat):
    """While stream sid stalls, bystander() is served; then sid gets 408 with this body, about
    the configured 0.5 s later, and stat counts it."""
    t0 = time.monotonic()
    eq(bystander().status, 200, "a bystander while stream %d stalls" % sid)
    st = c.response(sid, timeout=3)
    took = time.monotonic() - t0
    eq((st.status, bytes(st.body)), (408, body), "the stalled stream")
    check(0.3 < took < 2.0, "408 after %.2fs for a 0.5s timeout", took)
    eq(w.stat(stat), 1, stat)


def test_h2_request_timeout_per_stream():
    """request_timeout applies to each HTTP/2 stream, as in Envoy: a request whose body stops
    short gets 408 `request timeout` on its stream after the timeout (downstream_rq_timeout)
    while a bystander stream on the same connection is served and the connection goes on; a
    request without a body, or one whose body is all in, is not cut however slow its upstream."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port, request_timeout="0.5s")
        with Weft(cfg) as w, H2Conn(port) as c:
            c.handshake()
            slow = c.request("POST", "/sink", headers=[("content-length", "10")], end_stream=False)
            c.send_data(slow, b"12345")
            _stalled_gets_408(w, c, slow, lambda: c.get("/bystander"), b"request timeout",
                              "http.ingress.downstream_rq_timeout")
            eq(c.get("/delay/800").status, 200, "a request without a body outlives request_timeout")
            st = c.response(c.request("POST", "/delay/800", body=b"x" * 10))
            eq(st.status, 200, "a request whose body is all in outlives request_timeout")
            eq(w.stat("http.ingress.downstream_rq_timeout"), 1, "downstream_rq_timeout after the slow answers")


def test_h2_request_headers_timeout():
    """request_headers_timeout on HTTP/2, as in Envoy (the stream's head must be complete this
    long after its HEADERS frame began): a HEADERS frame without END_HEADERS whose CONTINUATION
    does not follow gets 408 `request header timeout` on its stream
    (downstream_rq_header_timeout); a client on another connection is served meanwhile; the
    head completed late is not taken as a request, and the connection serves the next stream."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port, request_headers_timeout="0.5s")
        with Weft(cfg) as w, H2Conn(port) as c, H2Conn(port) as other:
            c.handshake()
            other.handshake()
            sid = c.new_stream_id()
            block = c.request_block("GET", "/late")
            c.auto_window = False  # no WINDOW_UPDATE from us inside our own header block
            c.send(H.headers_frame(sid, block[:5], end_stream=True, end_headers=False))
            _stalled_gets_408(w, c, sid, lambda: other.get("/bystander"), b"request header timeout",
                              "http.ingress.downstream_rq_header_timeout")
            c.send(H.continuation_frame(sid, block[5:], end_headers=True))
            c.auto_window = True
            eq(c.get("/next").status, 200, "the next stream on the connection")
            eq([r.path for r in up.requests if r.path == "/late"], [], "the late head at the upstream")
            eq(w.stat("http.ingress.downstream_rq_total"), 3, "requests: the 408, the bystander, /next")


def test_h2_concurrent_streams_on_one_connection():
    """20 streams open at once on one connection, each to an upstream that takes 300 ms: every
    stream gets its own answer (the echo of its own query), and they ran side by side."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port)
        with Weft(cfg), H2Conn(port, timeout=10) as c:
            c.handshake()
            t0 = time.monotonic()
            ids = {c.request("GET", "/delay/300?i=%d" % i): i for i in range(20)}
            for sid, i in ids.items():
                st = c.response(sid)
                eq(st.status, 200, "status of stream %d (%r)" % (sid, st))
                eq(json.loads(bytes(st.body))["query"], "i=%d" % i, "the answer of stream %d is its own" % sid)
            dt = time.monotonic() - t0
            check(dt < 3.0, "20 streams of 300 ms each took %.2fs: not served concurrently", dt)
            eq(len(up.requests), 20, "requests at the upstream")


def test_h2_response_bodies_1b_to_1mib():
    """Responses of 1 B to 1 MiB (around the 16 KiB frame and 64 KiB window edges) and a chunked
    one arrive intact: through curl, and all at once as concurrent streams on one raw
    connection. Response header names are lower case and nothing connection-specific (the
    upstream's keep-alive, the chunked framing) is relayed."""
    sizes = [1, 1000, 16383, 16384, 16385, 65535, 65536, 100000, 1 << 20]
    mixed = (200, [("X-Mixed-Case", "Yes"), ("Content-Type", "text/plain"), ("Keep-Alive", "timeout=5")], b"mixed")
    with HttpUpstream("up", responses={"/mixed": mixed}) as up:
        cfg, port = _cfg(up.port)
        with Weft(cfg):
            # one curl per body: curl 7.88 fails to reuse a prior-knowledge connection
            for n in sizes:
                r = curl_h2("http://127.0.0.1:%d/bytes/%d" % (port, n))
                eq((r.code, r.version), (200, "2"), "status and version for %d bytes (curl: %s)" % (n, r.err.strip()))
                eq(len(r.body), n, "bytes curl got for a %d-byte body" % n)
                check(r.body == pattern_bytes(n), "the %d-byte body differs from what the upstream sent", n)
            with H2Conn(port, timeout=10) as c:
                c.handshake()
                ids = {c.request("GET", "/bytes/%d" % n): n for n in sizes}
                chunked = c.request("GET", "/chunked/100000")
                for sid, n in ids.items():
                    st = c.response(sid)
                    eq((st.status, st.data_bytes), (200, n), "status and length of stream %d" % sid)
                    check(bytes(st.body) == pattern_bytes(n), "the %d-byte body of stream %d differs", n, sid)
                    _check_h2_response_headers(st, "/bytes/%d" % n)
                st = c.response(chunked)
                _check_h2_response_headers(st, "/chunked")
                check(bytes(st.body) == pattern_bytes(100000), "the chunked body (%d bytes) differs", st.data_bytes)
                st = c.get("/mixed")
                eq((st.status, bytes(st.body)), (200, b"mixed"), "custom response")
                _check_h2_response_headers(st, "/mixed")
                eq(st.header("x-mixed-case"), "Yes", "a mixed-case header arrives lower-cased, value as sent")


def test_h2load_many_streams():
    """h2load: 600 requests over 3 connections, 20 streams in flight on each: every one is
    answered 2xx and reaches the upstream."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port)
        with Weft(cfg) as w:
            p = subprocess.run(["h2load", "-n", "600", "-c", "3", "-m", "20", "-t", "1",
                                "http://127.0.0.1:%d/load" % port], capture_output=True, timeout=20)
            out = p.stdout.decode("utf-8", "replace")
            check("600 succeeded" in out, "h2load: not every request succeeded:\n%s", out[-800:])
            m = re.search(r"status codes: (\d+) 2xx", out)
            eq(int(m.group(1)) if m else None, 600, "2xx answers h2load counted")
            eq(len(up.requests), 600, "requests at the upstream")
            eq(w.stat("http.ingress.downstream_cx_http2_total"), 3, "h2 connections")


# ---------------------------------------------------------------------------------------------
# codec_type, ALPN, h2c upgrade

def test_h2_codec_auto_serves_h2_and_http11_on_one_listener():
    """codec_type AUTO: the client preface picks HTTP/2 (and the proxy's first frame is its
    SETTINGS), anything else is HTTP/1.1 - on the same listener, connection by connection."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port)
        with Weft(cfg):
            url = "http://127.0.0.1:%d/auto" % port
            r2, r1 = curl_h2(url), curl_h2(url, mode="--http1.1")
            eq((r2.code, r2.version), (200, "2"), "prior knowledge (curl: %s)" % r2.err.strip())
            eq((r1.code, r1.version), (200, "1.1"), "HTTP/1.1 (curl: %s)" % r1.err.strip())
            with H2Conn(port) as c:
                c.handshake()
                eq(c.first_frame.type, H.SETTINGS, "the server preface starts with SETTINGS")
                check(not c.first_frame.has(H.ACK), "the first SETTINGS is not an ACK: %r", c.first_frame)
                eq(c.get("/raw").status, 200, "raw h2 request")
            eq(request(port, "/h1").status, 200, "http.client request")


def test_h2_codec_http2_forces_h2():
    """codec_type HTTP2: h2 with prior knowledge is served; an HTTP/1.1 request is not (no
    HTTP/1.1 answer, the connection closes, nothing reaches the upstream)."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port, codec="HTTP2")
        with Weft(cfg):
            r = curl_h2("http://127.0.0.1:%d/forced" % port)
            eq((r.code, r.version), (200, "2"), "prior knowledge on codec_type HTTP2 (curl: %s)" % r.err.strip())
            res = raw(port, http_req("GET", "/h1"), timeout=3)
            check(res.closed, "an HTTP/1.1 request on an HTTP2 listener: the connection should close (got %r)",
                  bytes(res[:200]))
            eq(status_of(res), None, "an HTTP/1.1 answer on an HTTP2 listener")
            eq([q.path for q in up.requests], ["/forced"], "paths at the upstream")


def test_h2_codec_http1_never_speaks_h2():
    """codec_type HTTP1: the h2 preface is not taken for HTTP/2 - no SETTINGS comes back (an
    HTTP/1.1 error or a plain close) and curl --http2-prior-knowledge gets no h2 answer - while
    HTTP/1.1 is served."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port, codec="HTTP1")
        with Weft(cfg):
            res = raw(port, H.PREFACE + H.settings_frame(), timeout=3)
            check(bytes(res) == b"" or bytes(res).startswith(b"HTTP/1.1 4"),
                  "the answer to an h2 preface on an HTTP1 listener: %r", bytes(res[:100]))
            check(res.closed, "the connection should close after an h2 preface on an HTTP1 listener")
            r = curl_h2("http://127.0.0.1:%d/x" % port)
            check(r.version != "2", "curl got an HTTP/2 answer from an HTTP1 listener")
            eq(curl_h2("http://127.0.0.1:%d/h1" % port, mode="--http1.1").code, 200, "HTTP/1.1 on HTTP1")
            eq([q.path for q in up.requests], ["/h1"], "paths at the upstream")


def test_h2_upgrade_h2c_is_ignored():
    """`Upgrade: h2c` over HTTP/1.1 (curl --http2 on http://) is not taken: the request is
    answered over HTTP/1.1 and the Upgrade and HTTP2-Settings headers are not passed on."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port)
        with Weft(cfg):
            r = curl_h2("http://127.0.0.1:%d/h2c" % port, mode="--http2")
            eq((r.code, r.version), (200, "1.1"), "status and version after an h2c upgrade offer (curl: %s)"
               % r.err.strip())
            check("101" not in r.head.split("\r\n", 1)[0], "a 101 was sent: %r", r.head[:200])
            req = up.last
            eq((req.header("upgrade"), req.header("http2-settings")), (None, None), "upgrade headers at the upstream")
            check("upgrade" not in (req.header("connection") or "").lower(), "connection: %r", req.header("connection"))


def test_h2_tls_alpn():
    """A TLS listener with alpn_protocols [h2, http/1.1]: curl --http2 negotiates h2 and is
    answered over HTTP/2, curl --http1.1 over HTTP/1.1, and a raw client offering only h2 gets
    h2. Without alpn_protocols no protocol is chosen and curl --http2 falls back to HTTP/1.1."""
    from test_tls import https_config, pki, tls_socket

    def tls_args(port):
        return ("--cacert", pki()["ca.crt"], "--resolve", "localhost:%d:127.0.0.1" % port)
    with HttpUpstream("up") as up:
        cfg, port = https_config(up.port, tls_socket(alpn=["h2", "http/1.1"]))
        with Weft(cfg):
            url = "https://localhost:%d/tls" % port
            r = curl_h2(url, *tls_args(port), mode="--http2")
            eq((r.code, r.version), (200, "2"), "curl --http2 over TLS with ALPN h2 (curl: %s)" % r.err.strip())
            req = up.last
            _check_h1_request(req, "localhost:%d" % port, "h2 over TLS")
            eq(req.header("x-forwarded-proto"), "https", "x-forwarded-proto")
            r = curl_h2(url, *tls_args(port), mode="--http1.1")
            eq((r.code, r.version), (200, "1.1"), "curl --http1.1 on the same listener (curl: %s)" % r.err.strip())
            ctx = ssl.create_default_context(cafile=pki()["ca.crt"])
            with H2Conn(port, tls=ctx) as c:
                eq(c.sock.selected_alpn_protocol(), "h2", "ALPN chosen for a client offering h2")
                c.handshake()
                st = c.get("/raw-tls", authority="localhost:%d" % port)
                eq(st.status, 200, "raw h2 over TLS (%r)" % st)
            r = subprocess.run(["h2load", "-n", "300", "-c", "3", "-m", "10", url], capture_output=True, text=True,
                               timeout=30)
            check("300 succeeded" in r.stdout and "Application protocol: h2" in r.stdout,
                  "h2load over TLS with ALPN h2: %s", r.stdout[-800:])
    with HttpUpstream("up") as up:
        cfg, port = https_config(up.port, tls_socket())
        with Weft(cfg):
            r = curl_h2("https://localhost:%d/no-alpn" % port, *tls_args(port), mode="--http2")
            eq((r.code, r.version), (200, "1.1"), "curl --http2 on a listener without ALPN (curl: %s)" % r.err.strip())


# ---------------------------------------------------------------------------------------------
# stats, access log

def test_h2_stats():
    """Admin /stats count HTTP/2 connections apart from HTTP/1.1 ones
    (http.<prefix>.downstream_cx_http2_total / _active), and h2 requests in downstream_rq_total
    and the per-class counters."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port)
        with Weft(cfg) as w:
            c1, c2 = H2Conn(port), H2Conn(port)
            try:
                c1.handshake()
                c2.handshake()
                eq([c1.get(p).status for p in ("/a", "/b", "/status/404")], [200, 200, 404], "statuses on c1")
                eq(c2.get("/c").status, 200, "status on c2")
                eq(request(port, "/h1").status, 200, "HTTP/1.1 request")
                wait_for(lambda: w.stat("http.ingress.downstream_rq_total") == 5, 3, what="5 requests counted")
                st = w.stats()
                eq(st.get("http.ingress.downstream_cx_http2_total"), 2, "downstream_cx_http2_total")
                eq(st.get("http.ingress.downstream_cx_http2_active"), 2, "downstream_cx_http2_active")
                eq(st.get("http.ingress.downstream_cx_http1_total"), 1, "downstream_cx_http1_total")
                eq(st.get("http.ingress.downstream_rq_2xx"), 4, "downstream_rq_2xx")
                eq(st.get("http.ingress.downstream_rq_4xx"), 1, "downstream_rq_4xx")
            finally:
                c1.close()
                c2.close()
            wait_for(lambda: w.stat("http.ingress.downstream_cx_http2_active") == 0, 3,
                     what="downstream_cx_http2_active back to 0 after the clients closed")


def test_h2_access_log_protocol():
    """%PROTOCOL% is HTTP/2 for a request over h2 (HTTP/1.1 for one over HTTP/1.1), with the h2
    request's method, path and :authority in the line."""
    log = tmp_path("h2-access.log")
    fmt = "%PROTOCOL% %RESPONSE_CODE% %REQ(:METHOD)% %REQ(:PATH)% %REQ(:AUTHORITY)%\n"
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port, access_log=[C.file_log(log, text=fmt)])
        with Weft(cfg):
            with H2Conn(port) as c:
                c.handshake()
                eq(c.get("/over-h2", authority="h2.test").status, 200, "h2 request")
            wait_for(lambda: read_lines(log), 3, what="the h2 access log line")
            eq(request(port, "/over-h1", host="h1.test").status, 200, "HTTP/1.1 request")
            wait_for(lambda: len(read_lines(log)) >= 2, 3, what="the HTTP/1.1 access log line")
            eq(read_lines(log), ["HTTP/2 200 GET /over-h2 h2.test", "HTTP/1.1 200 GET /over-h1 h1.test"],
               "access log lines")


# ---------------------------------------------------------------------------------------------
# http2_protocol_options, header limits

def _connection_window(c, want):
    """Read until the proxy opened the connection window to `want` (or 2 s passed); the window."""
    _settle(c, lambda: c.send_window >= want)
    return c.send_window


def test_h2_settings_defaults():
    """Without http2_protocol_options the proxy's first frame is its SETTINGS, with Envoy's
    MAX_CONCURRENT_STREAMS default of 2147483647, and no push (a server never enables it)."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port)
        with Weft(cfg), H2Conn(port) as c:
            s = c.handshake()
            eq(c.first_frame.type, H.SETTINGS, "the server preface starts with SETTINGS")
            eq(s.get(H.MAX_CONCURRENT_STREAMS), ENVOY_MAX_CONCURRENT_STREAMS, "MAX_CONCURRENT_STREAMS")
            eq(c.get("/").status, 200, "a request")
            eq(c.counts.get("PUSH_PROMISE"), None, "PUSH_PROMISE frames")


def test_h2_default_windows():
    """Without http2_protocol_options the flow-control windows are Weft's documented defaults
    (doc/http2.md: Envoy's edge recommendation, not its 256 MiB): SETTINGS INITIAL_WINDOW_SIZE
    64 KiB, and the connection window opened to 1 MiB with a WINDOW_UPDATE."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port)
        with Weft(cfg), H2Conn(port) as c:
            s = c.handshake()
            eq(s.get(H.INITIAL_WINDOW_SIZE), 65536, "INITIAL_WINDOW_SIZE")
            eq(_connection_window(c, 1048576), 1048576, "connection window")


def test_h2_settings_configured():
    """http2_protocol_options max_concurrent_streams, initial_stream_window_size and
    initial_connection_window_size are what the proxy advertises (SETTINGS and the connection
    WINDOW_UPDATE); requests still work."""
    h2 = {"max_concurrent_streams": 7, "initial_stream_window_size": 131072,
          "initial_connection_window_size": 1048576}
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port, h2=h2)
        with Weft(cfg), H2Conn(port) as c:
            s = c.handshake()
            eq(s.get(H.MAX_CONCURRENT_STREAMS), 7, "MAX_CONCURRENT_STREAMS")
            eq(s.get(H.INITIAL_WINDOW_SIZE), 131072, "INITIAL_WINDOW_SIZE")
            eq(_connection_window(c, 1048576), 1048576, "connection window")
            body = os.urandom(3 * 131072)
            st = c.response(c.request("POST", "/sink", body=body))
            eq(json.loads(bytes(st.body))["len"], len(body), "a body of 3 stream windows goes through")


H2_ALL_OPTIONS = {
    "max_concurrent_streams": 100, "initial_stream_window_size": 65536,
    "initial_connection_window_size": 1048576, "max_outbound_frames": 10000,
    "max_outbound_control_frames": 1000, "max_consecutive_inbound_frames_with_empty_payload": 1,
    "max_inbound_priority_frames_per_stream": 100, "max_inbound_window_update_frames_per_data_frame_sent": 10,
}


def test_h2_protocol_options_validated():
    """Every http2_protocol_options field this suite uses is accepted (weft validate, with
    codec_type HTTP2), and values outside Envoy's bounds are refused naming the field
    (window sizes under 65535, max_concurrent_streams 0)."""
    def validate(h2):
        cfg, _ = _cfg(free_port(), h2=h2, codec="HTTP2")
        return run_weft(["validate", write_file(tmp_path("h2.yaml"), cfg)])
    p = validate(H2_ALL_OPTIONS)
    eq(p.returncode, 0, "validate a config with every option (stderr %r)" % p.stderr)
    for field, value in (("initial_stream_window_size", 1000), ("initial_connection_window_size", 1000),
                         ("max_concurrent_streams", 0)):
        p = validate(dict(H2_ALL_OPTIONS, **{field: value}))
        eq(p.returncode, 1, "validate with %s: %d" % (field, value))
        check(field in p.stderr, "the error should name %s: %r", field, p.stderr)


def _big_headers(n, size, prefix="x-big"):
    return [("%s-%d" % (prefix, i), "v" * size) for i in range(n)]


def _limit_case(c, up, path, headers, passes):
    """One request with these headers: passes (200, headers at the upstream) or is refused
    (RST_STREAM or 4xx, nothing at the upstream)."""
    sid = c.request("GET", path, headers=headers)
    try:
        st = c.response(sid)
    except H.ConnectionClosed:
        raise AssertionError("%s: the proxy closed the whole connection (%s) instead of refusing the one "
                             "stream" % (path, c.summary()))
    if passes:
        eq(st.status, 200, "%s: status (%r)" % (path, st))
        got = [r for r in up.requests if r.path == path]
        eq(len(got), 1, "%s: requests at the upstream" % path)
        eq(got[0].header(headers[-1][0]), headers[-1][1], "%s: the last header at the upstream" % path)
    else:
        check(_refused(st, c), "%s: %d headers of %d bytes should be refused, got %r", path, len(headers),
              sum(len(k) + len(v) for k, v in headers), st)
        time.sleep(0.05)
        eq([r for r in up.requests if r.path == path], [], "%s: requests at the upstream" % path)


def test_h2_request_headers_size_limit():
    """A request whose headers exceed max_request_headers_kb (the 60 KiB default, then a
    configured 8 KiB) is refused (RST_STREAM or 431) without reaching the upstream, one under
    the limit passes, and the connection keeps serving."""
    with HttpUpstream("up") as up:
        for h2kb, under, over in ((None, (5, 8000), (10, 7000)), (8, (1, 4000), (2, 5000))):
            extra = {"max_request_headers_kb": h2kb} if h2kb else {}
            cfg, port = _cfg(up.port, **extra)
            with Weft(cfg), H2Conn(port) as c:
                c.handshake()
                tag = "%skb" % (h2kb or "default")
                _limit_case(c, up, "/under-" + tag, _big_headers(*under), True)
                _limit_case(c, up, "/over-" + tag, _big_headers(*over), False)
                eq(c.get("/after-" + tag).status, 200, "the same connection after a refused request (%s)" % tag)


def test_h2_request_headers_count_limit():
    """A request with more headers than max_headers_count (the default 100, then a configured
    20) is refused without reaching the upstream, one under the limit passes, and the
    connection keeps serving."""
    with HttpUpstream("up") as up:
        for count, under, over in ((None, 80, 120), (20, 10, 30)):
            extra = {"common_http_protocol_options": {"max_headers_count": count}} if count else {}
            cfg, port = _cfg(up.port, **extra)
            with Weft(cfg), H2Conn(port) as c:
                c.handshake()
                tag = "%s" % (count or "default")
                _limit_case(c, up, "/under-" + tag, _big_headers(under, 1, "x-n"), True)
                _limit_case(c, up, "/over-" + tag, _big_headers(over, 1, "x-n"), False)
                eq(c.get("/after-" + tag).status, 200, "the same connection after a refused request (%s)" % tag)


def test_h2_header_overflow_counted():
    """A request over max_headers_count, then one over max_request_headers_kb: each stream is
    reset without reaching the upstream, counted in Envoy's http2.header_overflow (at the root of
    the stats, envoy_http2_header_overflow in Prometheus) and logged at debug level; the
    connection keeps serving."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port, max_request_headers_kb=8, common_http_protocol_options={"max_headers_count": 20})
        with Weft(cfg, args=["-l", "debug"]) as w, H2Conn(port) as c:
            c.handshake()
            eq(w.stat("http2.header_overflow", None), 0, "http2.header_overflow listed before any overflow")
            for n, (path, headers) in enumerate((("/count", _big_headers(30, 1, "x-n")),
                                                 ("/size", _big_headers(2, 5000))), 1):
                st = c.response(c.request("GET", path, headers=headers))
                check(st.reset is not None, "%s: the stream should be reset, got %r", path, st)
                wait_for(lambda: w.stat("http2.header_overflow") == n, 3, what="http2.header_overflow == %d" % n)
            eq([r.path for r in up.requests if r.path in ("/count", "/size")], [], "requests at the upstream")
            eq(c.get("/after").status, 200, "the same connection after the resets")
            prom = w.admin("/stats/prometheus").text
            check("envoy_http2_header_overflow 2" in prom, "Prometheus name: %r",
                  [ln for ln in prom.splitlines() if "overflow" in ln])
            wait_for(lambda: "request headers over max_request_headers_kb" in w.stderr(), 3,
                     what="the debug line about the reset stream")


def test_h2_protocol_error_gets_goaway():
    """A connection error (DATA on stream 0) ends the connection with GOAWAY PROTOCOL_ERROR, and
    downstream_cx_protocol_error counts it."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port)
        with Weft(cfg) as w, H2Conn(port) as c:
            c.handshake()
            c.send(H.data_frame(0, b"x"))
            g = _expect_goaway_then_close(c, "DATA on stream 0")
            eq(H.error_name(g.error_code()), "PROTOCOL_ERROR", "GOAWAY error code")
            wait_for(lambda: w.stat("http.ingress.downstream_cx_protocol_error") == 1, 3,
                     what="downstream_cx_protocol_error")


# ---------------------------------------------------------------------------------------------
# drain

def _drained(c, sid, what, timeout=6.0):
    """Read until the proxy closes the connection: a GOAWAY (NO_ERROR, its last stream id covering
    the stream in flight) came, the stream in flight got its whole answer first."""
    st = c.stream(sid)
    _, closed = c.read_until_close(timeout)
    eq(st.status, 200, "%s: status of the stream in flight (%r, %s)" % (what, st, c.summary()))
    check(st.ended, "%s: the stream in flight did not end cleanly: %r", what, st)
    eq(json.loads(bytes(st.body))["path"], "/delay/1000", "%s: body of the stream in flight" % what)
    check(c.goaways, "%s: no GOAWAY (%s)", what, c.summary())
    for g in c.goaways:
        eq(H.error_name(g.error_code()), "NO_ERROR", "%s: GOAWAY error code" % what)
    check(c.goaways[-1].last_stream() >= sid, "%s: the last GOAWAY's last stream id %d is under the stream in "
          "flight (%d)", what, c.goaways[-1].last_stream(), sid)
    check(closed, "%s: the connection should close once its last stream is done (%s)", what, c.summary())


def test_h2_goaway_on_sigterm_inflight_stream_finishes():
    """SIGTERM drains: an open h2 connection gets GOAWAY (NO_ERROR) with a stream in flight,
    that stream still gets its whole answer (the last GOAWAY's last stream id covers it), then the
    connection closes and weft exits 0."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port, drain_timeout="0.5s")
        with Weft(cfg, drain_time=3) as w, H2Conn(port) as c:
            c.handshake()
            sid = c.request("GET", "/delay/1000")
            up.wait_requests(1)
            w.signal(signal.SIGTERM)
            _drained(c, sid, "SIGTERM")
            eq(w.wait_exit(6), 0, "exit status after the drain")


def test_h2_goaway_on_drain_listeners():
    """POST /drain_listeners?graceful: an open h2 connection gets GOAWAY (NO_ERROR) with a stream
    in flight, the stream finishes, the connection closes (the connection manager's drain_timeout
    is 0.5 s), and the process keeps running."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port, drain_timeout="0.5s")
        with Weft(cfg, drain_time=3) as w, H2Conn(port) as c:
            c.handshake()
            sid = c.request("GET", "/delay/1000")
            up.wait_requests(1)
            eq(w.admin_post("/drain_listeners?graceful").status, 200, "POST /drain_listeners?graceful")
            _drained(c, sid, "/drain_listeners")
            check(w.alive(), "weft should keep running after /drain_listeners")


# ---------------------------------------------------------------------------------------------
# flow control: back-pressure both ways

def test_h2_slow_reader_large_response_keeps_rss_bounded():
    """A client that opens a stream for a 50 MB response and does not read it (16 KiB stream
    window, connection window never reopened) holds the upstream back: the proxy sends no more
    than the window and its RSS grows by a few MB at most. Once the client opens its windows the
    whole body arrives intact."""
    size = 50 * 1000 * 1000
    limit = rss_limit_kib(BACKPRESSURE_RSS_MIB)
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port)
        with Weft(cfg) as w, H2Conn(port, settings={H.INITIAL_WINDOW_SIZE: 16384}, auto_window=False,
                                    timeout=10) as c:
            c.handshake()
            sampler = RssSampler(w.pid)
            sid = c.request("GET", "/bytes/%d" % size)
            st = c.stream(sid)
            check(_settle(c, lambda: st.data_bytes >= 16384, 5), "the first window of DATA did not come: %r", st)
            eq(st.status, 200, "status")
            up.wait_requests(1)
            time.sleep(2.0)  # the stall: the upstream keeps writing, the proxy must stop reading it
            _settle(c, lambda: False, 0.2)
            growth = sampler.stop()
            eq(st.data_bytes, 16384, "DATA bytes sent into a 16 KiB stream window")
            check(growth <= limit, "RSS grew by %d KiB while a reader stalled a 50 MB response (limit %d KiB): "
                  "the proxy should stop reading the upstream, not buffer", growth, limit)
            c.auto_window = True
            c.send(H.window_update_frame(0, 1 << 30) + H.window_update_frame(sid, 1 << 30))
            st = c.response(sid, timeout=15)
            eq(st.data_bytes, size, "bytes of the response once the windows opened")
            check(bytes(st.body) == pattern_bytes(size), "the 50 MB body differs from what the upstream sent")


def test_h2_upload_to_a_stalled_upstream_is_held_back():
    """With Envoy's edge settings (initial_stream_window_size 64 KiB, initial_connection_window_size
    1 MiB), a client uploading 50 MB to an upstream that reads nothing gets its windows shut well
    before the end: the proxy acknowledges only what it passed on, and its RSS grows by a few MB
    at most."""
    size = 50 * 1000 * 1000
    limit = rss_limit_kib(BACKPRESSURE_RSS_MIB)
    release = threading.Event()

    def stall(s, _srv):
        head = b""
        while b"\r\n\r\n" not in head:
            b = s.recv(65536)
            if not b:
                return
            head += b
        release.wait(15)

    with TcpServer(stall, "stalled") as up:
        cfg, port = _cfg(up.port, h2={"initial_stream_window_size": 65536,
                                      "initial_connection_window_size": 1048576})
        with Weft(cfg) as w, H2Conn(port, timeout=10) as c:
            try:
                c.handshake()
                sampler = RssSampler(w.pid)
                sid = c.request("POST", "/upload", headers=[("content-length", str(size))], end_stream=False)
                sent = _send_until_stalled(c, sid, size, stall=1.5, budget=12)
                growth = sampler.stop()
                check(sent < size, "all %d bytes were taken by a proxy whose upstream reads nothing", size)
                check(growth <= limit, "RSS grew by %d KiB while an upstream stalled a 50 MB upload after %d "
                      "bytes (limit %d KiB)", growth, sent, limit)
            finally:
                release.set()


def _send_until_stalled(c, sid, total, stall, budget):
    """Send DATA on sid as the windows allow until no window opens for `stall` seconds (or the
    proxy stops reading the socket), at most `total` bytes or `budget` seconds. Bytes sent."""
    st = c.stream(sid)
    chunk = pattern_bytes(16384)
    sent = 0
    deadline = time.monotonic() + budget
    c.sock.settimeout(stall)
    while sent < total and time.monotonic() < deadline:
        n = min(len(chunk), c.send_window, st.send_window, total - sent)
        if n <= 0:
            try:
                if c.read_frame(stall) is None:
                    break
            except socket.timeout:
                break
            check(st.reset is None, "the upload stream was reset (%s)", H.error_name(st.reset or 0))
            continue
        try:
            c.send(H.data_frame(sid, chunk[:n], end_stream=sent + n == total))
        except socket.timeout:
            break
        c.send_window -= n
        st.send_window -= n
        sent += n
    return sent


# ---------------------------------------------------------------------------------------------
# abuse: each attack on a connection of its own, a bystander next to it

class Bystander:
    """A well-behaved h2 client on a connection of its own that makes one request after another
    in a thread while an attack runs next to it. Each must be answered 200."""

    def __init__(self, port):
        self.conn = H2Conn(port, timeout=5)
        self.conn.handshake()
        self.ok = 0
        self.answered_at = []        # monotonic times of the 200s
        self.errors = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True, name="bystander")
        self._t.start()

    def _run(self):
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                st = self.conn.get("/bystander?i=%d" % i)
            except Exception as e:  # noqa: BLE001 - any failure is what the test reports
                self.errors.append("request %d: %r" % (i, e))
                return
            if st.status != 200:
                self.errors.append("request %d: %r" % (i, st))
                return
            self.ok += 1
            self.answered_at.append(time.monotonic())
            self._stop.wait(0.02)

    def answers_since(self, t):
        return len([a for a in self.answered_at if a >= t])

    def stop(self):
        self._stop.set()
        self._t.join(8)

    def check(self):
        check(not self.errors, "the bystander was hurt by the attack: %s", self.errors)
        st = self.conn.get("/bystander/after")
        eq(st.status, 200, "the bystander's request after the attack (%r)" % st)


class Attack:
    """What an attack test gets: weft (w), the listener's port, the upstream, and attacker()
    for a new connection past its SETTINGS exchange."""

    def __init__(self, w, port, up):
        self.w, self.port, self.up = w, port, up
        self.conns = []

    def attacker(self, **kw):
        c = H2Conn(self.port, **kw)
        self.conns.append(c)
        c.handshake()
        return c


@contextlib.contextmanager
def _under_attack(h2=None, **hcm_extra):
    """Weft in front of an upstream, a Bystander on its own connection, and an RSS sampler.
    Yields an Attack. After the block: the bystander got every answer, weft is alive and its RSS
    grew by at most ABUSE_RSS_MIB."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port, h2=h2, **hcm_extra)
        with Weft(cfg) as w:
            by = Bystander(port)
            try:
                rss = RssSampler(w.pid)
                t0 = time.monotonic()
                attack = Attack(w, port, up)
                try:
                    yield attack
                    # however short the attack, the bystander keeps asking until it was answered
                    # a few times since it began (an error ends the wait: check() reports it)
                    wait_for(lambda: by.errors or by.answers_since(t0) >= 3, 5,
                             what="3 answers to the bystander since the attack began")
                finally:
                    growth = rss.stop()
                    by.stop()
                    for c in attack.conns:
                        c.close()
                check(w.alive(), "weft died during the attack")
                by.check()
                limit = rss_limit_kib(ABUSE_RSS_MIB)
                check(growth <= limit, "RSS grew by %d KiB during the attack (limit %d KiB)", growth, limit)
            finally:
                by.conn.close()


def test_h2_abuse_rapid_reset():
    """Rapid reset (CVE-2023-44487): 5000 streams, each opened with HEADERS to a slow upstream and
    reset at once with RST_STREAM. The proxy closes the attacker's connection with GOAWAY, most
    of the requests never reach the upstream, and the bystander gets every answer."""
    with _under_attack() as a:
        c = a.attacker()

        def streams():
            sid = 1
            for _ in range(50):
                out = []
                for _ in range(100):
                    out.append(H.headers_frame(sid, c.request_block("GET", "/delay/2000?rr=%d" % sid), end_stream=True)
                               + H.rst_stream_frame(sid, H.CANCEL))
                    sid += 2
                yield b"".join(out)
        c.flood(streams(), timeout=6)
        _expect_goaway_then_close(c, "rapid reset")
        reached = len([r for r in a.up.requests if r.path.startswith("/delay/")])
        check(reached < 2500, "%d of 5000 reset streams reached the upstream", reached)


def test_h2_abuse_continuation_flood():
    """CONTINUATION flood: HEADERS without END_HEADERS, then 10000 CONTINUATION frames that never
    end the header block. GOAWAY then close; the request never reaches the upstream; the
    bystander gets every answer."""
    with _under_attack() as a:
        c = a.attacker()
        enc = H.Encoder()

        def frames():
            yield H.headers_frame(1, c.request_block("GET", "/continuation"), end_headers=False)
            for k in range(100):
                yield b"".join(H.continuation_frame(1, enc.encode([("x-c-%d" % (k * 100 + i), "v" * 16)]))
                               for i in range(100))
        c.flood(frames(), timeout=6)
        _expect_goaway_then_close(c, "CONTINUATION flood")
        eq([r for r in a.up.requests if r.path == "/continuation"], [], "the flooded request at the upstream")


def test_h2_abuse_hpack_bomb():
    """HPACK bomb: a 4000-byte header put into the dynamic table, then referenced 12000-16000
    times per header block (one byte each: ~64 MB decoded from 16 KB), on 300 streams. No bomb
    is answered 2xx or reaches the upstream (each is refused: RST_STREAM or 431), the connection
    ends with GOAWAY, RSS stays bounded, and the bystander gets every answer."""
    with _under_attack() as a:
        c = a.attacker()
        pre = c.request_block("GET", "/bomb")

        def bombs():
            yield H.headers_frame(1, pre + H.literal_with_indexing("x-bomb", "b" * 4000) + H.indexed_field(62) * 12000,
                                  end_stream=True)
            for k in range(1, 300):
                yield H.headers_frame(2 * k + 1, pre + H.indexed_field(62) * 16000, end_stream=True)
        c.flood(bombs(), timeout=6)
        _expect_goaway_then_close(c, "HPACK bomb")
        answered = [s for s in c.streams.values() if s.status is not None and s.status < 400]
        eq(answered, [], "bomb streams answered")
        eq([r for r in a.up.requests if r.path == "/bomb"], [], "bomb requests at the upstream")


def _flood_without_reading(a, unit, what):
    """Write copies of `unit` (whole frames that each call for an answer) as fast as the proxy
    takes them, from a client that never reads (a small receive buffer, so the answers back up
    at once). The proxy must close the connection before 64 MB went in, within 6 s, and free it
    (downstream_cx_active back to the bystander's 1)."""
    c = a.attacker(rcvbuf=4096)
    chunk = unit * (65536 // len(unit))
    total = 64 << 20
    _, how = c.flood((chunk for _ in range(total // len(chunk))), timeout=6, read=False)
    check(how != "done", "%s: the proxy took %d MB of frames from a client that reads nothing, and kept "
          "the connection open", what, total >> 20)
    if how == "timeout":  # the proxy stopped reading: it must still close the connection
        wait_for(lambda: c.tcp_state() != H.TCP_ESTABLISHED, 3,
                 what="%s: the proxy to close a connection it stopped reading" % what)
    wait_for(lambda: a.w.stat("http.ingress.downstream_cx_active") == 1, 5,
             what="%s: the attacker's connection to be freed (downstream_cx_active 1, the bystander's)" % what)
    c.close()


def test_h2_abuse_ping_flood_without_reading():
    """PING flood from a client that never reads: the PING ACKs the proxy owes pile up, and it must
    close the connection rather than buffer them without bound (RSS bounded); the bystander gets
    every answer."""
    with _under_attack() as a:
        _flood_without_reading(a, H.ping_frame(b"floodpin"), "PING flood")


def test_h2_abuse_settings_flood_without_reading():
    """SETTINGS flood from a client that never reads, with max_outbound_control_frames 100 and
    max_outbound_frames 1000 configured: the SETTINGS ACKs pile up, the proxy closes the
    connection with RSS bounded; the bystander gets every answer."""
    with _under_attack(h2={"max_outbound_control_frames": 100, "max_outbound_frames": 1000}) as a:
        _flood_without_reading(a, H.settings_frame(), "SETTINGS flood")


def test_h2_abuse_empty_data_frames():
    """Empty DATA frames without END_STREAM on an open stream (10000 of them, with the default
    max_consecutive_inbound_frames_with_empty_payload of 1): GOAWAY then close; the bystander
    gets every answer."""
    with _under_attack() as a:
        c = a.attacker()
        sid = c.request("POST", "/sink", end_stream=False)
        c.flood((H.data_frame(sid, b"") * 1000 for _ in range(10)), timeout=6)
        _expect_goaway_then_close(c, "empty DATA frames")


def test_h2_empty_frames_limit_configured():
    """max_consecutive_inbound_frames_with_empty_payload 10: a request with 8 empty DATA frames
    in a row is served (its body reaches the upstream whole); 50 in a row close the connection
    with GOAWAY."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port, h2={"max_consecutive_inbound_frames_with_empty_payload": 10})
        with Weft(cfg):
            with H2Conn(port) as c:
                c.handshake()
                sid = c.request("POST", "/sink", end_stream=False)
                c.send(H.data_frame(sid, b"abc") + H.data_frame(sid, b"") * 8 +
                       H.data_frame(sid, b"def", end_stream=True))
                st = c.response(sid)
                eq(st.status, 200, "status with 8 empty frames (%r, %s)" % (st, c.summary()))
                eq(json.loads(bytes(st.body))["len"], 6, "body at the upstream")
            with H2Conn(port) as c:
                c.handshake()
                sid = c.request("POST", "/sink", end_stream=False)
                c.try_send(H.data_frame(sid, b"") * 50)
                _expect_goaway_then_close(c, "50 empty DATA frames")


def _then_request(c, path):
    """A request after something the proxy may punish: the stream, or None when the proxy closed
    the connection instead (then it must have sent GOAWAY)."""
    try:
        return c.get(path)
    except (H.ConnectionClosed, BrokenPipeError, ConnectionResetError):
        c.read_until_close(3)
        check(c.goaways, "%s: the connection was closed without a GOAWAY (%s)", path, c.summary())
        return None


def _priority_then_request(port):
    """300 PRIORITY frames for stream 1 while it is idle, then the request that opens it."""
    with H2Conn(port) as c:
        c.handshake()
        c.send(H.priority_frame(1, 0, 16) * 300)
        return _then_request(c, "/after-priority")


def _window_updates_then_request(port):
    """A 1-byte response (one DATA frame, maybe an empty one ending the stream), then 300
    connection WINDOW_UPDATEs of 1, then a request."""
    with H2Conn(port) as c:
        c.handshake()
        eq(c.get("/bytes/1").status, 200, "the request before the WINDOW_UPDATEs")
        c.send(H.window_update_frame(0, 1) * 300)
        return _then_request(c, "/after-window-updates")


def test_h2_priority_and_window_update_limits_configured():
    """max_inbound_priority_frames_per_stream and max_inbound_window_update_frames_per_data_frame_sent
    set to 1000 let 300 PRIORITY frames, and 300 WINDOW_UPDATEs after one DATA frame, through (the
    connection keeps serving), where the defaults (100 and 10) close it with GOAWAY."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port)
        with Weft(cfg):
            eq(_priority_then_request(port), None, "300 PRIORITY frames under the default limit")
            eq(_window_updates_then_request(port), None, "300 WINDOW_UPDATEs under the default limit")
        cfg, port = _cfg(up.port, h2={"max_inbound_priority_frames_per_stream": 1000,
                                      "max_inbound_window_update_frames_per_data_frame_sent": 1000})
        with Weft(cfg):
            st = _priority_then_request(port)
            eq(st and st.status, 200, "a request after 300 PRIORITY frames with the limit at 1000")
            st = _window_updates_then_request(port)
            eq(st and st.status, 200, "a request after 300 WINDOW_UPDATEs with the limit at 1000")


def test_h2_abuse_too_many_concurrent_streams():
    """max_concurrent_streams 5: after the SETTINGS exchange the client opens 10 streams to a slow
    upstream. The first 5 are answered; each excess one is refused with RST_STREAM
    (REFUSED_STREAM or PROTOCOL_ERROR, RFC 9113 §5.1.2) - or the whole connection with GOAWAY
    PROTOCOL_ERROR -; no excess stream reaches the upstream; the bystander gets every answer."""
    with _under_attack(h2={"max_concurrent_streams": 5}) as a:
        c = a.attacker(timeout=8)
        eq(c.peer_settings.get(H.MAX_CONCURRENT_STREAMS), 5, "advertised MAX_CONCURRENT_STREAMS")
        ids = [c.request("GET", "/delay/1500?i=%d" % i) for i in range(10)]
        first, excess = ids[:5], ids[5:]
        _settle(c, lambda: c.closed or all(c.stream(s).done for s in ids), 8)
        goaway = [g for g in c.goaways if g.error_code() == H.PROTOCOL_ERROR]
        for sid in excess:
            st = c.stream(sid)
            ok = st.reset in (H.REFUSED_STREAM, H.PROTOCOL_ERROR) or (goaway and st.status is None)
            check(ok, "stream %d over the limit: expected RST_STREAM REFUSED_STREAM/PROTOCOL_ERROR or a GOAWAY "
                  "PROTOCOL_ERROR, got %r (%s)", sid, st, c.summary())
        if not goaway:
            for sid in first:
                eq(c.stream(sid).status, 200, "status of stream %d within the limit" % sid)
            eq(c.get("/after").status, 200, "a new stream once the first ones are done")
        got = sorted(r.query for r in a.up.requests if r.path.startswith("/delay/"))
        check(set(got) <= {"i=%d" % i for i in range(5)}, "streams over the limit reached the upstream: %r", got)
        c.close()


def test_h2_abuse_priority_flood():
    """PRIORITY flood: 10000 PRIORITY frames (on idle streams) against the default
    max_inbound_priority_frames_per_stream of 100: GOAWAY then close; the bystander gets every
    answer."""
    with _under_attack() as a:
        c = a.attacker()
        c.flood((b"".join(H.priority_frame(2 * (k * 100 + i) + 1, 0, 16) for i in range(100)) for k in range(100)),
                timeout=6)
        _expect_goaway_then_close(c, "PRIORITY flood")


def test_h2_abuse_window_update_flood():
    """WINDOW_UPDATE flood: 10000 connection WINDOW_UPDATEs of 1 byte while the proxy sent no
    DATA (default max_inbound_window_update_frames_per_data_frame_sent 10): GOAWAY then close;
    the bystander gets every answer."""
    with _under_attack() as a:
        c = a.attacker()
        c.flood((H.window_update_frame(0, 1) * 1000 for _ in range(10)), timeout=6)
        _expect_goaway_then_close(c, "WINDOW_UPDATE flood")


def test_h2_keepalive_pings():
    """connection_keepalive interval 200ms, timeout 300ms: a client that answers gets PINGs
    about every 200 ms and keeps its connection (a request still works after 1 s); a client
    that goes silent (reads and sends nothing) is closed once a PING went unanswered for the
    timeout."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg(up.port, h2={"connection_keepalive": {"interval": "0.2s", "timeout": "0.3s"}})
        with Weft(cfg):
            with H2Conn(port) as c:
                c.handshake()
                pings, t_end = 0, time.monotonic() + 1.0
                while time.monotonic() < t_end:
                    try:
                        f = c.read_frame(max(0.05, t_end - time.monotonic()))
                    except (socket.timeout, TimeoutError):
                        continue
                    if f is not None and f.type == H.PING and not f.has(H.ACK):
                        pings += 1
                check(3 <= pings <= 8, "PINGs in 1 s at a 200 ms interval: %d", pings)
                eq(c.get("/after").status, 200, "the answering client keeps its connection")
            with H2Conn(port) as c:
                c.handshake()
                t0 = time.monotonic()
                wait_for(lambda: c.tcp_state() != H.TCP_ESTABLISHED, 3,
                         what="the silent client's connection to be closed")
                took = time.monotonic() - t0
                check(0.3 <= took <= 1.5, "closed after interval + timeout (0.5 s): %.2f s", took)
