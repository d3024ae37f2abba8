#!/bin/bash
# Build the libFuzzer targets with clang in their own build directory and run
# each for a bounded time (FUZZ_SECONDS, default 30) from a seed corpus made
# here. TAP: one result per target; a crash, a leak or a sanitizer report is
# a failure. Longer runs: bench/fuzz.
set -u
: "${BUILD_ROOT:?}" "${SOURCE_ROOT:?}"
secs=${FUZZ_SECONDS:-30}

if ! command -v clang++ >/dev/null || ! command -v clang >/dev/null; then
    echo "1..0 # SKIP clang is not installed"
    exit 0
fi

fb=$BUILD_ROOT/fuzz-build
if [ ! -f "$fb/build.ninja" ]; then
    if ! CXX=clang++ CC=clang meson setup "$fb" "$SOURCE_ROOT" -Dfuzz=true -Dtests=false \
            -Db_lto=false -Dstatic_runtime=false -Dwerror=false \
            -Db_sanitize=address,undefined -Db_lundef=false >"$BUILD_ROOT/fuzz-setup.log" 2>&1; then
        echo "not ok 1 - configure the fuzz build (see $BUILD_ROOT/fuzz-setup.log)"
        echo "1..1"
        exit 1
    fi
fi
targets=$(cd "$SOURCE_ROOT/test/fuzz" && ls fuzz_*.cpp | sed 's/\.cpp$//')
if ! ninja -C "$fb" $(for t in $targets; do echo "test/fuzz/$t"; done) >"$BUILD_ROOT/fuzz-build.log" 2>&1; then
    echo "not ok 1 - build the fuzz targets (see $BUILD_ROOT/fuzz-build.log)"
    tail -n 20 "$BUILD_ROOT/fuzz-build.log" | sed 's/^/#   /'
    echo "1..1"
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/chute-fuzz.XXXXXX")
trap 'chmod -R u+rwx "$work" 2>/dev/null; rm -rf "$work"' EXIT

# Seeds: small archives of the kinds the unpacker sees.
seeds=$work/seeds
mkdir -p "$seeds" "$work/t/img/d"
echo hello > "$work/t/img/d/f"
ln -s f "$work/t/img/d/l"
ln "$work/t/img/d/f" "$work/t/img/d/h"
mkdir "$work/t/img/.wh..wh..opq" 2>/dev/null || true
(cd "$work/t" && tar cf "$seeds/plain.tar" img && tar czf "$seeds/gz.tgz" img \
    && tar --format=gnu -cf "$seeds/gnu.tar" img && tar --format=pax -cf "$seeds/pax.tar" img)

# Seeds of the ELF reader: small real objects, a program and libraries that
# define and need symbol versions (the test fixtures, when built).
mkdir -p "$work/seeds-fuzz_elf"
i=0
for f in /bin/true "$BUILD_ROOT/test/libelfvers.so.1" "$BUILD_ROOT/test/libelfuser.so.2" \
         /lib/*-linux-gnu*/libdl.so.2 /lib/*-linux-gnu*/libpthread.so.0; do
    [ -f "$f" ] || continue
    i=$((i + 1))
    cp "$f" "$work/seeds-fuzz_elf/$i-${f##*/}"
done

# Seeds of the CDI reader: a spec in JSON and the same in YAML, as
# nvidia-ctk writes them (trimmed), and --device requests.
cdi=$work/seeds-fuzz_cdi
mkdir -p "$cdi"
cat > "$cdi/spec.json" <<'JSON'
{"cdiVersion": "0.6.0", "kind": "nvidia.com/gpu",
 "devices": [
  {"name": "0", "containerEdits": {"deviceNodes": [
    {"path": "/dev/nvidia0", "type": "c", "major": 195, "minor": 0, "permissions": "rw"}]}},
  {"name": "all", "containerEdits": {"env": ["GPU=all"], "deviceNodes": [
    {"path": "/dev/nvidia0", "hostPath": "/dev/nvidia0"}]}}],
 "containerEdits": {
  "env": ["NVIDIA_VISIBLE_DEVICES=void"],
  "deviceNodes": [{"path": "/dev/nvidiactl"}],
  "mounts": [{"hostPath": "/usr/lib/libcuda.so.1", "containerPath": "/usr/lib/libcuda.so.1",
              "options": ["ro", "nosuid", "nodev", "bind"]}],
  "hooks": [{"hookName": "createContainer", "path": "/usr/bin/nvidia-ctk",
             "args": ["nvidia-ctk", "hook", "update-ldcache"], "env": ["A=b"], "timeout": 5}]}}
