"""Video-QA model folders, as ``vjepa2 vqa train`` writes them and ``vqa eval`` / ``vqa ask`` read them.

    vqa.json                  format "vjepa2-vqa": projector config, feature spec, prompt
                              settings, where the LM is ("lm", or the path of a local LLM folder)
    projector.safetensors     the projector (absent for the text-only baseline)
    encoder/                  the frozen encoder (absent for the text-only baseline): a V-JEPA 2.0
                              encoder in the ``transformers`` layout (``VJEPA2Model.from_pretrained``
                              reads it, its RoPE set for the crop the model was trained at), a 2.1
                              one in ours (transformers has no 2.1 class); ``vjepa2.load`` reads both
    lm/                       the causal LM, ``transformers`` layout, when it was made or trained
                              here (``AutoModelForCausalLM.from_pretrained("model/lm")`` reads it)
    lora/                     LoRA adapters (``peft`` layout) of a local LLM trained with
                              ``model.train_lm=lora``: the LLM stays where it is, named in "lm"
    tokenizer/                the tokenizer, ``transformers`` layout (video token, chat template)

So a ``transformers`` user reads everything but the projector with ``from_pretrained``, and the
projector is a plain safetensors file (``mlp.fc1/fc2``, ``pooler.*``; ``vqa.json`` holds its
shape). No pickle anywhere: safetensors and JSON (``transformers`` writes safetensors too). The folder is
written beside its destination and moved into place whole, so an interrupted save leaves the
previous one. This module knows the files, not the classes: ``vjepa2.vqa.pipeline`` builds the
model from what it reads.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from torch import nn

from vjepa2.checkpoints.files import atomic_save_file, read_json, read_safetensors, write_json
from vjepa2.checkpoints.hf import export_transformers
from vjepa2.checkpoints.loading import load
from vjepa2.checkpoints.ours import save_model
from vjepa2.errors import MissingPathError, UserError
from vjepa2.models.encoder import VideoEncoder
from vjepa2.models.model import VJEPA2

FORMAT = "vjepa2-vqa"
VERSION = 1
META_FILE = "vqa.json"
PROJECTOR_FILE = "projector.safetensors"
ENCODER_DIR, LM_DIR, LORA_DIR, TOKENIZER_DIR = "encoder", "lm", "lora", "tokenizer"


def save_vqa(
    directory: str | Path,
    meta: dict,
    tokenizer,
    projector: nn.Module | None = None,
    encoder: VideoEncoder | None = None,
    lm: nn.Module | None = None,
    adapter: nn.Module | None = None,
) -> Path:
    """Write a VQA folder. meta: JSON-able settings (``lm`` is set here when ``lm`` is given, else
    it must name a local LLM folder); lm: the LM to store in ``lm/`` (None: one kept elsewhere);
    adapter: a peft-wrapped LM whose LoRA adapters go to ``lora/``."""
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    meta = {"format": FORMAT, "version": VERSION, **meta}
    if lm is not None:
        meta["lm"] = LM_DIR
        lm.save_pretrained(tmp / LM_DIR)
    elif not meta.get("lm"):
        raise ValueError("give the LM to save or the folder it is kept in (meta['lm'])")
    if adapter is not None:
        adapter.save_pretrained(tmp / LORA_DIR)  # peft writes the adapters only
        meta["lora"] = LORA_DIR
    tokenizer.save_pretrained(tmp / TOKENIZER_DIR)
    if projector is not None:
        atomic_save_file(projector.state_dict(), tmp / PROJECTOR_FILE, {"format": FORMAT})
    if encoder is not None:
        save_encoder(encoder, tmp / ENCODER_DIR, meta.get("features", {}).get("crop") or None)
    write_json(meta, tmp / META_FILE)
    old = directory.with_name(directory.name + ".old")
    if directory.exists():
        shutil.rmtree(old, ignore_errors=True)
        directory.rename(old)
    tmp.rename(directory)
    shutil.rmtree(old, ignore_errors=True)
    return directory


def save_encoder(encoder: VideoEncoder, folder: Path, crop: int | None = None) -> None:
    """The encoder in the ``transformers`` layout when transformers has its class, else ours."""
    cfg = encoder.cfg
    if cfg.version == "2.0" and not cfg.rope_interleaved:
        export_transformers(VJEPA2(encoder), folder, crop_size=crop)
    else:
        save_model(VJEPA2(encoder), folder)


def read_meta(directory: str | Path) -> dict:
    """The settings of a VQA folder (``vqa.json``), checked to be ours."""
    directory = Path(directory)
    file = directory / META_FILE
    if not file.is_file():
        raise MissingPathError(
            f"{directory}: not a VQA model folder (no {META_FILE}; `vjepa2 vqa train` writes one)"
        )
    meta = read_json(file)
    if meta.get("format") != FORMAT:
        raise UserError(f"{file}: not a VQA model (format={meta.get('format')!r})")
    if meta.get("version", 0) > VERSION:
        raise UserError(f"{file}: written by a newer vjepa2 (version {meta['version']} > {VERSION})")
    return meta


def read_projector_state(directory: str | Path) -> dict[str, torch.Tensor] | None:
    file = Path(directory) / PROJECTOR_FILE
    return read_safetensors(file) if file.is_file() else None


def read_encoder(directory: str | Path, device="cpu") -> VJEPA2 | None:
    """The frozen encoder of a VQA folder (eval mode, no grad), None for a text-only model."""
    folder = Path(directory) / ENCODER_DIR
    return load(folder, device=device).requires_grad_(False) if folder.is_dir() else None


def lm_folder(directory: str | Path, meta: dict) -> Path:
    """Where the LM of a VQA folder is: its own ``lm/`` or the local LLM folder it names."""
    folder = Path(meta["lm"])
    return folder if folder.is_absolute() else Path(directory) / folder


def read_tokenizer(directory: str | Path):
    from transformers import AutoTokenizer

    folder = Path(directory) / TOKENIZER_DIR
    if not folder.is_dir():
        raise MissingPathError(f"{folder}: missing; a VQA folder keeps its tokenizer there")
    return AutoTokenizer.from_pretrained(folder)
