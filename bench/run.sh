#!/usr/bin/env bash
# Weft side by side with HAProxy and nginx (`make bench`; doc/benchmarks.md explains it).
#
# HTTP case: Weft, HAProxy and nginx are each an HTTP/1.1 keep-alive reverse proxy with
# keep-alive upstream, one worker, pinned to CPU 0, in front of the same upstream (a one-worker
# nginx returning a 12-byte body); wrk and the upstream share CPU 1. Per proxy:
#   idle RSS       VmRSS of the proxy's processes after start, before any request
#   syscalls/req   counted by perf (when it can) during a warm-up run, not the measured runs
#   req/s, p50/p99 from wrk -t1 -c$BENCH_CONNS --latency: $BENCH_DURATION seconds per proxy, cut
#                  into $BENCH_ROUNDS runs interleaved with the other proxies' (so that a change
#                  in the machine's background load falls on all alike); p50/p99 are medians
#   CPU/request    utime+stime of the proxy's processes over its runs / requests
#   RSS/idle conn  RSS growth when $BENCH_IDLE_CONNS clients each make one request and then stay
#                  connected, idle (bench/idle_conns.py), divided by their number
# TCP case: Weft's tcp_proxy (splice), HAProxy `mode tcp` + `option splice-auto`, and the same
# HAProxy with splicing forced both ways relay wrk's GETs of a $BENCH_BIG_MIB MiB file
# (-c$BENCH_TCP_CONNS): MiB/s and CPU per MiB, measured the same way.
# A "direct" row (wrk straight to the upstream) shows the ceiling of the load side. A
# "weft-resilience" row runs Weft with bench/weft-resilience.yaml.in: the same setup plus a
# retry policy, a 0% mirror, the rate limit, fault and CORS filters, outlier detection,
# circuit breakers and active health checks, configured but never firing; its CPU per request
# is compared with the "weft" row's.
# TLS case: Weft (bench/weft-tls.yaml.in) and HAProxy (bench/haproxy-tls.cfg.in) terminate
# TLS 1.3 with X25519 and an ECDSA P-256 certificate (examples/tls/'s, or one made with openssl
# in the work directory), one worker on CPU 0 as above. Two sets of interleaved runs:
#   full handshakes  wrk -c$BENCH_CONNS -H "Connection: close" GET /hello, answered by the proxy
#                    itself: a new connection and a full handshake per request. wrk (like h2load)
#                    resumes the previous session when it reconnects, so both proxies have
#                    resumption off, and their own counters must show no resumed handshake.
#                    handshakes/s, CPU per handshake, and per core: 1 s / CPU per handshake.
#   keep-alive       wrk -c$BENCH_CONNS GET / over kept-alive TLS connections, to the upstream
#                    over plain HTTP: req/s and CPU per request.
# Both negotiate the same (checked with openssl s_client). Without openssl the TLS case is
# skipped; with an HAProxy built without OpenSSL, its rows are.
# HTTP/2 case: h2load -t1 -c$BENCH_H2_CONNS -m$BENCH_H2_STREAMS over h2c (prior knowledge) to
# Weft (bench/weft-h2.yaml.in), HAProxy (bind ... proto h2) and nginx (listen ... http2), one
# worker on CPU 0 as above; the upstream nginx also listens for h2c. Three sets of interleaved
# runs, each proxy's rows from one process:
#   h2 -> h1     GET / to the HTTP/1.1 keep-alive upstream; a "direct" row (h2load straight to
#                the h2c upstream) shows the load side's ceiling
#   h2 -> h2     GET / to the h2c upstream: Weft with explicit_http_config http2, HAProxy
#                server ... proto h2; no nginx row (its proxy_pass speaks HTTP/1.x upstream)
#   gRPC unary   POST of a one-message gRPC frame (content-type application/grpc, te: trailers)
#                to the h2c upstream, which answers it with the same message and a grpc-status 0
#                trailer; nginx with grpc_pass. Each proxy is checked with nghttp beforehand to
#                relay the trailer.
#                req/s and CPU per request as in the HTTP case (h2load gives no percentiles).
#   same load    the three sets again for Weft and HAProxy at one offered load that both carry
#                (h2load --rps=$BENCH_H2_RATE per connection): as fast as the load side can go,
#                a faster proxy finds fewer events per wake-up, so its CPU per request counts
#                more wake-ups; at the same load both do the same work, and CPU per request
#                compares what that work costs each.
# Without h2load and nghttp (Debian: nghttp2-client) the HTTP/2 case is skipped.
# Control case (BENCH_CASES=control alone: about 30 s): `weft control --config-dir`
# on CPU $BENCH_PROXY_CPU serving bench/gen_mesh.py's mesh ($BENCH_CONTROL_SERVICES ServiceEntries,
# $BENCH_CONTROL_ENDPOINTS endpoints each, a DestinationRule and VirtualService for every tenth) to
# build/xds-load's $BENCH_CONTROL_CLIENTS ADS clients on CPU $BENCH_LOAD_CPU (bench/xds_load.c: sidecar
# Nodes, CDS+LDS then EDS+RDS, every response ACKed). Measured: time to each client's first full
# push (all four types) p50/p99/max; weft control's utime+stime for the initial push and for each
# change; its VmHWM (peak RSS) and VmRSS after each phase; then one endpoint address of svc-0 edited
# (convergence: the time from the edit to each client's next EDS response, p50/p99/max) and the
# timeout of svc-0's VirtualService edited (the same with RDS). Each phase gives up after
# $BENCH_CONTROL_TIMEOUT s (clients that had no response by then are counted as not converged).
# Then a real `weft proxy` sidecar (examples/mesh/sidecar.yaml, one worker, on CPU $BENCH_LOAD_CPU)
# takes the mesh's configuration over ADS: its RSS once it has all of it (memory at mesh scale).
# Every request must succeed (at most 0.1% errors; wrk counts status >= 400 as errors) and
# reach the upstream, or the run fails.
#
# Environment: BENCH_DURATION (10) BENCH_ROUNDS (5) BENCH_WARMUP (2) BENCH_CONNS (50)
#   BENCH_IDLE_CONNS (9000) BENCH_TCP_CONNS (4) BENCH_BIG_MIB (16) BENCH_PROXY_CPU (0)
#   BENCH_LOAD_CPU (1) BENCH_PROXIES ("weft weft-resilience haproxy nginx") WEFT_BIN (build/weft)
#   BENCH_CASES ("http tcp tls h2 control": which cases run) BENCH_H2_CONNS (10) BENCH_H2_STREAMS (10)
#   BENCH_H2_RATE (2500: requests/s per connection in the same-load sets; 0 skips them)
#   BENCH_CONTROL_SERVICES (1000) BENCH_CONTROL_ENDPOINTS (10) BENCH_CONTROL_CLIENTS (2000)
#   BENCH_CONTROL_TIMEOUT (60) XDS_LOAD_BIN (build/xds-load, next to WEFT_BIN)
#   BENCH_KEEP=1 keeps the work directory (configs, logs, every wrk and h2load output).
# Exit status: 0 when every run completed with at most 0.1% errors (targets missed are
# reported, not failed: this is a benchmark, not a test); 1 otherwise.
# shellcheck disable=SC2154,SC2034  # W_* and I_* are set from wrk, h2load and idle_conns output
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
WEFT=${WEFT_BIN:-$ROOT/build/weft}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNS:-50}
IDLE_CONNS=${BENCH_IDLE_CONNS:-9000}
TCP_CONNS=${BENCH_TCP_CONNS:-4}
BIG_MIB=${BENCH_BIG_MIB:-16}
PROXY_CPU=${BENCH_PROXY_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
PROXIES=${BENCH_PROXIES:-weft weft-resilience haproxy nginx}
CASES=${BENCH_CASES:-http tcp tls h2 control}
H2_CONNS=${BENCH_H2_CONNS:-10}
H2_STREAMS=${BENCH_H2_STREAMS:-10}
H2_RATE=${BENCH_H2_RATE:-2500}
INFLIGHT=$((H2_CONNS * H2_STREAMS))   # h2load's requests in flight (nginx-h2's upstream pools)
HAPROXY=${HAPROXY_BIN:-$(command -v haproxy || echo /usr/sbin/haproxy)}
NGINX=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
ROUNDS=${BENCH_ROUNDS:-5}
HZ=$(getconf CLK_TCK)
[ "$ROUNDS" -le "$DURATION" ] || ROUNDS=$DURATION
ROUND_SECS=$((DURATION / ROUNDS))

# Targets (doc/benchmarks.md): Weft's CPU per request <= 0.8x HAProxy's (HTTP/1.1, and each
# HTTP/2 row); idle RSS <= 3 MB; RSS growth per idle keep-alive connection <= 1 KiB; with
# retries, outlier detection and circuit breakers configured (not firing), CPU per request
# <= 1.10x bare Weft's; full TLS handshakes per second per core >= HAProxy's.
TARGET_CPU_RATIO=0.80
TARGET_RESILIENCE_RATIO=1.10
TARGET_IDLE_RSS_BYTES=3000000
TARGET_CONN_BYTES=1024
TARGET_TLS_HS_RATIO=1.00    # Weft's full TLS handshakes per second per core / HAProxy's
# weft control with 1,000 services x 10 endpoints and 2,000 ADS clients: peak RSS <= 300 MB;
# convergence p99 <= 1 s after an endpoint change and after a VirtualService change.
TARGET_CONTROL_RSS_BYTES=300000000
TARGET_CONTROL_P99_MS=1000
CONTROL_SERVICES=${BENCH_CONTROL_SERVICES:-1000}
CONTROL_ENDPOINTS=${BENCH_CONTROL_ENDPOINTS:-10}
CONTROL_CLIENTS=${BENCH_CONTROL_CLIENTS:-2000}
CONTROL_TIMEOUT=${BENCH_CONTROL_TIMEOUT:-60}
XDS_LOAD=${XDS_LOAD_BIN:-$(dirname "$WEFT")/xds-load}

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

for t in "$HAPROXY" "$NGINX" wrk taskset python3 curl; do
	command -v "$t" >/dev/null || die "$t not found (Debian: apt-get install haproxy nginx wrk util-linux python3 curl openssl)"
done
[ -x "$WEFT" ] || die "$WEFT not found: run make first"
has_case() { [[ " $CASES " == *" $1 "* ]]; }
for c in $CASES; do
	case $c in http | tcp | tls | h2 | control) ;; *) die "BENCH_CASES: unknown case '$c' (known: http tcp tls h2 control)" ;; esac
