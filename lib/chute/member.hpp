// Members of an image being converted: one file, directory, symlink or hard
// link with its metadata, and the rules that make untrusted archive members
// safe to write (pure: no system calls).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chute::member {

enum class Kind { kFile, kDir, kSymlink, kHardlink, kDevice, kFifo, kSocket };

struct Member {
  std::string path;        // clean, relative, no leading "/": "" is the root
  Kind kind = Kind::kFile;
  mode_t perm = 0644;      // permission bits only (07777)
  std::int64_t mtime = 0;
  std::uint64_t size = 0;  // bytes of data (files only)
  std::string target;      // symlink target (verbatim) or hard link target (clean path)
  std::vector<std::pair<std::string, std::string>> xattrs;
};

std::string_view kind_name(Kind k);

// Clean an archive member name: strip leading "/" and "./", drop "." and
// empty components. Returns nullopt and sets WHY for names that cannot be
// made safe: a ".." component, a component over 255 bytes, a path over
// 4095 bytes. NEUTRALISED is set when the name had to change beyond
// cosmetics (it was absolute).
std::optional<std::string> clean_path(std::string_view raw, std::string& why,
                                      bool* neutralised = nullptr);

// NAME without leading "./" (as archive indexes and manifests compare
// names): no other cleaning.
std::string strip_dot_slash(std::string_view name);

// The permission bits chute writes: setuid and setgid cleared, u+rwx on
// directories and u+rw on everything else, so the owner can always read,
// change and delete what was unpacked.
mode_t fix_perm(Kind k, mode_t perm);

// OCI whiteouts (image-spec layer.md): ".wh.NAME" deletes NAME of lower
// layers in the same directory; ".wh..wh..opq" makes its directory opaque.
enum class Whiteout { kNone, kDelete, kOpaque, kInvalid };
struct WhiteoutInfo {
  Whiteout kind = Whiteout::kNone;
  std::string victim;  // kDelete: the path removed; kOpaque: the directory
};
WhiteoutInfo whiteout_of(const std::string& clean);

// "a/b/c" -> "a/b"; "a" -> "".
std::string parent_of(const std::string& clean);
std::string base_of(const std::string& clean);
// True if P is D or lies under D ("" is the root, above everything).
bool is_within(const std::string& p, const std::string& d);

// Decides whether an archive with one top-level directory is unwrapped.
class TopLevel {
public:
  void see(const std::string& clean, Kind k);
  // The directory to use as the image root, or "" to keep the archive's.
  std::string root() const;

private:
  std::set<std::string> names_;
  bool top_non_dir_ = false;
  bool too_many_ = false;
};

// Directories every root filesystem has: one of these alone at the top of an
// archive is a normal image, not a wrapper directory.
bool is_standard_root_dir(std::string_view name);

// What ch-run needs in every image, created when missing.
struct MountPoint {
  std::string path;
  Kind kind;
};
const std::vector<MountPoint>& mount_points();

}  // namespace chute::member
