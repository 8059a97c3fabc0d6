// Module init, per-environment state, the tensor handle table and the helpers every entry point uses.
#include <algorithm>
#include <unordered_set>

#include "common.h"
#include "opcodes.h"

#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>

#include <dlfcn.h>
#if defined(__linux__)
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <cerrno>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <cstring>

#include <atomic>
#include <mutex>
#include <thread>

namespace tn {

// ---------------------------------------------------------------- handle table
double TensorTable::Put(at::Tensor t) {
  if (!t.defined()) return -1;
  uint32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    if (slots_.size() > kSlotMask) throw std::runtime_error("too many live tensors (over 4 million); dispose some");
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
    gens_.push_back(0);
    bytes_.push_back(0);
  }
  // The bytes the tensor can hold alive: its storage (an expanded view's numel can be astronomically larger than
  // what backs it, and V8 aborts on an external-memory change that large).
  int64_t nbytes = t.has_storage() ? static_cast<int64_t>(t.storage().nbytes()) : 0;
  slots_[slot] = std::move(t);
  bytes_[slot] = nbytes;
  pending_bytes += nbytes;
  ++live_;
  return static_cast<double>(slot + (static_cast<uint64_t>(gens_[slot]) << kSlotBits));
}

at::Tensor* TensorTable::TryGet(double handle) {
  if (!(handle >= 0)) return nullptr;
  uint64_t h = static_cast<uint64_t>(handle);
  uint64_t slot = h & kSlotMask;
  if (slot >= slots_.size() || gens_[slot] != (h >> kSlotBits) || !slots_[slot].defined()) return nullptr;
  return &slots_[slot];
}

bool TensorTable::Release(double handle) {
  at::Tensor* t = TryGet(handle);
  if (!t) return false;
  uint64_t slot = static_cast<uint64_t>(handle) & kSlotMask;
  // A dropped tensor's storage may live on in an autograd graph (a saved activation of the output that a user
  // still holds) or in a view: keep those bytes reported to V8, or a loop that drops graph-holding outputs grows
  // by gigabytes while V8 sees a few bytes per output and never collects them.
  c10::weak_intrusive_ptr<c10::StorageImpl> weak(c10::intrusive_ptr<c10::StorageImpl>{});
  if (bytes_[slot] > 0 && t->has_storage()) weak = t->storage().getWeakStorageImpl();
  *t = at::Tensor();
  pending_bytes -= bytes_[slot];
  if (!weak.expired()) {
    const c10::StorageImpl* key = weak._unsafe_get_target();
    if (retained_.find(key) == retained_.end()) {
      retained_.emplace(key, Retained{std::move(weak), bytes_[slot]});
      retained_bytes_ += bytes_[slot];
      pending_bytes += bytes_[slot];
    }
  }
  bytes_[slot] = 0;
  // Amortised O(1): sweep when the list doubled, or every 4096 releases so that freed graphs stop counting.
  if (++releases_since_sweep_ >= 4096 || retained_.size() >= sweep_at_) SweepRetained();
  gens_[slot] = (gens_[slot] + 1) & 0x7fffffff;
  free_.push_back(static_cast<uint32_t>(slot));
  --live_;
  return true;
}

void TensorTable::SweepRetained() {
  for (auto it = retained_.begin(); it != retained_.end();) {
    if (it->second.storage.expired()) {
      retained_bytes_ -= it->second.bytes;
      pending_bytes -= it->second.bytes;
      it = retained_.erase(it);
    } else {
      ++it;
    }
  }
  releases_since_sweep_ = 0;
  sweep_at_ = std::max<size_t>(64, 2 * retained_.size());
}

void TensorTable::Clear() {
  retained_.clear();
  retained_bytes_ = 0;
  slots_.clear();
  gens_.clear();
  bytes_.clear();
  free_.clear();
  live_ = 0;
}

State::~State() {
  *alive = false;
  for (auto& w : background)
    if (auto b = w.lock()) b->Cancel();
  background.clear();
  table.Clear();
}

void State::WaitBackgroundIdle() {
  for (auto& w : background)
    if (auto b = w.lock()) b->WaitIdle();
}

