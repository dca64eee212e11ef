"""Error messages of the command line as one line, spelled as the user types options and values.

Two jobs, both pure text:

- :func:`parser_error_line` turns an error of the option parser (jsonargparse: an unknown option
  or YAML key, a value of the wrong type, a bad choice) into one line that names the option, the
  value and what is allowed, instead of the parser's usage text.
- :func:`cli_spelling` rewrites a message written for the Python API into the command line's
  words: `` `prior_points` `` becomes ``--prior_points``, ``fidelity='asha'`` becomes
  ``--fidelity asha``, ``download=True (--download true)`` becomes ``--download true`` and the
  values ``None``/``True``/``False`` become ``none``/``true``/``false``
  (text inside quotes, such as a path the user gave, and Python code in back-ticks are left as they are).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Sequence

PROG = "python -m lightning_dnc.cli"
COMMANDS = ("fit", "search", "report")

_LITERALS = {"None": "none", "True": "true", "False": "false"}
_QUOTED = re.compile(r"""((?<!\w)'[^'\n]*'(?!\w)|(?<!\w)"[^"\n]*"(?!\w)|`[^`\n]*`)""")  # not an apostrophe
_VALUE = r"""('[^'\s]*'|"[^"\s]*"|None|True|False|-?[\w.+-]+)"""


# ------------------------------------------------------------------------------------- spelling
def cli_value(text: str) -> str:
    """A Python literal as the command line takes it: ``'asha'`` -> ``asha``, ``None`` -> ``none``."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return _LITERALS.get(text, text)


def cli_spelling(message: str, options: Collection[str]) -> str:
    """``message`` with the settings in ``options`` spelled as ``--name`` and Python values as typed.

    Parameters
    ----------
    message : str
        A message of the Python API or the command line (one or more lines).
    options : collection of str
        The command's option names without dashes (``"prior_points"``); other back-ticked names
        keep their back-ticks.

    Returns
    -------
    str
        One line: line breaks become ``"; "``.
    """
    def flag_with_value(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2)
        return f"--{name} {cli_value(value)}" if name in options else match.group(0)

    def flag(match: re.Match[str]) -> str:
        return f"--{match.group(1)}" if match.group(1) in options else match.group(0)

    # ``download=True (--download true)``: the message gives both spellings; keep the command line's
    text = re.sub(r"`?\b([A-Za-z_]\w*)=[^\s`]+`? \((--\1\b[^)]*)\)", r"\2", message)
    text = re.sub(rf"`([A-Za-z_]\w*)={_VALUE}`", flag_with_value, text)
    text = re.sub(rf"(?<![\w`'\"-])([A-Za-z_]\w*)={_VALUE}(?![\w=])", flag_with_value, text)
    text = re.sub(r"`([A-Za-z_]\w*)`", flag, text)
    parts = _QUOTED.split(text)  # odd items are quoted (the user's own text) or Python code: left alone
    parts[::2] = [re.sub(r"\b(None|True|False)\b", lambda m: _LITERALS[m.group(1)], p) for p in parts[::2]]
    return one_line("".join(parts))


def one_line(text: str) -> str:
    """``text`` on one line: its non-empty lines, stripped, joined by ``"; "``."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return "; ".join(lines)


