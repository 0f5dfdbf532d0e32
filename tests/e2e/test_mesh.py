"""The proof of issue 5, end to end: one `weft control --config-dir` serving Istio YAML to
THREE `weft proxy` sidecars (each its own node id, labels, INSTANCE_IPS 127.0.0.1x, and — by a
Sidecar resource with a workloadSelector — its own outbound bind 127.0.0.2x), real upstreams
(harness HttpUpstream) behind them. What clients of each sidecar see: the 80/20 split by subset
labels, header routing, fault abort and delay, retries, a timeout, a mirror, one sidecar's app
reached through another sidecar (the registered workload's inbound listener); the files edited
under wrk with no failed request; the control plane SIGKILLed (sidecars keep serving) and
restarted on the same ports (all resync, a change made meanwhile applied); an invalid file
refused (listed in /debug/configz, nothing pushed) and a config a proxy refuses (an outbound
port taken on one sidecar: NACK in proxy-status for that one only, the rest serving). Also the
README's tour (examples/mesh) as written, its ports moved to free ones."""

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time

from harness import (REPO, HttpUpstream, Weft, _unregister, check, eq, free_port, port_open, request,
                     run_weft, tmp_path, wait_for, write_file)
from test_control_ads import Control, replace_file, status_row
from test_xds_client import ISTIO_MESH, bootstrap
from configs import service_entry

SYNCED = "SYNCED SYNCED SYNCED SYNCED"


def synced(ctl, node_id):
    try:
        return SYNCED in " ".join(status_row(ctl, node_id).split())
    except AssertionError:
        return False


def configz(ctl):
    r = request(ctl.admin_port, "/debug/configz")
    eq(r.status, 200, "/debug/configz")
    return json.loads(r.body)


def fresh_dir(name):
    d = os.path.join(os.path.dirname(tmp_path(name)), "%s-%d" % (name, free_port()))
    os.makedirs(d)
    return d


# -- the README's tour ------------------------------------------------------------------------

@contextlib.contextmanager
def demo_upstream(port, name):
    """examples/upstream.py PORT NAME, as the README runs it."""
    p = subprocess.Popen([sys.executable, os.path.join(REPO, "examples", "upstream.py"), str(port), name],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: port_open(port), 5, what="examples/upstream.py on %d" % port)
        yield p
    finally:
        p.kill()
        p.wait()


def curl(*args):
    p = subprocess.run(["curl", "-s", "--max-time", "5"] + list(args), capture_output=True, text=True, timeout=10)
    eq(p.returncode, 0, "curl %s" % " ".join(args))
    return p.stdout


