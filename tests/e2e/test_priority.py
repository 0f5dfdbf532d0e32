"""Endpoint priorities, the overprovisioning factor, the panic threshold and locality weighted load
balancing (issue 3), as Envoy does them: traffic goes to P0 as far as its health x 1.4 allows and
spills to P1; a level with too few healthy hosts panics and uses all of them; localities share a
level by weight x availability.

Statistical checks use bounds of at least 4.5 standard deviations of the binomial count, so a
correct proxy fails them about once in 150000 runs."""

import json
import math

import configs as C
from harness import HttpUpstream, Weft, check, eq, free_port, request, run_weft, tmp_path, wait_for, write_file


def _lle(ups, priority=0, unhealthy=(), weight=None, zone=None):
    """A LocalityLbEndpoints for upstreams ups; the ones named in `unhealthy` are UNHEALTHY."""
    lbe = []
    for u in ups:
        e = C.lb_endpoint(u.port)
        if u.name in unhealthy:
            e["health_status"] = "UNHEALTHY"
        lbe.append(e)
    d = {"lb_endpoints": lbe}
    if priority:
        d["priority"] = priority
    if weight is not None:
        d["load_balancing_weight"] = weight
    if zone:
        d["locality"] = {"region": "r1", "zone": zone}
    return d


def _cfg(lles, lb_policy="ROUND_ROBIN", hash_header=None, policy=None, **cluster_extra):
    port = free_port()
    action = {"hash_policy": [{"header": {"header_name": hash_header}}]} if hash_header else {}
    cl = C.cluster("backend", [], lb_policy=lb_policy, **cluster_extra)
    cl["load_assignment"]["endpoints"] = lles
    if policy:
        cl["load_assignment"]["policy"] = policy
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
        C.route(C.prefix("/"), cluster="backend", action=action)])])], clusters=[cl])
    return cfg, port


def _ups(*names):
    return [HttpUpstream(n) for n in names]


def _close(ups):
    for u in ups:
        u.close()


def _count(port, n, path="/", headers=None):
    counts = {}
    for _ in range(n):
        r = request(port, path, headers=headers)
        key = r.header("x-upstream") if r.status == 200 else r.status
        counts[key] = counts.get(key, 0) + 1
    return counts


def _near(count, n, p, what):
    sd = math.sqrt(n * p * (1 - p))
    check(abs(count - n * p) <= 4.5 * sd, "%s: %d of %d, expected %.0f +- %.0f", what, count, n, n * p, 4.5 * sd)


def test_priority_p0_takes_all_when_healthy():
    a, b, c, d = ups = _ups("a", "b", "c", "d")
    try:
        # P1 listed first: levels go by priority, not by order in the file
        cfg, port = _cfg([_lle([c, d], priority=1, zone="z2"), _lle([a, b])])
        with Weft(cfg, concurrency=1) as w:
            eq(_count(port, 40), {"a": 20, "b": 20}, "P0 only, round robin")
            lines = w.admin("/clusters").text.splitlines()
            check("backend::127.0.0.1:%d::priority::1" % c.port in lines, "/clusters priority of P1 hosts")
            check("backend::127.0.0.1:%d::priority::0" % a.port in lines, "/clusters priority of P0 hosts")
            check("backend::127.0.0.1:%d::zone::z2" % d.port in lines, "/clusters zone")
            hosts = json.loads(w.admin("/clusters?format=json").body)["cluster_statuses"][0]["host_statuses"]
            prio = {h["address"]["socket_address"]["port_value"]: h.get("priority", 0) for h in hosts}
            eq(prio, {a.port: 0, b.port: 0, c.port: 1, d.port: 1}, "/clusters?format=json priority")
    finally:
        _close(ups)


