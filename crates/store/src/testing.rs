//! Helpers for test suites that need their own PostgreSQL database. Not used by the service.

use sea_orm::{ConnectionTrait, Database};

fn check_name(name: &str) -> Result<(), sea_orm::DbErr> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(sea_orm::DbErr::Custom("invalid database name".into()));
    }
    Ok(())
}

/// `CREATE DATABASE name` through the maintenance connection `admin_url`.
pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<(), sea_orm::DbErr> {
    check_name(name)?;
    let db = Database::connect(admin_url).await?;
    db.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await?;
    db.close().await
}

/// `DROP DATABASE name WITH (FORCE)` through `admin_url`.
pub async fn drop_postgres_database(admin_url: &str, name: &str) -> Result<(), sea_orm::DbErr> {
    check_name(name)?;
    let db = Database::connect(admin_url).await?;
    db.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await?;
    db.close().await
}

/// Replaces the database name in a PostgreSQL URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}
