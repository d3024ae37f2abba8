// Messages to stderr in Charliecloud's format: "PROG[PID]: LEVEL: text".
// Untrusted strings go through fmt's "{:?}" so they are quoted and escaped.
#pragma once

#include <fmt/core.h>
#include <sys/types.h>

#include <string_view>

namespace chute::log {

// -3 .. 3: each -q lowers it, each -v raises it.
enum Level : int {
  kQuiet3 = -3,   // -qqq: also the job's stderr goes to /dev/null
  kQuiet2 = -2,   // -qq: no warnings
  kQuiet1 = -1,   // -q: the job's stdout goes to /dev/null
  kInfo = 0,
  kVerbose = 1,
  kDebug = 2,
  kTrace = 3,
};

// Also starts the clock that trace lines report.
void set_program(std::string_view name);
std::string_view program();
void set_level(int level);
int level();

// The process id messages name, instead of getpid()'s: in a PID namespace
// of its own (ch-run --pid) the container's processes are 1 and 2 to
// themselves, and the user and the batch system know the launcher's.
void set_pid(pid_t pid);

// Write one already formatted line at the given kind ("error", "warning", or
// "" for plain informational messages).
void emit(std::string_view kind, std::string_view text);

template <typename... A>
void warn(fmt::format_string<A...> f, A&&... a) {
  if (level() >= kQuiet1) emit("warning", fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void info(fmt::format_string<A...> f, A&&... a) {
  if (level() >= kInfo) emit("", fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void verbose(fmt::format_string<A...> f, A&&... a) {
  if (level() >= kVerbose) emit("", fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void debug(fmt::format_string<A...> f, A&&... a) {
  if (level() >= kDebug) emit("debug", fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void trace(fmt::format_string<A...> f, A&&... a) {
  if (level() >= kTrace) emit("trace", fmt::format(f, std::forward<A>(a)...));
}

}  // namespace chute::log
