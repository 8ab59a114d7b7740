"""The VQA model: projector + causal LM, the visual tokens spliced into the prompt's embeddings.

    frozen encoder tokens (B, N, D_enc) -> projector -> visual tokens (B, K, D_lm)
    prompt ids (B, L) with K placeholders per row -> LM input embeddings (B, L, D_lm)
    splice: the embeddings at the placeholders replaced, in order, by the visual tokens
    LM(inputs_embeds, attention_mask, position_ids) -> logits at the last ``keep`` positions

The loss is next-token cross-entropy on the answer tokens only (labels are ``IGNORE`` elsewhere:
the prompt, the visual tokens and the padding teach nothing). The same log-probabilities, summed
over an answer, score the choices of a multiple-choice question.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vjepa2.errors import UserError
from vjepa2.vqa.prompts import IGNORE, Batch


def splice(
    embeds: torch.Tensor, input_ids: torch.Tensor, placeholder: int, visual: torch.Tensor
) -> torch.Tensor:
    """embeds (B, L, H) with the positions where input_ids (B, L) == placeholder replaced by the
    rows of visual (B, K, H), in order; every row must hold exactly K placeholders."""
    is_visual = input_ids == placeholder  # (B, L)
    counts = is_visual.sum(1)
    if not bool((counts == visual.shape[1]).all()):
        raise UserError(f"each prompt needs {visual.shape[1]} video placeholders, found {counts.tolist()}")
    # masked_scatter fills the masked places in row-major order: row b's K places, left to right,
    # take visual[b, 0..K-1] (visual is contiguous (B, K, H), so its flat order is the same).
    mask = is_visual.unsqueeze(-1).expand_as(embeds)
    return embeds.masked_scatter(mask, visual.to(embeds.dtype).contiguous())


class VQAModel(nn.Module):
    """projector (None: the text-only baseline) and a ``transformers`` causal LM."""

    def __init__(self, projector: nn.Module | None, lm: nn.Module, placeholder: int):
        super().__init__()
        self.projector = projector
        self.lm = lm
        self.placeholder = placeholder

    def embed(self, input_ids: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        """input ids (B, L) and encoder tokens (B, N, D_enc) or None -> input embeddings (B, L, H)."""
        is_visual = input_ids == self.placeholder
        # The placeholder may lie outside the LM's table (a token added to a real LLM's tokenizer):
        # look up a valid id there, the splice overwrites it anyway.
        embeds = self.lm.get_input_embeddings()(input_ids.masked_fill(is_visual, 0))
        if features is None:
            if bool(is_visual.any()):
                raise UserError("the prompt has video placeholders but no video features were given")
            return embeds
        if self.projector is None:
            raise UserError("this model was trained without video (text only)")
        return splice(embeds, input_ids, self.placeholder, self.projector(features))

    def forward(self, batch: Batch, features: torch.Tensor | None = None) -> torch.Tensor:
        """logits (B, batch.keep, V) at the last batch.keep positions (float32)."""
        embeds = self.embed(batch.input_ids, features)
        out = self.lm(
            inputs_embeds=embeds,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            logits_to_keep=batch.keep,
            use_cache=False,
        )
        return out.logits.float()


def _targets(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The labels that logits (B, k, V) of the last k positions predict: (B, k - 1)."""
    return labels[:, labels.shape[1] - logits.shape[1] + 1 :]


def answer_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the answer tokens: logits (B, k, V), labels (B, L)."""
    targets = _targets(logits, labels)
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), targets.flatten(), ignore_index=IGNORE)


def answer_logprob(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log p(answer | prompt) per row, summed over its tokens and the end token: (B,)."""
    targets = _targets(logits, labels)
    logp = logits[:, :-1].log_softmax(-1)
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (B, k - 1)
    return (picked * (targets != IGNORE)).sum(1)
