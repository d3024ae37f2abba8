#include "chute/fromhost.hpp"

#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "chute/error.hpp"
#include "chute/fd.hpp"
#include "chute/inroot.hpp"
#include "chute/log.hpp"
#include "chute/path.hpp"
#include "chute/sys.hpp"

extern char** environ;

namespace chute::fromhost {

// ---------------------------------------------------------------- command line

std::string usage() {
  return "usage: ch-fromhost [OPTION...] (-c CMD | -f FILE | -p PATH | --nvidia) ... IMGDIR\n"
         "       ch-fromhost --print-lib IMGDIR\n"
         "Try 'ch-fromhost --help' for more information.\n";
}

std::string help() {
  return "usage: ch-fromhost [OPTION...] (-c CMD | -f FILE | -p PATH | --nvidia) ... IMGDIR\n"
         "       ch-fromhost --print-lib IMGDIR\n"
         "\n"
         "Copy files of the host into the directory image IMGDIR: shared libraries into\n"
         "the image's library directory, programs into /usr/bin; then update the image's\n"
         "linker cache. Sources may be repeated and combined.\n"
         "\n"
         "Sources:\n"
         "  -c, --cmd CMD          run CMD with /bin/sh -c; inject the paths it prints\n"
         "  -f, --file FILE        inject the paths listed in FILE, one per line\n"
         "                         (blank lines and lines starting with # skipped)\n"
         "  -p, --path PATH        inject the file PATH\n"
         "      --nvidia           inject what 'nvidia-container-cli list --binaries\n"
         "                         --libraries' prints (NVIDIA's user-space driver)\n"
         "\n"
         "Options:\n"
         "  -d, --dest DST         put every file in directory DST of the image\n"
         "      --print-lib        print the image's library directory and exit\n"
         "      --no-ldconfig      don't run the image's ldconfig afterwards\n"
         "  -q, --quiet            quieter (repeatable; -qq: no warnings)\n"
         "  -v, --verbose          say what is copied where (repeatable)\n"
         "  -h, --help             this help\n"
         "      --version          print the version\n"
         "\n"
         "Without -d: a shared library (NAME.so, NAME.so.*) or a file under a lib\n"
         "directory goes to the directory the image's C library is in (as the image's\n"
         "'/sbin/ldconfig -Nv' reports it); a file under a bin or sbin directory goes to\n"
         "/usr/bin; anything else is an error. IMGDIR must be a directory: with ch-run,\n"
         "--gpu, --device and --mpi inject into any image without writing to it.\n"
         "\n"
         "Exit status: 0 success, 31 error.\n";
}

namespace {

enum LongOnly : int {
  kNvidia = 256,
  kPrintLib,
  kNoLdconfig,
  kVersion,
  kCrayCxi,
  kCrayGni,
  kPrintFi,
  kPrintCrayFi,
};

}  // namespace

Parsed parse_cli(int argc, char** argv) {
  static const struct option longs[] = {
      {"cmd", required_argument, nullptr, 'c'},
      {"file", required_argument, nullptr, 'f'},
      {"path", required_argument, nullptr, 'p'},
      {"nvidia", no_argument, nullptr, kNvidia},
      {"dest", required_argument, nullptr, 'd'},
      {"print-lib", no_argument, nullptr, kPrintLib},
      {"no-ldconfig", no_argument, nullptr, kNoLdconfig},
      {"quiet", no_argument, nullptr, 'q'},
      {"verbose", no_argument, nullptr, 'v'},
      {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, kVersion},
      // Charliecloud's Cray libfabric replacement: known, not implemented.
      {"cray-cxi", no_argument, nullptr, kCrayCxi},
      {"cray-gni", no_argument, nullptr, kCrayGni},
      {"print-fi", no_argument, nullptr, kPrintFi},
      {"print-cray-fi", no_argument, nullptr, kPrintCrayFi},
      {nullptr, 0, nullptr, 0},
  };
  Parsed p;
  Options& o = p.opts;
  std::vector<std::string> operands;
  optind = 0;  // 0, not 1: GNU getopt then forgets all state of an earlier parse
  opterr = 0;
  // Options may follow the image, as Charliecloud's ch-fromhost allows; so
  // no "+": getopt_long moves operands to the end.
  for (;;) {
    // A leading ':' makes a missing argument ':' rather than '?'.
    const int c = getopt_long(argc, argv, ":c:f:p:d:qvh", longs, nullptr);
    if (c == -1) break;
    switch (c) {
      case 'c': o.sources.push_back({Source::Kind::kCmd, optarg}); break;
      case 'f': o.sources.push_back({Source::Kind::kFile, optarg}); break;
      case 'p': o.sources.push_back({Source::Kind::kPath, optarg}); break;
      case kNvidia: o.sources.push_back({Source::Kind::kNvidia, ""}); break;
      case 'd':
        if (optarg[0] == '\0') throw Error("--dest: empty directory");
        o.dest = optarg;
        break;
      case kPrintLib: o.print_lib = true; break;
      case kNoLdconfig: o.no_ldconfig = true; break;
      case 'q': --o.verbosity; break;
      case 'v': ++o.verbosity; break;
      case 'h': p.action = Parsed::Action::kHelp; return p;
      case kVersion: p.action = Parsed::Action::kVersion; return p;
      case kCrayCxi: o.unsupported = "--cray-cxi"; break;
      case kCrayGni: o.unsupported = "--cray-gni"; break;
      case kPrintFi: o.unsupported = "--print-fi"; break;
      case kPrintCrayFi: o.unsupported = "--print-cray-fi"; break;
      case ':':
        throw Error(fmt::format("option {:?} requires an argument", argv[optind - 1]));
      case '?':
      default:
        if (optopt != 0 && optopt < 256)
          throw Error(fmt::format("invalid option -- {:?}", static_cast<char>(optopt)));
        throw Error(fmt::format("unrecognised option {:?}", argv[optind - 1]));
    }
  }
  for (int i = optind; i < argc; ++i) operands.emplace_back(argv[i]);
  if (operands.empty()) throw Error("no image given");
  if (operands.size() > 1)
    throw Error(fmt::format("more than one image given: {:?} and {:?}", operands[0], operands[1]));
  o.image = operands[0];
  if (o.image.empty()) throw Error("image argument is empty");
  if (o.sources.empty() && !o.print_lib && o.unsupported.empty())
    throw Error("nothing to inject: give -c, -f, -p or --nvidia");
  return p;
}

// ---------------------------------------------------------------- pure parts

namespace {

std::string_view trim(std::string_view s) {
  const auto blank = [](char ch) { return ch == ' ' || ch == '\t' || ch == '\r'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

// The next line of TEXT from AT (without its newline); AT moves past it.
std::string_view next_line(std::string_view text, size_t& at) {
  const size_t nl = text.find('\n', at);
  const size_t end = nl == std::string_view::npos ? text.size() : nl;
  std::string_view line = text.substr(at, end - at);
  at = nl == std::string_view::npos ? text.size() : nl + 1;
  return line;
}

}  // namespace

std::vector<std::string> list_paths(std::string_view text, std::string_view source) {
  std::vector<std::string> out;
  size_t at = 0;
  size_t number = 0;
  while (at < text.size()) {
    ++number;
    std::string_view line = trim(next_line(text, at));
    if (line.empty() || line.front() == '#') continue;
    // open(2) would stop at the NUL: another file than the one named.
    if (line.find('\0') != std::string_view::npos)
      throw Error(fmt::format("{}: line {}: NUL byte in a path", source, number));
    out.emplace_back(line);
  }
  return out;
}

bool is_shared_library(std::string_view p) {
  const std::string name = path::leaf(p);
  return name.ends_with(".so") || name.find(".so.") != std::string::npos;
}

Place place_of(std::string_view p) {
  if (is_shared_library(p)) return Place::kLibrary;
  if (p.find("/bin/") != std::string_view::npos || p.find("/sbin/") != std::string_view::npos)
    return Place::kBin;
  if (p.find("/lib") != std::string_view::npos) return Place::kLibrary;
  return Place::kUnknown;
}

std::optional<std::string> library_dir(std::string_view output) {
  std::optional<std::string> first;
  std::optional<std::string> current;
  size_t at = 0;
  while (at < output.size()) {
    std::string_view line = next_line(output, at);
    if (line.empty()) continue;
    if (line.front() == '/') {
      // A directory: "DIR:", "DIR: (from FILE:LINE)" or, from older glibc,
      // "DIR: (hwcap: ...)".
      size_t colon = line.find(": ");
      if (colon == std::string_view::npos) {
        if (line.back() != ':') {
          current.reset();
          continue;
        }
        colon = line.size() - 1;
      }
      current = std::string(line.substr(0, colon));
      if (!first) first = current;
      continue;
    }
    if (line.front() != '\t' && line.front() != ' ') continue;
    // A library of the current directory: "\tSONAME -> FILE".
    std::string_view entry = trim(line);
    const size_t end = entry.find_first_of(" \t");
    if (current && entry.substr(0, end) == "libc.so.6") return current;
  }
  return first;
}

std::vector<Copy> plan(const std::vector<std::string>& sources,
                       const std::optional<std::string>& dest) {
  std::optional<std::string> dest_dir;
  if (dest) {
    if (path::has_dotdot(*dest))
      throw Error(fmt::format("--dest {:?}: \"..\" is not allowed (paths are inside the image)",
                              *dest));
    dest_dir = path::normalise(path::join("/", *dest));
  }
  std::vector<Copy> copies;
  for (const auto& s : sources) {
    Copy c;
    c.source = s;
    c.name = path::leaf(s);
    if (c.name.empty() || c.name == "." || c.name == "..")
      throw Error(fmt::format("{:?}: not a file name", s));
    c.library = is_shared_library(s);
    if (dest_dir) {
      c.dest_dir = *dest_dir;
    } else {
      switch (place_of(s)) {
        case Place::kBin: c.dest_dir = "/usr/bin"; break;
        case Place::kLibrary: c.dest_dir = ""; break;
        case Place::kUnknown: throw Error(fmt::format("don't know where to put {:?}: use -d", s));
      }
    }
    copies.push_back(std::move(c));
  }
  return copies;
}

void settle(std::vector<Copy>& copies, const std::string& lib_dir) {
  std::map<std::string, const Copy*> seen;
  for (auto& c : copies) {
    if (c.dest_dir.empty()) c.dest_dir = lib_dir;
    std::string target = path::normalise(path::join(c.dest_dir, c.name));
    auto [it, fresh] = seen.emplace(target, &c);
    if (!fresh && it->second->source != c.source)
      throw Error(fmt::format("both {:?} and {:?} would be copied to {:?} in the image",
                              it->second->source, c.source, target));
  }
}

// ---------------------------------------------------------------- effects

namespace {

// What a program run on the host left.
struct Outcome {
  int status = 0;   // exit status, or 128+N if killed by signal N
  std::string out;  // its stdout
  std::string err;  // its stderr, when captured
};

std::string describe_status(int status) {
  return status > 128 ? fmt::format("killed by signal {}", status - 128)
                      : fmt::format("exit {}", status);
}

// The most a list of paths (a --file, a command's output) may hold: a
// command that never stops printing, or a --file that never ends
// (/dev/zero), must not fill memory.
constexpr size_t kMaxList = size_t{16} << 20;

// Run ARGV on the host with stdin from /dev/null, its stdout captured, and
// its stderr captured too when CAPTURE_ERR (else shared with ours). A
// program that prints more than kMaxList bytes on either is killed, and that
// is an error naming WHAT.
Outcome spawn(const std::vector<std::string>& argv, bool capture_err, std::string_view what) {
  int outp[2], errp[2] = {-1, -1};
  if (::pipe2(outp, O_CLOEXEC) != 0) {
    const int e = errno;
    throw SysError(e, "can't create a pipe");
  }
  Fd out_r(outp[0]), out_w(outp[1]);
  Fd err_r, err_w;
  if (capture_err) {
    if (::pipe2(errp, O_CLOEXEC) != 0) {
      const int e = errno;
      throw SysError(e, "can't create a pipe");
    }
    err_r.reset(errp[0]);
    err_w.reset(errp[1]);
  }
  posix_spawn_file_actions_t fa;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(&fa, out_w.get(), STDOUT_FILENO);
  if (capture_err) ::posix_spawn_file_actions_adddup2(&fa, err_w.get(), STDERR_FILENO);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  ::posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw SysError(rc, fmt::format("can't execute {}", argv[0]));
  out_w.reset();
  err_w.reset();

  // Both pipes at once, so that neither fills up while we wait on the other.
  Outcome o;
  struct pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
  std::string* sinks[2] = {&o.out, &o.err};
  int open_count = capture_err ? 2 : 1;
  if (!capture_err) fds[1].fd = -1;
  while (open_count > 0) {
    if (::poll(fds, 2, -1) < 0) {
      const int e = errno;
      if (e == EINTR) continue;
      throw SysError(e, fmt::format("can't read the output of {}", argv[0]));
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[8192];
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        fds[i].fd = -1;
        --open_count;
        continue;
      }
      sinks[i]->append(buf, static_cast<size_t>(n));
      if (sinks[i]->size() > kMaxList) {
        ::kill(pid, SIGKILL);
        while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
        }
        throw Error(fmt::format("{}: printed more than {} bytes", what, kMaxList));
      }
    }
  }
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0) {
    const int e = errno;
    if (e != EINTR) throw SysError(e, fmt::format("can't wait for {}", argv[0]));
  }
  o.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  return o;
}

// A captured stderr fit for an error message: trimmed, at most 2000 bytes
// (the end, where the reason usually is), quoted by the caller.
std::string tail_of(std::string_view text) {
  const auto blank = [](char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; };
  while (!text.empty() && blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && blank(text.back())) text.remove_suffix(1);
  if (text.size() > 2000) text = text.substr(text.size() - 2000);
  return std::string(text);
}

bool is_executable_file(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

std::optional<std::string> find_in_path(std::string_view name) {
  const char* env = std::getenv("PATH");
  std::string_view dirs = env != nullptr ? env : "/usr/local/bin:/usr/bin:/bin";
  size_t at = 0;
  while (at <= dirs.size()) {
    size_t colon = dirs.find(':', at);
    if (colon == std::string_view::npos) colon = dirs.size();
    std::string_view dir = dirs.substr(at, colon - at);
    std::string cand = path::join(dir.empty() ? "." : dir, name);
    if (is_executable_file(cand)) return cand;
    at = colon + 1;
  }
  return std::nullopt;
}

// The ch-run that came with this ch-fromhost (the same directory), else
// the first in PATH.
std::string find_ch_run() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    std::string beside = path::join(path::parent(std::string_view(buf, static_cast<size_t>(n))),
                                    "ch-run");
    if (is_executable_file(beside)) return beside;
  }
  if (auto p = find_in_path("ch-run")) return *p;
  throw Error("can't find ch-run (neither next to ch-fromhost nor in PATH): it runs the "
              "image's ldconfig");
}

