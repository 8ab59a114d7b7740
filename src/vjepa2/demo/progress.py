"""One progress view over all the demo's stages: a bar weighted by each stage's expected time,
the stage running now with its command's latest output line, and the time left.

The time left is the expected time of what remains, scaled by how much slower (or faster) than
expected the finished stages ran: a busy machine stretches every estimate alike.

Text from elsewhere (stage names, a command's output line, a failure's reason) is escaped before
rich sees it: rich reads ``[...]`` as markup and would drop ``pip install 'vjepa2[vqa]'``'s extra.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


def clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


class ChainProgress:
    """``begin(name)``, ``tick(elapsed, line)`` while it runs, ``end(name, entry)``."""

    def __init__(self, stages: list[tuple[str, float]], profile: str):
        self.expected = dict(stages)
        self.done_expected = 0.0  # expected seconds of the stages over so far
        self.ran = [0.0, 0.0]  # expected and actual seconds of those that ran (not skipped)
        self.current = stages[0][0] if stages else ""
        self.console = Console(file=sys.stderr)
        self.view = Progress(
            SpinnerColumn(),
            TextColumn("[bold]demo ({task.fields[profile]})[/] {task.fields[stage]}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[count]}"),
            TimeElapsedColumn(),
            TextColumn("left ~{task.fields[left]}"),
            TextColumn("[dim]{task.fields[line]}"),
            console=self.console,
            transient=False,
        )
        total = sum(self.expected.values()) or 1.0
        self.task = self.view.add_task(
            "demo", total=total, profile=profile, stage="", count="", left=clock(total), line=""
        )
        self.index = 0

    def __enter__(self):
        self.view.__enter__()
        return self

    def __exit__(self, *exc):
        return self.view.__exit__(*exc)

    def left(self, elapsed: float = 0.0) -> float:
        """Seconds left: the remaining expectations times the pace so far (at least what is due)."""
        pace = self.ran[1] / self.ran[0] if self.ran[0] > 0 else 1.0
        remaining = sum(self.expected.values()) - self.done_expected
        current = self.expected.get(self.current, 0.0)
        return max(0.0, (remaining - current) * pace + max(current * pace - elapsed, 0.0))

    def begin(self, name: str) -> None:
        self.current, self.index = name, self.index + 1
        count = f"{self.index}/{len(self.expected)}"
        self.view.update(self.task, stage=escape(name), count=count, left=clock(self.left()), line="")

    def tick(self, elapsed: float, line: str) -> None:
        # The bar never runs past the stage's share before the stage has finished.
        share = min(elapsed, 0.95 * self.expected[self.current])
        self.view.update(
            self.task,
            completed=self.done_expected + share,
            left=clock(self.left(elapsed)),
            line=escape(line),
        )

    def end(self, name: str, entry: dict) -> None:
        self.done_expected += self.expected[name]
        if entry["status"] != "skipped":
            self.ran = [self.ran[0] + self.expected[name], self.ran[1] + entry["seconds"]]
        self.view.update(self.task, completed=self.done_expected, left=clock(self.left()), line="")
        colour = {"done": "green", "failed": "red", "skipped": "yellow"}[entry["status"]]
        why = f": {entry['reason']}" if entry["reason"] else ""
        line = f"{escape(name)} ({entry['seconds']:.0f} s){escape(why)}"
        self.view.console.print(f"[{colour}]{entry['status']:7s}[/] {line}")
