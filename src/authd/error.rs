//! authd's one error type. Handlers return [`Reply`] and use `?` for store
//! and internal failures; [`AuthdError`] decides every status here, and
//! [`pages`] shows the visitor-facing ones as portal message pages. 5xx
//! details are logged once here and never shown: a visitor gets an empty
//! 500, and nginx's `auth_request` the same.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::UrlencodedError;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};

use super::AuthdState;
use super::forms;
use crate::store::StoreError;
use crate::users::UserError;

/// What a handler answers.
pub type Reply = Result<HttpResponse, AuthdError>;

#[derive(Debug, thiserror::Error)]
pub enum AuthdError {
    /// A form post whose CSRF token is missing or wrong: nothing happened.
    #[error("form token missing or wrong")]
    Csrf,
    /// An invitation link that was used, expired or withdrawn.
    #[error("invitation not valid")]
    InvitationGone,
    /// The appliance has no domain yet, so no session can be scoped to it.
    #[error("no domain yet")]
    NotReady,
    /// A form that does not parse or is too large (16 KiB); actix's status
    /// (400, 413…), never the parser's text.
    #[error("unreadable form: {0}")]
    Form(UrlencodedError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A failure in `users` that is not about the visitor's input.
    #[error(transparent)]
    User(UserError),
    #[error("cannot render a portal page: {0}")]
    Render(#[from] askama::Error),
}

impl From<UserError> for AuthdError {
    fn from(err: UserError) -> Self {
        match err {
            UserError::BadInvitation => AuthdError::InvitationGone,
            UserError::Store(err) => AuthdError::Store(err),
            other => AuthdError::User(other),
        }
    }
}

/// The message page a visitor sees for an error.
struct Page {
    title: &'static str,
    text: &'static str,
    /// The text of the page's one link, which leads to `/`.
    link: &'static str,
    /// Whether the page names the operator's domain: not for a form that
    /// could not be read, nor while the appliance has no domain.
    named: bool,
}

impl AuthdError {
    fn page(&self) -> Option<Page> {
        let page = |title, text, link, named| Some(Page { title, text, link, named });
        match self {
            AuthdError::Csrf => page(
                "Form expired",
                "This form expired or did not come from this page, so nothing was done. Please try again.",
                "Start again",
                true,
            ),
            AuthdError::InvitationGone => page(
                "Invitation not valid",
                "This invitation link is not valid: it was already used, it expired, or it was withdrawn. \
                 Ask the person who invited you for a new one.",
                "Go to sign in",
                true,
            ),
            AuthdError::NotReady => page(
                "Not ready",
                "This appliance has no domain yet, so nobody can sign in. Try again later.",
                "Start again",
                false,
            ),
            AuthdError::Form(err) if err.status_code() == StatusCode::PAYLOAD_TOO_LARGE => page(
                "Something went wrong",
                "The form was too large to read, so nothing was done.",
                "Start again",
                false,
            ),
            AuthdError::Form(_) => {
                page("Something went wrong", "The form could not be read, so nothing was done.", "Start again", false)
            }
            AuthdError::Store(_) | AuthdError::User(_) | AuthdError::Render(_) => None,
        }
    }
}

impl ResponseError for AuthdError {
    fn status_code(&self) -> StatusCode {
        match self {
            AuthdError::Csrf => StatusCode::FORBIDDEN,
            AuthdError::InvitationGone => StatusCode::NOT_FOUND,
            AuthdError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            AuthdError::Form(err) => err.status_code(),
            AuthdError::Store(_) | AuthdError::User(_) | AuthdError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The bare status; [`pages`] puts the page in.
    fn error_response(&self) -> HttpResponse {
        if self.page().is_none() {
            tracing::error!(error = %self, "request failed");
        }
        HttpResponse::build(self.status_code()).finish()
    }
}

/// Middleware: answers an [`AuthdError`] that has a page with that page,
/// carrying the request's CSRF cookie like every portal page.
pub async fn pages(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let res = next.call(req).await?;
    let shown = res
        .response()
        .error()
        .and_then(|e| e.as_error::<AuthdError>())
        .and_then(|e| Some((e.status_code(), e.page()?)));
    let state = res.request().app_data::<web::Data<AuthdState>>().cloned();
    let (Some((status, page)), Some(state)) = (shown, state) else {
        return Ok(res.map_into_boxed_body());
    };
    let (req, _) = res.into_parts();
    let c = forms::csrf(&state, &req);
    let domain = if page.named { state.domain().await } else { None };
    let res = forms::message(status, &c, domain.as_deref(), page.title, page.text, ("/".into(), page.link))?;
    Ok(ServiceResponse::new(req, res))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_pages() {
        let overflow = UrlencodedError::Overflow { size: 20_000, limit: 16_384 };
        let table = [
            (AuthdError::Csrf, 403, Some("Form expired")),
            (UserError::BadInvitation.into(), 404, Some("Invitation not valid")),
            (AuthdError::NotReady, 503, Some("Not ready")),
            (AuthdError::Form(overflow), 413, Some("Something went wrong")),
            (AuthdError::Form(UrlencodedError::ContentType), 415, Some("Something went wrong")),
            (UserError::Store(StoreError::NotFound).into(), 500, None),
            (UserError::Hash("bcrypt".into()).into(), 500, None),
        ];
        for (err, status, title) in table {
            assert_eq!(err.status_code().as_u16(), status, "{err}");
            assert_eq!(err.page().map(|p| p.title), title, "{err}");
            let res = err.error_response();
            assert_eq!((res.status().as_u16(), res.headers().len()), (status, 0), "{err}: bare, nothing shown");
        }
    }
}
