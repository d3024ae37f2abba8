// libFuzzer target for ch-convert's unpacker: the input is an archive (any
// format and compression libarchive reads), converted to a directory and to
// a tarball in a scratch directory. Whatever the bytes, the conversion
// either succeeds or throws chute's errors, and nothing but the output is
// left in the scratch directory: no temporary, nothing written beside it.

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <set>
#include <string>

#include "chute/convert.hpp"
#include "chute/error.hpp"
#include "chute/log.hpp"
#include "chute/sink.hpp"

namespace {

std::string scratch() {
  static std::string dir = [] {
    std::string t = (getenv("TMPDIR") ? std::string(getenv("TMPDIR")) : std::string("/tmp")) +
                    "/chute-fuzz-XXXXXX";
    if (!::mkdtemp(t.data())) std::abort();
    return t;
  }();
  return dir;
}

std::set<std::string> listing(const std::string& dir) {
  std::set<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) std::abort();
  while (struct dirent* e = ::readdir(d))
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) out.insert(e->d_name);
  ::closedir(d);
  return out;
}

void convert_to(const std::string& in, const std::string& out, chute::convert::Format f) {
  chute::convert::Options o;
  o.in = in;
  o.out = out;
  o.in_fmt = chute::convert::Format::kTar;
  o.out_fmt = f;
  o.verbosity = -3;
  try {
    chute::convert::run(o);
  } catch (const chute::convert::Interrupted&) {
    std::abort();
  } catch (const std::system_error&) {
  } catch (const chute::Error&) {
  }
  // Anything else (std::bad_alloc aside) escapes and libFuzzer reports it.
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  chute::log::set_program("fuzz_unpack");
  const std::string dir = scratch();
  const std::string in = dir + "/in.tar";
  {
    const int fd = ::open(in.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::write(fd, data, size) != static_cast<ssize_t>(size)) std::abort();
    ::close(fd);
  }
  for (auto [name, fmt] : {std::pair{"out", chute::convert::Format::kDir},
                           std::pair{"out.tar", chute::convert::Format::kTar}}) {
    const std::string out = dir + "/" + name;
    convert_to(in, out, fmt);
    for (const auto& n : listing(dir))
      if (n != "in.tar" && n != name) {
        std::fprintf(stderr, "left behind in the scratch directory: %s\n", n.c_str());
        std::abort();
      }
    chute::sink::remove_tree(out);
  }
  ::umask(022);
  return 0;
}
