"""The report page's pieces: a metric as a ``data-metric`` span, an interval, the words for a
comparison, a figure, a table, and the note of a section its stages did not fill.

Every number is written through ``Page.m`` as
``<span data-metric="probe.direction.accuracy.pretrained.value" data-digits="1">61.2</span>`` (a
test reads them back and compares them with metrics.json); nothing is typed in. A compared number
is shown with its interval, ``61.2 [33.7, 82.3]`` (``Page.iv``), and a comparison says in words
whether it is within noise, from the booleans and words metrics.json holds (``Page.noise``,
``Page.vs_chance``).
"""

from __future__ import annotations

import html

SECTION_STAGES = {  # what a missing section was waiting for
    "pretrain": ("videos", "pretrain"),
    "probe": ("videos", "pretrain"),
    "physics": ("pairs", "physics"),
    "vqa": ("vqa-set", "vqa"),
    "planning": ("collect-random", "collect-expert", "ac-pretrained", "plan-pretrained"),
}


def lookup(metrics: dict, path: str):
    value = metrics
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def shown(value, digits: int | None) -> str:
    """How a metric is written on the page (the test writes it the same way)."""
    if isinstance(value, float) and digits is not None:
        return f"{value:.{digits}f}"
    return str(value)


class Page:
    def __init__(self, metrics: dict, figures: set[str]):
        self.metrics, self.figures = metrics, figures

    def m(self, path: str, digits: int | None = 1) -> str:
        value = lookup(self.metrics, path)
        if value is None:
            return '<span class="na">not measured</span>'
        digits = digits if isinstance(value, float) else None
        attr = f' data-digits="{digits}"' if digits is not None else ""
        return f'<span data-metric="{html.escape(path)}"{attr}>{html.escape(shown(value, digits))}</span>'

    def row(self, label: str, prefix: str, fields: tuple[tuple[str, int], ...]) -> list[str]:
        """A table row: ``label``, then the metric ``prefix.field`` with its digits for each field."""
        return [label] + [self.m(f"{prefix}.{name}", digits) for name, digits in fields]

    def iv(self, path: str, digits: int = 1) -> str:
        """``value [low, high]`` of the interval at ``path``; the value alone where it has none."""
        if lookup(self.metrics, f"{path}.low") is None:
            return self.m(f"{path}.value", digits)
        low, high = self.m(f"{path}.low", digits), self.m(f"{path}.high", digits)
        return f"{self.m(f'{path}.value', digits)} [{low}, {high}]"

    def noise(self, path: str) -> str:
        """Words for a difference: within noise when its interval holds zero."""
        within = lookup(self.metrics, f"{path}.within_noise")
        if within is None:
            return ""
        return (
            "within noise: the interval holds zero" if within else "beyond noise: the interval excludes zero"
        )

    def vs_chance(self, path: str, chance: str = "chance") -> str:
        """Words for a rate against chance (or a coin flip): is chance inside its interval?"""
        side = lookup(self.metrics, f"{path}.vs_chance")
        if side is None:
            return ""
        return f"within noise of {chance}" if side == "within" else f"{side} {chance}, beyond noise"

    def level(self) -> str:
        return f"{self.m('intervals.level')}%"

    def figure(self, name: str, caption: str) -> str:
        if name not in self.figures:
            return ""
        return f'<figure><img src="figures/{name}" alt="{name}"><figcaption>{caption}</figcaption></figure>'

    def missing(self, section: str) -> str:
        if self.metrics.get(section):
            return ""
        if section in self.metrics.get("unreadable", {}):
            return f'<p class="note">Not measured: the stage\'s files could not be read ({self.m(f"unreadable.{section}")}).</p>'
        stages = self.metrics.get("stages", {})
        parts = [
            f"<code>{name}</code> {self.m(f'stages.{name}.status')}: {self.m(f'stages.{name}.reason')}"
            for name in SECTION_STAGES[section]
            if stages.get(name, {}).get("status") != "done"
        ]
        return f'<p class="note">Not measured: {"; ".join(parts) or "the stage left no results"}.</p>'


def table(header: list[str], rows: list[list[str]], text: tuple[int, ...] = (0,)) -> str:
    """Cells right-aligned as numbers, except the columns in ``text``."""
    head = "".join(f"<th>{h}</th>" for h in header)
    cell = [lambda c: f"<td>{c}</td>", lambda c: f'<td class="num">{c}</td>']
    body = "".join(
        "<tr>" + "".join(cell[i not in text](c) for i, c in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"
