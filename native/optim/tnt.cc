// Tensor Normal Training (Ren & Goldfarb 2021): the optimizer's heavy state and its three phases, each one native
// call for every parameter.
//
// State, packed: each full factor (d <= maxFactorDim) of a parameter is one d x d buffer P and one vector h of d:
//   P's upper triangle with the diagonal  = A_i = (U_i + eps I)^-1, the inverse the update multiplies by;
//   P's strict lower triangle             = the strict lower triangle of H_i, the moving-average statistics;
//   h                                     = diag(H_i).
// Both matrices are symmetric, so this holds all of H_i and A_i in d^2 + d numbers instead of 2 d^2. A diagonal
// factor (d > maxFactorDim) is P = diag(H_i) and h = diag(A_i), two vectors of d.
//
//   tntStatistics  H_i <- keep H_i + w mat_i(G) mat_i(G)^T, keep = 1 - w unless given. On the CPU with a BLAS
//                  that exports cblas_?syrk (OpenBLAS: Debian's libtorch), one symmetric rank-k update of P's lower
//                  triangle folded into the moving average (half the flops of a GEMM; h and P's diagonal are swapped
//                  around it); elsewhere (CUDA, MKL builds) a GEMM and a masked update.
//   tntInverses    eq. (5): c0 = (tr(H_1) / prod_j d_j)^(1/k), U_i = H_i / (c0^(k-1) prod_{j!=i} d_j), then
//                  (U_i + eps I)^-1 by Cholesky (or LU), same-size factors of all parameters stacked into one
//                  batched factorisation. A failed factorisation is retried in float64, then with 10x, 100x,
//                  1000x eps; a factor that still fails keeps its last good inverse.
//   tntPackedStep  m <- mu m + g; p <- p (1 - lr wd) - lr (m x_1 A_1 x_2 ... x_k A_k), the mode products by
//                  cblas_?symm on P's upper triangle where available (else from a full copy of A_i), skipped
//                  entirely (and reported) when any gradient holds a non-finite value.
//   kroneckerStep        the same update from full (unpacked) matrices: Shampoo's step, with its roots.
//
// Factor shapes come from TypeScript (lib/optim/tnt.ts): a parameter's gradient is viewed as `shape`
// (e.g. conv weights (out, in, kh*kw)); an empty shape means the parameter is not preconditioned.
#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "kronecker/blas.h"
#include "kronecker/inverse.h"
#include "kronecker/momentum.h"
#include "optim_common.h"
#include "../opcodes.h"

using namespace tn;
using namespace tn::optim;
using namespace tn::optim::kronecker;