def test_priority_overprovisioning_spills_30_percent():
    """One of two P0 hosts UNHEALTHY: P0 health is 1.4 x 50% = 70%, so 70% stays on P0 and 30% goes
    to P1."""
    a, b, c, d = ups = _ups("a", "b", "c", "d")
    try:
        cfg, port = _cfg([_lle([a, b], unhealthy={"b"}), _lle([c, d], priority=1)])
        with Weft(cfg) as w:
            n = 400
            got = _count(port, n)
            check("b" not in got, "the UNHEALTHY host gets nothing: %s" % got)
            _near(got.get("a", 0), n, 0.7, "P0 share")
            check(got.get("c", 0) > 0 and got.get("d", 0) > 0, "both P1 hosts serve: %s" % got)
            eq(w.stat("cluster.backend.lb_healthy_panic"), 0, "no panic")
    finally:
        _close(ups)


def test_priority_all_p0_unhealthy_goes_to_p1():
    a, b, c, d = ups = _ups("a", "b", "c", "d")
    try:
        cfg, port = _cfg([_lle([a, b], unhealthy={"a", "b"}), _lle([c, d], priority=1)])
        with Weft(cfg, concurrency=1):
            eq(_count(port, 20), {"c": 10, "d": 10}, "all to P1")
    finally:
        _close(ups)


def test_priority_overprovisioning_factor_is_configurable():
    """overprovisioning_factor 100: P0 with half of its hosts healthy keeps exactly half."""
    a, b, c = ups = _ups("a", "b", "c")
    try:
        cfg, port = _cfg([_lle([a, b], unhealthy={"b"}), _lle([c], priority=1)],
                         policy={"overprovisioning_factor": 100})
        with Weft(cfg):
            n = 400
            _near(_count(port, n).get("a", 0), n, 0.5, "P0 share with factor 100")
    finally:
        _close(ups)


def test_panic_uses_all_hosts_and_counts():
    """Three of four hosts UNHEALTHY: 25% healthy is below the default 50% threshold, so the level
    panics and round robin goes over all four."""
    ups = _ups("a", "b", "c", "d")
    try:
        cfg, port = _cfg([_lle(ups, unhealthy={"b", "c", "d"})])
        with Weft(cfg, concurrency=1) as w:
            eq(_count(port, 40), {"a": 10, "b": 10, "c": 10, "d": 10}, "all hosts in panic")
            eq(w.stat("cluster.backend.lb_healthy_panic"), 40, "lb_healthy_panic per pick")
        # a lower threshold: 25% is enough, no panic
        cfg, port = _cfg([_lle(ups, unhealthy={"b", "c", "d"})],
                         common_lb_config={"healthy_panic_threshold": {"value": 20}})
        with Weft(cfg, concurrency=1) as w:
            eq(_count(port, 10), {"a": 10}, "only the healthy host")
            eq(w.stat("cluster.backend.lb_healthy_panic"), 0, "no panic")
    finally:
        _close(ups)


def test_panic_threshold_zero_disables_panic():
    ups = _ups("a", "b")
    try:
        cfg, port = _cfg([_lle(ups, unhealthy={"a", "b"})],
                         common_lb_config={"healthy_panic_threshold": {"value": 0}})
        with Weft(cfg, concurrency=1) as w:
            r = request(port, "/")
            eq(r.status, 503, "no healthy host, no panic")
            eq(r.body, b"no healthy upstream", "body")
            eq(w.stat("cluster.backend.upstream_cx_none_healthy"), 1, "upstream_cx_none_healthy")
            eq(w.stat("cluster.backend.lb_healthy_panic"), 0, "no panic")
        # the default threshold: none healthy means panic over all of them
        cfg, port = _cfg([_lle(ups, unhealthy={"a", "b"})])
        with Weft(cfg, concurrency=1):
            eq(_count(port, 4), {"a": 2, "b": 2}, "panic with the default threshold")
    finally:
        _close(ups)


def test_locality_weights_split_traffic():
    a, b = ups = _ups("a", "b")
    try:
        lles = [_lle([a], weight=1, zone="z1"), _lle([b], weight=3, zone="z2")]
        cfg, port = _cfg(lles, common_lb_config={"locality_weighted_lb_config": {}})
        with Weft(cfg):
            n = 400
            _near(_count(port, n).get("a", 0), n, 0.25, "locality weight 1 of 4")
        # without locality_weighted_lb_config, locality weights are ignored (Envoy)
        cfg, port = _cfg(lles)
        with Weft(cfg, concurrency=1):
            eq(_count(port, 20), {"a": 10, "b": 10}, "weights ignored")
    finally:
        _close(ups)


