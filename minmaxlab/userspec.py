"""Code a user brings by name: ``FILE.py:NAME`` (a path) or ``pkg.module:NAME``, for a problem
factory or an algorithm class. Loading it never prints a traceback: a failure is one line that
names the spec, through the caller's error class."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path

SPEC = re.compile(r"^(?P<where>.+\.py|[A-Za-z_][\w.]*):(?P<name>[A-Za-z_]\w*)$")


def is_user_spec(name) -> bool:
    """True for ``FILE.py:NAME`` or ``pkg.module:NAME``."""
    return isinstance(name, str) and SPEC.match(name) is not None


def load(spec: str, what: str, error: type[Exception], search=()) -> tuple[str, object]:
    """(key, object) for ``spec``; ``what`` names it in messages ("user problem", ...), ``error``
    is the exception class raised, ``search`` the folders where a relative FILE.py is also looked
    for. The key identifies the defining file or module. A file is imported once per process."""
    m = SPEC.match(spec)
    where, name = m.group("where"), m.group("name")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            found = [Path(d) / where for d in search if (Path(d) / where).is_file()]
            if not found:
                raise error(f"{what} {spec!r}: no file {where} (relative to the current folder "
                            f"{Path.cwd()}{' or the problems folders' if search else ''})")
            path = found[0]
        path = path.resolve()
        modname = "minmaxlab_user_" + re.sub(r"\W", "_", str(path))
        try:
            module = sys.modules.get(modname)
            if module is None:
                loader = importlib.util.spec_from_file_location(modname, path)
                module = importlib.util.module_from_spec(loader)
                sys.modules[modname] = module  # before running it: dataclasses look it up
                try:
                    loader.loader.exec_module(module)
                except BaseException:
                    del sys.modules[modname]
                    raise
        except Exception as exc:  # the user's code: report its first line, never a traceback
            raise error(f"{what} {spec!r}: importing {path} failed: "
                        f"{type(exc).__name__}: {exc}") from None
        key = str(path)
    else:
        try:
            module = importlib.import_module(where)
        except Exception as exc:
            raise error(f"{what} {spec!r}: importing module {where} failed: "
                        f"{type(exc).__name__}: {exc}") from None
        key = where
    obj = getattr(module, name, None)
    if obj is None:
        raise error(f"{what} {spec!r}: {where} has no {name!r}")
    return key, obj


def source(spec, search=()) -> Path | None:
    """The file that defines ``spec`` (None if it cannot be found): its contents are part of a
    run's identity, so that editing the code never reuses results of the old one."""
    m = SPEC.match(spec) if isinstance(spec, str) else None
    if m is None:
        return None
    where = m.group("where")
    if where.endswith(".py"):
        for path in (Path(where), *(Path(d) / where for d in search)):
            if path.is_file():
                return path.resolve()
        return None
    try:
        found = importlib.util.find_spec(where)
    except (ImportError, ValueError):
        return None
    return Path(found.origin) if found is not None and found.origin else None
