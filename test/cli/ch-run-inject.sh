#!/bin/bash
# Host injection: --gpu, --device (CDI), --mpi and the preflight check, on a
# fake driver tree made here (no GPU needed): libraries built from
# test/inject/*.c, device files as plain files under a test-only GPU root,
# /proc/driver/nvidia as NVIDIA's driver lays it out, CDI specs naming them,
# and a site configuration (CHUTE_CONFIG) that points chute at them. The
# image is a small glibc image (test/inject/mkimage-glibc), as a directory
# and as a SquashFS file; it is never written to.
. "$CLI_LIB"
: "${INJECT_SRC:?}"
cc=$(command -v cc || command -v gcc) || { echo "1..0 # SKIP no C compiler (apt-get install gcc)"; exit 0; }

fake=$scratch/fake
mkdir -p "$fake"/{lib,bin,mpi,old,bad,dev/nvidia-caps} "$fake/proc/driver/nvidia/gpus"
build () {  # OUTPUT SONAME [CC-ARGS...]
    local out=$1 soname=$2
    shift 2
    "$cc" -shared -fPIC -o "$out" -Wl,-soname,"$soname" "$@" \
        || { echo "Bail out! can't build $out"; exit 1; }
}
build "$fake/lib/libcuda.so.1" libcuda.so.1 -DVALUE=4242 "$INJECT_SRC/fakelib.c"
build "$fake/lib/libnvcuvid.so.1" libnvcuvid.so.1 -DVALUE=77 "$INJECT_SRC/fakelib.c"
build "$fake/mpi/libmpi.so.40" libmpi.so.40 -DVALUE=40 "$INJECT_SRC/fakelib.c"
build "$fake/old/libmpi.so.40" libmpi.so.40 -DVALUE=1 "$INJECT_SRC/fakelib.c"
build "$fake/old/libmpi.so.12" libmpi.so.12 -DVALUE=12 "$INJECT_SRC/fakelib.c"
# A libcuda.so.1 that needs GLIBC_2.99, linked against a stub C library.
build "$scratch/libstubc.so" libc.so.6 -nostdlib -Wl,--version-script="$INJECT_SRC/stub-libc.map" \
    "$INJECT_SRC/stub-libc.c"
build "$fake/bad/libcuda.so.1" libcuda.so.1 "$INJECT_SRC/future.c" "$scratch/libstubc.so"
"$cc" -O2 -o "$scratch/dlprobe" "$INJECT_SRC/dlprobe.c" -ldl \
    || { echo "Bail out! can't build dlprobe"; exit 1; }
printf '#!/bin/sh\necho "fake nvidia-smi: $(cat /dev/nvidia0 2>/dev/null)"\n' > "$fake/bin/nvidia-smi"
chmod +x "$fake/bin/nvidia-smi"
for d in nvidiactl nvidia0 nvidia1 nvidia-uvm; do echo "fake $d" > "$fake/dev/$d"; done
echo "fake cap1" > "$fake/dev/nvidia-caps/nvidia-cap1"
for g in 0 1; do
    mkdir -p "$fake/proc/driver/nvidia/gpus/0000:0$g:00.0"
    printf 'Model: \t\t Fake GPU\nGPU UUID: \t GPU-0000000%s-1111-2222-3333-444444444444\nDevice Minor: \t %s\n' \
        "$g" "$g" > "$fake/proc/driver/nvidia/gpus/0000:0$g:00.0/information"
done
uuid1=GPU-00000001-1111-2222-3333-444444444444

# The image: glibc, its ldconfig and cache, the probe; no libcuda.
gimg=$scratch/glibc
run "$INJECT_SRC/mkimage-glibc" "$gimg" "$scratch/dlprobe"
[ "$rc" -eq 0 ] || { echo "Bail out! mkimage-glibc failed: $err"; exit 1; }
run "$CH_RUN" -w "$gimg" -- /sbin/ldconfig
[ "$rc" -eq 0 ] || { echo "Bail out! the image's ldconfig failed: $err"; exit 1; }
gsq=$scratch/glibc.sqfs
mksquashfs "$gimg" "$gsq" -noappend -quiet -no-progress >/dev/null \
    || { echo "Bail out! mksquashfs failed"; exit 1; }
before=$(cd "$gimg" && find . -printf '%p %s %T@\n' | sort | md5sum)
cache_sum=$(md5sum < "$gimg/etc/ld.so.cache")

