// Functional layers, losses, sampling and linear algebra.
#include <cmath>
#include <limits>
#include <cstring>
#include <string>

#include "common.h"
#include "opcodes.h"

#include <ATen/CPUGeneratorImpl.h>
#include <mutex>

using namespace tn;

// ---------------------------------------------------------------- layers
// linear(x, w, b?)
TN_EXPORT(linear) { return Wrap(info, at::linear(T(info, 0), T(info, 1), OptT(info, 2))); }
// conv2d(x, w, b?, stride[], padding[], dilation[], groups)
TN_EXPORT(conv2d) {
  return Wrap(info, at::conv2d(T(info, 0), T(info, 1), OptT(info, 2), Ints(info, 3), Ints(info, 4), Ints(info, 5), Int(info, 6)));
}
// maxPool2d(x, kernel[], stride[], padding[], dilation[], ceilMode)
TN_EXPORT(maxPool2d) {
  return Wrap(info, at::max_pool2d(T(info, 0), Ints(info, 1), Ints(info, 2), Ints(info, 3), Ints(info, 4), Bool(info, 5)));
}
// avgPool2d(x, kernel[], stride[], padding[], ceilMode, countIncludePad)
TN_EXPORT(avgPool2d) {
  return Wrap(info, at::avg_pool2d(T(info, 0), Ints(info, 1), Ints(info, 2), Ints(info, 3), Bool(info, 4), Bool(info, 5, true)));
}
TN_EXPORT(adaptiveAvgPool2d) { return Wrap(info, at::adaptive_avg_pool2d(T(info, 0), Ints(info, 1))); }
// batchNorm(x, runningMean?, runningVar?, weight?, bias?, training, momentum, eps)
TN_EXPORT(batchNorm) {
  return Wrap(info, at::batch_norm(T(info, 0), OptT(info, 3), OptT(info, 4), OptT(info, 1), OptT(info, 2), Bool(info, 5),
                                   Num(info, 6), Num(info, 7), /*cudnn_enabled=*/true));
}
// layerNorm(x, normalizedShape[], weight?, bias?, eps)
TN_EXPORT(layerNorm) { return Wrap(info, at::layer_norm(T(info, 0), Ints(info, 1), OptT(info, 2), OptT(info, 3), Num(info, 4))); }
TN_EXPORT(dropout) { return Wrap(info, at::dropout(T(info, 0), Num(info, 1), Bool(info, 2))); }
// embedding(weight, indices, paddingIdx?): the row paddingIdx (when given) gets no gradient, as nn.Embedding's
TN_EXPORT(embedding) {
  c10::optional<int64_t> pad = OptInt(info, 2);
  return Wrap(info, at::embedding(T(info, 0), T(info, 1), pad.has_value() ? *pad : -1));
}
// sdpa(q, k, v, mask?, dropoutP, training, isCausal, scale (NaN: 1/sqrt(E)), needWeights) -> [out, weights?]
// softmax(q k^T scale + mask) v over the last two dims, as torch.nn.functional.scaled_dot_product_attention's math
// path: a boolean mask says which entries take part (true), a floating one is added; isCausal masks j > i (top
// left aligned). One native call for what would be ten from JavaScript.
TN_EXPORT(sdpa) {
  const at::Tensor& q = T(info, 0);
  const at::Tensor& k = T(info, 1);
  const at::Tensor& v = T(info, 2);
  at::Tensor mask = OptT(info, 3);
  double p = Num(info, 4);
  bool training = Bool(info, 5);
  bool causal = Bool(info, 6);
  double scale = Num(info, 7);
  bool need = Bool(info, 8);
  if (q.dim() < 2 || k.dim() < 2 || v.dim() < 2)
    throw std::invalid_argument("scaledDotProductAttention: query, key and value must have at least 2 dimensions");
  at::Tensor attn = std::isnan(scale) ? at::matmul(q / std::sqrt(static_cast<double>(q.size(-1))), k.transpose(-2, -1))
                                      : at::matmul(q * scale, k.transpose(-2, -1));
  // The masks go into the fresh scores in place (matmul's backward needs its inputs, not its output): one pass over
  // the (*, L, S) scores and nothing saved for backward, where an out-of-place masked_fill costs a pass forward and
  // one backward.
  const double inf = std::numeric_limits<double>::infinity();
  if (causal) attn.add_(at::full({q.size(-2), k.size(-2)}, -inf, attn.options()).triu(1));
  if (mask.defined()) {
    const bool fits = at::infer_size(attn.sizes(), mask.sizes()) == attn.sizes();
    if (mask.scalar_type() == at::kBool) {
      if (fits) attn.masked_fill_(mask.logical_not(), -inf);
      else attn = attn.masked_fill(mask.logical_not(), -inf);
    } else if (fits) {
      attn.add_(mask);
    } else {
      attn = attn + mask;
    }
  }
  attn = at::softmax(attn, -1);
  if (p > 0 && training) attn = at::dropout(attn, p, true);
  at::Tensor out = at::matmul(attn, v);
  if (need) return WrapAll(info, {out, attn});
  return WrapAll(info, {out});
}
// unfold(x, kernel[], dilation[], padding[], stride[]) -> (N, C*kh*kw, L), as torch.nn.functional.unfold
TN_EXPORT(unfold) { return Wrap(info, at::im2col(T(info, 0), Ints(info, 1), Ints(info, 2), Ints(info, 3), Ints(info, 4))); }
// interpolate(x, size[], mode (a code of the interpolate table), alignCorners)
TN_EXPORT(interpolate) {
  at::Tensor& x = T(info, 0);
  std::vector<int64_t> size = Ints(info, 1);
  const ops::InterpolateMode mode = ops::OpCode<ops::InterpolateMode>(Int(info, 2));
  bool ac = Bool(info, 3);
  switch (mode) {
    case ops::InterpolateMode::Nearest: return Wrap(info, at::upsample_nearest2d(x, size, c10::nullopt, c10::nullopt));
    case ops::InterpolateMode::Bilinear: return Wrap(info, at::upsample_bilinear2d(x, size, ac, c10::nullopt, c10::nullopt));
    case ops::InterpolateMode::BilinearAntialias:
      return Wrap(info, at::_upsample_bilinear2d_aa(x, size, ac, c10::nullopt, c10::nullopt));
  }
  throw std::invalid_argument("unknown interpolate mode");  // unreachable: OpCode checked the code
}

