"""IntPhys 2 put to a QA model, scored as the official notebook scores a multimodal LLM.

Each video of a split folder (``evals.physics.intphys2`` reads it as released) becomes one
yes/no question: the yes/no prompt of facebookresearch/IntPhys2 ``IntPhys2_transformers.py``
(its third prompt; quoted below as data), choices "Yes" and "No", answer "Yes" for a possible
video. The model's pick is read by the notebook's rule (``answer_from_response``: "yes" -> possible,
"no" -> impossible, neither -> wrong) and counted by ``per_video_accuracy``; on HeldOut (no labels)
the answers go to the leaderboard file (``filename``, ``model_answer``).
"""

from __future__ import annotations

from pathlib import Path

from vjepa2.evals.physics.intphys2 import answer_from_response, per_video_accuracy, read_intphys2
from vjepa2.evals.physics.videos import PhysicsVideo
from vjepa2.vqa.data import QASample

PROMPT = (
    "Analyze the physics simulations in the video. Determine if the video depicts object behavior that is "
    "consistent with Earth's physical laws. Ignore simulation quality and playback speed. CRITICAL OUTPUT "
    "INSTRUCTION: Your response must be only yes or no indicating whether the object behavior is consistent "
    "with Earth's physical laws: yes: Object behavior is consistent with Earth's physical laws. no: Object "
    "behavior is not consistent with Earth's physical laws. Please provide your analysis in the required "
    "format. Do not include any other text, explanation, context, preamble, or punctuation before or after "
    "the answer."
)  # IntPhys2_transformers.py, prompt3 (the notebook reads its answers with label_pred_yes_no)
CHOICES = ["Yes", "No"]


def is_split_folder(path: Path) -> bool:
    return path.is_dir() and ((path / "metadata.csv").is_file() or (path / "Videos").is_dir())


def read_intphys2_questions(path: str | Path) -> list[QASample]:
    """One question per video of an IntPhys 2 split folder (its metadata.csv and Videos/)."""
    questions = []
    for v in read_intphys2(Path(path), Path(path).name):
        answer = None if v.possible is None else CHOICES[0 if v.possible else 1]
        meta = v.meta | {"benchmark": "intphys2", "possible": v.possible, "withheld": answer is None}
        questions.append(QASample(v.path.absolute(), PROMPT, answer, list(CHOICES), None, v.kind, "", meta))
    return questions


def as_videos(records: list[dict]) -> tuple[list[PhysicsVideo], dict[str, bool]]:
    """The records back as videos, and {video: answered possible} of those whose answer reads."""
    videos, answers = [], {}
    for r in records:
        meta = r.get("meta") or {}
        videos.append(
            PhysicsVideo(
                Path(r["video"]), meta.get("filename", ""), meta.get("possible"), r["type"], meta=meta
            )
        )
        read = answer_from_response(r.get("prediction", ""))
        if read != 2:
            answers[r["video"]] = read == 1
    return videos, answers


def intphys2_scores(records: list[dict]) -> dict:
    """The official per-video accuracy {breakdown: {subset: {accuracy, correct, videos}}}."""
    videos, answers = as_videos(records)
    return per_video_accuracy(videos, answers)
