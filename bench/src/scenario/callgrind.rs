//! The callgrind mode of the `cpu` scenario: switching the server's
//! instruction counting on and off, and reading the counts it dumps.

use std::process::Stdio;

use tokio::process::Command;

use crate::server::Server;
use crate::Res;

/// Runs `callgrind_control WHAT PID` on the server (`--instr=on`, `--dump`, …).
pub async fn control(server: &Server, what: &str) -> Res<()> {
    let pid = server.pid().to_string();
    let ok = Command::new("callgrind_control")
        .args([what, &pid])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .map_err(|e| format!("callgrind_control: {e}"))?
        .success();
    if ok {
        Ok(())
    } else {
        Err(format!("callgrind_control {what} {pid} failed"))
    }
}

/// Dumps the server's counts and returns the instructions counted.
pub async fn total(server: &Server) -> Res<f64> {
    control(server, "--dump").await?;
    let prefix = format!("mpc-bench-callgrind.{}", server.pid());
    let mut total = 0.0;
    for entry in std::fs::read_dir(std::env::temp_dir()).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with(&prefix) {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        eprintln!(
            "    callgrind dump (callgrind_annotate it): {}",
            path.display()
        );
        if let Some(v) = text.lines().find_map(|l| l.strip_prefix("summary: ")) {
            total += v
                .trim()
                .parse::<f64>()
                .map_err(|e| format!("{name}: {e}"))?;
        }
    }
    Ok(total)
}
