//! A self-contained SVG chart of a swarm's transfer figures over time (no dependency): per
//! peer, the bytes it received from the origin (HTTP, solid line) and from peers (P2P, dashed
//! line, same colour), and below them the swarm's P2P share (all peers' P2P bytes over all
//! their bytes) at each instant. Used by `examples/demo.rs`; tested in `tests/chart.rs`.

use std::fmt::Write as _;

/// One sample of one peer: seconds since the run started, bytes received so far over HTTP and
/// over P2P (cumulative, as the element's `stats` count them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub t: f64,
    pub http: f64,
    pub p2p: f64,
}

/// The samples of one peer, in time order.
#[derive(Clone, Debug, Default)]
pub struct PeerSeries {
    pub name: String,
    pub points: Vec<Point>,
}

/// Everything drawn: a title and one series per peer.
#[derive(Clone, Debug, Default)]
pub struct Chart {
    pub title: String,
    pub peers: Vec<PeerSeries>,
}

const W: f64 = 900.0;
const TOP: f64 = 50.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 190.0; // legend
const PLOT_W: f64 = W - LEFT - RIGHT;
const BYTES_H: f64 = 300.0;
const GAP: f64 = 70.0;
const SHARE_H: f64 = 140.0;
const H: f64 = TOP + BYTES_H + GAP + SHARE_H + 60.0;
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
];
const MIB: f64 = 1024.0 * 1024.0;

impl Chart {
    /// The swarm's P2P share (0–1) at each sample time of any peer: every peer's latest sample
    /// at or before that time, summed.
    pub fn swarm_share(&self) -> Vec<(f64, f64)> {
        let mut times: Vec<f64> = self
            .peers
            .iter()
            .flat_map(|p| p.points.iter().map(|q| q.t))
            .collect();
        times.sort_by(f64::total_cmp);
        times.dedup();
        times
            .into_iter()
            .filter_map(|t| {
                let (mut http, mut p2p) = (0.0, 0.0);
                for p in &self.peers {
                    if let Some(q) = p.points.iter().rev().find(|q| q.t <= t) {
                        http += q.http;
                        p2p += q.p2p;
                    }
                }
                (http + p2p > 0.0).then(|| (t, p2p / (http + p2p)))
            })
            .collect()
    }

    /// The chart as an SVG document.
    pub fn to_svg(&self) -> String {
        let t_max = self
            .peers
            .iter()
            .flat_map(|p| p.points.iter().map(|q| q.t))
            .fold(0.0, f64::max)
            .max(1.0);
        let b_max = self
            .peers
            .iter()
            .flat_map(|p| p.points.iter().map(|q| q.http.max(q.p2p)))
            .fold(0.0, f64::max)
            / MIB;
        let (t_step, t_top) = nice_axis(t_max);
        let (b_step, b_top) = nice_axis(b_max.max(0.1));
        let x = |t: f64| LEFT + PLOT_W * t / t_top;
        let y_bytes = |b: f64| TOP + BYTES_H - BYTES_H * (b / MIB) / b_top;
        let share_top = TOP + BYTES_H + GAP;
        let y_share = |s: f64| share_top + SHARE_H - SHARE_H * s;

        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="DejaVu Sans, sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="24" font-size="16" text-anchor="middle">{}</text>"#,
            LEFT + PLOT_W / 2.0,
            escape(&self.title)
        );

