"""envoy.filters.http.local_ratelimit (issue 3): token buckets per listener and per route,
descriptors from route rate_limits (header value, client address), enforcement and
enable percentages, x-ratelimit-* headers, 429 + RL flag, stats, one bucket across workers."""

import json
import re
import threading
import time

import configs as C
from harness import HttpUpstream, Weft, check, eq, free_port, read_lines, request, run_weft, tmp_path, wait_for, write_file

ALWAYS = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}


def _lrl(bucket=None, **extra):
    tc = {"@type": C.LOCAL_RATELIMIT, "stat_prefix": "rl",
          "filter_enabled": ALWAYS, "filter_enforced": ALWAYS}
    if bucket:
        tc["token_bucket"] = bucket
    tc.update(extra)
    return tc


def _bucket(max_tokens, interval="60s", per_fill=None):
    b = {"max_tokens": max_tokens, "fill_interval": interval}
    if per_fill:
        b["tokens_per_fill"] = per_fill
    return b


def _cfg(up, lrl, routes=None, log=None, vhost_extra=None):
    port = free_port()
    routes = routes or [C.route(C.prefix("/"), cluster="backend")]
    cfg = C.bootstrap(listeners=[C.http_listener(
        port, [C.vhost("all", ["*"], routes, **(vhost_extra or {}))],
        access_log=[C.file_log(log, json_format={"code": "%RESPONSE_CODE%", "flags": "%RESPONSE_FLAGS%"})]
        if log else None,
        http_filters=C.http_filters(("envoy.filters.http.local_ratelimit", lrl)))],
        clusters=[C.cluster("backend", [up.port])])
    return cfg, port


def test_listener_bucket_limits_and_answers_429():
    log = tmp_path("rl.log")
    with HttpUpstream() as up:
        cfg, port = _cfg(up, _lrl(_bucket(3)), log=log)
        with Weft(cfg) as w:
            rs = [request(port, "/") for _ in range(5)]
            eq([r.status for r in rs], [200, 200, 200, 429, 429], "three tokens, then 429")
            eq(rs[3].body, b"local_rate_limited", "body")
            eq(len(up.requests), 3, "limited requests never reach the upstream")
            wait_for(lambda: len(read_lines(log)) == 5, 3, what="access log")
            eq(json.loads(read_lines(log)[4]), {"code": 429, "flags": "RL"}, "RL flag")
            eq((w.stat("rl.http_local_rate_limit.enabled"), w.stat("rl.http_local_rate_limit.ok"),
                w.stat("rl.http_local_rate_limit.rate_limited"), w.stat("rl.http_local_rate_limit.enforced")),
               (5, 3, 2, 2), "stats")


def test_bucket_refills():
    with HttpUpstream() as up:
        cfg, port = _cfg(up, _lrl(_bucket(2, "0.3s", 2)))
        with Weft(cfg):
            eq([request(port, "/").status for _ in range(3)], [200, 200, 429], "empty")
            time.sleep(0.35)
            eq([request(port, "/").status for _ in range(3)], [200, 200, 429], "refilled after fill_interval")


def test_x_ratelimit_headers_and_custom_status():
    with HttpUpstream() as up:
        cfg, port = _cfg(up, _lrl(_bucket(2), enable_x_ratelimit_headers="DRAFT_VERSION_03",
                                  status={"code": 503},
                                  response_headers_to_add=[C.add_header("x-limited", "yes")]))
        with Weft(cfg):
            r = request(port, "/")
            eq((r.status, r.header("x-ratelimit-limit"), r.header("x-ratelimit-remaining")), (200, "2", "1"),
               "headers on an allowed response")
            reset = int(r.header("x-ratelimit-reset"))
            check(0 < reset <= 60, "reset in seconds: %d", reset)
            eq(r.header("x-limited"), None, "response_headers_to_add only on limited responses")
            request(port, "/")
            r = request(port, "/")
            eq((r.status, r.header("x-ratelimit-remaining"), r.header("x-limited")), (503, "0", "yes"),
               "limited with the configured status")


def test_not_enforced_only_counts():
    with HttpUpstream() as up:
        lrl = _lrl(_bucket(1))
        del lrl["filter_enforced"]  # Envoy's default: 0%, counted but not enforced
        cfg, port = _cfg(up, lrl)
        with Weft(cfg) as w:
            eq([request(port, "/").status for _ in range(3)], [200, 200, 200], "all pass")
            eq((w.stat("rl.http_local_rate_limit.rate_limited"), w.stat("rl.http_local_rate_limit.enforced")),
               (2, 0), "counted, not enforced")


def test_disabled_by_default():
    with HttpUpstream() as up:
        lrl = _lrl(_bucket(1))
        del lrl["filter_enabled"]
        cfg, port = _cfg(up, lrl)
        with Weft(cfg) as w:
            eq([request(port, "/").status for _ in range(3)], [200, 200, 200], "filter_enabled defaults to 0%")
            eq(w.stat("rl.http_local_rate_limit.enabled"), 0, "not enabled")


