#!/usr/bin/env bash
# Peer comparison for docs/performance.md (`make bench-peers`; CI never runs
# it: the figures are only worth something side by side in one run).
#
#  1. HTTP: the same wrk load (-t2 -c50, 1 KiB answer, keep-alive) against the
#     upstream directly, a plain httputil.ReverseProxy, nginx and Caddy when
#     installed, and meetguard with a bearer token and with a session cookie,
#     interleaved over ROUNDS rounds (the order rotates each round).
#  2. Idle WebSockets: a fresh proxy process per measurement, N sockets opened
#     through it (one echo each) and held; its RSS growth divided by N.
#  3. Join storm: BenchmarkStorm302 (two nodes, real Redis) and BenchmarkJoin
#     (memory store, durable audit), ROUNDS runs each.
#
# Prints one markdown table per part: medians over the rounds and ratios, with
# the machine, date and load average. Environment:
#   ROUNDS=3  DURATION=10 (s per wrk run)  WS_COUNTS="2000 8000"  WS_ROUNDS=ROUNDS
#   PARTS="http ws storm"  MEETGUARD_CADDY=path  MEETGUARD_NGINX=path  PORT_BASE=18300
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WS_COUNTS=${WS_COUNTS:-"2000 8000"}
WS_ROUNDS=${WS_ROUNDS:-$ROUNDS}
PARTS=${PARTS:-"http ws storm"}
PORT_BASE=${PORT_BASE:-18300}
CADDY=${MEETGUARD_CADDY:-$HOME/.cache/meetguard/caddy/caddy}
[ -x "$CADDY" ] || CADDY=$(command -v caddy || true)
NGINX=${MEETGUARD_NGINX:-$(command -v nginx || true)}
WRK=${WRK:-$(command -v wrk || true)}
GO=${GO:-go}

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/meetguard-peers.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
say() { echo "$@" >&2; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }

[ -n "$WRK" ] || { say "bench-peers: wrk is not installed (apt-get install wrk)"; exit 1; }
ulimit -n 20000 2>/dev/null || say "bench-peers: could not raise the descriptor limit to 20000 ($(ulimit -n))"

say "building meetguard..."
(cd "$root" && $GO build -o "$work/meetguard" ./cmd/meetguard)
MG=$work/meetguard

port() { echo $((PORT_BASE + $1)); }
UP=$(port 0) PLAIN=$(port 1) NGX=$(port 2) CAD=$(port 3) GW=$(port 4)

# start NAME CMD...: runs CMD in the background, output in $work/NAME.log;
# its pid is in $LAST (never call start in a subshell: the pid would be lost).
LAST=
start() {
	local name=$1
	shift
	"$@" >"$work/$name.log" 2>&1 &
	LAST=$!
	pids+=("$LAST")
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
wait_port() {
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	say "bench-peers: nothing listens on port $1"
	return 1
}

nginx_conf() { # nginx_conf DIR: one worker, keep-alive to the upstream, WebSocket upgrade
	mkdir -p "$1"
	local user=""
	[ "$(id -u)" = 0 ] && user="user root root;"
	cat >"$1/nginx.conf" <<EOF
$user
daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 19000; }
http {
  access_log off;
  client_body_temp_path $1/body; proxy_temp_path $1/proxy; fastcgi_temp_path $1/fastcgi;
  uwsgi_temp_path $1/uwsgi; scgi_temp_path $1/scgi;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' ''; }
  upstream app { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:$NGX;
    location / {
      proxy_pass http://app; proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade; proxy_set_header Connection \$connection_upgrade;
      proxy_read_timeout 1h;
    }
  }
}
EOF
}
caddy_conf() {
	cat >"$1" <<EOF
{
	admin off
	auto_https off
	persist_config off
}
http://127.0.0.1:$CAD {
	reverse_proxy 127.0.0.1:$UP
}
EOF
}

