//! Swagger UI at `/docs` renders every operation of `/openapi.json` in
//! headless Chromium when no host but the service can be reached: its assets
//! are served by the binary, nothing comes from a CDN.

use std::process::Command;

use crate::support::{Scratch, Server, free_port, get, installed, wait_until_up};

/// Operations in the document: one per path and method.
fn operations(doc: &serde_json::Value) -> usize {
    let methods = [
        "get", "put", "post", "delete", "patch", "head", "options", "trace",
    ];
    doc["paths"]
        .as_object()
        .expect("paths is an object")
        .values()
        .map(|item| methods.iter().filter(|m| item.get(**m).is_some()).count())
        .sum()
}

#[test]
fn swagger_ui_renders_every_operation_offline_in_headless_chromium() {
    let Some(chromium) = installed(&["chromium", "chromium-browser", "google-chrome"]) else {
        eprintln!(
            "SKIPPED: Chromium is not installed (apt-get install -y chromium); .ci/run installs it"
        );
        return;
    };
    let dir = Scratch::new("docs");
    let listen = format!("127.0.0.1:{}", free_port());
    let _server = Server::start(
        dir.path(),
        &[("FEEDGATE_LISTEN", listen.as_str()), ("RUST_LOG", "warn")],
    );
    let base = format!("http://{listen}");
    wait_until_up(&base, "/healthz");
    let expected = operations(&get(&base, "/openapi.json").json());
    assert!(expected >= 19, "{expected} operations documented");

    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Every name resolves to nothing and every other address goes to
            // a dead proxy: only the service itself can answer.
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--proxy-server=http://127.0.0.1:9",
            "--virtual-time-budget=20000",
            "--dump-dom",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("{base}/docs/"))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rendered = dom.matches(r#"class="opblock opblock-"#).count();
    assert_eq!(
        rendered,
        expected,
        "rendered operations; the page was:\n{}",
        &dom[..dom.len().min(4000)]
    );
}
