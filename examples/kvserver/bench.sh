#!/usr/bin/env bash
# bench.sh: the same Redis workload against kvserver's two stores, goheap
# (Go maps) and offheap (container.BytesMap on an arena.Heap), printed as
# one side-by-side table. Loopback only; it starts and kills its own
# servers. See README.md.
#
# Phases, for each store:
#   1. preload KEYS keys "key:%012d" with values of VMIN..VMAX bytes, mixed
#      (loadgen, pipelined over several connections);
#   2. throughput: redis-benchmark -t set,get over the same keyspace (-r KEYS),
#      pipelined (-P PIPELINE), CLIENTS connections, OPS requests per command;
#   3. latency: the same unpipelined (-P 1), LAT_OPS requests: p50/p99/max;
#   4. delete 90 % of the keys (every key but each KEEP-th), wait WAIT
#      seconds, read INFO: RSS, GC CPU, and what the remaining data needs.
#      The offheap server's active defrag (defrag.go) moves the survivors
#      out of sparse spans meanwhile, and the scavenger returns the emptied
#      spans 1 s after they empty; the table shows its work and the
#      heap's HeapInuse/HeapAlloc then.
#
# Env (defaults in brackets): KEYS [3000000], VMIN [64], VMAX [512],
# SETSIZE [256] (value size of phase 2-3 SETs: redis-benchmark's -d is fixed),
# OPS [3000000], LAT_OPS [300000], CLIENTS [50], PIPELINE [16], SHARDS [64],
# KEEP [10], WAIT [5], STORES ["goheap offheap"], PORT [6390], GOGC (passed
# through to the server), RETAIN (offheap -retain: free memory kept for
# reuse; unset: the arena's default, 64 MiB + 10 % of in-use), SMAPS_DIR
# (if set, each server's /proc/PID/smaps is copied there as STORE.smaps
# when INFO is read after the deletes). SMALL=1 scales down for a quick check:
# KEYS=200000 OPS=400000 LAT_OPS=50000. RUNS [1]: run the whole sequence
# this many times, the stores taking turns (goheap, offheap, goheap, ...), and
# print each row's median over the runs, then the spread (lowest and highest)
# of the rows that decide the comparison: on a small shared machine one run's
# throughput and p99 can swing by more than the difference between stores.
set -euo pipefail

if [[ "${SMALL:-0}" == 1 ]]; then
	: "${KEYS:=200000}" "${OPS:=400000}" "${LAT_OPS:=50000}"
fi
KEYS=${KEYS:-3000000}
VMIN=${VMIN:-64}
VMAX=${VMAX:-512}
SETSIZE=${SETSIZE:-256}
OPS=${OPS:-3000000}
LAT_OPS=${LAT_OPS:-300000}
CLIENTS=${CLIENTS:-50}
PIPELINE=${PIPELINE:-16}
SHARDS=${SHARDS:-64}
KEEP=${KEEP:-10}
WAIT=${WAIT:-5}
STORES=${STORES:-goheap offheap}
RUNS=${RUNS:-1}
PORT=${PORT:-6390}
HOST=127.0.0.1

die() { echo "bench.sh: $*" >&2; exit 1; }

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"

# redis-benchmark and redis-cli come from Debian's redis-tools.
if ! command -v redis-benchmark >/dev/null || ! command -v redis-cli >/dev/null; then
	echo "bench.sh: redis-benchmark not found; installing redis-tools" >&2
	SUDO=
	if [[ $(id -u) != 0 ]]; then
		command -v sudo >/dev/null || die "redis-tools is not installed and this is not root and has no sudo: install it (apt-get install redis-tools) and rerun"
		SUDO="sudo -n"
	fi
	command -v apt-get >/dev/null || die "no apt-get here: install redis-benchmark and redis-cli (Redis 6 or later) and rerun"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get -y -q install redis-tools >/dev/null 2>&1 ||
		{ $SUDO apt-get -y -q update >/dev/null 2>&1 && $SUDO apt-get -y -q install redis-tools >/dev/null 2>&1; } ||
		die "apt-get could not install redis-tools: install it by hand and rerun"
fi

HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
SERVER_PID=
cleanup() {
	if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building kvserver and loadgen..." >&2
(cd "$HERE" && go build -o "$TMP/kvserver" . && go build -o "$TMP/loadgen" ./loadgen)

declare -A R # R[store,metric]

# info FIELD: one field of the running server's INFO.
info() { redis-cli -h $HOST -p "$PORT" INFO | tr -d '\r' | awk -F: -v f="$1" '$1==f {print $2}'; }

# csvrow TEST FILE: redis-benchmark --csv's row for TEST as "rps p50 p99 max".
csvrow() {
	awk -F, -v t="\"$1\"" '$1==t { gsub(/"/, ""); print $2, $5, $7, $8 }' "$2"
}

start=$(date +%s)
for run in $(seq "$RUNS"); do
for store in $STORES; do
	[[ $RUNS == 1 ]] || echo "== run $run of $RUNS" >&2
	echo "== $store: starting server on $HOST:$PORT" >&2
	"$TMP/kvserver" -addr "$HOST:$PORT" -store "$store" -shards "$SHARDS" -sizehint "$KEYS" ${RETAIN:+-retain "$RETAIN"} 2>"$TMP/$store.log" &
	SERVER_PID=$!
	for _ in $(seq 100); do
		redis-cli -h $HOST -p "$PORT" PING >/dev/null 2>&1 && break
		kill -0 "$SERVER_PID" 2>/dev/null || die "$store server exited: $(cat "$TMP/$store.log")"
		sleep 0.1
	done
	redis-cli -h $HOST -p "$PORT" PING >/dev/null || die "$store server does not answer"

	echo "== $store: preloading $KEYS keys, values $VMIN-$VMAX bytes" >&2
	"$TMP/loadgen" load -addr "$HOST:$PORT" -n "$KEYS" -min "$VMIN" -max "$VMAX" | tee "$TMP/$store.load" >&2
	R[$store,load]=$(sed -n 's/.*(\([0-9]*\) keys\/s).*/\1/p' "$TMP/$store.load")
	[[ $(redis-cli -h $HOST -p "$PORT" DBSIZE) == "$KEYS" ]] || die "$store: DBSIZE is not $KEYS after preload"

	echo "== $store: SET/GET throughput, -P $PIPELINE -c $CLIENTS -n $OPS" >&2
	redis-benchmark -h $HOST -p "$PORT" -t set,get -n "$OPS" -r "$KEYS" -d "$SETSIZE" \
		-P "$PIPELINE" -c "$CLIENTS" --csv >"$TMP/$store.tput" 2>/dev/null
	read -r R[$store,set_rps] _ _ R[$store,set_pmax] < <(csvrow SET "$TMP/$store.tput")
	read -r R[$store,get_rps] _ _ R[$store,get_pmax] < <(csvrow GET "$TMP/$store.tput")
	[[ -n "${R[$store,set_rps]}" && -n "${R[$store,get_rps]}" ]] || die "$store: no redis-benchmark results: $(cat "$TMP/$store.tput")"

	echo "== $store: SET/GET latency, -P 1 -c $CLIENTS -n $LAT_OPS" >&2
	redis-benchmark -h $HOST -p "$PORT" -t set,get -n "$LAT_OPS" -r "$KEYS" -d "$SETSIZE" \
		-P 1 -c "$CLIENTS" --csv >"$TMP/$store.lat" 2>/dev/null
	read -r R[$store,set_lrps] R[$store,set_p50] R[$store,set_p99] R[$store,set_max] < <(csvrow SET "$TMP/$store.lat")
	read -r R[$store,get_lrps] R[$store,get_p50] R[$store,get_p99] R[$store,get_max] < <(csvrow GET "$TMP/$store.lat")
	[[ -n "${R[$store,set_p50]}" ]] || die "$store: no redis-benchmark latency results: $(cat "$TMP/$store.lat")"

	before=$(redis-cli -h $HOST -p "$PORT" DBSIZE)
	echo "== $store: deleting all but every ${KEEP}th key" >&2
	"$TMP/loadgen" del -addr "$HOST:$PORT" -n "$KEYS" -keep "$KEEP" | tee "$TMP/$store.del" >&2
	R[$store,del]=$(sed -n 's/.*(\([0-9]*\) keys\/s).*/\1/p' "$TMP/$store.del")
	sleep "$WAIT"
	R[$store,keys_before]=$before
	R[$store,keys]=$(info keys)
	R[$store,data]=$(info data_bytes)
	R[$store,used]=$(info used_memory)
	R[$store,rss]=$(info used_memory_rss)
	R[$store,gc_cpu]=$(info go_cpu_classes_gc_total_cpu_seconds)
	# Idle mark workers only use CPUs that had nothing else to do.
	R[$store,gc_busy]=$(awk -v t="${R[$store,gc_cpu]}" -v i="$(info go_cpu_classes_gc_mark_idle_cpu_seconds)" 'BEGIN { print t - i }')
	R[$store,cpu]=$(awk -v u="$(info used_cpu_user)" -v s="$(info used_cpu_sys)" 'BEGIN { print u + s }')
	R[$store,gc_cycles]=$(info go_gc_cycles_total_gc_cycles)
	R[$store,gc_p99]=$(info go_sched_pauses_total_gc_seconds_p99)
	R[$store,gc_max]=$(info go_sched_pauses_total_gc_seconds_max)
	R[$store,heap_live]=$(info go_gc_heap_live_bytes)
	R[$store,w_p999]=$(info store_writes_p999_seconds)
	R[$store,w_max]=$(info store_writes_max_seconds)
	R[$store,r_p999]=$(info store_reads_p999_seconds)
	R[$store,r_max]=$(info store_reads_max_seconds)
	R[$store,late_p999]=$(info wakeup_lateness_p999_seconds)
	R[$store,late_max]=$(info wakeup_lateness_max_seconds)
	R[$store,inuse]=$(info offheap_heap_inuse)
	R[$store,kept]=$(info offheap_scavenge_free_committed)
	R[$store,meta]=$(info offheap_metadata)
	R[$store,frag]=$(info defrag_frag_ratio)
	R[$store,dmoved]=$(info defrag_moved)
	R[$store,dpass]=$(info defrag_last_pass_seconds)
	R[$store,dmax]=$(info defrag_max_step_seconds)
	R[$store,gogc]=$(info go_gc_gogc_percent)
	R[$store,hwm]=$(awk '/^VmHWM:/ {print $2 * 1024}' "/proc/$SERVER_PID/status")
	[[ -n "${SMAPS_DIR:-}" ]] && cp "/proc/$SERVER_PID/smaps" "$SMAPS_DIR/$store.smaps"

	echo "== $store: stopping (graceful: closes every map, then the heap)" >&2
	kill -TERM "$SERVER_PID"
	status=0
	wait "$SERVER_PID" || status=$?
	SERVER_PID=
	[[ $status == 0 ]] || die "$store server exited with status $status on shutdown: $(tail -5 "$TMP/$store.log")"
	# Keep this run's figures as R[store,key,run] for the medians.
	for k in "${!R[@]}"; do
		[[ $k == "$store",*,* || $k != "$store",* ]] || R[$k,$run]=${R[$k]}
	done
done
done

# runvals STORE KEY: the runs' values of R[STORE,KEY], sorted, one a line.
runvals() {
	local r
	for r in $(seq "$RUNS"); do
		if [[ -n "${R[$1,$2,$r]:-}" && ${R[$1,$2,$r]} != "?" ]]; then
			echo "${R[$1,$2,$r]}"
		fi
	done | sort -g
}
# median STORE KEY: the median of the runs (the lower middle value for an
# even count; "?" if the store never reported it).
median() { runvals "$1" "$2" | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : "?" }'; }
# extreme STORE KEY min|max: the lowest or highest of the runs.
extreme() { runvals "$1" "$2" | awk -v w="$3" 'NR == 1 { lo = $1 } { hi = $1 } END { print NR ? (w == "min" ? lo : hi) : "?" }'; }
if ((RUNS > 1)); then
	for k in "${!R[@]}"; do
		[[ $k == *,*,* ]] && continue
		R[$k]=$(median "${k%%,*}" "${k#*,}")
	done
fi

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
ms() { awk -v s="$1" 'BEGIN { printf "%.3f ms", s * 1000 }'; }
# fmtv FMT VALUE: VALUE printed as FMT says ("?": not reported).
fmtv() {
	local f=$1 v=$2
	[[ $v == "?" ]] && f=raw # not reported by this store
	case $f in
	mib) mib "$v" ;;
	ms) ms "$v" ;;
	msraw) echo "$v ms" ;;
	rps) awk -v r="$v" 'BEGIN { printf "%.0f/s", r }' ;;
	s) awk -v r="$v" 'BEGIN { printf "%.2f s", r }' ;;
	*) echo "$v" ;;
	esac
}
row() {
	local label=$1 fmt=$2 key=$3 s line
	line=$(printf '%-40s' "$label")
	for s in $STORES; do
		line+=$(printf '%18s' "$(fmtv "$fmt" "${R[$s,$key]:-?}")")
	done
	echo "$line"
}
# header WIDTH: the stores' names over columns of WIDTH.
header() {
	local s line
	line=$(printf '%-40s' "")
	for s in $STORES; do line+=$(printf "%${1}s" "$s"); done
	echo "$line"
}
# spread LABEL FMT KEY: the lowest and highest of the runs, per store.
spread() {
	local label=$1 fmt=$2 key=$3 s line lo hi
	line=$(printf '%-40s' "$label")
	for s in $STORES; do
		lo=$(fmtv "$fmt" "$(extreme "$s" "$key" min)")
		hi=$(fmtv "$fmt" "$(extreme "$s" "$key" max)")
		line+=$(printf '%26s' "$lo - $hi")
	done
	echo "$line"
}
echo
runs=
((RUNS > 1)) && runs=", medians of $RUNS runs"
echo "kvserver: KEYS=$KEYS values $VMIN-$VMAX B, SET/GET -d $SETSIZE, -c $CLIENTS, OPS=$OPS (-P $PIPELINE), LAT_OPS=$LAT_OPS (-P 1), shards $SHARDS, $(nproc) CPUs, $(($(date +%s) - start)) s$runs"
header 18
row "preload SET (loadgen, pipelined)" rps load
row "delete 90 % (loadgen, multi-key DEL)" rps del
row "SET throughput (-P $PIPELINE)" rps set_rps
row "GET throughput (-P $PIPELINE)" rps get_rps
row "SET max latency (-P $PIPELINE)" msraw set_pmax
row "GET max latency (-P $PIPELINE)" msraw get_pmax
row "SET p50 latency (-P 1)" msraw set_p50
row "SET p99 latency (-P 1)" msraw set_p99
row "SET max latency (-P 1)" msraw set_max
row "GET p50 latency (-P 1)" msraw get_p50
row "GET p99 latency (-P 1)" msraw get_p99
row "GET max latency (-P 1)" msraw get_max
row "in-store SET/DEL p99.9 (upper bound)" ms w_p999
row "in-store SET/DEL max" ms w_max
row "in-store GET p99.9 (upper bound)" ms r_p999
row "in-store GET max" ms r_max
row "wake-up lateness p99.9 (upper bound)" ms late_p999
row "wake-up lateness max" ms late_max
row "GC CPU (whole run)" s gc_cpu
row "GC CPU without idle mark workers" s gc_busy
row "server CPU, user+sys (whole run)" s cpu
row "GC cycles" raw gc_cycles
row "GC pause p99 (upper bound)" ms gc_p99
row "GC pause max (upper bound)" ms gc_max
row "peak RSS (VmHWM)" mib hwm
row "keys after deleting 90 %" raw keys
row "RSS ${WAIT} s after the deletes" mib rss
row "store's used memory then" mib used
row "Go heap live then" mib heap_live
row "remaining data needs (key+value bytes)" mib data
row "offheap HeapInuse then" mib inuse
row "offheap HeapInuse/HeapAlloc then" raw frag
row "offheap free memory kept for reuse" mib kept
row "offheap span metadata (resident)" mib meta
row "active defrag: entries moved" raw dmoved
row "active defrag: last pass took" s dpass
row "active defrag: longest step (lock held)" ms dmax
row "GOGC" raw gogc

if ((RUNS > 1)); then
	echo
	echo "spread over the $RUNS runs (lowest - highest):"
	header 26
	spread "preload SET (loadgen, pipelined)" rps load
	spread "SET throughput (-P $PIPELINE)" rps set_rps
	spread "GET throughput (-P $PIPELINE)" rps get_rps
	spread "SET p99 latency (-P 1)" msraw set_p99
	spread "GET p99 latency (-P 1)" msraw get_p99
	spread "SET max latency (-P 1)" msraw set_max
	spread "GET max latency (-P 1)" msraw get_max
	spread "GC CPU (whole run)" s gc_cpu
	spread "peak RSS (VmHWM)" mib hwm
	spread "RSS ${WAIT} s after the deletes" mib rss
fi
