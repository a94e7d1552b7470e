"""The foveal command line, run in-process through main() and as a real subprocess."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from foveal.cli.main import main
from foveal.training.checkpoint import load_checkpoint

FAST = ["--model", "mlp", "--epochs", "2", "--batch-size", "64", "--lr", "0.05",
        "--warmup-epochs", "0", "--device", "cpu", "--no-progress"]


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small digits run shared by the eval and predict tests."""
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--data", "digits", *FAST, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("command", ["train", "demo", "eval", "predict", "info", "download",
                                     "geometry", "sfm", "data", "models", "coco-eval"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: foveal" in capsys.readouterr().out


def test_info_reports_versions_device_and_threads(capsys):
    code, out, _ = run_cli(["info", "--json"], capsys)
    info = json.loads(out)
    assert code == 0
    assert info["torch"] == torch.__version__
    assert info["default device"] in {"cpu", "cuda", "mps"}
    assert info["torch threads"] == torch.get_num_threads()


def test_train_writes_run_folder_and_prints_report_path(trained):
    assert (trained / "report.html").is_file()
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.85


def test_demo_prints_summary_with_report_path(tmp_path, capsys):
    code, out, _ = run_cli(["demo", "--epochs", "1", "--out", tmp_path / "demo",
                            "--no-progress"], capsys)
    assert code == 0
    assert f"report         {tmp_path / 'demo' / 'report.html'}" in out
    assert (tmp_path / "demo" / "report.html").is_file()


def test_eval_of_a_run_folder_reproduces_its_test_accuracy(trained, tmp_path, capsys):
    code, out, _ = run_cli(["eval", trained, "--data", "digits", "--out", tmp_path / "ev",
                            "--no-progress"], capsys)
    assert code == 0 and out.startswith("accuracy  ")
    train_metrics = json.loads((trained / "metrics.json").read_text())
    eval_metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert eval_metrics["test_accuracy"] == pytest.approx(train_metrics["test_accuracy"])
    assert (tmp_path / "ev" / "report.html").is_file()


def test_predict_on_image_files_matches_predict_on_pixels(trained, tmp_path, capsys):
    from foveal.data import load_dataset
    from foveal.models.classifier import Classifier

    test = load_dataset("digits", "test")
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(test.images[i, :, :, 0]).save(paths[-1])
    code, out, _ = run_cli(["predict", trained, *paths, "--json", "--device", "cpu"], capsys)
    assert code == 0
    rows = json.loads(out)
    probs = Classifier.from_file(trained, device="cpu").predict(test.images[:4])
    for row, p in zip(rows, probs, strict=True):
        assert row["top"][0]["class"] == test.classes[int(np.argmax(p))]
        assert row["top"][0]["probability"] == pytest.approx(float(p.max()), rel=1e-5)


@pytest.mark.parametrize(
    ("args", "message"),
    [(["train", "--model", "nosuchnet"], "unknown model 'nosuchnet': expected one of"),
     (["train", "--data", "imagenet-99"], "unknown dataset 'imagenet-99'"),
     (["train", "--preset", "fastest"], "unknown preset 'fastest': expected one of demo"),
     (["train", "--optimizer", "lion"], "unknown optimizer 'lion'"),
     (["eval", "no/such/model.safetensors"], "checkpoint not found")],
)
def test_bad_names_are_one_line_errors_with_exit_2(args, message, capsys, tmp_path):
    code, _, err = run_cli([*args, "--out", tmp_path / "x"] if args[0] != "eval" else args,
                           capsys)
    assert code == 2
    assert err.startswith("foveal: error: ") and message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_malformed_config_file_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "c.json"
    bad.write_text("{epochs: 3")
    code, _, err = run_cli(["train", "--config", bad, "--out", tmp_path / "x"], capsys)
    assert code == 2 and "expected a JSON object, got invalid JSON" in err


