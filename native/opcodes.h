// The op tables of the native boundary. Each family is ONE X-macro list, X(Enumerator, "jsName"), that generates
// both the enum the dispatch switches use (native/ops.cc, tensor.cc, addon.cc) and the name -> code map `opcodes()`
// exports. An op's code is its position in its list. lib/opcodes.ts holds the same tables as TypeScript constants,
// and lib/native.ts checks at load that they are equal, name for name and code for code, so a list edited on one
// side only fails at start-up with the entries that differ rather than running the wrong op.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

// Tensor -> Tensor (native `unary`).
#define TN_UNARY_OPS(X)                                                                                          \
  X(Neg, "neg") X(Abs, "abs") X(Exp, "exp") X(Log, "log") X(Sqrt, "sqrt") X(Rsqrt, "rsqrt") X(Sign, "sign")       \
  X(Relu, "relu") X(Sigmoid, "sigmoid") X(Tanh, "tanh") X(Gelu, "gelu") X(Sin, "sin") X(Cos, "cos")               \
  X(Log1p, "log1p") X(Expm1, "expm1") X(Square, "square") X(Reciprocal, "reciprocal") X(Floor, "floor")           \
  X(Ceil, "ceil") X(Round, "round") X(Trunc, "trunc") X(LogicalNot, "logicalNot") X(Isnan, "isnan")              \
  X(Isfinite, "isfinite") X(Isinf, "isinf") X(Silu, "silu") X(Erf, "erf") X(Log2, "log2") X(Log10, "log10")       \
  X(Softplus, "softplus") X(LogSigmoid, "logSigmoid") X(BitwiseNot, "bitwiseNot") X(Frac, "frac") X(Tan, "tan")   \
  X(Asin, "asin") X(Acos, "acos") X(Atan, "atan") X(Sinh, "sinh") X(Cosh, "cosh") X(Mish, "mish") X(Selu, "selu")

// In place on a tensor (native `unary_`).
#define TN_UNARY_INPLACE_OPS(X)                                                                                  \
  X(Zero, "zero_") X(Neg, "neg_") X(Abs, "abs_") X(Exp, "exp_") X(Log, "log_") X(Sqrt, "sqrt_") X(Relu, "relu_")  \
  X(Sigmoid, "sigmoid_") X(Tanh, "tanh_") X(Sign, "sign_") X(Reciprocal, "reciprocal_") X(Square, "square_")      \
  X(Floor, "floor_") X(Round, "round_")

// Two operands (native `binary`, `binaryScalar`, `binary_`, `binaryScalar_`: the scalar and in-place forms take
// the codes of this one list, and refuse the ops they do not have by name). Rsub/Rdiv/Rpow swap the operands.
#define TN_BINARY_OPS(X)                                                                                         \
  X(Add, "add") X(Sub, "sub") X(Mul, "mul") X(Div, "div") X(Pow, "pow") X(Maximum, "maximum")                    \
  X(Minimum, "minimum") X(Eq, "eq") X(Ne, "ne") X(Lt, "lt") X(Le, "le") X(Gt, "gt") X(Ge, "ge") X(Atan2, "atan2") \
  X(Remainder, "remainder") X(Fmod, "fmod") X(LogicalAnd, "logicalAnd") X(LogicalOr, "logicalOr")                \
  X(LogicalXor, "logicalXor") X(FloorDivide, "floorDivide") X(Matmul, "matmul") X(Mm, "mm") X(Bmm, "bmm")         \
  X(Outer, "outer") X(Dot, "dot") X(Mv, "mv") X(Rsub, "rsub") X(Rdiv, "rdiv") X(Rpow, "rpow")                     \
  X(BitwiseAnd, "bitwiseAnd") X(BitwiseOr, "bitwiseOr") X(BitwiseXor, "bitwiseXor") X(Xlogy, "xlogy")             \
  X(Hypot, "hypot") X(Copysign, "copysign") X(Kron, "kron")