# start_proxy NAME: starts one proxy in front of the upstream; its pid in $LAST.
start_proxy() {
	case $1 in
	plain) start plain "$MG" bench plainproxy --listen "127.0.0.1:$PLAIN" --to "http://127.0.0.1:$UP"; wait_port "$PLAIN" ;;
	nginx) nginx_conf "$work/nginx"; start nginx "$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log"; wait_port "$NGX" ;;
	caddy) caddy_conf "$work/Caddyfile"; start caddy "$CADDY" run --config "$work/Caddyfile" --adapter caddyfile; wait_port "$CAD" ;;
	meetguard)
		rm -f "$work/creds"
		start meetguard "$MG" bench gateway --listen "127.0.0.1:$GW" --to "http://127.0.0.1:$UP" --creds "$work/creds"
		local pid=$LAST
		for _ in $(seq 100); do [ -s "$work/creds" ] && break; sleep 0.1; done
		[ -s "$work/creds" ] || { say "bench-peers: meetguard did not sign in: $(tail -3 "$work/meetguard.log")"; return 1; }
		LAST=$pid
		;;
	esac
}
proxy_port() { case $1 in direct) echo "$UP" ;; plain) echo "$PLAIN" ;; nginx) echo "$NGX" ;; caddy) echo "$CAD" ;; *) echo "$GW" ;; esac; }
token() { "$MG" bench token --from "http://127.0.0.1:$GW"; }

# rss_kib PID: resident set of the process and its children (nginx's worker).
rss_kib() {
	local total=0 p
	for p in $1 $(pgrep -P "$1" || true); do
		total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
	done
	echo "$total"
}

# to_ms "1.23ms" -> 1.23
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'; }

# median of the numbers on stdin
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print "-"; exit } if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
range() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%s–%s", lo, hi }'; }

machine="$(nproc) vCPU $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -sr), $($GO version | awk '{print $3}')"
echo "# meetguard peer comparison"
echo
echo "Machine: $machine. Date: $(date -u '+%Y-%m-%d %H:%M UTC'). Load average at start: $(cut -d' ' -f1-3 /proc/loadavg)."
echo

http_part() {
	local targets=(direct plain) t r i
	[ -n "$NGINX" ] && targets+=(nginx) || say "bench-peers: nginx not installed: skipped"
	[ -n "$CADDY" ] && targets+=(caddy) || say "bench-peers: Caddy not found (MEETGUARD_CADDY or ~/.cache/meetguard/caddy/caddy): skipped"
	targets+=(meetguard_bearer meetguard_cookie)
	start upstream "$MG" bench upstream --listen "127.0.0.1:$UP"
	wait_port "$UP"
	for t in plain nginx caddy meetguard; do
		case " ${targets[*]} " in *" $t"*) start_proxy "$t" ;; esac
	done
	local cookie
	cookie=$(sed 's/^cookie: //' "$work/creds")
	: >"$work/http.tsv"
	for r in $(seq "$ROUNDS"); do
		local tok
		tok=$(token)
		local n=${#targets[@]}
		for i in $(seq 0 $((n - 1))); do
			t=${targets[$(((i + r - 1) % n))]}
			local hdr=() url="http://127.0.0.1:$(proxy_port "$t")/app/x"
			case $t in
			plain | meetguard_bearer) hdr=(-H "Authorization: Bearer $tok") ;;
			meetguard_cookie) hdr=(-H "Cookie: $cookie") ;;
			esac
			local la out rps p99 bad
			la=$(loadavg)
			out=$("$WRK" -t2 -c50 -d"${DURATION}s" --latency "${hdr[@]}" "$url")
			rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
			p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
			bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
			printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$t" "$rps" "$p99" "${bad:-0}" "$la" >>"$work/http.tsv"
			say "round $r $t: $rps req/s p99 $p99 ms non-2xx ${bad:-0} (load $la)"
		done
	done
	for p in "${pids[@]}"; do stop "$p"; done
	pids=()

	echo "## HTTP: wrk -t2 -c50 -d${DURATION}s, 1 KiB GET, keep-alive, $ROUNDS interleaved rounds"
	echo
	echo "| target | req/s (median) | range | p99 ms (median) | vs plain Go proxy (req/s) | vs Caddy (req/s) | p99 vs plain | non-2xx | load avg during |"
	echo "|---|---|---|---|---|---|---|---|---|"
	local plain_rps plain_p99 caddy_rps
	plain_rps=$(awk -F'\t' '$2 == "plain" {print $3}' "$work/http.tsv" | median)
	plain_p99=$(awk -F'\t' '$2 == "plain" {print $4}' "$work/http.tsv" | median)
	caddy_rps=$(awk -F'\t' '$2 == "caddy" {print $3}' "$work/http.tsv" | median)
	for t in "${targets[@]}"; do
		local m rg p bad la
		m=$(awk -F'\t' -v t="$t" '$2 == t {print $3}' "$work/http.tsv" | median)
		rg=$(awk -F'\t' -v t="$t" '$2 == t {printf "%.0f\n", $3}' "$work/http.tsv" | range)
		p=$(awk -F'\t' -v t="$t" '$2 == t {print $4}' "$work/http.tsv" | median)
		bad=$(awk -F'\t' -v t="$t" '$2 == t {s += $5} END {print s + 0}' "$work/http.tsv")
		la=$(awk -F'\t' -v t="$t" '$2 == t {print $6}' "$work/http.tsv" | range)
		awk -v t="$t" -v m="$m" -v rg="$rg" -v p="$p" -v pr="$plain_rps" -v pp="$plain_p99" -v cr="$caddy_rps" -v bad="$bad" -v la="$la" 'BEGIN {
			vc = (cr == "-" || cr == "") ? "–" : sprintf("%.2f×", m / cr)
			printf "| %s | %.0f | %s | %.1f | %.2f× | %s | %.2f× | %s | %s |\n", t, m, rg, p, m / pr, vc, p / pp, bad, la }'
	done
	echo
}

