// SquashFS output with libsquashfs (squashfs-tools-ng), straight from the
// member stream: file data goes to the block processor (compressed on
// several threads) as it arrives; the tree is kept in memory and its inodes
// and directories written at the end. No temporary directory, no disk
// space beyond the output.

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqfs/block.h>
#include <sqfs/block_processor.h>
#include <sqfs/block_writer.h>
#include <sqfs/compressor.h>
#include <sqfs/dir_writer.h>
#include <sqfs/error.h>
#include <sqfs/frag_table.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/io.h>
#include <sqfs/meta_writer.h>
#include <sqfs/predef.h>
#include <sqfs/super.h>
#include <sqfs/xattr_writer.h>

#include <fmt/format.h>

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "chute/error.hpp"
#include "chute/fd.hpp"
#include "chute/log.hpp"
#include "chute/sink.hpp"
#include "chute/sqfs_handle.hpp"

namespace chute::sink {

namespace {

using member::Kind;
using member::Member;

struct Compressor {
  const char* name;
  SQFS_COMPRESSOR id;
  int level;  // chute's default (0: the library's)
};
// zstd at level 3 with 128 KiB blocks, measured on a 540 MB, 21,000-file
// tree (doc/ch-convert.1, SQUASHFS): level 6 is 6% smaller and takes twice
// as long, level 15 (mksquashfs's default) 12% smaller and 17 times as
// long; 1 MiB blocks are 6% smaller and slower to write, and make every
// small read through ch-run's FUSE server decompress 8 times as much.
constexpr Compressor kCompressors[] = {
    {"zstd", SQFS_COMP_ZSTD, 3}, {"gzip", SQFS_COMP_GZIP, 6}, {"xz", SQFS_COMP_XZ, 0},
    {"lz4", SQFS_COMP_LZ4, 0},   {"lzo", SQFS_COMP_LZO, 0},
};

const Compressor* find_compressor(const std::string& name) {
  for (const auto& c : kCompressors)
    if (name == c.name) return &c;
  return nullptr;
}

// sqfs_file_t over a descriptor chute opened (O_EXCL, next to the output).
struct FdFile {
  sqfs_file_t base;
  int fd;
  std::mutex mu;
  sqfs_u64 size = 0;
  int err = 0;
};

FdFile* self(sqfs_file_t* f) { return reinterpret_cast<FdFile*>(f); }

int file_read_at(sqfs_file_t* f, sqfs_u64 off, void* buf, size_t n) {
  FdFile* s = self(f);
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    const ssize_t r = ::pread(s->fd, p, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      s->err = r < 0 ? errno : EIO;
      return r < 0 ? SQFS_ERROR_IO : SQFS_ERROR_OUT_OF_BOUNDS;
    }
    p += r;
    off += static_cast<sqfs_u64>(r);
    n -= static_cast<size_t>(r);
  }
  return 0;
}

int file_write_at(sqfs_file_t* f, sqfs_u64 off, const void* buf, size_t n) {
  FdFile* s = self(f);
  const auto* p = static_cast<const char*>(buf);
  const sqfs_u64 end = off + n;
  while (n > 0) {
    const ssize_t r = ::pwrite(s->fd, p, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      s->err = errno;
      return SQFS_ERROR_IO;
    }
    p += r;
    off += static_cast<sqfs_u64>(r);
    n -= static_cast<size_t>(r);
  }
  std::lock_guard lk(s->mu);
  if (end > s->size) s->size = end;
  return 0;
}

sqfs_u64 file_get_size(const sqfs_file_t* f) {
  auto* s = const_cast<FdFile*>(reinterpret_cast<const FdFile*>(f));
  std::lock_guard lk(s->mu);
  return s->size;
}

int file_truncate(sqfs_file_t* f, sqfs_u64 size) {
  FdFile* s = self(f);
  if (::ftruncate(s->fd, static_cast<off_t>(size)) != 0) {
    s->err = errno;
    return SQFS_ERROR_IO;
  }
  std::lock_guard lk(s->mu);
  s->size = size;
  return 0;
}

void file_destroy(sqfs_object_t*) {}  // owned by the sink
sqfs_object_t* file_copy(const sqfs_object_t*) { return nullptr; }

using sqfs::Handle;
using sqfs::InodePtr;

struct Node {
  std::string name;
  Kind kind = Kind::kDir;
  mode_t perm = 0755;
  std::int64_t mtime = 0;
  std::string target;                 // symlinks
  std::map<std::string, std::unique_ptr<Node>> children;  // byte order, as SquashFS wants
  sqfs_inode_generic_t* inode = nullptr;  // files: the block processor's; freed by us
  Node* primary = nullptr;            // hard links: the node that has the inode
  std::uint32_t nlink = 1;
  std::uint32_t xattr = 0xFFFFFFFF;
  std::uint32_t ino = 0;
  sqfs_u64 ref = 0;
  bool written = false;
  ~Node() {
    if (inode) sqfs_free(inode);
  }
};

class SquashSink final : public Sink {
public:
  SquashSink(std::string out, const SquashOptions& o, bool xattrs)
      : out_(std::move(out)), xattrs_(xattrs) {
    const Compressor* c = find_compressor(o.compressor);
    if (!c) throw Error(fmt::format("unknown SquashFS compressor {:?}", o.compressor));
    std::string pattern = temp_pattern(out_);
    const int fd = ::mkostemp(pattern.data(), O_CLOEXEC);
    if (fd < 0) throw SysError(errno, fmt::format("can't create a file next to {}", out_));
    fd_ = Fd(fd);
    tmp_ = pattern;
    file_.fd = fd_.get();
    file_.base.base.destroy = file_destroy;
    file_.base.base.copy = file_copy;
    file_.base.read_at = file_read_at;
    file_.base.write_at = file_write_at;
    file_.base.get_size = file_get_size;
    file_.base.truncate = file_truncate;

    sqfs_compressor_config_t cfg;
    if (sqfs_compressor_config_init(&cfg, c->id, o.block_size, 0) != 0)
      throw Error(fmt::format("bad SquashFS block size {}", o.block_size));
    const int level = o.level ? o.level : c->level;
    if (level) cfg.level = static_cast<sqfs_u32>(level);
    sqfs_compressor_t* cmp = nullptr;
    if (int r = sqfs_compressor_create(&cfg, &cmp); r != 0)
      throw Error(fmt::format("can't set up {} compression (level {}): error {}", c->name, level, r));
    cmp_.reset(cmp);
    cfg.flags |= SQFS_COMP_FLAG_UNCOMPRESS;
    sqfs_compressor_t* uncmp = nullptr;
    if (sqfs_compressor_create(&cfg, &uncmp) != 0) throw Error("can't set up decompression");
    uncmp_.reset(uncmp);

    if (sqfs_super_init(&super_, o.block_size, 0, c->id) != 0)
      throw Error(fmt::format("bad SquashFS block size {}", o.block_size));
    check(sqfs_super_write(&super_, &file_.base), "can't write the superblock");
    const int opt = cmp_->write_options(cmp_.get(), &file_.base);
    if (opt < 0) check(opt, "can't write the compressor options");
    if (opt > 0) super_.flags |= SQFS_FLAG_COMPRESSOR_OPTIONS;

    bw_.reset(sqfs_block_writer_create(&file_.base, 4096, 0));
    frags_.reset(sqfs_frag_table_create(0));
    ids_.reset(sqfs_id_table_create(0));
    if (xattrs_) xwr_.reset(sqfs_xattr_writer_create(0));
    if (!bw_ || !frags_ || !ids_ || (xattrs_ && !xwr_)) throw std::bad_alloc();
    sqfs_block_processor_desc_t desc;
    std::memset(&desc, 0, sizeof desc);
    desc.size = sizeof desc;
    desc.max_block_size = o.block_size;
    desc.num_workers = o.jobs ? o.jobs : std::max(1u, std::thread::hardware_concurrency());
    // Many blocks in flight: with a short queue the feeding thread waits on
    // the workers for each small file (16 per worker: 15% slower here).
    desc.max_backlog = desc.num_workers * 64;
    desc.cmp = cmp_.get();
    desc.wr = bw_.get();
    desc.tbl = frags_.get();
    desc.file = &file_.base;
    desc.uncmp = uncmp_.get();
    sqfs_block_processor_t* proc = nullptr;
    check(sqfs_block_processor_create_ex(&desc, &proc), "can't start the compression threads");
    proc_.reset(proc);
    root_ = std::make_unique<Node>();
  }

