#!/bin/bash
# ch-convert: every pair of formats on images made at test time (a busybox
# image with files of every kind, a docker-archive and an OCI layout of three
# layers with whiteouts), a round trip, unwrapping, mount points, existing
# outputs, detection, options, errors, interruption, corrupt inputs.
. "$CLI_LIB"
: "${CH_CONVERT:?}"

fmt='^ch-convert\[[0-9]+\]: error: '
summary='^ch-convert\[[0-9]+\]: [0-9]+ entries, [0-9.]+ MB read, [0-9.]+ MB written in [0-9.]+ s$'
me=$(id -u)

# --- the source image: the busybox image, and under /t files of every kind
src=$scratch/src
cp -a "$imgdir" "$src"
t=$src/t
mkdir -p "$t/empty" "$t/ro" "$t/sub"
printf '#!/bin/sh\necho x755\n' > "$t/x755"; chmod 0755 "$t/x755"
printf 'group-readable\n' > "$t/r640"; chmod 0640 "$t/r640"
printf 'read-only\n' > "$t/r444"; chmod 0444 "$t/r444"
ln -s ../r640 "$t/sub/rel-link"
ln -s /etc/hosts "$t/abs-link"
ln -s nowhere "$t/dangling"
printf 'linked\n' > "$t/hard1"; ln "$t/hard1" "$t/sub/hard2"
printf 'in a 0555 directory\n' > "$t/ro/file"
printf 'has an xattr\n' > "$t/xattr"
xattrs=no
setfattr -n user.chute -v tested "$t/xattr" 2>/dev/null && xattrs=yes
chmod 0555 "$t/ro"
srcsq=$scratch/src.sqfs   # made by mksquashfs, as input
mksquashfs "$src" "$srcsq" -comp gzip -noappend -quiet -no-progress > /dev/null \
    || { echo "Bail out! mksquashfs failed"; exit 1; }
srctgz=$scratch/src.tar.gz   # made by GNU tar, as input
tar -C "$src" --xattrs --xattrs-include='user.*' -czf "$srctgz" . \
    || { echo "Bail out! tar failed"; exit 1; }

# tree DIR: what a conversion keeps of an image: each entry's name, type,
# permissions, size (but directories') and link target, then the checksums
# of the files. ch/ is left out: ch-convert may add metadata there.
tree () {
    (cd "$1" && {
        find . -mindepth 1 ! -path './ch' ! -path './ch/*' ! -type d -printf '%P %y %m %s %l\n'
        find . -mindepth 1 ! -path './ch' ! -path './ch/*' -type d -printf '%P %y %m\n'
        find . ! -path './ch/*' -type f -exec md5sum {} +
    } | sort)
}
# The safety rules give files u+rw and directories u+rwx.
normalised () { sed -e 's|^t/r444 f 444 |t/r444 f 644 |' -e 's|^t/ro d 555$|t/ro d 755|'; }
want=$(tree "$src" | normalised)
[ "$(printf '%s\n' "$want" | grep -c '^t/')" -ge 10 ] || { echo "Bail out! the source tree is wrong"; exit 1; }

same_inode () { [ "$(stat -c %i "$1")" = "$(stat -c %i "$2")" ]; }

# The checks of the links and the xattr on a tree on this host.
check_links () {  # DIR DESCRIPTION
    same_inode "$1/t/hard1" "$1/t/sub/hard2" && ok "$2: hard links share an inode" \
        || not_ok "$2: hard links share an inode" "$(stat -c '%i %n' "$1/t/hard1" "$1/t/sub/hard2" 2>&1)"
    is "$(readlink "$1/t/sub/rel-link")|$(readlink "$1/t/abs-link")" "../r640|/etc/hosts" \
       "$2: symlink targets, relative and absolute, verbatim"
}
check_xattr () {  # DIR DESCRIPTION
    if [ "$xattrs" = yes ]; then
        is "$(getfattr --absolute-names --only-values -n user.chute "$1/t/xattr" 2>&1)" "tested" \
           "$2: user.* xattr kept"
    else
        skip "$2: user.* xattr kept" "this file system has no user xattrs"
    fi
}

# check_dir DIR DESCRIPTION: a directory output is the source image.
check_dir () {
    is "$(tree "$1")" "$want" "$2: names, types, modes, sizes, link targets, contents"
    check_links "$1" "$2"
    check_xattr "$1" "$2"
    is "$(find "$1" ! -user "$me" | head -3)" "" "$2: owned by the invoking user"
    run "$CH_RUN" "$1" -- cat /t/r640
    is "$rc|$out" "0|group-readable" "$2: ch-run runs it"
}

