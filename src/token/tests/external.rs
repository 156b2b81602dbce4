//! Literal tokens from other JWT libraries, so that wspush reads what they write.
//!
//! Made with PyJWT 2.15.1 (`jwt.encode(claims, SECRET, algorithm=...)`) and Node's
//! jsonwebtoken 9.0.3 (the README's snippet), secret `SECRET`, `exp` = `EXP`
//! (2026-12-02T12:00:00Z) unless said otherwise. RS256_WITH_SECRET was put
//! together in Python: header `{"alg":"RS256","typ":"JWT"}`, signed with
//! HMAC-SHA256 and the secret, the key-confusion attack.

use super::*;

/// `{"sub":"alice","channels":["user.42.*","news"],"exp":EXP}`
const ALICE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImNoYW5uZWxzIjpbInVzZXIuNDIuKiIsIm5ld3MiXSwiZXhwIjoxNzk2MjEyODAwfQ.EfVyYHUEIXwtMsavogw2lTKp6hZb9zDl27BfD1uX3Ao";
/// `{"channels":["*"],"exp":EXP,"iat":EXP-600,"iss":"backend"}`
const ANY_NO_SUB: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjaGFubmVscyI6WyIqIl0sImV4cCI6MTc5NjIxMjgwMCwiaWF0IjoxNzk2MjEyMjAwLCJpc3MiOiJiYWNrZW5kIn0.mlH5EeT2-jh15jqweu_YRHvDPMckOJj99TiKcP6rOEc";
/// `{"channels":["news"],"exp":EXP,"nbf":EXP-600}`
const NBF: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjaGFubmVscyI6WyJuZXdzIl0sImV4cCI6MTc5NjIxMjgwMCwibmJmIjoxNzk2MjEyMjAwfQ.o3xffKplTXeX-6pDz5PXGt2-XjN4o3lqCkX2geykors";
/// `{"channels":["news"],"exp":EXP+0.75}`
const FLOAT_EXP: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjaGFubmVscyI6WyJuZXdzIl0sImV4cCI6MTc5NjIxMjgwMC43NX0.vWhGXSmgcd3LTcOAMKfXk2o25Fx6k0pax9GFuPCvMs4";
/// `{"channels":["news"],"exp":"2796212800"}`: a string, the type confusion of CVE-2026-25537.
const STRING_EXP: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjaGFubmVscyI6WyJuZXdzIl0sImV4cCI6IjI3OTYyMTI4MDAifQ.8jj0LxvzXxcEWU-YipA0OQHEOsMq88r2EF8ZhgXhKxE";
/// `{"channels":["news"]}`
const NO_EXP: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjaGFubmVscyI6WyJuZXdzIl19.urcuhj9QlQGLNYNyKxGvg0kuCSIYLsIJjE5K_AdZea4";
/// `{"sub":"alice","exp":EXP}`
const NO_CHANNELS: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTc5NjIxMjgwMH0.TH7cbQCssFAekzWkLGzFnQsW-yK521TvPxr6ALJLFFc";
/// `{"channels":["news"],"exp":EXP}` signed with "another-secret-of-thirty-two-bytes!".
const OTHER_SECRET: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjaGFubmVscyI6WyJuZXdzIl0sImV4cCI6MTc5NjIxMjgwMH0.pA_mDAaowmSVzROyEMap0zHWc0tB0eWUA2fy0X9jLuM";
/// `{"channels":["news"],"exp":EXP}`, HS512.
const HS512: &str = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJjaGFubmVscyI6WyJuZXdzIl0sImV4cCI6MTc5NjIxMjgwMH0.OQHdQTy7GLj1ndK1BIDNH58p9p_CkvjLGKkUcpKEdIUD9gTw-6j_ThDYwPaDjneebLX1pw97PsZZ5z0g9kSDLQ";
/// `{"channels":["*"],"exp":EXP}`, `alg: none` (PyJWT, key None).
const NONE: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJjaGFubmVscyI6WyIqIl0sImV4cCI6MTc5NjIxMjgwMH0.";
/// `{"channels":["*"],"exp":EXP}`, header RS256, HMAC-SHA256 signature with the secret.
const RS256_WITH_SECRET: &str = "eyJhbGciOiAiUlMyNTYiLCAidHlwIjogIkpXVCJ9.eyJjaGFubmVscyI6IFsiKiJdLCAiZXhwIjogMTc5NjIxMjgwMH0.QUeV1MIJGG9H0BrmSh5QUIOuPxWmQSMER3S4EemmNYU";