ws_part() {
	local targets=(plain) t n r
	[ -n "$NGINX" ] && targets+=(nginx) || say "bench-peers: nginx not installed: skipped"
	[ -n "$CADDY" ] && targets+=(caddy) || say "bench-peers: Caddy not found: skipped"
	targets+=(meetguard)
	: >"$work/ws.tsv"
	for n in $WS_COUNTS; do
		for r in $(seq "$WS_ROUNDS"); do
			local k=${#targets[@]} i
			for i in $(seq 0 $((k - 1))); do
				t=${targets[$(((i + r - 1) % k))]}
				# A fresh upstream and a fresh proxy for each measurement.
				local up px base held after la hdr=()
				start upstream "$MG" bench upstream --listen "127.0.0.1:$UP"
				up=$LAST
				wait_port "$UP"
				start_proxy "$t"
				px=$LAST
				[ "$t" = meetguard ] && hdr=(--token-from "http://127.0.0.1:$GW")
				# Warm: one request and one socket, so the baseline holds the
				# runtime's and the pools' fixed costs.
				"$MG" bench wsclients --url "ws://127.0.0.1:$(proxy_port "$t")/app/ws" --n 1 --once "${hdr[@]}" >/dev/null
				sleep 1
				base=$(rss_kib "$px")
				la=$(loadavg)
				"$MG" bench wsclients --url "ws://127.0.0.1:$(proxy_port "$t")/app/ws" --n "$n" "${hdr[@]}" >"$work/ws.out" 2>"$work/ws.err" &
				local cl=$!
				for _ in $(seq 3000); do grep -q '^held' "$work/ws.out" && break; sleep 0.1; done
				held=$(awk '/^held/ {print $2}' "$work/ws.out")
				[ "${held:-0}" = "$n" ] || say "ws $n $t: $(head -c 300 "$work/ws.err")"
				sleep 2
				after=$(rss_kib "$px")
				stop "$cl"
				stop "$px"
				stop "$up"
				pids=()
				printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$r" "$t" "${held:-0}" "$base" "$after" "$la" >>"$work/ws.tsv"
				say "ws $n round $r $t: held ${held:-0}, RSS $base -> $after KiB ($(awk -v a="$after" -v b="$base" -v n="${held:-1}" 'BEGIN {printf "%.1f", (a - b) / (n ? n : 1)}') KiB/conn, load $la)"
			done
		done
	done
	echo "## Idle WebSockets: proxy RSS growth per held connection (fresh process each, one echo each), $WS_ROUNDS rounds"
	echo
	echo "| target | connections | held (min) | KiB per connection (median) | range | vs plain Go proxy | load avg during |"
	echo "|---|---|---|---|---|---|---|"
	for n in $WS_COUNTS; do
		local plain_kib
		plain_kib=$(awk -F'\t' -v n="$n" '$1 == n && $3 == "plain" && $4 > 0 {print ($6 - $5) / $4}' "$work/ws.tsv" | median)
		for t in "${targets[@]}"; do
			local m rg held la
			m=$(awk -F'\t' -v n="$n" -v t="$t" '$1 == n && $3 == t && $4 > 0 {print ($6 - $5) / $4}' "$work/ws.tsv" | median)
			rg=$(awk -F'\t' -v n="$n" -v t="$t" '$1 == n && $3 == t && $4 > 0 {printf "%.1f\n", ($6 - $5) / $4}' "$work/ws.tsv" | range)
			held=$(awk -F'\t' -v n="$n" -v t="$t" '$1 == n && $3 == t {print $4}' "$work/ws.tsv" | sort -g | head -1)
			la=$(awk -F'\t' -v n="$n" -v t="$t" '$1 == n && $3 == t {print $7}' "$work/ws.tsv" | range)
			awk -v t="$t" -v n="$n" -v held="$held" -v m="$m" -v rg="$rg" -v p="$plain_kib" -v la="$la" 'BEGIN {
				printf "| %s | %d | %s | %.1f | %s | %.2f× | %s |\n", t, n, held, m, rg, (p > 0 ? m / p : 0), la }'
		done
	done
	echo
}

