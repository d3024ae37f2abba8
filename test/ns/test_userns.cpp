// userns::enter, for real: the test process entered a namespace in main().
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "chute/error.hpp"
#include "chute/userns.hpp"
#include "ns_support.hpp"

using namespace chute;
using namespace ns_support;

TEST_CASE("the process is in a new user namespace") {
  std::string now = readlink_or_empty("/proc/self/ns/user");
  REQUIRE_FALSE(now.empty());
  REQUIRE(now != host_userns);
}

TEST_CASE("exactly one uid and one gid are mapped, to the caller") {
  std::string uid = std::to_string(::geteuid());
  std::string gid = std::to_string(::getegid());
  std::string umap = read_text("/proc/self/uid_map");
  std::string gmap = read_text("/proc/self/gid_map");
  // "%10u %10u %10u\n": one line.
  REQUIRE(std::count(umap.begin(), umap.end(), '\n') == 1);
  REQUIRE(std::count(gmap.begin(), gmap.end(), '\n') == 1);
  std::istringstream u(umap), g(gmap);
  std::string in, out, count;
  u >> in >> out >> count;
  CHECK(in == uid);
  CHECK(count == "1");
  g >> in >> out >> count;
  CHECK(in == gid);
  CHECK(count == "1");
}

TEST_CASE("setgroups is denied") {
  REQUIRE(read_text("/proc/self/setgroups") == "deny\n");
}

TEST_CASE("a nested namespace can map the caller to root") {
  int rc = in_child([] {
    IdMap m;
    m.host_uid = ::geteuid();
    m.host_gid = ::getegid();
    m.container_uid = 0;
    m.container_gid = 0;
    userns::enter(m);
    return ::getuid() == 0 && ::getgid() == 0 && ::geteuid() == 0 ? 0 : 1;
  });
  REQUIRE(rc == 0);
}

TEST_CASE("a nested namespace can map the caller to another uid") {
  int rc = in_child([] {
    IdMap m;
    m.host_uid = ::geteuid();
    m.host_gid = ::getegid();
    m.container_uid = 4321;
    m.container_gid = 8765;
    userns::enter(m);
    return ::getuid() == 4321 && ::getgid() == 8765 ? 0 : 1;
  });
  REQUIRE(rc == 0);
}

TEST_CASE("no namespace left to create: a SysError naming the limit") {
  int rc = in_child([] {
    IdMap m;
    m.host_uid = m.container_uid = ::geteuid();
    m.host_gid = m.container_gid = ::getegid();
    userns::enter(m);
    // As this namespace's owner, forbid further user namespaces in it.
    int fd = ::open("/proc/sys/user/max_user_namespaces", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return 2;
    (void)!::write(fd, "0", 1);
    ::close(fd);
    try {
      userns::enter(m);
    } catch (const SysError& e) {
      std::string what = describe(e);
      return e.err() == ENOSPC && what.find("max_user_namespaces") != std::string::npos ? 0 : 3;
    }
    return 4;
  });
  REQUIRE(rc == 0);
}
