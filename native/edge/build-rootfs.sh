#!/usr/bin/env bash
# Build, or reuse, an arm64 Debian (bookworm) rootfs for running aarch64 plugins and
# `paddlehot serve` under qemu: Python 3.11 with headers (the cross-compile sysroot for pdcapi)
# and a venv at /opt/paddlehot with paddlepaddle's aarch64 wheel and paddlehot's dependencies.
#
# Usage: native/edge/build-rootfs.sh [--project DIR] [--print-path] [--check]
# Exit status: 0 ready, 1 failed (the error line says what is missing), 2 usage,
#              3 binfmt_misc cannot be mounted or qemu-aarch64 registered on this machine
#   --project DIR   also install paddlehot from the source checkout DIR into the venv
#                   (redone only when DIR's sources change)
#   --print-path    print only the rootfs path on stdout (logs go to stderr)
#   --check         build nothing: exit 0 if a complete rootfs is cached, 1 otherwise
#
# Everything lives under $PADDLEHOT_EDGE_DIR (default ${PADDLEHOT_CACHE:-~/.cache/paddlehot}/edge):
#   rootfs/          the finished rootfs (renamed into place only when complete)
#   wheels/          aarch64 wheels, downloaded on the host by pip
# Outside that directory the script only mounts binfmt_misc and registers qemu-aarch64 with
# the kernel, and only when they are missing.
# Run it as root, or as a user with sudo (it reruns itself through sudo; --check needs neither).
# Needs: root, debootstrap, qemu-user-static, a Debian mirror in the host's apt sources (or
# PADDLEHOT_EDGE_MIRROR), and pip able to reach the package index.
set -euo pipefail

PADDLE_VERSION="${PADDLEHOT_EDGE_PADDLE:-3.2.2}"
SUITE=bookworm
PYVER=3.11
# Only what runs or links: every package is configured under qemu (python ones byte-compile).
PACKAGES="python3,python3-venv,libpython${PYVER}-dev"
# paddlehot's runtime dependencies (pyproject [project.dependencies] minus paddlepaddle), and
# setuptools, which `import paddle` needs and a venv made --without-pip lacks. grpcio, protobuf
# and tritonclient (its [grpc] extra, spelled out: no glob characters) make `serve --grpc-port`
# work under qemu; all three have cp311 aarch64 wheels. cryptography (abi3 aarch64 wheels) makes
# `serve --trust` work there.
PY_DEPS="typer rich pyelftools numpy packaging starlette uvicorn uvloop httptools orjson watchfiles prometheus-client httpx setuptools grpcio protobuf tritonclient cryptography"
VENV=/opt/paddlehot
EDGE_DIR="${PADDLEHOT_EDGE_DIR:-${PADDLEHOT_CACHE:-$HOME/.cache/paddlehot}/edge}"
ROOTFS="$EDGE_DIR/rootfs"
WHEELS="$EDGE_DIR/wheels"
# The stamp names what the rootfs holds; a different spec means a rebuild. A different PY_DEPS
# only reinstalls the wheels (DEPS_SPEC, natively, seconds).
SPEC="suite=$SUITE python=$PYVER paddle=$PADDLE_VERSION packages=$PACKAGES"
DEPS_SPEC="paddle=$PADDLE_VERSION deps=$PY_DEPS"

ORIG_ARGS=("$@")  # for the sudo re-run (need_root)
PROJECT=""
PRINT_PATH=0
CHECK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --project) PROJECT="${2:?--project needs a directory}"; shift 2 ;;
    --print-path) PRINT_PATH=1; shift ;;
    --check) CHECK=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "error: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

