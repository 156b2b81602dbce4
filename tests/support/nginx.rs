//! Debian's real nginx in front of a server, with the configuration the README
//! recommends: its `nginx` block is read from README.md and only the lines that
//! cannot work in a test are replaced (the `listen` line: plain HTTP on a
//! loopback port instead of TLS on 443; the certificate paths; the upstream
//! address). So the test runs what the README tells people to run.
//!
//! Each `Nginx` is one process (`master_process off`, `daemon off`: no workers
//! to leave behind) running as the current user, with its configuration, pid
//! file, logs and temp folders in a fresh folder of its own. nginx cannot
//! listen on port 0, so a free port is picked and another tried when nginx
//! cannot bind it. Dropping the `Nginx` kills the process and reaps it; should
//! the test binary die first, the kernel kills nginx (`PR_SET_PDEATHSIG`).
//!
//! Without nginx installed the tests print one skip line and pass, except
//! with `CI=true`, where they fail (`.ci/run` installs the Debian package).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{in_ci, temp_dir, DEADLINE};

/// Where Debian puts nginx.
const NGINX: &str = "/usr/sbin/nginx";

/// A path nginx answers itself with a token unique to the instance, so the
/// readiness check cannot be fooled by another program on the same port.
const READY_PATH: &str = "/.nginx-ready";

/// What the README's block says, and what the test puts instead.
const README_LISTEN: &str = "listen 443 ssl http2;";
const README_UPSTREAM: &str = "server 127.0.0.1:8080;";
const README_CERT: &str = "ssl_certificate ";
const README_KEY: &str = "ssl_certificate_key ";

/// A running nginx, killed when dropped.
pub struct Nginx {
    child: Child,
    /// Where nginx listens (plain HTTP).
    pub addr: SocketAddr,
    dir: PathBuf,
}

/// A certificate and its key, for a configuration with TLS.
pub struct Tls<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
}

impl Nginx {
    /// nginx with the README's block in front of `upstream` (wspush's
    /// WebSocket port), or `None` after a skip line when nginx is absent
    /// outside CI. `test` names the first test skipped.
    pub fn start(test: &str, upstream: SocketAddr) -> Option<Nginx> {
        Nginx::start_without(test, upstream, &[])
    }

    /// As `start`, with the README block's lines that start with any of
    /// `dropped` left out (each must match a line): a proxy configured wrong
    /// on purpose, e.g. without the `Upgrade` headers.
    pub fn start_without(test: &str, upstream: SocketAddr, dropped: &[&str]) -> Option<Nginx> {
        let bin = nginx_bin(test)?;
        let dir = temp_dir("nginx");
        for _ in 0..5 {
            let port = free_port();
            let token = format!("ready-{}-{port}", std::process::id());
            let block = without(&server_block(port, upstream, None, &token), dropped);
            let conf = main_config(&dir, &block);
            std::fs::write(dir.join("nginx.conf"), conf).expect("write nginx.conf");
            let child = spawn(&bin, &dir);
            let mut nginx = Nginx {
                child,
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                dir: dir.clone(),
            };
            match nginx.wait_ready(&token) {
                Ok(()) => return Some(nginx),
                Err(log) if log.contains("Address already in use") => {
                    eprintln!("nginx could not bind port {port}; another port");
                }
                Err(log) => panic!("nginx did not start:\n{log}"),
            }
        }
        panic!("nginx did not start on any of 5 free ports");
    }

    /// `http://ADDR/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `ws://ADDR/path`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// `http://ADDR`, what a page served by this nginx sends as `Origin`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// nginx's error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// nginx's access log so far (the `combined` format).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }

    /// Waits until nginx answers the readiness path with `token`; on its exit,
    /// gives its error log.
    fn wait_ready(&mut self, token: &str) -> Result<(), String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("nginx exited ({status}):\n{}", self.error_log()));
            }
            if answers(self.addr, token) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("nginx not ready in {DEADLINE:?}:\n{}", self.error_log()));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // One process and no workers: SIGKILL leaves nothing behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("nginx error log ({}):\n{}", self.dir.display(), self.error_log());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs `nginx -t` on the README's block with TLS kept (its `listen 443 ssl
/// http2` on a loopback port, `tls` for the certificate): nginx's own verdict
/// on the configuration as written. `Some(output)` when nginx is installed.
pub fn check_tls_config(test: &str, upstream: SocketAddr, tls: Tls<'_>) -> Option<Result<String, String>> {
    let bin = nginx_bin(test)?;
    let dir = temp_dir("nginx-t");
    let conf = main_config(&dir, &server_block(free_port(), upstream, Some(tls), "unused"));
    std::fs::write(dir.join("nginx.conf"), conf).expect("write nginx.conf");
    let output = command(&bin, &dir, &["-t"]).output().expect("run nginx -t");
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    let _ = std::fs::remove_dir_all(&dir);
    Some(if output.status.success() {
        Ok(text)
    } else {
        Err(text)
    })
}

