#include "chute/squash.hpp"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/core.h>
#include <memory>
#include <vector>

#include "chute/error.hpp"
#include "chute/sys.hpp"

#include <libdeflate.h>
#include <zstd.h>

extern "C" {
#include <squashfuse/squashfuse.h>
}

namespace chute::squash {

namespace {

constexpr size_t kSuperSize = sizeof(struct squashfs_super_block);

std::string compression_name(int type) {
  switch (type) {
    case ZLIB_COMPRESSION: return "gzip";
    case LZMA_COMPRESSION: return "lzma";
    case LZO_COMPRESSION: return "lzo";
    case XZ_COMPRESSION: return "xz";
    case LZ4_COMPRESSION: return "lz4";
    case ZSTD_COMPRESSION: return "zstd";
    default: return fmt::format("unknown ({})", type);
  }
}

bool compression_supported(int type) {
  sqfs_compression_type types[SQFS_COMP_MAX];
  sqfs_compression_supported(types);
  for (int i = 0; i < SQFS_COMP_MAX; ++i) {
    if (types[i] == SQFS_COMP_UNKNOWN) break;
    if (types[i] == type) return true;
  }
  return false;
}

[[noreturn]] void bad(std::string_view name, std::string_view why) {
  throw Error(fmt::format("invalid SquashFS image: {}: {}", name, why));
}

int to_errno(sqfs_err e) {
  switch (e) {
    case SQFS_OK: return 0;
    case SQFS_UNSUP: return EOPNOTSUPP;
    default: return EIO;
  }
}

// libsquashfuse follows a metadata reference (a block's position in a
// table, an offset in its decompressed bytes) without checking that the
// offset lies inside the block: a corrupt reference makes it copy from
// beyond the block. Check it first; the block is then in the cache for the
// read that follows.
bool md_ref_ok(sqfs* fs, uint64_t table, uint64_t block, uint64_t offset) {
  auto pos = static_cast<sqfs_off_t>(table + block);
  sqfs_block* b = nullptr;
  return sqfs_md_cache(fs, &pos, &b) == SQFS_OK && offset < b->size;
}

sqfs_err get_inode(sqfs* fs, sqfs_inode& inode, InodeId id) {
  if (!md_ref_ok(fs, fs->sb.inode_table_start, id >> 16, id & 0xffff)) return SQFS_ERR;
  return sqfs_inode_get(fs, &inode, id);
}

// The same for a directory's listing (an empty one, 3 bytes by the format's
// count, is never read and may point just past its table's last block).
bool listing_ok(sqfs* fs, const sqfs_inode& dir) {
  return dir.xtra.dir.dir_size <= 3 ||
         md_ref_ok(fs, fs->sb.directory_table_start, dir.xtra.dir.start_block,
                   dir.xtra.dir.offset);
}

// libsquashfuse reads the id table at any index it is given: a corrupt
// inode's index must name an entry of the table, inside its block.
bool id_ok(sqfs* fs, uint16_t idx) {
  if (idx >= fs->sb.no_ids) return false;
  const uint64_t at = uint64_t{idx} * sizeof(uint32_t);
  return md_ref_ok(fs, 0, fs->id_table.blocks[at / SQUASHFS_METADATA_SIZE],
                   at % SQUASHFS_METADATA_SIZE + sizeof(uint32_t) - 1);
}

// The same for an entry of the fragment table.
bool frag_ok(sqfs* fs, uint32_t idx) {
  if (idx >= fs->sb.fragments) return false;
  const uint64_t at = uint64_t{idx} * sizeof(struct squashfs_fragment_entry);
  return md_ref_ok(fs, 0, fs->frag_table.blocks[at / SQUASHFS_METADATA_SIZE],
                   at % SQUASHFS_METADATA_SIZE + sizeof(struct squashfs_fragment_entry) - 1);
}

// libsquashfuse copies a directory entry's name into the caller's buffer at
// the length the entry gives (16 bits, so up to 64 KiB), not the format's
// limit of 256 bytes that sqfs_name holds: give it room for any length, per
// thread, and refuse names over the limit.
char* name_buffer() {
  thread_local const std::unique_ptr<char[]> buf(new char[(1u << 16) + 1]);
  return buf.get();
}

// A long directory's index (after its inode) names the first entry of each
// block of its listing; lookups copy those names into the same buffer at
// the length the index gives (32 bits): check each is within the limit.
bool index_ok(sqfs* fs, const sqfs_inode& dir) {
  sqfs_md_cursor cur = dir.next;
  for (size_t i = 0; i < dir.xtra.dir.idx_count; ++i) {
    struct squashfs_dir_index idx;
    if (sqfs_md_read(fs, &cur, &idx, sizeof idx) != SQFS_OK || idx.size >= SQUASHFS_NAME_LEN ||
        sqfs_md_read(fs, &cur, nullptr, idx.size + 1) != SQFS_OK)
      return false;
  }
  return true;
}

// IDS_OK: how many of the id table's first entries id_ok() accepted (checked
// once, when the handle opens).
void fill_stat(sqfs* fs, const sqfs_inode& inode, struct stat& st, uint32_t ids_ok) {
  std::memset(&st, 0, sizeof st);
  st.st_mode = inode.base.mode | sqfs_mode(inode.base.inode_type);
  st.st_nlink = static_cast<nlink_t>(inode.nlink);
  st.st_ino = inode.base.inode_number;
  st.st_mtim.tv_sec = inode.base.mtime;
  st.st_ctim = st.st_atim = st.st_mtim;
  sqfs_id_t id = 0;
  if (inode.base.uid < ids_ok && sqfs_id_get(fs, inode.base.uid, &id) == SQFS_OK)
    st.st_uid = id;
  if (inode.base.guid < ids_ok && sqfs_id_get(fs, inode.base.guid, &id) == SQFS_OK)
    st.st_gid = id;
  st.st_blksize = static_cast<blksize_t>(fs->sb.block_size);
  if (S_ISREG(st.st_mode)) {
    st.st_size = static_cast<off_t>(inode.xtra.reg.file_size);
    st.st_blocks = (st.st_size + 511) / 512;
  } else if (S_ISLNK(st.st_mode)) {
    st.st_size = static_cast<off_t>(inode.xtra.symlink_size);
  } else if (S_ISDIR(st.st_mode)) {
    st.st_size = inode.xtra.dir.dir_size;
  } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    st.st_rdev = makedev(static_cast<unsigned>(inode.xtra.dev.major),
                         static_cast<unsigned>(inode.xtra.dev.minor));
  }
}

// Faster decompressors than libsquashfuse's own, for the two common
// compressions: libdeflate for gzip (2-3 times zlib's speed), and a zstd
// context kept per thread instead of one made for every block.
sqfs_err gzip_decompress(void* in, size_t insz, void* out, size_t* outsz) {
  thread_local std::unique_ptr<libdeflate_decompressor, void (*)(libdeflate_decompressor*)> d(
      libdeflate_alloc_decompressor(), libdeflate_free_decompressor);
  if (!d) return SQFS_ERR;
  size_t got = 0;
  if (libdeflate_zlib_decompress(d.get(), in, insz, out, *outsz, &got) != LIBDEFLATE_SUCCESS)
    return SQFS_ERR;
  *outsz = got;
  return SQFS_OK;
}

sqfs_err zstd_decompress(void* in, size_t insz, void* out, size_t* outsz) {
  thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> d(ZSTD_createDCtx(),
                                                                    ZSTD_freeDCtx);
  if (!d) return SQFS_ERR;
  size_t got = ZSTD_decompressDCtx(d.get(), out, *outsz, in, insz);
  if (ZSTD_isError(got)) return SQFS_ERR;
  *outsz = got;
  return SQFS_OK;
}

}  // namespace

