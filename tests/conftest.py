import os
import re
from pathlib import Path

import pytest
import torch

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("MPLBACKEND", "Agg")
# dtype auto may pick int8 for a model where a timing says it is faster (models/auto_precision.py):
# a timing would make tests' results depend on the load of the machine, so tests (and the
# commands they start) keep auto off int8; test_held_precision.py tests the choice itself.
os.environ["VJEPA2_AUTO_INT8"] = "0"
# Under pytest-xdist every worker gets one thread, so two workers share two cores without
# oversubscription (OpenMP spin-waiting makes oversubscribed runs many times slower).
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, min(2, os.cpu_count() or 1)))

# The reference parity fixtures ship with the repository (tests/fixtures/*/README.md says what
# each file holds), so every clone runs the parity tests.
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_folder(name: str) -> Path:
    """tests/fixtures/<name>; a missing folder fails the test instead of skipping it, since a
    skipped parity test reads like a passed one in a summary."""
    folder = FIXTURES / name
    if not folder.is_dir():
        pytest.fail(f"reference fixtures missing: {folder} (they are part of the repository; restore them)")
    return folder


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return fixture_folder("reference")


@pytest.fixture(scope="session")
def fixtures21() -> Path:
    return fixture_folder("reference21")


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


@pytest.fixture
def serve_folder():
    """``serve_folder(path)`` -> the base URL of a real HTTP server on loopback serving ``path``
    (a thread of this process; stopped when the test ends)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):  # no line per request on stderr
            pass

    servers = []

    def serve(path) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(path)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()
