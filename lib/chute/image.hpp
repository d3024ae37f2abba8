// Making an image the tree a container will pivot into.
#pragma once

#include "chute/fd.hpp"
#include "chute/image_ref.hpp"

namespace chute::image {

// Attach IMAGE inside the current (private) mount namespace and return its
// root, opened O_PATH. Read-only unless WRITABLE.
Fd attach(const ImageRef& image, bool writable);

}  // namespace chute::image
