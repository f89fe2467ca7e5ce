//! What a cloud's placement of a deployment holds, declared by the cloud's plugin: the intent
//! loader reads placements through this, so the engine knows no cloud's settings.

/// The settings of one cloud's placement (`aws: {account, region, vpc, cidr}` ...).
#[derive(Debug, Clone, Copy)]
pub struct PlacementSchema {
    /// Settings a placement must give.
    pub required: &'static [&'static str],
    /// Settings it may give.
    pub optional: &'static [&'static str],
    /// The setting holding the placement's IPv4 address space.
    pub cidr: &'static str,
    /// The setting holding its IPv6 address space.
    pub cidr6: &'static str,
    /// Address books a placement may declare (named sets of CIDRs native rules may reference,
    /// such as AWS prefix lists), so rules naming them have a known match.
    pub address_books: &'static [&'static str],
    /// Settings a group may give for this cloud (`gcp: {service_account: ...}` on a group:
    /// how the cloud tells the group's members apart besides their addresses).
    pub group_settings: &'static [&'static str],
    /// `Err(what it must be)` unless a setting's value (of a placement or a group) is well
    /// formed; settings with no format of their own (the address spaces, checked as CIDRs by
    /// the loader) pass.
    pub check: fn(key: &str, value: &str) -> Result<(), String>,
}

/// Lowercase hexadecimal digits only.
pub fn lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `[a-z]([-a-z0-9]*[a-z0-9])?`, at most `max` characters (RFC 1035 labels, as several
/// clouds name resources).
pub fn rfc1035(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
