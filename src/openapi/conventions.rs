//! The conventions every route shares, added to the document built from
//! the route table: the rate limit's 429, the 503 of an unavailable
//! database, the 400/413/415/422 of any JSON body, the 401 of any bearer
//! token, conditional requests and caching headers on reads, `RateLimit-*`
//! on writes. They follow from the shape of each operation, so a new route
//! gets them by construction.

use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Components, ContentBuilder, HttpMethod, Ref, RefOr, Required};

const PROBLEM_JSON: &str = "application/problem+json";

/// Shared error responses: (status, component name, description).
const SHARED: [(&str, &str, &str); 9] = [
    (
        "400",
        "BadRequest",
        "Malformed request: a body that is not JSON, or an unreadable header.",
    ),
    (
        "401",
        "Unauthorized",
        "A bearer token was sent but is malformed, forged or expired, names a user that no longer exists, or was issued before the user's password was reset (sign in again); or one is required and missing.",
    ),
    (
        "413",
        "PayloadTooLarge",
        "The body is over the configured limit.",
    ),
    ("414", "UriTooLong", "The request target is over 16 KiB."),
    (
        "415",
        "UnsupportedMediaType",
        "The body is not sent as application/json.",
    ),
    (
        "422",
        "Unprocessable",
        "Well-formed JSON that is invalid: wrong types, unknown or missing fields, broken rules; `errors` names each field and rule.",
    ),
    (
        "429",
        "TooManyRequests",
        "Over a rate limit; retry after `Retry-After` seconds.",
    ),
    (
        "431",
        "HeadersTooLarge",
        "The request headers are over 32 KiB.",
    ),
    (
        "503",
        "Unavailable",
        "The database is unavailable, the request timed out, or password hashing is saturated; retry shortly.",
    ),
];

/// Adds the conventions of every route to the document built from the
/// route table (see the module docs).
pub fn complete(api: &mut utoipa::openapi::OpenApi) {
    let components = api.components.get_or_insert_with(Default::default);
    for (status, name, description) in SHARED {
        let mut response = ResponseBuilder::new().description(description).content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        );
        if status == "429" {
            response = rate_limit_headers(response).header(
                "Retry-After",
                header(Type::Integer, "Seconds to wait before retrying."),
            );
        }
        if status == "503" {
            response = response.header(
                "Retry-After",
                header(
                    Type::Integer,
                    "Seconds to wait before retrying, when known.",
                ),
            );
        }
        components
            .responses
            .insert(name.to_owned(), RefOr::T(response.build()));
    }
    deny_unknown_fields_in_variants(components, "TokenRequest");
    for (path, item) in &mut api.paths.paths {
        if !path.starts_with("/api/") {
            continue;
        }
        let operations = [
            (HttpMethod::Get, item.get.as_mut()),
            (HttpMethod::Post, item.post.as_mut()),
            (HttpMethod::Put, item.put.as_mut()),
            (HttpMethod::Patch, item.patch.as_mut()),
            (HttpMethod::Delete, item.delete.as_mut()),
        ];
        for (method, operation) in operations {
            if let Some(operation) = operation {
                conventions(&method, operation);
            }
        }
    }
}

/// utoipa does not carry `#[serde(deny_unknown_fields)]` to the variants
/// of an internally tagged enum; the body refuses unknown fields all the
/// same, so its variants say so.
fn deny_unknown_fields_in_variants(components: &mut Components, name: &str) {
    let Some(RefOr::T(Schema::OneOf(one_of))) = components.schemas.get_mut(name) else {
        return;
    };
    for variant in &mut one_of.items {
        if let RefOr::T(Schema::Object(object)) = variant {
            object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        }
    }
}

fn conventions(method: &HttpMethod, operation: &mut Operation) {
    for status in ["414", "429", "431", "503"] {
        shared(operation, status);
    }
    let bearer = operation.security.iter().flatten().any(|requirement| {
        serde_json::to_value(requirement).is_ok_and(|v| v.get("bearer").is_some())
    });
    if bearer {
        shared(operation, "401");
    }
    if operation.request_body.is_some() || has_header(operation, "If-Match") {
        shared(operation, "400");
    }
    if operation.request_body.is_some() {
        for status in ["413", "415", "422"] {
            shared(operation, status);
        }
    }
    if *method == HttpMethod::Get {
        read_conventions(operation);
    } else {
        write_conventions(operation);
    }
}

