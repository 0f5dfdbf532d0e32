"""HTTP/1.1 upgrades: WebSocket through Weft with real peers (Node's `ws`, client and echo
server), the answers Envoy gives when an upgrade is refused (by the upstream or by the config),
the tunnel's timeouts, access log and stats, and CONNECT terminated by Weft.

The ws peers live in tests/e2e/node (`npm ci --prefix tests/e2e/node`, which tests/run.sh and
`make test` do)."""

import json
import os
import socket
import subprocess
import threading
import time

import configs as C
from harness import (HERE, HttpUpstream, NodePeer, RawConn, TcpEcho, TcpServer, Weft, check, eq, free_port,
                     get_stats, http_req, read_lines, run_weft, tmp_path, wait_for, write_file)

NODE_DIR = os.path.join(HERE, "node")
PEER = os.path.join(NODE_DIR, "ws_peer.js")
WS = [{"upgrade_type": "websocket"}]
CONNECT_REQ = b"CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n"
UPGRADE_HEADERS = [("Connection", "Upgrade"), ("Upgrade", "websocket"),
                   ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]


def _need_ws():
    check(os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ws")),
          "the ws package is missing: run `npm ci --prefix tests/e2e/node` (tests/run.sh does)")


class WsServer(NodePeer):
    """The ws echo server in a node process; .events collects what it reports."""

    def __init__(self):
        _need_ws()
        super().__init__(PEER, "ws server")


def ws_client(port, scenario, path="/chat", tls_ca=None):
    """Run a ws_peer.js client scenario through Weft; its JSON result. tls_ca: wss://, trusting
    that CA file."""
    _need_ws()
    url = "%s://localhost:%d%s" % ("wss" if tls_ca else "ws", port, path)
    env = dict(os.environ, NODE_EXTRA_CA_CERTS=tls_ca) if tls_ca else None
    p = subprocess.run(["node", PEER, "client", url, scenario], capture_output=True, text=True, timeout=30, env=env)
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    check(lines, "ws client printed nothing (exit %s, stderr %r)", p.returncode, p.stderr[-500:])
    res = json.loads(lines[-1])
    check("error" not in res, "ws client scenario %s failed: %r", scenario, res)
    return res


class UpgradeServer(TcpServer):
    """A raw upstream that answers any request head with `answer` (a 101 by default, then
    `greeting`), then echoes bytes; on EOF it shuts its side. .heads keeps the request heads."""

    SWITCH = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")

    def __init__(self, answer=SWITCH, greeting=b""):
        self.answer = answer
        self.greeting = greeting
        self.heads = []
        super().__init__(self._serve_upgrade, "upgrade")

    def _serve_upgrade(self, s, _srv):
        buf = b""
        while b"\r\n\r\n" not in buf:
            b = s.recv(65536)
            if not b:
                return
            buf += b
        head, _, rest = buf.partition(b"\r\n\r\n")
        with self.lock:
            self.heads.append(head.decode("latin-1"))
        s.sendall(self.answer + self.greeting)
        if rest:
            s.sendall(rest)
        self.echo_handler(s, self)


def _cfg(up_port, route_action=None, access_log=None, **hcm_extra):
    hcm_extra.setdefault("upgrade_configs", WS)
    return C.simple(up_port, route_action=route_action, access_log=access_log, **hcm_extra)


class Head:
    def __init__(self, status, headers):
        self.status, self.headers = status, headers


