"""STRICT_DNS and LOGICAL_DNS clusters re-resolve their names every dns_refresh_rate (issue 3).

The names resolve through a hosts file the test controls: weft runs in its own mount namespace
(`unshare -rm`) where a private file is bind-mounted over /etc/hosts, so the system resolver
that weft's resolver thread calls (getaddrinfo) reads what the test writes. The upstreams
listen on other loopback addresses (127.0.0.2, 127.0.0.3) on one shared port, so the port in
the cluster stays the same while the name moves between them."""

import contextlib
import json
import os
import re
import subprocess
import threading
import time

import configs as C
from harness import (HttpUpstream, Weft, check, eq, free_port, request, run_weft, tmp_path, wait_for,
                     write_file)

A, B = "127.0.0.2", "127.0.0.3"
NAME = "svc.test"


class HostsFile:
    """A hosts file for a weft in its own mount namespace. Rewritten in place with one
    fixed-size pwrite: the bind mount follows the inode, and a reader never sees it empty."""
    SIZE = 2048

    def __init__(self, entries):
        self.path = tmp_path("hosts")
        write_file(self.path, b" " * self.SIZE)
        self.set(entries)

    def set(self, entries):
        """entries: [(ip, name)] in the order the resolver should return them."""
        text = "127.0.0.1 localhost\n" + "".join("%s %s\n" % e for e in entries)
        data = (text + "#" + " " * self.SIZE)[:self.SIZE - 1] + "\n"
        fd = os.open(self.path, os.O_WRONLY)
        try:
            eq(os.pwrite(fd, data.encode(), 0), self.SIZE, "hosts file write")
        finally:
            os.close(fd)

    def wrap(self):
        """The command prefix that runs weft with this file as its /etc/hosts."""
        return ["unshare", "-rm", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', self.path]


def _check_namespaces():
    p = subprocess.run(["unshare", "-rm", "sh", "-c", "mount --bind /dev/null /etc/hosts"],
                       capture_output=True, text=True)
    check(p.returncode == 0, "these tests need `unshare -rm` and bind mounts (user and mount "
          "namespaces): %s", p.stderr.strip())


def _dns_cluster(port, type="STRICT_DNS", refresh="0.1s", names=(NAME,), **extra):
    return C.cluster("backend", [C.lb_endpoint(port, host=n) for n in names], type=type,
                     dns_refresh_rate=refresh, dns_lookup_family="V4_ONLY", **extra)


def _cfg(cluster):
    port = free_port()
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
        C.route(C.prefix("/"), cluster="backend")])])], clusters=[cluster])
    return cfg, port


def _served(port, n):
    out = []
    for _ in range(n):
        r = request(port, "/")
        eq(r.status, 200, "status")
        out.append(r.header("x-upstream"))
    return out


def _hosts(w):
    """The cluster's hosts in /clusters."""
    return sorted(set(re.findall(r"^backend::([0-9.]+:\d+)::weight::", w.admin("/clusters").text, re.M)))


def _stat(w, name):
    return w.stats().get("cluster.backend." + name, 0)


@contextlib.contextmanager
def _world(entries, slow=None):
    """Upstreams "a" on 127.0.0.2 and "b" on 127.0.0.3 (one port for both; `slow` answers a's
    /slow), and a hosts file with `entries`. Yields (a, b, hosts, port)."""
    _check_namespaces()
    port = free_port()
    a, b = HttpUpstream("a", host=A, port=port), HttpUpstream("b", host=B, port=port)
    if slow:
        a.responses["/slow"] = slow
    try:
        yield a, b, HostsFile(entries), port
    finally:
        a.close()
        b.close()


