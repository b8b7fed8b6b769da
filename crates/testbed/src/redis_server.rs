//! [`RedisServer`]: a private `redis-server` per test.
//!
//! Each server lives in its own temp dir and listens on a unix socket there
//! (`redis.sock`), configured as SONiC runs Redis for our purposes:
//! `notify-keyspace-events AKE`, no persistence (`save ""`,
//! `appendonly no`), 32 databases (SONiC ids go up to 18). By default TCP is
//! off (`port 0`); [`RedisServer::start_tcp`] also listens on 127.0.0.1 at a
//! free port. The temp dir also holds a `database_config.json` with SONiC's
//! standard DATABASES table pointing at this server, and a
//! `database_global.json` including it as the default namespace.
//!
//! The process is killed when the value is dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use redis::IntoConnectionInfo;

/// How long [`RedisServer::start`] waits for the server to answer PING.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The snapshot file `SAVE` writes in the temp dir.
const DUMP_FILE: &str = "dump.rdb";

/// TCP port written into database_config.json when the server has no TCP
/// listener: nothing listens there, so a TCP connect fails cleanly instead of
/// reaching some other Redis.
pub const UNUSED_TCP_PORT: u16 = 1;

/// SONiC's default DATABASES table (swss-common database_config.json):
/// name, id, separator, instance.
pub const SONIC_DATABASES: &[(&str, u32, &str, &str)] = &[
    ("APPL_DB", 0, ":", "redis"),
    ("ASIC_DB", 1, ":", "redis"),
    ("COUNTERS_DB", 2, ":", "redis"),
    ("LOGLEVEL_DB", 3, ":", "redis"),
    ("CONFIG_DB", 4, "|", "redis"),
    ("PFC_WD_DB", 5, ":", "redis"),
    ("FLEX_COUNTER_DB", 5, ":", "redis"),
    ("STATE_DB", 6, "|", "redis"),
    ("SNMP_OVERLAY_DB", 7, "|", "redis"),
    ("RESTAPI_DB", 8, "|", "redis"),
    ("GB_ASIC_DB", 9, ":", "redis"),
    ("GB_COUNTERS_DB", 10, ":", "redis"),
    ("GB_FLEX_COUNTER_DB", 11, ":", "redis"),
    ("CHASSIS_APP_DB", 12, "|", "redis_chassis"),
    ("CHASSIS_STATE_DB", 13, "|", "redis_chassis"),
    ("APPL_STATE_DB", 14, ":", "redis"),
    ("DPU_APPL_DB", 15, ":", "redis"),
    ("DPU_APPL_STATE_DB", 16, "|", "redis"),
    ("DPU_STATE_DB", 17, "|", "redis"),
    ("DPU_COUNTERS_DB", 18, ":", "redis"),
];

/// A running private redis-server.
pub struct RedisServer {
    dir: tempfile::TempDir,
    socket: PathBuf,
    tcp_port: Option<u16>,
    child: Option<Child>,
    db_config: PathBuf,
    db_global_config: PathBuf,
}

