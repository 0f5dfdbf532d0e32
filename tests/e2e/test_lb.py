"""Load-balancing policies and route hash policies (issue 3): LEAST_REQUEST, RANDOM, RING_HASH,
MAGLEV, and hashing on a header, a cookie (generated with a ttl), the source IP and a query
parameter."""

import math
import threading
import time

import configs as C
from harness import HttpUpstream, Weft, check, eq, free_port, request, wait_for


def _cfg(ups, lb_policy, hash_policy=None, cluster_extra=None):
    port = free_port()
    action = {"hash_policy": hash_policy} if hash_policy else {}
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
        C.route(C.prefix("/"), cluster="backend", action=action)])])],
        clusters=[C.cluster("backend", [u.port for u in ups], lb_policy=lb_policy, **(cluster_extra or {}))])
    return cfg, port


def _who(port, path="/", headers=None):
    r = request(port, path, headers=headers)
    eq(r.status, 200, "status")
    return r.header("x-upstream")


def _ups(n):
    return [HttpUpstream("u%d" % i) for i in range(n)]


def _close(ups):
    for u in ups:
        u.close()


def test_random_spreads_over_all_hosts():
    ups = _ups(3)
    try:
        cfg, port = _cfg(ups, "RANDOM")
        with Weft(cfg):
            n = 300
            counts = {}
            for _ in range(n):
                w = _who(port)
                counts[w] = counts.get(w, 0) + 1
            sd = math.sqrt(n * (1 / 3) * (2 / 3))
            eq(sorted(counts), ["u0", "u1", "u2"], "every host gets traffic")
            for w, k in counts.items():
                check(abs(k - n / 3) < 4.5 * sd, "%s got %d of %d (expected %d +- %.0f)", w, k, n, n / 3, 4.5 * sd)
    finally:
        _close(ups)


def test_least_request_avoids_the_busy_host():
    """While the slow host holds requests, a new request goes there only when all of its
    choice_count (4) random candidates are the slow host: 1/16 of the time. Over 19 requests
    after the first (which ties), the slow host's count is about 0.5 + 19/16; 6 or more would
    be over 4 standard deviations."""
    slow, fast = HttpUpstream("slow"), HttpUpstream("fast")

    def stall(req):
        time.sleep(8.0)  # longer than the test's requests take, so the slow host stays busy
        return (200, [("content-type", "text/plain")], b"slow")
    slow.responses["/x"] = stall
    try:
        cfg, port = _cfg([slow, fast], "LEAST_REQUEST",
                         cluster_extra={"least_request_lb_config": {"choice_count": 4}})
        with Weft(cfg, concurrency=1):
            got = []
            lock = threading.Lock()

            def one(done):
                r = request(port, "/x", timeout=12)
                with lock:
                    got.append(r.header("x-upstream"))
                done.set()
            ts = []
            for _ in range(20):
                # the next request starts once this one is answered (it went to the fast host)
                # or has reached the slow host, never on a timer: at each pick the fast host
                # is idle and the slow one holds every request sent to it, however slow the
                # machine is
                done = threading.Event()
                before = len(slow.requests)
                t = threading.Thread(target=one, args=(done,))
                t.start()
                ts.append(t)
                wait_for(lambda: done.is_set() or len(slow.requests) > before, 10, what="request placed")
            for t in ts:
                t.join(15)
            eq(len(got), 20, "all requests answered")
            check(got.count("slow") <= 5, "the idle host should take nearly all requests: %s", got)
    finally:
        slow.close()
        fast.close()


def _sticky(policy, hash_policy, key_header=None, key_query=None):
    ups = _ups(4)
    try:
        cfg, port = _cfg(ups, policy, hash_policy)
        with Weft(cfg):
            first = {}
            for user in range(40):
                for _ in range(3):
                    if key_header:
                        w = _who(port, headers={key_header: "user-%d" % user})
                    else:
                        w = _who(port, "/p?%s=user-%d&other=%d" % (key_query, user, _))
                    check(first.setdefault(user, w) == w, "user %d moved from %s to %s", user, first[user], w)
            used = set(first.values())
            check(len(used) >= 3, "40 keys should spread over the hosts, got %s", used)
    finally:
        _close(ups)


