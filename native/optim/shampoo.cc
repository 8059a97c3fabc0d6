// Shampoo (Gupta, Koren & Singer 2018; Anil et al. 2020), as the TNT paper ran it as a baseline: TNT's moving
// average of the mode contractions, but of the EMPIRICAL gradient (the true-label .grad), and the preconditioner
// prod_i (H_i + eps I)^(-1/(2k)) for a parameter with k factors. Two native phases; the step itself is the family's
// (kroneckerStep: momentum, mode products with the root matrices, decoupled weight decay, non-finite skip).
//
//   shampooStatistics  H_i <- keep H_i + w mat_i(G) mat_i(G)^T, keep = 1 - w unless given (one addmm per factor; a
//                      diagonal factor keeps the diagonal), all or nothing: a non-finite value in any gradient
//                      leaves every factor untouched, since that step will be skipped.
//   shampooRoots       R_i = (H_i + eps I)^(-1/(2k)), same-size factors of all parameters batched together, either
//                        eigh:   H = Q diag(l) Q^T, R = Q diag((max(l, 0) + eps)^(-1/(2k))) Q^T  (one batched eigh
//                                per size; items carry their own exponent)
//                        newton: the coupled Newton iteration for the inverse p-th root (Guo & Higham 2006; the
//                                form of Anil et al.'s distributed Shampoo), p = 2k, batched per (size, p).
//                      A factor whose root fails (eigh does not converge, Newton stalls, a non-finite result) is
//                      retried alone in float64; one that still fails keeps its last good root (the family's
//                      sequence, kronecker/inverse.h, without its damping retries). A diagonal factor
//                      takes the elementwise root. A parameter whose factors hold a non-finite value is skipped.
//
// Factor shapes come from TypeScript (lib/optim/shampoo.ts), as for TNT: an empty shape is not preconditioned, a
// factor of ndim 1 is diagonal.
#include <map>
#include <optional>
#include <tuple>

#include "kronecker/inverse.h"
#include "optim_common.h"
#include "../opcodes.h"

using namespace tn;
using namespace tn::optim;

namespace {

// Newton's stopping tolerance on max|M - I| and the largest error accepted as a root. float32 stalls near 1e-6
// (a few ulps of the entries of M); an error e in M is an error of about e / p in the root.
double NewtonTolerance(at::ScalarType t) { return t == at::kDouble ? 1e-12 : 1e-6; }
double NewtonAccept(at::ScalarType t) { return t == at::kDouble ? 1e-8 : 1e-4; }
constexpr int kNewtonMaxIter = 100;  // an eigenvalue ratio of 1e-30 needs about 90 steps at the 2.25x per step of p = 2

// Coupled Newton iteration for A^(-1/p), A (B, d, d) symmetric positive definite:
//   M_0 = z A, X_0 = z^(1/p) I, z = (1 + p) / (2 ||A||_F)   (so the spectrum of M_0 lies in (0, (1 + p) / 2])
//   T = ((p + 1) I - M) / p,  X <- X T,  M <- T^p M          (M = X^p A throughout; M -> I, X -> A^(-1/p))
// An item stops when max|M - I| falls below the tolerance, or when a step would raise it by more than 1.2x (the
// last good X is kept, as distributed Shampoo). Returns X and the final error per item.
std::pair<at::Tensor, at::Tensor> NewtonRoot(const at::Tensor& a, int64_t p, int& iterations) {
  int64_t d = a.size(-1);
  double tol = NewtonTolerance(a.scalar_type());
  at::Tensor eye = at::eye(d, a.options()).expand_as(a);
  at::Tensor z = (1.0 + static_cast<double>(p)) / (2.0 * at::linalg_matrix_norm(a, "fro"));
  at::Tensor m = a * z.view({-1, 1, 1});
  at::Tensor x = eye * z.pow(1.0 / static_cast<double>(p)).view({-1, 1, 1});
  at::Tensor err = (m - eye).abs().amax({-2, -1});
  at::Tensor active = err > tol;
  iterations = 0;
  for (; iterations < kNewtonMaxIter && active.any().item<bool>(); ++iterations) {
    at::Tensor t = (eye * static_cast<double>(p + 1) - m) / static_cast<double>(p);
    at::Tensor m_new = at::matmul(at::linalg_matrix_power(t, p), m);
    at::Tensor x_new = at::matmul(x, t);
    at::Tensor e_new = (m_new - eye).abs().amax({-2, -1});
    at::Tensor accept = active & (e_new < err * 1.2);  // false for NaN
    at::Tensor sel = accept.view({-1, 1, 1});
    m = at::where(sel, m_new, m);
    x = at::where(sel, x_new, x);
    err = at::where(accept, e_new, err);
    active = accept & (e_new > tol);
  }
  return {x, err};
}

// R = Q diag((max(l, 0) + eps)^expo) Q^T for a batch (B, d, d), expo (B). Throws when eigh does not converge.
at::Tensor EighRoot(const at::Tensor& a, const at::Tensor& expo, double eps) {
  auto [l, q] = at::linalg_eigh(a, "L");
  at::Tensor s = (l.clamp_min(0) + eps).pow(expo.view({-1, 1}));
  return at::matmul(q * s.unsqueeze(-2), q.transpose(-2, -1));
}

}  // namespace

