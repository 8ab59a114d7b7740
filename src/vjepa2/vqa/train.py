"""``vjepa2 vqa train``: align a frozen V-JEPA 2 encoder with a causal language model.

    video -> frozen encoder (each video encoded once, cached) -> tokens (N, D_enc)
          -> projector -> K visual tokens spliced into "<video>\\n<question>" -> LM -> answer

The loss is next-token cross-entropy on the answer tokens only. What trains: the projector, and
the LM unless it is frozen (``model.train_lm``: ``auto`` trains the small LM made here from scratch,
which knows nothing yet, and keeps a local LLM given with ``--lm`` frozen: projector-only
alignment, the first stage of the recipe). Baselines run through the same command:
``model.video=false`` (text only: the video removed from every prompt) and
``--encoder random:<checkpoint>`` (a random encoder of the same shape).

On the run scaffold (``train.run``): ``<out>/config.yaml``, ``log.jsonl``, ``latest.pt`` with
exact resume (a step's questions depend only on the seed and the step). At the end ``<out>/model``
(the whole VQA model, ``vjepa2 vqa eval`` / ``ask`` read it) and, with ``--val``,
``results.json`` and ``predictions.jsonl`` on the held-out questions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from vjepa2.checkpoints.loading import RANDOM_PREFIX, load_encoder
from vjepa2.config import opt
from vjepa2.errors import UserError
from vjepa2.models.precision import autocast
from vjepa2.train.run import Run, RunConfig, Trained
from vjepa2.train.schedules import LRScheduleConfig, set_lr, warmup_constant_decay
from vjepa2.vqa.answer_probe import AnswerHeads, answer_targets, answer_vocabulary
from vjepa2.vqa.data import QASample, read_qa
from vjepa2.vqa.evaluate import score, table, write_results
from vjepa2.vqa.features import PIXEL_CROP, PIXELS, FeatureSpec, video_tokens
from vjepa2.vqa.lm import add_lora, build_tiny_lm, lm_width, load_local_lm, train_tokenizer, video_token_id
from vjepa2.vqa.model import VQAModel, answer_loss
from vjepa2.vqa.pipeline import VideoQA
from vjepa2.vqa.projector import Projector, ProjectorConfig
from vjepa2.vqa.prompts import collate, question_text

TRAIN_LM = ("auto", "full", "none", "lora")


@dataclass
class ClipConfig:
    num_frames: int = opt(16, help="frames per clip given to the encoder", min=1)
    fps: float = opt(4.0, help="frames per second sampled from the videos")
    crop: int = opt(0, help="input size in pixels (0: the encoder's pretraining crop)")
    layers: list[int] = opt(
        [], help="encoder blocks whose outputs are joined along tokens (empty: the output)"
    )
    cache_dir: str = opt(
        "", help="encoder-token cache folder, shared by runs on the same encoder (default: <out>/features)"
    )
    workers: int = opt(1, help="video-decoding worker processes")


@dataclass
class VQAModelConfig:
    video: bool = opt(True, help="false: the text-only baseline (no video in the prompts, no encoder)")
    projector: str = opt(
        "mlp",
        help="mlp (2-layer MLP on every encoder token) or pooler (attentive pooler, num_queries learned queries, then the MLP)",
    )
    num_queries: int = opt(16, help="pooler: learned queries = visual tokens per clip", min=1)
    pooler_depth: int = opt(
        1, help="pooler: depth - 1 self-attention blocks, then the cross-attention", min=1
    )
    projector_hidden: int = opt(0, help="hidden width of the projector's MLP (0: the LM's width)")
    lm_dim: int = opt(128, help="the LM made here: width", min=8)
    lm_layers: int = opt(2, help="the LM made here: blocks", min=1)
    lm_heads: int = opt(4, help="the LM made here: attention heads", min=1)
    vocab_size: int = opt(
        512, help="the LM made here: BPE vocabulary trained on the training text (bytes included)", min=300
    )
    train_lm: str = opt(
        "auto",
        help="auto (full for the LM made here, none for --lm), full, none (projector only) or lora (--lm only: LoRA adapters, needs peft)",
    )
    lora_rank: int = opt(8, help="lora: rank of the adapters", min=1)
    lora_alpha: float = opt(16.0, help="lora: scale numerator (the update is scaled by alpha / rank)")
    lora_dropout: float = opt(0.05, help="lora: dropout on the adapters' input")
    system: str = opt("", help="system turn put before every question (empty: none)")
    probe_steps: int = opt(
        600,
        help="warm start: train the projector with answer heads (one per question type) on the visual tokens for this many steps before the LM sees them (video models only; see vqa/answer_probe.py)",
        min=0,
    )
    probe_lr: float = opt(1e-3, help="warm start: constant learning rate of the probe steps")
    probe_weight: float = opt(
        0.0, help="after the warm start: weight of the answer-probe loss added to the LM's loss"
    )


@dataclass
class VQAOptimConfig:
    weight_decay: float = opt(0.01, help="AdamW weight decay")
    betas: list[float] = opt([0.9, 0.98], help="AdamW betas")
    grad_clip: float = opt(1.0, help="clip the gradient norm to this (0: no clipping)")


def vqa_schedule() -> LRScheduleConfig:
    return LRScheduleConfig(
        start_lr=1e-4, lr=1e-3, final_lr=1e-5, warmup_steps=50, constant_steps=1150, cooldown_steps=300
    )


@dataclass
class VQARunConfig(RunConfig):
    eval_batch_size: int = opt(16, help="questions per forward pass when scoring --val", min=1)


def vqa_run() -> VQARunConfig:
    return VQARunConfig(out="runs/vqa", batch_size=32, checkpoint_every=250, log_every=25, parallel="none")


@dataclass
class VQATrainConfig:
    train: str = opt(
        "", help="training questions: JSONL lines {video, question, answer, choices?, pair_id?, type?}"
    )
    val: str = opt(
        "", help="held-out questions (JSONL), scored after training into results.json (empty: none)"
    )
    encoder: str = opt(
        "random:tiny",
        help="frozen encoder: a checkpoint vjepa2.load reads, random:<preset> or random:<checkpoint> (random weights of its shape), or pixels (the pixel-mean baseline)",
    )
    encoder_key: str = opt("target_encoder", help="encoder entry of a pretraining checkpoint")
    lm: str = opt(
        "",
        help="local transformers causal-LM folder (its tokenizer and chat template too); empty: a small LM made here",
    )
    clip: ClipConfig = opt(ClipConfig, help="how videos become encoder tokens")
    model: VQAModelConfig = opt(VQAModelConfig, help="projector, language model, what trains")
    optim: VQAOptimConfig = opt(VQAOptimConfig, help="AdamW")
    schedule: LRScheduleConfig = opt(help="warmup-constant-decay learning rate", default_factory=vqa_schedule)
    run: VQARunConfig = opt(help="run folder, steps, batch, precision, checkpoints", default_factory=vqa_run)


@dataclass
class Prepared:
    """Everything training reads, built once: the model, the questions as token ids, the tokens."""

    qa: VideoQA
    train: list[QASample]
    val: list[QASample]
    sequences: list[tuple[list[int], list[int]]]  # (prompt ids, answer ids) per training question
    tokens: dict | None  # {video path: encoder tokens (N, D)}; None for text only
    trained: nn.ModuleDict = field(default_factory=nn.ModuleDict)  # what the optimizer updates
    probe_targets: torch.Tensor | None = None  # (N, 2) (type, answer) per training question
    probe_steps: int = 0  # the warm start's steps (0 for text only), before the LM's schedule
    lm_steps: int = 0  # the LM's steps (the schedule's, or run.steps)
    lm_trainable: list = field(default_factory=list)  # the LM's parameters that train (LoRA: adapters)

    def stage(self, step: int) -> None:
        """Freeze the LM during the warm start: a frozen parameter gets no gradient and no optimizer
        state, and a checkpoint is resumed with the LM frozen or training as it was saved (``Run.
        restore`` stages before it loads the optimizer state)."""
        for param in self.lm_trainable:
            param.requires_grad_(step >= self.probe_steps)

    @property
    def total_steps(self) -> int:
        return self.probe_steps + self.lm_steps


def training_text(samples: list[QASample]) -> list[str]:
    """What the tokenizer made here learns from: every question as prompted, every answer."""
    return [question_text(s.question, s.choices) for s in samples] + [s.answer for s in samples]


def build_lm(cfg: VQATrainConfig, train: list[QASample], run: Run):
    """(LM, tokenizer, lm_source, train the LM?) for the config."""
    mode = cfg.model.train_lm
    if mode not in TRAIN_LM:
        raise UserError(f"model.train_lm must be one of {TRAIN_LM}, got {mode!r}")
    m = cfg.model
    if cfg.lm:
        train_lm = mode in ("full", "lora")
        # A frozen base (none, lora) can be stored in bf16; fully trained weights stay fp32 masters.
        lm_dtype = torch.bfloat16 if run.dtype == "bf16" and mode != "full" else torch.float32
        lm, tokenizer = load_local_lm(cfg.lm, lm_dtype)
        if mode == "lora":
            lm = add_lora(lm, m.lora_rank, m.lora_alpha, m.lora_dropout)
        return lm, tokenizer, cfg.lm, train_lm
    if mode in ("none", "lora"):
        raise UserError(f"model.train_lm={mode} freezes an untrained LM: give a trained one with --lm")
    tokenizer = train_tokenizer(training_text(train), m.vocab_size)
    lm = build_tiny_lm(tokenizer, m.lm_dim, m.lm_layers, m.lm_heads, cfg.run.seed)
    return lm, tokenizer, "", True


def encoder_and_tokens(cfg: VQATrainConfig, run: Run, samples: list[QASample]):
    """(frozen encoder, FeatureSpec, {path: tokens}) for video models; (None, spec, None) for text only."""
    spec = FeatureSpec(cfg.clip.num_frames, cfg.clip.fps, cfg.clip.crop, list(cfg.clip.layers))
    if not cfg.model.video:
        return None, spec, None
    if cfg.encoder == PIXELS:
        encoder, spec.crop = PIXELS, spec.crop or PIXEL_CROP
    else:
        options = {"predictor": False} if cfg.encoder.startswith(RANDOM_PREFIX) else {}  # not used
        encoder = load_encoder(cfg.encoder, str(run.device), cfg.run.seed, cfg.encoder_key, **options)
        spec.crop = spec.crop or encoder.encoder.cfg.crop
    cache = cfg.clip.cache_dir or run.out / "features"
    # the encoder is saved with the model afterwards: its fp32 weights stay (bf16 runs under autocast)
    tokens = video_tokens(
        [s.video for s in samples], encoder, spec, run.dtype, cache, 16, cfg.clip.workers, hold_weights=False
    )
    return encoder, spec, tokens


def prepare(cfg: VQATrainConfig, run: Run) -> Prepared:
    train = read_qa(cfg.train)
    val = read_qa(cfg.val) if cfg.val else []
    encoder, spec, tokens = encoder_and_tokens(cfg, run, train + val)
    if tokens is not None:
        train, val = ([s for s in part if str(s.video) in tokens] for part in (train, val))
        if not train:
            raise UserError(f"{cfg.train}: none of its videos could be read")
    lm, tokenizer, lm_source, train_lm = build_lm(cfg, train, run)
    projector = None
    if cfg.model.video:
        m, some = cfg.model, next(iter(tokens.values()))
        pcfg = ProjectorConfig(
            kind=m.projector,
            in_dim=some.shape[1],
            out_dim=lm_width(lm),
            hidden=m.projector_hidden,
            num_tokens=some.shape[0],
            num_queries=m.num_queries,
            pooler_depth=m.pooler_depth,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.run.seed + 1)
            projector = Projector(pcfg)
    model = VQAModel(projector, lm, video_token_id(tokenizer)).to(run.device)
    if cfg.model.train_lm != "lora":  # peft has frozen the base and left its adapters trainable
        lm.requires_grad_(train_lm)
    qa = VideoQA(encoder, spec, model, tokenizer, cfg.model.system, lm_source)
    sequences = [
        (qa.prompts.prompt_ids(s.question, s.choices), qa.prompts.answer_ids(s.answer)) for s in train
    ]
    trained = nn.ModuleDict({"projector": projector} if projector is not None else {})
    if train_lm:
        trained["lm"] = lm
    p = Prepared(
        qa, train, val, sequences, tokens, trained, lm_steps=cfg.run.steps or cfg.schedule.total_steps
    )
    p.lm_trainable = [param for param in lm.parameters() if param.requires_grad] if train_lm else []
    if projector is not None and (cfg.model.probe_steps or cfg.model.probe_weight):
        vocab = answer_vocabulary(train)
        with torch.random.fork_rng(devices=[]):  # seeded alone: resumed runs make the same heads
            torch.manual_seed(cfg.run.seed + 2)
            heads = AnswerHeads(vocab, projector.cfg.num_visual_tokens, projector.cfg.out_dim)
        trained["answer_heads"] = heads.to(run.device)
        p.probe_targets, p.probe_steps = answer_targets(train, vocab), cfg.model.probe_steps
    return p


def train_step(cfg: VQATrainConfig, run: Run, step: int, p: Prepared, optimizer) -> dict:
    """One AdamW step on run.batch_size * run.accum questions drawn for this step: the answer
    probe alone during the warm start (the LM gets no gradient, so AdamW leaves it), then the LM."""
    settings = cfg.run
    warm = step < p.probe_steps
    lr = cfg.model.probe_lr if warm else warmup_constant_decay(step - p.probe_steps, cfg.schedule)
    set_lr(optimizer, lr)
    rng = np.random.default_rng([settings.seed, step])  # the questions depend on the step only
    draws = rng.integers(0, len(p.sequences), settings.batch_size * settings.accum)
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for micro in range(settings.accum):
        picked = draws[micro * settings.batch_size : (micro + 1) * settings.batch_size]
        features = None
        if p.tokens is not None:
            features = torch.stack([p.tokens[str(p.train[i].video)] for i in picked]).to(run.device)
        with autocast(run.device, run.dtype):
            if warm:  # no prompts: the LM is not run
                loss = probe_loss(p, features, picked, run.device)
            else:
                batch = collate([p.sequences[i] for i in picked], p.qa.tokenizer.pad_token_id).to(run.device)
                loss = answer_loss(p.qa.model(batch, features), batch.labels)
                if cfg.model.probe_weight:
                    loss = loss + cfg.model.probe_weight * probe_loss(p, features, picked, run.device)
        (loss / settings.accum).backward()
        total += loss.item() / settings.accum
    if cfg.optim.grad_clip > 0:
        nn.utils.clip_grad_norm_(p.trained.parameters(), cfg.optim.grad_clip)
    optimizer.step()
    return {"loss": total, "lr": lr}


def probe_loss(p: Prepared, features: torch.Tensor, picked, device) -> torch.Tensor:
    """The answer probe's cross-entropy on the projected visual tokens of the picked questions."""
    visual = p.qa.model.projector(features)  # (B, K, D_lm)
    return p.trained["answer_heads"].loss(visual, p.probe_targets[torch.as_tensor(picked)].to(device))


