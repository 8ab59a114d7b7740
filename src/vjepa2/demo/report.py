"""``runs/demo/report/``: ``metrics.json``, the figures and ``index.html``, which opens offline.

Every number on the page is rendered from ``metrics.json`` as
``<span data-metric="probe.direction.pretrained" data-digits="1">61.2</span>`` (a test reads
them back and compares); commands and file names are in ``<code>``. Nothing is typed in.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from vjepa2.demo import figures as figs
from vjepa2.demo.metrics import PHYSICS_SOURCES, PLAN_METHODS, collect
from vjepa2.demo.runner import STATUS_FILE, write_json
from vjepa2.demo.template import PAGE, STYLE

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


def watch(p: Page) -> str:
    loss = p.figure(
        "pretrain_loss.png",
        f"Pretraining loss over {p.m('pretrain.steps')} steps: the L1 distance between the predictor's guess "
        "and the EMA target encoder's layer-normed tokens of the masked blocks, read from the run's "
        f"<code>log.jsonl</code>; from {p.m('pretrain.loss_first', 3)} to {p.m('pretrain.loss_last', 3)}.",
    )
    collapse = p.figure(
        "pretrain_collapse.png",
        "Collapse watch on the target tokens of each batch: their spread over tokens (last "
        f"{p.m('pretrain.std_tokens_last', 3)}) and over the batch, and their effective rank "
        f"(from {p.m('pretrain.rank_first', 2)} to {p.m('pretrain.rank_last', 2)}); a collapsing encoder "
        f"drives them to zero. Precision: {p.m('pretrain.dtype')}.",
    )
    intro = (
        "<p>A tiny encoder watches the built-in world's videos and learns by predicting, in feature "
        "space, the parts of each clip hidden by masks (the V-JEPA 2 recipe: EMA target, short- and "
        "long-range masks, warmup-constant-decay schedule, a cooldown on longer clips).</p>"
    )
    return "<h2>Watch: self-supervised pretraining</h2>" + intro + p.missing("pretrain") + loss + collapse


def understand(p: Page) -> str:
    probe = p.metrics.get("probe", {})
    sources = list(dict.fromkeys(s for e in probe.values() for s in e if s not in ("chance", "val_clips")))
    rows = [
        [f"<code>{task}</code>", p.m(f"probe.{task}.val_clips"), p.m(f"probe.{task}.chance")]
        + [p.m(f"probe.{task}.{s}") for s in sources]
        for task in probe
    ]
    probes = p.figure(
        "probe_bars.png",
        "Validation top-one accuracy (%) of an attentive probe trained on each frozen encoder, per task "
        "of the built-in world (clips per validation set in the table); the random twin has the "
        "pretrained encoder's shape and random weights; dashed: chance.",
    )
    out = "<h2>Understand: probes and questions</h2>" + p.missing("probe") + probes
    if rows:
        out += table(["task", "validation clips", "chance"] + [figs.LABELS.get(s, s) for s in sources], rows)
    vqa = p.metrics.get("vqa", {})
    out += "<h3>Video question answering</h3>" + p.missing("vqa")
    out += p.figure(
        "vqa_bars.png",
        "Accuracy (%) on held-out questions per type: the frozen pretrained encoder's tokens go "
        "through a learned MLP projector (warm-started by an answer probe) into a small causal "
        "language model trained on the training questions; a multiple-choice answer is the choice "
        "of highest likelihood; dashed: chance.",
    )
    if vqa:
        rows = [
            [f"<code>{k}</code>", p.m(f"vqa.{k}.questions"), p.m(f"vqa.{k}.chance"), p.m(f"vqa.{k}.accuracy")]
            for k in vqa
        ]
        out += table(["question type", "questions", "chance", "accuracy"], rows)
    return out


def predict(p: Page) -> str:
    section = p.metrics.get("physics", {})
    curves = p.figure(
        "surprise_curves.png",
        "Surprise over time, averaged over the pairs of each violation type: a window slides over each "
        "video, the pretrained encoder sees its first frames and the predictor guesses the rest; "
        "surprise is the L1 distance to what came. Solid: the possible video; dashed: its impossible "
        "twin, identical until the object comes out from behind the bar.",
    )
    bars = p.figure(
        "physics_bars.png",
        "Relative accuracy (%): the share of pairs in which the possible video is the less surprising "
        "one (mean over its curve), for the pretrained model, its random twin and the change between "
        "pixels of consecutive frames; dashed: a coin flip.",
    )
    kinds = list(section.get("pairs", {}))
    rows = [
        [f"<code>{k}</code>", p.m(f"physics.pairs.{k}")]
        + [
            f"{p.m(f'physics.{s}.{k}.value')} [{p.m(f'physics.{s}.{k}.low')}, {p.m(f'physics.{s}.{k}.high')}]"
            for s in PHYSICS_SOURCES
            if s in section
        ]  # fmt: skip
        for k in kinds
    ]
    out = "<h2>Predict: surprise at impossible physics</h2>" + p.missing("physics") + curves + bars
    if rows:
        header = ["violation", "pairs"] + [
            f"{figs.LABELS[s]} (bootstrap interval)" for s in PHYSICS_SOURCES if s in section
        ]
        out += table(header, rows)
    return out


def plan(p: Page) -> str:
    out = "<h2>Plan: a world model reaching goal images</h2>" + p.missing("planning")
    for encoder in ("pretrained", "random"):
        for ext in ("gif", "png"):
            caption = (
                f"Planning rollouts with the world model on the {figs.LABELS[encoder]} "
                f"({'animated' if ext == 'gif' else 'evenly spaced steps'}): each row one episode, the "
                "observation beside the goal image on the right. Each action is chosen by the cross-entropy "
                "method to bring the predicted latent closest (L1) to the goal image's."
            )
            out += p.figure(f"rollouts_{encoder}.{ext}", caption)
    for encoder in ("pretrained", "random"):
        out += p.figure(
            f"energy_{encoder}.png",
            f"Energy landscape with the {figs.LABELS[encoder]}: the world model's latent distance to the "
            "goal after one action, over a grid of actions (left), beside the simulator's true distance "
            "(right); the cross marks each minimum.",
        )
    out += p.figure(
        "planning_success.png",
        f"Share of {p.m('planning.episodes')} episodes of <code>{p.m('planning.env')}</code> (at most "
        f"{p.m('planning.max_steps')} actions) that reached the goal image: the world model on each encoder, "
        "random actions, and an oracle that plans with the simulator itself.",
    )
    fields = (("success", 1), ("final_distance", 3), ("seconds_per_action", 3))
    rows = [
        p.row(figs.LABELS[k], f"planning.{k}", fields)
        for k in PLAN_METHODS
        if k in p.metrics.get("planning", {})
    ]
    if rows:
        out += table(["method", "success (%)", "final distance", "seconds per action"], rows)
    wm = p.metrics.get("world_model", {})
    rows = [
        p.row(figs.LABELS[e], f"world_model.{e}", (("steps", 1), ("val_teacher", 3), ("val_rollout", 3)))
        for e in wm
    ]
    if rows:
        out += "<p>World-model training (V-JEPA 2-AC predictor on the frozen encoder), validation loss:</p>"
        out += table(["encoder", "steps", "teacher-forced L1", "rollout L1"], rows)
    return out


def stages(p: Page) -> str:
    rows = []
    for name in p.metrics.get("stages", {}):
        status = lookup(p.metrics, f"stages.{name}.status")
        rows.append(
            [
                f"<code>{name}</code>",
                f'<span class="{status}">{p.m(f"stages.{name}.status")}</span>',
                p.m(f"stages.{name}.seconds"),
                p.m(f"stages.{name}.cpu_seconds"),
                f"<code>{html.escape(str(lookup(p.metrics, f'stages.{name}.command')))}</code>",
                p.m(f"stages.{name}.reason") if lookup(p.metrics, f"stages.{name}.reason") else "",
            ]  # fmt: skip
        )
    header = ["stage", "status", "wall seconds", "CPU seconds", "command", "reason"]
    return "<h2>Stages</h2>" + table(header, rows, text=(0, 1, 4, 5))


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
    )
    body = head + watch(p) + understand(p) + predict(p) + plan(p) + stages(p)
    return PAGE.format(style=STYLE, body=body)


def build_report(out: str | Path) -> Path:
    """Write ``<out>/report/{metrics.json, figures/, index.html}``; returns the page's path."""
    out = Path(out)
    status = json.loads((out / STATUS_FILE).read_text()) if (out / STATUS_FILE).is_file() else {}
    metrics = collect(out, status)
    report = out / "report"
    write_json(metrics, report / "metrics.json")
    names = figs.draw_all(out, metrics, report / "figures")
    page = report / "index.html"
    tmp = page.with_name(".index.html.tmp")
    tmp.write_text(render(metrics, names))
    tmp.replace(page)
    return page
