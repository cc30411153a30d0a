//! Settings as clap parses them: every bad value names its key.

use std::path::PathBuf;

use super::*;

/// Settings as clap would build them, without reading the environment.
fn args(database_url: Option<&str>, secret: Option<&str>) -> ServeArgs {
    ServeArgs {
        database: DatabaseArgs {
            database_url: database_url.map(str::to_owned),
        },
        db_max_connections: 20,
        queue: QueueArgs {
            redis_url: Some("redis://127.0.0.1:6379".into()),
            queue_namespace: "herald".into(),
            queue_lease_ms: 30_000,
            queue_max_attempts: 3,
            queue_retry_base_ms: 5_000,
            queue_retry_cap_ms: 900_000,
            worker_concurrency: 64,
            worker_platform_concurrency: 16,
            publish_timeout_secs: 120,
            reconcile_interval_ms: 30_000,
            reconcile_horizon_secs: 3_600,
            webhook_url: None,
            webhook_idempotent: true,
        },
        no_worker: false,
        bind: "127.0.0.1:8080".into(),
        jwt: JwtArgs {
            jwt_secret: secret.map(str::to_owned),
            jwt_public_key: None,
            jwt_issuer: None,
            jwt_audience: None,
            operators: Vec::new(),
        },
        no_migrate: false,
        plugins: PluginArgs {
            plugin_dir: None,
            plugin_cache_dir: None,
            plugin_concurrency: 64,
            plugin_api_concurrency: 16,
            outbound_allow_cidrs: Vec::new(),
            plugin_pooling: true,
            plugin_memory_mb: 64,
            plugin_timeout_secs: 30,
            plugin_http_timeout_secs: 20,
            plugin_max_response_mb: 8,
            plugin_max_media_mb: 100,
            plugin_host_overrides: Vec::new(),
        },
        token_key: TokenKeyArgs {
            token_key: Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into()),
            token_key_id: "k1".into(),
            token_keys: None,
        },
        graphql: GraphqlArgs {
            graphql_introspection: true,
            graphql_batching: false,
            graphql_max_body_kb: 1_024,
            graphql_timeout_secs: 30,
            ws_init_timeout_secs: 10,
            ws_ping_interval_secs: 15,
            ws_pong_timeout_secs: 10,
            graphql_apq_ttl_secs: 86_400,
            graphql_apq_max_query_kb: 32,
            graphql_apq_tenant_quota: 500,
            graphql_compiled_reads: true,
            rate_limits: RateLimitArgs {
                rate_limit_per_minute: 6_000,
                rate_limit_burst: 1_000,
                mutation_rate_limit_per_minute: 600,
                mutation_rate_limit_burst: 300,
                rate_limit_client_ip_header: None,
            },
        },
        members_manage_accounts: false,
        oauth: oauth_args(),
        media: media_args(),
    }
}

fn media_args() -> MediaArgs {
    MediaArgs {
        media_dir: PathBuf::from("./data/media"),
        media_max_bytes: 1_000,
        media_s3_bucket: None,
        media_s3_endpoint: None,
        media_s3_region: "us-east-1".into(),
        media_s3_access_key_id: None,
        media_s3_secret_access_key: None,
        media_s3_secret_access_key_file: None,
        media_s3_path_style: false,
        media_signing_key: None,
        media_url_ttl_secs: 86_400,
        media_upload_ttl_secs: 3_600,
        media_gc_after_hours: 168,
        media_gc_interval_secs: 3_600,
    }
}

fn oauth_args() -> OauthArgs {
    OauthArgs {
        public_url: None,
        oauth_redirect_uris: Vec::new(),
        oauth_success_url: None,
        oauth_refresh_ahead_secs: 600,
        oauth_refresh_interval_secs: 60,
        oauth_reconnect_warning_days: 7,
    }
}

const DB: Option<&str> = Some("postgres://h@127.0.0.1/h");
const SECRET: Option<&str> = Some("0123456789abcdef0123456789abcdef");