done
! has_case control || [ -x "$XDS_LOAD" ] || die "$XDS_LOAD not found: make build/xds-load (make bench builds it)"
[ "$(nproc)" -ge 2 ] || log "warning: fewer than 2 CPUs; proxy and load generator will share a core"

# Enough descriptors for the idle connections on both sides (raise to 64 Ki, or the hard limit).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
[ "$NOFILE" -ge $((IDLE_CONNS + 1000)) ] ||
	die "ulimit -n is $NOFILE: too low for $IDLE_CONNS idle connections (set BENCH_IDLE_CONNS lower)"
MAXCONN=$(((NOFILE - 200) / 2))   # HAProxy needs two descriptors per proxied connection

WORK=$(mktemp -d /tmp/weft-bench.XXXXXX)
chmod 755 "$WORK"                 # nginx workers run as nobody and read $WORK/www
mkdir -p "$WORK/upstream/tmp" "$WORK/www"
head -c $((BIG_MIB * 1048576)) /dev/zero >"$WORK/www/big"

# ---------------------------------------------------------------------------------------------
# processes: everything started here is in PIDS and is stopped on exit, whatever happens

PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	PIDS=()
	if [ "${BENCH_KEEP:-0}" = 1 ]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start CPU LOGFILE CMD...: run CMD pinned to CPU in the background; its pid in LAST_PID.
start() {
	local cpu=$1 logf=$2
	shift 2
	taskset -c "$cpu" "$@" >"$logf" 2>&1 &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
}

# stop PID: SIGTERM, then SIGKILL after 5s. reap PID: wait for it to end by itself.
stop() {
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$1" 2>/dev/null || true
	reap "$1"
}
# run CPU OUTFILE CMD...: CMD pinned to CPU, waited for in a way a signal interrupts (so that
# the trap can stop it too); returns its exit status.
run() {
	local rc=0
	start "$@"
	wait "$LAST_PID" || rc=$?
	reap "$LAST_PID"
	return $rc
}
reap() {
	local p keep=()
	wait "$1" 2>/dev/null || true
	for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

# wait_port PORT PID LOGFILE: until something accepts on PORT (PID must stay alive).
wait_port() {
	local port=$1 pid=$2 logf=$3
	for _ in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || { tail -20 "$logf" >&2; die "process $pid exited before listening on $port"; }
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	tail -20 "$logf" >&2
	die "nothing listening on port $port after 10s"
}

# Ports below the ephemeral range, so that no outgoing connection can take one first.
USED_PORTS=" "
free_port() {
	local p
	p=$(python3 - "$USED_PORTS" <<'EOF'
import random, socket, sys
used = set(sys.argv[1].split())
lo, hi = 20000, 32000
try:
    eph = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    hi = min(hi, eph - 1); lo = min(lo, hi - 2000)
except (OSError, ValueError):
    pass
for _ in range(1000):
    p = random.randint(lo, hi)
    if str(p) in used:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
EOF
)
	[ -n "$p" ] || die "no free port"
	USED_PORTS+="$p "
	PORT=$p
}

# render TEMPLATE OUT PORT (and ADMIN_PORT or PORT2, for the templates that have a second port)
render() {
	sed -e "s|@WORK@|$WORK|g" -e "s|@PORT@|$3|g" -e "s|@UP_PORT@|$UP_PORT|g" -e "s|@UP2_PORT@|$UP2_PORT|g" \
		-e "s|@ADMIN_PORT@|${ADMIN_PORT:-}|g" -e "s|@PORT2@|${PORT2:-}|g" -e "s|@MAXCONN@|$MAXCONN|g" \
		-e "s|@NOFILE@|$NOFILE|g" -e "s|@INFLIGHT@|$INFLIGHT|g" "$1" >"$2"
}

rss_kib() { python3 "$HERE/procinfo.py" rss "$1"; }
cpu_ticks() { python3 "$HERE/procinfo.py" cpu "$1"; }
pids_csv() { python3 "$HERE/procinfo.py" pids "$1" | tr ' ' ','; }

# Syscalls per request are counted with perf (if it can count tracepoints here) during the
# warm-up run, so that counting does not weigh on the measured run.
PERF=""
if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then PERF=perf; fi

# warm NAME PID URL CONNS UNIT [LOAD_ARG...]: a warm-up run of $LOADGEN; sets SYSCALLS per UNIT
# (req or MiB), or "-".
warm() {
	local name=$1 pid=$2 url=$3 conns=$4 unit=$5 perf_pid="" n
	shift 5
	SYSCALLS=-
	if [ -n "$PERF" ]; then
		start "$LOAD_CPU" "$WORK/perf-$name.log" perf stat -x, -e raw_syscalls:sys_enter \
			-p "$(pids_csv "$pid")" -o "$WORK/perf-$name.txt" -- sleep "$WARMUP"
		perf_pid=$LAST_PID
	fi
	"$LOADGEN" "$name-warmup" "$url" "$conns" "$WARMUP" "$@"
	[ -n "$perf_pid" ] || return 0
	reap "$perf_pid"
	n=$(awk -F, '/raw_syscalls:sys_enter/ { print $1 }' "$WORK/perf-$name.txt" 2>/dev/null)
	case $n in
	'' | *[!0-9]*) ;;
	*) if [ "$unit" = MiB ]; then
		SYSCALLS=$(fmt '%.0f' "$n / ($W_bytes > 0 ? $W_bytes : 1) * 1048576")
	   else
		SYSCALLS=$(fmt '%.1f' "$n / ($W_requests > 0 ? $W_requests : 1)")
	   fi ;;
	esac
}

# upstream_counters: "accepted requests" of the upstream so far (its stub_status; each query
# is itself one connection and one request, subtracted by the caller).
upstream_counters() {
	curl -s "http://127.0.0.1:$UP_PORT/up_status" | awk 'NR == 3 { print $1, $3 }'
}

