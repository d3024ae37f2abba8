#!/bin/bash
# ch-fromhost: injection into a small glibc image made at test time (the
# host's dynamic loader, C library and static ldconfig, and programs and
# libraries compiled here): the library directory, ldconfig, -d, -f, -c,
# destinations, copies, symbolic links in the image, errors.
. "$CLI_LIB"
: "${CH_FROMHOST:?}"

fmt='^ch-fromhost\[[0-9]+\]: error: '
unset LD_LIBRARY_PATH   # the probe must find libraries through the image alone

# --- the glibc image: the busybox image plus what a dynamic program needs
g=$scratch/g
cp -a "$imgdir" "$g"
mkdir -p "$g/lib64" "$g/lib/x86_64-linux-gnu" "$g/sbin" "$g/etc/ld.so.conf.d" "$g/opt/fh"
glibc=yes
for f in /lib64/ld-linux-x86-64.so.2 /lib/x86_64-linux-gnu/libc.so.6; do
    cp -L "$f" "$g$f" 2>/dev/null || glibc=no
done
# ldconfig must run with nothing but the image: Debian's is static.
if [ -x /sbin/ldconfig ] && LC_ALL=C ldd /sbin/ldconfig 2>&1 | grep -Eq 'statically linked|not a dynamic'; then
    cp -L /sbin/ldconfig "$g/sbin/ldconfig"
else
    glibc=no
fi
[ "$glibc" = yes ] || { echo "1..0 # SKIP no x86-64 glibc and static /sbin/ldconfig on this host"; exit 0; }
echo 'include /etc/ld.so.conf.d/*.conf' > "$g/etc/ld.so.conf"
# Listed before the C library's directory: the library directory is the
# latter all the same.
echo /opt/fh > "$g/etc/ld.so.conf.d/fh.conf"

# --- host files to inject
h=$scratch/host
mkdir -p "$h/bin" "$h/lib" "$h/data"
printf '#!/bin/sh\necho fhtool\n' > "$h/bin/fhtool"
chmod 0750 "$h/bin/fhtool"
touch -d '2001-02-03 04:05:06' "$h/bin/fhtool"
printf '#!/bin/sh\necho fhtool2\n' > "$h/bin/fhtool2"; chmod 0755 "$h/bin/fhtool2"
printf 'some data\n' > "$h/data/fh.dat"

have_cc=no
if command -v cc > /dev/null; then
    have_cc=yes
    cat > "$h/probe.c" <<'EOF'
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
    void *h;
    int (*f)(void);
    if (argc != 2) return 3;
    h = dlopen(argv[1], RTLD_NOW);
    if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    f = (int (*)(void))dlsym(h, "fhtest_answer");
    if (!f) { fprintf(stderr, "%s\n", dlerror()); return 2; }
    printf("%d\n", f());
    return 0;
}
EOF
    printf 'int fhtest_answer(void) { return ANSWER; }\n' > "$h/fhtest.c"
    lib () {  # NAME ANSWER
        cc -shared -fPIC -DANSWER="$2" -Wl,-soname,"$1" -o "$h/lib/$1" "$h/fhtest.c"
    }
    { cc -o "$g/usr/bin/fhprobe" "$h/probe.c" \
        && lib libfhtest.so.1 42 && lib libfhopt.so.1 7 && lib libfhnocache.so.1 9; } \
        || { echo "Bail out! cc failed"; exit 1; }
    # Through a symbolic link: the contents are copied, under the link's name.
    ln -s libfhtest.so.1 "$h/lib/libfhlink.so.1"
fi
needs_cc () {  # DESCRIPTION: true if cc is here, else a skip
    [ "$have_cc" = yes ] && return 0
    skip "$1" "cc not found"
    return 1
}
probe () {  # LIBRARY
    run "$CH_RUN" "$g" -- /usr/bin/fhprobe "$1"
}
cached () {  # NAME: the image's linker cache lists it
    "$CH_RUN" "$g" -- /sbin/ldconfig -p | grep -q "^[[:space:]]*$1 "
}

# --- library directory
run "$CH_FROMHOST" --print-lib "$g"
is "$rc:$out" "0:/lib/x86_64-linux-gnu" "--print-lib: the directory of libc.so.6, not the first listed"

