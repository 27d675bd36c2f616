"""The dashboard's charts as SVG drawn by the node: no JavaScript and nothing fetched from elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 560
HEIGHT = 150
_LEFT, _BOTTOM, _TOP = 44, 22, 10


@dataclass(frozen=True, slots=True)
class Series:
    """One line: its name (legend) and a value per period (None: no requests then)."""

    name: str
    values: Sequence[float | None]
    colour: str


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == 0 else f"{value:.1f}"


def line_chart(title: str, periods: Sequence[str], series: Sequence[Series], unit: str) -> str:
    """An SVG line chart of ``series`` over ``periods`` (labels of the x axis), y from 0."""
    highest = max((value for line in series for value in line.values if value is not None), default=0.0)
    top = highest * 1.1 or 1.0
    inner_width, inner_height = WIDTH - _LEFT - 8, HEIGHT - _BOTTOM - _TOP
    step = inner_width / max(len(periods) - 1, 1)

    def x(index: int) -> float:
        return _LEFT + index * step

    def y(value: float) -> float:
        return _TOP + inner_height * (1 - value / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{_LEFT}" y1="{_TOP + inner_height}" x2="{WIDTH - 8}" y2="{_TOP + inner_height}" class="axis"/>',
        f'<text x="{_LEFT - 4}" y="{_TOP + 4}" text-anchor="end" class="tick">{_number(top)}</text>',
        f'<text x="{_LEFT - 4}" y="{_TOP + inner_height}" text-anchor="end" class="tick">0</text>',
        f'<text x="{_LEFT}" y="{HEIGHT - 4}" class="tick">{escape(unit)}</text>',
    ]
    if periods:
        label_every = max(1, len(periods) // 6)
        for index in range(0, len(periods), label_every):
            parts.append(
                f'<text x="{x(index):.1f}" y="{HEIGHT - 8}" text-anchor="middle" class="tick">'
                f"{escape(periods[index])}</text>"
            )
    for line in series:
        points = [(x(index), y(value)) for index, value in enumerate(line.values) if value is not None]
        if len(points) == 1:
            px, py = points[0]
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{line.colour}"/>')
        elif points:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{line.colour}" stroke-width="1.5"/>')
    parts.append("</svg>")
    return "".join(parts)
