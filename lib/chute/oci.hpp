// Image metadata of docker-archive and OCI layouts: manifests, indexes,
// descriptors, and the image config, parsed with nlohmann-json. Pure: the
// caller reads the files; every function throws Error on malformed input.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chute::oci {

struct Digest {
  std::string algorithm;  // "sha256" or "sha512"
  std::string hex;        // lowercase, of the algorithm's length
  std::string str() const { return algorithm + ":" + hex; }
  std::string blob_path() const { return "blobs/" + algorithm + "/" + hex; }
};
// "sha256:<64 hex>" (or sha512); anything else, including path characters,
// is an Error.
Digest parse_digest(std::string_view s);
// Lowercase hexadecimal digits only (as digests are written).
bool is_hex(std::string_view s);

// The digest a blob path names ("blobs/sha256/<hex>"), if it is one.
std::optional<Digest> digest_of_blob_path(std::string_view path);

struct Descriptor {
  std::string media_type;
  Digest digest;
  std::optional<unsigned long long> size;
};

bool is_index_type(std::string_view media_type);

// index.json (or a nested image index): the manifest for linux/ARCH (Go
// architecture names: amd64, arm64, ...), or the only manifest. Throws if
// none fits, naming the platforms present.
Descriptor pick_manifest(std::string_view index_json, std::string_view arch);

struct Manifest {
  Descriptor config;
  std::vector<Descriptor> layers;
};
Manifest parse_manifest(std::string_view manifest_json);

// docker-archive manifest.json: [{"Config": ..., "RepoTags": [...], "Layers": [...]}]
struct DockerManifest {
  std::string config;               // member path in the archive
  std::vector<std::string> layers;  // member paths, bottom first
  std::vector<std::string> tags;
  std::size_t images = 0;           // how many images the archive holds
};
DockerManifest parse_docker_manifest(std::string_view manifest_json);

struct ImageConfig {
  std::vector<std::string> env;  // "KEY=VALUE"
  std::string cwd;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string architecture;
};
ImageConfig parse_config(std::string_view config_json);

// /ch/metadata.json and /ch/environment for an image with this config.
std::string metadata_json(const ImageConfig& c);
std::string environment_file(const ImageConfig& c);

// The Go architecture name of the machine chute was built for.
std::string_view host_arch();

}  // namespace chute::oci
