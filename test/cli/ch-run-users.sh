#!/bin/bash
# Two users at once on one image: $CHUTE_USERS_RUNS (default 64) runs of
# each user, all alive at the same time, on one directory image and on one
# SquashFS image; then --join groups of 4 of both users with the same tags
# at the same time. Zero failures; every run is its own user's (its uid,
# its own container, never a container of the other user's group); and
# nothing is left behind for either user: no process, no /dev/shm object,
# no file in its $TMPDIR, no --join socket, no mount on the host.
#
# Switching between two users needs root, so test/run-all runs this file as
# root when it runs as root, with CHUTE_TEST_USERS ("USER1 USER2", two
# unprivileged users) and CHUTE_TEST_USERS_SCRATCH (an empty directory
# under /var/tmp that both can reach, mode 1777). The only thing it does as
# root is to start commands as those users with runuser(1); the containers
# and everything else run unprivileged. Otherwise it reports one skip.
set -u
: "${CH_RUN:?}" "${PROBE:?}" "${CLI_LIB:?}"
base=$(dirname "$CLI_LIB")/lib-base.sh
. "$base"

skip_all () {
    echo "ok 1 - ch-run-users # SKIP $1"
    echo "1..1"
    exit 0
}
[ "$(id -u)" = 0 ] || skip_all "switching between two test users needs root (test/run-all does it when run as root)"
read -r u1 u2 _ <<<"${CHUTE_TEST_USERS:-}"
S=${CHUTE_TEST_USERS_SCRATCH:-}
{ [ -n "${u2:-}" ] && [ -d "$S" ]; } \
    || skip_all "CHUTE_TEST_USERS and CHUTE_TEST_USERS_SCRATCH are not set (test/run-all sets them when run as root)"
uid1=$(id -u "$u1") && uid2=$(id -u "$u2") || { echo "Bail out! no such user: $u1 or $u2"; exit 1; }
{ [ "$uid1" != 0 ] && [ "$uid2" != 0 ] && [ "$uid1" != "$uid2" ]; } \
    || { echo "Bail out! CHUTE_TEST_USERS must name two distinct unprivileged users"; exit 1; }

runs=${CHUTE_USERS_RUNS:-64}
mark=users-$$-$RANDOM   # in the environment of every run started here
tags=ut$$               # --join tags, the same for both users

# as USER CMD...: CMD as USER, unprivileged, in a small fixed environment.
as () {
    local u=$1
    shift
    runuser -u "$u" -- env -i PATH=/usr/local/bin:/usr/bin:/bin USER="$u" \
        HOME="$(getent passwd "$u" | cut -d: -f6)" TMPDIR="$S/$u/tmp" PROBE="$PROBE" "$@"
}

cleanup () {
    as "$u1" rm -rf "$S/img" "$S/img.sqfs" "$S/sync"
    as "$u1" rm -rf "$S/$u1"
    as "$u2" rm -rf "$S/$u2"
}
trap cleanup EXIT

# The image, made by the first user, readable by both; a directory through
# which every container sees when to go on; each user's own $TMPDIR.
as "$u1" bash -c '. "$1" && mkimage "$2" && mkdir "$3" && mksquashfs "$2" "$2.sqfs" -noappend -quiet -no-progress >/dev/null' \
    _ "$base" "$S/img" "$S/sync" || { echo "Bail out! can't make the image in $S as $u1"; exit 1; }
for u in "$u1" "$u2"; do
    as "$u" mkdir -p "$S/$u/tmp" || { echo "Bail out! can't make $S/$u as $u"; exit 1; }
done
if ! out=$(as "$u2" "$CH_RUN" "$S/img" -- true 2>&1); then
    echo "Bail out! $u2 can't run $CH_RUN on $S/img (is the build directory reachable by all?): $out"
    exit 1
fi
want=$(md5sum < "$S/img/bin/busybox" | cut -c1-32)

