//! The Slurm commands the backend runs: `sbatch`, `squeue`, `scancel`, `scontrol`. Each is a
//! plain process (`SLURM_CONF` and the rest of the environment passed on); a failure is an
//! error with what the command said, never a panic.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// An array element's state as `squeue` says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementState {
    /// `PENDING`, `RUNNING`, `COMPLETED`, `TIMEOUT`, `CANCELLED`, ...
    pub state: String,
    /// Why it is in that state (`None` when Slurm gives none).
    pub reason: String,
    /// `code:signal`.
    pub exit: (Option<i32>, Option<i32>),
}

impl ElementState {
    /// Whether the element has ended.
    pub fn ended(&self) -> bool {
        !matches!(
            self.state.as_str(),
            "PENDING"
                | "RUNNING"
                | "CONFIGURING"
                | "COMPLETING"
                | "SUSPENDED"
                | "REQUEUED"
                | "RESIZING"
                | "SIGNALING"
                | "STAGE_OUT"
                | "STOPPED"
                | "REQUEUE_HOLD"
                | "REQUEUE_FED"
        )
    }
}

fn run(command: &mut Command, input: Option<&str>) -> Result<String, String> {
    let name = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {name}: {e}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write to {name}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{name} failed: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let said = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        Err(format!("{name} failed ({}): {said}", out.status))
    }
}

/// `MaxArraySize` from `scontrol show config` (1001, Slurm's default, when it cannot be read).
pub fn max_array_size() -> u64 {
    run(Command::new("scontrol").args(["show", "config"]), None)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let (key, value) = line.split_once('=')?;
                (key.trim() == "MaxArraySize").then(|| value.trim().parse().ok())?
            })
        })
        .unwrap_or(1001)
}

/// Submits `script` with `args`; returns the array's job id.
pub fn sbatch(args: &[String], script: &str) -> Result<String, String> {
    let out = run(
        Command::new("sbatch").arg("--parsable").args(args),
        Some(script),
    )?;
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let id = out.trim().split(';').next().unwrap_or("").to_owned();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("sbatch printed no job id: {out:?}"));
    }
    Ok(id)
}

/// The state of every element of the arrays `ids`, by `<array job id>_<index>`.
pub fn squeue(ids: &[String]) -> Result<HashMap<String, ElementState>, String> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    match squeue_all(ids) {
        // One array Slurm forgot (past MinJobAge) fails the whole query: ask one by one, and
        // leave the forgotten ones out (their elements are then unknown to Slurm).
        Err(e) if e.contains("Invalid job id") => {
            let mut states = HashMap::new();
            for id in ids {
                match squeue_all(std::slice::from_ref(id)) {
                    Ok(found) => states.extend(found),
                    Err(e) if e.contains("Invalid job id") => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(states)
        }
        result => result,
    }
}

fn squeue_all(ids: &[String]) -> Result<HashMap<String, ElementState>, String> {
    let out = run(
        Command::new("squeue")
            .args(["--states=all", "--array", "--noheader"])
            .arg("--Format=JobArrayID:|,State:|,Reason:|,exit_code:|")
            .arg(format!("--jobs={}", ids.join(","))),
        None,
    )?;
    let mut states = HashMap::new();
    for line in out.lines() {
        let mut fields = line.split('|');
        let (Some(id), Some(state), reason, exit) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        // `code` or `code:signal`.
        let mut exit = exit.unwrap_or("").trim().split(':');
        let code = exit.next().and_then(|c| c.parse().ok());
        let signal = exit.next().and_then(|s| s.parse().ok()).filter(|&s| s != 0);
        states.insert(
            id.trim().to_owned(),
            ElementState {
                // `CANCELLED by 0` is `CANCELLED`.
                state: state.split_whitespace().next().unwrap_or("").to_owned(),
                reason: reason.unwrap_or("").trim().to_owned(),
                exit: (code, signal),
            },
        );
    }
    Ok(states)
}

/// An element's state from `sacct`, when the cluster keeps accounting (`None` otherwise).
pub fn sacct(id: &str) -> Option<ElementState> {
    let out = run(
        Command::new("sacct")
            .args([
                "--noheader",
                "--parsable2",
                "--format=JobID,State,ExitCode",
                "--jobs",
            ])
            .arg(id),
        None,
    )
    .ok()?;
    let line = out.lines().find(|l| l.split('|').next() == Some(id))?;
    let mut fields = line.split('|').skip(1);
    let state = fields.next()?.split_whitespace().next()?.to_owned();
    let mut exit = fields.next().unwrap_or("").split(':');
    Some(ElementState {
        state,
        reason: String::new(),
        exit: (
            exit.next().and_then(|c| c.parse().ok()),
            exit.next().and_then(|s| s.parse().ok()).filter(|&s| s != 0),
        ),
    })
}

/// `scancel` of the arrays `ids`, with `signal` (`None`: Slurm's own cancel).
pub fn scancel(ids: &[String], signal: Option<&str>) -> Result<(), String> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut command = Command::new("scancel");
    if let Some(signal) = signal {
        command.arg(format!("--signal={signal}"));
    }
    run(command.args(ids), None).map(drop)
}

/// `scancel --state=PENDING` of the arrays `ids`: their queued elements never start.
pub fn scancel_pending(ids: &[String]) -> Result<(), String> {
    if ids.is_empty() {
        return Ok(());
    }
    run(
        Command::new("scancel").arg("--state=PENDING").args(ids),
        None,
    )
    .map(drop)
}

/// Lets array `id` run `throttle` elements at once (`scontrol update ArrayTaskThrottle`).
pub fn set_throttle(id: &str, throttle: usize) -> Result<(), String> {
    run(
        Command::new("scontrol")
            .arg("update")
            .arg(format!("JobId={id}"))
            .arg(format!("ArrayTaskThrottle={throttle}")),
        None,
    )
    .map(drop)
}

/// `0-9,12,15-20`: a sorted list of indexes as Slurm's array syntax.
pub fn array_spec(indexes: &[u64]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < indexes.len() {
        let start = indexes[i];
        let mut end = start;
        while i + 1 < indexes.len() && indexes[i + 1] == end + 1 {
            i += 1;
            end = indexes[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::array_spec;

    #[test]
    fn indexes_are_written_as_ranges() {
        assert_eq!(array_spec(&[0, 1, 2, 3, 7, 9, 10]), "0-3,7,9-10");
        assert_eq!(array_spec(&[5]), "5");
    }
}