namespace {

// X x_1 A_1 ... x_k A_k for symmetric A_i (a diagonal A_i given as a vector).
at::Tensor Precondition(const at::Tensor& m, const std::vector<at::Tensor*>& inv, const std::vector<int64_t>& shape) {
  size_t k = shape.size();
  if (k == 0) return m;
  at::Tensor x = m.reshape(shape);
  if (k == 1) return inv[0]->dim() == 1 ? x * *inv[0] : at::mv(*inv[0], x);
  if (k == 2 && inv[0]->dim() == 2 && inv[1]->dim() == 2) return at::mm(at::mm(*inv[0], x), *inv[1]);
  // Contract the leading axis each time; the new axis goes last, so after k steps the order is restored.
  for (size_t i = 0; i < k; ++i) {
    if (inv[i]->dim() == 1) x = x.movedim(0, -1) * *inv[i];
    else x = at::tensordot(x, *inv[i], {0}, {0});
  }
  return x;
}



// ---- the packed state ----

struct Packed {
  std::vector<int64_t> shape;     // factor dims
  std::vector<at::Tensor*> main;  // P (d x d) for a full factor, diag(H) (d) for a diagonal one
  std::vector<at::Tensor*> aux;   // diag(H) (d) for a full factor, diag(A) (d) for a diagonal one
};

// (shapes[][], mains[][], auxes[][]) arguments at positions i, i+1, i+2
std::vector<Packed> PackedParams(const Napi::CallbackInfo& info, size_t i) {
  Napi::Array shapes = info[i].As<Napi::Array>();
  Napi::Array mains = info[i + 1].As<Napi::Array>();
  Napi::Array auxes = info[i + 2].As<Napi::Array>();
  if (shapes.Length() != mains.Length() || shapes.Length() != auxes.Length())
    throw std::invalid_argument("TNT: shapes and state lists differ in length");
  std::vector<Packed> out(shapes.Length());
  for (uint32_t k = 0; k < shapes.Length(); ++k) {
    out[k].shape = IntsOf(shapes.Get(k));
    out[k].main = HandleList(info.Env(), mains.Get(k));
    out[k].aux = HandleList(info.Env(), auxes.Get(k));
    if (out[k].main.size() != out[k].shape.size() || out[k].aux.size() != out[k].shape.size())
      throw std::invalid_argument("TNT: a parameter's state count differs from its shape's rank");
    for (size_t f = 0; f < out[k].shape.size(); ++f) {
      int64_t d = out[k].shape[f];
      const at::Tensor& m = *out[k].main[f];
      const at::Tensor& a = *out[k].aux[f];
      bool full = m.dim() == 2 && m.size(0) == d && m.size(1) == d && m.is_contiguous();
      bool diag = m.dim() == 1 && m.size(0) == d;
      if (!(full || diag) || a.dim() != 1 || a.size(0) != d || a.scalar_type() != m.scalar_type())
        throw std::invalid_argument("TNT: a factor's packed state does not match its dimension");
    }
  }
  return out;
}

bool IsFull(const at::Tensor& main) { return main.dim() == 2; }

// H_i, full and symmetric, from P's strict lower triangle and h (a new tensor).
at::Tensor UnpackH(const at::Tensor& P, const at::Tensor& h) {
  at::Tensor l = at::tril(P, -1);
  at::Tensor H = l + l.t();
  H.diagonal().copy_(h);
  return H;
}

// A_i, full and symmetric, from P's upper triangle (a new tensor).
at::Tensor UnpackA(const at::Tensor& P) {
  at::Tensor u = at::triu(P, 1);
  return u + u.t() + at::diag(P.diagonal());
}

// X x_1 A_1 ... x_k A_k from the packed state; the result has the factor dtype.
at::Tensor PackedPrecondition(const at::Tensor& m, const Packed& p, bool blas) {
  size_t k = p.shape.size();
  if (k == 0) return m;
  const at::Tensor& P0 = *p.main[0];
  at::Tensor x = m.reshape(p.shape);
  if (x.scalar_type() != P0.scalar_type()) x = x.to(P0.scalar_type());
  auto apply_full_left = [&](const at::Tensor& P, const at::Tensor& xm) {  // A xm, xm: d x n
    return BlasFor(P, blas) ? SymmUpper(P, xm, true) : at::mm(UnpackA(P), xm);
  };
  if (k == 2 && IsFull(*p.main[0]) && IsFull(*p.main[1])) {
    at::Tensor y = apply_full_left(*p.main[0], x);
    const at::Tensor& P1 = *p.main[1];
    return BlasFor(P1, blas) ? SymmUpper(P1, y, false) : at::mm(y, UnpackA(P1));
  }
  // Contract the leading axis each time; the new axis goes last, so after k steps the order is restored.
  for (size_t i = 0; i < k; ++i) {
    const at::Tensor& P = *p.main[i];
    if (!IsFull(P)) {
      x = x.movedim(0, -1) * *p.aux[i];
      continue;
    }
    std::vector<int64_t> rest(x.sizes().begin() + 1, x.sizes().end());
    at::Tensor y = apply_full_left(P, x.reshape({x.size(0), -1}));  // d_i x rest
    rest.push_back(x.size(0));
    x = y.t().reshape(rest);
  }
  return x;
}


}  // namespace

// tntBlasAvailable() -> whether the packed kernels can call the BLAS (cblas_?syrk, cblas_?symm) directly
TN_EXPORT(tntBlasAvailable) { return Napi::Boolean::New(info.Env(), GetBlas().ok()); }

