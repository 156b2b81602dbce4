//! What checking a token costs (issue 13: under 20 µs per connection). A
//! measurement, not a pass/fail bound on time:
//! `cargo test --release --lib token::tests::timing -- --ignored --nocapture`.

use std::time::Instant;

use super::*;

const ROUNDS: usize = 5;
const PER_ROUND: u32 = 20_000;

/// Median ns per call of `work` over `ROUNDS` rounds.
fn median_ns(mut work: impl FnMut()) -> u128 {
    let mut rounds: Vec<u128> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..PER_ROUND {
                work();
            }
            start.elapsed().as_nanos() / u128::from(PER_ROUND)
        })
        .collect();
    rounds.sort_unstable();
    rounds[ROUNDS / 2]
}

#[test]
#[ignore = "a measurement; run in release with --ignored --nocapture"]
fn verification_cost_per_connection() {
    let v = verifier();
    let typical = sign(json!({ "sub": "alice", "channels": ["user.42.*", "news"], "exp": EXP }));
    let typical_set = ChannelSet::parse("user.42.a,user.42.b,news", 16).unwrap();
    // The most a token may list, against the most channels a connection may name.
    let patterns: Vec<String> = (0..MAX_PATTERNS)
        .map(|i| format!("tenant-{i:03}.{}.*", "x".repeat(24)))
        .collect();
    let largest = sign(json!({ "sub": "x".repeat(MAX_SUB_LEN), "channels": patterns, "exp": EXP }));
    let names: Vec<String> = (0..16)
        .map(|i| format!("tenant-063.{}.{i}", "x".repeat(24)))
        .collect();
    let largest_set = ChannelSet::parse(&names.join(","), 16).unwrap();
    let other = Verifier::new(&parse_secret("another secret").unwrap(), DEFAULT_LEEWAY);
    let forged = sign_with_header(json!({ "alg": "none" }), json!({ "channels": ["*"], "exp": EXP }));

    for (name, token, set) in [
        ("typical", &typical, &typical_set),
        ("largest", &largest, &largest_set),
    ] {
        let ns = median_ns(|| {
            let grant = v.verify(std::hint::black_box(token), at(EXP)).expect("valid");
            assert_eq!(grant.covers_all(set), Ok(()));
        });
        println!(
            "{name} token ({} bytes), verify + covers_all of {} channels: {ns} ns",
            token.len(),
            set.len()
        );
    }
    let bad_signature = median_ns(|| assert!(other.verify(std::hint::black_box(&typical), at(EXP)).is_err()));
    let wrong_alg = median_ns(|| assert!(v.verify(std::hint::black_box(&forged), at(EXP)).is_err()));
    println!("refused: bad signature {bad_signature} ns, alg none {wrong_alg} ns");
}
