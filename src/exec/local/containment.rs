//! What keeps a run's processes from outliving it, whatever they do to escape: a cgroup per
//! worker slot, emptied after each attempt, where poolrun can make one (`cgroup.rs`); and in any
//! case poolrun as the subreaper of everything its tasks start, with a sweep at the end of the
//! run that kills every descendant still alive, again and again until none is left.
//!
//! A run is known by its identity, recorded in the journal: its cgroup's folder and a random
//! token in its tasks' environment. A resumed run kills the leftovers of a killed one by that
//! identity, never by a name another run could share.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::exec::local::cgroup::{self, RunCgroup, SlotCgroup, Version};
use crate::exec::local::{procfs, unix};

/// How a run's processes are contained, for the run's length.
#[derive(Debug)]
pub struct Containment {
    cgroup: Option<RunCgroup>,
    /// Each worker slot's cgroup, by rayon thread index, once the pool made them.
    slots: OnceLock<Vec<Option<SlotCgroup>>>,
    token: String,
}

/// What identifies a run's processes, as the journal records it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// In every task's environment as `POOLRUN_RUN_TOKEN`: 128 random bits.
    pub token: String,
    /// The run's cgroup folder, when it had one.
    pub cgroup: Option<PathBuf>,
}

/// `off`: poolrun makes no cgroups; `v1`, `v2`, `v2-join`: only of that kind.
const CGROUPS_VARIABLE: &str = "POOLRUN_CGROUPS";

/// The environment variable that carries the run's token.
pub(crate) const TOKEN_VARIABLE: &str = "POOLRUN_RUN_TOKEN";

/// A containment being taken down on a thread of its own (see `Containment::release`);
/// dropping this waits until it is down.
#[must_use = "dropping the release waits for it"]
pub struct Release(Option<std::thread::JoinHandle<()>>);

impl Drop for Release {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}

impl Containment {
    /// Takes the run's cgroups down (as dropping it would) on a thread of its own, once its
    /// tasks are done and swept, so that the kernel's removing them (0.5-1.5 ms, and several
    /// more after an idle spell) overlaps the report's writing and syncing.
    pub fn release(self) -> Release {
        // Should no thread start, the closure, and with it the containment, is dropped here.
        let thread = std::thread::Builder::new()
            .name("poolrun-release".into())
            .spawn(move || drop(self));
        Release(thread.ok())
    }

    /// Sets up containment for a session of run `run_id`; `need_pids` asks for cgroups that can
    /// limit a task's processes (`max-processes`).
    pub fn new(run_id: &str, need_pids: bool) -> Self {
        let name = format!("{run_id}-{}", std::process::id());
        // `POOLRUN_CGROUPS=off` keeps to the subreaper, `v1`, `v2` or `v2-join` to one kind of
        // cgroup (to compare them, or where cgroups misbehave).
        let only = match std::env::var(CGROUPS_VARIABLE).as_deref() {
            Ok("off") => None,
            Ok("v1") => Some(Some(Version::V1)),
            Ok("v2") => Some(Some(Version::V2)),
            Ok("v2-join") => Some(Some(Version::V2Join)),
            _ => Some(None),
        };
        let cgroup = only.and_then(|only| RunCgroup::create(&name, only, need_pids));
        if cgroup.is_none() {
            tracing::debug!(
                "no cgroup can be made here: escaped processes are found as poolrun's adopted descendants"
            );
        }
        let random = (
            RandomState::new().hash_one(run_id),
            RandomState::new().hash_one(std::process::id()),
        );
        Self {
            cgroup,
            slots: OnceLock::new(),
            token: format!("{:016x}{:016x}", random.0, random.1),
        }
    }

