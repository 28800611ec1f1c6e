//! Static sites: validation, the site directory with its default page, and
//! create/delete kept together with the nginx apply (undone when it fails).

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::nginx::{Pipeline, PipelineError, RESERVED_NAMES};
use crate::onboarding::FieldError;
use crate::store::{Site, SiteFields, Store, StoreError};

/// Default upload cap of a site, bytes.
pub const DEFAULT_MAX_BYTES: u64 = 500 * 1024 * 1024;

const DEFAULT_INDEX: &str = "<!doctype html>\n<title>New site</title>\n<p>This site has no content yet.</p>\n";

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("invalid site")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Nginx(#[from] PipelineError),
    #[error("site files: {0}")]
    Io(#[from] std::io::Error),
}

/// What a caller may set when creating a site.
#[derive(Debug, Clone)]
pub struct NewSite {
    pub name: String,
    pub spa_fallback: bool,
    pub access: String,
}

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks a new site's fields.
pub fn validate(new: &NewSite) -> Result<SiteFields, SiteError> {
    let mut errors = Vec::new();
    if !is_label(&new.name) {
        errors.push(FieldError::new("name", "must be a lowercase DNS label: a-z, 0-9 and '-', at most 63"));
    } else if RESERVED_NAMES.contains(&new.name.as_str()) {
        errors.push(FieldError::new("name", "is reserved for Portico itself"));
    }
    if !["public", "authenticated", "restricted"].contains(&new.access.as_str()) {
        errors.push(FieldError::new("access", "must be public, authenticated or restricted"));
    }
    if !errors.is_empty() {
        return Err(SiteError::Invalid(errors));
    }
    Ok(SiteFields {
        name: new.name.clone(),
        spa_fallback: new.spa_fallback,
        access: new.access.clone(),
        allowed_users: Vec::new(),
        allowed_groups: Vec::new(),
        max_bytes: DEFAULT_MAX_BYTES,
    })
}

/// `<data_dir>/sites/<name>`.
pub fn site_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("sites").join(name)
}

/// Creates the site row and directory (with a default `index.html`) and
/// makes nginx serve it; on any failure both are removed again.
pub async fn create(store: &Store, nginx: &Pipeline, data_dir: &Path, new: NewSite) -> Result<Site, SiteError> {
    let fields = validate(&new)?;
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

/// Deletes the site row, makes nginx stop serving it, then removes its files.
/// When nginx refuses, the row is put back and the files stay.
pub async fn delete(store: &Store, nginx: &Pipeline, data_dir: &Path, id: i64) -> Result<Site, SiteError> {
    let change = nginx.change().await;
    let site = store.delete_site(id).await?;
    if let Err(e) = change.apply(&format!("site {} deleted", site.name)).await {
        store.restore_site(site.clone()).await?;
        return Err(e.into());
    }
    let _ = tokio::fs::remove_dir_all(site_dir(data_dir, &site.name)).await;
    Ok(site)
}
