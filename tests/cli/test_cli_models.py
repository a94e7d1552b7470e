"""`foveal models list | summary`, run in-process through main().

Oracles: the library calls the commands wrap (foveal.models.list_models, summarize,
chain_receptive_field) and ``sum(p.numel())`` of the built model.
"""

import json

import pytest

from foveal.cli.main import main
from foveal.models import build_model, list_models, model_names
from foveal.models.receptive_field import chain_receptive_field
from foveal.models.summary import summarize


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_models_list_shows_every_registered_model(capsys):
    code, out, _ = run_cli(["models", "list"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["name", "family", "input", "params"]
    assert sorted(line.split()[0] for line in lines[1:]) == sorted(model_names())
    small = next(line for line in lines if line.startswith("small_cnn"))
    assert "3×32×32" in small and "two conv-pool blocks" in small


def test_models_list_json_and_family_filter(capsys):
    code, out, _ = run_cli(["models", "list", "--json"], capsys)
    assert code == 0
    rows = json.loads(out)
    assert [r["name"] for r in rows] == [e.name for e in list_models()]
    entry = {e.name: e for e in list_models()}
    for r in rows:
        e = entry[r["name"]]
        assert (r["family"], r["params"], r["description"]) == (e.family, e.params,
                                                                e.description)
        assert r["input_size"] == [3, e.image_size, e.image_size]
    code, out, _ = run_cli(["models", "list", "--family", "resnet", "--json"], capsys)
    assert code == 0 and {r["family"] for r in json.loads(out)} == {"resnet"}


def test_models_summary_small_cnn_table_totals_and_receptive_field(capsys):
    code, out, _ = run_cli(["models", "summary", "small_cnn"], capsys)
    assert code == 0
    model = build_model("small_cnn", in_channels=3, num_classes=10, image_size=32)
    total = sum(p.numel() for p in model.parameters())
    assert f"parameters       {total:,}" in out
    assert any(line.startswith("conv1") and "1×6×28×28" in line for line in out.splitlines())
    rf = chain_receptive_field(model)
    assert f"receptive field  {rf[0]}×{rf[1]} px" in out


def test_models_summary_json_matches_the_library(capsys):
    code, out, _ = run_cli(["models", "summary", "mlp", "--input", "1x28x28",
                            "--num-classes", "5", "--json"], capsys)
    assert code == 0
    record = json.loads(out)
    model = build_model("mlp", in_channels=1, num_classes=5, image_size=28)
    expected = summarize(model, (1, 28, 28)).to_dict()
    assert record["model"] == "mlp" and record["input_size"] == [1, 28, 28]
    assert record["total_params"] == expected["total_params"] == sum(
        p.numel() for p in model.parameters())
    assert record["total_flops"] == expected["total_flops"]
    assert [r["name"] for r in record["layers"]] == [r["name"] for r in expected["layers"]]
    assert record["layers"][-1]["output_shape"] == [1, 5]
    assert "receptive_field" not in record  # flatten first: no spatial chain


def test_models_summary_omits_receptive_field_for_branching_models(capsys):
    code, out, _ = run_cli(["models", "summary", "resnet9", "--input", "3x16x16", "--json"],
                           capsys)
    assert code == 0
    record = json.loads(out)
    assert "receptive_field" not in record
    assert record["layers"][-1]["output_shape"] == [1, 10]  # the builder's default classes
    code, out, _ = run_cli(["models", "summary", "small_cnn", "--json"], capsys)
    assert json.loads(out)["receptive_field"] == [16, 16]


@pytest.mark.parametrize("args, message", [
    (["summary", "nope"], "unknown model 'nope': expected one of " + ", ".join(model_names())),
    (["summary", "small_cnn", "--input", "3x224"],
     "--input: expected CxHxW such as 3x224x224, got '3x224'"),
    (["summary", "small_cnn", "--input", "3xaxb"], "expected CxHxW"),
    (["summary", "small_cnn", "--input", "0x32x32"], "--input: expected positive sizes"),
    (["summary", "small_cnn", "--num-classes", "0"], "--num-classes: expected a positive"),
    (["summary", "resnet9", "--input", "3x4x4"], "expected an input size ResNet9 accepts"),
    (["list", "--family", "nope"], "unknown family 'nope': expected one of"),
])
def test_models_bad_input_exits_2_with_one_line(args, message, capsys):
    code, out, err = run_cli(["models", *args], capsys)
    assert code == 2 and out == ""
    assert err.startswith("foveal: error: ") and err.strip().count("\n") == 0
    assert message in err


@pytest.mark.parametrize("command", [["models"], ["models", "list"], ["models", "summary"]])
def test_models_commands_have_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert "usage: foveal models" in capsys.readouterr().out


def test_models_summary_on_the_meta_device_matches_the_cpu(monkeypatch, capsys):
    code, cpu, _ = run_cli(["models", "summary", "small_cnn", "--json"], capsys)
    assert code == 0
    monkeypatch.setattr("foveal.cli.models._META_ABOVE_PARAMS", 0)  # every model on meta
    code, meta, _ = run_cli(["models", "summary", "small_cnn", "--json"], capsys)
    assert code == 0 and json.loads(meta) == json.loads(cpu)
    code, _, err = run_cli(["models", "summary", "resnet9", "--input", "3x4x4"], capsys)
    assert code == 2 and "at least 8×8" in err
