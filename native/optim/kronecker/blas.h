// The BLAS kernels of the packed Kronecker factors (syrk for a statistics update into a triangle, symm for a product
// with a symmetric matrix read from a triangle), looked up in the process: the BLAS libtorch itself was linked
// against. Without one, callers fall back to ATen (BlasFor is false).
#pragma once

#include <dlfcn.h>

#include <cstdint>
#include <limits>
#include <stdexcept>

#include "../optim_common.h"

namespace tn::optim::kronecker {

// ---- BLAS entry points, looked up in the process (the BLAS libtorch itself was linked against) ----
enum CblasOrder { kRowMajor = 101 };
enum CblasUplo { kUpper = 121, kLower = 122 };
enum CblasTranspose { kNoTrans = 111, kTrans = 112 };
enum CblasSide { kLeft = 141, kRight = 142 };
using SsyrkFn = void (*)(int, int, int, int, int, float, const float*, int, float, float*, int);
using DsyrkFn = void (*)(int, int, int, int, int, double, const double*, int, double, double*, int);
using SsymmFn = void (*)(int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
using DsymmFn = void (*)(int, int, int, int, int, double, const double*, int, const double*, int, double, double*, int);

struct Blas {
  SsyrkFn ssyrk = nullptr;
  DsyrkFn dsyrk = nullptr;
  SsymmFn ssymm = nullptr;
  DsymmFn dsymm = nullptr;
  bool ok() const { return ssyrk && dsyrk && ssymm && dsymm; }
};

inline const Blas& GetBlas() {
  static const Blas blas = [] {
    Blas b;
    b.ssyrk = reinterpret_cast<SsyrkFn>(dlsym(RTLD_DEFAULT, "cblas_ssyrk"));
    b.dsyrk = reinterpret_cast<DsyrkFn>(dlsym(RTLD_DEFAULT, "cblas_dsyrk"));
    b.ssymm = reinterpret_cast<SsymmFn>(dlsym(RTLD_DEFAULT, "cblas_ssymm"));
    b.dsymm = reinterpret_cast<DsymmFn>(dlsym(RTLD_DEFAULT, "cblas_dsymm"));
    return b;
  }();
  return blas;
}

// Whether this tensor's packed kernels can go through the BLAS directly.
inline bool BlasFor(const at::Tensor& t, bool want) {
  return want && t.device().is_cpu() && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble) && GetBlas().ok();
}

inline int BlasDim(int64_t v) {
  if (v > std::numeric_limits<int>::max()) throw std::invalid_argument("a factor dimension is too large for the BLAS");
  return static_cast<int>(v);
}

// P's lower triangle (diagonal included) <- beta P + alpha M M^T (M: d x n) by ?syrk. M is any strided view: a
// contiguous M is passed as is, a transposed contiguous one as its transpose with 'T', others are copied.
inline void SyrkLower(at::Tensor& P, const at::Tensor& M, double alpha, double beta) {
  const Blas& b = GetBlas();
  int d = BlasDim(M.size(0)), n = BlasDim(M.size(1));
  at::Tensor src = M;
  int trans = kNoTrans, lda = n;
  if (M.is_contiguous()) {
    trans = kNoTrans;
    lda = n;
  } else if (M.t().is_contiguous()) {
    src = M.t();
    trans = kTrans;
    lda = d;
  } else {
    src = M.contiguous();
  }
  if (P.scalar_type() == at::kFloat)
    b.ssyrk(kRowMajor, kLower, trans, d, n, static_cast<float>(alpha), src.data_ptr<float>(), lda, static_cast<float>(beta), P.data_ptr<float>(), d);
  else
    b.dsyrk(kRowMajor, kLower, trans, d, n, alpha, src.data_ptr<double>(), lda, beta, P.data_ptr<double>(), d);
}

// out = A X (side left, X: d x n) or X A (side right, X: n x d), A symmetric read from P's upper triangle.
inline at::Tensor SymmUpper(const at::Tensor& P, const at::Tensor& X, bool left) {
  const Blas& b = GetBlas();
  at::Tensor x = X.contiguous();
  at::Tensor out = at::empty(x.sizes(), x.options());
  int m = BlasDim(x.size(0)), n = BlasDim(x.size(1));
  int d = BlasDim(P.size(0));
  if (P.scalar_type() == at::kFloat)
    b.ssymm(kRowMajor, left ? kLeft : kRight, kUpper, m, n, 1.0f, P.data_ptr<float>(), d, x.data_ptr<float>(), n, 0.0f, out.data_ptr<float>(), n);
  else
    b.dsymm(kRowMajor, left ? kLeft : kRight, kUpper, m, n, 1.0, P.data_ptr<double>(), d, x.data_ptr<double>(), n, 0.0, out.data_ptr<double>(), n);
  return out;
}

}  // namespace tn::optim::kronecker