void RethrowHookError(Napi::Env env) {
  State* s = env.GetInstanceData<State>();
  if (!s || s->hook_error.IsEmpty()) return;
  Napi::Value v = s->hook_error.Value().Get("error");  // boxed: the hook may have thrown a primitive
  s->hook_error.Reset();
  throw Napi::Error(env, v);
}

State& GetState(napi_env env) {
  State* s = Napi::Env(env).GetInstanceData<State>();
  return *s;
}

at::Tensor& TensorTable::Get(double handle) {
  at::Tensor* t = TryGet(handle);
  if (!t) throw std::invalid_argument("tensor was disposed (or the handle is not a live tensor)");
  return *t;
}

void FlushExternalMemory(napi_env env, State& s, bool force) {
  // Report native bytes to V8 in steps of 1 MiB so its GC sees the pressure without a call per tensor.
  auto& t = s.table;
  if (t.pending_bytes == 0) return;
  if (!force && t.pending_bytes < (1 << 20) && t.pending_bytes > -(1 << 20)) return;
  int64_t delta = t.pending_bytes;
  if (t.tracked_bytes + delta < 0) delta = -t.tracked_bytes;
  int64_t result = 0;
  napi_adjust_external_memory(env, delta, &result);
  t.tracked_bytes += delta;
  t.pending_bytes = 0;
}

// ---------------------------------------------------------------- errors
const char* ClassifyError(const std::string& m) {
  auto has = [&](const char* s) { return m.find(s) != std::string::npos; };
  if (has("out of memory") || has("DefaultCPUAllocator: can't allocate")) return "OUT_OF_MEMORY";
  if (has("disposed")) return "DISPOSED";
  if (has("positive-definite") || has("positive definite")) return "NOT_POSITIVE_DEFINITE";
  if (has("singular")) return "SINGULAR";
  if (has("same device") || has("Expected all tensors to be on") || has("CUDA")) return "DEVICE_MISMATCH";
  if (has("not linked with support for cuda")) return "DEVICE_MISMATCH";
  if (has("out of range") || has("out of bounds") || has("out of DATA bounds") || (has("index ") && has("is out")))
    return "INDEX_OUT_OF_RANGE";
  if (has("does not require grad") || has("backward through the graph") || has("grad can be implicitly") ||
      has("leaf Variable") || has("modified by an inplace operation") || has("differentiated Tensors"))
    return "AUTOGRAD";
  if (has("not implemented for") || has("expected scalar type") || has("Expected object of scalar type") ||
      has("result type") || has("dtype") || has("Found dtype") || has("floating point"))
    return "DTYPE_MISMATCH";
  if (has("size") || has("shape") || has("dimension") || has("cannot be multiplied") || has("must match") ||
      has("Dimension") || has("mat1 and mat2") || has("square matri") || has("must be a matrix") ||
      has("D tensor") || has("elements not"))
    return "SHAPE_MISMATCH";
  return "TORCH_ERROR";
}

// The code of the libtorch exception being handled (ThrowTorchError is called from Guarded's catch blocks), by its
// type first: c10::IndexError, c10::LinAlgError and c10::OutOfMemoryError (all in libtorch 1.13 and 2.x) say what
// went wrong whatever the message's wording. c10::TypeError, ValueError and NotImplementedError are raised for too
// many kinds of fault to name one code, so those, plain c10::Error and calls outside a catch block fall back to
// the message (ClassifyError). A LinAlgError is NOT_POSITIVE_DEFINITE or SINGULAR by its message, else the message
// decides as usual (e.g. an eigensolver that failed to converge stays TORCH_ERROR).
static const char* ClassifyCurrentException(const std::string& msg) {
  if (std::current_exception()) {
    try {
      throw;
    } catch (const c10::IndexError&) {
      return "INDEX_OUT_OF_RANGE";
    } catch (const c10::OutOfMemoryError&) {
      return "OUT_OF_MEMORY";
    } catch (const c10::LinAlgError&) {
      if (msg.find("positive-definite") != std::string::npos || msg.find("positive definite") != std::string::npos)
        return "NOT_POSITIVE_DEFINITE";
      if (msg.find("singular") != std::string::npos) return "SINGULAR";
    } catch (...) {
    }
  }
  return ClassifyError(msg);
}

