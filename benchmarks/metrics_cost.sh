#!/bin/bash
# The per-request cost of Prometheus metrics (metrics_path on) on ASGI plaintext: two servers at
# once on CPU 0 (metrics off / on), a wrk each on CPU 1, for 6 rounds; CPU per request of each
# worker from /proc (utime+stime) over the measured 5 s. Run from the repo: bash benchmarks/metrics_cost.sh
cd "$(dirname "$0")/.."
start() { # port env...
  local port=$1; shift
  env "$@" taskset -c 0 .venv/bin/gunicorn -w 1 -k gaw.UvloopWorker -b 127.0.0.1:$port --keep-alive 120 --log-level warning --no-control-socket benchmarks.apps.asgi_apps:app > "${TMPDIR:-/tmp}"/gaw-metrics-m$port.log 2>&1 &
  echo $!
}
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
for r in 1 2 3 4 5 6; do
  a=$(start 8021); b=$(start 8022 GAW_METRICS_PATH=/metrics)
  for p in 8021 8022; do for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:$p/plaintext && break; sleep 0.1; done; done
  wa=$(pgrep -P $a | head -1); wb=$(pgrep -P $b | head -1)
  taskset -c 1 wrk -t1 -c32 -d1 http://127.0.0.1:8021/plaintext >/dev/null & taskset -c 1 wrk -t1 -c32 -d1 http://127.0.0.1:8022/plaintext >/dev/null; wait
  ta=$(ticks $wa); tb=$(ticks $wb)
  taskset -c 1 wrk -t1 -c32 -d5 http://127.0.0.1:8021/plaintext > "${TMPDIR:-/tmp}"/gaw-metrics-wa.txt & taskset -c 1 wrk -t1 -c32 -d5 http://127.0.0.1:8022/plaintext > "${TMPDIR:-/tmp}"/gaw-metrics-wb.txt; wait
  ta2=$(ticks $wa); tb2=$(ticks $wb)
  ra=$(grep -E "requests in" "${TMPDIR:-/tmp}"/gaw-metrics-wa.txt | awk '{print $1}'); rb=$(grep -E "requests in" "${TMPDIR:-/tmp}"/gaw-metrics-wb.txt | awk '{print $1}')
  python3 -c "a=($ta2-$ta)*1e4/$ra; b=($tb2-$tb)*1e4/$rb; print(f'round $r: off {a:.1f} us/req ({$ra} req), on {b:.1f} us/req ({$rb} req), on/off {b/a:.3f}')"
  curl -s http://127.0.0.1:8022/metrics | grep -m1 "^gaw_requests_total"
  kill $a $b; wait $a $b 2>/dev/null
done
