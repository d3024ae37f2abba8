// ch-checkns: check that this machine can run chute's containers, one line
// per check; exit 0 when everything required works, 31 otherwise.

#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "chute/checkns.hpp"
#include "chute/error.hpp"
#include "chute/log.hpp"

using namespace chute;

int main(int argc, char** argv) {
  log::set_program("ch-checkns");
  // -h and -V stand alone: anything else on the command line is an error.
  auto is = [&](int i, const char* a, const char* b) {
    return std::strcmp(argv[i], a) == 0 || std::strcmp(argv[i], b) == 0;
  };
  if (argc == 2 && is(1, "-h", "--help")) {
    std::puts("usage: ch-checkns\n\nCheck that unprivileged containers work on this machine.\n"
              "Exit 0 if all required checks pass, 31 otherwise. See ch-checkns(1).");
    return 0;
  }
  if (argc == 2 && is(1, "-V", "--version")) {
    std::fputs(CHUTE_VERSION "\n", stderr);
    return 0;
  }
  if (argc > 1) {
    const int bad = argc > 2 && (is(1, "-h", "--help") || is(1, "-V", "--version")) ? 2 : 1;
    log::emit("error", fmt::format("no arguments expected, got {:?} (try --help)", argv[bad]));
    return kExitMisc;
  }
  bool ok = true;
  for (const auto& r : checkns::run_all()) {
    std::puts(checkns::format(r).c_str());
    if (r.required && r.status == checkns::Result::Status::kFail) ok = false;
  }
  std::fflush(stdout);
  return ok ? 0 : kExitMisc;
}
