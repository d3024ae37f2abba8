// Unit tests for chute::make_plan and chute::default_mounts: what ch-run
// decides before any namespace exists. The host is a HostFacts made here; the
// image is a directory made in a temporary directory.
#include <catch2/catch.hpp>

#include "temp_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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
#include "chute/log.hpp"
#include "chute/plan.hpp"

using namespace chute;
using Catch::Contains;
using Kind = Mount::Kind;
using Need = Mount::Need;

namespace {

using test_support::TempDir;

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

std::string real(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) == nullptr) throw std::runtime_error("realpath failed: " + p);
  return buf;
}

// A host, an image and a storage directory, all in a temporary directory:
//   T/image/{bin,etc,tmp,home,mnt}   a directory image
//   T/storage/img/named+tag/{bin}    an image in storage, "named:tag"
//   T/home/alice                     the host $HOME
//   T/tmpdir                         the host $TMPDIR
//   T/data/{dir/,file}               bind sources
struct Fixture {
  TempDir t;
  std::string image = t.mkdir("image");
  std::string storage = t.mkdir("storage");
  std::string home = t.mkdir("home/alice");
  std::string tmpdir = t.mkdir("tmpdir");
  std::string data_dir = t.mkdir("data/dir");
  std::string data_file = t.write("data/file", "x");
  Config config;
  HostFacts host;

  Fixture() {
    for (const char* d : {"bin", "etc", "tmp", "home", "mnt"}) t.mkdir(std::string("image/") + d);
    t.mkdir("storage/img/named+tag/bin");
    config.image = image;
    config.argv = {"/bin/true"};
    config.storage = storage;
    host.uid = 1000;
    host.gid = 1000;
    host.env.set("USER", "alice");
    host.env.set("HOME", home);
    host.env.set("PATH", "/usr/bin:/bin");
    host.env.set("TMPDIR", tmpdir);
  }
};

// --join, COUNT processes expected, under TAG.
void ask_join(Config& c, const char* count, const char* tag) {
  c.join = true;
  c.join_ct = count;
  c.join_tag = tag;
}

// The default mounts whose host source exists, in order: what make_plan keeps.
std::vector<Mount> present_defaults() {
  std::vector<Mount> out;
  for (const auto& m : default_mounts())
    if (exists(m.src)) out.push_back(m);
  return out;
}

std::vector<std::string> dsts(const std::vector<Mount>& ms) {
  std::vector<std::string> out;
  for (const auto& m : ms) out.push_back(m.dst);
  return out;
}

const Mount* find_dst(const std::vector<Mount>& ms, std::string_view dst) {
  for (const auto& m : ms)
    if (m.dst == dst) return &m;
  return nullptr;
}

}  // namespace

// ------------------------------------------------------------ default_mounts

TEST_CASE("default_mounts lists Charliecloud's default binds in order", "[plan][mounts]") {
  std::vector<std::string> expected = {
      "/dev",
      "/proc",
      "/sys",
      "/etc/hosts",
      "/etc/machine-id",
      "/etc/resolv.conf",
      "/var/lib/hugetlbfs",
      "/etc/opt/cray/wlm_detect",
      "/opt/cray/wlm_detect",
      "/opt/cray/alps",
      "/opt/cray/udreg",
      "/opt/cray/ugni",
      "/opt/cray/xpmem",
      "/var/opt/cray/alps",
      "/var/spool/slurmd",
  };
  CHECK(dsts(default_mounts()) == expected);
}

TEST_CASE("default_mounts are binds at the same path", "[plan][mounts]") {
  for (const auto& m : default_mounts()) {
    INFO("mount " << m.dst);
    CHECK(m.kind == Kind::kBind);
    CHECK(m.src == m.dst);
    CHECK(m.why == "default bind");
  }
}

TEST_CASE("default_mounts: /dev, /proc and /sys are required, slurmd's spool is made, the rest "
          "optional", "[plan][mounts]") {
  for (const auto& m : default_mounts()) {
    INFO("mount " << m.dst);
    bool required = m.dst == "/dev" || m.dst == "/proc" || m.dst == "/sys";
    Need want = required ? Need::kRequired
                : m.dst == "/var/spool/slurmd" ? Need::kCreateDst : Need::kOptional;
    CHECK(m.need == want);
  }
}

