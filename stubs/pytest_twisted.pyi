# Types for the parts of pytest-twisted that echotwist's live tests use
# (pytest-twisted ships none, so its decorators would make tests untyped).
from collections.abc import Callable, Coroutine, Generator
from typing import Any, ParamSpec, TypeVar

from twisted.internet.defer import Deferred

_P = ParamSpec("_P")
_R = TypeVar("_R")
_F = TypeVar("_F", bound=Callable[..., Coroutine[Any, Any, Any]])

def ensureDeferred(f: _F) -> _F: ...
def inlineCallbacks(
    f: Callable[_P, Generator[Any, Any, _R]],
) -> Callable[_P, Deferred[_R]]: ...
def blockon(d: Deferred[_R]) -> _R: ...
