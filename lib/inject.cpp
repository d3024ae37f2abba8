// inject::apply(): host files into the container, before the pivot.
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fmt/core.h>
#include <fmt/format.h>
#include <map>
#include <set>

#include "chute/elf.hpp"
#include "chute/error.hpp"
#include "chute/inject.hpp"
#include "chute/inroot.hpp"
#include "chute/log.hpp"
#include "chute/mount.hpp"
#include "chute/path.hpp"
#include "chute/preflight.hpp"
#include "chute/sys.hpp"
#include "chute/text.hpp"

namespace chute::inject {

namespace {

#if defined(__x86_64__)
constexpr const char* kTriplet = "x86_64-linux-gnu";
#elif defined(__aarch64__)
constexpr const char* kTriplet = "aarch64-linux-gnu";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr const char* kTriplet = "powerpc64le-linux-gnu";
#else
constexpr const char* kTriplet = "";
#endif

using text::trim;

// One ld.so.conf file (inside the image) into DIRS; includes followed up to
// a depth of 8.
void read_conf(int rootfd, const std::string& file, int depth, std::vector<std::string>& dirs) {
  if (depth > 8) return;
  auto fd = inroot::try_open(rootfd, file, O_RDONLY);
  if (!fd) return;
  std::string text;
  try {
    if (!S_ISREG(sys::fstat(fd->get(), file).st_mode)) return;
    text = sys::read_all(fd->get(), file);
  } catch (const std::exception&) {
    return;
  }
  for (std::string line : text::split(text, '\n')) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    line = trim(line);
    if (line.empty() || line.rfind("hwcap", 0) == 0) continue;
    if (line.rfind("include", 0) == 0 && line.size() > 7 && (line[7] == ' ' || line[7] == '\t')) {
      std::string pat = trim(line.substr(8));
      if (pat.empty()) continue;
      if (pat[0] != '/') pat = path::join(path::parent(file), pat);
      // A glob in the last component only, as distributions write them.
      std::string dir = path::parent(pat), leaf = path::leaf(pat);
      auto d = inroot::try_open(rootfd, dir, O_RDONLY | O_DIRECTORY);
      if (!d) continue;
      auto names = sys::list_dir(d->get(), dir);
      std::sort(names.begin(), names.end());
      for (const auto& n : names)
        if (::fnmatch(leaf.c_str(), n.c_str(), FNM_PERIOD) == 0)
          read_conf(rootfd, path::join(dir, n), depth + 1, dirs);
      continue;
    }
    // Directories, separated by blanks, commas or colons.
    size_t i = 0;
    while (i < line.size()) {
      size_t j = line.find_first_of(" \t,:", i);
      if (j == std::string::npos) j = line.size();
      std::string d = line.substr(i, j - i);
      if (!d.empty() && d[0] == '/') dirs.push_back(path::normalise(d));
      i = j + 1;
    }
  }
}

void bind_fd_path(const std::string& src, int target, const std::string& what, bool ro, int rootfd,
                  const std::string& dst) {
  if (::mount(src.c_str(), sys::fd_path(target).c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    int e = errno;
    throw SysError(e, fmt::format("can't bind {} to {} ({})", src, dst, what));
  }
  if (ro) {
    Fd top = inroot::open(rootfd, dst, O_PATH);
    mount::make_readonly(top.get(), dst, true);
  }
}

// The image's linker view, for the preflight check.
class ImageLibs {
public:
  ImageLibs(int rootfd, std::vector<std::string> dirs) : rootfd_(rootfd), dirs_(std::move(dirs)) {}

  std::optional<std::string> where(const std::string& name) {
    for (const auto& d : dirs_) {
      std::string p = path::join(d, name);
      if (auto fd = inroot::try_open(rootfd_, p, O_PATH)) {
        if (S_ISREG(sys::fstat(fd->get(), p).st_mode)) return p;
      }
    }
    return std::nullopt;
  }

  std::optional<elf::Info> find(const std::string& name) {
    if (auto it = cache_.find(name); it != cache_.end()) return it->second;
    std::optional<elf::Info> info;
    if (auto p = where(name)) {
      try {
        Fd fd = inroot::open(rootfd_, *p, O_RDONLY);
        info = elf::read(fd.get(), *p);
      } catch (const std::exception& e) {
        log::debug("preflight: {}: {}", *p, e.what());
      }
    }
    cache_[name] = info;
    return info;
  }

  std::vector<std::string> names_with_prefix(const std::string& prefix) {
    if (!listed_) {
      listed_ = true;
      for (const auto& d : dirs_) {
        auto fd = inroot::try_open(rootfd_, d, O_RDONLY | O_DIRECTORY);
        if (!fd) continue;
        for (auto& n : sys::list_dir(fd->get(), d)) names_.insert(std::move(n));
      }
    }
    std::vector<std::string> out;
    for (auto it = names_.lower_bound(prefix); it != names_.end() && it->rfind(prefix, 0) == 0; ++it)
      out.push_back(*it);
    return out;
  }

private:
  int rootfd_;
  std::vector<std::string> dirs_;
  std::map<std::string, std::optional<elf::Info>> cache_;
  bool listed_ = false;
  std::set<std::string> names_;
};

std::optional<std::string> image_ldconfig(int rootfd) {
  for (const char* p : {"/sbin/ldconfig", "/usr/sbin/ldconfig", "/sbin/ldconfig.real",
                        "/usr/sbin/ldconfig.real", "/bin/ldconfig", "/usr/bin/ldconfig"}) {
    if (auto fd = inroot::try_open(rootfd, p, O_PATH)) {
      auto st = sys::fstat(fd->get(), p);
      if (S_ISREG(st.st_mode) && (st.st_mode & 0111)) return std::string(p);
    }
  }
  return std::nullopt;
}

void make_dir(int at, const char* name, const std::string& full) {
  if (::mkdirat(at, name, 0755) != 0 && errno != EEXIST) {
    int e = errno;
    throw SysError(e, fmt::format("can't create {}", full));
  }
}

// An empty file NAME in directory AT (a tmpfs of ours), opened O_PATH.
Fd make_spot(int at, const std::string& name, const std::string& full, bool dir) {
  int r = dir ? ::mkdirat(at, name.c_str(), 0755)
              : ::mknodat(at, name.c_str(), S_IFREG | 0644, 0);
  if (r != 0 && errno != EEXIST) {
    int e = errno;
    throw SysError(e, fmt::format("can't create {}", full));
  }
  int fd = ::openat(at, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    throw SysError(e, fmt::format("can't open {}", full));
  }
  return Fd(fd);
}

bool is_dir_path(const std::string& p) {
  auto st = sys::try_stat(p);
  return st && S_ISDIR(st->st_mode);
}

bool under(const std::string& p, const std::string& dir) {
  return p.size() > dir.size() && p.compare(0, dir.size(), dir) == 0 && p[dir.size()] == '/';
}

}  // namespace

std::vector<std::string> linker_dirs(int rootfd) {
  std::vector<std::string> dirs;
  read_conf(rootfd, "/etc/ld.so.conf", 0, dirs);
  std::string t = kTriplet;
  std::vector<std::string> sys_dirs;
  if (!t.empty()) sys_dirs = {"/lib/" + t, "/usr/lib/" + t};
  for (const char* d : {"/lib64", "/usr/lib64", "/lib", "/usr/lib"}) sys_dirs.emplace_back(d);
  for (auto& d : sys_dirs) dirs.push_back(std::move(d));
  std::vector<std::string> out;
  for (auto& d : dirs)
    if (std::find(out.begin(), out.end(), d) == out.end() &&
        inroot::try_open(rootfd, d, O_PATH | O_DIRECTORY))
      out.push_back(std::move(d));
  return out;
}

void apply(const Plan& plan, int rootfd, bool overlay) {
  if (plan.empty()) return;
  // The tmpfs over /run that holds what is injected.
  if (!inroot::try_open(rootfd, "/run", O_PATH | O_DIRECTORY)) {
    if (!overlay)
      throw Error("can't inject host files: the image has no /run (create it in the image, or "
                  "use -W)");
    inroot::mkdirs(rootfd, "/run", 0755);
  }
  mount::CoverOptions copts;
  copts.size = "64m";
  Fd run = mount::cover(rootfd, "/run", copts);
  const unsigned long long run_id = sys::mount_id(run.get());
  make_dir(run.get(), "chute", kDir);
  Fd dir = inroot::open(rootfd, kDir, O_PATH | O_DIRECTORY);
  make_dir(dir.get(), "lib", kLibDir);
  make_dir(dir.get(), "bin", kBinDir);
  Fd libdir = inroot::open(rootfd, kLibDir, O_PATH | O_DIRECTORY);
  Fd bindir = inroot::open(rootfd, kBinDir, O_PATH | O_DIRECTORY);

  // Libraries: over the image's file of that name, else into kLibDir.
  std::vector<std::string> ldirs = linker_dirs(rootfd);
  for (const auto& d : plan.ldconfig_dirs)
    if (std::find(ldirs.begin(), ldirs.end(), d) == ldirs.end()) ldirs.insert(ldirs.begin(), d);
  // What the image's linker finds. find() is first called by the preflight
  // check, after the binds below, so it reads what the job will load; the
  // names in the directories do not change with binds over files.
  ImageLibs image(rootfd, ldirs);
  const size_t n = plan.libraries.size();
  std::vector<elf::Info> infos;
  std::vector<std::optional<std::string>> there(n);   // the image's file of that name
  for (size_t i = 0; i < n; ++i) {
    const auto& f = plan.libraries[i];
    try {
      infos.push_back(elf::read_file(f.host));
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", f.why, e.what()));
    }
    there[i] = image.where(f.name);
  }
  // Which to inject: all but the replace-only ones the image lacks, unless
  // an injected library needs them (to a fixed point).
  std::vector<bool> keep(n);
  for (size_t i = 0; i < n; ++i) keep[i] = !plan.libraries[i].replace_only || there[i];
  for (bool grew = true; grew;) {
    grew = false;
    std::set<std::string> needed;
    for (size_t i = 0; i < n; ++i)
      if (keep[i]) needed.insert(infos[i].needed.begin(), infos[i].needed.end());
    for (size_t i = 0; i < n; ++i)
      if (!keep[i] && needed.count(plan.libraries[i].name)) keep[i] = grew = true;
  }
  std::vector<preflight::Library> injected;
  std::vector<std::string> abi_problems;   // replace-only libraries the image has another ABI of
  bool placed = false;   // anything in kLibDir: the linker cache must list it
  for (size_t i = 0; i < n; ++i) {
    const auto& f = plan.libraries[i];
    std::string dst;
    if (!keep[i]) {
      log::verbose("inject: {}: the image has no {} and nothing injected needs it: left out ({})",
                   f.host, f.name, f.why);
      // libmpi.so.40 from the host, libmpi.so.12 in the image: the image's
      // programs would go on using their own.
      const auto so = f.name.find(".so.");
      if (so != std::string::npos) {
        std::string others;
        for (const auto& o : image.names_with_prefix(f.name.substr(0, so + 4)))
          if (o.find('.', so + 4) == std::string::npos)
            others += (others.empty() ? "" : ", ") + o;
        if (!others.empty())
          abi_problems.push_back(fmt::format(
              "host {} and the image's {} have different ABIs (sonames differ): the image's "
              "programs would not use the injected library ({})", f.name, others, f.why));
      }
      continue;
    }
    if (there[i]) {
      Fd target = inroot::open(rootfd, *there[i], O_PATH);
      dst = *there[i];
      log::verbose("inject: {} over the image's {} ({})", f.host, dst, f.why);
      bind_fd_path(f.host, target.get(), f.why, true, rootfd, dst);
    } else {
      dst = path::join(kLibDir, f.name);
      Fd spot = make_spot(libdir.get(), f.name, dst, false);
      log::verbose("inject: {} at {} ({})", f.host, dst, f.why);
      bind_fd_path(f.host, spot.get(), f.why, true, rootfd, dst);
      placed = true;
    }
    injected.push_back({dst, std::move(infos[i])});
  }
  for (const auto& f : plan.binaries) {
    std::string dst = path::join(kBinDir, f.name);
    Fd spot = make_spot(bindir.get(), f.name, dst, false);
    log::verbose("inject: {} at {} ({})", f.host, dst, f.why);
    bind_fd_path(f.host, spot.get(), f.why, true, rootfd, dst);
  }

  // Preflight: will the injected libraries load in this image?
  if (!injected.empty() || !abi_problems.empty()) {
    preflight::Image view;
    view.find = [&](const std::string& name) { return image.find(name); };
    view.names_with_prefix = [&](const std::string& p) { return image.names_with_prefix(p); };
    auto problems = preflight::check(injected, view);
    for (auto& a : abi_problems) problems.push_back({"", std::move(a)});
    for (const auto& pr : problems) log::warn("preflight: {}", pr.message);
    if (!problems.empty() && !plan.warn_only)
      throw Error(fmt::format("preflight: {} problem{} with the injected libraries (see above; "
                              "--warn-only runs anyway)", problems.size(),
                              problems.size() == 1 ? "" : "s"));
  }

  // Device files: the host's /dev is bound; add what it lacks, hide what
  // was not selected.
  std::vector<const Bind*> dev_missing;
  for (const auto& b : plan.binds) {
    if (!b.device) continue;
    if (b.host == b.dst && inroot::try_open(rootfd, b.dst, O_PATH)) continue;  // already visible
    dev_missing.push_back(&b);
  }
  if (!dev_missing.empty() || !plan.hide_devices.empty()) {
    mount::CoverOptions dopts;
    dopts.hide = plan.hide_devices;
    Fd dev = mount::cover(rootfd, "/dev", dopts);
    const unsigned long long dev_id = sys::mount_id(dev.get());
    for (const Bind* b : dev_missing) {
      if (!under(b->dst, "/dev"))
        throw Error(fmt::format("{}: device {} is not under /dev", b->why, b->dst));
      const bool d = is_dir_path(b->host);
      std::optional<Fd> target = inroot::try_open(rootfd, b->dst, O_PATH);
      if (!target) {
        const unsigned long long also[] = {dev_id};
        target = d ? inroot::mkdirs(rootfd, b->dst, 0755, also)
                   : inroot::make_file(rootfd, b->dst, 0644, also);
      }
      log::verbose("inject: device {} at {} ({})", b->host, b->dst, b->why);
      bind_fd_path(b->host, target->get(), b->why, b->readonly, rootfd, b->dst);
    }
    mount::make_readonly(dev.get(), "/dev", false);
  }

  // Other binds: over what exists; created on /run's tmpfs, or in the
  // overlay, or through a cover of their parent.
  for (const auto& b : plan.binds) {
    if (b.device) continue;
    const bool d = is_dir_path(b.host);
    std::optional<Fd> target = inroot::try_open(rootfd, b.dst, O_PATH);
    if (!target && (under(b.dst, "/run") || overlay)) {
      const unsigned long long also[] = {run_id};
      target = d ? inroot::mkdirs(rootfd, b.dst, 0755, also)
                 : inroot::make_file(rootfd, b.dst, 0644, also);
    }
    if (!target) {
      Mount m{Mount::Kind::kBind, Mount::Need::kCreateDst, b.host, b.dst, b.readonly, d, b.why};
      mount::apply({m}, rootfd);
      continue;
    }
    log::verbose("inject: {} at {} ({})", b.host, b.dst, b.why);
    bind_fd_path(b.host, target->get(), b.why, b.readonly, rootfd, b.dst);
  }

  // Symlinks (CDI's create-symlinks): on /run or in the overlay as asked; a
  // library's link next to the injected libraries.
  for (const auto& [link, target] : plan.symlinks) {
    std::string at = link;
    if (!(under(link, "/run") || overlay)) {
      const std::string leaf = path::leaf(link);
      if (::fnmatch("*.so*", leaf.c_str(), 0) != 0) {
        log::warn("--device: symlink {} -> {} not made: the image is read-only there (use -W)",
                  link, target);
        continue;
      }
      at = path::join(kLibDir, leaf);
      placed = true;
    }
    if (inroot::try_open(rootfd, at, O_PATH | O_NOFOLLOW)) continue;
    const unsigned long long also[] = {run_id};
    Fd parent = inroot::mkdirs(rootfd, path::parent(at), 0755, also);
    if (::symlinkat(target.c_str(), parent.get(), path::leaf(at).c_str()) != 0) {
      int e = errno;
      throw SysError(e, fmt::format("can't create symlink {} -> {}", at, target));
    }
  }

  // The private linker cache: the image's ldconfig, run in the image, over
  // the image's directories, the injected ones first.
  if (placed || !plan.ldconfig_dirs.empty()) {
    std::string conf = std::string(kLibDir) + "\n";
    for (const auto& d : plan.ldconfig_dirs) conf += d + "\n";
    conf += "include /etc/ld.so.conf\n";
    {
      Fd f(::openat(dir.get(), "ld.so.conf", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644));
      if (!f) {
        int e = errno;
        throw SysError(e, fmt::format("can't create {}/ld.so.conf", kDir));
      }
      sys::write_all(f.get(), conf, "ld.so.conf");
    }
    auto ldconfig = image_ldconfig(rootfd);
    if (!ldconfig) {
      std::string msg = "the image has no ldconfig: its linker cache can't list the injected "
                        "libraries";
      if (!plan.warn_only) throw Error(msg + " (--warn-only runs anyway)");
      log::warn("{}", msg);
    } else {
      const std::string cache = std::string(kDir) + "/ld.so.cache";
      auto out = sys::run_capture({*ldconfig, "-X", "-C", cache, "-f",
                                   std::string(kDir) + "/ld.so.conf"},
                                  rootfd);
      if (out.status != 0)
        throw Error(fmt::format("the image's {} failed (exit {}): {}", *ldconfig, out.status,
                                trim(out.text)));
      if (!out.text.empty()) log::debug("ldconfig: {}", trim(out.text));
      log::verbose("inject: linker cache made by the image's {}", *ldconfig);
      Fd made = inroot::open(rootfd, cache, O_PATH);
      if (auto etc = inroot::try_open(rootfd, "/etc/ld.so.cache", O_PATH)) {
        bind_fd_path(sys::fd_path(made.get()), etc->get(), "linker cache", true, rootfd,
                     "/etc/ld.so.cache");
      } else {
        Mount m{Mount::Kind::kBind, overlay ? Mount::Need::kMakeDst : Mount::Need::kCreateDst,
                sys::fd_path(made.get()), "/etc/ld.so.cache", true, false, "linker cache"};
        mount::apply({m}, rootfd);
      }
    }
  }
  mount::make_readonly(run.get(), "/run", false);
}

}  // namespace chute::inject
