//! The parsers and the streaming replay, on small logs.

use super::*;
use std::path::Path;

#[test]
fn csv_rows() {
    let text = "deployment,provider,src,dst,protocol,port,icmp_type,icmp_code,expected\n\
us,gcp,203.0.113.5,10.30.20.4,tcp,5432,,,deny\n\
,aws,10.10.20.4,100.64.20.9,6,443,,,allow\n\
eu,azure,198.51.100.1,10.50.20.4,icmp,,8,0,\n";
    let log = parse_csv("c.csv", text).unwrap();
    assert_eq!(log.records.len(), 3);
    assert_eq!(log.records[0].deployment.as_deref(), Some("us"));
    assert_eq!(log.records[0].expected, Some(false));
    assert_eq!(log.records[1].deployment, None);
    assert_eq!(log.records[1].provider, Some(ProviderKind::Aws));
    assert_eq!(
        (log.records[2].icmp_type, log.records[2].icmp_code),
        (Some(8), Some(0))
    );
    let e = parse_csv("c.csv", "deployment,provider,src,dst,protocol\n").unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (1, "header"));
    let e = parse_csv(
        "c.csv",
        "deployment,provider,src,dst,protocol,port\nus,gcp,1.2.3.4,10.0.0.1,tcp,\n",
    )
    .unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (2, "port"));
    let e = parse_csv(
        "c.csv",
        "deployment,provider,src,dst,protocol,port\nus,oracle,1.2.3.4,10.0.0.1,tcp,1\n",
    )
    .unwrap_err();
    assert_eq!(e.field, "provider");
    let e = parse_csv(
        "c.csv",
        "deployment,provider,src,dst,protocol,port\nus,gcp,1.2.3.4,10.0.0.1,bogus,1\n",
    )
    .unwrap_err();
    assert_eq!(e.field, "protocol");
    assert!(parse_csv("c.csv", "").is_err());
    let e = parse(
        FlowFormat::Csv,
        "c.csv",
        "deployment,provider,src,dst,protocol,port\n,,10.0.0.1,2001:db8::1,tcp,1\n",
    )
    .unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (2, "destination address"));
}

#[test]
fn parsers_never_panic_on_garbage() {
    for junk in [
        "\u{0}\u{1}",
        "{",
        "[",
        "[{\"jsonPayload\":1}]",
        "{\"records\":[{\"properties\":{\"flows\":[{\"flows\":[{\"flowTuples\":[1]}]}]}}]}",
        "a,b,c\n1,2",
        "2 1 eni",
    ] {
        for f in [
            FlowFormat::AwsVpc,
            FlowFormat::AzureNsg,
            FlowFormat::Gcp,
            FlowFormat::Csv,
        ] {
            let _ = parse(f, "j", junk);
        }
    }
}

#[cfg(feature = "aws")]
#[test]
fn streaming_reads_crlf_blank_lines_a_last_line_without_newline_and_bytes() {
    let text = "deployment,provider,src,dst,protocol,port\r\n\r\n,,10.0.0.1,10.0.0.2,tcp,1\r\n,,10.0.0.1,10.0.0.2,udp,2";
    let log = parse_csv("c.csv", text).unwrap();
    assert_eq!(
        log.records.iter().map(|r| r.line).collect::<Vec<_>>(),
        vec![3, 4]
    );
    let bytes: &[u8] = b"2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK\n\xff\xfe\n";
    let e = read_records(FlowFormat::AwsVpc, "a.log", bytes, |_| {
        Ok::<(), ParseError>(())
    })
    .unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (2, "text"));
}

