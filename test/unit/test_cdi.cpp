// Unit tests for the CDI reader: specs in JSON and YAML, validation, spec
// directories, --device requests and the edits they resolve to.
#include <catch2/catch.hpp>

#include <fmt/core.h>

#include <string>
#include <vector>

#include "chute/cdi.hpp"
#include "chute/document.hpp"
#include "chute/error.hpp"
#include "temp_dir.hpp"

using namespace chute;
using Catch::Contains;
using Catch::StartsWith;
using test_support::TempDir;

namespace {

// A spec as nvidia-ctk writes it, trimmed: two GPUs, the "all" device, a
// spec-wide library mount and a hook.
const char* const kJson = R"({
  "cdiVersion": "0.6.0",
  "kind": "nvidia.com/gpu",
  "devices": [
    {
      "name": "0",
      "annotations": {"note": "ignored"},
      "containerEdits": {
        "deviceNodes": [
          {"path": "/dev/nvidia0", "type": "c", "major": 195, "minor": 0,
           "permissions": "rw"}
        ]
      }
    },
    {
      "name": "GPU-6a1b2c3d-0000-1111-2222-333344445555",
      "containerEdits": {
        "env": ["NVIDIA_GPU=1"],
        "deviceNodes": [
          {"path": "/dev/nvidia1", "hostPath": "/dev/nvidia1-host"}
        ]
      }
    },
    {
      "name": "all",
      "containerEdits": {
        "deviceNodes": [{"path": "/dev/nvidia0"}, {"path": "/dev/nvidia1"}]
      }
    }
  ],
  "containerEdits": {
    "env": ["NVIDIA_VISIBLE_DEVICES=void"],
    "deviceNodes": [{"path": "/dev/nvidiactl"}],
    "mounts": [
      {"hostPath": "/usr/lib/x86_64-linux-gnu/libcuda.so.535.104.05",
       "containerPath": "/usr/lib/x86_64-linux-gnu/libcuda.so.535.104.05",
       "options": ["ro", "nosuid", "nodev", "bind"]}
    ],
    "hooks": [
      {"hookName": "createContainer", "path": "/usr/bin/nvidia-ctk",
       "args": ["nvidia-ctk", "hook", "update-ldcache", "--folder", "/usr/lib/x86_64-linux-gnu"],
       "env": ["LC_ALL=C"], "timeout": 10}
    ],
    "futureEdit": {"anything": [1, 2, 3]}
  },
  "futureField": true
})";

const char* const kYaml = R"(---
cdiVersion: "0.6.0"
kind: nvidia.com/gpu
devices:
  - name: "0"
    annotations:
      note: ignored
    containerEdits:
      deviceNodes:
        - path: /dev/nvidia0
          type: c
          major: 195
          minor: 0
          permissions: rw
  - name: GPU-6a1b2c3d-0000-1111-2222-333344445555
    containerEdits:
      env: [NVIDIA_GPU=1]
      deviceNodes:
        - path: /dev/nvidia1
          hostPath: /dev/nvidia1-host
  - name: all
    containerEdits:
      deviceNodes:
        - path: /dev/nvidia0
        - path: /dev/nvidia1
containerEdits:
  env:
    - NVIDIA_VISIBLE_DEVICES=void
  deviceNodes:
    - path: /dev/nvidiactl
  mounts:
    - hostPath: /usr/lib/x86_64-linux-gnu/libcuda.so.535.104.05
      containerPath: /usr/lib/x86_64-linux-gnu/libcuda.so.535.104.05
      options: [ro, nosuid, nodev, bind]
  hooks:
    - hookName: createContainer
      path: /usr/bin/nvidia-ctk
      args: [nvidia-ctk, hook, update-ldcache, --folder, /usr/lib/x86_64-linux-gnu]
      env: [LC_ALL=C]
      timeout: 10
  futureEdit:
    anything: [1, 2, 3]
futureField: true
)";

cdi::Spec parse_text(std::string_view text, std::string_view file = "x.json") {
  return cdi::parse(doc::parse(text, file), file);
}

// A small valid spec of KIND with devices NAMES, each with one device node
// /dev/KINDCLASS-NAME and the spec-wide env FROM=FILE-TAG.
std::string small_spec(std::string_view kind, std::vector<std::string> names,
                       std::string_view tag) {
  std::string devices;
  for (const auto& n : names) {
    if (!devices.empty()) devices += ",";
    devices +=
        fmt::format(R"({{"name": "{}", "containerEdits": {{"env": ["DEV={}-{}"]}}}})", n, tag, n);
  }
  return fmt::format(R"({{"cdiVersion": "0.5.0", "kind": "{}", "devices": [{}],
                         "containerEdits": {{"env": ["FROM={}"]}}}})",
                     kind, devices, tag);
}

cdi::Request req(std::string_view text) { return cdi::parse_request(text); }

}  // namespace