Info check_fd(int fd, std::string_view name) {
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    throw SysError(e, fmt::format("can't stat image: {}", name));
  }
  struct squashfs_super_block sb;
  ssize_t n = ::pread(fd, &sb, sizeof sb, 0);
  if (n < 0) {
    int e = errno;
    throw SysError(e, fmt::format("can't read image: {}", name));
  }
  if (static_cast<size_t>(n) < kSuperSize)
    bad(name, fmt::format("truncated: {} bytes, shorter than a superblock", n));
  if (sb.s_magic != SQUASHFS_MAGIC) bad(name, "no SquashFS magic number");
  if (sb.s_major != 4 || sb.s_minor != 0)
    bad(name, fmt::format("SquashFS version {}.{}, only 4.0 is supported", sb.s_major, sb.s_minor));
  if (!compression_supported(sb.compression))
    bad(name, fmt::format("unsupported compression: {}", compression_name(sb.compression)));
  if (sb.block_size < 4096 || sb.block_size > (1u << 20) ||
      (sb.block_size & (sb.block_size - 1)) != 0 || sb.block_log > 20 ||
      (1u << sb.block_log) != sb.block_size)
    bad(name, fmt::format("corrupt superblock: block size {}", sb.block_size));
  if (sb.bytes_used > static_cast<uint64_t>(st.st_size))
    bad(name, fmt::format("truncated: the file has {} bytes, the image {}", st.st_size,
                          sb.bytes_used));
  // Every table lies after the superblock and inside the image. (Position
  // 0 matters beyond tidiness: libsquashfuse's block caches take it for an
  // empty slot, and a read there dereferences a null block.)
  auto placed = [&](uint64_t start) { return start >= kSuperSize && start < sb.bytes_used; };
  for (uint64_t start : {sb.inode_table_start, sb.directory_table_start, sb.id_table_start})
    if (!placed(start)) bad(name, "corrupt superblock: a table lies outside the image");
  const auto kNone = static_cast<uint64_t>(SQUASHFS_INVALID_BLK);
  if ((sb.fragments > 0 && !placed(sb.fragment_table_start)) ||
      (sb.lookup_table_start != kNone && !placed(sb.lookup_table_start)) ||
      (sb.xattr_id_table_start != kNone && !placed(sb.xattr_id_table_start)))
    bad(name, "corrupt superblock: a table lies outside the image");

  // The id and fragment tables are read through an index of the positions
  // of their metadata blocks, which libsquashfuse follows unchecked.
  auto check_index = [&](uint64_t start, uint64_t entries, size_t each, std::string_view table) {
    const uint64_t blocks = (entries * each + SQUASHFS_METADATA_SIZE - 1) / SQUASHFS_METADATA_SIZE;
    if (blocks * sizeof(uint64_t) > sb.bytes_used - start)
      bad(name, fmt::format("corrupt: the {} table's index overruns the image", table));
    std::vector<uint64_t> index(blocks);
    const auto len = static_cast<ssize_t>(blocks * sizeof(uint64_t));
    if (::pread(fd, index.data(), len, static_cast<off_t>(start)) != len)
      bad(name, fmt::format("can't read its {} table", table));
    for (uint64_t at : index)
      if (!placed(at)) bad(name, fmt::format("corrupt: the {} table points outside the image", table));
  };
  check_index(sb.id_table_start, sb.no_ids, sizeof(uint32_t), "id");
  if (sb.fragments > 0)
    check_index(sb.fragment_table_start, sb.fragments, sizeof(struct squashfs_fragment_entry),
                "fragment");

  // The inode and directory tables are chains of metadata blocks, each with
  // a two-byte header giving its stored size (at most 8 KiB): walk both
  // chains to their ends, which catches most corruption of the tables
  // without decompressing them.
  auto walk = [&](uint64_t start, uint64_t end, std::string_view table) {
    if (end < start || end > sb.bytes_used)
      bad(name, fmt::format("corrupt superblock: the {} table has no end", table));
    std::vector<unsigned char> buf(end - start);
    ssize_t got = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(start));
    if (got != static_cast<ssize_t>(buf.size())) bad(name, fmt::format("can't read its {} table", table));
    size_t at = 0;
    while (at < buf.size()) {
      if (at + 2 > buf.size()) bad(name, fmt::format("corrupt: the {} table is cut short", table));
      unsigned hdr = buf[at] | (buf[at + 1] << 8);
      unsigned size = hdr & 0x7fff;
      if (size == 0 || size > 8192)
        bad(name, fmt::format("corrupt: bad metadata block in the {} table at byte {}", table,
                              start + at));
      at += 2 + size;
    }
    if (at != buf.size()) bad(name, fmt::format("corrupt: the {} table overruns its end", table));
  };
  uint64_t after_dirs = sb.bytes_used;
  for (uint64_t t : {sb.fragment_table_start, sb.lookup_table_start, sb.id_table_start,
                     sb.xattr_id_table_start})
    if (t > sb.directory_table_start && t < after_dirs) after_dirs = t;
  walk(sb.inode_table_start, sb.directory_table_start, "inode");
  walk(sb.directory_table_start, after_dirs, "directory");

  Info info;
  info.compression = compression_name(sb.compression);
  info.block_size = sb.block_size;
  info.inodes = sb.inodes;
  info.bytes_used = sb.bytes_used;
  info.has_xattrs = sb.xattr_id_table_start != static_cast<uint64_t>(SQUASHFS_INVALID_BLK);

  // Read the tables and the root directory, as serving will.
  Reader r(fd, name);
  if (!r.ok()) bad(name, "corrupt: can't read its tables");
  struct stat root;
  if (r.stat(r.root(), root) != 0) bad(name, "corrupt: can't read the root directory");
  if (!S_ISDIR(root.st_mode)) bad(name, "corrupt: the root is not a directory");
  int err = r.readdir(r.root(), 0, [](std::string_view, InodeId, mode_t, off_t) { return true; });
  if (err != 0) bad(name, "corrupt: can't list the root directory");
  return info;
}

