// The momentum step shared by the Kronecker-factored optimizers' native steps (TNT's, and Shampoo's through it):
// hyperparameters per parameter, and an all-or-nothing step through StagedWrites (optim_common.h).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

#include "../optim_common.h"

namespace tn::optim::kronecker {

// Per-parameter hyperparameters of a step (each parameter carries its group's).
struct Hyper {
  double lr, mu, wd;
};

inline std::vector<Hyper> Hypers(const Napi::CallbackInfo& info, size_t i, size_t n) {
  std::vector<Hyper> out;
  Napi::Array lr = info[i].As<Napi::Array>(), mu = info[i + 1].As<Napi::Array>(), wd = info[i + 2].As<Napi::Array>();
  if (lr.Length() != n || mu.Length() != n || wd.Length() != n) throw std::invalid_argument("kronecker step: hyperparameter lists differ in length from the parameter list");
  for (uint32_t k = 0; k < n; ++k)
    out.push_back({lr.Get(k).As<Napi::Number>().DoubleValue(), mu.Get(k).As<Napi::Number>().DoubleValue(), wd.Get(k).As<Napi::Number>().DoubleValue()});
  return out;
}

// m <- mu m + g; p <- p (1 - lr wd) - lr direction(i, m) for every parameter with a gradient. All or nothing: the
// whole step is skipped (nothing touched, momentum included) when a gradient holds a non-finite value (reason 1) or
// when a new momentum or parameter would (reason 2: a NaN in the momentum or the inverses, an overflowing update).
template <class Direction>
Napi::Object MomentumStep(Napi::Env env, const std::vector<at::Tensor*>& params, const std::vector<at::Tensor*>& moms,
                          const std::vector<Hyper>& hyper, Direction direction) {
  for (at::Tensor* p : params) {
    const at::Tensor& g = p->grad();
    if (g.defined() && !AllFinite(g)) return Report(env, {{"applied", 0}, {"skippedNonFinite", 1}, {"reason", 1}});
  }
  StagedWrites writes;
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor& p = *params[i];
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    const Hyper& h = hyper[i];
    at::Tensor m = moms[i]->mul(h.mu).add_(g);
    at::Tensor dir = direction(i, m);
    at::Tensor next = h.wd != 0 ? p.mul(1 - h.lr * h.wd) : p.clone();
    next.add_(dir.reshape(p.sizes()), -h.lr);
    if (!writes.Stage(*moms[i], std::move(m)) || !writes.Stage(p, std::move(next)))
      return Report(env, {{"applied", 0}, {"skippedNonFinite", 1}, {"reason", 2}});
  }
  writes.Commit();
  return Report(env, {{"applied", 1}, {"skippedNonFinite", 0}, {"reason", 0}});
}

}  // namespace tn::optim::kronecker