TEST_CASE("cdi parse: a realistic spec, in JSON and in YAML alike") {
  cdi::Spec j = parse_text(kJson, "nvidia.json");
  cdi::Spec y = parse_text(kYaml, "nvidia.yaml");
  CHECK(j.file == "nvidia.json");
  CHECK(y.file == "nvidia.yaml");
  y.file = j.file;
  CHECK(j == y);

  CHECK(j.version == "0.6.0");
  CHECK(j.kind == "nvidia.com/gpu");
  REQUIRE(j.devices.size() == 3);
  CHECK(j.devices[0].name == "0");
  CHECK(j.devices[1].name == "GPU-6a1b2c3d-0000-1111-2222-333344445555");
  CHECK(j.devices[2].name == "all");

  const auto& n0 = j.devices[0].edits.device_nodes.at(0);
  CHECK(n0.path == "/dev/nvidia0");
  CHECK(n0.host_path == "/dev/nvidia0");  // the default: the same path
  CHECK(n0.type == "c");
  CHECK(n0.permissions == "rw");
  const auto& n1 = j.devices[1].edits.device_nodes.at(0);
  CHECK(n1.host_path == "/dev/nvidia1-host");
  CHECK_FALSE(n1.type);
  CHECK_FALSE(n1.permissions);
  CHECK(j.devices[1].edits.env == std::vector<std::string>{"NVIDIA_GPU=1"});

  REQUIRE(j.edits.mounts.size() == 1);
  CHECK(j.edits.mounts[0].options == std::vector<std::string>{"ro", "nosuid", "nodev", "bind"});
  CHECK(j.edits.mounts[0].readonly());
  CHECK_FALSE(j.edits.mounts[0].type);
  REQUIRE(j.edits.hooks.size() == 1);
  CHECK(j.edits.hooks[0].hook_name == "createContainer");
  CHECK(j.edits.hooks[0].path == "/usr/bin/nvidia-ctk");
  CHECK(j.edits.hooks[0].args.size() == 5);
  CHECK(j.edits.hooks[0].env == std::vector<std::string>{"LC_ALL=C"});
  CHECK(j.edits.env == std::vector<std::string>{"NVIDIA_VISIBLE_DEVICES=void"});
}

TEST_CASE("cdi parse: nulls are absent, empty optional strings are unset, lone strings are lists") {
  auto s = parse_text(R"(
cdiVersion: 1.0.0
kind: example.com/fpga
containerEdits:
devices:
  - name: a
    containerEdits:
      env: ONE=1
      deviceNodes:
        - path: /dev/fpga0
          hostPath: ""
          type: ""
      mounts:
        - hostPath: /opt/fpga
          containerPath: /opt/fpga
          options: ro
          type: bind
      hooks:
)",
                      "x.yaml");
  CHECK(s.edits == cdi::Edits{});
  const auto& e = s.devices.at(0).edits;
  CHECK(e.env == std::vector<std::string>{"ONE=1"});
  CHECK(e.device_nodes.at(0).host_path == "/dev/fpga0");
  CHECK_FALSE(e.device_nodes.at(0).type);
  CHECK(e.mounts.at(0).options == std::vector<std::string>{"ro"});
  CHECK(e.mounts.at(0).type == "bind");
  CHECK(e.hooks.empty());
  // A device with no containerEdits at all has no edits.
  auto bare = parse_text(R"({"cdiVersion": "0.3.0", "kind": "a.b/c", "devices": [{"name": "x"}]})");
  CHECK(bare.devices.at(0).edits == cdi::Edits{});
}

