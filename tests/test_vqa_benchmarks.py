"""Readers of the MVPBench and CausalVQA annotation layouts, on small files written in them, and
paired accuracy over what they read."""

import csv
import json

import pytest

from vjepa2.errors import UserError
from vjepa2.vqa.benchmarks import detect_layout, read_causalvqa, read_mvpbench, read_questions
from vjepa2.vqa.evaluate import summarize


def touch(folder, *names):
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")


MVP = [
    # a minimal pair: same question and options, the other answer (video_id up to the last "_")
    {
        "video_id": "clevrer_0041_0",
        "video_path": "clevrer/video_10041.mp4",
        "question": "Does the cube hit the ball?",
        "candidates": ["Yes", "No"],
        "answer": "Yes",
    },
    {
        "video_id": "clevrer_0041_1",
        "video_path": "clevrer/video_10057.mp4",
        "question": "Does the cube hit the ball?",
        "candidates": "['Yes', 'No']",
        "answer": "No",
    },
]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_mvpbench_records_pairs_and_videos_folder(tmp_path, fmt):
    touch(tmp_path, "videos/clevrer/video_10041.mp4", "videos/clevrer/video_10057.mp4")
    records = [*MVP, {**MVP[0], "video_id": "x_9_0", "answer": "Maybe"}]  # not a candidate
    file = tmp_path / f"intuitive_physics.{fmt}"
    if fmt == "jsonl":
        file.write_text("".join(json.dumps(r) + "\n" for r in records))
    elif fmt == "json":
        file.write_text(json.dumps(records))
    else:
        with open(file, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(MVP[0]))
            writer.writeheader()
            writer.writerows([{**r, "candidates": str(r["candidates"])} for r in records])
    messages = []
    samples = read_mvpbench(file, kind="intuitive_physics", report=messages.append)
    assert [s.answer for s in samples] == ["Yes", "No"]
    assert all(s.choices == ["Yes", "No"] and s.type == "intuitive_physics" for s in samples)
    assert {s.pair_id for s in samples} == {"clevrer_0041"}
    assert samples[1].video == tmp_path / "videos" / "clevrer" / "video_10057.mp4"  # beside, in videos/
    where = {"jsonl": "3", "json": "#3", "csv": "4"}[fmt]  # the CSV's header is line 1
    assert messages[0].startswith(f"{file}:{where}: skipped: ") and "not one of the choices" in messages[0]
    assert detect_layout(file) == "mvpbench"


def causal_rows():
    base = {"type": "Counterfactual", "question": "What if she had not let go?", "difficulty": "easy",
            "choices1": "1. The cup falls|2. The cup stays in her hand|3. The cup floats",
            "choices2": "1. The cup floats|2. The cup falls|3. The cup stays in her hand"}  # fmt: skip
    return [
        {**base, "qid": "q-1", "correct1": "2", "correct2": "3", "renamed_video": "a.mp4"},
        {**base, "qid": "q-2", "correct1": "1", "correct2": "2.0", "renamed_video": "b.mp4"},
        {**base, "qid": "q-3", "correct1": "", "correct2": "", "renamed_video": "a.mp4"},  # test set
        {**base, "qid": "q-4", "correct1": "7", "correct2": "1", "renamed_video": "a.mp4"},
    ]


def write_causal(file, rows):
    fields = ["qid", "type", "question", "choices1", "correct1", "choices2", "correct2", "difficulty"]
    with open(file, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*fields, "renamed_video"])
        writer.writeheader()
        writer.writerows(rows)


def test_causalvqa_two_choice_sets_per_row_paired_by_qid(tmp_path):
    touch(tmp_path, "videos/a.mp4", "videos/b.mp4")
    file = tmp_path / "debug_metadata.csv"
    write_causal(file, causal_rows())
    messages = []
    samples = read_causalvqa(file, report=messages.append)
    assert [(s.pair_id, s.answer) for s in samples] == [
        ("q-1", "The cup stays in her hand"),
        ("q-1", "The cup stays in her hand"),  # the same answer in the reordered set
        ("q-2", "The cup falls"),
        ("q-2", "The cup falls"),  # "2.0": a number column with blanks, as a table library writes it
        ("q-3", None),  # withheld (the test split): read to be answered, never scored
        ("q-3", None),
        ("q-4", "The cup floats"),  # its first set names option 7, which does not exist
    ]
    assert samples[0].choices == ["The cup falls", "The cup stays in her hand", "The cup floats"]
    # the type is the official bucket, <type>_<difficulty> (CausalVQA scripts/prep_mllm_eval.py)
    assert samples[1].choices[0] == "The cup floats" and samples[0].type == "counterfactual_easy"
    assert samples[2].video == tmp_path / "videos" / "b.mp4"
    assert samples[4].meta == {"benchmark": "causalvqa", "qid": "q-3", "n": 0, "task": "Counterfactual",
                               "subset": "easy", "withheld": True}  # fmt: skip
    skipped = [m for m in messages if "skipped:" in m]
    assert [m.split(":")[1] for m in skipped] == ["5/1"]
    assert "not one of the options" in skipped[0]
    assert detect_layout(file) == "causalvqa"
    # paired accuracy as the benchmark counts it: a qid is right only when both of its sets are
    records = [{"type": s.type, "pair_id": s.pair_id, "correct": c, "choices": s.choices}
               for s, c in zip(samples, [True, True, True, False, None, None, True])]  # fmt: skip
    summary = summarize(records)["counterfactual_easy"]
    assert summary["pairs"] == 2 and summary["paired_accuracy"] == 50.0  # q-4's lone half is no pair
    assert summary["accuracy"] == 80.0


def test_causalvqa_test_set_reads_unlabelled_and_a_wrong_header_is_named(tmp_path):
    touch(tmp_path, "a.mp4")
    file = tmp_path / "test_metadata.csv"
    write_causal(file, [causal_rows()[2]])
    samples = read_questions(file, report=lambda m: None)
    assert [s.answer for s in samples] == [None, None] and summarize([]) == {}
    file.write_text("qid,question\nq,What?\n")
    messages = []
    with pytest.raises(UserError):
        read_causalvqa(file, report=messages.append)
    assert "missing CausalVQA columns" in messages[0]


def test_read_questions_picks_the_layout(tmp_path):
    touch(tmp_path, "v.mp4")
    ours = tmp_path / "qa.jsonl"
    ours.write_text(json.dumps({"video": "v.mp4", "question": "Q?", "answer": "a"}) + "\n")
    assert detect_layout(ours) == "jsonl" and read_questions(ours)[0].answer == "a"
    with pytest.raises(UserError, match="layout must be"):
        read_questions(ours, layout="mvp")
