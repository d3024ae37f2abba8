// Unit tests for ch-convert's command line and format inference.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "chute/convert.hpp"
#include "chute/error.hpp"

using namespace chute;
using convert::Format;

namespace {

convert::Parsed parse(std::vector<std::string> args) {
  args.insert(args.begin(), "ch-convert");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return convert::parse_cli(static_cast<int>(args.size()), argv.data());
}

}  // namespace

TEST_CASE("formats from names, as Charliecloud infers them", "[convert]") {
  CHECK(convert::format_from_name("img.sqfs") == Format::kSquash);
  CHECK(convert::format_from_name("/x/img.squashfs") == Format::kSquash);
  CHECK(convert::format_from_name("img.squash") == Format::kSquash);
  CHECK(convert::format_from_name("img.sqsh") == Format::kSquash);
  CHECK(convert::format_from_name("img.tar") == Format::kTar);
  CHECK(convert::format_from_name("img.tar.gz") == Format::kTar);
  CHECK(convert::format_from_name("img.tgz") == Format::kTar);
  CHECK(convert::format_from_name("img.txz") == Format::kTar);
  CHECK(convert::format_from_name("img.tar.xz") == Format::kTar);
  CHECK(convert::format_from_name("img.tar.Z") == Format::kTar);
  CHECK(convert::format_from_name("img.tar.zst") == Format::kTar);
  CHECK(convert::format_from_name("img.tar.bz2") == Format::kTar);
  CHECK(convert::format_from_name("./img") == Format::kDir);
  CHECK(convert::format_from_name("/var/tmp/img.d") == Format::kDir);
  CHECK(convert::format_from_name("img") == Format::kDir);
  CHECK(convert::format_from_name("img/") == Format::kDir);
  CHECK(convert::format_from_name("img.zip") == Format::kNone);
  CHECK(convert::format_from_name("img.tar.gzip") == Format::kNone);
}

TEST_CASE("format names", "[convert]") {
  CHECK(convert::parse_format("docker") == Format::kDocker);
  CHECK(convert::parse_format("docker-archive") == Format::kDocker);
  CHECK(convert::parse_format("oci-archive") == Format::kOci);
  CHECK(convert::parse_format("squash") == Format::kSquash);
  CHECK(convert::parse_format("ch-image") == Format::kNone);
  CHECK(convert::format_name(Format::kDocker) == "docker-archive");
}

TEST_CASE("command line", "[convert]") {
  auto p = parse({"-i", "tar", "-o", "squash", "-n", "--no-clobber", "-q", "-q", "a", "b"});
  CHECK(p.action == convert::Parsed::Action::kRun);
  CHECK(p.opts.in_fmt == Format::kTar);
  CHECK(p.opts.out_fmt == Format::kSquash);
  CHECK(p.opts.dry_run);
  CHECK(p.opts.no_clobber);
  CHECK(p.opts.verbosity == -2);
  CHECK(p.opts.in == "a");
  CHECK(p.opts.out == "b");
  auto s = parse({"--squash-compress=gzip:9", "--squash-block-size=1M", "-j", "3", "--no-xattrs", "a", "b"});
  CHECK(s.opts.squash.compressor == "gzip");
  CHECK(s.opts.squash.level == 9);
  CHECK(s.opts.squash.block_size == (1u << 20));
  CHECK(s.opts.squash.jobs == 3);
  CHECK_FALSE(s.opts.xattrs);
  CHECK(parse({"--help"}).action == convert::Parsed::Action::kHelp);
  CHECK(parse({"--version"}).action == convert::Parsed::Action::kVersion);
}

TEST_CASE("bad command lines", "[convert]") {
  CHECK_THROWS_AS(parse({"a"}), Error);
  CHECK_THROWS_AS(parse({"a", "b", "c"}), Error);
  CHECK_THROWS_AS(parse({"-i", "bogus", "a", "b"}), Error);
  CHECK_THROWS_AS(parse({"-o", "docker", "a", "b"}), Error);
  CHECK_THROWS_AS(parse({"--squash-compress=brotli", "a", "b"}), Error);
  CHECK_THROWS_AS(parse({"--squash-compress=zstd:99", "a", "b"}), Error);
  CHECK_THROWS_AS(parse({"--squash-block-size=1000", "a", "b"}), Error);
  CHECK_THROWS_AS(parse({"--squash-block-size=2M", "a", "b"}), Error);
  CHECK_THROWS_AS(parse({"-j", "0", "a", "b"}), Error);
  CHECK_THROWS_AS(parse({"--frobnicate", "a", "b"}), Error);
  CHECK_THROWS_AS(parse({"-x", "a", "b"}), Error);
  CHECK_THROWS_AS(parse({"", "b"}), Error);
}

TEST_CASE("Charliecloud's spellings work", "[convert]") {
  auto p = parse({"--in-fmt", "tar", "--out-fmt=squash", "--tmp", "/scratch", "a", "b"});
  CHECK(p.opts.in_fmt == Format::kTar);
  CHECK(p.opts.out_fmt == Format::kSquash);
  auto q = parse({"-i=tar", "-o=dir", "a", "b"});
  CHECK(q.opts.in_fmt == Format::kTar);
  CHECK(q.opts.out_fmt == Format::kDir);
}
