"""Every released V-JEPA 2 checkpoint, under the names a user would guess.

One row per released file (under ``BASE_URL``) or ``transformers`` repository on the Hugging Face
hub. The first name of a row is the one ``vjepa2 weights list`` shows; the others are what users
type after reading the reference README (``vitl``, ``vjepa2-vitl``), its torch.hub entries
(``vjepa2_vit_large``) or its file names (``vitl.pt``). Names are matched exactly, then ignoring
case where that is unambiguous (``vjepa2.1-vitg`` and ``vjepa2.1-vitG`` are two models).

Sizes and SHA-256 digests are filled in where known; none of the digests is published, so the
cache records one at the first download and checks it on every later load (``cache.py``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

BASE_URL = "https://dl.fbaipublicfiles.com/vjepa2"
HF_URL = "https://huggingface.co"
KINDS = ("encoder", "ac", "probe", "hf")
HF_PREFIX = "hf:"  # hf:<org>/<name> names any Hugging Face repository, listed here or not


@dataclass(frozen=True)
class ProbeInput:
    """How a released probe's input was made, from the reference's eval configs
    (facebookresearch/vjepa2 configs/eval/<vitl|vitg-384>/<task>.yaml): the encoder (a name of
    this table), clips of ``num_frames`` frames every ``frame_step`` frames, ``num_segments``
    clips a video whose tokens are joined into one sequence, ``num_views`` spatial crops at test,
    ``crop`` pixels; ``layers``: the blocks read (each through the final norm; the Diving48 probes
    read four, joined along tokens), () for the last. The EK100 probes have none: they are read by
    the anticipation protocol, not as classifiers of clips."""

    encoder: str
    num_frames: int
    frame_step: int
    num_segments: int
    crop: int
    layers: tuple[int, ...] = ()
    num_views: int = 3


@dataclass(frozen=True)
class Weights:
    """One released checkpoint.

    names: what a user may type; the first is the canonical one.
    kind: "encoder" (a pretraining file: encoder + predictor), "ac" (encoder + action-conditioned
        predictor), "probe" (attentive probes, reference layout) or "hf" (a ``transformers`` repo).
    file: its path under ``BASE_URL`` (also under a mirror and in the cache); repo: the hub id.
    preset: the encoder preset of the same architecture (``random:<name>`` needs no download).
    size: bytes, where known; sha256: the pinned digest, where known.
    probe_input: a probe's input (``ProbeInput``).
    """

    names: tuple[str, ...]
    kind: str
    what: str
    version: str = "2.0"
    file: str = ""
    repo: str = ""
    preset: str = ""
    size: int | None = None
    sha256: str | None = None
    probe_input: ProbeInput | None = None

    @property
    def name(self) -> str:
        return self.names[0]

    @property
    def url(self) -> str:
        return f"{BASE_URL}/{self.file}" if self.file else f"{HF_URL}/{self.repo}"


def _pretrained(names: tuple[str, ...], stem: str, what: str, preset: str, **fields) -> Weights:
    """A pretraining file ``<stem>.pt`` at the top of ``BASE_URL``, also named by its file name."""
    kind = fields.pop("kind", "encoder")
    names = tuple(dict.fromkeys((*names, stem, f"{stem}.pt")))
    return Weights(names, kind, what, file=f"{stem}.pt", preset=preset, **fields)


def _probe(short: str, stem: str, what: str, probe_input: ProbeInput | None = None) -> Weights:
    names = tuple(dict.fromkeys((short, stem, f"{stem}.pt")))
    return Weights(names, "probe", what, file=f"evals/{stem}.pt", probe_input=probe_input)


def _hf(repo: str, what: str, preset: str) -> Weights:
    return Weights((repo, repo.split("/", 1)[1]), "hf", what, repo=repo, preset=preset)


V21 = dict(version="2.1")
TABLE: tuple[Weights, ...] = (
    # V-JEPA 2 (README "V-JEPA 2 Pretrained Checkpoints"; torch.hub vjepa2_vit_*)
    _pretrained(("vitl", "vjepa2-vitl", "vjepa2_vit_large"), "vitl", "V-JEPA 2 ViT-L/16, 256 px, 300M", "vitl"),
    _pretrained(("vith", "vjepa2-vith", "vjepa2_vit_huge"), "vith", "V-JEPA 2 ViT-H/16, 256 px, 600M", "vith"),
    _pretrained(("vitg", "vjepa2-vitg", "vjepa2_vit_giant"), "vitg", "V-JEPA 2 ViT-g/16, 256 px, 1B", "vitg"),
    _pretrained(("vitg-384", "vjepa2-vitg-384", "vjepa2_vit_giant_384"), "vitg-384", "V-JEPA 2 ViT-g/16, 384 px, 1B",
                "vitg-384"),
    # V-JEPA 2-AC: the ViT-g encoder and the action-conditioned predictor (DROID)
    _pretrained(("vjepa2-ac-vitg", "ac-vitg", "vjepa2-ac", "vjepa2_ac_vit_giant"), "vjepa2-ac-vitg",
                "V-JEPA 2-AC: ViT-g/16 + action-conditioned predictor", "vitg", kind="ac"),
    # V-JEPA 2.1 (B and L distilled from G); the hub's entries are vjepa2_1_vit_*_384
    _pretrained(("vjepa2.1-vitb", "vjepa2.1-vitb-384", "vjepa2_1_vit_base_384"), "vjepa2_1_vitb_dist_vitG_384",
                "V-JEPA 2.1 ViT-B/16, 384 px, 80M (distilled)", "vitb-2.1", **V21),
    _pretrained(("vjepa2.1-vitl", "vjepa2.1-vitl-384", "vjepa2_1_vit_large_384"), "vjepa2_1_vitl_dist_vitG_384",
                "V-JEPA 2.1 ViT-L/16, 384 px, 300M (distilled)", "vitl-2.1", **V21),
    _pretrained(("vjepa2.1-vitg", "vjepa2.1-vitg-384", "vjepa2_1_vit_giant_384"), "vjepa2_1_vitg_384",
                "V-JEPA 2.1 ViT-g/16, 384 px, 1B", "vitg-2.1", **V21),
    _pretrained(("vjepa2.1-vitG", "vjepa2.1-vitG-384", "vjepa2_1_vit_gigantic_384"), "vjepa2_1_vitG_384",
                "V-JEPA 2.1 ViT-G/16, 384 px, 2B", "vitG-2.1", size=30_238_058_912, **V21),  # size: a third party's
    # Attentive probes (README "Evaluation Attentive Probes"): {'classifiers': [...]} files
    _probe("ssv2-vitl", "ssv2-vitl-16x2x3", "probe: SSv2 on ViT-L, 16 frames (top-1 73.7%)",
           ProbeInput("vitl", 16, 4, 2, 256)),
    _probe("diving48-vitl", "diving48-vitl-256", "probe: Diving48 on ViT-L (top-1 89.0%)",
           ProbeInput("vitl", 32, 2, 4, 256, layers=(17, 19, 21, 23))),
    _probe("ek100-vitl", "ek100-vitl-256", "probe: EK100 anticipation on ViT-L (32.7 R@5)"),
    _probe("ssv2-vitg-384", "ssv2-vitg-384-64x2x3", "probe: SSv2 on ViT-g 384, 64 frames (top-1 77.3%)",
           ProbeInput("vitg-384", 64, 2, 2, 384)),
    _probe("diving48-vitg-384", "diving48-vitg-384-32x4x3", "probe: Diving48 on ViT-g 384, 32 frames (top-1 90.2%)",
           ProbeInput("vitg-384", 32, 2, 4, 384, layers=(24, 29, 34, 39))),
    _probe("ek100-vitg-384", "ek100-vitg-384", "probe: EK100 anticipation on ViT-g 384 (39.7 R@5)"),
    # transformers repositories (VJEPA2Model; the -ssv2 / -diving48 ones VJEPA2ForVideoClassification)
    _hf("facebook/vjepa2-vitl-fpc64-256", "VJEPA2Model: V-JEPA 2 ViT-L, 256 px", "vitl"),
    _hf("facebook/vjepa2-vith-fpc64-256", "VJEPA2Model: V-JEPA 2 ViT-H, 256 px", "vith"),
    _hf("facebook/vjepa2-vitg-fpc64-256", "VJEPA2Model: V-JEPA 2 ViT-g, 256 px", "vitg"),
    _hf("facebook/vjepa2-vitg-fpc64-384", "VJEPA2Model: V-JEPA 2 ViT-g, 384 px", "vitg-384"),
    _hf("facebook/vjepa2-vitl-fpc16-256-ssv2", "classifier: ViT-L + SSv2 probe", "vitl"),
    _hf("facebook/vjepa2-vitl-fpc32-256-diving48", "classifier: ViT-L + Diving48 probe", "vitl"),
    _hf("facebook/vjepa2-vitg-fpc64-384-ssv2", "classifier: ViT-g 384 + SSv2 probe", "vitg-384"),
    _hf("facebook/vjepa2-vitg-fpc32-384-diving48", "classifier: ViT-g 384 + Diving48 probe", "vitg-384"),
)  # fmt: skip


def find(name: str) -> Weights | None:
    """The row named ``name`` (exactly, else ignoring case where one row matches), a
    ``hf:<org>/<name>`` repository, or None."""
    name = str(name)
    if name.startswith(HF_PREFIX) and "/" in name:
        repo = name[len(HF_PREFIX) :]
        listed = find(repo)
        return listed if listed else Weights((name,), "hf", "Hugging Face repository", repo=repo)
    for row in TABLE:
        if name in row.names:
            return row
    folded = [row for row in TABLE if name.casefold() in {n.casefold() for n in row.names}]
    return folded[0] if len(folded) == 1 else None


def all_names() -> list[str]:
    return [n for row in TABLE for n in row.names]


def close_names(name: str, n: int = 3) -> list[str]:
    """Names a mistyped ``name`` may have meant."""
    return difflib.get_close_matches(str(name), all_names(), n=n, cutoff=0.6)
