//! `POST /tokens`: the request checked, the ttl capped, and the token it makes accepted.

use super::*;

fn minter(max_ttl: u64) -> Minter {
    Minter::new(&secret(), max_ttl)
}

fn request(body: &str) -> MintRequest {
    MintRequest::from_json(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"))
}

#[test]
fn a_minted_token_is_accepted_for_its_ttl_and_leeway() {
    let now = at(EXP - 600);
    let minted = minter(DEFAULT_MAX_TOKEN_TTL)
        .mint(
            &request(r#"{"channels":["user.42.*"],"sub":"alice","ttl":600}"#),
            now,
        )
        .expect("minted");
    assert_eq!(minted.expires_at, at(EXP));
    let grant = verifier().verify(&minted.token, now).expect("accepted");
    assert_eq!(grant.sub.as_deref(), Some("alice"));
    assert!(grant.covers(&channel("user.42.x")) && !grant.covers(&channel("user.43.x")));
    assert!(verifier().verify(&minted.token, at(EXP + 5)).is_ok());
    assert_eq!(
        verifier().verify(&minted.token, at(EXP + 6)),
        Err(TokenError::Expired { exp: EXP })
    );
    assert_eq!(
        minted.to_json(),
        json!({ "token": minted.token, "expires": "2026-12-02T12:00:00Z" })
    );
}

#[test]
fn the_ttl_defaults_to_the_cap_and_is_refused_over_it() {
    let m = minter(3600);
    let now = at(EXP);
    let default = m.mint(&request(r#"{"channels":["a"]}"#), now).unwrap();
    assert_eq!(default.expires_at, at(EXP + 3600));
    assert!(m.mint(&request(r#"{"channels":["a"],"ttl":3600}"#), now).is_ok());
    let over = m
        .mint(&request(r#"{"channels":["a"],"ttl":3601}"#), now)
        .unwrap_err();
    assert_eq!(over, MintError::TtlOverMax { ttl: 3601, max: 3600 });
    assert_eq!(over.status(), 400);
    assert!(over.to_string().contains("--max-token-ttl"), "{over}");
    assert_eq!(
        m.mint(&request(r#"{"channels":["a"],"ttl":0}"#), now),
        Err(MintError::ZeroTtl)
    );
}

#[test]
fn bad_requests_are_refused_with_a_reason() {
    let m = minter(3600);
    let now = at(EXP);
    for (body, expect) in [
        (r#"{"channels":[]}"#, "at least one"),
        (r#"{"channels":["a b"]}"#, "invalid channel name"),
        (r#"{"channels":["user.*.x"]}"#, "pattern"),
        (r#"{"channels":["a"],"sub":""}"#, "sub is empty"),
        (r#"{"channels":["a"],"sub":"a\u0007b"}"#, "control"),
    ] {
        let error = m.mint(&request(body), now).unwrap_err();
        assert_eq!(error.status(), 400);
        assert!(error.to_string().contains(expect), "{body}: {error}");
    }
    let too_many = json!({ "channels": vec!["a"; MAX_PATTERNS + 1] }).to_string();
    assert_eq!(
        m.mint(&request(&too_many), now),
        Err(MintError::Pattern(PatternError::TooMany))
    );
}

#[test]
fn a_body_that_is_not_a_token_request_is_refused() {
    for body in [
        "",
        "not json",
        "[]",
        r#"{"chanels":["a"]}"#,
        r#"{"channels":["a"],"ttl":-5}"#,
        r#"{"channels":["a"],"ttl":1.5}"#,
        r#"{"channels":"a"}"#,
    ] {
        match MintRequest::from_json(body.as_bytes()) {
            Err(error @ MintError::BadJson(_)) => {
                assert_eq!(error.status(), 400);
                assert!(error.to_string().contains(r#"{"channels":["#), "{error}");
            }
            other => panic!("{body}: {other:?}"),
        }
    }
}
