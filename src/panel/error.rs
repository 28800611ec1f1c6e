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
use crate::onboarding::{FieldError, OnboardingState};
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
        let message = match details.as_slice() {
            [one] => format!("Invalid {}: {}", one.field, one.message),
            _ => "Invalid request".to_string(),
        };
        ApiError::BadRequest { message, details }
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

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("Not found".into()),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::StorageFull => ApiError::StorageFull,
            other => ApiError::internal("store", other),
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Invalid(details) => ApiError::invalid(details),
            KeyError::Rejected => Denied::BadKey.into(),
            KeyError::Store(s) => s.into(),
            KeyError::Hash(m) => ApiError::internal("api key hash", m),
        }
    }
}

impl From<PkiError> for ApiError {
    fn from(e: PkiError) -> Self {
        match e {
            PkiError::InvalidCsr(reason) => ApiError::field("csr", crate::wording::sentence(&reason)),
            PkiError::InvalidLabel => ApiError::field("label", e.to_string()),
            other => ApiError::internal("pki", other),
        }
    }
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::Invalid(details) => ApiError::invalid(details),
            AgentError::BadToken => ApiError::Forbidden(e.to_string()),
            AgentError::BadCsr(reason) => ApiError::field("csr", crate::wording::sentence(&reason)),
            AgentError::Store(s) => s.into(),
            AgentError::Pki(p) => p.into(),
            AgentError::Task(m) => ApiError::internal("agent task", m),
        }
    }
}

impl From<crate::nginx::PipelineError> for ApiError {
    fn from(e: crate::nginx::PipelineError) -> Self {
        use crate::nginx::PipelineError as P;
        match e {
            P::Rejected { details } => ApiError::ConfigRejected(details),
            P::ReloadFailed { details } => ApiError::ReloadFailed(details),
            P::UnknownSnapshot => ApiError::NotFound("No such snapshot".into()),
            P::Disabled => ApiError::Conflict(P::Disabled.to_string()),
            P::Store(s) => s.into(),
            P::StorageFull => ApiError::StorageFull,
            P::Internal(m) => ApiError::internal("nginx", m),
        }
    }
}

impl From<crate::downloads::DownloadError> for ApiError {
    fn from(e: crate::downloads::DownloadError) -> Self {
        match e {
            crate::downloads::DownloadError::NotFound => ApiError::NotFound("No such download".into()),
            crate::downloads::DownloadError::Io { .. } => ApiError::internal("downloads", e),
        }
    }
}

impl From<crate::services::ServiceError> for ApiError {
    fn from(e: crate::services::ServiceError) -> Self {
        match e {
            crate::services::ServiceError::Unknown(_) => ApiError::NotFound("No such service".into()),
            crate::services::ServiceError::Unsupported { .. } => ApiError::field("action", e.to_string()),
            crate::services::ServiceError::SelfStop | crate::services::ServiceError::Unavailable => {
                ApiError::Conflict(e.to_string())
            }
            crate::services::ServiceError::Supervisor(m) => ApiError::internal("supervisor", m),
        }
    }
}

impl From<crate::backup::BackupError> for ApiError {
    fn from(e: crate::backup::BackupError) -> Self {
        use crate::backup::BackupError as B;
        match e {
            B::WeakPassphrase | B::WrongPassphrase => ApiError::field("passphrase", e.to_string()),
            B::Corrupt(_) | B::TooCostly { .. } => ApiError::field("archive", e.to_string()),
            // The data dir holds what the operator must fix (a foreign link), or another backup runs.
            B::UnsafeLink { .. } | B::Busy => ApiError::Conflict(e.to_string()),
            B::UnknownBackup => ApiError::NotFound("No such backup".into()),
            B::Store(s) => s.into(),
            other => ApiError::internal("backup", other),
        }
    }
}