/// The README's Python snippet (PyJWT), run on 2026-12-02: `{"sub":"alice","channels":["user.42.*"],"exp":…}`.
const README_PYTHON: (&str, u64) = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImNoYW5uZWxzIjpbInVzZXIuNDIuKiJdLCJleHAiOjE3OTYxODI5OTN9.UMHbNz8Nmq1WaH2Ca-YIeXsAeONH3xVVGcghFFlj3ac", 1_796_182_993);
/// The README's Node snippet (jsonwebtoken 9.0.3), run on 2026-12-02: the same claims and an `iat`.
const README_NODE: (&str, u64) = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImNoYW5uZWxzIjpbInVzZXIuNDIuKiJdLCJpYXQiOjE3OTYxODIzOTMsImV4cCI6MTc5NjE4Mjk5M30.cyz0IzhJxL75Yyx5S08UVbPnQWb8-cIf8zM8FGQzRx0", 1_796_182_993);

#[test]
fn pyjwt_tokens_are_read_with_their_claims() {
    let grant = verifier().verify(ALICE, at(EXP)).expect("ALICE is valid");
    assert_eq!(grant.sub.as_deref(), Some("alice"));
    assert_eq!(grant.channels.to_strings(), ["user.42.*", "news"]);
    assert_eq!(grant.expires_at, at(EXP));
    assert!(grant.covers(&channel("user.42.orders")));
    assert!(!grant.covers(&channel("user.43.orders")));

    let any = verifier()
        .verify(ANY_NO_SUB, at(EXP))
        .expect("ANY_NO_SUB is valid");
    assert_eq!(any.sub, None);
    assert!(any.covers(&channel("anything")) && any.covers(&ChannelName::all()));
}

#[test]
fn the_readme_snippets_make_tokens_wspush_accepts() {
    for (name, (token, exp)) in [("python", README_PYTHON), ("node", README_NODE)] {
        let grant = verifier()
            .verify(token, at(exp - 600))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(grant.sub.as_deref(), Some("alice"), "{name}");
        assert!(grant.covers(&channel("user.42.x")), "{name}");
        assert_eq!(
            verifier().verify(token, at(exp + 6)),
            Err(TokenError::Expired { exp }),
            "{name}"
        );
    }
}

#[test]
fn nbf_and_a_fractional_exp_from_pyjwt_are_honoured() {
    let v = verifier();
    assert!(v.verify(NBF, at(EXP - 605)).is_ok(), "nbf - leeway");
    assert_eq!(
        v.verify(NBF, at(EXP - 606)),
        Err(TokenError::NotYetValid { nbf: EXP - 600 })
    );
    // EXP + 0.75 is rounded down: accepted until EXP + leeway, not a moment longer.
    assert!(v.verify(FLOAT_EXP, at(EXP + 5)).is_ok());
    assert_eq!(
        v.verify(FLOAT_EXP, at(EXP + 6)),
        Err(TokenError::Expired { exp: EXP })
    );
}

#[test]
fn pyjwt_tokens_wspush_must_refuse_are_refused_for_the_right_reason() {
    let v = verifier();
    let now = at(EXP - 60);
    assert_eq!(v.verify(OTHER_SECRET, now), Err(TokenError::BadSignature));
    assert_eq!(
        v.verify(HS512, now),
        Err(TokenError::WrongAlgorithm("\"HS512\"".into()))
    );
    assert_eq!(
        v.verify(NONE, now),
        Err(TokenError::WrongAlgorithm("\"none\"".into()))
    );
    assert_eq!(
        v.verify(RS256_WITH_SECRET, now),
        Err(TokenError::WrongAlgorithm("\"RS256\"".into()))
    );
    for (name, token, expect) in [
        ("STRING_EXP", STRING_EXP, "exp"),
        ("NO_EXP", NO_EXP, "exp"),
        ("NO_CHANNELS", NO_CHANNELS, "channels"),
    ] {
        match v.verify(token, now) {
            Err(TokenError::Malformed(reason)) => assert!(reason.contains(expect), "{name}: {reason}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}
