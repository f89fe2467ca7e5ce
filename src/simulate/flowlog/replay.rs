//! Replaying records against the targets of a plan: per-target figures, the compiled judge,
//! and the findings for disagreements (see the parent module for the rules).

use super::*;

/// Replay figures of one target.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TargetReplay {
    /// Deployment.
    pub deployment: String,
    /// Cloud.
    pub provider: Option<ProviderKind>,
    /// Records that belong to this target (one end in its space or declared addresses).
    pub records: u64,
    /// Records judged on both sides.
    pub checked: u64,
    /// Records with an end in the space but in no declared group range.
    pub unattributed: u64,
    /// The first unattributed records.
    pub unattributed_examples: Vec<String>,
    /// Records whose native verdict depends on rules with an unknown match (whether such a
    /// rule really matches the record changes the verdict): neither agreement nor mismatch.
    #[serde(default)]
    pub unverifiable: u64,
    /// The first unverifiable records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unverifiable_examples: Vec<String>,
    /// Records where the native rules and the intent disagree (blocking).
    pub mismatches: u64,
    /// CSV rows whose `expected` verdict the intent or the rules do not give (blocking).
    pub expectations_failed: u64,
    /// Records whose logged action contradicts the intent (evidence of past drift).
    pub drift: u64,
    /// The first drift records.
    pub drift_examples: Vec<String>,
    /// Mismatch and expectation findings (capped; the counts are complete).
    pub findings: Vec<Finding>,
}

/// The result of replaying a flow log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Replay {
    /// The log file.
    pub file: String,
    /// Its format.
    pub format: FlowFormat,
    /// Records read (checked or not), skipped ones included.
    pub records: u64,
    /// Records skipped while reading (NODATA, SKIPDATA, missing fields).
    pub skipped: u64,
    /// Skipped records by reason.
    pub skipped_by_reason: BTreeMap<String, u64>,
    /// Records whose ends are in no selected deployment.
    pub outside: u64,
    /// The first such records.
    pub outside_examples: Vec<String>,
    /// Sum over targets.
    pub unattributed: u64,
    /// Sum over targets.
    pub checked: u64,
    /// Sum over targets.
    #[serde(default)]
    pub unverifiable: u64,
    /// Sum over targets.
    pub mismatches: u64,
    /// Sum over targets.
    pub expectations_failed: u64,
    /// Sum over targets.
    pub drift: u64,
    /// Per target, in plan order.
    pub targets: Vec<TargetReplay>,
    /// Wall time, milliseconds.
    pub millis: u64,
}

impl Replay {
    /// Any blocking disagreement.
    pub fn blocked(&self) -> bool {
        self.mismatches > 0 || self.expectations_failed > 0
    }
}

/// One side's verdict on a record: allowed as sent or as a reply.
pub(super) struct Judged {
    pub(super) allowed: bool,
    pub(super) as_reply: bool,
}

/// One target of a replay: what findings are worded from, and its figures.
struct Ctx<'a> {
    intent: DeploymentIntent,
    policy: EvalPolicy,
    allowances: Vec<FlowIntent>,
    /// Leaf groups with declared addresses, in attribution order.
    declared: Vec<(&'a str, AddrSet)>,
    /// The ICMP classes the target's flows and rules tell apart (candidates for an ICMP
    /// record without type or code).
    icmp_classes: Vec<Packet>,
    stats: TargetReplay,
}

fn host(c: &Ctx<'_>, ip: IpAddr, s: Side) -> Host {
    Host {
        ip,
        group: match s {
            Side::Member(i) => Some(c.declared[i as usize].0.to_string()),
            _ => None,
        },
    }
}

/// A record's packet as a probe between its attributed hosts.
fn probe(c: &Ctx<'_>, r: &FlowRecord, (ss, ds): (Side, Side), packet: Packet) -> Probe {
    Probe {
        src: host(c, r.src, ss),
        dst: host(c, r.dst, ds),
        packet,
    }
}

