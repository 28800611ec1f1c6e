//! The appliance's shared vocabulary: the words every layer uses the same
//! way — a DNS label, the names Portico keeps for itself, who may reach a
//! tunnel or site, and a field that failed validation.

use std::fmt;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

/// Subdomains Portico serves itself; tunnels and sites may not take them.
pub const RESERVED_NAMES: [&str; 4] = ["panel", "auth", "tunnel", "www"];

/// A lowercase DNS label: `[a-z0-9-]{1,63}`, no leading or trailing hyphen.
/// Tunnel and site names, agent labels and the labels of a domain are all
/// DNS labels (they end up in host names, certificate subjects and paths).
pub fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A checked DNS label ([`is_label`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Label(String);

impl Label {
    /// `Some` when `s` is a DNS label.
    pub fn parse(s: &str) -> Option<Label> {
        is_label(s).then(|| Label(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the label is one Portico serves itself ([`RESERVED_NAMES`]).
    pub fn is_reserved(&self) -> bool {
        RESERVED_NAMES.contains(&self.0.as_str())
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who may reach a tunnel or site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Anyone; no `auth_request`.
    Public,
    /// Any logged-in visitor.
    #[default]
    Authenticated,
    /// Logged-in visitors that authd allows for this resource.
    Restricted,
}

impl Access {
    /// Every mode, in the order the forms offer them.
    pub const ALL: [Access; 3] = [Access::Public, Access::Authenticated, Access::Restricted];

    /// The mode's value in the API and the store.
    pub fn parse(value: &str) -> Option<Access> {
        Access::ALL.into_iter().find(|a| a.as_str() == value)
    }

    /// `public`, `authenticated` or `restricted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Authenticated => "authenticated",
            Access::Restricted => "restricted",
        }
    }

    /// The mode's one name on every page: forms, lists and detail pages.
    pub fn label(self) -> &'static str {
        match self {
            Access::Public => "Public",
            Access::Authenticated => "Signed-in visitors",
            Access::Restricted => "Restricted",
        }
    }

    /// What the mode means for a visitor, after its label in the forms.
    pub fn meaning(self) -> &'static str {
        match self {
            Access::Public => "anyone with the link",
            Access::Authenticated => "any visitor user, after password and TOTP",
            Access::Restricted => "only the users and groups chosen below",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for Access {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Access {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        Access::parse(text).ok_or_else(|| FromSqlError::Other(format!("unknown access mode {text:?}").into()))
    }
}

/// A field that failed validation: its JSON path and a human reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError { field: field.to_string(), message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_lowercase_dns_labels() {
        for good in ["a", "app", "my-app", "0day", &"x".repeat(63)] {
            assert!(Label::parse(good).is_some(), "{good}");
        }
        for bad in ["", "-a", "a-", "App", "a_b", "a.b", "é", &"x".repeat(64)] {
            assert!(Label::parse(bad).is_none(), "{bad}");
        }
        assert!(Label::parse("panel").unwrap().is_reserved());
        assert!(!Label::parse("wiki").unwrap().is_reserved());
    }

    #[test]
    fn access_modes_round_trip_through_sqlite_and_json() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        for mode in Access::ALL {
            let back: Access = db.query_row("SELECT ?1", [mode], |r| r.get(0)).unwrap();
            assert_eq!(back, mode);
            assert_eq!(serde_json::to_string(&mode).unwrap(), format!("\"{}\"", mode.as_str()));
        }
        let err = db.query_row("SELECT 'everyone'", [], |r| r.get::<_, Access>(0)).unwrap_err();
        assert!(err.to_string().contains("everyone"), "{err}");
    }
}
