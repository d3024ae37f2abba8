#!/bin/bash
# The job's environment, in Charliecloud's order: HOME, PATH, TMPDIR,
# --set-env / --unset-env in command-line order, expansion, CH_RUNNING.
. "$CLI_LIB"

penv () { run "$CH_RUN" "$@"; }

penv "$img" -- probe env HOME
is "$out" "HOME=/root" "HOME is /root when the image has /root"
noroot=$scratch/noroot; cp -a "$imgdir" "$noroot"; rmdir "$noroot/root"; noroot=$(image_of "$noroot")
penv "$noroot" -- probe env HOME
is "$out" "HOME=/" "HOME is / when the image has no /root"

run env PATH=/usr/local/bin:/usr/bin "$CH_RUN" "$img" -- probe env PATH
is "$out" "PATH=/usr/local/bin:/usr/bin:/bin" "/bin is appended to a PATH without it"
run env PATH=/bin:/usr/bin "$CH_RUN" "$img" -- probe env PATH
is "$out" "PATH=/bin:/usr/bin" "a PATH with /bin is kept"
run env PATH=/usr/bin:/bin/ "$CH_RUN" "$img" -- probe env PATH
is "$out" "PATH=/usr/bin:/bin/" "a PATH with /bin/ is kept"
run env PATH=/usr/binaries "$CH_RUN" "$img" -- /bin/probe env PATH
is "$out" "PATH=/usr/binaries:/bin" "an entry that only starts with /bin does not count"
run env -u PATH "$CH_RUN" "$img" -- /bin/probe env PATH
is "$out" "PATH unset" "an unset PATH stays unset"
like "$err" "warning: \\\$PATH not set" "an unset PATH gets a warning"

run env TMPDIR=/tmp "$CH_RUN" "$img" -- probe env TMPDIR
is "$out" "TMPDIR unset" "TMPDIR is removed"
run env SLURM_JOB_ID=42 OMPI_COMM_WORLD_RANK=3 "$CH_RUN" "$img" -- probe env SLURM_JOB_ID OMPI_COMM_WORLD_RANK
is "$out" "SLURM_JOB_ID=42
OMPI_COMM_WORLD_RANK=3" "other host variables pass through"

penv "$img" -- probe env CH_RUNNING
is "$out" "CH_RUNNING=Weird Al Yankovic" "CH_RUNNING is set"
penv --set-env=CH_RUNNING=nope --unset-env=CH_RUNNING "$img" -- probe env CH_RUNNING
is "$out" "CH_RUNNING=Weird Al Yankovic" "CH_RUNNING is set last and can't be changed"

# --set-env
penv --set-env=FOO=bar "$img" -- probe env FOO
is "$out" "FOO=bar" "--set-env=KEY=VAL"
penv --set-env="FOO='quoted value'" "$img" -- probe env FOO
is "$out" "FOO=quoted value" "one pair of single quotes is stripped"
penv --set-env='FOO="dq"\x' "$img" -- probe env FOO
is "$out" 'FOO="dq"\x' "double quotes and backslashes are literal"
penv --set-env=FOO=a=b "$img" -- probe env FOO
is "$out" "FOO=a=b" "the value is split at the first ="
run env BASE=/base "$CH_RUN" --set-env='P=$BASE:/x:$NOPE:$EMPTY' "$img" -- probe env P
is "$out" "P=/base:/x" "\$VAR items expand; unset ones drop with their colon"
run env BASE=/base "$CH_RUN" --env-no-expand --set-env='P=$BASE:x' "$img" -- probe env P
is "$out" 'P=$BASE:x' "--env-no-expand keeps \$VAR literally"