Info check(const std::string& path) {
  Fd fd = sys::open(path, O_RDONLY);
  return check_fd(fd.get(), path);
}

Reader::Reader(int fd, std::string_view) {
  auto* fs = new sqfs;
  // A failed sqfs_init has already released what it set up (it calls
  // sqfs_destroy itself): destroying again would free its caches twice.
  // Neither that nor sqfs_destroy frees the xattr id table's index; freeing
  // it here is safe either way (a freed table's pointer is left null).
  if (sqfs_init(fs, fd, 0) != SQFS_OK) {
    sqfs_table_destroy(&fs->xattr_table);
    delete fs;
    return;
  }
  // chute's server keeps decompressed data blocks in one cache shared by
  // its threads; each handle's own cache of them (several blocks of up to
  // 1 MiB) would only duplicate it. Its size is public (cache.h), and the
  // cache is empty until first used: keep one entry.
  if (fs->data_cache.count > 1) fs->data_cache.count = 1;
  if (fs->sb.compression == ZLIB_COMPRESSION) fs->decompressor = gzip_decompress;
  if (fs->sb.compression == ZSTD_COMPRESSION) fs->decompressor = zstd_decompress;
  // The id table is small: check its entries once, not at every stat.
  while (ids_ok_ < fs->sb.no_ids && ids_ok_ <= 0xffff && id_ok(fs, static_cast<uint16_t>(ids_ok_)))
    ++ids_ok_;
  fs_ = fs;
}

