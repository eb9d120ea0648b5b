//! Starting a task's process: its argv, its environment, its working directory, its output
//! files, its own process group, and whatever `ChildSetup` asks for.
//!
//! On Linux a worker starts its tasks itself, with a `vfork`-style `clone` onto a stack it keeps:
//! the child shares poolrun's memory until it `exec`s, and the worker waits for that. The
//! standard library's `posix_spawn` path does the same, with costs a general-purpose spawn cannot
//! skip and poolrun can: it copies poolrun's whole environment into a map on every start, opens
//! `/dev/null` for every start, maps and unmaps a new stack for every child (and every unmap of
//! a multi-threaded process's memory interrupts the other cores), and glibc's child queries and
//! resets each of the 64 signal handlers, about 120 system calls, where poolrun knows which
//! handlers it installed. Elsewhere tasks start through `std::process::Command`.

use std::borrow::Cow;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::exec::local::unix::ChildSetup;
use crate::plan::Task;

/// The per-task variables that a task may lack: where it has none (no seed, a chunk of several
/// items, a key an `include` gave only other combinations), none comes through from poolrun's
/// environment (a poolrun run inside another's task).
const TASK_VARIABLES: [&str; 6] = [
    "POOLRUN_ITEM",
    "POOLRUN_START",
    "POOLRUN_LAST",
    "POOLRUN_END",
    "POOLRUN_COUNT",
    "POOLRUN_SEED",
];

/// Where a command without a `/` is looked for when its environment has no `PATH`: glibc's
/// `execvp` default.
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// The environment every task of a run starts from, built once: poolrun's own (or only the
/// `env-pass` variables of an `env-clear` job) without the variables that belong to a task,
/// plus the run's variables. Each task adds its job `env`, its id, its attempt and its item,
/// parameter and seed variables.
#[derive(Debug)]
pub(crate) struct Environment {
    /// `NAME=value` entries, each with the length of its name.
    base: Vec<(usize, CString)>,
    /// Names a job's `env` cannot set: the run's variables win, and the per-task variables
    /// come from the task alone.
    reserved: Vec<OsString>,
}

/// The run's variables, the same for every task.
#[derive(Debug)]
pub(crate) struct RunVariables<'a> {
    pub job_name: &'a str,
    pub run_id: &'a str,
    pub token_name: &'a str,
    pub token: &'a str,
    pub run_dir: &'a Path,
}

/// The name of an entry made by `entry`.
fn name_of((len, entry): &(usize, CString)) -> &[u8] {
    &entry.as_bytes()[..*len]
}

/// `NAME=value`, and the length of the name.
fn entry(name: &OsStr, value: &OsStr) -> io::Result<(usize, CString)> {
    let mut entry = Vec::with_capacity(name.len() + value.len() + 2);
    entry.extend_from_slice(name.as_bytes());
    entry.push(b'=');
    entry.extend_from_slice(value.as_bytes());
    Ok((name.len(), c_string(entry)?))
}

impl Environment {
    /// `env_clear`: only the variables named in `env_pass` come from poolrun's environment.
    pub fn new(env_clear: bool, env_pass: &[String], run: &RunVariables<'_>) -> Self {
        let inherited: Vec<(OsString, OsString)> = if env_clear {
            env_pass
                .iter()
                .filter_map(|name| Some((OsString::from(name), std::env::var_os(name)?)))
                .collect()
        } else {
            std::env::vars_os().collect()
        };
        let run_vars = [
            ("POOLRUN_JOB", OsStr::new(run.job_name)),
            ("POOLRUN_RUN_ID", OsStr::new(run.run_id)),
            (run.token_name, OsStr::new(run.token)),
            ("POOLRUN_RUN_DIR", run.run_dir.as_os_str()),
        ];
        let mut reserved: Vec<OsString> = TASK_VARIABLES
            .iter()
            .chain(&["POOLRUN_TASK_ID", "POOLRUN_ATTEMPT"])
            .chain(run_vars.iter().map(|(name, _)| name))
            .map(OsString::from)
            .collect();
        // Parameters poolrun itself was given are not passed on: each task has its own.
        reserved.extend(
            std::env::vars_os()
                .map(|(name, _)| name)
                .filter(|name| name.as_bytes().starts_with(b"POOLRUN_PARAM_")),
        );
        // Neither the environment nor a path can hold a NUL byte, nor a job name or run id.
        let base = inherited
            .iter()
            .filter(|(name, _)| !reserved.contains(name))
            .map(|(name, value)| (name.as_os_str(), value.as_os_str()))
            .chain(
                run_vars
                    .iter()
                    .map(|(name, value)| (OsStr::new(name), *value)),
            )
            .filter_map(|(name, value)| entry(name, value).ok())
            .collect();
        Self { base, reserved }
    }

