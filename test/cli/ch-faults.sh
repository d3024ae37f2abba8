#!/bin/bash
# Faults around the programs: a full disk during ch-convert, an image
# deleted while a job runs on it, a temporary directory that can't be
# written, $HOME and $USER unset, a read-only storage directory. Each gives
# a clear error or works; nothing is lost and nothing is left behind.
#
# The full disk and the read-only /tmp are made without root: a user and
# mount namespace (unshare -rm) mounts a small tmpfs, or makes /tmp
# read-only, and a nested user namespace (unshare --map-user) maps the
# invoking user back to its own ids, so that the programs run as that user.
. "$CLI_LIB"
: "${CH_CONVERT:?}" "${CH_FROMHOST:?}"

export TMPDIR=$scratch/tmp
mkdir "$TMPDIR"
export CHUTE_CONFIG=$scratch/empty.yaml
: > "$CHUTE_CONFIG"
uid=$(id -u)
gid=$(id -g)
sum () { md5sum < "$1" | cut -d' ' -f1; }
listing () { (cd "$1" && find . -printf '%p %y %s\n' | sort | md5sum); }

# Inputs: a small image (a few files), and a large one of 4 MB of random data.
small=$scratch/small
mkdir -p "$small"/{bin,dev,etc,usr,tmp}
echo keep > "$small/etc/keep"
tar -C "$small" -cf "$scratch/small.tar" .
big=$scratch/big
cp -a "$small" "$big"
head -c 4000000 /dev/urandom > "$big/data"
tar -C "$big" -cf "$scratch/big.tar" .
big_sum=$(sum "$scratch/big.tar")
big_listing=$(listing "$big")

can_nest=yes
unshare -rm unshare -U --map-user="$uid" --map-group="$gid" true 2>/dev/null || can_nest=no

# --- a full disk during ch-convert -------------------------------------------
# On a 2 MiB tmpfs holding images made earlier, a 4 MB conversion to each
# output format, replacing an existing image and making a new one.
full=$scratch/full
mkdir "$full"
res=$scratch/full-results
mkdir "$res"
cat > "$scratch/full.sh" <<EOF
cd "$full" || exit 1
[ "\$(id -u)" = "$uid" ] || { echo "not the invoking user: \$(id -u)" > "$res/setup"; exit 1; }
"$CH_CONVERT" -q "$scratch/small.tar" keep.sqfs &&
"$CH_CONVERT" -q "$scratch/small.tar" keep &&
"$CH_CONVERT" -q "$small" keep.tar || { echo "can't make the first images" > "$res/setup"; exit 1; }
md5sum keep.sqfs keep.tar | sort > "$res/before.sums"
find keep -printf '%p %y %s\n' | sort > "$res/before.tree"
run () {  # NAME IN OUT
    "$CH_CONVERT" "\$2" "\$3" > "$res/\$1.out" 2> "$res/\$1.err"
    echo \$? > "$res/\$1.rc"
    ls -A > "$res/\$1.ls"
}
run squash-replace "$scratch/big.tar" keep.sqfs
run dir-replace "$scratch/big.tar" keep
run tar-replace "$big" keep.tar
run squash-new "$scratch/big.tar" new.sqfs
run dir-new "$scratch/big.tar" newdir
run tar-new "$big" new.tar
md5sum keep.sqfs keep.tar | sort > "$res/after.sums"
find keep -printf '%p %y %s\n' | sort > "$res/after.tree"
df -k . | tail -1 | awk '{print \$2}' > "$res/size"
EOF
if [ $can_nest = no ]; then
    for t in "full disk: exit 31" "full disk: message" "full disk: nothing left, nothing lost"; do
        skip "$t" "can't nest user namespaces with unshare --map-user (util-linux 2.38)"
    done
