// The rendezvous half of --join: win or join, serve peers, enter namespaces.

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string_view>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fmt/core.h>
#include <thread>
#include <vector>

#include "chute/error.hpp"
#include "chute/join.hpp"
#include "chute/log.hpp"
#include "chute/sys.hpp"

namespace chute::join {

namespace {

constexpr std::string_view kHello = "chute-join 1\n";
constexpr std::string_view kOk = "ok\n";
constexpr std::string_view kRefused = "refused\n";
constexpr size_t kMaxMessage = 1 << 16;

struct Address {
  struct sockaddr_un sun{};
  socklen_t len = 0;
};

Address address(uid_t uid, std::string_view tag) {
  Address a;
  a.sun.sun_family = AF_UNIX;
  const std::string name = socket_name(uid, tag);
  // Abstract: a leading NUL, no terminating one; check_tag() bounds the length.
  std::memcpy(a.sun.sun_path + 1, name.data(), name.size());
  a.len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + 1 + name.size());
  return a;
}

Fd socket_seqpacket() {
  int s = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0) {
    int e = errno;
    throw SysError(e, "--join: can't create a socket");
  }
  return Fd(s);
}

int pidfd_open(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

struct ucred peer_cred(int s) {
  struct ucred cr{};
  socklen_t len = sizeof cr;
  if (::getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) {
    int e = errno;
    throw SysError(e, "--join: can't read the peer's credentials");
  }
  return cr;
}

// Wait until FD is readable for at most TIMEOUT_MS (-1: no limit).
bool readable(int fd, int timeout_ms) {
  struct pollfd p = {fd, POLLIN, 0};
  for (;;) {
    int n = ::poll(&p, 1, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    return n > 0;
  }
}

}  // namespace

std::variant<Winner, Joined> meet(uid_t uid, const Group& group, const std::string& fingerprint) {
  const Address addr = address(uid, group.tag);
  const auto sa = reinterpret_cast<const struct sockaddr*>(&addr.sun);
  const auto start = std::chrono::steady_clock::now();
  int takeovers = 0;
  for (;;) {
    Fd s = socket_seqpacket();
    if (::bind(s.get(), sa, addr.len) == 0) {
      if (::listen(s.get(), SOMAXCONN) != 0) {
        int e = errno;
        throw SysError(e, "--join: can't listen on the group's socket");
      }
      log::verbose("join: first of {} processes for tag {} (count from {}, tag from {}): "
                   "building the container", group.count, group.tag, group.count_from,
                   group.tag_from);
      return Winner{std::move(s)};
    }
    if (errno != EADDRINUSE) {
      int e = errno;
      throw SysError(e, fmt::format("--join: can't bind the group's socket for tag {}", group.tag));
    }
    if (::connect(s.get(), sa, addr.len) != 0) {
      int e = errno;
      if (e != ECONNREFUSED && e != ENOENT && e != EAGAIN)
        throw SysError(e, fmt::format("--join: can't connect to the group of tag {}", group.tag));
      // Bound but not listening yet (the winner is between the two calls),
      // or just gone: try again, briefly.
      if (std::chrono::steady_clock::now() - start > std::chrono::seconds(10))
        throw Error(fmt::format("--join: the socket of tag {} is bound by a process that does not "
                                "accept peers: choose another tag", group.tag));
      ::usleep(1000);
      continue;
    }
    const struct ucred cr = peer_cred(s.get());
    if (cr.uid != uid)
      throw Error(fmt::format("--join: tag {} is taken by another user's process (uid {}, pid {}): "
                              "choose another tag", group.tag, cr.uid, cr.pid));
    log::verbose("join: joining the container of pid {} (tag {})", cr.pid, group.tag);
    std::string reply;
    std::vector<Fd> fds;
    ssize_t n = -1;
    if (sys::send_message(s.get(), std::string(kHello) + fingerprint))
      n = sys::receive_message(s.get(), kMaxMessage, reply, &fds);
    if (n <= 0) {
      // The winner ended before letting us in: take over, or join whoever does.
      if (++takeovers > 16)
        throw Error(fmt::format("--join: the first process of tag {} ended before letting this "
                                "one in, {} times: giving up", group.tag, takeovers));
      log::verbose("join: pid {} ended before letting us in; trying again", cr.pid);
      continue;
    }
    if (reply.starts_with(kRefused))
      throw Error(fmt::format("--join: {}", std::string_view(reply).substr(kRefused.size())));
    if (!reply.starts_with(kOk) || fds.size() != 2)
      throw Error(fmt::format("--join: unexpected answer from pid {} (tag {})", cr.pid, group.tag));
    return Joined{std::move(fds[0]), std::move(fds[1]), std::move(s), cr.pid};
  }
}

void enter(const Joined& j) {
  if (::setns(j.userns.get(), CLONE_NEWUSER) != 0) {
    int e = errno;
    throw SysError(e, fmt::format("--join: can't enter the user namespace of pid {}", j.winner));
  }
  if (::setns(j.mntns.get(), CLONE_NEWNS) != 0) {
    int e = errno;
    throw SysError(e, fmt::format("--join: can't enter the mount namespace of pid {}", j.winner));
  }
}

void enter_pid(pid_t pid) {
  if (pid <= 0) throw Error(fmt::format("--join-pid: invalid process id {}", pid));
  Fd p(pidfd_open(pid));
  if (!p) {
    int e = errno;
    throw SysError(e, fmt::format("--join-pid: can't find process {}", pid));
  }
  // The job of a ch-run --pid is in a PID namespace of its own, whose /proc
  // its container shows: a process joining from outside would not be in
  // it (nor see itself there).
  char mine[64] = {}, theirs[64] = {};
  if (::readlink("/proc/self/ns/pid", mine, sizeof mine - 1) > 0 &&
      ::readlink(fmt::format("/proc/{}/ns/pid", pid).c_str(), theirs, sizeof theirs - 1) > 0 &&
      std::string_view(mine) != std::string_view(theirs))
    throw Error(fmt::format("--join-pid: process {} is in a PID namespace of its own (ch-run "
                            "--pid): its container can't be joined",
                            pid));
  // Both at once where the kernel can (5.8+); else through /proc.
  if (::setns(p.get(), CLONE_NEWUSER | CLONE_NEWNS) == 0) return;
  if (errno != EINVAL) {
    int e = errno;
    throw SysError(e, fmt::format("--join-pid: can't enter the namespaces of process {}", pid));
  }
  for (const char* ns : {"user", "mnt"}) {
    const std::string path = fmt::format("/proc/{}/ns/{}", pid, ns);
    Fd f = sys::open(path, O_RDONLY);
    if (::setns(f.get(), 0) != 0) {
      int e = errno;
      throw SysError(e, fmt::format("--join-pid: can't enter {}", path));
    }
  }
}

// --- serving ------------------------------------------------------------------

struct Server::Impl {
  Fd listener;
  Group group;
  std::string fingerprint;
  Fd userns, mntns;
  pid_t winner = ::getpid();
  struct Peer {
    Fd pidfd;
    Fd conn;  // kept open while this process lives: the peer watches it
  };
  std::vector<Peer> peers;
  long joined = 0;
  Fd watch;        // the winner's own side, as a pidfd (detached mode)
  Fd done_event;   // written by finish() (thread mode)
  bool own_alive = true;
  std::thread thread;

  void admit(Fd conn) {
    const struct ucred cr = peer_cred(conn.get());
    if (cr.uid != ::geteuid()) {
      sys::send_message(conn.get(),
                        fmt::format("{}tag {} belongs to another user", kRefused, group.tag));
      return;
    }
    // Our own ch-run sends its request right after connecting.
    if (!readable(conn.get(), 5000)) return;
    std::string req;
    if (sys::receive_message(conn.get(), kMaxMessage, req, nullptr) <= 0 ||
        !req.starts_with(kHello))
      return;
    const std::string diff =
        first_difference(std::string_view(req).substr(kHello.size()), fingerprint);
    if (!diff.empty()) {
      log::verbose("join: refusing pid {}: {}", cr.pid, diff);
      sys::send_message(conn.get(),
                        fmt::format("{}this process's options differ from those of the process "
                                    "that built the container (pid {}, tag {}): {}; every "
                                    "process of a group must give the same image and container "
                                    "options",
                                    kRefused, winner, group.tag, diff));
      return;
    }
    Fd pidfd(pidfd_open(cr.pid));
    if (!pidfd) return;  // gone already
    const int ns[] = {userns.get(), mntns.get()};
    if (!sys::send_message(conn.get(), kOk, ns)) return;
    log::verbose("join: let pid {} in ({} of {})", cr.pid, joined + 2, group.count);
    peers.push_back({std::move(pidfd), std::move(conn)});
    // All here: later arrivals start a group of their own.
    if (++joined == group.count - 1) listener.reset();
  }

  // Serve until DETACHED and every expected peer has joined (the listener
  // is then closed), or until our own side and every joined peer have
  // ended (later arrivals then build anew).
  void serve(bool detached) {
    for (;;) {
      if (detached && !listener) return;
      if (!own_alive && peers.empty()) return;
      std::vector<struct pollfd> fds;
      fds.push_back({listener ? listener.get() : -1, POLLIN, 0});
      fds.push_back({watch ? watch.get() : done_event ? done_event.get() : -1, POLLIN, 0});
      for (const auto& p : peers) fds.push_back({p.pidfd.get(), POLLIN, 0});
      int n = ::poll(fds.data(), fds.size(), -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].fd >= 0 && (fds[1].revents & POLLIN)) own_alive = false;
      // Peers that ended, from the back so indices stay valid.
      for (size_t i = fds.size(); i-- > 2;)
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
          peers.erase(peers.begin() + static_cast<std::ptrdiff_t>(i - 2));
      if (fds[0].fd >= 0 && (fds[0].revents & POLLIN)) {
        int c = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          try {
            admit(Fd(c));
          } catch (const std::exception& e) {
            log::verbose("join: {}", e.what());
          }
        }
      }
    }
  }
};