# The load generators. run_wrk and run_h2load take NAME URL CONNS SECONDS [ARG...]: one run
# on the load CPU, with the extra arguments (e.g. -H "Connection: close"); its summary parsed
# into W_requests (completed), W_duration_us, W_bytes, W_p50_us and W_p99_us (empty from
# h2load), W_errors (failed requests) and their kinds (W_kinds: W_err_KIND for each), and
# W_inflight (requests in flight at most, which the end of the run may cut). LOADGEN names
# the one that warm and measure use.
LOADGEN=run_wrk
run_wrk() {
	local name=$1 url=$2 conns=$3 secs=$4 out="$WORK/wrk-$1.txt" line kv
	shift 4
	run "$LOAD_CPU" "$out" wrk -t1 -c"$conns" -d"${secs}s" --timeout 10s --latency \
		-s "$HERE/report.lua" "$@" "$url" || { cat "$out" >&2; die "wrk failed ($name)"; }
	line=$(grep '^BENCH ' "$out") || { cat "$out" >&2; die "no wrk summary ($name)"; }
	for kv in ${line#BENCH }; do printf -v "W_${kv%%=*}" '%s' "${kv#*=}"; done
	W_errors=$((W_err_connect + W_err_read + W_err_write + W_err_status + W_err_timeout))
	W_kinds="connect read write status timeout"
	W_inflight=$conns
}
# h2load: -m$H2_STREAMS streams per connection, h2c by prior knowledge for http:// URLs. Its
# "failed" counts every request that did not end in 2xx/3xx; "errored" (reset streams, lost
# connections) is part of it, and so are the 4xx and 5xx.
run_h2load() {
	local name=$1 url=$2 conns=$3 secs=$4 out="$WORK/h2load-$1.txt" summary
	shift 4
	run "$LOAD_CPU" "$out" h2load -t1 -c"$conns" -m"$H2_STREAMS" -D "$secs" "$@" "$url" ||
		{ cat "$out" >&2; die "h2load failed ($name)"; }
	# finished in 2.00s, ... / requests: T total, S started, D done, OK succeeded, F failed,
	# E errored, TO timeout / status codes: a 2xx, b 3xx, c 4xx, d 5xx / traffic: ... (N) total
	summary=$(awk '
		/^finished in / { t = $3; sub(/,$/, "", t); us = t ~ /ms$/ ? t * 1000 : t ~ /us$/ ? t + 0 : t * 1000000 }
		/^requests: / { done = $6; failed = $10; errored = $12; timeout = $14 }
		/^status codes: / { s4 = $7; s5 = $9 }
		/^traffic: / { b = $3; gsub(/[()]/, "", b) }
		END { if (us != "" && done != "") printf "%d %d %d %d %d %d %d %d\n", done, us, b, failed, errored, timeout, s4, s5 }' "$out")
	[ -n "$summary" ] || { cat "$out" >&2; die "no h2load summary ($name)"; }
	read -r W_requests W_duration_us W_bytes W_err_failed W_err_errored W_err_timeout W_err_4xx W_err_5xx <<<"$summary"
	W_errors=$((W_err_failed + W_err_timeout))
	W_kinds="failed errored 4xx 5xx timeout"
	W_inflight=$((conns * H2_STREAMS))
	W_p50_us="" W_p99_us=""
}

fmt() { awk "BEGIN { printf \"$1\", $2 }"; }
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
add() { R[$1]=$(( ${R[$1]:-0} + $2 )); }

declare -A R   # results: R[name.metric]
declare -A PID_OF URL_OF
declare -A NO_UPSTREAM   # NO_UPSTREAM[name]=1: the proxy answers NAME's requests itself
FAILED=0

# measure_round NAME CONNS SECONDS ROUND [LOAD_ARG...]: one $LOADGEN run against NAME (URL_OF,
# PID_OF; PID_OF is empty for the upstream itself), added to NAME's totals.
measure_round() {
	local n=$1 conns=$2 secs=$3 r=$4 pid=${PID_OF[$1]} c0=0 c1=0 a0 q0 a1 q1 e v
	shift 4
	read -r a0 q0 < <(upstream_counters)
	[ -z "$pid" ] || c0=$(cpu_ticks "$pid")
	"$LOADGEN" "$n-$r" "${URL_OF[$n]}" "$conns" "$secs" "$@"
	[ -z "$pid" ] || c1=$(cpu_ticks "$pid")
	read -r a1 q1 < <(upstream_counters)
	add "$n.requests" "$W_requests"
	add "$n.duration_us" "$W_duration_us"
	add "$n.bytes" "$W_bytes"
	add "$n.ticks" $((c1 - c0))
	add "$n.up_conns" $((a1 - a0 - 1))
	add "$n.up_reqs" $((q1 - q0 - 1))
	add "$n.errors" "$W_errors"
	add "$n.inflight" "$W_inflight"
	for e in $W_kinds; do
		v=W_err_$e
		add "$n.err_$e" "${!v}"
	done
	R[$n.kinds]=$W_kinds
	R[$n.p50s]+="$W_p50_us "
	R[$n.p99s]+="$W_p99_us "
	R[$n.rounds]+="$((c1 - c0)):$W_requests "   # CPU ticks:requests of each round, in order
}

# round_ratios A B: the lowest and the highest of A's CPU per request / B's over the rounds they
# shared ("0.71-0.88"): how far one round can move the ratio.
round_ratios() {
	local -a ra rb
	local i
	read -ra ra <<<"${R[$1.rounds]:-}"
	read -ra rb <<<"${R[$2.rounds]:-}"
	for ((i = 0; i < ${#ra[@]} && i < ${#rb[@]}; i++)); do
		echo "${ra[i]%%:*} ${ra[i]#*:} ${rb[i]%%:*} ${rb[i]#*:}"
	done | awk '$2 > 0 && $3 > 0 && $4 > 0 { r = ($1 / $2) / ($3 / $4); if (n++ == 0 || r < lo) lo = r; if (r > hi) hi = r }
		END { if (n) printf "%.2f-%.2f", lo, hi; else printf "-" }'
}

# measure "NAMES" CONNS [LOAD_ARG...]: BENCH_ROUNDS rounds; each round runs $LOADGEN against every
# name in turn (starting one further along each round), so that a change in the background
# load of the machine falls on all of them alike. Then the totals are checked: at most 0.1%
# errors, and every request seen by the upstream (unless NO_UPSTREAM).
measure() {
	local names conns=$2 r i n k
	read -ra names <<<"$1"
	shift 2
	k=${#names[@]}
	for ((r = 0; r < ROUNDS; r++)); do
		for ((i = 0; i < k; i++)); do
			n=${names[$(((r + i) % k))]}
			measure_round "$n" "$conns" "$ROUND_SECS" "$r" "$@"
		done
	done
	for n in "${names[@]}"; do
		local req=${R[$n.requests]} err=${R[$n.errors]} kinds="" e
		if [ "$req" -eq 0 ] || [ $((err * 1000)) -gt "$req" ]; then
			for e in ${R[$n.kinds]}; do kinds+="${kinds:+, }$e ${R[$n.err_$e]}"; done
			log "FAIL $n: $err errors in $req requests ($kinds)"
			FAILED=1
		fi
		if [ -z "${NO_UPSTREAM[$n]:-}" ] && [ $((R[$n.up_reqs] + R[$n.inflight])) -lt "$req" ]; then
			log "FAIL $n: the upstream saw ${R[$n.up_reqs]} requests, ${LOADGEN#run_} counted $req"
			FAILED=1
		fi
		R[$n.secs]=$(fmt '%.3f' "${R[$n.duration_us]} / 1000000")
		R[$n.rps]=$(fmt '%.0f' "$req / ${R[$n.secs]}")
		R[$n.cpu_pct]=$(fmt '%.0f' "${R[$n.ticks]} * 100 / $HZ / ${R[$n.secs]}")
		R[$n.cpu_us]=$(fmt '%.2f' "${R[$n.ticks]} * 1000000 / $HZ / ($req > 0 ? $req : 1)")
		R[$n.mibs]=$(fmt '%.0f' "${R[$n.bytes]} / 1048576 / ${R[$n.secs]}")
		R[$n.cpu_us_mib]=$(fmt '%.0f' "${R[$n.ticks]} * 1000000 / $HZ / (${R[$n.bytes]} > 0 ? ${R[$n.bytes]} / 1048576 : 1)")
		R[$n.p50]=$(median ${R[$n.p50s]})
		R[$n.p99]=$(median ${R[$n.p99s]})
	done
}

# ---------------------------------------------------------------------------------------------
# upstream

free_port; UP_PORT=$PORT
free_port; UP2_PORT=$PORT   # the same nginx, h2c (the HTTP/2 case)
render "$HERE/upstream.nginx.conf.in" "$WORK/upstream/nginx.conf" "$UP_PORT"
start "$LOAD_CPU" "$WORK/upstream/stderr.log" "$NGINX" -p "$WORK/upstream" -c "$WORK/upstream/nginx.conf"
UP_PID=$LAST_PID
wait_port "$UP_PORT" "$UP_PID" "$WORK/upstream/stderr.log"
[ "$(curl -s "http://127.0.0.1:$UP_PORT/")" = "hello world" ] || die "upstream does not answer"

START_TIME=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"

# ---------------------------------------------------------------------------------------------
# proxies

start_proxy() {   # start_proxy NAME PORT: NAME's pid in LAST_PID
	local name=$1 port=$2 d="$WORK/$1"
	mkdir -p "$d"
	case $name in   # a second port
	weft-tls) free_port; ADMIN_PORT=$PORT ;;   # the admin interface, read by tls_handshakes
	*-h2) free_port; PORT2=$PORT ;;            # the listener to the h2c upstream
	esac
	case $name in
	weft | weft-resilience | weft-tcp | weft-tls | weft-h2)
		render "$HERE/$name.yaml.in" "$d/weft.yaml" "$port"
		start "$PROXY_CPU" "$d/stderr.log" "$WEFT" proxy -c "$d/weft.yaml" --concurrency 1 ;;
	haproxy | haproxy-tls | haproxy-h2)
		render "$HERE/$name.cfg.in" "$d/haproxy.cfg" "$port"
		start "$PROXY_CPU" "$d/stderr.log" "$HAPROXY" -db -f "$d/haproxy.cfg" ;;
	nginx | nginx-h2)
		mkdir -p "$d/tmp"
		render "$HERE/$name.conf.in" "$d/nginx.conf" "$port"
		start "$PROXY_CPU" "$d/stderr.log" "$NGINX" -p "$d" -c "$d/nginx.conf" ;;
	haproxy-tcp | haproxy-splice)
		# haproxy-splice: the same, with splicing forced both ways instead of splice-auto
		render "$HERE/haproxy-tcp.cfg.in" "$d/haproxy.cfg" "$port"
		[ "$name" = haproxy-tcp ] ||
			sed -i 's/^\( *\)option splice-auto$/\1option splice-request\n\1option splice-response/' "$d/haproxy.cfg"
		start "$PROXY_CPU" "$d/stderr.log" "$HAPROXY" -db -f "$d/haproxy.cfg" ;;
	*) die "unknown proxy $name" ;;
	esac
	wait_port "$port" "$LAST_PID" "$d/stderr.log"
	PID_OF[$name]=$LAST_PID
	PORT_OF[$name]=$port
}
declare -A PORT_OF