def test_mesh_readme_tour():
    """README "The mesh: weft control and a sidecar": examples/mesh/config and
    examples/mesh/sidecar.yaml with their ports moved (15010, 15014, 9080, 9902, 10101,
    10103), the demo upstreams (examples/upstream.py), the curl lines: 80/20 between v1 and
    v2, x-canary to v2; weft proxy-status SYNCED; /debug/configz with the objects and no error."""
    svc, v1p, v2p, admin = free_port(), free_port(), free_port(), free_port()
    with open(os.path.join(REPO, "examples", "mesh", "config", "reviews.yaml")) as f:
        mesh = f.read()
    with open(os.path.join(REPO, "examples", "mesh", "sidecar.yaml")) as f:
        sidecar = f.read()
    for old in ("9080", "10101", "10103", "15010", "9902"):
        check(old in mesh + sidecar, "the tour's files use port %s", old)
    mesh = mesh.replace("9080", str(svc)).replace("10101", str(v1p)).replace("10103", str(v2p))
    d = fresh_dir("tour")
    write_file(os.path.join(d, "reviews.yaml"), mesh)
    node_id = re.search(r"^  id: (\S+)", sidecar, re.M).group(1)
    with demo_upstream(v1p, "reviews-v1"), demo_upstream(v2p, "reviews-v2"), \
            Control(args=["--config-dir", d]) as ctl:
        side = sidecar.replace("15010", str(ctl.xds_port)).replace("9902", str(admin))
        with Weft(side):
            url = "localhost:%d/" % svc
            wait_for(lambda: '"service"' in curl("-H", "Host: reviews", url), 10, what="the sidecar's reviews listener")
            hits = {"reviews-v1": 0, "reviews-v2": 0}
            for _ in range(100):
                hits[json.loads(curl("-H", "Host: reviews", url))["service"]] += 1
            check(62 <= hits["reviews-v1"] <= 96, "80%% v1, 20%% v2: %s", hits)
            for _ in range(5):
                eq(json.loads(curl("-H", "Host: reviews", "-H", "x-canary: 1", url))["service"], "reviews-v2",
                   "x-canary: 1 goes to v2")
            wait_for(lambda: synced(ctl, node_id), 5, what="the sidecar SYNCED in weft proxy-status")
            p = run_weft(["proxy-status", "--control", "127.0.0.1:%d" % ctl.admin_port])
            check("CDS" in p.stdout and "LDS" in p.stdout, "proxy-status header: %s", p.stdout)
            cz = json.loads(curl("localhost:%d/debug/configz" % ctl.admin_port))
            eq(cz["errors"], [], "/debug/configz errors")
            eq(cz["objects"], 5, "/debug/configz objects (ServiceEntry, 2 WorkloadEntries, DestinationRule, VirtualService)")
            eq(cz["workloads"], 1, "/debug/configz workloads (the sidecar registered)")


# -- three sidecars ---------------------------------------------------------------------------

SIDECARS = [  # (app, instance ip, outbound bind)
    ("productpage", "127.0.0.11", "127.0.0.21"),
    ("reviewer", "127.0.0.12", "127.0.0.22"),
    ("details", "127.0.0.13", "127.0.0.23"),
]

def services(p):
    """reviews (v1 and v2 by WorkloadEntry, subsets by label: test_xds_client's mesh less its
    VirtualService), ratings and shadow (inline endpoints), details (the sidecars labelled
    app: details — the third one registers itself so)."""
    reviews = ISTIO_MESH.format(port=p["reviews"], v1=p["v1"], v2=p["v2"], w1=0, w2=0).split("---\n")
    check(len(reviews) == 5 and "kind: VirtualService" in reviews[4], "ISTIO_MESH's layout")
    return "---\n".join(reviews[:4] + [service_entry("ratings", p["ratings"], upstream=p["ratings_up"]),
                                        service_entry("shadow", p["shadow"], upstream=p["shadow_up"]),
                                        service_entry("details", p["details"], app="details")])


SIDECAR_RESOURCE = """\
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: {app}, namespace: default}}
spec:
  workloadSelector: {{labels: {{app: {app}}}}}
  egress:
  - bind: {bind}
    hosts: ["./*"]
"""

REVIEWS_VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews]
  http:
  - name: canary
    match: [{{headers: {{x-canary: {{exact: "1"}}}}}}]
    route: [{{destination: {{host: reviews, subset: v2}}}}]
  - name: abort
    match: [{{uri: {{prefix: /abort}}}}]
    fault: {{abort: {{httpStatus: 418, percentage: {{value: 100}}}}}}
    route: [{{destination: {{host: reviews, subset: v1}}}}]
  - name: slowed
    match: [{{uri: {{prefix: /slowed}}}}]
    fault: {{delay: {{fixedDelay: 0.4s, percentage: {{value: 100}}}}}}
    route: [{{destination: {{host: reviews, subset: v1}}}}]
  - name: flaky503
    match: [{{uri: {{prefix: /flaky503}}}}]
    retries: {{attempts: 2, retryOn: "503"}}
    route: [{{destination: {{host: reviews, subset: v1}}}}]
  - name: flaky
    match: [{{uri: {{prefix: /flaky}}}}]
    retries: {{attempts: 2, retryOn: 5xx}}
    route: [{{destination: {{host: reviews, subset: v1}}}}]
  - name: timeout
    match: [{{uri: {{prefix: /delay/}}}}]
    timeout: 0.5s
    retries: {{attempts: 0}}
    route: [{{destination: {{host: reviews, subset: v1}}}}]
  - name: mirrored
    match: [{{uri: {{prefix: /mirrored}}}}]
    route: [{{destination: {{host: reviews, subset: v1}}}}]
    mirror: {{host: shadow}}
  - name: split
    route:
    - {{destination: {{host: reviews, subset: v1}}, weight: {w1}}}
    - {{destination: {{host: reviews, subset: v2}}, weight: {w2}}}
