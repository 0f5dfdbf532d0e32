#!/usr/bin/env python3
"""RSS growth of a proxy per idle keep-alive client connection.

  idle_conns.py --port P --pid PID [--count 9000] [--window 50] [--settle 1.0]

Measures the proxy's RSS (VmRSS summed over PID and its children), then opens COUNT
connections to 127.0.0.1:P, at most WINDOW at a time in flight; on each it sends one
`GET /` and reads the whole response (must be 200), then leaves the connection open and idle.
When all are idle, waits SETTLE seconds, measures RSS again, checks that the proxy closed
none of them, and prints one line:

  IDLE count=N ok=N failed=N closed=N rss_before_kib=A rss_after_kib=B per_conn_bytes=X

Exit status 1 if more than 0.1% of the connections failed or were closed by the proxy.
"""
import argparse
import errno
import os
import re
import select
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procinfo import rss_kib  # noqa: E402

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: idle_conns\r\n\r\n"
CL_RE = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.I)


class Conn:
    __slots__ = ("sock", "buf", "sent")

    def __init__(self, sock):
        self.sock, self.buf, self.sent = sock, b"", False


def response_done(buf):
    """None: need more; True: a complete 200; False: a complete non-200 or unparseable."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end + 2]
    m = CL_RE.search(head)
    if not m:
        return False
    if len(buf) - (end + 4) < int(m.group(1)):
        return None
    return head.startswith(b"HTTP/1.1 200 ")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--count", type=int, default=9000)
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()

    before = rss_kib(a.pid)
    sel = selectors.DefaultSelector()
    idle, failed, started, active = [], 0, 0, 0
    deadline = time.monotonic() + a.timeout

    def fail(c):
        nonlocal failed, active
        sel.unregister(c.sock)
        c.sock.close()
        failed += 1
        active -= 1

    while len(idle) + failed < a.count:
        if time.monotonic() > deadline:
            sys.exit("idle_conns: timed out with %d idle, %d failed, %d in flight"
                     % (len(idle), failed, active))
        while active < a.window and started < a.count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            rc = s.connect_ex(("127.0.0.1", a.port))
            started += 1
            active += 1
            c = Conn(s)
            if rc not in (0, errno.EINPROGRESS):
                sel.register(s, selectors.EVENT_READ, c)
                fail(c)
                continue
            sel.register(s, selectors.EVENT_WRITE, c)
        for key, _ in sel.select(timeout=1.0):
            c = key.data
            if not c.sent:
                if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    fail(c)
                    continue
                try:
                    c.sock.send(REQUEST)          # tiny: goes out whole on a fresh socket
                except OSError:
                    fail(c)
                    continue
                c.sent = True
                sel.modify(c.sock, selectors.EVENT_READ, c)
                continue
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                fail(c)
                continue
            c.buf += data
            ok = response_done(c.buf)
            if ok is None:
                continue
            if not ok:
                fail(c)
                continue
            sel.unregister(c.sock)
            active -= 1
            idle.append(c.sock)

    time.sleep(a.settle)
    after = rss_kib(a.pid)

    # Did the proxy keep them all? An idle keep-alive connection must not be readable.
    p = select.poll()
    for s in idle:
        p.register(s, select.POLLIN | select.POLLRDHUP)
    closed = len(p.poll(0))
    for s in idle:
        s.close()

    per_conn = (after - before) * 1024.0 / a.count
    print("IDLE count=%d ok=%d failed=%d closed=%d rss_before_kib=%d rss_after_kib=%d "
          "per_conn_bytes=%.0f" % (a.count, len(idle), failed, closed, before, after, per_conn))
    sys.stdout.flush()
    if (failed + closed) * 1000 > a.count:
        sys.exit(1)


if __name__ == "__main__":
    main()
