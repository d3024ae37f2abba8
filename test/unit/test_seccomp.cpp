// Unit tests for chute::seccomp: the deny-list profile's syntax, errno
// names, and what the compiled filter holds. Loading one is the end-to-end
// test's part (test/cli/ch-run-seccomp.sh).
#include <catch2/catch.hpp>

#include <linux/filter.h>

#include <cerrno>
#include <string>
#include <vector>

#include "chute/error.hpp"
#include "chute/seccomp.hpp"

using namespace chute;
using Catch::Contains;
using seccomp::Rule;
using Rules = std::vector<Rule>;

namespace {

Rules parse(std::string_view text) { return seccomp::parse_profile(text, "prof"); }

}  // namespace

TEST_CASE("seccomp: errno names and numbers", "[seccomp]") {
  CHECK(seccomp::parse_errno("EPERM") == EPERM);
  CHECK(seccomp::parse_errno("enosys") == ENOSYS);
  CHECK(seccomp::parse_errno("EAcces") == EACCES);
  CHECK(seccomp::parse_errno("38") == 38);
  CHECK(seccomp::parse_errno("4095") == 4095);
  for (const char* bad : {"", "0", "4096", "-1", "+1", "1x", "EPERMX", "PERM", " EPERM", "0x10",
                          "99999999999999999999"}) {
    INFO("errno " << bad);
    CHECK_FALSE(seccomp::parse_errno(bad).has_value());
  }
}

TEST_CASE("seccomp: system call names libseccomp knows, on any architecture", "[seccomp]") {
  CHECK(seccomp::known_call("bpf"));
  CHECK(seccomp::known_call("chown32"));   // i386 and 32-bit ARM only
  CHECK(seccomp::known_call("iopl"));      // x86 only
  CHECK(seccomp::known_call("cacheflush"));  // ARM only
  for (const char* bad : {"", "Bpf", "no_such_call", "92", "bpf ", "b-pf", "bpf\n"}) {
    INFO("name " << bad);
    CHECK_FALSE(seccomp::known_call(bad));
  }
}

TEST_CASE("seccomp: the built-in lists", "[seccomp]") {
  for (auto name : seccomp::default_deny()) {
    INFO(name);
    CHECK(seccomp::known_call(name));
  }
  for (auto name : seccomp::faked_calls()) {
    INFO(name);
    CHECK(seccomp::known_call(name));
  }
  const auto rules = seccomp::default_rules();
  REQUIRE(rules.size() == seccomp::default_deny().size());
  CHECK(rules.front() == Rule{"kexec_load", EPERM});
}

TEST_CASE("seccomp: profiles", "[seccomp]") {
  CHECK(parse("").empty());
  CHECK(parse("# only a comment\n\n   \n\t\n").empty());
  CHECK(parse("bpf") == Rules{{"bpf", EPERM}});
  CHECK(parse("bpf\nkeyctl ENOSYS\n") == Rules{{"bpf", EPERM}, {"keyctl", ENOSYS}});
  CHECK(parse("  bpf\t  38  # why\r\n") == Rules{{"bpf", 38}});
  CHECK(parse("bpf#comment") == Rules{{"bpf", EPERM}});
  SECTION("@default, with or without an errno") {
    auto r = parse("@default\n");
    REQUIRE(r.size() == seccomp::default_deny().size());
    CHECK(r == seccomp::default_rules());
    r = parse("userfaultfd\n@default EDOM\n");
    REQUIRE(r.size() == 1 + seccomp::default_deny().size());
    CHECK(r[0] == Rule{"userfaultfd", EPERM});
    CHECK(r[1] == Rule{"kexec_load", EDOM});
  }
  SECTION("mistakes, each naming the file and the line") {
    CHECK_THROWS_WITH(parse("bpf\n# x\nbogus_call\n"), Contains("prof:3: unknown system call \"bogus_call\""));
    CHECK_THROWS_WITH(parse("bpf EBOGUS"), Contains("prof:1: not an errno name or a number from 1 to 4095: \"EBOGUS\""));
    CHECK_THROWS_WITH(parse("\nbpf 0"), Contains("prof:2: not an errno"));
    CHECK_THROWS_WITH(parse("bpf EPERM x"), Contains("prof:1: expected a system call and an optional errno"));
    CHECK_THROWS_WITH(parse("@default x"), Contains("prof:1: not an errno"));
    CHECK_THROWS_WITH(parse("@defaults"), Contains("unknown system call \"@defaults\""));
    CHECK_THROWS_WITH(parse(std::string("bpf\0", 4)), Contains("unknown system call"));
    CHECK_THROWS_AS(parse("BPF"), Error);
  }
}

TEST_CASE("seccomp: compiling", "[seccomp]") {
  SECTION("nothing asked, no filter") {
    auto p = seccomp::compile({});
    CHECK(p.code.empty());
    CHECK(p.kexec_errno == -1);
  }
  SECTION("root emulation: a filter, and kexec_load must come back faked") {
    seccomp::Policy policy;
    policy.emulate_root = true;
    auto p = seccomp::compile(policy);
    CHECK_FALSE(p.code.empty());
    CHECK(p.code.size() <= BPF_MAXINSNS);
    CHECK(p.kexec_errno == 0);
  }
  SECTION("a deny list alone: no check") {
    seccomp::Policy policy;
    policy.deny = seccomp::default_rules();
    auto p = seccomp::compile(policy);
    CHECK_FALSE(p.code.empty());
    CHECK(p.kexec_errno == -1);
  }
  SECTION("both: the deny list wins, its last rule for a call counts") {
    seccomp::Policy policy;
    policy.emulate_root = true;
    policy.deny = {{"kexec_load", EPERM}, {"kexec_load", EDOM}};
    auto p = seccomp::compile(policy);
    CHECK(p.kexec_errno == EDOM);
  }
  SECTION("more rules, a longer filter") {
    seccomp::Policy small, big;
    small.deny = {{"bpf", EPERM}};
    big.deny = seccomp::default_rules();
    CHECK(seccomp::compile(big).code.size() > seccomp::compile(small).code.size());
  }
  SECTION("calls of other architectures only are skipped, not refused") {
    seccomp::Policy policy;
    policy.deny = {{"cacheflush", EPERM}, {"iopl", EPERM}, {"chown32", EPERM}};
    CHECK_NOTHROW(seccomp::compile(policy));
  }
  SECTION("a name that slipped past the parser is an error") {
    seccomp::Policy policy;
    policy.deny = {{"no_such_call", EPERM}};
    CHECK_THROWS_WITH(seccomp::compile(policy), Contains("unknown system call \"no_such_call\""));
  }
}
