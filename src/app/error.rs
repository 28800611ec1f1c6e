//! What a use case can fail with, in the appliance's words. Each HTTP surface
//! maps it to its own answer in one place (`panel::error` for the panel).

use crate::acme::AcmeError;
use crate::agents::AgentError;
use crate::apikeys::KeyError;
use crate::app::provision::ProvisionError;
use crate::model::FieldError;
use crate::onboarding::{OnboardingError, OnboardingState};
use crate::pki::PkiError;
use crate::runtime_settings::RuntimeSettingsError;
use crate::sites::SiteError;
use crate::sites::files::FilesError;
use crate::store::StoreError;
use crate::tunnels::TunnelsError;
use crate::two_factor::TwoFactorError;
use crate::users::UserError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is wrong; each entry names a field and what to fix.
    #[error("{}", invalid_message(.0))]
    Invalid(Vec<FieldError>),
    /// The caller's credential is missing or wrong (a code, a key).
    #[error("{0}")]
    Unauthorized(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The change collides with the current state (a name in use, a run in progress).
    #[error("{0}")]
    Conflict(String),
    /// Onboarding is already done; its steps are closed.
    #[error("Onboarding already completed")]
    OnboardingDone,
    /// The step needs onboarding to be completed first.
    #[error("Onboarding not complete")]
    OnboardingIncomplete(OnboardingState),
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
    /// An upload is larger than the appliance takes.
    #[error("Request body too large")]
    TooLarge,
    /// A fault of the appliance itself, with its context for the log.
    #[error("{0}")]
    Internal(String),
}

/// "Invalid <field>: <what to fix>" for one field, else "Invalid request".
pub fn invalid_message(details: &[FieldError]) -> String {
    match details {
        [one] => format!("Invalid {}: {}", one.field, one.message),
        _ => "Invalid request".to_string(),
    }
}

impl Error {
    /// One invalid field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Error::Invalid(vec![FieldError::new(field, message)])
    }

    /// An internal fault with where it happened.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        Error::Internal(format!("{context}: {err}"))
    }

    /// The message a client is told (and an audit entry records): an
    /// internal fault's context stays in the log.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => "Internal server error".to_string(),
            other => other.to_string(),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Error::NotFound("Not found".into()),
            StoreError::Conflict(m) => Error::Conflict(m),
            StoreError::StorageFull => Error::StorageFull,
            other => Error::internal("store", other),
        }
    }
}

impl From<crate::nginx::PipelineError> for Error {
    fn from(e: crate::nginx::PipelineError) -> Self {
        use crate::nginx::PipelineError as P;
        match e {
            P::Rejected { details } => Error::ConfigRejected(details),
            P::ReloadFailed { details } => Error::ReloadFailed(details),
            P::UnknownSnapshot => Error::NotFound("No such snapshot".into()),
            P::Disabled => Error::Conflict(P::Disabled.to_string()),
            P::Store(s) => s.into(),
            P::StorageFull => Error::StorageFull,
            P::Internal(m) => Error::internal("nginx", m),
        }
    }
}

impl From<AcmeError> for Error {
    fn from(e: AcmeError) -> Self {
        match e {
            AcmeError::Challenge(m)
            | AcmeError::RateLimited(m)
            | AcmeError::Refused(m)
            | AcmeError::Unreachable(m)
            | AcmeError::Setup(m) => Error::CertificateAuthority(m),
            AcmeError::NotConfigured => Error::Conflict(e.to_string()),
            AcmeError::UnknownName(_) => Error::NotFound(e.to_string()),
            AcmeError::Invalid(details) => Error::Invalid(details),
            AcmeError::Nginx(p) => p.into(),
            AcmeError::NamesBroken(r) => Error::NamesBroken(r),
            AcmeError::Io(m) => Error::internal("certificate files", m),
            AcmeError::StorageFull => Error::StorageFull,
            AcmeError::Store(s) => s.into(),
        }
    }
}

impl From<SiteError> for Error {
    fn from(e: SiteError) -> Self {
        match e {
            SiteError::Invalid(details) => Error::Invalid(details),
            SiteError::NotAllowed => Error::Forbidden(e.to_string()),
            SiteError::NotFound => Error::NotFound("No such site".into()),
            SiteError::Unavailable(m) => Error::Conflict(m.into()),
            SiteError::Store(s) => s.into(),
            SiteError::Nginx(n) => n.into(),
            SiteError::Io(io) => Error::internal("site files", io),
        }
    }
}

impl From<FilesError> for Error {
    fn from(e: FilesError) -> Self {
        match e {
            FilesError::InvalidPath { path, reason } => {
                let shown: String = path.chars().take(200).collect();
                Error::field("path", format!("The path {shown:?} {reason}"))
            }
            FilesError::Symlink(p) => Error::field("path", format!("The path {p:?} passes through a symbolic link")),
            FilesError::Clash(_) => Error::Conflict(e.to_string()),
            FilesError::TooLarge(_) => Error::TooLarge,
            FilesError::TooManyFiles(_) | FilesError::TooManyParts(_) => Error::field("files", e.to_string()),
            FilesError::Body(_) => Error::field("body", e.to_string()),
            FilesError::NotFound => Error::NotFound("No such file".into()),
            FilesError::Io(io) => Error::internal("site files", io),
        }
    }
}

