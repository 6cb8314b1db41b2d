//! `accord serve` configuration: flags, `ACCORD_*` environment variables, a TOML file, defaults —
//! in that order of precedence. clap merges flags over the environment; the file fills what both
//! left unset; defaults fill the rest.

use crate::tls::TlsFiles;
use crate::tokens::Tokens;
use accord_engine::symbolic::SolverSettings;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default `--listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8181";
/// Default `--data`.
pub const DEFAULT_DATA: &str = "./accord-data";
/// Default `--max-batch`.
pub const DEFAULT_MAX_BATCH: usize = 1000;
/// Default `--body-limit`: 8 MiB (a full batch of 1000 transactions is about 1 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 8 * 1024 * 1024;
/// Default `--request-timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `--max-concurrency`.
pub const DEFAULT_MAX_CONCURRENCY: usize = 512;
/// Default `--cache-capacity`: the database's page cache (sled's own default is 1 GiB).
pub const DEFAULT_CACHE_CAPACITY: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The flags of `accord serve`; each is also read from its `ACCORD_*` variable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8181]; port 0 picks a free port.
    #[arg(long, env = "ACCORD_LISTEN")]
    pub listen: Option<String>,
    /// Data directory (embedded sled database) [default: ./accord-data].
    #[arg(long, env = "ACCORD_DATA")]
    pub data: Option<PathBuf>,
    /// Policy bundle directory [default: the genesis's bundle with --genesis, else ./policies
    /// when it has a manifest, else the built-in bundle].
    #[arg(long, env = "ACCORD_POLICIES")]
    pub policies: Option<PathBuf>,
    /// Genesis file (consortium members and voting rules) [default: the built-in dev genesis,
    /// whose keys are public: never for real use].
    #[arg(long, env = "ACCORD_GENESIS")]
    pub genesis: Option<PathBuf>,
    /// Configuration file (TOML) read for whatever flags and environment leave unset.
    #[arg(long, env = "ACCORD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format [default: text].
    #[arg(long, env = "ACCORD_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter (tracing-subscriber syntax) [default: info].
    #[arg(long, env = "ACCORD_LOG")]
    pub log: Option<String>,
    /// One bearer token with every role (prefer --tokens) [default: none].
    #[arg(long, env = "ACCORD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Tokens file (TOML): each caller's name, secret and roles [default: none].
    #[arg(long, env = "ACCORD_TOKENS")]
    pub tokens: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key); reloaded on SIGHUP.
    #[arg(long, env = "ACCORD_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert; reloaded on SIGHUP.
    #[arg(long, env = "ACCORD_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates issued by these PEM certificate authorities.
    #[arg(long, env = "ACCORD_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Serve a non-loopback address without TLS or without tokens (refused otherwise).
    #[arg(long, env = "ACCORD_INSECURE")]
    pub insecure: bool,
    /// Most transactions in one batch request [default: 1000].
    #[arg(long, env = "ACCORD_MAX_BATCH")]
    pub max_batch: Option<usize>,
    /// Largest request body, e.g. `8MiB`, `512KiB`, `65536` (bytes) [default: 8MiB].
    #[arg(long, env = "ACCORD_BODY_LIMIT")]
    pub body_limit: Option<String>,
    /// Longest a request may run, e.g. `10s`, `500ms`, `2m` (a bare number is seconds) [default: 10s].
    #[arg(long, env = "ACCORD_REQUEST_TIMEOUT")]
    pub request_timeout: Option<String>,
    /// Most requests in progress at once; beyond it, 503 with Retry-After [default: 512].
    #[arg(long, env = "ACCORD_MAX_CONCURRENCY")]
    pub max_concurrency: Option<usize>,
    /// The database's page cache, e.g. `64MiB` [default: 8MiB].
    #[arg(long, env = "ACCORD_CACHE_CAPACITY")]
    pub cache_capacity: Option<String>,
}

/// The configuration file. Keys are the flag names with `_` for `-`; unknown keys are refused.
/// Relative paths are resolved against the file's directory.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data: Option<PathBuf>,
    pub policies: Option<PathBuf>,
    pub genesis: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub log: Option<String>,
    pub token: Option<String>,
    pub tokens: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_client_ca: Option<PathBuf>,
    pub insecure: Option<bool>,
    pub max_batch: Option<usize>,
    pub body_limit: Option<SizeOrText>,
    pub request_timeout: Option<SizeOrText>,
    pub max_concurrency: Option<usize>,
    pub cache_capacity: Option<SizeOrText>,
}

/// A number or a text with a unit, as a file may give either.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SizeOrText {
    Number(u64),
    Text(String),
}