magic () {  # FILE: the format its first bytes say
    local h
    h=$(od -An -tx1 -N6 "$1" | tr -d ' \n')
    case $h in
        1f8b*) echo gzip ;;
        fd377a585a00) echo xz ;;
        28b52ffd*) echo zstd ;;
        68737173*) echo squash ;;
        *) [ "$(dd if="$1" bs=1 skip=257 count=5 2>/dev/null)" = ustar ] && echo tar || echo "unknown $h" ;;
    esac
}

# check_tar FILE COMPRESSION DESCRIPTION: a tar output holds the source image.
check_tar () {
    local x=$1.x
    is "$(magic "$1")" "$2" "$3: compression $2"
    run tar --numeric-owner -tvf "$1"
    is "$rc|$(printf '%s\n' "$out" | awk '{print $2}' | sort -u)" "0|0/0" "$3: every member owned by 0/0"
    mkdir "$x"
    run tar -C "$x" --xattrs --xattrs-include='user.*' -xpf "$1"
    is "$rc" 0 "$3: GNU tar extracts it"
    is "$(tree "$x" | normalised)" "$want" "$3: names, types, modes, sizes, link targets, contents"
    check_links "$x" "$3"
    check_xattr "$x" "$3"
}

# check_squash FILE DESCRIPTION: a SquashFS output holds the source image.
check_squash () {
    local x=$1.x
    is "$(magic "$1")" squash "$2: a SquashFS file"
    run unsquashfs -lls "$1"
    is "$rc|$(printf '%s\n' "$out" | awk '/squashfs-root/ {print $2}' | sort -u)" "0|root/root" \
       "$2: unsquashfs -lls lists every file as owned by root"
    run unsquashfs -q -no-progress -no-xattrs -d "$x" "$1"
    is "$rc" 0 "$2: unsquashfs extracts it"
    is "$(tree "$x" | normalised)" "$want" "$2: names, types, modes, sizes, link targets, contents"
    check_links "$x" "$2"
    # (Files owned by root: the job, this user, reads those that others may.)
    run "$CH_RUN" "$1" -- cat /t/hard1 /t/ro/file
    is "$rc|$out" "0|linked
in a 0555 directory" "$2: ch-run runs it and reads its files"
    run "$CH_RUN" "$1" -- sh -c 'stat -c %i /t/hard1 /t/sub/hard2 | uniq | wc -l; readlink /t/sub/rel-link'
    is "$out" "1
../r640" "$2: inside ch-run, hard links share an inode and symlinks keep their target"
    if [ "$xattrs" = yes ]; then
        run "$CH_RUN" "$1" -- probe xattr /t/xattr user.chute
        is "$out" "tested" "$2: inside ch-run, the user.* xattr is there"
    else
        skip "$2: inside ch-run, the user.* xattr is there" "this file system has no user xattrs"
    fi
}

conv () {  # DESCRIPTION CH-CONVERT-ARGS...: run a conversion that must succeed
    local desc=$1; shift
    run "$CH_CONVERT" -q "$@"
    is "$rc|$out|$err" "0||" "$desc: exit 0, nothing printed with -q"
}

# --- dir -> tar, each compression; dir -> squash; and back
o=$scratch/pairs; mkdir "$o"
for c in tar:tar tar.gz:gzip tar.xz:xz tar.zst:zstd; do
    ext=${c%%:*}
    conv "dir -> .$ext" "$src" "$o/out.$ext"
    check_tar "$o/out.$ext" "${c#*:}" "dir -> .$ext"
done
conv "dir -> squash" "$src" "$o/dir.sqfs"
check_squash "$o/dir.sqfs" "dir -> squash"

# --- tar -> dir, tar -> squash (a GNU tar with xattrs; ch-convert's own tars)
conv "tar (GNU, gzip) -> dir" "$srctgz" "$o/from-tgz"
check_dir "$o/from-tgz" "tar (GNU, gzip) -> dir"
conv "tar (own, zstd) -> dir" "$o/out.tar.zst" "$o/from-zst"
check_dir "$o/from-zst" "tar (own, zstd) -> dir"
conv "tar (own, none) -> dir" "$o/out.tar" "$o/from-tar"
is "$(tree "$o/from-tar")" "$want" "tar (own, none) -> dir: the same tree"
conv "tar (GNU, gzip) -> squash" "$srctgz" "$o/tgz.sqfs"
check_squash "$o/tgz.sqfs" "tar (GNU, gzip) -> squash"

# --- squash -> dir, squash -> tar (a mksquashfs image, owned by this user)
conv "squash -> dir" "$srcsq" "$o/from-sqfs"
check_dir "$o/from-sqfs" "squash -> dir"
conv "squash -> tar.gz" "$srcsq" "$o/sq.tar.gz"
check_tar "$o/sq.tar.gz" gzip "squash -> tar.gz"
conv "squash (own) -> dir" "$o/dir.sqfs" "$o/from-own-sqfs"
is "$(tree "$o/from-own-sqfs")" "$want" "squash (own) -> dir: the same tree"