// The image: its canonical path (given to ch-run, which would look a plain
// name up in its storage first) and its root, opened O_PATH.
struct Image {
  std::string arg;
  std::string path;
  Fd root;
};

Image open_image(const std::string& arg) {
  struct stat st;
  if (::stat(arg.c_str(), &st) != 0) {
    const int e = errno;
    throw SysError(e, fmt::format("can't find image: {}", arg));
  }
  if (!S_ISDIR(st.st_mode))
    throw Error(fmt::format("{}: not a directory image (ch-fromhost writes into directory "
                            "images only; with ch-run, --gpu/--device/--mpi inject into any "
                            "image without writing)", arg));
  Image img;
  img.arg = arg;
  auto canon = sys::try_canonical(arg);
  if (!canon) {
    const int e = errno;
    throw SysError(e, fmt::format("can't resolve image path: {}", arg));
  }
  img.path = *canon;
  img.root = sys::open(img.path, O_PATH | O_DIRECTORY);
  return img;
}

constexpr const char* kLdconfig = "/sbin/ldconfig";

void require_ldconfig(const Image& img, std::string_view why) {
  if (!inroot::try_open(img.root.get(), kLdconfig, O_PATH))
    throw Error(fmt::format("{}: the image has no {} ({})", img.arg, kLdconfig, why));
}

