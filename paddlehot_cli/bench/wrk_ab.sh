#!/bin/bash
# Interleaved wrk rounds against several running servers (A B A B ...), for ratios from one run
# on a shared box. Per round: req/s, p50, p99 and the server's CPU microseconds per request
# (utime+stime of the listed PIDs, from /proc).
#   paddlehot_cli/bench/wrk_ab.sh ROUNDS SECONDS NAME=PID[,PID...]@URL[|BODYFILE] ...
#   e.g. wrk_ab.sh 3 10 paddlehot=1234@http://127.0.0.1:8000/v2/models/mlp/infer \
#                       mosec=2345,2346,2347@http://127.0.0.1:8001/inference
# Without |BODYFILE, wrk posts the demo MLP's JSON body (wrk_infer.lua); with it, the file
# (bench/wrk_bodies.py writes them; for NAME.bin, NAME.bin.hlen holds its header length).
# CONNS (default 8) and WRKLUA (default: wrk_infer.lua next to this script) override;
# WRK_CPUS=1 runs wrk on those CPUs only (taskset), so the load generator does not take the
# servers' cores on a small box.
set -euo pipefail
rounds=$1; seconds=$2; shift 2
lua=${WRKLUA:-$(dirname "$0")/wrk_infer.lua}
tick=$(getconf CLK_TCK)
cpu_ticks() {  # utime + stime of every PID in a comma list
  local total=0 p
  for p in ${1//,/ }; do total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$total"
}
for r in $(seq "$rounds"); do
  for spec in "$@"; do
    name=${spec%%=*}; rest=${spec#*=}; pids=${rest%%@*}; url=${rest#*@}
    body=""; script=$lua; hlen=""
    if [[ $url == *"|"* ]]; then
      body=${url#*|}; url=${url%%|*}; script=$(dirname "$0")/wrk_body.lua
      [[ -f $body.hlen ]] && hlen=$(cat "$body.hlen")
    fi
    c0=$(cpu_ticks "$pids")
    pin=(); [[ -n ${WRK_CPUS:-} ]] && pin=(taskset -c "$WRK_CPUS")
    out=$(WRK_BODY=$body WRK_HLEN=$hlen "${pin[@]}" wrk -t2 -c"${CONNS:-8}" -d"${seconds}s" --latency -s "$script" "$url")
    c1=$(cpu_ticks "$pids")
    n=$(awk '/requests in/{print $1}' <<<"$out")
    awk -v r="$r" -v name="$name" -v n="$n" -v ticks=$((c1 - c0)) -v tick="$tick" \
        -v load="$(cut -d' ' -f1 /proc/loadavg)" -v errs="$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr '\n' ' ')" '
      /Requests\/sec/ {rps = $2} $1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2}
      END {printf "round %s %-10s req/s=%s p50=%s p99=%s cpu_us/req=%.1f load=%s %s\n",
           r, name, rps, p50, p99, ticks * 1e6 / tick / n, load, errs}' <<<"$out"
  done
done
