//! The soak's outputs: `soak.csv` and `soak.svg`.

use std::fmt::Write as _;

use super::{Proc, Soak, Which, FD_BOUND, RSS_BOUND_KIB};

pub(super) fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |x| format!("{x}"))
}

/// soak.csv: one line per sample.
pub fn csv(s: &Soak) -> String {
    let mut out = String::from(
        "t_s,neigh_rss_kib,neigh_fds,neigh_cpu_pct,neigh_audit_drift,neigh_audit_runs,neigh_audit_resyncs,neigh_reconnect_resyncs,neigh_entries,port_rss_kib,port_fds,port_cpu_pct,port_audit_drift,port_audit_runs,port_audit_resyncs,port_reconnect_resyncs,churn_ops,popped,events\n",
    );
    let mut prev_t = f64::NEG_INFINITY;
    for x in &s.samples {
        let ev: Vec<&str> = s
            .events
            .iter()
            .filter(|(t, _)| *t > prev_t && *t <= x.t)
            .map(|(_, e)| *e)
            .collect();
        prev_t = x.t;
        let _ = writeln!(
            out,
            "{:.1},{},{},{:.2},{},{},{},{},{},{},{},{:.2},{},{},{},{},{},{},{}",
            x.t,
            x.neigh.rss_kib,
            x.neigh.fds,
            x.neigh.cpu_pct,
            opt(x.neigh.drift),
            opt(x.neigh.audit_runs),
            opt(x.neigh.audit_resyncs),
            opt(x.neigh.reconnect_resyncs),
            opt(x.entries),
            x.port.rss_kib,
            x.port.fds,
            x.port.cpu_pct,
            opt(x.port.drift),
            opt(x.port.audit_runs),
            opt(x.port.audit_resyncs),
            opt(x.port.reconnect_resyncs),
            x.churn_ops,
            x.popped,
            ev.join(";")
        );
    }
    out
}

