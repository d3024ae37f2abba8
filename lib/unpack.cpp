#include "chute/unpack.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <isa-l/igzip_lib.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>

#include "chute/error.hpp"
#include "chute/sys.hpp"

namespace chute::unpack {

std::atomic<std::uint64_t>& bytes_read() {
  static std::atomic<std::uint64_t> n{0};
  return n;
}

namespace {

constexpr std::size_t kChunk = 1 << 20;

class FileSource final : public ByteSource {
public:
  FileSource(Fd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}
  std::size_t read(char* buf, std::size_t n) override {
    for (;;) {
      const ssize_t got = ::read(fd_.get(), buf, n);
      if (got >= 0) {
        bytes_read().fetch_add(static_cast<std::uint64_t>(got), std::memory_order_relaxed);
        return static_cast<std::size_t>(got);
      }
      if (errno != EINTR) throw SysError(errno, fmt::format("can't read {}", name_));
    }
  }
  bool seek(std::uint64_t offset) override {
    return ::lseek(fd_.get(), static_cast<off_t>(offset), SEEK_SET) >= 0;
  }
  const std::string& name() const override { return name_; }

private:
  Fd fd_;
  std::string name_;
};

class MemorySource final : public ByteSource {
public:
  MemorySource(std::string data, std::string name) : data_(std::move(data)), name_(std::move(name)) {}
  std::size_t read(char* buf, std::size_t n) override {
    n = std::min(n, data_.size() - pos_);
    std::memcpy(buf, data_.data() + pos_, n);
    pos_ += n;
    bytes_read().fetch_add(n, std::memory_order_relaxed);
    return n;
  }
  bool seek(std::uint64_t offset) override {
    if (offset > data_.size()) return false;
    pos_ = offset;
    return true;
  }
  const std::string& name() const override { return name_; }

private:
  std::string data_;
  std::size_t pos_ = 0;
  std::string name_;
};

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

class VerifiedSource final : public ByteSource {
public:
  VerifiedSource(std::unique_ptr<ByteSource> src, oci::Digest d, std::optional<std::uint64_t> size)
      : src_(std::move(src)), digest_(std::move(d)), size_(size), ctx_(EVP_MD_CTX_new()) {
    const EVP_MD* md = digest_.algorithm == "sha512" ? EVP_sha512() : EVP_sha256();
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), md, nullptr) != 1)
      throw Error("can't initialise a message digest");
  }
  std::size_t read(char* buf, std::size_t n) override {
    if (checked_) return 0;
    const std::size_t got = src_->read(buf, n);
    if (got > 0) {
      EVP_DigestUpdate(ctx_.get(), buf, got);
      count_ += got;
      if (size_ && count_ > *size_)
        throw Error(fmt::format("{}: longer than the {} bytes its descriptor says", name(), *size_));
      return got;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_.get(), md, &len);
    std::string hex;
    for (unsigned int i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
    checked_ = true;
    if (hex != digest_.hex)
      throw Error(fmt::format("{}: content does not match its digest (expected {}, found {}:{})",
                              name(), digest_.str(), digest_.algorithm, hex));
    if (size_ && count_ != *size_)
      throw Error(fmt::format("{}: {} bytes, but its descriptor says {}", name(), count_, *size_));
    return 0;
  }
  const std::string& name() const override { return src_->name(); }

private:
  std::unique_ptr<ByteSource> src_;
  oci::Digest digest_;
  std::optional<std::uint64_t> size_;
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx_;
  std::uint64_t count_ = 0;
  bool checked_ = false;
};

struct ArchiveFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveFree>;

// Formats read from untrusted input. Not mtree: an mtree "archive" names
// files of the host that libarchive would then read.
void support_formats(struct archive* a) {
  archive_read_support_format_tar(a);
  archive_read_support_format_gnutar(a);
  archive_read_support_format_cpio(a);
  archive_read_support_format_zip_streamable(a);
  archive_read_support_format_7zip(a);
  archive_read_support_format_iso9660(a);
  archive_read_support_format_xar(a);
  archive_read_support_format_rar(a);
  archive_read_support_format_rar5(a);
  archive_read_support_format_lha(a);
  archive_read_support_format_cab(a);
  archive_read_support_format_warc(a);
  archive_read_support_format_ar(a);
}

