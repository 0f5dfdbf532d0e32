"""The translator end to end (issue 5): Istio YAML (ServiceEntry, WorkloadEntry, VirtualService,
DestinationRule) and a sidecar's Node go through `weft translate --bootstrap`; `weft proxy` runs
the result in front of real upstreams, and clients see what Istio promises: the 80/20 split
between subsets chosen by labels, header routing, fault aborts, retries, mirroring, the
inbound listener to the app, a TCP port."""

import json
import re
import socket

from configs import service_entry
from harness import (LOCAL, HttpUpstream, TcpEcho, Weft, check, eq, free_port, recv_all, request, run_weft,
                     tmp_path, wait_for, write_file)

MESH = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports:
  - {{number: {port}, name: http, protocol: HTTP}}
  resolution: STATIC
  workloadSelector:
    labels: {{app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: reviews-v1, namespace: default}}
spec: {{address: 127.0.0.1, ports: {{http: {v1}}}, labels: {{app: reviews, version: v1}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: reviews-v2, namespace: default}}
spec: {{address: 127.0.0.1, ports: {{http: {v2}}}, labels: {{app: reviews, version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: reviews-v3, namespace: default}}
spec: {{address: 127.0.0.1, ports: {{http: {v3}}}, labels: {{app: reviews, version: v3}}}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: db, namespace: default}}
spec:
  hosts: [db.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports:
  - {{number: {tcp}, name: tcp, protocol: TCP, targetPort: {echo}}}
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: client, namespace: default}}
spec:
  hosts: [client.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports:
  - {{number: {inbound}, name: http, protocol: HTTP, targetPort: {app}}}
  resolution: STATIC
  workloadSelector:
    labels: {{app: client}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: default}}
spec:
  host: reviews
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
  - {{name: v3, labels: {{version: v3}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews]
  http:
  - name: jason
    match:
    - headers:
        end-user: {{exact: jason}}
    route:
    - destination: {{host: reviews, subset: v2}}
  - name: broken
    match:
    - uri: {{prefix: /broken}}
    fault:
      abort: {{httpStatus: 418, percentage: {{value: 100}}}}
    route:
    - destination: {{host: reviews, subset: v1}}
  - name: flaky
    match:
    - uri: {{prefix: /flaky}}
    retries: {{attempts: 2, retryOn: "503"}}
    route:
    - destination: {{host: reviews, subset: v3}}
  - name: split
    route:
    - destination: {{host: reviews, subset: v1}}
      weight: 80
    - destination: {{host: reviews, subset: v3}}
      weight: 20
    mirror: {{host: reviews, subset: v2}}
"""

NODE = """\
id: sidecar~127.0.0.1~client-1.default~default.svc.cluster.local
metadata:
  NAMESPACE: default
  LABELS: {app: client}
  INSTANCE_IPS: 127.0.0.1
  INTERCEPTION_MODE: NONE
"""


def _translate(ports, admin):
    mesh = write_file(tmp_path("mesh.yaml"), MESH.format(**ports))
    node = write_file(tmp_path("node.yaml"), NODE)
    p = run_weft(["translate", "-f", mesh, "--node", node, "--bootstrap", "--admin-port", str(admin)])
    eq(p.returncode, 0, "weft translate exit status (stderr: %s)" % p.stderr)
    return p.stdout


def test_istio_config_runs_in_the_proxy():
    calls = []

    def flaky(req):
        calls.append(req)
        return (503, [], b"try again") if len(calls) == 1 else (200, [], b"ok")

    with HttpUpstream("v1") as v1, HttpUpstream("v2") as v2, HttpUpstream("v3", responses={"/flaky": flaky}) as v3, \
            TcpEcho() as echo, HttpUpstream("app") as app:
        ports = {"port": free_port(), "tcp": free_port(), "inbound": free_port(), "v1": v1.port, "v2": v2.port,
                 "v3": v3.port, "echo": echo.port, "app": app.port}
        admin = free_port()
        boot = _translate(ports, admin)
        names = [l["name"] for l in json.loads(boot)["static_resources"]["listeners"]]
        # the client's own service binds the instance address; outbound ports bind 127.0.0.1 —
        # both 127.0.0.1 here, so the outbound listener of the inbound port is left out
        check("127.0.0.1_%d" % ports["port"] in names, "outbound listener in %s", names)
        check("127.0.0.1_%d" % ports["inbound"] in names, "inbound listener in %s", names)
        w = Weft(boot)
        w.admin_port = admin  # JSON: the harness finds admin ports in YAML only
        with w:
            port = ports["port"]
            # header routing: jason always reaches v2
            for _ in range(5):
                r = request(port, "/reviews/1", headers={"end-user": "jason"}, host="reviews")
                eq((r.status, r.header("x-upstream")), (200, "v2"), "jason's request")
            n2 = len(v2.requests)
            # the 80/20 split between v1 and v3 (and every request mirrored to v2)
            hits = {"v1": 0, "v3": 0}
            for i in range(200):
                r = request(port, "/reviews/%d" % i, host="reviews.default.svc.cluster.local:%d" % port)
                eq(r.status, 200, "split request")
                hits[r.header("x-upstream")] += 1
            check(130 <= hits["v1"] <= 190, "80/20 split: %s", hits)
            eq(hits["v1"] + hits["v3"], 200, "every request went to v1 or v3")
            wait_for(lambda: len(v2.requests) - n2 >= 200, 5, what="200 mirrored requests at v2")
            # the fault aborts without reaching anyone
            before = len(v1.requests)
            r = request(port, "/broken", host="reviews")
            eq(r.status, 418, "fault abort")
            eq(len(v1.requests), before, "the abort reached no upstream")
            # retryOn "503": the second attempt answers
            r = request(port, "/flaky", host="reviews")
            eq((r.status, r.body, len(calls)), (200, b"ok", 2), "retried on 503")
            # an unknown host: no virtual host
            r = request(port, "/", host="nobody.example")
            eq(r.status, 404, "unknown host")
            # the inbound listener forwards to the app (inbound|PORT|| -> 127.0.0.1:targetPort)
            r = request(ports["inbound"], "/hello", host="client")
            eq((r.status, r.header("x-upstream")), (200, "app"), "inbound to the app")
            # the TCP port: tcp_proxy to the db's endpoint
            s = socket.create_connection((LOCAL, ports["tcp"]), timeout=5)
            s.sendall(b"ping")
            eq(recv_all(s, 4), b"ping", "echo through the TCP listener")
            s.close()


def test_translate_refuses_what_it_cannot_translate():
    mesh = write_file(tmp_path("mesh.yaml"), """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: a, namespace: default}
spec:
  hosts: [a.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a, namespace: default}
spec:
  host: a
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
""")
    node = write_file(tmp_path("node.yaml"), NODE)
    p = run_weft(["translate", "-f", mesh, "--node", node])
    eq(p.returncode, 1, "exit status")
    check("DestinationRule default/a" in p.stderr and "ISTIO_MUTUAL" in p.stderr, "error names the rule: %s", p.stderr)
    check("mesh.yaml:17:11: " in p.stderr, "error says where: %s", p.stderr)
    # a file that is not there, a Node that does not decode
    p = run_weft(["translate", "-f", mesh + ".missing", "--node", node])
    check(p.returncode == 1 and "mesh.yaml.missing: cannot read it" in p.stderr, "missing file: %s", p.stderr)
    bad = write_file(tmp_path("bad-node.yaml"), "id: x\nmetdata: {}\n")
    ok = write_file(tmp_path("ok.yaml"), "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
                    "metadata: {name: a}\nspec: {hosts: [a.example.com], ports: [{number: 80, name: http, protocol: HTTP}]}\n")
    p = run_weft(["translate", "-f", ok, "--node", bad])
    check(p.returncode == 1 and "bad-node.yaml:2:1: unknown field 'metdata'" in p.stderr, "bad node: %s", p.stderr)


def test_the_documented_example_gives_what_the_page_says():
    import os
    import re
    from harness import REPO
    text = open(os.path.join(REPO, "doc", "istio-translation.md")).read()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    mesh = write_file(tmp_path("mesh.yaml"), blocks[0])
    node = write_file(tmp_path("node.yaml"), blocks[1])
    p = run_weft(["translate", "-f", mesh, "--node", node])
    eq(p.returncode, 0, "weft translate exit status (stderr: %s)" % p.stderr)
    res = json.loads(p.stdout)["resources"]
    by = {(r["@type"].rsplit(".", 1)[1], r.get("name") or r.get("cluster_name")): r for r in res}
    host = "reviews.default.svc.cluster.local"
    for sub in ("", "v1", "v2"):
        c = by[("Cluster", "outbound|9080|%s|%s" % (sub, host))]
        eq((c["type"], c["connect_timeout"]), ("EDS", "1s"), "cluster " + sub)
        eq(c["circuit_breakers"]["thresholds"][0]["max_connections"], 100, "max connections " + sub)

    def addrs(sub):
        cla = by[("ClusterLoadAssignment", "outbound|9080|%s|%s" % (sub, host))]
        return sorted(e["endpoint"]["address"]["socket_address"]["address"]
                      for l in cla["endpoints"] for e in l["lb_endpoints"])
    eq(addrs("v1"), ["10.0.0.11"], "v1 endpoints")
    eq(addrs("v2"), ["10.0.0.12"], "v2 endpoints")
    eq(addrs(""), ["10.0.0.11", "10.0.0.12"], "service endpoints")
    l = by[("Listener", "127.0.0.1_9080")]
    hcm = l["filter_chains"][0]["filters"][0]["typed_config"]
    eq(hcm["rds"]["route_config_name"], "9080", "rds name")
    rc = by[("RouteConfiguration", "9080")]
    vh = [v for v in rc["virtual_hosts"] if v["name"] == host + ":9080"][0]
    eq(vh["routes"][0]["route"]["cluster"], "outbound|9080|v2|" + host, "header route")
    eq([(c["name"], c["weight"]) for c in vh["routes"][1]["route"]["weighted_clusters"]["clusters"]],
       [("outbound|9080|v1|" + host, 80), ("outbound|9080|v2|" + host, 20)], "weighted route")


GATEWAY = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports:
  - {{number: 9080, name: http, protocol: HTTP, targetPort: {reviews}}}
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1, labels: {{version: v1}}}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: productpage, namespace: default}}
spec:
  hosts: [productpage.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports:
  - {{number: 9080, name: http, protocol: HTTP, targetPort: {productpage}}}
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: bookinfo-gateway, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {http}, name: http, protocol: HTTP}}
    bind: 127.0.0.1
    hosts: ["bookinfo.example.com"]
  - port: {{number: {http}, name: http-legacy, protocol: HTTP}}
    bind: 127.0.0.1
    hosts: ["legacy.example.com"]
    tls: {{httpsRedirect: true}}
  - port: {{number: {https}, name: https, protocol: HTTPS}}
    bind: 127.0.0.1
    hosts: ["secure.example.com"]
    tls: {{mode: SIMPLE, serverCertificate: {crt}, privateKey: {key}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: bookinfo, namespace: default}}
spec:
  hosts: [bookinfo.example.com, secure.example.com, legacy.example.com]
  gateways: [bookinfo-gateway]
  http:
  - match:
    - uri: {{prefix: /reviews}}
    route:
    - destination: {{host: reviews}}
  - route:
    - destination: {{host: productpage}}
"""


def ingress_gateway(mesh_yaml):
    """A Weft proxy with the bootstrap `weft translate` gives a router (labels istio:
    ingressgateway) for this Istio YAML."""
    mesh = write_file(tmp_path("mesh.yaml"), mesh_yaml)
    node = write_file(tmp_path("node.yaml"), "id: router~127.0.0.1~ingress-1.default~default.svc.cluster.local\n"
                                              "metadata: {NAMESPACE: default, LABELS: {istio: ingressgateway}}\n")
    admin = free_port()
    p = run_weft(["translate", "-f", mesh, "--node", node, "--bootstrap", "--admin-port", str(admin)])
    eq(p.returncode, 0, "weft translate exit status (stderr: %s)" % p.stderr)
    w = Weft(p.stdout)
    w.admin_port = admin
    return w


def test_ingress_gateway_from_istio_config():
    import os
    from harness import REPO, curl_request
    tls = os.path.join(REPO, "examples", "tls")
    with HttpUpstream("reviews") as reviews, HttpUpstream("productpage") as pp:
        ports = {"reviews": reviews.port, "productpage": pp.port, "http": free_port(), "https": free_port(),
                 "crt": os.path.join(tls, "server.crt"), "key": os.path.join(tls, "server.key")}
        with ingress_gateway(GATEWAY.format(**ports)):
            r = request(ports["http"], "/reviews/1", host="bookinfo.example.com")
            eq((r.status, r.header("x-upstream")), (200, "reviews"), "prefix route")
            r = request(ports["http"], "/", host="bookinfo.example.com")
            eq((r.status, r.header("x-upstream")), (200, "productpage"), "default route")
            r = request(ports["http"], "/a?b=1", host="legacy.example.com")
            eq((r.status, r.header("location")), (301, "https://legacy.example.com/a?b=1"), "httpsRedirect")
            r = request(ports["http"], "/", host="other.example.com")
            eq(r.status, 404, "a host no server admits")
            code, body, err = curl_request("https://secure.example.com:%d/reviews/2" % ports["https"],
                                           "--cacert", os.path.join(tls, "ca.crt"),
                                           "--resolve", "secure.example.com:%d:127.0.0.1" % ports["https"])
            eq(code, 200, "HTTPS through the gateway (%s)" % err)
            eq(json.loads(body)["upstream"], "reviews", "HTTPS routed by the VirtualService")


GRPC_MESH = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [echo.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports:
  - {{number: 7070, name: grpc, protocol: GRPC}}
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1, ports: {{grpc: {v1}}}, labels: {{version: v1}}, locality: local}}
  - {{address: 127.0.0.1, ports: {{grpc: {v2}}}, labels: {{version: v2}}, locality: local}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: default}}