TEST_CASE("default_mounts: read-only except where jobs write", "[plan][mounts]") {
  const std::vector<std::string> writable = {"/dev", "/proc", "/var/lib/hugetlbfs",
                                             "/var/opt/cray/alps", "/var/spool/slurmd"};
  for (const auto& m : default_mounts()) {
    INFO("mount " << m.dst);
    bool w = std::find(writable.begin(), writable.end(), m.dst) != writable.end();
    CHECK(m.readonly == !w);
  }
}

// ------------------------------------------------------------- make_plan: ids

TEST_CASE("make_plan maps the host ids to themselves by default", "[plan]") {
  Fixture f;
  f.host.uid = 1234;
  f.host.gid = 5678;
  Plan p = make_plan(f.config, f.host);
  CHECK(p.ids.host_uid == 1234);
  CHECK(p.ids.host_gid == 5678);
  CHECK(p.ids.container_uid == 1234);
  CHECK(p.ids.container_gid == 5678);
}

TEST_CASE("make_plan maps --uid and --gid to the host ids", "[plan]") {
  Fixture f;
  f.host.uid = 1234;
  f.host.gid = 5678;
  SECTION("both") {
    f.config.uid = 0;
    f.config.gid = 42;
    Plan p = make_plan(f.config, f.host);
    CHECK(p.ids.container_uid == 0);
    CHECK(p.ids.container_gid == 42);
    CHECK(p.ids.host_uid == 1234);
    CHECK(p.ids.host_gid == 5678);
  }
  SECTION("--uid only") {
    f.config.uid = 7;
    Plan p = make_plan(f.config, f.host);
    CHECK(p.ids.container_uid == 7);
    CHECK(p.ids.container_gid == 5678);
  }
  SECTION("--gid only") {
    f.config.gid = 9;
    Plan p = make_plan(f.config, f.host);
    CHECK(p.ids.container_uid == 1234);
    CHECK(p.ids.container_gid == 9);
  }
}

// ----------------------------------------------------------- make_plan: image

TEST_CASE("make_plan takes a directory image by path", "[plan][image]") {
  Fixture f;
  Plan p = make_plan(f.config, f.host);
  CHECK(p.image.kind == ImageKind::kDirectory);
  CHECK(p.image.path == f.image);
  CHECK(p.image.arg == f.image);
  CHECK_FALSE(p.image.from_storage);
  CHECK_FALSE(p.writable);
}

TEST_CASE("make_plan resolves an image name in the storage of Config::storage",
          "[plan][image]") {
  Fixture f;
  f.config.image = "named:tag";
  Plan p = make_plan(f.config, f.host);
  CHECK(p.image.from_storage);
  CHECK(p.image.kind == ImageKind::kDirectory);
  CHECK(p.image.path == real(f.storage + "/img/named+tag"));
}

TEST_CASE("make_plan takes storage from $CH_IMAGE_STORAGE without -s", "[plan][image]") {
  Fixture f;
  f.config.storage.reset();
  f.config.image = "named:tag";
  f.host.env.set("CH_IMAGE_STORAGE", f.storage);
  Plan p = make_plan(f.config, f.host);
  CHECK(p.image.from_storage);
  CHECK(p.image.path == real(f.storage + "/img/named+tag"));
}

TEST_CASE("make_plan: -s wins over $CH_IMAGE_STORAGE", "[plan][image]") {
  Fixture f;
  f.config.image = "named:tag";
  f.host.env.set("CH_IMAGE_STORAGE", f.t / "elsewhere");
  Plan p = make_plan(f.config, f.host);
  CHECK(p.image.from_storage);
  CHECK(p.image.path == real(f.storage + "/img/named+tag"));
}

TEST_CASE("make_plan fails for a missing image, naming it", "[plan][image]") {
  Fixture f;
  f.config.image = f.t / "no-such-image";
  CHECK_THROWS_AS(make_plan(f.config, f.host), SysError);
  CHECK_THROWS_WITH(make_plan(f.config, f.host), Contains(f.config.image));
}

TEST_CASE("make_plan refuses a storage directory by path unless --unsafe", "[plan][image]") {
  Fixture f;
  f.config.image = f.storage + "/img/named+tag";
  CHECK_THROWS_AS(make_plan(f.config, f.host), Error);
  CHECK_THROWS_WITH(make_plan(f.config, f.host), Contains("--unsafe"));
  f.config.unsafe = true;
  Plan p = make_plan(f.config, f.host);
  CHECK(p.image.path == f.config.image);
}

