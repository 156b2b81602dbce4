//! The `wspush` command: parse flags, serve until SIGINT/SIGTERM, shut down cleanly.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;
use signal_hook::iterator::Signals;
use wspush::{Config, Server};

fn main() -> ExitCode {
    let tunables = wspush::memory::run_with_glibc_tunables();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Err(e) = tunables {
        log::warn!(
            "running without the glibc settings ({}): {e}",
            wspush::memory::GLIBC_TUNABLES
        );
    }
    let config = Config::parse();
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    // A second signal, once shutdown has begun, exits at once.
    let shutting_down = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        flag::register_conditional_shutdown(sig, 1, Arc::clone(&shutting_down))?;
        flag::register(sig, Arc::clone(&shutting_down))?;
    }
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let server = Server::start(config)?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{}", server.listening_line())?;
    if let Some(line) = server.node_line() {
        writeln!(stdout, "{line}")?;
    }
    stdout.flush()?;
    if let Some(sig) = signals.forever().next() {
        log::info!("signal {sig} received: shutting down (send another to exit at once)");
    }
    server.shutdown();
    Ok(())
}
