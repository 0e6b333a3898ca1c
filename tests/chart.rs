//! The demo's SVG chart writer (`examples/common/chart.rs`), fed with the per-second figures a
//! real demo run printed (`bench/results/demo-2026-11-21.txt`: 4 peers, 43 rows).

#[path = "../examples/common/chart.rs"]
mod chart;

use chart::{Chart, PeerSeries, Point};

const RECORDED: &str = include_str!("../bench/results/demo-2026-11-21.txt");
const MIB: f64 = 1024.0 * 1024.0;

/// The live table's rows (`[  12s]  12s 8.9 2.1 4p | (not started) | ... | 10.9 21.9 66.7 %`)
/// as a chart, and the swarm's share the demo printed on each row.
fn recorded() -> (Chart, Vec<(f64, f64)>) {
    let mut chart = Chart {
        title: "recorded demo: 4 peers <HLS> & P2P".into(),
        peers: (0..4)
            .map(|i| PeerSeries {
                name: format!("peer {i}"),
                points: vec![],
            })
            .collect(),
    };
    let mut shares = vec![];
    for line in RECORDED.lines().filter(|l| l.starts_with('[')) {
        let (time, rest) = line[1..].split_once("s]").unwrap();
        let t: f64 = time.trim().parse().unwrap();
        let cells: Vec<&str> = rest.split('|').collect();
        assert_eq!(cells.len(), 5, "{line}");
        for (i, cell) in cells[..4].iter().enumerate() {
            if cell.contains("not started") {
                continue;
            }
            let f: Vec<&str> = cell.split_whitespace().collect();
            // pos http p2p Np; pos is "-", "end" or "12s".
            let n = f.len();
            let http: f64 = f[n - 3].parse().unwrap();
            let p2p: f64 = f[n - 2].parse().unwrap();
            chart.peers[i].points.push(Point {
                t,
                http: http * MIB,
                p2p: p2p * MIB,
            });
        }
        let total: Vec<&str> = cells[4].split_whitespace().collect();
        shares.push((t, total[2].parse::<f64>().unwrap() / 100.0));
    }
    assert_eq!(shares.len(), 43);
    (chart, shares)
}

/// A small well-formedness check: every tag closes in order, attributes are quoted, the root
/// is `<svg>`. Returns the element names in document order.
fn check_xml(doc: &str) -> Vec<String> {
    let mut stack: Vec<String> = vec![];
    let mut names = vec![];
    let mut rest = doc.trim_start();
    if let Some(r) = rest.strip_prefix("<?xml") {
        rest = &r[r.find("?>").expect("unterminated XML declaration") + 2..];
    }
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        assert!(!text.contains('>'), "'>' in text: {text:?}");
        for (i, _) in text.match_indices('&') {
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;"]
                    .iter()
                    .any(|e| text[i..].starts_with(e)),
                "bare '&' in text: {text:?}"
            );
        }
        let close = rest[open..].find('>').expect("unterminated tag") + open;
        let tag = &rest[open + 1..close];
        assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
        assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
        } else {
            let name = tag
                .split(|c: char| c.is_whitespace() || c == '/')
                .next()
                .unwrap()
                .to_string();
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
                "bad element name in <{tag}>"
            );
            if names.is_empty() {
                assert_eq!(name, "svg", "root element");
            } else {
                assert!(!stack.is_empty(), "<{name}> after the root closed");
            }
            names.push(name.clone());
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert!(rest.trim().is_empty(), "text after the root: {rest:?}");
    names
}

fn polyline_points(svg: &str, class: &str) -> Vec<usize> {
    svg.split(&format!("<polyline class=\"{class}\""))
        .skip(1)
        .map(|s| {
            let p = &s[s.find("points=\"").unwrap() + 8..];
            let p = &p[..p.find('"').unwrap()];
            p.split_whitespace().count()
        })
        .collect()
}

