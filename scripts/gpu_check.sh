#!/usr/bin/env bash
# guardrail on CUDA: every recipe on one GPU with the guardrails on and off, then DDP (and
# FSDP for WEA) across every local GPU. Not part of CI; run it on a machine with CUDA:
#
#   bash scripts/gpu_check.sh                 # all recipes, 2 epochs each
#   EPOCHS=1 RECIPES="wea est" bash scripts/gpu_check.sh
#   # the plumbing on a CPU machine (what CI-less checking of this script looks like):
#   ONE=cpu MANY=ddp_cpu FSDP=0 RECIPES=est EXTRA="trainer.limit_train_batches=8" \
#     bash scripts/gpu_check.sh
#
# Prints one markdown table per part, built from each run's report.json:
#   one GPU: time per training step with guardrails=default over guardrails=off (both runs carry
#   the ResourceMonitor, which is what measures the step; it synchronises the GPU on every
#   $EVERY-th step only, 5 by default), peak device memory of each, throughput, and the findings
#   of the guarded run;
#   DDP: exit status, ranks, summed throughput, data-wait share of the slowest rank, findings.
# Run directories are kept under $OUT (default: gpu_check/<date>). A run that fails is listed
# with its exit status; the script goes on with the next one.
set -u -o pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python}
EPOCHS=${EPOCHS:-2}
RECIPES=${RECIPES:-"wea est ret ccf bot oil rec"}
OUT=${OUT:-gpu_check/$(date +%Y-%m-%d_%H-%M-%S)}
ONE=${ONE:-gpu}      # trainer config of the one-device runs
MANY=${MANY:-ddp}    # trainer config of the multi-device runs
FSDP=${FSDP:-1}      # 1: also WEA with trainer=fsdp
read -r -a EXTRA_ARGS <<<"${EXTRA:-}"
mkdir -p "$OUT"

if [ "$ONE" = gpu ]; then
    if ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
        echo "gpu_check: no CUDA device is visible to $PY; run this on a GPU machine." >&2
        exit 2
    fi
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    $PY -c "import torch, lightning; print('torch', torch.__version__, 'cuda', \
torch.version.cuda, 'lightning', lightning.__version__, 'bf16', torch.cuda.is_bf16_supported())"
fi
echo "trainers: $ONE / $MANY   epochs per run: $EPOCHS   run directories: $OUT"

# Timed steps: every 5th (the default, every 50th, leaves a short run with one or two).
EVERY=${EVERY:-5}
MONITOR=("+guardrails.callbacks.resources._target_=guardrail.callbacks.ResourceMonitor"
         "+guardrails.callbacks.resources.every_n_steps=$EVERY")
TIMED="guardrails.callbacks.resources.every_n_steps=$EVERY"
# This measures cost; a lock that drifted from the configs is reported, not refused.
LOCK_WARN="guardrails.callbacks.config_lock.mode=warn"
COMMON=("trainer.max_epochs=$EPOCHS" "trainer.enable_progress_bar=false" "${EXTRA_ARGS[@]}")

train() {  # train NAME ARGS...: one run into $OUT/NAME; its exit status into $OUT/NAME.rc
    local name=$1; shift
    $PY -m guardrail.train "$@" "${COMMON[@]}" "hydra.run.dir=$OUT/$name" \
        >"$OUT/$name.out" 2>"$OUT/$name.err"
    echo $? >"$OUT/$name.rc"
    echo "  $name: exit $(cat "$OUT/$name.rc")"
}

echo "## one device (trainer=$ONE)"
for r in $RECIPES; do
    train "$r-on" "recipe=$r" "trainer=$ONE" guardrails=default "$LOCK_WARN" "$TIMED"
    train "$r-off" "recipe=$r" "trainer=$ONE" guardrails=off "${MONITOR[@]}"
done

echo "## every local device (trainer=$MANY)"
for r in $RECIPES; do
    train "$r-ddp" "recipe=$r" "trainer=$MANY" "$LOCK_WARN" "$TIMED"
done
if [ "$FSDP" = 1 ]; then
    train "wea-fsdp" recipe=wea trainer=fsdp "$LOCK_WARN" "$TIMED"
fi

$PY - "$OUT" $RECIPES <<'EOF'
import json, sys
from collections import Counter
from pathlib import Path

out, recipes = Path(sys.argv[1]), sys.argv[2:]

def load(name):
    rc = (out / f"{name}.rc").read_text().strip() if (out / f"{name}.rc").exists() else "?"
    path = out / name / "report.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    return rc, report, report.get("resources") or {}

def findings(name):
    path = out / name / "findings.jsonl"
    if not path.exists():
        return "-"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    counts = Counter(f"{r['check']} ({r['severity'][0]})" for r in rows)
    return ", ".join(f"{k} x{v}" if v > 1 else k for k, v in sorted(counts.items())) or "none"

def mb(value):
    return "-" if value is None else f"{value:.0f} MiB"

print("\n| recipe | exit on/off | step on | step off | on / off | peak device memory on / off "
      "| samples/s on | data wait (on) | findings (on) |")
print("|---|---|---|---|---|---|---|---|---|")
for r in recipes:
    rc_on, _, on = load(f"{r}-on")
    rc_off, _, off = load(f"{r}-off")
    ratio = on["step_s"] / off["step_s"] if on.get("step_s") and off.get("step_s") else None
    print(f"| {r} | {rc_on}/{rc_off} | {on.get('step_s', 0) * 1e3:.2f} ms "
          f"| {off.get('step_s', 0) * 1e3:.2f} ms | {'-' if ratio is None else f'{ratio:.3f}x'} "
          f"| {mb(on.get('device_mem_peak_mb'))} / {mb(off.get('device_mem_peak_mb'))} "
          f"| {on.get('samples_per_s', 0):.0f} | {on.get('data_wait_fraction', 0):.0%} "
          f"| {findings(f'{r}-on')} |")

print("\n| run | exit | status | ranks | samples/s (all ranks) | data wait (slowest rank) "
      "| peak device memory | findings |")
print("|---|---|---|---|---|---|---|---|")
for name in [f"{r}-ddp" for r in recipes] + ["wea-fsdp"] * (out / "wea-fsdp.rc").exists():
    rc, report, res = load(name)
    print(f"| {name} | {rc} | {report.get('status', '-')} | {res.get('world_size', '-')} "
          f"| {res.get('samples_per_s', 0):.0f} | {res.get('data_wait_fraction', 0):.0%} "
          f"| {mb(res.get('device_mem_peak_mb'))} | {findings(name)} |")
EOF
