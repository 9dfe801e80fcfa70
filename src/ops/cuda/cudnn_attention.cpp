// cuDNN's fused attention (ops/cuda/cudnn_attention.h) through the cuDNN frontend: per-thread, per-device
// contexts holding a cuDNN handle and the forward and backward graphs built for each AttentionDims.
//
// cuDNN is loaded at run time (the frontend's dynamic loading: dlopen of libcudnn.so.9 on first use), so that
// the executables start, and run every other kernel, on a machine without cuDNN; the frontend then reaches the
// CUDA runtime through dlopen too, pointed at this build's major version.
//
// Layouts, as cuDNN's (b, h, s, d) dims with our strides, so no tensor is copied: q (B, NH, T, HS) and k, v,
// dq, dk, dv (B, KV, T, HS) are contiguous head-major; out and dout (B, T, NH * HS) are (B, NH, T, HS) with
// strides (T·NH·HS, HS, NH·HS, 1); the statistics (B, NH, T) are (B, NH, T, 1).
#include "ops/cuda/cudnn_attention.h"

#include "core/check.h"

#if PRORES_WITH_CUDNN
#include <cuda_runtime.h>
#include <cudnn.h>
#include <dlfcn.h>
#define CUDNN_FRONTEND_SKIP_JSON_LIB 1
#define NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING 1
#include <cudnn_frontend.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "ops/cuda/device.h"
#endif

#if PRORES_WITH_CUDNN
namespace cudnn_frontend {
void* cudnn_dlhandle = nullptr;  // the frontend's handle of libcudnn, set by load_cudnn
}  // namespace cudnn_frontend
#endif

