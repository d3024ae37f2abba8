// Unit tests for the preflight check of injected host libraries, over
// hand-made ELF facts: missing objects, missing symbol versions, soname
// (ABI) mismatches, word size and machine.
#include <catch2/catch.hpp>

#include <elf.h>

#include <map>
#include <string>

#include "chute/preflight.hpp"

using namespace chute;
using Catch::Contains;

namespace {

elf::Info object(std::string soname, std::vector<std::string> needed = {},
                 std::vector<elf::VersionNeed> needs = {}, std::vector<std::string> defs = {}) {
  elf::Info i;
  i.elf_class = ELFCLASS64;
  i.machine = EM_X86_64;
  i.soname = std::move(soname);
  i.needed = std::move(needed);
  i.version_needs = std::move(needs);
  i.version_defs = std::move(defs);
  return i;
}

elf::Info image_libc() {
  // Out of order on purpose: the highest is found by number, not by place.
  return object("libc.so.6", {"ld-linux-x86-64.so.2"}, {},
                {"GLIBC_2.2.5", "GLIBC_2.36", "GLIBC_2.9", "GLIBC_2.17", "GLIBC_2.3.4",
                 "GLIBC_2.34", "GLIBC_PRIVATE"});
}

// An image holding OBJECTS by file name, with a count of look-ups.
struct FakeImage {
  std::map<std::string, elf::Info> objects;
  std::vector<std::string> files;   // what names_with_prefix looks through
  std::map<std::string, int> lookups;

  preflight::Image image() {
    return {[this](const std::string& name) -> std::optional<elf::Info> {
              ++lookups[name];
              auto it = objects.find(name);
              if (it == objects.end()) return std::nullopt;
              return it->second;
            },
            [this](const std::string& prefix) {
              std::vector<std::string> out;
              for (const auto& f : files)
                if (f.starts_with(prefix)) out.push_back(f);
              return out;
            }};
  }
};

FakeImage debian12() {
  FakeImage img;
  img.objects["libc.so.6"] = image_libc();
  img.objects["libm.so.6"] = object("libm.so.6", {"libc.so.6"}, {}, {"GLIBC_2.2.5", "GLIBC_2.29"});
  img.objects["ld-linux-x86-64.so.2"] =
      object("ld-linux-x86-64.so.2", {}, {}, {"GLIBC_2.2.5", "GLIBC_2.3", "GLIBC_2.35", "GLIBC_PRIVATE"});
  img.objects["libstdc++.so.6"] =
      object("libstdc++.so.6", {"libc.so.6"}, {}, {"GLIBCXX_3.4", "GLIBCXX_3.4.30", "GLIBCXX_3.4.9"});
  img.files = {"libc.so.6", "libm.so.6", "libstdc++.so.6", "libstdc++.so.6.0.30"};
  return img;
}

std::vector<elf::VersionNeed> glibc(std::vector<std::string> versions) {
  return {{"libc.so.6", std::move(versions)}};
}

}  // namespace

TEST_CASE("preflight: versions compare by number, within one family") {
  using preflight::compare_versions;
  CHECK(compare_versions("GLIBC_2.9", "GLIBC_2.36") < 0);
  CHECK(compare_versions("GLIBC_2.36", "GLIBC_2.9") > 0);
  CHECK(compare_versions("GLIBC_2.3.4", "GLIBC_2.3") > 0);
  CHECK(compare_versions("GLIBC_2.3", "GLIBC_2.3.0") == 0);
  CHECK(compare_versions("GLIBC_2.03", "GLIBC_2.3") == 0);
  CHECK(compare_versions("GLIBCXX_3.4.30", "GLIBCXX_3.4.9") > 0);
  CHECK(compare_versions("LIB_99999999999999999999999", "LIB_100") > 0);
  CHECK_FALSE(compare_versions("GLIBC_2.3", "GLIBCXX_3.4"));
  CHECK_FALSE(compare_versions("GLIBC_PRIVATE", "GLIBC_2.3"));
  CHECK_FALSE(compare_versions("GLIBC_2..3", "GLIBC_2.3"));
  CHECK_FALSE(compare_versions("GLIBC_", "GLIBC_2"));
  CHECK_FALSE(compare_versions("VERS", "VERS"));
}

