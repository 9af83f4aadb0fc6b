"""Three browser-side fixes to BokehJS 3.9 that take a dashboard tick from 250-350 ms of Chromium's main thread to ~60.

Found with a CDP CPU profile, a ``longtask`` observer and a DevTools timeline trace (style
invalidation tracking) of the overview at 1440x900; ``benchmarks/dashboard_bench.py`` prints the
update lag they shorten. Per tick, before -> after, on this 2-core machine:

1. **Local relayout.** BokehJS answers any change in the size of a plot's side panel (a y-axis whose
   labels grow from "8 %" to "10 %" as the window slides) with ``compute_layout()`` on the document's
   root: every view of the page is measured again, each plot's toolbar reads
   ``getBoundingClientRect`` (a forced reflow each) and every plot repaints. BokehJS's own comment on
   ``invalidate_layout`` says a localized update would be better. Here a plot lays out only itself
   when nothing but a side panel changed: its outer box is set by CSS (the card's width, a fixed
   height), so only its frame and axes move inside it. Any other reason (``_needs_layout``: a plot
   resized, renderers added) still takes BokehJS's full path. Long task 282-350 -> 99-137 ms.
2. **No rewrite of an unchanged stylesheet.** Every renderer's ``paint()`` re-sets the text of its
   ``<style>`` element (``InlineStyleSheet.replace``) even when the text is the same; each write is a
   "style rule change" and the next style read forces a recalculation of the page: ~60 a tick.
3. **Glyph renderers are not positioned as DOM boxes.** Each line's renderer element (empty: lines
   are drawn on the canvas) is moved to its data's screen extent on every paint, which changes as the
   window slides, so its stylesheet changes every tick whatever (2) skips. Nothing reads that box:
   hover and hit tests map data coordinates on the canvas.
   With 2 and 3, style recalculations 282-329 -> 45 per 5 s (295 -> 67 ms); long tasks 11-15 in 20 s
   (was one every tick), mean 60-63 ms.

Applied once per page from the grid's render script (every dashboard, served or in a notebook); a
BokehJS without these internals is left as it is.
"""

from __future__ import annotations

BOKEH_FIXES_JS = """
(() => {
  const B = window.Bokeh
  if (B == null || typeof B.require !== "function" || B.__mk_fixed) return
  let PlotView, InlineStyleSheet, GlyphRendererView
  try {
    PlotView = B.require("models/plots/plot_canvas").PlotView
    InlineStyleSheet = B.require("core/dom").InlineStyleSheet
    GlyphRendererView = B.require("models/renderers/glyph_renderer").GlyphRendererView
  } catch (e) {
    return
  }
  const plot = PlotView && PlotView.prototype
  const sheet = InlineStyleSheet && InlineStyleSheet.prototype
  const glyph = GlyphRendererView && GlyphRendererView.prototype
  if (plot == null || typeof plot._invalidate_layout_if_needed !== "function" || sheet == null
      || typeof sheet._update !== "function" || glyph == null || typeof glyph.update_position !== "function") return
  B.__mk_fixed = true
  const whole = plot._invalidate_layout_if_needed
  plot._invalidate_layout_if_needed = function () {
    if (this._needs_layout) return whole.call(this)
    for (const panel of this.model.side_panels) {
      const view = this.renderer_views.get(panel)
      if (view != null && view.layout != null && view.layout.has_size_changed()) {
        this.invalidate_painters(view)
        this.measure_layout()
        this.update_bbox()
        this._compute_layout()
        this.after_layout()
        return
      }
    }
  }
  const write = sheet._update
  sheet._update = function (css) {
    if (this.el.textContent !== css) write.call(this, css)
  }
  glyph.update_position = function () {}
})()
"""
