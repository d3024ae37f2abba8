// Will the libraries injected from the host (--gpu, --device, --mpi) load
// inside the image? A pure check over what elf::read found in them and what
// the image's dynamic linker would find: missing objects, missing symbol
// versions (a host library built against a newer glibc than the image's),
// an MPI whose soname the image's programs do not ask for, and a word size
// or machine that differs from the image's.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chute/elf.hpp"

namespace chute::preflight {

struct Library {
  std::string name;   // where it appears in the container, for messages
  elf::Info info;
};

// What the image's dynamic linker would find, by file name (soname). Either
// function may be empty: the image then has nothing to offer of that kind.
struct Image {
  std::function<std::optional<elf::Info>(const std::string& soname)> find;
  // The file names in the library path that begin with PREFIX:
  // "libmpi.so." -> {"libmpi.so.12", "libmpi.so.12.1.0"}.
  std::function<std::vector<std::string>(const std::string& prefix)> names_with_prefix;
};

struct Problem {
  std::string library;   // the injected library's name
  std::string message;   // a whole sentence naming it and what it lacks
};

// Problems in the order of INJECTED, then of each library's needs; empty
// when all is well. image.find is called at most once per name.
std::vector<Problem> check(const std::vector<Library>& injected, const Image& image);

// Whether NAME (a file name) is a dynamic linker's: "ld-linux-x86-64.so.2",
// "ld64.so.2", "ld-musl-x86_64.so.1".
bool is_dynamic_linker(std::string_view name);

// Compares the numeric parts of two version names of one family
// ("GLIBC_2.9" < "GLIBC_2.36"): negative, zero or positive; nullopt when
// they are not of one family or not both numeric.
std::optional<int> compare_versions(std::string_view a, std::string_view b);

}  // namespace chute::preflight
