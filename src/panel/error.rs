//! One error type for the HTTP API, mapped to status codes in one place.
//!
//! Clients get `{"error": "<stable summary>", "details": …}`. 5xx details are
//! logged once here and never sent.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::agents::AgentError;
use crate::apikeys::KeyError;
use crate::identity::Denied;
use crate::model::FieldError;
use crate::onboarding::OnboardingState;
use crate::pki::PkiError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { message: String, details: Vec<FieldError> },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// A browser sent a state-changing request from another site; the
    /// string says which header gave it away.
    #[error("Cross-site request refused")]
    CrossSite(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("Onboarding already completed")]
    Gone,
    #[error("Onboarding not complete")]
    OnboardingIncomplete(OnboardingState),
    #[error("Request body too large")]
    TooLarge,
    #[error("Unsupported media type; send application/json")]
    UnsupportedMediaType,
    /// Logged with its context; the client sees only "Internal server error".
    #[error("Internal server error")]
    Internal(String),
    /// nginx refused the configuration a change would produce; nothing changed.
    #[error("nginx rejected the new configuration; nothing was changed")]
    ConfigRejected(Vec<String>),
    /// nginx did not take the new configuration; the previous one stays live.
    #[error("nginx did not reload; the previous configuration stays live")]
    ReloadFailed(Vec<String>),
    /// The change stopped names that served before; it was undone.
    #[error("The change stopped a working name from serving; it was undone")]
    NamesBroken(Vec<crate::probe::Regression>),
    /// The certificate authority could not issue; the message says what to fix.
    #[error("{0}")]
    CertificateAuthority(String),
    /// The data volume has no room; the change was not made.
    #[error("The data volume is full; nothing was changed. Free space on it (old backups, logs) and try again")]
    StorageFull,
}

impl ApiError {
    pub fn invalid(details: Vec<FieldError>) -> Self {
        ApiError::BadRequest { message: crate::app::error::invalid_message(&details), details }
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError::invalid(vec![FieldError::new(field, message)])
    }

    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        ApiError::Internal(format!("{context}: {err}"))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::CrossSite(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Gone => StatusCode::GONE,
            ApiError::OnboardingIncomplete(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::ConfigRejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::ReloadFailed(_) => StatusCode::BAD_GATEWAY,
            ApiError::CertificateAuthority(_) => StatusCode::BAD_GATEWAY,
            ApiError::NamesBroken(_) => StatusCode::CONFLICT,
            ApiError::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            ApiError::BadRequest { message, details } => json!({ "error": message, "details": details }),
            ApiError::OnboardingIncomplete(state) => json!({ "error": self.to_string(), "onboardingStatus": state }),
            ApiError::StorageFull => {
                tracing::error!("a write failed: the data volume is full");
                json!({ "error": self.to_string() })
            }
            ApiError::Internal(context) => {
                tracing::error!(error = %context, "request failed");
                json!({ "error": self.to_string() })
            }
            ApiError::CrossSite(reason) => json!({ "error": self.to_string(), "details": reason }),
            ApiError::ConfigRejected(d) | ApiError::ReloadFailed(d) => {
                json!({ "error": self.to_string(), "details": d })
            }
            ApiError::NamesBroken(regressions) => json!({ "error": self.to_string(), "details": regressions }),
            other => json!({ "error": other.to_string() }),
        };
        HttpResponse::build(self.status_code()).json(body)
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Unauthenticated | Denied::BadKey => ApiError::Unauthorized(d.to_string()),
            Denied::Revoked | Denied::CertificateScope | Denied::KeyScope | Denied::UntrustedPeer => {
                ApiError::Forbidden(d.to_string())
            }
        }
    }
}

impl From<crate::app::Error> for ApiError {
    fn from(e: crate::app::Error) -> Self {
        use crate::app::Error as E;
        match e {
            E::Invalid(details) => ApiError::invalid(details),
            E::Unauthorized(m) => ApiError::Unauthorized(m),
            E::Forbidden(m) => ApiError::Forbidden(m),
            E::NotFound(m) => ApiError::NotFound(m),
            E::Conflict(m) => ApiError::Conflict(m),
            E::OnboardingDone => ApiError::Gone,
            E::OnboardingIncomplete(state) => ApiError::OnboardingIncomplete(state),
            E::ConfigRejected(d) => ApiError::ConfigRejected(d),
            E::ReloadFailed(d) => ApiError::ReloadFailed(d),
            E::NamesBroken(r) => ApiError::NamesBroken(r),
            E::CertificateAuthority(m) => ApiError::CertificateAuthority(m),
            E::StorageFull => ApiError::StorageFull,
            E::TooLarge => ApiError::TooLarge,
            E::Internal(m) => ApiError::Internal(m),
        }
    }
}

/// Domain errors reach the API through the use cases' classification, so
/// each failure has one status wherever it comes from.
macro_rules! through_app_error {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for ApiError {
            fn from(e: $t) -> Self {
                crate::app::Error::from(e).into()
            }
        }
    )*};
}

through_app_error!(
    StoreError,
    KeyError,
    PkiError,
    AgentError,
    crate::nginx::PipelineError,
    crate::downloads::DownloadError,
    crate::services::ServiceError,
    crate::backup::BackupError,
    crate::acme::AcmeError,
    crate::sites::SiteError,
    crate::sites::files::FilesError,
    crate::tunnels::TunnelsError,
    crate::onboarding::OnboardingError,
    crate::app::provision::ProvisionError,
    crate::users::UserError,
    crate::runtime_settings::RuntimeSettingsError,
    crate::two_factor::TwoFactorError,
);
