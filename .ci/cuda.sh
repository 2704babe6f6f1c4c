#!/usr/bin/env bash
# CI for the CUDA backend on a machine without a GPU (called from .ci/run):
#  1. builds the stub libcuda (scripts/cuda-stub.sh),
#  2. installs pinned ptxas (PyPI nvidia-cuda-nvcc-cu12) and NVRTC 12.0 into
#     a cached venv under target/, assembles every committed PTX module for
#     sm_70, sm_80 and sm_90, and checks the committed PTX is what NVRTC 12.0
#     regenerates (ptx/regen.sh --check),
#  3. clippy and tests of the crates with CUDA code, --features cuda, linked
#     against the stub (CUDA_LIBRARY_PATH for cust's build script,
#     LD_LIBRARY_PATH at run time; no rpath). The tests include the check
#     that every kernel name the engine launches exists in the PTX, and the
#     root GPU tests (tests/cuda_*.rs: gradcheck on the GPU, fused optimizers
#     vs the catalog, track 4 on both devices), which must each say that
#     they skipped for want of a device (and run their no-GPU checks);
#  4. the emulated device (scripts/cuda-emu.sh, ptx/emu): the same test
#     binaries run every GPU test on the CPU through the real driver API,
#     with FERROGRAD_REQUIRE_GPU=1 (a skip fails), launches deferred to
#     synchronisation (freeing memory a queued launch uses fails), shared
#     memory filled with NaN, and the engine's op tests also in the race mode
#     under a seeded thread order;
#  5. the mutants of scripts/cuda-emu-mutants.sh: deliberate kernel bugs the
#     suite must catch.
# Uses its own target dir so the feature flip does not rebuild target/.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
start=$SECONDS

echo "== cuda: stub libcuda"
bash scripts/cuda-stub.sh
export CUDA_LIBRARY_PATH="$root/target/cuda-stub"
export LD_LIBRARY_PATH="$root/target/cuda-stub/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CARGO_TARGET_DIR="$root/target/cuda-build"

echo "== cuda: ptxas (pinned nvidia-cuda-nvcc-cu12) on every PTX module"
venv="$root/target/cuda-tools/venv"
nvcc_pin="nvidia-cuda-nvcc-cu12==12.4.131"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
if ! "$venv/bin/python" -c 'import nvidia.cuda_nvcc' 2>/dev/null; then
    "$venv/bin/pip" install --quiet "$nvcc_pin"
fi
ptxas="$("$venv/bin/python" -c 'import nvidia.cuda_nvcc as m, os; print(os.path.join(list(m.__path__)[0], "bin", "ptxas"))')"
"$ptxas" --version | tail -n1
count=0
for ptx in ptx/ptx/*.ptx; do
    for arch in sm_70 sm_80 sm_90; do
        "$ptxas" -arch="$arch" -o /dev/null "$ptx"
        count=$((count + 1))
    done
done
echo "ptxas: $count module x arch assemblies OK"

echo "== cuda: committed PTX is current (NVRTC 12.0 regeneration)"
if bash ptx/regen.sh --check; then :; else
    status=$?
    # regen.sh exits 1 on a difference; anything else means no compiler here.
    [[ $status == 1 ]] && exit 1
    echo "warning: NVRTC unavailable; skipped the regeneration diff" >&2
fi

root_gpu_tests=(cuda_gradcheck cuda_optim cuda_train)
echo "== cuda: clippy --features cuda"
cargo clippy -p ferrograd-engine -p ferrograd-ptx --features ferrograd-engine/cuda --all-targets -- -D warnings
cargo clippy -p ferrograd --features cuda --lib --bins "${root_gpu_tests[@]/#/--test=}" -- -D warnings

echo "== cuda: tests --features cuda (against the stub: GPU tests skip, saying why)"
cargo test -p ferrograd-engine -p ferrograd-ptx --features ferrograd-engine/cuda 2>&1 | tee target/cuda-build/test.log |
    grep -E '^test result|skipped:|FAILED|panicked' | sort | uniq -c | sort -rn | head -n 20
grep -q 'FAILED\|error\[' target/cuda-build/test.log && { echo "cuda tests failed" >&2; exit 1; }
grep -q 'every_launched_kernel_is_in_the_ptx_and_every_ptx_kernel_is_launched ... ok' target/cuda-build/test.log ||
    { echo "kernel-name check did not run" >&2; exit 1; }

echo "== cuda: root GPU tests --features cuda (${root_gpu_tests[*]})"
cargo test -p ferrograd --features cuda "${root_gpu_tests[@]/#/--test=}" -- --nocapture --test-threads=1 \
    >target/cuda-build/test-root.log 2>&1 || { tail -n 40 target/cuda-build/test-root.log >&2; exit 1; }
grep -E '^test result|skipped:' target/cuda-build/test-root.log | sed 's/ (device cuda:0 is unavailable.*//' | sort | uniq -c
grep -q 'FAILED\|panicked' target/cuda-build/test-root.log && { echo "root cuda tests failed" >&2; exit 1; }
if ! LD_LIBRARY_PATH= ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
    # The stub is the only driver here: every GPU comparison must have
    # skipped saying why, and the no-GPU plumbing tests must have passed.
    for t in "${root_gpu_tests[@]}"; do
        grep -q "$t: skipped: no CUDA device" target/cuda-build/test-root.log ||
            { echo "$t did not report its skip" >&2; exit 1; }
    done
    for t in without_a_device_a_cuda_trainer_is_a_typed_error moving_a_cpu_trainer_to_the_cpu_changes_no_bit; do
        grep -q "test $t ... ok" target/cuda-build/test-root.log || { echo "$t did not pass" >&2; exit 1; }
    done
fi
echo "== cuda: the emulated device (ptx/emu): every GPU test runs, none may skip"
emu_lib="$(bash scripts/cuda-emu.sh)"
emu_env=(LD_LIBRARY_PATH="$emu_lib" FERROGRAD_REQUIRE_GPU=1 CUDA_EMU_DEFERRED=1 CUDA_EMU_SHARED_NAN=1)
emu_log=target/cuda-build/test-emu.log
env "${emu_env[@]}" CUDA_EMU_RACE=1 CUDA_EMU_ORDER=2026 \
    cargo test -p ferrograd-engine -p ferrograd-ptx --features ferrograd-engine/cuda >"$emu_log" 2>&1 ||
    { grep -E 'cuda-emu|panicked|FAILED' "$emu_log" | head -n 40 >&2; echo "GPU tests failed on the emulated device" >&2; exit 1; }
env "${emu_env[@]}" cargo test -p ferrograd --features cuda "${root_gpu_tests[@]/#/--test=}" -- --test-threads=1 \
    >>"$emu_log" 2>&1 ||
    { grep -E 'cuda-emu|panicked|FAILED' "$emu_log" | head -n 40 >&2; echo "root GPU tests failed on the emulated device" >&2; exit 1; }
grep -E '^test .* \.\.\. ok$' "$emu_log" | sed 's/^/  passed on the emulated device: /'
grep -E '^test result' "$emu_log" | sort | uniq -c
if grep -q 'skipped: no CUDA device' "$emu_log"; then
    echo "a GPU test skipped on the emulated device" >&2
    exit 1
fi
for t in cuda_gradcheck cuda_optim cuda_train cuda_ops cuda_memory; do
    grep -q "Running tests/$t.rs" "$emu_log" || { echo "$t did not run on the emulated device" >&2; exit 1; }
done

echo "== cuda: mutants (deliberate kernel bugs) must fail the GPU tests"
bash scripts/cuda-emu-mutants.sh
echo "== cuda: done in $((SECONDS - start)) s"