impl RedisServer {
    /// Starts a server on a unix socket only (TCP `port 0`) and waits until
    /// it answers PING.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(None)
    }

    /// As [`RedisServer::start`], also listening on 127.0.0.1 at a free port
    /// (written into database_config.json as the `redis` instance's port).
    pub fn start_tcp() -> anyhow::Result<Self> {
        // The port is found by binding port 0 and releasing it; another
        // process could take it in between, so try a few times.
        let mut last = None;
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .context("finding a free TCP port")?
                .port();
            match Self::start_with(Some(port)) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("could not start redis-server on TCP")))
    }

    fn start_with(tcp_port: Option<u16>) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("redis-test-")
            .tempdir()
            .context("creating temp dir for redis-server")?;
        let socket = dir.path().join("redis.sock");
        let db_config = dir.path().join("database_config.json");
        let db_global_config = dir.path().join("database_global.json");
        let config = database_config_json(&socket, tcp_port.unwrap_or(UNUSED_TCP_PORT), dir.path());
        std::fs::write(&db_config, config).context("writing database_config.json")?;
        let global = serde_json::json!({
            "INCLUDES": [ { "include": "database_config.json" } ],
            "VERSION": "1.0"
        });
        std::fs::write(&db_global_config, serde_json::to_string_pretty(&global)?)
            .context("writing database_global.json")?;
        let mut server = RedisServer {
            dir,
            socket,
            tcp_port,
            child: None,
            db_config,
            db_global_config,
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        self.spawn_with(false)
    }

    /// Starts the process; with `keep_data`, redis loads the `dump.rdb` a
    /// `SAVE` left in the temp dir, else that file is removed first.
    fn spawn_with(&mut self, keep_data: bool) -> anyhow::Result<()> {
        let dump = self.dir.path().join(DUMP_FILE);
        if !keep_data {
            match std::fs::remove_file(&dump) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("removing {}", dump.display())),
            }
        }
        // A socket left by a killed server would not stop redis from binding
        // (it unlinks first), but remove it so readiness checks are honest.
        let _ = std::fs::remove_file(&self.socket);
        let log = self.dir.path().join("redis.log");
        let port = self.tcp_port.unwrap_or(0).to_string();
        let mut child = Command::new("redis-server")
            .arg("--unixsocket")
            .arg(&self.socket)
            .args(["--unixsocketperm", "700"])
            .args(["--port", &port])
            .args(["--bind", "127.0.0.1"])
            .args(["--notify-keyspace-events", "AKE"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--databases", "32"])
            .args(["--dbfilename", DUMP_FILE])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning redis-server (is it installed?)")?;
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                bail!("redis-server exited with {status} during startup; log:\n{text}");
            }
            if self.socket.exists() && ping(&self.socket).is_ok() {
                break;
            }
            if started.elapsed() > READY_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "redis-server did not answer PING on {} within {READY_TIMEOUT:?}",
                    self.socket.display()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.child = Some(child);
        Ok(())
    }

    /// The unix socket path, e.g. `/tmp/redis-test-XXXX/redis.sock`.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// The TCP port, when started with [`RedisServer::start_tcp`].
    pub fn tcp_port(&self) -> Option<u16> {
        self.tcp_port
    }

    /// The private temp dir (holds the socket, log and config files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A database_config.json with SONiC's standard DATABASES (APPL_DB 0 `:`,
    /// CONFIG_DB 4 `|`, STATE_DB 6 `|`, ...), all on instance `redis`
    /// (hostname 127.0.0.1, this server's socket as unix_socket_path, and its
    /// TCP port or [`UNUSED_TCP_PORT`]) except CHASSIS_APP_DB /
    /// CHASSIS_STATE_DB on `redis_chassis`, whose socket does not exist.
    pub fn db_config_path(&self) -> &Path {
        &self.db_config
    }

    /// A database_global.json whose only INCLUDES entry (default namespace)
    /// is [`RedisServer::db_config_path`].
    pub fn db_global_config_path(&self) -> &Path {
        &self.db_global_config
    }

    /// The server's pid, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A blocking connection to DB `db_id`, for assertions in tests.
    pub fn conn(&self, db_id: u32) -> anyhow::Result<redis::Connection> {
        let info = redis::ConnectionAddr::Unix(self.socket.clone()).into_connection_info()?;
        let settings = info.redis_settings().clone().set_db(i64::from(db_id));
        let client = redis::Client::open(info.set_redis_settings(settings))?;
        client
            .get_connection_with_timeout(Duration::from_secs(10))
            .with_context(|| format!("connecting to {} db {db_id}", self.socket.display()))
    }

    /// Kills the server (SIGKILL, like a crash) and waits for it. Clients see
    /// their connections drop and new connects fail. No-op if stopped.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("killing redis-server")?;
            child.wait().context("waiting for redis-server")?;
        }
        Ok(())
    }

    /// Stops (if running) and starts a fresh server on the same socket path
    /// (and TCP port), with empty data and an empty script cache.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop()?;
        self.spawn()
    }

    /// A crash and restart that keeps the data as of a snapshot: `SAVE`
    /// (the whole dataset to `dump.rdb` in the temp dir), then SIGKILL, then
    /// a fresh server on the same socket path (and TCP port) that loads the
    /// snapshot. Writes made between the `SAVE` and the kill are lost, as
    /// with a real crash after the last snapshot; the script cache is
    /// empty. Returns once the new server answers PING (it has loaded the
    /// snapshot by then).
    ///
    /// Errors: the server is not running, `SAVE` fails, or the new server
    /// does not start.
    pub fn restart_keeping_data(&mut self) -> anyhow::Result<()> {
        if self.child.is_none() {
            bail!("redis-server is not running");
        }
        let mut conn = self.conn(0)?;
        let _: () = redis::cmd("SAVE")
            .query(&mut conn)
            .context("SAVE before the restart")?;
        drop(conn);
        self.stop()?;
        self.spawn_with(true)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn ping(socket: &Path) -> anyhow::Result<()> {
    let client = redis::Client::open(redis::ConnectionAddr::Unix(socket.to_path_buf()))?;
    let mut conn = client.get_connection_with_timeout(Duration::from_secs(1))?;
    let _: String = redis::cmd("PING").query(&mut conn)?;
    Ok(())
}

fn database_config_json(socket: &Path, port: u16, dir: &Path) -> String {
    let mut dbs = serde_json::Map::new();
    for (name, id, sep, inst) in SONIC_DATABASES {
        dbs.insert(
            name.to_string(),
            serde_json::json!({ "id": id, "separator": sep, "instance": inst }),
        );
    }
    let v = serde_json::json!({
        "INSTANCES": {
            "redis": {
                "hostname": "127.0.0.1",
                "port": port,
                "unix_socket_path": socket.to_string_lossy(),
                "persistence_for_warm_boot": "yes"
            },
            "redis_chassis": {
                "hostname": "redis_chassis.server",
                "port": 6380,
                "unix_socket_path": dir.join("redis_chassis.sock").to_string_lossy()
            }
        },
        "DATABASES": dbs,
        "VERSION": "1.0"
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_keeping_data_keeps_the_snapshot_and_restart_empties() {
        let mut server = RedisServer::start().unwrap();
        let socket = server.socket_path().to_path_buf();
        let mut conn = server.conn(4).unwrap();
        let _: () = redis::cmd("HSET")
            .arg("PORT|Ethernet0")
            .arg("mtu")
            .arg("9100")
            .query(&mut conn)
            .unwrap();
        server.restart_keeping_data().unwrap();
        assert_eq!(server.socket_path(), socket);
        // The old connection went with the old process.
        assert!(redis::cmd("PING").query::<String>(&mut conn).is_err());
        let mut conn = server.conn(4).unwrap();
        let mtu: Option<String> = redis::cmd("HGET")
            .arg("PORT|Ethernet0")
            .arg("mtu")
            .query(&mut conn)
            .unwrap();
        assert_eq!(mtu.as_deref(), Some("9100"));
        // Keyspace events are still on.
        let events: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("notify-keyspace-events")
            .query(&mut conn)
            .unwrap();
        assert!(
            events[1].contains('K') && events[1].contains('E'),
            "{events:?}"
        );
        server.restart().unwrap();
        let mut conn = server.conn(4).unwrap();
        let n: i64 = redis::cmd("DBSIZE").query(&mut conn).unwrap();
        assert_eq!(n, 0);
    }
}
