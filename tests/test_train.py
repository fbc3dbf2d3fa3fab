"""Training: every stage learns, Algorithm 1's pieces do their job, runs resume exactly."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import assert_clear_error, csv_rows, ctrl_c_after_steps

from rbsf.binary import sign_changes, weight_signs
from rbsf.checkpoint import load_checkpoint, model_payload
from rbsf.data import balanced_labels, load_sequences, pair_labels
from rbsf.data.synthetic import write_dataset
from rbsf.discriminator import discriminator_loss, feature_vectors
from rbsf.files import save_atomic
from rbsf.models import SiamFCNet
from rbsf.models.siamfc import TAP_LAYERS
from rbsf.train import Interrupted, Trainer, TrainingError, chain, preset, train_chain
from rbsf.train.config import STAGE_KIND, ConfigError
from rbsf.train.losses import balanced_logistic_loss
from rbsf.train.tracking import TrackingTask
from rbsf.train.trainer import check_resumable

ROOT = Path(__file__).resolve().parents[1]
TOOL = str(ROOT / "tools" / "train_rbsf.py")


@pytest.fixture(scope="module")
def got10k_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("got10k")
    return write_dataset(str(out), "got10k", 4, 16, seed=3, frame_size=(240, 180))


@pytest.fixture(scope="module")
def sequences(got10k_root):
    return load_sequences(str(got10k_root), "train")


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    """A tiny full-precision teacher saved as a bare siamfc-pytorch-layout state dict."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("teacher") / "siamfc_alexnet_e50.pth"
    torch.save(SiamFCNet("fp", width=0.25).state_dict(), path)
    return path


def smoke_config(**stage_overrides):
    config = preset("smoke")
    for stage, values in stage_overrides.items():
        for key, value in values.items():
            setattr(config.stage(stage), key, value)
    return config


def mean(rows, key):
    return sum(float(r[key]) for r in rows) / len(rows)


