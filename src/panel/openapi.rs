//! `GET /api/openapi.json`: the API description, generated from the handlers.

use actix_web::{HttpResponse, get, web};
use utoipa::OpenApi;

use super::routes::nginx as nginx_routes;
use super::routes::site_files;
use super::routes::sites as site_routes;
use super::routes::tunnels;
use super::routes::{acme, audit, certs, doctor, enroll, health, keys, onboarding};
use super::routes::{backup, metrics, services, system};
use super::routes::{groups, invitations, runtime_settings, two_factor, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "Portico panel API", description = "Self-hosted tunnel appliance: panel REST API."),
    paths(
        health::show, health::names, health::probe, doctor::show, doctor::start,
        onboarding::status, onboarding::set_domain, onboarding::verify_dns,
        onboarding::provision, onboarding::provision_stream,
        keys::list, keys::create, keys::revoke,
        certs::mtls_info, certs::mtls_download, certs::mtls_rotate, certs::admin_auth_mode, certs::admin_upgrade,
        certs::agent_list, certs::agent_create, certs::agent_enroll_token,
        certs::agent_download, certs::agent_revoke, certs::agent_remove, certs::agent_capabilities,
        acme::list, acme::auto_renew_status, acme::renew, acme::upload,
        enroll::enroll,
        audit::list,
        tunnels::list, tunnels::create, tunnels::update, tunnels::remove, tunnels::agent_config, tunnels::agents,
        document,
        users::list, users::create, users::update, users::remove, users::reset_totp,
        users::sessions, users::revoke_session,
        groups::list, groups::create, groups::remove, groups::add_member, groups::remove_member,
        invitations::list, invitations::create, invitations::revoke, invitations::show, invitations::accept,
        two_factor::show, two_factor::setup, two_factor::confirm, two_factor::verify, two_factor::regenerate,
        two_factor::disable, runtime_settings::show, runtime_settings::update,
        nginx_routes::rendered, nginx_routes::snapshots, nginx_routes::diff, nginx_routes::rollback,
        site_routes::list, site_routes::create, site_routes::update, site_routes::remove,
        site_routes::verify_dns, site_routes::agent_sites,
        site_files::list, site_files::upload, site_files::remove,
        services::list, services::control, services::live_logs,
        system::stats,
        backup::create, backup::fetch,
    ),
    components(schemas(ErrorBody)),
    modifiers(&ErrorResponses)
)]
pub struct ApiDoc;

/// Routes outside `/api`.
#[derive(OpenApi)]
#[openapi(paths(metrics::show))]
struct RootDoc;

/// The error shape every route may answer with.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// A stable human summary.
    error: String,
    /// Field errors (`[{field, message}]`) for 400; the nginx error output for
    /// 422/502; absent otherwise.
    #[schema(value_type = Option<serde_json::Value>)]
    details: Option<serde_json::Value>,
    /// Present on 503 before onboarding completes.
    #[schema(value_type = Option<String>)]
    onboarding_status: Option<String>,
}

/// Adds the shared error responses (identity, validation, onboarding guard)
/// to every operation that does not describe them itself.
struct ErrorResponses;

const ERROR_STATUSES: &[(&str, &str)] = &[
    ("400", "Invalid input; `details` lists the fields"),
    ("401", "No identity, or an invalid API key"),
    ("403", "Identity lacks permission, certificate revoked, or untrusted peer"),
    ("404", "Not found"),
    ("409", "Conflict with the current state"),
    ("410", "Onboarding already completed"),
    ("413", "Request body too large"),
    ("415", "Body is not JSON"),
    ("503", "Onboarding not complete"),
];

impl utoipa::Modify for ErrorResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        for item in doc.paths.paths.values_mut() {
            let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in ops.into_iter().flatten() {
                for (status, description) in ERROR_STATUSES {
                    op.responses.responses.entry(status.to_string()).or_insert_with(|| {
                        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
                        ResponseBuilder::new()
                            .description(*description)
                            .content("application/json", content)
                            .build()
                            .into()
                    });
                }
            }
        }
    }
}

#[utoipa::path(tag = "health", responses((status = 200, content_type = "application/json", body = Object)))]
#[get("/openapi.json")]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(full_document())
}

/// The document with every path under `/api`, where the scope mounts them.
pub fn full_document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let paths = std::mem::take(&mut doc.paths.paths);
    doc.paths.paths = paths.into_iter().map(|(path, item)| (format!("/api{path}"), item)).collect();
    let mut root = RootDoc::openapi();
    utoipa::Modify::modify(&ErrorResponses, &mut root);
    doc.paths.paths.append(&mut root.paths.paths);
    doc
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(document);
}