void ThrowTorchError(Napi::Env env, const std::string& message, const char* code) {
  std::string msg = message;
  // libtorch appends "Exception raised from ..." context lines; keep the first paragraph a user needs.
  auto cut = msg.find("\nException raised from");
  if (cut != std::string::npos) msg.resize(cut);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  const char* c = code ? code : ClassifyCurrentException(msg);
  State* s = env.GetInstanceData<State>();
  if (s && !s->torch_error.IsEmpty()) {
    Napi::Object err = s->torch_error.New({Napi::String::New(env, msg), Napi::String::New(env, c)});
    throw Napi::Error(env, err);
  }
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, c));
  throw e;
}

// ---------------------------------------------------------------- argument helpers
void ThrowDisposed(Napi::Env env, double h) {
  State* s = env.GetInstanceData<State>();
  if (s && h <= -2 && h == static_cast<double>(static_cast<int64_t>(h))) {
    const uint64_t k = static_cast<uint64_t>(-2 - static_cast<int64_t>(h));
    if (k < s->disposed_reasons.size()) ThrowTorchError(env, s->disposed_reasons[k], "DISPOSED");
  }
  ThrowTorchError(env, "tensor was disposed: it cannot be used any more", "DISPOSED");
}

at::Tensor& T(const Napi::CallbackInfo& info, size_t i) {
  napi_value v = info[i];
  double h = -1;
  if (napi_get_value_double(info.Env(), v, &h) != napi_ok) throw Napi::TypeError::New(info.Env(), "expected a tensor");
  at::Tensor* t = GetState(info.Env()).table.TryGet(h);
  if (!t) ThrowDisposed(info.Env(), h);
  return *t;
}

at::Tensor OptT(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || info[i].IsUndefined() || info[i].IsNull()) return at::Tensor();
  double h = info[i].As<Napi::Number>().DoubleValue();
  if (h == -1) return at::Tensor();  // -1 is "none"; a disposed tensor's -2 goes on to T(), which says so
  return T(info, i);
}

double Num(const Napi::CallbackInfo& info, size_t i) {
  double d = 0;
  if (napi_get_value_double(info.Env(), info[i], &d) != napi_ok) {
    bool b;
    if (napi_get_value_bool(info.Env(), info[i], &b) == napi_ok) return b ? 1 : 0;
    throw Napi::TypeError::New(info.Env(), "expected a number");
  }
  return d;
}

// A double that is an integer in int64 range: napi_get_value_int64 alone truncates 1.7 to 1 and reads NaN and
// Infinity as 0, which would silently change the argument.
static int64_t CheckedInt(Napi::Env env, napi_value v) {
  double d = 0;
  if (napi_get_value_double(env, v, &d) != napi_ok) throw Napi::TypeError::New(env, "expected an integer");
  // 2^63 itself does not fit: the largest double below it does
  if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != static_cast<double>(static_cast<int64_t>(d))) {
    Napi::Value shown = Napi::Value(env, v).ToString();
    throw Napi::RangeError::New(env, "expected an integer but received " + shown.As<Napi::String>().Utf8Value());
  }
  return static_cast<int64_t>(d);
}

int64_t Int(const Napi::CallbackInfo& info, size_t i) { return CheckedInt(info.Env(), info[i]); }

bool Bool(const Napi::CallbackInfo& info, size_t i, bool dflt) {
  if (i >= info.Length() || info[i].IsUndefined() || info[i].IsNull()) return dflt;
  return info[i].ToBoolean().Value();
}