# ---------------------------------------------------------------------------------------------
# HTTP

if has_case http; then
	log "HTTP: $ROUNDS rounds of wrk -t1 -c$CONNS -d${ROUND_SECS}s --latency against each of: direct $PROXIES" \
		"(proxies on CPU $PROXY_CPU, wrk + upstream on CPU $LOAD_CPU)"
	for P in $PROXIES; do
		free_port
		start_proxy "$P" "$PORT"
		URL_OF[$P]="http://127.0.0.1:$PORT/"
	done
	sleep 0.5
	for P in $PROXIES; do R[$P.idle_kib]=$(rss_kib "${PID_OF[$P]}"); done   # before any request
	for P in $PROXIES; do
		body=$(curl -s -w ' %{http_code}' "${URL_OF[$P]}")
		[ "$body" = $'hello world\n 200' ] || die "$P: unexpected answer: $body"
		warm "$P" "${PID_OF[$P]}" "${URL_OF[$P]}" "$CONNS" req
		R[$P.syscalls]=$SYSCALLS
	done
	PID_OF[direct]=""
	URL_OF[direct]="http://127.0.0.1:$UP_PORT/"
	measure "direct $PROXIES" "$CONNS"
	log "direct: ${R[direct.rps]} req/s"
	for P in $PROXIES; do
		log "$P: ${R[$P.rps]} req/s, ${R[$P.cpu_us]} us CPU/request (${R[$P.cpu_pct]}% CPU)"
	done

	# Idle keep-alive connections, one proxy at a time (the others sit idle).
	for P in $PROXIES; do
		I_per_conn_bytes=0 I_ok=0 I_failed=0 I_closed=0 I_rss_before_kib=0 I_rss_after_kib=0
		sleep 1
		run "$LOAD_CPU" "$WORK/idle-$P.txt" python3 "$HERE/idle_conns.py" --port "${PORT_OF[$P]}" \
			--pid "${PID_OF[$P]}" --count "$IDLE_CONNS" --window "$CONNS" ||
			{ cat "$WORK/idle-$P.txt" >&2; log "FAIL $P: idle connections"; FAILED=1; }
		line=$(grep '^IDLE ' "$WORK/idle-$P.txt" || true)
		for kv in ${line#IDLE }; do printf -v "I_${kv%%=*}" '%s' "${kv#*=}"; done
		R[$P.conn_bytes]=$I_per_conn_bytes
		log "$P: idle RSS ${R[$P.idle_kib]} KiB; $IDLE_CONNS idle connections: ${I_rss_before_kib} -> ${I_rss_after_kib} KiB," \
			"${I_per_conn_bytes} B each"
	done
	for P in $PROXIES; do stop "${PID_OF[$P]}"; done
fi

# ---------------------------------------------------------------------------------------------
# TCP: splice relays of a big file

TCP_PROXIES=""
for P in $PROXIES; do
	has_case tcp || continue
	case $P in weft) TCP_PROXIES+="weft-tcp " ;; haproxy) TCP_PROXIES+="haproxy-tcp haproxy-splice " ;; esac
done
if [ -n "$TCP_PROXIES" ]; then
	log "TCP: $ROUNDS rounds of wrk -t1 -c$TCP_CONNS -d${ROUND_SECS}s GET /big ($BIG_MIB MiB) against each of: direct $TCP_PROXIES"
	for P in $TCP_PROXIES; do
		free_port
		start_proxy "$P" "$PORT"
		URL_OF[$P]="http://127.0.0.1:$PORT/big"
		size=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "${URL_OF[$P]}")
		[ "$size" = "200 $((BIG_MIB * 1048576))" ] || die "$P: unexpected answer: $size"
		warm "$P" "${PID_OF[$P]}" "${URL_OF[$P]}" "$TCP_CONNS" MiB
		R[$P.syscalls]=$SYSCALLS
	done
	URL_OF[direct-tcp]="http://127.0.0.1:$UP_PORT/big"
	PID_OF[direct-tcp]=""
	measure "direct-tcp $TCP_PROXIES" "$TCP_CONNS"
	for P in $TCP_PROXIES; do
		log "$P: ${R[$P.mibs]} MiB/s, ${R[$P.cpu_us_mib]} us CPU/MiB (${R[$P.cpu_pct]}% CPU)"
		stop "${PID_OF[$P]}"
	done
fi

# ---------------------------------------------------------------------------------------------
# TLS: termination with TLS 1.3, X25519 and an ECDSA P-256 certificate

# tls_cert: an ECDSA P-256 certificate and its key in $WORK/tls (server.crt, server.key, and
# server.pem = both, HAProxy's crt file): examples/tls/'s demo certificate if it is one, else a
# throwaway CA and leaf made here.
tls_cert() {
	local d="$WORK/tls" ex="$ROOT/examples/tls"
	mkdir -p "$d"
	if [[ $(openssl pkey -in "$ex/server.key" -noout -text 2>/dev/null) == *"NIST CURVE: P-256"* ]] &&
		[ -r "$ex/server.crt" ]; then
		cp "$ex/server.crt" "$ex/server.key" "$d/"
	else
		ec() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "$@" 2>/dev/null; }
		ec -x509 -days 2 -subj "/CN=weft bench CA" -keyout "$d/ca.key" -out "$d/ca.crt"
		ec -subj /CN=localhost -keyout "$d/server.key" -out "$d/server.csr"
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$d/server.ext"
		openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -set_serial 1 \
			-days 2 -extfile "$d/server.ext" -out "$d/server.crt" 2>/dev/null
	fi
	cat "$d/server.crt" "$d/server.key" >"$d/server.pem"
}

# tls_session PORT: what a handshake with PORT negotiates: "protocol cipher group signature"
# (s_client's output in $WORK/tls/s_client-PORT.txt).
tls_session() {
	openssl s_client -connect "127.0.0.1:$1" -servername localhost </dev/null \
		>"$WORK/tls/s_client-$1.txt" 2>&1 || true
	awk <"$WORK/tls/s_client-$1.txt" '
		/^New, / { p = $2; sub(/,$/, "", p); c = $5 }   # New, TLSv1.3, Cipher is TLS_AES_...
		/^Server Temp Key:/ { g = $4; sub(/,$/, "", g) } /^Peer signature type:/ { s = $4 }
		END { print p, c, g, s }'
}

