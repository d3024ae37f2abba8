// The site configuration: what an administrator sets once for every ch-run
// on a machine (default binds, how GPUs and the host's MPI are found), and
// each user may override. YAML or JSON; see doc/chute.yaml.5.
//
// Files, in order, each overriding the keys it sets:
//   1. SYSCONFDIR/chute/chute.yaml (the install prefix's etc/), if present;
//   2. $CHUTE_CONFIG if set (a file that must exist), else
//      $XDG_CONFIG_HOME/chute/chute.yaml (default ~/.config/...), if present.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "chute/bind_spec.hpp"
#include "chute/document.hpp"
#include "chute/env.hpp"

namespace chute::site {

// A GPU vendor's host files. Devices are glob(7) patterns under the GPU
// root; libraries are patterns matched against library file names (the
// host's linker cache, then the library directories); binaries are names
// looked up in the binary directories.
struct Vendor {
  std::vector<std::string> devices;
  std::vector<std::string> libraries;
  std::vector<std::string> binaries;
  std::vector<std::string> files;   // other host files (sockets) bound at the same path, if present
  // More library patterns per driver capability ("video", "graphics", ...),
  // added when NVIDIA_DRIVER_CAPABILITIES names it (or is "all"). The
  // libraries above are those of "compute" and "utility", always injected.
  std::map<std::string, std::vector<std::string>> capabilities;
};

// An MPI profile for --mpi=NAME: host libraries bound over the image's (or
// added), host paths bound in, variables set.
struct MpiProfile {
  std::vector<std::string> libraries;      // patterns or absolute paths
  std::vector<std::string> library_dirs;   // searched before the linker cache
  std::vector<BindSpec> binds;             // skipped when the host lacks the source
  std::vector<std::string> env;            // KEY=VALUE
};

struct Config {
  std::vector<std::string> files;          // the files read, in order (for messages)
  std::vector<BindSpec> binds;             // default binds of every run
  std::string gpu_root = "/";              // where /dev and /proc/driver are looked for
  bool gpu_ldcache = true;                 // look library patterns up in the host's linker cache
  bool nvidia_container_cli = true;        // ... or ask nvidia-container-cli when installed
  std::vector<std::string> library_dirs;   // GPU libraries: searched before the linker cache
  std::vector<std::string> binary_dirs;
  Vendor nvidia;
  Vendor amd;
  std::map<std::string, MpiProfile> mpi;
  std::vector<std::string> cdi_dirs;       // --cdi-dirs default
};

// Built-in values, before any file.
Config defaults();

// Override CONFIG with the keys DOC sets. FILE names it in errors; unknown
// keys are errors (a typo must not be silently ignored).
void apply(Config& config, const doc::Value& doc, std::string_view file);

// Where the files are, per the rules above.
std::vector<std::string> paths(const Environment& env);

// defaults() overridden by the files found.
Config load(const Environment& env);

}  // namespace chute::site
