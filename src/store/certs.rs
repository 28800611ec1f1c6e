//! Certificate records, renewal failures and renewal runs (`0005_certificates`).

use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::{Store, StoreError, from_unix, to_unix};

/// What the store knows about one installed certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRecord {
    pub name: String,
    /// `acme` or `manual`.
    pub source: String,
    pub issuer: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub installed_at: OffsetDateTime,
}

/// The last failed attempt for a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFailure {
    pub name: String,
    pub failures: u32,
    pub last_error: String,
    pub failed_at: OffsetDateTime,
    pub retry_at: OffsetDateTime,
}

/// One run of the renewal check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeRun {
    pub started_at: OffsetDateTime,
    pub finished_at: OffsetDateTime,
    /// `ok`, `failed` or `skipped`.
    pub result: String,
    pub renewed: u32,
    pub failed: u32,
    pub message: String,
}

fn cert_row(r: &Row<'_>) -> rusqlite::Result<CertRecord> {
    Ok(CertRecord {
        name: r.get(0)?,
        source: r.get(1)?,
        issuer: r.get(2)?,
        not_before: from_unix(r.get(3)?),
        not_after: from_unix(r.get(4)?),
        installed_at: from_unix(r.get(5)?),
    })
}

fn failure_row(r: &Row<'_>) -> rusqlite::Result<CertFailure> {
    Ok(CertFailure {
        name: r.get(0)?,
        failures: r.get::<_, i64>(1)?.max(0) as u32,
        last_error: r.get(2)?,
        failed_at: from_unix(r.get(3)?),
        retry_at: from_unix(r.get(4)?),
    })
}

fn failure(conn: &Connection, name: &str) -> Result<Option<CertFailure>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT name, failures, last_error, failed_at, retry_at FROM certificate_failures WHERE name = ?1",
            [name],
            failure_row,
        )
        .optional()?)
}

impl Store {
    /// Every certificate record, by name.
    pub async fn certificates(&self) -> Result<Vec<CertRecord>, StoreError> {
        self.run(|c| {
            let mut stmt = c.prepare(
                "SELECT name, source, issuer, not_before, not_after, installed_at FROM certificates ORDER BY name",
            )?;
            let rows = stmt.query_map([], cert_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Records an installed certificate and clears the name's failure row.
    pub async fn put_certificate(&self, rec: CertRecord) -> Result<(), StoreError> {
        self.put_certificates(vec![rec]).await
    }

    /// Records installed certificates and clears their failure rows, all in
    /// one transaction (an install's commit point).
    pub async fn put_certificates(&self, recs: Vec<CertRecord>) -> Result<(), StoreError> {
        self.run(move |c| {
            let tx = c.transaction()?;
            for rec in &recs {
                tx.execute(
                    "INSERT INTO certificates (name, source, issuer, not_before, not_after, installed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(name) DO UPDATE SET source = excluded.source, issuer = excluded.issuer,
                       not_before = excluded.not_before, not_after = excluded.not_after,
                       installed_at = excluded.installed_at",
                    params![
                        rec.name,
                        rec.source,
                        rec.issuer,
                        to_unix(rec.not_before),
                        to_unix(rec.not_after),
                        to_unix(rec.installed_at)
                    ],
                )?;
                tx.execute("DELETE FROM certificate_failures WHERE name = ?1", [&rec.name])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Every failure row, by name.
    pub async fn certificate_failures(&self) -> Result<Vec<CertFailure>, StoreError> {
        self.run(|c| {
            let mut stmt = c.prepare(
                "SELECT name, failures, last_error, failed_at, retry_at FROM certificate_failures ORDER BY name",
            )?;
            let rows = stmt.query_map([], failure_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Counts one more failure for `name`; `backoff(n)` gives the wait before
    /// the next automatic attempt after `n` consecutive failures. Returns the row.
    pub async fn record_certificate_failure(
        &self,
        name: String,
        message: String,
        now: OffsetDateTime,
        backoff: fn(u32) -> time::Duration,
    ) -> Result<CertFailure, StoreError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let failures = failure(&tx, &name)?.map_or(0, |f| f.failures).saturating_add(1);
            let retry_at = now + backoff(failures);
            tx.execute(
                "INSERT INTO certificate_failures (name, failures, last_error, failed_at, retry_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(name) DO UPDATE SET failures = excluded.failures,
                   last_error = excluded.last_error, failed_at = excluded.failed_at, retry_at = excluded.retry_at",
                params![name, failures, message, to_unix(now), to_unix(retry_at)],
            )?;
            let row = failure(&tx, &name)?.ok_or(StoreError::NotFound)?;
            tx.commit()?;
            Ok(row)
        })
        .await
    }

    /// Records one run of the renewal check.
    pub async fn record_acme_run(&self, run: AcmeRun) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO acme_runs (started_at, finished_at, result, renewed, failed, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    to_unix(run.started_at),
                    to_unix(run.finished_at),
                    run.result,
                    run.renewed,
                    run.failed,
                    run.message
                ],
            )?;
            // Keep the history short: the latest 100 runs.
            c.execute("DELETE FROM acme_runs WHERE id <= (SELECT MAX(id) - 100 FROM acme_runs)", [])?;
            Ok(())
        })
        .await
    }

    /// The latest run of the renewal check.
    pub async fn last_acme_run(&self) -> Result<Option<AcmeRun>, StoreError> {
        self.run(|c| {
            Ok(c.query_row(
                "SELECT started_at, finished_at, result, renewed, failed, message FROM acme_runs
                 ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok(AcmeRun {
                        started_at: from_unix(r.get(0)?),
                        finished_at: from_unix(r.get(1)?),
                        result: r.get(2)?,
                        renewed: r.get::<_, i64>(3)?.max(0) as u32,
                        failed: r.get::<_, i64>(4)?.max(0) as u32,
                        message: r.get(5)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }
}
