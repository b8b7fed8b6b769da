//! Where each SONiC database lives: `database_config.json` and
//! `database_global.json` (docs/behavior.md a.1, a.2).
//!
//! Source: swss-common dbconnector.cpp, `SonicDBConfig::initialize` /
//! `initializeGlobalConfig` / `getDbInfo`. Nothing is hard-coded: ids,
//! separators and instances are read from the file.
//!
//! File shape:
//! ```json
//! { "INSTANCES": { "redis": { "hostname": "127.0.0.1", "port": 6379,
//!                             "unix_socket_path": "/var/run/redis/redis.sock" } },
//!   "DATABASES": { "APPL_DB": { "id": 0, "separator": ":", "instance": "redis" } },
//!   "VERSION": "1.0" }
//! ```
//! Parsing never panics: every defect is a [`ConfigError`] naming the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Default database_config.json path on a SONiC device (dbconnector.cpp
/// `SonicDBConfig::DEFAULT_SONIC_DB_CONFIG_FILE`).
pub const DEFAULT_DB_CONFIG_PATH: &str = "/var/run/redis/sonic-db/database_config.json";

/// Default database_global.json path (multi-ASIC namespaces; dbconnector.cpp
/// `SonicDBConfig::DEFAULT_SONIC_DB_GLOBAL_CONFIG_FILE`).
pub const DEFAULT_DB_GLOBAL_CONFIG_PATH: &str = "/var/run/redis/sonic-db/database_global.json";

/// Why a database config could not be used. Every variant names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, permissions, ...).
    #[error("cannot read database config {}: {message}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error text.
        message: String,
    },
    /// The file is not valid JSON.
    #[error("invalid JSON in database config {}:{line}:{column}: {message}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line of the syntax error.
        line: usize,
        /// 1-based column of the syntax error.
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// A required member is missing, e.g. `INSTANCES`, an instance's
    /// `hostname` or `port`, a database's `id`, `separator` or `instance`.
    #[error("database config {}: {what} is missing \"{field}\"", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
        /// The object lacking it, e.g. `instance "redis"` or `the top level`.
        what: String,
        /// The member name, e.g. `hostname`.
        field: String,
    },
    /// A member has the wrong type or an out-of-range value.
    #[error("database config {}: {what}: \"{field}\" {problem}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The object holding it, e.g. `database "APPL_DB"`.
        what: String,
        /// The member name.
        field: String,
        /// E.g. `must be an integer in 0..=65535, got "abc"`.
        problem: String,
    },
    /// A database's separator is neither `:` nor `|` (the C++ TableBase
    /// constructor throws for anything else).
    #[error("database config {}: database \"{db}\" has separator {separator:?}; only \":\" and \"|\" are allowed", path.display())]
    BadSeparator {
        /// The file.
        path: PathBuf,
        /// The database name.
        db: String,
        /// The separator as written.
        separator: String,
    },
    /// The requested database name is not in `DATABASES`.
    #[error("database config {}: unknown database \"{db}\"", path.display())]
    UnknownDb {
        /// The file.
        path: PathBuf,
        /// The name asked for, e.g. `APPL_DB`.
        db: String,
    },
    /// A database refers to an instance missing from `INSTANCES`.
    #[error("database config {}: database \"{db}\" refers to unknown instance \"{instance}\"", path.display())]
    UnknownInstance {
        /// The file.
        path: PathBuf,
        /// The database name.
        db: String,
        /// The instance name it refers to.
        instance: String,
    },
    /// database_global.json has no INCLUDES entry for the namespace.
    #[error("database global config {}: no entry for namespace \"{namespace}\"", path.display())]
    UnknownNamespace {
        /// The global file.
        path: PathBuf,
        /// The namespace asked for (empty = default).
        namespace: String,
    },
}

/// How to reach one Redis instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RedisAddr {
    /// A unix domain socket path (the instance's `unix_socket_path`).
    Unix(PathBuf),
    /// `hostname`:`port` over TCP.
    Tcp {
        /// Host name or address, e.g. `127.0.0.1`.
        host: String,
        /// TCP port, e.g. 6379.
        port: u16,
    },
}

impl fmt::Display for RedisAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisAddr::Unix(p) => write!(f, "unix:{}", p.display()),
            RedisAddr::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
        }
    }
}

/// Everything needed to talk to one named database.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DbLocation {
    /// The database name, e.g. `APPL_DB`.
    pub name: String,
    /// The numeric id sent with `SELECT`, e.g. 0 for APPL_DB.
    pub id: u32,
    /// The table/key separator: `:` or `|`.
    pub separator: char,
    /// Where the instance listens.
    pub addr: RedisAddr,
}

