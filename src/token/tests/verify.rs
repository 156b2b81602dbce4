//! The verifier on tokens made here: what it accepts, and why it refuses the rest.

use super::*;

fn claims() -> Value {
    json!({ "sub": "bob", "channels": ["user.42.*"], "exp": EXP })
}

fn malformed_reason(result: Result<Grant, TokenError>) -> String {
    match result {
        Err(TokenError::Malformed(reason)) => reason,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn a_token_signed_here_is_read_back() {
    let grant = verifier().verify(&sign(claims()), at(EXP - 1)).expect("valid");
    assert_eq!(grant.sub.as_deref(), Some("bob"));
    assert_eq!(grant.channels.to_strings(), ["user.42.*"]);
    assert_eq!(grant.expires_at, at(EXP));
}

#[test]
fn the_leeway_is_tolerated_and_not_a_second_more() {
    let token = sign(claims());
    let v = verifier();
    assert!(v.verify(&token, at(EXP)).is_ok(), "at exp");
    assert!(v.verify(&token, at(EXP + 5)).is_ok(), "exp + leeway");
    let just_past = at(EXP + 5) + Duration::from_millis(1);
    assert_eq!(v.verify(&token, just_past), Err(TokenError::Expired { exp: EXP }));
    assert_eq!(
        v.verify(&token, at(EXP + 6)),
        Err(TokenError::Expired { exp: EXP })
    );
    let strict = Verifier::new(&secret(), Duration::ZERO);
    assert_eq!(
        strict.verify(&token, at(EXP + 1)),
        Err(TokenError::Expired { exp: EXP })
    );
    assert_eq!(v.leeway(), Duration::from_secs(5));
}

#[test]
fn nbf_is_tolerated_by_the_leeway_only() {
    let token = sign(json!({ "channels": ["a"], "exp": EXP, "nbf": EXP - 100 }));
    let v = verifier();
    assert!(v.verify(&token, at(EXP - 105)).is_ok());
    assert_eq!(
        v.verify(&token, at(EXP - 106)),
        Err(TokenError::NotYetValid { nbf: EXP - 100 })
    );
}

#[test]
fn alg_none_and_rs256_with_the_secret_are_refused_by_name() {
    let v = verifier();
    for alg in ["none", "RS256", "HS384", "HS512", "ES256", "hs256"] {
        let token = sign_with_header(json!({ "alg": alg, "typ": "JWT" }), claims());
        assert_eq!(
            v.verify(&token, at(EXP)),
            Err(TokenError::WrongAlgorithm(format!("{alg:?}")))
        );
    }
    // `none` as attackers send it: no signature at all.
    let unsigned = format!("{}.{}.", b64(&json!({ "alg": "none" })), b64(&claims()));
    assert_eq!(
        v.verify(&unsigned, at(EXP)),
        Err(TokenError::WrongAlgorithm("\"none\"".into()))
    );
    let no_alg = sign_with_header(json!({ "typ": "JWT" }), claims());
    assert!(malformed_reason(v.verify(&no_alg, at(EXP))).contains("alg"));
}

#[test]
fn a_tampered_payload_or_signature_is_a_bad_signature() {
    let token = sign(claims());
    let parts: Vec<&str> = token.split('.').collect();
    let wider = b64(&json!({ "sub": "bob", "channels": ["*"], "exp": EXP }));
    let tampered = format!("{}.{wider}.{}", parts[0], parts[2]);
    assert_eq!(
        verifier().verify(&tampered, at(EXP)),
        Err(TokenError::BadSignature)
    );
    let mut signature = parts[2].to_owned();
    let last = if signature.ends_with('A') { "B" } else { "A" };
    signature.replace_range(signature.len() - 1.., last);
    let resigned = format!("{}.{}.{signature}", parts[0], parts[1]);
    assert_eq!(
        verifier().verify(&resigned, at(EXP)),
        Err(TokenError::BadSignature)
    );
    let other = Verifier::new(&parse_secret("another secret").unwrap(), DEFAULT_LEEWAY);
    assert_eq!(other.verify(&token, at(EXP)), Err(TokenError::BadSignature));
}

#[test]
fn what_is_not_a_jwt_is_malformed_and_nothing_is_missing() {
    let v = verifier();
    assert_eq!(v.verify("", at(EXP)), Err(TokenError::Missing));
    for garbage in [
        "x",
        "a.b",
        "a.b.c.d",
        "!!!.e30.sig",
        "e30.e30.sig",
        "bnVsbA.e30.sig",
    ] {
        malformed_reason(v.verify(garbage, at(EXP)));
    }
    // Signed, so that the signature check passes and the claims are read.
    let header = b64(&json!({ "alg": "HS256" }));
    for payload in ["%%%", "bm90IGpzb24", "W10"] {
        malformed_reason(v.verify(&sign_raw(&format!("{header}.{payload}")), at(EXP)));
    }
    // Unsigned garbage is a bad signature: claims are read only once it matches.
    assert_eq!(
        v.verify(&format!("{header}.%%%.sig"), at(EXP)),
        Err(TokenError::BadSignature)
    );
    let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
    assert!(malformed_reason(v.verify(&huge, at(EXP))).contains("bytes long"));
}

#[test]
fn claims_of_the_wrong_shape_are_malformed() {
    let v = verifier();
    let cases = [
        (json!({ "channels": ["a"], "exp": "1796212800" }), "exp"),
        (json!({ "channels": ["a"], "exp": -1 }), "exp"),
        (json!({ "channels": ["a"] }), "exp"),
        (json!({ "exp": EXP }), "channels"),
        (json!({ "channels": "a", "exp": EXP }), "invalid type"),
        (json!({ "channels": ["a b"], "exp": EXP }), "channel"),
        (json!({ "channels": ["a*b"], "exp": EXP }), "pattern"),
        (
            json!({ "channels": ["a"], "exp": EXP, "sub": 42 }),
            "invalid type",
        ),
        (json!({ "channels": ["a"], "exp": EXP, "sub": "" }), "sub"),
        (
            json!({ "channels": ["a"], "exp": EXP, "sub": "eve\nforged log line" }),
            "control",
        ),
        (
            json!({ "channels": ["a"], "exp": EXP, "sub": "x".repeat(129) }),
            "sub",
        ),
        (
            json!({ "channels": vec!["a"; MAX_PATTERNS + 1], "exp": EXP }),
            "too many",
        ),
        (json!({ "channels": ["a"], "exp": EXP, "nbf": "soon" }), "soon"),
    ];
    for (claims, expect) in cases {
        let reason = malformed_reason(v.verify(&sign(claims.clone()), at(EXP)));
        assert!(reason.contains(expect), "{claims}: {reason}");
        assert!(reason.chars().count() <= 201, "{reason}");
    }
}

#[test]
fn a_far_future_exp_is_kept_within_what_a_clock_holds() {
    let token = sign(json!({ "channels": ["a"], "exp": u64::MAX }));
    let grant = verifier().verify(&token, at(EXP)).expect("valid until year 9999");
    assert!(grant.expires_at > at(EXP) && grant.expires_at < at(u64::from(u32::MAX) * 100));
}

#[test]
fn refusals_are_401_and_uncovered_channels_403() {
    let errors = [
        TokenError::Missing,
        TokenError::Malformed("x".into()),
        TokenError::BadSignature,
        TokenError::WrongAlgorithm("\"none\"".into()),
        TokenError::Expired { exp: EXP },
        TokenError::NotYetValid { nbf: EXP },
    ];
    for error in errors {
        assert_eq!(error.status(), 401, "{error}");
    }
    assert_eq!(TokenError::NotCovered(channel("a")).status(), 403);
    assert_eq!(
        TokenError::Expired { exp: EXP }.to_string(),
        "the token expired at 2026-12-02T12:00:00Z"
    );
}

#[test]
fn verifier_and_minter_can_be_shared_between_connection_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Verifier>();
    shared::<Minter>();
    shared::<Grant>();
}
