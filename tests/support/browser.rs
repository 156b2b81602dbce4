//! A headless Chromium driven over WebDriver, for the end-to-end tests of the page.
//!
//! Why WebDriver through Debian's `chromedriver` and this small client: the
//! protocol is a W3C standard of plain JSON over HTTP, so the client is a page
//! of `ureq` calls (already a dev-dependency) and adds no crate tree; Debian
//! builds `chromium-driver` from the same source as `chromium`, so the two
//! versions always match; nothing is downloaded at test time; and the standard
//! "Get Alert Text" command tells us for certain whether an `alert()` ran.
//! (`headless_chrome` would need only `chromium`, but brings a large crate tree
//! and picks its debugging port by probing, which races under parallel tests.)
//!
//! Every `Browser` has its own `chromedriver` on an ephemeral port, its own
//! Chromium and a fresh profile folder, so tests run in parallel.
//!
//! Outside CI, a machine without Chromium skips these tests with one line on
//! stderr; with `CI=true` a missing browser fails them.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Once};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::support::{in_ci, DEADLINE};

/// Debian's Chromium (a wrapper script that runs /usr/lib/chromium/chromium).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's ChromeDriver, from the `chromium-driver` package.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Flags for a headless Chromium running as root in a container, with nothing
/// talking to the network behind the test's back.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
];

/// The window size, unless a test emulates a phone.
pub const DESKTOP: (u32, u32) = (1280, 800);

/// The key WebDriver gives an element reference under.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where screenshots go: `target/e2e/`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("e2e")
}

/// The missing program, if Chromium or ChromeDriver is not installed.
fn missing_program() -> Option<&'static str> {
    [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .find(|p| !Path::new(p).exists())
}

/// A WebDriver error answer: `error` is the standard code, e.g. `no such alert`.
#[derive(Debug)]
pub struct WdError {
    pub status: u16,
    pub error: String,
    pub message: String,
}

/// One headless Chromium with one session, closed (and its profile removed) when dropped.
pub struct Browser {
    name: String,
    driver: Child,
    base: String,
    agent: ureq::Agent,
    profile: PathBuf,
}

impl Browser {
    /// A desktop-sized browser for the test `name` (which also names its
    /// screenshot), or `None` when the test is skipped because Chromium is absent.
    pub fn launch(name: &str) -> Option<Browser> {
        Browser::start(name, None)
    }

    /// As `launch`, emulating a phone whose screen is `width` × `height` CSS
    /// pixels (a headless window cannot be narrower than 500 px).
    pub fn launch_phone(name: &str, (width, height): (u32, u32)) -> Option<Browser> {
        Browser::start(name, Some((width, height)))
    }

