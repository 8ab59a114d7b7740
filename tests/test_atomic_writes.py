"""Every file src/vjepa2 writes is written whole: through ``vjepa2.atomic`` (``atomic_path`` and
the helpers on it) or on the list below, each entry with its reason.

The source is read with ``ast``, not run. A write is a call that puts bytes in a file: ``open``
(and ``Path.open``, ``av.open``, ``tarfile.open``) in a writing mode, ``write_text``,
``write_bytes``, ``torch.save``, ``np.save`` / ``savez``, safetensors' ``save_file``,
``json.dump`` / ``yaml.dump`` to a file, ``savefig``, ``shutil.copy*`` and Pillow's ``save``. It
is atomic when its destination is the temporary file of an enclosing ``with atomic_path(...) as
tmp`` (or ``atomic_open``), directly or through a file object opened on it.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from vjepa2.atomic import atomic_open, atomic_path, atomic_savefig, atomic_write_json, atomic_write_text

SRC = Path(__file__).resolve().parents[1] / "src" / "vjepa2"

# (file under src/vjepa2, function) -> why its write need not be atomic. Each entry must still
# match a write (a stale one fails the test), so the list cannot outlive what it excuses.
ALLOWED = {
    # The helper itself.
    ("atomic.py", "atomic_path"): "opens its finished temporary file again, to fsync it",
    # Append-only logs and ledgers: lines are added, never rewritten; readers take whole lines.
    ("train/log.py", "MetricsLogger.log"): "log.jsonl: one line per call",
    ("train/log.py", "MetricsLogger._write_csv"): "the CSV twin of log.jsonl",
    ("evals/commands/extract_parts.py", "Parts.record"): "a rank's ledger: one line per video",
    ("data/shards/writer.py", "ShardFolder.record"): "packed.jsonl: one line per input packed",
    # Progress streamed as it happens, to be read while the run goes on.
    ("demo/runner.py", "Chain.run_stage"): "demo.log: the stage's child process writes its output",
    ("planning/evaluate.py", "evaluate_methods"): "episodes.jsonl: one line per episode",
    ("worlds/collect.py", "run_collect"): "collect_log.jsonl: one line per episode",
    # Temporary files of their own schemes: checked whole, then renamed or removed.
    ("weights/http.py", "_fetch"): "a download's .part file, resumed across tries",
    ("weights/fetch.py", "_copy_from_folder"): "a mirror's file copied to the .part file",
    ("data/shards/local.py", "_download"): "a downloaded shard, unpacked then removed by _fetch",
    # Lock files.
    ("locks.py", "_acquire"): "an output folder's lock: flocked, its holder written in it",
    ("weights/fetch.py", "_locked"): "<file>.lock: opened to flock it, nothing written",
}

WRITING = set("wax+")
# Modules whose open(file, mode, ...) takes the mode second (os.open takes flags: lock files).
OPENERS = {"av", "tarfile", "fsspec", "fs", "gzip", "io", "Image", "h5py", "zipfile"}


def _constants(node) -> list[str]:
    """The string constants an expression can take (a mode such as "ab" if start else "wb")."""
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _writes_mode(mode) -> bool:
    if mode is None:
        return False  # open(path) reads
    values = _constants(mode)
    return not values or any(WRITING & set(v) for v in values)


def _arg(call: ast.Call, index: int, name: str | None = None):
    if len(call.args) > index:
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == name), None) if name else None


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def destination(call: ast.Call, uses_pil: bool):
    """The file a call writes (an expression; ``str(tmp)`` is ``tmp``), or None when it writes none."""
    dest = _destination(call, uses_pil)
    if isinstance(dest, ast.Call) and _dotted(dest.func) == "str" and len(dest.args) == 1:
        return dest.args[0]
    return dest


def _destination(call: ast.Call, uses_pil: bool):
    func, name = call.func, _dotted(call.func)
    attr = func.attr if isinstance(func, ast.Attribute) else name
    if name == "open":
        return call.args[0] if _writes_mode(_arg(call, 1, "mode")) else None
    if isinstance(func, ast.Attribute) and attr == "open":
        if _dotted(func.value) == "os":
            return None
        if _dotted(func.value) in OPENERS:
            return call.args[0] if _writes_mode(_arg(call, 1, "mode")) else None
        return func.value if _writes_mode(_arg(call, 0, "mode")) else None  # Path.open(mode)
    if attr in ("write_text", "write_bytes"):
        return func.value
    if (
        name in ("torch.save", "json.dump", "shutil.copyfile", "shutil.copy", "shutil.copy2")
        or attr == "save_file"
    ):
        return _arg(call, 1)
    if name in ("yaml.safe_dump", "yaml.dump"):
        return _arg(call, 1, "stream")
    if name in ("np.save", "np.savez", "np.savez_compressed") or attr == "savefig":
        return _arg(call, 0)
    if uses_pil and attr == "save" and call.args:
        return call.args[0]
    return None


class Writes(ast.NodeVisitor):
    """Every write of a module that is not atomic, as (function, line)."""

    def __init__(self, uses_pil: bool):
        self.uses_pil, self.scope, self.atomic, self.found = uses_pil, [], [set()], []

    def visit_ClassDef(self, node):
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node):
        self.scope.append(node.name)
        self.atomic.append(set())  # a new function sees no temporary file of its caller
        self.generic_visit(node)
        self.atomic.pop()
        self.scope.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_With(self, node):
        names = set(self.atomic[-1])
        self.atomic.append(names)  # an item sees the temporary files of the items before it
        for item in node.items:
            self.visit(item.context_expr)  # the open() of an item is a write of its own
            call, var = item.context_expr, item.optional_vars
            if not isinstance(call, ast.Call) or not isinstance(var, ast.Name):
                continue
            opener = _dotted(call.func).rsplit(".", 1)[-1]
            target = call.args[0] if call.args else None
            if opener in ("atomic_path", "atomic_open") or (
                opener == "open" and isinstance(target, ast.Name) and target.id in names
            ):
                names.add(var.id)
        for statement in node.body:
            self.visit(statement)
        self.atomic.pop()

    def visit_Call(self, node):
        dest = destination(node, self.uses_pil)
        if dest is not None and not (isinstance(dest, ast.Name) and dest.id in self.atomic[-1]):
            self.found.append((".".join(self.scope) or "<module>", node.lineno))
        self.generic_visit(node)


def non_atomic_writes() -> dict[tuple[str, str], list[int]]:
    found: dict[tuple[str, str], list[int]] = {}
    for file in sorted(SRC.rglob("*.py")):
        text = file.read_text()
        visitor = Writes(uses_pil=re.search(r"\bPIL\b", text) is not None)  # not COMPILE_HELP
        visitor.visit(ast.parse(text))
        for function, line in visitor.found:
            found.setdefault((file.relative_to(SRC).as_posix(), function), []).append(line)
    return found


def test_every_write_is_atomic_or_listed_with_its_reason():
    found = non_atomic_writes()
    unlisted = [
        f"src/vjepa2/{file}:{lines} ({function})"
        for (file, function), lines in sorted(found.items())
        if (file, function) not in ALLOWED
    ]
    assert not unlisted, "writes outside vjepa2.atomic: " + "; ".join(unlisted)
    stale = sorted(f"{file} {function}" for file, function in ALLOWED if (file, function) not in found)
    assert not stale, f"allowed writes that are gone (remove them from ALLOWED): {stale}"


def test_the_scan_sees_a_plain_write_and_passes_an_atomic_one():
    """The rule itself: a bare write is found, the same write into atomic_path's file is not."""
    code = """
def bare(path, text):
    path.write_text(text)
    with open(path, "w") as fh:
        json.dump({}, fh)

def whole(path, text):
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save({}, fh)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
"""
    visitor = Writes(uses_pil=False)
    visitor.visit(ast.parse(code))
    assert [f for f, _ in visitor.found] == ["bare", "bare", "bare"]


def test_helpers_replace_the_file_whole(tmp_path):
    path = tmp_path / "sub" / "a.json"
    atomic_write_json(path, {"b": 1, "a": [1, 2]}, sort_keys=True)
    assert path.read_text() == json.dumps({"a": [1, 2], "b": 1}, indent=1)
    atomic_write_text(path, "x")
    assert path.read_text() == "x"
    with pytest.raises(RuntimeError), atomic_open(path, "w") as fh:
        fh.write("half")
        raise RuntimeError("killed")
    assert path.read_text() == "x" and sorted(p.name for p in path.parent.iterdir()) == ["a.json"]
    with pytest.raises(ValueError, match="whole file"), atomic_open(path, "a"):
        pass
    with atomic_path(tmp_path / "v.mp4", keep_suffix=True) as tmp:
        assert tmp.suffix == ".mp4" and tmp.name.startswith(".v.mp4.tmp-")
        tmp.write_bytes(b"1")


def test_atomic_savefig_writes_the_format_of_the_suffix(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots()
    atomic_savefig(fig, tmp_path / "f.png", dpi=20)
    plt.close(fig)
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]