# --- a library, and ldconfig
if needs_cc "before: the probe can't load libfhtest.so.1"; then
    probe libfhtest.so.1
    if [ "$rc" -ne 0 ] && printf '%s' "$err" | grep -q libfhtest; then
        ok "before: the probe can't load libfhtest.so.1"
    else
        not_ok "before: the probe can't load libfhtest.so.1" "rc=$rc out=$out err=$err"
    fi
fi
if needs_cc "-p LIB: copied"; then
    run "$CH_FROMHOST" -p "$h/lib/libfhtest.so.1" "$g"
    is "$rc:$err" "0:" "-p LIB: copied"
fi
if needs_cc "-p LIB: into the library directory, same contents"; then
    if cmp -s "$h/lib/libfhtest.so.1" "$g/lib/x86_64-linux-gnu/libfhtest.so.1"; then
        ok "-p LIB: into the library directory, same contents"
    else
        not_ok "-p LIB: into the library directory, same contents" "$(ls -la "$g/lib/x86_64-linux-gnu")"
    fi
fi
if needs_cc "-p LIB: ldconfig ran (the cache lists it)"; then
    cached libfhtest.so.1 && ok "-p LIB: ldconfig ran (the cache lists it)" \
        || not_ok "-p LIB: ldconfig ran (the cache lists it)" "$("$CH_RUN" "$g" -- /sbin/ldconfig -p 2>&1)"
fi
if needs_cc "-p LIB: the probe loads it"; then
    probe libfhtest.so.1
    is "$rc:$out" "0:42" "-p LIB: the probe loads it"
fi

# -d into a directory only the cache leads to (/opt/fh: not searched by
# default): the probe loads it only if ldconfig ran.
if needs_cc "-d DIR -p LIB: the probe finds it through the cache"; then
    run "$CH_FROMHOST" -d /opt/fh -p "$h/lib/libfhopt.so.1" "$g"
    [ "$rc" -eq 0 ] || not_ok "-d /opt/fh" "rc=$rc" "$err"
    probe libfhopt.so.1
    is "$rc:$out:$([ -f "$g/opt/fh/libfhopt.so.1" ] && echo there)" "0:7:there" \
       "-d DIR -p LIB: the probe finds it through the cache"
fi
if needs_cc "--no-ldconfig: copied, not in the cache, not found"; then
    run "$CH_FROMHOST" --no-ldconfig -d /opt/fh -p "$h/lib/libfhnocache.so.1" "$g"
    r1=$rc
    probe libfhnocache.so.1
    if [ "$r1" -eq 0 ] && [ -f "$g/opt/fh/libfhnocache.so.1" ] && ! cached libfhnocache.so.1 \
           && [ "$rc" -ne 0 ]; then
        ok "--no-ldconfig: copied, not in the cache, not found"
    else
        not_ok "--no-ldconfig: copied, not in the cache, not found" "ch-fromhost rc=$r1 probe rc=$rc" "$err"
    fi
fi
if needs_cc "-p SYMLINK: a regular file with the link's contents, under its name"; then
    run "$CH_FROMHOST" -p "$h/lib/libfhlink.so.1" "$g"
    t=$g/lib/x86_64-linux-gnu/libfhlink.so.1
    if [ "$rc" -eq 0 ] && [ -f "$t" ] && [ ! -L "$t" ] && cmp -s "$t" "$h/lib/libfhtest.so.1"; then
        ok "-p SYMLINK: a regular file with the link's contents, under its name"
    else
        not_ok "-p SYMLINK: a regular file with the link's contents, under its name" "rc=$rc" "$err"
    fi
fi

# --- programs and other files
run "$CH_FROMHOST" -p "$h/bin/fhtool" "$g"
is "$rc:$err" "0:" "-p BIN: exit 0"
is "$(stat -c '%a %Y' "$g/usr/bin/fhtool" 2>&1)" "$(stat -c '%a %Y' "$h/bin/fhtool")" \
   "-p BIN: in /usr/bin, mode and mtime kept"
is "$("$CH_RUN" "$g" -- /usr/bin/fhtool 2>&1)" "fhtool" "-p BIN: runs in the container"
run "$CH_FROMHOST" -d etc/fh/deeper -p "$h/data/fh.dat" "$g"
is "$rc:$(cat "$g/etc/fh/deeper/fh.dat" 2>&1)" "0:some data" "-d DIR: missing directories made, file there"
run "$CH_FROMHOST" -p "$h/data/fh.dat" "$g"
is "$rc" 31 "no -d, neither lib nor bin: exit 31"
like "$err" "${fmt}don't know where to put \"$h/data/fh.dat\": use -d" "no -d, neither lib nor bin: names it"

