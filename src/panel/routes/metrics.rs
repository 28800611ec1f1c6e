//! `GET /metrics`: Prometheus metrics. Same identity chain as the API: an
//! admin, an API key with the `read` scope, or an agent with `system:read`.

use actix_web::{HttpResponse, web};

use crate::panel::AppState;
use crate::panel::auth::{Cap, SystemRead};
use crate::panel::error::ApiError;

/// Metrics in the Prometheus text format (OpenMetrics flavour).
///
/// Agents and tunnels online, relay bytes and open streams per agent and per
/// tunnel, visitor requests per tunnel (and site) and status class as nginx
/// answered them, authd decisions, login failures and bans, nginx apply and ACME renewal
/// outcomes, audited events, certificate days left, services and process
/// memory. Counters restart from zero with the process that keeps them.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, content_type = "application/openmetrics-text", body = String)))]
pub async fn show(state: web::Data<AppState>, _who: Cap<SystemRead>) -> Result<HttpResponse, ApiError> {
    let counters = state.panel_counters();
    let text = crate::metrics::render(&state.store, &state.supervisor, &state.settings.data_dir, &counters).await?;
    Ok(HttpResponse::Ok().content_type(crate::metrics::CONTENT_TYPE).body(text))
}
