#include "chute/run.hpp"

#include <fcntl.h>
#include <sched.h>
#include <net/if.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <variant>
#include <fmt/core.h>

#include "chute/error.hpp"
#include "chute/fuse_server.hpp"
#include "chute/image.hpp"
#include "chute/init.hpp"
#include "chute/inject.hpp"
#include "chute/job.hpp"
#include "chute/join.hpp"
#include "chute/log.hpp"
#include "chute/mount.hpp"
#include "chute/path.hpp"
#include "chute/sys.hpp"
#include "chute/supervise.hpp"
#include "chute/userns.hpp"

extern char** environ;

namespace chute {

void refuse_setuid(std::string_view program) {
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  ::getresuid(&ruid, &euid, &suid);
  ::getresgid(&rgid, &egid, &sgid);
  if (::getauxval(AT_SECURE) != 0 || ruid != euid || ruid != suid || rgid != egid ||
      rgid != sgid)
    throw Error(fmt::format(
        "{} is running setuid, setgid or with file capabilities (uid {}/{}, gid {}/{}); it needs "
        "no privileges and refuses to run with them: an administrator should remove them "
        "(chmod u-s,g-s; setcap -r)",
        program, ruid, euid, rgid, egid));
}

namespace {

bool is_dir(const char* p) {
  struct stat st;
  return ::stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

// Before the job starts, look its command up as execvp(3) will and read its
// first page: the kernel then has the names, the attributes and (for a
// small program) the contents cached, and the image server has begun
// decompressing the rest; and a first getxattr(2) lets the kernel learn that
// the image has no extended attributes. All this while ch-run still runs on
// the server's CPU, where a FUSE round trip is several times cheaper than
// from another one.
void warm_command(const job::Spec& spec) {
  const std::string& cmd = spec.argv_store[0];
  std::vector<std::string> candidates;
  if (cmd.find('/') != std::string::npos) {
    candidates.push_back(path::is_absolute(cmd) || !spec.cwd ? cmd : path::join(*spec.cwd, cmd));
  } else if (auto p = spec.env.get("PATH")) {
    std::string_view path = *p;
    size_t i = 0;
    for (;;) {
      size_t j = path.find(':', i);
      std::string_view dir = path.substr(i, j == std::string_view::npos ? j : j - i);
      candidates.push_back(path::join(dir.empty() ? "." : dir, cmd));
      if (j == std::string_view::npos) break;
      i = j + 1;
    }
  }
  for (const auto& c : candidates) {
    int fd = ::open(c.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) continue;
    struct stat st;
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
      // A small program is read whole; a big one's first read has the
      // server prefetch the rest.
      char page[16384];
      for (int i = 0; i < 4 && ::read(fd, page, sizeof page) == static_cast<ssize_t>(sizeof page); ++i) {
      }
      (void)::fgetxattr(fd, "security.capability", page, sizeof page);
      ::close(fd);
      return;
    }
    ::close(fd);
  }
}

}  // namespace


namespace {

// The job's side, in the container (after the pivot, or after joining):
// the environment, the working directory, the command.
job::Spec job_spec(const Plan& plan) {
  job::Spec spec;
  spec.argv_store = plan.argv;
  spec.env = plan.host_env;
  spec.cwd = plan.cwd;
  spec.verbosity = plan.verbosity;
  spec.drop_bounding = job::caps_to_drop(plan.ids.container_uid, plan.cap_drop);
  spec.seccomp = plan.seccomp;
  env::fix(
      spec.env, plan.env, is_dir("/root") ? "/root" : "/",
      [] {
        auto f = sys::try_open("/ch/environment", O_RDONLY);
        if (!f) throw SysError(ENOENT, "--set-env: can't read /ch/environment in image");
        return sys::read_all(f->get(), "/ch/environment");
      },
      [](std::string_view w) { log::warn("{}", w); });
  job::finish(spec);
  if (log::level() >= log::kVerbose)
    for (const auto& a : spec.argv_store) log::verbose("argv: {:?}", a);
  return spec;
}

// Everything after the image is attached: /etc/passwd and /etc/group, the
// binds, the pivot, the environment. Returns the job to execute.
// --ipc, --uts/--hostname, --net=none: namespaces of the job's own, owned
// by its user namespace. A new network namespace has only a loopback
// interface, down: bring it up.
void isolate(const Plan& plan) {
  if (!plan.isolate && !plan.pid) return;
  if (plan.isolate && ::unshare(plan.isolate) != 0) {
    int e = errno;
    throw SysError(e, "can't create the --ipc, --uts or --net namespace");
  }
  if (plan.hostname && ::sethostname(plan.hostname->data(), plan.hostname->size()) != 0) {
    int e = errno;
    throw SysError(e, fmt::format("--hostname: can't set host name {}", *plan.hostname));
  }
  if (plan.isolate & CLONE_NEWNET) {
    Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    struct ifreq ifr {};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (!s || ::ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0 ||
        (ifr.ifr_flags |= IFF_UP, ::ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0)) {
      int e = errno;
      throw SysError(e, "--net=none: can't bring the loopback interface up");
    }
  }
  // --pid: the launcher made the PID namespace, this process is its PID 1.
  log::verbose("namespaces:{}{}{}{}", plan.pid ? " pid" : "",
               plan.isolate & CLONE_NEWIPC ? " ipc" : "", plan.isolate & CLONE_NEWUTS ? " uts" : "",
               plan.isolate & CLONE_NEWNET ? " net" : "");
}

job::Spec set_up(const Plan& plan, Fd root) {
  isolate(plan);
  if (plan.passwd)
    mount::install_files(root.get(), "/dev",
                         {{"/etc/passwd", *plan.passwd}, {"/etc/group", *plan.group}});
  log::trace("stage: passwd installed");
  mount::apply(plan.mounts, root.get());
  log::trace("stage: mounts made");
  if (!plan.inject.empty()) {
    inject::apply(plan.inject, root.get(), plan.write_fake.has_value());
    log::trace("stage: host files injected");
  }
  mount::pivot(root.get());
  root.reset();
  log::trace("stage: pivoted");
  return job_spec(plan);
}

Fd open_ns(const char* which) {
  return sys::open(fmt::format("/proc/self/ns/{}", which), O_RDONLY);
}

// The mount namespace of a SquashFS winner's job process travels to the
// launcher over this pair: the job makes it, the launcher keeps it for peers.
struct NsChannel {
  Fd launcher_end, job_end;
  NsChannel() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
      int e = errno;
      throw SysError(e, "--join: can't create a socket pair");
    }
    launcher_end = Fd(sv[0]);
    job_end = Fd(sv[1]);
  }
  void send_mntns() {
    Fd ns = open_ns("mnt");
    const int fd = ns.get();
    if (!sys::send_message(job_end.get(), "m", {&fd, 1})) {
      int e = errno;
      throw SysError(e, "--join: can't pass the container's mount namespace on");
    }
  }
  // What the job's side failed with, for the peers.
  void send_error(const std::string& why) { sys::send_message(job_end.get(), why); }
  // The namespace, or what went wrong instead. Blocks until the job's side
  // sends one or ends (once the launcher has closed its copy of job_end).
  std::variant<Fd, std::string> receive_mntns() {
    std::string text;
    std::vector<Fd> fds;
    const ssize_t n = sys::receive_message(launcher_end.get(), 4096, text, &fds);
    if (n > 0 && fds.size() == 1) return std::move(fds[0]);
    if (n > 0) return text;
    return std::string("it ended before setting the container up");
  }
};