TEST_CASE("cdi parse: every rule broken is an error naming the file and the field") {
  // Each case: a base spec with one change (a JSON pointer and its new
  // value, or a removal), and what the message must say.
  struct Case {
    const char* pointer;
    const char* value;  // JSON text; nullptr: remove the field
    const char* message;
  };
  const Case cases[] = {
      {"/cdiVersion", nullptr, "x.json: no cdiVersion"},
      {"/cdiVersion", R"("2.0.0")", "x.json: cdiVersion: \"2.0.0\" is not a CDI version"},
      {"/cdiVersion", R"("0.6")", "x.json: cdiVersion: \"0.6\" is not"},
      {"/cdiVersion", R"("0.6.0-rc1")", "x.json: cdiVersion: "},
      {"/cdiVersion", R"("v0.6.0")", "x.json: cdiVersion: "},
      {"/cdiVersion", R"("")", "x.json: cdiVersion: empty"},
      {"/cdiVersion", R"([1])", "x.json: cdiVersion: expected a string"},
      {"/kind", nullptr, "x.json: no kind"},
      {"/kind", R"("gpu")", "x.json: kind: \"gpu\" is not of the form VENDOR/CLASS"},
      {"/kind", R"("nvidia.com/gpu/x")", "x.json: kind: \"gpu/x\" is not a valid device class"},
      {"/kind", R"("nvidia.com/")", "x.json: kind: \"\" is not a valid device class"},
      {"/kind", R"("/gpu")", "x.json: kind: \"\" is not a valid vendor"},
      {"/kind", R"("-nvidia.com/gpu")", "x.json: kind: \"-nvidia.com\" is not a valid vendor"},
      {"/kind", R"("nvidia com/gpu")", "is not a valid vendor"},
      {"/kind", R"({"a": 1})", "x.json: kind: expected a string"},
      {"/devices", nullptr, "x.json: no devices"},
      {"/devices", R"([])", "x.json: devices: empty"},
      {"/devices", R"({"name": "0"})", "x.json: devices: expected a list"},
      {"/devices/1", R"("gpu1")", "x.json: devices[1]: expected a mapping"},
      {"/devices/1/name", nullptr, "x.json: devices[1]: no name"},
      {"/devices/1/name", R"("0")", "x.json: devices[1].name: \"0\" is defined twice"},
      {"/devices/1/name", R"("_gpu")",
       "x.json: devices[1].name: \"_gpu\" is not a valid device name"},
      {"/devices/1/name", R"("gpu/1")", "devices[1].name: \"gpu/1\" is not a valid device name"},
      {"/devices/1/name", R"("gpu=1")", "devices[1].name: \"gpu=1\" is not a valid device name"},
      {"/devices/1/containerEdits", R"(["x"])",
       "x.json: devices[1].containerEdits: expected a mapping"},
      {"/devices/0/containerEdits/deviceNodes/0/path", nullptr,
       "x.json: devices[0].containerEdits.deviceNodes[0]: no path"},
      {"/devices/0/containerEdits/deviceNodes/0/path", R"("dev/nvidia0")",
       "x.json: devices[0].containerEdits.deviceNodes[0].path: \"dev/nvidia0\" is not an absolute"},
      {"/devices/0/containerEdits/deviceNodes/0/hostPath", R"("nvidia0")",
       "x.json: devices[0].containerEdits.deviceNodes[0].hostPath: \"nvidia0\" is not an absolute"},
      {"/devices/0/containerEdits/deviceNodes/0/type", R"("x")",
       "deviceNodes[0].type: \"x\" is not a device type"},
      {"/devices/0/containerEdits/deviceNodes/0/permissions", R"("rwx")",
       "deviceNodes[0].permissions: \"rwx\" is not made of r, w and m"},
      {"/devices/0/containerEdits/deviceNodes/0/major", R"("195a")",
       "x.json: devices[0].containerEdits.deviceNodes[0].major: expected an integer"},
      {"/devices/0/containerEdits/deviceNodes/0/minor", R"(1.5)",
       "deviceNodes[0].minor: expected an integer"},
      {"/devices/0/containerEdits/deviceNodes", R"({"path": "/dev/x"})",
       "x.json: devices[0].containerEdits.deviceNodes: expected a list"},
      {"/containerEdits/env/0", R"("NOVALUE")",
       "x.json: containerEdits.env[0]: \"NOVALUE\" is not of the form NAME=VALUE"},
      {"/containerEdits/env/0", R"("=x")",
       "x.json: containerEdits.env[0]: \"=x\" is not of the form"},
      {"/containerEdits/env/0", R"({"A": "b"})",
       "x.json: containerEdits.env[0]: expected a string"},
      {"/containerEdits/mounts/0/hostPath", nullptr,
       "x.json: containerEdits.mounts[0]: no hostPath"},
      {"/containerEdits/mounts/0/hostPath", R"("lib")",
       "x.json: containerEdits.mounts[0].hostPath: \"lib\" is not an absolute path"},
      {"/containerEdits/mounts/0/containerPath", nullptr,
       "x.json: containerEdits.mounts[0]: no containerPath"},
      {"/containerEdits/mounts/0/containerPath", R"("./lib")",
       "x.json: containerEdits.mounts[0].containerPath: \"./lib\" is not an absolute path"},
      {"/containerEdits/mounts/0/options", R"([["ro"]])",
       "x.json: containerEdits.mounts[0].options[0]: expected a string"},
      {"/containerEdits/mounts/0/type", R"(true)",
       "containerEdits.mounts[0].type: expected a string"},
      {"/containerEdits/hooks/0/hookName", nullptr, "x.json: containerEdits.hooks[0]: no hookName"},
      {"/containerEdits/hooks/0/path", nullptr, "x.json: containerEdits.hooks[0]: no path"},
      {"/containerEdits/hooks/0/path", R"("nvidia-ctk")",
       "x.json: containerEdits.hooks[0].path: \"nvidia-ctk\" is not an absolute path"},
      {"/containerEdits/hooks/0/args", R"({"0": "x"})",
       "containerEdits.hooks[0].args: expected a string"},
      {"/containerEdits/hooks/0/env/0", R"("LC_ALL")",
       "containerEdits.hooks[0].env[0]: \"LC_ALL\" is not of the form NAME=VALUE"},
      {"/containerEdits/hooks/0/timeout", R"(0)",
       "x.json: containerEdits.hooks[0].timeout: not positive"},
      {"/containerEdits/hooks/0/timeout", R"("soon")",
       "x.json: containerEdits.hooks[0].timeout: expected an integer"},
      {"/containerEdits", R"("none")", "x.json: containerEdits: expected a mapping"},
      {"/containerEdits/mounts/0/hostPath", R"("/lib\u0000/x")",
       "containerEdits.mounts[0].hostPath: contains a NUL byte"},
  };
  const doc::Value base = doc::parse(kJson, "x.json");
  for (const auto& c : cases) {
    INFO(c.pointer << " = " << (c.value ? c.value : "(removed)"));
    doc::Value d = base;
    const doc::Value::json_pointer ptr(c.pointer);
    if (c.value)
      d[ptr] = doc::Value::parse(c.value);
    else
      d[ptr.parent_pointer()].erase(ptr.back());
    CHECK_THROWS_AS(cdi::parse(d, "x.json"), Error);
    CHECK_THROWS_WITH(cdi::parse(d, "x.json"), Contains(c.message));
  }
  CHECK_THROWS_WITH(cdi::parse(doc::Value::array(), "x.json"),
                    StartsWith("x.json: not a CDI spec"));
  CHECK_THROWS_WITH(parse_text("just text", "x.yaml"), StartsWith("x.yaml: not a CDI spec"));
}

