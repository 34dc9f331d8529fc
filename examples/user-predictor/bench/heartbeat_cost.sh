#!/bin/sh
# heartbeat_cost.sh: what the heartbeat (issue 17: nsc_check counts every check) costs user_conv2d.
# Builds conv2d.c three ways against the shim's header: "new" (this header's nsc_checker_poll),
# "old" (the poll without the counter, oldpoll.h), "none" (-DUSER_PREDICTOR_NO_CHECKS), and prints
# the minimum of 400 runs of each (the minimum resists a loaded machine), three rounds.
# Needs the shim built: mvn -o -q -DskipTests package -pl native-shim (or ./run build).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
inc=$root/native-shim/src/main/c
lib=$root/native-shim/target/classes/META-INF/native/linux-x86_64
out=${TMPDIR:-/tmp}/nsc-heartbeat-cost
mkdir -p "$out"
for v in new old none; do
  case $v in new) flags="" ;; old) flags="-include $here/oldpoll.h" ;; none) flags="-DUSER_PREDICTOR_NO_CHECKS" ;; esac
  # shellcheck disable=SC2086
  gcc -std=gnu11 -O2 -fPIC -I"$here/../include" -I"$inc" $flags -DUSER_PREDICTOR_BUILDING -c "$here/../src/conv2d.c" -o "$out/conv_$v.o"
  gcc -std=gnu11 -O2 -I"$inc" -DVARIANT="\"$v\"" "$here/harness.c" "$out/conv_$v.o" -L"$lib" -lnativescope -Wl,-rpath,"$lib" -o "$out/h_$v"
done
uptime
for round in 1 2 3; do for v in new old none; do "$out/h_$v"; done; done
