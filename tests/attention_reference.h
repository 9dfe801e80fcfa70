// The double-precision reference of causal grouped-query attention that the CUDA attention kernels' parity
// tests (flash, cuDNN) hold their results to, computed here loop by loop from the definitions, with random
// unit-normal inputs and the error measures those tests apply (every element written and finite, then a relative
// Frobenius or an absolute bound). Plain C++; the layouts are ops/cuda/flash_attention.h's.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ops/cpu/attention.h"
#include "test_util.h"

namespace prores::test {

using ops::cpu::AttentionDims;

constexpr double kRelTol = 2e-2;  // relative Frobenius error of out, dq, dk, dv (bf16 operands)
constexpr double kLseTol = 2e-2;  // absolute error of lse

// Element counts of q (and out, dout, dq), of k (and v, dk, dv) and of lse (and delta).
struct Counts {
  int64_t q, kv, rows;
};

inline Counts counts(const AttentionDims& d) {
  return {d.B * d.NH * d.T * d.HS, d.B * d.KV * d.T * d.HS, d.B * d.NH * d.T};
}

inline std::vector<float> random_normal(int64_t n, uint64_t seed) {
  std::vector<float> x(static_cast<size_t>(n));
  test::fill_normal(x, seed);
  return x;
}

// q (B, NH, T, HS), k, v (B, KV, T, HS), dout (B, T, NH HS): N(0, 1), one seed each.
struct Inputs {
  std::vector<float> q, k, v, dout;
};

inline Inputs random_inputs(const AttentionDims& d, uint64_t seed) {
  const Counts n = counts(d);
  return {random_normal(n.q, seed), random_normal(n.kv, seed + 1), random_normal(n.kv, seed + 2),
          random_normal(n.q, seed + 3)};
}

// The forward's out, lse and the backward's dq, dk, dv, in the layouts of ops/cuda/flash_attention.h.
template <typename V>
struct Outputs {
  std::vector<V> out, lse, dq, dk, dv;
};

// Causal grouped-query attention and its gradients in double, from the definitions. Per (b, h, i), with
// g = h / (NH / KV) and scale = 1 / sqrt(HS): s_j = scale q_i . k_j for j <= i, lse_i = log sum_j exp(s_j),
// p_j = exp(s_j - lse_i), out_i = sum_j p_j v_j; dp_j = dout_i . v_j, ds_j = p_j (dp_j - sum_l p_l dp_l),
// dq_i = scale sum_j ds_j k_j, dk_j (+=) scale ds_j q_i, dv_j (+=) p_j dout_i (k, v, dk, dv of group g).
inline Outputs<double> reference(const Inputs& in, const AttentionDims& d) {
  const Counts n = counts(d);
  Outputs<double> r{std::vector<double>(n.q), std::vector<double>(n.rows), std::vector<double>(n.q),
                    std::vector<double>(n.kv), std::vector<double>(n.kv)};
  const int64_t T = d.T, HS = d.HS;
  const double scale = 1.0 / std::sqrt(static_cast<double>(HS));
  std::vector<double> p(static_cast<size_t>(T)), dp(static_cast<size_t>(T));
  for (int64_t b = 0; b < d.B; ++b) {
    for (int64_t h = 0; h < d.NH; ++h) {
      const int64_t bh = b * d.NH + h, bg = b * d.KV + h / (d.NH / d.KV);
      for (int64_t i = 0; i < T; ++i) {
        const int64_t qi = (bh * T + i) * HS, ti = ((b * T + i) * d.NH + h) * HS;  // head-major, token rows
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j <= i; ++j) {
          double s = 0;
          for (int64_t e = 0; e < HS; ++e) s += static_cast<double>(in.q[qi + e]) * in.k[(bg * T + j) * HS + e];
          p[j] = s * scale;
          m = std::max(m, p[j]);
        }
        double l = 0;
        for (int64_t j = 0; j <= i; ++j) l += std::exp(p[j] - m);
        const double lse = m + std::log(l);
        r.lse[bh * T + i] = lse;
        for (int64_t j = 0; j <= i; ++j) p[j] = std::exp(p[j] - lse);
        double dot = 0;
        for (int64_t j = 0; j <= i; ++j) {
          const int64_t kj = (bg * T + j) * HS;
          dp[j] = 0;
          for (int64_t e = 0; e < HS; ++e) {
            r.out[ti + e] += p[j] * in.v[kj + e];
            dp[j] += static_cast<double>(in.dout[ti + e]) * in.v[kj + e];
          }
          dot += p[j] * dp[j];
        }
        for (int64_t j = 0; j <= i; ++j) {
          const int64_t kj = (bg * T + j) * HS;
          const double ds = p[j] * (dp[j] - dot);
          for (int64_t e = 0; e < HS; ++e) {
            r.dq[qi + e] += scale * ds * in.k[kj + e];
            r.dk[kj + e] += scale * ds * in.q[qi + e];
            r.dv[kj + e] += p[j] * in.dout[ti + e];
          }
        }
      }
    }
  }
  return r;
}

// Index of the first element of x that is not finite (NaN poison left unwritten, or an overflow), or -1.
inline int64_t first_nonfinite(const std::vector<float>& x) {
  const auto it = std::find_if(x.begin(), x.end(), [](float e) { return !std::isfinite(e); });
  return it == x.end() ? -1 : it - x.begin();
}

// Every element of got written and finite, and ||got - want|| / ||want|| < tol. A reference that is exactly
// zero (dq and dk at T = 1: one key takes probability 1 whatever its score) is held to the root mean square
// of got instead: the inputs are of unit scale, so tol is then an absolute bound.
inline void expect_relative_error_below(const std::vector<float>& got, const std::vector<double>& want,
                                        double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const int64_t bad = first_nonfinite(got);
  ASSERT_EQ(bad, -1) << what << "[" << bad << "] = " << got[bad] << ": not written, or not finite";
  double err = 0, norm = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    err += (got[i] - want[i]) * (got[i] - want[i]);
    norm += want[i] * want[i];
  }
  if (norm > 0)
    EXPECT_LT(std::sqrt(err / norm), tol) << what << ": relative Frobenius error";
  else
    EXPECT_LT(std::sqrt(err / static_cast<double>(got.size())), tol)
        << what << ": root mean square of a zero reference";
}

// Every element of got written and finite, and |got - want| < tol everywhere.
inline void expect_absolute_error_below(const std::vector<float>& got, const std::vector<double>& want,
                                        double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const int64_t bad = first_nonfinite(got);
  ASSERT_EQ(bad, -1) << what << "[" << bad << "] = " << got[bad] << ": not written, or not finite";
  size_t worst = 0;
  for (size_t i = 1; i < got.size(); ++i)
    if (std::abs(got[i] - want[i]) > std::abs(got[worst] - want[worst])) worst = i;
  EXPECT_LT(std::abs(got[worst] - want[worst]), tol)
      << what << "[" << worst << "]: cuda " << got[worst] << ", reference " << want[worst];
}

}  // namespace prores::test