    /// Task `task`'s environment for attempt `attempt`: of the base, the job's `env` and the
    /// task's own variables, the last entry of each name.
    pub fn for_task(&self, task: &Task, attempt: u32) -> io::Result<TaskEnv<'_>> {
        let mut own: Vec<(usize, CString)> = Vec::with_capacity(task.env.len() + 8);
        for (name, value) in &task.env {
            if !self.reserved.iter().any(|r| r == name.as_str()) {
                own.push(entry(OsStr::new(name), value)?);
            }
        }
        own.push(entry(
            OsStr::new("POOLRUN_TASK_ID"),
            OsStr::new(&task.id.to_string()),
        )?);
        own.push(entry(
            OsStr::new("POOLRUN_ATTEMPT"),
            OsStr::new(&attempt.to_string()),
        )?);
        for (name, value) in task.variables() {
            own.push(entry(OsStr::new(&name), &value)?);
        }
        let overridden = |of: &(usize, CString), from: usize| {
            own[from..]
                .iter()
                .any(|later| name_of(later) == name_of(of))
        };
        let mut entries: Vec<Cow<'_, CStr>> = self
            .base
            .iter()
            .filter(|e| !overridden(e, 0))
            .map(|(_, e)| Cow::Borrowed(e.as_c_str()))
            .collect();
        let keep: Vec<bool> = (0..own.len())
            .map(|i| !overridden(&own[i], i + 1))
            .collect();
        entries.extend(
            own.into_iter()
                .zip(keep)
                .filter_map(|((_, entry), keep)| keep.then_some(Cow::Owned(entry))),
        );
        Ok(TaskEnv { entries })
    }
}

/// One task's environment, as `NAME=value` entries with unique names.
pub(crate) struct TaskEnv<'a> {
    entries: Vec<Cow<'a, CStr>>,
}

impl TaskEnv<'_> {
    /// The value of variable `name`.
    fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.entries.iter().find_map(|e| {
            e.to_bytes()
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(b"="))
        })
    }
}

/// What one start is made of.
pub(crate) struct Launch<'a> {
    pub argv: &'a [OsString],
    pub cwd: &'a Path,
    pub env: &'a TaskEnv<'a>,
    pub stdout: BorrowedFd<'a>,
    pub stderr: BorrowedFd<'a>,
    pub setup: &'a ChildSetup,
}

/// The candidate files for `program`, in the order `execvp` tries them: `program` itself when
/// it names a path, else `program` in each directory of the environment's `PATH`.
fn candidates(program: &OsStr, path: Option<&[u8]>) -> Vec<Vec<u8>> {
    let program = program.as_bytes();
    if program.contains(&b'/') {
        return vec![program.to_vec()];
    }
    let path = path.unwrap_or(DEFAULT_PATH);
    path.split(|&b| b == b':')
        .map(|dir| {
            if dir.is_empty() {
                // An empty entry is the working directory.
                program.to_vec()
            } else {
                let mut file = dir.to_vec();
                file.push(b'/');
                file.extend_from_slice(program);
                file
            }
        })
        .collect()
}

fn c_string(bytes: impl Into<Vec<u8>>) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a NUL byte in the command, its environment or its working directory",
        )
    })
}

/// A worker's way of starting tasks; on Linux it holds the stack its children start on.
pub(crate) struct Spawner {
    /// `/dev/null`, every task's stdin.
    null: OwnedFd,
    #[cfg(target_os = "linux")]
    linux: linux::Starter,
}

