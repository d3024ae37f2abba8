// seccomp filters for the job: root emulation (--seccomp) and a deny list
// (--seccomp-deny). The filter is compiled with libseccomp while ch-run may
// still allocate and throw, and loaded by the job's last step before
// execve(2), which may do neither (see job::exec).
#pragma once

#include <linux/filter.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chute::seccomp {

// One system call the deny list refuses, and the errno it answers.
struct Rule {
  std::string name;
  int err = 0;
  bool operator==(const Rule&) const = default;
};

// What the job's filter does; the default does nothing (no filter at all).
struct Policy {
  bool emulate_root = false;   // --seccomp
  std::vector<Rule> deny;      // --seccomp-deny, in order; a name's last rule counts
  bool empty() const { return !emulate_root && deny.empty(); }
};

// The errno a deny rule answers unless it names another.
inline constexpr int kDenyErrno = 1;  // EPERM

// The calls root emulation answers with success without making them. mknod
// and mknodat are faked too, but only for character and block devices.
const std::vector<std::string_view>& faked_calls();

// The built-in deny list (--seccomp-deny without a file, or "@default" in a
// profile): calls an unprivileged job has no use for that either act on the
// whole machine or open much of the kernel to it.
const std::vector<std::string_view>& default_deny();

// Rules for the built-in deny list, each answering kDenyErrno.
std::vector<Rule> default_rules();

// True if NAME is a system call libseccomp knows on some architecture.
bool known_call(std::string_view name);

// A deny-list profile: one entry a line, "NAME [ERRNO]" (ERRNO a name such
// as ENOSYS, or a number from 1 to 4095; EPERM when absent), or "@default"
// for the built-in list; "#" starts a comment, blank lines are ignored.
// WHERE names the text in errors ("FILE:LINE: ..."). Throws Error.
std::vector<Rule> parse_profile(std::string_view text, std::string_view where);

// The errno named by TEXT ("EPERM", "enosys", "38"), if it is one from 1 to
// 4095.
std::optional<int> parse_errno(std::string_view text);

// A filter ready to load: classic BPF for the native architecture and its
// compatibility ones (on x86_64, also i386 and x32).
struct Program {
  std::vector<sock_filter> code;   // empty: no filter
  // After loading, kexec_load(0, 0, 0, 0) must fail with this errno (0:
  // return 0, as root emulation fakes it); -1: no check.
  int kexec_errno = -1;
};

// Compile POLICY. A deny rule wins over root emulation for the same call.
// Throws Error.
Program compile(const Policy& policy);

// Load PROGRAM into the calling thread (no_new_privs must be set). Returns 0
// or the errno. Allocates nothing, throws nothing.
int load(const Program& program) noexcept;

// The check made after load(): 0 if kexec_load answered as PROGRAM expects,
// else what it answered instead, as an errno (-1 for a success).
int check(const Program& program) noexcept;

// Whether filters work on this machine, as ch-run --feature=seccomp asks: a
// child process loads root emulation plus the built-in deny list and checks
// that setuid, setgroups, fchown and mknod of devices are faked without
// effect, that mknod of a FIFO is not, and that keyctl is refused. Nothing
// in it can change the host even if the filter does not work. Returns what
// failed, or nothing when all passed.
std::optional<std::string> self_test();

}  // namespace chute::seccomp
