// Element-wise, reduction, shape and indexing ops. Families of ops share one entry point and an op code (the
// code lists are exported as `opcodes` so lib/ops.ts never hard-codes a number).
#include <limits>

#include "common.h"

using namespace tn;

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

const char* kUnary[] = {"neg", "abs", "exp", "log", "sqrt", "rsqrt", "sign", "relu", "sigmoid", "tanh",
                        "gelu", "sin", "cos", "log1p", "expm1", "square", "reciprocal", "floor", "ceil", "round",
                        "trunc", "logicalNot", "isnan", "isfinite", "isinf", "silu", "erf", "log2", "log10",
                        "softplus", "logSigmoid", "bitwiseNot", "frac", "tan", "asin", "acos", "atan", "sinh", "cosh",
                        "mish", "selu"};
at::Tensor Unary(int code, const at::Tensor& t) {
  switch (code) {
    case 0: return at::neg(t);
    case 1: return at::abs(t);
    case 2: return at::exp(t);
    case 3: return at::log(t);
    case 4: return at::sqrt(t);
    case 5: return at::rsqrt(t);
    case 6: return at::sign(t);
    case 7: return at::relu(t);
    case 8: return at::sigmoid(t);
    case 9: return at::tanh(t);
    case 10: return at::gelu(t);
    case 11: return at::sin(t);
    case 12: return at::cos(t);
    case 13: return at::log1p(t);
    case 14: return at::expm1(t);
    case 15: return at::square(t);
    case 16: return at::reciprocal(t);
    case 17: return at::floor(t);
    case 18: return at::ceil(t);
    case 19: return at::round(t);
    case 20: return at::trunc(t);
    case 21: return at::logical_not(t);
    case 22: return at::isnan(t);
    case 23: return at::isfinite(t);
    case 24: return at::isinf(t);
    case 25: return at::silu(t);
    case 26: return at::erf(t);
    case 27: return at::log2(t);
    case 28: return at::log10(t);
    case 29: return at::softplus(t);
    case 30: return at::log_sigmoid(t);
    case 31: return at::bitwise_not(t);
    case 32: return at::frac(t);
    case 33: return at::tan(t);
    case 34: return at::asin(t);
    case 35: return at::acos(t);
    case 36: return at::atan(t);
    case 37: return at::sinh(t);
    case 38: return at::cosh(t);
    case 39: return at::mish(t);
    case 40: return at::selu(t);
  }
  throw std::invalid_argument("unknown unary op " + std::to_string(code));
}

const char* kUnaryInplace[] = {"zero_", "neg_", "abs_", "exp_", "log_", "sqrt_", "relu_", "sigmoid_", "tanh_",
                               "sign_", "reciprocal_", "square_", "floor_", "round_"};
void UnaryInplace(int code, at::Tensor& t) {
  switch (code) {
    case 0: t.zero_(); return;
    case 1: t.neg_(); return;
    case 2: t.abs_(); return;
    case 3: t.exp_(); return;
    case 4: t.log_(); return;
    case 5: t.sqrt_(); return;
    case 6: t.relu_(); return;
    case 7: t.sigmoid_(); return;
    case 8: t.tanh_(); return;
    case 9: t.sign_(); return;
    case 10: t.reciprocal_(); return;
    case 11: t.square_(); return;
    case 12: t.floor_(); return;
    case 13: t.round_(); return;
  }
  throw std::invalid_argument("unknown in-place unary op " + std::to_string(code));
}

constexpr const char* kBinary[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt",
                         "le", "gt", "ge", "atan2", "remainder", "fmod", "logicalAnd", "logicalOr", "logicalXor",
                         "floorDivide", "matmul", "mm", "bmm", "outer", "dot", "mv", "rsub", "rdiv", "rpow",
                         "bitwiseAnd", "bitwiseOr", "bitwiseXor", "xlogy", "hypot", "copysign", "kron"};
