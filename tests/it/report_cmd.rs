//! `poolrun report RUN_DIR`: a saved run for people, or as JSON, or its output.

use crate::support::{Job, poolrun, range};

#[test]
fn report_lists_the_failures_with_their_stderr() {
    let job = Job::new(&format!(
        "command = \"if [ {{id}} = 1 ]; then echo boom >&2; exit 3; fi\"\n{}",
        range(3, 1)
    ));
    assert_eq!(job.run(&[]).code, 1);
    let run_dir = job.latest("job");
    let out = poolrun().arg("report").arg(&run_dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("3 tasks: 2 succeeded, 1 failed"), "{text}");
    // One line for the failed task, its reason, command and last stderr line under it; the
    // tasks that succeeded are only counted.
    assert!(text.contains("     1  failed           1 "), "{text}");
    assert!(text.contains("why: exited with code 3"), "{text}");
    assert!(text.contains("stderr: boom"), "{text}");
    assert!(!text.contains("     0  "), "{text}");

    let json = poolrun()
        .args(["report", "--json"])
        .arg(&run_dir)
        .output()
        .unwrap();
    assert_eq!(
        json.stdout,
        std::fs::read(run_dir.join("report.json")).unwrap()
    );
}

#[test]
fn report_of_a_clean_run_exits_0_and_prints_output_in_order() {
    let job = Job::new(&format!("command = \"echo line {{id}}\"\n{}", range(4, 4)));
    assert_eq!(job.run(&[]).code, 0);
    let run_dir = job.file("runs/job/latest");
    let out = poolrun()
        .args(["report", "--output"])
        .arg(&run_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "line 0\nline 1\nline 2\nline 3\n"
    );
}

#[test]
fn report_of_a_directory_without_a_report_says_so() {
    let job = Job::new("");
    let out = poolrun()
        .arg("report")
        .arg(job.dir.path())
        .output()
        .unwrap();
    // Nothing to read is a wrong argument (2), not a failed write (74).
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("report.json"));
}
