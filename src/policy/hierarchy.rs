//! Generalization hierarchies: ARX hierarchy files, and per-quasi-identifier level tables
//! over dictionary codes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::error::Problem;

/// The label of the top level, where every value is generalized into one group.
pub const TOP: &str = "*";

/// An ARX hierarchy file: one row per original value, one column per level, the last level the
/// single root (usually `*`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ArxHierarchy {
    pub path: String,
    /// Number of levels, the original value included.
    pub height: usize,
    rows: HashMap<String, Vec<String>>,
}

/// Largest hierarchy file read (ARX files of real hierarchies are far smaller).
pub const MAX_HIERARCHY_BYTES: u64 = 64 << 20;

impl ArxHierarchy {
    /// Read and check a hierarchy file. It must be a regular file (not a device, FIFO or
    /// directory) of at most [`MAX_HIERARCHY_BYTES`].
    pub fn load(path: &Path, delimiter: u8) -> Result<Self, Problem> {
        let shown = path.display().to_string();
        let text = read_regular_file(path, MAX_HIERARCHY_BYTES)
            .map_err(|m| m.context(format_args!("hierarchy file {shown}")))?;
        Self::parse(&text, &shown, delimiter)
    }

    /// Parse hierarchy text; `path` names it in errors.
    pub fn parse(text: &str, path: &str, delimiter: u8) -> Result<Self, Problem> {
        let err =
            |line: usize, m: String| Problem(format!("hierarchy file {path}, line {line}: {m}"));
        let delimiter = delimiter as char;
        let mut rows: HashMap<String, Vec<String>> = HashMap::new();
        let mut height = 0;
        let mut root: Option<String> = None;
        // For the nesting check: level j label -> level j+1 label.
        let mut parent: Vec<HashMap<String, (String, usize)>> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let cells: Vec<String> = line.split(delimiter).map(unquote).collect();
            if height == 0 {
                height = cells.len();
                if height < 2 {
                    return Err(err(
                        n,
                        format!(
                            "one column only; a hierarchy needs the value and at least one level \
                             (is the delimiter `{delimiter}` right?)"
                        ),
                    ));
                }
                parent = vec![HashMap::new(); height - 1];
            } else if cells.len() != height {
                return Err(err(
                    n,
                    format!("{} columns, but the first row has {height}", cells.len()),
                ));
            }
            let last = &cells[height - 1];
            match &root {
                None => root = Some(last.clone()),
                Some(r) if r != last => {
                    return Err(err(
                        n,
                        format!(
                            "the last level is `{last}` but earlier rows end in `{r}`; the last \
                             level must be one root (e.g. `*`)"
                        ),
                    ));
                }
                _ => {}
            }
            for j in 0..height - 1 {
                let (child, up) = (&cells[j], &cells[j + 1]);
                match parent[j].get(child) {
                    Some((p, first)) if p != up && j > 0 => {
                        return Err(err(
                            n,
                            format!(
                                "`{child}` at level {j} generalizes to `{up}` here but to `{p}` \
                                 on line {first}; levels must nest"
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        parent[j].insert(child.clone(), (up.clone(), n));
                    }
                }
            }
            let value = cells[0].clone();
            if rows.insert(value.clone(), cells[1..].to_vec()).is_some() {
                return Err(err(n, format!("value `{value}` is listed twice")));
            }
        }
        if rows.is_empty() {
            return Err(Problem(format!("hierarchy file {path} is empty")));
        }
        Ok(ArxHierarchy {
            path: path.to_string(),
            height,
            rows,
        })
    }

    /// The labels of `value` at levels 1.., if the file covers it.
    pub fn labels(&self, value: &str) -> Option<&[String]> {
        self.rows.get(value).map(Vec::as_slice)
    }
}

/// Read a regular file of at most `max` bytes as UTF-8 text.
fn read_regular_file(path: &Path, max: u64) -> Result<String, Problem> {
    crate::io::read_regular_text(path, max, "a CSV file").map_err(Problem)
}

fn unquote(s: &str) -> String {
    let t = s.trim();
    t.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .map(|x| x.replace("\"\"", "\""))
        .unwrap_or_else(|| t.to_string())
}

/// One quasi-identifier's levels over the dictionary codes of its level-0 values.
#[derive(Debug, Clone)]
pub struct QiHierarchy {
    pub name: String,
    /// `labels[level][code]`: the generalized values at each level (`None` is null).
    pub labels: Vec<Vec<Option<Arc<str>>>>,
    /// `map[level][base code]`: the code of a level-0 value at each level.
    pub map: Vec<Vec<u32>>,
}

impl QiHierarchy {
    /// Number of levels, level 0 included.
    pub fn height(&self) -> usize {
        self.labels.len()
    }

    /// Highest level index.
    pub fn max_level(&self) -> usize {
        self.labels.len() - 1
    }

    /// Build from the level-0 values and, per higher level, the label of each level-0 value.
    /// Checks that each level is a function of the one below (levels nest).
    pub fn build(
        name: &str,
        base: &[Option<String>],
        higher: Vec<Vec<Option<String>>>,
    ) -> Result<Self, Problem> {
        let mut labels: Vec<Vec<Option<Arc<str>>>> = Vec::with_capacity(higher.len() + 1);
        let mut map = Vec::with_capacity(higher.len() + 1);
        labels.push(base.iter().map(|v| v.as_deref().map(Arc::from)).collect());
        map.push((0..base.len() as u32).collect::<Vec<u32>>());
        for (j, level) in higher.iter().enumerate() {
            let mut dict: HashMap<Option<&str>, u32> = HashMap::new();
            let mut lab: Vec<Option<Arc<str>>> = Vec::new();
            let mut codes = Vec::with_capacity(base.len());
            for v in level {
                let key = v.as_deref();
                let c = *dict.entry(key).or_insert_with(|| {
                    lab.push(key.map(Arc::from));
                    (lab.len() - 1) as u32
                });
                codes.push(c);
            }
            // Nesting: the previous level's code determines this level's code.
            let prev = &map[j];
            let mut up: HashMap<u32, u32> = HashMap::new();
            for (i, &c) in codes.iter().enumerate() {
                if let Some(&seen) = up.get(&prev[i]) {
                    if seen != c {
                        let shown = |l: &Option<Arc<str>>| {
                            l.as_deref()
                                .map_or("null".to_string(), |s| format!("`{s}`"))
                        };
                        return Err(Problem(format!(
                            "quasi-identifier `{name}`: levels do not nest: {} at level {j} \
                             generalizes to both {} and {} at level {}; choose levels where each \
                             group lies inside one group of the next level",
                            shown(&labels[j][prev[i] as usize]),
                            shown(&lab[seen as usize]),
                            shown(&lab[c as usize]),
                            j + 1
                        )));
                    }
                } else {
                    up.insert(prev[i], c);
                }
            }
            labels.push(lab);
            map.push(codes);
        }
        Ok(QiHierarchy {
            name: name.to_string(),
            labels,
            map,
        })
    }

    /// Levels from an ARX file; every non-null level-0 value must be in the file.
    pub fn from_arx(
        name: &str,
        base: &[Option<String>],
        h: &ArxHierarchy,
    ) -> Result<Self, Problem> {
        let levels = h.height - 1;
        let mut higher = vec![Vec::with_capacity(base.len()); levels];
        let mut missing = Vec::new();
        for v in base {
            match v {
                None => {
                    for (j, level) in higher.iter_mut().enumerate() {
                        level.push((j + 1 == levels).then(|| TOP.to_string()));
                    }
                }
                Some(v) => match h.labels(v) {
                    Some(row) => {
                        for (level, l) in higher.iter_mut().zip(row) {
                            level.push(Some(l.clone()));
                        }
                    }
                    None => {
                        missing.push(v.clone());
                        for level in higher.iter_mut() {
                            level.push(None);
                        }
                    }
                },
            }
        }
        if !missing.is_empty() {
            // The values themselves come from the data: count them, never show them.
            missing.sort();
            missing.dedup();
            return Err(Problem(format!(
                "hierarchy file {} does not cover {} distinct value{} of quasi-identifier \
                 `{name}` found in the data; add a row for every value the column holds (the \
                 values are not shown: errors never quote data)",
                h.path,
                missing.len(),
                if missing.len() > 1 { "s" } else { "" },
            )));
        }
        Self::build(name, base, higher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[Option<&str>]) -> Vec<Option<String>> {
        v.iter().map(|x| x.map(String::from)).collect()
    }

    #[test]
    fn arx_file_parses_and_checks() {
        let h = ArxHierarchy::parse("1;0-4;*\n2;0-4;*\r\n\n7;5-9;*\n", "age.csv", b';').unwrap();
        assert_eq!(h.height, 3);
        assert_eq!(h.labels("7").unwrap(), ["5-9", "*"]);
        let e = ArxHierarchy::parse("1;a;*\n2;b\n", "x.csv", b';')
            .unwrap_err()
            .message;
        assert!(
            e.contains("x.csv, line 2") && e.contains("2 columns"),
            "{e}"
        );
        let e = ArxHierarchy::parse("1;a;*\n2;a;+\n", "x.csv", b';')
            .unwrap_err()
            .message;
        assert!(e.contains("one root"), "{e}");
        let e = ArxHierarchy::parse("1;a;p;*\n2;a;q;*\n", "x.csv", b';')
            .unwrap_err()
            .message;
        assert!(e.contains("nest") && e.contains("line 1"), "{e}");
        let e = ArxHierarchy::parse("1;a;*\n1;a;*\n", "x.csv", b';')
            .unwrap_err()
            .message;
        assert!(e.contains("`1` is listed twice"), "{e}");
        assert!(ArxHierarchy::parse("1,a,*", "x.csv", b';').is_err());
    }

    #[test]
    fn levels_map_codes_and_reject_non_nesting() {
        let h = ArxHierarchy::parse("a;x;*\nb;x;*\nc;y;*\n", "h.csv", b';').unwrap();
        let q =
            QiHierarchy::from_arx("q", &s(&[Some("c"), Some("a"), None, Some("b")]), &h).unwrap();
        assert_eq!(q.height(), 3);
        assert_eq!(q.map[1], [0, 1, 2, 1]);
        assert_eq!(q.labels[1][2], None);
        assert_eq!(q.map[2], [0, 0, 0, 0]);
        let e = QiHierarchy::from_arx("q", &s(&[Some("d"), Some("é")]), &h)
            .unwrap_err()
            .message;
        // The uncovered values come from the data: counted, never shown.
        assert!(
            e.contains("2 distinct values") && e.contains("h.csv"),
            "{e}"
        );
        assert!(!e.contains("`d`") && !e.contains('é'), "{e}");
        let e = QiHierarchy::build(
            "age",
            &s(&[Some("30"), Some("31")]),
            vec![
                s(&[Some("30-39"), Some("30-39")]),
                s(&[Some("A"), Some("B")]),
            ],
        )
        .unwrap_err()
        .message;
        assert!(
            e.contains("`30-39` at level 1") && e.contains("nest"),
            "{e}"
        );
    }
}