# What every run does: note that it runs (in its /tmp, the user's
# $TMPDIR), wait until all runs of both users run, then report the image's
# contents, its uid and its namespaces.
job='touch /tmp/ready.$1.$$
n=0
while [ ! -e /mnt/0/go.$1 ] && [ $n -lt 1500 ]; do sleep 0.2; n=$((n + 1)); done
[ -e /mnt/0/go.$1 ] || { echo "never told to go"; exit 3; }
h=$(md5sum < /bin/busybox)
echo "${h%% *} $(id -u) $(readlink /proc/self/ns/user) $(readlink /proc/self/ns/mnt)"'

# batch OUT PHASE IMAGE COUNT JOIN-CT TAG SYNC JOB: (as a user) COUNT runs
# at once, in --join groups of JOIN-CT when it is not 0, tagged TAG-GROUP,
# with SYNC on /mnt/0; each one's output in OUT.I, the statuses in
# OUT.status.
batch () {
    local out=$1 phase=$2 im=$3 count=$4 ct=$5 tag=$6 sync=$7 job=$8 i p
    local pids=() opts=()
    for i in $(seq "$count"); do
        [ "$ct" = 0 ] || opts=(--join-ct="$ct" --join-tag="$tag-$(( (i - 1) / ct ))")
        "$CH_RUN" "${opts[@]}" -b "$sync:/mnt/0" "$im" -- sh -c "$job" job "$phase" \
            >"$out.$i" 2>&1 &
        pids+=($!)
    done
    i=0
    for p in "${pids[@]}"; do
        i=$((i + 1))
        wait "$p"
        echo "$i $?"
    done >"$out.status"
}

ready_count () {  # PHASE
    local u c=0
    for u in "$u1" "$u2"; do
        c=$(( c + $(find "$S/$u/tmp" -maxdepth 1 -name "ready.$1.*" | wc -l) ))
    done
    echo "$c"
}

shm_of () { find /dev/shm -mindepth 1 -maxdepth 1 -user "$1" 2>/dev/null | sort; }
shm1=$(shm_of "$u1") shm2=$(shm_of "$u2")
mounts_before=$(< /proc/self/mountinfo)

