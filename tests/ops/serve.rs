//! `feedgate serve` with a separate ops address and JSON logs, as deployed.

use serde_json::Value;

use crate::support::{Scratch, Server, free_port, get, http, wait_until_up};

#[test]
fn serve_moves_metrics_to_the_ops_address_and_logs_json_lines_with_request_ids() {
    let dir = Scratch::new("serve");
    let public = format!("127.0.0.1:{}", free_port());
    let ops = format!("127.0.0.1:{}", free_port());
    let server = Server::start(
        dir.path(),
        &[
            ("FEEDGATE_LISTEN", public.as_str()),
            ("FEEDGATE_SERVER__OPS_LISTEN", ops.as_str()),
            ("FEEDGATE_LOG__FORMAT", "json"),
        ],
    );
    let (public, ops) = (format!("http://{public}"), format!("http://{ops}"));
    wait_until_up(&public, "/healthz");
    wait_until_up(&ops, "/healthz");

    let hidden = get(&public, "/metrics");
    assert_eq!(hidden.status, 404, "{hidden:?}");
    assert_eq!(
        hidden.header("content-type"),
        Some("application/problem+json")
    );
    let metrics = get(&ops, "/metrics");
    assert_eq!(metrics.status, 200, "{metrics:?}");
    assert!(
        metrics.body.contains("feedgate_db_pool_size"),
        "{}",
        metrics.body
    );
    assert_eq!(get(&ops, "/readyz").status, 200);
    assert_eq!(get(&ops, "/api/v1/articles").status, 404);
    assert_eq!(get(&public, "/readyz").status, 200);

    let read = http(
        "GET",
        &public,
        "/api/v1/articles/77",
        &[
            ("X-Request-Id", "serve-log-1"),
            ("Cookie", "sid=leaked-cookie-1"),
        ],
        None,
    )
    .unwrap();
    assert_eq!(read.status, 404);
    assert_eq!(read.header("x-request-id"), Some("serve-log-1"));

    let output = server.terminate();
    let lines: Vec<Value> = output
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
        .collect();
    let logged: Vec<&Value> = lines
        .iter()
        .filter(|line| line["span"]["request_id"] == "serve-log-1")
        .collect();
    assert_eq!(logged.len(), 1, "{output}");
    let line = logged[0];
    assert_eq!(line["target"], "feedgate::request", "{line}");
    assert_eq!(line["span"]["route"], "/api/v1/articles/{id}", "{line}");
    assert_eq!(line["span"]["method"], "GET", "{line}");
    assert_eq!(line["status"], 404, "{line}");
    assert!(
        lines
            .iter()
            .any(|line| line["message"] == "ops endpoints listening"),
        "{output}"
    );
    assert!(!output.contains("leaked-cookie"), "{output}");
}
