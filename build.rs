//! Records the git commit poolrun is built from, for `run.provenance.poolrun_commit` and
//! `poolrun --version`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    let commit = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!("cargo:rustc-env=POOLRUN_GIT_COMMIT={commit}");
    // `poolrun --version`: the version and, when built from a git checkout, the commit.
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let long = if commit.is_empty() {
        version
    } else {
        format!("{version} (commit {})", &commit[..commit.len().min(12)])
    };
    println!("cargo:rustc-env=POOLRUN_VERSION={long}");
}
