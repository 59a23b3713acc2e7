#!/usr/bin/env bash
# Starts the dashboard on a local 3-member etcd with sample data (installs etcd if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh demo
exec cargo run --release --locked -- demo "$@"