// tntStatistics(grads[], shapes[][], mains[][], auxes[][], weight, blas, keep = 1 - weight)
//   -> { updated, skippedNonFinite }
TN_EXPORT(tntStatistics) {
  at::NoGradGuard no_grad;
  Napi::Array grads = info[0].As<Napi::Array>();
  std::vector<Packed> ps = PackedParams(info, 1);
  double w = Num(info, 4);
  bool blas = Bool(info, 5, true);
  double keep = KeepFactor(info, 6, w);
  if (grads.Length() != ps.size()) throw std::invalid_argument("TNT: gradient list length differs from the parameter list");
  double updated = 0, skipped = 0;
  for (size_t p = 0; p < ps.size(); ++p) {
    double h = grads.Get(static_cast<uint32_t>(p)).As<Napi::Number>().DoubleValue();
    if (h < 0 || ps[p].shape.empty()) continue;
    at::Tensor* g0 = Handle(info.Env(), grads.Get(static_cast<uint32_t>(p)));
    if (!AllFinite(*g0)) {
      ++skipped;
      continue;
    }
    at::Tensor g = g0->reshape(ps[p].shape);
    // A finite gradient can still overflow its statistics (float32 g g^T): then none of its factors takes it.
    bool fits = true;
    for (size_t i = 0; i < ps[p].shape.size() && fits; ++i) {
      const at::Tensor& P = *ps[p].main[i];
      at::Tensor rowsq = Matricize(g, static_cast<int64_t>(i)).to(at::kDouble).square().sum(1);
      fits = FoldStaysFinite(IsFull(P) ? *ps[p].aux[i] : P, rowsq, keep, w, P.scalar_type());
    }
    if (!fits) {
      ++skipped;
      continue;
    }
    for (size_t i = 0; i < ps[p].shape.size(); ++i) {
      at::Tensor& P = *ps[p].main[i];
      at::Tensor& hd = *ps[p].aux[i];
      at::Tensor m = Matricize(g, static_cast<int64_t>(i));
      if (m.scalar_type() != P.scalar_type()) m = m.to(P.scalar_type());
      if (!IsFull(P)) {
        P.mul_(keep).add_(m.square().sum(1), w);
      } else if (BlasFor(P, blas)) {
        // ?syrk updates the lower triangle with the diagonal: put diag(H) there for the update, then A's back.
        at::Tensor a_diag = P.diagonal().clone();
        P.diagonal().copy_(hd);
        SyrkLower(P, m, w, keep);
        hd.copy_(P.diagonal());
        P.diagonal().copy_(a_diag);
      } else {
        at::Tensor s = at::mm(m, m.t());
        hd.mul_(keep).add_(s.diagonal(), w);
        at::Tensor lower = at::tril(P, -1).mul_(keep).add_(at::tril(s, -1), w);
        P.copy_(at::triu(P).add_(lower));
      }
    }
    ++updated;
  }
  return Report(info.Env(), {{"updated", updated}, {"skippedNonFinite", skipped}});
}

namespace {
// The eq. (5) normalisation of a parameter's factors: U_i = H_i / denom_i, or nothing when tr(H_1) is not usable.
struct Normalization {
  bool finite = true;      // tr(H_1) finite
  bool negative = false;   // tr(H_1) < 0 (a corrupted state)
  std::vector<double> denom;  // 0 when tr(H_1) == 0 (U_i = 0)
};

Normalization Normalize(const Packed& p) {
  Normalization n;
  size_t k = p.shape.size();
  double total = 1;
  for (int64_t d : p.shape) total *= static_cast<double>(d);
  const at::Tensor& H1diag = IsFull(*p.main[0]) ? *p.aux[0] : *p.main[0];
  double tr = H1diag.sum().item<double>();
  n.finite = std::isfinite(tr);
  n.negative = tr < 0;
  double c0 = tr > 0 ? std::pow(tr / total, 1.0 / static_cast<double>(k)) : 0;
  for (size_t i = 0; i < k; ++i)
    n.denom.push_back(tr > 0 ? std::pow(c0, static_cast<double>(k - 1)) * (total / static_cast<double>(p.shape[i])) : 0);
  return n;
}

// U_i (full or diagonal), a new tensor.
at::Tensor NormalizedFactor(const Packed& p, size_t i, double denom) {
  at::Tensor H = IsFull(*p.main[i]) ? UnpackH(*p.main[i], *p.aux[i]) : p.main[i]->clone();
  return denom > 0 ? H.div_(denom) : H.zero_();
}
}  // namespace

// tntNormalizedFactors(shapes[][], mains[][], auxes[][]) -> U_i per parameter (new tensors), for tests and inspection
TN_EXPORT(tntNormalizedFactors) {
  at::NoGradGuard no_grad;
  std::vector<Packed> ps = PackedParams(info, 0);
  Napi::Array out = Napi::Array::New(info.Env(), ps.size());
  for (size_t p = 0; p < ps.size(); ++p) {
    std::vector<at::Tensor> us;
    if (!ps[p].shape.empty()) {
      Normalization n = Normalize(ps[p]);
      for (size_t i = 0; i < ps[p].shape.size(); ++i) us.push_back(NormalizedFactor(ps[p], i, n.denom[i]));
    }
    out.Set(static_cast<uint32_t>(p), WrapAll(info, us));
  }
  return out;
}

// tntUnpack(main, aux) -> [H, A] as new full (or diagonal) tensors
TN_EXPORT(tntUnpack) {
  at::NoGradGuard no_grad;
  at::Tensor& P = T(info, 0);
  at::Tensor& h = T(info, 1);
  if (IsFull(P)) return WrapAll(info, {UnpackH(P, h), UnpackA(P)});
  return WrapAll(info, {P.clone(), h.clone()});
}