TEST_CASE("cdi parse: accepted names and versions") {
  auto one = [](std::string_view version, std::string_view kind, std::string_view name) {
    return parse_text(fmt::format(
        R"({{"cdiVersion": "{}", "kind": "{}", "devices": [{{"name": "{}"}}]}})", version, kind,
        name));
  };
  for (const char* v : {"0.3.0", "0.8.0", "1.0.0", "1.1.10"}) {
    INFO(v);
    CHECK(one(v, "a.com/b", "x").version == v);
  }
  for (const char* kind :
       {"vendor.com/foo", "foo.bar.baz/foo-bar123.B_az", "amd.com/gpu", "Example_1.org/c", "a/b"}) {
    INFO(kind);
    CHECK(one("0.6.0", kind, "x").kind == kind);
  }
  for (const char* name : {"0", "all", "GPU-1234abcd", "mig:0.1", "a_b-c.d:e"}) {
    INFO(name);
    CHECK(one("0.6.0", "a.com/b", name).devices.at(0).name == name);
  }
  // A YAML number as the device name arrives as a string; a JSON one is
  // converted.
  const auto numbered =
      parse_text(R"({"cdiVersion": "0.6.0", "kind": "a.com/b", "devices": [{"name": 3}]})");
  CHECK(numbered.devices.at(0).name == "3");
}

TEST_CASE("cdi parse: limits against hostile input") {
  auto with_devices = [](size_t n) {
    std::string devices;
    for (size_t i = 0; i < n; ++i)
      devices += fmt::format(R"({}{{"name": "d{}"}})", i ? "," : "", i);
    return fmt::format(R"({{"cdiVersion": "0.6.0", "kind": "a.com/b", "devices": [{}]}})", devices);
  };
  CHECK(parse_text(with_devices(4096)).devices.size() == 4096);
  CHECK_THROWS_WITH(parse_text(with_devices(4097)), Contains("x.json: devices: more than 4096"));

  auto with_env = [](size_t n) {
    std::string env;
    for (size_t i = 0; i < n; ++i) env += fmt::format(R"({}"V{}=1")", i ? "," : "", i);
    return fmt::format(R"({{"cdiVersion": "0.6.0", "kind": "a.com/b",
                            "devices": [{{"name": "x", "containerEdits": {{"env": [{}]}}}}]}})",
                       env);
  };
  CHECK(parse_text(with_env(4096)).devices.at(0).edits.env.size() == 4096);
  CHECK_THROWS_WITH(parse_text(with_env(4097)),
                    Contains("devices[0].containerEdits.env: more than 4096 entries"));

  const std::string long_path = "/" + std::string(4096, 'a');
  CHECK_THROWS_WITH(
      parse_text(fmt::format(R"({{"cdiVersion": "0.6.0", "kind": "a.com/b",
                                  "devices": [{{"name": "x", "containerEdits":
                                    {{"deviceNodes": [{{"path": "{}"}}]}}}}]}})",
                             long_path)),
      Contains("devices[0].containerEdits.deviceNodes[0].path: longer than 4096 bytes"));
}

TEST_CASE("cdi mounts: read-only when 'ro' is not undone by a later 'rw'") {
  cdi::MountEdit m;
  CHECK_FALSE(m.readonly());
  m.options = {"nosuid", "ro", "bind"};
  CHECK(m.readonly());
  m.options = {"ro", "rw"};
  CHECK_FALSE(m.readonly());
  m.options = {"rw", "ro"};
  CHECK(m.readonly());
  m.options = {"rbind", "nodev"};
  CHECK_FALSE(m.readonly());
}

