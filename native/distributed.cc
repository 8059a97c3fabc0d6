// Distributed collectives on libtorch's c10d (ProcessGroupGloo; ProcessGroupNCCL where the build has it).
//
// One process group per Node environment (State::dist). Everything that can wait on the network runs off the JS
// thread: the rendezvous (store connection + Gloo full mesh) on a libuv worker (Napi::AsyncWorker), a collective
// on Gloo's own threads. A collective's completion is a c10::ivalue::Future callback (on a Gloo thread) that hands
// over to the JS thread through a thread-safe function, where the promise settles. The tensors of a collective are
// held (at::Tensor copies) until it completes; the caller must not write them meanwhile.
//
// The rendezvous reproduces torch.distributed.init_process_group's (torch/distributed/distributed_c10d.py) for the
// libtorch it is built against, so that a Python rank of the same PyTorch and a Node rank can join one group:
//   1.x:  TCPStore (rank 0 hosts it, multi-tenant) or FileStore -> PrefixStore("default_pg") -> the backend on
//         PrefixStore("0"), then the store-based barrier on "store_based_barrier_key:1", then the sequence number.
//   2.x:  the group name is followed by "/" and each backend gets a per-device prefix (a ProcessGroup holds one
//         backend per device type): PrefixStore("default_pg") -> PrefixStore("0/") -> PrefixStore("cpu/") for
//         Gloo, "cuda/" for NCCL; the sequence number; the barrier (on "store_based_barrier_key:0", with its
//         ":last_worker" key) only in 2.0, or where TORCH_DIST_INIT_BARRIER=1 asks for it (2.1 and later).
#include "common.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#ifdef __linux__
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <condition_variable>
#include <set>
#endif

