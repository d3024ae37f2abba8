// Unit tests for the pure half of --join: peer count, tag, fingerprint.
#include <catch2/catch.hpp>

#include <string>

#include "chute/error.hpp"
#include "chute/join.hpp"
#include "chute/plan.hpp"

using namespace chute;
using Catch::Contains;

namespace {

Environment env_of(std::initializer_list<const char*> vars) {
  Environment e;
  for (const char* v : vars) {
    std::string_view s(v);
    auto eq = s.find('=');
    e.set(s.substr(0, eq), s.substr(eq + 1));
  }
  return e;
}

Plan plan_with_bind(const std::string& dst) {
  Plan p;
  p.image.path = "/img";
  p.ids = {1000, 1000, 1000, 1000};
  p.passwd = "x";
  p.mounts.push_back({Mount::Kind::kBind, Mount::Need::kRequired, "/dev", "/dev", false, true,
                      "default bind"});
  if (!dst.empty())
    p.mounts.push_back({Mount::Kind::kBind, Mount::Need::kMakeDst, "/data", dst, false, true,
                        "--bind"});
  return p;
}

}  // namespace

TEST_CASE("join count: --join-ct wins and must be a whole positive number") {
  auto e = env_of({"OMPI_COMM_WORLD_LOCAL_SIZE=8"});
  CHECK(join::resolve_count(std::string("3"), e).first == 3);
  CHECK(join::resolve_count(std::string("3"), e).second == "--join-ct");
  CHECK_THROWS_WITH(join::resolve_count(std::string("0"), e), Contains("positive integer"));
  CHECK_THROWS_WITH(join::resolve_count(std::string("-2"), e), Contains("positive integer"));
  CHECK_THROWS_WITH(join::resolve_count(std::string("4x"), e), Contains("\"4x\""));
  CHECK_THROWS_WITH(join::resolve_count(std::string(""), e), Contains("--join-ct"));
}

TEST_CASE("join count: variables in Charliecloud's order, trailing text allowed") {
  CHECK(join::resolve_count(std::nullopt, env_of({"OMPI_COMM_WORLD_LOCAL_SIZE=6",
                                                  "SLURM_STEP_TASKS_PER_NODE=4",
                                                  "SLURM_CPUS_ON_NODE=2"})).first == 6);
  CHECK(join::resolve_count(std::nullopt, env_of({"SLURM_STEP_TASKS_PER_NODE=4(x2)",
                                                  "SLURM_CPUS_ON_NODE=2"})).first == 4);
  CHECK(join::resolve_count(std::nullopt, env_of({"SLURM_CPUS_ON_NODE=12"})).first == 12);
  CHECK_THROWS_WITH(join::resolve_count(std::nullopt, env_of({"SLURM_CPUS_ON_NODE=none"})),
                    Contains("SLURM_CPUS_ON_NODE"));
  CHECK_THROWS_WITH(join::resolve_count(std::nullopt, env_of({"SLURM_CPUS_ON_NODE=0"})),
                    Contains("positive"));
  CHECK_THROWS_WITH(join::resolve_count(std::nullopt, env_of({"HOME=/x"})),
                    Contains("can't find peer count"));
}

TEST_CASE("join count: this node's entry of Slurm's tasks-per-node list") {
  CHECK(join::tasks_on_node("2(x3),1", 0) == 2);
  CHECK(join::tasks_on_node("2(x3),1", 2) == 2);
  CHECK(join::tasks_on_node("2(x3),1", 3) == 1);
  CHECK_FALSE(join::tasks_on_node("2(x3),1", 4));
  CHECK(join::tasks_on_node("5", 0) == 5);
  CHECK(join::tasks_on_node("4,3,2", 1) == 3);
  CHECK_FALSE(join::tasks_on_node("4(x", 0));
  CHECK_FALSE(join::tasks_on_node("4;3", 1));
  CHECK_FALSE(join::tasks_on_node("0", 0));
  auto e = env_of({"SLURM_STEP_TASKS_PER_NODE=4(x2),3", "SLURM_NODEID=2"});
  auto [n, from] = join::resolve_count(std::nullopt, e);
  CHECK(n == 3);
  CHECK_THAT(from, Contains("node 2"));
  // A node id past the list: the first entry, as Charliecloud reads it.
  CHECK(join::resolve_count(std::nullopt, env_of({"SLURM_STEP_TASKS_PER_NODE=4(x2),3",
                                                  "SLURM_NODEID=9"})).first == 4);
}