def test_every_stage_reduces_its_task_loss(sequences, tmp_path):
    config = smoke_config(teacher={"epochs": 4, "pairs_per_epoch": 32, "lr": 2e-2},
                          xnor={"epochs": 3, "pairs_per_epoch": 32, "lr": 1e-2},
                          rbsf={"epochs": 3, "pairs_per_epoch": 32, "lr": 1e-2})
    train_chain(config, ["teacher", "xnor", "rbsf"], sequences, tmp_path)
    for stage in ("teacher", "xnor", "rbsf"):
        rows = csv_rows(tmp_path / stage / "log.csv")
        first, last = rows[: len(rows) // 3], rows[-len(rows) // 3:]
        assert mean(last, "L_S") < mean(first, "L_S"), stage
        assert (tmp_path / stage / "loss.png").stat().st_size > 0
        assert load_checkpoint(tmp_path / stage / "last.pt")["finished"]
    rbsf_rows = csv_rows(tmp_path / "rbsf" / "log.csv")
    assert all(float(r["L_kernel"]) > 0 and float(r["D_loss"]) > 0 for r in rbsf_rows)
    assert all(float(r["response_std"]) > 0 for r in rbsf_rows)


def rbsf_trainer(sequences, teacher_file, tmp_path, **config_values):
    config = smoke_config()
    for key, value in config_values.items():
        setattr(config, key, value)
    teacher = SiamFCNet("fp", width=0.25)
    teacher.load_teacher_state(torch.load(teacher_file))
    return Trainer(config, "rbsf", sequences, tmp_path, teacher=teacher, show_progress=False)


def first_batch(trainer):
    trainer.pairs.set_epoch(0)
    return next(iter(trainer._loader(trainer.pairs, 0)))


def test_discriminator_step_raises_its_objective(sequences, teacher_file, tmp_path):
    trainer = rbsf_trainer(sequences, teacher_file, tmp_path)
    z, x, _ = first_batch(trainer)

    def objectives():
        with torch.no_grad():
            _, student = trainer.model.forward_taps(z, x)
            _, teacher = trainer.teacher.forward_taps(z, x)
            values = {}
            for name in TAP_LAYERS:
                real, index = feature_vectors(teacher[name], "positions", None)
                fake, _ = feature_vectors(student[name], "positions", None, index=index)
                values[name] = -discriminator_loss(trainer.discs[name], real, fake).item()
            return values

    trainer.model.train()
    before = objectives()
    with torch.no_grad():
        _, taps = trainer.model.forward_taps(z, x)
    trainer.adversarial(z, x, taps)
    after = objectives()
    assert all(after[name] > before[name] for name in TAP_LAYERS), (before, after)


def test_student_optimizer_picks_adam_for_students_only(sequences, teacher_file, tmp_path):
    trainer = rbsf_trainer(sequences, teacher_file, tmp_path / "s", student_optimizer="adam")
    assert isinstance(trainer.opt_w, torch.optim.Adam)
    assert isinstance(trainer.opt_c, torch.optim.Adam)
    assert trainer.opt_w.param_groups[0]["weight_decay"] == 0
    config = smoke_config()
    config.student_optimizer = "adam"
    teacher = Trainer(config, "teacher", sequences, tmp_path / "t", show_progress=False)
    assert isinstance(teacher.opt_w, torch.optim.SGD)
    config.student_optimizer = "rmsprop"
    with pytest.raises(ConfigError, match="--student-optimizer must be one of sgd, adam"):
        config.check(["rbsf"])


def test_logged_sign_flips_add_up_to_the_sign_changes_of_the_run(sequences, teacher_file,
                                                                 tmp_path):
    trainer = rbsf_trainer(sequences, teacher_file, tmp_path, student_optimizer="adam")
    for group in trainer.opt_w.param_groups:
        group["lr"] = 1e-2
    trainer.model.train()
    start = weight_signs(trainer.model)
    trainer.pairs.set_epoch(0)
    flips = [trainer.train_step(batch)["sign_flips"]
             for _, batch in zip(range(3), trainer._loader(trainer.pairs, 0))]
    net = sign_changes(start, weight_signs(trainer.model))
    # a weight that ends with another sign flipped an odd number of times, one that ends with
    # its own sign an even number
    assert net > 0 and sum(flips) >= net and (sum(flips) - net) % 2 == 0, (flips, net)


def test_response_distillation_is_least_where_the_responses_agree(sequences):
    task = TrackingTask(smoke_config(), sequences, 8)
    teacher = torch.tensor([[-2.0, 0.0, 3.0]])
    student = teacher.clone().requires_grad_(True)
    loss = task.distill_loss(student, teacher)
    loss.backward()
    assert torch.allclose(student.grad, torch.zeros(3), atol=1e-7)
    # by hand: mean over positions of -(p log s + (1 - p) log(1 - s)), p = sigmoid(teacher)
    p, q = torch.sigmoid(teacher), torch.sigmoid(torch.tensor([[0.0, 1.0, -1.0]]))
    by_hand = -(p * q.log() + (1 - p) * (1 - q).log()).mean()
    assert task.distill_loss(torch.tensor([[0.0, 1.0, -1.0]]), teacher).item() == pytest.approx(
        by_hand.item(), rel=1e-6)


@pytest.mark.parametrize("stage", ["xnor", "rbsf"])
def test_distillation_weight_adds_a_paired_term_for_any_student(sequences, teacher_file,
                                                                tmp_path, stage):
    teacher = SiamFCNet("fp", width=0.25)
    teacher.load_teacher_state(torch.load(teacher_file))
    logged = {}
    for weight in (0.0, 1.0):
        config = smoke_config()
        config.lambda_distill = weight
        trainer = Trainer(config, stage, sequences, tmp_path / f"{stage}{weight}",
                          teacher=teacher, show_progress=False)
        assert (trainer.teacher is not None) == (stage == "rbsf" or weight > 0)
        logged[weight] = trainer.train_step(first_batch(trainer))
    assert logged[0.0]["L_distill"] == 0.0
    assert logged[1.0]["L_distill"] > 0
    assert logged[1.0]["L_S"] == pytest.approx(logged[0.0]["L_S"])   # same start, same batch


def test_negative_pairs_reach_the_task_loss(sequences, tmp_path):
    config = smoke_config()
    config.negative_pairs, config.seed = 0.5, 1       # seed 1: the first batch holds both kinds
    trainer = Trainer(config, "teacher", sequences, tmp_path, show_progress=False)
    batch = first_batch(trainer)
    z, x, positive = batch
    assert 0 < int(positive.sum()) < len(positive)
    with torch.no_grad():
        response = trainer.model(z, x)
        expected = balanced_logistic_loss(response, *pair_labels(positive, response.size(-1)))
        all_positive = balanced_logistic_loss(response, *balanced_labels(response.size(-1)))
    logged = trainer.train_step(batch)
    assert logged["L_S"] == pytest.approx(float(expected), rel=1e-5)
    assert float(expected) != pytest.approx(float(all_positive), rel=1e-3)


@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32),
                                              ("bf16", torch.bfloat16)])