def _read_head(conn):
    """Read a response head only (a 101 has no body: the tunnel follows), or a whole response
    when it is not a 101."""
    head = conn._read_until(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    if status != 101:
        conn.buf[:0] = head
        return conn.read_response()
    return Head(status, [(k, v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)])


def _upgrade(conn, path="/chat"):
    conn.send(http_req("GET", path, headers=UPGRADE_HEADERS))
    return _read_head(conn)


def _recv_exactly(conn, n, timeout=5.0):
    deadline = time.monotonic() + timeout
    while len(conn.buf) < n:
        check(time.monotonic() < deadline, "only %d of %d tunnelled bytes arrived", len(conn.buf), n)
        conn._fill(max(0.05, deadline - time.monotonic()))
    out = bytes(conn.buf[:n])
    del conn.buf[:n]
    return out


def _hdr(headers, name):
    return [v for k, v in headers if k.lower() == name]


# ---- WebSocket with real peers ------------------------------------------------------------------

def test_websocket_over_tls():
    """wss:// through a TLS listener: the tunnel carries the TLS-decrypted bytes both ways, and
    the close handshake (a TLS close_notify, then the half-close) goes through."""
    from test_tls import pki, tls_socket
    with WsServer() as srv:
        cfg, port = _cfg(srv.port)
        cfg.doc["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"] = tls_socket()
        cfg = C.bootstrap(listeners=cfg.doc["static_resources"]["listeners"],
                          clusters=cfg.doc["static_resources"]["clusters"], admin_port=cfg.admin_port)
        with Weft(cfg):
            res = ws_client(port, "echo", tls_ca=pki()["ca.crt"])
            eq(res["sizes"], [1, 64 * 1024, 1 << 20], "echoed message sizes over TLS")
            check(res["same"], "echoed messages differ from what was sent")
            res = ws_client(port, "close", tls_ca=pki()["ca.crt"])
            eq(res["code"], 4000, "the close handshake over TLS")


def test_websocket_echo_sizes():
    """1 B, 64 KiB and 1 MiB messages cross the tunnel intact; the upstream saw the upgrade."""
    with WsServer() as srv:
        cfg, port = _cfg(srv.port)
        with Weft(cfg):
            res = ws_client(port, "echo")
            eq(res["sizes"], [1, 64 * 1024, 1 << 20], "echoed message sizes")
            check(res["same"], "echoed messages differ from what was sent")
            eq(res["upgrade_headers"].get("upgrade", "").lower(), "websocket", "Upgrade on the 101")
            conn = srv.of("connection")[0]["headers"]
            eq(conn.get("upgrade"), "websocket", "Upgrade header the upstream got")
            check("upgrade" in conn.get("connection", "").lower(), "Connection the upstream got: %r",
                  conn.get("connection"))


def test_websocket_fragmented_message():
    with WsServer() as srv:
        cfg, port = _cfg(srv.port)
        with Weft(cfg):
            res = ws_client(port, "fragments")
            eq(res["text"], "frag-one frag-two frag-three", "reassembled message")
            eq(res["binary"], False, "text message stays text")


def test_websocket_ping_pong():
    with WsServer() as srv:
        cfg, port = _cfg(srv.port)
        with Weft(cfg):
            eq(ws_client(port, "ping")["pong"], "are-you-there", "pong payload")


def test_websocket_close_handshake_codes():
    """A close from either side carries its code and reason to the other side."""
    with WsServer() as srv:
        cfg, port = _cfg(srv.port)
        with Weft(cfg):
            res = ws_client(port, "close")
            eq((res["code"], res["reason"]), (4000, "client-bye"), "close the client got back")
            wait_for(lambda: srv.of("close"), 5, what="the server's close event")
            eq((srv.of("close")[0]["code"], srv.of("close")[0]["reason"]), (4000, "client-bye"),
               "close code the server saw")
            res = ws_client(port, "server-close")
            eq((res["code"], res["reason"]), (4001, "server-bye"), "server-initiated close at the client")


def test_websocket_route_timeout_does_not_cut_tunnel():
    """The route timeout (300 ms) bounds the wait for the 101, not the tunnel (as Envoy)."""
    with WsServer() as srv:
        cfg, port = _cfg(srv.port, route_action={"timeout": "0.3s"})
        with Weft(cfg):
            res = ws_client(port, "slow")
            eq(res.get("echoed"), 8, "messages echoed over 1.2 s (closed early: %r)" % res.get("closed_early"))


# ---- refused upgrades ---------------------------------------------------------------------------

def _refused_by_upstream(status):
    """The upstream answers `status` instead of 101: the client gets that response, there is no
    tunnel, and (as in Envoy, where what follows an upgrade request is upgrade payload) the
    connection closes: the bytes sent after the request never reach the upstream."""
    with HttpUpstream() as up:
        cfg, port = _cfg(up.port)
        with Weft(cfg):
            with RawConn(port) as conn:
                conn.send(http_req("GET", "/status/%d" % status, headers=UPGRADE_HEADERS) +
                          http_req("GET", "/second"))
                r = conn.read_response()
                eq(r.status, status, "status relayed to the client")
                eq(_hdr(r.headers, "upgrade"), [], "no Upgrade on a refused upgrade")
                eq([v.lower() for v in _hdr(r.headers, "connection")], ["close"], "Connection header")
                check(conn.is_closed(3), "the connection should close after a refused upgrade")
            time.sleep(0.05)
            eq([q.path for q in up.requests], ["/status/%d" % status], "requests the upstream saw")
            eq(up.requests[0].header("upgrade"), "websocket", "Upgrade header forwarded")


def test_websocket_upstream_answers_200():
    _refused_by_upstream(200)


def test_websocket_upstream_answers_426():
    _refused_by_upstream(426)


def test_upgrade_not_enabled_gets_403():
    """No upgrade_configs: Envoy answers 403 (upgrade_failed), counts
    downstream_rq_ws_on_non_ws_route and closes; nothing reaches the upstream."""
    with HttpUpstream() as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg):
            with RawConn(port) as conn:
                r = _upgrade(conn)
                eq(r.status, 403, "status of an upgrade that is not enabled")
                check(conn.is_closed(3), "the connection should close after the 403")
            eq(len(up.requests), 0, "requests at the upstream")
            eq(get_stats(cfg.admin_port).get("http.ingress.downstream_rq_ws_on_non_ws_route"), 1,
               "downstream_rq_ws_on_non_ws_route")
            # an ordinary request on a new connection is untouched
            with RawConn(port) as conn:
                eq(conn.get("/plain").status, 200, "plain request")