TEST_CASE("cdi edits: add appends each kind in order") {
  cdi::Edits a, b;
  a.env = {"A=1"};
  a.mounts = {{"/h1", "/c1", {}, {}}};
  b.env = {"B=2"};
  b.device_nodes = {{"/dev/x", "/dev/x", {}, {}}};
  b.mounts = {{"/h2", "/c2", {"ro"}, {}}};
  b.hooks = {{"createContainer", "/bin/h", {}, {}}};
  a.add(b);
  CHECK(a.env == std::vector<std::string>{"A=1", "B=2"});
  CHECK(a.device_nodes.size() == 1);
  REQUIRE(a.mounts.size() == 2);
  CHECK(a.mounts[0].container_path == "/c1");
  CHECK(a.mounts[1].container_path == "/c2");
  CHECK(a.hooks.size() == 1);
}

TEST_CASE("cdi requests: qualified names, all, files, and the rest refused") {
  auto r = req("nvidia.com/gpu=0");
  CHECK(r.kind == "nvidia.com/gpu");
  CHECK(r.name == "0");
  CHECK(r.file.empty());
  r = req("nvidia.com/gpu=GPU-6a1b2c3d-0000-1111");
  CHECK(r.name == "GPU-6a1b2c3d-0000-1111");
  r = req("vendor.example/mig=0:1");
  CHECK(r.kind == "vendor.example/mig");
  CHECK(r.name == "0:1");
  r = req("nvidia.com/gpu=all");
  CHECK(r.kind == "nvidia.com/gpu");
  CHECK(r.name == "all");
  // A kind alone, as Charliecloud takes it: all of its devices.
  r = req("nvidia.com/gpu");
  CHECK(r.kind == "nvidia.com/gpu");
  CHECK(r.name == "all");
  CHECK(r.file.empty());

  for (const char* path : {"/etc/cdi/nvidia.yaml", "./gpu.json", "../specs/gpu.yml",
                           "specs/gpu.yaml", ".hidden.json", "/odd=name/spec.json"}) {
    INFO(path);
    r = req(path);
    CHECK(r.file == path);
    CHECK(r.kind.empty());
    CHECK(r.name.empty());
  }

  struct Bad {
    const char* text;
    const char* message;
  };
  const Bad bad[] = {
      {"", "--device: empty"},
      {"gpu0", "--device: \"gpu0\": expected VENDOR/CLASS=NAME"},
      {"nvidia.com=0",
       "--device: \"nvidia.com=0\": \"nvidia.com\" is not of the form VENDOR/CLASS"},
      {"nvidia.com/gpu=", "--device: \"nvidia.com/gpu=\": \"\" is not a valid device name"},
      {"nvidia.com/gpu=a b", "\"a b\" is not a valid device name"},
      {"nvidia.com/gpu=0=1", "\"0=1\" is not a valid device name"},
      {"nvidia.com/gpu/x=0",
       "--device: \"nvidia.com/gpu/x=0\": \"gpu/x\" is not a valid device class"},
      {"nvidia.com/=0", "\"\" is not a valid device class"},
      {"=0", "--device: \"=0\": \"\" is not of the form VENDOR/CLASS"},
      {"nvi$dia.com/gpu=0", "\"nvi$dia.com\" is not a valid vendor"},
  };
  for (const auto& b : bad) {
    INFO(b.text);
    CHECK_THROWS_AS(req(b.text), Error);
    CHECK_THROWS_WITH(req(b.text), StartsWith("--device: ") && Contains(b.message));
  }
  CHECK_THROWS_WITH(req(std::string("nvidia.com/gpu=0\0x", 18)), Contains("NUL"));
  CHECK_THROWS_WITH(req("a.com/b=" + std::string(5000, 'x')), Contains("longer than 4096 bytes"));
}