/// One `INSTANCES` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `hostname`.
    pub hostname: String,
    /// `port`.
    pub port: u16,
    /// `unix_socket_path`, when present and non-empty.
    pub unix_socket_path: Option<PathBuf>,
}

/// One `DATABASES` entry, as written (the separator is checked when the
/// database is looked up, as the C++ checks it when a table is built).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    /// `id`.
    pub id: u32,
    /// `separator`, as written.
    pub separator: String,
    /// `instance`.
    pub instance: String,
}

/// A parsed database_config.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbConfig {
    path: PathBuf,
    instances: BTreeMap<String, Instance>,
    databases: BTreeMap<String, Database>,
}

// ===== impl DbConfig =====

impl DbConfig {
    /// Reads and parses a database_config.json.
    ///
    /// Errors: [`ConfigError::Read`] if the file cannot be read, otherwise as
    /// [`DbConfig::from_json`]. Source: `SonicDBConfig::initialize`.
    pub fn load(path: &Path) -> Result<DbConfig, ConfigError> {
        let text = read(path)?;
        DbConfig::from_json(&text, path)
    }

    /// Parses database_config.json text; `origin` is only used in errors.
    ///
    /// Errors: [`ConfigError::Json`] (syntax, with line/column),
    /// [`ConfigError::Missing`] (no `INSTANCES`/`DATABASES`, or an instance
    /// without `hostname`/`port`, or a database without
    /// `id`/`separator`/`instance`), [`ConfigError::Invalid`] (wrong types,
    /// port outside 0..=65535, id outside u32). As in the C++, these are all
    /// checked for every entry at load time.
    pub fn from_json(text: &str, origin: &Path) -> Result<DbConfig, ConfigError> {
        let root = parse_json(text, origin)?;
        let p = || origin.to_path_buf();
        let top = root.as_object().ok_or_else(|| ConfigError::Invalid {
            path: p(),
            what: "the top level".into(),
            field: "".into(),
            problem: "must be a JSON object".into(),
        })?;

        let instances_v = member(top, "INSTANCES", "the top level", origin)?;
        let instances_o = as_object(instances_v, "the top level", "INSTANCES", origin)?;
        let mut instances = BTreeMap::new();
        for (name, v) in instances_o {
            let what = format!("instance \"{name}\"");
            let o = v.as_object().ok_or_else(|| ConfigError::Invalid {
                path: p(),
                what: "INSTANCES".into(),
                field: name.clone(),
                problem: "must be a JSON object".into(),
            })?;
            let hostname = as_string(
                member(o, "hostname", &what, origin)?,
                &what,
                "hostname",
                origin,
            )?;
            let port_v = member(o, "port", &what, origin)?;
            let port = as_uint(port_v, &what, "port", u64::from(u16::MAX), origin)? as u16;
            let unix_socket_path = match o.get("unix_socket_path") {
                None | Some(Value::Null) => None,
                Some(v) => {
                    let s = as_string(v, &what, "unix_socket_path", origin)?;
                    (!s.is_empty()).then(|| PathBuf::from(s))
                }
            };
            instances.insert(
                name.clone(),
                Instance {
                    hostname,
                    port,
                    unix_socket_path,
                },
            );
        }

        let databases_v = member(top, "DATABASES", "the top level", origin)?;
        let databases_o = as_object(databases_v, "the top level", "DATABASES", origin)?;
        let mut databases = BTreeMap::new();
        for (name, v) in databases_o {
            let what = format!("database \"{name}\"");
            let o = v.as_object().ok_or_else(|| ConfigError::Invalid {
                path: p(),
                what: "DATABASES".into(),
                field: name.clone(),
                problem: "must be a JSON object".into(),
            })?;
            let id = as_uint(
                member(o, "id", &what, origin)?,
                &what,
                "id",
                u64::from(u32::MAX),
                origin,
            )? as u32;
            let separator = as_string(
                member(o, "separator", &what, origin)?,
                &what,
                "separator",
                origin,
            )?;
            let instance = as_string(
                member(o, "instance", &what, origin)?,
                &what,
                "instance",
                origin,
            )?;
            databases.insert(
                name.clone(),
                Database {
                    id,
                    separator,
                    instance,
                },
            );
        }

        Ok(DbConfig {
            path: origin.to_path_buf(),
            instances,
            databases,
        })
    }

