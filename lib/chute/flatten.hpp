// Flattening layered images (docker-archive, OCI) into one tree, as the
// union filesystem of a container engine would see it: later layers replace
// earlier members, OCI whiteouts delete them. Pure.
//
// chute flattens in two passes over the layers: the first reads only member
// headers and feeds them to a Planner, which simulates the union; the second
// writes just the members that survive. Nothing is written and then deleted,
// so SquashFS and tar outputs carry no dead data, and no sink ever deletes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "chute/member.hpp"

namespace chute::flatten {

// Layer number and the member's position in the layer (every header counts).
struct Ref {
  std::uint32_t layer = 0;
  std::uint32_t index = 0;
  friend bool operator==(const Ref&, const Ref&) = default;
  friend auto operator<=>(const Ref&, const Ref&) = default;
};

struct RefHash {
  std::size_t operator()(const Ref& r) const noexcept {
    return (static_cast<std::size_t>(r.layer) << 32) ^ r.index;
  }
};

// What the second pass does with one member.
struct Decision {
  enum class Action { kSkip, kEmit };
  Action action = Action::kSkip;
  // Emit under this path instead (a dead file that surviving hard links need).
  std::optional<std::string> emit_as;
  // Emit a hard link to this path instead of the member's own target.
  std::optional<std::string> link_to;
};

class Planner {
public:
  void begin_layer();
  // A member that will be written if it survives (the next index). Throws
  // Error (message without the file name) for a member that cannot be
  // placed: written through a symlink, a hard link to nothing.
  void add(const std::string& path, member::Kind kind, const std::string& link_target = {});
  // A header that is never written itself (whiteout, dropped device, ...).
  void skip();
  void whiteout(const member::WhiteoutInfo& w);

  // The decisions for every member that is emitted or renamed; members
  // absent from the map are skipped.
  std::unordered_map<Ref, Decision, RefHash> finish();

  std::size_t survivors() const { return tree_.size(); }

private:
  struct Node {
    Ref ref;
    member::Kind kind;
    std::optional<Ref> link;  // hard links: the ultimate target's member
  };
  Ref next();
  void erase_below(const std::string& dir, bool lower_only);
  const Node* find(const std::string& p) const;
  // The first proper ancestor of PATH that exists and is not a directory.
  std::pair<std::string, const Node*> non_dir_ancestor(const std::string& path) const;

  std::map<std::string, Node> tree_;  // path -> newest member there
  std::unordered_map<Ref, std::string, RefHash> path_of_;  // every member added
  std::uint32_t layer_ = 0;
  std::uint32_t index_ = 0;
  bool started_ = false;
};

}  // namespace chute::flatten