// A directory's listing and index are checked once per handle: lookups in
// a large directory would otherwise walk its index twice.
bool Reader::dir_ok(InodeId id, const sqfs_inode& inode, bool index) {
  auto& checked = index ? indexed_ : listed_;
  if (checked.count(id)) return true;
  if (!listing_ok(fs_, inode) || (index && !index_ok(fs_, inode))) return false;
  checked.insert(id);
  return true;
}

Reader::~Reader() {
  if (fs_ != nullptr) {
    sqfs_destroy(fs_);
    sqfs_table_destroy(&fs_->xattr_table);
    delete fs_;
  }
}

InodeId Reader::root() const { return sqfs_inode_root(fs_); }

bool Reader::has_xattrs() const {
  return fs_->sb.xattr_id_table_start != static_cast<uint64_t>(SQUASHFS_INVALID_BLK);
}

int Reader::stat(InodeId id, struct stat& st) {
  sqfs_inode inode;
  if (sqfs_err e = get_inode(fs_, inode, id); e != SQFS_OK) return to_errno(e);
  fill_stat(fs_, inode, st, ids_ok_);
  return 0;
}

int Reader::lookup(InodeId dir, std::string_view name, InodeId& found, struct stat& st) {
  sqfs_inode inode;
  if (sqfs_err e = get_inode(fs_, inode, dir); e != SQFS_OK) return to_errno(e);
  if (!S_ISDIR(inode.base.mode | sqfs_mode(inode.base.inode_type))) return ENOTDIR;
  if (!dir_ok(dir, inode, true)) return EIO;
  sqfs_dir_entry entry;
  sqfs_dentry_init(&entry, name_buffer());
  bool ok = false;
  if (sqfs_err e = sqfs_dir_lookup(fs_, &inode, name.data(), name.size(), &entry, &ok);
      e != SQFS_OK)
    return to_errno(e);
  if (!ok) return ENOENT;
  found = sqfs_dentry_inode(&entry);
  return stat(found, st);
}

