#!/usr/bin/env bash
# Measures startup: from launching the release binary to the first 200 from /healthz.
#
#   scripts/bench-startup.sh [RUNS]      default 10 runs; prints each and min / median / max in ms
#
# Runs `etcdboard serve` against a local one-member etcd (started here, on free loopback ports, in
# a temporary directory) so the server does its real start-up work: the listing index and the
# cluster monitor start at once. ETCDBOARD_KUBE (default `auto`, as in production) is passed on;
# without a kubeconfig `auto` finds none and goes on without Kubernetes.
# Needs etcd and curl on PATH (scripts/deps.sh demo installs etcd).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10}"
cargo build --release --locked --quiet
bin="${CARGO_TARGET_DIR:-target}/release/etcdboard"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

work="$(mktemp -d)"
etcd_pid=""
board_pid=""
cleanup() {
  [ -n "$board_pid" ] && kill "$board_pid" 2>/dev/null || true
  [ -n "$etcd_pid" ] && kill "$etcd_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

client_port="$(free_port)"
peer_port="$(free_port)"
etcd --name bench --data-dir "$work/etcd" \
  --listen-client-urls "http://127.0.0.1:$client_port" --advertise-client-urls "http://127.0.0.1:$client_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "bench=http://127.0.0.1:$peer_port" >"$work/etcd.log" 2>&1 &
etcd_pid=$!
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$client_port/health" >/dev/null 2>&1 && break
  sleep 0.1
done

now_ns() { date +%s%N; }
times=()
for i in $(seq "$runs"); do
  port="$(free_port)"
  start="$(now_ns)"
  ETCDBOARD_KUBE="${ETCDBOARD_KUBE:-auto}" RUST_LOG=warn "$bin" serve \
    --listen "127.0.0.1:$port" --endpoints "http://127.0.0.1:$client_port" >"$work/board.log" 2>&1 &
  board_pid=$!
  until curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; do
    if ! kill -0 "$board_pid" 2>/dev/null; then
      echo "etcdboard exited during start:" >&2
      cat "$work/board.log" >&2
      exit 1
    fi
    sleep 0.005
  done
  end="$(now_ns)"
  ms=$(( (end - start) / 1000000 ))
  times+=("$ms")
  echo "run $i: ${ms} ms"
  kill -TERM "$board_pid"
  wait "$board_pid" 2>/dev/null || true
  board_pid=""
done

sorted=($(printf '%s\n' "${times[@]}" | sort -n))
n=${#sorted[@]}
echo "startup (process start -> /healthz 200), $n runs, --kube ${ETCDBOARD_KUBE:-auto}:" \
  "min ${sorted[0]} ms, median ${sorted[$((n / 2))]} ms, max ${sorted[$((n - 1))]} ms"
