// KFAC (Martens & Grosse 2015; Grosse & Martens' KFC 2016 for convolutions), as the TNT paper ran it as a baseline:
// per Linear / Conv2d layer the Fisher block of the combined [W | b] matrix is approximated by A (x) G, and the
// update direction is (G + dG I)^-1 M (A + dA I)^-1, M the layer's momentum as an (out, in [+1]) matrix. Three
// native phases, each one call for every layer:
//
//   kfacStatistics  A <- keep A + w / D  [a 1]^T [a 1]   over the R rows of the layer input a (examples, and for a
//                                                          conv every spatial location: an unfolded patch)
//                   G <- keep G + w s    g^T g           over the rows of the output gradient g of a batch-mean
//                                                          loss (1/N of the per-example gradient; N the batch size)
//                   keep = 1 - w unless given; D = R and s = N unless a layer gives aDivisor and gScale (the
//                   authors' conv factors: D = N, s = N / L for L locations). The homogeneous coordinate is folded
//                   in without building [a 1]: the last row and column of A get the column sums of a and the
//                   corner R. A layer whose a or g holds a non-finite value is left out (and counted).
//   kfacInverses    (A + dA I)^-1 and (G + dG I)^-1, dA = pi sqrt(lambda), dG = sqrt(lambda) / pi (pi = 1 unless
//                   pi-corrected: pi^2 = (tr A / dim A) / (tr G / dim G)). Same-size factors of every layer are
//                   factorised as one batched Cholesky; a failure is retried in float64, then with 10x, 100x, 1000x
//                   damping; a factor that still fails keeps its last good inverse.
//   kfacStep        m <- mu m + g for every parameter; a layer's [W | b] moves along (G + dG I)^-1 M (A + dA I)^-1,
//                   every other parameter (BatchNorm scale and shift, ...) along m; p <- p (1 - lr wd) - lr dir.
//                   A non-finite gradient anywhere skips the whole step (nothing, momentum included, changes),
//                   and so does a new momentum or parameter that would not be finite (a NaN restored into the state,
//                   an overflowing update): every write is computed before any is applied.
#include <map>

#include "kronecker/inverse.h"
#include "optim_common.h"

using namespace tn;
using namespace tn::optim;

namespace {

// A handle, or nullptr for null / undefined / a negative number.
at::Tensor* OptHandle(Napi::Env env, Napi::Value v) {
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  if (v.As<Napi::Number>().DoubleValue() < 0) return nullptr;
  return Handle(env, v);
}

at::Tensor* Field(Napi::Object o, const char* name, bool optional = false) {
  at::Tensor* t = OptHandle(o.Env(), o.Get(name));
  if (!t && !optional) throw std::invalid_argument(std::string("KFAC: missing tensor '") + name + "'");
  return t;
}

double NumField(Napi::Object o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throw std::invalid_argument(std::string("KFAC: missing number '") + name + "'");
  return v.As<Napi::Number>().DoubleValue();
}

std::vector<Napi::Object> Objects(const Napi::CallbackInfo& info, size_t i) {
  std::vector<Napi::Object> out;
  Napi::Array a = info[i].As<Napi::Array>();
  for (uint32_t k = 0; k < a.Length(); ++k) out.push_back(a.Get(k).As<Napi::Object>());
  return out;
}


}  // namespace

