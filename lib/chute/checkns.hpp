// ch-checkns: can this machine run chute, and if not, what to fix.
#pragma once

#include <string>
#include <vector>

namespace chute::checkns {

struct Result {
  enum class Status { kOk, kWarn, kFail };
  Status status = Status::kOk;
  std::string name;     // what was checked
  std::string detail;   // what was found, and what to do about it
  bool required = true; // chute can't run at all without it
};

// Run every check, each in a child process so that namespaces entered for
// one check don't affect the next. DEV_FUSE is the device to try.
std::vector<Result> run_all(const std::string& dev_fuse = "/dev/fuse");

// One line per result: "ok   NAME: DETAIL" / "WARN ..." / "FAIL ...".
std::string format(const Result& r);

}  // namespace chute::checkns
