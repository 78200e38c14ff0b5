// kiln's native addon: the few syscalls Node lacks. Thin on purpose: each function makes one
// syscall (or one short, fixed sequence of them) and reports errno; src/native/index.ts validates
// arguments, names errors like Node does, and handles EAGAIN and backpressure.
//
// Errors are reported two ways: socket setup throws an Error carrying `errno` and `syscall`
// (rare, the caller wants an exception); sendfile returns -errno, because EAGAIN is the normal
// end of every burst and must not cost an exception.
#include <napi.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

namespace {

Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

bool CheckArgs(const Napi::CallbackInfo& info, size_t n) {
  if (info.Length() < n) {
    Napi::TypeError::New(info.Env(), "wrong number of arguments").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

// reusePortSocket(family: 4|6, udp: boolean, address: string, port: number, backlog: number) -> fd
// A non-blocking, close-on-exec socket with SO_REUSEADDR and SO_REUSEPORT, bound, and for TCP
// listening. Node 20's net and dgram ignore `reusePort`, hence this.
Napi::Value ReusePortSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckArgs(info, 5)) return env.Undefined();
  int family = info[0].As<Napi::Number>().Int32Value();
  bool udp = info[1].As<Napi::Boolean>().Value();
  std::string address = info[2].As<Napi::String>().Utf8Value();
  int port = info[3].As<Napi::Number>().Int32Value();
  int backlog = info[4].As<Napi::Number>().Int32Value();

  sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  if (family == 6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, address.c_str(), &a->sin6_addr) != 1) return ThrowErrno(env, EINVAL, "inet_pton");
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, address.c_str(), &a->sin_addr) != 1) return ThrowErrno(env, EINVAL, "inet_pton");
    len = sizeof *a;
  }

  int fd = socket(family == 6 ? AF_INET6 : AF_INET,
                  (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(env, errno, "socket");
  int one = 1;
  const char* failed = nullptr;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) failed = "setsockopt";
  else if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) failed = "setsockopt";
  else if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0) failed = "bind";
  else if (!udp && listen(fd, backlog) < 0) failed = "listen";
  if (failed) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, err, failed);
  }
  return Napi::Number::New(env, fd);
}

// bindToDevice(fd, ifname): SO_BINDTODEVICE, so a DHCP socket bound to 0.0.0.0:67 only sees (and
// sends from) one interface. Needs CAP_NET_RAW.
Napi::Value BindToDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckArgs(info, 2)) return env.Undefined();
  int fd = info[0].As<Napi::Number>().Int32Value();
  std::string ifname = info[1].As<Napi::String>().Utf8Value();
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname.c_str(), static_cast<socklen_t>(ifname.size())) < 0)
    return ThrowErrno(env, errno, "setsockopt");
  return env.Undefined();
}

// dup(fd) -> new fd, close-on-exec. libuv owns a socket's fd and closes it when it likes; kiln
// sends through its own duplicate so a late sendfile never hits a reused fd number.
Napi::Value Dup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckArgs(info, 1)) return env.Undefined();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (nfd < 0) return ThrowErrno(env, errno, "dup");
  return Napi::Number::New(env, nfd);
}

// close(fd) -> 0 or -errno.
Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckArgs(info, 1)) return env.Undefined();
  int fd = info[0].As<Napi::Number>().Int32Value();
  return Napi::Number::New(env, close(fd) < 0 ? -errno : 0);
}

// sendfile(outFd, inFd, offset, count) -> bytes sent (>= 0) or -errno. The socket is non-blocking
// (libuv made it so, and a dup shares that flag), so this never blocks: EAGAIN comes back as
// -EAGAIN. Offsets are doubles: exact up to 2^53, far past any file.
Napi::Value Sendfile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckArgs(info, 4)) return env.Undefined();
  int out = info[0].As<Napi::Number>().Int32Value();
  int in = info[1].As<Napi::Number>().Int32Value();
  off_t offset = static_cast<off_t>(info[2].As<Napi::Number>().DoubleValue());
  size_t count = static_cast<size_t>(info[3].As<Napi::Number>().DoubleValue());
  ssize_t n;
  do {
    n = sendfile(out, in, &offset, count);
  } while (n < 0 && errno == EINTR);
  return Napi::Number::New(env, n < 0 ? -errno : static_cast<double>(n));
}