# tls_handshakes NAME: "FULL RESUMED", the handshakes NAME's proxy has completed so far, from
# its own counters (Weft: the listener's ssl.handshake, which includes ssl.session_reused;
# HAProxy: the frontend's ssl_sess and ssl_reused_sess on its stats socket).
tls_handshakes() {
	case $1 in
	weft-tls)
		curl -s "http://127.0.0.1:$ADMIN_PORT/stats?filter=ssl" |
			awk '/ssl\.handshake:/ { h = $2 } /ssl\.session_reused:/ { r = $2 } END { print h - r, r + 0 }' ;;
	haproxy-tls)
		python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"show stat\n")
sys.stdout.write(s.makefile().read())' "$WORK/haproxy-tls/stats.sock" | awk -F, '
			NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "ssl_sess") f = i; if ($i == "ssl_reused_sess") r = i } }
			$2 == "FRONTEND" { print $f, $r }' ;;
	esac
}

# Both proxies run with session resumption off (no tickets, no session cache): wrk, like
# h2load, offers the previous connection's session when it reconnects, and would otherwise
# measure resumed handshakes. The proxies' counters check that every handshake was full.
TLS_PROXIES=""
for P in $PROXIES; do
	has_case tls || continue
	case $P in weft) TLS_PROXIES+="weft-tls " ;; haproxy) TLS_PROXIES+="haproxy-tls " ;; esac
done
if [ -n "$TLS_PROXIES" ] && ! command -v openssl >/dev/null; then
	log "TLS: skipped (no openssl command; Debian: apt-get install openssl)"
	TLS_PROXIES=""
fi
if [[ " $TLS_PROXIES" == *" haproxy-tls "* ]] && [[ $("$HAPROXY" -vv 2>/dev/null) != *USE_OPENSSL=1* ]]; then
	log "TLS: $HAPROXY is built without OpenSSL: no HAProxy rows"
	TLS_PROXIES=${TLS_PROXIES/haproxy-tls /}
fi
HS_ROWS="" TLS_SESSION=""
if [ -n "$TLS_PROXIES" ]; then
	tls_cert
	log "TLS: $ROUNDS rounds of wrk -t1 -c$CONNS -d${ROUND_SECS}s against each of: ${TLS_PROXIES% }" \
		"(new connection per request, then keep-alive)"
	for P in $TLS_PROXIES; do
		free_port
		start_proxy "$P" "$PORT"
		port=${PORT_OF[$P]}
		URL_OF[$P]="https://127.0.0.1:$port/"        # keep-alive, through to the upstream
		URL_OF[$P-hs]="https://127.0.0.1:$port/hello"   # answered by the proxy
		PID_OF[$P-hs]=${PID_OF[$P]}
		NO_UPSTREAM[$P-hs]=1
		HS_ROWS+="$P-hs "
		session=$(tls_session "$port")
		[[ $session == "TLSv1.3 "*" X25519 ECDSA" ]] || die "$P: the handshake negotiates '$session'"
		[ "$session" = "${TLS_SESSION:=$session}" ] ||
			die "$P negotiates '$session', the others '$TLS_SESSION': not the same TLS"
		for u in "${URL_OF[$P]}" "${URL_OF[$P-hs]}"; do
			body=$(curl -sk -w ' %{http_code}' "$u")
			[ "$body" = $'hello world\n 200' ] || die "$P: unexpected answer from $u: $body"
		done
		warm "$P-hs" "${PID_OF[$P]}" "${URL_OF[$P-hs]}" "$CONNS" req -H "Connection: close"
		R[$P-hs.syscalls]=$SYSCALLS
		warm "$P" "${PID_OF[$P]}" "${URL_OF[$P]}" "$CONNS" req
		R[$P.syscalls]=$SYSCALLS
	done
	for P in $TLS_PROXIES; do R[$P.hs0]=$(tls_handshakes "$P"); done
	measure "$HS_ROWS" "$CONNS" -H "Connection: close"
	for P in $TLS_PROXIES; do
		read -r f0 r0 <<<"${R[$P.hs0]}"
		read -r f1 r1 < <(tls_handshakes "$P")
		R[$P-hs.full]=$((f1 - f0))
		R[$P-hs.resumed]=$((r1 - r0))
		R[$P-hs.core]=$(fmt '%.0f' "1000000 / (${R[$P-hs.cpu_us]} > 0 ? ${R[$P-hs.cpu_us]} : 1)")
		if [ "${R[$P-hs.resumed]}" -ne 0 ] || [ "${R[$P-hs.full]}" -lt "${R[$P-hs.requests]}" ]; then
			log "FAIL $P: ${R[$P-hs.full]} full and ${R[$P-hs.resumed]} resumed handshakes for" \
				"${R[$P-hs.requests]} requests on new connections"
			FAILED=1
		fi
		log "$P: ${R[$P-hs.rps]} full handshakes/s, ${R[$P-hs.cpu_us]} us CPU/handshake" \
			"(${R[$P-hs.cpu_pct]}% CPU; ${R[$P-hs.full]} full, ${R[$P-hs.resumed]} resumed)"
	done
	measure "$TLS_PROXIES" "$CONNS"
	for P in $TLS_PROXIES; do
		log "$P: ${R[$P.rps]} req/s, ${R[$P.cpu_us]} us CPU/request (${R[$P.cpu_pct]}% CPU)"
		stop "${PID_OF[$P]}"
	done
fi

# ---------------------------------------------------------------------------------------------
# HTTP/2: h2c clients (h2load) to an HTTP/1.1 upstream, to an h2c upstream, and gRPC unary calls

# grpc_call URL: one gRPC call of $GRPC_REQ with nghttp; prints "STATUS CONTENT-TYPE BYTES
# GRPC-STATUS", the last from a trailer (a field after the response's DATA), "-" if none.
grpc_call() {
	{ timeout 10 nghttp -nv -H 'content-type: application/grpc' -H 'te: trailers' -d "$GRPC_REQ" "$1" 2>&1 || true; } |
		awk '
		/ recv \(stream_id=[0-9]+\) :status: / { st = $NF }
		/ recv \(stream_id=[0-9]+\) content-type: / { ct = $NF }
		/ recv DATA frame / { data = 1; match($0, /length=[0-9]+/); n += substr($0, RSTART + 7, RLENGTH - 7) }
		data && / recv \(stream_id=[0-9]+\) grpc-status: / { gs = $NF }
		END { print (st ? st : "-"), (ct ? ct : "-"), n + 0, (gs != "" ? gs : "-") }'
}

H2_PROXIES=""
for P in $PROXIES; do
	has_case h2 || continue
	case $P in weft | haproxy | nginx) H2_PROXIES+="$P-h2 " ;; esac
done
if [ -n "$H2_PROXIES" ] && ! { command -v h2load && command -v nghttp; } >/dev/null; then
	log "HTTP/2: skipped (no h2load or nghttp; Debian: apt-get install nghttp2-client)"
	H2_PROXIES=""
