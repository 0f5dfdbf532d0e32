"""Cluster outlier_detection (issue 3): consecutive 5xx / gateway / local-origin failures, and every
interval success rate and failure percentage, eject a host for base_ejection_time x ejections;
ejected hosts get no traffic, show in /clusters and stats, and come back after their time."""

import time

import configs as C
from harness import HttpUpstream, Weft, check, closed_port, eq, free_port, request, run_weft, tmp_path, wait_for, write_file


def _cfg(endpoints, outlier, lb_policy="ROUND_ROBIN"):
    port = free_port()
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
        C.route(C.prefix("/"), cluster="backend")])])],
        clusters=[C.cluster("backend", endpoints, lb_policy=lb_policy, outlier_detection=outlier)])
    return cfg, port


def _stat(w, name):
    return w.stats().get("cluster.backend." + name)


def test_consecutive_5xx_ejects_then_returns():
    bad, good = HttpUpstream("bad"), HttpUpstream("good")
    bad.responses["/o"] = (500, [], b"broken")
    try:
        cfg, port = _cfg([bad.port, good.port], {"consecutive_5xx": 3, "base_ejection_time": "1s",
                                                 "max_ejection_percent": 50})
        with Weft(cfg, concurrency=1) as w:
            codes = [request(port, "/o").status for _ in range(6)]
            eq(codes, [500, 200, 500, 200, 500, 200], "round robin until the third 500 ejects the bad host")
            after = [request(port, "/o").header("x-upstream") for _ in range(10)]
            eq(after, ["good"] * 10, "no traffic to the ejected host")
            eq((_stat(w, "outlier_detection.ejections_enforced_total"),
                _stat(w, "outlier_detection.ejections_enforced_consecutive_5xx"),
                _stat(w, "outlier_detection.ejections_active")), (1, 1, 1), "ejection stats")
            lines = w.admin("/clusters").text.splitlines()
            check("backend::127.0.0.1:%d::health_flags::/failed_outlier_check" % bad.port in lines,
                  "/clusters shows the ejection:\n%s", "\n".join(l for l in lines if "health_flags" in l))
            time.sleep(1.2)
            back = {request(port, "/o").header("x-upstream") for _ in range(4)}
            eq(back, {"bad", "good"}, "the host is back after base_ejection_time")
            eq(_stat(w, "outlier_detection.ejections_active"), 0, "ejections_active back to 0")
    finally:
        bad.close()
        good.close()


def test_max_ejection_percent_keeps_hosts():
    a, b = HttpUpstream("a"), HttpUpstream("b")
    a.responses["/o"] = (500, [], b"")
    b.responses["/o"] = (500, [], b"")
    try:
        cfg, port = _cfg([a.port, b.port], {"consecutive_5xx": 2, "base_ejection_time": "5s",
                                             "max_ejection_percent": 10})
        with Weft(cfg, concurrency=1) as w:
            for _ in range(8):
                request(port, "/o")
            # 10% of 2 hosts is 0, but Envoy always allows one ejection
            eq(_stat(w, "outlier_detection.ejections_active"), 1, "only one host ejected")
            check(_stat(w, "outlier_detection.ejections_overflow") >= 1, "the second ejection overflowed")
            eq(request(port, "/o").status, 500, "the remaining host still gets traffic")
    finally:
        a.close()
        b.close()


def test_local_origin_failures_split():
    good = HttpUpstream("good")
    try:
        cfg, port = _cfg([closed_port(), good.port], {"split_external_local_origin_errors": True,
                                                      "consecutive_local_origin_failure": 2,
                                                      "base_ejection_time": "5s"})
        with Weft(cfg, concurrency=1) as w:
            codes = [request(port, "/l").status for _ in range(6)]
            eq(codes[:4], [503, 200, 503, 200], "connection refused twice")
            eq(codes[4:], [200, 200], "then the refusing host is ejected")
            eq(_stat(w, "outlier_detection.ejections_enforced_consecutive_local_origin_failure"), 1, "stat")
    finally:
        good.close()


def _flaky(name):
    """An upstream that answers 500 to every other request on /o."""
    u = HttpUpstream(name)
    n = [0]

    def answer(req):
        n[0] += 1
        return (500, [], b"flaky") if n[0] % 2 else (200, [], b"ok")
    u.responses["/o"] = answer
    return u