/// The packets an ICMP record stands for (without type and code: every class of its
/// protocol), into `out`.
fn candidates(r: &FlowRecord, icmp_classes: &[Packet], out: &mut Vec<Packet>) {
    out.clear();
    let p = r.proto;
    match (r.icmp_type, r.icmp_code) {
        (Some(t), Some(c)) => out.push(Packet::icmp(p, t, c)),
        (t, _) => {
            out.extend(
                icmp_classes
                    .iter()
                    .filter(|k| k.proto == p && t.is_none_or(|t| t == k.icmp_type)),
            );
            if out.is_empty() {
                out.push(Packet::icmp(p, t.unwrap_or(0), 0));
            }
        }
    }
}

fn word(a: bool) -> &'static str {
    if a {
        "allow"
    } else {
        "deny"
    }
}

/// A replay in progress: the compiled targets and the figures so far. Records are fed one at
/// a time, so nothing here grows with the log.
struct Replayer<'a> {
    intent: &'a Intent,
    file: &'a str,
    format: FlowFormat,
    started: Instant,
    ctxs: Vec<Ctx<'a>>,
    compiled: Compiled,
    /// Target indices per cloud (in `ProviderKind::ALL` order), and all of them.
    by_cloud: [Vec<usize>; ProviderKind::ALL.len()],
    all: Vec<usize>,
    /// Scratch for one record's candidate packets.
    cands: Vec<Packet>,
    read: u64,
    outside: u64,
    outside_examples: Vec<String>,
}

impl<'a> Replayer<'a> {
    fn new(
        intent: &'a Intent,
        plan: &Plan,
        file: &'a str,
        format: FlowFormat,
    ) -> Result<Self, Error> {
        let started = Instant::now();
        let mut ctxs: Vec<Ctx<'a>> = Vec::new();
        let graph = crate::graph::ServiceGraph::of(intent);
        for t in &plan.targets {
            let dep = intent
                .deployments
                .get(&t.deployment)
                .ok_or_else(|| Error::PlanDeployment(t.deployment.clone()))?;
            let di = graph.view(&dep.name).and_then(|v| v.resolve(t.provider));
            let di = di.ok_or_else(|| Error::NoPlacement {
                deployment: dep.name.clone(),
                provider: t.provider,
            })?;
            let provider = crate::backend::require(t.provider)?;
            let policy = provider.lower(&t.after, &di);
            let allowances = provider.platform_allowances(&di);
            let declared: Vec<(&str, AddrSet)> = dep
                .groups
                .values()
                .filter(|g| !g.is_composite())
                .filter_map(|g| {
                    g.addresses_for(t.provider)
                        .map(|a| (g.name.as_str(), a.clone()))
                })
                .collect();
            let traffic: Vec<Traffic> = di
                .flows
                .iter()
                .chain(&allowances)
                .flat_map(|f| f.traffic.iter().cloned())
                .chain(policy.rules.iter().flat_map(|r| r.traffic.iter().cloned()))
                .filter(|t| t.proto.is_none_or(proto::is_icmp))
                .collect();
            let icmp_classes: Vec<Packet> = packet_classes(&traffic)
                .into_iter()
                .filter(|p| proto::is_icmp(p.proto))
                .collect();
            ctxs.push(Ctx {
                stats: TargetReplay {
                    deployment: t.deployment.clone(),
                    provider: Some(t.provider),
                    ..Default::default()
                },
                intent: di,
                policy,
                allowances,
                declared,
                icmp_classes,
            });
        }
        let compiled = Compiled::new(
            &ctxs
                .iter()
                .map(|c| Target {
                    intent: &c.intent,
                    allowances: &c.allowances,
                    policy: &c.policy,
                    declared: &c.declared,
                })
                .collect::<Vec<_>>(),
        );
        // (in `ProviderKind::ALL` order)
        let by_cloud = ProviderKind::ALL.map(|k| {
            (0..ctxs.len())
                .filter(|&i| ctxs[i].intent.provider == k)
                .collect()
        });
        Ok(Replayer {
            intent,
            file,
            format,
            started,
            all: (0..ctxs.len()).collect(),
            ctxs,
            compiled,
            by_cloud,
            cands: Vec::new(),
            read: 0,
            outside: 0,
            outside_examples: Vec::new(),
        })
    }