JSON
cat > "$cdi/spec.yaml" <<'YAML'
cdiVersion: "0.6.0"
kind: nvidia.com/gpu
devices:
  - name: "0"
    containerEdits:
      deviceNodes:
        - {path: /dev/nvidia0, type: c, major: 195, minor: 0, permissions: rw}
  - name: all
    containerEdits:
      env: [GPU=all]
      deviceNodes:
        - path: /dev/nvidia0
          hostPath: /dev/nvidia0
containerEdits:
  env:
    - NVIDIA_VISIBLE_DEVICES=void
  deviceNodes:
    - path: /dev/nvidiactl
  mounts:
    - hostPath: /usr/lib/libcuda.so.1
      containerPath: /usr/lib/libcuda.so.1
      options: [ro, nosuid, nodev, bind]
  hooks:
    - hookName: createContainer
      path: /usr/bin/nvidia-ctk
      args: [nvidia-ctk, hook, update-ldcache]
      env: [A=b]
      timeout: 5
YAML
printf 'nvidia.com/gpu=0' > "$cdi/request"
printf './specs/gpu.yaml' > "$cdi/request-file"

# Seeds of the site configuration: the installed file (every key commented)
# and a file setting every key.
site=$work/seeds-fuzz_site
mkdir -p "$site"
cp "$SOURCE_ROOT/etc/chute.yaml" "$site/installed.yaml"
cat > "$site/all.yaml" <<'YAML'
binds: [/scratch, "/opt/site:/site:ro"]
cdi-dirs: /etc/cdi:/var/run/cdi
gpu:
  root: /
  ldcache: true
  nvidia-container-cli: false
  library-dirs: [/opt/nvidia/lib]
  binary-dirs: [/usr/bin]
  nvidia:
    devices: [/dev/nvidia*]
    libraries: [libcuda.so*]
    binaries: [nvidia-smi]
    files: [/run/nvidia-persistenced/socket]
    capabilities: {video: [libnvcuvid.so*]}
  amd: {devices: [/dev/kfd], libraries: [libhsa-runtime64.so*]}
mpi:
  cray:
    libraries: [libmpi.so.12, /opt/cray/lib/libfabric.so.1]
    library-dirs: [/opt/cray/lib]
    binds: [/opt/cray]
    env: [MPICH_GPU_SUPPORT_ENABLED=1]
YAML
printf '{"gpu": {"root": "/x", "ldcache": false}, "mpi": {"a": {"env": ["A=1"]}}}' > "$site/json"

n=0
failed=0
for t in $targets; do
    n=$((n + 1))
    corpus=$work/corpus-$t
    mkdir -p "$corpus"
    if [ -d "$work/seeds-$t" ]; then
        cp "$work/seeds-$t"/* "$corpus"/
    else
        cp "$seeds"/* "$corpus"/
    fi
    log=$BUILD_ROOT/$t.log
    if (cd "$work" && TMPDIR=$work "$fb/test/fuzz/$t" -max_total_time="$secs" -max_len=65536 \
            -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 "$corpus" >"$log" 2>&1); then
        runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$')
        echo "ok $n - $t: ${runs:-?} inputs in ${secs} s, no crash"
    else
        failed=$((failed + 1))
        echo "not ok $n - $t found a failure (log: $log)"
        grep -E 'ERROR|SUMMARY|left behind|Test unit written' "$log" | head -n 10 | sed 's/^/#   /'
    fi
done
echo "1..$n"
[ "$failed" -eq 0 ]