#[test]
fn errors_name_the_setting() {
    let mut cases: Vec<(ServeArgs, &str)> = vec![
        (args(None, SECRET), "DATABASE_URL"),
        (args(Some("mysql://x"), SECRET), "DATABASE_URL"),
        (args(DB, None), "HERALD_JWT_SECRET"),
        (args(DB, Some("short")), "HERALD_JWT_SECRET"),
    ];
    let mut both = args(DB, SECRET);
    both.jwt.jwt_public_key = Some("/nonexistent.pem".into());
    cases.push((both, "HERALD_JWT_SECRET"));
    let mut missing_pem = args(DB, None);
    missing_pem.jwt.jwt_public_key = Some("/nonexistent.pem".into());
    cases.push((missing_pem, "HERALD_JWT_PUBLIC_KEY"));
    let mut bind = args(DB, SECRET);
    bind.bind = "localhost".into();
    cases.push((bind, "HERALD_BIND"));
    let mut redis = args(DB, SECRET);
    redis.queue.redis_url = Some("http://x".into());
    cases.push((redis, "REDIS_URL"));
    let mut no_redis = args(DB, SECRET);
    no_redis.queue.redis_url = None;
    cases.push((no_redis, "REDIS_URL"));
    let mut namespace = args(DB, SECRET);
    namespace.queue.queue_namespace = "a{b}".into();
    cases.push((namespace, "HERALD_QUEUE_NAMESPACE"));
    let mut lease = args(DB, SECRET);
    lease.queue.queue_lease_ms = 0;
    cases.push((lease, "HERALD_QUEUE_LEASE_MS"));
    let mut no_key = args(DB, SECRET);
    no_key.token_key.token_key = None;
    cases.push((no_key, "HERALD_TOKEN_KEY"));
    let mut short_key = args(DB, SECRET);
    short_key.token_key.token_key = Some("c2hvcnQ=".into());
    cases.push((short_key, "HERALD_TOKEN_KEY"));
    let mut webhook = args(DB, SECRET);
    webhook.queue.webhook_url = Some("ftp://x".into());
    cases.push((webhook, "HERALD_WEBHOOK_URL"));
    let mut ring = args(DB, SECRET);
    ring.token_key.token_keys = Some("k2:AAAA".into());
    cases.push((ring, "HERALD_TOKEN_KEYS"));
    let mut pool = args(DB, SECRET);
    pool.db_max_connections = 0;
    cases.push((pool, "HERALD_DB_MAX_CONNECTIONS"));
    let mut memory = args(DB, SECRET);
    memory.plugins.plugin_dir = Some("/plugins".into());
    memory.plugins.plugin_memory_mb = 0;
    cases.push((memory, "HERALD_PLUGIN_MEMORY_MB"));
    let mut overrides = args(DB, SECRET);
    overrides.plugins.plugin_dir = Some("/plugins".into());
    overrides.plugins.plugin_host_overrides = vec!["api.example.com".into()];
    cases.push((overrides, "HERALD_PLUGIN_HOST_OVERRIDES"));
    let mut api_lane = args(DB, SECRET);
    api_lane.plugins.plugin_dir = Some("/plugins".into());
    api_lane.plugins.plugin_api_concurrency = 0;
    cases.push((api_lane, "HERALD_PLUGIN_API_CONCURRENCY"));
    let mut cidrs = args(DB, SECRET);
    cidrs.plugins.plugin_dir = Some("/plugins".into());
    cidrs.plugins.outbound_allow_cidrs = vec!["10.0.0.0/33".into()];
    cases.push((cidrs, "HERALD_OUTBOUND_ALLOW_CIDRS"));
    let mut timeout = args(DB, SECRET);
    timeout.graphql.graphql_timeout_secs = 0;
    cases.push((timeout, "HERALD_GRAPHQL_TIMEOUT_SECS"));
    let mut init = args(DB, SECRET);
    init.graphql.ws_init_timeout_secs = 0;
    cases.push((init, "HERALD_WS_INIT_TIMEOUT_SECS"));
    let mut apq_size = args(DB, SECRET);
    apq_size.graphql.graphql_apq_max_query_kb = 0;
    cases.push((apq_size, "HERALD_GRAPHQL_APQ_MAX_QUERY_KB"));
    let mut apq_quota = args(DB, SECRET);
    apq_quota.graphql.graphql_apq_tenant_quota = 0;
    cases.push((apq_quota, "HERALD_GRAPHQL_APQ_TENANT_QUOTA"));
    let mut burst = args(DB, SECRET);
    burst.graphql.rate_limits.mutation_rate_limit_burst = 0;
    cases.push((burst, "HERALD_MUTATION_RATE_LIMIT_BURST"));
    let mut header = args(DB, SECRET);
    header.graphql.rate_limits.rate_limit_client_ip_header = Some("X Forwarded".into());
    cases.push((header, "HERALD_RATE_LIMIT_CLIENT_IP_HEADER"));
    let mut public = args(DB, SECRET);
    public.oauth.public_url = Some("herald.example.org".into());
    cases.push((public, "HERALD_PUBLIC_URL"));
    let mut redirect = args(DB, SECRET);
    redirect.oauth.oauth_redirect_uris = vec!["https://ok.example".into(), "javascript:x".into()];
    cases.push((redirect, "HERALD_OAUTH_REDIRECT_URIS"));
    let mut interval = args(DB, SECRET);
    interval.oauth.oauth_refresh_interval_secs = 0;
    cases.push((interval, "HERALD_OAUTH_REFRESH_INTERVAL_SECS"));
    for (args, key) in cases {
        let err = args.config().expect_err("invalid");
        assert!(err.key.starts_with(key), "{args:?}: {err}");
        assert!(err.to_string().contains(key), "{err}");
    }
}

