// Unit tests for chute::image_ref: image names, storage, and resolving IMAGE.
#include <catch2/catch.hpp>

#include "temp_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "chute/error.hpp"
#include "chute/image_ref.hpp"

using namespace chute;
using Catch::Contains;

namespace {

using test_support::TempDir;

std::string real(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) == nullptr) throw std::runtime_error("realpath failed: " + p);
  return buf;
}

// Changes the working directory for one scope.
class Chdir {
public:
  explicit Chdir(const std::string& dir) : old_(::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {
    if (old_ < 0 || ::chdir(dir.c_str()) != 0) throw std::runtime_error("chdir failed: " + dir);
  }
  ~Chdir() {
    if (::fchdir(old_) != 0) std::abort();
    ::close(old_);
  }
  Chdir(const Chdir&) = delete;
  Chdir& operator=(const Chdir&) = delete;

private:
  int old_;
};

}  // namespace

// --------------------------------------------------------------------- mangle

TEST_CASE("mangle turns \"/\" into \"%\" and \":\" into \"+\"", "[image_ref]") {
  CHECK(image_ref::mangle("alpine:3.17") == "alpine+3.17");
  CHECK(image_ref::mangle("library/alpine") == "library%alpine");
  CHECK(image_ref::mangle("reg.example.com:5000/a/b:tag") == "reg.example.com+5000%a%b+tag");
  CHECK(image_ref::mangle("::/") == "++%");
}

TEST_CASE("mangle leaves other characters alone", "[image_ref]") {
  CHECK(image_ref::mangle("") == "");
  CHECK(image_ref::mangle("plain") == "plain");
  CHECK(image_ref::mangle("a.b-c_d@sha256+x%y") == "a.b-c_d@sha256+x%y");
}

// ---------------------------------------------------------------- storage_dir

TEST_CASE("storage_dir: -s wins over $CH_IMAGE_STORAGE and the default", "[image_ref]") {
  CHECK(image_ref::storage_dir(std::string("/opt/s"), "/env/s", "alice") == "/opt/s");
  CHECK(image_ref::storage_dir(std::string("/opt/s"), std::nullopt, "alice") == "/opt/s");
}

TEST_CASE("storage_dir: $CH_IMAGE_STORAGE when set and not empty", "[image_ref]") {
  CHECK(image_ref::storage_dir(std::nullopt, "/env/s", "alice") == "/env/s");
  CHECK(image_ref::storage_dir(std::nullopt, "", "alice") == "/var/tmp/alice.ch");
}

TEST_CASE("storage_dir: /var/tmp/$USER.ch by default", "[image_ref]") {
  CHECK(image_ref::storage_dir(std::nullopt, std::nullopt, "alice") == "/var/tmp/alice.ch");
  CHECK(image_ref::storage_dir(std::nullopt, std::nullopt, "bob") == "/var/tmp/bob.ch");
}

// ------------------------------------------------------------------- is_under

TEST_CASE("is_under: the directory itself and paths below it", "[image_ref]") {
  CHECK(image_ref::is_under("/a/b", "/a/b"));
  CHECK(image_ref::is_under("/a/b/c", "/a/b"));
  CHECK(image_ref::is_under("/a/b/c/d", "/a/b"));
}

TEST_CASE("is_under: a shared name prefix is not enough", "[image_ref]") {
  CHECK_FALSE(image_ref::is_under("/a/bc", "/a/b"));
  CHECK_FALSE(image_ref::is_under("/a/b.old/x", "/a/b"));
  CHECK_FALSE(image_ref::is_under("/a", "/a/b"));
  CHECK_FALSE(image_ref::is_under("/x/a/b", "/a/b"));
  CHECK_FALSE(image_ref::is_under("/", "/a"));
}

TEST_CASE("is_under: everything is under \"/\"", "[image_ref]") {
  CHECK(image_ref::is_under("/", "/"));
  CHECK(image_ref::is_under("/anything/at/all", "/"));
  CHECK(image_ref::is_under("/x", "//"));
}

