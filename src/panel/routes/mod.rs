//! One module per resource, each with a `configure` function. Handlers
//! parse the request, call the resource's use case in `crate::app` and
//! shape the JSON answer.

pub mod acme;
pub mod audit;
pub mod backup;
pub mod certs;
pub mod doctor;
pub mod downloads;
pub mod enroll;
pub mod groups;
pub mod health;
pub mod invitations;
pub mod keys;
pub mod metrics;
pub mod nginx;
pub mod onboarding;
pub mod runtime_settings;
pub mod services;
pub mod site_files;
pub mod sites;
pub mod system;
pub mod tunnels;
pub mod two_factor;
pub mod users;

use super::error::ApiError;

/// Unknown `/api/*` paths get the standard error shape.
pub async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound("No such API route".into()))
}
