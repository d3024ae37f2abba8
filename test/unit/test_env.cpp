// Unit tests for chute::Environment and chute::env: the job's environment.
#include <catch2/catch.hpp>

#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chute/env.hpp"
#include "chute/error.hpp"

using namespace chute;
using namespace std::string_view_literals;
using Catch::Contains;
using Strings = std::vector<std::string>;

namespace {

Environment make_env(std::initializer_list<const char*> entries) {
  std::vector<const char*> p(entries);
  p.push_back(nullptr);
  return Environment::from_envp(p.data());
}

env::Op set_op(std::vector<env::Var> vars) {
  env::Op op;
  op.kind = env::Op::Kind::kSet;
  op.vars = std::move(vars);
  return op;
}

env::Op unset_op(std::string glob) {
  env::Op op;
  op.kind = env::Op::Kind::kUnset;
  op.glob = std::move(glob);
  return op;
}

env::Op image_op(char delim) {
  env::Op op;
  op.kind = env::Op::Kind::kImageFile;
  op.delim = delim;
  return op;
}

// Runs env::fix and records what the callbacks saw.
struct Fixer {
  std::string image_file;
  int image_reads = 0;
  std::vector<std::string> warnings;

  void operator()(Environment& e, const env::Plan& plan, std::string_view home_default = "/") {
    env::fix(
        e, plan, home_default,
        [this] {
          ++image_reads;
          return image_file;
        },
        [this](std::string_view w) { warnings.emplace_back(w); });
  }
};

}  // namespace

// ---------------------------------------------------------------- Environment

TEST_CASE("Environment::from_envp keeps variables in order", "[env][Environment]") {
  Environment e = make_env({"A=1", "B=2", "C=3"});
  CHECK(e.entries() == Strings{"A=1", "B=2", "C=3"});
}

TEST_CASE("Environment::from_envp skips entries without \"=\"", "[env][Environment]") {
  Environment e = make_env({"A=1", "junk", "B=", ""});
  CHECK(e.entries() == Strings{"A=1", "B="});
}

TEST_CASE("Environment::from_envp accepts a null or empty envp", "[env][Environment]") {
  CHECK(Environment::from_envp(nullptr).entries().empty());
  const char* empty[] = {nullptr};
  CHECK(Environment::from_envp(empty).entries().empty());
}

TEST_CASE("Environment::get finds a variable by its exact name", "[env][Environment]") {
  Environment e = make_env({"PATHX=no", "PATH=/usr/bin", "PAT=also-no", "EMPTY=", "EQ=a=b"});
  SECTION("exact name, not a prefix or extension of it") {
    REQUIRE(e.get("PATH"));
    CHECK(*e.get("PATH") == "/usr/bin");
    CHECK(*e.get("PATHX") == "no");
    CHECK(*e.get("PAT") == "also-no");
  }
  SECTION("an empty value is present, not missing") {
    REQUIRE(e.get("EMPTY").has_value());
    CHECK(e.get("EMPTY")->empty());
  }
  SECTION("the value runs from the first \"=\"") {
    CHECK(*e.get("EQ") == "a=b");
  }
  SECTION("missing names") {
    CHECK_FALSE(e.get("PA").has_value());
    CHECK_FALSE(e.get("path").has_value());
    CHECK_FALSE(e.get("NOPE").has_value());
  }
}

TEST_CASE("Environment::set replaces in place or appends", "[env][Environment]") {
  Environment e = make_env({"A=1", "B=2", "C=3"});
  SECTION("an existing variable keeps its position") {
    e.set("B", "two");
    CHECK(e.entries() == Strings{"A=1", "B=two", "C=3"});
  }
  SECTION("a new variable goes last") {
    e.set("D", "4");
    CHECK(e.entries() == Strings{"A=1", "B=2", "C=3", "D=4"});
  }
  SECTION("a variable whose name extends an existing one is new") {
    e.set("AA", "x");
    CHECK(e.entries() == Strings{"A=1", "B=2", "C=3", "AA=x"});
  }
  SECTION("values may be empty or contain \"=\"") {
    e.set("A", "");
    e.set("E", "x=y");
    CHECK(e.entries() == Strings{"A=", "B=2", "C=3", "E=x=y"});
    CHECK(*e.get("E") == "x=y");
  }
}

