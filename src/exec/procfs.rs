//! The little of Linux's /proc that leak detection needs: a process's state, parent and group,
//! its environment, and poolrun's own children.

use std::fs;

/// Fields of `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
}

impl Stat {
    /// Whether the process is still running (not a zombie waiting to be reaped).
    pub fn live(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Reads `/proc/<pid>/stat`; `None` when the process is gone.
pub(crate) fn stat(pid: u32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold anything, spaces and ')' included.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    let group = fields.next()?.parse().ok()?;
    Some(Stat {
        state,
        ppid: parent,
        pgrp: group,
    })
}

/// Every pid in /proc.
pub(crate) fn all_pids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The live processes in process group `pgid`.
pub(crate) fn group_members(pgid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&pid| stat(pid).is_some_and(|s| s.pgrp == pgid && s.live()))
        .collect()
}

/// The children of poolrun's main thread: the orphans handed to poolrun as a subreaper (the
/// kernel gives them to the first live thread, the main one), but not the tasks' own leaders,
/// which are children of the worker threads that spawned them. Falls back to a scan of /proc
/// where the kernel lacks `children` files.
pub(crate) fn orphans_adopted() -> Vec<u32> {
    let me = std::process::id();
    match fs::read_to_string(format!("/proc/self/task/{me}/children")) {
        Ok(text) => text
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
        Err(_) => all_pids()
            .into_iter()
            .filter(|&pid| stat(pid).is_some_and(|s| s.ppid == me))
            .collect(),
    }
}

/// The live descendants of `ancestor` (its threads aside), from one scan of /proc.
pub(crate) fn descendants(ancestor: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = all_pids()
        .into_iter()
        .filter_map(|pid| stat(pid).filter(Stat::live).map(|s| (pid, s.ppid)))
        .collect();
    let mut found = vec![ancestor];
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        found.extend(
            parents
                .iter()
                .filter(|&&(pid, ppid)| ppid == parent && pid != ancestor)
                .map(|&(pid, _)| pid),
        );
        next += 1;
    }
    found.remove(0);
    found
}

/// Whether `/proc/<pid>/environ` holds every `NAME=value` in `wanted`.
pub(crate) fn environ_has(pid: u32, wanted: &[&str]) -> bool {
    let Ok(bytes) = fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    wanted
        .iter()
        .all(|w| bytes.split(|&b| b == 0).any(|entry| entry == w.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = stat(std::process::id()).unwrap();
        assert!(me.live());
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(all_pids().contains(&std::process::id()));
        assert!(!environ_has(
            std::process::id(),
            &["POOLRUN_NO_SUCH_VARIABLE=1"]
        ));
    }
}
