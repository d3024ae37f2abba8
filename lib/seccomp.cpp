#include "chute/seccomp.hpp"

#include <fcntl.h>
#include <linux/keyctl.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <fmt/core.h>

#include "chute/error.hpp"
#include "chute/fd.hpp"

namespace chute::seccomp {

const std::vector<std::string_view>& faked_calls() {
  // Charliecloud's list, so that images built with its --seccomp behave the
  // same here. The *32 names are the 32-bit ABIs' calls with 32-bit ids;
  // kexec_load is the self-test's marker.
  static const std::vector<std::string_view> calls = {
      "capset",      "chown",       "chown32",     "fchown",     "fchown32",
      "fchownat",    "lchown",      "lchown32",    "kexec_load", "setfsgid",
      "setfsgid32",  "setfsuid",    "setfsuid32",  "setgid",     "setgid32",
      "setgroups",   "setgroups32", "setregid",    "setregid32", "setresgid",
      "setresgid32", "setresuid",   "setresuid32", "setreuid",   "setreuid32",
      "setuid",      "setuid32",
  };
  return calls;
}

const std::vector<std::string_view>& default_deny() {
  static const std::vector<std::string_view> calls = {
      // The whole machine: another kernel, modules, swap, power, process
      // accounting, I/O ports. They need privileges in the host's namespace
      // anyway; refusing them here makes the answer the same everywhere.
      "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
      "swapon", "swapoff", "reboot", "acct", "iopl", "ioperm",
      // Files by handle, around the container's root.
      "open_by_handle_at",
      // Much of the kernel opened to unprivileged callers, with a long
      // record of exploits: eBPF, performance events, userfaultfd, keyrings,
      // and the old i386 calls.
      "bpf", "perf_event_open", "userfaultfd", "add_key", "request_key", "keyctl",
      "vm86", "vm86old", "uselib",
  };
  return calls;
}

std::vector<Rule> default_rules() {
  std::vector<Rule> out;
  for (auto name : default_deny()) out.push_back({std::string(name), kDenyErrno});
  return out;
}

bool known_call(std::string_view name) {
  if (name.empty() || name.size() > 64 ||
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string_view::npos)
    return false;
  return ::seccomp_syscall_resolve_name(std::string(name).c_str()) != __NR_SCMP_ERROR;
}

std::optional<int> parse_errno(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (text[0] >= '0' && text[0] <= '9') {
    int n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end != text.data() + text.size() || n < 1 || n > 4095)
      return std::nullopt;
    return n;
  }
  std::string upper(text);
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (int n = 1; n <= 4095; ++n)
    if (const char* name = ::strerrorname_np(n); name != nullptr && upper == name) return n;
  return std::nullopt;
}

namespace {

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  constexpr std::string_view kBlanks = " \t\r\v\f";
  size_t i = 0;
  while ((i = line.find_first_not_of(kBlanks, i)) != std::string_view::npos) {
    size_t j = line.find_first_of(kBlanks, i);
    if (j == std::string_view::npos) j = line.size();
    out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

std::vector<Rule> parse_profile(std::string_view text, std::string_view where) {
  std::vector<Rule> out;
  size_t lineno = 0;
  while (!text.empty()) {
    ++lineno;
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    const auto w = words(line);
    if (w.empty()) continue;
    if (w.size() > 2)
      throw Error(fmt::format("{}:{}: expected a system call and an optional errno, got {:?}",
                              where, lineno, line));
    int err = kDenyErrno;
    if (w.size() == 2) {
      auto e = parse_errno(w[1]);
      if (!e)
        throw Error(fmt::format("{}:{}: not an errno name or a number from 1 to 4095: {:?}", where,
                                lineno, w[1]));
      err = *e;
    }
    if (w[0] == "@default") {
      for (auto name : default_deny()) out.push_back({std::string(name), err});
      continue;
    }
    if (!known_call(w[0]))
      throw Error(fmt::format("{}:{}: unknown system call {:?}", where, lineno, w[0]));
    out.push_back({std::string(w[0]), err});
  }
  return out;
}

namespace {

struct CtxFree {
  void operator()(void* ctx) const { ::seccomp_release(ctx); }
};

// The architectures whose system calls a process of the native one can
// make: the filter must know them all, or a 32-bit program (int $0x80 on
// x86_64) would go around it.
std::vector<uint32_t> compat_arches(uint32_t native) {
  switch (native) {
    case SCMP_ARCH_X86_64: return {SCMP_ARCH_X86, SCMP_ARCH_X32};
    case SCMP_ARCH_AARCH64: return {SCMP_ARCH_ARM};
    case SCMP_ARCH_S390X: return {SCMP_ARCH_S390};
    case SCMP_ARCH_PPC64: return {SCMP_ARCH_PPC};
    default: return {};
  }
}

void add_rule(void* ctx, uint32_t action, std::string_view name,
              std::initializer_list<scmp_arg_cmp> args = {}) {
  const int nr = ::seccomp_syscall_resolve_name(std::string(name).c_str());
  if (nr == __NR_SCMP_ERROR)
    throw Error(fmt::format("seccomp: unknown system call {:?}", name));
  // A negative number is a call of other architectures only: libseccomp adds
  // it where it exists and skips it elsewhere.
  const int rc = ::seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(args.size()),
                                          args.size() ? args.begin() : nullptr);
  if (rc < 0)
    throw SysError(-rc, fmt::format("seccomp: can't add a rule for {}", name));
}

}  // namespace

Program compile(const Policy& policy) {
  Program out;
  if (policy.empty()) return out;
  std::unique_ptr<void, CtxFree> ctx(::seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) throw Error("seccomp: can't create a filter (seccomp_init failed)");
  for (uint32_t arch : compat_arches(::seccomp_arch_native())) {
    const int rc = ::seccomp_arch_add(ctx.get(), arch);
    if (rc < 0 && rc != -EEXIST)
      throw SysError(-rc, "seccomp: can't add a compatibility architecture to the filter");
  }
  // Every ABI a process here can use is in the filter, so this only matters
  // for one this build does not know: with a deny list, a call through it
  // kills the process rather than slipping past the list; root emulation
  // alone lets it through, as Charliecloud does.
  const uint32_t bad_arch = policy.deny.empty() ? SCMP_ACT_ALLOW : SCMP_ACT_KILL_PROCESS;
  if (int rc = ::seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, bad_arch); rc < 0)
    throw SysError(-rc, "seccomp: can't set the filter's action for other architectures");

