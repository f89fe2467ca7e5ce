//! What the live end-to-end tests (`tests/live_{aws,azure,gcp}.rs`) share: a helper process
//! on loopback (a cloud's fake, or the proxy in front of moto) that prints its port, plain
//! HTTP/1.1 requests to it, `intentwall --state live` with a pinned clock and a clean
//! environment, and the kill -9 of an apply in the middle of its writes.

use super::{code, text, TODAY};
use serde_json::Value;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A helper process listening on a loopback port it chose and printed; killed on drop.
pub struct Served {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Served {
    /// Start `python script ARGS` and read the port it prints on its first line.
    pub fn spawn<I, S>(python: impl AsRef<OsStr>, script: &Path, args: I) -> Served
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = Command::new(python)
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", script.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{} prints its port, not {line:?}", script.display()));
        Served {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// One request with `headers` and a JSON `body`: the status and the JSON answer (`Null`
    /// when the answer is not JSON).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> (u16, Value) {
        let addr = self.url.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let data = body.map(|b| b.to_string()).unwrap_or_default();
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        write!(
            s,
            "{head}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{data}",
            data.len()
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let status: u16 = resp
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("{method} {path}: not an HTTP answer: {resp:?}"));
        let body = resp.split("\r\n\r\n").nth(1).unwrap_or("");
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `intentwall --state live ARGS` in `dir`: the clock pinned, `env` set, and `unset` (the
/// caller's real credentials, RUST_LOG) removed, so a developer's environment never leaks in.
pub fn command(dir: &Path, env: &[(&str, &str)], unset: &[&str], args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_intentwall"));
    c.current_dir(dir)
        .env("INTENTWALL_TODAY", TODAY)
        .env_remove("RUST_LOG");
    for (k, v) in env {
        c.env(k, v);
    }
    for k in unset {
        c.env_remove(k);
    }
    c.args(["--state", "live"]).args(args);
    c
}

/// The exit code of a `plan` that must not fail: 0 (nothing to do) or 2 (changes).
pub fn plan_code(o: &Output) -> i32 {
    assert!(
        matches!(code(o), 0 | 2),
        "plan failed: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    code(o)
}

/// An apply that must have succeeded.
pub fn applied(o: &Output) {
    assert_eq!(code(o), 0, "apply: {}{}", text(&o.stdout), text(&o.stderr));
}

/// Start `apply`, and SIGKILL it once `mutating()` (the calls the cloud side counted) reaches
/// `at`: a crash in the middle of its writes, never before them or after.
pub fn kill_mid_apply(mut apply: Command, mutating: impl Fn() -> u64, at: u64) {
    let mut child = apply
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while mutating() < at {
        assert!(Instant::now() < deadline, "the apply never got going");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the apply ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}