def test_precision_sets_the_forward_dtype_and_keeps_float32_weights(sequences, teacher_file,
                                                                    tmp_path, precision, dtype):
    trainer = rbsf_trainer(sequences, teacher_file, tmp_path, precision=precision)
    seen = {}

    def record(name):
        def hook(module, args, out):
            seen.setdefault(name, out.dtype)
        return hook

    trainer.model.backbone.conv3[0].register_forward_hook(record("student"))
    trainer.teacher.backbone.conv3[0].register_forward_hook(record("teacher"))
    logged = trainer.train_step(first_batch(trainer))
    assert seen == {"student": dtype, "teacher": dtype}
    assert all(v == v and abs(v) != float("inf") for v in logged.values())
    assert logged["L_adv"] > 0 and logged["D_loss"] > 0
    assert all(p.dtype == torch.float32 and p.grad is not None and p.grad.dtype == torch.float32
               for p in trainer.model.parameters() if p.requires_grad)
    trainer.bn_update()
    trainer.save()
    saved = load_checkpoint(tmp_path / "rbsf" / "last.pt")["model"]
    assert all(t.is_contiguous() for t in saved.values())


def test_bn_update_changes_only_batch_norm(sequences, teacher_file, tmp_path):
    trainer = rbsf_trainer(sequences, teacher_file, tmp_path)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.bn_update()
    after = trainer.model.state_dict()
    bn_keys = {f"{name}.{suffix}" for name, m in trainer.model.named_modules()
               if isinstance(m, torch.nn.BatchNorm2d)
               for suffix in ("weight", "bias", "running_mean", "running_var",
                              "num_batches_tracked")}
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed, "the BN update changed nothing"
    assert changed <= bn_keys, changed - bn_keys
    assert any(k.endswith("running_mean") for k in changed)
    assert any(k.endswith(".weight") for k in changed)
    assert all(p.requires_grad for p in trainer.model.parameters())


def test_student_starts_from_siamfc_pytorch_teacher(sequences, teacher_file, tmp_path):
    config = smoke_config(xnor={"epochs": 1, "pairs_per_epoch": 4})
    config.batch_size = 4
    results = train_chain(config, ["xnor"], sequences, tmp_path, teacher_path=teacher_file)
    teacher_state = torch.load(teacher_file)
    saved_teacher = load_checkpoint(results["teacher"])["model"]
    assert all(torch.equal(saved_teacher[k], v) for k, v in teacher_state.items())
    # one SGD step at lr 1e-3 from the teacher's weights: close to them, not equal
    student = load_checkpoint(results["xnor"])["model"]
    w_t, w_s = teacher_state["backbone.conv3.0.weight"], student["backbone.conv3.0.weight"]
    assert not torch.equal(w_t, w_s)
    assert (w_t - w_s).abs().max() < 1e-2 * w_t.abs().max()


