//! `Secret`: a configured credential (bearer token, password, Sentry client secret, URL token,
//! webhook URL) that never shows up in logs, errors or `Debug` output, and its loading from a
//! `*_file` path or a `${ENV_VAR}` reference.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::io_reason;

/// Largest secret file read. Secrets are short; the cap keeps a mistaken path (a log file,
/// `/dev/zero`) from being read without end.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// A secret value. `Debug` and `Display` print `<redacted>`; the value is reachable only through
/// `expose`, so every use of it is visible in the code. Deliberately not `PartialEq`: comparing
/// secrets must be constant-time (see `auth`).
#[derive(Clone)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A secret read straight from a config file's text (an inline value), so the raw value never
/// sits in a `Debug`-printing `String`.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a secret could not be loaded. Messages name the file or variable, never the value (nor
/// a malformed reference, which might be a mistyped secret).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be opened or read.
    #[error("read secret file {}: {}", path.display(), io_reason(source))]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file holds nothing but newlines.
    #[error("secret file {} is empty", path.display())]
    EmptyFile { path: PathBuf },
    /// The file is larger than `MAX_SECRET_FILE_BYTES`.
    #[error("secret file {} is larger than {MAX_SECRET_FILE_BYTES} bytes", path.display())]
    FileTooLarge { path: PathBuf },
    /// The file is not UTF-8 text.
    #[error("secret file {} is not valid utf-8", path.display())]
    FileNotUtf8 { path: PathBuf },
    /// `${NAME}` names a variable that is not set.
    #[error("environment variable {name} is not set")]
    EnvUnset { name: String },
    /// `${NAME}` names an empty variable.
    #[error("environment variable {name} is empty")]
    EnvEmpty { name: String },
    /// `${NAME}` names a variable whose value is not UTF-8.
    #[error("environment variable {name} is not valid utf-8")]
    EnvNotUtf8 { name: String },
    /// A value starting with `${` that is not a well-formed reference.
    #[error(
        "malformed environment variable reference: expected ${{NAME}} with NAME made of \
         ascii letters, digits and underscores, not starting with a digit"
    )]
    BadReference,
    /// An inline value that is empty.
    #[error("secret is empty")]
    Empty,
}

impl Secret {
    /// Wraps a value (for tests and values already loaded).
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself. Call only where it is used (comparison, an outgoing request).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads a secret from a file (`bearer_token_file`, `client_secret_file`, ...): the whole
    /// file, minus trailing newlines (`echo token > file` and editors add one).
    pub fn from_file(path: &Path) -> Result<Secret, SecretError> {
        let read_err = |source| SecretError::Read {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mut bytes = Vec::new();
        file.take(MAX_SECRET_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
            return Err(SecretError::FileTooLarge {
                path: path.to_owned(),
            });
        }
        let mut text = String::from_utf8(bytes).map_err(|_| SecretError::FileNotUtf8 {
            path: path.to_owned(),
        })?;
        let len = text.trim_end_matches(['\n', '\r']).len();
        text.truncate(len);
        if text.is_empty() {
            return Err(SecretError::EmptyFile {
                path: path.to_owned(),
            });
        }
        Ok(Secret(text))
    }

    /// Resolves a secret written inline in the config: `${NAME}` reads environment variable
    /// NAME; anything else is the value itself. A value starting with `${` that is not a
    /// well-formed reference is an error rather than a literal, so a typo in a reference is
    /// caught instead of becoming the secret.
    pub fn resolve(value: &str) -> Result<Secret, SecretError> {
        Self::resolve_with(value, |name| std::env::var_os(name))
    }

    /// `resolve` with the environment lookup supplied (tests use a map instead of mutating the
    /// process environment, which other threads read concurrently).
    pub fn resolve_with(
        value: &str,
        lookup: impl FnOnce(&str) -> Option<OsString>,
    ) -> Result<Secret, SecretError> {
        let Some(rest) = value.strip_prefix("${") else {
            if value.is_empty() {
                return Err(SecretError::Empty);
            }
            return Ok(Secret(value.to_owned()));
        };
        let name = rest.strip_suffix('}').ok_or(SecretError::BadReference)?;
        if !is_env_name(name) {
            return Err(SecretError::BadReference);
        }
        let raw = lookup(name).ok_or_else(|| SecretError::EnvUnset {
            name: name.to_owned(),
        })?;
        let text = raw.into_string().map_err(|_| SecretError::EnvNotUtf8 {
            name: name.to_owned(),
        })?;
        if text.is_empty() {
            return Err(SecretError::EnvEmpty {
                name: name.to_owned(),
            });
        }
        Ok(Secret(text))
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`: what shells accept as a variable name.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(<redacted>)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn file_loading_trims_trailing_newlines_only() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("beacon-secret-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("token");
        std::fs::write(&path, " s3cret \r\n\n")?;
        assert_eq!(Secret::from_file(&path)?.expose(), " s3cret ");

        std::fs::write(&path, "\n")?;
        let err = Secret::from_file(&path).err().map(|e| e.to_string());
        assert_eq!(
            err,
            Some(format!("secret file {} is empty", path.display()))
        );

        std::fs::write(&path, b"\xffpass")?;
        let err = Secret::from_file(&path).err().map(|e| e.to_string());
        assert_eq!(
            err,
            Some(format!("secret file {} is not valid utf-8", path.display()))
        );

        std::fs::write(&path, vec![b'a'; MAX_SECRET_FILE_BYTES as usize + 1])?;
        let err = Secret::from_file(&path).err().map(|e| e.to_string());
        assert_eq!(
            err,
            Some(format!(
                "secret file {} is larger than 65536 bytes",
                path.display()
            ))
        );

        let missing = dir.join("missing");
        let err = Secret::from_file(&missing).err().map(|e| e.to_string());
        assert_eq!(
            err,
            Some(format!(
                "read secret file {}: no such file or directory",
                missing.display()
            ))
        );
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn env_references() -> Result<(), SecretError> {
        let env = |name: &str| match name {
            "TOKEN" => Some(OsString::from("from-env")),
            "EMPTY" => Some(OsString::new()),
            _ => None,
        };
        assert_eq!(Secret::resolve_with("${TOKEN}", env)?.expose(), "from-env");
        assert_eq!(Secret::resolve_with("literal", env)?.expose(), "literal");
        let err = |v: &str| {
            Secret::resolve_with(v, env)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(err("${NOPE}"), "environment variable NOPE is not set");
        assert_eq!(err("${EMPTY}"), "environment variable EMPTY is empty");
        assert!(err("${TOKEN").starts_with("malformed environment variable reference"));
        assert!(err("${1X}").starts_with("malformed environment variable reference"));
        assert!(err("${my secret}").starts_with("malformed environment variable reference"));
        assert!(!err("${my secret}").contains("my secret"));
        assert_eq!(err(""), "secret is empty");
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn env_value_must_be_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let r = Secret::resolve_with("${BIN}", |_| Some(OsString::from_vec(vec![0xff])));
        assert_eq!(
            r.err().map(|e| e.to_string()).as_deref(),
            Some("environment variable BIN is not valid utf-8")
        );
    }
}
