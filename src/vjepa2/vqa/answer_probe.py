"""The answer probe: a warm start that teaches the projector what the questions ask about.

Why it exists: a language model made here from scratch learns the answers' prior from the text in a
few steps (counting's "3" is right 90% of the time, whatever the video), and from then on the
gradient that reaches the projector through the LM is ~100 times smaller: the visual tokens stay
noise and the LM never learns to read them. A probe on the visual tokens has no prior to fall back
on, so it pulls the features the answers depend on into them; the LM, trained next, then finds
visual tokens that already tell the answer apart, and attends to them.

    visual tokens (B, K, D_lm) -> flatten (B, K * D_lm) -> one linear head per question type
    -> logits over that type's answers (its choices and answers seen in training)

The probe's loss is the cross-entropy of the right answer among its type's answers. It is a
training device only: the heads are not part of the saved model (inference asks the LM).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vjepa2.vqa.data import QASample


def answer_vocabulary(samples: Sequence[QASample]) -> dict[str, list[str]]:
    """{question type: its answers (the choices and answers seen, sorted)}, types with two or more."""
    seen: dict[str, set[str]] = {}
    for s in samples:
        seen.setdefault(s.type, set()).update([s.answer, *(s.choices or [])])
    return {kind: sorted(answers) for kind, answers in sorted(seen.items()) if len(answers) > 1}


def answer_targets(samples: Sequence[QASample], vocab: dict[str, list[str]]) -> torch.Tensor:
    """(N, 2) long: (type index, answer index) per sample; (-1, -1) where its type has no head."""
    kinds = list(vocab)
    rows = []
    for s in samples:
        if s.type in vocab:
            rows.append((kinds.index(s.type), vocab[s.type].index(s.answer)))
        else:
            rows.append((-1, -1))
    return torch.tensor(rows, dtype=torch.long).reshape(-1, 2)


class AnswerHeads(nn.Module):
    """One linear head per question type over the flattened visual tokens (see the module docstring)."""

    def __init__(self, vocab: dict[str, list[str]], num_visual: int, dim: int):
        super().__init__()
        self.vocab = vocab
        self.norm = nn.LayerNorm(num_visual * dim)
        self.heads = nn.ModuleList(nn.Linear(num_visual * dim, len(answers)) for answers in vocab.values())

    def per_type(self, visual: torch.Tensor, targets: torch.Tensor):
        """(logits (n, answers of the type), answer indices (n,)) for each type among the rows;
        visual (B, K, D), targets (B, 2) long. Rows without a head are left out."""
        flat = self.norm(visual.flatten(1).float())  # (B, K * D)
        for kind, head in enumerate(self.heads):
            rows = targets[:, 0] == kind
            if bool(rows.any()):
                yield head(flat[rows]), targets[rows, 1]

    def loss(self, visual: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the rows with a head: visual (B, K, D), targets (B, 2) long."""
        total, count = visual.new_zeros((), dtype=torch.float32), 0
        for logits, answers in self.per_type(visual, targets):
            total = total + F.cross_entropy(logits, answers, reduction="sum")
            count += len(answers)
        return total / max(count, 1)

    @torch.no_grad()
    def accuracy(self, visual: torch.Tensor, targets: torch.Tensor) -> float:
        """Share of the rows with a head whose answer the probe ranks first."""
        right, count = 0, 0
        for logits, answers in self.per_type(visual, targets):
            right += int((logits.argmax(-1) == answers).sum())
            count += len(answers)
        return right / max(count, 1)
