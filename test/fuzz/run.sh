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

# Seeds of the environment inputs: a flags byte (PATH, expansion, --home),
# then text read as records, an assignment, a value to expand, a glob line
# over records, and ops separated by \001 whose first byte says which:
# "0" a file of lines, "H" a file of NUL records, "1" the image's file of
# lines, "I" of NUL records, "2" a glob to unset.
envs=$work/seeds-fuzz_env
mkdir -p "$envs"
printf '\002A=1\nB='"'"'quoted value'"'"'\nPATH=$PATH:/opt/bin\nEMPTY=\n\nX=a:$NOPE:$A:b\n' \
    > "$envs/lines"
printf '\000A=1\000B=line\nbreak\000C='"'"'x'"'"'\000\000' > "$envs/nul"
printf '\002@(A|B)*\nA=1\nAB=2\nC=3\nBA=4\n' > "$envs/unset"
printf '\002$A:$EMPTY:$LIST::$:x$A:$DOLLAR:$PATH' > "$envs/expand"
printf '\0110A=$HOME/x\nB='"'"'$A'"'"'\0011C=1\nD=$C:$PATH\0012+(LD|TMP)*\001HX=1\000Y=2\001IZ=$X\000' \
    > "$envs/ops"
printf '\006=novalue\nnoequals\n' > "$envs/bad"

# Seeds of the command line: one --bind argument each, and argvs with their
# words separated by NUL bytes.
binds=$work/seeds-fuzz_bind
mkdir -p "$binds"
printf '/scratch' > "$binds/src"
printf '/opt/site:/site:ro' > "$binds/ro"
printf '/data::ro' > "$binds/same-ro"
printf './rel:/mnt/./x//y/:rw' > "$binds/rw"
printf '%s\000' -b /a:/b --set-env=A=1 '--unset-env=@(X|Y)*' -W img -- true > "$binds/argv"
printf '%s\000' --join-tag=t --join-ct=4 -u 0 -g 0 -vvv ./img echo > "$binds/join"
printf '%s\000' --write-fake=512m -c /tmp --set-env0 --env-no-expand img -- sh -c x \
    > "$binds/write-fake"
printf '%s\000' --gpu=optional --device=nvidia.com/gpu=0 --mpi -d --cdi-dirs=/etc/cdi img true \
    > "$binds/inject"
printf '%s\000' --feature=extglob > "$binds/feature"
printf '%s\000' --cap-drop=all --cap-drop=CAP_NET_RAW,sys_admin -t img -- id > "$binds/caps"
printf '%s\000' --seccomp --seccomp-deny -u 0 img -- apt-get install x > "$binds/seccomp"

# Seeds of --seccomp-deny's profiles: the built-in list, names with
# errnos, comments and blanks, and mistakes.
prof=$work/seeds-fuzz_seccomp
mkdir -p "$prof"
printf '@default\n' > "$prof/default"
printf '# a profile\nbpf\tENOSYS  # none\n\nkeyctl 33\n@default EDOM\r\niopl\nchown32 eperm\n' \
    > "$prof/mixed"
printf 'perf_event_open\nuserfaultfd EACCES\nio_uring_setup 38\n' > "$prof/odd"
printf 'kexec\nbpf 0\nbpf EPERM x\n' > "$prof/bad"
printf '%s\n' bpf seccomp ptrace mount umount2 unshare setns clone3 > "$prof/many"

# Seeds of the SquashFS check: a small image (a file, a link, a directory),
# copies of it cut short, and the same image uncompressed.
sq=$work/seeds-fuzz_squash
mkdir -p "$sq" "$work/sq/d"
if command -v mksquashfs >/dev/null; then
    echo hello > "$work/sq/f"
    ln -s f "$work/sq/l"
    echo inner > "$work/sq/d/g"
    if mksquashfs "$work/sq" "$sq/image.sqfs" -noappend -quiet -no-progress -all-root -nopad \
            -comp gzip >/dev/null 2>&1; then
        size=$(stat -c %s "$sq/image.sqfs")
        head -c 96 "$sq/image.sqfs" > "$sq/superblock"
        head -c $((size / 2)) "$sq/image.sqfs" > "$sq/half"
        head -c $((size - 1)) "$sq/image.sqfs" > "$sq/short"
    fi
    # Nothing compressed: the fuzzer can change the tables themselves.
    mksquashfs "$work/sq" "$sq/plain.sqfs" -noappend -quiet -no-progress -all-root -nopad \
        -noI -noD -noF -noX >/dev/null 2>&1 || rm -f "$sq/plain.sqfs"
fi
# Without mksquashfs, a superblock alone.
[ -n "$(ls "$sq")" ] || printf 'hsqs' > "$sq/magic"

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
    # A corrupt SquashFS block header can ask libsquashfuse for a buffer of up
    # to 4 GiB, which it allocates and never touches (the read then fails):
    # not a fault, so that target's malloc limit is above it.
    extra=()
    [ "$t" = fuzz_squash ] && extra=(-malloc_limit_mb=4400)
    if (cd "$work" && TMPDIR=$work "$fb/test/fuzz/$t" -max_total_time="$secs" -max_len=65536 \
            -timeout=20 -rss_limit_mb=2048 "${extra[@]}" -print_final_stats=1 "$corpus" >"$log" 2>&1); then
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
