"""``hakeeper config``: check, show, import and export cluster configurations offline.

A configuration file is either our declarative TOML or a Pacemaker CIB XML document; the format is chosen by
the file's suffix (``.toml``, ``.xml``) and otherwise by its content (XML starts with ``<``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any, NamedTuple

import click
from rich.console import Console
from rich.text import Text

from hakeeper.cib import model as m
from hakeeper.cib.declarative import CLUSTER_NAME, ConfigError, Problem, dump_config, load_config
from hakeeper.cib.validate import errors, validate
from hakeeper.cib.values import format_duration_ms, format_score
from hakeeper.cib.xml_io import CibXmlError, cib_to_xml, parse_cib_xml


class Loaded(NamedTuple):
    """A configuration read from a file, with what the reader had to say about it."""

    config: m.Configuration
    warnings: list[str]
    fmt: str  # "toml" or "xml"


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise click.ClickException(f"cannot read {path}: {err.strerror or err}") from err


def _looks_like_xml(path: Path, data: bytes) -> bool:
    suffix = path.suffix.lower()
    if suffix in (".xml", ".cib"):
        return True
    if suffix == ".toml":
        return False
    return data.lstrip()[:1] == b"<"


def read_configuration(path: Path) -> Loaded:
    """Read TOML or CIB XML; raise ``ClickException`` (TOML errors listed one per line) when unusable."""
    data = _read_bytes(path)
    if _looks_like_xml(path, data):
        try:
            result = parse_cib_xml(data)
        except CibXmlError as err:
            raise click.ClickException(f"{path} is not a usable Pacemaker CIB: {err}") from err
        return Loaded(result.cib.configuration, result.warnings, "xml")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise click.ClickException(f"{path} is not UTF-8 text, so it cannot be a TOML configuration") from err
    try:
        return Loaded(load_config(text), [], "toml")
    except ConfigError as err:
        raise _ProblemsFound(path, err.problems) from err


class _ProblemsFound(click.ClickException):
    """Exit 1 with every problem on its own line, errors first."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        count = len(errors(problems))
        super().__init__(f"{path}: {count} error{'s' if count != 1 else ''}")

    def show(self, file: IO[Any] | None = None) -> None:
        out = file or sys.stderr
        for p in sorted(self.problems, key=lambda p: p.severity != "error"):
            click.echo(f"{p.severity}: {p.path}: {p.message}", file=out)
        click.echo(f"{self.path} is not valid: {self.message.split(': ', 1)[1]}", file=out)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as err:
        raise click.ClickException(f"cannot write {output}: {err.strerror or err}") from err
    click.echo(f"wrote {output}", err=True)


_FILE = click.Path(dir_okay=False, path_type=Path)


@click.group("config")
def config() -> None:
    """Cluster configuration files: validate, show, import from and export to Pacemaker XML."""


@config.command("validate")
@click.argument("file", type=_FILE)
def validate_cmd(file: Path) -> None:
    """Check FILE (TOML or CIB XML): exit 0 when valid (warnings are printed), 1 with the errors."""
    loaded = read_configuration(file)
    for w in loaded.warnings:
        click.echo(f"warning: import: {w}", err=True)
    problems = validate(loaded.config)
    if errors(problems):
        raise _ProblemsFound(file, problems)
    for p in problems:
        click.echo(f"warning: {p.path}: {p.message}", err=True)
    warned = len(problems) + len(loaded.warnings)
    click.echo(f"{file} is valid" + (f" ({warned} warning{'s' if warned != 1 else ''})" if warned else ""))


@config.command("show")
@click.argument("file", type=_FILE)
def show_cmd(file: Path) -> None:
    """Summarise FILE: properties, nodes, the resource tree with agents, constraints, fencing."""
    loaded = read_configuration(file)
    lines = summary(loaded.config, str(file))
    if sys.stdout.isatty():
        console = Console(highlight=False)
        for line in lines:  # Text, not markup: names like "[a b]" must print as they are
            console.print(Text(line, style="bold" if line and not line.startswith(" ") else ""))
    else:
        for line in lines:
            click.echo(line)


@config.command("import")
@click.argument("file", type=_FILE)
@click.option("-o", "--output", type=_FILE, help="Write the TOML here instead of to standard output.")
def import_cmd(file: Path, output: Path | None) -> None:
    """Convert a Pacemaker CIB XML FILE to hakeeper's TOML (what cannot be carried over is reported)."""
    data = _read_bytes(file)
    try:
        result = parse_cib_xml(data)
    except CibXmlError as err:
        raise click.ClickException(f"{file} is not a usable Pacemaker CIB: {err}") from err
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
    try:
        text = dump_config(result.cib.configuration)
    except ValueError as err:
        raise click.ClickException(f"{file} cannot be written as TOML: {err}") from err
    header = f"# hakeeper cluster configuration, imported from {file.name}\n\n"
    _write(header + text, output)


@config.command("export")
@click.argument("file", type=_FILE)
@click.option("-o", "--output", type=_FILE, help="Write the XML here instead of to standard output.")
@click.option("--force", is_flag=True, help="Export even when validation finds errors.")
def export_cmd(file: Path, output: Path | None, force: bool) -> None:
    """Convert a TOML FILE to a Pacemaker CIB XML document (refuses an invalid configuration)."""
    loaded = read_configuration(file)
    problems = validate(loaded.config)
    if errors(problems) and not force:
        raise _ProblemsFound(file, problems)
    _write(cib_to_xml(m.Cib(configuration=loaded.config)), output)


# --- the summary ------------------------------------------------------------------------------------


