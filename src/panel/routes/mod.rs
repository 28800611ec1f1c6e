//! One module per resource, each with a `configure` function.

pub mod audit;
pub mod certs;
pub mod enroll;
pub mod groups;
pub mod health;
pub mod invitations;
pub mod keys;
pub mod nginx;
pub mod onboarding;
pub mod tunnels;
pub mod two_factor;
pub mod users;
pub mod sites;

use super::error::ApiError;

/// Unknown `/api/*` paths get the standard error shape.
pub async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound("No such API route".into()))
}
