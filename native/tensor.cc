// Tensor creation, properties, data transfer, conversion and autograd entry points.
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>

#include <cstring>

#include "common.h"
#include "opcodes.h"

using namespace tn;

// ---------------------------------------------------------------- creation
// fromBuffer(typedArray, shape, dtypeCode, device?)
TN_EXPORT(fromBuffer) {
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  std::vector<int64_t> shape = Ints(info, 1);
  at::ScalarType dt = Dtype(static_cast<int>(Int(info, 2)));
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dt));
  size_t need = static_cast<size_t>(t.numel()) * t.element_size();
  if (ta.ByteLength() != need)
    throw std::invalid_argument("buffer holds " + std::to_string(ta.ByteLength()) + " bytes but the shape and dtype need " + std::to_string(need));
  if (need) std::memcpy(t.data_ptr(), static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset(), need);
  at::Device dev = Dev(info, 3);
  if (!dev.is_cpu()) t = t.to(dev);
  return Wrap(info, t);
}

// full-style factories: (kind (a code of the factory table), shape, dtype, device, a, b)
TN_EXPORT(factory) {
  const ops::FactoryKind kind = ops::OpCode<ops::FactoryKind>(Int(info, 0));
  std::vector<int64_t> shape = Ints(info, 1);
  at::TensorOptions o = Opts(info, 2, 3);
  switch (kind) {
    case ops::FactoryKind::Zeros: return Wrap(info, at::zeros(shape, o));
    case ops::FactoryKind::Ones: return Wrap(info, at::ones(shape, o));
    case ops::FactoryKind::Empty: return Wrap(info, at::empty(shape, o));
    case ops::FactoryKind::Full: return Wrap(info, at::full(shape, Num(info, 4), o));
    case ops::FactoryKind::Rand: return Wrap(info, at::rand(shape, o));
    case ops::FactoryKind::Randn: return Wrap(info, at::randn(shape, o));
    case ops::FactoryKind::Randint: return Wrap(info, at::randint(Int(info, 4), Int(info, 5), shape, o));
    case ops::FactoryKind::Randperm: return Wrap(info, at::randperm(Int(info, 4), o));
    case ops::FactoryKind::Eye: return Wrap(info, at::eye(shape.at(0), shape.at(1), o));
  }
  throw std::invalid_argument("unknown factory");  // unreachable: OpCode checked the code
}

// arange(start, end, step, dtype, device) / linspace(start, end, steps, dtype, device)
TN_EXPORT(arange) { return Wrap(info, at::arange(Num(info, 0), Num(info, 1), Num(info, 2), Opts(info, 3, 4))); }
TN_EXPORT(linspace) { return Wrap(info, at::linspace(Num(info, 0), Num(info, 1), Int(info, 2), Opts(info, 3, 4))); }

