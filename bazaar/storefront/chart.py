"""A server-side SVG chart of orders (bars) and revenue (line) per day. No library, no CDN, no JavaScript.

Drawn for a phone first: the viewBox is 400 units wide, so at 390 px (a card about 330 px wide) a 12-unit label is
still a 10 px glyph; on a desktop the stylesheet caps its width (``svg.chart``) so it does not grow into a poster.
The days are the shop's (``dashboard_summary`` buckets orders midnight to midnight in the shop's time zone) and the
chart says so in its title and under its axis."""

from __future__ import annotations

from decimal import Decimal
from xml.sax.saxutils import escape

from bazaar.storefront.selectors import DayPoint

W, H = 400, 262
LEFT, RIGHT, TOP, BOTTOM = 34, 46, 14, 60
FONT = 12


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


def _compact(value: float) -> str:
    """Axis numbers that fit the margin: 950, 12k, 1.5k, 2.5M."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if value >= size:
            return f"{value / size:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:g}"


def orders_chart_svg(points: list[DayPoint], currency: str, zone: str = "UTC") -> str:
    """Render ``points`` as an accessible inline SVG (a <title> per bar, axis labels, the time zone of the days,
    a legend). ``zone`` is the label of the days' time zone, e.g. "Asia/Kolkata (IST)"."""
    n = max(len(points), 1)
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    max_orders = _nice_max(max((p.orders for p in points), default=0))
    max_rev = _nice_max(float(max((p.revenue for p in points), default=Decimal(0))))
    slot = plot_w / n
    bar_w = max(slot * 0.7, 1.0)
    zone_text = escape(zone)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="100%" role="img" '
        f'aria-labelledby="chart-title" class="chart">',
        f'<title id="chart-title">Orders (bars) and revenue (line) per day, last {len(points)} days, '
        f"days in {zone_text}</title>",
        f'<rect x="0" y="0" width="{W}" height="{H}" fill="#fff"/>',
    ]
    for i in range(5):  # grid lines and both axes' labels
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" font-size="{FONT}" text-anchor="end" fill="#b4461b">'
            f"{_compact(max_orders * i / 4)}</text>"
        )
        parts.append(
            f'<text x="{W - RIGHT + 4}" y="{y + 4:.1f}" font-size="{FONT}" fill="#2e5e8c">'
            f"{_compact(max_rev * i / 4)}</text>"
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
        if i % 7 == 0:
            parts.append(
                f'<text x="{cx:.1f}" y="{TOP + plot_h + 15}" font-size="{FONT}" text-anchor="middle" '
                f'fill="#595959" class="day">{p.day.strftime("%d %b")}</text>'
            )
    if line:
        parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="#2e5e8c" stroke-width="2"/>')
    parts.append(
        f'<text x="{LEFT}" y="{H - 24}" font-size="{FONT}" fill="#595959" class="zone">Days in {zone_text}</text>'
        f'<text x="{LEFT}" y="{H - 6}" font-size="{FONT}" fill="#b4461b">■ orders</text>'
        f'<text x="{LEFT + 76}" y="{H - 6}" font-size="{FONT}" fill="#2e5e8c">— revenue ({escape(currency)})</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