def test_ring_hash_header_is_sticky():
    _sticky("RING_HASH", [{"header": {"header_name": "x-user"}}], key_header="x-user")


def test_maglev_query_parameter_is_sticky():
    _sticky("MAGLEV", [{"query_parameter": {"name": "session"}}], key_query="session")


def test_ring_hash_keeps_keys_when_a_host_leaves():
    """Remove one of 4 hosts (reload): the keys of the other 3 stay where they were."""
    ups = _ups(4)
    try:
        port = free_port()
        admin = free_port()

        def cfg(hosts):
            return C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
                C.route(C.prefix("/"), cluster="backend",
                        action={"hash_policy": [{"header": {"header_name": "x-user"}}]})])])],
                clusters=[C.cluster("backend", [u.port for u in hosts], lb_policy="RING_HASH",
                                    ring_hash_lb_config={"minimum_ring_size": 2048})], admin_port=admin)
        with Weft(cfg(ups)) as w:
            before = {u: _who(port, headers={"x-user": "k%d" % u}) for u in range(200)}
            w.reload(cfg(ups[:3]))
            time.sleep(0.6)
            after = {u: _who(port, headers={"x-user": "k%d" % u}) for u in range(200)}
        kept = [u for u in before if before[u] != "u3"]
        moved = [u for u in kept if after[u] != before[u]]
        eq(moved, [], "keys not on the removed host keep their host")
        check(all(after[u] != "u3" for u in after), "nothing goes to the removed host")
        check(len(kept) >= 200 * (1 - 1 / 4) * 0.8, "the removed host held about a quarter: %d kept", len(kept))
    finally:
        _close(ups)


def test_cookie_hash_generated_with_ttl():
    ups = _ups(3)
    try:
        cfg, port = _cfg(ups, "RING_HASH", [{"cookie": {"name": "sticky", "ttl": "3600s", "path": "/"}}])
        with Weft(cfg):
            r = request(port, "/")
            sc = r.header("set-cookie")
            check(sc and sc.startswith('sticky="') and "Max-Age=3600" in sc and "Path=/" in sc and "HttpOnly" in sc,
                  "a generated cookie is set: %r", sc)
            cookie = sc.split(";")[0]
            first = r.header("x-upstream")
            for _ in range(10):
                r = request(port, "/", headers={"Cookie": cookie})
                eq(r.header("x-upstream"), first, "requests with the cookie stick to one host")
                eq(r.header("set-cookie"), None, "no new cookie once the client has one")
    finally:
        _close(ups)


def test_source_ip_hash():
    ups = _ups(3)
    try:
        cfg, port = _cfg(ups, "MAGLEV", [{"connection_properties": {"source_ip": True}}])
        with Weft(cfg):
            seen = {_who(port) for _ in range(20)}
            eq(len(seen), 1, "one client address, one host: %s" % seen)
    finally:
        _close(ups)


def test_lb_config_must_match_policy():
    ups = _ups(1)
    try:
        cfg, _ = _cfg(ups, "ROUND_ROBIN", cluster_extra={"maglev_lb_config": {"table_size": 65537}})
        from harness import run_weft, tmp_path, write_file
        p = run_weft(["validate", write_file(tmp_path("lb.yaml"), cfg)])
        eq(p.returncode, 1, "maglev_lb_config with ROUND_ROBIN is refused")
        check("maglev_lb_config applies to lb_policy MAGLEV only" in p.stderr, "error: %s", p.stderr)
        cfg, _ = _cfg(ups, "MAGLEV", cluster_extra={"maglev_lb_config": {"table_size": 65536}})
        p = run_weft(["validate", write_file(tmp_path("lb2.yaml"), cfg)])
        eq(p.returncode, 1, "a table size that is not prime is refused")
        check("must be a prime number" in p.stderr, "error: %s", p.stderr)
    finally:
        _close(ups)
