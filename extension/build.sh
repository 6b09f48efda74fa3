#!/usr/bin/env bash
# Builds the Lambda layer zips: build/layer-x86_64.zip and (when aarch64-linux-gnu-gcc is
# installed) build/layer-arm64.zip, each holding extensions/coldstart (Lambda runs every file in
# /opt/extensions at init). The binary is fully static: libevent, jansson, OpenSSL (for https://
# backends; CSA_TLS=OFF leaves it out) and glibc itself, so it runs on every Lambda image, Amazon
# Linux 2 (nodejs18.x) as well as Amazon Linux 2023 (nodejs20.x and later, provided.al2023).
# Usage: extension/build.sh            (both architectures when possible)
#        ARCHS=x86_64 extension/build.sh
set -euo pipefail
cd "$(dirname "$0")"
ARCHS=${ARCHS:-"x86_64 arm64"}
JOBS=${JOBS:-2}

package() { # arch binary
    local arch=$1 bin=$2 stage=build/layer-$1
    rm -rf "$stage" "build/layer-$arch.zip"
    mkdir -p "$stage/extensions"
    cp "$bin" "$stage/extensions/coldstart"
    "$3" --strip-unneeded "$stage/extensions/coldstart"
    chmod 755 "$stage/extensions/coldstart"
    (cd "$stage" && zip -q -X -r "../layer-$arch.zip" extensions)
    local needs="static, no shared libraries"
    if objdump -p "$stage/extensions/coldstart" | grep -q NEEDED; then
        needs="needs glibc $(objdump -T "$stage/extensions/coldstart" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"
    fi
    echo "build/layer-$arch.zip: extensions/coldstart $(stat -c %s "$stage/extensions/coldstart") bytes, $needs"
}

for arch in $ARCHS; do
    case $arch in
    x86_64)
        cmake -S . -B build -DCMAKE_BUILD_TYPE=MinSizeRel -DCSA_TLS="${CSA_TLS:-ON}" >/dev/null
        cmake --build build -j"$JOBS" --target coldstart-extension >/dev/null
        package x86_64 build/coldstart-extension strip
        ;;
    arm64)
        if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
            echo "arm64: skipped, no aarch64-linux-gnu-gcc (apt-get install gcc-aarch64-linux-gnu)" >&2
            continue
        fi
        deps=build-arm64/deps
        if [ ! -f "$deps/usr/lib/aarch64-linux-gnu/libssl.a" ]; then
            # Extract (not install): libevent-dev:arm64 would replace the host's libevent-dev.
            # Needs `dpkg --add-architecture arm64 && apt-get update` once.
            mkdir -p build-arm64/debs "$deps"
            (cd build-arm64/debs && apt-get download libevent-dev:arm64 libjansson-dev:arm64 libssl-dev:arm64 2>/dev/null) || {
                echo "arm64: skipped, cannot download libevent-dev:arm64 (dpkg --add-architecture arm64; apt-get update)" >&2
                continue
            }
            for deb in build-arm64/debs/*.deb; do dpkg-deb -x "$deb" "$deps"; done
        fi
        cmake -S . -B build-arm64 -DCMAKE_BUILD_TYPE=MinSizeRel -DCMAKE_SYSTEM_NAME=Linux \
            -DCMAKE_SYSTEM_PROCESSOR=aarch64 -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc \
            -DCSA_DEPS_PREFIX="$PWD/$deps" -DCSA_MULTIARCH=aarch64-linux-gnu -DCSA_TLS="${CSA_TLS:-ON}" >/dev/null
        cmake --build build-arm64 -j"$JOBS" --target coldstart-extension >/dev/null
        package arm64 build-arm64/coldstart-extension aarch64-linux-gnu-strip
        ;;
    *) echo "unknown arch $arch" >&2; exit 2 ;;
    esac
done