std::string la_error(struct archive* a) {
  const char* s = archive_error_string(a);
  return s ? s : "unknown error";
}

// Decompression on its own thread, handing plain bytes over in chunks.
// gzip (most tarballs and image layers) goes through ISA-L's inflate, about
// twice as fast as zlib's; everything else through a libarchive reader of
// the "raw" format with every filter.
class Pipeline {
public:
  explicit Pipeline(ByteSource& src) : src_(src) {
    thread_ = std::thread([this] { produce(); });
  }
  ~Pipeline() {
    {
      std::lock_guard lk(mu_);
      cancel_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // The next chunk (valid until the next call); empty at the end.
  std::span<const char> next() {
    std::unique_lock lk(mu_);
    if (current_.data) free_.push_back(std::move(current_));
    current_ = {};
    cv_.notify_all();
    cv_.wait(lk, [&] { return !full_.empty() || done_; });
    if (!full_.empty()) {
      current_ = std::move(full_.front());
      full_.pop_front();
      cv_.notify_all();
      return {current_.data.get(), current_.len};
    }
    if (error_) std::rethrow_exception(error_);
    return {};
  }

private:
  struct Chunk {
    std::unique_ptr<char[]> data;
    std::size_t len = 0;
  };
  static constexpr std::size_t kQueue = 8;

  static la_ssize_t read_cb(struct archive* a, void* self, const void** buf) {
    auto* p = static_cast<Pipeline*>(self);
    try {
      if (p->cancelled()) {
        archive_set_error(a, ECANCELED, "cancelled");
        return -1;
      }
      *buf = p->in_.data();
      if (p->pending_ > 0) {  // the bytes read to tell gzip from the rest
        return static_cast<la_ssize_t>(std::exchange(p->pending_, 0));
      }
      return static_cast<la_ssize_t>(p->src_.read(p->in_.data(), p->in_.size()));
    } catch (...) {
      p->src_error_ = std::current_exception();
      archive_set_error(a, EIO, "read error");
      return -1;
    }
  }

  bool cancelled() {
    std::lock_guard lk(mu_);
    return cancel_;
  }

  // An empty chunk to fill; no data pointer if cancelled.
  Chunk take() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return full_.size() < kQueue || cancel_; });
    if (cancel_) return {};
    Chunk c;
    if (!free_.empty()) {
      c = std::move(free_.back());
      free_.pop_back();
    } else {
      c.data = std::make_unique_for_overwrite<char[]>(kChunk);
    }
    c.len = 0;
    return c;
  }

  bool push(Chunk& c) {
    std::lock_guard lk(mu_);
    if (cancel_) return false;
    full_.push_back(std::move(c));
    cv_.notify_all();
    return true;
  }

  // Give ST the next bytes of the source: false at its end.
  bool refill(struct inflate_state& st) {
    const std::size_t n = src_.read(in_.data(), in_.size());
    st.next_in = reinterpret_cast<std::uint8_t*>(in_.data());
    st.avail_in = static_cast<std::uint32_t>(n);
    return n > 0;
  }

  void produce_gzip(std::size_t have) {
    struct inflate_state st;
    isal_inflate_init(&st);
    st.crc_flag = ISAL_GZIP;
    st.next_in = reinterpret_cast<std::uint8_t*>(in_.data());
    st.avail_in = static_cast<std::uint32_t>(have);
    Chunk c = take();
    for (;;) {
      if (!c.data) return;
      st.next_out = reinterpret_cast<std::uint8_t*>(c.data.get() + c.len);
      st.avail_out = static_cast<std::uint32_t>(kChunk - c.len);
      const int r = isal_inflate(&st);
      c.len = kChunk - st.avail_out;
      if (r < 0) {
        const char* why = r == ISAL_INCORRECT_CHECKSUM ? "gzip checksum mismatch"
                          : r == ISAL_INVALID_WRAPPER  ? "bad gzip header"
                                                       : "corrupt gzip data";
        throw Error(fmt::format("{}: {}", src_.name(), why));
      }
      if (c.len == kChunk) {
        if (!push(c)) return;
        c = take();
        continue;
      }
      if (st.block_state == ISAL_BLOCK_FINISH) {
        // The end of one gzip member: another may follow (pigz, cat).
        if (st.avail_in == 0 && !refill(st)) break;
        if (st.avail_in < 2 || st.next_in[0] != 0x1f || st.next_in[1] != 0x8b) break;  // trailing bytes
        const auto* next_in = st.next_in;
        const auto avail = st.avail_in;
        isal_inflate_reset(&st);
        st.crc_flag = ISAL_GZIP;
        st.next_in = const_cast<std::uint8_t*>(next_in);
        st.avail_in = avail;
        continue;
      }
      if (st.avail_in == 0) {
        if (!refill(st)) throw Error(fmt::format("{}: truncated gzip data", src_.name()));
        if (cancelled()) return;
      }
    }
    if (c.data && c.len > 0) push(c);
  }

  void produce_archive(std::size_t have) {
    pending_ = have;
    ArchivePtr a(archive_read_new());
    archive_read_support_filter_all(a.get());
    archive_read_support_format_raw(a.get());
    auto fail = [&](const char* what) {
      if (src_error_) std::rethrow_exception(src_error_);
      throw Error(fmt::format("{}: {}: {}", src_.name(), what, la_error(a.get())));
    };
    if (archive_read_open(a.get(), this, nullptr, read_cb, nullptr) != ARCHIVE_OK) fail("can't decompress");
    struct archive_entry* e;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) return;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) fail("can't read");
    Chunk c = take();
    for (;;) {
      if (!c.data) return;
      const void* data;
      std::size_t size;
      la_int64_t off;
      r = archive_read_data_block(a.get(), &data, &size, &off);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) fail("can't decompress");
      const char* d = static_cast<const char*>(data);
      while (size > 0) {
        const std::size_t n = std::min(size, kChunk - c.len);
        std::memcpy(c.data.get() + c.len, d, n);
        c.len += n;
        d += n;
        size -= n;
        if (c.len == kChunk) {
          if (!push(c)) return;
          c = take();
          if (!c.data) return;
        }
      }
    }
    if (c.len > 0) push(c);
  }

  void produce() {
    try {
      in_.resize(kChunk);
      std::size_t have = src_.read(in_.data(), in_.size());
      if (have >= 2 && static_cast<unsigned char>(in_[0]) == 0x1f && static_cast<unsigned char>(in_[1]) == 0x8b)
        produce_gzip(have);
      else
        produce_archive(have);
      // Whatever follows the compressed stream still has to pass a digest
      // check, if the source has one.
      if (!cancelled())
        while (src_.read(in_.data(), in_.size()) > 0) {
        }
    } catch (...) {
      std::lock_guard lk(mu_);
      error_ = std::current_exception();
    }
    std::lock_guard lk(mu_);
    done_ = true;
    cv_.notify_all();
  }

  ByteSource& src_;
  std::vector<char> in_;
  std::size_t pending_ = 0;
  std::exception_ptr src_error_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk> full_;
  std::vector<Chunk> free_;
  Chunk current_;
  std::exception_ptr error_;
  bool done_ = false;
  bool cancel_ = false;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<ByteSource> open_file(const std::string& path, const std::string& name) {
  return std::make_unique<FileSource>(sys::open(path, O_RDONLY), name);
}

