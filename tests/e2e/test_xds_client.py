"""`weft proxy` configured over xDS: the bootstrap's dynamic_resources point at a management
server (tests/e2e/node/xds_server.js: grpc-js, Weft's own .proto files), which serves listeners,
route configurations, clusters and endpoints over ADS (SotW, and delta). The test decides what
the server holds and reads back every request the proxy sent it (ACKs, NACKs with their
error_detail, nonces, resubscriptions), and sends real traffic through the proxy to real
upstreams (harness HttpUpstream)."""

import json
import os
import re
import subprocess
import threading
import time

import configs as C
from harness import (HERE, Blackhole, HttpUpstream, Weft, check, eq, free_port, get_stats, request, tmp_path, wait_for,
                     write_file)

NODE_DIR = os.path.join(HERE, "node")
SERVER = os.path.join(NODE_DIR, "xds_server.js")
LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
RDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
HCM_T = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER_T = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
H2 = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    "explicit_http_config": {"http2_protocol_options": {}}}}


class XdsServer:
    """xds_server.js in a node process: .set() pushes a resource type's state of the world,
    .events collects what the server reports (requests, responses, streams)."""

    def __init__(self, port=0, tls=None):
        check(os.path.isdir(os.path.join(NODE_DIR, "node_modules", "@grpc", "grpc-js")),
              "the @grpc/grpc-js package is missing: run `npm ci --prefix tests/e2e/node`")
        self.proc = subprocess.Popen(["node", SERVER, "server", str(port)] + list(tls or ()), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.events = []
        line = self.proc.stdout.readline()
        check(line, "the xDS server did not start")
        first = json.loads(line)
        check(first.get("event") == "listening", "the xDS server did not start: %r", first)
        self.port = first["port"]
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def set(self, type_, version, resources):
        self.proc.stdin.write(json.dumps({"type": type_, "version": version, "resources": resources}) + "\n")
        self.proc.stdin.flush()
        wait_for(lambda: any(e["event"] == "set" and e["type"] == type_ and e["version"] == version
                             for e in list(self.events)) or self.errors(), 5, what="the server to take %s" % type_)
        check(not self.errors(), "the xDS server refused a resource: %r", self.errors())

    def errors(self):
        return [e for e in list(self.events) if e["event"] == "error"]

    def requests(self, type_url=None):
        return [e for e in list(self.events) if e["event"] == "request" and (type_url is None or e["type_url"] == type_url)]

    def responses(self, type_url=None):
        return [e for e in list(self.events) if e["event"] == "response" and (type_url is None or e["type_url"] == type_url)]

    def acked(self, type_url, version):
        """A request that ACKs `version` of the type (the nonce of a response with it)."""
        nonces = {r["nonce"] for r in self.responses(type_url) if r["version_info"] == version}
        for r in self.requests(type_url):
            if r["response_nonce"] in nonces and not r["error_detail"]:
                if r["kind"] == "delta" or r["version_info"] == version:
                    return r
        return None

    def nacked(self, type_url, version):
        nonces = {r["nonce"] for r in self.responses(type_url) if r["version_info"] == version}
        for r in self.requests(type_url):
            if r["response_nonce"] in nonces and r["error_detail"]:
                return r
        return None

    def wait_ack(self, type_url, version, timeout=10):
        return wait_for(lambda: self.acked(type_url, version) or self.nacked(type_url, version), timeout,
                        what="an ACK or NACK of %s %s" % (type_url.rsplit(".", 1)[-1], version))

    def end_streams(self, code, message):
        self.proc.stdin.write(json.dumps({"end": code, "message": message}) + "\n")
        self.proc.stdin.flush()
        wait_for(lambda: any(e["event"] == "ended" for e in list(self.events)), 5, what="the streams to end")

    def streams_opened(self):
        return len([e for e in list(self.events) if e["event"] == "stream" and e["state"] == "open"])

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        return False


def bootstrap(xds_port, api_type="GRPC", admin_port=None, static_listeners=(), timeout=None, xds_tls=None,
              node=None, ads_extra=None):
    admin_port = admin_port or free_port()
    src = {"ads": {}, "resource_api_version": "V3"}
    if timeout is not None:
        src["initial_fetch_timeout"] = timeout
    doc = {
        "node": node or {"id": "sidecar~127.0.0.1~app-1.default~default.svc.cluster.local", "cluster": "app"},
        "admin": {"address": C.address(admin_port)},
        "dynamic_resources": {
            "ads_config": dict({"api_type": api_type, "transport_api_version": "V3",
                                "grpc_services": [{"envoy_grpc": {"cluster_name": "xds_cluster"}}]}, **(ads_extra or {})),
            "lds_config": src, "cds_config": src,
        },
        "static_resources": {
            "clusters": [dict(C.cluster("xds_cluster", xds_port if isinstance(xds_port, list) else [xds_port]),
                              typed_extension_protocol_options=H2,
                              **({"transport_socket": xds_tls} if xds_tls else {}))],
            "listeners": list(static_listeners),
        },
    }
    b = C.Bootstrap(C.to_yaml(doc))
    b.admin_port = admin_port
    return b


def listener(name, port, route_config_name, stat_prefix=None):
    return {"name": name, "address": C.address(port), "filter_chains": [{"filters": [{
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {"@type": HCM_T, "stat_prefix": stat_prefix or name,
                         "rds": {"route_config_name": route_config_name,
                                 "config_source": {"ads": {}, "resource_api_version": "V3"}},
                         "http_filters": [{"name": "envoy.filters.http.router",
                                           "typed_config": {"@type": ROUTER_T}}]}}]}]}


def route_config(name, routes, **extra):
    rc = {"name": name, "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]}
    rc.update(extra)
    return rc


def to(prefix, cluster=None, weighted=None):
    action = {"cluster": cluster} if cluster else {"weighted_clusters": {"clusters": [
        {"name": n, "weight": {"value": w}} for n, w in weighted]}}
    return {"match": {"prefix": prefix}, "route": action}


def eds_cluster(name, service_name=None):
    c = {"name": name, "type": "EDS", "connect_timeout": {"seconds": 1},
         "eds_cluster_config": {"eds_config": {"ads": {}, "resource_api_version": "V3"}}}
    if service_name:
        c["eds_cluster_config"]["service_name"] = service_name
    return c


def static_cluster(name, port):
    return {"name": name, "type": "STATIC", "connect_timeout": {"seconds": 1},
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [C.lb_endpoint(port)]}]}}


