// Container Device Interface specs (https://github.com/cncf-tags/container-device-interface,
// SPEC.md): read from JSON or YAML files, and the edits a request for
// devices amounts to. Pure: reads files, changes nothing. ch-run applies
// the edits (see inject.hpp).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chute/document.hpp"

namespace chute::cdi {

struct DeviceNode {
  std::string path;                      // in the container
  std::string host_path;                 // on the host (= path when the spec omits it)
  std::optional<std::string> type;       // "c", "b", "u" or "p"
  std::optional<std::string> permissions;
  bool operator==(const DeviceNode&) const = default;
};

struct MountEdit {
  std::string host_path;
  std::string container_path;
  std::vector<std::string> options;      // "ro", "nosuid", "bind", ...
  std::optional<std::string> type;       // "bind", "tmpfs", ... as the spec says
  // "ro" among the options, unless a later "rw" undoes it (mount(8) order).
  bool readonly() const;
  bool operator==(const MountEdit&) const = default;
};

struct Hook {
  std::string hook_name;                 // "createContainer", ...
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  bool operator==(const Hook&) const = default;
};

struct Edits {
  std::vector<std::string> env;          // "KEY=VALUE"
  std::vector<DeviceNode> device_nodes;
  std::vector<MountEdit> mounts;
  std::vector<Hook> hooks;
  // Append OTHER's edits to these.
  void add(const Edits& other);
  bool operator==(const Edits&) const = default;
};

struct Device {
  std::string name;
  Edits edits;
  bool operator==(const Device&) const = default;
};

struct Spec {
  std::string file;                      // where it was read from
  std::string version;                   // cdiVersion
  std::string kind;                      // "vendor.com/class"
  std::vector<Device> devices;
  Edits edits;                           // spec-wide containerEdits
  bool operator==(const Spec&) const = default;
};

// Parse one spec from a document; FILE names it in errors. Throws Error
// naming the file and the field ("x.yaml: devices[1].containerEdits.
// deviceNodes[0]: no path") for anything the spec format does not allow:
//   - a missing cdiVersion, kind or devices, or an empty devices list;
//   - a cdiVersion not of the form MAJOR.MINOR.PATCH with MAJOR 0 or 1;
//   - a kind not of the form VENDOR/CLASS, where VENDOR is a DNS-like name
//     ([A-Za-z0-9][A-Za-z0-9._-]*, at most 253 bytes) and CLASS matches
//     [A-Za-z0-9][A-Za-z0-9_.-]* (at most 63 bytes);
//   - a device name not matching [A-Za-z0-9][A-Za-z0-9_.:-]*, or defined
//     twice in the spec;
//   - a relative path: device node path and hostPath, mount hostPath and
//     containerPath, hook path; an env entry not of the form NAME=VALUE;
//     a device node type other than b, c, u, p; permissions other than
//     letters of "rwm"; a hook without hookName or with a timeout <= 0;
//   - a known field of the wrong type (a list where a string belongs);
//   - hostile sizes: more than 4096 devices, more than 4096 entries in any
//     list, a string longer than 4096 bytes or holding a NUL byte.
// Unknown fields are ignored (newer spec versions add some), and so are
// annotations. A field that is null counts as absent.
Spec parse(const doc::Value& document, std::string_view file);
Spec load(const std::string& path);

// Every spec in DIRS (files ending .json, .yaml or .yml, in byte order of
// their names per directory; a missing directory is skipped). A spec that
// cannot be read or does not parse is reported through WARN and skipped,
// as the CDI registry does. DIRS are in rising priority, as in the CDI
// registry (/etc/cdi, then /var/run/cdi): a device that a later directory
// defines again (same kind, same name) is dropped from the earlier
// directory's spec, and a spec left with no device is dropped. Two specs
// of one directory defining the same device are both kept: resolve() then
// refuses that device.
std::vector<Spec> load_dirs(const std::vector<std::string>& dirs,
                            const std::function<void(const std::string&)>& warn);

// A request as ch-run's --device takes it: a fully qualified name
// "vendor.com/class=name" (name "all": every device of that kind), or a
// path to a spec file (every device in it), or a kind alone
// ("vendor.com/class", as Charliecloud spells it: every device of the kind).
// A kind alone has a dot in its vendor and none in its class, and no file
// of that name exists; otherwise TEXT is a path when it starts with '/' or
// '.', or when it holds a '/' and no '='.
struct Request {
  std::string kind;                      // empty for a file
  std::string name;
  std::string file;
};
// Throws Error for a string that is neither ("--device: ...").
Request parse_request(std::string_view text);

// The edits for REQUESTS over SPECS, in request order: each selected
// device's edits preceded by its spec's (once per spec); a device selected
// twice counts once. A file request loads that file (load()) on its own,
// outside SPECS. A name no spec defines is an Error naming DIRS (where
// SPECS came from) and the names that are known; a device defined by two
// specs of SPECS is an Error naming both files. ALL: every device of every
// spec, before the requests.
//
// "All" of a kind (NAME "all", ALL, or a file) is the device named "all"
// when the kind (or the file) defines one, as NVIDIA's generated specs do
// (its edits are those of every device, so taking the others too would
// only repeat them); otherwise every device of the kind (or the file).
Edits resolve(const std::vector<Spec>& specs, const std::vector<Request>& requests, bool all,
              const std::vector<std::string>& dirs);

}  // namespace chute::cdi
