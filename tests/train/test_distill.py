import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from leanconv import load_model
from leanconv.train import TrainConfig, train
from leanconv.train.distill import distillation_loss
from leanconv.train.evaluate import evaluate_checkpoint

TINY = {"data": "synthetic", "subset": 512, "batch_size": 32, "eval_batch_size": 256,
        "progress": False, "threads": 1}


def test_loss_is_the_weighted_sum_of_ce_and_scaled_kl():
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 5, requires_grad=True), torch.randn(6, 5)
    labels = torch.randint(5, (6,))
    hard = F.cross_entropy(student, labels)
    a, t = 0.7, 3.0
    p_teacher = torch.softmax(teacher / t, 1)
    kl = (p_teacher * (p_teacher.log() - torch.log_softmax(student / t, 1))).sum(1).mean()
    expected = (1 - a) * hard + a * t * t * kl
    got = distillation_loss(student, teacher, hard, a, t)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(distillation_loss(student, teacher, hard, 0.0, t), hard)
    # the soft term vanishes when the student equals the teacher
    assert distillation_loss(teacher, teacher, hard, 1.0, t).abs().item() < 1e-6


def _kl_to(teacher_path, student_path):
    teacher, _ = load_model(teacher_path)
    student, _ = load_model(student_path)
    x = torch.randn(64, 1, 28, 28)
    with torch.no_grad():
        return F.kl_div(F.log_softmax(student.eval()(x), 1), F.log_softmax(teacher.eval()(x), 1),
                        log_target=True, reduction="batchmean").item()


@pytest.mark.slow
def test_distillation_pulls_the_student_to_the_teacher(tmp_path):
    teacher = tmp_path / "teacher"
    train(TrainConfig(epochs=2, out=str(teacher), **TINY))
    teacher_pt = str(teacher / "last.pt")
    # the same start twice (seed 1), one epoch: with the teacher only (a=1), without it
    taught = train(TrainConfig(epochs=1, seed=1, out=str(tmp_path / "taught"),
                               teacher=teacher_pt, distill_weight=1.0, **TINY))
    plain = train(TrainConfig(epochs=1, seed=1, out=str(tmp_path / "plain"), **TINY))
    assert taught["teacher"] == teacher_pt
    assert taught["teacher_test_acc"] == pytest.approx(
        evaluate_checkpoint(teacher_pt)["acc"])
    assert plain["teacher_test_acc"] is None
    assert _kl_to(teacher_pt, str(tmp_path / "taught" / "last.pt")) < 0.5 * _kl_to(
        teacher_pt, str(tmp_path / "plain" / "last.pt"))


@pytest.mark.slow
def test_fine_tune_a_converted_model_with_a_teacher_under_ddp(tmp_path):
    teacher = tmp_path / "teacher"
    train(TrainConfig(epochs=1, out=str(teacher), **TINY))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    convert = [sys.executable, "-m", "leanconv", "convert", str(teacher / "last.pt"), "--to",
               "hetconv:p=2", "--out", str(tmp_path / "het.pt")]
    assert subprocess.run(convert, capture_output=True, env=env, timeout=120).returncode == 0
    out = tmp_path / "tuned"
    cmd = [sys.executable, "-m", "leanconv", "train", "--nproc", "2", "--init",
           str(tmp_path / "het.pt"), "--teacher", str(teacher / "last.pt"), "--data",
           "synthetic", "--subset", "128", "--epochs", "1", "--batch-size", "16",
           "--threads", "1", "--out", str(out), "--no-progress"]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["ranks_in_sync"] is True
    assert summary["conv"] == "hetconv:p=2" and summary["teacher_test_acc"] is not None
    _, info = load_model(str(out / "best.pt"))
    assert info.plan and set(info.plan.values()) == {"hetconv:p=2"}
