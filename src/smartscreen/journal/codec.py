"""JSON encoding of domain events, driven by the dataclasses' own type hints.

Every ``ParcelEvent`` round-trips: ``decode_event(kind, encode_event(e)) == e`` (arrays compared by value).
Personal data is masked before anything is encoded.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from enum import Enum
from functools import cache
from typing import Any

import numpy as np

from smartscreen.domain.events import ParcelEvent, WaybillMatched
from smartscreen.errors import StorageError

EVENT_TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in typing.get_args(ParcelEvent)}


def _to_json(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, np.ndarray):
        return {"dtype": str(value.dtype), "shape": list(value.shape), "data": value.ravel().tolist()}
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise StorageError(f"cannot encode {type(value).__name__} in a journal event")


@cache
def _hints(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _from_json(tp: Any, data: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if data is None:
            return None
        if len(options) == 1:
            return _from_json(options[0], data)
        for option in options:  # e.g. int | float
            if isinstance(option, type) and isinstance(data, option):
                return data
        return _from_json(options[0], data)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_json(args[0], item) for item in data)
        return tuple(_from_json(a, item) for a, item in zip(args, data, strict=True))
    if origin is np.ndarray or tp is np.ndarray:
        return np.asarray(data["data"], dtype=np.dtype(data["dtype"])).reshape(data["shape"])
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(data)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        return tp(**{f.name: _from_json(hints[f.name], data[f.name]) for f in dataclasses.fields(tp) if f.name in data})
    if tp is float and isinstance(data, int):
        return float(data)
    return data


def mask_personal_data(event: ParcelEvent) -> ParcelEvent:
    if isinstance(event, WaybillMatched) and event.waybill is not None:
        waybill = dataclasses.replace(event.waybill, pii=event.waybill.pii.masked())
        return dataclasses.replace(event, waybill=waybill)
    return event


def encode_event(event: ParcelEvent) -> tuple[str, str]:
    """Returns (kind, JSON payload) with personal data masked."""
    kind = type(event).__name__
    if kind not in EVENT_TYPES:
        raise StorageError(f"{kind} is not a journal event type")
    return kind, json.dumps(_to_json(mask_personal_data(event)), ensure_ascii=False, separators=(",", ":"))


def decode_event(kind: str, payload: str) -> ParcelEvent:
    try:
        cls = EVENT_TYPES[kind]
    except KeyError:
        raise StorageError(f"unknown journal event kind {kind!r}") from None
    try:
        return typing.cast(ParcelEvent, _from_json(cls, json.loads(payload)))
    except (KeyError, TypeError, ValueError) as e:
        raise StorageError(f"corrupt journal payload for {kind}: {e}") from e