TEST_CASE("cdi resolve: spec-wide edits once per spec, before its first device, in request order") {
  const std::vector<cdi::Spec> specs = {parse_text(small_spec("a.com/x", {"0", "1"}, "A")),
                                        parse_text(small_spec("b.com/y", {"0"}, "B"))};
  const std::vector<std::string> dirs = {"/etc/cdi"};
  auto env = [&](std::vector<const char*> texts, bool all = false) {
    std::vector<cdi::Request> rs;
    for (const char* t : texts) rs.push_back(req(t));
    return cdi::resolve(specs, rs, all, dirs).env;
  };
  using V = std::vector<std::string>;
  CHECK(env({"a.com/x=1"}) == V{"FROM=A", "DEV=A-1"});
  CHECK(env({"b.com/y=0", "a.com/x=1", "a.com/x=0"}) ==
        V{"FROM=B", "DEV=B-0", "FROM=A", "DEV=A-1", "DEV=A-0"});
  // The same device twice counts once.
  CHECK(env({"a.com/x=0", "a.com/x=all", "a.com/x=0"}) == V{"FROM=A", "DEV=A-0", "DEV=A-1"});
  CHECK(env({"a.com/x=all"}) == V{"FROM=A", "DEV=A-0", "DEV=A-1"});
  CHECK(env({}, true) == V{"FROM=A", "DEV=A-0", "DEV=A-1", "FROM=B", "DEV=B-0"});
  CHECK(env({"b.com/y=0"}, true) == V{"FROM=A", "DEV=A-0", "DEV=A-1", "FROM=B", "DEV=B-0"});
  CHECK(env({}).empty());
  CHECK(cdi::resolve({}, {}, true, dirs) == cdi::Edits{});

  // Every kind of edit keeps the same order.
  auto nvidia = parse_text(kJson);
  auto e = cdi::resolve({nvidia}, {req("nvidia.com/gpu=GPU-6a1b2c3d-0000-1111-2222-333344445555")},
                        false, dirs);
  REQUIRE(e.device_nodes.size() == 2);
  CHECK(e.device_nodes[0].path == "/dev/nvidiactl");
  CHECK(e.device_nodes[1].path == "/dev/nvidia1");
  CHECK(e.device_nodes[1].host_path == "/dev/nvidia1-host");
  CHECK(e.env == V{"NVIDIA_VISIBLE_DEVICES=void", "NVIDIA_GPU=1"});
  CHECK(e.mounts.size() == 1);
  CHECK(e.hooks.size() == 1);
}

TEST_CASE("cdi resolve: 'all' is the device named all when the kind has one") {
  const auto nvidia = parse_text(kJson);
  const std::vector<std::string> dirs = {"/etc/cdi"};
  for (bool all : {false, true}) {
    INFO("all = " << all);
    auto e = cdi::resolve(
        {nvidia},
        all ? std::vector<cdi::Request>{} : std::vector<cdi::Request>{req("nvidia.com/gpu=all")},
        all, dirs);
    REQUIRE(e.device_nodes.size() == 3);  // nvidiactl, then the "all" device's two
    CHECK(e.device_nodes[0].path == "/dev/nvidiactl");
    CHECK(e.device_nodes[1].path == "/dev/nvidia0");
    CHECK(e.device_nodes[2].path == "/dev/nvidia1");
    CHECK(e.env == std::vector<std::string>{"NVIDIA_VISIBLE_DEVICES=void"});
  }
}

TEST_CASE("cdi resolve: unknown devices list the known ones; duplicates are refused") {
  const std::vector<cdi::Spec> specs = {parse_text(small_spec("nvidia.com/gpu", {"0", "1"}, "A")),
                                        parse_text(small_spec("amd.com/gpu", {"0"}, "B"))};
  const std::vector<std::string> dirs = {"/etc/cdi", "/var/run/cdi"};
  CHECK_THROWS_WITH(cdi::resolve(specs, {req("nvidia.com/gpu=7")}, false, dirs),
                    "--device: no CDI spec in /etc/cdi, /var/run/cdi defines nvidia.com/gpu=7 "
                    "(known: nvidia.com/gpu=0, nvidia.com/gpu=1)");
  // An unknown kind: every known name.
  CHECK_THROWS_WITH(cdi::resolve(specs, {req("intel.com/gpu=all")}, false, dirs),
                    "--device: no CDI spec in /etc/cdi, /var/run/cdi defines intel.com/gpu=all "
                    "(known: amd.com/gpu=0, nvidia.com/gpu=0, nvidia.com/gpu=1)");
  CHECK_THROWS_WITH(cdi::resolve({}, {req("intel.com/gpu=0")}, false, {"/etc/cdi"}),
                    "--device: no CDI spec in /etc/cdi defines intel.com/gpu=0 "
                    "(no CDI devices known)");
  // Many names: the first ones and a count.
  std::vector<std::string> many;
  for (int i = 0; i < 20; ++i) many.push_back(fmt::format("d{:02}", i));
  CHECK_THROWS_WITH(
      cdi::resolve({parse_text(small_spec("a.com/b", many, "A"))}, {req("a.com/b=x")}, false, dirs),
      Contains("a.com/b=d15, and 4 more)"));

  // Two specs of one kind with different devices are fine; the same
  // device in both is refused when selected.
  const std::vector<cdi::Spec> two = {
      parse_text(small_spec("a.com/b", {"0", "1"}, "A"), "one.json"),
      parse_text(small_spec("a.com/b", {"1", "2"}, "B"), "two.json")};
  CHECK(cdi::resolve(two, {req("a.com/b=2"), req("a.com/b=0")}, false, dirs).env ==
        std::vector<std::string>{"FROM=B", "DEV=B-2", "FROM=A", "DEV=A-0"});
  CHECK_THROWS_WITH(cdi::resolve(two, {req("a.com/b=1")}, false, dirs),
                    "--device: a.com/b=1 is defined by two CDI specs: one.json and two.json");
  CHECK_THROWS_WITH(cdi::resolve(two, {req("a.com/b=all")}, false, dirs),
                    Contains("a.com/b=1 is defined by two CDI specs"));
  CHECK_THROWS_WITH(cdi::resolve(two, {}, true, dirs), Contains("a.com/b=1 is defined by two"));
}