at::Tensor Binary(int code, const at::Tensor& a, const at::Tensor& b, const at::Scalar& alpha) {
  switch (code) {
    case 0: return at::add(a, b, alpha);
    case 1: return at::sub(a, b, alpha);
    case 2: return at::mul(a, b);
    case 3: return at::div(a, b);
    case 4: return at::pow(a, b);
    case 5: return at::maximum(a, b);
    case 6: return at::minimum(a, b);
    case 7: return at::eq(a, b);
    case 8: return at::ne(a, b);
    case 9: return at::lt(a, b);
    case 10: return at::le(a, b);
    case 11: return at::gt(a, b);
    case 12: return at::ge(a, b);
    case 13: return at::atan2(a, b);
    case 14: return at::remainder(a, b);
    case 15: return at::fmod(a, b);
    case 16: return at::logical_and(a, b);
    case 17: return at::logical_or(a, b);
    case 18: return at::logical_xor(a, b);
    case 19: return at::div(a, b, "floor");
    case 20: return at::matmul(a, b);
    case 21: return at::mm(a, b);
    case 22: return at::bmm(a, b);
    case 23: return at::outer(a, b);
    case 24: return at::dot(a, b);
    case 25: return at::mv(a, b);
    case 26: return at::sub(b, a, alpha);
    case 27: return at::div(b, a);
    case 28: return at::pow(b, a);
    case 29: return at::bitwise_and(a, b);
    case 30: return at::bitwise_or(a, b);
    case 31: return at::bitwise_xor(a, b);
    case 32: return at::xlogy(a, b);
    case 33: return at::hypot(a, b);
    case 34: return at::copysign(a, b);
    case 35: return at::kron(a, b);
  }
  throw std::invalid_argument("unknown binary op " + std::to_string(code));
}

// The name of a binary op code for an error message; a raw native call may pass any number.
std::string BinaryName(int code) {
  constexpr int n = static_cast<int>(sizeof(kBinary) / sizeof(kBinary[0]));
  return code >= 0 && code < n ? std::string(kBinary[code]) : "code " + std::to_string(code);
}

// A scalar operand as Python passes one to add/sub/mul/div: a 0-dim "wrapped number" tensor, which takes part in
// type promotion like a Python number and gives the Tensor overload's grad_fn (AddBackward0, MulBackward0, ...).
at::Tensor Wrapped(const at::Scalar& s, const at::Tensor& like) {
  at::Tensor t = c10::scalar_to_tensor(s, like.device());
  t.unsafeGetTensorImpl()->set_wrapped_number(true);
  return t;
}

at::Tensor BinaryScalar(int code, const at::Tensor& a, const at::Scalar& s, const at::Scalar& alpha) {
  switch (code) {
    case 0: return at::add(a, Wrapped(s, a), alpha);
    case 1: return at::sub(a, Wrapped(s, a), alpha);
    case 2: return at::mul(a, Wrapped(s, a));
    case 3: return at::div(a, Wrapped(s, a));
    case 4: return at::pow(a, s);
    case 5: return at::clamp_min(a, s);
    case 6: return at::clamp_max(a, s);
    case 7: return at::eq(a, s);
    case 8: return at::ne(a, s);
    case 9: return at::lt(a, s);
    case 10: return at::le(a, s);
    case 11: return at::gt(a, s);
    case 12: return at::ge(a, s);
    case 14: return at::remainder(a, s);
    case 15: return at::fmod(a, s);
    // div.Scalar_mode wraps the scalar like a Python number: int64 // 2.5 is float32, as in PyTorch
    case 19: return at::div(a, s, "floor");
    case 26: return at::rsub(a, s, alpha);
    case 27: return at::mul(at::reciprocal(a), s);
    case 28: return at::pow(s, a);
    case 29: return at::bitwise_and(a, s);
    case 30: return at::bitwise_or(a, s);
    case 31: return at::bitwise_xor(a, s);
    case 32: return at::xlogy(a, s);
  }
  throw std::invalid_argument("op " + BinaryName(code) + " does not take a scalar");
}

