// Unit tests for the structured-text reader (doc::parse): what YAML becomes
// in the one tree type, and the errors that name the file and the line.
#include <catch2/catch.hpp>

#include "chute/document.hpp"
#include "chute/error.hpp"

using namespace chute;
using Catch::Matchers::StartsWith;

TEST_CASE("document: YAML scalars stay strings; null is null") {
  auto v = doc::parse(R"(
a: 1
b: true
c: "null"
d: null
e: ~
f:
g: 'x y'
h: [1, ~, "", Null]
)",
                      "x.yaml");
  CHECK(v["a"] == "1");
  CHECK(v["b"] == "true");
  CHECK(v["c"] == "null");  // quoted: a string
  CHECK(v["d"].is_null());
  CHECK(v["e"].is_null());
  CHECK(v["f"].is_null());
  CHECK(v["g"] == "x y");
  REQUIRE(v["h"].size() == 4);
  CHECK(v["h"][0] == "1");
  CHECK(v["h"][1].is_null());
  CHECK(v["h"][2] == "");  // quoted empty: a string
  CHECK(v["h"][3].is_null());
}

TEST_CASE("document: empty text, JSON, and only the first YAML document") {
  CHECK(doc::parse("", "x.yaml").is_null());
  CHECK(doc::parse("# only a comment\n", "x.yaml").is_null());
  CHECK(doc::parse(" {\"a\": [1, 2]}", "x.json")["a"][1] == 2);
  auto v = doc::parse("a: 1\n---\na: 2\n", "x.yaml");
  CHECK(v["a"] == "1");
}

TEST_CASE("document: errors name the file and the line") {
  CHECK_THROWS_WITH(doc::parse("a: 1\nb: [1, 2\n", "x.yaml"),
                    StartsWith("x.yaml: not valid YAML: line 3:"));
  CHECK_THROWS_WITH(doc::parse("a: 1\n  b: 2\n", "x.yaml"),
                    StartsWith("x.yaml: not valid YAML: line 2:"));
  CHECK_THROWS_WITH(doc::parse("a: 1\n? [x]\n: 2\n", "x.yaml"),
                    "x.yaml: line 2: a key that is not a scalar");
  CHECK_THROWS_WITH(doc::parse("a: *nowhere\n", "x.yaml"),
                    StartsWith("x.yaml: not valid YAML: line 1:"));
  CHECK_THROWS_WITH(doc::parse("{\"a\": }", "x.json"), StartsWith("x.json: not valid JSON:"));
  CHECK_THROWS_WITH(doc::parse(std::string("a: 1\0", 5), "x.yaml"),
                    "x.yaml: contains a NUL byte");
}

TEST_CASE("document: an alias inside the node it names ends, as an Error") {
  CHECK_THROWS_WITH(doc::parse("a: &x [1, *x]\n", "x.yaml"),
                    "x.yaml: nested more than 64 levels deep");
  CHECK_THROWS_WITH(doc::parse("&x {a: *x}\n", "x.yaml"),
                    "x.yaml: nested more than 64 levels deep");
}