TEST_CASE("Environment::unset removes only the named variable", "[env][Environment]") {
  Environment e = make_env({"A=1", "AB=2", "B=3"});
  e.unset("A");
  CHECK(e.entries() == Strings{"AB=2", "B=3"});
  e.unset("NOPE");
  CHECK(e.entries() == Strings{"AB=2", "B=3"});
  e.unset("B");
  CHECK(e.entries() == Strings{"AB=2"});
}

TEST_CASE("Environment::unset_matching removes every match and counts them",
          "[env][Environment]") {
  Environment e = make_env({"FOO=1", "BAR=2", "FOOBAR=3", "BAZ=4", "XFOO=5"});
  SECTION("exact name") {
    CHECK(e.unset_matching("FOO") == 1);
    CHECK(e.entries() == Strings{"BAR=2", "FOOBAR=3", "BAZ=4", "XFOO=5"});
  }
  SECTION("star matches everything") {
    CHECK(e.unset_matching("*") == 5);
    CHECK(e.entries().empty());
  }
  SECTION("prefix glob") {
    CHECK(e.unset_matching("FOO*") == 2);
    CHECK(e.entries() == Strings{"BAR=2", "BAZ=4", "XFOO=5"});
  }
  SECTION("question mark and bracket") {
    CHECK(e.unset_matching("BA?") == 2);
    CHECK(e.entries() == Strings{"FOO=1", "FOOBAR=3", "XFOO=5"});
  }
  SECTION("character class") {
    CHECK(e.unset_matching("BA[R]") == 1);
    CHECK(e.entries() == Strings{"FOO=1", "FOOBAR=3", "BAZ=4", "XFOO=5"});
  }
  SECTION("extended pattern +(FOO|BAR)") {
    CHECK(e.unset_matching("+(FOO|BAR)") == 3);
    CHECK(e.entries() == Strings{"BAZ=4", "XFOO=5"});
  }
  SECTION("extended pattern !(FOO*)") {
    CHECK(e.unset_matching("!(FOO*)") == 3);
    CHECK(e.entries() == Strings{"FOO=1", "FOOBAR=3"});
  }
  SECTION("extended pattern @(BAR|BAZ)") {
    CHECK(e.unset_matching("@(BAR|BAZ)") == 2);
    CHECK(e.entries() == Strings{"FOO=1", "FOOBAR=3", "XFOO=5"});
  }
  SECTION("no match removes nothing") {
    CHECK(e.unset_matching("NOPE*") == 0);
    CHECK(e.entries().size() == 5);
  }
  SECTION("the glob matches whole names, not values or substrings") {
    CHECK(e.unset_matching("1") == 0);
    CHECK(e.unset_matching("OO") == 0);
    CHECK(e.unset_matching("FOO=1") == 0);
    CHECK(e.entries().size() == 5);
  }
  SECTION("matching is case-sensitive") {
    CHECK(e.unset_matching("foo") == 0);
    CHECK(e.entries().size() == 5);
  }
}

TEST_CASE("Environment::envp is NULL-terminated and points at the entries",
          "[env][Environment]") {
  Environment e = make_env({"A=1", "B=two"});
  std::vector<char*> p = e.envp();
  REQUIRE(p.size() == 3);
  CHECK(std::strcmp(p[0], "A=1") == 0);
  CHECK(std::strcmp(p[1], "B=two") == 0);
  CHECK(p[2] == nullptr);
  // The pointers are into the object, not copies.
  CHECK(p[0] == e.entries()[0].data());

  Environment empty;
  std::vector<char*> q = empty.envp();
  REQUIRE(q.size() == 1);
  CHECK(q[0] == nullptr);
}

// ----------------------------------------------------------- parse_assignment

TEST_CASE("parse_assignment splits at the first \"=\"", "[env][parse_assignment]") {
  CHECK(env::parse_assignment("A=b", "w") == env::Var{"A", "b"});
  CHECK(env::parse_assignment("A=b=c", "w") == env::Var{"A", "b=c"});
  CHECK(env::parse_assignment("A==", "w") == env::Var{"A", "="});
  CHECK(env::parse_assignment("A=", "w") == env::Var{"A", ""});
  CHECK(env::parse_assignment("LONG_NAME_1=x y z", "w") == env::Var{"LONG_NAME_1", "x y z"});
}

