"""The report's chapters (watch, understand, predict, plan) and its table of stages.

Each chapter shows its figures, then its tables: "overall" rows first, a unit in every column
header, every compared number with its interval and, beside each comparison, the words that say
whether it is within noise. The quick demo scores a dozen clips, a few pairs a type and a few
episodes, so most comparisons are; the page says so instead of leaving two bare percentages.
"""

from __future__ import annotations

import html

from vjepa2.demo import figures as figs
from vjepa2.demo.metrics import PHYSICS_SOURCES, PLAN_METHODS
from vjepa2.demo.page import Page, lookup, table


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


def _probe_table(p: Page) -> str:
    probe = p.metrics.get("probe", {})
    sources = list(dict.fromkeys(s for e in probe.values() for s in e.get("accuracy", {})))
    if not probe:
        return ""
    level = p.level()
    rows = []
    for task in probe:
        row = [f"<code>{task}</code>", p.m(f"probe.{task}.val_clips"), p.m(f"probe.{task}.chance")]
        for s in sources:
            path = f"probe.{task}.accuracy.{s}"
            row += [p.iv(path), p.vs_chance(path)]
        row += [p.iv(f"probe.{task}.difference"), p.noise(f"probe.{task}.difference")]
        rows.append(row)
    header = ["task", "validation clips (count)", "chance (%)"]
    for s in sources:
        header += [f"{figs.LABELS.get(s, s)}: top-one accuracy (%) [{level} Wilson]", "against chance"]
    header += [f"pretrained minus random twin (points) [{level} Newcombe]", "difference"]
    text = (0, *[4 + 2 * i for i in range(len(sources))], len(header) - 1)
    return table(header, rows, text=text)


def _vqa_table(p: Page) -> str:
    vqa = p.metrics.get("vqa", {})
    if not vqa:
        return ""
    rows = [
        [f"<code>{k}</code>", p.m(f"vqa.{k}.questions"), p.m(f"vqa.{k}.chance"), p.iv(f"vqa.{k}.accuracy"),
         p.vs_chance(f"vqa.{k}.accuracy") or "no chance level (open answers)"]
        for k in vqa
    ]  # fmt: skip
    header = ["question type", "questions (count)", "chance (%)", f"accuracy (%) [{p.level()} Wilson]"]
    return table(header + ["against chance"], rows, text=(0, 4))


def understand(p: Page) -> str:
    probes = p.figure(
        "probe_bars.png",
        "Validation top-one accuracy (%) of an attentive probe trained on each frozen encoder, per task "
        "of the built-in world (clips per validation set in the table), with Wilson intervals as "
        "error bars; the random twin has the pretrained encoder's shape and random weights; dashed: "
        "chance. The head is picked on these clips, so the intervals are if anything kind to it.",
    )
    out = "<h2>Understand: probes and questions</h2>" + p.missing("probe") + probes + _probe_table(p)
    out += "<h3>Video question answering</h3>" + p.missing("vqa")
    out += p.figure(
        "vqa_bars.png",
        "Accuracy (%) on held-out questions per type, with Wilson intervals: the frozen pretrained "
        "encoder's tokens go through a learned MLP projector (warm-started by an answer probe) into a "
        "small causal language model trained on the training questions; a multiple-choice answer is "
        "the choice of highest likelihood; dashed: chance.",
    )
    return out + _vqa_table(p)


def _physics_tables(p: Page) -> str:
    section = p.metrics.get("physics", {})
    sources = [s for s in PHYSICS_SOURCES if s in section]
    kinds = list(section.get("pairs", {}))  # "overall" first, as metrics.json keeps them
    if not kinds:
        return ""
    level = p.level()
    rows = [
        [f"<code>{k}</code>", p.m(f"physics.pairs.{k}")]
        + [cell for s in sources for cell in (p.iv(f"physics.{s}.{k}"), p.vs_chance(f"physics.{s}.{k}", "a coin flip"))]
        for k in kinds
    ]  # fmt: skip
    header = ["violation", "pairs (count)"]
    for s in sources:
        header += [f"{figs.LABELS[s]}: pairs right (%) [{level} Wilson]", "against a coin flip"]
    out = table(header, rows, text=(0, *[3 + 2 * i for i in range(len(sources))]))
    others = [s for s in sources if s in section.get("difference", {})]
    if others:
        rows = [
            [f"<code>{k}</code>"]
            + [cell for s in others for cell in (p.iv(f"physics.difference.{s}.{k}"), p.noise(f"physics.difference.{s}.{k}"))]
            for k in kinds
        ]  # fmt: skip
        header = ["violation"]
        for s in others:
            header += [f"pretrained minus {figs.LABELS[s]} (points) [{level} Newcombe]", "difference"]
        out += "<p>The pretrained model against the other sources, on the same pairs:</p>"
        out += table(header, rows, text=(0, *[2 + 2 * i for i in range(len(others))]))
    return out


