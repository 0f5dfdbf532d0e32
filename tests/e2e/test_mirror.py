"""Route request_mirror_policies (issue 3): a fire-and-forget copy of each request to another
cluster, with `-shadow` appended to the authority, bodies included, a percentage, and the
client never waiting for (or hearing from) the mirror."""

import re
import time

import configs as C
from harness import (HttpUpstream, Weft, check, closed_port, eq, free_port, raw, request, run_weft, tmp_path,
                     wait_for, write_file)


def _cfg(up, mirror_port, policy=None, timeout=None):
    port = free_port()
    action = {"request_mirror_policies": [dict({"cluster": "mirror"}, **(policy or {}))]}
    if timeout:
        action["timeout"] = timeout
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
        C.route(C.prefix("/"), cluster="backend", action=action)])])],
        clusters=[C.cluster("backend", [up.port]), C.cluster("mirror", [mirror_port])])
    return cfg, port


def test_copy_goes_to_the_mirror_with_shadow_authority():
    with HttpUpstream("primary") as up, HttpUpstream("shadow") as sh:
        cfg, port = _cfg(up, sh.port)
        with Weft(cfg) as w:
            r = request(port, "/x?a=1", host="svc.local:8080", headers={"x-user": "u1"})
            eq((r.status, r.header("x-upstream")), (200, "primary"), "the client gets the primary's answer")
            wait_for(lambda: sh.requests, 3, what="the mirror's copy")
            q = sh.requests[0]
            eq((q.method, q.target, q.header("host"), q.header("x-user")), ("GET", "/x?a=1", "svc.local-shadow:8080", "u1"),
               "the copy")
            eq(q.header("x-request-id"), up.requests[0].header("x-request-id"), "same request id")
            request(port, "/y", host="plain")
            wait_for(lambda: len(sh.requests) == 2, 3, what="second copy")
            eq(sh.requests[1].header("host"), "plain-shadow", "no port")
            wait_for(lambda: w.stat("cluster.mirror.upstream_rq_200") == 2, 3, what="mirror cluster stats")
            eq(len(up.requests), 2, "the primary saw each request once")


def test_bodies_are_mirrored():
    with HttpUpstream("primary") as up, HttpUpstream("shadow") as sh:
        cfg, port = _cfg(up, sh.port)
        with Weft(cfg):
            eq(request(port, "/post", method="POST", body=b"x" * 5000).status, 200, "content-length body")
            data = raw(port, b"POST /chunked HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n"
                             b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            check(data.startswith(b"HTTP/1.1 200"), "chunked request answered: %r", data[:40])
            wait_for(lambda: len(sh.requests) == 2 and all(q.complete for q in sh.requests), 3, what="copies")
            by_path = {q.target: q.body for q in sh.requests}
            eq(by_path, {"/post": b"x" * 5000, "/chunked": b"hello world"}, "the mirror got the bodies")


def test_large_bodies_are_not_mirrored():
    with HttpUpstream("primary") as up, HttpUpstream("shadow") as sh:
        cfg, port = _cfg(up, sh.port)
        with Weft(cfg):
            eq(request(port, "/big", method="POST", body=b"y" * 200000).status, 200, "answered")
            eq(up.requests[0].body_len, 200000, "the primary got it all")
            request(port, "/small")
            wait_for(lambda: sh.requests, 3, what="the small request's copy")
            time.sleep(0.2)
            eq([q.target for q in sh.requests], ["/small"], "bodies over 64 KiB are not mirrored")


def test_client_never_waits_for_the_mirror():
    with HttpUpstream("primary") as up, HttpUpstream("shadow") as sh:
        def stall(req):
            time.sleep(3)
            return (200, [], b"late")
        sh.responses["/slow"] = stall
        cfg, port = _cfg(up, sh.port)
        with Weft(cfg):
            t = time.monotonic()
            eq(request(port, "/slow").status, 200, "answered")
            check(time.monotonic() - t < 1.0, "the client did not wait for the stalled mirror")
            wait_for(lambda: sh.requests, 3, what="the copy arrived")


def test_mirror_failures_do_not_reach_the_client():
    with HttpUpstream("primary") as up:
        cfg, port = _cfg(up, closed_port())
        with Weft(cfg) as w:
            eq([request(port, "/").status for _ in range(3)], [200] * 3, "a dead mirror changes nothing")
            wait_for(lambda: w.stat("cluster.mirror.upstream_cx_connect_fail") == 3, 3, what="mirror connect failures")
    with HttpUpstream("primary") as up, HttpUpstream("shadow") as sh:
        sh.responses["/"] = (500, [], b"broken")
        cfg, port = _cfg(up, sh.port)
        with Weft(cfg) as w:
            r = request(port, "/")
            eq((r.status, r.header("x-upstream")), (200, "primary"), "the mirror's 500 is not seen")
            wait_for(lambda: w.stat("cluster.mirror.upstream_rq_500") == 1, 3, what="counted on the mirror cluster")


def test_mirror_percentage():
    """50% of 200 requests: binomial sd ~7, so 60..140 is far outside 4 sd."""
    with HttpUpstream("primary") as up, HttpUpstream("shadow") as sh:
        cfg, port = _cfg(up, sh.port, {"runtime_fraction": {"default_value": {"numerator": 50}}})
        with Weft(cfg) as w:
            for _ in range(200):
                request(port, "/p")
            wait_for(lambda: w.stat("cluster.mirror.upstream_rq_total") == len(sh.requests) and
                     w.stat("cluster.mirror.upstream_rq_active") == 0, 5, what="mirrors done")
            check(60 <= len(sh.requests) <= 140, "about half mirrored, got %d", len(sh.requests))


def test_unknown_mirror_cluster_refused():
    with HttpUpstream() as up:
        cfg, _ = _cfg(up, free_port())
        text = str(cfg).replace("cluster: mirror", "cluster: nowhere")
        p = run_weft(["validate", write_file(tmp_path("m.yaml"), text)])
        eq(p.returncode, 1, "refused")
        check(re.search(r"m\.yaml:\d+:\d+: .*request_mirror_policies\[0\]\.cluster: unknown cluster 'nowhere'", p.stderr),
              "error: %s", p.stderr)
