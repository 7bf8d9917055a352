//! The Markdown renderer: GitHub-flavoured Markdown tables, text bar charts and escaping.

use std::fmt::Write as _;

use crate::provenance::record::Record;

use super::format::{group_u, pct};
use super::layout::{Block, Cell, Chart, Piece, Report, Table};
use super::read::Doc;
use super::sections::build;
use super::svg::bar_units;

/// The report as GitHub-flavoured Markdown.
pub fn render_markdown(record: &Record) -> String {
    markdown(&build(&Doc::read(record)))
}

fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", md_text(&r.heading));
    let _ = writeln!(out, "{}\n", md_cell(&r.subtitle));
    for s in &r.sections {
        let _ = writeln!(out, "## {}\n", s.title);
        for b in &s.blocks {
            match b {
                Block::H3(h) => {
                    let _ = writeln!(out, "### {}\n", md_text(h));
                }
                Block::Para(c) => {
                    let _ = writeln!(out, "{}\n", md_cell(c));
                }
                Block::List(items) => {
                    for i in items {
                        let _ = writeln!(out, "- {}", md_cell(i));
                    }
                    out.push('\n');
                }
                Block::Table(tb) => md_table(tb, &mut out),
                Block::Chart(c) => md_chart(c, &mut out),
            }
        }
    }
    let _ = writeln!(out, "---\n\n{}", md_text(&r.footer));
    out
}

fn md_table(tb: &Table, out: &mut String) {
    out.push('|');
    for h in &tb.head {
        let _ = write!(out, " {} |", md_text(h));
    }
    out.push_str("\n|");
    for i in 0..tb.head.len() {
        out.push_str(if tb.num.contains(&i) {
            " ---: |"
        } else {
            " --- |"
        });
    }
    out.push('\n');
    for row in &tb.rows {
        out.push('|');
        for (i, c) in row.iter().enumerate() {
            let text = md_cell(c);
            if tb.kv && i == 0 {
                let _ = write!(out, " **{text}** |");
            } else {
                let _ = write!(out, " {text} |");
            }
        }
        out.push('\n');
    }
    out.push('\n');
}

fn md_chart(c: &Chart, out: &mut String) {
    let total = c
        .buckets
        .iter()
        .fold(0u64, |a, b| a.saturating_add(b.records));
    let max = c.buckets.iter().map(|b| b.records).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "**{}** (records per class-size bucket)\n",
        md_text(&c.title)
    );
    out.push_str(
        "| Class size | Classes | Records | Share | Bar |\n| --- | ---: | ---: | ---: | --- |\n",
    );
    for b in &c.buckets {
        let share = if total == 0 {
            "—".to_string()
        } else {
            pct(b.records as f64 / total as f64)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            md_text(&b.label),
            group_u(b.classes),
            group_u(b.records),
            share,
            "█".repeat(bar_units(b.records, max, 20) as usize)
        );
    }
    out.push('\n');
}

fn md_cell(c: &Cell) -> String {
    let mut s = String::new();
    for p in c {
        match p {
            Piece::Text(x) => s.push_str(&md_text(x)),
            Piece::Hash(h) if h.chars().all(|ch| ch.is_ascii_alphanumeric()) => {
                let _ = write!(s, "`{h}`");
            }
            Piece::Hash(h) => s.push_str(&md_text(h)),
            Piece::Level(l) => s.push_str(l.label()),
        }
    }
    s
}

/// Escapes what would change the table structure or the inline formatting.
pub(crate) fn md_text(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '\\' | '|' | '*' | '`' | '[' | ']' | '<' | '>' => {
                out.push('\\');
                out.push(c);
            }
            // GFM leaves intraword underscores alone (customer_id), so only escape the others.
            '_' => {
                let prev = i.checked_sub(1).and_then(|j| chars.get(j));
                let next = chars.get(i + 1);
                let inner = |x: Option<&char>| x.is_some_and(|x| x.is_alphanumeric());
                if !(inner(prev) && inner(next)) {
                    out.push('\\');
                }
                out.push('_');
            }
            '\r' => {}
            '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}