// ---------------------------------------------------------------- losses
// crossEntropy(x, target, weight?, reduction, ignoreIndex, labelSmoothing)
TN_EXPORT(crossEntropy) {
  return Wrap(info, at::cross_entropy_loss(T(info, 0), T(info, 1), OptT(info, 2), Reduction(info, 3), Int(info, 4), Num(info, 5)));
}
// nllLoss(x, target, weight?, reduction, ignoreIndex)
TN_EXPORT(nllLoss) { return Wrap(info, at::nll_loss_nd(T(info, 0), T(info, 1), OptT(info, 2), Reduction(info, 3), Int(info, 4))); }
// bceWithLogits(x, target, weight?, posWeight?, reduction)
TN_EXPORT(bceWithLogits) {
  return Wrap(info, at::binary_cross_entropy_with_logits(T(info, 0), T(info, 1), OptT(info, 2), OptT(info, 3), Reduction(info, 4)));
}
TN_EXPORT(bce) { return Wrap(info, at::binary_cross_entropy(T(info, 0), T(info, 1), OptT(info, 2), Reduction(info, 3))); }
TN_EXPORT(mseLoss) { return Wrap(info, at::mse_loss(T(info, 0), T(info, 1), Reduction(info, 2))); }
TN_EXPORT(l1Loss) { return Wrap(info, at::l1_loss(T(info, 0), T(info, 1), Reduction(info, 2))); }
TN_EXPORT(smoothL1Loss) { return Wrap(info, at::smooth_l1_loss(T(info, 0), T(info, 1), Reduction(info, 2), Num(info, 3))); }

