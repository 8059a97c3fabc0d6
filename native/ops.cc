// Element-wise, reduction, shape and indexing ops. Families of ops share one entry point and an op code; the
// code lists are the tables of native/opcodes.h, exported as `opcodes` and checked against lib/opcodes.ts at load.
#include <limits>

#include "common.h"
#include "opcodes.h"

using namespace tn;
using namespace tn::ops;

namespace {

// A JS number is an integer Scalar when it holds an integer, so `intTensor + 2` stays integral as in PyTorch.
at::Scalar S(const Napi::CallbackInfo& info, size_t i) {
  if (info[i].IsBoolean()) return at::Scalar(info[i].As<Napi::Boolean>().Value());
  double d = Num(info, i);
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9007199254740992.0) return at::Scalar(static_cast<int64_t>(d));
  return at::Scalar(d);
}

c10::optional<at::Scalar> OptS(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || info[i].IsUndefined() || info[i].IsNull()) return c10::nullopt;
  return S(info, i);
}

at::Tensor Unary(UnaryOp op, const at::Tensor& t) {
  switch (op) {
    case UnaryOp::Neg: return at::neg(t);
    case UnaryOp::Abs: return at::abs(t);
    case UnaryOp::Exp: return at::exp(t);
    case UnaryOp::Log: return at::log(t);
    case UnaryOp::Sqrt: return at::sqrt(t);
    case UnaryOp::Rsqrt: return at::rsqrt(t);
    case UnaryOp::Sign: return at::sign(t);
    case UnaryOp::Relu: return at::relu(t);
    case UnaryOp::Sigmoid: return at::sigmoid(t);
    case UnaryOp::Tanh: return at::tanh(t);
    case UnaryOp::Gelu: return at::gelu(t);
    case UnaryOp::Sin: return at::sin(t);
    case UnaryOp::Cos: return at::cos(t);
    case UnaryOp::Log1p: return at::log1p(t);
    case UnaryOp::Expm1: return at::expm1(t);
    case UnaryOp::Square: return at::square(t);
    case UnaryOp::Reciprocal: return at::reciprocal(t);
    case UnaryOp::Floor: return at::floor(t);
    case UnaryOp::Ceil: return at::ceil(t);
    case UnaryOp::Round: return at::round(t);
    case UnaryOp::Trunc: return at::trunc(t);
    case UnaryOp::LogicalNot: return at::logical_not(t);
    case UnaryOp::Isnan: return at::isnan(t);
    case UnaryOp::Isfinite: return at::isfinite(t);
    case UnaryOp::Isinf: return at::isinf(t);
    case UnaryOp::Silu: return at::silu(t);
    case UnaryOp::Erf: return at::erf(t);
    case UnaryOp::Log2: return at::log2(t);
    case UnaryOp::Log10: return at::log10(t);
    case UnaryOp::Softplus: return at::softplus(t);
    case UnaryOp::LogSigmoid: return at::log_sigmoid(t);
    case UnaryOp::BitwiseNot: return at::bitwise_not(t);
    case UnaryOp::Frac: return at::frac(t);
    case UnaryOp::Tan: return at::tan(t);
    case UnaryOp::Asin: return at::asin(t);
    case UnaryOp::Acos: return at::acos(t);
    case UnaryOp::Atan: return at::atan(t);
    case UnaryOp::Sinh: return at::sinh(t);
    case UnaryOp::Cosh: return at::cosh(t);
    case UnaryOp::Mish: return at::mish(t);
    case UnaryOp::Selu: return at::selu(t);
  }
  throw std::invalid_argument("unknown unary op");  // unreachable: OpCode checked the code
}

void UnaryInplace(UnaryInplaceOp op, at::Tensor& t) {
  switch (op) {
    case UnaryInplaceOp::Zero: t.zero_(); return;
    case UnaryInplaceOp::Neg: t.neg_(); return;
    case UnaryInplaceOp::Abs: t.abs_(); return;
    case UnaryInplaceOp::Exp: t.exp_(); return;
    case UnaryInplaceOp::Log: t.log_(); return;
    case UnaryInplaceOp::Sqrt: t.sqrt_(); return;
    case UnaryInplaceOp::Relu: t.relu_(); return;
    case UnaryInplaceOp::Sigmoid: t.sigmoid_(); return;
    case UnaryInplaceOp::Tanh: t.tanh_(); return;
    case UnaryInplaceOp::Sign: t.sign_(); return;
    case UnaryInplaceOp::Reciprocal: t.reciprocal_(); return;
    case UnaryInplaceOp::Square: t.square_(); return;
    case UnaryInplaceOp::Floor: t.floor_(); return;
    case UnaryInplaceOp::Round: t.round_(); return;
  }
  throw std::invalid_argument("unknown in-place unary op");  // unreachable: OpCode checked the code
}