fi
H2_ROWS="" H2H2_ROWS="" GRPC_ROWS=""
if [ -n "$H2_PROXIES" ]; then
	# One gRPC message, field 1 (a string) = "hello world": 13 bytes of protobuf behind the
	# 5-byte gRPC frame header (not compressed, length 13). The upstream answers with the same.
	GRPC_PATH=/bench.Echo/Unary
	GRPC_REQ=$WORK/grpc-request
	printf '\0\0\0\0\r\n\vhello world' >"$GRPC_REQ"
	mkdir -p "$WORK/www${GRPC_PATH%/*}"
	cp "$GRPC_REQ" "$WORK/www$GRPC_PATH"
	GRPC_ANSWER="200 application/grpc $(stat -c %s "$GRPC_REQ") 0"
	h2get() { curl -s --http2-prior-knowledge -w ' %{http_code} HTTP/%{http_version}' "$1"; }
	[ "$(h2get "http://127.0.0.1:$UP2_PORT/")" = $'hello world\n 200 HTTP/2' ] || die "the h2c upstream does not answer"
	[ "$(grpc_call "http://127.0.0.1:$UP2_PORT$GRPC_PATH")" = "$GRPC_ANSWER" ] ||
		die "the h2c upstream does not answer gRPC calls: $(grpc_call "http://127.0.0.1:$UP2_PORT$GRPC_PATH")"
	log "HTTP/2: $ROUNDS rounds of h2load -t1 -c$H2_CONNS -m$H2_STREAMS -D $ROUND_SECS against each of:" \
		"direct-h2 ${H2_PROXIES% } (h2 -> h1), then h2 -> h2, then gRPC unary"
	for P in $H2_PROXIES; do
		free_port
		start_proxy "$P" "$PORT"   # PORT2: its listener to the h2c upstream
		b=${P%-h2}
		URL_OF[$P]="http://127.0.0.1:$PORT/"   # the "h2 -> h1" row
		H2_ROWS+="$P "
		[ "$(h2get "${URL_OF[$P]}")" = $'hello world\n 200 HTTP/2' ] ||
			die "$P: unexpected answer over h2c: $(h2get "${URL_OF[$P]}")"
		if [ "$b" != nginx ]; then   # nginx's proxy_pass has no HTTP/2 upstreams
			URL_OF[$b-h2h2]="http://127.0.0.1:$PORT2/"
			H2H2_ROWS+="$b-h2h2 "
			[ "$(h2get "http://127.0.0.1:$PORT2/proto")" = $'HTTP/2.0\n 200 HTTP/2' ] ||
				die "$P: the h2 -> h2 listener does not reach the upstream over HTTP/2: $(h2get "http://127.0.0.1:$PORT2/proto")"
		fi
		URL_OF[$b-grpc]="http://127.0.0.1:$PORT2$GRPC_PATH"
		GRPC_ROWS+="$b-grpc "
		answer=$(grpc_call "${URL_OF[$b-grpc]}")
		[ "$answer" = "$GRPC_ANSWER" ] ||
			die "$P: the gRPC call answers '$answer' (status, content-type, bytes, trailer grpc-status), not '$GRPC_ANSWER'"
		PID_OF[$b-h2h2]=${PID_OF[$P]}
		PID_OF[$b-grpc]=${PID_OF[$P]}
	done
	GRPC_ARGS=(-d "$GRPC_REQ" -H "content-type: application/grpc" -H "te: trailers")
	LOADGEN=run_h2load
	for P in $H2_ROWS $H2H2_ROWS; do
		warm "$P" "${PID_OF[$P]}" "${URL_OF[$P]}" "$H2_CONNS" req
		R[$P.syscalls]=$SYSCALLS
	done
	for P in $GRPC_ROWS; do
		warm "$P" "${PID_OF[$P]}" "${URL_OF[$P]}" "$H2_CONNS" req "${GRPC_ARGS[@]}"
		R[$P.syscalls]=$SYSCALLS
	done
	PID_OF[direct-h2]=""
	URL_OF[direct-h2]="http://127.0.0.1:$UP2_PORT/"
	measure "direct-h2 $H2_ROWS" "$H2_CONNS"
	[ -z "$H2H2_ROWS" ] || measure "$H2H2_ROWS" "$H2_CONNS"
	measure "$GRPC_ROWS" "$H2_CONNS" "${GRPC_ARGS[@]}"
	if [ "$H2_RATE" -gt 0 ]; then
		# the same sets at one offered load, Weft and HAProxy (name@rate: the same process)
		for P in $H2_ROWS $H2H2_ROWS $GRPC_ROWS; do
			case $P in weft-* | haproxy-*) ;; *) continue ;; esac
			URL_OF[$P@rate]=${URL_OF[$P]}
			PID_OF[$P@rate]=${PID_OF[$P]}
		done
		RATE_SETS=""
		for g in h2 h2h2 grpc; do
			[ -n "${URL_OF[weft-$g@rate]:-}" ] && [ -n "${URL_OF[haproxy-$g@rate]:-}" ] || continue
			RATE_SETS+="$g "
			if [ $g = grpc ]; then
				measure "weft-$g@rate haproxy-$g@rate" "$H2_CONNS" --rps="$H2_RATE" "${GRPC_ARGS[@]}"
			else
				measure "weft-$g@rate haproxy-$g@rate" "$H2_CONNS" --rps="$H2_RATE"
			fi
		done
	fi
	LOADGEN=run_wrk
	log "direct-h2: ${R[direct-h2.rps]} req/s"
	for P in $H2_ROWS $H2H2_ROWS $GRPC_ROWS; do
		log "$P: ${R[$P.rps]} req/s, ${R[$P.cpu_us]} us CPU/request (${R[$P.cpu_pct]}% CPU)"
	done
	for P in $H2_PROXIES; do stop "${PID_OF[$P]}"; done
fi

# ---------------------------------------------------------------------------------------------
# control plane

if has_case control; then
	log "control: weft control with $CONTROL_SERVICES services x $CONTROL_ENDPOINTS endpoints (CPU $PROXY_CPU)," \
		"$CONTROL_CLIENTS ADS clients from xds-load (CPU $LOAD_CPU)"
	d=$WORK/control
	mkdir -p "$d"
	free_port; MESH_PORT=$PORT # the services' port: the sidecar below binds its outbound listener there
	python3 "$HERE/gen_mesh.py" "$d/mesh" --services "$CONTROL_SERVICES" --endpoints "$CONTROL_ENDPOINTS" --port "$MESH_PORT"
	free_port; XDS_PORT=$PORT
	free_port; CTL_ADMIN_PORT=$PORT
	start "$PROXY_CPU" "$d/control.log" "$WEFT" control --config-dir "$d/mesh" --xds-port "$XDS_PORT" \
		--admin-port "$CTL_ADMIN_PORT"
	CTL_PID=$LAST_PID
	wait_port "$XDS_PORT" "$CTL_PID" "$d/control.log"
	R[control.start_kib]=$(awk '/^VmRSS:/ { print $2 }' "/proc/$CTL_PID/status")
	f=$d/mesh/svc-0000.yaml
	# the endpoint change: svc-0's first endpoint address; the VirtualService change: its timeout
	if ! run "$LOAD_CPU" "$d/load.log" timeout $((CONTROL_TIMEOUT * 4 + 60)) "$XDS_LOAD" --server "127.0.0.1:$XDS_PORT" \
		--clients "$CONTROL_CLIENTS" --control-pid "$CTL_PID" --timeout-s "$CONTROL_TIMEOUT" \
		--type EDS --change "sed -i 's/^  - address: 10.1.0.1\$/  - address: 10.1.0.254/' $f" \
		--type RDS --change "sed -i 's/^    timeout: 5s\$/    timeout: 7s/' $f"; then
		grep -v '^{' "$d/load.log" >&2 || true
		log "FAIL control: xds-load reported failed streams or a phase that timed out"
		FAILED=1
	fi
	grep -q 'address: 10.1.0.254' "$f" && grep -q 'timeout: 7s' "$f" || { log "FAIL control: the edits did not apply"; FAILED=1; }
	R[control.hwm_kib]=$(awk '/^VmHWM:/ { print $2 }' "/proc/$CTL_PID/status")
	R[control.rss_kib]=$(awk '/^VmRSS:/ { print $2 }' "/proc/$CTL_PID/status")
	# A real sidecar of that mesh (examples/mesh/sidecar.yaml, pointed at this control plane):
	# its RSS once the whole configuration came over ADS, every service a cluster of it.
	free_port; SC_ADMIN_PORT=$PORT
	sed -e "s/port_value: 15010/port_value: $XDS_PORT/" -e "s/port_value: 9902/port_value: $SC_ADMIN_PORT/" \
		"$HERE/../examples/mesh/sidecar.yaml" >"$d/sidecar.yaml"
	start "$LOAD_CPU" "$d/sidecar.log" "$WEFT" proxy -c "$d/sidecar.yaml" --concurrency 1
	SC_PID=$LAST_PID
	for _ in $(seq 600); do
		grep -q 'initial configuration received' "$d/sidecar.log" && break
		kill -0 "$SC_PID" 2>/dev/null || break
		sleep 0.1
	done
	if grep -q 'initial configuration received' "$d/sidecar.log"; then
		sleep 3 # the heap freed while the configuration came is given back 2 s after it applies
		R[control.sidecar_rss_kib]=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SC_PID/status")
		R[control.sidecar_clusters]=$(sed -n 's/.*config updated (xDS): version [0-9]*, [0-9]* listeners, \([0-9]*\) clusters.*/\1/p' \
			"$d/sidecar.log" | tail -1)
	else
		tail -5 "$d/sidecar.log" >&2
		log "FAIL control: the sidecar did not receive its configuration in 60 s"
		FAILED=1
	fi
	stop "$SC_PID"
	stop "$CTL_PID"
	json=$(grep '^{' "$d/load.log" | tail -1)
	[ -n "$json" ] || { tail -20 "$d/load.log" >&2; die "control: xds-load printed no result"; }
	while IFS='=' read -r k v; do R[control.$k]=$v; done < <(python3 - "$json" <<'PYEOF'
import json, sys
r = json.loads(sys.argv[1])
for k in ("clients", "connected", "complete", "failed"):
    print("%s=%s" % (k, r[k]))
for k, v in r["first_push_ms"].items():
    print("push_%s=%s" % (k, v))
for k, v in r.get("control", {}).items():
    print("initial_%s=%s" % (k, v))
for i, c in enumerate(r["changes"]):
    for k, v in c.items():
        print("change%d_%s=%s" % (i, k, v))
PYEOF
)
fi

ELAPSED=$(($(date +%s) - START_TIME))
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------
# report

ms() { fmt '%.2f' "$1 / 1000"; }
mb() { fmt '%.2f' "$1 * 1024 / 1000000"; }
row() { printf '%-15s %7s %9s %5s %9s %8s %8s %8s %9s %8s %7s\n' "$@"; }
trow() { printf '%-15s %7s %9s %5s %9s %7s\n' "$@"; }

echo
echo "Weft benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "$("$WEFT" version 2>/dev/null | head -1) ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'), built $(date -u -r "$WEFT" '+%H:%M UTC')), $("$HAPROXY" -v | head -1 | awk '{print $1, $3}'), $("$NGINX" -v 2>&1 | sed 's|.*: ||')"
if has_case http; then
	echo
	echo "HTTP/1.1 keep-alive reverse proxy, 1 worker on CPU $PROXY_CPU; upstream nginx and wrk -t1 -c$CONNS on CPU $LOAD_CPU;"
	echo "each row: $ROUNDS runs of ${ROUND_SECS}s, interleaved with the other rows'"
	row proxy req/s CPU/req,us CPU% syscl/req p50,ms p99,ms idle,MB B/idle-cn up-conns errors
	row "direct (none)" "${R[direct.rps]}" - - - "$(ms "${R[direct.p50]}")" "$(ms "${R[direct.p99]}")" - - - "${R[direct.errors]}"
	for P in $PROXIES; do
		row "$P" "${R[$P.rps]}" "${R[$P.cpu_us]}" "${R[$P.cpu_pct]}" "${R[$P.syscalls]}" "$(ms "${R[$P.p50]}")" \
			"$(ms "${R[$P.p99]}")" "$(mb "${R[$P.idle_kib]}")" "${R[$P.conn_bytes]}" "${R[$P.up_conns]}" "${R[$P.errors]}"
	done
	echo "  CPU/req: the proxy's utime+stime over its runs / requests. syscl/req: counted by perf during the"
	echo "  warm-up. p50, p99: median over the runs. idle: RSS after start, before any request. B/idle-cn: RSS"
	echo "  growth with $IDLE_CONNS idle keep-alive clients, / $IDLE_CONNS. up-conns: connections opened to the"
	echo "  upstream during the runs (wrk's in-flight requests are cut at the end of each run)."
fi

verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi; }
if [ -n "${R[weft.rps]:-}" ] && [ -n "${R[haproxy.rps]:-}" ]; then
	cpu_ratio=$(fmt '%.2f' "${R[weft.cpu_us]} / ${R[haproxy.cpu_us]}")
	echo
	echo "Weft / HAProxy: CPU per request ${cpu_ratio}x (rounds $(round_ratios weft haproxy)), requests/s $(fmt '%.2f' "${R[weft.rps]} / ${R[haproxy.rps]}")x," \
		"idle RSS $(fmt '%.2f' "${R[weft.idle_kib]} / ${R[haproxy.idle_kib]}")x," \
		"RSS per idle connection $(fmt '%.2f' "${R[weft.conn_bytes]} / (${R[haproxy.conn_bytes]} > 0 ? ${R[haproxy.conn_bytes]} : 1)")x"
	printf '  %-4s CPU per request <= 0.80x HAProxy     %s (%sx)\n' \
		"$(verdict "$cpu_ratio <= $TARGET_CPU_RATIO")" "" "$cpu_ratio"
