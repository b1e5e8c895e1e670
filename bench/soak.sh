#!/usr/bin/env bash
# Soak for docs/performance.md (`make bench-soak`; CI never runs it: it
# takes minutes and its figures depend on the machine).
#
# Starts the bench upstream (a WebSocket echo) and a real gateway
# (`meetguard bench gateway`: the development provider with USERS extra
# identities, the shipped policy, a durable audit file, the memory rooms
# store or, with STORE=redis, a redis-server started here), then
# `meetguard bench soak`: CONNS WebSockets held through the gateway, each as
# its own identity, while joins, leaves and host kicks churn for DURATION.
# It samples the gateway's heap, goroutines and open descriptors from the
# admin listener's /metrics and prints a markdown table, the operation and
# error counts and a verdict; it exits non-zero on any unexpected error or a
# growth trend above the tolerance.
#
# Environment:
#   CONNS=1000  DURATION=10m  WARMUP=1m  CHURN=10 (cycles/s)  KICKS=0.5
#   SAMPLE=5s  STORE=memory|redis  PORT_BASE=18400  SAMPLES=file.tsv
#   SOAK_ARGS="..." (more `bench soak` flags)
#   PROFILES=DIR: heap profiles of the gateway (after a GC) every
#   PROFILE_EVERY (60 s) into DIR/heap.N, and the goroutine count beside
#   each, for `go tool pprof -base DIR/heap.2 DIR/heap.9`
set -euo pipefail

CONNS=${CONNS:-1000}
DURATION=${DURATION:-10m}
WARMUP=${WARMUP:-1m}
CHURN=${CHURN:-10}
KICKS=${KICKS:-0.5}
SAMPLE=${SAMPLE:-5s}
STORE=${STORE:-memory}
PORT_BASE=${PORT_BASE:-18400}
GO=${GO:-go}

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/meetguard-soak.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
say() { echo "$@" >&2; }

# The gateway holds two descriptors per proxied socket (client and
# upstream), the soak client one: 1,000 sockets need over 2,000 here.
ulimit -n 20000 2>/dev/null || say "bench-soak: could not raise the descriptor limit to 20000 ($(ulimit -n))"
need=$((2 * CONNS + 200))
[ "$(ulimit -n)" -ge "$need" ] || { say "bench-soak: CONNS=$CONNS needs $need descriptors, the limit is $(ulimit -n)"; exit 1; }

say "building meetguard..."
(cd "$root" && $GO build -o "$work/meetguard" ./cmd/meetguard)
MG=$work/meetguard
UP=$((PORT_BASE)) GW=$((PORT_BASE + 1)) ADMIN=$((PORT_BASE + 2)) REDIS=$((PORT_BASE + 3))

wait_port() {
	for _ in $(seq 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	say "bench-soak: nothing listens on port $1"
	return 1
}

gwargs=()
case $STORE in
memory) ;;
redis)
	command -v redis-server >/dev/null || { say "bench-soak: STORE=redis needs redis-server on PATH"; exit 1; }
	redis-server --port "$REDIS" --bind 127.0.0.1 --save '' --appendonly no --maxclients 10000 >"$work/redis.log" 2>&1 &
	pids+=($!)
	wait_port "$REDIS"
	gwargs=(--redis "127.0.0.1:$REDIS")
	;;
*) say "bench-soak: STORE must be memory or redis"; exit 2 ;;
esac

"$MG" bench upstream --listen "127.0.0.1:$UP" >"$work/upstream.log" 2>&1 &
pids+=($!)
wait_port "$UP"
# The gateway's JSON log (access log included) goes to a file: a soak
# writes hundreds of lines a second.
"$MG" bench gateway --listen "127.0.0.1:$GW" --to "http://127.0.0.1:$UP" --creds "$work/creds" \
	--users "$CONNS" --admin "127.0.0.1:$ADMIN" --audit "$work/audit.log" ${PROFILES:+--heapprofile "$work/heap"} "${gwargs[@]}" >"$work/gateway.log" 2>&1 &
gwpid=$!
pids+=("$gwpid")
if [ -n "${PROFILES:-}" ]; then
	mkdir -p "$PROFILES"
	(
		n=0
		while sleep "${PROFILE_EVERY:-60}"; do
			n=$((n + 1))
			kill -USR1 "$gwpid" 2>/dev/null || exit 0
			sleep 5
			cp "$work/heap" "$PROFILES/heap.$n" 2>/dev/null || true
			cp "$work/heap.goroutines" "$PROFILES/heap.$n.goroutines" 2>/dev/null || true
		done
	) &
	pids+=($!)
fi
for _ in $(seq 300); do [ -s "$work/creds" ] && break; sleep 0.1; done
[ -s "$work/creds" ] || { say "bench-soak: the gateway did not start: $(tail -5 "$work/gateway.log")"; exit 1; }

echo "# meetguard soak"
echo
echo "Machine: $(nproc) vCPU $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -sr), $($GO version | awk '{print $3}'). Store: $STORE. Descriptor limit: $(ulimit -n)."
echo
rc=0
# shellcheck disable=SC2086
"$MG" bench soak --gateway "http://127.0.0.1:$GW" --metrics "http://127.0.0.1:$ADMIN/metrics" \
	--conns "$CONNS" --duration "$DURATION" --warmup "$WARMUP" --churn "$CHURN" --kick-fraction "$KICKS" \
	--sample "$SAMPLE" ${SAMPLES:+--samples "$SAMPLES"} ${SOAK_ARGS:-} || rc=$?
if ! kill -0 "$gwpid" 2>/dev/null; then
	say "bench-soak: the gateway died: $(tail -5 "$work/gateway.log")"
	rc=1
fi
errs=$(grep -c '"level":"error"' "$work/gateway.log" || true)
echo
echo "Gateway log: $(wc -l <"$work/gateway.log") lines, $errs at level error."
[ "$errs" = 0 ] || { say "bench-soak: gateway errors:"; grep '"level":"error"' "$work/gateway.log" | head -5 >&2; }
if [ "$rc" != 0 ]; then
	# The audit log says why a join or host action was refused.
	keep=$(mktemp -d /tmp/meetguard-soak-failed.XXXXXX)
	cp "$work/gateway.log" "$work/audit.log" "$keep/" 2>/dev/null || true
	say "bench-soak: the gateway's log and audit log are in $keep"
fi
exit "$rc"
