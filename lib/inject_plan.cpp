// inject::make(): what --gpu, --device and --mpi need from the host.
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <fmt/core.h>
#include <map>
#include <set>

#include "chute/cdi.hpp"
#include "chute/elf.hpp"
#include "chute/error.hpp"
#include "chute/inject.hpp"
#include "chute/log.hpp"
#include "chute/path.hpp"
#include "chute/site.hpp"
#include "chute/sys.hpp"
#include "chute/text.hpp"

namespace chute::inject {

std::string Plan::describe() const {
  std::string d;
  for (const auto& f : libraries)
    d += fmt::format("lib {} {}{}\n", f.name, f.host, f.replace_only ? " replace-only" : "");
  for (const auto& f : binaries) d += fmt::format("bin {} {}\n", f.name, f.host);
  for (const auto& b : binds) d += fmt::format("bind {} {} {}\n", b.host, b.dst, b.readonly);
  for (const auto& h : hide_devices) d += fmt::format("hide {}\n", h);
  for (const auto& l : ldconfig_dirs) d += fmt::format("ldconfig {}\n", l);
  for (const auto& [link, target] : symlinks) d += fmt::format("symlink {} {}\n", link, target);
  return d;
}

namespace {

#if defined(__x86_64__)
constexpr int kMachine = 62;   // EM_X86_64
#elif defined(__aarch64__)
constexpr int kMachine = 183;  // EM_AARCH64
#elif defined(__powerpc64__)
constexpr int kMachine = 21;   // EM_PPC64
#else
constexpr int kMachine = -1;   // not checked
#endif

// The host's linker cache: (name, path), as `ldconfig -p` lists it.
std::vector<std::pair<std::string, std::string>> host_ldcache() {
  for (const char* prog : {"/sbin/ldconfig", "/usr/sbin/ldconfig"}) {
    if (!sys::try_stat(prog)) continue;
    auto out = sys::run_capture({prog, "-p"});
    if (out.status != 0) {
      log::warn("{} -p failed (exit {}): the host's linker cache is not searched", prog,
                out.status);
      return {};
    }
    std::vector<std::pair<std::string, std::string>> entries;
    for (const std::string& l : text::split(out.text, '\n')) {
      const std::string_view line = l;
      // "\tNAME (FLAGS) => PATH"
      size_t arrow = line.find(" => ");
      if (line.empty() || line[0] != '\t' || arrow == std::string_view::npos) continue;
      std::string_view head = line.substr(1, arrow - 1);
      size_t sp = head.find(' ');
      entries.emplace_back(std::string(head.substr(0, sp)), std::string(line.substr(arrow + 4)));
    }
    return entries;
  }
  log::verbose("no ldconfig on the host: its linker cache is not searched");
  return {};
}

// The soname of a shared object of this machine, or nullopt (with the
// reason logged) when PATH is not one.
std::optional<std::string> library_name(const std::string& path) {
  try {
    elf::Info info = elf::read_file(path);
    if (kMachine >= 0 && info.machine != kMachine) {
      log::debug("{}: for another machine: skipped", path);
      return std::nullopt;
    }
    return info.soname.empty() ? path::leaf(path) : info.soname;
  } catch (const std::exception& e) {
    log::debug("{}: skipped: {}", path, e.what());
    return std::nullopt;
  }
}

bool is_regular(const std::string& p) {
  auto st = sys::try_stat(p);
  return st && S_ISREG(st->st_mode);
}

class Libraries {
public:
  explicit Libraries(std::vector<File>& out) : out_(out) {
    for (const auto& f : out_) names_.insert(f.name);
  }

  // Add PATH (a file) under its soname, once per name. False if it is not
  // a shared object of this machine.
  bool add(const std::string& path, const std::string& why) {
    auto real = sys::try_canonical(path);
    if (!real || !is_regular(*real)) return false;
    auto name = library_name(*real);
    if (!name) return false;
    if (names_.insert(*name).second) out_.push_back({*real, *name, why});
    return true;
  }

