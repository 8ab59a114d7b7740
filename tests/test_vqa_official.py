"""MVPBench and CausalVQA scored as their official code scores them, on miniature sets written in
the released layouts with fixed picks whose scores are counted by hand here; parquet input."""

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vjepa2.cli import main
from vjepa2.errors import UserError
from vjepa2.vqa import official
from vjepa2.vqa.benchmarks import detect_layout, read_causalvqa, read_questions
from vjepa2.vqa.evaluate import summarize


def touch(folder, *names):
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")


def mvp_rows(prefix, pairs):
    """Records of the hub's columns (facebookresearch/minimal_video_pairs tasks/mvp/utils.py reads
    video_id, video_path, question, candidates, answer): per pair two videos, opposite answers."""
    rows = []
    for p in range(pairs):
        for k, answer in enumerate(["Yes", "No"]):
            rows.append({"video_id": f"{prefix}_{p}_{k}", "video_path": f"src/{prefix}_{p}_{k}.mp4",
                         "question": f"Does {prefix} {p} hit?", "candidates": ["Yes", "No"], "answer": answer})  # fmt: skip
    return rows


def write_mvp_hub(root):
    """The hub's layout: one folder per subset (its config), parquet files named by split."""
    for subset, prefix, pairs in (("intuitive_physics", "ip", 2), ("temporal_reasoning", "tr", 3)):
        (root / subset).mkdir(parents=True)
        pq.write_table(
            pa.Table.from_pylist(mvp_rows(prefix, pairs)), root / subset / "full-00000-of-00001.parquet"
        )
        pq.write_table(
            pa.Table.from_pylist(mvp_rows("mini", 1)), root / subset / "mini-00000-of-00001.parquet"
        )
        touch(root, *[f"videos/{r['video_path']}" for r in mvp_rows(prefix, pairs)])
    return root


def scored(samples, picks):
    """Records as ``vqa eval`` writes them, the model picking choice ``picks[i]`` for sample i."""
    out = []
    for s, pick in zip(samples, picks):
        prediction = s.choices[pick]
        correct = None if s.answer is None else prediction == s.answer
        out.append({"type": s.type, "pair_id": s.pair_id, "meta": s.meta, "choices": s.choices,
                    "prediction": prediction, "correct": correct})  # fmt: skip
    return out


def test_mvpbench_parquet_hub_folder_and_official_group_mean(tmp_path):
    root = write_mvp_hub(tmp_path / "hub")
    samples = read_questions(root, report=lambda m: None)  # the folder: every subset, split "full"
    assert [s.type for s in samples] == ["intuitive_physics"] * 4 + ["temporal_reasoning"] * 6
    assert samples[0].video == root / "videos" / "src" / "ip_0_0.mp4" and samples[0].choices == ["Yes", "No"]
    one = root / "intuitive_physics" / "full-00000-of-00001.parquet"
    assert detect_layout(one) == "mvpbench" and len(read_questions(one, report=lambda m: None)) == 4
    with pytest.raises(UserError, match="parquet file or a folder is read as MVPBench only"):
        read_questions(one, layout="jsonl")  # never handed to a text decoder
    binary = tmp_path / "annotations.jsonl"
    binary.write_bytes(b"\x89\xff\xfe not text")
    with pytest.raises(UserError, match="annotations.jsonl: not UTF-8 text"):
        read_questions(binary, layout="mvpbench")
    # picks (0 = Yes): ip pairs (right, right), (right, wrong); tr pairs (wrong, wrong),
    # (right, wrong), (right, right)
    picks = [0, 1, 0, 0] + [1, 0, 0, 0, 0, 1]
    found = official.official_scores(scored(samples, picks), "mvpbench")
    ip, tr = found["table"]["intuitive_physics"], found["table"]["temporal_reasoning"]
    assert (ip["pair_accuracy"], ip["single_accuracy"]) == (100 * 1 / 2, 100 * 3 / 4)
    assert (tr["pair_accuracy"], tr["single_accuracy"]) == pytest.approx((100 * 1 / 3, 100 * 3 / 6))
    # mvp = the unweighted mean over subsets (weight_by_size: false): (50 + 33.3) / 2, (75 + 50) / 2
    group = found["groups"]["mvp"]
    assert found["headline"] == "mvp" and group["pair_accuracy"] == pytest.approx(125 / 3)
    assert group["single_accuracy"] == 62.5
    # this project's pooled table is another number: 2 of 5 pairs, 6 of 10 questions
    pooled = summarize(scored(samples, picks))["overall"]
    assert (pooled["paired_accuracy"], pooled["accuracy"]) == (40.0, 60.0)
    rows = official.leaderboard_rows(scored(samples, picks), "mvpbench")
    assert rows[1] == {
        "data_name": "mvp",
        "row_id": "ip_0_1",
        "model_answer": "No",
        "task": "intuitive_physics",
    }