def test_dns_strict_dns_follows_changes():
    with _world([(A, NAME)]) as (a, b, hosts, up_port):
        cfg, port = _cfg(_dns_cluster(up_port))
        with Weft(cfg, wrap=hosts.wrap()) as w:
            eq(_served(port, 4), ["a"] * 4, "the name resolves to a")
            eq(_hosts(w), ["%s:%d" % (A, up_port)], "/clusters")
            check("backend::%s:%d::hostname::svc.test\n" % (A, up_port) in w.admin("/clusters").text,
                  "/clusters names the host's DNS name")
            js = json.loads(w.admin("/clusters?format=json").body)
            eq([h.get("hostname") for h in js["cluster_statuses"][0]["host_statuses"]], [NAME], "hostname in JSON")
            eq(_stat(w, "membership_total"), 1, "membership_total")
            # unchanged results rebuild nothing
            wait_for(lambda: _stat(w, "update_no_rebuild") >= 3, 5, what="refreshes with the same answer")
            eq(_stat(w, "membership_change"), 0, "no membership change while the answer is the same")
            check("hosts change" not in w.stderr(), "no host change logged for an unchanged answer")

            hosts.set([(B, NAME)])
            wait_for(lambda: _served(port, 1) == ["b"], 5, what="traffic on the new address")
            eq(_served(port, 6), ["b"] * 6, "all traffic moved")
            eq(_hosts(w), ["%s:%d" % (B, up_port)], "/clusters shows the new host only")
            eq(_stat(w, "membership_change"), 1, "membership_change")
            eq(_stat(w, "membership_total"), 1, "membership_total")
            check(re.search(r"cluster 'backend': 'svc.test' now resolves to 127\.0\.0\.3 \(was 127\.0\.0\.2\)",
                            w.stderr()), "a change is logged at info")

            # every address of the name is a host
            hosts.set([(A, NAME), (B, NAME)])
            wait_for(lambda: _stat(w, "membership_total") == 2, 5, what="two hosts")
            eq(sorted(_served(port, 8)), ["a"] * 4 + ["b"] * 4, "round robin over both addresses")
            eq(_hosts(w), ["%s:%d" % (A, up_port), "%s:%d" % (B, up_port)], "/clusters")
            # the same set in another order changes nothing
            hosts.set([(B, NAME), (A, NAME)])
            n = _stat(w, "update_no_rebuild")
            wait_for(lambda: _stat(w, "update_no_rebuild") >= n + 2, 5, what="refreshes after reordering")
            eq(_stat(w, "membership_change"), 2, "a reordered answer is the same set of hosts")
            st = w.stats()
            check(st["cluster.backend.update_attempt"] >= st["cluster.backend.update_success"] >= 5,
                  "update_attempt / update_success: %r", st)
            eq(st["cluster.backend.update_failure"], 0, "update_failure")


def test_dns_several_names_with_weights():
    with _world([(A, "one.test"), (B, "two.test")]) as (a, b, hosts, up_port):
        cluster = C.cluster("backend", [C.lb_endpoint(up_port, weight=3, host="one.test"),
                                        C.lb_endpoint(up_port, weight=1, host="two.test")],
                            type="STRICT_DNS", dns_refresh_rate="0.1s", dns_lookup_family="V4_ONLY")
        cfg, port = _cfg(cluster)
        with Weft(cfg, wrap=hosts.wrap()) as w:
            eq(sorted(_served(port, 8)), ["a"] * 6 + ["b"] * 2, "weights from each lb_endpoint")
            # two.test moves onto one.test's address: one host, with both endpoints merged
            hosts.set([(A, "one.test"), (A, "two.test")])
            wait_for(lambda: _stat(w, "membership_total") == 1, 5, what="the duplicate address merged")
            eq(_served(port, 4), ["a"] * 4, "one host left")


def test_dns_failure_keeps_last_hosts():
    with _world([(A, NAME)]) as (a, b, hosts, up_port):
        cfg, port = _cfg(_dns_cluster(up_port, refresh="0.5s",
                                      dns_failure_refresh_rate={"base_interval": "0.05s", "max_interval": "0.2s"}))
        with Weft(cfg, wrap=hosts.wrap()) as w:
            eq(_served(port, 2), ["a", "a"], "before")
            hosts.set([])
            # after the first failure, retries come on dns_failure_refresh_rate (50, 100, 200 ms)
            wait_for(lambda: _stat(w, "update_failure") >= 3, 10, what="failed resolutions, retried on "
                     "dns_failure_refresh_rate")
            eq(_served(port, 4), ["a"] * 4, "the last hosts keep serving")
            eq(_stat(w, "membership_total"), 1, "membership_total")
            eq(_hosts(w), ["%s:%d" % (A, up_port)], "/clusters")
            check("cannot resolve 'svc.test'" in w.stderr(), "the failure is logged")
            eq(w.stderr().count("cannot resolve 'svc.test'"), 1, "logged once per run of failures")
            hosts.set([(B, NAME)])
            wait_for(lambda: _served(port, 1) == ["b"], 5, what="traffic on the new address after recovery")
            check("'svc.test' resolves again" in w.stderr(), "recovery logged")


