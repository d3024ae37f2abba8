// Opening and creating paths inside a directory tree that must be treated as
// its own root: an image. Symlinks and ".." are resolved as if the tree were
// "/", so nothing in the tree can lead outside it. openat2(RESOLVE_IN_ROOT)
// where the kernel has it (5.6+), else a component-by-component walk with
// O_NOFOLLOW that does the same.
#pragma once

#include <sys/types.h>

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "chute/fd.hpp"

namespace chute::inroot {

// Flags for the final open: O_PATH, O_RDONLY, O_DIRECTORY, O_NOFOLLOW (do
// not follow a symlink in the last component) are the meaningful ones.
// Throws SysError naming PATH.
Fd open(int rootfd, std::string_view path, int flags);

// As open(), but a missing component (ENOENT) gives nullopt.
std::optional<Fd> try_open(int rootfd, std::string_view path, int flags);

// The fallback walk, always, whatever the kernel has; for tests.
std::optional<Fd> try_open_walk(int rootfd, std::string_view path, int flags);

// Create the missing directories of PATH (absolute, no ".."), each with MODE.
// A directory is created only on the root's own mount or on one of the
// mounts listed in ALSO (by mount id: scratch tmpfs chute made), never
// through a bind mount of host files. Returns the directory, opened O_PATH.
Fd mkdirs(int rootfd, std::string_view path, mode_t mode,
          std::span<const unsigned long long> also = {});

// Create PATH as an empty regular file if nothing is there (its parent
// directories as by mkdirs()). Returns it, opened O_PATH.
Fd make_file(int rootfd, std::string_view path, mode_t mode,
             std::span<const unsigned long long> also = {});

}  // namespace chute::inroot
