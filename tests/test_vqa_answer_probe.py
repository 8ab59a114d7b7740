"""The answer probe (the projector's warm start): its vocabulary and targets, its loss against a
brute-force cross-entropy per type, and `vqa train` with a warm start: the probe steps move the
projector and leave the LM as it was, the LM steps follow, and a killed run resumes exactly."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from vjepa2.checkpoints.loading import load_encoder  # noqa: E402
from vjepa2.checkpoints.training import read_training_state  # noqa: E402
from vjepa2.config import load_config  # noqa: E402
from vjepa2.data.video import write_video  # noqa: E402
from vjepa2.vqa.answer_probe import AnswerHeads, answer_targets, answer_vocabulary  # noqa: E402
from vjepa2.vqa.data import QASample  # noqa: E402
from vjepa2.vqa.pipeline import VideoQA  # noqa: E402
from vjepa2.vqa.train import VQATrainConfig, run_vqa_train  # noqa: E402

DIRECTIONS = ["left", "right", "up"]


def sample(answer, kind, choices=None):
    return QASample(video=None, question="?", answer=answer, choices=choices, type=kind)


def test_vocabulary_holds_choices_and_answers_per_type_and_skips_single_answer_types():
    samples = [
        sample("left", "direction", DIRECTIONS),
        sample("yes", "collision", ["yes", "no"]),
        sample("3", "counting"),  # open, and the only answer of its type: no head
        sample("no", "collision", ["yes", "no"]),
    ]
    vocab = answer_vocabulary(samples)
    assert vocab == {"collision": ["no", "yes"], "direction": ["left", "right", "up"]}
    targets = answer_targets(samples, vocab)
    assert targets.tolist() == [[1, 0], [0, 1], [-1, -1], [0, 0]]


def test_the_loss_is_the_mean_cross_entropy_of_each_rows_type_head():
    torch.manual_seed(0)
    vocab = {"a": ["x", "y"], "b": ["p", "q", "r"]}
    heads = AnswerHeads(vocab, num_visual=3, dim=4)
    visual = torch.randn(5, 3, 4)
    targets = torch.tensor([[0, 1], [1, 2], [-1, -1], [1, 0], [0, 0]])
    flat = heads.norm(visual.flatten(1))
    expected = [F.cross_entropy(heads.heads[t](flat[i : i + 1]), targets[i, 1:]) for i, (t, _) in enumerate(targets.tolist()) if t >= 0]  # fmt: skip
    assert torch.allclose(heads.loss(visual, targets), torch.stack(expected).mean(), atol=1e-6)
    assert 0.0 <= heads.accuracy(visual, targets) <= 1.0


@pytest.fixture(scope="module")
def qa_file(tmp_path_factory):
    """Eight 4-frame videos whose brightness tells the answer of two question types."""
    folder = tmp_path_factory.mktemp("vqa")
    lines = []
    for i in range(8):
        frames = np.full((4, 32, 32, 3), 40 + 200 * (i % 2), dtype=np.uint8)
        write_video(folder / f"v{i}.mp4", frames, fps=4.0)
        lines.append({"video": f"v{i}.mp4", "question": "Bright?", "answer": ["no", "yes"][i % 2],
                      "choices": ["yes", "no"], "type": "bright"})  # fmt: skip
        lines.append({"video": f"v{i}.mp4", "question": "Which way?", "answer": DIRECTIONS[i % 3],
                      "choices": DIRECTIONS, "type": "direction"})  # fmt: skip
    path = folder / "train.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def config(qa_file, out, *extra) -> VQATrainConfig:
    return load_config(VQATrainConfig, None, overrides(qa_file, out, *extra))


def overrides(qa_file, out, *extra) -> list[str]:
    """The tiny run's key=value settings (also given on the command line by test_kill_resume)."""
    return [
        f"train={qa_file}",
        "encoder=random:tiny",
        "clip.num_frames=4",
        "clip.crop=32",
        "model.projector=mlp",
        "model.lm_dim=32",
        "model.lm_layers=1",
        "model.lm_heads=2",
        "model.vocab_size=300",
        "model.probe_steps=4",
        "schedule.warmup_steps=1",
        "schedule.constant_steps=2",
        "schedule.cooldown_steps=1",
        f"run.out={out}",
        "run.batch_size=4",
        "run.checkpoint_every=2",
        "run.threads=1",
        *extra,
    ]


