//! End-to-end tests of the binary: exit codes, stdout as data, stderr for people.
//! The clock is pinned with INTENTWALL_TODAY so exception expiry never flips these tests.

mod common;
use common::*;
use std::process::{Command, Output};

fn stdout(o: &Output) -> String {
    text(&o.stdout)
}

fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

#[test]
fn validate_example_estate_exits_0() {
    let o = iw(&root(), &["validate"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    assert!(stdout(&o).contains("3 deployments"), "{}", stdout(&o));
}

#[test]
fn usage_errors_exit_1_not_2() {
    let o = iw(&root(), &["plan", "--format", "bogus"]);
    assert_eq!(code(&o), 1);
    let o = iw(&root(), &["no-such-verb"]);
    assert_eq!(code(&o), 1);
    let o = iw(&root(), &["--help"]);
    assert_eq!(code(&o), 0);
}

#[test]
fn bad_intents_exit_1_with_position_and_nothing_on_stdout() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(
        t.path().join("intentwall.yaml"),
        "version: 1\ndeployments:\n  us:\n    aws: {account: \"111122223333\", region: us-east-1, vpc: vpc-0a1b2c3d, cidr: 10.0.0.0/16}\ngroups:\n  web: {}\nflows:\n  - {name: f, from: nowhere, to: web, services: [tcp/443]}\n",
    )
    .unwrap();
    let o = iw(t.path(), &["validate", "--intents", "."]);
    assert_eq!(code(&o), 1, "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("intentwall.yaml:8:"), "{}", stderr(&o));
    assert!(stderr(&o).contains("nowhere"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    // the same bad input blocks plan too, before any state is read or written
    let o = iw(t.path(), &["plan", "--intents", "."]);
    assert_eq!(code(&o), 1);
}

#[test]
fn guardrail_violation_blocks_validate_with_exit_3() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(
        t.path().join("intentwall.yaml"),
        "version: 1\ndeployments:\n  us:\n    aws: {account: \"111122223333\", region: us-east-1, vpc: vpc-0a1b2c3d, cidr: 10.0.0.0/16}\nnetworks:\n  internet: [0.0.0.0/0, \"::/0\"]\ngroups:\n  db: {}\nflows:\n  - {name: db-open, from: internet, to: db, services: [tcp/5432]}\n",
    )
    .unwrap();
    let o = iw(t.path(), &["validate", "--intents", "."]);
    assert_eq!(code(&o), 3, "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("db-open"), "{}", stderr(&o));
}

/// Run at a given date (overriding the pinned clock).
fn iw_on(date: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_intentwall"))
        .current_dir(root())
        .env("INTENTWALL_TODAY", date)
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .expect("run intentwall")
}

/// The example's break-glass exception is valid through 2027-06-30. The day after, its flow
/// is a guardrail finding (exit 3) naming the flow's file:line and the expiry date: the
/// estate still loads and every other target still plans, it is not an intent error (exit 1).
#[test]
fn expired_exception_blocks_with_exit_3_naming_flow_and_date() {
    let o = iw_on("2027-06-30", &["validate"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    for verb in ["validate", "plan"] {
        let o = iw_on("2027-07-01", &[verb]);
        assert_eq!(code(&o), 3, "{verb}: stderr: {}", stderr(&o));
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(!all.contains("error:"), "{verb}: {all}");
        for needle in [
            "bastion-ssh-break-glass",
            "(flows.yaml:53:9)",
            "expired on 2027-06-30",
            "flows.yaml:59:16",
        ] {
            assert!(all.contains(needle), "{verb}: no `{needle}` in {all}");
        }
    }
}

/// The README's main command pins the clock the tests use, so the demo it shows can never
/// start failing on a date (the example's exception expires; see the README's decision).
#[test]
fn readme_main_command_pins_the_clock_before_the_example_expiry() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let pinned = format!("INTENTWALL_TODAY={TODAY} cargo run --release -- plan");
    assert!(readme.contains(&pinned), "README must show `{pinned}`");
    assert!(TODAY < "2027-06-30");
}

#[test]
fn graph_mermaid_renders_every_deployment() {
    let o = iw(&root(), &["graph", "--format", "mermaid"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let s = stdout(&o);
    assert!(s.starts_with("flowchart LR\n"));
    for d in ["us", "eu", "ap"] {
        assert!(s.contains(&format!("deployment {d}")), "{d} missing");
    }
    insta::assert_snapshot!(
        "graph_mermaid_eu",
        stdout(&iw(&root(), &["graph", "--deployment", "eu"]))
    );
}

/// `graph --format dot` is valid DOT: a DOT grammar parser (pure Rust, no Graphviz install)
/// accepts it, and the parsed graph holds a node for every group of every deployment.
#[test]
fn graph_dot_is_accepted_by_a_dot_parser() {
    use graphviz_rust::dot_structures::{Graph, Stmt};
    let o = iw(&root(), &["graph", "--format", "dot"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let dot = stdout(&o);
    let g = graphviz_rust::parse(&dot).unwrap_or_else(|e| panic!("not DOT: {e}\n{dot}"));
    fn count(stmts: &[Stmt], nodes: &mut usize, edges: &mut usize) {
        for s in stmts {
            match s {
                Stmt::Node(_) => *nodes += 1,
                Stmt::Edge(_) => *edges += 1,
                Stmt::Subgraph(sg) => count(&sg.stmts, nodes, edges),
                _ => {}
            }
        }
    }
    let stmts = match &g {
        Graph::Graph { stmts, .. } | Graph::DiGraph { stmts, .. } => stmts,
    };
    let (mut nodes, mut edges) = (0, 0);
    count(stmts, &mut nodes, &mut edges);
    // 3 deployments of the example, at least 10 leaf groups and 25 flows each
    assert!(nodes >= 30 && edges >= 75, "{nodes} nodes, {edges} edges");
    // the parser is a real check: the same text with one quote dropped is refused
    let broken = dot.replacen('"', "", 1);
    assert!(
        graphviz_rust::parse(&broken).is_err(),
        "the parser accepts anything"
    );
}

#[test]
fn graph_from_internet_lists_the_blast_radius() {
    let o = iw(
        &root(),
        &["graph", "--from", "internet", "--deployment", "us"],
    );
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    insta::assert_snapshot!("blast_radius_us", stdout(&o));
    let o = iw(&root(), &["graph", "--from", "nowhere"]);
    assert_eq!(code(&o), 1);
}

/// A quota in a placement reaches the translator: lowered below what the example needs it
/// blocks the target with a `limit` finding naming the quota and how to raise it; raised, the
/// same plan goes through. A quota above the cloud's maximum is an intent error.
#[cfg(feature = "aws")]
#[test]
fn placement_quotas_decide_limit_findings() {
    let t = scratch();
    let intents = t.path().join("intents/intentwall.yaml");
    let original = std::fs::read_to_string(&intents).unwrap();
    let anchor = "      cidr6: \"2001:db8:10::/56\"\n";
    assert!(original.contains(anchor));
    let with = |q: &str| {
        let text = original.replacen(
            anchor,
            &format!("{anchor}      quotas: {{ rules_per_sg: {q} }}\n"),
            1,
        );
        std::fs::write(&intents, text).unwrap();
        iw(
            t.path(),
            &["plan", "--deployment", "us", "--provider", "aws"],
        )
    };
    let o = with("5");
    assert_eq!(
        code(&o),
        3,
        "stdout:\n{}\nstderr:\n{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(
        stdout(&o).contains("over quota `rules_per_sg` = 5 (configured)"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("BLOCKED"), "{}", stdout(&o));
    let o = with("1000");
    assert_eq!(
        code(&o),
        2,
        "stdout:\n{}\nstderr:\n{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(!stdout(&o).contains("rules_per_sg"), "{}", stdout(&o));
    let o = with("1001");
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("intentwall.yaml:14:31: quota `rules_per_sg` = 1001 is above the cloud's maximum of 1000"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        stderr(&o)
            .lines()
            .filter(|l| l.starts_with("error: "))
            .count(),
        1,
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
}

/// Every verb of the CLI, as clap knows them (so a new verb must appear in completions and
/// the man page without anyone listing it here).
fn verbs() -> Vec<String> {
    use clap::CommandFactory;
    intentwall::cli::Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect()
}

#[test]
fn completions_cover_every_verb_in_every_shell() {
    let verbs = verbs();
    assert!(verbs.len() >= 9, "{verbs:?}");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = iw(&root(), &["completions", shell]);
        assert_eq!(code(&o), 0, "{shell}: {}", stderr(&o));
        let s = stdout(&o);
        assert!(!s.is_empty(), "{shell}");
        for v in &verbs {
            assert!(s.contains(v.as_str()), "{shell}: no `{v}`");
        }
        // and the flags of a verb
        assert!(s.contains("prune-unmanaged"), "{shell}");
    }
    assert_eq!(code(&iw(&root(), &["completions", "tcsh"])), 1);
}

#[test]
fn man_prints_one_roff_page_with_every_verb_and_the_exit_codes() {
    let o = iw(&root(), &["man"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let s = stdout(&o);
    assert!(
        s.starts_with(".ie") || s.starts_with(".TH"),
        "{}",
        &s[..80.min(s.len())]
    );
    assert!(s.contains(".TH intentwall 1"), "not a section-1 page");
    for v in verbs().iter().filter(|v| *v != "help") {
        assert!(
            s.contains(&format!(".SS \"intentwall {v}")),
            "no section for `{v}`"
        );
    }
    assert!(s.contains(".SH \"EXIT STATUS\""));
    assert!(
        s.contains("\\-\\-auto\\-approve"),
        "apply's flags are listed"
    );
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

/// The human plan is coloured only for a terminal: piped (as here) it is plain, and so is
/// stderr (no progress bar); `CLICOLOR_FORCE` paints it (+ green, - red, ~ yellow) and
/// `NO_COLOR` wins over that. Stripped of its colours, the painted plan is the plain one.
#[test]
fn plan_colours_only_when_asked_and_never_in_a_pipe() {
    let run = |env: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_intentwall"));
        c.current_dir(root())
            .env("INTENTWALL_TODAY", TODAY)
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE");
        for (k, v) in env {
            c.env(k, v);
        }
        c.arg("plan").output().unwrap()
    };
    let plain = run(&[]);
    assert_eq!(code(&plain), 2, "{}", stderr(&plain));
    assert!(!stdout(&plain).contains('\x1b'), "escape codes in a pipe");
    assert!(!stderr(&plain).contains('\x1b'), "a progress bar in a pipe");
    assert!(
        !stderr(&plain).contains("targets ["),
        "a progress bar in a pipe"
    );
    let painted = run(&[("CLICOLOR_FORCE", "1")]);
    let p = stdout(&painted);
    assert!(p.contains("\x1b[32m    + "), "no green create");
    assert!(p.contains("\x1b[31m    - "), "no red delete");
    assert!(p.contains("\x1b[33m    ~ "), "no yellow update");
    let stripped = p
        .replace("\x1b[0m", "")
        .replace("\x1b[32m", "")
        .replace("\x1b[31m", "")
        .replace("\x1b[33m", "")
        .replace("\x1b[1;31m", "");
    // timings differ between runs: compare without them
    let untimed = |s: &str| {
        s.lines()
            .map(|l| l.split(" (").next().unwrap_or(l).to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(untimed(&stripped), untimed(&stdout(&plain)));
    let vetoed = run(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(!stdout(&vetoed).contains('\x1b'), "NO_COLOR must win");
}

/// The README's figures for the example estate are the golden files' counts: the flows per
/// deployment (plain and expanded) and the native rules per cloud, as `min-max` ranges.
#[test]
fn readme_rule_counts_match_the_golden_files() {
    let golden =
        std::fs::read_to_string(root().join("tests/snapshots/golden__rule_counts.snap")).unwrap();
    let mut by: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    // lines like `us/aws: 34 flows (expanded 56) -> 165 native rules`
    for l in golden.lines().filter(|l| l.ends_with(" native rules")) {
        let (target, rest) = l.split_once(": ").unwrap();
        let cloud = target.split('/').nth(1).unwrap();
        let n: Vec<usize> = rest
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .collect();
        by.entry("flows").or_default().push(n[0]);
        by.entry("expanded").or_default().push(n[1]);
        by.entry(cloud).or_default().push(n[2]);
    }
    let range = |k: &str| {
        let v = &by[k];
        let (lo, hi) = (v.iter().min().unwrap(), v.iter().max().unwrap());
        if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}-{hi}")
        }
    };
    let want = format!(
        "{} flows per deployment ({} after expanding\ncomposites) become {} AWS rules, {} Azure rules and {} GCP rules per deployment",
        range("flows"),
        range("expanded"),
        range("aws"),
        range("azure"),
        range("gcp")
    );
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.contains(&want), "README must say:\n{want}");
}

/// A snapshot that is valid JSON but holds a value of the wrong type is an error at the
/// value's own `file:line:col` (not only the path inside the document), one per cloud.
#[test]
fn snapshot_type_errors_name_file_line_and_column() {
    // (file, the first occurrence of this text is replaced by that)
    let cases = [
        ("aws", "\"FromPort\": -1", "\"FromPort\": \"x\""),
        (
            "azure",
            "\"priority\": 1",
            "\"priority\": \"x\", \"was\": 1",
        ),
        (
            "gcp",
            "\"sourceRanges\": [",
            "\"sourceRanges\": 5, \"was\": [",
        ),
    ];
    for (cloud, from, to) in cases {
        let t = scratch();
        let f = t.path().join(format!("snapshots/us/{cloud}.json"));
        let s = std::fs::read_to_string(&f).unwrap();
        let at = s
            .find(from)
            .unwrap_or_else(|| panic!("{cloud}: no `{from}`"));
        let line = s[..at].matches('\n').count() + 1;
        // the column of the value, after `"key": `
        let col = at - s[..at].rfind('\n').map_or(0, |i| i + 1) + from.find(": ").unwrap() + 3;
        std::fs::write(&f, s.replacen(from, to, 1)).unwrap();
        let o = iw(t.path(), &["plan"]);
        assert_eq!(code(&o), 1, "{cloud}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{cloud}: {}", stdout(&o));
        let want = format!("error: snapshots/us/{cloud}.json:{line}:{col}: ");
        assert!(
            stderr(&o).starts_with(&want),
            "{cloud}: want `{want}`, got {}",
            stderr(&o)
        );
    }
}