def write_causal(file, rows):
    """CausalVQA's <split>_metadata.csv columns (facebookresearch/CausalVQA scripts/prep_mllm_eval.py)."""
    fields = [
        "qid",
        "type",
        "question",
        "choices1",
        "correct1",
        "choices2",
        "correct2",
        "difficulty",
        "renamed_video",
    ]
    with open(file, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for qid, kind, difficulty, c1, c2 in rows:
            writer.writerow({"qid": qid, "type": kind, "question": "What next?", "difficulty": difficulty,
                             "choices1": "1. up|2. down", "correct1": c1, "choices2": "1. down|2. up",
                             "correct2": c2, "renamed_video": "a.mp4"})  # fmt: skip


def test_causalvqa_bucket_means_worked_by_hand(tmp_path):
    touch(tmp_path, "videos/a.mp4")
    file = tmp_path / "debug_metadata.csv"
    # (qid, type, difficulty, correct1, correct2): the right answer is "up" in both sets
    write_causal(
        file,
        [
            ("q1", "Counterfactual", "easy", "1", "2"),
            ("q2", "Counterfactual", "easy", "1", "2"),
            ("q3", "Planning", "easy", "1", "2"),
            ("q4", "Descriptive", "hard", "1", "2"),
            ("q5", "Descriptive", "hard", "1", "9"),
        ],
    )  # fmt: skip  (q5's 2nd set: no option 9)
    samples = read_causalvqa(file, report=lambda m: None)
    assert [s.type for s in samples][::2] == ["counterfactual_easy", "counterfactual_easy", "planning_easy",
                                              "descriptive_hard", "descriptive_hard"]  # fmt: skip
    # picks: q1 both right; q2 one right; q3 both wrong; q4 both right; q5 one-sided, right
    picks = [0, 1, 0, 0, 1, 0, 0, 1, 0]
    found = official.official_scores(scored(samples, picks), "causalvqa", debug=True)
    table = found["table"]
    # counterfactual_easy: 2 qids, 1 with both right, 1 with one: paired 1/2, single (1 + 0.5)/2
    assert (
        table["counterfactual_easy"]["paired_accuracy"],
        table["counterfactual_easy"]["single_accuracy"],
    ) == (50.0, 75.0)
    assert table["planning_easy"]["paired_accuracy"] == 0.0
    # descriptive_hard: q4 both right, q5 a lone right half: paired 1/2, single (1 + 0.5)/2
    assert (table["descriptive_hard"]["paired_accuracy"], table["descriptive_hard"]["single_accuracy"]) == (
        50.0,
        75.0,
    )
    # causalvqa: unweighted mean over the buckets present (3 of 15): (50 + 0 + 50)/3, (75 + 0 + 75)/3
    group = found["groups"]["causalvqa"]
    assert group["paired_accuracy"] == pytest.approx(100 / 3) and group["single_accuracy"] == 50.0
    assert len(group["missing"]) == 12
    # debug_causalvqa: the easy buckets weighted by questions (4 and 2): (50*4 + 0*2)/6, (75*4)/6
    debug = found["groups"]["debug_causalvqa"]
    assert found["headline"] == "debug_causalvqa" and debug["paired_accuracy"] == pytest.approx(100 / 3)
    assert debug["single_accuracy"] == 50.0 and debug["members"] == ["counterfactual_easy", "planning_easy"]
    # ours pools every question: pairs q1 q4 right of q1..q4 (q5 is no pair): 50; 6 of 9 questions
    pooled = summarize(scored(samples, picks))["overall"]
    assert pooled["paired_accuracy"] == 50.0 and pooled["accuracy"] == pytest.approx(100 * 6 / 9)


def test_causalvqa_test_split_leaderboard_letters(tmp_path):
    touch(tmp_path, "videos/a.mp4")
    file = tmp_path / "test_metadata.csv"
    write_causal(file, [("q1", "Anticipation", "med", "", "")])  # answers withheld
    samples = read_causalvqa(file, report=lambda m: None)
    records = scored(samples, [1, 0])  # "down" in set 1 (letter B), "down" in set 2 (letter A)
    assert official.official_scores(records, "causalvqa") == {}  # nothing to score
    rows = official.leaderboard_rows(records, "causalvqa")
    assert rows == [
        {"qid": "q1", "n": 0, "task": "Anticipation", "subset": "med", "pred_answer": "B"},
        {"qid": "q1", "n": 1, "task": "Anticipation", "subset": "med", "pred_answer": "A"},
    ]


def text_only_model(folder):
    """A tiny text-only VQA model folder (no video: nothing to encode)."""
    pytest.importorskip("transformers")
    from vjepa2.vqa.features import FeatureSpec
    from vjepa2.vqa.lm import build_tiny_lm, train_tokenizer, video_token_id
    from vjepa2.vqa.model import VQAModel
    from vjepa2.vqa.pipeline import VideoQA

    tokenizer = train_tokenizer(["Does it hit?", "Yes", "No"] * 3, 300)
    lm = build_tiny_lm(tokenizer, dim=32, layers=1, heads=2, seed=3)
    spec = FeatureSpec(num_frames=4, fps=4.0, crop=32)
    VideoQA(None, spec, VQAModel(None, lm, video_token_id(tokenizer)).eval(), tokenizer).save(folder)
    return folder


def test_vqa_eval_on_the_mvp_hub_folder_writes_the_official_headline(tmp_path, capsys):
    text_only_model(tmp_path / "model")
    root = write_mvp_hub(tmp_path / "hub")
    out = tmp_path / "out"
    assert main(["vqa", "eval", "--model", str(tmp_path / "model"), "--data", str(root), "--out", str(out),
                 "--device", "cpu", "--dtype", "fp32"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert printed.index("mvp ") < printed.index("overall")  # the official group first
    results = json.loads((out / "results.json").read_text())
    assert list(results)[0] == "official" and results["benchmark"] == "mvpbench"
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    want = official.official_scores(records, "mvpbench")["groups"]["mvp"]["pair_accuracy"]
    assert results["official"]["groups"]["mvp"]["pair_accuracy"] == want
    board = [json.loads(line) for line in (out / "leaderboard.jsonl").read_text().splitlines()]
    assert len(board) == 10 and {b["task"] for b in board} == {"intuitive_physics", "temporal_reasoning"}


def test_vqa_eval_on_intphys2_split_folders_per_video_accuracy_and_heldout_file(tmp_path, capsys):
    from test_physics_official import write_intphys2  # the released layout, written there

    model = text_only_model(tmp_path / "model")
    root = write_intphys2(tmp_path / "IntPhys2")
    out = tmp_path / "main"
    assert main(["vqa", "eval", "--model", str(model), "--data", str(root / "Main"), "--out", str(out),
                 "--device", "cpu", "--dtype", "fp32"]) == 0  # fmt: skip
    assert "IntPhys 2 per-video accuracy" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    # the stated rule, counted here: a pick of "Yes" answers possible; right when it is the label
    right = sum((r["prediction"] == "Yes") == r["meta"]["possible"] for r in records)
    assert results["official"]["accuracy"]["split"]["all"] == {
        "accuracy": 100 * right / 8,
        "correct": right,
        "videos": 8,
    }
    held = tmp_path / "held"
    assert main(["vqa", "eval", "--model", str(model), "--data", str(root / "HeldOut"), "--out", str(held),
                 "--device", "cpu", "--dtype", "fp32"]) == 0  # fmt: skip
    board = [json.loads(line) for line in (held / "leaderboard.jsonl").read_text().splitlines()]
    assert [b["filename"] for b in board] == ["h0", "h1", "h2"] and all(
        isinstance(b["model_answer"], bool) for b in board
    )
    assert (
        json.loads((held / "results.json").read_text())["results"] == {}
    )  # nothing labelled, nothing scored
