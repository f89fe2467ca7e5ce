//! Flows, their guardrail exceptions, and expectations (the intent's security unit tests).

use super::yaml::Cx;
use super::{RawExpect, RawFlow, Sp};
use crate::intent::model::Exception;
use intentwall_contract::Action;
use marked_yaml::Node;

impl Cx<'_> {
    pub(super) fn flow(&mut self, n: &Node) -> Option<RawFlow> {
        let m = self.map(n, "a flow")?;
        let loc = self.loc(n.span());
        self.check_keys(
            m,
            &[
                "name",
                "description",
                "action",
                "from",
                "to",
                "services",
                "deployments",
                "guardrail",
                "exception",
            ],
            "a flow",
        );
        let Some(name) = m.get_node("name").and_then(|v| self.text(v, "flow `name`")) else {
            if m.get_node("name").is_none() {
                self.err(loc, "a flow needs a `name`");
            }
            return None;
        };
        self.check_name(&name, "flow");
        let what = format!("flow `{}`", name.v);
        let mut f = RawFlow {
            name,
            action: Action::Allow,
            from: None,
            to: None,
            services: Vec::new(),
            deployments: None,
            guardrail: false,
            exception: None,
            loc: loc.clone(),
        };
        for (key, val) in m.iter() {
            match key.as_str() {
                "description" => {
                    self.text(val, &format!("`description` of {what}"));
                }
                "action" => {
                    f.action = self
                        .action(val, &format!("`action` of {what}"))
                        .unwrap_or(Action::Allow)
                }
                "from" => f.from = self.text(val, &format!("`from` of {what}")),
                "to" => f.to = self.text(val, &format!("`to` of {what}")),
                "services" => f.services = self.str_list(val, &format!("`services` of {what}")),
                "deployments" => {
                    f.deployments = Some(self.str_list(val, &format!("`deployments` of {what}")))
                }
                "guardrail" => {
                    f.guardrail = self
                        .boolean(val, &format!("`guardrail` of {what}"))
                        .unwrap_or(false)
                }
                "exception" => f.exception = self.exception(val, &what),
                _ => {}
            }
        }
        for (k, present) in [
            ("from", m.get_node("from").is_some()),
            ("to", m.get_node("to").is_some()),
            ("services", m.get_node("services").is_some()),
        ] {
            if !present {
                self.err(f.name.loc.clone(), format!("{what} needs `{k}`"));
            }
        }
        if m.get_node("services").is_some() && f.services.is_empty() {
            self.err(
                self.key_loc(m, "services"),
                format!("{what} has an empty `services` list (write `any` for all traffic)"),
            );
        }
        Some(f)
    }

    pub(super) fn exception(&mut self, n: &Node, what: &str) -> Option<Sp<Exception>> {
        let w = format!("the exception of {what}");
        let m = self.map(n, &w)?;
        self.check_keys(m, &["reason", "expires"], &w);
        let loc = self.loc(n.span());
        let reason = match m.get_node("reason") {
            Some(r) => self.text(r, &format!("`reason` of {w}")).map(|t| t.v),
            None => {
                self.err(loc.clone(), format!("{w} needs a `reason`"));
                None
            }
        };
        let expires = match m.get_node("expires") {
            Some(e) => {
                let t = self.text(e, &format!("`expires` of {w}"))?;
                let fmt = time::macros::format_description!("[year]-[month]-[day]");
                match time::Date::parse(&t.v, &fmt) {
                    Ok(d) => Some(Sp { v: d, loc: t.loc }),
                    Err(_) => {
                        self.err(
                            t.loc,
                            format!(
                                "`expires` of {w} must be a date YYYY-MM-DD, found `{}`",
                                t.v
                            ),
                        );
                        None
                    }
                }
            }
            None => {
                self.err(
                    loc.clone(),
                    format!(
                        "{w} needs an `expires` date (YYYY-MM-DD); exceptions cannot be permanent"
                    ),
                );
                None
            }
        };
        let (reason, expires) = (reason?, expires?);
        Some(Sp {
            v: Exception {
                reason,
                expires: expires.v,
                at: expires.loc.clone(),
                expired: false,
            },
            loc: expires.loc,
        })
    }

    pub(super) fn expect(&mut self, n: &Node) -> Option<RawExpect> {
        let m = self.map(n, "an expectation")?;
        let loc = self.loc(n.span());
        self.check_keys(
            m,
            &["from", "to", "service", "verdict", "description"],
            "an expectation",
        );
        let mut get = |k: &str| -> Option<Sp<String>> {
            match m.get_node(k) {
                Some(v) => self.text(v, &format!("`{k}` of an expectation")),
                None => {
                    self.err(loc.clone(), format!("an expectation needs `{k}`"));
                    None
                }
            }
        };
        let from = get("from");
        let to = get("to");
        let service = get("service");
        let verdict = match m.get_node("verdict") {
            Some(v) => self.action(v, "`verdict` of an expectation"),
            None => {
                self.err(
                    loc.clone(),
                    "an expectation needs `verdict` (allow or deny)",
                );
                None
            }
        };
        if let Some(d) = m.get_node("description") {
            self.text(d, "`description` of an expectation");
        }
        Some(RawExpect {
            from: from?,
            to: to?,
            service: service?,
            verdict: verdict?,
            loc,
        })
    }
}
