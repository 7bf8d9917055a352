//! The format-neutral layout both renderers print: sections of headings, paragraphs, lists,
//! tables and charts.

use super::findings::Level;

pub(super) enum Piece {
    Text(String),
    /// A digest: in full in Markdown, shortened with the full value as a tooltip in HTML.
    Hash(String),
    Level(Level),
}

pub(super) type Cell = Vec<Piece>;

pub(super) fn t(s: impl Into<String>) -> Cell {
    vec![Piece::Text(s.into())]
}

pub(super) fn opt(s: Option<String>) -> Cell {
    t(s.unwrap_or_else(|| "—".into()))
}

pub(super) struct Table {
    pub(super) head: Vec<&'static str>,
    /// Right-aligned (numeric) columns.
    pub(super) num: Vec<usize>,
    pub(super) rows: Vec<Vec<Cell>>,
    /// Key/value table: the first column is a row header.
    pub(super) kv: bool,
}

impl Table {
    pub(super) fn new(head: Vec<&'static str>) -> Self {
        Table {
            head,
            num: Vec::new(),
            rows: Vec::new(),
            kv: false,
        }
    }
    pub(super) fn kv() -> Self {
        Table {
            kv: true,
            ..Table::new(vec!["Item", "Value"])
        }
    }
    pub(super) fn pair(&mut self, k: &str, v: Cell) {
        self.rows.push(vec![t(k), v]);
    }
}

pub(super) struct Bucket {
    pub(super) label: String,
    pub(super) classes: u64,
    pub(super) records: u64,
}

pub(super) struct Chart {
    pub(super) title: String,
    pub(super) buckets: Vec<Bucket>,
}

pub(super) enum Block {
    H3(String),
    Para(Cell),
    List(Vec<Cell>),
    Table(Table),
    Chart(Chart),
}

pub(super) struct Section {
    pub(super) id: &'static str,
    pub(super) title: &'static str,
    pub(super) blocks: Vec<Block>,
}

pub(super) struct Report {
    pub(super) heading: String,
    pub(super) subtitle: Cell,
    pub(super) sections: Vec<Section>,
    pub(super) footer: String,
}
