#!/usr/bin/env bash
# The real-imagery training chain in one call on a GPU machine that cannot fetch anything (the
# workplace's lent device: at most 600 s a command, 15 min of device time, 16 MB a file back).
#
# Before the call, here:
#   python tools/prepare_data.py pack --reserve-tuning --out data/cache/pack     # ~26 MB
# The call (device `run`, carry ["data/cache/pack"], timeout_s 600):
#   bash experiments/gpu_chain.sh
# After it, here (FILES: the folder the call's files came back to):
#   python -m experiments.ship_trained --run FILES --weights-dir runs/gpu-chain/weights
# and judge the weights by the rule written before any GPU run: docs/heldout/gpu_chain/README.md.
#
# What it does, in order, within DEADLINE_S seconds in all:
# 1. renders SEQUENCES training sequences (and 40 real-motion tracks of each training video)
#    from the pack, the tuning split left out, on every core;
# 2. fine-tunes the teacher from the shipped siamfc.pt;
# 3. distils XNOR-SF and RB-SF from that teacher at once, on the same GPU, with equal budgets,
#    each initialised from the teacher's weights, with Adam (docs/heldout/adam: under SGD no
#    binary weight changes sign);
# 4. writes the slim copy of each stage (experiments/slim_run.py) with its log.csv to OUT, and
#    chain.log (every step's output and the pairs/s of each stage).
# A stage still running at the deadline is stopped with Ctrl-C, saving its checkpoint: its
# slim copy says "unfinished", ship_trained refuses it, and the script exits with 1 (students
# do not start from an unfinished teacher). Budgets are pairs per epoch times
# epochs; every setting below can be given in the environment. Not yet run on a GPU. At these
# budgets it ran in 66 min on a 2-core CPU with AMX (DEVICE=cpu PRECISION=bf16 LOADER_WORKERS=0
# DEADLINE_S=7200; docs/heldout/gpu_chain). With tiny budgets it runs end to end
# (tests/test_gpu_chain.py), also under torch 2.11 with opencv-python-headless 4.12, the
# PyTorch of the lent machines.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

PYTHON=${PYTHON:-python3}                 # on the lent machines, the one with PyTorch
PACK=${PACK:-data/cache/pack}
DEVICE=${DEVICE:-cuda}
PRECISION=${PRECISION:-bf16}              # fp32 for a CPU without bfloat16 instructions
# Sized from the one H100 run of the synthetic chain (tools/reproduce.py, batch 8: teacher 457
# pairs/s, RB-SF 133, XNOR-SF 400) to leave room in 560 s: rendering ~2 min on 16 cores,
# teacher 48,000 pairs ~2 min, students 20,000 pairs each at once ~3-4 min. Read the pairs/s
# this run prints before sizing the next.
SEQUENCES=${SEQUENCES:-1500}
TEACHER_EPOCHS=${TEACHER_EPOCHS:-8}
TEACHER_PAIRS=${TEACHER_PAIRS:-6000}      # per epoch
STUDENT_EPOCHS=${STUDENT_EPOCHS:-8}
STUDENT_PAIRS=${STUDENT_PAIRS:-2500}      # per epoch, each student
BATCH=${BATCH:-8}                         # pairs per step, as every shipped run
LOADER_WORKERS=${LOADER_WORKERS:-6}       # per training process
STUDENT_THREADS=${STUDENT_THREADS:-$(($(nproc) > 1 ? $(nproc) / 2 : 1))}  # torch threads of each student (two run at once)
DEADLINE_S=${DEADLINE_S:-560}
SEED=${SEED:-0}
OUT=${OUT:-runs/gpu-chain}
WORK=${WORK:-$(mktemp -d)}

left() { echo $((DEADLINE_S - SECONDS > 10 ? DEADLINE_S - SECONDS : 10)); }
step() { echo "== $(date -u +%H:%M:%S) ($SECONDS s) $*"; }
train() {   # train STAGE ARGS...: one stage, stopped with Ctrl-C (saving) at the deadline
    local stage=$1
    shift
    timeout --signal=INT --kill-after=60 "$(left)" "$PYTHON" tools/train_rbsf.py \
        --stage "$stage" --got10k "$WORK/real" --out "$WORK/run" --device "$DEVICE" \
        --precision "$PRECISION" --batch-size "$BATCH" --workers "$LOADER_WORKERS" \
        --seed "$SEED" "$@"
}

chain() {
    if [ ! -f "$PACK/tuxpaint-stamps/source.json" ]; then
        echo "error: no source pack at $PACK; make it with \`python tools/prepare_data.py pack" \
            "--reserve-tuning --out $PACK\` and carry it to this machine"
        exit 2
    fi
    step "render $SEQUENCES sequences from $PACK into $WORK/real"
    "$PYTHON" tools/prepare_data.py --cache "$PACK" train --reserve-tuning --out "$WORK/real" \
        --sequences "$SEQUENCES" --workers "$(nproc)" || exit 2

    step "teacher: $TEACHER_EPOCHS x $TEACHER_PAIRS pairs from data/weights/siamfc.pt"
    local failed=0
    train teacher --init data/weights/siamfc.pt --epochs "$TEACHER_EPOCHS" \
        --pairs-per-epoch "$TEACHER_PAIRS" --lr 5e-3 --lr-end 1e-4 || failed=1

    if [ "$failed" = 0 ]; then
        step "students: $STUDENT_EPOCHS x $STUDENT_PAIRS pairs each, at once"
        students=()
        for stage in xnor rbsf; do
            OMP_NUM_THREADS=$STUDENT_THREADS train "$stage" --teacher "$WORK/run/teacher/last.pt" \
                --epochs "$STUDENT_EPOCHS" --pairs-per-epoch "$STUDENT_PAIRS" \
                --student-optimizer adam --lr 3e-4 --lr-end 1e-5 --lambda1 1e-6 \
                > "$WORK/$stage.out" 2>&1 &
            students+=($!)
        done
        for pid in "${students[@]}"; do
            wait "$pid" || failed=1
        done
        cat "$WORK/xnor.out" "$WORK/rbsf.out"
    fi

    step "slim copies into $OUT"
    "$PYTHON" -m experiments.slim_run "$WORK/run" "$OUT" || exit 2
    step "done$([ "$failed" = 0 ] || echo ': a stage did not finish (see above)')"
    return "$failed"
}

mkdir -p "$OUT"
chain 2>&1 | tee "$OUT/chain.log"