#if defined(TN_HAVE_GLOO)
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(TN_HAVE_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

using namespace tn;

// libtorch 2.4+ asks TCPStore for its libuv backend by default, which Debian's libtorch (2.6) is built without
// ("use_libuv was requested but PyTorch was build without libuv support"); 1.13 has no such option. The classic
// backend speaks the same protocol.
template <class O>
auto DisableLibuv(O& o, int) -> decltype(o.useLibUV = false, void()) {
  o.useLibUV = false;
}
template <class O>
void DisableLibuv(O&, long) {}

namespace {

Napi::Value MakeTorchError(Napi::Env env, const std::string& message, const char* code) {
  std::string msg = message;
  auto cut = msg.find("\nException raised from");
  if (cut != std::string::npos) msg.resize(cut);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  State& s = GetState(env);
  if (!s.torch_error.IsEmpty())
    return s.torch_error.New({Napi::String::New(env, msg), Napi::String::New(env, code)});
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  return e.Value();
}

}  // namespace

#if defined(TN_HAVE_GLOO)

namespace {

// The collectives tensornormal calls exist with the same signatures on ProcessGroupGloo / ProcessGroupNCCL in
// libtorch 1.13 (where they derive from ProcessGroup) and 2.x (where they derive from Backend), so the group is
// held as its concrete class and no version guard is needed here.
struct Group {
  std::string backend;
  int rank = 0, size = 1;
  std::chrono::milliseconds timeout{0};
  c10::intrusive_ptr<c10d::Store> store;  // the "default_pg"-prefixed store (user key/values, barrier)
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#if defined(TN_HAVE_NCCL)
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  std::atomic<int64_t> pending{0};
  std::atomic<int64_t> bytes{0};  // payload bytes this rank handed to collectives (see distStats)
  // The Gloo devices the default group was made with (newGroup makes its subgroups on the same), and for a subgroup
  // its global ranks (ranks[group rank]) and name ("1", "2", ... as torch.distributed numbers new groups).
  std::vector<std::shared_ptr<::gloo::transport::Device>> devices;
  std::vector<int> ranks;
  std::string name = "0";

  template <typename F> c10::intrusive_ptr<c10d::Work> Call(F f) {
#if defined(TN_HAVE_NCCL)
    if (nccl) return f(*nccl);
#endif
    return f(*gloo);
  }
};

struct DistState {
  std::mutex mu;
  std::shared_ptr<Group> group;
  bool initializing = false;
  // Subgroups (newGroup) by id; every rank counts every newGroup call (members or not), as torch.distributed does.
  std::map<int64_t, std::shared_ptr<Group>> subgroups;
  int64_t groupCount = 1;
};

DistState& Dist(Napi::Env env) {
  State& s = GetState(env);
  if (!s.dist) s.dist = std::make_shared<DistState>();
  return *static_cast<DistState*>(s.dist.get());
}

std::shared_ptr<Group> Current(Napi::Env env) {
  DistState& d = Dist(env);
  std::lock_guard<std::mutex> lock(d.mu);
  if (!d.group)
    ThrowTorchError(env, "the default process group is not initialized: call distributed.initProcessGroup() first",
                    "DISTRIBUTED");
  return d.group;
}

// The group a collective runs on: info[i] is a subgroup id (newGroup), or absent / undefined for the default group.
std::shared_ptr<Group> GroupAt(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return Current(info.Env());
  int64_t id = Int(info, i);
  DistState& d = Dist(info.Env());
  std::lock_guard<std::mutex> lock(d.mu);
  if (!d.group)
    ThrowTorchError(info.Env(),
                    "the default process group is not initialized: call distributed.initProcessGroup() first",
                    "DISTRIBUTED");
  auto it = d.subgroups.find(id);
  if (it == d.subgroups.end())
    ThrowTorchError(info.Env(), "this process group was destroyed (or this rank is not a member of it)", "DISTRIBUTED");
  return it->second;
}

std::string Str(Napi::Object o, const char* k, const std::string& dflt = "") {
  Napi::Value v = o.Get(k);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : dflt;
}
int64_t Int64(Napi::Object o, const char* k, int64_t dflt) {
  Napi::Value v = o.Get(k);
  return v.IsNumber() ? v.As<Napi::Number>().Int64Value() : dflt;
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// ---------------------------------------------------------------- rendezvous (off the JS thread)
// torch.distributed's _store_based_barrier: every rank adds 1 to `key` and waits until the count is the world size;
// 2.x's also sets `key:last_worker` from the last rank to arrive (its Python ranks wait for that key).
void StoreBarrier(c10d::Store& store, const std::string& key, int size, std::chrono::milliseconds timeout, bool lastWorker) {
  if (store.add(key, 1) == size && lastWorker) store.set(key + ":last_worker", std::vector<uint8_t>{'1'});
  auto start = std::chrono::steady_clock::now();
  while (store.add(key, 0) != size) {
    if (std::chrono::steady_clock::now() - start > timeout)
      throw std::runtime_error("DISTRIBUTED: timed out initializing the process group in the store-based barrier");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

#ifdef __linux__
// libtorch 1.13's TCPStore client reads the store's replies with no timeout: when something other than the rank-0
// store listens on the master port (a server that accepts and says nothing, or answers garbage), initProcessGroup
// never settled, whatever its timeout. Past the timeout this watchdog shuts down (shutdown(2), not close: the
// descriptors stay c10d's) the sockets connected to that port that were opened during the initialization, so the
// blocked read returns, c10d throws and the promise rejects.
class StoreWatchdog {
 public:
  StoreWatchdog(int port, std::chrono::milliseconds timeout, std::atomic<bool>& fired)
      : port_(port), before_(Sockets(port)), thread_([this, timeout, &fired] {
          std::unique_lock<std::mutex> lock(mu_);
          if (cv_.wait_for(lock, timeout, [this] { return done_; })) return;
          fired = true;
          for (const auto& s : Sockets(port_))
            if (!before_.count(s)) ::shutdown(s.first, SHUT_RDWR);
        }) {}
  ~StoreWatchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  // (descriptor, inode) of this process's sockets whose peer is `port`
  static std::set<std::pair<int, ino_t>> Sockets(int port) {
    std::set<std::pair<int, ino_t>> out;
    DIR* dir = opendir("/proc/self/fd");
    if (!dir) return out;
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      int fd = std::atoi(e->d_name);
      sockaddr_storage a{};
      socklen_t n = sizeof a;
      struct stat st {};
      if (getpeername(fd, reinterpret_cast<sockaddr*>(&a), &n) != 0 || fstat(fd, &st) != 0) continue;
      int p = a.ss_family == AF_INET    ? ntohs(reinterpret_cast<sockaddr_in*>(&a)->sin_port)
              : a.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&a)->sin6_port)
                                        : -1;
      if (p == port) out.emplace(fd, st.st_ino);
    }
    closedir(dir);
    return out;
  }
  int port_;
  std::set<std::pair<int, ino_t>> before_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};
#endif

class InitWorker : public Napi::AsyncWorker {
 public:
  InitWorker(Napi::Env env, Napi::Object o)
      : Napi::AsyncWorker(env, "tensornormal:initProcessGroup"), deferred_(Napi::Promise::Deferred::New(env)) {
    backend_ = Str(o, "backend", "gloo");
    store_kind_ = Str(o, "store", "tcp");
    host_ = Str(o, "host", "127.0.0.1");
    port_ = Int64(o, "port", 29500);
    path_ = Str(o, "path");
    rank_ = static_cast<int>(Int64(o, "rank", 0));
    size_ = static_cast<int>(Int64(o, "worldSize", 1));
    timeout_ = std::chrono::milliseconds(Int64(o, "timeout", 30 * 60 * 1000));
    ifname_ = Str(o, "ifname");
  }
  std::atomic<bool> timed_out_{false};
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
#ifdef __linux__
    std::unique_ptr<StoreWatchdog> watchdog;
    if (store_kind_ == "tcp") watchdog = std::make_unique<StoreWatchdog>(static_cast<int>(port_), timeout_, timed_out_);
#endif
    try {
      auto g = std::make_shared<Group>();
      g->backend = backend_;
      g->rank = rank_;
      g->size = size_;
      g->timeout = timeout_;
      c10::intrusive_ptr<c10d::Store> base;
      if (store_kind_ == "file") {
        base = c10::make_intrusive<c10d::FileStore>(path_, size_);
      } else {
        c10d::TCPStoreOptions so;
        so.port = static_cast<std::uint16_t>(port_);
        so.isServer = rank_ == 0;
        so.numWorkers = static_cast<std::size_t>(size_);
        so.waitWorkers = true;
        so.timeout = timeout_;
        so.multiTenant = true;
        DisableLibuv(so, 0);
        base = c10::make_intrusive<c10d::TCPStore>(host_, so);
      }
      base->setTimeout(timeout_);
      g->store = c10::make_intrusive<c10d::PrefixStore>("default_pg", base);
#if TORCH_VERSION_MAJOR >= 2
      auto pg_store = c10::make_intrusive<c10d::PrefixStore>(
          backend_ == "nccl" ? "cuda/" : "cpu/", c10::make_intrusive<c10d::PrefixStore>("0/", g->store));
#else
      auto pg_store = c10::make_intrusive<c10d::PrefixStore>("0", g->store);
#endif
      if (backend_ == "nccl") {
#if defined(TN_HAVE_NCCL)
        auto opts = c10d::ProcessGroupNCCL::Options::create();
        opts->timeout = timeout_;
        g->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(pg_store, rank_, size_, opts);
#else
        throw std::invalid_argument(
            "DISTRIBUTED: backend 'nccl' is not available: this build of tensornormal has no NCCL (it needs a CUDA "
            "libtorch built with NCCL and its c10d headers); use backend 'gloo'");
#endif
      } else {
        auto opts = c10d::ProcessGroupGloo::Options::create(timeout_);
        // As torch.distributed: GLOO_SOCKET_IFNAME names the interfaces (comma-separated); else the device is the
        // host's name. A loopback master means a one-machine group: bind to 127.0.0.1 (the host name may resolve to
        // an address that is not reachable in a container).
        std::string ifs = ifname_;
        if (ifs.empty()) {
          const char* e = std::getenv("GLOO_SOCKET_IFNAME");
          if (e) ifs = e;
        }
        if (!ifs.empty()) {
          std::stringstream ss(ifs);
          std::string name;
          while (std::getline(ss, name, ','))
            if (!name.empty()) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
        } else if (store_kind_ != "file" && IsLoopback(host_)) {
          opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
        } else {
          opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        }
        opts->threads = static_cast<int>(opts->devices.size() * 2);
        g->devices = opts->devices;
        g->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(pg_store, rank_, size_, opts);
      }
#if TORCH_VERSION_MAJOR >= 2
      // 2.x: the sequence number as the backend is made, then the optional barrier
#if defined(TN_HAVE_NCCL)
      if (g->nccl) g->nccl->setSequenceNumberForGroup();
#endif
      if (g->gloo) g->gloo->setSequenceNumberForGroup();
      const char* want = std::getenv("TORCH_DIST_INIT_BARRIER");
      const bool barrier = TORCH_VERSION_MINOR == 0 || (want != nullptr && std::string(want) == "1");
      if (barrier) StoreBarrier(*g->store, "store_based_barrier_key:0", size_, timeout_, true);
#else
      StoreBarrier(*g->store, "store_based_barrier_key:1", size_, timeout_, false);
#if defined(TN_HAVE_NCCL)
      if (g->nccl) g->nccl->setSequenceNumberForGroup();
#endif
      if (g->gloo) g->gloo->setSequenceNumberForGroup();
#endif
      group_ = std::move(g);
    } catch (const c10::Error& e) {
      SetError(Why(e.what_without_backtrace()));
    } catch (const std::exception& e) {
      SetError(Why(e.what()));
    }
  }
  std::string Why(const std::string& what) const {
    if (!timed_out_) return what;
    return "the rendezvous at " + host_ + ":" + std::to_string(port_) + " did not complete within " +
           std::to_string(timeout_.count()) +
           " ms (is something other than the rank-0 store listening on that port?): " + what;
  }

  void OnOK() override {
    Napi::Env env = Env();
    DistState& d = Dist(env);
    {
      std::lock_guard<std::mutex> lock(d.mu);
      d.initializing = false;
      d.group = group_;
    }
    deferred_.Resolve(env.Undefined());
  }
  void OnError(const Napi::Error& e) override {
    Napi::Env env = Env();
    DistState& d = Dist(env);
    {
      std::lock_guard<std::mutex> lock(d.mu);
      d.initializing = false;
    }
    std::string msg = e.Message();
    if (msg.rfind("DISTRIBUTED: ", 0) == 0) msg = msg.substr(13);
    deferred_.Reject(MakeTorchError(env, "initProcessGroup failed: " + msg, "DISTRIBUTED"));
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string backend_, store_kind_, host_, path_, ifname_;
  int64_t port_ = 0;
  int rank_ = 0, size_ = 1;
  std::chrono::milliseconds timeout_{0};
  std::shared_ptr<Group> group_;
};

// ---------------------------------------------------------------- completion on the JS thread
struct Pending;
void Settle(Napi::Env env, Napi::Function, Pending* p, void*);
using Tsfn = Napi::TypedThreadSafeFunction<Pending, void, Settle>;

struct Pending {
  Napi::Promise::Deferred deferred;
  Tsfn tsfn;
  std::shared_ptr<Group> group;
  c10::intrusive_ptr<c10d::Work> work;
  std::vector<at::Tensor> tensors;  // kept alive until completion
  std::function<void()> after;      // runs on success, before the promise resolves (e.g. AVG's division)
  std::string what;                 // the collective's name, for messages
  std::string error;                // set by the Gloo thread before it hands over
  explicit Pending(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

void Settle(Napi::Env env, Napi::Function, Pending* p, void*) {
  std::unique_ptr<Pending> own(p);
  p->group->pending--;
  if (env == nullptr) return;  // environment torn down
  Napi::HandleScope scope(env);
  if (p->error.empty() && p->after) {
    try {
      p->after();
    } catch (const std::exception& e) {
      p->error = e.what();
    }
  }
  if (!p->error.empty()) {
    std::string m = p->error;
    auto cut = m.find("\nException raised from");
    if (cut != std::string::npos) m.resize(cut);
    p->deferred.Reject(MakeTorchError(env, p->what + " failed on rank " + std::to_string(p->group->rank) + ": " + m,
                                      "DISTRIBUTED"));
  } else {
    p->deferred.Resolve(env.Undefined());
  }
  p->work.reset();
  p->tensors.clear();
}

// Launches `launch` (which returns the c10d work) and returns the promise of its completion.
template <typename L>
Napi::Value Launch(Napi::Env env, std::shared_ptr<Group> g, const char* what, std::vector<at::Tensor> held, L launch,
                   std::function<void()> after = nullptr) {
  auto* p = new Pending(env);
  p->group = g;
  p->what = what;
  p->tensors = std::move(held);
  p->after = std::move(after);
  Napi::Promise promise = p->deferred.Promise();
  // The thread-safe function exists before the work does, so a completion always has somewhere to go.
  try {
    p->tsfn = Tsfn::New(env, "tensornormal:collective", 0, 1, p);
  } catch (...) {
    delete p;
    throw;
  }
  try {
    p->work = launch();
  } catch (...) {
    p->tsfn.Release();  // no call was queued: Settle will not run
    delete p;
    throw;
  }
  g->pending++;
  c10::intrusive_ptr<c10::ivalue::Future> fut = p->work->getFuture();
  fut->addCallback([p](c10::ivalue::Future& f) {
    if (f.hasError()) {
      p->error = f.tryRetrieveErrorMessage();
      if (p->error.empty()) p->error = "unknown error";
    }
    // Settle() frees p on the JS thread, possibly before BlockingCall returns here: use a copy of the handle.
    Tsfn tsfn = p->tsfn;
    tsfn.BlockingCall();
    tsfn.Release();
  });
  return promise;
}

at::Tensor Checked(const Napi::CallbackInfo& info, size_t i, const char* what) {
  at::Tensor t = T(info, i);
  if (!t.is_contiguous())
    throw std::invalid_argument(std::string(what) + ": tensors must be contiguous (call .contiguous() first)");
  if (t.is_sparse()) throw std::invalid_argument(std::string(what) + ": sparse tensors are not supported");
  return t;
}

c10d::ReduceOp Op(const std::string& s) {
  if (s == "sum" || s == "avg") return c10d::ReduceOp(c10d::ReduceOp::SUM);
  if (s == "max") return c10d::ReduceOp(c10d::ReduceOp::MAX);
  if (s == "min") return c10d::ReduceOp(c10d::ReduceOp::MIN);
  if (s == "product") return c10d::ReduceOp(c10d::ReduceOp::PRODUCT);
  throw std::invalid_argument("unknown reduce op " + s);
}

}  // namespace

TN_EXPORT(distAvailable) { return Napi::Boolean::New(info.Env(), true); }

TN_EXPORT(distNcclAvailable) {
#if defined(TN_HAVE_NCCL)
  return Napi::Boolean::New(info.Env(), true);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

// distInit({ backend, store: 'tcp'|'file', host, port, path, rank, worldSize, timeout, ifname }) -> Promise<void>
TN_EXPORT(distInit) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "distInit: expected an options object");
  DistState& d = Dist(env);
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (d.group || d.initializing)
      ThrowTorchError(env, "trying to initialize the default process group twice", "DISTRIBUTED");
    d.initializing = true;
  }
  auto* w = new InitWorker(env, info[0].As<Napi::Object>());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// distInfo() -> { rank, worldSize, backend, pending, bytes } | null
TN_EXPORT(distInfo) {
  Napi::Env env = info.Env();
  DistState& d = Dist(env);
  std::lock_guard<std::mutex> lock(d.mu);
  if (!d.group) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("rank", d.group->rank);
  o.Set("worldSize", d.group->size);
  o.Set("backend", d.group->backend);
  o.Set("pending", static_cast<double>(d.group->pending.load()));
  o.Set("bytes", static_cast<double>(d.group->bytes.load()));
  o.Set("timeout", static_cast<double>(d.group->timeout.count()));
  return o;
}

// distAllReduce(h, op) -> Promise<void>: in place; 'avg' is a sum divided by the world size (Gloo has no AVG).
TN_EXPORT(distAllReduce) {
  auto g = GroupAt(info, 2);
  at::Tensor t = Checked(info, 0, "allReduce");
  std::string op = info[1].As<Napi::String>().Utf8Value();
  c10d::AllreduceOptions o;
  o.reduceOp = Op(op);
  o.timeout = g->timeout;
  g->bytes += t.numel() * t.element_size();
  std::function<void()> after;
  if (op == "avg") {
    int n = g->size;
    after = [t, n]() mutable { t.div_(n); };
  }
  return Launch(info.Env(), g, "allReduce", {t}, [&]() {
    std::vector<at::Tensor> ts{t};
    return g->Call([&](auto& pg) { return pg.allreduce(ts, o); });
  }, after);
}

// distBroadcast(h, src) -> Promise<void>: in place.
TN_EXPORT(distBroadcast) {
  auto g = GroupAt(info, 2);
  at::Tensor t = Checked(info, 0, "broadcast");
  int64_t src = Int(info, 1);
  if (src < 0 || src >= g->size)
    throw std::out_of_range("broadcast: src " + std::to_string(src) + " is out of range for world size " +
                            std::to_string(g->size));
  c10d::BroadcastOptions o;
  o.rootRank = src;
  o.rootTensor = 0;
  o.timeout = g->timeout;
  g->bytes += t.numel() * t.element_size();
  return Launch(info.Env(), g, "broadcast", {t}, [&]() {
    std::vector<at::Tensor> ts{t};
    return g->Call([&](auto& pg) { return pg.broadcast(ts, o); });
  });
}

// distAllGather(outHandles[], h) -> Promise<void>: outHandles[r] receives rank r's tensor.
TN_EXPORT(distAllGather) {
  auto g = GroupAt(info, 2);
  std::vector<at::Tensor> outs = Tensors(info, 0);
  at::Tensor t = Checked(info, 1, "allGather");
  if (static_cast<int>(outs.size()) != g->size)
    throw std::invalid_argument("allGather: the output list has " + std::to_string(outs.size()) +
                                " tensors; it needs one per rank (world size " + std::to_string(g->size) + ")");
  for (auto& o : outs) {
    if (!o.is_contiguous()) throw std::invalid_argument("allGather: output tensors must be contiguous");
    if (o.sizes() != t.sizes() || o.scalar_type() != t.scalar_type())
      throw std::invalid_argument("allGather: every output tensor must have the input's shape and dtype");
  }
  c10d::AllgatherOptions o;
  o.timeout = g->timeout;
  g->bytes += t.numel() * t.element_size() * (g->size - 1);
  std::vector<at::Tensor> held = outs;
  held.push_back(t);
  return Launch(info.Env(), g, "allGather", held, [&]() {
    std::vector<std::vector<at::Tensor>> os{outs};
    std::vector<at::Tensor> is{t};
    return g->Call([&](auto& pg) { return pg.allgather(os, is, o); });
  });
}

// distBarrier(group?, timeoutMs?) -> Promise<void>
TN_EXPORT(distBarrier) {
  auto g = GroupAt(info, 0);
  c10d::BarrierOptions o;
  o.timeout = g->timeout;
  if (info.Length() > 1 && info[1].IsNumber()) o.timeout = std::chrono::milliseconds(Int(info, 1));
  return Launch(info.Env(), g, "barrier", {}, [&]() { return g->Call([&](auto& pg) { return pg.barrier(o); }); });
}

// distReduce(h, dst, op, group?) -> Promise<void>: the reduction lands in `h` on group rank `dst` (torch's reduce;
// the other ranks' tensors are left as Gloo leaves them: scratch). 'avg' divides on dst.
TN_EXPORT(distReduce) {
  auto g = GroupAt(info, 3);
  at::Tensor t = Checked(info, 0, "reduce");
  int64_t dst = Int(info, 1);
  if (dst < 0 || dst >= g->size)
    throw std::out_of_range("reduce: dst " + std::to_string(dst) + " is out of range for group size " +
                            std::to_string(g->size));
  std::string op = info[2].As<Napi::String>().Utf8Value();
  c10d::ReduceOptions o;
  o.reduceOp = Op(op);
  o.rootRank = dst;
  o.rootTensor = 0;
  o.timeout = g->timeout;
  g->bytes += t.numel() * t.element_size();
  std::function<void()> after;
  if (op == "avg" && g->rank == dst) {
    int n = g->size;
    after = [t, n]() mutable { t.div_(n); };
  }
  return Launch(info.Env(), g, "reduce", {t}, [&]() {
    std::vector<at::Tensor> ts{t};
    return g->Call([&](auto& pg) { return pg.reduce(ts, o); });
  }, after);
}

// distReduceScatter(outH, inH, op, group?) -> Promise<void>: `in` holds W equal chunks along dim 0 (W * n elements),
// `out` n; rank r receives the reduction of every rank's chunk r (reduce_scatter_tensor). Done as c10d's
// alltoall_base (rank r is sent only chunk r, (W - 1) n elements leave each rank: the bytes of a direct
// reduce-scatter, half a ring all-reduce's 2 (W - 1) n) and the W received chunks reduced here, in rank order.
// Gloo has no reduce_scatter in libtorch 1.13 (it throws), and alltoall_base has this signature in 1.13 and 2.x.
TN_EXPORT(distReduceScatter) {
  auto g = GroupAt(info, 3);
  at::Tensor out = Checked(info, 0, "reduceScatter");
  at::Tensor in = Checked(info, 1, "reduceScatter");
  std::string op = info[2].As<Napi::String>().Utf8Value();
  Op(op);  // validates
  const int64_t W = g->size, n = out.numel();
  if (in.numel() != W * n || in.scalar_type() != out.scalar_type())
    throw std::invalid_argument("reduceScatter: the input must have world size (" + std::to_string(W) +
                                ") times the output's elements and its dtype");
  at::Tensor flat = in.reshape({W, n});
  at::Tensor recv = at::empty({W, n}, in.options());
  c10d::AllToAllOptions o;
  o.timeout = g->timeout;
  g->bytes += (W - 1) * n * in.element_size();
  std::function<void()> after = [out, recv, op, W, n]() mutable {
    // reduced in rank order straight into `out` where it is contiguous (no temporary: for large inputs every pass
    // over memory counts)
    const bool direct = out.is_contiguous();
    at::Tensor r = direct ? out.view({n}) : at::empty({n}, out.options());
    r.copy_(recv[0]);
    for (int64_t k = 1; k < W; k++) {
      if (op == "sum" || op == "avg") r.add_(recv[k]);
      else if (op == "product") r.mul_(recv[k]);
      else if (op == "max") at::maximum_out(r, r, recv[k]);
      else at::minimum_out(r, r, recv[k]);
    }
    if (op == "avg") r.div_(W);
    if (!direct) out.copy_(r.view(out.sizes()));
  };
  return Launch(info.Env(), g, "reduceScatter", {out, flat, recv}, [&]() {
    std::vector<int64_t> counts;  // empty: equal splits
    return g->Call([&](auto& pg) { return pg.alltoall_base(recv, flat, counts, counts, o); });
  }, after);
}

// distAllGatherInto(outH, inH, group?) -> Promise<void>: `out` is W times `in` along dim 0; chunk r receives rank r's
// tensor (all_gather_into_tensor). Gloo's allgather into views of `out` (its _allgather_base throws in 1.13).
TN_EXPORT(distAllGatherInto) {
  auto g = GroupAt(info, 2);
  at::Tensor out = Checked(info, 0, "allGatherIntoTensor");
  at::Tensor in = Checked(info, 1, "allGatherIntoTensor");
  const int64_t W = g->size, n = in.numel();
  if (out.numel() != W * n || in.scalar_type() != out.scalar_type())
    throw std::invalid_argument("allGatherIntoTensor: the output must have world size (" + std::to_string(W) +
                                ") times the input's elements and its dtype");
  at::Tensor flat = out.view({W, n});
  std::vector<at::Tensor> outs;
  for (int64_t r = 0; r < W; r++) outs.push_back(flat[r].view(in.sizes()));
  c10d::AllgatherOptions o;
  o.timeout = g->timeout;
  g->bytes += in.numel() * in.element_size() * (W - 1);
  std::vector<at::Tensor> held = outs;
  held.push_back(in);
  held.push_back(out);
  return Launch(info.Env(), g, "allGatherIntoTensor", held, [&]() {
    std::vector<std::vector<at::Tensor>> os{outs};
    std::vector<at::Tensor> is{in};
    return g->Call([&](auto& pg) { return pg.allgather(os, is, o); });
  });
}

// distNewGroup({ ranks: number[], timeout }) -> Promise<{ id, rank, size } | null>: torch.distributed.new_group.
// Every rank of the default group calls it, in the same order; the members make a Gloo group on the default store
// under the next group name ("1", "2", ...: PrefixStore(name) in 1.x, PrefixStore(name + "/") then "cpu/" in 2.x,
// as torch.distributed's _new_process_group_helper), then the store-based barrier torch.distributed runs after a new
// group (1.x always, on store_based_barrier_key:<count>; 2.x where TORCH_DIST_INIT_BARRIER=1, on
// store_based_barrier_key:<name>). A non-member gets null.
TN_EXPORT(distNewGroup) {
  Napi::Env env = info.Env();
  auto g = Current(env);
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "distNewGroup: expected options");
  Napi::Object o = info[0].As<Napi::Object>();
  Napi::Array ra = o.Get("ranks").As<Napi::Array>();
  std::vector<int> ranks;
  for (uint32_t i = 0; i < ra.Length(); i++) ranks.push_back(ra.Get(i).As<Napi::Number>().Int32Value());
  std::chrono::milliseconds timeout(Int64(o, "timeout", g->timeout.count()));
  if (g->backend != "gloo")
    ThrowTorchError(env, "newGroup: subgroups are implemented for the gloo backend", "DISTRIBUTED");
  DistState& d = Dist(env);
  int64_t id;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    id = d.groupCount++;
  }
  class Worker : public Napi::AsyncWorker {
   public:
    Worker(Napi::Env env, std::shared_ptr<Group> parent, std::vector<int> ranks, int64_t id,
           std::chrono::milliseconds timeout)
        : Napi::AsyncWorker(env, "tensornormal:newGroup"), deferred(Napi::Promise::Deferred::New(env)),
          parent(std::move(parent)), ranks(std::move(ranks)), id(id), timeout(timeout) {}
    void Execute() override {
      try {
        const std::string name = std::to_string(id);
        auto it = std::find(ranks.begin(), ranks.end(), parent->rank);
        if (it != ranks.end()) {
          auto sub = std::make_shared<Group>();
          sub->backend = parent->backend;
          sub->rank = static_cast<int>(it - ranks.begin());
          sub->size = static_cast<int>(ranks.size());
          sub->timeout = timeout;
          sub->store = parent->store;
          sub->devices = parent->devices;
          sub->ranks = ranks;
          sub->name = name;
#if TORCH_VERSION_MAJOR >= 2
          auto pg_store = c10::make_intrusive<c10d::PrefixStore>(
              "cpu/", c10::make_intrusive<c10d::PrefixStore>(name + "/", parent->store));
#else
          auto pg_store = c10::make_intrusive<c10d::PrefixStore>(name, parent->store);
#endif
          auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
          opts->devices = parent->devices;
          opts->threads = static_cast<int>(opts->devices.size() * 2);
          sub->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(pg_store, sub->rank, sub->size, opts);
          group = std::move(sub);
        }
#if TORCH_VERSION_MAJOR >= 2
        const char* want = std::getenv("TORCH_DIST_INIT_BARRIER");
        if (TORCH_VERSION_MINOR == 0 || (want != nullptr && std::string(want) == "1"))
          StoreBarrier(*parent->store, "store_based_barrier_key:" + name, parent->size, timeout, true);
#else
        StoreBarrier(*parent->store, "store_based_barrier_key:" + std::to_string(id + 1), parent->size, timeout,
                     false);
#endif
      } catch (const c10::Error& e) {
        SetError(e.what_without_backtrace());
      } catch (const std::exception& e) {
        SetError(e.what());
      }
    }
    void OnOK() override {
      Napi::Env env = Env();
      if (!group) {
        deferred.Resolve(env.Null());
        return;
      }
      DistState& d = Dist(env);
      {
        std::lock_guard<std::mutex> lock(d.mu);
        d.subgroups[id] = group;
      }
      Napi::Object r = Napi::Object::New(env);
      r.Set("id", static_cast<double>(id));
      r.Set("rank", group->rank);
      r.Set("size", group->size);
      deferred.Resolve(r);
    }
    void OnError(const Napi::Error& e) override {
      std::string msg = e.Message();
      if (msg.rfind("DISTRIBUTED: ", 0) == 0) msg = msg.substr(13);
      deferred.Reject(MakeTorchError(Env(), "newGroup failed: " + msg, "DISTRIBUTED"));
    }
    Napi::Promise::Deferred deferred;
    std::shared_ptr<Group> parent, group;
    std::vector<int> ranks;
    int64_t id;
    std::chrono::milliseconds timeout;
  };
  auto* w = new Worker(env, g, std::move(ranks), id, timeout);
  Napi::Promise p = w->deferred.Promise();
  w->Queue();
  return p;
}

