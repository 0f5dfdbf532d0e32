"""Istio configuration: `weft validate` on Kubernetes-shaped Istio YAML, and `weft analyze`.

The contract: every error is "FILE:LINE:COL: field.path: message" on stderr, every error of a
file is printed (not only the first), exit status 1 on any error and 0 when clean, with
"FILE: OK" per clean file. `weft analyze` prints istioctl-style findings
("Error [IST0101] (VirtualService default/reviews FILE:LINE:COL) ...") and exits 1 on an Error.
"""

import glob
import os
import re

from harness import REPO, check, eq, run_weft, tmp_path, write_file

BOOKINFO = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: bookinfo
spec:
  hosts:
  - reviews
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    fault:
      delay:
        percentage:
          value: 100
        fixedDelay: 2s
    route:
    - destination:
        host: reviews
        subset: v2
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: 80
    - destination:
        host: reviews
        subset: v3
      weight: 20
    timeout: 10s
    retries:
      attempts: 3
      perTryTimeout: 2s
      retryOn: gateway-error,connect-failure,503
    mirror:
      host: reviews
      subset: v2
    mirrorPercentage:
      value: 25.5
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: reviews
  namespace: bookinfo
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      simple: LEAST_REQUEST
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
  - name: v3
    labels: {version: v3}
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: reviews
  namespace: bookinfo