    /// Judge one record on every target it belongs to.
    fn record(&mut self, r: &FlowRecord) -> Result<(), Error> {
        let Replayer {
            intent,
            file,
            ctxs,
            compiled,
            by_cloud,
            all,
            cands,
            ..
        } = self;
        let file: &str = file;
        self.read += 1;
        if let Some(d) = &r.deployment {
            if !intent.deployments.contains_key(d) {
                return Err(ParseError::new(
                    file,
                    r.line,
                    "deployment",
                    format!("unknown deployment `{d}`"),
                )
                .into());
            }
        }
        // one binary search per address, whatever the number of targets and groups
        let (sc, dc) = (compiled.addr_class(r.src), compiled.addr_class(r.dst));
        let targets: &[usize] = match r.provider {
            // `by_cloud` is in `ProviderKind::ALL` order
            Some(k) => ProviderKind::ALL
                .iter()
                .position(|&c| c == k)
                .map_or(&[][..], |i| &by_cloud[i][..]),
            None => all,
        };
        let mut belongs = false;
        for &ti in targets {
            let c = &mut ctxs[ti];
            if r.deployment
                .as_ref()
                .is_some_and(|d| d != &c.intent.deployment)
            {
                continue;
            }
            let ix = &compiled.targets[ti];
            let (ss, ds) = (ix.side(sc), ix.side(dc));
            if ss == Side::External && ds == Side::External {
                continue;
            }
            belongs = true;
            c.stats.records += 1;
            if ss == Side::Unknown || ds == Side::Unknown {
                c.stats.unattributed += 1;
                if c.stats.unattributed_examples.len() < EXAMPLES_SHOWN {
                    c.stats
                        .unattributed_examples
                        .push(format!("{file}:{}: {r}", r.line));
                }
                continue;
            }
            // every candidate packet, keeping the first, whether all agree, and the first
            // disagreement of the intent and the rules
            // one packet, except for ICMP without type and code
            let one;
            let packets: &[Packet] = if proto::is_icmp(r.proto) {
                candidates(r, &c.icmp_classes, cands);
                cands
            } else {
                let port = match proto::has_ports(r.proto) {
                    true => r.dst_port.unwrap_or(0),
                    false => 0,
                };
                one = [Packet::ported(r.proto, port)];
                &one
            };
            let mut first: Option<(Packet, bool, bool)> = None;
            let (mut same_o, mut same_n) = (true, true);
            let mut first_bad: Option<(Packet, Judged, Judged)> = None;
            let mut unverifiable = false;
            for &packet in packets {
                if !packet.fits_family(r.src.is_ipv4()) {
                    continue;
                }
                let k = compiled.packets.of(&packet);
                // the reply of a flow the other way goes to the record's source port
                let rk = match proto::has_ports(packet.proto) {
                    true => r
                        .src_port
                        .map(|sp| compiled.packets.of(&Packet::ported(packet.proto, sp))),
                    false => Some(k),
                };
                let v = compiled.outcome(ti, sc, dc, k, rk);
                unverifiable |= v.unverifiable;
                let o = Judged {
                    allowed: v.oracle,
                    as_reply: v.oracle_reply,
                };
                let n = Judged {
                    allowed: v.native,
                    as_reply: v.native_reply,
                };
                match first {
                    None => first = Some((packet, o.allowed, n.allowed)),
                    Some((_, fo, fnat)) => {
                        same_o &= fo == o.allowed;
                        same_n &= fnat == n.allowed;
                    }
                }
                if o.allowed != n.allowed && first_bad.is_none() {
                    first_bad = Some((packet, o, n));
                }
            }
            let Some((first_packet, first_o, first_n)) = first else {
                if !unverifiable {
                    c.stats.checked += 1;
                }
                continue;
            };
            if unverifiable {
                // the rules' verdict is not known: no agreement, no mismatch, no expectation
                // of the rules; the intent's verdict still tells drift
                c.stats.unverifiable += 1;
                if c.stats.unverifiable_examples.len() < EXAMPLES_SHOWN {
                    c.stats
                        .unverifiable_examples
                        .push(format!("{file}:{}: {r}", r.line));
                }
                first_bad = None;
            } else {
                c.stats.checked += 1;
            }
            // the intent's verdict, when every candidate packet agrees
            let intent_verdict = same_o.then_some(first_o);
            let native_verdict = (same_n && !unverifiable).then_some(first_n);
            if let Some((packet, o, n)) = first_bad {
                c.stats.mismatches += 1;
                if c.stats.findings.len() < MISMATCHES_SHOWN {
                    let f = mismatch_finding(
                        &c.intent,
                        &c.allowances,
                        &c.policy,
                        file,
                        r,
                        &probe(c, r, (ss, ds), packet),
                        &o,
                        &n,
                    );
                    c.stats.findings.push(f);
                }
            }
            if let (Some(obs), Some(iv)) = (r.observed, intent_verdict) {
                if obs != iv {
                    c.stats.drift += 1;
                    if c.stats.drift_examples.len() < EXAMPLES_SHOWN {
                        c.stats.drift_examples.push(format!(
                            "{file}:{}: {r}: the log shows {}, the intent says {}",
                            r.line,
                            if obs { "accepted" } else { "rejected" },
                            word(iv)
                        ));
                    }
                }
            }
            if let Some(want) = r.expected {
                let mut why = Vec::new();
                match intent_verdict {
                    Some(v) if v == want => {}
                    Some(v) => why.push(format!("the intent gives {}", word(v))),
                    None => why.push("the intent's verdict depends on the ICMP type".into()),
                }
                match native_verdict {
                    _ if unverifiable => {}
                    Some(v) if v == want => {}
                    Some(v) => why.push(format!("{} gives {}", c.intent.provider, word(v))),
                    None => why.push(format!(
                        "{}'s verdict depends on the ICMP type",
                        c.intent.provider
                    )),
                }
                if !why.is_empty() {
                    c.stats.expectations_failed += 1;
                    if c.stats.findings.len() < MISMATCHES_SHOWN {
                        let message = format!(
                            "{file}:{}: {}: expected {}, but {}",
                            r.line,
                            probe(c, r, (ss, ds), first_packet),
                            word(want),
                            why.join("; ")
                        );
                        c.stats.findings.push(Finding {
                            kind: FindingKind::Expectation,
                            deployment: c.intent.deployment.clone(),
                            provider: Some(c.intent.provider),
                            flow: None,
                            message,
                        });
                    }
                }
            }
        }
        if !belongs {
            self.outside += 1;
            if self.outside_examples.len() < EXAMPLES_SHOWN {
                self.outside_examples
                    .push(format!("{}:{}: {r}", self.file, r.line));
            }
        }
        Ok(())
    }