TEST_CASE("preflight: dynamic linker names") {
  CHECK(preflight::is_dynamic_linker("ld-linux-x86-64.so.2"));
  CHECK(preflight::is_dynamic_linker("/lib64/ld-linux-x86-64.so.2"));
  CHECK(preflight::is_dynamic_linker("ld-linux-aarch64.so.1"));
  CHECK(preflight::is_dynamic_linker("ld64.so.2"));
  CHECK(preflight::is_dynamic_linker("ld-musl-x86_64.so.1"));
  CHECK_FALSE(preflight::is_dynamic_linker("libc.so.6"));
  CHECK_FALSE(preflight::is_dynamic_linker("ld-linux"));
  CHECK_FALSE(preflight::is_dynamic_linker("libld-linux.so.2"));
}

TEST_CASE("preflight: all good") {
  FakeImage img = debian12();
  const std::vector<preflight::Library> injected = {
      {"/usr/lib64/libcuda.so.1",
       object("libcuda.so.1", {"libm.so.6", "libc.so.6", "ld-linux-x86-64.so.2", "libnvidia-ptxjitcompiler.so.1"},
              {{"libc.so.6", {"GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.3.4", "GLIBC_PRIVATE"}},
               {"libm.so.6", {"GLIBC_2.29"}},
               {"ld-linux-x86-64.so.2", {"GLIBC_2.3"}},
               {"libnvidia-ptxjitcompiler.so.1", {"NV_1.0"}}})},
      {"/usr/lib64/libnvidia-ptxjitcompiler.so.1",
       object("libnvidia-ptxjitcompiler.so.1", {"libc.so.6"}, glibc({"GLIBC_2.2.5"}), {"NV_1.0"})},
  };
  CHECK(preflight::check(injected, img.image()).empty());
  // Each name is looked up in the image once, however often it is needed.
  CHECK(img.lookups.size() == 3);  // libc.so.6, libm.so.6, ld-linux-x86-64.so.2
  for (const auto& [name, n] : img.lookups) {
    INFO(name);
    CHECK(n == 1);
  }
  CHECK(preflight::check({}, img.image()).empty());
}

TEST_CASE("preflight: a needed object that nobody provides") {
  FakeImage img = debian12();
  const std::vector<preflight::Library> injected = {
      {"/usr/lib64/libcuda.so.1",
       object("libcuda.so.1", {"libc.so.6", "libnvidia-foo.so.3", "libgone.so.1"},
              {{"libgone.so.1", {"GONE_1"}}})},
  };
  const auto problems = preflight::check(injected, img.image());
  REQUIRE(problems.size() == 2);
  CHECK(problems[0].library == "/usr/lib64/libcuda.so.1");
  CHECK(problems[0].message ==
        "/usr/lib64/libcuda.so.1 needs libnvidia-foo.so.3, which neither the image nor the "
        "injected files provide");
  // Missing once, though both DT_NEEDED and a version need name it.
  CHECK_THAT(problems[1].message, Contains("needs libgone.so.1, which neither"));
}

TEST_CASE("preflight: injected files provide by soname or by file name") {
  FakeImage img = debian12();
  const std::vector<preflight::Library> injected = {
      {"/usr/lib64/libcuda.so.1", object("libcuda.so.1", {"libbyname.so.1", "libbysoname.so.2"})},
      {"/usr/lib64/libbyname.so.1", object("")},
      {"/usr/lib64/libother-file-name.so", object("libbysoname.so.2")},
  };
  CHECK(preflight::check(injected, img.image()).empty());
}

TEST_CASE("preflight: a symbol version the image's libc lacks") {
  FakeImage img = debian12();
  const std::vector<preflight::Library> injected = {
      {"libcuda.so.1", object("libcuda.so.1", {"libc.so.6"}, glibc({"GLIBC_2.17", "GLIBC_2.38"}))},
  };
  const auto problems = preflight::check(injected, img.image());
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].message ==
        "libcuda.so.1 needs GLIBC_2.38 (from libc.so.6); the image's libc.so.6 provides at most "
        "GLIBC_2.36");
}

