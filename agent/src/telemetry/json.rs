//! Telegraf's JSON metric shape for MQTT `format: json`: one message is
//! `{"metrics":[{"name":..,"tags":{..},"fields":{..},"timestamp":..}, ...]}` (Telegraf's batch
//! form). `timestamp` is in nanoseconds since the Unix epoch (Telegraf: `json_timestamp_units =
//! "1ns"`), so sub-second intervals keep distinct, original timestamps.

use serde_json::{Map, Number, Value};

use super::point::{FieldValue, Point};

/// One point as a JSON object.
pub fn point_value(p: &Point) -> Value {
    let tags: Map<String, Value> = p
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let fields: Map<String, Value> = p
        .fields
        .iter()
        .filter_map(|(k, v)| {
            let v = match v {
                FieldValue::Float(f) => Value::Number(Number::from_f64(*f)?),
                FieldValue::Int(i) => Value::Number((*i).into()),
                FieldValue::UInt(u) => Value::Number((*u).into()),
                FieldValue::Bool(b) => Value::Bool(*b),
                FieldValue::Str(s) => Value::String(s.clone()),
            };
            Some((k.clone(), v))
        })
        .collect();
    let mut obj = Map::new();
    obj.insert("name".into(), Value::String(p.measurement.clone()));
    obj.insert("tags".into(), Value::Object(tags));
    obj.insert("fields".into(), Value::Object(fields));
    obj.insert("timestamp".into(), Value::Number(p.timestamp_ns.into()));
    Value::Object(obj)
}

/// A batch message holding `points`.
pub fn encode(points: &[Point]) -> String {
    let metrics: Vec<Value> = points.iter().map(point_value).collect();
    let mut obj = Map::new();
    obj.insert("metrics".into(), Value::Array(metrics));
    Value::Object(obj).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telegraf_shape() {
        let p = Point {
            measurement: "node_load1".into(),
            tags: vec![("device_id".into(), "d1".into())],
            fields: vec![("value".into(), FieldValue::Float(0.5))],
            timestamp_ns: 1_700_000_000_123_456_789,
        };
        let got: Value = serde_json::from_str(&encode(&[p])).expect("json");
        let want: Value = serde_json::from_str(
            r#"{"metrics":[{"fields":{"value":0.5},"name":"node_load1","tags":{"device_id":"d1"},"timestamp":1700000000123456789}]}"#,
        )
        .expect("json");
        assert_eq!(got, want);
    }
}