#[cfg(all(feature = "aws", feature = "gcp"))]
#[test]
fn lines_straddling_reads_come_out_whole() {
    let gcp_lines = "{\"jsonPayload\":{\"connection\":{\"src_ip\":\"10.30.20.4\",\"dest_ip\":\"100.64.20.9\",\"src_port\":40000,\"dest_port\":443,\"protocol\":6}}}\n\n{\"jsonPayload\":{\"connection\":{\"src_ip\":\"34.120.1.7\",\"dest_ip\":\"10.30.20.4\",\"protocol\":1},\"disposition\":\"DENIED\"}}";
    let gcp_array = format!(
        "\n  [\n{},\n{}\n]\n",
        gcp_lines.lines().next().unwrap(),
        gcp_lines.lines().nth(2).unwrap()
    );
    let csv = "deployment,provider,src,dst,protocol,port\n#c\n,,10.0.0.1,10.0.0.2,tcp,1\r\n,,10.0.0.1,10.0.0.2,udp,2";
    for (format, text) in [
            (FlowFormat::Gcp, gcp_lines),
            (FlowFormat::Gcp, gcp_array.as_str()),
            (FlowFormat::Csv, csv),
            (FlowFormat::AwsVpc, "2 1 eni-1 10.0.0.1 10.0.0.2 443 50000 6 1 40 1 2 ACCEPT OK\n\n2 1 eni-1 10.0.0.3 10.0.0.2 443 50000 6 1 40 1 2 ACCEPT OK\n"),
        ] {
            let whole = parse(format, "f", text).unwrap();
            for cap in [1, 2, 3, 7, 8, 64] {
                let mut got = Vec::new();
                let reader = std::io::BufReader::with_capacity(cap, text.as_bytes());
                let skipped = read_records(format, "f", reader, |r| {
                    got.push(r.clone());
                    Ok::<(), ParseError>(())
                })
                .unwrap();
                assert_eq!((&got, &skipped), (&whole.records, &whole.skipped), "{cap}: {text}");
                assert!(!got.is_empty());
            }
        }
}

/// Differential tests of the streaming, compiled replay against the reference (the
/// replay as it was: whole log parsed, every record judged by `judge` and `evaluate`).
#[cfg(all(feature = "aws", feature = "azure", feature = "gcp"))]
mod differential {
    use super::*;
    use crate::intent::{load, LoadOptions};
    use crate::plan::{build, PlanOptions};
    use proptest::prelude::*;
    use std::fmt::Write;
    use std::sync::OnceLock;

