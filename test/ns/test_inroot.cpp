// inroot: paths resolved inside a tree as if it were "/". Both the
// openat2(RESOLVE_IN_ROOT) path and the fallback walk are checked on the same
// trees, with symlinks built to escape.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "chute/error.hpp"
#include "chute/fd.hpp"
#include "chute/inroot.hpp"
#include "chute/sys.hpp"
#include "ns_support.hpp"

using namespace chute;
using namespace ns_support;

namespace {

// ROOT/etc/marker = "inside", HOST/marker = "outside"; symlinks in ROOT
// pointing at HOST by absolute path and by "..".
struct Tree {
  TempDir host;
  TempDir root;
  Fd rootfd;
  Tree() {
    ::mkdir((root / "etc").c_str(), 0755);
    ::mkdir((root / "dir").c_str(), 0755);
    write_text(root / "etc/marker", "inside");
    write_text(host / "marker", "outside");
    ::mkdir((host / "hostdir").c_str(), 0755);
    ::symlink((host.path() + "/marker").c_str(), (root / "abs").c_str());
    ::symlink("../../../../../../../../../../etc/marker", (root / "dir/rel").c_str());
    ::symlink("/etc", (root / "etc-link").c_str());
    ::symlink("loop2", (root / "loop1").c_str());
    ::symlink("loop1", (root / "loop2").c_str());
    ::symlink("/nowhere", (root / "dangling").c_str());
    ::symlink((host.path() + "/hostdir/new").c_str(), (root / "dangling-host").c_str());
    rootfd = sys::open(root.path(), O_PATH | O_DIRECTORY);
  }
};

std::string contents(Fd fd) {
  return sys::read_all(fd.get(), "test file");
}

using Opener = std::optional<Fd> (*)(int, std::string_view, int);

}  // namespace

TEST_CASE("paths resolve inside the root, never outside") {
  Tree t;
  for (Opener open : {&inroot::try_open, &inroot::try_open_walk}) {
    SECTION(open == &inroot::try_open ? "openat2" : "walk") {
      auto f = open(t.rootfd.get(), "/etc/marker", O_RDONLY);
      REQUIRE(f);
      CHECK(contents(std::move(*f)) == "inside");

      // An absolute symlink to a host path resolves under the root, where
      // nothing exists.
      CHECK_FALSE(open(t.rootfd.get(), "/abs", O_RDONLY));

      // ".." past the root stays at the root.
      auto r = open(t.rootfd.get(), "/dir/rel", O_RDONLY);
      REQUIRE(r);
      CHECK(contents(std::move(*r)) == "inside");
      auto up = open(t.rootfd.get(), "../../../../etc/marker", O_RDONLY);
      REQUIRE(up);
      CHECK(contents(std::move(*up)) == "inside");

      // Symlinks to directories are followed inside the root.
      auto l = open(t.rootfd.get(), "/etc-link/marker", O_RDONLY);
      REQUIRE(l);
      CHECK(contents(std::move(*l)) == "inside");

      // Dangling symlinks are "missing", not errors.
      CHECK_FALSE(open(t.rootfd.get(), "/dangling", O_PATH));
      CHECK_FALSE(open(t.rootfd.get(), "/missing/deeper", O_PATH));
    }
  }
}

TEST_CASE("loops and wrong types are errors naming the path") {
  Tree t;
  for (Opener open : {&inroot::try_open, &inroot::try_open_walk}) {
    try {
      open(t.rootfd.get(), "/loop1", O_RDONLY);
      FAIL("no error for a symlink loop");
    } catch (const SysError& e) {
      CHECK(e.err() == ELOOP);
      CHECK_THAT(describe(e), Catch::Contains("/loop1"));
    }
    try {
      open(t.rootfd.get(), "/etc/marker/x", O_RDONLY);
      FAIL("no error for a file used as a directory");
    } catch (const SysError& e) {
      CHECK(e.err() == ENOTDIR);
    }
    try {
      open(t.rootfd.get(), "/etc/marker", O_PATH | O_DIRECTORY);
      FAIL("no error for O_DIRECTORY on a file");
    } catch (const SysError& e) {
      CHECK(e.err() == ENOTDIR);
    }
  }
}

TEST_CASE("O_NOFOLLOW opens the symlink itself") {
  Tree t;
  for (Opener open : {&inroot::try_open, &inroot::try_open_walk}) {
    auto f = open(t.rootfd.get(), "/dangling", O_PATH | O_NOFOLLOW);
    REQUIRE(f);
    CHECK(S_ISLNK(sys::fstat(f->get(), "link").st_mode));
  }
}

TEST_CASE("mkdirs creates missing directories inside the root") {
  Tree t;
  Fd d = inroot::mkdirs(t.rootfd.get(), "/a/b/c", 0755);
  CHECK(S_ISDIR(sys::fstat(d.get(), "dir").st_mode));
  CHECK(exists(t.root / "a/b/c"));

  // Through an absolute symlink to a host path: created inside the root.
  inroot::mkdirs(t.rootfd.get(), "/dangling-host", 0755);
  CHECK(exists(t.root.path() + t.host.path() + "/hostdir/new"));
  CHECK_FALSE(exists(t.host / "hostdir/new"));

  // Through a relative dangling symlink.
  ::symlink("../target-rel", (t.root / "dir/to-rel").c_str());
  inroot::mkdirs(t.rootfd.get(), "/dir/to-rel/x", 0755);
  CHECK(exists(t.root / "target-rel/x"));

  REQUIRE_THROWS_WITH(inroot::mkdirs(t.rootfd.get(), "/a/../../x", 0755),
                      Catch::Contains("contains \"..\""));
  REQUIRE_THROWS_AS(inroot::mkdirs(t.rootfd.get(), "/etc/marker/x", 0755), SysError);
}

TEST_CASE("mkdirs and make_file refuse to create under a bind mount") {
  Tree t;
  TempDir src;
  ::mkdir((t.root / "mnt").c_str(), 0755);
  REQUIRE(::mount(src.path().c_str(), (t.root / "mnt").c_str(), nullptr, MS_BIND, nullptr) == 0);
  REQUIRE_THROWS_WITH(inroot::mkdirs(t.rootfd.get(), "/mnt/x", 0755),
                      Catch::Contains("under a bind mount"));
  REQUIRE_THROWS_WITH(inroot::make_file(t.rootfd.get(), "/mnt/f", 0644),
                      Catch::Contains("under a bind mount"));
  CHECK_FALSE(exists(src / "x"));
  CHECK_FALSE(exists(src / "f"));

  // ... unless the mount is one the caller allows (a scratch tmpfs).
  std::vector<unsigned long long> also{sys::mount_id(sys::open(t.root / "mnt", O_PATH).get())};
  inroot::mkdirs(t.rootfd.get(), "/mnt/x", 0755, also);
  CHECK(exists(src / "x"));
}

TEST_CASE("make_file creates an empty file, or returns the existing one") {
  Tree t;
  Fd f = inroot::make_file(t.rootfd.get(), "/new/dir/file", 0644);
  CHECK(S_ISREG(sys::fstat(f.get(), "file").st_mode));
  CHECK(read_text(t.root / "new/dir/file").empty());
  Fd g = inroot::make_file(t.rootfd.get(), "/etc/marker", 0644);
  CHECK(read_text(t.root / "etc/marker") == "inside");
}