    /// The figures, with a closing finding per target for the disagreements not shown.
    fn finish(self, skipped_by_reason: BTreeMap<String, u64>) -> Replay {
        let skipped: u64 = skipped_by_reason.values().sum();
        let file = self.file;
        let mut out = Replay {
            file: file.to_string(),
            format: self.format,
            records: self.read + skipped,
            skipped,
            skipped_by_reason,
            outside: self.outside,
            outside_examples: self.outside_examples,
            unattributed: 0,
            checked: 0,
            unverifiable: 0,
            mismatches: 0,
            expectations_failed: 0,
            drift: 0,
            targets: vec![],
            millis: 0,
        };
        for c in self.ctxs {
            let mut t = c.stats;
            let shown = t
                .findings
                .iter()
                .filter(|f| f.kind == FindingKind::Mismatch)
                .count() as u64;
            let shown_e = t.findings.len() as u64 - shown;
            let hidden = (t.mismatches - shown.min(t.mismatches))
                + (t.expectations_failed - shown_e.min(t.expectations_failed));
            if hidden > 0 {
                t.findings.push(Finding {
                    kind: FindingKind::Mismatch,
                    deployment: t.deployment.clone(),
                    provider: t.provider,
                    flow: None,
                    message: format!(
                        "{file}: {hidden} more disagreeing flow-log records not shown"
                    ),
                });
            }
            out.unattributed += t.unattributed;
            out.checked += t.checked;
            out.unverifiable += t.unverifiable;
            out.mismatches += t.mismatches;
            out.expectations_failed += t.expectations_failed;
            out.drift += t.drift;
            out.targets.push(t);
        }
        out.millis = self.started.elapsed().as_millis() as u64;
        out
    }
}

