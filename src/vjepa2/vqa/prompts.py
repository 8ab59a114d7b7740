"""Chat-style prompts with a video placeholder, and batches of them for the language model.

A question becomes one user turn of the LM's chat template, ``<video>\\n<question>`` (with
``Options: a, b, c.`` appended for multiple choice), followed by the template's generation prompt;
the answer is the assistant's reply, its tokens then the end token. The single ``<video>`` token is
expanded to K copies (K: visual tokens per clip), which the model overwrites with the projected
visual tokens (``model.splice``). A text-only prompt (``video=False``) has no placeholder: the
baseline that shows what the question alone gives away.

Batches are padded on the left, so every sequence ends at the last position: the answer tokens of
all rows sit in the last few positions and the LM computes logits there only (``keep``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vjepa2.errors import UserError
from vjepa2.vqa.lm import VIDEO_TOKEN, video_token_id

IGNORE = -100  # label of a position that is not an answer token (cross_entropy's ignore_index)


def question_text(question: str, choices: list[str] | None = None) -> str:
    """The user's words: the question, and the options of a multiple-choice one."""
    return f"{question}\nOptions: {', '.join(choices)}." if choices else question


class Prompts:
    """Token ids of prompts and answers for one tokenizer. num_visual: K placeholders per clip;
    video: False for the text-only baseline; system: an optional system turn."""

    def __init__(self, tokenizer, num_visual: int, video: bool = True, system: str = ""):
        self.tokenizer, self.num_visual, self.video, self.system = tokenizer, num_visual, video, system
        self.placeholder = video_token_id(tokenizer)

    def prompt_ids(self, question: str, choices: list[str] | None = None) -> list[int]:
        """The chat prompt up to where the answer starts, the placeholder expanded to K copies."""
        text = question_text(question, choices)
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": f"{VIDEO_TOKEN}\n{text}" if self.video else text})
        chat = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = self.tokenizer(chat, add_special_tokens=False)["input_ids"]
        found = ids.count(self.placeholder)
        if found != (1 if self.video else 0):
            raise UserError(f"the prompt holds {found} video placeholders {VIDEO_TOKEN!r} (expected "
                            f"{int(self.video)}); does the question contain {VIDEO_TOKEN!r}? {question!r}")  # fmt: skip
        if not self.video:
            return ids
        at = ids.index(self.placeholder)
        return ids[:at] + [self.placeholder] * self.num_visual + ids[at + 1 :]

    def answer_ids(self, answer: str) -> list[int]:
        """The answer's tokens, then the end token (what generation has to produce to stop)."""
        return self.tokenizer(answer, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]


@dataclass
class Batch:
    """Left-padded sequences: input_ids, attention_mask (1 = token), position_ids (counting from
    each row's first token) and labels (answer tokens, IGNORE elsewhere), each (B, L) long;
    keep: logits needed at the last ``keep`` positions (the longest answer + 1)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    labels: torch.Tensor
    keep: int

    def to(self, device) -> Batch:
        tensors = (self.input_ids, self.attention_mask, self.position_ids, self.labels)
        return Batch(*(t.to(device) for t in tensors), self.keep)


def collate(sequences: list[tuple[list[int], list[int]]], pad_id: int) -> Batch:
    """(prompt ids, answer ids) pairs -> a left-padded ``Batch``."""
    length = max(len(p) + len(a) for p, a in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    labels = torch.full_like(ids, IGNORE)
    mask = torch.zeros_like(ids)
    for row, (prompt, answer) in enumerate(sequences):
        tokens = prompt + answer
        start = length - len(tokens)
        ids[row, start:] = torch.tensor(tokens)
        mask[row, start:] = 1
        if answer:
            labels[row, length - len(answer) :] = torch.tensor(answer)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    keep = max(len(a) for _, a in sequences) + 1
    return Batch(ids, mask, positions, labels, min(keep, length))
