// cuBLASLt matmul (ops/cuda/blas.h): per-thread, per-device contexts (handle, workspace, plan cache) and the
// row-major -> column-major operand swap.
//
// cuBLASLt works on column-major matrices. A row-major (r, c) matrix with leading dimension ld is, byte for
// byte, the column-major (c, r) matrix with the same ld, i.e. its transpose. So the row-major product
// C = op(A) op(B) is computed as the column-major product C^T = op(B)^T op(A)^T: cuBLASLt's first operand is
// our B (with our trans_b), its second is our A (with our trans_a), m = N, n = M, k = K, and it writes the
// column-major (N, M) matrix C^T, which is our row-major (M, N) C. No data moves.
#include "ops/cuda/blas.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "core/check.h"
#include "ops/cuda/device.h"

namespace prores::ops::cuda {
namespace {

// Throws prores::Error "cuBLASLt error <code> (<name>): <description> in <expr>" at file:line.
void check_cublas(cublasStatus_t status, const char* expr, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS)
    ::prores::detail::throw_error(file, line, "cuBLASLt error ", static_cast<int>(status), " (",
                                  cublasLtGetStatusName(status), "): ", cublasLtGetStatusString(status), " in ",
                                  expr);
}
#define PRORES_CUBLAS_CHECK(call) check_cublas((call), #call, __FILE__, __LINE__)

// Owning handles of the cuBLASLt descriptor types (all pointers to opaque structs).
template <typename Handle, cublasStatus_t (*kDestroy)(Handle)>
struct Destroyer {
  void operator()(Handle h) const { kDestroy(h); }
};
using MatmulDesc = std::unique_ptr<std::remove_pointer_t<cublasLtMatmulDesc_t>,
                                   Destroyer<cublasLtMatmulDesc_t, cublasLtMatmulDescDestroy>>;
using Layout = std::unique_ptr<std::remove_pointer_t<cublasLtMatrixLayout_t>,
                               Destroyer<cublasLtMatrixLayout_t, cublasLtMatrixLayoutDestroy>>;
using Preference = std::unique_ptr<std::remove_pointer_t<cublasLtMatmulPreference_t>,
                                   Destroyer<cublasLtMatmulPreference_t, cublasLtMatmulPreferenceDestroy>>;

cudaDataType_t data_type(BlasType t) { return t == BlasType::F32 ? CUDA_R_32F : CUDA_R_16BF; }
size_t type_size(BlasType t) { return t == BlasType::F32 ? 4 : 2; }

// Largest power of two (at most 256, cuBLASLt's strictest requirement) dividing every matrix start of an
// operand: its base address and, when batched, its batch stride in bytes.
uint32_t alignment(const void* p, int64_t stride, size_t elem, int64_t batch) {
  uintptr_t bits = reinterpret_cast<uintptr_t>(p) | 256;
  if (batch > 1) bits |= static_cast<uintptr_t>(stride) * elem;
  return static_cast<uint32_t>(bits & (~bits + 1));
}

// Everything a plan depends on: the shape and the operands' alignments (the heuristic may pick vectorized
// kernels only for well-aligned operands).
struct PlanKey {
  MatmulShape s;
  uint32_t align_a = 0, align_b = 0, align_c = 0;  // align_c: of C and D both

  bool operator==(const PlanKey& o) const {
    return s.trans_a == o.s.trans_a && s.trans_b == o.s.trans_b && s.M == o.s.M && s.N == o.s.N &&
           s.K == o.s.K && s.lda == o.s.lda && s.ldb == o.s.ldb && s.ldc == o.s.ldc && s.batch == o.s.batch &&
           s.stride_a == o.s.stride_a && s.stride_b == o.s.stride_b && s.stride_c == o.s.stride_c &&
           s.ab == o.s.ab && s.c == o.s.c && s.f32_via_bf16 == o.s.f32_via_bf16 && align_a == o.align_a &&
           align_b == o.align_b && align_c == o.align_c;
  }
};

struct PlanKeyHash {
  size_t operator()(const PlanKey& k) const {
    const int64_t fields[] = {k.s.M,        k.s.N,        k.s.K,        k.s.lda,      k.s.ldb,
                              k.s.ldc,      k.s.batch,    k.s.stride_a, k.s.stride_b, k.s.stride_c,
                              k.align_a,    k.align_b,    k.align_c,
                              (k.s.trans_a ? 1 : 0) | (k.s.trans_b ? 2 : 0) | (static_cast<int>(k.s.ab) << 2) |
                                  (static_cast<int>(k.s.c) << 4) | (k.s.f32_via_bf16 ? 64 : 0)};
    size_t h = 0;
    for (int64_t f : fields) h = h * 0x9E3779B97F4A7C15ull + std::hash<int64_t>{}(f);
    return h;
  }
};

// Column-major layout of `rows` x `cols` elements with leading dimension ld, batched when batch > 1.
Layout make_layout(BlasType type, int64_t rows, int64_t cols, int64_t ld, int64_t batch, int64_t stride) {
  cublasLtMatrixLayout_t raw = nullptr;
  PRORES_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&raw, data_type(type), static_cast<uint64_t>(rows),
                                                 static_cast<uint64_t>(cols), ld));
  Layout layout(raw);
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    PRORES_CUBLAS_CHECK(
        cublasLtMatrixLayoutSetAttribute(raw, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
    PRORES_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(raw, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                         &stride, sizeof(stride)));
  }
  return layout;
}

// Descriptors and algorithm of one PlanKey, in cuBLASLt's (swapped, column-major) terms: first operand
// our B, second our A, output C^T.
struct Plan {
  MatmulDesc op;
  Layout first, second, out;
  cublasLtMatmulAlgo_t algo{};
};

