from __future__ import annotations

from pathlib import Path

import pytest

from smartscreen.detection.package import ModelPackage
from tests.detection.tiny_model import build_tiny_package


@pytest.fixture(scope="session")
def tiny_package(tmp_path_factory: pytest.TempPathFactory) -> ModelPackage:
    """The analytic cell detector as a real package (dynamic batch, height and width)."""
    return build_tiny_package(tmp_path_factory.mktemp("pkg") / "tiny")


@pytest.fixture(scope="session")
def tiny_detector(tiny_package: ModelPackage):  # type: ignore[no-untyped-def]
    from smartscreen.detection.engine import OnnxDetector

    return OnnxDetector.from_package(tiny_package.directory, intra_op_threads=1, max_batch=8)


@pytest.fixture
def package_copy(tiny_package: ModelPackage, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(tiny_package.directory, target)
    return target
