"""The line runtime: the one place that wires the stages (see :mod:`smartscreen.runtime.centre`)."""

from smartscreen.runtime.centre import ScreeningCentre, recover_journal
from smartscreen.runtime.line import LineSettings, ScreeningLine

__all__ = ["LineSettings", "ScreeningCentre", "ScreeningLine", "recover_journal"]
