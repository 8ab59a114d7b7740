"""The ``vjepa2`` command line: one sub-command per task, each driven by a typed config.

This file only parses arguments. Every command is a row of ``COMMANDS`` (``vjepa2.commands``): the module that holds
its config dataclass and its run function, imported only when the command runs (so ``--help``
stays fast). Options come from the dataclass fields: ``--name value`` flags (``--run.batch-size``
or ``--run.batch_size``), ``key=value`` overrides (dotted for nested sections) and
``--config file.yaml``; option names follow ``vjepa2.vocabulary``, whose other names (renamed
options, ``--out`` for ``run.out``) are taken here and in the config file. A mistake of the
user's (``vjepa2.errors.UserError``: an unknown option, a wrong value, a missing or unreadable
file) is one line on stderr, ``vjepa2 <command>: error: ...``, and exit status 2; ``--debug``
shows its traceback. Any other exception is a bug and shows one.
"""

from __future__ import annotations

import os

# Before torch loads: OpenMP threads that spin while waiting for work take the cores from each
# other and from data loading on a shared machine (fp32 pretraining on 2 cores: 16-18 s/step
# spinning, 1.4-1.7 s/step passive). A value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import difflib  # noqa: E402
import errno  # noqa: E402
import importlib  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import typing  # noqa: E402
from pathlib import Path  # noqa: E402

from vjepa2.commands import COMMANDS  # noqa: E402
from vjepa2.config import iter_fields, load_config, note_renamed, set_dotted  # noqa: E402
from vjepa2.errors import UnknownKeyError, UserError  # noqa: E402
from vjepa2.locks import folder_lock  # noqa: E402
from vjepa2.vocabulary import aliases  # noqa: E402

DEBUG = "--debug"
BOOL_WORDS = {"1", "0", "true", "false", "yes", "no", "on", "off"}
KEY = re.compile(r"[A-Za-z_][\w.-]*")  # what the left side of a key=value override looks like


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        return "LIST"
    if origin is not None:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _type_name(args[0]) if args else "VALUE"
    return getattr(tp, "__name__", "VALUE").upper()


def _describe(cls, command: str) -> str:
    lines = [
        "options (--flag VALUE or key=VALUE, each once; they override --config FILE, which overrides the defaults):"
    ]
    for name, tp, default, help_text, positional in iter_fields(cls):
        if positional:
            continue
        lines.append(f"  {name}={default!r}  [{_type_name(tp)}]  {help_text}")
    renamed = aliases(command)
    if renamed:
        lines.append("other names (on the command line and in --config files; see vjepa2.vocabulary):")
        for old, (new, deprecated) in renamed.items():
            lines.append(f"  {old} -> {new}{'  (deprecated)' if deprecated else ''}")
    return "\n".join(lines)


def _load_command(name: str):
    module_name, cls_name, fn_name, _ = COMMANDS[name]
    module = importlib.import_module(module_name)
    return getattr(module, cls_name), getattr(module, fn_name)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser; the chosen ``command`` also gets its config's options."""
    parser = argparse.ArgumentParser(
        prog="vjepa2",
        description="V-JEPA 2 video world models: features, pretraining, probes, world models, planning.\n\n"
        "Environment: OMP_WAIT_POLICY defaults to PASSIVE here (OpenMP threads sleep instead of\n"
        "spinning while they wait: several times faster on shared or busy CPUs); set it to keep\n"
        "another. Precision: every command's dtype defaults to auto (bf16 only where the device\n"
        "does bf16 natively: CUDA, AMX or AVX512-BF16 CPUs; fp32 elsewhere).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {k:28s} {v[3]}" for k, v in COMMANDS.items()),
    )
    parser.add_argument("command", nargs="+", help="one of the commands below")
    if command is None:
        return parser
    cls, _ = _load_command(command)
    sub = _Parser(
        prog=f"vjepa2 {command}",
        description=COMMANDS[command][3],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_describe(cls, command),
    )
    sub.add_argument("--config", help="YAML file with values for the options below")
    sub.add_argument(DEBUG, action="store_true", help="on an error, show the full Python traceback")
    positional = [f for f in iter_fields(cls) if f[4]]
    words_help = "key=value overrides"
    if positional:
        words_help = f"{positional[0][3]}; and key=value overrides"
    sub.add_argument("words", nargs="*", metavar="ARG", help=words_help)
    other = {new: old for old, (new, deprecated) in aliases(command).items() if not deprecated}
    for name, tp, default, help_text, is_positional in iter_fields(cls):
        if not is_positional:
            flags = ["--" + n.replace("_", "-") for n in (name, other.get(name)) if n]
            sub.add_argument(
                *flags,
                dest=f"flag::{name}",
                metavar=_type_name(tp),
                help=f"{help_text} (default: {default!r})",
            )
    return sub


