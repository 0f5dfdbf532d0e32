#!/bin/bash
# The README's first command: install what is missing, build, start three demo upstreams and
# run `weft proxy` on examples/demo.yaml in the foreground (Ctrl-C drains and stops it all).
set -e
cd "$(dirname "$0")/.."
scripts/deps.sh
make -s all
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT
python3 examples/upstream.py 10101 reviews-v1 & pids+=($!)
python3 examples/upstream.py 10102 reviews-v1 & pids+=($!)
python3 examples/upstream.py 10103 reviews-v2 & pids+=($!)
sleep 0.3
cat <<'MSG'
weft demo: proxy on 127.0.0.1:10000 (HTTP) and :10001 (TCP), admin on 127.0.0.1:9901
  curl -s localhost:10000/ | grep service          # 80% reviews-v1, 20% reviews-v2
  curl -s -H 'x-canary: 1' localhost:10000/ -i     # reviews-v2, x-served-by: canary
  curl -s localhost:10000/health                   # answered by the proxy
  curl -si localhost:10000/old/page | head -3      # 301 -> /new/page
  curl -s -o /dev/null -w '%{http_code}\n' localhost:10000/flaky     # fault filter: ~half 503
  curl -si localhost:10000/limited | grep -i ratelimit              # 3 per 10 s, then 429
  curl -s localhost:9901/stats | grep upstream_rq_2xx
MSG
build/weft proxy -c examples/demo.yaml --drain-time-s 2 &
pids+=($!)
wait "${pids[-1]}"