spec:
  host: echo
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [echo]
  http:
  - match:
    - headers:
        x-version: {{exact: v2}}
    route:
    - destination: {{host: echo, subset: v2}}
  - route:
    - destination: {{host: echo, subset: v1}}
      weight: 80
    - destination: {{host: echo, subset: v2}}
      weight: 20
"""


def test_proxyless_grpc_client_takes_the_translation():
    """A gRPC client with an xDS resolver (@grpc/grpc-js-xds) accepts what the translator gives
    a proxyless client — served by `weft control --envoy-resources` from `weft translate`'s
    output — and routes by it: 80/20 between the subsets, the header match to v2."""
    import test_xds_proxyless as X
    from test_control_ads import Control
    from test_grpc import GrpcServer
    X._need_xds()
    with GrpcServer() as v1, GrpcServer() as v2:
        mesh = write_file(tmp_path("mesh.yaml"), GRPC_MESH.format(v1=v1.port, v2=v2.port))
        node = write_file(tmp_path("node.yaml"), "id: proxyless~127.0.0.1~client.default~default.svc.cluster.local\n")
        p = run_weft(["translate", "-f", mesh, "--node", node])
        eq(p.returncode, 0, "weft translate exit status (stderr: %s)" % p.stderr)
        with Control(p.stdout) as ctl:
            boot = X.bootstrap(ctl)
            res = X.calls(boot, 200)
            check(res["codes"] == {"0": 200}, "every call succeeds: %r", res)
            X.calls_seen((v1, v2), 200)
            n1, n2 = len(v1.of("call")), len(v2.of("call"))
            check(n1 + n2 == 200 and 15 <= n2 <= 70 and n1 > n2, "80/20 split: v1 %d, v2 %d", n1, n2)
            res = X.calls(boot, 20, {"x-version": "v2"})
            check(res["codes"] == {"0": 20}, "header-matched calls succeed: %r", res)
            wait_for(lambda: len(v2.of("call")) == n2 + 20, what="the 20 header-matched calls at v2")
            eq(len(v1.of("call")), n1, "header-matched calls at v1")
            check(" rejected " not in ctl.log(), "the client NACKed:\n%s", ctl.log())


def test_control_serves_istio_config_dir_to_a_grpc_client():
    """`weft control --config-dir DIR`: the Istio files of DIR, translated per client and served
    over ADS; an edit of a VirtualService reaches the client (pushed, no restart)."""
    import os
    import test_xds_proxyless as X
    from test_control_ads import Control
    from test_grpc import GrpcServer
    X._need_xds()
    with GrpcServer() as v1, GrpcServer() as v2:
        d = os.path.dirname(tmp_path("mesh.yaml"))
        path = write_file(os.path.join(d, "mesh.yaml"), GRPC_MESH.format(v1=v1.port, v2=v2.port))
        with Control(None, args=["--config-dir", d]) as ctl:
            boot = X.bootstrap(ctl)
            res = X.calls(boot, 100)
            check(res["codes"] == {"0": 100}, "every call succeeds: %r", res)
            X.calls_seen((v1, v2), 100)
            n1, n2 = len(v1.of("call")), len(v2.of("call"))
            check(n1 + n2 == 100 and n1 > n2 > 0, "80/20 split: v1 %d, v2 %d", n1, n2)
            # everything to v1 now
            text = GRPC_MESH.format(v1=v1.port, v2=v2.port).replace("weight: 80", "weight: 100").replace(
                "    - destination: {host: echo, subset: v2}\n      weight: 20\n", "")
            write_file(path + ".tmp", text)
            os.rename(path + ".tmp", path)
            wait_for(lambda: "push " in ctl.log().split("config-dir: serving", 1)[-1], 5, what="a push after the edit")
            res = X.calls(boot, 40)
            check(res["codes"] == {"0": 40}, "calls after the edit succeed: %r", res)
            X.calls_seen((v1, v2), n1 + n2 + 40)
            eq(len(v2.of("call")), n2, "calls at v2 after the edit")
            check(" rejected " not in ctl.log(), "the client NACKed:\n%s", ctl.log())


def test_control_config_dir_refuses_an_invalid_edit():
    """An edit that does not load (a typo, or what Weft cannot serve) is refused: logged with
    file:line:col, listed by GET /debug/configz, and the file's last valid objects keep serving
    (calls still split 80/20); the file fixed, the error goes and the fix is pushed."""
    import os
    import test_xds_proxyless as X
    from test_control_ads import Control
    from test_grpc import GrpcServer
    X._need_xds()

    def configz(ctl):
        r = request(ctl.admin_port, "/debug/configz")
        eq(r.status, 200, "/debug/configz")
        return json.loads(r.body)

    with GrpcServer() as v1, GrpcServer() as v2:
        d = os.path.dirname(tmp_path("mesh.yaml"))
        path = write_file(os.path.join(d, "mesh.yaml"), GRPC_MESH.format(v1=v1.port, v2=v2.port))
        with Control(None, args=["--config-dir", d]) as ctl:
            eq(configz(ctl), {"objects": 3, "workloads": 0, "errors": []}, "configz of a clean directory")
            good = GRPC_MESH.format(v1=v1.port, v2=v2.port)
            for bad, want in ((good.replace("      weight: 20\n", "      weight: 20\n      tiemout: 1s\n"),
                               r"mesh\.yaml:\d+:\d+: spec\.http\[1\]\.route\[1\]: unknown or unsupported field 'tiemout'"),
                              (good.replace("  host: echo\n", "  host: echo\n  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n"),
                               r"mesh\.yaml:\d+:\d+: DestinationRule default/echo: trafficPolicy\.tls\.mode ISTIO_MUTUAL")):
                write_file(path, bad)
                z = wait_for(lambda: [e for e in configz(ctl)["errors"] if re.search(want, e)] or None, 5,
                             what="the refusal in /debug/configz")
                eq(len(configz(ctl)["errors"]), 1, "errors listed")
                check(re.search(want, ctl.log()), "the refusal is logged:\n%s", ctl.log())
                n1, n2 = len(v1.of("call")), len(v2.of("call"))
                res = X.calls(X.bootstrap(ctl), 60)
                check(res["codes"] == {"0": 60}, "calls succeed while the edit is refused: %r", res)
                X.calls_seen((v1, v2), n1 + n2 + 60)
                m1, m2 = len(v1.of("call")) - n1, len(v2.of("call")) - n2
                check(m1 + m2 == 60 and m1 > m2 > 0, "still 80/20 while refused: v1 %d, v2 %d", m1, m2)
            # fixed: everything to v2 now
            write_file(path, good.replace("weight: 80", "weight: 0").replace("weight: 20", "weight: 100"))
            wait_for(lambda: not configz(ctl)["errors"], 5, what="the error gone from /debug/configz")
            wait_for(lambda: "push " in ctl.log().rsplit("refused", 1)[-1], 5, what="a push after the fix")
            n1, n2 = len(v1.of("call")), len(v2.of("call"))
            res = X.calls(X.bootstrap(ctl), 20)
            check(res["codes"] == {"0": 20}, "calls after the fix succeed: %r", res)
            X.calls_seen((v1, v2), n1 + n2 + 20)
            eq(len(v1.of("call")), n1, "calls at v1 after the fix")


def test_a_connecting_sidecar_becomes_an_endpoint():
    """The registry: a sidecar whose labels a ServiceEntry selects connects to `weft control
    --config-dir` (its first request carries its Node) and becomes that service's endpoint for
    every client — here a proxyless gRPC client, whose calls reach it; its stream gone, the
    workload stays for the grace period, then goes."""
    import os
    import subprocess
    import test_xds_proxyless as X
    from test_control_ads import CDS, AdsClient, Control
    from test_grpc import GrpcServer
    X._need_xds()

    def reachable(boot):
        spec = {"calls": 1, "ready_ms": 1500, "deadline_ms": 1500}
        p = subprocess.run(["node", X.CLIENT, boot, "xds:///" + X.TARGET, json.dumps(spec)], capture_output=True,
                           text=True, timeout=30)
        lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
        return bool(lines) and json.loads(lines[-1]).get("codes") == {"0": 1}

    with GrpcServer() as srv:
        d = os.path.dirname(tmp_path("mesh.yaml"))
        write_file(os.path.join(d, "mesh.yaml"), """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports:
  - {number: 7070, name: grpc, protocol: GRPC, targetPort: %d}
  resolution: STATIC
  workloadSelector:
    labels: {app: echo}