void BinaryInplace(int code, at::Tensor& a, const at::Tensor& b, const at::Scalar& alpha) {
  switch (code) {
    case 0: a.add_(b, alpha); return;
    case 1: a.sub_(b, alpha); return;
    case 2: a.mul_(b); return;
    case 3: a.div_(b); return;
    case 4: a.pow_(b); return;
    case 5: at::maximum_out(a, a, b); return;
    case 6: at::minimum_out(a, a, b); return;
  }
  throw std::invalid_argument("op " + BinaryName(code) + " has no in-place form");
}

void BinaryScalarInplace(int code, at::Tensor& a, const at::Scalar& s, const at::Scalar& alpha) {
  switch (code) {
    case 0: a.add_(s, alpha); return;
    case 1: a.sub_(s, alpha); return;
    case 2: a.mul_(s); return;
    case 3: a.div_(s); return;
    case 4: a.pow_(s); return;
    case 5: a.clamp_min_(s); return;
    case 6: a.clamp_max_(s); return;
  }
  throw std::invalid_argument("op " + BinaryName(code) + " has no in-place scalar form");
}

std::vector<int64_t> AllDims(const at::Tensor& t) {
  std::vector<int64_t> d(t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) d[i] = i;
  return d;
}

const char* kReduce[] = {"sum", "mean", "amax", "amin", "prod", "all", "any", "logsumexp", "nansum", "countNonzero"};
at::Tensor Reduce(int code, const at::Tensor& t, const std::vector<int64_t>& dims, bool all, bool keepdim) {
  switch (code) {
    case 0: return all ? (keepdim ? at::sum(t, AllDims(t), true) : at::sum(t)) : at::sum(t, dims, keepdim);
    case 1: return all ? (keepdim ? at::mean(t, AllDims(t), true) : at::mean(t)) : at::mean(t, dims, keepdim);
    case 2: return at::amax(t, all ? std::vector<int64_t>{} : dims, keepdim);
    case 3: return at::amin(t, all ? std::vector<int64_t>{} : dims, keepdim);
    case 4:
      if (all) return at::prod(t);
      if (dims.size() != 1) throw std::invalid_argument("prod takes a single dim");
      return at::prod(t, dims[0], keepdim);
    case 5:
      if (all) return at::all(t);
      if (dims.size() != 1) throw std::invalid_argument("all takes a single dim");
      return at::all(t, dims[0], keepdim);
    case 6:
      if (all) return at::any(t);
      if (dims.size() != 1) throw std::invalid_argument("any takes a single dim");
      return at::any(t, dims[0], keepdim);
    case 7: {
      return at::logsumexp(t, all ? AllDims(t) : dims, keepdim);
    }
    case 8: return all ? at::nansum(t) : at::nansum(t, dims, keepdim);
    case 9: return all ? at::count_nonzero(t) : at::count_nonzero(t, dims);
  }
  throw std::invalid_argument("unknown reduction " + std::to_string(code));
}

template <size_t N>
Napi::Object CodeMap(Napi::Env env, const char* const (&names)[N]) {
  Napi::Object o = Napi::Object::New(env);
  for (size_t i = 0; i < N; ++i) o.Set(names[i], Napi::Number::New(env, static_cast<double>(i)));
  return o;
}

}  // namespace

TN_EXPORT(opcodes) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("unary", CodeMap(info.Env(), kUnary));
  o.Set("unaryInplace", CodeMap(info.Env(), kUnaryInplace));
  o.Set("binary", CodeMap(info.Env(), kBinary));
  o.Set("reduce", CodeMap(info.Env(), kReduce));
  return o;
}

// ---------------------------------------------------------------- element-wise families
TN_EXPORT(unary) { return Wrap(info, Unary(static_cast<int>(Int(info, 0)), T(info, 1))); }
TN_EXPORT(unary_) {
  UnaryInplace(static_cast<int>(Int(info, 0)), T(info, 1));
  return info.Env().Undefined();
}
// Integer floor division, remainder and fmod divide with the CPU's instruction, which traps (SIGFPE, the process
// dies; Python PyTorch dies the same way) on the type's minimum divided by -1. Refuse that case first.
constexpr bool SameName(const char* a, const char* b) { return *a == *b && (*a == '\0' || SameName(a + 1, b + 1)); }
enum BinaryCode : int { kRemainder = 14, kFmod = 15, kFloorDivide = 19 };
static_assert(SameName(kBinary[kRemainder], "remainder") && SameName(kBinary[kFmod], "fmod") &&
                  SameName(kBinary[kFloorDivide], "floorDivide"),
              "BinaryCode out of step with kBinary");
