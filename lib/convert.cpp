#include "chute/convert.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "chute/error.hpp"
#include "chute/flatten.hpp"
#include "chute/log.hpp"
#include "chute/member.hpp"
#include "chute/oci.hpp"
#include "chute/path.hpp"
#include "chute/sys.hpp"
#include "chute/unpack.hpp"
#include "chute/walk.hpp"

namespace chute::convert {

using member::Kind;
using member::Member;

// ---------------------------------------------------------------- formats

std::string_view format_name(Format f) {
  switch (f) {
    case Format::kTar: return "tar";
    case Format::kDocker: return "docker-archive";
    case Format::kOci: return "oci";
    case Format::kDir: return "dir";
    case Format::kSquash: return "squash";
    case Format::kNone: break;
  }
  return "none";
}

Format parse_format(std::string_view s) {
  if (s == "tar") return Format::kTar;
  if (s == "docker-archive" || s == "docker") return Format::kDocker;
  if (s == "oci" || s == "oci-archive" || s == "oci-dir" || s == "oci-layout") return Format::kOci;
  if (s == "dir") return Format::kDir;
  if (s == "squash" || s == "sqfs" || s == "squashfs") return Format::kSquash;
  return Format::kNone;
}

namespace {

// The last component, ignoring trailing slashes.
std::string_view last_name(std::string_view s) {
  while (s.size() > 1 && s.back() == '/') s.remove_suffix(1);
  auto slash = s.rfind('/');
  return slash == std::string_view::npos ? s : s.substr(slash + 1);
}

}  // namespace

Format format_from_name(std::string_view name) {
  const std::string_view n = last_name(name);
  for (auto suf : {".sqfs", ".squash", ".squashfs", ".squishy", ".sqsh"})
    if (n.ends_with(suf)) return Format::kSquash;
  if (n.ends_with(".tar")) return Format::kTar;
  // *.t?z (tgz, txz, tbz ...) and *.tar.? / *.tar.?? (tar.gz, tar.xz, tar.Z ...)
  if (n.size() >= 4 && n[n.size() - 4] == '.' && n[n.size() - 3] == 't' && n.back() == 'z')
    return Format::kTar;
  for (std::size_t k : {1u, 2u})
    if (n.size() > 5 + k && n.substr(n.size() - k - 5, 5) == ".tar.") return Format::kTar;
  // Compressions with longer suffixes than Charliecloud's patterns allow.
  for (auto suf : {".tar.zst", ".tar.bz2", ".tar.lz4", ".tar.lzo", ".tar.lzma"})
    if (n.ends_with(suf)) return Format::kTar;
  if (name.substr(0, 1) == "/" || name.substr(0, 2) == "./" || name.substr(0, 3) == "../") return Format::kDir;
  // A plain name with no extension: a directory (Charliecloud would look
  // for a builder's image of that name; chute has no builder storage).
  if (n.find('.', 1) == std::string_view::npos) return Format::kDir;
  return Format::kNone;
}

// ---------------------------------------------------------------- command line

std::string usage() {
  return "usage: ch-convert [-i FMT] [-o FMT] [OPTION...] IN OUT\n"
         "Try 'ch-convert --help' for more information.\n";
}

std::string help() {
  return fmt::format(
      "usage: ch-convert [-i FMT] [-o FMT] [OPTION...] IN OUT\n"
      "\n"
      "Convert a container image from one form to another, without root.\n"
      "\n"
      "Formats: tar (any tarball: .tar .tar.gz .tgz .tar.xz .tar.zst .tar.bz2 ...),\n"
      "docker-archive (docker/podman save), oci (OCI image layout, directory or tar),\n"
      "dir (directory), squash (SquashFS). Outputs: dir, squash, tar. Inputs are\n"
      "recognised by content, outputs by name (see ch-convert(1)).\n"
      "\n"
      "  -i, --in-fmt FMT            input format (default: detected)\n"
      "  -o, --out-fmt FMT           output format (default: from OUT's name)\n"
      "  -n, --dry-run               say what would be done; convert nothing\n"
      "      --no-clobber            refuse to replace an existing OUT\n"
      "      --no-xattrs             do not copy extended attributes\n"
      "      --squash-compress=ALG[:LEVEL]\n"
      "                              SquashFS compressor: zstd (default, level {}),\n"
      "                              gzip, xz, lz4, lzo\n"
      "      --squash-block-size=SIZE   SquashFS block size (default 128K)\n"
      "  -j, --jobs=N                compression threads (default: one per CPU)\n"
      "  -q, --quiet                 no progress bar or summary (-qq: no warnings)\n"
      "  -v, --verbose               more detail (repeatable)\n"
      "      --tmp DIR               accepted for Charliecloud's scripts; unused\n"
      "  -h, --help                  this help\n"
      "      --version               print the version\n"
      "\n"
      "Exit status: 0 success, 31 error, 128+N interrupted by signal N.\n",
      sink::squash_default_level("zstd"));
}

namespace {

enum LongOnly : int {
  kNoClobber = 256,
  kNoXattrs,
  kXattrs,
  kSquashCompress,
  kSquashBlock,
  kVersion,
  kTmp,
};

std::uint64_t parse_size(const std::string& s, const char* what) {
  std::size_t pos = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(s, &pos, 10);
  } catch (const std::exception&) {
    throw Error(fmt::format("{}: not a size: {:?}", what, s));
  }
  std::string suf = s.substr(pos);
  if (suf == "K" || suf == "k" || suf == "KiB")
    v <<= 10;
  else if (suf == "M" || suf == "m" || suf == "MiB")
    v <<= 20;
  else if (!suf.empty())
    throw Error(fmt::format("{}: not a size: {:?}", what, s));
  return v;
}

}  // namespace

