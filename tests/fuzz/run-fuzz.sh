#!/bin/bash
# SPDX-License-Identifier: ISC
#
# make fuzz: run each libFuzzer binary given for FUZZ_SECONDS (default 60),
# one after the other, on a working corpus in tests/fuzz/work/<target>
# (builddir) that starts from the seed corpus and keeps what libFuzzer
# finds. Prints the executions of each and exits non-zero when any target
# crashed (the input is kept as tests/fuzz/work/<target>/crash-*; replay it
# with the gcc build: tests/fuzz/fuzz_<target> FILE).
#
#   tests/fuzz/run-fuzz.sh tests/fuzz/libfuzzer_uri ...
# Environment: FUZZ_SECONDS, FUZZ_ARGS (more libFuzzer options), top_srcdir.
set -u

seconds=${FUZZ_SECONDS:-60}
srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
status=0
summary=()

for bin in "$@"; do
    name=$(basename "$bin")
    target=fuzz_${name#libfuzzer_}
    seeds=$srcdir/tests/fuzz/corpus/$target
    work=tests/fuzz/work/$target
    log=tests/fuzz/work/$target.log
    mkdir -p "$work"
    echo "== $target: $seconds s (log: $log)"
    # The working corpus first: libFuzzer adds what it finds to the first directory.
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=20 \
        -artifact_prefix="$work/" ${FUZZ_ARGS:-} "$work" "$seeds" > "$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    units=$(find "$work" -maxdepth 1 -type f ! -name 'crash-*' ! -name 'leak-*' \
        ! -name 'timeout-*' ! -name 'oom-*' | wc -l)
    if [ "$rc" -ne 0 ]; then
        status=1
        grep -E 'invariant violated|ERROR:|SUMMARY:|Test unit written' "$log" | head -n 8
        summary+=("$(printf '%-22s FAILED (exit %d) after %s executions' "$target" "$rc" "${execs:-?}")")
    else
        summary+=("$(printf '%-22s %10s executions in %3d s (%s/s), corpus %d inputs' \
            "$target" "${execs:-?}" "$seconds" "${rate:-?}" "$units")")
    fi
done

echo
echo "make fuzz summary:"
printf '  %s\n' "${summary[@]}"
exit "$status"
