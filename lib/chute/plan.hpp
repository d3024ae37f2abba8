// Config (what the command line asked for) and Plan (everything ch-run will
// do, decided before any namespace exists). make_plan() reads the host and
// the image but changes nothing; every bad input fails here (with --join,
// what only the container's builder needs fails in finish_plan()).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "chute/bind_spec.hpp"
#include "chute/env.hpp"
#include "chute/idmap.hpp"
#include "chute/image_ref.hpp"
#include "chute/inject.hpp"
#include "chute/join.hpp"
#include "chute/seccomp.hpp"
#include "chute/site.hpp"

namespace chute {

struct Config {
  std::string image;
  std::vector<std::string> argv;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::vector<BindSpec> binds;
  std::optional<std::string> cd;
  std::optional<std::string> storage;
  std::optional<std::string> mount_dir;
  std::vector<env::Op> env_ops;
  bool env_no_expand = false;
  bool write = false;
  std::optional<std::string> write_fake;  // -W[=SIZE]: tmpfs size ("12%" when bare)
  bool unsafe = false;
  bool private_tmp = false;
  bool home = false;
  bool no_passwd = false;
  bool join = false;                       // -j, or implied by --join-ct / --join-tag
  std::optional<std::string> join_ct;
  std::optional<std::string> join_tag;
  std::optional<pid_t> join_pid;
  inject::Request inject;                  // --gpu, --device, -d, --cdi-dirs, --mpi, --warn-only
  std::vector<int> cap_drop;               // --cap-drop (capability numbers; -1: all)
  seccomp::Policy seccomp;                 // --seccomp, --seccomp-deny[=FILE]
  bool ipc = false;                        // --ipc
  bool uts = false;                        // --uts, or --hostname
  std::optional<std::string> hostname;     // --hostname
  bool net_none = false;                   // --net=none
  bool pid = false;                        // --pid
  int verbosity = 0;   // -3 .. 3
};

// What ch-run reads of the host, gathered once, so tests can supply their own.
struct HostFacts {
  uid_t uid = 0;
  gid_t gid = 0;
  pid_t parent = 0;   // the default --join tag
  Environment env;
  std::optional<site::Config> site;   // the site configuration; read from the host when absent
  static HostFacts current();
};

// One mount to make inside the image, in order.
struct Mount {
  // kProc: a new procfs, of the PID namespace of the process that mounts
  // it (--pid: PID 1 of the job's), in place of the host's /proc.
  enum class Kind { kBind, kTmpfs, kProc };
  enum class Need {
    kRequired,   // source and destination must exist
    kOptional,   // skipped when either is missing
    kMakeDst,    // destination created when missing (-w, -W, or on a tmpfs), else an error
    kCreateDst,  // destination created when missing, even in a read-only image (its
                 // nearest existing ancestor is then covered: see mount::apply)
  };
  Kind kind = Kind::kBind;
  Need need = Need::kRequired;
  std::string src;          // host path (bind) or tmpfs options (tmpfs)
  std::string dst;          // absolute path inside the image
  bool readonly = false;
  bool src_is_dir = true;   // what to create when DST is missing
  std::string why;          // where it comes from, for messages: "default", "--bind"
};

struct Plan {
  IdMap ids;
  ImageRef image;
  std::string squash_mount;            // SquashFS: where to mount it (host path, our namespace only)
  bool writable = false;
  std::optional<std::string> write_fake;   // tmpfs size for the overlay, if -W
  std::vector<Mount> mounts;
  bool no_passwd = false;              // --no-passwd
  std::optional<std::string> passwd;   // file contents; none with --no-passwd, or not finished
  std::optional<std::string> group;
  // A process of a --join group learns only when it meets the others
  // whether it builds the container or joins one: what only the builder
  // needs (the SquashFS image's check, passwd and group from the host's user
  // database) is left to finish_plan() until then.
  bool finished = true;
  env::Plan env;
  Environment host_env;
  std::vector<std::string> argv;
  std::optional<std::string> cwd;
  std::optional<join::Group> join;     // --join with more than one process expected
  std::optional<pid_t> join_pid;       // --join-pid
  inject::Plan inject;                 // --gpu, --device, --mpi
  std::vector<int> cap_drop;           // --cap-drop (see job::caps_to_drop)
  seccomp::Program seccomp;            // --seccomp, --seccomp-deny: compiled, loaded by the job
  int isolate = 0;                     // more namespaces: CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET
  std::optional<std::string> hostname; // in the new UTS namespace
  bool pid = false;                    // --pid: a PID namespace with an init (see init.hpp)
  int verbosity = 0;
};

// The default binds, as Charliecloud's BINDS_DEFAULT plus chute's read-only
// policy (see doc/ch-run.1, "Default binds").
std::vector<Mount> default_mounts();

Plan make_plan(const Config& config, const HostFacts& host);

// The rest of a plan that make_plan() left unfinished (see Plan::finished):
// check the SquashFS image, write passwd and group. Throws as make_plan()
// would have.
void finish_plan(Plan& plan);

// Where a SquashFS image is mounted before the pivot: -m DIR, else the first
// of /mnt, /srv, /opt, /media, ... that is neither at, above nor below any
// bind source (the mount covers it in the container's namespace only, and
// must hide nothing a bind needs). SOURCES are canonical host paths.
std::string squash_mount_point(const std::optional<std::string>& option,
                               const std::vector<std::string>& sources);

}  // namespace chute