TEST_CASE("parse_assignment keeps white space", "[env][parse_assignment]") {
  CHECK(env::parse_assignment("A= b ", "w") == env::Var{"A", " b "});
  CHECK(env::parse_assignment(" A=b", "w") == env::Var{" A", "b"});
}

TEST_CASE("parse_assignment strips one pair of single quotes around the value",
          "[env][parse_assignment]") {
  SECTION("quoted value") {
    CHECK(env::parse_assignment("A='b c'", "w") == env::Var{"A", "b c"});
  }
  SECTION("quoted empty value") {
    CHECK(env::parse_assignment("A=''", "w") == env::Var{"A", ""});
  }
  SECTION("only one pair") {
    CHECK(env::parse_assignment("A=''b''", "w") == env::Var{"A", "'b'"});
  }
  SECTION("quotes inside are kept") {
    CHECK(env::parse_assignment("A='b'c'", "w") == env::Var{"A", "b'c"});
    CHECK(env::parse_assignment("A=x'y'z", "w") == env::Var{"A", "x'y'z"});
  }
  SECTION("an unbalanced quote is kept") {
    CHECK(env::parse_assignment("A='b", "w") == env::Var{"A", "'b"});
    CHECK(env::parse_assignment("A=b'", "w") == env::Var{"A", "b'"});
    CHECK(env::parse_assignment("A='", "w") == env::Var{"A", "'"});
  }
  SECTION("double quotes are not special") {
    CHECK(env::parse_assignment("A=\"b\"", "w") == env::Var{"A", "\"b\""});
  }
  SECTION("quotes around the name are not stripped") {
    CHECK(env::parse_assignment("'A'=b", "w") == env::Var{"'A'", "b"});
  }
  SECTION("quotes around the whole record are not stripped from the value") {
    CHECK(env::parse_assignment("'A=b'", "w") == env::Var{"'A", "b'"});
  }
}

TEST_CASE("parse_assignment rejects a record without \"=\"", "[env][parse_assignment]") {
  CHECK_THROWS_AS(env::parse_assignment("NOEQUALS", "file.env:7"), Error);
  CHECK_THROWS_WITH(env::parse_assignment("NOEQUALS", "file.env:7"),
                    Contains("no delimiter") && Contains("file.env:7"));
  CHECK_THROWS_WITH(env::parse_assignment("", "somewhere"),
                    Contains("no delimiter") && Contains("somewhere"));
}

TEST_CASE("parse_assignment rejects an empty name", "[env][parse_assignment]") {
  CHECK_THROWS_AS(env::parse_assignment("=value", "x:3"), Error);
  CHECK_THROWS_WITH(env::parse_assignment("=value", "x:3"),
                    Contains("empty name") && Contains("x:3"));
  CHECK_THROWS_WITH(env::parse_assignment("=", "--set-env argument"),
                    Contains("empty name") && Contains("--set-env argument"));
}

// -------------------------------------------------------------- parse_records

TEST_CASE("parse_records reads newline-separated records", "[env][parse_records]") {
  auto v = env::parse_records("A=1\nB='two'\nC=x=y\n", '\n', "f");
  CHECK(v == std::vector<env::Var>{{"A", "1"}, {"B", "two"}, {"C", "x=y"}});
}

TEST_CASE("parse_records skips empty records", "[env][parse_records]") {
  SECTION("no trailing delimiter needed") {
    CHECK(env::parse_records("A=1\nB=2", '\n', "f") ==
          std::vector<env::Var>{{"A", "1"}, {"B", "2"}});
  }
  SECTION("leading, repeated and trailing delimiters") {
    CHECK(env::parse_records("\n\nA=1\n\n\nB=2\n\n", '\n', "f") ==
          std::vector<env::Var>{{"A", "1"}, {"B", "2"}});
  }
  SECTION("nothing at all") {
    CHECK(env::parse_records("", '\n', "f").empty());
    CHECK(env::parse_records("\n\n\n", '\n', "f").empty());
    CHECK(env::parse_records("\0\0"sv, '\0', "f").empty());
  }
}

TEST_CASE("parse_records with NUL delimiters keeps newlines in values",
          "[env][parse_records]") {
  auto v = env::parse_records("A=line1\nline2\0B=2\0\0C=\0"sv, '\0', "f");
  CHECK(v == std::vector<env::Var>{{"A", "line1\nline2"}, {"B", "2"}, {"C", ""}});
}

