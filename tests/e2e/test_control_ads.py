"""`weft control` serving xDS: a real xDS client over the wire (tests/e2e/node/ads_client.js:
@grpc/grpc-js + @grpc/proto-loader loading src/xds/proto) against `weft control
--envoy-resources FILE`. State of the world (LDS/CDS wildcard, RDS/EDS by name, ACK, NACK),
pushes after an edit of the file (only the changed type, with a new version), an invalid edit
refused (file:line:col logged, nothing pushed), delta basics, TLS (ALPN h2, a test CA), an
unknown method (UNIMPLEMENTED), and `weft proxy-status` reading /debug/syncz."""

import json
import os
import queue
import re
import subprocess
import threading
import time

from harness import (HERE, WEFT_BIN, _register, _unregister, check, eq, free_port, request, run_weft, tmp_path,
                     wait_for, write_file)
from test_tls import pki

NODE_DIR = os.path.join(HERE, "node")
CLIENT = os.path.join(NODE_DIR, "ads_client.js")

CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
RDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
UNIMPLEMENTED = 12


def _need_grpc():
    check(os.path.isdir(os.path.join(NODE_DIR, "node_modules", "@grpc", "grpc-js")),
          "the @grpc/grpc-js package is missing: run `npm ci --prefix tests/e2e/node` (tests/run.sh does)")


def resources(timeout="1s", ep_port=18080, listener_port=18000, route_prefix="/", extra_cluster=False, bad=""):
    """A resources file: cluster "backend" (EDS) and its endpoints, listener "ingress" whose HCM
    takes route configuration "routes" over RDS. `bad` is appended to the listener (a field)."""
    text = """\
resources:
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: backend
  type: EDS
  connect_timeout: %(timeout)s
  eds_cluster_config: {eds_config: {ads: {}}}
- "@type": type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
  cluster_name: backend
  endpoints:
  - lb_endpoints:
    - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %(ep)d}}}
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: ingress
  address: {socket_address: {address: 127.0.0.1, port_value: %(lp)d}}
  filter_chains:
  - filters:
    - name: envoy.filters.network.http_connection_manager
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
        stat_prefix: ingress
        rds: {route_config_name: routes, config_source: {ads: {}}}
        http_filters:
        - name: envoy.filters.http.router
          typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
%(bad)s- "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
  name: routes
  virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
    - match: {prefix: "%(prefix)s"}
      route: {cluster: backend}
""" % {"timeout": timeout, "ep": ep_port, "lp": listener_port, "prefix": route_prefix, "bad": bad}
    if extra_cluster:
        text += """\
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: extra
  type: STATIC
  connect_timeout: 1s
"""
    return text


def replace_file(path, text):
    """Write a new version the way editors and config tools do: a temporary file renamed over."""
    tmp = path + ".tmp"
    write_file(tmp, text)
    os.replace(tmp, path)


class Control:
    """`weft control` on free ports, as a context manager: waits for /ready, SIGTERM at exit
    (exit status 0 expected)."""

    def __init__(self, resources_text=None, args=(), tls=False):
        self.xds_port, self.tls_port, self.admin_port = free_port(), free_port(), free_port()
        self.dir = os.path.dirname(tmp_path("control"))
        self.res = os.path.join(self.dir, "resources.yaml")
        if resources_text is not None:
            write_file(self.res, resources_text)
        self.args = ["control", "--xds-port", str(self.xds_port), "--xds-tls-port", str(self.tls_port),
                     "--admin-port", str(self.admin_port)]
        if resources_text is not None:
            self.args += ["--envoy-resources", self.res]
        if tls:
            self.args += ["--tls-cert", pki()["srv_ec.crt"], "--tls-key", pki()["srv_ec.key"]]
        self.args += list(args)
        self.stderr_path = os.path.join(self.dir, "control.log")
        self.proc = None

    def __enter__(self):
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([WEFT_BIN] + self.args, stdin=subprocess.DEVNULL, stdout=self._err,
                                     stderr=self._err)
        _register(self)
        deadline = time.monotonic() + 10
        while True:
            check(self.proc.poll() is None, "weft control exited (%s):\n%s", self.proc.returncode, self.log())
            try:
                if request(self.admin_port, "/ready", timeout=1).status == 200:
                    break
            except OSError:
                pass
            check(time.monotonic() < deadline, "weft control not ready:\n%s", self.log())
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._err.close()
        _unregister(self)
        if exc[0] is None:
            check(rc == 0, "weft control exited with %s:\n%s", rc, self.log())
        return False

    def _force_close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def syncz(self):
        r = request(self.admin_port, "/debug/syncz")
        eq(r.status, 200, "/debug/syncz")
        return json.loads(r.body)

    def proxy_status(self):
        p = run_weft(["proxy-status", "--control", "127.0.0.1:%d" % self.admin_port])
        check(p.returncode == 0, "weft proxy-status failed (%s): %s", p.returncode, p.stderr)
        return p.stdout


