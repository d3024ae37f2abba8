// ch-convert: turn an image from one form into another (tarball,
// docker-archive, OCI layout, directory, SquashFS), streaming, safely and
// atomically. See doc/ch-convert.1.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "chute/sink.hpp"

namespace chute::convert {

enum class Format { kNone, kTar, kDocker, kOci, kDir, kSquash };

std::string_view format_name(Format f);
// "tar", "docker-archive" (or "docker"), "oci" (or "oci-archive",
// "oci-dir"), "dir", "squash"; kNone for anything else.
Format parse_format(std::string_view s);
// Charliecloud's inference from a name: *.sqfs etc. -> squash, *.tar,
// *.t?z, *.tar.? and *.tar.?? -> tar, "/..." or "./..." -> dir.
Format format_from_name(std::string_view name);

struct Options {
  std::string in;
  std::string out;
  Format in_fmt = Format::kNone;
  Format out_fmt = Format::kNone;
  bool dry_run = false;
  bool no_clobber = false;
  bool xattrs = true;
  int verbosity = 0;
  sink::SquashOptions squash;
};

struct Parsed {
  enum class Action { kRun, kHelp, kVersion };
  Action action = Action::kRun;
  Options opts;
};

// Throws Error (exit 31) for bad usage.
Parsed parse_cli(int argc, char** argv);
std::string usage();
std::string help();

// The input's format from its content (and kind: directory or file).
Format detect_input(const std::string& path);

// Convert; throws on failure (the partial output is gone by then). A
// conversion interrupted by SIGINT, SIGTERM or SIGHUP throws Interrupted.
void run(const Options& o);

class Interrupted : public std::exception {
public:
  explicit Interrupted(int sig) : sig_(sig) {}
  int signal() const { return sig_; }
  const char* what() const noexcept override { return "interrupted"; }

private:
  int sig_;
};

}  // namespace chute::convert