TEST_CASE("parse_records with newline delimiters keeps other bytes", "[env][parse_records]") {
  auto v = env::parse_records("A=x\ty\nB= \n"sv, '\n', "f");
  CHECK(v == std::vector<env::Var>{{"A", "x\ty"}, {"B", " "}});
}

TEST_CASE("parse_records numbers records from 1, empty ones included, in errors",
          "[env][parse_records]") {
  SECTION("first record") {
    CHECK_THROWS_AS(env::parse_records("bad\nA=1\n", '\n', "/h/env"), Error);
    CHECK_THROWS_WITH(env::parse_records("bad\nA=1\n", '\n', "/h/env"),
                      Contains("/h/env:1") && Contains("no delimiter"));
  }
  SECTION("after an empty record") {
    CHECK_THROWS_WITH(env::parse_records("A=1\n\nbad\n", '\n', "/h/env"),
                      Contains("/h/env:3"));
  }
  SECTION("empty name") {
    CHECK_THROWS_WITH(env::parse_records("A=1\n=2\n", '\n', "f"),
                      Contains("f:2") && Contains("empty name"));
  }
  SECTION("NUL-separated") {
    CHECK_THROWS_WITH(env::parse_records("A=1\0B=2\0oops"sv, '\0', "z"), Contains("z:3"));
  }
  SECTION("the line number is not a prefix of a larger one") {
    CHECK_THROWS_WITH(env::parse_records("A=1\nbad\n", '\n', "f"), Contains("f:2"));
    CHECK_THROWS_WITH(env::parse_records("A=1\nbad\n", '\n', "f"), !Contains("f:1"));
  }
}

TEST_CASE("parse_records refuses a NUL byte in a newline-separated record",
          "[env][parse_records]") {
  // The kernel would end the variable at the NUL, silently dropping the rest.
  CHECK_THROWS_AS(env::parse_records("A=1\nB=x\0y\n"sv, '\n', "f"), Error);
  CHECK_THROWS_WITH(env::parse_records("A=1\nB=x\0y\n"sv, '\n', "f"),
                    Contains("NUL byte") && Contains("f:2"));
  CHECK_THROWS_WITH(env::parse_assignment("A=\0"sv, "w"), Contains("NUL byte"));
}

TEST_CASE("parse_records refuses a record longer than its limit", "[env][parse_records]") {
  const std::string ok = "A=" + std::string(98, 'x');
  CHECK(env::parse_records(ok + "\n", '\n', "f", 100).size() == 1);
  CHECK_THROWS_AS(env::parse_records("B=1\n" + ok + "y\n", '\n', "f", 100), Error);
  CHECK_THROWS_WITH(env::parse_records("B=1\n" + ok + "y\n", '\n', "f", 100),
                    Contains("longer than 100 bytes") && Contains("f:2"));
  // A record without "=" is long all the same.
  CHECK_THROWS_WITH(env::parse_records(std::string(101, 'x'), '\0', "g", 100),
                    Contains("longer than 100") && Contains("g:1"));
}

// --------------------------------------------------------------------- expand

TEST_CASE("expand leaves values without variables alone", "[env][expand]") {
  Environment e = make_env({"A=1"});
  CHECK(env::expand("plain", e) == "plain");
  CHECK(env::expand("", e) == "");
  CHECK(env::expand("/usr/bin:/bin", e) == "/usr/bin:/bin");
}

TEST_CASE("expand keeps empty items", "[env][expand]") {
  Environment e;
  CHECK(env::expand("a::b", e) == "a::b");
  CHECK(env::expand(":a", e) == ":a");
  CHECK(env::expand("a:", e) == "a:");
  CHECK(env::expand(":", e) == ":");
}

TEST_CASE("expand replaces \"$NAME\" items by the variable's value", "[env][expand]") {
  Environment e = make_env({"A=alpha", "B=/b1:/b2", "PATH=/usr/bin"});
  CHECK(env::expand("$A", e) == "alpha");
  CHECK(env::expand("x:$A:y", e) == "x:alpha:y");
  CHECK(env::expand("$A:$A", e) == "alpha:alpha");
  CHECK(env::expand("$PATH:/opt/bin", e) == "/usr/bin:/opt/bin");
  SECTION("a value with colons is inserted as is") {
    CHECK(env::expand("$B:/c", e) == "/b1:/b2:/c");
  }
}