int Reader::readdir(InodeId dir, off_t offset,
                    const std::function<bool(std::string_view, InodeId, mode_t, off_t)>& fn) {
  sqfs_inode inode;
  if (sqfs_err e = get_inode(fs_, inode, dir); e != SQFS_OK) return to_errno(e);
  if (!S_ISDIR(inode.base.mode | sqfs_mode(inode.base.inode_type))) return ENOTDIR;
  if (!dir_ok(dir, inode, false)) return EIO;
  sqfs_dir d;
  if (sqfs_err e = sqfs_dir_open(fs_, &inode, &d, offset); e != SQFS_OK) return to_errno(e);
  sqfs_dir_entry entry;
  sqfs_dentry_init(&entry, name_buffer());
  sqfs_err err = SQFS_OK;
  while (sqfs_dir_next(fs_, &d, &entry, &err)) {
    if (sqfs_dentry_name_size(&entry) > SQUASHFS_NAME_LEN) return EIO;
    std::string_view n(sqfs_dentry_name(&entry), sqfs_dentry_name_size(&entry));
    if (!fn(n, sqfs_dentry_inode(&entry), sqfs_dentry_mode(&entry),
            sqfs_dentry_next_offset(&entry)))
      return 0;
  }
  return to_errno(err);
}

int Reader::read(InodeId id, off_t offset, size_t size, char* buf, size_t& got) {
  sqfs_inode inode;
  if (sqfs_err e = get_inode(fs_, inode, id); e != SQFS_OK) return to_errno(e);
  if (!S_ISREG(inode.base.mode | sqfs_mode(inode.base.inode_type))) return EISDIR;
  // libsquashfuse copies a file's tail from its fragment block at the offset
  // and length the inode gives, unchecked, and reads blocks at any position:
  // a corrupt image must not make it read outside what it decompressed.
  const uint64_t fsize = inode.xtra.reg.file_size;
  const bool has_frag = inode.xtra.reg.frag_idx != SQUASHFS_INVALID_FRAG;
  if (has_frag && fsize % fs_->sb.block_size != 0) {
    if (!frag_ok(fs_, inode.xtra.reg.frag_idx)) return EIO;
    struct squashfs_fragment_entry frag;
    if (sqfs_frag_entry(fs_, &frag, inode.xtra.reg.frag_idx) != SQFS_OK) return EIO;
    const uint64_t stored = frag.size & ~uint32_t{SQUASHFS_COMPRESSED_BIT_BLOCK};
    if (frag.start_block < kSuperSize || frag.start_block >= fs_->sb.bytes_used ||
        stored > fs_->sb.block_size || stored > fs_->sb.bytes_used - frag.start_block)
      return EIO;
    size_t foff = 0, flen = 0;
    sqfs_block* block = nullptr;
    if (sqfs_frag_block(fs_, &inode, &foff, &flen, &block) != SQFS_OK || block == nullptr ||
        foff + flen > block->size)
      return EIO;
  }
  if ((fsize >= fs_->sb.block_size || !has_frag) && fsize > 0 &&
      (inode.xtra.reg.start_block < kSuperSize || inode.xtra.reg.start_block >= fs_->sb.bytes_used))
    return EIO;
  sqfs_off_t n = static_cast<sqfs_off_t>(size);
  if (sqfs_err e = sqfs_read_range(fs_, &inode, offset, &n, buf); e != SQFS_OK) return to_errno(e);
  got = static_cast<size_t>(n);
  return 0;
}

