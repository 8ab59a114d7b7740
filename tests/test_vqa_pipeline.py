"""The whole VQA model saved and loaded as one folder, and that folder read back by plain
``transformers`` (the LM, the tokenizer, the encoder)."""

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from vjepa2.checkpoints.loading import random_model  # noqa: E402
from vjepa2.data.video import write_video  # noqa: E402
from vjepa2.models.held import held_dtype  # noqa: E402
from vjepa2.vqa.data import QASample  # noqa: E402
from vjepa2.vqa.features import FeatureSpec, clips  # noqa: E402
from vjepa2.vqa.inference import choice_logprobs  # noqa: E402
from vjepa2.vqa.lm import build_tiny_lm, train_tokenizer, video_token_id  # noqa: E402
from vjepa2.vqa.model import VQAModel  # noqa: E402
from vjepa2.vqa.pipeline import VideoQA  # noqa: E402
from vjepa2.vqa.projector import Projector, ProjectorConfig  # noqa: E402
from vjepa2.vqa.prompts import collate  # noqa: E402

CHOICES = ["left", "right"]


def small_qa(video: bool = True) -> VideoQA:
    tokenizer = train_tokenizer(["Which way does it move?\nOptions: left, right.", *CHOICES] * 3, 300)
    lm = build_tiny_lm(tokenizer, dim=32, layers=1, heads=2, seed=3)
    spec = FeatureSpec(num_frames=4, fps=4.0, crop=32)
    encoder, projector = None, None
    if video:
        encoder = random_model("tiny", seed=1, predictor=False, depth=1, frames=4, crop=32).eval()
        torch.manual_seed(2)
        tokens = (4 // 2) * (32 // 16) ** 2  # tubelets x patches
        cfg = ProjectorConfig(kind="pooler", in_dim=192, out_dim=32, num_tokens=tokens, num_queries=3)
        projector = Projector(cfg).eval()
    model = VQAModel(projector, lm, video_token_id(tokenizer)).eval()
    return VideoQA(encoder, spec, model, tokenizer, system="Answer in one word.")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("videos") / "clip.mp4"
    write_video(path, rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8), fps=4.0)
    return path


def scores(qa: VideoQA, video) -> list[float]:
    features = qa.video_features(video)
    tokens = {str(video): features[0]} if features is not None else None
    sample = QASample(video, "Which way does it move?", "left", CHOICES)
    return choice_logprobs(qa.model, qa.prompts, [sample], tokens)[0]


@pytest.mark.parametrize("with_video", [True, False])
def test_save_load_round_trip_gives_the_same_answers(tmp_path, video, with_video):
    qa = small_qa(with_video)
    qa.save(tmp_path / "model")
    again = VideoQA.load(tmp_path / "model")
    assert again.video == with_video and again.system == "Answer in one word."
    assert again.spec == qa.spec and again.prompts.num_visual == qa.prompts.num_visual
    if with_video:
        torch.testing.assert_close(again.video_features(video), qa.video_features(video))
        for key, value in qa.model.projector.state_dict().items():
            torch.testing.assert_close(again.model.projector.state_dict()[key], value)
    assert np.allclose(scores(again, video), scores(qa, video), atol=1e-5)
    qa.save(tmp_path / "model")  # a second save replaces the folder whole
    assert not (tmp_path / "model.tmp").exists() and not (tmp_path / "model.old").exists()


def test_the_folder_is_read_by_plain_transformers(tmp_path, video):
    qa = small_qa()
    folder = qa.save(tmp_path / "model")
    lm = transformers.AutoModelForCausalLM.from_pretrained(folder / "lm").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder / "tokenizer")
    prompt = qa.prompts.prompt_ids("Which way does it move?", CHOICES)
    chat = [{"role": "user", "content": "<video>\nWhich way does it move?\nOptions: left, right."}]
    text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|user|><video>") and text.endswith("</s><|assistant|>")
    ids = torch.tensor([[i for i in prompt if i != qa.prompts.placeholder] + qa.prompts.answer_ids("left")])
    with torch.no_grad():
        batch = collate([(ids[0].tolist(), [])], tokenizer.pad_token_id)
        ours = qa.model.lm(input_ids=batch.input_ids).logits
        torch.testing.assert_close(lm(input_ids=ids).logits, ours)
    encoder = transformers.VJEPA2Model.from_pretrained(folder / "encoder").eval()
    frames = clips([video], qa.spec).load(video, 0)[0]  # the clip as the model reads it: (1, T, C, H, W)
    with torch.no_grad():
        theirs = encoder(pixel_values_videos=frames, skip_predictor=True).last_hidden_state
    torch.testing.assert_close(theirs, qa.video_features(video), atol=1e-4, rtol=0)


