"""``VideoQA``: everything a question about a video needs, saved and loaded as one folder.

The frozen encoder and how it reads a video (``FeatureSpec``), the ``VQAModel`` (projector + LM),
the tokenizer and its prompts. ``save`` / ``load`` go through ``checkpoints.vqa_models`` (the
folder layout); the LM is stored in the folder when it was made or trained here, and named by path
when it is a frozen local LLM (a copy of 8B weights per run would help nobody).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from vjepa2.checkpoints import vqa_models as files
from vjepa2.errors import UserError
from vjepa2.models.model import VJEPA2
from vjepa2.vqa.features import PIXELS, FeatureSpec, clip_tokens
from vjepa2.vqa.lm import merge_lora, prepare_tokenizer, require_transformers, video_token_id
from vjepa2.vqa.model import VQAModel
from vjepa2.vqa.projector import Projector, ProjectorConfig
from vjepa2.vqa.prompts import Prompts


class VideoQA:
    """encoder: frozen VJEPA2 (None: text only; ``PIXELS``: the pixel-mean baseline); spec: how clips are read; model: projector + LM;
    tokenizer; system: the system turn of every prompt; lm_source: "" when the LM lives in the
    folder, else the local LLM folder it was loaded from (kept frozen)."""

    def __init__(
        self,
        encoder: VJEPA2 | str | None,
        spec: FeatureSpec,
        model: VQAModel,
        tokenizer,
        system: str = "",
        lm_source: str = "",
    ):
        self.encoder, self.spec, self.model, self.tokenizer = encoder, spec, model, tokenizer
        self.system, self.lm_source = system, lm_source
        num_visual = model.projector.cfg.num_visual_tokens if model.projector is not None else 0
        self.prompts = Prompts(tokenizer, num_visual, video=self.video, system=system)

    @property
    def video(self) -> bool:
        """False for the text-only baseline (no projector, no encoder)."""
        return self.model.projector is not None

    @property
    def device(self) -> torch.device:
        return self.model.lm.get_input_embeddings().weight.device

    def video_features(self, path: str | Path, dtype: str = "fp32") -> torch.Tensor | None:
        """Encoder tokens (1, N, D) of one video on the model's device (None for text only)."""
        if not self.video:
            return None
        return clip_tokens(path, self.encoder, self.spec, dtype).to(self.device)

    # -- the folder -------------------------------------------------------------------------------
    def save(self, directory: str | Path, store_lm: bool = True) -> Path:
        """Write the folder; store_lm False keeps only the path of a local LLM (frozen, or with
        LoRA adapters, which are stored)."""
        lora = hasattr(self.model.lm, "peft_config")
        store_lm = store_lm and not lora
        if not store_lm and not self.lm_source:
            raise ValueError("an LM made here must be stored in the folder")
        projector = self.model.projector
        meta = {
            "video": self.video,
            "projector": asdict(projector.cfg) if projector is not None else None,
            "features": self.spec.to_dict(),
            "system": self.system,
            "lm": "" if store_lm else str(Path(self.lm_source).resolve()),
            "lm_source": self.lm_source,
            "encoder": PIXELS if self.encoder == PIXELS else "",
        }
        encoder = self.encoder.encoder if isinstance(self.encoder, VJEPA2) else None
        lm = self.model.lm if store_lm else None
        adapter = self.model.lm if lora else None
        return files.save_vqa(directory, meta, self.tokenizer, projector, encoder, lm, adapter)

    @classmethod
    def load(cls, directory: str | Path, device="cpu", lm_dtype: torch.dtype = torch.float32) -> VideoQA:
        """A VQA folder (``save``), everything in eval mode on ``device``."""
        transformers = require_transformers()
        meta = files.read_meta(directory)
        tokenizer = prepare_tokenizer(files.read_tokenizer(directory))
        lm_dir = files.lm_folder(directory, meta)
        if not (lm_dir / "config.json").is_file():
            raise UserError(f"{directory}: its language model {lm_dir} is missing")
        lm = transformers.AutoModelForCausalLM.from_pretrained(lm_dir, dtype=lm_dtype)
        if meta.get("lora"):
            lm = merge_lora(lm, Path(directory) / meta["lora"])
        projector = None
        if meta["video"]:
            projector = Projector(ProjectorConfig(**meta["projector"]))
            projector.load_state_dict(files.read_projector_state(directory))
        model = VQAModel(projector, lm, video_token_id(tokenizer)).to(device).eval()
        encoder = files.read_encoder(directory, device) if meta["video"] else None
        if meta.get("encoder") == PIXELS:
            encoder = PIXELS
        spec = FeatureSpec(**meta["features"])
        return cls(encoder, spec, model, tokenizer, meta.get("system", ""), meta.get("lm_source", ""))
