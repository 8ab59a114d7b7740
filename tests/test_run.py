"""The training scaffold (``train/run.py``) on a toy command: folder, log, checkpoint schema, exact
resume (also from the schema before it), and the settings it checks once for every command."""

import copy
import json
import math
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from vjepa2.checkpoints.files import CheckpointError
from vjepa2.checkpoints.training import load_checkpoint
from vjepa2.config import opt
from vjepa2.errors import UserError
from vjepa2.train.run import LossNotFiniteError, Run, RunConfig, Trained, load_weights


class Toy(nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.body, self.head = nn.Linear(3, width), nn.Linear(width, 1)

    def forward(self, x):
        return self.head(torch.relu(self.body(x)))


@dataclass
class ToyConfig:
    width: int = opt(4, help="hidden width")
    scale: float = opt(1.0, help="loss factor (inf: a loss that is not finite)")
    run: RunConfig = opt(help="run", default_factory=lambda: RunConfig(log_every=1, checkpoint_every=2))


def toy_config(out, *changes: tuple[str, object]) -> ToyConfig:
    cfg = ToyConfig()
    cfg.run.out, cfg.run.dtype = str(out), "fp32"
    for name, value in changes:
        setattr(cfg.run, name, value)
    return cfg


def train_toy(cfg: ToyConfig) -> None:
    """Six AdamW steps on inputs drawn from the global RNG (a resume must restore it), with an
    average of the body kept beside the model (as pretraining keeps its EMA target)."""
    with Run("toy", cfg, cfg.run) as run:
        torch.manual_seed(cfg.run.seed)
        model = Toy(cfg.width)
        average = copy.deepcopy(model.body).requires_grad_(False)
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.05)
        step = run.restore(model, optimizer, {"average": average})
        run.start(step, 6)

        def train_step(step):
            loss = model(torch.randn(8, 3)).pow(2).mean() * cfg.scale
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for a, p in zip(average.parameters(), model.body.parameters()):
                    a.mul_(0.5).add_(0.5 * p)
            return {"loss": loss.item()}

        step = run.loop(step, train_step, Trained(model, optimizer, {"average": average}))
        run.finish(step)


def losses(out) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    train_toy(toy_config(out))
    return out


def test_the_run_folder_and_the_checkpoint_schema(uninterrupted):
    assert len(losses(uninterrupted)) == 6 and (uninterrupted / "config.yaml").is_file()
    state = load_checkpoint(uninterrupted / "latest.pt")
    assert (state["schema"], state["command"], state["step"]) == (2, "toy", 6)
    assert set(state["body"]) == {"weight", "bias"} and set(state["average"]) == {"weight", "bias"}
    assert state["run_config"]["width"] == 4 and state["metrics"]["loss"] == losses(uninterrupted)[-1]
    assert all(isinstance(name, str) for name in state["optimizer"]["state"])  # keyed by parameter name


def test_stopped_and_resumed_equals_uninterrupted(uninterrupted, tmp_path, capsys):
    train_toy(toy_config(tmp_path, ("stop_after", 3)))
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 3  # the stop is checkpointed too
    assert (
        f"stopped at step 3 of 6; wrote latest.pt, log.jsonl, config.yaml in {tmp_path}"
        in capsys.readouterr().out
    )
    train_toy(toy_config(tmp_path))
    assert "toy: resumed from" in capsys.readouterr().out
    assert losses(tmp_path) == losses(uninterrupted)
    state, want = load_checkpoint(tmp_path / "latest.pt"), load_checkpoint(uninterrupted / "latest.pt")
    for name in ("body", "head", "average"):
        for key, value in want[name].items():
            assert torch.equal(state[name][key], value), (name, key)


def test_a_checkpoint_of_the_old_schema_resumes(uninterrupted, tmp_path):
    """Before schema 2: `opt`/`pretrain_config` (pretraining) or a plain, index-keyed optimizer
    state and `train_config` (train-ac); either resumes to the same losses."""
    train_toy(toy_config(tmp_path, ("stop_after", 2)))
    state = load_checkpoint(tmp_path / "latest.pt")
    model, average = Toy(), Toy().body
    model.body.load_state_dict(state["body"])
    model.head.load_state_dict(state["head"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05)
    load_weights(state, model, optimizer, {"average": average})
    old = {k: v for k, v in state.items() if k not in ("schema", "command", "run_config", "optimizer")}
    old.update(opt=optimizer.state_dict(), train_config=state["run_config"])
    torch.save(old, tmp_path / "latest.pt")
    train_toy(toy_config(tmp_path))
    assert losses(tmp_path) == losses(uninterrupted)


def test_settings_checked_once_for_every_command(uninterrupted, tmp_path):
    with pytest.raises(UserError, match=r"run\.dtype: unknown dtype 'fp16'"):
        train_toy(toy_config(tmp_path, ("dtype", "fp16")))
    with pytest.raises(UserError, match=r"run\.parallel must be one of \('ddp',\) for toy, got 'fsdp'"):
        train_toy(toy_config(tmp_path, ("parallel", "fsdp")))
    assert not any(tmp_path.iterdir()), "nothing is written before the settings are checked"
    wider = toy_config(uninterrupted)
    wider.width = 5
    with pytest.raises(CheckpointError, match="latest.pt: does not fit the model of this config"):
        train_toy(wider)


def test_a_loss_that_is_not_finite_stops_before_it_is_saved(uninterrupted, tmp_path):
    train_toy(toy_config(tmp_path, ("stop_after", 2)))
    cfg = toy_config(tmp_path)
    cfg.scale = float("inf")
    with pytest.raises(LossNotFiniteError, match=r"loss is inf at step 3; stopped without saving it "
                       r"\(the last good checkpoint is .*latest.pt \(step 2\)\)"):  # fmt: skip
        train_toy(cfg)
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 2
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert rows[-1] == {"step": 3, "stopped": "loss inf"}
    train_toy(toy_config(tmp_path))  # the good checkpoint resumes to the same run; the log is cut back
    assert losses(tmp_path) == losses(uninterrupted)


def test_a_grid_of_heads_goes_on_while_one_head_is_finite():
    from vjepa2.train.run import best_loss

    assert best_loss([float("nan"), 2.0, 1.0]) == 1.0 and best_loss(torch.tensor(3.0)) == 3.0
    assert math.isnan(best_loss([float("nan"), float("inf")]))
