// SGD and Adam/AdamW updates of every parameter in one native call per step (PyTorch 1.13's single-tensor
// update rules, torch/optim/sgd.py and adam.py / adamw.py). Parameters without a gradient are skipped.
#include "common.h"

using namespace tn;

namespace {

// Copies of the tensors behind the handles (an undefined tensor for -1 where allowed), never pointers into the
// handle table: wrapping a new tensor (a momentum buffer) may grow the table and move every slot.
std::vector<at::Tensor> Slots(const Napi::CallbackInfo& info, size_t i, bool allow_missing) {
  std::vector<at::Tensor> out;
  if (i >= info.Length() || !info[i].IsArray()) return out;
  Napi::Array a = info[i].As<Napi::Array>();
  auto& table = GetState(info.Env()).table;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    double h = a.Get(k).As<Napi::Number>().DoubleValue();
    at::Tensor* t = h < 0 ? nullptr : table.TryGet(h);
    // -1 is "no tensor yet"; a disposed wrapper's handle (-2 and below) is an error, not a missing buffer
    if (!t && !(allow_missing && h == -1)) ThrowDisposed(info.Env(), h);
    out.push_back(t ? *t : at::Tensor());
  }
  return out;
}

}  // namespace

// sgdStep(params[], momentumBuffers[] (-1: none yet), lr, momentum, dampening, weightDecay, nesterov, maximize)
//   -> momentum buffer handles (the given one, a new one made on the first step, or -1)
TN_EXPORT(sgdStep) {
  at::NoGradGuard no_grad;
  auto params = Slots(info, 0, false);
  auto bufs = Slots(info, 1, true);
  double lr = Num(info, 2), momentum = Num(info, 3), dampening = Num(info, 4), wd = Num(info, 5);
  bool nesterov = Bool(info, 6), maximize = Bool(info, 7);
  Napi::Array out = Napi::Array::New(info.Env(), params.size());
  Napi::Array given = info[1].As<Napi::Array>();
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor& p = params[i];
    const at::Tensor& g = p.grad();
    Napi::Value keep = given.Get(static_cast<uint32_t>(i));
    if (!g.defined()) {
      out.Set(static_cast<uint32_t>(i), keep);
      continue;
    }
    at::Tensor d = maximize ? g.neg() : g;
    if (wd != 0) d = d.add(p, wd);
    if (momentum != 0) {
      if (!bufs[i].defined()) {
        bufs[i] = d.clone().detach();
        out.Set(static_cast<uint32_t>(i), Wrap(info, bufs[i]));
      } else {
        bufs[i].mul_(momentum).add_(d, 1 - dampening);
        out.Set(static_cast<uint32_t>(i), keep);
      }
      d = nesterov ? d.add(bufs[i], momentum) : bufs[i];
    } else {
      out.Set(static_cast<uint32_t>(i), keep);
    }
    p.add_(d, -lr);
  }
  return out;
}

// adamStep(params[], expAvg[], expAvgSq[], maxExpAvgSq[] | null, steps[], lr, beta1, beta2, eps, weightDecay,
//          amsgrad, decoupled (AdamW), maximize)
TN_EXPORT(adamStep) {
  at::NoGradGuard no_grad;
  auto params = Slots(info, 0, false);
  auto m = Slots(info, 1, false);
  auto v = Slots(info, 2, false);
  bool amsgrad = Bool(info, 10);
  auto vmax = amsgrad ? Slots(info, 3, false) : std::vector<at::Tensor>();
  Napi::Array steps = info[4].As<Napi::Array>();
  double lr = Num(info, 5), beta1 = Num(info, 6), beta2 = Num(info, 7), eps = Num(info, 8), wd = Num(info, 9);
  bool decoupled = Bool(info, 11), maximize = Bool(info, 12);
  if (m.size() != params.size() || v.size() != params.size() || (amsgrad && vmax.size() != params.size()) || steps.Length() != params.size())
    throw std::invalid_argument("adamStep: state lists do not match the parameter list");
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor& p = params[i];
    const at::Tensor& g0 = p.grad();
    if (!g0.defined()) continue;
    double step = steps.Get(static_cast<uint32_t>(i)).As<Napi::Number>().DoubleValue();
    at::Tensor g = maximize ? g0.neg() : g0;
    if (wd != 0) {
      if (decoupled) p.mul_(1 - lr * wd);
      else g = g.add(p, wd);
    }
    // mul_ + add_ as PyTorch 1.13 (not lerp_, which rounds differently in the last bit)
    m[i].mul_(beta1).add_(g, 1 - beta1);
    v[i].mul_(beta2).addcmul_(g, g, 1 - beta2);
    double bc1 = 1 - std::pow(beta1, step);
    double bc2_sqrt = std::sqrt(1 - std::pow(beta2, step));
    at::Tensor denom;
    if (amsgrad) {
      at::maximum_out(vmax[i], vmax[i], v[i]);
      denom = vmax[i].sqrt().div_(bc2_sqrt).add_(eps);
    } else {
      denom = v[i].sqrt().div_(bc2_sqrt).add_(eps);
    }
    p.addcdiv_(m[i], denom, -lr / bc1);
  }
  return info.Env().Undefined();
}