std::string find_library_dir(const Image& img, const std::string& ch_run) {
  require_ldconfig(img, "needed to find its library directory; use -d to name it");
  log::verbose("asking the image's ldconfig for its library directory");
  Outcome o = spawn({ch_run, img.path, "--", kLdconfig, "-Nv"}, true, kLdconfig);
  auto dir = library_dir(o.out);
  if (!dir)
    throw Error(fmt::format("{}: can't find the image's library directory: {} -- {} -Nv "
                            "listed none ({}): {:?}", img.arg, ch_run, kLdconfig,
                            describe_status(o.status), tail_of(o.err)));
  if (o.status != 0)
    log::debug("{} -Nv ended with {}, but listed directories", kLdconfig,
               describe_status(o.status));
  log::verbose("library directory: {}", *dir);
  return *dir;
}

// The paths SRC names, as the user or the command wrote them.
std::vector<std::string> paths_of(const Source& src) {
  switch (src.kind) {
    case Source::Kind::kPath: return {src.value};
    case Source::Kind::kFile: {
      std::optional<std::string> text;
      try {
        text = sys::read_file_within(src.value, kMaxList);
      } catch (const SysError& e) {
        throw SysError(e.err(), fmt::format("can't read --file {}", src.value));
      }
      if (!text) throw Error(fmt::format("--file {}: larger than {} bytes", src.value, kMaxList));
      return list_paths(*text, fmt::format("--file {}", src.value));
    }
    case Source::Kind::kCmd: {
      log::verbose("running on the host: {}", src.value);
      const std::string what = fmt::format("--cmd {:?}", src.value);
      Outcome o = spawn({"/bin/sh", "-c", src.value}, false, what);
      if (o.status != 0)
        throw Error(fmt::format("{} failed ({})", what, describe_status(o.status)));
      return list_paths(o.out, what);
    }
    case Source::Kind::kNvidia: {
      auto cli = find_in_path("nvidia-container-cli");
      if (!cli)
        throw Error("--nvidia: nvidia-container-cli not found (install it, or use ch-run "
                    "--gpu, which needs no copy)");
      log::verbose("running on the host: {} list --binaries --libraries", *cli);
      Outcome o = spawn({*cli, "list", "--binaries", "--libraries"}, false, "--nvidia");
      if (o.status != 0)
        throw Error(fmt::format("--nvidia: {} list --binaries --libraries failed ({})", *cli,
                                describe_status(o.status)));
      return list_paths(o.out, "--nvidia");
    }
  }
  return {};
}

