"""``runs/demo/report/``: ``metrics.json``, the figures and ``index.html``, which opens offline.

Every number on the page is rendered from ``metrics.json`` (``page.Page.m``; a test reads them
back and compares), every compared number with its interval, every comparison with the words that
say whether it is within noise (``sections``); commands and file names are in ``<code>``. Nothing
is typed in.
"""

from __future__ import annotations

import json
from pathlib import Path

from vjepa2.atomic import atomic_write_json, atomic_write_text
from vjepa2.demo import figures as figs
from vjepa2.demo.metrics import collect
from vjepa2.demo.page import Page, lookup, shown
from vjepa2.demo.sections import plan, predict, stages, understand, watch
from vjepa2.demo.stages import STATUS_FILE
from vjepa2.demo.template import PAGE, STYLE

__all__ = ["build_report", "lookup", "render", "shown"]  # lookup, shown: how the tests read the page


def render(metrics: dict, figures: set[str]) -> str:
    p = Page(metrics, figures)
    head = (
        f"<h1>vjepa2 demo report</h1><p class='sub'>Profile {p.m('run.profile')}, finished "
        f"{p.m('run.finished')}; this run took {p.m('run.seconds')} s, its stages "
        f"{p.m('run.stage_seconds')} s in all ({p.m('run.stage_cpu_seconds')} CPU seconds), on {p.m('run.machine.cpu')} ({p.m('run.machine.cores')} cores, "
        f"load {p.m('run.machine.load_1min_at_start', 2)} at the start: timings depend on what else runs).</p>"
        "<p>One story on the built-in world: a model learns by watching video, then understands "
        "(probes, questions), predicts (surprise at impossible physics) and plans (a world model "
        "reaching goal images). Each stage is one of the project's own commands; its command line is "
        "in the table at the end.</p>"
        f"<p>Intervals are {p.level()} ones: Wilson's for a rate, Newcombe's for the difference of two "
        f"rates, a bootstrap ({p.m('intervals.resamples')} resamples) for the rest. A difference whose "
        "interval holds zero is within noise: this demo scores few clips, pairs and episodes, and "
        "the tables say so beside each comparison.</p>"
    )
    body = head + watch(p) + understand(p) + predict(p) + plan(p) + stages(p)
    return PAGE.format(style=STYLE, body=body)


def build_report(out: str | Path) -> Path:
    """Write ``<out>/report/{metrics.json, figures/, index.html}``; returns the page's path."""
    out = Path(out)
    status = json.loads((out / STATUS_FILE).read_text()) if (out / STATUS_FILE).is_file() else {}
    metrics = collect(out, status)
    report = out / "report"
    atomic_write_json(report / "metrics.json", metrics)
    names = figs.draw_all(out, metrics, report / "figures")
    page = report / "index.html"
    atomic_write_text(page, render(metrics, names))
    return page