def test_upgrade_route_overrides_connection_manager():
    """Envoy's table: the route's upgrade_configs win over the connection manager's."""
    with UpgradeServer() as up:
        port = free_port()
        routes = [C.route(C.prefix("/off"), cluster="backend",
                          action={"upgrade_configs": [{"upgrade_type": "WebSocket", "enabled": False}]}),
                  C.route(C.prefix("/on"), cluster="backend",
                          action={"upgrade_configs": [{"upgrade_type": "websocket"}]}),
                  C.route(C.prefix("/"), cluster="backend")]
        cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], routes)],
                                                     upgrade_configs=[{"upgrade_type": "websocket",
                                                                       "enabled": False}])],
                          clusters=[C.cluster("backend", [up.port])])
        with Weft(cfg):
            with RawConn(port) as conn:
                eq(_upgrade(conn, "/plain").status, 403, "disabled on the connection manager")
            with RawConn(port) as conn:
                eq(_upgrade(conn, "/off").status, 403, "disabled on the route")
            with RawConn(port) as conn:
                eq(_upgrade(conn, "/on").status, 101, "enabled on the route")
                conn.send(b"ping")
                eq(_recv_exactly(conn, 4), b"ping", "tunnelled bytes")


def test_upgrade_type_case_insensitive_and_h2c_is_not_an_upgrade():
    with UpgradeServer() as up:
        cfg, port = _cfg(up.port)
        with Weft(cfg):
            with RawConn(port) as conn:
                conn.send(http_req("GET", "/x", headers=[("connection", "keep-alive, UPGRADE"),
                                                         ("upgrade", "WebSocket")]))
                eq(_read_head(conn).status, 101, "Upgrade: WebSocket on a websocket config")
    with HttpUpstream() as up:
        cfg, port = _cfg(up.port)
        with Weft(cfg):
            with RawConn(port) as conn:
                conn.send(http_req("GET", "/h2c", headers=[("Connection", "Upgrade, HTTP2-Settings"),
                                                           ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABkAAQAAP__")]))
                eq(conn.read_response().status, 200, "an h2c upgrade is served as plain HTTP/1.1")
                eq(conn.get("/again").status, 200, "the connection stays usable")
            eq(up.requests[0].header("upgrade"), None, "Upgrade: h2c is not forwarded")


# ---- the tunnel ---------------------------------------------------------------------------------

def test_websocket_idle_timeout_closes_tunnel():
    """The route's idle_timeout, or the connection manager's stream_idle_timeout, closes an idle
    tunnel, both ends."""
    for route_action, hcm_extra in (({"idle_timeout": "0.3s"}, {}), (None, {"stream_idle_timeout": "0.3s"})):
        _idle_tunnel_closes(route_action, hcm_extra)


def _idle_tunnel_closes(route_action, hcm_extra):
    with UpgradeServer() as up:
        cfg, port = _cfg(up.port, route_action=route_action, **hcm_extra)
        with Weft(cfg):
            with RawConn(port) as conn:
                eq(_upgrade(conn).status, 101, "upgrade status")
                conn.send(b"hello")
                eq(_recv_exactly(conn, 5), b"hello", "echo through the tunnel")
                t0 = time.monotonic()
                check(conn.is_closed(5), "an idle tunnel should be closed by the idle timeout")
                check(time.monotonic() - t0 >= 0.2, "closed after %.3fs, before the idle timeout",
                      time.monotonic() - t0)
            wait_for(lambda: up.eofs == 1, 5, what="the upstream side of the tunnel closed")
            eq(get_stats(cfg.admin_port).get("http.ingress.downstream_rq_idle_timeout"), 1,
               "downstream_rq_idle_timeout")


def test_websocket_tunnel_half_close_and_access_log_and_stats():
    """Half-close crosses the tunnel; the access log line at its end has 101 and the bytes each
    way; the upgrade stats count it; the upstream connection is closed, never pooled."""
    log = tmp_path("ws-access.log")
    fmt = "%RESPONSE_CODE% %BYTES_RECEIVED% %BYTES_SENT% %UPSTREAM_CLUSTER% %REQ(:PATH)%\n"
    with UpgradeServer(greeting=b"HELLO") as up:
        cfg, port = _cfg(up.port, access_log=[C.file_log(log, text=fmt)])
        with Weft(cfg):
            with RawConn(port) as conn:
                r = _upgrade(conn)
                eq(r.status, 101, "upgrade status")
                eq([v.lower() for v in _hdr(r.headers, "upgrade")], ["websocket"], "Upgrade on the 101")
                check(any("upgrade" in v.lower() for v in _hdr(r.headers, "connection")),
                      "Connection: upgrade on the 101: %r", r.headers)
                eq(_recv_exactly(conn, 5), b"HELLO", "bytes the upstream sent with its 101")
                st = get_stats(cfg.admin_port)
                eq(st.get("http.ingress.downstream_cx_upgrades_total"), 1, "downstream_cx_upgrades_total")
                eq(st.get("http.ingress.downstream_cx_upgrades_active"), 1, "downstream_cx_upgrades_active")
                data = os.urandom(100000)
                conn.send(data)
                eq(_recv_exactly(conn, len(data)), data, "echo of 100000 bytes")
                conn.sock.shutdown(socket.SHUT_WR)
                eq(conn.read_until_close(5), b"", "bytes after the half-close")
            wait_for(lambda: read_lines(log), 5, what="the access log line")
            eq(read_lines(log), ["101 100000 100005 backend /chat"], "access log line")
            st = get_stats(cfg.admin_port)
            eq(st.get("http.ingress.downstream_cx_upgrades_active"), 0, "upgrades active after the end")
            eq(st.get("cluster.backend.upstream_cx_total"), 1, "upstream_cx_total")
            eq(st.get("cluster.backend.upstream_cx_active"), 0, "upstream connection closed, not pooled")
            eq(up.eofs, 1, "the upstream saw the client's half-close")


def test_websocket_upstream_reset_closes_client():
    """An upstream that resets the tunnel gets the client's connection closed at once (not at
    the idle timeout), and a client that resets gets the upstream's closed."""
    def reset_after_101(s, srv):
        s.recv(65536)
        s.sendall(UpgradeServer.SWITCH)
        s.recv(65536)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    with TcpServer(reset_after_101) as up:
        cfg, port = _cfg(up.port)
        with Weft(cfg):
            with RawConn(port) as conn:
                eq(_upgrade(conn).status, 101, "upgrade status")
                conn.send(b"x")
                check(conn.is_closed(2), "the client connection should close when the upstream resets")
            eq(get_stats(cfg.admin_port).get("http.ingress.downstream_cx_upgrades_active"), 0,
               "upgrades active after the reset")
    with UpgradeServer() as up:
        cfg, port = _cfg(up.port)
        with Weft(cfg):
            conn = RawConn(port)
            eq(_upgrade(conn).status, 101, "upgrade status")
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()
            wait_for(lambda: up.eofs == 1, 2, what="the upstream connection closed after the client's reset")


def test_websocket_payload_sent_with_the_request_waits_for_the_101():
    """Bytes the client sends right behind its upgrade request go through the tunnel after the
    101, not to the upstream as part of the request."""
    with UpgradeServer() as up:
        cfg, port = _cfg(up.port)
        with Weft(cfg):
            with RawConn(port) as conn:
                conn.send(http_req("GET", "/chat", headers=UPGRADE_HEADERS) + b"EARLY")
                eq(_read_head(conn).status, 101, "upgrade status")
                eq(_recv_exactly(conn, 5), b"EARLY", "early payload echoed through the tunnel")


# ---- CONNECT ------------------------------------------------------------------------------------

def _connect_cfg(echo_port, terminate=True):
    port = free_port()
    action = {"upgrade_configs": [{"upgrade_type": "CONNECT", "connect_config": {}}]} if terminate else None
    routes = [C.route({"connect_matcher": {}}, cluster="echo", action=action)]
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], routes)],
                                                 upgrade_configs=[{"upgrade_type": "CONNECT"}])],
                      clusters=[C.cluster("echo", [echo_port])])
    return cfg, port


