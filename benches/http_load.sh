#!/usr/bin/env bash
# HTTP load test of POST /v1/submissions (grading + persistence) with wrk:
# 64 connections, 2 threads, on this machine's loopback only. Reports
# requests/s and latency percentiles; the numbers go to BENCHMARKS.md.
#
# usage: benches/http_load.sh [DURATION_SECONDS]   (needs: wrk, curl, python3)
#   cargo build --release --bin dlgrade && benches/http_load.sh 20
# THINK_MS=N: each connection waits N ms after a response before its next
# request (a paced load below saturation, e.g. THINK_MS=10 for about 5,000/s
# on 64 connections); latencies exclude that wait.
# RUST_LOG=dlgrade::store=debug SERVER_LOG=/tmp/server.log: keep the server's
# log (JSON lines), with the duration of each writer batch and checkpoint;
# benches/writer_log.py /tmp/server.log summarizes them.
# DLGRADE_BIN=path/to/dlgrade benchmarks another build (e.g. an older commit's,
# to compare two builds back to back on a shared machine).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-20}
bin=${DLGRADE_BIN:-target/release/dlgrade}
[ -x "$bin" ] || { echo "build first: cargo build --release --bin dlgrade"; exit 1; }
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
[ -n "${SERVER_LOG:-}" ] && export DLGRADE_LOG_JSON=true
RUST_LOG=${RUST_LOG:-warn} "$bin" serve --addr "127.0.0.1:$port" --database-url "sqlite://$work/load.db" \
  > "$work/stdout" 2> "${SERVER_LOG:-$work/stderr}" &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
admin=$(grep -o 'dlg_[0-9a-f]*' "$work/stdout" | head -n 1)
base="http://127.0.0.1:$port"

# An 8-part rubric (benches/rubric8.json) and a grader key.
rubric_id=$(curl -fsS -X POST "$base/v1/rubrics" -H "Authorization: Bearer $admin" \
  -H 'Content-Type: application/json' --data @benches/rubric8.json | python3 -c 'import sys,json; print(json.load(sys.stdin)["id"])')
grader=$(curl -fsS -X POST "$base/v1/keys" -H "Authorization: Bearer $admin" \
  -H 'Content-Type: application/json' -d '{"role":"grader"}' | python3 -c 'import sys,json; print(json.load(sys.stdin)["key"])')

cat > "$work/submit.lua" <<LUA
-- Each wrk thread numbers its own learners: every request is a new learner,
-- so "learners stored" below must be at least the responses wrk counted.
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $grader"
request = function()
  counter = counter + 1
  local body = string.format([[{"rubric_id":"$rubric_id","learner_id":"learner-%d-%d","answers":$(python3 -c 'import json;print(json.dumps(json.load(open("benches/rubric8.json"))["tests"][0]["answers"]))')}]], tid, counter)
  return wrk.format(nil, "/v1/submissions", nil, body)
end
$( [ -n "${THINK_MS:-}" ] && echo "delay = function() return ${THINK_MS} end" )
done = function(summary, latency, requests)
  io.write(string.format("requests: %d, errors (non-2xx + socket): %d\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  for _, p in pairs({50, 90, 99, 99.9}) do
    io.write(string.format("p%s latency: %.2f ms\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("submissions/s: %.0f\n", summary.requests / (summary.duration / 1e6)))
end
LUA
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
wrk -t2 -c64 -d"${duration}s" --latency -s "$work/submit.lua" "$base"
started=$(date +%s%N)
stored=$(curl -fsS "$base/v1/rubrics/$rubric_id/statistics" -H "Authorization: Bearer $admin" | python3 -c 'import sys,json; print(json.load(sys.stdin)["count"])')
echo "learners stored: $stored (at least the responses wrk counted; the last in-flight requests are stored too)"
echo "statistics of the rubric took $(( ($(date +%s%N) - started) / 1000000 )) ms; server peak memory over the run: $(grep VmHWM /proc/$server/status | tr -s ' ' | cut -d' ' -f2-)"
