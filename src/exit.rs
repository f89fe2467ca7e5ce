//! How a run ended, as the process exit code.

/// The outcome of a verb, mapped to the process exit code by [`ExitStatus::code`].
///
/// The codes are the command line's API: CI jobs and cron wrappers branch on them (2: open a
/// pull request with the plan; 3: page someone), so they never change meaning. 2 is not
/// clap's usage-error code on purpose: the binary maps usage errors to 1, so 2 always means
/// "changes planned".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// 0: success, nothing to change.
    Ok,
    /// 2: the plan has changes.
    Changes,
    /// 3: blocked by a finding (mismatch, failed expectation, guardrail, inexpressible
    /// intent, conflict), or a target refused or held at apply.
    Blocked,
    /// 1: bad input, usage, I/O or cloud error.
    Error,
}

impl ExitStatus {
    /// The process exit code: 0 ok, 1 error, 2 changes, 3 blocked.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Ok => 0,
            ExitStatus::Error => 1,
            ExitStatus::Changes => 2,
            ExitStatus::Blocked => 3,
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(s: ExitStatus) -> Self {
        std::process::ExitCode::from(s.code())
    }
}

#[cfg(test)]
mod tests {
    use super::ExitStatus;

    #[test]
    fn codes_are_the_cli_api() {
        let codes = [
            ExitStatus::Ok,
            ExitStatus::Error,
            ExitStatus::Changes,
            ExitStatus::Blocked,
        ]
        .map(ExitStatus::code);
        assert_eq!(codes, [0, 1, 2, 3]);
    }
}
