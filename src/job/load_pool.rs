//! Validation of `[pool]`: the process count, timeouts, retries, halting and overlap.

use std::num::NonZeroUsize;
use std::time::Duration;

use crate::job::Pool;
use crate::job::diagnostic::Diagnostic;
use crate::job::file::{JobFile, Processes};
use crate::job::grammar::{self, MAX_PROCESSES, PERCENT, POSITIVE_PERCENT, parse_percent};
use crate::job::load::{Check, DEFAULT_GRACE_PERIOD, Overrides, Validator};
use crate::job::policy::{Backoff, Halt, HaltSpec, Retry, RetryDelaySpec, RetryOn};

impl Validator {
    /// `[pool]`, every key checked.
    pub(super) fn pool(&self, file: &JobFile, overrides: &Overrides) -> Option<Pool> {
        let pool = &file.pool;
        let processes = self.collect(self.processes(pool.processes.as_ref(), overrides));
        let timeout = match (overrides.timeout, pool.timeout) {
            (Some(t), _) => Some(Some(t)),
            (None, t) => self.collect(
                t.map(|t| self.positive(&["pool", "timeout"], t.0))
                    .transpose(),
            ),
        };
        let deadline = self.collect(
            pool.deadline
                .map(|d| self.positive(&["pool", "deadline"], d.0))
                .transpose(),
        );
        let retry = self.retry(file);
        let halt = self.collect(self.halt(pool.halt.as_ref()));
        let memory_limit = self.collect(self.memory_limit(pool.memory_limit.as_deref()));
        let max_processes = self.collect(match pool.max_processes {
            None => Ok(None),
            Some(n) => u32::try_from(n)
                .ok()
                .filter(|&n| n >= 1)
                .map(Some)
                .ok_or_else(|| {
                    self.error(
                        &["pool", "max-processes"],
                        None,
                        format!("expected an integer >= 1, found {n}"),
                    )
                }),
        });
        Some(Pool {
            processes: processes?,
            timeout: timeout?,
            grace_period: pool.grace_period.map_or(DEFAULT_GRACE_PERIOD, |g| g.0),
            retry: retry?,
            halt: halt?,
            halt_mode: pool.halt_mode.unwrap_or_default(),
            overlap: pool.overlap.unwrap_or_default(),
            deadline: deadline?,
            memory_limit: memory_limit?,
            max_processes: max_processes?,
        })
    }

    /// `processes`, or `--processes`: at most `MAX_PROCESSES`, and what the user may run.
    fn processes(&self, written: Option<&Processes>, overrides: &Overrides) -> Check<NonZeroUsize> {
        let cpus = cpus();
        let processes = overrides
            .processes
            .clone()
            .or(written.cloned())
            .unwrap_or(Processes::Named("auto".into()));
        let resolved = processes.resolve(cpus);
        let refuse = |message: String| match overrides.processes {
            Some(_) => Diagnostic::new("--processes", "", None, message),
            None => self.error(&["pool", "processes"], None, message),
        };
        if resolved > MAX_PROCESSES {
            return Err(refuse(format!(
                "processes = {processes} means {resolved} processes at once; at most {MAX_PROCESSES} are allowed"
            )));
        }
        if let Some(limit) = nproc_limit().filter(|&l| resolved as u64 > l) {
            return Err(refuse(format!(
                "processes = {processes} means {resolved} processes at once, but this user may run at most {limit} (RLIMIT_NPROC, `ulimit -u`)"
            )));
        }
        Ok(NonZeroUsize::new(resolved).expect("resolve gives at least 1"))
    }

    fn memory_limit(&self, text: Option<&str>) -> Check<Option<u64>> {
        let Some(text) = text else { return Ok(None) };
        if let Some(bytes) = grammar::parse_memory_size(text) {
            return Ok(Some(bytes));
        }
        let message = format!(
            "expected a size of at least 1MiB such as \"512MiB\" or \"2GiB\", found {text:?}"
        );
        Err(self.error(&["pool", "memory-limit"], None, message))
    }

    fn positive(&self, path: &[&str], d: Duration) -> Check<Duration> {
        if d.is_zero() {
            let help = format!("leave `{}` out for no limit", path[path.len() - 1]);
            let message = "expected a duration above zero, found 0s".to_owned();
            return Err(self.error(path, None, message).with_help(Some(help)));
        }
        Ok(d)
    }

