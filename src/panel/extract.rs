//! Request extractors shared by every route: JSON bodies with field paths in
//! their errors, and query strings with the same error shape.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::model::FieldError;

/// A JSON body. Malformed JSON, wrong types and missing fields become 400
/// with the JSON path of the offending field.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<mime::Mime>().ok())
            .is_some_and(|m| m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON));
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::UnsupportedMediaType);
            }
            let bytes = bytes.await.map_err(|e| match e.as_response_error().status_code().as_u16() {
                413 => ApiError::TooLarge,
                _ => ApiError::field("body", "The request body could not be read"),
            })?;
            parse_json(&bytes).map(ApiJson)
        })
    }
}

/// Deserializes JSON, reporting the path of the first bad field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = clean_serde_message(&inner.to_string());
        let field = if path == "." { field_from_message(&message).unwrap_or_else(|| "body".into()) } else { path };
        ApiError::invalid(vec![FieldError::new(&field, message)])
    })
}

/// A query string, with the same error shape as bodies.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiQuery<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = serde_urlencoded::from_str::<T>(req.query_string())
            .map(ApiQuery)
            .map_err(|e| ApiError::field("query", clean_serde_message(&e.to_string())));
        std::future::ready(result)
    }
}

/// Drops serde_json's " at line 1 column 7" tail.
fn clean_serde_message(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// "missing field `domain`" → "domain".
fn field_from_message(message: &str) -> Option<String> {
    let rest = message.split("missing field `").nth(1)?;
    Some(rest.split('`').next()?.to_string())
}
