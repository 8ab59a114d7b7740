import os
import re
from pathlib import Path

import pytest
import torch

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("MPLBACKEND", "Agg")
# Under pytest-xdist every worker gets one thread, so two workers share two cores without
# oversubscription (OpenMP spin-waiting makes oversubscribed runs many times slower).
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, min(2, os.cpu_count() or 1)))

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "reference"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"reference fixtures not found at {FIXTURES}")
    return FIXTURES


@pytest.fixture
def user_error(capsys):
    """``user_error(argv)``: run the CLI on arguments that hold a mistake of the user's; it must
    exit with status 2 after one line on stderr (no traceback), which is returned."""
    from vjepa2.cli import main

    def run(argv: list[str]) -> str:
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        line = err.strip().splitlines()[-1]  # after the precision line some commands print
        assert re.match(r"vjepa2( [a-z -]+)?: error: ", line), line
        return line

    return run


def perturbed(module):
    """Non-zero biases, norms, embeddings and mask tokens, so that every weight matters (eval mode)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return module.eval()