    /// Loads the database_config.json that database_global.json lists for
    /// `namespace` (empty = the default entry, the one with no `namespace`).
    ///
    /// `INCLUDES` is a list of `{"include": <path>, "namespace"?: <ns>,
    /// "container_name"?: <name>}`; a relative include path is relative to
    /// the directory of the global file. Entries with a non-empty
    /// `container_name` (e.g. DPU containers) are not considered.
    ///
    /// Errors: as [`DbConfig::load`] for either file,
    /// [`ConfigError::Missing`]/[`ConfigError::Invalid`] for a malformed
    /// `INCLUDES`, [`ConfigError::UnknownNamespace`] when no entry matches.
    /// Source: `SonicDBConfig::initializeGlobalConfig`.
    pub fn load_for_namespace(
        global_path: &Path,
        namespace: &str,
    ) -> Result<DbConfig, ConfigError> {
        let text = read(global_path)?;
        let root = parse_json(&text, global_path)?;
        let top = root.as_object().ok_or_else(|| ConfigError::Invalid {
            path: global_path.to_path_buf(),
            what: "the top level".into(),
            field: "".into(),
            problem: "must be a JSON object".into(),
        })?;
        let includes = member(top, "INCLUDES", "the top level", global_path)?;
        let includes = includes.as_array().ok_or_else(|| ConfigError::Invalid {
            path: global_path.to_path_buf(),
            what: "the top level".into(),
            field: "INCLUDES".into(),
            problem: "must be a JSON array".into(),
        })?;
        for (i, entry) in includes.iter().enumerate() {
            let what = format!("INCLUDES[{i}]");
            let o = entry.as_object().ok_or_else(|| ConfigError::Invalid {
                path: global_path.to_path_buf(),
                what: "INCLUDES".into(),
                field: i.to_string(),
                problem: "must be a JSON object".into(),
            })?;
            let ns = optional_string(o, "namespace", &what, global_path)?;
            let container = optional_string(o, "container_name", &what, global_path)?;
            if !container.is_empty() || ns != namespace {
                continue;
            }
            let include = as_string(
                member(o, "include", &what, global_path)?,
                &what,
                "include",
                global_path,
            )?;
            let include = PathBuf::from(include);
            let full = if include.is_absolute() {
                include
            } else {
                global_path
                    .parent()
                    .unwrap_or_else(|| Path::new(""))
                    .join(include)
            };
            return DbConfig::load(&full);
        }
        Err(ConfigError::UnknownNamespace {
            path: global_path.to_path_buf(),
            namespace: namespace.to_string(),
        })
    }

    /// Resolves a database name, e.g. `APPL_DB`, to id, separator and address.
    ///
    /// The address is the instance's unix socket when it has a
    /// `unix_socket_path` (the C++ default, `isTcpConn = false`), else
    /// `hostname:port` over TCP (where the C++ would fail to connect to an
    /// empty socket path).
    ///
    /// Errors: [`ConfigError::UnknownDb`], [`ConfigError::UnknownInstance`],
    /// [`ConfigError::BadSeparator`] (anything but `:` or `|`).
    pub fn location(&self, db_name: &str) -> Result<DbLocation, ConfigError> {
        self.resolve(db_name, false)
    }

    /// As [`DbConfig::location`] but always `hostname:port` over TCP (the C++
    /// `isTcpConn = true`).
    pub fn tcp_location(&self, db_name: &str) -> Result<DbLocation, ConfigError> {
        self.resolve(db_name, true)
    }

    /// The file this config was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All `DATABASES` entries by name.
    pub fn databases(&self) -> &BTreeMap<String, Database> {
        &self.databases
    }

    /// All `INSTANCES` entries by name.
    pub fn instances(&self) -> &BTreeMap<String, Instance> {
        &self.instances
    }

    fn resolve(&self, db_name: &str, tcp: bool) -> Result<DbLocation, ConfigError> {
        let db = self
            .databases
            .get(db_name)
            .ok_or_else(|| ConfigError::UnknownDb {
                path: self.path.clone(),
                db: db_name.to_string(),
            })?;
        let separator = match db.separator.as_str() {
            ":" => ':',
            "|" => '|',
            _ => {
                return Err(ConfigError::BadSeparator {
                    path: self.path.clone(),
                    db: db_name.to_string(),
                    separator: db.separator.clone(),
                })
            }
        };
        let inst =
            self.instances
                .get(&db.instance)
                .ok_or_else(|| ConfigError::UnknownInstance {
                    path: self.path.clone(),
                    db: db_name.to_string(),
                    instance: db.instance.clone(),
                })?;
        let addr = match (&inst.unix_socket_path, tcp) {
            (Some(p), false) => RedisAddr::Unix(p.clone()),
            _ => RedisAddr::Tcp {
                host: inst.hostname.clone(),
                port: inst.port,
            },
        };
        Ok(DbLocation {
            name: db_name.to_string(),
            id: db.id,
            separator,
            addr,
        })
    }
}

// ===== JSON helpers =====

