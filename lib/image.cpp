#include "chute/image.hpp"

#include <fmt/core.h>

#include "chute/error.hpp"
#include "chute/log.hpp"
#include "chute/mount.hpp"

namespace chute::image {

Fd attach(const ImageRef& image, bool writable) {
  if (image.kind != ImageKind::kDirectory)
    throw Error(fmt::format("SquashFS images are not supported by this version: {}", image.arg));
  log::verbose("image: directory {}{}", image.path, writable ? " (writable)" : "");
  Fd root = mount::bind_self(image.path);
  if (!writable) mount::make_readonly(root.get(), image.path, true);
  return root;
}

}  // namespace chute::image
