#!/bin/bash
# Attempts to make ch-run write or mount outside the image: symlinks inside
# the image that point at host paths, "..", magic links, writes to the
# read-only root.
. "$CLI_LIB"

# A host directory that the image's symlinks point at; it must stay as it is.
# Not under /tmp: the container shows the host's /tmp at /tmp.
target=$(mktemp -d /var/tmp/chute-escape.XXXXXX)/host-target
trap 'rm -rf "$(dirname "$target")"; cleanup' EXIT
mkdir -p "$target/existing"
echo original > "$target/marker"
snapshot () { (cd "$target" && find . -printf '%p %y %s\n' | sort; cat marker); }
before=$(snapshot)
src=$scratch/src; mkdir "$src"; echo from-src > "$src/payload"

ln -s "$target" "$imgdir/mnt/abs-link"
ln -s "../../../../../../../../../../../..$target" "$imgdir/mnt/rel-link"
ln -s "$target/newdir" "$imgdir/mnt/abs-link-new"
ln -s "/proc/self/root$target" "$imgdir/mnt/magic-link"
img=$(image_of "$imgdir")

# Absolute symlink as a bind destination: resolved inside the image.
run "$CH_RUN" $write -b "$src:/mnt/abs-link" "$img" -- cat /mnt/abs-link/payload
is "$rc|$out" "0|from-src" "a bind through an absolute symlink works inside the image"
if [ "$kind" = dir ]; then
    [ -d "$imgdir$target" ] && ok "the absolute symlink's target was created inside the image" \
                            || not_ok "the absolute symlink's target was created inside the image"
fi
is "$(snapshot)" "$before" "the host directory the absolute symlink names is untouched"
rm -rf "$imgdir/var/tmp"

run "$CH_RUN" $write -b "$src:/mnt/rel-link" "$img" -- cat /mnt/rel-link/payload
is "$rc|$out" "0|from-src" "a bind through a relative ../.. symlink stays inside the image"
is "$(snapshot)" "$before" "the host directory the relative symlink reaches for is untouched"
rm -rf "$imgdir/var/tmp"

run "$CH_RUN" $write -b "$src:/mnt/abs-link-new" "$img" -- true
is "$rc" 0 "a bind through a symlink to a missing host path works"
[ -e "$target/newdir" ] && not_ok "no directory was created on the host" || ok "no directory was created on the host"
rm -rf "$imgdir/var/tmp"

run "$CH_RUN" $write -b "$src:/mnt/magic-link" "$img" -- true
is "$rc" 31 "a bind through /proc/self/root (a magic link) is refused"
like "$err" "/mnt/magic-link" "the refusal names the destination"
is "$(snapshot)" "$before" "the magic link's host target is untouched"

# Default binds whose destinations are symlinks to host paths.
esc=$scratch/esc; cp -a "$imgdir" "$esc"
rm "$esc/etc/hosts"; ln -s "$target/marker" "$esc/etc/hosts"
run "$CH_RUN" $write "$(image_of "$esc")" -- sh -c 'test -e /etc/hosts; echo $?'
is "$rc|$out" "0|1" "an optional default bind through a dangling symlink is skipped"
is "$(snapshot)" "$before" "and the host file is untouched"
rm -rf "$esc/tmp"; ln -s "$target" "$esc/tmp"
run "$CH_RUN" $write "$(image_of "$esc")" -- sh -c 'echo job > /tmp/from-job'
is "$rc" 31 "a /tmp that is a symlink to a host directory is an image without /tmp"
like "$err" "image has no /tmp" "the error names /tmp"
[ -e "$target/from-job" ] && not_ok "nothing landed in the symlink's host target" \
                          || ok "nothing landed in the symlink's host target"
mkdir -p "$esc$target"
run "$CH_RUN" $write "$(image_of "$esc")" -- sh -c 'echo job > /tmp/from-job'
is "$rc" 0 "when the symlink's target exists inside the image, /tmp is bound there"
is "$(snapshot)" "$before" "the host directory of the same name is untouched"

# ".." in a destination is refused outright.
run "$CH_RUN" $write -b "$src:/mnt/../../../$target" "$img" -- true
is "$rc" 31 "a destination with .. is refused"
is "$(snapshot)" "$before" "and nothing changed on the host"

# The read-only root can't be written, nor remounted, by the job.
run "$CH_RUN" "$img" -- probe write /bin/new
is "$out" "EROFS" "the job can't write the read-only image"
run "$CH_RUN" "$img" -- sh -c 'mount -o remount,rw / 2>&1; probe write /bin/new'
is "$out" "$(printf '%s\n' "$out" | head -n -1)
EROFS" "the job can't remount the image read-write"
sum_before=$(cksum < "$img" 2>/dev/null || find "$img" -printf '%p %s\n' | sort | cksum)
run "$CH_RUN" -u 0 "$img" -- sh -c 'mount -o remount,rw / 2>/dev/null; probe write /bin/new'
like "$out" "^(EROFS|EACCES)$" "container root can't write the image, even after a remount"
[ -e "$imgdir/bin/new" ] && not_ok "nothing was written into the image" || ok "nothing was written into the image"
sum_after=$(cksum < "$img" 2>/dev/null || find "$img" -printf '%p %s\n' | sort | cksum)
is "$sum_after" "$sum_before" "the image is unchanged"

# Devices can't be created.
run "$CH_RUN" $write "$img" -- probe mknod /tmp/devnode
like "$out" "^(EPERM|EACCES)$" "the job can't create device nodes"

done_testing