// ---------------------------------------------------------------- properties
TN_EXPORT(shape) {
  at::Tensor& t = T(info, 0);
  auto sz = t.sizes();
  Napi::Array a = Napi::Array::New(info.Env(), sz.size());
  for (size_t i = 0; i < sz.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(info.Env(), static_cast<double>(sz[i])));
  return a;
}
TN_EXPORT(stride) {
  at::Tensor& t = T(info, 0);
  auto st = t.strides();
  Napi::Array a = Napi::Array::New(info.Env(), st.size());
  for (size_t i = 0; i < st.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(info.Env(), static_cast<double>(st[i])));
  return a;
}
TN_EXPORT(ndim) { return Napi::Number::New(info.Env(), static_cast<double>(T(info, 0).dim())); }
TN_EXPORT(numel) { return Napi::Number::New(info.Env(), static_cast<double>(T(info, 0).numel())); }
TN_EXPORT(dtype) { return Napi::Number::New(info.Env(), DtypeCode(T(info, 0).scalar_type())); }
TN_EXPORT(device) { return Napi::String::New(info.Env(), T(info, 0).device().str()); }
TN_EXPORT(isContiguous) { return Napi::Boolean::New(info.Env(), T(info, 0).is_contiguous()); }
TN_EXPORT(requiresGrad) { return Napi::Boolean::New(info.Env(), T(info, 0).requires_grad()); }
TN_EXPORT(setRequiresGrad) {
  T(info, 0).set_requires_grad(Bool(info, 1));
  return info.Env().Undefined();
}
TN_EXPORT(isLeaf) { return Napi::Boolean::New(info.Env(), T(info, 0).is_leaf()); }
TN_EXPORT(gradFn) {
  const auto& fn = T(info, 0).grad_fn();
  if (!fn) return info.Env().Null();
  return Napi::String::New(info.Env(), fn->name());
}
TN_EXPORT(sameTensor) { return Napi::Boolean::New(info.Env(), T(info, 0).is_same(T(info, 1))); }
TN_EXPORT(dataPtr) {
  // identity of the storage, for tests of views and in-place ops
  return Napi::Number::New(info.Env(), static_cast<double>(reinterpret_cast<uintptr_t>(T(info, 0).data_ptr()) & 0xffffffffffff));
}

// ---------------------------------------------------------------- data out
// toBuffer(h) -> ArrayBuffer with the contiguous CPU bytes (caller knows dtype)
TN_EXPORT(toBuffer) {
  at::Tensor t = T(info, 0).detach();
  if (!t.device().is_cpu()) t = t.cpu();
  t = t.contiguous();
  size_t n = static_cast<size_t>(t.numel()) * t.element_size();
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(info.Env(), n);
  if (n) std::memcpy(buf.Data(), t.data_ptr(), n);
  return buf;
}

// Weight snapshots (lib/train/worker.ts): one copy between a tensor and a span of a (possibly shared or
// transferable) buffer, with no intermediate tensor or ArrayBuffer. The span is exactly numel * element size bytes.
static at::Tensor BufferView(const Napi::CallbackInfo& info, size_t i, const at::Tensor& like) {
  Napi::TypedArray ta = info[i].As<Napi::TypedArray>();
  size_t need = static_cast<size_t>(like.numel()) * like.element_size();
  if (ta.ByteLength() != need)
    throw std::invalid_argument("buffer span holds " + std::to_string(ta.ByteLength()) + " bytes but the tensor has " + std::to_string(need));
  void* data = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  return at::from_blob(data, like.sizes(), at::TensorOptions().dtype(like.scalar_type()));
}

// copyToBuffer(h, uint8Span): the tensor's values, contiguous, into the span
TN_EXPORT(copyToBuffer) {
  at::Tensor t = T(info, 0).detach();
  at::Tensor dst = BufferView(info, 1, t);
  if (t.numel()) dst.copy_(t);
  return info.Env().Undefined();
}

// copyFromBuffer_(h, uint8Span): the span's values into the tensor, in place and outside autograd (a parameter
// keeps its identity, grad and optimizer state)
TN_EXPORT(copyFromBuffer_) {
  at::Tensor& t = T(info, 0);
  at::Tensor src = BufferView(info, 1, t);
  at::NoGradGuard no_grad;
  if (t.numel()) t.copy_(src);
  return info.Env().Undefined();
}

TN_EXPORT(item) {
  at::Tensor& t = T(info, 0);
  if (t.numel() != 1)
    throw std::invalid_argument("a Tensor with " + std::to_string(t.numel()) + " elements cannot be converted to a scalar");
  at::Scalar s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(info.Env(), s.toBool());
  if (s.isIntegral(false)) return Napi::Number::New(info.Env(), static_cast<double>(s.toLong()));
  return Napi::Number::New(info.Env(), s.toDouble());
}

