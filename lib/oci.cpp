#include "chute/oci.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "chute/error.hpp"

namespace chute::oci {

using nlohmann::json;

namespace {

json parse(std::string_view text, std::string_view what) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw Error(fmt::format("{} is not valid JSON: {}", what, e.what()));
  }
}

const json& member(const json& j, const char* key, std::string_view what) {
  if (!j.is_object() || !j.contains(key))
    throw Error(fmt::format("{} has no {:?}", what, key));
  return j.at(key);
}

std::string string_of(const json& j, std::string_view what) {
  if (!j.is_string()) throw Error(fmt::format("{} is not a string", what));
  return j.get<std::string>();
}

std::vector<std::string> strings_of(const json& j, std::string_view what) {
  std::vector<std::string> out;
  if (j.is_null()) return out;
  if (!j.is_array()) throw Error(fmt::format("{} is not a list", what));
  for (const auto& e : j) out.push_back(string_of(e, what));
  return out;
}

Descriptor descriptor_of(const json& j, std::string_view what) {
  Descriptor d;
  if (j.contains("mediaType")) d.media_type = string_of(j.at("mediaType"), what);
  d.digest = parse_digest(string_of(member(j, "digest", what), what));
  if (j.contains("size")) {
    if (!j.at("size").is_number_unsigned()) throw Error(fmt::format("{}: bad size", what));
    d.size = j.at("size").get<unsigned long long>();
  }
  return d;
}

}  // namespace

bool is_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Digest parse_digest(std::string_view s) {
  const auto colon = s.find(':');
  if (colon == std::string_view::npos) throw Error(fmt::format("bad digest {:?}", s));
  Digest d{std::string(s.substr(0, colon)), std::string(s.substr(colon + 1))};
  std::size_t want;
  if (d.algorithm == "sha256")
    want = 64;
  else if (d.algorithm == "sha512")
    want = 128;
  else
    throw Error(fmt::format("unsupported digest algorithm in {:?}", s));
  if (d.hex.size() != want || !is_hex(d.hex)) throw Error(fmt::format("bad digest {:?}", s));
  return d;
}

std::optional<Digest> digest_of_blob_path(std::string_view path) {
  if (path.substr(0, 6) != "blobs/") return std::nullopt;
  auto rest = path.substr(6);
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  try {
    return parse_digest(fmt::format("{}:{}", rest.substr(0, slash), rest.substr(slash + 1)));
  } catch (const Error&) {
    return std::nullopt;
  }
}

bool is_index_type(std::string_view t) {
  return t == "application/vnd.oci.image.index.v1+json" ||
         t == "application/vnd.docker.distribution.manifest.list.v2+json";
}

Descriptor pick_manifest(std::string_view index_json, std::string_view arch) {
  const json j = parse(index_json, "image index");
  const json& list = member(j, "manifests", "image index");
  if (!list.is_array() || list.empty()) throw Error("image index lists no manifests");
  std::vector<std::string> seen;
  std::optional<Descriptor> only;
  for (const auto& m : list) {
    Descriptor d = descriptor_of(m, "image index entry");
    std::string os, a;
    if (m.contains("platform") && m.at("platform").is_object()) {
      const auto& p = m.at("platform");
      if (p.contains("os") && p.at("os").is_string()) os = p.at("os").get<std::string>();
      if (p.contains("architecture") && p.at("architecture").is_string())
        a = p.at("architecture").get<std::string>();
    }
    // Attestations and other non-images carry "unknown" platforms.
    if (os == "unknown" || a == "unknown") continue;
    if (os == "linux" && a == arch) return d;
    seen.push_back(os.empty() && a.empty() ? std::string("(no platform)") : os + "/" + a);
    if (os.empty() && a.empty()) only = d;
  }
  if (seen.size() == 1 && only) return *only;
  throw Error(fmt::format("no image for linux/{} in the image index (it has: {})", arch,
                          fmt::join(seen, ", ")));
}

Manifest parse_manifest(std::string_view text) {
  const json j = parse(text, "image manifest");
  if (j.contains("mediaType") && j.at("mediaType").is_string() &&
      is_index_type(j.at("mediaType").get<std::string>()))
    throw Error("expected an image manifest, found an image index");
  Manifest m;
  m.config = descriptor_of(member(j, "config", "image manifest"), "image config descriptor");
  const json& layers = member(j, "layers", "image manifest");
  if (!layers.is_array()) throw Error("image manifest: \"layers\" is not a list");
  for (const auto& l : layers) m.layers.push_back(descriptor_of(l, "layer descriptor"));
  return m;
}

DockerManifest parse_docker_manifest(std::string_view text) {
  const json j = parse(text, "manifest.json");
  if (!j.is_array() || j.empty()) throw Error("manifest.json lists no images");
  DockerManifest m;
  m.images = j.size();
  const json& first = j.front();
  m.config = string_of(member(first, "Config", "manifest.json"), "manifest.json Config");
  m.layers = strings_of(member(first, "Layers", "manifest.json"), "manifest.json Layers");
  if (first.contains("RepoTags")) m.tags = strings_of(first.at("RepoTags"), "manifest.json RepoTags");
  return m;
}

ImageConfig parse_config(std::string_view text) {
  const json j = parse(text, "image config");
  if (!j.is_object()) throw Error("image config is not an object");
  ImageConfig c;
  if (j.contains("architecture") && j.at("architecture").is_string())
    c.architecture = j.at("architecture").get<std::string>();
  // Docker writes "config"; very old images only "container_config".
  const char* key = j.contains("config") ? "config" : "container_config";
  if (!j.contains(key) || j.at(key).is_null()) return c;
  const json& cfg = j.at(key);
  if (!cfg.is_object()) throw Error("image config: \"config\" is not an object");
  if (cfg.contains("Env")) c.env = strings_of(cfg.at("Env"), "image config Env");
  if (cfg.contains("WorkingDir") && !cfg.at("WorkingDir").is_null())
    c.cwd = string_of(cfg.at("WorkingDir"), "image config WorkingDir");
  if (cfg.contains("Entrypoint"))
    c.entrypoint = strings_of(cfg.at("Entrypoint"), "image config Entrypoint");
  if (cfg.contains("Cmd")) c.cmd = strings_of(cfg.at("Cmd"), "image config Cmd");
  return c;
}

std::string metadata_json(const ImageConfig& c) {
  json env = json::object();
  for (const auto& kv : c.env) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  json j = {
      {"arch", c.architecture.empty() ? std::string(host_arch()) : c.architecture},
      {"cwd", c.cwd.empty() ? std::string("/") : c.cwd},
      {"env", env},
      {"entrypoint", c.entrypoint},
      {"cmd", c.cmd},
  };
  return j.dump(2) + "\n";
}

std::string environment_file(const ImageConfig& c) {
  std::string out;
  for (const auto& kv : c.env) {
    const auto eq = kv.find('=');
    // ch-run reads one KEY=VALUE per line: values with newlines can't be
    // written that way (and no image config should carry them).
    if (eq == std::string::npos || eq == 0 || kv.find('\n') != std::string::npos) continue;
    out += kv;
    out += '\n';
  }
  return out;
}

std::string_view host_arch() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#elif defined(__i386__)
  return "386";
#elif defined(__arm__)
  return "arm";
#else
  return "unknown";
#endif
}

}  // namespace chute::oci