def test_dns_logical_dns_first_address():
    release = threading.Event()

    def slow(req):
        release.wait(5)
        return (200, [], b"slow")
    with _world([(A, NAME), (B, NAME)], slow=slow) as (a, b, hosts, up_port):
        cfg, port = _cfg(_dns_cluster(up_port, type="LOGICAL_DNS"))
        with Weft(cfg, wrap=hosts.wrap()) as w:
            eq(_served(port, 4), ["a"] * 4, "only the first address takes traffic")
            eq(_hosts(w), ["%s:%d" % (A, up_port)], "one logical host")
            # a stream in flight on the old address finishes after the change
            result = {}
            t = threading.Thread(target=lambda: result.update(r=request(port, "/slow", timeout=10)))
            t.start()
            a.wait_requests(5)
            hosts.set([(B, NAME), (A, NAME)])
            wait_for(lambda: _served(port, 1) == ["b"], 5, what="new connections to the new first address")
            eq(_hosts(w), ["%s:%d" % (B, up_port)], "/clusters")
            release.set()
            t.join(10)
            eq((result["r"].status, result["r"].body), (200, b"slow"), "the request in flight on the old address")
            eq(_stat(w, "membership_change"), 1, "membership_change")
            # a change behind the first address is not a host change
            hosts.set([(B, NAME)])
            n = _stat(w, "update_no_rebuild")
            wait_for(lambda: _stat(w, "update_no_rebuild") >= n + 2, 5, what="refreshes")
            eq(_stat(w, "membership_change"), 1, "the first address did not change")
            eq(_served(port, 3), ["b"] * 3, "still the first address")


def test_dns_change_keeps_per_host_state():
    with _world([(A, NAME)]) as (a, b, hosts, up_port):
        cfg, port = _cfg(_dns_cluster(up_port, outlier_detection={
            "consecutive_5xx": 1, "base_ejection_time": "30s", "max_ejection_percent": 100},
            common_lb_config={"healthy_panic_threshold": {"value": 0}}))  # no panic: 503 when none is left
        with Weft(cfg, wrap=hosts.wrap()) as w:
            eq(request(port, "/status/503").status, 503, "a 5xx from a")
            wait_for(lambda: _stat(w, "outlier_detection.ejections_active") == 1, 5, what="a ejected")
            eq(request(port, "/").status, 503, "no host left")
            hosts.set([(A, NAME), (B, NAME)])
            wait_for(lambda: _stat(w, "membership_total") == 2, 5, what="b added")
            eq(_served(port, 6), ["b"] * 6, "a stays ejected across the DNS change; b takes the traffic")
            check("backend::%s:%d::health_flags::/failed_outlier_check" % (A, up_port) in w.admin("/clusters").text,
                  "/clusters shows a still ejected")


def test_dns_reload_keeps_answers_and_follows_rates():
    with _world([(A, NAME), (B, "other.test")]) as (a, b, hosts, up_port):
        port = free_port()

        def cfg(refresh, more=()):
            return C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
                C.route(C.prefix("/"), cluster="backend")])])], clusters=[_dns_cluster(up_port, refresh=refresh)] +
                list(more), admin_port=admin_port)
        admin_port = free_port()
        other = C.cluster("other", [C.lb_endpoint(up_port, host="other.test")], type="STRICT_DNS",
                          dns_refresh_rate="0.05s")
        with Weft(cfg("60s"), wrap=hosts.wrap()) as w:
            eq(_served(port, 1), ["a"], "before")
            hosts.set([(B, NAME), (B, "other.test")])
            # a reload keeps svc.test's cached answer (no refresh is due for 60 s) and resolves
            # the name of the cluster it adds
            w.reload(cfg("60s", [other]))
            wait_for(lambda: "config reloaded (SIGHUP)" in w.stderr(), 5, what="the reload")
            check(re.search(r"^other::%s:%d::hostname::other\.test$" % (re.escape(B), up_port),
                            w.admin("/clusters").text, re.M), "the new cluster's name resolved at the reload")
            eq(_served(port, 3), ["a"] * 3, "the reload used svc.test's cached answer")
            # a reload that shortens dns_refresh_rate re-arms the refresh at the new rate
            w.reload(cfg("0.1s", [other]))
            wait_for(lambda: _served(port, 1) == ["b"], 5, what="svc.test refreshed at the new rate")
            # a reload that drops the cluster forgets its name: no more attempts
            n = w.stat("cluster.other.update_attempt")
            wait_for(lambda: w.stat("cluster.other.update_attempt") > n + 2, 5, what="other.test refreshed")
            w.reload(cfg("0.1s"))
            wait_for(lambda: w.stderr().count("config reloaded (SIGHUP)") == 3, 5, what="the third reload")
            # its name forgotten (no more attempts), its stats go with it
            wait_for(lambda: not any(k.startswith("cluster.other.") for k in w.stats()), 5,
                     what="cluster other's stats to go")
            time.sleep(0.3)
            eq([k for k in w.stats() if k.startswith("cluster.other.")], [], "a removed cluster's name is not resolved any more")
            check(w.stat("cluster.backend.update_attempt") > 0, "the remaining cluster's figures stay")