# -f: comments, blanks, relative paths; -c: the paths a command prints.
cat > "$h/list" <<EOF
# programs

  $h/bin/fhtool2
data/fh.dat
EOF
(cd "$h" && "$CH_FROMHOST" -d /opt/listed -f list "$g" 2>"$scratch/.err")
rc=$?
is "$rc:$(ls "$g/opt/listed" 2>&1 | tr '\n' ' ')" "0:fh.dat fhtool2 " "-f FILE: every path listed, comments and blanks skipped"
rm -f "$g/usr/bin/fhtool2"
run "$CH_FROMHOST" -c "echo $h/bin/fhtool2; echo; echo '# not me'" "$g"
is "$rc:$(cat "$g/usr/bin/fhtool2" 2>&1 | tail -1)" "0:echo fhtool2" "-c CMD: the path it prints, into /usr/bin"
run "$CH_FROMHOST" -c "echo $h/bin/fhtool; exit 3" "$g"
is "$rc" 31 "-c CMD failing: exit 31"
like "$err" "${fmt}--cmd .*failed \(exit 3\)" "-c CMD failing: says so"
run "$CH_FROMHOST" -p "$h/bin/fhtool" -c "echo $h/bin/fhtool2" -d /opt/both "$g"
is "$rc:$(ls "$g/opt/both" 2>&1 | tr '\n' ' ')" "0:fhtool fhtool2 " "-p and -c combined"

# A read-only old copy is replaced.
chmod 0444 "$g/usr/bin/fhtool2"
printf '#!/bin/sh\necho fhtool2 new\n' > "$h/bin/fhtool2"
run "$CH_FROMHOST" -p "$h/bin/fhtool2" "$g"
is "$rc:$(tail -1 "$g/usr/bin/fhtool2" 2>&1)" "0:echo fhtool2 new" "a read-only destination is replaced"
leftovers=$(find "$g" -name '.ch-fromhost.*' 2>&1)
is "$leftovers" "" "no temporary files left in the image"

# --- symbolic links in the image can't lead out of it
outside=$scratch/outside
mkdir -p "$outside"
printf 'victim\n' > "$outside/fhtool"
ln -s "$outside" "$g/opt/out"                # absolute, to a host directory
ln -s ../../../../../../../../../.. "$g/opt/up"  # relative, far above the root
rm -f "$g/usr/bin/fhtool"
ln -s "$outside/fhtool" "$g/usr/bin/fhtool"   # the destination itself, now a link
run "$CH_FROMHOST" -d /opt/out -p "$h/data/fh.dat" "$g"
is "$rc:$(ls -A "$outside" | tr '\n' ' ')" "0:fhtool " "-d through an absolute link: nothing written outside"
[ -f "$g$outside/fh.dat" ] && ok "-d through an absolute link: resolved inside the image" \
    || not_ok "-d through an absolute link: resolved inside the image" "$(find "$g/tmp" 2>&1 | head)"
run "$CH_FROMHOST" -d "/opt/up$outside" -p "$h/data/fh.dat" "$g"
is "$rc:$(ls -A "$outside" | tr '\n' ' ')" "0:fhtool " "-d through a relative link above the root: nothing written outside"
run "$CH_FROMHOST" -p "$h/bin/fhtool" "$g"
is "$rc:$(cat "$outside/fhtool")" "0:victim" "a link at the destination is not written through"
[ -f "$g/usr/bin/fhtool" ] && [ ! -L "$g/usr/bin/fhtool" ] && ok "a link at the destination is replaced by the file" \
    || not_ok "a link at the destination is replaced by the file" "$(ls -l "$g/usr/bin/fhtool")"

# --- errors
run "$CH_FROMHOST" -p "$h/lib/libnope.so.1" "$g"
is "$rc" 31 "missing source: exit 31"
like "$err" "${fmt}can't read file to inject: \"$h/lib/libnope.so.1\": No such file or directory" \
     "missing source: names it"