        // Bytes panel: grid, axes, labels.
        s.push_str("<g class=\"axes\" stroke=\"#ccc\" stroke-width=\"1\">\n");
        for i in 0..=((b_top / b_step).round() as usize) {
            let v = i as f64 * b_step;
            let yy = TOP + BYTES_H - BYTES_H * v / b_top;
            let _ = writeln!(
                s,
                r#"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}"/>"#,
                LEFT + PLOT_W
            );
        }
        for i in 0..=((t_top / t_step).round() as usize) {
            let xx = x(i as f64 * t_step);
            let _ = writeln!(
                s,
                r#"<line x1="{xx:.1}" y1="{TOP}" x2="{xx:.1}" y2="{:.1}"/>"#,
                TOP + BYTES_H
            );
            let _ = writeln!(
                s,
                r#"<line x1="{xx:.1}" y1="{share_top}" x2="{xx:.1}" y2="{:.1}"/>"#,
                share_top + SHARE_H
            );
        }
        for v in [0.0, 0.25, 0.5, 0.75, 1.0] {
            let yy = y_share(v);
            let _ = writeln!(
                s,
                r#"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}"/>"#,
                LEFT + PLOT_W
            );
        }
        s.push_str("</g>\n<g class=\"ticks\" fill=\"#333\">\n");
        for i in 0..=((b_top / b_step).round() as usize) {
            let v = i as f64 * b_step;
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                TOP + BYTES_H - BYTES_H * v / b_top + 4.0,
                fmt_num(v)
            );
        }
        for v in [0.0, 0.25, 0.5, 0.75, 1.0] {
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{:.0} %</text>"#,
                LEFT - 6.0,
                y_share(v) + 4.0,
                v * 100.0
            );
        }
        for i in 0..=((t_top / t_step).round() as usize) {
            let v = i as f64 * t_step;
            for base in [TOP + BYTES_H, share_top + SHARE_H] {
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                    x(v),
                    base + 16.0,
                    fmt_num(v)
                );
            }
        }
        s.push_str("</g>\n");
        let _ = writeln!(
            s,
            r##"<text class="axis-label" x="{:.1}" y="{:.1}" text-anchor="middle">time (s)</text>
<text class="axis-label" x="{:.1}" y="{:.1}" text-anchor="middle">time (s)</text>
<text class="axis-label" transform="translate(22 {:.1}) rotate(-90)" text-anchor="middle">MiB received (solid: HTTP, dashed: P2P)</text>
<text class="axis-label" transform="translate(22 {:.1}) rotate(-90)" text-anchor="middle">swarm P2P share</text>
<rect x="{LEFT}" y="{TOP}" width="{PLOT_W}" height="{BYTES_H}" fill="none" stroke="#333"/>
<rect x="{LEFT}" y="{share_top}" width="{PLOT_W}" height="{SHARE_H}" fill="none" stroke="#333"/>"##,
            LEFT + PLOT_W / 2.0,
            TOP + BYTES_H + 34.0,
            LEFT + PLOT_W / 2.0,
            share_top + SHARE_H + 34.0,
            TOP + BYTES_H / 2.0,
            share_top + SHARE_H / 2.0,
        );

        // One series (group) per peer: HTTP solid, P2P dashed, one colour.
        for (i, p) in self.peers.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let path = |f: &dyn Fn(&Point) -> f64| {
                p.points
                    .iter()
                    .map(|q| format!("{:.1},{:.1}", x(q.t), y_bytes(f(q))))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let _ = writeln!(
                s,
                r#"<g class="series" data-peer="{name}">
<polyline class="http" fill="none" stroke="{colour}" stroke-width="2" points="{}"/>
<polyline class="p2p" fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="6 4" points="{}"/>
</g>"#,
                path(&|q| q.http),
                path(&|q| q.p2p),
                name = escape(&p.name),
            );
            let last = p.points.last();
            let ly = TOP + 10.0 + 34.0 * i as f64;
            let lx = LEFT + PLOT_W + 16.0;
            let _ = writeln!(
                s,
                r##"<g class="legend"><line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="2"/><line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="2" stroke-dasharray="6 4"/><text x="{}" y="{}">{}</text><text x="{}" y="{}" font-size="10" fill="#555">HTTP {:.1} / P2P {:.1} MiB</text></g>"##,
                lx + 14.0,
                lx + 16.0,
                lx + 30.0,
                lx + 36.0,
                ly + 4.0,
                escape(&p.name),
                lx,
                ly + 18.0,
                last.map_or(0.0, |q| q.http / MIB),
                last.map_or(0.0, |q| q.p2p / MIB),
            );
        }

        // The swarm's share.
        let share = self.swarm_share();
        let pts = share
            .iter()
            .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y_share(v)))
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(
            s,
            r##"<polyline class="share" fill="none" stroke="#000" stroke-width="2" points="{pts}"/>"##
        );
        if let Some(&(_, v)) = share.last() {
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}">swarm: {:.1} % P2P</text>"#,
                LEFT + PLOT_W + 16.0,
                share_top + 14.0,
                v * 100.0
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

/// A round step and the axis top for values up to `max` (about 5–10 steps).
fn nice_axis(max: f64) -> (f64, f64) {
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    (step, (max / step).ceil().max(1.0) * step)
}

fn fmt_num(v: f64) -> String {
    if v >= 10.0 {
        return format!("{v:.0}");
    }
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
