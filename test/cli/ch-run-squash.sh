#!/bin/bash
# SquashFS images: compressions, detection, bad images, the served tree's
# contents, concurrency, lifetime (descendants), signals, SIGKILL of the
# launcher, and the server stopping under the job.
. "$CLI_LIB"

marker=$scratch/job-ran
sq () {  # DIR COMP: make a SquashFS file of DIR
    mksquashfs "$1" "$1.$2.sqfs" -comp "$2" -noappend -quiet -no-progress >/dev/null && echo "$1.$2.sqfs"
}
img=$(sq "$imgdir" gzip)

# --- compressions, and detection by magic number
for comp in gzip zstd xz lz4 lzo; do
    f=$(sq "$imgdir" "$comp") || { skip "$comp image runs" "mksquashfs can't write $comp"; continue; }
    run "$CH_RUN" "$f" -- probe cwd
    is "$rc|$out" "0|/" "a $comp image runs"
done
cp "$(sq "$imgdir" gzip)" "$scratch/no-extension"
run "$CH_RUN" "$scratch/no-extension" -- true
is "$rc" 0 "a SquashFS file is recognised by its magic number, not its name"
mkdir "$scratch/dir.sqfs"; cp -a "$imgdir/." "$scratch/dir.sqfs/"
run "$CH_RUN" "$scratch/dir.sqfs" -- true
is "$rc" 0 "a directory named *.sqfs is a directory image"

# --- a root-owned image (mksquashfs -all-root, ch-convert): files are the
# container user's, as in a directory image the user unpacked, so that
# owner-only files stay readable
own=$scratch/own
mkdir "$own"; cp -a "$imgdir/." "$own/"
mkdir -m 0700 "$own/private"
echo secret > "$own/private/key"; chmod 0600 "$own/private/key"
echo group > "$own/etc/grouponly"; chmod 0640 "$own/etc/grouponly"
mksquashfs "$own" "$own.sqfs" -all-root -noappend -quiet -no-progress >/dev/null
run "$CH_RUN" "$own.sqfs" -- sh -c 'cat /private/key /etc/grouponly; stat -c "%u:%g" /private/key /'
is "$rc|$out" "0|secret
group
$(id -u):$(id -g)
$(id -u):$(id -g)" "a root-owned image's 0600 and 0640 files are the user's and readable"
run "$CH_RUN" -u 0 -g 0 "$own.sqfs" -- stat -c "%u:%g" /private/key
is "$rc|$out" "0|0:0" "with -u 0 -g 0 they are root's"
run "$CH_RUN" "$own.sqfs" -- sh -c 'echo x > /private/new'
isnt "$rc" 0 "and the image is still read-only"

