#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need (only those missing; nothing assumed of the
# image beyond apt-get and dpkg), then configures and builds in Release into build/. Idempotent: a second run only rebuilds what changed. Sourced by the quick-start
# and test entry points; usable alone: bash launch/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# ocl-icd-opencl-dev: Debian's dnnl CMake config needs the OpenCL development files, only a Recommends of
# libdnnl-dev (installed here with --no-install-recommends). python3: the interop tests' helper scripts.
packages=(build-essential cmake pkg-config git python3
          libdnnl-dev ocl-icd-opencl-dev libhdf5-dev libboost-program-options-dev libgtest-dev
          libsentencepiece-dev nlohmann-json3-dev libopenmpi-dev openmpi-bin fortunes procps)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${PRORES_CMAKE_ARGS:-} >/dev/null
cmake --build build -j "$(nproc)" "$@"
