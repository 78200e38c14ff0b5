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
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <vector>

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

// PollState: an fd this addon owns, the uv_poll handle watching it, and the JS callback that poll
// events go to. SocketDup and Icmp6Socket each hold one; they differ only in what they poll for and
// what an event means (one-shot writability vs. reading until stopped), so the rest lives here.
// The fd is closed only from uv_close's callback: libuv forbids closing a polled fd first.
struct PollState {
  uv_poll_t handle;
  int fd;
  napi_env env;
  Napi::FunctionReference cb;
};

// Takes ownership of fd and puts a poll handle for it on Node's loop (not yet started). On failure
// the fd is closed, a JS exception is pending and this returns nullptr.
PollState* PollOpen(Napi::Env env, int fd) {
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  auto* st = new PollState();
  st->fd = fd;
  st->env = env;
  st->handle.data = st;
  int r = uv_poll_init(loop, &st->handle, fd);
  if (r != 0) {
    close(fd);
    delete st;
    ThrowErrno(env, -r, "uv_poll_init");
    return nullptr;
  }
  return st;
}

// The body of a JS method `method(callback)` that sends poll events for `events` to callback
// through onPoll. st is null once closed.
Napi::Value PollStart(PollState* st, const Napi::CallbackInfo& info, int events, uv_poll_cb onPoll,
                      const char* method) {
  Napi::Env env = info.Env();
  if (!st) return ThrowErrno(env, EBADF, method);
  if (info.Length() < 1 || !info[0].IsFunction()) {
    Napi::TypeError::New(env, std::string(method) + "(callback)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  st->cb = Napi::Persistent(info[0].As<Napi::Function>());
  int r = uv_poll_start(&st->handle, events, onPoll);
  if (r != 0) {
    st->cb.Reset();
    return ThrowErrno(env, -r, "uv_poll_start");
  }
  return env.Undefined();
}

// Stops polling and closes the handle, then the fd; the state is freed in uv_close's callback and
// the owner's pointer is nulled now. Safe to call twice.
void PollClose(PollState*& st) {
  if (!st) return;
  st->cb.Reset();
  uv_poll_stop(&st->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&st->handle), [](uv_handle_t* h) {
    auto* s = static_cast<PollState*>(h->data);
    close(s->fd);
    delete s;
  });
  st = nullptr;
}

// Calls st->cb(status) from a uv_poll callback (the caller checked cb is set). once: take the
// callback out first, as it may re-arm (set a new one) or close. Otherwise call through a local
// handle: the callback may stop or close the socket, which resets st->cb.
void PollCallback(PollState* st, int status, bool once) {
  Napi::Env env(st->env);
  Napi::HandleScope scope(env);
  Napi::FunctionReference taken;
  if (once) taken = std::move(st->cb);
  Napi::Function fn = once ? taken.Value() : st->cb.Value();
  fn.MakeCallback(env.Global(), {Napi::Number::New(env, status)});
  if (env.IsExceptionPending()) {
    napi_fatal_exception(env, env.GetAndClearPendingException().Value());
  }
}

// SocketDup: a duplicate of a socket fd that libuv owns, plus a one-shot "tell me when it is
// writable" built on uv_poll. Node has no way to wait for a socket's writability without writing
// through it, and sendfile writes behind Node's back; the dup keeps a late sendfile from ever hitting
// an fd number that libuv has closed and the kernel handed to someone else.

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
    state_ = PollOpen(env, fd);
  }

  ~SocketDup() override { PollClose(state_); }

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), state_ ? state_->fd : -1);
  }

  // waitWritable(cb): cb(status) once, when the socket can take more bytes or has failed
  // (status < 0, or a later sendfile reports the error). Re-arm by calling again.
  Napi::Value WaitWritable(const Napi::CallbackInfo& info) {
    return PollStart(state_, info, UV_WRITABLE | UV_DISCONNECT, OnPoll, "waitWritable");
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    PollClose(state_);
    return info.Env().Undefined();
  }

  static void OnPoll(uv_poll_t* h, int status, int /*events*/) {
    auto* st = static_cast<PollState*>(h->data);
    uv_poll_stop(h);
    if (st->cb.IsEmpty()) return;
    PollCallback(st, status, /*once=*/true);
  }

  PollState* state_ = nullptr;
};

