// Tensor Normal Training (Ren & Goldfarb 2021): the optimizer's heavy state and its three phases, each one native
// call for every parameter.
//
//   tntStatistics  H_i <- (1 - w) H_i + w G^(i), G^(i) = mat_i(G) mat_i(G)^T, as one GEMM per factor (a symmetric
//                  rank-k update folded into the moving average by addmm's beta/alpha); a diagonal factor keeps only
//                  diag(G^(i)).
//   tntInverses    eq. (5): c0 = (tr(H_1) / prod_j d_j)^(1/k), U_i = H_i / (c0^(k-1) prod_{j!=i} d_j), then
//                  (U_i + eps I)^-1 by Cholesky (or LU), same-size factors of all parameters stacked into one
//                  batched factorisation. A failed factorisation is retried in float64, then with 10x, 100x,
//                  1000x eps; a factor that still fails keeps its last good inverse.
//   tntStep        m <- mu m + g; p <- p (1 - lr wd) - lr (m x_1 A_1 x_2 ... x_k A_k), skipped entirely (and
//                  reported) when any gradient holds a non-finite value.
//
// Factor shapes come from TypeScript (lib/optim/tnt.ts): a parameter's gradient is viewed as `shape`
// (e.g. conv weights (out, in, kh*kw)); a factor tensor of ndim 1 is a diagonal factor; an empty shape means the
// parameter is not preconditioned.
#include <map>

#include "common.h"

using namespace tn;

namespace {

struct Param {
  std::vector<int64_t> shape;        // factor dims
  std::vector<at::Tensor*> factors;  // H_i (d_i x d_i, or d_i for diagonal)
};

std::vector<int64_t> IntsOf(Napi::Value v) {
  std::vector<int64_t> out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t k = 0; k < a.Length(); ++k) out.push_back(a.Get(k).As<Napi::Number>().Int64Value());
  return out;
}

at::Tensor* Handle(Napi::Env env, Napi::Value v) {
  at::Tensor* t = GetState(env).table.TryGet(v.As<Napi::Number>().DoubleValue());
  if (!t) ThrowTorchError(env, "tensor was disposed: it cannot be used any more", "DISPOSED");
  return t;
}

std::vector<at::Tensor*> HandleList(Napi::Env env, Napi::Value v) {
  std::vector<at::Tensor*> out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t k = 0; k < a.Length(); ++k) out.push_back(Handle(env, a.Get(k)));
  return out;
}

// (shapes[][], factors[][]) arguments at positions i, i+1
std::vector<Param> Params(const Napi::CallbackInfo& info, size_t i) {
  Napi::Array shapes = info[i].As<Napi::Array>();
  Napi::Array factors = info[i + 1].As<Napi::Array>();
  if (shapes.Length() != factors.Length()) throw std::invalid_argument("TNT: shapes and factors lists differ in length");
  std::vector<Param> out(shapes.Length());
  for (uint32_t k = 0; k < shapes.Length(); ++k) {
    out[k].shape = IntsOf(shapes.Get(k));
    out[k].factors = HandleList(info.Env(), factors.Get(k));
    if (out[k].factors.size() != out[k].shape.size()) throw std::invalid_argument("TNT: a parameter's factor count differs from its shape's rank");
  }
  return out;
}

// mat_i(G): d_i x (prod of the other dims); a view when i is the first or last mode.
at::Tensor Matricize(const at::Tensor& g, int64_t i) {
  int64_t k = g.dim();
  if (i == 0) return g.reshape({g.size(0), -1});
  if (i == k - 1) return g.reshape({-1, g.size(k - 1)}).t();
  return g.movedim(i, 0).reshape({g.size(i), -1});
}

bool AllFinite(const at::Tensor& t) { return at::isfinite(t).all().item<bool>(); }

// X x_1 A_1 ... x_k A_k for symmetric A_i (a diagonal A_i given as a vector).
at::Tensor Precondition(const at::Tensor& m, const std::vector<at::Tensor*>& inv, const std::vector<int64_t>& shape) {
  size_t k = shape.size();
  if (k == 0) return m;
  at::Tensor x = m.reshape(shape);
  if (k == 1) return inv[0]->dim() == 1 ? x * *inv[0] : at::mv(*inv[0], x);
  if (k == 2 && inv[0]->dim() == 2 && inv[1]->dim() == 2) return at::mm(at::mm(*inv[0], x), *inv[1]);
  // Contract the leading axis each time; the new axis goes last, so after k steps the order is restored.
  for (size_t i = 0; i < k; ++i) {
    if (inv[i]->dim() == 1) x = x.movedim(0, -1) * *inv[i];
    else x = at::tensordot(x, *inv[i], {0}, {0});
  }
  return x;
}

Napi::Object Report(Napi::Env env, std::initializer_list<std::pair<const char*, double>> kv) {
  Napi::Object o = Napi::Object::New(env);
  for (auto& p : kv) o.Set(p.first, Napi::Number::New(env, p.second));
  return o;
}

}  // namespace