TEST_CASE("make_plan refuses SquashFS images", "[plan][image]") {
  Fixture f;
  f.config.image = f.t.write("img.sqfs", "hsqs-then-the-rest");
  CHECK_THROWS_AS(make_plan(f.config, f.host), Error);
  CHECK_THROWS_WITH(make_plan(f.config, f.host),
                    Contains("SquashFS") && Contains(f.config.image));
}

TEST_CASE("make_plan: --write makes a directory image writable", "[plan][image]") {
  Fixture f;
  f.config.write = true;
  Plan p = make_plan(f.config, f.host);
  CHECK(p.writable);
}

TEST_CASE("make_plan: --write on an image in storage needs --unsafe", "[plan][image]") {
  Fixture f;
  f.config.image = "named:tag";
  f.config.write = true;
  CHECK_THROWS_AS(make_plan(f.config, f.host), Error);
  CHECK_THROWS_WITH(make_plan(f.config, f.host),
                    Contains("--write") && Contains("--unsafe") && Contains("named:tag"));
  f.config.unsafe = true;
  Plan p = make_plan(f.config, f.host);
  CHECK(p.writable);
  CHECK(p.image.from_storage);
}

TEST_CASE("make_plan ignores --mount for a directory image", "[plan][image]") {
  Fixture f;
  f.config.mount_dir = f.t / "mnt";
  // Only a warning, which -qq silences; keep the test output clean.
  int level = log::level();
  log::set_level(log::kQuiet2);
  Plan p;
  CHECK_NOTHROW(p = make_plan(f.config, f.host));
  log::set_level(level);
  CHECK(p.image.kind == ImageKind::kDirectory);
  CHECK(find_dst(p.mounts, f.t / "mnt") == nullptr);
}

// --------------------------------------------------------- make_plan: command

TEST_CASE("make_plan needs a command", "[plan]") {
  Fixture f;
  f.config.argv.clear();
  CHECK_THROWS_AS(make_plan(f.config, f.host), Error);
  CHECK_THROWS_WITH(make_plan(f.config, f.host), Contains("no command"));
}

TEST_CASE("make_plan copies the command, --cd and verbosity", "[plan]") {
  Fixture f;
  f.config.argv = {"/bin/sh", "-c", "echo hi"};
  f.config.cd = "/mnt";
  f.config.verbosity = -2;
  Plan p = make_plan(f.config, f.host);
  CHECK(p.argv == std::vector<std::string>{"/bin/sh", "-c", "echo hi"});
  REQUIRE(p.cwd.has_value());
  CHECK(*p.cwd == "/mnt");
  CHECK(p.verbosity == -2);

  f.config.cd.reset();
  CHECK_FALSE(make_plan(f.config, f.host).cwd.has_value());
}

// ------------------------------------------------------------ make_plan: user

TEST_CASE("make_plan takes the user name from $USER", "[plan][user]") {
  Fixture f;
  f.config.storage.reset();  // default storage: /var/tmp/$USER.ch
  f.host.env.set("USER", "someone-with-no-storage");
  f.config.home = true;
  Plan p = make_plan(f.config, f.host);
  REQUIRE(p.env.home.has_value());
  CHECK(*p.env.home == "/home/someone-with-no-storage");
}

TEST_CASE("make_plan falls back on the host's name for the uid without $USER",
          "[plan][user]") {
  Fixture f;
  f.host.env.unset("USER");
  f.host.uid = 0;  // root on any Linux
  f.config.home = true;
  Plan p = make_plan(f.config, f.host);
  REQUIRE(p.env.home.has_value());
  CHECK(*p.env.home == "/home/root");

  SECTION("an empty $USER counts as unset") {
    f.host.env.set("USER", "");
    Plan q = make_plan(f.config, f.host);
    REQUIRE(q.env.home.has_value());
    CHECK(*q.env.home == "/home/root");
  }
}

TEST_CASE("make_plan fails without $USER for a uid the host does not know",
          "[plan][user]") {
  Fixture f;
  f.host.env.unset("USER");
  f.host.uid = 3141592653u;
  CHECK_THROWS_AS(make_plan(f.config, f.host), Error);
  CHECK_THROWS_WITH(make_plan(f.config, f.host),
                    Contains("$USER not set") && Contains("3141592653"));
}

// ---------------------------------------------------------- make_plan: mounts