at::Tensor Binary(BinaryOp op, const at::Tensor& a, const at::Tensor& b, const at::Scalar& alpha) {
  switch (op) {
    case BinaryOp::Add: return at::add(a, b, alpha);
    case BinaryOp::Sub: return at::sub(a, b, alpha);
    case BinaryOp::Mul: return at::mul(a, b);
    case BinaryOp::Div: return at::div(a, b);
    case BinaryOp::Pow: return at::pow(a, b);
    case BinaryOp::Maximum: return at::maximum(a, b);
    case BinaryOp::Minimum: return at::minimum(a, b);
    case BinaryOp::Eq: return at::eq(a, b);
    case BinaryOp::Ne: return at::ne(a, b);
    case BinaryOp::Lt: return at::lt(a, b);
    case BinaryOp::Le: return at::le(a, b);
    case BinaryOp::Gt: return at::gt(a, b);
    case BinaryOp::Ge: return at::ge(a, b);
    case BinaryOp::Atan2: return at::atan2(a, b);
    case BinaryOp::Remainder: return at::remainder(a, b);
    case BinaryOp::Fmod: return at::fmod(a, b);
    case BinaryOp::LogicalAnd: return at::logical_and(a, b);
    case BinaryOp::LogicalOr: return at::logical_or(a, b);
    case BinaryOp::LogicalXor: return at::logical_xor(a, b);
    case BinaryOp::FloorDivide: return at::div(a, b, "floor");
    case BinaryOp::Matmul: return at::matmul(a, b);
    case BinaryOp::Mm: return at::mm(a, b);
    case BinaryOp::Bmm: return at::bmm(a, b);
    case BinaryOp::Outer: return at::outer(a, b);
    case BinaryOp::Dot: return at::dot(a, b);
    case BinaryOp::Mv: return at::mv(a, b);
    case BinaryOp::Rsub: return at::sub(b, a, alpha);
    case BinaryOp::Rdiv: return at::div(b, a);
    case BinaryOp::Rpow: return at::pow(b, a);
    case BinaryOp::BitwiseAnd: return at::bitwise_and(a, b);
    case BinaryOp::BitwiseOr: return at::bitwise_or(a, b);
    case BinaryOp::BitwiseXor: return at::bitwise_xor(a, b);
    case BinaryOp::Xlogy: return at::xlogy(a, b);
    case BinaryOp::Hypot: return at::hypot(a, b);
    case BinaryOp::Copysign: return at::copysign(a, b);
    case BinaryOp::Kron: return at::kron(a, b);
  }
  throw std::invalid_argument("unknown binary op");  // unreachable: OpCode checked the code
}

// A scalar operand as Python passes one to add/sub/mul/div: a 0-dim "wrapped number" tensor, which takes part in
// type promotion like a Python number and gives the Tensor overload's grad_fn (AddBackward0, MulBackward0, ...).
at::Tensor Wrapped(const at::Scalar& s, const at::Tensor& like) {
  at::Tensor t = c10::scalar_to_tensor(s, like.device());
  t.unsafeGetTensorImpl()->set_wrapped_number(true);
  return t;
}