    /// `retries`, `retry-delay` and `retry-on`, each checked.
    fn retry(&self, file: &JobFile) -> Option<Retry> {
        let pool = &file.pool;
        let retries = self.collect(match pool.retries {
            None => Ok(0),
            Some(n) => u32::try_from(n)
                .ok()
                .filter(|&n| n <= grammar::MAX_RETRIES)
                .ok_or_else(|| {
                    self.error(
                        &["pool", "retries"],
                        None,
                        format!("expected an integer from 0 to 1000, found {n}"),
                    )
                }),
        });
        let delay = match &pool.retry_delay {
            None => Some(Backoff::NONE),
            Some(RetryDelaySpec::Fixed(d)) => Some(Backoff {
                initial: d.0,
                ..Backoff::NONE
            }),
            Some(RetryDelaySpec::Exponential(e)) => {
                let factor = e.factor.unwrap_or(2.0);
                let (least, most) = grammar::FACTOR;
                let factor = self.collect(if (least..=most).contains(&factor) {
                    Ok(factor)
                } else {
                    let message = format!("expected a factor from 1 to 100, found {factor}");
                    Err(self.error(&["pool", "retry-delay", "factor"], None, message))
                });
                let jitter = self.collect(match &e.jitter {
                    None => Ok(0.0),
                    Some(j) => parse_percent(&PERCENT, j).ok_or_else(|| {
                        let message = format!("expected a percentage from 0% to 100%, found {j:?}");
                        self.error(&["pool", "retry-delay", "jitter"], None, message)
                    }),
                });
                Some(Backoff {
                    initial: e.initial.0,
                    factor: factor?,
                    max: e.max.map(|m| m.0),
                    jitter: jitter?,
                })
            }
        };
        let on = pool
            .retry_on
            .as_deref()
            .map_or_else(RetryOn::default_set, RetryOn::from_items);
        Some(Retry {
            retries: retries?,
            delay: delay?,
            on,
        })
    }

    fn halt(&self, spec: Option<&HaltSpec>) -> Check<Halt> {
        let at = |key: &'static str| {
            ["pool", "halt", key]
                .into_iter()
                .filter(|k| !k.is_empty())
                .collect::<Vec<_>>()
        };
        match spec {
            None => Ok(Halt::Never),
            Some(HaltSpec::Named(name)) if name == "never" => Ok(Halt::Never),
            Some(HaltSpec::Named(_)) => Ok(Halt::MaxFailures(1)),
            Some(HaltSpec::Table(t)) => match (t.max_failures, &t.max_failure_rate, t.after) {
                (Some(n), None, None) => u64::try_from(n)
                    .ok()
                    .filter(|&n| n >= 1)
                    .map(Halt::MaxFailures)
                    .ok_or_else(|| {
                        let help =
                            "`first-failure` is `max-failures = 1`; leave `halt` out to never halt";
                        self.error(
                            &at("max-failures"),
                            None,
                            format!("expected an integer >= 1, found {n}"),
                        )
                        .with_help(Some(help.into()))
                    }),
                (None, Some(rate), after) => {
                    let rate = parse_percent(&POSITIVE_PERCENT, rate).ok_or_else(|| {
                        let message = format!(
                            "expected a percentage above 0% and up to 100%, found {rate:?}"
                        );
                        self.error(&at("max-failure-rate"), None, message)
                    })?;
                    let after = after.unwrap_or(1);
                    let after = u64::try_from(after)
                        .ok()
                        .filter(|&a| a >= 1)
                        .ok_or_else(|| {
                            self.error(
                                &at("after"),
                                None,
                                format!("expected an integer >= 1, found {after}"),
                            )
                        })?;
                    Ok(Halt::MaxFailureRate { rate, after })
                }
                (Some(_), Some(_), _) => Err(self.error(
                    &at(""),
                    None,
                    "expected one of `max-failures` or `max-failure-rate`, found both".into(),
                )),
                (Some(_), None, Some(_)) => Err(self.error(
                    &at("after"),
                    None,
                    "`after` goes with `max-failure-rate`, not `max-failures`".into(),
                )),
                (None, None, _) => Err(self.error(
                    &at(""),
                    None,
                    "expected `max-failures = N` or `max-failure-rate = \"R%\"`, found neither"
                        .into(),
                )),
            },
        }
    }
}

/// The soft `RLIMIT_NPROC`, unless unlimited.
fn nproc_limit() -> Option<u64> {
    let (soft, _) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NPROC).ok()?;
    (soft != nix::sys::resource::RLIM_INFINITY).then_some(soft)
}

/// The CPUs this process may use (its affinity and cgroup quota), read once: the standard
/// library reads `/proc` and cgroup files on every call.
pub fn cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get))
}