// A SquashFS image, or any image with --pid: this process stays outside
// the container, as the supervisor the batch system sees; a child makes a
// mount namespace of its own, attaches the image, sets the container up and
// becomes the job, or with --pid the init of the job's PID namespace (see
// init.hpp). A SquashFS image is served by this process until the job and
// everything the job left behind have exited (and, with --join, every peer
// that joined the container).
[[noreturn]] void run_supervised(const Plan& plan, std::optional<join::Winner> winner,
                                 const std::string& fingerprint) {
  const bool squash = plan.image.kind == ImageKind::kSquash;
  // This process is in the container's user namespace but the host's mount
  // namespace: a job that is root in the namespace (-u 0) may trace the
  // processes of the namespace and read their /proc/PID/root, this one's the
  // host's root directory. Not dumpable, this process can be traced only
  // with a capability of the host's user namespace.
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    int e = errno;
    throw SysError(e, "can't make the launcher undumpable");
  }
  std::optional<fuse::Server> server;
  if (squash) {
    server.emplace(sys::open(plan.image.path, O_RDONLY), plan.image.path);
    log::trace("stage: image server made");
  }
  std::optional<NsChannel> channel;
  std::optional<join::Server> peers;
  supervise::block_signals();  // before any thread starts
  if (winner) {
    // Peers are let in as soon as the container exists, while this
    // process's own job is still starting: a thread waits for the job's
    // side to send the mount namespace over the channel.
    channel.emplace();
    peers.emplace(std::move(*winner), *plan.join, fingerprint, open_ns("user"), Fd());
    peers->start_thread([&channel] { return channel->receive_mntns(); });
  }
  // If the job can't even be started, the channel must end for that thread.
  struct EndChannel {
    std::optional<NsChannel>& c;
    ~EndChannel() {
      if (c) c->job_end.reset();
    }
  } end_channel{channel};
  // Set-up is a string of FUSE requests between the child and the server:
  // on one CPU each is a wake-up rather than an interrupt to another CPU.
  cpu_set_t cpus{};
  if (squash) {
    cpus = supervise::pin_to_this_cpu();
    server->prepare();
  }
  int code = supervise::run(
      [&] {
        log::trace("stage: job process started");
        job::Spec spec;
        try {
          if (::unshare(CLONE_NEWNS) != 0) {
            int e = errno;
            throw SysError(e, "can't create the job's mount namespace");
          }
          log::trace("stage: job mount namespace made");
          Fd root = squash ? image::attach_squash(server->dev_fd(), plan.image, plan.squash_mount,
                                                  plan.write_fake, plan.ids,
                                                  // Through a pipe: wakes the serving thread.
                                                  [&server] { server->start(); })
                           : image::attach_directory(plan.image, plan.writable, plan.write_fake);
          log::trace("stage: image attached");
          spec = set_up(plan, std::move(root));
          if (channel) channel->send_mntns();
        } catch (const std::exception& e) {
          if (channel) channel->send_error(describe(e));
          throw;
        }
        spec.set_mask = true;
        spec.mask = supervise::job_mask();
        if (squash) {
          warm_command(spec);
          spec.set_cpus = true;
          spec.cpus = cpus;
        }
        if (plan.pid) init::run(spec);
        job::throw_failure(spec, job::exec(spec));
      },
      squash ? server->stopped_fd() : -1,
      [&] {
        if (squash) {
          supervise::restore_cpus(cpus);
          server->allow_growth();
        }
        // The job has its own copy: the channel ends when the job's side does.
        if (channel) channel->job_end.reset();
      },
      plan.pid);
  // The peers' jobs use this process's image server too.
  if (peers) peers->finish();
  std::fflush(stdout);
  std::fflush(stderr);
  ::_exit(code);  // not exit(): the serving threads are still running
}

