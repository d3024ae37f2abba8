// Reading images that are already trees: a directory, or a SquashFS file
// (read with libsquashfs, no mount needed). Each member is handed to a
// callback in pre-order (a directory before its contents), with its data.
#pragma once

#include <functional>
#include <string>

#include "chute/member.hpp"
#include "chute/sink.hpp"

namespace chute::walk {

using Visit = std::function<void(const member::Member&, sink::Data*)>;

// Members of directory PATH; hard links (same inode) after the first path
// are given as kHardlink to it.
void directory(const std::string& path, bool xattrs, const Visit& visit);

// Members of SquashFS file PATH.
void squash(const std::string& path, bool xattrs, const Visit& visit);

}  // namespace chute::walk