def test_teacher_fine_tunes_from_init_weights(sequences, teacher_file, tmp_path):
    config = smoke_config(teacher={"epochs": 1, "pairs_per_epoch": 4, "lr": 1e-4})
    config.batch_size = 4
    config.init = {"teacher": str(teacher_file)}
    path = train_chain(config, ["teacher"], sequences, tmp_path)["teacher"]
    init = torch.load(teacher_file)["backbone.conv3.0.weight"]
    tuned = load_checkpoint(path)["model"]["backbone.conv3.0.weight"]
    # one SGD step at lr 1e-4 from the init weights: close to them, not equal
    assert not torch.equal(init, tuned)
    assert (init - tuned).abs().max() < 1e-3 * init.abs().max()
    assert load_checkpoint(path)["train_config"]["init"] == {"teacher": str(teacher_file)}


@pytest.mark.parametrize("stage", ["xnor", "rbsf"])
def test_student_fine_tunes_from_init_weights_not_from_its_teacher(sequences, teacher_file,
                                                                   tmp_path, stage, monkeypatch):
    loads = []
    real_load = chain.load_checkpoint
    monkeypatch.setattr(chain, "load_checkpoint", lambda path: loads.append(str(path)) or
                        real_load(path))
    torch.manual_seed(1)
    given = SiamFCNet(STAGE_KIND[stage], width=0.25)
    given.load_teacher_state(SiamFCNet("fp", width=0.25).state_dict())
    init_file = tmp_path / "student.pt"
    save_atomic(model_payload(given, stage=stage, finished=True), init_file)
    config = smoke_config(**{stage: {"epochs": 1, "pairs_per_epoch": 4, "lr": 1e-4}})
    config.batch_size = 4
    config.init = {stage: str(init_file)}
    results = train_chain(config, [stage], sequences, tmp_path / "run", teacher_path=teacher_file)
    key = "backbone.conv3.0.weight"
    tuned = load_checkpoint(results[stage])["model"][key]
    start = given.state_dict()[key]
    # one step at lr 1e-4 from the given student: close to it, not equal, far from the teacher
    assert not torch.equal(start, tuned)
    assert (start - tuned).abs().max() < 1e-3 * start.abs().max()
    assert (torch.load(teacher_file)[key] - tuned).abs().max() > 0.1 * start.abs().max()
    # the checks and the training share one load of each given checkpoint
    assert loads.count(str(init_file)) == 1 and loads.count(str(teacher_file)) == 1


@pytest.mark.parametrize("stage, precision", [("teacher", "fp32"), ("rbsf", "fp32"),
                                              ("rbsf", "bf16")])
def test_resume_after_interruption_matches_uninterrupted_run(sequences, teacher_file,
                                                             tmp_path, stage, precision):
    def config():
        config = smoke_config(**{stage: {"epochs": 2, "pairs_per_epoch": 16}})
        config.precision = precision
        return config

    teacher = None if stage == "teacher" else teacher_file
    straight = tmp_path / "straight"
    train_chain(config(), [stage], sequences, straight, teacher_path=teacher)
    broken = tmp_path / "broken"
    with pytest.raises(Interrupted):
        train_chain(config(), [stage], sequences, broken, teacher_path=teacher, max_steps=3)
    assert not load_checkpoint(broken / stage / "last.pt")["finished"]
    with pytest.raises(TrainingError, match="--resume"):
        train_chain(config(), [stage], sequences, broken, teacher_path=teacher)
    train_chain(config(), [stage], sequences, broken, teacher_path=teacher, resume=True)

    a = load_checkpoint(straight / stage / "last.pt")
    b = load_checkpoint(broken / stage / "last.pt")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    if stage == "rbsf":
        for key in a["discs"]:
            assert torch.equal(a["discs"][key], b["discs"][key]), key
    log_a, log_b = csv_rows(straight / stage / "log.csv"), csv_rows(broken / stage / "log.csv")
    assert [r["step"] for r in log_a] == [r["step"] for r in log_b]
    for key in ("L_S", "L_kernel", "L_adv", "D_loss", "lr"):
        assert [r[key] for r in log_a] == [r[key] for r in log_b], key


