#!/bin/sh
# cold_start.sh: the cold-start benchmark (issue 12 item 6, dev.nativescope.benchmarks.ColdStart):
# fresh JVMs timing NativeLibrary.load(), the first deadline context and the first bridged call, next
# to the floors (a JVM doing nothing, one bare FFM downcall of getpid), interleaved round by round.
#
#   benchmarks/cold_start.sh [runs] [git-revision-to-compare]...
#
# Builds this tree's native-shim, bindings and core jars (mvn -o package, no tests); with revisions
# (e.g. 818191c main), also builds each from `git archive` in a temporary directory outside the
# repository and runs them side by side, named by the revision (the first is "before" in the ratio
# lines: give the baseline first). The launcher is compiled with javac on its own, so
# the benchmarks module (JMH, ONNX Runtime, Aeron) need not be built. Prints wall-clock and CPU
# medians (p90) per phase and the classes each phase loads (-Xlog:class+load).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
runs=${1:-20}
[ $# -gt 0 ] && shift
java_home=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
work=$(mktemp -d "${TMPDIR:-/tmp}/nsc-coldstart-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

jars() { # the class path of one tree's library jars
  echo "$1/core/target/nativescope-core-0.1.0-SNAPSHOT.jar:$1/bindings/target/nativescope-bindings-0.1.0-SNAPSHOT.jar:$1/native-shim/target/nativescope-native-shim-0.1.0-SNAPSHOT.jar"
}
build() { # builds one tree's library jars, quietly
  (cd "$1" && JAVA_HOME=$java_home mvn -q -o -pl native-shim,bindings,core -am package -DskipTests \
    -Dmaven.javadoc.skip -Dmaven.source.skip)
}

build "$root"
variants=""
n=0
for rev in "$@"; do
  n=$((n + 1))
  mkdir "$work/rev$n"
  git -C "$root" archive "$rev" | tar -x -C "$work/rev$n"
  build "$work/rev$n"
  variants="$variants
$rev ($(git -C "$root" rev-parse --short "$rev"))=$(jars "$work/rev$n")"
done
set -- --runs "$runs" --classes
# One variant per line of $variants (class paths hold no newline).
old_ifs=$IFS
IFS='
'
for v in $variants; do
  set -- "$@" --variant "$v"
done
IFS=$old_ifs
set -- "$@" --variant "this tree=$(jars "$root")"
"$java_home/bin/javac" --release 22 -d "$work/launcher" -cp "$(jars "$root")" \
  "$here"/src/main/java/dev/nativescope/benchmarks/ColdStart.java \
  "$here"/src/main/java/dev/nativescope/benchmarks/ColdStartChild.java
uname -a
lscpu | grep -i 'model name' || true
"$java_home/bin/java" -cp "$work/launcher" dev.nativescope.benchmarks.ColdStart "$@"
