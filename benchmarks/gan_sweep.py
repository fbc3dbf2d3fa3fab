"""What the adversarial term does: RB-SF runs from one teacher, one GAN setting changed at a time.

Every variant is the "+ GAN" step of the ablation (kernel loss and GAN, no BN update) trained
from the same teacher, on the same data, with the same seed and budget as a student of
``tools/reproduce.py`` (the cpu preset's rbsf stage unless ``--preset``); only the setting
named in its row differs. Each is scored on held-out pairs (``rbsf.eval.pair_scores``: task
loss and feature correlation with the teacher), and its log gives the discriminators' loss and
the adversarial term over the last epoch: a discriminator loss near 0 means the discriminators
win outright (the paper's term then saturates at 2 = 4 layers x 1/2).

    python benchmarks/gan_sweep.py --teacher data/weights/siamfc.pt --out runs/gan_sweep

Writes ``<out>/gan_sweep.json`` and ``<out>/gan_sweep.md``; reruns resume finished variants.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List

from experiments.reproduce import FULL_DATA, RunSpec, make_data, run_config, scale_budget, train_run
from rbsf.checkpoint import load_model
from rbsf.data import load_sequences
from rbsf.eval.pair_scores import held_out_pairs, pair_scores
from rbsf.train import PRESETS, TrainingError, preset
from rbsf.train.chain import load_teacher
from rbsf.train.logs import CsvLog

GAN = {"kernel_loss": True, "gan": True, "bn_update": False}
VARIANTS = (
    RunSpec("no_gan", "no GAN (RBConv only)", "rbsf", {**GAN, "gan": False}),
    RunSpec("paper", "paper term, lambda2 0.01", "rbsf", GAN),
    RunSpec("paper_l0.1", "paper term, lambda2 0.1", "rbsf", {**GAN, "lambda2": 0.1}),
    RunSpec("paper_l1", "paper term, lambda2 1", "rbsf", {**GAN, "lambda2": 1.0}),
    RunSpec("slow_disc", "paper term, discriminator lr 1e-5", "rbsf", {**GAN, "disc_lr": 1e-5}),
    RunSpec("pooled", "paper term, pooled discriminator input", "rbsf",
            {**GAN, "disc_mode": "pooled"}),
    RunSpec("ns", "non-saturating term, lambda2 0.01", "rbsf",
            {**GAN, "gan_loss": "nonsaturating"}),
    RunSpec("ns_l0.1", "non-saturating term, lambda2 0.1", "rbsf",
            {**GAN, "gan_loss": "nonsaturating", "lambda2": 0.1}),
)


def last_epoch_means(log_path: Path, keys: List[str]) -> Dict[str, float]:
    """Means of ``keys`` over the rows of the last logged epoch."""
    rows = CsvLog(log_path).read()
    last = [r for r in rows if r["epoch"] == rows[-1]["epoch"]]
    return {key: sum(float(r[key]) for r in last) / len(last) for key in keys}


def table(results: Dict[str, Dict[str, float]]) -> str:
    lines = ["| variant | pair loss ↓ | feature corr. with teacher | D loss, last epoch | "
             "adversarial term, last epoch |", "|---|---|---|---|---|"]
    for run in VARIANTS:
        r = results[run.id]
        gan = (f"{r['D_loss']:.3f} | {r['L_adv']:.3f}" if run.flags["gan"] else "– | –")
        lines.append(f"| {run.name} | {r['pair_loss']:.4f} | {r['teacher_similarity']:.4f} | "
                     f"{gan} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", type=Path, required=True,
                        help="full-precision checkpoint every variant is distilled from")
    parser.add_argument("--out", type=Path, default=Path("runs/gan_sweep"), help="output folder")
    parser.add_argument("--preset", choices=PRESETS, default="cpu",
                        help="training preset (its rbsf stage)")
    parser.add_argument("--pairs-scale", type=float, default=1.0,
                        help="multiply the stage's pairs per epoch by this")
    parser.add_argument("--pairs", type=int, default=256, help="held-out pairs scored")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    base = preset(args.preset)
    try:
        width = load_teacher(args.teacher).width
    except TrainingError as exc:
        parser.error(str(exc))
    if width != base.width:
        parser.error(f"--teacher {args.teacher} has width {width}; the {args.preset} preset "
                     f"trains width {base.width}")
    scale_budget(base, args.pairs_scale)
    data = make_data(args.out / "data", FULL_DATA)
    sequences = load_sequences(data["train_root"], "train")
    trained = {run.id: train_run(run_config(base, run, args.seed), run, sequences,
                                 args.out / run.id, args.device, args.teacher, resume=True)
               for run in VARIANTS}
    pairs = held_out_pairs(load_sequences(data["test_root"]), args.pairs, base.exemplar_size,
                           base.instance_size, base.search_size)
    scores = pair_scores({k: load_model(t.checkpoint) for k, t in trained.items()}, pairs,
                         args.device, teacher=load_model(args.teacher))
    results = {}
    for run in VARIANTS:
        results[run.id] = {"name": run.name, "flags": run.flags, **scores[run.id],
                           **last_epoch_means(args.out / run.id / "rbsf" / "log.csv",
                                              ["D_loss", "L_adv", "L_S"]),
                           "pairs": trained[run.id].pairs,
                           "minutes": trained[run.id].seconds / 60}
    (args.out / "gan_sweep.json").write_text(json.dumps(
        {"teacher": str(args.teacher), "preset": args.preset, "pairs_scale": args.pairs_scale,
         "seed": args.seed, "held_out_pairs": args.pairs, "variants": results}, indent=2))
    text = table(results)
    (args.out / "gan_sweep.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
