// Unit tests for the ELF reader: real objects of this host, the fixture
// libraries built with the tests (ELF_FIXTURE_VERS, ELF_FIXTURE_USER), and
// broken copies of them, which must all give Error, never a crash or a hang.
#include <catch2/catch.hpp>

#include <dlfcn.h>
#include <elf.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "chute/elf.hpp"
#include "chute/error.hpp"
#include "chute/preflight.hpp"
#include "chute/sys.hpp"
#include "temp_dir.hpp"

using namespace chute;
using Catch::Contains;

namespace {

std::string fixture(const char* var) {
  const char* path = std::getenv(var);
  if (path == nullptr) FAIL(var << " is not set: run this test with meson test");
  return path;
}

// The file this process's libc was loaded from.
std::string libc_path() {
  Dl_info dl;
  REQUIRE(::dladdr(reinterpret_cast<void*>(&::getpid), &dl) != 0);
  REQUIRE(dl.dli_fname != nullptr);
  return dl.dli_fname;
}

int this_machine() {
#if defined(__x86_64__)
  return EM_X86_64;
#elif defined(__aarch64__)
  return EM_AARCH64;
#elif defined(__powerpc64__)
  return EM_PPC64;
#else
  return 0;
#endif
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

const elf::VersionNeed* need_of(const elf::Info& info, const std::string& file) {
  for (const auto& n : info.version_needs)
    if (n.file == file) return &n;
  return nullptr;
}

// Where the first section of type TYPE lies in BYTES (found with libelf
// itself), so that tests can break exactly that part.
struct Section {
  size_t offset = 0;
  size_t size = 0;
  size_t link = 0;
};
Section find_section(const std::string& bytes, unsigned type) {
  REQUIRE(elf_version(EV_CURRENT) != EV_NONE);
  std::string copy = bytes;
  Elf* e = elf_memory(copy.data(), copy.size());
  REQUIRE(e != nullptr);
  Section found;
  bool ok = false;
  for (Elf_Scn* scn = elf_nextscn(e, nullptr); scn != nullptr && !ok; scn = elf_nextscn(e, scn)) {
    GElf_Shdr sh;
    if (gelf_getshdr(scn, &sh) != nullptr && sh.sh_type == type) {
      found = {sh.sh_offset, sh.sh_size, sh.sh_link};
      ok = true;
    }
  }
  elf_end(e);
  REQUIRE(ok);
  return found;
}

template <typename T>
void put(std::string& bytes, size_t offset, T value) {
  REQUIRE(offset + sizeof value <= bytes.size());
  std::memcpy(bytes.data() + offset, &value, sizeof value);
}

template <typename T>
T get(const std::string& bytes, size_t offset) {
  T value;
  REQUIRE(offset + sizeof value <= bytes.size());
  std::memcpy(&value, bytes.data() + offset, sizeof value);
  return value;
}

// BYTES (a 64-bit object) without its section header table, as sstrip
// leaves objects: the reader must fall back to the dynamic segment.
std::string without_sections(std::string bytes) {
  REQUIRE(bytes[EI_CLASS] == ELFCLASS64);
  put<uint64_t>(bytes, offsetof(Elf64_Ehdr, e_shoff), 0);
  put<uint16_t>(bytes, offsetof(Elf64_Ehdr, e_shnum), 0);
  put<uint16_t>(bytes, offsetof(Elf64_Ehdr, e_shstrndx), 0);
  return bytes;
}

// read_memory on BYTES: Info or Error are both fine, anything else fails.
void survives(const std::string& bytes) {
  try {
    (void)elf::read_memory(bytes, "fuzzed");
  } catch (const Error&) {
  }
}

}  // namespace

TEST_CASE("elf: the host's libc") {
  const std::string path = libc_path();
  const elf::Info info = elf::read_file(path);
  CHECK(info.soname == "libc.so.6");
  CHECK(info.elf_class == (sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32));
  if (this_machine() != 0) CHECK(info.machine == this_machine());
  CHECK(contains(info.version_defs, "GLIBC_2.34"));
  CHECK(contains(info.version_defs, "GLIBC_2.17"));
  CHECK(contains(info.version_defs, "GLIBC_PRIVATE"));
  // The base entry names the object; it is not a version.
  CHECK_FALSE(contains(info.version_defs, "libc.so.6"));
  // libc needs the dynamic linker, and its private versions.
  REQUIRE(info.needed.size() == 1);
  CHECK(preflight::is_dynamic_linker(info.needed[0]));
  const elf::VersionNeed* ld = need_of(info, info.needed[0]);
  REQUIRE(ld != nullptr);
  CHECK(contains(ld->versions, "GLIBC_PRIVATE"));
}

TEST_CASE("elf: a dynamic program") {
  const elf::Info info = elf::read_file("/bin/ls");
  CHECK(info.soname.empty());
  CHECK(contains(info.needed, "libc.so.6"));
  const elf::VersionNeed* libc = need_of(info, "libc.so.6");
  REQUIRE(libc != nullptr);
  REQUIRE_FALSE(libc->versions.empty());
  for (const std::string& v : libc->versions) CHECK(v.starts_with("GLIBC_"));
  CHECK(info.version_defs.empty());
}

TEST_CASE("elf: fixture libraries with symbol versions") {
  const elf::Info vers = elf::read_file(fixture("ELF_FIXTURE_VERS"));
  CHECK(vers.soname == "libelfvers.so.1");
  CHECK(vers.version_defs == std::vector<std::string>{"VERS_1.0", "VERS_2.0"});

  const elf::Info user = elf::read_file(fixture("ELF_FIXTURE_USER"));
  CHECK(user.soname == "libelfuser.so.2");
  CHECK(contains(user.needed, "libelfvers.so.1"));
  const elf::VersionNeed* n = need_of(user, "libelfvers.so.1");
  REQUIRE(n != nullptr);
  CHECK(contains(n->versions, "VERS_2.0"));
  CHECK(contains(n->versions, "VERS_1.0"));
  CHECK(user.version_defs.empty());
}

TEST_CASE("elf: read_memory and read agree") {
  for (const std::string& path :
       {libc_path(), std::string("/bin/ls"), fixture("ELF_FIXTURE_USER"), fixture("ELF_FIXTURE_VERS")}) {
    INFO(path);
    const elf::Info a = elf::read_file(path);
    const elf::Info b = elf::read_memory(sys::read_file(path), path);
    CHECK(a.elf_class == b.elf_class);
    CHECK(a.machine == b.machine);
    CHECK(a.soname == b.soname);
    CHECK(a.needed == b.needed);
    CHECK(a.version_defs == b.version_defs);
    REQUIRE(a.version_needs.size() == b.version_needs.size());
    for (size_t i = 0; i < a.version_needs.size(); ++i) {
      CHECK(a.version_needs[i].file == b.version_needs[i].file);
      CHECK(a.version_needs[i].versions == b.version_needs[i].versions);
    }
  }
}

TEST_CASE("elf: objects without section headers are read from the dynamic segment") {
  if (sizeof(void*) != 8) return;
  for (const std::string& path : {libc_path(), fixture("ELF_FIXTURE_USER"), fixture("ELF_FIXTURE_VERS")}) {
    INFO(path);
    const elf::Info a = elf::read_file(path);
    const elf::Info b = elf::read_memory(without_sections(sys::read_file(path)), path);
    CHECK(a.soname == b.soname);
    CHECK(a.needed == b.needed);
    CHECK(a.version_defs == b.version_defs);
    REQUIRE(a.version_needs.size() == b.version_needs.size());
    for (size_t i = 0; i < a.version_needs.size(); ++i) {
      CHECK(a.version_needs[i].file == b.version_needs[i].file);
      CHECK(a.version_needs[i].versions == b.version_needs[i].versions);
    }
  }
}

TEST_CASE("elf: a static object has no needs") {
  // An ELF header with no sections and no segments: nothing dynamic.
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_ehsize = sizeof eh;
  const elf::Info info =
      elf::read_memory(std::string(reinterpret_cast<const char*>(&eh), sizeof eh), "bare");
  CHECK(info.elf_class == ELFCLASS64);
  CHECK(info.machine == EM_X86_64);
  CHECK(info.soname.empty());
  CHECK(info.needed.empty());
  CHECK(info.version_needs.empty());
  CHECK(info.version_defs.empty());
}

TEST_CASE("elf: what is not ELF says so, naming it") {
  CHECK_THROWS_WITH(elf::read_memory("", "empty"), "empty: not an ELF file");
  CHECK_THROWS_WITH(elf::read_memory("\x7f" "EL", "short"), "short: not an ELF file");
  CHECK_THROWS_WITH(elf::read_memory("#!/bin/sh\necho hi\n", "script"), "script: not an ELF file");
  test_support::TempDir tmp("elf");
  const std::string text = tmp.write("libtext.so.1", "INPUT(-lfoo)\n");
  CHECK_THROWS_WITH(elf::read_file(text), text + ": not an ELF file");
  const std::string empty = tmp.write("libempty.so.1", "");
  CHECK_THROWS_WITH(elf::read_file(empty), empty + ": not an ELF file");
  CHECK_THROWS_WITH(elf::read_file(tmp.path()), Contains("not an ELF file"));
  CHECK_THROWS_AS(elf::read_file(tmp / "absent.so"), SysError);
  // A FIFO must neither hang the open nor the read.
  const std::string fifo = tmp / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH(elf::read_file(fifo), Contains("not an ELF file"));
}

TEST_CASE("elf: broken identification is corrupt ELF") {
  std::string bytes = sys::read_file(fixture("ELF_FIXTURE_VERS"));
  std::string bad = bytes;
  bad[EI_CLASS] = 7;
  CHECK_THROWS_WITH(elf::read_memory(bad, "lib"), Contains("lib: corrupt ELF"));
  bad = bytes;
  bad[EI_VERSION] = 9;
  CHECK_THROWS_WITH(elf::read_memory(bad, "lib"), Contains("lib: corrupt ELF"));
}

TEST_CASE("elf: truncated copies throw Error") {
  const std::string libc = sys::read_file(libc_path());
  const std::string user = sys::read_file(fixture("ELF_FIXTURE_USER"));
  for (const std::string* whole : {&libc, &user}) {
    std::vector<size_t> lengths;
    for (size_t n = 0; n < 4096 && n < whole->size(); n += 7) lengths.push_back(n);
    for (size_t n = 4096; n < whole->size(); n = n * 5 / 4) lengths.push_back(n);
    for (size_t back = 1; back < 256 && back < whole->size(); back += 13)
      lengths.push_back(whole->size() - back);
    for (size_t n : lengths) {
      INFO("length " << n << " of " << whole->size());
      CHECK_THROWS_AS(elf::read_memory(std::string_view(*whole).substr(0, n), "cut"), Error);
    }
  }
}

TEST_CASE("elf: random byte flips never crash") {
  std::mt19937 rng(20240611);
  const std::string user = sys::read_file(fixture("ELF_FIXTURE_USER"));
  const std::string vers = sys::read_file(fixture("ELF_FIXTURE_VERS"));
  const std::string bare_user = without_sections(user);
  for (const std::string* base : {&user, &vers, &bare_user}) {
    for (int round = 0; round < 3000; ++round) {
      std::string bytes = *base;
      const int flips = 1 + static_cast<int>(rng() % 8);
      for (int i = 0; i < flips; ++i) {
        // Most flips in the headers and tables at the front, where they matter.
        const size_t span = (rng() % 4 == 0) ? bytes.size() : std::min<size_t>(bytes.size(), 1024);
        bytes[rng() % span] = static_cast<char>(rng());
      }
      survives(bytes);
    }
  }
  // The other byte order and word size make libelf convert every table.
  for (const std::string* base : {&user, &vers, &bare_user}) {
    std::string bytes = *base;
    bytes[EI_DATA] = ELFDATA2MSB;
    survives(bytes);
    bytes = *base;
    bytes[EI_CLASS] = ELFCLASS32;
    survives(bytes);
  }
}

TEST_CASE("elf: version needs with bad links are corrupt") {
  const std::string user = sys::read_file(fixture("ELF_FIXTURE_USER"));
  const Section r = find_section(user, SHT_GNU_verneed);
  // Find the need on libelfvers.so.1 (the linker may list libc's first).
  size_t vn = r.offset;
  const elf::Info good = elf::read_memory(user, "user");
  const size_t index = static_cast<size_t>(need_of(good, "libelfvers.so.1") - good.version_needs.data());
  for (size_t i = 0; i < index; ++i) vn += get<uint32_t>(user, vn + offsetof(Elf64_Verneed, vn_next));
  const size_t vna = vn + get<uint32_t>(user, vn + offsetof(Elf64_Verneed, vn_aux));

  std::string bad = user;
  put<uint32_t>(bad, r.offset + offsetof(Elf64_Verneed, vn_next), 0xfffffff0);
  CHECK_THROWS_WITH(elf::read_memory(bad, "user"), Contains("user: corrupt ELF: version needs"));
  if (good.version_needs.size() == 1) {
    // The last entry pointing past the end is as bad as a wrong first one.
    bad = user;
    put<uint32_t>(bad, vn + offsetof(Elf64_Verneed, vn_next), 16);
    CHECK_THROWS_AS(elf::read_memory(bad, "user"), Error);
  }
  bad = user;
  put<uint32_t>(bad, vn + offsetof(Elf64_Verneed, vn_file), 0x7fffffff);
  CHECK_THROWS_WITH(elf::read_memory(bad, "user"), Contains("outside the string table"));
  bad = user;
  put<uint32_t>(bad, vn + offsetof(Elf64_Verneed, vn_aux), 3);
  CHECK_THROWS_AS(elf::read_memory(bad, "user"), Error);
  bad = user;
  put<uint32_t>(bad, vna + offsetof(Elf64_Vernaux, vna_next), 0x40000000);
  CHECK_THROWS_WITH(elf::read_memory(bad, "user"), Contains("corrupt ELF"));
  bad = user;
  put<uint32_t>(bad, vna + offsetof(Elf64_Vernaux, vna_name), 0xffffffff);
  CHECK_THROWS_WITH(elf::read_memory(bad, "user"), Contains("outside the string table"));
  // A count that promises more than the chain holds: the chain wins, as
  // in the dynamic linker.
  bad = user;
  put<uint16_t>(bad, vn + offsetof(Elf64_Verneed, vn_cnt), 0xffff);
  CHECK(need_of(elf::read_memory(bad, "user"), "libelfvers.so.1")->versions ==
        need_of(good, "libelfvers.so.1")->versions);
  // A weak need is not a need: the dynamic linker only warns.
  bad = user;
  put<uint16_t>(bad, vna + offsetof(Elf64_Vernaux, vna_flags), VER_FLG_WEAK);
  const auto weak = need_of(elf::read_memory(bad, "user"), "libelfvers.so.1")->versions;
  CHECK(weak.size() + 1 == need_of(good, "libelfvers.so.1")->versions.size());
}

TEST_CASE("elf: version definitions with bad links are corrupt") {
  const std::string vers = sys::read_file(fixture("ELF_FIXTURE_VERS"));
  const Section d = find_section(vers, SHT_GNU_verdef);
  std::string bad = vers;
  put<uint32_t>(bad, d.offset + offsetof(Elf64_Verdef, vd_next), 0x7ffffff0);
  CHECK_THROWS_WITH(elf::read_memory(bad, "vers"), Contains("vers: corrupt ELF: version definitions"));
  bad = vers;
  put<uint32_t>(bad, d.offset + offsetof(Elf64_Verdef, vd_aux), 0xfffffff8);
  CHECK_THROWS_AS(elf::read_memory(bad, "vers"), Error);
  bad = vers;
  put<uint16_t>(bad, d.offset + offsetof(Elf64_Verdef, vd_cnt), 0);
  CHECK_THROWS_WITH(elf::read_memory(bad, "vers"), Contains("has no name"));
  // The base entry, unflagged, reads as one more version: the file's name.
  bad = vers;
  put<uint16_t>(bad, d.offset + offsetof(Elf64_Verdef, vd_flags), 0);
  CHECK(contains(elf::read_memory(bad, "vers").version_defs, "libelfvers.so.1"));
}

TEST_CASE("elf: a dynamic section whose string table is not one is corrupt") {
  const std::string user = sys::read_file(fixture("ELF_FIXTURE_USER"));
  const std::string bytes = user;
  // Point the dynamic section's sh_link at section 0 (SHT_NULL).
  std::string copy = bytes;
  REQUIRE(elf_version(EV_CURRENT) != EV_NONE);
  Elf* e = elf_memory(copy.data(), copy.size());
  REQUIRE(e != nullptr);
  GElf_Ehdr eh;
  REQUIRE(gelf_getehdr(e, &eh) != nullptr);
  size_t index = 0;
  for (Elf_Scn* scn = elf_nextscn(e, nullptr); scn != nullptr; scn = elf_nextscn(e, scn)) {
    GElf_Shdr sh;
    if (gelf_getshdr(scn, &sh) != nullptr && sh.sh_type == SHT_DYNAMIC) index = elf_ndxscn(scn);
  }
  elf_end(e);
  REQUIRE(index != 0);
  std::string bad = bytes;
  put<uint32_t>(bad, eh.e_shoff + index * eh.e_shentsize + offsetof(Elf64_Shdr, sh_link), 0);
  CHECK_THROWS_WITH(elf::read_memory(bad, "user"), Contains("is not a string table"));
  bad = bytes;
  put<uint32_t>(bad, eh.e_shoff + index * eh.e_shentsize + offsetof(Elf64_Shdr, sh_link), 60000);
  CHECK_THROWS_WITH(elf::read_memory(bad, "user"), Contains("no string table section"));
}
