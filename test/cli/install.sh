#!/bin/bash
# meson install puts the programs, libchute (shared, with headers and a
# pkg-config file) and the man pages under the prefix, and what it installs
# works: the installed ch-run runs a container, and a program built against
# the installed library links and runs.
. "$CLI_LIB"
: "${BUILD_ROOT:?}"

dest=$scratch/dest
run meson install -C "$BUILD_ROOT" --no-rebuild --destdir "$dest" --quiet
is "$rc" 0 "meson install succeeds"
prefix=$(meson introspect --buildoptions "$BUILD_ROOT" | python3 -c \
    'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"))')
libdir=$(meson introspect --buildoptions "$BUILD_ROOT" | python3 -c \
    'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="libdir"))')
root=$dest$prefix
sysconfdir=$(meson introspect --buildoptions "$BUILD_ROOT" | python3 -c \
    'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="sysconfdir"))')
case $sysconfdir in
    /*) conf=$dest$sysconfdir/chute/chute.yaml ;;
    *)  conf=$root/$sysconfdir/chute/chute.yaml ;;
esac
for f in bin/ch-run bin/ch-checkns bin/ch-convert bin/ch-fromhost share/man/man1/ch-run.1 \
         share/man/man1/ch-checkns.1 share/man/man1/ch-convert.1 share/man/man1/ch-fromhost.1 \
         share/man/man5/chute.yaml.5 include/chute/plan.hpp "$libdir/pkgconfig/chute.pc"; do
    [ -e "$root/$f" ] && ok "installed $f" || not_ok "installed $f"
done
[ -f "$conf" ] && ok "installed the site configuration" || not_ok "installed the site configuration" "no $conf"
# Every key is commented out: the file is read as empty and changes nothing.
run env CHUTE_CONFIG="$conf" "$root/bin/ch-run" "$img" -- probe exit 5
is "$rc|$err" "5|" "the installed site configuration is valid and changes nothing"
echo "# edited by the site" >> "$conf"
run meson install -C "$BUILD_ROOT" --no-rebuild --destdir "$dest" --quiet
is "$(tail -n 1 "$conf")" "# edited by the site" "installing again keeps the site's edited configuration"
so=$(ls "$root/$libdir"/libchute.so.* 2>/dev/null | head -1)
[ -n "$so" ] && ok "installed libchute.so" || not_ok "installed libchute.so"

run "$root/bin/ch-run" "$img" -- probe exit 3
is "$rc" 3 "the installed ch-run runs a container"
run "$root/bin/ch-run" --feature=seccomp
is "$rc" 0 "the installed ch-run's seccomp filters work (--feature=seccomp)"
# meson install's seccomp self-test: the script it runs, on the real ch-run
# and on one whose test fails.
selftest=$(cd "$(dirname "$CLI_LIB")/../.." && pwd)/bin/seccomp-selftest
run "$selftest" "$root/bin/ch-run"
is "$rc|$out" "0|seccomp self-test passed: --seccomp and --seccomp-deny work here" \
    "the install-time seccomp self-test passes"
printf '#!/bin/sh\necho "ch-run[1]: seccomp self-test failed: setuid(2) was not faked" >&2\nexit 31\n' \
    > "$scratch/broken-ch-run"
chmod +x "$scratch/broken-ch-run"
run "$selftest" "$scratch/broken-ch-run"
is "$rc" 1 "a failing self-test fails the installation"
like "$err" "error: seccomp self-test failed" "... loudly"
like "$err" "setuid\(2\) was not faked" "... with ch-run's reason"
like "$err" "seccomp_check=false" "... and the way to install anyway"
for page in man1/ch-run.1 man1/ch-convert.1 man1/ch-checkns.1 man1/ch-fromhost.1 man5/chute.yaml.5; do
    run man --warnings -l "$root/share/man/$page"
    is "$rc|$err" "0|" "the installed $page renders without warnings"
done
tar -C "$img" -cf "$scratch/img.tar" .
run "$root/bin/ch-convert" -q "$scratch/img.tar" "$scratch/conv.sqfs"
is "$rc" 0 "the installed ch-convert converts a tarball to SquashFS"
run "$root/bin/ch-run" "$scratch/conv.sqfs" -- probe exit 4
is "$rc" 4 "and the installed ch-run runs it"

cat > "$scratch/uses-lib.cpp" <<'EOS'
#include <cstdio>
#include "chute/bind_spec.hpp"
#include "chute/image_ref.hpp"
int main() {
  auto b = chute::bind_spec::parse("/data:/mnt/0:ro");
  std::printf("%s %s %d %s\n", b.src.c_str(), b.dst.c_str(), b.readonly,
              chute::image_ref::mangle("a/b:c").c_str());
}
EOS
# A library built with AddressSanitizer (test/run-all --sanitize) needs its
# programs built with it too (its runtime must be loaded first).
san=
if ldd "$root/$libdir/libchute.so" | grep -q 'libasan'; then
    san="-fsanitize=address,undefined"
fi
run env PKG_CONFIG_SYSROOT_DIR="$dest" PKG_CONFIG_PATH="$root/$libdir/pkgconfig" SAN="$san" \
    sh -c 'c++ -std=c++20 $SAN -o "$1/uses-lib" "$1/uses-lib.cpp" $(pkg-config --cflags --libs chute)' sh "$scratch"
is "$rc" 0 "a program compiles and links against the installed libchute via pkg-config"
run env LD_LIBRARY_PATH="$root/$libdir" "$scratch/uses-lib"
is "$out" "/data /mnt/0 1 a%b+c" "and runs with the installed libchute.so"

done_testing
