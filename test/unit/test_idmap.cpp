// Unit tests for chute::idmap: id map lines and command-line id parsing.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include "chute/error.hpp"
#include "chute/idmap.hpp"

using namespace chute;

TEST_CASE("uid_map_line and gid_map_line give \"INSIDE OUTSIDE 1\\n\"", "[idmap]") {
  IdMap m;
  m.container_uid = 0;
  m.host_uid = 1000;
  m.container_gid = 100;
  m.host_gid = 2000;
  CHECK(idmap::uid_map_line(m) == "0 1000 1\n");
  CHECK(idmap::gid_map_line(m) == "100 2000 1\n");
}

TEST_CASE("uid_map_line uses only the uids and gid_map_line only the gids", "[idmap]") {
  IdMap m;
  m.container_uid = 11;
  m.host_uid = 22;
  m.container_gid = 33;
  m.host_gid = 44;
  CHECK(idmap::uid_map_line(m) == "11 22 1\n");
  CHECK(idmap::gid_map_line(m) == "33 44 1\n");
}

TEST_CASE("map lines print large ids in decimal", "[idmap]") {
  IdMap m;
  m.container_uid = 65534;
  m.host_uid = 4294967294u;
  m.container_gid = 4294967294u;
  m.host_gid = 65534;
  CHECK(idmap::uid_map_line(m) == "65534 4294967294 1\n");
  CHECK(idmap::gid_map_line(m) == "4294967294 65534 1\n");
}

TEST_CASE("a default IdMap maps 0 to 0", "[idmap]") {
  IdMap m;
  CHECK(idmap::uid_map_line(m) == "0 0 1\n");
  CHECK(idmap::gid_map_line(m) == "0 0 1\n");
}

TEST_CASE("parse_id accepts decimal ids from 0 to 4294967294", "[idmap]") {
  CHECK(idmap::parse_id("0", "--uid") == 0u);
  CHECK(idmap::parse_id("1", "--uid") == 1u);
  CHECK(idmap::parse_id("1000", "--uid") == 1000u);
  CHECK(idmap::parse_id("65534", "--gid") == 65534u);
  CHECK(idmap::parse_id("4294967294", "--uid") == 4294967294u);
}

TEST_CASE("parse_id accepts leading zeros as decimal", "[idmap]") {
  CHECK(idmap::parse_id("007", "--uid") == 7u);
  CHECK(idmap::parse_id("010", "--uid") == 10u);  // not octal
  CHECK(idmap::parse_id("0000", "--uid") == 0u);
}

TEST_CASE("parse_id rejects 4294967295 ((uid_t)-1) and anything larger", "[idmap]") {
  for (const char* s : {"4294967295", "4294967296", "9999999999", "18446744073709551615",
                        "18446744073709551616", "99999999999999999999999999"}) {
    INFO("input: " << s);
    CHECK_THROWS_AS(idmap::parse_id(s, "--uid"), Error);
  }
}

TEST_CASE("parse_id rejects empty text", "[idmap]") {
  CHECK_THROWS_AS(idmap::parse_id("", "--uid"), Error);
  CHECK_THROWS_WITH(idmap::parse_id("", "--uid"), Catch::Contains("--uid"));
}

TEST_CASE("parse_id rejects signs", "[idmap]") {
  for (const char* s : {"-1", "+1", "-0", "+0"}) {
    INFO("input: " << s);
    CHECK_THROWS_AS(idmap::parse_id(s, "--uid"), Error);
  }
}

TEST_CASE("parse_id rejects junk around or inside the number", "[idmap]") {
  for (const char* s : {"abc", "12abc", "abc12", " 12", "12 ", "1 2", "1.0", "1e3", "0x10",
                        "1\n", "\t1", "1,000", "١"}) {
    INFO("input: " << s);
    CHECK_THROWS_AS(idmap::parse_id(s, "--gid"), Error);
  }
}

TEST_CASE("parse_id rejects an embedded NUL", "[idmap]") {
  using namespace std::string_view_literals;
  CHECK_THROWS_AS(idmap::parse_id("12\0"sv, "--uid"), Error);
}

TEST_CASE("parse_id errors name the option and the text", "[idmap]") {
  CHECK_THROWS_WITH(idmap::parse_id("12abc", "--gid"), Catch::Contains("--gid"));
  CHECK_THROWS_WITH(idmap::parse_id("12abc", "--gid"), Catch::Contains("12abc"));
  CHECK_THROWS_WITH(idmap::parse_id("4294967295", "-u"), Catch::Contains("-u"));
  CHECK_THROWS_WITH(idmap::parse_id("4294967295", "-u"), Catch::Contains("4294967295"));
  CHECK_THROWS_WITH(idmap::parse_id("-5", "--uid"), Catch::Contains("not a valid id"));
}

TEST_CASE("parse_id errors carry the launcher's exit code", "[idmap]") {
  try {
    idmap::parse_id("x", "--uid");
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(e.exit_code() == kExitMisc);
  }
}
