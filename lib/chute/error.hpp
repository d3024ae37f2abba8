// Errors: exceptions that carry where they were thrown and the exit code the
// program should end with. Only main() in bin/ prints them.
#pragma once

#include <exception>
#include <version>
#if defined(__cpp_lib_source_location)
#include <source_location>
#endif
#include <stdexcept>
#include <string>
#include <system_error>

namespace chute {

#if defined(__cpp_lib_source_location)
using SourceLocation = std::source_location;
#else
// clang before 15 has no std::source_location with libstdc++ (the fuzz
// build uses clang): file and line are all chute reports anyway.
class SourceLocation {
public:
  static constexpr SourceLocation current(const char* file = __builtin_FILE(),
                                          unsigned line = __builtin_LINE()) noexcept {
    SourceLocation l;
    l.file_ = file;
    l.line_ = line;
    return l;
  }
  constexpr const char* file_name() const noexcept { return file_; }
  constexpr unsigned line() const noexcept { return line_; }

private:
  const char* file_ = "";
  unsigned line_ = 0;
};
#endif

// Exit codes shared with Charliecloud 0.3x (see doc/ch-run.1).
inline constexpr int kExitMisc = 31;   // any launcher error
inline constexpr int kExitExec = 49;   // the job's command could not be executed

// What every chute error carries besides its message.
class Located {
public:
  Located(SourceLocation loc, int exit_code) : loc_(loc), exit_code_(exit_code) {}
  const SourceLocation& where() const noexcept { return loc_; }
  int exit_code() const noexcept { return exit_code_; }

private:
  SourceLocation loc_;
  int exit_code_;
};

// A failure that is not a failed system call: bad option, bad input.
class Error : public std::runtime_error, public Located {
public:
  explicit Error(const std::string& what, int exit_code = kExitMisc,
                 SourceLocation loc = SourceLocation::current())
      : std::runtime_error(what), Located(loc, exit_code) {}
};

// A failed system call. errno comes first so that callers read it on the line
// after the call, before any formatting can change it.
class SysError : public std::system_error, public Located {
public:
  SysError(int err, const std::string& what, int exit_code = kExitMisc,
           SourceLocation loc = SourceLocation::current())
      : std::system_error(err, std::generic_category(), what),
        Located(loc, exit_code), message_(what) {}
  int err() const noexcept { return code().value(); }
  const std::string& message() const noexcept { return message_; }

private:
  std::string message_;
};

// "WHAT: WHY (file:line errno)" for a SysError, "WHAT (file:line)" for an
// Error, the plain text for anything else.
std::string describe(const std::exception& e);

// The exit code an exception asks for (kExitMisc unless it says otherwise).
int exit_code_of(const std::exception& e) noexcept;

}  // namespace chute