def assignment(name, *ports):
    return {"cluster_name": name, "endpoints": [{"lb_endpoints": [C.lb_endpoint(p) for p in ports]}]}


def upstream_of(port, path="/", timeout=2.0):
    r = request(port, path, timeout=timeout)
    return r.status, r.header("x-upstream")


def serving(port, path="/"):
    try:
        return upstream_of(port, path)
    except OSError:
        return None


def push_basic(xs, lport, a, b, version="1"):
    """Clusters a (EDS, service 'svc-a') and b (STATIC), a listener on lport with RDS route 'r1':
    /b -> b, everything else -> a."""
    xs.set("CDS", version, [eds_cluster("a", "svc-a"), static_cluster("b", b.port)])
    xs.set("EDS", version, [assignment("svc-a", a.port)])
    xs.set("RDS", version, [route_config("r1", [to("/b", "b"), to("/", "a")])])
    xs.set("LDS", version, [listener("web", lport, "r1")])


def test_xds_basic_lds_rds_cds_eds():
    """The proxy takes its listeners, routes, clusters and endpoints from ADS, serves traffic
    with them, ACKs every type, subscribes RDS and EDS by name, and shows it all in
    /config_dump and its stats."""
    lport = free_port()
    with HttpUpstream(name="a") as a, HttpUpstream(name="b") as b, XdsServer() as xs:
        push_basic(xs, lport, a, b)
        with Weft(bootstrap(xs.port)) as w:
            wait_for(lambda: serving(lport) == (200, "a"), 10, what="traffic through the xDS listener")
            eq(upstream_of(lport, "/b/x"), (200, "b"), "route /b")
            for t in (CDS, EDS, LDS, RDS):
                xs.wait_ack(t, "1")
                check(xs.acked(t, "1"), "%s not ACKed: %r", t, xs.requests(t))
            eq(xs.requests(EDS)[-1]["resource_names"], ["svc-a"], "EDS subscription")
            eq(xs.requests(RDS)[-1]["resource_names"], ["r1"], "RDS subscription")
            first = xs.requests()[0]
            eq(first["node"]["id"], "sidecar~127.0.0.1~app-1.default~default.svc.cluster.local", "node id")
            eq(first["node"]["user_agent_name"], "weft", "user agent")
            # make-before-break: clusters are asked for before listeners
            order = [r["type_url"] for r in xs.requests()]
            check(order.index(CDS) < order.index(LDS), "LDS asked for before CDS: %r", order)
            st = get_stats(w.admin_port)
            eq(st.get("control_plane.connected_state"), 1, "connected_state")
            check(st.get("cluster_manager.cds.update_success", 0) >= 1, "cds.update_success: %r", st)
            check(st.get("listener_manager.lds.update_success", 0) >= 1, "lds.update_success")
            eq(st.get("cluster.a.update_success"), 1, "EDS: cluster.<name>.update_success")
            eq(st.get("http.web.rds.r1.update_success"), 1, "RDS: http.<stat_prefix>.rds.<name>.update_success")
            dump = json.loads(w.admin("/config_dump").body)
            by = {c["@type"].rsplit(".", 1)[-1]: c for c in dump["configs"]}
            dl = by["ListenersConfigDump"]["dynamic_listeners"]
            eq([l["name"] for l in dl], ["web"], "dynamic listeners")
            eq(dl[0]["active_state"]["version_info"], "1", "listener version")
            check("last_updated" in dl[0]["active_state"], "last_updated")
            eq(sorted(c["cluster"]["name"] for c in by["ClustersConfigDump"]["dynamic_active_clusters"]), ["a", "b"],
               "dynamic clusters")
            eq([r["route_config"]["name"] for r in by["RoutesConfigDump"]["dynamic_route_configs"]], ["r1"], "routes")
            eq([e["endpoint_config"]["cluster_name"] for e in by["EndpointsConfigDump"]["dynamic_endpoint_configs"]],
               ["svc-a"], "endpoints")
            eq(by["ClustersConfigDump"]["version_info"], "1", "CDS version_info")


def test_xds_removed_resources_take_their_update_counters_along():
    """Per-resource update counters (cluster.<name>.update_* for EDS, http.<prefix>.rds.<name>.*
    for RDS) count while their cluster or connection manager is configured, and go when an
    update takes it away, as the rest of its stats do."""
    lport = free_port()
    with HttpUpstream(name="a") as a, HttpUpstream(name="b") as b, XdsServer() as xs:
        push_basic(xs, lport, a, b)
        with Weft(bootstrap(xs.port)) as w:
            wait_for(lambda: serving(lport) == (200, "a"), 10, what="traffic through the xDS listener")
            xs.set("EDS", "2", [assignment("svc-a", a.port)])
            xs.wait_ack(EDS, "2")
            st = get_stats(w.admin_port)
            eq((st.get("cluster.a.update_attempt"), st.get("cluster.a.update_success")), (2, 2), "cluster a's EDS counters")
            # r1 replaced by r2, then cluster a removed
            xs.set("RDS", "2", [route_config("r2", [to("/", "b")])])
            xs.set("LDS", "2", [listener("web", lport, "r2")])
            xs.wait_ack(LDS, "2")
            wait_for(lambda: serving(lport) == (200, "b"), 5, what="the listener on r2")
            xs.set("CDS", "2", [static_cluster("b", b.port)])
            xs.wait_ack(CDS, "2")
            wait_for(lambda: "cluster.a.upstream_rq_total" not in get_stats(w.admin_port), 5, what="cluster a to go")
            st = get_stats(w.admin_port)
            eq(sorted(k for k in st if k.startswith("cluster.a.update_") or k.startswith("http.web.rds.r1.")), [],
               "cluster a's and route r1's update counters are gone (a's pooled connection keeps its own five)")
            eq(st.get("http.web.rds.r2.update_success"), 1, "r2's counter")
            check(st.get("cluster_manager.cds.update_success", 0) >= 2, "cds.update_success: %r", st)
            # and they count again, from zero, when they come back
            xs.set("CDS", "3", [eds_cluster("a", "svc-a"), static_cluster("b", b.port)])
            xs.wait_ack(CDS, "3")
            wait_for(lambda: get_stats(w.admin_port).get("cluster.a.update_success") == 1, 5,
                     what="cluster a's EDS counter, anew")