storm_part() {
	if ! command -v redis-server >/dev/null; then
		say "bench-peers: redis-server not installed: join storm skipped"
		return
	fi
	local la
	la=$(cut -d' ' -f1-3 /proc/loadavg)
	(cd "$root" && $GO test ./gateway/roomsapi/ -run '^$' -bench 'Storm302$' -benchtime 10x -count "$ROUNDS" &&
		$GO test ./gateway/roomsapi/ -run '^$' -bench 'Join/memory/x16$' -benchtime 2000x -count "$ROUNDS") >"$work/storm.out" 2>&1 ||
		{ say "bench-peers: storm benchmark failed: $(tail -5 "$work/storm.out")"; return; }
	echo "## Join storm (BenchmarkStorm302: 302 joins into one room of 300 over two nodes and a real Redis) and joins (BenchmarkJoin/memory/x16: 16 clients, memory store, durable audit), $ROUNDS runs, load average at start $la"
	echo
	echo "| benchmark | metric | median | range |"
	echo "|---|---|---|---|"
	# Result lines only (a log line can start with a benchmark's name).
	awk '$1 ~ /^Benchmark/ && $2 ~ /^[0-9]+$/ && $4 == "ns/op" { name = $1; sub(/-[0-9]+$/, "", name)
			for (i = 3; i < NF; i += 2) if ($(i + 1) ~ /^(joins\/s|p50-ms|p99-ms|B\/op|allocs\/op)$/) print name "\t" $(i + 1) "\t" $i }' "$work/storm.out" |
		awk -F'\t' '{ k = $1 "\t" $2; v[k] = v[k] " " $3; if (!(k in seen)) { seen[k] = 1; order[++n] = k } }
		END { for (i = 1; i <= n; i++) print order[i] "\t" v[order[i]] }' |
		while IFS=$'\t' read -r name metric vals; do
			printf '| %s | %s | %s | %s |\n' "$name" "$metric" "$(tr ' ' '\n' <<<"$vals" | grep . | median)" "$(tr ' ' '\n' <<<"$vals" | grep . | range)"
		done
	echo
}

for part in $PARTS; do
	case $part in
	http) http_part ;;
	ws) ws_part ;;
	storm) storm_part ;;
	*) say "bench-peers: unknown part $part (http, ws, storm)"; exit 2 ;;
	esac
done
echo "Load average at end: $(cut -d' ' -f1-3 /proc/loadavg)."