impl SizeOrText {
    fn text(&self) -> String {
        match self {
            SizeOrText::Number(n) => n.to_string(),
            SizeOrText::Text(t) => t.clone(),
        }
    }
}

/// The resolved configuration the server runs with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data: PathBuf,
    /// The initial bundle's directory; `None`: the genesis's bundle when a genesis file is
    /// given, else `./policies` when it has a manifest, else the built-in bundle
    /// ([`crate::state::load_bundle`]).
    pub policies: Option<PathBuf>,
    /// The genesis file; `None`: the built-in dev genesis ([`crate::defaults`]).
    pub genesis: Option<PathBuf>,
    pub log_format: LogFormat,
    pub log: String,
    /// The callers and their roles (`--tokens`, or `--token` as one token with every role);
    /// `None`: the guarded endpoints are open.
    pub tokens: Option<Tokens>,
    /// `--tls-cert`, `--tls-key`, `--tls-client-ca`; `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
    /// `--insecure`: a non-loopback address may be served without TLS or without tokens.
    pub insecure: bool,
    pub max_batch: usize,
    pub body_limit: usize,
    pub request_timeout: Duration,
    pub max_concurrency: usize,
    /// Bytes of the database's page cache.
    pub cache_capacity: u64,
    /// The SMT solver of proposal analyses: `CVC5` (a path) or `cvc5` on `PATH`, 10 s per query.
    pub solver: SolverSettings,
}

impl ServeConfig {
    /// Defaults for everything, with `policies` given (tests and the benchmark start from this).
    pub fn with_defaults(policies: PathBuf, data: PathBuf) -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8181)),
            data,
            policies: Some(policies),
            genesis: None,
            log_format: LogFormat::Text,
            log: "info".into(),
            tokens: None,
            tls: None,
            insecure: false,
            max_batch: DEFAULT_MAX_BATCH,
            body_limit: DEFAULT_BODY_LIMIT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            solver: SolverSettings::from_env(),
        }
    }

    /// Resolves flags/environment over the file over defaults.
    pub fn resolve(args: ServeArgs) -> Result<Self, ConfigError> {
        let (file, base) = match &args.config {
            Some(path) => (read_file(path)?, path.parent().map(Path::to_path_buf)),
            None => (FileConfig::default(), None),
        };
        let from_file = |p: Option<PathBuf>| -> Option<PathBuf> {
            p.map(|p| match &base {
                Some(base) if p.is_relative() => base.join(p),
                _ => p,
            })
        };
        let listen_text = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = listen_text
            .parse::<SocketAddr>()
            .map_err(|e| ConfigError::new("listen", format!("`{listen_text}`: {e}")))?;
        let body_limit = match args
            .body_limit
            .or_else(|| file.body_limit.as_ref().map(SizeOrText::text))
        {
            Some(text) => parse_size(&text).map_err(|e| ConfigError::new("body-limit", e))?,
            None => DEFAULT_BODY_LIMIT,
        };
        let request_timeout = match args
            .request_timeout
            .or_else(|| file.request_timeout.as_ref().map(SizeOrText::text))
        {
            Some(text) => {
                parse_duration(&text).map_err(|e| ConfigError::new("request-timeout", e))?
            }
            None => DEFAULT_REQUEST_TIMEOUT,
        };
        let max_batch = args
            .max_batch
            .or(file.max_batch)
            .unwrap_or(DEFAULT_MAX_BATCH);
        if max_batch == 0 {
            return Err(ConfigError::new("max-batch", "must be at least 1"));
        }
        let max_concurrency = args
            .max_concurrency
            .or(file.max_concurrency)
            .unwrap_or(DEFAULT_MAX_CONCURRENCY);
        if max_concurrency == 0 {
            return Err(ConfigError::new("max-concurrency", "must be at least 1"));
        }
        let cache_capacity = match args
            .cache_capacity
            .or_else(|| file.cache_capacity.as_ref().map(SizeOrText::text))
        {
            Some(text) => parse_cache_capacity(&text)?,
            None => DEFAULT_CACHE_CAPACITY,
        };
        let token = args.token.or(file.token).filter(|t| !t.is_empty());
        let tokens = match (token, args.tokens.or_else(|| from_file(file.tokens))) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "token",
                    "give either one token (--token) or a tokens file (--tokens), not both",
                ))
            }
            (Some(token), None) => Some(Tokens::single(&token)),
            (None, Some(path)) => Some(Tokens::load(&path)?),
            (None, None) => None,
        };
        let tls = match (
            args.tls_cert.or_else(|| from_file(file.tls_cert)),
            args.tls_key.or_else(|| from_file(file.tls_key)),
            args.tls_client_ca.or_else(|| from_file(file.tls_client_ca)),
        ) {
            (Some(cert), Some(key), client_ca) => Some(TlsFiles {
                cert,
                key,
                client_ca,
            }),
            (None, None, None) => None,
            (Some(_), None, _) => {
                return Err(ConfigError::new("tls-key", "required with --tls-cert"))
            }
            (None, _, _) => {
                return Err(ConfigError::new(
                    "tls-cert",
                    "required with --tls-key and --tls-client-ca",
                ))
            }
        };
        let insecure = args.insecure || file.insecure.unwrap_or(false);
        check_exposure(listen, tls.is_some(), tokens.is_some(), insecure)?;
        Ok(ServeConfig {
            listen,
            data: args
                .data
                .or_else(|| from_file(file.data))
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA)),
            policies: args.policies.or_else(|| from_file(file.policies)),
            genesis: args.genesis.or_else(|| from_file(file.genesis)),
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            log: args.log.or(file.log).unwrap_or_else(|| "info".into()),
            tokens,
            tls,
            insecure,
            max_batch,
            body_limit,
            request_timeout,
            max_concurrency,
            cache_capacity,
            solver: SolverSettings::from_env(),
        })
    }
}