int Reader::readlink(InodeId id, std::string& target) {
  sqfs_inode inode;
  if (sqfs_err e = get_inode(fs_, inode, id); e != SQFS_OK) return to_errno(e);
  if (!S_ISLNK(inode.base.mode | sqfs_mode(inode.base.inode_type))) return EINVAL;
  size_t size = 0;
  if (sqfs_err e = sqfs_readlink(fs_, &inode, nullptr, &size); e != SQFS_OK) return to_errno(e);
  target.assign(size + 1, '\0');
  if (sqfs_err e = sqfs_readlink(fs_, &inode, target.data(), &size); e != SQFS_OK)
    return to_errno(e);
  target.resize(std::strlen(target.c_str()));
  return 0;
}

int Reader::listxattr(InodeId id, std::string& names) {
  sqfs_inode inode;
  if (sqfs_err e = get_inode(fs_, inode, id); e != SQFS_OK) return to_errno(e);
  sqfs_xattr x;
  if (sqfs_err e = sqfs_xattr_open(fs_, &inode, &x); e != SQFS_OK) return to_errno(e);
  names.clear();
  while (x.remain > 0) {
    if (sqfs_err e = sqfs_xattr_read(&x); e != SQFS_OK) return to_errno(e);
    size_t len = sqfs_xattr_name_size(&x);
    std::vector<char> buf(len + 1);
    if (sqfs_err e = sqfs_xattr_name(&x, buf.data(), true); e != SQFS_OK) return to_errno(e);
    names.append(buf.data(), len);
    names.push_back('\0');
  }
  return 0;
}

int Reader::getxattr(InodeId id, const char* name, std::string& value) {
  sqfs_inode inode;
  if (sqfs_err e = get_inode(fs_, inode, id); e != SQFS_OK) return to_errno(e);
  size_t size = 0;
  if (sqfs_err e = sqfs_xattr_lookup(fs_, &inode, name, nullptr, &size); e != SQFS_OK)
    return to_errno(e);
  if (size == 0) return ENODATA;
  value.assign(size, '\0');
  if (sqfs_err e = sqfs_xattr_lookup(fs_, &inode, name, value.data(), &size); e != SQFS_OK)
    return to_errno(e);
  return 0;
}

int Reader::statfs(struct statvfs& sv) {
  std::memset(&sv, 0, sizeof sv);
  sv.f_bsize = fs_->sb.block_size;
  sv.f_frsize = fs_->sb.block_size;
  sv.f_blocks = (fs_->sb.bytes_used + fs_->sb.block_size - 1) / fs_->sb.block_size;
  sv.f_files = fs_->sb.inodes;
  sv.f_namemax = SQUASHFS_NAME_LEN;
  sv.f_flag = ST_RDONLY;
  return 0;
}

}  // namespace chute::squash
