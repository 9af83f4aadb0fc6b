"""How a library error reads on the command line: its message, plus where to go next when the CLI knows."""

from __future__ import annotations

from monitorkit.errors import MonitorkitError, OwnerExistsError


def explain(exc: MonitorkitError) -> str:
    """Return the one message the CLI prints for ``exc`` (a refused second owner says where the first one's dashboard is)."""
    if isinstance(exc, OwnerExistsError):
        return f"{exc}\n{running_dashboard(exc.path)}"
    return str(exc)


def running_dashboard(db: str) -> str:
    """Return a line saying where the running owner of ``db`` serves its dashboard, or that it serves none."""
    from monitorkit.owner.sidecar import read_owner

    owner = read_owner(db)
    if owner is None:
        return "The owner has stopped since; try again."
    url = owner.extra.get("dashboard_url")
    if url:
        return (f"Its dashboard: {url} (`monitorkit token --db {db}` prints a fresh login URL; "
                "`monitorkit status` shows more).")
    return (f"It serves no dashboard (started by `monitorkit collect`); stop process {owner.pid} and run "
            "`monitorkit serve` to have one.")
