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

n=0
failed=0
for t in $targets; do
    n=$((n + 1))
    corpus=$work/corpus-$t
    mkdir -p "$corpus"
    cp "$seeds"/* "$corpus"/
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