def _interval_ejection(outlier, enforced_stat):
    """Five hosts, one failing half of its requests: keep the traffic going until an interval
    sweep ejects it (ejections_active 1), then no more traffic reaches it."""
    flaky = _flaky("flaky")
    good = [HttpUpstream("g%d" % i) for i in range(4)]
    try:
        cfg, port = _cfg([flaky.port] + [g.port for g in good], dict({"interval": "0.2s",
                         "base_ejection_time": "30s"}, **outlier))
        with Weft(cfg, concurrency=1) as w:
            def ejected():
                for _ in range(20):
                    request(port, "/o")
                return _stat(w, "outlier_detection.ejections_active") == 1
            wait_for(ejected, 10, what="an interval sweep ejects the flaky host")
            eq(_stat(w, enforced_stat), 1, enforced_stat)
            after = {request(port, "/o").header("x-upstream") for _ in range(20)}
            eq(after, {"g0", "g1", "g2", "g3"}, "no traffic to the ejected host")
            if "success_rate_request_volume" in outlier:
                # /clusters shows the last interval's success rate of the hosts that qualified
                line = "backend::127.0.0.1:%d::success_rate::100" % good[0].port

                def shown():
                    for _ in range(40):
                        request(port, "/o")
                    return line in w.admin("/clusters").text.splitlines()
                wait_for(shown, 10, what=line)
            return w.stats()
    finally:
        flaky.close()
        for g in good:
            g.close()


def test_success_rate_ejects_the_flaky_host():
    """Success rates 100, 100, 100, 100 and 50: mean 90, stdev 20, and 50 is below
    90 - 1.9 x 20 = 52."""
    st = _interval_ejection({"success_rate_request_volume": 10},
                            "outlier_detection.ejections_enforced_success_rate")
    check(st.get("cluster.backend.outlier_detection.ejections_detected_success_rate", 0) >= 1, "detected")
    eq(st.get("cluster.backend.outlier_detection.ejections_enforced_consecutive_5xx"), 0, "not by consecutive 5xx")


def test_failure_percentage_ejects_the_flaky_host():
    st = _interval_ejection({"enforcing_success_rate": 0, "success_rate_request_volume": 10,
                             "failure_percentage_threshold": 40,
                             "enforcing_failure_percentage": 100, "failure_percentage_request_volume": 10},
                            "outlier_detection.ejections_enforced_failure_percentage")
    eq(st.get("cluster.backend.outlier_detection.ejections_enforced_success_rate"), 0, "success rate not enforced")
    check(st.get("cluster.backend.outlier_detection.ejections_detected_success_rate", 0) >= 1,
          "success rate still detects (Envoy counts detections when not enforcing)")


def test_success_rate_needs_minimum_hosts():
    """Four hosts are fewer than success_rate_minimum_hosts (5): nothing is ejected, although with
    rates 100, 100, 100 and 50 and a factor of 1.0 the flaky host would be an outlier (limit 65.8)."""
    flaky = _flaky("flaky")
    good = [HttpUpstream("g%d" % i) for i in range(3)]
    try:
        cfg, port = _cfg([flaky.port] + [g.port for g in good], {"interval": "0.1s", "success_rate_request_volume": 5,
                                                                          "success_rate_stdev_factor": 1000})
        with Weft(cfg, concurrency=1) as w:
            deadline = time.monotonic() + 0.6
            while time.monotonic() < deadline:
                request(port, "/o")
            eq(_stat(w, "outlier_detection.ejections_detected_success_rate"), 0, "no detection")
            eq(_stat(w, "outlier_detection.ejections_active"), 0, "no ejection")
    finally:
        flaky.close()
        for g in good:
            g.close()


def test_local_origin_success_rate_refused():
    cfg, _ = _cfg([free_port()], {"split_external_local_origin_errors": True, "enforcing_local_origin_success_rate": 100})
    path = write_file(tmp_path("o.yaml"), cfg)
    p = run_weft(["validate", path])
    eq(p.returncode, 1, "refused")
    check("enforcing_local_origin_success_rate is not supported yet" in p.stderr, "error: %s", p.stderr)
    check(p.stderr.startswith("weft: %s:" % path), "file:line:column: %s", p.stderr)
