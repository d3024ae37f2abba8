#!/bin/bash
# On a host with a real NVIDIA GPU and driver: ch-run --gpu gives a container
# made from an image without any NVIDIA file a working nvidia-smi and CUDA
# driver, on a directory image and on a SquashFS image, with the host's own
# site configuration (nothing pointed at test files). Elsewhere every check
# is reported as skipped.
. "$CLI_LIB"
: "${INJECT_SRC:?}"
checks=("nvidia-smi -L lists the host's GPUs" "the CUDA driver counts the host's GPUs"
        "NVIDIA_VISIBLE_DEVICES=0 leaves one GPU to CUDA")
skip_all () {
    for k in dir squash; do
        for c in "${checks[@]}"; do skip "$k: $c" "$1"; done
    done
    done_testing
}
[ -e /dev/nvidiactl ] || skip_all "no NVIDIA GPU on this host (/dev/nvidiactl)"
smi=$(command -v nvidia-smi) || skip_all "no nvidia-smi on this host"
cc=$(command -v cc || command -v gcc) || skip_all "no C compiler"
unset CHUTE_CONFIG NVIDIA_VISIBLE_DEVICES CUDA_VISIBLE_DEVICES

"$cc" -O2 -o "$scratch/cuda-count" "$INJECT_SRC/cuda-count.c" -ldl \
    || { echo "Bail out! can't build cuda-count"; exit 1; }
gimg=$scratch/glibc
run "$INJECT_SRC/mkimage-glibc" "$gimg" "$scratch/cuda-count"
[ "$rc" -eq 0 ] || { echo "Bail out! mkimage-glibc failed: $err"; exit 1; }
# What nvidia-smi needs besides the driver's own libraries, from the host.
for l in $(ldd "$smi" | awk '$3 ~ /^\// {print $3}' | grep -v nvidia); do
    real=$(realpath "$l")
    mkdir -p "$gimg$(dirname "$real")"
    cp "$real" "$gimg$(dirname "$real")/$(basename "$l")"
done
run "$CH_RUN" -w "$gimg" -- /sbin/ldconfig
[ "$rc" -eq 0 ] || { echo "Bail out! the image's ldconfig failed: $err"; exit 1; }
[ -z "$(find "$gimg" -name '*nvidia*' -o -name 'libcuda*')" ] \
    || { echo "Bail out! the test image has NVIDIA files of its own"; exit 1; }
gsq=$scratch/glibc.sqfs
mksquashfs "$gimg" "$gsq" -noappend -quiet -no-progress >/dev/null \
    || { echo "Bail out! mksquashfs failed"; exit 1; }
host_list=$("$smi" -L)
host_count=$(printf '%s\n' "$host_list" | grep -c '^GPU ')

for im in "dir:$gimg" "squash:$gsq"; do
    k=${im%%:*}
    i=${im#*:}
    run "$CH_RUN" --gpu "$i" -- nvidia-smi -L
    is "$rc/$out" "0/$host_list" "$k: ${checks[0]}"
    run "$CH_RUN" --gpu "$i" -- cuda-count
    like "$rc/$out" "^0/$host_count " "$k: ${checks[1]}"
    NVIDIA_VISIBLE_DEVICES=0 run "$CH_RUN" --gpu "$i" -- cuda-count
    like "$rc/$out" "^0/1 " "$k: ${checks[2]}"
done
done_testing
