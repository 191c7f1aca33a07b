"""Fixtures: small real data written in the real formats, and a loopback HTTP server."""

import functools
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import write_idx

# Under pytest-xdist (make test: one worker per core) each worker keeps to one core: more torch threads
# than cores made the same test 5-24x slower on a busy 2-core machine.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


@pytest.fixture
def mnist_files(tmp_path):
    """The four MNIST .gz files, made from the shipped real MNIST digits, in a folder to serve."""
    from course_lib import digits

    folder = tmp_path / "mirror"
    folder.mkdir()
    for split, prefix in [("train", "train"), ("test", "t10k")]:
        images, labels = digits.mnist_sample(split)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images[:, 0].numpy())
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels.numpy().astype(np.uint8))
    return folder


@pytest.fixture
def http_server():
    """Serve a folder on a free loopback port; yields a function folder -> base URL."""
    servers = []

    def serve(folder: Path) -> str:
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        handler.log_message = lambda *a, **k: None
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()