// tntStatistics(grads[], shapes[][], factors[][], weight) -> { updated, skippedNonFinite }
TN_EXPORT(tntStatistics) {
  at::NoGradGuard no_grad;
  Napi::Array grads = info[0].As<Napi::Array>();
  std::vector<Param> ps = Params(info, 1);
  double w = Num(info, 3);
  if (grads.Length() != ps.size()) throw std::invalid_argument("TNT: gradient list length differs from the parameter list");
  double updated = 0, skipped = 0;
  for (size_t p = 0; p < ps.size(); ++p) {
    double h = grads.Get(static_cast<uint32_t>(p)).As<Napi::Number>().DoubleValue();
    if (h < 0 || ps[p].shape.empty()) continue;
    at::Tensor* g0 = Handle(info.Env(), grads.Get(static_cast<uint32_t>(p)));
    if (!AllFinite(*g0)) {
      ++skipped;
      continue;
    }
    at::Tensor g = g0->reshape(ps[p].shape);
    for (size_t i = 0; i < ps[p].shape.size(); ++i) {
      at::Tensor& H = *ps[p].factors[i];
      at::Tensor m = Matricize(g, static_cast<int64_t>(i));
      if (m.scalar_type() != H.scalar_type()) m = m.to(H.scalar_type());
      if (H.dim() == 1) H.mul_(1 - w).add_(m.square().sum(1), w);
      else H.addmm_(m, m.t(), 1 - w, w);
    }
    ++updated;
  }
  return Report(info.Env(), {{"updated", updated}, {"skippedNonFinite", skipped}});
}

// tntNormalizedFactors(shapes[][], factors[][]) -> U_i per parameter (new tensors), for tests and inspection
TN_EXPORT(tntNormalizedFactors) {
  at::NoGradGuard no_grad;
  std::vector<Param> ps = Params(info, 0);
  Napi::Array out = Napi::Array::New(info.Env(), ps.size());
  for (size_t p = 0; p < ps.size(); ++p) {
    const auto& shape = ps[p].shape;
    size_t k = shape.size();
    std::vector<at::Tensor> us;
    if (k > 0) {
      double total = 1;
      for (int64_t d : shape) total *= static_cast<double>(d);
      const at::Tensor& H1 = *ps[p].factors[0];
      double tr = (H1.dim() == 1 ? H1.sum() : H1.trace()).item<double>();
      double c0 = tr > 0 ? std::pow(tr / total, 1.0 / static_cast<double>(k)) : 0;
      for (size_t i = 0; i < k; ++i) {
        double denom = std::pow(c0, static_cast<double>(k - 1)) * (total / static_cast<double>(shape[i]));
        us.push_back(tr > 0 ? *ps[p].factors[i] / denom : at::zeros_like(*ps[p].factors[i]));
      }
    }
    out.Set(static_cast<uint32_t>(p), WrapAll(info, us));
  }
  return out;
}

