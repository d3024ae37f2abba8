#include "chute/passwd.hpp"

#include <grp.h>
#include <nss.h>
#include <pwd.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <fmt/core.h>

namespace chute::passwd {

namespace {

// A field of a passwd/group line must not hold ":" or a newline, which would
// forge extra fields or lines.
std::string field(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c == ':' || c == '\n' || c == '\0') c = '_';
  return out;
}

}  // namespace

namespace {

// Without an nscd, glibc still tries its socket twice per lookup, which costs
// more than the lookups themselves. When the socket is absent, hand glibc the
// service lines of nsswitch.conf through __nss_configure_lookup(): that is
// the same configuration, parsed by glibc, with the nscd probe skipped.
void skip_absent_nscd() {
  if (::access("/var/run/nscd/socket", F_OK) == 0 || errno != ENOENT) return;
  FILE* f = std::fopen("/etc/nsswitch.conf", "re");
  if (f == nullptr) return;
  char* line = nullptr;
  size_t cap = 0;
  while (::getline(&line, &cap, f) > 0) {
    std::string_view l(line);
    if (auto hash = l.find('#'); hash != std::string_view::npos) l = l.substr(0, hash);
    for (const char* db : {"passwd", "group"}) {
      std::string_view d(db);
      if (!l.starts_with(d) || l.size() <= d.size() || l[d.size()] != ':') continue;
      std::string services(l.substr(d.size() + 1));
      while (!services.empty() && std::isspace(static_cast<unsigned char>(services.back())))
        services.pop_back();
      if (services.find_first_not_of(" \t") != std::string::npos)
        ::__nss_configure_lookup(db, services.c_str());
    }
  }
  std::free(line);
  std::fclose(f);
}

}  // namespace

HostNames lookup(uid_t uid, gid_t gid) {
  skip_absent_nscd();
  HostNames n;
  if (const struct passwd* p = ::getpwuid(uid)) {
    n.user = p->pw_name;
    n.gecos = p->pw_gecos != nullptr ? p->pw_gecos : "";
  }
  if (const struct group* g = ::getgrgid(gid)) n.group = g->gr_name;
  return n;
}

std::string passwd_text(uid_t uid, gid_t gid, const HostNames& names, const std::string& home) {
  std::string out;
  if (uid != 0) out += "root:x:0:0:root:/root:/bin/sh\n";
  if (uid != 65534) out += "nobody:x:65534:65534:nobody:/:/bin/false\n";
  if (names.user)
    out += fmt::format("{}:x:{}:{}:{}:{}:/bin/sh\n", field(*names.user), uid, gid,
                       field(names.gecos), field(home));
  else
    out += fmt::format("charlie:x:{}:{}:Charlie:{}:/bin/sh\n", uid, gid, field(home));
  return out;
}

std::string group_text(gid_t gid, const HostNames& names) {
  std::string out;
  if (gid != 0) out += "root:x:0:\n";
  if (gid != 65534) out += "nogroup:x:65534:\n";
  out += fmt::format("{}:x:{}:\n", names.group ? field(*names.group) : "charliegroup", gid);
  return out;
}

}  // namespace chute::passwd