fi
if [ -n "${R[weft.rps]:-}" ]; then
	printf '  %-4s idle RSS <= 3 MB                     (%s MB)\n' \
		"$(verdict "${R[weft.idle_kib]} * 1024 <= $TARGET_IDLE_RSS_BYTES")" "$(mb "${R[weft.idle_kib]}")"
	printf '  %-4s RSS per idle connection <= 1024 B    (%s B)\n' \
		"$(verdict "${R[weft.conn_bytes]} <= $TARGET_CONN_BYTES")" "${R[weft.conn_bytes]}"
fi
if [ -n "${R[weft.rps]:-}" ] && [ -n "${R[weft-resilience.rps]:-}" ]; then
	res_ratio=$(fmt '%.2f' "${R[weft-resilience.cpu_us]} / ${R[weft.cpu_us]}")
	echo
	echo "Weft with the traffic-management features configured (not firing) vs bare Weft:" \
		"CPU per request ${res_ratio}x (target <= ${TARGET_RESILIENCE_RATIO}x)" \
		"$(verdict "$res_ratio <= $TARGET_RESILIENCE_RATIO")"
fi

if [ -n "$TCP_PROXIES" ]; then
	echo
	echo "TCP relay, 1 worker on CPU $PROXY_CPU; wrk -t1 -c$TCP_CONNS GETs of a $BIG_MIB MiB file (upstream and wrk on CPU $LOAD_CPU)"
	trow relay MiB/s CPU/MiB,us CPU% syscl/MiB errors
	trow "direct (none)" "${R[direct-tcp.mibs]}" - - - "${R[direct-tcp.errors]}"
	for P in $TCP_PROXIES; do
		trow "$P" "${R[$P.mibs]}" "${R[$P.cpu_us_mib]}" "${R[$P.cpu_pct]}" "${R[$P.syscalls]}" "${R[$P.errors]}"
	done
	echo "  weft-tcp: tcp_proxy (splice). haproxy-tcp: mode tcp + option splice-auto. haproxy-splice: the same"
	echo "  with option splice-request + splice-response (splicing forced)."
	for H in haproxy-tcp haproxy-splice; do
		if [ -n "${R[weft-tcp.mibs]:-}" ] && [ -n "${R[$H.mibs]:-}" ]; then
			echo "Weft / $H: throughput $(fmt '%.2f' "${R[weft-tcp.mibs]} / ${R[$H.mibs]}")x," \
				"CPU per MiB $(fmt '%.2f' "${R[weft-tcp.cpu_us_mib]} / (${R[$H.cpu_us_mib]} > 0 ? ${R[$H.cpu_us_mib]} : 1)")x"
		fi
	done
fi
if [ -n "$TLS_PROXIES" ]; then
	echo
	echo "TLS termination ($TLS_SESSION, ECDSA P-256 certificate), 1 worker on CPU $PROXY_CPU;"
	echo "wrk -t1 -c$CONNS on CPU $LOAD_CPU; each row: $ROUNDS runs of ${ROUND_SECS}s, interleaved with the other rows'"
	hrow() { printf '%-15s %7s %9s %5s %9s %9s %8s %8s %7s\n' "$@"; }
	hrow "full handshake" hs/s CPU/hs,us CPU% hs/s/core syscl/hs p50,ms p99,ms errors
	for P in $TLS_PROXIES; do
		hrow "$P" "${R[$P-hs.rps]}" "${R[$P-hs.cpu_us]}" "${R[$P-hs.cpu_pct]}" "${R[$P-hs.core]}" \
			"${R[$P-hs.syscalls]}" "$(ms "${R[$P-hs.p50]}")" "$(ms "${R[$P-hs.p99]}")" "${R[$P-hs.errors]}"
	done
	echo "  a new connection and a full handshake per request (-H \"Connection: close\"; resumption off on"
	echo "  both proxies, and their counters saw none), GET /hello answered by the proxy itself."
	echo "  hs/s/core: 1 s / CPU per handshake, what one core of the proxy's would do. While the proxy"
	echo "  is below 100% CPU, hs/s is the load generator's limit (it verifies every server signature)."
	row "keep-alive" req/s CPU/req,us CPU% syscl/req p50,ms p99,ms - - up-conns errors
	for P in $TLS_PROXIES; do
		row "$P" "${R[$P.rps]}" "${R[$P.cpu_us]}" "${R[$P.cpu_pct]}" "${R[$P.syscalls]}" "$(ms "${R[$P.p50]}")" \
			"$(ms "${R[$P.p99]}")" - - "${R[$P.up_conns]}" "${R[$P.errors]}"
	done
	echo "  GET / on keep-alive TLS connections, proxied to the upstream over plain HTTP/1.1 keep-alive."
	if [ -n "${R[weft-tls.rps]:-}" ] && [ -n "${R[haproxy-tls.rps]:-}" ]; then
		hs_ratio=$(fmt '%.2f' "${R[weft-tls-hs.core]} / ${R[haproxy-tls-hs.core]}")
		echo "Weft / HAProxy: full handshakes per second per core ${hs_ratio}x (CPU per handshake" \
			"$(fmt '%.2f' "${R[weft-tls-hs.cpu_us]} / ${R[haproxy-tls-hs.cpu_us]}")x, measured handshakes/s" \
			"$(fmt '%.2f' "${R[weft-tls-hs.rps]} / ${R[haproxy-tls-hs.rps]}")x);"
		echo "  keep-alive: requests/s $(fmt '%.2f' "${R[weft-tls.rps]} / ${R[haproxy-tls.rps]}")x," \
			"CPU per request $(fmt '%.2f' "${R[weft-tls.cpu_us]} / ${R[haproxy-tls.cpu_us]}")x"
		printf '  %-4s full handshakes per second per core >= HAProxy'"'"'s   (%sx)\n' \
			"$(verdict "$hs_ratio >= $TARGET_TLS_HS_RATIO")" "$hs_ratio"
	fi
