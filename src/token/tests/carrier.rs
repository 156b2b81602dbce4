//! Finding the token in a query or a cookie, and keeping it out of logs.

use super::*;

fn found(query: Option<&str>, cookies: &[&str]) -> Option<String> {
    find_token(query, cookies.iter().map(|c| c.as_bytes()))
}

#[test]
fn the_query_comes_first_then_the_cookie() {
    assert_eq!(
        found(Some("token=q.q.q"), &["wspush_token=c.c.c"]).as_deref(),
        Some("q.q.q")
    );
    assert_eq!(
        found(Some("since=1-2"), &["wspush_token=c.c.c"]).as_deref(),
        Some("c.c.c")
    );
    assert_eq!(found(None, &["wspush_token=c.c.c"]).as_deref(), Some("c.c.c"));
    assert_eq!(
        found(Some("since=1-2&token=q.q.q&last=5"), &[]).as_deref(),
        Some("q.q.q")
    );
    assert_eq!(
        found(Some("token=&x=1"), &["wspush_token=c.c.c"]).as_deref(),
        Some("c.c.c"),
        "empty is none"
    );
    assert_eq!(found(Some("tokens=a&xtoken=b"), &["other=1"]), None);
    assert_eq!(found(None, &[]), None);
}

#[test]
fn values_are_url_decoded() {
    assert_eq!(found(Some("token=a%2Eb%2Ec"), &[]).as_deref(), Some("a.b.c"));
    assert_eq!(
        found(Some("token=a+b"), &[]).as_deref(),
        Some("a b"),
        "form decoding"
    );
    assert_eq!(found(None, &["wspush_token=a%2Eb%2Ec"]).as_deref(), Some("a.b.c"));
    assert_eq!(
        found(None, &["wspush_token=\"a.b.c\""]).as_deref(),
        Some("a.b.c"),
        "quoted"
    );
    assert_eq!(
        found(None, &["wspush_token=a+b"]).as_deref(),
        Some("a+b"),
        "cookies keep +"
    );
}

#[test]
fn the_cookie_is_found_among_several_and_across_headers() {
    let header = "theme=dark; wspush_token=c.c.c; session=xyz";
    assert_eq!(found(None, &[header]).as_deref(), Some("c.c.c"));
    assert_eq!(
        found(None, &["a=1;wspush_token=c.c.c"]).as_deref(),
        Some("c.c.c"),
        "no space"
    );
    assert_eq!(
        found(None, &["a=1", "b=2; wspush_token=c.c.c"]).as_deref(),
        Some("c.c.c")
    );
    assert_eq!(
        found(None, &["wspush_token=; wspush_token=second"]).as_deref(),
        Some("second")
    );
    assert_eq!(
        found(None, &["xwspush_token=no; wspush_tokenx=no; novalue"]),
        None
    );
    assert_eq!(
        found(None, &["wspush_token=first", "wspush_token=second"]).as_deref(),
        Some("first")
    );
}

#[test]
fn a_token_found_in_a_cookie_verifies() {
    let token = sign(json!({ "channels": ["a"], "exp": EXP }));
    let header = format!("x=1; wspush_token={token}");
    let found = find_token(None, [header.as_bytes()]).expect("found");
    assert!(verifier().verify(&found, at(EXP)).is_ok());
}

#[test]
fn the_query_string_is_stripped_from_what_is_shown() {
    assert_eq!(
        strip_query("/ws/news?token=secret.jwt.here&since=1-2"),
        "/ws/news"
    );
    assert_eq!(strip_query("/echo?token=x"), "/echo");
    assert_eq!(strip_query("/echo"), "/echo");
    assert_eq!(strip_query("/events/a?"), "/events/a");
    assert_eq!(strip_query("?token=x"), "");
}
