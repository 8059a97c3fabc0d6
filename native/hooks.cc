// Gradient hooks: JavaScript functions that libtorch's autograd engine calls during a backward pass.
//  - registerHook(h, fn): PyTorch's tensor.register_hook. fn sees the gradient w.r.t. one tensor, may replace it.
//  - hookIdentity(hs, fn, materialize): identity views of several tensors made by one autograd node, whose backward
//    hands all their gradients to fn at once (PyTorch's BackwardHookFunction in torch/utils/hooks.py, on which
//    Module's backward hooks are built).
// Both run JS inside the engine, which only the environment's JS thread may do. libtorch runs the CPU nodes of a
// backward on the thread that called it ("CPU threads are dedicated to processing CPU work for the backward they
// invoked", torch/csrc/autograd/graph_task.h); CUDA nodes run on the engine's device threads, where a hook raises an
// error instead of touching V8.
#include <torch/csrc/autograd/custom_function.h>

#include "common.h"

using namespace tn;

namespace {

struct JsHook {
  Napi::FunctionReference fn;
  napi_env env = nullptr;
  std::thread::id thread;
  std::shared_ptr<bool> alive;
  // The graph holding the hook may be freed on another thread (a CUDA device thread) or after the environment is
  // gone: then the JS reference must not be touched (V8 reclaims it with the environment).
  ~JsHook() {
    if (std::this_thread::get_id() != thread || !alive || !*alive) fn.SuppressDestruct();
  }
};

std::shared_ptr<JsHook> MakeHook(const Napi::CallbackInfo& info, size_t i, const char* who) {
  if (info.Length() <= i || !info[i].IsFunction()) throw std::invalid_argument(std::string(who) + ": the hook must be a function");
  State& st = GetState(info.Env());
  auto hook = std::make_shared<JsHook>();
  hook->fn = Napi::Persistent(info[i].As<Napi::Function>());
  hook->env = info.Env();
  hook->thread = st.thread;
  hook->alive = st.alive;
  return hook;
}

// False once the environment is gone (the hook is then skipped); an error off the environment's JS thread.
bool CanCall(const JsHook& hook) {
  if (std::this_thread::get_id() != hook.thread)
    throw std::runtime_error(
        "a tensor hook (registerHook or a module backward hook) runs JavaScript, which only the thread that called "
        "backward() can do; this backward ran on another thread (CUDA graphs run theirs on device threads)");
  return *hook.alive;
}

// Calls the hook. A JS exception (any value: `throw 42` too) is stashed in the environment's state and leaves as a
// C++ exception through the engine; the entry point that ran backward rethrows the stashed value (Guarded).
Napi::Value CallHook(JsHook& hook, State& st, const std::initializer_list<napi_value>& args) {
  try {
    return hook.fn.Call(args);
  } catch (const Napi::Error& e) {
    // A reference can hold an object only: box the thrown value. In an environment being torn down (a worker
    // terminated inside the hook) nothing can be created: the backward then just fails, and no JS sees it.
    try {
      Napi::Env env(hook.env);
      Napi::Object box = Napi::Object::New(env);
      box.Set("error", e.Value());
      st.hook_error = Napi::Persistent(box);
    } catch (const Napi::Error&) {
      throw std::runtime_error("a gradient hook was interrupted: the JavaScript environment is shutting down");
    }
    throw std::runtime_error("a gradient hook threw an exception");
  }
}

// The tensor behind a handle the hook returned; the addon takes it over (frees the handle).
at::Tensor TakeHandle(State& st, const Napi::Value& v) {
  if (!v.IsNumber()) return at::Tensor();
  double h = v.As<Napi::Number>().DoubleValue();
  at::Tensor* t = st.table.TryGet(h);
  if (t == nullptr) return at::Tensor();
  at::Tensor out = *t;
  st.table.Release(h);
  return out;
}

// PyTorch's checks on a replacement gradient (torch/csrc/autograd/python_hook.cpp check_single_result).
void CheckReplacement(const at::Tensor& out, const at::Tensor& grad) {
  if (!out.defined() || !grad.defined()) return;
  TORCH_CHECK(out.sizes() == grad.sizes(), "hook has changed the size of value: expected ", grad.sizes(), " but got ", out.sizes());
  TORCH_CHECK(out.scalar_type() == grad.scalar_type() && out.device() == grad.device(),
              "hook has changed the type of value: expected ", grad.scalar_type(), " on ", grad.device(), " but got ",
              out.scalar_type(), " on ", out.device());
}

// fn(gradHandle) -> -1 (leave the gradient) or the handle of a replacement. The JS side owns gradHandle: it wraps
// it first thing and frees it when the hook returns (unless the hook keep()s it).
at::Tensor RunTensorHook(const std::shared_ptr<JsHook>& hook, const at::Tensor& grad) {
  if (!CanCall(*hook)) return at::Tensor();
  Napi::Env env(hook->env);
  Napi::HandleScope scope(env);
  State& st = GetState(env);
  Napi::Value r = CallHook(*hook, st, {Napi::Number::New(env, st.table.Put(grad))});
  at::Tensor out = TakeHandle(st, r);
  CheckReplacement(out, grad);
  return out;  // undefined: the gradient goes on unchanged
}

// fn([gradHandle | -1, ...]) -> -1 (leave them) or an array of replacement handles (-1: no gradient).
torch::autograd::variable_list RunListHook(const std::shared_ptr<JsHook>& hook, torch::autograd::variable_list grads) {
  if (!CanCall(*hook)) return grads;
  Napi::Env env(hook->env);
  Napi::HandleScope scope(env);
  State& st = GetState(env);
  Napi::Array arg = Napi::Array::New(env, grads.size());
  for (size_t i = 0; i < grads.size(); ++i) arg.Set(static_cast<uint32_t>(i), Napi::Number::New(env, st.table.Put(grads[i])));
  Napi::Value r = CallHook(*hook, st, {arg});
  if (!r.IsArray()) return grads;
  Napi::Array ra = r.As<Napi::Array>();
  // take every returned handle before any check can throw, so that none is left in the table
  torch::autograd::variable_list out(ra.Length());
  for (uint32_t i = 0; i < ra.Length(); ++i) out[i] = TakeHandle(st, ra.Get(i));
  TORCH_CHECK(out.size() == grads.size(), "a gradient hook returned ", out.size(), " gradients for ", grads.size(), " tensors");
  for (size_t i = 0; i < out.size(); ++i) CheckReplacement(out[i], grads[i]);
  return out;
}

}  // namespace