Parsed parse_cli(int argc, char** argv) {
  static const struct option longs[] = {
      {"in-fmt", required_argument, nullptr, 'i'},  // Charliecloud's spellings
      {"out-fmt", required_argument, nullptr, 'o'},
      {"input-fmt", required_argument, nullptr, 'i'},
      {"output-fmt", required_argument, nullptr, 'o'},
      {"tmp", required_argument, nullptr, kTmp},
      {"dry-run", no_argument, nullptr, 'n'},
      {"no-clobber", no_argument, nullptr, kNoClobber},
      {"no-xattrs", no_argument, nullptr, kNoXattrs},
      {"xattrs", no_argument, nullptr, kXattrs},
      {"squash-compress", required_argument, nullptr, kSquashCompress},
      {"squash-block-size", required_argument, nullptr, kSquashBlock},
      {"jobs", required_argument, nullptr, 'j'},
      {"quiet", no_argument, nullptr, 'q'},
      {"verbose", no_argument, nullptr, 'v'},
      {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, kVersion},
      {nullptr, 0, nullptr, 0},
  };
  Parsed p;
  Options& o = p.opts;
  optind = 1;
  opterr = 0;
  for (;;) {
    const int c = getopt_long(argc, argv, "+i:o:nj:qvh", longs, nullptr);
    if (c == -1) break;
    switch (c) {
      case kTmp:
        // Charliecloud's scratch directory: chute writes no temporary files
        // but its output's own temporary name, next to OUT.
        log::debug("--tmp {:?} ignored: no temporary directory is needed", optarg);
        break;
      case 'i':
        // Charliecloud also accepts "-i=FMT".
        if (optarg[0] == '=') ++optarg;
        o.in_fmt = parse_format(optarg);
        if (o.in_fmt == Format::kNone) throw Error(fmt::format("unknown input format {:?}", optarg));
        break;
      case 'o':
        if (optarg[0] == '=') ++optarg;
        o.out_fmt = parse_format(optarg);
        if (o.out_fmt == Format::kNone) throw Error(fmt::format("unknown output format {:?}", optarg));
        if (o.out_fmt == Format::kDocker || o.out_fmt == Format::kOci)
          throw Error(fmt::format("can't write format {:?}: outputs are dir, squash and tar", optarg));
        break;
      case 'n': o.dry_run = true; break;
      case kNoClobber: o.no_clobber = true; break;
      case kNoXattrs: o.xattrs = false; break;
      case kXattrs: o.xattrs = true; break;
      case kSquashCompress: {
        std::string v = optarg;
        const auto colon = v.find(':');
        o.squash.compressor = v.substr(0, colon);
        if (!sink::squash_compressor_known(o.squash.compressor))
          throw Error(fmt::format("unknown SquashFS compressor {:?}", o.squash.compressor));
        if (colon != std::string::npos) {
          const std::uint64_t l = parse_size(v.substr(colon + 1), "--squash-compress level");
          if (l < 1 || l > 22) throw Error(fmt::format("--squash-compress: level {} out of range", l));
          o.squash.level = static_cast<int>(l);
        }
        break;
      }
      case kSquashBlock: {
        const std::uint64_t b = parse_size(optarg, "--squash-block-size");
        if (b < 4096 || b > (1u << 20) || (b & (b - 1)) != 0)
          throw Error(fmt::format("--squash-block-size: {} is not a power of two from 4K to 1M", optarg));
        o.squash.block_size = static_cast<std::uint32_t>(b);
        break;
      }
      case 'j': {
        const std::uint64_t j = parse_size(optarg, "--jobs");
        if (j < 1 || j > 1024) throw Error(fmt::format("--jobs: {:?} out of range", optarg));
        o.squash.jobs = static_cast<unsigned>(j);
        break;
      }
      case 'q': --o.verbosity; break;
      case 'v': ++o.verbosity; break;
      case 'h': p.action = Parsed::Action::kHelp; return p;
      case kVersion: p.action = Parsed::Action::kVersion; return p;
      case '?':
      default:
        if (optopt && optopt < 256)
          throw Error(fmt::format("invalid option -- {:?}", static_cast<char>(optopt)));
        throw Error(fmt::format("unrecognised option {:?}", argv[optind - 1]));
    }
  }
  if (argc - optind != 2)
    throw Error(argc - optind < 2 ? "expected IN and OUT" : "too many arguments (expected IN and OUT)");
  o.in = argv[optind];
  o.out = argv[optind + 1];
  if (o.in.empty() || o.out.empty()) throw Error("IN and OUT must not be empty");
  return p;
}

