"""Named dashboard layouts: which panels, in what order and size, saved in the ``layouts`` table.

A layout is plain JSON so dashboards can live in git::

    {"version": 1, "range": "15m", "live": true,
     "panels": [{"kind": "cpu", "width": 6, "height": 320, "x": 0, "y": 0},
                {"kind": "sql", "options": {"query": "FROM latest"}}]}

``x`` (column, 0-11) and ``y`` (row of ``ROW`` pixels) say where a panel sits on the grid; panels
without them follow the others left to right. The built-in layouts (``BUILTIN_LAYOUTS``) are
always offered and cannot be overwritten or deleted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from monitorkit.dashboard.errors import LayoutError, LayoutNotFoundError
from monitorkit.samples import utcnow

SPEC_VERSION = 1
GRID_COLUMNS = 12
MIN_HEIGHT, MAX_HEIGHT = 160, 1200
ROW = 20  # pixels per grid row: heights snap to it, ``y`` counts it
MAX_Y = 10_000
NAME_MAX = 80
MAX_DEPTH = 16  # nesting of a layout file's JSON (a spec needs 5)
MAX_BYTES = 1 << 20

# Panel kinds and their titles; monitorkit.dashboard.panels builds each one.
PANEL_KINDS: dict[str, str] = {
    "cpu": "CPU",
    "memory": "Memory",
    "disk": "Disk",
    "network": "Network",
    "cores": "CPU per core",
    "nics": "Network per interface",
    "swap": "Swap",
    "disk_io": "Disk I/O per device",
    "tcp": "TCP",
    "system": "Processes and file descriptors",
    "processes": "Top processes",
    "app": "Application metrics",
    "alerts": "Alerts",
    "health": "Health",
    "sql": "SQL console",
    "fleet": "Fleet overview",
    "explore": "Explore",
}
RANGES: dict[str, int] = {"5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800, "30d": 2592000,
                          "90d": 7776000, "1y": 31536000}


class PanelSpec(NamedTuple):
    """One panel of a layout: ``PanelSpec("cpu", width=6, height=320)``; width in 12ths of the row.

    ``x`` (column) and ``y`` (grid row) place it; None: after the panels before it, left to right.
    """

    kind: str
    width: int = 6
    height: int = 320
    options: Mapping[str, Any] = {}
    x: int | None = None
    y: int | None = None


class Layout(NamedTuple):
    """A named arrangement of panels with the time range it opens on."""

    name: str
    panels: tuple[PanelSpec, ...]
    range: str = "15m"
    live: bool = True


class LayoutInfo(NamedTuple):
    """A row of ``list_layouts``."""

    name: str
    is_default: bool
    panels: int
    updated_at: datetime


DEFAULT_LAYOUT = Layout(
    "overview",
    (
        PanelSpec("cpu", 6, 300), PanelSpec("memory", 6, 300), PanelSpec("disk", 6, 300), PanelSpec("network", 6, 300),
        PanelSpec("alerts", 6, 360), PanelSpec("health", 6, 360), PanelSpec("processes", 12, 560),
        PanelSpec("app", 12, 500), PanelSpec("sql", 12, 520),
    ),
)
# Every host chart (node-exporter-full's detail rows too): more charts than the overview streams.
HOST_LAYOUT = Layout(
    "host",
    (
        PanelSpec("cpu", 6, 300), PanelSpec("memory", 6, 300), PanelSpec("cores", 6, 300), PanelSpec("swap", 6, 300),
        PanelSpec("disk", 6, 300), PanelSpec("disk_io", 6, 300), PanelSpec("network", 6, 300), PanelSpec("tcp", 6, 300),
        PanelSpec("nics", 12, 300), PanelSpec("system", 6, 300), PanelSpec("health", 6, 300),
        PanelSpec("processes", 12, 560),
    ),
)
# Offered in every dashboard whatever is saved; the first one opens when no saved layout is the default.
BUILTIN_LAYOUTS: dict[str, Layout] = {DEFAULT_LAYOUT.name: DEFAULT_LAYOUT, HOST_LAYOUT.name: HOST_LAYOUT}


def check_saveable(name: str) -> str:
    """Return ``name`` if a layout may be saved under it (not a built-in's), else raise LayoutError."""
    name = check_name(name)
    if name in BUILTIN_LAYOUTS:
        raise LayoutError(f"'{name}' is a built-in layout and stays as shipped: save your changes under another name")
    return name


def check_name(name: object) -> str:
    """Return ``name`` if it can name a layout (1-80 printable characters), else raise LayoutError."""
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX or not name.isprintable():
        raise LayoutError(f"a layout name must be 1-{NAME_MAX} printable characters, got {name!r}")
    return name.strip()


def _int(value: object, what: str, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise LayoutError(f"{what} must be an integer from {lo} to {hi}, got {value!r}")
    return value


def parse_panel(data: object, index: int = 0) -> PanelSpec:
    """Return the PanelSpec described by a JSON object, else raise LayoutError."""
    if not isinstance(data, Mapping):
        raise LayoutError(f"panel {index} must be an object like {{\"kind\": \"cpu\"}}, got {data!r}")
    unknown = set(data) - {"kind", "width", "height", "options", "x", "y"}
    if unknown:
        raise LayoutError(f"panel {index} has unknown keys {sorted(unknown)}; use kind, width, height, options, x, y")
    kind = data.get("kind")
    if kind not in PANEL_KINDS:
        raise LayoutError(f"panel {index} has unknown kind {kind!r}; use one of {', '.join(PANEL_KINDS)}")
    options = data.get("options", {})
    if not isinstance(options, Mapping):
        raise LayoutError(f"panel {index} options must be an object")
    width = _int(data.get("width", 6), f"panel {index} width", 1, GRID_COLUMNS)
    x = None if data.get("x") is None else _int(data["x"], f"panel {index} x", 0, GRID_COLUMNS - width)
    y = None if data.get("y") is None else _int(data["y"], f"panel {index} y", 0, MAX_Y)
    return PanelSpec(
        str(kind), width, _int(data.get("height", 320), f"panel {index} height", MIN_HEIGHT, MAX_HEIGHT),
        dict(options), x, y,
    )


def parse_spec(data: object, name: str) -> Layout:
    """Return the Layout a spec (the JSON object) describes, else raise LayoutError saying what is wrong."""
    if not isinstance(data, Mapping):
        raise LayoutError("a layout spec must be a JSON object with a 'panels' list")
    version = data.get("version", SPEC_VERSION)
    if version != SPEC_VERSION:
        raise LayoutError(f"layout spec version {version!r} is not supported (this monitorkit reads version {SPEC_VERSION})")
    panels = data.get("panels")
    if not isinstance(panels, list) or not panels:
        raise LayoutError("a layout spec needs a non-empty 'panels' list")
    rng = data.get("range", "15m")
    if rng not in RANGES:
        raise LayoutError(f"layout range {rng!r} is not one of {', '.join(RANGES)}")
    live = data.get("live", True)
    if not isinstance(live, bool):
        raise LayoutError("layout 'live' must be true or false")
    return Layout(check_name(name), tuple(parse_panel(p, i) for i, p in enumerate(panels)), rng, live)


def to_spec(layout: Layout) -> dict[str, Any]:
    """Return the JSON object that ``parse_spec`` reads back into ``layout`` (without its name)."""
    return {
        "version": SPEC_VERSION,
        "range": layout.range,
        "live": layout.live,
        "panels": [{"kind": p.kind, "width": p.width, "height": p.height,
                    **({"x": p.x, "y": p.y} if p.x is not None and p.y is not None else {}),
                    **({"options": dict(p.options)} if p.options else {})}
                   for p in layout.panels],
    }


def to_file_json(layout: Layout) -> str:
    """Return the export file text: the spec with its name."""
    return json.dumps({"name": layout.name, **to_spec(layout)}, indent=2) + "\n"


def load_json(text: str | bytes) -> Any:
    """Return the JSON value of ``text``, else raise LayoutError (bad JSON, NaN, too large or too deeply nested)."""
    if len(text) > MAX_BYTES:
        raise LayoutError(f"a layout file is at most {MAX_BYTES // 1024} KiB, this one has {len(text) // 1024} KiB")

    def refuse(constant: str) -> Any:
        raise LayoutError(f"layout JSON may not hold {constant}")

    try:
        data = json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as exc:
        raise LayoutError(f"layout file is not valid JSON: {exc}") from None
    except RecursionError:
        raise LayoutError(f"layout JSON is nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:  # an integer past Python's digit limit, bytes not UTF-8
        raise LayoutError(f"layout file is not valid JSON: {exc}") from None
    _check_depth(data)
    return data


def _check_depth(data: Any) -> None:
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise LayoutError(f"layout JSON is nested deeper than {MAX_DEPTH} levels")
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children)


def layout_from_data(data: object, name: str | None = None) -> Layout:
    """Return the Layout an export file's JSON object describes; ``name`` overrides the name inside."""
    if not isinstance(data, dict):
        raise LayoutError("a layout file must hold a JSON object")
    data = dict(data)
    chosen = name or data.pop("name", None)
    data.pop("name", None)
    if chosen is None:
        raise LayoutError("the layout file has no 'name'; pass one (--name)")
    return parse_spec(data, chosen)


def from_file_json(text: str, name: str | None = None) -> Layout:
    """Return the Layout in an export file's text; ``name`` overrides the name inside."""
    return layout_from_data(load_json(text), name)


def read_layout_file(path: str | Path, name: str | None = None) -> Layout:
    """Read an exported layout file."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise LayoutError(f"cannot read layout file {path}: {exc.strerror}") from None
    return from_file_json(text, name)


# Reads take any connection with execute() (a Store cursor, monitorkit.connect()); writes take
# the owner's write connection and run in its writer thread (store.writer.submit).


def list_layouts(con: Any) -> list[LayoutInfo]:
    """Return the saved layouts, the default first, then by name."""
    rows = con.execute(
        "SELECT name, is_default, json_array_length(spec -> '$.panels'), updated_at FROM layouts "
        "ORDER BY is_default DESC, name"
    ).fetchall()
    return [LayoutInfo(r[0], bool(r[1]), int(r[2] or 0), r[3]) for r in rows]


def load_layout(con: Any, name: str) -> Layout:
    """Return the layout saved as ``name``, else raise LayoutNotFoundError."""
    rows = con.execute("SELECT spec::VARCHAR FROM layouts WHERE name = ?", [name]).fetchall()
    if not rows:
        raise LayoutNotFoundError(f"no layout named {name!r}; list them with `monitorkit layouts list`")
    return parse_spec(json.loads(rows[0][0]), name)


def find_layout(con: Any, name: str) -> Layout:
    """Return the layout saved as ``name``, else the built-in one of that name, else raise LayoutNotFoundError."""
    rows = con.execute("SELECT spec::VARCHAR FROM layouts WHERE name = ?", [name]).fetchall()
    if rows:
        return parse_spec(json.loads(rows[0][0]), name)
    if name in BUILTIN_LAYOUTS:
        return BUILTIN_LAYOUTS[name]
    known = [*BUILTIN_LAYOUTS, *(i.name for i in list_layouts(con))]
    raise LayoutNotFoundError(f"no layout named {name!r}; the layouts are: {', '.join(known)}")


def default_layout(con: Any) -> Layout:
    """Return the layout marked default, or the built-in overview when none is."""
    rows = con.execute("SELECT name, spec::VARCHAR FROM layouts WHERE is_default LIMIT 1").fetchall()
    if not rows:
        return DEFAULT_LAYOUT
    return parse_spec(json.loads(rows[0][1]), rows[0][0])


def save_layout(con: Any, layout: Layout, *, default: bool = False, now: datetime | None = None) -> Layout:
    """Insert or replace ``layout`` (write connection); ``default=True`` also makes it the default."""
    check_saveable(layout.name)
    at = now or utcnow()
    spec = json.dumps(to_spec(layout))
    con.execute("BEGIN TRANSACTION")
    try:
        exists = con.execute("SELECT is_default FROM layouts WHERE name = ?", [layout.name]).fetchall()
        if default:
            con.execute("UPDATE layouts SET is_default = false WHERE is_default AND name <> ?", [layout.name])
        if exists:
            con.execute(
                "UPDATE layouts SET spec = ?, is_default = ?, updated_at = ? WHERE name = ?",
                [spec, default or bool(exists[0][0]), at, layout.name],
            )
        else:
            con.execute(
                "INSERT INTO layouts (name, spec, is_default, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                [layout.name, spec, default, at, at],
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return layout


def set_default(con: Any, name: str, now: datetime | None = None) -> None:
    """Make ``name`` the default layout (write connection)."""
    at = now or utcnow()
    con.execute("BEGIN TRANSACTION")
    try:
        if not con.execute("SELECT 1 FROM layouts WHERE name = ?", [name]).fetchall():
            raise LayoutNotFoundError(f"no layout named {name!r}; save it first")
        con.execute("UPDATE layouts SET is_default = false WHERE is_default AND name <> ?", [name])
        con.execute("UPDATE layouts SET is_default = true, updated_at = ? WHERE name = ?", [at, name])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def clear_default(con: Any, now: datetime | None = None) -> None:
    """Make no saved layout the default (write connection): new sessions open the built-in overview."""
    con.execute("UPDATE layouts SET is_default = false, updated_at = ? WHERE is_default", [now or utcnow()])


def delete_layout(con: Any, name: str) -> None:
    """Delete the layout ``name`` (write connection), else raise LayoutNotFoundError."""
    if not con.execute("SELECT 1 FROM layouts WHERE name = ?", [name]).fetchall():
        raise LayoutNotFoundError(f"no layout named {name!r}")
    con.execute("DELETE FROM layouts WHERE name = ?", [name])


def install_layout(db: str | Path, layout: Layout, *, default: bool = False, settings: Any = None) -> str:
    """Save ``layout`` into ``db``: through the running dashboard's API, or on the file when no owner runs.

    Returns how it was saved ("owner" or "file").
    """
    import urllib.error
    import urllib.request

    from monitorkit.owner.schema import SCHEMA
    from monitorkit.owner.sidecar import read_owner
    from monitorkit.store import Store

    owner = read_owner(db)
    if owner is None:
        with Store(db, settings=settings, schema=SCHEMA) as store:
            store.submit(lambda con: save_layout(con, layout, default=default)).result(30)
        return "file"
    url, key = owner.extra.get("dashboard_url"), owner.extra.get("dashboard_api_key")
    if not url or not key:
        raise LayoutError(
            f"{db} is owned by process {owner.pid}, which does not serve the dashboard; "
            "run `monitorkit serve` instead of `monitorkit collect`, or stop it and import again"
        )
    body = json.dumps({"layout": json.loads(to_file_json(layout)), "default": default}).encode()
    request = urllib.request.Request(f"{url}/api/layouts", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=30):
            return "owner"
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        raise LayoutError(f"the dashboard refused the layout: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise LayoutError(f"the dashboard of process {owner.pid} did not answer at {url}: {exc}") from None
