#!/usr/bin/env bash
# Runs the key-listing benchmark (benches/listing.rs) and keeps its output.
#
#   scripts/bench.sh [OUTPUT]       default OUTPUT: target/bench-listing.txt
#
# Needs etcd on PATH (Debian: apt-get install etcd-server). Takes a few minutes: it loads
# 2.1M keys into a fresh local 3-member cluster. The figures also go to target/bench-listing.json.
# LISTING_BENCH_SCALE=quick shrinks the key spaces 10x for a trial run.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/bench-listing.txt}"
mkdir -p "$(dirname "$out")"
cargo bench --bench listing 2>&1 | tee "$out"
echo "output kept in $out"
