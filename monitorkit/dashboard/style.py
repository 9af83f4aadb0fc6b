"""The dashboard's look: one stylesheet for its HTML panes (Panel renders each in a shadow root)."""

from __future__ import annotations

from typing import Any

import panel as pn

CSS = """
.mk-table { border-collapse: collapse; width: 100%; font-size: 12px; }
.mk-table th { text-align: left; background: #f2f4f7; padding: 3px 6px; position: sticky; top: 0; }
.mk-table td { padding: 2px 6px; border-bottom: 1px solid #eaecf0; }
.mk-table caption { text-align: left; font-weight: 600; padding: 2px 0 4px; }
.mk-badge { color: #fff; border-radius: 3px; padding: 1px 6px; font-size: 11px; text-transform: uppercase; }
.mk-dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; }
.mk-error { color: #b42318; font-weight: 600; }
.mk-done { color: #067647; }
.mk-ok { color: #067647; }
.mk-empty { color: #667085; font-style: italic; }
.mk-alert { font-size: 13px; line-height: 1.4; }
.mk-state { font-weight: 600; text-transform: uppercase; font-size: 11px; }
.mk-timeout td, .mk-error td { color: #b42318; }
.mk-key { margin-right: 10px; }
.mk-note { color: #175cd3; }
.mk-chart-head { display: flex; gap: 6px; align-items: baseline; white-space: nowrap; overflow: hidden; }
.mk-chart-head > span { overflow: hidden; text-overflow: ellipsis; min-width: 0; }
.mk-chart-title { font-size: 12px; font-weight: 600; color: #101828; }
.mk-source { font-size: 10px; color: #667085; font-family: ui-monospace, monospace; overflow: hidden;
  text-overflow: ellipsis; min-width: 0; }
#mk-status { font-size: 12px; color: #475467; white-space: nowrap; }
"""


def html_pane(obj: str = "", **kwargs: Any) -> pn.pane.HTML:
    """Return an HTML pane carrying the dashboard stylesheet."""
    return pn.pane.HTML(obj, stylesheets=[CSS], **kwargs)