class _Parser(argparse.ArgumentParser):
    """argparse's mistakes as ``UserError``s: one line, a close flag name suggested."""

    def error(self, message: str):
        flags = [f for action in self._actions for f in action.option_strings]
        unknown = re.findall(r"(?<!\S)(--[\w.-]+)", message) if "unrecognized" in message else []
        close = [m for u in unknown for m in difflib.get_close_matches(u.replace("_", "-"), flags, n=1)]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"{message}{hint}; see {self.prog} --help")


def _split_command(argv: list[str]) -> tuple[str, list[str]]:
    for n in (2, 1):
        name = " ".join(argv[:n])
        if name in COMMANDS:
            return name, argv[n:]
    close = difflib.get_close_matches(" ".join(argv[:2]), COMMANDS, n=1) or difflib.get_close_matches(
        argv[0], COMMANDS, n=1
    )
    hint = f" (did you mean {close[0]!r}?)" if close else f"; known commands: {', '.join(COMMANDS)}"
    raise UnknownKeyError(f"unknown command {' '.join(argv[:2])!r}{hint}")


def _flag(arg: str) -> str:
    """``--run.batch_size`` -> ``--run.batch-size``: flags take the field names either way."""
    if not arg.startswith("--"):
        return arg
    name, eq, value = arg[2:].partition("=")
    return "--" + name.replace("_", "-") + eq + value


def _renamed(args: list[str], command: str) -> list[str]:
    """The other names of options (``vjepa2.vocabulary.aliases``) as their own: ``--old value``,
    ``--old=value`` and ``old=value``; a deprecated name prints one line on stderr."""
    renamed = aliases(command)
    out = []
    for arg in args:
        dashes = "--" if arg.startswith("--") else ""
        key, eq, value = arg[len(dashes) :].partition("=")
        old = key.replace("-", "_")
        if old in renamed and (dashes or eq):
            new, deprecated = renamed[old]
            shown = dashes + (new.replace("_", "-") if dashes else new)
            if deprecated:
                note_renamed(dashes + key + ("" if dashes else "="), shown + ("" if dashes else "="))
            arg = shown + eq + value
        out.append(arg)
    return out


def _bare_bools(args: list[str], cls) -> list[str]:
    """A yes/no flag alone (not followed by a yes/no word) means yes: ``vjepa2 demo --quick``."""
    flags = {"--" + name.replace("_", "-") for name, tp, *_ in iter_fields(cls) if _type_name(tp) == "BOOL"}
    out = []
    for i, arg in enumerate(args):
        out.append(arg)
        if arg in flags and (i + 1 == len(args) or args[i + 1].lower() not in BOOL_WORDS):
            out.append("true")
    return out