def test_connect_terminated_tunnels_to_tcp():
    """CONNECT on a connect_matcher route with connect_config: Weft answers 200 and relays raw
    bytes to the cluster over a fresh TCP connection; half-close ends it."""
    with TcpEcho(trailer=b"BYE") as echo:
        cfg, port = _connect_cfg(echo.port)
        with Weft(cfg):
            with RawConn(port) as conn:
                conn.send(CONNECT_REQ)
                head = conn._read_until(b"\r\n\r\n")
                check(head.startswith(b"HTTP/1.1 200 "), "CONNECT answer: %r", head)
                check(b"content-length" not in head.lower() and b"transfer-encoding" not in head.lower(),
                      "a 2xx to CONNECT has no body framing: %r", head)
                data = os.urandom(200000)
                threading.Thread(target=conn.send, args=(data,), daemon=True).start()
                eq(_recv_exactly(conn, len(data)), data, "bytes echoed through the CONNECT tunnel")
                conn.sock.shutdown(socket.SHUT_WR)
                eq(conn.read_until_close(5), b"BYE", "the upstream's bytes after the half-close")
            st = get_stats(cfg.admin_port)
            eq(st.get("cluster.echo.upstream_cx_total"), 1, "upstream_cx_total")
            eq(st.get("http.ingress.downstream_cx_upgrades_total"), 1, "CONNECT counts as an upgrade")