TEST_CASE("cdi resolve: a spec file named on the command line") {
  TempDir t("cdi");
  const std::string file = t.write("fpga.yaml", R"(
cdiVersion: 0.6.0
kind: example.com/fpga
containerEdits:
  env: [FPGA=1]
devices:
  - name: a
    containerEdits:
      deviceNodes: [{path: /dev/fpga0}]
  - name: b
    containerEdits:
      deviceNodes: [{path: /dev/fpga1}]
)");
  const std::vector<cdi::Spec> specs = {parse_text(small_spec("a.com/x", {"0"}, "A"))};
  auto e = cdi::resolve(specs, {req("a.com/x=0"), req(file), req(file)}, false, {"/etc/cdi"});
  CHECK(e.env == std::vector<std::string>{"FROM=A", "DEV=A-0", "FPGA=1"});
  REQUIRE(e.device_nodes.size() == 2);
  CHECK(e.device_nodes[0].path == "/dev/fpga0");
  CHECK(e.device_nodes[1].path == "/dev/fpga1");
  // A file of NVIDIA's kind: its "all" device only.
  const std::string nv = t.write("nv.json", kJson);
  CHECK(cdi::resolve({}, {req(nv)}, false, {}).device_nodes.size() == 3);

  CHECK_THROWS_WITH(cdi::resolve({}, {req(t / "missing.yaml")}, false, {}),
                    StartsWith("--device: ") && Contains("missing.yaml"));
  const std::string bad = t.write("bad.json", R"({"cdiVersion": "0.6.0", "kind": "x"})");
  CHECK_THROWS_WITH(cdi::resolve({}, {req(bad)}, false, {}),
                    StartsWith("--device: " + bad + ": kind: "));
}

TEST_CASE("cdi load_dirs: sorted spec files, bad ones warned about and skipped") {
  TempDir t("cdi");
  const std::string etc = t.mkdir("etc");
  t.write("etc/20-b.yaml", small_spec("b.com/y", {"0"}, "B"));
  t.write("etc/10-a.json", small_spec("a.com/x", {"0"}, "A"));
  t.write("etc/30-c.yml", small_spec("c.com/z", {"0"}, "C"));
  t.write("etc/15-broken.yaml", "cdiVersion: 0.6.0\nkind: [unclosed\n");
  t.write("etc/16-invalid.json", R"({"cdiVersion": "0.6.0", "kind": "a.com/x"})");
  t.write("etc/README", "not a spec");
  t.write("etc/notes.txt", "not a spec");
  t.write("etc/old.yaml.bak", "not a spec");
  t.mkdir("etc/sub.json");

  std::vector<std::string> warnings;
  auto specs =
      cdi::load_dirs({etc, t / "missing"}, [&](const std::string& w) { warnings.push_back(w); });
  REQUIRE(specs.size() == 3);
  CHECK(specs[0].file == etc + "/10-a.json");
  CHECK(specs[1].file == etc + "/20-b.yaml");
  CHECK(specs[2].file == etc + "/30-c.yml");
  REQUIRE(warnings.size() == 3);
  CHECK_THAT(warnings[0], StartsWith(etc + "/15-broken.yaml: not valid YAML"));
  CHECK_THAT(warnings[1], StartsWith(etc + "/16-invalid.json: no devices"));
  CHECK_THAT(warnings[2], Contains(etc + "/sub.json"));

  // A trailing slash on a directory does not double.
  specs = cdi::load_dirs({etc + "/"}, [](const std::string&) {});
  CHECK(specs.at(0).file == etc + "/10-a.json");
  // No directories, or none that exist: nothing, silently.
  CHECK(cdi::load_dirs({}, [](const std::string&) { FAIL("warned"); }).empty());
  const auto none = cdi::load_dirs({t / "none", t / "etc/README"},
                                   [](const std::string&) { FAIL("warned"); });
  CHECK(none.empty());
}