log() { echo "edge: $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }
# Exit 3: this machine cannot run arm64 code at all (CI skips the aarch64 tests on it).
no_binfmt() { echo "error: $*" >&2; exit 3; }
now() { date +%s; }

rootfs_ready() { [ -f "$ROOTFS/.paddlehot-edge" ] && [ "$(cat "$ROOTFS/.paddlehot-edge")" = "$SPEC" ]; }

if [ "$CHECK" = 1 ]; then
  rootfs_ready && { echo "$ROOTFS"; exit 0; }
  echo "no complete rootfs at $ROOTFS" >&2; exit 1
fi

# --- what we need -------------------------------------------------------------------------------
# Root does the build; a user with sudo gets it run through sudo, with the same cache dir (sudo
# may change HOME), so `--check` as that user finds the rootfs afterwards. One command for both.
need_root() {
  [ "$(id -u)" = 0 ] && return 0
  command -v sudo >/dev/null \
    || die "building the arm64 rootfs needs root (debootstrap, chroot, binfmt registration), and sudo is not installed: run it as root"
  log "not root: running through sudo (cache: $EDGE_DIR)"
  local ask=""; [ -t 0 ] || ask="-n"  # no terminal to ask a password on: fail, do not hang
  exec sudo $ask -- env PADDLEHOT_EDGE_DIR="$EDGE_DIR" \
    ${PADDLEHOT_EDGE_MIRROR:+PADDLEHOT_EDGE_MIRROR="$PADDLEHOT_EDGE_MIRROR"} \
    ${PADDLEHOT_EDGE_PADDLE:+PADDLEHOT_EDGE_PADDLE="$PADDLEHOT_EDGE_PADDLE"} \
    "$(readlink -f "$0")" "${ORIG_ARGS[@]}"
}
QEMU=""
find_qemu() {
  QEMU="$(command -v qemu-aarch64-static || true)"
  [ -n "$QEMU" ] || die "qemu-aarch64-static not found: install qemu-user-static (apt-get install qemu-user-static)"
}

# --- binfmt: mount and register only when missing ----------------------------------------------
BINFMT=/proc/sys/fs/binfmt_misc
# The kernel's own registration line shipped by qemu-user-static (flags F: the interpreter is
# opened now, so chroots need no copy of qemu inside them).
binfmt_line() {
  local conf=/usr/lib/binfmt.d/qemu-aarch64.conf
  [ -f "$conf" ] || die "$conf not found: install qemu-user-static (it ships the binfmt entry)"
  grep -v '^#' "$conf" | head -n1
}
ensure_binfmt() {
  if [ ! -e "$BINFMT/register" ]; then
    log "mounting binfmt_misc at $BINFMT"
    mount -t binfmt_misc binfmt_misc "$BINFMT" 2>/dev/null \
      || no_binfmt "cannot mount binfmt_misc at $BINFMT (needs root on a kernel with binfmt_misc; in a container: --privileged)"
  fi
  if [ -e "$BINFMT/qemu-aarch64" ]; then
    if ! grep -q '^enabled' "$BINFMT/qemu-aarch64"; then
      log "enabling the registered qemu-aarch64 binfmt entry"
      echo 1 > "$BINFMT/qemu-aarch64" || no_binfmt "cannot enable $BINFMT/qemu-aarch64"
    fi
    return 0
  fi
  log "registering qemu-aarch64 with binfmt_misc"
  binfmt_line > "$BINFMT/register" \
    || no_binfmt "cannot register qemu-aarch64 with binfmt_misc (needs root, and a kernel that accepts the F flag)"
}

# --- the Debian mirror the host's apt already uses --------------------------------------------
host_mirror() {
  if [ -n "${PADDLEHOT_EDGE_MIRROR:-}" ]; then echo "$PADDLEHOT_EDGE_MIRROR"; return; fi
  local f uri
  # deb822 .sources files: a stanza with "Suites: ... bookworm ..." and its URIs.
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri="$(awk -v suite="$SUITE" '
      BEGIN { RS=""; FS="\n" }
      { u=""; ok=0
        for (i=1;i<=NF;i++) {
          if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); u=a[2] }
          if ($i ~ /^Suites:/) { n=split($i, s, /[ \t]+/); for (j=2;j<=n;j++) if (s[j]==suite) ok=1 }
        }
        if (ok && u != "") { print u; exit } }' "$f")"
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  # one-line format: "deb [opts] URI SUITE COMPONENTS"
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri="$(sed -e 's/\[[^]]*\]//' "$f" | awk -v suite="$SUITE" '$1=="deb" && $3==suite { print $2; exit }')"
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  die "no Debian $SUITE mirror in the host's apt sources; set PADDLEHOT_EDGE_MIRROR to one"
}

