"""The grid of a sweep (docs/sweeps.md, "The grid file"): a TOML file read into the runs it expands to.

    [sweep]   ranks, args (the options every run shares), seeds
    [axes]    option = [values ...]: the cartesian product, in the file's order
    [methods] "name" = { option = value, ..., seeds = [...] }: each run takes one method (seeds: that method's,
              instead of [sweep] seeds)
    [[rules]] when = { option = value or [values], ... }, set = { option = value, ... }

A run's options are the axes' values, then its method's (a method may override an axis), then every rule whose
`when` matches (later rules win); they follow `args` on the command line, where the last value of an option wins.
Every option name is checked against `prores train --help` before anything runs (TrainOptions).
"""

import itertools
import math
import re
import subprocess
import tomllib
from dataclasses import dataclass, field

from .errors import ReportError

# Options the sweep sets itself for every run.
SWEEP_OWNED = {"log-dir": "the run directory", "save": "the run's checkpoints directory",
               "load": "its checkpoints when it resumes", "seed": "[sweep] seeds"}
METHOD_KEY = "method"  # a rule's `when` may name the method


class GridError(ReportError):
    """A problem with the grid file, printed as 'prores sweep: MESSAGE'."""


@dataclass(frozen=True)
class TrainOptions:
    """The option names of `prores train`, and which of them are switches (no value)."""

    names: frozenset
    switches: frozenset

    @staticmethod
    def parse_help(text):
        """Boost's listing: '  --name arg (=default)   text', '  --name S (=x)   text' (a value), or
        '  --name      text' / '  --name' alone on its line (a switch): a value's placeholder is one space away."""
        names, switches = set(), set()
        for match in re.finditer(r"^  --([A-Za-z0-9][A-Za-z0-9_-]*)( \S)?", text, re.MULTILINE):
            names.add(match.group(1))
            if match.group(2) is None:
                switches.add(match.group(1))
        names.discard("help")
        return TrainOptions(frozenset(names), frozenset(switches - {"help"}))

    @staticmethod
    def from_binary(prores):
        try:
            result = subprocess.run([prores, "train", "--help"], capture_output=True, text=True, timeout=120)
        except OSError as e:
            raise GridError(f"cannot run {prores} train --help ({e.strerror}): build prores first or give --prores")
        except subprocess.TimeoutExpired:
            raise GridError(f"{prores} train --help did not answer in 120 s") from None
        options = TrainOptions.parse_help(result.stdout)
        if result.returncode != 0 or not options.names:
            raise GridError(f"{prores} train --help listed no options (exit status {result.returncode})")
        return options


@dataclass
class Run:
    """One run of the grid: its name (its directory under runs/), method, axis values, seed and options."""

    name: str
    method: str | None
    axis_values: dict  # axis name -> value, in the grid's axis order
    seed: int | None
    options: dict  # option name -> TOML value, after axes, method and rules
    args: list = field(default_factory=list)  # the grid's shared args, then the options as words


@dataclass
class Grid:
    path: str
    ranks: int
    args: list
    seeds: list
    axes: dict  # name -> list of values
    methods: dict  # name -> {option: value}
    rules: list  # [(when, set)]
    method_seeds: dict = field(default_factory=dict)  # method name -> its own seeds, instead of `seeds`
    runs: list = field(default_factory=list)

    @property
    def x_axis(self):
        """The axis the figures draw against: num-layers when it is an axis, else the first axis (None: none)."""
        if "num-layers" in self.axes:
            return "num-layers"
        return next(iter(self.axes), None)


def slug(text):
    """Lower case letters, digits and '.', other characters as single '-' (filesystem- and shell-safe)."""
    return re.sub(r"[^a-z0-9.]+", "-", str(text).lower()).strip("-.") or "x"