def run_tool(*args, **kwargs):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600, **kwargs)


def test_nan_loss_stops_with_clear_message(got10k_root, tmp_path):
    bad = SiamFCNet("fp", width=0.25).state_dict()
    bad["backbone.conv1.0.weight"].fill_(float("nan"))
    teacher = tmp_path / "nan_teacher.pth"
    torch.save(bad, teacher)
    result = run_tool("--preset", "smoke", "--stage", "xnor", "--teacher", str(teacher),
                      "--got10k", str(got10k_root), "--out", str(tmp_path / "run"))
    assert_clear_error(result, "became nan")
    assert not (tmp_path / "run" / "xnor" / "last.pt").exists()


def test_corrupt_checkpoint_is_reported_not_loaded(got10k_root, tmp_path):
    out = tmp_path / "run"
    (out / "teacher").mkdir(parents=True)
    (out / "teacher" / "last.pt").write_bytes(b"\x80\x02 this is not a checkpoint")
    result = run_tool("--preset", "smoke", "--stage", "teacher", "--resume",
                      "--got10k", str(got10k_root), "--out", str(out))
    assert_clear_error(result, "corrupt")


def test_wrong_dataset_root_fails_at_once(tmp_path):
    result = run_tool("--preset", "smoke", "--got10k", str(tmp_path / "nowhere"))
    assert_clear_error(result, "nowhere")


def test_a_checkpoint_older_than_a_setting_resumes_with_its_default(sequences, tmp_path):
    with pytest.raises(Interrupted):
        train_chain(smoke_config(), ["teacher"], sequences, tmp_path, max_steps=1)
    path = tmp_path / "teacher" / "last.pt"
    data = load_checkpoint(path)
    del data["train_config"]["precision"]        # written before the setting existed
    assert check_resumable(data, path, smoke_config(), "teacher") == {}
    other = smoke_config()
    other.precision = "bf16"
    with pytest.raises(TrainingError, match="precision"):
        check_resumable(data, path, other, "teacher")


def test_ctrl_c_saves_and_resume_finishes(got10k_root, tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, TOOL, "--preset", "smoke", "--stage", "teacher", "--epochs", "50",
            "--got10k", str(got10k_root), "--out", str(out)]
    log = out / "teacher" / "log.csv"
    ctrl_c_after_steps(args, log)
    saved = load_checkpoint(out / "teacher" / "last.pt")
    assert not saved["finished"] and saved["step"] >= 3
    assert len(csv_rows(log)) == saved["step"]
    changed = subprocess.run(args[:-4] + ["--epochs", "2", "--out", str(out), "--resume"],
                             cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert_clear_error(changed, "epochs")  # another schedule: refused
    target = saved["step"] + 3
    resumed = subprocess.run(args + ["--resume", "--max-steps", str(target)], cwd=ROOT,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 130, resumed.stderr
    assert load_checkpoint(out / "teacher" / "last.pt")["step"] == target
    assert [int(r["step"]) for r in csv_rows(log)] == list(range(1, target + 1))


def test_two_process_gloo_run_keeps_replicas_identical(got10k_root, teacher_file, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         TOOL, "--preset", "smoke", "--stage", "rbsf", "--teacher", str(teacher_file),
         "--epochs", "1", "--pairs-per-epoch", "16", "--got10k", str(got10k_root),
         "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = load_checkpoint(out / "rbsf" / "last.pt")
    assert saved["finished"] and saved["budget"]["pairs_seen"] == 16
    # each of the 2 ranks took 8 of the 16 pairs: 2 steps of batch 4
    assert saved["step"] == 2
