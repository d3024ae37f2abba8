// TempDir: a scratch directory for unit tests, with helpers to fill it.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace test_support {

// A directory made with mkdtemp(3) under /tmp, removed with its contents.
class TempDir {
public:
  explicit TempDir(std::string_view name = "tmp") {
    std::string tmpl = "/tmp/chute-unit-" + std::string(name) + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(std::string_view rel) const { return path_ + "/" + std::string(rel); }

  std::string mkdir(std::string_view rel) const {
    std::string p = *this / rel;
    std::filesystem::create_directories(p);
    return p;
  }
  std::string write(std::string_view rel, std::string_view data) const {
    std::string p = *this / rel;
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("open failed: " + p);
    ssize_t n = ::write(fd, data.data(), data.size());
    ::close(fd);
    if (n != static_cast<ssize_t>(data.size())) throw std::runtime_error("write failed: " + p);
    return p;
  }
  std::string symlink(std::string_view target, std::string_view rel) const {
    std::string p = *this / rel;
    if (::symlink(std::string(target).c_str(), p.c_str()) != 0)
      throw std::runtime_error("symlink failed: " + p);
    return p;
  }

private:
  std::string path_;
};

}  // namespace test_support