TEST_CASE("is_under: trailing slashes on DIR are ignored", "[image_ref]") {
  CHECK(image_ref::is_under("/a/b/c", "/a/b/"));
  CHECK(image_ref::is_under("/a/b", "/a/b//"));
  CHECK_FALSE(image_ref::is_under("/a/bc", "/a/b/"));
}

// -------------------------------------------------------------------- resolve

TEST_CASE("resolve rejects an empty argument", "[image_ref][resolve]") {
  TempDir t;
  CHECK_THROWS_AS(image_ref::resolve("", t.path(), false), Error);
  CHECK_THROWS_WITH(image_ref::resolve("", t.path(), false), Contains("empty"));
}

TEST_CASE("resolve finds a name in storage", "[image_ref][resolve]") {
  TempDir t;
  std::string storage = t.mkdir("storage");
  t.mkdir("storage/img/alpine+3.17");
  t.mkdir("storage/img/reg%a%b+tag");
  SECTION("simple name with a tag") {
    ImageRef r = image_ref::resolve("alpine:3.17", storage, false);
    CHECK(r.kind == ImageKind::kDirectory);
    CHECK(r.from_storage);
    CHECK(r.arg == "alpine:3.17");
    CHECK(r.path == real(storage + "/img/alpine+3.17"));
  }
  SECTION("name with slashes") {
    ImageRef r = image_ref::resolve("reg/a/b:tag", storage, false);
    CHECK(r.from_storage);
    CHECK(r.path == real(storage + "/img/reg%a%b+tag"));
  }
  SECTION("a name in storage is allowed without --unsafe") {
    CHECK_NOTHROW(image_ref::resolve("alpine:3.17", storage, false));
  }
}

TEST_CASE("resolve gives the canonical path of a name in storage", "[image_ref][resolve]") {
  TempDir t;
  t.mkdir("real-storage/img/x");
  std::string storage = t.symlink(t / "real-storage", "storage-link");
  ImageRef r = image_ref::resolve("x", storage, false);
  CHECK(r.from_storage);
  CHECK(r.path == real(t / "real-storage/img/x"));
}

TEST_CASE("resolve prefers a name in storage to a directory of the same name",
          "[image_ref][resolve]") {
  TempDir t;
  std::string storage = t.mkdir("storage");
  t.mkdir("storage/img/myimg");
  t.mkdir("cwd/myimg");
  Chdir cd(t / "cwd");
  ImageRef r = image_ref::resolve("myimg", storage, false);
  CHECK(r.from_storage);
  CHECK(r.path == real(t / "storage/img/myimg"));
}

TEST_CASE("resolve uses a relative directory when storage has no such name",
          "[image_ref][resolve]") {
  TempDir t;
  std::string storage = t.mkdir("storage/img");
  t.mkdir("cwd/sub/dir");
  Chdir cd(t / "cwd");
  SECTION("one component") {
    ImageRef r = image_ref::resolve("sub", t / "storage", false);
    CHECK_FALSE(r.from_storage);
    CHECK(r.kind == ImageKind::kDirectory);
    CHECK(r.path == "sub");
  }
  SECTION("several components") {
    ImageRef r = image_ref::resolve("sub/dir", t / "storage", false);
    CHECK_FALSE(r.from_storage);
    CHECK(r.path == "sub/dir");
  }
}

TEST_CASE("resolve ignores a non-directory of that name in storage", "[image_ref][resolve]") {
  TempDir t;
  std::string storage = t.mkdir("storage");
  t.mkdir("storage/img");
  t.write("storage/img/notdir", "hsqs and more");
  t.mkdir("cwd/notdir");
  Chdir cd(t / "cwd");
  ImageRef r = image_ref::resolve("notdir", storage, false);
  CHECK_FALSE(r.from_storage);
  CHECK(r.kind == ImageKind::kDirectory);
  CHECK(r.path == "notdir");
}

