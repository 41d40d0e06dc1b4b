//! docs/bench.svg: horizontal bars of the medians with min–max whiskers,
//! one panel per unit. Plain SVG written by hand (no plotting crate).

use std::fmt::Write as _;

use crate::bench::Results;
use crate::report::num;
use crate::stats::Summary;

const W: f64 = 880.0;
const LABEL_W: f64 = 250.0;
const BAR_W: f64 = 540.0;
const BAR_H: f64 = 12.0;
const BAR_GAP: f64 = 3.0;
const GROUP_GAP: f64 = 12.0;
const TITLE_H: f64 = 34.0;

/// (name, colour) of each series.
const SERIES: [(&str, &str); 5] = [
    ("fdbox", "#1b9e77"),
    ("crun", "#d95f02"),
    ("runc", "#7570b3"),
    ("unshare", "#999999"),
    ("spawn", "#cccccc"),
];

fn series_label(s: &str) -> &str {
    match s {
        "unshare" => "floor: unshare 5 ns",
        "spawn" => "floor: fork+exec",
        x => x,
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('`', "")
}

struct Group {
    label: String,
    bars: Vec<(&'static str, &'static str, Summary)>,
}

/// Draw one panel at `y`; returns the y below it.
fn panel(o: &mut String, y: f64, title: &str, unit: &str, groups: &[Group]) -> f64 {
    let _ = writeln!(o, r#"<text x="10" y="{:.1}" font-size="15" font-weight="bold">{}</text>"#, y + 20.0, esc(title));
    let mut y = y + TITLE_H;
    // Scale to the largest median (whiskers beyond it are clipped with an
    // arrow) so one outlier cannot flatten every bar.
    let top = groups.iter().flat_map(|g| g.bars.iter().map(|b| b.2.median)).fold(0.0, f64::max) * 1.25;
    if top <= 0.0 {
        return y;
    }
    let x0 = LABEL_W;
    let sx = |v: f64| x0 + (v / top).min(1.0) * BAR_W;
    let y_top = y;
    for g in groups {
        let h = g.bars.len() as f64 * (BAR_H + BAR_GAP);
        let _ = writeln!(o, r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{}</text>"#, x0 - 8.0, y + h / 2.0 + 4.0, esc(&g.label));
        for (name, colour, s) in &g.bars {
            let w = sx(s.median) - x0;
            let _ = writeln!(o, r#"<rect x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{BAR_H}" fill="{colour}"><title>{}: median {} {unit}, min {}, max {}, n {}</title></rect>"#, series_label(name), num(s.median), num(s.min), num(s.max), s.n);
            let yc = y + BAR_H / 2.0;
            let (a, b) = (sx(s.min), sx(s.max));
            let _ = writeln!(o, r##"<line x1="{a:.1}" y1="{yc:.1}" x2="{b:.1}" y2="{yc:.1}" stroke="#333" stroke-width="1"/>"##);
            let _ = writeln!(o, r##"<line x1="{a:.1}" y1="{:.1}" x2="{a:.1}" y2="{:.1}" stroke="#333"/>"##, yc - 3.0, yc + 3.0);
            if s.max > top {
                let _ = writeln!(o, r##"<path d="M{b:.1},{yc:.1} l-5,-3 v6 z" fill="#333"/>"##);
            } else {
                let _ = writeln!(o, r##"<line x1="{b:.1}" y1="{:.1}" x2="{b:.1}" y2="{:.1}" stroke="#333"/>"##, yc - 3.0, yc + 3.0);
            }
            let tx = (b.max(sx(s.median)) + 6.0).min(x0 + BAR_W + 4.0);
            let _ = writeln!(o, r#"<text x="{tx:.1}" y="{:.1}" font-size="11">{} {}</text>"#, y + BAR_H - 2.0, num(s.median), unit);
            y += BAR_H + BAR_GAP;
        }
        y += GROUP_GAP;
    }
    // Axis: 0 and the scale's end.
    let _ = writeln!(o, r##"<line x1="{x0:.1}" y1="{y_top:.1}" x2="{x0:.1}" y2="{:.1}" stroke="#666"/>"##, y - GROUP_GAP);
    let _ = writeln!(o, r#"<text x="{x0:.1}" y="{:.1}" font-size="10" text-anchor="middle">0</text>"#, y);
    let _ = writeln!(o, r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{} {unit}</text>"#, x0 + BAR_W, y, num(top));
    y + 14.0
}

pub fn chart(r: &Results) -> String {
    let s = &r.samples;
    let group = |key: &str, label: String, floors: bool| -> Group {
        let bars = SERIES
            .iter()
            .filter(|(n, _)| floors || !matches!(*n, "unshare" | "spawn"))
            .filter_map(|&(n, c)| s.summary(key, n).map(|x| (n, c, x)))
            .collect();
        Group { label, bars }
    };
    let keep = |v: Vec<Group>| -> Vec<Group> { v.into_iter().filter(|g| !g.bars.is_empty()).collect() };
    let lat = keep(vec![
        group("run", "run /bin/true".into(), true),
        group("create", "create".into(), false),
        group("start", "start".into(), false),
        group("wait", "wait (start → exit)".into(), false),
        group("delete", "delete".into(), false),
        group("exec", "exec /bin/true".into(), false),
    ]);
    let tot = keep(vec![
        group("seq", format!("{} sequential runs", r.seq_n), false),
        group("conc", format!("{} concurrent runs", r.conc_n), false),
    ]);
    let rss = keep(vec![
        group("rss_run", "run (largest process)".into(), false),
        group("rss_create", "create".into(), false),
        group("rss_init", "init before exec".into(), false),
        group("rss_exec", "exec".into(), false),
    ]);

    let mut body = String::new();
    let mut y = 40.0;
    y = panel(&mut body, y, "Latency (ms, median; whiskers min–max)", "ms", &lat);
    y = panel(&mut body, y + 6.0, "Totals (s)", "s", &tot);
    y = panel(&mut body, y + 6.0, "Peak RSS (MiB, ru_maxrss)", "MiB", &rss);
    let h = y + 10.0;

    let mut o = String::new();
    let _ = writeln!(o, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h:.0}" viewBox="0 0 {W} {h:.0}" font-family="sans-serif">"#);
    let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let title = format!("fdbox vs crun vs runc — {} — {} cores, Linux {}", r.machine.date, r.machine.nproc, r.machine.kernel);
    let _ = writeln!(o, r#"<text x="10" y="18" font-size="13">{}</text>"#, esc(&title));
    // Legend.
    let mut lx = 10.0;
    for (n, c) in SERIES {
        let _ = writeln!(o, r#"<rect x="{lx:.1}" y="26" width="10" height="10" fill="{c}"/><text x="{:.1}" y="35" font-size="11">{}</text>"#, lx + 14.0, series_label(n));
        lx += 14.0 + 7.0 * series_label(n).len() as f64 + 16.0;
    }
    o.push_str(&body);
    o.push_str("</svg>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panel_draws_one_bar_per_series_and_clips_outliers() {
        let s = |m: f64, max: f64| Summary { n: 3, median: m, min: m / 2.0, max };
        let groups = [Group { label: "run <x>".into(), bars: vec![("fdbox", "#1", s(4.0, 5.0)), ("crun", "#2", s(8.0, 900.0))] }];
        let mut o = String::new();
        let y = panel(&mut o, 0.0, "T", "ms", &groups);
        assert!(y > 0.0);
        assert_eq!(o.matches("<rect").count(), 2);
        // The label is escaped; the 900 ms outlier is drawn as an arrow.
        assert!(o.contains("run &lt;x&gt;"));
        assert_eq!(o.matches("<path").count(), 1);
        // No bar is wider than the plot area.
        for w in o.split("width=\"").skip(1) {
            let v: f64 = w.split('"').next().unwrap().parse().unwrap();
            assert!(v <= BAR_W + 0.01, "{v}");
        }
    }
}