""" % srv.port)
        with Control(None, args=["--config-dir", d, "--registry-grace-s", "1"]) as ctl:
            boot = X.bootstrap(ctl)
            check(not reachable(boot), "echo has no endpoint before its sidecar connects")
            # (protobufjs spells google.protobuf.Value's fields in lowerCamelCase)
            node = {"id": "sidecar~127.0.0.1~echo-1.default~default.svc.cluster.local", "cluster": "echo",
                    "metadata": {"fields": {
                        "NAMESPACE": {"stringValue": "default"},
                        "INSTANCE_IPS": {"stringValue": "127.0.0.1"},
                        "LABELS": {"structValue": {"fields": {"app": {"stringValue": "echo"}}}}}}}
            with AdsClient(ctl.xds_port) as sidecar:
                sidecar.cmd(op="open", id="s", node=node)
                sidecar.request("s", CDS)
                sidecar.response("s", CDS)
                res = X.calls(boot, 10)
                check(res["codes"] == {"0": 10}, "calls reach the registered workload: %r", res)
                eq(len(srv.of("call")), 10, "calls at the sidecar's app")
                sidecar.cmd(op="cancel", id="s")
            wait_for(lambda: not reachable(boot), 15, interval=0.5, what="the workload gone after the grace period")


# with the ServiceEntries db (TCP) and secure-app (TLS), from configs.service_entry
GATEWAY_L4 = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: edge, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {tcp}, name: tcp, protocol: TCP}}
    bind: 127.0.0.1
    hosts: ["*"]
  - port: {{number: {tls}, name: tls, protocol: TLS}}
    bind: 127.0.0.1
    hosts: ["secure.example.com"]
    tls: {{mode: PASSTHROUGH}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: db, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [edge]
  tcp:
  - match: [{{port: {tcp}, sourceLabels: {{app: nobody}}}}]
    route:
    - destination: {{host: secure-app}}
  - match: [{{port: {tcp}}}]
    route:
    - destination: {{host: db}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: secure, namespace: default}}
spec:
  hosts: [secure.example.com]
  gateways: [edge]
  tls:
  - match: [{{port: {tls}, sniHosts: [secure.example.com], sourceNamespace: elsewhere}}]
    route:
    - destination: {{host: db}}
  - match: [{{port: {tls}, sniHosts: [secure.example.com]}}]
    route:
    - destination: {{host: secure-app}}
  - match: [{{port: {tls}, sniHosts: [secure.example.com]}}]
    route:
    - destination: {{host: db}}
"""