// tntPack(H, A, main, aux): writes a factor's statistics H and inverse A (full or diagonal) into its packed state
TN_EXPORT(tntPack) {
  at::NoGradGuard no_grad;
  at::Tensor& H = T(info, 0);
  at::Tensor& A = T(info, 1);
  at::Tensor& P = T(info, 2);
  at::Tensor& h = T(info, 3);
  if (H.sizes() != A.sizes() || (IsFull(P) ? H.sizes() != P.sizes() : H.dim() != 1 || H.size(0) != P.size(0)))
    throw std::invalid_argument("TNT: the statistics and inverse do not match the factor's packed state");
  if (IsFull(P)) {
    at::Tensor Hc = H.to(P.scalar_type()), Ac = A.to(P.scalar_type());
    P.copy_(at::triu(Ac).add_(at::tril(Hc, -1)));
    h.copy_(Hc.diagonal());
  } else {
    P.copy_(H);
    h.copy_(A);
  }
  return info.Env().Undefined();
}

namespace {
// The inverse refresh of a list of parameters' packed state (one damping): eq. (5), then (U_i + eps I)^-1 into the
// upper triangle of each full factor's buffer (or diag(A_i) into aux for a diagonal one), counted in `counts`.
// `cancel`, when given, is checked between batches (the asynchronous refresh's cancellation).
void InvertPacked(const std::vector<Packed>& ps, double eps, kronecker::Method how, kronecker::InverseCounts& counts,
                  const std::atomic<bool>* cancel = nullptr) {
  struct Item {
    const Packed* p;
    size_t i;
    double denom;
  };
  // Same-size (and same-dtype) full factors of all parameters are inverted as one batch.
  std::map<std::pair<int64_t, int>, std::vector<Item>> groups;

  for (const Packed& p : ps) {
    size_t k = p.shape.size();
    if (k == 0) continue;
    Normalization n = Normalize(p);
    if (!n.finite) {
      ++counts.skipped;
      continue;
    }
    if (n.negative) {  // impossible for statistics (a sum of squares); only a corrupted state gets here
      counts.failed += static_cast<double>(k);
      continue;
    }
    bool finite = true;
    for (size_t i = 0; i < k && finite; ++i) finite = AllFinite(*p.main[i]) && AllFinite(*p.aux[i]);
    if (!finite) {
      ++counts.skipped;
      continue;
    }
    for (size_t i = 0; i < k; ++i) {
      if (!IsFull(*p.main[i])) {
        at::Tensor u = n.denom[i] > 0 ? *p.main[i] / n.denom[i] : at::zeros_like(*p.main[i]);
        p.aux[i]->copy_((u + eps).reciprocal());
        ++counts.inverted;
        continue;
      }
      groups[{p.shape[i], static_cast<int>(p.main[i]->scalar_type())}].push_back({&p, i, n.denom[i]});
    }
  }

  // A's upper triangle into P, H's strict lower triangle left as it is.
  auto store = [](at::Tensor& P, const at::Tensor& A) { P.copy_(at::triu(A.to(P.scalar_type())).add_(at::tril(P, -1))); };

  // Same-size factors are factorised in batches of at most about 2^20 numbers (at least one factor): batching helps
  // many small factors (above all on a GPU), while a batch of large ones would only multiply the transient memory
  // (the stacked factors, their Cholesky factors and inverses: several times the batch).
  for (auto& [key, all_items] : groups) {
    int64_t d = key.first;
    size_t per = std::max<size_t>(1, static_cast<size_t>((int64_t{1} << 20) / (d * d)));
    for (size_t from = 0; from < all_items.size(); from += per) {
      if (cancel != nullptr && cancel->load()) return;
      std::vector<Item> items(all_items.begin() + static_cast<std::ptrdiff_t>(from),
                              all_items.begin() + static_cast<std::ptrdiff_t>(std::min(all_items.size(), from + per)));
      const at::Tensor& P0 = *items[0].p->main[items[0].i];
      at::Tensor a = at::empty({static_cast<int64_t>(items.size()), d, d}, P0.options());
      for (size_t b = 0; b < items.size(); ++b) {
        at::Tensor u = NormalizedFactor(*items[b].p, items[b].i, items[b].denom);
        a[static_cast<int64_t>(b)].copy_(u).diagonal().add_(eps);
      }
      kronecker::BatchInverse bi = kronecker::InvertBatch(a, how);
      a.reset();
      for (size_t b = 0; b < items.size(); ++b) {
        at::Tensor& P = *items[b].p->main[items[b].i];
        if (bi.ok[b]) {
          store(P, bi.inv[static_cast<int64_t>(b)]);
          ++counts.inverted;
          continue;
        }
        kronecker::RetryAlone(NormalizedFactor(*items[b].p, items[b].i, items[b].denom), eps, how, counts,
                              [&](const at::Tensor& inv) { store(P, inv); });
      }
    }
  }
}

kronecker::Method MethodOf(const Napi::CallbackInfo& info, size_t i) {
  const ops::InverseMethod method = ops::OpCode<ops::InverseMethod>(Int(info, i));
  return method == ops::InverseMethod::Lu ? kronecker::Method::kLu : kronecker::Method::kCholesky;
}
}  // namespace