/// Secure by default: an address other hosts can reach is served only with TLS and tokens,
/// unless `--insecure` says otherwise. Loopback addresses may be served without either.
fn check_exposure(
    listen: SocketAddr,
    tls: bool,
    tokens: bool,
    insecure: bool,
) -> Result<(), ConfigError> {
    if listen.ip().is_loopback() || insecure || (tls && tokens) {
        return Ok(());
    }
    let missing = match (tls, tokens) {
        (false, false) => "TLS (--tls-cert, --tls-key) and tokens (--tokens)",
        (false, true) => "TLS (--tls-cert, --tls-key)",
        _ => "tokens (--tokens)",
    };
    Err(ConfigError::new(
        "listen",
        format!(
            "{listen} is not a loopback address: serving it needs {missing}, or --insecure to serve it unprotected"
        ),
    ))
}

/// The smallest `--cache-capacity`: below it sled evicts the pages of every write at once.
pub const MIN_CACHE_CAPACITY: u64 = 1024 * 1024;

fn parse_cache_capacity(text: &str) -> Result<u64, ConfigError> {
    let error = |reason: String| ConfigError::new("cache-capacity", reason);
    let bytes = parse_size(text).map_err(error)?;
    let bytes = u64::try_from(bytes).map_err(|e| error(e.to_string()))?;
    if bytes < MIN_CACHE_CAPACITY {
        return Err(error(format!("`{text}`: must be at least 1MiB")));
    }
    Ok(bytes)
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new("config", format!("{}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| {
        ConfigError::new(
            "config",
            format!("{}: {}", path.display(), e.to_string().trim_end()),
        )
    })
}

/// `8MiB`, `512KiB`, `2MB`, `1000` (bytes).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("`{text}`: expected a size such as `8MiB` or `65536`"))?;
    let factor: usize = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "KiB" => 1024,
        "MB" => 1000 * 1000,
        "MiB" => 1024 * 1024,
        "GB" => 1000 * 1000 * 1000,
        "GiB" => 1024 * 1024 * 1024,
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}`, expected B, KB, KiB, MB, MiB, GB or GiB"
            ))
        }
    };
    n.checked_mul(factor)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{text}`: must be between 1 byte and the address space"))
}

/// `10s`, `500ms`, `2m`, `1h`, `10` (seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}`: expected a duration such as `10s` or `500ms`"))?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}`, expected ms, s, m or h"
            ))
        }
    };
    if d.is_zero() {
        return Err(format!("`{text}`: must be longer than zero"));
    }
    Ok(d)
}