def test_xds_route_change_under_load():
    """Route changes over RDS (a weighted split, then a path change), a listener moved to
    another route configuration over LDS, and an endpoint change over EDS apply with no failed
    request while a client keeps sending."""
    lport = free_port()
    with HttpUpstream(name="a") as a, HttpUpstream(name="b") as b, HttpUpstream(name="c") as c, XdsServer() as xs:
        push_basic(xs, lport, a, b)
        with Weft(bootstrap(xs.port), concurrency=2):
            wait_for(lambda: serving(lport) == (200, "a"), 10, what="traffic through the xDS listener")
            stop = threading.Event()
            seen, bad = [], []

            def loop():
                while not stop.is_set():
                    try:
                        s, u = upstream_of(lport, "/x")
                        (seen if s == 200 else bad).append(u if s == 200 else s)
                    except OSError as e:
                        bad.append(repr(e))

            th = threading.Thread(target=loop)
            th.start()
            try:
                time.sleep(0.3)
                xs.set("RDS", "2", [route_config("r1", [to("/", weighted=[("a", 50), ("b", 50)])])])
                xs.wait_ack(RDS, "2")
                wait_for(lambda: "b" in seen[-50:], 5, what="the weighted split to reach b")
                xs.set("RDS", "3", [route_config("r1", [to("/x", "b"), to("/", "a")])])
                xs.wait_ack(RDS, "3")
                time.sleep(0.3)
                n = len(seen)
                wait_for(lambda: len(seen) > n + 20, 5, what="more requests")
                check(set(seen[-10:]) == {"b"}, "after the path change /x goes to b: %r", seen[-10:])
                # the listener moves to another route configuration: it warms, then replaces
                xs.set("RDS", "4", [route_config("r1", [to("/x", "b"), to("/", "a")]),
                                    route_config("r1b", [to("/", "a")])])
                xs.set("LDS", "2", [listener("web", lport, "r1b")])
                xs.wait_ack(LDS, "2")
                wait_for(lambda: set(seen[-10:]) == {"a"}, 5, what="the listener on its new routes")
                # and the endpoints of a move
                xs.set("EDS", "2", [assignment("svc-a", c.port)])
                wait_for(lambda: set(seen[-10:]) == {"c"}, 5, what="the new endpoint")
            finally:
                stop.set()
                th.join()
            eq(bad, [], "failed requests during the changes")
            check(len(seen) > 50, "too few requests: %d", len(seen))


def test_xds_endpoint_change():
    """An EDS update moves a cluster to another host."""
    lport = free_port()
    with HttpUpstream(name="a") as a, HttpUpstream(name="b") as b, HttpUpstream(name="c") as c, XdsServer() as xs:
        push_basic(xs, lport, a, b)
        with Weft(bootstrap(xs.port)):
            wait_for(lambda: serving(lport) == (200, "a"), 10, what="traffic to a")
            xs.set("EDS", "2", [assignment("svc-a", c.port)])
            xs.wait_ack(EDS, "2")
            wait_for(lambda: serving(lport) == (200, "c"), 5, what="traffic to the new endpoint")


def test_xds_bad_resource_nacked():
    """A route configuration naming an unknown cluster (validate_clusters: true) and one with a
    regex that does not compile are NACKed with error_detail (code 3, the resource, the field
    path, the reason); the previous config keeps serving; a good version is then ACKed."""
    lport = free_port()
    with HttpUpstream(name="a") as a, HttpUpstream(name="b") as b, XdsServer() as xs:
        push_basic(xs, lport, a, b)
        with Weft(bootstrap(xs.port)) as w:
            wait_for(lambda: serving(lport) == (200, "a"), 10, what="traffic to a")
            xs.wait_ack(RDS, "1")
            xs.set("RDS", "2", [route_config("r1", [to("/", "nope")], validate_clusters={"value": True})])
            nack = xs.wait_ack(RDS, "2")
            check(nack["error_detail"], "not NACKed: %r", nack)
            eq(nack["error_detail"]["code"], 3, "NACK code")
            msg = nack["error_detail"]["message"]
            check("xds:RouteConfiguration/r1" in msg and "virtual_hosts[0].routes[0].route" in msg
                  and "unknown cluster 'nope'" in msg, "error_detail: %r", msg)
            eq(nack["version_info"], "1", "a NACK carries the previous version")
            eq(serving(lport), (200, "a"), "the old routes serve")
            xs.set("RDS", "3", [route_config("r1", [{"match": {"safe_regex": {"regex": "(unclosed"}},
                                                      "route": {"cluster": "a"}}])])
            nack = xs.wait_ack(RDS, "3")
            check(nack["error_detail"] and "safe_regex" in nack["error_detail"]["message"], "regex NACK: %r", nack)
            eq(serving(lport), (200, "a"), "the old routes still serve")
            st = get_stats(w.admin_port)
            eq(st.get("http.web.rds.r1.update_rejected"), 2, "http.<stat_prefix>.rds.<name>.update_rejected")
            eq(st.get("http.web.rds.r1.update_success"), 1, "http.<stat_prefix>.rds.<name>.update_success")
            xs.set("RDS", "4", [route_config("r1", [to("/", "b")])])
            check(not xs.wait_ack(RDS, "4")["error_detail"], "version 4 NACKed")
            wait_for(lambda: serving(lport) == (200, "b"), 5, what="version 4 to serve")
            # a bad cluster is NACKed on CDS
            xs.set("CDS", "2", [eds_cluster("a", "svc-a"), static_cluster("b", b.port),
                                {"name": "bad", "type": "STATIC", "lb_policy": "CLUSTER_PROVIDED"}])
            nack = xs.wait_ack(CDS, "2")
            check(nack["error_detail"] and "xds:Cluster/bad" in nack["error_detail"]["message"], "CDS NACK: %r", nack)
            check(get_stats(w.admin_port).get("cluster_manager.cds.update_rejected", 0) >= 1, "cds.update_rejected")
            eq(serving(lport), (200, "b"), "still serving")
            # a listener update that does not compile: NACKed, and /config_dump shows its error_state
            # next to the version that serves
            bad_l = listener("web", lport, "r1")
            del bad_l["filter_chains"][0]["filters"][0]["typed_config"]["stat_prefix"]
            xs.set("LDS", "2", [bad_l])
            nack = xs.wait_ack(LDS, "2")
            check(nack["error_detail"] and "xds:Listener/web: filter_chains[0].filters[0].typed_config.stat_prefix"
                  in nack["error_detail"]["message"], "LDS NACK: %r", nack)
            dump = json.loads(w.admin("/config_dump").body)
            dl = [c for c in dump["configs"] if c["@type"].endswith("ListenersConfigDump")][0]["dynamic_listeners"]
            eq(dl[0]["active_state"]["version_info"], "1", "the listener version serving")
            eq(dl[0]["error_state"]["version_info"], "2", "the refused version")
            check("stat_prefix is required" in dl[0]["error_state"]["details"], "error_state: %r", dl[0])
            eq(serving(lport), (200, "b"), "still serving after the LDS NACK")
            xs.set("LDS", "3", [listener("web", lport, "r1")])
            check(not xs.wait_ack(LDS, "3")["error_detail"], "LDS 3 NACKed")
            dump = json.loads(w.admin("/config_dump").body)
            dl = [c for c in dump["configs"] if c["@type"].endswith("ListenersConfigDump")][0]["dynamic_listeners"]
            check("error_state" not in dl[0], "error_state after a good update: %r", dl[0])
            # a proxyless client's listener (api_listener) is refused in a proxy, by name
            xs.set("LDS", "4", [listener("web", lport, "r1"), {"name": "reviews:9080", "api_listener": {}}])
            nack = xs.wait_ack(LDS, "4")
            check(nack["error_detail"] and "xds:Listener/reviews:9080: api_listener: api_listener is not supported"
                  in nack["error_detail"]["message"], "api_listener NACK: %r", nack)
            dump = json.loads(w.admin("/config_dump").body)
            dl = [c for c in dump["configs"] if c["@type"].endswith("ListenersConfigDump")][0]["dynamic_listeners"]
            eq([(l["name"], "error_state" in l) for l in dl], [("web", False), ("reviews:9080", True)],
               "a refused new listener is listed with its error_state")


