"""The VQA model pieces: prompts and the placeholder splice, the answer-only loss, the projectors,
fitting a small QA set, generation stopping at the end token, the JSONL reader."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from vjepa2.errors import UserError  # noqa: E402
from vjepa2.vqa.data import QASample, normalize, read_qa  # noqa: E402
from vjepa2.vqa.inference import choice_logprobs, generate  # noqa: E402
from vjepa2.vqa.lm import EOS_TOKEN, build_tiny_lm, train_tokenizer, video_token_id  # noqa: E402
from vjepa2.vqa.model import VQAModel, answer_logprob, answer_loss, splice  # noqa: E402
from vjepa2.vqa.projector import Projector, ProjectorConfig  # noqa: E402
from vjepa2.vqa.prompts import IGNORE, Prompts, collate, question_text  # noqa: E402

CHOICES = ["red", "green", "blue", "yellow"]
QUESTION = "What colour is it?"


@pytest.fixture(scope="module")
def tokenizer():
    texts = [question_text(QUESTION, CHOICES), "Is it there?", *CHOICES, "yes", "no"] * 3
    return train_tokenizer(texts, vocab_size=320)


def tiny_model(tokenizer, kind="mlp", num_tokens=6, in_dim=12, seed=0):
    torch.manual_seed(seed)
    cfg = ProjectorConfig(kind=kind, in_dim=in_dim, out_dim=32, num_tokens=num_tokens, num_queries=3)
    lm = build_tiny_lm(tokenizer, dim=32, layers=1, heads=2, seed=seed)
    return VQAModel(Projector(cfg), lm, video_token_id(tokenizer))


def test_prompt_has_k_placeholders_and_answer_ends_with_the_end_token(tokenizer):
    prompts = Prompts(tokenizer, num_visual=5)
    ids = prompts.prompt_ids(QUESTION, CHOICES)
    placeholder = video_token_id(tokenizer)
    where = [i for i, t in enumerate(ids) if t == placeholder]
    assert len(where) == 5 and where == list(range(where[0], where[0] + 5))  # one contiguous run
    assert "Options: red, green, blue, yellow." in tokenizer.decode(ids)
    assert prompts.answer_ids("red")[-1] == tokenizer.convert_tokens_to_ids(EOS_TOKEN)
    text_only = Prompts(tokenizer, num_visual=5, video=False).prompt_ids(QUESTION)
    assert placeholder not in text_only
    with pytest.raises(UserError, match="placeholders"):
        prompts.prompt_ids("what is <video> here?")


def test_collate_pads_left_and_labels_only_the_answer(tokenizer):
    prompts = Prompts(tokenizer, num_visual=4)
    long = (prompts.prompt_ids(QUESTION, CHOICES), prompts.answer_ids("yellow"))
    short = (prompts.prompt_ids("Is it there?"), prompts.answer_ids("no"))
    batch = collate([long, short], tokenizer.pad_token_id)
    L = len(long[0]) + len(long[1])
    assert batch.input_ids.shape == (2, L)
    pad = L - len(short[0]) - len(short[1])
    assert batch.attention_mask[0].all() and batch.attention_mask[1, :pad].sum() == 0
    assert batch.attention_mask[1, pad:].all()
    assert batch.position_ids[1, pad:].tolist() == list(range(L - pad))
    for row, (_, answer) in enumerate([long, short]):
        labelled = (batch.labels[row] != IGNORE).nonzero().flatten().tolist()
        assert labelled == list(range(L - len(answer), L))  # the answer and its end token only
        assert batch.labels[row, labelled].tolist() == answer
    assert batch.keep == max(len(long[1]), len(short[1])) + 1


def test_splice_puts_visual_tokens_at_the_placeholders_in_order(tokenizer):
    placeholder = video_token_id(tokenizer)
    ids = torch.tensor([[5, placeholder, placeholder, 7, 8], [placeholder, placeholder, 9, 9, 9]])
    embeds = torch.zeros(2, 5, 3)
    visual = torch.arange(12.0).view(2, 2, 3) + 1
    out = splice(embeds, ids, placeholder, visual)
    torch.testing.assert_close(out[0, 1:3], visual[0])
    torch.testing.assert_close(out[1, 0:2], visual[1])
    assert out[0, [0, 3, 4]].abs().sum() == 0 and out[1, 2:].abs().sum() == 0
    with pytest.raises(UserError, match="placeholders"):
        splice(embeds, ids, placeholder, visual[:, :1])


def test_the_model_sees_the_video_only_through_the_placeholders(tokenizer):
    model = tiny_model(tokenizer).eval()
    prompts = Prompts(tokenizer, num_visual=6)
    batch = collate(
        [(prompts.prompt_ids(QUESTION, CHOICES), prompts.answer_ids("red"))] * 2, tokenizer.pad_token_id
    )
    features = torch.randn(1, 6, 12).expand(2, 6, 12)
    with torch.no_grad():
        logits = model(batch, features)
        assert logits.shape == (2, batch.keep, len(tokenizer))
        torch.testing.assert_close(logits[0], logits[1])  # same video, same prompt
        other = model(batch, torch.randn(2, 6, 12))
    assert not torch.allclose(logits, other)  # another video changes the answer's scores


def test_the_loss_is_the_cross_entropy_of_the_answer_tokens():
    logits = torch.randn(2, 3, 10)
    labels = torch.full((2, 6), IGNORE)
    labels[0, 4:] = torch.tensor([3, 1])
    labels[1, 5:] = torch.tensor([2])
    logp = logits.log_softmax(-1)
    # logits at the last 3 positions (3, 4, 5) predict the tokens at 4 and 5
    expected = -torch.stack([logp[0, 0, 3], logp[0, 1, 1], logp[1, 1, 2]]).mean()
    torch.testing.assert_close(answer_loss(logits, labels), expected)
    torch.testing.assert_close(
        answer_logprob(logits, labels), torch.stack([logp[0, 0, 3] + logp[0, 1, 1], logp[1, 1, 2]])
    )


@pytest.mark.parametrize("kind, tokens_out", [("mlp", 6), ("pooler", 3)])
def test_projector_shapes(kind, tokens_out):
    cfg = ProjectorConfig(kind=kind, in_dim=12, out_dim=32, num_tokens=6, num_queries=3)
    assert cfg.num_visual_tokens == tokens_out
    assert Projector(cfg)(torch.randn(2, 6, 12)).shape == (2, tokens_out, 32)
    with pytest.raises(UserError, match="projector must be"):
        ProjectorConfig(kind="linear")


def test_a_tiny_model_fits_a_small_qa_set_and_generation_stops_at_the_end_token(tokenizer):
    """Four 'videos' (random token sets), each with its own colour: only the video tells them apart."""
    torch.manual_seed(0)
    videos = {f"v{i}": torch.randn(6, 12) for i in range(4)}
    samples = [QASample(f"v{i}", QUESTION, CHOICES[i], CHOICES) for i in range(4)]
    model = tiny_model(tokenizer)
    prompts = Prompts(tokenizer, num_visual=6)
    sequences = [(prompts.prompt_ids(s.question, s.choices), prompts.answer_ids(s.answer)) for s in samples]
    batch = collate(sequences, tokenizer.pad_token_id)
    features = torch.stack([videos[s.video] for s in samples])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        loss = answer_loss(model(batch, features), batch.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    scores = choice_logprobs(model, prompts, samples, videos)
    assert [CHOICES[int(np.argmax(s))] for s in scores] == CHOICES
    # open answers: the generated text is the answer, and nothing after its end token
    lm_out = []
    for s in samples:
        text = generate(model, prompts, s.question, videos[s.video][None], max_new_tokens=20)
        lm_out.append(text)
    assert lm_out == CHOICES
    # stopped at the end token: the answer's tokens + the end token, not max_new_tokens
    feature = videos["v0"][None]
    embeds = model.embed(
        collate([(prompts.prompt_ids(QUESTION), [])], tokenizer.pad_token_id).input_ids, feature
    )
    out = model.lm.generate(inputs_embeds=embeds, max_new_tokens=20, do_sample=False,
                            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    assert out[0].tolist() == prompts.answer_ids("red")


def test_jsonl_reader_reports_and_skips_bad_lines(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    good = {"video": "a.mp4", "question": "Q?", "answer": "yes", "choices": ["yes", "no"], "pair_id": 3}
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({**good, "video": "missing.mp4"}),
        "",
        json.dumps({**good, "answer": "maybe"}),
        json.dumps(["a list"]),
        json.dumps({"video": "a.mp4", "question": "Open?", "answer": "The red one.", "type": "colour"}),
        json.dumps({**good, "question": ""}),
    ]
    file = tmp_path / "qa.jsonl"
    file.write_text("\n".join(lines) + "\n")
    messages = []
    samples = read_qa(file, report=messages.append)
    assert [s.question for s in samples] == ["Q?", "Open?"]
    assert samples[0].pair_id == "3" and samples[0].video == tmp_path / "a.mp4" and samples[0].type == "all"
    assert samples[1].choices is None and samples[1].type == "colour"
    bad = [m for m in messages if "skipped:" in m]
    assert [m.split(":")[1] for m in bad] == ["2", "3", "5", "6", "8"]
    assert "video not found" in bad[1] and "not one of the choices" in bad[2] and "'question'" in bad[4]
    assert messages[-1].endswith("2 questions read, 5 lines skipped")
    file.write_text("{bad\n")
    with pytest.raises(UserError, match="no valid question lines"):
        read_qa(file, report=lambda m: None)


def test_normalize():
    assert normalize("The Red one.") == normalize("red  ONE") == "red one"
    assert normalize("Up-left!") == "up-left"