/// A setting that cannot be used: names the setting (flag name) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting `{setting}`: {reason}")]
pub struct ConfigError {
    pub setting: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(setting: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            setting: setting.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse_with_units() {
        assert_eq!(parse_size("8MiB"), Ok(8 * 1024 * 1024));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("2KB"), Ok(2000));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("1TiB").is_err());
        assert!(parse_size("0").is_err());
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("accord.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nmax_batch = 10\ndata = \"d\"\nbody_limit = \"1KiB\"\nrequest_timeout = 3\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(file),
            max_batch: Some(20),
            ..ServeArgs::default()
        };
        let c = ServeConfig::resolve(args).expect("resolves");
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.max_batch, 20);
        assert_eq!(c.data, dir.path().join("d"));
        assert_eq!(c.body_limit, 1024);
        assert_eq!(c.request_timeout, Duration::from_secs(3));
        assert_eq!(c.max_concurrency, DEFAULT_MAX_CONCURRENCY);
        assert_eq!(c.cache_capacity, DEFAULT_CACHE_CAPACITY);
        assert_eq!(c.policies, None);
    }

    #[test]
    fn unknown_file_keys_and_bad_values_name_the_setting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("accord.toml");
        std::fs::write(&file, "max_bach = 10\n").expect("write");
        let args = ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        };
        let e = ServeConfig::resolve(args).expect_err("refused");
        assert_eq!(e.setting, "config");
        assert!(e.reason.contains("max_bach"), "{e}");
        let args = ServeArgs {
            listen: Some("nowhere".into()),
            ..ServeArgs::default()
        };
        let e = ServeConfig::resolve(args).expect_err("refused");
        assert_eq!(e.setting, "listen");
    }

    fn refused(args: ServeArgs) -> ConfigError {
        ServeConfig::resolve(args).expect_err("refused")
    }

    #[test]
    fn a_reachable_address_needs_tls_and_tokens_or_insecure() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = dir.path().join("tokens.toml");
        std::fs::write(
            &tokens,
            "[[token]]\nname = \"n\"\nsecret = \"0123456789abcdef0123456789abcdef\"\nroles = [\"ledger\"]\n",
        )
        .expect("write");
        let open = |listen: &str| ServeArgs {
            listen: Some(listen.into()),
            ..ServeArgs::default()
        };
        let e = refused(open("0.0.0.0:8181"));
        assert_eq!(e.setting, "listen");
        assert!(
            e.reason.contains("TLS") && e.reason.contains("--insecure"),
            "{e}"
        );
        let e = refused(ServeArgs {
            tokens: Some(tokens.clone()),
            ..open("10.0.0.1:8181")
        });
        assert!(
            e.reason.contains("needs TLS") && !e.reason.contains("tokens"),
            "{e}"
        );
        let e = refused(ServeArgs {
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..open("[::]:8181")
        });
        assert!(e.reason.contains("needs tokens"), "{e}");
        // Loopback, v4 and v6, needs neither; --insecure lifts the refusal, and is kept.
        for listen in ["127.0.0.1:0", "[::1]:0"] {
            let c = ServeConfig::resolve(open(listen)).expect("loopback");
            assert!(!c.insecure && c.tokens.is_none() && c.tls.is_none());
        }
        let c = ServeConfig::resolve(ServeArgs {
            insecure: true,
            ..open("0.0.0.0:8181")
        })
        .expect("insecure");
        assert!(c.insecure);
        let c = ServeConfig::resolve(ServeArgs {
            tokens: Some(tokens),
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..open("0.0.0.0:8181")
        })
        .expect("TLS and tokens");
        assert!(c.tls.is_some() && c.tokens.is_some() && !c.insecure);
    }

    #[test]
    fn tls_and_token_settings_that_do_not_fit_are_refused() {
        let e = refused(ServeArgs {
            tls_cert: Some("c.pem".into()),
            ..ServeArgs::default()
        });
        assert_eq!(e.setting, "tls-key");
        let e = refused(ServeArgs {
            tls_client_ca: Some("ca.pem".into()),
            ..ServeArgs::default()
        });
        assert_eq!(e.setting, "tls-cert");
        let e = refused(ServeArgs {
            token: Some("t".into()),
            tokens: Some("tokens.toml".into()),
            ..ServeArgs::default()
        });
        assert_eq!(e.setting, "token");
        let e = refused(ServeArgs {
            tokens: Some("/nonexistent/tokens.toml".into()),
            ..ServeArgs::default()
        });
        assert_eq!(e.setting, "tokens");
    }

    #[test]
    fn the_file_gives_tls_tokens_and_insecure_relative_to_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("tokens.toml"),
            "[[token]]\nname = \"n\"\nsecret = \"0123456789abcdef0123456789abcdef\"\nroles = [\"audit\"]\n",
        )
        .expect("write");
        let file = dir.path().join("accord.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:0\"\ntokens = \"tokens.toml\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\ntls_client_ca = \"ca.pem\"\ninsecure = false\n",
        )
        .expect("write");
        let c = ServeConfig::resolve(ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        })
        .expect("resolves");
        let tls = c.tls.expect("tls");
        assert_eq!(tls.cert, dir.path().join("c.pem"));
        assert_eq!(tls.client_ca, Some(dir.path().join("ca.pem")));
        assert!(c.tokens.is_some());
    }
}
