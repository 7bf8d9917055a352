//! Reading provenance back: strict JSON (no repeated member names) and the copy embedded in
//! a Parquet footer.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::PARQUET_KEY;
use crate::error::Problem;

/// Parse JSON, refusing an object that names a member twice: readers disagree on which copy
/// counts, so a duplicate could show one value to a person and another to the signature.
pub fn parse_strict(text: &str) -> std::result::Result<Value, Problem> {
    serde_json::from_str::<NoDuplicates>(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Problem(format!(
            "a member name appears twice in one object (line {} column {})",
            e.line(),
            e.column()
        )),
        _ => Problem(format!("not valid JSON: {e}")),
    })?;
    serde_json::from_str(text).map_err(|e| Problem(format!("not valid JSON: {e}")))
}

/// Walks a document, failing on a repeated member name; builds nothing.
struct NoDuplicates;

impl<'de> Deserialize<'de> for NoDuplicates {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(NoDuplicates)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicates {
    type Value = NoDuplicates;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> std::result::Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self, A::Error> {
        while seq.next_element::<NoDuplicates>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(k) = map.next_key::<String>()? {
            if !seen.insert(k) {
                return Err(serde::de::Error::custom("duplicate member"));
            }
            map.next_value::<NoDuplicates>()?;
        }
        Ok(self)
    }
}

/// The provenance copy in a Parquet file's footer, if any.
pub fn embedded(path: &Path) -> std::result::Result<Option<Value>, Problem> {
    let (f, _) = crate::io::open_regular(path).map_err(|e| {
        Problem(crate::io::small_file_problem(
            &e,
            u64::MAX,
            "a Parquet output or its provenance record",
        ))
    })?;
    // The Parquet reader asserts on some corrupt metadata: a panic is a damaged file.
    let text = crate::error::catch_panic(|| {
        use parquet::file::reader::FileReader;
        let reader = parquet::file::reader::SerializedFileReader::new(f)
            .map_err(|e| Problem(e.to_string()))?;
        let kv = reader.metadata().file_metadata().key_value_metadata();
        Ok::<_, Problem>(
            kv.and_then(|kv| kv.iter().find(|e| e.key == PARQUET_KEY))
                .and_then(|e| e.value.clone()),
        )
    })
    .map_err(|_| Problem::new("corrupt Parquet metadata"))??;
    let Some(text) = text else {
        return Ok(None);
    };
    parse_strict(&text)
        .map(Some)
        .map_err(|e| e.context("footer record"))
}