// Reductions over dims or the whole tensor (native `reduce`).
#define TN_REDUCE_OPS(X)                                                                                         \
  X(Sum, "sum") X(Mean, "mean") X(Amax, "amax") X(Amin, "amin") X(Prod, "prod") X(All, "all") X(Any, "any")       \
  X(Logsumexp, "logsumexp") X(Nansum, "nansum") X(CountNonzero, "countNonzero")

// Creation by shape (native `factory`).
#define TN_FACTORY_KINDS(X)                                                                                      \
  X(Zeros, "zeros") X(Ones, "ones") X(Empty, "empty") X(Full, "full") X(Rand, "rand") X(Randn, "randn")           \
  X(Randint, "randint") X(Randperm, "randperm") X(Eye, "eye")

// A loss's reduction (crossEntropy, nllLoss, bce, bceWithLogits, mseLoss, l1Loss, smoothL1Loss); the order is
// at::Reduction's, which the native side does not rely on.
#define TN_LOSS_REDUCTIONS(X) X(None, "none") X(Mean, "mean") X(Sum, "sum")

// nn.functional.interpolate's modes (native `interpolate`); antialias is its own mode, as libtorch's own kernel.
#define TN_INTERPOLATE_MODES(X) X(Nearest, "nearest") X(Bilinear, "bilinear") X(BilinearAntialias, "bilinearAntialias")

// How TNT and KFAC invert their factors (native `tntInverses`), and how Shampoo takes its inverse roots
// (native `shampooRoots`).
#define TN_INVERSE_METHODS(X) X(Cholesky, "cholesky") X(Lu, "lu")
#define TN_ROOT_METHODS(X) X(Eigh, "eigh") X(Newton, "newton")

// The families, as they appear in `opcodes()` and lib/opcodes.ts: X(Enum, LIST, "family").
#define TN_OP_FAMILIES(X)                                \
  X(UnaryOp, TN_UNARY_OPS, "unary")                      \
  X(UnaryInplaceOp, TN_UNARY_INPLACE_OPS, "unaryInplace") \
  X(BinaryOp, TN_BINARY_OPS, "binary")                   \
  X(ReduceOp, TN_REDUCE_OPS, "reduce")                   \
  X(FactoryKind, TN_FACTORY_KINDS, "factory")            \
  X(LossReduction, TN_LOSS_REDUCTIONS, "reduction")      \
  X(InterpolateMode, TN_INTERPOLATE_MODES, "interpolate") \
  X(InverseMethod, TN_INVERSE_METHODS, "inverseMethod")   \
  X(RootMethod, TN_ROOT_METHODS, "rootMethod")

namespace tn::ops {

template <typename E>
struct OpTable;  // kFamily, kNames[], kCount for each family enum

#define TN_OP_ENUMERATOR(id, name) id,
#define TN_OP_NAME(id, name) name,
#define TN_OP_DEFINE_FAMILY(Enum, LIST, family)                                 \
  enum class Enum : int { LIST(TN_OP_ENUMERATOR) };                             \
  template <>                                                                   \
  struct OpTable<Enum> {                                                        \
    static constexpr const char* kFamily = family;                              \
    static constexpr const char* kNames[] = {LIST(TN_OP_NAME)};                 \
    static constexpr int kCount = static_cast<int>(sizeof(kNames) / sizeof(kNames[0])); \
  };
TN_OP_FAMILIES(TN_OP_DEFINE_FAMILY)
#undef TN_OP_DEFINE_FAMILY
#undef TN_OP_NAME
#undef TN_OP_ENUMERATOR

// The JS name of an op, for error messages.
template <typename E>
const char* OpName(E op) {
  return OpTable<E>::kNames[static_cast<int>(op)];
}

// A code from JavaScript as its family's enum; a number outside the table (a raw native call) is an error naming
// the family, never a switch that falls through.
template <typename E>
E OpCode(int64_t code) {
  if (code < 0 || code >= OpTable<E>::kCount)
    throw std::invalid_argument(std::string("unknown ") + OpTable<E>::kFamily + " code " + std::to_string(code));
  return static_cast<E>(code);
}

}  // namespace tn::ops
