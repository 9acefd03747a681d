#!/bin/bash
# Skynet-level comparison, by hand: two skynet trees you built (for instance one linked with
# libsocket_server.a through skynet-patch/, one as it comes), run alternately under the same
# loads on 127.0.0.1: wrk on an HTTP service (the tree's examples/simpleweb.lua, moved to
# 127.0.0.1), and echoload on echosvc.lua with 64 and 256 connections.
#
#   bench/skynet/run.sh TREE_A TREE_B [ROUNDS]
#
# Needs wrk (Debian: apt-get install wrk) and taskset. Prints one line per run, then medians
# with server CPU per request/message (utime+stime of the skynet process during the load).
set -u
A=$(realpath "$1"); B=$(realpath "$2"); ROUNDS=${3:-3}
HERE=$(dirname "$(realpath "$0")")
LAST_CPU=$(( $(nproc) - 1 ))
WORK=$(mktemp -d /tmp/skynet-bench.XXXXXX)
trap 'pkill -f "skynet $WORK/" 2>/dev/null; rm -rf "$WORK"' EXIT
for t in "$A" "$B"; do
	[ -x "$t/skynet" ] || { echo "$t/skynet: not built"; exit 2; }
done
command -v wrk >/dev/null || { echo "wrk not found"; exit 2; }
${CC:-cc} -O2 -o "$WORK/echoload" "$HERE/echoload.c" || exit 1
mkdir -p "$WORK/svc"
cp "$HERE/echosvc.lua" "$WORK/svc/"
# The same HTTP service for both trees, listening on loopback instead of 0.0.0.0.
sed 's/socket.listen("0.0.0.0", 8001)/socket.listen("127.0.0.1", 8001)/' "$A/examples/simpleweb.lua" > "$WORK/svc/simpleweb.lua"
grep -q '"127.0.0.1", 8001' "$WORK/svc/simpleweb.lua" || { echo "simpleweb.lua: listen line not found"; exit 2; }
for svc in simpleweb echosvc; do
	cat > "$WORK/config.$svc" <<CONF
root = "./"
thread = 4
harbor = 0
start = "$svc"
bootstrap = "snlua bootstrap"
luaservice = root.."service/?.lua;$WORK/svc/?.lua"
lualoader = root.."lualib/loader.lua"
lua_path = root.."lualib/?.lua;"..root.."lualib/?/init.lua"
lua_cpath = root.."luaclib/?.so"
cpath = root.."cservice/?.so"
CONF
done

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
wait_port() {
	for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
# run NAME TREE SERVICE PORT SECONDS_OF_LOAD LOAD...
run() {
	local name=$1 tree=$2 svc=$3 port=$4 load_secs=$5
	shift 5
	(cd "$tree" && exec timeout 120 ./skynet "$WORK/config.$svc" > "$WORK/log-$name-$svc" 2>&1) &
	local pid=$!
	if ! wait_port "$port"; then
		echo "$name $svc: the port never opened"; kill "$pid"; return
	fi
	local spid
	spid=$(pgrep -f "skynet $WORK/config.$svc" | tail -1)
	local c0 c1 out
	c0=$(cpu_ticks "$spid")
	out=$(timeout 60 taskset -c "$LAST_CPU" "$@" 2>&1)
	c1=$(cpu_ticks "$spid")
	kill "$spid" 2>/dev/null
	wait "$pid" 2>/dev/null
	local rate
	rate=$(echo "$out" | sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p; s/^msgs_per_s \([0-9]*\).*/\1/p')
	echo "$name $svc$( [ "$svc" = echosvc ] && echo "-$(echo "$out" | sed -n 's/.*conns \([0-9]*\).*/\1/p')") rate=${rate:-FAILED} cpu_s=$(( c1 - c0 ))e-2 load_s=$load_secs"
	[ -n "$rate" ] || echo "$out" | tail -3
}
for r in $(seq "$ROUNDS"); do
	order="A B"; [ $((r % 2)) -eq 0 ] && order="B A"
	for name in $order; do
		tree=$A; [ "$name" = B ] && tree=$B
		run "$name" "$tree" simpleweb 8001 10 wrk -t1 -c64 -d10s http://127.0.0.1:8001/
		run "$name" "$tree" echosvc 8002 11 "$WORK/echoload" 8002 64 4 10
		run "$name" "$tree" echosvc 8002 11 "$WORK/echoload" 8002 256 4 10
	done
done | tee "$WORK/runs"
python3 - "$WORK/runs" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\w) (\S+) rate=([\d.]+) cpu_s=(\d+)e-2 load_s=(\d+)", line)
    if m:
        name, load, rate, cpu, secs = m.group(1), m.group(2), float(m.group(3)), int(m.group(4)) / 100, int(m.group(5))
        runs.setdefault((load, name), []).append((rate, cpu / (rate * secs) * 1e6))
print("\nmedians                  A/s   A cpu us/op          B/s   B cpu us/op     B/A (cpu)")
for load in sorted({k[0] for k in runs}):
    a, b = runs.get((load, "A"), []), runs.get((load, "B"), [])
    if not a or not b:
        continue
    ra, rb = statistics.median(x[0] for x in a), statistics.median(x[0] for x in b)
    ca, cb = statistics.median(x[1] for x in a), statistics.median(x[1] for x in b)
    print("%-14s %12.0f %12.1f %12.0f %12.1f     %.2f (%.2f)" % (load, ra, ca, rb, cb, rb / ra, cb / ca))
PY