    /// Makes the cgroups of `count` worker slots, each limiting a task to `max` processes when
    /// given; a slot whose cgroup cannot be made runs its tasks without one.
    pub(crate) fn make_slots(&self, count: usize, max: Option<u32>) {
        let slots = (0..count)
            .map(|i| {
                let cgroup = self.cgroup.as_ref()?;
                cgroup
                    .slot(i, max)
                    .inspect_err(|e| tracing::warn!("cannot make a cgroup for worker {i}: {e}"))
                    .ok()
            })
            .collect();
        let _ = self.slots.set(slots);
    }

    /// The cgroup of the worker slot the calling thread is.
    pub(crate) fn slot(&self) -> Option<&SlotCgroup> {
        let index = rayon::current_thread_index()?;
        self.slots.get()?.get(index)?.as_ref()
    }

    /// Called by each worker before its first task: where the cgroup version places threads,
    /// the worker moves into its slot, so its tasks are born there.
    pub(crate) fn enter_slot(&self) {
        if let (Some(cgroup), Some(slot)) = (&self.cgroup, self.slot())
            && let Err(e) = cgroup.enter(slot)
        {
            tracing::warn!("cannot move a worker into its cgroup: {e}");
        }
    }

    /// Called by each worker after its last task.
    pub(crate) fn leave_slot(&self) {
        if let (Some(cgroup), Some(_)) = (&self.cgroup, self.slot()) {
            let _ = cgroup.leave();
        }
    }

    /// Whether task cgroups enforce `max-processes`.
    pub(crate) fn limits_processes(&self) -> bool {
        self.cgroup
            .as_ref()
            .is_some_and(RunCgroup::limits_processes)
    }

    /// What identifies this session's processes.
    pub fn identity(&self) -> Identity {
        Identity {
            token: self.token.clone(),
            cgroup: self.cgroup.as_ref().map(|c| c.dir().to_owned()),
        }
    }

    /// The token tasks carry in their environment.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// At the end of the run, with no task running: kills whatever tasks left behind that their
    /// own attempts did not catch (escaped before the cgroup, or orphaned after the attempt's
    /// check), repeatedly until nothing is left. Returns how many processes it killed.
    pub fn sweep(&self) -> u32 {
        let mut killed = self.cgroup.as_ref().map_or(0, RunCgroup::empty);
        killed += sweep_descendants();
        unix::reap_orphans();
        killed
    }
}

/// Kills every live descendant of poolrun (as their subreaper, poolrun inherits every orphan its
/// tasks leave), round after round until a round finds none: a process may fork while the
/// round before it kills its parent. Returns how many distinct processes it killed.
fn sweep_descendants() -> u32 {
    let mut killed = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        unix::reap_orphans();
        let alive = procfs::descendants(std::process::id());
        if alive.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in alive {
            unix::kill_process(pid);
            killed.insert(pid);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    u32::try_from(killed.len()).unwrap_or(u32::MAX)
}

/// Kills what the sessions of a run that poolrun no longer drives (it was killed) left running,
/// found by their identities: everything in their cgroups, and every process with one of their
/// tokens in its environment. `run_id` must name the run: a cgroup folder that is not the run's
/// (a damaged or forged journal) is left alone. Returns how many processes it killed.
pub fn kill_leftovers(run_id: &str, identities: &[Identity]) -> u32 {
    let prefix = format!("poolrun-{run_id}-");
    let mut killed = 0;
    for dir in identities.iter().filter_map(|i| i.cgroup.as_deref()) {
        if is_run_cgroup(dir, &prefix) {
            killed += cgroup::empty_leftover(dir);
        }
    }
    let marks: Vec<String> = identities
        .iter()
        .filter(|i| !i.token.is_empty())
        .map(|i| format!("{TOKEN_VARIABLE}={}", i.token))
        .collect();
    if !marks.is_empty() {
        killed += unix::kill_marked(&marks);
    }
    killed
}

/// Whether `dir` is a cgroup folder named for the run, inside a cgroup file system.
fn is_run_cgroup(dir: &Path, prefix: &str) -> bool {
    dir.starts_with("/sys/fs/cgroup")
        && dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        && !dir
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
}
