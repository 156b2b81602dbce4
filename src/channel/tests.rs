//! Channel names and subscribe paths: what is accepted, and the 400 reason for what is not.

use super::*;

fn names(set: &ChannelSet) -> Vec<&str> {
    set.iter().map(ChannelName::as_str).collect()
}

#[test]
fn every_allowed_character_makes_a_name() {
    let name = "Az09_.:@-";
    assert_eq!(ChannelName::new(name).unwrap().as_str(), name);
    assert_eq!(
        ChannelName::new(&"x".repeat(MAX_NAME_LEN))
            .unwrap()
            .as_ref()
            .len(),
        128
    );
}

#[test]
fn a_bad_name_says_which_and_why() {
    let err = ChannelName::new("a b").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid channel name "a b": it contains ' '; allowed are letters, digits and _ . : @ -"#
    );
    let err = ChannelName::new(&"x".repeat(129)).unwrap_err();
    assert!(
        err.to_string().contains("129 bytes long, the limit is 128"),
        "{err}"
    );
    // The quote is cut so that a huge name does not make a huge 400 body or log line.
    assert!(err.to_string().len() < 120, "{err}");
    for bad in ["é", "a/b", "a?b", "a%b", "\u{0}", "a\"b"] {
        assert!(
            matches!(
                ChannelName::new(bad),
                Err(ChannelError::Invalid {
                    reason: InvalidName::BadChar { .. },
                    ..
                })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn all_is_shared_and_recognised() {
    let a = ChannelName::all();
    assert!(a.is_all());
    assert_eq!(a.to_string(), "all");
    assert!(Arc::ptr_eq(&a.0, &ChannelName::new("all").unwrap().0));
    assert!(!ChannelName::new("All").unwrap().is_all());
}

#[test]
fn a_set_has_all_first_and_no_duplicates() {
    let set = ChannelSet::parse("orders,news,orders,all,news", 16).unwrap();
    assert_eq!(names(&set), ["all", "orders", "news"]);
    assert_eq!(names(&ChannelSet::parse("all", 16).unwrap()), ["all"]);
    assert!(set.contains("news") && !set.contains("x"));
    assert_eq!(set.len(), 3);
    assert!(!set.is_empty());
}

#[test]
fn a_set_is_percent_decoded_before_it_is_split() {
    let set = ChannelSet::parse("user%40example.com%2Corders%3Anew", 16).unwrap();
    assert_eq!(names(&set), ["all", "user@example.com", "orders:new"]);
    let err = ChannelSet::parse("a%FF", 16).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid channel name "a%FF": its percent-encoding is not UTF-8"#
    );
    let err = ChannelSet::parse("a%20b", 16).unwrap_err();
    assert!(err.to_string().contains(r#""a b""#), "{err}");
}

#[test]
fn an_empty_name_anywhere_is_refused() {
    for segment in ["", ",", "a,,b", "a,"] {
        let err = ChannelSet::parse(segment, 16).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid channel name "": it is empty"#,
            "{segment:?}"
        );
    }
}

#[test]
fn the_limit_counts_distinct_named_channels_but_not_all() {
    let at_limit: Vec<String> = (0..3).map(|i| format!("c{i}")).collect();
    let set = ChannelSet::parse(&format!("all,{},c0,c1", at_limit.join(",")), 3).unwrap();
    assert_eq!(set.len(), 4);
    let err = ChannelSet::parse("c0,c1,c2,c3", 3).unwrap_err();
    assert_eq!(err, ChannelError::TooMany { limit: 3 });
    assert_eq!(
        err.to_string(),
        "too many channels: at most 3 per connection (--max-channels-per-client), not counting `all`"
    );
    assert_eq!(names(&ChannelSet::parse("all", 0).unwrap()), ["all"]);
    assert!(ChannelSet::parse("a", 0).is_err());
}

#[test]
fn a_name_is_found_in_a_map_by_str() {
    let mut map = std::collections::HashMap::new();
    map.insert(ChannelName::new("orders").unwrap(), 1);
    assert_eq!(map.get("orders"), Some(&1));
}
