// Which image an IMAGE argument names: a name in storage, a directory, or a
// SquashFS file. Reads the file system; changes nothing.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace chute {

enum class ImageKind { kDirectory, kSquash };

struct ImageRef {
  ImageKind kind = ImageKind::kDirectory;
  std::string arg;           // as the user gave it
  std::string path;          // host path (as given, or found in storage)
  bool from_storage = false; // found by name in storage
};

namespace image_ref {

// Storage's file name for an image name: "/" becomes "%", ":" becomes "+".
std::string mangle(std::string_view name);

// -s DIR, else $CH_IMAGE_STORAGE, else /var/tmp/$USER.ch.
std::string storage_dir(const std::optional<std::string>& option,
                        std::optional<std::string_view> env_storage, std::string_view user);

// True when PATH is DIR or lies under it (both canonical, no trailing "/").
bool is_under(std::string_view path, std::string_view dir);

// Resolve ARG as Charliecloud does: a name in STORAGE/img wins, then a
// directory, then a file starting with the SquashFS magic "hsqs". A directory
// inside STORAGE is refused unless UNSAFE. Throws Error/SysError naming ARG.
ImageRef resolve(std::string_view arg, const std::string& storage, bool unsafe);

}  // namespace image_ref
}  // namespace chute