def _pairs(sets: list[m.NvSet]) -> str:
    """``a=1 b=2`` for the values that always apply (rule-based sets are marked)."""
    parts: list[str] = []
    for s in sets:
        values = " ".join(f"{k}={v}" for k, v in s.values.items())
        if s.rule is not None and values:
            values = f"({values} when rule {s.rule.id} holds)"
        if values:
            parts.append(values)
    return " ".join(parts)


def _op(op: m.Operation) -> str:
    text = op.name
    if op.interval:
        text += f" every {format_duration_ms(op.interval)}"
    if op.role:
        text += f" as {op.role}"
    if op.timeout is not None:
        text += f" timeout {format_duration_ms(op.timeout)}"
    return text


def _primitive(p: m.Primitive, indent: str) -> list[str]:
    agent = p.agent or (f"template {p.template}" if p.template else "no agent")
    line = f"{indent}{p.id}  {agent}"
    params = _pairs(p.instance_attributes)
    if params:
        line += f"  {params}"
    lines = [line]
    meta = _pairs(p.meta_attributes)
    if meta:
        lines.append(f"{indent}    meta: {meta}")
    if p.operations:
        lines.append(f"{indent}    ops: " + "; ".join(_op(o) for o in p.operations))
    return lines


def _resource(r: m.Resource, indent: str = "  ") -> list[str]:
    if isinstance(r, m.Primitive):
        return _primitive(r, indent)
    if isinstance(r, m.Bundle):
        return [f"{indent}{r.id}  (bundle: kept, not scheduled yet)"]
    meta = _pairs(r.meta_attributes)
    suffix = f"  {meta}" if meta else ""
    if isinstance(r, m.Group):
        lines = [f"{indent}{r.id}  (group){suffix}"]
        for c in r.children:
            lines += _resource(c, indent + "    ")
        return lines
    promotable = any(s.values.get("promotable", "").lower() == "true" for s in r.meta_attributes)
    lines = [f"{indent}{r.id}  ({'promotable clone' if promotable else 'clone'}){suffix}"]
    return lines + _resource(r.child, indent + "    ")


def _refs(c: m.Constraint, one: str | None) -> str:
    if one is not None:
        return one
    return " ".join("[" + " ".join(s.resources) + "]" for s in c.resource_sets) or "?"


def _constraint(c: m.Constraint) -> str:
    if isinstance(c, m.Location):
        who = c.rsc or (f"/{c.rsc_pattern}/" if c.rsc_pattern else _refs(c, None))
        if c.node is not None:
            where = f"on {c.node} score {format_score(c.score or 0)}"
        else:
            where = f"by {len(c.rules)} rule{'s' if len(c.rules) != 1 else ''}"
        return f"location {who} {where}"
    if isinstance(c, m.Colocation):
        if c.resource_sets:
            return f"colocation {_refs(c, None)} score {format_score(c.score)}"
        return f"colocation {c.rsc} with {c.with_rsc} score {format_score(c.score)}"
    if isinstance(c, m.Order):
        kind = c.kind or ("Optional" if c.score == 0 else "Mandatory")
        if c.resource_sets:
            return f"order {_refs(c, None)} ({kind})"
        first_action = c.first_action or "start"
        then_action = c.then_action or first_action
        return f"order {first_action} {c.first} then {then_action} {c.then} ({kind})"
    loss = f", loss-policy {c.loss_policy}" if c.loss_policy else ""
    return f"ticket {c.ticket} for {_refs(c, c.rsc)}{loss}"


def summary(cfg: m.Configuration, source: str) -> list[str]:
    """A readable overview of a configuration, one line per item."""
    name = next((s.values[CLUSTER_NAME] for s in cfg.properties if CLUSTER_NAME in s.values), None)
    lines = [f"Cluster {name}" if name else "Cluster (no name)", f"  from {source}"]
    props = " ".join(f"{k}={v}" for s in cfg.properties for k, v in s.values.items() if k != CLUSTER_NAME)
    if props:
        lines.append(f"  properties: {props}")
    if cfg.rsc_defaults:
        lines.append(f"  resource defaults: {_pairs(cfg.rsc_defaults)}")
    if cfg.op_defaults:
        lines.append(f"  operation defaults: {_pairs(cfg.op_defaults)}")
    lines += ["", f"Nodes ({len(cfg.nodes)})"]
    for n in cfg.nodes:
        extra = _pairs(n.instance_attributes)
        kind = "" if n.type == "member" else f" ({n.type})"
        lines.append(f"  {n.uname}{kind}" + (f"  {extra}" if extra else ""))
    lines += ["", f"Resources ({len(cfg.resources)})"]
    for r in cfg.resources:
        lines += _resource(r)
    if cfg.templates:
        lines += ["", f"Templates ({len(cfg.templates)})"]
        lines += [
            f"  {t.id}  {t.klass}:{t.provider + ':' if t.provider else ''}{t.type}" for t in cfg.templates
        ]
    lines += ["", f"Constraints ({len(cfg.constraints)})"]
    lines += [f"  {c.id}: {_constraint(c)}" for c in cfg.constraints]
    if cfg.fencing_topology:
        lines += ["", "Fencing levels"]
        for lv in cfg.fencing_topology:
            target = lv.target or lv.target_pattern or f"{lv.target_attribute}={lv.target_value}"
            lines.append(f"  {target} level {lv.index}: {', '.join(lv.devices)}")
    if cfg.tags:
        lines += ["", "Tags"] + [f"  {t.id}: {', '.join(t.refs)}" for t in cfg.tags]
    if cfg.alerts:
        lines += ["", "Alerts"] + [f"  {a.id}: {a.path}" for a in cfg.alerts]
    return lines
