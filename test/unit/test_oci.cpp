// Unit tests for chute::oci: digests, image indexes, manifests, docker-archive
// manifest.json, image configs, and the /ch files made from them.
#include <catch2/catch.hpp>

#include <string>

#include "chute/error.hpp"
#include "chute/oci.hpp"

using namespace chute;
using Catch::Contains;

namespace {
const std::string kHex(64, 'a');
const std::string kHex2 = std::string(63, 'b') + "c";
}  // namespace

TEST_CASE("digests are validated; path characters can't get through", "[oci]") {
  auto d = oci::parse_digest("sha256:" + kHex);
  CHECK(d.algorithm == "sha256");
  CHECK(d.blob_path() == "blobs/sha256/" + kHex);
  CHECK_THROWS_AS(oci::parse_digest("sha256:../../etc/passwd"), Error);
  CHECK_THROWS_AS(oci::parse_digest("sha256:" + std::string(64, 'A')), Error);  // uppercase
  CHECK_THROWS_AS(oci::parse_digest("sha256:" + kHex + "0"), Error);
  CHECK_THROWS_AS(oci::parse_digest("md5:" + std::string(32, 'a')), Error);
  CHECK_THROWS_AS(oci::parse_digest(kHex), Error);
  CHECK(oci::parse_digest("sha512:" + std::string(128, '0')).algorithm == "sha512");
}

TEST_CASE("blob paths name their digest", "[oci]") {
  CHECK(oci::digest_of_blob_path("blobs/sha256/" + kHex)->hex == kHex);
  CHECK_FALSE(oci::digest_of_blob_path(kHex + "/layer.tar"));
  CHECK_FALSE(oci::digest_of_blob_path("blobs/sha256/../x"));
}

TEST_CASE("the index entry for this machine is picked", "[oci]") {
  const std::string index = R"({"schemaVersion":2,"manifests":[
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)" + kHex +
                            R"(","size":10,"platform":{"os":"linux","architecture":"arm64"}},
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)" + kHex2 +
                            R"(","size":11,"platform":{"os":"linux","architecture":"amd64"}}]})";
  CHECK(oci::pick_manifest(index, "amd64").digest.hex == kHex2);
  CHECK(oci::pick_manifest(index, "arm64").digest.hex == kHex);
  CHECK(oci::pick_manifest(index, "arm64").size == 10ULL);
  CHECK_THROWS_WITH(oci::pick_manifest(index, "s390x"), Contains("linux/arm64, linux/amd64"));
  const std::string single = R"({"manifests":[{"digest":"sha256:)" + kHex + R"("}]})";
  CHECK(oci::pick_manifest(single, "s390x").digest.hex == kHex);
  CHECK_THROWS_AS(oci::pick_manifest(R"({"manifests":[]})", "amd64"), Error);
  CHECK_THROWS_AS(oci::pick_manifest("not json", "amd64"), Error);
  CHECK_THROWS_AS(oci::pick_manifest(R"({"manifests":[{"digest":"sha256:../../x"}]})", "amd64"), Error);
}

TEST_CASE("manifests", "[oci]") {
  const std::string m = R"({"schemaVersion":2,"config":{"digest":"sha256:)" + kHex +
                        R"(","size":5},"layers":[{"digest":"sha256:)" + kHex2 +
                        R"(","size":7,"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip"}]})";
  auto man = oci::parse_manifest(m);
  CHECK(man.config.digest.hex == kHex);
  REQUIRE(man.layers.size() == 1);
  CHECK(man.layers[0].size == 7ULL);
  CHECK_THROWS_AS(oci::parse_manifest(R"({"layers":[]})"), Error);
  CHECK_THROWS_AS(oci::parse_manifest(R"({"config":{"digest":"sha256:)" + kHex + R"("},"layers":{}})"), Error);
  CHECK_THROWS_WITH(oci::parse_manifest(R"({"mediaType":"application/vnd.oci.image.index.v1+json"})"),
                    Contains("image index"));
}

TEST_CASE("docker-archive manifest.json", "[oci]") {
  auto d = oci::parse_docker_manifest(
      R"([{"Config":"abc.json","RepoTags":["x:1"],"Layers":["l1/layer.tar","l2/layer.tar"]}])");
  CHECK(d.config == "abc.json");
  CHECK(d.layers.size() == 2);
  CHECK(d.tags == std::vector<std::string>{"x:1"});
  CHECK(d.images == 1);
  CHECK_THROWS_AS(oci::parse_docker_manifest("[]"), Error);
  CHECK_THROWS_AS(oci::parse_docker_manifest(R"([{"Layers":[]}])"), Error);
  CHECK_THROWS_AS(oci::parse_docker_manifest(R"([{"Config":"c","Layers":[1]}])"), Error);
  CHECK_THROWS_AS(oci::parse_docker_manifest("{"), Error);
}

TEST_CASE("image config to /ch/metadata.json and /ch/environment", "[oci]") {
  auto c = oci::parse_config(R"({"architecture":"amd64","config":{
      "Env":["PATH=/usr/bin:/bin","EMPTY=","HAS=equals=sign"],
      "WorkingDir":"/work","Entrypoint":["/bin/sh","-c"],"Cmd":["echo hi"]}})");
  CHECK(c.env.size() == 3);
  CHECK(c.cwd == "/work");
  CHECK(c.entrypoint == std::vector<std::string>{"/bin/sh", "-c"});
  CHECK(c.cmd == std::vector<std::string>{"echo hi"});
  CHECK(oci::environment_file(c) == "PATH=/usr/bin:/bin\nEMPTY=\nHAS=equals=sign\n");
  const std::string meta = oci::metadata_json(c);
  CHECK_THAT(meta, Contains(R"("cwd": "/work")"));
  CHECK_THAT(meta, Contains(R"("HAS": "equals=sign")"));
  CHECK_THAT(meta, Contains(R"("entrypoint": [)"));
  // Nulls are absent values, not errors.
  auto n = oci::parse_config(R"({"config":{"Env":null,"Cmd":null,"Entrypoint":null,"WorkingDir":null}})");
  CHECK(n.env.empty());
  CHECK(oci::environment_file(n).empty());
  CHECK_THROWS_AS(oci::parse_config(R"({"config":{"Env":"PATH=/bin"}})"), Error);
  CHECK_THROWS_AS(oci::parse_config("[]"), Error);
  // A value with a newline can't be one line of /ch/environment.
  auto nl = oci::parse_config(R"({"config":{"Env":["A=1\n2","B=2"]}})");
  CHECK(oci::environment_file(nl) == "B=2\n");
}
