"""One registry for everything the suite finds by name: methods, metrics and backbone kinds.

A registry maps a name to a class. The project's own entries are listed in code, as classes or as
"module:attribute" strings that are imported only when their name is asked for; installed packages add theirs
through an entry-point group, so that neither the project nor a user's package edits the other. Every refusal
is one line: an unknown name (with the registered ones), an entry that fails to import, one that is not a
subclass of the registry's base class or whose own name differs from the name it is registered under, and one
name registered twice for two different classes.
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points

from eval.errors import UserError


def target_of(entry) -> str:
    """"module:attribute" of an entry point, a "module:attribute" string or a class: what tells two registrations
    apart."""
    if hasattr(entry, "value"):
        return entry.value.replace(" ", "")
    return entry if isinstance(entry, str) else f"{entry.__module__}:{entry.__qualname__}"


class Registry:
    """name → class, from `builtin` (a dict that stays the registry's own: adding to it registers) and the
    entry points of `group`. Each class must subclass `base` and carry its name in the attribute `name_attr`."""

    def __init__(self, what: str, group: str, base: type, builtin: dict, name_attr: str = "name"):
        self.what, self.group, self.base, self.builtin, self.name_attr = what, group, base, builtin, name_attr
        self._loaded: dict[tuple[str, str], type] = {}
        self._entries: tuple[tuple, dict] | None = None

    def entries(self) -> dict[str, tuple[object, str]]:
        """name → (class, "module:attribute" string or entry point, where it was registered), importing nothing
        (read again when sys.path changes); a name registered twice for two different classes is refused."""
        key = (tuple(sys.path), tuple(self.builtin))  # what installed packages and built-ins there are now
        if self._entries is None or self._entries[0] != key:
            self._entries = key, self._scan()
        return self._entries[1]

    def _scan(self) -> dict[str, tuple[object, str]]:
        found = {name: (entry, "built in") for name, entry in self.builtin.items()}
        for ep in sorted(entry_points(group=self.group), key=lambda e: (e.name, e.value)):
            where = f"entry point {self.group} of {ep.dist.name if ep.dist else 'an unnamed package'}"
            if ep.name in found:
                entry, first = found[ep.name]
                if target_of(entry) != target_of(ep):  # the project's own entry points repeat its built-ins
                    raise UserError(f"{self.what} '{ep.name}' is registered twice: {target_of(entry)} ({first}) "
                                    f"and {target_of(ep)} ({where})")
                continue
            found[ep.name] = (ep, where)
        return found

    def names(self) -> list[str]:
        return list(self.entries())

    def __contains__(self, name: str) -> bool:
        return name in self.entries()

    def get(self, name: str) -> type:
        """The class registered as `name`, imported and checked once."""
        entries = self.entries()
        if name not in entries:
            raise UserError(f"unknown {self.what} '{name}' (registered: {', '.join(sorted(entries))})")
        entry, where = entries[name]
        key = (name, target_of(entry))
        if key not in self._loaded:
            self._loaded[key] = self._load(name, entry, where)
        return self._loaded[key]

    def load_all(self) -> dict[str, type]:
        """Every registered class by name, built-ins first."""
        return {name: self.get(name) for name in self.entries()}

    def _load(self, name: str, entry, where: str) -> type:
        target = target_of(entry)
        try:
            if hasattr(entry, "load"):
                cls = entry.load()
            elif isinstance(entry, str):
                module, _, attribute = entry.partition(":")
                cls = getattr(importlib.import_module(module), attribute)
            else:
                cls = entry
        except Exception as e:  # a broken plug-in names itself instead of breaking every command
            raise UserError(f"{self.what} '{name}' ({target}, {where}) failed to load: {type(e).__name__}: {e}"
                            ) from None
        if not (isinstance(cls, type) and issubclass(cls, self.base)) or getattr(cls, self.name_attr, None) != name:
            raise UserError(f"{self.what} '{name}' ({target}, {where}): not a {self.base.__module__}."
                            f"{self.base.__qualname__} subclass whose {self.name_attr} is '{name}'")
        return cls