// A peer of --join: the container exists; enter it and start the job.
[[noreturn]] void run_peer(const Plan& plan, join::Joined joined) {
  if (plan.image.kind == ImageKind::kDirectory) {
    join::enter(joined);
    log::trace("stage: joined");
    job::Spec spec = job_spec(plan);
    job::throw_failure(spec, job::exec(spec));
  }
  // SquashFS: the winner's launcher serves the image; supervise the job
  // here, and watch the winner through the connection (it closes if the
  // winner dies).
  supervise::block_signals();
  int code = supervise::run(
      [&] {
        join::enter(joined);
        log::trace("stage: joined");
        job::Spec spec = job_spec(plan);
        spec.set_mask = true;
        spec.mask = supervise::job_mask();
        job::throw_failure(spec, job::exec(spec));
      },
      joined.conn.get(), [] {}, /*new_pid_ns=*/false, /*remote_server=*/true);
  std::fflush(stdout);
  std::fflush(stderr);
  ::_exit(code);
}

[[noreturn]] void run_container(const Plan& plan, std::optional<join::Winner>& winner,
                                const std::string& fingerprint) {
  // SquashFS, or --pid: the launcher only serves the image or supervises;
  // only the job's process needs a mount namespace (it makes its own).
  const bool supervised = plan.image.kind == ImageKind::kSquash || plan.pid;
  userns::enter(plan.ids, !supervised);
  log::trace("stage: namespaces entered");
  if (supervised) run_supervised(plan, std::move(winner), fingerprint);
  Fd userns, mntns;
  if (winner) {
    userns = open_ns("user");
    mntns = open_ns("mnt");
  }
  Fd root = image::attach_directory(plan.image, plan.writable, plan.write_fake);
  log::trace("stage: image attached");
  job::Spec spec = set_up(plan, std::move(root));
  if (winner) {
    join::Server peers(std::move(*winner), *plan.join, fingerprint, std::move(userns),
                       std::move(mntns));
    peers.spawn_detached(::getpid());
    winner.reset();
  }
  // A directory: the job replaces the launcher.
  job::throw_failure(spec, job::exec(spec));
}

}  // namespace

void run(Plan plan) {
  log::trace("stage: plan made");
  if (plan.join_pid) {
    join::enter_pid(*plan.join_pid);
    log::trace("stage: joined");
    job::Spec spec = job_spec(plan);
    job::throw_failure(spec, job::exec(spec));
  }
  std::optional<join::Winner> winner;
  std::string fingerprint;
  if (plan.join) {
    struct stat st = sys::fstat(sys::open(plan.image.path, O_PATH).get(), plan.image.path);
    fingerprint = join::fingerprint(plan, st.st_dev, st.st_ino);
    auto met = join::meet(plan.ids.host_uid, *plan.join, fingerprint);
    if (auto* joined = std::get_if<join::Joined>(&met)) run_peer(plan, std::move(*joined));
    winner = std::move(std::get<join::Winner>(met));
  }
  try {
    finish_plan(plan);
    run_container(plan, winner, fingerprint);
  } catch (const std::exception& e) {
    // Peers waiting for this container learn why it won't come.
    if (winner) join::Server::refuse_all(*winner, describe(e));
    throw;
  }
}

}  // namespace chute
