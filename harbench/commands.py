"""What the command line computes that is not argument parsing: the command group (plugin commands loaded on
first use), ``--set`` overrides of a suite document, the ``harbench runs`` table, and the listings of ``list`` /
``plugins`` (text and JSON). No run machinery."""

from __future__ import annotations

import time
from contextlib import closing
from typing import Any, Sequence

import click
import yaml

from .registry_snapshot import SnapshotRegistry, full_registry, reading_registry

# ------------------------------------------------------------------------------------------- the command group


class HarbenchGroup(click.Group):
    """The core's commands, and the plugins' (``harbench_register_commands``) loaded only when one is invoked:
    ``--help`` and completion list them from the registry snapshot, so they import neither plugins nor torch."""

    plugins_loaded = False

    def load_plugin_commands(self) -> None:
        if not self.plugins_loaded:
            self.plugins_loaded = True
            try:
                full_registry().hook.harbench_register_commands(cli=self)
            except Exception as exc:  # a plugin's command must not break the CLI
                click.echo(click.style("warning: ", fg="yellow") + f"a plugin failed to add commands: {exc}", err=True)

    def snapshot_commands(self) -> list[dict[str, str]] | None:
        """The plugins' commands (name, short help) from a valid snapshot; None once they are really loaded."""
        registry = None if self.plugins_loaded else reading_registry()
        if isinstance(registry, SnapshotRegistry):
            return registry.commands
        self.load_plugin_commands()
        return None

    def list_commands(self, ctx: click.Context) -> list[str]:
        listed = self.snapshot_commands() or []
        return sorted(set(self.commands) | {c["name"] for c in listed})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            listed = self.snapshot_commands()
            if listed is not None and cmd_name in {c["name"] for c in listed}:
                self.load_plugin_commands()
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        listed = self.snapshot_commands()
        if listed is None:
            return super().format_commands(ctx, formatter)
        helps = {name: (cmd.get_short_help_str(10**6)) for name, cmd in self.commands.items() if not cmd.hidden}
        helps.update({c["name"]: c["help"] for c in listed if c["name"] not in self.commands})
        if helps:
            limit = formatter.width - 6 - max(len(n) for n in helps)
            with formatter.section("Commands"):
                formatter.write_dl([(n, click.utils.make_default_short_help(h, limit)) for n, h in sorted(helps.items())])


# ------------------------------------------------------------------------------------------- --set overrides


def apply_overrides(text: str, sets: Sequence[str], source: str) -> str:
    """The suite text with every ``PATH=VALUE`` applied, as YAML (so the run's stored suite records them).

    ``PATH`` is dotted through the suite document; a list entry is addressed by its ``name`` (``methods.tbft``:
    the entry ``tbft`` or ``{name: tbft, ...}``) or by its index; a missing mapping key is created. ``VALUE`` is
    parsed as YAML (``[fc,all]`` is a list, ``0.5`` a number); ``~`` (null) on a list entry removes it
    (``methods.smldist=~``: the suite without that method). A bad override is a :class:`SuiteError` naming it.
    """
    from .suite import SuiteError  # pydantic: only when a suite is read

    if not sets:
        return text
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return text  # parse_suite reports the YAML error with its line
    if not isinstance(doc, dict):
        return text
    for item in sets:
        path, sep, raw = item.partition("=")
        keys = [k.strip() for k in path.split(".")]
        if not sep or not all(keys):
            raise SuiteError(source, [(f"--set {item}", "expected PATH=VALUE, e.g. seeds=[0] or "
                                                        "methods.tbft.params.block=[fc,all]")])
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise SuiteError(source, [(f"--set {item}", f"the value is not YAML: {exc}")]) from None
        _set(doc, keys, value, item, source)
    note = "".join(f"# --set {s}\n" for s in sets)
    return note + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def _set(node: Any, keys: list[str], value: Any, item: str, source: str) -> None:
    from .suite import SuiteError

    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        where = ".".join(keys[: i + 1])
        if isinstance(node, dict):
            if last:
                node[key] = value
                return
            if not isinstance(node.get(key), (dict, list)):
                node[key] = {}
            node = node[key]
        elif isinstance(node, list):
            index = _entry(node, key)
            if index is None:
                names = [_name(e) for e in node]
                raise SuiteError(source, [(f"--set {item}", f"{where}: no entry named {key!r}; entries: "
                                                            f"{', '.join(str(n) for n in names)}")])
            if last:
                if value is None:  # `--set methods.smldist=~`: the entry leaves the list
                    del node[index]
                else:
                    node[index] = value
                return
            if isinstance(node[index], str):  # `- tbft` becomes `- {name: tbft}` to take parameters
                node[index] = {"name": node[index]}
            node = node[index]
        else:
            raise SuiteError(source, [(f"--set {item}", f"{where}: cannot go into {node!r}")])