// distGroupBytes() -> payload bytes handed to collectives on every subgroup so far (bytesCommunicated adds them).
TN_EXPORT(distGroupBytes) {
  DistState& d = Dist(info.Env());
  std::lock_guard<std::mutex> lock(d.mu);
  double b = 0;
  for (auto& kv : d.subgroups) b += static_cast<double>(kv.second->bytes.load());
  return Napi::Number::New(info.Env(), b);
}

// distDestroyGroup(id) -> Promise<void>: drops a subgroup (its threads joined off the JS thread).
TN_EXPORT(distDestroyGroup) {
  Napi::Env env = info.Env();
  int64_t id = Int(info, 0);
  DistState& d = Dist(env);
  std::shared_ptr<Group> g;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    auto it = d.subgroups.find(id);
    if (it != d.subgroups.end()) {
      g = std::move(it->second);
      d.subgroups.erase(it);
    }
  }
  class Worker : public Napi::AsyncWorker {
   public:
    Worker(Napi::Env env, std::shared_ptr<Group> g)
        : Napi::AsyncWorker(env, "tensornormal:destroyGroup"), deferred(Napi::Promise::Deferred::New(env)),
          g(std::move(g)) {}
    void Execute() override { g.reset(); }
    void OnOK() override { deferred.Resolve(Env().Undefined()); }
    Napi::Promise::Deferred deferred;
    std::shared_ptr<Group> g;
  };
  auto* w = new Worker(env, std::move(g));
  Napi::Promise p = w->deferred.Promise();
  w->Queue();
  return p;
}