type Object = serde_json::Map<String, Value>;

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn parse_json(text: &str, origin: &Path) -> Result<Value, ConfigError> {
    serde_json::from_str(text).map_err(|e| ConfigError::Json {
        path: origin.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

fn member<'a>(
    o: &'a Object,
    field: &str,
    what: &str,
    origin: &Path,
) -> Result<&'a Value, ConfigError> {
    match o.get(field) {
        Some(Value::Null) | None => Err(ConfigError::Missing {
            path: origin.to_path_buf(),
            what: what.to_string(),
            field: field.to_string(),
        }),
        Some(v) => Ok(v),
    }
}

fn invalid(origin: &Path, what: &str, field: &str, problem: String) -> ConfigError {
    ConfigError::Invalid {
        path: origin.to_path_buf(),
        what: what.to_string(),
        field: field.to_string(),
        problem,
    }
}

fn as_object<'a>(
    v: &'a Value,
    what: &str,
    field: &str,
    origin: &Path,
) -> Result<&'a Object, ConfigError> {
    v.as_object()
        .ok_or_else(|| invalid(origin, what, field, "must be a JSON object".into()))
}

fn as_string(v: &Value, what: &str, field: &str, origin: &Path) -> Result<String, ConfigError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| invalid(origin, what, field, format!("must be a string, got {v}")))
}

fn as_uint(
    v: &Value,
    what: &str,
    field: &str,
    max: u64,
    origin: &Path,
) -> Result<u64, ConfigError> {
    match v.as_u64() {
        Some(n) if n <= max => Ok(n),
        _ => Err(invalid(
            origin,
            what,
            field,
            format!("must be an integer in 0..={max}, got {v}"),
        )),
    }
}

fn optional_string(
    o: &Object,
    field: &str,
    what: &str,
    origin: &Path,
) -> Result<String, ConfigError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(v) => as_string(v, what, field, origin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DbConfig, ConfigError> {
        DbConfig::from_json(text, Path::new("/x/database_config.json"))
    }

    #[test]
    fn good_config_resolves_unix_then_tcp() {
        let c = parse(
            r#"{"INSTANCES":{"redis":{"hostname":"127.0.0.1","port":6379,"unix_socket_path":"/r.sock"},
                             "other":{"hostname":"h","port":1}},
                "DATABASES":{"APPL_DB":{"id":0,"separator":":","instance":"redis"},
                             "X_DB":{"id":7,"separator":"|","instance":"other"}}}"#,
        )
        .unwrap();
        let l = c.location("APPL_DB").unwrap();
        assert_eq!(l.id, 0);
        assert_eq!(l.separator, ':');
        assert_eq!(l.addr, RedisAddr::Unix("/r.sock".into()));
        let l = c.tcp_location("APPL_DB").unwrap();
        assert_eq!(
            l.addr,
            RedisAddr::Tcp {
                host: "127.0.0.1".into(),
                port: 6379
            }
        );
        let l = c.location("X_DB").unwrap();
        assert_eq!((l.id, l.separator), (7, '|'));
        assert_eq!(
            l.addr,
            RedisAddr::Tcp {
                host: "h".into(),
                port: 1
            }
        );
    }

    /// Any JSON value of roughly the right shape, with wrong types mixed in.
    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            prop_oneof![Just(":".to_string()), Just("|".to_string()), ".{0,4}"]
                .prop_map(Value::String),
        ];
        let names = prop_oneof![
            Just("INSTANCES"),
            Just("DATABASES"),
            Just("redis"),
            Just("hostname"),
            Just("port"),
            Just("unix_socket_path"),
            Just("id"),
            Just("separator"),
            Just("instance"),
            Just("APPL_DB"),
            Just("INCLUDES"),
            Just("include"),
            Just("namespace"),
        ];
        leaf.prop_recursive(4, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((names.clone(), inner), 0..6).prop_map(|kv| {
                    Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                }),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_text(text in ".{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_any_json(v in json_value()) {
            if let Ok(c) = parse(&v.to_string()) {
                for db in ["APPL_DB", "X"] {
                    let _ = c.location(db);
                    let _ = c.tcp_location(db);
                }
            }
        }
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        let cases = [
            r#"{"INSTANCES":{"redis":{"hostname":"h","port":70000}},"DATABASES":{}}"#,
            r#"{"INSTANCES":{"redis":{"hostname":"h","port":-1}},"DATABASES":{}}"#,
            r#"{"INSTANCES":{"redis":{"hostname":5,"port":1}},"DATABASES":{}}"#,
            r#"{"INSTANCES":[],"DATABASES":{}}"#,
            r#"{"INSTANCES":{"redis":{"hostname":"h","port":1}},"DATABASES":{"A":{"id":1.5,"separator":":","instance":"redis"}}}"#,
            r#"[]"#,
            "",
            "{",
        ];
        for c in cases {
            assert!(parse(c).is_err(), "{c}");
        }
    }
}
