"""End-to-end harness for Weft: the real binary on loopback against real peers.

Stdlib only. What is here:

  free_port()              a port on 127.0.0.1 nobody listens on (never handed out twice)
  Weft(config, ...)        runs `weft proxy -c` on a config, waits for admin /ready, stops it
                           with SIGTERM at exit and fails the test if it did not exit 0;
                           wrap= a command prefix (e.g. unshare) that execs weft
  run_weft(args)           runs the binary to completion (validate, bad configs)
  HttpUpstream(name)       HTTP/1.1 upstream in threads; records every request it receives
                           (host=/port= to listen on another loopback address)
  TcpServer / TcpEcho      raw TCP peers; Blackhole accepts and never answers
  closed_port()            a port where connect() is refused
  raw / RawConn            raw sockets with timeouts and an HTTP/1 response reader
  recv_all(sock, n)        read n bytes, or to EOF
  request / Client         http.client, one-shot or keep-alive
  curl / curl_request      the curl binary
  get_stats, admin_get     admin helpers
  wait_for(cond, timeout)  polls until cond() is truthy

Every server and process a test starts is registered, so the runner can clean up after a test
that failed or timed out half-way (cleanup()).
"""

import errno
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from http import HTTPStatus

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
WEFT_BIN = os.environ.get("WEFT_BIN", os.path.join(REPO, "build", "weft"))
LOCAL = "127.0.0.1"


class TestTimeout(Exception):
    """Raised in the test's thread by the runner's watchdog."""


# ---------------------------------------------------------------------------------------------
# bookkeeping: everything a test starts, so that a failed test leaves nothing behind

_live = []
_live_lock = threading.Lock()
_session_dir = None
weft_instances = []          # Weft objects started by the current test (the runner prints tails)


def _register(obj):
    with _live_lock:
        _live.append(obj)


def _unregister(obj):
    with _live_lock:
        if obj in _live:
            _live.remove(obj)


def cleanup():
    """Stop every server and kill every process still registered. Called between tests."""
    with _live_lock:
        objs = list(_live)
        _live.clear()
    for o in reversed(objs):
        try:
            o._force_close()
        except Exception:
            pass


def session_dir():
    global _session_dir
    if _session_dir is None:
        _session_dir = tempfile.mkdtemp(prefix="weft-e2e-")
    return _session_dir


def tmp_path(name):
    """A fresh path in a per-test-run temporary directory."""
    d = tempfile.mkdtemp(dir=session_dir())
    return os.path.join(d, name)


def remove_session_dir():
    global _session_dir
    if _session_dir:
        shutil.rmtree(_session_dir, ignore_errors=True)
        _session_dir = None


# ---------------------------------------------------------------------------------------------
# ports

_used_ports = set()
_port_rng = random.Random(os.getpid() ^ int(time.time()))


def _port_range():
    # Stay below the kernel's ephemeral range so that neither bind(0) of our own servers nor
    # outgoing connections can take a port we handed to the proxy.
    lo, hi = 20000, 30000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_lo = int(f.read().split()[0])
        if eph_lo > 12000:
            hi = min(hi, eph_lo - 1)
            lo = min(lo, hi - 2000)
    except (OSError, ValueError, IndexError):
        pass
    return lo, hi


def free_port():
    """A TCP port on 127.0.0.1 that is free now and was not handed out before in this run."""
    lo, hi = _port_range()
    for _ in range(2000):
        p = _port_rng.randint(lo, hi)
        if p in _used_ports:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((LOCAL, p))
        except OSError:
            continue
        finally:
            s.close()
        _used_ports.add(p)
        return p
    raise RuntimeError("no free port found")


def closed_port():
    """A port where nothing listens: connect() gets ECONNREFUSED."""
    return free_port()


def connect_refused(port, timeout=1.0):
    try:
        s = socket.create_connection((LOCAL, port), timeout=timeout)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    s.close()
    return False


def port_open(port, timeout=0.5):
    try:
        s = socket.create_connection((LOCAL, port), timeout=timeout)
    except OSError:
        return False
    s.close()
    return True


# ---------------------------------------------------------------------------------------------
# waiting

