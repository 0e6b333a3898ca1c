#!/usr/bin/env python3
"""Stacked horizontal bar chart as SVG, for the benchmarks whose figures are per run or per
peer rather than per second (bench/interop-mixed.sh, bench/sim-table.sh). No dependencies.

    bar_chart.py OUT.svg < chart.json

chart.json: {"title": str, "unit": str, "series": [name, ...],
             "rows": [{"label": str, "values": [number per series], "note": str (optional)}, ...]}
A row with "label" starting with "## " is a group heading. Prints `chart: OUT.svg`.
"""
import json
import sys
from html import escape

COLOURS = ["#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e"]


def render(chart):
    rows = chart["rows"]
    series = chart["series"]
    bar_h, gap, left, right, top = 18, 6, 190, 150, 52
    width = 900
    plot_w = width - left - right
    vmax = max([sum(r.get("values", [])) for r in rows if not r["label"].startswith("## ")] + [1e-9])
    height = top + len(rows) * (bar_h + gap) + 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="20" font-size="15" font-weight="bold">{escape(chart["title"])}</text>',
    ]
    x = left
    for i, name in enumerate(series):
        c = COLOURS[i % len(COLOURS)]
        out.append(f'<rect x="{x}" y="30" width="12" height="12" fill="{c}"/>')
        out.append(f'<text x="{x + 16}" y="40">{escape(name)}</text>')
        x += 24 + 8 * len(name)
    y = top
    for r in rows:
        label = r["label"]
        if label.startswith("## "):
            out.append(f'<text x="8" y="{y + 13}" font-weight="bold">{escape(label[3:])}</text>')
            y += bar_h + gap
            continue
        out.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{escape(label)}</text>')
        x = left
        for i, v in enumerate(r["values"]):
            w = plot_w * v / vmax
            if w > 0:
                c = COLOURS[i % len(COLOURS)]
                out.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{c}">'
                           f'<title>{escape(series[i])}: {v:g} {escape(chart["unit"])}</title></rect>')
            x += w
        total = sum(r["values"])
        note = r.get("note", f'{total:g} {chart["unit"]}')
        out.append(f'<text x="{x + 6:.1f}" y="{y + 13}">{escape(note)}</text>')
        y += bar_h + gap
    out.append(f'<line x1="{left}" y1="{top - 4}" x2="{left}" y2="{y}" stroke="#444"/>')
    out.append(f'<text x="{left}" y="{y + 18}" fill="#444">0</text>')
    out.append(f'<text x="{left + plot_w}" y="{y + 18}" text-anchor="end" fill="#444">'
               f'{vmax:g} {escape(chart["unit"])}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    chart = json.load(sys.stdin)
    with open(sys.argv[1], "w") as f:
        f.write(render(chart))
    print(f"chart: {sys.argv[1]}")


if __name__ == "__main__":
    main()
