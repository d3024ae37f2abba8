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
  std::optional<std::string> type;       // "c", "b", ...
  std::optional<std::string> permissions;
};

struct MountEdit {
  std::string host_path;
  std::string container_path;
  std::vector<std::string> options;      // "ro", "nosuid", "bind", ...
  bool readonly() const;                 // "ro" among the options
};

struct Hook {
  std::string hook_name;                 // "createContainer", ...
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
};

struct Edits {
  std::vector<std::string> env;          // "KEY=VALUE"
  std::vector<DeviceNode> device_nodes;
  std::vector<MountEdit> mounts;
  std::vector<Hook> hooks;
  // Append OTHER's edits to these.
  void add(const Edits& other);
};

struct Device {
  std::string name;
  Edits edits;
};

struct Spec {
  std::string file;                      // where it was read from
  std::string version;                   // cdiVersion
  std::string kind;                      // "vendor.com/class"
  std::vector<Device> devices;
  Edits edits;                           // spec-wide containerEdits
};

// Parse one spec from a document; FILE names it in errors. Throws Error
// naming the file and the field ("x.yaml: devices[1].containerEdits.
// deviceNodes[0]: no path") for anything the spec format does not allow:
// missing cdiVersion/kind/devices, a kind not of the form vendor/class, a
// device name not matching [A-Za-z0-9][A-Za-z0-9_.:-]*, duplicate device
// names, a relative containerPath or device path, a hook without path.
Spec parse(const doc::Value& document, std::string_view file);
Spec load(const std::string& path);

// Every spec in DIRS (files ending .json, .yaml or .yml, in name order per
// directory; a missing directory is skipped). A spec that does not parse
// is reported through WARN and skipped, as the CDI registry does.
std::vector<Spec> load_dirs(const std::vector<std::string>& dirs,
                            const std::function<void(const std::string&)>& warn);

// A request as ch-run's --device takes it: a fully qualified name
// "vendor.com/class=name" (name "all": every device of that kind), or a
// path to a spec file (every device in it).
struct Request {
  std::string kind;                      // empty for a file
  std::string name;
  std::string file;
};
// Throws Error for a string that is neither ("--device: ...").
Request parse_request(std::string_view text);

// The edits for REQUESTS over SPECS, in request order: each selected
// device's edits preceded by its spec's (once per spec). A name no spec
// defines, or a kind defined by two specs with the same device, is an
// Error naming it. ALL: every device of every spec.
Edits resolve(const std::vector<Spec>& specs, const std::vector<Request>& requests, bool all);

}  // namespace chute::cdi