  // Patterns looked up in DIRS, then in the linker cache when CACHE.
  // Returns the patterns nothing matched.
  std::vector<std::string> find(const std::vector<std::string>& patterns,
                                const std::vector<std::string>& dirs, bool cache,
                                const std::string& why) {
    std::vector<std::string> unmatched;
    for (const auto& pat : patterns) {
      bool found = false;
      if (!pat.empty() && pat[0] == '/') {
        found = add(pat, why);
        if (!found) unmatched.push_back(pat);
        continue;
      }
      for (const auto& dir : dirs) {
        auto fd = sys::try_open(dir, O_RDONLY | O_DIRECTORY);
        if (!fd) continue;
        auto names = sys::list_dir(fd->get(), dir);
        std::sort(names.begin(), names.end());
        for (const auto& n : names)
          if (::fnmatch(pat.c_str(), n.c_str(), 0) == 0) found |= add(path::join(dir, n), why);
      }
      if (cache) {
        if (!cache_) cache_ = host_ldcache();
        for (const auto& [n, p] : *cache_)
          if (::fnmatch(pat.c_str(), n.c_str(), 0) == 0) found |= add(p, why);
      }
      if (!found) unmatched.push_back(pat);
    }
    return unmatched;
  }

private:
  std::vector<File>& out_;
  std::set<std::string> names_;
  std::optional<std::vector<std::pair<std::string, std::string>>> cache_;
};

std::vector<std::string> glob_under(const std::string& root, const std::string& pattern) {
  std::vector<std::string> out;
  const std::string full = root == "/" ? pattern : root + pattern;
  glob_t g{};
  if (::glob(full.c_str(), 0, nullptr, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  ::globfree(&g);
  return out;
}

// The container path of host file HOST found under ROOT.
std::string under_root(const std::string& root, const std::string& host) {
  if (root == "/") return host;
  return host.substr(root.size());
}

struct NvidiaGpu {
  int minor = -1;
  std::string uuid;
};

// /proc/driver/nvidia/gpus/*/information under ROOT: minor number and UUID
// of each GPU.
std::vector<NvidiaGpu> nvidia_gpus(const std::string& root) {
  std::vector<NvidiaGpu> gpus;
  for (const auto& f : glob_under(root, "/proc/driver/nvidia/gpus/*/information")) {
    std::string text;
    try {
      text = sys::read_file(f);
    } catch (const std::exception&) {
      continue;
    }
    NvidiaGpu g;
    for (const std::string& line : text::split(text, '\n')) {
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string key = line.substr(0, colon);
      std::string val = text::trim(line.substr(colon + 1));
      if (key == "Device Minor") g.minor = std::atoi(val.c_str());
      else if (key == "GPU UUID") g.uuid = val;
    }
    if (g.minor >= 0) gpus.push_back(g);
  }
  return gpus;
}

bool all_digits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

void add_unique_bind(Plan& p, Bind b) {
  for (const auto& x : p.binds)
    if (x.dst == b.dst) return;
  p.binds.push_back(std::move(b));
}

void binaries(Plan& p, const site::Config& site, const std::vector<std::string>& names,
              const std::string& why) {
  for (const auto& n : names) {
    for (const auto& d : site.binary_dirs) {
      std::string f = path::join(d, n);
      if (auto st = sys::try_stat(f); st && S_ISREG(st->st_mode) && (st->st_mode & 0111)) {
        auto real = sys::try_canonical(f);
        if (std::none_of(p.binaries.begin(), p.binaries.end(),
                         [&](const File& b) { return b.name == n; }))
          p.binaries.push_back({real ? *real : f, n, why});
        break;
      }
    }
  }
}

// nvidia-container-cli's list of the driver's files, when it is installed
// and works.
std::optional<std::vector<std::string>> nvidia_container_cli(const site::Config& site) {
  if (!site.nvidia_container_cli || site.gpu_root != "/") return std::nullopt;
  for (const auto& d : site.binary_dirs) {
    std::string prog = path::join(d, "nvidia-container-cli");
    if (!sys::try_stat(prog)) continue;
    auto out = sys::run_capture({prog, "list", "--libraries", "--binaries"});
    if (out.status != 0) {
      log::verbose("{} list failed (exit {}): using the library patterns", prog, out.status);
      return std::nullopt;
    }
    std::vector<std::string> files;
    for (auto& line : text::split(out.text, '\n'))
      if (line[0] == '/') files.push_back(std::move(line));
    return files;
  }
  return std::nullopt;
}

void nvidia(Plan& p, const site::Config& site, const Environment& env) {
  const std::string why = "--gpu (nvidia)";
  const std::string& root = site.gpu_root;
  // Device files: the GPUs themselves (/dev/nvidiaN) by selection, the rest always.
  auto gpus = nvidia_gpus(root);
  std::vector<std::string> gpu_nodes, other_nodes;
  for (const auto& pat : site.nvidia.devices)
    for (const auto& f : glob_under(root, pat)) {
      std::string dst = under_root(root, f);
      std::string leaf = path::leaf(dst);
      bool is_gpu = leaf.size() > 6 && leaf.rfind("nvidia", 0) == 0 && all_digits(leaf.substr(6)) &&
                    path::parent(dst) == "/dev";
      (is_gpu ? gpu_nodes : other_nodes).push_back(f);
    }
  std::sort(gpu_nodes.begin(), gpu_nodes.end());
  std::set<int> minors;
  for (const auto& f : gpu_nodes) minors.insert(std::atoi(path::leaf(f).c_str() + 6));
  // NVIDIA_VISIBLE_DEVICES: all (or unset), none/void, or indices and UUIDs.
  std::set<int> chosen = minors;
  std::vector<std::string> uuids;
  bool subset = false;
  if (auto sel = env.get("NVIDIA_VISIBLE_DEVICES"); sel && *sel != "all") {
    chosen.clear();
    subset = true;
    if (*sel != "none" && *sel != "void") {
      for (const std::string& id : text::split(*sel, ',')) {
        int minor = -1;
        if (all_digits(id) && id.size() < 6) {
          minor = std::atoi(id.c_str());
          if (!minors.count(minor)) minor = -1;
        } else {
          for (const auto& g : gpus)
            if (g.uuid == id) minor = g.minor;
        }
        if (minor < 0) {
          std::string have;
          for (int m : minors) have += fmt::format("{}{}", have.empty() ? "" : ", ", m);
          throw Error(fmt::format("--gpu: NVIDIA_VISIBLE_DEVICES names GPU {:?}, which this "
                                  "host does not have (GPUs: {})", id,
                                  have.empty() ? "none" : have));
        }
        chosen.insert(minor);
        for (const auto& g : gpus)
          if (g.minor == minor && !g.uuid.empty()) uuids.push_back(g.uuid);
      }
    }
  }
  for (const auto& f : gpu_nodes) {
    int m = std::atoi(path::leaf(f).c_str() + 6);
    std::string dst = under_root(root, f);
    if (chosen.count(m)) {
      if (root != "/") add_unique_bind(p, {f, dst, false, true, why});
    } else if (root == "/") {
      p.hide_devices.push_back(path::leaf(dst));
    }
  }
  for (const auto& f : other_nodes)
    if (root != "/") add_unique_bind(p, {f, under_root(root, f), false, true, why});
  if (subset && !env.get("CUDA_VISIBLE_DEVICES") && !chosen.empty() &&
      uuids.size() == chosen.size()) {
    std::string v;
    for (const auto& u : uuids) v += (v.empty() ? "" : ",") + u;
    p.env.push_back("CUDA_VISIBLE_DEVICES=" + v);
  }
  log::verbose("--gpu: NVIDIA GPUs {} of {}", chosen.size(), minors.size());
  // User-space driver files.
  Libraries libs(p.libraries);
  if (auto listed = nvidia_container_cli(site)) {
    for (const auto& f : *listed) {
      if (f.find("/bin/") != std::string::npos || f.find("/sbin/") != std::string::npos)
        p.binaries.push_back({f, path::leaf(f), why});
      else
        libs.add(f, why);
    }
  } else {
    // NVIDIA_DRIVER_CAPABILITIES: compute and utility always; more on request.
    std::vector<std::string> patterns = site.nvidia.libraries;
    if (auto caps = env.get("NVIDIA_DRIVER_CAPABILITIES"))
      for (const std::string& cap : text::split(*caps, ','))
        for (const auto& [name, pats] : site.nvidia.capabilities)
          if (cap == name || cap == "all") patterns.insert(patterns.end(), pats.begin(), pats.end());
    auto missing = libs.find(patterns, site.library_dirs, site.gpu_ldcache, why);
    if (std::find(missing.begin(), missing.end(), "libcuda.so*") != missing.end())
      log::warn("--gpu: no libcuda.so found on the host (searched {}the linker cache)",
                site.library_dirs.empty() ? ""
                                          : fmt::format("{} and ", fmt::join(site.library_dirs, ", ")));
    binaries(p, site, site.nvidia.binaries, why);
  }
  for (const auto& f : site.nvidia.files)
    if (sys::try_stat(under_root("/", root == "/" ? f : root + f)))
      add_unique_bind(p, {root == "/" ? f : root + f, f, false, false, why});
}

void amd(Plan& p, const site::Config& site) {
  const std::string why = "--gpu (amd)";
  const std::string& root = site.gpu_root;
  if (root != "/")
    for (const auto& pat : site.amd.devices)
      for (const auto& f : glob_under(root, pat))
        add_unique_bind(p, {f, under_root(root, f), false, true, why});
  Libraries libs(p.libraries);
  libs.find(site.amd.libraries, site.library_dirs, site.gpu_ldcache, why);
  binaries(p, site, site.amd.binaries, why);
}

void gpu(Plan& p, const Request& r, const site::Config& site, const Environment& env) {
  const std::string& root = site.gpu_root;
  const bool have_nvidia = !glob_under(root, "/dev/nvidiactl").empty();
  const bool have_amd = !glob_under(root, "/dev/kfd").empty();
  if (!have_nvidia && !have_amd) {
    std::string msg = fmt::format("--gpu: no GPU found (no {0}/dev/nvidiactl, no {0}/dev/kfd)",
                                  root == "/" ? "" : root);
    if (r.gpu == Request::Gpu::kOptional) {
      log::warn("{}: running without", msg);
      return;
    }
    throw Error(msg + " (--gpu=optional runs without)");
  }
  if (have_nvidia) nvidia(p, site, env);
  if (have_amd) amd(p, site);
}

void mpi(Plan& p, const std::string& name, const site::Config& site) {
  auto it = site.mpi.find(name);
  if (it == site.mpi.end()) {
    std::string known;
    for (const auto& [n, _] : site.mpi) known += (known.empty() ? "" : ", ") + n;
    throw Error(fmt::format("--mpi: no profile {:?} in the site configuration (profiles: {})",
                            name, known.empty() ? "none" : known));
  }
  const auto& prof = it->second;
  const std::string why = "--mpi=" + name;
  Libraries libs(p.libraries);
  size_t before = p.libraries.size();
  auto missing = libs.find(prof.libraries, prof.library_dirs, true, why);
  for (const auto& m : missing) log::verbose("{}: nothing on the host matches {}", why, m);
  for (size_t i = before; i < p.libraries.size(); ++i) p.libraries[i].replace_only = true;
  if (p.libraries.size() == before)
    throw Error(fmt::format("{}: none of the profile's libraries is on this host ({})", why,
                            fmt::join(prof.libraries, ", ")));
  for (const auto& b : prof.binds) {
    if (!sys::try_stat(b.src)) {
      log::verbose("{}: host has no {}: not bound", why, b.src);
      continue;
    }
    add_unique_bind(p, {b.src, b.dst, b.readonly, false, why});
  }
  for (const auto& e : prof.env) p.env.push_back(e);
}

// CDI hooks: the ones chute does itself, and the others reported.
void cdi_hook(Plan& p, const cdi::Hook& h) {
  const auto& a = h.args;
  auto leaf = path::leaf(h.path);
  bool ctk = leaf == "nvidia-ctk" || leaf == "nvidia-cdi-hook";
  size_t verb = 0;
  if (ctk) {
    verb = a.size() > 1 && a[1] == "hook" ? 2 : 1;
  }
  if (ctk && verb < a.size() && a[verb] == "update-ldcache") {
    for (size_t i = verb + 1; i + 1 < a.size(); ++i)
      if (a[i] == "--folder") p.ldconfig_dirs.push_back(a[i + 1]);
    return;
  }
  if (ctk && verb < a.size() && a[verb] == "create-symlinks") {
    for (size_t i = verb + 1; i + 1 < a.size(); ++i)
      if (a[i] == "--link") {
        const std::string& spec = a[i + 1];
        auto sep = spec.find("::");
        if (sep == std::string::npos) continue;
        p.symlinks.emplace_back(spec.substr(sep + 2), spec.substr(0, sep));
      }
    return;
  }
  log::warn("--device: CDI hook not run: {} {}", h.path,
            a.size() > 1 ? fmt::format("{}", fmt::join(a.begin() + 1, a.end(), " ")) : "");
}

void cdi_edits(Plan& p, const cdi::Edits& e, const std::string& why) {
  for (const auto& n : e.device_nodes) add_unique_bind(p, {n.host_path, n.path, false, true, why});
  // A shared library goes where the linker cache finds it (see inject.hpp),
  // whatever path the spec gives it: a read-only image has no room at most
  // of those paths.
  Libraries libs(p.libraries);
  for (const auto& m : e.mounts) {
    const std::string leaf = path::leaf(m.host_path);
    const bool lib_name = ::fnmatch("*.so", leaf.c_str(), 0) == 0 ||
                          ::fnmatch("*.so.*", leaf.c_str(), 0) == 0;
    if (lib_name && is_regular(m.host_path) && libs.add(m.host_path, why)) continue;
    add_unique_bind(p, {m.host_path, m.container_path, m.readonly(), false, why});
  }
  for (const auto& v : e.env) p.env.push_back(v);
  for (const auto& h : e.hooks) cdi_hook(p, h);
}

}  // namespace

Plan make(const Request& r, const site::Config& site, const Environment& env) {
  Plan p;
  p.warn_only = r.warn_only;
  if (r.gpu != Request::Gpu::kNone) gpu(p, r, site, env);
  if (!r.devices.empty() || r.all_devices) {
    std::vector<std::string> dirs = site.cdi_dirs;
    if (r.cdi_dirs) dirs = text::split(*r.cdi_dirs, ':');
    else if (auto v = env.get("CH_RUN_CDI_DIRS"); v && !v->empty()) dirs = text::split(*v, ':');
    std::vector<cdi::Request> reqs;
    for (const auto& d : r.devices) reqs.push_back(cdi::parse_request(d));
    auto specs = cdi::load_dirs(dirs, [](const std::string& w) { log::warn("--device: {}", w); });
    cdi::Edits e = cdi::resolve(specs, reqs, r.all_devices, dirs);
    cdi_edits(p, e, "--device");
  }
  if (r.mpi) mpi(p, *r.mpi, site);
  return p;
}

}  // namespace chute::inject
