#!/usr/bin/env bash
# Prepares gpu_bundle/ and its archive gpu_bundle.tgz (both git-ignored) for a GPU machine that has CUDA 13
# but none of our Debian libraries and no package registry: builds here for sm_90 (CMAKE_CUDA_ARCHITECTURES
# overridable) with MPI and oneDNN off (single-process communicator, reference CPU GEMM) and copies the
# executables that the GPU check runs plus every shared library `ldd` lists that is neither glibc's nor
# CUDA's; then gpu_bundle/mpi (below) for the two-rank layout check.
#   bash launch/gpu_bundle.sh     then, on the GPU machine, carrying gpu_bundle.tgz:  bash launch/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh --target prores >/dev/null
arch=${CMAKE_CUDA_ARCHITECTURES:-90}
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DPRORES_WITH_MPI=OFF -DPRORES_WITH_ONEDNN=OFF \
  -DPRORES_WITH_CUDA=ON -DPRORES_WITH_NCCL=OFF -DCMAKE_CUDA_ARCHITECTURES="$arch" >/dev/null
programs=(prores bench_gemm_cuda bench_attention_cuda bench_train_step)
tests=(test_cuda_elementwise test_cuda_ops test_cuda_gemm_attention test_cuda_flash_attention test_cuda_cudnn_attention
       test_cuda_train)
cmake --build build-gpu -j "$(nproc)" --target "${programs[@]}" "${tests[@]}"
rm -rf gpu_bundle
mkdir -p gpu_bundle/bin gpu_bundle/lib
for p in "${programs[@]}"; do cp "build-gpu/$p" gpu_bundle/bin/; done
for t in "${tests[@]}"; do cp "build-gpu/tests/$t" gpu_bundle/bin/; done
# copy_libraries DIR FILE...: every shared library the files need (by ldd) that is neither glibc's nor CUDA's
# (nor NCCL's: the GPU machine's own is used) into DIR, unless gpu_bundle/lib has it already. cuDNN is no link
# dependency: loaded at run time, it comes from PyTorch's site-packages there (gpu_check.sh).
copy_libraries() {
  local dir=$1
  shift
  for file in "$@"; do
    ldd "$file" | awk '$3 ~ /^\// {print $3}'
  done | sort -u | while read -r lib; do
    case "$(basename "$lib")" in
      libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|libresolv.so*|ld-linux*|libcuda*|libcublas*|libnccl*) ;;
      *) [ -e "gpu_bundle/lib/$(basename "$lib")" ] || cp -L "$lib" "$dir/" ;;
    esac
  done
}
copy_libraries gpu_bundle/lib gpu_bundle/bin/*

# gpu_bundle/mpi: what launch/gpu_check_layouts.sh needs to run 2 ranks on the one GPU: prores and
# test_mpi_nccl built with MPI and NCCL, and Debian's Open MPI runtime (mpirun, its libraries, the plugins of
# a one-node run over shared memory, help texts), relocated by OPAL_PREFIX=gpu_bundle/mpi; PMIx's plugins
# under gpu_bundle/mpi/pmix (PMIX_INSTALL_PREFIX). Open MPI's plugins for InfiniBand, UCX, libfabric, PSM
# and OpenSHMEM stay behind (their libraries are not on the GPU machine).
cmake -S . -B build-gpu-mpi -DCMAKE_BUILD_TYPE=Release -DPRORES_WITH_MPI=ON -DPRORES_WITH_ONEDNN=OFF \
  -DPRORES_WITH_CUDA=ON -DPRORES_WITH_NCCL=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" >/dev/null
cmake --build build-gpu-mpi -j "$(nproc)" --target prores test_mpi_nccl
ompi=/usr/lib/x86_64-linux-gnu/openmpi/lib
plugins=gpu_bundle/mpi/lib/x86_64-linux-gnu/openmpi/lib/openmpi3
mkdir -p gpu_bundle/mpi/bin gpu_bundle/mpi/lib "$plugins" gpu_bundle/mpi/share gpu_bundle/mpi/pmix/lib
cp build-gpu-mpi/prores build-gpu-mpi/tests/test_mpi_nccl gpu_bundle/mpi/bin/
cp -L /usr/bin/orterun gpu_bundle/mpi/bin/mpirun
for plugin in "$ompi"/openmpi3/mca_*.so; do
  case "$(basename "$plugin")" in
    *ucx*|*ofi*|*openib*|*psm*|*usnic*|mca_atomic_*|mca_memheap_*|mca_scoll_*|mca_spml_*|mca_sshmem_*) ;;
    *) cp "$plugin" "$plugins/" ;;
  esac
done
cp -r /usr/share/openmpi gpu_bundle/mpi/share/
cp -r /usr/lib/x86_64-linux-gnu/pmix2/lib/pmix gpu_bundle/mpi/pmix/lib/
copy_libraries gpu_bundle/mpi/lib gpu_bundle/mpi/bin/* "$plugins"/*.so gpu_bundle/mpi/pmix/lib/pmix/*.so
# The device tool carries at most 64 MiB per call, the working tree included: gpu_bundle/ (about 90 MB) travels
# as gpu_bundle.tgz (about 35 MB), which launch/gpu_check.sh unpacks.
tar czf gpu_bundle.tgz gpu_bundle
du -sh gpu_bundle gpu_bundle.tgz
archive=$(stat -c %s gpu_bundle.tgz)
tree=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
if [ $((archive + tree)) -gt $((64 << 20)) ]; then
  echo "gpu_bundle.sh: gpu_bundle.tgz ($((archive >> 20)) MiB) and the working tree ($((tree >> 20)) MiB) exceed the" \
    "device tool's 64 MiB per call" >&2
  exit 1
fi