// Every source made absolute, checked to be a readable regular file (after
// symlinks), and listed once: the same file under the same name twice is
// one copy.
std::vector<std::string> collect(const std::vector<Source>& sources) {
  const std::string cwd = sys::getcwd_or_empty();
  std::vector<std::string> out;
  std::set<std::tuple<dev_t, ino_t, std::string>> seen;
  for (const auto& src : sources) {
    for (auto& p : paths_of(src)) {
      std::string abs = path::is_absolute(p) ? path::normalise(p)
                                             : path::normalise(path::join(cwd, p));
      // O_NONBLOCK: a FIFO among the sources must not hang the check.
      const int fd = ::open(abs.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) {
        const int e = errno;
        throw SysError(e, fmt::format("can't read file to inject: {:?}", p));
      }
      Fd f(fd);
      struct stat st = sys::fstat(f.get(), abs);
      if (!S_ISREG(st.st_mode))
        throw Error(fmt::format("{:?}: not a regular file (ch-fromhost copies files, not "
                                "directories or devices)", p));
      if (seen.emplace(st.st_dev, st.st_ino, path::leaf(abs)).second) out.push_back(abs);
    }
  }
  return out;
}

void copy_data(int from, int to, const std::string& name) {
  bool plain = false;  // copy_file_range(2) refused: read and write
  for (;;) {
    if (!plain) {
      const ssize_t n = ::copy_file_range(from, nullptr, to, nullptr, 1 << 30, 0);
      if (n > 0) continue;
      if (n == 0) return;
      const int e = errno;
      if (e == EINTR) continue;
      if (e != EXDEV && e != ENOSYS && e != EINVAL && e != EOPNOTSUPP && e != EBADF)
        throw SysError(e, fmt::format("can't copy {}", name));
      plain = true;
    }
    char buf[128 * 1024];
    const ssize_t n = ::read(from, buf, sizeof buf);
    if (n < 0) {
      const int e = errno;
      if (e == EINTR) continue;
      throw SysError(e, fmt::format("can't read {}", name));
    }
    if (n == 0) return;
    sys::write_all(to, std::string_view(buf, static_cast<size_t>(n)), name);
  }
}