impl From<TunnelsError> for Error {
    fn from(e: TunnelsError) -> Self {
        match e {
            TunnelsError::Invalid(details) => Error::Invalid(details),
            TunnelsError::NotYours => Error::Forbidden(e.to_string()),
            TunnelsError::Store(s) => s.into(),
        }
    }
}

impl From<OnboardingError> for Error {
    fn from(e: OnboardingError) -> Self {
        match e {
            OnboardingError::Invalid(details) => Error::Invalid(details),
            OnboardingError::WrongState(_) | OnboardingError::NoPublicIp => Error::Conflict(e.to_string()),
            OnboardingError::Store(s) => s.into(),
        }
    }
}

impl From<ProvisionError> for Error {
    fn from(e: ProvisionError) -> Self {
        match e {
            ProvisionError::Running | ProvisionError::WrongState(_) => Error::Conflict(e.to_string()),
            ProvisionError::Invalid(details) => Error::Invalid(details),
            ProvisionError::Store(s) => s.into(),
        }
    }
}

impl From<UserError> for Error {
    fn from(e: UserError) -> Self {
        match e {
            UserError::Invalid(details) => Error::Invalid(details),
            UserError::BadInvitation => Error::NotFound(e.to_string()),
            UserError::BadTotp => Error::field("code", e.to_string()),
            UserError::Store(s) => s.into(),
            UserError::Hash(m) => Error::internal("password hash", m),
        }
    }
}

impl From<RuntimeSettingsError> for Error {
    fn from(e: RuntimeSettingsError) -> Self {
        match e {
            RuntimeSettingsError::Invalid(details) => Error::Invalid(details),
            RuntimeSettingsError::Locked(message) => Error::Conflict(message),
            RuntimeSettingsError::Store(s) => s.into(),
        }
    }
}

impl From<TwoFactorError> for Error {
    fn from(e: TwoFactorError) -> Self {
        match e {
            TwoFactorError::NotEnabled | TwoFactorError::AlreadyEnabled | TwoFactorError::NoPendingSetup => {
                Error::Conflict(e.to_string())
            }
            TwoFactorError::BadCode => Error::Unauthorized(e.to_string()),
            TwoFactorError::Banned => Error::Forbidden(e.to_string()),
            TwoFactorError::Store(s) => s.into(),
        }
    }
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Invalid(details) => Error::Invalid(details),
            KeyError::Rejected => Error::Unauthorized(crate::identity::Denied::BadKey.to_string()),
            KeyError::Store(s) => s.into(),
            KeyError::Hash(m) => Error::internal("api key hash", m),
        }
    }
}

impl From<PkiError> for Error {
    fn from(e: PkiError) -> Self {
        match e {
            PkiError::InvalidCsr(reason) => Error::field("csr", crate::wording::sentence(&reason)),
            PkiError::InvalidLabel => Error::field("label", e.to_string()),
            PkiError::HardwareBound => Error::Conflict(e.to_string()),
            other => Error::internal("pki", other),
        }
    }
}

impl From<AgentError> for Error {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::Invalid(details) => Error::Invalid(details),
            AgentError::BadToken => Error::Forbidden(e.to_string()),
            AgentError::BadCsr(reason) => Error::field("csr", crate::wording::sentence(&reason)),
            AgentError::Store(s) => s.into(),
            AgentError::Pki(p) => p.into(),
            AgentError::Task(m) => Error::internal("agent task", m),
        }
    }
}

impl From<crate::downloads::DownloadError> for Error {
    fn from(e: crate::downloads::DownloadError) -> Self {
        match e {
            crate::downloads::DownloadError::NotFound => Error::NotFound("No such download".into()),
            crate::downloads::DownloadError::Io { .. } => Error::internal("downloads", e),
        }
    }
}

impl From<crate::services::ServiceError> for Error {
    fn from(e: crate::services::ServiceError) -> Self {
        match e {
            crate::services::ServiceError::Unknown(_) => Error::NotFound("No such service".into()),
            crate::services::ServiceError::Unsupported { .. } => Error::field("action", e.to_string()),
            crate::services::ServiceError::SelfStop | crate::services::ServiceError::Unavailable => {
                Error::Conflict(e.to_string())
            }
            crate::services::ServiceError::Supervisor(m) => Error::internal("supervisor", m),
        }
    }
}

impl From<crate::backup::BackupError> for Error {
    fn from(e: crate::backup::BackupError) -> Self {
        use crate::backup::BackupError as B;
        match e {
            B::WeakPassphrase | B::WrongPassphrase => Error::field("passphrase", e.to_string()),
            B::Corrupt(_) | B::TooCostly { .. } => Error::field("archive", e.to_string()),
            // The data dir holds what the operator must fix (a foreign link), or another backup runs.
            B::UnsafeLink { .. } | B::Busy => Error::Conflict(e.to_string()),
            B::UnknownBackup => Error::NotFound("No such backup".into()),
            B::Store(s) => s.into(),
            other => Error::internal("backup", other),
        }
    }
}
