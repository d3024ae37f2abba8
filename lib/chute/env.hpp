// The job's environment, built in Charliecloud's order: pure.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chute {

// An ordered NAME=VALUE list, as environ is.
class Environment {
public:
  Environment() = default;
  static Environment from_envp(const char* const* envp);

  std::optional<std::string_view> get(std::string_view name) const;
  void set(std::string_view name, std::string_view value);
  void unset(std::string_view name);
  // Remove every variable whose name matches GLOB (fnmatch, extended
  // patterns); returns how many were removed.
  size_t unset_matching(const std::string& glob);

  const std::vector<std::string>& entries() const { return entries_; }
  // NULL-terminated array pointing into this object, for execve(2).
  std::vector<char*> envp();

private:
  std::vector<std::string> entries_;
  std::vector<std::string>::iterator find(std::string_view name);
};

namespace env {

struct Var {
  std::string name;
  std::string value;
  bool operator==(const Var&) const = default;
};

// One change to apply, in command-line order.
struct Op {
  enum class Kind {
    kSet,         // VARS (one --set-env=K=V, or a host file read at parse time)
    kImageFile,   // bare --set-env / --set-env0: read /ch/environment in the image
    kUnset,       // --unset-env=GLOB
  };
  Kind kind = Kind::kSet;
  std::vector<Var> vars;
  char delim = '\n';      // kImageFile: record separator
  std::string glob;       // kUnset
};

// "NAME=VALUE", split at the first "="; one pair of single quotes around the
// whole value is removed. A NUL byte is an error (the variable would be cut
// there). WHERE names the source in errors ("FILE:LINE").
Var parse_assignment(std::string_view record, std::string_view where);

// Records separated by DELIM ('\n' or '\0'); empty records are skipped.
// A record longer than MAX_RECORD bytes is an error. SOURCE names the file
// in errors.
std::vector<Var> parse_records(std::string_view text, char delim, std::string_view source,
                               size_t max_record = SIZE_MAX);

// Charliecloud's expansion: VALUE is split on ":", each item "$NAME" is
// replaced by NAME's value, and an item whose variable is unset or empty is
// dropped together with its colon.
std::string expand(std::string_view value, const Environment& env);

// What the job's environment depends on besides the host's.
struct Plan {
  std::vector<Op> ops;
  bool expand = true;           // false with --env-no-expand
  std::optional<std::string> home;  // HOME: /home/$USER with --home, else decided in the image
};

inline constexpr std::string_view kRunningValue = "Weird Al Yankovic";

// Apply, in order: HOME, PATH (append /bin when it has no "/bin" entry),
// unset TMPDIR, the ops, CH_RUNNING. HOME_DEFAULT is the HOME to use without
// --home; READ_IMAGE_FILE returns the contents of /ch/environment.
// Warnings (PATH unset) go to WARN.
void fix(Environment& env, const Plan& plan, std::string_view home_default,
         const std::function<std::string()>& read_image_file,
         const std::function<void(std::string_view)>& warn);

}  // namespace env
}  // namespace chute
