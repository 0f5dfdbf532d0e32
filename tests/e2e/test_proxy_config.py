"""`weft proxy-config PROXY listeners|routes|clusters|endpoints|all [-o json]`: what a sidecar
configured by `weft control --config-dir` holds, read from its admin's /config_dump (and
/clusters), by its admin address or by its name in `weft proxy-status`."""

import json
import os

from harness import HttpUpstream, Weft, check, eq, free_port, run_weft, tmp_path, wait_for, write_file
from test_control_ads import Control
from test_xds_client import ISTIO_MESH, bootstrap

NODE_ID = "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local"


def _pc(*args):
    p = run_weft(["proxy-config"] + list(args))
    return p.returncode, p.stdout, p.stderr


def test_proxy_config_tables_and_json():
    port = free_port()
    with HttpUpstream(name="v1") as v1, HttpUpstream(name="v2") as v2:
        d = os.path.join(os.path.dirname(tmp_path("x")), "pc-istio")
        os.makedirs(d)
        write_file(os.path.join(d, "mesh.yaml"), ISTIO_MESH.format(port=port, v1=v1.port, v2=v2.port, w1=80, w2=20))
        node = {"id": NODE_ID, "metadata": {"NAMESPACE": "default", "LABELS": {"app": "productpage"},
                                            "INSTANCE_IPS": "127.0.0.1", "INTERCEPTION_MODE": "NONE"}}
        with Control(args=["--config-dir", d]) as ctl, Weft(bootstrap(ctl.xds_port, node=node)) as w:
            admin = "127.0.0.1:%d" % w.admin_port
            svc = "reviews.default.svc.cluster.local"

            def routes_ready():
                rc, out, _ = _pc(admin, "routes")
                return out if rc == 0 and "20%" in out else None
            out = wait_for(routes_ready, 10, what="the sidecar's routes")
            check("outbound|%d|v1|%s 80%%, outbound|%d|v2|%s 20%%" % (port, svc, port, svc) in out,
                  "the weighted route: %s", out)
            check("outbound|%d|v2|%s" % (port, svc) in out.splitlines()[1] and "+1 header" in out.splitlines()[1],
                  "the header route first: %s", out)

            rc, out, err = _pc(admin, "listeners")
            eq(rc, 0, "listeners exit status (%s)" % err)
            row = [ln for ln in out.splitlines() if str(port) in ln.split()]
            check(row and "HTTP" in row[0] and "ACTIVE" in row[0] and "Route: %d" % port in row[0],
                  "the outbound listener: %s", out)

            rc, out, err = _pc(admin, "clusters")
            eq(rc, 0, "clusters exit status (%s)" % err)
            rows = [ln.split() for ln in out.splitlines() if ln.startswith(svc)]
            eq(sorted(r[2] for r in rows), ["-", "v1", "v2"], "subsets of %s (%s)" % (svc, out))
            check(all(r[1] == str(port) and r[3] == "outbound" and r[4] == "EDS" for r in rows), "cluster rows: %s", out)
            check("xds_cluster" in out and "STATIC" in out, "the static xDS cluster: %s", out)

            rc, out, err = _pc(admin, "endpoints")
            eq(rc, 0, "endpoints exit status (%s)" % err)
            for up, subset in ((v1, "v1"), (v2, "v2")):
                line = [ln for ln in out.splitlines() if ln.endswith("outbound|%d|%s|%s" % (port, subset, svc))]
                check(line and line[0].split()[:3] == ["127.0.0.1:%d" % up.port, "HEALTHY", "OK"],
                      "the %s endpoint: %s", subset, out)

            # by the name weft proxy-status shows (a prefix), through the control plane
            rc, out, err = _pc("sidecar~127.0.0.1~productpage", "clusters", "--control", "127.0.0.1:%d" % ctl.admin_port,
                               "--admin-port", str(w.admin_port))
            eq(rc, 0, "by name: exit status (%s)" % err)
            check("outbound" in out and svc in out, "by name: %s", out)

            # -o json: the dump's section, as Envoy's admin messages
            rc, out, err = _pc(admin, "routes", "-o", "json")
            eq(rc, 0, "json exit status (%s)" % err)
            dump = json.loads(out)
            names = [r["route_config"]["name"] for r in dump["dynamic_route_configs"]]
            eq(names, [str(port)], "route configurations in the JSON")
            rc, out, err = _pc(admin, "all", "-o", "json")
            eq(rc, 0, "all json exit status (%s)" % err)
            types = [c["@type"].rsplit(".", 1)[1] for c in json.loads(out)["configs"]]
            check({"ListenersConfigDump", "ClustersConfigDump", "RoutesConfigDump"} <= set(types), "sections: %s", types)

            # mistakes
            rc, _, err = _pc(admin, "secrets")
            eq(rc, 2, "unknown kind exit status")
            check("usage: weft proxy-config" in err, "usage: %s", err)
            rc, _, err = _pc("nobody", "clusters", "--control", "127.0.0.1:%d" % ctl.admin_port)
            eq(rc, 1, "unknown proxy exit status")
            check("no proxy named 'nobody'" in err, "unknown proxy: %s", err)
            rc, _, err = _pc("127.0.0.1:%d" % free_port(), "clusters")
            eq(rc, 1, "no admin there: exit status")
            check("is a proxy's admin there?" in err, "no admin: %s", err)