# --- steps --------------------------------------------------------------------------------------
PARTIAL="$EDGE_DIR/rootfs.partial"

debootstrap_base() {
  command -v debootstrap >/dev/null || die "debootstrap not found: install it (apt-get install debootstrap)"
  # A finished debootstrap survives a failure in a later step: the next run resumes after it.
  if [ -f "$PARTIAL/.debootstrap-done" ] && [ "$(cat "$PARTIAL/.debootstrap-done")" = "$PACKAGES" ]; then
    log "resuming from the completed debootstrap in $PARTIAL"; return 0
  fi
  local mirror t0; mirror="$(host_mirror)"; t0=$(now)
  rm -rf "$PARTIAL"
  log "debootstrap arm64 $SUITE into $PARTIAL (several minutes under qemu)"
  debootstrap --arch=arm64 --variant=minbase --include="$PACKAGES" "$SUITE" "$PARTIAL" "$mirror" \
    > "$EDGE_DIR/debootstrap.log" 2>&1 \
    || { tail -n 20 "$EDGE_DIR/debootstrap.log" >&2; die "debootstrap failed (log: $EDGE_DIR/debootstrap.log)"; }
  rm -rf "$PARTIAL/var/cache/apt/archives/"*.deb
  echo "$PACKAGES" > "$PARTIAL/.debootstrap-done"
  log "debootstrap done in $(( $(now) - t0 ))s"
}

download_wheels() {
  local stamp="$WHEELS/.complete"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$DEPS_SPEC" ]; then return 0; fi
  mkdir -p "$WHEELS"
  log "downloading aarch64 wheels (paddlepaddle==$PADDLE_VERSION and paddlehot's deps) into $WHEELS"
  # shellcheck disable=SC2086
  python3 -m pip download -q -d "$WHEELS" $PIP_TARGET_OPTS "paddlepaddle==$PADDLE_VERSION" $PY_DEPS \
    || die "pip download of the aarch64 wheels failed"
  echo "$DEPS_SPEC" > "$stamp"
}

# Run a command inside the rootfs, in a private mount namespace: /proc and the bind mounts
# vanish with the process, nothing stays mounted on the host.
in_rootfs() {
  local root="$1"; shift
  unshare --mount --propagation private --fork sh -ec '
    root="$1"; shift
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    exec chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 "$@"
  ' in_rootfs "$root" "$@"  # env -i: the host'"'"'s PIP_* and the like stay outside
}

# The host's pip installs the aarch64 wheels straight into the venv's site-packages (unpacking
# and byte-compiling natively: minutes faster than pip under qemu; CPython 3.11's bytecode is the
# same on both arches). pip's own platform checks keep out anything not built for aarch64.
PIP_TARGET_OPTS="--only-binary=:all: --python-version $PYVER --implementation cp --platform manylinux2014_aarch64 --platform manylinux_2_36_aarch64"
site_packages() { echo "$1$VENV/lib/python$PYVER/site-packages"; }
pip_into() {
  local root="$1"; shift
  # shellcheck disable=SC2086
  python3 -m pip install -q --no-index --find-links "$WHEELS" --upgrade --no-warn-conflicts $PIP_TARGET_OPTS \
    --target "$(site_packages "$root")" "$@" >&2 || return 1
  rm -rf "$(site_packages "$root")/bin"  # console scripts with the host's interpreter in #!
}