// Reading an array argument can run JS (an element getter), and that JS can dispose a tensor this call already
// resolved with T(): T() returns a reference into the tensor's table slot, which a tensor made next takes over, so
// the op would run on that other tensor. The array readers note which arguments are live tensor handles before
// reading and refuse the call (DISPOSED) if any of them was released meanwhile (a released slot's generation moves
// on, so its old handle no longer resolves, whoever holds the slot now).
class ArgumentsGuard {
 public:
  explicit ArgumentsGuard(const Napi::CallbackInfo& info) : info_(info) {
    auto& table = GetState(info.Env()).table;
    for (size_t k = 0; k < info.Length(); ++k) {
      double h = 0;
      if (info[k].IsNumber() && napi_get_value_double(info.Env(), info[k], &h) == napi_ok && table.TryGet(h))
        handles_.push_back(h);
    }
  }
  void Check() const {
    auto& table = GetState(info_.Env()).table;
    for (double h : handles_)
      if (!table.TryGet(h))
        ThrowTorchError(info_.Env(),
                        "a tensor of this call was disposed while the call read its arguments (by a getter of an "
                        "array argument?): the call is refused",
                        "DISPOSED");
  }

 private:
  const Napi::CallbackInfo& info_;
  std::vector<double> handles_;
};

std::vector<int64_t> Ints(const Napi::CallbackInfo& info, size_t i) {
  std::vector<int64_t> out;
  if (i >= info.Length() || !info[i].IsArray()) return out;
  ArgumentsGuard guard(info);
  Napi::Array a = info[i].As<Napi::Array>();
  uint32_t n = a.Length();
  out.reserve(n);
  for (uint32_t k = 0; k < n; ++k) out.push_back(CheckedInt(info.Env(), a.Get(k)));
  guard.Check();
  return out;
}

std::vector<at::Tensor> Tensors(const Napi::CallbackInfo& info, size_t i) {
  std::vector<at::Tensor> out;
  ArgumentsGuard guard(info);
  Napi::Array a = info[i].As<Napi::Array>();
  uint32_t n = a.Length();
  out.reserve(n);
  auto& table = GetState(info.Env()).table;
  for (uint32_t k = 0; k < n; ++k) {
    const double h = a.Get(k).As<Napi::Number>().DoubleValue();
    at::Tensor* t = table.TryGet(h);
    if (!t) ThrowDisposed(info.Env(), h);
    out.push_back(*t);
  }
  guard.Check();
  return out;
}

c10::optional<int64_t> OptInt(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || info[i].IsUndefined() || info[i].IsNull()) return c10::nullopt;
  return Int(info, i);
}

// Codes shared with lib/dtype.ts.
at::ScalarType Dtype(int code) {
  switch (code) {
    case 0: return at::kFloat;
    case 1: return at::kDouble;
    case 2: return at::kInt;
    case 3: return at::kLong;
    case 4: return at::kBool;
    case 5: return at::kHalf;
    case 6: return at::kBFloat16;
    case 7: return at::kByte;
    case 8: return at::kChar;
    case 9: return at::kShort;
  }
  throw std::invalid_argument("unknown dtype code " + std::to_string(code));
}

int DtypeCode(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return 0;
    case at::kDouble: return 1;
    case at::kInt: return 2;
    case at::kLong: return 3;
    case at::kBool: return 4;
    case at::kHalf: return 5;
    case at::kBFloat16: return 6;
    case at::kByte: return 7;
    case at::kChar: return 8;
    case at::kShort: return 9;
    default: return -1;
  }
}

at::Device ParseDevice(Napi::Env env, const std::string& name) {
  at::Device d(name);
  if (d.is_cuda()) {
    // Checked here rather than left to libtorch, whose messages for this ("Could not run 'aten::empty' with
    // arguments from the 'CUDA' backend", "Torch not compiled with CUDA enabled") do not say what to do.
    if (!at::hasCUDA())
      ThrowTorchError(env,
                      "CUDA is not available: this libtorch was built without CUDA, or no CUDA GPU and driver were "
                      "found (device '" + name + "' asked for). Use device 'cpu', or build tensornormal against a CUDA "
                      "libtorch (see the README, GPU); torch.cuda.isAvailable() tells beforehand",
                      "DEVICE_UNAVAILABLE");
    const int64_t n = at::detail::getCUDAHooks().getNumGPUs();
    if (d.has_index() && d.index() >= n)
      ThrowTorchError(env, "CUDA device " + std::to_string(d.index()) + " is not available: this machine has " +
                               std::to_string(n) + " CUDA device(s) (cuda:0 to cuda:" + std::to_string(n - 1) + ")",
                      "DEVICE_UNAVAILABLE");
  }
  return d;
}

