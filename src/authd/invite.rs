//! `https://auth.<d>/invite/<token>`: the invitee's page. Shows the TOTP QR
//! code to scan, then takes a password and the first code; no JavaScript.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;

use super::AuthdState;
use super::portal::{self, escape};
use super::regulation::{Step, Verdict};
use crate::audit::{self, Outcome};
use crate::users::{self, UserError};

fn form(csrf: &str, token: &str, view: &users::InvitationView, message: &str) -> String {
    let msg = if message.is_empty() { String::new() } else { format!("<p class=\"err\">{}</p>", escape(message)) };
    format!(
        "{msg}<p>Welcome, <b>{user}</b>. Scan this code with an authenticator app:</p>{qr}\
         <p>Or enter the key by hand: <code>{secret}</code></p>\
         <form method=\"post\" action=\"/invite/{token}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label>Password (at least {min} characters) <input name=\"password\" type=\"password\" \
         autocomplete=\"new-password\" minlength=\"{min}\" required></label>\
         <label>Code from the app <input name=\"code\" inputmode=\"numeric\" pattern=\"[0-9]{{6}}\" required></label>\
         <button>Create account</button></form>",
        user = escape(&view.username),
        qr = view.totp.qr_svg,
        secret = escape(&view.totp.totp_secret),
        token = escape(token),
        csrf = escape(csrf),
        min = users::MIN_PASSWORD_LEN,
    )
}

fn gone(csrf: &portal::Csrf) -> HttpResponse {
    let body = "<p>This invitation is invalid, was already used, or has expired. Ask for a new one.</p>";
    portal::html(StatusCode::NOT_FOUND, csrf, "Invitation", body)
}

#[get("/invite/{token}")]
pub async fn show(state: web::Data<AuthdState>, req: HttpRequest, token: web::Path<String>) -> HttpResponse {
    let c = portal::csrf(&state, &req);
    match users::view_invitation(&state.store, &token, state.clock.now()).await {
        Ok(view) => portal::html(StatusCode::OK, &c, "Set up your account", &form(&c.token, &token, &view, "")),
        Err(_) => gone(&c),
    }
}

#[derive(Deserialize)]
pub struct AcceptForm {
    password: String,
    code: String,
    #[serde(default)]
    csrf: String,
}

#[post("/invite/{token}")]
pub async fn accept(
    state: web::Data<AuthdState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Form<AcceptForm>,
) -> HttpResponse {
    let body = body.into_inner();
    if !portal::csrf_ok(&state, &req, &body.csrf) {
        return portal::csrf_refused(&state, &req);
    }
    let c = portal::csrf(&state, &req);
    let now = state.clock.now();
    let Ok(view) = users::view_invitation(&state.store, &token, now).await else {
        return gone(&c);
    };
    let ip = state.client_ip(&req);
    let client = state.client_key(&req);
    let verdict =
        state.regulator.check(&view.username, &client, Step::Totp, now.unix_timestamp(), &state.current().await);
    if let Verdict::Refuse { .. } = verdict {
        let page = form(&c.token, &token, &view, "Too many failed attempts. Try again in a few minutes.");
        return portal::html(StatusCode::TOO_MANY_REQUESTS, &c, "Set up your account", &page);
    }
    let result = users::accept_invitation(&state.store, &token, body.password, &body.code, now).await;
    let details = Some(serde_json::json!({ "ip": ip }));
    let message = match result {
        Ok(user) => {
            let actor = format!("visitor:{}", user.username);
            audit::record(&state.store, &actor, "invitation.accept", &user.username, Outcome::Success, details).await;
            let body = "<p>Your account is ready. <a href=\"/\">Sign in</a>.</p>";
            return portal::html(StatusCode::OK, &c, "Account created", body);
        }
        Err(UserError::Invalid(fields)) => fields.into_iter().map(|f| f.message).collect::<Vec<_>>().join("; "),
        Err(UserError::BadTotp) => {
            state.regulator.fail(&view.username, &client, Step::Totp, now.unix_timestamp(), &state.current().await);
            "That code is not valid; check the app's clock and try the next code.".into()
        }
        Err(UserError::BadInvitation) => return gone(&c),
        Err(err) => {
            tracing::error!(%err, "cannot accept invitation");
            return HttpResponse::InternalServerError().finish();
        }
    };
    let actor = format!("visitor:{}", view.username);
    audit::record(&state.store, &actor, "invitation.accept", &view.username, Outcome::Failure, details).await;
    portal::html(StatusCode::BAD_REQUEST, &c, "Set up your account", &form(&c.token, &token, &view, &message))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(show).service(accept);
}
