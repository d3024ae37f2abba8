#include "chute/cli.hpp"

#include <fcntl.h>
#include <getopt.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>

#include <cerrno>
#include <charconv>
#include <fmt/core.h>
#include <vector>

#include "chute/error.hpp"
#include "chute/job.hpp"
#include "chute/log.hpp"
#include "chute/seccomp.hpp"
#include "chute/sys.hpp"

namespace chute::cli {

namespace {

enum LongOnly : int {
  kCapDrop = 256,
  kCdiDirs,
  kDevice,
  kEnvNoExpand,
  kGpu,
  kHostname,
  kIpc,
  kMpi,
  kNet,
  kPid,
  kUts,
  kWarnOnly,
  kFeature,
  kHome,
  kJoinCt,
  kJoinPid,
  kJoinTag,
  kNoPasswd,
  kSeccomp,
  kSeccompDeny,
  kSetEnv,
  kSetEnv0,
  kUnsafe,
  kUnsetEnv,
  kUsage,
};

const struct option kOptions[] = {
    {"bind", required_argument, nullptr, 'b'},
    {"cap-drop", required_argument, nullptr, kCapDrop},
    {"cd", required_argument, nullptr, 'c'},
    {"cdi-dirs", required_argument, nullptr, kCdiDirs},
    {"device", required_argument, nullptr, kDevice},
    {"devices", no_argument, nullptr, 'd'},
    {"env-no-expand", no_argument, nullptr, kEnvNoExpand},
    {"feature", required_argument, nullptr, kFeature},
    {"gid", required_argument, nullptr, 'g'},
    {"gpu", optional_argument, nullptr, kGpu},
    {"help", no_argument, nullptr, 'h'},
    {"home", no_argument, nullptr, kHome},
    {"hostname", required_argument, nullptr, kHostname},
    {"ipc", no_argument, nullptr, kIpc},
    {"join", no_argument, nullptr, 'j'},
    {"join-ct", required_argument, nullptr, kJoinCt},
    {"join-pid", required_argument, nullptr, kJoinPid},
    {"join-tag", required_argument, nullptr, kJoinTag},
    {"mount", required_argument, nullptr, 'm'},
    {"mpi", optional_argument, nullptr, kMpi},
    {"net", required_argument, nullptr, kNet},
    {"no-passwd", no_argument, nullptr, kNoPasswd},
    {"pid", no_argument, nullptr, kPid},
    {"private-tmp", no_argument, nullptr, 't'},
    {"quiet", no_argument, nullptr, 'q'},
    {"seccomp", no_argument, nullptr, kSeccomp},
    {"seccomp-deny", optional_argument, nullptr, kSeccompDeny},
    {"set-env", optional_argument, nullptr, kSetEnv},
    {"set-env0", optional_argument, nullptr, kSetEnv0},
    {"storage", required_argument, nullptr, 's'},
    {"uid", required_argument, nullptr, 'u'},
    {"unsafe", no_argument, nullptr, kUnsafe},
    {"unset-env", required_argument, nullptr, kUnsetEnv},
    {"usage", no_argument, nullptr, kUsage},
    {"uts", no_argument, nullptr, kUts},
    {"verbose", no_argument, nullptr, 'v'},
    {"version", no_argument, nullptr, 'V'},
    {"warn-only", no_argument, nullptr, kWarnOnly},
    {"write", no_argument, nullptr, 'w'},
    {"write-fake", optional_argument, nullptr, 'W'},
    {nullptr, 0, nullptr, 0},
};

constexpr const char* kShort = ":b:c:dg:hjm:qs:tu:vVwW::";

// The most a file named on the command line (a --set-env file, a
// --seccomp-deny profile) may hold: more than any environment the kernel
// lets a program start with (at most 6 MiB in all).
constexpr size_t kMaxHostFile = size_t{16} << 20;

// A host file OPTION names, read now: a missing or unreadable file fails
// before any namespace exists. It need not be seekable (a pipe works), so
// its size is known only once read: reading stops at a bound (/dev/zero
// never ends). WHAT says what the file is, in errors ("file", "profile").
std::string read_host_file(std::string_view option, std::string_view what,
                           const std::string& path) {
  std::optional<std::string> text;
  try {
    text = sys::read_file_within(path, kMaxHostFile);
  } catch (const SysError& e) {
    throw SysError(e.err(), fmt::format("{}: can't read {}: {}", option, what, path));
  }
  if (!text)
    throw Error(fmt::format("{}: {} larger than {} bytes: {}", option, what, kMaxHostFile, path));
  return std::move(*text);
}

env::Op set_env_op(const char* arg, char delim, std::string_view option) {
  env::Op op;
  if (arg == nullptr) {
    op.kind = env::Op::Kind::kImageFile;
    op.delim = delim;
    return op;
  }
  std::string_view a(arg);
  if (a.empty()) throw Error(fmt::format("{}: empty argument", option));
  op.kind = env::Op::Kind::kSet;
  if (a.find('=') != std::string_view::npos) {
    op.vars.push_back(env::parse_assignment(a, fmt::format("{} argument", option)));
    return op;
  }
  // A host file of records.
  std::string path(a);
  std::string text = read_host_file(option, "file", path);
  // execve(2) refuses a variable longer than 32 pages (MAX_ARG_STRLEN, with
  // its terminating NUL): say so now, naming the line, rather than fail to
  // start the command.
  const long page = ::sysconf(_SC_PAGESIZE);
  const size_t max_variable = 32 * static_cast<size_t>(page > 0 ? page : 4096) - 1;
  op.vars = env::parse_records(text, delim, path, max_variable);
  return op;
}

// tmpfs's size syntax: a number with an optional k, m, g or % suffix.
void check_size(const std::string& size) {
  size_t i = 0;
  while (i < size.size() && size[i] >= '0' && size[i] <= '9') ++i;
  const std::string_view digits(size.data(), i);
  const std::string_view suffix = std::string_view(size).substr(i);
  unsigned long long n = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  bool ok = !digits.empty() && ec == std::errc() && n > 0 &&
            (suffix.empty() || (suffix.size() == 1 && std::string_view("kKmMgG%").find(suffix[0]) !=
                                                          std::string_view::npos)) &&
            (suffix != "%" || n <= 100);
  if (!ok)
    throw Error(fmt::format("--write-fake: invalid size {:?} (a positive number, with k, m, g or "
                            "% of memory; examples: 12%, 512m, 4g)", size));
}

// --seccomp-deny's rules: the built-in list, or a profile read now from
// the host (a missing or bad file fails before any namespace exists).
std::vector<seccomp::Rule> deny_rules(const char* arg) {
  if (arg == nullptr) return seccomp::default_rules();
  const std::string path(arg);
  if (path.empty()) throw Error("--seccomp-deny: empty file name");
  std::string text = read_host_file("--seccomp-deny", "profile", path);
  try {
    return seccomp::parse_profile(text, path);
  } catch (const Error& e) {
    throw Error(fmt::format("--seccomp-deny: {}", e.what()));
  }
}

bool kernel_at_least(int major, int minor) {
  struct utsname u;
  if (::uname(&u) != 0) return false;
  int ma = 0, mi = 0;
  if (std::sscanf(u.release, "%d.%d", &ma, &mi) != 2) return false;
  return ma > major || (ma == major && mi >= minor);
}

}  // namespace

Parsed parse_ch_run(int argc, const char* const* argv_in) {
  Parsed r;
  Config& c = r.config;
  // getopt permutes its argv: work on a copy.
  std::vector<std::string> store(argv_in, argv_in + argc);
  std::vector<char*> argv;
  for (auto& s : store) argv.push_back(s.data());
  argv.push_back(nullptr);

  int quiet = 0, verbose = 0;
  ::opterr = 0;
  ::optind = 0;  // full reset of glibc's getopt state
  int ch;
  int longindex = -1;
  while ((ch = ::getopt_long(argc, argv.data(), kShort, kOptions, &longindex)) != -1) {
    switch (ch) {
      case 'b':
        c.binds.push_back(bind_spec::parse(::optarg));
        break;
      case 'c':
        if (*::optarg == '\0') throw Error("--cd: empty directory");
        c.cd = ::optarg;
        break;
      case kCapDrop: {
        auto caps = job::parse_cap_list(::optarg);
        c.cap_drop.insert(c.cap_drop.end(), caps.begin(), caps.end());
        break;
      }
      case kCdiDirs:
        if (*::optarg == '\0') throw Error("--cdi-dirs: empty list");
        c.inject.cdi_dirs = ::optarg;
        break;
      case kDevice:
        if (*::optarg == '\0') throw Error("--device: empty device name");
        c.inject.devices.emplace_back(::optarg);
        break;
      case 'd':
        c.inject.all_devices = true;
        break;
      case kEnvNoExpand:
        c.env_no_expand = true;
        break;
      case kGpu: {
        std::string_view a = ::optarg ? ::optarg : "required";
        if (a == "required")
          c.inject.gpu = inject::Request::Gpu::kRequired;
        else if (a == "optional")
          c.inject.gpu = inject::Request::Gpu::kOptional;
        else
          throw Error(fmt::format("--gpu: invalid value {:?} (--gpu, --gpu=required or "
                                  "--gpu=optional)", a));
        break;
      }
      case kMpi: {
        std::string a = ::optarg ? ::optarg : "host";
        if (a.empty()) throw Error("--mpi: empty profile name");
        c.inject.mpi = a;
        break;
      }
      case kWarnOnly:
        c.inject.warn_only = true;
        break;
      case kFeature:
        r.action = Parsed::Action::kFeature;
        r.feature = ::optarg;
        break;
      case 'g':
        c.gid = idmap::parse_id(::optarg, "--gid");
        break;
      case 'h':
        r.action = Parsed::Action::kHelp;
        break;
      case kHome:
        c.home = true;
        break;
      case 'j':
        c.join = true;
        break;
      case kJoinCt:
        c.join = true;
        c.join_ct = ::optarg;
        break;
      case kJoinTag:
        c.join = true;
        join::check_tag(::optarg);
        c.join_tag = ::optarg;
        break;
      case kJoinPid: {
        std::string_view a(::optarg);
        pid_t pid = 0;
        auto [end, ec] = std::from_chars(a.data(), a.data() + a.size(), pid);
        if (ec != std::errc() || end != a.data() + a.size() || pid <= 0)
          throw Error(fmt::format("--join-pid: not a process id: {:?}", a));
        c.join_pid = pid;
        break;
      }
      case 'm':
        if (*::optarg == '\0') throw Error("--mount: empty directory");
        c.mount_dir = ::optarg;
        break;
      case kNoPasswd:
        c.no_passwd = true;
        break;
      case 't':
        c.private_tmp = true;
        break;
      case kHostname: {
        std::string_view h(::optarg);
        if (h.empty() || h.size() > 64 ||
            h.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
                std::string_view::npos)
          throw Error(fmt::format("--hostname: invalid host name {:?} (1 to 64 letters, digits, "
                                  "'.' and '-')", h));
        c.hostname = std::string(h);
        c.uts = true;
        break;
      }
      case kIpc:
        c.ipc = true;
        break;
      case kNet: {
        std::string_view n(::optarg);
        if (n == "none") c.net_none = true;
        else if (n == "host") c.net_none = false;
        else
          throw Error(fmt::format("--net: invalid value {:?} (none: loopback only; host: the "
                                  "host's network, the default)", n));
        break;
      }
      case kUts:
        c.uts = true;
        break;
      case kPid:
        c.pid = true;
        break;
      case 'q':
        ++quiet;
        break;
      case kSeccomp:
        c.seccomp.emulate_root = true;
        break;
      case kSeccompDeny: {
        auto rules = deny_rules(::optarg);
        c.seccomp.deny.insert(c.seccomp.deny.end(), rules.begin(), rules.end());
        break;
      }
      case kSetEnv:
        c.env_ops.push_back(set_env_op(::optarg, '\n', "--set-env"));
        break;
      case kSetEnv0:
        c.env_ops.push_back(set_env_op(::optarg, '\0', "--set-env0"));
        break;
      case 's':
        if (*::optarg == '\0') throw Error("--storage: empty directory");
        c.storage = ::optarg;
        break;
      case 'u':
        c.uid = idmap::parse_id(::optarg, "--uid");
        break;
      case kUnsafe:
        c.unsafe = true;
        break;
      case kUnsetEnv: {
        env::Op op;
        op.kind = env::Op::Kind::kUnset;
        op.glob = ::optarg;
        if (op.glob.empty()) throw Error("--unset-env: GLOB must not be empty");
        c.env_ops.push_back(std::move(op));
        break;
      }
      case kUsage:
        r.action = Parsed::Action::kUsage;
        break;
      case 'v':
        ++verbose;
        break;
      case 'V':
        r.action = Parsed::Action::kVersion;
        break;
      case 'w':
        c.write = true;
        break;
      case 'W':
        c.write_fake = ::optarg != nullptr ? std::string(::optarg) : std::string(kWriteFakeSize);
        check_size(*c.write_fake);
        break;
      case ':':
        throw Error(fmt::format("option requires an argument: {:?} (try --help)",
                                argv[::optind - 1]));
      case '?': {
        if (::optopt == '?') {  // "-?": argp's spelling of --help
          r.action = Parsed::Action::kHelp;
          break;
        }
        std::string_view word(argv[::optind - 1]);
        if (::optopt == 0)  // a long option: unknown, or an ambiguous abbreviation
          throw Error(fmt::format("unknown option: {:?} (try --help)", word));
        if (::optopt > 0 && ::optopt < 256) {
          // A short option, maybe inside a group such as "-xw": name the letter.
          throw Error(fmt::format("unknown option: \"-{}\" (try --help)",
                                  static_cast<char>(::optopt)));
        }
        throw Error(fmt::format("option {:?} takes no argument (try --help)", word));
      }
      default:
        throw Error(fmt::format("unexpected option code {}", ch));
    }
  }
  if (quiet > 0 && verbose > 0) throw Error("--quiet and --verbose are incompatible");
  c.verbosity = verbose > 0 ? std::min(verbose, 3) : -std::min(quiet, 3);
  if (r.action != Parsed::Action::kRun) return r;

  if (::optind >= argc) throw Error("IMAGE and/or COMMAND not specified");
  c.image = argv[::optind++];
  for (int i = ::optind; i < argc; ++i) c.argv.emplace_back(argv[i]);
  if (c.argv.empty()) throw Error("IMAGE and/or COMMAND not specified");
  return r;
}

std::string ch_run_usage() {
  return "usage: ch-run [OPTION...] IMAGE -- COMMAND [ARG...]\n";
}

std::string ch_run_help() {
  return ch_run_usage() + R"(
Run a command in a container, as an ordinary user.

  -b, --bind=SRC[:DST[:ro|rw]]  bind host SRC at image path DST (default:
                             SRC); ":ro" makes it read-only
  -c, --cd=DIR               start the command in DIR (default: /)
      --cap-drop=CAPS        with -u 0: drop these capabilities (names, comma-
                             separated, or "all") from the job's bounding set
      --cdi-dirs=DIRS        where --device looks for CDI specs (default:
                             $CH_RUN_CDI_DIRS, else /etc/cdi:/var/run/cdi)
      --device=DEV           inject CDI device DEV (vendor.com/class=name,
                             vendor.com/class=all, or a spec file's path)
  -d, --devices              inject every CDI device found
      --env-no-expand        don't expand $VARS in --set-env values
      --feature=FEAT         exit 0 if feature FEAT is supported
  -g, --gid=GID              run as group GID inside the container
      --gpu[=optional]       inject the host's GPU devices, driver libraries
                             and tools (NVIDIA, AMD); =optional: no GPU is a
                             warning, not an error
      --home                 bind $HOME at /home/$USER
      --hostname=NAME        host name NAME in a private UTS namespace
      --ipc                  private IPC namespace (System V IPC, POSIX
                             message queues)
  -j, --join                 share one container with the other ch-run
                             processes of this job step on this node
      --join-ct=N            number of processes that --join (default: from
                             Open MPI or Slurm); implies --join
      --join-pid=PID         run in the container of process PID
      --join-tag=TAG         name of the group to --join (default: the Slurm
                             job step, else the parent process); implies --join
  -m, --mount=DIR            SquashFS mount point (ignored for directories)
      --net=none             private network namespace: loopback only
                             (default: host, the host's network)
      --mpi[=PROFILE]        inject the host's MPI libraries per site profile
                             PROFILE (default: host)
      --no-passwd            don't synthesize /etc/passwd and /etc/group
      --pid                  private PID namespace, its own /proc, and an
                             init that reaps orphans and forwards signals
  -q, --quiet                -q: job's stdout to /dev/null; -qq: also no
                             warnings; -qqq: also job's stderr to /dev/null
      --seccomp              root emulation: chown, set*id, setgroups, capset,
                             mknod of devices... succeed without effect
      --seccomp-deny[=FILE]  refuse dangerous system calls with EPERM: a
                             built-in list, or the profile FILE
  -s, --storage=DIR          image storage (default: $CH_IMAGE_STORAGE, else
                             /var/tmp/$USER.ch)
      --set-env[=ARG]        set variables: ARG is KEY=VAL or a host file of
                             KEY=VAL lines; no ARG: the image's /ch/environment
      --set-env0[=ARG]       as --set-env, records separated by NUL bytes
  -t, --private-tmp          private tmpfs on /tmp instead of the host's
  -u, --uid=UID              run as user UID inside the container
      --unsafe               allow unsafe things (storage directories by path)
      --uts                  private UTS namespace (host name of its own)
      --unset-env=GLOB       unset variables whose names match GLOB
  -v, --verbose              more messages (up to 3 times)
  -V, --version              print version and exit
  -w, --write                don't make the image read-only (directories)
      --warn-only            injected libraries that fail the preflight check
                             are a warning, not an error
  -W, --write-fake[=SIZE]    writable overlay on a tmpfs of SIZE (default
                             12% of memory), discarded at exit
  -h, -?, --help             this help
      --usage                short usage

Exit status: the command's (128+N if it was killed by signal N), 31 if ch-run
failed, 49 if the command could not be executed, 84 if the SquashFS server
stopped while the command ran. See ch-run(1).
)";
}

int feature_status(std::string_view feature) {
  if (feature == "extglob" || feature == "squash") return 0;
  // chute's own: host injection (--gpu, --device with CDI specs, --mpi).
  if (feature == "gpu" || feature == "cdi" || feature == "mpi") return 0;
  if (feature == "seccomp") {
    // Not only built in: a filter must load and fake what it should here.
    if (auto why = seccomp::self_test()) {
      log::verbose("seccomp self-test failed: {}", *why);
      return kExitMisc;
    }
    log::verbose("seccomp self-test passed");
    return 0;
  }
  // Unprivileged overlayfs needs Linux 5.11, user xattrs on tmpfs 6.6.
  if (feature == "overlayfs") return kernel_at_least(5, 11) ? 0 : 1;
  if (feature == "tmpfs-xattrs") return kernel_at_least(6, 6) ? 0 : 1;
  throw Error(fmt::format("--feature: unknown feature: {:?}", feature));
}

}  // namespace chute::cli