make_venv() {
  local t0; t0=$(now)
  log "creating $VENV in the rootfs; installing paddlepaddle $PADDLE_VERSION and paddlehot's deps"
  in_rootfs "$PARTIAL" python3 -m venv --without-pip "$VENV" \
    || die "creating the venv inside the rootfs failed"
  # shellcheck disable=SC2086
  pip_into "$PARTIAL" "paddlepaddle==$PADDLE_VERSION" $PY_DEPS \
    || die "installing the aarch64 wheels into the rootfs venv failed"
  echo "$DEPS_SPEC" > "$PARTIAL/.paddlehot-deps"
  log "smoke test: import paddle under qemu"
  in_rootfs "$PARTIAL" $VENV/bin/python -c 'import paddle, platform; print(platform.machine(), paddle.__version__)' >&2 \
    || die "import paddle failed inside the rootfs"
  log "venv done in $(( $(now) - t0 ))s"
}

# A reused rootfs whose wheels are not the wanted ones gets them reinstalled (no debootstrap).
ensure_deps() {
  if [ -f "$ROOTFS/.paddlehot-deps" ] && [ "$(cat "$ROOTFS/.paddlehot-deps")" = "$DEPS_SPEC" ]; then return 0; fi
  download_wheels
  log "reinstalling paddlepaddle and paddlehot's deps in the rootfs venv"
  # shellcheck disable=SC2086
  pip_into "$ROOTFS" "paddlepaddle==$PADDLE_VERSION" $PY_DEPS \
    || die "installing the aarch64 wheels into the rootfs venv failed"
  echo "$DEPS_SPEC" > "$ROOTFS/.paddlehot-deps"
}

# paddlehot itself, from a checkout: a wheel built on the host, installed without the index.
install_project() {
  local dir="$1" hash stamp="$ROOTFS/.paddlehot-project"
  [ -f "$dir/pyproject.toml" ] || die "--project $dir: no pyproject.toml there"
  hash="$(cd "$dir" && find paddlehot_cli native templates pyproject.toml setup.py -type f \
          \( -name '*.py' -o -name '*.json' -o -name '*.[ch]' -o -name '*.h' -o -name '*.in' -o -name '*.txt' -o -name '*.lua' -o -name '*.toml' -o -name '*.sh' -o -name '*.md' \) \
          -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then return 0; fi
  local tmp; tmp="$(mktemp -d "$EDGE_DIR/.project.XXXXXX")"
  log "installing paddlehot from $dir into the rootfs venv"
  # Build from a copy: the wheel build writes build/ and *.egg-info beside its sources.
  mkdir "$tmp/src"
  (cd "$dir" && cp -r paddlehot_cli native templates pyproject.toml setup.py README.md "$tmp/src/")
  python3 -m pip wheel -q --no-deps -w "$tmp" "$tmp/src" >&2 \
    || { rm -rf "$tmp"; die "building the paddlehot wheel from $dir failed"; }
  pip_into "$ROOTFS" --no-deps "$tmp"/*.whl || { rm -rf "$tmp"; die "installing paddlehot into the rootfs venv failed"; }
  rm -rf "$tmp"
  printf '#!%s/bin/python\nimport sys\nfrom paddlehot_cli.cli.main import run\nsys.exit(run())\n' "$VENV" \
    > "$ROOTFS$VENV/bin/paddlehot"
  chmod 755 "$ROOTFS$VENV/bin/paddlehot"
  echo "$hash" > "$stamp"
}

# --- main ---------------------------------------------------------------------------------------
need_root
find_qemu
mkdir -p "$EDGE_DIR"
exec 9>"$EDGE_DIR/.lock"
flock 9  # one builder at a time per cache dir
ensure_binfmt
if rootfs_ready; then
  log "reusing $ROOTFS"
  ensure_deps
else
  T0=$(now)
  rm -rf "$ROOTFS"
  debootstrap_base
  download_wheels
  make_venv
  echo "$SPEC" > "$PARTIAL/.paddlehot-edge"
  mv "$PARTIAL" "$ROOTFS"
  log "rootfs built in $(( $(now) - T0 ))s: $ROOTFS"
fi
[ -n "$PROJECT" ] && install_project "$PROJECT"
if [ "$PRINT_PATH" = 1 ]; then echo "$ROOTFS"; else log "rootfs: $ROOTFS"; fi
