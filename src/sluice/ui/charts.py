"""Trend charts as inline SVG, drawn on the server: no chart library, no JavaScript."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup, escape

from sluice import timeutil

WIDTH, HEIGHT = 960, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 14, 30
SERIES = (("success", "Success", "var(--chart-success)"), ("error", "Error", "var(--chart-error)"))
LABEL_FORMATS = {"minute": "%H:%M", "hour": "%b %d %H:%M", "day": "%b %d"}


def _nice_max(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``value``."""
    if value <= 4:
        return 4
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude * 4 >= value:
                return step * magnitude * 4
        magnitude *= 10


def _label(start: str, bucket: str) -> str:
    moment = datetime.fromtimestamp(timeutil.parse_iso(start), UTC)
    if bucket == "hour" and moment.hour != 0:
        return moment.strftime("%H:%M")
    return moment.strftime(LABEL_FORMATS.get(bucket, "%H:%M"))


def trend_svg(buckets: list[dict[str, Any]], bucket: str, title: str) -> Markup:
    """Stacked bars of successes and errors per bucket, with a y axis and time labels."""
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    count = max(1, len(buckets))
    peak = max((int(b["success"]) + int(b["error"]) for b in buckets), default=0)
    top = _nice_max(peak)
    slot = plot_w / count
    bar = max(1.0, slot * 0.72)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(5):
        value = top * i // 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{value:,}</text>'
        )
    every = max(1, count // 6)
    for index, item in enumerate(buckets):
        x = LEFT + slot * index + (slot - bar) / 2
        base = float(TOP + plot_h)
        tip = [_label(item["start"], bucket)]
        for key, name, colour in SERIES:
            value = int(item[key])
            tip.append(f"{value:,} {name.lower()}")
            if value <= 0:
                continue
            h = plot_h * value / top
            base -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(" · ".join(tip))}</title></rect>'
            )
        if index % every == 0:
            parts.append(
                f'<text class="axis" x="{x + bar / 2:.1f}" y="{HEIGHT - 10}" '
                f'text-anchor="middle">{escape(_label(item["start"], bucket))}</text>'
            )
    if peak == 0:
        parts.append(
            f'<text class="empty" x="{LEFT + plot_w / 2:.0f}" y="{TOP + plot_h / 2:.0f}" '
            'text-anchor="middle">No deliveries in this period</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