TEST_CASE("preflight: how a missing version is explained") {
  FakeImage img = debian12();
  img.objects["libnover.so.1"] = object("libnover.so.1");
  const std::vector<preflight::Library> injected = {
      {"libx.so.1",
       object("libx.so.1", {"libc.so.6", "libstdc++.so.6", "libnover.so.1"},
              {{"libc.so.6", {"GLIBC_2.10", "GLIBC_2.9", "GLIBC_OTHER"}},
               {"libstdc++.so.6", {"CXXABI_1.3.13", "GLIBCXX_3.4.31"}},
               {"libnover.so.1", {"NOVER_1"}}})},
  };
  const auto problems = preflight::check(injected, img.image());
  REQUIRE(problems.size() == 5);
  // Below the highest of its family, yet absent: not "at most".
  CHECK_THAT(problems[0].message,
             Contains("needs GLIBC_2.10 (from libc.so.6); the image's libc.so.6 does not define "
                      "it (its GLIBC versions go up to GLIBC_2.36)"));
  CHECK_THAT(problems[1].message,
             Contains("needs GLIBC_OTHER (from libc.so.6); the image's libc.so.6 does not define it"));
  CHECK_THAT(problems[2].message,
             Contains("needs CXXABI_1.3.13 (from libstdc++.so.6); the image's libstdc++.so.6 has "
                      "no CXXABI versions (it defines GLIBCXX_3.4, GLIBCXX_3.4.30, GLIBCXX_3.4.9)"));
  CHECK_THAT(problems[3].message, Contains("provides at most GLIBCXX_3.4.30"));
  CHECK_THAT(problems[4].message,
             Contains("needs NOVER_1 (from libnover.so.1); the image's libnover.so.1 defines no "
                      "symbol versions"));
  for (const auto& p : problems) CHECK(p.library == "libx.so.1");
}

TEST_CASE("preflight: versions of an injected provider are checked in it, not the image") {
  FakeImage img = debian12();
  img.objects["libnvidia-glcore.so.1"] = object("libnvidia-glcore.so.1", {}, {}, {"NV_9.0"});
  const std::vector<preflight::Library> injected = {
      {"libGLX_nvidia.so.0",
       object("libGLX_nvidia.so.0", {"libnvidia-glcore.so.1"}, {{"libnvidia-glcore.so.1", {"NV_2.0"}}})},
      {"libnvidia-glcore.so.1", object("libnvidia-glcore.so.1", {}, {}, {"NV_1.0"})},
  };
  const auto problems = preflight::check(injected, img.image());
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].message ==
        "libGLX_nvidia.so.0 needs NV_2.0 (from libnvidia-glcore.so.1); the injected "
        "libnvidia-glcore.so.1 provides at most NV_1.0");
}

TEST_CASE("preflight: the dynamic linker is the image's") {
  FakeImage img = debian12();
  const elf::Info host_ld =
      object("ld-linux-x86-64.so.2", {}, {}, {"GLIBC_2.2.5", "GLIBC_2.3", "GLIBC_2.39"});
  const std::vector<preflight::Library> injected = {
      {"libgcc_s.so.1",
       object("libgcc_s.so.1", {"libc.so.6", "ld-linux-x86-64.so.2"},
              {{"ld-linux-x86-64.so.2", {"GLIBC_2.39"}}})},
      {"/lib64/ld-linux-x86-64.so.2", host_ld},
  };
  // The image has one: it runs, and the injected copy does not count.
  auto problems = preflight::check(injected, img.image());
  REQUIRE(problems.size() == 1);
  CHECK_THAT(problems[0].message,
             Contains("needs GLIBC_2.39 (from ld-linux-x86-64.so.2); the image's "
                      "ld-linux-x86-64.so.2 provides at most GLIBC_2.35"));
  // The image has none: a file like any other.
  img.objects.erase("ld-linux-x86-64.so.2");
  CHECK(preflight::check(injected, img.image()).empty());
  problems = preflight::check({injected[0]}, img.image());
  REQUIRE(problems.size() == 1);
  CHECK_THAT(problems[0].message,
             Contains("libgcc_s.so.1 needs ld-linux-x86-64.so.2, which neither the image nor the "
                      "injected files provide"));
}

