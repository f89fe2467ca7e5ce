//! The flow-log formats `simulate --flows` reads, one per cloud plus a neutral CSV: the flag's
//! values, which cloud a format's records come from, and the default format for a file. The
//! parsers themselves live in the providers' crates (dispatched by [`super::read_flow_log`]).

use intentwall_contract::ProviderKind;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Read;
use std::path::Path;

/// Flow-log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FlowFormat {
    /// AWS VPC Flow Logs, default (v2) text format.
    AwsVpc,
    /// Azure NSG flow logs (JSON, version 1 or 2).
    AzureNsg,
    /// GCP VPC flow logs / firewall logs, exported JSON lines or a JSON array.
    Gcp,
    /// `deployment,provider,src,dst,protocol,port[,icmp_type,icmp_code,expected]`.
    Csv,
}

impl FlowFormat {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowFormat::AwsVpc => "aws-vpc",
            FlowFormat::AzureNsg => "azure-nsg",
            FlowFormat::Gcp => "gcp",
            FlowFormat::Csv => "csv",
        }
    }

    /// The cloud whose logs these are (`None`: CSV says per record).
    pub fn cloud(self) -> Option<ProviderKind> {
        match self {
            FlowFormat::AwsVpc => Some(ProviderKind::Aws),
            FlowFormat::AzureNsg => Some(ProviderKind::Azure),
            FlowFormat::Gcp => Some(ProviderKind::Gcp),
            FlowFormat::Csv => None,
        }
    }

    /// The default for a file: `.csv` is CSV; `.json` / `.jsonl` is Azure when it holds
    /// `flowTuples`, else GCP; anything else is AWS VPC text.
    pub fn infer(path: &Path, text: &str) -> FlowFormat {
        Self::by_extension(path, || azure_mark().is_some_and(|m| text.contains(m)))
    }

    /// [`FlowFormat::infer`] for a file on disk, reading it (in chunks, only for `.json` and
    /// the like) rather than holding it.
    pub fn infer_file(path: &Path) -> std::io::Result<FlowFormat> {
        let mut found = Ok(false);
        let f = Self::by_extension(path, || {
            let Some(mark) = azure_mark() else {
                return false;
            };
            found = std::fs::File::open(path).and_then(|f| contains(f, mark.as_bytes()));
            matches!(found, Ok(true))
        });
        found.map(|_| f)
    }

    fn by_extension(path: &Path, azure: impl FnOnce() -> bool) -> FlowFormat {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase());
        match ext.as_deref() {
            Some("csv") => FlowFormat::Csv,
            Some("json") | Some("jsonl") | Some("ndjson") => {
                if azure() {
                    FlowFormat::AzureNsg
                } else {
                    FlowFormat::Gcp
                }
            }
            _ => FlowFormat::AwsVpc,
        }
    }
}

/// What only an Azure NSG flow log holds, when this binary reads them (else no JSON log is
/// taken for one).
fn azure_mark() -> Option<&'static str> {
    crate::backend::flow_log_mark(ProviderKind::Azure)
}

/// Does a stream hold `needle`? Reads 64 KiB at a time, keeping the chunks' overlap.
fn contains(mut r: impl Read, needle: &[u8]) -> std::io::Result<bool> {
    let mut buf = vec![0u8; 64 * 1024 + needle.len()];
    let mut kept = 0;
    loop {
        let n = match r.read(&mut buf[kept..]) {
            Ok(0) => return Ok(false),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let have = kept + n;
        if buf[..have].windows(needle.len()).any(|w| w == needle) {
            return Ok(true);
        }
        kept = (needle.len() - 1).min(have);
        buf.copy_within(have - kept..have, 0);
    }
}

impl fmt::Display for FlowFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Azure NSG blob holds `flowTuples`; no other JSON log does.
    #[cfg(feature = "azure")]
    const AZURE: &str =
        "{\"records\":[{\"properties\":{\"flows\":[{\"flows\":[{\"flowTuples\":[]}]}]}}]}";

    #[cfg(feature = "azure")]
    #[test]
    fn formats_are_inferred_from_extension_and_content() {
        assert_eq!(FlowFormat::infer(Path::new("x.csv"), ""), FlowFormat::Csv);
        assert_eq!(
            FlowFormat::infer(Path::new("x.json"), AZURE),
            FlowFormat::AzureNsg
        );
        assert_eq!(
            FlowFormat::infer(Path::new("x.jsonl"), "{\"jsonPayload\":{}}"),
            FlowFormat::Gcp
        );
        assert_eq!(
            FlowFormat::infer(Path::new("flows.log"), ""),
            FlowFormat::AwsVpc
        );
    }

    #[cfg(feature = "azure")]
    #[test]
    fn infer_file_finds_azure_past_the_first_chunk() {
        let azure_mark = intentwall_azure::flowlog::MARK;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.json");
        let mut text = format!("{{\"records\":[{{\"pad\":\"{}\",", "x".repeat(200_000));
        text.push_str("\"properties\":{\"flows\":[{\"flows\":[{\"flowTuples\":[]}]}]}}]}");
        std::fs::write(&p, &text).unwrap();
        assert_eq!(FlowFormat::infer_file(&p).unwrap(), FlowFormat::AzureNsg);
        std::fs::write(&p, "{\"jsonPayload\":{}}\n").unwrap();
        assert_eq!(FlowFormat::infer_file(&p).unwrap(), FlowFormat::Gcp);
        // the needle split across two reads is still found
        for cut in 1..azure_mark.len() {
            let data = format!("{}{}", "y".repeat(64 * 1024 - cut), azure_mark);
            assert!(contains(data.as_bytes(), azure_mark.as_bytes()).unwrap());
        }
        assert!(FlowFormat::infer_file(Path::new("/no/such.json")).is_err());
    }
}
