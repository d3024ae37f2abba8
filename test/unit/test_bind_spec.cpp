// Unit tests for chute::bind_spec::parse: -b/--bind SRC[:DST[:ro|rw]].
#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include "chute/bind_spec.hpp"
#include "chute/error.hpp"

using namespace chute;
using Catch::Contains;

namespace {

BindSpec spec(std::string src, std::string dst, bool ro) {
  BindSpec b;
  b.src = std::move(src);
  b.dst = std::move(dst);
  b.readonly = ro;
  return b;
}

}  // namespace

TEST_CASE("bind SRC alone binds at the same path, read-write", "[bind_spec]") {
  BindSpec b = bind_spec::parse("/data");
  CHECK(b.src == "/data");
  CHECK(b.dst == "/data");
  CHECK_FALSE(b.readonly);
}

TEST_CASE("bind SRC:DST binds SRC at DST, read-write", "[bind_spec]") {
  CHECK(bind_spec::parse("/host/data:/mnt/data") == spec("/host/data", "/mnt/data", false));
}

TEST_CASE("bind SRC:DST:ro is read-only", "[bind_spec]") {
  CHECK(bind_spec::parse("/host:/mnt:ro") == spec("/host", "/mnt", true));
}

TEST_CASE("bind SRC:DST:rw is read-write", "[bind_spec]") {
  CHECK(bind_spec::parse("/host:/mnt:rw") == spec("/host", "/mnt", false));
}

TEST_CASE("bind SRC::ro and SRC::rw bind at the same path", "[bind_spec]") {
  CHECK(bind_spec::parse("/data::ro") == spec("/data", "/data", true));
  CHECK(bind_spec::parse("/data::rw") == spec("/data", "/data", false));
}

TEST_CASE("bind SRC is kept as given, even when relative", "[bind_spec]") {
  SECTION("relative SRC with an absolute DST") {
    BindSpec b = bind_spec::parse("data/dir:/mnt");
    CHECK(b.src == "data/dir");
    CHECK(b.dst == "/mnt");
  }
  SECTION("SRC is not normalised") {
    BindSpec b = bind_spec::parse("/a//b/./c/:/mnt");
    CHECK(b.src == "/a//b/./c/");
  }
  SECTION("SRC may contain \"..\"") {
    BindSpec b = bind_spec::parse("../up:/mnt");
    CHECK(b.src == "../up");
    CHECK(b.dst == "/mnt");
  }
}

TEST_CASE("bind DST is normalised", "[bind_spec]") {
  SECTION("repeated and trailing slashes, dot components") {
    CHECK(bind_spec::parse("/h:/mnt//a/./b/").dst == "/mnt/a/b");
  }
  SECTION("DST taken from SRC is normalised too, SRC kept as given") {
    BindSpec b = bind_spec::parse("/data//x/");
    CHECK(b.src == "/data//x/");
    CHECK(b.dst == "/data/x");
  }
  SECTION("SRC::ro with an unnormalised SRC") {
    BindSpec b = bind_spec::parse("/./data/::ro");
    CHECK(b.src == "/./data/");
    CHECK(b.dst == "/data");
    CHECK(b.readonly);
  }
}

TEST_CASE("bind rejects an empty argument", "[bind_spec]") {
  CHECK_THROWS_AS(bind_spec::parse(""), Error);
  CHECK_THROWS_WITH(bind_spec::parse(""), Contains("--bind") && Contains("empty"));
}

TEST_CASE("bind rejects an empty SRC", "[bind_spec]") {
  for (const char* a : {":/mnt", ":/mnt:ro", "::ro", ":"}) {
    INFO("arg: " << a);
    CHECK_THROWS_AS(bind_spec::parse(a), Error);
    CHECK_THROWS_WITH(bind_spec::parse(a), Contains("SRC is empty"));
  }
}

TEST_CASE("bind rejects an empty DST after a colon", "[bind_spec]") {
  CHECK_THROWS_AS(bind_spec::parse("/data:"), Error);
  CHECK_THROWS_WITH(bind_spec::parse("/data:"), Contains("DST is empty"));
  CHECK_THROWS_WITH(bind_spec::parse("/data:"), Contains("/data:"));
}

TEST_CASE("bind rejects more than three colon-separated parts", "[bind_spec]") {
  for (const char* a : {"/a:/b:ro:x", "/a:/b:ro:", "/a:::", "/a:/b:c:d:e"}) {
    INFO("arg: " << a);
    CHECK_THROWS_AS(bind_spec::parse(a), Error);
    CHECK_THROWS_WITH(bind_spec::parse(a), Contains("too many colons"));
  }
}