// Copy C.source into the image: a new file under a temporary name in the
// destination directory, renamed over C.name when complete. The directory
// is resolved inside the image (a symlink in it cannot lead out), and the
// rename replaces whatever is at C.name, a symlink included, without
// following it; a read-only old file does not stop it.
void copy_into(const Image& img, const Copy& c) {
  const std::string shown = path::normalise(path::join(c.dest_dir, c.name));
  log::verbose("{} -> {}", c.source, shown);
  Fd src = sys::open(c.source, O_RDONLY);  // follows symlinks: the contents are copied
  const struct stat st = sys::fstat(src.get(), c.source);
  Fd dir = inroot::mkdirs(img.root.get(), c.dest_dir, 0755);
  // Not derived from C.name, which may already be as long as a name can be.
  const std::string tmp = fmt::format(".ch-fromhost.{}.tmp", ::getpid());
  ::unlinkat(dir.get(), tmp.c_str(), 0);  // left by an earlier run killed midway
  const int fd = ::openat(dir.get(), tmp.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int e = errno;
    throw SysError(e, fmt::format("can't create a file in {} (inside the image {})",
                                  c.dest_dir, img.arg));
  }
  Fd out(fd);
  try {
    copy_data(src.get(), out.get(), c.source);
    // The mode without setuid, setgid and sticky bits, and the times, as
    // cp --preserve keeps them; not the owner (an unprivileged user can't)
    // nor xattrs (a host's SELinux labels have no place in an image).
    if (::fchmod(out.get(), st.st_mode & 0777) != 0) {
      const int e = errno;
      throw SysError(e, fmt::format("can't set the mode of {} (inside the image)", shown));
    }
    const struct timespec times[2] = {st.st_atim, st.st_mtim};
    if (::futimens(out.get(), times) != 0) {
      const int e = errno;
      throw SysError(e, fmt::format("can't set the times of {} (inside the image)", shown));
    }
    if (::close(out.release()) != 0) {
      const int e = errno;
      throw SysError(e, fmt::format("can't write {} (inside the image)", shown));
    }
    if (::renameat(dir.get(), tmp.c_str(), dir.get(), c.name.c_str()) != 0) {
      const int e = errno;
      throw SysError(e, fmt::format("can't replace {} (inside the image)", shown));
    }
  } catch (...) {
    ::unlinkat(dir.get(), tmp.c_str(), 0);
    throw;
  }
}

}  // namespace