// tntInverses(shapes[][], factors[][], inverses[][], eps, method (0 Cholesky, 1 LU))
//   -> { inverted, retriedFloat64, retriedDamping, failed, skippedNonFinite }
TN_EXPORT(tntInverses) {
  at::NoGradGuard no_grad;
  std::vector<Param> ps = Params(info, 0);
  Napi::Array invs = info[2].As<Napi::Array>();
  double eps = Num(info, 3);
  int64_t method = Int(info, 4);
  double inverted = 0, retried64 = 0, retriedDamping = 0, failed = 0, skipped = 0;

  struct Item {
    at::Tensor u;       // U_i in the factor dtype
    at::Tensor* dest;   // inverse to overwrite
  };
  // Same-size (and same-dtype) full factors of all parameters are inverted as one batch.
  std::map<std::pair<int64_t, int>, std::vector<Item>> groups;

  for (size_t p = 0; p < ps.size(); ++p) {
    const auto& shape = ps[p].shape;
    size_t k = shape.size();
    if (k == 0) continue;
    std::vector<at::Tensor*> dest = HandleList(info.Env(), invs.Get(static_cast<uint32_t>(p)));
    if (dest.size() != k) throw std::invalid_argument("TNT: a parameter's inverse count differs from its shape's rank");
    double total = 1;
    for (int64_t d : shape) total *= static_cast<double>(d);
    const at::Tensor& H1 = *ps[p].factors[0];
    double tr = (H1.dim() == 1 ? H1.sum() : H1.trace()).item<double>();
    if (!std::isfinite(tr)) {
      ++skipped;
      continue;
    }
    if (tr < 0) {  // impossible for statistics (a sum of squares); only a corrupted state gets here
      failed += static_cast<double>(k);
      continue;
    }
    bool finite = true;
    for (size_t i = 0; i < k && finite; ++i) finite = AllFinite(*ps[p].factors[i]);
    if (!finite) {
      ++skipped;
      continue;
    }
    double c0 = tr > 0 ? std::pow(tr / total, 1.0 / static_cast<double>(k)) : 0;
    for (size_t i = 0; i < k; ++i) {
      const at::Tensor& H = *ps[p].factors[i];
      double denom = std::pow(c0, static_cast<double>(k - 1)) * (total / static_cast<double>(shape[i]));
      at::Tensor u = tr > 0 ? H / denom : at::zeros_like(H);
      if (H.dim() == 1) {
        dest[i]->copy_((u + eps).reciprocal());
        ++inverted;
        continue;
      }
      groups[{H.size(0), static_cast<int>(H.scalar_type())}].push_back({u, dest[i]});
    }
  }

  auto factorize = [&](const at::Tensor& a, at::Tensor& inv_out, at::Tensor& info_out) {
    if (method == 1) {
      auto r = at::linalg_inv_ex(a);
      inv_out = std::get<0>(r);
      info_out = std::get<1>(r);
    } else {
      auto r = at::linalg_cholesky_ex(a);
      info_out = std::get<1>(r);
      // cholesky_inverse throws on the garbage factor of a failed element: give those the identity (their
      // result is discarded by the status check below).
      std::vector<int64_t> mask_shape = info_out.dim() == 0 ? std::vector<int64_t>{1, 1} : std::vector<int64_t>{info_out.size(0), 1, 1};
      at::Tensor good = info_out.eq(0).reshape(mask_shape);
      at::Tensor l = at::where(good, std::get<0>(r), at::eye(a.size(-1), a.options()));
      inv_out = at::cholesky_inverse(l);
    }
  };

  for (auto& [key, items] : groups) {
    int64_t d = key.first;
    std::vector<at::Tensor> us;
    us.reserve(items.size());
    for (auto& it : items) us.push_back(it.u);
    at::Tensor batch = at::stack(us);
    at::Tensor eye = at::eye(d, batch.options());
    at::Tensor a = batch + eye * eps;
    at::Tensor inv, status;
    factorize(a, inv, status);
    at::Tensor ok = status.eq(0) & at::isfinite(inv).flatten(1).all(1);
    auto okv = ok.to(at::kBool).cpu();
    const bool* okp = okv.data_ptr<bool>();
    for (size_t b = 0; b < items.size(); ++b) {
      if (okp[b]) {
        items[b].dest->copy_(inv[static_cast<int64_t>(b)]);
        ++inverted;
        continue;
      }
      // Retry this factor alone: float64 first, then with more damping.
      at::Tensor u64 = items[b].u.to(at::kDouble);
      at::Tensor eye64 = at::eye(d, u64.options());
      bool done = false;
      for (int r = 0; r <= 3 && !done; ++r) {
        double damp = eps * std::pow(10.0, r);
        at::Tensor i1, s1;
        factorize(u64 + eye64 * damp, i1, s1);
        if (s1.item<int64_t>() == 0 && AllFinite(i1)) {
          items[b].dest->copy_(i1);
          done = true;
          if (r == 0) ++retried64;
          else ++retriedDamping;
          ++inverted;
        }
      }
      if (!done) ++failed;  // the last good inverse stays
    }
  }
  return Report(info.Env(), {{"inverted", inverted}, {"retriedFloat64", retried64}, {"retriedDamping", retriedDamping},
                             {"failed", failed}, {"skippedNonFinite", skipped}});
}

// tntDirection(tensor, shape[], inverses[]) -> preconditioned copy (for tests and the similarity experiment)
TN_EXPORT(tntDirection) {
  at::NoGradGuard no_grad;
  at::Tensor& m = T(info, 0);
  std::vector<int64_t> shape = IntsOf(info[1]);
  std::vector<at::Tensor*> inv = HandleList(info.Env(), info[2]);
  if (inv.size() != shape.size()) throw std::invalid_argument("TNT: inverse count differs from the shape's rank");
  return Wrap(info, Precondition(m, inv, shape).reshape(m.sizes()).clone());
}

// tntStep(params[], momentum[], shapes[][], inverses[][], lr, mu, weightDecay) -> { applied, skippedNonFinite }
TN_EXPORT(tntStep) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor*> params = HandleList(info.Env(), info[0]);
  std::vector<at::Tensor*> moms = HandleList(info.Env(), info[1]);
  std::vector<Param> ps = Params(info, 2);  // (shapes, inverses)
  double lr = Num(info, 4), mu = Num(info, 5), wd = Num(info, 6);
  if (params.size() != moms.size() || params.size() != ps.size()) throw std::invalid_argument("TNT: parameter, momentum and inverse lists differ in length");
  // A non-finite gradient anywhere skips the whole step: nothing (momentum included) is touched.
  for (at::Tensor* p : params) {
    const at::Tensor& g = p->grad();
    if (g.defined() && !AllFinite(g)) return Report(info.Env(), {{"applied", 0}, {"skippedNonFinite", 1}});
  }
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor& p = *params[i];
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    moms[i]->mul_(mu).add_(g);
    at::Tensor dir = Precondition(*moms[i], ps[i].factors, ps[i].shape);
    if (wd != 0) p.mul_(1 - lr * wd);
    p.add_(dir.reshape(p.sizes()), -lr);
  }
  return Report(info.Env(), {{"applied", 1}, {"skippedNonFinite", 0}});
}
