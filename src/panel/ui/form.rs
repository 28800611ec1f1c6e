//! Form bodies of the UI: `application/x-www-form-urlencoded`, CSRF-checked
//! before any handler code runs (a refusal is audited through
//! [`crate::app::denied::csrf_refused`]).

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use time::OffsetDateTime;

use super::{PageError, UiAdmin, csrf};
use crate::app::denied;

/// Largest accepted form body, bytes.
const FORM_LIMIT: usize = 64 * 1024;

/// The caller (admin) and the fields of a form whose CSRF token checked out.
pub struct UiForm {
    pub ui: UiAdmin,
    fields: Vec<(String, String)>,
}

impl UiForm {
    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    /// The first value of `name`, or `None` when the form did not send it
    /// (a disabled input is never sent).
    pub fn value(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (checkbox groups).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }

    /// Whether a confirmation checkbox/button value `yes` was sent.
    pub fn confirmed(&self) -> bool {
        self.get("confirm") == "yes"
    }
}

impl UiAdmin {
    /// Refuses (403, audited) a missing or wrong CSRF token. Form posts check
    /// it in [`UiForm`]; multipart uploads, which stream their body, carry it
    /// in the query string and call this before reading the body.
    pub async fn check_csrf(&self, token: &str, path: &str) -> Result<(), PageError> {
        let signer = self.csrf_key.get(&self.state.store).await?;
        if signer.verify(&self.actor(), token, OffsetDateTime::now_utc()) {
            return Ok(());
        }
        denied::csrf_refused(&self.state, &self.actor(), path).await;
        Err(refused("This form is expired or did not come from this panel. Reload the page and try again."))
    }
}

fn refused(message: &str) -> PageError {
    PageError { status: StatusCode::FORBIDDEN, message: message.into() }
}

impl FromRequest for UiForm {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let admin = UiAdmin::extract(req);
        let mut payload = payload.take();
        let form_type = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let path = req.path().to_string();
        Box::pin(async move {
            let ui = admin.await?;
            if !form_type {
                return Err(PageError {
                    status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    message: "Expected a form".into(),
                });
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk =
                    chunk.map_err(|_| PageError { status: StatusCode::BAD_REQUEST, message: "Bad body".into() })?;
                if body.len() + chunk.len() > FORM_LIMIT {
                    return Err(PageError { status: StatusCode::PAYLOAD_TOO_LARGE, message: "Form too large".into() });
                }
                body.extend_from_slice(&chunk);
            }
            let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
                .map_err(|_| PageError { status: StatusCode::BAD_REQUEST, message: "Malformed form".into() })?;
            let token = fields.iter().find(|(k, _)| k == csrf::FIELD).map(|(_, v)| v.as_str()).unwrap_or("");
            ui.check_csrf(token, &path).await?;
            Ok(UiForm { ui, fields })
        })
    }
}