# --- bad images: exit 31 naming the file, before the job starts
good=$(sq "$imgdir" gzip)
size=$(stat -c %s "$good")
bad_image () {  # FILE PATTERN DESCRIPTION
    rm -f "$marker"
    run "$CH_RUN" "$1" -- sh -c "touch $marker"
    is "$rc" 31 "$3: exit 31"
    like "$err" "$2" "$3: message names the file and the problem"
    [ -e "$marker" ] && not_ok "$3: the job did not run" || ok "$3: the job did not run"
}
patch_bytes () {  # FILE OFFSET HEX-BYTES
    python3 -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); f.write(bytes.fromhex(sys.argv[3]))' "$@"
}
head -c $((size / 2)) "$good" > "$scratch/half.sqfs"
bad_image "$scratch/half.sqfs" "invalid SquashFS image: $scratch/half.sqfs: truncated: the file has $((size / 2)) bytes" "a truncated image"
head -c 40 "$good" > "$scratch/tiny.sqfs"
bad_image "$scratch/tiny.sqfs" "$scratch/tiny.sqfs: truncated: 40 bytes, shorter than a superblock" "an image cut inside its superblock"
cp "$good" "$scratch/comp.sqfs"; patch_bytes "$scratch/comp.sqfs" 20 0700
bad_image "$scratch/comp.sqfs" "$scratch/comp.sqfs: unsupported compression: unknown \(7\)" "an unsupported compression"
cp "$good" "$scratch/version.sqfs"; patch_bytes "$scratch/version.sqfs" 28 0300
bad_image "$scratch/version.sqfs" "$scratch/version.sqfs: SquashFS version 3.0" "an old SquashFS version"
cp "$good" "$scratch/block.sqfs"; patch_bytes "$scratch/block.sqfs" 12 00300000
bad_image "$scratch/block.sqfs" "$scratch/block.sqfs: corrupt superblock: block size" "a corrupt block size"
cp "$good" "$scratch/table.sqfs"
inode_table=$(python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(96); print(struct.unpack_from("<Q", d, 64)[0])' "$good")
patch_bytes "$scratch/table.sqfs" "$inode_table" ffffffffffffffffffffffffffffffffffffffffffffffff
bad_image "$scratch/table.sqfs" "invalid SquashFS image: $scratch/table.sqfs: corrupt" "a corrupt inode table"
head -c 4096 /dev/urandom > "$scratch/random.sqfs"
bad_image "$scratch/random.sqfs" "unknown image type \(not a directory, not SquashFS\): $scratch/random.sqfs" "a file that is not an image"
cp "$good" "$scratch/noread.sqfs"; chmod 000 "$scratch/noread.sqfs"
bad_image "$scratch/noread.sqfs" "can't open image: $scratch/noread.sqfs: Permission denied" "an unreadable image"

# --- the served tree is the directory's tree
tree=$scratch/tree; cp -a "$imgdir" "$tree"
mkdir -p "$tree/big/sub"
for i in $(seq 1 2500); do : > "$tree/big/file-$i"; done
head -c 10000000 /dev/urandom > "$tree/big/sub/data"
printf 'hello' > "$tree/big/sub/small"
ln "$tree/big/sub/small" "$tree/big/sub/hardlink"
ln -s ../sub/small "$tree/big/sub/symlink"
mkfifo "$tree/big/sub/fifo"
chmod 751 "$tree/big/sub"; chmod 4755 "$tree/big/sub/small"
xattrs=no
python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.chute", b"tested")' "$tree/big/sub/small" 2>/dev/null && xattrs=yes
treesq=$(sq "$tree" zstd)
listing='cd /big && { find . ! -type d -exec stat -c "%n %A %s %h %Y" {} +; find . -type d -exec stat -c "%n %A %Y" {} +; find . -type f -exec md5sum {} +; } | sort | md5sum; ls -a sub; readlink sub/symlink; [ "$(stat -c %i sub/small)" = "$(stat -c %i sub/hardlink)" ] && echo same-inode'
run "$CH_RUN" "$tree" -- sh -c "$listing"
from_dir=$out
run "$CH_RUN" "$treesq" -- sh -c "$listing"
is "$out" "$from_dir" "a 2500-entry tree reads the same from SquashFS as from the directory (names, modes, sizes, links, contents)"
want=$(md5sum < "$tree/big/sub/data")
run "$CH_RUN" "$treesq" -- sh -c 'for i in 1 2 3 4; do md5sum < /big/sub/data & done; wait'
is "$out" "$(printf '%s\n%s\n%s\n%s' "$want" "$want" "$want" "$want")" "four concurrent readers of a 10 MB file get its exact contents"
run "$CH_RUN" "$treesq" -- sh -c 'dd if=/big/sub/data bs=4096 skip=1000 count=3 2>/dev/null | md5sum'
is "$out" "$(dd if="$tree/big/sub/data" bs=4096 skip=1000 count=3 2>/dev/null | md5sum)" "reads in the middle of a file are exact"
if [ "$xattrs" = yes ]; then
    run "$CH_RUN" "$treesq" -- probe xattr /big/sub/small user.chute
    is "$out" "tested" "extended attributes are served"
else
    skip "extended attributes are served" "this file system has no user xattrs"
fi
run "$CH_RUN" "$treesq" -- probe xattr /big/sub/data user.none
like "$out" "^(ENODATA|EOPNOTSUPP)$" "a missing attribute is an error, not a crash"
run "$CH_RUN" "$img" -- probe xattr /bin/busybox user.none
like "$out" "^(ENODATA|EOPNOTSUPP|ENOTSUP)$" "an image without attributes answers for any name"
run "$CH_RUN" "$img" -- sh -c 'grep -c fuse.chute /proc/self/mountinfo'
is "$out" "1" "inside, the image is a FUSE mount"

# --- nothing on the host's mount table, private per run
"$CH_RUN" "$img" -- sh -c "touch $scratch/up; sleep 2" &
pid=$!
for i in $(seq 50); do [ -e "$scratch/up" ] && break; sleep 0.1; done
is "$(grep -c fuse.chute /proc/self/mountinfo)" 0 "while a job runs, the host's mount table shows no mount"
wait $pid

# --- 128 runs at once, one image, one user
want=$(md5sum < "$imgdir/bin/busybox")
for i in $(seq 128); do
    "$CH_RUN" "$img" -- sh -c 'md5sum < /bin/busybox' > "$scratch/conc.$i" 2>&1 &
done
failures=0
for job in $(jobs -p); do wait "$job" || failures=$((failures + 1)); done
is "$failures" 0 "128 concurrent runs on one image all succeed"
is "$(cat "$scratch"/conc.* | sort -u)" "$want" "and all read the right contents"

# --- the image stays mounted while descendants the job left behind run
start=$(date +%s%N)
run "$CH_RUN" "$img" -- sh -c "(sleep 1; md5sum < /bin/busybox > $scratch/bg) & exit 5"
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
is "$rc" 5 "the exit status is the job's, not its descendant's"
is "$(cat "$scratch/bg" 2>/dev/null)" "$want" "a background child reads the image after the job exited"
[ "$elapsed" -ge 900 ] && ok "ch-run waited for the background child (${elapsed} ms)" \
                       || not_ok "ch-run waited for the background child (${elapsed} ms)"

# --- signals sent to the launcher reach the job
for sig in TERM INT HUP QUIT USR1 USR2; do
    rm -f "$scratch/ready" "$scratch/got"
    env --default-signal=INT,QUIT "$CH_RUN" "$img" -- sh -c \
        "trap 'echo $sig > $scratch/got; exit 42' $sig; touch $scratch/ready; while :; do sleep 0.05; done" &
    pid=$!
    for i in $(seq 100); do [ -e "$scratch/ready" ] && break; sleep 0.05; done
    kill -s "$sig" "$pid"
    wait "$pid"; rc=$?
    is "$rc|$(cat "$scratch/got" 2>/dev/null)" "42|$sig" "SIG$sig to the launcher reaches the job's trap"
done
rm -f "$scratch/ready"
"$CH_RUN" "$img" -- sh -c "touch $scratch/ready; exec sleep 30" &
pid=$!
for i in $(seq 100); do [ -e "$scratch/ready" ] && break; sleep 0.05; done
kill -TERM "$pid"; wait "$pid"; rc=$?
is "$rc" 143 "a job killed by the forwarded SIGTERM gives 128+15"

state () { awk '{print $3}' "/proc/$1/stat" 2>/dev/null; }
rm -f "$scratch/ready" "$scratch/jobpid"
"$CH_RUN" "$img" -- sh -c "echo \$\$ > $scratch/jobpid; exec sleep 3" &
pid=$!
for i in $(seq 100); do [ -s "$scratch/jobpid" ] && break; sleep 0.05; done
jobpid=$(cat "$scratch/jobpid")
kill -TSTP "$pid"
for i in $(seq 200); do [ "$(state "$jobpid")$(state "$pid")" = TT ] && break; sleep 0.05; done
is "$(state "$jobpid")$(state "$pid")" "TT" "SIGTSTP stops the job, and the launcher with it"
kill -CONT "$pid"
for i in $(seq 40); do [ "$(state "$jobpid")" != T ] && break; sleep 0.05; done
isnt "$(state "$jobpid")" "T" "SIGCONT resumes the job"
wait "$pid"; rc=$?
is "$rc" 0 "the resumed job finishes normally"

rm -f "$scratch/got" "$scratch/jobpid"
"$CH_RUN" "$img" -- sh -c "trap 'echo TSTP > $scratch/got' TSTP; echo \$\$ > $scratch/jobpid; while [ ! -s $scratch/got ]; do sleep 0.05; done" &
pid=$!
for i in $(seq 100); do [ -s "$scratch/jobpid" ] && break; sleep 0.05; done
kill -TSTP "$pid"
for i in $(seq 100); do [ -s "$scratch/got" ] && break; sleep 0.05; done
kill -CONT "$pid"
wait "$pid"; rc=$?
is "$rc|$(cat "$scratch/got" 2>/dev/null)" "0|TSTP" "a job that catches SIGTSTP gets SIGTSTP"

# --- SIGKILL of the launcher leaves nothing behind
# Other test files run at the same time and use /tmp and /dev/shm too, so
# these runs get a private, empty TMPDIR, and /dev/shm is compared by owner.
shm_mine () { find /dev/shm -mindepth 1 -maxdepth 1 -user "$(id -u)" | sort; }
shm_before=$(shm_mine)
killtmp=$scratch/killtmp
mkdir "$killtmp"
TMPDIR=$killtmp "$CH_RUN" "$img" -- sh -c 'echo $$ > /tmp/jobpid; exec sleep 30' &
pid=$!
for i in $(seq 100); do [ -s "$killtmp/jobpid" ] && break; sleep 0.05; done
jobpid=$(cat "$killtmp/jobpid")
kill -KILL "$pid"; wait "$pid" 2>/dev/null
for i in $(seq 40); do [ -d "/proc/$jobpid" ] || break; sleep 0.05; done
rm -f "$killtmp/jobpid"   # the job's own file; chute's would be anything else
[ -d "/proc/$jobpid" ] && not_ok "SIGKILL of the launcher takes the job down" \
                       || ok "SIGKILL of the launcher takes the job down"
for n in $(seq 20); do   # and at random moments of start-up
    TMPDIR=$killtmp "$CH_RUN" "$img" -- sh -c 'md5sum /bin/busybox >/dev/null' >/dev/null 2>&1 &
    p=$!
    sleep "0.00$((RANDOM % 10))"
    kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
done
# The last jobs go down as their launcher does; on a slow (sanitizer) build
# that may take a moment: wait for them, at most 5 s.
for i in $(seq 50); do
    [ "$(pgrep -u "$(id -u)" -f 'md5sum /bin/busybox' | wc -l)" = 0 ] && break
    sleep 0.1
done
is "$(grep -c fuse.chute /proc/self/mountinfo)" 0 "after SIGKILLs, no mount on the host"
is "$(shm_mine)" "$shm_before" "after SIGKILLs, nothing new in /dev/shm"
is "$(ls -A "$killtmp")" "" "after SIGKILLs, nothing left in \$TMPDIR"
is "$(pgrep -u "$(id -u)" -f 'md5sum /bin/busybox' | wc -l)" 0 "after SIGKILLs, no job left running"

# --- the server stopping under the job (FUSE connection aborted)
if [ -d /sys/fs/fuse/connections ] && grep -q fusectl /proc/self/mountinfo; then
    rm -f "$scratch/dev"
    "$CH_RUN" "$img" -- sh -c "stat -c %d / > $scratch/dev; sleep 1; ls /bin >/dev/null 2>&1; exit 0" \
        > /dev/null 2> "$scratch/abort-err" &
    pid=$!
    for i in $(seq 100); do [ -s "$scratch/dev" ] && break; sleep 0.05; done
    echo 1 > "/sys/fs/fuse/connections/$(cat "$scratch/dev")/abort"
    wait "$pid"; rc=$?
    is "$rc" 84 "a server stopped under the job exits 84"
    like "$(cat "$scratch/abort-err")" "SquashFS server stopped" "and says so"
else
    skip "a server stopped under the job exits 84" "fusectl is not mounted"
    skip "and says so" "fusectl is not mounted"
fi

done_testing