spec:
  hosts: [reviews.bookinfo.svc.cluster.local]
  location: MESH_INTERNAL
  ports:
  - {number: 9080, name: http, protocol: HTTP}
  resolution: STATIC
  endpoints:
  - {address: 10.1.0.1, labels: {version: v1}}
  - {address: 10.1.0.2, labels: {version: v2}}
  - {address: 10.1.0.3, labels: {version: v3}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: edge
  namespace: bookinfo
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [bookinfo/reviews.example.com]
    tls: {mode: SIMPLE, credentialName: reviews-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: edge
  namespace: bookinfo
spec:
  hosts: [reviews.example.com]
  gateways: [edge]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: bookinfo
spec:
  egress:
  - hosts: ["./*", "istio-system/*"]
"""

# What `kubectl get -o yaml` adds: read-only metadata and a status, all tolerated.
KUBECTL = """\
apiVersion: v1
kind: List
items:
- apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata:
    name: ratings
    namespace: default
    uid: 6a1f0c1e-0000-4000-8000-000000000000
    resourceVersion: "4242"
    generation: 3
    creationTimestamp: "2024-05-01T10:00:00Z"
    managedFields:
    - manager: kubectl-client-side-apply
      operation: Update
  spec:
    host: ratings
  status:
    observedGeneration: 3
metadata:
  resourceVersion: ""
"""

BOOTSTRAP = """\
static_resources:
  listeners:
  - name: l
    address:
      socket_address: { address: 127.0.0.1, port_value: 10000 }
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: t
          cluster: c
  clusters:
  - name: c
    connect_timeout: 1s
    load_assignment:
      cluster_name: c
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: 127.0.0.1, port_value: 10001 }
"""


def locate(text, needle, nth=1):
    """(line, col), 1-based, of the nth needle in text."""
    idx = -1
    for _ in range(nth):
        idx = text.index(needle, idx + 1)
    return text.count("\n", 0, idx) + 1, idx - (text.rfind("\n", 0, idx) + 1) + 1


def _errors(path, p):
    """Every 'FILE:LINE:COL: path: message' error about path, as (line, col, path, message)."""
    return [(int(m.group(1)), int(m.group(2)), m.group(3), m.group(4))
            for m in re.finditer(r"^weft: %s:(\d+):(\d+): ([^:]*?): (.*)$" % re.escape(path), p.stderr, re.M)]


def test_istio_validate_bookinfo_ok():
    path = write_file(tmp_path("bookinfo.yaml"), BOOKINFO)
    p = run_weft(["validate", path])
    eq(p.returncode, 0, "exit status (stderr: %r)" % p.stderr)
    eq(p.stdout.splitlines(), ["%s: OK" % path], "stdout")


def test_istio_validate_kubectl_output_ok():
    path = write_file(tmp_path("got.yaml"), KUBECTL)
    p = run_weft(["validate", path])
    eq(p.returncode, 0, "exit status (stderr: %r)" % p.stderr)


def test_istio_validate_examples():
    """Every file under examples/istio is valid, and all of them together too."""
    files = sorted(glob.glob(os.path.join(REPO, "examples", "istio", "*.yaml")))
    check(len(files) >= 5, "expected the Istio examples, found %r", files)
    p = run_weft(["validate"] + files)
    eq(p.returncode, 0, "exit status (stderr: %r)" % p.stderr)
    eq(p.stdout.splitlines(), ["%s: OK" % f for f in files], "stdout")


def test_istio_validate_bootstrap_still_works():
    """An Envoy bootstrap and an Istio file on one command line: each checked its own way."""
    boot = write_file(tmp_path("boot.yaml"), BOOTSTRAP)
    ist = write_file(tmp_path("dr.yaml"), KUBECTL)
    p = run_weft(["validate", boot, ist])
    eq(p.returncode, 0, "exit status (stderr: %r)" % p.stderr)
    eq(p.stdout.splitlines(), ["%s: OK" % boot, "%s: OK" % ist], "stdout")
    bad = write_file(tmp_path("boot-bad.yaml"), BOOTSTRAP.replace("connect_timeout", "connect_timout"))
    p = run_weft(["validate", bad, ist])
    eq(p.returncode, 1, "exit status with a bad bootstrap")
    check("unknown field 'connect_timout'" in p.stderr, "bootstrap error expected, got %r", p.stderr)
    check("%s: OK" % ist in p.stdout, "the Istio file is still checked: %r", p.stdout)


VS_HEAD = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: r\nspec:\n  hosts: [reviews]\n"

# (name, YAML, needle where the error points, field path, message substring)
BAD = [
    ("unknown field", VS_HEAD + "  http:\n  - route:\n    - destination: {host: reviews}\n    timout: 5s\n",
     "timout", "spec.http[0]", "unknown field 'timout' in istio.networking.v1alpha3.HTTPRoute (did you mean 'timeout'?)"),
    ("wrong type", VS_HEAD + "  http:\n  - route:\n    - destination: {host: a}\n      weight: 80\n"
     "    - destination: {host: b}\n      weight: twenty\n",
     "twenty", "spec.http[0].route[1].weight", "twenty"),
    ("bad duration", VS_HEAD + "  http:\n  - route:\n    - destination: {host: a}\n    timeout: 5 seconds\n",
     "5 seconds", "spec.http[0].timeout", "is not a duration"),
    ("bad enum", "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec:\n"
     "  hosts: [a.com]\n  resolution: SOMETIMES\n", "SOMETIMES", "spec.resolution", "SOMETIMES"),
    ("regex", VS_HEAD + "  http:\n  - match:\n    - uri:\n        regex: \"/api/(v1\"\n"
     "    route:\n    - destination: {host: a}\n", "regex:", "spec.http[0].match[0].uri.regex",
     "regex '/api/(v1' does not compile"),
    ("weights", VS_HEAD + "  http:\n  - route:\n    - destination: {host: a}\n      weight: 0\n"
     "    - destination: {host: b}\n      weight: 0\n", "route:", "spec.http[0].route",
     "the destinations' weights add up to 0"),
    ("negative weight", VS_HEAD + "  http:\n  - route:\n    - destination: {host: a}\n      weight: 110\n"
     "    - destination: {host: b}\n      weight: -10\n", "weight: -10", "spec.http[0].route[1].weight",
     "weight -10 is negative"),
    ("route and redirect", VS_HEAD + "  http:\n  - route:\n    - destination: {host: a}\n    redirect: {uri: /x}\n",
     "redirect:", "spec.http[0].redirect", "an HTTP route cannot have both route and redirect"),
    ("retry condition", VS_HEAD + "  http:\n  - route:\n    - destination: {host: a}\n"
     "    retries: {attempts: 2, retryOn: \"5xx,flaky\"}\n", "retryOn", "spec.http[0].retries.retryOn",
     "'flaky' is not a retry condition"),
    ("fault status", VS_HEAD + "  http:\n  - route:\n    - destination: {host: a}\n"
     "    fault: {abort: {httpStatus: 700, percentage: {value: 5}}}\n", "httpStatus", "spec.http[0].fault.abort.httpStatus",
     "700 is not an HTTP status"),
    ("header name", VS_HEAD + "  http:\n  - match:\n    - headers:\n        \"end user\": {exact: jason}\n"
     "    route:\n    - destination: {host: a}\n", "\"end user\"", "spec.http[0].match[0].headers.end user",
     "'end user' is not a valid header name"),
    ("subset twice", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec:\n"
     "  host: reviews\n  subsets:\n  - name: v1\n  - name: v1\n", ("name: v1", 2), "spec.subsets[1].name",
     "subset 'v1' is defined twice"),
    ("static endpoint", "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec:\n"
     "  hosts: [db.example.com]\n  ports:\n  - {number: 5432, name: tcp, protocol: TCP}\n  resolution: STATIC\n"
     "  endpoints:\n  - address: db1.example.com\n", "address: db1", "spec.endpoints[0].address",
     "'db1.example.com' is not an IP address (resolution STATIC)"),
    ("gateway tls", "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  servers:\n"
     "  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.example.com]\n    tls:\n      mode: MUTUAL\n"
     "      credentialName: \"\"\n      serverCertificate: /c.pem\n      privateKey: /k.pem\n",
     "mode: MUTUAL", "spec.servers[0].tls.mode", ""),
    ("sidecar host", "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default}\nspec:\n"
     "  egress:\n  - hosts:\n    - reviews.default.svc.cluster.local\n", "reviews.default", "spec.egress[0].hosts[0]",
     "is not NAMESPACE/HOST"),
]


def test_istio_validate_bad_files():
    """Each kind of mistake: exit 1, and the error names file:line:col and the field path."""
    bad = []
    for name, text, needle, fpath, msg in BAD:
        path = write_file(tmp_path("bad.yaml"), text)
        p = run_weft(["validate", path])
        errs = _errors(path, p)
        line, col = locate(text, *needle) if isinstance(needle, tuple) else locate(text, needle)
        if name == "gateway tls":  # MUTUAL without a CA: the error points at the missing field's parent setting
            ok = p.returncode == 1 and any(e[2] == "spec.servers[0].tls.caCertificates" and
                                           "MUTUAL TLS needs caCertificates" in e[3] for e in errs)
        else:
            ok = p.returncode == 1 and len(errs) == 1 and errs[0][:3] == (line, col, fpath) and msg in errs[0][3]
        if not ok:
            bad.append("%s: expected exit 1 and %d:%d: %s: ...%s..., got exit %d, stderr %r" %
                       (name, line, col, fpath, msg, p.returncode, p.stderr))
        elif "%s: OK" % path in p.stdout:
            bad.append("%s: a refused file is also reported OK" % name)
    check(not bad, "\n".join(bad))


def test_istio_validate_every_error_printed():
    """Errors in several documents and several rules of one object: all printed, in file order."""
    text = (VS_HEAD + "  http:\n  - route:\n    - destination: {host: a}\n      weight: -1\n"
            "    timeout: 0s\n"
            "---\n"
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny}\nspec: {}\n"
            "---\n"
            "apiVersion: networking.istio.io/v1\nkind: Telegraph\nmetadata: {name: t}\n"
            "---\n"
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec: {hots: a}\n")
    path = write_file(tmp_path("many.yaml"), text)
    p = run_weft(["validate", path])
    eq(p.returncode, 1, "exit status")
    lines = [l for l in p.stderr.splitlines() if l.startswith("weft: ")]
    want = [
        "%s:%d:%d: spec.http[0].route[0].weight: weight -1 is negative" % ((path,) + locate(text, "weight: -1")),
        "%s:%d:%d: spec.http[0].timeout: must be at least 1ms" % ((path,) + locate(text, "timeout")),
        "%s:%d:%d: kind AuthorizationPolicy (security.istio.io/v1) is not supported yet" % ((path,) + locate(text, "AuthorizationPolicy")),
        "%s:%d:%d: unknown kind 'Telegraph'" % ((path,) + locate(text, "Telegraph")),
        "%s:%d:%d: spec: unknown field 'hots'" % ((path,) + locate(text, "hots")),
    ]
    eq(len(lines), len(want), "number of errors (stderr: %r)" % p.stderr)
    for got, w in zip(lines, want):
        check(got.startswith("weft: " + w), "expected %r, got %r", w, got)


def test_istio_validate_duplicate_across_files():
    a = write_file(tmp_path("a.yaml"), KUBECTL)
    b = write_file(tmp_path("b.yaml"), KUBECTL.replace("generation: 3", "generation: 4"))
    p = run_weft(["validate", a, b])
    eq(p.returncode, 1, "exit status")
    check("%s: OK" % a in p.stdout, "the first file is fine: %r", p.stdout)
    line, col = locate(KUBECTL, "apiVersion: networking")
    want = "weft: %s:%d:%d: DestinationRule default/ratings is defined twice (first at %s:%d:%d)" % (b, line, col, a, line, col)
    check(want in p.stderr, "expected %r, got %r", want, p.stderr)


# ---------------------------------------------------------------------------------------------
# analyze

SERVICES = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: reviews
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports:
  - {number: 9080, name: http, protocol: HTTP}
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
"""

FINDINGS_VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  gateways:
  - mesh
  - missing-gw
  http:
  - route:
    - destination:
        host: reviews
        subset: v7
      weight: 90
    - destination:
        host: ratings
      weight: 10
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews-canary
spec:
  hosts:
  - reviews.default.svc.cluster.local
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: unused
spec:
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
"""


def _analyze_dir(files):
    d = os.path.dirname(tmp_path("x"))
    for name, text in files.items():
        write_file(os.path.join(d, name), text)
    return d


def test_istio_analyze_findings():
    d = _analyze_dir({"services.yaml": SERVICES, "vs.yaml": FINDINGS_VS})
    p = run_weft(["analyze", d])
    eq(p.returncode, 1, "exit status (stdout: %r)" % p.stdout)
    vs = os.path.join(d, "vs.yaml")

    def at(needle, nth=1):
        idx = -1
        for _ in range(nth):
            idx = FINDINGS_VS.index(needle, idx + 1)
        return "%s:%d:%d" % (vs, FINDINGS_VS.count("\n", 0, idx) + 1, idx - (FINDINGS_VS.rfind("\n", 0, idx) + 1) + 1)

    want = [
        'Error [IST0101] (VirtualService default/reviews %s) Referenced host+subset in destinationrule not found: "reviews+v7"' % at("subset: v7"),
        'Error [IST0101] (VirtualService default/reviews %s) Referenced host not found: "ratings"' % at("host: ratings"),
        'Error [IST0101] (VirtualService default/reviews %s) Referenced gateway not found: "missing-gw"' % at("missing-gw"),
        'Error [IST0109] (VirtualService default/reviews %s) The VirtualServices default/reviews,default/reviews-canary '
        'associated with mesh gateway define the same host "reviews.default.svc.cluster.local"' % at("reviews\n  gateways"),
        'Error [IST0109] (VirtualService default/reviews-canary %s) The VirtualServices default/reviews-canary,default/reviews '
        'associated with mesh gateway define the same host "reviews.default.svc.cluster.local"' % at("reviews.default.svc.cluster.local\n  http"),
        'Warning [WFT0001] (Gateway default/unused %s) No VirtualService is bound to Gateway default/unused' % at("apiVersion", 3),
    ]
    lines = p.stdout.splitlines()
    eq(len(lines), len(want), "number of findings (stdout: %r)" % p.stdout)
    for got, w in zip(lines, want):
        check(got.startswith(w), "expected %r, got %r", w, got)


def test_istio_analyze_clean():
    d = _analyze_dir({"services.yaml": SERVICES, "vs.yaml": VS_HEAD +
                      "  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n"})
    p = run_weft(["analyze", d])
    eq(p.returncode, 0, "exit status (stdout: %r)" % p.stdout)
    eq(p.stdout, "\u2714 No validation issues found when analyzing %s.\n" % d, "stdout")


def test_istio_analyze_warning_only_exits_0():
    d = _analyze_dir({"gw.yaml": FINDINGS_VS[FINDINGS_VS.rindex("apiVersion"):]})
    p = run_weft(["analyze", d])
    eq(p.returncode, 0, "exit status (stdout: %r)" % p.stdout)
    check(p.stdout.startswith("Warning [WFT0001] (Gateway default/unused "), "got %r", p.stdout)


def test_istio_analyze_schema_errors():
    """An invalid file is reported (IST0106) and left out; the rest is still analyzed."""
    d = _analyze_dir({"services.yaml": SERVICES, "bad.yaml": VS_HEAD + "  http:\n  - rout: []\n"})
    p = run_weft(["analyze", d])
    eq(p.returncode, 1, "exit status")
    bad = os.path.join(d, "bad.yaml")
    check(p.stdout.startswith("Error [IST0106] Schema validation error: %s:8:5: spec.http[0]: unknown field 'rout'" % bad),
          "got %r", p.stdout)


def test_istio_analyze_examples_clean():
    d = os.path.join(REPO, "examples", "istio")
    p = run_weft(["analyze", d])
    eq(p.returncode, 0, "exit status (stdout: %r)" % p.stdout)
    check("No validation issues found" in p.stdout, "got %r", p.stdout)
