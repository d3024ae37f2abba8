#include "chute/log.hpp"

#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace chute::log {

namespace {

std::string g_program = "chute";
int g_level = kInfo;
struct timespec g_start {};
pid_t g_pid = 0;

pid_t shown_pid() { return g_pid > 0 ? g_pid : ::getpid(); }

// One write(2) per line, so that lines from many ranks of a job do not
// interleave mid-line on a shared stderr.
void write_line(std::string_view line) {
  std::fflush(stderr);
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace

void set_program(std::string_view name) {
  ::clock_gettime(CLOCK_MONOTONIC, &g_start);
  g_program = name;
}
std::string_view program() { return g_program; }
void set_level(int level) { g_level = level; }
void set_pid(pid_t pid) { g_pid = pid; }
int level() { return g_level; }

void emit(std::string_view kind, std::string_view text) {
  if (kind == "trace") {
    // Trace lines carry the time since set_program() (the start of main),
    // to show where start-up time goes.
    struct timespec now;
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    long us = (now.tv_sec - g_start.tv_sec) * 1000000L + (now.tv_nsec - g_start.tv_nsec) / 1000L;
    write_line(fmt::format("{}[{}]: trace: +{}us {}\n", g_program, shown_pid(), us, text));
    return;
  }
  write_line(kind.empty() ? fmt::format("{}[{}]: {}\n", g_program, shown_pid(), text)
                          : fmt::format("{}[{}]: {}: {}\n", g_program, shown_pid(), kind, text));
}

}  // namespace chute::log