Server::Server(Winner w, const Group& group, std::string fingerprint, Fd userns, Fd mntns)
    : impl_(new Impl) {
  impl_->listener = std::move(w.listener);
  impl_->group = group;
  impl_->fingerprint = std::move(fingerprint);
  impl_->userns = std::move(userns);
  impl_->mntns = std::move(mntns);
}

Server::~Server() {
  if (impl_->thread.joinable()) finish();
  delete impl_;
}

void Server::spawn_detached(pid_t watch_pid) {
  if (impl_->group.count <= 1) return;
  Fd watch(pidfd_open(watch_pid));
  if (!watch) {
    int e = errno;
    throw SysError(e, "--join: can't watch the job's process");
  }
  impl_->watch = std::move(watch);
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t c = ::fork();
  if (c < 0) {
    int e = errno;
    throw SysError(e, "--join: can't start the process that lets peers in");
  }
  if (c == 0) {
    // Twice, so that the server is not a child of the job (which could wait
    // for it, or be surprised by it).
    if (::fork() != 0) ::_exit(0);
    ::prctl(PR_SET_NAME, "ch-run join");
    // Hold none of the job's pipes: whoever reads them (srun, a shell's
    // $(...)) waits for their end, not for this helper. Its messages are
    // -v ones: keep standard error only then.
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
      ::dup2(null, STDIN_FILENO);
      ::dup2(null, STDOUT_FILENO);
      if (log::level() < log::kVerbose) ::dup2(null, STDERR_FILENO);
    }
    impl_->serve(true);
    ::_exit(0);
  }
  int st;
  while (::waitpid(c, &st, 0) < 0 && errno == EINTR) {
  }
  // This process keeps nothing of the group: the job must not hold the name.
  impl_->listener.reset();
  impl_->userns.reset();
  impl_->mntns.reset();
  impl_->watch.reset();
}