TEST_CASE("make_plan keeps the default binds the host has, in order, then /tmp",
          "[plan][mounts]") {
  Fixture f;
  Plan p = make_plan(f.config, f.host);
  std::vector<Mount> defaults = present_defaults();
  REQUIRE(p.mounts.size() == defaults.size() + 1);
  for (size_t i = 0; i < defaults.size(); ++i) {
    INFO("mount #" << i << ": " << defaults[i].dst);
    CHECK(p.mounts[i].kind == Kind::kBind);
    CHECK(p.mounts[i].src == defaults[i].src);
    CHECK(p.mounts[i].dst == defaults[i].dst);
    CHECK(p.mounts[i].need == defaults[i].need);
    CHECK(p.mounts[i].readonly == defaults[i].readonly);
  }
  CHECK(p.mounts.back().dst == "/tmp");
}

TEST_CASE("make_plan starts with /dev, /proc and /sys", "[plan][mounts]") {
  Fixture f;
  Plan p = make_plan(f.config, f.host);
  REQUIRE(p.mounts.size() >= 3);
  CHECK(p.mounts[0].dst == "/dev");
  CHECK_FALSE(p.mounts[0].readonly);
  CHECK(p.mounts[1].dst == "/proc");
  CHECK_FALSE(p.mounts[1].readonly);
  CHECK(p.mounts[2].dst == "/sys");
  CHECK(p.mounts[2].readonly);
}

TEST_CASE("make_plan drops default binds the host lacks", "[plan][mounts]") {
  Fixture f;
  Plan p = make_plan(f.config, f.host);
  for (const auto& m : default_mounts()) {
    INFO("default " << m.src);
    CHECK((find_dst(p.mounts, m.dst) != nullptr) == exists(m.src));
  }
}

TEST_CASE("make_plan records whether a default bind source is a directory",
          "[plan][mounts]") {
  Fixture f;
  Plan p = make_plan(f.config, f.host);
  const Mount* dev = find_dst(p.mounts, "/dev");
  REQUIRE(dev != nullptr);
  CHECK(dev->src_is_dir);
  if (const Mount* hosts = find_dst(p.mounts, "/etc/hosts")) {
    struct stat st;
    REQUIRE(::stat("/etc/hosts", &st) == 0);
    CHECK(hosts->src_is_dir == S_ISDIR(st.st_mode));
  }
}

TEST_CASE("make_plan binds the host's $TMPDIR at /tmp", "[plan][mounts][tmp]") {
  Fixture f;
  Plan p = make_plan(f.config, f.host);
  const Mount& tmp = p.mounts.back();
  CHECK(tmp.kind == Kind::kBind);
  CHECK(tmp.need == Need::kRequired);
  CHECK(tmp.src == f.tmpdir);
  CHECK(tmp.dst == "/tmp");
  CHECK_FALSE(tmp.readonly);
  CHECK(tmp.src_is_dir);
}

TEST_CASE("make_plan binds the host's /tmp when $TMPDIR is unset or empty",
          "[plan][mounts][tmp]") {
  Fixture f;
  SECTION("unset") { f.host.env.unset("TMPDIR"); }
  SECTION("empty") { f.host.env.set("TMPDIR", ""); }
  Plan p = make_plan(f.config, f.host);
  const Mount* tmp = find_dst(p.mounts, "/tmp");
  REQUIRE(tmp != nullptr);
  CHECK(tmp->kind == Kind::kBind);
  CHECK(tmp->src == "/tmp");
}

TEST_CASE("make_plan fails when $TMPDIR is not a directory", "[plan][mounts][tmp]") {
  Fixture f;
  SECTION("missing") {
    f.host.env.set("TMPDIR", f.t / "no-such-dir");
  }
  SECTION("a file") {
    f.host.env.set("TMPDIR", f.data_file);
  }
  std::string bad(*f.host.env.get("TMPDIR"));
  CHECK_THROWS_AS(make_plan(f.config, f.host), SysError);
  CHECK_THROWS_WITH(make_plan(f.config, f.host), Contains(bad));
  try {
    make_plan(f.config, f.host);
    FAIL("no exception");
  } catch (const SysError& e) {
    CHECK(e.err() == ENOTDIR);
  }
}

