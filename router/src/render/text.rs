//! What alert text may put in a chat message: invisible and direction-changing characters
//! neutralised, right-to-left label values isolated, Slack mrkdwn markup and plain-text
//! mentions made inert, and grapheme cluster boundaries (Unicode UAX #29) for cuts.
//!
//! Every field of a group that comes from an alert, a label or a Sentry event passes through
//! [`neutralise_group`] before a Slack, Google Chat or console message is rendered from it, so
//! an alert cannot hide or reverse the rest of a line ("Trojan Source", CVE-2021-42574) in an
//! on-call channel. The generic webhook body is left as received: it goes to a machine.

use std::borrow::Cow;

use unicode_segmentation::{GraphemeCursor, UnicodeSegmentation};

use crate::model::{Alert, Group, LabelSet};

/// U+2068 FIRST STRONG ISOLATE: opens a right-to-left label value (see [`isolate_rtl`]).
pub const FSI: char = '\u{2068}';
/// U+2069 POP DIRECTIONAL ISOLATE: closes it.
pub const PDI: char = '\u{2069}';

/// Characters that are invisible or change the direction of the text around them, and which
/// alert text never keeps: the bidi embeddings, overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069), the zero-width characters and directional marks (U+200B–U+200F, plus the
/// Arabic letter mark U+061C), the word joiner and invisible operators (U+2060–U+2064), the
/// deprecated format characters (U+206A–U+206F) and the byte order mark / zero-width no-break
/// space (U+FEFF).
pub fn is_hidden_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{206A}'..='\u{206F}'
            | '\u{FEFF}'
    )
}

/// U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR: line breaks that many clients do not
/// show as one, so a line can seem to end where it does not. They become `\n`.
fn is_line_separator(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}')
}

/// Whether `c` continues a grapheme cluster after any base character (Extend, ZWJ or
/// SpacingMark in UAX #29): then a ZWJ before it is not what joined the cluster.
fn extends_cluster(c: char) -> bool {
    let mut probe = String::with_capacity(8);
    probe.push('a');
    probe.push(c);
    probe.graphemes(true).count() == 1
}

/// Whether the ZERO WIDTH JOINER at byte `at` of `s` joins two visible characters into one
/// grapheme cluster: UAX #29's GB11 (an emoji ZWJ sequence) or GB9c (an Indic conjunct), i.e.
/// no boundary between it and the next character, which does not merely extend the cluster.
/// Both rules look back only over one cluster, so a short window before the joiner decides it.
fn zwj_joins(s: &str, at: usize) -> bool {
    let after = at + '\u{200D}'.len_utf8();
    let Some(next) = s[after..].chars().next() else {
        return false;
    };
    if is_hidden_control(next) || extends_cluster(next) {
        return false;
    }
    let mut start = at.saturating_sub(64);
    while !s.is_char_boundary(start) {
        start -= 1;
    }
    let window = &s[start..after + next.len_utf8()];
    let mut cursor = GraphemeCursor::new(after - start, window.len(), true);
    matches!(cursor.is_boundary(window, 0), Ok(false))
}

/// Whether [`neutralise`] would change `s`. Every character it changes starts with byte 0xD8,
/// 0xE2 or 0xEF in UTF-8 (U+061C; U+2000–U+2FFF; U+FEFF), so only those positions are decoded:
/// this runs over every displayed string of every group, most of which are clean.
fn needs_neutralising_str(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if matches!(bytes[i], 0xD8 | 0xE2 | 0xEF) {
            // A lead byte, so a char boundary.
            let c = s[i..].chars().next().unwrap_or_default();
            let changes = match c {
                '\u{200D}' => !zwj_joins(s, i),
                c => is_hidden_control(c) || is_line_separator(c),
            };
            if changes {
                return true;
            }
            i += c.len_utf8();
        } else {
            i += 1;
        }
    }
    false
}

