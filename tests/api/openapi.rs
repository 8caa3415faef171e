//! The OpenAPI document is valid OpenAPI 3.1 and complete: every `$ref`
//! resolves, every route lists each status it can answer, the caching,
//! conditional and rate-limit headers are declared, and parameters and
//! bodies carry the validators' constraints.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use axum::http::StatusCode;
use serde_json::Value;

use crate::support::{Backend, TestApp};

async fn document() -> Value {
    let app = TestApp::new(Backend::Sqlite).await;
    let response = app.get("/openapi.json", None).await;
    assert_eq!(response.status, StatusCode::OK);
    response.json()
}

fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => out.push(target),
                    _ => refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_ref_in_the_document_resolves() {
    let doc = document().await;
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 20, "only {} refs", found.len());
    for target in found {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{target} points outside the document"));
        assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
    }
    assert!(doc.pointer("/components/schemas/Problem").is_some());
}

fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let operation = &doc["paths"][path][method];
    assert!(operation.is_object(), "{method} {path} is not documented");
    operation
}

fn statuses(doc: &Value, method: &str, path: &str) -> BTreeSet<String> {
    operation(doc, method, path)["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn each_route_documents_every_status_it_can_answer() {
    let doc = document().await;
    let read = ["200", "304", "429", "503"];
    let body = ["400", "413", "415", "422", "429", "503"];
    let cases: &[(&str, &str, &[&str])] = &[
        ("get", "/api/v1/articles", &["400", "401"]),
        ("post", "/api/v1/articles", &["201", "401", "403", "409"]),
        ("get", "/api/v1/articles/{id}", &["401", "404"]),
        (
            "put",
            "/api/v1/articles/{id}",
            &["200", "401", "403", "404", "409", "412"],
        ),
        (
            "patch",
            "/api/v1/articles/{id}",
            &["200", "401", "403", "404", "409", "412"],
        ),
        (
            "delete",
            "/api/v1/articles/{id}",
            &[
                "204", "400", "401", "403", "404", "409", "412", "429", "503",
            ],
        ),
        (
            "get",
            "/api/v1/articles/{id}/comments",
            &["400", "401", "404"],
        ),
        (
            "post",
            "/api/v1/articles/{id}/comments",
            &["201", "401", "404"],
        ),
        ("get", "/api/v1/comments/{id}", &["401", "404"]),
        (
            "delete",
            "/api/v1/comments/{id}",
            &["204", "401", "403", "404", "429", "503"],
        ),
        ("get", "/api/v1/tags", &["400"]),
        ("post", "/api/v1/users", &["201", "409"]),
        ("get", "/api/v1/users/me", &["401"]),
        ("get", "/api/v1/users/{id}", &["404"]),
        ("patch", "/api/v1/users/{id}", &["200", "401", "403", "404"]),
        ("post", "/api/v1/tokens", &["200", "401"]),
    ];
    for &(method, path, own) in cases {
        let documented = statuses(&doc, method, path);
        let common: &[&str] = match method {
            "get" => &read,
            "delete" => &[],
            _ => &body,
        };
        for status in common.iter().chain(own) {
            assert!(
                documented.contains(*status),
                "{method} {path} does not document {status}: {documented:?}"
            );
        }
    }
    assert_eq!(
        statuses(&doc, "get", "/readyz"),
        ["200", "503"].map(String::from).into()
    );
    for path in ["/healthz", "/readyz"] {
        let responses = &operation(&doc, "get", path)["responses"];
        for (status, response) in responses.as_object().unwrap() {
            let description = response["description"].as_str().unwrap_or_default();
            assert!(
                !description.is_empty(),
                "{path} {status} has no description"
            );
        }
    }
}

/// Clients learn from the document what a 401 and a 403 mean now that
/// authorization follows the user's record: a reset ends tokens, a role
/// change applies to tokens already issued.
#[tokio::test]
async fn auth_errors_say_that_a_reset_ends_tokens_and_roles_apply_at_once() {
    let doc = document().await;
    let description = |method: &str, path: &str, status: &str| {
        let response = &operation(&doc, method, path)["responses"][status];
        let response = match response["$ref"].as_str() {
            Some(target) => doc.pointer(target.trim_start_matches('#')).unwrap(),
            None => response,
        };
        response["description"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    for (method, path) in [("get", "/api/v1/articles"), ("patch", "/api/v1/users/{id}")] {
        let unauthorized = description(method, path, "401");
        assert!(
            unauthorized.contains("password was reset") && unauthorized.contains("sign in again"),
            "{method} {path} 401: {unauthorized}"
        );
    }
    let forbidden = description("patch", "/api/v1/users/{id}", "403");
    assert!(
        forbidden.contains("current role") && forbidden.contains("already issued"),
        "{forbidden}"
    );
}

fn header<'a>(doc: &'a Value, response: &'a Value, name: &str) -> &'a Value {
    let response = match response["$ref"].as_str() {
        Some(target) => doc.pointer(target.trim_start_matches('#')).unwrap(),
        None => response,
    };
    &response["headers"][name]
}

fn parameter<'a>(operation: &'a Value, name: &str, location: &str) -> &'a Value {
    operation["parameters"]
        .as_array()
        .and_then(|params| {
            params
                .iter()
                .find(|p| p["name"] == name && p["in"] == location)
        })
        .unwrap_or_else(|| panic!("no {location} parameter {name} in {operation}"))
}

#[tokio::test]
async fn caching_conditional_and_rate_limit_headers_are_declared() {
    let doc = document().await;
    for path in ["/api/v1/articles", "/api/v1/articles/{id}", "/api/v1/tags"] {
        let get = operation(&doc, "get", path);
        parameter(get, "If-None-Match", "header");
        for name in ["ETag", "Cache-Control"] {
            assert!(
                header(&doc, &get["responses"]["200"], name).is_object(),
                "GET {path} 200 lacks {name}"
            );
        }
    }
    for method in ["put", "patch", "delete"] {
        parameter(
            operation(&doc, method, "/api/v1/articles/{id}"),
            "If-Match",
            "header",
        );
    }
    let created = &operation(&doc, "post", "/api/v1/articles")["responses"]["201"];
    for name in ["Location", "ETag", "RateLimit-Limit"] {
        assert!(header(&doc, created, name).is_object(), "201 lacks {name}");
    }
    let limited = &operation(&doc, "post", "/api/v1/tokens")["responses"]["429"];
    for name in [
        "Retry-After",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
    ] {
        assert!(header(&doc, limited, name).is_object(), "429 lacks {name}");
    }
}

fn property<'a>(doc: &'a Value, schema: &str, name: &str) -> &'a Value {
    let property = &doc["components"]["schemas"][schema]["properties"][name];
    assert!(property.is_object(), "{schema}.{name} is not documented");
    property
}

