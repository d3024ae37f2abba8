// Unit tests for chute::passwd: the /etc/passwd and /etc/group texts.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "chute/passwd.hpp"

using namespace chute;
using passwd::HostNames;

namespace {

HostNames known(std::string user, std::string gecos, std::string group) {
  HostNames n;
  n.user = std::move(user);
  n.gecos = std::move(gecos);
  n.group = std::move(group);
  return n;
}

long count_lines(const std::string& s) { return std::count(s.begin(), s.end(), '\n'); }

}  // namespace

// ---------------------------------------------------------------- passwd_text

TEST_CASE("passwd_text for an ordinary known user: root, nobody, then the user",
          "[passwd]") {
  std::string t = passwd::passwd_text(1000, 1001, known("alice", "Alice A.", "staff"), "/");
  CHECK(t ==
        "root:x:0:0:root:/root:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/:/bin/false\n"
        "alice:x:1000:1001:Alice A.:/:/bin/sh\n");
}

TEST_CASE("passwd_text for an unknown user uses the dummy \"charlie\"", "[passwd]") {
  HostNames none;
  std::string t = passwd::passwd_text(1234, 5678, none, "/home/u");
  CHECK(t ==
        "root:x:0:0:root:/root:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/:/bin/false\n"
        "charlie:x:1234:5678:Charlie:/home/u:/bin/sh\n");
}

TEST_CASE("passwd_text ignores the host's GECOS for the dummy user", "[passwd]") {
  HostNames n;
  n.gecos = "Should Not Appear";
  n.group = "grp";
  std::string t = passwd::passwd_text(42, 42, n, "/");
  CHECK(t.find("Should Not Appear") == std::string::npos);
  CHECK(t.find("charlie:x:42:42:Charlie:/:/bin/sh\n") != std::string::npos);
}

TEST_CASE("passwd_text writes HOME for the user", "[passwd]") {
  std::string t = passwd::passwd_text(1000, 1000, known("bob", "", "bob"), "/home/bob");
  CHECK(t.ends_with("bob:x:1000:1000::/home/bob:/bin/sh\n"));
  CHECK(count_lines(t) == 3);
}

TEST_CASE("passwd_text omits root's line when the user is uid 0", "[passwd]") {
  SECTION("known as root") {
    std::string t = passwd::passwd_text(0, 0, known("root", "root", "root"), "/");
    CHECK(t ==
          "nobody:x:65534:65534:nobody:/:/bin/false\n"
          "root:x:0:0:root:/:/bin/sh\n");
  }
  SECTION("unknown uid 0 is still not preceded by a root line") {
    std::string t = passwd::passwd_text(0, 0, HostNames{}, "/");
    CHECK(t ==
          "nobody:x:65534:65534:nobody:/:/bin/false\n"
          "charlie:x:0:0:Charlie:/:/bin/sh\n");
  }
}

TEST_CASE("passwd_text omits nobody's line when the user is uid 65534", "[passwd]") {
  std::string t = passwd::passwd_text(65534, 65534, known("nobody", "Nobody", "nogroup"), "/");
  CHECK(t ==
        "root:x:0:0:root:/root:/bin/sh\n"
        "nobody:x:65534:65534:Nobody:/:/bin/sh\n");
}

TEST_CASE("passwd_text decides root/nobody lines by uid, not gid", "[passwd]") {
  std::string t = passwd::passwd_text(1000, 0, known("u", "", "root"), "/");
  CHECK(t.starts_with("root:x:0:0:root:/root:/bin/sh\n"));
  t = passwd::passwd_text(1000, 65534, known("u", "", "nogroup"), "/");
  CHECK(t.find("nobody:x:65534:65534:nobody:/:/bin/false\n") != std::string::npos);
  CHECK(t.ends_with("u:x:1000:65534::/:/bin/sh\n"));
}

