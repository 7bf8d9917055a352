//! The HTML renderer: one self-contained page with inline CSS, escaping and tables; charts
//! are drawn by `svg.rs`.

use std::fmt::Write as _;

use crate::provenance::record::Record;

use super::layout::{Block, Cell, Piece, Report, Table};
use super::read::Doc;
use super::sections::build;
use super::svg::svg_chart;

/// The report as one HTML file: inline CSS and SVG only, no script, no external resource.
pub fn render_html(record: &Record) -> String {
    html(&build(&Doc::read(record)))
}

const CSS: &str = "
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', sans-serif;
  color: #111; background: #fff; margin: 2rem auto; max-width: 76rem; padding: 0 1rem; line-height: 1.45; font-size: 15px; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.3rem; border-bottom: 2px solid #333; padding-bottom: .2rem; margin-top: 2.2rem; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
.sub { color: #444; margin-top: 0; overflow-wrap: anywhere; }
.tbl { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #888; padding: .3rem .5rem; text-align: left; vertical-align: top; overflow-wrap: break-word; }
thead th { border-bottom: 2px solid #333; overflow-wrap: normal; }
table.kv th { width: 15rem; font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
.lvl { display: inline-block; white-space: nowrap; padding: 0 .4rem; border: 1px solid; border-radius: 3px; font-weight: 600; font-size: .85em; }
.lvl-review { color: #7a4a00; }
.lvl-warning { color: #a00000; border-width: 2px; }
.lvl-info { color: #244a7a; }
figure { margin: .6rem 0 1.2rem; }
figcaption { font-weight: 600; margin-bottom: .3rem; }
svg.chart { max-width: 100%; height: auto; }
svg.chart text { font: 12px system-ui, sans-serif; fill: #111; }
svg.chart .bar { fill: #4a6fa5; stroke: #1f3b63; stroke-width: 1; }
svg.chart .axis { stroke: #333; stroke-width: 1; }
footer { margin-top: 2rem; font-size: .85rem; color: #444; border-top: 1px solid #888; padding-top: .5rem; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  .tbl { overflow: visible; }
  tr, figure, li { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  h2, h3, figcaption { break-after: avoid; page-break-after: avoid; }
  svg.chart .bar { fill: #999; stroke: #000; }
}
@page { margin: 14mm; }
";

fn html(r: &Report) -> String {
    let mut out = String::new();
    out.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    // Nothing may be fetched: the policy forbids every request, inline styles aside.
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
    );
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(out, "<title>{}</title>", esc(&r.heading));
    let _ = writeln!(out, "<style>{CSS}</style>\n</head>\n<body>");
    let _ = writeln!(
        out,
        "<header>\n<h1>{}</h1>\n<p class=\"sub\">{}</p>\n</header>",
        esc(&r.heading),
        html_cell(&r.subtitle)
    );
    for s in &r.sections {
        let _ = writeln!(out, "<section id=\"{}\">\n<h2>{}</h2>", s.id, esc(s.title));
        for b in &s.blocks {
            match b {
                Block::H3(h) => {
                    let _ = writeln!(out, "<h3>{}</h3>", esc(h));
                }
                Block::Para(c) => {
                    let _ = writeln!(out, "<p>{}</p>", html_cell(c));
                }
                Block::List(items) => {
                    out.push_str("<ul>\n");
                    for i in items {
                        let _ = writeln!(out, "<li>{}</li>", html_cell(i));
                    }
                    out.push_str("</ul>\n");
                }
                Block::Table(tb) => html_table(tb, &mut out),
                Block::Chart(c) => svg_chart(c, &mut out),
            }
        }
        out.push_str("</section>\n");
    }
    let _ = writeln!(
        out,
        "<footer>\n<p>{}</p>\n</footer>\n</body>\n</html>",
        esc(&r.footer)
    );
    out
}

fn html_table(tb: &Table, out: &mut String) {
    let class = if tb.kv { " class=\"kv\"" } else { "" };
    let _ = write!(out, "<div class=\"tbl\"><table{class}>");
    if !tb.kv {
        out.push_str("<thead><tr>");
        for (i, h) in tb.head.iter().enumerate() {
            let num = if tb.num.contains(&i) {
                " class=\"num\""
            } else {
                ""
            };
            let _ = write!(out, "<th scope=\"col\"{num}>{}</th>", esc(h));
        }
        out.push_str("</tr></thead>");
    }
    out.push_str("<tbody>\n");
    for row in &tb.rows {
        out.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            if tb.kv && i == 0 {
                let _ = write!(out, "<th scope=\"row\">{}</th>", html_cell(c));
            } else if tb.num.contains(&i) {
                let _ = write!(out, "<td class=\"num\">{}</td>", html_cell(c));
            } else {
                let _ = write!(out, "<td>{}</td>", html_cell(c));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

fn html_cell(c: &Cell) -> String {
    let mut s = String::new();
    for p in c {
        match p {
            // Paths may break after a slash instead of widening the table.
            Piece::Text(x) => s.push_str(&esc(x).replace('/', "/<wbr>")),
            Piece::Hash(h) => {
                let short: String = h.chars().take(12).collect();
                let more = if h.chars().count() > 12 { "…" } else { "" };
                let _ = write!(s, "<code title=\"{}\">{}{more}</code>", esc(h), esc(&short));
            }
            Piece::Level(l) => {
                let _ = write!(
                    s,
                    "<span class=\"lvl lvl-{}\">{}</span>",
                    l.label().to_ascii_lowercase(),
                    l.label()
                );
            }
        }
    }
    s
}

pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
