#include "chute/cdi.hpp"

#include <fcntl.h>

#include <algorithm>
#include <deque>
#include <fmt/core.h>
#include <map>
#include <set>
#include <utility>

#include "chute/error.hpp"
#include "chute/sys.hpp"

namespace chute::cdi {

namespace {

// Bounds on hostile input. Real specs stay far below them: NVIDIA's
// generated spec for 8 GPUs has 17 devices and about 60 mounts each.
constexpr size_t kMaxDevices = 4096;
constexpr size_t kMaxEntries = 4096;    // edits of one kind, and items of any list
constexpr size_t kMaxString = 4096;
constexpr size_t kMaxVendor = 253;      // a DNS name
constexpr size_t kMaxClass = 63;        // a DNS label
constexpr size_t kMaxKnownListed = 16;  // names listed in an "unknown device" error

// Where a value sits: the file and the field path inside it.
struct At {
  std::string_view file;
  std::string path;

  At key(std::string_view k) const {
    return {file, path.empty() ? std::string(k) : fmt::format("{}.{}", path, k)};
  }
  At index(size_t i) const { return {file, fmt::format("{}[{}]", path, i)}; }
  std::string str() const {
    return path.empty() ? std::string(file) : fmt::format("{}: {}", file, path);
  }
};

[[noreturn]] void fail(const At& at, std::string_view why) {
  throw Error(fmt::format("{}: {}", at.str(), why));
}

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// TEXT is a letter or digit followed by letters, digits and characters of
// EXTRA.
bool is_word(std::string_view text, std::string_view extra) {
  if (text.empty() || !is_alnum(text[0])) return false;
  return std::all_of(text.begin() + 1, text.end(), [extra](char c) {
    return is_alnum(c) || extra.find(c) != std::string_view::npos;
  });
}

bool is_device_name(std::string_view name) { return is_word(name, "_.:-"); }

// Why KIND is not of the form VENDOR/CLASS, or nothing when it is.
std::optional<std::string> kind_problem(std::string_view kind) {
  const auto slash = kind.find('/');
  if (slash == std::string_view::npos)
    return fmt::format("{:?} is not of the form VENDOR/CLASS (e.g. nvidia.com/gpu)", kind);
  const auto vendor = kind.substr(0, slash);
  const auto cls = kind.substr(slash + 1);
  if (vendor.size() > kMaxVendor || !is_word(vendor, "._-"))
    return fmt::format("{:?} is not a valid vendor (letters, digits, '.', '_' and '-', "
                       "starting with a letter or digit, at most {} bytes)",
                       vendor, kMaxVendor);
  if (cls.size() > kMaxClass || !is_word(cls, "_.-"))
    return fmt::format("{:?} is not a valid device class (letters, digits, '_', '.' and '-', "
                       "starting with a letter or digit, at most {} bytes)",
                       cls, kMaxClass);
  return std::nullopt;
}

// MAJOR.MINOR.PATCH, decimal, MAJOR 0 or 1: the versions published so far
// and any later ones that keep the format compatible.
bool is_known_version(std::string_view v) {
  size_t parts = 0;
  size_t start = 0;
  while (true) {
    const auto dot = v.find('.', start);
    const auto part = v.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (part.empty() || part.size() > 9 ||
        !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return false;
    if (parts == 0 && part != "0" && part != "1") return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts == 3;
}

// The member KEY of object V, or null when it is absent or null (YAML's
// "key:" with nothing after it).
const doc::Value* member(const doc::Value& v, const char* key) {
  const auto it = v.find(key);
  if (it == v.end() || it->is_null()) return nullptr;
  return &*it;
}

void expect_object(const doc::Value& v, const At& at) {
  if (!v.is_object()) fail(at, "expected a mapping");
}

std::string text(const doc::Value& v, const At& at) {
  std::string s = doc::as_string(v, at.str());
  if (s.size() > kMaxString) fail(at, fmt::format("longer than {} bytes", kMaxString));
  if (s.find('\0') != std::string::npos) fail(at, "contains a NUL byte");
  return s;
}

// A list of strings (a lone string is a list of one); V may be null.
std::vector<std::string> texts(const doc::Value* v, const At& at) {
  if (!v) return {};
  if (!v->is_array()) return {text(*v, at)};
  if (v->size() > kMaxEntries) fail(at, fmt::format("more than {} entries", kMaxEntries));
  std::vector<std::string> out;
  out.reserve(v->size());
  for (size_t i = 0; i < v->size(); ++i) out.push_back(text((*v)[i], at.index(i)));
  return out;
}

// The string member KEY of OBJ, which must be there and not be empty.
std::string required(const doc::Value& obj, const char* key, const At& at) {
  const doc::Value* v = member(obj, key);
  if (!v) fail(at, fmt::format("no {}", key));
  std::string s = text(*v, at.key(key));
  if (s.empty()) fail(at.key(key), "empty");
  return s;
}

// The string member KEY of OBJ, nothing when absent or empty (the CDI
// reference implementation writes and reads "" as "not set").
std::optional<std::string> optional_text(const doc::Value& obj, const char* key, const At& at) {
  const doc::Value* v = member(obj, key);
  if (!v) return std::nullopt;
  std::string s = text(*v, at.key(key));
  if (s.empty()) return std::nullopt;
  return s;
}

// The list member KEY of OBJ, or null when absent.
const doc::Value* list(const doc::Value& obj, const char* key, const At& at, size_t max) {
  const doc::Value* v = member(obj, key);
  if (!v) return nullptr;
  if (!v->is_array()) fail(at.key(key), "expected a list");
  if (v->size() > max) fail(at.key(key), fmt::format("more than {} entries", max));
  return v;
}

void check_absolute(const std::string& path, const At& at) {
  if (path.empty() || path[0] != '/') fail(at, fmt::format("{:?} is not an absolute path", path));
}

void check_env(const std::vector<std::string>& env, const At& at) {
  for (size_t i = 0; i < env.size(); ++i) {
    const auto eq = env[i].find('=');
    if (eq == 0 || eq == std::string::npos)
      fail(at.index(i), fmt::format("{:?} is not of the form NAME=VALUE", env[i]));
  }
}

DeviceNode parse_device_node(const doc::Value& v, const At& at) {
  expect_object(v, at);
  DeviceNode n;
  n.path = required(v, "path", at);
  check_absolute(n.path, at.key("path"));
  n.host_path = optional_text(v, "hostPath", at).value_or(n.path);
  check_absolute(n.host_path, at.key("hostPath"));
  n.type = optional_text(v, "type", at);
  if (n.type && *n.type != "b" && *n.type != "c" && *n.type != "u" && *n.type != "p")
    fail(at.key("type"), fmt::format("{:?} is not a device type (b, c, u or p)", *n.type));
  n.permissions = optional_text(v, "permissions", at);
  if (n.permissions && n.permissions->find_first_not_of("rwm") != std::string::npos)
    fail(at.key("permissions"), fmt::format("{:?} is not made of r, w and m", *n.permissions));
  // Numbers chute has no use for (it binds the host's node, it never
  // makes one), but whose type the format fixes.
  for (const char* key : {"major", "minor", "fileMode", "uid", "gid"})
    if (const doc::Value* x = member(v, key)) doc::as_int(*x, at.key(key).str());
  return n;
}

MountEdit parse_mount(const doc::Value& v, const At& at) {
  expect_object(v, at);
  MountEdit m;
  m.host_path = required(v, "hostPath", at);
  check_absolute(m.host_path, at.key("hostPath"));
  m.container_path = required(v, "containerPath", at);
  check_absolute(m.container_path, at.key("containerPath"));
  m.options = texts(member(v, "options"), at.key("options"));
  m.type = optional_text(v, "type", at);
  return m;
}

Hook parse_hook(const doc::Value& v, const At& at) {
  expect_object(v, at);
  Hook h;
  h.hook_name = required(v, "hookName", at);
  h.path = required(v, "path", at);
  check_absolute(h.path, at.key("path"));
  h.args = texts(member(v, "args"), at.key("args"));
  h.env = texts(member(v, "env"), at.key("env"));
  check_env(h.env, at.key("env"));
  if (const doc::Value* t = member(v, "timeout"))
    if (doc::as_int(*t, at.key("timeout").str()) <= 0) fail(at.key("timeout"), "not positive");
  return h;
}

Edits parse_edits(const doc::Value& v, const At& at) {
  expect_object(v, at);
  Edits e;
  e.env = texts(member(v, "env"), at.key("env"));
  check_env(e.env, at.key("env"));
  if (const doc::Value* l = list(v, "deviceNodes", at, kMaxEntries))
    for (size_t i = 0; i < l->size(); ++i)
      e.device_nodes.push_back(parse_device_node((*l)[i], at.key("deviceNodes").index(i)));
  if (const doc::Value* l = list(v, "mounts", at, kMaxEntries))
    for (size_t i = 0; i < l->size(); ++i)
      e.mounts.push_back(parse_mount((*l)[i], at.key("mounts").index(i)));
  if (const doc::Value* l = list(v, "hooks", at, kMaxEntries))
    for (size_t i = 0; i < l->size(); ++i)
      e.hooks.push_back(parse_hook((*l)[i], at.key("hooks").index(i)));
  return e;
}

bool has_spec_suffix(std::string_view name) {
  for (std::string_view suffix : {".json", ".yaml", ".yml"})
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix)
      return true;
  return false;
}

// "DIR/NAME", without doubling a slash DIR ends with.
std::string join_path(const std::string& dir, const std::string& name) {
  if (!dir.empty() && dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

// The devices a request selects, in order, each once, and the specs they
// come from.
class Selection {
public:
  void add(const Spec& spec, size_t device) {
    if (seen_.insert({&spec, device}).second) picked_.emplace_back(&spec, device);
  }

  // "All" of SPECS (one kind, or one file): the device named "all" when
  // there is one, else every device. False when there is none at all.
  bool add_all(const std::vector<const Spec*>& specs) {
    bool any = false;
    for (const Spec* s : specs)
      for (size_t i = 0; i < s->devices.size(); ++i)
        if (s->devices[i].name == "all") {
          add(*s, i);
          any = true;
        }
    if (any) return true;
    for (const Spec* s : specs)
      for (size_t i = 0; i < s->devices.size(); ++i) {
        add(*s, i);
        any = true;
      }
    return any;
  }

  Edits edits() const {
    Edits out;
    std::set<const Spec*> specs_done;
    for (const auto& [spec, device] : picked_) {
      if (specs_done.insert(spec).second) out.add(spec->edits);
      out.add(spec->devices[device].edits);
    }
    return out;
  }

private:
  std::vector<std::pair<const Spec*, size_t>> picked_;
  std::set<std::pair<const Spec*, size_t>> seen_;
};

std::vector<const Spec*> specs_of_kind(const std::vector<Spec>& specs, const std::string& kind) {
  std::vector<const Spec*> out;
  for (const Spec& s : specs)
    if (s.kind == kind) out.push_back(&s);
  return out;
}

// Refuse a device name that two of SPECS (all of one kind) define.
void check_unique(const std::vector<const Spec*>& specs) {
  std::map<std::string_view, const Spec*> owner;
  for (const Spec* s : specs)
    for (const Device& d : s->devices) {
      auto [it, fresh] = owner.emplace(d.name, s);
      if (!fresh)
        throw Error(fmt::format("--device: {}={} is defined by two CDI specs: {} and {}", s->kind,
                                d.name, it->second->file, s->file));
    }
}

[[noreturn]] void unknown(const std::vector<Spec>& specs, const Request& r,
                          const std::vector<std::string>& dirs) {
  // The names of the requested kind when there are some, else all names.
  std::vector<std::string> known;
  for (bool same_kind : {true, false}) {
    for (const Spec& s : specs)
      if (!same_kind || s.kind == r.kind)
        for (const Device& d : s.devices) known.push_back(fmt::format("{}={}", s.kind, d.name));
    if (!known.empty()) break;
  }
  std::sort(known.begin(), known.end());
  known.erase(std::unique(known.begin(), known.end()), known.end());
  std::string list;
  for (size_t i = 0; i < known.size() && i < kMaxKnownListed; ++i)
    list += fmt::format("{}{}", i ? ", " : "", known[i]);
  if (known.size() > kMaxKnownListed)
    list += fmt::format(", and {} more", known.size() - kMaxKnownListed);
  std::string where;
  for (size_t i = 0; i < dirs.size(); ++i) where += fmt::format("{}{}", i ? ", " : " in ", dirs[i]);
  throw Error(fmt::format("--device: no CDI spec{} defines {}={} ({})", where, r.kind, r.name,
                          known.empty() ? "no CDI devices known" : "known: " + list));
}

}  // namespace

bool MountEdit::readonly() const {
  bool ro = false;
  for (const auto& o : options) {
    if (o == "ro") ro = true;
    if (o == "rw") ro = false;
  }
  return ro;
}

void Edits::add(const Edits& other) {
  env.insert(env.end(), other.env.begin(), other.env.end());
  device_nodes.insert(device_nodes.end(), other.device_nodes.begin(), other.device_nodes.end());
  mounts.insert(mounts.end(), other.mounts.begin(), other.mounts.end());
  hooks.insert(hooks.end(), other.hooks.begin(), other.hooks.end());
}

Spec parse(const doc::Value& document, std::string_view file) {
  const At root{file, ""};
  if (!document.is_object()) fail(root, "not a CDI spec (expected a mapping at the top)");
  Spec s;
  s.file = file;
  s.version = required(document, "cdiVersion", root);
  if (!is_known_version(s.version))
    fail(root.key("cdiVersion"),
         fmt::format("{:?} is not a CDI version this reader knows (0.x.y or 1.x.y)", s.version));
  s.kind = required(document, "kind", root);
  if (auto why = kind_problem(s.kind)) fail(root.key("kind"), *why);
  const doc::Value* devices = list(document, "devices", root, kMaxDevices);
  if (!devices) fail(root, "no devices");
  if (devices->empty()) fail(root.key("devices"), "empty (a spec defines at least one device)");
  if (const doc::Value* e = member(document, "containerEdits"))
    s.edits = parse_edits(*e, root.key("containerEdits"));
  std::set<std::string> names;
  for (size_t i = 0; i < devices->size(); ++i) {
    const doc::Value& d = (*devices)[i];
    const At at = root.key("devices").index(i);
    expect_object(d, at);
    Device dev;
    dev.name = required(d, "name", at);
    if (!is_device_name(dev.name))
      fail(at.key("name"), fmt::format("{:?} is not a valid device name (letters, digits, '_', "
                                       "'.', ':' and '-', starting with a letter or digit)",
                                       dev.name));
    if (!names.insert(dev.name).second)
      fail(at.key("name"), fmt::format("{:?} is defined twice", dev.name));
    if (const doc::Value* e = member(d, "containerEdits"))
      dev.edits = parse_edits(*e, at.key("containerEdits"));
    s.devices.push_back(std::move(dev));
  }
  return s;
}

Spec load(const std::string& path) { return parse(doc::load(path), path); }

std::vector<Spec> load_dirs(const std::vector<std::string>& dirs,
                            const std::function<void(const std::string&)>& warn) {
  std::vector<std::pair<size_t, Spec>> found;  // with the index of its directory
  for (size_t d = 0; d < dirs.size(); ++d) {
    std::vector<std::string> names;
    try {
      std::optional<Fd> fd = sys::try_open(dirs[d], O_RDONLY | O_DIRECTORY);
      if (!fd) continue;
      names = sys::list_dir(fd->get(), dirs[d]);
    } catch (const SysError& e) {
      warn(e.what());
      continue;
    }
    std::erase_if(names, [](const std::string& n) { return !has_spec_suffix(n); });
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      try {
        found.emplace_back(d, load(join_path(dirs[d], name)));
      } catch (const Error& e) {
        warn(e.what());
      } catch (const SysError& e) {
        warn(e.what());
      }
    }
  }
  // A later directory overrides: the highest directory index that defines
  // each device.
  std::map<std::pair<std::string, std::string>, size_t> last;
  for (const auto& [d, s] : found)
    for (const Device& dev : s.devices) {
      auto& l = last[{s.kind, dev.name}];
      l = std::max(l, d);
    }
  std::vector<Spec> out;
  for (auto& entry : found) {
    const size_t d = entry.first;
    Spec& s = entry.second;
    std::erase_if(s.devices, [&](const Device& dev) { return last[{s.kind, dev.name}] > d; });
    if (!s.devices.empty()) out.push_back(std::move(s));
  }
  return out;
}

Request parse_request(std::string_view text) {
  if (text.empty()) throw Error("--device: empty device name");
  if (text.size() > kMaxString)
    throw Error(fmt::format("--device: longer than {} bytes", kMaxString));
  if (text.find('\0') != std::string_view::npos)
    throw Error(fmt::format("--device: {:?}: contains a NUL byte", text));
  const auto eq = text.find('=');
  // A kind alone (Charliecloud's spelling, "nvidia.com/gpu") is all of its
  // devices, unless a file of that name exists.
  // Told from a relative path by its shape: a vendor with a dot (a domain),
  // a class without one (not a file name's extension).
  if (const auto slash = text.find('/');
      text[0] != '/' && text[0] != '.' && eq == std::string_view::npos &&
      slash != std::string_view::npos && !kind_problem(text) &&
      text.substr(0, slash).find('.') != std::string_view::npos &&
      text.substr(slash + 1).find('.') == std::string_view::npos &&
      !sys::try_stat(std::string(text)))
    return {std::string(text), "all", ""};
  if (text[0] == '/' || text[0] == '.' ||
      (text.find('/') != std::string_view::npos && eq == std::string_view::npos))
    return {"", "", std::string(text)};
  if (eq == std::string_view::npos)
    throw Error(fmt::format("--device: {:?}: expected VENDOR/CLASS=NAME (e.g. nvidia.com/gpu=0) "
                            "or the path of a CDI spec file",
                            text));
  const auto kind = text.substr(0, eq);
  const auto name = text.substr(eq + 1);
  if (auto why = kind_problem(kind)) throw Error(fmt::format("--device: {:?}: {}", text, *why));
  if (!is_device_name(name))
    throw Error(fmt::format("--device: {:?}: {:?} is not a valid device name (letters, digits, "
                            "'_', '.', ':' and '-', starting with a letter or digit)",
                            text, name));
  return {std::string(kind), std::string(name), ""};
}

Edits resolve(const std::vector<Spec>& specs, const std::vector<Request>& requests, bool all,
              const std::vector<std::string>& dirs) {
  Selection sel;
  if (all) {
    std::set<std::string_view> kinds_done;
    for (const Spec& s : specs) {
      if (!kinds_done.insert(s.kind).second) continue;
      const auto same = specs_of_kind(specs, s.kind);
      check_unique(same);
      sel.add_all(same);
    }
  }
  std::deque<Spec> files;  // specs read for file requests (a deque: addresses stay)
  std::map<std::string, const Spec*> file_specs;
  for (const Request& r : requests) {
    if (!r.file.empty()) {
      const Spec*& spec = file_specs[r.file];
      if (!spec) {
        try {
          spec = &files.emplace_back(load(r.file));
        } catch (const SysError& e) {
          throw SysError(e.err(), fmt::format("--device: {}", e.message()));
        } catch (const Error& e) {
          throw Error(fmt::format("--device: {}", e.what()));
        }
      }
      sel.add_all({spec});
      continue;
    }
    const auto same = specs_of_kind(specs, r.kind);
    std::vector<std::pair<const Spec*, size_t>> matches;
    for (const Spec* s : same)
      for (size_t i = 0; i < s->devices.size(); ++i)
        if (s->devices[i].name == r.name) matches.emplace_back(s, i);
    if (matches.size() > 1)
      throw Error(fmt::format("--device: {}={} is defined by two CDI specs: {} and {}", r.kind,
                              r.name, matches[0].first->file, matches[1].first->file));
    if (matches.size() == 1) {
      sel.add(*matches[0].first, matches[0].second);
      continue;
    }
    if (r.name == "all" && !same.empty()) {
      check_unique(same);
      sel.add_all(same);
      continue;
    }
    unknown(specs, r, dirs);
  }
  return sel.edits();
}

}  // namespace chute::cdi
