"""Process lifecycle: SIGTERM drains (in-flight requests finish, new connections are refused,
idle keep-alives are closed, exit 0 within the drain time); workers (--concurrency)."""

import signal
import socket
import threading
import time

import configs as C
from harness import (Client, HttpUpstream, RawConn, Weft, check, connect_refused, eq, free_port, request,
                     wait_for)


def _inflight(port, path, result):
    def run():
        try:
            result["r"] = request(port, path, timeout=15)
        except Exception as e:  # noqa: BLE001
            result["e"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_sigterm_inflight_request_completes():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg, drain_time=5) as w:
            result = {}
            t = _inflight(port, "/delay/1000", result)
            up.wait_requests(1)
            t0 = time.monotonic()
            w.signal(signal.SIGTERM)
            t.join(10)
            check("r" in result, "request in flight during SIGTERM failed: %r", result.get("e"))
            eq(result["r"].status, 200, "in-flight request status")
            eq(result["r"].json()["path"], "/delay/1000", "in-flight response body")
            eq(w.wait_exit(6), 0, "exit status after SIGTERM")
            dt = time.monotonic() - t0
            check(dt <= 5.5, "exit took %.2fs, over the 5s drain time", dt)


def test_sigterm_refuses_new_connections():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg, drain_time=5) as w:
            result = {}
            t = _inflight(port, "/delay/3000", result)
            up.wait_requests(1)
            w.signal(signal.SIGTERM)
            # while the request is still in flight (3 s), however loaded the machine
            wait_for(lambda: connect_refused(port), 2.5, what="the listener to close after SIGTERM")
            t.join(10)
            check("r" in result and result["r"].status == 200, "in-flight request: %r", result)
            eq(w.wait_exit(6), 0, "exit status")


def test_sigterm_closes_idle_keepalive_promptly():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg, drain_time=10) as w:
            with RawConn(port) as c:
                eq(c.get("/").status, 200, "request")
                t0 = time.monotonic()
                w.signal(signal.SIGTERM)
                check(c.is_closed(4.0), "an idle keep-alive connection should be closed on SIGTERM")
                eq(w.wait_exit(4), 0, "exit status")
                dt = time.monotonic() - t0
                check(dt < 4, "exit took %.2fs with only an idle connection open (drain time 10s)", dt)


def test_sigterm_keepalive_gets_connection_close():
    """A request arriving on a kept-alive connection during the drain is answered with
    Connection: close (the client learns to go elsewhere) - or the connection is closed idle."""
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg, drain_time=5) as w:
            result = {}
            t = _inflight(port, "/delay/1000", result)
            up.wait_requests(1)
            with RawConn(port) as c:
                eq(c.get("/warm").status, 200, "request before SIGTERM")
                w.signal(signal.SIGTERM)
                time.sleep(0.1)
                try:
                    r = c.get("/during-drain")
                except (ConnectionError, OSError):
                    r = None
                if r is not None:
                    eq(r.status, 200, "request on a kept-alive connection during drain")
                    eq((r.header("connection") or "").lower(), "close", "Connection header during drain")
                    check(c.is_closed(2.0), "connection closed after the drain response")
            t.join(10)
            eq(w.wait_exit(6), 0, "exit status")


def test_sigterm_drain_time_bounds_exit():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg, drain_time=1) as w:
            result = {}
            t = _inflight(port, "/delay/10000", result)
            up.wait_requests(1)
            t0 = time.monotonic()
            w.signal(signal.SIGTERM)
            eq(w.wait_exit(5), 0, "exit status when the drain time runs out")
            dt = time.monotonic() - t0
            check(dt <= 3.0, "exit took %.2fs with --drain-time-s 1", dt)
            t.join(5)


def test_sigterm_idle_exits_fast():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg, drain_time=10) as w:
            eq(request(port, "/").status, 200, "request")
            t0 = time.monotonic()
            w.signal(signal.SIGTERM)
            eq(w.wait_exit(3), 0, "exit status")
            check(time.monotonic() - t0 < 2, "an idle proxy should exit at once on SIGTERM")


def test_concurrency_2_many_connections():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        errors = []
        nthreads, conns, per = 8, 5, 5

        def worker(i):
            for j in range(conns):
                try:
                    with Client(port) as cl:
                        for k in range(per):
                            r = cl.get("/c/%d/%d/%d" % (i, j, k))
                            if r.status != 200:
                                errors.append("status %d" % r.status)
                except Exception as e:  # noqa: BLE001
                    errors.append(repr(e))

        with Weft(cfg, concurrency=2) as w:
            ts = [threading.Thread(target=worker, args=(i,)) for i in range(nthreads)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(20)
            total = nthreads * conns * per
            check(not errors, "%d failures with --concurrency 2: %s", len(errors), errors[:5])
            eq(len(up.requests), total, "requests at the upstream")
            wait_for(lambda: w.stat("http.ingress.downstream_rq_total") == total, 3,
                     what="http.ingress.downstream_rq_total summed over workers == %d" % total)
            eq(w.stat("http.ingress.downstream_cx_total"), nthreads * conns, "downstream connections over workers")


def test_log_level_flag():
    with HttpUpstream("up") as up:
        cfg, port = C.simple(up.port)
        with Weft(cfg, args=["-l", "error"]) as w:
            eq(request(port, "/").status, 200, "request")
        quiet = w.stderr()
        check("info" not in quiet.lower(), "-l error should silence info messages, stderr:\n%s", quiet[-800:])
        with Weft(cfg, args=["-l", "debug"]) as w:
            eq(request(port, "/").status, 200, "request")
        check(len(w.stderr()) > len(quiet), "-l debug should log more than -l error")


def test_out_of_descriptors_pauses_then_recovers():
    """With its descriptor limit reached, the proxy pauses accepting instead of spinning on the
    queued connections, and serves them once descriptors are free again."""
    import subprocess
    from harness import WEFT_BIN, tmp_path, write_file
    port = free_port()
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
        C.route(C.prefix("/"), direct_response={"status": 200, "body": {"inline_string": "ok"}})])])])
    path = write_file(tmp_path("emfile.yaml"), cfg)
    err = open(tmp_path("emfile.err"), "w+")
    p = subprocess.Popen(["prlimit", "--nofile=40:40", WEFT_BIN, "proxy", "-c", path, "--concurrency", "1"],
                         stderr=err)
    socks = []
    try:
        wait_for(lambda: not connect_refused(port), 5, what="the listener")
        for _ in range(60):
            socks.append(socket.create_connection(("127.0.0.1", port)))
        time.sleep(0.5)
        ticks = int(open("/proc/%d/stat" % p.pid).read().rsplit(")", 1)[1].split()[11])
        time.sleep(1.0)
        spent = int(open("/proc/%d/stat" % p.pid).read().rsplit(")", 1)[1].split()[11]) - ticks
        check(spent < 30, "the proxy burnt %d ticks of CPU in 1s while out of descriptors", spent)
        for s in socks[:40]:
            s.close()
        ok = 0
        for s in socks[40:]:
            s.settimeout(3)
            s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            ok += s.recv(64).startswith(b"HTTP/1.1 200")
        eq(ok, 20, "connections served once descriptors were free")
        err.seek(0)
        check("pausing the listener" in err.read(), "the pause is logged")
    finally:
        for s in socks:
            s.close()
        p.terminate()
        p.wait(10)
