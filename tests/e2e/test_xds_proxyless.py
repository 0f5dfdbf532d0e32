"""Interoperability: a proxyless gRPC client (@grpc/grpc-js with @grpc/grpc-js-xds, target
`xds:///NAME`, tests/e2e/node/xds_proxyless.js) resolves and routes through `weft control`,
with no Weft proxy in the path: it subscribes to the Listener named HOST:PORT (an
api_listener), its RouteConfiguration over RDS, the clusters over CDS and their endpoints over
EDS, and sends its calls straight to the gRPC servers (grpc_peer.js) the resources name — a
weighted split 80/20 between two of them, and a header match that picks one."""

import json
import os
import subprocess

from harness import HERE, check, tmp_path, wait_for, write_file
from test_control_ads import Control
from test_grpc import GrpcServer

NODE_DIR = os.path.join(HERE, "node")
CLIENT = os.path.join(NODE_DIR, "xds_proxyless.js")
TARGET = "echo.default.svc.cluster.local:7070"


def _need_xds():
    check(os.path.isdir(os.path.join(NODE_DIR, "node_modules", "@grpc", "grpc-js-xds")),
          "the @grpc/grpc-js-xds package is missing: run `npm ci --prefix tests/e2e/node` (tests/run.sh does)")


def _cluster(subset):
    return "outbound|7070|%s|echo.default.svc.cluster.local" % subset


def resources(v1_port, v2_port):
    """What a proxyless client of TARGET needs: the api_listener, its routes (x-version: v2 to
    subset v2, else 80/20), two EDS clusters and their endpoints (one locality each, with a
    weight: gRPC drops localities that have none)."""
    text = """\
resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: %(target)s
  api_listener:
    api_listener:
      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
      stat_prefix: echo
      rds: {route_config_name: echo-routes, config_source: {ads: {}, resource_api_version: V3}}
      http_filters:
      - name: envoy.filters.http.router
        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
- "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
  name: echo-routes
  virtual_hosts:
  - name: echo
    domains: ["%(target)s"]
    routes:
    - match: {prefix: "", headers: [{name: x-version, string_match: {exact: v2}}]}
      route: {cluster: "%(c2)s"}
    - match: {prefix: ""}
      route:
        weighted_clusters:
          clusters:
          - {name: "%(c1)s", weight: 80}
          - {name: "%(c2)s", weight: 20}
""" % {"target": TARGET, "c1": _cluster("v1"), "c2": _cluster("v2")}
    for subset, port in (("v1", v1_port), ("v2", v2_port)):
        text += """\
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: "%(c)s"
  type: EDS
  eds_cluster_config: {eds_config: {ads: {}, resource_api_version: V3}}
- "@type": type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
  cluster_name: "%(c)s"
  endpoints:
  - locality: {region: local}
    load_balancing_weight: 1
    lb_endpoints:
    - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %(port)d}}}
""" % {"c": _cluster(subset), "port": port}
    return text


def bootstrap(ctl):
    path = tmp_path("grpc-xds-bootstrap.json")
    write_file(path, json.dumps({
        "xds_servers": [{"server_uri": "127.0.0.1:%d" % ctl.xds_port, "channel_creds": [{"type": "insecure"}],
                         "server_features": ["xds_v3"]}],
        "node": {"id": "proxyless~127.0.0.1~client.default~default.svc.cluster.local", "cluster": "client",
                 "locality": {"region": "local"}},
    }))
    return path


def calls_seen(servers, n):
    """Wait until the servers reported n calls in all (each prints a `call` event on its stdout,
    read by a thread of its own: a call answered may not be counted yet)."""
    wait_for(lambda: sum(len(s.of("call")) for s in servers) >= n, what="%d calls at the servers" % n)


def calls(boot, n, metadata=None):
    """n unary calls from one proxyless client; its result line."""
    spec = {"calls": n, "metadata": metadata or {}}
    p = subprocess.run(["node", CLIENT, boot, "xds:///" + TARGET, json.dumps(spec)], capture_output=True,
                       text=True, timeout=60)
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    check(lines, "proxyless client printed nothing (exit %s, stderr %r)", p.returncode, p.stderr[-800:])
    res = json.loads(lines[-1])
    check("error" not in res, "proxyless client failed: %r (stderr %r)", res, p.stderr[-800:])
    return res


def test_xds_proxyless_grpc_weighted_split_and_header_match():
    _need_xds()
    with GrpcServer() as v1, GrpcServer() as v2, Control(resources(v1.port, v2.port)) as ctl:
        boot = bootstrap(ctl)
        res = calls(boot, 200)
        check(res["codes"] == {"0": 200}, "every call succeeds: %r", res)
        calls_seen((v1, v2), 200)
        n1, n2 = len(v1.of("call")), len(v2.of("call"))
        check(n1 + n2 == 200, "the calls reached the two servers: %d + %d", n1, n2)
        # 80/20 of 200 calls: v2 gets 40 on average, sd ~5.7; 15..70 is far outside chance
        check(15 <= n2 <= 70 and n1 > n2, "80/20 split: v1 %d, v2 %d", n1, n2)
        res = calls(boot, 20, {"x-version": "v2"})
        check(res["codes"] == {"0": 20}, "header-matched calls succeed: %r", res)
        wait_for(lambda: len(v2.of("call")) == n2 + 20, what="the 20 header-matched calls at v2")
        check(len(v1.of("call")) == n1, "no header-matched call reached v1")
        # what routed the calls came from the control plane, over ADS
        check("proxy proxyless~127.0.0.1~client.default" in ctl.log(), "no ADS stream from the client:\n%s",
              ctl.log())
