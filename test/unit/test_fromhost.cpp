// Unit tests for ch-fromhost's pure parts: the command line, the lists of
// paths, where each file goes, and the library directory ldconfig reports.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "chute/error.hpp"
#include "chute/fromhost.hpp"

using namespace chute;
using fromhost::Place;
using fromhost::Source;

namespace {

fromhost::Parsed parse(std::vector<std::string> args) {
  args.insert(args.begin(), "ch-fromhost");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return fromhost::parse_cli(static_cast<int>(args.size()), argv.data());
}

std::string parse_error(std::vector<std::string> args) {
  try {
    parse(std::move(args));
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("sources in command-line order, repeatable and combined", "[fromhost]") {
  auto p = parse({"-p", "/a/libx.so", "--cmd", "echo hi", "-f", "list", "--nvidia",
                  "--path=/b/tool", "-c", "true", "/img"});
  REQUIRE(p.action == fromhost::Parsed::Action::kRun);
  const auto& s = p.opts.sources;
  REQUIRE(s.size() == 6);
  CHECK((s[0].kind == Source::Kind::kPath && s[0].value == "/a/libx.so"));
  CHECK((s[1].kind == Source::Kind::kCmd && s[1].value == "echo hi"));
  CHECK((s[2].kind == Source::Kind::kFile && s[2].value == "list"));
  CHECK(s[3].kind == Source::Kind::kNvidia);
  CHECK((s[4].kind == Source::Kind::kPath && s[4].value == "/b/tool"));
  CHECK((s[5].kind == Source::Kind::kCmd && s[5].value == "true"));
  CHECK(p.opts.image == "/img");
  CHECK_FALSE(p.opts.dest);
  CHECK_FALSE(p.opts.print_lib);
  CHECK_FALSE(p.opts.no_ldconfig);
  CHECK(p.opts.unsupported.empty());
}

TEST_CASE("other options, before or after the image", "[fromhost]") {
  auto p = parse({"img", "-d", "/opt/x", "--no-ldconfig", "-v", "-v", "-q", "-p", "/f"});
  CHECK(p.opts.image == "img");
  REQUIRE(p.opts.dest);
  CHECK(*p.opts.dest == "/opt/x");
  CHECK(p.opts.no_ldconfig);
  CHECK(p.opts.verbosity == 1);
  CHECK(parse({"--dest=lib", "-p", "/f", "i"}).opts.dest == "lib");
  CHECK(parse({"-qq", "-p", "/f", "i"}).opts.verbosity == -2);
  // An image whose name starts with '-' after "--".
  CHECK(parse({"-p", "/f", "--", "-img"}).opts.image == "-img");
}

TEST_CASE("--print-lib needs no source", "[fromhost]") {
  auto p = parse({"--print-lib", "img"});
  CHECK(p.opts.print_lib);
  CHECK(p.opts.sources.empty());
}

TEST_CASE("help and version win over everything else", "[fromhost]") {
  CHECK(parse({"-h"}).action == fromhost::Parsed::Action::kHelp);
  CHECK(parse({"--help", "--bogus"}).action == fromhost::Parsed::Action::kHelp);
  CHECK(parse({"--version"}).action == fromhost::Parsed::Action::kVersion);
  CHECK(fromhost::help().find("--nvidia") != std::string::npos);
  CHECK(fromhost::usage().starts_with("usage: ch-fromhost"));
}

TEST_CASE("Cray options are recognised and left for run() to refuse", "[fromhost]") {
  CHECK(parse({"--cray-cxi", "img"}).opts.unsupported == "--cray-cxi");
  CHECK(parse({"--cray-gni", "img"}).opts.unsupported == "--cray-gni");
  CHECK(parse({"--print-fi", "img"}).opts.unsupported == "--print-fi");
  CHECK(parse({"--print-cray-fi", "img"}).opts.unsupported == "--print-cray-fi");
  fromhost::Options o;
  o.image = "/nonexistent";
  o.unsupported = "--cray-cxi";
  CHECK_THROWS_WITH(fromhost::run(o), Catch::Contains("--cray-cxi: not supported"));
}

TEST_CASE("usage errors", "[fromhost]") {
  CHECK_THAT(parse_error({"img"}), Catch::Contains("nothing to inject"));
  CHECK_THAT(parse_error({"-p", "/f"}), Catch::Contains("no image given"));
  CHECK_THAT(parse_error({"-p", "/f", "a", "b"}), Catch::Contains("more than one image"));
  CHECK_THAT(parse_error({"--bogus", "-p", "/f", "img"}),
             Catch::Contains("unrecognised option") && Catch::Contains("--bogus"));
  CHECK_THAT(parse_error({"-x", "-p", "/f", "img"}), Catch::Contains("invalid option -- 'x'"));
  CHECK_THAT(parse_error({"img", "-p"}), Catch::Contains("requires an argument"));
  CHECK_THAT(parse_error({"img", "--dest"}), Catch::Contains("requires an argument"));
  CHECK_THAT(parse_error({"-d", "", "-p", "/f", "img"}), Catch::Contains("empty"));
  CHECK_THAT(parse_error({"-p", "/f", ""}), Catch::Contains("empty"));
  CHECK_THAT(parse_error({"--nvidia=yes", "img"}), Catch::Contains("--nvidia"));
}

TEST_CASE("lists of paths: one per line, trimmed, comments skipped", "[fromhost]") {
  using V = std::vector<std::string>;
  CHECK(fromhost::list_paths("", "f") == V{});
  CHECK(fromhost::list_paths("/a\n/b\n", "f") == V{"/a", "/b"});
  CHECK(fromhost::list_paths("/a", "f") == V{"/a"});
  CHECK(fromhost::list_paths("\n\n  /a  \r\n\t/b\t\n# comment\n  # indented comment\n"
                             "rel/c\n", "f") == V{"/a", "/b", "rel/c"});
  // Only a leading '#' makes a comment.
  CHECK(fromhost::list_paths("/x#y\n", "f") == V{"/x#y"});
  // Blanks inside a name are kept.
  CHECK(fromhost::list_paths("/a b/c d\n", "f") == V{"/a b/c d"});
}

TEST_CASE("lists of paths: a NUL byte in a path is an error naming the line", "[fromhost]") {
  // open(2) would stop at the NUL and copy /etc/hostname under the name "shadow".
  const std::string text("/a\n/etc/hostname\0/../shadow\n", 28);
  CHECK_THROWS_AS(fromhost::list_paths(text, "--file list"), Error);
  CHECK_THROWS_WITH(fromhost::list_paths(text, "--file list"),
                    Catch::Contains("--file list: line 2: NUL byte"));
}

TEST_CASE("shared libraries by name", "[fromhost]") {
  CHECK(fromhost::is_shared_library("/usr/lib/libfoo.so"));
  CHECK(fromhost::is_shared_library("/usr/lib/libfoo.so.1"));
  CHECK(fromhost::is_shared_library("/usr/lib/libcuda.so.535.104.05"));
  CHECK(fromhost::is_shared_library("libfoo.so.1"));
  CHECK_FALSE(fromhost::is_shared_library("/usr/lib/libfoo.a"));
  CHECK_FALSE(fromhost::is_shared_library("/usr/lib/libfoo.sox"));
  CHECK_FALSE(fromhost::is_shared_library("/usr/lib/x.so.d/file"));  // only the last name counts
  CHECK_FALSE(fromhost::is_shared_library("/usr/bin/nvidia-smi"));
}

TEST_CASE("destinations inferred from paths", "[fromhost]") {
  CHECK(fromhost::place_of("/usr/bin/nvidia-smi") == Place::kBin);
  CHECK(fromhost::place_of("/bin/true") == Place::kBin);
  CHECK(fromhost::place_of("/usr/sbin/tool") == Place::kBin);
  CHECK(fromhost::place_of("/opt/x/bin/tool") == Place::kBin);
  CHECK(fromhost::place_of("/usr/lib/x86_64-linux-gnu/libcuda.so.1") == Place::kLibrary);
  CHECK(fromhost::place_of("/usr/lib64/libfoo.so") == Place::kLibrary);
  CHECK(fromhost::place_of("/home/u/build/libfhtest.so.1") == Place::kLibrary);
  // A library is a library, even under a bin directory.
  CHECK(fromhost::place_of("/opt/x/bin/libhelper.so") == Place::kLibrary);
  // Under a lib directory, whatever the name, as Charliecloud does.
  CHECK(fromhost::place_of("/usr/lib/x86_64-linux-gnu/nvidia/data.bin") == Place::kLibrary);
  CHECK(fromhost::place_of("/usr/libexec/helper") == Place::kLibrary);
  // Neither.
  CHECK(fromhost::place_of("/etc/hosts") == Place::kUnknown);
  CHECK(fromhost::place_of("/opt/bin") == Place::kUnknown);  // a file named "bin"
  CHECK(fromhost::place_of("/home/u/notes.txt") == Place::kUnknown);
}

TEST_CASE("plan: where each file goes", "[fromhost]") {
  auto c = fromhost::plan({"/usr/bin/tool", "/h/libx.so.1", "/usr/lib/y/data"}, std::nullopt);
  REQUIRE(c.size() == 3);
  CHECK(c[0].dest_dir == "/usr/bin");
  CHECK(c[0].name == "tool");
  CHECK_FALSE(c[0].library);
  CHECK(c[1].dest_dir.empty());  // the library directory, found later
  CHECK(c[1].name == "libx.so.1");
  CHECK(c[1].library);
  CHECK(c[2].dest_dir.empty());
  CHECK_FALSE(c[2].library);

  auto d = fromhost::plan({"/etc/hosts", "/h/libx.so"}, std::string("opt//x/"));
  REQUIRE(d.size() == 2);
  CHECK(d[0].dest_dir == "/opt/x");
  CHECK(d[1].dest_dir == "/opt/x");
  CHECK(d[1].library);  // ldconfig still runs, as in Charliecloud

  CHECK_THROWS_WITH(fromhost::plan({"/etc/hosts"}, std::nullopt),
                    Catch::Contains("don't know where to put \"/etc/hosts\": use -d"));
  CHECK_THROWS_WITH(fromhost::plan({"/bin/x"}, std::string("/a/../../b")),
                    Catch::Contains("\"..\""));
  CHECK_THROWS_WITH(fromhost::plan({"/"}, std::string("/x")), Catch::Contains("not a file name"));
}

TEST_CASE("settle: the library directory, and no two files on one name", "[fromhost]") {
  auto c = fromhost::plan({"/h/libx.so.1", "/usr/bin/tool"}, std::nullopt);
  fromhost::settle(c, "/lib/x86_64-linux-gnu");
  CHECK(c[0].dest_dir == "/lib/x86_64-linux-gnu");
  CHECK(c[1].dest_dir == "/usr/bin");

  auto same = fromhost::plan({"/a/bin/tool", "/b/bin/tool"}, std::nullopt);
  CHECK_THROWS_WITH(fromhost::settle(same, "/lib"),
                    Catch::Contains("both \"/a/bin/tool\" and \"/b/bin/tool\"") &&
                        Catch::Contains("/usr/bin/tool"));
  // The library directory may be /usr/bin: the clash shows only then.
  auto late = fromhost::plan({"/a/bin/x.so", "/b/bin/x.so"}, std::nullopt);
  CHECK_THROWS(fromhost::settle(late, "/usr/lib"));
  auto one = fromhost::plan({"/a/lib/x.so", "/a/lib/x.so"}, std::nullopt);
  CHECK_NOTHROW(fromhost::settle(one, "/usr/lib"));
}

TEST_CASE("library directory from ldconfig -Nv", "[fromhost]") {
  // Debian 12's glibc, with fakeroot's directory listed first: Charliecloud
  // would take that one.
  const char* bookworm =
      "/usr/lib/x86_64-linux-gnu/libfakeroot: (from /etc/ld.so.conf.d/fakeroot.conf:1)\n"
      "\tlibfakeroot-0.so -> libfakeroot-tcp.so\n"
      "/usr/local/lib: (from /etc/ld.so.conf.d/libc.conf:2)\n"
      "/lib/x86_64-linux-gnu: (from /etc/ld.so.conf.d/x86_64-linux-gnu.conf:3)\n"
      "\tlibthread_db.so.1 -> libthread_db.so.1\n"
      "\tlibc.so.6 -> libc.so.6\n"
      "/usr/lib/x86_64-linux-gnu: (from /etc/ld.so.conf.d/x86_64-linux-gnu.conf:4)\n"
      "\tlibm.so.6 -> libm.so.6\n";
  CHECK(fromhost::library_dir(bookworm) == "/lib/x86_64-linux-gnu");

  // Older glibc: "DIR:" alone, and hwcap subdirectories.
  const char* old =
      "/usr/lib64/mysql:\n"
      "\tlibmysqlclient.so.18 -> libmysqlclient.so.18.0.0\n"
      "/lib64:\n"
      "\tlibm.so.6 -> libm-2.17.so\n"
      "\tlibc.so.6 -> libc-2.17.so\n"
      "/lib64/tls: (hwcap: 0x8000000000000000)\n";
  CHECK(fromhost::library_dir(old) == "/lib64");

  // No C library (a static image, musl): the first directory listed.
  const char* musl =
      "/opt/lib: (from /etc/ld.so.conf:1)\n"
      "\tlibz.so.1 -> libz.so.1.3\n"
      "/usr/lib: (from <builtin>:0)\n";
  CHECK(fromhost::library_dir(musl) == "/opt/lib");

  // libc.so.6 only as a target, or another library's name containing it.
  CHECK(fromhost::library_dir("/a:\n\tlibx.so -> libc.so.6\n/b:\n\tlibc.so.6x -> y\n") == "/a");

  CHECK_FALSE(fromhost::library_dir(""));
  CHECK_FALSE(fromhost::library_dir("ldconfig: Can't stat /x: No such file or directory\n"));
}
