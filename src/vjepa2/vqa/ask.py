"""``vjepa2 vqa ask VIDEO "question"``: one answer from a VQA model, streamed to the terminal.

Greedy by default (``--sample`` draws with temperature and top-p); generation stops at the end
token. With ``--choices a,b,c`` the choices are scored by likelihood instead and each is printed
with its probability (normalized over the choices), the best first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from vjepa2.config import opt
from vjepa2.errors import MissingPathError, UserError
from vjepa2.models.precision import DEVICE_HELP, VQA_DTYPE_HELP
from vjepa2.runtime.process import Process
from vjepa2.vqa.data import QASample
from vjepa2.vqa.inference import choice_logprobs, generate
from vjepa2.vqa.lm import require_transformers
from vjepa2.vqa.pipeline import VideoQA


@dataclass
class VQAAskConfig:
    words: list[str] = opt(
        [], help='VIDEO "question" (a text-only model takes the question alone)', positional=True
    )
    model: str = opt("runs/vqa/model", help="VQA model folder (`vjepa2 vqa train` writes <run.out>/model)")
    choices: list[str] = opt([], help="score these answers by likelihood instead of generating (e.g. yes,no)")
    max_new_tokens: int = opt(32, help="longest answer generated", min=1)
    sample: bool = opt(False, help="sample the answer (temperature, top_p) instead of greedy decoding")
    temperature: float = opt(1.0, help="sampling temperature (with --sample)")
    top_p: float = opt(
        1.0, help="nucleus sampling: keep the smallest set of tokens of this total probability"
    )
    seed: int = opt(0, help="seed of the sampling")
    device: str = opt("auto", help=DEVICE_HELP)
    dtype: str = opt("auto", help=f"precision of the encoder and the LM: {VQA_DTYPE_HELP}")


def split_words(words: list[str], video: bool) -> tuple[Path | None, str]:
    """(video path, question) from the positional words; a text-only model ignores a video."""
    has_file = len(words) > 1 and Path(words[0]).is_file()
    if not video:
        if not words:
            raise UserError('give a question: vjepa2 vqa ask "question" (this model is text only)')
        return None, " ".join(words[1:] if has_file else words)
    if len(words) < 2:
        raise UserError('give a video and a question: vjepa2 vqa ask VIDEO "question"')
    if not has_file:
        raise MissingPathError(f"{words[0]}: no such video")
    return Path(words[0]), " ".join(words[1:])


def run_vqa_ask(cfg: VQAAskConfig) -> int:
    with Process(cfg.device, cfg.dtype, inference=True) as proc:
        return answer(cfg, str(proc.device), proc.dtype)


def answer(cfg: VQAAskConfig, device: str, dtype: str) -> int:
    transformers = require_transformers()
    qa = VideoQA.load(cfg.model, device)
    video, question = split_words(cfg.words, qa.video)
    features = qa.video_features(video, dtype) if video else None
    if cfg.choices:
        sample = QASample(video, question, cfg.choices[0], list(cfg.choices))
        tokens = {str(video): features[0]} if features is not None else None
        logp = choice_logprobs(qa.model, qa.prompts, [sample], tokens, dtype)[0]
        top = max(logp)
        weights = [math.exp(v - top) for v in logp]
        for choice, w in sorted(zip(cfg.choices, weights), key=lambda cw: -cw[1]):
            print(f"{choice}\t{w / sum(weights):.3f}")
        return 0
    torch.manual_seed(cfg.seed)
    streamer = transformers.TextStreamer(qa.tokenizer, skip_prompt=True, skip_special_tokens=True)
    generate(qa.model, qa.prompts, question, features, cfg.max_new_tokens, cfg.sample, cfg.temperature, cfg.top_p,
             streamer, dtype)  # fmt: skip
    return 0