TEST_CASE("cdi load_dirs: a later directory overrides a device; one directory's duplicates stay") {
  TempDir t("cdi");
  const std::string etc = t.mkdir("etc");
  const std::string run = t.mkdir("run");
  t.write("etc/gpu.yaml", small_spec("nvidia.com/gpu", {"0", "1"}, "etc"));
  t.write("etc/only.yaml", small_spec("nvidia.com/gpu", {"9"}, "etc-only"));
  t.write("etc/shadowed.json", small_spec("a.com/x", {"0"}, "etc-x"));
  t.write("run/gpu.yaml", small_spec("nvidia.com/gpu", {"1", "2"}, "run"));
  t.write("run/x.json", small_spec("a.com/x", {"0"}, "run-x"));
  std::vector<std::string> warnings;
  const std::vector<std::string> dirs = {etc, run};
  auto specs = cdi::load_dirs(dirs, [&](const std::string& w) { warnings.push_back(w); });
  CHECK(warnings.empty());
  // etc/shadowed.json lost its only device and is gone.
  REQUIRE(specs.size() == 4);
  CHECK(specs[0].file == etc + "/gpu.yaml");
  REQUIRE(specs[0].devices.size() == 1);
  CHECK(specs[0].devices[0].name == "0");
  CHECK(specs[1].file == etc + "/only.yaml");
  CHECK(specs[2].file == run + "/gpu.yaml");
  CHECK(specs[3].file == run + "/x.json");

  using V = std::vector<std::string>;
  auto env = [&](const char* r) { return cdi::resolve(specs, {req(r)}, false, dirs).env; };
  CHECK(env("nvidia.com/gpu=1") == V{"FROM=run", "DEV=run-1"});
  CHECK(env("nvidia.com/gpu=0") == V{"FROM=etc", "DEV=etc-0"});
  CHECK(env("a.com/x=0") == V{"FROM=run-x", "DEV=run-x-0"});
  CHECK(env("nvidia.com/gpu=all") == V{"FROM=etc", "DEV=etc-0", "FROM=etc-only", "DEV=etc-only-9",
                                       "FROM=run", "DEV=run-1", "DEV=run-2"});

  // The same device twice in one directory: both kept, refused on request.
  t.write("run/gpu-copy.json", small_spec("nvidia.com/gpu", {"2"}, "copy"));
  specs = cdi::load_dirs(dirs, [&](const std::string& w) { warnings.push_back(w); });
  CHECK(warnings.empty());
  CHECK_THROWS_WITH(cdi::resolve(specs, {req("nvidia.com/gpu=2")}, false, dirs),
                    "--device: nvidia.com/gpu=2 is defined by two CDI specs: " + run +
                        "/gpu-copy.json and " + run + "/gpu.yaml");
  CHECK(env("nvidia.com/gpu=0") == V{"FROM=etc", "DEV=etc-0"});
}

TEST_CASE("cdi load_dirs: a spec that cannot be opened is warned about, not fatal") {
  TempDir t("cdi");
  const std::string etc = t.mkdir("etc");
  const std::string dangling = t.symlink("gone.json", "etc/a.json");
  t.write("etc/b.json", small_spec("a.com/x", {"0"}, "B"));
  std::vector<std::string> warnings;
  auto specs = cdi::load_dirs({etc}, [&](const std::string& w) { warnings.push_back(w); });
  REQUIRE(specs.size() == 1);
  CHECK(specs[0].file == etc + "/b.json");
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Contains(dangling) && Contains("No such file"));
}

TEST_CASE("cdi documents: YAML aliases may share parts, not multiply them without end") {
  // A spec that names one list of mounts twice: fine.
  auto s = parse_text(R"(
cdiVersion: 0.6.0
kind: a.com/b
devices:
  - name: "0"
    containerEdits:
      mounts: &libs
        - {hostPath: /usr/lib/liba.so, containerPath: /usr/lib/liba.so}
        - {hostPath: /usr/lib/libb.so, containerPath: /usr/lib/libb.so}
  - name: "1"
    containerEdits:
      mounts: *libs
)",
                      "x.yaml");
  CHECK(s.devices.at(1).edits.mounts == s.devices.at(0).edits.mounts);
  CHECK(s.devices.at(1).edits.mounts.size() == 2);

  // "Billion laughs": 10^9 copies of x in 300 bytes. An Error, quickly.
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    bomb += fmt::format("a{}: &a{} [", i, i);
    for (int j = 0; j < 10; ++j) bomb += fmt::format("{}*a{}", j ? ", " : "", i - 1);
    bomb += "]\n";
  }
  CHECK_THROWS_WITH(doc::parse(bomb, "x.yaml"),
                    "x.yaml: too large once its YAML aliases are expanded");
}

TEST_CASE("cdi documents: deep nesting is an Error, not a crash") {
  const std::string deep_flow = "devices: " + std::string(100000, '[');
  CHECK_THROWS_AS(parse_text(deep_flow, "x.yaml"), Error);
  const std::string nested = "devices: " + std::string(1000, '[') + std::string(1000, ']');
  CHECK_THROWS_AS(parse_text(nested, "x.yaml"), Error);
  std::string block;
  for (int i = 0; i < 3000; ++i) block += std::string(i, ' ') + "a:\n";
  CHECK_THROWS_AS(parse_text(block, "x.yaml"), Error);
  // JSON: no depth limit in the parser, but not a spec either.
  const std::string json = R"({"cdiVersion": "0.6.0", "kind": "a.com/b", "devices": )" +
                           std::string(100000, '[') + std::string(100000, ']') + "}";
  CHECK_THROWS_WITH(parse_text(json, "x.json"), "x.json: devices[0]: expected a mapping");
}