  ~SquashSink() override {
    // The block processor's threads still point at our inodes: stop them first.
    proc_.reset();
    if (!committed_) {
      fd_.reset();
      ::unlink(tmp_.c_str());
    }
  }

  void add(const Member& m, Data* data) override {
    if (m.path.empty()) {
      if (m.kind != Kind::kDir) throw Error("the image root is not a directory");
      root()->perm = m.perm;
      root()->mtime = m.mtime;
      return;
    }
    const std::string dir = member::parent_of(m.path);
    const std::string base = member::base_of(m.path);
    Node* parent = dir.empty() ? root() : make_dirs(dir);
    auto& slot = parent->children[base];
    if (slot) {
      if (slot->kind == Kind::kDir && m.kind == Kind::kDir) {
        slot->perm = m.perm;
        slot->mtime = m.mtime;
        set_xattrs(*slot, m);
        return;
      }
      if (slot->kind == Kind::kDir)
        throw Error(fmt::format("a {} would replace a directory", member::kind_name(m.kind)));
      if (m.kind == Kind::kDir)
        throw Error(fmt::format("a directory would replace a {}", member::kind_name(slot->kind)));
      if (slot->kind == Kind::kHardlink && slot->primary) --slot->primary->nlink;
      // The block processor may still write to the old inode: keep it
      // until the end.
      graveyard_.push_back(std::move(slot));
    }
    auto n = std::make_unique<Node>();
    n->name = base;
    n->kind = m.kind;
    n->perm = m.perm;
    n->mtime = m.mtime;
    switch (m.kind) {
      case Kind::kDir: break;
      case Kind::kSymlink: n->target = m.target; break;
      case Kind::kHardlink: {
        Node* t = find(m.target);
        if (!t) throw Error(fmt::format("hard link to missing {:?}", m.target));
        if (t->kind == Kind::kDir) throw Error(fmt::format("hard link to directory {:?}", m.target));
        n->primary = t->primary ? t->primary : t;
        ++n->primary->nlink;
        break;
      }
      case Kind::kFile: {
        // Messages are formatted only on failure: this runs once per file.
        Node* raw = n.get();
        auto ok = [&](int r) {
          if (r != 0) check(r, fmt::format("can't write {:?}", m.path));
        };
        ok(sqfs_block_processor_begin_file(proc_.get(), &raw->inode, nullptr, 0));
        if (data) {
          for (auto b = data->next(); !b.empty(); b = data->next()) {
            ok(sqfs_block_processor_append(proc_.get(), b.data(), b.size()));
          }
        }
        ok(sqfs_block_processor_end_file(proc_.get()));
        break;
      }
      default: throw Error(fmt::format("a {} can't be written", member::kind_name(m.kind)));
    }
    set_xattrs(*n, m);
    slot = std::move(n);
  }

