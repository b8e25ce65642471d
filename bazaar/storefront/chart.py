"""A server-side SVG chart of orders (bars) and revenue (line) per day. No library, no CDN, no JavaScript."""

from __future__ import annotations

from decimal import Decimal
from xml.sax.saxutils import escape

from bazaar.storefront.selectors import DayPoint

W, H = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 64, 16, 36


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    for step in (
        1,
        2,
        5,
        10,
        20,
        25,
        50,
        100,
        200,
        250,
        500,
        1000,
        2000,
        5000,
        10_000,
        20_000,
        50_000,
        100_000,
    ):
        if value <= step * 4:
            return float(step * 4)
    magnitude = 10 ** (len(str(int(value))) - 1)
    return float(((int(value) // magnitude) + 1) * magnitude)


def orders_chart_svg(points: list[DayPoint], currency: str) -> str:
    """Render ``points`` as an accessible inline SVG (a <title> per bar, axis labels, a text summary)."""
    n = max(len(points), 1)
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    max_orders = _nice_max(max((p.orders for p in points), default=0))
    max_rev = _nice_max(float(max((p.revenue for p in points), default=Decimal(0))))
    slot = plot_w / n
    bar_w = max(slot * 0.7, 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="100%" role="img" '
        f'aria-labelledby="chart-title" class="chart">',
        f'<title id="chart-title">Orders (bars) and revenue (line) per day, last {len(points)} days</title>',
        f'<rect x="0" y="0" width="{W}" height="{H}" fill="#fff"/>',
    ]
    for i in range(5):  # grid lines and both axes' labels
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#b4461b">'
            f"{max_orders * i / 4:g}</text>"
        )
        parts.append(
            f'<text x="{W - RIGHT + 6}" y="{y + 4:.1f}" font-size="11" fill="#2e5e8c">{max_rev * i / 4:,.0f}</text>'
        )
    line: list[str] = []
    for i, p in enumerate(points):
        x = LEFT + slot * i + (slot - bar_w) / 2
        h = plot_h * p.orders / max_orders
        label = escape(f"{p.day.isoformat()}: {p.orders} orders, {p.revenue} {currency}")
        parts.append(
            f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
            f'fill="#b4461b" opacity="0.85"><title>{label}</title></rect>'
        )
        cx = LEFT + slot * i + slot / 2
        cy = TOP + plot_h - plot_h * float(p.revenue) / max_rev
        line.append(f"{cx:.1f},{cy:.1f}")
        if i % 5 == 0 or i == n - 1:
            parts.append(
                f'<text x="{cx:.1f}" y="{H - BOTTOM + 16}" font-size="10" text-anchor="middle" fill="#666">'
                f"{p.day.strftime('%d %b')}</text>"
            )
    if line:
        parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="#2e5e8c" stroke-width="2"/>')
    parts.append(
        f'<text x="{LEFT}" y="{H - 4}" font-size="11" fill="#b4461b">■ orders</text>'
        f'<text x="{LEFT + 70}" y="{H - 4}" font-size="11" fill="#2e5e8c">— revenue ({escape(currency)})</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
