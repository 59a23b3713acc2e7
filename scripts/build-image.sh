#!/usr/bin/env bash
# The Dockerfile's recipe without a container engine, so CI exercises it: the same Debian build
# packages, the same `cargo build --release --locked`, then checks that the binary would run in
# gcr.io/distroless/cc-debian12:nonroot — it prints its version, links only libraries that image
# has (glibc 2.36, libgcc_s), and serves and stops on SIGTERM as user 65532 with no shell, no
# HOME and no writable working directory.
#
#   scripts/build-image.sh            prints the binary's path on the last line
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "build-image: $*" >&2; exit 1; }

# 0. The Dockerfile builds its dependency layer against placeholder sources, and cargo refuses a
#    manifest whose targets have no source: every [[bench]] needs its placeholder there.
for bench in $(awk '/^\[\[bench\]\]/ { b = 1; next } b && /^name *=/ { gsub(/"|name *= */, ""); print; b = 0 }' Cargo.toml); do
  grep -q "benches/$bench.rs" Dockerfile \
    || fail "Dockerfile: no placeholder benches/$bench.rs for [[bench]] $bench (its dependency layer would not build)"
done

# 1. Build packages (Dockerfile: apt-get install protobuf-compiler libprotobuf-dev).
need=()
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
[ -e /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# 2. The build (Dockerfile: cargo build --release --locked --bin etcdboard).
started=$(date +%s)
cargo build --release --locked --bin etcdboard
echo "release build: $(( $(date +%s) - started )) s" >&2
# Dockerfile: objcopy --strip-debug into the image; the checks below run on that copy. It goes
# into the clone's own target/image/ whatever CARGO_TARGET_DIR says: CI keeps Cargo's output under
# root's home, which the image's user 65532 cannot enter.
mkdir -p target/image
bin="target/image/etcdboard"
objcopy --strip-debug "${CARGO_TARGET_DIR:-target}/release/etcdboard" "$bin"

# 3. It runs and knows its version.
want="etcdboard $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
got="$("$bin" --version)"
[ "$got" = "$want" ] || fail "--version says '$got', expected '$want'"

# 4. Only libraries distroless/cc-debian12 ships, and no glibc newer than its 2.36.
allowed=" libc.so.6 libm.so.6 libgcc_s.so.1 libpthread.so.0 libdl.so.2 librt.so.1 ld-linux-x86-64.so.2 "
needed="$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p')"
[ -n "$needed" ] || fail "no NEEDED entries: expected a dynamically linked glibc binary"
for lib in $needed; do
  case "$allowed" in *" $lib "*) ;; *) fail "links $lib, which gcr.io/distroless/cc-debian12 does not have" ;; esac
done
interp="$(readelf -l "$bin" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')"
[ "$interp" = "/lib64/ld-linux-x86-64.so.2" ] || fail "unexpected program interpreter '$interp'"
newest="$(readelf -V "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)"
[ "$(printf '%s\n2.36\n' "$newest" | sort -V | tail -1)" = "2.36" ] \
  || fail "needs GLIBC_$newest; distroless/cc-debian12 has glibc 2.36"
ldd "$bin" | grep -q "not found" && fail "unresolved libraries: $(ldd "$bin")"

# 5. Serves and stops like in the image: user 65532, empty environment, read-only working
#    directory, SIGTERM from the runtime.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
dead="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
run=(env -i ETCDBOARD_LISTEN="127.0.0.1:$port" ETCDBOARD_KUBE=off ETCDBOARD_LOG_FORMAT=json
  ETCDBOARD_SHUTDOWN_TIMEOUT=5s "$(realpath "$bin")" serve --endpoints "http://127.0.0.1:$dead")
if [ "$(id -u)" = 0 ]; then
  run=(setpriv --reuid 65532 --regid 65532 --clear-groups "${run[@]}")
fi
log="$(mktemp)"
(cd / && exec "${run[@]}") >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; fail "exited during start"; }
  sleep 0.05
done
curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" || { cat "$log" >&2; fail "/healthz never answered"; }
kill -TERM "$pid"
status=0
timeout 10 tail --pid="$pid" -f /dev/null || fail "still running 10 s after SIGTERM"
wait "$pid" || status=$?
[ "$status" = 0 ] || { cat "$log" >&2; fail "exit status $status after SIGTERM"; }
grep -q '"shutting down' "$log" || { cat "$log" >&2; fail "no shutdown line in the log"; }

echo "build-image: OK ($got; links: $(echo $needed); newest glibc symbol: $newest; size: $(du -h "$bin" | cut -f1))" >&2
echo "$bin"
