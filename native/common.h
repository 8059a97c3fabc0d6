// Shared plumbing of the addon: per-environment state (the tensor handle table), argument helpers,
// the exception guard every entry point runs under, and the export registry.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <napi.h>
#include <torch/version.h>

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <memory>
#include <thread>
#include <string>
#include <utility>
#include <vector>

namespace tn {

// A handle is a JS number: slot + generation * 2^22. The generation makes a stale handle (disposed, its slot
// reused) fail loudly instead of reaching another tensor, and makes a late GC finalizer a harmless no-op.
constexpr uint64_t kSlotBits = 22;
constexpr uint64_t kSlotMask = (uint64_t(1) << kSlotBits) - 1;

class TensorTable {
 public:
  double Put(at::Tensor t);
  at::Tensor& Get(double handle);             // throws a TorchError('DISPOSED') for a stale handle
  at::Tensor* TryGet(double handle);          // nullptr for a stale handle
  bool Release(double handle);                // false when already released
  size_t live() const { return live_; }
  int64_t pending_bytes = 0;                  // external-memory delta not yet reported to V8
  int64_t tracked_bytes = 0;                  // bytes reported to V8 so far
  // Bytes of storages whose tensors were released while something else (an autograd graph's saved tensors, a view)
  // still keeps them alive; they stay reported to V8 until they are freed (see Release and SweepRetained).
  int64_t retained_bytes() const { return retained_bytes_; }
  void SweepRetained();
  template <typename F> void ForEach(F f) const {
    for (size_t i = 0; i < slots_.size(); ++i)
      if (slots_[i].defined()) f(slots_[i]);
  }
  void Clear();

