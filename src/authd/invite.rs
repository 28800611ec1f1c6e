//! `https://auth.<d>/invite/<token>`: the invitee's page. Shows the TOTP QR
//! code to scan, then takes a password and the first code; no JavaScript.
//! An `rd` on the link (the app the invitation is for) survives the form,
//! so "account created" leads back to that app.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, get, post, web};
use serde::Deserialize;

use super::AuthdState;
use super::error::{AuthdError, Reply};
use super::forms::{self, Csrf, bounded_rd, check_csrf, csrf, html};
use super::pages::{Created, Frame, Invite};
use super::portal::safe_rd;
use super::redirect;
use super::regulation::{Step, Verdict};
use crate::audit::{self, Outcome};
use crate::users::{self, UserError};

/// The invitation form, with what went wrong where.
#[derive(Default)]
struct Problems<'a> {
    password: Option<String>,
    code: Option<&'a str>,
    banner: Option<&'a str>,
}

struct Ctx<'a> {
    csrf: &'a Csrf,
    domain: Option<&'a str>,
    token: &'a str,
    rd: &'a str,
}

fn form(status: StatusCode, ctx: &Ctx<'_>, view: &users::InvitationView, problems: Problems<'_>) -> Reply {
    let page = Invite {
        frame: Frame::new("Set up your account", ctx.domain),
        csrf: &ctx.csrf.token,
        token: ctx.token,
        rd: ctx.rd,
        username: &view.username,
        qr_svg: &view.totp.qr_svg,
        secret: &view.totp.totp_secret,
        min_password: users::MIN_PASSWORD_LEN,
        password_error: problems.password,
        code_error: problems.code,
        banner: problems.banner,
    };
    html(status, ctx.csrf, ctx.domain, &page)
}

/// A field message as a sentence: "use at least 12 characters" → "Use at least 12 characters."
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let first = chars.next().map(|c| c.to_uppercase().collect::<String>()).unwrap_or_default();
    let end = if text.ends_with('.') { "" } else { "." };
    format!("{first}{}{end}", chars.as_str())
}

#[get("/invite/{token}")]
pub async fn show(state: web::Data<AuthdState>, req: HttpRequest, token: web::Path<String>) -> Reply {
    let c = csrf(&state, &req);
    let domain = state.domain().await;
    let rd = safe_rd(&forms::raw_rd(&req).unwrap_or_default(), domain.as_deref());
    let ctx = Ctx { csrf: &c, domain: domain.as_deref(), token: &token, rd: &rd };
    let view = users::view_invitation(&state.store, &token, state.clock.now()).await?;
    form(StatusCode::OK, &ctx, &view, Problems::default())
}

#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    rd: String,
    #[serde(default)]
    csrf: String,
}

#[post("/invite/{token}")]
pub async fn accept(
    state: web::Data<AuthdState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Form<AcceptForm>,
) -> Reply {
    let body = body.into_inner();
    check_csrf(&state, &req, &body.csrf)?;
    let c = csrf(&state, &req);
    let domain = state.domain().await;
    let rd = safe_rd(&bounded_rd(body.rd), domain.as_deref());
    let ctx = Ctx { csrf: &c, domain: domain.as_deref(), token: &token, rd: &rd };
    let now = state.clock.now();
    let view = users::view_invitation(&state.store, &token, now).await?;
    let ip = state.client_ip(&req);
    let client = state.client_key(&req);
    let verdict =
        state.regulator.check(&view.username, &client, Step::Totp, now.unix_timestamp(), &state.current().await);
    if let Verdict::Refuse { .. } = verdict {
        let banner = Some("Too many failed attempts. Try again in a few minutes.");
        return form(StatusCode::TOO_MANY_REQUESTS, &ctx, &view, Problems { banner, ..Default::default() });
    }
    let result = users::accept_invitation(&state.store, &token, body.password, &body.code, now).await;
    let details = Some(serde_json::json!({ "ip": ip }));
    let problems = match result {
        Ok(user) => {
            let actor = format!("visitor:{}", user.username);
            audit::record(&state.store, &actor, "invitation.accept", &user.username, Outcome::Success, details).await;
            let continue_to = (!rd.is_empty()).then(|| (rd.clone(), redirect::host(&rd).to_string()));
            let page =
                Created { frame: Frame::new("Account created", ctx.domain), username: &user.username, continue_to };
            return html(StatusCode::OK, &c, ctx.domain, &page);
        }
        Err(UserError::Invalid(fields)) => {
            let text = fields.into_iter().map(|f| sentence(&f.message)).collect::<Vec<_>>().join(" ");
            Problems { password: Some(text), ..Default::default() }
        }
        Err(UserError::BadTotp) => {
            state.regulator.fail(&view.username, &client, Step::Totp, now.unix_timestamp(), &state.current().await);
            let code = "That code is not valid. Check that your phone's clock is right and enter the code shown now.";
            Problems { code: Some(code), ..Default::default() }
        }
        Err(err) => return Err(AuthdError::from(err)),
    };
    let actor = format!("visitor:{}", view.username);
    audit::record(&state.store, &actor, "invitation.accept", &view.username, Outcome::Failure, details).await;
    form(StatusCode::BAD_REQUEST, &ctx, &view, problems)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(show).service(accept);
}
