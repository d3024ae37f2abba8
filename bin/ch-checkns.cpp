// ch-checkns: check that this machine can run chute's containers, one line
// per check; exit 0 when everything required works, 31 otherwise.

#include <cstdio>
#include <cstring>

#include "chute/checkns.hpp"
#include "chute/error.hpp"
#include "chute/log.hpp"

using namespace chute;

int main(int argc, char** argv) {
  log::set_program("ch-checkns");
  if (argc > 1 && (std::strcmp(argv[1], "-h") == 0 || std::strcmp(argv[1], "--help") == 0)) {
    std::puts("usage: ch-checkns\n\nCheck that unprivileged containers work on this machine.\n"
              "Exit 0 if all required checks pass, 31 otherwise. See ch-checkns(1).");
    return 0;
  }
  if (argc > 1 && (std::strcmp(argv[1], "-V") == 0 || std::strcmp(argv[1], "--version") == 0)) {
    std::fputs(CHUTE_VERSION "\n", stderr);
    return 0;
  }
  if (argc > 1) {
    log::emit("error", "no arguments expected (try --help)");
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