def predict(p: Page) -> str:
    curves = p.figure(
        "surprise_curves.png",
        "Surprise over time, averaged over the pairs of each violation type: a window slides over each "
        "video, the pretrained encoder sees its first frames and the predictor guesses the rest; "
        "surprise is the L1 distance to what came. Top, solid: the possible video; dashed: its "
        "impossible twin, identical until the object comes out from behind the bar. Bottom: the gap "
        f"between them (impossible minus possible) with its {p.level()} bootstrap band over pairs; "
        "where the band holds zero, the model does not tell the two videos apart.",
    )
    bars = p.figure(
        "physics_bars.png",
        "Relative accuracy (%): the share of pairs in which the possible video is the less surprising "
        "one (mean over its curve), for the pretrained model, its random twin and the change between "
        "pixels of consecutive frames, with Wilson intervals; dashed: a coin flip.",
    )
    out = "<h2>Predict: surprise at impossible physics</h2>" + p.missing("physics") + curves + bars
    return out + _physics_tables(p)


def _planning_tables(p: Page) -> str:
    section = p.metrics.get("planning", {})
    methods = [k for k in PLAN_METHODS if k in section]
    if not methods:
        return ""
    level = p.level()
    rows = [
        [figs.LABELS[k], p.m(f"planning.{k}.episodes"), p.iv(f"planning.{k}.success"),
         p.iv(f"planning.{k}.final_distance", 3), p.iv(f"planning.{k}.seconds_per_action", 3)]
        for k in methods
    ]  # fmt: skip
    header = ["method", "episodes (count)", f"success (% of episodes) [{level} Wilson]"]
    header += [f"final distance to the goal (world units) [{level} bootstrap]"]
    out = table(header + [f"time per action (s) [{level} bootstrap]"], rows)
    others = list(section.get("difference", {}))
    if others:
        rows = [
            [figs.LABELS[k], p.iv(f"planning.difference.{k}"), p.noise(f"planning.difference.{k}")]
            for k in others
        ]
        header = ["compared with", f"success difference (points) [{level} Newcombe]", "difference"]
        out += "<p>The world model on the pretrained encoder against each other method, on the same episodes:</p>"
        out += table(header, rows, text=(0, 2))
    return out


def _world_model_table(p: Page) -> str:
    wm = p.metrics.get("world_model", {})
    if not wm:
        return ""
    rows = [
        p.row(figs.LABELS[e], f"world_model.{e}", (("steps", 1), ("val_teacher", 3), ("val_rollout", 3)))
        for e in wm
    ]
    out = (
        "<p>World-model training (V-JEPA 2-AC predictor on the frozen encoder), validation loss: one "
        "pass over the held-out windows each. The training log keeps only the means, so these have "
        "no interval and are not compared here.</p>"
    )
    header = [
        "encoder",
        "training steps (count)",
        "teacher-forced L1 (feature units)",
        "rollout L1 (feature units)",
    ]
    return out + table(header, rows)


def plan(p: Page) -> str:
    unit_square = lookup(p.metrics, "planning.env") in ("reach", "push")
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
        f"{p.m('planning.max_steps')} actions) that reached the goal image, with Wilson intervals: the "
        "world model on each encoder, random actions, and an oracle that plans with the simulator "
        "itself."
        # reach and push (worlds/envs.py) live on the unit square; another env says its own units
        + (" Distances are in world units: the world is a square of side one." if unit_square else ""),
    )
    return out + _planning_tables(p) + _world_model_table(p)


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
    header = ["stage", "status", "wall time (s)", "CPU time (s)", "command", "reason"]
    return "<h2>Stages</h2>" + table(header, rows, text=(0, 1, 4, 5))