def run_vqa_train(cfg: VQATrainConfig) -> int:
    if not cfg.train:
        raise UserError(
            "give the training questions with --train (a JSONL file; `vjepa2 worlds make-vqa` writes one)"
        )
    with Run("vqa train", cfg, cfg.run, parallel=("none",)) as run:
        p = prepare(cfg, run)
        optimizer = torch.optim.AdamW(
            p.trained.parameters(),
            lr=cfg.schedule.start_lr,
            betas=tuple(cfg.optim.betas),
            weight_decay=cfg.optim.weight_decay,
        )
        step = run.restore(p.trained, optimizer, stage=p.stage)
        run.start(step, p.total_steps)
        print(f"vqa train: {len(p.train)} questions, {len(p.val)} held out; trains {', '.join(p.trained)}")
        p.trained.train()
        step = run.loop(
            step,
            lambda step: train_step(cfg, run, step, p, optimizer),
            Trained(p.trained, optimizer),
            after_step=p.stage,
        )
        results = finish(cfg, run, p, step)
        run.finish(step, "model/", *results)
    return 0


def finish(cfg: VQATrainConfig, run: Run, p: Prepared, step: int) -> list[str]:
    """At the end of training: save the model and score the held-out questions."""
    if step < run.total:
        return []
    p.qa.model.eval()
    p.qa.save(run.out / "model", store_lm=not cfg.lm or "lm" in p.trained)
    if not p.val:
        return []
    summary, records = score(p.qa, p.val, run.dtype, cfg.run.eval_batch_size, tokens=p.tokens)
    write_results(
        run.out, summary, records, {"model": str(run.out / "model"), "data": cfg.val, "video": p.qa.video}
    )
    run.bar.write(table(summary))
    return ["results.json", "predictions.jsonl"]
