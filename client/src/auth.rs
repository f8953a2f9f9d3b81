//! Bearer tokens: [`Token`] (a `<user>.<secret>` credential whose `Debug`
//! and `Display` never show the secret) and [`Authorization`], the tonic
//! interceptor that adds `authorization: Bearer <token>` to every call.
//!
//! Invariant: the secret leaves this module only as a sensitive gRPC
//! metadata value ([`Token::bearer`]) or, for RESP's `AUTH user secret`,
//! through [`Token::expose`]; errors say what is wrong, never the text.

use std::fmt;
use std::path::{Path, PathBuf};

use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Why a token could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token text is not `<user>.<secret>` in visible ASCII.
    #[error(
        "RKV-BAD-TOKEN: the token is malformed ({reason}); pass the token `kvctl user create` printed (USER.SECRET)"
    )]
    Malformed {
        /// What is wrong (never the token itself).
        reason: &'static str,
    },
    /// The token file could not be read.
    #[error("RKV-TOKEN-FILE: cannot read the token file {path}: {source}; check that it exists and is readable")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A bearer token `<user>.<secret>`. `Debug` and `Display` show the user only.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Validates the shape of `text` (surrounding whitespace is ignored);
    /// the server checks the rest.
    pub fn new(text: &str) -> Result<Self, TokenError> {
        let text = text.trim();
        let malformed = |reason| TokenError::Malformed { reason };
        if text.is_empty() {
            return Err(malformed("it is empty"));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(malformed("it holds spaces, control or non-ASCII characters"));
        }
        match text.split_once('.') {
            Some((user, secret)) if !user.is_empty() && !secret.is_empty() => Ok(Self(text.to_owned())),
            _ => Err(malformed("it is not USER.SECRET")),
        }
    }

    /// Reads a token from a file (one line; a trailing newline is fine).
    pub fn from_file(path: &Path) -> Result<Self, TokenError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| TokenError::Unreadable { path: path.into(), source })?;
        Self::new(&text)
    }

    /// The user the token names.
    pub fn user(&self) -> &str {
        self.0.split_once('.').map_or("", |(user, _)| user)
    }

    /// The whole token text, for protocols that send it themselves (RESP
    /// `AUTH user secret`, HTTP `Authorization`). Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `Bearer <token>` as a metadata value marked sensitive (hidden from
    /// the `http` crate's `Debug`).
    pub fn bearer(&self) -> AsciiMetadataValue {
        // `new` admits visible ASCII only, which is always a valid value.
        let mut value = MetadataValue::try_from(format!("Bearer {}", self.0))
            .unwrap_or_else(|_| MetadataValue::from_static("Bearer invalid"));
        value.set_sensitive(true);
        value
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}.<redacted>)", self.user())
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.<redacted>", self.user())
    }
}

/// The interceptor of every client call: adds `authorization: Bearer
/// <token>` when a token is configured, else passes the request through.
#[derive(Clone, Default)]
pub struct Authorization {
    bearer: Option<AsciiMetadataValue>,
    user: Option<String>,
}

impl Authorization {
    /// The interceptor for `token` (`None`: no metadata is added).
    pub fn new(token: Option<&Token>) -> Self {
        Self { bearer: token.map(Token::bearer), user: token.map(|t| t.user().to_owned()) }
    }
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.user {
            Some(user) => write!(f, "Authorization(Bearer {user}.<redacted>)"),
            None => f.write_str("Authorization(none)"),
        }
    }
}

impl Interceptor for Authorization {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(bearer) = &self.bearer {
            request.metadata_mut().insert("authorization", bearer.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-value_XYZ";

    fn token() -> Token {
        Token::new(&format!(" alice.{SECRET}\n")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn debug_display_and_interceptor_debug_never_show_the_secret() {
        let token = token();
        let mut intercept = Authorization::new(Some(&token));
        let request = intercept.call(Request::new(())).unwrap_or_else(|e| panic!("{e}"));
        let texts = [
            format!("{token:?}"),
            format!("{token}"),
            format!("{intercept:?}"),
            format!("{:?}", token.bearer()),
            format!("{:?}", request.metadata()),
        ];
        for text in texts {
            assert!(!text.contains(SECRET), "secret leaked: {text}");
        }
        assert_eq!(format!("{token:?}"), "Token(alice.<redacted>)");
        let sent = request.metadata().get("authorization").map(|v| v.to_str().unwrap_or_default().to_owned());
        assert_eq!(sent.as_deref(), Some(format!("Bearer alice.{SECRET}").as_str()));
    }

    #[test]
    fn no_token_adds_no_metadata() {
        let mut intercept = Authorization::new(None);
        let request = intercept.call(Request::new(())).unwrap_or_else(|e| panic!("{e}"));
        assert!(request.metadata().get("authorization").is_none());
    }

    #[test]
    fn malformed_tokens_are_refused_without_echoing_them() {
        for bad in ["", "   ", "nodot", ".secret", "user.", "us er.x", "user.sec\u{e9}ret"] {
            let err = Token::new(bad).expect_err(bad);
            let text = err.to_string();
            assert!(text.starts_with("RKV-BAD-TOKEN"), "{text}");
            assert!(bad.trim().len() < 3 || !text.contains(bad.trim()), "{text}");
        }
    }

    #[test]
    fn token_files_are_trimmed_and_missing_files_named() {
        let dir = std::env::temp_dir().join(format!("ringkv-token-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("token");
        std::fs::write(&file, format!("alice.{SECRET}\n")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Token::from_file(&file).unwrap_or_else(|e| panic!("{e}")), token());
        let missing = dir.join("missing");
        let err = Token::from_file(&missing).expect_err("missing file");
        assert!(err.to_string().contains("missing"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
