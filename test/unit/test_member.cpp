// Unit tests for chute::member: cleaning archive member names, permission
// fixes, whiteouts, unwrapping of a single top-level directory.
#include <catch2/catch.hpp>

#include <string>

#include "chute/member.hpp"

using namespace chute::member;

namespace {

std::string clean(std::string_view raw) {
  std::string why;
  auto c = clean_path(raw, why);
  return c ? *c : "ERROR: " + why;
}

}  // namespace

TEST_CASE("names are made relative and tidy", "[member]") {
  CHECK(clean("bin/sh") == "bin/sh");
  CHECK(clean("./bin/sh") == "bin/sh");
  CHECK(clean("/etc/passwd") == "etc/passwd");
  CHECK(clean("//etc//passwd/") == "etc/passwd");
  CHECK(clean("a/./b/.") == "a/b");
  CHECK(clean("./") == "");
  CHECK(clean(".") == "");
  CHECK(clean("/") == "");
}

TEST_CASE("absolute names are reported as neutralised", "[member]") {
  std::string why;
  bool n = false;
  CHECK(clean_path("/etc/x", why, &n) == "etc/x");
  CHECK(n);
  CHECK(clean_path("./etc/x", why, &n) == "etc/x");
  CHECK_FALSE(n);
}

TEST_CASE("dot-dot and oversized names are refused", "[member]") {
  CHECK(clean("../x") == "ERROR: path contains \"..\"");
  CHECK(clean("a/../../x") == "ERROR: path contains \"..\"");
  CHECK(clean("a/b/..") == "ERROR: path contains \"..\"");
  CHECK(clean("/..") == "ERROR: path contains \"..\"");
  CHECK(clean("a/..b") == "a/..b");  // a name that merely starts with dots
  CHECK(clean("...") == "...");
  CHECK(clean(std::string(255, 'x')) == std::string(255, 'x'));
  CHECK(clean(std::string(256, 'x')) == "ERROR: name component longer than 255 bytes");
  std::string deep;
  for (int i = 0; i < 1000; ++i) deep += "abcd/";
  CHECK(clean(deep) == "ERROR: name longer than 4095 bytes");
}

TEST_CASE("permissions: no setuid or setgid, owner can always read and write", "[member]") {
  CHECK(fix_perm(Kind::kFile, 04755) == 0755);
  CHECK(fix_perm(Kind::kFile, 02755) == 0755);
  CHECK(fix_perm(Kind::kFile, 0000) == 0600);
  CHECK(fix_perm(Kind::kFile, 0444) == 0644);
  CHECK(fix_perm(Kind::kDir, 0555) == 0755);
  CHECK(fix_perm(Kind::kDir, 0000) == 0700);
  CHECK(fix_perm(Kind::kDir, 01777) == 01777);  // /tmp keeps its sticky bit
  CHECK(fix_perm(Kind::kDir, 02775) == 0775);
  CHECK(fix_perm(Kind::kSymlink, 0) == 0777);
}

TEST_CASE("whiteouts", "[member]") {
  auto w = whiteout_of("etc/.wh.motd");
  CHECK(w.kind == Whiteout::kDelete);
  CHECK(w.victim == "etc/motd");
  w = whiteout_of(".wh.opt");
  CHECK(w.kind == Whiteout::kDelete);
  CHECK(w.victim == "opt");
  w = whiteout_of("var/cache/.wh..wh..opq");
  CHECK(w.kind == Whiteout::kOpaque);
  CHECK(w.victim == "var/cache");
  CHECK(whiteout_of(".wh..wh..opq").victim.empty());
  CHECK(whiteout_of("etc/motd").kind == Whiteout::kNone);
  CHECK(whiteout_of("etc/x.wh.y").kind == Whiteout::kNone);
  CHECK(whiteout_of("a/.wh.").kind == Whiteout::kInvalid);
  CHECK(whiteout_of("a/.wh..").kind == Whiteout::kInvalid);
  CHECK(whiteout_of("a/.wh...").kind == Whiteout::kInvalid);
  CHECK(whiteout_of("a/.wh..wh.plnk").kind == Whiteout::kInvalid);
}

TEST_CASE("paths: parent, base, within", "[member]") {
  CHECK(parent_of("a/b/c") == "a/b");
  CHECK(parent_of("a") == "");
  CHECK(base_of("a/b/c") == "c");
  CHECK(is_within("a/b", "a"));
  CHECK(is_within("a", "a"));
  CHECK_FALSE(is_within("ab", "a"));
  CHECK(is_within("anything", ""));
}

TEST_CASE("a single non-standard top directory is unwrapped", "[member]") {
  TopLevel t;
  t.see("myimg", Kind::kDir);
  t.see("myimg/bin", Kind::kDir);
  t.see("myimg/bin/sh", Kind::kFile);
  CHECK(t.root() == "myimg");

  TopLevel u;  // a standard name is an image already
  u.see("usr/bin/sh", Kind::kFile);
  CHECK(u.root() == "");

  TopLevel v;  // two top-level names
  v.see("a/x", Kind::kFile);
  v.see("b/y", Kind::kFile);
  CHECK(v.root() == "");

  TopLevel f;  // one top-level file
  f.see("README", Kind::kFile);
  CHECK(f.root() == "");

  TopLevel e;
  CHECK(e.root() == "");
}

TEST_CASE("mount points ch-run needs", "[member]") {
  bool has_sys = false, has_tmp = false, has_hosts = false;
  for (const auto& m : mount_points()) {
    if (m.path == "sys") has_sys = m.kind == Kind::kDir;
    if (m.path == "tmp") has_tmp = m.kind == Kind::kDir;
    if (m.path == "etc/hosts") has_hosts = m.kind == Kind::kFile;
  }
  CHECK(has_sys);
  CHECK(has_tmp);
  CHECK(has_hosts);
}
