#include "chute/walk.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <sqfs/compressor.h>
#include <sqfs/data_reader.h>
#include <sqfs/dir.h>
#include <sqfs/dir_reader.h>
#include <sqfs/error.h>
#include <sqfs/inode.h>
#include <sqfs/io.h>
#include <sqfs/predef.h>
#include <sqfs/super.h>
#include <sqfs/xattr.h>
#include <sqfs/xattr_reader.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "chute/error.hpp"
#include "chute/fd.hpp"
#include "chute/sys.hpp"
#include "chute/sqfs_handle.hpp"
#include "chute/unpack.hpp"

namespace chute::walk {

using member::Kind;
using member::Member;

namespace {

// ---- directories

class FdData final : public sink::Data {
public:
  FdData(int fd, std::string name) : fd_(fd), name_(std::move(name)), buf_(1 << 17) {}
  std::span<const char> next() override {
    for (;;) {
      const ssize_t n = ::read(fd_, buf_.data(), buf_.size());
      if (n >= 0) {
        unpack::bytes_read().fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
        return {buf_.data(), static_cast<std::size_t>(n)};
      }
      if (errno != EINTR) throw SysError(errno, fmt::format("can't read {}", name_));
    }
  }

private:
  int fd_;
  std::string name_;
  std::vector<char> buf_;
};

std::vector<std::pair<std::string, std::string>> fd_xattrs(int fd) {
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<char> names(4096);
  ssize_t n = ::flistxattr(fd, names.data(), names.size());
  if (n < 0 && errno == ERANGE) {
    n = ::flistxattr(fd, nullptr, 0);
    if (n > 0) {
      names.resize(static_cast<std::size_t>(n));
      n = ::flistxattr(fd, names.data(), names.size());
    }
  }
  if (n <= 0) return out;
  for (std::size_t i = 0; i < static_cast<std::size_t>(n);) {
    std::string k(names.data() + i);
    i += k.size() + 1;
    // Only what an ordinary user can set again; security.selinux and
    // friends belong to the host that wrote them.
    if (k.compare(0, 5, "user.") != 0) continue;
    std::string v(65536, '\0');
    const ssize_t vs = ::fgetxattr(fd, k.c_str(), v.data(), v.size());
    if (vs < 0) continue;
    v.resize(static_cast<std::size_t>(vs));
    out.emplace_back(std::move(k), std::move(v));
  }
  return out;
}

struct DirWalker {
  bool xattrs;
  const Visit& visit;
  std::map<std::pair<dev_t, ino_t>, std::string> seen;
  std::string top;

  void entry(int dirfd, const std::string& name, const std::string& rel) {
    struct stat st;
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      throw SysError(errno, fmt::format("can't stat {}/{}", top, rel));
    Member m;
    m.path = rel;
    m.perm = st.st_mode & 07777;
    m.mtime = st.st_mtim.tv_sec;
    const auto key = std::make_pair(st.st_dev, st.st_ino);
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
      if (auto it = seen.find(key); it != seen.end()) {
        m.kind = Kind::kHardlink;
        m.target = it->second;
        visit(m, nullptr);
        return;
      }
      seen.emplace(key, rel);
    }
    switch (st.st_mode & S_IFMT) {
      case S_IFREG: {
        m.kind = Kind::kFile;
        m.size = static_cast<std::uint64_t>(st.st_size);
        Fd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd) throw SysError(errno, fmt::format("can't open {}/{}", top, rel));
        if (xattrs) m.xattrs = fd_xattrs(fd.get());
        FdData data(fd.get(), top + "/" + rel);
        visit(m, &data);
        break;
      }
      case S_IFDIR: {
        m.kind = Kind::kDir;
        Fd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd) throw SysError(errno, fmt::format("can't open {}/{}", top, rel));
        if (xattrs) m.xattrs = fd_xattrs(fd.get());
        visit(m, nullptr);
        children(fd.get(), rel);
        break;
      }
      case S_IFLNK: {
        m.kind = Kind::kSymlink;
        std::string t(4096, '\0');
        const ssize_t n = ::readlinkat(dirfd, name.c_str(), t.data(), t.size());
        if (n < 0) throw SysError(errno, fmt::format("can't read symlink {}/{}", top, rel));
        t.resize(static_cast<std::size_t>(n));
        m.target = std::move(t);
        visit(m, nullptr);
        break;
      }
      case S_IFCHR:
      case S_IFBLK: m.kind = Kind::kDevice; visit(m, nullptr); break;
      case S_IFIFO: m.kind = Kind::kFifo; visit(m, nullptr); break;
      default: m.kind = Kind::kSocket; visit(m, nullptr); break;
    }
  }

  void children(int fd, const std::string& rel) {
    std::vector<std::string> names = sys::list_dir(fd, fmt::format("{}/{}", top, rel));
    std::sort(names.begin(), names.end());
    for (const auto& n : names) entry(fd, n, rel.empty() ? n : rel + "/" + n);
  }
};