fi
if [ -n "$H2_ROWS" ]; then
	echo
	echo "HTTP/2, h2c by prior knowledge, 1 worker on CPU $PROXY_CPU; upstream nginx and h2load -t1 -c$H2_CONNS -m$H2_STREAMS"
	echo "on CPU $LOAD_CPU; each row: $ROUNDS runs of ${ROUND_SECS}s, interleaved with the other rows of its set"
	h2row() { printf '%-18s %7s %9s %5s %9s %9s %8s %7s\n' "$@"; }
	# h2rows TITLE ROWS...: a header line, then a line per row. x HAProxy: the row's CPU per
	# request / that of the HAProxy row among ROWS.
	h2rows() {
		local title=$1 P ha="" cpu pct x up
		shift
		for P in "$@"; do [[ $P != haproxy-* ]] || ha=${R[$P.cpu_us]}; done
		h2row "$title" req/s CPU/req,us CPU% "x HAProxy" syscl/req up-conns errors
		for P in "$@"; do
			cpu=- pct=- x=- up=-
			if [ -n "${PID_OF[$P]}" ]; then   # not the direct row
				cpu=${R[$P.cpu_us]} pct=${R[$P.cpu_pct]} up=${R[$P.up_conns]}
				[ -z "$ha" ] || x=$(fmt '%.2fx' "$cpu / $ha")
			fi
			h2row "$P" "${R[$P.rps]}" "$cpu" "$pct" "$x" "${R[$P.syscalls]:--}" "$up" "${R[$P.errors]}"
		done
	}
	# shellcheck disable=SC2086  # the row lists are words
	{
		h2rows "h2 -> h1" direct-h2 $H2_ROWS
		[ -z "$H2H2_ROWS" ] || h2rows "h2 -> h2" $H2H2_ROWS
		h2rows "gRPC unary" $GRPC_ROWS
	}
	echo "  h2 -> h1: GET / through each proxy to the HTTP/1.1 keep-alive upstream (direct-h2: h2load"
	echo "  straight to the h2c upstream). h2 -> h2: the same to the h2c upstream (Weft: explicit_http_config"
	echo "  http2; HAProxy: server ... proto h2); nginx has no row, its proxy_pass speaks HTTP/1.x upstream."
	echo "  gRPC unary: POSTs of one gRPC message ($(stat -c %s "$GRPC_REQ") bytes with its frame header; content-type"
	echo "  application/grpc, te: trailers), answered with the same message and a grpc-status 0 trailer"
	echo "  (checked with nghttp through each proxy; nginx: grpc_pass). x HAProxy: CPU/req / HAProxy's in"
	echo "  the same set. CPU/req, syscl/req, up-conns as in the HTTP/1.1 table; the end of each run cuts"
	echo "  h2load's $INFLIGHT streams in flight."
	if [ -n "${RATE_SETS:-}" ]; then
		echo
		echo "The same at one offered load: h2load --rps=$H2_RATE per connection ($((H2_RATE * H2_CONNS)) requests/s), Weft and HAProxy"
		for g in $RATE_SETS; do
			case $g in h2) t="h2 -> h1" ;; h2h2) t="h2 -> h2" ;; grpc) t="gRPC unary" ;; esac
			h2rows "$t" "weft-$g@rate" "haproxy-$g@rate"
		done
	fi
	for g in "h2:h2 -> h1" "h2h2:h2 -> h2" "grpc:gRPC unary"; do
		for k in "" @rate; do
			w=weft-${g%%:*}$k h=haproxy-${g%%:*}$k
			if [ -z "${R[$w.rps]:-}" ] || [ -z "${R[$h.rps]:-}" ]; then continue; fi
			ratio=$(fmt '%.2f' "${R[$w.cpu_us]} / ${R[$h.cpu_us]}")
			load=${k:+"at $((H2_RATE * H2_CONNS)) req/s"}
			printf 'Weft / HAProxy, %-10s CPU per request %sx (rounds %s), requests/s %sx %s\n' "${g#*:}:" "$ratio" \
				"$(round_ratios "$w" "$h")" "$(fmt '%.2f' "${R[$w.rps]} / ${R[$h.rps]}")" "${load:-(as fast as the load goes)}"
			printf '  %-4s %-10s CPU per request <= 0.80x HAProxy   (%sx) %s\n' \
				"$(verdict "$ratio <= $TARGET_CPU_RATIO")" "${g#*:}:" "$ratio" "$load"
		done
	done
fi
if [ -n "${R[control.clients]:-}" ]; then
	echo
	echo "Control plane: weft control --config-dir on CPU $PROXY_CPU, $CONTROL_SERVICES ServiceEntries x $CONTROL_ENDPOINTS endpoints"
	echo "(bench/gen_mesh.py); xds-load on CPU $LOAD_CPU, ${R[control.clients]} ADS clients (SotW, CDS+EDS+LDS+RDS, every response ACKed)"
	echo "  clients: ${R[control.connected]} connected, ${R[control.complete]} with a full push, ${R[control.failed]} streams failed"
	echo "  first full push per client: p50 ${R[control.push_p50]} ms, p99 ${R[control.push_p99]} ms, max ${R[control.push_max]} ms;" \
		"all clients $(fmt '%.2f' "${R[control.push_all]} / 1000") s after the first connect"
	echo "  weft control: RSS at start $(mb "${R[control.start_kib]}") MB, after the initial push $(mb "${R[control.initial_rss_kb]}") MB," \
		"at the end $(mb "${R[control.rss_kib]}") MB, peak (VmHWM) $(mb "${R[control.hwm_kib]}") MB"
	echo "  weft control CPU (utime+stime): initial push ${R[control.initial_cpu_initial_s]} s"
	[ -z "${R[control.sidecar_rss_kib]:-}" ] ||
		echo "  a weft proxy sidecar of this mesh (examples/mesh/sidecar.yaml, one worker): ${R[control.sidecar_clusters]} clusters over ADS," \
			"RSS $(mb "${R[control.sidecar_rss_kib]}") MB"
	crow() { printf '  %-22s %9s %9s %9s %13s %8s\n' "$@"; }
	crow change p50,ms p99,ms max,ms not-converged CPU,s
	crow "endpoint (EDS)" "${R[control.change0_p50_ms]}" "${R[control.change0_p99_ms]}" "${R[control.change0_max_ms]}" \
		"${R[control.change0_not_converged]}" "${R[control.change0_cpu_s]}"
	crow "VirtualService (RDS)" "${R[control.change1_p50_ms]}" "${R[control.change1_p99_ms]}" "${R[control.change1_max_ms]}" \
		"${R[control.change1_not_converged]}" "${R[control.change1_cpu_s]}"
	echo "  convergence: from the file edit to each client's next response of the type (-1: some did not converge)"
	printf '  %-4s peak RSS <= 300 MB                       (%s MB)\n' \
		"$(verdict "${R[control.hwm_kib]} * 1024 <= $TARGET_CONTROL_RSS_BYTES")" "$(mb "${R[control.hwm_kib]}")"
	for i in 0 1; do
		[ "$i" = 0 ] && what="endpoint change" || what="VirtualService change"
		p99=${R[control.change${i}_p99_ms]}
		printf '  %-4s %-22s convergence p99 <= 1 s  (%s ms)\n' \
			"$(verdict "$p99 >= 0 && $p99 <= $TARGET_CONTROL_P99_MS")" "$what" "$p99"
	done
fi
echo
echo "measured in ${ELAPSED}s; load average before: $LOAD_START, after: $LOAD_END (other work on the machine skews the figures)"
if [ "$FAILED" != 0 ]; then
	echo "bench: FAILED (see messages above)" >&2
	exit 1
fi
