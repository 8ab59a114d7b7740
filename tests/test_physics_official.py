"""The official intuitive-physics scores on miniature data sets with fixed surprises, worked out
by hand from the official code's rules (facebookresearch/jepa-intuitive-physics
evaluation_code/evals/intuitive_physics/eval.py compute_metrics; facebookresearch/IntPhys2
ComputeScoreIntPhys2.ipynb), and IntPhys 2 read in its released layout."""

import json
from fractions import Fraction

import numpy as np
import pytest

from vjepa2.cli import main
from vjepa2.data.video import write_video
from vjepa2.errors import UserError
from vjepa2.evals.physics import intphys2, metrics, official
from vjepa2.evals.physics.readers import read_pairs


# -- jepa-intuitive-physics compute_metrics ------------------------------------------------------
def numpy_pr_auc(labels, scores):
    """An independent AUPRC: for every distinct score t (highest first) predict positive when
    score >= t, take (recall, precision); start the curve at (recall 0, precision 1), as
    scikit-learn's precision_recall_curve ends it, and sum trapezoids over recall."""
    labels, scores = np.asarray(labels), np.asarray(scores, float)
    points = [(0.0, 1.0)]
    for t in sorted(set(scores.tolist()), reverse=True):
        predicted = scores >= t
        tp = np.sum(labels[predicted] == 1)
        points.append((tp / np.sum(labels == 1), tp / np.sum(predicted)))
    return sum((r1 - r0) * (p0 + p1) / 2 for (r0, p0), (r1, p1) in zip(points, points[1:]))


def test_official_metrics_worked_by_hand_ties_and_too_few_possible_videos():
    possible, impossible = np.array([1.0, 2, 3, 5]), np.array([2.0, 2, 1, 6])  # pair i = entry i
    m = official.compute_metrics((possible, impossible), (possible, impossible))
    # strict <: pair 0 (1 < 2) and pair 3 (5 < 6) are right; pair 1 ties (2, 2): a miss; 2 of 4
    assert m["Relative Accuracy (avg)"] == m["Relative Accuracy (max)"] == 100 * 2 / 4
    # ours counts the tie half: 2.5 of 4
    assert metrics.relative_accuracy(possible, impossible) == 2.5 / 4
    # 4 possible videos: index ceil(0.9 * 4) = 4 is past the end: the official code fails there
    assert m["Absolute Accuracy (max)"] is None and m["Classifier threhshold"] is None
    # AUPRC, possible = positive on -surprise. Scores high to low, tied groups together:
    # -1 {p, i}, -2 {p, i, i}, -3 {p}, -5 {p}, -6 {i}: (tp, fp) = (1,1) (2,3) (3,3) (4,3) (4,4);
    # precision 1/2, 2/5, 1/2, 4/7, 1/2; recall 1/4, 1/2, 3/4, 1, 1; then (recall 0, precision 1).
    # Trapezoids of width 1/4: (1 + 1/2) + (1/2 + 2/5) + (2/5 + 1/2) + (1/2 + 4/7), times 1/8.
    want = (Fraction(3, 2) + Fraction(9, 10) + Fraction(9, 10) + Fraction(1, 2) + Fraction(4, 7)) / 8
    assert want == Fraction(153, 280) and m["AUPRC (max)"] == pytest.approx(float(want), abs=1e-15)
    assert m["AUPRC (avg)"] == pytest.approx(numpy_pr_auc([1] * 4 + [0] * 4, -np.r_[possible, impossible]))
    # ours, impossible = positive, step-wise: a different number on the same data
    assert metrics.auprc(possible, impossible) != pytest.approx(float(want))
    # AUROC: of the 16 (possible, impossible) pairs the impossible is more surprising in 1 + 1
    # (vs 1, twice) + 4 (vs 6), tied in 1 + 1 + 1: (6 + 3/2) / 16
    assert m["AUROC (max)"] == pytest.approx(7.5 / 16, abs=1e-15)


def test_official_absolute_accuracy_from_ten_possible_videos():
    possible = np.arange(10.0)  # max surprises 0..9
    impossible = np.array([0.5, 9.0, 12, 3, 20, 9.5, 1, 30, 8, 11])
    m = official.compute_metrics((possible, impossible), (possible, impossible))
    # threshold: the sorted possible surprises at index ceil(0.9 * 10) = 9, i.e. 9.0
    assert m["Classifier threhshold"] == 9.0
    # possible below 9: 0..8 = 9 videos; impossible above 9: 12, 20, 9.5, 30, 11 = 5 videos
    assert m["Absolute Accuracy (max)"] == pytest.approx(100 * 14 / 20)
    # strict <, pair by pair: 0<.5, 1<9, 2<12, 4<20, 5<9.5, 7<30, 9<11 right; 3=3, 6>1, 8=8 not
    assert m["Relative Accuracy (max)"] == pytest.approx(100 * 7 / 10)
    separable = official.compute_metrics((possible, possible + 100), (possible, possible + 100))
    assert separable["Best Absolute Accuracy (max)"] == 100.0 and separable["AUPRC (max)"] == pytest.approx(
        1.0
    )