#[test]
fn the_removed_instance_webhook_url_refuses_to_start_and_says_what_to_do() {
    let mut old = args(DB, SECRET);
    old.queue.webhook_url = Some("https://hooks.example/herald".into());
    let err = old.config().expect_err("removed setting");
    assert!(err.key.starts_with("HERALD_WEBHOOK_URL"), "{err}");
    let message = err.to_string();
    assert!(message.contains("removed"), "{message}");
    assert!(
        message.contains("connectAccount(platform: \"webhook\""),
        "{message}"
    );
}

#[test]
fn plugin_settings_build_the_host_config() {
    let mut args = args(DB, SECRET);
    assert!(args.config().expect("valid").plugins.is_none());
    args.plugins.plugin_dir = Some("/srv/plugins".into());
    args.plugins.plugin_host_overrides = vec!["api.example.com=http://127.0.0.1:4000".into()];
    let plugins = args.config().expect("valid").plugins.expect("configured");
    assert_eq!(
        plugins.cache_dir,
        Some(PathBuf::from("/srv/plugins/.cache"))
    );
    assert_eq!(plugins.memory_limit_bytes, 64 << 20);
    assert_eq!((plugins.concurrency, plugins.api_concurrency), (64, 16));
    assert!(plugins.address_policy.allowed_ranges().is_empty());
    args.plugins.outbound_allow_cidrs = vec!["10.20.0.0/16".into()];
    let plugins = args.config().expect("valid").plugins.expect("configured");
    assert!(
        plugins
            .address_policy
            .permits("10.20.1.1".parse().expect("ip"))
    );
    assert!(
        !plugins
            .address_policy
            .permits("10.21.1.1".parse().expect("ip"))
    );
    assert_eq!(
        plugins
            .host_overrides
            .get("api.example.com")
            .map(String::as_str),
        Some("http://127.0.0.1:4000")
    );
    args.plugins.plugin_timeout_secs = args.queue.publish_timeout_secs;
    let err = args
        .config()
        .expect_err("plugin deadline past the publish timeout");
    assert!(err.key.starts_with("HERALD_PLUGIN_TIMEOUT_SECS"), "{err}");
}

#[test]
fn valid_settings_and_flags_parse() {
    let mut valid = args(DB, SECRET);
    valid.no_migrate = true;
    let config = valid.config().expect("valid");
    assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
    assert!(!config.migrate);
    assert!(matches!(config.jwt.key, JwtKey::Secret(_)));
    // The flags' defaults are `RateLimitConfig::default()`, which tests start servers with.
    assert_eq!(config.graphql.rate_limits, RateLimitConfig::default());
    let mut off = args(DB, SECRET);
    off.graphql.rate_limits.rate_limit_per_minute = 0;
    off.graphql.rate_limits.rate_limit_burst = 0;
    off.graphql.rate_limits.rate_limit_client_ip_header = Some("X-Forwarded-For".into());
    let limits = off.config().expect("valid").graphql.rate_limits;
    assert_eq!(limits.requests, None);
    assert!(limits.mutations.is_some());
    assert_eq!(
        limits.client_ip_header.as_ref().map(|h| h.as_str()),
        Some("x-forwarded-for")
    );
    let cli = Cli::try_parse_from(["herald", "serve", "--no-migrate", "--bind", "0.0.0.0:9"])
        .expect("parses");
    let Command::Serve(serve) = cli.command else {
        panic!("expected serve");
    };
    assert!(serve.no_migrate);
    assert_eq!(serve.bind, "0.0.0.0:9");
}