// kfacStatistics(layers: { a, g, A, G, bias, batch, aDivisor?, gScale? }[], weight, keep = 1 - weight)
//   -> { updated, skippedNonFinite }
//   a (R, in) rows of layer input (patches), g (R', out) rows of output gradient, A (in [+1])^2, G out^2.
TN_EXPORT(kfacStatistics) {
  at::NoGradGuard no_grad;
  std::vector<Napi::Object> layers = Objects(info, 0);
  double w = Num(info, 1);
  double keep = KeepFactor(info, 2, w);
  double updated = 0, skipped = 0;
  for (Napi::Object l : layers) {
    at::Tensor* a0 = Field(l, "a", true);
    at::Tensor* g0 = Field(l, "g", true);
    if (!a0 || !g0) continue;
    at::Tensor& A = *Field(l, "A");
    at::Tensor& G = *Field(l, "G");
    bool bias = l.Get("bias").ToBoolean().Value();
    double n = NumField(l, "batch");
    if (a0->dim() != 2 || g0->dim() != 2) throw std::invalid_argument("KFAC: a and g must be matrices (rows, features)");
    int64_t din = a0->size(1) + (bias ? 1 : 0);
    if (A.size(0) != din || G.size(0) != g0->size(1))
      throw std::invalid_argument("KFAC: factor sizes differ from the layer's input and output widths");
    if (!AllFinite(*a0) || !AllFinite(*g0)) {
      ++skipped;
      continue;
    }
    at::Tensor a = a0->scalar_type() == A.scalar_type() ? *a0 : a0->to(A.scalar_type());
    at::Tensor g = g0->scalar_type() == G.scalar_type() ? *g0 : g0->to(G.scalar_type());
    double rows = static_cast<double>(a.size(0));
    Napi::Value dv = l.Get("aDivisor"), sv = l.Get("gScale");
    double div = dv.IsNumber() ? dv.As<Napi::Number>().DoubleValue() : rows;
    double gs = sv.IsNumber() ? sv.As<Napi::Number>().DoubleValue() : n;
    // Finite inputs can still overflow the factors (float32 a^T a, N g^T g): then the layer keeps its statistics.
    at::Tensor asq = a.to(at::kDouble).square().sum(0);
    if (bias) asq = at::cat({asq, at::full({1}, rows, asq.options())});
    if (!FoldStaysFinite(A.diagonal(), asq, keep, w / div, A.scalar_type()) ||
        !FoldStaysFinite(G.diagonal(), g.to(at::kDouble).square().sum(0), keep, w * gs, G.scalar_type())) {
      ++skipped;
      continue;
    }
    if (bias) {
      int64_t d = a.size(1);
      at::Tensor block = A.narrow(0, 0, d).narrow(1, 0, d);
      block.addmm_(a.t(), a, keep, w / div);
      at::Tensor s = a.sum(0) * (w / div);
      at::Tensor col = A.narrow(0, 0, d).select(1, d);
      at::Tensor row = A.select(0, d).narrow(0, 0, d);
      col.mul_(keep).add_(s);
      row.mul_(keep).add_(s);
      at::Tensor corner = A.select(0, d).select(0, d);
      corner.mul_(keep).add_(w * rows / div);
    } else {
      A.addmm_(a.t(), a, keep, w / div);
    }
    G.addmm_(g.t(), g, keep, w * gs);
    ++updated;
  }
  return Report(info.Env(), {{"updated", updated}, {"skippedNonFinite", skipped}});
}

// kfacInverses(layers: { A, G, invA, invG, damping }[], piCorrection)
//   -> { inverted, retriedFloat64, retriedDamping, failed, skippedNonFinite }
TN_EXPORT(kfacInverses) {
  at::NoGradGuard no_grad;
  std::vector<Napi::Object> layers = Objects(info, 0);
  bool pi_correction = Bool(info, 1);
  kronecker::InverseCounts counts;

  struct Item {
    at::Tensor f;      // factor
    double damp;       // added to its diagonal
    at::Tensor* dest;  // inverse to overwrite
  };
  std::map<std::pair<int64_t, int>, std::vector<Item>> groups;
  for (Napi::Object l : layers) {
    at::Tensor& A = *Field(l, "A");
    at::Tensor& G = *Field(l, "G");
    double root = std::sqrt(NumField(l, "damping"));
    if (!AllFinite(A) || !AllFinite(G)) {
      ++counts.skipped;
      continue;
    }
    double pi = 1;
    if (pi_correction) {
      double ta = A.trace().item<double>() / static_cast<double>(A.size(0));
      double tg = G.trace().item<double>() / static_cast<double>(G.size(0));
      if (ta > 0 && tg > 0) pi = std::sqrt(ta / tg);
    }
    groups[{A.size(0), static_cast<int>(A.scalar_type())}].push_back({A, root * pi, Field(l, "invA")});
    groups[{G.size(0), static_cast<int>(G.scalar_type())}].push_back({G, root / pi, Field(l, "invG")});
  }

  for (auto& [key, items] : groups) {
    int64_t d = key.first;
    std::vector<at::Tensor> fs;
    for (auto& it : items) fs.push_back(it.f);
    std::vector<double> dv;
    for (auto& it : items) dv.push_back(it.damp);
    at::Tensor batch = at::stack(fs);
    at::Tensor eye = at::eye(d, batch.options());
    at::Tensor a = batch + eye * at::tensor(dv, batch.options()).view({-1, 1, 1});
    kronecker::BatchInverse bi = kronecker::InvertBatch(a, kronecker::Method::kCholesky);
    for (size_t b = 0; b < items.size(); ++b) {
      at::Tensor* dest = items[b].dest;
      if (bi.ok[b]) {
        dest->copy_(bi.inv[static_cast<int64_t>(b)]);
        ++counts.inverted;
        continue;
      }
      kronecker::RetryAlone(items[b].f, items[b].damp, kronecker::Method::kCholesky, counts,
                            [&](const at::Tensor& inv) { dest->copy_(inv); });
    }
  }
  return counts.ToReport(info.Env());
}