void Server::start_thread(std::function<std::variant<Fd, std::string>()> get_mntns) {
  int e = ::eventfd(0, EFD_CLOEXEC);
  if (e < 0) {
    int err = errno;
    throw SysError(err, "--join: can't create an eventfd");
  }
  impl_->done_event = Fd(e);
  impl_->thread = std::thread([this, get_mntns = std::move(get_mntns)] {
    if (!impl_->mntns && get_mntns) {
      auto got = get_mntns();
      if (auto* why = std::get_if<std::string>(&got)) {
        Winner w{std::move(impl_->listener)};
        refuse_all(w, *why);
        return;
      }
      impl_->mntns = std::move(std::get<Fd>(got));
    }
    impl_->serve(false);
  });
}

void Server::finish() {
  if (!impl_->thread.joinable()) return;
  uint64_t one = 1;
  (void)!::write(impl_->done_event.get(), &one, sizeof one);
  impl_->thread.join();
  impl_->listener.reset();
}

void Server::refuse_all(Winner& w, std::string_view why) {
  if (!w.listener) return;
  const int l = w.listener.get();
  ::fcntl(l, F_SETFL, ::fcntl(l, F_GETFL) | O_NONBLOCK);
  for (;;) {
    int c = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) break;
    Fd conn(c);
    std::string req;
    if (readable(c, 1000) && sys::receive_message(c, kMaxMessage, req, nullptr) > 0)
      sys::send_message(c, fmt::format("{}the process that was building the container "
                                       "(pid {}) failed: {}", kRefused, ::getpid(), why));
  }
  w.listener.reset();
}

}  // namespace chute::join
