//! Multipart uploads of the UI (restore archives, site files) stream their
//! body to disk, so their CSRF token cannot wait for a parsed form. It comes
//! as the form's first part (`<input type=hidden name=_csrf>` first in the
//! form; browsers send parts in document order), never in the URL where
//! logs and the browser's history would keep it. [`UiAdmin::checked_upload`]
//! reads that part, checks it, and hands the rest of the body, from the next
//! part on, to the upload's own parser.

use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, web};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::{self, LocalBoxStream};

use super::{PageError, UiAdmin, csrf};

/// A request body as the upload parsers read it.
pub type Body = LocalBoxStream<'static, Result<Bytes, PayloadError>>;

/// Most bytes read to find the end of the leading token part.
const MAX_LEADING: usize = 4096;

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Why the leading part could not be read.
#[derive(Debug, PartialEq, Eq)]
enum Leading {
    /// More bytes are needed.
    Incomplete,
    /// The body does not start with a `name` part.
    Missing,
}

/// Parses the first part of a multipart body when it is the field `name`:
/// its value, and the offset where the next part's delimiter starts.
fn leading_field(buf: &[u8], boundary: &str, name: &str) -> Result<(String, usize), Leading> {
    let open = format!("--{boundary}\r\n");
    if buf.len() < open.len() {
        return if open.as_bytes().starts_with(buf) { Err(Leading::Incomplete) } else { Err(Leading::Missing) };
    }
    if !buf.starts_with(open.as_bytes()) {
        return Err(Leading::Missing);
    }
    let after = &buf[open.len()..];
    let head_len = find(after, b"\r\n\r\n").ok_or(Leading::Incomplete)?;
    let head = std::str::from_utf8(&after[..head_len]).map_err(|_| Leading::Missing)?;
    let wanted = format!("name=\"{name}\"");
    let named = head.split("\r\n").any(|line| {
        line.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("content-disposition") && v.split(';').any(|p| p.trim() == wanted)
        })
    });
    if !named {
        return Err(Leading::Missing);
    }
    let start = open.len() + head_len + 4;
    let close = format!("\r\n--{boundary}");
    let len = find(&buf[start..], close.as_bytes()).ok_or(Leading::Incomplete)?;
    let value = std::str::from_utf8(&buf[start..start + len]).map_err(|_| Leading::Missing)?;
    Ok((value.to_string(), start + len + 2))
}

impl UiAdmin {
    /// Checks the CSRF token that leads a multipart upload (403 and audited
    /// like any form when missing or wrong) and returns the body from the
    /// next part on.
    pub async fn checked_upload(&self, req: &HttpRequest, payload: web::Payload) -> Result<Body, PageError> {
        let ctype = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let boundary = multer::parse_boundary(ctype).map_err(|_| PageError {
            status: StatusCode::BAD_REQUEST,
            message: "Send the form as multipart/form-data.".into(),
        })?;
        let mut body: Body = payload.boxed_local();
        let mut buf: Vec<u8> = Vec::new();
        let (token, rest) = loop {
            match leading_field(&buf, &boundary, csrf::FIELD) {
                Ok(found) => break found,
                Err(Leading::Incomplete) if buf.len() < MAX_LEADING => match body.next().await {
                    Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                    Some(Err(_)) | None => break (String::new(), buf.len()),
                },
                Err(_) => break (String::new(), buf.len()),
            }
        };
        self.check_csrf(&token, req.path()).await?;
        let head = Bytes::copy_from_slice(&buf[rest..]);
        Ok(stream::once(async move { Ok(head) }).chain(body).boxed_local())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "XyZ";

    #[test]
    fn reads_the_leading_token_part() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n123.abc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a\"\r\n\r\nA\r\n--XyZ--\r\n";
        let (token, rest) = leading_field(body.as_bytes(), B, "_csrf").unwrap();
        assert_eq!(token, "123.abc");
        assert!(body[rest..].starts_with("--XyZ\r\nContent-Disposition: form-data; name=\"files\""));
        // Any prefix of it asks for more.
        for cut in [0, 3, 10, 60, body.find("123").unwrap() + 3] {
            assert_eq!(leading_field(&body.as_bytes()[..cut], B, "_csrf"), Err(Leading::Incomplete), "{cut}");
        }
    }

    #[test]
    fn other_first_parts_are_no_token() {
        for body in [
            "--XyZ\r\nContent-Disposition: form-data; name=\"passphrase\"\r\n\r\nx\r\n--XyZ--\r\n",
            "--XyZ\r\nContent-Disposition: form-data; name=\"_csrf_other\"\r\n\r\nx\r\n--XyZ--\r\n",
            "--Other\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\nx\r\n--Other--\r\n",
            "garbage",
        ] {
            assert_eq!(leading_field(body.as_bytes(), B, "_csrf"), Err(Leading::Missing), "{body}");
        }
    }
}
