// Unit tests for chute::cli: ch-run's command line.
#include <catch2/catch.hpp>

#include <sys/utsname.h>

#include <cstdio>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <initializer_list>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "chute/cli.hpp"
#include "chute/error.hpp"
#include "chute/job.hpp"
#include "chute/seccomp.hpp"

using namespace chute;
using namespace std::string_view_literals;
using Catch::Contains;
using Action = cli::Parsed::Action;
using OpKind = env::Op::Kind;
using Strings = std::vector<std::string>;

namespace {

// parse_ch_run on "ch-run ARGS...".
cli::Parsed parse(std::initializer_list<std::string> args) {
  std::vector<std::string> store{"ch-run"};
  store.insert(store.end(), args.begin(), args.end());
  std::vector<const char*> argv;
  for (const auto& s : store) argv.push_back(s.c_str());
  argv.push_back(nullptr);
  return cli::parse_ch_run(static_cast<int>(store.size()), argv.data());
}

// A file made with mkstemp(3) under /tmp, removed at the end of the scope.
class TempFile {
public:
  explicit TempFile(std::string_view data) {
    std::string tmpl = "/tmp/chute-unit-cli-XXXXXX";
    int fd = ::mkstemp(tmpl.data());
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    path_ = tmpl;
    ssize_t n = ::write(fd, data.data(), data.size());
    ::close(fd);
    if (n != static_cast<ssize_t>(data.size())) throw std::runtime_error("write failed");
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

private:
  std::string path_;
};

}  // namespace

// ----------------------------------------------------------- IMAGE, COMMAND

TEST_CASE("cli: IMAGE then COMMAND and its arguments", "[cli]") {
  cli::Parsed p = parse({"/img", "/bin/echo", "hello", "world"});
  CHECK(p.action == Action::kRun);
  CHECK(p.config.image == "/img");
  CHECK(p.config.argv == Strings{"/bin/echo", "hello", "world"});
}

TEST_CASE("cli: defaults when no option is given", "[cli]") {
  cli::Parsed p = parse({"img", "cmd"});
  const Config& c = p.config;
  CHECK(c.binds.empty());
  CHECK_FALSE(c.cd.has_value());
  CHECK_FALSE(c.uid.has_value());
  CHECK_FALSE(c.gid.has_value());
  CHECK_FALSE(c.storage.has_value());
  CHECK_FALSE(c.mount_dir.has_value());
  CHECK(c.env_ops.empty());
  CHECK_FALSE(c.env_no_expand);
  CHECK_FALSE(c.write);
  CHECK_FALSE(c.unsafe);
  CHECK_FALSE(c.private_tmp);
  CHECK_FALSE(c.home);
  CHECK_FALSE(c.no_passwd);
  CHECK(c.verbosity == 0);
  CHECK(p.feature.empty());
}

TEST_CASE("cli: \"--\" ends the options", "[cli]") {
  SECTION("between IMAGE and COMMAND") {
    cli::Parsed p = parse({"img", "--", "ls", "-l", "--all"});
    CHECK(p.config.image == "img");
    CHECK(p.config.argv == Strings{"ls", "-l", "--all"});
  }
  SECTION("before IMAGE") {
    cli::Parsed p = parse({"-w", "--", "img", "ls", "-l"});
    CHECK(p.config.write);
    CHECK(p.config.image == "img");
    CHECK(p.config.argv == Strings{"ls", "-l"});
  }
  SECTION("options after \"--\" go to the command") {
    cli::Parsed p = parse({"img", "--", "cmd", "-w", "--home", "-v"});
    CHECK_FALSE(p.config.write);
    CHECK_FALSE(p.config.home);
    CHECK(p.config.verbosity == 0);
    CHECK(p.config.argv == Strings{"cmd", "-w", "--home", "-v"});
  }
  SECTION("a second \"--\" is the command's") {
    cli::Parsed p = parse({"img", "--", "cmd", "--", "x"});
    CHECK(p.config.argv == Strings{"cmd", "--", "x"});
  }
  SECTION("an IMAGE that looks like an option after \"--\"") {
    cli::Parsed p = parse({"--", "-img", "cmd"});
    CHECK(p.config.image == "-img");
    CHECK(p.config.argv == Strings{"cmd"});
  }
}

TEST_CASE("cli: options may come between IMAGE and \"--\"", "[cli]") {
  cli::Parsed p = parse({"img", "-w", "--", "cmd"});
  CHECK(p.config.write);
  CHECK(p.config.image == "img");
  CHECK(p.config.argv == Strings{"cmd"});
}

TEST_CASE("cli: IMAGE and COMMAND are required", "[cli]") {
  SECTION("nothing") {
    CHECK_THROWS_AS(parse({}), Error);
    CHECK_THROWS_WITH(parse({}), Contains("IMAGE and/or COMMAND not specified"));
  }
  SECTION("options only") {
    CHECK_THROWS_WITH(parse({"-w", "-v"}), Contains("IMAGE and/or COMMAND not specified"));
  }
  SECTION("IMAGE without COMMAND") {
    CHECK_THROWS_WITH(parse({"img"}), Contains("IMAGE and/or COMMAND not specified"));
  }
  SECTION("IMAGE and \"--\" without COMMAND") {
    CHECK_THROWS_WITH(parse({"img", "--"}), Contains("IMAGE and/or COMMAND not specified"));
  }
  SECTION("\"--\" alone") {
    CHECK_THROWS_WITH(parse({"--"}), Contains("IMAGE and/or COMMAND not specified"));
  }
}

TEST_CASE("cli: the caller's argv is not reordered", "[cli]") {
  const char* argv[] = {"ch-run", "img", "-w", "--", "cmd", "-x", nullptr};
  const char* copy[7];
  std::copy(std::begin(argv), std::end(argv), std::begin(copy));
  cli::Parsed p = cli::parse_ch_run(6, argv);
  CHECK(p.config.write);
  for (int i = 0; i < 7; ++i) {
    INFO("argv[" << i << "]");
    CHECK(argv[i] == copy[i]);
  }
}

TEST_CASE("cli: parsing again starts afresh", "[cli]") {
  cli::Parsed a = parse({"-w", "-v", "img1", "cmd1"});
  cli::Parsed b = parse({"img2", "cmd2"});
  CHECK(b.config.image == "img2");
  CHECK(b.config.argv == Strings{"cmd2"});
  CHECK_FALSE(b.config.write);
  CHECK(b.config.verbosity == 0);
  CHECK_THROWS_AS(parse({"--bogus", "img", "cmd"}), Error);
  cli::Parsed c = parse({"-t", "img3", "cmd3"});
  CHECK(c.config.private_tmp);
  CHECK(c.config.image == "img3");
}

// -------------------------------------------------------------- each option

TEST_CASE("cli: -b/--bind, in order, in every spelling", "[cli][bind]") {
  cli::Parsed p = parse({"-b", "/a", "-b/b:/mnt/b", "--bind", "/c:/mnt/c:ro", "--bind=/d::ro",
                         "img", "cmd"});
  const auto& b = p.config.binds;
  REQUIRE(b.size() == 4);
  CHECK(b[0] == BindSpec{"/a", "/a", false});
  CHECK(b[1] == BindSpec{"/b", "/mnt/b", false});
  CHECK(b[2] == BindSpec{"/c", "/mnt/c", true});
  CHECK(b[3] == BindSpec{"/d", "/d", true});
}

TEST_CASE("cli: a bad --bind fails naming the argument", "[cli][bind]") {
  CHECK_THROWS_AS(parse({"-b", "/a:rel", "img", "cmd"}), Error);
  CHECK_THROWS_WITH(parse({"-b", "/a:rel", "img", "cmd"}), Contains("--bind") && Contains("/a:rel"));
  CHECK_THROWS_WITH(parse({"--bind=/a:/b:bogus", "img", "cmd"}), Contains("bogus"));
  CHECK_THROWS_WITH(parse({"--bind=", "img", "cmd"}), Contains("--bind"));
}

TEST_CASE("cli: -c/--cd", "[cli]") {
  CHECK(*parse({"-c", "/work", "img", "cmd"}).config.cd == "/work");
  CHECK(*parse({"-c/w2", "img", "cmd"}).config.cd == "/w2");
  CHECK(*parse({"--cd", "rel", "img", "cmd"}).config.cd == "rel");
  CHECK(*parse({"--cd=/x", "img", "cmd"}).config.cd == "/x");
  SECTION("the last one wins") {
    CHECK(*parse({"--cd=/x", "-c", "/y", "img", "cmd"}).config.cd == "/y");
  }
  SECTION("empty is an error") {
    CHECK_THROWS_AS(parse({"--cd=", "img", "cmd"}), Error);
    CHECK_THROWS_WITH(parse({"-c", "", "img", "cmd"}), Contains("--cd") && Contains("empty"));
  }
}

TEST_CASE("cli: --env-no-expand", "[cli][env]") {
  CHECK(parse({"--env-no-expand", "img", "cmd"}).config.env_no_expand);
}

TEST_CASE("cli: -g/--gid and -u/--uid", "[cli]") {
  cli::Parsed p = parse({"-u", "0", "-g", "100", "img", "cmd"});
  CHECK(p.config.uid == 0u);
  CHECK(p.config.gid == 100u);
  p = parse({"--uid=4294967294", "--gid", "65534", "img", "cmd"});
  CHECK(p.config.uid == 4294967294u);
  CHECK(p.config.gid == 65534u);
  p = parse({"-u7", "-g8", "img", "cmd"});
  CHECK(p.config.uid == 7u);
  CHECK(p.config.gid == 8u);
}

TEST_CASE("cli: bad ids fail naming the option", "[cli]") {
  CHECK_THROWS_AS(parse({"--uid=-1", "img", "cmd"}), Error);
  CHECK_THROWS_WITH(parse({"--uid=-1", "img", "cmd"}), Contains("--uid") && Contains("-1"));
  CHECK_THROWS_WITH(parse({"-u", "alice", "img", "cmd"}), Contains("--uid") && Contains("alice"));
  CHECK_THROWS_WITH(parse({"--gid=4294967295", "img", "cmd"}), Contains("--gid"));
  CHECK_THROWS_WITH(parse({"-g", "", "img", "cmd"}), Contains("--gid"));
}

TEST_CASE("cli: --home", "[cli]") {
  CHECK(parse({"--home", "img", "cmd"}).config.home);
}

TEST_CASE("cli: -m/--mount", "[cli]") {
  CHECK(*parse({"-m", "/mnt/sq", "img", "cmd"}).config.mount_dir == "/mnt/sq");
  CHECK(*parse({"--mount=/var/sq", "img", "cmd"}).config.mount_dir == "/var/sq");
  CHECK_THROWS_AS(parse({"--mount=", "img", "cmd"}), Error);
  CHECK_THROWS_WITH(parse({"-m", "", "img", "cmd"}), Contains("--mount") && Contains("empty"));
}

TEST_CASE("cli: --no-passwd", "[cli]") {
  CHECK(parse({"--no-passwd", "img", "cmd"}).config.no_passwd);
}

TEST_CASE("cli: --pid, off by default, takes no argument", "[cli]") {
  CHECK_FALSE(parse({"img", "cmd"}).config.pid);
  CHECK(parse({"--pid", "img", "cmd"}).config.pid);
  CHECK_THROWS_WITH(parse({"--pid=yes", "img", "cmd"}), Contains("--pid"));
}

TEST_CASE("cli: -t/--private-tmp", "[cli]") {
  CHECK(parse({"-t", "img", "cmd"}).config.private_tmp);
  CHECK(parse({"--private-tmp", "img", "cmd"}).config.private_tmp);
}

TEST_CASE("cli: -s/--storage", "[cli]") {
  CHECK(*parse({"-s", "/st", "img", "cmd"}).config.storage == "/st");
  CHECK(*parse({"--storage=/st2", "img", "cmd"}).config.storage == "/st2");
  CHECK(*parse({"--storage", "/st3", "img", "cmd"}).config.storage == "/st3");
  CHECK_THROWS_AS(parse({"--storage=", "img", "cmd"}), Error);
  CHECK_THROWS_WITH(parse({"-s", "", "img", "cmd"}), Contains("--storage") && Contains("empty"));
}

TEST_CASE("cli: --unsafe", "[cli]") {
  CHECK(parse({"--unsafe", "img", "cmd"}).config.unsafe);
}

TEST_CASE("cli: -w/--write", "[cli]") {
  CHECK(parse({"-w", "img", "cmd"}).config.write);
  CHECK(parse({"--write", "img", "cmd"}).config.write);
}

TEST_CASE("cli: short options may be grouped", "[cli]") {
  cli::Parsed p = parse({"-wtv", "-u0", "img", "cmd"});
  CHECK(p.config.write);
  CHECK(p.config.private_tmp);
  CHECK(p.config.verbosity == 1);
  CHECK(p.config.uid == 0u);
}

TEST_CASE("cli: long options may be abbreviated when unambiguous", "[cli]") {
  cli::Parsed p = parse({"--home", "--priv", "--no-pass", "img", "cmd"});
  CHECK(p.config.home);
  CHECK(p.config.private_tmp);
  CHECK(p.config.no_passwd);
  // "--wri" could be --write or --write-fake.
  CHECK_THROWS_WITH(parse({"--wri", "img", "cmd"}), Contains("--wri"));
}

// ------------------------------------------------------------- -q and -v

TEST_CASE("cli: -q lowers verbosity, down to -3", "[cli][verbosity]") {
  CHECK(parse({"-q", "img", "cmd"}).config.verbosity == -1);
  CHECK(parse({"-qq", "img", "cmd"}).config.verbosity == -2);
  CHECK(parse({"-q", "--quiet", "-q", "img", "cmd"}).config.verbosity == -3);
  CHECK(parse({"-qqqq", "img", "cmd"}).config.verbosity == -3);
}

TEST_CASE("cli: -v raises verbosity, up to 3", "[cli][verbosity]") {
  CHECK(parse({"-v", "img", "cmd"}).config.verbosity == 1);
  CHECK(parse({"--verbose", "-v", "img", "cmd"}).config.verbosity == 2);
  CHECK(parse({"-vvv", "img", "cmd"}).config.verbosity == 3);
  CHECK(parse({"-vvvvv", "img", "cmd"}).config.verbosity == 3);
}

TEST_CASE("cli: -q and -v together are an error", "[cli][verbosity]") {
  CHECK_THROWS_AS(parse({"-q", "-v", "img", "cmd"}), Error);
  CHECK_THROWS_WITH(parse({"-vq", "img", "cmd"}), Contains("incompatible"));
  CHECK_THROWS_WITH(parse({"--verbose", "--quiet", "img", "cmd"}), Contains("--quiet") &&
                                                                      Contains("--verbose"));
}

// ------------------------------------------------- --set-env and --unset-env

TEST_CASE("cli: --set-env=NAME=VALUE sets one variable", "[cli][env]") {
  cli::Parsed p = parse({"--set-env=FOO=bar=baz", "img", "cmd"});
  REQUIRE(p.config.env_ops.size() == 1);
  const env::Op& op = p.config.env_ops[0];
  CHECK(op.kind == OpKind::kSet);
  CHECK(op.vars == std::vector<env::Var>{{"FOO", "bar=baz"}});
}

TEST_CASE("cli: --set-env strips single quotes around the value", "[cli][env]") {
  cli::Parsed p = parse({"--set-env=FOO='a b'", "img", "cmd"});
  REQUIRE(p.config.env_ops.size() == 1);
  CHECK(p.config.env_ops[0].vars == std::vector<env::Var>{{"FOO", "a b"}});
}

TEST_CASE("cli: --set-env with an empty name fails naming the option", "[cli][env]") {
  CHECK_THROWS_AS(parse({"--set-env==x", "img", "cmd"}), Error);
  CHECK_THROWS_WITH(parse({"--set-env==x", "img", "cmd"}),
                    Contains("empty name") && Contains("--set-env"));
}

TEST_CASE("cli: --set-env= with an empty argument is an error", "[cli][env]") {
  CHECK_THROWS_AS(parse({"--set-env=", "img", "cmd"}), Error);
  CHECK_THROWS_WITH(parse({"--set-env=", "img", "cmd"}),
                    Contains("--set-env") && Contains("empty argument"));
  CHECK_THROWS_WITH(parse({"--set-env0=", "img", "cmd"}),
                    Contains("--set-env0") && Contains("empty argument"));
}

TEST_CASE("cli: bare --set-env reads the image's file, newline-separated", "[cli][env]") {
  cli::Parsed p = parse({"--set-env", "img", "cmd"});
  REQUIRE(p.config.env_ops.size() == 1);
  CHECK(p.config.env_ops[0].kind == OpKind::kImageFile);
  CHECK(p.config.env_ops[0].delim == '\n');
  CHECK(p.config.env_ops[0].vars.empty());
  SECTION("the next word is IMAGE, not the option's argument") {
    CHECK(p.config.image == "img");
    CHECK(p.config.argv == Strings{"cmd"});
  }
}

TEST_CASE("cli: bare --set-env0 reads the image's file, NUL-separated", "[cli][env]") {
  cli::Parsed p = parse({"--set-env0", "img", "cmd"});
  REQUIRE(p.config.env_ops.size() == 1);
  CHECK(p.config.env_ops[0].kind == OpKind::kImageFile);
  CHECK(p.config.env_ops[0].delim == '\0');
  CHECK(p.config.image == "img");
}

TEST_CASE("cli: --set-env=FILE reads the host file at parse time", "[cli][env]") {
  TempFile f("A=1\n\nB='two words'\nC=x:$A\n");
  cli::Parsed p = parse({"--set-env=" + f.path(), "img", "cmd"});
  REQUIRE(p.config.env_ops.size() == 1);
  const env::Op& op = p.config.env_ops[0];
  CHECK(op.kind == OpKind::kSet);
  // Values are not expanded at parse time.
  CHECK(op.vars == std::vector<env::Var>{{"A", "1"}, {"B", "two words"}, {"C", "x:$A"}});
}

TEST_CASE("cli: --set-env=FILE errors name FILE:LINE", "[cli][env]") {
  TempFile f("A=1\nnot an assignment\n");
  CHECK_THROWS_AS(parse({"--set-env=" + f.path(), "img", "cmd"}), Error);
  CHECK_THROWS_WITH(parse({"--set-env=" + f.path(), "img", "cmd"}),
                    Contains(f.path() + ":2") && Contains("no delimiter"));
}

TEST_CASE("cli: --set-env0=FILE reads NUL-separated records", "[cli][env]") {
  TempFile f("A=multi\nline\0B=2\0"sv);
  cli::Parsed p = parse({"--set-env0=" + f.path(), "img", "cmd"});
  REQUIRE(p.config.env_ops.size() == 1);
  CHECK(p.config.env_ops[0].kind == OpKind::kSet);
  CHECK(p.config.env_ops[0].vars == std::vector<env::Var>{{"A", "multi\nline"}, {"B", "2"}});
}

TEST_CASE("cli: --set-env0=NAME=VALUE sets one variable", "[cli][env]") {
  cli::Parsed p = parse({"--set-env0=X=y", "img", "cmd"});
  REQUIRE(p.config.env_ops.size() == 1);
  CHECK(p.config.env_ops[0].kind == OpKind::kSet);
  CHECK(p.config.env_ops[0].vars == std::vector<env::Var>{{"X", "y"}});
}

TEST_CASE("cli: --set-env=FILE fails when FILE cannot be read", "[cli][env]") {
  std::string missing = "/tmp/chute-unit-cli-no-such-file-";
  missing += std::to_string(::getpid());
  CHECK_THROWS_AS(parse({"--set-env=" + missing, "img", "cmd"}), SysError);
  CHECK_THROWS_WITH(parse({"--set-env=" + missing, "img", "cmd"}),
                    Contains("--set-env") && Contains("can't read file") && Contains(missing));
  try {
    parse({"--set-env0=" + missing, "img", "cmd"});
    FAIL("no exception");
  } catch (const SysError& e) {
    CHECK(e.err() == ENOENT);
    CHECK_THAT(std::string(e.message()), Contains("--set-env0"));
  }
}

TEST_CASE("cli: --set-env=FILE with an empty file sets nothing", "[cli][env]") {
  TempFile f("");
  cli::Parsed p = parse({"--set-env=" + f.path(), "img", "cmd"});
  REQUIRE(p.config.env_ops.size() == 1);
  CHECK(p.config.env_ops[0].kind == OpKind::kSet);
  CHECK(p.config.env_ops[0].vars.empty());
}

TEST_CASE("cli: --unset-env=GLOB", "[cli][env]") {
  cli::Parsed p = parse({"--unset-env=+(FOO|BAR)", "--unset-env", "*", "img", "cmd"});
  REQUIRE(p.config.env_ops.size() == 2);
  CHECK(p.config.env_ops[0].kind == OpKind::kUnset);
  CHECK(p.config.env_ops[0].glob == "+(FOO|BAR)");
  CHECK(p.config.env_ops[1].kind == OpKind::kUnset);
  CHECK(p.config.env_ops[1].glob == "*");
}

TEST_CASE("cli: --unset-env with an empty GLOB is an error", "[cli][env]") {
  CHECK_THROWS_AS(parse({"--unset-env=", "img", "cmd"}), Error);
  CHECK_THROWS_WITH(parse({"--unset-env", "", "img", "cmd"}),
                    Contains("--unset-env") && Contains("GLOB must not be empty"));
}

TEST_CASE("cli: environment options keep command-line order", "[cli][env]") {
  cli::Parsed p = parse({"--unset-env=A*", "--set-env=A1=x", "--set-env", "--set-env0",
                         "--unset-env=B", "img", "cmd"});
  const auto& ops = p.config.env_ops;
  REQUIRE(ops.size() == 5);
  CHECK(ops[0].kind == OpKind::kUnset);
  CHECK(ops[0].glob == "A*");
  CHECK(ops[1].kind == OpKind::kSet);
  CHECK(ops[1].vars == std::vector<env::Var>{{"A1", "x"}});
  CHECK(ops[2].kind == OpKind::kImageFile);
  CHECK(ops[2].delim == '\n');
  CHECK(ops[3].kind == OpKind::kImageFile);
  CHECK(ops[3].delim == '\0');
  CHECK(ops[4].kind == OpKind::kUnset);
  CHECK(ops[4].glob == "B");
}

// ------------------------------------------------------- option errors

TEST_CASE("cli: an unknown long option fails naming it", "[cli][errors]") {
  CHECK_THROWS_AS(parse({"--bogus", "img", "cmd"}), Error);
  CHECK_THROWS_WITH(parse({"--bogus", "img", "cmd"}),
                    Contains("unknown option") && Contains("--bogus"));
  CHECK_THROWS_WITH(parse({"img", "--also-bogus=1", "--", "cmd"}), Contains("--also-bogus"));
}

TEST_CASE("cli: an unknown short option fails naming it", "[cli][errors]") {
  CHECK_THROWS_AS(parse({"-x", "img", "cmd"}), Error);
  CHECK_THROWS_WITH(parse({"-x", "img", "cmd"}), Contains("unknown option") && Contains("-x"));
  SECTION("at the end of a group") {
    CHECK_THROWS_WITH(parse({"-wx", "img", "cmd"}), Contains("unknown option") && Contains("x"));
  }
  SECTION("at the start of a group") {
    // getopt has not advanced optind past "-xw" yet: the message must not
    // name the word before the group.
    CHECK_THROWS_WITH(parse({"-xw", "img", "cmd"}),
                      Contains("unknown option") && Contains("-x"));
    CHECK_THROWS_WITH(parse({"-v", "-xw", "img", "cmd"}),
                      Contains("unknown option") && Contains("-x"));
  }
}

TEST_CASE("cli: an option without its required argument fails naming it", "[cli][errors]") {
  SECTION("short") {
    CHECK_THROWS_AS(parse({"img", "cmd", "-b"}), Error);
    CHECK_THROWS_WITH(parse({"img", "cmd", "-b"}),
                      Contains("requires an argument") && Contains("-b"));
  }
  SECTION("long") {
    CHECK_THROWS_WITH(parse({"img", "cmd", "--cd"}),
                      Contains("requires an argument") && Contains("--cd"));
    CHECK_THROWS_WITH(parse({"img", "cmd", "--unset-env"}), Contains("--unset-env"));
  }
}

TEST_CASE("cli: an option that takes no argument refuses one", "[cli][errors]") {
  CHECK_THROWS_AS(parse({"--write=yes", "img", "cmd"}), Error);
  CHECK_THROWS_WITH(parse({"--home=/x", "img", "cmd"}), Contains("--home"));
}

TEST_CASE("cli: option errors carry the launcher's exit code", "[cli][errors]") {
  try {
    parse({"--bogus", "img", "cmd"});
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(e.exit_code() == kExitMisc);
  }
}

// ------------------------------------------- help, usage, version, feature

// "-?" is argp's spelling of --help, documented in the help text.
TEST_CASE("cli: -h, --help and -? ask for help, without IMAGE", "[cli][actions]") {
  CHECK(parse({"-h"}).action == Action::kHelp);
  CHECK(parse({"--help"}).action == Action::kHelp);
  CHECK(parse({"-?"}).action == Action::kHelp);
  CHECK(parse({"img", "cmd", "--help"}).action == Action::kHelp);
}

// No getopt state left by an earlier failed parse changes the answer.
TEST_CASE("cli: -? asks for help even after an unknown short option elsewhere",
          "[cli][actions]") {
  CHECK_THROWS_AS(parse({"-x", "img", "cmd"}), Error);
  CHECK(parse({"-?"}).action == Action::kHelp);
}

TEST_CASE("cli: --usage, -V and --version, without IMAGE", "[cli][actions]") {
  CHECK(parse({"--usage"}).action == Action::kUsage);
  CHECK(parse({"-V"}).action == Action::kVersion);
  CHECK(parse({"--version"}).action == Action::kVersion);
}

TEST_CASE("cli: actions still check the other options", "[cli][actions]") {
  CHECK_THROWS_AS(parse({"--help", "--bogus"}), Error);
  CHECK_THROWS_AS(parse({"-q", "-v", "--version"}), Error);
}

TEST_CASE("cli: --feature=FEAT, without IMAGE", "[cli][actions]") {
  cli::Parsed p = parse({"--feature=extglob"});
  CHECK(p.action == Action::kFeature);
  CHECK(p.feature == "extglob");
  p = parse({"--feature", "squash"});
  CHECK(p.action == Action::kFeature);
  CHECK(p.feature == "squash");
  SECTION("an unknown feature is not judged while parsing") {
    p = parse({"--feature=nope"});
    CHECK(p.action == Action::kFeature);
    CHECK(p.feature == "nope");
  }
}

TEST_CASE("cli: feature_status answers as Charliecloud does", "[cli][feature]") {
  CHECK(cli::feature_status("extglob") == 0);
  CHECK(cli::feature_status("squash") == 0);
  // seccomp: a filter is really loaded and tried, in a child process.
  CHECK(cli::feature_status("seccomp") == 0);
  // Kernel features: 0 from the version that has them, 1 before.
  struct utsname u;
  REQUIRE(::uname(&u) == 0);
  int major = 0, minor = 0;
  REQUIRE(std::sscanf(u.release, "%d.%d", &major, &minor) == 2);
  auto at_least = [&](int ma, int mi) { return major > ma || (major == ma && minor >= mi); };
  CHECK(cli::feature_status("overlayfs") == (at_least(5, 11) ? 0 : 1));
  CHECK(cli::feature_status("tmpfs-xattrs") == (at_least(6, 6) ? 0 : 1));
}

TEST_CASE("cli: feature_status rejects unknown features, naming them", "[cli][feature]") {
  CHECK_THROWS_AS(cli::feature_status("warp-drive"), Error);
  CHECK_THROWS_WITH(cli::feature_status("warp-drive"),
                    Contains("--feature") && Contains("warp-drive"));
  CHECK_THROWS_AS(cli::feature_status(""), Error);
  CHECK_THROWS_AS(cli::feature_status("EXTGLOB"), Error);
  CHECK_THROWS_AS(cli::feature_status("extglob "), Error);
}

TEST_CASE("cli: usage and help texts", "[cli][help]") {
  std::string usage = cli::ch_run_usage();
  std::string help = cli::ch_run_help();
  CHECK(usage.starts_with("usage: ch-run "));
  CHECK(usage.find("IMAGE -- COMMAND") != std::string::npos);
  CHECK(usage.ends_with("\n"));
  CHECK(help.starts_with(usage));
  SECTION("help names every long option") {
    for (const char* opt :
         {"--bind", "--cd", "--env-no-expand", "--feature", "--gid", "--help", "--home",
          "--mount", "--no-passwd", "--pid", "--private-tmp", "--quiet", "--seccomp",
          "--seccomp-deny", "--set-env", "--set-env0",
          "--storage", "--uid", "--unsafe", "--unset-env", "--usage", "--verbose", "--version",
          "--write"}) {
      INFO("option " << opt);
      CHECK(help.find(opt) != std::string::npos);
    }
  }
}

TEST_CASE("cli: --join and its options; --join-ct and --join-tag imply --join", "[cli]") {
  CHECK_FALSE(parse({"img", "--", "true"}).config.join);
  CHECK(parse({"-j", "img", "--", "true"}).config.join);
  CHECK(parse({"--join", "img", "--", "true"}).config.join);
  auto c = parse({"--join-ct=4", "img", "--", "true"}).config;
  CHECK(c.join);
  CHECK(c.join_ct == "4");
  c = parse({"--join-tag", "step.0", "img", "--", "true"}).config;
  CHECK(c.join);
  CHECK(c.join_tag == "step.0");
  CHECK_THROWS_WITH(parse({"--join-tag=../x", "img", "--", "true"}), Contains("'/'"));
  c = parse({"--join-pid=123", "img", "--", "true"}).config;
  CHECK_FALSE(c.join);
  CHECK(c.join_pid == 123);
  for (const char* bad : {"--join-pid=0", "--join-pid=-5", "--join-pid=12a", "--join-pid="})
    CHECK_THROWS_WITH(parse({bad, "img", "--", "true"}), Contains("--join-pid"));
}

TEST_CASE("--cap-drop: names, all, and what a job loses") {
  auto p = parse({"--cap-drop=SYS_ADMIN,cap_net_raw", "/img", "true"});
  CHECK(p.config.cap_drop == std::vector<int>{21, 13});
  CHECK(job::parse_cap_list("all") == std::vector<int>{-1});
  CHECK(job::parse_cap_list("Chown") == std::vector<int>{0});
  CHECK_THROWS_WITH(job::parse_cap_list("sys_admin,bogus"), Contains("unknown capability \"bogus\""));
  CHECK_THROWS_WITH(job::parse_cap_list(""), Contains("empty"));
  CHECK_THROWS_AS(job::parse_cap_list("cap_"), Error);
  // Not root in the namespace: the whole bounding set goes, whatever asked.
  auto all = job::caps_to_drop(1000, {});
  REQUIRE_FALSE(all.empty());
  CHECK(all.front() == 0);
  CHECK(job::caps_to_drop(1000, {21}) == all);
  // Root: only what --cap-drop names, once each; "all" is everything.
  CHECK(job::caps_to_drop(0, {}).empty());
  CHECK(job::caps_to_drop(0, {21, 13, 21}) == std::vector<int>{21, 13});
  CHECK(job::caps_to_drop(0, {-1}) == all);
}

TEST_CASE("--seccomp, --seccomp-deny[=FILE]") {
  auto c = parse({"/img", "true"}).config;
  CHECK(c.seccomp.empty());
  c = parse({"--seccomp", "/img", "true"}).config;
  CHECK(c.seccomp.emulate_root);
  CHECK(c.seccomp.deny.empty());
  c = parse({"--seccomp-deny", "/img", "true"}).config;
  CHECK_FALSE(c.seccomp.emulate_root);
  CHECK(c.seccomp.deny == seccomp::default_rules());
  // The optional argument is never the next word: "/img" is the image.
  CHECK(c.image == "/img");
  TempFile prof("bpf ENOSYS\nkeyctl\n");
  c = parse({"--seccomp-deny=" + prof.path(), "--seccomp-deny", "/img", "true"}).config;
  REQUIRE(c.seccomp.deny.size() == 2 + seccomp::default_deny().size());
  CHECK(c.seccomp.deny[0] == seccomp::Rule{"bpf", ENOSYS});
  CHECK(c.seccomp.deny[1] == seccomp::Rule{"keyctl", EPERM});
  SECTION("a bad profile names itself and the line") {
    TempFile bad("bpf\n\nno_such_call\n");
    CHECK_THROWS_WITH(parse({"--seccomp-deny=" + bad.path(), "/img", "true"}),
                      Contains("--seccomp-deny: " + bad.path() + ":3: unknown system call "
                               "\"no_such_call\""));
  }
  SECTION("an unreadable one names itself and why") {
    try {
      parse({"--seccomp-deny=/nonexistent/prof", "/img", "true"});
      FAIL("no error");
    } catch (const SysError& e) {
      CHECK(e.err() == ENOENT);
      CHECK_THAT(e.what(), Contains("--seccomp-deny: can't read profile: /nonexistent/prof"));
    }
    CHECK_THROWS_WITH(parse({"--seccomp-deny=", "/img", "true"}), Contains("empty file name"));
  }
}
