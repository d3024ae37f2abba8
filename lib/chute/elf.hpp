// What the dynamic linker needs of a shared object, read with libelf: its
// soname, the objects it needs, and the symbol versions it needs and
// defines. For --gpu/--device/--mpi's preflight check (see preflight.hpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chute::elf {

struct VersionNeed {
  std::string file;                    // "libc.so.6"
  std::vector<std::string> versions;   // "GLIBC_2.34", ...
};

struct Info {
  int elf_class = 0;                   // ELFCLASS32 / ELFCLASS64
  int machine = 0;                     // EM_X86_64, ...
  std::string soname;                  // empty when none
  std::vector<std::string> needed;     // DT_NEEDED, in order
  std::vector<VersionNeed> version_needs;   // .gnu.version_r
  std::vector<std::string> version_defs;    // .gnu.version_d (not the base entry)
};

// Read the ELF object open on FD; NAME is used in errors. Throws Error
// ("NAME: not an ELF file", "NAME: corrupt ELF: ...") on anything else.
Info read(int fd, std::string_view name);
Info read_file(const std::string& path);
// From memory (for tests and fuzzing).
Info read_memory(std::string_view bytes, std::string_view name);

}  // namespace chute::elf