/// The nginx block of README.md's "Behind a reverse proxy" section.
pub fn readme_block() -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md");
    let section = readme
        .split("\n## Behind a reverse proxy\n")
        .nth(1)
        .expect("README.md has a section \"Behind a reverse proxy\"");
    let block = section
        .split("```nginx\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the section has an ```nginx block");
    block.to_owned()
}

/// The README's block for a test: listening on `port` on loopback (plain HTTP
/// without `tls`), proxying to `upstream`, answering `READY_PATH` with `token`.
fn server_block(port: u16, upstream: SocketAddr, tls: Option<Tls<'_>>, token: &str) -> String {
    let block = readme_block();
    let mut replaced = [0; 4];
    let mut out = String::new();
    for line in block.lines() {
        let indent = &line[..line.len() - line.trim_start().len()];
        let code = line.trim_start();
        let new = if code.starts_with(README_LISTEN) {
            replaced[0] += 1;
            let listen = match tls {
                Some(_) => format!("listen 127.0.0.1:{port} ssl http2;"),
                None => format!("listen 127.0.0.1:{port};"),
            };
            format!("{listen}\n{indent}location = {READY_PATH} {{ return 200 \"{token}\"; }}")
        } else if code.starts_with(README_UPSTREAM) {
            replaced[1] += 1;
            format!("server {upstream};")
        } else if code.starts_with(README_CERT) {
            replaced[2] += 1;
            match &tls {
                Some(tls) => format!("ssl_certificate {};", tls.cert.display()),
                None => continue,
            }
        } else if code.starts_with(README_KEY) {
            replaced[3] += 1;
            match &tls {
                Some(tls) => format!("ssl_certificate_key {};", tls.key.display()),
                None => continue,
            }
        } else {
            code.to_owned()
        };
        out.push_str(indent);
        out.push_str(&new);
        out.push('\n');
    }
    assert_eq!(
        replaced,
        [1; 4],
        "README's nginx block must have one each of `{README_LISTEN}`, `{README_UPSTREAM}`, ssl_certificate and ssl_certificate_key"
    );
    out
}

/// `block` without its lines that start (after the indent) with one of `dropped`.
fn without(block: &str, dropped: &[&str]) -> String {
    for prefix in dropped {
        assert!(
            block.lines().any(|l| l.trim_start().starts_with(prefix)),
            "README's nginx block has no line starting with {prefix:?}"
        );
    }
    block
        .lines()
        .filter(|l| !dropped.iter().any(|p| l.trim_start().starts_with(p)))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The whole configuration: one process, everything nginx writes inside `dir`,
/// and `server_block` in `http {}`.
fn main_config(dir: &Path, server_block: &str) -> String {
    let d = dir.display();
    format!(
        "daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{server_block}}}
"
    )
}

/// `nginx` with its prefix, configuration and startup log in `dir`.
fn command(bin: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(bin);
    command
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(args)
        .stdin(Stdio::null());
    command
}

/// Starts nginx in the foreground; it dies with the thread that started it
/// (the test's, which drops the `Nginx` first anyway) if the test binary is killed.
fn spawn(bin: &Path, dir: &Path) -> Child {
    let mut command = command(bin, dir, &[]);
    command.stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: prctl is async-signal-safe and touches only the child.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()))
}

/// Whether `addr` answers the readiness path with `token`.
fn answers(addr: SocketAddr, token: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let request = format!("GET {READY_PATH} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut answer = Vec::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_end(&mut answer).is_ok()
        && String::from_utf8_lossy(&answer).ends_with(token)
}

/// A loopback port that was free just now (nginx may still lose it to
/// someone else: `Nginx::start` then tries another).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Debian's nginx, or nginx on PATH; `None` after a skip line outside CI.
fn nginx_bin(test: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("nginx"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let found = std::iter::once(PathBuf::from(NGINX))
        .chain(on_path)
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            !in_ci(),
            "CI=true but nginx is not installed: apt-get install -y nginx"
        );
        static SKIP: Once = Once::new();
        SKIP.call_once(|| {
            // Straight to stderr, past the test harness's capture, once per run.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED nginx tests (first: {test}): nginx not found (apt-get install nginx; with CI=true this fails)"
            );
        });
    }
    found
}
