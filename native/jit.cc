// TorchScript modules (torch::jit): load a file Python wrote with torch.jit.script(m).save(...) or torch.jit.trace,
// run its forward with autograd, expose its parameters and buffers as tensors that alias the module's own (an
// optimizer updating them updates the module), switch train/eval, and save it back.
//
// Modules live in a per-environment table (State::jit), addressed by integer handles like tensors; jitDispose frees
// one. Loading runs TorchScript's own deserializer: the archive's code is TorchScript (compiled, run by its
// interpreter), its constants are unpickled by TorchScript's restricted unpickler, which rebuilds tensors and
// TorchScript types only and imports no Python globals (there is no Python here to import them into).
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/script.h>

#include <unordered_map>

#include "common.h"

using namespace tn;

namespace {

struct JitState {
  std::unordered_map<uint32_t, torch::jit::Module> modules;
  uint32_t next = 1;
};

JitState& Jit(Napi::Env env) {
  State& s = GetState(env);
  if (!s.jit) s.jit = std::make_shared<JitState>();
  return *static_cast<JitState*>(s.jit.get());
}

torch::jit::Module& Mod(const Napi::CallbackInfo& info, size_t i) {
  JitState& js = Jit(info.Env());
  auto it = js.modules.find(static_cast<uint32_t>(Int(info, i)));
  if (it == js.modules.end()) ThrowTorchError(info.Env(), "the TorchScript module was disposed: it cannot be used any more", "DISPOSED");
  return it->second;
}

uint32_t Put(Napi::Env env, torch::jit::Module m) {
  JitState& js = Jit(env);
  uint32_t h = js.next++;
  js.modules.emplace(h, std::move(m));
  return h;
}

std::string Str(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), "expected a string");
  return info[i].As<Napi::String>().Utf8Value();
}

// A forward's result: a tensor -> handle; a number or bool -> { value }; a tuple or list -> array (nested); None -> null.
Napi::Value FromIValue(const Napi::CallbackInfo& info, const c10::IValue& v) {
  if (v.isTensor()) return Wrap(info, v.toTensor());
  if (v.isNone()) return info.Env().Null();
  // numbers travel boxed, so that they cannot be taken for tensor handles
  if (v.isDouble() || v.isInt() || v.isBool()) {
    Napi::Object box = Napi::Object::New(info.Env());
    if (v.isBool()) box.Set("value", Napi::Boolean::New(info.Env(), v.toBool()));
    else box.Set("value", Napi::Number::New(info.Env(), v.isInt() ? static_cast<double>(v.toInt()) : v.toDouble()));
    return box;
  }
  std::vector<c10::IValue> items;
  if (v.isTuple()) items = v.toTupleRef().elements().vec();
  else if (v.isList()) items = v.toListRef().vec();
  else throw std::invalid_argument(std::string("the TorchScript module returned a ") + v.tagKind() + ", which tensornormal does not convert (tensors, numbers, tuples and lists of them)");
  Napi::Array a = Napi::Array::New(info.Env(), items.size());
  for (size_t k = 0; k < items.size(); ++k) a.Set(static_cast<uint32_t>(k), FromIValue(info, items[k]));
  return a;
}

Napi::Array Named(const Napi::CallbackInfo& info, bool parameters) {
  torch::jit::Module& m = Mod(info, 0);
  std::vector<std::pair<std::string, at::Tensor>> out;
  if (parameters)
    for (const auto& p : m.named_parameters(/*recurse=*/true)) out.emplace_back(p.name, p.value);
  else
    for (const auto& b : m.named_buffers(/*recurse=*/true)) out.emplace_back(b.name, b.value);
  Napi::Array a = Napi::Array::New(info.Env(), out.size());
  for (size_t k = 0; k < out.size(); ++k) {
    Napi::Array pair = Napi::Array::New(info.Env(), 2);
    pair.Set(0u, Napi::String::New(info.Env(), out[k].first));
    pair.Set(1u, Wrap(info, out[k].second));  // an alias of the module's tensor: same TensorImpl
    a.Set(static_cast<uint32_t>(k), pair);
  }
  return a;
}

}  // namespace

// jitLoad(path) -> module handle. A file that is not a TorchScript archive is a TorchError naming it.
TN_EXPORT(jitLoad) {
  std::string path = Str(info, 0);
  torch::jit::Module m;
  // Every failure of the loader is about the file: a c10::Error, but also the std::exceptions its parser and
  // deserializer throw (std::runtime_error, std::out_of_range, a std::bad_alloc for a size the file declares), which
  // would otherwise reach Guarded as TORCH_ERROR, SHAPE_MISMATCH or OUT_OF_MEMORY without the file's name.
  std::string what;
  bool failed = true;
  try {
    m = torch::jit::load(path, c10::Device(c10::kCPU));
    failed = false;
  } catch (const c10::Error& e) {
    what = e.what_without_backtrace();
  } catch (const std::bad_alloc&) {
    what = "out of memory while loading it (a size in the file too large?)";
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "an unknown error in libtorch's loader";
  }
  if (failed) {
    if (what.empty()) what = "the loader failed without a message";
    auto cut = what.find("\nException raised from");
    if (cut != std::string::npos) what.resize(cut);
    while (!what.empty() && (what.back() == '\n' || what.back() == ' ')) what.pop_back();
    ThrowTorchError(info.Env(), path + " is not a TorchScript file libtorch can load: " + what, "BAD_FILE");
  }
  return Napi::Number::New(info.Env(), Put(info.Env(), std::move(m)));
}