TEST_CASE("join tag: option, then Slurm's job step, then the parent process") {
  auto slurm = env_of({"SLURM_STEP_ID=0", "SLURM_JOB_ID=4711"});
  CHECK(join::resolve_tag(std::string("mine"), slurm, 99).first == "mine");
  CHECK(join::resolve_tag(std::nullopt, slurm, 99).first == "4711.0");
  CHECK(join::resolve_tag(std::nullopt, env_of({"SLURM_STEP_ID=3"}), 99).first == "3");
  CHECK(join::resolve_tag(std::nullopt, env_of({}), 99).first == "99");
  CHECK_THROWS_WITH(join::resolve_tag(std::nullopt, env_of({"SLURM_STEP_ID=a/b"}), 1),
                    Contains("SLURM_STEP_ID") && Contains("'/'"));
}

TEST_CASE("join tag: no path, space or control characters, bounded length") {
  CHECK_NOTHROW(join::check_tag("job-12.step_3:a+b@c%d=e,f"));
  for (const char* bad : {"", "a/b", "..", "a b", "a\nb", "a\tb", "a*b", "$x", "a\\b"}) {
    if (std::string_view(bad) == "..") {
      CHECK_NOTHROW(join::check_tag(bad));  // no path is made from a tag
      continue;
    }
    CHECK_THROWS_AS(join::check_tag(bad), Error);
  }
  CHECK_NOTHROW(join::check_tag(std::string(64, 'a')));
  CHECK_THROWS_WITH(join::check_tag(std::string(65, 'a')), Contains("64"));
}

TEST_CASE("join socket name carries the user and the tag") {
  CHECK(join::socket_name(1000, "7.0") == "chute-join/1000/7.0");
  CHECK(join::socket_name(1001, "7.0") != join::socket_name(1000, "7.0"));
}

TEST_CASE("join fingerprint: same plan, same text; a difference is named") {
  const Plan a = plan_with_bind("/mnt/data");
  CHECK(join::fingerprint(a, 1, 2) == join::fingerprint(a, 1, 2));
  CHECK(join::first_difference(join::fingerprint(a, 1, 2), join::fingerprint(a, 1, 2)).empty());

  // Another image file at the same path (rebuilt between runs).
  auto d = join::first_difference(join::fingerprint(a, 1, 3), join::fingerprint(a, 1, 2));
  CHECK_THAT(d, Contains("image:") && Contains("inode 3") && Contains("inode 2"));

  // Another bind destination.
  d = join::first_difference(join::fingerprint(plan_with_bind("/mnt/other"), 1, 2),
                             join::fingerprint(a, 1, 2));
  CHECK_THAT(d, Contains("/mnt/other here") && Contains("/mnt/data there"));

  // A bind the container lacks.
  d = join::first_difference(join::fingerprint(a, 1, 2),
                             join::fingerprint(plan_with_bind(""), 1, 2));
  CHECK_THAT(d, Contains("/data on /mnt/data"));

  Plan u = a;
  u.ids.container_uid = 0;
  d = join::first_difference(join::fingerprint(u, 1, 2), join::fingerprint(a, 1, 2));
  CHECK(d == "--uid: 0 here, 1000 there");

  Plan w = a;
  w.write_fake = "12%";
  CHECK_THAT(join::first_difference(join::fingerprint(w, 1, 2), join::fingerprint(a, 1, 2)),
             Contains("--write-fake: 12% here, no there"));

  // Per-process things are not part of it.
  Plan e = a;
  e.argv = {"other"};
  e.cwd = "/tmp";
  e.verbosity = 2;
  CHECK(join::fingerprint(e, 1, 2) == join::fingerprint(a, 1, 2));
}

TEST_CASE("join fingerprint: what --gpu, --device and --mpi inject is part of it") {
  Plan a = plan_with_bind("/mnt");
  Plan b = a;
  b.inject.libraries.push_back({"/host/lib/libcuda.so.1", "libcuda.so.1", "--gpu (nvidia)"});
  b.inject.binds.push_back({"/dev/nvidia0", "/dev/nvidia0", false, true, "--gpu (nvidia)"});
  const std::string fb = join::fingerprint(b, 1, 2);
  CHECK_THAT(fb, Contains("injected 1: lib libcuda.so.1 /host/lib/libcuda.so.1"));
  CHECK_THAT(fb, Contains("injected 2: bind /dev/nvidia0 /dev/nvidia0"));
  CHECK_THAT(fb, Contains("injected: 2"));
  auto d = join::first_difference(join::fingerprint(a, 1, 2), fb);
  CHECK_THAT(d, Contains("injected"));
  Plan c = b;
  c.inject.libraries[0].host = "/other/libcuda.so.1";
  CHECK_THAT(join::first_difference(join::fingerprint(c, 1, 2), fb), Contains("/other/libcuda.so.1"));
}