"""


def node_of(app, ip):
    return {"id": "sidecar~%s~%s-v1.default~default.svc.cluster.local" % (ip, app), "cluster": "%s.default" % app,
            "metadata": {"NAMESPACE": "default", "WORKLOAD_NAME": "%s-v1" % app,
                         "LABELS": {"app": app, "version": "v1"}, "INSTANCE_IPS": ip, "INTERCEPTION_MODE": "NONE"}}


class Mesh:
    """The upstreams, the directory, the control plane and the three sidecars."""

    def __init__(self, stack):
        self.stack = stack
        self.proxies, self.ctl, self.logs = [], None, []
        stack.push(self._sanitizer_reports)   # runs last: every process has exited
        self.v1 = stack.enter_context(HttpUpstream(name="v1"))
        self.v2 = stack.enter_context(HttpUpstream(name="v2"))
        self.ratings = stack.enter_context(HttpUpstream(name="ratings"))
        self.shadow = stack.enter_context(HttpUpstream(name="shadow"))
        self.ports = {"reviews": free_port(), "ratings": free_port(), "shadow": free_port(), "details": free_port(),
                      "v1": self.v1.port, "v2": self.v2.port, "ratings_up": self.ratings.port,
                      "shadow_up": self.shadow.port}
        # the app behind the third sidecar: its inbound cluster is 127.0.0.1:<service port>
        self.details = stack.enter_context(HttpUpstream(name="details-app", port=self.ports["details"]))
        self.dir = fresh_dir("mesh")
        self.vs_path = os.path.join(self.dir, "reviews-vs.yaml")
        write_file(os.path.join(self.dir, "services.yaml"), services(self.ports))
        write_file(os.path.join(self.dir, "sidecars.yaml"),
                   "".join(SIDECAR_RESOURCE.format(app=a, bind=b) for a, _, b in SIDECARS))
        self.set_weights(80, 20)
        self.ctl = Control(args=["--config-dir", self.dir]).__enter__()
        self.logs.append(self.ctl.log)
        stack.push(lambda *exc: self.ctl.__exit__(*exc) if self.ctl else False)
        eq(configz(self.ctl)["errors"], [], "files refused")
        self.nodes = [node_of(a, ip)["id"] for a, ip, _ in SIDECARS]
        self.binds = [b for _, _, b in SIDECARS]
        self.proxies = [stack.enter_context(Weft(bootstrap(self.ctl.xds_port, node=node_of(a, ip))))
                        for a, ip, _ in SIDECARS]
        self.logs += [w.stderr for w in self.proxies]
        for b in self.binds:
            wait_for(lambda: self.serving(b, "/") is not None, 10, what="the outbound reviews listener on %s" % b)
        for n in self.nodes:
            wait_for(lambda: synced(self.ctl, n), 10, what="%s SYNCED" % n)

    def _sanitizer_reports(self, exc_type, *_):
        """Under ASan/UBSan, a report in any log fails the test (UBSan's do not change the exit
        status)."""
        if exc_type is None:
            for log in self.logs:
                text = log()
                check("runtime error:" not in text and "Sanitizer" not in text, "a sanitizer report:\n%s",
                      text[-3000:])
        return False

    def set_weights(self, w1, w2):
        replace_file(self.vs_path, REVIEWS_VS.format(w1=w1, w2=w2))

    def get(self, bind, path, host="reviews", headers=None, port=None, timeout=5.0):
        return request(port or self.ports["reviews"], path, host=host, headers=headers, timeout=timeout, addr=bind)

    def serving(self, bind, path="/", **kw):
        try:
            r = self.get(bind, path, timeout=2.0, **kw)
            return r.status, r.header("x-upstream")
        except OSError:
            return None

    def split(self, bind, n=100):
        hits = {"v1": 0, "v2": 0}
        for i in range(n):
            r = self.get(bind, "/split/%d" % i)
            eq(r.status, 200, "split request through %s" % bind)
            hits[r.header("x-upstream")] += 1
        return hits


@contextlib.contextmanager
def mesh():
    with contextlib.ExitStack() as stack:
        yield Mesh(stack)


def test_mesh_three_sidecars_routing():
    """Clients of each of the three sidecars: the 80/20 split by subset labels and x-canary to
    v2; on the first two: a fault abort (418, the upstream never asked), a fault delay (400 ms
    observed), a retry (the upstream fails once: the client sees 200, the upstream saw 2
    attempts), a timeout (a slow upstream: 504 after 500 ms), a mirror (the shadow upstream gets
    the copy); ratings (another service); details, served by the third sidecar's app, reached
    from the first sidecar through the third's inbound listener."""
    with mesh() as m:
        for b in m.binds:
            hits = m.split(b, 100)
            check(62 <= hits["v1"] <= 96, "80/20 split through %s: %s", b, hits)
            for _ in range(3):
                r = m.get(b, "/x", headers={"x-canary": "1"})
                eq((r.status, r.header("x-upstream")), (200, "v2"), "x-canary through %s" % b)
            r = m.get(b, "/r", host="ratings", port=m.ports["ratings"])
            eq((r.status, r.header("x-upstream")), (200, "ratings"), "ratings through %s" % b)
        for b in m.binds[:2]:
            # fault abort: answered by the sidecar, the upstream never sees it
            before = len(m.v1.requests)
            r = m.get(b, "/abort/1")
            eq(r.status, 418, "fault abort through %s" % b)
            eq([q.path for q in m.v1.requests[before:] if q.path.startswith("/abort")], [], "aborted requests upstream")
            # fault delay
            t0 = time.monotonic()
            r = m.get(b, "/slowed/1")
            took = time.monotonic() - t0
            eq((r.status, r.header("x-upstream")), (200, "v1"), "delayed request through %s" % b)
            check(took >= 0.38, "the fault delay (400 ms) observed through %s: %.3f s", b, took)
            # timeout: the upstream takes 3 s, the route gives 500 ms
            t0 = time.monotonic()
            r = m.get(b, "/delay/3000")
            took = time.monotonic() - t0
            eq(r.status, 504, "the route timeout through %s" % b)
            check(0.45 <= took < 2.5, "504 after the 500 ms timeout: %.3f s", took)
            # mirror: the shadow gets a copy, the client the primary's answer
            mpath = "/mirrored/%s" % b
            r = m.get(b, mpath)
            eq((r.status, r.header("x-upstream")), (200, "v1"), "mirrored request through %s" % b)
            copy = wait_for(lambda: [q for q in m.shadow.requests if q.path == mpath], 5,
                            what="the mirror copy at the shadow")
            eq(copy[0].header("host"), "reviews-shadow", "the mirror copy's authority")
        # details: the third sidecar registered app: details, so it is details' endpoint
        # (127.0.0.13:PORT, its inbound listener, to its app on 127.0.0.1:PORT)
        wait_for(lambda: m.serving(m.binds[0], "/d", host="details", port=m.ports["details"]) == (200, "details-app"),
                 10, what="details through the first sidecar and the third one's inbound listener")
        r = m.get(m.binds[0], "/d/1", host="details", port=m.ports["details"])
        eq(r.status, 200, "details")
        check(any(q.path == "/d/1" for q in m.details.requests), "the details app got the request")
        cfg = json.loads(m.proxies[2].admin("/config_dump").body)
        check("127.0.0.13" in json.dumps(cfg), "the third sidecar's inbound listener on its instance address")
        # retries: the upstream fails the first attempt of each path; retryOn "503", 2 attempts
        for b in m.binds[:2]:
            check_retried(m, b, "/flaky503")


