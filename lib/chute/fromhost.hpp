// ch-fromhost: copy files of the host into a directory image (libraries into
// the image's library directory, programs into /usr/bin), then refresh the
// image's linker cache. Compatible with Charliecloud 0.3x; see
// doc/ch-fromhost.1.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chute::fromhost {

// Where the files to inject come from, in command-line order.
struct Source {
  enum class Kind { kCmd, kFile, kPath, kNvidia };
  Kind kind = Kind::kPath;
  std::string value;  // the command, list file or path; empty for kNvidia
};

struct Options {
  std::string image;
  std::vector<Source> sources;
  std::optional<std::string> dest;  // -d: one directory inside the image for all
  bool print_lib = false;
  bool no_ldconfig = false;
  int verbosity = 0;
  // A Charliecloud option chute does not implement (--cray-cxi ...):
  // accepted by the parser so that the error says why, refused by run().
  std::string unsupported;
};

struct Parsed {
  enum class Action { kRun, kHelp, kVersion };
  Action action = Action::kRun;
  Options opts;
};

// Parse ARGV (argv[0] is the program). Throws Error (exit 31) for bad usage:
// an unknown option, no image, no file source without --print-lib.
Parsed parse_cli(int argc, char** argv);
std::string usage();
std::string help();

// ---- pure parts

// The paths a list holds (a --file, or a command's output): one per line,
// surrounding blanks trimmed, blank lines and lines starting with '#'
// skipped. A NUL byte in a path is an error naming SOURCE and the line.
std::vector<std::string> list_paths(std::string_view text, std::string_view source);

// A shared library by its name: the last component ends with ".so" or
// contains ".so.".
bool is_shared_library(std::string_view path);

// Where a file goes when -d is not given.
enum class Place {
  kLibrary,  // the image's library directory: a shared library, or under a lib directory
  kBin,      // /usr/bin: under a bin or sbin directory
  kUnknown,  // ch-fromhost refuses to guess
};
// PATH is absolute. A shared library by name is a library wherever it lies,
// even under a bin directory (Charliecloud checks bin first and would put
// it in /usr/bin); then a "/bin/" or "/sbin/" component means a program;
// then "/lib" anywhere (lib, lib64, libexec ...) means the library
// directory, as in Charliecloud.
Place place_of(std::string_view path);

// The image's library directory from what "ldconfig -Nv" prints on its
// stdout: the first directory listed that holds libc.so.6 (the one the
// image's own C library lives in), else the first directory listed.
// nullopt when no directory is listed.
std::optional<std::string> library_dir(std::string_view ldconfig_output);

// One file to copy.
struct Copy {
  std::string source;    // absolute host path, as listed (symlinks not resolved)
  std::string dest_dir;  // absolute path inside the image; "" = the library directory
  std::string name;      // the name it gets there: the source's last component
  bool library = false;  // a shared library: ldconfig is run afterwards
};

// The copies for SOURCES (absolute host paths, duplicates already removed):
// every one into DEST when given, else each where place_of() says. Throws
// Error naming a file with no known destination, or one whose name is empty.
std::vector<Copy> plan(const std::vector<std::string>& sources,
                       const std::optional<std::string>& dest);

// Fill in the library directory LIB_DIR where plan() left it open, then
// refuse two different sources that would land on the same name. Throws
// Error naming both.
void settle(std::vector<Copy>& copies, const std::string& lib_dir);

// ---- effects

// Inject as OPTS asks: collect the files (running --cmd commands and
// nvidia-container-cli on the host), check them all, find the library
// directory with the image's ldconfig through ch-run, copy, run ldconfig.
// With print_lib, print the library directory on stdout and return.
// Throws Error or SysError (exit 31) on any failure.
void run(const Options& opts);

}  // namespace chute::fromhost