at::Device Dev(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || info[i].IsUndefined() || info[i].IsNull()) return at::Device(at::kCPU);
  return ParseDevice(info.Env(), info[i].As<Napi::String>().Utf8Value());
}

at::TensorOptions Opts(const Napi::CallbackInfo& info, size_t dtype_i, size_t device_i) {
  at::TensorOptions o = at::TensorOptions().dtype(Dtype(static_cast<int>(Int(info, dtype_i))));
  return o.device(Dev(info, device_i));
}

int64_t Reduction(const Napi::CallbackInfo& info, size_t i) {
  switch (ops::OpCode<ops::LossReduction>(Int(info, i))) {
    case ops::LossReduction::None: return at::Reduction::None;
    case ops::LossReduction::Mean: return at::Reduction::Mean;
    case ops::LossReduction::Sum: return at::Reduction::Sum;
  }
  throw std::invalid_argument("unknown reduction");  // unreachable: OpCode checked the code
}

Napi::Value Wrap(const Napi::CallbackInfo& info, at::Tensor t) {
  if (!t.defined()) return info.Env().Null();
  State& s = GetState(info.Env());
  double h = s.table.Put(std::move(t));
  FlushExternalMemory(info.Env(), s);
  return Napi::Number::New(info.Env(), h);
}

Napi::Value WrapAll(const Napi::CallbackInfo& info, const std::vector<at::Tensor>& ts) {
  Napi::Array a = Napi::Array::New(info.Env(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) a.Set(static_cast<uint32_t>(i), Wrap(info, ts[i]));
  return a;
}

std::vector<Export>& Registry() {
  static std::vector<Export> r;  // immutable after static init: function pointers only
  return r;
}

}  // namespace tn

using namespace tn;

// ---------------------------------------------------------------- lifecycle and process-wide settings
TN_EXPORT(init) {
  State& s = GetState(info.Env());
  if (info.Length() > 0 && info[0].IsFunction()) s.torch_error = Napi::Persistent(info[0].As<Napi::Function>());
  if (info.Length() > 1 && info[1].IsArray()) {
    Napi::Array a = info[1].As<Napi::Array>();
    s.disposed_reasons.clear();
    for (uint32_t k = 0; k < a.Length(); ++k) s.disposed_reasons.push_back(a.Get(k).ToString().Utf8Value());
  }
  return info.Env().Undefined();
}

TN_EXPORT(dispose) {
  State& s = GetState(info.Env());
  bool ok = s.table.Release(info[0].As<Napi::Number>().DoubleValue());
  FlushExternalMemory(info.Env(), s);
  return Napi::Boolean::New(info.Env(), ok);
}

TN_EXPORT(disposeMany) {
  State& s = GetState(info.Env());
  Napi::Array a = info[0].As<Napi::Array>();
  uint32_t n = a.Length(), freed = 0;
  for (uint32_t k = 0; k < n; ++k) freed += s.table.Release(a.Get(k).As<Napi::Number>().DoubleValue());
  FlushExternalMemory(info.Env(), s);
  return Napi::Number::New(info.Env(), freed);
}

TN_EXPORT(isLive) {
  return Napi::Boolean::New(info.Env(), GetState(info.Env()).table.TryGet(Num(info, 0)) != nullptr);
}

