#!/usr/bin/env bash
# Proves the GPU tests, run on the emulated device, catch kernel bugs: each
# mutant below is one deliberate bug in a copy of ptx/cuda. The emulator is
# rebuilt from the copy (scripts/cuda-emu.sh --src), the named test runs
# against it, and it must FAIL. A mutant whose edit no longer applies (the
# source changed) is an error too, so this list stays honest.
#
# Usage: scripts/cuda-emu-mutants.sh   (needs the cuda feature's test build;
# .ci/cuda.sh runs it after the emulator step, with the same environment)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/cuda-stub.sh >/dev/null 2>&1
export CUDA_LIBRARY_PATH="${CUDA_LIBRARY_PATH:-$root/target/cuda-stub}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/cuda-build}"

# name | file | sed expression | test binary | test filter | extra env
mutants=(
    "gemm without the barrier after loading a tile|gemm.cu|0,/__syncthreads();/{/__syncthreads();/d}|cuda_ops|gemm_matches_the_cpu_with_every_transpose|"
    "gemm without the barrier before reloading the tiles|gemm.cu|/^        __syncthreads();\$/{x;s/^/x/;/^xx\$/{x;d};x}|cuda_ops|gemm_matches_the_cpu_with_every_transpose|"
    "gather reads one label past the end (off-by-one bound)|index.cu|s/GRID_STRIDE(i, n) { out\[i\] = x\[i \* classes + labels\[i\]\]; }/GRID_STRIDE(i, n + 1) { out[i] = x[i * classes + labels[i]]; }/|cuda_ops|shape_and_index_ops_match_the_cpu|"
    "reductions shuffle with a mask that leaves out lane 31|common.cuh|s/__shfl_down_sync(0xffffffffu, v, d)/__shfl_down_sync(0x7fffffffu, v, d)/g|cuda_ops|batchnorm_matches_its_definition|"
    "block_reduce without the barrier that protects its scratch between calls|common.cuh|/scratch may still be read from a previous call/d|cuda_ops|batchnorm_matches_its_definition|CUDA_EMU_RACE=1"
    "adam's update with the bias corrections swapped|optim.cu|s#(mn / (T)h.c1) / (m_sqrt(vn / (T)h.c2)#(mn / (T)h.c2) / (m_sqrt(vn / (T)h.c1)#|cuda_ops|fused_optimizers_follow_the_cpu_recurrences_step_by_step|"
    "mlp backward passes gradient through ReLU where it was off|mlp.cu|s/T d = a > (T)0 ? da : (T)0;/T d = da;/|cuda_mlp|hidden_backward_matches_the_definition_trained_or_frozen|"
    "clipped adam without its clip|optim.cu|s/g = m_isnan(g) ? g : m_fmin(m_fmax(g, lo), hi);/g = g;/|cuda_mlp|clipped_adam_in_one_launch_matches_the_definition_over_steps|"
    "clamp that maps NaN into the range|elementwise.cu|s/case UNARY_CLAMP: return m_isnan(x) ? x : /case UNARY_CLAMP: return /|cuda_ops|clamp_on_the_gpu_keeps_nan|"
    "adam's bias corrections from the step before (the device counter read as t, not t + 1)|optim.cu|s/i64 t = step\[0\] + 1;/i64 t = step[0];/|cuda_mlp|clipped_adam_in_one_launch_matches_the_definition_over_steps|"
    "mlp forward normalises with the unbiased batch variance|mlp.cu|s/T vr = block_reduce(REDUCE_SUM, sq, scratch) \* inv_n;/T vr = block_reduce(REDUCE_SUM, sq, scratch) \/ (T)(n - 1);/|cuda_mlp|hidden_forward_and_running_statistics_match_the_definition|"
)

work="$root/target/cuda-emu-mutants"
rm -rf "$work"
mkdir -p "$work"
caught=0
printf '%-72s %-45s %s\n' "mutant" "test" "result"
for m in "${mutants[@]}"; do
    IFS='|' read -r name file expr binary filter extra <<<"$m"
    src="$work/src"
    rm -rf "$src"
    cp -r ptx/cuda "$src"
    sed -i -e "$expr" "$src/$file"
    if cmp -s "ptx/cuda/$file" "$src/$file"; then
        echo "mutant '$name': the edit no longer applies to ptx/cuda/$file; update scripts/cuda-emu-mutants.sh" >&2
        exit 1
    fi
    lib="$(bash scripts/cuda-emu.sh --src "$src" --out "$work/build" 2>/dev/null)"
    log="$work/$binary-$caught.log"
    # shellcheck disable=SC2086
    if env $extra LD_LIBRARY_PATH="$lib" FERROGRAD_REQUIRE_GPU=1 \
        cargo test -q -p ferrograd-engine --features ferrograd-engine/cuda --test "$binary" -- --exact "$filter" \
        >"$log" 2>&1; then
        printf '%-72s %-45s %s\n' "$name" "$filter" "NOT CAUGHT"
        echo "mutant '$name' survived $binary::$filter (log: $log)" >&2
        exit 1
    fi
    why="$(grep -m1 -oE 'cuda-emu: [^:]*: .{0,60}|panicked at .*|assertion .{0,60}' "$log" | head -n1 || true)"
    printf '%-72s %-45s %s\n' "$name" "$filter" "caught"
    echo "    ${why:0:150}"
    caught=$((caught + 1))
done
echo "cuda-emu-mutants: all $caught mutants caught"