  bool exists(const std::string& p) override {
    bool blocked = false;
    return find(p, &blocked) || blocked;  // under a non-directory: never write there
  }

  void set_root(const std::string& subdir) override {
    Node* n = find(subdir);
    if (!n || n->kind != Kind::kDir) throw Error(fmt::format("{:?} is not a directory", subdir));
    new_root_ = n;
  }

  void commit() override {
    log::trace("squash: all members added; waiting for the compression threads");
    check(sqfs_block_processor_finish(proc_.get()), "can't finish writing data");
    log::trace("squash: data written; writing inodes and directories");
    Node* r = root();
    std::uint32_t next_ino = 1;
    number(*r, next_ino);
    inode_count_ = next_ino - 1;

    super_.inode_table_start = file_.size;
    Handle<sqfs_meta_writer_t> im(sqfs_meta_writer_create(&file_.base, cmp_.get(), 0));
    Handle<sqfs_meta_writer_t> dm(sqfs_meta_writer_create(&file_.base, cmp_.get(), SQFS_META_WRITER_KEEP_IN_MEMORY));
    if (!im || !dm) throw std::bad_alloc();
    Handle<sqfs_dir_writer_t> dw(sqfs_dir_writer_create(dm.get(), 0));
    if (!dw) throw std::bad_alloc();
    sqfs_u16 root_idx;
    check(sqfs_id_table_id_to_index(ids_.get(), 0, &root_idx), "id table");
    write_dir(*r, inode_count_ + 1, im.get(), dw.get());
    super_.root_inode_ref = r->ref;
    check(sqfs_meta_writer_flush(im.get()), "can't write the inode table");
    super_.directory_table_start = file_.size;
    check(sqfs_meta_writer_flush(dm.get()), "can't write the directory table");
    check(sqfs_meta_write_write_to_file(dm.get()), "can't write the directory table");
    check(sqfs_frag_table_write(frags_.get(), &file_.base, &super_, cmp_.get()), "can't write the fragment table");
    check(sqfs_id_table_write(ids_.get(), &file_.base, &super_, cmp_.get()), "can't write the id table");
    if (xwr_ && have_xattrs_) {
      check(sqfs_xattr_writer_flush(xwr_.get(), &file_.base, &super_, cmp_.get()), "can't write the xattr table");
    } else {
      super_.flags |= SQFS_FLAG_NO_XATTRS;
    }
    super_.inode_count = inode_count_;
    super_.bytes_used = file_.size;
    // Pad to 4 KiB, as loop devices want whole blocks.
    if (const sqfs_u64 pad = (4096 - file_.size % 4096) % 4096) {
      std::vector<char> zeros(pad, 0);
      check(file_write_at(&file_.base, file_.size, zeros.data(), pad), "can't pad the image");
    }
    check(sqfs_super_write(&super_, &file_.base), "can't write the superblock");
    log::trace("squash: image complete, {} inodes", inode_count_);
    proc_.reset();
    ::fchmod(fd_.get(), 0666 & ~output_umask());
    fd_.reset();
    put_in_place(tmp_, out_);
    committed_ = true;
  }