TN_EXPORT(memory) {
  State& s = GetState(info.Env());
  s.table.SweepRetained();
  FlushExternalMemory(info.Env(), s, true);
  std::unordered_set<const void*> seen;  // storage shared by views counts once
  int64_t bytes = 0;
  s.table.ForEach([&](const at::Tensor& t) {
    if (!t.has_storage()) return;
    if (!seen.insert(t.storage().unsafeGetStorageImpl()).second) return;
    bytes += static_cast<int64_t>(t.storage().nbytes());
  });
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("tensors", Napi::Number::New(info.Env(), static_cast<double>(s.table.live())));
  o.Set("bytes", Napi::Number::New(info.Env(), static_cast<double>(bytes)));
  o.Set("retainedBytes", Napi::Number::New(info.Env(), static_cast<double>(s.table.retained_bytes())));
  o.Set("externalBytes", Napi::Number::New(info.Env(), static_cast<double>(s.table.tracked_bytes + s.table.pending_bytes)));
  return o;
}

TN_EXPORT(liveCount) { return Napi::Number::New(info.Env(), static_cast<double>(GetState(info.Env()).table.live())); }

TN_EXPORT(setNumThreads) {
  at::set_num_threads(static_cast<int>(Int(info, 0)));
  return info.Env().Undefined();
}
TN_EXPORT(getNumThreads) { return Napi::Number::New(info.Env(), at::get_num_threads()); }

// lowerThreadPriority(delta): adds delta (>= 0) to the calling thread's nice value, up to 19 (Linux: nice is per
// thread, and threads it creates later, such as its OpenMP team, inherit it). Returns the new nice value, or null
// where the platform has no per-thread priority.
TN_EXPORT(lowerThreadPriority) {
#if defined(__linux__)
  int delta = static_cast<int>(Int(info, 0));
  if (delta < 0) throw std::invalid_argument("lowerThreadPriority: delta must be >= 0");
  id_t tid = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  int cur = getpriority(PRIO_PROCESS, tid);
  if (cur == -1 && errno != 0) throw std::runtime_error(std::string("getpriority failed: ") + std::strerror(errno));
  int nice = std::min(19, cur + delta);
  if (setpriority(PRIO_PROCESS, tid, nice) != 0)
    throw std::runtime_error(std::string("setpriority failed: ") + std::strerror(errno));
  return Napi::Number::New(info.Env(), nice);
#else
  return info.Env().Null();
#endif
}

// threadScheduling(policy): moves the calling thread to a Linux scheduling policy for background work; threads it
// creates later (its OpenMP team, OpenBLAS's pool when it starts it) inherit it.
//   'idle'  SCHED_IDLE: only cycles no other thread wants (a normal thread that wakes preempts it at once, and any
//           other process's work, at any nice, comes first). One way: an unprivileged thread cannot leave it.
//   'batch' SCHED_BATCH: a normal thread's share at its nice value, but its wake-ups never preempt a running
//           thread (the scheduler treats it as CPU-bound). An unprivileged thread may go back to 'normal'.
//   'normal' SCHED_OTHER.
// Returns true, or false where the platform has no such policies.
TN_EXPORT(threadScheduling) {
  std::string name = info[0].ToString().Utf8Value();
#if defined(__linux__) && defined(SCHED_IDLE) && defined(SCHED_BATCH)
  if (name == "short") {
    // SCHED_OTHER with the shortest time slice the kernel takes (0.1 ms; Linux 6.12+, EEVDF: a waking thread waits
    // at most that long for a core this one holds, where the default slice protects it for up to ~3 ms; earlier
    // kernels ignore the field)
    struct {
      uint32_t size;
      uint32_t sched_policy;
      uint64_t sched_flags;
      int32_t sched_nice;
      uint32_t sched_priority;
      uint64_t sched_runtime, sched_deadline, sched_period;
      uint32_t sched_util_min, sched_util_max;
    } attr{};
    attr.size = sizeof(attr);
    attr.sched_policy = SCHED_OTHER;
    errno = 0;
    attr.sched_nice = getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));  // kept as it is
    if (attr.sched_nice == -1 && errno != 0)
      throw std::runtime_error(std::string("getpriority failed: ") + std::strerror(errno));
    attr.sched_runtime = 100000;
    if (syscall(SYS_sched_setattr, 0, &attr, 0) != 0)
      throw std::runtime_error(std::string("sched_setattr(short slice) failed: ") + std::strerror(errno));
    return Napi::Boolean::New(info.Env(), true);
  }
  int policy = name == "idle" ? SCHED_IDLE : name == "batch" ? SCHED_BATCH : name == "normal" ? SCHED_OTHER : -1;
  if (policy < 0) throw std::invalid_argument("threadScheduling: expected 'idle', 'batch' or 'normal' but received '" + name + "'");
  sched_param param{};
  param.sched_priority = 0;
  if (sched_setscheduler(0, policy, &param) != 0)
    throw std::runtime_error("sched_setscheduler(" + name + ") failed: " + std::strerror(errno));
  return Napi::Boolean::New(info.Env(), true);
