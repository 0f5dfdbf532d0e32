#!/usr/bin/env python3
"""A mesh for the control plane benchmark (bench/run.sh, case "control"): one YAML file per
service in OUTDIR, svc-NNNN.yaml, each with a ServiceEntry (host svc-N.default.svc.cluster.local,
one HTTP port, resolution STATIC, --endpoints inline endpoints labelled app/version v1 or v2);
every --rule-every'th service also gets a DestinationRule with subsets v1 and v2 and a
VirtualService splitting 90/10 between them with a timeout. svc-0000.yaml always has both: the
benchmark edits its VirtualService's timeout and one of its endpoint addresses.

usage: gen_mesh.py OUTDIR [--services 1000] [--endpoints 10] [--rule-every 10] [--port 8080]
"""
import argparse
import os

SE = """apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: svc-{i}
  namespace: default
spec:
  hosts:
  - svc-{i}.default.svc.cluster.local
  location: MESH_INTERNAL
  ports:
  - number: {port}
    name: http
    protocol: HTTP
  resolution: STATIC
  endpoints:
{endpoints}"""

DR = """---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: svc-{i}
  namespace: default
spec:
  host: svc-{i}.default.svc.cluster.local
  subsets:
  - name: v1
    labels: {{version: v1}}
  - name: v2
    labels: {{version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: svc-{i}
  namespace: default
spec:
  hosts:
  - svc-{i}.default.svc.cluster.local
  http:
  - name: split
    route:
    - destination:
        host: svc-{i}.default.svc.cluster.local
        subset: v1
      weight: 90
    - destination:
        host: svc-{i}.default.svc.cluster.local
        subset: v2
      weight: 10
    timeout: 5s
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--rule-every", type=int, default=10)
    ap.add_argument("--port", type=int, default=8080)
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    for i in range(a.services):
        eps = []
        for e in range(a.endpoints):
            n = i * a.endpoints + e  # a distinct address per endpoint: 10.x.y.z
            addr = "10.%d.%d.%d" % (n // 62500 % 250 + 1, n // 250 % 250, n % 250 + 1)
            eps.append("  - address: %s\n    labels: {app: svc-%d, version: v%d}\n" % (addr, i, 1 + e % 2))
        text = SE.format(i=i, port=a.port, endpoints="".join(eps))
        if i % a.rule_every == 0:
            text += DR.format(i=i)
        with open(os.path.join(a.outdir, "svc-%04d.yaml" % i), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
