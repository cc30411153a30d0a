//! Processes the GraphQL benchmark measures and pins: memory and CPU time from `/proc`,
//! Postgres's backends, and CPU affinity (`taskset`).

use anyhow::{Context, bail};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use std::process::Stdio;

pub(crate) fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .context("VmRSS")?;
    Ok(kb * 1024)
}

/// Fields of `/proc/PID/stat` after the command name (which may hold spaces): index 0 is
/// the state, 1 the parent, 11 and 12 user and system time, 13 and 14 those of reaped
/// children.
pub(crate) fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    Some(
        rest.split_whitespace()
            .map(|f| f.parse::<u64>().unwrap_or_default())
            .collect(),
    )
}

/// CPU time (user + system) of process `pid`, with its reaped children's when
/// `children`, in ms (`/proc` counts 10 ms clock ticks: USER_HZ is 100 on Linux).
pub(crate) fn cpu_ms(pid: u32, children: bool) -> u64 {
    let Some(fields) = stat_fields(pid) else {
        return 0;
    };
    let wanted: &[usize] = if children {
        &[11, 12, 13, 14]
    } else {
        &[11, 12]
    };
    wanted
        .iter()
        .map(|&i| fields.get(i).copied().unwrap_or_default())
        .sum::<u64>()
        * 10
}

/// CPU time of a Postgres server so far, in ms: the postmaster, its live backends, and
/// the backends it has reaped.
pub(crate) fn postgres_cpu_ms(postmaster: u32) -> u64 {
    let live: u64 = children(postmaster)
        .into_iter()
        .map(|pid| cpu_ms(pid, false))
        .sum();
    live + cpu_ms(postmaster, true)
}

/// The postmaster of this session's Postgres server (other Postgres servers on the
/// machine are not counted).
pub(crate) async fn postmaster_pid(db: &DatabaseConnection) -> anyhow::Result<u32> {
    let row = db
        .query_one(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pg_backend_pid()",
        ))
        .await?
        .context("pg_backend_pid")?;
    let backend: i32 = row.try_get_by_index(0)?;
    stat_fields(backend.unsigned_abs())
        .and_then(|f| f.get(1).copied())
        .and_then(|pid| u32::try_from(pid).ok())
        .context("postmaster pid")
}

/// The live child processes of `parent`.
pub(crate) fn children(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| stat_fields(pid).and_then(|f| f.get(1).copied()) == Some(u64::from(parent)))
        .collect()
}

/// Pins every thread of `pid` to `cpus`.
pub(crate) fn taskset(cpus: &str, pid: u32) -> anyhow::Result<()> {
    let status = std::process::Command::new("taskset")
        .args(["-a", "-c", "-p", cpus, &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .context("running taskset (util-linux)")?;
    if !status.success() {
        bail!("taskset -c {cpus} -p {pid}: {status}");
    }
    Ok(())
}
