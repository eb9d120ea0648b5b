//! No process a task starts outlives the run, whatever it does to escape: leave the process
//! group, double-fork, scrub its environment, change user, fork again after the task ended, or
//! start an escapee from a SIGTERM trap. Checked with cgroups (where poolrun can make them, each
//! version on its own) and without (`POOLRUN_CGROUPS=off`: the subreaper and the end-of-run
//! sweep alone). Where a cgroup version is missing, poolrun falls back, and the run must still
//! leave nothing.

use std::process::Stdio;

use crate::support::{Job, assert_all_gone, background, finish_background, pids_in, poolrun};

/// One task per shape; each writes the pid of every process it leaves to `<id>.pid`.
const SHAPES: &str = r#"
id=$1
case $id in
0)  # a scrubbed environment in a session of its own
    env -i setsid sleep 1000 & echo $! >> $id.pid ;;
1)  # a classic double-fork daemon and its own child
    (setsid sh -c 'sleep 1000 & echo $! >> 1.pid; echo $$ >> 1.pid; exec sleep 999' &) ;;
2)  # an escapee that forks only after the task ended (orphans made after any check of it)
    env -i setsid sh -c 'echo $$ >> 2.pid; sleep 0.5; sleep 1000 & echo $! >> 2.pid; wait' & ;;
3)  # an escapee that does not lead its group, with a child of its own
    setsid sh -c 'sh -c "echo \$\$ >> 3.pid; sleep 1000 & echo \$! >> 3.pid; wait" & sleep 0.1' & ;;
4)  # a SIGTERM trap that starts an escapee with a scrubbed environment, then exits
    trap 'env -i setsid sleep 1000 & echo $! >> 4.pid; exit 0' TERM
    while :; do sleep 0.05; done ;;
5)  # another user, where poolrun may switch to one
    if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
        setpriv --reuid=65534 --regid=65534 --clear-groups env -i setsid sleep 1000 &
        echo $! >> 5.pid
    fi
    if [ "$(id -u)" = 0 ] && command -v sudo >/dev/null; then
        sudo -n -u nobody env -i setsid sleep 1000 & echo $! >> 5.pid
        sleep 0.2
    fi ;;
6)  # keeps the run going past shape 2's late fork
    sleep 1.5 ;;
esac
# Give the escapees time to write their pids before the task ends (and they are killed).
sleep 0.3
"#;

fn leak_matrix(cgroups: &str) {
    let job = Job::new(
        "command = [\"sh\", \"shapes.sh\", \"{id}\"]\n[range]\nstart = 0\nend = 7\n\n[pool]\nprocesses = 7\ntimeout = \"1s\"\ngrace-period = \"300ms\"\n",
    );
    std::fs::write(job.file("shapes.sh"), SHAPES).unwrap();
    let mut command = poolrun();
    command
        .current_dir(job.dir.path())
        .arg("run")
        .arg(&job.path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command.env("POOLRUN_CGROUPS", cgroups);
    let run = finish_background(background(&mut command));
    // Shapes 4 and 6 time out; the rest succeed.
    assert_eq!(run.code, 1, "{}", run.stderr);
    let pids = pids_in(job.dir.path());
    assert!(pids.len() >= 8, "{pids:?}");
    assert_all_gone(&pids);
    let report = job.report();
    let leaked: u64 = crate::support::tasks(&report)
        .iter()
        .map(|t| t["leaked"].as_u64().unwrap())
        .sum::<u64>()
        + report["run"]["leaked"].as_u64().unwrap();
    assert!(
        leaked >= pids.len() as u64,
        "{leaked} counted, {} left: {}",
        pids.len(),
        run.stderr
    );
}

#[test]
fn no_escapee_survives_the_run_with_cgroups() {
    leak_matrix("auto");
}

#[test]
fn no_escapee_survives_the_run_with_cgroup_v1() {
    leak_matrix("v1");
}

#[test]
fn no_escapee_survives_the_run_with_cgroup_v2() {
    leak_matrix("v2");
}

#[test]
fn no_escapee_survives_the_run_with_cgroup_v2_joined_per_task() {
    leak_matrix("v2-join");
}

#[test]
fn no_escapee_survives_the_run_without_cgroups() {
    leak_matrix("off");
}
