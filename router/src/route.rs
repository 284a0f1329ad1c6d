//! The routing tree: Alertmanager-syntax label matchers, the `Route` tree that picks receivers
//! for a label set exactly as Alertmanager does, and the split of a `Group` into one group per
//! receiver.

use std::fmt;

use regex::Regex;
use sha2::{Digest, Sha256};

use crate::model::{Alert, Group, LabelSet, Status};

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `name="value"`
    Equal,
    /// `name!="value"`
    NotEqual,
    /// `name=~"regex"`
    Regex,
    /// `name!~"regex"`
    NotRegex,
}

impl MatchOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// A matcher that does not parse. The message names the matcher as written so a user can find
/// it in a long list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid matcher {matcher:?}: {reason}")]
pub struct MatcherError {
    /// The matcher text as given.
    pub matcher: String,
    /// What is wrong with it, lowercase.
    pub reason: String,
}

/// One label matcher in Alertmanager's syntax: `name="value"`, `name!="value"`,
/// `name=~"regex"`, `name!~"regex"`.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Comparison.
    pub op: MatchOp,
    /// The value (or regex source) with quotes and escapes removed.
    pub value: String,
    /// For `=~` / `!~`: the value anchored as `^(?:value)$`, as Alertmanager anchors it.
    regex: Option<Regex>,
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

impl Matcher {
    /// Parses one matcher. Values may be double-quoted (with `\"`, `\\` and `\n` escapes) or,
    /// as Alertmanager's classic parser also accepts, bare.
    pub fn parse(text: &str) -> Result<Matcher, MatcherError> {
        let err = |reason: &str| MatcherError {
            matcher: text.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = text.trim();
        let op_at = trimmed
            .find(['=', '!'])
            .ok_or_else(|| err("expected an operator: =, !=, =~ or !~"))?;
        let name = trimmed[..op_at].trim_end();
        if name.is_empty() {
            return Err(err("missing label name"));
        }
        if !is_label_name(name) {
            return Err(err(
                "invalid label name: expected ascii letters, digits and underscores, \
                 not starting with a digit",
            ));
        }
        let rest = &trimmed[op_at..];
        let (op, raw) = if let Some(r) = rest.strip_prefix("=~") {
            (MatchOp::Regex, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (MatchOp::NotEqual, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (MatchOp::NotRegex, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (MatchOp::Equal, r)
        } else {
            return Err(err("expected an operator: =, !=, =~ or !~"));
        };
        let value = unquote(raw.trim()).map_err(err)?;
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$")).map_err(|e| MatcherError {
                    matcher: text.to_owned(),
                    reason: format!("invalid regex: {}", one_line(&e.to_string())),
                })?,
            ),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Matcher {
            name: name.to_owned(),
            op,
            value,
            regex,
        })
    }

    /// Whether the label set satisfies this matcher. A missing label counts as the empty
    /// string, as in Alertmanager: `team!="x"` and `team=~""` match a set without `team`.
    pub fn matches(&self, labels: &LabelSet) -> bool {
        let v = labels.get(&self.name).map(String::as_str).unwrap_or("");
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(v),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(v),
            // Unreachable by construction (`parse` always compiles regex matchers); match
            // nothing rather than panic.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`: a Prometheus label name.
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Removes double quotes and escapes; a bare value is taken as it is.
fn unquote(raw: &str) -> Result<String, &'static str> {
    let Some(inner) = raw.strip_prefix('"') else {
        if raw.contains('"') {
            return Err("unexpected quote in unquoted value");
        }
        return Ok(raw.to_owned());
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                if chars.next().is_some() {
                    return Err("unexpected text after the closing quote");
                }
                return Ok(out);
            }
            '\\' => match chars.next() {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some(_) => return Err("invalid escape: expected \\\", \\\\ or \\n"),
                None => return Err("missing closing quote"),
            },
            c => out.push(c),
        }
    }
    Err("missing closing quote")
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A node of the routing tree. The root has a receiver (the default) and no matchers.
#[derive(Debug, Clone)]
pub struct Route {
    /// Where matching alerts go; `None` inherits the parent's receiver.
    pub receiver: Option<String>,
    /// All must match for the node to match.
    pub matchers: Vec<Matcher>,
    /// After this node matched, whether its later siblings are tried too.
    pub r#continue: bool,
    /// Children, tried in order.
    pub routes: Vec<Route>,
}