std::unique_ptr<Plan> make_plan(cublasLtHandle_t handle, const PlanKey& key) {
  const MatmulShape& s = key.s;
  auto plan = std::make_unique<Plan>();
  cublasLtMatmulDesc_t op = nullptr;
  const cublasComputeType_t compute = s.f32_via_bf16 ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F;
  PRORES_CUBLAS_CHECK(cublasLtMatmulDescCreate(&op, compute, CUDA_R_32F));
  plan->op.reset(op);
  const int32_t op_first = s.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int32_t op_second = s.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  PRORES_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(int32_t)));
  PRORES_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(int32_t)));
  // Row-major B (K, N) is column-major (N, K); row-major (N, K) when trans_b is column-major (K, N).
  plan->first = make_layout(s.ab, s.trans_b ? s.K : s.N, s.trans_b ? s.N : s.K, s.ldb, s.batch, s.stride_b);
  plan->second = make_layout(s.ab, s.trans_a ? s.M : s.K, s.trans_a ? s.K : s.M, s.lda, s.batch, s.stride_a);
  plan->out = make_layout(s.c, s.N, s.M, s.ldc, s.batch, s.stride_c);

  cublasLtMatmulPreference_t raw_pref = nullptr;
  PRORES_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&raw_pref));
  Preference pref(raw_pref);
  const uint64_t workspace = kBlasWorkspaceBytes;
  PRORES_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(raw_pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                           &workspace, sizeof(workspace)));
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> aligns[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.align_b},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.align_a},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.align_c},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.align_c}};
  for (const auto& [attr, value] : aligns)
    PRORES_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(raw_pref, attr, &value, sizeof(value)));

  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  PRORES_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle, op, plan->first.get(), plan->second.get(),
                                                     plan->out.get(), plan->out.get(), raw_pref, 1, &result,
                                                     &found));
  PRORES_CHECK(found > 0 && result.state == CUBLAS_STATUS_SUCCESS, "cuBLASLt has no algorithm for the ",
               s.ab == BlasType::F32 ? "f32" : "bf16", " -> ", s.c == BlasType::F32 ? "f32" : "bf16",
               " matmul M=", s.M, " N=", s.N, " K=", s.K, " trans_a=", s.trans_a, " trans_b=", s.trans_b,
               " lda=", s.lda, " ldb=", s.ldb, " ldc=", s.ldc, " batch=", s.batch);
  plan->algo = result.algo;
  return plan;
}

// One device's cuBLASLt state for one host thread. Created with that device current.
class Context {
 public:
  Context() {
    PRORES_CUBLAS_CHECK(cublasLtCreate(&handle_));
    try {
      workspace_ = device_alloc(kBlasWorkspaceBytes);
    } catch (...) {
      cublasLtDestroy(handle_);
      throw;
    }
  }
  // Destroys the plans, frees the workspace and the handle; errors are ignored (this may run at thread or
  // process exit, when the CUDA runtime may already be shutting down).
  ~Context() {
    plans_.clear();
    cudaFree(workspace_);
    cublasLtDestroy(handle_);
  }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  void run(const PlanKey& key, float alpha, const void* A, const void* B, float beta, const void* C, void* D) {
    auto it = plans_.find(key);
    if (it == plans_.end()) it = plans_.emplace(key, make_plan(handle_, key)).first;
    const Plan& p = *it->second;
    PRORES_CUBLAS_CHECK(cublasLtMatmul(handle_, p.op.get(), &alpha, B, p.first.get(), A, p.second.get(), &beta,
                                       C, p.out.get(), D, p.out.get(), &p.algo, workspace_, kBlasWorkspaceBytes,
                                       /*stream=*/0));
  }

 private:
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  std::unordered_map<PlanKey, std::unique_ptr<Plan>, PlanKeyHash> plans_;
};

// The calling thread's context for the current device.
Context& current_context() { return thread_device_context<Context>(); }

}  // namespace

void matmul(const MatmulShape& s, float alpha, const void* A, const void* B, float beta, const void* C, void* D) {
  PRORES_CHECK(s.M >= 1 && s.N >= 1 && s.K >= 1 && s.batch >= 1 && s.batch <= INT32_MAX,
               "cuda matmul: sizes must be positive (batch below 2^31): M=", s.M, " N=", s.N, " K=", s.K,
               " batch=", s.batch);
  PRORES_CHECK(s.lda >= (s.trans_a ? s.M : s.K) && s.ldb >= (s.trans_b ? s.K : s.N) && s.ldc >= s.N,
               "cuda matmul: leading dimension too small: lda=", s.lda, " ldb=", s.ldb, " ldc=", s.ldc);
  PRORES_CHECK(s.batch == 1 || (s.stride_a >= 0 && s.stride_b >= 0 && s.stride_c >= 0),
               "cuda matmul: negative batch stride");
  PRORES_CHECK(s.ab == BlasType::BF16 || s.c == BlasType::F32, "cuda matmul: f32 inputs need an f32 output");
  PRORES_CHECK(A && B && C && D, "cuda matmul: null operand");
  PRORES_CHECK(!s.f32_via_bf16 || s.ab == BlasType::F32, "cuda matmul: f32_via_bf16 needs f32 operands");
  const uint32_t align_cd = std::min(alignment(C, s.stride_c, type_size(s.c), s.batch),
                                     alignment(D, s.stride_c, type_size(s.c), s.batch));
  PlanKey key{s, alignment(A, s.stride_a, type_size(s.ab), s.batch),
              alignment(B, s.stride_b, type_size(s.ab), s.batch), align_cd};
  if (s.batch == 1) key.s.stride_a = key.s.stride_b = key.s.stride_c = 0;
  current_context().run(key, alpha, A, B, beta, C, D);
}

}  // namespace prores::ops::cuda