TEST_CASE("resolve takes a directory path as given", "[image_ref][resolve]") {
  TempDir t;
  std::string img = t.mkdir("images/one");
  std::string storage = t / "no-storage";
  SECTION("absolute path, kept as given") {
    std::string arg = t.path() + "//images/./one/";
    ImageRef r = image_ref::resolve(arg, storage, false);
    CHECK(r.kind == ImageKind::kDirectory);
    CHECK_FALSE(r.from_storage);
    CHECK(r.arg == arg);
    CHECK(r.path == arg);
  }
  SECTION("an absolute path is never looked up in storage") {
    t.mkdir("storage/img");
    // What an absolute path would mangle to, present in storage.
    t.mkdir("storage/img/" + image_ref::mangle(img));
    ImageRef r = image_ref::resolve(img, t / "storage", false);
    CHECK_FALSE(r.from_storage);
    CHECK(r.path == img);
  }
}

TEST_CASE("resolve refuses a directory inside storage unless unsafe",
          "[image_ref][resolve]") {
  TempDir t;
  std::string storage = t.mkdir("storage");
  std::string inside = t.mkdir("storage/img/foo");
  SECTION("by path") {
    CHECK_THROWS_AS(image_ref::resolve(inside, storage, false), Error);
    CHECK_THROWS_WITH(image_ref::resolve(inside, storage, false),
                      Contains("storage") && Contains("--unsafe") && Contains(inside));
  }
  SECTION("storage itself") {
    CHECK_THROWS_AS(image_ref::resolve(storage, storage, false), Error);
  }
  SECTION("through a symlink from outside storage") {
    std::string link = t.symlink(inside, "link-to-foo");
    CHECK_THROWS_AS(image_ref::resolve(link, storage, false), Error);
  }
  SECTION("through a non-canonical path") {
    std::string arg = t.path() + "/other/../storage/img/foo";
    t.mkdir("other");
    CHECK_THROWS_AS(image_ref::resolve(arg, storage, false), Error);
  }
  SECTION("storage given through a symlink") {
    std::string slink = t.symlink(storage, "storage-link");
    CHECK_THROWS_AS(image_ref::resolve(inside, slink, false), Error);
  }
  SECTION("allowed with unsafe") {
    ImageRef r = image_ref::resolve(inside, storage, true);
    CHECK(r.kind == ImageKind::kDirectory);
    CHECK_FALSE(r.from_storage);
    CHECK(r.path == inside);
  }
}

TEST_CASE("resolve allows directories next to storage", "[image_ref][resolve]") {
  TempDir t;
  std::string storage = t.mkdir("storage");
  std::string sibling = t.mkdir("storage2/img/foo");
  ImageRef r = image_ref::resolve(sibling, storage, false);
  CHECK(r.kind == ImageKind::kDirectory);
  CHECK(r.path == sibling);
}

TEST_CASE("resolve allows any directory when storage does not exist", "[image_ref][resolve]") {
  TempDir t;
  std::string img = t.mkdir("img");
  ImageRef r = image_ref::resolve(img, t / "missing-storage", false);
  CHECK(r.kind == ImageKind::kDirectory);
  CHECK(r.path == img);
}

TEST_CASE("resolve fails with SysError for a missing image", "[image_ref][resolve]") {
  TempDir t;
  std::string storage = t.mkdir("storage/img");
  SECTION("absolute path") {
    std::string missing = t / "nope";
    CHECK_THROWS_AS(image_ref::resolve(missing, t / "storage", false), SysError);
    CHECK_THROWS_WITH(image_ref::resolve(missing, t / "storage", false),
                      Contains("can't find image") && Contains(missing));
    try {
      image_ref::resolve(missing, t / "storage", false);
      FAIL("no exception");
    } catch (const SysError& e) {
      CHECK(e.err() == ENOENT);
    }
  }
  SECTION("a name neither in storage nor a path") {
    Chdir cd(t.path());
    CHECK_THROWS_AS(image_ref::resolve("no-such-image:latest", t / "storage", false),
                    SysError);
    CHECK_THROWS_WITH(image_ref::resolve("no-such-image:latest", t / "storage", false),
                      Contains("no-such-image:latest"));
    // Where the name was looked for: the storage depends on -s, the
    // environment and $USER.
    CHECK_THROWS_WITH(image_ref::resolve("no-such-image:latest", t / "storage", false),
                      Contains("(nor " + t / "storage/img/no-such-image+latest" + " in storage)"));
  }
  SECTION("an absolute path: no storage in the message") {
    CHECK_THROWS_WITH(image_ref::resolve(t / "nope", t / "storage", false),
                      !Contains("in storage"));
  }
}