#[test]
fn recorded_demo_chart_is_well_formed_with_a_series_per_peer_and_axis_labels() {
    let (chart, _) = recorded();
    let svg = chart.to_svg();
    // To look at it: P2PMEDIA_CHART_OUT=/tmp/chart.svg cargo test --test chart
    if let Ok(out) = std::env::var("P2PMEDIA_CHART_OUT") {
        std::fs::write(out, &svg).unwrap();
    }
    let names = check_xml(&svg);
    assert!(names.iter().filter(|n| *n == "polyline").count() >= 9);
    // One group per peer, each with an HTTP and a P2P line of all its samples.
    for (i, p) in chart.peers.iter().enumerate() {
        assert!(
            svg.contains(&format!("<g class=\"series\" data-peer=\"peer {i}\">")),
            "no series for peer {i}"
        );
        assert!(!p.points.is_empty());
    }
    assert_eq!(svg.matches("<g class=\"series\"").count(), 4);
    let lens: Vec<usize> = chart.peers.iter().map(|p| p.points.len()).collect();
    // Peer 0 started at 1 s, the others 4 s apart (the table's "(not started)" cells).
    assert_eq!(lens, vec![43, 40, 36, 32]);
    assert_eq!(polyline_points(&svg, "http"), lens);
    assert_eq!(polyline_points(&svg, "p2p"), lens);
    for label in [
        "time (s)",
        "MiB received (solid: HTTP, dashed: P2P)",
        "swarm P2P share",
    ] {
        assert!(
            svg.contains(&format!(">{label}</text>")),
            "no label {label}"
        );
    }
    // The title is escaped, the legend names each peer with its final figures.
    assert!(svg.contains("4 peers &lt;HLS&gt; &amp; P2P"));
    assert!(svg.contains("HTTP 8.9 / P2P 2.1 MiB"), "peer 0's legend");
    assert!(svg.contains("HTTP 0.0 / P2P 10.9 MiB"), "peer 3's legend");
    let end = svg.split("swarm: ").nth(1).unwrap_or_default();
    assert!(
        end.starts_with("75.0 % P2P")
            || end.starts_with("74.9 % P2P")
            || end.starts_with("75.1 % P2P"),
        "{}",
        &end[..end.len().min(20)]
    );
}

#[test]
fn swarm_share_matches_what_the_demo_printed_every_second() {
    let (chart, printed) = recorded();
    let share = chart.swarm_share();
    // The table's first row has 5.5 MiB over HTTP only: a share of 0, which is drawn too.
    assert_eq!(share.len(), printed.len());
    for ((t, ours), (t2, theirs)) in share.iter().zip(&printed) {
        assert_eq!(t, t2);
        // The table rounds MiB to 0.1, so the shares agree to within a point.
        assert!(
            (ours - theirs).abs() < 0.01,
            "at {t} s: chart {ours:.3}, demo printed {theirs:.3}"
        );
    }
    assert!((share.last().unwrap().1 - 0.75).abs() < 0.005);
}

#[test]
fn svg_coordinates_stay_inside_the_canvas() {
    let (chart, _) = recorded();
    let svg = chart.to_svg();
    for class in ["http", "p2p", "share"] {
        for s in svg.split(&format!("<polyline class=\"{class}\"")).skip(1) {
            let p = &s[s.find("points=\"").unwrap() + 8..];
            for xy in p[..p.find('"').unwrap()].split_whitespace() {
                let (x, y) = xy.split_once(',').unwrap();
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                assert!((80.0..=711.0).contains(&x), "{class}: x {x}");
                assert!((49.0..=561.0).contains(&y), "{class}: y {y}");
            }
        }
    }
}

#[test]
fn empty_chart_is_still_a_valid_svg() {
    let chart = Chart {
        title: "nothing yet".into(),
        peers: vec![PeerSeries {
            name: "peer 0".into(),
            points: vec![],
        }],
    };
    let svg = chart.to_svg();
    check_xml(&svg);
    assert!(chart.swarm_share().is_empty());
    assert_eq!(polyline_points(&svg, "http"), vec![0]);
}
