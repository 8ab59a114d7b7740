"""The configuration of ``vjepa2 pretrain``: every section of ``PretrainConfig``.

Alone in its module so that the data streams (``pretrain_data``) and the loop (``pretrain``) both
read it from below: the loop imports the streams, never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass

from vjepa2.config import opt
from vjepa2.data.shards.remote import NetworkConfig
from vjepa2.masks import MaskSpec, vjepa2_masks
from vjepa2.train.jepa21 import LossConfig
from vjepa2.train.run import RunConfig
from vjepa2.train.schedules import EMAConfig, LRScheduleConfig


@dataclass
class DataConfig:
    weights: list[float] = opt([], help="sampling weight of each source (default: equal)", min=0)
    num_frames: int = opt(16, help="frames per clip", min=1)
    crop: int = opt(256, help="crop size in pixels", min=1)
    fps: float = opt(4.0, help="frames per second sampled from the videos", above=0)
    workers: int = opt(2, help="DataLoader worker processes (0: load in the main process)")
    synthetic_dir: str = opt("", help="cache of generated videos (default: ~/.cache/vjepa2/synthetic-...)")
    synthetic_videos: int = opt(256, help="number of synthetic videos to generate when no source is given")
    synthetic_texture: float = opt(
        0.0, help="synthetic videos' background pattern contrast, levels (0: flat; see worlds make-videos)"
    )
    memory_mb: float = opt(
        0.0, help="decoded videos each loader process keeps in memory, MB (0: decode every clip)"
    )
    shuffle_buffer: int = opt(
        64, help="shard sources: samples each loader worker reads before emitting them shuffled", min=1
    )


@dataclass
class ImageConfig:
    """2.1: a batch of single images beside every micro-batch of clips (1-frame clips through the
    image tokenizer, "image" modality). The reference trains on ImageNet on half of its GPUs."""

    sources: list[str] = opt(
        [], help="folders or CSV indexes of images (a video gives one random frame); none: the clip sources"
    )
    batch_size: int = opt(0, help="images per process and micro-batch (0: no images)")
    crop: int = opt(0, help="image crop in pixels (0: data.crop)")
    masks: list[MaskSpec] = opt(
        [MaskSpec(num_blocks=10)], help="image mask generators (2.1: one, 10 blocks of 0.15 of a frame)"
    )


@dataclass
class ModelConfig:
    encoder_preset: str = opt(
        "vitl", help="encoder preset: tiny, small, vitl, vith, vitg; 2.1: tiny-2.1, vitl-2.1, ..."
    )
    encoder_overrides: dict = opt({}, help="EncoderConfig fields to change, e.g. {depth: 2}")
    predictor_preset: str = opt(
        "default", help="predictor preset: tiny, small, default (384 wide, 12 deep); 2.1: tiny-2.1, 2.1"
    )
    predictor_overrides: dict = opt({}, help="PredictorConfig fields to change")
    checkpointing: bool = opt(True, help="activation checkpointing per block (less memory, slower)")
    mask_index: int = opt(0, help="predictor mask token used for every generator (reference: 0)")
    init_from: str = opt("", help="training checkpoint to start from (weights + optimizer; the cooldown)")


@dataclass
class OptimConfig:
    weight_decay: float = opt(0.04, help="AdamW weight decay (not on biases and 1-D parameters)")
    betas: list[float] = opt([0.9, 0.999], help="AdamW betas")
    eps: float = opt(1e-8, help="AdamW epsilon")
    grad_clip: float = opt(0.0, help="clip the gradient norm to this (0: off, as V-JEPA 2; V-JEPA 1: 10)")


@dataclass
class CooldownConfig:
    num_frames: int = opt(0, help="frames per clip during the cooldown (0: keep data.num_frames)")
    crop: int = opt(0, help="crop size during the cooldown (0: keep data.crop)")
    batch_size: int = opt(0, help="per-process batch during the cooldown (0: keep run.batch_size)")
    image_batch_size: int = opt(0, help="images per process during the cooldown (0: keep images.batch_size)")


@dataclass
class PretrainRunConfig(RunConfig):
    compile: bool = opt(False, help="torch.compile the encoder, target encoder and predictor")


def pretrain_run() -> PretrainRunConfig:
    return PretrainRunConfig(out="runs/pretrain", batch_size=24, checkpoint_every=100, log_every=1, seed=239)


@dataclass
class PretrainConfig:
    sources: list[str] = opt(
        [],
        help="CSV indexes ('path label' lines) or folders of videos/images; none: synthetic videos",
        positional=True,
    )
    model: ModelConfig = opt(ModelConfig, help="encoder / predictor")
    data: DataConfig = opt(DataConfig, help="data sources and clips")
    network: NetworkConfig = opt(NetworkConfig, help="remote shard sources: timeouts and tries")
    masks: list[MaskSpec] = opt(vjepa2_masks(), help="mask generators (default: short + long range)")
    loss: LossConfig = opt(LossConfig, help="objective: the 2.0 or 2.1 recipe")
    images: ImageConfig = opt(ImageConfig, help="2.1: image batches mixed with the clips")
    optim: OptimConfig = opt(OptimConfig, help="AdamW")
    schedule: LRScheduleConfig = opt(LRScheduleConfig, help="warmup-constant-decay learning rate")
    ema: EMAConfig = opt(EMAConfig, help="target encoder EMA momentum")
    cooldown: CooldownConfig = opt(CooldownConfig, help="clip settings of the cooldown phase")
    run: PretrainRunConfig = opt(
        help="run folder, steps, batch, precision, checkpoints", default_factory=pretrain_run
    )
