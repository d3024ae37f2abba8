#include "chute/site.hpp"

#include <sys/stat.h>

#include <fmt/core.h>

#include "chute/error.hpp"
#include "chute/log.hpp"
#include "chute/sys.hpp"
#include "chute/text.hpp"

#ifndef CHUTE_SYSCONFDIR
#define CHUTE_SYSCONFDIR "/etc"
#endif

namespace chute::site {

Config defaults() {
  Config c;
  c.binary_dirs = {"/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"};
  c.cdi_dirs = {"/etc/cdi", "/var/run/cdi"};
  // NVIDIA's user-space driver: compute, management, video, graphics.
  c.nvidia.devices = {"/dev/nvidiactl", "/dev/nvidia[0-9]*", "/dev/nvidia-uvm",
                      "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset", "/dev/nvidia-caps/*",
                      "/dev/dri/card*", "/dev/dri/renderD*"};
  // compute and utility, as NVIDIA's container toolkit injects by default;
  // the rest by NVIDIA_DRIVER_CAPABILITIES.
  c.nvidia.libraries = {"libcuda.so*", "libcudadebugger.so*", "libnvidia-ml.so*",
                        "libnvidia-ptxjitcompiler.so*", "libnvidia-nvvm.so*",
                        "libnvidia-cfg.so*", "libnvidia-opencl.so*", "libnvidia-gpucomp.so*",
                        "libnvidia-allocator.so*", "libnvidia-pkcs11*.so*"};
  c.nvidia.capabilities["video"] = {"libnvcuvid.so*", "libnvidia-encode.so*",
                                    "libnvidia-opticalflow.so*"};
  c.nvidia.capabilities["graphics"] = {
      "libnvidia-glcore.so*", "libnvidia-tls.so*", "libnvidia-glsi.so*",
      "libnvidia-glvkspirv.so*", "libnvidia-eglcore.so*", "libnvidia-rtcore.so*",
      "libnvoptix.so*", "libGLX_nvidia.so*", "libEGL_nvidia.so*", "libGLESv2_nvidia.so*",
      "libGLESv1_CM_nvidia.so*", "libnvidia-egl-*.so*"};
  c.nvidia.capabilities["display"] = {"libnvidia-fbc.so*"};
  c.nvidia.capabilities["ngx"] = {"libnvidia-ngx.so*"};
  c.nvidia.binaries = {"nvidia-smi", "nvidia-debugdump", "nvidia-persistenced",
                       "nvidia-cuda-mps-control", "nvidia-cuda-mps-server"};
  c.nvidia.files = {"/run/nvidia-persistenced/socket"};
  // AMD's ROCm driver side: the kernel driver interface and the runtime
  // libraries that must match it.
  c.amd.devices = {"/dev/kfd", "/dev/dri/card*", "/dev/dri/renderD*"};
  c.amd.libraries = {"libhsa-runtime64.so*", "libhsakmt.so*", "libamdhip64.so*",
                     "libdrm_amdgpu.so*", "librocm_smi64.so*", "libamd_comgr.so*"};
  c.amd.binaries = {"rocm-smi", "rocminfo"};
  // The host's Open MPI and what it loads: Debian's and most sites' layout.
  MpiProfile host;
  host.libraries = {"libmpi.so.*", "libmpi_mpifh.so.*", "libmpi_usempif08.so.*",
                    "libmpi_usempi_ignore_tkr.so.*", "libopen-pal.so.*", "libopen-rte.so.*",
                    "libpmix.so.*", "libfabric.so.*", "libucp.so.*", "libucs.so.*",
                    "libuct.so.*", "libucm.so.*"};
  c.mpi["host"] = host;
  return c;
}

namespace {

std::string at(std::string_view file, std::string_view key) { return fmt::format("{}: {}", file, key); }

void need_object(const doc::Value& v, std::string_view where) {
  if (!v.is_object()) throw Error(fmt::format("{}: expected a mapping of keys to values", where));
}

std::vector<BindSpec> binds_of(const doc::Value& v, std::string_view where) {
  std::vector<BindSpec> out;
  for (const auto& s : doc::as_strings(v, where)) {
    try {
      out.push_back(bind_spec::parse(s));
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", where, e.what()));
    }
  }
  return out;
}

std::vector<std::string> absolute_paths(const doc::Value& v, std::string_view where) {
  auto out = doc::as_strings(v, where);
  for (const auto& p : out)
    if (p.empty() || p[0] != '/')
      throw Error(fmt::format("{}: not an absolute path: {:?}", where, p));
  return out;
}

std::vector<std::string> dir_list(const doc::Value& v, std::string_view where) {
  // "a:b" as in --cdi-dirs, or a list.
  if (v.is_string()) {
    doc::Value list = text::split(v.get<std::string>(), ':');
    return absolute_paths(list, where);
  }
  return absolute_paths(v, where);
}

void apply_vendor(Vendor& vd, const doc::Value& v, const std::string& where) {
  need_object(v, where);
  for (const auto& [key, val] : v.items()) {
    const std::string w = where + "." + key;
    if (key == "devices") vd.devices = absolute_paths(val, w);
    else if (key == "libraries") vd.libraries = doc::as_strings(val, w);
    else if (key == "binaries") vd.binaries = doc::as_strings(val, w);
    else if (key == "files") vd.files = absolute_paths(val, w);
    else if (key == "capabilities") {
      need_object(val, w);
      for (const auto& [cap, pats] : val.items())
        vd.capabilities[cap] = doc::as_strings(pats, w + "." + cap);
    } else {
      throw Error(fmt::format("{}: unknown key (known: devices, libraries, binaries, files, "
                              "capabilities)", w));
    }
  }
}

void apply_profile(MpiProfile& p, const doc::Value& v, const std::string& where) {
  need_object(v, where);
  for (const auto& [key, val] : v.items()) {
    const std::string w = where + "." + key;
    if (key == "libraries") p.libraries = doc::as_strings(val, w);
    else if (key == "library-dirs") p.library_dirs = absolute_paths(val, w);
    else if (key == "binds") p.binds = binds_of(val, w);
    else if (key == "env") {
      p.env = doc::as_strings(val, w);
      for (const auto& e : p.env)
        if (e.find('=') == std::string::npos || e.front() == '=')
          throw Error(fmt::format("{}: not KEY=VALUE: {:?}", w, e));
    } else {
      throw Error(fmt::format("{}: unknown key (known: libraries, library-dirs, binds, env)", w));
    }
  }
}

}  // namespace

void apply(Config& c, const doc::Value& d, std::string_view file) {
  if (d.is_null()) return;  // an empty file
  need_object(d, file);
  for (const auto& [key, val] : d.items()) {
    if (key == "binds") {
      c.binds = binds_of(val, at(file, key));
    } else if (key == "cdi-dirs") {
      c.cdi_dirs = dir_list(val, at(file, key));
    } else if (key == "gpu") {
      need_object(val, at(file, key));
      for (const auto& [k, v] : val.items()) {
        const std::string w = at(file, "gpu." + k);
        if (k == "root") {
          auto r = absolute_paths(v, w);
          if (r.size() != 1) throw Error(fmt::format("{}: expected one path", w));
          c.gpu_root = r[0];
        } else if (k == "ldcache") c.gpu_ldcache = doc::as_bool(v, w);
        else if (k == "nvidia-container-cli") c.nvidia_container_cli = doc::as_bool(v, w);
        else if (k == "library-dirs") c.library_dirs = absolute_paths(v, w);
        else if (k == "binary-dirs") c.binary_dirs = absolute_paths(v, w);
        else if (k == "nvidia") apply_vendor(c.nvidia, v, w);
        else if (k == "amd") apply_vendor(c.amd, v, w);
        else
          throw Error(fmt::format("{}: unknown key (known: root, ldcache, nvidia-container-cli, "
                                  "library-dirs, binary-dirs, nvidia, amd)", w));
      }
    } else if (key == "mpi") {
      need_object(val, at(file, key));
      for (const auto& [name, v] : val.items()) {
        const std::string w = at(file, "mpi." + name);
        if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
                                std::string::npos)
          throw Error(fmt::format("{}: a profile name is letters, digits, '.', '_' and '-'", w));
        // A profile a file names replaces the built-in one of that name.
        MpiProfile p;
        apply_profile(p, v, w);
        c.mpi[name] = std::move(p);
      }
    } else {
      throw Error(fmt::format("{}: unknown key (known: binds, cdi-dirs, gpu, mpi)",
                              at(file, key)));
    }
  }
}