/// Replay a flow log as it is read, against the targets of a plan (the state each would hold
/// after apply): what `simulate --flows` runs. Memory does not grow with the log (see the
/// module docs for the two JSON document formats); a malformed record stops the replay with
/// an error naming `file:line`.
pub fn replay_reader(
    intent: &Intent,
    plan: &Plan,
    file: &str,
    format: FlowFormat,
    reader: impl BufRead,
) -> Result<Replay, Error> {
    let mut rp = Replayer::new(intent, plan, file, format)?;
    let skipped = read_records(format, file, reader, |r| rp.record(r))?;
    Ok(rp.finish(skipped))
}

/// Replay an already parsed log (see [`replay_reader`]).
pub fn replay(
    intent: &Intent,
    plan: &Plan,
    file: &str,
    format: FlowFormat,
    log: &FlowLog,
) -> Result<Replay, Error> {
    let mut rp = Replayer::new(intent, plan, file, format)?;
    for r in &log.records {
        rp.record(r)?;
    }
    Ok(rp.finish(log.skipped.clone()))
}

/// The finding for a record the intent and the rules judge apart, naming the deciding native
/// rule and the intent's flows (the oracle and evaluator run again here, for the few records
/// shown, to name them).
#[allow(clippy::too_many_arguments)]
pub(super) fn mismatch_finding(
    intent: &DeploymentIntent,
    allowances: &[FlowIntent],
    policy: &EvalPolicy,
    file: &str,
    r: &FlowRecord,
    fwd: &Probe,
    o: &Judged,
    n: &Judged,
) -> Finding {
    let rev_of = |p: &Probe| -> Option<Probe> {
        let packet = if proto::has_ports(p.packet.proto) {
            Packet::ported(p.packet.proto, r.src_port?)
        } else {
            p.packet
        };
        Some(Probe {
            src: p.dst.clone(),
            dst: p.src.clone(),
            packet,
        })
    };
    let ov: OracleVerdict = if o.as_reply {
        rev_of(fwd)
            .map(|p| judge(intent, allowances, &p))
            .unwrap_or_else(|| judge(intent, allowances, fwd))
    } else {
        judge(intent, allowances, fwd)
    };
    let nv_probe = if n.as_reply {
        rev_of(fwd).unwrap_or_else(|| fwd.clone())
    } else {
        fwd.clone()
    };
    let nv = policy.evaluate(&nv_probe);
    let rule = nv.deciding().and_then(|d| d.rule).map(|i| &policy.rules[i]);
    let rule_text = match rule {
        Some(x) => format!(
            "rule `{}`{}{}",
            x.id,
            if x.managed { "" } else { " (unmanaged)" },
            x.flow
                .as_ref()
                .map(|f| format!(" from flow `{f}`"))
                .unwrap_or_default()
        ),
        None => "the cloud's default (no rule matched)".into(),
    };
    let why = if ov.flows.is_empty() {
        ov.reason.clone()
    } else {
        format!("{} ({})", ov.reason, ov.flows.join(", "))
    };
    Finding {
        kind: FindingKind::Mismatch,
        deployment: intent.deployment.clone(),
        provider: Some(intent.provider),
        flow: ov
            .flows
            .first()
            .cloned()
            .or_else(|| rule.and_then(|x| x.flow.clone())),
        message: format!(
            "{file}:{}: flow-log record {fwd}: intent says {}{} [{why}], {} says {}{} by {rule_text}",
            r.line,
            word(o.allowed),
            if o.as_reply { " (as a reply)" } else { "" },
            intent.provider,
            word(n.allowed),
            if n.as_reply { " (as a reply)" } else { "" },
        ),
    }
}