at::Tensor BinaryScalar(BinaryOp op, const at::Tensor& a, const at::Scalar& s, const at::Scalar& alpha) {
  switch (op) {
    case BinaryOp::Add: return at::add(a, Wrapped(s, a), alpha);
    case BinaryOp::Sub: return at::sub(a, Wrapped(s, a), alpha);
    case BinaryOp::Mul: return at::mul(a, Wrapped(s, a));
    case BinaryOp::Div: return at::div(a, Wrapped(s, a));
    case BinaryOp::Pow: return at::pow(a, s);
    case BinaryOp::Maximum: return at::clamp_min(a, s);
    case BinaryOp::Minimum: return at::clamp_max(a, s);
    case BinaryOp::Eq: return at::eq(a, s);
    case BinaryOp::Ne: return at::ne(a, s);
    case BinaryOp::Lt: return at::lt(a, s);
    case BinaryOp::Le: return at::le(a, s);
    case BinaryOp::Gt: return at::gt(a, s);
    case BinaryOp::Ge: return at::ge(a, s);
    case BinaryOp::Remainder: return at::remainder(a, s);
    case BinaryOp::Fmod: return at::fmod(a, s);
    // div.Scalar_mode wraps the scalar like a Python number: int64 // 2.5 is float32, as in PyTorch
    case BinaryOp::FloorDivide: return at::div(a, s, "floor");
    case BinaryOp::Rsub: return at::rsub(a, s, alpha);
    case BinaryOp::Rdiv: return at::mul(at::reciprocal(a), s);
    case BinaryOp::Rpow: return at::pow(s, a);
    case BinaryOp::BitwiseAnd: return at::bitwise_and(a, s);
    case BinaryOp::BitwiseOr: return at::bitwise_or(a, s);
    case BinaryOp::BitwiseXor: return at::bitwise_xor(a, s);
    case BinaryOp::Xlogy: return at::xlogy(a, s);
    default: break;
  }
  throw std::invalid_argument(std::string("op ") + OpName(op) + " does not take a scalar");
}

void BinaryInplace(BinaryOp op, at::Tensor& a, const at::Tensor& b, const at::Scalar& alpha) {
  switch (op) {
    case BinaryOp::Add: a.add_(b, alpha); return;
    case BinaryOp::Sub: a.sub_(b, alpha); return;
    case BinaryOp::Mul: a.mul_(b); return;
    case BinaryOp::Div: a.div_(b); return;
    case BinaryOp::Pow: a.pow_(b); return;
    case BinaryOp::Maximum: at::maximum_out(a, a, b); return;
    case BinaryOp::Minimum: at::minimum_out(a, a, b); return;
    default: break;
  }
  throw std::invalid_argument(std::string("op ") + OpName(op) + " has no in-place form");
}

void BinaryScalarInplace(BinaryOp op, at::Tensor& a, const at::Scalar& s, const at::Scalar& alpha) {
  switch (op) {
    case BinaryOp::Add: a.add_(s, alpha); return;
    case BinaryOp::Sub: a.sub_(s, alpha); return;
    case BinaryOp::Mul: a.mul_(s); return;
    case BinaryOp::Div: a.div_(s); return;
    case BinaryOp::Pow: a.pow_(s); return;
    case BinaryOp::Maximum: a.clamp_min_(s); return;
    case BinaryOp::Minimum: a.clamp_max_(s); return;
    default: break;
  }
  throw std::invalid_argument(std::string("op ") + OpName(op) + " has no in-place scalar form");
}

std::vector<int64_t> AllDims(const at::Tensor& t) {
  std::vector<int64_t> d(t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) d[i] = i;
  return d;
}

at::Tensor Reduce(ReduceOp op, const at::Tensor& t, const std::vector<int64_t>& dims, bool all, bool keepdim) {
  switch (op) {
    case ReduceOp::Sum: return all ? (keepdim ? at::sum(t, AllDims(t), true) : at::sum(t)) : at::sum(t, dims, keepdim);
    case ReduceOp::Mean: return all ? (keepdim ? at::mean(t, AllDims(t), true) : at::mean(t)) : at::mean(t, dims, keepdim);
    case ReduceOp::Amax: return at::amax(t, all ? std::vector<int64_t>{} : dims, keepdim);
    case ReduceOp::Amin: return at::amin(t, all ? std::vector<int64_t>{} : dims, keepdim);
    case ReduceOp::Prod:
      if (all) return at::prod(t);
      if (dims.size() != 1) throw std::invalid_argument("prod takes a single dim");
      return at::prod(t, dims[0], keepdim);
    case ReduceOp::All:
      if (all) return at::all(t);
      if (dims.size() != 1) throw std::invalid_argument("all takes a single dim");
      return at::all(t, dims[0], keepdim);
    case ReduceOp::Any:
      if (all) return at::any(t);
      if (dims.size() != 1) throw std::invalid_argument("any takes a single dim");
      return at::any(t, dims[0], keepdim);
    case ReduceOp::Logsumexp: {
      return at::logsumexp(t, all ? AllDims(t) : dims, keepdim);
    }
    case ReduceOp::Nansum: return all ? at::nansum(t) : at::nansum(t, dims, keepdim);
    case ReduceOp::CountNonzero: return all ? at::count_nonzero(t) : at::count_nonzero(t, dims);
  }
  throw std::invalid_argument("unknown reduction");  // unreachable: OpCode checked the code
}