namespace prores::ops::cuda {

#if PRORES_WITH_CUDNN
namespace {

namespace fe = cudnn_frontend;

// The uids of the graphs' tensors, fixed so that a call passes its pointers by uid.
enum Uid : int64_t { kQ = 1, kK, kV, kOut, kStats, kDout, kDq, kDk, kDv };

// "--attention-backend cudnn: " + what, the dims, and cuDNN's message.
[[noreturn]] void fail(const char* what, const AttentionDims& d, const std::string& message) {
  PRORES_FAIL("--attention-backend cudnn: ", what, " for ", d.B, " x ", d.T, " tokens, ", d.NH, " heads in ", d.KV,
              " groups of size ", d.HS, ": ", message);
}

void check(fe::error_t status, const char* what, const AttentionDims& d) {
  if (status.is_bad()) fail(what, d, status.get_message());
}

std::vector<int64_t> head_major(int64_t H, int64_t T, int64_t HS) { return {H * T * HS, T * HS, HS, 1}; }
std::vector<int64_t> token_major(int64_t H, int64_t T, int64_t HS) { return {T * H * HS, HS, H * HS, 1}; }

std::shared_ptr<fe::graph::Tensor_attributes> input(fe::graph::Graph& g, Uid uid, const char* name,
                                                    std::vector<int64_t> dims, std::vector<int64_t> strides) {
  return g.tensor(fe::graph::Tensor_attributes().set_name(name).set_uid(uid).set_dim(std::move(dims)).set_stride(
      std::move(strides)));
}

std::shared_ptr<fe::graph::Graph> new_graph() {
  auto g = std::make_shared<fe::graph::Graph>();
  g->set_io_data_type(fe::DataType_t::BFLOAT16)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  return g;
}

// Validates g and builds its execution plan on handle (heuristics A, then the fallback list).
void build(fe::graph::Graph& g, cudnnHandle_t handle, const char* what, const AttentionDims& d) {
  check(g.validate(), what, d);
  check(g.build_operation_graph(handle), what, d);
  check(g.create_execution_plans({fe::HeurMode_t::A, fe::HeurMode_t::FALLBACK}), what, d);
  check(g.check_support(handle), what, d);
  check(g.build_plans(handle), what, d);
}

struct Graphs {
  std::shared_ptr<fe::graph::Graph> forward, backward;
  int64_t workspace_bytes = 0;
};

Graphs build_graphs(cudnnHandle_t handle, const AttentionDims& d) {
  const int64_t B = d.B, T = d.T, NH = d.NH, KV = d.KV, HS = d.HS;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  const std::vector<int64_t> q_dims{B, NH, T, HS}, kv_dims{B, KV, T, HS}, stats_dims{B, NH, T, 1};
  const std::vector<int64_t> stats_strides{NH * T, T, 1, 1};
  Graphs graphs;

  graphs.forward = new_graph();
  fe::graph::Graph& f = *graphs.forward;
  auto q = input(f, kQ, "q", q_dims, head_major(NH, T, HS));
  auto k = input(f, kK, "k", kv_dims, head_major(KV, T, HS));
  auto v = input(f, kV, "v", kv_dims, head_major(KV, T, HS));
  auto [out, stats] = f.sdpa(
      q, k, v, fe::graph::SDPA_attributes().set_name("attention").set_generate_stats(true).set_causal_mask(true)
                   .set_attn_scale(scale));
  out->set_output(true).set_uid(kOut).set_dim(q_dims).set_stride(token_major(NH, T, HS));
  stats->set_output(true).set_uid(kStats).set_data_type(fe::DataType_t::FLOAT).set_dim(stats_dims).set_stride(
      stats_strides);
  build(f, handle, "cuDNN has no fused attention forward", d);

  graphs.backward = new_graph();
  fe::graph::Graph& b = *graphs.backward;
  auto bq = input(b, kQ, "q", q_dims, head_major(NH, T, HS));
  auto bk = input(b, kK, "k", kv_dims, head_major(KV, T, HS));
  auto bv = input(b, kV, "v", kv_dims, head_major(KV, T, HS));
  auto bout = input(b, kOut, "out", q_dims, token_major(NH, T, HS));
  auto bdout = input(b, kDout, "dout", q_dims, token_major(NH, T, HS));
  auto bstats = input(b, kStats, "stats", stats_dims, stats_strides);
  bstats->set_data_type(fe::DataType_t::FLOAT);
  auto [dq, dk, dv] = b.sdpa_backward(
      bq, bk, bv, bout, bdout, bstats,
      fe::graph::SDPA_backward_attributes().set_name("attention_backward").set_causal_mask(true).set_attn_scale(
          scale).set_deterministic_algorithm(true));
  dq->set_output(true).set_uid(kDq).set_dim(q_dims).set_stride(head_major(NH, T, HS));
  dk->set_output(true).set_uid(kDk).set_dim(kv_dims).set_stride(head_major(KV, T, HS));
  dv->set_output(true).set_uid(kDv).set_dim(kv_dims).set_stride(head_major(KV, T, HS));
  build(b, handle, "cuDNN has no fused attention backward", d);

  int64_t forward_bytes = 0, backward_bytes = 0;
  check(f.get_workspace_size(forward_bytes), "cuDNN gave no workspace size", d);
  check(b.get_workspace_size(backward_bytes), "cuDNN gave no workspace size", d);
  graphs.workspace_bytes = std::max(forward_bytes, backward_bytes);
  return graphs;
}

// Opens libcudnn.so.9 once per process for the frontend, and points the frontend's own dlopen of the CUDA
// runtime at this build's major version (unless CUDNN_FRONTEND_CUDART_LIB_NAME says otherwise): a machine with
// PyTorch may have another major's libcudart on its path.
void load_cudnn() {
  static std::once_flag once;
  static std::string error;
  std::call_once(once, [] {
    const std::string cudart = "libcudart.so." + std::to_string(CUDART_VERSION / 1000);
    setenv("CUDNN_FRONTEND_CUDART_LIB_NAME", cudart.c_str(), /*overwrite=*/0);
    cudnn_frontend::cudnn_dlhandle = dlopen("libcudnn.so.9", RTLD_NOW | RTLD_GLOBAL);
    if (!cudnn_frontend::cudnn_dlhandle) error = dlerror();
  });
  PRORES_CHECK(error.empty(), "--attention-backend cudnn: cannot load cuDNN 9's runtime (", error,
               "): put the folder of libcudnn.so.9 (e.g. PyPI's nvidia-cudnn-cu13, nvidia/cudnn/lib) on "
               "LD_LIBRARY_PATH");
}

// One device's handle and graphs.
class Context {
 public:
  Context() {
    load_cudnn();
    const cudnnStatus_t status = fe::detail::create_handle(&handle_);
    PRORES_CHECK(status == CUDNN_STATUS_SUCCESS, "--attention-backend cudnn: cudnnCreate failed: ",
                 fe::detail::get_error_string(status));
  }
  ~Context() { fe::detail::destroy_handle(handle_); }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  cudnnHandle_t handle() const { return handle_; }

