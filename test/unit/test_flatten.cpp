// Unit tests for chute::flatten::Planner: which members of a layered image
// survive the union of its layers.
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "chute/error.hpp"
#include "chute/flatten.hpp"

using namespace chute;
using flatten::Decision;
using flatten::Ref;
using member::Kind;

namespace {

bool emitted(const std::unordered_map<Ref, Decision, flatten::RefHash>& d, Ref r) {
  auto it = d.find(r);
  return it != d.end() && it->second.action == Decision::Action::kEmit;
}

}  // namespace

TEST_CASE("an upper layer replaces a file", "[flatten]") {
  flatten::Planner p;
  p.begin_layer();
  p.add("etc", Kind::kDir);        // 0:0
  p.add("etc/motd", Kind::kFile);  // 0:1
  p.begin_layer();
  p.add("etc/motd", Kind::kFile);  // 1:0
  auto d = p.finish();
  CHECK(emitted(d, {0, 0}));
  CHECK_FALSE(emitted(d, {0, 1}));
  CHECK(emitted(d, {1, 0}));
}

TEST_CASE("a whiteout deletes a lower file or tree", "[flatten]") {
  flatten::Planner p;
  p.begin_layer();
  p.add("opt", Kind::kDir);          // 0:0
  p.add("opt/a", Kind::kFile);       // 0:1
  p.add("opt/sub", Kind::kDir);      // 0:2
  p.add("opt/sub/b", Kind::kFile);   // 0:3
  p.add("keep", Kind::kFile);        // 0:4
  p.begin_layer();
  p.whiteout(member::whiteout_of("opt/.wh.sub"));  // 1:0
  p.whiteout(member::whiteout_of(".wh.keep-not")); // 1:1, deletes nothing
  auto d = p.finish();
  CHECK(emitted(d, {0, 0}));
  CHECK(emitted(d, {0, 1}));
  CHECK_FALSE(emitted(d, {0, 2}));
  CHECK_FALSE(emitted(d, {0, 3}));
  CHECK(emitted(d, {0, 4}));
  CHECK_FALSE(emitted(d, {1, 0}));
}

TEST_CASE("an opaque directory hides lower contents but keeps its own layer's", "[flatten]") {
  flatten::Planner p;
  p.begin_layer();
  p.add("var", Kind::kDir);          // 0:0
  p.add("var/old", Kind::kFile);     // 0:1
  p.begin_layer();
  p.add("var/new", Kind::kFile);     // 1:0, before the marker in the same layer
  p.whiteout(member::whiteout_of("var/.wh..wh..opq"));  // 1:1
  p.add("var/newer", Kind::kFile);   // 1:2
  auto d = p.finish();
  CHECK(emitted(d, {0, 0}));
  CHECK_FALSE(emitted(d, {0, 1}));
  CHECK(emitted(d, {1, 0}));
  CHECK(emitted(d, {1, 2}));
}

TEST_CASE("a file replacing a directory removes its tree", "[flatten]") {
  flatten::Planner p;
  p.begin_layer();
  p.add("x", Kind::kDir);
  p.add("x/y", Kind::kFile);
  p.begin_layer();
  p.add("x", Kind::kSymlink);
  auto d = p.finish();
  CHECK_FALSE(emitted(d, {0, 0}));
  CHECK_FALSE(emitted(d, {0, 1}));
  CHECK(emitted(d, {1, 0}));
  CHECK(p.survivors() == 1);
}

TEST_CASE("a directory over a directory keeps the lower contents", "[flatten]") {
  flatten::Planner p;
  p.begin_layer();
  p.add("d", Kind::kDir);
  p.add("d/f", Kind::kFile);
  p.begin_layer();
  p.add("d", Kind::kDir);
  auto d = p.finish();
  CHECK_FALSE(emitted(d, {0, 0}));  // the upper one's metadata wins
  CHECK(emitted(d, {0, 1}));
  CHECK(emitted(d, {1, 0}));
}

TEST_CASE("writing through a symlink is refused", "[flatten]") {
  flatten::Planner p;
  p.begin_layer();
  p.add("lib", Kind::kSymlink);
  CHECK_THROWS_AS(p.add("lib/evil", Kind::kFile), Error);
  p.begin_layer();
  CHECK_THROWS_WITH(p.add("lib/x/y", Kind::kFile), Catch::Contains("\"lib\" is a symlink"));
}

TEST_CASE("hard links: to a missing member, to a directory", "[flatten]") {
  flatten::Planner p;
  p.begin_layer();
  p.add("d", Kind::kDir);
  CHECK_THROWS_WITH(p.add("l", Kind::kHardlink, "nothing"), Catch::Contains("not an earlier member"));
  CHECK_THROWS_WITH(p.add("l2", Kind::kHardlink, "d"), Catch::Contains("directory"));
}

TEST_CASE("a hard link whose target was deleted takes the data", "[flatten]") {
  flatten::Planner p;
  p.begin_layer();
  p.add("a", Kind::kFile);                 // 0:0
  p.add("b", Kind::kHardlink, "a");        // 0:1
  p.add("c", Kind::kHardlink, "a");        // 0:2
  p.begin_layer();
  p.whiteout(member::whiteout_of(".wh.a"));  // 1:0
  auto d = p.finish();
  REQUIRE(emitted(d, {0, 0}));
  CHECK(d.at({0, 0}).emit_as == std::optional<std::string>("b"));
  CHECK_FALSE(emitted(d, {0, 1}));   // b's data comes with a's member
  REQUIRE(emitted(d, {0, 2}));
  CHECK(d.at({0, 2}).link_to == std::optional<std::string>("b"));
}

TEST_CASE("a hard link to a surviving file links to it", "[flatten]") {
  flatten::Planner p;
  p.begin_layer();
  p.add("a", Kind::kFile);
  p.add("b", Kind::kHardlink, "a");
  p.add("c", Kind::kHardlink, "b");  // a link to a link: the same file
  auto d = p.finish();
  CHECK(emitted(d, {0, 0}));
  CHECK(d.at({0, 1}).link_to == std::optional<std::string>("a"));
  CHECK(d.at({0, 2}).link_to == std::optional<std::string>("a"));
}

TEST_CASE("skipped headers still count", "[flatten]") {
  flatten::Planner p;
  p.begin_layer();
  p.skip();                  // 0:0, e.g. a device
  p.add("f", Kind::kFile);   // 0:1
  auto d = p.finish();
  CHECK_FALSE(emitted(d, {0, 0}));
  CHECK(emitted(d, {0, 1}));
}

TEST_CASE("a whiteout below a symlink is refused", "[flatten]") {
  flatten::Planner p;
  p.begin_layer();
  p.add("l", Kind::kSymlink);
  p.begin_layer();
  CHECK_THROWS_WITH(p.whiteout(member::whiteout_of("l/.wh.file")), Catch::Contains("\"l\""));
  CHECK_THROWS_AS(p.whiteout(member::whiteout_of("l/.wh..wh..opq")), Error);
}