def test_xds_server_restart():
    """The management server dies: the proxy keeps serving its last config and reports the
    stream down; the server comes back on the same port: the proxy reconnects (backoff),
    resubscribes with the versions it holds, and takes new config."""
    lport = free_port()
    with HttpUpstream(name="a") as a, HttpUpstream(name="b") as b:
        xs = XdsServer()
        port = xs.port
        push_basic(xs, lport, a, b)
        with Weft(bootstrap(port)) as w:
            wait_for(lambda: serving(lport) == (200, "a"), 10, what="traffic to a")
            xs.wait_ack(LDS, "1")
            xs.kill()
            wait_for(lambda: get_stats(w.admin_port).get("control_plane.connected_state") == 0, 5,
                     what="connected_state 0")
            for _ in range(20):
                eq(serving(lport), (200, "a"), "serving without the control plane")
            xs = XdsServer(port)
            try:
                xs.set("CDS", "1", [eds_cluster("a", "svc-a"), static_cluster("b", b.port)])
                xs.set("EDS", "1", [assignment("svc-a", a.port)])
                xs.set("RDS", "5", [route_config("r1", [to("/", "b")])])
                xs.set("LDS", "1", [listener("web", lport, "r1")])
                wait_for(lambda: serving(lport) == (200, "b"), 15, what="the new routes after the reconnect")
                cds = xs.requests(CDS)[0]
                eq(cds["version_info"], "1", "the CDS resubscription carries the version held")
                eq(cds["response_nonce"], "", "no nonce of the old stream")
                eq(get_stats(w.admin_port).get("control_plane.connected_state"), 1, "connected_state 1")
                check("retrying in" in w.stderr(), "no backoff logged")
            finally:
                xs.kill()


def test_xds_listener_added_and_removed():
    """A second listener comes over LDS (its port opens), then goes (its port closes); the
    first one serves throughout. A listener updated to name a route configuration that has not
    come keeps serving its previous version until it comes (warming)."""
    lport, lport2 = free_port(), free_port()
    with HttpUpstream(name="a") as a, HttpUpstream(name="b") as b, XdsServer() as xs:
        push_basic(xs, lport, a, b)
        with Weft(bootstrap(xs.port)) as w:
            wait_for(lambda: serving(lport) == (200, "a"), 10, what="traffic to a")
            r2 = "outbound|8080||web2.default.svc.cluster.local"  # Istio-shaped names
            xs.set("RDS", "2", [route_config("r1", [to("/b", "b"), to("/", "a")]),
                                route_config(r2, [to("/", "b")])])
            xs.set("LDS", "2", [listener("web", lport, "r1"), listener("web2", lport2, r2)])
            wait_for(lambda: serving(lport2) == (200, "b"), 10, what="the second listener")
            eq(sorted(xs.requests(RDS)[-1]["resource_names"]), sorted(["r1", r2]), "RDS names")
            prom = w.admin("/stats/prometheus").body.decode()
            check("envoy_control_plane_connected_state 1" in prom, "connected_state in Prometheus")
            for ln in prom.splitlines():
                check(not ln or ln.startswith("#") or re.match(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^{}]*\})? -?[0-9]', ln),
                      "not a Prometheus sample: %r", ln)
            xs.set("LDS", "3", [listener("web", lport, "r1")])
            xs.wait_ack(LDS, "3")
            wait_for(lambda: serving(lport2) is None, 10, what="the second listener to close")
            eq(serving(lport), (200, "a"), "the first listener serves")
            dump = json.loads(w.admin("/config_dump").body)
            rcs = [c for c in dump["configs"] if c["@type"].endswith("RoutesConfigDump")][0]["dynamic_route_configs"]
            eq([r["route_config"]["name"] for r in rcs], ["r1"], "the routes nothing uses are forgotten")
            # an update of a listener that must wait for its new routes: the old version serves meanwhile
            xs.set("LDS", "4", [listener("web", lport, "r3")])
            xs.wait_ack(LDS, "4")
            wait_for(lambda: "r3" in xs.requests(RDS)[-1]["resource_names"], 5, what="the RDS subscription of r3")
            for _ in range(10):
                eq(serving(lport), (200, "a"), "the listener being updated serves its old version")
            # another update meanwhile (a cluster added: a recompile) keeps it so
            xs.set("CDS", "2", [eds_cluster("a", "svc-a"), static_cluster("b", b.port), static_cluster("extra", b.port)])
            check(not xs.wait_ack(CDS, "2")["error_detail"], "CDS 2 NACKed")
            for _ in range(10):
                eq(serving(lport), (200, "a"), "the listener being updated still serves its old version")
            dump = json.loads(w.admin("/config_dump").body)
            dl = [c for c in dump["configs"] if c["@type"].endswith("ListenersConfigDump")][0]["dynamic_listeners"]
            hcm_of = lambda st: st["listener"]["filter_chains"][0]["filters"][0]["typed_config"]["rds"]["route_config_name"]
            eq((hcm_of(dl[0]["active_state"]), hcm_of(dl[0]["warming_state"])), ("r1", "r3"),
               "/config_dump: the active version and the warming one")
            xs.set("RDS", "5", [route_config("r1", [to("/", "a")]), route_config("r3", [to("/", "b")])])
            wait_for(lambda: serving(lport) == (200, "b"), 10, what="the updated listener once its routes came")


