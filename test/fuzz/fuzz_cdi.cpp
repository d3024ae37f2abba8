// libFuzzer target: CDI specs (JSON or YAML, from directories any package
// can write to, or from a file named on the command line) and --device
// requests. Bad input must end in chute::Error, never in another exception
// or a crash, and what is accepted must hold the rules parse() promises.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "chute/cdi.hpp"
#include "chute/document.hpp"
#include "chute/error.hpp"

using namespace chute;

namespace {

bool absolute(const std::string& p) { return !p.empty() && p[0] == '/'; }

void check_edits(const cdi::Edits& e) {
  for (const auto& n : e.device_nodes)
    if (!absolute(n.path) || !absolute(n.host_path)) std::abort();
  for (const auto& m : e.mounts)
    if (!absolute(m.host_path) || !absolute(m.container_path)) std::abort();
  for (const auto& h : e.hooks)
    if (h.hook_name.empty() || !absolute(h.path)) std::abort();
  for (const auto& v : e.env)
    if (v.find('=') == std::string::npos || v[0] == '=') std::abort();
}

void spec(std::string_view text) {
  cdi::Spec s;
  try {
    s = cdi::parse(doc::parse(text, "fuzz.yaml"), "fuzz.yaml");
  } catch (const Error&) {
    return;
  }
  if (s.devices.empty() || s.kind.find('/') == std::string::npos) std::abort();
  check_edits(s.edits);
  for (const auto& d : s.devices) check_edits(d.edits);

  // Resolve a few of its devices by name, all of its kind, and a name it
  // does not define; the result holds the spec's edits once.
  const std::vector<cdi::Spec> specs = {s};
  std::vector<cdi::Request> requests;
  for (size_t i = 0; i < s.devices.size() && i < 4; ++i)
    requests.push_back(cdi::parse_request(s.kind + "=" + s.devices[i].name));
  requests.push_back(cdi::parse_request(s.kind + "=all"));
  const cdi::Edits e = cdi::resolve(specs, requests, false, {"/etc/cdi"});
  if (e.env.size() < s.edits.env.size()) std::abort();
  if (cdi::resolve(specs, {}, true, {"/etc/cdi"}).hooks.size() < s.edits.hooks.size()) std::abort();
  try {
    // (A name no spec can define: it holds spaces.)
    cdi::resolve(specs, {{s.kind, "no such device", ""}}, false, {"/etc/cdi"});
    std::abort();
  } catch (const Error&) {
  }
}

void request(std::string_view text) {
  try {
    const cdi::Request r = cdi::parse_request(text);
    if (r.file.empty() == (r.kind.empty() || r.name.empty())) std::abort();
    if (!r.file.empty() && r.file != text) std::abort();
    // A kind alone ("vendor.com/class") means all of its devices.
    if (r.file.empty() && r.kind + "=" + r.name != text &&
        !(r.name == "all" && r.kind == text && text.find('=') == std::string_view::npos))
      std::abort();
  } catch (const Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  spec(text);
  request(text);
  return 0;
}
