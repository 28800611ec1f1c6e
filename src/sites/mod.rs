//! Static sites: validation, who may manage which site, the site directory
//! with its default page, and create/update/delete kept together with the
//! nginx apply (undone when it fails). Files are in `files.rs`, path checks
//! in `paths.rs`. The use cases that also prove, audit and serve both HTTP
//! surfaces are in `app::sites`.

pub mod files;
pub mod paths;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::identity::Identity;
use crate::model::FieldError;
use crate::model::{Access, RESERVED_NAMES};
use crate::nginx::{Pipeline, PipelineError};
use crate::onboarding::DnsReport;
use crate::store::{Site, SiteFields, Store, StoreError};

/// Default upload cap of a site, bytes.
pub const DEFAULT_MAX_BYTES: u64 = 500 * 1024 * 1024;
/// Largest cap a site may be given, bytes.
pub const MAX_MAX_BYTES: u64 = 64 * 1024 * 1024 * 1024;

const DEFAULT_INDEX: &str = "<!doctype html>\n<title>New site</title>\n<p>This site has no content yet.</p>\n";

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("invalid site")]
    Invalid(Vec<FieldError>),
    #[error("This site is not among the agent's allowed sites")]
    NotAllowed,
    #[error("no such site")]
    NotFound,
    #[error("{0}")]
    Unavailable(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Nginx(#[from] PipelineError),
    #[error("site files: {0}")]
    Io(#[from] std::io::Error),
}

/// What a caller may set when creating a site; absent fields take defaults.
#[derive(Debug, Clone, Default)]
pub struct NewSite {
    pub name: String,
    pub spa_fallback: bool,
    pub access: Option<String>,
    pub allowed_users: Vec<String>,
    pub allowed_groups: Vec<String>,
    pub max_bytes: Option<u64>,
}

/// A partial update; absent fields keep their value.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SitePatch {
    /// A new subdomain label; the files move with the site.
    pub name: Option<String>,
    pub spa_fallback: Option<bool>,
    /// `public` (Public: anyone with the link), `authenticated` (Signed-in
    /// visitors: any visitor user) or `restricted` (Restricted: only
    /// `allowedUsers` and `allowedGroups`).
    pub access: Option<String>,
    pub allowed_users: Option<Vec<String>>,
    pub allowed_groups: Option<Vec<String>>,
    /// Upload cap for the whole site, bytes (1 KiB to 64 GiB).
    pub max_bytes: Option<u64>,
}

impl SitePatch {
    /// `f` with every field the patch sets replaced. A new access other
    /// than `restricted` clears the allowed users and groups unless the
    /// patch sets them too.
    pub fn apply(self, f: SiteFields) -> SiteFields {
        let SitePatch { name, spa_fallback, access, allowed_users, allowed_groups, max_bytes } = self;
        let cleared = access.as_deref().is_some_and(|a| Access::parse(a) != Some(Access::Restricted))
            && allowed_users.is_none()
            && allowed_groups.is_none();
        let (users, groups) = if cleared { (Vec::new(), Vec::new()) } else { (f.allowed_users, f.allowed_groups) };
        SiteFields {
            name: name.unwrap_or(f.name),
            spa_fallback: spa_fallback.unwrap_or(f.spa_fallback),
            access: access.unwrap_or(f.access),
            allowed_users: allowed_users.unwrap_or(users),
            allowed_groups: allowed_groups.unwrap_or(groups),
            max_bytes: max_bytes.unwrap_or(f.max_bytes),
        }
    }
}

/// A full replacement: every field set.
impl From<SiteFields> for SitePatch {
    fn from(f: SiteFields) -> Self {
        let SiteFields { name, spa_fallback, access, allowed_users, allowed_groups, max_bytes } = f;
        SitePatch {
            name: Some(name),
            spa_fallback: Some(spa_fallback),
            access: Some(access),
            allowed_users: Some(allowed_users),
            allowed_groups: Some(allowed_groups),
            max_bytes: Some(max_bytes),
        }
    }
}

/// Checks every field; collects all errors.
pub fn validate(f: &SiteFields) -> Result<(), SiteError> {
    let SiteFields { name, spa_fallback: _, access, allowed_users, allowed_groups, max_bytes } = f;
    let mut errors = Vec::new();
    if !crate::model::is_label(name) {
        errors.push(FieldError::new("name", "Use a lowercase DNS label: a-z, 0-9 and '-', at most 63 characters"));
    } else if RESERVED_NAMES.contains(&name.as_str()) {
        errors.push(FieldError::new("name", "This name is reserved for Portico itself"));
    }
    if Access::parse(access).is_none() {
        errors.push(FieldError::new("access", "Choose public, authenticated or restricted"));
    }
    for (field, list) in [("allowedUsers", allowed_users), ("allowedGroups", allowed_groups)] {
        if list.iter().any(|u| u.is_empty() || u.len() > 64 || u.chars().any(|c| c.is_whitespace() || c.is_control())) {
            errors.push(FieldError::new(field, "Use names without spaces, 1–64 characters each"));
        }
    }
    if Access::parse(access) != Some(Access::Restricted) && (!allowed_users.is_empty() || !allowed_groups.is_empty()) {
        errors.push(FieldError::new("access", "Allowed users and groups need access 'restricted'"));
    }
    if !(1024..=MAX_MAX_BYTES).contains(max_bytes) {
        errors.push(FieldError::new("maxBytes", "Choose a limit between 1024 bytes and 64 GiB"));
    }
    if errors.is_empty() { Ok(()) } else { Err(SiteError::Invalid(errors)) }
}

/// `<data_dir>/sites/<name>`.
pub fn site_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("sites").join(name)
}