def ready(w):
    r = w.admin("/ready")
    return r.status, r.text.strip()


def test_xds_static_and_warming():
    """Static listeners serve at once while the control plane has sent nothing, and /ready says
    INITIALIZING until the first config (clusters, their endpoints, listeners, their routes)
    came; a listener whose route configuration has not come is not opened until it comes."""
    lport, sport = free_port(), free_port()
    with HttpUpstream(name="a") as a, HttpUpstream(name="b") as b, XdsServer() as xs:
        static = C.http_listener(sport, C.route_config([C.vhost("all", ["*"], [C.route(C.prefix("/"), "xds_cluster")])]))
        with Weft(bootstrap(xs.port, static_listeners=[static]), wait_ready=False) as w:
            wait_for(lambda: serving(sport) is not None, 10, what="the static listener")
            eq(ready(w), (503, "INITIALIZING"), "/ready before any xDS config")
            xs.set("CDS", "1", [eds_cluster("a", "svc-a"), static_cluster("b", b.port)])
            xs.set("EDS", "1", [assignment("svc-a", a.port)])
            xs.set("LDS", "1", [listener("web", lport, "r1")])
            xs.wait_ack(LDS, "1")
            time.sleep(0.5)
            eq(serving(lport), None, "a listener without its routes is warming")
            eq(ready(w), (503, "INITIALIZING"), "/ready while the routes have not come")
            dump = json.loads(w.admin("/config_dump").body)
            dl = [c for c in dump["configs"] if c["@type"].endswith("ListenersConfigDump")][0]["dynamic_listeners"]
            check("warming_state" in dl[0], "a warming listener in /config_dump: %r", dl)
            xs.set("RDS", "1", [route_config("r1", [to("/", "a")])])
            wait_for(lambda: serving(lport) == (200, "a"), 10, what="the listener once its routes came")
            wait_for(lambda: ready(w) == (200, "LIVE"), 5, what="/ready LIVE")


def test_xds_initial_fetch_timeout():
    """Endpoints and routes that do not come within initial_fetch_timeout: the cluster starts
    with no endpoints (503), the listener with no routes (404), /ready goes LIVE; when they
    come later they are used."""
    lport = free_port()
    with HttpUpstream(name="a") as a, XdsServer() as xs:
        xs.set("CDS", "1", [eds_cluster("a", "svc-a")])
        xs.set("LDS", "1", [listener("web", lport, "r1")])
        with Weft(bootstrap(xs.port, timeout={"seconds": 1}), wait_ready=False) as w:
            wait_for(lambda: ready(w) == (200, "LIVE"), 10, what="/ready after the timeouts")
            eq(serving(lport), (404, None), "a listener whose routes timed out")
            check("ClusterLoadAssignment svc-a not received within initial_fetch_timeout" in w.stderr(), "EDS timeout logged")
            xs.set("RDS", "1", [route_config("r1", [to("/", "a")])])
            wait_for(lambda: serving(lport) == (503, None), 10, what="the routes, to a cluster with no endpoints")
            xs.set("EDS", "1", [assignment("svc-a", a.port)])
            wait_for(lambda: serving(lport) == (200, "a"), 10, what="the endpoints")


def test_xds_delta():
    """Delta xDS (AGGREGATED_DELTA_GRPC): the same resources, ACKed by nonce; a removed
    resource goes; after a reconnect the proxy sends initial_resource_versions."""
    lport = free_port()
    with HttpUpstream(name="a") as a, HttpUpstream(name="b") as b:
        xs = XdsServer()
        port = xs.port
        try:
            push_basic(xs, lport, a, b)
            with Weft(bootstrap(port, api_type="AGGREGATED_DELTA_GRPC")):
                wait_for(lambda: serving(lport) == (200, "a"), 10, what="traffic through the delta listener")
                eq(upstream_of(lport, "/b/1"), (200, "b"), "route /b")
                check(all(r["kind"] == "delta" for r in xs.requests()), "not delta")
                for t in (CDS, EDS, LDS, RDS):
                    check(not xs.wait_ack(t, "1")["error_detail"], "%s NACKed" % t)
                eq(xs.requests(EDS)[0]["subscribe"], ["svc-a"], "EDS subscribe")
                xs.set("EDS", "2", [assignment("svc-a", b.port)])
                wait_for(lambda: serving(lport) == (200, "b"), 5, what="the delta endpoint change")
                xs.set("RDS", "2", [route_config("r1", [to("/", "nope")], validate_clusters={"value": True})])
                nack = xs.wait_ack(RDS, "2")
                check(nack["error_detail"] and "unknown cluster 'nope'" in nack["error_detail"]["message"],
                      "delta NACK: %r", nack)
                xs.kill()
                xs = XdsServer(port)
                push_basic(xs, lport, a, b, version="9")
                wait_for(lambda: xs.requests(CDS), 15, what="the delta reconnect")
                irv = xs.requests(CDS)[0]["initial_resource_versions"]
                eq(sorted(irv), ["a", "b"], "initial_resource_versions of CDS")
                wait_for(lambda: serving(lport) == (200, "a"), 10, what="traffic after the delta reconnect")
                # removal: cluster b and its route go
                xs.set("RDS", "10", [route_config("r1", [to("/", "a")])])
                xs.set("CDS", "10", [eds_cluster("a", "svc-a")])
                removed = wait_for(lambda: [r for r in xs.responses(CDS) if r["removed"]], 5, what="a removal")
                eq(removed[0]["removed"], ["b"], "removed_resources")
                check(not xs.wait_ack(CDS, "10")["error_detail"], "the removal NACKed")
                # a second listener subscribes its routes; when it goes, they are unsubscribed
                lport2 = free_port()
                xs.set("RDS", "11", [route_config("r1", [to("/", "a")]), route_config("r2", [to("/", "a")])])
                xs.set("LDS", "11", [listener("web", lport, "r1"), listener("web2", lport2, "r2")])
                wait_for(lambda: serving(lport2) == (200, "a"), 10, what="the second delta listener")
                check(any(r["subscribe"] == ["r2"] for r in xs.requests(RDS)), "r2 subscribed: %r", xs.requests(RDS))
                xs.set("LDS", "12", [listener("web", lport, "r1")])
                wait_for(lambda: any(r["unsubscribe"] == ["r2"] for r in xs.requests(RDS)), 5, what="r2 unsubscribed")
                wait_for(lambda: serving(lport2) is None, 5, what="the second listener to close")
        finally:
            xs.kill()