else
    unshare -rm sh -c "mount -t tmpfs -o size=2m tmpfs '$full' &&
                       exec unshare -U --map-user=$uid --map-group=$gid bash '$scratch/full.sh'" \
        > "$scratch/full.log" 2>&1
    if [ -e "$res/setup" ] || [ ! -e "$res/size" ]; then
        echo "Bail out! the full-disk set-up failed: $(cat "$res/setup" "$scratch/full.log" 2>/dev/null)"
        exit 1
    fi
    [ "$(cat "$res/size")" -le 2048 ] || echo "# the tmpfs is larger than asked: $(cat "$res/size") KiB"
    for t in squash-replace dir-replace tar-replace squash-new dir-new tar-new; do
        case $t in
            squash-replace) out=keep.sqfs ;; dir-replace) out=keep ;; tar-replace) out=keep.tar ;;
            squash-new) out=new.sqfs ;; dir-new) out=newdir ;; tar-new) out=new.tar ;;
        esac
        err=$(cat "$res/$t.err")
        is "$(cat "$res/$t.rc")" 31 "full disk, $t: exit 31"
        like "$err" "^ch-convert\[[0-9]+\]: error: .*$out.*: No space left on device" \
             "full disk, $t: the error names $out and says No space left on device"
        is "$(tr '\n' ' ' < "$res/$t.ls")" "keep keep.sqfs keep.tar " \
           "full disk, $t: no partial output, no temporary left"
    done
    is "$(cat "$res/after.sums")" "$(cat "$res/before.sums")" \
       "full disk: the existing SquashFS and tar images are unchanged"
    is "$(cat "$res/after.tree")" "$(cat "$res/before.tree")" \
       "full disk: the existing directory image is unchanged"
    is "$(sum "$scratch/big.tar")|$(listing "$big")" "$big_sum|$big_listing" "full disk: the inputs are unchanged"
fi

# --- an image deleted while a job runs ------------------------------------------
# The job waits on a FIFO bound from the host, so that the image changes
# between two of its steps.
wait_for () {  # FILE
    local i
    for i in $(seq 600); do [ -e "$1" ] && return 0; sleep 0.1; done
    return 1
}
sync=$scratch/sync
mkdir "$sync"
mkfifo "$sync/go"
tree=$scratch/tree
cp -a "$imgdir" "$tree"
head -c 1000000 /dev/urandom > "$tree/data"
want=$(md5sum < "$tree/data" | cut -d' ' -f1)
mksquashfs "$tree" "$scratch/img.sqfs" -noappend -quiet -no-progress >/dev/null
head -c 1000000 /dev/urandom > "$tree/data"
mksquashfs "$tree" "$scratch/other.sqfs" -noappend -quiet -no-progress >/dev/null
"$CH_RUN" -b "$sync:/mnt/0" "$scratch/img.sqfs" -- \
    sh -c 'touch /mnt/0/started; read x < /mnt/0/go; md5sum < /data' \
    > "$scratch/deleted.out" 2> "$scratch/deleted.err" &
pid=$!
if wait_for "$sync/started"; then
    rm "$scratch/img.sqfs"
    cp "$scratch/other.sqfs" "$scratch/img.sqfs"   # another image under the same name
    echo go > "$sync/go"
    wait $pid
    rc=$?
    is "$rc" 0 "SquashFS image replaced while the job runs: the job ends well"
    is "$(cut -d' ' -f1 "$scratch/deleted.out")" "$want" \
       "SquashFS image replaced while the job runs: it reads the original image's data"
else
    kill $pid; wait $pid
    not_ok "SquashFS image replaced while the job runs: the job started" "$(cat "$scratch/deleted.err")"
fi
rm -f "$sync/started"

# A directory image deleted under a job: the job sees its files vanish and
# goes on; ch-run (which the job replaced) exits with the job's status.
doomed=$scratch/doomed
cp -a "$imgdir" "$doomed"
"$CH_RUN" -b "$sync:/mnt/0" "$doomed" -- \
    sh -c 'touch /mnt/0/started; read x < /mnt/0/go; if [ -e /bin/busybox ]; then echo present; else echo gone; fi; exit 7' \
    > "$scratch/doomed.out" 2> "$scratch/doomed.err" &
pid=$!
if wait_for "$sync/started"; then
    rm -rf "$doomed" 2> "$scratch/doomed.rm"
    echo go > "$sync/go"
    wait $pid
    rc=$?
    is "$rc" 7 "directory image deleted while the job runs: ch-run exits with the job's status"
    is "$(cat "$scratch/doomed.out")" gone "directory image deleted while the job runs: the job sees its files gone"
    is "$(ls -A "$scratch" | grep -c '^doomed$')|$(cat "$scratch/doomed.rm")" "0|" \
       "directory image deleted while the job runs: the deletion succeeded, nothing is left of it"