# --- round trip: dir -> tar.gz -> squash -> dir
rt=$scratch/rt; mkdir "$rt"
conv "round trip: dir -> tar.gz" "$src" "$rt/a.tar.gz"
conv "round trip: tar.gz -> squash" "$rt/a.tar.gz" "$rt/b.sqfs"
conv "round trip: squash -> dir" "$rt/b.sqfs" "$rt/c"
check_dir "$rt/c" "round trip dir -> tar.gz -> squash -> dir"

# --- SquashFS options
sq_info () { unsquashfs -s "$1" 2>/dev/null | sed -n "s/^$2 //p" | head -1; }
is "$(sq_info "$o/dir.sqfs" Compression)" "zstd" "the default SquashFS compression is zstd"
is "$(sq_info "$o/dir.sqfs" 'Block size')" "131072" "the default block size is 128K"
conv "--squash-compress=gzip --squash-block-size=64K" --squash-compress=gzip \
     --squash-block-size=64K "$srctgz" "$o/gz64.sqfs"
is "$(sq_info "$o/gz64.sqfs" Compression)|$(sq_info "$o/gz64.sqfs" 'Block size')" "gzip|65536" \
   "--squash-compress and --squash-block-size are applied"
run "$CH_RUN" "$o/gz64.sqfs" -- cat /t/hard1
is "$out" "linked" "a gzip, 64K-block image runs"
if [ "$xattrs" = yes ]; then
    conv "--no-xattrs" --no-xattrs "$srctgz" "$o/noxattr"
    is "$(getfattr --absolute-names --only-values -n user.chute "$o/noxattr/t/xattr" 2>/dev/null)" "" \
       "--no-xattrs: no xattr copied"
else
    skip "--no-xattrs: no xattr copied" "this file system has no user xattrs"
fi

# --- layered images: a docker-archive and an OCI layout (dir and tar) of
# three layers: the image, then whiteouts, an opaque directory, a changed
# file; then the whiteout of a directory. Layer 2 is gzip in the OCI layout.
cat > "$scratch/mklayered.py" <<'EOF'
import gzip, hashlib, io, json, os, sys, tarfile
img, out = sys.argv[1], sys.argv[2]
def member(tf, name, data=None, mode=0o644, kind=tarfile.REGTYPE):
    t = tarfile.TarInfo(name); t.mode = mode; t.type = kind; t.mtime = 1700000000
    t.uid = t.gid = 1234
    if data is not None: t.size = len(data)
    tf.addfile(t, io.BytesIO(data) if data is not None else None)
def layer(fill):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf: fill(tf)
    return buf.getvalue()
def l1(tf):
    for e in sorted(os.listdir(img)):
        if e != "ch": tf.add(os.path.join(img, e), arcname=e)
    D = tarfile.DIRTYPE
    for d in ("data", "opq", "opq/sub", "over", "gone-dir"): member(tf, d, mode=0o755, kind=D)
    member(tf, "data/keep", b"keep-this-content-marker\n"); member(tf, "data/gone", b"gone\n")
    member(tf, "opq/old1", b"old1\n"); member(tf, "opq/sub/old2", b"old2\n")
    member(tf, "over/file", b"lower\n"); member(tf, "gone-dir/a", b"a\n")
    member(tf, "etc/lower-only", b"lower-only\n")
def l2(tf):
    member(tf, "data/.wh.gone", b""); member(tf, "opq/.wh..wh..opq", b"")
    member(tf, "opq/new", b"upper new\n"); member(tf, "over/file", b"upper\n")
    member(tf, "l2", mode=0o755, kind=tarfile.DIRTYPE); member(tf, "l2/added", b"added\n")
def l3(tf):
    member(tf, ".wh.gone-dir", b""); member(tf, "l3file", b"three\n")
layers = [layer(l1), layer(l2), layer(l3)]
sha = lambda b: hashlib.sha256(b).hexdigest()
config = {"Env": ["PATH=/usr/bin:/bin", "CHUTE_VAR=from-config", "WITH_EQ=a=b c"],
          "WorkingDir": "/data", "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"]}
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": config,
                  "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(l) for l in layers]}}).encode()

def write_tar(path, files, skip=()):
    with tarfile.open(path, "w") as tf:
        for name, data in files:
            if name not in skip: member(tf, name, data)