TEST_CASE("preflight: an MPI whose soname the image does not use") {
  FakeImage img = debian12();
  img.files = {"libmpi.so", "libmpi.so.12", "libmpi.so.12.1.1", "libmpi.so.20", "libmpi_cxx.so.40"};
  const std::vector<preflight::Library> injected = {
      {"/usr/lib/libmpi.so.40", object("libmpi.so.40", {"libc.so.6"})},
  };
  auto problems = preflight::check(injected, img.image());
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].library == "/usr/lib/libmpi.so.40");
  CHECK(problems[0].message ==
        "host libmpi.so.40 and the image's libmpi.so.12, libmpi.so.20 have different ABIs "
        "(sonames differ): the image's programs would not use the injected library");

  // Same major: the image's file names carry a longer version.
  img.files = {"libmpi.so.40.30.1"};
  CHECK(preflight::check(injected, img.image()).empty());
  // The image has no MPI at all: nothing to disagree with.
  img.files = {};
  CHECK(preflight::check(injected, img.image()).empty());
  // The image has exactly this soname: the injected library replaces it.
  img.files = {"libmpi.so.12", "libmpi.so.40"};
  img.objects["libmpi.so.40"] = object("libmpi.so.40");
  CHECK(preflight::check(injected, img.image()).empty());
}

TEST_CASE("preflight: word size and machine must match the image's libc") {
  FakeImage img = debian12();
  elf::Info arm = object("libcuda.so.1", {"libmissing.so.1"});
  arm.machine = EM_AARCH64;
  elf::Info narrow = object("libold.so.1");
  narrow.elf_class = ELFCLASS32;
  narrow.machine = EM_386;
  const std::vector<preflight::Library> injected = {{"libcuda.so.1", arm}, {"libold.so.1", narrow}};
  const auto problems = preflight::check(injected, img.image());
  REQUIRE(problems.size() == 2);
  // Nothing else about a library that cannot load at all.
  CHECK(problems[0].message ==
        "libcuda.so.1 is a 64-bit AArch64 object, but the image's libc.so.6 is 64-bit x86-64: it "
        "cannot be loaded there");
  CHECK(problems[1].message ==
        "libold.so.1 is a 32-bit i386 object, but the image's libc.so.6 is 64-bit x86-64: it "
        "cannot be loaded there");
  // Without a libc in the image there is nothing to compare with.
  img.objects.erase("libc.so.6");
  const auto rest = preflight::check({{"libold.so.1", narrow}}, img.image());
  CHECK(rest.empty());
}

TEST_CASE("preflight: problems come in a fixed order") {
  FakeImage img = debian12();
  img.files = {"libmpi.so.12"};
  const std::vector<preflight::Library> injected = {
      {"b", object("libmpi.so.40", {"libz1.so.1", "liba1.so.1"}, glibc({"GLIBC_2.99"}))},
      {"a", object("liba.so.1", {"libz2.so.1"})},
  };
  const auto problems = preflight::check(injected, img.image());
  REQUIRE(problems.size() == 5);
  CHECK_THAT(problems[0].message, Contains("libz1.so.1"));
  CHECK_THAT(problems[1].message, Contains("liba1.so.1"));
  CHECK_THAT(problems[2].message, Contains("GLIBC_2.99"));
  CHECK_THAT(problems[3].message, Contains("different ABIs"));
  CHECK(problems[4].library == "a");
  const auto again = preflight::check(injected, img.image());
  REQUIRE(again.size() == problems.size());
  for (size_t i = 0; i < again.size(); ++i) CHECK(again[i].message == problems[i].message);
}

TEST_CASE("preflight: an image that offers nothing") {
  const std::vector<preflight::Library> injected = {
      {"libcuda.so.1", object("libcuda.so.1", {"libc.so.6"}, glibc({"GLIBC_2.2.5"}))},
  };
  const auto problems = preflight::check(injected, preflight::Image{});
  REQUIRE(problems.size() == 1);
  CHECK_THAT(problems[0].message, Contains("needs libc.so.6, which neither"));
}