TEST_CASE("passwd_text replaces \":\" and newlines in fields by \"_\"", "[passwd]") {
  SECTION("user name") {
    std::string t = passwd::passwd_text(1000, 1000, known("ev:il\nroot", "", "g"), "/");
    CHECK(t.ends_with("ev_il_root:x:1000:1000::/:/bin/sh\n"));
    CHECK(count_lines(t) == 3);
  }
  SECTION("GECOS") {
    std::string t =
        passwd::passwd_text(1000, 1000, known("u", "x:0:0:\nroot::0:0::/:/bin/sh", "g"), "/");
    CHECK(t.ends_with("u:x:1000:1000:x_0_0__root__0_0__/_/bin/sh:/:/bin/sh\n"));
    CHECK(count_lines(t) == 3);
  }
  SECTION("HOME, for a known user") {
    std::string t = passwd::passwd_text(1000, 1000, known("u", "", "g"), "/home/a:b\nc");
    CHECK(t.ends_with("u:x:1000:1000::/home/a_b_c:/bin/sh\n"));
  }
  SECTION("HOME, for the dummy user") {
    std::string t = passwd::passwd_text(1000, 1000, HostNames{}, "/h:x");
    CHECK(t.ends_with("charlie:x:1000:1000:Charlie:/h_x:/bin/sh\n"));
  }
  SECTION("every line has seven fields") {
    std::string t = passwd::passwd_text(7, 8, known("a:b", "c:d\ne", "g"), "/x:y");
    size_t start = 0;
    while (start < t.size()) {
      size_t nl = t.find('\n', start);
      REQUIRE(nl != std::string::npos);
      std::string line = t.substr(start, nl - start);
      INFO("line: " << line);
      CHECK(std::count(line.begin(), line.end(), ':') == 6);
      start = nl + 1;
    }
  }
}

TEST_CASE("passwd_text ends with a newline", "[passwd]") {
  for (uid_t uid : {0u, 1u, 65534u, 4294967294u}) {
    INFO("uid " << uid);
    std::string t = passwd::passwd_text(uid, 0, HostNames{}, "/");
    REQUIRE_FALSE(t.empty());
    CHECK(t.back() == '\n');
  }
}

// ----------------------------------------------------------------- group_text

TEST_CASE("group_text for an ordinary known group: root, nogroup, then the group",
          "[passwd][group]") {
  CHECK(passwd::group_text(1001, known("u", "", "staff")) ==
        "root:x:0:\n"
        "nogroup:x:65534:\n"
        "staff:x:1001:\n");
}

TEST_CASE("group_text for an unknown group uses the dummy \"charliegroup\"",
          "[passwd][group]") {
  CHECK(passwd::group_text(4242, HostNames{}) ==
        "root:x:0:\n"
        "nogroup:x:65534:\n"
        "charliegroup:x:4242:\n");
}

TEST_CASE("group_text uses the group name even when the user is unknown",
          "[passwd][group]") {
  HostNames n;
  n.group = "users";
  CHECK(passwd::group_text(100, n).ends_with("users:x:100:\n"));
}

TEST_CASE("group_text omits root's line for gid 0 and nogroup's for gid 65534",
          "[passwd][group]") {
  CHECK(passwd::group_text(0, known("root", "", "root")) ==
        "nogroup:x:65534:\n"
        "root:x:0:\n");
  CHECK(passwd::group_text(65534, known("nobody", "", "nogroup")) ==
        "root:x:0:\n"
        "nogroup:x:65534:\n");
  CHECK(passwd::group_text(0, HostNames{}) ==
        "nogroup:x:65534:\n"
        "charliegroup:x:0:\n");
}

TEST_CASE("group_text replaces \":\" and newlines in the name by \"_\"", "[passwd][group]") {
  std::string t = passwd::group_text(1000, known("u", "", "wheel:x:0:\nroot"));
  CHECK(t.ends_with("wheel_x_0__root:x:1000:\n"));
  CHECK(count_lines(t) == 3);
}

// --------------------------------------------------------------------- lookup

TEST_CASE("lookup finds root for uid 0 and gid 0", "[passwd][lookup]") {
  HostNames n = passwd::lookup(0, 0);
  REQUIRE(n.user.has_value());
  CHECK(*n.user == "root");
  REQUIRE(n.group.has_value());
  CHECK(*n.group == "root");
}

TEST_CASE("lookup gives no names for ids the host does not know", "[passwd][lookup]") {
  // An arbitrary large id that no account database in a test setup holds.
  HostNames n = passwd::lookup(3141592653u, 3141592653u);
  CHECK_FALSE(n.user.has_value());
  CHECK(n.gecos.empty());
  CHECK_FALSE(n.group.has_value());
}

TEST_CASE("lookup's result feeds passwd_text without a dummy line for root",
          "[passwd][lookup]") {
  HostNames n = passwd::lookup(0, 0);
  std::string t = passwd::passwd_text(0, 0, n, "/");
  CHECK(t.starts_with("nobody:x:65534:65534:nobody:/:/bin/false\nroot:x:0:0:"));
  CHECK(t.find("charlie") == std::string::npos);
}
