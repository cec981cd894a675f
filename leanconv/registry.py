"""``Registry``: the one table type behind every "name -> thing" lookup in leanconv.

Conv spec kinds, zoo models, BatchNorm fold rules, weight-inheritance rules, analytic MAC
formulas and per-op cost formulas are each a :class:`Registry`. What it guarantees:

* a key registered twice is a ``ValueError`` naming both places (file and line), never a
  silent overwrite;
* a missing key is a ``ValueError`` listing the close matches (or what is there);
* :meth:`Registry.for_type` finds the entry of a class or of its nearest registered base
  class in the MRO (a subclass of ``nn.Conv2d`` such as timm's ``Conv2dSame`` still uses the
  conv rule), written once here for the per-operator rule tables;
* ``normalize`` turns what a caller passes into the stored key, so the op-cost table can take
  ``"aten.add"`` and store the op object ``torch.ops.aten.add``: a name that is not an op
  fails at registration instead of never matching.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

V = TypeVar("V")


def key_name(key: object) -> str:
    """How a key is shown in messages: a class by its name, anything else by ``str``."""
    return key.__name__ if isinstance(key, type) else str(key)


def _origin(value: object) -> str:
    """``file:line`` of a registered function (not one a factory made: several share that
    line), else of the first caller outside this file."""
    code = getattr(value, "__code__", None)
    if code is not None and getattr(value, "__closure__", None) is None:
        return f"{_short(code.co_filename)}:{code.co_firstlineno}"
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    return "unknown place" if frame is None else f"{_short(frame.f_code.co_filename)}:" \
                                                 f"{frame.f_lineno}"


def _short(filename: str) -> str:
    parts = Path(filename).parts
    return str(Path(*parts[parts.index("leanconv"):])) if "leanconv" in parts else filename


class Registry(Generic[V]):
    """A mapping ``key -> value`` that refuses duplicates and explains misses.

    ``what`` names an entry in messages (``"conv kind"``, ``"fold rule"``);
    ``normalize(key)`` maps a given key to the stored one (and may raise ``ValueError``).
    """

    def __init__(self, what: str, *, normalize: Callable[[Any], Hashable] | None = None
                 ) -> None:
        self.what = what
        self._normalize = normalize or (lambda key: key)
        self._entries: dict[Hashable, V] = {}
        self._origins: dict[Hashable, str] = {}

    def add(self, key: object, value: V, *, origin: object = None) -> V:
        """Store ``value`` under ``key``; ``ValueError`` if ``key`` is already there.

        ``origin``: the function whose definition is the registration's place in messages
        (default: ``value`` itself if it is a function, else the calling line)."""
        stored = self._normalize(key)
        origin = _origin(value if origin is None else origin)
        if stored in self._entries:
            raise ValueError(f"{self.what} {key_name(stored)!r} is registered twice: at "
                             f"{self._origins[stored]} and at {origin}")
        self._entries[stored] = value
        self._origins[stored] = origin
        return value

    def register(self, *keys: object) -> Callable[[V], V]:
        """Decorator storing the decorated value under each of ``keys``."""
        if not keys:
            raise ValueError(f"{self.what} registry: register() needs at least one key")

        def decorate(value: V) -> V:
            for key in keys:
                self.add(key, value)
            return value

        return decorate

    def remove(self, key: object) -> V:
        """Take ``key``'s entry out (e.g. a rule registered for one test) and return it."""
        value = self.get(key)
        stored = self._normalize(key)
        del self._entries[stored], self._origins[stored]
        return value

    def get(self, key: object) -> V:
        """The entry of ``key``; ``ValueError`` with close matches when there is none."""
        try:
            stored = self._normalize(key)
        except ValueError:
            stored = key
        if isinstance(stored, Hashable) and stored in self._entries:
            return self._entries[stored]
        names = [key_name(k) for k in self._entries]
        close = difflib.get_close_matches(key_name(stored), names, n=5, cutoff=0.5)
        hint = (f"close matches: {', '.join(close)}" if close
                else f"known: {', '.join(sorted(names)) or 'none'}")
        raise ValueError(f"unknown {self.what} {key_name(stored)!r}; {hint}")

    def find(self, key: object) -> V | None:
        """The entry of ``key`` or None."""
        try:
            return self._entries.get(self._normalize(key))
        except (ValueError, TypeError):
            return None

    def for_type(self, obj: object) -> V | None:
        """The entry of ``obj``'s class (or ``obj`` itself if it is a class) or of its nearest
        registered base class; None when no class in the MRO is registered."""
        cls = obj if isinstance(obj, type) else type(obj)
        return next((self._entries[c] for c in cls.__mro__ if c in self._entries), None)

    def __contains__(self, key: object) -> bool:
        return self.find(key) is not None

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[Hashable]:
        return list(self._entries)

    def values(self) -> list[V]:
        return list(self._entries.values())

    def items(self) -> list[tuple[Hashable, V]]:
        return list(self._entries.items())

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {len(self)} entries)"
