//! `baseline N THREADS PROGRAM [ARGS...]`: runs PROGRAM N times on THREADS threads through
//! `std::process`, output to /dev/null, and does nothing else: what spawning costs with no runner
//! around it. poolrun's dispatch benchmark compares against it.

use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(n), Some(threads), Some(program)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("usage: baseline N THREADS PROGRAM [ARGS...]");
        return ExitCode::from(2);
    };
    let n: u64 = n.parse().expect("N is a number");
    let threads: usize = threads.parse().expect("THREADS is a number");
    let next = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let status = Command::new(program)
                        .args(&args[3..])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                    if !status.is_ok_and(|s| s.success()) {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    if failed.load(Ordering::Relaxed) == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