TEST_CASE("make_plan: --private-tmp mounts a tmpfs on /tmp instead", "[plan][mounts][tmp]") {
  Fixture f;
  f.config.private_tmp = true;
  SECTION("with a usable $TMPDIR") {}
  SECTION("$TMPDIR is not even looked at") {
    f.host.env.set("TMPDIR", f.t / "no-such-dir");
  }
  Plan p = make_plan(f.config, f.host);
  const Mount& tmp = p.mounts.back();
  CHECK(tmp.kind == Kind::kTmpfs);
  CHECK(tmp.dst == "/tmp");
  CHECK(tmp.src == "mode=1777");
  CHECK_FALSE(tmp.readonly);
  // Only one mount on /tmp.
  size_t n = 0;
  for (const auto& m : p.mounts) n += m.dst == "/tmp";
  CHECK(n == 1);
}

TEST_CASE("make_plan: --home mounts a tmpfs on /home and binds $HOME in it",
          "[plan][mounts][home]") {
  Fixture f;
  f.config.home = true;
  Plan p = make_plan(f.config, f.host);
  REQUIRE(p.mounts.size() >= 3);
  const Mount& tmp = p.mounts[p.mounts.size() - 3];
  const Mount& home_fs = p.mounts[p.mounts.size() - 2];
  const Mount& home = p.mounts.back();
  CHECK(tmp.dst == "/tmp");
  CHECK(home_fs.kind == Kind::kTmpfs);
  CHECK(home_fs.dst == "/home");
  CHECK(home_fs.need == Need::kRequired);
  CHECK(home_fs.src == "size=4m,mode=0755");
  CHECK(home.kind == Kind::kBind);
  CHECK(home.src == f.home);
  CHECK(home.dst == "/home/alice");
  CHECK(home.need == Need::kMakeDst);
  CHECK_FALSE(home.readonly);
  CHECK(home.src_is_dir);
  REQUIRE(p.env.home.has_value());
  CHECK(*p.env.home == "/home/alice");
}

TEST_CASE("make_plan: without --home nothing is mounted on /home", "[plan][mounts][home]") {
  Fixture f;
  Plan p = make_plan(f.config, f.host);
  for (const auto& m : p.mounts) {
    INFO("mount " << m.dst);
    CHECK_FALSE(m.dst.starts_with("/home"));
  }
  CHECK_FALSE(p.env.home.has_value());
}

TEST_CASE("make_plan: --home needs $HOME", "[plan][home]") {
  Fixture f;
  f.config.home = true;
  SECTION("unset") { f.host.env.unset("HOME"); }
  SECTION("empty") { f.host.env.set("HOME", ""); }
  CHECK_THROWS_AS(make_plan(f.config, f.host), Error);
  CHECK_THROWS_WITH(make_plan(f.config, f.host), Contains("--home") && Contains("$HOME not set"));
}

TEST_CASE("make_plan: without --home, $HOME need not be set", "[plan][home]") {
  Fixture f;
  f.host.env.unset("HOME");
  CHECK_NOTHROW(make_plan(f.config, f.host));
}

TEST_CASE("make_plan: --home needs $HOME to be a directory", "[plan][home]") {
  Fixture f;
  f.config.home = true;
  SECTION("missing") { f.host.env.set("HOME", f.t / "gone"); }
  SECTION("a file") { f.host.env.set("HOME", f.data_file); }
  std::string bad(*f.host.env.get("HOME"));
  CHECK_THROWS_AS(make_plan(f.config, f.host), SysError);
  CHECK_THROWS_WITH(make_plan(f.config, f.host), Contains("--home") && Contains(bad));
}

TEST_CASE("make_plan: --home refuses a $USER that is no directory name", "[plan][home]") {
  Fixture f;
  f.config.home = true;
  for (const char* user : {".", "..", "a/b", "/abs"}) {
    INFO("USER=" << user);
    f.host.env.set("USER", user);
    CHECK_THROWS_AS(make_plan(f.config, f.host), Error);
    CHECK_THROWS_WITH(make_plan(f.config, f.host), Contains("$USER"));
  }
}

