//! Where in a snapshot document a problem sits: `file:line:col` for errors found after the
//! JSON parsed (a type error such as `"FromPort": "x"`), not only for syntax errors.
//!
//! serde_json's `Value` keeps no positions, so the providers read the document as usual and,
//! when a value is wrong, name *which* value: by its path ([`Seg`]s from the root), or by
//! reference (a `&Value` inside the parsed document, turned into its path by [`path_to`]).
//! [`locate`] then walks the text along that path with a small JSON scanner and, within the
//! value found, goes to the member the message names (the first word of the message that
//! is a key inside it, e.g. `priority` in "security rule `r`: `priority` must be a number").
//! It never guesses outside the value named: if the text and the path disagree, the error
//! keeps no position rather than a wrong one.

use crate::SnapshotError;
use serde_json::Value;

/// One step of a path into a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A member of an object.
    Key(String),
    /// An element of an array.
    Index(usize),
}

/// The path from `doc` to `target`, a reference to a value inside `doc` (found by address,
/// so equal values elsewhere are not confused with it).
pub fn path_to(doc: &Value, target: &Value) -> Option<Vec<Seg>> {
    if std::ptr::eq(doc, target) {
        return Some(Vec::new());
    }
    let (seg, mut rest) = match doc {
        Value::Object(m) => m
            .iter()
            .find_map(|(k, v)| Some((Seg::Key(k.clone()), path_to(v, target)?)))?,
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| Some((Seg::Index(i), path_to(v, target)?)))?,
        _ => return None,
    };
    rest.insert(0, seg);
    Some(rest)
}

/// The path a message starts with, written as `Name[i], Name[j] (label), ...: ...` (the
/// AWS reader's convention, e.g. `SecurityGroups[0] (iw-web), IpPermissions[2]: ...`).
pub fn path_in_message(message: &str) -> Vec<Seg> {
    let Some((head, _)) = message.split_once(": ") else {
        return Vec::new();
    };
    let mut path = Vec::new();
    for part in head.split(", ") {
        let part = part.split(" (").next().unwrap_or(part);
        let Some((name, idx)) = part.strip_suffix(']').and_then(|p| p.split_once('[')) else {
            return Vec::new();
        };
        let (Ok(i), true) = (idx.parse::<usize>(), is_word(name)) else {
            return Vec::new();
        };
        path.push(Seg::Key(name.to_string()));
        path.push(Seg::Index(i));
    }
    path
}

/// `e` with the line and column of the value at `path` in `text` (or of the member of it the
/// message names); unchanged when it already has a position or the path is not found.
pub fn locate(mut e: SnapshotError, text: &str, path: &[Seg]) -> SnapshotError {
    if e.line.is_some() {
        return e;
    }
    let Some(at) = value_at(text, path) else {
        return e;
    };
    let at = named_member(text, at, &e.message).unwrap_or(at);
    let (line, column) = line_col(text, at);
    e.line = Some(line);
    e.column = Some(column);
    e
}

