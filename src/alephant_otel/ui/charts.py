"""Charts as inline SVG drawn on the server: no script, no library, nothing to download.

Geometry is in SVG attributes (allowed by the page's Content-Security-Policy, which forbids
inline styles and scripts); colours come from classes in static/ui.css. Labels are escaped
like any other text.
"""
from __future__ import annotations

from .html import Html, h, join


def _n(x: float) -> str:
    return f"{x:.1f}"


def _short(text, limit: int = 42) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def line_chart(labels: list[str], series: dict[str, list], unit: str, width: int = 760, height: int = 230) -> Html:
    """Lines of `series` (name -> values, None = no point) over `labels`, with a zero line;
    every point has a tooltip. Names are CSS classes (cost, revenue, margin)."""
    left, right, top, bottom = 88, 44, 26, 34
    values = [float(v) for vs in series.values() for v in vs if v is not None]
    lo, hi = min([0.0] + values), max([0.0] + values)
    if hi == lo:
        hi = lo + 1.0
    span_x = max(len(labels) - 1, 1)

    def x(i):
        return left + (width - left - right) * (i / span_x if len(labels) > 1 else 0.5)

    def y(v):
        return top + (height - top - bottom) * (1 - (float(v) - lo) / (hi - lo))

    parts = [h('<line class="axis" x1="{}" y1="{}" x2="{}" y2="{}"/>', left, _n(y(0)), width - right, _n(y(0)))]
    for v in sorted({lo, 0.0, hi}):
        if v != 0 and abs(y(v) - y(0)) < 14:  # would print over the zero tick
            continue
        parts.append(h('<text class="tick" x="{}" y="{}" text-anchor="end">{}</text>', left - 6, _n(y(v) + 4),
                       f"{v:.4g}"))
    ticks = sorted({0, len(labels) // 2, len(labels) - 1}) if labels else []
    for i in ticks:
        parts.append(h('<text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>', _n(x(i)), height - 10,
                       labels[i]))
    for k, (name, vs) in enumerate(series.items()):
        pts = [(x(i), y(v)) for i, v in enumerate(vs) if v is not None]
        if len(pts) > 1:
            parts.append(h('<polyline class="line {}" points="{}"/>', name, " ".join(f"{_n(a)},{_n(b)}" for a, b in pts)))
        for i, v in enumerate(vs):
            if v is not None:
                parts.append(h('<circle class="dot {}" cx="{}" cy="{}" r="3.5"><title>{} {}: {} {}</title></circle>',
                               name, _n(x(i)), _n(y(v)), labels[i], name, v, unit))
        parts.append(h('<rect class="key {}" x="{}" y="6" width="10" height="10"/><text class="legend" x="{}" y="15">{}</text>',
                       name, left + 110 * k, left + 110 * k + 14, name))
    return h('<svg class="chart" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">{}</svg>',
             width, height, width, height, f"{', '.join(series)} per day ({unit})", join(parts))


def duration_bar(offset: float, length: float, total: float, cls: str = "", width: int = 160) -> Html:
    """A bar from `offset` for `length` on a scale of `total` (a run's span)."""
    total = total or 1.0
    x0 = max(0.0, min(1.0, offset / total)) * width
    w = max(1.0, min(1.0, length / total) * width)
    return h('<svg class="bar" viewBox="0 0 {} 10" width="{}" height="10" aria-hidden="true">'
             '<rect class="track" x="0" y="0" width="{}" height="10"/><rect class="span {}" x="{}" y="1" width="{}" height="8"/></svg>',
             width, width, width, cls, _n(x0), _n(min(w, width - x0) if x0 < width else 1.0))


def waterfall(rows: list[dict], total_ms: float, width: int = 960) -> Html:
    """A timeline: one row per item (label, href, start_ms, duration_ms, cls, depth, tip),
    bars placed on a shared time axis from 0 to `total_ms`."""
    label_w, row_h, top = 300, 18, 22
    plot_w = width - label_w - 10
    total_ms = total_ms or 1.0
    height = top + row_h * len(rows) + 6
    parts = []
    for frac in (0, 0.25, 0.5, 0.75, 1):
        gx = label_w + plot_w * frac
        parts.append(h('<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}"/><text class="tick" x="{}" y="14" text-anchor="middle">{}</text>',
                       _n(gx), top - 4, _n(gx), height, _n(gx), _ms(total_ms * frac)))
    for i, r in enumerate(rows):
        ty = top + row_h * i
        x0 = label_w + plot_w * max(0.0, min(1.0, r["start_ms"] / total_ms))
        w = max(1.5, plot_w * max(0.0, (r["duration_ms"] or 0) / total_ms))
        w = min(w, label_w + plot_w - x0) if x0 < label_w + plot_w else 1.5
        label = h('<text class="label d{}" x="{}" y="{}">{}</text>', min(r.get("depth", 0), 8),
                  4 + 12 * min(r.get("depth", 0), 8), ty + 13, _short(r["label"], 44 - 2 * min(r.get("depth", 0), 8)))
        bar = h('<rect class="span {}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
                r.get("cls", ""), _n(x0), ty + 3, _n(w), row_h - 6, r.get("tip") or r["label"])
        item = label + bar
        parts.append(h('<a href="{}">{}</a>', r["href"], item) if r.get("href") else item)
    return h('<svg class="waterfall" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="timeline">{}</svg>',
             width, height, width, height, join(parts))


def _ms(v: float) -> str:
    return f"{v:.0f} ms" if v < 10_000 else f"{v / 1000:.1f} s"