def test_xds_bootstrap_refusals():
    """What the xDS client does not support is refused by name, with its position."""
    from harness import run_weft, tmp_path as tp, write_file
    cases = [
        ({"api_type": "REST", "transport_api_version": "V3",
          "grpc_services": [{"envoy_grpc": {"cluster_name": "xds_cluster"}}]}, None, "api_type REST is not supported"),
        ({"api_type": "GRPC", "transport_api_version": "V2",
          "grpc_services": [{"envoy_grpc": {"cluster_name": "xds_cluster"}}]}, None, "transport_api_version must be V3"),
        ({"api_type": "GRPC", "transport_api_version": "V3",
          "grpc_services": [{"envoy_grpc": {"cluster_name": "nope"}}]}, None, "unknown cluster 'nope'"),
        ({"api_type": "GRPC", "transport_api_version": "V3",
          "grpc_services": [{"envoy_grpc": {"cluster_name": "xds_cluster"}}]}, {"path": "/tmp/lds.yaml"},
         "only the ADS stream is supported as a config source"),
        ({"api_type": "GRPC", "transport_api_version": "V3",
          "grpc_services": [{"envoy_grpc": {"cluster_name": "xds_cluster"}}]}, {"ads": {}, "resource_api_version": "V2"},
         "resource_api_version must be V3"),
        ({"api_type": "GRPC", "transport_api_version": "V3", "cluster_names": ["xds_cluster"],
          "grpc_services": [{"envoy_grpc": {"cluster_name": "xds_cluster"}}]}, None, "cluster_names is for REST"),
    ]
    for ads, lds, want in cases:
        doc = {
            "dynamic_resources": {"ads_config": ads, "lds_config": lds or {"ads": {}}},
            "static_resources": {"clusters": [dict(C.cluster("xds_cluster", [free_port()]),
                                                   typed_extension_protocol_options=H2)]},
        }
        path = tp("bad-xds.yaml")
        write_file(path, C.to_yaml(doc))
        p = run_weft(["validate", path])
        check(p.returncode != 0, "accepted: %r", doc)
        check(want in p.stderr and "bad-xds.yaml:" in p.stderr and "dynamic_resources" in p.stderr,
              "expected %r with the position, got %r", want, p.stderr)


def test_xds_over_tls():
    """The xDS cluster has an UpstreamTlsContext: the ADS stream runs over TLS (ALPN h2, the
    server verified against the CA); a server whose certificate the CA did not sign is not
    trusted, and the proxy keeps retrying."""
    from test_tls import pki
    p = pki()
    lport = free_port()
    up_tls = lambda ca: {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "sni": "localhost", "common_tls_context": {"validation_context": {"trusted_ca": {"filename": p[ca + ".crt"]}}}}}
    with HttpUpstream(name="a") as a, HttpUpstream(name="b") as b, \
            XdsServer(tls=(p["srv_ec.crt"], p["srv_ec.key"])) as xs:
        push_basic(xs, lport, a, b)
        with Weft(bootstrap(xs.port, xds_tls=up_tls("ca"))):
            wait_for(lambda: serving(lport) == (200, "a"), 10, what="traffic configured over TLS")
            check(not xs.acked(CDS, "1")["error_detail"], "CDS over TLS")
        with Weft(bootstrap(xs.port, xds_tls=up_tls("otherca")), wait_ready=False) as w:
            wait_for(lambda: "retrying in" in w.stderr(), 10, what="a refused handshake")
            eq(ready(w), (503, "INITIALIZING"), "/ready without a config")
            eq(get_stats(w.admin_port).get("control_plane.connected_state"), 0, "not connected to an untrusted server")
            eq(serving(lport), None, "nothing configured from an untrusted server")


def test_xds_file_reload_keeps_dynamic_resources():
    """The bootstrap file changes (a static listener added): the new static resources are
    compiled with the xDS ones held, which keep serving without a new push."""
    lport, sport = free_port(), free_port()
    with HttpUpstream(name="a") as a, HttpUpstream(name="b") as b, XdsServer() as xs:
        push_basic(xs, lport, a, b)
        boot = bootstrap(xs.port)
        with Weft(boot) as w:
            wait_for(lambda: serving(lport) == (200, "a"), 10, what="traffic through the xDS listener")
            n = len(xs.requests())
            static = C.http_listener(sport, C.route_config([C.vhost("all", ["*"], [C.route(C.prefix("/"), "xds_cluster")])]))
            text = boot.replace("  listeners: []\n", "  listeners:\n" + "".join(
                "  " + ln + "\n" for ln in C.to_yaml([static]).splitlines()))
            check(text != boot, "the test could not add a static listener to %r" % boot)
            w.reload(text)
            wait_for(lambda: serving(sport) is not None, 10, what="the new static listener")
            eq(serving(lport), (200, "a"), "the xDS listener after the reload")
            eq(len([r for r in xs.requests()[n:] if r["type_url"] == LDS]), 0, "no resubscription for a file reload")