/// The site names a caller is limited to: an agent's `allowed_sites`
/// (none when empty), or `None` (every site) for admins and API keys.
pub async fn scope(store: &Store, who: &Identity) -> Result<Option<Vec<String>>, SiteError> {
    match who {
        Identity::Agent { label, .. } => {
            Ok(Some(store.agent(label.clone()).await?.map(|a| a.allowed_sites).unwrap_or_default()))
        }
        _ => Ok(None),
    }
}

fn permits(scope: &Option<Vec<String>>, name: &str) -> bool {
    scope.as_ref().is_none_or(|names| names.iter().any(|n| n == name))
}

/// Every site the caller may see, by name.
pub async fn list(store: &Store, who: &Identity) -> Result<Vec<Site>, SiteError> {
    let scope = scope(store, who).await?;
    Ok(store.sites().await?.into_iter().filter(|s| permits(&scope, &s.name)).collect())
}

/// One site the caller may manage; others' sites do not exist for an agent.
pub async fn get(store: &Store, who: &Identity, id: i64) -> Result<Site, SiteError> {
    let site = store.site(id).await?.ok_or(SiteError::NotFound)?;
    if !permits(&scope(store, who).await?, &site.name) {
        return Err(SiteError::NotFound);
    }
    Ok(site)
}

/// Creates the site row and directory (with a default `index.html`) and
/// makes nginx serve it; on any failure both are removed again.
pub async fn create(
    store: &Store,
    nginx: &Pipeline,
    data_dir: &Path,
    who: &Identity,
    new: NewSite,
) -> Result<Site, SiteError> {
    let NewSite { name, spa_fallback, access, allowed_users, allowed_groups, max_bytes } = new;
    let fields = SiteFields {
        name,
        spa_fallback,
        access: access.unwrap_or_else(|| "authenticated".into()),
        allowed_users,
        allowed_groups,
        max_bytes: max_bytes.unwrap_or(DEFAULT_MAX_BYTES),
    };
    validate(&fields)?;
    if !permits(&scope(store, who).await?, &fields.name) {
        return Err(SiteError::NotAllowed);
    }
    let change = nginx.change().await;
    let site = store.insert_site(fields, OffsetDateTime::now_utc()).await?;
    let dir = site_dir(data_dir, &site.name);
    let made = tokio::fs::create_dir_all(&dir).await;
    let made = match made {
        Ok(()) if !dir.join("index.html").exists() => tokio::fs::write(dir.join("index.html"), DEFAULT_INDEX).await,
        other => other,
    };
    let result = match made {
        Ok(()) => change.apply(&format!("site {} created", site.name)).await.map_err(SiteError::from),
        Err(e) => Err(e.into()),
    };
    if let Err(e) = result {
        let _ = store.delete_site(site.id).await;
        let _ = tokio::fs::remove_dir_all(&dir).await;
        return Err(e);
    }
    Ok(site)
}