impl Spawner {
    pub fn new() -> io::Result<Self> {
        let null = std::fs::File::open("/dev/null")?.into();
        Ok(Self {
            null,
            #[cfg(target_os = "linux")]
            linux: linux::Starter::new()?,
        })
    }

    /// Starts `launch` and returns its process id: the leader of a new process group, with
    /// `/dev/null` as its stdin. The caller reaps it.
    pub fn spawn(&mut self, launch: &Launch<'_>) -> io::Result<u32> {
        let Some(program) = launch.argv.first() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the command is empty",
            ));
        };
        let paths = candidates(program, launch.env.get(b"PATH"))
            .into_iter()
            .map(c_string)
            .collect::<io::Result<Vec<_>>>()?;
        let argv = launch
            .argv
            .iter()
            .map(|a| c_string(a.as_bytes()))
            .collect::<io::Result<Vec<_>>>()?;
        let cwd = c_string(launch.cwd.as_os_str().as_bytes())?;
        let stdio = [
            self.null.as_raw_fd(),
            launch.stdout.as_raw_fd(),
            launch.stderr.as_raw_fd(),
        ];
        #[cfg(target_os = "linux")]
        {
            self.linux.spawn(
                &paths,
                &argv,
                &launch.env.entries,
                &cwd,
                stdio,
                launch.setup,
            )
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = stdio;
            portable::spawn(&paths, launch, std::os::fd::AsFd::as_fd(&self.null))
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    //! The `vfork`-style start. Between `clone` and `exec` the child runs on its own stack but
    //! in poolrun's memory, with every signal blocked, and makes only system calls on data the
    //! worker prepared: it allocates nothing, takes no lock and writes to poolrun's memory only
    //! its error number, into the worker's `ChildArgs`.
    #![allow(
        unsafe_code,
        reason = "a vfork-style clone, its child and its stack are raw system calls"
    )]

    use std::borrow::Cow;
    use std::ffi::{CStr, CString, c_char, c_int, c_void};
    use std::io;
    use std::ptr;

    use nix::libc;

    use crate::exec::local::unix::ChildSetup;

    /// The child's stack: it runs a few system calls and `execve`, which copies the argv and
    /// environment from poolrun's memory.
    const STACK_BYTES: usize = 128 * 1024;

    /// A guard page below the stack, so an overflow faults instead of writing over poolrun.
    const GUARD_BYTES: usize = 4096;

    /// A worker's stack for its children, and the signals poolrun handles.
    pub(super) struct Starter {
        stack: *mut c_void,
        /// The signals with a handler in poolrun: a child resets them before it unblocks
        /// signals, so no handler ever runs in the child on poolrun's memory.
        handled: Vec<c_int>,
    }

    /// Everything the child reads, and where it writes why it failed.
    struct ChildArgs {
        paths: Vec<*const c_char>,
        argv: Vec<*const c_char>,
        envp: Vec<*const c_char>,
        cwd: *const c_char,
        stdio: [c_int; 3],
        handled: *const c_int,
        handled_count: usize,
        cgroup_procs: *const c_char,
        memory_limit: Option<u64>,
        nproc_limit: Option<u64>,
        /// 0, or the error number of the step that failed.
        error: c_int,
    }

    fn pointers(strings: &[CString]) -> Vec<*const c_char> {
        strings
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(ptr::null()))
            .collect()
    }

    impl Starter {
        pub fn new() -> io::Result<Self> {
            // SAFETY: an anonymous private mapping with no address hint, of a size we own;
            // the guard page's protection changes only within it.
            let stack = unsafe {
                let stack = libc::mmap(
                    ptr::null_mut(),
                    STACK_BYTES + GUARD_BYTES,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                    -1,
                    0,
                );
                if stack == libc::MAP_FAILED {
                    return Err(io::Error::last_os_error());
                }
                if libc::mprotect(stack, GUARD_BYTES, libc::PROT_NONE) != 0 {
                    let e = io::Error::last_os_error();
                    libc::munmap(stack, STACK_BYTES + GUARD_BYTES);
                    return Err(e);
                }
                stack
            };
            Ok(Self {
                stack,
                handled: handled_signals(),
            })
        }

        pub fn spawn(
            &mut self,
            paths: &[CString],
            argv: &[CString],
            env: &[Cow<'_, CStr>],
            cwd: &CStr,
            stdio: [c_int; 3],
            setup: &ChildSetup,
        ) -> io::Result<u32> {
            let mut child_args = ChildArgs {
                paths: pointers(paths),
                argv: pointers(argv),
                envp: env
                    .iter()
                    .map(|e| e.as_ptr())
                    .chain(std::iter::once(ptr::null()))
                    .collect(),
                cwd: cwd.as_ptr(),
                stdio,
                handled: self.handled.as_ptr(),
                handled_count: self.handled.len(),
                cgroup_procs: setup
                    .cgroup_procs
                    .as_ref()
                    .map_or(ptr::null(), |p| p.as_ptr()),
                memory_limit: setup.memory_limit,
                nproc_limit: setup.nproc_limit.map(u64::from),
                error: 0,
            };
            // SAFETY: `clone` with CLONE_VM | CLONE_VFORK suspends this thread until the child
            // has called `execve` or exited, so `child_args` and everything it points to
            // outlive the child's use of them; the child runs on `self.stack`, which no one
            // else uses while this thread is suspended, from its top (the mapping is
            // page-aligned). Every signal is blocked across the clone so no handler runs in the
            // child before it resets them.
            unsafe {
                let mut all: libc::sigset_t = std::mem::zeroed();
                let mut old: libc::sigset_t = std::mem::zeroed();
                libc::sigfillset(&raw mut all);
                libc::pthread_sigmask(libc::SIG_SETMASK, &raw const all, &raw mut old);
                let top = self.stack.cast::<u8>().add(STACK_BYTES + GUARD_BYTES);
                let pid = libc::clone(
                    child,
                    top.cast::<c_void>(),
                    libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                    (&raw mut child_args).cast::<c_void>(),
                );
                let clone_error = io::Error::last_os_error();
                libc::pthread_sigmask(libc::SIG_SETMASK, &raw const old, ptr::null_mut());
                if pid < 0 {
                    return Err(clone_error);
                }
                let error = ptr::read_volatile(&raw const child_args.error);
                if error != 0 {
                    // The child exited without running the command: reap it.
                    let mut status = 0;
                    while libc::waitpid(pid, &raw mut status, 0) < 0
                        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
                    {
                    }
                    return Err(io::Error::from_raw_os_error(error));
                }
                Ok(u32::try_from(pid).unwrap_or_default())
            }
        }
    }

    impl Drop for Starter {
        fn drop(&mut self) {
            // SAFETY: the mapping made in `new`, which no child uses once `spawn` returned.
            unsafe {
                libc::munmap(self.stack, STACK_BYTES + GUARD_BYTES);
            }
        }
    }

    /// The signals that have a handler in this process.
    fn handled_signals() -> Vec<c_int> {
        (1..=libc::SIGRTMAX())
            .filter(|&signal| {
                // SAFETY: only reads the signal's disposition into a zeroed struct.
                unsafe {
                    let mut action: libc::sigaction = std::mem::zeroed();
                    libc::sigaction(signal, ptr::null(), &raw mut action) == 0
                        && action.sa_sigaction != libc::SIG_DFL
                        && action.sa_sigaction != libc::SIG_IGN
                }
            })
            .collect()
    }

    /// The child, from `clone` to `execve`: it never returns.
    extern "C" fn child(arg: *mut c_void) -> c_int {
        // SAFETY: `arg` is the suspended worker's `ChildArgs`, valid until the child execs or
        // exits; see `Starter::spawn`.
        unsafe {
            let args = arg.cast::<ChildArgs>();
            let error = start(&*args);
            ptr::write_volatile(&raw mut (*args).error, error.max(1));
            libc::_exit(127)
        }
    }

    /// The child's steps; returns the error number of the one that failed (`execve` returns
    /// only when it failed).
    ///
    /// # Safety
    ///
    /// Only in the child of `Starter::spawn`.
    unsafe fn start(args: &ChildArgs) -> c_int {
        let errno = nix::errno::Errno::last_raw;
        // SAFETY: system calls on the worker's prepared data; see the module's note.
        unsafe {
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            let handled = std::slice::from_raw_parts(args.handled, args.handled_count);
            // SIGPIPE too: Rust programs ignore it, and an ignored signal stays ignored
            // across exec; the standard library resets it for its children as well.
            for &signal in handled.iter().chain(&[libc::SIGPIPE]) {
                libc::sigaction(signal, &raw const default, ptr::null_mut());
            }
            if libc::setpgid(0, 0) != 0 {
                return errno();
            }
            if !args.cgroup_procs.is_null() {
                let fd = libc::open(args.cgroup_procs, libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return errno();
                }
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                let write_error = errno();
                libc::close(fd);
                if written != 1 {
                    return write_error;
                }
            }
            for (resource, limit) in [
                (libc::RLIMIT_AS, args.memory_limit),
                (libc::RLIMIT_NPROC, args.nproc_limit),
            ] {
                if let Some(limit) = limit {
                    let rlimit = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(resource, &raw const rlimit) != 0 {
                        return errno();
                    }
                }
            }
            for (target, &fd) in (0..).zip(&args.stdio) {
                // `dup2` onto itself would keep the close-on-exec flag.
                let done = if fd == target {
                    libc::fcntl(fd, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, target)
                };
                if done < 0 {
                    return errno();
                }
            }
            if libc::chdir(args.cwd) != 0 {
                return errno();
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&raw mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &raw const none, ptr::null_mut());
            // As `execvp`: go on past a candidate that does not exist, remember one that may
            // not be run, stop at any other error.
            let mut error = libc::ENOENT;
            let mut denied = false;
            for &path in args.paths.iter().take_while(|p| !p.is_null()) {
                libc::execve(path, args.argv.as_ptr(), args.envp.as_ptr());
                error = errno();
                match error {
                    libc::EACCES => denied = true,
                    libc::ENOENT
                    | libc::ENOTDIR
                    | libc::ESTALE
                    | libc::ELOOP
                    | libc::ENAMETOOLONG
                    | libc::ENODEV
                    | libc::ETIMEDOUT => {}
                    _ => return error,
                }
            }
            if denied { libc::EACCES } else { error }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod portable {
    //! Elsewhere: `std::process::Command`; its `Child` is dropped, which leaves the process
    //! running for the worker to wait for by its id.

    use std::ffi::{CString, OsStr};
    use std::io;
    use std::os::fd::BorrowedFd;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    use super::Launch;

    pub(super) fn spawn(
        paths: &[CString],
        launch: &Launch<'_>,
        null: BorrowedFd<'_>,
    ) -> io::Result<u32> {
        // The standard library looks the command up itself.
        let _ = paths;
        let file = |fd: BorrowedFd<'_>| fd.try_clone_to_owned().map(std::fs::File::from);
        let mut command = Command::new(&launch.argv[0]);
        command
            .args(&launch.argv[1..])
            .current_dir(launch.cwd)
            .env_clear()
            .envs(launch.env.entries.iter().filter_map(|e| {
                let (name, value) = e
                    .to_bytes()
                    .split_at(e.to_bytes().iter().position(|&b| b == b'=')?);
                Some((OsStr::from_bytes(name), OsStr::from_bytes(&value[1..])))
            }))
            .stdin(file(null)?)
            .stdout(file(launch.stdout)?)
            .stderr(file(launch.stderr)?)
            .process_group(0);
        // Limits and cgroups are Linux's.
        let _ = launch.setup;
        Ok(command.spawn()?.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_command_is_looked_for_in_each_path_directory_in_order() {
        let found = candidates(OsStr::new("tool"), Some(b"/a::/b/c"));
        assert_eq!(found, [&b"/a/tool"[..], b"tool", b"/b/c/tool"]);
        let found = candidates(OsStr::new("./tool"), Some(b"/a"));
        assert_eq!(found, [&b"./tool"[..]]);
        let found = candidates(OsStr::new("sh"), None);
        assert_eq!(found, [&b"/bin/sh"[..], b"/usr/bin/sh"]);
    }
}