def wait_for(cond, timeout=5.0, interval=0.02, what=None):
    """Poll cond() until it returns something truthy; return that. Exceptions count as falsy."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = cond()
        except Exception as e:  # noqa: BLE001 - any failure is "not yet"
            v, last_exc = None, e
        if v:
            return v
        if time.monotonic() >= deadline:
            msg = "timed out after %.1fs waiting for %s" % (timeout, what or getattr(cond, "__name__", "condition"))
            if last_exc is not None:
                msg += " (last error: %r)" % (last_exc,)
            raise AssertionError(msg)
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# the proxy process

def _tail(text, n=40):
    lines = text.splitlines()
    return "\n".join(lines[-n:])


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _find_admin_port(text):
    m = re.search(r"^admin:\s*\n((?:[ \t]+.*\n?|\s*\n)*)", text, re.M)
    if m:
        p = re.search(r"port_value:\s*(\d+)", m.group(1))
        if p:
            return int(p.group(1))
    return None


class Weft:
    """`weft proxy` on a config, as a context manager.

    config: YAML text (a configs.Bootstrap carries .admin_port and .listen_ports; a plain str
    is searched for admin's port_value). On enter: writes the YAML to a temp dir, starts the
    binary, waits for GET /ready on the admin port to answer 200 (or, without admin, for the
    first listener port to accept). On exit: SIGTERM, wait, and assert exit status 0. If the
    process died during the test, the failure says so and shows the end of its stderr.
    """

    def __init__(self, config, concurrency=1, args=(), ready_timeout=15.0, drain_time=2,
                 log_level=None, wait_ready=True, expect_exit=0, env=None, wrap=()):
        self.config = str(config)
        self.concurrency = concurrency
        self.args = list(args)
        self.ready_timeout = ready_timeout
        self.drain_time = drain_time
        self.log_level = log_level or os.environ.get("WEFT_E2E_LOG_LEVEL")
        self.wait_ready = wait_ready
        self.expect_exit = expect_exit
        self.env = env
        self.wrap = list(wrap)      # a command prefix that ends by exec'ing its arguments
        self.admin_port = getattr(config, "admin_port", None) or _find_admin_port(self.config)
        self.listen_ports = list(getattr(config, "listen_ports", []) or [])
        self.dir = tempfile.mkdtemp(dir=session_dir(), prefix="weft-")
        self.config_path = os.path.join(self.dir, "weft.yaml")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.proc = None
        self.returncode = None
        self._exit_expected = False

    # -- lifecycle --

    def command(self):
        cmd = [WEFT_BIN, "proxy", "-c", self.config_path]
        if self.concurrency is not None:
            cmd += ["--concurrency", str(self.concurrency)]
        if self.drain_time is not None and "--drain-time-s" not in self.args:
            cmd += ["--drain-time-s", str(self.drain_time)]
        if self.log_level and "-l" not in self.args:
            cmd += ["-l", self.log_level]
        return self.wrap + cmd + self.args

    def start(self):
        if not os.path.exists(WEFT_BIN):
            raise AssertionError("weft binary not found at %s (set WEFT_BIN or run make)" % WEFT_BIN)
        self.write_config(self.config)
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._err, env=env, cwd=self.dir)
        _register(self)
        weft_instances.append(self)
        if self.wait_ready:
            self.wait_until_ready()
        return self

    def wait_until_ready(self, timeout=None):
        timeout = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                raise AssertionError("weft exited with status %s before it was ready\n"
                                     "command: %s\n--- stderr tail ---\n%s"
                                     % (rc, " ".join(self.command()), _tail(self.stderr())))
            if self._ready_probe():
                return
            if time.monotonic() >= deadline:
                raise AssertionError("weft not ready after %.1fs (admin port %s)\n--- stderr tail ---\n%s"
                                     % (timeout, self.admin_port, _tail(self.stderr())))
            time.sleep(0.02)

    def _ready_probe(self):
        if self.admin_port:
            try:
                r = request(self.admin_port, "/ready", timeout=1.0)
                return r.status == 200
            except OSError:
                return False
            except http.client.HTTPException:
                return False
        if self.listen_ports:
            return port_open(self.listen_ports[0])
        return True

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        died = self.proc.poll() if self.proc else None
        try:
            rc = self.stop()
        except AssertionError as stop_err:
            if exc_type is None:
                raise
            raise stop_err from exc
        if exc_type is None:
            if self.expect_exit is not None and rc != self.expect_exit:
                raise AssertionError("weft exited with status %s (expected %s)%s\n--- stderr tail ---\n%s"
                                     % (rc, self.expect_exit, _signame(rc), _tail(self.stderr())))
            return False
        if died is not None and not self._exit_expected:
            raise AssertionError("weft died during the test (status %s%s)\n--- stderr tail ---\n%s"
                                 % (died, _signame(died), _tail(self.stderr()))) from exc
        return False

    def stop(self, timeout=None):
        """SIGTERM (if still running) and wait. Returns the exit status."""
        if self.proc is None:
            return None
        if timeout is None:
            timeout = (self.drain_time or 0) + 8.0
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._close_files()
                _unregister(self)
                raise AssertionError("weft did not exit within %.1fs of SIGTERM (killed)\n--- stderr tail ---\n%s"
                                     % (timeout, _tail(self.stderr())))
        self.returncode = self.proc.returncode
        self._close_files()
        _unregister(self)
        return self.returncode

    def wait_exit(self, timeout=10.0):
        """Wait for the process to exit on its own (e.g. after /quitquitquit). Returns status."""
        self._exit_expected = True
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("weft still running %.1fs later" % timeout)
        self.returncode = self.proc.returncode
        return self.returncode

    def _close_files(self):
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            try:
                if f:
                    f.close()
            except OSError:
                pass

    def _force_close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._close_files()

    # -- control --

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def write_config(self, text):
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(text))
        os.replace(tmp, self.config_path)

    def reload(self, text):
        """Write a new config in place and send SIGHUP."""
        self.write_config(text)
        self.proc.send_signal(signal.SIGHUP)

    def stderr(self):
        return _read(self.stderr_path)

    def stdout(self):
        return _read(self.stdout_path)

    def rss_kib(self):
        return rss_kib(self.pid)

    # -- admin --

    def admin(self, path, method="GET", timeout=5.0):
        assert self.admin_port, "no admin port in this config"
        return request(self.admin_port, path, method=method, timeout=timeout)

    def admin_post(self, path, timeout=5.0):
        return self.admin(path, method="POST", timeout=timeout)

    def stats(self):
        return get_stats(self.admin_port)

    def stat(self, name, default=0):
        return self.stats().get(name, default)


def _signame(rc):
    if rc is not None and rc < 0:
        try:
            return " = killed by %s" % signal.Signals(-rc).name
        except ValueError:
            return ""
    return ""


def run_weft(args, timeout=20.0, cwd=None):
    """Run the binary to completion: returns CompletedProcess with text stdout/stderr."""
    if not os.path.exists(WEFT_BIN):
        raise AssertionError("weft binary not found at %s" % WEFT_BIN)
    return subprocess.run([WEFT_BIN] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, errors="replace", timeout=timeout, cwd=cwd)


_sanitized = None


def is_sanitized():
    """True when WEFT_BIN is an AddressSanitizer build (its allocator keeps freed memory in a
    quarantine, so RSS limits meant for the plain build do not apply)."""
    global _sanitized
    if _sanitized is None:
        try:
            with open(WEFT_BIN, "rb") as f:
                _sanitized = b"__asan_init" in f.read()
        except OSError:
            _sanitized = False
    return _sanitized


def rss_limit_kib(default_mib=32):
    """The RSS growth allowed while streaming a large body or under a flood: WEFT_E2E_RSS_MIB,
    else default_mib (six times that under ASan, whose quarantine keeps freed memory resident:
    a flood of small frames churns through many small allocations). The plain build's run
    holds the real bound."""
    mib = int(os.environ.get("WEFT_E2E_RSS_MIB", "0")) or default_mib * (6 if is_sanitized() else 1)
    return mib * 1024


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RssSampler:
    """Samples a process's VmRSS in a thread; .peak and .start in KiB."""

    def __init__(self, pid, interval=0.01):
        self.pid = pid
        self.interval = interval
        self.start = rss_kib(pid)
        self.peak = self.start
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_kib(self.pid))
            except OSError:
                return
            time.sleep(self.interval)

    def stop(self):
        self._stop.set()
        self._t.join(2)
        return self.peak - self.start