def test_xds_istio_style_bootstrap():
    """A bootstrap shaped like Istio's: node metadata and locality, set_node_on_first_message_only
    (the node goes on the first request only), initial_fetch_timeout: 0s (wait for ever)."""
    lport = free_port()
    node = {"id": "sidecar~10.1.2.3~reviews-v1.default~default.svc.cluster.local", "cluster": "reviews.default",
            "metadata": {"NAMESPACE": "default", "LABELS": "app=reviews"},
            "locality": {"region": "eu-west1", "zone": "eu-west1-b"}}
    with HttpUpstream(name="a") as a, HttpUpstream(name="b") as b, XdsServer() as xs:
        xs.set("CDS", "1", [eds_cluster("a", "svc-a"), static_cluster("b", b.port)])
        xs.set("LDS", "1", [listener("web", lport, "r1")])
        with Weft(bootstrap(xs.port, timeout={"seconds": 0}, node=node,
                            ads_extra={"set_node_on_first_message_only": True}), wait_ready=False) as w:
            wait_for(lambda: xs.requests(EDS), 10, what="the EDS subscription")
            time.sleep(1.2)
            eq(ready(w), (503, "INITIALIZING"), "initial_fetch_timeout 0s waits for the endpoints")
            eq(xs.requests(LDS), [], "LDS is not asked for before the clusters are warm")
            xs.set("EDS", "1", [assignment("svc-a", a.port)])
            xs.set("RDS", "1", [route_config("r1", [to("/", "a")])])
            wait_for(lambda: serving(lport) == (200, "a"), 10, what="traffic")
            wait_for(lambda: ready(w) == (200, "LIVE"), 5, what="/ready LIVE")
            reqs = xs.requests()
            first = reqs[0]["node"]
            eq((first["id"], first["cluster"]), (node["id"], node["cluster"]), "node")
            eq(first["metadata"], node["metadata"], "node metadata")
            eq(first["locality"], node["locality"], "node locality")
            eq([r["node"] for r in reqs[1:]], [None] * (len(reqs) - 1), "the node on the first request only")