std::unique_ptr<ByteSource> from_memory(std::string data, const std::string& name) {
  return std::make_unique<MemorySource>(std::move(data), name);
}

std::unique_ptr<ByteSource> verified(std::unique_ptr<ByteSource> src, const oci::Digest& digest,
                                     std::optional<std::uint64_t> size) {
  return std::make_unique<VerifiedSource>(std::move(src), digest, size);
}

struct Archive::Impl {
  std::unique_ptr<ByteSource> src;
  std::unique_ptr<Pipeline> pipe;
  ArchivePtr a;
  std::vector<char> buf;
  std::exception_ptr cb_error;
  std::uint64_t pos = 0;  // bytes handed to libarchive (non-threaded)
  // Data of the current member.
  std::uint64_t size = 0;
  std::uint64_t done = 0;
  bool data_eof = false;
  std::string current;
  std::uint64_t hole_end = 0;       // zeros up to here, then pend_data
  const void* pend_data = nullptr;  // a block that follows a hole
  std::size_t pend_size = 0;

  static la_ssize_t read_cb(struct archive* a, void* self, const void** out) {
    auto* im = static_cast<Impl*>(self);
    try {
      if (im->pipe) {
        auto s = im->pipe->next();
        *out = s.data();
        return static_cast<la_ssize_t>(s.size());
      }
      const std::size_t n = im->src->read(im->buf.data(), im->buf.size());
      im->pos += n;
      *out = im->buf.data();
      return static_cast<la_ssize_t>(n);
    } catch (...) {
      im->cb_error = std::current_exception();
      archive_set_error(a, EIO, "read error");
      return -1;
    }
  }
  static la_int64_t skip_cb(struct archive*, void* self, la_int64_t request) {
    auto* im = static_cast<Impl*>(self);
    if (im->pipe || request <= 0) return 0;
    if (!im->src->seek(im->pos + static_cast<std::uint64_t>(request))) return 0;
    im->pos += static_cast<std::uint64_t>(request);
    return request;
  }

