// squash: checking SquashFS images and reading them with a Reader, on
// images made here with mksquashfs (Debian's squashfs-tools).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "chute/error.hpp"
#include "chute/fd.hpp"
#include "chute/squash.hpp"
#include "chute/sys.hpp"

using namespace chute;
using Catch::Contains;

namespace {

struct Fixture {
  std::string dir;
  std::string tree;
  std::string image;
  std::string big;  // contents of tree/big

  Fixture() {
    char tmpl[] = "/tmp/chute-unit-squash.XXXXXX";
    dir = ::mkdtemp(tmpl);
    tree = dir + "/tree";
    image = dir + "/image.sqfs";
    ::mkdir(tree.c_str(), 0755);
    ::mkdir((tree + "/sub").c_str(), 0750);
    for (int i = 0; i < 300; ++i) write(tree + "/sub/f" + std::to_string(i), std::to_string(i));
    for (unsigned i = 0; i < 400000; ++i) big.push_back(static_cast<char>('a' + (i * 7919u) % 26));
    write(tree + "/big", big);
    write(tree + "/small", "hello");
    ::link((tree + "/small").c_str(), (tree + "/hard").c_str());
    ::symlink("sub/f1", (tree + "/link").c_str());
    std::string cmd = "mksquashfs '" + tree + "' '" + image +
                      "' -noappend -quiet -no-progress -comp gzip >/dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  ~Fixture() {
    std::string cmd = "rm -rf '" + dir + "'";
    (void)!std::system(cmd.c_str());
  }
  static void write(const std::string& p, const std::string& s) {
    std::ofstream(p, std::ios::binary) << s;
  }
  std::string copy(const std::string& name) const {
    std::string p = dir + "/" + name;
    std::ifstream in(image, std::ios::binary);
    std::ofstream(p, std::ios::binary) << in.rdbuf();
    return p;
  }
  static void patch(const std::string& p, long off, const std::string& bytes) {
    std::FILE* f = std::fopen(p.c_str(), "r+b");
    REQUIRE(f != nullptr);
    std::fseek(f, off, SEEK_SET);
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
};

}  // namespace

TEST_CASE("squash: check accepts a good image and says what it is") {
  Fixture fx;
  squash::Info info = squash::check(fx.image);
  CHECK(info.compression == "gzip");
  CHECK(info.block_size == 131072);
  CHECK(info.inodes > 300);
  CHECK_FALSE(info.has_xattrs);
}

TEST_CASE("squash: check refuses bad images, naming the file and the problem") {
  Fixture fx;
  SECTION("truncated") {
    std::string p = fx.copy("trunc.sqfs");
    REQUIRE(::truncate(p.c_str(), 200) == 0);
    REQUIRE_THROWS_WITH(squash::check(p), Contains(p) && Contains("truncated"));
  }
  SECTION("shorter than a superblock") {
    std::string p = fx.copy("tiny.sqfs");
    REQUIRE(::truncate(p.c_str(), 10) == 0);
    REQUIRE_THROWS_WITH(squash::check(p), Contains("shorter than a superblock"));
  }
  SECTION("no magic") {
    std::string p = fx.copy("magic.sqfs");
    Fixture::patch(p, 0, "xxxx");
    REQUIRE_THROWS_WITH(squash::check(p), Contains("no SquashFS magic"));
  }
  SECTION("unsupported compression") {
    std::string p = fx.copy("comp.sqfs");
    Fixture::patch(p, 20, std::string("\x09\x00", 2));
    REQUIRE_THROWS_WITH(squash::check(p), Contains("unsupported compression"));
  }
  SECTION("wrong version") {
    std::string p = fx.copy("version.sqfs");
    Fixture::patch(p, 28, std::string("\x02\x00", 2));
    REQUIRE_THROWS_WITH(squash::check(p), Contains("version 2.0"));
  }
  SECTION("missing file") {
    try {
      squash::check(fx.dir + "/nope.sqfs");
      FAIL("no error");
    } catch (const SysError& e) {
      CHECK(e.err() == ENOENT);
    }
  }
}

TEST_CASE("squash: Reader looks up, lists and stats") {
  Fixture fx;
  Fd fd = sys::open(fx.image, O_RDONLY);
  squash::Reader r(fd.get(), fx.image);
  REQUIRE(r.ok());
  struct stat st;
  REQUIRE(r.stat(r.root(), st) == 0);
  CHECK(S_ISDIR(st.st_mode));

  squash::InodeId sub = 0;
  REQUIRE(r.lookup(r.root(), "sub", sub, st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK((st.st_mode & 07777) == 0750);
  squash::InodeId id = 0;
  CHECK(r.lookup(r.root(), "missing", id, st) == ENOENT);
  REQUIRE(r.lookup(r.root(), "big", id, st) == 0);
  CHECK(st.st_size == static_cast<off_t>(fx.big.size()));
  CHECK(r.lookup(id, "x", id, st) == ENOTDIR);

  // Every entry, in order; and the listing resumes from an offset.
  std::vector<std::string> names;
  std::vector<off_t> offsets;
  REQUIRE(r.readdir(sub, 0, [&](std::string_view n, squash::InodeId, mode_t, off_t next) {
    names.emplace_back(n);
    offsets.push_back(next);
    return true;
  }) == 0);
  REQUIRE(names.size() == 300);
  CHECK(std::is_sorted(names.begin(), names.end()));
  std::vector<std::string> rest;
  REQUIRE(r.readdir(sub, offsets[99], [&](std::string_view n, squash::InodeId, mode_t, off_t) {
    rest.emplace_back(n);
    return true;
  }) == 0);
  REQUIRE(rest.size() == 200);
  CHECK(rest.front() == names[100]);
  CHECK(rest.back() == names.back());
}

TEST_CASE("squash: Reader reads exact ranges, links and hard links") {
  Fixture fx;
  Fd fd = sys::open(fx.image, O_RDONLY);
  squash::Reader r(fd.get(), fx.image);
  REQUIRE(r.ok());
  struct stat st;
  squash::InodeId big = 0;
  REQUIRE(r.lookup(r.root(), "big", big, st) == 0);
  for (auto [off, len] : std::vector<std::pair<size_t, size_t>>{
           {0, 10}, {131000, 1000}, {131072, 131072}, {399990, 10}, {5, 300000}}) {
    std::string buf(len, '\0');
    size_t got = 0;
    REQUIRE(r.read(big, static_cast<off_t>(off), len, buf.data(), got) == 0);
    CHECK(got == len);
    CHECK(buf == fx.big.substr(off, len));
  }
  std::string buf(100, '\0');
  size_t got = 0;
  REQUIRE(r.read(big, 399950, 100, buf.data(), got) == 0);
  CHECK(got == 50);  // short at the end of the file

  squash::InodeId link = 0;
  REQUIRE(r.lookup(r.root(), "link", link, st) == 0);
  CHECK(S_ISLNK(st.st_mode));
  std::string target;
  REQUIRE(r.readlink(link, target) == 0);
  CHECK(target == "sub/f1");
  CHECK(r.readlink(big, target) == EINVAL);

  struct stat a, b;
  squash::InodeId x = 0, y = 0;
  REQUIRE(r.lookup(r.root(), "small", x, a) == 0);
  REQUIRE(r.lookup(r.root(), "hard", y, b) == 0);
  CHECK(a.st_ino == b.st_ino);
  CHECK(a.st_nlink == 2);
}

// Damaged images that once crashed the check or a Reader (found by
// fuzz_squash, or by reading libsquashfuse after it): each is refused, or
// read without harm, and never crashes.
namespace {

uint64_t field(const std::string& p, long off, size_t size) {
  std::ifstream in(p, std::ios::binary);
  in.seekg(off);
  unsigned char b[8] = {};
  in.read(reinterpret_cast<char*>(b), static_cast<std::streamsize>(size));
  uint64_t v = 0;
  for (size_t i = size; i > 0; --i) v = v << 8 | b[i - 1];
  return v;
}

std::string le(uint64_t v, size_t size) {
  std::string s;
  for (size_t i = 0; i < size; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

// An image of TREE with its inode and directory tables stored uncompressed,
// so a test can change them in place.
std::string plain_image(const Fixture& fx, const std::string& tree, const std::string& name) {
  const std::string p = fx.dir + "/" + name;
  const std::string cmd = "mksquashfs '" + tree + "' '" + p +
                          "' -noappend -quiet -no-progress -noI -noD >/dev/null 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  return p;
}

}  // namespace

TEST_CASE("squash: a table that can't be read is refused and its handle freed once") {
  // libsquashfuse's sqfs_init cleans up after itself when a table can't be
  // read; the Reader destroyed the handle a second time.
  Fixture fx;
  const std::string p = fx.copy("xattr-far.sqfs");
  Fixture::patch(p, 56, le(0x0fffffffffffffffull, 8));  // xattr id table
  {
    Fd fd = sys::open(p, O_RDONLY);
    squash::Reader r(fd.get(), p);
    CHECK_FALSE(r.ok());
  }
  CHECK_THROWS_WITH(squash::check(p), Contains(p) && Contains("lies outside the image"));
}

TEST_CASE("squash: check refuses a block size whose logarithm is out of range") {
  Fixture fx;
  const std::string p = fx.copy("block-log.sqfs");
  Fixture::patch(p, 22, le(40, 2));  // 1 << 40 does not fit the shift
  CHECK_THROWS_WITH(squash::check(p), Contains("block size 131072"));
}

TEST_CASE("squash: check refuses tables and table indexes outside the image") {
  Fixture fx;
  SECTION("the id table at the superblock") {
    const std::string p = fx.copy("id-at-0.sqfs");
    Fixture::patch(p, 48, le(0, 8));
    CHECK_THROWS_WITH(squash::check(p), Contains("lies outside the image"));
  }
  SECTION("the id table's index pointing at position 0") {
    // libsquashfuse's caches take position 0 for an empty slot, and a read
    // there dereferences a null block.
    const std::string p = fx.copy("id-index-0.sqfs");
    Fixture::patch(p, static_cast<long>(field(p, 48, 8)), le(0, 8));
    CHECK_THROWS_WITH(squash::check(p), Contains("id table points outside the image"));
  }
}

TEST_CASE("squash: a root inode reference beyond its block is refused") {
  // libsquashfuse copied from past the end of the decompressed block.
  Fixture fx;
  const std::string p = fx.copy("root-offset.sqfs");
  Fixture::patch(p, 32, le(0xfff0, 2));  // the offset half of the reference
  CHECK_THROWS_WITH(squash::check(p), Contains("can't read the root directory"));
}

TEST_CASE("squash: an image without ids is read with owner 0") {
  // libsquashfuse looked ids up in a table it had never allocated.
  Fixture fx;
  const std::string p = fx.copy("no-ids.sqfs");
  Fixture::patch(p, 26, le(0, 2));
  Fd fd = sys::open(p, O_RDONLY);
  squash::Reader r(fd.get(), p);
  REQUIRE(r.ok());
  struct stat st;
  REQUIRE(r.stat(r.root(), st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK(st.st_uid == 0);
  CHECK(st.st_gid == 0);
}

TEST_CASE("squash: a directory entry with an over-long name is refused") {
  // libsquashfuse copied the name at the length the entry gave, up to 64
  // KiB, into a 257-byte buffer on the stack.
  Fixture fx;
  const std::string tree = fx.dir + "/long-names";
  ::mkdir(tree.c_str(), 0755);
  for (int i = 0; i < 30; ++i)
    Fixture::write(tree + "/" + std::to_string(100 + i) + std::string(197, 'n'), "x");
  const std::string p = plain_image(fx, tree, "long-name.sqfs");
  REQUIRE_NOTHROW(squash::check(p));
  // The root is the only directory: its listing opens the table, after the
  // block header (2 bytes) and the listing's header (12); the first
  // entry's name size is 6 bytes into the entry.
  const auto name_size = static_cast<long>(field(p, 72, 8)) + 2 + 12 + 6;
  REQUIRE(field(p, name_size, 2) == 199);
  Fixture::patch(p, name_size, le(2000, 2));
  CHECK_THROWS_WITH(squash::check(p), Contains("can't list the root directory"));
}

TEST_CASE("squash: lookups in a directory with an index still find every name") {
  // A listing over 8 KiB has an index, now checked before each lookup.
  Fixture fx;
  const std::string tree = fx.dir + "/many";
  ::mkdir(tree.c_str(), 0755);
  for (int i = 0; i < 1500; ++i) Fixture::write(tree + "/entry-with-a-long-name-" + std::to_string(i), "");
  const std::string p = plain_image(fx, tree, "many.sqfs");
  Fd fd = sys::open(p, O_RDONLY);
  squash::Reader r(fd.get(), p);
  REQUIRE(r.ok());
  std::vector<std::string> names;
  REQUIRE(r.readdir(r.root(), 0, [&](std::string_view n, squash::InodeId, mode_t, off_t) {
    names.emplace_back(n);
    return true;
  }) == 0);
  REQUIRE(names.size() == 1500);
  size_t found = 0;
  for (const auto& n : names) {
    squash::InodeId id = 0;
    struct stat st;
    found += r.lookup(r.root(), n, id, st) == 0;
  }
  CHECK(found == names.size());
  squash::InodeId id = 0;
  struct stat st;
  CHECK(r.lookup(r.root(), "zzz-not-there", id, st) == ENOENT);
}
