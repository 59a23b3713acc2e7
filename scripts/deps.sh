#!/usr/bin/env bash
# Installs the Debian packages etcdboard needs, only those missing: `deps.sh demo` for the demo,
# `deps.sh test` for the whole test suite. Uses sudo when not root.
set -euo pipefail
need=()
have_cmd() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
have_cmd etcd || need+=(etcd-server)
have_cmd etcdctl || need+=(etcd-client)
have_cmd protoc || need+=(protobuf-compiler)
[ -e /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
if [ "${1:-test}" = test ]; then
  have_cmd chromium || need+=(chromium)
  have_cmd chromedriver || need+=(chromium-driver)
  have_cmd nginx || need+=(nginx)
  # The Kubernetes tests: certificates for the test API server, and a kubectl to drive it.
  have_cmd openssl || need+=(openssl)
  have_cmd kubectl || need+=(kubernetes-client)
  # A slow disk, for real: strace delays a member's fdatasync calls.
  have_cmd strace || need+=(strace)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