// ---- SquashFS

using sqfs::Handle;
using sqfs::InodePtr;
using sqfs::SqfsPtr;

class SquashData final : public sink::Data {
public:
  SquashData(sqfs_data_reader_t* dr, const sqfs_inode_generic_t* in, std::uint64_t size, std::string name)
      : dr_(dr), in_(in), size_(size), name_(std::move(name)), buf_(1 << 17) {}
  std::span<const char> next() override {
    if (off_ >= size_) return {};
    const auto want = static_cast<sqfs_u32>(std::min<std::uint64_t>(buf_.size(), size_ - off_));
    const sqfs_s32 n = sqfs_data_reader_read(dr_, in_, off_, buf_.data(), want);
    if (n <= 0) throw Error(fmt::format("{}: can't read the data (libsquashfs error {})", name_, n));
    off_ += static_cast<std::uint64_t>(n);
    unpack::bytes_read().fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
    return {buf_.data(), static_cast<std::size_t>(n)};
  }

private:
  sqfs_data_reader_t* dr_;
  const sqfs_inode_generic_t* in_;
  std::uint64_t size_;
  std::string name_;
  std::vector<char> buf_;
  std::uint64_t off_ = 0;
};

struct SquashWalker {
  std::string file;
  const Visit& visit;
  sqfs_dir_reader_t* dr;
  sqfs_data_reader_t* data;
  sqfs_xattr_reader_t* xr;  // null: no xattrs wanted or none present
  std::map<sqfs_u32, std::string> seen;

  [[noreturn]] void bad(const std::string& what, int r) {
    throw Error(fmt::format("{}: {} (corrupt SquashFS? libsquashfs error {})", file, what, r));
  }

  std::vector<std::pair<std::string, std::string>> xattrs_of(const sqfs_inode_generic_t* in) {
    std::vector<std::pair<std::string, std::string>> out;
    if (!xr) return out;
    sqfs_u32 idx = 0xFFFFFFFF;
    if (sqfs_inode_get_xattr_index(in, &idx) != 0 || idx == 0xFFFFFFFF) return out;
    sqfs_xattr_id_t desc;
    if (int r = sqfs_xattr_reader_get_desc(xr, idx, &desc); r != 0) bad("bad xattr index", r);
    if (int r = sqfs_xattr_reader_seek_kv(xr, &desc); r != 0) bad("bad xattr table", r);
    for (sqfs_u32 i = 0; i < desc.count; ++i) {
      sqfs_xattr_entry_t* k = nullptr;
      if (int r = sqfs_xattr_reader_read_key(xr, &k); r != 0) bad("bad xattr key", r);
      SqfsPtr<sqfs_xattr_entry_t> kp(k);
      sqfs_xattr_value_t* v = nullptr;
      if (int r = sqfs_xattr_reader_read_value(xr, k, &v); r != 0) bad("bad xattr value", r);
      SqfsPtr<sqfs_xattr_value_t> vp(v);
      // libsquashfs returns the full name ("user.x", NUL-terminated); the
      // on-disk size counts only the part after the prefix.
      const char* raw = reinterpret_cast<const char*>(k->key);
      std::string key(raw, ::strnlen(raw, static_cast<std::size_t>(k->size) + 64));
      const char* prefix = sqfs_get_xattr_prefix(static_cast<SQFS_XATTR_TYPE>(k->type & SQFS_XATTR_PREFIX_MASK));
      if (prefix && key.compare(0, std::strlen(prefix), prefix) != 0) key = prefix + key;
      out.emplace_back(std::move(key), std::string(reinterpret_cast<const char*>(v->value), v->size));
    }
    return out;
  }

