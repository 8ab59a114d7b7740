import os
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