// ---------------------------------------------------------------- conversion
// to(h, dtypeCode | -1, device | undefined, copy)
TN_EXPORT(to) {
  at::Tensor& t = T(info, 0);
  int64_t dc = Int(info, 1);
  at::ScalarType dt = dc < 0 ? t.scalar_type() : Dtype(static_cast<int>(dc));
  at::Device dev = (info.Length() > 2 && info[2].IsString()) ? ParseDevice(info.Env(), info[2].As<Napi::String>().Utf8Value()) : t.device();
  return Wrap(info, t.to(dev, dt, /*non_blocking=*/false, /*copy=*/Bool(info, 3)));
}
TN_EXPORT(clone) { return Wrap(info, T(info, 0).clone()); }
TN_EXPORT(contiguous) { return Wrap(info, T(info, 0).contiguous()); }
TN_EXPORT(detach) { return Wrap(info, T(info, 0).detach()); }
TN_EXPORT(detach_) {
  T(info, 0).detach_();
  return info.Env().Undefined();
}
// alias(h): a second handle to the same tensor (shares storage and autograd identity)
TN_EXPORT(alias) { return Wrap(info, T(info, 0)); }

// ---------------------------------------------------------------- autograd
// backward(h, gradH | -1, retainGraph, createGraph)
TN_EXPORT(backward) {
  at::Tensor& t = T(info, 0);
  at::Tensor g = OptT(info, 1);
  t.backward(g, Bool(info, 2) ? c10::optional<bool>(true) : c10::nullopt, Bool(info, 3));
  return info.Env().Undefined();
}

// grad(h, cachedHandle) -> handle of .grad, the cached handle when it is still the same tensor, or null
TN_EXPORT(grad) {
  at::Tensor& t = T(info, 0);
  const at::Tensor& g = t.grad();
  if (!g.defined()) return info.Env().Null();
  double cached = Num(info, 1);
  if (cached >= 0) {
    at::Tensor* c = GetState(info.Env()).table.TryGet(cached);
    if (c && c->is_same(g)) return Napi::Number::New(info.Env(), cached);
  }
  return Wrap(info, g);
}

// setGrad(h, gradH | -1)
TN_EXPORT(setGrad) {
  at::Tensor& t = T(info, 0);
  at::Tensor g = OptT(info, 1);
  t.mutable_grad() = g;
  return info.Env().Undefined();
}

// setData(h, dataH): h keeps its identity (and its autograd leaf-ness) and takes the data, dtype and device of
// dataH, as PyTorch's `param.data = new` (what Module.to does to parameters).
TN_EXPORT(setData) {
  at::Tensor& t = T(info, 0);
  const at::Tensor& d = T(info, 1);
  t.set_data(d);
  return info.Env().Undefined();
}

TN_EXPORT(retainGrad) {
  T(info, 0).retain_grad();
  return info.Env().Undefined();
}

// autogradGrad(outputs[], inputs[], gradOutputs[] (may hold -1), retainGraph (-1 unset / 0 / 1), createGraph, allowUnused)
TN_EXPORT(autogradGrad) {
  std::vector<at::Tensor> outputs = Tensors(info, 0);
  std::vector<at::Tensor> inputs = Tensors(info, 1);
  std::vector<at::Tensor> gos;
  if (info[2].IsArray()) {
    Napi::Array a = info[2].As<Napi::Array>();
    for (uint32_t k = 0; k < a.Length(); ++k) {
      double h = a.Get(k).As<Napi::Number>().DoubleValue();
      if (h == -1) {  // none (a disposed tensor's -2 is an error below)
        gos.emplace_back();
      } else {
        at::Tensor* g = GetState(info.Env()).table.TryGet(h);
        if (!g) ThrowDisposed(info.Env(), h);
        gos.push_back(*g);
      }
    }
  }
  int64_t rg = Int(info, 3);
  c10::optional<bool> retain = rg < 0 ? c10::nullopt : c10::optional<bool>(rg == 1);
  auto res = torch::autograd::grad(outputs, inputs, gos, retain, Bool(info, 4), Bool(info, 5));
  return WrapAll(info, res);
}
