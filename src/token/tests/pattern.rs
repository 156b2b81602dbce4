//! Channel patterns: exactly what a trailing `*` covers, and `covers_all` on a subscription.

use super::*;

fn covers(pattern: &str, name: &str) -> bool {
    Pattern::parse(pattern)
        .expect("a valid pattern")
        .covers(&channel(name))
}

#[test]
fn a_token_for_user_42_star_reads_user_42_and_nothing_else() {
    for name in ["user.42.x", "user.42.orders", "user.42.x.y", "user.42.-"] {
        assert!(covers("user.42.*", name), "{name}");
    }
    for name in [
        "user.43.x",
        "user.420",
        "user.42",
        "user.42.",
        "user.4",
        "all",
        "xuser.42.x",
    ] {
        assert!(!covers("user.42.*", name), "{name}");
    }
    let grant = grant_for(&["user.42.*"]);
    let set = ChannelSet::parse("user.43.x", 16).unwrap();
    assert_eq!(grant.covers_all(&set), Err(channel("user.43.x")));
}

#[test]
fn a_plain_prefix_matches_as_text_and_star_alone_matches_everything() {
    assert!(covers("user.42*", "user.420"), "no separator is implied");
    assert!(covers("user.42*", "user.42.x"));
    for name in ["all", "a", "user.42.x", &"z".repeat(128)] {
        assert!(covers("*", name), "{name}");
    }
    assert!(covers("news", "news"));
    assert!(!covers("news", "news.x") && !covers("news", "new"));
    assert!(covers("all", "all"));
}

#[test]
fn invalid_patterns_are_refused() {
    for text in [
        "",
        "**",
        "a*b",
        "*a",
        "user.*.x",
        "a b*",
        "é*",
        &format!("{}*", "a".repeat(129)),
    ] {
        assert!(
            matches!(Pattern::parse(text), Err(PatternError::Invalid(_))),
            "{text:?}"
        );
    }
    let too_many = vec!["a"; MAX_PATTERNS + 1];
    assert_eq!(Patterns::parse(&too_many), Err(PatternError::TooMany));
    assert_eq!(Patterns::parse(&too_many[1..]).map(|p| p.len()), Ok(MAX_PATTERNS));
    let message = Pattern::parse("a*b").unwrap_err().to_string();
    assert!(
        message.contains("\"a*b\"") && message.contains("ending in `*`"),
        "{message}"
    );
}

#[test]
fn patterns_are_written_back_as_given() {
    let texts = ["news", "user.42.*", "*", "all"];
    let patterns = Patterns::parse(&texts).unwrap();
    assert_eq!(patterns.to_strings(), texts);
    assert_eq!(patterns.iter().count(), 4);
    assert!(!patterns.is_empty() && Patterns::default().is_empty());
}

#[test]
fn covers_all_names_the_first_channel_not_covered() {
    let grant = grant_for(&["user.42.*", "news"]);
    let ok = ChannelSet::parse("news,user.42.a,user.42.b", 16).unwrap();
    assert_eq!(grant.covers_all(&ok), Ok(()));
    let bad = ChannelSet::parse("news,orders,user.43.a", 16).unwrap();
    assert_eq!(grant.covers_all(&bad), Err(channel("orders")));
    let empty = grant_for(&[]);
    assert_eq!(empty.covers_all(&ok), Err(channel("news")));
}

#[test]
fn all_is_checked_when_it_is_all_a_connection_asks_for() {
    let grant = grant_for(&["news"]);
    // `/ws/news` is on `all` too, like every connection: not a reason to refuse.
    assert_eq!(grant.covers_all(&ChannelSet::parse("news", 16).unwrap()), Ok(()));
    assert_eq!(
        grant.covers_all(&ChannelSet::parse("all,news", 16).unwrap()),
        Ok(())
    );
    // `/echo` and `/ws/all` need a token that covers `all`.
    assert_eq!(grant.covers_all(&ChannelSet::all_only()), Err(ChannelName::all()));
    assert_eq!(
        grant.covers_all(&ChannelSet::parse("all", 16).unwrap()),
        Err(ChannelName::all())
    );
    for patterns in [&["all"][..], &["*"][..]] {
        assert_eq!(
            grant_for(patterns).covers_all(&ChannelSet::all_only()),
            Ok(()),
            "{patterns:?}"
        );
    }
    let prefix = grant_for(&["a*", "al*"]);
    assert_eq!(
        prefix.covers_all(&ChannelSet::all_only()),
        Err(ChannelName::all()),
        "a prefix never covers all"
    );
    assert!(prefix.covers(&channel("alley")));
}