  void node(const sqfs_inode_generic_t* in, const std::string& rel, int depth) {
    if (depth > 4096) throw Error(fmt::format("{}: directories nested too deep", file));
    Member m;
    m.path = rel;
    m.perm = in->base.mode & 07777;
    m.mtime = in->base.mod_time;
    const auto type = in->base.type;
    const bool is_dir = type == SQFS_INODE_DIR || type == SQFS_INODE_EXT_DIR;
    if (!is_dir && !rel.empty()) {
      if (auto it = seen.find(in->base.inode_number); it != seen.end()) {
        m.kind = Kind::kHardlink;
        m.target = it->second;
        visit(m, nullptr);
        return;
      }
      seen.emplace(in->base.inode_number, rel);
    }
    m.xattrs = xattrs_of(in);
    switch (type) {
      case SQFS_INODE_FILE:
      case SQFS_INODE_EXT_FILE: {
        m.kind = Kind::kFile;
        sqfs_u64 size = 0;
        sqfs_inode_get_file_size(in, &size);
        m.size = size;
        SquashData d(data, in, size, fmt::format("{}: {}", file, rel));
        visit(m, &d);
        break;
      }
      case SQFS_INODE_SLINK:
      case SQFS_INODE_EXT_SLINK: {
        m.kind = Kind::kSymlink;
        m.target.assign(reinterpret_cast<const char*>(in->extra), in->data.slink.target_size);
        visit(m, nullptr);
        break;
      }
      case SQFS_INODE_DIR:
      case SQFS_INODE_EXT_DIR: {
        m.kind = Kind::kDir;
        visit(m, nullptr);
        if (int r = sqfs_dir_reader_open_dir(dr, in, 0); r != 0) bad(fmt::format("can't read directory {:?}", rel), r);
        // Read the whole listing first: the reader is reused for subdirectories.
        std::vector<std::pair<std::string, InodePtr>> kids;
        for (;;) {
          sqfs_dir_entry_t* e = nullptr;
          const int r = sqfs_dir_reader_read(dr, &e);
          if (r > 0) break;
          if (r < 0) bad(fmt::format("can't read directory {:?}", rel), r);
          SqfsPtr<sqfs_dir_entry_t> ep(e);
          std::string name(reinterpret_cast<const char*>(e->name), static_cast<std::size_t>(e->size) + 1);
          if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
            throw Error(fmt::format("{}: invalid name {:?} in directory {:?}", file, name, rel));
          sqfs_inode_generic_t* ci = nullptr;
          if (int r2 = sqfs_dir_reader_get_inode(dr, &ci); r2 != 0) bad(fmt::format("can't read the inode of {:?}", name), r2);
          kids.emplace_back(std::move(name), InodePtr(ci));
        }
        for (auto& [name, ci] : kids) node(ci.get(), rel.empty() ? name : rel + "/" + name, depth + 1);
        break;
      }
      case SQFS_INODE_CDEV:
      case SQFS_INODE_BDEV:
      case SQFS_INODE_EXT_CDEV:
      case SQFS_INODE_EXT_BDEV: m.kind = Kind::kDevice; visit(m, nullptr); break;
      case SQFS_INODE_FIFO:
      case SQFS_INODE_EXT_FIFO: m.kind = Kind::kFifo; visit(m, nullptr); break;
      default: m.kind = Kind::kSocket; visit(m, nullptr); break;
    }
  }
};

}  // namespace

