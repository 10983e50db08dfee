"""Errors raised on bad input. All derive from :class:`MinmaxlabError` (a ``ValueError``)."""


class MinmaxlabError(ValueError):
    """Base class: a clear, user-facing error about bad input."""


class TopologyError(MinmaxlabError):
    """A graph or mixing matrix violates assumption A4 (or cannot be built)."""


class ProblemError(MinmaxlabError):
    """A problem family, instance or parameter is unknown or invalid."""


class ConfigError(MinmaxlabError):
    """A configuration file (TOML) is malformed or incomplete."""


class AlgorithmError(MinmaxlabError):
    """An algorithm parameter is invalid (eta <= 0, rounds < 0, unknown variant, ...)."""


def did_you_mean(name, choices) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to ``name``, or an empty string."""
    import difflib

    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, sorted(map(str, choices)), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def reject_unknown(where: str, keys, allowed, what: str = "key") -> None:
    """Raise a ConfigError for the first unknown key (in sorted order), naming the closest
    allowed one: a typo such as ``seeed`` must never be silently ignored."""
    for key in sorted({str(k) for k in keys} - set(allowed)):
        raise ConfigError(f"{where}: unknown {what} {key!r}{did_you_mean(key, allowed)}; "
                          f"allowed: {sorted(allowed)}")


def read_toml(path, what: str) -> dict:
    """Parse a TOML file; a missing or malformed file is a ConfigError naming the file."""
    import tomllib
    from pathlib import Path

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a folder, not a TOML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text TOML file") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None