def test_per_route_bucket():
    with HttpUpstream() as up:
        per_route = {"envoy.filters.http.local_ratelimit": _lrl(_bucket(1))}
        routes = [C.route(C.prefix("/limited"), cluster="backend", typed_per_filter_config=per_route),
                  C.route(C.prefix("/"), cluster="backend")]
        cfg, port = _cfg(up, {"@type": C.LOCAL_RATELIMIT, "stat_prefix": "rl"}, routes=routes)
        with Weft(cfg):
            eq([request(port, "/limited").status for _ in range(2)], [200, 429], "the route's own bucket")
            eq([request(port, "/free").status for _ in range(5)], [200] * 5, "no limit on other routes")


def test_descriptors_per_header_value_and_client_address():
    with HttpUpstream() as up:
        rate_limits = [{"actions": [{"request_headers": {"header_name": "x-user", "descriptor_key": "user"}}]}]
        lrl = _lrl(_bucket(100), descriptors=[
            {"entries": [{"key": "user", "value": "alice"}], "token_bucket": _bucket(1)},
            {"entries": [{"key": "remote_address", "value": "127.0.0.7"}], "token_bucket": _bucket(2)}])
        routes = [C.route(C.prefix("/ip"), cluster="backend",
                          action={"rate_limits": [{"actions": [{"remote_address": {}}]}]}),
                  C.route(C.prefix("/"), cluster="backend", action={"rate_limits": rate_limits})]
        cfg, port = _cfg(up, lrl, routes=routes)  # use_remote_address false: the XFF client counts
        with Weft(cfg):
            alice = {"x-user": "alice"}
            eq([request(port, "/", headers=alice).status for _ in range(2)], [200, 429], "alice has 1 token")
            eq([request(port, "/", headers={"x-user": "bob"}).status for _ in range(3)], [200] * 3,
               "bob matches no descriptor: the default bucket")
            eq([request(port, "/").status for _ in range(2)], [200, 200], "no header: no descriptor")
            xff = {"x-forwarded-for": "127.0.0.7"}
            eq([request(port, "/ip", headers=xff).status for _ in range(3)], [200, 200, 429],
               "the client address descriptor")
            eq(request(port, "/ip", headers={"x-forwarded-for": "127.0.0.8"}).status, 200, "another client")


def test_one_bucket_across_workers():
    with HttpUpstream() as up:
        cfg, port = _cfg(up, _lrl(_bucket(10)))
        with Weft(cfg, concurrency=2):
            codes = []
            lock = threading.Lock()

            def burst():
                for _ in range(10):
                    s = request(port, "/").status
                    with lock:
                        codes.append(s)
            ts = [threading.Thread(target=burst) for _ in range(4)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(20)
            eq(len(codes), 40, "all answered")
            eq(codes.count(200), 10, "exactly max_tokens allowed, whichever worker took them")


def test_bad_ratelimit_config_refused():
    with HttpUpstream() as up:
        cases = [({"@type": C.LOCAL_RATELIMIT}, "stat_prefix is required"),
                 (_lrl(_bucket(1, "0.01s")), "fill_interval is required, at least 50ms"),
                 (_lrl(_bucket(0)), "max_tokens must be at least 1"),
                 (_lrl(descriptors=[{"entries": [{"key": "k", "value": "v"}]}]), "a descriptor needs a token_bucket")]
        for i, (lrl, msg) in enumerate(cases):
            cfg, _ = _cfg(up, lrl)
            p = run_weft(["validate", write_file(tmp_path("rl%d.yaml" % i), cfg)])
            eq(p.returncode, 1, "refused: %s" % msg)
            check(msg in p.stderr and re.search(r"\.yaml:\d+:\d+: ", p.stderr), "error: %s", p.stderr)
        port = free_port()
        cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
            C.route(C.prefix("/"), direct=(200, "ok"))])],
            http_filters=C.http_filters(("envoy.filters.http.local_ratelimit", None)))])
        p = run_weft(["validate", write_file(tmp_path("rl-name.yaml"), cfg)])
        eq(p.returncode, 1, "a name without typed_config is refused")
        check("needs a typed_config" in p.stderr, "error: %s", p.stderr)


def test_bucket_survives_a_reload_unless_its_settings_change():
    """A reload (or a rebuild after a DNS change) keeps an emptied bucket empty: clients do not
    get a full bucket again because the config was read again. Changed settings: a new bucket."""
    with HttpUpstream() as up:
        cfg, port = _cfg(up, _lrl(_bucket(2)))
        with Weft(cfg) as w:
            eq([request(port, "/").status for _ in range(3)], [200, 200, 429], "emptied")
            w.reload(cfg)
            wait_for(lambda: "config reloaded" in w.stderr(), 3, what="the reload")
            eq(request(port, "/").status, 429, "still empty after re-reading the same config")
            w.reload(str(cfg).replace("max_tokens: 2", "max_tokens: 3"))
            wait_for(lambda: request(port, "/").status == 200, 3, what="a new, full bucket (3 tokens)")