  const Graphs& graphs(const AttentionDims& d) {
    const auto key = std::make_tuple(d.B, d.T, d.NH, d.KV, d.HS);
    auto it = graphs_.find(key);
    if (it == graphs_.end()) it = graphs_.emplace(key, build_graphs(handle_, d)).first;
    return it->second;
  }

 private:
  cudnnHandle_t handle_ = nullptr;
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>, Graphs> graphs_;
};

Context& context() { return thread_device_context<Context>(); }

void execute(const fe::graph::Graph& g, std::unordered_map<int64_t, void*>& pointers, void* workspace,
             int64_t workspace_bytes, int64_t needed, const char* what, const AttentionDims& d) {
  PRORES_CHECK(workspace_bytes >= needed, "--attention-backend cudnn: ", what, " needs ", needed,
               " bytes of workspace, given ", workspace_bytes);
  check(g.execute(context().handle(), pointers, workspace), what, d);
}

void* mut(const void* p) { return const_cast<void*>(p); }  // the frontend's variant pack takes void*

}  // namespace

bool cudnn_attention_built() { return true; }

int64_t cudnn_attention_workspace_bytes(const AttentionDims& d) { return context().graphs(d).workspace_bytes; }

void cudnn_attention_forward(uint16_t* out, float* stats, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                             void* workspace, int64_t workspace_bytes, const AttentionDims& d) {
  const Graphs& g = context().graphs(d);
  std::unordered_map<int64_t, void*> pointers{{kQ, mut(q)}, {kK, mut(k)}, {kV, mut(v)}, {kOut, out},
                                              {kStats, stats}};
  execute(*g.forward, pointers, workspace, workspace_bytes, g.workspace_bytes, "the attention forward", d);
}

void cudnn_attention_backward(uint16_t* dq, uint16_t* dk, uint16_t* dv, const uint16_t* dout, const uint16_t* out,
                              const float* stats, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                              void* workspace, int64_t workspace_bytes, const AttentionDims& d) {
  const Graphs& g = context().graphs(d);
  std::unordered_map<int64_t, void*> pointers{{kQ, mut(q)},       {kK, mut(k)},   {kV, mut(v)},
                                              {kOut, mut(out)},   {kDout, mut(dout)}, {kStats, mut(stats)},
                                              {kDq, dq},          {kDk, dk},      {kDv, dv}};
  execute(*g.backward, pointers, workspace, workspace_bytes, g.workspace_bytes, "the attention backward", d);
}

#else

namespace {
[[noreturn]] void not_built() {
  PRORES_FAIL("--attention-backend cudnn: this build has no cuDNN attention");
}
}  // namespace

bool cudnn_attention_built() { return false; }
int64_t cudnn_attention_workspace_bytes(const AttentionDims&) { not_built(); }
void cudnn_attention_forward(uint16_t*, float*, const uint16_t*, const uint16_t*, const uint16_t*, void*, int64_t,
                             const AttentionDims&) {
  not_built();
}
void cudnn_attention_backward(uint16_t*, uint16_t*, uint16_t*, const uint16_t*, const uint16_t*, const float*,
                              const uint16_t*, const uint16_t*, const uint16_t*, void*, int64_t,
                              const AttentionDims&) {
  not_built();
}

#endif

}  // namespace prores::ops::cuda