  std::uint64_t bytes_written() const override { return file_.size; }

private:
  Node* root() { return new_root_ ? new_root_ : root_.get(); }

  void check(int r, const std::string& what) {
    if (r == 0) return;
    if (file_.err) throw SysError(file_.err, fmt::format("{}: {}", out_, what));
    throw Error(fmt::format("{}: {} (libsquashfs error {})", out_, what, r));
  }

  // The node at P, or null; BLOCKED tells whether a non-directory was in
  // the way.
  Node* find(const std::string& p, bool* blocked = nullptr) {
    Node* n = root();
    for (std::size_t i = 0; !p.empty() && i <= p.size();) {
      auto j = p.find('/', i);
      if (j == std::string::npos) j = p.size();
      if (n->kind != Kind::kDir) {
        if (blocked) *blocked = true;
        return nullptr;
      }
      auto it = n->children.find(p.substr(i, j - i));
      if (it == n->children.end()) return nullptr;
      n = it->second.get();
      i = j + 1;
    }
    return n;
  }

  // Directory P, created (0755) where missing.
  Node* make_dirs(const std::string& p) {
    Node* n = root();
    for (std::size_t i = 0; i <= p.size();) {
      auto j = p.find('/', i);
      if (j == std::string::npos) j = p.size();
      const std::string c = p.substr(i, j - i);
      auto& slot = n->children[c];
      if (!slot) {
        slot = std::make_unique<Node>();
        slot->name = c;
      } else if (slot->kind != Kind::kDir) {
        throw Error(fmt::format("parent {:?} is not a directory (a {}): refusing to write through it",
                                p.substr(0, j), member::kind_name(slot->kind)));
      }
      n = slot.get();
      i = j + 1;
    }
    return n;
  }

  void set_xattrs(Node& n, const Member& m) {
    if (!xwr_ || m.xattrs.empty()) return;
    check(sqfs_xattr_writer_begin(xwr_.get(), 0), "xattrs");
    std::size_t added = 0;
    for (const auto& [k, v] : m.xattrs) {
      if (sqfs_xattr_writer_add(xwr_.get(), k.c_str(), v.data(), v.size()) == 0)
        ++added;
      else
        log::verbose("{:?}: extended attribute {:?} not kept", m.path, k);
    }
    sqfs_u32 idx = 0xFFFFFFFF;
    check(sqfs_xattr_writer_end(xwr_.get(), &idx), "xattrs");
    if (added) {
      n.xattr = idx;
      have_xattrs_ = true;
    }
  }

  // Inode numbers, children before parents; hard links share their
  // primary's number.
  void number(Node& d, std::uint32_t& next) {
    for (auto& [name, c] : d.children) {
      if (c->kind == Kind::kDir) {
        number(*c, next);
      } else {
        Node& p = c->primary ? *c->primary : *c;
        if (!p.ino) p.ino = next++;
      }
    }
    d.ino = next++;
  }

  void base_fields(sqfs_inode_generic_t* in, const Node& n, sqfs_u16 type_bits) {
    in->base.mode = static_cast<sqfs_u16>(type_bits | (n.perm & 07777));
    in->base.uid_idx = 0;
    in->base.gid_idx = 0;
    in->base.mod_time = static_cast<sqfs_u32>(n.mtime < 0 ? 0 : n.mtime > 0xFFFFFFFFLL ? 0xFFFFFFFFLL : n.mtime);
    in->base.inode_number = n.ino;
  }

  void write_inode(sqfs_meta_writer_t* im, sqfs_inode_generic_t* in, Node& n) {
    sqfs_u64 block;
    sqfs_u32 offset;
    sqfs_meta_writer_get_position(im, &block, &offset);
    n.ref = (block << 16) | offset;
    check(sqfs_meta_writer_write_inode(im, in), "can't write an inode");
    n.written = true;
  }