TEST_CASE("make_plan appends user binds last, in command-line order",
          "[plan][mounts][bind]") {
  Fixture f;
  f.config.home = true;
  f.config.binds.push_back(bind_spec::parse(f.data_dir + ":/mnt/d"));
  f.config.binds.push_back(bind_spec::parse(f.data_file + ":/mnt/f:ro"));
  f.config.binds.push_back(bind_spec::parse(f.data_dir + "::ro"));
  Plan p = make_plan(f.config, f.host);
  REQUIRE(p.mounts.size() >= 6);
  size_t n = p.mounts.size();
  CHECK(p.mounts[n - 5].dst == "/home");
  CHECK(p.mounts[n - 4].dst == "/home/alice");

  const Mount& d = p.mounts[n - 3];
  CHECK(d.kind == Kind::kBind);
  CHECK(d.need == Need::kMakeDst);
  CHECK(d.src == f.data_dir);
  CHECK(d.dst == "/mnt/d");
  CHECK_FALSE(d.readonly);
  CHECK(d.src_is_dir);
  CHECK(d.why == "--bind");

  const Mount& file = p.mounts[n - 2];
  CHECK(file.src == f.data_file);
  CHECK(file.dst == "/mnt/f");
  CHECK(file.readonly);
  CHECK_FALSE(file.src_is_dir);

  const Mount& same = p.mounts[n - 1];
  CHECK(same.src == f.data_dir);
  CHECK(same.dst == f.data_dir);
  CHECK(same.readonly);
}

TEST_CASE("make_plan fails for a missing bind source, naming it", "[plan][bind]") {
  Fixture f;
  std::string missing = f.t / "missing-src";
  f.config.binds.push_back(bind_spec::parse(f.data_dir + ":/mnt/ok"));
  f.config.binds.push_back(bind_spec::parse(missing + ":/mnt/x"));
  CHECK_THROWS_AS(make_plan(f.config, f.host), SysError);
  CHECK_THROWS_WITH(make_plan(f.config, f.host),
                    Contains("source not found") && Contains(missing));
  try {
    make_plan(f.config, f.host);
    FAIL("no exception");
  } catch (const SysError& e) {
    CHECK(e.err() == ENOENT);
  }
}

TEST_CASE("make_plan: a bind may target a path missing from the image", "[plan][bind]") {
  Fixture f;
  f.config.binds.push_back(bind_spec::parse(f.data_dir + ":/not/in/image"));
  Plan p = make_plan(f.config, f.host);
  const Mount* m = find_dst(p.mounts, "/not/in/image");
  REQUIRE(m != nullptr);
  CHECK(m->need == Need::kMakeDst);
}

// ---------------------------------------------------------- make_plan: passwd

TEST_CASE("make_plan writes passwd and group for the container ids", "[plan][passwd]") {
  Fixture f;
  f.config.uid = 0;
  f.config.gid = 0;
  Plan p = make_plan(f.config, f.host);
  REQUIRE(p.passwd.has_value());
  REQUIRE(p.group.has_value());
  // Container uid 0 is root on any host: no separate root line, no dummy.
  CHECK(p.passwd->starts_with("nobody:x:65534:65534:nobody:/:/bin/false\nroot:x:0:0:"));
  CHECK(p.passwd->ends_with(":/:/bin/sh\n"));
  CHECK(p.passwd->find("charlie") == std::string::npos);
  CHECK(*p.group == "nogroup:x:65534:\nroot:x:0:\n");
}

TEST_CASE("make_plan writes dummy entries for ids the host does not know",
          "[plan][passwd]") {
  Fixture f;
  f.config.uid = 3141592653u;
  f.config.gid = 3141592653u;
  Plan p = make_plan(f.config, f.host);
  REQUIRE(p.passwd.has_value());
  CHECK(*p.passwd ==
        "root:x:0:0:root:/root:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/:/bin/false\n"
        "charlie:x:3141592653:3141592653:Charlie:/:/bin/sh\n");
  REQUIRE(p.group.has_value());
  CHECK(*p.group ==
        "root:x:0:\n"
        "nogroup:x:65534:\n"
        "charliegroup:x:3141592653:\n");
}

TEST_CASE("make_plan writes /home/$USER as HOME in passwd with --home", "[plan][passwd]") {
  Fixture f;
  f.config.uid = 3141592653u;
  f.config.home = true;
  Plan p = make_plan(f.config, f.host);
  REQUIRE(p.passwd.has_value());
  CHECK(p.passwd->ends_with("charlie:x:3141592653:1000:Charlie:/home/alice:/bin/sh\n"));
}

TEST_CASE("make_plan: --no-passwd writes neither passwd nor group", "[plan][passwd]") {
  Fixture f;
  f.config.no_passwd = true;
  Plan p = make_plan(f.config, f.host);
  CHECK_FALSE(p.passwd.has_value());
  CHECK_FALSE(p.group.has_value());
}