// tntInverses(shapes[][], mains[][], auxes[][], eps, method (an inverseMethod code: cholesky, lu))
//   -> { inverted, retriedFloat64, retriedDamping, failed, skippedNonFinite }
TN_EXPORT(tntInverses) {
  at::NoGradGuard no_grad;
  std::vector<Packed> ps = PackedParams(info, 0);
  double eps = Num(info, 3);
  const kronecker::Method how = MethodOf(info, 4);
  kronecker::InverseCounts counts;
  InvertPacked(ps, eps, how, counts);
  return counts.ToReport(info.Env());
}

// ---- the asynchronous refresh (TNT's `asyncInverses`) ----
//
// One job per optimizer (a JS external). launch() starts a native thread that first copies the statistics (each
// factor's packed buffer and aux: a snapshot; `snapshotWait` lets the JS thread wait for the copy before it writes
// new statistics), then computes the inverses of the snapshot as tntInverses would (one intra-op thread), while the
// JS thread goes on stepping with the current ones. swap() joins the thread and writes the new inverses into the
// live buffers (the upper triangles of full factors, aux of diagonal ones; the live statistics are left alone), or
// rethrows the thread's error. cancel() joins and discards. The thread never touches the environment (no handles,
// no JS): only the tensors it was given, held by reference.
namespace {

// A parameter's live packed state and the snapshot the thread works on.
struct AsyncParam {
  std::vector<int64_t> shape;
  std::vector<at::Tensor> live_main, live_aux, main, aux;
};
struct AsyncGroup {
  double eps = 0;
  std::vector<AsyncParam> params;
};

// The calling thread's OpenMP team size set to 1 (an OpenMP setting of the thread, not of the process), so that the
// background thread's ATen ops run on one intra-op thread without changing the JS thread's (at::set_num_threads
// would also change the default that later threads start from). at::get_num_threads() first: ATen's lazy per-thread
// initialisation would otherwise reset it to that default at the first parallel op. Returns what ATen then sees.
int OneIntraOpThread() {
  at::get_num_threads();
  using Fn = void (*)(int);
  auto fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  if (fn != nullptr) fn(1);
  return at::get_num_threads();
}

class AsyncInverses : public BackgroundWork {
 public:
  ~AsyncInverses() override { Cancel(); }

  bool busy() const { return pending_; }
  bool finished() const { return done_.load(); }

  void Launch(std::vector<AsyncGroup> groups, kronecker::Method how, bool fail_for_test) {
    if (pending_) throw std::logic_error("TNT: an inverse refresh is already pending");
    groups_ = std::move(groups);
    counts_ = kronecker::InverseCounts();
    error_.clear();
    cancel_.store(false);
    done_.store(false);
    {
      std::lock_guard<std::mutex> lock(mu_);
      snapshot_taken_ = false;
    }
    thread_ = std::thread([this, how, fail_for_test] { Run(how, fail_for_test); });
    pending_ = true;
  }