/// Text with [`is_hidden_control`] characters removed and line separators as `\n`. A ZERO WIDTH
/// JOINER is kept only where it joins two visible characters into one grapheme cluster (emoji
/// ZWJ sequences such as 👩‍👩‍👧, Indic conjuncts): there it is part of what people see as one
/// character, cannot hide or reorder anything, and removing it would split the emoji. Borrows
/// when there is nothing to change.
pub fn neutralise(s: &str) -> Cow<'_, str> {
    if !needs_neutralising_str(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.char_indices() {
        match c {
            c if is_line_separator(c) => out.push('\n'),
            // Judged on the input: a removed control after the joiner (checked in
            // `zwj_joins`) already means it joins nothing.
            '\u{200D}' if zwj_joins(s, i) => out.push(c),
            c if is_hidden_control(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn neutralise_owned(s: &mut String) {
    if let Cow::Owned(clean) = neutralise(s) {
        *s = clean;
    }
}

fn neutralise_set(set: &mut LabelSet) {
    if !set
        .iter()
        .any(|(k, v)| needs_neutralising_str(k) || needs_neutralising_str(v))
    {
        return;
    }
    *set = std::mem::take(set)
        .into_iter()
        .map(|(k, v)| (neutralise(&k).into_owned(), neutralise(&v).into_owned()))
        .collect();
}

fn neutralise_alert(alert: &mut Alert) {
    neutralise_set(&mut alert.labels);
    neutralise_set(&mut alert.annotations);
    for s in [
        &mut alert.starts_at,
        &mut alert.ends_at,
        &mut alert.generator_url,
    ]
    .into_iter()
    .flatten()
    {
        neutralise_owned(s);
    }
    neutralise_owned(&mut alert.fingerprint);
}

/// Whether any displayed field of the group holds a character [`neutralise`] would change.
fn needs_neutralising(group: &Group) -> bool {
    let dirty = needs_neutralising_str;
    let dirty_set = |set: &LabelSet| set.iter().any(|(k, v)| dirty(k) || dirty(v));
    group.receiver.as_deref().is_some_and(dirty)
        || group.external_url.as_deref().is_some_and(dirty)
        || dirty_set(&group.group_labels)
        || dirty_set(&group.common_labels)
        || dirty_set(&group.common_annotations)
        || dirty_set(&group.extra)
        || group.alerts.iter().any(|a| {
            dirty_set(&a.labels)
                || dirty_set(&a.annotations)
                || [&a.starts_at, &a.ends_at, &a.generator_url]
                    .into_iter()
                    .flatten()
                    .any(|s| dirty(s))
                || dirty(&a.fingerprint)
        })
}

/// The group with every displayed field [`neutralise`]d: labels, annotations, receiver, URLs,
/// times, fingerprints and extra fields. `key` and `dedup_key` stay as received: they are
/// identifiers (threads and deduplication are keyed by them), never shown in a chat message.
/// Borrows when the group is clean, which is almost always.
pub fn neutralise_group(group: &Group) -> Cow<'_, Group> {
    if !needs_neutralising(group) {
        return Cow::Borrowed(group);
    }
    let mut g = group.clone();
    if let Some(r) = g.receiver.as_mut() {
        neutralise_owned(r);
    }
    if let Some(u) = g.external_url.as_mut() {
        neutralise_owned(u);
    }
    neutralise_set(&mut g.group_labels);
    neutralise_set(&mut g.common_labels);
    neutralise_set(&mut g.common_annotations);
    neutralise_set(&mut g.extra);
    g.alerts.iter_mut().for_each(neutralise_alert);
    Cow::Owned(g)
}

/// Whether `c` is a strong right-to-left letter (Bidi_Class R or AL): the blocks of the
/// Hebrew, Arabic, Syriac, Thaana, N'Ko, Samaritan and Mandaic scripts, their presentation
/// forms, and the right-to-left ranges of the supplementary planes.
pub fn is_rtl(c: char) -> bool {
    matches!(
        c,
        '\u{0590}'..='\u{08FF}'
            | '\u{FB1D}'..='\u{FDFF}'
            | '\u{FE70}'..='\u{FEFE}'
            | '\u{10800}'..='\u{10FFF}'
            | '\u{1E800}'..='\u{1EFFF}'
    )
}

/// A label value with right-to-left letters, wrapped in FIRST STRONG ISOLATE … POP DIRECTIONAL
/// ISOLATE (what UAX #9 recommends for inserting text of unknown direction): without it, an
/// Arabic or Hebrew value can pull the `key=` before it and the labels after it into its own
/// right-to-left run and show them in another order. Left-to-right values are left alone.
/// Apply after cutting, so a cut never leaves an isolate open.
pub fn isolate_rtl(value: &str) -> Cow<'_, str> {
    if value.chars().any(is_rtl) {
        Cow::Owned(format!("{FSI}{value}{PDI}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// Slack mrkdwn has no escape for `*`, `_`, `~` and `` ` `` (only `&`, `<`, `>` have entities),
/// so alert text placed inside our own bold or code spans gets look-alikes instead: otherwise
/// an attacker's `*` closes the bold early and the rest of the line formats as they chose.
pub fn slack_markup_neutralise(s: &str) -> Cow<'_, str> {
    if !s.contains(['*', '_', '~', '`']) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| match c {
                // U+2217 ASTERISK OPERATOR, U+FF3F FULLWIDTH LOW LINE, U+223C TILDE OPERATOR,
                // U+02CB MODIFIER LETTER GRAVE ACCENT.
                '*' => '∗',
                '_' => '＿',
                '~' => '∼',
                '`' => 'ˋ',
                c => c,
            })
            .collect(),
    )
}

/// The special mentions Slack turns plain text into when a message is posted with
/// `link_names` or `parse: full`.
const SLACK_SPECIAL_MENTIONS: [&str; 3] = ["channel", "here", "everyone"];

/// Plain-text `@channel`, `@here` and `@everyone` with the `@` as U+FF20 FULLWIDTH COMMERCIAL
/// AT. Slack links such text into a notification for everyone only when a message is posted
/// with `link_names` or `parse: full`, which Beacon never sets; this keeps an alert from
/// pinging a channel even if a workspace, a relay or a future default did. Only an `@` that
/// starts a word counts, as in Slack's own linking: `ops@here.example` and a URL's `/@here`
/// path stay as they are.
pub fn slack_mentions_neutralise(s: &str) -> Cow<'_, str> {
    let is_mention = |i: usize| {
        let starts_word = s[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric() && !"/.:-_+%=@".contains(c));
        let rest = &s[i + 1..];
        starts_word
            && SLACK_SPECIAL_MENTIONS.iter().any(|m| {
                rest.get(..m.len())
                    .is_some_and(|w| w.eq_ignore_ascii_case(m))
                    && rest[m.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| !c.is_alphanumeric() && c != '_')
            })
    };
    let mentions: Vec<usize> = s
        .match_indices('@')
        .map(|(i, _)| i)
        .filter(|&i| is_mention(i))
        .collect();
    if mentions.is_empty() {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 2 * mentions.len());
    let mut last = 0;
    for i in mentions {
        out.push_str(&s[last..i]);
        out.push('＠');
        last = i + 1;
    }
    out.push_str(&s[last..]);
    Cow::Owned(out)
}

/// Byte offset of the last grapheme cluster boundary at or before `at` (a char boundary).
/// UAX #29 decides a boundary from the text before it and the one character after, so the
/// cursor looks back only as far as the cluster (or run of regional indicators) reaches.
pub fn grapheme_floor(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    let mut cursor = GraphemeCursor::new(at, s.len(), true);
    if let Ok(true) = cursor.is_boundary(s, 0) {
        return at;
    }
    let mut cursor = GraphemeCursor::new(at, s.len(), true);
    cursor.prev_boundary(s, 0).ok().flatten().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_controls_go_and_joiners_in_emoji_stay() {
        let trojan = "ok\u{202E}gnp.exe\u{202C} \u{2066}x\u{2069}\u{200B}\u{FEFF}\u{061C}";
        assert_eq!(neutralise(trojan), "okgnp.exe x");
        assert_eq!(neutralise("a\u{2028}b\u{2029}c"), "a\nb\nc");
        let family = "👨\u{200D}👩\u{200D}👧";
        assert_eq!(neutralise(family), family);
        // A joiner between letters, or dangling at the end, joins nothing people see.
        assert_eq!(neutralise("a\u{200D}b"), "ab");
        assert_eq!(neutralise("👨\u{200D}"), "👨");
        assert_eq!(neutralise("👨\u{200D}\u{200B}👩"), "👨👩");
        assert_eq!(neutralise("👨\u{200D}\u{0301}"), "👨\u{0301}");
        assert!(matches!(neutralise("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn rtl_values_are_isolated() {
        assert_eq!(isolate_rtl("eu-west-1"), "eu-west-1");
        assert_eq!(isolate_rtl("שלום 1"), "\u{2068}שלום 1\u{2069}");
        assert_eq!(isolate_rtl("مرحبا"), "\u{2068}مرحبا\u{2069}");
    }

    #[test]
    fn markup_and_mentions_are_inert() {
        assert_eq!(
            slack_markup_neutralise("*b* _i_ ~s~ `c`"),
            "∗b∗ ＿i＿ ∼s∼ ˋcˋ"
        );
        assert_eq!(
            slack_mentions_neutralise("@channel hi @Here, @everyone!"),
            "＠channel hi ＠Here, ＠everyone!"
        );
        assert_eq!(
            slack_mentions_neutralise("ops@here.example @channels @hereby"),
            "ops@here.example @channels @hereby"
        );
        assert_eq!(
            slack_mentions_neutralise("http://x/@here"),
            "http://x/@here"
        );
        assert_eq!(slack_mentions_neutralise("(@here)"), "(＠here)");
    }

    #[test]
    fn grapheme_floor_never_splits_a_cluster() {
        let s = "a👨\u{200D}👩\u{200D}👧b";
        for at in (0..=s.len()).filter(|i| s.is_char_boundary(*i)) {
            let f = grapheme_floor(s, at);
            assert!(
                f == 0 || f == 1 || f == s.len() - 1 || f == s.len(),
                "{at} → {f}"
            );
        }
        let flags = "🇯🇵🇫🇷";
        assert_eq!(grapheme_floor(flags, 12), 8);
        assert_eq!(grapheme_floor("e\u{301}x", 1), 0);
    }
}