// jitSave(m, path): a TorchScript archive Python's torch.jit.load reads.
TN_EXPORT(jitSave) {
  Mod(info, 0).save(Str(info, 1));
  return info.Env().Undefined();
}

// jitForward(m, inputs[]) -> the result (see FromIValue); records autograd unless grad mode is off.
TN_EXPORT(jitForward) {
  torch::jit::Module& m = Mod(info, 0);
  std::vector<at::Tensor> xs = Tensors(info, 1);
  std::vector<c10::IValue> args(xs.begin(), xs.end());
  return FromIValue(info, m.forward(args));
}

TN_EXPORT(jitNamedParameters) { return Named(info, true); }
TN_EXPORT(jitNamedBuffers) { return Named(info, false); }

// jitTrain(m, mode): train() / eval() of the module and all its submodules.
TN_EXPORT(jitTrain) {
  Mod(info, 0).train(Bool(info, 1, true));
  return info.Env().Undefined();
}

TN_EXPORT(jitIsTraining) { return Napi::Boolean::New(info.Env(), Mod(info, 0).is_training()); }

TN_EXPORT(jitDispose) {
  Jit(info.Env()).modules.erase(static_cast<uint32_t>(Int(info, 0)));
  return info.Env().Undefined();
}

// jitTrace(names[], tensors[], inputs[], fn) -> module handle. libtorch's tracer runs fn (the JS forward, called on
// this thread with the traced inputs' handles; it returns a tensor handle or an array of them) and records every
// ATen op it dispatches into a graph; `tensors` (the model's parameters and buffers, named `names`) become
// attributes of a new module "TracedModule", so the graph reads them from `self`, as torch.jit.trace does.
TN_EXPORT(jitTrace) {
  Napi::Env env = info.Env();
  Napi::Array names = info[0].As<Napi::Array>();
  std::vector<at::Tensor> tensors = Tensors(info, 1);
  std::vector<at::Tensor> inputs = Tensors(info, 2);
  if (!info[3].IsFunction()) throw Napi::TypeError::New(env, "jitTrace: forward must be a function");
  Napi::Function fn = info[3].As<Napi::Function>();
  Napi::Array isParam = info[4].As<Napi::Array>();
  if (names.Length() != tensors.size() || isParam.Length() != tensors.size()) throw std::invalid_argument("jitTrace: names and tensors differ in length");
  torch::jit::Module m("__torch__.TracedModule");
  for (uint32_t k = 0; k < names.Length(); ++k) {
    std::string n = names.Get(k).As<Napi::String>().Utf8Value();
    if (isParam.Get(k).ToBoolean().Value()) m.register_parameter(n, tensors[k], /*is_buffer=*/false);
    else m.register_buffer(n, tensors[k]);
  }
  State& st = GetState(env);
  std::vector<double> made;  // handles given to JS, released after the trace
  auto traced = [&](torch::jit::Stack in) -> torch::jit::Stack {
    std::vector<napi_value> args;
    for (auto& v : in) {
      double h = st.table.Put(v.toTensor());
      made.push_back(h);
      args.push_back(Napi::Number::New(env, h));
    }
    Napi::Value r = fn.Call(args);
    torch::jit::Stack out;
    auto take = [&](Napi::Value v) {
      at::Tensor* t = v.IsNumber() ? st.table.TryGet(v.As<Napi::Number>().DoubleValue()) : nullptr;
      if (!t) throw std::invalid_argument("jit.trace: the forward must return a Tensor or an array of Tensors");
      out.emplace_back(*t);
    };
    if (r.IsArray()) {
      Napi::Array a = r.As<Napi::Array>();
      std::vector<c10::IValue> items;
      for (uint32_t k = 0; k < a.Length(); ++k) take(a.Get(k));
      if (out.size() > 1) {
        std::vector<c10::IValue> elems(out.begin(), out.end());
        out.clear();
        out.emplace_back(c10::ivalue::Tuple::create(std::move(elems)));
      }
    } else {
      take(r);
    }
    return out;
  };
  torch::jit::Stack stack(inputs.begin(), inputs.end());
  std::shared_ptr<torch::jit::tracer::TracingState> state;
  try {
    state = torch::jit::tracer::trace(std::move(stack), traced, [](const at::Tensor&) { return std::string(); },
                                      /*strict=*/true, /*force_outplace=*/false, &m).first;
  } catch (...) {
    for (double h : made) st.table.Release(h);
    throw;
  }
  for (double h : made) st.table.Release(h);
  auto graph = state->graph;
  auto fnc = m._ivalue()->compilation_unit()->create_function(c10::QualifiedName(*m.type()->name(), "forward"), graph);
  m.type()->addMethod(fnc);
  return Napi::Number::New(env, Put(env, std::move(m)));
}
