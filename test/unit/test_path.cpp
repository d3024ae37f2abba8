// Unit tests for chute::path: lexical path helpers (no file system access).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "chute/path.hpp"
#include "chute/text.hpp"

using namespace chute;
using Strings = std::vector<std::string>;

TEST_CASE("path::is_absolute is true only for a leading slash", "[path]") {
  CHECK(path::is_absolute("/"));
  CHECK(path::is_absolute("/usr/bin"));
  CHECK(path::is_absolute("//double"));
  CHECK_FALSE(path::is_absolute(""));
  CHECK_FALSE(path::is_absolute("."));
  CHECK_FALSE(path::is_absolute("usr/bin"));
  CHECK_FALSE(path::is_absolute("./x"));
  CHECK_FALSE(path::is_absolute(" /x"));
}

TEST_CASE("path::components drops empty and \".\" components and keeps \"..\"", "[path]") {
  SECTION("plain absolute path") {
    CHECK(path::components("/usr/local/bin") == Strings{"usr", "local", "bin"});
  }
  SECTION("relative path") {
    CHECK(path::components("a/b") == Strings{"a", "b"});
  }
  SECTION("repeated, leading and trailing slashes") {
    CHECK(path::components("//a///b//") == Strings{"a", "b"});
  }
  SECTION("dot components removed") {
    CHECK(path::components("./a/./b/.") == Strings{"a", "b"});
  }
  SECTION("dot-dot components kept in place") {
    CHECK(path::components("/a/../b/..") == Strings{"a", "..", "b", ".."});
  }
  SECTION("names that merely contain dots are ordinary") {
    CHECK(path::components("/.hidden/..x/x../...") ==
          Strings{".hidden", "..x", "x..", "..."});
  }
  SECTION("nothing left") {
    CHECK(path::components("").empty());
    CHECK(path::components("/").empty());
    CHECK(path::components("///").empty());
    CHECK(path::components(".").empty());
    CHECK(path::components("./.").empty());
  }
}

TEST_CASE("path::has_dotdot detects a \"..\" component only", "[path]") {
  CHECK(path::has_dotdot(".."));
  CHECK(path::has_dotdot("/.."));
  CHECK(path::has_dotdot("../x"));
  CHECK(path::has_dotdot("/a/../b"));
  CHECK(path::has_dotdot("/a/b/.."));
  CHECK(path::has_dotdot("/a/b/../"));
  CHECK(path::has_dotdot("a//..//b"));
  CHECK_FALSE(path::has_dotdot(""));
  CHECK_FALSE(path::has_dotdot("/"));
  CHECK_FALSE(path::has_dotdot("/a/b"));
  CHECK_FALSE(path::has_dotdot("/a/./b/."));
  CHECK_FALSE(path::has_dotdot("/a..b"));
  CHECK_FALSE(path::has_dotdot("/..a/b.."));
  CHECK_FALSE(path::has_dotdot("/.../x"));
}

TEST_CASE("path::normalise removes repeated and trailing slashes and dots", "[path]") {
  SECTION("already normal") {
    CHECK(path::normalise("/usr/bin") == "/usr/bin");
    CHECK(path::normalise("a/b") == "a/b");
  }
  SECTION("repeated slashes") {
    CHECK(path::normalise("//usr///bin") == "/usr/bin");
    CHECK(path::normalise("a//b") == "a/b");
  }
  SECTION("trailing slashes") {
    CHECK(path::normalise("/usr/bin/") == "/usr/bin");
    CHECK(path::normalise("/usr/bin///") == "/usr/bin");
    CHECK(path::normalise("a/") == "a");
  }
  SECTION("dot components") {
    CHECK(path::normalise("/./usr/./bin/.") == "/usr/bin");
    CHECK(path::normalise("./a") == "a");
  }
  SECTION("dot-dot is kept, not resolved") {
    CHECK(path::normalise("/a/../b") == "/a/../b");
    CHECK(path::normalise("../x/") == "../x");
  }
  SECTION("root stays root") {
    CHECK(path::normalise("/") == "/");
    CHECK(path::normalise("///") == "/");
    CHECK(path::normalise("/.") == "/");
    CHECK(path::normalise("/./") == "/");
  }
  SECTION("empty and dot give dot") {
    CHECK(path::normalise("") == ".");
    CHECK(path::normalise(".") == ".");
    CHECK(path::normalise("./") == ".");
    CHECK(path::normalise("././.") == ".");
  }
}

