#!/bin/bash
# Hostile inputs for every program (test/fixtures/hostile_inputs.py writes
# them, each with the outcome the man pages document): corrupt SquashFS
# files, absurd paths and sizes, NUL bytes, malformed environment files, CDI
# specs and site configurations, option abuse, traps in OCI layouts and
# images. For each case:
#   - the exit status is the documented one, with no crash and no hang;
#   - standard error names what is wrong (and says no more than an error:
#     no sanitizer report, no "terminate called", no core);
#   - nothing is written outside where the case allows: the canary tree and
#     every input keep their contents, modes and times, $TMPDIR (private to
#     this test) stays empty, the working directory stays empty, no object
#     is left in /dev/shm, no mount in this process's mount table, and no
#     process of the case is left running.
. "$CLI_LIB"
: "${CH_CONVERT:?}" "${CH_FROMHOST:?}" "${CH_CHECKNS:?}"
gen=$(dirname "$CLI_LIB")/../fixtures/hostile_inputs.py

export TMPDIR=$scratch/tmp
mkdir "$TMPDIR"
canary=$scratch/canary
mkdir -p "$canary/sub"
echo precious > "$canary/file"
echo deep > "$canary/sub/file"
chmod 750 "$canary/sub"
corpus=$scratch/corpus
if ! python3 "$gen" --image "$imgdir" --canary "$canary" "$corpus" > "$scratch/gen.log" 2>&1; then
    echo "Bail out! hostile_inputs.py failed: $(cat "$scratch/gen.log")"
    exit 1
fi
count=$(wc -l < "$corpus/MANIFEST")
for p in ch-run ch-convert ch-fromhost ch-checkns; do
    n=$(cut -f2 "$corpus/MANIFEST" | grep -cx "$p")
    [ "$n" -ge 5 ] && ok "$p: $n hostile inputs" || not_ok "$p: $n hostile inputs (want 5 or more)"
done
[ "$count" -ge 50 ] && ok "$count hostile inputs in all" || not_ok "$count hostile inputs (want 50 or more)"

# The programs' environment: no site configuration of the host user's, no
# image storage, no CDI directories but those a case names.
empty_config=$scratch/empty.yaml
: > "$empty_config"
export CHUTE_CONFIG=$empty_config
export CH_IMAGE_STORAGE=$scratch/no-storage
unset CH_RUN_CDI_DIRS
ulimit -c unlimited 2>/dev/null   # a crash leaves a core in the (empty) working directory

# Everything that must not change: names, types, modes, sizes, times
# (modification and change) and link targets, and the canary's contents;
# WHERE is left out.
snapshot () {  # WHERE
    find "$canary" "$corpus" "$imgdir" -path "$1" -prune -o -printf '%p %y %m %s %T@ %C@ %l\n' | sort
    cat "$canary/file" "$canary/sub/file"
}
# What WHERE holds (names, types, sizes): a failed run must leave it so.
where_listing () {  # WHERE
    [ -e "$1" ] && find "$1" -mindepth 1 -printf '%P %y %s\n' | sort
}
shm_objects () {
    find /dev/shm -maxdepth 1 -user "$(id -u)" -newer "$scratch/stamp" \
         \( -name '*ch-run*' -o -name '*chute*' -o -name '*hostile*' \) 2>/dev/null
}
crash_re='terminate called|Sanitizer|runtime error:|Segmentation fault|core dumped|Aborted|std::|what\(\)'

declare -A prog=([ch-run]=$CH_RUN [ch-convert]=$CH_CONVERT [ch-fromhost]=$CH_FROMHOST
                 [ch-checkns]=$CH_CHECKNS)