// ---------------------------------------------------------------- input detection

namespace {

constexpr std::size_t kSmallLimit = 16u << 20;  // JSON documents and other metadata

// Members that mark an image archive rather than a root filesystem.
bool image_marker(const std::string& n) {
  if (n == "manifest.json" || n == "index.json" || n == "oci-layout" || n == "repositories") return true;
  if (n.compare(0, 6, "blobs/") == 0) return true;
  // docker save before 25: "<64 hex>/layer.tar", "<64 hex>.json"
  const auto slash = n.find('/');
  const std::string first = n.substr(0, slash);
  return (first.size() == 64 && oci::is_hex(first)) ||
         (first.size() == 69 && first.ends_with(".json") && oci::is_hex(first.substr(0, 64)));
}

}  // namespace

Format detect_input(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw SysError(errno, fmt::format("can't read {}", path));
  if (S_ISDIR(st.st_mode)) {
    struct stat ol;
    return ::stat((path + "/oci-layout").c_str(), &ol) == 0 ? Format::kOci : Format::kDir;
  }
  if (!S_ISREG(st.st_mode)) throw Error(fmt::format("{}: not a file or directory", path));
  {
    Fd fd = sys::open(path, O_RDONLY);
    char magic[4] = {};
    if (::read(fd.get(), magic, 4) == 4 && std::memcmp(magic, "hsqs", 4) == 0) return Format::kSquash;
  }
  // An archive: look at its first members for the marks of an image.
  unpack::Archive a(unpack::open_file(path, path), false);
  unpack::RawMember m;
  bool docker = false, oci = false;
  int seen = 0;
  bool marked = false;
  while (a.next(m)) {
    const std::string n = member::strip_dot_slash(m.name);
    if (n.empty()) continue;
    if (!image_marker(n)) {
      // A root filesystem: the first member that is not an image mark settles it.
      if (!marked) return Format::kTar;
      continue;
    }
    marked = true;
    if (n == "manifest.json") docker = true;
    if (n == "oci-layout" || n == "index.json") oci = true;
    // Image archives are small in members: read them all (data is skipped,
    // by seeking when the archive is not compressed).
    if (++seen > 100000) break;
  }
  if (docker) return Format::kDocker;
  if (oci) return Format::kOci;
  if (marked) throw Error(fmt::format("{}: looks like an image archive but has neither manifest.json nor index.json", path));
  return Format::kTar;
}

// ---------------------------------------------------------------- signals and progress

namespace {

std::atomic<int> g_signal{0};

void on_signal(int sig) { g_signal.store(sig); }

void check_interrupt() {
  if (const int s = g_signal.load(std::memory_order_relaxed)) throw Interrupted(s);
}

std::string human(double bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000 && u < 4) {
    bytes /= 1000;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} {}", bytes, units[u]) : fmt::format("{:.1f} {}", bytes, units[u]);
}