// Icmp6Socket: a raw ICMPv6 socket pinned to one interface, for the rack's router-advertisement
// responder (Node has no raw sockets). The constructor makes the whole set-up, so a half-configured
// socket never escapes:
//   new Icmp6Socket(ifname, passTypes: number[], joinGroups: string[], hopLimit: number)
//   - SO_BINDTODEVICE ifname; ICMP6_FILTER passing only `passTypes` (none: a send-only socket);
//   - IPV6_JOIN_GROUP for each group on that interface (ff02::2 to hear router solicitations);
//   - IPV6_UNICAST_HOPS / IPV6_MULTICAST_HOPS = hopLimit (RFC 4861 §6.1.2: ND messages go out
//     with 255 and receivers drop anything else); IPV6_RECVHOPLIMIT so recv can report it.
// The kernel fills in the ICMPv6 checksum on send and checks it on receive (RFC 3542 §3.1).
// Methods: fd, ifindex, startReading(cb) (cb(status) on every readable edge until stopReading),
// stopReading(), recv(buf) -> [n, address, scopeId, hopLimit, truncated] or -errno,
// send(buf, address, scopeId) -> bytes or -errno, close(). Polling and closing go through PollState,
// like SocketDup's.

class Icmp6Socket : public Napi::ObjectWrap<Icmp6Socket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Icmp6Socket",
                       {InstanceAccessor<&Icmp6Socket::Fd>("fd"),
                        InstanceAccessor<&Icmp6Socket::IfIndex>("ifindex"),
                        InstanceMethod<&Icmp6Socket::StartReading>("startReading"),
                        InstanceMethod<&Icmp6Socket::StopReading>("stopReading"),
                        InstanceMethod<&Icmp6Socket::Recv>("recv"),
                        InstanceMethod<&Icmp6Socket::Send>("send"),
                        InstanceMethod<&Icmp6Socket::Close>("close")});
  }

  explicit Icmp6Socket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Icmp6Socket>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 4 || !info[0].IsString() || !info[1].IsArray() || !info[2].IsArray() ||
        !info[3].IsNumber()) {
      Napi::TypeError::New(env, "Icmp6Socket(ifname, passTypes, joinGroups, hopLimit)")
          .ThrowAsJavaScriptException();
      return;
    }
    std::string ifname = info[0].As<Napi::String>().Utf8Value();
    Napi::Array types = info[1].As<Napi::Array>();
    Napi::Array groups = info[2].As<Napi::Array>();
    int hops = info[3].As<Napi::Number>().Int32Value();

    unsigned idx = if_nametoindex(ifname.c_str());
    if (idx == 0) {
      ThrowErrno(env, errno, "if_nametoindex");
      return;
    }
    icmp6_filter filter;
    ICMP6_FILTER_SETBLOCKALL(&filter);
    for (uint32_t i = 0; i < types.Length(); i++) {
      int t = types.Get(i).As<Napi::Number>().Int32Value();
      if (t >= 0 && t <= 255) ICMP6_FILTER_SETPASS(t, &filter);
    }
    std::vector<ipv6_mreq> joins;
    for (uint32_t i = 0; i < groups.Length(); i++) {
      ipv6_mreq m;
      memset(&m, 0, sizeof m);
      std::string g = groups.Get(i).As<Napi::String>().Utf8Value();
      if (inet_pton(AF_INET6, g.c_str(), &m.ipv6mr_multiaddr) != 1) {
        ThrowErrno(env, EINVAL, "inet_pton");
        return;
      }
      m.ipv6mr_interface = idx;
      joins.push_back(m);
    }

    int fd = socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMPV6);
    if (fd < 0) {
      ThrowErrno(env, errno, "socket");
      return;
    }
    int one = 1;
    int ifx = static_cast<int>(idx);
    const char* failed = nullptr;
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname.c_str(), static_cast<socklen_t>(ifname.size())) < 0)
      failed = "setsockopt(SO_BINDTODEVICE)";
    else if (setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter) < 0)
      failed = "setsockopt(ICMP6_FILTER)";
    else if (setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof hops) < 0)
      failed = "setsockopt(IPV6_UNICAST_HOPS)";
    else if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops) < 0)
      failed = "setsockopt(IPV6_MULTICAST_HOPS)";
    else if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifx, sizeof ifx) < 0)
      failed = "setsockopt(IPV6_MULTICAST_IF)";
    else if (setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one) < 0)
      failed = "setsockopt(IPV6_RECVHOPLIMIT)";
    for (size_t i = 0; !failed && i < joins.size(); i++) {
      if (setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &joins[i], sizeof joins[i]) < 0)
        failed = "setsockopt(IPV6_JOIN_GROUP)";
    }
    if (failed) {
      int err = errno;
      close(fd);
      ThrowErrno(env, err, failed);
      return;
    }

    state_ = PollOpen(env, fd);
    if (!state_) return;
    ifindex_ = idx;
  }

  ~Icmp6Socket() override { PollClose(state_); }

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), state_ ? state_->fd : -1);
  }

  Napi::Value IfIndex(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ifindex_); }

  Napi::Value StartReading(const Napi::CallbackInfo& info) {
    return PollStart(state_, info, UV_READABLE, OnPoll, "startReading");
  }

  Napi::Value StopReading(const Napi::CallbackInfo& info) {
    if (state_) {
      uv_poll_stop(&state_->handle);
      state_->cb.Reset();
    }
    return info.Env().Undefined();
  }

  Napi::Value Recv(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!state_) return Napi::Number::New(env, -EBADF);
    if (info.Length() < 1 || !info[0].IsBuffer()) {
      Napi::TypeError::New(env, "recv(buffer)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Buffer<uint8_t> buf = info[0].As<Napi::Buffer<uint8_t>>();
    sockaddr_in6 from;
    memset(&from, 0, sizeof from);
    iovec iov = {buf.Data(), buf.Length()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int)) * 2];
    msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do {
      n = recvmsg(state_->fd, &msg, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return Napi::Number::New(env, -errno);
    int hops = -1;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT && c->cmsg_len >= CMSG_LEN(sizeof(int)))
        memcpy(&hops, CMSG_DATA(c), sizeof hops);
    }
    char addr[INET6_ADDRSTRLEN] = "";
    inet_ntop(AF_INET6, &from.sin6_addr, addr, sizeof addr);
    Napi::Array out = Napi::Array::New(env, 5);
    out.Set(0u, Napi::Number::New(env, static_cast<double>(n)));
    out.Set(1u, Napi::String::New(env, addr));
    out.Set(2u, Napi::Number::New(env, from.sin6_scope_id));
    out.Set(3u, Napi::Number::New(env, hops));
    out.Set(4u, Napi::Boolean::New(env, (msg.msg_flags & MSG_TRUNC) != 0));
    return out;
  }

  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!state_) return Napi::Number::New(env, -EBADF);
    if (info.Length() < 3 || !info[0].IsBuffer() || !info[1].IsString() || !info[2].IsNumber()) {
      Napi::TypeError::New(env, "send(buffer, address, scopeId)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Buffer<uint8_t> buf = info[0].As<Napi::Buffer<uint8_t>>();
    sockaddr_in6 to;
    memset(&to, 0, sizeof to);
    to.sin6_family = AF_INET6;
    std::string a = info[1].As<Napi::String>().Utf8Value();
    if (inet_pton(AF_INET6, a.c_str(), &to.sin6_addr) != 1) return Napi::Number::New(env, -EINVAL);
    to.sin6_scope_id = info[2].As<Napi::Number>().Uint32Value();
    ssize_t n;
    do {
      n = sendto(state_->fd, buf.Data(), buf.Length(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    } while (n < 0 && errno == EINTR);
    return Napi::Number::New(env, n < 0 ? -errno : static_cast<double>(n));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    PollClose(state_);
    return info.Env().Undefined();
  }

  static void OnPoll(uv_poll_t* h, int status, int /*events*/) {
    auto* st = static_cast<PollState*>(h->data);
    if (st->cb.IsEmpty()) return;
    // An error ends the reading: libuv would otherwise report it on every turn.
    if (status < 0) {
      uv_poll_stop(h);
    }
    PollCallback(st, status, /*once=*/false);
  }

  PollState* state_ = nullptr;
  unsigned ifindex_ = 0;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("SocketDup", SocketDup::Define(env));
  exports.Set("reusePortSocket", Napi::Function::New(env, ReusePortSocket));
  exports.Set("bindToDevice", Napi::Function::New(env, BindToDevice));
  exports.Set("dup", Napi::Function::New(env, Dup));
  exports.Set("close", Napi::Function::New(env, Close));
  exports.Set("sendfile", Napi::Function::New(env, Sendfile));
  exports.Set("socketError", Napi::Function::New(env, SocketError));
  exports.Set("Icmp6Socket", Icmp6Socket::Define(env));
  exports.Set("abiVersion", Napi::Number::New(env, 2));
  return exports;
}

}  // namespace

NODE_API_MODULE(kiln_native, Init)