TEST_CASE("bind rejects an unknown option word", "[bind_spec]") {
  for (const char* a : {"/a:/b:RO", "/a:/b:readonly", "/a:/b:r", "/a:/b:ro,rw", "/a::x",
                        "/a:/b: ro"}) {
    INFO("arg: " << a);
    CHECK_THROWS_AS(bind_spec::parse(a), Error);
    CHECK_THROWS_WITH(bind_spec::parse(a), Contains("unknown option"));
  }
  SECTION("the message names the bad word") {
    CHECK_THROWS_WITH(bind_spec::parse("/a:/b:readonly"), Contains("readonly"));
  }
}

TEST_CASE("bind rejects an empty option word", "[bind_spec]") {
  CHECK_THROWS_AS(bind_spec::parse("/a:/b:"), Error);
  CHECK_THROWS_AS(bind_spec::parse("/a::"), Error);
}

TEST_CASE("bind rejects a relative DST", "[bind_spec]") {
  SECTION("explicit relative DST") {
    CHECK_THROWS_AS(bind_spec::parse("/a:mnt"), Error);
    CHECK_THROWS_WITH(bind_spec::parse("/a:mnt"), Contains("not absolute") && Contains("mnt"));
  }
  SECTION("relative SRC used as DST") {
    CHECK_THROWS_AS(bind_spec::parse("data"), Error);
    CHECK_THROWS_WITH(bind_spec::parse("data"), Contains("not absolute"));
    CHECK_THROWS_AS(bind_spec::parse("./data::ro"), Error);
  }
}

TEST_CASE("bind rejects a DST with a \"..\" component", "[bind_spec]") {
  for (const char* a : {"/a:/mnt/../etc", "/a:/..", "/a:/mnt/..:ro", "/x/../y", "/x/..::rw"}) {
    INFO("arg: " << a);
    CHECK_THROWS_AS(bind_spec::parse(a), Error);
    CHECK_THROWS_WITH(bind_spec::parse(a), Contains("\"..\""));
  }
}

TEST_CASE("bind accepts names that only contain dots", "[bind_spec]") {
  CHECK(bind_spec::parse("/a:/mnt/..x").dst == "/mnt/..x");
  CHECK(bind_spec::parse("/a:/mnt/x..").dst == "/mnt/x..");
  CHECK(bind_spec::parse("/a:/.../b").dst == "/.../b");
}

TEST_CASE("bind rejects \"/\" as DST, however it is spelled", "[bind_spec]") {
  for (const char* a : {"/", "/a:/", "/a://", "/a:/.", "/a:/./:ro", "//::ro"}) {
    INFO("arg: " << a);
    CHECK_THROWS_AS(bind_spec::parse(a), Error);
    CHECK_THROWS_WITH(bind_spec::parse(a), Contains("must not be \"/\""));
  }
}

TEST_CASE("bind rejects a NUL byte", "[bind_spec]") {
  using namespace std::string_view_literals;
  CHECK_THROWS_AS(bind_spec::parse("/a\0b:/mnt"sv), Error);
  CHECK_THROWS_WITH(bind_spec::parse("/a:/mnt\0"sv), Contains("NUL"));
}

TEST_CASE("bind errors name the argument", "[bind_spec]") {
  CHECK_THROWS_WITH(bind_spec::parse("/src:rel"), Contains("/src:rel"));
  CHECK_THROWS_WITH(bind_spec::parse("/src:/d:bogus"), Contains("/src:/d:bogus"));
  CHECK_THROWS_WITH(bind_spec::parse("/a:/b:c:d"), Contains("/a:/b:c:d"));
}

TEST_CASE("bind errors carry the launcher's exit code", "[bind_spec]") {
  try {
    bind_spec::parse("/a:rel");
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(e.exit_code() == kExitMisc);
  }
}

TEST_CASE("bind specs compare by every field", "[bind_spec]") {
  CHECK(bind_spec::parse("/a:/b") == bind_spec::parse("/a:/b:rw"));
  CHECK_FALSE(bind_spec::parse("/a:/b") == bind_spec::parse("/a:/b:ro"));
  CHECK_FALSE(bind_spec::parse("/a:/b") == bind_spec::parse("/a:/c"));
  CHECK_FALSE(bind_spec::parse("/a:/b") == bind_spec::parse("/x:/b"));
}