# docker save, old layout
ids = [sha(l) for l in layers]
files = []
for i, l in zip(ids, layers):
    files += [(i + "/VERSION", b"1.0"), (i + "/json", json.dumps({"id": i}).encode()), (i + "/layer.tar", l)]
files.append((sha(cfg) + ".json", cfg))
files.append(("manifest.json", json.dumps([{"Config": sha(cfg) + ".json", "RepoTags": ["chute/test:latest"],
                                             "Layers": [i + "/layer.tar" for i in ids]}]).encode()))
write_tar(out + "/docker.tar", files)
write_tar(out + "/docker-nomanifest.tar", files, skip={"manifest.json"})
write_tar(out + "/docker-nolayer.tar", files, skip={ids[1] + "/layer.tar"})

# OCI layout, layer 2 gzip
lay = out + "/oci"
os.makedirs(lay + "/blobs/sha256")
def put(data, media):
    open(lay + "/blobs/sha256/" + sha(data), "wb").write(data)
    return {"mediaType": media, "digest": "sha256:" + sha(data), "size": len(data)}
T = "application/vnd.oci.image.layer.v1.tar"
descs = [put(layers[0], T), put(gzip.compress(layers[1], mtime=0), T + "+gzip"), put(layers[2], T)]
man = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": put(cfg, "application/vnd.oci.image.config.v1+json"),
                      "layers": descs}).encode(), "application/vnd.oci.image.manifest.v1+json")