// One family's name -> code map.
template <typename E>
Napi::Object CodeMap(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  for (int i = 0; i < OpTable<E>::kCount; ++i) o.Set(OpTable<E>::kNames[i], Napi::Number::New(env, i));
  return o;
}

}  // namespace

TN_EXPORT(opcodes) {
  Napi::Object o = Napi::Object::New(info.Env());
#define TN_OP_FAMILY_MAP(Enum, LIST, family) o.Set(family, CodeMap<Enum>(info.Env()));
  TN_OP_FAMILIES(TN_OP_FAMILY_MAP)
#undef TN_OP_FAMILY_MAP
  return o;
}

// ---------------------------------------------------------------- element-wise families
TN_EXPORT(unary) { return Wrap(info, Unary(OpCode<UnaryOp>(Int(info, 0)), T(info, 1))); }
TN_EXPORT(unary_) {
  UnaryInplace(OpCode<UnaryInplaceOp>(Int(info, 0)), T(info, 1));
  return info.Env().Undefined();
}
// Integer floor division, remainder and fmod divide with the CPU's instruction, which traps (SIGFPE, the process
// dies; Python PyTorch dies the same way) on the type's minimum divided by -1. Refuse that case first.
bool IsIntegerDivision(BinaryOp op) {
  return op == BinaryOp::Remainder || op == BinaryOp::Fmod || op == BinaryOp::FloorDivide;
}

int64_t MinOf(at::ScalarType t) {
  switch (t) {
    case at::kChar: return std::numeric_limits<int8_t>::min();
    case at::kShort: return std::numeric_limits<int16_t>::min();
    case at::kInt: return std::numeric_limits<int32_t>::min();
    case at::kLong: return std::numeric_limits<int64_t>::min();
    default: return 0;  // unsigned or bool: no negative divisor
  }
}

void CheckIntegerDivision(BinaryOp op, const at::Tensor& a, const at::Tensor& b, at::ScalarType rt) {
  if (!IsIntegerDivision(op) || !at::isIntegralType(rt, /*includeBool=*/false) || MinOf(rt) == 0) return;
  at::NoGradGuard no_grad;
  const int64_t lo = MinOf(rt);
  if ((a.to(rt).eq(lo) & b.to(rt).eq(-1)).any().item<bool>())
    throw std::overflow_error(std::string(OpName(op)) + ": integer overflow: the smallest " +
                              c10::toString(rt) + " value (" + std::to_string(lo) +
                              ") divided by -1 does not fit in " + c10::toString(rt));
}

void CheckIntegerDivision(BinaryOp op, const at::Tensor& a, const at::Scalar& s, at::ScalarType rt) {
  if (!IsIntegerDivision(op) || !s.isIntegral(false) || s.toLong() != -1) return;
  CheckIntegerDivision(op, a, at::scalar_tensor(s, at::TensorOptions().dtype(at::kLong)), rt);
}

// binary(code, a, b, alpha?)
TN_EXPORT(binary) {
  at::Scalar alpha = info.Length() > 3 && info[3].IsNumber() ? S(info, 3) : at::Scalar(1);
  const BinaryOp op = OpCode<BinaryOp>(Int(info, 0));
  const at::Tensor& a = T(info, 1);
  const at::Tensor& b = T(info, 2);
  if (IsIntegerDivision(op)) CheckIntegerDivision(op, a, b, at::result_type(a, b));
  return Wrap(info, Binary(op, a, b, alpha));
}
TN_EXPORT(binaryScalar) {
  at::Scalar alpha = info.Length() > 3 && info[3].IsNumber() ? S(info, 3) : at::Scalar(1);
  const BinaryOp op = OpCode<BinaryOp>(Int(info, 0));
  const at::Tensor& a = T(info, 1);
  const at::Scalar s = S(info, 2);
  if (IsIntegerDivision(op)) CheckIntegerDivision(op, a, s, at::result_type(a, s));
  return Wrap(info, BinaryScalar(op, a, s, alpha));
}
TN_EXPORT(binary_) {
  at::Scalar alpha = info.Length() > 3 && info[3].IsNumber() ? S(info, 3) : at::Scalar(1);
  const BinaryOp op = OpCode<BinaryOp>(Int(info, 0));
  at::Tensor& a = T(info, 1);
  const at::Tensor& b = T(info, 2);
  if (IsIntegerDivision(op)) CheckIntegerDivision(op, a, b, a.scalar_type());
  BinaryInplace(op, a, b, alpha);
  return info.Env().Undefined();
}
TN_EXPORT(binaryScalar_) {
  at::Scalar alpha = info.Length() > 3 && info[3].IsNumber() ? S(info, 3) : at::Scalar(1);
  const BinaryOp op = OpCode<BinaryOp>(Int(info, 0));
  at::Tensor& a = T(info, 1);
  const at::Scalar s = S(info, 2);
  if (IsIntegerDivision(op)) CheckIntegerDivision(op, a, s, a.scalar_type());
  BinaryScalarInplace(op, a, s, alpha);
  return info.Env().Undefined();
}