@pytest.mark.parametrize("seed", range(4))
def test_official_auprc_and_auroc_against_plain_numpy(seed):
    rng = np.random.default_rng(seed)
    possible, impossible = rng.integers(0, 5, 15).astype(float), rng.integers(0, 7, 15).astype(float)
    m = official.compute_metrics((possible, impossible), (possible, impossible))
    labels = [1] * 15 + [0] * 15
    assert m["AUPRC (max)"] == pytest.approx(numpy_pr_auc(labels, -np.r_[possible, impossible]))
    wins = [(i > p) + 0.5 * (i == p) for p in possible for i in impossible]  # Mann-Whitney, ties half
    assert m["AUROC (max)"] == pytest.approx(np.mean(wins))


# -- IntPhys 2 ------------------------------------------------------------------------------------
def clip(seed, frames=8):
    return np.random.default_rng(seed).integers(0, 255, (frames, 32, 32, 3), dtype=np.uint8)


# Two scenes of the Main split in the released columns (IntPhys2 ComputeScoreIntPhys2.ipynb reads
# name -> filename, type, env, game_name, condition): scene 0 easy (BasicLevel_0), fixed camera
# (RotatingCup), permanence; scene 1 hard (Egypt_0), moving camera (Box), continuity_swap.
SCENES = [(0, "BasicLevel_0", "RotatingCup", "permanence"), (1, "Egypt_0", "Box", "continuity_swap")]
TYPES = ["1_Possible", "1_Impossible", "2_Possible", "2_Impossible"]


def write_intphys2(root, name_column="name", heldout=3):
    main_split = root / "Main"
    (main_split / "Videos").mkdir(parents=True)
    rows = [f"SceneIndex,{name_column},type,condition,env,game_name"]
    for scene, env, game, condition in SCENES:
        for k, kind in enumerate(TYPES):
            write_video(main_split / "Videos" / f"s{scene}_{k}.mp4", clip(4 * scene + k), codec="mpeg4")
            rows.append(f"{scene},s{scene}_{k},{kind},{condition},{env},{game}")
    (main_split / "metadata.csv").write_text("\n".join(rows) + "\n")
    held = root / "HeldOut"
    (held / "Videos").mkdir(parents=True)
    for k in range(heldout):
        write_video(held / "Videos" / f"h{k}.mp4", clip(50 + k), codec="mpeg4")
    (held / "metadata.csv").write_text("filename\n" + "".join(f"h{k}\n" for k in range(heldout)))
    return root


def test_intphys2_reads_as_released_and_says_what_is_missing(tmp_path):
    root = write_intphys2(tmp_path)
    videos = read_pairs(root, split="Main")
    assert len(videos) == 8 and {v.pair for v in videos} == {
        "permanence/0/1", "permanence/0/2", "continuity_swap/1/1", "continuity_swap/1/2"}  # fmt: skip
    assert videos[0].path == root / "Main" / "Videos" / f"{videos[0].meta['filename']}.mp4"
    held = read_pairs(root, split="HeldOut")
    assert [(v.meta["filename"], v.possible) for v in held] == [("h0", None), ("h1", None), ("h2", None)]
    (root / "HeldOut" / "metadata.csv").write_text("clip\nh0\n")
    with pytest.raises(
        UserError, match=r"HeldOut/metadata.csv: no video name column \(one of filename, name"
    ):
        read_pairs(root, split="HeldOut")
    (root / "HeldOut" / "metadata.csv").write_text("filename\n../../etc/passwd\n")
    with pytest.raises(UserError, match=r"refused: a '..' component"):
        read_pairs(root, split="HeldOut")


@pytest.fixture(scope="module")
def intphys2_root(tmp_path_factory):
    return write_intphys2(tmp_path_factory.mktemp("intphys2"))


def test_intphys2_per_video_accuracy_worked_by_hand(intphys2_root):
    videos = read_pairs(intphys2_root, split="Main")
    by_name = {v.meta["filename"]: v for v in videos}
    # answers (True = possible); labels are possible, impossible, possible, impossible per scene
    answers = {
        "s0_0": True,
        "s0_1": False,
        "s0_2": False,
        "s0_3": False,  # 3 of 4 right
        "s1_0": True,
        "s1_1": True,
        "s1_2": True,
    }  # s1_3 has no answer: wrong; 2 of 4 right
    found = intphys2.per_video_accuracy(videos, {str(by_name[k].path): a for k, a in answers.items()})
    assert found["split"]["all"] == {"accuracy": 100 * 5 / 8, "correct": 5, "videos": 8}
    assert found["difficulty"] == {"Easy": {"accuracy": 75.0, "correct": 3, "videos": 4},
                                   "Hard": {"accuracy": 50.0, "correct": 2, "videos": 4}}  # fmt: skip
    assert found["camera"]["FixedCamera"]["correct"] == 3 and found["camera"]["MovingCamera"]["correct"] == 2
    assert found["property"]["Continuity"]["accuracy"] == 50.0  # continuity_swap counts as Continuity
    assert "Medium" not in found["difficulty"]


