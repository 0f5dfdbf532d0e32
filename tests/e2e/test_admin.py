"""Admin interface (Envoy's paths and formats): /ready, /stats (text, json), /stats/prometheus,
/config_dump, /clusters, /listeners, POST /drain_listeners, POST /quitquitquit."""

import json
import math
import re

import configs as C
from harness import (Client, HttpUpstream, RawConn, Weft, check, connect_refused, eq, free_port,
                     request, wait_for)


def _cfg(ups, port=None, listener_name="main_listener", weights=None):
    port = port or free_port()
    eps = [(u.port, w) for u, w in zip(ups, weights)] if weights else [u.port for u in ups]
    cfg = C.bootstrap(listeners=[C.http_listener(port, [C.vhost("all", ["*"], [
        C.route(C.prefix("/"), cluster="backend")])], name=listener_name)],
        clusters=[C.cluster("backend", eps)])
    return cfg, port


def test_ready_live():
    with HttpUpstream("up") as up:
        cfg, _ = _cfg([up])
        with Weft(cfg) as w:
            r = w.admin("/ready")
            eq((r.status, r.text.strip()), (200, "LIVE"), "GET /ready")


def test_stats_exact_counts():
    with HttpUpstream("up") as up:
        cfg, port = _cfg([up])
        with Weft(cfg) as w:
            with Client(port) as cl:
                for i in range(7):
                    eq(cl.get("/ok/%d" % i).status, 200, "ok request")
                for i in range(3):
                    eq(cl.get("/status/503").status, 503, "upstream 503")
                eq(cl.get("/status/404").status, 404, "upstream 404")
            want = {
                "http.ingress.downstream_rq_total": 11,
                "http.ingress.downstream_rq_2xx": 7,
                "http.ingress.downstream_rq_4xx": 1,
                "http.ingress.downstream_rq_5xx": 3,
                "http.ingress.downstream_cx_total": 1,
                "cluster.backend.upstream_rq_total": 11,
                "cluster.backend.upstream_rq_2xx": 7,
                "cluster.backend.upstream_rq_5xx": 3,
                "cluster.backend.upstream_rq_200": 7,
                "cluster.backend.upstream_rq_503": 3,
                "cluster.backend.upstream_rq_404": 1,
                "cluster.backend.upstream_cx_total": 1,
                "listener.127.0.0.1_%d.downstream_cx_total" % port: 1,
            }

            def diff():
                s = w.stats()
                return {k: (v, s.get(k)) for k, v in want.items() if s.get(k) != v}
            try:
                wait_for(lambda: not diff(), 3, what="counters")
            except AssertionError:
                raise AssertionError("counters (expected, got): %s" % diff())


def test_stats_gauges():
    with HttpUpstream("a") as a, HttpUpstream("b") as b:
        cfg, port = _cfg([a, b])
        with Weft(cfg) as w:
            eq(w.stat("cluster.backend.membership_total", None), 2, "cluster.backend.membership_total")
            eq(w.stat("cluster.backend.membership_healthy", None), 2, "cluster.backend.membership_healthy")
            with RawConn(port) as c:
                eq(c.get("/").status, 200, "request")
                eq(w.stat("http.ingress.downstream_cx_active", None), 1, "downstream_cx_active with one open connection")
            wait_for(lambda: w.stat("http.ingress.downstream_cx_active", None) == 0, 3,
                     what="http.ingress.downstream_cx_active back to 0")


def test_stats_json():
    with HttpUpstream("up") as up:
        cfg, port = _cfg([up])
        with Weft(cfg) as w:
            for _ in range(4):
                request(port, "/")
            r = w.admin("/stats?format=json")
            eq(r.status, 200, "GET /stats?format=json")
            doc = json.loads(r.body)
            check(isinstance(doc.get("stats"), list), "Envoy's JSON stats are {\"stats\": [...]}, got %r", r.body[:200])
            vals = {s["name"]: s["value"] for s in doc["stats"] if "name" in s and "value" in s}
            eq(vals.get("cluster.backend.upstream_rq_total"), 4, "cluster.backend.upstream_rq_total in JSON")
            eq(vals.get("http.ingress.downstream_rq_total"), 4, "http.ingress.downstream_rq_total in JSON")