  [[noreturn]] void fail(const std::string& what) {
    if (cb_error) std::rethrow_exception(cb_error);
    throw Error(fmt::format("{}: {}: {}", src->name(), what, la_error(a.get())));
  }
};

Archive::Archive(std::unique_ptr<ByteSource> src, bool threaded) : impl_(std::make_unique<Impl>()) {
  Impl& im = *impl_;
  im.src = std::move(src);
  im.a.reset(archive_read_new());
  support_formats(im.a.get());
  if (threaded) {
    im.pipe = std::make_unique<Pipeline>(*im.src);
  } else {
    archive_read_support_filter_all(im.a.get());
    im.buf.resize(1 << 16);
    archive_read_set_skip_callback(im.a.get(), Impl::skip_cb);
  }
  archive_read_set_read_callback(im.a.get(), Impl::read_cb);
  archive_read_set_callback_data(im.a.get(), &im);
  if (archive_read_open1(im.a.get()) != ARCHIVE_OK) im.fail("not an archive libarchive can read");
}

Archive::~Archive() = default;

const std::string& Archive::name() const { return impl_->src->name(); }

bool Archive::next(RawMember& m) {
  Impl& im = *impl_;
  struct archive_entry* e;
  const int r = archive_read_next_header(im.a.get(), &e);
  if (r == ARCHIVE_EOF) return false;
  if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
    if (im.current.empty()) im.fail("not an archive libarchive can read");
    im.fail(fmt::format("after member {:?}", im.current));
  }
  const char* name = archive_entry_pathname(e);
  if (!name) im.fail("member without a name");
  m = RawMember{};
  m.name = name;
  im.current = m.name;
  m.perm = archive_entry_perm(e);
  m.mtime = archive_entry_mtime(e);
  m.size = archive_entry_size_is_set(e) ? static_cast<std::uint64_t>(archive_entry_size(e)) : 0;
  if (const char* h = archive_entry_hardlink(e)) {
    m.kind = member::Kind::kHardlink;
    m.link = h;
    m.size = 0;
  } else {
    switch (archive_entry_filetype(e)) {
      case AE_IFREG: m.kind = member::Kind::kFile; break;
      case AE_IFDIR: m.kind = member::Kind::kDir; m.size = 0; break;
      case AE_IFLNK:
        m.kind = member::Kind::kSymlink;
        m.link = archive_entry_symlink(e) ? archive_entry_symlink(e) : "";
        m.size = 0;
        break;
      case AE_IFCHR:
      case AE_IFBLK: m.kind = member::Kind::kDevice; break;
      case AE_IFIFO: m.kind = member::Kind::kFifo; break;
      case AE_IFSOCK: m.kind = member::Kind::kSocket; break;
      default:
        throw Error(fmt::format("{}: member {:?}: unknown file type", im.src->name(), m.name));
    }
  }
  if (archive_entry_xattr_reset(e) > 0) {
    const char* k;
    const void* v;
    std::size_t vs;
    while (archive_entry_xattr_next(e, &k, &v, &vs) == ARCHIVE_OK)
      m.xattrs.emplace_back(k, std::string(static_cast<const char*>(v), vs));
  }
  im.size = m.kind == member::Kind::kFile ? m.size : 0;
  im.done = 0;
  im.data_eof = m.kind != member::Kind::kFile;
  im.hole_end = 0;
  im.pend_data = nullptr;
  im.pend_size = 0;
  return true;
}