def test_unwritable_output_directory_is_an_error_with_no_outputs(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    code, _, err = run_cli(["train", "--data", "digits", *FAST, "--out",
                            tmp_path / "file" / "run"], capsys)
    assert code == 2 and "expected a writable directory" in err
    assert os.listdir(tmp_path) == ["file"]


def test_checkpoint_of_another_model_is_refused_on_resume(trained, tmp_path, capsys):
    import shutil

    from foveal.training.checkpoint import save_checkpoint

    # Keep the run's config (model "mlp") but store weights described as a resnet9.
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    ckpt = load_checkpoint(run / "checkpoint.safetensors")
    spec = ckpt.spec
    spec.name, spec.options = "resnet9", {"width": 4}
    model = spec.build()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    save_checkpoint(run / "checkpoint.safetensors", model=model, spec=spec, optimizer=opt,
                    state=ckpt.state)
    code, _, err = run_cli(["train", "--resume", run], capsys)
    assert code == 2 and "checkpoint is for model 'resnet9', expected 'mlp'" in err


def test_checkpoint_from_an_incompatible_version_is_refused(trained, tmp_path, capsys):
    import safetensors.torch

    path = tmp_path / "future.safetensors"
    doc = {"format": "foveal", "format_version": 7, "foveal_version": "7.0.0"}
    safetensors.torch.save_file({"model/w": torch.zeros(1)}, path,
                                metadata={"foveal": json.dumps(doc)})
    code, _, err = run_cli(["eval", path], capsys)
    assert code == 2 and "format version <= 2, got 7 (written by foveal 7.0.0)" in err


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted_run(tmp_path):
    """A real process killed with SIGKILL loses at most the steps since its last checkpoint."""
    args = ["train", "--data", "digits", "--model", "resnet9", "--width", "8", "--epochs", "3",
            "--batch-size", "32", "--lr", "0.1", "--warmup-epochs", "0", "--crop-padding", "1",
            "--device", "cpu", "--checkpoint-every", "5", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "foveal"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, *args, "--out", str(killed)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = killed / "checkpoint.safetensors"
    deadline = time.monotonic() + 120
    step = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpt.exists():
            try:
                step = load_checkpoint(ckpt).state["step"]
            except Exception:  # the rename is atomic, but be lenient while polling
                step = 0
            if step >= 10:
                break
        time.sleep(0.02)
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = load_checkpoint(ckpt).state["step"]
    assert saved >= 10 and saved % 5 == 0
    assert not (killed / "model.safetensors").exists()

    resumed = subprocess.run([*cmd, "train", "--resume", str(killed)], env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert not [p for p in killed.iterdir() if p.name.endswith(".tmp")]  # stale temp files gone
    assert f"(step {saved})" in resumed.stderr
    full = subprocess.run([*cmd, *args, "--out", str(tmp_path / "full")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert full.returncode == 0, full.stderr
    a = load_checkpoint(killed / "model.safetensors").model_state()
    b = load_checkpoint(tmp_path / "full" / "model.safetensors").model_state()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_scratch_engine_run_from_the_cli_then_eval_and_resume(tmp_path, capsys):
    """`foveal train --engine scratch` leaves a run folder that `eval` reads like a torch run,
    and `--resume` of a finished scratch run is a no-op that keeps its figures."""
    out = tmp_path / "scratch"
    code, stdout, _ = run_cli(["train", "--engine", "scratch", "--data", "digits", *FAST,
                               "--out", out], capsys)
    assert code == 0 and f"{out / 'report.html'}" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["engine"] == "scratch" and metrics["test_accuracy"] > 0.85
    code, _, _ = run_cli(["eval", out, "--data", "digits", "--out", tmp_path / "ev",
                          "--no-progress"], capsys)
    assert code == 0
    evaluated = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert evaluated["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    code, _, _ = run_cli(["train", "--resume", out, "--no-progress"], capsys)
    assert code == 0
    assert json.loads((out / "metrics.json").read_text())["test_accuracy"] == pytest.approx(
        metrics["test_accuracy"])


def test_scratch_engine_refuses_a_model_it_does_not_have(tmp_path, capsys):
    code, _, err = run_cli(["train", "--engine", "scratch", "--model", "resnet9", "--data",
                            "digits", "--out", tmp_path / "x", "--no-progress"], capsys)
    assert code == 2 and err.count("\n") == 1 and "resnet9" in err
