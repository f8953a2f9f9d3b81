//! kvctl's connection flags: `--tls-ca`, `--tls-cert`, `--tls-key`,
//! `--token`, `--token-file` (and their env vars), turned into a
//! [`ConnectionConfig`]; and [`parse_cli`], which parses the command line
//! remembering where the token came from.
//!
//! Token precedence: `--token` on the command line, then `--token-file`,
//! then `RINGKV_TOKEN`. Giving both `--token` and `--token-file` is an error.
//! The token's value is never printed (clap shows no env values for it).

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::bail;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory as _, FromArgMatches as _};
use ringkv_client::tls::ClientTlsFiles;
use ringkv_client::{ClientError, ConnectionConfig, Token};

use super::args::Cli;

/// The TLS and token flags (global: they may follow the subcommand).
#[derive(Debug, Default, Args)]
pub struct ConnectionArgs {
    /// CA certificate (PEM) that signed the nodes' certificates; needed
    /// for https:// endpoints.
    #[arg(long, global = true, env = "RINGKV_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for nodes that require one (mutual TLS).
    #[arg(long, global = true, env = "RINGKV_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, global = true, env = "RINGKV_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Bearer token USER.SECRET sent with every request (see `kvctl user create`).
    #[arg(long, global = true, env = "RINGKV_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Read the bearer token from this file (overrides RINGKV_TOKEN).
    #[arg(long, global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Whether `token` came from RINGKV_TOKEN rather than the command line
    /// (set by [`parse_cli`]).
    #[arg(skip)]
    pub token_from_env: bool,
}

impl ConnectionArgs {
    /// The connection to `endpoint` these flags describe.
    pub fn config(&self, endpoint: &str) -> anyhow::Result<ConnectionConfig> {
        let mut config = ConnectionConfig::new(endpoint);
        match &self.tls_ca {
            Some(ca) => {
                config = config.with_tls(ClientTlsFiles {
                    ca_file: ca.clone(),
                    cert_file: self.tls_cert.clone(),
                    key_file: self.tls_key.clone(),
                });
            }
            None if self.tls_cert.is_some() => {
                bail!("--tls-cert needs --tls-ca (RINGKV_TLS_CA): the CA that signed the nodes' certificates")
            }
            None => {}
        }
        if let Some(token) = self.token()? {
            config = config.with_token(token);
        }
        Ok(config)
    }

    /// The token, by precedence: `--token`, `--token-file`, `RINGKV_TOKEN`.
    /// A bad token is a [`ClientError::Token`] (exit status 2).
    fn token(&self) -> anyhow::Result<Option<Token>> {
        let from_flag = self.token.as_deref().filter(|_| !self.token_from_env);
        let from_env = self.token.as_deref().filter(|_| self.token_from_env);
        match (from_flag, &self.token_file, from_env) {
            (Some(_), Some(_), _) => bail!("give either --token or --token-file, not both"),
            (Some(text), None, _) => Ok(Some(Token::new(text).map_err(ClientError::from)?)),
            (None, Some(file), _) => Ok(Some(Token::from_file(file).map_err(ClientError::from)?)),
            (None, None, Some(text)) => Ok(Some(Token::new(text).map_err(ClientError::from)?)),
            (None, None, None) => Ok(None),
        }
    }
}

/// Parses `argv` like `Cli::try_parse_from`, also recording whether the
/// token came from the environment.
pub fn parse_cli<I, T>(argv: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = Cli::command().try_get_matches_from(argv)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    // Global args are propagated to the top level, wherever they were given.
    cli.connection.token_from_env = matches.value_source("token") == Some(ValueSource::EnvVariable);
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(token: Option<&str>, from_env: bool, file: Option<PathBuf>) -> ConnectionArgs {
        ConnectionArgs {
            token: token.map(str::to_owned),
            token_from_env: from_env,
            token_file: file,
            ..Default::default()
        }
    }

    fn user(args: &ConnectionArgs) -> Option<String> {
        let config = args.config("a:1").unwrap_or_else(|e| panic!("{e}"));
        config.token.map(|t| t.user().to_owned())
    }

    #[test]
    fn flag_beats_file_beats_env() {
        let dir = std::env::temp_dir().join(format!("kvctl-token-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("token");
        std::fs::write(&file, "fromfile.s3cret\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(user(&args(Some("flag.x"), false, None)), Some("flag".into()));
        assert_eq!(user(&args(Some("env.x"), true, Some(file.clone()))), Some("fromfile".into()));
        assert_eq!(user(&args(Some("env.x"), true, None)), Some("env".into()));
        assert_eq!(user(&args(None, false, None)), None);
        let both = args(Some("flag.x"), false, Some(file)).config("a:1").expect_err("both");
        assert!(both.to_string().contains("not both"), "{both}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn flags_parse_after_the_subcommand_and_build_tls_files() {
        let argv =
            ["kvctl", "get", "k", "--tls-ca", "ca.pem", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--token", "a.b"];
        let cli = parse_cli(argv).unwrap_or_else(|e| panic!("{e}"));
        assert!(!cli.connection.token_from_env);
        let config = cli.connection.config("https://n:1").unwrap_or_else(|e| panic!("{e}"));
        let tls = config.tls.unwrap_or_else(|| panic!("tls files"));
        assert_eq!(
            (tls.ca_file, tls.cert_file, tls.key_file),
            ("ca.pem".into(), Some("c.pem".into()), Some("k.pem".into()))
        );
        let missing_key = parse_cli(["kvctl", "--tls-ca", "a", "--tls-cert", "c.pem", "status"]).err();
        assert_eq!(missing_key.map(|e| e.kind()), Some(clap::error::ErrorKind::MissingRequiredArgument));
    }

    #[test]
    fn a_bad_token_is_refused_without_echoing_it() {
        let err = args(Some("no-dot-secret"), false, None).config("a:1").expect_err("malformed");
        assert!(err.to_string().contains("RKV-BAD-TOKEN") && !err.to_string().contains("no-dot-secret"), "{err}");
    }
}