  // Until the thread has copied the statistics (or ended).
  void SnapshotWait() {
    if (!thread_.joinable()) return;
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return snapshot_taken_; });
  }

  void WaitIdle() override {
    if (thread_.joinable()) thread_.join();
  }

  void Cancel() override {
    cancel_.store(true);
    WaitIdle();
    pending_ = false;
    groups_.clear();
    error_.clear();
  }

  // Joins the thread and writes its inverses into the live state; throws the thread's error (the pending refresh is
  // then dropped). False when nothing was pending.
  bool Swap(kronecker::InverseCounts& counts, int& threads) {
    if (!pending_) return false;
    WaitIdle();
    pending_ = false;
    std::vector<AsyncGroup> groups = std::move(groups_);
    groups_.clear();
    if (!error_.empty()) {
      std::string e = std::move(error_);
      error_.clear();
      throw std::runtime_error("TNT: the background inverse refresh failed: " + e);
    }
    for (AsyncGroup& g : groups)
      for (AsyncParam& p : g.params)
        for (size_t f = 0; f < p.main.size(); ++f) {
          if (IsFull(p.main[f])) CopyUpper(p.main[f], p.live_main[f]);
          else p.live_aux[f].copy_(p.aux[f]);
        }
    counts = counts_;
    threads = threads_;
    return true;
  }

 private:
  // dst's upper triangle with the diagonal <- src's (both d x d, contiguous); dst's strict lower triangle is kept.
  static void CopyUpper(const at::Tensor& src, at::Tensor& dst) {
    if (src.device().is_cpu() && dst.device().is_cpu() && src.is_contiguous() && dst.is_contiguous() &&
        src.scalar_type() == dst.scalar_type() && (src.scalar_type() == at::kFloat || src.scalar_type() == at::kDouble)) {
      const int64_t d = src.size(0);
      const size_t es = src.element_size();
      const char* s = static_cast<const char*>(src.data_ptr());
      char* t = static_cast<char*>(dst.data_ptr());
      for (int64_t i = 0; i < d; ++i) {
        const size_t off = static_cast<size_t>(i * d + i) * es;
        std::memcpy(t + off, s + off, static_cast<size_t>(d - i) * es);
      }
      return;
    }
    dst.copy_(at::triu(src).add_(at::tril(dst, -1)));
  }

  void Run(kronecker::Method how, bool fail_for_test) {
    auto snapshot_done = [this] {
      {
        std::lock_guard<std::mutex> lock(mu_);
        snapshot_taken_ = true;
      }
      cv_.notify_all();
    };
    try {
      threads_ = OneIntraOpThread();
      at::NoGradGuard no_grad;
      for (AsyncGroup& g : groups_)
        for (AsyncParam& p : g.params)
          for (size_t f = 0; f < p.live_main.size(); ++f) {
            p.main.push_back(p.live_main[f].clone());
            p.aux.push_back(p.live_aux[f].clone());
          }
      snapshot_done();
      TORCH_CHECK(!fail_for_test, "a failure injected for a test");
      for (AsyncGroup& g : groups_) {
        if (cancel_.load()) break;
        std::vector<Packed> ps(g.params.size());
        for (size_t k = 0; k < g.params.size(); ++k) {
          ps[k].shape = g.params[k].shape;
          for (size_t f = 0; f < g.params[k].main.size(); ++f) {
            ps[k].main.push_back(&g.params[k].main[f]);
            ps[k].aux.push_back(&g.params[k].aux[f]);
          }
        }
        InvertPacked(ps, g.eps, how, counts_, &cancel_);
      }
    } catch (const c10::Error& e) {
      error_ = e.what_without_backtrace();
    } catch (const std::bad_alloc&) {
      error_ = "out of memory";
    } catch (const std::exception& e) {
      error_ = e.what();
    } catch (...) {
      error_ = "an unknown error";
    }
    snapshot_done();
    done_.store(true);
  }

  std::thread thread_;
  bool pending_ = false;  // launched, not yet swapped in or cancelled (its thread may have been joined by WaitIdle)
  std::vector<AsyncGroup> groups_;
  kronecker::InverseCounts counts_;
  std::string error_;
  int threads_ = 0;  // the intra-op threads ATen saw on the thread
  std::atomic<bool> cancel_{false};
  std::atomic<bool> done_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool snapshot_taken_ = true;
};

struct AsyncHolder {
  std::shared_ptr<AsyncInverses> job;
};

AsyncInverses& JobOf(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsExternal()) throw std::invalid_argument("TNT: expected an inverse refresh job");
  AsyncHolder* h = info[i].As<Napi::External<AsyncHolder>>().Data();
  if (h == nullptr || !h->job) throw std::invalid_argument("TNT: the inverse refresh job was released");
  return *h->job;
}
}  // namespace

// tntAsyncNew() -> a job (external; its finalizer cancels a pending refresh)
TN_EXPORT(tntAsyncNew) {
  State& s = GetState(info.Env());
  auto* holder = new AsyncHolder{std::make_shared<AsyncInverses>()};
  // drop the entries of jobs already gone
  s.background.erase(std::remove_if(s.background.begin(), s.background.end(), [](const std::weak_ptr<BackgroundWork>& w) { return w.expired(); }),
                     s.background.end());
  s.background.push_back(holder->job);
  return Napi::External<AsyncHolder>::New(info.Env(), holder, [](Napi::Env, AsyncHolder* h) { delete h; });
}