/// [`locate`] for a value given by reference into `doc` (parsed from `text`).
pub fn locate_value(e: SnapshotError, text: &str, doc: &Value, target: &Value) -> SnapshotError {
    match path_to(doc, target) {
        Some(p) => locate(e, text, &p),
        None => e,
    }
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

/// Byte offset where the value at `path` starts. A key step on an array is skipped (a
/// document may be the bare list its envelope would hold: `[...]` for `{"items": [...]}`).
fn value_at(text: &str, path: &[Seg]) -> Option<usize> {
    let mut s = Scan {
        b: text.as_bytes(),
        i: 0,
    };
    s.ws();
    let mut steps = path.iter().peekable();
    while let Some(seg) = steps.next() {
        match (seg, s.peek()?) {
            (Seg::Key(k), b'{') => {
                s.i += 1;
                loop {
                    s.ws();
                    if s.peek()? == b'}' {
                        return None;
                    }
                    let key = s.string()?;
                    s.ws();
                    s.eat(b':')?;
                    s.ws();
                    if &key == k {
                        break;
                    }
                    s.skip()?;
                    s.ws();
                    s.eat(b',')?;
                }
            }
            (Seg::Key(_), b'[') if matches!(steps.peek(), Some(Seg::Index(_))) => {}
            (Seg::Index(n), b'[') => {
                s.i += 1;
                for _ in 0..*n {
                    s.ws();
                    s.skip()?;
                    s.ws();
                    s.eat(b',')?;
                }
                s.ws();
                if s.peek()? == b']' {
                    return None;
                }
            }
            _ => return None,
        }
    }
    Some(s.i)
}

/// Inside the value at `at`, the offset of the value of the first member (in document order,
/// at any depth) whose key is the first word of `message` (after its context, up to the
/// first `: `) that is a key there.
fn named_member(text: &str, at: usize, message: &str) -> Option<usize> {
    let mut keys = Vec::new();
    let mut s = Scan {
        b: text.as_bytes(),
        i: at,
    };
    s.collect_keys(&mut keys)?;
    // what the message says is wrong follows its context (`NSG `n`, rule `r`: `priority` ...`)
    let tail = message.split_once(": ").map_or(message, |(_, t)| t);
    tail.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .find_map(|w| keys.iter().find(|(k, _)| k == w).map(|(_, at)| *at))
}

/// A cursor over a JSON text that is known to parse (serde_json read it first), so the
/// scanner can be small; on anything unexpected it gives up (`None`) rather than guess.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }
    /// A string token, decoded (escapes included) by serde_json itself.
    fn string(&mut self) -> Option<String> {
        let start = self.i;
        self.eat(b'"')?;
        loop {
            match self.peek()? {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    break;
                }
                _ => self.i += 1,
            }
        }
        serde_json::from_slice(&self.b[start..self.i]).ok()
    }
    /// Skip one value.
    fn skip(&mut self) -> Option<()> {
        self.collect_keys(&mut Vec::new())
    }
    /// Skip one value, noting every member key inside it with where its value starts.
    fn collect_keys(&mut self, keys: &mut Vec<(String, usize)>) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let object = self.peek()? == b'{';
                let close = if object { b'}' } else { b']' };
                self.i += 1;
                self.ws();
                if self.peek()? == close {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    if object {
                        let k = self.string()?;
                        self.ws();
                        self.eat(b':')?;
                        self.ws();
                        keys.push((k, self.i));
                    }
                    self.collect_keys(keys)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        c if c == close => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            _ => {
                // number, true, false, null
                while matches!(self.peek(), Some(c) if !matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                {
                    self.i += 1;
                }
                Some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "{\n  \"SecurityGroups\": [\n    { \"GroupName\": \"a\", \"IpPermissions\": [ { \"FromPort\": 1 } ] },\n    { \"GroupName\": \"b\",\n      \"IpPermissions\": [ { \"FromPort\": 2 },\n        { \"ToPort\": 3, \"FromPort\": \"x\" } ] }\n  ]\n}\n";

    fn at(e: SnapshotError) -> (usize, usize) {
        (e.line.unwrap(), e.column.unwrap())
    }

    #[test]
    fn a_message_path_leads_to_the_member_it_names() {
        let m =
            "SecurityGroups[1] (b), IpPermissions[1]: `FromPort` must be an integer, found \"x\"";
        let p = path_in_message(m);
        assert_eq!(p.len(), 4);
        assert_eq!(at(locate(SnapshotError::msg(m), DOC, &p)), (6, 36));
    }

    #[test]
    fn a_reference_leads_to_its_own_value_not_an_equal_one() {
        let doc: Value = serde_json::from_str(DOC).unwrap();
        let second = &doc["SecurityGroups"][1];
        let e = locate_value(
            SnapshotError::msg("`GroupName` is wrong"),
            DOC,
            &doc,
            second,
        );
        assert_eq!(at(e), (4, 20));
        // no key named: the value itself
        let e = locate_value(SnapshotError::msg("nothing"), DOC, &doc, second);
        assert_eq!(at(e), (4, 5));
    }

    #[test]
    fn a_bare_list_skips_the_envelope_key() {
        let text = "[\n {\"name\": \"a\"},\n {\"name\": \"b\", \"priority\": \"x\"}\n]";
        let p = [Seg::Key("items".into()), Seg::Index(1)];
        let e = locate(SnapshotError::msg("firewall #2: priority `x`"), text, &p);
        assert_eq!(at(e), (3, 28));
    }

    #[test]
    fn no_position_rather_than_a_wrong_one() {
        let p = [Seg::Key("SecurityGroups".into()), Seg::Index(7)];
        let e = locate(SnapshotError::msg("x"), DOC, &p);
        assert_eq!(e.line, None);
        assert!(path_in_message("NSG `a`: b").is_empty());
        assert!(path_in_message("a[x]: b").is_empty());
    }

    fn json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-zé\"\\\\ ]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z\"é]{1,4}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Every path to every value of a document, in both layouts serde_json writes.
    fn paths(v: &Value, here: Vec<Seg>, out: &mut Vec<(Vec<Seg>, Value)>) {
        out.push((here.clone(), v.clone()));
        match v {
            Value::Object(m) => m.iter().for_each(|(k, c)| {
                let mut p = here.clone();
                p.push(Seg::Key(k.clone()));
                paths(c, p, out)
            }),
            Value::Array(a) => a.iter().enumerate().for_each(|(i, c)| {
                let mut p = here.clone();
                p.push(Seg::Index(i));
                paths(c, p, out)
            }),
            _ => {}
        }
    }

    proptest::proptest! {
        /// The scanner lands on exactly the value a path names: parsing the text from the
        /// offset it finds gives that value back, and `path_to` finds each value's path.
        #[test]
        fn every_path_lands_on_its_value(doc in json(), pretty in proptest::bool::ANY) {
            let text = if pretty {
                serde_json::to_string_pretty(&doc).unwrap()
            } else {
                serde_json::to_string(&doc).unwrap()
            };
            let mut all = Vec::new();
            paths(&doc, Vec::new(), &mut all);
            for (path, want) in all {
                let at = value_at(&text, &path).expect("found");
                let mut de = serde_json::Deserializer::from_str(&text[at..]);
                let got: Value = serde::Deserialize::deserialize(&mut de).unwrap();
                proptest::prop_assert_eq!(&got, &want);
                let pointer: String = path
                    .iter()
                    .map(|s| match s {
                        Seg::Key(k) => format!("/{k}"),
                        Seg::Index(i) => format!("/{i}"),
                    })
                    .collect();
                let node = doc.pointer(&pointer).expect("pointer");
                proptest::prop_assert_eq!(path_to(&doc, node), Some(path));
            }
        }
    }

    #[test]
    fn escapes_and_unicode_do_not_shift_columns() {
        let text = "{\"k\\\"é\": [\"]\", {\"a\": 1}], \"b\": \"ü\", \"c\": true}";
        let e = locate(SnapshotError::msg("`c` bad"), text, &[]);
        assert_eq!(at(e), (1, text.chars().count() - 4));
        let e = locate(SnapshotError::msg("`a` bad"), text, &[]);
        assert_eq!(at(e), (1, 22));
    }
}