    /// The example estate, its plan, and the intent with three db flows dropped: the
    /// rules (planned from the full intent) then disagree with it on some records.
    fn estate() -> &'static (Intent, Intent, Plan) {
        static E: OnceLock<(Intent, Intent, Plan)> = OnceLock::new();
        E.get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let today = time::macros::date!(2026 - 11 - 22);
            let intent = load(&root.join("intents"), &LoadOptions { today })
                .unwrap_or_else(|d| panic!("example intents load:\n{d}"))
                .intent;
            let opts = PlanOptions {
                backend: crate::backend::Backend::snapshots(root.join("snapshots")),
                prune_unmanaged: false,
                deployment: None,
                provider: None,
                shard: None,
                keep_after: true,
            };
            let plan = build(&intent, &opts).expect("plan builds");
            let mut drifted = intent.clone();
            for d in drifted.deployments.values_mut() {
                d.flows.retain(|f| {
                    !matches!(
                        f.name.as_str(),
                        "db-replication" | "db-to-backup-vault" | "no-corp-to-db"
                    )
                });
            }
            (intent, drifted, plan)
        })
    }

    const EXTERNAL: [&str; 16] = [
        "100.64.20.10",
        "100.64.20.11",
        "203.0.113.20",
        "203.0.113.200",
        "198.51.100.10",
        "198.51.100.140",
        "100.64.20.10",
        "100.64.10.7",
        "192.0.2.53",
        "192.0.2.150",
        "192.0.2.70",
        "54.239.28.85",
        "198.18.10.4",
        "172.31.5.5",
        "168.63.129.16",
        "35.191.0.1",
    ];
    const EXTERNAL6: [&str; 4] = [
        "2001:db8:100::1",
        "2001:db8:666::9",
        "2001:db8:53::53",
        "2001:db8:300::7",
    ];

    /// A linear congruential step: the value below `n`.
    fn next(rng: &mut u64, n: u64) -> u64 {
        *rng = rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (*rng >> 33) % n
    }

    /// An address of the estate: a db member, an unattributed one in a VPC, or external.
    fn address(rng: &mut u64, v4: bool, x: u64) -> String {
        match (v4, next(rng, 3)) {
            (true, 0) => format!("10.{x}.20.{}", 4 + next(rng, 8)),
            (true, 1) => format!("10.{x}.{}.{}", next(rng, 30), next(rng, 3)),
            (true, _) => EXTERNAL[next(rng, EXTERNAL.len() as u64) as usize].into(),
            (false, 0) => format!("2001:db8:{x}::{}", 1 + next(rng, 4)),
            (false, _) => EXTERNAL6[next(rng, EXTERNAL6.len() as u64) as usize].into(),
        }
    }

    /// A random log in both line formats: (AWS text, CSV).
    fn logs(seed: u64, n: usize) -> (String, String) {
        let rng = &mut (seed | 1);
        let mut aws = String::from("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n");
        let mut csv = String::from(
            "deployment,provider,src,dst,protocol,port,icmp_type,icmp_code,expected\n",
        );
        for _ in 0..n {
            let v4 = next(rng, 5) != 0;
            // mostly both ends in one VPC (10.X.0.0/16, db at 10.X.20.0/24)
            let x = 10 * (1 + next(rng, 9));
            let y = if next(rng, 5) == 0 {
                10 * (1 + next(rng, 9))
            } else {
                x
            };
            let src = address(rng, v4, x);
            let dst = address(rng, v4, y);
            let p = [6, 6, 6, 6, 17, 1, 58, 50, 47, 132][next(rng, 10) as usize];
            let port =
                [5432, 5432, 443, 443, 22, 53, 3000, 9090, 2222, 9300][next(rng, 10) as usize];
            let sport = match next(rng, 4) {
                0 => port.to_string(),
                1 => "-".into(),
                2 => "443".into(),
                _ => (1024 + next(rng, 60000)).to_string(),
            };
            let (sp, dp) = if proto::has_ports(p) {
                (sport.as_str(), port.to_string())
            } else {
                ("0", "0".to_string())
            };
            let action = ["ACCEPT", "REJECT", "-"][next(rng, 3) as usize];
            let _ = writeln!(
                aws,
                "2 1 eni-1 {src} {dst} {sp} {dp} {p} 1 1 1 2 {action} OK"
            );
            let dep = ["", "us", "eu", "ap"][next(rng, 4) as usize];
            let cloud = ["", "aws", "azure", "gcp"][next(rng, 4) as usize];
            let port = if proto::has_ports(p) {
                dp
            } else {
                String::new()
            };
            let (t, c) = match (proto::is_icmp(p), next(rng, 4)) {
                (true, 0) => ("8", "0"),
                (true, 1) => ("128", ""),
                (true, 2) => ("3", "4"),
                _ => ("", ""),
            };
            let expected = ["", "allow", "deny"][next(rng, 3) as usize];
            let _ = writeln!(
                csv,
                "{dep},{cloud},{src},{dst},{p},{port},{t},{c},{expected}"
            );
        }
        (aws, csv)
    }

    /// (streaming compiled replay, reference replay) as JSON, wall times left out.
    fn both(
        intent: &Intent,
        plan: &Plan,
        format: FlowFormat,
        text: &str,
    ) -> (serde_json::Value, serde_json::Value) {
        let json = |r: &Replay| {
            let mut v = serde_json::to_value(r).unwrap();
            v["millis"] = 0.into();
            v
        };
        let log = parse(format, "f.log", text).unwrap();
        let want = reference::replay(intent, plan, "f.log", format, &log).unwrap();
        let got = replay_reader(intent, plan, "f.log", format, text.as_bytes()).unwrap();
        (json(&got), json(&want))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Same counts, examples and findings (deciding rules and flows included), for
        /// the example estate and for an intent the rules disagree with.
        #[test]
        fn streaming_compiled_replay_equals_the_reference(seed in any::<u64>()) {
            let (intent, drifted, plan) = estate();
            let (aws, csv) = logs(seed, 400);
            for i in [intent, drifted] {
                let (got, want) = both(i, plan, FlowFormat::AwsVpc, &aws);
                prop_assert_eq!(got, want);
                let (got, want) = both(i, plan, FlowFormat::Csv, &csv);
                prop_assert_eq!(got, want);
            }
        }
    }

    /// The random logs reach every kind of outcome: mismatches (as sent and as replies,
    /// with the "not shown" line), drift, unattributed and outside records, failed
    /// expectations.
    #[test]
    fn the_random_logs_reach_every_outcome() {
        let (_, drifted, plan) = estate();
        let (aws, csv) = logs(7, 20_000);
        let (got, _) = both(drifted, plan, FlowFormat::AwsVpc, &aws);
        for k in ["mismatches", "drift", "unattributed", "outside", "checked"] {
            assert!(got[k].as_u64().unwrap() > 0, "{k}: {got}");
        }
        let text = got.to_string();
        assert!(got["mismatches"].as_u64().unwrap() > 12, "{text}");
        assert!(
            text.contains("more disagreeing flow-log records not shown"),
            "{text}"
        );
        assert!(text.contains("(as a reply)"), "{text}");
        let (got, _) = both(drifted, plan, FlowFormat::Csv, &csv);
        assert!(got["expectations_failed"].as_u64().unwrap() > 0, "{got}");
    }
}
