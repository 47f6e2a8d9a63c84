from __future__ import annotations

from pathlib import Path

import pytest

from tests.detection.tiny_model import build_tiny_package


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The detection tests' analytic ONNX detector as a real model package (black cells -> 'baton')."""
    return build_tiny_package(tmp_path_factory.mktemp("line-model") / "tiny").directory
