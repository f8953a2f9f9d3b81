//! Exit codes of `kvctl` and how errors are printed.
//!
//! - 0: success.
//! - 1: the key was not found, or a conditional write was not applied ([`Miss`]).
//! - 2: invalid usage or argument (clap, or `INVALID_ARGUMENT` / unknown keyspace from the server).
//! - 3: the cluster is unavailable, the connection failed or timed out, or a repair
//!   could not reach every replica: retrying may help.
//! - 4: any other error.
//! - 5: access denied: no or a bad token (`UNAUTHENTICATED`), a missing role
//!   (`PERMISSION_DENIED`), or the TLS handshake failed (CA, name, client
//!   certificate).

use std::io;

use ringkv_client::ClientError;

/// Exit status: key not found or write not applied.
pub const MISS: u8 = 1;
/// Exit status: invalid usage or argument.
pub const USAGE: u8 = 2;
/// Exit status: unavailable, connection failure, timeout.
pub const UNAVAILABLE: u8 = 3;
/// Exit status: any other error.
pub const OTHER: u8 = 4;
/// Exit status: access denied (token, role) or TLS refused.
pub const ACCESS_DENIED: u8 = 5;

/// An expected negative answer that scripts test for (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum Miss {
    /// The key has no live value.
    #[error("key {key:?} not found")]
    NotFound {
        /// The key, as given.
        key: String,
    },
    /// A compare-and-set's expectation did not hold.
    #[error("not applied: current version {version}")]
    CasNotApplied {
        /// The key's current version.
        version: u64,
    },
    /// `put --if-absent` found a live value.
    #[error("not applied: key {key:?} already has a value")]
    PutNotApplied {
        /// The key, as given.
        key: String,
    },
}

/// The exit status for an error.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<Miss>().is_some() {
        return MISS;
    }
    if error.downcast_ref::<super::repair::RepairIncomplete>().is_some() {
        return UNAVAILABLE;
    }
    match error.downcast_ref::<ClientError>() {
        Some(
            ClientError::InvalidEndpoint { .. }
            | ClientError::InvalidArgument { .. }
            | ClientError::NotFound { .. }
            | ClientError::TlsNotConfigured { .. }
            | ClientError::TlsFiles { .. }
            | ClientError::Token { .. },
        ) => USAGE,
        Some(ClientError::AccessDenied { .. } | ClientError::Tls { .. }) => ACCESS_DENIED,
        Some(
            ClientError::Connect { .. }
            | ClientError::Unavailable { .. }
            | ClientError::Timeout { .. }
            | ClientError::DeadlineExceeded { .. }
            | ClientError::ResourceExhausted { .. }
            | ClientError::Aborted { .. },
        ) => UNAVAILABLE,
        _ => OTHER,
    }
}

/// True when stdout's reader went away (e.g. `kvctl scan --all | head`).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| cause.downcast_ref::<io::Error>().is_some_and(|err| err.kind() == io::ErrorKind::BrokenPipe))
}

/// `error: <message>` followed by one `  caused by: <cause>` line per cause.
pub fn render_error(error: &anyhow::Error) -> String {
    let mut text = format!("error: {error}\n");
    let mut previous = error.to_string();
    for cause in error.chain().skip(1) {
        // Transport errors often repeat a layer's message ("tcp connect error").
        let cause = cause.to_string();
        if cause != previous {
            text.push_str(&format!("  caused by: {cause}\n"));
        }
        previous = cause;
    }
    text
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn misses_exit_1_with_the_contract_wording() {
        let error = anyhow::Error::new(Miss::NotFound { key: "k".into() });
        assert_eq!(exit_code(&error), MISS);
        assert_eq!(render_error(&error), "error: key \"k\" not found\n");
        let error = anyhow::Error::new(Miss::CasNotApplied { version: 7 });
        assert_eq!(render_error(&error), "error: not applied: current version 7\n");
    }

    #[test]
    fn client_errors_map_to_their_class() {
        let invalid = ClientError::InvalidArgument { rpc: "Put", message: "key too long".into() };
        assert_eq!(exit_code(&invalid.into()), USAGE);
        let timeout = ClientError::Timeout { rpc: "Get", endpoint: "a:1".into(), after: Duration::from_secs(1) };
        assert_eq!(exit_code(&timeout.into()), UNAVAILABLE);
        let internal = ClientError::Server { rpc: "Get", code: tonic::Code::Internal, message: "boom".into() };
        assert_eq!(exit_code(&internal.into()), OTHER);
        assert_eq!(exit_code(&anyhow::anyhow!("reading stdin failed")), OTHER);
        let denied = ClientError::AccessDenied { rpc: "Get", code: tonic::Code::Unauthenticated, message: "m".into() };
        assert_eq!(exit_code(&denied.into()), ACCESS_DENIED);
        let tls = ClientError::Tls { endpoint: "a:1".into(), problem: ringkv_client::TlsProblem::UnknownCa };
        assert_eq!(exit_code(&tls.into()), ACCESS_DENIED);
        let token = ClientError::from(ringkv_client::Token::new("x").expect_err("malformed"));
        assert_eq!(exit_code(&token.into()), USAGE);
    }

    #[test]
    fn causes_are_listed() {
        let error = anyhow::Error::new(io::Error::other("disk on fire")).context("reading the value from stdin");
        assert_eq!(render_error(&error), "error: reading the value from stdin\n  caused by: disk on fire\n");
        assert!(!is_broken_pipe(&error));
        assert!(is_broken_pipe(&io::Error::from(io::ErrorKind::BrokenPipe).into()));
    }
}
