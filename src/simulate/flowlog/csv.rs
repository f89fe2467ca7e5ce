//! The neutral CSV flow-log format: `deployment,provider,src,dst,protocol,port` with
//! optional `icmp_type,icmp_code,expected`, parsed without allocating.

use super::*;

const CSV_REQUIRED: [&str; 6] = ["deployment", "provider", "src", "dst", "protocol", "port"];
const CSV_OPTIONAL: [&str; 3] = ["icmp_type", "icmp_code", "expected"];
const C_DEPLOYMENT: usize = 0;
const C_PROVIDER: usize = 1;
const C_SRC: usize = 2;
const C_DST: usize = 3;
const C_PROTOCOL: usize = 4;
const C_PORT: usize = 5;
const C_ICMP_TYPE: usize = 6;
const C_ICMP_CODE: usize = 7;
const C_EXPECTED: usize = 8;

/// CSV columns: how many, and for each the field it gives (index into the required columns
/// then the optional ones; the first column of a name gives it).
pub(super) struct CsvParser {
    pub(super) cols: Option<(usize, Vec<Option<usize>>)>,
}

impl LineFormat for CsvParser {
    fn line(
        &mut self,
        file: &str,
        line: usize,
        bytes: &[u8],
        _ascii: bool,
        rec: &mut FlowRecord,
        _skips: &mut Skips,
    ) -> Result<Step, Box<ParseError>> {
        let text = utf8(file, line, bytes)?;
        self.row(file, line, text, rec).map_err(Box::new)
    }

    /// A CSV log must have had its header.
    fn finish(&self, file: &str) -> Result<(), ParseError> {
        match self.cols {
            None => Err(ParseError::new(
                file,
                1,
                "header",
                format!("no header line ({})", CSV_REQUIRED.join(",")),
            )),
            Some(_) => Ok(()),
        }
    }
}

impl CsvParser {
    /// One line of text: the header first, then a row.
    fn row(
        &mut self,
        file: &str,
        line: usize,
        raw: &str,
        rec: &mut FlowRecord,
    ) -> Result<Step, ParseError> {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            return Ok(Step::Nothing);
        }
        let Some((width, role)) = &self.cols else {
            let names: Vec<String> = l
                .split(',')
                .map(|f| f.trim().to_ascii_lowercase())
                .collect();
            for n in &names {
                if !CSV_REQUIRED.contains(&n.as_str()) && !CSV_OPTIONAL.contains(&n.as_str()) {
                    return Err(ParseError::new(
                        file,
                        line,
                        "header",
                        format!(
                            "unknown column `{n}` (expected {} and optionally {})",
                            CSV_REQUIRED.join(","),
                            CSV_OPTIONAL.join(",")
                        ),
                    ));
                }
            }
            for need in CSV_REQUIRED {
                if !names.iter().any(|n| n == need) {
                    return Err(ParseError::new(
                        file,
                        line,
                        "header",
                        format!("missing column `{need}`"),
                    ));
                }
            }
            let role = (0..names.len())
                .map(|i| {
                    let n = names[i].as_str();
                    CSV_REQUIRED
                        .iter()
                        .chain(&CSV_OPTIONAL)
                        .position(|c| *c == n)
                        .filter(|_| !names[..i].iter().any(|m| m == n))
                })
                .collect();
            self.cols = Some((names.len(), role));
            return Ok(Step::Nothing);
        };
        let mut f: [&str; 9] = [""; 9];
        let mut n = 0;
        for (i, x) in l.split(',').enumerate() {
            if let Some(Some(r)) = role.get(i) {
                f[*r] = x.trim();
            }
            n += 1;
        }
        if n != *width {
            return Err(ParseError::new(
                file,
                line,
                "record",
                format!("{n} fields, expected {width}"),
            ));
        }
        let get = |c: usize| Some(f[c]).filter(|v| !v.is_empty());
        let src = parse_ip(file, line, "src", get(C_SRC).unwrap_or(""))?;
        let dst = parse_ip(file, line, "dst", get(C_DST).unwrap_or(""))?;
        let pt = get(C_PROTOCOL).unwrap_or("");
        let p = parse_protocol(pt).ok_or_else(|| {
            ParseError::new(
                file,
                line,
                "protocol",
                format!("`{pt}` is not a protocol name or number"),
            )
        })?;
        // the deployment's text goes into the previous record's string: no allocation
        let old = rec.deployment.take();
        let mut r = FlowRecord::new(line, src, dst, p);
        r.deployment = get(C_DEPLOYMENT).map(move |d| {
            let mut s = old.unwrap_or_default();
            s.clear();
            s.push_str(d);
            s
        });
        if let Some(pv) = get(C_PROVIDER) {
            r.provider = Some(
                ProviderKind::ALL
                    .into_iter()
                    .find(|k| k.as_str().eq_ignore_ascii_case(pv))
                    .ok_or_else(|| {
                        ParseError::new(
                            file,
                            line,
                            "provider",
                            format!("`{pv}` is not {}", crate::backend::cloud_names()),
                        )
                    })?,
            );
        }
        match get(C_PORT) {
            Some(x) if proto::has_ports(p) => r.dst_port = Some(parse_port(file, line, "port", x)?),
            None if proto::has_ports(p) => {
                return Err(ParseError::new(
                    file,
                    line,
                    "port",
                    format!("missing for {}", proto::name(p)),
                ))
            }
            Some(x) => {
                return Err(ParseError::new(
                    file,
                    line,
                    "port",
                    format!("`{x}` given, but {} has no ports", proto::name(p)),
                ))
            }
            None => {}
        }
        let num = |c: usize, n: &str| -> Result<Option<u8>, ParseError> {
            get(c)
                .map(|x| {
                    x.parse::<u8>()
                        .map_err(|_| ParseError::new(file, line, n, format!("`{x}` is not 0-255")))
                })
                .transpose()
        };
        r.icmp_type = num(C_ICMP_TYPE, "icmp_type")?;
        r.icmp_code = num(C_ICMP_CODE, "icmp_code")?;
        if (r.icmp_type.is_some() || r.icmp_code.is_some()) && !proto::is_icmp(p) {
            return Err(ParseError::new(
                file,
                line,
                "icmp_type",
                format!("given, but the protocol is {}", proto::name(p)),
            ));
        }
        if r.icmp_code.is_some() && r.icmp_type.is_none() {
            return Err(ParseError::new(
                file,
                line,
                "icmp_code",
                "given without icmp_type",
            ));
        }
        r.expected = match get(C_EXPECTED) {
            None => None,
            Some(x) if x.eq_ignore_ascii_case("allow") => Some(true),
            Some(x) if x.eq_ignore_ascii_case("deny") => Some(false),
            Some(x) => {
                return Err(ParseError::new(
                    file,
                    line,
                    "expected",
                    format!("`{}` is not allow or deny", x.to_ascii_lowercase()),
                ))
            }
        };
        *rec = r;
        Ok(Step::Record)
    }
}