json.dump({"schemaVersion": 2, "manifests": [man]}, open(lay + "/index.json", "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(lay + "/oci-layout", "w"))
print(descs[0]["digest"][7:])   # the uncompressed base layer's blob
EOF
lay=$scratch/layered; mkdir "$lay"
base_blob=$(python3 "$scratch/mklayered.py" "$imgdir" "$lay") || { echo "Bail out! mklayered.py failed"; exit 1; }
tar -C "$lay/oci" -cf "$lay/oci.tar" . || { echo "Bail out! tar of the OCI layout failed"; exit 1; }

# check_flat DIR DESCRIPTION: a flattened layered image, on this host.
check_flat () {
    local d=$1
    is "$(cat "$d/data/keep" 2>&1)" "keep-this-content-marker" "$2: a file of layer 1 is there"
    [ -e "$d/data/gone" ] && not_ok "$2: .wh.gone deleted data/gone" || ok "$2: .wh.gone deleted data/gone"
    is "$(ls -A "$d/opq" 2>&1)" "new" "$2: the opaque directory has only the upper layer's content"
    is "$(cat "$d/over/file" 2>&1)" "upper" "$2: an overwritten file has the upper layer's content"
    [ -e "$d/gone-dir" ] && not_ok "$2: a whited-out directory is gone" || ok "$2: a whited-out directory is gone"
    is "$(cat "$d/l2/added" "$d/l3file" "$d/etc/lower-only" 2>&1)" "added
three
lower-only" "$2: files of each layer are there"
    is "$(find "$d" -name '.wh.*')" "" "$2: no whiteout file anywhere"
    is "$(cmp "$d/bin/busybox" "$imgdir/bin/busybox" 2>&1)" "" "$2: busybox intact"
    run python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["env"]["CHUTE_VAR"], m["env"]["WITH_EQ"], m["cwd"], json.dumps(m["entrypoint"]), json.dumps(m["cmd"]))' "$d/ch/metadata.json"
    is "$out" 'from-config a=b c /data ["/bin/sh", "-c"] ["echo hi"]' "$2: ch/metadata.json has env, cwd, entrypoint, cmd"
    is "$(grep -E '^(CHUTE_VAR|WITH_EQ|PATH)=' "$d/ch/environment" 2>&1 | sort)" "CHUTE_VAR=from-config
PATH=/usr/bin:/bin
WITH_EQ=a=b c" "$2: ch/environment has the config's Env as KEY=VALUE lines"
}
check_mount_points () {  # DIR DESCRIPTION
    local missing="" p
    for p in dev proc sys tmp home mnt; do [ -d "$1/$p" ] && [ ! -L "$1/$p" ] || missing="$missing $p"; done
    for p in etc/hosts etc/resolv.conf; do [ -f "$1/$p" ] && [ ! -L "$1/$p" ] || missing="$missing $p"; done
    is "$missing" "" "$2: mount points dev proc sys tmp home mnt etc/hosts etc/resolv.conf"
}
check_layered_run () {  # IMAGE DESCRIPTION
    run "$CH_RUN" --set-env "$1" -- sh -c 'echo $CHUTE_VAR; cat /over/file'
    is "$rc|$out" "0|from-config
upper" "$2: ch-run --set-env sees the config's Env"
}

L=$scratch/layered-out; mkdir "$L"
for in in docker.tar oci oci.tar; do
    conv "$in -> dir" "$lay/$in" "$L/$in-dir"
    check_flat "$L/$in-dir" "$in -> dir"
    check_mount_points "$L/$in-dir" "$in -> dir"
    is "$(find "$L/$in-dir" ! -user "$me" | head -3)" "" "$in -> dir: owned by the invoking user"
    check_layered_run "$L/$in-dir" "$in -> dir"
    conv "$in -> squash" "$lay/$in" "$L/$in.sqfs"
    run unsquashfs -lls "$L/$in.sqfs"
    is "$rc|$(printf '%s\n' "$out" | awk '/squashfs-root/ {print $2}' | sort -u)" "0|root/root" \
       "$in -> squash: unsquashfs -lls lists every file as owned by root"
    run unsquashfs -q -no-progress -no-xattrs -d "$L/$in.sqfs.x" "$L/$in.sqfs"
    check_flat "$L/$in.sqfs.x" "$in -> squash"
    check_layered_run "$L/$in.sqfs" "$in -> squash"
done
conv "docker-archive -> tar.gz" "$lay/docker.tar" "$L/docker.tar.gz"
is "$(magic "$L/docker.tar.gz")" gzip "docker-archive -> tar.gz: gzip"
run tar --numeric-owner -tvf "$L/docker.tar.gz"
is "$rc|$(printf '%s\n' "$out" | awk '{print $2}' | sort -u)" "0|0/0" "docker-archive -> tar.gz: every member owned by 0/0"
mkdir "$L/docker.tar.gz.x"; tar -C "$L/docker.tar.gz.x" -xf "$L/docker.tar.gz"
check_flat "$L/docker.tar.gz.x" "docker-archive -> tar.gz"
conv "-i docker alias" -i docker "$lay/docker.tar" "$L/alias.sqfs"
is "$(magic "$L/alias.sqfs")" squash "-i docker is docker-archive"
conv "-i tar on a docker-archive" -i tar "$lay/docker.tar" "$L/as-tar"
[ -f "$L/as-tar/manifest.json" ] && ok "-i tar reads a docker-archive as a plain tar" \
    || not_ok "-i tar reads a docker-archive as a plain tar" "$(ls "$L/as-tar" 2>&1)"

# --- unwrapping one top-level directory; mount points
w=$scratch/wrap; mkdir -p "$w/in/myimage/bin" "$w/in/myimage/etc" "$w/in/usronly/usr/bin"
printf 'hello\n' > "$w/in/myimage/bin/hello"; printf 'motd\n' > "$w/in/myimage/etc/motd"
printf 'tool\n' > "$w/in/usronly/usr/bin/tool"
tar -C "$w/in" -cf "$w/wrapped.tar" myimage
tar -C "$w/in/usronly" -cf "$w/usr.tar" usr
conv "a tar with one top-level directory" "$w/wrapped.tar" "$w/unwrapped"
is "$(cat "$w/unwrapped/bin/hello" "$w/unwrapped/etc/motd" 2>&1)" "hello
motd" "myimage/bin/... is unwrapped to bin/ at the root"
[ -e "$w/unwrapped/myimage" ] && not_ok "no myimage/ left at the root" || ok "no myimage/ left at the root"
check_mount_points "$w/unwrapped" "an archive without them"
conv "a tar of usr/ alone" "$w/usr.tar" "$w/usr"
is "$(cat "$w/usr/usr/bin/tool" 2>&1)" "tool" "a single top-level usr/ is not unwrapped"
[ -e "$w/usr/bin/tool" ] && not_ok "usr/bin/tool is not at bin/tool" || ok "usr/bin/tool is not at bin/tool"
conv "unwrapped, to squash" "$w/wrapped.tar" "$w/unwrapped.sqfs"
run unsquashfs -lls "$w/unwrapped.sqfs"
like "$out" "squashfs-root/bin/hello" "unwrapping also applies to a SquashFS output"
like "$out" "squashfs-root/etc/resolv.conf" "and mount points are created in a SquashFS output"

# --- -n, summary, existing outputs
e=$scratch/exist; mkdir "$e"
run "$CH_CONVERT" -n "$srctgz" "$e/dry.sqfs"
is "$rc" 0 "-n exits 0"
like "$out$err" "tar" "-n names the input format"
like "$out$err" "squash" "-n names the output format"
like "$out$err" "$e/dry.sqfs" "-n names OUT"
is "$(ls -A "$e")" "" "-n creates nothing"
run "$CH_CONVERT" "$srctgz" "$e/summary.sqfs"
is "$rc|$out" "0|" "without -q: exit 0, nothing on stdout"
like "$err" "$summary" "without -q: the summary line on stderr"
run "$CH_CONVERT" "$lay/docker.tar" "$e/docker-summary.sqfs"
unlike "$err" " 0 (B|kB|KiB|MB|MiB) read" "docker-archive input: the summary counts the bytes read"
run "$CH_CONVERT" -q "$srctgz" "$e/quiet.sqfs"
is "$rc|$out|$err" "0||" "-q: exit 0, nothing printed"

echo keep > "$e/clobber.sqfs"
run "$CH_CONVERT" --no-clobber "$srctgz" "$e/clobber.sqfs"
is "$rc" 31 "--no-clobber and an existing file: exit 31"
like "$err" "${fmt}.*clobber.sqfs" "the error names OUT"
is "$(cat "$e/clobber.sqfs")|$(ls -A "$e" | grep -c ch-convert)" "keep|0" "the existing file is untouched, no temporary left"
cp -a "$src" "$e/img"
before=$(tree "$e/img")
run "$CH_CONVERT" --no-clobber "$srctgz" "$e/img"
is "$rc" 31 "--no-clobber and an existing image directory: exit 31"
is "$(tree "$e/img")" "$before" "the existing image directory is untouched"
run "$CH_CONVERT" -q "$srctgz" "$e/clobber.sqfs"
is "$rc|$(magic "$e/clobber.sqfs")" "0|squash" "without --no-clobber an existing file is replaced"
touch "$e/img/OLD"
run "$CH_CONVERT" -q "$srcsq" "$e/img"
is "$rc" 0 "an existing image directory is replaced"
[ -e "$e/img/OLD" ] && not_ok "nothing of the old image is left" || ok "nothing of the old image is left"
is "$(tree "$e/img")" "$want" "the replaced image directory holds the new image"
mkdir "$e/empty"
run "$CH_CONVERT" -q "$srctgz" "$e/empty"
is "$rc|$(cat "$e/empty/t/hard1" 2>&1)" "0|linked" "an existing empty directory is replaced"
mkdir "$e/home"; echo precious > "$e/home/notes"
run "$CH_CONVERT" "$srctgz" "$e/home"
is "$rc" 31 "an existing directory that is not an image: exit 31"
like "$err" "${fmt}.*$e/home" "the error names it"
is "$(ls -A "$e/home")|$(cat "$e/home/notes")" "notes|precious" "and it is untouched"
is "$(ls -A "$e" | grep ch-convert)" "" "no temporary left in OUT's directory"

# --- detection by content, inference by name
dt=$scratch/detect; mkdir "$dt"
cp "$srctgz" "$dt/x.dat"
run "$CH_CONVERT" -q -o squash "$dt/x.dat" "$dt/x-out"
is "$rc|$(magic "$dt/x-out")" "0|squash" "a gzip tar named x.dat is read as a tar (-o squash)"
cp "$srcsq" "$dt/x.bin"
run "$CH_CONVERT" -q "$dt/x.bin" "$dt/from-bin"
is "$rc|$(cat "$dt/from-bin/t/r640" 2>&1)" "0|group-readable" "a SquashFS file named x.bin is read as SquashFS"
cp -a "$lay/oci" "$dt/layout-without-name"
run "$CH_CONVERT" -q "$dt/layout-without-name" "$dt/oci.sqfs"
is "$rc|$(magic "$dt/oci.sqfs")" "0|squash" "a directory with oci-layout is read as OCI"
for name in x.squishy x.squash x.squashfs; do
    run "$CH_CONVERT" -q "$srctgz" "$dt/$name"
    is "$rc|$(magic "$dt/$name")" "0|squash" "OUT named *.${name#x.} is squash"
done
run "$CH_CONVERT" -q "$srcsq" "$dt/x.tgz"
is "$rc|$(magic "$dt/x.tgz")" "0|gzip" "OUT named *.tgz is a gzip tar"
(cd "$dt" && "$CH_CONVERT" -q "$srcsq" ./rel-dir) > /dev/null 2>&1
[ -f "$dt/rel-dir/t/hard1" ] && ok "OUT starting with ./ is a directory" || not_ok "OUT starting with ./ is a directory"
run sh -c 'cd "$1" && exec "$2" -q "$3" no-extension' sh "$dt" "$CH_CONVERT" "$srcsq"
is "$rc|$(cat "$dt/no-extension/t/hard1" 2>&1)" "0|linked" "OUT a plain name with no extension is a directory"
run sh -c 'cd "$1" && exec "$2" "$3" img.zip' sh "$dt" "$CH_CONVERT" "$srcsq"
is "$rc" 31 "OUT with an extension that names no format, not existing: exit 31 (needs -o)"
like "$err" "$fmt" "and an error message"
[ -e "$dt/img.zip" ] && not_ok "and nothing written" || ok "and nothing written"
run "$CH_CONVERT" -q "$srcsq" "$dt/x.tar.dir"
is "$rc|$(cat "$dt/x.tar.dir/t/hard1" 2>&1)" "0|linked" "/.../x.tar.dir (not *.tar.? nor *.tar.??) is a directory"
run "$CH_CONVERT" -q "$srcsq" "$dt/x.tar.bz2"
is "$rc|$(od -An -c -N3 "$dt/x.tar.bz2" | tr -d ' ')" "0|BZh" "OUT named *.tar.bz2 is a bzip2 tar"

# --- bad options and arguments: exit 31 with a message
bad () {  # PATTERN DESCRIPTION -- ARGS...
    local pat=$1 desc=$2; shift 3
    run "$CH_CONVERT" "$@"
    is "$rc" 31 "$desc: exit 31"
    like "$err" "$pat" "$desc: message"
}
b=$scratch/badopt; mkdir "$b"
bad "${fmt}.*bogus" "unknown output format" -- -o bogus "$srctgz" "$b/x"
bad "${fmt}.*bogus" "unknown input format" -- -i bogus "$srctgz" "$b/x.sqfs"
bad "${fmt}.*--bogus" "unknown option" -- --bogus "$srctgz" "$b/x.sqfs"
bad "${fmt}input and output formats must be different" "tar -> tar" -- "$srctgz" "$b/x.tar"
bad "${fmt}input and output formats must be different" "squash -> squash" -- "$srcsq" "$b/x.sqfs"
bad "${fmt}input and output formats must be different" "dir -> dir" -- "$src" "$b/x-dir"
bad "${fmt}.*docker" "docker-archive is not an output format" -- -o docker "$srctgz" "$b/x"
bad "${fmt}.*oci" "oci is not an output format" -- -o oci "$srctgz" "$b/x"
bad "${fmt}.*$b/missing" "a missing IN" -- "$b/missing" "$b/x.sqfs"
bad "usage|IN|OUT" "only one argument" -- "$srctgz"
bad "usage|IN|OUT" "no argument" --
bad "${fmt}.*squash-block-size" "a bad --squash-block-size" -- --squash-block-size=3K "$srctgz" "$b/x.sqfs"
bad "${fmt}.*nope" "a bad --squash-compress" -- --squash-compress=nope "$srctgz" "$b/x.sqfs"
is "$(ls -A "$b")" "" "bad options leave nothing"
run "$CH_CONVERT" --help
is "$rc" 0 "--help exits 0"
like "$out" "usage: ch-convert" "--help prints the usage"
run "$CH_CONVERT" --version
is "$rc" 0 "--version exits 0"

# --- corrupt inputs: exit 31, the message names the file, no output
nbad=0
corrupt () {  # IN PATTERN DESCRIPTION [OPTIONS...]
    local in=$1 pat=$2 desc=$3; shift 3
    nbad=$((nbad + 1))
    local d=$scratch/corrupt-$nbad; mkdir "$d"
    run "$CH_CONVERT" "$@" "$in" "$d/out.sqfs"
    is "$rc" 31 "$desc -> squash: exit 31"
    like "$err" "$fmt.*$pat" "$desc -> squash: the error names the file"
    run "$CH_CONVERT" "$@" "$in" "$d/out"
    is "$rc" 31 "$desc -> dir: exit 31"
    is "$(ls -A "$d")" "" "$desc: no output, no temporary"
}
c=$scratch/corrupt-in; mkdir "$c"
head -c $(($(stat -c %s "$srctgz") / 2)) "$srctgz" > "$c/half.tar.gz"
corrupt "$c/half.tar.gz" "half.tar.gz" "a truncated .tar.gz"
cp -a "$lay/oci" "$c/oci-baddigest"
python3 -c 'import sys; p=sys.argv[1]; d=open(p,"rb").read(); i=d.index(b"keep-this-content"); open(p,"wb").write(d[:i]+b"K"+d[i+1:])' \
    "$c/oci-baddigest/blobs/sha256/$base_blob"
corrupt "$c/oci-baddigest" "$base_blob" "an OCI blob whose digest does not match"
cp -a "$lay/oci" "$c/oci-noindex"; rm "$c/oci-noindex/index.json"
corrupt "$c/oci-noindex" "oci-noindex" "an OCI layout without index.json"
corrupt "$lay/docker-nomanifest.tar" "docker-nomanifest.tar" "a docker-archive without manifest.json (-i docker)" -i docker
corrupt "$lay/docker-nolayer.tar" "docker-nolayer.tar" "a docker-archive missing a layer"
head -c 8192 /dev/urandom > "$c/random.img"
corrupt "$c/random.img" "random.img" "a file that is not an archive"
echo "just text" > "$c/text.tar"
corrupt "$c/text.tar" "text.tar" "a text file named .tar"
head -c 4096 "$srcsq" > "$c/cut.sqfs"
corrupt "$c/cut.sqfs" "cut.sqfs" "a truncated SquashFS file" -o dir
echo x > "$c/unreadable.tar"; chmod 000 "$c/unreadable.tar"
corrupt "$c/unreadable.tar" "unreadable.tar" "an unreadable file"

# --- interruption: exit 128+N, no OUT, no temporary
big=$scratch/big; mkdir -p "$big/src"
head -c 200000000 /dev/urandom > "$big/src/data"
tar -C "$big/src" -cf "$big/big.tar" . && rm -rf "$big/src"
interrupt () {  # SIGNAL STATUS OUT-NAME [OPTIONS...]
    local sig=$1 want=$2 name=$3 d=$scratch/int-$1 seen=no i; shift 3
    mkdir "$d"
    env --default-signal=INT,HUP "$CH_CONVERT" -q "$@" "$big/big.tar" "$d/$name" > /dev/null 2> "$d.err" &
    local pid=$!
    sleep 0.3
    for i in $(seq 100); do
        [ -n "$(ls -A "$d")" ] && { seen=yes; break; }
        sleep 0.05
    done
    kill -s "$sig" "$pid"
    { wait "$pid"; } 2>/dev/null; local rc=$?   # (no "Hangup" notice from bash)
    err=$(cat "$d.err")
    is "$seen" yes "SIG$sig: a temporary was being written when the signal came"
    is "$rc" "$want" "SIG$sig during a conversion to $name: exit $want"
    is "$(ls -A "$d")" "" "SIG$sig: no $name, no .$name.ch-convert-* temporary left"
}
# --- disk full: a 4 MB tmpfs of our own (user+mount namespace) as the
# output's directory; the conversion fails with exit 31 and leaves it empty
mkdir -p "$big/full" "$big/twelve"
head -c 12000000 "$big/big.tar" > "$big/twelve/twelve.bin"
tar -C "$big/twelve" -cf "$big/twelve.tar" twelve.bin
for o in out out.sqfs out.tar; do
    in=$big/twelve.tar
    [ "$o" = out.tar ] && in=$big/twelve   # (tar to tar is not a conversion)
    run unshare -Urm sh -c 'mount -t tmpfs -o size=4m tmpfs "$1" && "$2" -q "$3" "$1/$4"; rc=$?; ls -A "$1"; exit $rc' \
        sh "$big/full" "$CH_CONVERT" "$in" "$o"
    is "$rc|$out" "31|" "disk full while writing $o: exit 31 and nothing left in the directory"
    like "$err" "No space left on device" "and the error says the disk is full"
done
rm -rf "$big/twelve.tar" "$big/twelve"

# --- progress bar: on a terminal only, and not with -q
head -c 60000000 "$big/big.tar" > "$big/part.tar"
tar -C "$big" -cf "$big/progress.tar" part.tar
tty_run () {  # OUT [OPTIONS...]: ch-convert on a pseudo-terminal; output in $out
    local o=$1; shift
    out=$(script -qec "$(printf '%q ' "$CH_CONVERT" "$@" "$big/progress.tar" "$o")" /dev/null 2>&1 | tr '\r' '\n')
}
tty_run "$big/p1.sqfs" --squash-compress=gzip:9 -j 1
like "$out" '\[#* *\] +[0-9]+% [0-9.]+ [kMG]?B of [0-9.]+ [kMG]?B, [0-9]+ entries, [0-9.]+ [kMG]?B/s' \
    "on a terminal, a progress bar: bytes done of total, entries, rate"
like "$out" '[0-9]+ entries, [0-9.]+ [kMG]?B read, [0-9.]+ [kMG]?B written in [0-9.]+ s' "and the summary line"
tty_run "$big/p2.sqfs" -q --squash-compress=gzip:9 -j 1
is "$out" "" "-q on a terminal: no progress bar, no summary"
run "$CH_CONVERT" --squash-compress=gzip:9 -j 1 "$big/progress.tar" "$big/p3.sqfs"
unlike "$err" '%' "not on a terminal: no progress bar"
rm -f "$big"/p*.sqfs "$big/part.tar" "$big/progress.tar"

# (Slow compressions of 200 MB of random data: the signal comes mid-way.)
interrupt INT 130 out.sqfs --squash-compress=gzip:9
interrupt TERM 143 out.sqfs --squash-compress=xz
interrupt HUP 129 out.sqfs --squash-compress=zstd:19
rm -f "$big/big.tar"

done_testing
