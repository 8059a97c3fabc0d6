// blasSelfCheck(): the BLAS and LAPACK kernels libtorch runs here (OpenBLAS on Debian, with the kernel set that
// OPENBLAS_CORETYPE or OpenBLAS's own detection chose) on small problems whose answers plain loops in double give:
// sgemm and dgemm through at::mm, ssyrk/dsyrk and ssymm/dsymm through the same cblas entry points the Kronecker
// optimizers call, spotrf/dpotrf through at::linalg_cholesky. Older OpenBLAS builds pick kernels that compute wrong
// results (or crash) on processors newer than themselves; lib/native.ts warns when a check fails. The sizes are odd
// and span several register blocks, so both the main kernels and their edge cases run. About a millisecond.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <vector>

#include <ATen/Parallel.h>

#include "common.h"
#include "optim/kronecker/blas.h"

namespace tn {
namespace {

// Deterministic values in [-1, 1): the same on every machine, no libtorch RNG involved.
std::vector<double> Values(int64_t n, uint64_t seed) {
  std::vector<double> v(static_cast<size_t>(n));
  uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
  for (auto& x : v) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    x = static_cast<double>(s >> 11) / 9007199254740992.0 * 2.0 - 1.0;
  }
  return v;
}

at::Tensor FromValues(const std::vector<double>& v, int64_t rows, int64_t cols, at::ScalarType dtype) {
  at::Tensor t = at::empty({rows, cols}, at::TensorOptions().dtype(at::kDouble));
  std::copy(v.begin(), v.end(), t.data_ptr<double>());
  return t.to(dtype);
}

// max |got - want| / max |want| over the entries selected by keep(i, j)
template <typename Keep>
double RelErr(const at::Tensor& got, const std::vector<double>& want, int64_t rows, int64_t cols, Keep keep) {
  at::Tensor g = got.to(at::kDouble).contiguous();
  const double* p = g.data_ptr<double>();
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      if (!keep(i, j)) continue;
      const double w = want[static_cast<size_t>(i * cols + j)], x = p[i * cols + j];
      if (!std::isfinite(x)) return INFINITY;
      diff = std::max(diff, std::abs(x - w));
      scale = std::max(scale, std::abs(w));
    }
  return scale > 0 ? diff / scale : diff;
}

// C = A B in double loops (A: m x k, B: k x n, row-major)
std::vector<double> MatMul(const std::vector<double>& a, const std::vector<double>& b, int64_t m, int64_t k, int64_t n) {
  std::vector<double> c(static_cast<size_t>(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t l = 0; l < k; ++l) {
      const double x = a[static_cast<size_t>(i * k + l)];
      for (int64_t j = 0; j < n; ++j) c[static_cast<size_t>(i * n + j)] += x * b[static_cast<size_t>(l * n + j)];
    }
  return c;
}

std::vector<double> Transpose(const std::vector<double>& a, int64_t rows, int64_t cols) {
  std::vector<double> t(a.size());
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) t[static_cast<size_t>(j * rows + i)] = a[static_cast<size_t>(i * cols + j)];
  return t;
}

}  // namespace
}  // namespace tn

using namespace tn;

// blasSelfCheck(firstInProcess?): relative errors {sgemm, spotrf, ssyrk, ssymm, dgemm, ...}; with firstInProcess
// true, null when a check already ran in this process (worker threads load the addon again; the kernels are the
// process's). Runs on one thread: on a busy machine, waking BLAS and OpenMP threads for these sizes costs 100x the
// arithmetic.
TN_EXPORT(blasSelfCheck) {
  namespace kr = tn::optim::kronecker;
  static std::atomic<bool> ran{false};  // a plain flag: no JS object lives in it
  if (info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value() && ran.exchange(true))
    return info.Env().Null();
  ran = true;
  struct OneThread {
    int prev = at::get_num_threads();
    OneThread() { at::set_num_threads(1); }
    ~OneThread() { at::set_num_threads(prev); }
  } one_thread;
  at::NoGradGuard no_grad;
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  const int64_t m = 67, k = 45, n = 83, d = 37;
  const auto a = Values(m * k, 1), b = Values(k * n, 2), x = Values(d * n, 3);
  const auto ab = MatMul(a, b, m, k, n);
  // S = X X^T + d I: symmetric positive definite, well conditioned
  auto s = MatMul(x, Transpose(x, d, n), d, n, d);
  for (int64_t i = 0; i < d; ++i) s[static_cast<size_t>(i * d + i)] += static_cast<double>(d);
  const auto sx = MatMul(s, x, d, d, n);
  auto all = [](int64_t, int64_t) { return true; };
  auto lower = [](int64_t i, int64_t j) { return j <= i; };
  for (at::ScalarType dt : {at::kFloat, at::kDouble}) {
    const std::string p = dt == at::kFloat ? "s" : "d";
    out.Set(p + "gemm", RelErr(at::mm(FromValues(a, m, k, dt), FromValues(b, k, n, dt)), ab, m, n, all));
    // L L^T for the Cholesky factor L of S equals S
    at::Tensor l = at::linalg_cholesky(FromValues(s, d, d, dt));
    out.Set(p + "potrf", RelErr(at::mm(l.to(at::kDouble), l.to(at::kDouble).t()), s, d, d, all));
    if (kr::GetBlas().ok()) {
      at::Tensor xt = FromValues(x, d, n, dt);
      at::Tensor tri = at::zeros({d, d}, xt.options());
      kr::SyrkLower(tri, xt, 1.0, 0.0);
      auto xxt = MatMul(x, Transpose(x, d, n), d, n, d);
      out.Set(p + "syrk", RelErr(tri, xxt, d, d, lower));
      at::Tensor sym = FromValues(s, d, d, dt).triu();  // symm reads the upper triangle only
      out.Set(p + "symm", RelErr(kr::SymmUpper(sym, xt, true), sx, d, n, all));
    }
  }
  return out;
}