def _name(entry: Any) -> Any:
    return entry.get("name") if isinstance(entry, dict) else entry


def _entry(entries: list, key: str) -> int | None:
    for i, e in enumerate(entries):
        if str(_name(e)) == key:
            return i
    if key.lstrip("-").isdigit() and -len(entries) <= int(key) < len(entries):
        return int(key) % len(entries)
    return None


# ----------------------------------------------------------------------------------------------- harbench runs


RUN_HEADERS = ["id", "suite", "started", "status", "jobs ok", "failed", "wall"]


def runs_table(store: Any) -> list[list[Any]]:
    """One line per run of the store (or bundle): id, suite, start time, status, jobs ok / failed, wall time."""
    from collections import Counter

    from .results.bundle import Bundle

    if isinstance(store, Bundle):
        runs = store.runs()
        counts = Counter((r["id"], row["status"]) for r in runs for row in store.job_rows(r["id"]))
    elif not store.path.exists():
        return []
    else:
        with closing(store.read()) as con:
            runs = con.execute("SELECT id, suite, started, ended, status FROM runs ORDER BY id").fetchall()
            counts = Counter({(r[0], r[1]): r[2] for r in con.execute(
                "SELECT run_id, status, COUNT(*) FROM jobs GROUP BY run_id, status").fetchall()})
    out = []
    for r in runs:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["started"])) if r["started"] else "—"
        wall = f"{r['ended'] - r['started']:.1f} s" if r["ended"] and r["started"] else "—"
        out.append([r["id"], r["suite"], started, r["status"], counts.get((r["id"], "ok"), 0),
                    counts.get((r["id"], "failed"), 0), wall])
    return out


# ---------------------------------------------------------------------------------------- list and plugins


PLUGIN_HEADERS = ["name", "kind", "distribution", "version", "status"]


def plugin_rows(registry: Any, kinds: Sequence[str]) -> list[list[Any]]:
    rows = []
    for kind in kinds:
        for name in registry.names(kind):
            r = registry.items[kind][name]
            rows.append([name, kind, r.distribution, r.version, "loaded"])
    for p in registry.plugins:
        if p.status == "broken":
            rows.append([p.entry_point, "?", p.distribution, p.version, f"broken: {p.reason}"])
    return rows


def load_with_overrides(path: str, registry: Any, sets: Sequence[str]) -> Any:
    """``load_suite`` with ``--set`` overrides applied to the document before it is validated."""
    from pathlib import Path

    from .suite import MAX_SUITE_BYTES, SuiteError, load_suite, parse_suite

    if not sets:
        return load_suite(path, registry)
    try:
        if Path(path).stat().st_size > MAX_SUITE_BYTES:
            return load_suite(path, registry)  # refuses it, with the size
        text = Path(path).read_text()
    except OSError as exc:
        raise SuiteError(str(path), [("", f"cannot read suite: {exc.strerror or exc}")]) from None
    return parse_suite(apply_overrides(text, sets, str(path)), str(path), registry)
