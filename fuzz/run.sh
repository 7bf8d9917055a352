#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 30). Exits non-zero when a target finds a
# crash (the input is kept under $CARGO_TARGET_DIR/fuzz-artifacts/<target>/); prints a skip
# message and exits 0 when `cargo +nightly fuzz` is not available.
#
#   fuzz/run.sh 30                 # every target, 30 s each
#   fuzz/run.sh 600 policy table   # chosen targets
#
# Environment: CARGO_TARGET_DIR (default ~/.cache/cloakline/fuzz-target), FUZZ_SANITIZER
# (default none: ASan doubles build and run time and finds little in safe Rust; `address`
# turns it on), FUZZ_JOBS (libFuzzer -fork processes per target, default 1), FUZZ_NICE
# (default 19: the fuzzers yield the CPU to anything else).
set -euo pipefail

secs="${1:-30}"
shift || true
case "$secs" in
'' | *[!0-9]*)
    echo "usage: fuzz/run.sh SECONDS [TARGET...]" >&2
    exit 2
    ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: SKIPPED: no nightly toolchain (rustup toolchain install nightly)"
    exit 0
fi
if ! cargo +nightly fuzz --help >/dev/null 2>&1; then
    echo "fuzz: SKIPPED: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)"
    exit 0
fi

target_dir="${CARGO_TARGET_DIR:-$HOME/.cache/cloakline/fuzz-target}"
nice_level="${FUZZ_NICE:-19}"
# Release with debug assertions (integer overflow is a finding, e.g. keep_first + keep_last);
# 16 codegen units: the instrumented DataFusion build is long enough on a small machine.
opts=(--fuzz-dir "$here" --target-dir "$target_dir" --sanitizer "${FUZZ_SANITIZER:-none}"
    --debug-assertions --codegen-units 16)
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir "$here")
fi

echo "fuzz: building ${targets[*]} (sanitizer ${FUZZ_SANITIZER:-none}, target dir $target_dir)"
deps="$target_dir/x86_64-unknown-linux-gnu/release/deps"
for t in "${targets[@]}"; do
    nice -n "$nice_level" cargo +nightly fuzz build "${opts[@]}" "$t"
    # Each rebuild leaves a ~1 GB binary under a new hash; keep only the current one (the
    # one hard-linked as release/<t>), or the cache fills the disk within days.
    current="$target_dir/x86_64-unknown-linux-gnu/release/$t"
    for old in "$deps/$t"-*; do
        if [ -f "$old" ] && [ -x "$old" ] && ! [ "$old" -ef "$current" ]; then rm -f "$old"; fi
    done
done

# Scratch files of the targets (libFuzzer exits without running destructors).
scratch="$(mktemp -d "${TMPDIR:-/tmp}/cloakline-fuzz-run.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

failed=()
for t in "${targets[@]}"; do
    # New inputs go to a working corpus outside the source tree; fuzz/corpus/<t> holds seeds.
    work="$target_dir/fuzz-corpus/$t"
    artifacts="$target_dir/fuzz-artifacts/$t"
    mkdir -p "$work" "$artifacts"
    extra=()
    [ -f "$here/dict/$t.dict" ] && extra+=("-dict=$here/dict/$t.dict")
    [ "${FUZZ_JOBS:-1}" -gt 1 ] && extra+=("-fork=${FUZZ_JOBS}")
    echo "fuzz: $t for ${secs}s"
    log="$scratch/$t.log"
    set +e
    TMPDIR="$scratch" nice -n "$nice_level" cargo +nightly fuzz run "${opts[@]}" \
        "$t" "$work" "$here/corpus/$t" -- \
        -max_total_time="$secs" -timeout=30 -rss_limit_mb=4096 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 "${extra[@]}" >"$log" 2>&1
    rc=$?
    set -e
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)' "$log" | sed "s/^/fuzz: $t: /" || true
    if [ "$rc" -ne 0 ]; then
        echo "fuzz: $t FAILED (exit $rc); last lines of its log:"
        tail -n 40 "$log"
        ls -1 "$artifacts" | sed "s|^|fuzz: $t: artifact $artifacts/|"
        failed+=("$t")
    fi
    rm -rf "${scratch:?}"/cloakline-fuzz-*
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: crashes in: ${failed[*]}"
    exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${secs}s each without a crash"