TEST_CASE("expand drops unset and empty variables with their colon", "[env][expand]") {
  Environment e = make_env({"A=alpha", "EMPTY="});
  CHECK(env::expand("a:$NOPE:b", e) == "a:b");
  CHECK(env::expand("a:$EMPTY:b", e) == "a:b");
  CHECK(env::expand("$NOPE:b", e) == "b");
  CHECK(env::expand("a:$NOPE", e) == "a");
  CHECK(env::expand("$NOPE", e) == "");
  CHECK(env::expand("$NOPE:$EMPTY", e) == "");
  CHECK(env::expand("$NOPE:$A:$EMPTY", e) == "alpha");
}

TEST_CASE("expand keeps \"$\" alone and items that do not start with \"$\"", "[env][expand]") {
  Environment e = make_env({"Y=why", "A=alpha"});
  CHECK(env::expand("$", e) == "$");
  CHECK(env::expand("a:$:b", e) == "a:$:b");
  CHECK(env::expand("x$Y", e) == "x$Y");
  CHECK(env::expand("pre/$A", e) == "pre/$A");
  CHECK(env::expand("$A/bin", e) == "");  // the name is "A/bin", which is unset
}

TEST_CASE("expand does not expand recursively", "[env][expand]") {
  Environment e = make_env({"A=$B", "B=bee"});
  CHECK(env::expand("$A", e) == "$B");
}

// ------------------------------------------------------------------------ fix

TEST_CASE("fix sets HOME from the plan, else from the default", "[env][fix]") {
  Fixer f;
  env::Plan plan;
  SECTION("no --home: the default, replacing the host's") {
    Environment e = make_env({"HOME=/host/home", "PATH=/bin"});
    f(e, plan, "/image/home");
    CHECK(*e.get("HOME") == "/image/home");
    CHECK(e.entries()[0] == "HOME=/image/home");  // replaced in place
  }
  SECTION("--home: the plan's HOME wins over the default") {
    plan.home = "/home/alice";
    Environment e = make_env({"PATH=/bin"});
    f(e, plan, "/image/home");
    CHECK(*e.get("HOME") == "/home/alice");
  }
}

TEST_CASE("fix appends /bin to PATH unless an entry is exactly /bin", "[env][fix]") {
  Fixer f;
  env::Plan plan;
  auto path_after = [&](const char* path) {
    Environment e = make_env({path});
    f(e, plan);
    auto p = e.get("PATH");
    REQUIRE(p.has_value());
    return std::string(*p);
  };
  SECTION("no /bin entry") {
    CHECK(path_after("PATH=/usr/bin") == "/usr/bin:/bin");
    CHECK(path_after("PATH=/usr/local/bin:/usr/bin") == "/usr/local/bin:/usr/bin:/bin");
  }
  SECTION("/bin present") {
    CHECK(path_after("PATH=/bin") == "/bin");
    CHECK(path_after("PATH=/usr/bin:/bin") == "/usr/bin:/bin");
    CHECK(path_after("PATH=/bin:/usr/bin") == "/bin:/usr/bin");
    CHECK(path_after("PATH=/a:/bin:/b") == "/a:/bin:/b");
  }
  SECTION("/bin/ present") {
    CHECK(path_after("PATH=/usr/bin:/bin/") == "/usr/bin:/bin/");
  }
  SECTION("entries that only resemble /bin") {
    CHECK(path_after("PATH=/usr/bin:/binx") == "/usr/bin:/binx:/bin");
    CHECK(path_after("PATH=/bin//") == "/bin//:/bin");
    CHECK(path_after("PATH=bin") == "bin:/bin");
    CHECK(path_after("PATH=/sbin") == "/sbin:/bin");
  }
  SECTION("empty PATH becomes /bin") {
    CHECK(path_after("PATH=") == "/bin");
  }
  CHECK(f.warnings.empty());
}

TEST_CASE("fix warns when PATH is not set and leaves it unset", "[env][fix]") {
  Fixer f;
  env::Plan plan;
  Environment e = make_env({"A=1"});
  f(e, plan);
  CHECK_FALSE(e.get("PATH").has_value());
  REQUIRE(f.warnings.size() == 1);
  CHECK(f.warnings[0] == "$PATH not set");
}