  // The deny list: a name's last rule counts, and it wins over root
  // emulation (an explicit refusal is never turned into a fake success).
  std::vector<Rule> deny;
  for (auto it = policy.deny.rbegin(); it != policy.deny.rend(); ++it)
    if (std::none_of(deny.begin(), deny.end(), [&](const Rule& r) { return r.name == it->name; }))
      deny.push_back(*it);
  auto denied = [&deny](std::string_view name) -> const Rule* {
    for (const auto& r : deny)
      if (r.name == name) return &r;
    return nullptr;
  };
  for (auto it = deny.rbegin(); it != deny.rend(); ++it)
    add_rule(ctx.get(), SCMP_ACT_ERRNO(static_cast<uint32_t>(it->err)), it->name);

  if (policy.emulate_root) {
    for (auto name : faked_calls())
      if (!denied(name)) add_rule(ctx.get(), SCMP_ACT_ERRNO(0), name);
    // Device nodes only: a FIFO, socket or regular file is really made.
    // The mode is the second argument of mknod, the third of mknodat.
    for (unsigned type : {S_IFCHR, S_IFBLK}) {
      if (!denied("mknod"))
        add_rule(ctx.get(), SCMP_ACT_ERRNO(0), "mknod", {SCMP_A1(SCMP_CMP_MASKED_EQ, S_IFMT, type)});
      if (!denied("mknodat"))
        add_rule(ctx.get(), SCMP_ACT_ERRNO(0), "mknodat",
                 {SCMP_A2(SCMP_CMP_MASKED_EQ, S_IFMT, type)});
    }
    const Rule* k = denied("kexec_load");
    out.kexec_errno = k ? k->err : 0;
  }

  // libseccomp 2.5 exports only to a descriptor.
  Fd mem(::memfd_create("chute-seccomp", MFD_CLOEXEC));
  if (!mem) {
    int e = errno;
    throw SysError(e, "seccomp: can't create a memory file for the filter");
  }
  if (int rc = ::seccomp_export_bpf(ctx.get(), mem.get()); rc < 0)
    throw SysError(-rc, "seccomp: can't export the filter");
  const off_t size = ::lseek(mem.get(), 0, SEEK_END);
  if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0)
    throw Error(fmt::format("seccomp: libseccomp exported a filter of {} bytes", size));
  const size_t n = static_cast<size_t>(size) / sizeof(sock_filter);
  if (n > BPF_MAXINSNS)
    throw Error(fmt::format("seccomp: the filter has {} instructions, more than the kernel's "
                            "limit of {}: deny fewer system calls", n, BPF_MAXINSNS));
  out.code.resize(n);
  if (::pread(mem.get(), out.code.data(), static_cast<size_t>(size), 0) != size) {
    int e = errno;
    throw SysError(e, "seccomp: can't read the exported filter back");
  }
  return out;
}

int load(const Program& program) noexcept {
  struct sock_fprog prog = {static_cast<unsigned short>(program.code.size()),
                            const_cast<sock_filter*>(program.code.data())};
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) return errno;
  return 0;
}

int check(const Program& program) noexcept {
  if (program.kexec_errno < 0) return 0;
  // No segments: harmless even unfiltered, where it needs CAP_SYS_BOOT in
  // the host's namespace, which no job has.
  const long rc = ::syscall(SYS_kexec_load, 0UL, 0UL, 0UL, 0UL);
  const int got = rc == 0 ? 0 : errno;
  if (got == program.kexec_errno) return 0;
  return got == 0 ? -1 : got;
}