/// soak.svg: two panels over time (minutes), RSS (MiB) and open fds, one
/// line per daemon, the ±bound band around each daemon's value at the
/// reference instant, and a vertical mark per Redis restart and flap storm.
pub fn svg(s: &Soak) -> String {
    const W: f64 = 900.0;
    const PANEL_H: f64 = 240.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 150.0;
    const TOP: f64 = 40.0;
    const GAP: f64 = 60.0;
    let colors = [(Which::Neigh, "#1f77b4"), (Which::Port, "#d62728")];
    let t_max = s.samples.last().map_or(1.0, |x| x.t.max(1.0)) / 60.0;
    let plot_w = W - LEFT - RIGHT;
    let h = TOP + 2.0 * PANEL_H + GAP + 50.0;
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="{LEFT}" y="22" font-size="15">soak, {} min: RSS and open fds of neighsyncd and portsyncd (sampled every 10 s)</text>"#,
        s.minutes
    );
    type Get = fn(&Proc) -> f64;
    let panels: [(&str, Get, f64); 2] = [
        (
            "RSS (MiB)",
            |p| p.rss_kib as f64 / 1024.0,
            RSS_BOUND_KIB as f64 / 1024.0,
        ),
        ("open fds", |p| p.fds as f64, FD_BOUND as f64),
    ];
    for (pi, (label, get, bound)) in panels.iter().enumerate() {
        let y0 = TOP + pi as f64 * (PANEL_H + GAP);
        let vals: Vec<f64> = s
            .samples
            .iter()
            .flat_map(|x| [get(&x.neigh), get(&x.port)])
            .collect();
        let lo = vals.iter().copied().fold(f64::INFINITY, f64::min) - bound;
        let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max) + bound;
        let (lo, hi) = if lo.is_finite() && hi > lo {
            (lo.floor().max(0.0), hi.ceil())
        } else {
            (0.0, 1.0)
        };
        let x_of = |t_min: f64| LEFT + t_min / t_max * plot_w;
        let y_of = |v: f64| y0 + PANEL_H - (v - lo) / (hi - lo) * PANEL_H;
        let _ = writeln!(
            o,
            r##"<rect x="{LEFT}" y="{y0}" width="{plot_w}" height="{PANEL_H}" fill="none" stroke="#444"/>"##
        );
        let _ = writeln!(
            o,
            r#"<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">{label}</text>"#,
            y0 + PANEL_H / 2.0,
            y0 + PANEL_H / 2.0
        );
        // y ticks
        let step = nice_step(hi - lo);
        let mut v = (lo / step).ceil() * step;
        while v <= hi + 1e-9 {
            let y = y_of(v);
            let _ = writeln!(
                o,
                r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + plot_w,
                LEFT - 6.0,
                y + 4.0,
                trim_num(v)
            );
            v += step;
        }
        // x ticks
        let xstep = nice_step(t_max);
        let mut t = 0.0;
        while t <= t_max + 1e-9 {
            let x = x_of(t);
            let _ = writeln!(
                o,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}" stroke="#444"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
                y0 + PANEL_H,
                y0 + PANEL_H + 5.0,
                y0 + PANEL_H + 18.0,
                trim_num(t)
            );
            t += xstep;
        }
        // events
        for (t, what) in &s.events {
            let x = x_of(t / 60.0);
            let (c, dash) = if *what == "redis restart" {
                ("#888", "4,3")
            } else {
                ("#ff7f0e", "2,2")
            };
            let _ = writeln!(
                o,
                r#"<line x1="{x:.1}" x2="{x:.1}" y1="{y0}" y2="{}" stroke="{c}" stroke-dasharray="{dash}"/>"#,
                y0 + PANEL_H
            );
        }
        // reference and bands
        if let Some(r) = s.reference() {
            let x = x_of(r.t / 60.0);
            let _ = writeln!(
                o,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{y0}" y2="{}" stroke="#2ca02c"/>"##,
                y0 + PANEL_H
            );
            for (w, c) in colors {
                let base = get(w.of(r));
                let (ya, yb) = (y_of(base + bound), y_of(base - bound));
                let _ = writeln!(
                    o,
                    r#"<rect x="{x:.1}" y="{ya:.1}" width="{:.1}" height="{:.1}" fill="{c}" fill-opacity="0.08"/>"#,
                    LEFT + plot_w - x,
                    yb - ya
                );
            }
        }
        for (w, c) in colors {
            let pts: Vec<String> = s
                .samples
                .iter()
                .map(|x| format!("{:.1},{:.1}", x_of(x.t / 60.0), y_of(get(w.of(x)))))
                .collect();
            let _ = writeln!(
                o,
                r#"<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{}"/>"#,
                pts.join(" ")
            );
        }
    }
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" text-anchor="middle">minutes since the churn started</text>"#,
        LEFT + plot_w / 2.0,
        h - 12.0
    );
    // legend
    let lx = LEFT + plot_w + 12.0;
    let legend = [
        ("neighsyncd", "#1f77b4", ""),
        ("portsyncd", "#d62728", ""),
        ("Redis restart", "#888", "4,3"),
        ("link flap storm", "#ff7f0e", "2,2"),
        ("reference (band: PASS bound)", "#2ca02c", ""),
    ];
    for (i, (name, c, dash)) in legend.iter().enumerate() {
        let y = TOP + 10.0 + i as f64 * 20.0;
        let _ = writeln!(
            o,
            r#"<line x1="{lx}" x2="{}" y1="{y}" y2="{y}" stroke="{c}" stroke-width="2" stroke-dasharray="{dash}"/><text x="{}" y="{}" font-size="11">{name}</text>"#,
            lx + 18.0,
            lx + 22.0,
            y + 4.0
        );
    }
    o.push_str("</svg>\n");
    o
}

/// 1, 2 or 5 times a power of ten, giving 4-10 ticks over `span`.
pub(super) fn nice_step(span: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / 6.0;
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    p * if m < 1.5 {
        1.0
    } else if m < 3.5 {
        2.0
    } else if m < 7.5 {
        5.0
    } else {
        10.0
    }
}

pub(super) fn trim_num(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}
