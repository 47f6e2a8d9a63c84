from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from smartscreen.imaging import Calibration, ImagingChain, ParcelSimulator, ScannerParams

WEDGE_STEPS_G_CM2 = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
STEP_LINES = 24
EDGE_PX = 5  # pixels near step edges and the wedge border are not "interior"


class Wedge:
    """A step wedge: each step a band of lines across channels 100..900."""

    def __init__(self, params: ScannerParams, material: str, steps: tuple[float, ...] = WEDGE_STEPS_G_CM2) -> None:
        self.material = material
        self.steps = steps
        self.map = np.zeros((len(steps) * STEP_LINES, params.channels), np.float32)
        for i, x in enumerate(steps):
            self.map[i * STEP_LINES : (i + 1) * STEP_LINES, 100:900] = x

    def interior(self, image: npt.NDArray[np.generic], step: int) -> npt.NDArray[np.generic]:
        r0 = step * STEP_LINES + EDGE_PX
        r1 = (step + 1) * STEP_LINES - EDGE_PX
        return image[r0:r1, 100 + EDGE_PX : 900 - EDGE_PX]


def expose(
    sim: ParcelSimulator, maps: dict[str, npt.NDArray[np.float32]]
) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint16]]:
    return sim.detector.expose(sim.forward.signal(maps), sim.rng)


@pytest.fixture(scope="module")
def default_scanner() -> tuple[ScannerParams, ParcelSimulator, Calibration, ImagingChain]:
    params = ScannerParams()
    sim = ParcelSimulator(params, np.random.default_rng(1234))
    calibration = sim.calibration()
    return params, sim, calibration, ImagingChain(params, calibration)
