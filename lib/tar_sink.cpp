// Tarball output with libarchive: pax format (long names, xattrs), owned by
// root, compressed as the output's name says.

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <string>
#include <thread>
#include <unordered_set>

#include "chute/error.hpp"
#include "chute/fd.hpp"
#include "chute/log.hpp"
#include "chute/sink.hpp"

namespace chute::sink {

namespace {

using member::Kind;
using member::Member;

struct WriteFree {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(struct archive_entry* e) const { archive_entry_free(e); }
};

class TarSink final : public Sink {
public:
  TarSink(std::string out, bool xattrs) : out_(std::move(out)), xattrs_(xattrs) {
    std::string pattern = temp_pattern(out_);
    const int fd = ::mkostemp(pattern.data(), O_CLOEXEC);
    if (fd < 0) throw SysError(errno, fmt::format("can't create a file next to {}", out_));
    fd_ = Fd(fd);
    tmp_ = pattern;
    a_.reset(archive_write_new());
    archive_write_set_format_pax_restricted(a_.get());
    const std::string threads = fmt::format("{}", std::max(1u, std::thread::hardware_concurrency()));
    int r = ARCHIVE_OK;
    if (out_.ends_with(".tar.gz") || out_.ends_with(".tgz")) {
      r = archive_write_add_filter_gzip(a_.get());
    } else if (out_.ends_with(".tar.xz") || out_.ends_with(".txz")) {
      r = archive_write_add_filter_xz(a_.get());
      archive_write_set_filter_option(a_.get(), "xz", "threads", threads.c_str());
    } else if (out_.ends_with(".tar.zst") || out_.ends_with(".tzst")) {
      r = archive_write_add_filter_zstd(a_.get());
      archive_write_set_filter_option(a_.get(), "zstd", "threads", threads.c_str());
    } else if (out_.ends_with(".tar.bz2") || out_.ends_with(".tbz2") || out_.ends_with(".tbz")) {
      r = archive_write_add_filter_bzip2(a_.get());
    } else if (out_.ends_with(".tar.lz4")) {
      r = archive_write_add_filter_lz4(a_.get());
    } else if (out_.ends_with(".tar.lzma")) {
      r = archive_write_add_filter_lzma(a_.get());
    } else if (out_.ends_with(".tar.Z") || out_.ends_with(".taz")) {
      r = archive_write_add_filter_compress(a_.get());
    } else if (!out_.ends_with(".tar")) {
      throw Error(fmt::format("{}: can't tell the compression from the name (use .tar, .tar.gz, "
                              ".tgz, .tar.xz, .tar.zst, .tar.bz2 or .tar.lz4)", out_));
    }
    if (r != ARCHIVE_OK) fail("can't set up compression");
    // Whole blocks, no padding beyond the end-of-archive marker.
    archive_write_set_bytes_in_last_block(a_.get(), 1);
    if (archive_write_open_fd(a_.get(), fd_.get()) != ARCHIVE_OK) fail("can't start writing");
    entry_.reset(archive_entry_new());
  }

  ~TarSink() override {
    if (committed_) return;
    a_.reset();
    fd_.reset();
    ::unlink(tmp_.c_str());
  }

  void add(const Member& m, Data* data) override {
    struct archive_entry* e = entry_.get();
    archive_entry_clear(e);
    std::string name = m.path.empty() ? std::string("./") : m.path;
    if (m.kind == Kind::kDir && !m.path.empty()) name += '/';
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_uname(e, "root");
    archive_entry_set_gname(e, "root");
    archive_entry_set_mtime(e, m.mtime, 0);
    archive_entry_set_perm(e, m.perm);
    switch (m.kind) {
      case Kind::kDir: archive_entry_set_filetype(e, AE_IFDIR); break;
      case Kind::kFile:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, static_cast<la_int64_t>(m.size));
        break;
      case Kind::kSymlink:
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, m.target.c_str());
        break;
      case Kind::kHardlink:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, m.target.c_str());
        archive_entry_set_size(e, 0);
        break;
      default: throw Error(fmt::format("a {} can't be written", member::kind_name(m.kind)));
    }
    if (xattrs_)
      for (const auto& [k, v] : m.xattrs) archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    if (archive_write_header(a_.get(), e) != ARCHIVE_OK) fail(fmt::format("can't write {:?}", m.path));
    std::uint64_t n = 0;
    if (m.kind == Kind::kFile && data) {
      for (auto b = data->next(); !b.empty(); b = data->next()) {
        if (n + b.size() > m.size) throw Error("more data than its size");
        if (archive_write_data(a_.get(), b.data(), b.size()) < 0) fail(fmt::format("can't write {:?}", m.path));
        n += b.size();
      }
      if (n != m.size) throw Error("less data than its size");
    }
    for (std::string p = m.path; !p.empty();) {
      if (!seen_.insert(p).second) break;
      const auto slash = p.rfind('/');
      p = slash == std::string::npos ? std::string() : p.substr(0, slash);
    }
  }

  bool exists(const std::string& p) override { return seen_.count(p) > 0; }

  void set_root(const std::string&) override {
    throw Error("a tarball output can't be unwrapped");
  }

  void commit() override {
    if (archive_write_close(a_.get()) != ARCHIVE_OK) fail("can't finish writing");
    struct stat st;
    if (::fstat(fd_.get(), &st) == 0) size_ = static_cast<std::uint64_t>(st.st_size);
    ::fchmod(fd_.get(), 0666 & ~output_umask());
    fd_.reset();
    put_in_place(tmp_, out_);
    committed_ = true;
  }

  std::uint64_t bytes_written() const override { return size_; }

private:
  [[noreturn]] void fail(const std::string& what) {
    // libarchive's own message is vague ("Write error"): the errno it kept
    // says why (disk full, quota).
    if (const int e = archive_errno(a_.get()); e > 0) throw SysError(e, fmt::format("{}: {}", out_, what));
    const char* s = archive_error_string(a_.get());
    throw Error(fmt::format("{}: {}: {}", out_, what, s ? s : "unknown error"));
  }

  std::string out_;
  std::string tmp_;
  bool xattrs_;
  Fd fd_;
  std::unique_ptr<struct archive, WriteFree> a_;
  std::unique_ptr<struct archive_entry, EntryFree> entry_;
  std::unordered_set<std::string> seen_;
  std::uint64_t size_ = 0;
  bool committed_ = false;
};

}  // namespace

std::unique_ptr<Sink> tar_sink(const std::string& out, bool xattrs) {
  return std::make_unique<TarSink>(out, xattrs);
}

}  // namespace chute::sink
