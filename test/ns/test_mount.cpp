// mount: binds, read-only remounts, the apply() table, synthesized files and
// pivot_root, done for real in the test's own mount namespace.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>

#include "chute/error.hpp"
#include "chute/fd.hpp"
#include "chute/mount.hpp"
#include "chute/sys.hpp"
#include "ns_support.hpp"

using namespace chute;
using namespace ns_support;

namespace {

// An image: a directory with the mount points ch-run uses.
struct Image {
  TempDir dir;
  Image() {
    for (const char* d : {"dev", "proc", "sys", "tmp", "etc", "mnt", "home", "opt"})
      ::mkdir((dir / d).c_str(), 0755);
    write_text(dir / "etc/passwd", "image-passwd\n");
    write_text(dir / "etc/group", "image-group\n");
    write_text(dir / "marker", "image root");
  }
  const std::string& path() const { return dir.path(); }
};

int write_errno(const std::string& p) {
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

Mount make_bind(std::string src, std::string dst, Mount::Need need, bool ro = false) {
  return Mount{Mount::Kind::kBind, need, std::move(src), std::move(dst), ro, true, "test"};
}

}  // namespace

TEST_CASE("bind_self makes the image a mount point of its own") {
  Image img;
  Fd parent = sys::open(img.path() + "/..", O_PATH | O_DIRECTORY);
  Fd root = mount::bind_self(img.path());
  CHECK(sys::mount_id(root.get()) != sys::mount_id(parent.get()));
  CHECK(read_text(img.dir / "marker") == "image root");
}

TEST_CASE("make_readonly makes a bind read-only, submounts included") {
  Image img;
  Fd root = mount::bind_self(img.path());
  TempDir sub;
  REQUIRE(::mount(sub.path().c_str(), (img.dir / "mnt").c_str(), nullptr, MS_BIND, nullptr) == 0);
  REQUIRE(write_errno(img.dir / "before") == 0);
  mount::make_readonly(root.get(), img.path(), true);
  CHECK(write_errno(img.dir / "after") == EROFS);
  CHECK(write_errno(img.dir / "mnt/after") == EROFS);
}

TEST_CASE("the remount fallback keeps the flags the kernel locks") {
  // /dev/shm is nosuid,nodev on the host: a remount that dropped those
  // flags would fail with EPERM in a user namespace.
  TempDir d;
  struct statvfs sv;
  REQUIRE(::statvfs("/dev/shm", &sv) == 0);
  REQUIRE(::mount("/dev/shm", d.path().c_str(), nullptr, MS_BIND, nullptr) == 0);
  Fd top = sys::open(d.path(), O_PATH | O_DIRECTORY);
  REQUIRE_NOTHROW(mount::remount_readonly(top.get(), d.path()));
  struct statvfs after;
  REQUIRE(::statvfs(d.path().c_str(), &after) == 0);
  CHECK((after.f_flag & ST_RDONLY) != 0);
  CHECK((after.f_flag & (ST_NOSUID | ST_NODEV)) == (sv.f_flag & (ST_NOSUID | ST_NODEV)));
  CHECK(write_errno(d / "x") == EROFS);
}

TEST_CASE("apply binds in order, read-only where asked") {
  Image img;
  TempDir data;
  write_text(data / "file", "data");
  Fd root = mount::bind_self(img.path());
  mount::apply({make_bind(data.path(), "/mnt", Mount::Need::kRequired),
                make_bind(data.path(), "/opt", Mount::Need::kRequired, true)},
               root.get());
  CHECK(read_text(img.dir / "mnt/file") == "data");
  CHECK(write_errno(img.dir / "mnt/rw") == 0);
  CHECK(read_text(img.dir / "opt/file") == "data");
  CHECK(write_errno(img.dir / "opt/ro") == EROFS);
}

TEST_CASE("apply: missing destinations by need") {
  Image img;
  TempDir data;
  Fd root = mount::bind_self(img.path());
  SECTION("required: an error naming the destination") {
    REQUIRE_THROWS_WITH(mount::apply({make_bind(data.path(), "/nope", Mount::Need::kRequired)}, root.get()),
                        Catch::Contains("image has no /nope"));
  }
  SECTION("optional: skipped") {
    REQUIRE_NOTHROW(mount::apply({make_bind(data.path(), "/nope", Mount::Need::kOptional)}, root.get()));
    CHECK_FALSE(exists(img.dir / "nope"));
  }
  SECTION("make: created in a writable image") {
    mount::apply({make_bind(data.path(), "/new/dst", Mount::Need::kMakeDst)}, root.get());
    CHECK(exists(img.dir / "new/dst"));
  }
  SECTION("make: refused with a hint in a read-only image") {
    mount::make_readonly(root.get(), img.path(), false);
    REQUIRE_THROWS_WITH(mount::apply({make_bind(data.path(), "/new/dst", Mount::Need::kMakeDst)}, root.get()),
                        Catch::Contains("the image is read-only"));
  }
}

TEST_CASE("apply: a tmpfs, and destinations created on it even in a read-only image") {
  Image img;
  TempDir home;
  Fd root = mount::bind_self(img.path());
  mount::make_readonly(root.get(), img.path(), false);
  Mount tmpfs{Mount::Kind::kTmpfs, Mount::Need::kRequired, "size=1m,mode=0755", "/home", false, true,
              "test"};
  mount::apply({tmpfs, make_bind(home.path(), "/home/someone", Mount::Need::kMakeDst)}, root.get());
  write_text(img.dir / "home/someone/f", "x");
  CHECK(read_text(home / "f") == "x");
}

TEST_CASE("install_files binds read-only contents over image files") {
  Image img;
  Fd root = mount::bind_self(img.path());
  mount::install_files(root.get(), "/dev", {{"/etc/passwd", "new-passwd\n"}, {"/etc/group", "new-group\n"}});
  CHECK(read_text(img.dir / "etc/passwd") == "new-passwd\n");
  CHECK(read_text(img.dir / "etc/group") == "new-group\n");
  CHECK(write_errno(img.dir / "etc/passwd") != 0);
  // The image's own files are unchanged underneath.
  ::umount2((img.dir / "etc/passwd").c_str(), MNT_DETACH);
  CHECK(read_text(img.dir / "etc/passwd") == "image-passwd\n");
}

TEST_CASE("install_files: a missing file is skipped, a directory is an error") {
  Image img;
  ::unlink((img.dir / "etc/group").c_str());
  Fd root = mount::bind_self(img.path());
  REQUIRE_NOTHROW(mount::install_files(root.get(), "/dev", {{"/etc/group", "g\n"}}));
  CHECK_FALSE(exists(img.dir / "etc/group"));
  ::mkdir((img.dir / "etc/group").c_str(), 0755);
  REQUIRE_THROWS_AS(mount::install_files(root.get(), "/tmp", {{"/etc/group", "g\n"}}), SysError);
}

TEST_CASE("pivot makes the image the root and hides the host") {
  Image img;
  TempDir host_only;
  write_text(host_only / "secret", "host");
  std::string secret = host_only / "secret";
  int rc = in_child([&] {
    Fd root = mount::bind_self(img.path());
    mount::pivot(root.get());
    bool ok = read_text("/marker") == "image root" && !exists(secret) &&
              sys::getcwd_or_empty() == "/";
    return ok ? 0 : 1;
  });
  REQUIRE(rc == 0);
}
