// Argument helpers and small kernels shared by the second-order optimizers (tnt.cc, shampoo.cc, kfac.cc). The
// TypeScript layer validates every argument; these are the last line, and they throw what Guarded turns into a
// TorchError.
#pragma once

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
  at::Tensor* t = GetState(env).table.TryGet(v.As<Napi::Number>().DoubleValue());
  if (!t) ThrowTorchError(env, "tensor was disposed: it cannot be used any more", "DISPOSED");
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
