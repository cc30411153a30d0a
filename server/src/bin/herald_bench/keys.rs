//! `herald-bench keys`: how fast `herald keys rotate` re-seals. Seeds `rows` connections of
//! as many tenants with tokens sealed with an old key `k1`, then rotates them to `k2` in
//! batches (`herald_server::keys::rotate`, what the command runs) and prints one JSON line
//! with the rate.

use anyhow::{Context, bail};
use herald_server::secrets::TokenCipher;
use sea_orm::DatabaseConnection;
use sea_orm::sqlx;
use serde_json::json;
use uuid::Uuid;

const OLD: [u8; 32] = *b"herald-bench-old-key-0123456789a";
const NEW: [u8; 32] = *b"herald-bench-new-key-0123456789a";

/// Rows inserted per statement while seeding.
const SEED_CHUNK: usize = 1_000;

/// Inserts `rows` webhook connections and their tokens, sealed with `old`.
async fn seed(db: &DatabaseConnection, old: &TokenCipher, rows: usize) -> anyhow::Result<()> {
    let pool = db.get_postgres_connection_pool();
    let mut done = 0;
    while done < rows {
        let n = SEED_CHUNK.min(rows - done);
        let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
        let owners: Vec<String> = (done..done + n).map(|i| format!("org:bench-{i}")).collect();
        let tokens: Vec<Vec<u8>> = ids
            .iter()
            .map(|id| {
                old.seal(
                    br#"{"access_token":"bench-secret-0123456789","extra":[["url","https://hooks.example/h"]]}"#,
                    id.as_bytes(),
                )
            })
            .collect();
        sqlx::query(
            "WITH c AS (
               INSERT INTO social_connections
                 (id, owner_id, platform, external_account_id, display_name, status, created_at,
                  updated_at, is_default)
               SELECT v.id, v.owner, 'webhook', 'bench', 'webhook to hooks.example', 'active',
                      now(), now(), true
                 FROM unnest($1::uuid[], $2::text[]) AS v(id, owner)
               RETURNING id)
             INSERT INTO social_account_tokens
               (id, connection_id, key_id, token_ciphertext, created_at, updated_at)
             SELECT gen_random_uuid(), v.id, $3, v.token, now(), now()
               FROM unnest($1::uuid[], $4::bytea[]) AS v(id, token)",
        )
        .bind(&ids)
        .bind(&owners)
        .bind(old.key_id())
        .bind(&tokens)
        .execute(pool)
        .await
        .context("seeding token rows")?;
        done += n;
    }
    Ok(())
}

/// Seeds `rows` rows under `k1` and times their rotation to `k2`.
pub async fn run(url: &str, rows: usize, batch: u32) -> anyhow::Result<serde_json::Value> {
    herald_server::db::migrate(url).await?;
    let owner = herald_server::db::connect(url, 2).await?;
    let old = TokenCipher::new("k1", &OLD);
    seed(&owner, &old, rows).await?;
    owner.close().await?;
    let db = herald_server::db::connect_worker(url, 2).await?;
    let ring = TokenCipher::new("k2", &NEW).with_old_key("k1", &OLD);
    let rotation = herald_server::keys::rotate(&db, &ring, batch, |_| {}).await?;
    if !rotation.complete() || rotation.progress.resealed != rows as u64 {
        bail!("rotation incomplete: {rotation:?}");
    }
    let status = herald_server::keys::status(&db, &ring).await?;
    if status.not_current() != 0 {
        bail!("rows left under k1 after the rotation: {status:?}");
    }
    db.close().await?;
    let p = rotation.progress;
    Ok(json!({
        "scenario": "keys-rotate",
        "rows": rows,
        "batch": batch,
        "seconds": (p.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        "rows_per_s": p.rate().round(),
    }))
}