TEST_CASE("fix unsets TMPDIR", "[env][fix]") {
  Fixer f;
  env::Plan plan;
  Environment e = make_env({"TMPDIR=/scratch", "PATH=/bin", "TMPDIRX=keep"});
  f(e, plan);
  CHECK_FALSE(e.get("TMPDIR").has_value());
  CHECK(*e.get("TMPDIRX") == "keep");
}

TEST_CASE("fix lets an op set TMPDIR again", "[env][fix]") {
  Fixer f;
  env::Plan plan;
  plan.ops.push_back(set_op({{"TMPDIR", "/mine"}}));
  Environment e = make_env({"TMPDIR=/scratch", "PATH=/bin"});
  f(e, plan);
  CHECK(*e.get("TMPDIR") == "/mine");
}

TEST_CASE("fix sets CH_RUNNING last", "[env][fix]") {
  Fixer f;
  env::Plan plan;
  SECTION("added at the end") {
    Environment e = make_env({"PATH=/bin", "A=1"});
    f(e, plan);
    REQUIRE_FALSE(e.entries().empty());
    CHECK(e.entries().back() == "CH_RUNNING=Weird Al Yankovic");
  }
  SECTION("even when an op sets it") {
    plan.ops.push_back(set_op({{"CH_RUNNING", "nope"}}));
    Environment e = make_env({"PATH=/bin"});
    f(e, plan);
    CHECK(*e.get("CH_RUNNING") == env::kRunningValue);
  }
  SECTION("even when an op unsets it") {
    plan.ops.push_back(unset_op("CH_*"));
    Environment e = make_env({"PATH=/bin", "CH_RUNNING=old"});
    f(e, plan);
    CHECK(*e.get("CH_RUNNING") == "Weird Al Yankovic");
  }
  SECTION("even when the image file sets it") {
    f.image_file = "CH_RUNNING=image\n";
    plan.ops.push_back(image_op('\n'));
    Environment e = make_env({"PATH=/bin"});
    f(e, plan);
    CHECK(*e.get("CH_RUNNING") == "Weird Al Yankovic");
  }
  SECTION("even when every variable is unset") {
    plan.ops.push_back(unset_op("*"));
    Environment e = make_env({"PATH=/bin", "HOME=/x"});
    f(e, plan);
    CHECK(e.entries() == Strings{"CH_RUNNING=Weird Al Yankovic"});
  }
}

TEST_CASE("fix applies set ops with expansion", "[env][fix]") {
  Fixer f;
  env::Plan plan;
  plan.ops.push_back(set_op({{"PATH", "$PATH:/opt/bin"}, {"X", "a:$NOPE:$PATH"}}));
  Environment e = make_env({"PATH=/usr/bin"});
  f(e, plan);
  // PATH was fixed (":/bin" appended) before the ops ran.
  CHECK(*e.get("PATH") == "/usr/bin:/bin:/opt/bin");
  // Later variables of one op see earlier ones.
  CHECK(*e.get("X") == "a:/usr/bin:/bin:/opt/bin");
}

TEST_CASE("fix expansion sees HOME as fixed", "[env][fix]") {
  Fixer f;
  env::Plan plan;
  plan.home = "/home/me";
  plan.ops.push_back(set_op({{"CFG", "$HOME"}}));
  Environment e = make_env({"HOME=/host", "PATH=/bin"});
  f(e, plan);
  CHECK(*e.get("CFG") == "/home/me");
}

TEST_CASE("fix does not expand when the plan says not to", "[env][fix]") {
  Fixer f;
  env::Plan plan;
  plan.expand = false;
  plan.ops.push_back(set_op({{"PATH", "$PATH:/opt/bin"}, {"Y", "a:$NOPE:b"}}));
  f.image_file = "Z=$PATH\n";
  plan.ops.push_back(image_op('\n'));
  Environment e = make_env({"PATH=/usr/bin"});
  f(e, plan);
  CHECK(*e.get("PATH") == "$PATH:/opt/bin");
  CHECK(*e.get("Y") == "a:$NOPE:b");
  CHECK(*e.get("Z") == "$PATH");
}