def test_locality_weight_scaled_by_availability():
    """z1 (weight 1) all healthy, z2 (weight 1) with one of two hosts healthy: z2's effective weight
    is 1 x 1.4 x 50% = 0.7, so z1 gets 1 / 1.7 of the traffic."""
    a, b, c = ups = _ups("a", "b", "c")
    try:
        lles = [_lle([a], weight=1, zone="z1"), _lle([b, c], weight=1, zone="z2", unhealthy={"c"})]
        cfg, port = _cfg(lles, common_lb_config={"locality_weighted_lb_config": {}})
        with Weft(cfg):
            n = 400
            got = _count(port, n)
            check("c" not in got, "unhealthy host unused: %s" % got)
            _near(got.get("a", 0), n, 1 / 1.7, "z1 share")
    finally:
        _close(ups)


def test_outlier_ejection_in_p0_spills_to_p1():
    bad, good, c, d = ups = _ups("bad", "good", "c", "d")
    bad.responses["/"] = (500, [], b"broken")
    try:
        cfg, port = _cfg([_lle([bad, good]), _lle([c, d], priority=1)],
                         outlier_detection={"consecutive_5xx": 2, "base_ejection_time": "30s",
                                            "max_ejection_percent": 50})
        with Weft(cfg, concurrency=1) as w:
            eq({request(port, "/").header("x-upstream") for _ in range(2)}, {"bad", "good"}, "P0 only before")
            wait_for(lambda: request(port, "/") and w.stat("cluster.backend.outlier_detection.ejections_active") == 1,
                     5, what="the bad host ejected")
            n = 400
            got = _count(port, n)
            check("bad" not in got, "ejected host unused: %s" % got)
            _near(got.get("good", 0), n, 0.7, "P0 share with one of two hosts ejected")
    finally:
        _close(ups)


def test_priority_ring_hash_per_level():
    """RING_HASH builds a ring per level: a key sticks to one P1 host when P0 is all UNHEALTHY."""
    a, b, c, d = ups = _ups("a", "b", "c", "d")
    try:
        cfg, port = _cfg([_lle([a, b], unhealthy={"a", "b"}), _lle([c, d], priority=1)], lb_policy="RING_HASH",
                         hash_header="x-key")
        with Weft(cfg):
            seen = set()
            for k in range(20):
                hosts = {request(port, "/", headers={"x-key": "k%d" % k}).header("x-upstream") for _ in range(3)}
                eq(len(hosts), 1, "key k%d sticks to one host" % k)
                seen |= hosts
            eq(seen, {"c", "d"}, "P1 hosts only, both used")
    finally:
        _close(ups)


def _refused(cfg, needle):
    path = write_file(tmp_path("p.yaml"), cfg)
    p = run_weft(["validate", path])
    eq(p.returncode, 1, "refused")
    check(needle in p.stderr, "error %r in: %s", needle, p.stderr)
    check(p.stderr.startswith("weft: %s:" % path) and p.stderr.split(":")[2].strip().isdigit(),
          "file:line:column in: %s", p.stderr)


def test_priority_config_errors():
    port = free_port()

    class U:
        def __init__(self, name):
            self.name, self.port = name, port
    u = U("u")
    cfg, _ = _cfg([_lle([u])], common_lb_config={"zone_aware_lb_config": {"min_cluster_size": 3}})
    _refused(cfg, "zone_aware_lb_config is not supported yet")
    cfg, _ = _cfg([_lle([u])], common_lb_config={"healthy_panic_threshold": {"value": 150}})
    _refused(cfg, "must be 0..100")
    cfg, _ = _cfg([_lle([u], priority=64)])
    _refused(cfg, "priority must be 0..63")