n=0
while IFS=$'\t' read -r -u 3 name program want errre outre where desc; do
    n=$((n + 1))
    d=$corpus/cases/$name
    args=()
    mapfile -d '' args < "$d/argv"
    envargs=()
    if [ -f "$d/env" ]; then
        while IFS= read -r -d '' e; do
            case $e in
                -*) envargs+=(-u "${e#-}") ;;
                *) envargs+=("$e") ;;
            esac
        done < "$d/env"
    fi
    stdin=/dev/null
    [ -e "$d/stdin" ] && stdin=$d/stdin
    if [ "$where" = - ]; then where_abs=$scratch/nowhere; else where_abs=$corpus/$where; fi
    if [ -f "$d/cwd" ]; then
        cwd=$(cat "$d/cwd")   # inside the snapshot
        own_cwd=
    else
        cwd=$scratch/cwd/$name
        own_cwd=$cwd
        mkdir -p "$cwd"
    fi
    before=$(snapshot "$where_abs")
    where_before=$(where_listing "$where_abs")
    mounts=$(cat /proc/self/mountinfo)
    touch "$scratch/stamp"
    # A generous limit: a hang is a failure, not a slow machine.
    (cd "$cwd" && exec timeout -k 10 120 env "${envargs[@]}" "${prog[$program]}" "${args[@]}") \
        < "$stdin" > "$scratch/.out" 2> "$scratch/.err"
    rc=$?
    err=$(head -c 20000 "$scratch/.err")
    out=$(head -c 20000 "$scratch/.out")
    t="$program $name"

    # The exit status.
    if [ "$rc" = "$want" ]; then
        ok "$t: exit $want ($desc)"
    else
        why=""
        [ "$rc" = 124 ] && why=" (timed out: a hang)"
        [ "$rc" -gt 128 ] && why=" (killed by signal $((rc - 128)): a crash)"
        not_ok "$t: exit $want ($desc)" "got: $rc$why" "stderr: $err" "stdout: $out"
    fi

    # The messages.
    problems=()
    if [ "$errre" = - ]; then
        [ -z "$err" ] || problems+=("stderr should be empty")
    else
        IFS=$'\x1f' read -r -a res <<< "$errre"
        for re in "${res[@]}"; do
            printf '%s\n' "$err" | grep -Eq -- "$re" || problems+=("stderr does not match: $re")
        done
    fi
    if [ "$outre" != - ] && ! printf '%s\n' "$out" | grep -Eq -- "$outre"; then
        problems+=("stdout does not match: $outre")
    fi
    printf '%s\n' "$err" | grep -Eq -- "$crash_re" && problems+=("stderr shows a crash")
    if [ ${#problems[@]} = 0 ]; then
        ok "$t: the messages say what is wrong"
    else
        not_ok "$t: the messages say what is wrong" "${problems[@]}" "stderr: $err" "stdout: $out"
    fi

    # Nothing written outside WHERE, nothing left behind.
    problems=()
    [ "$(snapshot "$where_abs")" = "$before" ] ||
        problems+=("changed: $(diff <(echo "$before") <(snapshot "$where_abs") | grep '^[<>]' | head -5)")
    [ -z "$(ls -A "$TMPDIR")" ] || problems+=("left in \$TMPDIR: $(ls -A "$TMPDIR" | head -5)")
    if [ "$rc" != 0 ] && [ "$(where_listing "$where_abs")" != "$where_before" ]; then
        problems+=("failed, but left something in ${where}: $(diff <(echo "$where_before") \
                   <(where_listing "$where_abs") | grep '^[<>]' | head -5)")
    fi
    if [ -n "$own_cwd" ] && [ -n "$(ls -A "$own_cwd")" ]; then
        problems+=("left in the working directory: $(ls -A "$own_cwd" | head -5)")
    fi
    [ -z "$(shm_objects)" ] || problems+=("left in /dev/shm: $(shm_objects)")
    [ "$(cat /proc/self/mountinfo)" = "$mounts" ] || problems+=("the mount table changed")
    left=$(pgrep -u "$(id -u)" -f -- "$d" | grep -vx "$$")
    [ -z "$left" ] || problems+=("still running: $(ps -o pid=,args= -p "${left//$'\n'/,}" | cut -c1-200)")
    if [ ${#problems[@]} = 0 ]; then
        ok "$t: nothing written outside ${where}, nothing left behind"
    else
        not_ok "$t: nothing written outside ${where}, nothing left behind" "${problems[@]}"
        [ -n "$left" ] && kill -KILL $left 2>/dev/null
    fi
    # The next case starts clean whatever this one left.
    rm -rf "${TMPDIR:?}"/* "$TMPDIR"/.[!.]* 2>/dev/null
done 3< "$corpus/MANIFEST"
is "$n" "$count" "every case of the manifest was run"
done_testing