// tntAsyncLaunch(job, groups: [shapes[][], mains[][], auxes[][], eps][], method, failForTest)
TN_EXPORT(tntAsyncLaunch) {
  AsyncInverses& job = JobOf(info, 0);
  Napi::Array groups = info[1].As<Napi::Array>();
  const kronecker::Method how = MethodOf(info, 2);
  bool fail_for_test = Bool(info, 3, false);
  std::vector<AsyncGroup> gs;
  for (uint32_t gi = 0; gi < groups.Length(); ++gi) {
    Napi::Array g = groups.Get(gi).As<Napi::Array>();
    // PackedParams reads (shapes, mains, auxes) from call arguments: the same checks, on this group's arrays
    Napi::Array shapes = g.Get(0u).As<Napi::Array>(), mains = g.Get(1u).As<Napi::Array>(), auxes = g.Get(2u).As<Napi::Array>();
    if (shapes.Length() != mains.Length() || shapes.Length() != auxes.Length())
      throw std::invalid_argument("TNT: shapes and state lists differ in length");
    AsyncGroup ag;
    ag.eps = g.Get(3u).As<Napi::Number>().DoubleValue();
    for (uint32_t k = 0; k < shapes.Length(); ++k) {
      AsyncParam p;
      p.shape = IntsOf(shapes.Get(k));
      for (at::Tensor* t : HandleList(info.Env(), mains.Get(k))) p.live_main.push_back(*t);
      for (at::Tensor* t : HandleList(info.Env(), auxes.Get(k))) p.live_aux.push_back(*t);
      if (p.live_main.size() != p.shape.size() || p.live_aux.size() != p.shape.size())
        throw std::invalid_argument("TNT: a parameter's state count differs from its shape's rank");
      for (size_t f = 0; f < p.shape.size(); ++f) {
        int64_t d = p.shape[f];
        const at::Tensor& m = p.live_main[f];
        const at::Tensor& a = p.live_aux[f];
        bool full = m.dim() == 2 && m.size(0) == d && m.size(1) == d && m.is_contiguous();
        bool diag = m.dim() == 1 && m.size(0) == d;
        if (!(full || diag) || a.dim() != 1 || a.size(0) != d || a.scalar_type() != m.scalar_type())
          throw std::invalid_argument("TNT: a factor's packed state does not match its dimension");
      }
      ag.params.push_back(std::move(p));
    }
    gs.push_back(std::move(ag));
  }
  job.Launch(std::move(gs), how, fail_for_test);
  return info.Env().Undefined();
}

// tntAsyncStatus(job) -> 0 nothing pending, 1 running, 2 finished (its result waiting for swap)
TN_EXPORT(tntAsyncStatus) {
  AsyncInverses& job = JobOf(info, 0);
  return Napi::Number::New(info.Env(), !job.busy() ? 0 : job.finished() ? 2 : 1);
}

// tntAsyncSnapshotWait(job): until the pending refresh has copied the statistics
TN_EXPORT(tntAsyncSnapshotWait) {
  JobOf(info, 0).SnapshotWait();
  return info.Env().Undefined();
}

// tntAsyncSwap(job) -> the refresh's report (and the thread's intraOpThreads) after writing its inverses into the live state (waiting for it), or null
// when none was pending; a failure in the thread is thrown here (a TorchError), the refresh dropped
TN_EXPORT(tntAsyncSwap) {
  at::NoGradGuard no_grad;
  kronecker::InverseCounts counts;
  int threads = 0;
  if (!JobOf(info, 0).Swap(counts, threads)) return info.Env().Null();
  Napi::Object r = counts.ToReport(info.Env());
  r.Set("intraOpThreads", threads);
  return r;
}

// tntAsyncCancel(job): stops and joins a pending refresh, discarding it
TN_EXPORT(tntAsyncCancel) {
  JobOf(info, 0).Cancel();
  return info.Env().Undefined();
}

// tntPackedDirection(tensor, shape[], mains[], auxes[], blas) -> preconditioned copy in the tensor's dtype
TN_EXPORT(tntPackedDirection) {
  at::NoGradGuard no_grad;
  at::Tensor& m = T(info, 0);
  Packed p;
  p.shape = IntsOf(info[1]);
  p.main = HandleList(info.Env(), info[2]);
  p.aux = HandleList(info.Env(), info[3]);
  bool blas = Bool(info, 4, true);
  if (p.main.size() != p.shape.size() || p.aux.size() != p.shape.size()) throw std::invalid_argument("TNT: state count differs from the shape's rank");
  return Wrap(info, PackedPrecondition(m, p, blas).reshape(m.sizes()).to(m.scalar_type()).clone());
}

