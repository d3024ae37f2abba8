#include "chute/flatten.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "chute/error.hpp"

namespace chute::flatten {

using member::Kind;

void Planner::begin_layer() {
  if (started_) ++layer_;
  started_ = true;
  index_ = 0;
}

Ref Planner::next() { return Ref{layer_, index_++}; }

void Planner::skip() { next(); }

const Planner::Node* Planner::find(const std::string& p) const {
  auto it = tree_.find(p);
  return it == tree_.end() ? nullptr : &it->second;
}

void Planner::erase_below(const std::string& dir, bool lower_only) {
  // Everything strictly under DIR: keys from "DIR/" up to "DIR0" ('0' is
  // the character after '/').
  auto it = dir.empty() ? tree_.begin() : tree_.lower_bound(dir + "/");
  auto end = dir.empty() ? tree_.end() : tree_.lower_bound(dir + "0");
  while (it != end) {
    if (!lower_only || it->second.ref.layer < layer_)
      it = tree_.erase(it);
    else
      ++it;
  }
}

std::pair<std::string, const Planner::Node*> Planner::non_dir_ancestor(const std::string& path) const {
  for (auto slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    std::string anc = path.substr(0, slash);
    if (const Node* n = find(anc); n && n->kind != Kind::kDir) return {std::move(anc), n};
  }
  return {{}, nullptr};
}

void Planner::add(const std::string& path, Kind kind, const std::string& link_target) {
  const Ref ref = next();
  if (path.empty()) {
    // The root itself: metadata only.
    if (kind != Kind::kDir) throw Error("the image root is not a directory");
    tree_[path] = Node{ref, kind, std::nullopt};
    path_of_[ref] = path;
    return;
  }
  // Every ancestor must be a directory (or not exist yet: created implicitly).
  if (auto [anc, n] = non_dir_ancestor(path); n)
    throw Error(fmt::format("parent {:?} is a {}, not a directory (writing through it is refused)", anc,
                            member::kind_name(n->kind)));
  std::optional<Ref> link;
  if (kind == Kind::kHardlink) {
    const Node* t = find(link_target);
    if (!t) throw Error(fmt::format("hard link to {:?}, which is not an earlier member", link_target));
    if (t->kind == Kind::kDir) throw Error(fmt::format("hard link to directory {:?}", link_target));
    link = t->link ? *t->link : t->ref;
  }
  auto it = tree_.find(path);
  if (it != tree_.end()) {
    const bool both_dirs = it->second.kind == Kind::kDir && kind == Kind::kDir;
    if (!both_dirs && it->second.kind == Kind::kDir) erase_below(path, false);
  }
  tree_[path] = Node{ref, kind, link};
  path_of_[ref] = path;
}

void Planner::whiteout(const member::WhiteoutInfo& w) {
  next();
  // Like any member, a whiteout can't reach through a symlink or a file.
  // (An opaque whiteout also reaches into its directory itself.)
  const std::string below = w.kind == member::Whiteout::kOpaque ? w.victim + "/" : w.victim;
  if (auto [anc, n] = non_dir_ancestor(below); n)
    throw Error(fmt::format("whiteout below {:?}, which is a {}, not a directory", anc,
                            member::kind_name(n->kind)));
  if (w.kind == member::Whiteout::kOpaque) {
    erase_below(w.victim, true);
  } else if (w.kind == member::Whiteout::kDelete) {
    auto it = tree_.find(w.victim);
    if (it != tree_.end() && it->second.ref.layer < layer_) {
      if (it->second.kind == Kind::kDir) erase_below(w.victim, true);
      // A directory that still holds this layer's members stays.
      auto below = tree_.lower_bound(w.victim + "/");
      const bool keeps_children = below != tree_.end() && member::is_within(below->first, w.victim);
      if (!keeps_children) tree_.erase(w.victim);
    }
  }
}

std::unordered_map<Ref, Decision, RefHash> Planner::finish() {
  std::unordered_map<Ref, Decision, RefHash> out;
  out.reserve(tree_.size());
  for (const auto& [path, node] : tree_) out[node.ref].action = Decision::Action::kEmit;
  // Surviving hard links whose target did not survive: the first one (in
  // member order) takes the data, written at the target's place in the
  // stream; the others link to it.
  std::map<Ref, std::vector<Ref>> orphans;  // dead target -> links, in order
  for (const auto& [path, node] : tree_) {
    if (node.kind != Kind::kHardlink || !node.link) continue;
    if (out.count(*node.link)) {
      // The target survives, but maybe at another path than the link named
      // (a hard link to a hard link): point at the surviving path.
      out[node.ref].link_to = path_of_.at(*node.link);
      continue;
    }
    orphans[*node.link].push_back(node.ref);
  }
  for (auto& [target, links] : orphans) {
    std::sort(links.begin(), links.end());
    const std::string& first = path_of_.at(links.front());
    Decision& t = out[target];
    t.action = Decision::Action::kEmit;
    t.emit_as = first;
    out[links.front()].action = Decision::Action::kSkip;
    for (std::size_t i = 1; i < links.size(); ++i) out[links[i]].link_to = first;
  }
  return out;
}

}  // namespace chute::flatten
