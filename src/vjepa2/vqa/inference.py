"""Answers from a VQA model: choices scored by likelihood, open answers generated.

Multiple choice: every choice is appended to the prompt as the answer and scored by log p(choice +
end token | prompt, video), the sum over its tokens; the highest wins. The video is encoded once
and its tokens repeated for each choice. Open questions: greedy (or sampled) generation through
``transformers``' ``generate`` on the spliced input embeddings, stopped by the end token.
"""

from __future__ import annotations

import torch

from vjepa2.models.precision import autocast
from vjepa2.vqa.data import QASample
from vjepa2.vqa.model import VQAModel, answer_logprob
from vjepa2.vqa.prompts import Prompts, collate


def _features(
    tokens: dict | None, samples: list[QASample], repeats: list[int], device
) -> torch.Tensor | None:
    """Encoder tokens of each sample's video, repeated ``repeats[i]`` times: (sum repeats, N, D)."""
    if tokens is None:
        return None
    rows = [tokens[str(s.video)] for s, r in zip(samples, repeats) for _ in range(r)]
    return torch.stack(rows).to(device)


@torch.no_grad()
def choice_logprobs(
    model: VQAModel,
    prompts: Prompts,
    samples: list[QASample],
    tokens: dict | None,
    dtype: str = "fp32",
    batch_size: int = 16,
) -> list[list[float]]:
    """log p(choice | prompt, video) of every choice of every (multiple-choice) sample.
    tokens: {video path: encoder tokens (N, D)}, None for a text-only model."""
    device = model.lm.get_input_embeddings().weight.device
    scores: list[list[float]] = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        sequences = []
        for s in chunk:
            prompt = prompts.prompt_ids(s.question, s.choices)
            sequences += [(prompt, prompts.answer_ids(choice)) for choice in s.choices]
        batch = collate(sequences, prompts.tokenizer.pad_token_id).to(device)
        features = _features(tokens, chunk, [len(s.choices) for s in chunk], device)
        with autocast(device, dtype):
            logp = answer_logprob(model(batch, features), batch.labels).tolist()
        for s in chunk:
            scores.append(logp[: len(s.choices)])
            logp = logp[len(s.choices) :]
    return scores


@torch.no_grad()
def generate(
    model: VQAModel,
    prompts: Prompts,
    question: str,
    features: torch.Tensor | None,
    max_new_tokens: int = 32,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    streamer=None,
    dtype: str = "fp32",
) -> str:
    """The model's answer to ``question`` about the video whose encoder tokens are ``features``
    (1, N, D) (None: text only); ``streamer`` (e.g. ``transformers.TextStreamer``) gets tokens as
    they come. Stops at the end token or after ``max_new_tokens``."""
    device = model.lm.get_input_embeddings().weight.device
    batch = collate([(prompts.prompt_ids(question), [])], prompts.tokenizer.pad_token_id).to(device)
    tokenizer = prompts.tokenizer
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_p": top_p} if do_sample else {"do_sample": False}
    )
    with autocast(device, dtype):
        embeds = model.embed(batch.input_ids, features)
        out = model.lm.generate(
            inputs_embeds=embeds,
            attention_mask=batch.attention_mask,
            max_new_tokens=max_new_tokens,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            streamer=streamer,
            **sampling,
        )
    # With inputs_embeds only, generate returns the new tokens alone (no prompt ids to echo).
    return tokenizer.decode(out[0], skip_special_tokens=True).strip()