#[tokio::test]
async fn parameters_and_bodies_carry_the_validators_constraints() {
    let doc = document().await;
    let list = operation(&doc, "get", "/api/v1/articles");
    assert_eq!(parameter(list, "page", "query")["schema"]["minimum"], 1);
    // Served clamped to 1..=100, so every number is accepted.
    let per_page = parameter(list, "per_page", "query");
    assert!(
        per_page["description"]
            .as_str()
            .unwrap()
            .contains("1 to 100")
    );
    let sorts: BTreeSet<&str> = parameter(list, "sort", "query")["schema"]["enum"]
        .as_array()
        .expect("sort is an enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let allowed: BTreeSet<&str> = feedgate::domain::ArticleSort::ALLOWED
        .split(", ")
        .chain([""])
        .collect();
    assert_eq!(sorts, allowed);

    for schema in ["ArticleInput", "ArticlePatch"] {
        let title = property(&doc, schema, "title");
        assert_eq!(
            (title["minLength"].clone(), title["maxLength"].clone()),
            (1.into(), 200.into())
        );
        assert_eq!(property(&doc, schema, "body")["maxLength"], 100_000);
        assert_eq!(property(&doc, schema, "summary")["maxLength"], 500);
        let tags = property(&doc, schema, "tags");
        assert_eq!(tags["maxItems"], 10, "{tags}");
        let tag = tags["items"]["pattern"].as_str().unwrap_or_default();
        assert!(tag.contains("{1,32}"), "{tags}");
        let slug = property(&doc, schema, "slug");
        assert_eq!(slug["maxLength"], 120);
        assert!(slug["pattern"].is_string());
    }
    let username = property(&doc, "RegisterInput", "username");
    assert_eq!(
        (username["minLength"].clone(), username["maxLength"].clone()),
        (3.into(), 32.into())
    );
    assert!(username["pattern"].is_string());
    let password = property(&doc, "RegisterInput", "password");
    assert_eq!(
        (password["minLength"].clone(), password["maxLength"].clone()),
        (8.into(), 128.into())
    );
    assert_eq!(property(&doc, "CommentInput", "body")["maxLength"], 5000);
}

/// The reference validator (`pip install openapi-spec-validator`; the test
/// scripts install it).
#[tokio::test]
async fn the_document_validates_as_openapi_3_1() {
    let doc = document().await;
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import json, sys\n\
             from openapi_spec_validator import validate\n\
             validate(json.load(sys.stdin))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