class Progress {
public:
  explicit Progress(std::uint64_t total)
      : total_(total), tty_(::isatty(STDERR_FILENO) && log::level() >= log::kInfo),
        start_(std::chrono::steady_clock::now()), last_(start_) {}
  ~Progress() { clear(); }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void entry() {
    ++entries_;
    tick();
  }
  void tick() {
    check_interrupt();
    if (!tty_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    draw(now);
  }
  void clear() {
    if (tty_ && drawn_) {
      std::fputs("\r\033[K", stderr);
      std::fflush(stderr);
      drawn_ = false;
    }
  }
  std::uint64_t entries() const { return entries_; }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

private:
  void draw(std::chrono::steady_clock::time_point now) {
    const double secs = std::chrono::duration<double>(now - start_).count();
    const std::uint64_t done = unpack::bytes_read().load(std::memory_order_relaxed);
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    std::string line;
    if (total_ > 0) {
      const double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
      const int width = 24;
      const int fill = static_cast<int>(frac * width);
      line = fmt::format("[{}{}] {:3.0f}% {} of {}", std::string(static_cast<std::size_t>(fill), '#'),
                         std::string(static_cast<std::size_t>(width - fill), ' '), frac * 100,
                         human(static_cast<double>(done)), human(static_cast<double>(total_)));
    } else {
      line = fmt::format("{} read", human(static_cast<double>(done)));
    }
    line += fmt::format(", {} entries, {}/s", entries_, human(rate));
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
    drawn_ = true;
  }

  std::uint64_t total_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_;
  std::uint64_t entries_ = 0;
  bool drawn_ = false;
};

// ---------------------------------------------------------------- members

struct Stats {
  std::uint64_t dropped = 0;
  std::uint64_t neutralised = 0;
  std::uint64_t cleared = 0;
};

class ArchiveData final : public sink::Data {
public:
  ArchiveData(unpack::Archive& a, Progress& p) : a_(a), p_(p) {}
  std::span<const char> next() override {
    p_.tick();
    return a_.data();
  }

private:
  unpack::Archive& a_;
  Progress& p_;
};

class StringData final : public sink::Data {
public:
  explicit StringData(std::string s) : s_(std::move(s)) {}
  std::span<const char> next() override {
    if (done_) return {};
    done_ = true;
    return {s_.data(), s_.size()};
  }

private:
  std::string s_;
  bool done_ = false;
};

class TickData final : public sink::Data {
public:
  TickData(sink::Data* d, Progress& p) : d_(d), p_(p) {}
  std::span<const char> next() override {
    p_.tick();
    return d_->next();
  }

private:
  sink::Data* d_;
  Progress& p_;
};

// Chute's rules for one member read from SOURCE: nullopt if it is dropped.
std::optional<Member> admit(const unpack::RawMember& raw, const std::string& source, Stats& st) {
  std::string why;
  bool neutralised = false;
  auto clean = member::clean_path(raw.name, why, &neutralised);
  if (!clean) throw Error(fmt::format("{}: member {:?}: {}", source, raw.name, why));
  if (neutralised) {
    ++st.neutralised;
    log::verbose("{}: member {:?}: absolute name, written as {:?}", source, raw.name, *clean);
  }
  if (raw.kind == Kind::kDevice || raw.kind == Kind::kFifo || raw.kind == Kind::kSocket) {
    ++st.dropped;
    log::verbose("{}: member {:?}: {} dropped", source, raw.name, member::kind_name(raw.kind));
    return std::nullopt;
  }
  Member m;
  m.path = std::move(*clean);
  m.kind = raw.kind;
  if (m.path.empty() && m.kind != Kind::kDir)
    throw Error(fmt::format("{}: member {:?}: names the image root but is a {}", source, raw.name,
                            member::kind_name(m.kind)));
  m.perm = member::fix_perm(m.kind, raw.perm);
  if (raw.perm & (S_ISUID | S_ISGID)) {
    ++st.cleared;
    log::verbose("{}: member {:?}: setuid/setgid bits cleared", source, raw.name);
  }
  m.mtime = raw.mtime;
  m.size = raw.size;
  m.xattrs = raw.xattrs;
  if (m.kind == Kind::kSymlink) {
    if (raw.link.empty()) throw Error(fmt::format("{}: member {:?}: symlink with an empty target", source, raw.name));
    m.target = raw.link;
  } else if (m.kind == Kind::kHardlink) {
    auto t = member::clean_path(raw.link, why);
    if (!t) throw Error(fmt::format("{}: member {:?}: hard link target {:?}: {}", source, raw.name, raw.link, why));
    if (t->empty()) throw Error(fmt::format("{}: member {:?}: hard link to the image root", source, raw.name));
    if (*t == m.path) throw Error(fmt::format("{}: member {:?}: hard link to itself", source, raw.name));
    m.target = std::move(*t);
  }
  return m;
}

void add_member(sink::Sink& s, const Member& m, sink::Data* d, const std::string& source) {
  try {
    s.add(m, d);
  } catch (const Interrupted&) {
    throw;
  } catch (const SysError& e) {
    throw SysError(e.err(), fmt::format("{}: member {:?}: {}", source, m.path, e.message()));
  } catch (const Error& e) {
    throw Error(fmt::format("{}: member {:?}: {}", source, m.path, e.what()));
  }
}

// ---------------------------------------------------------------- image bundles

// The files of a docker-archive or OCI layout: a directory or an archive.
class Bundle {
public:
  virtual ~Bundle() = default;
  virtual bool has(const std::string& member) = 0;
  virtual std::unique_ptr<unpack::ByteSource> open(const std::string& member) = 0;
  const std::string& name() const { return name_; }

