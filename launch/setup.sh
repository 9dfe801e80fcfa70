#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need (only those missing; nothing assumed of the
# image beyond apt-get and dpkg), then configures and builds in Release into build/. Idempotent: a second run only rebuilds what changed. Sourced by the quick-start
# and test entry points; usable alone: bash launch/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# ocl-icd-opencl-dev: Debian's dnnl CMake config needs the OpenCL development files, only a Recommends of
# libdnnl-dev (installed here with --no-install-recommends). python3, python3-numpy, python3-venv: the
# interop tests' helper scripts and the virtual environment below; python3-matplotlib: `prores report`'s figures;
# iproute2: `ip netns`, the namespace hosts of the multi-host test (launch/test_hosts.sh).
packages=(build-essential cmake pkg-config git python3 python3-numpy python3-matplotlib python3-venv
          libdnnl-dev ocl-icd-opencl-dev libhdf5-dev libboost-program-options-dev libgtest-dev
          libsentencepiece-dev nlohmann-json3-dev libcpp-httplib-dev libopenmpi-dev openmpi-bin fortunes procps
          iproute2)
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

# build/python: a virtual environment over Debian's Python (/usr/bin/python3, whose numpy and matplotlib are
# Debian's, not whatever python3 comes first on PATH), recreated only when it cannot import numpy, with two
# packages from PyPI that Debian 12 lacks, each installed when it does not import: the reference safetensors
# implementation, which the safetensors interop tests read and write with ($PRORES_PYTHON instead when set), and
# tensorboardX, the writer of `prores report --tensorboard`. Without PyPI the set-up goes on and says what will skip.
venv_python=build/python/bin/python3
if ! "$venv_python" -c 'import numpy' 2>/dev/null; then
  rm -rf build/python
  /usr/bin/python3 -m venv --system-site-packages build/python
fi
# venv_install MODULE "PINS" WHAT_SKIPS: pip-installs PINS unless MODULE imports.
venv_install() {
  "$venv_python" -c "import $1" 2>/dev/null && return
  # shellcheck disable=SC2086  # PINS: several words
  if ! "$venv_python" -m pip install -q --disable-pip-version-check $2 >/dev/null 2>&1; then
    echo "setup: could not install $2 from PyPI into build/python; $3 will skip"
  fi
}
venv_install safetensors.numpy 'safetensors==0.5.3' "the safetensors interop tests"
venv_install tensorboardX 'tensorboardX==2.6.5 protobuf==7.36.2' "prores report --tensorboard and its test"

# build/cudnn_frontend: the cuDNN frontend's C++ headers (header-only; the PyPI wheel nvidia-cudnn-frontend ships
# them in include/), for --attention-backend cudnn, fetched only when the CUDA toolkit is found. Without them the
# build goes on and the option says it is not built in.
if [ -x /usr/local/cuda/bin/nvcc ] || command -v nvcc >/dev/null; then
  if [ ! -f build/cudnn_frontend/include/cudnn_frontend.h ] &&
     ! "$venv_python" -m pip install -q --disable-pip-version-check --no-deps --target build/cudnn_frontend \
         'nvidia-cudnn-frontend==1.32.0' >/dev/null 2>&1; then
    echo "setup: could not install nvidia-cudnn-frontend from PyPI; --attention-backend cudnn will not be built"
  fi
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${PRORES_CMAKE_ARGS:-} >/dev/null
cmake --build build -j "$(nproc)" "$@"