TEST_CASE("resolve recognises SquashFS by its magic, not its name", "[image_ref][resolve]") {
  TempDir t;
  std::string storage = t / "storage";
  SECTION("magic and more") {
    std::string f = t.write("image-without-suffix", std::string("hsqs\x04\0\0\0rest", 12));
    ImageRef r = image_ref::resolve(f, storage, false);
    CHECK(r.kind == ImageKind::kSquash);
    CHECK_FALSE(r.from_storage);
    CHECK(r.path == f);
    CHECK(r.arg == f);
  }
  SECTION("exactly the magic") {
    std::string f = t.write("four", "hsqs");
    CHECK(image_ref::resolve(f, storage, false).kind == ImageKind::kSquash);
  }
  SECTION("a .sqfs name without the magic is no image") {
    std::string f = t.write("fake.sqfs", "not squashfs at all");
    CHECK_THROWS_AS(image_ref::resolve(f, storage, false), Error);
    CHECK_THROWS_WITH(image_ref::resolve(f, storage, false),
                      Contains("unknown image type") && Contains(f));
  }
}

TEST_CASE("resolve rejects short, empty and wrongly-cased files", "[image_ref][resolve]") {
  TempDir t;
  std::string storage = t / "storage";
  for (const char* content : {"", "h", "hsq", "HSQS", "sqsh"}) {
    INFO("content: " << content);
    std::string f = t.write("file", content);
    CHECK_THROWS_AS(image_ref::resolve(f, storage, false), Error);
    CHECK_THROWS_WITH(image_ref::resolve(f, storage, false), Contains("unknown image type"));
  }
}

TEST_CASE("resolve follows a symlink to a directory image", "[image_ref][resolve]") {
  TempDir t;
  std::string img = t.mkdir("img");
  std::string link = t.symlink(img, "link");
  ImageRef r = image_ref::resolve(link, t / "storage", false);
  CHECK(r.kind == ImageKind::kDirectory);
  CHECK(r.path == link);
}

TEST_CASE("resolve takes \".\" and \"..\" as paths, not names in storage",
          "[image_ref][resolve]") {
  TempDir t;
  // Mangled, "." and ".." would name STORAGE/img and STORAGE itself.
  std::string storage = t.mkdir("storage");
  t.mkdir("storage/img");
  std::string img = t.mkdir("img");
  t.mkdir("img/home");
  Chdir cd(t / "img/home");
  ImageRef dotdot = image_ref::resolve("..", storage, false);
  CHECK_FALSE(dotdot.from_storage);
  CHECK(dotdot.path == "..");
  ImageRef dot = image_ref::resolve(".", storage, false);
  CHECK_FALSE(dot.from_storage);
  CHECK(dot.path == ".");
}

TEST_CASE("resolve refuses a FIFO or a device at once, without reading it",
          "[image_ref][resolve]") {
  TempDir t;
  std::string fifo = t / "image.sqfs";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // Opening the FIFO would wait for a writer that never comes.
  CHECK_THROWS_WITH(image_ref::resolve(fifo, t / "storage", false),
                    Contains("unknown image type") && Contains(fifo));
  CHECK_THROWS_WITH(image_ref::resolve("/dev/zero", t / "storage", false),
                    Contains("unknown image type") && Contains("/dev/zero"));
}