  std::string read_small(const std::string& member, const std::optional<oci::Digest>& d = {},
                         std::optional<std::uint64_t> size = {}) {
    auto src = open(member);
    if (d) src = unpack::verified(std::move(src), *d, size);
    std::string out;
    std::vector<char> buf(1 << 16);
    for (;;) {
      const std::size_t n = src->read(buf.data(), buf.size());
      if (n == 0) break;
      out.append(buf.data(), n);
      if (out.size() > kSmallLimit) throw Error(fmt::format("{}: {} is too large", name_, member));
    }
    return out;
  }

protected:
  std::string name_;
};

class DirBundle final : public Bundle {
public:
  explicit DirBundle(std::string dir) : dir_(std::move(dir)) { name_ = dir_; }
  bool has(const std::string& m) override { return sys::try_stat(dir_ + "/" + m).has_value(); }
  std::unique_ptr<unpack::ByteSource> open(const std::string& m) override {
    if (!has(m)) throw Error(fmt::format("{}: {} is missing", name_, m));
    return unpack::open_file(dir_ + "/" + m, fmt::format("{}: {}", name_, m));
  }

private:
  std::string dir_;
};

class ArchiveBundle final : public Bundle {
public:
  explicit ArchiveBundle(std::string path) : path_(std::move(path)) {
    name_ = path_;
    unpack::Archive a(unpack::open_file(path_, path_), false);
    unpack::RawMember m;
    std::size_t cached = 0;
    while (a.next(m)) {
      check_interrupt();
      const std::string n = member::strip_dot_slash(m.name);
      if (m.kind != Kind::kFile) continue;
      Entry e{a.uncompressed() ? a.header_offset() : -1, std::nullopt};
      if (m.size <= (4u << 20) && cached + m.size <= (64u << 20)) {
        e.data = a.slurp(4u << 20);
        cached += m.size;
      }
      entries_[n] = std::move(e);
    }
    unpack::bytes_read().store(0);
  }
  bool has(const std::string& m) override { return entries_.count(m) > 0; }
  std::unique_ptr<unpack::ByteSource> open(const std::string& m) override {
    auto it = entries_.find(m);
    if (it == entries_.end()) throw Error(fmt::format("{}: no member {:?}", name_, m));
    const std::string name = fmt::format("{}: {}", name_, m);
    if (it->second.data) return unpack::from_memory(*it->second.data, name);
    return unpack::open_member(path_, path_, m, it->second.offset);
  }

private:
  struct Entry {
    std::int64_t offset;               // of its header, or -1: scan for it
    std::optional<std::string> data;   // small members, read once here
  };
  std::string path_;
  std::map<std::string, Entry> entries_;
};

struct Layer {
  std::string path;                    // in the bundle
  std::optional<oci::Digest> digest;   // checked when set
  std::optional<std::uint64_t> size;
};

struct Image {
  oci::ImageConfig config;
  std::vector<Layer> layers;
};

std::string bundle_path(const Bundle& b, const std::string& raw, const char* what) {
  std::string why;
  auto p = member::clean_path(raw, why);
  if (!p || p->empty() || (!raw.empty() && raw.front() == '/'))
    throw Error(fmt::format("{}: {} {:?} is not a path inside the archive{}", b.name(), what, raw,
                            why.empty() ? "" : ": " + why));
  return *p;
}

Image load_image_of(Bundle& b);

// Errors about the image's metadata name the input.
Image load_image(Bundle& b) {
  try {
    return load_image_of(b);
  } catch (const SysError&) {
    throw;
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.compare(0, b.name().size(), b.name()) == 0) throw;
    throw Error(fmt::format("{}: {}", b.name(), what));
  }
}