TEST_CASE("fix applies ops in order", "[env][fix]") {
  Fixer f;
  env::Plan plan;
  SECTION("set then unset") {
    plan.ops.push_back(set_op({{"FOO", "1"}}));
    plan.ops.push_back(unset_op("FOO"));
    Environment e = make_env({"PATH=/bin"});
    f(e, plan);
    CHECK_FALSE(e.get("FOO").has_value());
  }
  SECTION("unset then set") {
    plan.ops.push_back(unset_op("FOO"));
    plan.ops.push_back(set_op({{"FOO", "2"}}));
    Environment e = make_env({"PATH=/bin", "FOO=host"});
    f(e, plan);
    CHECK(*e.get("FOO") == "2");
  }
  SECTION("two sets: the last wins") {
    plan.ops.push_back(set_op({{"FOO", "first"}}));
    plan.ops.push_back(set_op({{"FOO", "second"}}));
    Environment e = make_env({"PATH=/bin"});
    f(e, plan);
    CHECK(*e.get("FOO") == "second");
  }
  SECTION("an unset glob with extended patterns") {
    plan.ops.push_back(unset_op("+(FOO|BAR)"));
    Environment e = make_env({"PATH=/bin", "FOO=1", "BAR=2", "BAZ=3"});
    f(e, plan);
    CHECK_FALSE(e.get("FOO").has_value());
    CHECK_FALSE(e.get("BAR").has_value());
    CHECK(*e.get("BAZ") == "3");
  }
  SECTION("an unset may remove HOME and PATH after they were fixed") {
    plan.ops.push_back(unset_op("+(HOME|PATH)"));
    Environment e = make_env({"PATH=/usr/bin"});
    f(e, plan, "/");
    CHECK_FALSE(e.get("HOME").has_value());
    CHECK_FALSE(e.get("PATH").has_value());
  }
}

TEST_CASE("fix reads the image file only for image-file ops", "[env][fix]") {
  Fixer f;
  f.image_file = "A=1\n";
  env::Plan plan;
  SECTION("no image-file op: not read") {
    plan.ops.push_back(set_op({{"B", "2"}}));
    Environment e = make_env({"PATH=/bin"});
    f(e, plan);
    CHECK(f.image_reads == 0);
    CHECK_FALSE(e.get("A").has_value());
  }
  SECTION("one read per op") {
    plan.ops.push_back(image_op('\n'));
    plan.ops.push_back(image_op('\n'));
    Environment e = make_env({"PATH=/bin"});
    f(e, plan);
    CHECK(f.image_reads == 2);
    CHECK(*e.get("A") == "1");
  }
}

TEST_CASE("fix parses the image file with the op's delimiter", "[env][fix]") {
  Fixer f;
  env::Plan plan;
  SECTION("newline") {
    f.image_file = "A='one'\n\nB=$A:x\n";
    plan.ops.push_back(image_op('\n'));
    Environment e = make_env({"PATH=/bin"});
    f(e, plan);
    CHECK(*e.get("A") == "one");
    CHECK(*e.get("B") == "one:x");
  }
  SECTION("NUL") {
    f.image_file = std::string("A=multi\nline\0B=2\0"sv);
    plan.ops.push_back(image_op('\0'));
    Environment e = make_env({"PATH=/bin"});
    f(e, plan);
    CHECK(*e.get("A") == "multi\nline");
    CHECK(*e.get("B") == "2");
  }
}

TEST_CASE("fix reports a bad image file as /ch/environment:LINE", "[env][fix]") {
  Fixer f;
  f.image_file = "A=1\nbroken\n";
  env::Plan plan;
  plan.ops.push_back(image_op('\n'));
  Environment e = make_env({"PATH=/bin"});
  CHECK_THROWS_AS(f(e, plan), Error);
  CHECK_THROWS_WITH(f(e, plan), Contains("/ch/environment:2"));
}

TEST_CASE("fix keeps unrelated host variables in order", "[env][fix]") {
  Fixer f;
  env::Plan plan;
  Environment e = make_env({"A=1", "PATH=/usr/bin", "B=2", "HOME=/h", "C=3"});
  f(e, plan, "/");
  CHECK(e.entries() == Strings{"A=1", "PATH=/usr/bin:/bin", "B=2", "HOME=/", "C=3",
                               "CH_RUNNING=Weird Al Yankovic"});
}