def weights(path) -> dict:
    """{"<module>.<key>": tensor} of the trained modules in a training checkpoint."""
    state = read_training_state(path)
    names = ("lm", "projector", "answer_heads")
    return {f"{n}.{k}": v.clone() for n in names if n in state for k, v in state[n].items()}


def test_warm_start_moves_the_projector_only_then_the_lm_and_resumes(qa_file, tmp_path):
    run_vqa_train(config(qa_file, tmp_path / "a", "run.stop_after=2"))
    first = weights(tmp_path / "a" / "latest.pt")
    run_vqa_train(config(qa_file, tmp_path / "a", "run.stop_after=2"))
    warm = weights(tmp_path / "a" / "latest.pt")  # step 4: the end of the warm start
    lm = [k for k in warm if k.startswith("lm.")]
    projector = [k for k in warm if k.startswith("projector.")]
    assert lm and projector and any(k.startswith("answer_heads.") for k in warm)
    assert all(torch.equal(first[k], warm[k]) for k in lm)  # no LM step in the warm start
    assert not all(torch.equal(first[k], warm[k]) for k in projector)
    run_vqa_train(config(qa_file, tmp_path / "a"))  # resumed to the end: 4 + 4 steps
    done = weights(tmp_path / "a" / "latest.pt")
    assert not all(torch.equal(warm[k], done[k]) for k in lm)
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert max(r.get("step", 0) for r in log) == 8

    run_vqa_train(config(qa_file, tmp_path / "b", "run.log_every=1"))  # the same run in one go
    again = weights(tmp_path / "b" / "latest.pt")
    assert all(torch.allclose(done[k], again[k], atol=1e-6) for k in done)

    # stopped in the LM's phase (after the warm start) and resumed: the LM's optimizer state
    # comes back too, so the losses after the stop are those of the run in one go
    run_vqa_train(config(qa_file, tmp_path / "c", "run.stop_after=6", "run.log_every=1"))
    run_vqa_train(config(qa_file, tmp_path / "c", "run.log_every=1"))
    assert losses(tmp_path / "c") == losses(tmp_path / "b") and len(losses(tmp_path / "b")) == 8


def losses(out) -> list:
    return [(r["step"], r["loss"]) for r in map(json.loads, (out / "log.jsonl").read_text().splitlines())]


def test_text_only_runs_no_warm_start(qa_file, tmp_path):
    run_vqa_train(config(qa_file, tmp_path / "t", "model.video=false"))
    state = weights(tmp_path / "t" / "latest.pt")
    assert not any(k.startswith(("answer_heads.", "projector.")) for k in state)
    log = [json.loads(line) for line in (tmp_path / "t" / "log.jsonl").read_text().splitlines()]
    assert max(r.get("step", 0) for r in log) == 4  # the LM's 4 steps only


def test_a_bf16_run_saves_the_encoder_it_was_given_in_fp32(qa_file, tmp_path):
    """The tokens are made in bf16, but the encoder saved with the model keeps its fp32 weights."""
    run_vqa_train(config(qa_file, tmp_path / "bf16", "run.dtype=bf16", "schedule.constant_steps=0"))
    saved = VideoQA.load(tmp_path / "bf16" / "model", "cpu").encoder.encoder.state_dict()
    given = load_encoder("random:tiny", seed=0, predictor=False).encoder.state_dict()
    assert saved.keys() == given.keys()
    assert all(saved[k].dtype == torch.float32 and torch.equal(saved[k], given[k]) for k in given)
