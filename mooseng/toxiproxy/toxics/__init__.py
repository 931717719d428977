"""Toxic types by name, and the parsing and validation of toxic requests.

Defaults follow Toxiproxy: ``stream`` downstream, ``toxicity`` 1.0, ``name``
``<type>_<stream>``, attributes 0 unless given. Validation is stricter than Toxiproxy's
(which takes any number): attributes are non-negative integers, toxicity is within 0..1,
and an attribute the type does not have is an error, so a typo cannot pass silently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mooseng.toxiproxy.toxics.bandwidth import BandwidthStage
from mooseng.toxiproxy.toxics.base import (
    STREAMS,
    Chunk,
    LinkControl,
    Stage,
    Toxic,
    ToxicError,
    UnknownToxicType,
)
from mooseng.toxiproxy.toxics.latency import LatencyStage
from mooseng.toxiproxy.toxics.limit_data import LimitDataStage
from mooseng.toxiproxy.toxics.noop import NoopStage
from mooseng.toxiproxy.toxics.reset_peer import ResetPeerStage
from mooseng.toxiproxy.toxics.slicer import SlicerStage
from mooseng.toxiproxy.toxics.slow_close import SlowCloseStage
from mooseng.toxiproxy.toxics.timeout import TimeoutStage

__all__ = ["KINDS", "STREAMS", "Chunk", "LinkControl", "Stage", "Toxic", "ToxicError",
           "UnknownToxicType", "new_stage", "parse_toxic", "updated_toxic"]

KINDS: dict[str, type[Stage]] = {
    stage.KIND: stage
    for stage in (LatencyStage, BandwidthStage, SlowCloseStage, TimeoutStage, ResetPeerStage,
                  SlicerStage, LimitDataStage, NoopStage)
}


def _kind(type_name: Any) -> type[Stage]:
    """The stage class of toxic type ``type_name``, or UnknownToxicType."""
    if not isinstance(type_name, str) or type_name not in KINDS:
        raise UnknownToxicType(f"invalid toxic type: {type_name!r} (known: "
                               f"{', '.join(sorted(KINDS))})")
    return KINDS[type_name]


def _toxicity(value: Any) -> float:
    """A toxicity: a number within 0..1."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ToxicError(f"toxicity must be a number from 0 to 1, got {value!r}")
    if not 0 <= value <= 1:
        raise ToxicError(f"toxicity is {value} but must be from 0 to 1")
    return float(value)


def _attributes(kind: type[Stage], given: Any, current: Mapping[str, int]) -> dict[str, int]:
    """``current`` updated with the ``given`` attributes of a request, all checked."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ToxicError(f"attributes must be a JSON object, got {given!r}")
    known = {attribute.name: attribute for attribute in kind.ATTRIBUTES}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ToxicError(f"{kind.KIND} has no attribute {', '.join(unknown)} (it has: "
                         f"{', '.join(known) or 'none'})")
    result = dict(current)
    for name, value in given.items():
        result[name] = known[name].parse(kind.KIND, value)
    for attribute in kind.ATTRIBUTES:
        result.setdefault(attribute.name, attribute.default)
        if result[attribute.name] < attribute.minimum:
            raise ToxicError(f"{kind.KIND} attribute {attribute.name} is "
                             f"{result[attribute.name]} but must be >= {attribute.minimum}")
    kind.check(result)
    return result


def parse_toxic(body: Any, seq: int) -> Toxic:
    """A new toxic from the body of ``POST /proxies/{proxy}/toxics`` (ToxicError if bad)."""
    if not isinstance(body, dict):
        raise ToxicError("bad request body: expected a JSON object")
    stream = body.get("stream")
    if stream is None or stream == "":
        stream = "downstream"
    if not isinstance(stream, str) or stream.lower() not in STREAMS:
        raise ToxicError("stream was invalid, can be either upstream or downstream")
    stream = stream.lower()
    kind = _kind(body.get("type"))
    name = body.get("name")
    if name is None or name == "":
        name = f"{kind.KIND}_{stream}"
    if not isinstance(name, str):
        raise ToxicError(f"name must be a string, got {name!r}")
    toxicity = body.get("toxicity")
    toxicity = 1.0 if toxicity is None else _toxicity(toxicity)
    attributes = _attributes(kind, body.get("attributes"), {})
    return Toxic(name=name, type=kind.KIND, stream=stream, toxicity=toxicity,
                 attributes=attributes, seq=seq)


def updated_toxic(toxic: Toxic, body: Any) -> Toxic:
    """``toxic`` with the attributes and toxicity of an update body (ToxicError if bad).

    As in Toxiproxy, only ``attributes`` (merged into the current ones) and ``toxicity``
    change; name, type and stream stay.
    """
    if not isinstance(body, dict):
        raise ToxicError("bad request body: expected a JSON object")
    kind = _kind(toxic.type)
    toxicity = body.get("toxicity")
    toxicity = toxic.toxicity if toxicity is None else _toxicity(toxicity)
    attributes = _attributes(kind, body.get("attributes"), toxic.attributes)
    return Toxic(name=toxic.name, type=toxic.type, stream=toxic.stream, toxicity=toxicity,
                 attributes=attributes, seq=toxic.seq)


def new_stage(toxic: Toxic, link: LinkControl) -> Stage:
    """A started stage applying ``toxic`` on ``link`` (toxicity rolled now)."""
    stage = _kind(toxic.type)(toxic, link)
    stage.start()
    return stage