def check_retried(m, bind, prefix):
    """A request to PREFIX/BIND, whose first attempt the upstream fails with 503: the client
    sees the second attempt's 200 and the upstream saw two attempts."""
    calls = {}

    def flaky(req):
        calls[req.path] = calls.get(req.path, 0) + 1
        return (503, [], "fail") if calls[req.path] == 1 else (200, [], "ok")
    path = "%s/%s" % (prefix, bind)
    m.v1.responses[path] = flaky
    r = m.get(bind, path)
    eq((r.status, r.body, calls.get(path)), (200, b"ok", 2),
       "status, body and attempts the upstream saw of a request retried through %s on %s" % (bind, prefix))


def test_mesh_retry_on_5xx():
    """retries: {attempts: 2, retryOn: 5xx} (Envoy's 5xx condition, as in examples/mesh): the
    upstream fails the first attempt with 503, the client sees 200 and the upstream saw two
    attempts, through each of the first two sidecars."""
    with mesh() as m:
        for b in m.binds[:2]:
            check_retried(m, b, "/flaky")


def wrk_run(url, host, secs, conns=4):
    p = subprocess.Popen(["wrk", "-t1", "-c%d" % conns, "-d%ds" % secs, "--timeout", "3s", "-H", "Host: %s" % host, url],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p


def wrk_result(p, secs):
    out, _ = p.communicate(timeout=secs + 15)
    eq(p.returncode, 0, "wrk exit status:\n%s" % out)
    m = re.search(r"(\d+) requests in", out)
    check(m, "wrk output: %s", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return int(m.group(1)), int(non2xx.group(1)) if non2xx else 0, sock.group(0) if sock else None, out


def test_mesh_edit_under_load():
    """wrk through the first sidecar for 4 s while the VirtualService file is rewritten five
    times (weights 80/20 -> 50/50 -> 20/80 -> 100/0 -> 60/40 -> 0/100): no non-2xx answer, no
    socket error; afterwards everything goes to v2 through every sidecar."""
    with mesh() as m:
        secs = 4
        p = wrk_run("http://%s:%d/load" % (m.binds[0], m.ports["reviews"]), "reviews", secs)
        try:
            for w1, w2 in ((50, 50), (20, 80), (100, 0), (60, 40), (0, 100)):
                time.sleep(0.5)
                m.set_weights(w1, w2)
        finally:
            n, non2xx, sock, out = wrk_result(p, secs)
        check(n >= 200, "requests under load: %s", out)
        eq(non2xx, 0, "non-2xx answers under load:\n%s" % out)
        eq(sock, None, "socket errors under load:\n%s" % out)
        for b in m.binds:
            wait_for(lambda: m.split(b, 20) == {"v1": 0, "v2": 20}, 5, what="all to v2 through %s after the edits" % b)


def same_ports_as(dead, config_dir):
    """A new Control on the ports of one that was killed."""
    c = Control(args=["--config-dir", config_dir])
    c.xds_port, c.tls_port, c.admin_port = dead.xds_port, dead.tls_port, dead.admin_port
    c.args = list(dead.args)
    return c


def kill_control(ctl):
    ctl.proc.kill()
    ctl.proc.wait()
    ctl._err.close()
    _unregister(ctl)


def test_mesh_control_plane_killed_and_restarted():
    """SIGKILL the control plane: the three sidecars keep serving (split and canary). The
    weights are changed while it is down (100% v2); started again on the same ports, every
    sidecar reconnects (SYNCED in weft proxy-status) and gets the change."""
    with mesh() as m:
        old = m.ctl
        kill_control(old)
        m.ctl = None
        check(not port_open(old.xds_port), "the control plane is down")
        t_end = time.monotonic() + 1.5
        while time.monotonic() < t_end:
            for b in m.binds:
                r = m.get(b, "/down", headers={"x-canary": "1"})
                eq((r.status, r.header("x-upstream")), (200, "v2"), "canary through %s, control plane down" % b)
                eq(m.get(b, "/down").status, 200, "split through %s, control plane down" % b)
        m.set_weights(0, 100)
        time.sleep(0.3)
        for b in m.binds:
            hits = m.split(b, 40)
            check(hits["v1"] > 0, "nothing pushed while the control plane is down (%s): %s", b, hits)
        m.ctl = ctl = same_ports_as(old, m.dir).__enter__()
        m.logs.append(ctl.log)
        for n in m.nodes:
            wait_for(lambda: synced(ctl, n), 20, what="%s SYNCED after the restart" % n)
        for b in m.binds:
            wait_for(lambda: m.split(b, 20) == {"v1": 0, "v2": 20}, 5,
                     what="the change made while down applied through %s" % b)
        eq(len(ctl.syncz()), 3, "three streams after the restart")
        eq(configz(ctl)["workloads"], 3, "the three sidecars registered again")


@contextlib.contextmanager
def held(addr, port):
    """A socket listening on addr:port, so that a proxy cannot."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(1)
    try:
        yield s
    finally:
        s.close()


def settled_versions(ctl):
    """Each proxy's versions sent, once no push has come for longer than the push debounce's
    bound (1 s): the sidecars' own registrations may still be on their way."""
    def read():
        return {s["proxy"]: {t: s[t]["sent"] for t in ("CDS", "LDS", "EDS", "RDS")} for s in ctl.syncz()}
    for _ in range(10):
        before = read()
        time.sleep(1.2)
        if read() == before:
            return before
    raise AssertionError("the control plane kept pushing for 12 s")


def test_mesh_invalid_config_and_nack():
    """(a) An invalid edit of the VirtualService (a misspelt field) is refused: listed in
    /debug/configz and logged with file:line:col, nothing pushed (versions unchanged), the split
    unchanged; the fix is applied. (b) A service whose outbound port is held by another socket on
    the second sidecar's bind address: the control plane serves it, that sidecar NACKs LDS
    (proxy-status shows NACK with the proxy's message) and keeps serving its other listeners,
    the other two sidecars take the new listener and serve it; moving the port brings SYNCED
    back everywhere."""
    with mesh() as m:
        ctl = m.ctl
        m.set_weights(100, 0)
        for b in m.binds:
            wait_for(lambda: m.split(b, 10) == {"v1": 10, "v2": 0}, 5, what="all to v1 through %s" % b)
        versions = settled_versions(ctl)
        # (a) invalid edit
        replace_file(m.vs_path, REVIEWS_VS.format(w1=0, w2=100).replace("    retries: {attempts: 2",
                                                                           "    retires: {attempts: 2"))
        wait_for(lambda: configz(ctl)["errors"], 5, what="the refused file in /debug/configz")
        errs = configz(ctl)["errors"]
        eq(len(errs), 1, "errors in /debug/configz")
        check(re.search(r"reviews-vs\.yaml:\d+:\d+: .*retires", errs[0]), "the error names file:line:col: %s", errs)
        check("retires" in ctl.log(), "the refusal is logged:\n%s", ctl.log()[-2000:])
        time.sleep(0.5)
        eq({s["proxy"]: {t: s[t]["sent"] for t in ("CDS", "LDS", "EDS", "RDS")} for s in ctl.syncz()}, versions,
           "nothing pushed after the invalid edit")
        for b in m.binds:
            eq(m.split(b, 10), {"v1": 10, "v2": 0}, "the last valid split through %s" % b)
        m.set_weights(0, 100)
        wait_for(lambda: configz(ctl)["errors"] == [], 5, what="the fixed file leaves /debug/configz")
        for b in m.binds:
            wait_for(lambda: m.split(b, 10) == {"v1": 0, "v2": 10}, 5, what="the fix applied through %s" % b)

        # (b) the NACK path: a port taken on the second sidecar's bind address
        taken = free_port()
        with held(m.binds[1], taken), HttpUpstream(name="extra") as extra:
            extra_path = os.path.join(m.dir, "extra.yaml")
            replace_file(extra_path, service_entry("extra", taken, upstream=extra.port))
            for i in (0, 2):
                wait_for(lambda: m.serving(m.binds[i], "/e", host="extra", port=taken) == (200, "extra"), 10,
                         what="the new service through %s" % m.binds[i])
            wait_for(lambda: "NACK" in status_row(ctl, m.nodes[1]), 10, what="the second sidecar's NACK")
            row = ctl.proxy_status()
            check(re.search(r"[CLER]DS NACK: .*cannot listen on %s:%d" % (m.binds[1], taken), row),
                  "the proxy's message in proxy-status:\n%s", row)
            for i in (0, 2):
                check(synced(ctl, m.nodes[i]), "the other sidecars SYNCED:\n%s", row)
            eq(configz(ctl)["errors"], [], "the control plane accepted the file")
            check(str(taken) in m.proxies[1].stderr(), "the proxy logged its refusal:\n%s",
                  m.proxies[1].stderr()[-1500:])
            for b in m.binds:
                eq(m.split(b, 10), {"v1": 0, "v2": 10}, "reviews through %s during the NACK" % b)
            # a change of reviews' routes while the second sidecar NACKs: the other two apply it
            m.set_weights(100, 0)
            for b in (m.binds[0], m.binds[2]):
                wait_for(lambda: m.split(b, 10) == {"v1": 10, "v2": 0}, 5, what="the new split through %s" % b)
            # the fix: another port
            moved = free_port()
            replace_file(extra_path, service_entry("extra", moved, upstream=extra.port))
            for n in m.nodes:
                wait_for(lambda: synced(ctl, n), 10, what="%s SYNCED after the fix" % n)
            for b in m.binds:
                wait_for(lambda: m.serving(b, "/e", host="extra", port=moved) == (200, "extra"), 10,
                         what="the moved service through %s" % b)
                eq(m.split(b, 10), {"v1": 10, "v2": 0}, "the split changed during the NACK, through %s after the fix" % b)


def test_mesh_nack_does_not_block_other_routes():
    """While the second sidecar refuses the listener of a new service (its port taken on that
    sidecar's bind address), a change of another service's routes (reviews' weights) still
    reaches it, as it reaches the other two: a refused listener is that listener's problem, not
    every route configuration's. (Envoy refuses such a listener in LDS and keeps taking RDS.)"""
    with mesh() as m:
        taken = free_port()
        with held(m.binds[1], taken), HttpUpstream(name="extra") as extra:
            replace_file(os.path.join(m.dir, "extra.yaml"), service_entry("extra", taken, upstream=extra.port))
            wait_for(lambda: "NACK" in status_row(m.ctl, m.nodes[1]), 10, what="the second sidecar's NACK")
            m.set_weights(0, 100)
            for b in (m.binds[0], m.binds[2], m.binds[1]):
                wait_for(lambda: m.split(b, 10) == {"v1": 0, "v2": 10}, 5,
                         what="reviews' new split through %s while the second sidecar NACKs the extra listener" % b)
