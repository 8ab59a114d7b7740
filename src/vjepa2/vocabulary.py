"""The option vocabulary of the command line: one name per meaning, written once.

``TERMS`` is the table of the option names that several commands share: what each means, its
default where the commands share one, and the synonyms it replaced (no command may use a synonym
as an option name; ``tests/test_vocabulary.py`` walks every command to check). ``ALIASES`` are the
other names a command still accepts for one of its options, on the command line (``--old value``,
``old=value``) and in a ``--config`` file alike: the renamed options (deprecated: each use prints
one line on stderr, ``--checkpoint is now --encoder``) and ``--out`` for the commands whose
output folder is ``run.out``. The CLI applies them through ``vjepa2.config.load_config``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    """One shared option name: its meaning, its default where shared, the names it replaced."""

    name: str
    meaning: str
    default: str = ""
    synonyms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Alias:
    """Another name ``old`` for the option ``new`` of ``commands`` (dotted keys); ``deprecated``:
    a use of ``old`` prints a note."""

    old: str
    new: str
    commands: tuple[str, ...]
    deprecated: bool = True


TERMS: tuple[Term, ...] = (
    Term("num_frames", "frames per clip (given to the encoder, or generated per clip)", synonyms=("frames",)),
    Term(
        "encoder",
        "the weights of a frozen encoder: a checkpoint path, a released name (vjepa2 weights list) "
        "or random:<preset>; with its predictor where the command needs one",
        synonyms=("checkpoint",),
    ),
    Term(
        "probe",
        "a trained probe: the folder `probe train` writes (or a transformers one)",
        synonyms=("checkpoint",),
    ),
    Term("model", "a trained model folder: a VQA model (`vqa train`) or a world model (`train-ac`)"),
    Term(
        "encoder_preset", "pretrain: the architecture preset of the encoder it builds (tiny ... vitg)", "vitl"
    ),
    Term("predictor_preset", "pretrain: the architecture preset of the predictor it builds", "default"),
    Term(
        "out",
        "the folder (or file) a command writes; `run.out` of the training commands, `--out` there too",
        synonyms=("json",),
    ),
    Term("device", "auto (CUDA when present, else CPU), cpu, cuda or cuda:N", "auto"),
    Term("dtype", "precision: auto (bf16 only where native), bf16, fp32 (int8 where offered)", "auto"),
    Term("compile", "torch.compile the model: a slow first call, so it pays only for long runs", "False"),
    Term("encoder_key", "the encoder entry of a training or reference checkpoint", "target_encoder"),
    Term("fps", "frames per second sampled from (or written to) a video"),
    Term("frame_step", "take every n-th frame instead of sampling at fps"),
    Term("crop", "input size in pixels (0 where allowed: the encoder's pretraining crop)"),
    Term("num_clips", "clips per video, evenly spread over it", "1"),
    Term("batch_size", "samples per forward pass or per optimizer micro-batch"),
    Term("workers", "worker processes that load or generate data"),
    Term("seed", "seed of what the command draws"),
)

# Writing commands whose output folder is ``run.out`` (the training scaffold's section).
RUN_OUT_COMMANDS = ("pretrain", "train-ac", "vqa train")

# Commands without an ``out``: what they write, if anything, is not an output of theirs.
NO_OUT: dict[str, str] = {
    "weights list": "prints the table of releases",
    "weights path": "prints paths",
    "weights verify": "prints the check of each file",
    "weights download": "writes into the weights cache (VJEPA2_CACHE), the place loads read from",
    "vqa ask": "streams the answer to stdout",
}

ALIASES: tuple[Alias, ...] = (
    Alias("checkpoint", "encoder", ("extract", "physics-eval")),
    Alias("checkpoint", "probe", ("classify",)),
    Alias("json", "out", ("classify",)),
    Alias("frames", "num_frames", ("extract",)),
    Alias("data.frames", "data.num_frames", ("pretrain",)),
    Alias("cooldown.frames", "cooldown.num_frames", ("pretrain",)),
    Alias("model.encoder", "model.encoder_preset", ("pretrain",)),
    Alias("model.predictor", "model.predictor_preset", ("pretrain",)),
    Alias("out", "run.out", RUN_OUT_COMMANDS, deprecated=False),
    # extract's network options are pretrain's section (data.shards.remote.NetworkConfig); the
    # short names stay, as --out does for run.out
    Alias("connect_timeout", "network.connect_timeout", ("extract",), deprecated=False),
    Alias("read_timeout", "network.read_timeout", ("extract",), deprecated=False),
    Alias("tries", "network.tries", ("extract",), deprecated=False),
)

SYNONYMS: frozenset[str] = frozenset(s for term in TERMS for s in term.synonyms)


def aliases(command: str) -> dict[str, tuple[str, bool]]:
    """The aliases of ``command``: old dotted key -> (new dotted key, deprecated)."""
    return {a.old: (a.new, a.deprecated) for a in ALIASES if command in a.commands}


def table() -> str:
    """The vocabulary as a Markdown table (docs/cli.md holds it; a test keeps the two equal)."""
    rows = ["| name | meaning | default | replaces |", "|---|---|---|---|"]
    for t in TERMS:
        rows.append(f"| `{t.name}` | {t.meaning} | {t.default or '-'} | {', '.join(t.synonyms) or '-'} |")
    return "\n".join(rows)


def alias_table() -> str:
    """The other names as a Markdown table (docs/cli.md holds it too)."""
    rows = ["| command | other name | is | note |", "|---|---|---|---|"]
    for a in ALIASES:
        note = "deprecated: one line on stderr" if a.deprecated else "documented alias"
        rows.append(f"| {', '.join(a.commands)} | `{a.old}` | `{a.new}` | {note} |")
    return "\n".join(rows)
