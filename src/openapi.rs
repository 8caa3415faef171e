//! The OpenAPI document's frame; paths and schemas come from the routes.

use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "feedgate",
        description = "A cached article API: articles, comments, tags and users as lightweight JSON. \
                       Errors are RFC 9457 problem details.",
    ),
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
