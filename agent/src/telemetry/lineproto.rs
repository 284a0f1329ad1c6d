//! InfluxDB line protocol encoder, escaping per the v2 reference:
//! measurement — comma, space; tag keys, tag values, field keys — comma, equals sign, space;
//! string field values — double quote, backslash. A backslash in a name is written `\\` (the
//! spec reads two backslashes as one). Line breaks cannot be escaped in names, so a `\n` or
//! `\r` there becomes an escaped space. Integers carry `i`, unsigned `u`; floats no suffix.

use std::fmt::Write as _;

use super::point::{FieldValue, Point};

/// Appends `p` as one line (ending in `\n`). Non-finite floats are left out; a point with no
/// field left is not written at all.
pub fn encode_point(out: &mut String, p: &Point) {
    let fields: Vec<&(String, FieldValue)> = p
        .fields
        .iter()
        .filter(|(_, v)| !matches!(v, FieldValue::Float(f) if !f.is_finite()))
        .collect();
    if fields.is_empty() {
        return;
    }
    escape_name(out, &p.measurement, &[',', ' ']);
    for (k, v) in &p.tags {
        // Empty tag values are invalid in line protocol; InfluxDB drops such tags too.
        if k.is_empty() || v.is_empty() {
            continue;
        }
        out.push(',');
        escape_name(out, k, &[',', '=', ' ']);
        out.push('=');
        escape_name(out, v, &[',', '=', ' ']);
    }
    for (i, (k, v)) in fields.into_iter().enumerate() {
        out.push(if i == 0 { ' ' } else { ',' });
        escape_name(out, k, &[',', '=', ' ']);
        out.push('=');
        match v {
            FieldValue::Float(f) => crate::metrics::write_value(out, *f),
            FieldValue::Int(i) => {
                let _ = write!(out, "{i}i");
            }
            FieldValue::UInt(u) => {
                let _ = write!(out, "{u}u");
            }
            FieldValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            FieldValue::Str(s) => {
                out.push('"');
                for c in s.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
        }
    }
    out.push(' ');
    let _ = write!(out, "{}", p.timestamp_ns);
    out.push('\n');
}

/// Appends every point, one line each.
pub fn encode(out: &mut String, points: &[Point]) {
    for p in points {
        encode_point(out, p);
    }
}

fn escape_name(out: &mut String, s: &str, special: &[char]) {
    for c in s.chars() {
        match c {
            '\n' | '\r' => out.push_str("\\ "),
            '\\' => out.push_str("\\\\"),
            c if special.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A line protocol parser written from the spec, independent of the encoder.
    fn parse(line: &str) -> Point {
        let chars: Vec<char> = line.trim_end_matches('\n').chars().collect();
        let mut i = 0;
        // Reads an escaped token up to one of `stops` (unescaped).
        let token = |i: &mut usize, stops: &[char]| -> String {
            let mut s = String::new();
            while *i < chars.len() {
                let c = chars[*i];
                if c == '\\' && *i + 1 < chars.len() {
                    let n = chars[*i + 1];
                    if n == '\\' || n == ',' || n == '=' || n == ' ' || n == '"' {
                        s.push(n);
                        *i += 2;
                        continue;
                    }
                }
                if stops.contains(&c) {
                    break;
                }
                s.push(c);
                *i += 1;
            }
            s
        };
        let measurement = token(&mut i, &[',', ' ']);
        let mut tags = Vec::new();
        while chars[i] == ',' {
            i += 1;
            let k = token(&mut i, &['=']);
            i += 1;
            let v = token(&mut i, &[',', ' ']);
            tags.push((k, v));
        }
        assert_eq!(chars[i], ' ');
        i += 1;
        let mut fields = Vec::new();
        loop {
            let k = token(&mut i, &['=']);
            i += 1;
            let v = if chars[i] == '"' {
                i += 1;
                let mut s = String::new();
                loop {
                    match chars[i] {
                        '\\' => {
                            s.push(chars[i + 1]);
                            i += 2;
                        }
                        '"' => {
                            i += 1;
                            break;
                        }
                        c => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                FieldValue::Str(s)
            } else {
                let start = i;
                while chars[i] != ',' && chars[i] != ' ' {
                    i += 1;
                }
                let raw: String = chars[start..i].iter().collect();
                if let Some(n) = raw.strip_suffix('i') {
                    FieldValue::Int(n.parse().expect("int"))
                } else if let Some(n) = raw.strip_suffix('u') {
                    FieldValue::UInt(n.parse().expect("uint"))
                } else if raw == "true" || raw == "false" {
                    FieldValue::Bool(raw == "true")
                } else {
                    FieldValue::Float(raw.parse().expect("float"))
                }
            };
            fields.push((k, v));
            if chars[i] == ',' {
                i += 1;
            } else {
                break;
            }
        }
        i += 1;
        let ts: String = chars[i..].iter().collect();
        Point {
            measurement,
            tags,
            fields,
            timestamp_ns: ts.parse().expect("timestamp"),
        }
    }

    #[test]
    fn escapes_per_spec() {
        let p = Point {
            measurement: "m, x\\".into(),
            tags: vec![("t=k".into(), "v,a l".into())],
            fields: vec![
                ("f".into(), FieldValue::Str("say \"hi\" \\o/".into())),
                ("i".into(), FieldValue::Int(-3)),
                ("u".into(), FieldValue::UInt(7)),
                ("b".into(), FieldValue::Bool(true)),
                ("x".into(), FieldValue::Float(1.5)),
            ],
            timestamp_ns: 1_700_000_000_000_000_000,
        };
        let mut s = String::new();
        encode_point(&mut s, &p);
        assert_eq!(
            s,
            "m\\,\\ x\\\\,t\\=k=v\\,a\\ l f=\"say \\\"hi\\\" \\\\o/\",i=-3i,u=7u,b=true,x=1.5 1700000000000000000\n"
        );
    }

    #[test]
    fn non_finite_fields_and_empty_tags_are_left_out() {
        let mut p = Point {
            measurement: "m".into(),
            tags: vec![("e".into(), String::new())],
            fields: vec![("v".into(), FieldValue::Float(f64::NAN))],
            timestamp_ns: 1,
        };
        let mut s = String::new();
        encode_point(&mut s, &p);
        assert_eq!(s, "");
        p.fields.push(("w".into(), FieldValue::Float(2.0)));
        encode_point(&mut s, &p);
        assert_eq!(s, "m w=2 1\n");
    }

    fn name() -> impl Strategy<Value = String> {
        // Any printable text, specials included; line breaks are mapped (see module doc).
        "[^\\n\\r]{1,12}"
    }

    fn field_value() -> impl Strategy<Value = FieldValue> {
        prop_oneof![
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(FieldValue::Float),
            any::<i64>().prop_map(FieldValue::Int),
            any::<u64>().prop_map(FieldValue::UInt),
            any::<bool>().prop_map(FieldValue::Bool),
            ".{0,12}".prop_map(FieldValue::Str),
        ]
    }

    proptest! {
        #[test]
        fn round_trips(
            measurement in name(),
            tags in proptest::collection::btree_map(name(), name(), 0..4),
            fields in proptest::collection::btree_map(name(), field_value(), 1..4),
            ts in any::<i64>(),
        ) {
            let p = Point {
                measurement,
                tags: tags.into_iter().collect(),
                fields: fields.into_iter().collect(),
                timestamp_ns: ts,
            };
            let mut s = String::new();
            encode_point(&mut s, &p);
            prop_assert_eq!(s.matches('\n').count(), 1, "one line: {:?}", s);
            prop_assert_eq!(parse(&s), p);
        }
    }
}