def test_ingress_gateway_tcp_and_tls_passthrough_servers():
    """A Gateway's TCP server proxies by the bound VirtualService's tcp route; its TLS server
    in PASSTHROUGH mode routes by SNI (tls route) without terminating: the client handshakes
    with the upstream itself. A ClientHello naming no routed host gets no connection. Routes
    whose match names other source labels or another source namespace do not apply, and a
    host that an earlier tls route names stays with it."""
    import os
    import socket
    import ssl
    from harness import TcpEcho
    from test_tls import TlsEcho, py_client, recv_exactly, pki
    with TcpEcho() as db, TlsEcho("srv_ec") as app:
        ports = {"db": db.port, "app": app.port, "tcp": free_port(), "tls": free_port()}
        yaml = "---\n".join([service_entry("db", 5432, upstream=db.port, protocol="TCP"),
                              service_entry("secure-app", 8443, upstream=app.port, protocol="TLS"),
                              GATEWAY_L4.format(**ports)])
        with ingress_gateway(yaml):
            payload = os.urandom(200000)
            with socket.create_connection(("127.0.0.1", ports["tcp"]), timeout=5) as s:
                s.sendall(payload)
                eq(recv_exactly(s, len(payload)) == payload, True, "TCP relayed through the gateway to db")
            with py_client(ports["tls"], server_hostname="secure.example.com") as s:
                cert = ssl.DER_cert_to_PEM_cert(s.getpeercert(binary_form=True))
                s.sendall(b"hello through")
                eq(recv_exactly(s, 13), b"hello through", "TLS relayed untouched")
            with open(pki()["srv_ec.crt"]) as f:
                eq(cert.strip() == f.read().strip(), True, "the upstream's own certificate (not terminated)")
            eq(app.snis, ["secure.example.com"], "the upstream saw the client's SNI")
            failed = False
            try:
                with py_client(ports["tls"], server_hostname="other.example.com") as s:
                    s.sendall(b"x")
                    failed = not s.recv(1)
            except (OSError, ssl.SSLError):
                failed = True
            eq(failed, True, "a host no tls route names gets no connection")