/// Conditional requests and cache headers: every read serves an entity
/// with an ETag, and answers 304 to a matching `If-None-Match`.
fn read_conventions(operation: &mut Operation) {
    if !has_header(operation, "If-None-Match") {
        let parameter = ParameterBuilder::new()
            .name("If-None-Match")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "ETags of copies the client holds (weak comparison); a match answers 304.",
            ))
            .schema(Some(string()))
            .build();
        operation
            .parameters
            .get_or_insert_with(Vec::new)
            .push(RefOr::T(parameter));
    }
    let responses = &mut operation.responses.responses;
    responses.entry("304".into()).or_insert_with(|| {
        RefOr::T(
            ResponseBuilder::new()
                .description("Unchanged since the ETag in If-None-Match.")
                .header(
                    "ETag",
                    header(
                        Type::String,
                        "The entity tag of the current representation.",
                    ),
                )
                .build(),
        )
    });
    if let Some(RefOr::T(ok)) = responses.get_mut("200") {
        let headers = [
            ("ETag", "The entity tag of this representation (strong)."),
            (
                "Cache-Control",
                "Who may store the response and for how long: public reads carry s-maxage and stale-* directives; identity-dependent reads are `private, no-store`.",
            ),
            (
                "Last-Modified",
                "When the resource last changed, where known.",
            ),
            ("Vary", "`Accept-Encoding`."),
            (
                "Surrogate-Key",
                "Space-separated cache tags for CDN purges (Varnish xkey, Fastly).",
            ),
            (
                "Cache-Tag",
                "Comma-separated cache tags for CDN purges (Cloudflare).",
            ),
        ];
        for (name, description) in headers {
            ok.headers
                .entry(name.into())
                .or_insert_with(|| RefOr::T(header(Type::String, description)));
        }
    }
}

/// Writes answer with the new state's ETag (and Location when they
/// create), are never cached, and report the write rate limit.
fn write_conventions(operation: &mut Operation) {
    for (status, response) in &mut operation.responses.responses {
        let RefOr::T(response) = response else {
            continue;
        };
        if !status.starts_with('2') {
            continue;
        }
        let mut headers = vec![
            ("Cache-Control", header(Type::String, "`no-store`.")),
            (
                "RateLimit-Limit",
                header(Type::Integer, "Requests the bucket holds."),
            ),
            (
                "RateLimit-Remaining",
                header(Type::Integer, "Requests left in the bucket."),
            ),
            (
                "RateLimit-Reset",
                header(Type::Integer, "Seconds until the bucket is full again."),
            ),
        ];
        if status != "204" {
            headers.push((
                "ETag",
                header(Type::String, "The entity tag of the new state."),
            ));
        }
        if status == "201" {
            headers.push((
                "Location",
                header(Type::String, "The path of the created resource."),
            ));
        }
        for (name, value) in headers {
            response
                .headers
                .entry(name.into())
                .or_insert(RefOr::T(value));
        }
    }
}

fn rate_limit_headers(response: ResponseBuilder) -> ResponseBuilder {
    response
        .header(
            "RateLimit-Limit",
            header(Type::Integer, "Requests the bucket holds."),
        )
        .header(
            "RateLimit-Remaining",
            header(Type::Integer, "Requests left in the bucket (0)."),
        )
        .header(
            "RateLimit-Reset",
            header(Type::Integer, "Seconds until the bucket is full again."),
        )
}

fn shared(operation: &mut Operation, status: &str) {
    let name = SHARED
        .iter()
        .find(|(code, _, _)| *code == status)
        .map(|(_, name, _)| *name)
        .expect("a shared response");
    operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
}

fn has_header(operation: &Operation, name: &str) -> bool {
    operation.parameters.iter().flatten().any(|parameter| {
        matches!(parameter, RefOr::T(p) if p.parameter_in == ParameterIn::Header && p.name.eq_ignore_ascii_case(name))
    })
}

fn header(kind: Type, description: &str) -> Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(kind).build()))
        .description(Some(description))
        .build()
}

fn string() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .build()
        .into()
}