# ---------------------------------------------------------------------------------------------
# Prometheus

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(r"^(%s)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+-?\d+)?$" % _NAME)
_LABEL = re.compile(r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"[ \t]*(?:,|$)')
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def _value(s):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    if not re.match(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$", s):
        raise ValueError(s)
    return float(s)


def _labels(s):
    out, pos = {}, 0
    s = s or ""
    while pos < len(s):
        m = _LABEL.match(s, pos)
        if not m or m.end() == pos:
            raise ValueError("bad label set at %r" % s[pos:])
        if m.group(1) in out:
            raise ValueError("duplicate label %s" % m.group(1))
        out[m.group(1)] = m.group(2)
        pos = m.end()
    return out


def parse_prometheus(text):
    """Validate Prometheus text exposition format; return (types, samples, errors).
    samples: [(name, labels dict, value)]."""
    types, samples, errors = {}, [], []
    seen, closed = set(), set()
    current = None
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                fam = parts[2]
                typ = parts[3].strip() if len(parts) > 3 else ""
                if typ not in _TYPES:
                    errors.append("line %d: bad TYPE %r" % (n, line))
                if fam in types:
                    errors.append("line %d: second TYPE line for %s" % (n, fam))
                if fam in closed or any(s[0] == fam for s in samples):
                    errors.append("line %d: TYPE for %s after its samples" % (n, fam))
                types[fam] = typ
                if current:
                    closed.add(current)
                current = fam
            continue
        m = _SAMPLE.match(line)
        if not m:
            errors.append("line %d: not a valid sample: %r" % (n, line))
            continue
        name, lbl, val = m.group(1), m.group(2), m.group(3)
        try:
            labels = _labels(lbl)
            v = _value(val)
        except ValueError as e:
            errors.append("line %d: %s: %r" % (n, e, line))
            continue
        fam = name
        if name not in types:
            for suf in ("_bucket", "_sum", "_count"):
                if name.endswith(suf) and types.get(name[:-len(suf)]) in ("histogram", "summary"):
                    fam = name[:-len(suf)]
        if fam not in types:
            errors.append("line %d: sample %s without a preceding TYPE line" % (n, name))
        if fam != current:
            if fam in closed:
                errors.append("line %d: samples of %s are not grouped together" % (n, fam))
            if current:
                closed.add(current)
            current = fam
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            errors.append("line %d: duplicate sample %s" % (n, line))
        seen.add(key)
        samples.append((name, labels, v))
    # histograms
    for fam, typ in types.items():
        if typ != "histogram":
            continue
        series = {}
        for name, labels, v in samples:
            if name == fam + "_bucket":
                if "le" not in labels:
                    errors.append("%s bucket without le" % fam)
                    continue
                rest = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
                series.setdefault(rest, []).append((_value(labels["le"]), v))
        counts = {tuple(sorted(l.items())): v for name, l, v in samples if name == fam + "_count"}
        for rest in counts:
            if rest not in series:
                errors.append("%s%s: histogram without _bucket samples" % (fam, dict(rest)))
        sums = {tuple(sorted(l.items())) for name, l, v in samples if name == fam + "_sum"}
        for rest, buckets in series.items():
            les = [b[0] for b in buckets]
            if les != sorted(les):
                errors.append("%s%s: buckets not in ascending le order" % (fam, dict(rest)))
            if not les or les[-1] != math.inf:
                errors.append("%s%s: last bucket is not le=\"+Inf\"" % (fam, dict(rest)))
            vals = [b[1] for b in buckets]
            if any(b < a for a, b in zip(vals, vals[1:])):
                errors.append("%s%s: bucket counts not cumulative: %s" % (fam, dict(rest), vals))
            if rest not in counts:
                errors.append("%s%s: no _count" % (fam, dict(rest)))
            elif vals and counts[rest] != vals[-1]:
                errors.append("%s%s: _count %s != +Inf bucket %s" % (fam, dict(rest), counts[rest], vals[-1]))
            if rest not in sums:
                errors.append("%s%s: no _sum" % (fam, dict(rest)))
    return types, samples, errors


def _sample(samples, name, **labels):
    for n, l, v in samples:
        if n == name and all(l.get(k) == x for k, x in labels.items()):
            return v
    return None


def test_prometheus_format_and_values():
    with HttpUpstream("up") as up:
        cfg, port = _cfg([up])
        n = 6
        with Weft(cfg) as w:
            with Client(port) as cl:
                for i in range(n):
                    eq(cl.get("/p/%d" % i).status, 200, "request")

            def scrape():
                r = w.admin("/stats/prometheus")
                eq(r.status, 200, "GET /stats/prometheus")
                return parse_prometheus(r.text)

            types, samples, errors = scrape()
            check(not errors, "invalid Prometheus exposition:\n  %s", "\n  ".join(errors[:20]))
            eq(_sample(samples, "envoy_cluster_upstream_rq_total", envoy_cluster_name="backend"), n,
               'envoy_cluster_upstream_rq_total{envoy_cluster_name="backend"}')
            eq(_sample(samples, "envoy_http_downstream_rq_total", envoy_http_conn_manager_prefix="ingress"), n,
               'envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="ingress"}')
            eq(_sample(samples, "envoy_listener_downstream_cx_total", envoy_listener_address="127.0.0.1_%d" % port),
               1, "envoy_listener_downstream_cx_total")
            eq(types.get("envoy_cluster_upstream_rq_total"), "counter", "TYPE of envoy_cluster_upstream_rq_total")
            check(any(t == "gauge" for t in types.values()), "expected some gauges")
            hists = [f for f, t in types.items() if t == "histogram"]
            check(hists, "expected latency histograms (e.g. envoy_http_downstream_rq_time)")
            check("envoy_http_downstream_rq_time" in types, "envoy_http_downstream_rq_time histogram missing; got %s", hists)

            def hist_count():
                _, s, _ = scrape()
                return _sample(s, "envoy_http_downstream_rq_time_count", envoy_http_conn_manager_prefix="ingress") == n
            wait_for(hist_count, 7, what="envoy_http_downstream_rq_time_count == %d" % n)


def test_prometheus_response_code_class_tag():
    """Envoy's default tag extractors turn http.X.downstream_rq_2xx into
    envoy_http_downstream_rq_xx{envoy_response_code_class="2",...} (dashboards rely on it)."""
    with HttpUpstream("up") as up:
        cfg, port = _cfg([up])
        with Weft(cfg) as w:
            for i in range(3):
                request(port, "/")
            request(port, "/status/503")
            r = w.admin("/stats/prometheus")
            _, samples, _ = parse_prometheus(r.text)
            got = (_sample(samples, "envoy_http_downstream_rq_xx", envoy_http_conn_manager_prefix="ingress",
                           envoy_response_code_class="2"),
                   _sample(samples, "envoy_cluster_upstream_rq_xx", envoy_cluster_name="backend",
                           envoy_response_code_class="5"),
                   _sample(samples, "envoy_cluster_upstream_rq", envoy_cluster_name="backend",
                           envoy_response_code="503"))
            eq(got, (3, 1, 1), "envoy_http_downstream_rq_xx{class=2}, envoy_cluster_upstream_rq_xx{class=5}, "
               "envoy_cluster_upstream_rq{code=503}")


# ---------------------------------------------------------------------------------------------
# config_dump, clusters, listeners

def _contains(obj, needle):
    if isinstance(obj, dict):
        return any(_contains(v, needle) for v in obj.values())
    if isinstance(obj, list):
        return any(_contains(v, needle) for v in obj)
    return obj == needle


def test_config_dump():
    with HttpUpstream("up") as up:
        cfg, _ = _cfg([up], listener_name="dump_me_listener")
        with Weft(cfg) as w:
            r = w.admin("/config_dump")
            eq(r.status, 200, "GET /config_dump")
            doc = json.loads(r.body)
            configs = doc.get("configs")
            check(isinstance(configs, list), "Envoy's config dump is {\"configs\": [...]}")
            ls = [c for c in configs if str(c.get("@type", "")).endswith("ListenersConfigDump")]
            check(ls and _contains(ls[0], "dump_me_listener"),
                  "a ListenersConfigDump naming listener dump_me_listener")
            cs = [c for c in configs if str(c.get("@type", "")).endswith("ClustersConfigDump")]
            check(cs and _contains(cs[0], "backend"), "a ClustersConfigDump naming cluster backend")


def test_clusters_text():
    with HttpUpstream("a") as a, HttpUpstream("b") as b:
        cfg, _ = _cfg([a, b], weights=[3, 1])
        with Weft(cfg) as w:
            r = w.admin("/clusters")
            eq(r.status, 200, "GET /clusters")
            lines = set(r.text.splitlines())
            for u, wt in ((a, 3), (b, 1)):
                for want in ("backend::127.0.0.1:%d::health_flags::healthy" % u.port,
                             "backend::127.0.0.1:%d::weight::%d" % (u.port, wt)):
                    check(want in lines, "/clusters lacks %r:\n%s", want, r.text[:2000])


def test_clusters_json():
    with HttpUpstream("a") as a:
        cfg, _ = _cfg([a])
        with Weft(cfg) as w:
            r = w.admin("/clusters?format=json")
            eq(r.status, 200, "GET /clusters?format=json")
            doc = json.loads(r.body)
            names = [c.get("name") for c in doc.get("cluster_statuses", [])]
            check("backend" in names, "cluster_statuses should list backend, got %s", names)


def test_listeners():
    with HttpUpstream("a") as a:
        cfg, port = _cfg([a], listener_name="main_listener")
        with Weft(cfg) as w:
            r = w.admin("/listeners")
            eq(r.status, 200, "GET /listeners")
            check("main_listener::127.0.0.1:%d" % port in r.text.splitlines(),
                  "/listeners should have 'main_listener::127.0.0.1:%d', got %r", port, r.text)
            r = w.admin("/listeners?format=json")
            eq(r.status, 200, "GET /listeners?format=json")
            check(_contains(json.loads(r.body), "main_listener"), "JSON listeners name main_listener")


# ---------------------------------------------------------------------------------------------
# mutating endpoints

def test_drain_listeners():
    with HttpUpstream("a") as a:
        cfg, port = _cfg([a])
        with Weft(cfg) as w:
            eq(request(port, "/").status, 200, "before drain")
            r = w.admin_post("/drain_listeners")
            eq(r.status, 200, "POST /drain_listeners")
            wait_for(lambda: connect_refused(port), 3, what="the listener to stop accepting")
            check(w.alive(), "process keeps running after /drain_listeners")
            eq(w.admin("/stats").status, 200, "admin still answers")


def test_quitquitquit():
    with HttpUpstream("a") as a:
        cfg, _ = _cfg([a])
        with Weft(cfg) as w:
            r = w.admin_post("/quitquitquit")
            eq(r.status, 200, "POST /quitquitquit")
            eq(w.wait_exit(5), 0, "exit status after /quitquitquit")


def test_mutating_endpoint_needs_post():
    with HttpUpstream("a") as a:
        cfg, _ = _cfg([a])
        with Weft(cfg) as w:
            r = w.admin("/quitquitquit")
            check(r.status != 200, "GET /quitquitquit must not be accepted (Envoy requires POST), got 200")
            wait_for(lambda: True, 0.3)
            check(w.alive(), "GET /quitquitquit must not stop the process")
            eq(w.admin("/ready").status, 200, "still ready")


def test_unknown_admin_path_404():
    with HttpUpstream("a") as a:
        cfg, _ = _cfg([a])
        with Weft(cfg) as w:
            eq(w.admin("/no_such_admin_path").status, 404, "unknown admin path")