void run(const Options& o) {
  if (!o.unsupported.empty())
    throw Error(fmt::format("{}: not supported: chute does not replace an image's libfabric "
                            "with the host's Cray one; bind the host's libraries with ch-run "
                            "instead", o.unsupported));
  const Image img = open_image(o.image);

  if (o.print_lib) {
    std::string dir = find_library_dir(img, find_ch_run());
    std::fputs((dir + "\n").c_str(), stdout);
    return;
  }

  // Decide everything first: no file is copied unless all can be.
  std::vector<Copy> copies = plan(collect(o.sources), o.dest);
  bool need_lib_dir = false, libraries = false;
  for (const auto& c : copies) {
    need_lib_dir = need_lib_dir || c.dest_dir.empty();
    libraries = libraries || c.library;
  }
  const bool ldconfig_after = libraries && !o.no_ldconfig;
  std::string ch_run;
  if (need_lib_dir || ldconfig_after) ch_run = find_ch_run();
  if (ldconfig_after)
    require_ldconfig(img, "needed to update its linker cache; use --no-ldconfig to skip that");
  log::verbose("injecting {} file(s) into {}", copies.size(), img.path);
  settle(copies, need_lib_dir ? find_library_dir(img, ch_run) : std::string());

  for (const auto& c : copies) copy_into(img, c);

  if (ldconfig_after) {
    log::verbose("updating the image's linker cache: {} -w {} -- {}", ch_run, img.path, kLdconfig);
    Outcome r = spawn({ch_run, "-w", img.path, "--", kLdconfig}, true, kLdconfig);
    if (r.status != 0)
      throw Error(fmt::format("{}: the image's {} failed ({}): {:?}", img.arg, kLdconfig,
                              describe_status(r.status), tail_of(r.err + r.out)));
    if (const std::string said = tail_of(r.err); !said.empty())
      log::verbose("{}: {:?}", kLdconfig, said);
  }
}

}  // namespace chute::fromhost
