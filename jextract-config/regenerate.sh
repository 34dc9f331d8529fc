#!/usr/bin/env bash
# Regenerates the FFM bindings of native-shim's public headers (nativescope.h and
# the headers beside it, through jextract-config/nativescope_bindings.h) with
# jextract and shows what changed. Run from anywhere; it works from the repo root.
#
#   jextract-config/regenerate.sh              # uses `jextract` from the PATH
#   JEXTRACT=/path/to/jextract jextract-config/regenerate.sh
#
# It never builds jextract: see jextract-config/README.md for where to get it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

args_file="jextract-config/nativescope.args"
dest="bindings/src/main/java/dev/nativescope/bindings"
expected_version="jextract 22"

jextract_bin="${JEXTRACT:-}"
if [[ -z "$jextract_bin" ]]; then
    jextract_bin="$(command -v jextract || true)"
fi
if [[ -z "$jextract_bin" || ! -x "$jextract_bin" ]]; then
    cat >&2 <<'MSG'
regenerate.sh: no jextract found (neither $JEXTRACT nor `jextract` on the PATH).

Get jextract from the OpenJDK jextract project: https://github.com/openjdk/jextract
The bindings are the output of its commit 0b89a46 ("jextract 22", the last one
whose generated code compiles with --release 22) with upstream commit 91fc954
(offsets of indexed array-field accessors) applied; the prebuilt early-access
binaries (https://jdk.java.net/jextract/) come from master and emit JDK 23+ code.
Build it as the project's README ("Building & Testing") says, from:

    git checkout 0b89a46
    git cherry-pick -n 91fc954   # one conflict in StructBuilder.java: take the new
                                 # invokeExact(%2$s, %5$s, %6$s) line, drop the added
                                 # catch (Error | RuntimeException ex) lines
    sh ./gradlew -Pjdk22_home=<jdk22_home_dir> -Pllvm_home=<libclang_dir> clean verify

It needs a JDK 22 and an LLVM/libclang installation. Then run this script again
with jextract on the PATH or JEXTRACT=<jextract>/build/jextract/bin/jextract.
See jextract-config/README.md.
MSG
    exit 1
fi

version="$("$jextract_bin" --version 2>&1 | head -n 1 || true)"
echo "Using $jextract_bin ($version)"
if [[ "$version" != "$expected_version" ]]; then
    echo "warning: expected '$expected_version' (openjdk/jextract 0b89a46 + 91fc954); newer jextract emits JDK 23+ code" >&2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# The last --output wins, so the generated files go to the temp dir first.
"$jextract_bin" "@$args_file" --output "$tmp"

generated="$tmp/dev/nativescope/bindings"
shopt -s nullglob
files=("$generated"/*.java)
if (( ${#files[@]} == 0 )); then
    echo "regenerate.sh: jextract produced no .java file in $generated" >&2
    exit 1
fi

mkdir -p "$dest"
# module-info.java lives in bindings/src/main/java, not in $dest, and the hand-written load hook in $dest/internal/
# (woven into the compiled nativescope_h by the bindings' build, see jextract-config/README.md): both are kept.
rm -f "$dest"/*.java
cp "${files[@]}" "$dest"/

echo "Regenerated ${#files[@]} files into $dest"
git diff --stat -- bindings/
untracked="$(git ls-files --others --exclude-standard -- "$dest")"
if [[ -n "$untracked" ]]; then
    echo "New (untracked) files:"
    echo "$untracked"
fi
echo "Next: mvn -pl bindings -am test (runs the ABI conformance test against the headers)."
