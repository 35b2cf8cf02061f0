"""What ``CONSUMER_HANDLER`` and ``PRODUCER_SOURCE`` name: the user's code, imported once at
start, as uvicorn imports ``module:app``.

Importing it here, while the settings are resolved, makes a misspelt module,
a missing name or an object of the wrong shape one line and exit 2 before
anything connects, like any other bad setting. What is done with it is the
services' business (``consumer/handler.py``, ``producer/source.py``).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable


class ImportFailed(ValueError):
    """The user's module raised as it was imported: ``error`` is theirs, with its traceback."""

    def __init__(self, message: str, error: BaseException) -> None:
        super().__init__(message)
        self.error = error


def import_named(spec: str) -> object:
    """The object *spec* (``package.module:name``) names; ValueError saying why not.

    The user's module may fail in any way as it is imported; that is said in
    one line, and the error, whose traceback shows where, is kept
    (:class:`ImportFailed`).
    """
    module_name, _, attribute = spec.partition(":")
    try:
        found: object = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ValueError(
                f"no module named {exc.name!r} (is its folder on PYTHONPATH?)"
            ) from None
        raise ImportFailed(f"importing {module_name} failed: {_said(exc)}", _theirs(exc)) from None
    except Exception as exc:  # noqa: BLE001  (the user's module: any error is theirs)
        raise ImportFailed(f"importing {module_name} failed: {_said(exc)}", _theirs(exc)) from None
    for name in attribute.split("."):
        try:
            found = getattr(found, name)
        except AttributeError:
            raise ValueError(f"{module_name} has no {attribute!r}") from None
    return found


def _theirs(error: BaseException) -> BaseException:
    """*error* with its traceback starting at the user's module: ours and importlib's
    frames before it say nothing they can act on."""
    tb = error.__traceback__
    ours = (__file__, importlib.__file__)
    while tb is not None and (
        tb.tb_frame.f_code.co_filename in ours
        or tb.tb_frame.f_code.co_filename.startswith("<frozen importlib")
    ):
        tb = tb.tb_next
    return error.with_traceback(tb) if tb is not None else error


def import_handler(spec: str) -> Callable[..., object]:
    """The callable *spec* names: one that takes one argument (the handler) or none
    (a factory of one, or of a context manager that gives one); ValueError if not."""
    found = import_named(spec)
    attribute = spec.partition(":")[2]
    if not callable(found):
        raise ValueError(f"{attribute} is not callable (it is a {type(found).__name__} value)")
    if takes_a_record(found) or _takes_nothing(found):
        return found
    raise ValueError(
        f"{attribute} takes {inspect.signature(found)}: "
        "a handler takes one record, a factory nothing"
    )


def import_source(spec: str) -> Callable[[], object] | Iterable[object]:
    """The iterable *spec* names, or a callable of none that makes one; ValueError if not."""
    found = import_named(spec)
    attribute = spec.partition(":")[2]
    if callable(found):
        if _takes_nothing(found):
            return found
        raise ValueError(
            f"{attribute} takes {inspect.signature(found)}: a source is an iterable, "
            "or a callable of no arguments that returns one"
        )
    if isinstance(found, Iterable) and not isinstance(found, str | bytes):
        return found
    raise ValueError(
        f"{attribute} is of type {type(found).__name__}: a source is an iterable, "
        "or a callable of no arguments that returns one"
    )


def takes_a_record(named: Callable[..., object]) -> bool:
    """Whether *named* can be called with one argument: a handler, not a factory.

    The one place the shape of a handler is judged, here at start and by the
    consumer for what a factory gives.
    """
    return _binds(named, None)


#: The attribute ``consumer.handler.batch`` sets on a handler that takes a batch.
BATCH_MARK = "__consumer_takes_batches__"


def takes_batches(named: object) -> bool:
    """Whether *named* is marked ``@consumer.handler.batch``: it takes a sequence of records."""
    return getattr(named, BATCH_MARK, False) is True


def _takes_nothing(named: Callable[..., object]) -> bool:
    return _binds(named)


def _binds(named: Callable[..., object], *arguments: object) -> bool:
    try:
        inspect.signature(named).bind(*arguments)
    except TypeError:
        return False
    except ValueError:
        return True  # a builtin without a signature: it says itself what it takes when called
    return True


def _said(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
