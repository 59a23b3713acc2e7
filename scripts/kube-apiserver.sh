#!/usr/bin/env bash
# Builds a real kube-apiserver (Kubernetes 1.20.2) once, caches it and prints its path on stdout.
#
# No kube-apiserver binary is packaged for Debian bookworm, but its *source* package `kubernetes`
# (1.20.2, dependencies vendored) builds one with Debian's Go 1.19. This script:
#   1. prints the cached binary and exits if $ETCDBOARD_CACHE/kube-apiserver-1.20.2/kube-apiserver
#      (default cache: $HOME/.cache/etcdboard) exists and answers `--version`;
#   2. otherwise installs the missing build dependencies (Debian packages), fetches the source
#      with `apt-get source` through a PRIVATE apt configuration whose deb-src lines are derived
#      from this machine's own Debian apt sources (the system apt configuration is not touched),
#   3. replaces the vendored github.com/modern-go/reflect2 1.0.1 (crashes under Go >= 1.18 as soon
#      as a custom resource is written) with Debian's 1.0.2,
#   4. runs `make WHAT=cmd/kube-apiserver` (about 5 minutes on 2 cores), copies the binary into the
#      cache, removes the build tree and prints the path.
# Progress goes to stderr; only the binary's path goes to stdout. Safe to re-run (and to run
# concurrently: a lock serialises builds). Uses sudo for apt-get install when not root.
set -euo pipefail

KUBE_VERSION=1.20.2
GO_VERSION=1.19
GOROOT_DIR=/usr/lib/go-$GO_VERSION
REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2

CACHE=${ETCDBOARD_CACHE:-${HOME:?HOME is not set}/.cache/etcdboard}
DEST_DIR=$CACHE/kube-apiserver-$KUBE_VERSION
DEST=$DEST_DIR/kube-apiserver
BUILD_ROOT=$CACHE/build-kube-apiserver-$KUBE_VERSION

log() { printf 'kube-apiserver.sh: %s\n' "$*" >&2; }
die() { printf 'kube-apiserver.sh: ERROR: %s\n' "$*" >&2; exit 1; }

cached_ok() { [ -x "$DEST" ] && "$DEST" --version >/dev/null 2>&1; }

if cached_ok; then
  echo "$DEST"
  exit 0
fi

mkdir -p "$CACHE" || die "cannot create cache directory $CACHE"
# One build at a time; a second caller waits and then finds the binary.
exec 9>"$CACHE/.kube-apiserver-$KUBE_VERSION.lock"
if ! flock -n 9; then
  log "another build is running (lock $CACHE/.kube-apiserver-$KUBE_VERSION.lock); waiting for it"
  flock 9
fi
if cached_ok; then
  echo "$DEST"
  exit 0
fi
[ ! -e "$DEST" ] || log "cached $DEST does not run; rebuilding"

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

# --- 1. Build dependencies -------------------------------------------------------------------
installed() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed; }
need=()
for p in "golang-$GO_VERSION-go" "golang-$GO_VERSION-src" rsync dpkg-dev golang-github-modern-go-reflect2-dev make; do
  installed "$p" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing Debian packages: ${need[*]}"
  if ! apt-cache show "${need[@]}" >/dev/null 2>&1; then
    log "package indexes lack some of them; running apt-get update"
    $SUDO apt-get update -qq >&2 || die "apt-get update failed"
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 \
    || die "apt-get install ${need[*]} failed"
fi
[ -x "$GOROOT_DIR/bin/go" ] || die "$GOROOT_DIR/bin/go missing after installing golang-$GO_VERSION-go"
[ -f "$REFLECT2_SRC/reflect2.go" ] || die "$REFLECT2_SRC missing after installing golang-github-modern-go-reflect2-dev"

# --- 2. Source, through a private apt configuration -------------------------------------------
TMP=$(mktemp -d /tmp/etcdboard-kube-src.XXXXXX)
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
# apt downloads as the unprivileged _apt user: let it into the private directories.
chmod 755 "$TMP"
mkdir -p "$TMP/etc/sources.list.d" "$TMP/lists/partial" "$TMP/cache/archives/partial" "$TMP/download"
chmod 777 "$TMP/download"

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$codename" ] || die "cannot tell the Debian codename from /etc/os-release"

