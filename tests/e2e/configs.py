"""Builders for Envoy v3 bootstrap configs, emitted as block YAML (what users write).

Each builder returns plain dicts; bootstrap() turns them into a Bootstrap: the YAML text (a str)
that also carries .admin_port, .listen_ports and .doc (the dict). Typical use:

    port = free_port()
    cfg = bootstrap(
        listeners=[http_listener(port, [vhost("all", ["*"], [route(prefix("/"), cluster="backend")])])],
        clusters=[cluster("backend", [up.port])])
    with Weft(cfg) as w:
        ...
"""

import json
import re

from harness import LOCAL, free_port

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
STDOUT_LOG = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"


# ---------------------------------------------------------------------------------------------
# YAML emitter (block style; strings quoted JSON-style only when a plain scalar would be unsafe)

_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./\-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in _RESERVED:
        return s
    return json.dumps(s)


def _emit(obj, ind, out):
    sp = " " * ind
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = _scalar(k)
            if isinstance(v, dict) and v:
                out.append("%s%s:" % (sp, key))
                _emit(v, ind + 2, out)
            elif isinstance(v, list) and v:
                out.append("%s%s:" % (sp, key))
                _emit(v, ind + 2, out)
            elif isinstance(v, dict):
                out.append("%s%s: {}" % (sp, key))
            elif isinstance(v, list):
                out.append("%s%s: []" % (sp, key))
            else:
                out.append("%s%s: %s" % (sp, key, _scalar(v)))
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, (dict, list)) and item:
                sub = []
                _emit(item, ind + 2, sub)
                sub[0] = sp + "- " + sub[0][ind + 2:]
                out.extend(sub)
            elif isinstance(item, dict):
                out.append(sp + "- {}")
            elif isinstance(item, list):
                out.append(sp + "- []")
            else:
                out.append(sp + "- " + _scalar(item))
    else:
        out.append(sp + _scalar(obj))


def to_yaml(obj):
    out = []
    _emit(obj, 0, out)
    return "\n".join(out) + "\n"


class Bootstrap(str):
    """The YAML text, plus .admin_port, .listen_ports and .doc."""
    admin_port = None
    listen_ports = ()
    doc = None


def bootstrap(listeners=(), clusters=(), admin_port=None, admin=True, extra=None):
    """A bootstrap with static listeners and clusters and (unless admin=False) an admin
    address on 127.0.0.1 (a fresh port unless given)."""
    doc = {}
    if admin:
        admin_port = admin_port or free_port()
        doc["admin"] = {"address": address(admin_port)}
    sr = {}
    if listeners:
        sr["listeners"] = list(listeners)
    if clusters:
        sr["clusters"] = list(clusters)
    doc["static_resources"] = sr
    if extra:
        doc.update(extra)
    b = Bootstrap(to_yaml(doc))
    b.admin_port = admin_port if admin else None
    b.listen_ports = [l["address"]["socket_address"]["port_value"] for l in listeners]
    b.doc = doc
    return b


# ---------------------------------------------------------------------------------------------
# building blocks

def address(port, host=LOCAL):
    return {"socket_address": {"address": host, "port_value": port}}


def lb_endpoint(port, weight=None, host=LOCAL):
    e = {"endpoint": {"address": address(port, host)}}
    if weight is not None:
        e["load_balancing_weight"] = weight
    return e


def cluster(name, endpoints=(), lb_policy="ROUND_ROBIN", connect_timeout="1s", type="STATIC", **extra):
    """endpoints: ports, or (port, weight) pairs, or lb_endpoint() dicts. Empty: no endpoints."""
    lbe = []
    for e in endpoints:
        if isinstance(e, dict):
            lbe.append(e)
        elif isinstance(e, tuple):
            lbe.append(lb_endpoint(e[0], e[1]))
        else:
            lbe.append(lb_endpoint(e))
    c = {"name": name, "type": type, "connect_timeout": connect_timeout, "lb_policy": lb_policy,
         "load_assignment": {"cluster_name": name}}
    if lbe:
        c["load_assignment"]["endpoints"] = [{"lb_endpoints": lbe}]
    c.update(extra)
    return c


# -- route matches --

def prefix(p, **extra):
    return dict({"prefix": p}, **extra)


def path(p, **extra):
    return dict({"path": p}, **extra)


def regex(r, **extra):
    return dict({"safe_regex": {"regex": r}}, **extra)


def hdr(name, **m):
    """A header matcher: hdr("x-env", exact="prod"), hdr("x", present=True), hdr("x", regex="..."),
    with invert=True for invert_match."""
    d = {"name": name}
    invert = m.pop("invert", False)
    if "present" in m:
        d["present_match"] = m.pop("present")
    if "regex" in m:
        d["string_match"] = {"safe_regex": {"regex": m.pop("regex")}}
    if m:
        d["string_match"] = dict(d.get("string_match", {}), **m)
    if invert:
        d["invert_match"] = True
    return d


def qp(name, **m):
    """A query parameter matcher: qp("debug", exact="1") or qp("trace", present=True)."""
    d = {"name": name}
    if "present" in m:
        d["present_match"] = m.pop("present")
    if m:
        d["string_match"] = m
    return d


# -- routes --

