// Argument helpers and small kernels shared by the second-order optimizers (tnt.cc, shampoo.cc, kfac.cc). The
// TypeScript layer validates every argument; these are the last line, and they throw what Guarded turns into a
// TorchError.
#pragma once

#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "../common.h"

namespace tn::optim {

inline std::vector<int64_t> IntsOf(Napi::Value v) {
  std::vector<int64_t> out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t k = 0; k < a.Length(); ++k) out.push_back(a.Get(k).As<Napi::Number>().Int64Value());
  return out;
}

// The tensor behind a handle; a disposed one is a DISPOSED TorchError.
inline at::Tensor* Handle(Napi::Env env, Napi::Value v) {
  const double h = v.As<Napi::Number>().DoubleValue();
  at::Tensor* t = GetState(env).table.TryGet(h);
  if (!t) ThrowDisposed(env, h);
  return t;
}

inline std::vector<at::Tensor*> HandleList(Napi::Env env, Napi::Value v) {
  std::vector<at::Tensor*> out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t k = 0; k < a.Length(); ++k) out.push_back(Handle(env, a.Get(k)));
  return out;
}

// A parameter's factor shape and one tensor per factor.
struct Param {
  std::vector<int64_t> shape;
  std::vector<at::Tensor*> factors;
};

// (shapes[][], factors[][]) arguments at positions i, i + 1; `who` names the optimizer in errors.
inline std::vector<Param> Params(const Napi::CallbackInfo& info, size_t i, const char* who) {
  Napi::Array shapes = info[i].As<Napi::Array>();
  Napi::Array factors = info[i + 1].As<Napi::Array>();
  if (shapes.Length() != factors.Length()) throw std::invalid_argument(std::string(who) + ": shapes and factors lists differ in length");
  std::vector<Param> out(shapes.Length());
  for (uint32_t k = 0; k < shapes.Length(); ++k) {
    out[k].shape = IntsOf(shapes.Get(k));
    out[k].factors = HandleList(info.Env(), factors.Get(k));
    if (out[k].factors.size() != out[k].shape.size())
      throw std::invalid_argument(std::string(who) + ": a parameter's factor count differs from its shape's rank");
  }
  return out;
}

// mat_i(G): d_i x (prod of the other dims); a view when i is the first or last mode.
inline at::Tensor Matricize(const at::Tensor& g, int64_t i) {
  int64_t k = g.dim();
  if (i == 0) return g.reshape({g.size(0), -1});
  if (i == k - 1) return g.reshape({-1, g.size(k - 1)}).t();
  return g.movedim(i, 0).reshape({g.size(i), -1});
}

inline bool AllFinite(const at::Tensor& t) { return at::isfinite(t).all().item<bool>(); }

// The writes of one optimizer step, computed before any is applied, so that a step is all or nothing: a non-finite
// value anywhere (a NaN restored into the momentum or an inverse, an update that overflows) leaves every parameter
// and every buffer as it was. Costs one extra copy of the tensors written while the step runs.
class StagedWrites {
 public:
  // Records dst <- value (value must not alias dst); false when value holds NaN or Infinity.
  bool Stage(at::Tensor& dst, at::Tensor value) {
    bool finite = AllFinite(value);
    writes_.emplace_back(&dst, std::move(value));
    return finite;
  }
  void Commit() {
    for (auto& w : writes_) w.first->copy_(w.second);
    writes_.clear();
  }

 private:
  std::vector<std::pair<at::Tensor*, at::Tensor>> writes_;
};

// Whether folding a statistic S = X X^T / ... into a moving average keeps it finite:
//   H <- keep * H + scale * X X^T,  X with rows x_r,
// given diag(H) (`hdiag`) and the rows' sums of squares (`rowsq`, = diag(X X^T)). For a symmetric positive
// semi-definite H every entry is bounded by the largest diagonal entry (|s_ij| <= sqrt(s_ii s_jj)), so bounding the
// new diagonal, computed in float64, bounds every entry. Half the dtype's largest value leaves room for rounding.
inline bool FoldStaysFinite(const at::Tensor& hdiag, const at::Tensor& rowsq, double keep, double scale, at::ScalarType dtype) {
  if (hdiag.numel() == 0 || rowsq.numel() == 0) return true;
  double limit = dtype == at::kDouble ? std::numeric_limits<double>::max() / 2 : static_cast<double>(std::numeric_limits<float>::max()) / 2;
  at::Tensor h = hdiag.to(at::kDouble).abs().max();
  at::Tensor s = rowsq.to(at::kDouble).max();
  double bound = keep * h.item<double>() + scale * s.item<double>();
  return std::isfinite(bound) && bound <= limit;
}

// The factor on the old statistics of a moving-average update H <- keep H + w S: argument i when it is a number,
// else 1 - w (the convex average). The authors' rule without a warm start is not convex (lib/optim/curvature.ts).
inline double KeepFactor(const Napi::CallbackInfo& info, size_t i, double w) {
  if (i >= info.Length() || !info[i].IsNumber()) return 1 - w;
  return info[i].As<Napi::Number>().DoubleValue();
}

// { key: number, ... } for a phase's report.
inline Napi::Object Report(Napi::Env env, std::initializer_list<std::pair<const char*, double>> kv) {
  Napi::Object o = Napi::Object::New(env);
  for (auto& p : kv) o.Set(p.first, Napi::Number::New(env, p.second));
  return o;
}

}  // namespace tn::optim
