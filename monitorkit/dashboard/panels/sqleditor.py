"""The console's query box: a textarea that runs its query on Ctrl+Enter (Cmd+Enter on a Mac).

Panel's TextAreaInput cannot see key presses, so this small ReactiveHTML component keeps the
text in ``value`` (synced as the user types) and counts runs in ``runs``; the text is set as the
textarea's property, never parsed as HTML.
"""

from __future__ import annotations

import param
from panel.reactive import ReactiveHTML

CSS = """
textarea { width: 100%; height: 100%; box-sizing: border-box; resize: vertical; font: 12px/1.4 ui-monospace, monospace;
  padding: 6px 8px; border: 1px solid #d0d5dd; border-radius: 4px; color: #101828; background: #fcfcfd; }
textarea:focus { outline: 2px solid #84adff; border-color: #528bff; }
"""


class SqlEditor(ReactiveHTML):
    """A textarea whose ``runs`` grows by one on Ctrl+Enter (or Cmd+Enter)."""

    value = param.String(default="", doc="The query text.")
    runs = param.Integer(default=0, doc="How many times Ctrl+Enter was pressed.")

    _template = ('<textarea id="area" spellcheck="false" placeholder="SELECT ... (Ctrl+Enter runs)" '
                 'oninput="${script(\'typed\')}" onkeydown="${script(\'key\')}"></textarea>')
    _scripts = {  # noqa: RUF012 (Panel reads these class attributes)
        "render": "area.value = data.value;",
        "value": "if (area.value !== data.value) { area.value = data.value; }",
        "typed": "data.value = area.value;",
        "key": ("if ((event.ctrlKey || event.metaKey) && event.key === 'Enter') { event.preventDefault(); "
                "data.value = area.value; data.runs = data.runs + 1; }"),
    }
    _stylesheets = [CSS]  # noqa: RUF012
