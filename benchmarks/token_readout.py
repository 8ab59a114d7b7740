"""What an encoder's tokens say about the objects under them, against a random encoder of its shape.

    python benchmarks/token_readout.py runs/tiny-cpu/latest.pt [more encoders] [--clips 512]

A fast look (about a minute on 2 cores) at what the attentive-probe table (``probe_table.py``,
half an hour) can only show through three tasks. Synthetic-world clips are rendered straight at
the encoder's crop (no resizing, no codec), so every token covers a known 2-frame x patch x patch
square of the world. Each object whose centre lies in a token's square (and is at least half in
view, not behind the bar) gives that token three labels: its colour (4 classes; the tagged object
is white and left out), whether it is the tagged object, and its velocity (pixels per frame, the
object's displacement between the tubelet's two frames). Ridge read-outs fit on 3/4 of the clips
are scored on the rest: colour and tag top-1 %, velocity R^2. A random tiny ViT barely changes its
patch embedding, so its row is close to what a linear map of the raw tubelet gives; a pretrained
encoder that learned objects and their motion should beat it, on velocity above all (a 2-frame
displacement is not linear in pixels).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from vjepa2.data.transforms import normalize, to_clip
from vjepa2.evals.features import load_encoder
from vjepa2.worlds.render import covered_fraction
from vjepa2.worlds.sampling import SceneConfig
from vjepa2.worlds.scenes import TAGGED, sample_scene

RIDGE = (1.0, 10.0, 100.0, 1000.0)  # penalties tried; the best on the held-out clips is reported


def object_tokens(scene, crop: int, patch: int, tubelet: int) -> list[tuple[int, int, bool, float, float]]:
    """(token index, colour id, tagged, vx, vy) for every object centred in a token, in view."""
    positions = scene.positions * crop  # (T, N, 2) world units -> pixels
    grid = crop // patch
    bar = scene.occluder
    rows = []
    for t in range(len(positions) // tubelet):
        first, last = t * tubelet, (t + 1) * tubelet - 1
        centre = positions[first : last + 1].mean(0)  # (N, 2)
        velocity = (positions[last] - positions[first]) / max(1, last - first)
        for n, (x, y) in enumerate(centre):
            col, row = int(x // patch), int(y // patch)
            covered = covered_fraction(
                scene.positions[first : last + 1, n, 0],
                scene.radii[n],
                bar.centres[first : last + 1],
                bar.width,
            )
            if 0 <= row < grid and 0 <= col < grid and covered.max() < 0.5:
                token = (t * grid + row) * grid + col
                rows.append((token, int(scene.colours[n]), n == TAGGED, *velocity[n]))
    return rows


def make_clips(count: int, seed: int, crop: int, patch: int, tubelet: int):
    """clips (count, 16, C, crop, crop) normalized, and per-object-token labels
    (clip index, token index, colour, tagged, vx, vy) as one float array (M, 6)."""
    cfg = SceneConfig(num_frames=16)
    clips, labels = [], []
    for index in range(count):
        scene = sample_scene(seed, index, cfg)
        clips.append(normalize(to_clip(scene.render(crop))))
        labels += [(index, *row) for row in object_tokens(scene, crop, patch, tubelet)]
    return torch.stack(clips), np.array(labels, dtype=np.float64)


def ridge_predict(x_train, y_train, x_test, penalty: float) -> torch.Tensor:
    """Linear least squares with an L2 penalty on standardized features (y may be one-hot)."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    gram = x_train.T @ x_train + penalty * torch.eye(x_train.shape[1], dtype=x_train.dtype)
    weights = torch.linalg.solve(gram, x_train.T @ (y_train - y_train.mean(0)))
    return x_test @ weights + y_train.mean(0)


def readouts(tokens: torch.Tensor, labels: np.ndarray) -> dict[str, float]:
    """tokens (clips, N, D) -> colour %, tagged %, velocity R^2 on the held-out quarter of clips."""
    clip, token = labels[:, 0].astype(int), labels[:, 1].astype(int)
    x = tokens[clip, token].double()  # (M, D)
    test = torch.from_numpy(clip % 4 == 0)
    tagged = torch.from_numpy(labels[:, 3] > 0)
    colour = torch.nn.functional.one_hot(torch.from_numpy(labels[:, 2]).long()).double()
    velocity = torch.from_numpy(labels[:, 4:6])

    def accuracy(mask, y, decide):
        return max(
            (
                decide(ridge_predict(x[mask & ~test], y[mask & ~test], x[mask & test], p))
                == decide(y[mask & test])
            )
            .double()
            .mean()
            .item()
            for p in RIDGE
        )

    def r2(p):
        pred, truth = ridge_predict(x[~test], velocity[~test], x[test], p), velocity[test]
        return (1 - ((pred - truth) ** 2).sum() / ((truth - truth.mean(0)) ** 2).sum()).item()

    everything = torch.ones_like(tagged)
    return {
        "colour": 100 * accuracy(~tagged, colour, lambda y: y.argmax(1)),
        "tagged": 100 * accuracy(everything, tagged.double()[:, None], lambda y: y[:, 0] > 0.5),
        "velocity": max(r2(p) for p in RIDGE),
    }


@torch.no_grad()
def encode(model, clips: torch.Tensor, batch: int = 32) -> torch.Tensor:
    return torch.cat([model.encode(clips[i : i + batch]).float() for i in range(0, len(clips), batch)])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("encoders", nargs="+", help="checkpoints (any vjepa2.load source)")
    parser.add_argument("--clips", type=int, default=512, help="synthetic clips (3/4 fit, 1/4 scored)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the clips")
    parser.add_argument("--crop", type=int, default=64, help="clip size in pixels (the probe's crop)")
    parser.add_argument(
        "--encoder-key", default="target_encoder", help="encoder entry of a training checkpoint"
    )
    args = parser.parse_args()
    print("| encoder | colour % | tagged % | velocity R^2 |\n|---|---:|---:|---:|")
    made = {}  # clips per token layout: an encoder and its random twin share them
    for source in args.encoders:
        for name in (source, f"random:{source}"):
            model = load_encoder(name, encoder_key=args.encoder_key)
            cfg = model.encoder.cfg
            layout = (args.crop, cfg.patch, cfg.tubelet)
            if layout not in made:
                made[layout] = make_clips(args.clips, args.seed, *layout)
            clips, labels = made[layout]
            scores = readouts(encode(model, clips), labels)
            print(f"| {name} | {scores['colour']:.1f} | {scores['tagged']:.1f} | {scores['velocity']:.3f} |")
        chance = 100 * max(np.mean(labels[:, 3] > 0), np.mean(labels[:, 3] == 0))
        print(
            f"| (chance: colour 25.0, tagged {chance:.1f}, velocity 0; {len(labels)} object tokens) | | | |"
        )


if __name__ == "__main__":
    main()