TEST_CASE("make_plan: with a --join group, passwd and group wait for finish_plan",
          "[plan][passwd][join]") {
  Fixture f;
  ask_join(f.config, "2", "finish-test");
  f.config.uid = 3141592653u;
  f.config.gid = 3141592653u;
  Plan p = make_plan(f.config, f.host);
  REQUIRE(p.join.has_value());
  CHECK_FALSE(p.finished);
  CHECK_FALSE(p.passwd.has_value());
  CHECK_FALSE(p.group.has_value());
  finish_plan(p);
  CHECK(p.finished);
  REQUIRE(p.passwd.has_value());
  CHECK(p.passwd->ends_with("charlie:x:3141592653:3141592653:Charlie:/:/bin/sh\n"));
  REQUIRE(p.group.has_value());
  CHECK(p.group->ends_with("charliegroup:x:3141592653:\n"));
  // Finishing twice changes nothing.
  const std::string once = *p.passwd;
  finish_plan(p);
  CHECK(*p.passwd == once);
  // With --no-passwd, finishing writes neither.
  f.config.no_passwd = true;
  Plan q = make_plan(f.config, f.host);
  finish_plan(q);
  CHECK(q.finished);
  CHECK(q.no_passwd);
  CHECK_FALSE(q.passwd.has_value());
}

TEST_CASE("make_plan: --join expecting no other process makes a finished plan",
          "[plan][passwd][join]") {
  Fixture f;
  ask_join(f.config, "1", "alone");
  Plan p = make_plan(f.config, f.host);
  CHECK_FALSE(p.join.has_value());
  CHECK(p.finished);
  CHECK(p.passwd.has_value());
}

TEST_CASE("make_plan: a --join group leaves the SquashFS check to finish_plan",
          "[plan][image][join]") {
  Fixture f;
  f.config.image = f.t.write("img.sqfs", "hsqs-then-the-rest");
  ask_join(f.config, "2", "finish-squash");
  Plan p = make_plan(f.config, f.host);
  CHECK(p.image.kind == ImageKind::kSquash);
  CHECK_FALSE(p.finished);
  CHECK_THROWS_WITH(finish_plan(p), Contains("SquashFS") && Contains(f.config.image));
  CHECK_FALSE(p.finished);
  // Without a group the check is make_plan's, as without --join.
  f.config.join_ct = "1";
  CHECK_THROWS_WITH(make_plan(f.config, f.host), Contains("SquashFS") && Contains(f.config.image));
}

// ------------------------------------------------------------- make_plan: env

TEST_CASE("make_plan passes the environment plan on", "[plan][env]") {
  Fixture f;
  env::Op set;
  set.kind = env::Op::Kind::kSet;
  set.vars = {{"A", "1"}};
  env::Op unset;
  unset.kind = env::Op::Kind::kUnset;
  unset.glob = "B*";
  f.config.env_ops = {set, unset};
  SECTION("expansion on by default") {
    Plan p = make_plan(f.config, f.host);
    REQUIRE(p.env.ops.size() == 2);
    CHECK(p.env.ops[0].kind == env::Op::Kind::kSet);
    CHECK(p.env.ops[0].vars == std::vector<env::Var>{{"A", "1"}});
    CHECK(p.env.ops[1].kind == env::Op::Kind::kUnset);
    CHECK(p.env.ops[1].glob == "B*");
    CHECK(p.env.expand);
  }
  SECTION("--env-no-expand") {
    f.config.env_no_expand = true;
    Plan p = make_plan(f.config, f.host);
    CHECK_FALSE(p.env.expand);
  }
}

TEST_CASE("make_plan keeps the host environment as given", "[plan][env]") {
  Fixture f;
  f.host.env.set("TMPDIR", f.tmpdir);
  f.host.env.set("EXTRA", "x");
  Plan p = make_plan(f.config, f.host);
  CHECK(p.host_env.entries() == f.host.env.entries());
}

// ---------------------------------------------------------------- HostFacts

TEST_CASE("HostFacts::current reads this process's ids and environment", "[plan]") {
  HostFacts h = HostFacts::current();
  CHECK(h.uid == ::geteuid());
  CHECK(h.gid == ::getegid());
  const char* path = std::getenv("PATH");
  if (path != nullptr) {
    REQUIRE(h.env.get("PATH").has_value());
    CHECK(*h.env.get("PATH") == path);
  } else {
    CHECK_FALSE(h.env.get("PATH").has_value());
  }
}

// ------------------------------------------------------------- make_plan: PMIx