def test_connect_forwarded_to_an_upstream_proxy():
    """Without connect_config the CONNECT goes to the cluster (an HTTP proxy) as it came; its
    2xx opens the tunnel, anything else is relayed and the connection closes."""
    with UpgradeServer(answer=b"HTTP/1.1 200 Connection Established\r\n\r\n", greeting=b"HI") as proxy:
        cfg, port = _connect_cfg(proxy.port, terminate=False)
        with Weft(cfg):
            with RawConn(port) as conn:
                conn.send(CONNECT_REQ + b"payload")
                head = conn._read_until(b"\r\n\r\n")
                check(head.startswith(b"HTTP/1.1 200 Connection Established\r\n"), "CONNECT answer: %r", head)
                check(b"transfer-encoding" not in head.lower(), "a 2xx to CONNECT has no body framing: %r", head)
                eq(_recv_exactly(conn, 9), b"HIpayload", "greeting and echo through the tunnel")
            line = proxy.heads[0].split("\r\n")[0]
            eq(line, "CONNECT db.internal:5432 HTTP/1.1", "request line the upstream proxy got")
            check("host: db.internal:5432" in proxy.heads[0].lower(), "head: %r", proxy.heads[0])
    deny = b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 4\r\n\r\nauth"
    with UpgradeServer(answer=deny) as proxy:
        cfg, port = _connect_cfg(proxy.port, terminate=False)
        with Weft(cfg):
            with RawConn(port) as conn:
                conn.send(CONNECT_REQ)
                r = conn.read_response()
                eq((r.status, r.body), (407, b"auth"), "refusal relayed")
                check(conn.is_closed(3), "the connection should close after a refused CONNECT")