def parse(argv: list[str]):
    """Parse ``argv`` (without the program name) into (command, config object)."""
    command, rest = _split_command(argv)
    cls, _ = _load_command(command)
    parser = build_parser(command)
    args = parser.parse_intermixed_args(_bare_bools(_renamed([_flag(arg) for arg in rest], command), cls))
    keys = [name for name, *_ in iter_fields(cls)]
    positional = [f for f in iter_fields(cls) if f[4]]
    values, overrides = [], []
    for item in args.words:
        key, eq, _ = item.partition("=")
        if eq and key.replace("-", "_") in keys:
            overrides.append(item)
        elif eq and KEY.fullmatch(key) and not Path(item).exists():  # a mistyped key, not a file
            close = difflib.get_close_matches(key.replace("-", "_"), keys, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UnknownKeyError(f"unknown option {key!r}{hint}; see vjepa2 {command} --help")
        else:
            values.append(item)
    if values and not positional:
        parser.error(f"unexpected arguments {values}; options are --name value or name=value")
    flags = [f"{key[len('flag::') :]}={text}" for key, text in vars(args).items()
             if key.startswith("flag::") and text is not None]  # fmt: skip
    _refuse_conflicts(overrides, flags)
    cfg = load_config(cls, args.config, overrides + flags, aliases(command))
    if positional and values:
        # All free words go to the (single) positional field, e.g. a list of videos.
        field_name, tp = positional[0][0], positional[0][1]
        origin = typing.get_origin(tp)
        setattr(cfg, field_name, values if origin in (list, tuple) else values[0])
    return command, cfg


def output_of(cfg) -> str:
    """The folder (or file) a command writes: its ``out`` option, or ``run.out``; '' for none."""
    for holder in (cfg, getattr(cfg, "run", None)):
        out = getattr(holder, "out", None)
        if isinstance(out, str) and out:
            return out
    return ""


def _check_devices(cfg) -> None:
    """Every ``device`` option of the command, checked once before it starts (a GPU asked for on
    a machine without one is a one-line error, not a traceback half way through); ``auto``
    becomes the device it chose."""
    devices = [(name, value) for name, _, value, *_ in iter_fields(type(cfg), defaults=cfg)
               if name.rsplit(".", 1)[-1] == "device"]  # fmt: skip
    if not devices:
        return
    from vjepa2.models.precision import check_device  # torch: only once a command runs

    for name, value in devices:
        try:
            device = check_device(value)
        except ValueError as err:
            raise UserError(f"{name}: {err}") from None
        if value == "auto":  # the command runs on what auto chose, and its config says so
            set_dotted(cfg, name, device.type)


def _output_lock(command: str, cfg):
    """One writer per output: the command holds its output's lock while it runs (under torchrun,
    rank 0 holds it for all)."""
    out = output_of(cfg)
    if not out or os.environ.get("RANK", "0") != "0":
        return contextlib.nullcontext()
    return folder_lock(out, f"vjepa2 {command}")


def _refuse_conflicts(overrides: list[str], flags: list[str]) -> None:
    """An option given both as ``--flag`` and as ``key=value`` with two values is a mistake to
    point out, not something to settle silently (repeats of one form: the last one wins)."""
    as_words = {}
    for item in overrides:
        key, _, value = item.partition("=")
        as_words[key.replace("-", "_")] = value
    for item in flags:
        key, _, value = item.partition("=")
        if as_words.get(key, value) != value:
            raise UserError(f"{key} is given twice, as --{key.replace('_', '-')} {value} and "
                            f"{key}={as_words[key]}; give it once")  # fmt: skip


STORAGE = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def _storage_error(err: OSError, output: str) -> str | None:
    """A full disk or a folder that cannot be written is the machine's state, not a bug: one line
    naming the file, else the command's output (atomic writes leave nothing torn behind). Other
    OSErrors keep their traceback."""
    if err.errno not in STORAGE:
        return None
    where = err.filename or output
    if err.errno == errno.ENOSPC and err.strerror and err.strerror.startswith("no space left on "):
        return err.strerror  # atomic_path names the folder
    return f"{STORAGE[err.errno]}: cannot write {where}" if where else STORAGE[err.errno]


def _one_line(err: UserError) -> str:
    return "; ".join(line.strip() for line in str(err).splitlines() if line.strip())


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status (2: a mistake in what the user gave)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG in argv
    argv = [arg for arg in argv if arg != DEBUG]
    if not argv or argv[0] in ("-h", "--help", "help"):
        build_parser().print_help()
        return 0
    cfg = None
    try:
        command, cfg = parse(argv)
        _, run = _load_command(command)
        _check_devices(cfg)
        with _output_lock(command, cfg):
            result = run(cfg)
    except (UserError, OSError) as err:
        text = _one_line(err) if isinstance(err, UserError) else _storage_error(err, output_of(cfg))
        if debug or text is None:
            raise
        known = next((" ".join(argv[:n]) for n in (2, 1) if " ".join(argv[:n]) in COMMANDS), None)
        print(f"vjepa2{f' {known}' if known else ''}: error: {text}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
