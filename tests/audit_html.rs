//! The audit's HTML evidence page in a real browser (headless Chromium, installed by
//! `scripts/ci/browser.sh`): the page loads without a single console message (it has no
//! scripts, so any message is a fault: a blocked fetch, a policy violation), and the DOM the
//! browser builds shows every target and the service graph.
//!
//! Without Chromium the tests say so and pass, except under CI (`CI` set), where a missing
//! browser is a failure: a skipped browser test must never look green there.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const NOW: &str = "2026-11-22T09:30:00Z";

/// The browser, or `None` (outside CI) when it is not installed.
fn chromium() -> Option<PathBuf> {
    let p = PathBuf::from(CHROMIUM);
    if p.is_file() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{CHROMIUM} is missing under CI: run scripts/ci/browser.sh first");
    }
    eprintln!("skipping: {CHROMIUM} is missing (scripts/ci/browser.sh installs it)");
    None
}

/// What the browser made of a page: the serialised DOM, and its console messages.
struct Loaded {
    dom: String,
    console: Vec<String>,
}

/// Load `page` in headless Chromium and dump its DOM. Output goes to files, not pipes:
/// helper processes of the browser may hold a pipe open after it exits.
fn load(browser: &Path, page: &Path) -> Loaded {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dom.html");
    let err = dir.path().join("stderr.txt");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(status.success(), "chromium failed: {status}\n{stderr}");
    Loaded {
        dom: std::fs::read_to_string(&out).unwrap(),
        // Chromium logs every console message of the page as `...:CONSOLE:<line>] "text"`
        console: stderr
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(String::from)
            .collect(),
    }
}

/// The audit of the example estate as an HTML file in `dir`, and its JSON.
fn audit_page(dir: &Path) -> (PathBuf, serde_json::Value) {
    let run = |format: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_intentwall"))
            .current_dir(root())
            .env("INTENTWALL_TODAY", TODAY)
            .env("INTENTWALL_NOW", NOW)
            .env_remove("RUST_LOG")
            .args(["audit", "--format", format])
            .output()
            .unwrap();
        assert_eq!(code(&o), 3, "{}", text(&o.stderr));
        o.stdout
    };
    let page = dir.join("audit.html");
    std::fs::write(&page, run("html")).unwrap();
    (page, serde_json::from_slice(&run("json")).unwrap())
}

#[test]
fn evidence_page_loads_cleanly_and_shows_every_target() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (page, audit) = audit_page(dir.path());
    let loaded = load(&browser, &page);
    assert!(
        loaded.console.is_empty(),
        "console messages: {:#?}",
        loaded.console
    );
    let dom = &loaded.dom;
    assert!(dom.contains("<table id=\"targets\">"), "{dom}");
    assert!(dom.contains(audit["intent_digest"].as_str().unwrap()));
    assert!(dom.contains(&format!("<time datetime=\"{NOW}\">")));
    let targets = audit["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 9);
    for t in targets {
        let (d, c) = (
            t["deployment"].as_str().unwrap(),
            t["provider"].as_str().unwrap(),
        );
        assert!(dom.contains(&format!("data-target=\"{d}/{c}\"")), "{d}/{c}");
        assert!(dom.contains(&format!("{d} / {c}")), "{d} / {c}");
        assert!(dom.contains(t["fingerprint"].as_str().unwrap()));
    }
    // the graph is part of the document, not an image fetched from elsewhere
    assert!(dom.contains("<svg"));
    for name in ["internet", "web", "db", "batch"] {
        assert!(dom.contains(&format!("data-name=\"{name}\"")), "{name}");
    }
}

#[test]
fn the_console_check_sees_script_errors_and_blocked_fetches() {
    // the check above is only worth something if a faulty page fails it
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.html");
    std::fs::write(
        &script,
        "<!DOCTYPE html><html><body><p>x</p><script>console.error('boom')</script></body></html>",
    )
    .unwrap();
    let loaded = load(&browser, &script);
    assert!(
        loaded.console.iter().any(|l| l.contains("boom")),
        "{:#?}",
        loaded.console
    );
    // the evidence page with an image from elsewhere: its policy blocks the fetch, and the
    // browser says so
    let (page, _) = audit_page(dir.path());
    let html = std::fs::read_to_string(&page).unwrap().replacen(
        "<main>",
        "<main><img src=\"http://example.invalid/x.png\" alt=\"\"/>",
        1,
    );
    std::fs::write(&page, html).unwrap();
    let loaded = load(&browser, &page);
    assert!(
        loaded
            .console
            .iter()
            .any(|l| l.contains("example.invalid") && l.contains("Content Security Policy")),
        "{:#?}",
        loaded.console
    );
}