def route(match, cluster=None, redirect=None, direct=None, action=None, name=None, **extra):
    """A route. Exactly one of: cluster (name, plus route-action fields in action={}),
    redirect={...}, direct=(status, body) or direct={...}. extra: route-level fields such as
    request_headers_to_add."""
    r = {}
    if name:
        r["name"] = name
    r["match"] = match
    if cluster is not None or action is not None:
        a = {}
        if cluster is not None:
            a["cluster"] = cluster
        a.update(action or {})
        r["route"] = a
    elif redirect is not None:
        r["redirect"] = redirect
    elif direct is not None:
        if isinstance(direct, tuple):
            status, body = direct
            d = {"status": status}
            if body is not None:
                d["body"] = {"inline_string": body}
            direct = d
        r["direct_response"] = direct
    r.update(extra)
    return r


def direct(status, body=None):
    return (status, body)


def weighted(*pairs):
    """weighted_clusters action from (cluster, weight) pairs."""
    return {"weighted_clusters": {"clusters": [{"name": c, "weight": w} for c, w in pairs]}}


def add_header(key, value, append_action=None, append=None):
    h = {"header": {"key": key, "value": value}}
    if append_action is not None:
        h["append_action"] = append_action
    if append is not None:
        h["append"] = append
    return h


def vhost(name, domains, routes, **extra):
    v = {"name": name, "domains": list(domains), "routes": list(routes)}
    v.update(extra)
    return v


def route_config(vhosts, name="local_route", **extra):
    rc = {"name": name, "virtual_hosts": list(vhosts)}
    rc.update(extra)
    return rc


# -- access logs --

def file_log(path, json_format=None, text=None):
    tc = {"@type": FILE_LOG, "path": path}
    if json_format is not None:
        tc["log_format"] = {"json_format": json_format}
    elif text is not None:
        tc["log_format"] = {"text_format_source": {"inline_string": text}}
    return {"name": "envoy.access_loggers.file", "typed_config": tc}


def stdout_log(json_format=None, text=None):
    tc = {"@type": STDOUT_LOG}
    if json_format is not None:
        tc["log_format"] = {"json_format": json_format}
    elif text is not None:
        tc["log_format"] = {"text_format_source": {"inline_string": text}}
    return {"name": "envoy.access_loggers.stdout", "typed_config": tc}


FLAGS_JSON = {"code": "%RESPONSE_CODE%", "flags": "%RESPONSE_FLAGS%", "path": "%REQ(:PATH)%",
              "method": "%REQ(:METHOD)%", "upstream": "%UPSTREAM_HOST%", "duration": "%DURATION%"}


# -- listeners --

def hcm(rc, stat_prefix="ingress", access_log=None, **extra):
    """HttpConnectionManager typed_config. rc: route_config() dict or a list of vhosts."""
    if isinstance(rc, list):
        rc = route_config(rc)
    tc = {"@type": HCM, "stat_prefix": stat_prefix, "codec_type": "AUTO", "route_config": rc,
          "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}]}
    if access_log:
        tc["access_log"] = list(access_log)
    tc.update(extra)
    return tc


FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
LOCAL_RATELIMIT = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
CORS = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"
CORS_POLICY = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"


def http_filters(*filters):
    """http_filters: the given (name, typed_config) pairs, then the router."""
    out = [{"name": n, "typed_config": tc} if tc is not None else {"name": n} for n, tc in filters]
    out.append({"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}})
    return out


def http_listener(port, rc, name="ingress", stat_prefix="ingress", access_log=None, **hcm_extra):
    return {"name": name, "address": address(port),
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                            "typed_config": hcm(rc, stat_prefix, access_log, **hcm_extra)}]}]}


def tcp_listener(port, cluster_name, name="tcp", stat_prefix="tcp", **extra):
    tc = {"@type": TCP_PROXY, "stat_prefix": stat_prefix, "cluster": cluster_name}
    tc.update(extra)
    return {"name": name, "address": address(port),
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": tc}]}]}


def simple(upstream_ports, port=None, access_log=None, cluster_extra=None, route_action=None, **hcm_extra):
    """One HTTP listener (returned port), every path to cluster "backend" over upstream_ports.
    Returns (Bootstrap, port)."""
    port = port or free_port()
    if isinstance(upstream_ports, int):
        upstream_ports = [upstream_ports]
    cfg = bootstrap(
        listeners=[http_listener(port, [vhost("all", ["*"], [route(prefix("/"), cluster="backend",
                                                                    action=route_action)])],
                                 access_log=access_log, **hcm_extra)],
        clusters=[cluster("backend", upstream_ports, **(cluster_extra or {}))])
    return cfg, port


def directs(routes_by_body, port=None, domains=("*",), **hcm_extra):
    """A listener whose routes are direct responses (200, body) keyed by match: [(match, body)].
    Handy for routing tests: the body names the route that matched. Returns (Bootstrap, port)."""
    port = port or free_port()
    routes = [route(m, direct=(200, body)) for m, body in routes_by_body]
    cfg = bootstrap(listeners=[http_listener(port, [vhost("all", list(domains), routes)], **hcm_extra)])
    return cfg, port


# ---- Istio YAML (weft control / weft translate inputs) ----

SERVICE_ENTRY = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: default}}
spec:
  hosts: [{name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: {port}, name: {pname}, protocol: {protocol}}}]
  {where}
"""


def service_entry(name, port, upstream=None, app=None, protocol="HTTP"):
    """A ServiceEntry NAME.default.svc.cluster.local on PORT (of PROTOCOL, the port named after
    it): an inline endpoint 127.0.0.1:upstream, or the workloads labelled app: APP."""
    pname = protocol.lower()
    where = ("endpoints: [{address: 127.0.0.1, ports: {%s: %d}}]" % (pname, upstream) if upstream
             else "workloadSelector: {labels: {app: %s}}" % app)
    return SERVICE_ENTRY.format(name=name, port=port, pname=pname, protocol=protocol, where=where)
