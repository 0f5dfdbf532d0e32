"""gRPC through Weft with real gRPC peers: grpc-js clients (tests/e2e/node/grpc_peer.js client)
-> Weft's listener (h2c prior knowledge, or ALPN h2 over TLS) -> an HTTP/2 cluster -> a grpc-js
Echo server (grpc_peer.js server). Unary, both streaming directions and bidi with payloads up to
1 MiB, metadata and trailers, error statuses, deadlines and cancellations reaching the server as
stream resets, Weft's local replies in gRPC terms, a gRPC retry, and many calls on one channel.

The peers live in tests/e2e/node (`npm ci --prefix tests/e2e/node`, which tests/run.sh does)."""

import hashlib
import json
import os
import subprocess
import threading
import time

import configs as C
from harness import HERE, NodePeer, Weft, check, closed_port, eq, free_port, run_weft, tmp_path, wait_for, write_file
from test_tls import pki, tls_socket

NODE_DIR = os.path.join(HERE, "node")
PEER = os.path.join(NODE_DIR, "grpc_peer.js")
ECHO = "/weft.test.Echo/"
H2 = {"typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    "explicit_http_config": {"http2_protocol_options": {}}}}}
KIB, MIB = 1024, 1 << 20
SIZES = [1, KIB, 64 * KIB, MIB]

# gRPC status codes
OK, CANCELLED, DEADLINE_EXCEEDED, FAILED_PRECONDITION, UNIMPLEMENTED, UNAVAILABLE = 0, 1, 4, 9, 12, 14
CANCEL = 8  # the HTTP/2 error code of RST_STREAM(CANCEL)


def _need_grpc():
    check(os.path.isdir(os.path.join(NODE_DIR, "node_modules", "@grpc", "grpc-js")),
          "the @grpc/grpc-js package is missing: run `npm ci --prefix tests/e2e/node` (tests/run.sh does)")


def pattern(n, seed):
    """What grpc_peer.js sends as payload `seed` of n bytes: byte j is (j + 31 * seed) % 251."""
    one = bytes((j + 31 * seed) % 251 for j in range(min(n, 251)))
    return (one * (n // 251 + 1))[:n] if n > 251 else one


def sha(data):
    return hashlib.sha256(data).hexdigest()[:16]


class GrpcServer(NodePeer):
    """The grpc-js Echo server in a node process; .events collects what it reports."""

    def __init__(self):
        _need_grpc()
        super().__init__(PEER, "gRPC server")

    def wait(self, kind, tag, timeout=3.0):
        """The first `kind` event of the call tagged `tag`, once it came."""
        return wait_for(lambda: self.of(kind, tag), timeout, what="a %r event for call %r" % (kind, tag))[0]


def grpc_call(port, tls=False, **spec):
    """One grpc_peer.js client run against Weft's port (see the spec fields there); its result."""
    _need_grpc()
    if tls:
        spec["ca"] = pki()["ca.crt"]
    p = subprocess.run(["node", PEER, "client", "127.0.0.1:%d" % port, json.dumps(spec)],
                       capture_output=True, text=True, timeout=20)
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    check(lines, "gRPC client printed nothing (exit %s, stderr %r)", p.returncode, p.stderr[-800:])
    res = json.loads(lines[-1])
    check("error" not in res, "gRPC client failed to run %r: %r (stderr %r)", spec, res, p.stderr[-800:])
    return res


def _status(res):
    return (res["code"], res["details"])


def _ok(res, what):
    check(res["code"] == OK, "%s: expected OK, got %r %r", what, res["code"], res["details"])


def _cfg(srv_port, routes=None, action=None, extra_clusters=(), ts=None, **hcm_extra):
    """A listener (h2c, codec AUTO; TLS with ALPN h2 when ts is given) routing to cluster "echo",
    the gRPC server over HTTP/2. Returns (Bootstrap, port)."""
    port = free_port()
    if routes is None:
        routes = [C.route(C.prefix("/"), cluster="echo", action=action)]
    lst = C.http_listener(port, [C.vhost("all", ["*"], routes)], **hcm_extra)
    if ts:
        lst["filter_chains"][0]["transport_socket"] = ts
    clusters = [C.cluster("echo", [srv_port], **H2)] + list(extra_clusters)
    return C.bootstrap(listeners=[lst], clusters=clusters), port


def _check_echo(res, sizes, what):
    """Replies i carry payload pattern(sizes[i], i), in order."""
    got = [(m["index"], m["size"], m["sha"]) for m in res["messages"]]
    want = [(i, n, sha(pattern(n, i))) for i, n in enumerate(sizes)]
    eq(got, want, what + ": replies (index, size, sha)")


# ---- the four kinds of call -------------------------------------------------------------------

def test_grpc_unary_payloads_metadata_and_trailers():
    """Unary calls of 1 B, 1 KiB, 64 KiB and 1 MiB come back identical through Weft; request
    metadata (text and -bin) reaches the server, the server's response headers reach the client,
    and the trailers (grpc-status 0, custom trailer metadata) too."""
    with GrpcServer() as srv:
        cfg, port = _cfg(srv.port)
        with Weft(cfg) as w:
            md = {"x-echo-color": "blue", "x-echo-blob-bin": "\u00ff\u0000bytes", "x-tag": "u"}
            for n in SIZES:
                res = grpc_call(port, kind="unary", sizes=[n], metadata=md)
                eq(_status(res), (OK, "OK"), "status of a %d-byte unary call" % n)
                _check_echo(res, [n], "unary %d bytes" % n)
                eq(res["headers"].get("x-echo-color"), "blue", "response header from the server")
                eq(res["trailers"].get("x-trailer-color"), "blue", "trailer metadata from the server")
                blob = "w78AYnl0ZXM="  # base64 of the UTF-8 bytes of "\u00ff\0bytes"
                eq((res["headers"].get("x-echo-blob-bin"), res["trailers"].get("x-trailer-blob-bin")),
                   (blob, blob), "binary metadata both ways")
            call = srv.wait("call", "u")
            eq((call["method"], call["metadata"].get("x-echo-color")), ("Unary", ["blue"]), "what the server got")
            st = w.stats()
            eq(st.get("cluster.echo.upstream_rq_total"), len(SIZES), "upstream requests")
            eq(st.get("http.ingress.downstream_cx_http2_total"), len(SIZES), "HTTP/2 connections (one per client run)")


def test_grpc_server_streaming():
    """A server-streaming call of 100 replies of 1 KiB, then one of 4 replies of 1 MiB: every
    reply in order and intact, then OK with the server's trailers."""
    with GrpcServer() as srv:
        cfg, port = _cfg(srv.port)
        with Weft(cfg):
            for count, size in ((100, KIB), (4, MIB)):
                res = grpc_call(port, kind="server", req={"count": count, "reply_size": size},
                                metadata={"x-echo-s": "stream"})
                eq(_status(res), (OK, "OK"), "status of %d x %d bytes" % (count, size))
                _check_echo(res, [size] * count, "%d replies of %d bytes" % (count, size))
                eq(res["trailers"].get("x-trailer-s"), "stream", "trailer after the stream")


def test_grpc_client_streaming():
    """A client-streaming call of 1 B, 1 KiB, 64 KiB and 1 MiB requests: the server gets all
    four (its one reply is their concatenation, index = how many came) and the call ends OK."""
    with GrpcServer() as srv:
        cfg, port = _cfg(srv.port)
        with Weft(cfg):
            res = grpc_call(port, kind="client", sizes=SIZES, metadata={"x-echo-c": "up"})
            eq(_status(res), (OK, "OK"), "status")
            whole = b"".join(pattern(n, i) for i, n in enumerate(SIZES))
            eq([(m["index"], m["size"], m["sha"]) for m in res["messages"]], [(4, len(whole), sha(whole))],
               "the reply: count, size and hash of what the server received")
            eq(res["trailers"].get("x-trailer-c"), "up", "trailer")


def test_grpc_bidi_interleaved():
    """A bidi call where each request (1 B .. 1 MiB) is sent only after the echo of the previous
    one came back: Weft relays each message as it comes, in both directions, without waiting
    for either side to finish; then OK with trailers."""
    sizes = [1, KIB, 64 * KIB, MIB, 10, 300 * KIB]
    with GrpcServer() as srv:
        cfg, port = _cfg(srv.port)
        with Weft(cfg):
            res = grpc_call(port, kind="bidi", sizes=sizes, metadata={"x-echo-b": "both"})
            eq(_status(res), (OK, "OK"), "status")
            _check_echo(res, sizes, "bidi echoes")
            eq(res["order"], [x for i in range(len(sizes)) for x in ("s%d" % i, "r%d" % i)], "interleaving")
            eq((res["headers"].get("x-echo-b"), res["trailers"].get("x-trailer-b")), ("both", "both"),
               "headers and trailers")


# ---- statuses, deadlines, cancellations ---------------------------------------------------------

def test_grpc_error_status_and_message_pass_through():
    """A server's error status and message reach the client unchanged: in a trailers-only
    answer (unary, with trailer metadata), and in the trailers after some messages (bidi that
    fails on its third request)."""
    msg = "precondition: 100% not met, caf\u00e9 \u2192 retry later"
    with GrpcServer() as srv:
        cfg, port = _cfg(srv.port)
        with Weft(cfg):
            res = grpc_call(port, kind="unary", req={"fail_code": FAILED_PRECONDITION, "fail_message": msg},
                            metadata={"x-echo-why": "because"})
            eq(_status(res), (FAILED_PRECONDITION, msg), "status and message of the unary error")
            eq(res["trailers"].get("x-trailer-why"), "because", "trailer metadata with the error")
            res = grpc_call(port, kind="bidi", sizes=[10, 20, 30, 40],
                            reqs=[{}, {}, {"fail_code": FAILED_PRECONDITION, "fail_message": msg}])
            eq(_status(res), (FAILED_PRECONDITION, msg), "status and message after two bidi echoes")
            _check_echo(res, [10, 20], "the echoes before the error")


def test_grpc_deadline_propagates_and_resets_the_server_call():
    """A client deadline of 300 ms on a call the server answers after 3 s: the client gets
    DEADLINE_EXCEEDED after about 300 ms, the server got the deadline (grpc-timeout) through
    Weft, and the server's call is cancelled by a stream reset (RST_STREAM CANCEL) reaching
    it, not by its own timer (the peer never enforces deadlines itself). The same when the
    deadline (400 ms) passes in the middle of a server stream (a reply every 50 ms)."""
    with GrpcServer() as srv:
        cfg, port = _cfg(srv.port)
        with Weft(cfg) as w:
            res = grpc_call(port, kind="unary", deadline_ms=300, req={"sleep_ms": 3000}, metadata={"x-tag": "dl"})
            eq(res["code"], DEADLINE_EXCEEDED, "client status (details %r)" % res["details"])
            check(250 <= res["elapsed_ms"] < 1000, "DEADLINE_EXCEEDED promptly: after %s ms", res["elapsed_ms"])
            call = srv.wait("call", "dl")
            check(call["grpc_timeout"] and call["grpc_timeout"].endswith("m") and
                  0 < int(call["grpc_timeout"][:-1]) <= 300, "grpc-timeout the server got: %r", call["grpc_timeout"])
            cancelled = srv.wait("cancelled", "dl", 2.0)
            check(cancelled["after_ms"] < 1500, "the server's call cancelled after %s ms", cancelled["after_ms"])
            eq(srv.wait("h2_close", "dl")["rst"], CANCEL, "the server's stream was reset with CANCEL")
            res = grpc_call(port, kind="server", deadline_ms=400, req={"count": 100, "interval_ms": 50},
                            metadata={"x-tag": "mid"})
            eq(res["code"], DEADLINE_EXCEEDED, "client status mid-stream (details %r)" % res["details"])
            check(2 <= len(res["messages"]) < 20 and res["elapsed_ms"] < 1000, "%d replies, then the deadline after %s ms",
                  len(res["messages"]), res["elapsed_ms"])
            cancelled = srv.wait("cancelled", "mid", 2.0)
            check(cancelled["sent"] < 20, "the server stopped after %d replies", cancelled["sent"])
            eq(srv.wait("h2_close", "mid")["rst"], CANCEL, "the server's stream was reset with CANCEL")
            wait_for(lambda: w.stat("cluster.echo.upstream_rq_active") == 0, 2, what="no upstream request left")


def test_grpc_client_cancel_reaches_the_server():
    """A client that cancels a server-streaming call after 3 replies (of 1000, 20 ms apart):
    the server sees the call cancelled (RST_STREAM CANCEL) well before the end of its stream.

    (Server streaming because Node's HTTP/2 client, cancelling a stream whose request side is
    still open, sends END_STREAM before RST_STREAM: a bidi server may see a plain half-close
    and finish first, directly as through Weft.)"""
    with GrpcServer() as srv:
        cfg, port = _cfg(srv.port)
        with Weft(cfg) as w:
            res = grpc_call(port, kind="server", cancel_after=3, req={"count": 1000, "interval_ms": 20},
                            metadata={"x-tag": "cx"})
            eq(res["code"], CANCELLED, "client status (details %r)" % res["details"])
            eq(len(res["messages"]), 3, "replies before the cancel")
            cancelled = srv.wait("cancelled", "cx", 2.0)
            check(cancelled["sent"] < 200, "the server stopped after %d replies", cancelled["sent"])
            eq(srv.wait("h2_close", "cx")["rst"], CANCEL, "the server's stream was reset with CANCEL")
            time.sleep(0.2)
            eq(len(srv.of("call")), 1, "calls the server saw")
            wait_for(lambda: w.stat("cluster.echo.upstream_rq_active") == 0, 2, what="no upstream request left")
            st = w.stats()
            eq((st.get("http.ingress.downstream_rq_rx_reset"), st.get("cluster.echo.upstream_rq_tx_reset")), (1, 1),
               "downstream_rq_rx_reset, upstream_rq_tx_reset")


# ---- Weft's own answers ------------------------------------------------------------------------

def test_grpc_no_route_is_unimplemented():
    """A method no route takes: the grpc-js client gets UNIMPLEMENTED from Weft, the server
    sees nothing."""
    with GrpcServer() as srv:
        cfg, port = _cfg(srv.port, routes=[C.route(C.prefix("/other.Service/"), cluster="echo")])
        with Weft(cfg):
            res = grpc_call(port, kind="unary", sizes=[10])
            eq(_status(res), (UNIMPLEMENTED, "Not Found"), "status of an unrouted call")
            eq(srv.of("call"), [], "calls the server saw")


def test_grpc_unreachable_cluster_is_unavailable():
    """A route to a cluster whose only endpoint refuses connections: UNAVAILABLE, with Envoy's
    message, for unary and streaming calls alike."""
    with GrpcServer() as srv:
        cfg, port = _cfg(srv.port, routes=[C.route(C.prefix("/"), cluster="dead")],
                         extra_clusters=[C.cluster("dead", [closed_port()], **H2)])
        with Weft(cfg):
            for kind in ("unary", "bidi"):
                res = grpc_call(port, kind=kind, sizes=[10])
                eq(_status(res), (UNAVAILABLE, "upstream connect error or disconnect/reset before headers. "
                                               "reset reason: connection failure"), "status of a %s call" % kind)


def test_grpc_route_timeout_is_unavailable():
    """A route timeout of 300 ms on a call the server answers after 3 s: Weft ends the call
    with a 504, which a gRPC client hears as UNAVAILABLE ("upstream request timeout"; gRPC's
    HTTP mapping, as Envoy answers), after about 300 ms, and resets the upstream stream, which
    cancels the server's call. (The client's own deadline is DEADLINE_EXCEEDED: next test.)"""
    with GrpcServer() as srv:
        cfg, port = _cfg(srv.port, action={"timeout": "0.3s"})
        with Weft(cfg) as w:
            res = grpc_call(port, kind="unary", req={"sleep_ms": 3000}, metadata={"x-tag": "rt"})
            check(250 <= res["elapsed_ms"] < 1500, "answered after %s ms", res["elapsed_ms"])
            eq(srv.wait("h2_close", "rt", 2.0)["rst"], CANCEL, "the server's stream was reset with CANCEL")
            srv.wait("cancelled", "rt")
            eq(w.stat("cluster.echo.upstream_rq_timeout"), 1, "upstream_rq_timeout")
            eq(_status(res), (UNAVAILABLE, "upstream request timeout"), "status of the timed-out call")


def test_grpc_client_deadline_expiring_in_weft_is_deadline_exceeded():
    """A client's grpc-timeout (300m) shorter than the route timeout: when it expires in Weft
    first (this raw HTTP/2 client does not enforce deadlines itself), the answer is trailers-only
    grpc-status 4 DEADLINE_EXCEEDED, and the server's call is cancelled."""
    import h2raw as H
    with GrpcServer() as srv:
        cfg, port = _cfg(srv.port)
        with Weft(cfg), H.H2Conn(port) as c:
            c.handshake()
            msg = bytes([0x10]) + _varint(3000) + bytes([0x2a, 2]) + b"dl"   # sleep_ms 3000, key "dl"
            body = b"\x00" + len(msg).to_bytes(4, "big") + msg
            t0 = time.monotonic()
            sid = c.request("POST", "/weft.test.Echo/Unary", body=body, content_length=False, headers=[
                ("content-type", "application/grpc"), ("te", "trailers"), ("grpc-timeout", "300m"), ("x-tag", "dl")])
            st = c.response(sid, timeout=5)
            elapsed = (time.monotonic() - t0) * 1000
            check(250 <= elapsed < 1500, "answered after %d ms", elapsed)
            eq(st.status, 200, "trailers-only answer")
            eq(st.header("grpc-status"), "4", "grpc-status DEADLINE_EXCEEDED (%r)" % st.headers)
            srv.wait("cancelled", "dl")


def test_grpc_client_deadline_expiring_in_weft_mid_stream_ends_with_trailers():
    """The same deadline (400m) passing in the middle of a server stream (a reply every 50 ms):
    the replies so far arrive, then trailers with grpc-status 4 DEADLINE_EXCEEDED end the
    stream (not a reset, which a client reads as INTERNAL), and the server's call is
    cancelled."""
    import h2raw as H
    with GrpcServer() as srv:
        cfg, port = _cfg(srv.port, http_filters=C.http_filters(("envoy.filters.http.grpc_stats", {"@type": GRPC_STATS})))
        with Weft(cfg) as w, H.H2Conn(port) as c:
            c.handshake()
            # key "mid" (5), count 100 (7), interval_ms 50 (9)
            msg = bytes([0x2a, 3]) + b"mid" + bytes([0x38]) + _varint(100) + bytes([0x48]) + _varint(50)
            body = b"\x00" + len(msg).to_bytes(4, "big") + msg
            sid = c.request("POST", "/weft.test.Echo/ServerStream", body=body, content_length=False, headers=[
                ("content-type", "application/grpc"), ("te", "trailers"), ("grpc-timeout", "400m"), ("x-tag", "mid")])
            st = c.response(sid, timeout=5)
            eq(st.status, 200, "the stream's head")
            check(st.data_bytes > 0, "replies before the deadline: %r", st)
            eq(st.reset, None, "the stream is not reset")
            check(st.ended and st.trailers is not None, "the stream ends with trailers: %r", st)
            eq(dict(st.trailers).get("grpc-status"), "4", "grpc-status DEADLINE_EXCEEDED (%r)" % st.trailers)
            cancelled = srv.wait("cancelled", "mid", 2.0)
            check(cancelled["sent"] < 20, "the server stopped after %d replies", cancelled["sent"])
            stats = w.stats()
            eq((stats.get("cluster.echo.grpc.4"), stats.get("cluster.echo.grpc.failure")), (1, 1),
               "the call counted as DEADLINE_EXCEEDED")


def _varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


# ---- retries and concurrency -------------------------------------------------------------------

def test_grpc_retry_on_unavailable():
    """retry_on "unavailable", num_retries 2: a call the server fails once with UNAVAILABLE
    (trailers-only) is retried with its 32 KiB request replayed (Weft keeps request bodies up to
    64 KiB for replays), and the client sees OK; a call that keeps failing gets the server's
    UNAVAILABLE after 3 attempts."""
    policy = {"retry_policy": {"retry_on": "unavailable", "num_retries": 2}}
    with GrpcServer() as srv:
        cfg, port = _cfg(srv.port, action=policy)
        with Weft(cfg) as w:
            fail = {"fail_code": UNAVAILABLE, "fail_message": "not yet"}
            res = grpc_call(port, kind="unary", sizes=[32 * KIB], metadata={"x-tag": "once"},
                            req=dict(fail, key="once", fail_times=1))
            eq(_status(res), (OK, "OK"), "status after the retry")
            _check_echo(res, [32 * KIB], "the replayed request's echo")
            eq(len(srv.of("call", "once")), 2, "attempts the server saw")
            st = w.stats()
            eq((st.get("cluster.echo.upstream_rq_retry"), st.get("cluster.echo.upstream_rq_retry_success")),
               (1, 1), "upstream_rq_retry, upstream_rq_retry_success")
            res = grpc_call(port, kind="unary", sizes=[10], metadata={"x-tag": "always"},
                            req=dict(fail, key="always", fail_times=100))
            eq(_status(res), (UNAVAILABLE, "not yet"), "status once the retries are spent")
            eq(len(srv.of("call", "always")), 3, "attempts the server saw")
            st = w.stats()
            eq((st.get("cluster.echo.upstream_rq_retry"), st.get("cluster.echo.upstream_rq_retry_limit_exceeded")),
               (3, 1), "upstream_rq_retry, upstream_rq_retry_limit_exceeded")


def test_grpc_many_concurrent_calls_on_one_channel():
    """200 unary calls at once on one grpc-js channel (one HTTP/2 connection to Weft, 200
    concurrent streams), payloads of 1 B .. 16 KiB: all succeed with their own echo, over few
    upstream connections."""
    sizes = [1, 100, KIB, 16 * KIB]
    with GrpcServer() as srv:
        cfg, port = _cfg(srv.port)
        with Weft(cfg) as w:
            res = grpc_call(port, kind="unary", parallel=200, sizes=sizes)
            eq((res["codes"], res["details"]), ({"0": 200}, []), "statuses of the 200 calls")
            want = [[sizes[i % 4], sha(pattern(sizes[i % 4], i))] for i in range(200)]
            eq(res["replies"], want, "each call's echo")
            st = w.stats()
            eq((st.get("http.ingress.downstream_cx_http2_total"), st.get("http.ingress.downstream_rq_total")),
               (1, 200), "one downstream HTTP/2 connection, 200 requests")
            eq(st.get("cluster.echo.upstream_rq_total"), 200, "upstream requests")
            check(st.get("cluster.echo.upstream_cx_total", 0) <= 4, "upstream streams multiplexed: %s connections",
                  st.get("cluster.echo.upstream_cx_total"))


# ---- TLS downstream ----------------------------------------------------------------------------

def test_grpc_over_tls_downstream():
    """Unary and bidi calls over TLS (ALPN h2 offered by the listener, grpc-js verifying the
    test CA) through Weft to the plaintext HTTP/2 server."""
    with GrpcServer() as srv:
        cfg, port = _cfg(srv.port, ts=tls_socket(alpn=["h2", "http/1.1"]))
        with Weft(cfg) as w:
            res = grpc_call(port, tls=True, kind="unary", sizes=[MIB], metadata={"x-echo-t": "tls"})
            eq(_status(res), (OK, "OK"), "unary status")
            _check_echo(res, [MIB], "unary echo")
            eq(res["trailers"].get("x-trailer-t"), "tls", "trailer")
            sizes = [1, 64 * KIB, MIB, 7]
            res = grpc_call(port, tls=True, kind="bidi", sizes=sizes)
            eq(_status(res), (OK, "OK"), "bidi status")
            _check_echo(res, sizes, "bidi echoes")
            eq(w.stat("http.ingress.downstream_cx_http2_total"), 2, "both connections spoke HTTP/2")


# ---- stats -------------------------------------------------------------------------------------

GRPC_STATS = "type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig"


def test_grpc_stats_by_status():
    """envoy.filters.http.grpc_stats counts calls by gRPC status in the cluster's namespace:
    cluster.echo.grpc.{total,success,failure,<status>}, or, for the methods of
    individual_method_stats_allowlist, cluster.echo.grpc.weft.test.Echo.Unary.* instead;
    statuses from trailers, from trailers-only answers and from Weft's own replies (a route
    timeout) all count; a status nobody ended with has no counter."""
    allow = {"individual_method_stats_allowlist": {"services": [{"name": "weft.test.Echo", "method_names": ["Unary"]}]}}
    with GrpcServer() as srv:
        fast = C.route(C.prefix("/weft.test.Echo/ServerStream"), cluster="echo", action={"timeout": "0.3s"})
        cfg, port = _cfg(srv.port, routes=[fast, C.route(C.prefix("/"), cluster="echo")],
                         http_filters=C.http_filters(("envoy.filters.http.grpc_stats", dict({"@type": GRPC_STATS}, **allow))))
        with Weft(cfg) as w:
            _ok(grpc_call(port, kind="unary", sizes=[10]), "unary")
            _ok(grpc_call(port, kind="unary", sizes=[10]), "unary")
            res = grpc_call(port, kind="unary", req={"fail_code": FAILED_PRECONDITION, "fail_message": "no"})
            eq(res["code"], FAILED_PRECONDITION, "failed unary")
            _ok(grpc_call(port, kind="bidi", sizes=[1, 2]), "bidi")
            res = grpc_call(port, kind="server", req={"sleep_ms": 3000})
            eq(res["code"], UNAVAILABLE, "route timeout")
            stats = w.stats()
            pre = "cluster.echo.grpc."
            # allowlisted methods count under their own names only (as Envoy charges them)
            want = {"total": 2, "success": 1, "failure": 1, "0": 1, "9": None, "14": 1,
                    "weft.test.Echo.Unary.total": 3, "weft.test.Echo.Unary.success": 2,
                    "weft.test.Echo.Unary.failure": 1, "weft.test.Echo.Unary.0": 2, "weft.test.Echo.Unary.9": 1}
            got = {k: stats.get(pre + k) for k in want}
            eq(got, want, "grpc stats")
            check(pre + "2" not in stats and pre + "weft.test.Echo.Bidi.total" not in stats,
                  "no counter for unseen statuses or methods off the allowlist: %r",
                  sorted(k for k in stats if k.startswith(pre)))
            # a config without the filter: its counters go with the config that had it
            lst = C.http_listener(port, [C.vhost("all", ["*"], [C.route(C.prefix("/"), cluster="echo")])])
            w.reload(C.bootstrap(listeners=[lst], clusters=[C.cluster("echo", [srv.port], **H2)],
                                 admin_port=cfg.admin_port))
            wait_for(lambda: not any(k.startswith(pre) for k in w.stats()), 5, what="the grpc counters to go")
            _ok(grpc_call(port, kind="unary", sizes=[10]), "unary without the filter")
            eq(w.stat("cluster.echo.upstream_rq_total"), 6, "the cluster's own figures stay")


def test_grpc_stats_config_refusals():
    """stats_for_all_methods (unbounded stat names) and emit_filter_state are refused with their
    position."""
    for field in ({"stats_for_all_methods": True}, {"emit_filter_state": True}):
        cfg, _ = _cfg(1, http_filters=C.http_filters(("envoy.filters.http.grpc_stats", dict({"@type": GRPC_STATS}, **field))))
        p = run_weft(["validate", write_file(tmp_path("gs.yaml"), cfg)])
        eq(p.returncode, 1, "refused: %s" % field)
        check(list(field)[0] in p.stderr and ".yaml:" in p.stderr, "names the field and position: %s", p.stderr)