// ---------------------------------------------------------------- sampling
TN_EXPORT(bernoulli) {
  if (info.Length() > 1 && info[1].IsNumber()) return Wrap(info, at::bernoulli(T(info, 0), Num(info, 1)));
  return Wrap(info, at::bernoulli(T(info, 0)));
}
TN_EXPORT(multinomial) { return Wrap(info, at::multinomial(T(info, 0), Int(info, 1), Bool(info, 2))); }
// normal(mean, std): tensor or number each
TN_EXPORT(normal) {
  bool mt = !info[2].IsNumber(), st = !info[3].IsNumber();
  (void)mt;
  if (Bool(info, 0) && Bool(info, 1)) return Wrap(info, at::normal(T(info, 2), T(info, 3)));
  if (Bool(info, 0)) return Wrap(info, at::normal(T(info, 2), Num(info, 3)));
  (void)st;
  return Wrap(info, at::normal(Num(info, 2), T(info, 3)));
}
TN_EXPORT(uniform_) {
  T(info, 0).uniform_(Num(info, 1), Num(info, 2));
  return info.Env().Undefined();
}
TN_EXPORT(normal_) {
  T(info, 0).normal_(Num(info, 1), Num(info, 2));
  return info.Env().Undefined();
}
TN_EXPORT(getRngState) {
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return Wrap(info, gen.get_state());
}
namespace {
// The byte layout of libtorch's CPU generator state (ATen/CPUGeneratorImpl.cpp, CPUGeneratorImplStateLegacy and
// CPUGeneratorImplState, the same in 1.13 and 2.x): set_state() copies it in without checking the Mersenne Twister's
// position, and random() then reads state[next++] for `left - 1` calls before it regenerates: a crafted `left` or
// `next` makes it read (and, through next_state, write) past the 624 words. Everything set_state trusts is checked here.
constexpr size_t kMtWords = 624;
struct LegacyRngState {
  uint64_t the_initial_seed;
  int32_t left;
  int32_t seeded;
  uint64_t next;
  uint64_t state[kMtWords];
  double normal_x, normal_y, normal_rho;
  int32_t normal_is_valid;
};
struct RngState {
  LegacyRngState legacy;
  float next_float_normal_sample;
  bool is_next_float_normal_sample_valid;
};

// "" when `t` is a CPU generator state set_state() can take safely, else why not.
std::string CheckRngState(const at::Tensor& t) {
  if (t.scalar_type() != at::kByte || t.dim() != 1 || !t.device().is_cpu())
    return "the RNG state must be a CPU uint8 vector (torch.get_rng_state())";
  size_t n = static_cast<size_t>(t.numel());
  if (n != sizeof(LegacyRngState) && n != sizeof(RngState))
    return "the RNG state has " + std::to_string(n) + " bytes, not " + std::to_string(sizeof(RngState)) + " (or the legacy " +
           std::to_string(sizeof(LegacyRngState)) + ")";
  RngState s{};
  at::Tensor c = t.contiguous();
  std::memcpy(&s, c.data_ptr<uint8_t>(), n);
  const LegacyRngState& l = s.legacy;
  // After each draw left + next == 625 (a fresh seed has left 1, and the next draw regenerates the state).
  if (l.left < 1 || l.left > static_cast<int32_t>(kMtWords) || l.next > kMtWords || (l.left != 1 && l.left + l.next != kMtWords + 1))
    return "the RNG state's Mersenne Twister position is invalid (left " + std::to_string(l.left) + ", next " + std::to_string(l.next) +
           "): it would read past the generator's 624 words";
  if (l.normal_is_valid && !(std::isfinite(l.normal_x) && std::isfinite(l.normal_rho)))
    return "the RNG state's cached normal sample is not finite";
  if (n == sizeof(RngState) && s.is_next_float_normal_sample_valid && !std::isfinite(s.next_float_normal_sample))
    return "the RNG state's cached float normal sample is not finite";
  return "";
}
}  // namespace

// checkRngState(t) -> "" or why libtorch's CPU generator must not take it
TN_EXPORT(checkRngState) { return Napi::String::New(info.Env(), CheckRngState(T(info, 0))); }

TN_EXPORT(setRngState) {
  const at::Tensor& t = T(info, 0);
  std::string bad = CheckRngState(t);
  if (!bad.empty()) throw Napi::RangeError::New(info.Env(), bad);
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(t);
  return info.Env().Undefined();
}

// ---------------------------------------------------------------- linear algebra
TN_EXPORT(cholesky) { return Wrap(info, at::linalg_cholesky(T(info, 0), Bool(info, 1))); }
// choleskyEx(A) -> [L, info]: info > 0 marks the leading minor that is not positive definite
TN_EXPORT(choleskyEx) {
  auto r = at::linalg_cholesky_ex(T(info, 0), Bool(info, 1), false);
  return WrapAll(info, {std::get<0>(r), std::get<1>(r)});
}
TN_EXPORT(choleskyInverse) { return Wrap(info, at::cholesky_inverse(T(info, 0), Bool(info, 1))); }
TN_EXPORT(choleskySolve) { return Wrap(info, at::cholesky_solve(T(info, 0), T(info, 1), Bool(info, 2))); }
TN_EXPORT(inv) { return Wrap(info, at::linalg_inv(T(info, 0))); }
TN_EXPORT(solve) { return Wrap(info, at::linalg_solve(T(info, 0), T(info, 1))); }
TN_EXPORT(eigh) {
  auto r = at::linalg_eigh(T(info, 0), Bool(info, 1) ? "U" : "L");
  return WrapAll(info, {std::get<0>(r), std::get<1>(r)});
}
TN_EXPORT(eigvalsh) { return Wrap(info, at::linalg_eigvalsh(T(info, 0), Bool(info, 1) ? "U" : "L")); }
TN_EXPORT(svd) {
  auto r = at::linalg_svd(T(info, 0), Bool(info, 1));
  return WrapAll(info, {std::get<0>(r), std::get<1>(r), std::get<2>(r)});
}
TN_EXPORT(qr) {
  auto r = at::linalg_qr(T(info, 0), Bool(info, 1) ? "complete" : "reduced");
  return WrapAll(info, {std::get<0>(r), std::get<1>(r)});
}
TN_EXPORT(det) { return Wrap(info, at::linalg_det(T(info, 0))); }
TN_EXPORT(slogdet) {
  auto r = at::linalg_slogdet(T(info, 0));
  return WrapAll(info, {std::get<0>(r), std::get<1>(r)});
}
TN_EXPORT(matrixNorm) { return Wrap(info, at::linalg_matrix_norm(T(info, 0), info[1].As<Napi::String>().Utf8Value())); }
