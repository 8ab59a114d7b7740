"""Typed configs (defaults < YAML < key=value / --flags) and the CLI's help."""

from dataclasses import dataclass

import pytest

from vjepa2.cli import COMMANDS, build_parser, main, parse
from vjepa2.config import load_config, opt


@dataclass
class Optim:
    lr: float = opt(1e-3, help="learning rate")
    betas: list[float] = opt([0.9, 0.999], help="AdamW betas")


@dataclass
class Demo:
    name: str = opt("x", help="a name")
    steps: int = opt(10, help="steps")
    fast: bool = opt(False, help="go fast")
    optim: Optim = opt(Optim, help="optimizer")


def test_precedence_and_types(tmp_path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("steps: 20\noptim:\n  lr: 0.5\n")
    cfg = load_config(Demo, yaml_file, ["optim.lr=2e-4", "fast=true", "optim.betas=[0.8, 0.9]"])
    assert cfg.steps == 20 and cfg.optim.lr == 2e-4 and cfg.fast is True and cfg.optim.betas == [0.8, 0.9]
    assert Demo().optim.betas == [0.9, 0.999]  # defaults are not shared between instances


def test_bad_keys_and_values(tmp_path):
    with pytest.raises(KeyError, match="unknown config key 'optim.lrr'"):
        load_config(Demo, None, ["optim.lrr=1"])
    with pytest.raises(ValueError, match="steps"):
        load_config(Demo, None, ["steps=many"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("stepz: 3\n")
    with pytest.raises(KeyError, match="bad.yaml"):
        load_config(Demo, bad)


def test_every_command_has_help_for_every_option():
    for command, (_, _, _, one_line) in COMMANDS.items():
        parser = build_parser(command)
        text = parser.format_help()
        assert one_line in text
        for action in parser._actions:
            if action.dest.startswith("flag::"):
                assert action.help and not action.help.startswith(" (default"), (command, action.dest)


def test_parse_flags_overrides_and_inputs():
    command, cfg = parse(["extract", "a.mp4", "--num-frames", "8", "b.mp4", "pooling=none", "--encoder", "x"])
    assert command == "extract" and cfg.inputs == ["a.mp4", "b.mp4"]
    assert cfg.num_frames == 8 and cfg.pooling == "none" and cfg.encoder == "x"


def test_top_level_help(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "extract" in out and "plan-eval" in out
    assert main(["no-such-command"]) == 2


def test_convert_command(fixtures_dir, tmp_path):
    import torch

    import vjepa2

    assert main(["convert", str(fixtures_dir / "pretrain_tiny.pt"), "--out", str(tmp_path / "ours")]) == 0
    assert (
        main(
            [
                "convert",
                str(tmp_path / "ours"),
                "--to",
                "transformers",
                "--out",
                str(tmp_path / "hf"),
                "crop_size=64",
            ]
        )
        == 0
    )
    a, b = vjepa2.load(fixtures_dir / "pretrain_tiny.pt"), vjepa2.load(tmp_path / "hf")
    video = torch.randn(1, 4, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(a.encode(video), b.encode(video))
