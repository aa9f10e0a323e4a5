"""collectd's threshold plugin configuration (threshold.conf) as thresholds.

`<Type>` blocks, inside `<Plugin>` blocks (whose `Instance` is the plugin instance) inside `<Host>`
blocks, each optional; the whole may be wrapped in `<Plugin "threshold">` or `<Threshold>`. collectd's
rrdtool plugin keeps a value in `<host>/<plugin>[-<plugin instance>]/<type>[-<type instance>].rrd`.
A threshold without an instance applies to every instance (and to none), so the glob takes any.

How the options carry over:
  WarningMax / FailureMax  -> `above` thresholds, severity warning / critical (Min: `below`)
  Hysteresis H             -> clear_value = limit - H (above) or limit + H (below)
  Hits N                   -> repetitions = N
  Persist true             -> rearm 0 (collectd notifies on every value out of range; we on every check)
  Persist false (default)  -> rearm PERSIST_FALSE_REARM (collectd notifies once per problem)
  DataSource               -> ds (without it: every data source of the file)
  Invert, Percentage true  -> not supported: a warning, and that Type block is skipped
  PersistOK, Interesting   -> ignored (they are about notifications, not limits)
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rrdalarm.common.fileutil import split_lines
from rrdalarm.config.import_limits import Imported, Rule, build_thresholds, glob_literal, labels, number
from rrdalarm.model.errors import ConfigError

# collectd's default notifies once per problem; a day between repeats is the nearest re-arm.
PERSIST_FALSE_REARM = 86400

LIMITS = (  # option, direction, severity: critical first, so it gets the lower id
    ("FailureMax", "above", "critical"),
    ("WarningMax", "above", "warning"),
    ("FailureMin", "below", "critical"),
    ("WarningMin", "below", "warning"),
)
UNSUPPORTED = ("Invert", "Percentage")
IGNORED = ("PersistOK", "Interesting")
KNOWN = {*(o for o, _d, _s in LIMITS), *UNSUPPORTED, *IGNORED, "Instance", "DataSource", "Hysteresis", "Hits",
         "Persist"}
BOOLEANS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


@dataclass
class Block:
    """One `<Name "argument">` ... `</Name>` block of the configuration, with where it starts."""

    name: str
    argument: str
    line: int
    options: list[tuple[str, str, int]] = field(default_factory=list)
    children: list[Block] = field(default_factory=list)

    def option(self, key: str) -> tuple[str, int] | None:
        found = [(v, n) for k, v, n in self.options if k.lower() == key.lower()]
        return found[-1] if found else None


def parse_blocks(text: str, path: str) -> Block:
    """The block tree of a collectd configuration file; ConfigError at the line of a syntax mistake."""
    stack = [Block("", "", 0)]
    for number_, line in enumerate(split_lines(text), start=1):
        words = _words(line, path, number_)
        if not words:
            continue
        head = words[0]
        if head.startswith("</"):
            name = head[2:].rstrip(">")
            if len(stack) == 1 or stack[-1].name.lower() != name.lower():
                opened = f"<{stack[-1].name}> opened at line {stack[-1].line}" if len(stack) > 1 else "nothing"
                raise ConfigError(path, f"</{name}> closes {opened}", number_)
            stack.pop()
        elif head.startswith("<"):
            if not words[-1].endswith(">"):
                raise ConfigError(path, f"block {head} is not closed with '>' on its line", number_)
            words[-1] = words[-1][:-1]
            name = words[0][1:]
            block = Block(name, " ".join(w for w in words[1:] if w), number_)
            stack[-1].children.append(block)
            stack.append(block)
        else:
            stack[-1].options.append((head, " ".join(words[1:]), number_))
    if len(stack) > 1:
        raise ConfigError(path, f"<{stack[-1].name}> is never closed", stack[-1].line)
    return stack[0]


def _words(line: str, path: str, number_: int) -> list[str]:
    """A line's words with quotes removed and comments dropped; '<Type "x">' gives ['<Type', 'x>']."""
    try:
        lexer = shlex.shlex(line.replace(">", " >"), posix=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words = list(lexer)
    except ValueError as exc:
        raise ConfigError(path, f"cannot read this line: {exc}", number_) from None
    # Put the '>' split off above back onto the word before it.
    out: list[str] = []
    for w in words:
        if w == ">" and out:
            out[-1] += ">"
        else:
            out.append(w)
    return out


@dataclass(frozen=True)
class _Where:
    host: str | None = None
    plugin: str | None = None
    instance: str | None = None


def parse_collectd(text: str, path: str, start_id: int = 1, sources: Sequence[str] = ("rrd",)) -> Imported:
    """Every limit of a threshold.conf `text`, as thresholds numbered from `start_id`, in file order.

    In a whole collectd.conf only the `<Plugin "threshold">` (or `<Threshold>`) blocks are read.
    """
    result = Imported()
    rules: list[Rule] = []
    root = parse_blocks(text, path)
    wrappers = [b for b in root.children if _is_wrapper(b)]
    for body in wrappers or [root]:
        _walk(body, _Where(), path, rules, result.warnings)
    result.thresholds = build_thresholds(rules, path, start_id, sources)
    return result


def _is_wrapper(block: Block) -> bool:
    kind = block.name.lower()
    return kind == "threshold" or (kind == "plugin" and block.argument.lower() == "threshold")


def _walk(block: Block, where: _Where, path: str, rules: list[Rule], warnings: list[str]) -> None:
    for child in block.children:
        kind = child.name.lower()
        if kind == "host" and where.host is None and where.plugin is None:
            _walk(child, _Where(host=child.argument), path, rules, warnings)
        elif kind == "plugin" and where.plugin is None:
            found = child.option("Instance")
            inner = _Where(where.host, child.argument, found[0] if found else None)
            _walk(child, inner, path, rules, warnings)
        elif kind == "type":
            rules += _type_rules(child, where, path, warnings)
        else:
            warnings.append(f"{path}:{child.line}: <{child.name}> block is not a threshold here; skipped")


def _type_rules(block: Block, where: _Where, path: str, warnings: list[str]) -> list[Rule]:
    """The thresholds of one `<Type>` block (none, with a warning, if it uses what we cannot do)."""
    for key, value, line in block.options:
        if key not in KNOWN:
            warnings.append(f"{path}:{line}: option {key} is not known; ignored")
        elif key in UNSUPPORTED and _boolean(value, path, line, key):
            warnings.append(f"{path}:{line}: {key} true is not supported; <Type \"{block.argument}\"> skipped")
            return []
    common = _common(block, where, path)
    out: list[Rule] = []
    for option, direction, severity in LIMITS:
        found = block.option(option)
        if found is None:
            continue
        limit = number(found[0], path, found[1], option)
        raw = {**common, "type": direction, "value": limit, "severity": severity}
        raw["name"] = f"{common['name']} {severity}: {direction} {limit}"
        hysteresis = block.option("Hysteresis")
        if hysteresis is not None:
            h = number(hysteresis[0], path, hysteresis[1], "Hysteresis")
            if h < 0:
                raise ConfigError(path, f"must be 0 or more, not {hysteresis[0]!r}", hysteresis[1], "Hysteresis")
            if h:
                raw["clear_value"] = limit - h if direction == "above" else limit + h
        out.append((raw, {**_lines(block), "": found[1]}))
    if not out:
        warnings.append(f"{path}:{block.line}: <Type \"{block.argument}\"> sets no WarningMin/Max or "
                        "FailureMin/Max; skipped")
    return out


def _lines(block: Block) -> dict[str, int]:
    """The line of each option that becomes a field, so the loader's errors point at it."""
    fields = {"Hits": "repetitions", "Hysteresis": "clear_value", "Persist": "rearm", "DataSource": "ds",
              "Instance": "glob"}
    return {fields[key]: line for key, _v, line in block.options if key in fields}


def _common(block: Block, where: _Where, path: str) -> dict[str, Any]:
    """The fields every limit of a Type block shares: glob, ds, repetitions, rearm, name, labels."""
    type_instance = block.option("Instance")
    instance = type_instance[0] if type_instance else None
    host = glob_literal(where.host) if where.host else "*"
    if where.plugin is None:
        folder = "*"
    elif where.instance:
        folder = f"{glob_literal(where.plugin)}-{glob_literal(where.instance)}"
    else:
        folder = f"{glob_literal(where.plugin)}*"
    # "<type>[-.]*rrd": <type>.rrd and <type>-<any instance>.rrd, not another type that starts alike.
    leaf = f"{glob_literal(block.argument)}-{glob_literal(instance)}.rrd" if instance else \
        f"{glob_literal(block.argument)}[-.]*rrd"
    raw: dict[str, Any] = {"glob": f"{host}/{folder}/{leaf}"}
    ds = block.option("DataSource")
    if ds is not None:
        raw["ds"] = [ds[0]]
    hits = block.option("Hits")
    if hits is not None:
        raw["repetitions"] = number(hits[0], path, hits[1], "Hits")
    persist = block.option("Persist")
    raw["rearm"] = 0 if persist and _boolean(persist[0], path, persist[1], "Persist") else PERSIST_FALSE_REARM
    series = "/".join(p for p in (where.plugin, where.instance) if p)
    name = f"{series + ' ' if series else ''}{block.argument}{'-' + instance if instance else ''}"
    raw["name"] = f"{where.host or 'any host'} {name}{' ' + ds[0] if ds else ''}"
    raw["labels"] = labels({"host": where.host, "plugin": where.plugin, "plugin_instance": where.instance,
                            "type": block.argument, "type_instance": instance})
    return raw


def _boolean(text: str, path: str, line: int, key: str) -> bool:
    if text.lower() not in BOOLEANS:
        raise ConfigError(path, f"must be true or false, not {text!r}", line, key)
    return BOOLEANS[text.lower()]