#else
  if (name != "idle" && name != "batch" && name != "normal")
    throw std::invalid_argument("threadScheduling: expected 'idle', 'batch' or 'normal' but received '" + name + "'");
  return Napi::Boolean::New(info.Env(), false);
#endif
}

// shutdownBlasThreads(): stops OpenBLAS's thread pool (pthread builds); the next multi-threaded BLAS call starts a
// new one from the thread that makes it, and the new threads inherit that thread's priority. Must not run while
// another thread is inside a multi-threaded BLAS call: this environment's background work (TNT's asynchronous
// inverses) is waited for first. Returns false where the BLAS has no such pool.
TN_EXPORT(shutdownBlasThreads) {
  using Fn = int (*)();
  auto fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "blas_thread_shutdown_"));
  if (fn == nullptr) return Napi::Boolean::New(info.Env(), false);
  GetState(info.Env()).WaitBackgroundIdle();
  fn();
  return Napi::Boolean::New(info.Env(), true);
}

// narrowThreads(mode): a training job's parallelism while the server it runs beside answers requests.
//   'narrow': the calling thread's OpenMP regions (libtorch's intra-op parallelism) run on one thread, and
//             OpenBLAS's calls on one thread, process-wide, while any thread is narrowed;
//   'widen':  undoes the calling thread's 'narrow';
//   'reset':  widens every thread's BLAS (after a narrowed worker was terminated).
// A low-priority job's helpers wait for cores the server holds, and the others spin and yield while they wait for
// them: on 2 cores a narrowed job made twice the steps in the same time beside requests (docs/service.md). The
// OpenMP count is per thread (each thread has its own); OpenBLAS has one for the process, and its pool keeps its
// threads (only the count a call splits into changes). Returns whether the calling thread is narrowed now.
namespace {
std::atomic<int> narrowed_threads{0};
std::atomic<int> blas_threads_before{0};
thread_local int omp_threads_before = 0;
}  // namespace
TN_EXPORT(narrowThreads) {
  std::string mode = info[0].ToString().Utf8Value();
  using GetFn = int (*)();
  using SetFn = void (*)(int);
  auto omp_get = reinterpret_cast<GetFn>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
  auto omp_set = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  auto blas_get = reinterpret_cast<GetFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  auto blas_set = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (mode == "narrow") {
    if (omp_threads_before > 0) return Napi::Boolean::New(info.Env(), true);
    omp_threads_before = omp_get != nullptr ? omp_get() : 1;
    if (omp_set != nullptr) omp_set(1);
    if (narrowed_threads.fetch_add(1) == 0 && blas_get != nullptr && blas_set != nullptr) {
      blas_threads_before = blas_get();
      blas_set(1);
    }
    return Napi::Boolean::New(info.Env(), true);
  }
  if (mode == "widen") {
    if (omp_threads_before == 0) return Napi::Boolean::New(info.Env(), false);
    if (omp_set != nullptr) omp_set(omp_threads_before);
    omp_threads_before = 0;
    if (narrowed_threads.fetch_sub(1) == 1 && blas_set != nullptr && blas_threads_before > 0) blas_set(blas_threads_before);
    return Napi::Boolean::New(info.Env(), false);
  }
  if (mode == "reset") {
    if (narrowed_threads.exchange(0) > 0 && blas_set != nullptr && blas_threads_before > 0) blas_set(blas_threads_before);
    return Napi::Boolean::New(info.Env(), omp_threads_before > 0);
  }
  throw std::invalid_argument("narrowThreads: expected 'narrow', 'widen' or 'reset' but received '" + mode + "'");
}