/// Changes some fields. A new name moves the directory; when nginx refuses
/// the result, the row and the directory are put back. Returns (old, new).
pub async fn update(
    store: &Store,
    nginx: &Pipeline,
    data_dir: &Path,
    who: &Identity,
    id: i64,
    patch: SitePatch,
) -> Result<(Site, Site), SiteError> {
    let old = get(store, who, id).await?;
    let fields = patch.apply(SiteFields::from(&old));
    validate(&fields)?;
    if !permits(&scope(store, who).await?, &fields.name) {
        return Err(SiteError::NotAllowed);
    }
    let change = nginx.change().await;
    let (from, to) = (site_dir(data_dir, &old.name), site_dir(data_dir, &fields.name));
    let renamed = old.name != fields.name;
    if renamed && tokio::fs::symlink_metadata(&to).await.is_ok() {
        return Err(StoreError::Conflict(format!("A directory for '{}' already exists", fields.name)).into());
    }
    let new = store.update_site(id, fields, OffsetDateTime::now_utc()).await?;
    let moved = if renamed { tokio::fs::rename(&from, &to).await.map_err(SiteError::from) } else { Ok(()) };
    let result = match moved {
        Ok(()) => change.apply(&format!("site {} updated", new.name)).await.map(|_| ()).map_err(SiteError::from),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        if renamed && tokio::fs::symlink_metadata(&to).await.is_ok() {
            let _ = tokio::fs::rename(&to, &from).await;
        }
        let _ = store.update_site(id, SiteFields::from(&old), old.updated_at).await;
        return Err(e);
    }
    Ok((old, new))
}

/// Deletes the site row and makes nginx stop serving it; its files stay
/// until [`remove_files`] (so the deletion can still be undone after the
/// probe). When nginx refuses, the row is put back.
pub async fn delete(store: &Store, nginx: &Pipeline, who: &Identity, id: i64) -> Result<Site, SiteError> {
    get(store, who, id).await?;
    let change = nginx.change().await;
    let site = store.delete_site(id).await?;
    if let Err(e) = change.apply(&format!("site {} deleted", site.name)).await {
        store.restore_site(site.clone()).await?;
        return Err(e.into());
    }
    Ok(site)
}

/// Removes a deleted site's files.
pub async fn remove_files(data_dir: &Path, site: &Site) {
    let dir = site_dir(data_dir, &site.name);
    if let Err(e) = tokio::fs::remove_dir_all(&dir).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, site = %site.name, "cannot remove a deleted site's files");
    }
}

/// Resolves `<name>.<domain>` and reports whether it points at this server.
pub async fn verify_dns(
    store: &Store,
    who: &Identity,
    id: i64,
    resolver: Option<SocketAddr>,
    public_ip: Option<IpAddr>,
) -> Result<(Site, DnsReport), SiteError> {
    let site = get(store, who, id).await?;
    let domain = store
        .setting(crate::onboarding::keys::DOMAIN)
        .await?
        .ok_or(SiteError::Unavailable("no domain is set yet; finish onboarding first"))?;
    let expected = public_ip.ok_or(SiteError::Unavailable("the server's public address is unknown; set public_ip"))?;
    let report = crate::onboarding::check_dns(resolver, vec![format!("{}.{domain}", site.name)], expected).await;
    Ok((site, report))
}

/// Checks an agent's allowed-sites list: labels, no duplicates.
pub fn validate_allowed(names: &[String]) -> Result<Vec<String>, SiteError> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !crate::model::is_label(n) {
            return Err(SiteError::Invalid(vec![FieldError::new("sites", format!("{n:?} is not a site name"))]));
        }
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    if out.len() > 1000 {
        return Err(SiteError::Invalid(vec![FieldError::new("sites", "Give at most 1000 names")]));
    }
    Ok(out)
}
