// --join: the ch-run processes of one node that share a tag (the ranks of
// one job step) share one container. The first to arrive (the winner)
// builds it; the others (peers) are handed its user and mount namespaces
// and only start their own job in them.
//
// Rendezvous is an abstract Unix socket, "chute-join/UID/TAG": binding it is
// how a process wins, connecting to it is how a peer joins, and the kernel
// removes the name when the last process holding it ends, however it ends.
// Nothing is ever created in /dev/shm or anywhere else, so nothing can be
// left behind. A peer learns at once that the winner died (its connection
// closes) and then takes over or fails; it never waits on a timer.
//
// The first part of this header is pure (count, tag, fingerprint); the
// second does the rendezvous.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "chute/env.hpp"
#include "chute/fd.hpp"

namespace chute {
struct Plan;
}

namespace chute::join {

// --- pure ------------------------------------------------------------------

// What a joining run asked for, resolved.
struct Group {
  long count = 1;      // processes expected on this node, the winner included
  std::string tag;     // validated: see check_tag()
  std::string count_from;  // where the count came from, for messages
  std::string tag_from;
};

// The number of peers: --join-ct (OPTION, strictly a positive integer),
// else OMPI_COMM_WORLD_LOCAL_SIZE, else SLURM_STEP_TASKS_PER_NODE (this
// node's entry when SLURM_NODEID says which: "2(x3),1" is 2,2,2,1), else
// SLURM_CPUS_ON_NODE. Variables may carry trailing text after the number,
// as in Charliecloud. Throws Error when none is set or the value is not a
// positive number.
std::pair<long, std::string> resolve_count(const std::optional<std::string>& option,
                                           const Environment& env);

// The entry for node NODEID of a Slurm "tasks per node" list ("4(x2),3"),
// or nullopt if the list does not parse or is too short.
std::optional<long> tasks_on_node(std::string_view list, long nodeid);

// The tag: --join-tag, else SLURM_STEP_ID (qualified by SLURM_JOB_ID when
// set, so that two jobs' steps 0 on one node never meet), else the parent
// process's id. Validated with check_tag().
std::pair<std::string, std::string> resolve_tag(const std::optional<std::string>& option,
                                                const Environment& env, pid_t parent);

// A tag is 1 to 64 characters from [A-Za-z0-9._+:@%=,-]: no slash, space,
// control character or other path or shell syntax. Throws Error naming it.
void check_tag(std::string_view tag);

// The abstract socket name (without its leading NUL) for UID and TAG.
std::string socket_name(uid_t uid, std::string_view tag);

// The options that make the container, one "what: value" line each, in a
// fixed order: image (its path and file identity DEV:INO), kind, write
// modes, ids, passwd, every mount. Peers must match the winner's exactly.
std::string fingerprint(const Plan& plan, dev_t dev, ino_t ino);

// The first line where MINE and THEIRS differ, as "WHAT: MINE's value here,
// THEIRS's there" (or both lines whole when they name different things),
// or "" when equal.
std::string first_difference(std::string_view mine, std::string_view theirs);

// --- effects ---------------------------------------------------------------

// The winner: the listening socket; queued peers wait on it until serve().
struct Winner {
  Fd listener;
};

// A peer that was let in: the winner's namespaces, and the connection,
// which stays open while the winner lives (for a SquashFS image, the
// winner's launcher, which serves it).
struct Joined {
  Fd userns;
  Fd mntns;
  Fd conn;
  pid_t winner = 0;
};

// Win or join the group of (UID, GROUP.tag), sending FINGERPRINT. A winner
// that dies before it answers is replaced: the caller may become the new
// winner. Throws Error (exit 31) when the winner refuses this peer
// (different options, another user holding the name) or the rendezvous
// keeps failing.
std::variant<Winner, Joined> meet(uid_t uid, const Group& group, const std::string& fingerprint);

// Enter the namespaces of a Joined (user first, then mount). The calling
// process must be single-threaded. Afterwards root and cwd are the
// container's root.
void enter(const Joined& j);

// --join-pid=PID: enter the user and mount namespaces of process PID.
void enter_pid(pid_t pid);

// Serving peers. USERNS and MNTNS are the container's namespaces; WATCH is
// a pidfd of the process whose life counts for the winner's own side (the
// job for a directory image, -1 when the caller reports it with
// winner_done()).
class Server {
public:
  Server(Winner w, const Group& group, std::string fingerprint, Fd userns, Fd mntns);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Directory images: fork a process (not a child of the job) that serves
  // peers until every expected peer has joined, or until the job (WATCH_PID)
  // and every peer that joined have ended. Returns in the caller at once.
  void spawn_detached(pid_t watch_pid);

  // SquashFS images: serve from a thread of this process. The mount
  // namespace may come later: when the server was made without one, the
  // thread first calls GET_MNTNS (which may block), and refuses every
  // waiting peer with the text it returns instead of a namespace.
  void start_thread(std::function<std::variant<Fd, std::string>()> get_mntns = {});
  // The winner's own job tree has ended; wait until every peer that joined
  // has ended too (they use this process's image server), refusing no one
  // meanwhile if peers are still expected. Then stop serving.
  void finish();

  // Tell the queued peers that the container could not be built.
  static void refuse_all(Winner& w, std::string_view why);

private:
  struct Impl;
  Impl* impl_;
};

}  // namespace chute::join
