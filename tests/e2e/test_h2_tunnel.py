"""Tunnels over HTTP/2 streams: WebSocket over HTTP/2 (extended CONNECT, RFC 8441) to an
HTTP/1.1 WebSocket server (Node's `ws`), and CONNECT over HTTP/2 terminated by Weft (route
connect_config) to a TCP echo server. Both need http2_protocol_options.allow_connect, as in
Envoy. The client is the raw-frame HTTP/2 client (h2raw.py)."""

import os
import struct
import time

import configs as C
import h2raw as H
from harness import TcpEcho, Weft, check, eq, run_weft, tmp_path, wait_for, write_file
from test_websocket import WS, WsServer

ALLOW = {"allow_connect": True}


def ws_frame(payload, opcode=0x2, mask=b"\x11\x22\x33\x44"):
    """A client WebSocket frame (FIN, masked)."""
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_parse(buf):
    """Server frames (unmasked) in buf: [(opcode, payload)], and the bytes left over."""
    out = []
    while len(buf) >= 2:
        op, n = buf[0] & 0x0F, buf[1] & 0x7F
        pos = 2
        if n == 126:
            if len(buf) < 4:
                break
            n, pos = struct.unpack(">H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, pos = struct.unpack(">Q", buf[2:10])[0], 10
        if len(buf) < pos + n:
            break
        out.append((op, bytes(buf[pos:pos + n])))
        buf = buf[pos + n:]
    return out, buf


def _read_until(c, st, cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not cond():
        left = deadline - time.monotonic()
        check(left > 0, "timed out waiting on stream %d: %r", st.id, st)
        if c.read_frame(left) is None:
            raise H.ConnectionClosed("connection closed: %r" % st)


def _ws_cfg(up_port, h2=ALLOW, **extra):
    extra.setdefault("upgrade_configs", WS)
    if h2 is not None:
        extra["http2_protocol_options"] = h2
    return C.simple(up_port, **extra)


def _ws_open(c, path="/chat"):
    sid = c.new_stream_id()
    st = c.stream(sid)
    block = c.request_block("CONNECT", path, "localhost", "http",
                            [(":protocol", "websocket"), ("sec-websocket-version", "13"), ("origin", "http://localhost")])
    c.send_block(sid, block, end_stream=False)
    _read_until(c, st, lambda: st.headers is not None or st.done)
    return sid, st


def test_h2_websocket_echo():
    """WebSocket over an HTTP/2 stream: the proxy advertises SETTINGS_ENABLE_CONNECT_PROTOCOL,
    answers the extended CONNECT with 200 (no Sec-WebSocket-Accept), the ws server sees an
    HTTP/1.1 upgrade (GET, Upgrade: websocket, a Sec-WebSocket-Key it accepts), and binary
    messages of 1 B, 64 KiB and 1 MiB come back whole in DATA frames; the stream stays open."""
    with WsServer() as ws:
        cfg, port = _ws_cfg(ws.port)
        with Weft(cfg) as w, H.H2Conn(port, timeout=10) as c:
            s = c.handshake()
            eq(s.get(0x8), 1, "SETTINGS_ENABLE_CONNECT_PROTOCOL")
            sid, st = _ws_open(c)
            eq(st.status, 200, "extended CONNECT answered")
            check(st.header("sec-websocket-accept") is None and st.header("upgrade") is None,
                  "no HTTP/1.1 upgrade headers in the HTTP/2 answer: %r", st.headers)
            check(not st.done, "the stream stays open: %r", st)
            wait_for(lambda: ws.of("connection"), 3, what="the ws server to accept an upgrade")
            conn = ws.of("connection")
            eq(conn[0]["headers"].get("upgrade", "").lower(), "websocket", "upstream Upgrade header")
            got = bytearray()
            for n in (1, 65536, 1 << 20):
                msg = os.urandom(n)
                c.send_data(sid, ws_frame(msg), timeout=10)
                _read_until(c, st, lambda: ws_parse(bytes(st.body))[0], timeout=10)
                frames, rest = ws_parse(bytes(st.body))
                st.body = bytearray(rest)
                eq(frames[0], (0x2, msg), "echo of %d bytes" % n)
                got += frames[0][1]
            eq(w.stat("http.ingress.downstream_cx_upgrades_total"), 1, "upgrades_total")
            eq(w.stat("http.ingress.downstream_cx_upgrades_active"), 1, "upgrades_active")
            # the client closes: a close frame, then its END_STREAM; the server answers the close
            c.send_data(sid, ws_frame(struct.pack(">H", 1000) + b"bye", opcode=0x8), end_stream=True)
            _read_until(c, st, lambda: st.done, timeout=10)
            frames, _ = ws_parse(bytes(st.body))
            check(frames and frames[-1][0] == 0x8, "the server's close frame came back: %r", frames)
            check(st.ended and st.reset is None, "the stream ended cleanly: %r", st)
            eq(w.stat("http.ingress.downstream_cx_upgrades_active"), 0, "upgrades_active after")


def test_h2_websocket_needs_allow_connect_and_upgrade_config():
    """Without allow_connect the proxy does not advertise extended CONNECT and refuses a
    CONNECT stream (403, or nghttp2's own stream reset when :protocol is not allowed); with
    allow_connect but without upgrade_configs websocket, the upgrade gets 403
    (downstream_rq_ws_on_non_ws_route)."""
    with WsServer() as ws:
        cfg, port = _ws_cfg(ws.port, h2=None)
        with Weft(cfg), H.H2Conn(port) as c:
            s = c.handshake()
            check(not s.get(0x8), "no ENABLE_CONNECT_PROTOCOL without allow_connect: %r", s)
            sid, st = _ws_open(c)
            check(st.status == 403 or st.reset is not None, "refused: %r", st)
        cfg, port = _ws_cfg(ws.port, upgrade_configs=[])
        with Weft(cfg) as w, H.H2Conn(port) as c:
            c.handshake()
            sid, st = _ws_open(c)
            eq(st.status, 403, "websocket not enabled")
            eq(w.stat("http.ingress.downstream_rq_ws_on_non_ws_route"), 1, "ws_on_non_ws_route")
        check(not ws.of("connection"), "nothing reached the ws server")


def test_h2_websocket_client_reset_closes_upstream():
    """A client that resets its WebSocket stream: the upstream connection is closed (the ws
    server sees the close), and the stream is logged as a downstream reset."""
    with WsServer() as ws:
        cfg, port = _ws_cfg(ws.port)
        with Weft(cfg) as w, H.H2Conn(port) as c:
            c.handshake()
            sid, st = _ws_open(c)
            eq(st.status, 200, "open")
            c.send(H.rst_stream_frame(sid))
            deadline = time.monotonic() + 5
            while not ws.of("close") and time.monotonic() < deadline:
                time.sleep(0.05)
            check(ws.of("close"), "the ws server saw its connection close")
            eq(w.stat("http.ingress.downstream_rq_rx_reset"), 1, "downstream_rq_rx_reset")


def test_h2_connect_terminated():
    """CONNECT over HTTP/2 on a route with connect_config: the proxy opens a TCP connection to
    the cluster and answers 200; DATA goes to the echo server and comes back, 256 KiB included;
    the client's END_STREAM half-closes the upstream, whose close then ends the stream."""
    with TcpEcho() as echo:
        port = C.free_port()
        action = {"upgrade_configs": [{"upgrade_type": "CONNECT", "connect_config": {}}]}
        routes = [C.route({"connect_matcher": {}}, cluster="echo", action=action)]
        cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], routes)],
                                                     upgrade_configs=[{"upgrade_type": "CONNECT"}],
                                                     http2_protocol_options=ALLOW)],
                          clusters=[C.cluster("echo", [echo.port])])
        with Weft(cfg) as w, H.H2Conn(port, timeout=10) as c:
            c.handshake()
            sid = c.new_stream_id()
            st = c.stream(sid)
            c.send_block(sid, c.enc.encode([(":method", "CONNECT"), (":authority", "db.internal:5432")]))
            _read_until(c, st, lambda: st.headers is not None or st.done)
            eq(st.status, 200, "CONNECT answered by the proxy")
            data = os.urandom(256 * 1024)
            c.send_data(sid, data, end_stream=True, timeout=10)
            _read_until(c, st, lambda: st.done, timeout=10)
            eq(bytes(st.body), data, "echoed through the tunnel")
            check(st.ended, "ended by the upstream's close: %r", st)


def test_h2_allow_connect_validates():
    """http2_protocol_options.allow_connect is accepted (it enables CONNECT and extended
    CONNECT); the config validates."""
    cfg, _ = _ws_cfg(1)
    p = run_weft(["validate", write_file(tmp_path("ws.yaml"), cfg)])
    eq(p.returncode, 0, "valid: %s" % p.stderr)