# Emits "URI|SUITE|COMPONENTS|SIGNED-BY" for every enabled `deb` entry of the system's apt sources
# (one-line .list files and deb822 .sources files).
system_entries() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '
      { sub(/#.*/, "") }
      $1 != "deb" { next }
      {
        i = 2; signed = ""
        if ($2 ~ /^\[/) {
          opts = ""
          for (; i <= NF; i++) { opts = opts " " $i; if ($i ~ /\]$/) { i++; break } }
          if (match(opts, /signed-by=[^] ]+/)) signed = substr(opts, RSTART + 10, RLENGTH - 10)
        }
        uri = $i; suite = $(i + 1); comps = ""
        for (j = i + 2; j <= NF; j++) comps = comps (comps == "" ? "" : " ") $j
        print uri "|" suite "|" comps "|" signed
      }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      function flush(   n, u, s, k, us, ss) {
        if (types ~ /(^| )deb( |$)/ && enabled != "no" && uris != "" && suites != "") {
          n = split(uris, us, " "); k = split(suites, ss, " ")
          for (u = 1; u <= n; u++) for (s = 1; s <= k; s++) print us[u] "|" ss[s] "|" comps "|" signed
        }
        types = uris = suites = comps = signed = enabled = ""; field = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]/ { next }   # continuation lines (e.g. an inline key) are not needed
      {
        key = tolower($0); sub(/:.*/, "", key)
        val = $0; sub(/^[^:]*:[ \t]*/, "", val); sub(/[ \t]+$/, "", val)
        if (key == "types") types = val
        else if (key == "uris") uris = val
        else if (key == "suites") suites = val
        else if (key == "components") comps = val
        else if (key == "signed-by") signed = val
        else if (key == "enabled") enabled = tolower(val)
      }
      END { flush() }' "$f"
  done
}

# Debian entries are those whose suite is this release (bookworm, bookworm-updates,
# bookworm-security, bookworm-backports ...); that skips third-party repositories such as
# cloud-sdk-bookworm or nodesource's nodistro.
: >"$TMP/etc/sources.list"
while IFS='|' read -r uri suite comps signed; do
  [ -n "$uri" ] && [ -n "$suite" ] || continue
  case "$suite" in
    "$codename" | "$codename"-*) ;;
    *) log "skipping non-Debian apt source: $uri $suite"; continue ;;
  esac
  opt=""
  [ -z "$signed" ] || opt="[signed-by=$signed] "
  echo "deb-src ${opt}${uri} ${suite} ${comps:-main}" >>"$TMP/etc/sources.list"
done < <(system_entries)
[ -s "$TMP/etc/sources.list" ] || die "found no Debian entries in /etc/apt/sources.list{,.d/} to derive deb-src lines from"
sort -u -o "$TMP/etc/sources.list" "$TMP/etc/sources.list"
log "private apt source list:"
sed 's/^/    /' "$TMP/etc/sources.list" >&2

apt_private=(
  -o "Dir::Etc::sourcelist=$TMP/etc/sources.list"
  -o "Dir::Etc::sourceparts=$TMP/etc/sources.list.d"
  -o "Dir::State::Lists=$TMP/lists"
  -o "Dir::Cache=$TMP/cache"
  -o "Dir::Cache::pkgcache="
  -o "Dir::Cache::srcpkgcache="
  -o "APT::Get::List-Cleanup=false"
)
log "apt-get update (private configuration, deb-src only)"
apt-get "${apt_private[@]}" update -qq >&2 || die "apt-get update with the private deb-src configuration failed"

src_version=$(apt-cache "${apt_private[@]}" showsrc kubernetes 2>/dev/null \
  | awk '/^Package: kubernetes$/ { p = 1 } p && /^Version:/ { print $2; exit }')
[ -n "$src_version" ] || die "source package kubernetes not found in the Debian deb-src indexes"
case "$src_version" in
  *"$KUBE_VERSION"*) ;;
  *) die "source package kubernetes is version $src_version, expected $KUBE_VERSION" ;;