def test_decision_rule_and_qa_answers(intphys2_root):
    videos = read_pairs(intphys2_root, split="Main")
    peaks = {str(v.path): float(i) for i, v in enumerate(videos)}
    answers, used = intphys2.decide(videos, peaks, 3.0)
    assert used == 3.0 and [answers[str(v.path)] for v in videos[:5]] == [True, True, True, False, False]
    assert intphys2.decide(videos, peaks, None) == ({}, None)  # 4 possible videos: no official threshold
    # the notebook's label_pred_yes_no: "yes"/"Yes" first, then "no"/"No" (inside words too), else 2
    reads = [
        intphys2.answer_from_response(t) for t in ["Yes.", "No", "yes, no doubt", "It cannot be", "maybe"]
    ]
    assert reads == [1, 0, 1, 0, 2]


def test_physics_eval_on_intphys2_headline_and_leaderboard_file(intphys2_root, tmp_path, capsys, user_error):
    root = intphys2_root
    out = tmp_path / "main"
    args = ["physics-eval", str(root), "--split", "Main", "--sources", "pixels", "--out", str(out),
            "--resamples", "10", "--plot-pairs", "0", "--threshold", "0.05"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.index("Relative Accuracy (avg)") < printed.index("ties count half")
    results = json.loads((out / "results.json").read_text())["sources"]["pixels"]
    assert list(results) == ["official", "metrics", "videos"]
    found = results["official"]["intphys2"]
    peaks = {path: v["max"] for path, v in results["videos"].items()}
    labels = {path: v["possible"] for path, v in results["videos"].items()}
    right = sum((peaks[p] < 0.05) == labels[p] for p in peaks)  # the stated rule, counted here
    assert found["threshold"] == 0.05 and found["accuracy"]["split"]["all"]["correct"] == right
    lines = [json.loads(line) for line in (out / "predictions_pixels.jsonl").read_text().splitlines()]
    assert len(lines) == 8 and set(lines[0]) == {"filename", "model_answer"}
    held = tmp_path / "held"
    line = user_error(
        ["physics-eval", str(root), "--split", "HeldOut", "--sources", "pixels", "--out", str(held)]
    )
    assert "HeldOut split has no labels: give --threshold" in line
    assert main(["physics-eval", str(root), "--split", "HeldOut", "--sources", "pixels", "--out", str(held),
                 "--plot-pairs", "0", "--threshold", "0.05"]) == 0  # fmt: skip
    lines = [json.loads(line) for line in (held / "predictions_pixels.jsonl").read_text().splitlines()]
    assert [x["filename"] for x in lines] == ["h0", "h1", "h2"]
    assert all(isinstance(x["model_answer"], bool) for x in lines)


def test_official_surprise_skips_one_sided_pairs_and_pairs_quadruplets_video_by_video():
    from pathlib import Path

    from vjepa2.evals.physics.summary import official_surprise
    from vjepa2.evals.physics.videos import PhysicsVideo

    # a quadruplet (q: two matched pairs, possible listed before its impossible twin) and a pair
    # whose impossible video could not be read (one-sided: no curve), so it is left out
    videos = [PhysicsVideo(Path(n), g, p, "t") for n, g, p in [
        ("a", "q", True), ("b", "q", False), ("c", "q", True), ("d", "q", False),
        ("e", "lone", True), ("f", "lone", False)]]  # fmt: skip
    curves = {"a": np.array([1.0, 3]), "b": np.array([2.0, 2]), "c": np.array([1.0, 1]),
              "d": np.array([1.0, 1]), "e": np.array([0.0, 0])}  # fmt: skip
    found = official_surprise(videos, curves)["t"]
    assert found["pairs"] == 2
    # avg: a 2 vs b 2 (tie: a miss), c 1 vs d 1 (tie); max: a 3 vs b 2 (no), c 1 vs d 1 (tie)
    assert found["Relative Accuracy (avg)"] == 0.0 and found["Relative Accuracy (max)"] == 0.0
    # ours on the same quadruplet: the group's mean possible (1.5 + 1) / 2 vs impossible (2 + 1) / 2
    assert metrics.relative_accuracy(np.array([1.25]), np.array([1.5])) == 1.0