class AdsClient:
    """ads_client.js against a port: .cmd() sends a command, .next() takes the next event."""

    @classmethod
    def later(cls):
        """A client started by .start(port) once the port is known."""
        return cls(None)

    def __init__(self, port, ca=None):
        self.proc = None
        if port is not None:
            self.start(port, ca)

    def start(self, port, ca=None):
        _need_grpc()
        args = ["node", CLIENT, "127.0.0.1:%d" % port] + (["--ca", ca] if ca else [])
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        eq(self.next(timeout=10)["ev"], "ready", "ads_client.js start")

    def _read(self):
        for line in self.proc.stdout:
            if line.strip():
                self.q.put(json.loads(line))

    def cmd(self, **c):
        self.proc.stdin.write(json.dumps(c) + "\n")
        self.proc.stdin.flush()

    def next(self, timeout=5.0):
        try:
            ev = self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("ads_client.js: no event within %.1fs (stderr: %s)" % (timeout, self._stderr()))
        check(ev["ev"] != "error", "ads_client.js: %s", ev.get("message"))
        return ev

    def none(self, wait=0.6):
        """Nothing more comes within `wait` seconds."""
        try:
            ev = self.q.get(timeout=wait)
        except queue.Empty:
            return
        raise AssertionError("unexpected event: %r" % (ev,))

    def _stderr(self):
        if self.proc.poll() is None:
            return "(running)"
        return self.proc.stderr.read()[-2000:]

    def request(self, sid, type_url, names=(), ack=None, nack=None, **extra):
        """A DiscoveryRequest; ack/nack: the response answered (nack: with that message)."""
        req = {"type_url": type_url, "resource_names": list(names)}
        if ack:
            req.update(response_nonce=ack["nonce"], version_info=ack["version_info"])
        if nack:
            resp, msg = nack
            req.update(response_nonce=resp["nonce"], error_detail={"code": 3, "message": msg})
        req.update(extra)
        self.cmd(op="send", id=sid, req=req)

    def response(self, sid="s", type_url=None, timeout=5.0):
        ev = self.next(timeout)
        eq(ev["ev"], "response", "event")
        eq(ev["id"], sid, "stream")
        if type_url:
            eq(ev["type_url"], type_url, "response type")
        check("decode_error" not in ev, "a resource did not decode: %s", ev.get("decode_error"))
        return ev

    def close(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def names(resp):
    return sorted(r["name"] for r in resp["resources"])


def sync_all(c, sid="s"):
    """Open a SotW stream and take the four types the way Envoy does (CDS, EDS by name, LDS,
    RDS by name), ACKing each. Returns {type_url: last response}."""
    c.cmd(op="open", id=sid)
    got = {}
    for type_url, subscribe, name, what in ((CDS, (), "backend", "CDS (wildcard)"),
                                            (EDS, ["backend"], "backend", "EDS by name"),
                                            (LDS, (), "ingress", "LDS (wildcard)"),
                                            (RDS, ["routes"], "routes", "RDS by name")):
        c.request(sid, type_url, subscribe)
        got[type_url] = c.response(sid, type_url)
        eq(names(got[type_url]), [name], what)
        c.request(sid, type_url, subscribe, ack=got[type_url])
    return got


def status_row(ctl, node_id):
    out = ctl.proxy_status()
    for line in out.splitlines():
        if line.split() and line.split()[0] == node_id:
            return line
    raise AssertionError("proxy %s not in weft proxy-status:\n%s" % (node_id, out))


NODE = "sidecar~127.0.0.1~app.default~default.svc.cluster.local"


def test_control_ads_sotw_subscribe_ack_and_status():
    """LDS/CDS wildcard, RDS/EDS by name, every response ACKed: proxy-status shows the proxy
    SYNCED for the four types; an ACK gets no response; names that do not exist are not sent."""
    with Control(resources()) as ctl, AdsClient(ctl.xds_port) as c:
        got = sync_all(c)
        c.none()
        wait_for(lambda: "SYNCED SYNCED SYNCED SYNCED" in " ".join(status_row(ctl, NODE).split()), 3,
                 what="four SYNCED in proxy-status")
        out = ctl.proxy_status()
        check(re.search(r"^NAME\s+CLUSTER\s+CDS\s+LDS\s+EDS\s+RDS", out, re.M), "proxy-status header: %s", out)
        check(" app " in status_row(ctl, NODE), "cluster column: %s", out)
        z = ctl.syncz()
        eq(len(z), 1, "syncz entries")
        eq(z[0]["LDS"]["acked"], got[LDS]["version_info"], "acked LDS version")
        # a subscription to a name that does not exist: the set sent is what exists
        c.request("s", RDS, ["routes", "missing"], ack=got[RDS])
        c.none()


def test_control_ads_edit_pushes_only_the_changed_type():
    """Editing the file (the cluster's connect_timeout only) pushes CDS alone, with a new
    version; then an endpoint change pushes EDS alone; LDS/RDS see nothing."""
    with Control(resources()) as ctl, AdsClient(ctl.xds_port) as c:
        got = sync_all(c)
        replace_file(ctl.res, resources(timeout="2s"))
        r = c.response("s", CDS)
        check(r["version_info"] != got[CDS]["version_info"], "CDS version changed")
        eq(names(r), ["backend"], "CDS after the edit")
        c.request("s", CDS, ack=r)
        c.none()
        write_file(ctl.res, resources(timeout="2s", ep_port=18081))  # in place, not renamed
        r = c.response("s", EDS)
        check(r["version_info"] != got[EDS]["version_info"], "EDS version changed")
        c.request("s", EDS, ["backend"], ack=r)
        c.none()
        # saved again unchanged: nothing
        write_file(ctl.res, resources(timeout="2s", ep_port=18081))
        c.none()
        check("push" in ctl.log(), "push logged:\n%s" % ctl.log())


def test_control_ads_nack_then_good_edit():
    """A NACK shows in proxy-status (NACK and the client's message), is not answered by sending
    the same again, and a good edit afterwards brings the type back to SYNCED."""
    with Control(resources()) as ctl, AdsClient(ctl.xds_port) as c:
        got = sync_all(c)
        replace_file(ctl.res, resources(listener_port=18001))
        bad = c.response("s", LDS)
        c.request("s", LDS, nack=(bad, "listener ingress: port 18001 is taken"), version_info=got[LDS]["version_info"])
        c.none()
        row = wait_for(lambda: "NACK" in status_row(ctl, NODE) and status_row(ctl, NODE), 3, what="NACK")
        out = ctl.proxy_status()
        check("LDS NACK: listener ingress: port 18001 is taken" in out, "NACK message in proxy-status:\n%s", out)
        eq(row.split()[2:6], ["SYNCED", "NACK", "SYNCED", "SYNCED"], "CDS LDS EDS RDS")
        check("rejected LDS" in ctl.log(), "NACK logged:\n%s", ctl.log())
        replace_file(ctl.res, resources(listener_port=18002))
        good = c.response("s", LDS)
        c.request("s", LDS, ack=good)
        wait_for(lambda: status_row(ctl, NODE).split()[3] == "SYNCED", 3, what="LDS SYNCED again")
        check("NACK" not in ctl.proxy_status(), "no NACK left")


def test_control_ads_invalid_edit_refused():
    """An invalid edit (an unknown field) is refused with file:line:col in the log, nothing is
    pushed, the last good resources keep being served (a new stream gets them); so is the
    file's deletion; a good file after that is pushed."""
    with Control(resources()) as ctl, AdsClient(ctl.xds_port) as c:
        got = sync_all(c)
        replace_file(ctl.res, resources(bad="  listner_filters: []\n"))
        wait_for(lambda: "refused" in ctl.log(), 3, what="the refusal in the log")
        log = ctl.log()
        check(re.search(re.escape(ctl.res) + r":\d+:\d+: .*listner_filters", log), "file:line:col in:\n%s", log)
        c.none(0.8)
        c.cmd(op="open", id="t")
        c.request("t", LDS)
        r = c.response("t", LDS)
        eq(r["version_info"], got[LDS]["version_info"], "the last good listeners")
        os.unlink(ctl.res)
        wait_for(lambda: "No such file" in ctl.log(), 3, what="the deletion refused")
        c.none(0.3)
        replace_file(ctl.res, resources(route_prefix="/v2"))
        r = c.response("s", RDS)
        check(r["version_info"] != got[RDS]["version_info"], "RDS version changed")


def test_control_ads_delta():
    """DeltaAggregatedResources: a wildcard CDS subscription gets every cluster with per-resource
    versions; an edit sends only the changed cluster; a removed cluster comes as
    removed_resources; EDS by name subscribes and unsubscribes."""
    with Control(resources(extra_cluster=True)) as ctl, AdsClient(ctl.xds_port) as c:
        c.cmd(op="open", id="d", delta=True)
        c.cmd(op="send", id="d", req={"type_url": CDS})
        r = c.response("d", CDS)
        eq(sorted(x["name"] for x in r["resources"]), ["backend", "extra"], "delta CDS")
        check(all(x["decoded"] == x["name"] and re.match(r"^[0-9a-f]{16}$", x["version"]) for x in r["resources"]),
              "resources carry names and content-hash versions: %r", r["resources"])
        versions = {x["name"]: x["version"] for x in r["resources"]}
        c.cmd(op="send", id="d", req={"type_url": CDS, "response_nonce": r["nonce"]})
        c.cmd(op="send", id="d", req={"type_url": EDS, "resource_names_subscribe": ["backend"]})
        r = c.response("d", EDS)
        eq([x["name"] for x in r["resources"]], ["backend"], "delta EDS")
        c.cmd(op="send", id="d", req={"type_url": EDS, "response_nonce": r["nonce"]})
        c.none()
        replace_file(ctl.res, resources(timeout="3s", extra_cluster=True))
        r = c.response("d", CDS)
        eq([x["name"] for x in r["resources"]], ["backend"], "only the changed cluster")
        check(r["resources"][0]["version"] != versions["backend"], "new version")
        eq(r["removed_resources"], [], "nothing removed")
        c.cmd(op="send", id="d", req={"type_url": CDS, "response_nonce": r["nonce"]})
        replace_file(ctl.res, resources(timeout="3s"))
        r = c.response("d", CDS)
        eq(r["resources"], [], "no cluster changed")
        eq(r["removed_resources"], ["extra"], "removed_resources")
        c.cmd(op="send", id="d", req={"type_url": EDS, "resource_names_unsubscribe": ["backend"]})
        c.none()
        z = ctl.syncz()
        eq(z[0]["api"], "delta", "syncz api")
        eq(z[0]["CDS"]["status"], "STALE", "CDS not ACKed yet")


def test_control_ads_tls_and_log():
    """With --tls-cert/--tls-key the TLS port serves ADS (ALPN h2; the client trusts the test
    CA); without them the log says the TLS port is not served."""
    with Control(resources(), tls=True) as ctl, AdsClient(ctl.tls_port, ca=pki()["ca.crt"]) as c:
        check("TLS" in ctl.log() and str(ctl.tls_port) in ctl.log(), "TLS port logged:\n%s", ctl.log())
        sync_all(c)
        wait_for(lambda: "SYNCED SYNCED SYNCED SYNCED" in " ".join(status_row(ctl, NODE).split()), 3,
                 what="SYNCED over TLS")
    with Control(resources()) as ctl:
        check(re.search(r"TLS port \d+ not served: no --tls-cert/--tls-key", ctl.log()), "log:\n%s", ctl.log())


def test_control_ads_unknown_method_and_cancel():
    """A method the server does not have gets UNIMPLEMENTED; a stream the client cancels, and
    one whose connection is lost, leave /debug/syncz; the server keeps serving the others."""
    with Control(resources()) as ctl, AdsClient(ctl.xds_port) as c:
        c.cmd(op="unary", path="/envoy.service.discovery.v3.AggregatedDiscoveryService/Nope")
        ev = c.next()
        eq(ev["ev"], "unary", "event")
        eq(ev["code"], UNIMPLEMENTED, "unknown method status")
        check("Nope" in ev["details"], "details name the method: %r", ev["details"])
        sync_all(c, "a")
        eq(len(ctl.syncz()), 1, "one stream")
        c.cmd(op="cancel", id="a")
        ev = c.next()
        eq((ev["ev"], ev["id"], ev["code"]), ("status", "a", 1), "the cancelled stream's status (CANCELLED)")
        wait_for(lambda: len(ctl.syncz()) == 0, 3, what="the cancelled stream gone from syncz")
        sync_all(c, "b")
        eq(len(ctl.syncz()), 1, "a new stream")
        with AdsClient(ctl.xds_port) as other:
            sync_all(other, "x")
            eq(len(ctl.syncz()), 2, "two streams")
            other.close()  # the process is killed: its connection is lost
            wait_for(lambda: len(ctl.syncz()) == 1, 3, what="the lost connection's stream gone")
        c.request("b", CDS, ack=None)
        c.none()  # the surviving stream is still served (no change: nothing sent)


def test_control_flags_and_bad_files():
    """--config-dir of a directory that cannot be read stops the start, naming it (and goes
    with --envoy-resources not at all); a resources file that does not decode stops the start
    with file:line:col; an unknown @type is named."""
    d = os.path.dirname(tmp_path("x"))
    p = run_weft(["control", "--config-dir", d + "/missing", "--xds-port", str(free_port()), "--admin-port",
                  str(free_port())])
    eq(p.returncode, 1, "--config-dir exit status")
    check(d + "/missing" in p.stderr, "stderr: %s", p.stderr)
    p = run_weft(["control", "--config-dir", d, "--envoy-resources", os.path.join(d, "r.yaml")])
    eq(p.returncode, 2, "--config-dir with --envoy-resources exit status")
    bad = os.path.join(d, "bad.yaml")
    write_file(bad, resources(bad="  port: 80\n"))
    p = run_weft(["control", "--envoy-resources", bad, "--xds-port", str(free_port()), "--admin-port", str(free_port())])
    eq(p.returncode, 1, "bad file exit status")
    check(re.search(re.escape(bad) + r":\d+:\d+: .*port", p.stderr), "file:line:col in: %s", p.stderr)
    write_file(bad, 'resources:\n- "@type": type.googleapis.com/envoy.config.core.v3.Address\n')
    p = run_weft(["control", "--envoy-resources", bad, "--xds-port", str(free_port()), "--admin-port", str(free_port())])
    eq(p.returncode, 1, "unknown type exit status")
    check("not served over ADS" in p.stderr and ":2:" in p.stderr, "stderr: %s", p.stderr)
    p = run_weft(["proxy-status", "--control", "127.0.0.1:%d" % free_port()])
    eq(p.returncode, 1, "proxy-status without a control plane")
    check("proxy-status" in p.stderr, "stderr: %s", p.stderr)


def test_control_doc_example():
    """The resources file of doc/control-plane.md is served as the page says: every type, to
    a client subscribing the way Envoy does."""
    from harness import REPO
    text = open(os.path.join(REPO, "doc", "control-plane.md")).read()
    m = re.search(r"```yaml\n(# fragment: an --envoy-resources file.*?)```", text, re.S)
    check(m, "the example resources file is in doc/control-plane.md")
    with AdsClient.later() as c:
        with Control(m.group(1)) as ctl:
            c.start(ctl.xds_port)
            sync_all(c)
            check("1 clusters, 1 endpoint sets, 1 listeners, 1 route configurations" in ctl.log(), "log:\n%s",
                  ctl.log())
            wait_for(lambda: "SYNCED SYNCED SYNCED SYNCED" in " ".join(status_row(ctl, NODE).split()), 3,
                     what="SYNCED")
        # the control plane stopped (SIGTERM, exit status 0) under an open stream: the client hears
        ev = c.next()
        eq((ev["ev"], ev["id"]), ("status", "s"), "the stream ended by the server's exit")
        check(ev["code"] != 0, "not OK: %r", ev)


# ---- the gRPC layer seen frame by frame (tests/e2e/h2raw.py) ----------------------------------

ADS_PATH = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _pb(field, data):
    """A length-delimited protobuf field."""
    data = data.encode() if isinstance(data, str) else data
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _grpc_msg(payload, compressed=False):
    import struct
    return bytes([1 if compressed else 0]) + struct.pack(">I", len(payload)) + payload


def _discovery_request(type_url, node_id="raw-client"):
    return _pb(2, _pb(1, node_id) + _pb(2, "raw")) + _pb(4, type_url)


def _grpc_messages(body):
    import struct
    msgs, i = [], 0
    while i + 5 <= len(body):
        n = struct.unpack(">I", bytes(body[i + 1:i + 5]))[0]
        msgs.append(bytes(body[i + 5:i + 5 + n]))
        i += 5 + n
    return msgs


def _open_call(c, path=ADS_PATH):
    return c.request("POST", path, authority="control", end_stream=False,
                     headers=[("content-type", "application/grpc"), ("te", "trailers")])


def _grpc_status(st):
    for part in (st.trailers or [], st.headers or []):
        for k, v in part:
            if k == "grpc-status":
                return int(v)
    return None


def test_control_grpc_framing_limits():
    """A message over the 4 MiB limit ends the call with RESOURCE_EXHAUSTED, a compressed one
    with UNIMPLEMENTED, a request that is not a gRPC POST gets 405; a well-formed request on
    the same connection is still answered."""
    from h2raw import H2Conn
    with Control(resources()) as ctl, H2Conn(ctl.xds_port) as c:
        import struct
        sid = _open_call(c)
        c.send_data(sid, b"\0" + struct.pack(">I", 5 << 20))
        eq(_grpc_status(c.response(sid)), 8, "over the limit: RESOURCE_EXHAUSTED")
        sid = _open_call(c)
        c.send_data(sid, _grpc_msg(b"abc", compressed=True))
        eq(_grpc_status(c.response(sid)), UNIMPLEMENTED, "compressed: UNIMPLEMENTED")
        st = c.get(ADS_PATH)
        eq(st.status, 405, "GET")
        sid = _open_call(c)
        c.send_data(sid, _grpc_msg(_discovery_request(CDS)), end_stream=True)
        st = c.response(sid)
        eq(_grpc_status(st), 0, "half-closed after one request: OK")
        msgs = _grpc_messages(st.body)
        eq(len(msgs), 1, "one response")
        check(b"backend" in msgs[0], "the cluster is in the response")


def _read_for(c, secs, until=None):
    """Read (and handle) frames for secs seconds, or until until() is true."""
    import socket
    end = time.monotonic() + secs
    while time.monotonic() < end and not (until and until()):
        try:
            if c.read_frame(min(0.2, max(0.01, end - time.monotonic()))) is None:
                return
        except socket.timeout:
            pass


def test_control_slow_client_backpressure():
    """A client that does not read (its flow-control windows stay shut) is not sent more:
    three pushes while it stalls leave one response queued, and when it reads again it gets
    the latest version once — not every intermediate one piled up in the server."""
    from h2raw import H2Conn, window_update_frame

    def big(tag):
        # about 450 KB of clusters: more than the connection window and the server's watermark
        items = "".join('- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster\n'
                        '  name: %s-%04d-%s\n  type: STATIC\n  connect_timeout: 1s\n' % (tag, i, "x" * 200)
                        for i in range(2000))
        return "resources:\n" + items

    with Control(big("edit0")) as ctl, H2Conn(ctl.xds_port, auto_window=False, keep_body=True, timeout=10) as c:
        sid = _open_call(c)
        c.send_data(sid, _grpc_msg(_discovery_request(CDS)))
        st = c.stream(sid)
        wait_for(lambda: c.read_frame(0.2) is not None and st.data_bytes >= 60000, 10,
                 what="the first window's worth of the response")
        for k in (1, 2, 3):
            replace_file(ctl.res, big("edit%d" % k))
            wait_for(lambda: ("push %d:" % k) in ctl.log(), 5, what="push %d" % k)
        c.auto_window = True
        c.send(window_update_frame(0, 1 << 30) + window_update_frame(sid, 1 << 30))
        _read_for(c, 10, lambda: len(_grpc_messages(st.body)) >= 2)
        _read_for(c, 1.0)  # anything more would come now
        msgs = _grpc_messages(st.body)
        eq(len(msgs), 2, "responses received (the first, then only the latest)")
        check(b"edit0-0000" in msgs[0] and b"edit3-0000" in msgs[1] and b"edit1" not in msgs[1],
              "the second response carries the latest content")


def test_control_push_debounce_bounded():
    """Writes every 50 ms for 2.5 s: the changes are debounced (a few pushes, not one per
    write), yet bounded — a push goes out about 1 s after the first write, while the writes
    still go on — and the last content is pushed once they stop."""
    with Control(resources()) as ctl, AdsClient(ctl.xds_port) as c:
        sync_all(c)
        t0 = time.monotonic()
        n = 0
        first = None
        while time.monotonic() - t0 < 2.5:
            n += 1
            write_file(ctl.res, resources(timeout="1.%03ds" % n))
            if first is None and not c.q.empty():
                first = time.monotonic() - t0
            time.sleep(0.05)
        stop = time.monotonic() - t0
        check(first is not None and first < 2.0, "a push within the writes (first after %r s of %.1f s):\n%s",
              first, stop, ctl.log())
        last = None
        while True:
            try:
                last = c.response("s", CDS, timeout=1.5)
            except AssertionError:
                break
        pushes = len(re.findall(r"push \d+:", ctl.log()))
        check(2 <= pushes <= 5, "%d pushes for %d writes:\n%s", pushes, n, ctl.log())
        check(last is not None, "the last content pushed")
        z = ctl.syncz()
        eq(z[0]["CDS"]["sent"], last["version_info"], "the last version sent")


def test_control_connection_without_a_call_is_closed():
    """A connection that opens no call within 10 s is closed — one that sends nothing, and one
    that completes the HTTP/2 preface and SETTINGS but no request — while a connection with an
    open ADS stream stays. (About 11 s.)"""
    import socket
    from h2raw import H2Conn
    with Control(resources()) as ctl, AdsClient(ctl.xds_port) as c:
        sync_all(c)
        silent = socket.create_connection(("127.0.0.1", ctl.xds_port))
        h2 = H2Conn(ctl.xds_port, timeout=15)
        h2.handshake()
        t0 = time.monotonic()
        silent.settimeout(15)
        while silent.recv(4096):  # the server's SETTINGS, then EOF
            pass
        took = time.monotonic() - t0
        check(8 <= took <= 13, "closed after %.1f s (10 s expected)", took)
        _read_for(h2, 3, lambda: h2.closed)
        check(h2.closed, "the connection with no request closed")
        silent.close()
        h2.close()
        eq(len(ctl.syncz()), 1, "the ADS stream is still there")
        c.request("s", CDS, ack=None)
        c.none(0.3)


def test_control_configmap_style_update():
    """The resources file mounted the way a Kubernetes ConfigMap is (FILE -> ..data/FILE,
    ..data -> a versioned directory, updated by renaming a new ..data link over it): the
    update is seen and pushed."""
    d = os.path.dirname(tmp_path("cm"))
    os.mkdir(os.path.join(d, "..v1"))
    write_file(os.path.join(d, "..v1", "resources.yaml"), resources())
    os.symlink("..v1", os.path.join(d, "..data"))
    os.symlink("..data/resources.yaml", os.path.join(d, "resources.yaml"))
    ctl = Control(None, args=["--envoy-resources", os.path.join(d, "resources.yaml")])
    with ctl, AdsClient(ctl.xds_port) as c:
        got = sync_all(c)
        os.mkdir(os.path.join(d, "..v2"))
        write_file(os.path.join(d, "..v2", "resources.yaml"), resources(timeout="7s"))
        os.symlink("..v2", os.path.join(d, "..data_tmp"))
        os.rename(os.path.join(d, "..data_tmp"), os.path.join(d, "..data"))
        r = c.response("s", CDS)
        check(r["version_info"] != got[CDS]["version_info"], "CDS pushed after the ConfigMap-style swap")
