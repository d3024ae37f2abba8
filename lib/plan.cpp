#include "chute/plan.hpp"

#include <pwd.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fmt/core.h>
#include <tuple>

#include "chute/error.hpp"
#include "chute/log.hpp"
#include "chute/passwd.hpp"
#include "chute/squash.hpp"
#include "chute/path.hpp"
#include "chute/site.hpp"
#include "chute/sys.hpp"

extern char** environ;

namespace chute {

HostFacts HostFacts::current() {
  HostFacts h;
  h.uid = ::geteuid();
  h.gid = ::getegid();
  h.parent = ::getppid();
  h.env = Environment::from_envp(environ);
  return h;
}

std::vector<Mount> default_mounts() {
  using K = Mount::Kind;
  using N = Mount::Need;
  auto bind = [](std::string p, N need, bool ro) {
    return Mount{K::kBind, need, p, p, ro, true, "default bind"};
  };
  return {
      // /dev and /proc stay writable: /dev/shm, /dev/pts, and /proc/self/*
      // (uid_map of nested namespaces, oom_score_adj) are written by jobs.
      bind("/dev", N::kRequired, false),
      bind("/proc", N::kRequired, false),
      bind("/sys", N::kRequired, true),
      bind("/etc/hosts", N::kOptional, true),
      bind("/etc/machine-id", N::kOptional, true),
      bind("/etc/resolv.conf", N::kOptional, true),
      // Writable: libhugetlbfs, ALPS and slurmd's PMIx server create files here.
      bind("/var/lib/hugetlbfs", N::kOptional, false),
      bind("/etc/opt/cray/wlm_detect", N::kOptional, true),
      bind("/opt/cray/wlm_detect", N::kOptional, true),
      bind("/opt/cray/alps", N::kOptional, true),
      bind("/opt/cray/udreg", N::kOptional, true),
      bind("/opt/cray/ugni", N::kOptional, true),
      bind("/opt/cray/xpmem", N::kOptional, true),
      bind("/var/opt/cray/alps", N::kOptional, false),
      // slurmd's spool (its PMIx server's directory): needed by MPI jobs,
      // so its mount point is made even where the image lacks it.
      bind("/var/spool/slurmd", N::kCreateDst, false),
  };
}

namespace {

std::string user_name(const HostFacts& host) {
  if (auto u = host.env.get("USER"); u && !u->empty()) return std::string(*u);
  if (const struct passwd* p = ::getpwuid(host.uid)) return p->pw_name;
  throw Error(fmt::format("$USER not set and uid {} has no name on this host", host.uid));
}

bool is_dir(const std::string& p) {
  auto st = sys::try_stat(p);
  return st && S_ISDIR(st->st_mode);
}


// A and B are the same path, or one lies under the other.
bool related(const std::string& a, const std::string& b) {
  return image_ref::is_under(a, b) || image_ref::is_under(b, a);
}

// Corrupt, truncated, unsupported: fail before anything is set up.
void check_squash(const std::string& path) {
  auto info = squash::check(path);
  log::verbose("SquashFS image: {}, {} compression, {} inodes", path, info.compression,
               info.inodes);
}

// /etc/passwd and /etc/group for the container's ids, from the host's user
// database (nothing with --no-passwd).
void write_passwd(Plan& p) {
  if (p.no_passwd) return;
  auto names = passwd::lookup(p.ids.container_uid, p.ids.container_gid);
  if (!names.user) log::verbose("UID {} not found; using dummy info", p.ids.container_uid);
  if (!names.group) log::verbose("GID {} not found; using dummy info", p.ids.container_gid);
  p.passwd = passwd::passwd_text(p.ids.container_uid, p.ids.container_gid, names,
                                 p.env.home.value_or("/"));
  p.group = passwd::group_text(p.ids.container_gid, names);
}

}  // namespace

std::string squash_mount_point(const std::optional<std::string>& option,
                               const std::vector<std::string>& sources) {
  if (option) {
    auto real = sys::try_canonical(*option);
    if (!real || !is_dir(*real))
      throw SysError(real ? ENOTDIR : ENOENT, fmt::format("--mount: not a directory: {}", *option));
    if (*real == "/" || image_ref::is_under(*real, "/proc"))
      throw Error(fmt::format("--mount: can't mount the image on {}", *real));
    for (const auto& s : sources)
      if (related(*real, s))
        throw Error(fmt::format("--mount: {} would hide bind source {}: choose another directory",
                                *real, s));
    return *real;
  }
  for (const char* cand : {"/mnt", "/srv", "/opt", "/media", "/boot", "/home", "/var", "/usr"}) {
    auto real = sys::try_canonical(cand);
    if (!real || !is_dir(*real) || *real == "/") continue;
    bool clash = false;
    for (const auto& s : sources) clash = clash || related(*real, s);
    if (!clash) return *real;
  }
  throw Error("no directory to mount the SquashFS image on (all overlap bind sources): use -m DIR");
}

Plan make_plan(const Config& c, const HostFacts& host) {
  Plan p;
  if (c.argv.empty()) throw Error("no command given");
  const std::string user = user_name(host);
  const std::string storage =
      image_ref::storage_dir(c.storage, host.env.get("CH_IMAGE_STORAGE"), user);

  p.image = image_ref::resolve(c.image, storage, c.unsafe);
  // With --join, only the process that builds the container finishes the
  // plan (see Plan::finished): its peers join a container whose image that
  // one has checked (the same file: the group's fingerprint names its inode).
  const bool may_join = c.join || c.join_ct || c.join_tag;
  if (p.image.kind == ImageKind::kSquash) {
    if (!may_join) check_squash(p.image.path);  // corrupt, truncated, unsupported: fail now
    if (c.write)
      throw Error(fmt::format("--write: SquashFS images are read-only (--write-fake gives a "
                              "writable layer): {}", c.image));
  }
  if (c.write && p.image.from_storage && !c.unsafe)
    throw Error(fmt::format("--write on an image in storage needs --unsafe: {}", c.image));
  if (c.mount_dir && p.image.kind == ImageKind::kDirectory)
    log::warn("--mount invalid with directory image, ignoring");
  p.writable = c.write;
  p.write_fake = c.write_fake;

  p.ids.host_uid = host.uid;
  p.ids.host_gid = host.gid;
  p.ids.container_uid = c.uid.value_or(host.uid);
  p.ids.container_gid = c.gid.value_or(host.gid);

  // Default binds whose host side is missing are dropped now; required ones
  // are an error.
  for (auto& m : default_mounts()) {
    if (c.pid && m.dst == "/proc") {
      // The job's PID namespace gets a /proc of its own, which shows its
      // processes only.
      p.mounts.push_back({Mount::Kind::kProc, Mount::Need::kRequired, "proc", "/proc", false, true,
                          "--pid"});
      continue;
    }
    auto st = sys::try_stat(m.src);
    if (!st) {
      if (m.need == Mount::Need::kRequired)
        throw SysError(ENOENT, fmt::format("can't bind: host path missing: {}", m.src));
      log::debug("default bind: host has no {}: skipped", m.src);
      continue;
    }
    m.src_is_dir = S_ISDIR(st->st_mode);
    p.mounts.push_back(std::move(m));
  }

  // /tmp: the host's $TMPDIR or /tmp, or a private tmpfs.
  if (c.private_tmp) {
    p.mounts.push_back({Mount::Kind::kTmpfs, Mount::Need::kRequired, "mode=1777", "/tmp",
                        false, true, "--private-tmp"});
  } else {
    auto tmpdir = host.env.get("TMPDIR");
    std::string src = tmpdir && !tmpdir->empty() ? std::string(*tmpdir) : "/tmp";
    if (!is_dir(src))
      throw SysError(ENOTDIR, fmt::format("can't bind host temporary directory: {}", src));
    p.mounts.push_back({Mount::Kind::kBind, Mount::Need::kRequired, src, "/tmp", false, true,
                        "temporary directory"});
  }

  // The PMIx server's directories (Slurm's, under its spool directory, or
  // another launcher's), where its clients find its socket and shared
  // memory: at the same path inside, unless a bind already shows them.
  for (const char* var : {"PMIX_SERVER_TMPDIR", "PMIX_SYSTEM_TMPDIR"}) {
    auto v = host.env.get(var);
    if (!v || v->empty() || !path::is_absolute(*v)) continue;
    auto real = sys::try_canonical(std::string(*v));
    if (!real || !is_dir(*real) || *real == "/") continue;
    bool shown = false;
    const Mount* covering = nullptr;
    for (const auto& m : p.mounts) {
      if (m.kind == Mount::Kind::kBind && m.src == m.dst && image_ref::is_under(*real, m.src))
        shown = true;
      else if (image_ref::is_under(*real, m.dst))
        covering = &m;
    }
    if (shown) continue;
    if (covering) {
      // Binding it would mean making a mount point in a host directory.
      log::warn("${}: {} can't be shown in the container: {} {} covers it", var, *real,
                covering->why, covering->dst);
      continue;
    }
    p.mounts.push_back({Mount::Kind::kBind, Mount::Need::kCreateDst, *real, *real, false, true,
                        fmt::format("${}", var)});
  }

  // --home: a small tmpfs on /home, so that /home/$USER can be made even in a
  // read-only image, with $HOME bound there.
  std::optional<std::string> home_in;
  if (c.home) {
    auto h = host.env.get("HOME");
    if (!h || h->empty()) throw Error("--home: $HOME not set");
    if (!is_dir(std::string(*h)))
      throw SysError(ENOTDIR, fmt::format("--home: $HOME is not a directory: {}", *h));
    if (user.find('/') != std::string::npos || user == "." || user == "..")
      throw Error(fmt::format("--home: $USER is not a valid directory name: {:?}", user));
    home_in = "/home/" + user;
    p.mounts.push_back({Mount::Kind::kTmpfs, Mount::Need::kRequired, "size=4m,mode=0755", "/home",
                        false, true, "--home"});
    p.mounts.push_back({Mount::Kind::kBind, Mount::Need::kMakeDst, std::string(*h), *home_in,
                        false, true, "--home"});
  }

  // The site configuration's binds: where the host has them.
  const site::Config site = host.site ? *host.site : site::load(host.env);
  for (const auto& b : site.binds) {
    auto st = sys::try_stat(b.src);
    if (!st) {
      log::debug("site bind: host has no {}: skipped", b.src);
      continue;
    }
    p.mounts.push_back({Mount::Kind::kBind, Mount::Need::kCreateDst, b.src, b.dst, b.readonly,
                        S_ISDIR(st->st_mode), "site bind"});
  }

  // User binds, last, in command-line order.
  for (const auto& b : c.binds) {
    auto st = sys::try_stat(b.src);
    if (!st) {
      int e = errno;
      throw SysError(e, fmt::format("can't bind: source not found: {}", b.src));
    }
    p.mounts.push_back({Mount::Kind::kBind, Mount::Need::kMakeDst, b.src, b.dst, b.readonly,
                        S_ISDIR(st->st_mode), "--bind"});
  }

  // --gpu, --device, --mpi: host files and variables.
  Environment job_env = host.env;
  if (c.inject.any()) {
    if (c.join_pid)
      throw Error("--join-pid can't be combined with --gpu, --device or --mpi (the container "
                  "exists already)");
    p.inject = inject::make(c.inject, site, host.env);
    for (const auto& kv : p.inject.env) {
      auto eq = kv.find('=');
      job_env.set(kv.substr(0, eq), kv.substr(eq + 1));
    }
    if (!p.inject.binaries.empty()) {
      auto path_var = job_env.get("PATH");
      std::string v = path_var && !path_var->empty() ? std::string(*path_var) + ":" : "";
      job_env.set("PATH", v + inject::kBinDir);
    }
    if (log::level() >= log::kDebug) log::debug("injected:\n{}", p.inject.describe());
  }

  if (p.image.kind == ImageKind::kSquash) {
    std::vector<std::string> sources;
    for (const auto& m : p.mounts)
      if (m.kind == Mount::Kind::kBind)
        if (auto real = sys::try_canonical(m.src)) sources.push_back(*real);
    for (const auto& f : p.inject.libraries) sources.push_back(f.host);
    for (const auto& f : p.inject.binaries) sources.push_back(f.host);
    for (const auto& b : p.inject.binds)
      if (auto real = sys::try_canonical(b.host)) sources.push_back(*real);
    p.squash_mount = squash_mount_point(c.mount_dir, sources);
  }

  p.no_passwd = c.no_passwd;
  p.env.ops = c.env_ops;
  p.env.expand = !c.env_no_expand;
  p.env.home = home_in;
  p.host_env = std::move(job_env);
  p.argv = c.argv;
  p.cwd = c.cd;
  if (c.join_pid && (c.join || c.join_ct || c.join_tag))
    throw Error("--join-pid can't be combined with --join, --join-ct or --join-tag");
  p.join_pid = c.join_pid;
  if (c.join || c.join_ct || c.join_tag) {
    join::Group g;
    std::tie(g.count, g.count_from) = join::resolve_count(c.join_ct, host.env);
    std::tie(g.tag, g.tag_from) = join::resolve_tag(c.join_tag, host.env, host.parent);
    log::verbose("join: {} processes (from {}), tag {} (from {})", g.count, g.count_from, g.tag,
                 g.tag_from);
    if (g.count > 1) p.join = std::move(g);
  }
  p.cap_drop = c.cap_drop;
  // Compiled now, so that the job's last step only loads it. Each process
  // of a --join group has its own filter: it is not part of the container.
  p.seccomp = seccomp::compile(c.seccomp);
  if (!p.seccomp.code.empty())
    log::verbose("seccomp: {}{}{} ({} instructions)", c.seccomp.emulate_root ? "root emulation" : "",
                 c.seccomp.emulate_root && !c.seccomp.deny.empty() ? ", " : "",
                 c.seccomp.deny.empty() ? "" : fmt::format("{} calls denied", c.seccomp.deny.size()),
                 p.seccomp.code.size());
  p.isolate = (c.ipc ? CLONE_NEWIPC : 0) | (c.uts ? CLONE_NEWUTS : 0) | (c.net_none ? CLONE_NEWNET : 0);
  p.hostname = c.hostname;
  if (p.isolate && (p.join || p.join_pid))
    throw Error("--ipc, --uts, --hostname and --net=none can't be combined with --join or "
                "--join-pid (the processes of a group share the first one's namespaces)");
  p.pid = c.pid;
  if (p.pid && (p.join || p.join_pid))
    throw Error("--pid can't be combined with --join or --join-pid (the processes of a group "
                "share one container; a PID namespace of its own is the job's alone)");
  p.verbosity = c.verbosity;
  // Finished now unless this process may still join another's container;
  // a SquashFS image not checked above is checked then.
  p.finished = false;
  if (!p.join) {
    if (may_join && p.image.kind == ImageKind::kSquash) check_squash(p.image.path);
    write_passwd(p);
    p.finished = true;
  }
  return p;
}

void finish_plan(Plan& p) {
  if (p.finished) return;
  if (p.image.kind == ImageKind::kSquash) check_squash(p.image.path);
  write_passwd(p);
  p.finished = true;
}

}  // namespace chute
