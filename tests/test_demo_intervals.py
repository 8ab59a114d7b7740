"""The demo report does not overclaim: every comparison carries its 95% interval (Wilson for
rates, Newcombe for a difference of rates, a bootstrap for the rest), says in words whether it is
within noise, "overall" comes first, every numeric column names its unit, and the surprise chart
shows the gap between the impossible and the possible videos with its band."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser

import numpy as np
import pytest
from test_demo_report import fixture_run

from vjepa2.demo import metrics as demo_metrics
from vjepa2.demo.report import build_report
from vjepa2.evals.intervals import bootstrap, holds_zero, newcombe, wilson


def test_wilson_and_newcombe_match_published_values():
    # Wilson (1927) for 5 of 10; Newcombe (1998), table II: 56/70 - 48/80, method 10
    assert wilson(0.5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert newcombe(56 / 70, 70, 48 / 80, 80) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    # 0 of 3 is not "certainly never": the interval reaches 56%
    assert wilson(0.0, 3) == pytest.approx((0.0, 3.8415 / 6.8415), abs=1e-4)
    assert all(math.isnan(x) for x in wilson(0.5, 0))
    assert holds_zero(*newcombe(2 / 3, 3, 0.0, 3)) and not holds_zero(*newcombe(12 / 12, 12, 0.0, 12))


def test_bootstrap_is_seeded_and_says_nothing_about_one_unit():
    x = np.random.default_rng(1).normal(size=40)
    a = bootstrap(lambda d: float(x[d].mean()), len(x), 500, seed=3)
    assert a == bootstrap(lambda d: float(x[d].mean()), len(x), 500, seed=3)
    assert a[0] < x.mean() < a[1] and a[1] - a[0] == pytest.approx(
        2 * 1.96 * x.std() / math.sqrt(40), rel=0.25
    )
    assert all(math.isnan(v) for v in bootstrap(lambda d: 0.0, 1))


class Tables(HTMLParser):
    """Every table as (header cells' text, rows of (cell text, numeric class))."""

    def __init__(self):
        super().__init__()
        self.tables, self.cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append(([], []))
        elif tag == "tr" and self.tables:
            self.tables[-1][1].append([])
        elif tag in ("th", "td"):
            self.cell = [tag, "".join(v for k, v in attrs if k == "class") == "num", []]

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self.cell:
            kind, numeric, text = self.cell
            header, rows = self.tables[-1]
            (header.append if kind == "th" else rows[-1].append)(("".join(text).strip(), numeric))
            self.cell = None

    def handle_data(self, data):
        if self.cell:
            self.cell[2].append(data)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    fixture_run(out)
    index = build_report(out)
    return index.read_text(), json.loads((out / "report" / "metrics.json").read_text()), out


def test_every_numeric_column_names_its_unit_and_overall_comes_first(page):
    text, _, _ = page
    parser = Tables()
    parser.feed(text)
    assert len(parser.tables) >= 6
    for header, rows in parser.tables:
        rows = [r for r in rows if r]
        numeric = {i for r in rows for i, (_, num) in enumerate(r) if num}
        for i in numeric:
            name = header[i][0]
            assert "(" in name and ")" in name, f"column {name!r} has no unit"
        if header[0][0] == "violation":
            assert rows[0][0][0] == "overall", header


def test_comparisons_say_in_words_whether_they_are_within_noise(page):
    text, metrics, _ = page
    # probe: 61.2% against 16.7% on 12 clips is beyond noise; physics on 6 pairs is not
    assert "beyond noise: the interval excludes zero" in text
    assert "within noise: the interval holds zero" in text
    assert "within noise of a coin flip" in text and "above chance, beyond noise" in text
    for path in ("physics.model.shape", "physics.difference.random.overall", "planning.oracle.success"):
        assert all(f'data-metric="{path}.{part}"' in text for part in ("value", "low", "high")), path
    assert metrics["intervals"]["level"] == 95


def test_the_surprise_chart_shows_the_gap_with_its_band(page):
    _, metrics, out = page
    overall = metrics["physics"]["curves"]["overall"]
    # the fixture's impossible curves rise by 0.01 per window over identical possible ones
    assert overall["gap"] == pytest.approx([0.0, 0.01, 0.02, 0.03, 0.04], abs=1e-6)
    assert overall["groups"] == 6 and len(overall["gap_low"]) == len(overall["gap_high"]) == 5
    assert all(lo <= g <= hi for lo, g, hi in zip(overall["gap_low"], overall["gap"], overall["gap_high"]))
    assert list(metrics["physics"]["curves"])[0] == "overall"
    assert (out / "report" / "figures" / "surprise_curves.png").stat().st_size > 0


def test_vqa_rates_carry_wilson_intervals_overall_first(tmp_path):
    results = {
        "counting": {"questions": 9, "accuracy": 88.9, "chance": 50.0},
        "describe": {"questions": 4, "accuracy": 25.0, "chance": None},  # open answers: no chance
        "overall": {"questions": 13, "accuracy": 69.2, "chance": 50.0},
    }
    (tmp_path / "vqa").mkdir()
    (tmp_path / "vqa" / "results.json").write_text(json.dumps({"results": results}))
    section = demo_metrics.vqa(tmp_path)
    assert list(section) == ["overall", "counting", "describe"]
    low, high = wilson(0.889, 9)
    assert section["counting"]["accuracy"] == {
        "value": 88.9, "low": round(100 * low, 1), "high": round(100 * high, 1), "vs_chance": "above"
    }  # fmt: skip
    assert section["overall"]["accuracy"]["vs_chance"] == "within"  # 69.2% of 13 does not exclude 50%
    assert "chance" not in section["describe"] and "vs_chance" not in section["describe"]["accuracy"]