std::vector<std::string> paths(const Environment& env) {
  std::vector<std::string> out{std::string(CHUTE_SYSCONFDIR) + "/chute/chute.yaml"};
  if (auto f = env.get("CHUTE_CONFIG"); f && !f->empty()) {
    out.emplace_back(*f);
    return out;
  }
  if (auto x = env.get("XDG_CONFIG_HOME"); x && !x->empty() && (*x)[0] == '/')
    out.push_back(std::string(*x) + "/chute/chute.yaml");
  else if (auto h = env.get("HOME"); h && !h->empty())
    out.push_back(std::string(*h) + "/.config/chute/chute.yaml");
  return out;
}

Config load(const Environment& env) {
  Config c = defaults();
  const auto files = paths(env);
  const bool explicit_user = env.get("CHUTE_CONFIG").has_value() && !env.get("CHUTE_CONFIG")->empty();
  for (size_t i = 0; i < files.size(); ++i) {
    const auto& f = files[i];
    if (!sys::try_stat(f)) {
      if (explicit_user && i + 1 == files.size())
        throw Error(fmt::format("CHUTE_CONFIG: no such file: {}", f));
      continue;
    }
    log::debug("site configuration: {}", f);
    apply(c, doc::load(f), f);
    c.files.push_back(f);
  }
  return c;
}

}  // namespace chute::site