    fn start(name: &str, phone: Option<(u32, u32)>) -> Option<Browser> {
        if let Some(program) = missing_program() {
            assert!(
                !in_ci(),
                "CI=true but {program} is missing: apt-get install -y chromium chromium-driver"
            );
            static SKIP_NOTICE: Once = Once::new();
            SKIP_NOTICE.call_once(|| {
                // Straight to stderr: libtest hides what passing tests print.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED browser tests: {program} not found (apt-get install chromium chromium-driver; with CI=true this fails)"
                );
            });
            return None;
        }
        static N: AtomicU64 = AtomicU64::new(0);
        let profile = std::env::temp_dir().join(format!(
            "wspush-e2e-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("create the browser profile folder");

        let (driver, port) = start_driver();
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout_read(Duration::from_secs(60))
            .build();
        let mut browser = Browser {
            name: name.to_owned(),
            driver,
            base: format!("http://127.0.0.1:{port}/session"),
            agent,
            profile,
        };
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", browser.profile.display()));
        args.push(format!("--window-size={},{}", DESKTOP.0, DESKTOP.1));
        let mut chrome_options = json!({ "binary": CHROMIUM, "args": args });
        if let Some((width, height)) = phone {
            chrome_options["mobileEmulation"] = json!({ "deviceMetrics": {
                "width": width, "height": height, "pixelRatio": 1.0, "mobile": true, "touch": true,
            }});
        }
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            // Leave an alert open so `alert_text` can see it.
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": chrome_options,
        }}});
        let session = browser
            .call("POST", "", Some(capabilities))
            .unwrap_or_else(|e| panic!("cannot start Chromium through chromedriver: {e:?}"));
        let id = session["sessionId"].as_str().expect("a session id").to_owned();
        browser.base = format!("{}/{id}", browser.base);
        Some(browser)
    }

    /// One WebDriver command on this session; `path` is relative to it.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        let request = self.agent.request(method, &format!("{}{path}", self.base));
        let result = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        let (status, response) = match result {
            Ok(r) => (r.status(), r),
            Err(ureq::Error::Status(code, r)) => (code, r),
            Err(e) => panic!("WebDriver {method} {path}: {e}"),
        };
        let answer: Value = response.into_json().expect("WebDriver answers JSON");
        let value = answer["value"].clone();
        if status == 200 {
            Ok(value)
        } else {
            Err(WdError {
                status,
                error: value["error"].as_str().unwrap_or("?").to_owned(),
                message: value["message"].as_str().unwrap_or("").to_owned(),
            })
        }
    }

    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, path, body).unwrap_or_else(|e| {
            if e.error == "unexpected alert open" {
                panic!(
                    "a JavaScript dialog opened in the page (something ran alert()): {}",
                    e.message
                );
            }
            panic!("WebDriver {method} {path} failed: {e:?}")
        })
    }

    /// Loads `url` and waits for the document to load.
    pub fn open(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body: use `return`) with `args` in the page.
    pub fn run(&self, script: &str, args: Value) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// The value of the JavaScript expression `expr`.
    pub fn eval(&self, expr: &str) -> Value {
        self.run(&format!("return ({expr});"), json!([]))
    }

    /// Polls the expression `expr` until it is truthy and returns its value;
    /// fails the test after `DEADLINE`, showing `what` and the last value.
    pub fn wait_for(&self, what: &str, expr: &str) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let value = self.eval(expr);
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                Value::Array(_) | Value::Object(_) => true,
            };
            if truthy {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for: {what} (`{expr}` was {value})"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The text of the open alert/confirm/prompt dialog, if one is open.
    pub fn alert_text(&self) -> Option<String> {
        match self.call("GET", "/alert/text", None) {
            Ok(text) => Some(text.as_str().unwrap_or_default().to_owned()),
            Err(e) if e.error == "no such alert" => None,
            Err(e) => panic!("WebDriver alert check failed: {e:?}"),
        }
    }

    /// The first element matching the CSS `selector`, as a WebDriver reference.
    pub fn find(&self, selector: &str) -> String {
        let found = self.command(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": selector })),
        );
        found[ELEMENT_KEY]
            .as_str()
            .expect("an element reference")
            .to_owned()
    }

    /// Types `text` into the element matching `selector`, as a user would.
    pub fn type_into(&self, selector: &str, text: &str) {
        let element = self.find(selector);
        self.command(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Clicks the element matching `selector`, as a user would.
    pub fn click(&self, selector: &str) {
        let element = self.find(selector);
        self.command("POST", &format!("/element/{element}/click"), Some(json!({})));
    }

    /// Takes the browser off the network (`true`) or back on it, as DevTools'
    /// "Offline" does: new connections fail at once, open ones stay as they are.
    pub fn set_offline(&self, offline: bool) {
        let conditions = json!({ "network_conditions": {
            "offline": offline, "latency": 0, "download_throughput": -1, "upload_throughput": -1,
        }});
        self.command("POST", "/chromium/network_conditions", Some(conditions));
    }

    /// Opens a new window, switches to it and returns its handle.
    pub fn new_window(&self) -> String {
        let window = self.command("POST", "/window/new", Some(json!({ "type": "window" })));
        let handle = window["handle"].as_str().expect("a window handle").to_owned();
        self.switch_to(&handle);
        handle
    }

    /// The current window's handle.
    pub fn window(&self) -> String {
        self.command("GET", "/window", None)
            .as_str()
            .expect("a window handle")
            .to_owned()
    }

    /// Makes `handle` the window that commands go to.
    pub fn switch_to(&self, handle: &str) {
        self.command("POST", "/window", Some(json!({ "handle": handle })));
    }

    /// Saves the current window as `target/e2e/<test name>.png`.
    pub fn screenshot(&self) -> PathBuf {
        self.screenshot_as(&self.name.clone())
    }

    /// Saves the current window as `target/e2e/<stem>.png`.
    pub fn screenshot_as(&self, stem: &str) -> PathBuf {
        let data = self.command("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().expect("base64 PNG"))
            .expect("the screenshot is base64");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("create target/e2e");
        let path = dir.join(format!("{stem}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Show what the page looked like when the test failed.
            if let Ok(data) = self.call("GET", "/screenshot", None) {
                if let Some(png) = data
                    .as_str()
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                {
                    let dir = screenshot_dir();
                    let _ = std::fs::create_dir_all(&dir);
                    let _ = std::fs::write(dir.join(format!("{}.png", self.name)), png);
                }
            }
        }
        let _ = self.call("DELETE", "", None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A port free on both 127.0.0.1 and ::1 just now, which chromedriver needs.
fn free_port_on_both_stacks() -> Option<u16> {
    let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
    let port = v4.local_addr().ok()?.port();
    TcpListener::bind((Ipv6Addr::LOCALHOST, port)).ok()?;
    Some(port)
}

/// Starts `chromedriver` on a free port; returns it and the port it reports.
fn start_driver() -> (Child, u16) {
    // chromedriver listens on the same port on IPv4 and IPv6 and exits when
    // either is taken. Left to choose (`--port=0`) it takes a free IPv6 port
    // whose IPv4 twin is often taken while load generators hold thousands of
    // loopback connections; a port checked free on both is taken far more
    // rarely between the check and chromedriver's bind. It then exits: try again.
    for _ in 0..20 {
        let Some(port) = free_port_on_both_stacks() else {
            continue;
        };
        let mut driver = Command::new(CHROMEDRIVER)
            .args([format!("--port={port}").as_str(), "--log-level=WARNING"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {CHROMEDRIVER}: {e}"));
        let stdout = driver.stdout.take().expect("chromedriver stdout");
        let (tx, rx) = mpsc::channel();
        // Reads the port from "ChromeDriver was started successfully on port N.",
        // then keeps draining the pipe so chromedriver never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("successfully on port ").nth(1) {
                    let _ = tx.send(rest.trim_end_matches('.').trim().parse::<u16>());
                }
            }
        });
        match rx.recv_timeout(DEADLINE) {
            Ok(Ok(port)) => return (driver, port),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // It exited without a port: try again.
                let _ = driver.wait();
            }
            other => {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!("chromedriver did not report its port: {other:?}");
            }
        }
    }
    panic!("chromedriver exited twenty times without a free port");
}