def _connect_refused(route, hcm_upgrades, status):
    """A CONNECT through a listener with this one route gets `status`; the cluster sees nothing."""
    with TcpEcho() as echo:
        port = free_port()
        extra = {"upgrade_configs": hcm_upgrades} if hcm_upgrades else {}
        cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [route])], **extra)],
                          clusters=[C.cluster("echo", [echo.port])])
        with Weft(cfg):
            with RawConn(port) as conn:
                conn.send(CONNECT_REQ)
                eq(conn.read_response().status, status, "status of the CONNECT")
            eq(echo.connections, 0, "connections to the cluster")


def test_connect_without_connect_route_is_404():
    """A CONNECT no connect_matcher route takes gets 404 (other routes never match a CONNECT)."""
    _connect_refused(C.route(C.prefix("/"), cluster="echo"), [{"upgrade_type": "CONNECT"}], 404)


def test_connect_not_enabled_is_403():
    """A connect route, but CONNECT enabled neither on the route nor the connection manager."""
    _connect_refused(C.route({"connect_matcher": {}}, cluster="echo",
                             action={"upgrade_configs": [{"upgrade_type": "CONNECT", "enabled": False}]}),
                     None, 403)


# ---- config -------------------------------------------------------------------------------------

def _validate(doc_edit):
    with TcpEcho() as echo:
        cfg, _ = _connect_cfg(echo.port)
    doc = cfg.doc
    doc_edit(doc)
    path = tmp_path("ws-validate.yaml")
    write_file(path, C.to_yaml(doc))
    return run_weft(["validate", path])


def _hcm_of(doc):
    return doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def _upgrade_filters(doc):
    _hcm_of(doc)["upgrade_configs"] = [{"upgrade_type": "websocket", "filters": [
        {"name": "envoy.filters.http.router",
         "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}]


def _proxy_protocol(doc):
    r = _hcm_of(doc)["route_config"]["virtual_hosts"][0]["routes"][0]["route"]
    r["upgrade_configs"][0]["connect_config"] = {"proxy_protocol_config": {"version": "V1"}}


def _twice(doc):
    _hcm_of(doc)["upgrade_configs"] = [{"upgrade_type": "websocket"}, {"upgrade_type": "WebSocket"}]


def test_config_refuses_what_is_not_supported():
    """What Weft does not do is refused at load time, naming the field; a good config passes."""
    cases = [(_upgrade_filters, "filters is not supported yet"),
             (_proxy_protocol, "proxy_protocol_config"), (_twice, "configured twice")]
    for edit, needle in cases:
        p = _validate(edit)
        eq(p.returncode, 1, "exit status of validate (%s)" % edit.__name__)
        check(needle in p.stderr, "%s: expected %r in stderr: %r", edit.__name__, needle, p.stderr)
    p = _validate(lambda doc: None)
    eq(p.returncode, 0, "a valid CONNECT config validates (stderr %r)" % p.stderr)