#[test]
fn oauth_apps_come_from_per_platform_variables() {
    let mut args = oauth_args();
    args.public_url = Some("https://herald.example.org/".into());
    let vars = [
        ("HERALD_OAUTH_X_CLIENT_ID", "x-client"),
        ("HERALD_OAUTH_X_CLIENT_SECRET", "x-secret"),
        ("HERALD_OAUTH_LINKED_IN_CLIENT_ID", "li-client"),
        ("HERALD_OAUTH_EMPTY_CLIENT_ID", " "),
        ("HERALD_OAUTH_REDIRECT_URIS", "https://app.example/cb"),
        ("PATH", "/bin"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let config = args.config_from(vars).expect("valid");
    assert_eq!(
        config.reconnect_warning,
        std::time::Duration::from_secs(7 * 86_400)
    );
    let x = config.app("x").expect("configured");
    assert_eq!(x.client_id, "x-client");
    assert_eq!(x.client_secret.as_deref(), Some("x-secret"));
    assert!(
        !format!("{x:?}").contains("x-secret"),
        "Debug hides the secret"
    );
    let linked_in = config.app("linked-in").expect("configured");
    assert_eq!(linked_in.client_secret, None, "a public client");
    assert_eq!(
        config.app("empty").expect_err("blank"),
        "HERALD_OAUTH_EMPTY_CLIENT_ID"
    );
    assert_eq!(
        config.app("mastodon").expect_err("missing"),
        "HERALD_OAUTH_MASTODON_CLIENT_ID"
    );
    assert_eq!(
        config.callback("x").as_deref(),
        Some("https://herald.example.org/oauth/x/callback")
    );
}

#[test]
fn media_settings_choose_the_store_and_the_signing_key() {
    use crate::media::store::Storage;
    let serve = args(DB, SECRET);
    let config = serve
        .media
        .config(Some("https://herald.example.org".into()), &serve.token_key)
        .expect("valid");
    assert!(matches!(config.storage, Storage::Local(ref dir) if dir.ends_with("data/media")));
    assert_eq!(config.max_bytes, 1_000);
    assert_eq!(
        config.public_url.as_deref(),
        Some("https://herald.example.org")
    );
    // Derived from the token key, and not the token key itself.
    let again = serve.media.config(None, &serve.token_key).expect("valid");
    assert_eq!(config.signing_key, again.signing_key);
    assert_ne!(
        config.signing_key,
        serve.token_key.current_key().expect("key")
    );

    let mut media = media_args();
    media.media_s3_bucket = Some("herald".into());
    media.media_s3_endpoint = Some("http://127.0.0.1:9000".into());
    media.media_s3_access_key_id = Some("id".into());
    media.media_s3_secret_access_key = Some("secret".into());
    media.media_s3_path_style = true;
    media.media_signing_key = Some("AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into());
    let s3 = media.config(None, &serve.token_key).expect("valid");
    let Storage::S3(bucket) = &s3.storage else {
        panic!("an S3 store");
    };
    assert_eq!(bucket.bucket, "herald");
    assert!(bucket.path_style);
    assert!(
        !format!("{:?}", s3.storage).contains("secret"),
        "Debug hides the secret"
    );
    assert_eq!(s3.signing_key[0], 1);

    for (change, key) in [
        (
            (|m: &mut MediaArgs| m.media_signing_key = Some("short".into())) as fn(&mut MediaArgs),
            "HERALD_MEDIA_SIGNING_KEY (--media-signing-key)",
        ),
        (
            |m| m.media_s3_secret_access_key = None,
            "HERALD_MEDIA_S3_ACCESS_KEY_ID (--media-s3-access-key-id)",
        ),
        (
            |m| m.media_s3_secret_access_key_file = Some(PathBuf::from("/nonexistent")),
            "HERALD_MEDIA_S3_SECRET_ACCESS_KEY (--media-s3-secret-access-key)",
        ),
        (
            |m| m.media_s3_endpoint = Some("ftp://x".into()),
            "HERALD_MEDIA_S3_ENDPOINT (--media-s3-endpoint)",
        ),
        (
            |m| m.media_max_bytes = 0,
            "HERALD_MEDIA_MAX_BYTES (--media-max-bytes)",
        ),
    ] {
        let mut bad = media.clone();
        change(&mut bad);
        let err = bad.config(None, &serve.token_key).expect_err("refused");
        assert_eq!(err.key, key, "{err}");
    }
}
