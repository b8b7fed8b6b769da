//! `swss-cli`: look at SONiC tables the way their readers do.
//!
//! * `swss-cli pop APPL_DB NEIGH_TABLE [--watch SECS]`: act as orchagent,
//!   popping the ProducerStateTable queue with swss-common's pop semantics
//!   (ConsumerStateTable) and printing each operation as
//!   `SET <key> field=value ...` or `DEL <key>`. This consumes the queue, as
//!   orchagent would.
//! * `swss-cli dump STATE_DB PORT_TABLE`: print every `TABLE<sep>key` hash.
//!
//! The database is found through database_config.json (`--db-config`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use swss::{ConsumerStateTable, DbConfig, DbConnector, Table};

#[derive(Parser)]
#[command(
    version,
    about = "Inspect SONiC tables as orchagent and the CLI see them"
)]
struct Cli {
    /// database_config.json of the Redis instance to use.
    #[arg(long, default_value = swss::config::DEFAULT_DB_CONFIG_PATH)]
    db_config: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Pop a ProducerStateTable queue like orchagent and print the operations.
    Pop {
        /// Database name, e.g. APPL_DB.
        db: String,
        /// Table name, e.g. NEIGH_TABLE.
        table: String,
        /// Keep popping for this many seconds (0: pop what is pending and exit).
        #[arg(long, default_value_t = 0.0)]
        watch: f64,
    },
    /// Print every hash of a table (`TABLE<sep>*`), sorted by key.
    Dump {
        /// Database name, e.g. STATE_DB.
        db: String,
        /// Table name, e.g. PORT_TABLE.
        table: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg = DbConfig::load(&cli.db_config)?;
    match cli.cmd {
        Cmd::Pop { db, table, watch } => {
            let connector = DbConnector::new(cfg.location(&db)?)?;
            let mut consumer = ConsumerStateTable::new(&connector, &table, 128)
                .await
                .with_context(|| format!("subscribing to {table} in {db}"))?;
            let deadline = Instant::now() + Duration::from_secs_f64(watch.max(0.0));
            loop {
                for t in consumer.pops().await? {
                    let fields: Vec<String> =
                        t.fvs.iter().map(|(f, v)| format!("{f}={v}")).collect();
                    println!("{} {}:{} {}", t.op.as_str(), table, t.key, fields.join(" "));
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                consumer.wait_for_notification(left).await?;
            }
        }
        Cmd::Dump { db, table } => {
            let connector = DbConnector::new(cfg.location(&db)?)?;
            let mut conn = connector.connect().await?;
            let t = Table::new(&table, connector.separator());
            for key in t.keys(&mut conn).await? {
                if let Some(fvs) = t.get(&mut conn, &key).await? {
                    let fields: Vec<String> = fvs.iter().map(|(f, v)| format!("{f}={v}")).collect();
                    println!("{} {}", t.full_key(&key), fields.join(" "));
                }
            }
        }
    }
    Ok(())
}