TEST_CASE("make_plan: the PMIx server's directories are bound at their own path",
          "[plan][mounts]") {
  Fixture f;
  // Not under /tmp, which the container shows from another host directory.
  char tmpl[] = "/var/tmp/chute-unit-pmix-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::string pmix = tmpl;
  struct Remove {
    std::string p;
    ~Remove() { ::rmdir(p.c_str()); }
  } remove{pmix};
  f.host.env.set("PMIX_SERVER_TMPDIR", pmix + "/");  // Slurm ends it with a slash
  Plan p = make_plan(f.config, f.host);
  const Mount* m = find_dst(p.mounts, real(pmix));
  REQUIRE(m != nullptr);
  CHECK(m->src == real(pmix));
  CHECK(m->need == Need::kCreateDst);
  CHECK_FALSE(m->readonly);
  CHECK(m->why == "$PMIX_SERVER_TMPDIR");
  // After the /tmp bind.
  auto at = [&](std::string_view dst) {
    for (size_t i = 0; i < p.mounts.size(); ++i)
      if (p.mounts[i].dst == dst) return i;
    return p.mounts.size();
  };
  CHECK(at("/tmp") < at(real(pmix)));

  f.host.env.unset("PMIX_SERVER_TMPDIR");
  f.host.env.set("PMIX_SYSTEM_TMPDIR", pmix);
  CHECK(find_dst(make_plan(f.config, f.host).mounts, real(pmix)) != nullptr);
}

TEST_CASE("make_plan: PMIx directories that are shown already, missing, relative or "
          "covered are not bound", "[plan][mounts]") {
  Fixture f;
  const size_t base = make_plan(f.config, f.host).mounts.size();
  for (const std::string& v : {std::string("/"), std::string("relative/dir"),
                               f.t.path() + "/missing", std::string("")}) {
    INFO("PMIX_SERVER_TMPDIR=" << v);
    f.host.env.set("PMIX_SERVER_TMPDIR", v);
    CHECK(make_plan(f.config, f.host).mounts.size() == base);
  }
  // Under /dev: the default bind shows it.
  f.host.env.set("PMIX_SERVER_TMPDIR", "/dev/shm");
  CHECK(make_plan(f.config, f.host).mounts.size() == base);
  // Under the /tmp bind of another host directory: it can't be shown there.
  f.host.env.set("PMIX_SERVER_TMPDIR", f.t.mkdir("pmix"));
  CHECK(make_plan(f.config, f.host).mounts.size() == base);
}

TEST_CASE("make_plan: --pid mounts a /proc of the job's own in place of the host's, nothing "
          "else changes", "[plan][mounts][pid]") {
  Fixture f;
  const Plan without = make_plan(f.config, f.host);
  f.config.pid = true;
  const Plan with = make_plan(f.config, f.host);
  CHECK_FALSE(without.pid);
  CHECK(with.pid);
  REQUIRE(with.mounts.size() == without.mounts.size());
  for (size_t i = 0; i < with.mounts.size(); ++i) {
    INFO("mount " << i << ": " << without.mounts[i].dst);
    CHECK(with.mounts[i].dst == without.mounts[i].dst);
    if (with.mounts[i].dst == "/proc") {
      CHECK(without.mounts[i].kind == Kind::kBind);
      CHECK(with.mounts[i].kind == Kind::kProc);
      CHECK(with.mounts[i].need == Need::kRequired);
      CHECK(with.mounts[i].why == "--pid");
    } else {
      CHECK(with.mounts[i].kind == without.mounts[i].kind);
      CHECK(with.mounts[i].src == without.mounts[i].src);
    }
  }
  CHECK(find_dst(with.mounts, "/proc") != nullptr);
}

TEST_CASE("make_plan: --pid can't be combined with --join or --join-pid, naming both",
          "[plan][pid][join]") {
  Fixture f;
  f.config.pid = true;
  ask_join(f.config, "2", "pid-test");
  CHECK_THROWS_WITH(make_plan(f.config, f.host), Contains("--pid") && Contains("--join"));
  f.config.join = false;
  f.config.join_ct.reset();
  f.config.join_tag.reset();
  f.config.join_pid = 4242;
  CHECK_THROWS_WITH(make_plan(f.config, f.host), Contains("--pid") && Contains("--join-pid"));
  // A --join that expects no other process makes no group: nothing to refuse.
  f.config.join_pid.reset();
  f.config.join = true;
  f.config.join_ct = "1";
  CHECK(make_plan(f.config, f.host).pid);
}
