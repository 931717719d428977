"""The generic argument check of every chaosmoose activity: its signature and plain types.

The strict preflight runs it on every ``python`` provider whose module is a chaosmoose
activity module, before any family's own checks (which then see well-typed values). It
parses values the way the activities do (``_settings.parse_int`` / ``parse_float`` /
``parse_bool``: ``"30"`` is a number, ``"false"`` is false, ``"soon"`` is neither), so it
rejects nothing an activity would accept. An activity module may also declare documented
choices, ``ARGUMENT_CHOICES = {"func": {"argument": ("a", "b")}}``, checked here too. It
names no family.
"""

from __future__ import annotations

import importlib
import inspect
import types
import typing
from collections.abc import Mapping
from typing import Any

from chaosmoose import _settings

__all__: list[str] = []  # not an activity module

INJECTED = ("configuration", "secrets")


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text.strip() else exc.__class__.__name__


def type_problem(name: str, value: Any, annotation: Any) -> str | None:
    """Why ``value`` does not fit ``annotation`` (``None`` when it fits or is not checked)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        found = [type_problem(name, value, option) for option in options
                 if option is not type(None)]
        return None if None in found else found[0]
    try:
        if annotation is bool:
            _settings.parse_bool(name, value)
        elif annotation is int:
            _settings.parse_int(name, value, minimum=None)
        elif annotation is float:
            _settings.parse_float(name, value, minimum=None)
        elif annotation is str and (isinstance(value, bool)
                                    or not isinstance(value, (str, int, float))):
            return f"{name}={value!r} is invalid; expected a string"
        elif (annotation is list or origin is list) and not isinstance(value, (list, str)):
            return f"{name}={value!r} is invalid; expected a list (or a comma-separated string)"
        elif (annotation is dict or origin is dict) and not isinstance(value, Mapping):
            return f"{name}={value!r} is invalid; expected an object"
    except _settings.SettingError as exc:
        return _first_line(exc)
    return None


def signature_problems(module: str, func: str, arguments: Mapping[str, Any]) -> list[str]:
    """What is wrong with calling ``module.func(**arguments)``, one sentence per argument.

    Checks that the function is an activity (in the module's ``__all__``), that every
    argument is a parameter, that every parameter without a default is given, that each
    value fits the parameter's plain type hint and is one of its documented choices.
    """
    try:
        activities = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - reported, the run must not start
        reason = f"{exc.__class__.__name__}: {_first_line(exc)}"
        return [f"module {module} cannot be imported ({reason})"]
    exported = list(getattr(activities, "__all__", ()))
    if func not in exported:
        return [f"{module} has no activity {func!r}; expected one of {', '.join(exported)}"]
    signature = inspect.signature(getattr(activities, func))
    hints = typing.get_type_hints(getattr(activities, func))
    params = [n for n in signature.parameters if n not in INJECTED]
    problems = [f"unknown argument {name!r}; expected one of {', '.join(params) or 'none'}"
                for name in arguments if name not in params]
    problems += [f"argument {name!r} is missing; it has no default"
                 for name in params
                 if signature.parameters[name].default is inspect.Parameter.empty
                 and name not in arguments]
    choices = getattr(activities, "ARGUMENT_CHOICES", {}).get(func, {})
    for name, value in arguments.items():
        if name in params and name in hints:
            problem = type_problem(name, value, hints[name])
            if problem:
                problems.append(problem)
            elif name in choices and value not in choices[name]:
                problems.append(f"{name}={value!r} is invalid; expected one of "
                                f"{', '.join(map(str, choices[name]))}")
    return problems
