// Unit tests for the site configuration (chute.yaml): keys, types, merging
// of the system and user files, and where the files are looked for.
#include <catch2/catch.hpp>

#include <fstream>
#include <string>

#include "chute/document.hpp"
#include "chute/error.hpp"
#include "chute/site.hpp"
#include "temp_dir.hpp"

using namespace chute;
using Catch::Contains;

namespace {

site::Config from(const std::string& text, site::Config c = site::defaults()) {
  site::apply(c, doc::parse(text, "t.yaml"), "t.yaml");
  return c;
}

Environment env_of(std::initializer_list<std::pair<const char*, const char*>> vars) {
  Environment e;
  for (const auto& [k, v] : vars) e.set(k, v);
  return e;
}

}  // namespace

TEST_CASE("site: the built-in defaults", "[site]") {
  auto c = site::defaults();
  CHECK(c.gpu_root == "/");
  CHECK(c.gpu_ldcache);
  CHECK(c.cdi_dirs == std::vector<std::string>{"/etc/cdi", "/var/run/cdi"});
  CHECK(c.mpi.count("host") == 1);
  CHECK_FALSE(c.nvidia.libraries.empty());
  CHECK_FALSE(c.amd.devices.empty());
  CHECK(c.binds.empty());
}

TEST_CASE("site: every key, YAML and JSON alike", "[site]") {
  const std::string yaml = R"(
binds:
  - /scratch
  - /opt/site:/site:ro
cdi-dirs: /a:/b
gpu:
  root: /fake
  ldcache: false
  nvidia-container-cli: no
  library-dirs: [/fake/lib]
  binary-dirs: [/fake/bin]
  nvidia:
    devices: [/dev/nvidia*]
    libraries: [libcuda.so*]
    binaries: [nvidia-smi]
    files: [/run/x]
    capabilities:
      video: [libnvcuvid.so*]
  amd:
    libraries: [libhsa*]
mpi:
  cray:
    libraries: [/opt/cray/libmpi.so.12]
    library-dirs: [/opt/cray/lib]
    binds: [/opt/cray]
    env: [MPICH_GPU_SUPPORT_ENABLED=1]
)";
  auto c = from(yaml);
  REQUIRE(c.binds.size() == 2);
  CHECK(c.binds[1].src == "/opt/site");
  CHECK(c.binds[1].dst == "/site");
  CHECK(c.binds[1].readonly);
  CHECK(c.cdi_dirs == std::vector<std::string>{"/a", "/b"});
  CHECK(c.gpu_root == "/fake");
  CHECK_FALSE(c.gpu_ldcache);
  CHECK_FALSE(c.nvidia_container_cli);
  CHECK(c.library_dirs == std::vector<std::string>{"/fake/lib"});
  CHECK(c.nvidia.libraries == std::vector<std::string>{"libcuda.so*"});
  CHECK(c.nvidia.files == std::vector<std::string>{"/run/x"});
  CHECK(c.nvidia.capabilities["video"] == std::vector<std::string>{"libnvcuvid.so*"});
  CHECK(c.amd.libraries == std::vector<std::string>{"libhsa*"});
  // Keys a file leaves out keep their defaults.
  CHECK(c.amd.devices == site::defaults().amd.devices);
  REQUIRE(c.mpi.count("cray") == 1);
  CHECK(c.mpi.count("host") == 1);
  CHECK(c.mpi["cray"].env == std::vector<std::string>{"MPICH_GPU_SUPPORT_ENABLED=1"});
  CHECK(c.mpi["cray"].binds.at(0).dst == "/opt/cray");

  auto j = from(R"({"gpu": {"root": "/fake", "ldcache": false}, "cdi-dirs": ["/x"]})");
  CHECK(j.gpu_root == "/fake");
  CHECK_FALSE(j.gpu_ldcache);
  CHECK(j.cdi_dirs == std::vector<std::string>{"/x"});
}

TEST_CASE("site: an empty file changes nothing", "[site]") {
  auto c = from("");
  CHECK(c.gpu_root == "/");
  auto d = from("# only a comment\n");
  CHECK(d.mpi.size() == site::defaults().mpi.size());
}

TEST_CASE("site: bad files are errors naming the file and the key", "[site]") {
  CHECK_THROWS_WITH(from("gpuu: {}\n"), Contains("t.yaml: gpuu: unknown key"));
  CHECK_THROWS_WITH(from("gpu:\n  rooot: /\n"), Contains("t.yaml: gpu.rooot: unknown key"));
  CHECK_THROWS_WITH(from("gpu:\n  root: relative\n"), Contains("not an absolute path"));
  CHECK_THROWS_WITH(from("gpu:\n  ldcache: perhaps\n"), Contains("gpu.ldcache: expected true or false"));
  CHECK_THROWS_WITH(from("gpu:\n  nvidia:\n    device: []\n"), Contains("gpu.nvidia.device: unknown key"));
  CHECK_THROWS_WITH(from("gpu: [1, 2]\n"), Contains("expected a mapping"));
  CHECK_THROWS_WITH(from("binds: [':nope']\n"), Contains("t.yaml: binds"));
  CHECK_THROWS_WITH(from("mpi:\n  'a/b': {}\n"), Contains("profile name"));
  CHECK_THROWS_WITH(from("mpi:\n  x:\n    env: [NOEQUALS]\n"), Contains("not KEY=VALUE"));
  CHECK_THROWS_WITH(from("mpi:\n  x:\n    libs: []\n"), Contains("mpi.x.libs: unknown key"));
  CHECK_THROWS_WITH(from("[unclosed\n"), Contains("t.yaml"));
  CHECK_THROWS_AS(from("gpu: {root: {a: b}}\n"), Error);
}

TEST_CASE("site: where the files are", "[site]") {
  auto p = site::paths(env_of({{"HOME", "/home/u"}}));
  REQUIRE(p.size() == 2);
  CHECK_THAT(p[0], Contains("/chute/chute.yaml"));
  CHECK(p[1] == "/home/u/.config/chute/chute.yaml");
  p = site::paths(env_of({{"HOME", "/home/u"}, {"XDG_CONFIG_HOME", "/x"}}));
  CHECK(p[1] == "/x/chute/chute.yaml");
  p = site::paths(env_of({{"HOME", "/home/u"}, {"CHUTE_CONFIG", "/c.yaml"}}));
  CHECK(p[1] == "/c.yaml");
  p = site::paths(env_of({{"XDG_CONFIG_HOME", "relative"}}));
  CHECK(p.size() == 1);
}

TEST_CASE("site: load() reads the user's file over the defaults", "[site]") {
  test_support::TempDir dir("site");
  const std::string f = dir.path() + "/c.yaml";
  std::ofstream(f) << "gpu:\n  root: /from-user\n";
  auto c = site::load(env_of({{"CHUTE_CONFIG", f.c_str()}}));
  CHECK(c.gpu_root == "/from-user");
  CHECK(c.files.back() == f);
  CHECK_THROWS_WITH(site::load(env_of({{"CHUTE_CONFIG", "/nonexistent/c.yaml"}})),
                    Contains("CHUTE_CONFIG: no such file: /nonexistent/c.yaml"));
  // A user without a file of their own gets the defaults.
  auto d = site::load(env_of({{"HOME", dir.path().c_str()}}));
  CHECK(d.gpu_root == "/");
}