// socketError(fd) -> SO_ERROR (0 or a positive errno), or -errno when getsockopt itself fails.
// A peer reset can surface as EBADF/EPIPE from the write path; SO_ERROR names the real cause.
Napi::Value SocketError(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckArgs(info, 1)) return env.Undefined();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return Napi::Number::New(env, -errno);
  return Napi::Number::New(env, err);
}

// SocketDup: a duplicate of a socket fd that libuv owns, plus a one-shot "tell me when it is
// writable" built on uv_poll. Node has no way to wait for a socket's writability without writing
// through it, and sendfile writes behind Node's back; the dup keeps a late sendfile from ever hitting
// an fd number that libuv has closed and the kernel handed to someone else.
// The dup is closed only from uv_close's callback: libuv forbids closing a polled fd first.
struct PollState {
  uv_poll_t handle;
  int fd;
  napi_env env;
  Napi::FunctionReference cb;
};

class SocketDup : public Napi::ObjectWrap<SocketDup> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "SocketDup",
                       {InstanceAccessor<&SocketDup::Fd>("fd"),
                        InstanceMethod<&SocketDup::WaitWritable>("waitWritable"),
                        InstanceMethod<&SocketDup::Close>("close")});
  }

  explicit SocketDup(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SocketDup>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) {
      Napi::TypeError::New(env, "SocketDup(fd)").ThrowAsJavaScriptException();
      return;
    }
    int fd = fcntl(info[0].As<Napi::Number>().Int32Value(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
      ThrowErrno(env, errno, "dup");
      return;
    }
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    state_ = new PollState();
    state_->fd = fd;
    state_->env = env;
    state_->handle.data = state_;
    int r = uv_poll_init(loop, &state_->handle, fd);
    if (r != 0) {
      close(fd);
      delete state_;
      state_ = nullptr;
      ThrowErrno(env, -r, "uv_poll_init");
    }
  }

  ~SocketDup() override { Shutdown(); }

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), state_ ? state_->fd : -1);
  }

  // waitWritable(cb): cb(status) once, when the socket can take more bytes or has failed
  // (status < 0, or a later sendfile reports the error). Re-arm by calling again.
  Napi::Value WaitWritable(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!state_) return ThrowErrno(env, EBADF, "waitWritable");
    if (info.Length() < 1 || !info[0].IsFunction()) {
      Napi::TypeError::New(env, "waitWritable(callback)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    state_->cb = Napi::Persistent(info[0].As<Napi::Function>());
    int r = uv_poll_start(&state_->handle, UV_WRITABLE | UV_DISCONNECT, OnPoll);
    if (r != 0) {
      state_->cb.Reset();
      return ThrowErrno(env, -r, "uv_poll_start");
    }
    return env.Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  void Shutdown() {
    if (!state_) return;
    state_->cb.Reset();
    uv_poll_stop(&state_->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&state_->handle), [](uv_handle_t* h) {
      auto* st = static_cast<PollState*>(h->data);
      close(st->fd);
      delete st;
    });
    state_ = nullptr;
  }

  static void OnPoll(uv_poll_t* h, int status, int /*events*/) {
    auto* st = static_cast<PollState*>(h->data);
    uv_poll_stop(h);
    if (st->cb.IsEmpty()) return;
    Napi::Env env(st->env);
    Napi::HandleScope scope(env);
    // Take the callback out first: it may re-arm (set a new one) or close.
    Napi::FunctionReference cb = std::move(st->cb);
    cb.Value().MakeCallback(env.Global(), {Napi::Number::New(env, status)});
    if (env.IsExceptionPending()) {
      napi_fatal_exception(env, env.GetAndClearPendingException().Value());
    }
  }

  PollState* state_ = nullptr;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("SocketDup", SocketDup::Define(env));
  exports.Set("reusePortSocket", Napi::Function::New(env, ReusePortSocket));
  exports.Set("bindToDevice", Napi::Function::New(env, BindToDevice));
  exports.Set("dup", Napi::Function::New(env, Dup));
  exports.Set("close", Napi::Function::New(env, Close));
  exports.Set("sendfile", Napi::Function::New(env, Sendfile));
  exports.Set("socketError", Napi::Function::New(env, SocketError));
  exports.Set("abiVersion", Napi::Number::New(env, 2));
  return exports;
}

}  // namespace

NODE_API_MODULE(kiln_native, Init)
