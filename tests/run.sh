#!/bin/bash
# Run every test tier and end with one line "N passed, N failed":
#   unit tests (plain and ASan+UBSan builds), the fuzz seed corpora replayed under the
#   sanitizers, and the end-to-end suite against build/weft and build/asan/weft.
# Usage: tests/run.sh [-k FILTER]   (FILTER narrows the e2e tests)
cd "$(dirname "$0")/.."
# An undefined behaviour the sanitized builds find stops that process (and fails its test)
# instead of being printed and forgotten.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
PASSED=0
FAILED=0
FAILS=()
LOG=build/test-logs
mkdir -p "$LOG"

count() { # $1: name, $2: output file, $3: exit status
	local line p f
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$2" | tail -1)
	if [ -z "$line" ]; then
		p=0; f=1
	else
		p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
		[ "$3" != 0 ] && [ "$f" = 0 ] && f=1
	fi
	PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
	if [ "$f" != 0 ]; then
		FAILS+=("$1")
		grep -E '^FAIL|CHECK|Error|error' "$2" | head -20 | sed "s|^|  $1: |"
	fi
	echo "== $1: ${p} passed, ${f} failed"
}

for build in build build/asan; do
	for t in $(find "$build/tests" -type f -perm -u+x 2>/dev/null | sort); do
		name=${t#build/}
		out="$LOG/$(echo "$name" | tr / _).log"
		timeout 120 "$t" > "$out" 2>&1
		count "$name" "$out" $?
	done
done

out="$LOG/fuzz-replay.log"
if make -s -C fuzz replay > "$out" 2>&1; then
	n=$(find fuzz/corpus -type f | wc -l)
	echo "$n passed, 0 failed" >> "$out"
	count "fuzz-replay" "$out" 0
else
	echo "0 passed, 1 failed" >> "$out"
	count "fuzz-replay" "$out" 1
fi

# The e2e tests' Node peers (ws, @grpc/grpc-js), from the lock file, when missing or stale.
NODE=tests/e2e/node
if [ ! -d "$NODE/node_modules/ws" ] || [ ! -d "$NODE/node_modules/@grpc/grpc-js" ] ||
	[ "$NODE/package-lock.json" -nt "$NODE/node_modules/.package-lock.json" ]; then
	npm ci --prefix "$NODE" --no-audit --no-fund --loglevel=error > "$LOG/npm-ci.log" 2>&1 ||
		echo "npm ci --prefix $NODE failed (see $LOG/npm-ci.log): the WebSocket and gRPC tests will fail"
fi

for bin in build/weft build/asan/weft; do
	out="$LOG/e2e-$(echo "$bin" | tr / _).log"
	WEFT_BIN="$PWD/$bin" timeout 900 python3 tests/e2e/run.py "$@" > "$out" 2>&1
	count "e2e ($bin)" "$out" $?
done

[ ${#FAILS[@]} -gt 0 ] && echo "failed suites: ${FAILS[*]} (logs in $LOG/)"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