 private:
  // A deque: growing it never moves existing slots, so an at::Tensor* taken from Get/TryGet stays valid while
  // the same call wraps new tensors (until that slot is released).
  std::deque<at::Tensor> slots_;
  std::vector<uint32_t> gens_;
  std::vector<int64_t> bytes_;
  std::vector<uint32_t> free_;
  size_t live_ = 0;
  struct Retained {
    c10::weak_intrusive_ptr<c10::StorageImpl> storage;  // a weak reference keeps the address from being reused
    int64_t bytes;
  };
  std::unordered_map<const c10::StorageImpl*, Retained> retained_;
  int64_t retained_bytes_ = 0;
  size_t sweep_at_ = 64;
  uint32_t releases_since_sweep_ = 0;
};

// Work that a native thread does in the background for an environment (TNT's asynchronous inverse refresh,
// native/optim/tnt.cc): it is waited for before OpenBLAS's thread pool is restarted (shutdownBlasThreads: the restart
// must not meet a BLAS call in progress), and cancelled and joined when the environment is torn down. Only the
// environment's JS thread calls these.
class BackgroundWork {
 public:
  virtual ~BackgroundWork() = default;
  virtual void WaitIdle() = 0;  // returns once no thread of it is running; a finished result is kept
  virtual void Cancel() = 0;    // asks the thread to stop, joins it, discards its result
};

struct State {
  TensorTable table;
  // The background work of this environment (weak: each is owned by the JS object that made it).
  std::vector<std::weak_ptr<BackgroundWork>> background;
  // Waits for every background thread of this environment to be idle (before a BLAS pool restart).
  void WaitBackgroundIdle();
  Napi::FunctionReference torch_error;  // the JS TorchError class, handed over by init()
  napi_env env = nullptr;
  // The JS thread of this environment (State is made at module init, on it): tensor hooks call JS only there.
  std::thread::id thread = std::this_thread::get_id();
  // False once the environment is torn down: a tensor hook that outlives it must not touch its references.
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  // A JS exception thrown by a gradient hook inside backward(), boxed as { error }; the entry point rethrows it.
  Napi::ObjectReference hook_error;
  // Why a tensor was freed, by the negative handle its JS wrapper keeps (-2 - k is reason k; handed over by init()).
  std::vector<std::string> disposed_reasons;
  // The distributed process group of this environment (native/distributed.cc's DistState), made on first use.
  std::shared_ptr<void> dist;
  // The TorchScript modules of this environment (native/jit.cc's JitState), made on first use.
  std::shared_ptr<void> jit;
  ~State();
};

// Throws the JS exception a tensor hook left in `hook_error`, if any (called when backward's C++ call fails).
void RethrowHookError(Napi::Env env);

State& GetState(napi_env env);

// Converts a libtorch / std exception into a JS TorchError with a code and libtorch's message.
[[noreturn]] void ThrowTorchError(Napi::Env env, const std::string& message, const char* code = nullptr);
const char* ClassifyError(const std::string& message);
// Throws TorchError('DISPOSED') for a handle that is not a live tensor, saying why it was freed when the handle
// is a disposed wrapper's reason code (see lib/scope.ts FREED).
[[noreturn]] void ThrowDisposed(Napi::Env env, double handle);

// ---- argument helpers (the TypeScript layer validates; these are the last line) ----
at::Tensor& T(const Napi::CallbackInfo& info, size_t i);
at::Tensor OptT(const Napi::CallbackInfo& info, size_t i);  // undefined / null / -1 -> undefined tensor
double Num(const Napi::CallbackInfo& info, size_t i);
int64_t Int(const Napi::CallbackInfo& info, size_t i);  // an integral number in int64 range, else a RangeError
bool Bool(const Napi::CallbackInfo& info, size_t i, bool dflt = false);
std::vector<int64_t> Ints(const Napi::CallbackInfo& info, size_t i);
std::vector<at::Tensor> Tensors(const Napi::CallbackInfo& info, size_t i);
c10::optional<int64_t> OptInt(const Napi::CallbackInfo& info, size_t i);
at::ScalarType Dtype(int code);
int DtypeCode(at::ScalarType t);
at::Device Dev(const Napi::CallbackInfo& info, size_t i);  // undefined -> cpu
// A device by name; a CUDA device this libtorch or machine does not have is a TorchError('DEVICE_UNAVAILABLE').
at::Device ParseDevice(Napi::Env env, const std::string& name);
at::TensorOptions Opts(const Napi::CallbackInfo& info, size_t dtype_i, size_t device_i);
int64_t Reduction(const Napi::CallbackInfo& info, size_t i);  // a code of opcodes.h TN_LOSS_REDUCTIONS -> at::Reduction

Napi::Value Wrap(const Napi::CallbackInfo& info, at::Tensor t);  // undefined tensor -> null
Napi::Value WrapAll(const Napi::CallbackInfo& info, const std::vector<at::Tensor>& ts);
void FlushExternalMemory(napi_env env, State& s, bool force = false);

// ---- export registry: every TN_EXPORT function is wrapped by Guarded and added at module init ----
using Impl = Napi::Value (*)(const Napi::CallbackInfo&);
struct Export {
  const char* name;
  Napi::Function::Callback fn;
};
std::vector<Export>& Registry();
struct Registrar {
  Registrar(const char* name, Napi::Function::Callback fn) { Registry().push_back({name, fn}); }
};

template <Impl F>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    RethrowHookError(info.Env());
    ThrowTorchError(info.Env(), e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    ThrowTorchError(info.Env(), "out of memory", "OUT_OF_MEMORY");
  } catch (const std::exception& e) {
    RethrowHookError(info.Env());
    ThrowTorchError(info.Env(), e.what());
  }
}

}  // namespace tn

#define TN_CAT2(a, b) a##b
#define TN_CAT(a, b) TN_CAT2(a, b)
#define TN_EXPORT(name)                                                                            \
  static Napi::Value name##_impl(const Napi::CallbackInfo& info);                                \
  static ::tn::Registrar TN_CAT(name##_reg_, __LINE__)(#name, &::tn::Guarded<&name##_impl>);     \
  static Napi::Value name##_impl(const Napi::CallbackInfo& info)