def test_lora_adapters_are_saved_beside_a_local_llm_and_merged_on_load(tmp_path, video):
    pytest.importorskip("peft")
    from vjepa2.vqa.lm import add_lora, load_local_lm

    base = small_qa()
    base.model.lm.save_pretrained(tmp_path / "llm")
    base.tokenizer.save_pretrained(tmp_path / "llm")
    lm, tokenizer = load_local_lm(tmp_path / "llm")
    lm = add_lora(lm, rank=2, alpha=4.0, dropout=0.0)
    trainable = {n for n, p in lm.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)  # the LLM's own weights stay frozen
    with torch.no_grad():  # adapters start as a no-op (B = 0): move them so that they matter
        for n, p in lm.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    model = VQAModel(base.model.projector, lm, video_token_id(tokenizer)).eval()
    qa = VideoQA(base.encoder, base.spec, model, tokenizer, lm_source=str(tmp_path / "llm"))
    folder = qa.save(tmp_path / "model")
    assert (folder / "lora" / "adapter_config.json").is_file() and not (folder / "lm").exists()
    again = VideoQA.load(folder)
    assert np.allclose(scores(again, video), scores(qa, video), atol=1e-4)
    assert not np.allclose(scores(again, video), scores(base, video), atol=1e-3)  # the adapters count


def test_pixel_mean_baseline_tokens_and_folder(tmp_path, video):
    from vjepa2.vqa.features import PIXELS, PixelMeans

    views = torch.zeros(1, 1, 1, 4, 3, 32, 32)  # (B, M, S, T, C, H, W)
    views[..., 2:, 0, 16:, :16] = 1.0  # red in the bottom-left patch of the last tubelet
    tokens = PixelMeans().encode(views)[0, 0]  # (T/2 * 2 * 2, C), (t, h, w) order
    assert tokens.shape == (8, 3)
    assert (
        tokens[6].tolist() == [1.0, 0.0, 0.0] and tokens[:6].abs().sum() == 0 and tokens[7].abs().sum() == 0
    )
    qa = small_qa()
    cfg = ProjectorConfig(kind="mlp", in_dim=3, out_dim=32, num_tokens=8)
    qa = VideoQA(PIXELS, qa.spec, VQAModel(Projector(cfg), qa.model.lm, qa.model.placeholder), qa.tokenizer)
    again = VideoQA.load(qa.save(tmp_path / "model"))
    assert again.encoder == PIXELS and not (tmp_path / "model" / "encoder").exists()
    assert again.video_features(video).shape == (1, 8, 3)
    assert np.allclose(scores(again, video), scores(qa, video), atol=1e-5)


def test_video_features_hold_the_frozen_encoder_in_bf16_and_fp32_is_untouched(video):
    qa = small_qa()
    reference = qa.encoder.encoder.blocks[0].mlp.fc1.weight.detach().clone()
    fp32 = qa.video_features(video, "fp32")
    assert held_dtype(qa.encoder) == "fp32" and torch.equal(
        qa.encoder.encoder.blocks[0].mlp.fc1.weight, reference
    )
    clip = clips([video], qa.spec).load(video, 0)  # (1, 1, T, C, H, W)
    with torch.no_grad():
        assert torch.equal(fp32, qa.encoder.encode(clip[0]))  # fp32: the plain forward, bit for bit
    bf16 = qa.video_features(video, "bf16")
    assert (
        held_dtype(qa.encoder) == "bf16"
        and qa.encoder.encoder.blocks[0].mlp.fc1.weight.dtype == torch.bfloat16
    )
    assert (
        bf16.dtype == torch.float32 and torch.nn.functional.cosine_similarity(bf16, fp32, dim=-1).min() > 0.98
    )


def test_int8_holds_the_encoder_quantized_and_the_answers_follow_fp32(tmp_path, video, capsys):
    """``--dtype int8`` for vqa ask / eval: the frozen encoder's Linear layers in int8 (CPU), the
    LM in fp32; the choices' probabilities stay those of fp32 within int8's error."""
    from vjepa2.cli import main

    qa = small_qa()
    fp32 = qa.video_features(video, "fp32")
    int8 = qa.video_features(video, "int8")
    assert held_dtype(qa.encoder) == "int8"
    assert torch.nn.functional.cosine_similarity(int8, fp32, dim=-1).min() > 0.99
    small_qa().save(tmp_path / "model")
    printed = {}
    for dtype in ("fp32", "int8"):
        args = ["vqa", "ask", str(video), "Which way does it move?", "--model", str(tmp_path / "model")]
        assert main([*args, "--choices", "left,right", "--dtype", dtype, "--device", "cpu"]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        printed[dtype] = dict((word, float(p)) for word, p in (line.split("\t") for line in lines))
    assert printed["int8"].keys() == printed["fp32"].keys() == set(CHOICES)
    assert all(abs(printed["int8"][c] - printed["fp32"][c]) < 0.02 for c in CHOICES)