# ---------------------------------------------------------------------------------- parser errors
def parser_error_line(message: str, command: str | None, options: Sequence[str],
                      argv: Sequence[str] = ()) -> str:
    """One line for an error of the option parser.

    Parameters
    ----------
    message : str
        The parser's message (``str`` of its ``ArgumentError``).
    command : str, optional
        The subcommand being parsed (``fit``, ``search``, ``report``), when known.
    options : sequence of str
        That command's option names without dashes, to suggest the closest ones.
    argv : sequence of str
        The command line, to say when a bad value came from a ``--config`` file.
    """
    where = f"{command}: " if command else ""
    help_hint = f"`{PROG} {command + ' ' if command else ''}--help` lists the options"
    key = re.search(r'Parser key "([^"]+)"', message)
    if key:
        return where + _bad_value(key.group(1), message, argv)
    unknown = re.search(r"does not accept option '([^']+)'", message)
    if unknown:
        name = unknown.group(1)
        source = _config_source(argv)
        if source and f"--{name}" not in argv:
            return f"{where}unknown key {name!r} in {source}{_suggest(name, options)}; {help_hint}."
        return f"{where}unknown option --{name}{_suggest(name, options, '--')}; {help_hint}."
    unrecognized = re.search(r"[Uu]nrecognized arguments: (.+)", message)
    if unrecognized:
        tokens = unrecognized.group(1).split()
        flags = [t for t in tokens if t.startswith("--")]
        if flags:
            name = flags[0][2:].split("=", 1)[0]
            return f"{where}unknown option --{name}{_suggest(name, options, '--')}; {help_hint}."
        return (f"{where}unexpected argument {tokens[0]!r}: options are given as --name value "
                f"({help_hint}).")
    choice = re.search(r"invalid choice: '([^']*)'", message)
    if choice:
        return f"unknown command {choice.group(1)!r}; use one of {', '.join(COMMANDS)} (`{PROG} --help`)."
    if re.search(r'expected "command"', message):
        return f"no command given; use one of {', '.join(COMMANDS)} (`{PROG} --help`)."
    required = re.search(r"arguments are required: (\S+)", message)
    if required:
        name = required.group(1).split(".")[-1].rstrip(",")
        return f"{where}{name.upper()} is missing ({help_hint})."
    needs_value = re.search(r"argument (--\w+): expected one argument", message)
    if needs_value:
        return f"{where}{needs_value.group(1)} needs a value ({help_hint})."
    return where + one_line(re.sub(r'Parser key "([^"]+)":?', r"--\1:", message))


def _bad_value(name: str, message: str, argv: Sequence[str]) -> str:
    """``--name 'value' ...: expected ...`` from a jsonargparse type error."""
    given = re.search(r"(?:Given|Got) value: (.*)$", message, re.M)
    value = given.group(1).strip() if given else None
    kinds = [_describe_type(t) for t in re.findall(r"Expected an? (.+?)(?:\. Got value:|$)", message, re.M)]
    values = [v for kind in kinds if isinstance(kind, list) for v in kind]
    words = [kind for kind in kinds if isinstance(kind, str) and kind]
    expected = ([f"one of {', '.join(dict.fromkeys(values))}"] if values else []) + list(dict.fromkeys(words))
    source = _config_source(argv)
    typed = f"--{name}" in argv or any(a.startswith(f"--{name}=") for a in argv)
    origin = f" (in {source})" if source and not typed else ""
    shown = "" if value is None else f" {value!r}"
    if not expected:
        return f"--{name}{shown}{origin}: {one_line(message.split(':', 1)[-1])}"
    return f"--{name}{shown}{origin} is not allowed: expected {' or '.join(expected)}."


def _describe_type(text: str) -> str | list[str]:
    """A jsonargparse type name in plain words, or the list of values it allows.

    ``typing.Literal['a', 'b']`` -> ``["a", "b"]``; ``<class 'bool'>`` -> ``["true", "false"]``;
    ``<class 'int'>`` -> ``"an integer"``; ``<class 'NoneType'>`` -> ``""`` (an unset option).
    """
    text = text.strip().rstrip(".")
    literal = re.fullmatch(r"typing\.Literal\[(.*)\]", text)
    if literal:
        return [cli_value(v.strip()) for v in literal.group(1).split(",")]
    if text == "<class 'bool'>":
        return ["true", "false"]
    words = {"int": "an integer", "float": "a number", "str": "text", "dict": "a mapping such as {lr: 0.01}",
             "list": "a list such as [4, 16]", "NoneType": ""}
    plain = re.fullmatch(r"<class '(\w+)'>", text)
    if plain:
        return words.get(plain.group(1), plain.group(1))
    generic = re.fullmatch(r"(list|dict)\[.*\]", text)
    return words[generic.group(1)] if generic else text


def _suggest(name: str, options: Sequence[str], prefix: str = "") -> str:
    """`` (did you mean --a or --b?)`` for the options closest to ``name``, or ``""``."""
    close = difflib.get_close_matches(name, list(options), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(prefix + c for c in close) + "?)"


def _config_source(argv: Sequence[str]) -> str | None:
    """``--config 'file.yaml'`` when the command line reads a config file."""
    for i, token in enumerate(argv):
        if token == "--config" and i + 1 < len(argv):
            return f"--config {argv[i + 1]!r}"
        if token.startswith("--config="):
            return f"--config {token.split('=', 1)[1]!r}"
    return None


__all__ = ["COMMANDS", "PROG", "cli_spelling", "cli_value", "one_line", "parser_error_line"]
