// ch-convert: convert a container image between tarball, docker-archive,
// OCI layout, directory and SquashFS. Parse options, convert; map errors to
// exit codes (0, 31, 128+N when interrupted by signal N).

#include <signal.h>

#include <cstdio>
#include <exception>

#include "chute/convert.hpp"
#include "chute/error.hpp"
#include "chute/log.hpp"

using namespace chute;

int main(int argc, char** argv) {
  log::set_program("ch-convert");
  convert::Parsed parsed;
  try {
    parsed = convert::parse_cli(argc, argv);
  } catch (const std::exception& e) {
    log::emit("error", describe(e));
    std::fputs(convert::usage().c_str(), stderr);
    return kExitMisc;
  }
  switch (parsed.action) {
    case convert::Parsed::Action::kHelp: std::fputs(convert::help().c_str(), stdout); return 0;
    case convert::Parsed::Action::kVersion: std::puts(CHUTE_VERSION); return 0;
    case convert::Parsed::Action::kRun: break;
  }
  try {
    convert::run(parsed.opts);
    return 0;
  } catch (const convert::Interrupted& i) {
    // The partial output is gone; die of the same signal, as a shell
    // expects of an interrupted program.
    log::emit("error", fmt::format("interrupted by signal {}; no output written", i.signal()));
    std::fflush(stderr);
    ::signal(i.signal(), SIG_DFL);
    ::raise(i.signal());
    return 128 + i.signal();
  } catch (const std::exception& e) {
    log::emit("error", describe(e));
    return exit_code_of(e);
  }
}