# phase NAME IMAGE COUNT JOIN-CT: COUNT runs of each user at once.
phase () {
    local name=$1 im=$2 count=$3 ct=$4 u i bpids=() ready
    for u in "$u1" "$u2"; do
        as "$u" env CHUTE_USERS_MARK="$mark" CH_RUN="$CH_RUN" \
            bash -c "$(declare -f batch); batch \"\$@\"" _ "$S/$u/$name" "$name" "$im" "$count" "$ct" "$tags-$name" "$S/sync" "$job" &
        bpids+=($!)
    done
    # All of them running at once (a loaded machine may take a while).
    for i in $(seq 1500); do
        ready=$(ready_count "$name")
        [ "$ready" -ge $((2 * count)) ] && break
        kill -0 "${bpids[0]}" 2>/dev/null || kill -0 "${bpids[1]}" 2>/dev/null || break
        sleep 0.2
    done
    as "$u1" touch "$S/sync/go.$name"
    for i in "${bpids[@]}"; do wait "$i"; done
    is "$ready" $((2 * count)) "$name: $count runs of $u1 and $count of $u2 all ran at once"

    local fails=0 first=
    for u in "$u1" "$u2"; do
        while read -r i st; do
            [ "$st" = 0 ] && continue
            fails=$((fails + 1))
            [ -n "$first" ] || first="$u's run $i: exit $st: $(cat "$S/$u/$name.$i")"
        done <"$S/$u/$name.status"
        [ "$(wc -l <"$S/$u/$name.status")" = "$count" ] || { fails=$((fails + 1)); first="$u: statuses missing"; }
    done
    if [ "$fails" = 0 ]; then ok "$name: zero failures"; else not_ok "$name: zero failures" "$fails failed; first: $first"; fi

    # HASH UID USERNS MNTNS, one line per run.
    local bad= lines1 lines2 good
    lines1=$(cat "$S/$u1/$name".[0-9]*) lines2=$(cat "$S/$u2/$name".[0-9]*)
    good=$(printf '%s\n' "$lines1" | awk -v h="$want" -v u="$uid1" '$1 == h && $2 == u' | wc -l)
    good+=" $(printf '%s\n' "$lines2" | awk -v h="$want" -v u="$uid2" '$1 == h && $2 == u' | wc -l)"
    bad=$(printf '%s\n' "$lines1" | awk -v h="$want" -v u="$uid1" '$1 != h || $2 != u' | head -n 3)
    bad+=$(printf '%s\n' "$lines2" | awk -v h="$want" -v u="$uid2" '$1 != h || $2 != u' | head -n 3)
    if [ "$good" = "$count $count" ] && [ -z "$bad" ]; then
        ok "$name: every run read the image right, as its own user's uid"
    else
        not_ok "$name: every run read the image right, as its own user's uid" "right: $good of $count per user; want $want $uid1|$uid2; got: $bad"
    fi
    local c1 c2 both
    c1=$(printf '%s\n' "$lines1" | cut -d' ' -f3,4 | sort -u | wc -l)
    c2=$(printf '%s\n' "$lines2" | cut -d' ' -f3,4 | sort -u | wc -l)
    both=$(printf '%s\n%s\n' "$lines1" "$lines2" | cut -d' ' -f3,4 | sort -u | wc -l)
    if [ "$ct" = 0 ]; then
        is "$c1 $c2 $both" "$count $count $((2 * count))" "$name: every run has a container of its own"
    else
        local g=$(( (count + ct - 1) / ct )) split=0 grp
        # Each group's members report one container, the same for all of them.
        for u in "$u1" "$u2"; do
            for grp in $(seq 0 $((g - 1))); do
                i=$(for p in $(seq $((grp * ct + 1)) $(( (grp + 1) * ct ))); do
                        [ -e "$S/$u/$name.$p" ] && cut -d' ' -f3,4 "$S/$u/$name.$p"
                    done | sort -u | wc -l)
                [ "$i" = 1 ] || split=$((split + 1))
            done
        done
        is "$split" 0 "$name: each user's group of $ct shares one container"
        is "$c1 $c2 $both" "$g $g $((2 * g))" \
            "$name: the two users' groups of the same tags never share a container"
    fi
    rm -f "$S/sync/go.$name" 2>/dev/null
}

phase dir "$S/img" "$runs" 0
phase squash "$S/img.sqfs" "$runs" 0
phase join-dir "$S/img" $((runs / 2)) 4
phase join-squash "$S/img.sqfs" $((runs / 2)) 4

# Nothing left behind, for either user.
for u in "$u1" "$u2"; do
    for i in $(seq 100); do
        left=$(as "$u" grep -lsazx -- "CHUTE_USERS_MARK=$mark" /proc/[0-9]*/environ)
        [ -z "$left" ] && break
        sleep 0.1
    done
    is "$left" "" "$u: no process left"
    is "$(find "$S/$u/tmp" -mindepth 1 ! -name 'ready.*')" "" "$u: nothing left in \$TMPDIR"
done
# (Objects that a live process holds are not this file's: other tests may
# run meanwhile.)
shm_new () {  # USER BEFORE
    local p
    for p in $(comm -13 <(printf '%s\n' "$2") <(shm_of "$1")); do
        as "$1" bash -c '. "$1"; held "$2"' _ "$base" "$p" || echo "$p"
    done
}
is "$(shm_new "$u1" "$shm1")|$(shm_new "$u2" "$shm2")" "|" "nothing left in /dev/shm by either user"
is "$(grep -c "@chute-join/[0-9]*/$tags-" /proc/net/unix)" 0 "no --join socket left"
is "$(diff <(printf '%s\n' "$mounts_before") /proc/self/mountinfo)" "" "the host's mount table is unchanged"

done_testing
