//! The HTML report, loaded in a real headless browser (Debian's `chromium`).

use std::process::Command;

use crate::support::{Job, poolrun, range};

/// Loads `page` in headless Chromium; returns the DOM after its scripts ran, and what the
/// browser logged.
fn render(page: &std::path::Path, profile: &std::path::Path) -> (String, String) {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium (apt-get install chromium; .ci/run installs it)");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_html_report_renders_its_lanes_in_a_browser_without_errors() {
    // Three slots; a task that fails with hostile stderr, one retried, one timed out.
    let job = Job::new(&format!(
        "command = \"case {{item}} in 3) printf '</script><img src=x onerror=alert(1)> & \\\\033[31mred\\\\n' >&2; exit 2;; 5) if [ ! -e retried ]; then touch retried; exit 1; fi;; 7) sleep 5;; esac; sleep 0.0{{item}}\"\n{}retries = 1\ntimeout = \"300ms\"\nretry-on = [\"failed\"]\n",
        range(12, 3)
    ));
    let run = job.run(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let html = poolrun()
        .current_dir(job.dir.path())
        .args(["report", "job.toml", "--format", "html"])
        .output()
        .unwrap();
    assert_eq!(html.status.code(), Some(1));
    let text = String::from_utf8_lossy(&html.stdout);
    // Self-contained: nothing is fetched from anywhere.
    for fetch in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!text.contains(fetch), "{fetch}");
    }
    let page = job.file("report.html");
    std::fs::write(&page, &html.stdout).unwrap();
    let (dom, log) = render(&page, &job.file("profile"));
    assert!(
        dom.contains("data-rendered=\"ok\""),
        "not rendered:\n{dom}\n{log}"
    );
    assert!(!dom.contains("data-error"), "{dom}");
    assert!(dom.contains("data-lanes=\"3\""), "{dom}");
    // 12 tasks; tasks 3 (failed twice) and 5 (failed, then succeeded) retried once.
    assert!(dom.contains("data-attempts=\"14\""), "{dom}");
    assert!(dom.contains("id=\"count-failed\">1<"), "{dom}");
    assert!(dom.contains("id=\"count-timed_out\">1<"), "{dom}");
    assert!(
        dom.contains("class=\"failed-task\"") && dom.contains("data-task=\"3\""),
        "{dom}"
    );
    // The hostile stderr is text, never markup.
    assert!(!dom.contains("<img src=\"x\""), "{dom}");
    for line in log.lines() {
        assert!(
            !(line.contains("CONSOLE") || line.contains("Uncaught")),
            "the page logged: {line}"
        );
    }
}
