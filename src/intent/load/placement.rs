//! Deployments and where they live on each cloud: placement blocks, the address books they
//! declare, and configured cloud quotas.

use super::yaml::{kind_of, Cx};
use super::RawDeployment;
use crate::intent::model::Placement;
use intentwall_contract::placement::PlacementSchema;
use intentwall_contract::quota;
use intentwall_contract::{AddrSet, ProviderKind};
use ipnet::IpNet;
use marked_yaml::types::MarkedScalarNode;
use marked_yaml::Node;
use std::collections::BTreeMap;

impl Cx<'_> {
    pub(super) fn deployment(&mut self, k: &MarkedScalarNode, v: &Node) -> Option<RawDeployment> {
        let name = self.name(k, "deployment");
        let what = format!("deployment `{}`", name.v);
        let m = self.map(v, &what)?;
        self.check_keys(m, &ProviderKind::ALL.map(ProviderKind::as_str), &what);
        let mut clouds = BTreeMap::new();
        for (ck, cv) in m.iter() {
            let Some(kind) = ProviderKind::parse(ck.as_str()) else {
                continue;
            };
            if let Some(p) = self.placement(kind, &name.v, cv) {
                clouds.insert(kind, p);
            }
        }
        if m.is_empty() {
            self.err(
                name.loc.clone(),
                format!(
                    "{what} has no placement (give at least one of {})",
                    ProviderKind::ALL.map(ProviderKind::as_str).join(", ")
                ),
            );
        }
        Some(RawDeployment { name, clouds })
    }

    pub(super) fn placement(
        &mut self,
        kind: ProviderKind,
        dep: &str,
        n: &Node,
    ) -> Option<Placement> {
        let what = format!("the {kind} placement of deployment `{dep}`");
        let schema = match crate::backend::placement_schema(kind) {
            Ok(s) => s,
            Err(e) => {
                self.err(self.loc(n.span()), format!("{what}: {e}"));
                return None;
            }
        };
        let (required, optional, v4, v6) =
            (schema.required, schema.optional, schema.cidr, schema.cidr6);
        let m = self.map(n, &what)?;
        // the address books a placement may declare, so rules naming them are known
        let books = schema.address_books;
        let allowed: Vec<&str> = required
            .iter()
            .chain(optional)
            .chain(&["quotas"])
            .chain(books)
            .copied()
            .collect();
        self.check_keys(m, &allowed, &what);
        let loc = self.loc(n.span());
        let mut ok = true;
        for r in required {
            if m.get_node(r).is_none() {
                self.err(loc.clone(), format!("{what} is missing `{r}`"));
                ok = false;
            }
        }
        let mut settings = BTreeMap::new();
        let mut space = AddrSet::empty();
        for (k, v) in m.iter() {
            if !allowed.contains(&k.as_str()) {
                continue;
            }
            if k.as_str() == "quotas" {
                // a bad quota is reported where it is written; the placement itself stays,
                // so no follow-on "has no placement" errors bury it
                self.quotas(kind, v, &what, &mut settings);
                continue;
            }
            if books.contains(&k.as_str()) {
                self.address_book(schema, k.as_str(), v, &what, &mut settings);
                continue;
            }
            let Some(t) = self.text(v, &format!("`{}` of {what}", k.as_str())) else {
                ok = false;
                continue;
            };
            if k.as_str() == v4 || k.as_str() == v6 {
                match self.cidr(&t) {
                    Some(net) => {
                        let want_v6 = k.as_str() == v6;
                        if matches!(net, IpNet::V6(_)) != want_v6 {
                            self.err(
                                t.loc.clone(),
                                format!(
                                    "`{}` must be an {} range, found `{}`",
                                    k.as_str(),
                                    if want_v6 { "IPv6" } else { "IPv4" },
                                    t.v
                                ),
                            );
                            ok = false;
                        }
                        space = space.union(&AddrSet::from_net(net));
                    }
                    None => ok = false,
                }
            }
            if k.as_str() == "load_balancer_probes" && !matches!(t.v.as_str(), "allow" | "deny") {
                self.err(
                    t.loc.clone(),
                    format!(
                        "`load_balancer_probes` must be `allow` or `deny`, found `{}`",
                        t.v
                    ),
                );
                ok = false;
            }
            if let Err(why) = (schema.check)(k.as_str(), &t.v) {
                let q = crate::intent::names::quote(&t.v);
                self.err(
                    t.loc.clone(),
                    format!("`{}` of {what} is {q}: {why}", k.as_str()),
                );
                ok = false;
            }
            settings.insert(k.as_str().to_string(), t.v);
        }
        ok.then_some(Placement {
            settings,
            space,
            loc,
        })
    }

    /// An address book of a placement (named sets of CIDRs the cloud's rules may reference):
    /// what each named entry holds, so rules naming it are judged exactly instead of being
    /// unverifiable. Each entry goes to `settings` as `<book>.<name>` = comma-joined CIDRs.
    pub(super) fn address_book(
        &mut self,
        schema: &PlacementSchema,
        book: &str,
        n: &Node,
        what: &str,
        settings: &mut BTreeMap<String, String>,
    ) {
        let what = format!("`{book}` of {what}");
        let Some(m) = self.map(n, &what) else {
            return;
        };
        for (k, v) in m.iter() {
            let name = k.as_str();
            // the cloud's plugin knows what its address books' names look like
            if let Err(why) = (schema.check)(book, name) {
                let loc = self.loc(k.span());
                let q = crate::intent::names::quote(name);
                self.err(loc, format!("{what}: {q} {why}"));
                continue;
            }
            let entry = format!("`{name}` in {what}");
            if let Some(set) = self.cidr_set(v, &entry) {
                settings.insert(format!("{book}.{name}"), set.to_strings().join(","));
            }
        }
    }

    /// `quotas:` of a placement: known keys of this cloud, each a whole number from 1 to the
    /// cloud's maximum, written unquoted. Valid values go to `settings` as `quotas.<key>`.
    pub(super) fn quotas(
        &mut self,
        kind: ProviderKind,
        n: &Node,
        what: &str,
        settings: &mut BTreeMap<String, String>,
    ) {
        let what = format!("`quotas` of {what}");
        // `quotas:` with nothing is no quota; anything else but a mapping is reported by `map`
        let Some(m) = self.map(n, &what) else {
            return;
        };
        let keys: Vec<&str> = quota::specs(kind).iter().map(|s| s.key).collect();
        self.check_keys(m, &keys, &what);
        for (k, v) in m.iter() {
            let Some(spec) = quota::spec(kind, k.as_str()) else {
                continue;
            };
            let loc = self.loc(v.span());
            match v.as_scalar() {
                Some(s) if s.may_coerce() => match quota::validate(spec, s.as_str()) {
                    Ok(n) => {
                        settings.insert(format!("{}{}", quota::SETTING_PREFIX, spec.key), n.to_string());
                    }
                    Err(e) => self.err(loc, e),
                },
                Some(s) => self.err(
                    loc,
                    format!(
                        "quota `{}` must be a whole number, found the text \"{}\" (write it without quotes)",
                        spec.key,
                        s.as_str()
                    ),
                ),
                None => self.err(
                    loc,
                    format!("quota `{}` must be a whole number, found {}", spec.key, kind_of(v)),
                ),
            }
        }
    }
}