// shampooStatistics(grads[] (handle or -1), shapes[][], factors[][], weight, keep = 1 - weight)
//   -> { updated, skippedNonFinite }
TN_EXPORT(shampooStatistics) {
  at::NoGradGuard no_grad;
  Napi::Array grads = info[0].As<Napi::Array>();
  std::vector<Param> ps = Params(info, 1, "Shampoo");
  double w = Num(info, 3);
  double keep = KeepFactor(info, 4, w);
  if (grads.Length() != ps.size()) throw std::invalid_argument("Shampoo: gradient list length differs from the parameter list");
  std::vector<at::Tensor*> gs(ps.size(), nullptr);
  for (size_t p = 0; p < ps.size(); ++p) {
    double h = grads.Get(static_cast<uint32_t>(p)).As<Napi::Number>().DoubleValue();
    if (h < 0) continue;
    gs[p] = Handle(info.Env(), grads.Get(static_cast<uint32_t>(p)));
  }
  // All or nothing: the step that follows a non-finite gradient is skipped, so its statistics must not count.
  double bad = 0;
  for (at::Tensor* g : gs)
    if (g && !AllFinite(*g)) ++bad;
  if (bad > 0) return Report(info.Env(), {{"updated", 0}, {"skippedNonFinite", bad}});
  // A finite gradient can still overflow its statistics (float32 g g^T): then nothing is folded in either.
  for (size_t p = 0; p < ps.size(); ++p) {
    if (!gs[p] || ps[p].shape.empty()) continue;
    at::Tensor g = gs[p]->reshape(ps[p].shape);
    for (size_t i = 0; i < ps[p].shape.size(); ++i) {
      const at::Tensor& H = *ps[p].factors[i];
      at::Tensor rowsq = Matricize(g, static_cast<int64_t>(i)).to(at::kDouble).square().sum(1);
      if (!FoldStaysFinite(H.dim() == 1 ? H : H.diagonal(), rowsq, keep, w, H.scalar_type())) ++bad;
    }
  }
  if (bad > 0) return Report(info.Env(), {{"updated", 0}, {"skippedNonFinite", bad}});
  double updated = 0;
  for (size_t p = 0; p < ps.size(); ++p) {
    if (!gs[p] || ps[p].shape.empty()) continue;
    at::Tensor g = gs[p]->reshape(ps[p].shape);
    for (size_t i = 0; i < ps[p].shape.size(); ++i) {
      at::Tensor& H = *ps[p].factors[i];
      at::Tensor m = Matricize(g, static_cast<int64_t>(i));
      if (m.scalar_type() != H.scalar_type()) m = m.to(H.scalar_type());
      if (H.dim() == 1) H.mul_(keep).add_(m.square().sum(1), w);
      else H.addmm_(m, m.t(), keep, w);
    }
    ++updated;
  }
  return Report(info.Env(), {{"updated", updated}, {"skippedNonFinite", 0}});
}