TN_EXPORT(where) { return Wrap(info, at::where(T(info, 0), T(info, 1), T(info, 2))); }
TN_EXPORT(clamp) { return Wrap(info, at::clamp(T(info, 0), OptS(info, 1), OptS(info, 2))); }
TN_EXPORT(clamp_) {
  T(info, 0).clamp_(OptS(info, 1), OptS(info, 2));
  return info.Env().Undefined();
}
TN_EXPORT(fill_) {
  T(info, 0).fill_(S(info, 1));
  return info.Env().Undefined();
}
TN_EXPORT(copy_) {
  T(info, 0).copy_(T(info, 1));
  return info.Env().Undefined();
}
TN_EXPORT(addcmul_) {
  T(info, 0).addcmul_(T(info, 1), T(info, 2), S(info, 3));
  return info.Env().Undefined();
}
TN_EXPORT(addcdiv_) {
  T(info, 0).addcdiv_(T(info, 1), T(info, 2), S(info, 3));
  return info.Env().Undefined();
}
TN_EXPORT(lerp_) {
  if (info[2].IsNumber()) T(info, 0).lerp_(T(info, 1), S(info, 2));
  else T(info, 0).lerp_(T(info, 1), T(info, 2));
  return info.Env().Undefined();
}
TN_EXPORT(addmm) { return Wrap(info, at::addmm(T(info, 0), T(info, 1), T(info, 2), S(info, 3), S(info, 4))); }
TN_EXPORT(leakyRelu) { return Wrap(info, at::leaky_relu(T(info, 0), S(info, 1))); }
TN_EXPORT(elu) { return Wrap(info, at::elu(T(info, 0), S(info, 1))); }
TN_EXPORT(hardtanh) { return Wrap(info, at::hardtanh(T(info, 0), S(info, 1), S(info, 2))); }
TN_EXPORT(gelu) {
#if TORCH_VERSION_MAJOR > 1 || TORCH_VERSION_MINOR >= 12
  return Wrap(info, at::gelu(T(info, 0), Bool(info, 1) ? "tanh" : "none"));
#else
  return Wrap(info, at::gelu(T(info, 0)));
#endif
}
TN_EXPORT(allclose) {
  return Napi::Boolean::New(info.Env(), at::allclose(T(info, 0), T(info, 1), Num(info, 2), Num(info, 3), Bool(info, 4)));
}

