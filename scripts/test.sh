#!/usr/bin/env bash
# Runs every test against real things (3-member etcd, headless Chromium, nginx), installing the
# Debian packages they need first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
# The topology tests run a real kube-apiserver, built once from Debian's source and cached.
ETCDBOARD_KUBE_APISERVER="$(scripts/kube-apiserver.sh)"
export ETCDBOARD_KUBE_APISERVER
cargo test --locked --all-targets -- --test-threads="${TEST_THREADS:-2}"
# The Dockerfile's recipe, outside a container (no engine here): release build, then checks that
# the binary fits gcr.io/distroless/cc-debian12 and stops cleanly on SIGTERM.
scripts/build-image.sh >/dev/null
