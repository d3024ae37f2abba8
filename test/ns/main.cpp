// Main for the namespace tests: they run for real in a user+mount namespace
// that this process enters before the first test, as an unprivileged user.
// As root they are skipped (exit 77): root hides the bugs they look for.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <catch2/catch_reporter_tap.hpp>

#include <unistd.h>

#include <cstdio>
#include <exception>

#include "chute/error.hpp"
#include "chute/idmap.hpp"
#include "chute/userns.hpp"
#include "ns_support.hpp"

namespace ns_support {
std::string host_userns;
}

int main(int argc, char** argv) {
  if (::geteuid() == 0) {
    std::puts("1..0 # SKIP running as root; namespace tests must run as an unprivileged user");
    return 77;
  }
  ns_support::host_userns = ns_support::readlink_or_empty("/proc/self/ns/user");
  try {
    chute::IdMap m;
    m.host_uid = m.container_uid = ::geteuid();
    m.host_gid = m.container_gid = ::getegid();
    chute::userns::enter(m);
  } catch (const std::exception& e) {
    std::printf("Bail out! can't enter a user namespace: %s\n", chute::describe(e).c_str());
    return 1;
  }
  return Catch::Session().run(argc, argv);
}
