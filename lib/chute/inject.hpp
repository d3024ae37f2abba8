// Host injection: GPU drivers (--gpu), CDI devices (--device, -d) and the
// host's MPI (--mpi=PROFILE) put into the container at run time, into any
// image (read-only SquashFS included), without writing to the image.
//
// Everything injected lives on a small tmpfs that covers the image's /run
// (showing what /run held): libraries in /run/chute/lib, programs in
// /run/chute/bin. A host library whose name the image already has in its
// linker's directories is bound over the image's file instead. The image's
// own ldconfig then writes a private linker cache (/run/chute/ld.so.cache)
// that lists the image's libraries and the injected ones, bound over the
// image's /etc/ld.so.cache. Before the job starts, the injected libraries'
// needs (objects, symbol versions, ABI sonames) are checked against what
// the image provides (see preflight.hpp).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "chute/env.hpp"
#include "chute/fd.hpp"

namespace chute::site {
struct Config;
}

namespace chute::inject {

inline constexpr const char* kDir = "/run/chute";
inline constexpr const char* kLibDir = "/run/chute/lib";
inline constexpr const char* kBinDir = "/run/chute/bin";

// A host file put into the container.
struct File {
  std::string host;   // host path
  std::string name;   // file name in kLibDir or kBinDir (a library's soname)
  std::string why;    // for messages: "--gpu (nvidia)", "--mpi=host", ...
  // Only over the image's file of that name, or where another injected
  // library needs it (--mpi: the host's MPI replaces the image's; its
  // libraries that the image's programs don't use are left out).
  bool replace_only = false;
};

// A host path bound at a container path (device files, CDI mounts, sockets).
struct Bind {
  std::string host;
  std::string dst;
  bool readonly = true;
  bool device = false;   // lands in /dev
  std::string why;
};

struct Plan {
  std::vector<File> libraries;
  std::vector<File> binaries;
  std::vector<Bind> binds;
  std::vector<std::string> hide_devices;   // names in /dev not shown (unselected GPUs)
  std::vector<std::string> ldconfig_dirs;  // more directories for the linker cache
  std::vector<std::pair<std::string, std::string>> symlinks;  // (link, target)
  std::vector<std::string> env;            // KEY=VALUE for the job
  bool warn_only = false;
  bool empty() const {
    return libraries.empty() && binaries.empty() && binds.empty() && hide_devices.empty() &&
           symlinks.empty() && ldconfig_dirs.empty();
  }
  // One line per item, for --join's fingerprint and -vv.
  std::string describe() const;
};

// What the command line asked for.
struct Request {
  enum class Gpu { kNone, kRequired, kOptional };
  Gpu gpu = Gpu::kNone;
  std::vector<std::string> devices;        // --device, in order
  bool all_devices = false;                // -d/--devices
  std::optional<std::string> cdi_dirs;     // --cdi-dirs
  std::optional<std::string> mpi;          // --mpi=PROFILE
  bool warn_only = false;                  // --warn-only
  bool any() const { return gpu != Gpu::kNone || !devices.empty() || all_devices || mpi; }
};

// Find what REQUEST needs on the host (reads the host: device files, the
// linker cache, CDI specs; changes nothing). Throws Error naming what is
// missing.
Plan make(const Request& request, const site::Config& site, const Environment& host_env);

// In the container's mount namespace, before the pivot: make PLAN happen in
// the tree whose root is ROOTFD (the image, all other mounts made). WRITABLE:
// the image itself may be written (-W). Throws Error on any failure, and on
// a failed preflight check unless PLAN.warn_only.
void apply(const Plan& plan, int rootfd, bool overlay);

// The linker search directories of the image at ROOTFD, in the linker's
// order: /etc/ld.so.conf (with its includes; a glob only in the last
// component) then the system directories. Paths inside the image.
std::vector<std::string> linker_dirs(int rootfd);

}  // namespace chute::inject
