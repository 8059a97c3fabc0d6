// SGD and Adam/AdamW updates of every parameter in one native call per step (PyTorch 1.13's single-tensor
// update rules, torch/optim/sgd.py and adam.py / adamw.py). Parameters without a gradient are skipped.
#include "../options.h"

using namespace tn;

namespace {

// Copies of the tensors behind the handles (an undefined tensor for -1 where allowed), never pointers into the
// handle table, which may grow and move its slots while a step runs.
std::vector<at::Tensor> Slots(Napi::Env env, const std::vector<double>& handles, bool allow_missing) {
  std::vector<at::Tensor> out;
  out.reserve(handles.size());
  auto& table = GetState(env).table;
  for (double h : handles) {
    at::Tensor* t = h < 0 ? nullptr : table.TryGet(h);
    // -1 is "no tensor"; a disposed wrapper's handle (-2 and below) is an error, not a missing buffer
    if (!t && !(allow_missing && h == -1)) ThrowDisposed(env, h);
    out.push_back(t ? *t : at::Tensor());
  }
  return out;
}

std::vector<at::Tensor> Params(const Napi::CallbackInfo& info, const char* who) {
  if (info.Length() < 1 || !info[0].IsArray())
    throw Napi::TypeError::New(info.Env(), std::string(who) + ": Expected an array of tensor handles for params");
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<double> handles;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value v = a.Get(k);
    if (!v.IsNumber())
      throw Napi::TypeError::New(info.Env(), std::string(who) + ": Expected a tensor handle for params[" + std::to_string(k) + "]");
    handles.push_back(v.As<Napi::Number>().DoubleValue());
  }
  return Slots(info.Env(), handles, false);
}

}  // namespace

// sgdStep(params[], state { momentumBuffer[] (-1: none), initialize[] },
//         options { lr, momentum, dampening, weightDecay, nesterov, maximize })
// The buffers belong to the optimizer (lib/optim/sgd.ts makes them); with momentum, a parameter's buffer is set to
// its first step's direction where initialize[i] (PyTorch's clone of d_p), and updated in place after that.
TN_EXPORT(sgdStep) {
  at::NoGradGuard no_grad;
  auto params = Params(info, "sgdStep");
  ObjectArg state(info, 1, "sgdStep", "state");
  ObjectArg options(info, 2, "sgdStep", "options");
  auto bufs = Slots(info.Env(), state.Numbers("momentumBuffer"), true);
  std::vector<bool> initialize = state.Booleans("initialize");
  const double lr = options.Number("lr"), momentum = options.Number("momentum"), dampening = options.Number("dampening"),
               wd = options.Number("weightDecay");
  const bool nesterov = options.Boolean("nesterov"), maximize = options.Boolean("maximize");
  if (bufs.size() != params.size() || initialize.size() != params.size())
    throw std::invalid_argument("sgdStep: state lists do not match the parameter list");
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor& p = params[i];
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    at::Tensor d = maximize ? g.neg() : g;
    if (wd != 0) d = d.add(p, wd);
    if (momentum != 0) {
      at::Tensor& buf = bufs[i];
      if (!buf.defined()) throw std::invalid_argument("sgdStep: parameter " + std::to_string(i) + " has no momentum buffer");
      if (initialize[i]) buf.copy_(d);
      else buf.mul_(momentum).add_(d, 1 - dampening);
      d = nesterov ? d.add(buf, momentum) : buf;
    }
    p.add_(d, -lr);
  }
  return info.Env().Undefined();
}

// adamStep(params[], state { expAvg[], expAvgSq[], maxExpAvgSq[] | null, steps[] },
//          options { lr, beta1, beta2, eps, weightDecay, amsgrad, decoupled (AdamW), maximize })
TN_EXPORT(adamStep) {
  at::NoGradGuard no_grad;
  auto params = Params(info, "adamStep");
  ObjectArg state(info, 1, "adamStep", "state");
  ObjectArg options(info, 2, "adamStep", "options");
  const double lr = options.Number("lr"), beta1 = options.Number("beta1"), beta2 = options.Number("beta2"),
               eps = options.Number("eps"), wd = options.Number("weightDecay");
  const bool amsgrad = options.Boolean("amsgrad"), decoupled = options.Boolean("decoupled"),
             maximize = options.Boolean("maximize");
  auto m = Slots(info.Env(), state.Numbers("expAvg"), false);
  auto v = Slots(info.Env(), state.Numbers("expAvgSq"), false);
  auto vmax = amsgrad ? Slots(info.Env(), state.Numbers("maxExpAvgSq"), false) : std::vector<at::Tensor>();
  std::vector<double> steps = state.Numbers("steps");
  if (m.size() != params.size() || v.size() != params.size() || (amsgrad && vmax.size() != params.size()) || steps.size() != params.size())
    throw std::invalid_argument("adamStep: state lists do not match the parameter list");
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor& p = params[i];
    const at::Tensor& g0 = p.grad();
    if (!g0.defined()) continue;
    const double step = steps[i];
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