else
    kill $pid; wait $pid
    not_ok "directory image deleted while the job runs: the job started" "$(cat "$scratch/doomed.err")"
fi
is "$(grep -c "$scratch" /proc/self/mountinfo)" 0 "no mount of the test's files is left in the mount table"

# --- a temporary directory that can't be written ----------------------------------
# $TMPDIR read-only: ch-run binds it at /tmp, and needs to write nothing in
# it; ch-convert and ch-fromhost use no temporary files.
img_sq=$scratch/run.sqfs
mksquashfs "$imgdir" "$img_sq" -noappend -quiet -no-progress >/dev/null
fh_img=$scratch/fh-img
mkdir -p "$fh_img"/{bin,etc,usr,opt}
echo lib > "$scratch/libfault.so.1"
tmp_cases () {  # LABEL: each form of ch-run, ch-convert and ch-fromhost; "rc|output" lines
    local o=$scratch/tmpout-$1
    rm -rf "$o"; mkdir "$o"
    "$CH_RUN" "$imgdir" -- echo dir 2>&1
    echo "dir:$?"
    "$CH_RUN" "$img_sq" -- echo squash 2>&1
    echo "squash:$?"
    "$CH_RUN" -t "$imgdir" -- sh -c 'touch /tmp/x && echo private-tmp' 2>&1
    echo "private-tmp:$?"
    "$CH_RUN" -W "$img_sq" -- sh -c 'touch /new && echo write-fake' 2>&1
    echo "write-fake:$?"
    "$CH_RUN" --join-ct=1 --join-tag="faults-$1-$$" "$imgdir" -- echo join 2>&1
    echo "join:$?"
    "$CH_CONVERT" -q "$scratch/small.tar" "$o/img.sqfs" 2>&1
    echo "convert-squash:$?"
    "$CH_CONVERT" -q "$scratch/small.tar" "$o/img" 2>&1
    echo "convert-dir:$?"
    "$CH_FROMHOST" --no-ldconfig -d /opt -p "$scratch/libfault.so.1" "$fh_img" 2>&1
    echo "fromhost:$?"
}
tmp_want="dir
dir:0
squash
squash:0
private-tmp
private-tmp:0
write-fake
write-fake:0
join
join:0
convert-squash:0
convert-dir:0
fromhost:0"
if ! "$CH_RUN" --feature=overlayfs; then  # -W needs Linux 5.11
    tmp_want=${tmp_want/write-fake
write-fake:0/write-fake:31}
fi
rotmp=$scratch/rotmp
mkdir "$rotmp"
chmod 555 "$rotmp"
is "$(TMPDIR=$rotmp tmp_cases ro)" "$tmp_want" "\$TMPDIR read-only: every program works"
is "$(ls -A "$rotmp")" "" "\$TMPDIR read-only: nothing created in it"

# $TMPDIR missing: ch-run's /tmp bind has no source (a clear error naming
# it), except with -t, which binds nothing there; the others need no $TMPDIR.
run env TMPDIR="$scratch/no-such-tmp" "$CH_RUN" "$img_sq" -- true
is "$rc" 31 "\$TMPDIR missing, SquashFS image: exit 31"
like "$err" "can't bind host temporary directory: $scratch/no-such-tmp" "\$TMPDIR missing: the error names it"
run env TMPDIR="$scratch/no-such-tmp" "$CH_RUN" -t "$imgdir" -- echo ok
is "$rc|$out" "0|ok" "\$TMPDIR missing, with -t: works (no host directory is bound at /tmp)"
run env TMPDIR="$scratch/no-such-tmp" "$CH_CONVERT" -q "$scratch/small.tar" "$scratch/notmp.sqfs"
is "$rc|$err" "0|" "\$TMPDIR missing: ch-convert works"
is "$(ls -d "$scratch/no-such-tmp" 2>&1 | grep -c 'No such')" 1 "\$TMPDIR missing: nobody created it"