// Named (not anonymous): libtorch names the node after it, in errors such as "Output 0 of
// torch::autograd::CppNode<tn::BackwardHookFunction> is a view and is being modified inplace" (PyTorch's says
// BackwardHookFunctionBackward: a forward that modifies its input in place fails alike).
namespace tn {
struct HookHolder : torch::CustomClassHolder {
  std::shared_ptr<JsHook> hook;
};

// Identity on its tensor inputs: libtorch returns them as views whose grad_fn is this one node, so the backward
// sees every gradient at once (an input returned as-is by a custom Function becomes a view, custom_function.cpp).
struct BackwardHookFunction : torch::autograd::Function<BackwardHookFunction> {
  // xs is a TensorList: apply() counts the tensors of a TensorList as inputs, not those of a std::vector.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, at::TensorList xs,
                                                c10::IValue holder, bool materialize) {
    ctx->saved_data["hook"] = std::move(holder);
    ctx->set_materialize_grads(materialize);
    return xs.vec();
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto holder = c10::static_intrusive_pointer_cast<HookHolder>(ctx->saved_data["hook"].toCapsule());
    torch::autograd::variable_list out = RunListHook(holder->hook, std::move(grads));
    out.emplace_back();  // no gradient for the hook
    out.emplace_back();  // nor for the flag
    return out;
  }
};
}  // namespace tn

// registerHook(h, fn) -> position for removeHook. fn runs when the gradient w.r.t. h is computed (see RunTensorHook).
TN_EXPORT(registerHook) {
  at::Tensor& t = T(info, 0);
  auto hook = MakeHook(info, 1, "registerHook");
  unsigned pos = t.register_hook([hook](const at::Tensor& grad) { return RunTensorHook(hook, grad); });
  return Napi::Number::New(info.Env(), pos);
}

// removeHook(h, position)
TN_EXPORT(removeHook) {
  T(info, 0).remove_hook(static_cast<unsigned>(Int(info, 1)));
  return info.Env().Undefined();
}

// hookIdentity(handles, fn, materialize) -> handles of identity views of the tensors, made by one autograd node whose
// backward calls fn with all their gradients (see RunListHook). materialize: an unused view's gradient arrives as
// zeros (else as -1).
TN_EXPORT(hookIdentity) {
  std::vector<at::Tensor> xs = Tensors(info, 0);
  TORCH_CHECK(!xs.empty(), "hookIdentity: no tensors");
  auto holder = c10::make_intrusive<HookHolder>();
  holder->hook = MakeHook(info, 1, "hookIdentity");
  torch::autograd::variable_list out = BackwardHookFunction::apply(at::TensorList(xs), c10::IValue::make_capsule(std::move(holder)), Bool(info, 2));
  return WrapAll(info, out);
}
