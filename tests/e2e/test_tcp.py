"""TCP proxying (envoy.filters.network.tcp_proxy): bytes both ways, half-close, idle timeout,
upstream failure, stats."""

import os
import socket
import threading
import time

import configs as C
from harness import (TcpEcho, TcpServer, Weft, check, closed_port, eq, free_port, recv_all, wait_for)


def _tcp_cfg(upstream_port, **tcp_extra):
    port = free_port()
    cfg = C.bootstrap(listeners=[C.tcp_listener(port, "echo", **tcp_extra)],
                      clusters=[C.cluster("echo", [upstream_port])])
    return cfg, port


def test_tcp_echo_1mib():
    with TcpEcho() as echo:
        cfg, port = _tcp_cfg(echo.port)
        data = os.urandom(1 << 20)
        with Weft(cfg):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            t = threading.Thread(target=s.sendall, args=(data,), daemon=True)
            t.start()
            got = recv_all(s, len(data), timeout=10)
            t.join(5)
            s.close()
            eq(len(got), len(data), "echoed length")
            check(got == data, "echoed bytes differ")


def test_tcp_half_close_downstream():
    """Client shuts down its write side: upstream sees EOF, and the rest of the echo (plus what
    the upstream sends after EOF) still reaches the client before the close."""
    with TcpEcho(trailer=b"BYE") as echo:
        cfg, port = _tcp_cfg(echo.port)
        data = os.urandom(256 * 1024)
        with Weft(cfg):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = recv_all(s, None, timeout=5)
            s.close()
            eq(len(got), len(data) + 3, "bytes received after half-close")
            check(got == data + b"BYE", "echo + trailer after half-close differs")
            wait_for(lambda: echo.eofs == 1, 2, what="the upstream to see EOF")


def test_tcp_half_close_upstream():
    """Upstream sends a greeting and shuts down its write side; the client still gets to send,
    and the upstream receives it."""
    received = []

    def greeter(s, srv):
        s.sendall(b"HELLO")
        s.shutdown(socket.SHUT_WR)
        buf = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            buf += b
        received.append(buf)

    with TcpServer(greeter, "greeter") as up:
        cfg, port = _tcp_cfg(up.port)
        with Weft(cfg):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            got = recv_all(s, None, timeout=5)                 # EOF after HELLO
            eq(got, b"HELLO", "greeting then EOF")
            s.sendall(b"still talking")
            s.shutdown(socket.SHUT_WR)
            wait_for(lambda: received, 3, what="the upstream to get the client's bytes after its half-close")
            s.close()
            eq(received[0], b"still talking", "bytes sent after the upstream half-closed")


def test_tcp_idle_timeout():
    with TcpEcho() as echo:
        cfg, port = _tcp_cfg(echo.port, idle_timeout="1s")
        with Weft(cfg):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"ping")
            eq(recv_all(s, 4), b"ping", "echo")
            t0 = time.monotonic()
            s.settimeout(4)
            try:
                b = s.recv(10)
            except ConnectionResetError:
                b = b""
            except socket.timeout:
                b = None
            dt = time.monotonic() - t0
            s.close()
            check(b == b"", "idle session should be closed by idle_timeout (recv gave %r)", b)
            check(0.7 <= dt <= 3.0, "closed after %.2fs with idle_timeout 1s", dt)


def test_tcp_idle_timeout_not_hit_when_active():
    with TcpEcho() as echo:
        cfg, port = _tcp_cfg(echo.port, idle_timeout="1s")
        with Weft(cfg):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            for i in range(5):                                  # 2 s of traffic, never 1 s idle
                s.sendall(b"x%d" % i)
                eq(recv_all(s, 2), b"x%d" % i, "echo %d" % i)
                time.sleep(0.4)
            s.close()


def test_tcp_upstream_refused_closes_downstream():
    cfg, port = _tcp_cfg(closed_port())
    with Weft(cfg):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        t0 = time.monotonic()
        try:
            s.sendall(b"hello")
            s.settimeout(4)
            b = s.recv(10)
        except (ConnectionResetError, BrokenPipeError):
            b = b""
        except socket.timeout:
            b = None
        s.close()
        check(b == b"", "downstream should be closed when the upstream refuses (got %r)", b)
        check(time.monotonic() - t0 < 3.5, "closed promptly")


def test_tcp_upstream_close_closes_downstream():
    def closer(s, srv):
        s.recv(100)
        s.sendall(b"bye")
    with TcpServer(closer, "closer") as up:
        cfg, port = _tcp_cfg(up.port)
        with Weft(cfg):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"hi")
            eq(recv_all(s, None, timeout=4), b"bye", "data then EOF when the upstream closes")
            s.close()


def test_tcp_many_concurrent_sessions():
    with TcpEcho() as echo:
        cfg, port = _tcp_cfg(echo.port)
        errors = []

        def session(i):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                msg = (b"session-%d;" % i) * 1000
                s.sendall(msg)
                got = recv_all(s, len(msg))
                s.close()
                if got != msg:
                    errors.append("session %d: %d bytes back" % (i, len(got)))
            except OSError as e:
                errors.append("session %d: %r" % (i, e))

        with Weft(cfg, concurrency=2):
            ts = [threading.Thread(target=session, args=(i,)) for i in range(40)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(10)
        check(not errors, "sessions failed: %s", errors[:5])
        eq(echo.connections, 40, "upstream connections")


def test_tcp_stats():
    with TcpEcho() as echo:
        cfg, port = _tcp_cfg(echo.port)
        with Weft(cfg) as w:
            for i in range(3):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"12345")
                eq(recv_all(s, 5), b"12345", "echo")
                s.close()
            wait_for(lambda: w.stat("tcp.tcp.downstream_cx_total") == 3, 3,
                     what="tcp.tcp.downstream_cx_total == 3")
            eq(w.stat("cluster.echo.upstream_cx_total"), 3, "cluster.echo.upstream_cx_total")
            eq(w.stat("listener.127.0.0.1_%d.downstream_cx_total" % port), 3, "listener downstream_cx_total")


def test_tcp_max_connections_closes_the_overflow():
    """The cluster's max_connections counts tcp_proxy sessions: one over it is closed at once
    (flag UO, upstream_cx_overflow), as in Envoy."""
    with TcpEcho() as echo:
        port = free_port()
        cfg = C.bootstrap(listeners=[C.tcp_listener(port, "echo")], clusters=[
            C.cluster("echo", [echo.port], circuit_breakers={"thresholds": [{"max_connections": 1}]})])
        with Weft(cfg, concurrency=1) as w:
            first = socket.create_connection(("127.0.0.1", port), timeout=5)
            first.sendall(b"one")
            eq(recv_all(first, 3), b"one", "the first session is relayed")
            second = socket.create_connection(("127.0.0.1", port), timeout=5)
            eq(recv_all(second, None), b"", "the second session is closed")
            eq(w.stat("cluster.echo.upstream_cx_overflow"), 1, "upstream_cx_overflow")
            first.close()
            wait_for(lambda: w.stat("cluster.echo.upstream_cx_active") == 0, what="the first upstream closed")
            third = socket.create_connection(("127.0.0.1", port), timeout=5)
            third.sendall(b"three")
            eq(recv_all(third, 5), b"three", "room again once the first has closed")
            third.close()
