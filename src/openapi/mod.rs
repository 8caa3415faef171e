//! The OpenAPI document's frame, and schemas the routes' annotations name.
//! Paths and most schemas come from the routes; [`complete`] adds what
//! every route shares.

mod conventions;

pub use conventions::complete;

use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::domain::ArticleSort;
use crate::error::{FieldError, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "feedgate",
        description = "A cached article API: articles, comments, tags and users as lightweight JSON. \
                       Errors are RFC 9457 problem details.\n\n\
                       Reads are answered from a cache. A write makes stale only the cached \
                       responses whose bytes it changes, once it has committed and before it \
                       answers: the article itself, every list page that shows it, and in each \
                       feed it enters, leaves or moves in (every article, its author's, each of \
                       its tags') the numbered pages of the orders it changes and the pages by \
                       cursor next to its old and new places. After a 2xx, the instance that \
                       took the write never serves the state before it; other instances stop \
                       within milliseconds. A write that answers 503 because the database went \
                       as it committed may have been made: the cache treats it as made.",
    ),
    components(schemas(Problem, FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "articles", description = "Articles: drafts and published posts"),
        (name = "comments", description = "Comments on articles"),
        (name = "tags", description = "Tags and their use"),
        (name = "users", description = "Accounts and roles"),
        (name = "auth", description = "Access and refresh tokens"),
        (name = "ops", description = "Health and readiness"),
    ),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// `sort`: one of the whitelisted orderings (empty: the default).
pub fn sort_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ArticleSort::ALLOWED.split(", ").chain([""])))
        .build()
        .into()
}

/// `tags`: up to 10 tags of 1 to 32 letters, digits or `-_.+#`, or null.
pub fn tags_schema() -> Schema {
    // Tags are trimmed before their length is checked, so the pattern
    // bounds the length.
    let tag = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^\s*[\w\-.+#]{1,32}\s*$"))
        .build();
    ArrayBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Array,
            Type::Null,
        ]))
        .items(tag)
        .max_items(Some(10))
        .build()
        .into()
}