Image load_image_of(Bundle& b) {
  Image img;
  if (b.has("manifest.json")) {
    const auto dm = oci::parse_docker_manifest(b.read_small("manifest.json"));
    if (dm.images > 1) log::warn("{}: holds {} images; converting the first", b.name(), dm.images);
    const std::string cfg = bundle_path(b, dm.config, "config");
    img.config = oci::parse_config(b.read_small(cfg, oci::digest_of_blob_path(cfg)));
    for (const auto& l : dm.layers) {
      const std::string p = bundle_path(b, l, "layer");
      if (!b.has(p)) throw Error(fmt::format("{}: layer {} is missing", b.name(), p));
      img.layers.push_back({p, oci::digest_of_blob_path(p), std::nullopt});
    }
    return img;
  }
  if (!b.has("index.json"))
    throw Error(fmt::format("{}: not a docker-archive or OCI layout: no manifest.json or index.json", b.name()));
  if (!b.has("oci-layout")) log::warn("{}: no oci-layout file; reading index.json anyway", b.name());
  oci::Descriptor d = oci::pick_manifest(b.read_small("index.json"), oci::host_arch());
  for (int depth = 0; oci::is_index_type(d.media_type); ++depth) {
    if (depth > 8) throw Error(fmt::format("{}: image indexes nested too deep", b.name()));
    d = oci::pick_manifest(b.read_small(d.digest.blob_path(), d.digest, d.size), oci::host_arch());
  }
  if (!b.has(d.digest.blob_path())) throw Error(fmt::format("{}: manifest blob {} is missing", b.name(), d.digest.str()));
  const oci::Manifest m = oci::parse_manifest(b.read_small(d.digest.blob_path(), d.digest, d.size));
  if (!b.has(m.config.digest.blob_path()))
    throw Error(fmt::format("{}: config blob {} is missing", b.name(), m.config.digest.str()));
  img.config = oci::parse_config(b.read_small(m.config.digest.blob_path(), m.config.digest, m.config.size));
  for (const auto& l : m.layers) {
    if (!b.has(l.digest.blob_path())) throw Error(fmt::format("{}: layer blob {} is missing", b.name(), l.digest.str()));
    img.layers.push_back({l.digest.blob_path(), l.digest, l.size});
  }
  return img;
}

std::unique_ptr<unpack::Archive> open_layer(Bundle& b, const Layer& l) {
  auto src = b.open(l.path);
  if (l.digest) src = unpack::verified(std::move(src), *l.digest, l.size);
  return std::make_unique<unpack::Archive>(std::move(src), true);
}

// ---------------------------------------------------------------- the conversions

void add_extras(sink::Sink& s, const std::optional<oci::ImageConfig>& cfg) {
  const std::int64_t now = ::time(nullptr);
  auto ensure_dir = [&](const std::string& p) {
    if (!s.exists(p)) {
      Member m;
      m.path = p;
      m.kind = Kind::kDir;
      m.perm = 0755;
      m.mtime = now;
      add_member(s, m, nullptr, "image config");
    }
  };
  if (cfg) {
    ensure_dir("ch");
    for (auto [path, text] : {std::pair{"ch/metadata.json", oci::metadata_json(*cfg)},
                              std::pair{"ch/environment", oci::environment_file(*cfg)}}) {
      Member m;
      m.path = path;
      m.kind = Kind::kFile;
      m.perm = 0644;
      m.size = text.size();
      StringData d(text);
      add_member(s, m, &d, "image config");
    }
  }
  for (const auto& mp : member::mount_points()) {
    if (s.exists(mp.path)) continue;
    Member m;
    m.path = mp.path;
    m.kind = mp.kind;
    m.perm = mp.kind == Kind::kDir ? 0755 : 0644;
    m.mtime = now;
    StringData empty("");
    try {
      s.add(m, mp.kind == Kind::kFile ? &empty : nullptr);
    } catch (const Error& e) {
      log::warn("can't create mount point /{}: {}", mp.path, e.what());
    }
  }
}

void convert_tar(const Options& o, sink::Sink& s, Progress& p, Stats& st) {
  unpack::Archive a(unpack::open_file(o.in, o.in), true);
  unpack::RawMember raw;
  member::TopLevel top;
  bool any = false;
  while (a.next(raw)) {
    any = true;
    p.entry();
    auto m = admit(raw, o.in, st);
    if (!m) continue;
    top.see(m->path, m->kind);
    ArchiveData d(a, p);
    add_member(s, *m, m->kind == Kind::kFile ? &d : nullptr, o.in);
  }
  // Nothing but the end-of-archive blocks (/dev/zero read as a tar, a
  // download that came back empty): not an image.
  if (!any) throw Error(fmt::format("{}: an empty archive (no members): not an image", o.in));
  if (const std::string root = top.root(); !root.empty() && o.out_fmt != Format::kTar) {
    log::verbose("{}: all members are under {}/: using it as the image root", o.in, root);
    s.set_root(root);
  }
  add_extras(s, std::nullopt);
}

