//! The gate both transports call: open without a secret, and with one, where it
//! finds the token, what it refuses, and that it counts each refusal.

use prometheus_client::metrics::counter::Counter;

use super::*;

fn checking() -> (Gate, Counter) {
    let rejected = Counter::default();
    (Gate::new(Some(&secret()), rejected.clone()), rejected)
}

fn set(segment: &str) -> ChannelSet {
    ChannelSet::parse(segment, 16).expect("a channel list")
}

#[test]
fn without_a_secret_everyone_is_admitted_without_a_grant() {
    let rejected = Counter::default();
    let gate = Gate::new(None, rejected.clone());
    assert_eq!(gate.admit(&set("orders"), None, [], at(EXP)), Ok(None));
    assert_eq!(rejected.get(), 0);
}

#[test]
fn a_covering_token_from_the_query_or_the_cookie_is_admitted() {
    let (gate, rejected) = checking();
    let token = sign(json!({ "sub": "alice", "channels": ["user.42.*"], "exp": EXP }));
    let query = format!("since=x-1&token={token}");
    let grant = gate
        .admit(&set("user.42.a,all"), Some(&query), [], at(EXP))
        .expect("admitted")
        .expect("a grant");
    assert_eq!(grant.sub.as_deref(), Some("alice"));
    let cookie = format!("a=1; wspush_token={token}");
    let from_cookie = gate.admit(&set("user.42.b"), None, [cookie.as_bytes()], at(EXP));
    assert!(matches!(from_cookie, Ok(Some(_))), "{from_cookie:?}");
    assert_eq!(rejected.get(), 0);
}

#[test]
fn refusals_are_401_or_403_and_counted() {
    let (gate, rejected) = checking();
    let token = sign(json!({ "channels": ["user.42.*"], "exp": EXP }));
    let query = format!("token={token}");
    let refused = |channels: &str, query: Option<&str>, now| {
        gate.admit(&set(channels), query, [], now).expect_err("refused")
    };
    assert_eq!(refused("user.42.a", None, at(EXP)), TokenError::Missing);
    assert_eq!(refused("user.42.a", Some("token=nope"), at(EXP)).status(), 401);
    let expired = refused("user.42.a", Some(&query), at(EXP + 6));
    assert_eq!(expired, TokenError::Expired { exp: EXP });
    let uncovered = refused("user.42.a,user.43.x", Some(&query), at(EXP));
    assert_eq!(uncovered, TokenError::NotCovered(channel("user.43.x")));
    assert_eq!(uncovered.status(), 403);
    assert_eq!(
        refused("all", Some(&query), at(EXP)),
        TokenError::NotCovered(channel("all")),
        "/echo and /ws/all need all"
    );
    assert_eq!(rejected.get(), 5);
}