// ---------------------------------------------------------------- reductions
// reduce(code, h, dims | null, keepdim)
TN_EXPORT(reduce) {
  bool all = !info[2].IsArray();
  return Wrap(info, Reduce(OpCode<ReduceOp>(Int(info, 0)), T(info, 1), Ints(info, 2), all, Bool(info, 3)));
}
// var(h, dims | null, correction, keepdim) / std(...)
// Variance with any non-negative integer correction (N - correction in the denominator), over dims (all when
// none are given, keepdim included). 0 and 1 are libtorch's own population / Bessel forms; others rescale the
// population variance by N / (N - correction) (the correction overload's type differs across libtorch versions).
at::Tensor Variance(const Napi::CallbackInfo& info, bool take_sqrt) {
  at::Tensor& t = T(info, 0);
  const int64_t correction = Int(info, 2);
  if (correction < 0) throw std::invalid_argument("var: correction must be a non-negative integer");
  const bool keepdim = Bool(info, 3);
  std::vector<int64_t> dims;
  if (info[1].IsArray()) dims = Ints(info, 1);
  else
    for (int64_t d = 0; d < t.dim(); ++d) dims.push_back(d);
  if (dims.empty()) {  // a 0-d tensor: one element
    at::Tensor v = at::var(t, correction == 1);
    return take_sqrt ? v.sqrt() : v;
  }
  at::Tensor v = at::var(t, dims, correction == 1, keepdim);
  if (correction > 1) {
    int64_t n = 1;
    for (int64_t d : dims) n *= t.size(d < 0 ? d + t.dim() : d);
    v = v * (static_cast<double>(n) / static_cast<double>(n - correction));
  }
  return take_sqrt ? v.sqrt() : v;
}
TN_EXPORT(var) { return Wrap(info, Variance(info, false)); }
TN_EXPORT(std) { return Wrap(info, Variance(info, true)); }
// norm(h, p, dims | null, keepdim)
TN_EXPORT(norm) {
  at::Tensor& t = T(info, 0);
  double p = Num(info, 1);
  if (!info[2].IsArray()) return Wrap(info, at::norm(t, p));
  return Wrap(info, at::norm(t, p, Ints(info, 2), Bool(info, 3)));
}
// maxDim(h, dim, keepdim) -> [values, indices]; minDim likewise
TN_EXPORT(maxDim) {
  auto r = at::max(T(info, 0), Int(info, 1), Bool(info, 2));
  return WrapAll(info, {std::get<0>(r), std::get<1>(r)});
}
TN_EXPORT(minDim) {
  auto r = at::min(T(info, 0), Int(info, 1), Bool(info, 2));
  return WrapAll(info, {std::get<0>(r), std::get<1>(r)});
}
TN_EXPORT(max) { return Wrap(info, at::max(T(info, 0))); }
TN_EXPORT(min) { return Wrap(info, at::min(T(info, 0))); }
TN_EXPORT(argmax) { return Wrap(info, at::argmax(T(info, 0), OptInt(info, 1), Bool(info, 2))); }
TN_EXPORT(argmin) { return Wrap(info, at::argmin(T(info, 0), OptInt(info, 1), Bool(info, 2))); }
TN_EXPORT(cumsum) { return Wrap(info, at::cumsum(T(info, 0), Int(info, 1))); }
TN_EXPORT(cumprod) { return Wrap(info, at::cumprod(T(info, 0), Int(info, 1))); }
TN_EXPORT(softmax) { return Wrap(info, at::softmax(T(info, 0), Int(info, 1))); }
TN_EXPORT(logSoftmax) { return Wrap(info, at::log_softmax(T(info, 0), Int(info, 1))); }
// sort(h, dim, descending) -> [values, indices]; topk(h, k, dim, largest, sorted)
TN_EXPORT(sort) {
  auto r = at::sort(T(info, 0), Int(info, 1), Bool(info, 2));
  return WrapAll(info, {std::get<0>(r), std::get<1>(r)});
}
TN_EXPORT(topk) {
  auto r = at::topk(T(info, 0), Int(info, 1), Int(info, 2), Bool(info, 3, true), Bool(info, 4, true));
  return WrapAll(info, {std::get<0>(r), std::get<1>(r)});
}

