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

    /// The form as `T`: a name sent once is a string, a name sent several
    /// times a list (read checkbox groups with [`list`], a single checkbox
    /// with [`checkbox`]). Names `T` does not know are ignored.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, PageError> {
        serde_json::from_value(as_json(&self.fields))
            .map_err(|_| PageError { status: StatusCode::BAD_REQUEST, message: "Malformed form".into() })
    }
}

/// Form fields as one JSON object: a name sent several times holds a list.
fn as_json(fields: &[(String, String)]) -> serde_json::Value {
    use serde_json::Value;
    let mut map = serde_json::Map::new();
    for (k, v) in fields {
        match map.get_mut(k) {
            None => {
                map.insert(k.clone(), Value::from(v.as_str()));
            }
            Some(Value::Array(values)) => values.push(Value::from(v.as_str())),
            Some(one) => *one = Value::Array(vec![one.take(), Value::from(v.as_str())]),
        }
    }
    Value::Object(map)
}

/// Serde helper for a checkbox group: every checked value (none, one or several).
pub fn list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum OneOrMore {
        One(String),
        More(Vec<String>),
    }
    Ok(match serde::Deserialize::deserialize(d)? {
        OneOrMore::One(v) => vec![v],
        OneOrMore::More(v) => v,
    })
}

/// Serde helper for a single checkbox: checked when its value is `on`.
pub fn checkbox<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let value: String = serde::Deserialize::deserialize(d)?;
    Ok(value == "on")
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

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize, Default, Debug, PartialEq)]
    #[serde(default)]
    struct Typed {
        name: String,
        #[serde(deserialize_with = "super::list")]
        one: Vec<String>,
        #[serde(deserialize_with = "super::list")]
        many: Vec<String>,
        #[serde(deserialize_with = "super::list")]
        none: Vec<String>,
        #[serde(deserialize_with = "super::checkbox")]
        on: bool,
        #[serde(deserialize_with = "super::checkbox")]
        off: bool,
    }

    #[test]
    fn fields_decode_with_lists_and_checkboxes() {
        let fields: Vec<(String, String)> =
            [("csrf", "t"), ("name", "app"), ("one", "a"), ("many", "b"), ("many", "c"), ("on", "on")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into();
        let typed: Typed = serde_json::from_value(super::as_json(&fields)).unwrap();
        let many = vec!["b".to_string(), "c".to_string()];
        let expected = Typed { name: "app".into(), one: vec!["a".into()], many, none: vec![], on: true, off: false };
        assert_eq!(typed, expected);
    }
}