run "$CH_FROMHOST" -p "$h/bin/fhtool" -p "$h/nope" -d /opt/never "$g"
is "$rc:$([ -e "$g/opt/never" ] && echo changed)" "31:" "missing source: nothing copied, even the others"
run "$CH_FROMHOST" -p "$h/data" -d /opt/x "$g"
like "$rc:$err" "^31:${fmt#^}\"$h/data\": not a regular file" "a directory as source: refused"
mkfifo "$h/fifo"
run timeout 20 "$CH_FROMHOST" -p "$h/fifo" -d /opt/x "$g"
like "$rc:$err" "^31:${fmt#^}\"$h/fifo\": not a regular file" "a FIFO as source: refused, without waiting on it"
sq=$scratch/img.sqfs
if command -v mksquashfs > /dev/null; then
    mksquashfs "$imgdir" "$sq" -noappend -quiet -no-progress > /dev/null
else
    printf 'hsqs' > "$sq"
fi
run "$CH_FROMHOST" -p "$h/bin/fhtool" "$sq"
is "$rc" 31 "SquashFS image: exit 31"
like "$err" "${fmt}$sq: not a directory image \(ch-fromhost writes into directory images only; with ch-run, --gpu/--device/--mpi inject into any image without writing\)" \
     "SquashFS image: refused, naming it"
run "$CH_FROMHOST" -p "$h/bin/fhtool" "$scratch/no-such-image"
is "$rc" 31 "missing image: exit 31"
like "$err" "${fmt}can't find image: $scratch/no-such-image: No such file or directory" "missing image: names it"
run "$CH_FROMHOST" --bogus -p "$h/bin/fhtool" "$g"
is "$rc" 31 "unknown option: exit 31"
like "$err" "${fmt}unrecognised option \"--bogus\"" "unknown option: names it"
like "$err" "^usage: ch-fromhost" "unknown option: usage follows"
run "$CH_FROMHOST" "$g"
is "$rc" 31 "no source: exit 31"
like "$err" "${fmt}nothing to inject: give -c, -f, -p or --nvidia" "no source: says so"
run "$CH_FROMHOST" -p "$h/bin/fhtool"
like "$rc:$err" "^31:${fmt#^}no image given" "no image: exit 31, says so"
run env PATH=/nonexistent "$CH_FROMHOST" --nvidia "$g"
like "$rc:$err" "^31:${fmt#^}--nvidia: nvidia-container-cli not found \(install it, or use ch-run --gpu, which needs no copy\)" \
     "--nvidia without nvidia-container-cli: exit 31, says what to do"
run "$CH_FROMHOST" --cray-cxi "$g"
like "$rc:$err" "^31:${fmt#^}--cray-cxi: not supported" "--cray-cxi: exit 31, not supported"

# An image without ldconfig: no library directory to find.
n=$scratch/noldconfig
cp -a "$imgdir" "$n"
run "$CH_FROMHOST" --print-lib "$n"
like "$rc:$err" "^31:${fmt#^}$n: the image has no /sbin/ldconfig" "--print-lib without ldconfig: exit 31, says so"
run "$CH_FROMHOST" -d /opt/x --no-ldconfig -p "$h/data/fh.dat" "$n"
is "$rc:$(cat "$n/opt/x/fh.dat" 2>&1)" "0:some data" "without ldconfig: -d and no library still work"
if needs_cc "without ldconfig: a library refused before any copy"; then
    run "$CH_FROMHOST" -d /opt/y -p "$h/lib/libfhtest.so.1" "$n"
    like "$rc:$err:$([ -e "$n/opt/y" ] && echo changed)" \
         "^31:${fmt#^}.*no /sbin/ldconfig .*--no-ldconfig.*:$" "without ldconfig: a library refused before any copy"
fi
# An ldconfig that fails: an error with what it said.
b=$scratch/badldconfig
cp -a "$imgdir" "$b"
mkdir -p "$b/sbin"
printf '#!/bin/sh\necho "cache is broken" >&2\nexit 3\n' > "$b/sbin/ldconfig"
chmod 0755 "$b/sbin/ldconfig"
printf 'not really a library\n' > "$h/lib/libfake.so.1"
run "$CH_FROMHOST" -d /opt/z -p "$h/lib/libfake.so.1" "$b"
like "$rc:$err" "^31:${fmt#^}$b: the image's /sbin/ldconfig failed \(exit 3\): \"cache is broken\"" \
     "failing ldconfig: exit 31 with its output"

run "$CH_FROMHOST" --help
like "$rc:$out" "^0:usage: ch-fromhost" "--help: exit 0, usage on stdout"
run "$CH_FROMHOST" --version
like "$rc:$out" "^0:[0-9]+\.[0-9]+" "--version: exit 0"

done_testing