bool IsIntegerDivision(int code) { return code == kRemainder || code == kFmod || code == kFloorDivide; }

int64_t MinOf(at::ScalarType t) {
  switch (t) {
    case at::kChar: return std::numeric_limits<int8_t>::min();
    case at::kShort: return std::numeric_limits<int16_t>::min();
    case at::kInt: return std::numeric_limits<int32_t>::min();
    case at::kLong: return std::numeric_limits<int64_t>::min();
    default: return 0;  // unsigned or bool: no negative divisor
  }
}

void CheckIntegerDivision(int code, const at::Tensor& a, const at::Tensor& b, at::ScalarType rt) {
  if (!IsIntegerDivision(code) || !at::isIntegralType(rt, /*includeBool=*/false) || MinOf(rt) == 0) return;
  at::NoGradGuard no_grad;
  const int64_t lo = MinOf(rt);
  if ((a.to(rt).eq(lo) & b.to(rt).eq(-1)).any().item<bool>())
    throw std::overflow_error(std::string(kBinary[code]) + ": integer overflow: the smallest " +
                              c10::toString(rt) + " value (" + std::to_string(lo) +
                              ") divided by -1 does not fit in " + c10::toString(rt));
}

void CheckIntegerDivision(int code, const at::Tensor& a, const at::Scalar& s, at::ScalarType rt) {
  if (!IsIntegerDivision(code) || !s.isIntegral(false) || s.toLong() != -1) return;
  CheckIntegerDivision(code, a, at::scalar_tensor(s, at::TensorOptions().dtype(at::kLong)), rt);
}

// binary(code, a, b, alpha?)
TN_EXPORT(binary) {
  at::Scalar alpha = info.Length() > 3 && info[3].IsNumber() ? S(info, 3) : at::Scalar(1);
  const int code = static_cast<int>(Int(info, 0));
  const at::Tensor& a = T(info, 1);
  const at::Tensor& b = T(info, 2);
  if (IsIntegerDivision(code)) CheckIntegerDivision(code, a, b, at::result_type(a, b));
  return Wrap(info, Binary(code, a, b, alpha));
}
TN_EXPORT(binaryScalar) {
  at::Scalar alpha = info.Length() > 3 && info[3].IsNumber() ? S(info, 3) : at::Scalar(1);
  const int code = static_cast<int>(Int(info, 0));
  const at::Tensor& a = T(info, 1);
  const at::Scalar s = S(info, 2);
  if (IsIntegerDivision(code)) CheckIntegerDivision(code, a, s, at::result_type(a, s));
  return Wrap(info, BinaryScalar(code, a, s, alpha));
}
TN_EXPORT(binary_) {
  at::Scalar alpha = info.Length() > 3 && info[3].IsNumber() ? S(info, 3) : at::Scalar(1);
  const int code = static_cast<int>(Int(info, 0));
  at::Tensor& a = T(info, 1);
  const at::Tensor& b = T(info, 2);
  if (IsIntegerDivision(code)) CheckIntegerDivision(code, a, b, a.scalar_type());
  BinaryInplace(code, a, b, alpha);
  return info.Env().Undefined();
}
TN_EXPORT(binaryScalar_) {
  at::Scalar alpha = info.Length() > 3 && info[3].IsNumber() ? S(info, 3) : at::Scalar(1);
  const int code = static_cast<int>(Int(info, 0));
  at::Tensor& a = T(info, 1);
  const at::Scalar s = S(info, 2);
  if (IsIntegerDivision(code)) CheckIntegerDivision(code, a, s, a.scalar_type());
  BinaryScalarInplace(code, a, s, alpha);
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
  return Wrap(info, Reduce(static_cast<int>(Int(info, 0)), T(info, 1), Ints(info, 2), all, Bool(info, 3)));
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