std::span<const char> Archive::data() {
  static const std::vector<char> kZeros(1 << 16, 0);
  Impl& im = *impl_;
  auto zeros_until = [&](std::uint64_t end) {
    const auto z = static_cast<std::size_t>(std::min<std::uint64_t>(end - im.done, kZeros.size()));
    im.done += z;
    return std::span<const char>(kZeros.data(), z);
  };
  for (;;) {
    if (im.done < im.hole_end) return zeros_until(im.hole_end);
    if (im.pend_data) {
      std::span<const char> s(static_cast<const char*>(im.pend_data), im.pend_size);
      im.done += im.pend_size;
      im.pend_data = nullptr;
      return s;
    }
    if (im.data_eof) {
      // A hole at the end of a sparse file.
      if (im.done < im.size) return zeros_until(im.size);
      return {};
    }
    const void* d;
    std::size_t n;
    la_int64_t off;
    const int r = archive_read_data_block(im.a.get(), &d, &n, &off);
    if (r == ARCHIVE_EOF) {
      im.data_eof = true;
      continue;
    }
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) im.fail(fmt::format("member {:?}", im.current));
    const auto offset = static_cast<std::uint64_t>(off);
    if (offset > im.done) {
      // A hole in a sparse file: zeros first, then this block.
      im.hole_end = offset;
      im.pend_data = d;
      im.pend_size = n;
      continue;
    }
    im.done += n;
    return {static_cast<const char*>(d), n};
  }
}

std::string Archive::slurp(std::size_t limit) {
  std::string out;
  for (auto s = data(); !s.empty(); s = data()) {
    if (out.size() + s.size() > limit)
      throw Error(fmt::format("{}: member {:?} is larger than {} bytes", name(), impl_->current, limit));
    out.append(s.data(), s.size());
  }
  return out;
}

void Archive::drain() {
  Impl& im = *impl_;
  if (im.pipe) {
    while (!im.pipe->next().empty()) {
    }
  } else {
    while (im.src->read(im.buf.data(), im.buf.size()) > 0) {
    }
  }
}

std::int64_t Archive::header_offset() const { return archive_read_header_position(impl_->a.get()); }

bool Archive::uncompressed() const {
  return !impl_->pipe && archive_filter_count(impl_->a.get()) == 1 &&
         archive_filter_code(impl_->a.get(), 0) == ARCHIVE_FILTER_NONE;
}

namespace {

// The data of one member of an archive, as a byte source.
class MemberSource final : public ByteSource {
public:
  MemberSource(std::unique_ptr<Archive> a, std::string name) : a_(std::move(a)), name_(std::move(name)) {}
  std::size_t read(char* buf, std::size_t n) override {
    std::size_t got = 0;
    while (got < n) {
      if (left_.empty()) {
        if (eof_) break;
        left_ = a_->data();
        if (left_.empty()) {
          eof_ = true;
          break;
        }
      }
      const std::size_t k = std::min(n - got, left_.size());
      std::memcpy(buf + got, left_.data(), k);
      left_ = left_.subspan(k);
      got += k;
    }
    return got;
  }
  const std::string& name() const override { return name_; }

private:
  std::unique_ptr<Archive> a_;
  std::string name_;
  std::span<const char> left_;
  bool eof_ = false;
};

}  // namespace

std::unique_ptr<ByteSource> open_member(const std::string& path, const std::string& name,
                                        const std::string& member, std::int64_t offset) {
  auto src = open_file(path, name);
  if (offset > 0 && !src->seek(static_cast<std::uint64_t>(offset)))
    throw SysError(errno, fmt::format("can't seek in {}", name));
  auto a = std::make_unique<Archive>(std::move(src), false);
  RawMember m;
  while (a->next(m)) {
    if (member::strip_dot_slash(m.name) == member) {
      if (m.kind != member::Kind::kFile)
        throw Error(fmt::format("{}: member {:?} is a {}, not a file", name, member,
                                member::kind_name(m.kind)));
      return std::make_unique<MemberSource>(std::move(a), fmt::format("{}: {}", name, member));
    }
    if (offset > 0) break;  // the member should have been right there
  }
  throw Error(fmt::format("{}: no member {:?}", name, member));
}

}  // namespace chute::unpack