void convert_layers(const Options& o, sink::Sink& s, Progress& p, Stats& st) {
  std::unique_ptr<Bundle> b;
  struct stat sb;
  if (::stat(o.in.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode))
    b = std::make_unique<DirBundle>(o.in);
  else
    b = std::make_unique<ArchiveBundle>(o.in);
  const Image img = load_image(*b);
  log::verbose("{}: {} layers", o.in, img.layers.size());
  // Pass 1: headers only, to know what survives.
  flatten::Planner plan;
  Stats scratch;
  for (const auto& l : img.layers) {
    plan.begin_layer();
    auto a = open_layer(*b, l);
    const std::string src = fmt::format("{}: {}", o.in, l.path);
    unpack::RawMember raw;
    while (a->next(raw)) {
      check_interrupt();
      auto m = admit(raw, src, scratch);
      if (!m) {
        plan.skip();
        continue;
      }
      // ".wh." names are reserved in layers: only the last component of a
      // member may have one, and then it is a whiteout.
      for (std::size_t i = 0, j; (j = m->path.find('/', i)) != std::string::npos; i = j + 1) {
        if (m->path.compare(i, 4, ".wh.") == 0)
          throw Error(fmt::format("{}: member {:?}: directory {:?} has the reserved whiteout prefix", src,
                                  raw.name, m->path.substr(i, j - i)));
      }
      const auto w = member::whiteout_of(m->path);
      if (w.kind == member::Whiteout::kInvalid) {
        log::warn("{}: member {:?}: not a valid whiteout; ignored", src, raw.name);
        plan.skip();
      } else if (w.kind != member::Whiteout::kNone) {
        try {
          plan.whiteout(w);
        } catch (const Error& e) {
          throw Error(fmt::format("{}: member {:?}: {}", src, raw.name, e.what()));
        }
      } else {
        try {
          plan.add(m->path, m->kind, m->target);
        } catch (const Error& e) {
          throw Error(fmt::format("{}: member {:?}: {}", src, raw.name, e.what()));
        }
      }
    }
    // The tar ends before its blob may: read the rest, so that the digest
    // is checked before anything is written.
    a->drain();
  }
  const auto decisions = plan.finish();
  // Pass 2: write the survivors.
  std::uint32_t layer = 0;
  for (const auto& l : img.layers) {
    auto a = open_layer(*b, l);
    const std::string src = fmt::format("{}: {}", o.in, l.path);
    unpack::RawMember raw;
    std::uint32_t index = 0;
    while (a->next(raw)) {
      p.entry();
      const flatten::Ref ref{layer, index++};
      auto it = decisions.find(ref);
      if (it == decisions.end() || it->second.action != flatten::Decision::Action::kEmit) continue;
      auto m = admit(raw, src, st);
      if (!m) continue;
      if (it->second.emit_as) m->path = *it->second.emit_as;
      if (it->second.link_to) m->target = *it->second.link_to;
      ArchiveData d(*a, p);
      add_member(s, *m, m->kind == Kind::kFile ? &d : nullptr, src);
    }
    a->drain();
    ++layer;
  }
  add_extras(s, img.config);
}

void convert_tree(const Options& o, sink::Sink& s, Progress& p, Stats& st) {
  auto visit = [&](const Member& in, sink::Data* data) {
    p.entry();
    if (in.kind == Kind::kDevice || in.kind == Kind::kFifo || in.kind == Kind::kSocket) {
      ++st.dropped;
      log::verbose("{}: {:?}: {} dropped", o.in, in.path, member::kind_name(in.kind));
      return;
    }
    Member m = in;
    m.perm = member::fix_perm(m.kind, in.perm);
    if (in.perm & (S_ISUID | S_ISGID)) ++st.cleared;
    TickData d(data, p);
    add_member(s, m, data ? &d : nullptr, o.in);
  };
  if (o.in_fmt == Format::kDir)
    walk::directory(o.in, o.xattrs, visit);
  else
    walk::squash(o.in, o.xattrs, visit);
  add_extras(s, std::nullopt);
}

bool looks_like_image(const std::string& dir) {
  auto is_dir = [&](const char* n) {
    auto st = sys::try_lstat(dir + "/" + n);
    return st && S_ISDIR(st->st_mode);
  };
  return is_dir("bin") && is_dir("dev") && (is_dir("usr") || is_dir("etc"));
}

