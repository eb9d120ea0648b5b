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

/// The live descendants of `ancestor` (its threads aside), following the `children` files of
/// each process's threads down from it: a few reads when there are few, whatever else the machine
/// runs. Where the kernel has no `children` files, one scan of /proc.
pub(crate) fn descendants(ancestor: u32) -> Vec<u32> {
    let me = std::process::id();
    if fs::metadata(format!("/proc/self/task/{me}/children")).is_err() {
        return descendants_by_scan(ancestor);
    }
    let mut found = Vec::new();
    let mut queue = vec![ancestor];
    while let Some(pid) = queue.pop() {
        for child in children(pid) {
            if stat(child).is_some_and(|s| s.live()) {
                found.push(child);
            }
            queue.push(child);
        }
    }
    found
}

/// The children of every thread of `pid` (none when it is gone).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// `descendants` from one scan of /proc.
fn descendants_by_scan(ancestor: u32) -> Vec<u32> {
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
    fn descendants_reach_grandchildren_and_match_a_full_scan() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30"])
            .spawn()
            .unwrap();
        let me = std::process::id();
        // Other tests in this process start children too: look only at this one's tree.
        let tree = |pids: Vec<u32>| -> Vec<u32> {
            let mut ours: Vec<u32> = pids
                .into_iter()
                .filter(|&p| p == child.id() || stat(p).is_some_and(|s| s.ppid == child.id()))
                .collect();
            ours.sort_unstable();
            ours
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut found = tree(descendants(me));
        while found.len() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            found = tree(descendants(me));
        }
        let scanned = tree(descendants_by_scan(me));
        for pid in &found {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(*pid).unwrap()),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = child.wait();
        assert_eq!(found.len(), 3, "sh and both sleeps: {found:?}");
        assert_eq!(found, scanned);
    }

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