// tntPackedStep(params[], momentum[], shapes[][], mains[][], auxes[][], lr[], mu[], weightDecay[], blas, klClip = 0)
//   -> { applied, skippedNonFinite, reason (0 applied, 1 gradient, 2 update), scale, quadratic }
// klClip > 0: the update-size control of distributed K-FAC (KL clipping) on TNT's preconditioned momentum: with
// q = sum_p lr_p^2 <m_p, P(m_p)> (the quadratic form of the whole step under the preconditioner; P(m) = m x_1 A_1
// ... x_k A_k, positive definite, so q >= 0), every direction is scaled by nu = min(1, sqrt(klClip / q)). The
// directions are computed once, in a first pass, and kept for the staged step. `scale` is nu (1 without clipping)
// and `quadratic` q (0 when not computed).
TN_EXPORT(tntPackedStep) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor*> params = HandleList(info.Env(), info[0]);
  std::vector<at::Tensor*> moms = HandleList(info.Env(), info[1]);
  std::vector<Packed> ps = PackedParams(info, 2);
  bool blas = Bool(info, 8, true);
  double kl_clip = info.Length() > 9 && info[9].IsNumber() ? info[9].As<Napi::Number>().DoubleValue() : 0.0;
  if (params.size() != moms.size() || params.size() != ps.size()) throw std::invalid_argument("TNT: parameter, momentum and state lists differ in length");
  std::vector<Hyper> hyper = Hypers(info, 5, params.size());
  if (!(kl_clip > 0)) {
    Napi::Object r = MomentumStep(info.Env(), params, moms, hyper,
                                  [&](size_t i, const at::Tensor& m) { return PackedPrecondition(m, ps[i], blas); });
    r.Set("scale", 1.0);
    r.Set("quadratic", 0.0);
    return r;
  }
  // First pass: every direction and the step's quadratic form (a non-finite gradient is left to MomentumStep, which
  // skips the whole step before calling the direction).
  std::vector<at::Tensor> dirs(params.size());
  double q = 0;
  bool finite = true;
  for (size_t i = 0; i < params.size(); ++i) {
    const at::Tensor& g = params[i]->grad();
    if (!g.defined()) continue;
    if (!AllFinite(g)) {
      finite = false;
      break;
    }
    at::Tensor m = moms[i]->mul(hyper[i].mu).add_(g);
    dirs[i] = PackedPrecondition(m, ps[i], blas);
    at::Tensor mm = m.reshape(dirs[i].sizes());
    if (mm.scalar_type() != dirs[i].scalar_type()) mm = mm.to(dirs[i].scalar_type());
    q += hyper[i].lr * hyper[i].lr * (dirs[i] * mm).sum().item<double>();
  }
  double nu = finite && std::isfinite(q) && q > kl_clip ? std::sqrt(kl_clip / q) : 1.0;
  Napi::Object r = MomentumStep(info.Env(), params, moms, hyper, [&](size_t i, const at::Tensor&) {
    return nu < 1 ? dirs[i] * nu : dirs[i];
  });
  r.Set("scale", nu);
  r.Set("quadratic", q);
  return r;
}

// tntDirection(tensor, shape[], inverses[]) -> preconditioned copy (for tests and the similarity experiment)
TN_EXPORT(tntDirection) {
  at::NoGradGuard no_grad;
  at::Tensor& m = T(info, 0);
  std::vector<int64_t> shape = IntsOf(info[1]);
  std::vector<at::Tensor*> inv = HandleList(info.Env(), info[2]);
  if (inv.size() != shape.size()) throw std::invalid_argument("TNT: inverse count differs from the shape's rank");
  return Wrap(info, Precondition(m, inv, shape).reshape(m.sizes()).clone());
}

// kroneckerStep(params[], momentum[], shapes[][], inverses[][], lr[], mu[], weightDecay[]) -> { applied, skippedNonFinite, reason }
TN_EXPORT(kroneckerStep) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor*> params = HandleList(info.Env(), info[0]);
  std::vector<at::Tensor*> moms = HandleList(info.Env(), info[1]);
  std::vector<Param> ps = Params(info, 2, "TNT");  // (shapes, inverses)
  if (params.size() != moms.size() || params.size() != ps.size()) throw std::invalid_argument("TNT: parameter, momentum and inverse lists differ in length");
  return MomentumStep(info.Env(), params, moms, Hypers(info, 4, params.size()),
                      [&](size_t i, const at::Tensor& m) { return Precondition(m, ps[i].factors, ps[i].shape); });
}