  void write_leaf(Node& n, sqfs_meta_writer_t* im) {
    if (n.written) return;
    if (n.kind == Kind::kFile) {
      sqfs_inode_generic_t* in = n.inode;
      if (!in) throw Error(fmt::format("{:?}: file without data", n.name));
      if (n.nlink > 1 || n.xattr != 0xFFFFFFFF) {
        check(sqfs_inode_make_extended(in), "inode");
        in->data.file_ext.nlink = n.nlink;
        if (n.xattr != 0xFFFFFFFF) check(sqfs_inode_set_xattr_index(in, n.xattr), "inode");
      }
      base_fields(in, n, S_IFREG);
      write_inode(im, in, n);
    } else if (n.kind == Kind::kSymlink) {
      const std::size_t len = n.target.size();
      InodePtr in(static_cast<sqfs_inode_generic_t*>(std::calloc(1, sizeof(sqfs_inode_generic_t) + len + 1)));
      if (!in) throw std::bad_alloc();
      in->base.type = SQFS_INODE_SLINK;
      in->data.slink.nlink = n.nlink;
      in->data.slink.target_size = static_cast<sqfs_u32>(len);
      in->payload_bytes_available = static_cast<sqfs_u32>(len + 1);
      in->payload_bytes_used = static_cast<sqfs_u32>(len);
      std::memcpy(in->extra, n.target.data(), len);
      if (n.xattr != 0xFFFFFFFF) check(sqfs_inode_set_xattr_index(in.get(), n.xattr), "inode");
      base_fields(in.get(), n, S_IFLNK);
      write_inode(im, in.get(), n);
    } else {
      throw Error(fmt::format("{:?}: unexpected {}", n.name, member::kind_name(n.kind)));
    }
  }

  void write_dir(Node& d, std::uint32_t parent_ino, sqfs_meta_writer_t* im, sqfs_dir_writer_t* dw) {
    std::size_t subdirs = 0;
    for (auto& [name, c] : d.children) {
      if (c->kind == Kind::kDir) {
        write_dir(*c, d.ino, im, dw);
        ++subdirs;
      } else {
        write_leaf(c->primary ? *c->primary : *c, im);
      }
    }
    check(sqfs_dir_writer_begin(dw, 0), "directory");
    for (auto& [name, c] : d.children) {
      const Node& t = c->primary ? *c->primary : *c;
      const sqfs_u16 type = t.kind == Kind::kDir ? S_IFDIR : t.kind == Kind::kSymlink ? S_IFLNK : S_IFREG;
      if (int r = sqfs_dir_writer_add_entry(dw, name.c_str(), t.ino, t.ref,
                                            static_cast<sqfs_u16>(type | (t.perm & 07777))))
        check(r, fmt::format("can't write directory entry {:?}", name));
    }
    check(sqfs_dir_writer_end(dw), "directory");
    InodePtr in(sqfs_dir_writer_create_inode(dw, 2 + subdirs, d.xattr, parent_ino));
    if (!in) throw std::bad_alloc();
    base_fields(in.get(), d, S_IFDIR);
    write_inode(im, in.get(), d);
  }

  std::string out_;
  std::string tmp_;
  bool xattrs_;
  Fd fd_;
  FdFile file_;
  sqfs_super_t super_{};
  Handle<sqfs_compressor_t> cmp_;
  Handle<sqfs_compressor_t> uncmp_;
  Handle<sqfs_block_writer_t> bw_;
  Handle<sqfs_frag_table_t> frags_;
  Handle<sqfs_id_table_t> ids_;
  Handle<sqfs_xattr_writer_t> xwr_;
  Handle<sqfs_block_processor_t> proc_;
  std::unique_ptr<Node> root_;
  Node* new_root_ = nullptr;
  std::vector<std::unique_ptr<Node>> graveyard_;
  std::uint32_t inode_count_ = 0;
  bool have_xattrs_ = false;
  bool committed_ = false;
};

}  // namespace

bool squash_compressor_known(const std::string& name) { return find_compressor(name) != nullptr; }

int squash_default_level(const std::string& name) {
  const Compressor* c = find_compressor(name);
  return c ? c->level : 0;
}

std::unique_ptr<Sink> squash_sink(const std::string& out, const SquashOptions& o, bool xattrs) {
  return std::make_unique<SquashSink>(out, o, xattrs);
}

}  // namespace chute::sink