def test_dns_requests_keep_flowing_during_refreshes():
    with _world([(A, NAME)]) as (a, b, hosts, up_port):
        cfg, port = _cfg(_dns_cluster(up_port, refresh="0.02s"))
        with Weft(cfg, concurrency=2, wrap=hosts.wrap()) as w:
            stop = threading.Event()
            errors, seen = [], set()

            def client():
                while not stop.is_set():
                    try:
                        r = request(port, "/")
                        if r.status != 200:
                            errors.append(r.status)
                        seen.add(r.header("x-upstream"))
                    except Exception as e:  # noqa: BLE001 - any failure counts
                        errors.append(repr(e))
            threads = [threading.Thread(target=client) for _ in range(3)]
            for t in threads:
                t.start()
            try:
                n0 = _stat(w, "update_attempt")
                for i in range(12):
                    hosts.set([(B if i % 2 == 0 else A, NAME)])
                    want = "b" if i % 2 == 0 else "a"
                    wait_for(lambda: _served(port, 1) == [want], 5, what="switch %d" % i)
                check(_stat(w, "update_attempt") - n0 >= 12, "resolutions ran all along")
            finally:
                stop.set()
                for t in threads:
                    t.join(10)
            eq(errors, [], "no request failed while names were re-resolved and hosts changed")
            eq(seen, {"a", "b"}, "both addresses served")
            check(_stat(w, "membership_change") >= 12, "membership_change")


def test_dns_change_does_not_reread_a_broken_file():
    with _world([(A, NAME)]) as (a, b, hosts, up_port):
        cfg, port = _cfg(_dns_cluster(up_port))
        with Weft(cfg, wrap=hosts.wrap()) as w:
            eq(_served(port, 1), ["a"], "before")
            w.write_config(cfg + "\nbogus_field: 1\n")
            wait_for(lambda: "refused" in w.stderr(), 5, what="the broken file refused")
            hosts.set([(B, NAME)])
            wait_for(lambda: _served(port, 1) == ["b"], 5, what="the DNS change applied to the last good config")
            eq(w.stderr().count("refused"), 1, "the broken file was read once, not again for the DNS change")


def _validate(cluster):
    path = tmp_path("dns.yaml")
    cfg, _ = _cfg(cluster)
    write_file(path, cfg)
    return run_weft(["validate", path])


def test_dns_config_errors():
    ok = C.cluster("backend", [C.lb_endpoint(8080, host="127.0.0.1")], type="LOGICAL_DNS",
                   dns_refresh_rate="0.001s", dns_failure_refresh_rate={"base_interval": "1s"})
    p = _validate(ok)
    eq(p.returncode, 0, "a LOGICAL_DNS cluster with refresh rates: %s" % p.stderr)
    cases = [
        (C.cluster("backend", [C.lb_endpoint(8080, host="127.0.0.1"), C.lb_endpoint(8081, host="127.0.0.1")],
                   type="LOGICAL_DNS"), "exactly one locality with exactly one lb_endpoint"),
        (C.cluster("backend", [C.lb_endpoint(8080, host="127.0.0.1")], type="STRICT_DNS",
                   dns_refresh_rate="0s"), "dns_refresh_rate: must be at least 1ms"),
        (C.cluster("backend", [C.lb_endpoint(8080, host="127.0.0.1")], type="STRICT_DNS",
                   dns_failure_refresh_rate={"max_interval": "1s"}), "base_interval is required"),
        (C.cluster("backend", [C.lb_endpoint(8080, host="127.0.0.1")], type="STRICT_DNS",
                   dns_failure_refresh_rate={"base_interval": "2s", "max_interval": "1s"}),
         "must be at least base_interval"),
        (C.cluster("backend", [C.lb_endpoint(8080, host="127.0.0.1")], type="STRICT_DNS", respect_dns_ttl=True),
         "respect_dns_ttl is not supported"),
        (C.cluster("backend", [C.lb_endpoint(8080, host="no-such-name.invalid")], type="STRICT_DNS"),
         "cannot resolve 'no-such-name.invalid'"),
    ]
    for cluster, want in cases:
        p = _validate(cluster)
        eq(p.returncode, 1, "refused: %s" % want)
        check(want in p.stderr and re.search(r"\.yaml:\d+:\d+: ", p.stderr), "expected %r with file:line:col, got %r",
              want, p.stderr)