// distDestroy() -> Promise<void>: drops the group; its threads are joined off the JS thread.
TN_EXPORT(distDestroy) {
  Napi::Env env = info.Env();
  DistState& d = Dist(env);
  std::shared_ptr<Group> g;
  std::map<int64_t, std::shared_ptr<Group>> subs;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    g = std::move(d.group);
    d.group.reset();
    subs.swap(d.subgroups);
    d.groupCount = 1;
  }
  class Worker : public Napi::AsyncWorker {
   public:
    Worker(Napi::Env env, std::shared_ptr<Group> g, std::map<int64_t, std::shared_ptr<Group>> subs)
        : Napi::AsyncWorker(env, "tensornormal:destroyProcessGroup"), deferred(Napi::Promise::Deferred::New(env)),
          g(std::move(g)), subs(std::move(subs)) {}
    void Execute() override {
      subs.clear();
      g.reset();
    }
    void OnOK() override { deferred.Resolve(Env().Undefined()); }
    Napi::Promise::Deferred deferred;
    std::shared_ptr<Group> g;
    std::map<int64_t, std::shared_ptr<Group>> subs;
  };
  auto* w = new Worker(env, std::move(g), std::move(subs));
  Napi::Promise p = w->deferred.Promise();
  w->Queue();
  return p;
}

#else  // no Gloo headers at build time

TN_EXPORT(distAvailable) { return Napi::Boolean::New(info.Env(), false); }
TN_EXPORT(distNcclAvailable) { return Napi::Boolean::New(info.Env(), false); }
TN_EXPORT(distInit) {
  ThrowTorchError(info.Env(),
                  "distributed is not available: tensornormal was built without c10d/Gloo headers (install "
                  "libgloo-dev and rebuild)",
                  "DISTRIBUTED");
}
TN_EXPORT(distInfo) { return info.Env().Null(); }

#endif