// kfacStep(layers: { weight, bias?, momentum, biasMomentum?, invA, invG, lr, mu, wd }[],
//          plain: { param, momentum, lr, mu, wd }[]) -> { applied, skippedNonFinite }
TN_EXPORT(kfacStep) {
  at::NoGradGuard no_grad;
  std::vector<Napi::Object> layers = Objects(info, 0);
  std::vector<Napi::Object> plain = Objects(info, 1);
  // A non-finite gradient anywhere skips the whole step.
  auto finite_grad = [](at::Tensor* p) { return !p || !p->grad().defined() || AllFinite(p->grad()); };
  for (Napi::Object l : layers)
    if (!finite_grad(Field(l, "weight")) || !finite_grad(Field(l, "bias", true))) return Report(info.Env(), {{"applied", 0}, {"skippedNonFinite", 1}, {"reason", 1}});
  for (Napi::Object o : plain)
    if (!finite_grad(Field(o, "param"))) return Report(info.Env(), {{"applied", 0}, {"skippedNonFinite", 1}, {"reason", 1}});

  // Every new momentum and parameter is computed first and applied only when all are finite (a NaN restored into
  // a momentum or an inverse, or an overflowing update, skips the step as a non-finite gradient does).
  StagedWrites writes;
  bool finite = true;
  auto stage = [&](at::Tensor& dst, at::Tensor v) { finite = writes.Stage(dst, std::move(v)) && finite; };
  auto next_param = [](const at::Tensor& p, const at::Tensor& dir, double lr, double wd) {
    at::Tensor next = wd != 0 ? p.mul(1 - lr * wd) : p.clone();
    return next.add_(dir, -lr);
  };
  auto momentum_step = [&](at::Tensor& p, at::Tensor& m, double lr, double mu, double wd) {
    const at::Tensor& g = p.grad();
    if (!g.defined()) return;
    at::Tensor mn = m.mul(mu).add_(g);
    stage(p, next_param(p, mn, lr, wd));
    stage(m, std::move(mn));
  };

  for (Napi::Object l : layers) {
    at::Tensor& W = *Field(l, "weight");
    at::Tensor* b = Field(l, "bias", true);
    at::Tensor& mW = *Field(l, "momentum");
    at::Tensor* mb = b ? Field(l, "biasMomentum") : nullptr;
    double lr = NumField(l, "lr"), mu = NumField(l, "mu"), wd = NumField(l, "wd");
    if (!W.grad().defined()) {
      // No weight gradient this step: the weight stays (as a parameter without .grad); the bias moves along m.
      if (b) momentum_step(*b, *mb, lr, mu, wd);
      continue;
    }
    at::Tensor mWn = mW.mul(mu).add_(W.grad());
    at::Tensor M = mWn.reshape({W.size(0), -1});
    at::Tensor mbn;
    if (b) {
      // the bias's gradient is zero when the loss does not reach it
      mbn = b->grad().defined() ? mb->mul(mu).add_(b->grad()) : mb->mul(mu);
      M = at::cat({M, mbn.unsqueeze(1)}, 1);
    }
    at::Tensor D = at::mm(at::mm(*Field(l, "invG"), M), *Field(l, "invA"));
    int64_t cols = W.numel() / W.size(0);
    stage(W, next_param(W, D.narrow(1, 0, cols).reshape(W.sizes()), lr, wd));
    stage(mW, std::move(mWn));
    if (b) {
      stage(*b, next_param(*b, D.select(1, cols), lr, wd));
      stage(*mb, std::move(mbn));
    }
  }
  for (Napi::Object o : plain) momentum_step(*Field(o, "param"), *Field(o, "momentum"), NumField(o, "lr"), NumField(o, "mu"), NumField(o, "wd"));
  if (!finite) return Report(info.Env(), {{"applied", 0}, {"skippedNonFinite", 1}, {"reason", 2}});
  writes.Commit();
  return Report(info.Env(), {{"applied", 1}, {"skippedNonFinite", 0}, {"reason", 0}});
}
