"""One option vocabulary across the CLI table (issue 32, item 2): no command uses a synonym, every
writing command has ``--out``, the old names still work with a note, and the precedence of the
defaults, the ``--config`` file, ``key=value`` and ``--flag`` is the documented one."""

from __future__ import annotations

from pathlib import Path

import pytest

from vjepa2.cli import COMMANDS, _load_command, build_parser, main, parse
from vjepa2.config import iter_fields, load_config
from vjepa2.errors import UserError
from vjepa2.vocabulary import ALIASES, NO_OUT, SYNONYMS, TERMS, alias_table, aliases, table

ROOT = Path(__file__).resolve().parents[1]


def fields(command: str) -> dict[str, object]:
    """Dotted option name -> default, of every option of ``command``."""
    return {name: default for name, _, default, *_ in iter_fields(_load_command(command)[0])}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_no_command_uses_a_synonym(command):
    leaves = {name.rsplit(".", 1)[-1] for name in fields(command)}
    assert not leaves & SYNONYMS, f"vjepa2 {command}: {sorted(leaves & SYNONYMS)} are synonyms"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_writing_command_has_out(command):
    names = fields(command)
    if command in NO_OUT:
        assert "out" not in names, f"vjepa2 {command} has --out: take it off NO_OUT"
        return
    assert "out" in names or ("run.out" in names and aliases(command).get("out") == ("run.out", False))
    assert "--out" in build_parser(command)._option_string_actions  # --out, whatever the field


@pytest.mark.parametrize("command", list(COMMANDS))
def test_shared_defaults_are_the_vocabulary_s(command):
    """A term with a default (device: auto, dtype: auto, ...) has it wherever a command uses it."""
    shared = {t.name: t.default for t in TERMS if t.default}
    for name, default in fields(command).items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in shared:
            assert str(default) == shared[leaf], f"vjepa2 {command}: {name}={default!r}"


def test_every_alias_names_an_option_of_its_commands():
    for alias in ALIASES:
        assert alias.commands, alias
        for command in alias.commands:
            names = fields(command)
            assert alias.new in names and alias.old not in names, (command, alias)
            assert not alias.deprecated or alias.old.rsplit(".", 1)[-1] in SYNONYMS | {"encoder", "predictor"}


def test_docs_hold_the_tables():
    text = (ROOT / "docs" / "cli.md").read_text()
    assert table() in text and alias_table() in text


def deprecated_cases():
    for alias in ALIASES:
        if alias.deprecated:
            for command in alias.commands:
                yield pytest.param(command, alias.old, alias.new, id=f"{command}:{alias.old}")


def value_for(command: str, key: str) -> str:
    default = fields(command)[key]
    return "8" if isinstance(default, int) else "tiny"


@pytest.mark.parametrize("command, old, new", list(deprecated_cases()))
def test_an_old_name_sets_the_new_option_with_one_line(command, old, new, capsys, tmp_path):
    value = value_for(command, new)
    flag, new_flag = ("--" + name.replace("_", "-") for name in (old, new))
    for args, note in (
        ([flag, value], f"{flag} is now {new_flag}"),
        ([f"{flag}={value}"], f"{flag} is now {new_flag}"),
        ([f"{old}={value}"], f"{old}= is now {new}="),
    ):
        cfg = parse([*command.split(), *args])[1]
        assert str(_get(cfg, new)) == value
        assert capsys.readouterr().err.splitlines() == [note]
    # in a --config file too, under its section
    *parents, leaf = old.split(".")
    text = (
        "".join(f"{'  ' * i}{p}:\n" for i, p in enumerate(parents))
        + f"{'  ' * len(parents)}{leaf}: {value}\n"
    )
    (tmp_path / "old.yaml").write_text(text)
    cfg = parse([*command.split(), "--config", str(tmp_path / "old.yaml")])[1]
    assert str(_get(cfg, new)) == value
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{tmp_path / 'old.yaml'}: {old} is now {new}"]


def _get(cfg, dotted: str):
    for name in dotted.split("."):
        cfg = getattr(cfg, name)
    return cfg


@pytest.mark.parametrize("command", ["pretrain", "train-ac", "vqa train"])
def test_out_is_run_out_without_a_note(command, capsys, tmp_path):
    for args in (["--out", "runs/x"], ["--out=runs/x"], ["out=runs/x"]):
        assert parse([*command.split(), *args])[1].run.out == "runs/x"
    (tmp_path / "c.yaml").write_text("out: runs/y\n")
    assert parse([*command.split(), "--config", str(tmp_path / "c.yaml")])[1].run.out == "runs/y"
    assert capsys.readouterr().err == ""
    assert "--out" in build_parser(command).format_help()


def test_old_and_new_key_in_one_file_is_an_error(tmp_path):
    (tmp_path / "both.yaml").write_text("checkpoint: a\nencoder: b\n")
    with pytest.raises(UserError, match="encoder is given twice, as checkpoint and as encoder"):
        parse(["extract", "--config", str(tmp_path / "both.yaml")])


def test_old_flag_against_new_key_value_is_a_conflict(capsys):
    assert main(["extract", "v.mp4", "--checkpoint", "a", "encoder=b"]) == 2
    assert "encoder is given twice, as --encoder a and encoder=b" in capsys.readouterr().err


def test_load_config_takes_the_aliases_of_a_command(tmp_path, capsys):
    """Scripts that build a config without the CLI (benchmarks/) read old files the same way."""
    (tmp_path / "old.yaml").write_text("model:\n  encoder: tiny\ndata:\n  frames: 4\n")
    cfg = load_config(
        _load_command("pretrain")[0], tmp_path / "old.yaml", ["out=runs/z"], aliases("pretrain")
    )
    assert (cfg.model.encoder_preset, cfg.data.num_frames, cfg.run.out) == ("tiny", 4, "runs/z")
    assert len(capsys.readouterr().err.splitlines()) == 2


def test_precedence_defaults_file_then_command_line(tmp_path):
    cls = _load_command("extract")[0]
    assert cls().num_frames == 16 and cls().fps == 4.0  # the defaults
    (tmp_path / "c.yaml").write_text("num_frames: 8\nfps: 2.0\nbatch_size: 3\n")
    base = ["extract", "v.mp4", "--config", str(tmp_path / "c.yaml")]
    cfg = parse(base)[1]
    assert (cfg.num_frames, cfg.fps, cfg.batch_size) == (8, 2.0, 3)  # the file over the defaults
    cfg = parse([*base, "num_frames=4", "--fps", "1"])[1]
    assert (cfg.num_frames, cfg.fps, cfg.batch_size) == (4, 1.0, 3)  # key=value and --flag over the file
    cfg = parse([*base, "--num-frames", "2", "num_frames=2"])[1]  # both forms, one value: fine
    assert cfg.num_frames == 2
    cfg = parse([*base, "num_frames=2", "num_frames=6", "--fps", "1", "--fps", "3"])[1]
    assert (cfg.num_frames, cfg.fps) == (6, 3.0)  # one form repeated: its last value
    with pytest.raises(UserError, match="num_frames is given twice, as --num-frames 2 and num_frames=4"):
        parse([*base, "--num-frames", "2", "num_frames=4"])


def test_the_help_lists_the_other_names(capsys):
    text = build_parser("extract").format_help()
    assert "checkpoint -> encoder  (deprecated)" in text and "frames -> num_frames  (deprecated)" in text