namespace {

// What the self-test's child reports: the first check that failed, and the
// errno it saw (0: the call succeeded, but it should not have, or did
// something).
struct Outcome {
  int step = 0;
  int err = 0;
};

enum SelfStep {
  kPassed = 0,
  kNoNewPrivs,
  kLoad,
  kSetuid,
  kSetuidEffect,
  kSetgroups,
  kMemfd,
  kFchown,
  kFchownEffect,
  kMknodChr,
  kMknodBlk,
  kMknodFifo,
  kKeyctl,
};

// In the child: nothing here may allocate or throw.
Outcome child_checks(const Program& p) {
  auto fail = [](int step, long rc) { return Outcome{step, rc == 0 ? 0 : errno}; };
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail(kNoNewPrivs, -1);
  if (int e = load(p)) return {kLoad, e};
  // Ids no one here has: if the filter does nothing, an ordinary user is
  // refused, and root changes only this short-lived child.
  const uid_t uid = ::getuid();
  const uid_t other = uid == 4242 ? 4243 : 4242;
  // Raw calls: glibc's setuid would signal other threads, and the probe is
  // the kernel's answer.
  long rc = ::syscall(SYS_setuid, other);
  if (rc != 0) return fail(kSetuid, rc);
  if (::getuid() != uid) return {kSetuidEffect, 0};
  rc = ::syscall(SYS_setgroups, 0, nullptr);
  if (rc != 0) return fail(kSetgroups, rc);
  const int fd = ::memfd_create("chute-seccomp-test", MFD_CLOEXEC);
  if (fd < 0) return fail(kMemfd, -1);
  rc = ::fchown(fd, other, other);
  if (rc != 0) return fail(kFchown, rc);
  struct stat st;
  if (::fstat(fd, &st) != 0 || st.st_uid != uid) return {kFchownEffect, 0};
  // The empty path is ENOENT for any real mknod: a faked one returns 0
  // without looking at it.
  rc = ::mknodat(AT_FDCWD, "", S_IFCHR | 0600, makedev(1, 3));
  if (rc != 0) return fail(kMknodChr, rc);
  rc = ::mknodat(AT_FDCWD, "", S_IFBLK | 0600, makedev(7, 0));
  if (rc != 0) return fail(kMknodBlk, rc);
  rc = ::mknodat(AT_FDCWD, "", S_IFIFO | 0600, 0);
  if (rc == 0 || errno != ENOENT) return fail(kMknodFifo, rc);
  rc = ::syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 0);
  if (rc == 0 || errno != kDenyErrno) return fail(kKeyctl, rc);
  return {};
}

std::string describe_step(const Outcome& o) {
  const std::string what = o.err == 0 ? std::string("it succeeded")
                                      : fmt::format("{} ({})", ::strerrorname_np(o.err),
                                                    std::strerror(o.err));
  switch (o.step) {
    case kNoNewPrivs: return fmt::format("can't set no_new_privs: {}", what);
    case kLoad: return fmt::format("the kernel refused the filter: {}", what);
    case kSetuid: return fmt::format("setuid(2) was not faked: {}", what);
    case kSetuidEffect: return "setuid(2) returned 0 but changed the uid";
    case kSetgroups: return fmt::format("setgroups(2) was not faked: {}", what);
    case kMemfd: return fmt::format("can't create a memory file: {}", what);
    case kFchown: return fmt::format("fchown(2) was not faked: {}", what);
    case kFchownEffect: return "fchown(2) returned 0 but changed the owner";
    case kMknodChr: return fmt::format("mknod(2) of a character device was not faked: {}", what);
    case kMknodBlk: return fmt::format("mknod(2) of a block device was not faked: {}", what);
    case kMknodFifo: return fmt::format("mknod(2) of a FIFO was faked: {}", what);
    case kKeyctl: return fmt::format("keyctl(2) was not refused with EPERM: {}", what);
    default: return fmt::format("unknown step {}", o.step);
  }
}

}  // namespace

std::optional<std::string> self_test() {
  Program p;
  try {
    Policy policy;
    policy.emulate_root = true;
    policy.deny = default_rules();
    p = compile(policy);
  } catch (const std::exception& e) {
    return describe(e);
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    int e = errno;
    return fmt::format("can't create a pipe: {}", std::strerror(e));
  }
  Fd rd(fds[0]), wr(fds[1]);
  const pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    return fmt::format("can't fork: {}", std::strerror(e));
  }
  if (pid == 0) {
    const Outcome o = child_checks(p);
    const bool sent = ::write(wr.get(), &o, sizeof o) == static_cast<ssize_t>(sizeof o);
    ::_exit(sent ? 0 : 1);
  }
  wr.reset();
  Outcome o;
  ssize_t n;
  do n = ::read(rd.get(), &o, sizeof o);
  while (n < 0 && errno == EINTR);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (n != static_cast<ssize_t>(sizeof o)) {
    if (WIFSIGNALED(status))
      return fmt::format("the test process was killed by signal {} ({})", WTERMSIG(status),
                         ::strsignal(WTERMSIG(status)));
    return "the test process ended without reporting";
  }
  if (o.step != kPassed) return describe_step(o);
  return std::nullopt;
}

}  // namespace chute::seccomp