def value_text(value):
    """A TOML value as the command line and run names write it (floats as Python's shortest repr)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
        return repr(value)
    if isinstance(value, list):
        return ",".join(value_text(v) for v in value)
    return str(value)


def option_words(name, value, options):
    """An option as command-line words: switches take true (the bare flag) or false (nothing)."""
    if name in options.switches:
        return [f"--{name}"] if value else []
    return [f"--{name}", value_text(value)]


def _load_toml(path):
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise GridError(f"{path}: cannot read ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise GridError(f"{path}: malformed TOML: {e}") from None


def _check_value(path, where, name, value, options):
    if name in options.switches and not isinstance(value, bool):
        raise GridError(f"{path}: {where}: '{name}' is a switch of prores train: give true or false, not {value!r}")
    if isinstance(value, dict):
        raise GridError(f"{path}: {where}: '{name}' must be a number, string, boolean or list, not a table")
    try:
        value_text(value)
    except ValueError as e:
        raise GridError(f"{path}: {where}: '{name}': {e}") from None


def _check_name(path, where, name, options):
    if name in SWEEP_OWNED:
        raise GridError(f"{path}: {where}: option '{name}' is set by the sweep ({SWEEP_OWNED[name]})")
    if name not in options.names:
        raise GridError(f"{path}: {where}: unknown option '{name}' (not a prores train option)")


def _check_options_table(path, where, table, options):
    if not isinstance(table, dict):
        raise GridError(f"{path}: {where} must be a table of options")
    for name, value in table.items():
        _check_name(path, where, name, options)
        _check_value(path, where, name, value, options)


def _check_args(path, args, options):
    if not isinstance(args, list) or not all(isinstance(word, str) for word in args):
        raise GridError(f"{path}: [sweep] args must be a list of strings")
    for word in args:
        if word.startswith("--"):
            name = word[2:].split("=", 1)[0]
            _check_name(path, "[sweep] args", name, options)


def _check_seeds(path, where, seeds):
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds if s is not None):
        raise GridError(f"{path}: {where} must be a non-empty list of non-negative integers")
    if len(set(seeds)) != len(seeds):
        raise GridError(f"{path}: {where} has a duplicate")
    return seeds


def _table(path, document, key):
    table = document.get(key, {})
    if not isinstance(table, dict):
        raise GridError(f"{path}: [{key}] must be a table")
    return table


def parse_grid(path, options):
    """Reads and checks the grid file against `options` (TrainOptions) and expands it; raises GridError."""
    document = _load_toml(path)
    for key in document:
        if key not in ("sweep", "axes", "methods", "rules"):
            raise GridError(f"{path}: unknown section [{key}] (expected [sweep], [axes], [methods], [[rules]])")
    sweep = _table(path, document, "sweep")
    for key in sweep:
        if key not in ("ranks", "args", "seeds"):
            raise GridError(f"{path}: [sweep]: unknown key '{key}' (expected ranks, args, seeds)")
    ranks = sweep.get("ranks", 1)
    if not isinstance(ranks, int) or isinstance(ranks, bool) or ranks < 1:
        raise GridError(f"{path}: [sweep] ranks must be a positive integer, not {ranks!r}")
    args = sweep.get("args", [])
    _check_args(path, args, options)
    seeds = _check_seeds(path, "[sweep] seeds", sweep.get("seeds", [None]))

    axes = {}
    for name, values in _table(path, document, "axes").items():
        _check_name(path, "[axes]", name, options)
        values = values if isinstance(values, list) else [values]
        if not values:
            raise GridError(f"{path}: [axes]: axis '{name}' has no values")
        for value in values:
            _check_value(path, "[axes]", name, value, options)
        axes[name] = values

    methods, method_seeds = {}, {}
    for name, table in _table(path, document, "methods").items():
        where = f'[methods."{name}"]'
        if isinstance(table, dict) and "seeds" in table:
            table = dict(table)
            method_seeds[name] = _check_seeds(path, f"{where} seeds", table.pop("seeds"))
        _check_options_table(path, where, table, options)
        methods[name] = dict(table)
    if not axes and not methods:
        raise GridError(f"{path}: nothing to sweep: [axes] is empty and there are no [methods]")

    rules = []
    raw_rules = document.get("rules", [])
    if not isinstance(raw_rules, list):
        raise GridError(f"{path}: rules must be an array of tables ([[rules]])")
    for index, rule in enumerate(raw_rules, 1):
        where = f"rule {index}"
        if not isinstance(rule, dict) or set(rule) - {"when", "set"} or "set" not in rule:
            raise GridError(f"{path}: {where}: a rule is {{ when = {{...}}, set = {{...}} }}")
        when = rule.get("when", {})
        if not isinstance(when, dict):
            raise GridError(f"{path}: {where}: when must be a table")
        for name, value in when.items():
            if name == METHOD_KEY:
                for method in value if isinstance(value, list) else [value]:
                    if method not in methods:
                        raise GridError(f"{path}: {where}: when names method '{method}', which [methods] lacks")
            elif name not in options.names:
                raise GridError(f"{path}: {where}: unknown option '{name}' in when (not a prores train option)")
        _check_options_table(path, f"{where}: set", rule["set"], options)
        rules.append((dict(when), dict(rule["set"])))

    grid = Grid(path, ranks, list(args), seeds, axes, methods, rules, method_seeds)
    grid.runs = expand(grid, options)
    return grid


def _matches(when, settings):
    for name, wanted in when.items():
        accepted = wanted if isinstance(wanted, list) else [wanted]
        if name not in settings or not any(_same(settings[name], a) for a in accepted):
            return False
    return True


def _same(a, b):
    """Equal TOML values: numbers by value (4 and 4.0, 1e-3 and 0.001), booleans only with booleans."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def run_name(method, axis_values, seed):
    parts = [slug(method)] if method is not None else []
    parts += [f"{slug(axis)}-{slug(value_text(value))}" for axis, value in axis_values.items()]
    if seed is not None:
        parts.append(f"seed-{seed}")
    return "_".join(parts)


def expand(grid, options):
    """The runs: for each method (in the file's order), each point of the axes' product, each seed."""
    methods = list(grid.methods.items()) or [(None, {})]
    axis_names = list(grid.axes)
    runs, names = [], {}
    for method, method_options in methods:
        for point in itertools.product(*(grid.axes[name] for name in axis_names)):
            axis_values = dict(zip(axis_names, point))
            settings = dict(axis_values)
            settings.update(method_options)
            for when, assignments in grid.rules:
                if _matches(when, {**settings, **({METHOD_KEY: method} if method is not None else {})}):
                    settings.update(assignments)
            for seed in grid.method_seeds.get(method, grid.seeds):
                name = run_name(method, axis_values, seed)
                if name in names:
                    raise GridError(f"{grid.path}: two runs are both named '{name}' ({names[name]} and "
                                    f"{_describe(method, axis_values, seed)}): give methods and values that differ "
                                    "after lower-casing and replacing other characters than letters, digits and '.'")
                names[name] = _describe(method, axis_values, seed)
                words = list(grid.args)
                for option, value in settings.items():
                    words += option_words(option, value, options)
                runs.append(Run(name, method, axis_values, seed, settings, words))
    return runs


def _describe(method, axis_values, seed):
    parts = ([f"method {method!r}"] if method is not None else []) + [
        f"{axis} = {value_text(value)}" for axis, value in axis_values.items()]
    return ", ".join(parts + ([f"seed {seed}"] if seed is not None else []))
