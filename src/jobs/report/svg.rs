//! Inline SVG bar charts of equivalence-class sizes, and the bar scaling shared with the
//! Markdown text chart.

use std::fmt::Write as _;

use super::format::group_u;
use super::html::esc;
use super::layout::Chart;

pub(super) fn svg_chart(c: &Chart, out: &mut String) {
    const ROW: u64 = 26;
    const TOP: u64 = 6;
    const BAR_X: u64 = 92;
    const BAR_MAX: u64 = 360;
    const WIDTH: u64 = 660;
    let n = c.buckets.len() as u64;
    let height = TOP.saturating_mul(2).saturating_add(ROW.saturating_mul(n));
    let max = c.buckets.iter().map(|b| b.records).max().unwrap_or(0);
    let _ = write!(
        out,
        "<figure>\n<figcaption>{title}</figcaption>\n<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" \
         role=\"img\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\">\
         <title>{title}: records per class-size bucket</title>\n",
        title = esc(&c.title)
    );
    let _ = writeln!(
        out,
        "<line class=\"axis\" x1=\"{BAR_X}\" y1=\"{TOP}\" x2=\"{BAR_X}\" y2=\"{}\"/>",
        height.saturating_sub(TOP)
    );
    for (i, b) in c.buckets.iter().enumerate() {
        let y = TOP.saturating_add(ROW.saturating_mul(i as u64));
        let w = bar_units(b.records, max, BAR_MAX);
        let label = esc(&b.label);
        let _ = writeln!(
            out,
            "<g><title>class size {label}: {} classes, {} records</title>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{label}</text>\
             <rect class=\"bar\" x=\"{BAR_X}\" y=\"{}\" width=\"{w}\" height=\"16\"/>\
             <text x=\"{}\" y=\"{}\">{} records · {} classes</text></g>",
            group_u(b.classes),
            group_u(b.records),
            BAR_X - 8,
            y.saturating_add(17),
            y.saturating_add(5),
            BAR_X + w + 6,
            y.saturating_add(17),
            group_u(b.records),
            group_u(b.classes),
        );
    }
    out.push_str("</svg>\n</figure>\n");
}

/// Bar length in units of `full`; anything non-zero gets at least one unit.
pub(super) fn bar_units(v: u64, max: u64, full: u64) -> u64 {
    if max == 0 || v == 0 {
        return 0;
    }
    let w = (v as f64 / max as f64 * full as f64).round() as u64;
    w.clamp(1, full)
}