bool is_empty_dir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return false;
  DIR* d = ::fdopendir(fd.release());
  if (!d) return false;
  bool empty = true;
  while (struct dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  ::closedir(d);
  return empty;
}

std::uint64_t input_size(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
}

}  // namespace

void run(const Options& given) {
  Options o = given;
  log::set_level(o.verbosity);
  if (!sys::try_stat(o.in)) throw SysError(errno ? errno : ENOENT, fmt::format("can't read {}", o.in));
  if (o.in_fmt == Format::kNone) o.in_fmt = detect_input(o.in);
  if (o.out_fmt == Format::kNone) {
    o.out_fmt = format_from_name(o.out);
    auto st = sys::try_stat(o.out);
    if (o.out_fmt == Format::kNone && st && S_ISDIR(st->st_mode)) o.out_fmt = Format::kDir;
    if (o.out_fmt == Format::kNone)
      throw Error(fmt::format("{}: can't tell the output format from the name; use -o FMT", o.out));
  }
  if (o.in_fmt == o.out_fmt) throw Error("input and output formats must be different");
  // Where the output goes.
  const std::string out_parent = path::parent(o.out);
  if (auto pst = sys::try_stat(out_parent); !pst || !S_ISDIR(pst->st_mode))
    throw Error(fmt::format("{}: directory {} does not exist", o.out, out_parent));
  if (auto ost = sys::try_lstat(o.out)) {
    if (o.no_clobber) throw Error(fmt::format("{} exists (--no-clobber)", o.out));
    const auto in_real = sys::try_canonical(o.in);
    const auto out_real = sys::try_canonical(o.out);
    if (in_real && out_real && *in_real == *out_real) throw Error(fmt::format("{}: input and output are the same", o.out));
    if (S_ISDIR(ost->st_mode) && !is_empty_dir(o.out) && !looks_like_image(o.out))
      throw Error(fmt::format("{} exists, is not empty and does not look like an image: not replacing it", o.out));
  }
  if (o.in_fmt == Format::kDir) {
    const auto in_real = sys::try_canonical(o.in);
    const auto parent_real = sys::try_canonical(out_parent);
    if (in_real && parent_real && member::is_within(*parent_real, *in_real))
      throw Error(fmt::format("{}: the output can't be inside the input directory {}", o.out, o.in));
  }
  log::verbose("{} ({}) -> {} ({})", o.in, format_name(o.in_fmt), o.out, format_name(o.out_fmt));
  if (o.dry_run) {
    std::printf("would convert %s (%s) to %s (%s)\n", o.in.c_str(), std::string(format_name(o.in_fmt)).c_str(),
                o.out.c_str(), std::string(format_name(o.out_fmt)).c_str());
    return;
  }

  // Interrupts end the conversion cleanly (the sink removes what it wrote).
  g_signal.store(0);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  sink::output_umask() = ::umask(0);

  unpack::bytes_read().store(0);
  // The total is known when the bytes read are the input file's: a tarball.
  // (Layers are read twice, a SquashFS file's data counts decompressed.)
  Progress progress(o.in_fmt == Format::kTar ? input_size(o.in) : 0);
  Stats st;
  std::unique_ptr<sink::Sink> s;
  switch (o.out_fmt) {
    case Format::kDir: s = sink::dir_sink(o.out, o.xattrs); break;
    case Format::kSquash: s = sink::squash_sink(o.out, o.squash, o.xattrs); break;
    case Format::kTar: s = sink::tar_sink(o.out, o.xattrs); break;
    default: throw Error(fmt::format("can't write format {}", format_name(o.out_fmt)));
  }
  switch (o.in_fmt) {
    case Format::kTar: convert_tar(o, *s, progress, st); break;
    case Format::kDocker:
    case Format::kOci: convert_layers(o, *s, progress, st); break;
    case Format::kDir:
    case Format::kSquash: convert_tree(o, *s, progress, st); break;
    default: throw Error("unknown input format");
  }
  check_interrupt();
  s->commit();
  progress.clear();
  if (st.dropped) log::warn("{}: {} device files, FIFOs or sockets dropped", o.in, st.dropped);
  if (st.neutralised) log::verbose("{}: {} absolute member names made relative", o.in, st.neutralised);
  if (st.cleared) log::verbose("{}: setuid/setgid bits cleared on {} members", o.in, st.cleared);
  log::info("{} entries, {} read, {} written in {:.2f} s", progress.entries(),
            human(static_cast<double>(unpack::bytes_read().load())), human(static_cast<double>(s->bytes_written())),
            progress.seconds());
}

}  // namespace chute::convert
