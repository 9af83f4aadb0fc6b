"""Bad samples are refused whole with typed errors; bad files and folders fail cleanly and stay untouched."""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from shared_helpers import child_env
from store_helpers import PYTHON, isolated_settings

import monitorkit
from monitorkit import (
    InvalidLabelError,
    InvalidMetricNameError,
    InvalidSampleError,
    InvalidValueError,
    Sample,
    Store,
    StoreCorruptError,
    StorePermissionError,
)
from monitorkit.errors import ConfigError, StoreWriteError
from monitorkit.owner.connect import connect

T = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
GOOD = Sample(T, "cpu_percent", {"cpu": "0"}, 1.5)

BAD_SAMPLES: list[tuple[str, Sample, type[InvalidSampleError], str]] = [
    ("name-dash", GOOD._replace(name="cpu-percent"), InvalidMetricNameError, "'cpu-percent'"),
    ("name-digit", GOOD._replace(name="9lives"), InvalidMetricNameError, "not starting with a digit"),
    ("name-empty", GOOD._replace(name=""), InvalidMetricNameError, "invalid metric name ''"),
    ("name-long", GOOD._replace(name="a" * 201), InvalidMetricNameError, "at most 200"),
    ("name-not-str", GOOD._replace(name=7), InvalidMetricNameError, "invalid metric name 7"),  # type: ignore[arg-type]
    ("label-int", GOOD._replace(labels={"cpu": 0}), InvalidLabelError, "must be strings (pass str(0)"),  # type: ignore[dict-item]
    ("label-none", GOOD._replace(labels={"cpu": None}), InvalidLabelError, "must be strings"),  # type: ignore[dict-item]
    ("label-name-dash", GOOD._replace(labels={"bad-name": "x"}), InvalidLabelError, "invalid label name 'bad-name'"),
    ("label-name-dunder", GOOD._replace(labels={"__name__": "x"}), InvalidLabelError, "'__name__'"),
    ("label-name-digit", GOOD._replace(labels={"0x": "x"}), InvalidLabelError, "invalid label name '0x'"),
    ("labels-not-mapping", GOOD._replace(labels=[("a", "b")]), InvalidLabelError, "must be a mapping"),  # type: ignore[arg-type]
    ("label-too-long", GOOD._replace(labels={"a": "x" * 1025}), InvalidLabelError, "longer than 1024"),
    ("nan", GOOD._replace(value=math.nan), InvalidValueError, "only finite numbers"),
    ("inf", GOOD._replace(value=math.inf), InvalidValueError, "is inf"),
    ("-inf", GOOD._replace(value=-math.inf), InvalidValueError, "is -inf"),
    ("value-str", GOOD._replace(value="1.5"), InvalidValueError, "must be a number, got str"),  # type: ignore[arg-type]
    ("value-bool", GOOD._replace(value=True), InvalidValueError, "must be a number, got bool"),
    ("naive-time", GOOD._replace(time=datetime(2025, 1, 1)), InvalidValueError, "naive; pass an aware datetime"),
    ("epoch-time", GOOD._replace(time=1_700_000_000.0), InvalidValueError, "must be a datetime"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("bad", "error", "hint"), [b[1:] for b in BAD_SAMPLES], ids=[b[0] for b in BAD_SAMPLES])
def test_bad_sample_rejects_the_whole_batch(store: Store, bad: Sample, error: type[Exception], hint: str) -> None:
    before = [GOOD._replace(time=T.replace(minute=m), value=float(m)) for m in range(5)]
    store.write(before)
    store.flush()
    snapshot = store.query("SELECT time, name, labels, value FROM samples ORDER BY time")
    series = store.query("SELECT count(*) FROM series")

    new_good = [Sample(T, "fresh_metric", {"k": "v"}, 2.0), GOOD._replace(time=T.replace(hour=13))]
    with pytest.raises(error) as info:
        store.write([*new_good, bad, *new_good])
    assert hint in str(info.value)
    assert isinstance(info.value, monitorkit.MonitorkitError) and isinstance(info.value, ValueError)

    store.flush()
    assert store.query("SELECT time, name, labels, value FROM samples ORDER BY time") == snapshot
    assert store.query("SELECT count(*) FROM series") == series
    assert store.writer.dropped == 0 and store.writer.last_error is None


def test_make_sample_raises_the_same_errors() -> None:
    with pytest.raises(InvalidMetricNameError, match="http_requests_total"):
        monitorkit.make_sample("bad name", 1.0)
    with pytest.raises(InvalidLabelError, match="on metric 'ok'"):
        monitorkit.make_sample("ok", 1.0, {"x": 1})  # type: ignore[dict-item]
    with pytest.raises(InvalidValueError, match="for metric 'ok'"):
        monitorkit.make_sample("ok", math.nan)


# --- files that are not DuckDB databases ------------------------------------------------------------


def _text(path: Path) -> None:
    path.write_text("time,value\n2025-01-01,1\n" * 200)


def _random(path: Path) -> None:
    path.write_bytes(os.urandom(256 * 1024))


def _sqlite(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()


def _good_db(path: Path) -> None:
    with Store(path, settings=isolated_settings()) as store:
        store.write([GOOD])


def _truncated(path: Path) -> None:
    _good_db(path)
    with path.open("r+b") as fh:
        fh.truncate(5000)


def _garbled(path: Path) -> None:
    _good_db(path)
    with path.open("r+b") as fh:
        fh.seek(3 * 4096)
        fh.write(os.urandom(8192))


@pytest.mark.parametrize("make", [_text, _random, _sqlite, _truncated, _garbled], ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("opener", ["store", "connect"])
def test_non_duckdb_file_is_refused_and_left_untouched(tmp_db: Path, make: Any, opener: str) -> None:
    make(tmp_db)
    before = tmp_db.read_bytes()
    files = sorted(p.name for p in tmp_db.parent.iterdir())
    with pytest.raises(StoreCorruptError, match="left untouched"):
        if opener == "store":
            Store(tmp_db, settings=isolated_settings())
        else:
            connect(tmp_db)
    assert tmp_db.read_bytes() == before
    assert sorted(p.name for p in tmp_db.parent.iterdir()) == files


def test_folder_at_the_database_path_is_refused(tmp_db: Path) -> None:
    tmp_db.mkdir()
    with pytest.raises(monitorkit.StoreError, match="is a folder"):
        Store(tmp_db, settings=isolated_settings())


# --- folders and files this process may not write ---------------------------------------------------

NOBODY = 65534

# As root, drops to nobody once everything is imported (the interpreter lives under /root, which
# nobody cannot read), then prints the outcome of opening each path: "<path> <ErrorType> <message>".
OPEN_AS_NOBODY = """
import importlib, os, sys
from monitorkit import Store
from monitorkit.config import DEFAULTS, Settings
from monitorkit.owner.schema import SCHEMA  # loaded before dropping privileges, like the owner does
os.setgroups([])
os.setgid(int(sys.argv[1]))
os.setuid(int(sys.argv[1]))
assert os.geteuid() != 0
for path in sys.argv[2:]:
    try:
        Store(path, settings=Settings(DEFAULTS, {}), schema=SCHEMA).close()
        print(path, "OPENED")
    except Exception as exc:
        print(path, type(exc).__name__, exc)
"""


@pytest.fixture
def locked_folder() -> Iterator[Path]:
    """A folder this test's user (or ``nobody`` when running as root) cannot write, with a database inside."""
    # Under /tmp, not tmp_path: pytest's base folder is private (0700) so nobody could not even reach it.
    folder = Path(tempfile.mkdtemp(prefix="monitorkit-perm-"))
    try:
        _good_db(folder / "existing.duckdb")
        writable = folder / "open"
        writable.mkdir()
        _good_db(writable / "theirs.duckdb")
        (writable / "theirs.duckdb").chmod(0o444)
        if os.geteuid() == 0:
            writable.chmod(0o777)
            folder.chmod(0o755)  # owned by root: nobody may read and enter, not write
        else:
            writable.chmod(0o755)
            folder.chmod(0o555)
        yield folder
    finally:
        folder.chmod(0o755)
        (folder / "open").chmod(0o755)
        shutil.rmtree(folder)


def test_unwritable_folder_and_file_raise_store_permission_error(locked_folder: Path) -> None:
    paths = [
        locked_folder / "new.duckdb",
        locked_folder / "sub" / "new.duckdb",
        locked_folder / "existing.duckdb",
        locked_folder / "open" / "theirs.duckdb",
    ]
    before = {p: p.read_bytes() for p in paths if p.exists()}
    if os.geteuid() == 0:
        import subprocess

        result = subprocess.run(
            [PYTHON, "-c", OPEN_AS_NOBODY, str(NOBODY), *map(str, paths)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=locked_folder,
            env={**child_env(), "HOME": str(locked_folder)},
        )
        assert result.returncode == 0, result.stderr
        outcome = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    else:
        outcome = {}
        for p in paths:
            try:
                Store(p, settings=isolated_settings()).close()
                outcome[str(p)] = "OPENED"
            except monitorkit.MonitorkitError as exc:
                outcome[str(p)] = f"{type(exc).__name__} {exc}"
    for p in paths:
        assert outcome[str(p)].startswith("StorePermissionError "), outcome
    assert "not writable" in outcome[str(paths[0])]
    assert "cannot create folder" in outcome[str(paths[1])]
    assert not paths[0].exists() and not paths[1].parent.exists()
    assert {p: p.read_bytes() for p in paths if p.exists()} == before
    assert issubclass(StorePermissionError, PermissionError)


def test_batch_failing_in_the_writer_is_counted_and_forgotten(store: Store) -> None:
    store.write([GOOD])
    store.flush()
    # validate=False lets a bad value reach the writer: the batch fails after its series were inserted
    # in the same transaction (float("x") while rendering the values), which must roll them back.
    bad = [Sample(T, "late_metric", {"b": "1", "a": "2"}, 1.0), Sample(T, "late_metric", {"a": "2", "b": "1"}, "x")]  # type: ignore[arg-type]
    store.write(bad, validate=False)
    with pytest.raises(StoreWriteError, match="samples were not stored: ValueError"):
        store.flush()  # nothing unstored is acknowledged
    assert store.writer.dropped == 2 and store.writer.last_error is not None
    assert [p.status for p in store.parts() if p.component == "writer"] == ["failing"]
    assert store.query("SELECT count(*) FROM series") == [(1,)]
    store.write([Sample(T, "late_metric", {"a": "2", "b": "1"}, 3.0), Sample(T, "late_metric", {"b": "1", "a": "2"}, 4.0)])
    store.flush()
    assert store.writer.last_error is None
    assert [p.status for p in store.parts() if p.component == "writer"] == ["ok"]
    assert store.query("SELECT name, labels, value FROM samples WHERE name = 'late_metric' ORDER BY value") == [
        ("late_metric", {"a": "2", "b": "1"}, 3.0),
        ("late_metric", {"a": "2", "b": "1"}, 4.0),
    ]
    assert store.query("SELECT count(*) FROM series") == [(2,)]


def test_the_owners_memory_is_bounded_and_a_bad_limit_is_refused(tmp_path: Path) -> None:
    with Store(tmp_path / "a.duckdb", settings=isolated_settings(**{"store.memory_limit": "256MB"})) as store:
        assert store.query("SELECT current_setting('memory_limit')") == [("244.1 MiB",)]
    with pytest.raises(ConfigError, match=r"store\.memory_limit must be a size"):
        Store(tmp_path / "b.duckdb", settings=isolated_settings(**{"store.memory_limit": "1GB'; ATTACH 'x"}))