def test_xds_resources_without_a_server_refused():
    """rds and type EDS in a bootstrap without dynamic_resources are refused with their position."""
    from harness import run_weft, tmp_path as tp, write_file
    hcm = {"@type": HCM_T, "stat_prefix": "t", "rds": {"route_config_name": "r1"},
           "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_T}}]}
    cases = [
        ({"clusters": [{"name": "a", "type": "EDS"}]}, "bad-eds.yaml:",
         "static_resources.clusters[0].type: type EDS needs an xDS server"),
        ({"listeners": [{"name": "l", "address": C.address(free_port()),
                         "filter_chains": [{"filters": [{"name": "hcm", "typed_config": hcm}]}]}]}, "bad-rds.yaml:",
         "typed_config.rds.route_config_name: rds needs an xDS server"),
    ]
    for sr, fname, want in cases:
        path = tp(fname[:-1])
        write_file(path, C.to_yaml({"static_resources": sr}))
        p = run_weft(["validate", path])
        check(p.returncode != 0 and fname in p.stderr and want in p.stderr, "expected %r, got %r", want, p.stderr)


def test_xds_large_push():
    """An RDS response of a few MB (5,000 routes, spread over many HTTP/2 DATA frames and
    window updates) is reassembled, compiled and ACKed; the proxy routes by its last route."""
    lport = free_port()
    with HttpUpstream(name="a") as a, HttpUpstream(name="b") as b, XdsServer() as xs:
        pad = "v" * 500
        routes = [{"match": {"prefix": "/p%05d" % i, "headers": [{"name": "x-pad", "string_match": {"exact": pad}}]},
                   "route": {"cluster": "a"}} for i in range(5000)]
        push_basic(xs, lport, a, b)
        xs.set("RDS", "big", [route_config("r1", routes + [to("/last", "b")])])
        with Weft(bootstrap(xs.port)):
            check(not xs.wait_ack(RDS, "big", timeout=30)["error_detail"], "the large RDS NACKed")
            wait_for(lambda: serving(lport, "/last") == (200, "b"), 30, what="the last of 5,000 routes")
            eq(upstream_of(lport, "/p04999"), (404, None), "a route whose header does not match")


def test_xds_dead_server_detected():
    """A management server that accepts and then never answers: with the xDS cluster's
    http2_protocol_options.connection_keepalive the stream is given up when the PINGs go
    unanswered; one that does not even accept the connection is given up at the cluster's
    connect_timeout. Either way the proxy retries with backoff."""
    import socket
    with Blackhole() as bh:
        b = bootstrap(bh.port)
        text = str(b).replace("http2_protocol_options: {}",
                              "http2_protocol_options: {connection_keepalive: {interval: 0.5s, timeout: 0.5s}}")
        check(text != str(b), "could not set connection_keepalive in %r" % str(b))
        with Weft(text, wait_ready=False) as w:
            wait_for(lambda: "no answer to keepalive PINGs" in w.stderr(), 10, what="the keepalive to give up")
            check("retrying in" in w.stderr(), "no retry")
    # a listener whose accept queue is full: SYNs go unanswered
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    fillers = []
    try:
        for _ in range(4):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(ls.getsockname())
            fillers.append(f)
        time.sleep(0.2)
        text = str(bootstrap(ls.getsockname()[1])).replace("connect_timeout: 1s", "connect_timeout: 0.3s")
        with Weft(text, wait_ready=False) as w:
            wait_for(lambda: "connect timeout" in w.stderr(), 10, what="the connect timeout")
    finally:
        for f in fillers:
            f.close()
        ls.close()


def test_xds_stream_ended_by_server():
    """The server ends the ADS stream with a gRPC status (as a control plane does when it
    sheds load or restarts): the proxy logs the status, keeps serving, opens a new stream and
    resubscribes with the versions it holds — and the server's re-sent resources, unchanged,
    are ACKed without a recompile."""
    lport = free_port()
    with HttpUpstream(name="a") as a, HttpUpstream(name="b") as b, XdsServer() as xs:
        push_basic(xs, lport, a, b)
        with Weft(bootstrap(xs.port)) as w:
            wait_for(lambda: serving(lport) == (200, "a"), 10, what="traffic")
            xs.wait_ack(RDS, "1")
            n = len(xs.requests())
            xs.end_streams(14, "shedding load")
            wait_for(lambda: xs.streams_opened() == 2, 10, what="a new stream")
            check("xds_cluster': grpc-status 14 (UNAVAILABLE): shedding load" in w.stderr(), "the status logged: %s", w.stderr()[-2000:])
            wait_for(lambda: len([r for r in xs.requests()[n:] if r["type_url"] == RDS and r["response_nonce"]]) >= 1,
                     10, what="the RDS ACK on the new stream")
            again = xs.requests()[n:]
            eq([r["version_info"] for r in again if r["type_url"] == CDS][0], "1", "CDS resubscribed at version 1")
            check("unchanged" in w.stderr(), "the same resources re-sent are not applied again")
            eq(serving(lport), (200, "a"), "serving throughout")


def test_xds_with_weft_control():
    """weft proxy configured by weft control (--envoy-resources), SotW and delta: traffic
    flows; weft proxy-status shows the proxy SYNCED; an edit of the resources file reaches the
    proxy; a route configuration the proxy refuses is NACKed (proxy-status says so) while the
    last good one serves; a good edit after it is taken."""
    from test_control_ads import Control, replace_file, resources, status_row
    for api_type in ("GRPC", "AGGREGATED_DELTA_GRPC"):
        lport = free_port()
        node_id = "sidecar~127.0.0.1~web-%s.default~default.svc.cluster.local" % api_type.lower()
        with HttpUpstream(name="a") as a, Control(resources(ep_port=a.port, listener_port=lport)) as ctl:
            node = {"id": node_id, "cluster": "web"}
            with Weft(bootstrap(ctl.xds_port, api_type=api_type, node=node)) as w:
                wait_for(lambda: serving(lport, "/x") == (200, "a"), 10, what="traffic configured by weft control")
                wait_for(lambda: "SYNCED SYNCED SYNCED SYNCED" in " ".join(status_row(ctl, node_id).split()), 5,
                         what="the proxy SYNCED in weft proxy-status (%s)" % api_type)
                replace_file(ctl.res, resources(ep_port=a.port, listener_port=lport, route_prefix="/only"))
                wait_for(lambda: serving(lport, "/x") == (404, None), 10, what="the edited routes")
                eq(serving(lport, "/only/x"), (200, "a"), "the new route")
                bad = resources(ep_port=a.port, listener_port=lport, route_prefix="/only").replace(
                    "  name: routes\n", "  name: routes\n  validate_clusters: true\n").replace(
                    "route: {cluster: backend}", "route: {cluster: nope}")
                replace_file(ctl.res, bad)
                wait_for(lambda: "NACK" in status_row(ctl, node_id), 10, what="the NACK in weft proxy-status")
                check("xds:RouteConfiguration/routes: virtual_hosts[0].routes[0].route.cluster: unknown cluster 'nope'"
                      in w.stderr(), "the proxy's refusal: %s", w.stderr()[-1500:])
                eq(serving(lport, "/only/x"), (200, "a"), "the last good routes serve")
                replace_file(ctl.res, resources(ep_port=a.port, listener_port=lport, route_prefix="/again"))
                wait_for(lambda: serving(lport, "/again") == (200, "a"), 10, what="a good edit after the NACK")


def test_xds_next_host_on_reconnect():
    """The xDS cluster has two hosts, the first one down: the stream fails there and the next
    attempt goes to the other host."""
    from harness import closed_port
    lport = free_port()
    with HttpUpstream(name="a") as a, HttpUpstream(name="b") as b, XdsServer() as xs:
        push_basic(xs, lport, a, b)
        with Weft(bootstrap([closed_port(), xs.port])) as w:
            wait_for(lambda: serving(lport) == (200, "a"), 10, what="the config from the second host")
            check("cannot connect" in w.stderr(), "the first host was tried: %s", w.stderr()[-1500:])


ISTIO_MESH = """\
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
kind: DestinationRule
metadata: {{name: reviews, namespace: default}}
spec:
  host: reviews
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews]
  http:
  - match:
    - headers:
        end-user: {{exact: jason}}
    route:
    - destination: {{host: reviews, subset: v2}}
  - route:
    - destination: {{host: reviews, subset: v1}}
      weight: {w1}
    - destination: {{host: reviews, subset: v2}}
      weight: {w2}
"""


def test_xds_istio_through_weft_control():
    """The whole path of issue 5: Istio YAML in a directory -> weft control --config-dir
    (translated per proxy) -> ADS -> weft proxy (a sidecar by its node metadata) -> real
    upstreams. Header routing and the 80/20 split by subset labels; an edit of the
    VirtualService (100% to v2) reaches the proxy with no failed request under a running
    client; weft proxy-status shows it SYNCED."""
    from test_control_ads import Control, replace_file, status_row
    port = free_port()
    with HttpUpstream(name="v1") as v1, HttpUpstream(name="v2") as v2:
        ports = {"port": port, "v1": v1.port, "v2": v2.port}
        d = os.path.dirname(tmp_path("istio")) + "/istio-%d" % port
        os.makedirs(d)
        write_file(os.path.join(d, "mesh.yaml"), ISTIO_MESH.format(w1=80, w2=20, **ports))
        node_id = "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local"
        node = {"id": node_id, "metadata": {"NAMESPACE": "default", "LABELS": {"app": "productpage"},
                                            "INSTANCE_IPS": "127.0.0.1", "INTERCEPTION_MODE": "NONE"}}
        with Control(args=["--config-dir", d]) as ctl, Weft(bootstrap(ctl.xds_port, node=node)) as w:
            wait_for(lambda: serving(port, "/") is not None, 10, what="the outbound listener of reviews")
            for _ in range(5):
                r = request(port, "/reviews/1", headers={"end-user": "jason"}, host="reviews")
                eq((r.status, r.header("x-upstream")), (200, "v2"), "jason's request")
            hits = {"v1": 0, "v2": 0}
            for i in range(200):
                r = request(port, "/reviews/%d" % i, host="reviews.default.svc.cluster.local:%d" % port)
                eq(r.status, 200, "split request")
                hits[r.header("x-upstream")] += 1
            check(130 <= hits["v1"] <= 190, "80/20 split: %s", hits)
            wait_for(lambda: "SYNCED SYNCED SYNCED SYNCED" in " ".join(status_row(ctl, node_id).split()), 5,
                     what="the sidecar SYNCED in weft proxy-status")
            stop = threading.Event()
            seen, bad = [], []

            def loop():
                while not stop.is_set():
                    try:
                        r = request(port, "/reviews/x", host="reviews")
                        (seen if r.status == 200 else bad).append(r.header("x-upstream") if r.status == 200 else r.status)
                    except OSError as e:
                        bad.append(repr(e))

            th = threading.Thread(target=loop)
            th.start()
            try:
                time.sleep(0.3)
                replace_file(os.path.join(d, "mesh.yaml"), ISTIO_MESH.format(w1=0, w2=100, **ports))
                wait_for(lambda: len(seen) > 20 and set(seen[-20:]) == {"v2"}, 10, what="100% to v2 after the edit")
            finally:
                stop.set()
                th.join()
            eq(bad, [], "failed requests while the edit was applied")