# /tmp itself read-only (and $TMPDIR unset), in a mount namespace of our
# own; the test's directory stays writable.
cat > "$scratch/rotmp.sh" <<EOF
unset TMPDIR
if touch /tmp/chute-faults-probe 2>/dev/null; then echo "/tmp is writable"; exit 1; fi
$(declare -f tmp_cases)
CH_RUN="$CH_RUN" CH_CONVERT="$CH_CONVERT" CH_FROMHOST="$CH_FROMHOST" scratch="$scratch" \
    imgdir="$imgdir" img_sq="$img_sq" fh_img="$fh_img" tmp_cases rotmp
EOF
if [ $can_nest = no ]; then
    skip "/tmp read-only: every program works" "can't nest user namespaces with unshare --map-user"
else
    out=$(unshare -rm sh -c "mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp &&
                             mount --bind '$scratch' '$scratch' && mount -o remount,bind,rw '$scratch' &&
                             exec unshare -U --map-user=$uid --map-group=$gid bash '$scratch/rotmp.sh'" 2>&1)
    is "$out" "$tmp_want" "/tmp read-only, \$TMPDIR unset: every program works"
fi

# --- $HOME and $USER unset ---------------------------------------------------------------
run env -u HOME "$CH_RUN" "$imgdir" -- sh -c 'echo "$HOME"'
is "$rc|$out" "0|/root" "\$HOME unset: ch-run works, and the job's HOME is /root"
run env -u HOME "$CH_RUN" --home "$img_sq" -- true
is "$rc" 31 "\$HOME unset, --home: exit 31"
like "$err" "--home: \\\$HOME not set" "\$HOME unset, --home: the error names \$HOME"
run env -u HOME -u CHUTE_CONFIG -u XDG_CONFIG_HOME "$CH_RUN" "$img_sq" -- echo ok
is "$rc|$out" "0|ok" "\$HOME unset, no CHUTE_CONFIG: ch-run looks for no user configuration, works"
run env -u HOME -u CHUTE_CONFIG "$CH_CONVERT" -q "$scratch/small.tar" "$scratch/nohome.sqfs"
is "$rc|$err" "0|" "\$HOME unset: ch-convert works"
run env -u HOME -u CHUTE_CONFIG "$CH_FROMHOST" --no-ldconfig -d /opt -p "$scratch/libfault.so.1" "$fh_img"
is "$rc|$err" "0|" "\$HOME unset: ch-fromhost works"
run env -u USER -u HOME "$CH_RUN" "$imgdir" -- echo ok
is "$rc|$out" "0|ok" "\$USER and \$HOME unset: ch-run works"
me=$(id -un)
run env -u USER -u CH_IMAGE_STORAGE "$CH_RUN" "no-such-image-$$" -- true
is "$rc" 31 "\$USER unset, an image name: exit 31"
like "$err" "can't find image: no-such-image-$$ \\(nor /var/tmp/$me\\.ch/img/no-such-image-$$ in storage\\)" \
     "\$USER unset, an image name: the error names the image and where the default storage is, from the user database ($me)"

# --- a read-only storage directory -------------------------------------------------------
store=$scratch/store
mkdir -p "$store/img"
cp -a "$imgdir" "$store/img/myimg"
chmod 555 "$store/img" "$store"
store_listing=$(find "$store" -printf '%p %y %m %s %T@\n' | sort)
run "$CH_RUN" -s "$store" myimg -- echo ok
is "$rc|$out" "0|ok" "read-only storage: ch-run -s DIR NAME works"
run env CH_IMAGE_STORAGE="$store" "$CH_RUN" myimg -- echo ok
is "$rc|$out" "0|ok" "read-only storage: ch-run NAME with \$CH_IMAGE_STORAGE works"
run "$CH_CONVERT" "$scratch/small.tar" "$store/img/new"
is "$rc" 31 "read-only storage: ch-convert into it exits 31"
like "$err" "^ch-convert\[[0-9]+\]: error: .*$store/img.*Permission denied" \
     "read-only storage: the error names the directory and says Permission denied"
run "$CH_CONVERT" "$scratch/small.tar" "$store/img/myimg"
is "$rc" 31 "read-only storage: replacing an image in it exits 31"
run "$CH_RUN" -s "$store" myimg -- echo ok
is "$rc|$out|$(find "$store" -printf '%p %y %m %s %T@\n' | sort)" "0|ok|$store_listing" \
   "read-only storage: the image in it is untouched and still runs"

is "$(ls -A "$TMPDIR")" "" "nothing left in \$TMPDIR"
done_testing