conf=$scratch/chute.yaml
cat > "$conf" <<EOC
# test site configuration: a fake GPU root, no host linker cache
gpu:
  root: $fake
  ldcache: false
  library-dirs: [$fake/lib]
  binary-dirs: [$fake/bin]
mpi:
  fake:
    libraries: [libmpi.so.40]
    library-dirs: [$fake/mpi]
    env: [FAKE_MPI_PROFILE=yes]
EOC
export CHUTE_CONFIG=$conf
unset NVIDIA_VISIBLE_DEVICES CUDA_VISIBLE_DEVICES CH_RUN_CDI_DIRS

for im in "dir:$gimg" "squash:$gsq"; do
    k=${im%%:*}
    i=${im#*:}
    run "$CH_RUN" "$i" -- dlprobe libcuda.so.1 fake_value
    is "$rc" 2 "$k: without --gpu, libcuda.so.1 does not load"
    like "$err" "can't load libcuda.so.1" "$k: ... and the probe says why"
    run "$CH_RUN" --gpu "$i" -- dlprobe libcuda.so.1 fake_value
    is "$rc/$out" "0/4242" "$k: --gpu: the host's libcuda.so.1 loads through the linker cache"
    run "$CH_RUN" --gpu "$i" -- sh -c 'cat /dev/nvidia0 /dev/nvidia1 /dev/nvidiactl /dev/nvidia-uvm /dev/nvidia-caps/nvidia-cap1'
    is "$out" "$(printf 'fake nvidia0\nfake nvidia1\nfake nvidiactl\nfake nvidia-uvm\nfake cap1')" \
        "$k: --gpu: every device file of the GPU root is in /dev"
    run "$CH_RUN" --gpu "$i" -- sh -c 'echo x > /dev/null && test -c /dev/null && ls /dev/pts >/dev/null && echo ok'
    is "$rc/$out" "0/ok" "$k: --gpu: the host's /dev is still there (null, pts)"
    run "$CH_RUN" --gpu "$i" -- nvidia-smi
    is "$rc/$out" "0/fake nvidia-smi: fake nvidia0" "$k: --gpu: the driver's tools are in PATH"
    run "$CH_RUN" --gpu "$i" -- sh -c 'echo $PATH; ls /run'
    like "$out" ":/run/chute/bin$" "$k: --gpu: PATH ends with /run/chute/bin" 
    like "$out" "lock" "$k: --gpu: the image's /run entries are still shown"
    NVIDIA_VISIBLE_DEVICES=1 run "$CH_RUN" --gpu "$i" -- sh -c 'ls /dev/nvidia0 2>&1; cat /dev/nvidia1; echo $CUDA_VISIBLE_DEVICES'
    like "$out" "No such file" "$k: NVIDIA_VISIBLE_DEVICES=1: no /dev/nvidia0"
    like "$out" "fake nvidia1" "$k: NVIDIA_VISIBLE_DEVICES=1: /dev/nvidia1 is there"
    like "$out" "^$uuid1$" "$k: NVIDIA_VISIBLE_DEVICES=1: CUDA_VISIBLE_DEVICES is GPU 1's UUID"
    NVIDIA_VISIBLE_DEVICES=$uuid1 run "$CH_RUN" --gpu "$i" -- sh -c 'ls /dev/nvidia0 2>&1; cat /dev/nvidia1'
    like "$(echo $out)" "No such file.*fake nvidia1" "$k: NVIDIA_VISIBLE_DEVICES=UUID selects by UUID"
    NVIDIA_VISIBLE_DEVICES=none run "$CH_RUN" --gpu "$i" -- sh -c 'ls /dev/nvidia0 /dev/nvidia1 2>&1 | grep -c "No such"; dlprobe libcuda.so.1 fake_value'
    is "$out" "$(printf '2\n4242')" "$k: NVIDIA_VISIBLE_DEVICES=none: no GPU device, the driver libraries still"
    NVIDIA_VISIBLE_DEVICES=7 run "$CH_RUN" --gpu "$i" -- true
    is "$rc" 31 "$k: NVIDIA_VISIBLE_DEVICES=7: exit 31"
    like "$err" 'GPU "7".*GPUs: 0, 1' "$k: ... naming the GPU and the ones there are"
done
run "$CH_RUN" --gpu "$gimg" -- dlprobe libnvcuvid.so.1 fake_value
is "$rc" 2 "--gpu: the video library is not injected by default (compute, utility)"
NVIDIA_DRIVER_CAPABILITIES=compute,video run "$CH_RUN" --gpu "$gimg" -- dlprobe libnvcuvid.so.1 fake_value
is "$rc/$out" "0/77" "NVIDIA_DRIVER_CAPABILITIES=compute,video: it is"
NVIDIA_DRIVER_CAPABILITIES=all run "$CH_RUN" --gpu "$gimg" -- dlprobe libnvcuvid.so.1 fake_value
is "$rc/$out" "0/77" "NVIDIA_DRIVER_CAPABILITIES=all: it is"
after=$(cd "$gimg" && find . -printf '%p %s %T@\n' | sort | md5sum)
is "$after" "$before" "the image directory is unchanged after all that"
is "$(md5sum < "$gimg/etc/ld.so.cache")" "$cache_sum" "the image's own linker cache is unchanged"
run "$CH_RUN" "$gimg" -- dlprobe libcuda.so.1 fake_value
is "$rc" 2 "a run without --gpu after runs with it still lacks libcuda.so.1"

# --join: the peers share the first one's injected container; a peer that
# asks for something else is refused.
t=inject-$$
for im in "dir:$gimg" "squash:$gsq"; do
    k=${im%%:*}
    i=${im#*:}
    ns='sleep 1; echo "$(readlink /proc/self/ns/mnt) $(dlprobe libcuda.so.1 fake_value)"'
    timeout 60 "$CH_RUN" --join-ct=2 --join-tag="$t-$k" --gpu "$i" -- sh -c "$ns" > "$scratch/j1" 2>&1 &
    p1=$!
    timeout 60 "$CH_RUN" --join-ct=2 --join-tag="$t-$k" --gpu "$i" -- sh -c "$ns" > "$scratch/j2" 2>&1
    wait $p1
    is "$(sort -u "$scratch/j1" "$scratch/j2" | wc -l)/$(cut -d' ' -f2 "$scratch/j1")" "1/4242" \
        "$k: --join --gpu: both processes in one container, with libcuda.so.1"
    timeout 60 "$CH_RUN" --join-ct=2 --join-tag="$t-$k-x" --gpu "$i" -- sleep 2 &
    p1=$!
    sleep 0.5
    run timeout 60 "$CH_RUN" --join-ct=2 --join-tag="$t-$k-x" "$i" -- true
    wait $p1
    is "$rc" 31 "$k: --join: a peer without --gpu is refused"
    like "$err" "injected" "$k: ... naming the difference"
done

# No GPU on the host.
empty=$scratch/nogpu
mkdir -p "$empty/dev"
printf 'gpu:\n  root: %s\n  ldcache: false\n' "$empty" > "$scratch/nogpu.yaml"
CHUTE_CONFIG=$scratch/nogpu.yaml run "$CH_RUN" --gpu "$gimg" -- true
is "$rc" 31 "--gpu with no GPU: exit 31"
like "$err" "no GPU found" "... saying no GPU was found"
CHUTE_CONFIG=$scratch/nogpu.yaml run "$CH_RUN" --gpu=optional "$gimg" -- echo ran
is "$rc/$out" "0/ran" "--gpu=optional with no GPU runs the job"
like "$err" "warning: .*no GPU found" "... with a warning"
run "$CH_RUN" --gpu=maybe "$gimg" -- true
is "$rc" 31 "--gpu=maybe: exit 31"
like "$err" "gpu: invalid value" "... naming the bad value"

# AMD: /dev/kfd and the render nodes, the ROCm runtime libraries.
amd=$scratch/amd
mkdir -p "$amd/dev/dri" "$amd/lib"
echo "fake kfd" > "$amd/dev/kfd"
echo "fake renderD128" > "$amd/dev/dri/renderD128"
build "$amd/lib/libhsa-runtime64.so.1" libhsa-runtime64.so.1 -DVALUE=64 "$INJECT_SRC/fakelib.c"
printf 'gpu:\n  root: %s\n  ldcache: false\n  library-dirs: [%s]\n' "$amd" "$amd/lib" > "$scratch/amd.yaml"
for im in "dir:$gimg" "squash:$gsq"; do
    k=${im%%:*}
    i=${im#*:}
    CHUTE_CONFIG=$scratch/amd.yaml run "$CH_RUN" --gpu "$i" -- \
        sh -c 'cat /dev/kfd /dev/dri/renderD128; dlprobe libhsa-runtime64.so.1 fake_value'
    is "$rc/$out" "0/$(printf 'fake kfd\nfake renderD128\n64')" \
        "$k: --gpu on an AMD host: /dev/kfd, the render node and the ROCm runtime"
done

# Preflight: a host library that needs a newer glibc than the image has.
printf 'gpu:\n  root: %s\n  ldcache: false\n  library-dirs: [%s]\n' "$fake" "$fake/bad" > "$scratch/bad.yaml"
CHUTE_CONFIG=$scratch/bad.yaml run "$CH_RUN" --gpu "$gimg" -- echo ran
is "$rc" 31 "preflight: libcuda.so.1 needing GLIBC_2.99: exit 31, the job does not run"
like "$err" "libcuda.so.1 needs GLIBC_2.99.*libc.so.6" "... naming the library, the version and where it's missing"
unlike "$out" "ran" "... and the job did not start"
CHUTE_CONFIG=$scratch/bad.yaml run "$CH_RUN" --gpu --warn-only "$gimg" -- echo ran
is "$rc/$out" "0/ran" "--warn-only: the job runs anyway"
like "$err" "warning: preflight: .*GLIBC_2.99" "... after a warning"

# Host MPI: bound over the image's library of the same soname.
mimg=$scratch/mpiimg
cp -a "$gimg" "$mimg"
libdir=$(dirname "$(cd "$mimg" && find . -name 'libc.so.6' -type f | head -1)")
cp "$fake/old/libmpi.so.40" "$mimg/$libdir/"
run "$CH_RUN" -w "$mimg" -- /sbin/ldconfig
run "$CH_RUN" "$mimg" -- dlprobe libmpi.so.40 fake_value
is "$out" 1 "the MPI image's own libmpi.so.40 answers 1"
run "$CH_RUN" --mpi=fake "$mimg" -- sh -c 'dlprobe libmpi.so.40 fake_value; echo $FAKE_MPI_PROFILE'
is "$rc/$out" "$(printf '0/40\nyes')" "--mpi=fake: the host's libmpi.so.40 replaces the image's, the profile's variables are set"
run "$CH_RUN" "$mimg" -- dlprobe libmpi.so.40 fake_value
is "$out" 1 "... and only in that container"
run "$CH_RUN" --mpi=nope "$mimg" -- true
is "$rc" 31 "--mpi=nope: exit 31"
like "$err" 'no profile "nope".*fake' "... listing the profiles there are"
# An image whose MPI has another ABI (libmpi.so.12 only).
aimg=$scratch/abiimg
cp -a "$gimg" "$aimg"
cp "$fake/old/libmpi.so.12" "$aimg/$libdir/"
run "$CH_RUN" --mpi=fake "$aimg" -- echo ran
is "$rc" 31 "--mpi into an image with libmpi.so.12: exit 31"
like "$err" "libmpi.so.40.*libmpi.so.12" "... naming both sonames"
msq=$scratch/mpiimg.sqfs
mksquashfs "$mimg" "$msq" -noappend -quiet -no-progress >/dev/null
run "$CH_RUN" --mpi=fake "$msq" -- dlprobe libmpi.so.40 fake_value
is "$rc/$out" "0/40" "--mpi=fake on a SquashFS image"

# CDI: a spec naming the fake devices and library.
cdi=$scratch/cdi
mkdir -p "$cdi"
cat > "$cdi/fake.yaml" <<EOC
cdiVersion: "0.6.0"
kind: example.com/gpu
devices:
  - name: "0"
    containerEdits:
      deviceNodes:
        - path: /dev/fakegpu0
          hostPath: $fake/dev/nvidia0
      env: [FAKE_CDI_DEVICE=0]
  - name: "1"
    containerEdits:
      deviceNodes:
        - path: /dev/fakegpu1
          hostPath: $fake/dev/nvidia1
containerEdits:
  env: [FAKE_CDI=yes]
  mounts:
    - hostPath: $fake/lib/libcuda.so.1
      containerPath: /usr/lib/x86_64-linux-gnu/libcuda.so.1
      options: [ro, nosuid, nodev, bind]
  hooks:
    - hookName: createContainer
      path: /usr/bin/nvidia-ctk
      args: [nvidia-ctk, hook, update-ldcache, --folder, /usr/lib/x86_64-linux-gnu]
    - hookName: createContainer
      path: /usr/bin/some-vendor-hook
      args: [some-vendor-hook, --do-things]
EOC
cat > "$cdi/other.json" <<EOC
{"cdiVersion": "0.5.0", "kind": "example.org/nic",
 "devices": [{"name": "a", "containerEdits": {"env": ["FAKE_NIC=a"]}}]}
EOC
echo "not a spec" > "$cdi/README"
for im in "dir:$gimg" "squash:$gsq"; do
    k=${im%%:*}
    i=${im#*:}
    run "$CH_RUN" --cdi-dirs="$cdi" --device=example.com/gpu=0 "$i" -- \
        sh -c 'cat /dev/fakegpu0; ls /dev/fakegpu1 2>&1; echo $FAKE_CDI $FAKE_CDI_DEVICE; dlprobe libcuda.so.1 fake_value'
    is "$rc" 0 "$k: --device=example.com/gpu=0: exit 0"
    like "$out" "^fake nvidia0$" "$k: ... its device node is there"
    like "$out" "fakegpu1.*No such" "$k: ... the other device's is not"
    like "$out" "^yes 0$" "$k: ... with the spec's and the device's variables"
    like "$out" "^4242$" "$k: ... and the spec's library loads"
    like "$err" "hook not run: /usr/bin/some-vendor-hook --do-things" "$k: ... a hook chute can't do is reported"
    unlike "$err" "update-ldcache" "$k: ... update-ldcache is done, not reported"
done
CH_RUN_CDI_DIRS=$cdi run "$CH_RUN" --device=example.com/gpu=all "$gimg" -- sh -c 'cat /dev/fakegpu0 /dev/fakegpu1'
is "$out" "$(printf 'fake nvidia0\nfake nvidia1')" "--device=KIND=all (dirs from CH_RUN_CDI_DIRS): every device"
CH_RUN_CDI_DIRS=$cdi run "$CH_RUN" --device=example.com/gpu "$gimg" -- sh -c 'cat /dev/fakegpu0 /dev/fakegpu1'
is "$out" "$(printf 'fake nvidia0\nfake nvidia1')" "--device=KIND alone (Charliecloud's spelling): every device"
run "$CH_RUN" --device="$cdi/fake.yaml" "$gimg" -- cat /dev/fakegpu1
is "$rc/$out" "0/fake nvidia1" "--device=SPEC-FILE: the file's devices"
run "$CH_RUN" --cdi-dirs="$cdi" -d "$gimg" -- sh -c 'echo $FAKE_NIC; cat /dev/fakegpu0'
is "$out" "$(printf 'a\nfake nvidia0')" "-d: every device of every spec (JSON and YAML)"
run "$CH_RUN" --cdi-dirs="$cdi" --device=example.com/gpu=9 "$gimg" -- true
is "$rc" 31 "--device naming an unknown device: exit 31"
like "$err" "example.com/gpu=9" "... naming it"
run "$CH_RUN" --cdi-dirs="$cdi" --device='../../etc=x' "$gimg" -- true
is "$rc" 31 "--device with a malformed name: exit 31"

# The site configuration: binds, errors.
mkdir -p "$scratch/site-share"
echo shared > "$scratch/site-share/f"
printf 'binds:\n  - %s:/mnt:ro\n  - /nonexistent/site/path\n' "$scratch/site-share" > "$scratch/site.yaml"
CHUTE_CONFIG=$scratch/site.yaml run "$CH_RUN" "$gimg" -- sh -c 'cat /mnt/f; touch /mnt/g 2>&1'
like "$out" "^shared$" "site bind: shown in every container"
like "$out" "Read-only" "... read-only as configured"
printf 'gpu:\n  rooot: /\n' > "$scratch/typo.yaml"
CHUTE_CONFIG=$scratch/typo.yaml run "$CH_RUN" "$gimg" -- true
is "$rc" 31 "a misspelt key in the site configuration: exit 31"
like "$err" "typo.yaml: gpu.rooot: unknown key" "... naming the file and the key"
printf 'gpu: [unclosed\n' > "$scratch/broken.yaml"
CHUTE_CONFIG=$scratch/broken.yaml run "$CH_RUN" "$gimg" -- true
is "$rc" 31 "a site configuration that is not YAML: exit 31"
like "$err" "broken.yaml: not valid YAML" "... naming the file"
CHUTE_CONFIG=$scratch/missing.yaml run "$CH_RUN" "$gimg" -- true
is "$rc" 31 "CHUTE_CONFIG naming a missing file: exit 31"
like "$err" "missing.yaml" "... naming it"

done_testing
