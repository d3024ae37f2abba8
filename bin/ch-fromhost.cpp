// ch-fromhost: copy files of the host (libraries, programs) into a directory
// image and update its linker cache. Parse options, inject; map errors to
// exit codes (0, or 31 for any error).

#include <cstdio>
#include <exception>

#include "chute/error.hpp"
#include "chute/fromhost.hpp"
#include "chute/log.hpp"
#include "chute/run.hpp"

using namespace chute;

int main(int argc, char** argv) {
  log::set_program("ch-fromhost");
  fromhost::Parsed parsed;
  try {
    parsed = fromhost::parse_cli(argc, argv);
  } catch (const std::exception& e) {
    log::emit("error", describe(e));
    std::fputs(fromhost::usage().c_str(), stderr);
    return kExitMisc;
  }
  switch (parsed.action) {
    case fromhost::Parsed::Action::kHelp: std::fputs(fromhost::help().c_str(), stdout); return 0;
    case fromhost::Parsed::Action::kVersion: std::puts(CHUTE_VERSION); return 0;
    case fromhost::Parsed::Action::kRun: break;
  }
  try {
    // It runs commands and writes files for its caller: never with more
    // privileges than the caller has.
    refuse_setuid("ch-fromhost");
    log::set_level(parsed.opts.verbosity);
    fromhost::run(parsed.opts);
    return 0;
  } catch (const std::exception& e) {
    log::emit("error", describe(e));
    return exit_code_of(e);
  }
}