void directory(const std::string& path, bool xattrs, const Visit& visit) {
  Fd top(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!top) throw SysError(errno, fmt::format("can't open directory {}", path));
  DirWalker w{xattrs, visit, {}, path};
  struct stat st;
  if (::fstat(top.get(), &st) != 0) throw SysError(errno, fmt::format("can't stat {}", path));
  Member root;
  root.kind = Kind::kDir;
  root.perm = st.st_mode & 07777;
  root.mtime = st.st_mtim.tv_sec;
  visit(root, nullptr);
  w.children(top.get(), "");
}

void squash(const std::string& path, bool xattrs, const Visit& visit) {
  Handle<sqfs_file_t> f(sqfs_open_file(path.c_str(), SQFS_FILE_OPEN_READ_ONLY));
  if (!f) throw SysError(errno, fmt::format("can't open {}", path));
  sqfs_super_t super;
  if (int r = sqfs_super_read(&super, f.get()); r != 0)
    throw Error(fmt::format("{}: not a SquashFS image (or a damaged superblock; libsquashfs error {})", path, r));
  // A cut file (an interrupted copy) would fail later with a puzzling error.
  if (struct stat st; ::stat(path.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) < super.bytes_used)
    throw Error(fmt::format("{}: truncated: the file has {} bytes, the image {}", path, st.st_size, super.bytes_used));
  sqfs_compressor_config_t cfg;
  if (sqfs_compressor_config_init(&cfg, static_cast<SQFS_COMPRESSOR>(super.compression_id), super.block_size,
                                  SQFS_COMP_FLAG_UNCOMPRESS) != 0)
    throw Error(fmt::format("{}: unsupported compression (id {})", path, super.compression_id));
  sqfs_compressor_t* cmp_raw = nullptr;
  if (sqfs_compressor_create(&cfg, &cmp_raw) != 0)
    throw Error(fmt::format("{}: unsupported compression {}", path,
                            sqfs_compressor_name_from_id(static_cast<SQFS_COMPRESSOR>(super.compression_id))
                                ? sqfs_compressor_name_from_id(static_cast<SQFS_COMPRESSOR>(super.compression_id))
                                : "?"));
  Handle<sqfs_compressor_t> cmp(cmp_raw);
  if (super.flags & SQFS_FLAG_COMPRESSOR_OPTIONS) {
    if (int r = cmp->read_options(cmp.get(), f.get()); r != 0)
      throw Error(fmt::format("{}: bad compressor options (libsquashfs error {})", path, r));
  }
  Handle<sqfs_dir_reader_t> dr(sqfs_dir_reader_create(&super, cmp.get(), f.get(), 0));
  Handle<sqfs_data_reader_t> data(sqfs_data_reader_create(f.get(), super.block_size, cmp.get(), 0));
  if (!dr || !data) throw std::bad_alloc();
  if (int r = sqfs_data_reader_load_fragment_table(data.get(), &super); r != 0)
    throw Error(fmt::format("{}: bad fragment table (libsquashfs error {})", path, r));
  Handle<sqfs_xattr_reader_t> xr;
  if (xattrs && !(super.flags & SQFS_FLAG_NO_XATTRS) && super.xattr_id_table_start != 0xFFFFFFFFFFFFFFFFULL) {
    xr.reset(sqfs_xattr_reader_create(0));
    if (!xr) throw std::bad_alloc();
    if (int r = sqfs_xattr_reader_load(xr.get(), &super, f.get(), cmp.get()); r != 0)
      throw Error(fmt::format("{}: bad xattr table (libsquashfs error {})", path, r));
  }
  sqfs_inode_generic_t* root_raw = nullptr;
  if (int r = sqfs_dir_reader_get_root_inode(dr.get(), &root_raw); r != 0)
    throw Error(fmt::format("{}: can't read the root inode (libsquashfs error {})", path, r));
  InodePtr root(root_raw);
  SquashWalker w{path, visit, dr.get(), data.get(), xr.get(), {}};
  w.node(root.get(), "", 0);
}

}  // namespace chute::walk
