"""The review API and operator web page (FastAPI). HTTP concerns only; the logic is in ``smartscreen.review``."""

from smartscreen.api.app import create_app, create_app_for

__all__ = ["create_app", "create_app_for"]
