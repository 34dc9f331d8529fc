#!/bin/sh
# heartbeat_callgrind.sh: the heartbeat's cost in user_conv2d as instruction counts, which do not
# depend on the machine's load (BENCHMARKS.md section 13). Builds the two libraries the JMH
# benchmark UserPredictorCheckBenchmark compares (libuser_predictor.so with its checks and
# libuser_predictor_nochecks.so, by the example's own Makefile), runs user_conv2d RUNS times
# (default 20) from each under valgrind --tool=callgrind, counting only user_conv2d and what it
# calls (nsc_checker_poll's clock checks included), and prints instructions per call and the ratio;
# then times the same libraries directly, and a build of each with loops aligned to 32 bytes.
# Needs the shim built (mvn -o -q -DskipTests package -pl native-shim, or ./run build) and valgrind.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
sdk=$root/native-shim/target/classes/META-INF/native
out=${TMPDIR:-/tmp}/nsc-heartbeat-callgrind
runs=${RUNS:-20}
mkdir -p "$out"
make -s -C "$here/.." NSC_SDK="$sdk" OUT_DIR="$out" BUILD_DIR="$out/obj"
# The poll as it was before the heartbeat (no check counter, oldpoll.h), built with the Makefile's flags.
gcc -std=gnu11 -O2 -fPIC -Wall -Wextra -Werror -fvisibility=hidden -DUSER_PREDICTOR_BUILDING -I"$here/../include" \
    -I"$sdk/include" -include "$here/oldpoll.h" -shared -Wl,--no-undefined "$here"/../src/*.c \
    -L"$sdk/linux-x86_64" -lnativescope -o "$out/libuser_predictor_oldpoll.so"
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -I"$sdk/include" "$here/callgrind_harness.c" \
    -L"$sdk/linux-x86_64" -lnativescope -ldl -Wl,-rpath,"$sdk/linux-x86_64" -o "$out/harness"
valgrind --version
for lib in libuser_predictor.so libuser_predictor_oldpoll.so libuser_predictor_nochecks.so; do
  LD_LIBRARY_PATH="$sdk/linux-x86_64" valgrind --tool=callgrind --toggle-collect=user_conv2d \
      --callgrind-out-file="$out/$lib.callgrind" "$out/harness" "$out/$lib" "$runs" >"$out/$lib.log" 2>&1
  ir=$(sed -n 's/^summary: *//p' "$out/$lib.callgrind")
  [ "$ir" -gt 0 ]
  echo "$lib $ir"
done | awk -v runs="$runs" '{ ir[$1] = $2; printf "%-32s %14d instructions in %d calls, %12.0f per call\n", $1, $2, runs, $2 / runs }
  END { c = ir["libuser_predictor.so"]; o = ir["libuser_predictor_oldpoll.so"]; n = ir["libuser_predictor_nochecks.so"];
        printf "with checks / without: %.5f instructions (speed ratio if time followed instructions: %.4fx)\n", c / n, n / c;
        printf "old poll (no heartbeat) / without: %.5f; with checks / old poll: %.5f\n", o / n, c / o }'
# The same libraries timed directly (TIMED_RUNS, default 400, fastest run; three rounds, alternated):
# what the instruction counts leave out (scheduling, code alignment), at the machine's current load.
uptime
for round in 1 2 3; do
  for lib in libuser_predictor.so libuser_predictor_nochecks.so; do
    LD_LIBRARY_PATH="$sdk/linux-x86_64" "$out/harness" "$out/$lib" "${TIMED_RUNS:-400}"
  done
done
# The same source with loops aligned to 32 bytes (-falign-loops=32; gcc's default aligns to 16): if
# the timed gap above is code placement rather than the checks' work, it closes here.
for v in checks nochecks; do
  flags=""
  [ $v = nochecks ] && flags=-DUSER_PREDICTOR_NO_CHECKS
  # shellcheck disable=SC2086
  gcc -std=gnu11 -O2 -fPIC -Wall -Wextra -Werror -fvisibility=hidden -DUSER_PREDICTOR_BUILDING $flags -falign-loops=32 \
      -I"$here/../include" -I"$sdk/include" -shared -Wl,--no-undefined "$here"/../src/*.c \
      -L"$sdk/linux-x86_64" -lnativescope -o "$out/libuser_predictor_align32_$v.so"
done
for round in 1 2 3; do
  for v in checks nochecks; do
    LD_LIBRARY_PATH="$sdk/linux-x86_64" "$out/harness" "$out/libuser_predictor_align32_$v.so" "${TIMED_RUNS:-400}"
  done
done
