// Mounts inside the container's private mount namespace. Every target inside
// the image is resolved with inroot (no symlink leads out), and mounted
// through its /proc/self/fd name.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chute/fd.hpp"
#include "chute/plan.hpp"

namespace chute::mount {

// Bind directory PATH onto itself so that it is a mount point we own, and
// return its root, opened O_PATH.
Fd bind_self(const std::string& path);

// Make the top mount on PATH unbindable: recursive binds of a directory
// above it leave it (and what is mounted under it) out. A bind whose source
// contains the image (-b $HOME, the image under $HOME) would otherwise copy
// the container's own mounts into itself.
void make_unbindable(const std::string& path);

// Make the mount whose root FD refers to read-only (all mounts under it too
// when RECURSIVE). mount_setattr(2) where the kernel has it; else a remount
// that keeps the flags the kernel locks (nosuid, nodev, noexec, atime).
void make_readonly(int fd, std::string_view name, bool recursive);

// The remount fallback of make_readonly(), for one mount; exposed for tests.
void remount_readonly(int fd, std::string_view name);

struct CoverOptions {
  std::vector<std::string> hide;                    // entry names not shown
  std::vector<unsigned long long>* views = nullptr; // gets the mount ids of what is shown
  std::string size = "1m";
};

// Cover directory DIR of the tree whose root is ROOTFD with a tmpfs that
// shows what DIR held: each entry bound (recursively) from what was there,
// symlinks copied, OPTS.hide left out. Returns the tmpfs's root, writable:
// the caller adds what it needs, then makes it read-only (make_readonly).
// At most 4096 entries.
Fd cover(int rootfd, const std::string& dir, const CoverOptions& opts);

// Make MOUNTS, in order, in the tree whose root is ROOTFD.
void apply(const std::vector<Mount>& mounts, int rootfd);

// Bind read-only files with the given contents over paths inside the image
// (for /etc/passwd and /etc/group). They live on a small ramfs mounted on
// SCRATCH_DIR, a directory of the image that a later mount covers (/dev):
// nothing is written on the host. Call before that later mount.
void install_files(int rootfd, const std::string& scratch_dir,
                   const std::vector<std::pair<std::string, std::string>>& files);

// --write-fake: a writable overlay over the image whose root is ROOTFD and
// whose mount point is ROOT_PATH. The upper and work directories live on a
// tmpfs of SIZE mounted on the image's own /dev (which the overlay does not
// show, and the /dev bind covers later): no path is reserved anywhere, and
// everything written goes away with the namespace. Returns the new root.
Fd overlay(int rootfd, const std::string& root_path, const std::string& size);

// Make ROOTFD the root and detach the host's tree. cwd is "/" afterwards.
void pivot(int rootfd);

}  // namespace chute::mount
