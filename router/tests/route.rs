//! The routing tree against Alertmanager's semantics: a table of label sets and the receivers
//! they reach through nested routes, `continue`, inheritance, anchored regexes and matchers on
//! missing labels; and the split of the shared `firing-1-of-3-resolved` capture into one group
//! per receiver.

mod inbound_fixtures;

use beacon_router::config::Config;
use beacon_router::model::{Group, LabelSet, Status};
use beacon_router::route::{Route, KEY_RECEIVER_SEPARATOR};
use beacon_router::sources::alertmanager;
use inbound_fixtures as fx;

/// Builds a routing tree through the config, as the daemon does.
fn tree(yaml: &str) -> Route {
    Config::from_yaml(yaml)
        .and_then(|c| c.build())
        .unwrap_or_else(|e| panic!("{e}"))
        .route
}

fn labels(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const TREE: &str = r#"
receivers:
  - name: default
  - name: critical
  - name: pay-exact
  - name: team-pay
  - name: team-pay-db
  - name: team-pay-noneu
  - name: sentry
  - name: ops-warn
route:
  receiver: default
  routes:
    - matchers: ['severity="critical"']
      receiver: critical
      continue: true
    - matchers: ['team=~"pay"']
      receiver: pay-exact
    - matchers: ['team=~"pay.*"']
      receiver: team-pay
      routes:
        - matchers: ['service="db"']
          receiver: team-pay-db
        - matchers: ['env!="prod"']
          continue: true
        - matchers: ['region!~"eu-.*"']
          receiver: team-pay-noneu
    - matchers: ['source="sentry"']
      receiver: sentry
    - matchers: ['team="ops"']
      routes:
        - matchers: ['severity="warning"']
          receiver: ops-warn
        - matchers: ['urgent="yes"']
          receiver: critical
"#;

/// A label set, the receivers it must reach, and why.
type Case = (
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
    &'static str,
);

#[test]
fn receivers_follow_alertmanager_semantics() {
    let route = tree(TREE);
    let cases: &[Case] = &[
        (&[], &["default"], "nothing matches: the root's receiver"),
        (
            &[("severity", "critical")],
            &["critical"],
            "a matching child with continue replaces the root even if no sibling matches",
        ),
        (
            &[("team", "pay")],
            &["pay-exact"],
            "first match without continue stops",
        ),
        (
            &[("team", "payments")],
            &["team-pay", "team-pay-noneu"],
            "receiver-less child inherits team-pay; continue reaches the sibling; missing \
             env and region are empty, so != and !~ match",
        ),
        (
            &[("team", "payments"), ("service", "db")],
            &["team-pay-db"],
            "first nested match stops",
        ),
        (
            &[
                ("team", "payments"),
                ("env", "prod"),
                ("region", "eu-west-1"),
            ],
            &["team-pay"],
            "no child matches: the node itself",
        ),
        (
            &[("team", "payments"), ("env", "prod")],
            &["team-pay-noneu"],
            "only the !~ sibling matches",
        ),
        (
            &[
                ("severity", "critical"),
                ("team", "payments"),
                ("service", "db"),
            ],
            &["critical", "team-pay-db"],
            "continue then a nested match",
        ),
        (
            &[("team", "xpayments")],
            &["default"],
            "regexes are anchored at the start",
        ),
        (
            &[("team", "apay")],
            &["default"],
            "regexes are anchored at the start (pay.* does not match apay)",
        ),
        (
            &[("team", "ops")],
            &["default"],
            "a receiver-less node with no matching child inherits the root's receiver",
        ),
        (
            &[("team", "ops"), ("severity", "warning")],
            &["ops-warn"],
            "nested",
        ),
        (
            &[("team", "ops"), ("severity", "critical"), ("urgent", "yes")],
            &["critical"],
            "the same receiver reached twice is listed once",
        ),
        (
            &[("source", "sentry"), ("severity", "critical")],
            &["critical", "sentry"],
            "continue then a later sibling",
        ),
    ];
    for (set, want, why) in cases {
        let got = route.receivers_for(&labels(set));
        assert_eq!(got, *want, "{set:?}: {why}");
    }
}

fn split_fixture() -> (Group, Vec<(String, Group)>) {
    let route = tree(
        r#"
receivers: [{name: default}, {name: payments}, {name: lending}]
route:
  receiver: default
  routes:
    - matchers: ['namespace=~"payments|kyc"']
      receiver: payments
    - matchers: ['namespace="lending"']
      receiver: lending
"#,
    );
    let c = fx::alertmanager("firing-1-of-3-resolved");
    let group = alertmanager::parse(&c.body).unwrap_or_else(|e| panic!("{e}"));
    let parts = route.route_group(&group);
    (group, parts)
}

#[test]
fn a_group_splits_per_receiver() {
    let (group, parts) = split_fixture();
    assert_eq!(group.status, Status::Firing);
    assert_eq!(group.alerts.len(), 3);
    let names: Vec<&str> = parts.iter().map(|(r, _)| r.as_str()).collect();
    // In the order receivers are first reached: the capture's first alert is lending's.
    assert_eq!(names, ["lending", "payments"]);

    let lending = &parts[0].1;
    let fps: Vec<&str> = lending
        .alerts
        .iter()
        .map(|a| a.fingerprint.as_str())
        .collect();
    assert_eq!(fps, ["bd7d4beb06c16311"]);
    assert_eq!(
        lending.status,
        Status::Resolved,
        "its only alert is resolved"
    );
    assert_eq!(
        lending.key,
        format!("{}{KEY_RECEIVER_SEPARATOR}lending", group.key)
    );
    assert_eq!(
        lending.common_labels.get("namespace").map(String::as_str),
        Some("lending"),
        "labels all its alerts share become common"
    );

    let payments = &parts[1].1;
    let fps: Vec<&str> = payments
        .alerts
        .iter()
        .map(|a| a.fingerprint.as_str())
        .collect();
    assert_eq!(fps, ["242606875e66af42", "a186e3ed3d7d24b2"]);
    assert_eq!(payments.status, Status::Firing);
    assert_eq!(
        payments.key,
        format!("{}{KEY_RECEIVER_SEPARATOR}payments", group.key)
    );
    assert_eq!(
        payments.common_labels.get("namespace"),
        None,
        "payments and kyc differ"
    );

    for (_, part) in &parts {
        // Untouched fields.
        assert_eq!(part.source, group.source);
        assert_eq!(part.receiver, group.receiver);
        assert_eq!(part.group_labels, group.group_labels);
        assert_eq!(part.common_annotations, group.common_annotations);
        assert_eq!(part.external_url, group.external_url);
        assert_eq!(part.truncated_alerts, group.truncated_alerts);
        for (k, v) in &group.common_labels {
            assert_eq!(part.common_labels.get(k), Some(v), "common label {k} kept");
        }
        assert_eq!(part.dedup_key.len(), 64);
        assert_ne!(part.dedup_key, group.dedup_key);
    }
    assert_ne!(lending.dedup_key, payments.dedup_key);
}

#[test]
fn split_dedup_keys_are_deterministic_and_follow_the_group_state() {
    let (_, a) = split_fixture();
    let (_, b) = split_fixture();
    let keys = |parts: &[(String, Group)]| -> Vec<String> {
        parts.iter().map(|(_, g)| g.dedup_key.clone()).collect()
    };
    assert_eq!(keys(&a), keys(&b), "same webhook, same keys (an HA pair)");

    // The same group in another state (all firing) gives other keys for each receiver.
    let route = tree(
        "receivers: [{name: d}, {name: lending}]\n\
         route: {receiver: d, routes: [{matchers: ['namespace=\"lending\"'], receiver: lending}]}\n",
    );
    let firing = alertmanager::parse(&fx::alertmanager("firing-3-alerts").body)
        .unwrap_or_else(|e| panic!("{e}"));
    let resolved_one = alertmanager::parse(&fx::alertmanager("firing-1-of-3-resolved").body)
        .unwrap_or_else(|e| panic!("{e}"));
    let lending = |g: &Group| -> Option<Group> {
        route
            .route_group(g)
            .into_iter()
            .find(|(r, _)| r == "lending")
            .map(|(_, g)| g)
    };
    let (f, r) = (lending(&firing), lending(&resolved_one));
    assert_eq!(f.as_ref().map(|g| g.status), Some(Status::Firing));
    assert_eq!(r.as_ref().map(|g| g.status), Some(Status::Resolved));
    assert_ne!(f.map(|g| g.dedup_key), r.map(|g| g.dedup_key));
}

#[test]
fn a_group_without_alerts_routes_by_its_common_labels() {
    let route = tree(
        "receivers: [{name: d}, {name: pay}]\n\
         route: {receiver: d, routes: [{matchers: ['team=\"pay\"'], receiver: pay}]}\n",
    );
    let c = fx::alertmanager("firing-3-alerts");
    let mut group = alertmanager::parse(&c.body).unwrap_or_else(|e| panic!("{e}"));
    group.alerts.clear();
    group.common_labels.insert("team".into(), "pay".into());
    let parts = route.route_group(&group);
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].0, "pay");
    assert_eq!(parts[0].1.status, group.status);
    assert!(parts[0].1.alerts.is_empty());
}
