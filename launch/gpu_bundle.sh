#!/usr/bin/env bash
# Prepares gpu_bundle/ (git-ignored) for a GPU machine that has CUDA 13 but none of our Debian libraries
# and no package registry: builds here for sm_90 (CMAKE_CUDA_ARCHITECTURES overridable) with MPI and
# oneDNN off (single-process communicator, reference CPU GEMM) and copies the executables that the GPU
# check runs plus every shared library `ldd` lists that is neither glibc's nor CUDA's.
#   bash launch/gpu_bundle.sh            then, on the GPU machine:  bash launch/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh --target prores >/dev/null
arch=${CMAKE_CUDA_ARCHITECTURES:-90}
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DPRORES_WITH_MPI=OFF -DPRORES_WITH_ONEDNN=OFF \
  -DPRORES_WITH_CUDA=ON -DPRORES_WITH_NCCL=OFF -DCMAKE_CUDA_ARCHITECTURES="$arch" >/dev/null
programs=(prores bench_gemm_cuda bench_train_step)
tests=(test_cuda_elementwise test_cuda_ops test_cuda_gemm_attention test_cuda_flash_attention test_cuda_train)
cmake --build build-gpu -j "$(nproc)" --target "${programs[@]}" "${tests[@]}"
rm -rf gpu_bundle
mkdir -p gpu_bundle/bin gpu_bundle/lib
for p in "${programs[@]}"; do cp "build-gpu/$p" gpu_bundle/bin/; done
for t in "${tests[@]}"; do cp "build-gpu/tests/$t" gpu_bundle/bin/; done
for exe in gpu_bundle/bin/*; do
  ldd "$exe" | awk '$3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|libresolv.so*|ld-linux*|libcuda*|libcublas*|libnccl*) ;;
    *) cp -L "$lib" gpu_bundle/lib/ ;;
  esac
done
du -sh gpu_bundle