// raiseMallocThresholds(): glibc malloc serves allocations up to 32 MiB (its largest mmap threshold on 64-bit,
// half a heap) from its arenas and keeps up to 256 MiB of free memory at the top of a heap instead of unmapping
// it. A training job frees and reallocates megabytes every step; each munmap (and each fault on fresh pages)
// takes the process's memory-map lock, and a page fault on the serving thread then waits behind a low-priority
// thread holding it. Process-wide; returns false where the allocator is not glibc's.
TN_EXPORT(raiseMallocThresholds) {
#if defined(__GLIBC__)
  bool ok = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 256 << 20) == 1;
  return Napi::Boolean::New(info.Env(), ok);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

TN_EXPORT(manualSeed) {
  // a double in [0, 2^64) (the TypeScript side checks): seeds above 2^63 are valid in PyTorch too
  at::manual_seed(static_cast<uint64_t>(Num(info, 0)));
  return info.Env().Undefined();
}

TN_EXPORT(cudaIsAvailable) { return Napi::Boolean::New(info.Env(), at::hasCUDA()); }

// checkDevice(name): throws what creating a tensor there would (DEVICE_UNAVAILABLE for a CUDA device this build or
// machine lacks), so that multi-step operations (Module.to) fail before they change anything.
TN_EXPORT(checkDevice) {
  ParseDevice(info.Env(), info[0].As<Napi::String>().Utf8Value());
  return info.Env().Undefined();
}

TN_EXPORT(cudaDeviceCount) {
  return Napi::Number::New(info.Env(), at::hasCUDA() ? static_cast<double>(at::detail::getCUDAHooks().getNumGPUs()) : 0.0);
}

TN_EXPORT(versions) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("torch", Napi::String::New(info.Env(), std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." + std::to_string(TORCH_VERSION_PATCH)));
  o.Set("parallel", Napi::String::New(info.Env(), at::get_parallel_info()));
  // The BLAS that libtorch's CPU matmuls run on, when it is OpenBLAS (Debian's libtorch): its configuration and the
  // kernel set it chose for this CPU ("Prescott" on a CPU it does not know, which is 4x slower than "SkylakeX").
  using CharFn = char* (*)();
  auto config = reinterpret_cast<CharFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
  auto core = reinterpret_cast<CharFn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (config != nullptr) o.Set("blas", Napi::String::New(info.Env(), config()));
  if (core != nullptr) o.Set("blasCore", Napi::String::New(info.Env(), core()));
  // the threads OpenBLAS's pool runs (OPENBLAS_NUM_THREADS as read when it loaded, else one per core): libtorch's
  // set_num_threads does not reach it, and process time counts its work
  using IntFn = int (*)();
  auto threads = reinterpret_cast<IntFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (threads != nullptr) o.Set("blasThreads", Napi::Number::New(info.Env(), threads()));
  return o;
}

TN_EXPORT(setGradEnabled) {
  bool prev = at::GradMode::is_enabled();
  at::GradMode::set_enabled(Bool(info, 0));
  return Napi::Boolean::New(info.Env(), prev);
}
TN_EXPORT(isGradEnabled) { return Napi::Boolean::New(info.Env(), at::GradMode::is_enabled()); }

// Test hook: proves the guard turns an escaping C++ exception into a JS error.
TN_EXPORT(throwForTest) {
  std::string kind = info[0].As<Napi::String>().Utf8Value();
  if (kind == "c10") TORCH_CHECK(false, "test failure from c10");
  if (kind == "std") throw std::runtime_error("test failure from std");
  throw std::bad_alloc();
}

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<State>(new State());
  GetState(env).env = env;
  for (const Export& e : Registry()) exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
  // libtorch's thread pool is process-wide: the first environment to load sets the default (every core).
  static std::once_flag threads_once;
  std::call_once(threads_once, [] {
    unsigned n = std::thread::hardware_concurrency();
    if (n > 0) at::set_num_threads(static_cast<int>(n));
  });
  return exports;
}

NODE_API_MODULE(tensornormal, InitModule)