impl Route {
    /// The receivers for a label set, deduplicated, in tree order.
    pub fn receivers_for(&self, labels: &LabelSet) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        self.collect(labels, None, &mut out);
        out
    }

    /// Alertmanager's `Route.Match`: depth first; a node that matches returns its matching
    /// descendants' receivers (stopping after the first child that matches without
    /// `continue`), or itself when no child matches. Returns whether the node matched.
    fn collect<'a>(
        &'a self,
        labels: &LabelSet,
        inherited: Option<&'a str>,
        out: &mut Vec<&'a str>,
    ) -> bool {
        if !self.matchers.iter().all(|m| m.matches(labels)) {
            return false;
        }
        let receiver = self.receiver.as_deref().or(inherited);
        let mut any_child = false;
        for child in &self.routes {
            let matched = child.collect(labels, receiver, out);
            any_child |= matched;
            if matched && !child.r#continue {
                break;
            }
        }
        if !any_child {
            // A receiver-less tree (only constructible in code, config validation requires the
            // root's receiver) routes nowhere rather than panicking.
            if let Some(r) = receiver {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        true
    }

    /// Splits a group into one group per receiver. Each alert is routed by its own labels
    /// merged over the group's common labels; a group without alerts is routed by its common
    /// labels alone. Receivers come in the order they were first reached.
    ///
    /// Each part keeps the original's fields except: `key` gets the receiver appended (so
    /// threads are per destination), `alerts` holds only the alerts routed there, `status` is
    /// firing when any of them fires, `common_labels` gains the labels they all share, and
    /// `dedup_key` is recomputed from the receiver, the original dedup key and their
    /// fingerprints. `truncated_alerts` is kept as is: the alerts Alertmanager left out may
    /// belong to any receiver.
    pub fn route_group(&self, group: &Group) -> Vec<(String, Group)> {
        let mut parts: Vec<(&str, Vec<&Alert>)> = Vec::new();
        if group.alerts.is_empty() {
            for r in self.receivers_for(&group.common_labels) {
                parts.push((r, Vec::new()));
            }
        }
        for alert in &group.alerts {
            let mut labels = group.common_labels.clone();
            labels.extend(alert.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            for r in self.receivers_for(&labels) {
                match parts.iter_mut().find(|(name, _)| *name == r) {
                    Some((_, alerts)) => alerts.push(alert),
                    None => parts.push((r, vec![alert])),
                }
            }
        }
        parts
            .into_iter()
            .map(|(receiver, alerts)| (receiver.to_owned(), part(group, receiver, &alerts)))
            .collect()
    }
}

/// Separates the original group key from the receiver in a routed group's key. Printable so
/// keys stay readable in logs.
pub const KEY_RECEIVER_SEPARATOR: &str = "|receiver=";

/// One receiver's share of a group.
fn part(group: &Group, receiver: &str, alerts: &[&Alert]) -> Group {
    let status = if alerts.is_empty() {
        group.status
    } else if alerts.iter().any(|a| a.status == Status::Firing) {
        Status::Firing
    } else {
        Status::Resolved
    };
    let mut common_labels = group.common_labels.clone();
    if let Some((first, rest)) = alerts.split_first() {
        for (k, v) in &first.labels {
            if rest.iter().all(|a| a.labels.get(k) == Some(v)) {
                common_labels.insert(k.clone(), v.clone());
            }
        }
    }
    let mut fingerprints: Vec<&str> = alerts.iter().map(|a| a.fingerprint.as_str()).collect();
    // Sorted so that the same alerts in another order (an HA peer) give the same key.
    fingerprints.sort_unstable();
    let mut h = Sha256::new();
    h.update(b"beacon routed group v1\0");
    put_str(&mut h, receiver);
    put_str(&mut h, &group.dedup_key);
    h.update((fingerprints.len() as u64).to_be_bytes());
    for f in fingerprints {
        put_str(&mut h, f);
    }
    Group {
        key: format!("{}{KEY_RECEIVER_SEPARATOR}{receiver}", group.key),
        status,
        common_labels,
        alerts: alerts.iter().map(|a| (*a).clone()).collect(),
        dedup_key: hex::encode(h.finalize()),
        ..group.clone()
    }
}

/// Length-prefixed so that no two different inputs hash alike.
fn put_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_be_bytes());
    h.update(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn m(text: &str) -> Matcher {
        Matcher::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_every_operator_and_quoting() {
        let cases = [
            (
                "severity=\"critical\"",
                "severity",
                MatchOp::Equal,
                "critical",
            ),
            (" team != \"pay\" ", "team", MatchOp::NotEqual, "pay"),
            ("team=~\"pay.*\"", "team", MatchOp::Regex, "pay.*"),
            ("team!~\"pay.*\"", "team", MatchOp::NotRegex, "pay.*"),
            ("env=prod", "env", MatchOp::Equal, "prod"),
            (
                "msg=\"a \\\"b\\\" \\\\ c\"",
                "msg",
                MatchOp::Equal,
                "a \"b\" \\ c",
            ),
            ("x=\"\"", "x", MatchOp::Equal, ""),
            ("x=\"a=b\"", "x", MatchOp::Equal, "a=b"),
        ];
        for (text, name, op, value) in cases {
            let got = m(text);
            assert_eq!(
                (got.name.as_str(), got.op, got.value.as_str()),
                (name, op, value),
                "{text}"
            );
        }
    }

    #[test]
    fn parse_errors_name_the_matcher() {
        let cases = [
            ("severity", "expected an operator"),
            ("=\"x\"", "missing label name"),
            ("1abc=\"x\"", "invalid label name"),
            ("a-b=\"x\"", "invalid label name"),
            ("x=\"open", "missing closing quote"),
            ("x=\"a\"b", "unexpected text after the closing quote"),
            ("x=\"\\q\"", "invalid escape"),
            ("x=a\"b", "unexpected quote"),
            ("x=~\"(\"", "invalid regex"),
        ];
        for (text, reason) in cases {
            let e = Matcher::parse(text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.starts_with(&format!("invalid matcher {text:?}: ")), "{e}");
            assert!(e.contains(reason), "{text}: {e}");
        }
    }

    #[test]
    fn regexes_are_anchored_and_missing_labels_are_empty() {
        let l = labels(&[("team", "payments")]);
        assert!(m("team=~\"pay.*\"").matches(&l));
        assert!(!m("team=~\"pay\"").matches(&l));
        assert!(!m("team=~\"ments\"").matches(&l));
        assert!(
            m("team=~\"a|payments\"").matches(&l),
            "alternation stays inside the anchors"
        );
        assert!(m("missing!=\"x\"").matches(&l));
        assert!(m("missing=\"\"").matches(&l));
        assert!(m("missing=~\"\"").matches(&l));
        assert!(m("missing!~\".+\"").matches(&l));
        assert!(!m("missing=~\".+\"").matches(&l));
    }
}