TEST_CASE("path::normalise is idempotent", "[path]") {
  for (const char* p : {"/", "", ".", "//a/./b//", "x/../y/", "/..", "a"}) {
    INFO("path: " << p);
    std::string once = path::normalise(p);
    CHECK(path::normalise(once) == once);
  }
}

TEST_CASE("path::join joins with exactly one slash and drops B's leading slashes",
          "[path]") {
  SECTION("documented example") {
    CHECK(path::join("/img", "/etc") == "/img/etc");
  }
  SECTION("relative B") {
    CHECK(path::join("/img", "etc/passwd") == "/img/etc/passwd");
  }
  SECTION("A with a trailing slash") {
    CHECK(path::join("/img/", "etc") == "/img/etc");
    CHECK(path::join("/", "etc") == "/etc");
  }
  SECTION("B with several leading slashes") {
    CHECK(path::join("/img", "///etc") == "/img/etc");
  }
  SECTION("empty B, or B of slashes only, gives A unchanged") {
    CHECK(path::join("/img", "") == "/img");
    CHECK(path::join("/img", "///") == "/img");
    CHECK(path::join("/img/", "") == "/img/");
  }
  SECTION("empty A") {
    CHECK(path::join("", "etc") == "/etc");
    CHECK(path::join("", "/etc") == "/etc");
  }
  SECTION("relative A") {
    CHECK(path::join("img", "/etc") == "img/etc");
  }
  SECTION("the rest of B is left alone") {
    CHECK(path::join("/img", "/a//b/") == "/img/a//b/");
  }
}

TEST_CASE("path::parent gives the part before the last component", "[path]") {
  CHECK(path::parent("/x") == "/");
  CHECK(path::parent("x") == ".");
  CHECK(path::parent("/a/b/c") == "/a/b");
  CHECK(path::parent("/a/b/c/") == "/a/b");
  CHECK(path::parent("//a//b") == "/a");
  CHECK(path::parent("a/b") == "a");
  CHECK(path::parent("/a/./b/.") == "/a");
  CHECK(path::parent("/") == "/");
  CHECK(path::parent("") == ".");
}

TEST_CASE("path::leaf gives the last component", "[path]") {
  CHECK(path::leaf("/") == "");
  CHECK(path::leaf("///") == "");
  CHECK(path::leaf("/x") == "x");
  CHECK(path::leaf("x") == "x");
  CHECK(path::leaf("/a/b/c") == "c");
  CHECK(path::leaf("/a/b/c//") == "c");
  CHECK(path::leaf("a/b/./") == "b");
  CHECK(path::leaf("/a/..") == "..");
}

TEST_CASE("path::parent and path::leaf rebuild a normal absolute path", "[path]") {
  for (const char* p : {"/a", "/a/b", "/usr/local/lib/x.so"}) {
    INFO("path: " << p);
    CHECK(path::join(path::parent(p), path::leaf(p)) == p);
  }
}

TEST_CASE("text::split and text::trim") {
  using V = std::vector<std::string>;
  CHECK(chute::text::split("a,,b,", ',') == V{"a", "b"});
  CHECK(chute::text::split("a,,b,", ',', true) == V{"a", "", "b"});
  CHECK(chute::text::split("", ':').empty());
  CHECK(chute::text::split("/etc/cdi:/var/run/cdi", ':') == V{"/etc/cdi", "/var/run/cdi"});
  CHECK(chute::text::split("l1\nl2\n", '\n') == V{"l1", "l2"});
  CHECK(chute::text::trim(" \t x y \r") == "x y");
  CHECK(chute::text::trim(" \t ").empty());
}
