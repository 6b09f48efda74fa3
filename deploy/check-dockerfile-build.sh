#!/usr/bin/env bash
# Reproduces backend/Dockerfile's build stage on this Debian host, since no Docker engine runs here:
# reads the stage's ARG defaults, COPY and RUN lines from the Dockerfile itself (so the check cannot
# drift from the file), installs the same apt packages when missing, copies the same files into a
# scratch /src, and runs the same commands there. Then checks the runtime stage against the result:
# every library the binary links directly comes from a package the runtime stage installs, and the
# files it copies exist.
#
# Usage: deploy/check-dockerfile-build.sh [OUT_DIR]
#   OUT_DIR (default: a temporary directory) receives src/ with the build; the binary built by the
#   Dockerfile's commands ends up in OUT_DIR/src/build/coldstartd, and its path is printed last.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dockerfile=$root/backend/Dockerfile
out=${1:-$(mktemp -d /tmp/csa-dockerbuild.XXXXXX)}
mkdir -p "$out"
fail() { echo "check-dockerfile-build: $*" >&2; exit 1; }

# Instructions of one stage, one per line, continuation lines joined, comments dropped.
stage() {
  awk -v want="$1" '
    /^[[:space:]]*#/ { next }
    { line = $0 }
    cont { buf = buf " " line } !cont { buf = line }
    { if (sub(/\\[[:space:]]*$/, "", buf)) { cont = 1; next } cont = 0 }
    buf ~ /^FROM[[:space:]]/ { n = split(buf, w, /[[:space:]]+/); cur = (n >= 4 && toupper(w[3]) == "AS") ? w[4] : ""; next }
    cur == want && buf !~ /^[[:space:]]*$/ { print buf }
  ' "$dockerfile"
}

build=$(stage build)
runtime=$(stage runtime)
[ -n "$build" ] || fail "no 'FROM ... AS build' stage in $dockerfile"
[ -n "$runtime" ] || fail "no 'FROM ... AS runtime' stage in $dockerfile"
grep -q '^FROM debian:bookworm' "$dockerfile" || fail "the stages are expected on debian:bookworm (this check runs on Debian 12)"
. /etc/os-release
[ "${VERSION_CODENAME:-}" = bookworm ] || echo "check-dockerfile-build: warning: host is ${PRETTY_NAME:-unknown}, the image is Debian 12" >&2

# ARG defaults become shell variables for the RUN lines, as in the image.
arg_value() { # stage-text name
  printf '%s\n' "$1" | sed -n "s/^ARG $2=//p" | head -n1 | sed 's/^"\(.*\)"$/\1/'
}
build_packages=$(arg_value "$build" BUILD_PACKAGES)
runtime_packages=$(arg_value "$runtime" RUNTIME_PACKAGES)
[ -n "$build_packages" ] || fail "build stage has no ARG BUILD_PACKAGES"
[ -n "$runtime_packages" ] || fail "runtime stage has no ARG RUNTIME_PACKAGES"

missing=()
for p in $build_packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "check-dockerfile-build: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Walk the build stage: WORKDIR maps to $out/<dir>, COPY copies from the repository root.
workdir=$out
while IFS= read -r ins; do
  kw=${ins%%[[:space:]]*}
  rest=${ins#"$kw"}; rest=${rest#"${rest%%[![:space:]]*}"}
  case "$kw" in
    ARG) ;;
    WORKDIR) workdir=$out$rest; mkdir -p "$workdir" ;;
    COPY)
      read -r src dst extra <<<"$rest"
      [ -z "${extra:-}" ] || fail "COPY with more than one source is not reproduced: $ins"
      [ -e "$root/$src" ] || fail "COPY source $src does not exist"
      case "$dst" in /*) target=$out$dst ;; *) target=$workdir/$dst ;; esac
      if [ -d "$root/$src" ]; then mkdir -p "$target" && cp -a "$root/$src/." "$target/"
      else mkdir -p "$(dirname "$target")" && cp -a "$root/$src" "$target"; fi ;;
    RUN)
      case "$rest" in
        *apt-get*) # the package install: done above from the same ARG list
          case "$rest" in *'$BUILD_PACKAGES'*) ;; *) fail "the build stage's apt-get must install \$BUILD_PACKAGES: $rest" ;; esac ;;
        *) echo "check-dockerfile-build: RUN $rest" >&2
           (cd "$workdir" && BUILD_PACKAGES="$build_packages" bash -euo pipefail -c "$rest") >&2 \
             || fail "RUN failed: $rest" ;;
      esac ;;
    *) fail "instruction not reproduced by this check: $ins" ;;
  esac
done <<<"$build"

# The runtime stage copies the binary from the build stage and files from the context.
bin_src=$(printf '%s\n' "$runtime" | sed -n 's/^COPY --from=build \([^ ]*\) .*/\1/p' | head -n1)
[ -n "$bin_src" ] || fail "runtime stage does not COPY --from=build"
bin=$out$bin_src
[ -x "$bin" ] || fail "the build stage did not produce $bin_src"
while read -r src; do
  [ -e "$root/$src" ] || fail "runtime COPY source $src does not exist"
done < <(printf '%s\n' "$runtime" | sed -n '/^COPY --from/d; s/^COPY \([^ ]*\) .*/\1/p')

# Every library the binary needs directly must come from a runtime package (or libc).
needed=$(objdump -p "$bin" | awk '/NEEDED/ { print $2 }')
for lib in $needed; do
  path=$(ldd "$bin" | awk -v l="$lib" '$1 == l { print $3 }')
  [ -n "$path" ] && [ -e "$path" ] || fail "$lib is not resolvable on this host"
  pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -n1 | cut -d: -f1) \
    || pkg=$(dpkg -S "$path" 2>/dev/null | head -n1 | cut -d: -f1) || true
  [ -n "$pkg" ] || fail "no Debian package owns $path ($lib)"
  case " $runtime_packages libc6 " in
    *" $pkg "*) echo "check-dockerfile-build: $lib <- $pkg" >&2 ;;
    *) fail "$lib comes from $pkg, which the runtime stage does not install (RUNTIME_PACKAGES: $runtime_packages)" ;;
  esac
done
for p in $runtime_packages; do
  dpkg-query -W "$p" >/dev/null 2>&1 || apt-cache show "$p" >/dev/null 2>&1 || fail "runtime package $p is unknown to apt"
done

"$bin" version >&2
echo "$bin"
