// The inverse sequence shared by the Kronecker-factored optimizers (tnt.cc, kfac.cc, shampoo.cc): a batch of damped
// factors is factorised at once; a factor whose factorisation fails (or yields a non-finite inverse) is retried alone
// in float64, then with 10x, 100x and 1000x the damping; one that still fails keeps its last good inverse (its
// destination is left untouched). Shampoo's roots take the same path without the damping retries (RetryAlone with
// damping_retries 0): its epsilon is part of the preconditioner (H + eps I)^(-1/(2k)), not a regulariser to raise.
// One implementation, so that the three optimizers cannot drift apart.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "../optim_common.h"

namespace tn::optim::kronecker {

// How a damped factor is inverted: a Cholesky factorisation and its inverse, or a general LU inverse.
enum class Method { kCholesky = 0, kLu = 1 };

// inv_out <- inverse of each matrix of `a` (a batch or one matrix), info_out <- its status (0 = success).
inline void Factorize(const at::Tensor& a, Method method, at::Tensor& inv_out, at::Tensor& info_out) {
  if (method == Method::kLu) {
    auto r = at::linalg_inv_ex(a);
    inv_out = std::get<0>(r);
    info_out = std::get<1>(r);
    return;
  }
  auto r = at::linalg_cholesky_ex(a);
  info_out = std::get<1>(r);
  // cholesky_inverse throws on the garbage factor of a failed element: give those the identity (their result is
  // discarded by the status check).
  std::vector<int64_t> mask_shape = info_out.dim() == 0 ? std::vector<int64_t>{1, 1} : std::vector<int64_t>{info_out.size(0), 1, 1};
  at::Tensor good = info_out.eq(0).reshape(mask_shape);
  inv_out = at::cholesky_inverse(at::where(good, std::get<0>(r), at::eye(a.size(-1), a.options())));
}

// The counts every inverse phase reports.
struct InverseCounts {
  double inverted = 0, retried64 = 0, retriedDamping = 0, failed = 0, skipped = 0;
  Napi::Object ToReport(Napi::Env env) const {
    return Report(env, {{"inverted", inverted}, {"retriedFloat64", retried64}, {"retriedDamping", retriedDamping},
                        {"failed", failed}, {"skippedNonFinite", skipped}});
  }
};

// Inverts the batch `a` (n x d x d, damping already added) in one factorisation; ok[b] says whether inv[b] is usable.
struct BatchInverse {
  at::Tensor inv;
  std::vector<bool> ok;
};
inline BatchInverse InvertBatch(const at::Tensor& a, Method method) {
  BatchInverse out;
  at::Tensor status;
  Factorize(a, method, out.inv, status);
  auto okv = (status.eq(0) & at::isfinite(out.inv).flatten(1).all(1)).to(at::kBool).cpu();
  const bool* okp = okv.data_ptr<bool>();
  out.ok.assign(okp, okp + okv.numel());
  return out;
}

// The retry of one item that failed in its batch: attempt(factor in float64, damping) with `damp`, then with
// 10^r damp for r = 1..damping_retries; the first that gives a result goes through store(result) and is counted
// (r = 0 as a float64 retry, later ones as a damping retry). None: counted as failed, store is not called (the
// last good inverse or root stays).
template <typename Attempt, typename Store>
void RetryAlone(const at::Tensor& factor, double damp, int damping_retries, InverseCounts& counts, Attempt&& attempt,
                Store&& store) {
  at::Tensor f64 = factor.to(at::kDouble);
  for (int r = 0; r <= damping_retries; ++r) {
    std::optional<at::Tensor> out = attempt(f64, damp * std::pow(10.0, r));
    if (out) {
      store(*out);
      ++counts.inverted;
      if (r == 0) ++counts.retried64;
      else ++counts.retriedDamping;
      return;
    }
  }
  ++counts.failed;
}

// The inverse's retry (TNT, KFAC): `factor` (undamped) plus damp * 10^r * I for r = 0..3, factorised by `method`.
template <typename Store>
void RetryAlone(const at::Tensor& factor, double damp, Method method, InverseCounts& counts, Store&& store) {
  at::Tensor eye64;
  RetryAlone(
      factor, damp, 3, counts,
      [&](const at::Tensor& f64, double d) -> std::optional<at::Tensor> {
        if (!eye64.defined()) eye64 = at::eye(f64.size(-1), f64.options());
        at::Tensor i1, s1;
        Factorize(f64 + eye64 * d, method, i1, s1);
        if (s1.item<int64_t>() == 0 && AllFinite(i1)) return i1;
        return std::nullopt;
      },
      store);
}

}  // namespace tn::optim::kronecker
