//! The secret and TTL flags as clap reads them (refusals exit 2, like a bad `--publish-token`).

use clap::error::ErrorKind;
use clap::Parser;

use super::*;
use crate::config::Config;

fn parse(args: &[&str]) -> Result<Config, clap::Error> {
    Config::try_parse_from(std::iter::once("wspush").chain(args.iter().copied()))
}

#[test]
fn no_secret_flag_means_no_checking_and_the_ttl_cap_defaults_to_an_hour() {
    let config = parse(&[]).unwrap();
    assert!(config.subscribe_secret.is_none() && config.subscribe_secret_file.is_none());
    assert_eq!(config.max_token_ttl, 3600);
    assert_eq!(parse(&["--max-token-ttl", "60"]).unwrap().max_token_ttl, 60);
}

#[test]
fn bad_values_are_refused_with_exit_code_2() {
    let missing = std::env::temp_dir().join("wspush-no-such-secret-file");
    let missing = missing.to_str().unwrap();
    for args in [
        &["--subscribe-secret", ""][..],
        &["--subscribe-secret-file", missing],
        &["--max-token-ttl", "0"],
        &["--max-token-ttl", "31536001"],
    ] {
        let error = parse(args).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ValueValidation, "{args:?}");
        assert_eq!(error.exit_code(), 2, "{args:?}");
    }
}

#[test]
fn the_secret_comes_from_the_flag_or_the_file_not_both() {
    let config = parse(&["--subscribe-secret", SECRET]).unwrap();
    assert_eq!(config.subscribe_secret.unwrap().as_bytes(), SECRET.as_bytes());
    let dir = std::env::temp_dir().join(format!("wspush-flags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let file = file.to_str().unwrap();
    let config = parse(&["--subscribe-secret-file", file]).unwrap();
    assert_eq!(
        config.subscribe_secret_file.unwrap().as_bytes(),
        SECRET.as_bytes()
    );
    let both = parse(&["--subscribe-secret", "x", "--subscribe-secret-file", file]).unwrap_err();
    assert_eq!(both.kind(), ErrorKind::ArgumentConflict);
    assert_eq!(both.exit_code(), 2);
}

#[test]
fn the_secret_flags_hide_their_env_values() {
    let command = <Config as clap::CommandFactory>::command();
    for id in ["subscribe_secret", "publish_token"] {
        let arg = command.get_arguments().find(|arg| arg.get_id() == id).expect(id);
        assert!(arg.is_hide_env_values_set(), "{id}");
    }
}