esac
log "downloading source package kubernetes $src_version"
(cd "$TMP/download" && apt-get "${apt_private[@]}" source --download-only -qq "kubernetes=$src_version" >&2) \
  || die "apt-get source --download-only kubernetes=$src_version failed"
dsc=$(ls "$TMP"/download/kubernetes_*.dsc 2>/dev/null | head -n1)
[ -n "$dsc" ] || die "apt-get source did not produce a .dsc file"

rm -rf "$BUILD_ROOT"
mkdir -p "$BUILD_ROOT"
SRC=$BUILD_ROOT/kubernetes
log "unpacking $(basename "$dsc") into $SRC"
# The .dsc's hashes were checked by apt against the signed index; no keyring for the .dsc itself.
dpkg-source --no-check -x "$dsc" "$SRC" >&2 || die "dpkg-source -x $dsc failed"
[ -f "$SRC/Makefile" ] && [ -d "$SRC/vendor" ] || die "unpacked source in $SRC lacks Makefile or vendor/"

# --- 3. reflect2 1.0.2 ------------------------------------------------------------------------
log "replacing vendor/github.com/modern-go/reflect2 with Debian's $(dpkg-query -W -f='${Version}' golang-github-modern-go-reflect2-dev)"
rm -rf "$SRC/vendor/github.com/modern-go/reflect2"
mkdir -p "$SRC/vendor/github.com/modern-go/reflect2"
rsync -rL --exclude='*_test.go' --exclude='/test*/' "$REFLECT2_SRC/" "$SRC/vendor/github.com/modern-go/reflect2/"
# Keep module-mode builds consistent with the vendor tree (go.mod requires/replaces, modules.txt).
for f in "$SRC/vendor/modules.txt" "$SRC/go.mod" "$SRC"/staging/src/k8s.io/*/go.mod; do
  if [ -f "$f" ]; then sed -i 's#github.com/modern-go/reflect2 v1\.0\.1#github.com/modern-go/reflect2 v1.0.2#g' "$f"; fi
done

# --- 4. Build ---------------------------------------------------------------------------------
export PATH=$GOROOT_DIR/bin:$PATH
# Kubernetes' hack/lib/golang.sh sets GOPATH and GOCACHE itself (to _output/local/go/cache inside
# the build tree), so the Go build cache is removed with the build tree and ~/.cache/go-build
# stays untouched.
export GOPROXY=off GOFLAGS=-mod=vendor GOTOOLCHAIN=local
# No .git in a source package: give the version stamp explicitly.
export KUBE_GIT_VERSION=v$KUBE_VERSION KUBE_GIT_TREE_STATE=clean
unset GOPATH GOROOT
log "building with $(go version) (make WHAT=cmd/kube-apiserver, ~5 minutes on 2 cores); log: $BUILD_ROOT/build.log"
start=$(date +%s)
if ! (cd "$SRC" && make WHAT=cmd/kube-apiserver) >"$BUILD_ROOT/build.log" 2>&1; then
  tail -n 40 "$BUILD_ROOT/build.log" >&2
  die "make WHAT=cmd/kube-apiserver failed; full log in $BUILD_ROOT/build.log (build tree kept)"
fi
log "built in $(( $(date +%s) - start )) s"
bin=""
for c in "$SRC/_output/bin/kube-apiserver" "$SRC/_output/local/bin/linux/amd64/kube-apiserver"; do
  if [ -x "$c" ]; then bin=$c; break; fi
done
[ -n "$bin" ] || die "build succeeded but no kube-apiserver under $SRC/_output (build tree kept)"

mkdir -p "$DEST_DIR"
cp "$bin" "$DEST.tmp.$$"
chmod 755 "$DEST.tmp.$$"
"$DEST.tmp.$$" --version >&2 || die "freshly built kube-apiserver does not run --version"
mv -f "$DEST.tmp.$$" "$DEST"
log "removing build tree $BUILD_ROOT"
rm -rf "$BUILD_ROOT"
echo "$DEST"