# ---------------------------------------------------------------------------------------------
# HTTP/1.1 upstream

def _lower_get(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def _split_values(values):
    out = []
    for v in values:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return out


class Request:
    """One request an upstream received. Recorded as soon as its head is parsed; the body
    fields fill in while it streams; complete turns True when the body ended."""

    def __init__(self, method, target, version, headers, conn_id, seq):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers            # [(name, value)] in wire order, names as sent
        u = urllib.parse.urlsplit(target)
        self.path = u.path if not target.startswith("/") else target.split("?", 1)[0]
        self.query = target.split("?", 1)[1] if "?" in target else ""
        self.conn_id = conn_id
        self.seq = seq                    # 1-based index of this request on its connection
        self.body = b""                   # kept up to 1 MiB; None beyond
        self.body_len = 0
        self.sha256 = None
        self.trailers = []
        self.complete = False
        self.time = time.monotonic()

    def header(self, name, default=None):
        v = _lower_get(self.headers, name)
        return default if v is None else v

    def header_all(self, name):
        """All values of a header, comma lists split (so repeated lines and joined values agree)."""
        name = name.lower()
        return _split_values([v for k, v in self.headers if k.lower() == name])

    def has(self, name):
        return _lower_get(self.headers, name) is not None

    def to_json(self):
        return {
            "method": self.method, "target": self.target, "path": self.path, "query": self.query,
            "version": self.version, "headers": [[k, v] for k, v in self.headers],
            "body": self.body.decode("latin-1") if self.body is not None else None,
            "body_len": self.body_len, "sha256": self.sha256, "conn_id": self.conn_id, "seq": self.seq,
        }

    def __repr__(self):
        return "<Request %s %s conn=%s seq=%s>" % (self.method, self.target, self.conn_id, self.seq)


BODY_KEEP = 1 << 20
PATTERN = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n"


def pattern_bytes(n):
    reps = n // len(PATTERN) + 1
    return (PATTERN * reps)[:n]


class HttpUpstream:
    """An HTTP/1.1 server in threads (one per connection), on 127.0.0.1 (or `host`, another
    loopback address) and a kernel-chosen port (or `port`).

    Records every request (self.requests) and counts connections (self.connections; requests
    carry conn_id/seq, so reuse can be asserted). Answers by path (query ignored):

      /status/N            status N
      /delay/MS            sleep MS milliseconds, then echo
      /bytes/N             N bytes of a fixed pattern (Content-Length)
      /chunked/N           N bytes, Transfer-Encoding: chunked, 4 KiB chunks
      /stream/K/MS         K chunks of "chunk i\\n", MS ms apart (chunked)
      /1xx                 a 103 Early Hints, then echo
      /close               echo with Connection: close, then close
      /response-headers    200 "ok" with each query parameter as a response header
      /sink                JSON {"len", "sha256"} of the request body
      /bad/status          invalid status line, then close
      /bad/garbage         not HTTP at all, then close
      /bad/clte            response with both Content-Length and Transfer-Encoding
      anything else        /echo: JSON of what was received (Request.to_json()) plus "upstream"

    Every response carries x-upstream: NAME, x-conn-id and x-conn-seq. A HEAD gets the same
    headers and no body. Expect: 100-continue is answered with 100 before the body is read.
    self.responses[path] = (status, headers, body) or a callable(req) returning such a tuple
    (or bytes, written raw, then the connection closes) overrides a path.
    """

    def __init__(self, name="upstream", responses=None, host=LOCAL, port=0):
        self.name = name
        self.host = host
        self.responses = dict(responses or {})
        self.requests = []
        self.connections = 0
        self.open_connections = 0
        self.lock = threading.Lock()
        self._socks = set()
        self._closed = False
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((host, port))
        self._lsock.listen(1024)
        self.port = self._lsock.getsockname()[1]
        _register(self)
        threading.Thread(target=self._accept_loop, daemon=True, name="up-%s" % name).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        self._force_close()
        _unregister(self)

    def _force_close(self):
        self._closed = True
        try:
            self._lsock.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def reset(self):
        with self.lock:
            self.requests = []

    def wait_requests(self, n, timeout=5.0, complete=False):
        def enough():
            with self.lock:
                reqs = [r for r in self.requests if r.complete or not complete]
            return len(reqs) >= n
        wait_for(enough, timeout, what="%d request(s) at upstream %s" % (n, self.name))
        return self.requests

    @property
    def last(self):
        with self.lock:
            return self.requests[-1] if self.requests else None

    def _accept_loop(self):
        while not self._closed:
            try:
                s, _ = self._lsock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.open_connections += 1
                cid = self.connections
                self._socks.add(s)
            threading.Thread(target=self._serve, args=(s, cid), daemon=True).start()

    # -- one connection --

    def _serve(self, sock, cid):
        rf = sock.makefile("rb", buffering=65536)
        seq = 0
        try:
            while True:
                line = rf.readline(1 << 17)
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    continue
                parts = line.rstrip(b"\r\n").split(b" ")
                if len(parts) != 3:
                    sock.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    return
                method, target, version = (p.decode("latin-1") for p in parts)
                headers = []
                while True:
                    h = rf.readline(1 << 17)
                    if not h:
                        return
                    if h in (b"\r\n", b"\n"):
                        break
                    name, _, value = h.decode("latin-1").rstrip("\r\n").partition(":")
                    headers.append((name, value.strip(" \t")))
                seq += 1
                req = Request(method, target, version, headers, cid, seq)
                with self.lock:
                    self.requests.append(req)
                if (req.header("expect") or "").lower() == "100-continue":
                    sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                if not self._read_body(rf, req):
                    return
                if self._respond(sock, req):
                    return
                conn = (req.header("connection") or "").lower()
                if "close" in conn or (version == "HTTP/1.0" and "keep-alive" not in conn):
                    return
        except (OSError, ValueError):
            return
        finally:
            with self.lock:
                self.open_connections -= 1
                self._socks.discard(sock)
            try:
                rf.close()
                sock.close()
            except OSError:
                pass

    def _read_body(self, rf, req):
        h = hashlib.sha256()
        keep = bytearray()

        def feed(b):
            h.update(b)
            req.body_len += len(b)
            if len(keep) + len(b) <= BODY_KEEP:
                keep.extend(b)

        te = (req.header("transfer-encoding") or "").lower()
        cl = req.header("content-length")
        if "chunked" in te:
            while True:
                sl = rf.readline(4096)
                if not sl:
                    return False
                size = int(sl.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while True:
                        t = rf.readline(1 << 17)
                        if t in (b"\r\n", b"\n", b""):
                            break
                        n, _, v = t.decode("latin-1").rstrip("\r\n").partition(":")
                        req.trailers.append((n, v.strip()))
                    break
                remaining = size
                while remaining:
                    chunk = rf.read(min(remaining, 65536))
                    if not chunk:
                        return False
                    feed(chunk)
                    remaining -= len(chunk)
                rf.readline(16)
        elif cl is not None:
            remaining = int(cl)
            while remaining:
                chunk = rf.read(min(remaining, 65536))
                if not chunk:
                    return False
                feed(chunk)
                remaining -= len(chunk)
        req.body = bytes(keep) if req.body_len <= BODY_KEEP else None
        req.sha256 = h.hexdigest()
        req.complete = True
        return True

    def _std_headers(self, req):
        return [("x-upstream", self.name), ("x-conn-id", str(req.conn_id)), ("x-conn-seq", str(req.seq))]

    def _send(self, sock, req, status, headers=(), body=b"", close=False):
        if isinstance(body, str):
            body = body.encode()
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        hs = list(self._std_headers(req)) + list(headers)
        names = {k.lower() for k, _ in hs}
        if status >= 200 and status not in (204, 304) and "content-length" not in names \
                and "transfer-encoding" not in names:
            hs.append(("content-length", str(len(body))))
        if close:
            hs.append(("connection", "close"))
        head = "HTTP/1.1 %d %s\r\n" % (status, reason) + "".join("%s: %s\r\n" % kv for kv in hs) + "\r\n"
        data = head.encode("latin-1")
        if req.method != "HEAD" and status not in (204, 304):
            data += body
        sock.sendall(data)

    def _echo_body(self, req):
        d = req.to_json()
        d["upstream"] = self.name
        return json.dumps(d).encode()

    def _respond(self, sock, req):
        """Send the response. Returns True when the connection must be closed after it."""
        path = req.path
        custom = self.responses.get(path)
        if custom is not None:
            r = custom(req) if callable(custom) else custom
            if isinstance(r, (bytes, bytearray)):
                sock.sendall(r)
                return True
            status, headers, body = r
            self._send(sock, req, status, headers, body)
            return False
        jh = [("content-type", "application/json")]
        if path.startswith("/status/"):
            code = int(path.split("/")[2])
            self._send(sock, req, code, [("content-type", "text/plain")], "status %d\n" % code)
        elif path.startswith("/delay/"):
            time.sleep(int(path.split("/")[2]) / 1000.0)
            self._send(sock, req, 200, jh, self._echo_body(req))
        elif path.startswith("/bytes/"):
            n = int(path.split("/")[2])
            self._send_big(sock, req, n)
        elif path.startswith("/chunked/"):
            n = int(path.split("/")[2])
            data = pattern_bytes(n)
            self._send_chunked(sock, req, [data[i:i + 4096] for i in range(0, n, 4096)])
        elif path.startswith("/stream/"):
            _, _, k, ms = path.split("/")
            self._send_chunked(sock, req, [b"chunk %d\n" % i for i in range(int(k))], delay=int(ms) / 1000.0)
        elif path == "/1xx":
            sock.sendall(b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n")
            self._send(sock, req, 200, jh, self._echo_body(req))
        elif path == "/close":
            self._send(sock, req, 200, jh, self._echo_body(req), close=True)
            return True
        elif path == "/response-headers":
            hs = urllib.parse.parse_qsl(req.query, keep_blank_values=True)
            self._send(sock, req, 200, [("content-type", "text/plain")] + hs, "ok")
        elif path == "/sink":
            self._send(sock, req, 200, jh, json.dumps({"len": req.body_len, "sha256": req.sha256}))
        elif path == "/bad/status":
            sock.sendall(b"HTTP/1.1 2x0 OK\r\ncontent-length: 2\r\n\r\nok")
            return True
        elif path == "/bad/garbage":
            sock.sendall(b"\x00\x01\x02 this is not http\r\n\r\n")
            return True
        elif path == "/bad/clte":
            sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n"
                         b"5\r\nhello\r\n0\r\n\r\n")
            return True
        else:
            self._send(sock, req, 200, jh, self._echo_body(req))
        return False

    def _send_big(self, sock, req, n):
        hs = list(self._std_headers(req)) + [("content-type", "application/octet-stream"),
                                              ("content-length", str(n))]
        head = "HTTP/1.1 200 OK\r\n" + "".join("%s: %s\r\n" % kv for kv in hs) + "\r\n"
        sock.sendall(head.encode())
        if req.method == "HEAD":
            return
        block = PATTERN * 1024          # a whole number of patterns: blocks join seamlessly
        sent = 0
        while sent < n:
            k = min(len(block), n - sent)
            sock.sendall(block[:k])
            sent += k

    def _send_chunked(self, sock, req, chunks, delay=0.0):
        hs = list(self._std_headers(req)) + [("content-type", "application/octet-stream"),
                                              ("transfer-encoding", "chunked")]
        head = "HTTP/1.1 200 OK\r\n" + "".join("%s: %s\r\n" % kv for kv in hs) + "\r\n"
        sock.sendall(head.encode())
        if req.method == "HEAD":
            return
        for i, c in enumerate(chunks):
            if delay and i:
                time.sleep(delay)
            sock.sendall(b"%x\r\n%s\r\n" % (len(c), c))
        sock.sendall(b"0\r\n\r\n")


# ---------------------------------------------------------------------------------------------
# raw TCP peers

def recv_all(s, n=None, timeout=5.0):
    """Read from socket s until n bytes (or EOF when n is None)."""
    s.settimeout(timeout)
    out = bytearray()
    while n is None or len(out) < n:
        b = s.recv(1 << 16)
        if not b:
            break
        out += b
    return bytes(out)


class TcpServer:
    """A TCP server in threads; handler(sock, server) serves one connection."""

    def __init__(self, handler=None, name="tcp"):
        self.name = name
        self.handler = handler or self.echo_handler
        self.connections = 0
        self.eofs = 0                     # connections whose peer half-closed (recv got EOF)
        self.bytes_in = 0
        self.lock = threading.Lock()
        self._socks = set()
        self._closed = False
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((LOCAL, 0))
        self._lsock.listen(1024)
        self.port = self._lsock.getsockname()[1]
        _register(self)
        threading.Thread(target=self._accept_loop, daemon=True, name="tcp-%s" % name).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        self._force_close()
        _unregister(self)

    _force_close = HttpUpstream._force_close

    def _accept_loop(self):
        while not self._closed:
            try:
                s, _ = self._lsock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self._socks.add(s)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        try:
            self.handler(s, self)
        except OSError:
            pass
        finally:
            with self.lock:
                self._socks.discard(s)
            try:
                s.close()
            except OSError:
                pass

    def echo_handler(self, s, _srv):
        while True:
            data = s.recv(65536)
            if not data:
                with self.lock:
                    self.eofs += 1
                self.on_eof(s)
                return
            with self.lock:
                self.bytes_in += len(data)
            s.sendall(data)

    def on_eof(self, s):
        s.shutdown(socket.SHUT_WR)


class TcpEcho(TcpServer):
    """Echoes bytes back as they come; on EOF from the peer sends `trailer` and then closes."""

    def __init__(self, trailer=b"", name="echo"):
        self.trailer = trailer
        super().__init__(None, name)

    def on_eof(self, s):
        if self.trailer:
            s.sendall(self.trailer)
        s.shutdown(socket.SHUT_WR)


class Blackhole(TcpServer):
    """Accepts, reads and discards, never answers, never closes first."""

    def __init__(self, name="blackhole"):
        super().__init__(self._sink, name)

    def _sink(self, s, _srv):
        while True:
            data = s.recv(65536)
            if not data:
                return
            with self.lock:
                self.bytes_in += len(data)


# ---------------------------------------------------------------------------------------------
# clients

class Resp:
    """A parsed HTTP response."""

    def __init__(self, status, reason, headers, body, raw=b"", version="HTTP/1.1"):
        self.status = status
        self.reason = reason
        self.headers = headers            # [(name, value)]
        self.body = body
        self.raw = raw
        self.version = version

    def header(self, name, default=None):
        v = _lower_get(self.headers, name)
        return default if v is None else v

    def header_all(self, name):
        name = name.lower()
        return _split_values([v for k, v in self.headers if k.lower() == name])

    def has(self, name):
        return _lower_get(self.headers, name) is not None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Resp %s %r %d bytes>" % (self.status, self.headers, len(self.body))


def _h_request(conn, method, path, headers, body, host):
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    hs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if host is not None and not any(k.lower() == "host" for k, _ in hs):
        conn.putheader("Host", host)
    if body is not None and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in hs):
        hs.append(("Content-Length", str(len(body))))
    for k, v in hs:
        conn.putheader(k, v)
    conn.endheaders(body)
    r = conn.getresponse()
    data = r.read()
    return Resp(r.status, r.reason, r.getheaders(), data, version="HTTP/%d.%d" % divmod(r.version, 10))


def request(port, path="/", method="GET", headers=None, body=None, host="test.local", timeout=5.0, addr=LOCAL):
    """One request on a fresh connection (http.client) to addr:port. headers: dict or [(k, v)]."""
    if isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection(addr, port, timeout=timeout)
    try:
        return _h_request(conn, method, path, headers, body, host)
    finally:
        conn.close()


class Client:
    """A keep-alive client (http.client). .connects counts TCP connections it opened."""

    def __init__(self, port, host="test.local", timeout=5.0):
        self.port = port
        self.host = host
        self.connects = 0
        self.conn = http.client.HTTPConnection(LOCAL, port, timeout=timeout)
        orig = self.conn.connect

        def counting_connect():
            self.connects += 1
            orig()
        self.conn.connect = counting_connect

    def request(self, method, path, headers=None, body=None, host=None):
        if isinstance(body, str):
            body = body.encode()
        try:
            return _h_request(self.conn, method, path, headers, body, host or self.host)
        except Exception:
            self.conn.close()
            raise

    def get(self, path, headers=None, **kw):
        return self.request("GET", path, headers, **kw)

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class RawResult(bytes):
    """Bytes read from a raw connection, plus whether the peer closed it and how long it took."""
    closed = False
    elapsed = 0.0
    reset = False

    @property
    def status(self):
        return status_of(self)

    @property
    def head(self):
        return bytes(self).split(b"\r\n\r\n", 1)[0].decode("latin-1")


def status_of(data):
    """The status code of the first response in data (None when there is none)."""
    m = re.match(rb"HTTP/1\.[01] (\d{3})", bytes(data))
    return int(m.group(1)) if m else None


def raw(port, data, timeout=3.0, shut_wr=False, chunks=None, gap=0.0):
    """Connect, send data (or each of chunks, gap seconds apart), read until the peer closes
    or timeout seconds pass without it closing. Returns RawResult (.closed, .elapsed)."""
    t0 = time.monotonic()
    s = socket.create_connection((LOCAL, port), timeout=timeout)
    out = bytearray()
    closed = reset = False
    try:
        try:
            if chunks is None:
                s.sendall(data)
            else:
                for i, c in enumerate(chunks):
                    if i and gap:
                        time.sleep(gap)
                    s.sendall(c)
            if shut_wr:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = reset = True
                break
            if not b:
                closed = True
                break
            out += b
    finally:
        s.close()
    r = RawResult(bytes(out))
    r.closed, r.reset, r.elapsed = closed, reset, time.monotonic() - t0
    return r


class RawConn:
    """A raw client connection with a buffered HTTP/1 response reader."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection((LOCAL, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = bytearray()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self, timeout=None):
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        b = self.sock.recv(65536)
        if not b:
            raise ConnectionError("peer closed the connection")
        self.buf += b

    def _read_until(self, sep):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out = bytes(self.buf[:i + len(sep)])
                del self.buf[:i + len(sep)]
                return out
            self._fill()

    def _read_n(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_response(self, method="GET", skip_1xx=True):
        """Read one response. With skip_1xx, interim 1xx responses are consumed and the
        final one returned (the interim ones are in .interim)."""
        interim = []
        while True:
            head = self._read_until(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            m = re.match(r"(HTTP/1\.[01]) (\d{3}) ?(.*)", lines[0])
            if not m:
                raise AssertionError("bad status line: %r" % lines[0])
            status = int(m.group(2))
            headers = []
            for ln in lines[1:]:
                if ln:
                    k, _, v = ln.partition(":")
                    headers.append((k, v.strip()))
            if 100 <= status < 200 and status != 101:
                interim.append(Resp(status, m.group(3), headers, b"", head, m.group(1)))
                if skip_1xx:
                    continue
                return interim[-1]
            break
        body = b""
        te = (_lower_get(headers, "transfer-encoding") or "").lower()
        cl = _lower_get(headers, "content-length")
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif "chunked" in te:
            parts = []
            while True:
                sl = self._read_until(b"\r\n")
                size = int(sl.split(b";")[0].strip(), 16)
                if size == 0:
                    while self._read_until(b"\r\n") != b"\r\n":
                        pass
                    break
                parts.append(self._read_n(size))
                self._read_n(2)
            body = b"".join(parts)
        elif cl is not None:
            body = self._read_n(int(cl))
        else:
            body = self.read_until_close()
        r = Resp(status, m.group(3), headers, body, head, m.group(1))
        r.interim = interim
        return r

    def read_until_close(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("connection not closed within timeout")
            try:
                self._fill(left)
            except ConnectionError:
                break
            except socket.timeout:
                raise AssertionError("connection not closed within timeout")
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def is_closed(self, timeout=1.0):
        """True if the peer closes (EOF or RST) within timeout with no further bytes."""
        try:
            self._fill(timeout)
        except ConnectionError:
            return True
        except socket.timeout:
            return False
        except OSError:
            return True
        return False

    def get(self, path="/", host="test.local", headers=()):
        self.send(http_req("GET", path, host, headers))
        return self.read_response()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class NodePeer:
    """A Node peer of tests/e2e/node in server mode: it prints {"port": N} first, then one JSON
    event per line, which .events collects."""

    def __init__(self, script, what):
        self.proc = subprocess.Popen(["node", script, "server"], stdout=subprocess.PIPE, text=True)
        self.events = []
        line = self.proc.stdout.readline()
        check(line, "the %s did not start", what)
        self.port = json.loads(line)["port"]
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def of(self, kind, tag=None):
        return [e for e in list(self.events) if e["event"] == kind and (tag is None or e.get("tag") == tag)]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
        return False


def http_req(method="GET", path="/", host="test.local", headers=(), body=None):
    """Bytes of a well-formed HTTP/1.1 request."""
    hs = list(headers.items()) if isinstance(headers, dict) else list(headers)
    lines = ["%s %s HTTP/1.1" % (method, path)]
    if host is not None:
        lines.append("Host: %s" % host)
    lines += ["%s: %s" % kv for kv in hs]
    if body is not None and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in hs):
        lines.append("Content-Length: %d" % len(body))
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if body is not None:
        data += body if isinstance(body, bytes) else body.encode()
    return data


# ---------------------------------------------------------------------------------------------
# curl

def curl(*args, timeout=30.0):
    """Run curl with args; CompletedProcess with bytes stdout/stderr."""
    return subprocess.run(["curl"] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout)


def curl_request(url, *args, timeout=30.0):
    """curl -sS URL ARGS...; returns (status, body bytes, stderr text)."""
    out = tmp_path("curl.out")
    p = curl("-sS", "-o", out, "-w", "%{http_code}", *args, url, timeout=timeout)
    try:
        with open(out, "rb") as f:
            body = f.read()
    except OSError:
        body = b""
    try:
        code = int(p.stdout.decode().strip() or 0)
    except ValueError:
        code = 0
    return code, body, p.stderr.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# admin

def admin_get(port, path, timeout=5.0):
    return request(port, path, timeout=timeout)


def admin_post(port, path, timeout=5.0):
    return request(port, path, method="POST", timeout=timeout)


def parse_stats(text):
    """Envoy's /stats text: "name: value" lines. Integers become int; histogram summaries stay str."""
    out = {}
    for line in text.splitlines():
        name, sep, value = line.partition(": ")
        if not sep:
            continue
        value = value.strip()
        try:
            out[name] = int(value)
        except ValueError:
            out[name] = value
    return out


def get_stats(admin_port):
    r = admin_get(admin_port, "/stats")
    assert r.status == 200, "GET /stats -> %s %r" % (r.status, r.body[:200])
    return parse_stats(r.text)


# ---------------------------------------------------------------------------------------------
# misc

def read_lines(path):
    try:
        with open(path, "rb") as f:
            return [ln for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return []


def write_file(path, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)
    return path


UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def check(cond, msg, *args):
    """assert with a formatted message (kept even under python -O)."""
    if not cond:
        raise AssertionError(msg % args if args else msg)


def eq(actual, expected, what=""):
    if actual != expected:
        raise AssertionError("%s: expected %r, got %r" % (what or "value", expected, actual))


def fmt_errno(e):
    return errno.errorcode.get(getattr(e, "errno", None), str(e))
