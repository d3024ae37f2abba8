// Owners for libsquashfs (squashfs-tools-ng) objects: Handle<T> destroys an
// object with sqfs_destroy, SqfsPtr<T> frees memory the library allocated
// (inodes, directory entries, xattr keys) with sqfs_free.
#pragma once

#include <sqfs/inode.h>
#include <sqfs/predef.h>

#include <memory>

namespace chute::sqfs {

template <typename T>
struct Destroy {
  void operator()(T* p) const { sqfs_destroy(p); }
};
template <typename T>
using Handle = std::unique_ptr<T, Destroy<T>>;

struct Free {
  void operator()(void* p) const { sqfs_free(p); }
};
template <typename T>
using SqfsPtr = std::unique_ptr<T, Free>;
using InodePtr = SqfsPtr<sqfs_inode_generic_t>;

}  // namespace chute::sqfs