// shampooRoots(shapes[][], factors[][], roots[][], eps, method (a rootMethod code: eigh, newton))
//   -> { computed, retriedFloat64, failed, skippedNonFinite, newtonMaxError, newtonIterations (the most of any batch) }
TN_EXPORT(shampooRoots) {
  at::NoGradGuard no_grad;
  std::vector<Param> ps = Params(info, 0, "Shampoo");
  Napi::Array roots = info[2].As<Napi::Array>();
  double eps = Num(info, 3);
  const bool newton = ops::OpCode<ops::RootMethod>(Int(info, 4)) == ops::RootMethod::Newton;
  // computed = counts.inverted (retries included), retriedFloat64 = counts.retried64, failed, skippedNonFinite
  kronecker::InverseCounts counts;
  double newton_max_err = 0, newton_iters = 0;

  struct Item {
    at::Tensor h;      // H_i in the factor dtype
    int64_t p;         // 2k: the root is (H + eps I)^(-1/p)
    at::Tensor* dest;  // root to overwrite
  };
  // eigh batches by (size, dtype); Newton also by p (the matrix power differs).
  std::map<std::tuple<int64_t, int, int64_t>, std::vector<Item>> groups;

  for (size_t q = 0; q < ps.size(); ++q) {
    const auto& shape = ps[q].shape;
    size_t k = shape.size();
    if (k == 0) continue;
    std::vector<at::Tensor*> dest = HandleList(info.Env(), roots.Get(static_cast<uint32_t>(q)));
    if (dest.size() != k) throw std::invalid_argument("Shampoo: a parameter's root count differs from its shape's rank");
    bool finite = true;
    for (size_t i = 0; i < k && finite; ++i) finite = AllFinite(*ps[q].factors[i]);
    if (!finite) {
      ++counts.skipped;
      continue;
    }
    int64_t p = 2 * static_cast<int64_t>(k);
    for (size_t i = 0; i < k; ++i) {
      const at::Tensor& H = *ps[q].factors[i];
      if (H.dim() == 1) {
        dest[i]->copy_((H.clamp_min(0) + eps).pow(-1.0 / static_cast<double>(p)));
        ++counts.inverted;
        continue;
      }
      groups[{H.size(0), static_cast<int>(H.scalar_type()), newton ? p : 0}].push_back({H, p, dest[i]});
    }
  }

  // Computes the roots (batch + e I)^(-1/p) of a batch; ok[b] says which are good. Never throws for a numerical
  // failure.
  auto roots_of = [&](const at::Tensor& batch, const std::vector<int64_t>& pw, double e, at::Tensor& out,
                      std::vector<bool>& ok) {
    int64_t n = batch.size(0), d = batch.size(-1);
    ok.assign(static_cast<size_t>(n), false);
    at::Tensor sym = (batch + batch.transpose(-2, -1)) * 0.5;  // the GEMM's last-bit asymmetry
    if (newton) {
      at::Tensor a = sym + at::eye(d, sym.options()) * e;
      int iters = 0;
      auto [x, err] = NewtonRoot(a, pw[0], iters);
      newton_iters = std::max(newton_iters, static_cast<double>(iters));
      out = x;
      auto e = err.to(at::kDouble).cpu();
      auto f = at::isfinite(x).flatten(1).all(1).cpu();
      for (int64_t b = 0; b < n; ++b) {
        double eb = e[b].item<double>();
        ok[static_cast<size_t>(b)] = f[b].item<bool>() && eb <= NewtonAccept(batch.scalar_type());
        if (ok[static_cast<size_t>(b)]) newton_max_err = std::max(newton_max_err, eb);
      }
      return;
    }
    std::vector<double> ex;
    for (int64_t v : pw) ex.push_back(-1.0 / static_cast<double>(v));
    at::Tensor expo = at::tensor(ex, sym.options());
    try {
      out = EighRoot(sym, expo, e);
    } catch (const c10::Error&) {
      return;  // eigh did not converge for some item: all are retried alone
    }
    auto f = at::isfinite(out).flatten(1).all(1).cpu();
    for (int64_t b = 0; b < n; ++b) ok[static_cast<size_t>(b)] = f[b].item<bool>();
  };

  for (auto& [key, items] : groups) {
    std::vector<at::Tensor> hs;
    std::vector<int64_t> pw;
    for (auto& it : items) {
      hs.push_back(it.h);
      pw.push_back(it.p);
    }
    at::Tensor out;
    std::vector<bool> ok;
    roots_of(at::stack(hs), pw, eps, out, ok);
    for (size_t b = 0; b < items.size(); ++b) {
      at::Tensor* dest = items[b].dest;
      if (ok[b]) {
        dest->copy_(out[static_cast<int64_t>(b)]);
        ++counts.inverted;
        continue;
      }
      // The family's retry: alone, in float64 (no damping retries: see kronecker/inverse.h); else the last good root.
      const int64_t p = items[b].p;
      kronecker::RetryAlone(
          items[b].h, eps, 0, counts,
          [&](const at::Tensor& f64, double e) -> std::optional<at::Tensor> {
            at::Tensor out64;
            std::vector<bool> ok64;
            roots_of(f64.unsqueeze(0), {p}, e, out64, ok64);
            if (ok64[0]) return out64[0];
            return std::nullopt;
          },
          [&](const at::Tensor& root) { dest->copy_(root); });
    }
  }
  return Report(info.Env(), {{"computed", counts.inverted}, {"retriedFloat64", counts.retried64},
                             {"failed", counts.failed}, {"skippedNonFinite", counts.skipped},
                             {"newtonMaxError", newton_max_err}, {"newtonIterations", newton_iters}});
}