printf 'A=1\n\nB=$A:2\nC='"'"'three'"'"'\n' > "$scratch/env.txt"
penv --set-env="$scratch/env.txt" "$img" -- probe env A B C
is "$out" "A=1
B=1:2
C=three" "--set-env=FILE reads KEY=VAL lines in order, skipping empty ones"
printf 'A=x y\0B=multi\nline\0' > "$scratch/env0.bin"
penv --set-env0="$scratch/env0.bin" "$img" -- sh -c 'printf "%s|" "$A" "$B"'
is "$out" "x y|multi
line|" "--set-env0=FILE reads NUL-separated records"
penv --set-env="$(printf 'PIPE=from-pipe\n' > "$scratch/fifo-src"; echo /dev/stdin)" "$img" -- probe env PIPE < "$scratch/fifo-src"
is "$out" "PIPE=from-pipe" "--set-env reads a file that cannot seek"

run env PATH=/usr/bin:/bin "$CH_RUN" --set-env "$img" -- probe env IMG_A IMG_PATH
is "$out" "IMG_A=from-image
IMG_PATH=/image/bin:/usr/bin:/bin" "bare --set-env reads the image's /ch/environment"
noenv=$scratch/noenv; cp -a "$imgdir" "$noenv"; rm "$noenv/ch/environment"; noenv=$(image_of "$noenv")
penv --set-env "$noenv" -- true
is "$rc" 31 "bare --set-env without /ch/environment exits 31"
like "$err" "/ch/environment" "the error names /ch/environment"

# --unset-env and ordering
run env FOO=1 FOOBAR=2 BAR=3 "$CH_RUN" --unset-env='FOO*' "$img" -- probe env FOO FOOBAR BAR
is "$out" "FOO unset
FOOBAR unset
BAR=3" "--unset-env takes a glob"
run env FOO=1 FOOBAR=2 BAR=3 "$CH_RUN" --unset-env='@(FOO|BAR)' "$img" -- probe env FOO FOOBAR BAR
is "$out" "FOO unset
FOOBAR=2
BAR unset" "--unset-env takes extended globs (@(...))"
run env FOO=1 FOOBAR=2 BAR=3 "$CH_RUN" --unset-env='+(FOO|BAR)' "$img" -- probe env FOO FOOBAR BAR
is "$out" "FOO unset
FOOBAR unset
BAR unset" "--unset-env takes extended globs (+(...))"
run env FOO=1 "$CH_RUN" --unset-env=FOO --set-env=FOO=2 "$img" -- probe env FOO
is "$out" "FOO=2" "unset then set: set wins"
run env FOO=1 "$CH_RUN" --set-env=FOO=2 --unset-env=FOO "$img" -- probe env FOO
is "$out" "FOO unset" "set then unset: unset wins"
penv --unset-env='*' "$img" -- /bin/env
is "$out" "CH_RUNNING=Weird Al Yankovic" "--unset-env='*' leaves only CH_RUNNING"

# Bad environment input: exit 31 before any namespace.
printf 'GOOD=1\nnoequals\n' > "$scratch/bad1"
penv -v --set-env="$scratch/bad1" "$img" -- true
is "$rc" 31 "a record without = exits 31"
like "$err" "can't parse variable: no delimiter: $scratch/bad1:2" "the error names file and line"
unlike "$err" "namespaces:" "the bad file fails before entering namespaces"
printf '=value\n' > "$scratch/bad2"
penv --set-env="$scratch/bad2" "$img" -- true
like "$err" "empty name: $scratch/bad2:1" "an empty name names file and line"
penv --set-env="$scratch/missing" "$img" -- true
is "$rc" 31 "a missing env file exits 31"
like "$err" "--set-env: can't read file: $scratch/missing: No such file or directory" "the error names the file"
echo A=1 > "$scratch/unreadable"; chmod 000 "$scratch/unreadable"
penv --set-env="$scratch/unreadable" "$img" -- true
is "$rc" 31 "an unreadable env file exits 31"
like "$err" "Permission denied" "the error says permission denied"
penv --unset-env= "$img" -- true
is "$rc" 31 "an empty --unset-env exits 31"
like "$err" "--unset-env: GLOB must not be empty" "the error names the option"

done_testing