// ---------------------------------------------------------------- shapes
TN_EXPORT(reshape) { return Wrap(info, at::reshape(T(info, 0), Ints(info, 1))); }
TN_EXPORT(view) { return Wrap(info, T(info, 0).view(Ints(info, 1))); }
TN_EXPORT(transpose) { return Wrap(info, at::transpose(T(info, 0), Int(info, 1), Int(info, 2))); }
TN_EXPORT(permute) { return Wrap(info, T(info, 0).permute(Ints(info, 1))); }
TN_EXPORT(squeeze) {
  if (info.Length() < 2 || info[1].IsUndefined() || info[1].IsNull()) return Wrap(info, at::squeeze(T(info, 0)));
  return Wrap(info, at::squeeze(T(info, 0), Int(info, 1)));
}
TN_EXPORT(unsqueeze) { return Wrap(info, at::unsqueeze(T(info, 0), Int(info, 1))); }
TN_EXPORT(flatten) { return Wrap(info, at::flatten(T(info, 0), Int(info, 1), Int(info, 2))); }
TN_EXPORT(expand) { return Wrap(info, T(info, 0).expand(Ints(info, 1))); }
TN_EXPORT(repeat) { return Wrap(info, T(info, 0).repeat(Ints(info, 1))); }
TN_EXPORT(cat) { return Wrap(info, at::cat(Tensors(info, 0), Int(info, 1))); }
TN_EXPORT(stack) { return Wrap(info, at::stack(Tensors(info, 0), Int(info, 1))); }
// split(h, sizeOrSizes, dim)
TN_EXPORT(split) {
  at::Tensor& t = T(info, 0);
  if (info[1].IsArray()) return WrapAll(info, at::split_with_sizes(t, Ints(info, 1), Int(info, 2)));
  return WrapAll(info, at::split(t, Int(info, 1), Int(info, 2)));
}
TN_EXPORT(chunk) { return WrapAll(info, at::chunk(T(info, 0), Int(info, 1), Int(info, 2))); }
TN_EXPORT(unbind) { return WrapAll(info, at::unbind(T(info, 0), Int(info, 1))); }
TN_EXPORT(narrow) { return Wrap(info, at::narrow(T(info, 0), Int(info, 1), Int(info, 2), Int(info, 3))); }
TN_EXPORT(select) { return Wrap(info, at::select(T(info, 0), Int(info, 1), Int(info, 2))); }
// slice(h, dim, start, end, step)
TN_EXPORT(slice) { return Wrap(info, at::slice(T(info, 0), Int(info, 1), OptInt(info, 2), OptInt(info, 3), Int(info, 4))); }
TN_EXPORT(indexSelect) { return Wrap(info, at::index_select(T(info, 0), Int(info, 1), T(info, 2))); }
TN_EXPORT(gather) { return Wrap(info, at::gather(T(info, 0), Int(info, 1), T(info, 2))); }
TN_EXPORT(scatter) { return Wrap(info, at::scatter(T(info, 0), Int(info, 1), T(info, 2), T(info, 3))); }
TN_EXPORT(scatterAdd) { return Wrap(info, at::scatter_add(T(info, 0), Int(info, 1), T(info, 2), T(info, 3))); }
TN_EXPORT(maskedFill) { return Wrap(info, at::masked_fill(T(info, 0), T(info, 1), S(info, 2))); }
TN_EXPORT(maskedSelect) { return Wrap(info, at::masked_select(T(info, 0), T(info, 1))); }
TN_EXPORT(nonzero) { return Wrap(info, at::nonzero(T(info, 0))); }
// index(h, [indexTensor per leading dim])
// indexTensors(h, [index handle | -1 for a full slice, ...]): PyTorch's advanced indexing (at::index)
TN_EXPORT(indexTensors) {
  if (info.Length() < 2 || !info[1].IsArray()) throw std::invalid_argument("indexTensors: expected an array of indices");
  Napi::Array a = info[1].As<Napi::Array>();
  auto& table = GetState(info.Env()).table;
  c10::List<c10::optional<at::Tensor>> list;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    double h = a.Get(k).As<Napi::Number>().DoubleValue();
    if (h == -1) {
      list.push_back(c10::nullopt);
      continue;
    }
    at::Tensor* t = table.TryGet(h);
    if (!t) ThrowDisposed(info.Env(), h);
    list.push_back(*t);
  }
  return Wrap(info, at::index(T(info, 0), list));
}
TN_EXPORT(tril) { return Wrap(info, at::tril(T(info, 0), Int(info, 1))); }
TN_EXPORT(triu) { return Wrap(info, at::triu(T(info, 0), Int(info, 1))); }
TN_EXPORT(diag) { return Wrap(info, at::diag(T(info, 0), Int(info, 1))); }
TN_EXPORT(diagonal) { return Wrap(info, at::diagonal(T(info, 0), Int(info, 1), Int(info, 2), Int(info, 3))); }
TN_EXPORT(trace) { return Wrap(info, at::trace(T(info, 0))); }
TN_EXPORT(flip) { return Wrap(info, at::flip(T(info, 0), Ints(info, 1))); }
TN_EXPORT(roll) { return Wrap(info, at::roll(T(info, 0), Ints(info, 1), Ints(info, 2))); }
TN_EXPORT(tensordot) { return Wrap(info, at::tensordot(T(info, 0), T(info, 1), Ints(info, 2), Ints(info, 3))); }
TN_EXPORT(einsum) { return Wrap(info, at::einsum(info[0].As<Napi::String>().Utf8Value(), Tensors(info, 1))); }
TN_EXPORT(pad) { return Wrap(info, at::constant_pad_nd(T(info, 0), Ints(info, 1), S(info, 2))); }
